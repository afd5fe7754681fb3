//! The real openstack-cluster chart, rendered and installed by the real helm-controller: the
//! cluster `clusters/example` as capi-manage renders it, with its HelmRepositories pointed at a
//! loopback Helm repository serving the charts' releases, on a control plane with the real
//! Flux, Cluster API, CAPO and ORC releases and the real Cluster API and CAPO webhooks. The
//! stand-in plays only the add-on provider's CRDs and the kubeadm controllers' results; no
//! cloud is needed, as this test stops when helm-controller has installed the releases.

use std::time::Duration;

use capi_manage::capi::readiness::{self, ClusterRef};
use capi_manage::kube::Discovery;
use capi_manage::manifest::Object;
use capi_manage::observe::Silent;
use kube::api::ListParams;
use regex::Regex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::capi::{api_in, apply_all, flux_and_sealed_secrets_crds};
use crate::support::flux::FluxControllers;
use crate::support::helm_repo::HelmRepo;
use crate::support::infra::{Infra, InfraOptions};
use crate::support::release_mirror::release_components;
use crate::support::webhooks::Webhooks;
use crate::support::{ControlPlane, Options, fixtures, project_root};

const NS: &str = "capi-self";

/// Keeps whatever serves the Cluster API of a control plane alive.
pub type ClusterApi = Box<dyn std::any::Any + Send>;

/// The Cluster API, CAPO and ORC APIs on `cp` as the real releases install them (the test
/// mirror's files, vendored by capi-manage), served by the real managers' webhooks: the chart's
/// `v1beta1` objects are converted by Cluster API's own conversion webhook and checked by its
/// defaulting and validating webhooks.
pub async fn cluster_api(cp: &ControlPlane, d: &Discovery) -> ClusterApi {
    let webhooks = Webhooks::start(cp).await;
    let mut bundle = flux_and_sealed_secrets_crds();
    bundle.extend(release_components().await);
    apply_all(d, &bundle).await;
    webhooks.wait_ready(Duration::from_secs(180)).await;
    Box::new(webhooks)
}

/// `clusters/example` as capi-manage renders it, with every HelmRepository pointed at `repo`
/// and every HelmRelease at a chart version `repo` serves. Returns the objects and, per chart,
/// the version `clusters/bases` pins and the one served.
pub fn example_for(repo: &HelmRepo) -> (Vec<Object>, Vec<(String, String, String)>) {
    let mut objects =
        capi_manage::render::render(&project_root().join("clusters/example")).unwrap();
    let mut versions = Vec::new();
    for o in &mut objects {
        match o.kind() {
            "HelmRepository" => o.value["spec"]["url"] = json!(repo.url),
            "HelmRelease" if o.api_version().starts_with("helm.toolkit.fluxcd.io/") => {
                let spec = &mut o.value["spec"]["chart"]["spec"];
                let chart = spec["chart"].as_str().unwrap().to_string();
                let pinned = spec["version"].as_str().unwrap().to_string();
                let served = repo
                    .version(&chart)
                    .unwrap_or_else(|| panic!("the fixtures have no chart {chart}"))
                    .to_string();
                // The fixtures hold one release per chart: a pin that differs (clusters/bases
                // before it moves to the fixtures' releases) is tested at the served release.
                spec["version"] = json!(served);
                versions.push((chart, pinned, served));
            }
            _ => {}
        }
    }
    (objects, versions)
}

