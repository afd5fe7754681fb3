//! A Cluster API cluster's state for a status report: what its readiness check sees, and
//! whether its Cluster is paused (and whether a move paused it).

use ::kube::Api;
use ::kube::api::DynamicObject;

use super::PAUSED_BY_MOVE;
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
}

/// A paused Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// The run id of the move that paused it (its [`PAUSED_BY_MOVE`] annotation), when a move
    /// did: re-running that move finishes it.
    pub by_move: Option<String>,
}

/// Looks once at the cluster: [`check`], then its Cluster's `spec.paused`.
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
    Ok(ClusterStatus { readiness, paused })
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
