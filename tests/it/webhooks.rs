//! The real Cluster API and CAPO webhooks on a real kube-apiserver: the release components built
//! from upstream's release sources (see `release_mirror.rs`), vendored and applied by
//! capi-manage, and the upstream managers serving their webhooks (see `webhooks.rs`).

use std::time::{Duration, Instant};

use ::kube::api::{DynamicObject, PostParams};
use capi_manage::kube::Discovery;
use capi_manage::manifest::Object;
use serde_json::{Value, json};

use crate::support::capi::{api_in, apply_all};
use crate::support::release_mirror::release_components;
use crate::support::webhooks::Webhooks;
use crate::support::{ControlPlane, error_chain};

const NS: &str = "webhooks";

/// A control plane with cert-manager (the stand-in), Cluster API, ORC and CAPO installed from
/// the mirror through capi-manage's vendor and apply, and the real webhooks answering.
async fn cluster() -> (ControlPlane, Webhooks, Discovery) {
    let cp = ControlPlane::start().await;
    let webhooks = Webhooks::start(&cp).await;
    let mut objects = release_components().await;
    objects.push(Object::new(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    ));
    let d = Discovery::new(cp.client().await);
    let applied = Instant::now();
    apply_all(&d, &objects).await;
    webhooks.wait_ready(Duration::from_secs(180)).await;
    eprintln!("webhooks answering {:?} after the apply", applied.elapsed());
    for (name, ready, rss) in webhooks.report() {
        eprintln!("  {name}: answered {ready:?} after its start, RSS {rss:?} KiB");
    }
    (cp, webhooks, d)
}

async fn create(d: &Discovery, o: Value) -> Result<DynamicObject, ::kube::Error> {
    let api = api_in(
        d,
        o["apiVersion"].as_str().unwrap(),
        o["kind"].as_str().unwrap(),
        NS,
    )
    .await;
    api.create(&PostParams::default(), &serde_json::from_value(o).unwrap())
        .await
}

async fn get(d: &Discovery, api_version: &str, kind: &str, name: &str) -> Value {
    let api = api_in(d, api_version, kind, NS).await;
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

fn kcp(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
        "kind": "KubeadmControlPlane",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            // Without the "v": KubeadmControlPlane's defaulting webhook adds it.
            "version": "1.33.4",
            "machineTemplate": {"infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                "kind": "OpenStackMachineTemplate", "name": format!("{name}-machines")}},
            "kubeadmConfigSpec": {"clusterConfiguration": {
                "apiServer": {"extraArgs": {"cloud-provider": "external"}}}}
        }
    })
}

fn openstack_cluster(name: &str, rule: Value) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "OpenStackCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "identityRef": {"cloudName": "openstack", "name": format!("{name}-cloud-config")},
            "managedSecurityGroups": {"allNodesSecurityGroupRules": [rule]}
        }
    })
}

