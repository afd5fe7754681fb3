//! What Flux reports about its sync, object by object: the data of a status report, and the
//! drift of each object against the branch head (pure: [`drift`]).

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
    /// Its `Ready` condition is True for its current generation, and it is not suspended.
    pub ready: bool,
    /// The branch it follows: a GitRepository's `spec.ref.branch`.
    pub branch: Option<String>,
}

/// Why `o` drifted from `head` (a commit, hex): it is not Ready, or its revision
/// (`<branch>@sha1:<commit>`, Flux's form) is another commit; `None` when it is in sync.
/// Without a head only readiness is judged.
pub fn drift(o: &SyncObject, head: Option<&str>) -> Option<String> {
    let mut why = Vec::new();
    if !o.ready {
        why.push("not Ready".to_string());
    }
    if let Some(head) = head {
        let commit = o
            .revision
            .as_deref()
            .map(|r| r.rsplit_once(':').map_or(r, |(_, c)| c));
        match commit {
            None => why.push(format!("no revision yet (head {})", short(head))),
            Some(c) if !c.eq_ignore_ascii_case(head) => {
                why.push(format!("at {}, head is {}", short(c), short(head)))
            }
            Some(_) => {}
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
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
        ready: ready(o),
        branch: o.data["spec"]["ref"]["branch"].as_str().map(str::to_string),
    }
}

/// Ready=True observed for the current generation, and not suspended.
fn ready(o: &DynamicObject) -> bool {
    if o.data["spec"]["suspend"] == true {
        return false;
    }
    let Some(c) = o.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
    else {
        return false;
    };
    let observed = c["observedGeneration"]
        .as_i64()
        .or(o.data["status"]["observedGeneration"].as_i64());
    c["status"] == "True"
        && match (o.metadata.generation, observed) {
            (Some(g), Some(seen)) => seen >= g,
            _ => true,
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
        assert!(s.ready);
        let mut bare = o.clone();
        bare.data["status"] = serde_json::json!({});
        assert_eq!(sync_object(&bare).revision, None);
        assert!(!sync_object(&bare).ready);
    }

    #[test]
    fn drift_is_another_commit_or_not_ready() {
        let head = "0123456789abcdef0123456789abcdef01234567";
        let mut o = SyncObject {
            name: "flux-system".into(),
            conditions: String::new(),
            revision: Some(format!("main@sha1:{head}")),
            ready: true,
            branch: Some("main".into()),
        };
        assert_eq!(drift(&o, Some(head)), None);
        assert_eq!(drift(&o, None), None);
        o.revision = Some("main@sha1:ffffffffffffffffffffffffffffffffffffffff".into());
        assert_eq!(
            drift(&o, Some(head)).as_deref(),
            Some("at ffffffffffff, head is 0123456789ab")
        );
        o.ready = false;
        o.revision = None;
        assert_eq!(
            drift(&o, Some(head)).as_deref(),
            Some("not Ready; no revision yet (head 0123456789ab)")
        );
        assert_eq!(drift(&o, None).as_deref(), Some("not Ready"));
    }
}
