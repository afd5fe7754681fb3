//! Cluster API: the object graph of a cluster's namespace and the order to move it in.
//!
//! The graph and the sequence are pure; the mover that copies objects between management
//! clusters builds on them.

pub mod graph;
pub mod mover;
pub mod orc;
pub mod readiness;

pub use graph::{CycleError, Graph, Node, ObjectRef, Sequence};
pub use mover::{
    Error, Journal, MoveOptions, MoveReport, PAUSED_BY_MOVE, STATE_DIR, Skipped, backup,
    backup_file_name, journal_path, move_objects, plan, restore,
};
