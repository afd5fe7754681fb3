//! Flux: its GitOps objects as data ([`sync_objects`]), whether Flux synced a pushed commit
//! ([`wait_synced`]), and suspending and resuming Flux objects around a move ([`suspend`],
//! [`resume`]) or nudging them ([`request_reconcile`]). Installing Flux itself, like any
//! component, is `components::install`.
//!
//! Modelled on flux2's bootstrap: generation is pure, applying is [`crate::kube::apply`], and
//! every step can re-run and find itself done.

mod generate;
mod health;
mod status;

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::kube::wait::ObjectFailure;
use crate::kube::{Discovery, FIELD_MANAGER, RequestError};
use crate::manifest::Object;

pub use generate::{
    BEARER_TOKEN_KEY, CA_CRT_KEY, HELM_API_VERSION, IDENTITY_KEY, IDENTITY_PUB_KEY,
    KNOWN_HOSTS_KEY, KUSTOMIZE_API_VERSION, PASSWORD_KEY, SOURCE_API_VERSION, SourceAuth,
    SyncNames, SyncOptions, USERNAME_KEY, git_repository, go_duration, revision, source_secret,
    sync_objects,
};
pub use health::{SyncReport, kustomization_synced, source_synced, wait_synced};
pub use status::{KindStatus, SYNC_KINDS, SyncObject, drift, sync_status};

/// What went wrong syncing or suspending.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Flux did not sync the expected revision.
    #[error("Flux has not applied {revision} ({} objects): {}", failures.len(), ObjectFailure::list(failures))]
    NotSynced {
        /// The awaited revision.
        revision: String,
        /// Every object that did not get there, with its last state.
        failures: Vec<ObjectFailure>,
    },
    /// A Flux kind the server does not serve.
    #[error("{0}")]
    Object(ObjectFailure),
    /// Discovery failed while resolving the kind of Flux objects.
    #[error("cannot resolve the kind of {what}")]
    Discovery {
        /// The objects, e.g. `HelmRelease in flux-system`.
        what: String,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// The server refused a request about a Flux object.
    #[error("{action} {identity}")]
    Request {
        /// `suspending`, `resuming`, `listing`...
        action: &'static str,
        /// `Kind namespace/name`.
        identity: String,
        /// The server's answer.
        #[source]
        source: RequestError,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// The Flux kinds that can be suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Suspendable {
    /// `helm.toolkit.fluxcd.io/v2` HelmRelease.
    HelmRelease,
    /// `kustomize.toolkit.fluxcd.io/v1` Kustomization.
    Kustomization,
    /// `source.toolkit.fluxcd.io/v1` GitRepository.
    GitRepository,
}

impl Suspendable {
    fn api_version(self) -> &'static str {
        match self {
            Suspendable::HelmRelease => generate::HELM_API_VERSION,
            Suspendable::Kustomization => generate::KUSTOMIZE_API_VERSION,
            Suspendable::GitRepository => generate::SOURCE_API_VERSION,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Suspendable::HelmRelease => "HelmRelease",
            Suspendable::Kustomization => "Kustomization",
            Suspendable::GitRepository => "GitRepository",
        }
    }

    fn object(self, namespace: &str, name: &str) -> Object {
        Object::new(
            json!({"apiVersion": self.api_version(), "kind": self.kind(),
            "metadata": {"name": name, "namespace": namespace}}),
        )
    }
}

/// The dynamic API for a Flux kind in `namespace`; [`Error::Object`] when it is not served.
async fn api(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
) -> Result<Api<DynamicObject>, Error> {
    let object = kind.object(namespace, "");
    discovery
        .api_for(&object)
        .await
        .map_err(|e| Error::Discovery {
            what: format!("{} in {namespace}", kind.kind()),
            source: Box::new(e),
        })?
        .ok_or_else(|| {
            Error::Object(ObjectFailure {
                identity: format!("{} in {namespace}", kind.kind()),
                detail: format!("the server does not serve {}", object.gvk()),
            })
        })
}

async fn patch_suspend(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
    name: &str,
    suspend: bool,
) -> Result<(), Error> {
    let api = api(discovery, kind, namespace).await?;
    // `flux suspend` sets spec.suspend=true with a merge patch; `flux resume` sets it to false,
    // which Flux's `omitempty` turns into removing the field. Both are done the same way here.
    let value = if suspend { json!(true) } else { json!(null) };
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"spec": {"suspend": value}})),
    )
    .await
    .map(|_| ())
    .map_err(|e| Error::Request {
        action: if suspend { "suspending" } else { "resuming" },
        identity: kind.object(namespace, name).identity(),
        source: e.into(),
    })
}

/// Suspends a Flux object (`spec.suspend: true`), like `flux suspend`. Idempotent.
pub async fn suspend(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
    name: &str,
) -> Result<(), Error> {
    patch_suspend(discovery, kind, namespace, name, true).await
}

/// Resumes a Flux object by removing `spec.suspend`, like `flux resume`; the generation
/// changes, so its controller reconciles at once. Idempotent.
pub async fn resume(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
    name: &str,
) -> Result<(), Error> {
    patch_suspend(discovery, kind, namespace, name, false).await
}

/// Suspends every object of `kind` in `namespace` that is not suspended yet and returns their
/// names, so exactly those can be resumed later. A kind the server does not serve has none.
pub async fn suspend_all(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
) -> Result<Vec<String>, Error> {
    let api = match api(discovery, kind, namespace).await {
        Ok(api) => api,
        Err(Error::Object(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let listed = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Request {
            action: "listing",
            identity: format!("{} in {namespace}", kind.kind()),
            source: e.into(),
        })?;
    let mut suspended = Vec::new();
    for o in listed.items {
        if o.data["spec"]["suspend"].as_bool() == Some(true) {
            continue;
        }
        let name = o.metadata.name.clone().unwrap_or_default();
        suspend(discovery, kind, namespace, &name).await?;
        suspended.push(name);
    }
    Ok(suspended)
}

/// The annotation whose change makes a Flux controller reconcile at once.
pub const RECONCILE_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// Asks Flux to reconcile an object now, like `flux reconcile` and `flux bootstrap` after a
/// push: sets [`RECONCILE_REQUESTED_AT`] to a new value (the current time in nanoseconds) and
/// returns it. The controller has handled the request when the object's
/// `status.lastHandledReconcileAt` equals it.
pub async fn request_reconcile(
    discovery: &Discovery,
    kind: Suspendable,
    namespace: &str,
    name: &str,
) -> Result<String, Error> {
    let api = api(discovery, kind, namespace).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string();
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: &now}}})),
    )
    .await
    .map(|_| now.clone())
    .map_err(|e| Error::Request {
        action: "requesting reconciliation of",
        identity: kind.object(namespace, name).identity(),
        source: e.into(),
    })
}
