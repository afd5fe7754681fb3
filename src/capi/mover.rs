//! Moving a cluster's Cluster API objects from one management cluster to another.
//!
//! Order of work: discover every object in the namespace, plan (graph + sequence), preflight the
//! target, wait out `block-move`, suspend the source's HelmReleases and pause its Clusters and
//! ClusterClasses (recorded in a journal first), copy group by group (create or update, owner
//! references rewritten to target UIDs, status restored), then unpause on the target. A failure
//! after pausing unpauses and resumes the source. The journal lets a re-run after a crash finish
//! the job and undo exactly what this tool paused. The ORC objects that the cluster needs move
//! with it, and their source copies are deleted so that ORC never deletes the cloud resource
//! (see [`super::orc`]).
//!
//! The work is split as clusterctl splits it: discovery, pure transforms (the copy, the pause),
//! the journal, the `Mover` that does the steps (here and in the pause module), and backup
//! and restore through a directory.

// Errors name the object they concern; they are built only on failure, so their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Objects of one group copied (or deleted) at once.
const COPY_CONCURRENCY: usize = 16;

use super::discovery::{discover, preflight, refuse_same_cluster};
use super::error::obj_err;
use super::graph::{Graph, ObjectRef, Sequence};
use super::transform::{set_paused, target_copy};
use crate::kube::{Discovery, RequestError, Resource, until_cancelled};
use crate::manifest::Gvk;
use crate::observe::{Observer, ObserverExt};

use super::discovery::Skipped;
use super::error::Error;
use super::journal::{Journal, journal_path};
use super::transform::DELETE_FOR_MOVE;

/// How to move.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// The namespace holding the cluster (the bootstrap uses `capi-self`).
    pub namespace: String,
    /// Where the journal lives; `None` keeps no journal (no resume after a crash).
    pub journal: Option<std::path::PathBuf>,
    /// Delete the moved objects from the source afterwards.
    pub delete_source: bool,
    /// How long to wait for `block-move` annotations to go.
    pub block_move_timeout: Duration,
}

impl MoveOptions {
    /// Defaults for a namespace.
    pub fn new(namespace: impl Into<String>) -> Self {
        MoveOptions {
            namespace: namespace.into(),
            journal: None,
            delete_source: false,
            block_move_timeout: Duration::from_secs(300),
        }
    }

    /// Defaults for a namespace, journaled next to the cluster's config folder `cluster_dir`
    /// (`clusters/<name>/`) at [`journal_path`].
    pub fn for_cluster_dir(namespace: impl Into<String>, cluster_dir: &Path) -> Self {
        MoveOptions {
            journal: Some(journal_path(cluster_dir)),
            ..MoveOptions::new(namespace)
        }
    }
}

/// What a move did (or, for [`plan`], would do).
#[derive(Debug, Clone, Default)]
pub struct MoveReport {
    /// Objects moved, in move order, group by group.
    pub groups: Vec<Vec<ObjectRef>>,
    /// Objects in the namespace that were not moved.
    pub skipped: Vec<Skipped>,
    /// Owner references dropped because their owner is not moved (e.g. a SealedSecret).
    pub dropped_owner_refs: Vec<(ObjectRef, ObjectRef)>,
}

impl MoveReport {
    /// Every moved object.
    pub fn moved(&self) -> impl Iterator<Item = &ObjectRef> {
        self.groups.iter().flatten()
    }

    fn of(graph: &Graph, seq: &Sequence, skipped: Vec<Skipped>) -> MoveReport {
        let groups = seq
            .groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|u| graph.node(u).expect("sequenced").reference.clone())
                    .collect()
            })
            .collect();
        let dropped_owner_refs = graph
            .nodes()
            .flat_map(|n| {
                n.dangling_owners
                    .iter()
                    .map(|d| (n.reference.clone(), d.clone()))
            })
            .collect();
        MoveReport {
            groups,
            skipped,
            dropped_owner_refs,
        }
    }
}

/// Plans a move without changing anything: the groups in order and what stays behind.
pub async fn plan(source: &Discovery, namespace: &str) -> Result<MoveReport, Error> {
    let (objects, skipped, _) = discover(source, namespace, &CancellationToken::new()).await?;
    let graph = Graph::new(objects);
    let seq = graph.sequence()?;
    Ok(MoveReport::of(&graph, &seq, skipped))
}

