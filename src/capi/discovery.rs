//! Discovery: which kinds and objects of a namespace move, which stay (and why), and whether a
//! target serves the kinds to create there.

use std::collections::{BTreeMap, BTreeSet};

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::graph::ObjectRef;
use crate::kube::{Discovery, RequestError, Resource, until_cancelled};
use crate::manifest::Gvk;

/// [`Error::List`] of `what` on the `side` cluster, or [`Error::Cancelled`] when the request
/// was cancelled.
fn list_error(side: &'static str, what: impl Into<String>) -> impl FnOnce(RequestError) -> Error {
    let what = what.into();
    move |source| match source {
        RequestError::Cancelled => Error::Cancelled,
        source => Error::List { side, what, source },
    }
}

/// [`Error::Discovery`] on the `side` cluster, or [`Error::Cancelled`] when it was cancelled.
fn discovery_error(side: &'static str) -> impl FnOnce(crate::kube::Error) -> Error {
    move |source| match source {
        crate::kube::Error::Cancelled => Error::Cancelled,
        source => Error::Discovery {
            side,
            source: Box::new(source),
        },
    }
}

/// An object that stays behind, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object.
    pub object: ObjectRef,
    /// Why it is not moved.
    pub reason: String,
}

/// A kind to move and how to reach it.
#[derive(Debug, Clone)]
struct Kind {
    resource: Resource,
}

fn is_capi_group(group: &str) -> bool {
    group == "cluster.x-k8s.io"
        || group.ends_with(".cluster.x-k8s.io")
        || group == "addons.stackhpc.com"
}

