use std::collections::HashMap;
use std::sync::Arc;

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

/// Discovery with a cache per group version.
///
/// A group version is fetched on first use and again only when asked for a kind it did not
/// have (a CRD may have been established since), so applying a bundle costs one discovery
/// request per group version it touches, not one per object.
#[derive(Clone)]
pub struct Discovery {
    client: Client,
    cache: Arc<Mutex<HashMap<String, GroupVersion>>>,
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
        let cached = self.cache.lock().await.get(&api_version).cloned();
        if let Some(found) = cached.as_ref().and_then(|gv| find(gv, &gvk.kind)) {
            return Ok(Some(found));
        }
        let fresh = self.fetch(gvk, cancel).await?;
        Ok(find(&fresh, &gvk.kind))
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

fn find(gv: &[Resource], kind: &str) -> Option<Resource> {
    gv.iter().find(|r| r.api.kind == kind).cloned()
}
