//! The preflight against the real OpenStack on loopback (Keystone, Nova, Neutron, Glance,
//! Octavia): each case is caught in one line, with nothing created. Every test has its own
//! project and application credential (tests/support/openstack.rs).

use capi_manage::cloud::{self, CloudConfig, Options, Report};
use capi_manage::repo::Values;
use serde_json::{Value, json};

use crate::support::openstack::{OpenStack, TestProject};

/// The example cluster's chart values with flavors and image this cloud has, its external
/// network, and no key pair.
async fn chart(p: &TestProject) -> Value {
    let path = crate::support::project_root().join("clusters/example/values.yaml");
    let mut v = Values::load(&path).unwrap().chart;
    v["machineImage"] = json!(seeded_image(p).await);
    v["controlPlane"]["machineFlavor"] = json!("m1.medium");
    v["nodeGroups"][0]["machineFlavor"] = json!("m1.medium");
    v["clusterNetworking"]["externalNetworkId"] = json!(public_network(p).await.0);
    v
}

/// The seeded public image (services.sh's seed).
async fn seeded_image(p: &TestProject) -> String {
    let images = p
        .admin
        .get("image", "/images?visibility=public&status=active")
        .await;
    images["images"][0]["name"]
        .as_str()
        .expect("a public image")
        .to_string()
}

/// The seeded external network: (id, name).
async fn public_network(p: &TestProject) -> (String, String) {
    let nets = p
        .admin
        .get("network", "/networks?router:external=true&name=public")
        .await;
    let n = &nets["networks"][0];
    (
        n["id"].as_str().expect("network public").into(),
        n["name"].as_str().unwrap().into(),
    )
}

/// The loopback services on sqlite can be slow while the machine is busy: a longer limit than
/// the library's default for a real cloud.
fn options() -> Options {
    Options {
        timeout: std::time::Duration::from_secs(300),
        ..Options::default()
    }
}

async fn run(clouds_yaml: &str, chart: &Value) -> Report {
    let cloud = CloudConfig::from_clouds_yaml(clouds_yaml, cloud::CLOUD_NAME).unwrap();
    cloud::preflight(&cloud, chart, &options())
        .await
        .unwrap_or_else(|e| panic!("preflight failed: {e:?}"))
}

