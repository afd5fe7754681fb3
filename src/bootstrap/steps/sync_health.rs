//! `sync-health`: wait until Flux applied the pushed revision and the cluster is still ready.

use futures::future::LocalBoxFuture;

use super::Step;
use super::cluster_ready::wait_ready;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::flux::SyncOptions;
use crate::kube::wait::WaitOptions;

/// Waits for Flux's Kustomizations at the pushed commit, then for the cluster.
pub(super) struct SyncHealth;

impl Step for SyncHealth {
    fn id(&self) -> &'static str {
        "sync-health"
    }

    fn description(&self) -> &'static str {
        "wait for Flux to apply the pushed revision"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let o = ctx.o;
            let target = ctx.target().await?;
            let branch = ctx.state.branch.clone().unwrap_or_default();
            let revision = format!(
                "{branch}@sha1:{}",
                ctx.state.pushed.as_deref().unwrap_or_default()
            );
            let mut so = SyncOptions::new(&o.cluster, "", &branch);
            so.namespace = o.flux_namespace.clone();
            crate::flux::wait_synced(
                &target,
                &so.names(),
                &revision,
                WaitOptions::timeout(o.timeouts.sync),
                ctx.observer,
                ctx.cancel,
            )
            .await
            .map_err(|source| StepError::Flux {
                side: Side::Cluster,
                source,
            })?;
            let c = ctx.cluster_ref(&super::rendered_objects(ctx)?, true);
            wait_ready(ctx, &target, Side::Cluster, &c).await
        })
    }
}
