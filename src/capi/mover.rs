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

// Errors name the object they concern; they are built only on failure, so their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::graph::{Graph, ObjectRef};
use crate::kube::{Discovery, RequestError, Resource};
use crate::manifest::Gvk;
use crate::observe::{Observer, ObserverExt};

/// Annotation that holds a move back while present (clusterctl's contract).
pub const BLOCK_MOVE: &str = "clusterctl.cluster.x-k8s.io/block-move";
/// Annotation clusterctl sets on objects it deletes from the source after a move.
pub const DELETE_FOR_MOVE: &str = "clusterctl.cluster.x-k8s.io/delete-for-move";
/// Annotation that pauses a ClusterClass.
pub const PAUSED: &str = "cluster.x-k8s.io/paused";
/// Annotation this tool puts on what it pauses for a move, holding the move's run id: a later
/// run recognises its own pause by it even when the journal is lost, and never mistakes it for
/// a pause the user asked for.
pub const PAUSED_BY_MOVE: &str = "capi-manage.io/paused-by-move";

/// What went wrong moving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Listing types or objects on a cluster failed.
    #[error("cannot list {what} on the {side} cluster")]
    List {
        /// `source` or `target`.
        side: &'static str,
        /// What was listed.
        what: String,
        /// Why.
        #[source]
        source: RequestError,
    },
    /// Discovery failed.
    #[error("discovery failed on the {side} cluster")]
    Discovery {
        /// `source` or `target`.
        side: &'static str,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// The target lacks kinds that objects to move need (providers not installed).
    #[error("the target cluster does not serve {}: install the same providers there first", .missing.join(", "))]
    Preflight {
        /// The missing kinds.
        missing: Vec<String>,
    },
    /// The owner references cannot be ordered.
    #[error(transparent)]
    Cycle(#[from] super::graph::CycleError),
    /// An object kept its block-move annotation past the timeout.
    #[error("{object} still has annotation {BLOCK_MOVE} after {}s; its provider is not ready to move it", timeout.as_secs())]
    Blocked {
        /// The object.
        object: ObjectRef,
        /// How long we waited.
        timeout: Duration,
    },
    /// A request about one object failed.
    #[error("{action} {object} on the {side} cluster")]
    Object {
        /// What was being done.
        action: &'static str,
        /// `source` or `target`.
        side: &'static str,
        /// The object.
        object: ObjectRef,
        /// The server's answer.
        #[source]
        source: RequestError,
    },
    /// The journal could not be read or written.
    #[error("move journal {}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The move failed and the source was restored (unpaused, resumed); `copied` objects exist on
    /// the target.
    #[error(
        "move failed after copying {copied} objects; the source cluster was unpaused and resumed, re-run to finish"
    )]
    Rolledback {
        /// How many objects were already on the target.
        copied: usize,
        /// The failure.
        #[source]
        source: Box<Error>,
    },
    /// A backup directory or file could not be read or written.
    #[error("{}: cannot {what}", path.display())]
    Directory {
        /// The directory or file.
        path: PathBuf,
        /// What failed, e.g. "write the backup file".
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A backup file is not a Kubernetes object.
    #[error("backup file {}", path.display())]
    BackupFile {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: crate::manifest::Error,
    },
    /// A backup file holds an object restore cannot use.
    #[error("backup file {}: {problem}", path.display())]
    BackupObject {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A backup directory that exists already holds files.
    #[error(
        "{}: exists and is not empty; back up into a new or empty folder (a backup holds Secrets and is made private)", path.display()
    )]
    DirectoryNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// Source and target are the same cluster.
    #[error(
        "the source and target are the same cluster (kube-system uid {uid}): check --from-kubeconfig/--to-kubeconfig and their contexts"
    )]
    SameCluster {
        /// The uid of their kube-system Namespace.
        uid: String,
    },
    /// A backup directory holds no objects.
    #[error("{}: no backup files (`<Kind>_<namespace>_<name>.yaml`) to restore", path.display())]
    EmptyBackup {
        /// The directory.
        path: PathBuf,
    },
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// The folder under a cluster's config folder (`clusters/<name>/`) for local state; the
/// repository's `.gitignore` keeps it out of git.
pub const STATE_DIR: &str = ".capi-manage";

/// The default journal of a cluster's move: `<cluster_dir>/.capi-manage/move-journal.json`.
pub fn journal_path(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join(STATE_DIR).join("move-journal.json")
}

/// How to move.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// The namespace holding the cluster (the bootstrap uses `capi-self`).
    pub namespace: String,
    /// Where the journal lives; `None` keeps no journal (no resume after a crash).
    pub journal: Option<PathBuf>,
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

/// An object that stays behind, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object.
    pub object: ObjectRef,
    /// Why it is not moved.
    pub reason: String,
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
}

