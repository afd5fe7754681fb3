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
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let target = ctx.target().await?;
            let mut mo = crate::capi::MoveOptions::new(&ctx.o.namespace);
            mo.journal = Some(ctx.dir.teardown_move_journal());
            mo.delete_source = true;
            crate::capi::move_objects(&target, &kind, &mo, ctx.observer, ctx.cancel)
                .await
                .map_err(StepError::capi)?;
            Ok(())
        })
    }
}
