//! `target-components`: install the components on the new cluster, and the cluster's own
//! controllers whose kinds the move carries ([`cluster_controllers`], shared with teardown).

use futures::future::LocalBoxFuture;
use tokio_util::sync::CancellationToken;

use super::Step;
use super::kind_components::install;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Options, Side, StepError};
use crate::kube::Discovery;
use crate::manifest::{Gvk, Object};
use crate::observe::{Observer, ObserverExt};

/// Installs the components and the cluster's controllers on the self-managed cluster.
pub(super) struct TargetComponents;

impl Step for TargetComponents {
    fn id(&self) -> &'static str {
        "target-components"
    }

    fn description(&self) -> &'static str {
        "install the components on the new cluster"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let target = ctx.target().await?;
            install(&target, Side::Cluster, ctx.o, ctx.observer, ctx.cancel).await?;
            let kind = ctx.kind().await?;
            let objects = super::rendered_objects(ctx)?;
            let to = (&target, Side::Cluster);
            cluster_controllers(&kind, to, &objects, ctx.o, ctx.observer, ctx.cancel).await
        })
    }
}

/// What a move from `from` needs on `to` besides the vendored components: the kinds of the
/// add-on provider (`addons.stackhpc.com`, whose objects the chart makes and the move carries),
/// which the provider registers when it starts. So the cluster's own controllers (the rendered
/// objects outside the cluster's namespace: the add-on provider's and janitor's
/// HelmRepositories and HelmReleases) are applied on `to`, and every kind the move will carry
/// is awaited there. Bootstrap does this on the new cluster (Flux applies the same objects from
/// git later), teardown on the kind cluster the cluster moves back to.
pub(super) async fn cluster_controllers(
    from: &Discovery,
    (to, side): (&Discovery, Side),
    objects: &[Object],
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    let controllers: Vec<Object> = objects
        .iter()
        .filter(|x| x.kind() != "SealedSecret")
        .filter(|x| match x.namespace() {
            Some(ns) => ns != o.namespace,
            None => x.kind() == "Namespace" && x.name() != o.namespace,
        })
        .cloned()
        .collect();
    if !controllers.is_empty() {
        crate::kube::apply(
            to,
            &controllers,
            &crate::kube::ApplyOptions::default(),
            observer,
            cancel,
        )
        .await
        .map_err(StepError::kube(side))?;
    }
    let plan = crate::capi::plan(from, &o.namespace)
        .await
        .map_err(StepError::capi)?;
    let mut needed: Vec<Gvk> = Vec::new();
    for r in plan.moved() {
        let gvk = Gvk::from_api_version(&r.api_version, &r.kind);
        if !needed.contains(&gvk) {
            needed.push(gvk);
        }
    }
    let deadline = std::time::Instant::now() + o.timeouts.components;
    loop {
        let mut missing = Vec::new();
        for gvk in &needed {
            to.invalidate(&gvk.api_version()).await;
            if to
                .resolve(gvk)
                .await
                .map_err(StepError::kube(side))?
                .is_none()
            {
                missing.push(format!("{} ({})", gvk.kind, gvk.api_version()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(StepError::LacksKinds {
                side,
                missing,
                timeout: o.timeouts.components,
            });
        }
        observer.waiting(
            "the new cluster to serve the kinds the move carries",
            Some(missing.join(", ")),
        );
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(StepError::Cancelled),
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}
