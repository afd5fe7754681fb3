//! `capi-manage status <cluster>`: the cluster's readiness and Flux's sync, one line each.

use std::path::PathBuf;

use anyhow::{Context, bail};
use capi_manage::capi::readiness::{ClusterRef, check};
use capi_manage::kube::wait::summary;
use capi_manage::kube::{ClientOptions, Discovery, connect};
use capi_manage::manifest::Gvk;
use capi_manage::repo::Repo;

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
    let client = connect(&ClientOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .await?;
    let discovery = Discovery::new(client.clone());
    let helm_releases = capi_manage::capi::readiness::helm_releases(&cluster.objects);
    let r = check(
        &discovery,
        &ClusterRef {
            namespace: args.namespace.clone(),
            name: args.cluster.clone(),
            helm_releases,
        },
    )
    .await?;
    println!(
        "cluster {}: {}",
        args.cluster,
        if r.ready { "ready" } else { "not ready" }
    );
    for p in &r.parts {
        println!("  {p}");
    }
    if let Some(res) = discovery
        .resolve(&Gvk::from_api_version(
            "cluster.x-k8s.io/v1beta2",
            "Cluster",
        ))
        .await?
    {
        let api: ::kube::Api<::kube::api::DynamicObject> =
            ::kube::Api::namespaced_with(client.clone(), &args.namespace, &res.api);
        if let Some(c) = api.get_opt(&args.cluster).await?
            && c.data["spec"]["paused"] == true
        {
            let by_move = c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(capi_manage::capi::PAUSED_BY_MOVE));
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
    }
    for (api_version, kind) in [
        ("source.toolkit.fluxcd.io/v1", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ] {
        let Some(res) = discovery
            .resolve(&Gvk::from_api_version(api_version, kind))
            .await?
        else {
            println!("flux: {kind} not served (Flux is not installed)");
            continue;
        };
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), "flux-system", &res.api);
        for o in api.list(&Default::default()).await?.items {
            let revision = o.data["status"]["lastAppliedRevision"]
                .as_str()
                .or(o.data["status"]["artifact"]["revision"].as_str())
                .unwrap_or("-");
            println!(
                "flux {kind} {}: {} (revision {revision})",
                o.metadata.name.as_deref().unwrap_or("?"),
                summary(&o)
            );
        }
    }
    Ok(())
}
