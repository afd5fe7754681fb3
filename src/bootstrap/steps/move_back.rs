//! `move` of teardown: move the Cluster API objects back to kind, deleting them from the
//! self-managed cluster.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;

/// Moves the cluster's Cluster API objects back to kind.
pub(super) struct MoveBack;

impl Step for MoveBack {
    fn id(&self) -> &'static str {
        super::move_objects::ID
    }

    fn description(&self) -> &'static str {
        "move the Cluster API objects back to kind"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(super::move_objects::move_between(ctx, true))
    }
}
