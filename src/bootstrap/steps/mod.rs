//! The steps of bootstrap and teardown, one typed object each, in the manner of flux2's
//! bootstrap reconcilers: a step knows its id (the name saved in the state file), what it does,
//! whether it needs the kind cluster, how to tell that what it left is still there, and how to
//! run. The runner ([`super::bootstrap`], [`super::teardown`]) only orders them.

mod apply_cluster;
mod cluster_ready;
mod delete_cluster;
mod delete_kind;
pub(super) mod deploy_key;
mod flux_sync;
mod kind_cluster;
mod kind_components;
mod move_back;
mod move_objects;
pub(super) mod push;
mod save_kubeconfig;
pub(super) mod seal;
mod suspend_flux;
mod sync_health;
mod target_components;
mod target_ready;
mod teardown_components;

use futures::future::LocalBoxFuture;

use super::StepError;
use super::context::Context;

/// One step of a plan.
pub trait Step: Send + Sync {
    /// The stable id: saved in the state file, shown in events and in [`super::Report`].
    fn id(&self) -> &'static str;

    /// What the step does, for humans.
    fn description(&self) -> &'static str;

    /// Whether the step works on the kind cluster: while any such step is not done, the step
    /// that creates the kind cluster runs (reusing a running one), and a kind cluster created
    /// anew makes every such step run again.
    fn needs_kind(&self) -> bool {
        false
    }

    /// Whether the step creates the kind cluster that the [`Step::needs_kind`] steps use.
    fn creates_kind(&self) -> bool {
        false
    }

    /// Whether what the step left is still there, where that can be told before running:
    /// `Some(false)` makes a step the state file records as done run again; `None` leaves it
    /// to the state file.
    fn is_done<'a>(&'a self, _ctx: &'a Context<'_>) -> LocalBoxFuture<'a, Option<bool>> {
        Box::pin(async { None })
    }

    /// Does the step's work; safe to run again after a crash or a failure.
    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>>;
}

/// Every step of `bootstrap`, in order.
pub fn bootstrap_steps() -> Vec<Box<dyn Step>> {
    vec![
        Box::new(kind_cluster::KindCluster),
        Box::new(kind_components::KindComponents),
        Box::new(apply_cluster::ApplyCluster),
        Box::new(cluster_ready::ClusterReady),
        Box::new(save_kubeconfig::Kubeconfig),
        Box::new(target_components::TargetComponents),
        Box::new(move_objects::Move),
        Box::new(target_ready::TargetReady),
        Box::new(seal::Seal),
        Box::new(push::Push),
        Box::new(deploy_key::DeployKey),
        Box::new(flux_sync::FluxSync),
        Box::new(sync_health::SyncHealth),
        Box::new(delete_kind::DeleteKind),
    ]
}

/// Every step of `teardown`, in order.
pub fn teardown_steps() -> Vec<Box<dyn Step>> {
    vec![
        Box::new(kind_cluster::KindCluster),
        Box::new(teardown_components::TeardownComponents),
        Box::new(suspend_flux::SuspendFlux),
        Box::new(move_back::MoveBack),
        Box::new(delete_cluster::DeleteCluster),
        Box::new(delete_kind::DeleteKind),
    ]
}

/// The id of the bootstrap step after which the cluster lives off kind.
pub(super) const MOVE: &str = move_objects::ID;

/// The rendered objects of the cluster's folder.
fn rendered_objects(ctx: &Context<'_>) -> Result<Vec<crate::manifest::Object>, StepError> {
    Ok(crate::repo::Repo::at(&ctx.o.root)
        .cluster(&ctx.o.cluster)
        .map_err(StepError::Repo)?
        .objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(steps: &[Box<dyn Step>]) -> Vec<&'static str> {
        steps.iter().map(|s| s.id()).collect()
    }

    #[test]
    fn ids_are_the_state_files_names() {
        // The ids are what earlier releases saved: changing one breaks resuming.
        assert_eq!(
            ids(&bootstrap_steps()),
            [
                "kind-cluster",
                "kind-components",
                "apply-cluster",
                "cluster-ready",
                "kubeconfig",
                "target-components",
                "move",
                "target-ready",
                "seal",
                "push",
                "deploy-key",
                "flux-sync",
                "sync-health",
                "delete-kind"
            ]
        );
        assert_eq!(
            ids(&teardown_steps()),
            [
                "kind-cluster",
                "kind-components",
                "suspend-flux",
                "move",
                "delete-cluster",
                "delete-kind"
            ]
        );
    }

    #[test]
    fn the_kind_users_are_the_steps_between_creating_and_leaving_kind() {
        let users = |steps: &[Box<dyn Step>]| -> Vec<&'static str> {
            steps
                .iter()
                .filter(|s| s.needs_kind())
                .map(|s| s.id())
                .collect()
        };
        assert_eq!(
            users(&bootstrap_steps()),
            [
                "kind-components",
                "apply-cluster",
                "cluster-ready",
                "kubeconfig",
                "target-components",
                "move"
            ]
        );
        assert_eq!(
            users(&teardown_steps()),
            ["kind-components", "suspend-flux", "move", "delete-cluster"]
        );
        for steps in [bootstrap_steps(), teardown_steps()] {
            let creators: Vec<_> = steps.iter().filter(|s| s.creates_kind()).collect();
            assert_eq!(creators.len(), 1);
            assert_eq!(creators[0].id(), "kind-cluster");
        }
    }
}
