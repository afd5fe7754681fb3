//! `kind-cluster`: create the ephemeral kind cluster, or reuse the running one, and load the
//! image layout of `--images` into its node.
//!
//! The images are loaded whenever this step runs: the runner runs it again while a step that
//! needs the kind cluster is not done, so a resumed bootstrap imports the layout again before
//! `kind-components`. That is harmless: containerd keeps content by digest, so blobs it has
//! are not written twice and the image names point at the same manifests. Once
//! `kind-components` is done the step is not run again, nor the import.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::{Context, cluster_uid};
use crate::bootstrap::{Side, StepError};
use crate::fs::write_private;
use crate::observe::ObserverExt;

/// Creates (or reuses) the kind cluster and keeps its kubeconfig in the state folder.
pub(super) struct KindCluster;

impl Step for KindCluster {
    fn id(&self) -> &'static str {
        "kind-cluster"
    }

    fn description(&self) -> &'static str {
        "create the kind cluster"
    }

    fn creates_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let o = ctx.o;
            let created = crate::kind::create(&o.kind, ctx.observer, ctx.cancel)
                .await
                .map_err(|source| StepError::KindCreate {
                    name: o.kind.name.clone(),
                    source: Box::new(source),
                })?;
            let path = ctx.dir.kind_kubeconfig();
            write_private(&path, &created.kubeconfig).map_err(|source| StepError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            ctx.forget_kind();
            // A kind cluster other than the one earlier steps used (deleted and created again)
            // holds none of their work: those steps run again.
            let uid = cluster_uid(&ctx.kind().await?, Side::Kind).await?;
            if ctx
                .state
                .kind_cluster_uid
                .as_ref()
                .is_some_and(|recorded| *recorded != uid)
            {
                ctx.kind_replaced = true;
                ctx.observer.warning(format!(
                    "the kind cluster {} is not the one the earlier steps ran on: they run again",
                    o.kind.name
                ));
            }
            ctx.state.kind_cluster_uid = Some(uid);
            if let Some(dir) = &o.images {
                let layout = crate::bootstrap::read_layout(dir).map_err(|source| {
                    StepError::ImageLayout {
                        dir: dir.clone(),
                        source: Box::new(source),
                    }
                })?;
                ctx.observer.action(format!(
                    "loading {} images ({} bytes) from {} into kind cluster {}",
                    layout.images.len(),
                    layout.bytes,
                    dir.display(),
                    o.kind.name
                ));
                let options = crate::kind::LoadOptions {
                    name: o.kind.name.clone(),
                    docker_host: o.kind.docker_host.clone(),
                };
                crate::kind::load_image_files(&options, &layout.files, ctx.observer, ctx.cancel)
                    .await
                    .map_err(|source| match source {
                        crate::kind::LoadError::Cancelled => StepError::Cancelled,
                        source => StepError::KindLoad {
                            name: o.kind.name.clone(),
                            dir: dir.clone(),
                            source: Box::new(source),
                        },
                    })?;
            }
            Ok(())
        })
    }
}
