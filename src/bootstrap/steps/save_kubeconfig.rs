//! `kubeconfig`: write `clusters/<name>/kubeconfig` (0600) from the Secret Cluster API keeps on
//! kind, and check that the new cluster answers through it.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::fs::write_private;
use crate::observe::ObserverExt;

/// Writes the self-managed cluster's kubeconfig.
pub(super) struct Kubeconfig;

impl Step for Kubeconfig {
    fn id(&self) -> &'static str {
        "kubeconfig"
    }

    fn description(&self) -> &'static str {
        "write the cluster's kubeconfig"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn is_done<'a>(&'a self, ctx: &'a Context<'_>) -> LocalBoxFuture<'a, Option<bool>> {
        let there = ctx.dir.kubeconfig().is_file();
        Box::pin(async move { Some(there) })
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let bytes = crate::capi::read_kubeconfig(&kind, &ctx.o.namespace, &ctx.o.cluster)
                .await
                .map_err(StepError::capi)?;
            let path = ctx.dir.kubeconfig();
            write_private(&path, &bytes).map_err(|source| StepError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            ctx.forget_target();
            // The file works: the new cluster answers through it.
            let target = ctx.target().await?;
            target
                .client()
                .apiserver_version()
                .await
                .map_err(|e| StepError::Request {
                    side: Side::Cluster,
                    what: "reading the server version".into(),
                    source: e.into(),
                })?;
            ctx.observer
                .success(format!("kubeconfig written to {}", path.display()), None);
            Ok(())
        })
    }
}
