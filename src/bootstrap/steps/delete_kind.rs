//! `delete-kind`: delete the ephemeral kind cluster.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;
use crate::observe::ObserverExt as _;

/// Deletes the kind cluster and its kubeconfig, or with [`Options::retain_kind`] keeps both and
/// says so.
///
/// [`Options::retain_kind`]: crate::bootstrap::Options::retain_kind
pub(super) struct DeleteKind;

impl Step for DeleteKind {
    fn id(&self) -> &'static str {
        "delete-kind"
    }

    fn description(&self) -> &'static str {
        "delete the kind cluster"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let o = ctx.o;
            if o.retain_kind {
                ctx.observer.success(
                    format!(
                        "kept kind cluster {} (kubeconfig {}); delete it with `kind delete cluster --name {}`",
                        o.kind.name,
                        ctx.dir.kind_kubeconfig().display(),
                        o.kind.name
                    ),
                    None,
                );
                return Ok(());
            }
            crate::kind::delete(
                &crate::kind::DeleteOptions {
                    name: o.kind.name.clone(),
                    docker_host: o.kind.docker_host.clone(),
                },
                ctx.observer,
            )
            .await
            .map_err(|source| StepError::KindDelete {
                name: o.kind.name.clone(),
                source,
            })?;
            let _ = std::fs::remove_file(ctx.dir.kind_kubeconfig());
            ctx.forget_kind();
            Ok(())
        })
    }
}
