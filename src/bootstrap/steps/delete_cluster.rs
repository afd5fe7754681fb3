//! `delete-cluster`: delete the Cluster on kind and wait until it is gone.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;

/// Deletes the Cluster (its providers delete the machines and cloud resources).
pub(super) struct DeleteCluster;

impl Step for DeleteCluster {
    fn id(&self) -> &'static str {
        "delete-cluster"
    }

    fn description(&self) -> &'static str {
        "delete the cluster and wait until it is gone"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let o = ctx.o;
            crate::capi::delete_cluster(
                &kind,
                &o.namespace,
                &o.cluster,
                o.timeouts.delete,
                ctx.observer,
                ctx.cancel,
            )
            .await
            .map_err(StepError::capi)
        })
    }
}