fn lines(r: &Report) -> Vec<String> {
    r.problems.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn what_exists_passes_with_an_application_credential_or_a_password() {
    let p = OpenStack::get().project("pass").await;
    let user = p.user().await;
    user.post(
        "compute",
        "/os-keypairs",
        json!({"keypair": {"name": "ops"}}),
    )
    .await;
    let mut v = chart(&p).await;
    v["machineSSHKeyName"] = json!("ops");
    let r = run(&p.clouds_yaml(), &v).await;
    assert_eq!(lines(&r), Vec::<String>::new(), "{r}");
    assert_eq!(r.project.as_ref().unwrap().name, p.name);
    assert_eq!(r.project.as_ref().unwrap().id, p.id);
    assert!(r.skipped.is_empty(), "{r}");
    // The preflight only reads: the project still holds no server, port or load balancer.
    let servers = p
        .admin
        .get(
            "compute",
            &format!("/servers?all_tenants=1&project_id={}", p.id),
        )
        .await;
    assert_eq!(servers["servers"], json!([]), "{servers}");
    let ports = p
        .admin
        .get("network", &format!("/ports?project_id={}", p.id))
        .await;
    assert_eq!(ports["ports"], json!([]), "{ports}");
    let lbs = p
        .admin
        .get(
            "load-balancer",
            &format!("/lbaas/loadbalancers?project_id={}", p.id),
        )
        .await;
    assert_eq!(lbs["loadbalancers"], json!([]), "{lbs}");
    let r = run(&p.password_clouds_yaml(), &v).await;
    assert_eq!(lines(&r), Vec::<String>::new(), "{r}");
    // A password login whose project is another one is caught.
    let other = p
        .password_clouds_yaml()
        .replace(&format!("project_name: {}", p.name), "project_name: admin");
    let cloud = CloudConfig::from_clouds_yaml(&other, "openstack").unwrap();
    let r = cloud::preflight(&cloud, &v, &options()).await.unwrap();
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(
        r.problems[0]
            .to_string()
            .starts_with("clouds.openstack.auth.password: Keystone at"),
        "{r}"
    );
}

#[tokio::test]
async fn a_refused_application_credential_secret() {
    let p = OpenStack::get().project("refused").await;
    let v = chart(&p).await;
    let yaml = p
        .clouds_yaml()
        .replace(&p.app_cred_secret, "not-the-secret");
    let r = run(&yaml, &v).await;
    let got = lines(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    let want = format!(
        "clouds.openstack.auth.application_credential_secret: Keystone at {} refused the application credential {} (401: ",
        p.auth_url, p.app_cred_id
    );
    assert!(got[0].starts_with(&want), "{got:?}");
    assert!(!got[0].contains("not-the-secret"), "{got:?}");
    assert!(r.project.is_none());
}

#[tokio::test]
async fn a_region_not_in_the_catalog() {
    let p = OpenStack::get().project("region").await;
    let v = chart(&p).await;
    let r = run(
        &p.clouds_yaml()
            .replace("region_name: RegionOne", "region_name: RegionTwo"),
        &v,
    )
    .await;
    assert_eq!(
        lines(&r),
        [
            "clouds.openstack.region_name: region RegionTwo is not in the catalog; regions: RegionOne"
        ]
    );
}

#[tokio::test]
async fn a_missing_flavor_and_a_flavor_too_small() {
    let p = OpenStack::get().project("flavors").await;
    let mut v = chart(&p).await;
    v["controlPlane"]["machineFlavor"] = json!("m1.medim");
    let got = lines(&run(&p.clouds_yaml(), &v).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("controlPlane.machineFlavor: flavor m1.medim not found; similar: ")
            && got[0].contains("m1.medium"),
        "{got:?}"
    );
    v["controlPlane"]["machineFlavor"] = json!("m1.small");
    let got = lines(&run(&p.clouds_yaml(), &v).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("controlPlane.machineFlavor: flavor m1.small has 1 vCPU and 2048 MiB RAM; a control-plane machine needs at least 2 vCPU and 2048 MiB (kubeadm's minimum); large enough: ")
            && got[0].contains("m1.medium"),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_image_that_is_not_active() {
    let p = OpenStack::get().project("image").await;
    let user = p.user().await;
    // Created and never uploaded: Glance keeps it queued.
    let image = user
        .post(
            "image",
            "/images",
            json!({"name": format!("{}-queued", p.name), "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let (id, name) = (
        image["id"].as_str().unwrap(),
        image["name"].as_str().unwrap(),
    );
    assert_eq!(image["status"], "queued");
    let mut v = chart(&p).await;
    let active = v["machineImage"].as_str().unwrap().to_string();
    v["machineImage"] = json!(name);
    let got = lines(&run(&p.clouds_yaml(), &v).await);
    assert_eq!(got.len(), 1, "{got:?}");
    let want = format!("machineImage: image {name} ({id}) is queued, not active; active images: ");
    assert!(
        got[0].starts_with(&want) && got[0].contains(&active),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_network_that_is_not_external() {
    let p = OpenStack::get().project("network").await;
    let user = p.user().await;
    let net = user
        .post(
            "network",
            "/networks",
            json!({"network": {"name": format!("{}-internal", p.name)}}),
        )
        .await;
    let (id, name) = (
        net["network"]["id"].as_str().unwrap(),
        net["network"]["name"].as_str().unwrap(),
    );
    let mut v = chart(&p).await;
    let (public_id, public_name) = public_network(&p).await;
    v["clusterNetworking"]["externalNetworkId"] = json!(id);
    let got = lines(&run(&p.clouds_yaml(), &v).await);
    assert_eq!(got.len(), 1, "{got:?}");
    let want = format!(
        "clusterNetworking.externalNetworkId: network {id} ({name}) is not external (router:external is false); external networks: "
    );
    assert!(got[0].starts_with(&want), "{got:?}");
    assert!(
        got[0].contains(&public_id) && got[0].contains(&public_name),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_missing_key_pair() {
    let p = OpenStack::get().project("keypair").await;
    let user = p.user().await;
    user.post(
        "compute",
        "/os-keypairs",
        json!({"keypair": {"name": "ops"}}),
    )
    .await;
    let mut v = chart(&p).await;
    v["machineSSHKeyName"] = json!("opz");
    assert_eq!(
        lines(&run(&p.clouds_yaml(), &v).await),
        ["machineSSHKeyName: key pair opz not found; similar: ops"]
    );
}

#[tokio::test]
async fn quotas_too_small_for_the_node_groups() {
    let p = OpenStack::get().project("quotas").await;
    let id = &p.id;
    p.admin
        .put_json(
            "compute",
            &format!("/os-quota-sets/{id}"),
            json!({"quota_set": {"instances": 4, "cores": 8}}),
        )
        .await;
    p.admin
        .put_json(
            "network",
            &format!("/quotas/{id}"),
            json!({"quota": {"port": 5, "floatingip": 0}}),
        )
        .await;
    // 3 control-plane machines and 2 workers, all m1.medium (2 vCPU, 4096 MiB).
    let v = chart(&p).await;
    let machines = "controlPlane.machineCount + nodeGroups[].machineCount";
    assert_eq!(
        lines(&run(&p.clouds_yaml(), &v).await),
        [
            format!("{machines}: quota instances: the cluster needs 6 (5 machines + 1 surge), the project has 4 left (limit 4, 0 in use)"),
            format!("{machines}: quota cores: the cluster needs 12 (10 for the machines + 1 surge of 2), the project has 8 left (limit 8, 0 in use)"),
            format!("{machines}: quota ports: the cluster needs 9 (5 for the machines + 1 surge + router interface and DHCP + load balancer VIP), the project has 5 left (limit 5, 0 in use)"),
            "apiServer.associateFloatingIP: quota floating IPs: the cluster needs 1 (the API server's floating IP), the project has 0 left (limit 0, 0 in use)".to_string(),
        ]
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `capi-manage plan --online`, the real binary: a config repo whose credentials.yaml holds the
/// project's application credential; a misspelt flavor fails the command with its one line, the
/// fixed values pass.
#[tokio::test]
async fn plan_online_runs_the_preflight() {
    let p = OpenStack::get().project("plan").await;
    let root = crate::support::project_root();
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&root.join("clusters"), &repo.path().join("clusters"));
    copy_dir(
        &root.join("vendor-manifests"),
        &repo.path().join("vendor-manifests"),
    );
    let dir = repo.path().join("clusters/example");
    let creds = std::fs::read_to_string(dir.join("credentials.yaml")).unwrap();
    let creds = creds
        .replace("https://REPLACE_ME:5000/v3", &p.auth_url)
        .replace(
            "application_credential_id: REPLACE_ME",
            &format!("application_credential_id: {}", p.app_cred_id),
        )
        .replace(
            "application_credential_secret: REPLACE_ME",
            &format!("application_credential_secret: {}", p.app_cred_secret),
        );
    std::fs::write(dir.join("credentials.yaml"), creds).unwrap();
    let values = std::fs::read_to_string(dir.join("values.yaml")).unwrap();
    let values = values
        .replace(
            "machineImage: ubuntu-jammy-kube-v1.33.1",
            &format!("machineImage: {}", seeded_image(&p).await),
        )
        .replace(
            "externalNetworkId: \"\"",
            &format!("externalNetworkId: {}", public_network(&p).await.0),
        )
        .replace("machineFlavor: m1.large", "machineFlavor: m1.medium");
    let plan = |values: String| {
        std::fs::write(dir.join("values.yaml"), values).unwrap();
        let out = crate::support::capi_manage()
            .args(["plan", "--online", "example"])
            .current_dir(repo.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) =
        plan(values.replacen("machineFlavor: m1.medium", "machineFlavor: m1.medim", 1));
    assert!(!ok, "{text}");
    assert!(
        text.contains("problem: controlPlane.machineFlavor: flavor m1.medim not found; similar: "),
        "{text}"
    );
    assert!(
        text.contains("the cloud preflight found 1 problem(s)"),
        "{text}"
    );
    // bootstrap runs the same preflight first: it stops there, before the kind cluster (the
    // Docker engine it names does not exist, so getting further would fail differently).
    let out = crate::support::capi_manage()
        .args([
            "bootstrap",
            "example",
            "--yes",
            "--docker-host",
            "tcp://127.0.0.1:9",
        ])
        .current_dir(repo.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("cannot hold this cluster: controlPlane.machineFlavor: flavor m1.medim not found; similar: "),
        "{stderr}"
    );
    assert!(!dir.join(".capi-manage/state.json").exists());
    let (ok, text) = plan(values);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("project {} ({})", p.name, p.id)),
        "{text}"
    );
    assert!(
        text.contains("the cloud has what the values need"),
        "{text}"
    );
}