/// The fields of a CustomResourceDefinition list that [`kinds`] reads.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdList {
    items: Vec<CrdSummary>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdSummary {
    metadata: CrdMeta,
    spec: CrdSpec,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdMeta {
    labels: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdSpec {
    group: String,
    scope: String,
    names: CrdNames,
    versions: Vec<CrdVersion>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdNames {
    kind: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CrdVersion {
    name: String,
    storage: bool,
}

/// The kinds whose objects move: CRDs of the Cluster API groups, `addons.stackhpc.com` and ORC
/// (`openstack.k-orc.cloud`, of which only what a cluster needs moves), CRDs labelled for
/// clusterctl, plus Secrets and ConfigMaps. Namespaced kinds only.
async fn kinds(
    discovery: &Discovery,
    side: &'static str,
    cancel: &CancellationToken,
) -> Result<Vec<Kind>, Error> {
    // Only the fields below are decoded; the schemas and managed fields, most of each CRD, are
    // skipped while the answer is read instead of being held as values.
    let request = http::Request::get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        .body(Vec::new())
        .expect("a GET without a body is a valid request");
    let crds = until_cancelled(cancel, discovery.client().request::<CrdList>(request))
        .await
        .map_err(list_error(side, "CustomResourceDefinitions"))?;
    let mut gvks: Vec<Gvk> = vec![
        Gvk::from_api_version("v1", "Secret"),
        Gvk::from_api_version("v1", "ConfigMap"),
    ];
    for CrdSummary { metadata, spec } in crds.items {
        let labelled = metadata
            .labels
            .keys()
            .any(|k| k.starts_with("clusterctl.cluster.x-k8s.io"));
        if spec.scope != "Namespaced"
            || !(is_capi_group(&spec.group) || spec.group == super::orc::ORC_GROUP || labelled)
        {
            continue;
        }
        let storage = spec.versions.into_iter().find(|v| v.storage);
        if let Some(v) = storage.filter(|_| !spec.names.kind.is_empty()) {
            gvks.push(Gvk {
                group: spec.group,
                version: v.name,
                kind: spec.names.kind,
            });
        }
    }
    let mut out = Vec::new();
    for gvk in gvks {
        if let Some(resource) = discovery
            .resolve_until_cancelled(&gvk, cancel)
            .await
            .map_err(discovery_error(side))?
        {
            out.push(Kind { resource });
        }
    }
    Ok(out)
}

fn skip_reason(o: &Value) -> Option<&'static str> {
    let md = &o["metadata"];
    if md["deletionTimestamp"].is_string() {
        if super::orc::is_guarded(o) {
            return Some(super::orc::GUARDED_REASON);
        }
        return Some("being deleted");
    }
    match (o["kind"].as_str(), o["type"].as_str(), md["name"].as_str()) {
        (Some("Secret"), Some("kubernetes.io/service-account-token"), _) => {
            Some("service-account token: the target issues its own")
        }
        (Some("ConfigMap"), _, Some("kube-root-ca.crt")) => {
            Some("created by Kubernetes in every namespace")
        }
        _ => None,
    }
}

/// Kinds listed at once by [`discover`].
const LIST_CONCURRENCY: usize = 16;

/// Everything in the namespace, split into what moves and what stays (with reasons).
pub(super) async fn discover(
    discovery: &Discovery,
    namespace: &str,
    cancel: &CancellationToken,
) -> Result<(Vec<Value>, Vec<Skipped>, BTreeMap<String, Resource>), Error> {
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    let mut resources = BTreeMap::new();
    // Every kind at once (in order): on an apiserver whose watch caches are cold, the first
    // list of each kind waits for its cache, and those waits overlap.
    let lists: Vec<_> = futures::stream::iter(kinds(discovery, "source", cancel).await?)
        .map(|k| async move {
            let api: Api<DynamicObject> =
                Api::namespaced_with(discovery.client().clone(), namespace, &k.resource.api);
            let list = until_cancelled(cancel, api.list(&ListParams::default())).await;
            (k, list)
        })
        .buffered(LIST_CONCURRENCY)
        .collect()
        .await;
    for (k, list) in lists {
        let list = list.map_err(list_error(
            "source",
            format!("{} in {namespace}", k.resource.api.kind),
        ))?;
        for item in list.items {
            let mut v = serde_json::to_value(&item).expect("objects serialise");
            v["apiVersion"] = json!(k.resource.api.api_version);
            v["kind"] = json!(k.resource.api.kind);
            match skip_reason(&v) {
                Some(reason) => skipped.push(Skipped {
                    object: ObjectRef::of(&v),
                    reason: reason.into(),
                }),
                None => {
                    resources.insert(
                        v["metadata"]["uid"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        k.resource.clone(),
                    );
                    objects.push(v);
                }
            }
        }
    }
    let (objects, stays) = super::orc::partition(objects);
    for o in stays {
        resources.remove(o["metadata"]["uid"].as_str().unwrap_or_default());
        skipped.push(Skipped {
            object: ObjectRef::of(&o),
            reason: super::orc::STAYS_REASON.into(),
        });
    }
    Ok((objects, skipped, resources))
}

/// The target serves every kind we are about to create.
pub(super) async fn preflight<'a>(
    target: &Discovery,
    resources: impl IntoIterator<Item = &'a Resource>,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let mut missing = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for r in resources {
        if !seen.insert((r.api.api_version.clone(), r.api.kind.clone())) {
            continue;
        }
        let gvk = Gvk::from_api_version(&r.api.api_version, &r.api.kind);
        if target
            .resolve_until_cancelled(&gvk, cancel)
            .await
            .map_err(discovery_error("target"))?
            .is_none()
        {
            missing.insert(format!("{} ({})", r.api.kind, r.api.api_version));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Preflight {
            missing: missing.into_iter().collect(),
        })
    }
}

/// Refuses a move whose source and target are one cluster (the same `kube-system` Namespace
/// uid): copying onto itself and deleting the "source" would delete the cluster's objects.
pub(super) async fn refuse_same_cluster(
    source: &Discovery,
    target: &Discovery,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    async fn uid(
        d: &Discovery,
        side: &'static str,
        cancel: &CancellationToken,
    ) -> Result<String, Error> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(d.client().clone());
        let ns = until_cancelled(cancel, api.get("kube-system"))
            .await
            .map_err(list_error(side, "Namespace kube-system"))?;
        Ok(ns.metadata.uid.unwrap_or_default())
    }
    let (s, t) = (
        uid(source, "source", cancel).await?,
        uid(target, "target", cancel).await?,
    );
    if !s.is_empty() && s == t {
        return Err(Error::SameCluster { uid: s });
    }
    Ok(())
}

/// The target's resources of backed-up `objects`, by source UID; [`Error::Preflight`] names
/// every kind the target does not serve.
pub(super) async fn resolve_on_target(
    target: &Discovery,
    objects: &[Value],
) -> Result<BTreeMap<String, Resource>, Error> {
    let mut resources = BTreeMap::new();
    let mut missing = BTreeSet::new();
    for o in objects {
        let reference = ObjectRef::of(o);
        let gvk = Gvk::from_api_version(&reference.api_version, &reference.kind);
        match target
            .resolve(&gvk)
            .await
            .map_err(|source| Error::Discovery {
                side: "target",
                source: Box::new(source),
            })? {
            Some(r) => {
                resources.insert(
                    o["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    r,
                );
            }
            None => {
                missing.insert(format!("{} ({})", reference.kind, reference.api_version));
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::Preflight {
            missing: missing.into_iter().collect(),
        });
    }
    Ok(resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_tokens_and_root_ca_stay() {
        let token = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}});
        assert!(skip_reason(&token).is_some());
        assert!(
            skip_reason(&json!({"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}}))
                .is_some()
        );
        assert!(skip_reason(&json!({"kind": "Secret", "type": "helm.sh/release.v1", "metadata": {"name": "sh.helm.release.v1.x.v1"}})).is_none());
    }

    #[test]
    fn capi_groups_are_recognised() {
        for g in [
            "cluster.x-k8s.io",
            "infrastructure.cluster.x-k8s.io",
            "addons.stackhpc.com",
        ] {
            assert!(is_capi_group(g), "{g}");
        }
        assert!(!is_capi_group("helm.toolkit.fluxcd.io"));
        assert!(!is_capi_group("notcluster.x-k8s.io.example.com"));
    }
}
