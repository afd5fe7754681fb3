//! `suspend-flux`: suspend Flux's sync of the cluster on the self-managed cluster (teardown),
//! so Flux does not recreate what is moved away.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::flux::Suspendable;
use crate::observe::ObserverExt;

/// Suspends Flux's Kustomization of the cluster.
pub(super) struct SuspendFlux;

impl Step for SuspendFlux {
    fn id(&self) -> &'static str {
        "suspend-flux"
    }

    fn description(&self) -> &'static str {
        "suspend Flux's sync of the cluster"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let (o, observer) = (ctx.o, ctx.observer);
            let target = ctx.target().await?;
            let (ns, name) = (&o.flux_namespace, &o.cluster);
            match crate::flux::suspend(&target, Suspendable::Kustomization, ns, name).await {
                Ok(()) => observer.success(format!("suspended Kustomization {ns}/{name}"), None),
                Err(e) if is_not_found(&e) => {
                    observer.warning(format!("no Kustomization {ns}/{name} to suspend"))
                }
                Err(source) => {
                    return Err(StepError::Flux {
                        side: Side::Cluster,
                        source,
                    });
                }
            }
            Ok(())
        })
    }
}

fn is_not_found(e: &crate::flux::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<crate::kube::RequestError>() {
            return r.is_not_found();
        }
        source = s.source();
    }
    false
}
