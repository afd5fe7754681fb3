//! The steps of a [`Mover`] that hold the source still and let go of it: waiting out
//! `block-move`, suspending HelmReleases and pausing Clusters and ClusterClasses on the source
//! (journaled first), and unpausing on the target, or on the source after a failure.

// Errors name the object they concern; they are built only on failure, so their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use futures::stream::{self, StreamExt};

use super::error::{Error, obj_err};
use super::graph::{Node, ObjectRef};
use super::journal::Journal;
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
            // Every HelmRelease to suspend is journaled (one write) before any is changed,
            // then all are suspended at once.
            let mut names = Vec::new();
            for h in list.items {
                let name = h.metadata.name.clone().unwrap_or_default();
                if h.data["spec"]["suspend"] == true && !self.journal.suspended.contains(&name) {
                    continue; // suspended by someone else: leave it as it is
                }
                self.journal.suspended.insert(name.clone());
                names.push(name);
            }
            if !names.is_empty() {
                self.save()?;
            }
            first_error(
                stream::iter(names.iter().map(|name| async move {
                    crate::flux::suspend(source, Suspendable::HelmRelease, ns, name)
                        .await
                        .map_err(flux_err("suspending", &helm_release_ref(ns, name)))
                }))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await,
            )?;
        }
        // Likewise the Clusters and ClusterClasses: journaled first, then paused at once.
        let mut pausing = Vec::new();
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
            pausing.push(n);
        }
        if !pausing.is_empty() {
            self.save()?;
        }
        let patch = Patch::Merge(pause_patch("Cluster", &self.journal.run));
        let class_patch = Patch::Merge(pause_patch("ClusterClass", &self.journal.run));
        let this = &*self;
        first_error(
            stream::iter(pausing.into_iter().map(|n| {
                let patch = if n.reference.kind == "Cluster" {
                    &patch
                } else {
                    &class_patch
                };
                async move {
                    this.api(source, &n.uid)
                        .patch(&n.reference.name, &PatchParams::default(), patch)
                        .await
                        .map_err(obj_err("pausing", "source", &n.reference))?;
                    this.observer
                        .action(format!("paused {} on the source", n.reference));
                    Ok(())
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await,
        )
    }

    /// The objects of the graph that journal keys (`Kind/name`) name, by key.
    fn paused_nodes(&self) -> BTreeMap<String, &Node> {
        self.graph
            .nodes()
            .filter_map(|n| pausable_key(&n.reference).map(|k| (k, n)))
            .filter(|(k, _)| self.journal.paused.contains(k))
            .collect()
    }

    /// Unpauses on the target what this tool paused: removes the field (not `false`), and the
    /// ClusterClass annotation. All at once.
    pub(super) async fn unpause_target(&mut self) -> Result<(), Error> {
        let target = self.target();
        let this = &*self;
        let nodes = this.paused_nodes();
        first_error(
            stream::iter(nodes.into_values().map(|n| async move {
                unpause(&this.api(target, &n.uid), &n.reference)
                    .await
                    .map_err(obj_err("unpausing", "target", &n.reference))
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await,
        )?;
        self.journal.paused.clear();
        Ok(())
    }

    /// Gives the source back after a failure (or a backup): unpauses what this tool paused and
    /// resumes the HelmReleases it suspended, all at once, dropping from the journal each that
    /// is done.
    pub(super) async fn restore_source(&mut self) -> Result<(), Error> {
        let (source, ns) = (self.source(), self.ns());
        let this = &*self;
        let nodes = this.paused_nodes();
        // A key naming no object of the graph has nothing to unpause.
        let outcomes: Vec<(String, Result<(), Error>)> =
            stream::iter(this.journal.paused.iter().map(|key| {
                let node = nodes.get(key).copied();
                async move {
                    let r = match node {
                        Some(n) => unpause(&this.api(source, &n.uid), &n.reference)
                            .await
                            .map_err(obj_err("unpausing", "source", &n.reference)),
                        None => Ok(()),
                    };
                    (key.clone(), r)
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let result = self.forget(outcomes, |j| &mut j.paused);
        self.save()?;
        result?;
        if helm_releases(source, ns).await?.is_some() {
            let outcomes: Vec<(String, Result<(), Error>)> =
                stream::iter(self.journal.suspended.iter().map(|name| async move {
                    let r = match crate::flux::resume(source, Suspendable::HelmRelease, ns, name)
                        .await
                    {
                        // Refused (gone, say): nothing of ours is left on it.
                        Ok(())
                        | Err(FluxError::Request {
                            source: RequestError::Server { .. },
                            ..
                        }) => Ok(()),
                        Err(e) => Err(flux_err("resuming", &helm_release_ref(ns, name))(e)),
                    };
                    (name.clone(), r)
                }))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let result = self.forget(outcomes, |j| &mut j.suspended);
            self.save()?;
            result?;
        }
        Ok(())
    }

    /// Drops from the journal set that `set` picks every entry whose outcome succeeded; the
    /// first failure.
    fn forget(
        &mut self,
        outcomes: Vec<(String, Result<(), Error>)>,
        set: impl Fn(&mut Journal) -> &mut BTreeSet<String>,
    ) -> Result<(), Error> {
        let mut failed = None;
        for (key, r) in outcomes {
            match r {
                Ok(()) => {
                    set(&mut self.journal).remove(&key);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Requests of one step (pausing, unpausing, suspending, resuming) made at once.
const CONCURRENCY: usize = 16;

/// The first failure among `outcomes`, once all have ended.
fn first_error(outcomes: Vec<Result<(), Error>>) -> Result<(), Error> {
    outcomes.into_iter().collect()
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