#[tokio::test]
async fn v1beta1_objects_are_converted_defaulted_and_validated_by_the_real_webhooks() {
    let (cp, webhooks, d) = cluster().await;

    // 1. v1beta1 Cluster and KubeadmControlPlane: stored through the conversion webhook, read
    //    back as v1beta2 in the v1beta2 shape (references by apiGroup, extraArgs as a list).
    create(
        &d,
        json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "Cluster",
            "metadata": {"name": "demo", "namespace": NS},
            "spec": {
                "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
                "controlPlaneRef": {"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
                    "kind": "KubeadmControlPlane", "name": "demo-control-plane"},
                "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                    "kind": "OpenStackCluster", "name": "demo"}
            }
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("create the v1beta1 Cluster: {}", error_chain(&e)));
    let cluster = get(&d, "cluster.x-k8s.io/v1beta2", "Cluster", "demo").await;
    assert_eq!(
        cluster["spec"]["controlPlaneRef"],
        json!({"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": "demo-control-plane"}),
        "{cluster:#}"
    );
    assert_eq!(
        cluster["spec"]["infrastructureRef"],
        json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "OpenStackCluster", "name": "demo"}),
        "{cluster:#}"
    );
    // And back to v1beta1 through the webhook: the v1beta1 shape again (apiVersion and
    //    namespace in the reference; the version is the referenced group's served one).
    let v1beta1 = get(&d, "cluster.x-k8s.io/v1beta1", "Cluster", "demo").await;
    let back = &v1beta1["spec"]["controlPlaneRef"];
    assert!(
        back["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("controlplane.cluster.x-k8s.io/"))
            && back["kind"] == "KubeadmControlPlane"
            && back["name"] == "demo-control-plane"
            && back["namespace"] == NS,
        "{v1beta1:#}"
    );

    create(&d, kcp("demo-control-plane", 3))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create the v1beta1 KubeadmControlPlane: {}",
                error_chain(&e)
            )
        });
    let stored = get(
        &d,
        "controlplane.cluster.x-k8s.io/v1beta2",
        "KubeadmControlPlane",
        "demo-control-plane",
    )
    .await;
    assert_eq!(
        stored["spec"]["machineTemplate"]["spec"]["infrastructureRef"],
        json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "OpenStackMachineTemplate", "name": "demo-control-plane-machines"}),
        "{stored:#}"
    );
    // Defaulted by the mutating webhook (no CRD default can prefix a string).
    assert_eq!(stored["spec"]["version"], "v1.33.4", "{stored:#}");
    assert_eq!(
        stored["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["extraArgs"],
        json!([{"name": "cloud-provider", "value": "external"}]),
        "{stored:#}"
    );

    // 2. KubeadmControlPlane's validation: two replicas with stacked etcd are refused with the
    //    webhook's own message.
    let refused = create(&d, kcp("even", 2)).await.unwrap_err();
    let message = error_chain(&refused);
    assert!(
        message.contains("denied the request")
            && message.contains("cannot be an even number when etcd is stacked"),
        "{message}"
    );

    // 3. CAPO's webhook: a valid OpenStackCluster passes, one whose rule names two remotes is
    //    refused.
    let ssh = json!({"name": "ssh", "direction": "ingress", "etherType": "IPv4", "protocol": "tcp",
        "portRangeMin": 22, "portRangeMax": 22, "remoteIPPrefix": "10.0.0.0/8"});
    create(&d, openstack_cluster("demo", ssh.clone()))
        .await
        .unwrap_or_else(|e| panic!("create the OpenStackCluster: {}", error_chain(&e)));
    let osc = get(
        &d,
        "infrastructure.cluster.x-k8s.io/v1beta1",
        "OpenStackCluster",
        "demo",
    )
    .await;
    assert_eq!(
        osc["spec"]["managedSecurityGroups"]["allNodesSecurityGroupRules"][0]["remoteIPPrefix"],
        "10.0.0.0/8"
    );
    let mut both = ssh;
    both["remoteManagedGroups"] = json!(["controlplane"]);
    let refused = create(&d, openstack_cluster("both-remotes", both))
        .await
        .unwrap_err();
    let message = error_chain(&refused);
    assert!(
        message.contains("denied the request")
            && message.contains(
                "remoteManagedGroups cannot be used with remoteGroupID or remoteIPPrefix"
            ),
        "{message}"
    );

    // The reconcilers stayed idle: seconds later, no controller wrote a phase or conditions.
    for (av, kind, name) in [
        ("cluster.x-k8s.io/v1beta2", "Cluster", "demo"),
        (
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KubeadmControlPlane",
            "demo-control-plane",
        ),
        (
            "infrastructure.cluster.x-k8s.io/v1beta1",
            "OpenStackCluster",
            "demo",
        ),
    ] {
        let o = get(&d, av, kind, name).await;
        let status = &o["status"];
        assert!(
            status.get("conditions").is_none() && status.get("phase").is_none(),
            "{kind} {name} was reconciled: {o:#}"
        );
    }
    for (name, ready, rss) in webhooks.report() {
        assert!(ready.is_some() && rss.is_some(), "{name}");
    }
    drop(webhooks);
    drop(cp);
}