/// The CAPI and CAPO objects upstream's snapshot (`tests/__snapshot__/snapshot_base_test.yaml
/// .snap`, release `RELEASE-NAME`, node group `group-1`) holds, as (kind, name pattern) for
/// release `release` and node group `group`: template names end in a hash of their spec.
fn snapshot_names(release: &str, group: &str) -> Vec<(String, Regex)> {
    let snap = fixtures().join(
        "charts/capi-helm-charts/charts/openstack-cluster/tests/__snapshot__/snapshot_base_test.yaml.snap",
    );
    let text = std::fs::read_to_string(&snap).unwrap();
    let tests: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(&text).unwrap();
    let hash = Regex::new("-[0-9a-f]{8}$").unwrap();
    let mut out = Vec::new();
    for (_, docs) in tests {
        for (_, doc) in docs.as_mapping().unwrap() {
            let o: Value = serde_yaml_ng::from_str(doc.as_str().unwrap()).unwrap();
            let group_of = o["apiVersion"].as_str().unwrap_or_default();
            if !group_of.contains("cluster.x-k8s.io/") {
                continue;
            }
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap()
                .replace("RELEASE-NAME", release)
                .replace("group-1", group);
            let pattern = if hash.is_match(&name) {
                format!("^{}-[0-9a-f]{{8}}$", regex::escape(&name[..name.len() - 9]))
            } else {
                format!("^{}$", regex::escape(&name))
            };
            out.push((
                o["kind"].as_str().unwrap().to_string(),
                Regex::new(&pattern).unwrap(),
            ));
        }
    }
    assert!(out.len() >= 8, "CAPI objects in {}", snap.display());
    out
}

/// The release name of the cluster's HelmRelease (`clusters/<name>` patches it).
fn release_of(objects: &[Object]) -> String {
    objects
        .iter()
        .find(|o| o.kind() == "HelmRelease" && o.name() == "cluster")
        .map(|o| o.value["spec"]["releaseName"].as_str().unwrap().to_string())
        .unwrap()
}

/// The stand-in for OpenStack and the controllers' results (the add-on provider's CRDs among
/// them, which the chart's addons need), on `cp` alone.
fn stand_in(cp: &ControlPlane, d: &Discovery, release: &str) -> Infra {
    Infra::start(
        d.clone(),
        vec![],
        InfraOptions {
            namespace: NS.into(),
            cluster: release.to_string(),
            kubeconfig: std::fs::read(cp.kubeconfig_path()).unwrap(),
        },
    )
}

async fn names(d: &Discovery, api_version: &str, kind: &str) -> Vec<String> {
    api_in(d, api_version, kind, NS)
        .await
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect()
}

fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "KubeadmControlPlane" => "controlplane.cluster.x-k8s.io/v1beta2",
        "KubeadmConfigTemplate" | "KubeadmConfig" => "bootstrap.cluster.x-k8s.io/v1beta2",
        k if k.starts_with("OpenStack") => "infrastructure.cluster.x-k8s.io/v1beta1",
        _ => "cluster.x-k8s.io/v1beta2",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_controller_installs_the_real_charts_with_the_example_values() {
    let cp = ControlPlane::start_with(Options::kwok()).await;
    let d = Discovery::new(cp.client().await);
    let _capi = cluster_api(&cp, &d).await;
    let mut flux = FluxControllers::start_with_helm(&cp);
    let repo = HelmRepo::serve_fixtures();
    let (objects, versions) = example_for(&repo);
    for (chart, pinned, served) in &versions {
        if pinned != served {
            eprintln!("note: clusters/bases pins {chart} {pinned}; testing the fixtures' {served}");
        }
    }
    assert_eq!(
        versions.len(),
        3,
        "the cluster's chart, add-on provider and janitor"
    );
    let release = release_of(&objects);
    let values: Value = {
        let cm = objects.iter().find(|o| o.kind() == "ConfigMap").unwrap();
        serde_yaml_ng::from_str(cm.value["data"]["values.yaml"].as_str().unwrap()).unwrap()
    };
    let _infra = stand_in(&cp, &d, &release);
    apply_all(&d, &objects).await;

    // helm-controller's part is done when every HelmRelease is Ready. (The cluster itself
    // becomes ready only with CAPO reconciling against a cloud: the end-to-end test does that.)
    let releases = readiness::helm_releases(&objects);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut pending = releases.clone();
    while !pending.is_empty() {
        flux.assert_running();
        let mut still = Vec::new();
        for (ns, name) in &pending {
            let hr = api_in(&d, "helm.toolkit.fluxcd.io/v2", "HelmRelease", ns)
                .await
                .get_opt(name)
                .await
                .unwrap();
            let ready = hr.as_ref().is_some_and(|hr| {
                hr.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if !ready {
                still.push((ns.clone(), name.clone()));
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "HelmReleases not Ready after 300 s: {pending:?}\n{}",
                flux.log_tails(40)
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    assert_eq!(releases.len(), 3, "{releases:?}");
    assert!(repo.requests() >= 4, "index and the three charts fetched");

    // helm-controller made the release: Helm's storage, at the served chart version.
    let hr = api_in(&d, "helm.toolkit.fluxcd.io/v2", "HelmRelease", NS)
        .await
        .get("cluster")
        .await
        .unwrap();
    let history = &hr.data["status"]["history"][0];
    assert_eq!(history["chartName"], "openstack-cluster");
    assert_eq!(history["chartVersion"], "0.27.0");
    assert_eq!(history["appVersion"], "89334f5");
    assert_eq!(history["status"], "deployed");
    let storage = names(&d, "v1", "Secret").await;
    assert!(
        storage.contains(&format!("sh.helm.release.v1.{release}.v1")),
        "{storage:?}"
    );

    // The CAPI and CAPO objects are the chart's, with the names its snapshots predict.
    let group = values["nodeGroups"][0]["name"].as_str().unwrap();
    for (kind, pattern) in snapshot_names(&release, group) {
        let found: Vec<String> = names(&d, api_version_of(&kind), &kind)
            .await
            .into_iter()
            .filter(|n| pattern.is_match(n))
            .collect();
        assert_eq!(found.len(), 1, "{kind} matching {pattern}: {found:?}");
        let o = api_in(&d, api_version_of(&kind), &kind, NS)
            .await
            .get(&found[0])
            .await
            .unwrap();
        let annotations = o.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("meta.helm.sh/release-name"),
            Some(&release),
            "{kind} {} installed by Helm",
            found[0]
        );
    }
    let kcp = api_in(
        &d,
        "controlplane.cluster.x-k8s.io/v1beta2",
        "KubeadmControlPlane",
        NS,
    )
    .await
    .get(&format!("{release}-control-plane"))
    .await
    .unwrap();
    assert_eq!(
        kcp.data["spec"]["replicas"], values["controlPlane"]["machineCount"],
        "the example's control plane"
    );
}

/// Must-show of the fidelity issue: values the real webhooks refuse (two control-plane
/// machines: KubeadmControlPlane refuses an even count with stacked etcd) end the cluster-ready
/// wait at helm-controller's first refused install, with the webhook's own message naming the
/// object, long before the wait's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_real_webhooks_refuse_fail_the_wait_with_their_message() {
    let cp = ControlPlane::start_with(Options::kwok()).await;
    let d = Discovery::new(cp.client().await);
    let _capi = cluster_api(&cp, &d).await;
    let mut flux = FluxControllers::start_with_helm(&cp);
    let repo = HelmRepo::serve_fixtures();
    let (mut objects, _) = example_for(&repo);
    let cm = objects
        .iter_mut()
        .find(|o| o.kind() == "ConfigMap")
        .unwrap();
    let mut values: Value =
        serde_yaml_ng::from_str(cm.value["data"]["values.yaml"].as_str().unwrap()).unwrap();
    values["controlPlane"]["machineCount"] = json!(2);
    cm.value["data"]["values.yaml"] = json!(serde_yaml_ng::to_string(&values).unwrap());
    let release = release_of(&objects);
    let _infra = stand_in(&cp, &d, &release);
    apply_all(&d, &objects).await;

    let cluster = ClusterRef {
        namespace: NS.into(),
        name: release.clone(),
        helm_releases: readiness::helm_releases(&objects),
    };
    let timeout = Duration::from_secs(300);
    let started = std::time::Instant::now();
    let e = readiness::wait_ready(&d, &cluster, timeout, &Silent, &CancellationToken::new())
        .await
        .expect_err("the refused release fails the wait");
    flux.assert_running();
    let line = e.to_string();
    assert!(
        matches!(e, readiness::ReadinessError::Rejected { .. }),
        "{line}\n{}",
        flux.log_tails(20)
    );
    assert!(
        line.contains("cannot be an even number when etcd is stacked"),
        "{line}"
    );
    assert!(line.contains(&format!("{release}-control-plane")), "{line}");
    assert!(line.contains("HelmRelease capi-self/cluster"), "{line}");
    assert!(started.elapsed() < timeout / 2, "{:?}", started.elapsed());
    eprintln!(
        "refused after {:.1}s: {line}",
        started.elapsed().as_secs_f64()
    );
}