/// One move, backup or restore: the clusters it reads from and writes to, how, the namespace's
/// object graph in move order with the resources of its objects (by UID), and the journal.
pub(super) struct Mover<'a> {
    /// The cluster objects move from; `None` when they come from a backup directory.
    source: Option<&'a Discovery>,
    /// The cluster objects move to; `None` when they go to a backup directory.
    target: Option<&'a Discovery>,
    pub(super) options: &'a MoveOptions,
    pub(super) observer: &'a dyn Observer,
    pub(super) cancel: &'a CancellationToken,
    pub(super) graph: Graph,
    pub(super) seq: Sequence,
    pub(super) resources: BTreeMap<String, Resource>,
    pub(super) journal: Journal,
}

impl<'a> Mover<'a> {
    /// A mover with its journal opened (or started) and no objects yet.
    pub(super) fn new(
        source: Option<&'a Discovery>,
        target: Option<&'a Discovery>,
        options: &'a MoveOptions,
        observer: &'a dyn Observer,
        cancel: &'a CancellationToken,
    ) -> Result<Mover<'a>, Error> {
        Ok(Mover {
            source,
            target,
            options,
            observer,
            cancel,
            graph: Graph::new(Vec::new()),
            seq: Sequence { groups: Vec::new() },
            resources: BTreeMap::new(),
            journal: Journal::open(options)?,
        })
    }

    /// Discovers the namespace's objects on the source, and returns the move's report.
    pub(super) async fn discover(&mut self) -> Result<MoveReport, Error> {
        let ns = self.ns();
        self.observer
            .action(format!("discovering Cluster API objects in namespace {ns}"));
        let (objects, skipped, resources) = discover(self.source(), ns, self.cancel).await?;
        self.load(objects, skipped, resources)
    }

    /// Takes `objects` (with their `resources` by UID) as what moves, and returns the report.
    pub(super) fn load(
        &mut self,
        objects: Vec<Value>,
        skipped: Vec<Skipped>,
        resources: BTreeMap<String, Resource>,
    ) -> Result<MoveReport, Error> {
        self.graph = Graph::new(objects);
        self.seq = self.graph.sequence()?;
        self.resources = resources;
        Ok(MoveReport::of(&self.graph, &self.seq, skipped))
    }

    /// The namespace moved.
    pub(super) fn ns(&self) -> &'a str {
        self.options.namespace.as_str()
    }

    /// The source cluster (operations that read one are built with it).
    pub(super) fn source(&self) -> &'a Discovery {
        self.source
            .expect("an operation that reads the source cluster has one")
    }

    /// The target cluster (operations that write one are built with it).
    pub(super) fn target(&self) -> &'a Discovery {
        self.target
            .expect("an operation that writes the target cluster has one")
    }

    /// The API of the object with source UID `uid` on `cluster`.
    pub(super) fn api(&self, cluster: &Discovery, uid: &str) -> Api<DynamicObject> {
        api_for(cluster, &self.resources[uid], self.ns())
    }

    /// Writes the journal, when this run keeps one.
    pub(super) fn save(&self) -> Result<(), Error> {
        self.journal.record(self.options.journal.as_deref())
    }

    /// The operation is complete: removes the journal.
    pub(super) fn finish(&self) -> Result<(), Error> {
        Journal::discard(self.options.journal.as_deref())
    }

    /// Copies every object, group by group, to the target or into a backup directory. To the
    /// target: created or replaced, owner references rewritten to the target's UIDs, status
    /// restored, paused when this tool paused it. Into a directory: one file each
    /// ([`super::directory::write_object`]). Objects are re-read from the source right before
    /// copying (pausing changed Clusters); without a source they are copied as loaded.
    pub(super) async fn copy_all(&mut self, to: CopyTo<'_>) -> Result<(), Error> {
        let start = Instant::now();
        let total = self.graph.len() as u64;
        let mut done = 0;
        let groups = self.seq.groups.clone();
        // The source as it is now (pausing changed Clusters): one list per kind, all at once,
        // instead of one read per object.
        let current = match self.source {
            Some(source) => self.reread(source).await?,
            None => BTreeMap::new(),
        };
        for group in &groups {
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            // The objects of a group own none of each other (owners are in earlier groups), so
            // they are copied at once; the journal is written when the whole group is there.
            let (this, current) = (&*self, &current);
            let mut copies =
                stream::iter(group.iter().map(|uid| async move {
                    (uid, this.copy_one(uid, current.get(uid), to).await)
                }))
                .buffer_unordered(COPY_CONCURRENCY);
            let mut landed = Vec::new();
            let mut failed = None;
            while let Some((uid, r)) = copies.next().await {
                match r {
                    Ok(target_uid) => {
                        landed.push((uid.clone(), target_uid));
                        done += 1;
                        let what = match to {
                            CopyTo::Target => "objects copied",
                            CopyTo::Directory(_) => "objects saved",
                        };
                        self.observer.progress(what, done, Some(total));
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            drop(copies);
            if let Some(e) = failed {
                // The group's other copies stay unrecorded: a rerun copies the group again
                // (an existing copy is replaced), and the rollback counts whole groups.
                return Err(e);
            }
            if let CopyTo::Target = to {
                self.journal.copied.extend(
                    landed
                        .into_iter()
                        .map(|(uid, target)| (uid, target.unwrap_or_default())),
                );
                self.save()?;
            }
        }
        let what = match to {
            CopyTo::Target => format!("copied {done} objects to the target"),
            CopyTo::Directory(directory) => {
                format!("saved {done} objects to {}", directory.display())
            }
        };
        self.observer.success(what, Some(start.elapsed()));
        Ok(())
    }

    /// The moved objects as the source holds them now, by UID: every kind listed once, all
    /// kinds at once. An object missing from its list (deleted, or replaced under another UID)
    /// is left out; [`Mover::copy_one`] reads it by name.
    async fn reread(&self, source: &Discovery) -> Result<BTreeMap<String, Value>, Error> {
        let mut kinds: BTreeMap<(&str, &str), &Resource> = BTreeMap::new();
        for r in self.resources.values() {
            kinds.insert((&r.api.api_version, &r.api.kind), r);
        }
        let ns = self.ns();
        let lists: Vec<_> = stream::iter(kinds.into_values())
            .map(|r| async move {
                let list = until_cancelled(
                    self.cancel,
                    api_for(source, r, ns).list(&ListParams::default()),
                )
                .await;
                (r, list)
            })
            .buffer_unordered(COPY_CONCURRENCY)
            .collect()
            .await;
        let mut current = BTreeMap::new();
        for (r, list) in lists {
            let list = list.map_err(|e| match e {
                RequestError::Cancelled => Error::Cancelled,
                source => Error::List {
                    side: "source",
                    what: format!("{} in {ns}", r.api.kind),
                    source,
                },
            })?;
            for item in list.items {
                let Some(uid) = item.metadata.uid.clone() else {
                    continue;
                };
                if !self.resources.contains_key(&uid) {
                    continue;
                }
                let mut v = serde_json::to_value(&item).expect("serialises");
                v["apiVersion"] = json!(r.api.api_version);
                v["kind"] = json!(r.api.kind);
                current.insert(uid, v);
            }
        }
        Ok(current)
    }

    /// Copies one object (see [`Mover::copy_all`]), as `listed` by [`Mover::reread`] when it
    /// was; the UID of its copy on the target.
    async fn copy_one(
        &self,
        uid: &str,
        listed: Option<&Value>,
        to: CopyTo<'_>,
    ) -> Result<Option<String>, Error> {
        let node = self.graph.node(uid).expect("sequenced");
        let r = &self.resources[uid];
        let current = match self.source {
            Some(_) if listed.is_some() => listed.expect("listed").clone(),
            Some(source) => {
                let current =
                    until_cancelled(self.cancel, self.api(source, uid).get(&node.reference.name))
                        .await
                        .map_err(request_err("reading", "source", &node.reference))?;
                let mut current = serde_json::to_value(&current).expect("serialises");
                current["apiVersion"] = json!(r.api.api_version);
                current["kind"] = json!(r.api.kind);
                current
            }
            None => node.object.clone(),
        };
        let paused = self.journal.has_paused(&node.reference);
        if let CopyTo::Directory(directory) = to {
            super::directory::write_object(directory, &node.reference, current, paused)?;
            return Ok(None);
        }
        let target = self.target();
        let mut body = target_copy(&current, &self.journal.copied);
        // Created paused when this tool unpauses it at the end: no controller on the
        // target acts on it before everything it owns is there.
        if paused {
            set_paused(&mut body, true);
        }
        let api = self.api(target, uid);
        let stored = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(Error::Cancelled),
            stored = create_or_replace(&api, &node.reference, &body) => stored?,
        };
        if r.has_status && current.get("status").is_some_and(|s| !s.is_null()) {
            // A merge patch: no resourceVersion, so no conflict with a controller that
            // writes status meanwhile.
            let status = Patch::Merge(json!({"status": current["status"].clone()}));
            until_cancelled(
                self.cancel,
                api.patch_status(&node.reference.name, &PatchParams::default(), &status),
            )
            .await
            .map_err(request_err(
                "restoring status of",
                "target",
                &node.reference,
            ))?;
        }
        Ok(Some(stored.metadata.uid.clone().unwrap_or_default()))
    }

    /// Deletes the moved objects from the source, last group first, marked as clusterctl marks
    /// them and without their finalizers (ORC objects guarded, see [`super::orc`]).
    async fn delete_from_source(&self) -> Result<(), Error> {
        for group in self.seq.groups.iter().rev() {
            // One group at a time, its objects at once; the first failure is reported once the
            // group's other deletions have ended.
            let outcomes: Vec<Result<(), Error>> =
                stream::iter(group.iter().map(|uid| self.delete_one(uid)))
                    .buffer_unordered(COPY_CONCURRENCY)
                    .collect()
                    .await;
            outcomes.into_iter().collect::<Result<(), Error>>()?;
        }
        self.observer.success(
            format!("deleted {} moved objects from the source", self.graph.len()),
            None,
        );
        Ok(())
    }

    /// Deletes one moved object from the source (see [`Mover::delete_from_source`]).
    async fn delete_one(&self, uid: &str) -> Result<(), Error> {
        let node = self.graph.node(uid).expect("sequenced");
        let api = self.api(self.source(), uid);
        if super::orc::is_orc(&node.object) {
            return delete_orc_copy(&api, &node.reference).await;
        }
        let patch = json!({"metadata": {"finalizers": null, "annotations": {DELETE_FOR_MOVE: ""}}});
        match api
            .patch(
                &node.reference.name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => {}
            Err(::kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => {
                return Err(obj_err("marking for deletion", "source", &node.reference)(
                    e,
                ));
            }
        }
        match api
            .delete(&node.reference.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(::kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(obj_err("deleting", "source", &node.reference)(e)),
        }
    }

    /// Finishes the deletion of ORC source copies that an interrupted earlier move left guarded
    /// (being deleted, held by [`super::orc::MOVE_GUARD_FINALIZER`]): once the copy exists on
    /// the target, every finalizer goes; without a copy the object stays guarded (the cloud
    /// resource is safe) and a warning names it.
    async fn release_guarded(&self, report: &MoveReport) -> Result<(), Error> {
        let (source, target, ns) = (self.source(), self.target(), self.ns());
        for s in report
            .skipped
            .iter()
            .filter(|s| s.reason == super::orc::GUARDED_REASON)
        {
            let gvk = Gvk::from_api_version(&s.object.api_version, &s.object.kind);
            let mut resolved = Vec::new();
            for (d, side) in [(source, "source"), (target, "target")] {
                resolved.push(d.resolve(&gvk).await.map_err(|e| Error::Discovery {
                    side,
                    source: Box::new(e),
                })?);
            }
            let [Some(r), Some(t)] =
                <[Option<Resource>; 2]>::try_from(resolved).expect("two sides")
            else {
                continue;
            };
            let on_target = api_for(target, &t, ns)
                .get_opt(&s.object.name)
                .await
                .map_err(obj_err("reading", "target", &s.object))?;
            if on_target.is_none() {
                self.observer.warning(format!(
                    "{} is held for deletion by {} but has no copy on the target: left as it is",
                    s.object,
                    super::orc::MOVE_GUARD_FINALIZER
                ));
                continue;
            }
            match api_for(source, &r, ns)
                .patch(
                    &s.object.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await
            {
                Ok(_) => {}
                Err(::kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    return Err(obj_err("releasing after deletion", "source", &s.object)(e));
                }
            }
        }
        Ok(())
    }
}

/// Moves every Cluster API object of `options.namespace` from `source` to `target`.
///
/// # Errors
///
/// [`Error::SameCluster`] when both sides are one cluster, [`Error::Preflight`] when the target
/// lacks kinds the move carries (nothing changed yet), [`Error::Blocked`] when a `block-move`
/// annotation outlives its timeout, [`Error::Rolledback`] when a copy failed (the source was
/// unpaused and resumed; rerun to finish), [`Error::Journal`] when the journal cannot be read or
/// written, and [`Error::Cancelled`].
#[tracing::instrument(name = "move", level = "info", skip_all, fields(namespace = %options.namespace))]
pub async fn move_objects(
    source: &Discovery,
    target: &Discovery,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let ns = options.namespace.as_str();
    let mut mover = Mover::new(Some(source), Some(target), options, observer, cancel)?;
    let report = mover.discover().await?;

    refuse_same_cluster(source, target, cancel).await?;
    preflight(target, mover.resources.values(), cancel).await?;
    // As clusterctl move: the namespace is created on the target when missing. Nothing is
    // paused yet, so Ctrl-C can drop the request.
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Error::Cancelled),
        created = ensure_namespace(target, ns) => created?,
    }
    mover.wait_unblocked().await?;
    mover.pause_source().await?;

    if let Err(e) = mover.copy_all(CopyTo::Target).await {
        let copied = mover.journal.copied.len();
        // Leave nothing stuck: the source takes over again.
        mover.restore_source().await?;
        return Err(Error::Rolledback {
            copied,
            source: Box::new(e),
        });
    }

    mover.unpause_target().await?;
    // HelmReleases stay suspended on the source (they would recreate what moved); on the
    // target they are Flux's to create from git.
    if options.delete_source {
        mover.delete_from_source().await?;
        mover.release_guarded(&report).await?;
    }
    mover.finish()?;
    observer.success(
        format!("moved {} objects from namespace {ns}", mover.graph.len()),
        None,
    );
    Ok(report)
}

/// The error of `action` on `object` on the `side` cluster for a request raced against the
/// cancellation token: [`Error::Cancelled`] when it was cancelled.
pub(super) fn request_err(
    action: &'static str,
    side: &'static str,
    object: &ObjectRef,
) -> impl FnOnce(RequestError) -> Error {
    let object = object.clone();
    move |source| match source {
        RequestError::Cancelled => Error::Cancelled,
        source => Error::Object {
            action,
            side,
            object,
            source,
        },
    }
}

/// The API of `resource` in `namespace` on a cluster.
pub(super) fn api_for(
    discovery: &Discovery,
    resource: &Resource,
    namespace: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(discovery.client().clone(), namespace, &resource.api)
}

/// Where [`Mover::copy_all`] copies to.
#[derive(Debug, Clone, Copy)]
pub(super) enum CopyTo<'p> {
    /// The target cluster.
    Target,
    /// A backup directory.
    Directory(&'p Path),
}

/// Creates `body` on the target, or replaces the object there. Controllers on the target may
/// write the object between our read and our update: a conflict re-reads and tries again.
async fn create_or_replace(
    api: &Api<DynamicObject>,
    reference: &ObjectRef,
    body: &Value,
) -> Result<DynamicObject, Error> {
    // A fresh target holds none of the objects: create first, and read only when the object
    // exists (a rerun after a crash).
    let mut attempt = 0;
    let mut exists = false;
    loop {
        attempt += 1;
        let existing = if exists {
            api.get_opt(&reference.name)
                .await
                .map_err(obj_err("reading", "target", reference))?
        } else {
            None
        };
        let result = match existing {
            None => {
                api.create(
                    &PostParams::default(),
                    &serde_json::from_value(body.clone()).expect("object"),
                )
                .await
            }
            Some(existing) => {
                let mut body = body.clone();
                body["metadata"]["resourceVersion"] = json!(existing.metadata.resource_version);
                api.replace(
                    &reference.name,
                    &PostParams::default(),
                    &serde_json::from_value(body).expect("object"),
                )
                .await
            }
        };
        match result {
            Ok(stored) => return Ok(stored),
            Err(::kube::Error::Api(e)) if e.code == 409 && attempt < 6 => {
                // Created meanwhile (or before): replace it; written meanwhile: read again.
                exists = true;
                continue;
            }
            Err(e) => return Err(obj_err("writing", "target", reference)(e)),
        }
    }
}

/// Creates the namespace on the target when missing.
pub(super) async fn ensure_namespace(target: &Discovery, ns: &str) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(target.client().clone());
    let reference = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: String::new(),
        name: ns.into(),
    };
    let body: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    match api.create(&PostParams::default(), &body).await {
        Ok(_) => Ok(()),
        Err(::kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(obj_err("creating", "target", &reference)(e)),
    }
}

/// Deletes the source copy of a moved ORC object without ORC's deletion running: guard
/// finalizer only, delete, then no finalizer (see [`super::orc`]).
async fn delete_orc_copy(api: &Api<DynamicObject>, object: &ObjectRef) -> Result<(), Error> {
    let steps: [(&'static str, Option<Value>); 3] = [
        (
            "guarding before deletion",
            Some(json!({"metadata": {
                "finalizers": [super::orc::MOVE_GUARD_FINALIZER],
                "annotations": {DELETE_FOR_MOVE: ""}}})),
        ),
        ("deleting", None),
        (
            "releasing after deletion",
            Some(json!({"metadata": {"finalizers": null}})),
        ),
    ];
    for (action, patch) in steps {
        let result = match patch {
            Some(p) => api
                .patch(&object.name, &PatchParams::default(), &Patch::Merge(p))
                .await
                .map(|_| ()),
            None => api
                .delete(&object.name, &DeleteParams::default())
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {}
            Err(::kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(obj_err(action, "source", object)(e)),
        }
    }
    Ok(())
}
