//! Is a workload cluster ready? The Cluster, its MachineDeployments, and the Flux and addon
//! releases that build it, summarised in one line while waiting.

use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::kube::wait::summary;
use crate::kube::{Discovery, RequestError};
use crate::manifest::Gvk;
use crate::observe::{Observer, ObserverExt};

/// Label CAPI puts on every object of a cluster.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";

/// Why a readiness wait failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadinessError {
    /// Listing or reading objects failed.
    #[error("cannot read {what}")]
    Read {
        /// What was read.
        what: String,
        /// Why.
        #[source]
        source: RequestError,
    },
    /// Discovery failed.
    #[error("cannot discover {what}")]
    Discovery {
        /// The kind.
        what: String,
        /// Why.
        #[source]
        source: crate::kube::Error,
    },
    /// The cluster was not ready in time.
    #[error("cluster {namespace}/{name} not ready after {}s: {last}", timeout.as_secs())]
    Timeout {
        /// The cluster's namespace.
        namespace: String,
        /// The cluster.
        name: String,
        /// How long we waited.
        timeout: Duration,
        /// What was still missing when we gave up.
        last: String,
    },
    /// helm-controller's attempt to install or upgrade a release of the cluster failed because
    /// the API server refused one of the chart's objects (an admission webhook denied it, or it
    /// is invalid): the same chart and values fail again on every retry.
    #[error("cluster {namespace}/{name}: {rejection}")]
    Rejected {
        /// The cluster's namespace.
        namespace: String,
        /// The cluster.
        name: String,
        /// The release and the API server's own message.
        rejection: Rejection,
    },
    /// Cancelled.
    #[error("cancelled while waiting for the cluster")]
    Cancelled,
}

/// A Flux HelmRelease whose latest install or upgrade the API server refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HelmRelease's namespace.
    pub namespace: String,
    /// The HelmRelease's name.
    pub name: String,
    /// Failed install and upgrade attempts counted by helm-controller so far.
    pub failures: i64,
    /// helm-controller's message (it carries the API server's, which names the object), on
    /// one line.
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HelmRelease {}/{} was refused by the API server: {}",
            self.namespace, self.name, self.message
        )
    }
}

/// Where a cluster is and which releases build it.
#[derive(Debug, Clone)]
pub struct ClusterRef {
    /// The namespace of the Cluster object.
    pub namespace: String,
    /// The Cluster's name.
    pub name: String,
    /// Flux HelmReleases (namespace, name) that must be Ready too (e.g. the cluster's chart
    /// and the addon provider).
    pub helm_releases: Vec<(String, String)>,
}

/// The Flux HelmReleases among a cluster's rendered objects, as (namespace, name): the releases
/// a readiness check waits for.
pub fn helm_releases(objects: &[crate::manifest::Object]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| {
            o.kind() == "HelmRelease" && o.api_version().starts_with("helm.toolkit.fluxcd.io/")
        })
        .map(|o| {
            (
                o.namespace().unwrap_or("default").to_string(),
                o.name().to_string(),
            )
        })
        .collect()
}

/// One look at the cluster: done, or what is still pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Everything is ready.
    pub ready: bool,
    /// One part per object: `Cluster prod: Available=True`, `MachineDeployment md-0: 1/2 ready`.
    pub parts: Vec<String>,
    /// Releases whose latest attempt the API server refused (see [`helm_release_rejection`]).
    pub rejected: Vec<Rejection>,
}

impl Readiness {
    /// The parts that are not ready, or all of them when every one is.
    pub fn line(&self) -> String {
        self.parts.join("; ")
    }
}

