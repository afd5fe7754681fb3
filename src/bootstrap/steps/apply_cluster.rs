//! `apply-cluster`: apply the credentials and the rendered `clusters/<name>` to kind.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::kube::{ApplyOptions, apply};
use crate::manifest::{Object, parse_file};

/// Applies the cluster's objects and its plaintext credentials Secret to kind.
pub(super) struct ApplyCluster;

impl Step for ApplyCluster {
    fn id(&self) -> &'static str {
        "apply-cluster"
    }

    fn description(&self) -> &'static str {
        "apply the cluster's config and credentials to kind"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            let objects = kind_objects(ctx)?;
            apply(
                &kind,
                &objects,
                &ApplyOptions::default(),
                ctx.observer,
                ctx.cancel,
            )
            .await
            .map_err(|source| StepError::Kube {
                side: Side::Kind,
                source: Box::new(source),
            })?;
            Ok(())
        })
    }
}

/// The cluster's rendered objects without SealedSecrets (sealed for another cluster's key),
/// plus the plaintext credentials Secret.
fn kind_objects(ctx: &Context<'_>) -> Result<Vec<Object>, StepError> {
    let mut objects: Vec<Object> = super::rendered_objects(ctx)?
        .into_iter()
        .filter(|x| x.kind() != "SealedSecret")
        .collect();
    let path = ctx.dir.credentials();
    objects.extend(parse_file(&path).map_err(|source| StepError::Manifest {
        path: path.clone(),
        source,
    })?);
    Ok(objects)
}
