//! Cluster API: the object graph of a cluster's namespace and the order to move it in.
//!
//! The graph and the sequence are pure; the mover that copies objects between management
//! clusters builds on them: discovery, pure transforms, the journal, the mover's steps, and
//! backup and restore through a directory each have their own file.

pub mod describe;
mod directory;
mod discovery;
mod error;
mod graph;
mod journal;
mod mover;
pub mod orc;
mod pause;
pub mod readiness;
mod status;
mod transform;
mod workload;

pub use directory::{backup, backup_file_name, restore};
pub use discovery::Skipped;
pub use error::Error;
pub use graph::{CycleError, Graph, Node, ObjectRef, Sequence};
pub use journal::{Journal, STATE_DIR, journal_path};
pub use mover::{MoveOptions, MoveReport, move_objects, plan};
pub use status::{ClusterStatus, Paused, cluster_status};
pub use transform::{BLOCK_MOVE, DELETE_FOR_MOVE, PAUSED, PAUSED_BY_MOVE};
pub use workload::{delete_cluster, read_kubeconfig};
