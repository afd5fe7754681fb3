//! The workload cluster as its management cluster sees it: the kubeconfig Cluster API writes
//! for it, and deleting it.

use std::time::Duration;

use ::kube::Api;
use ::kube::api::DynamicObject;
use k8s_openapi::api::core::v1::Secret;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::error::obj_err;
use super::graph::ObjectRef;
use crate::kube::Discovery;
use crate::kube::wait::{WaitOptions, conditions, wait_for};
use crate::manifest::Gvk;
use crate::observe::{Observer, ObserverExt};

/// The side named in errors: the cluster these functions talk to.
const SIDE: &str = "management";

/// The kubeconfig of Cluster `namespace/cluster`: the `value` of the Secret
/// `<cluster>-kubeconfig` its control plane provider writes.
///
/// # Errors
///
/// [`Error::NoKubeconfigSecret`] while the Secret does not exist,
/// [`Error::EmptyKubeconfigSecret`] when it has no value, [`Error::Object`] when it cannot be
/// read.
pub async fn read_kubeconfig(
    discovery: &Discovery,
    namespace: &str,
    cluster: &str,
) -> Result<Vec<u8>, Error> {
    let name = format!("{cluster}-kubeconfig");
    let object = ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: namespace.into(),
        name: name.clone(),
    };
    let api: Api<Secret> = Api::namespaced(discovery.client().clone(), namespace);
    let secret = api
        .get_opt(&name)
        .await
        .map_err(obj_err("reading", SIDE, &object))?
        .ok_or_else(|| Error::NoKubeconfigSecret {
            namespace: namespace.into(),
            name: name.clone(),
        })?;
    let value = secret
        .data
        .and_then(|mut d| d.remove("value"))
        .ok_or_else(|| Error::EmptyKubeconfigSecret {
            namespace: namespace.into(),
            name,
        })?;
    Ok(value.0)
}

/// Deletes Cluster `namespace/name` and waits up to `timeout` until it is gone (its
/// finalizers done: the providers deleted the machines and the cloud resources). A Cluster
/// already gone is success.
///
/// # Errors
///
/// [`Error::NoClusterKind`] when Cluster API is not installed, [`Error::Discovery`] or
/// [`Error::Object`] for failed requests, [`Error::NotDeleted`] when the wait times out or is
/// cancelled.
pub async fn delete_cluster(
    discovery: &Discovery,
    namespace: &str,
    name: &str,
    timeout: Duration,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let mut resource = None;
    for v in ["v1beta2", "v1beta1"] {
        let gvk = Gvk::from_api_version(&format!("cluster.x-k8s.io/{v}"), "Cluster");
        let found = discovery
            .resolve(&gvk)
            .await
            .map_err(|e| Error::Discovery {
                side: SIDE,
                source: Box::new(e),
            })?;
        if let Some(r) = found {
            resource = Some(r);
            break;
        }
    }
    let Some(r) = resource else {
        return Err(Error::NoClusterKind);
    };
    let object = ObjectRef {
        api_version: r.api.api_version.clone(),
        kind: "Cluster".into(),
        namespace: namespace.into(),
        name: name.into(),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(discovery.client().clone(), namespace, &r.api);
    let Some(existing) = api
        .get_opt(name)
        .await
        .map_err(obj_err("reading", SIDE, &object))?
    else {
        observer.success(format!("Cluster {namespace}/{name} is gone"), None);
        return Ok(());
    };
    if existing.metadata.deletion_timestamp.is_none() {
        observer.action(format!("deleting Cluster {namespace}/{name}"));
        match api.delete(name, &Default::default()).await {
            Ok(_) => {}
            Err(::kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(obj_err("deleting", SIDE, &object)(e)),
        }
    }
    let mut wo = WaitOptions::timeout(timeout);
    wo.max_interval = Duration::from_secs(5);
    wait_for(
        &api,
        name,
        &format!("Cluster {namespace}/{name} deleted"),
        &conditions::deleted(existing.metadata.uid.clone()),
        wo,
        observer,
        cancel,
    )
    .await
    .map_err(|e| Error::NotDeleted {
        namespace: namespace.into(),
        name: name.into(),
        source: Box::new(e),
    })?;
    Ok(())
}
