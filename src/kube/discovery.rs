use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ::kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use ::kube::{Api, Client};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Error, RequestError, until_cancelled};
use crate::manifest::{Gvk, Object};

/// A resource the server serves: how to address it and what it supports.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Group, version, kind and plural, as kube's dynamic API wants them.
    pub api: ApiResource,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether the resource has a `status` subresource.
    pub has_status: bool,
}

type GroupVersion = Arc<Vec<Resource>>;

/// The media type of aggregated discovery (`apidiscovery.k8s.io/v2`, Kubernetes 1.30+): every
/// group version and its resources in one answer for `/api` and one for `/apis`.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Discovery with a cache per group version.
///
/// On a server with aggregated discovery, the first lookup (and any lookup of a kind the cache
/// lacks: a CRD may have been established since) fetches every group version at once in two
/// requests, `/api` and `/apis`; concurrent lookups share one such refresh. On an older server
/// a group version is fetched on first use and again only when asked for a kind it did not
/// have, so applying a bundle costs one discovery request per group version it touches.
#[derive(Clone)]
pub struct Discovery {
    client: Client,
    cache: Arc<Mutex<HashMap<String, GroupVersion>>>,
    /// Serialises aggregated refreshes; holds how many have completed.
    refreshes: Arc<Mutex<u64>>,
    /// Completed aggregated refreshes, readable without waiting for a running one.
    generation: Arc<AtomicU64>,
    /// Whether the server answered aggregated discovery with something else (older servers).
    legacy: Arc<AtomicBool>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

impl Discovery {
    /// An empty cache over this client.
    pub fn new(client: Client) -> Self {
        Discovery {
            client,
            cache: Arc::default(),
            refreshes: Arc::default(),
            generation: Arc::default(),
            legacy: Arc::default(),
        }
    }

    /// The client discovery uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves a kind, refreshing its group version once if the cached copy lacks it.
    /// `Ok(None)` means the server does not serve it.
    pub async fn resolve(&self, gvk: &Gvk) -> Result<Option<Resource>, Error> {
        self.resolve_until_cancelled(gvk, &CancellationToken::new())
            .await
    }

    /// [`Discovery::resolve`], with the discovery request (when one is needed) dropped when
    /// `cancel` fires: then [`Error::Cancelled`].
    pub async fn resolve_until_cancelled(
        &self,
        gvk: &Gvk,
        cancel: &CancellationToken,
    ) -> Result<Option<Resource>, Error> {
        let api_version = gvk.api_version();
        let seen = self.generation.load(Ordering::Acquire);
        let cached = self.cache.lock().await.get(&api_version).cloned();
        if let Some(found) = cached.as_ref().and_then(|gv| find(gv, &gvk.kind)) {
            return Ok(Some(found));
        }
        if !self.legacy.load(Ordering::Relaxed) && self.refresh_after(seen, cancel).await? {
            let cache = self.cache.lock().await;
            return Ok(cache.get(&api_version).and_then(|gv| find(gv, &gvk.kind)));
        }
        let fresh = self.fetch(gvk, cancel).await?;
        Ok(find(&fresh, &gvk.kind))
    }

    /// Asks the server again for every group version (with aggregated discovery: two requests;
    /// otherwise the cache is emptied and each group version is fetched on its next lookup).
    /// `Ok(true)` when the cache now holds every group version (aggregated discovery), so
    /// [`Discovery::cached`] answers for all of them.
    pub async fn refresh(&self, cancel: &CancellationToken) -> Result<bool, Error> {
        let seen = self.generation.load(Ordering::Acquire);
        if self.legacy.load(Ordering::Relaxed) || !self.refresh_after(seen, cancel).await? {
            self.cache.lock().await.clear();
            return Ok(false);
        }
        Ok(true)
    }

    /// A kind as the cache knows it, without asking the server.
    pub async fn cached(&self, gvk: &Gvk) -> Option<Resource> {
        let cache = self.cache.lock().await;
        cache
            .get(&gvk.api_version())
            .and_then(|gv| find(gv, &gvk.kind))
    }

    /// Refreshes the whole cache through aggregated discovery unless another refresh completed
    /// since generation `seen`. `Ok(false)`: the server has no aggregated discovery.
    async fn refresh_after(&self, seen: u64, cancel: &CancellationToken) -> Result<bool, Error> {
        let mut done = self.refreshes.lock().await;
        if *done != seen {
            return Ok(true);
        }
        let get = |path: &'static str| {
            let request = http::Request::get(path)
                .header(http::header::ACCEPT, AGGREGATED)
                .body(Vec::new())
                .expect("a GET without a body is a valid request");
            until_cancelled(cancel, self.client.request::<serde_json::Value>(request))
        };
        let (core, groups) = futures::join!(get("/api"), get("/apis"));
        let mut all = HashMap::new();
        for (path, answer) in [("/api", core), ("/apis", groups)] {
            let answer = match answer {
                Ok(v) => v,
                Err(RequestError::Cancelled) => return Err(Error::Cancelled),
                Err(source) => {
                    return Err(Error::Discovery {
                        api_version: path.into(),
                        source,
                    });
                }
            };
            match parse_aggregated(&answer) {
                Some(gvs) => all.extend(gvs),
                None => {
                    self.legacy.store(true, Ordering::Relaxed);
                    return Ok(false);
                }
            }
        }
        *self.cache.lock().await = all;
        *done += 1;
        self.generation.store(*done, Ordering::Release);
        Ok(true)
    }

