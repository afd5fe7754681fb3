//! `target-ready`: wait until the cluster is ready on its new management cluster, itself.

use futures::future::LocalBoxFuture;

use super::Step;
use super::cluster_ready::wait_ready;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};

/// Waits for the moved Cluster and its MachineDeployments on the self-managed cluster.
pub(super) struct TargetReady;

impl Step for TargetReady {
    fn id(&self) -> &'static str {
        "target-ready"
    }

    fn description(&self) -> &'static str {
        "wait for the cluster on its new management cluster"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let target = ctx.target().await?;
            let c = ctx.cluster_ref(&[], false);
            wait_ready(ctx, &target, Side::Cluster, &c).await
        })
    }
}