fn is_true(o: &Value, kind: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn dynamic(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// Whether a Cluster object is ready: v1beta2 `Available=True`, or v1beta1 `Ready=True`, and
/// not paused; with `controlPlaneReady`/`infrastructureReady` (v1beta1) or the v1beta2
/// initialization flags where they are reported.
pub fn cluster_ready(cluster: &Value) -> bool {
    if cluster["spec"]["paused"] == true {
        return false;
    }
    is_true(cluster, "Available") || is_true(cluster, "Ready")
}

/// Whether a MachineDeployment has all its replicas ready.
pub fn machine_deployment_ready(md: &Value) -> (bool, String) {
    let want = md["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = md["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let generation = md["metadata"]["generation"].as_i64();
    let observed = md["status"]["observedGeneration"].as_i64();
    let current = match (generation, observed) {
        (Some(g), Some(o)) => o >= g,
        _ => true,
    };
    (ready >= want && current, format!("{ready}/{want} ready"))
}

/// Whether a Flux HelmRelease is Ready for its current generation and not suspended.
pub fn helm_release_ready(hr: &Value) -> bool {
    if hr["spec"]["suspend"] == true {
        return false;
    }
    let generation = hr["metadata"]["generation"].as_i64();
    let ready = hr["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let Some(ready) = ready else { return false };
    let observed = ready["observedGeneration"]
        .as_i64()
        .or(hr["status"]["observedGeneration"].as_i64());
    ready["status"] == "True"
        && match (generation, observed) {
            (Some(g), Some(o)) => o >= g,
            _ => true,
        }
}

/// Whether helm-controller's latest install or upgrade of `hr` (a Flux HelmRelease, v2) failed
/// because the API server refused an object of the chart: the `Released` condition (or `Ready`,
/// which helm-controller summarises from it) is False with reason `InstallFailed` or
/// `UpgradeFailed` for the current generation, and its message carries the API server's
/// refusal, `admission webhook "…" denied the request` or `… is invalid: …`. Other failures
/// (a webhook not reachable yet, a timeout, a kind not served yet) may pass on a retry and are
/// not rejections. The counter is `status.installFailures + status.upgradeFailures`.
pub fn helm_release_rejection(hr: &Value) -> Option<Rejection> {
    let generation = hr["metadata"]["generation"].as_i64();
    let conditions = hr["status"]["conditions"].as_array()?;
    let failed = ["Released", "Ready"].iter().find_map(|ty| {
        conditions.iter().find(|c| {
            c["type"] == *ty
                && c["status"] == "False"
                && matches!(
                    c["reason"].as_str(),
                    Some("InstallFailed" | "UpgradeFailed")
                )
        })
    })?;
    let observed = failed["observedGeneration"]
        .as_i64()
        .or(hr["status"]["observedGeneration"].as_i64());
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
    {
        return None;
    }
    let message = failed["message"].as_str().unwrap_or_default();
    let refused = (message.contains("admission webhook \"")
        && message.contains("denied the request"))
        || message.contains(" is invalid: ");
    if !refused {
        return None;
    }
    let failures = ["installFailures", "upgradeFailures"]
        .iter()
        .filter_map(|k| hr["status"][k].as_i64())
        .sum();
    Some(Rejection {
        namespace: hr["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: hr["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        failures,
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

/// The rejection that ends a wait: one reported for an attempt made during the wait, i.e. with
/// more failures than the release had at the wait's first look (`baseline`, by release). A
/// rejection already there at the first look may be stale (values fixed since, and
/// helm-controller not retried yet): it is waited out until the next attempt reports again.
pub fn fresh_rejection<'a>(
    rejected: &'a [Rejection],
    baseline: &std::collections::HashMap<(String, String), i64>,
) -> Option<&'a Rejection> {
    rejected.iter().find(|r| {
        let before = baseline
            .get(&(r.namespace.clone(), r.name.clone()))
            .copied()
            .unwrap_or(0);
        r.failures > before
    })
}

async fn api(
    discovery: &Discovery,
    gvks: &[(&str, &str)],
    namespace: &str,
) -> Result<Option<Api<DynamicObject>>, ReadinessError> {
    for (api_version, kind) in gvks {
        let gvk = Gvk::from_api_version(api_version, kind);
        let found = discovery
            .resolve(&gvk)
            .await
            .map_err(|source| ReadinessError::Discovery {
                what: gvk.to_string(),
                source,
            })?;
        if let Some(r) = found {
            return Ok(Some(Api::namespaced_with(
                discovery.client().clone(),
                namespace,
                &r.api,
            )));
        }
    }
    Ok(None)
}

const CLUSTER: &[(&str, &str)] = &[
    ("cluster.x-k8s.io/v1beta2", "Cluster"),
    ("cluster.x-k8s.io/v1beta1", "Cluster"),
];
const MACHINE_DEPLOYMENT: &[(&str, &str)] = &[
    ("cluster.x-k8s.io/v1beta2", "MachineDeployment"),
    ("cluster.x-k8s.io/v1beta1", "MachineDeployment"),
];
const FLUX_HELM_RELEASE: &[(&str, &str)] = &[("helm.toolkit.fluxcd.io/v2", "HelmRelease")];
const ADDON_KINDS: &[&str] = &["HelmRelease", "Manifests"];

/// Looks once at the cluster and everything it waits on.
pub async fn check(discovery: &Discovery, c: &ClusterRef) -> Result<Readiness, ReadinessError> {
    let read = |what: String| move |source| ReadinessError::Read { what, source };
    let mut parts = Vec::new();
    let mut rejected = Vec::new();
    let mut ready = true;

    for (ns, name) in &c.helm_releases {
        let what = format!("HelmRelease {ns}/{name}");
        let Some(api) = api(discovery, FLUX_HELM_RELEASE, ns).await? else {
            parts.push(format!("{what}: kind not served"));
            ready = false;
            continue;
        };
        match api
            .get_opt(name)
            .await
            .map_err(RequestError::from)
            .map_err(read(what.clone()))?
        {
            Some(hr) if helm_release_ready(&dynamic(&hr)) => parts.push(format!("{what}: Ready")),
            Some(hr) => {
                ready = false;
                let v = dynamic(&hr);
                match helm_release_rejection(&v) {
                    Some(r) => {
                        parts.push(format!("{what}: refused: {}", r.message));
                        rejected.push(r);
                    }
                    None => parts.push(format!("{what}: {}", or_none(summary(&hr)))),
                }
            }
            None => {
                ready = false;
                parts.push(format!("{what}: not found"));
            }
        }
    }

    let what = format!("Cluster {}/{}", c.namespace, c.name);
    let cluster = match api(discovery, CLUSTER, &c.namespace).await? {
        Some(api) => api
            .get_opt(&c.name)
            .await
            .map_err(RequestError::from)
            .map_err(read(what.clone()))?,
        None => None,
    };
    match &cluster {
        Some(cl) if cluster_ready(&dynamic(cl)) => parts.push(format!("Cluster {}: ready", c.name)),
        Some(cl) => {
            ready = false;
            let paused = if cl.data["spec"]["paused"] == true {
                "paused; "
            } else {
                ""
            };
            parts.push(format!(
                "Cluster {}: {paused}{}",
                c.name,
                or_none(summary(cl))
            ));
        }
        None => {
            ready = false;
            parts.push(format!("Cluster {}: not created yet", c.name));
        }
    }
    if cluster.is_none() {
        return Ok(Readiness {
            ready,
            parts,
            rejected,
        });
    }

    // By `spec.clusterName`, not by label: the chart labels neither its MachineDeployments nor
    // its addons with the cluster's name (only Cluster API's defaulting webhook adds it to
    // MachineDeployments).
    let of_cluster = |o: &DynamicObject| o.data["spec"]["clusterName"] == c.name.as_str();
    let all = ListParams::default();
    if let Some(api) = api(discovery, MACHINE_DEPLOYMENT, &c.namespace).await? {
        let mds = api
            .list(&all)
            .await
            .map_err(RequestError::from)
            .map_err(read(format!("MachineDeployments of {what}")))?;
        for md in mds.items.iter().filter(|o| of_cluster(o)) {
            let (ok, line) = machine_deployment_ready(&dynamic(md));
            ready &= ok;
            parts.push(format!(
                "MachineDeployment {}: {line}",
                md.metadata.name.as_deref().unwrap_or("?")
            ));
        }
    }
    for kind in ADDON_KINDS {
        if let Some(api) = api(
            discovery,
            &[("addons.stackhpc.com/v1alpha1", kind)],
            &c.namespace,
        )
        .await?
        {
            let items = api
                .list(&all)
                .await
                .map_err(RequestError::from)
                .map_err(read(format!("addon {kind}s of {what}")))?;
            for a in items.items.iter().filter(|o| of_cluster(o)) {
                let phase = a.data["status"]["phase"].as_str().unwrap_or("Pending");
                ready &= phase == "Deployed";
                parts.push(format!(
                    "addon {kind} {}: {phase}",
                    a.metadata.name.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    Ok(Readiness {
        ready,
        parts,
        rejected,
    })
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "no conditions yet".into()
    } else {
        s
    }
}

/// Waits until [`check`] reports the cluster ready, reporting each change of the summary.
/// Fails at once, with the API server's message, when an attempt of helm-controller made
/// during the wait was refused by the API server ([`fresh_rejection`]): with the cluster's
/// `retries: -1` helm-controller would retry forever, and the same objects are refused each
/// time, so waiting for the timeout only hides the cause.
pub async fn wait_ready(
    discovery: &Discovery,
    c: &ClusterRef,
    timeout: Duration,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Readiness, ReadinessError> {
    let start = Instant::now();
    let mut last = String::new();
    let mut delay = Duration::from_millis(200);
    let mut baseline: Option<std::collections::HashMap<(String, String), i64>> = None;
    loop {
        // A check only reads: dropping it at Ctrl-C leaves nothing behind.
        let checked = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ReadinessError::Cancelled),
            checked = check(discovery, c) => checked,
        };
        let r = match checked {
            Ok(r) => r,
            Err(ReadinessError::Read { source, .. }) if source.is_transient() => Readiness {
                ready: false,
                parts: vec![format!("API error: {source}")],
                rejected: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        match &baseline {
            None => {
                baseline = Some(
                    r.rejected
                        .iter()
                        .map(|x| ((x.namespace.clone(), x.name.clone()), x.failures))
                        .collect(),
                )
            }
            Some(b) => {
                if let Some(x) = fresh_rejection(&r.rejected, b) {
                    return Err(ReadinessError::Rejected {
                        namespace: c.namespace.clone(),
                        name: c.name.clone(),
                        rejection: x.clone(),
                    });
                }
            }
        }
        if r.ready {
            observer.success(
                format!("cluster {}/{} ready", c.namespace, c.name),
                Some(start.elapsed()),
            );
            return Ok(r);
        }
        let line = r.line();
        if line != last {
            observer.waiting(
                format!("cluster {}/{}", c.namespace, c.name),
                Some(line.clone()),
            );
            last = line;
        }
        if start.elapsed() >= timeout {
            return Err(ReadinessError::Timeout {
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                timeout,
                last,
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(ReadinessError::Cancelled),
            _ = tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clusters_are_ready_by_v1beta2_or_v1beta1_conditions_and_never_when_paused() {
        let v2 = json!({"spec": {}, "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        let v1 =
            json!({"spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let no = json!({"spec": {}, "status": {"conditions": [{"type": "Available", "status": "False"}]}});
        let paused = json!({"spec": {"paused": true}, "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        assert!(cluster_ready(&v2));
        assert!(cluster_ready(&v1));
        assert!(!cluster_ready(&no));
        assert!(!cluster_ready(&paused));
        assert!(!cluster_ready(&json!({})));
    }

    #[test]
    fn machine_deployments_need_every_replica_for_the_current_generation() {
        let md = |replicas, ready, generation, observed| {
            json!({"metadata": {"generation": generation}, "spec": {"replicas": replicas},
                   "status": {"readyReplicas": ready, "observedGeneration": observed}})
        };
        assert_eq!(
            machine_deployment_ready(&md(2, 2, 3, 3)),
            (true, "2/2 ready".into())
        );
        assert!(!machine_deployment_ready(&md(2, 1, 3, 3)).0);
        assert!(!machine_deployment_ready(&md(2, 2, 3, 2)).0);
    }

    #[test]
    fn helm_releases_are_ready_for_their_generation_and_not_suspended() {
        let hr = |status: &str, generation: i64, observed: i64, suspend: bool| {
            json!({"metadata": {"generation": generation}, "spec": {"suspend": suspend},
                   "status": {"conditions": [{"type": "Ready", "status": status, "observedGeneration": observed}]}})
        };
        assert!(helm_release_ready(&hr("True", 2, 2, false)));
        assert!(!helm_release_ready(&hr("True", 2, 1, false)));
        assert!(!helm_release_ready(&hr("False", 2, 2, false)));
        assert!(!helm_release_ready(&hr("True", 2, 2, true)));
        assert!(!helm_release_ready(&json!({"metadata": {}})));
    }

    fn failed_release(
        ty: &str,
        reason: &str,
        message: &str,
        generation: i64,
        observed: i64,
    ) -> Value {
        json!({"metadata": {"name": "cluster", "namespace": "capi-self", "generation": generation},
               "status": {"installFailures": 2, "upgradeFailures": 1, "conditions": [
                   {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Running 'install' action"},
                   {"type": ty, "status": "False", "reason": reason, "message": message, "observedGeneration": observed}]}})
    }

    const DENIED: &str = "Helm install failed for release capi-self/example with chart openstack-cluster@0.27.0: \
        failed to create resource: admission webhook \"validation.kubeadmcontrolplane.controlplane.cluster.x-k8s.io\" \
        denied the request: KubeadmControlPlane.controlplane.cluster.x-k8s.io \"example-control-plane\" is invalid: \
        spec.replicas: Forbidden: cannot be an even number when etcd is stacked";

    #[test]
    fn a_release_refused_by_the_api_server_is_a_rejection_for_its_generation() {
        let r = helm_release_rejection(&failed_release("Released", "InstallFailed", DENIED, 3, 3))
            .expect("a webhook denial is a rejection");
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str()),
            ("capi-self", "cluster")
        );
        assert_eq!(r.failures, 3, "install and upgrade failures");
        assert!(
            r.message
                .contains("cannot be an even number when etcd is stacked")
        );
        assert!(!r.message.contains('\n'));
        let line = ReadinessError::Rejected {
            namespace: "capi-self".into(),
            name: "example".into(),
            rejection: r,
        }
        .to_string();
        assert!(line.starts_with("cluster capi-self/example: HelmRelease capi-self/cluster was refused by the API server: Helm install failed"), "{line}");
        assert!(
            line.contains("\"example-control-plane\""),
            "names the object: {line}"
        );

        // Ready carries it when Released is not reported; upgrades count too.
        assert!(
            helm_release_rejection(&failed_release("Ready", "UpgradeFailed", DENIED, 3, 3))
                .is_some()
        );
        // Schema validation refusals are rejections as well.
        let invalid = "Helm upgrade failed: Cluster.cluster.x-k8s.io \"x\" is invalid: spec.clusterNetwork: Invalid value";
        assert!(
            helm_release_rejection(&failed_release("Released", "UpgradeFailed", invalid, 1, 1))
                .is_some()
        );
    }

    #[test]
    fn other_failures_and_stale_generations_are_not_rejections() {
        let unreachable = "Helm install failed: failed calling webhook \"default.kubeadmcontrolplane.controlplane.cluster.x-k8s.io\": \
            Post \"https://capi-kubeadm-control-plane-webhook-service.capi-kubeadm-control-plane-system.svc:443\": connection refused";
        assert_eq!(
            helm_release_rejection(&failed_release(
                "Released",
                "InstallFailed",
                unreachable,
                1,
                1
            )),
            None
        );
        let no_kind = "Helm install failed: resource mapping not found for name: \"x\": no matches for kind \"HelmRelease\"";
        assert_eq!(
            helm_release_rejection(&failed_release("Released", "InstallFailed", no_kind, 1, 1)),
            None
        );
        assert_eq!(
            helm_release_rejection(&failed_release("Released", "InstallFailed", DENIED, 4, 3)),
            None,
            "older generation"
        );
        assert_eq!(
            helm_release_rejection(&failed_release("Released", "ArtifactFailed", DENIED, 1, 1)),
            None
        );
        assert_eq!(
            helm_release_rejection(&json!({"metadata": {"generation": 1}})),
            None
        );
        let mut succeeded = failed_release("Released", "InstallFailed", DENIED, 1, 1);
        succeeded["status"]["conditions"][1]["status"] = json!("True");
        assert_eq!(helm_release_rejection(&succeeded), None);
    }

    #[test]
    fn only_a_rejection_of_an_attempt_made_during_the_wait_ends_it() {
        let r = |failures| Rejection {
            namespace: "capi-self".into(),
            name: "cluster".into(),
            failures,
            message: "denied".into(),
        };
        let key = ("capi-self".to_string(), "cluster".to_string());
        let empty = std::collections::HashMap::new();
        assert_eq!(
            fresh_rejection(&[r(1)], &empty),
            Some(&r(1)),
            "first attempt during the wait"
        );
        let seen = std::collections::HashMap::from([(key, 4)]);
        assert_eq!(
            fresh_rejection(&[r(4)], &seen),
            None,
            "stale: there before the wait"
        );
        assert_eq!(
            fresh_rejection(&[r(5)], &seen),
            Some(&r(5)),
            "retried and refused again"
        );
        assert_eq!(fresh_rejection(&[], &seen), None);
    }

    #[test]
    fn helm_releases_are_the_flux_ones() {
        let objs = crate::manifest::parse_str(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: a, namespace: x}\n---\napiVersion: addons.stackhpc.com/v1alpha1\nkind: HelmRelease\nmetadata: {name: b, namespace: x}\n",
            None,
        )
        .unwrap();
        assert_eq!(
            helm_releases(&objs),
            vec![("x".to_string(), "a".to_string())]
        );
    }
}
