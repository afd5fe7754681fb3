//! A Cluster API cluster's state for a status report: its tree as `clusterctl describe
//! cluster` shows it ([`super::describe`]), what its readiness check sees, and whether its
//! Cluster is paused (and whether a move paused it).

use ::kube::Api;
use ::kube::api::{ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::PAUSED_BY_MOVE;
use super::describe::{Description, Objects, describe};
use super::readiness::{ClusterRef, Readiness, ReadinessError, check};
use crate::kube::{Discovery, RequestError};
use crate::manifest::Gvk;

/// The Cluster kind whose `spec.paused` the status reads.
const CLUSTER_API_VERSION: &str = "cluster.x-k8s.io/v1beta2";

/// A cluster's readiness and pause.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    /// The readiness check's verdict and its parts, one line each.
    pub readiness: Readiness,
    /// Set when the Cluster has `spec.paused`: its controllers do nothing.
    pub paused: Option<Paused>,
    /// The Cluster's tree; `None` when there is no such Cluster.
    pub description: Option<Description>,
}

impl ClusterStatus {
    /// Ready: the readiness check passes and every row of the tree is ready.
    pub fn ready(&self) -> bool {
        self.readiness.ready && self.description.as_ref().is_some_and(|d| d.ready)
    }
}

/// A paused Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// The run id of the move that paused it (its [`PAUSED_BY_MOVE`] annotation), when a move
    /// did: re-running that move finishes it.
    pub by_move: Option<String>,
}

/// Looks once at the cluster: [`check`], then its Cluster's `spec.paused`, then its tree
/// ([`describe_cluster`]).
///
/// # Errors
/// [`ReadinessError::Read`] and [`ReadinessError::Discovery`] when the cluster cannot be read.
pub async fn cluster_status(
    discovery: &Discovery,
    cluster: &ClusterRef,
) -> Result<ClusterStatus, ReadinessError> {
    let readiness = check(discovery, cluster).await?;
    let gvk = Gvk::from_api_version(CLUSTER_API_VERSION, "Cluster");
    let what = format!("Cluster {}/{}", cluster.namespace, cluster.name);
    let resource = discovery
        .resolve(&gvk)
        .await
        .map_err(|source| ReadinessError::Discovery {
            what: what.clone(),
            source,
        })?;
    let paused = match resource {
        None => None,
        Some(r) => {
            let api: Api<DynamicObject> =
                Api::namespaced_with(discovery.client().clone(), &cluster.namespace, &r.api);
            let object = api
                .get_opt(&cluster.name)
                .await
                .map_err(|e| ReadinessError::Read {
                    what,
                    source: RequestError::from(e),
                })?;
            object.as_ref().and_then(paused)
        }
    };
    let description = describe_cluster(discovery, &cluster.namespace, &cluster.name).await?;
    Ok(ClusterStatus {
        readiness,
        paused,
        description,
    })
}

