//! `cluster-ready`: wait on kind until the cluster is ready.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::capi::readiness;

/// Waits for the Cluster, its MachineDeployments and the releases that build it.
pub(super) struct ClusterReady;

impl Step for ClusterReady {
    fn id(&self) -> &'static str {
        "cluster-ready"
    }

    fn description(&self) -> &'static str {
        "wait for the cluster to be ready"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let c = ctx.cluster_ref(&super::rendered_objects(ctx)?, true);
            wait_ready(ctx, &kind, Side::Kind, &c).await
        })
    }
}

/// Waits until cluster `c` is ready on `side`.
pub(super) async fn wait_ready(
    ctx: &Context<'_>,
    d: &crate::kube::Discovery,
    side: Side,
    c: &readiness::ClusterRef,
) -> Result<(), StepError> {
    readiness::wait_ready(d, c, ctx.o.timeouts.cluster, ctx.observer, ctx.cancel)
        .await
        .map_err(|source| StepError::Readiness {
            side,
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            source: Box::new(source),
        })?;
    Ok(())
}