    /// The dynamic API for an object's kind, in its namespace (the client's default namespace
    /// when it has none); `Ok(None)` when the server does not serve the kind.
    pub async fn api_for(&self, object: &Object) -> Result<Option<Api<DynamicObject>>, Error> {
        let Some(resource) = self.resolve(&object.gvk()).await? else {
            return Ok(None);
        };
        let client = self.client.clone();
        Ok(Some(if resource.namespaced {
            let ns = object.namespace().unwrap_or(client.default_namespace());
            Api::namespaced_with(client.clone(), ns, &resource.api)
        } else {
            Api::all_with(client, &resource.api)
        }))
    }

    /// Forgets a group version, so the next lookup asks the server.
    pub async fn invalidate(&self, api_version: &str) {
        self.cache.lock().await.remove(api_version);
    }

    async fn fetch(&self, gvk: &Gvk, cancel: &CancellationToken) -> Result<GroupVersion, Error> {
        let api_version = gvk.api_version();
        let list = if gvk.group.is_empty() {
            until_cancelled(cancel, self.client.list_core_api_resources(&gvk.version)).await
        } else {
            until_cancelled(cancel, self.client.list_api_group_resources(&api_version)).await
        };
        let list = match list {
            Ok(l) => l,
            Err(RequestError::Cancelled) => return Err(Error::Cancelled),
            Err(e) => {
                if e.is_not_found() {
                    // The whole group version is unknown: remember it as empty.
                    let empty: GroupVersion = Arc::default();
                    self.cache.lock().await.insert(api_version, empty.clone());
                    return Ok(empty);
                }
                return Err(Error::Discovery {
                    api_version,
                    source: e,
                });
            }
        };
        let status: Vec<String> = list
            .resources
            .iter()
            .filter_map(|r| r.name.strip_suffix("/status").map(str::to_string))
            .collect();
        let resources: Vec<Resource> = list
            .resources
            .iter()
            .filter(|r| !r.name.contains('/'))
            .map(|r| Resource {
                api: ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(&gvk.group, &gvk.version, &r.kind),
                    &r.name,
                ),
                namespaced: r.namespaced,
                has_status: status.contains(&r.name),
            })
            .collect();
        let gv: GroupVersion = Arc::new(resources);
        self.cache.lock().await.insert(api_version, gv.clone());
        Ok(gv)
    }
}

/// The group versions of an `APIGroupDiscoveryList`; `None` when the answer is something else
/// (a server without aggregated discovery answers with its legacy lists).
fn parse_aggregated(v: &serde_json::Value) -> Option<HashMap<String, GroupVersion>> {
    if v["kind"] != "APIGroupDiscoveryList" {
        return None;
    }
    let mut out = HashMap::new();
    for group in v["items"].as_array()? {
        let name = group["metadata"]["name"].as_str().unwrap_or_default();
        for version in group["versions"].as_array().into_iter().flatten() {
            let Some(ver) = version["version"].as_str() else {
                continue;
            };
            let resources: Vec<Resource> = version["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let plural = r["resource"].as_str()?;
                    let kind = r["responseKind"]["kind"].as_str()?;
                    let has_status = r["subresources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| s["subresource"] == "status");
                    Some(Resource {
                        api: ApiResource::from_gvk_with_plural(
                            &GroupVersionKind::gvk(name, ver, kind),
                            plural,
                        ),
                        namespaced: r["scope"] == "Namespaced",
                        has_status,
                    })
                })
                .collect();
            let api_version = if name.is_empty() {
                ver.to_string()
            } else {
                format!("{name}/{ver}")
            };
            out.insert(api_version, Arc::new(resources));
        }
    }
    Some(out)
}

fn find(gv: &[Resource], kind: &str) -> Option<Resource> {
    gv.iter().find(|r| r.api.kind == kind).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_lists_every_group_version() {
        let v = serde_json::json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
            {"metadata": {}, "versions": [{"version": "v1", "resources": [
                {"resource": "configmaps", "responseKind": {"group": "", "version": "", "kind": "ConfigMap"}, "scope": "Namespaced"},
                {"resource": "namespaces", "responseKind": {"kind": "Namespace"}, "scope": "Cluster",
                 "subresources": [{"subresource": "status"}, {"subresource": "finalize"}]}]}]},
            {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
                {"resource": "deployments", "responseKind": {"kind": "Deployment"}, "scope": "Namespaced",
                 "subresources": [{"subresource": "scale"}]}]}]}]});
        let gvs = parse_aggregated(&v).unwrap();
        let ns = find(&gvs["v1"], "Namespace").unwrap();
        assert_eq!(ns.api.plural, "namespaces");
        assert!(!ns.namespaced && ns.has_status);
        let d = find(&gvs["apps/v1"], "Deployment").unwrap();
        assert_eq!(d.api.api_version, "apps/v1");
        assert!(d.namespaced && !d.has_status);
        assert!(
            parse_aggregated(&serde_json::json!({"kind": "APIGroupList", "groups": []})).is_none()
        );
    }
}