/// The objects of Cluster `namespace/name` that `clusterctl describe cluster` shows, read
/// once, as their tree; `Ok(None)` when the Cluster does not exist (or its kind is not
/// served). The infrastructure and control plane are the objects the Cluster's references
/// name; MachineDeployments, MachineSets and Machines those whose `spec.clusterName` is it.
///
/// # Errors
/// [`ReadinessError::Read`] and [`ReadinessError::Discovery`] when the cluster cannot be read.
pub async fn describe_cluster(
    discovery: &Discovery,
    namespace: &str,
    name: &str,
) -> Result<Option<Description>, ReadinessError> {
    let what = format!("Cluster {namespace}/{name}");
    let Some(clusters) = api(discovery, CLUSTER_API_VERSION, "Cluster", namespace).await? else {
        return Ok(None);
    };
    let read = |what: String| {
        move |e: ::kube::Error| ReadinessError::Read {
            what,
            source: RequestError::from(e),
        }
    };
    let Some(cluster) = clusters.get_opt(name).await.map_err(read(what.clone()))? else {
        return Ok(None);
    };
    let cluster = value(&cluster);
    let mut objects = Objects {
        infrastructure: referenced(discovery, &cluster["spec"]["infrastructureRef"], namespace)
            .await?,
        control_plane: referenced(discovery, &cluster["spec"]["controlPlaneRef"], namespace)
            .await?,
        cluster,
        ..Objects::default()
    };
    for (kind, into) in [
        ("MachineDeployment", &mut objects.machine_deployments),
        ("MachineSet", &mut objects.machine_sets),
        ("Machine", &mut objects.machines),
    ] {
        let Some(api) = api(discovery, CLUSTER_API_VERSION, kind, namespace).await? else {
            continue;
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(read(format!("{kind}s of {what}")))?;
        into.extend(
            list.items
                .iter()
                .map(value)
                .filter(|o| o["spec"]["clusterName"] == name),
        );
    }
    Ok(Some(describe(&objects)))
}

/// The object a Cluster's reference names: v1beta2's `{apiGroup, kind, name}` (read in the
/// group's preferred version) or v1beta1's `{apiVersion, kind, name}`. `Ok(None)` when the
/// reference is empty, or its kind or object does not exist.
async fn referenced(
    discovery: &Discovery,
    r: &Value,
    namespace: &str,
) -> Result<Option<Value>, ReadinessError> {
    let (Some(kind), Some(name)) = (r["kind"].as_str(), r["name"].as_str()) else {
        return Ok(None);
    };
    let what = format!("{kind} {namespace}/{name}");
    let api_version =
        match (r["apiVersion"].as_str(), r["apiGroup"].as_str()) {
            (Some(v), _) => v.to_string(),
            (None, Some(group)) => {
                let groups = discovery.client().list_api_groups().await.map_err(|e| {
                    ReadinessError::Read {
                        what: format!("the API groups, for {what}"),
                        source: RequestError::from(e),
                    }
                })?;
                let Some(v) = groups
                    .groups
                    .iter()
                    .find(|g| g.name == group)
                    .and_then(|g| g.preferred_version.as_ref())
                else {
                    return Ok(None);
                };
                v.group_version.clone()
            }
            (None, None) => return Ok(None),
        };
    let Some(api) = api(discovery, &api_version, kind, namespace).await? else {
        return Ok(None);
    };
    let found = api.get_opt(name).await.map_err(|e| ReadinessError::Read {
        what,
        source: RequestError::from(e),
    })?;
    Ok(found.as_ref().map(value))
}

async fn api(
    discovery: &Discovery,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<Option<Api<DynamicObject>>, ReadinessError> {
    let resolved = discovery
        .resolve(&Gvk::from_api_version(api_version, kind))
        .await
        .map_err(|source| ReadinessError::Discovery {
            what: format!("{kind} ({api_version})"),
            source,
        })?;
    Ok(resolved.map(|r: crate::kube::Resource| {
        let ar: ApiResource = r.api;
        Api::namespaced_with(discovery.client().clone(), namespace, &ar)
    }))
}

/// The object as JSON, with its kind and apiVersion.
fn value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// The pause of a Cluster object, if it is paused.
fn paused(cluster: &DynamicObject) -> Option<Paused> {
    (cluster.data["spec"]["paused"] == true).then(|| Paused {
        by_move: cluster
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PAUSED_BY_MOVE))
            .cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(spec: serde_json::Value, annotations: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": CLUSTER_API_VERSION, "kind": "Cluster",
            "metadata": {"name": "prod", "namespace": "capi-self", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_paused_cluster_names_the_move_that_paused_it() {
        let by_move = cluster(
            serde_json::json!({"paused": true}),
            serde_json::json!({PAUSED_BY_MOVE: "run-1"}),
        );
        assert_eq!(
            paused(&by_move),
            Some(Paused {
                by_move: Some("run-1".into())
            })
        );
        let by_hand = cluster(serde_json::json!({"paused": true}), serde_json::json!({}));
        assert_eq!(paused(&by_hand), Some(Paused { by_move: None }));
        let running = cluster(serde_json::json!({"paused": false}), serde_json::json!({}));
        assert_eq!(paused(&running), None);
    }
}
