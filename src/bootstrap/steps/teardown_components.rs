//! `kind-components` of teardown: the components on kind, and the cluster's controllers whose
//! kinds the move back carries.

use futures::future::LocalBoxFuture;

use super::Step;
use super::kind_components::install;
use super::target_components::cluster_controllers;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};

/// Installs the components and the cluster's controllers on kind.
pub(super) struct TeardownComponents;

impl Step for TeardownComponents {
    fn id(&self) -> &'static str {
        "kind-components"
    }

    fn description(&self) -> &'static str {
        "install the components on kind"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            install(&kind, Side::Kind, ctx.o, ctx.observer, ctx.cancel).await?;
            let target = ctx.target().await?;
            let objects = super::rendered_objects(ctx)?;
            let to = (&kind, Side::Kind);
            cluster_controllers(&target, to, &objects, ctx.o, ctx.observer, ctx.cancel).await
        })
    }
}
