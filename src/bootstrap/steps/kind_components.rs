//! `kind-components`: install the vendored components on the kind cluster. The install itself
//! ([`install`]) is shared with the steps that install them on the other clusters.

use futures::future::LocalBoxFuture;
use tokio_util::sync::CancellationToken;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{Options, Side, StepError};
use crate::components::{InstallOptions, Unit};
use crate::kube::Discovery;
use crate::observe::Observer;

/// Installs Flux, cert-manager, Cluster API, ORC, CAPO and sealed-secrets on kind.
pub(super) struct KindComponents;

impl Step for KindComponents {
    fn id(&self) -> &'static str {
        "kind-components"
    }

    fn description(&self) -> &'static str {
        "install the vendored components (vendor-manifests/) on kind"
    }

    fn needs_kind(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let kind = ctx.kind().await?;
            install(&kind, Side::Kind, ctx.o, ctx.observer, ctx.cancel).await
        })
    }
}

/// Installs every vendored component (verified against vendor.lock) with health gates. Every
/// file is verified before anything is applied; then each component is read, installed and
/// dropped before the next is read, so one component's objects are held at a time.
pub(super) async fn install(
    discovery: &Discovery,
    side: Side,
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    let components = |e| StepError::Components(Box::new(e));
    let vendored = crate::components::open(&o.root).map_err(components)?;
    vendored.verify().map_err(components)?;
    let io = InstallOptions {
        timeout: o.timeouts.components,
        ..InstallOptions::default()
    };
    for c in vendored.iter() {
        let c = c.map_err(components)?;
        let unit = Unit {
            name: format!("{} {}", c.name, c.version),
            objects: c.objects,
        };
        crate::components::install_unit(discovery, unit, &io, observer, cancel)
            .await
            .map_err(|source| StepError::Install {
                side,
                source: Box::new(source),
            })?;
    }
    Ok(())
}
