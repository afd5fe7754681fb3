//! `move`: move the Cluster API objects from kind to the new cluster.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;

pub(super) const ID: &str = "move";

/// Moves the cluster's Cluster API objects to the self-managed cluster (journal in the state
/// folder).
pub(super) struct Move;

impl Step for Move {
    fn id(&self) -> &'static str {
        ID
    }

    fn description(&self) -> &'static str {
        "move the Cluster API objects to the new cluster"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(move_between(ctx, false))
    }
}

/// Moves the cluster's objects from kind to the new cluster, or back (`back`: teardown, which
/// deletes them from the new cluster), each direction with its own journal.
pub(super) async fn move_between(ctx: &mut Context<'_>, back: bool) -> Result<(), StepError> {
    let kind = ctx.kind().await?;
    let target = ctx.target().await?;
    let mut mo = crate::capi::MoveOptions::new(&ctx.o.namespace);
    let (from, to) = if back {
        mo.journal = Some(ctx.dir.teardown_move_journal());
        mo.delete_source = true;
        (&target, &kind)
    } else {
        mo.journal = Some(ctx.dir.move_journal());
        (&kind, &target)
    };
    crate::capi::move_objects(from, to, &mo, ctx.observer, ctx.cancel)
        .await
        .map_err(StepError::capi)?;
    Ok(())
}
