//! What Flux reports about its sync, object by object: the data of a status report.

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams};

use super::Error;
use super::generate::{KUSTOMIZE_API_VERSION, SOURCE_API_VERSION};
use crate::kube::wait::summary;
use crate::kube::{Discovery, RequestError};
use crate::manifest::Gvk;

/// The sync kinds a status reports, in the order Flux uses them: the source, then what applies it.
pub const SYNC_KINDS: [(&str, &str); 2] = [
    (SOURCE_API_VERSION, "GitRepository"),
    (KUSTOMIZE_API_VERSION, "Kustomization"),
];

/// One Flux object as its controller last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncObject {
    /// Its name.
    pub name: String,
    /// Its conditions in one line (`Ready=True (Succeeded: ...)`); empty before the first
    /// reconcile.
    pub conditions: String,
    /// The revision it applied (`status.lastAppliedRevision`) or holds as its artifact
    /// (`status.artifact.revision`), when it has one.
    pub revision: Option<String>,
}

/// The objects of one sync kind, or that the cluster does not serve it (no Flux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindStatus {
    /// `GitRepository` or `Kustomization`.
    pub kind: &'static str,
    /// Whether the cluster serves the kind; `false` means Flux is not installed.
    pub served: bool,
    /// Its objects in the namespace, by name.
    pub objects: Vec<SyncObject>,
}

/// Flux's GitRepositories and Kustomizations in `namespace` as their controllers report them,
/// one [`KindStatus`] per entry of [`SYNC_KINDS`].
///
/// # Errors
/// [`Error::Discovery`] when the kinds cannot be looked up, [`Error::Request`] when listing
/// them fails.
pub async fn sync_status(discovery: &Discovery, namespace: &str) -> Result<Vec<KindStatus>, Error> {
    let mut out = Vec::new();
    for (api_version, kind) in SYNC_KINDS {
        let resolved = discovery
            .resolve(&Gvk::from_api_version(api_version, kind))
            .await
            .map_err(|source| Error::Discovery {
                what: format!("{kind}s in {namespace}"),
                source: Box::new(source),
            })?;
        let Some(resource) = resolved else {
            out.push(KindStatus {
                kind,
                served: false,
                objects: Vec::new(),
            });
            continue;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(discovery.client().clone(), namespace, &resource.api);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::Request {
                action: "listing",
                identity: format!("{kind}s in {namespace}"),
                source: RequestError::from(e),
            })?;
        let mut objects: Vec<SyncObject> = list.items.iter().map(sync_object).collect();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(KindStatus {
            kind,
            served: true,
            objects,
        });
    }
    Ok(out)
}

fn sync_object(o: &DynamicObject) -> SyncObject {
    let status = &o.data["status"];
    SyncObject {
        name: o.metadata.name.clone().unwrap_or_default(),
        conditions: summary(o),
        revision: status["lastAppliedRevision"]
            .as_str()
            .or(status["artifact"]["revision"].as_str())
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applied_revision_wins_over_the_artifact_and_conditions_are_one_line() {
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization",
            "metadata": {"name": "flux-system"},
            "status": {
                "lastAppliedRevision": "main@sha1:1",
                "artifact": {"revision": "main@sha1:2"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]
            }
        }))
        .unwrap();
        let s = sync_object(&o);
        assert_eq!(s.revision.as_deref(), Some("main@sha1:1"));
        assert_eq!(s.conditions, "Ready=True (Succeeded)");
        let mut bare = o.clone();
        bare.data["status"] = serde_json::json!({});
        assert_eq!(sync_object(&bare).revision, None);
    }
}
