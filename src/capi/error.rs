//! The one error type of moving, backing up and restoring Cluster API objects.

use std::path::PathBuf;
use std::time::Duration;

use super::graph::ObjectRef;
use super::transform::BLOCK_MOVE;
use crate::kube::RequestError;

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
    /// Suspending or resuming a Flux object failed other than by a request.
    #[error("{action} {object} on the {side} cluster")]
    Flux {
        /// What was being done.
        action: &'static str,
        /// `source` or `target`.
        side: &'static str,
        /// The object.
        object: ObjectRef,
        /// Why.
        #[source]
        source: crate::flux::Error,
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
    #[error("the source and target are the same cluster (kube-system uid {uid})")]
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
    /// A cluster's kubeconfig Secret does not exist (yet).
    #[error(
        "Secret {namespace}/{name} not found: the cluster's control plane has not written its kubeconfig"
    )]
    NoKubeconfigSecret {
        /// Its namespace.
        namespace: String,
        /// Its name, `<cluster>-kubeconfig`.
        name: String,
    },
    /// A cluster's kubeconfig Secret has no `data.value`.
    #[error("Secret {namespace}/{name}: field `data.value` is missing")]
    EmptyKubeconfigSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The management cluster does not serve the Cluster kind.
    #[error("the Cluster kind (cluster.x-k8s.io) is not served: Cluster API is not installed")]
    NoClusterKind,
    /// A deleted Cluster did not go away.
    #[error("Cluster {namespace}/{name} is not gone")]
    NotDeleted {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The wait's error (timeout, cancellation, request).
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// The error of `action` (e.g. "reading") on `object` on the `side` cluster, for `map_err`.
pub(super) fn obj_err(
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
