//! `capi-manage status <cluster>`: the cluster's readiness and Flux's sync, one line each. The
//! data comes from `capi::cluster_status` and `flux::sync_status`; this only prints it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use capi_manage::capi::readiness::{ClusterRef, helm_releases};
use capi_manage::capi::{Paused, cluster_status};
use capi_manage::flux::sync_status;
use capi_manage::kube::{Discovery, connect};
use capi_manage::repo::Repo;

use super::client_options;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster: a folder under clusters/.
    pub cluster: String,
    /// The config repository (default: found from the working directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Namespace of the cluster's Cluster API objects.
    #[arg(long, short = 'n', default_value = capi_manage::bootstrap::DEFAULT_NAMESPACE)]
    pub namespace: String,
}

/// The namespace Flux's own sync objects live in.
const FLUX_NAMESPACE: &str = "flux-system";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let repo = match &args.repo {
        Some(dir) => Repo::at(dir),
        None => Repo::discover(&std::env::current_dir().context("working directory")?)?,
    };
    let cluster = repo.cluster(&args.cluster)?;
    let kubeconfig = cluster.dir.kubeconfig();
    if !kubeconfig.is_file() {
        bail!(
            "{} is missing: the cluster is not bootstrapped (`capi-manage bootstrap {}` writes it)",
            kubeconfig.display(),
            args.cluster
        );
    }
    let client = connect(&client_options(Some(kubeconfig), None)).await?;
    let discovery = Discovery::new(client);
    let status = cluster_status(
        &discovery,
        &ClusterRef {
            namespace: args.namespace.clone(),
            name: args.cluster.clone(),
            helm_releases: helm_releases(&cluster.objects),
        },
    )
    .await?;
    let r = &status.readiness;
    println!(
        "cluster {}: {}",
        args.cluster,
        if r.ready { "ready" } else { "not ready" }
    );
    for p in &r.parts {
        println!("  {p}");
    }
    if let Some(Paused { by_move }) = &status.paused {
        eprintln!(
            "warning: Cluster {}/{} is paused (spec.paused): its controllers do nothing{}",
            args.namespace,
            args.cluster,
            match by_move {
                Some(run) => format!(
                    "; a move (run {run}) paused it: re-run that move to finish it, or remove spec.paused"
                ),
                None => "; remove spec.paused when the pause is over".to_string(),
            }
        );
    }
    for kind in sync_status(&discovery, FLUX_NAMESPACE).await? {
        if !kind.served {
            println!("flux: {} not served (Flux is not installed)", kind.kind);
        }
        for o in &kind.objects {
            println!(
                "flux {} {}: {} (revision {})",
                kind.kind,
                o.name,
                o.conditions,
                o.revision.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}
