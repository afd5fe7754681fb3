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
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let target = ctx.target().await?;
            let mut mo = crate::capi::MoveOptions::new(&ctx.o.namespace);
            mo.journal = Some(ctx.dir.move_journal());
            crate::capi::move_objects(&kind, &target, &mo, ctx.observer, ctx.cancel)
                .await
                .map_err(StepError::capi)?;
            Ok(())
        })
    }
}