#[tokio::test]
async fn a_wrong_ca_bundle_is_replaced_and_a_killed_manager_answers_again() {
    use base64::Engine;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let (cp, webhooks, d) = cluster().await;
    let crds: ::kube::Api<CustomResourceDefinition> = ::kube::Api::all(d.client().clone());
    let want = base64::engine::general_purpose::STANDARD.encode(webhooks.ca_pem());
    let bundle = |crd: &CustomResourceDefinition| -> Option<String> {
        let c = crd
            .spec
            .conversion
            .as_ref()?
            .webhook
            .as_ref()?
            .client_config
            .as_ref()?;
        Some(base64::engine::general_purpose::STANDARD.encode(&c.ca_bundle.as_ref()?.0))
    };
    assert_eq!(
        bundle(&crds.get("clusters.cluster.x-k8s.io").await.unwrap()).as_deref(),
        Some(want.as_str())
    );

    // Another injector leaves a wrong (valid, but not the signing) CA: it is replaced.
    let wrong = base64::engine::general_purpose::STANDARD.encode(cp.ca_pem());
    let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": wrong}}}}});
    crds.patch(
        "clusters.cluster.x-k8s.io",
        &Default::default(),
        &::kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    // The core manager dies: it is started again and answers again.
    let before = webhooks.status()["capi"].clone();
    // SAFETY: kill(2) on the manager this test's harness started.
    unsafe { libc::kill(before.pid.unwrap() as i32, libc::SIGKILL) };

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = webhooks.status()["capi"].clone();
        let crd = crds.get("clusters.cluster.x-k8s.io").await.unwrap();
        if bundle(&crd).as_deref() == Some(want.as_str())
            && now.starts > before.starts
            && now.answers
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: caBundle {:?}, capi {now:?}",
            bundle(&crd)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A v1beta1 write goes through the conversion webhook with the right CA again.
    create(
        &d,
        json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
               "metadata": {"name": "after", "namespace": NS},
               "spec": {"infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                   "kind": "OpenStackCluster", "name": "after"}}}),
    )
    .await
    .unwrap_or_else(|e| panic!("create after the recovery: {}", error_chain(&e)));
    drop(webhooks);
    drop(cp);
}

#[test]
fn the_mirror_serves_the_releases_as_their_makefiles_build_them() {
    use crate::support::release_mirror::{capi_path, capo_path, orc_path};
    let files = crate::support::release_mirror::release_files();
    let capo_image = "registry.k8s.io/capi-openstack/capi-openstack-controller:v0.14.6";
    for (path, image) in [
        (
            capi_path("core-components.yaml"),
            "registry.k8s.io/cluster-api/cluster-api-controller:v1.13.3".to_string(),
        ),
        (
            capi_path("bootstrap-components.yaml"),
            "registry.k8s.io/cluster-api/kubeadm-bootstrap-controller:v1.13.3".to_string(),
        ),
        (
            capi_path("control-plane-components.yaml"),
            "registry.k8s.io/cluster-api/kubeadm-control-plane-controller:v1.13.3".to_string(),
        ),
        (capo_path(), capo_image.to_string()),
    ] {
        let objects =
            capi_manage::manifest::parse_str(std::str::from_utf8(&files[&path]).unwrap(), None)
                .unwrap();
        let deployments: Vec<&Object> = objects
            .iter()
            .filter(|o| o.kind() == "Deployment")
            .collect();
        assert_eq!(deployments.len(), 1, "{path}");
        let container = &deployments[0].value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], image.as_str(), "{path}");
        assert_eq!(container["imagePullPolicy"], "IfNotPresent", "{path}");
        // Conversion webhooks and CA injection come with the release.
        let converted = objects
            .iter()
            .filter(|o| o.kind() == "CustomResourceDefinition")
            .filter(|o| o.value["spec"]["conversion"]["strategy"] == "Webhook")
            .count();
        assert!(converted > 0, "{path}: no conversion webhook");
        for o in objects.iter().filter(|o| {
            o.kind().ends_with("WebhookConfiguration")
                || o.value["spec"]["conversion"]["strategy"] == "Webhook"
        }) {
            assert!(
                o.value["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_string(),
                "{path}: {o}"
            );
        }
        // clusterctl's variables are left for clusterctl's processing.
        assert!(
            std::str::from_utf8(&files[&path]).unwrap().contains("${"),
            "{path}"
        );
    }
    let orc = crate::support::fixtures()
        .join("releases/openstack-resource-controller-v2.6.0/dist/install.yaml");
    assert_eq!(files[&orc_path()], std::fs::read(orc).unwrap());
}
