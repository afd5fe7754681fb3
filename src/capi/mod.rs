//! Cluster API: the object graph of a cluster's namespace and the order to move it in.
//!
//! The graph and the sequence are pure; the mover that copies objects between management
//! clusters builds on them: discovery, pure transforms, the journal, the mover's steps, and
//! backup and restore through a directory each have their own file.

mod directory;
mod discovery;
mod error;
pub mod graph;
mod journal;
pub mod mover;
pub mod orc;
mod pause;
pub mod readiness;
mod status;
mod transform;
mod workload;

pub use graph::{CycleError, Graph, Node, ObjectRef, Sequence};
pub use mover::{
    Error, Journal, MoveOptions, MoveReport, PAUSED_BY_MOVE, STATE_DIR, Skipped, backup,
    backup_file_name, journal_path, move_objects, plan, restore,
};
pub use status::{ClusterStatus, Paused, cluster_status};
pub use workload::{delete_cluster, read_kubeconfig};
