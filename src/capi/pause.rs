//! The steps of a [`Mover`] that hold the source still and let go of it: waiting out
//! `block-move`, suspending HelmReleases and pausing Clusters and ClusterClasses on the source
//! (journaled first), and unpausing on the target, or on the source after a failure.

use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams};

use super::error::{Error, obj_err};
use super::graph::{Node, ObjectRef};
use super::mover::{Mover, api_for, request_err};
use super::transform::{
    BLOCK_MOVE, is_paused, pausable_key, pause_patch, paused_by_move, unpause_patch,
};
use crate::flux::HELM_API_VERSION as HELM_RELEASE;
use crate::flux::{Error as FluxError, Suspendable};
use crate::kube::{Discovery, RequestError, until_cancelled};
use crate::manifest::Gvk;
use crate::observe::ObserverExt;

impl Mover<'_> {
    /// Waits until no object carries [`BLOCK_MOVE`] (clusterctl's contract): objects annotated
    /// when listed are re-read, with backoff, until their provider removes the annotation or
    /// `block_move_timeout` passes.
    pub(super) async fn wait_unblocked(&self) -> Result<(), Error> {
        let timeout = self.options.block_move_timeout;
        let start = Instant::now();
        for n in self.graph.nodes() {
            if !n.object["metadata"]["annotations"][BLOCK_MOVE].is_string() {
                continue;
            }
            let api = self.api(self.source(), &n.uid);
            let mut delay = Duration::from_millis(250);
            loop {
                let current = until_cancelled(self.cancel, api.get_opt(&n.reference.name))
                    .await
                    .map_err(request_err("reading", "source", &n.reference))?;
                if current.as_ref().is_none_or(|o| {
                    !o.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(BLOCK_MOVE))
                }) {
                    break;
                }
                if start.elapsed() >= timeout {
                    return Err(Error::Blocked {
                        object: n.reference.clone(),
                        timeout,
                    });
                }
                self.observer.waiting(
                    format!("{} to drop annotation {BLOCK_MOVE}", n.reference),
                    None,
                );
                tokio::select! {
                    _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                    _ = tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }

    /// Suspends the source's HelmReleases (so Flux does not undo the pause), then pauses its
    /// Clusters and ClusterClasses, each recorded in the journal before it is changed. What
    /// someone else suspended or paused is left as it is.
    pub(super) async fn pause_source(&mut self) -> Result<(), Error> {
        let (source, ns) = (self.source(), self.ns());
        if let Some(api) = helm_releases(source, ns).await? {
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::List {
                    side: "source",
                    what: "HelmReleases".into(),
                    source: e.into(),
                })?;
            for h in list.items {
                let name = h.metadata.name.clone().unwrap_or_default();
                if h.data["spec"]["suspend"] == true && !self.journal.suspended.contains(&name) {
                    continue; // suspended by someone else: leave it as it is
                }
                self.journal.suspended.insert(name.clone());
                self.save()?;
                crate::flux::suspend(source, Suspendable::HelmRelease, ns, &name)
                    .await
                    .map_err(flux_err("suspending", &helm_release_ref(ns, &name)))?;
            }
        }
        for n in self.graph.nodes() {
            let Some(key) = pausable_key(&n.reference) else {
                continue;
            };
            // Paused by an earlier move run (its journal gone, or the run finished without
            // deleting the source): ours to unpause, on the target too.
            if is_paused(&n.object)
                && !paused_by_move(&n.object)
                && !self.journal.paused.contains(&key)
            {
                continue; // paused by someone else: it moves paused and stays paused
            }
            self.journal.paused.insert(key);
            self.save()?;
            self.api(source, &n.uid)
                .patch(
                    &n.reference.name,
                    &PatchParams::default(),
                    &Patch::Merge(pause_patch(&n.reference.kind, &self.journal.run)),
                )
                .await
                .map_err(obj_err("pausing", "source", &n.reference))?;
            self.observer
                .action(format!("paused {} on the source", n.reference));
        }
        Ok(())
    }

    /// The object of the graph that a journal key (`Kind/name`) names.
    fn paused_node(&self, key: &str) -> Option<&Node> {
        self.graph
            .nodes()
            .find(|n| pausable_key(&n.reference).as_deref() == Some(key))
    }

    /// Unpauses on the target what this tool paused: removes the field (not `false`), and the
    /// ClusterClass annotation.
    pub(super) async fn unpause_target(&mut self) -> Result<(), Error> {
        let target = self.target();
        for key in &self.journal.paused {
            if let Some(n) = self.paused_node(key) {
                unpause(&self.api(target, &n.uid), &n.reference)
                    .await
                    .map_err(obj_err("unpausing", "target", &n.reference))?;
            }
        }
        self.journal.paused.clear();
        Ok(())
    }

    /// Gives the source back after a failure (or a backup): unpauses what this tool paused and
    /// resumes the HelmReleases it suspended, dropping each from the journal once done.
    pub(super) async fn restore_source(&mut self) -> Result<(), Error> {
        let (source, ns) = (self.source(), self.ns());
        for key in self.journal.paused.clone() {
            if let Some(n) = self.paused_node(&key) {
                unpause(&self.api(source, &n.uid), &n.reference)
                    .await
                    .map_err(obj_err("unpausing", "source", &n.reference))?;
            }
            self.journal.paused.remove(&key);
            self.save()?;
        }
        if helm_releases(source, ns).await?.is_some() {
            for name in self.journal.suspended.clone() {
                match crate::flux::resume(source, Suspendable::HelmRelease, ns, &name).await {
                    // Refused (gone, say): nothing of ours is left on it.
                    Ok(())
                    | Err(FluxError::Request {
                        source: RequestError::Server { .. },
                        ..
                    }) => {}
                    Err(e) => return Err(flux_err("resuming", &helm_release_ref(ns, &name))(e)),
                }
                self.journal.suspended.remove(&name);
                self.save()?;
            }
        }
        Ok(())
    }
}

/// The error of suspending or resuming a HelmRelease on the source, for `map_err`.
fn flux_err(action: &'static str, object: &ObjectRef) -> impl FnOnce(FluxError) -> Error {
    let object = object.clone();
    move |e| match e {
        FluxError::Cancelled => Error::Cancelled,
        FluxError::Request { source, .. } => Error::Object {
            action,
            side: "source",
            object,
            source,
        },
        source => Error::Flux {
            action,
            side: "source",
            object,
            source,
        },
    }
}

/// The source's HelmReleases in the namespace, when Flux's CRD is installed there.
async fn helm_releases(source: &Discovery, ns: &str) -> Result<Option<Api<DynamicObject>>, Error> {
    let gvk = Gvk::from_api_version(HELM_RELEASE, "HelmRelease");
    let resource = source.resolve(&gvk).await.map_err(|e| Error::Discovery {
        side: "source",
        source: Box::new(e),
    })?;
    Ok(resource.map(|r| api_for(source, &r, ns)))
}

fn helm_release_ref(ns: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: HELM_RELEASE.into(),
        kind: "HelmRelease".into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

/// Unpauses one object ([`unpause_patch`]); an object already gone is fine.
async fn unpause(api: &Api<DynamicObject>, reference: &ObjectRef) -> Result<(), ::kube::Error> {
    match api
        .patch(
            &reference.name,
            &PatchParams::default(),
            &Patch::Merge(unpause_patch(&reference.kind)),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(::kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