/// The journal: what this tool changed on the source, so a re-run can finish and undo it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journal {
    /// Namespace being moved.
    pub namespace: String,
    /// Clusters and ClusterClasses this tool paused on the source (`Kind/name`).
    pub paused: BTreeSet<String>,
    /// HelmReleases this tool suspended on the source (names).
    pub suspended: BTreeSet<String>,
    /// Source UID -> target UID of objects already copied.
    pub copied: BTreeMap<String, String>,
    /// The id of the move run that wrote this journal (the value of [`PAUSED_BY_MOVE`]).
    #[serde(default)]
    pub run: String,
}

impl Journal {
    fn load(path: &Path) -> Result<Option<Journal>, Error> {
        let invalid = |e: String| Error::Journal {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let journal: Journal =
                    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
                // Every paused entry names an object as `Kind/name`.
                if let Some(bad) = journal.paused.iter().find(|k| {
                    !k.split_once('/')
                        .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
                }) {
                    return Err(invalid(format!(
                        "field `paused`: entry {bad:?} is not `Kind/name`; fix or remove the entry (or move the file aside and unpause the Clusters by hand)"
                    )));
                }
                Ok(Some(journal))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Journal {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn save(&self, path: &Path) -> Result<(), Error> {
        let err = |source| Error::Journal {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            private_dir(dir).map_err(err)?;
        }
        write_private(
            path,
            &serde_json::to_vec_pretty(self).expect("journal serialises"),
        )
        .map_err(err)
    }
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

/// The kinds whose objects move: CRDs of the Cluster API groups, `addons.stackhpc.com` and ORC
/// (`openstack.k-orc.cloud`, of which only what a cluster needs moves), CRDs labelled for
/// clusterctl, plus Secrets and ConfigMaps. Namespaced kinds only.
async fn kinds(discovery: &Discovery, side: &'static str) -> Result<Vec<Kind>, Error> {
    let crd = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let api: Api<DynamicObject> = Api::all_with(discovery.client().clone(), &crd);
    let crds = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::List {
            side,
            what: "CustomResourceDefinitions".into(),
            source: e.into(),
        })?;
    let mut gvks: Vec<Gvk> = vec![
        Gvk::from_api_version("v1", "Secret"),
        Gvk::from_api_version("v1", "ConfigMap"),
    ];
    for c in crds.items {
        let spec = &c.data["spec"];
        let group = spec["group"].as_str().unwrap_or_default();
        let labelled = c.metadata.labels.as_ref().is_some_and(|l| {
            l.keys()
                .any(|k| k.starts_with("clusterctl.cluster.x-k8s.io"))
        });
        if spec["scope"] != "Namespaced"
            || !(is_capi_group(group) || group == super::orc::ORC_GROUP || labelled)
        {
            continue;
        }
        let storage = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["storage"] == true);
        if let (Some(v), Some(kind)) = (
            storage.and_then(|v| v["name"].as_str()),
            spec["names"]["kind"].as_str(),
        ) {
            gvks.push(Gvk {
                group: group.into(),
                version: v.into(),
                kind: kind.into(),
            });
        }
    }
    let mut out = Vec::new();
    for gvk in gvks {
        if let Some(resource) =
            discovery
                .resolve(&gvk)
                .await
                .map_err(|source| Error::Discovery {
                    side,
                    source: Box::new(source),
                })?
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

/// Everything in the namespace, split into what moves and what stays (with reasons).
async fn discover(
    discovery: &Discovery,
    namespace: &str,
) -> Result<(Vec<Value>, Vec<Skipped>, BTreeMap<String, Resource>), Error> {
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    let mut resources = BTreeMap::new();
    for k in kinds(discovery, "source").await? {
        let api: Api<DynamicObject> =
            Api::namespaced_with(discovery.client().clone(), namespace, &k.resource.api);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::List {
                side: "source",
                what: format!("{} in {namespace}", k.resource.api.kind),
                source: e.into(),
            })?;
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

/// Plans a move without changing anything: the groups in order and what stays behind.
pub async fn plan(source: &Discovery, namespace: &str) -> Result<MoveReport, Error> {
    let (objects, skipped, _) = discover(source, namespace).await?;
    report_of(&Graph::new(objects), skipped)
}

fn report_of(graph: &Graph, skipped: Vec<Skipped>) -> Result<MoveReport, Error> {
    let seq = graph.sequence()?;
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
    Ok(MoveReport {
        groups,
        skipped,
        dropped_owner_refs,
    })
}

/// The copy of a source object to create on the target.
fn target_copy(source: &Value, uid_map: &BTreeMap<String, String>) -> Value {
    let mut o = source.clone();
    if let Some(md) = o["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            md.remove(k);
        }
        if let Some(anns) = md.get_mut("annotations").and_then(Value::as_object_mut) {
            anns.retain(|k, _| {
                !k.starts_with("kopf.zalando.org/")
                    && k != "kubectl.kubernetes.io/last-applied-configuration"
            });
        }
        let owners: Vec<Value> = md
            .get("ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let target = uid_map.get(r["uid"].as_str()?)?;
                let mut r = r.clone();
                r["uid"] = json!(target);
                Some(r)
            })
            .collect();
        if owners.is_empty() {
            md.remove("ownerReferences");
        } else {
            md.insert("ownerReferences".into(), Value::Array(owners));
        }
    }
    o.as_object_mut().expect("object").remove("status");
    o
}

fn api_for(discovery: &Discovery, resource: &Resource, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(discovery.client().clone(), namespace, &resource.api)
}

fn obj_err(
    action: &'static str,
    side: &'static str,
    object: &ObjectRef,
) -> impl FnOnce(::kube::Error) -> Error {
    let object = object.clone();
    move |e| Error::Object {
        action,
        side,
        object,
        source: e.into(),
    }
}

/// What a move or backup starts from: the journal, the namespace's object graph, its report and
/// move order, and the resources of the kinds found.
struct Prepared {
    journal: Journal,
    graph: Graph,
    report: MoveReport,
    seq: super::graph::Sequence,
    resources: BTreeMap<String, Resource>,
}

async fn prepare(
    source: &Discovery,
    options: &MoveOptions,
    observer: &dyn Observer,
) -> Result<Prepared, Error> {
    let ns = options.namespace.as_str();
    let journal = load_journal(options)?;
    observer.action(format!("discovering Cluster API objects in namespace {ns}"));
    let (objects, skipped, resources) = discover(source, ns).await?;
    let graph = Graph::new(objects);
    let report = report_of(&graph, skipped)?;
    let seq = graph.sequence()?;
    Ok(Prepared {
        journal,
        graph,
        report,
        seq,
        resources,
    })
}

/// Moves every Cluster API object of `options.namespace` from `source` to `target`.
pub async fn move_objects(
    source: &Discovery,
    target: &Discovery,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let ns = options.namespace.as_str();
    let Prepared {
        mut journal,
        graph,
        report,
        seq,
        resources,
    } = prepare(source, options, observer).await?;

    refuse_same_cluster(source, target).await?;
    preflight(target, resources.values()).await?;
    // As clusterctl move: the namespace is created on the target when missing.
    ensure_namespace(target, ns).await?;
    wait_unblocked(source, &graph, &resources, options, observer, cancel).await?;
    pause_source(source, &graph, &resources, &mut journal, options, observer).await?;

    let copied = copy_all(
        Some(source),
        target,
        &graph,
        &seq,
        &resources,
        &mut journal,
        options,
        observer,
        cancel,
    )
    .await;
    if let Err(e) = copied {
        let copied = journal.copied.len();
        // Leave nothing stuck: the source takes over again.
        restore_source(source, &graph, &resources, &mut journal, options).await?;
        return Err(Error::Rolledback {
            copied,
            source: Box::new(e),
        });
    }

    unpause_target(target, &graph, &resources, &mut journal, ns).await?;
    // HelmReleases stay suspended on the source (they would recreate what moved); on the
    // target they are Flux's to create from git.
    if options.delete_source {
        delete_from_source(source, &graph, &seq, &resources, ns, observer).await?;
        release_guarded(source, target, &report, ns, observer).await?;
    }
    remove_journal(options)?;
    observer.success(
        format!("moved {} objects from namespace {ns}", graph.len()),
        None,
    );
    Ok(report)
}

fn load_journal(options: &MoveOptions) -> Result<Journal, Error> {
    let mut journal = match &options.journal {
        Some(p) => Journal::load(p)?.unwrap_or_default(),
        None => Journal::default(),
    };
    journal.namespace = options.namespace.clone();
    if journal.run.is_empty() {
        journal.run = run_id();
    }
    Ok(journal)
}

/// A fresh run id: the time and the process, enough to tell two runs apart in an annotation.
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_secs(), std::process::id())
}

/// The operation is complete: the journal has nothing left to resume.
fn remove_journal(options: &MoveOptions) -> Result<(), Error> {
    let Some(p) = &options.journal else {
        return Ok(());
    };
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Journal {
            path: p.clone(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The target serves every kind we are about to create.
async fn preflight<'a>(
    target: &Discovery,
    resources: impl IntoIterator<Item = &'a Resource>,
) -> Result<(), Error> {
    let mut missing = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for r in resources {
        if !seen.insert((r.api.api_version.clone(), r.api.kind.clone())) {
            continue;
        }
        let gvk = Gvk::from_api_version(&r.api.api_version, &r.api.kind);
        if target
            .resolve(&gvk)
            .await
            .map_err(|source| Error::Discovery {
                side: "target",
                source: Box::new(source),
            })?
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
async fn refuse_same_cluster(source: &Discovery, target: &Discovery) -> Result<(), Error> {
    async fn uid(d: &Discovery, side: &'static str) -> Result<String, Error> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(d.client().clone());
        let ns = api.get("kube-system").await.map_err(|e| Error::List {
            side,
            what: "Namespace kube-system".into(),
            source: RequestError::from(e),
        })?;
        Ok(ns.metadata.uid.unwrap_or_default())
    }
    let (s, t) = (uid(source, "source").await?, uid(target, "target").await?);
    if !s.is_empty() && s == t {
        return Err(Error::SameCluster { uid: s });
    }
    Ok(())
}

/// `Kind/name` of a Cluster or ClusterClass of `cluster.x-k8s.io`, the objects that pause.
fn pausable_key(reference: &ObjectRef) -> Option<String> {
    let kind = reference.kind.as_str();
    (reference.group() == "cluster.x-k8s.io" && (kind == "Cluster" || kind == "ClusterClass"))
        .then(|| format!("{kind}/{}", reference.name))
}

/// Sets (`true`) or clears the pause of a Cluster (`spec.paused`) or ClusterClass (annotation)
/// in an object body.
fn set_paused(body: &mut Value, kind: &str, paused: bool) {
    if !paused && let Some(a) = body["metadata"]["annotations"].as_object_mut() {
        a.remove(PAUSED_BY_MOVE);
        if a.is_empty() {
            body["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
    if kind == "Cluster" {
        if paused {
            body["spec"]["paused"] = json!(true);
        } else if let Some(spec) = body["spec"].as_object_mut() {
            spec.remove("paused");
        }
    } else if paused {
        body["metadata"]["annotations"][PAUSED] = json!("");
    } else if let Some(a) = body["metadata"]["annotations"].as_object_mut() {
        a.remove(PAUSED);
        if a.is_empty() {
            body["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
}

/// Unpauses on the target what this tool paused: removes the field (not `false`), and the
/// ClusterClass annotation.
async fn unpause_target(
    target: &Discovery,
    graph: &Graph,
    resources: &BTreeMap<String, Resource>,
    journal: &mut Journal,
    ns: &str,
) -> Result<(), Error> {
    for key in journal.paused.clone() {
        let Some((kind, name)) = key.split_once('/') else {
            continue; // checked when the journal was loaded
        };
        if let Some(node) = graph
            .nodes()
            .find(|n| n.reference.kind == kind && n.reference.name == name)
        {
            let r = &resources[&node.uid];
            let api = api_for(target, r, ns);
            unpause(&api, &node.reference, kind).await.map_err(obj_err(
                "unpausing",
                "target",
                &node.reference,
            ))?;
        }
    }
    journal.paused.clear();
    Ok(())
}

/// The file of one object in a backup directory, named as clusterctl names them:
/// `<Kind>_<namespace>_<name>.yaml`.
pub fn backup_file_name(reference: &ObjectRef) -> String {
    format!(
        "{}_{}_{}.yaml",
        reference.kind, reference.namespace, reference.name
    )
}

/// Creates `dir` (and missing parents) and makes it private (0700).
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    crate::fs::private_dir(dir)
}

/// Writes `bytes` to `path` whole, readable by the owner only ([`crate::fs::write_atomic`]).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fs::write_atomic(path, bytes, crate::fs::Access::Private)
}

/// Backs up every Cluster API object of `options.namespace` on `source` into `directory`, as
/// `clusterctl move --to-directory` does: one YAML file per object
/// ([`backup_file_name`]), files 0600 in a 0700 directory (Secrets are among them). The source
/// is paused while it is read (so the files are one consistent state) and resumed afterwards;
/// the files hold the objects as they were before this pause (a Cluster paused by someone else
/// stays paused in the files). UIDs and owner references are kept: [`restore`] rebuilds the
/// graph from them.
pub async fn backup(
    source: &Discovery,
    directory: &Path,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let ns = options.namespace.as_str();
    let Prepared {
        mut journal,
        graph,
        report,
        seq,
        resources,
    } = prepare(source, options, observer).await?;
    match std::fs::read_dir(directory) {
        Ok(mut entries) => {
            // Never chmod a folder that exists (it could be /tmp or a home): use it only when
            // it is empty.
            if entries.next().is_some() {
                return Err(Error::DirectoryNotEmpty {
                    path: directory.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            private_dir(directory).map_err(|source| Error::Directory {
                path: directory.to_path_buf(),
                what: "create the backup directory (mode 0700)",
                source,
            })?;
        }
        Err(source) => {
            return Err(Error::Directory {
                path: directory.to_path_buf(),
                what: "read the backup directory",
                source,
            });
        }
    }
    wait_unblocked(source, &graph, &resources, options, observer, cancel).await?;
    pause_source(source, &graph, &resources, &mut journal, options, observer).await?;
    let written = write_backup(
        source, directory, &graph, &seq, &resources, &journal, ns, observer, cancel,
    )
    .await;
    restore_source(source, &graph, &resources, &mut journal, options).await?;
    if let Err(e) = written {
        return Err(Error::Rolledback {
            copied: 0,
            source: Box::new(e),
        });
    }
    remove_journal(options)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn write_backup(
    source: &Discovery,
    directory: &Path,
    graph: &Graph,
    seq: &super::graph::Sequence,
    resources: &BTreeMap<String, Resource>,
    journal: &Journal,
    ns: &str,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let start = Instant::now();
    let total = graph.len() as u64;
    let mut done = 0;
    for uid in seq.groups.iter().flatten() {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let node = graph.node(uid).expect("sequenced");
        let r = &resources[uid];
        let current = api_for(source, r, ns)
            .get(&node.reference.name)
            .await
            .map_err(obj_err("reading", "source", &node.reference))?;
        let mut current = serde_json::to_value(&current).expect("serialises");
        current["apiVersion"] = json!(r.api.api_version);
        current["kind"] = json!(r.api.kind);
        if let Some(md) = current["metadata"].as_object_mut() {
            md.remove("managedFields");
        }
        if let Some(key) = pausable_key(&node.reference)
            && journal.paused.contains(&key)
        {
            set_paused(&mut current, &node.reference.kind, false);
        }
        let path = directory.join(backup_file_name(&node.reference));
        let yaml = crate::manifest::to_yaml(&[crate::manifest::Object::new(current)]);
        write_private(&path, yaml.as_bytes()).map_err(|source| Error::Directory {
            path,
            what: "write the backup file",
            source,
        })?;
        done += 1;
        observer.progress("objects saved", done, Some(total));
    }
    observer.success(
        format!("saved {done} objects to {}", directory.display()),
        Some(start.elapsed()),
    );
    Ok(())
}

/// The objects of a backup directory: every `*.yaml` file in it (not hidden), one object each.
fn read_backup(directory: &Path) -> Result<Vec<Value>, Error> {
    let dir_err = |what| {
        let path = directory.to_path_buf();
        move |source| Error::Directory { path, what, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(dir_err("read the backup directory"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::EmptyBackup {
            path: directory.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    // Which file holds each uid: the graph is rebuilt from uids, so two objects with one uid
    // (or none) would silently become one.
    let mut files_of_uid: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        let objects = crate::manifest::parse_file(&f).map_err(|source| Error::BackupFile {
            path: f.clone(),
            source,
        })?;
        for o in objects {
            if let Err(e) = serde_json::from_value::<DynamicObject>(o.value.clone()) {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: format!("does not fit a Kubernetes object's metadata ({e})"),
                });
            }
            let uid = o.value["metadata"]["uid"].as_str().unwrap_or_default();
            if uid.is_empty() {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: "field `metadata.uid` is missing: restore rebuilds the graph from uids; take the backup again with `move --to-directory`".into(),
                });
            }
            if let Some(first) = files_of_uid.insert(uid.to_string(), f.clone()) {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: format!(
                        "field `metadata.uid` {uid} is also the uid of the object in {}: one of the two files does not belong to this backup",
                        first.display()
                    ),
                });
            }
            out.push(o.value);
        }
    }
    Ok(out)
}

/// Restores a [`backup`] directory's objects of `options.namespace` onto `target`, as
/// `clusterctl move --from-directory` does: the graph is rebuilt from the files' UIDs and owner
/// references, objects are created group by group with owner references rewritten to the
/// target's UIDs and their status restored. Clusters and ClusterClasses are created paused and
/// unpaused at the end, unless they were paused in the backup. Re-runs (with the journal) update
/// what is already there.
pub async fn restore(
    target: &Discovery,
    directory: &Path,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let ns = options.namespace.as_str();
    let mut journal = load_journal(options)?;
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for o in read_backup(directory)? {
        if o["metadata"]["namespace"].as_str() == Some(ns) {
            objects.push(o);
        } else {
            skipped.push(Skipped {
                object: ObjectRef::of(&o),
                reason: format!("not in namespace {ns}"),
            });
        }
    }
    let mut resources = BTreeMap::new();
    let mut missing = BTreeSet::new();
    for o in &objects {
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
    let graph = Graph::new(objects);
    let report = report_of(&graph, skipped)?;
    let seq = graph.sequence()?;
    ensure_namespace(target, ns).await?;
    for n in graph.nodes() {
        if let Some(key) = pausable_key(&n.reference) {
            let paused = if n.reference.kind == "Cluster" {
                n.object["spec"]["paused"] == true
            } else {
                n.object["metadata"]["annotations"][PAUSED].is_string()
            };
            if !paused {
                journal.paused.insert(key);
            }
        }
    }
    save(&journal, options)?;
    observer.action(format!(
        "restoring {} objects from {} into namespace {ns}",
        graph.len(),
        directory.display()
    ));
    copy_all(
        None,
        target,
        &graph,
        &seq,
        &resources,
        &mut journal,
        options,
        observer,
        cancel,
    )
    .await?;
    unpause_target(target, &graph, &resources, &mut journal, ns).await?;
    remove_journal(options)?;
    Ok(report)
}

async fn ensure_namespace(target: &Discovery, ns: &str) -> Result<(), Error> {
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

async fn wait_unblocked(
    source: &Discovery,
    graph: &Graph,
    resources: &BTreeMap<String, Resource>,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    // Objects annotated when listed are re-read, with backoff, until their provider removes
    // the annotation (clusterctl's contract) or the timeout passes.
    let start = Instant::now();
    for n in graph.nodes() {
        if !n.object["metadata"]["annotations"][BLOCK_MOVE].is_string() {
            continue;
        }
        let api = api_for(source, &resources[&n.uid], &options.namespace);
        let mut delay = Duration::from_millis(250);
        loop {
            let current = api.get_opt(&n.reference.name).await.map_err(obj_err(
                "reading",
                "source",
                &n.reference,
            ))?;
            if current.as_ref().is_none_or(|o| {
                !o.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(BLOCK_MOVE))
            }) {
                break;
            }
            if start.elapsed() >= options.block_move_timeout {
                return Err(Error::Blocked {
                    object: n.reference.clone(),
                    timeout: options.block_move_timeout,
                });
            }
            observer.waiting(
                format!("{} to drop annotation {BLOCK_MOVE}", n.reference),
                None,
            );
            tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                _ = tokio::time::sleep(delay.min(options.block_move_timeout.saturating_sub(start.elapsed()))) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    Ok(())
}

async fn pause_source(
    source: &Discovery,
    graph: &Graph,
    resources: &BTreeMap<String, Resource>,
    journal: &mut Journal,
    options: &MoveOptions,
    observer: &dyn Observer,
) -> Result<(), Error> {
    let ns = options.namespace.as_str();
    // Suspend HelmReleases first so Flux does not undo the pause.
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
            if h.data["spec"]["suspend"] == true && !journal.suspended.contains(&name) {
                continue; // suspended by someone else: leave it as it is
            }
            journal.suspended.insert(name.clone());
            save(journal, options)?;
            let reference = helm_release_ref(ns, &name);
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspend": true}})),
            )
            .await
            .map_err(obj_err("suspending", "source", &reference))?;
        }
    }
    for n in graph.nodes() {
        let kind = n.reference.kind.as_str();
        if n.reference.group() != "cluster.x-k8s.io"
            || !(kind == "Cluster" || kind == "ClusterClass")
        {
            continue;
        }
        let key = format!("{kind}/{}", n.reference.name);
        let already = if kind == "Cluster" {
            n.object["spec"]["paused"] == true
        } else {
            n.object["metadata"]["annotations"][PAUSED].is_string()
        };
        // Paused by an earlier move run (its journal gone, or the run finished without deleting
        // the source): ours to unpause, on the target too.
        let ours = n.object["metadata"]["annotations"][PAUSED_BY_MOVE].is_string();
        if already && !ours && !journal.paused.contains(&key) {
            continue; // paused by someone else: it moves paused and stays paused
        }
        journal.paused.insert(key);
        save(journal, options)?;
        let mark = json!({"annotations": {PAUSED_BY_MOVE: journal.run}});
        let patch = if kind == "Cluster" {
            json!({"spec": {"paused": true}, "metadata": mark})
        } else {
            json!({"metadata": {"annotations": {PAUSED: "", PAUSED_BY_MOVE: journal.run}}})
        };
        api_for(source, &resources[&n.uid], ns)
            .patch(
                &n.reference.name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
            .map_err(obj_err("pausing", "source", &n.reference))?;
        observer.action(format!("paused {} on the source", n.reference));
    }
    Ok(())
}

const HELM_RELEASE: &str = "helm.toolkit.fluxcd.io/v2";

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

fn save(journal: &Journal, options: &MoveOptions) -> Result<(), Error> {
    match &options.journal {
        Some(p) => journal.save(p),
        None => Ok(()),
    }
}

async fn unpause(
    api: &Api<DynamicObject>,
    reference: &ObjectRef,
    kind: &str,
) -> Result<(), ::kube::Error> {
    let patch = if kind == "Cluster" {
        json!({"spec": {"paused": null}, "metadata": {"annotations": {PAUSED_BY_MOVE: null}}})
    } else {
        json!({"metadata": {"annotations": {PAUSED: null, PAUSED_BY_MOVE: null}}})
    };
    match api
        .patch(
            &reference.name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(::kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn restore_source(
    source: &Discovery,
    graph: &Graph,
    resources: &BTreeMap<String, Resource>,
    journal: &mut Journal,
    options: &MoveOptions,
) -> Result<(), Error> {
    let ns = options.namespace.as_str();
    for key in journal.paused.clone() {
        let Some((kind, name)) = key.split_once('/') else {
            continue; // checked when the journal was loaded
        };
        if let Some(n) = graph
            .nodes()
            .find(|n| n.reference.kind == kind && n.reference.name == name)
        {
            unpause(&api_for(source, &resources[&n.uid], ns), &n.reference, kind)
                .await
                .map_err(obj_err("unpausing", "source", &n.reference))?;
        }
        journal.paused.remove(&key);
        save(journal, options)?;
    }
    if let Some(api) = helm_releases(source, ns).await? {
        for name in journal.suspended.clone() {
            let reference = helm_release_ref(ns, &name);
            match api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"suspend": null}})),
                )
                .await
            {
                Ok(_) | Err(::kube::Error::Api(_)) => {}
                Err(e) => return Err(obj_err("resuming", "source", &reference)(e)),
            }
            journal.suspended.remove(&name);
            save(journal, options)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn copy_all(
    source: Option<&Discovery>,
    target: &Discovery,
    graph: &Graph,
    seq: &super::graph::Sequence,
    resources: &BTreeMap<String, Resource>,
    journal: &mut Journal,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let ns = options.namespace.as_str();
    let start = Instant::now();
    let total = graph.len() as u64;
    let mut done = 0;
    // Re-read each object from the source right before copying: pausing changed Clusters.
    for group in &seq.groups {
        for uid in group {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let node = graph.node(uid).expect("sequenced");
            let r = &resources[uid];
            let current = match source {
                Some(source) => {
                    let current = api_for(source, r, ns)
                        .get(&node.reference.name)
                        .await
                        .map_err(obj_err("reading", "source", &node.reference))?;
                    let mut current = serde_json::to_value(&current).expect("serialises");
                    current["apiVersion"] = json!(r.api.api_version);
                    current["kind"] = json!(r.api.kind);
                    current
                }
                None => node.object.clone(),
            };
            let mut body = target_copy(&current, &journal.copied);
            // Created paused when this tool unpauses it at the end: no controller on the
            // target acts on it before everything it owns is there.
            if let Some(key) = pausable_key(&node.reference)
                && journal.paused.contains(&key)
            {
                set_paused(&mut body, &node.reference.kind, true);
            }
            let api = api_for(target, r, ns);
            // Controllers on the target may write the object between our read and our update:
            // a conflict re-reads and tries again.
            let mut attempt = 0;
            let stored = loop {
                attempt += 1;
                let existing = api.get_opt(&node.reference.name).await.map_err(obj_err(
                    "reading",
                    "target",
                    &node.reference,
                ))?;
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
                        body["metadata"]["resourceVersion"] =
                            json!(existing.metadata.resource_version);
                        api.replace(
                            &node.reference.name,
                            &PostParams::default(),
                            &serde_json::from_value(body).expect("object"),
                        )
                        .await
                    }
                };
                match result {
                    Ok(stored) => break stored,
                    Err(::kube::Error::Api(e)) if e.code == 409 && attempt < 5 => continue,
                    Err(e) => return Err(obj_err("writing", "target", &node.reference)(e)),
                }
            };
            if r.has_status && current.get("status").is_some_and(|s| !s.is_null()) {
                // A merge patch: no resourceVersion, so no conflict with a controller that
                // writes status meanwhile.
                api.patch_status(
                    &node.reference.name,
                    &::kube::api::PatchParams::default(),
                    &::kube::api::Patch::Merge(json!({"status": current["status"].clone()})),
                )
                .await
                .map_err(obj_err(
                    "restoring status of",
                    "target",
                    &node.reference,
                ))?;
            }
            journal
                .copied
                .insert(uid.clone(), stored.metadata.uid.clone().unwrap_or_default());
            save(journal, options)?;
            done += 1;
            observer.progress("objects copied", done, Some(total));
        }
    }
    observer.success(
        format!("copied {done} objects to the target"),
        Some(start.elapsed()),
    );
    Ok(())
}

async fn delete_from_source(
    source: &Discovery,
    graph: &Graph,
    seq: &super::graph::Sequence,
    resources: &BTreeMap<String, Resource>,
    ns: &str,
    observer: &dyn Observer,
) -> Result<(), Error> {
    for group in seq.groups.iter().rev() {
        for uid in group {
            let node = graph.node(uid).expect("sequenced");
            let api = api_for(source, &resources[uid], ns);
            if super::orc::is_orc(&node.object) {
                delete_orc_copy(&api, &node.reference).await?;
                continue;
            }
            let patch =
                json!({"metadata": {"finalizers": null, "annotations": {DELETE_FOR_MOVE: ""}}});
            match api
                .patch(
                    &node.reference.name,
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
            {
                Ok(_) => {}
                Err(::kube::Error::Api(s)) if s.code == 404 => continue,
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
                Ok(_) => {}
                Err(::kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(obj_err("deleting", "source", &node.reference)(e)),
            }
        }
    }
    observer.success(
        format!("deleted {} moved objects from the source", graph.len()),
        None,
    );
    Ok(())
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

/// Finishes the deletion of ORC source copies that an interrupted earlier move left guarded
/// (being deleted, held by [`super::orc::MOVE_GUARD_FINALIZER`]): once the copy exists on the
/// target, every finalizer goes; without a copy the object stays guarded (the cloud resource is
/// safe) and a warning names it.
async fn release_guarded(
    source: &Discovery,
    target: &Discovery,
    report: &MoveReport,
    ns: &str,
    observer: &dyn Observer,
) -> Result<(), Error> {
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
        let [Some(r), Some(t)] = <[Option<Resource>; 2]>::try_from(resolved).expect("two sides")
        else {
            continue;
        };
        let on_target = api_for(target, &t, ns)
            .get_opt(&s.object.name)
            .await
            .map_err(obj_err("reading", "target", &s.object))?;
        if on_target.is_none() {
            observer.warning(format!(
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
            Err(e) => return Err(obj_err("releasing after deletion", "source", &s.object)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const CLUSTER_A: &str = "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata:\n  name: a\n  namespace: n\n  uid: u-1\n";

    #[test]
    fn backups_with_missing_duplicate_uids_or_bad_metadata_are_refused_naming_the_files() {
        let other = CLUSTER_A.replace("name: a", "name: b");
        let dir = backup_dir(&[
            ("Cluster_n_a.yaml", CLUSTER_A),
            ("Cluster_n_b.yaml", &other),
        ]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("Cluster_n_b.yaml") && e.contains("Cluster_n_a.yaml"),
            "{e}"
        );
        assert!(e.contains("metadata.uid"), "{e}");

        let no_uid = CLUSTER_A.replace("  uid: u-1\n", "");
        let dir = backup_dir(&[("Cluster_n_a.yaml", &no_uid)]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("Cluster_n_a.yaml: field `metadata.uid` is missing"),
            "{e}"
        );

        let bad_meta = CLUSTER_A.replace("  uid: u-1\n", "  uid: u-1\n  labels: [1, 2]\n");
        let dir = backup_dir(&[("Cluster_n_a.yaml", &bad_meta)]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("does not fit a Kubernetes object's metadata"),
            "{e}"
        );

        let dir = backup_dir(&[("Cluster_n_a.yaml", CLUSTER_A)]);
        assert_eq!(read_backup(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_journal_with_a_malformed_paused_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        for bad in ["Cluster", "/a", "Cluster/"] {
            std::fs::write(
                &path,
                format!(
                    r#"{{"namespace": "n", "paused": ["{bad}"], "suspended": [], "copied": {{}}}}"#
                ),
            )
            .unwrap();
            let e = Journal::load(&path).unwrap_err();
            let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(text.contains("is not `Kind/name`"), "{text}");
        }
        std::fs::write(
            &path,
            r#"{"namespace": "n", "paused": ["Cluster/a"], "suspended": [], "copied": {}}"#,
        )
        .unwrap();
        assert!(Journal::load(&path).unwrap().is_some());
    }

    #[test]
    fn copies_drop_server_fields_and_rewrite_or_drop_owner_refs() {
        let src = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "uid": "u1", "resourceVersion": "9",
            "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [], "annotations": {"kopf.zalando.org/last-handled-configuration": "{}", "keep": "me"},
            "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "c", "uid": "src-c"},
                                {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "s", "uid": "sealed"}]},
            "data": {"a": "Yg=="}, "status": {"x": 1}});
        let map = BTreeMap::from([("src-c".to_string(), "dst-c".to_string())]);
        let copy = target_copy(&src, &map);
        assert_eq!(
            copy,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "annotations": {"keep": "me"},
                "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "c", "uid": "dst-c"}]},
                "data": {"a": "Yg=="}})
        );
    }

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
