use std::path::PathBuf;

use super::{Terminal, client_options};
use anyhow::Context;
use capi_manage::capi::{MoveOptions, MoveReport, backup, move_objects, plan, restore};
use capi_manage::kube::{Discovery, connect};
use capi_manage::repo::Repo;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of the management cluster the objects are on, as clusterctl names it
    /// (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(
        long = "kubeconfig",
        visible_alias = "from-kubeconfig",
        value_name = "FILE"
    )]
    pub from_kubeconfig: Option<PathBuf>,
    /// Context in --kubeconfig (default: its current-context).
    #[arg(
        long = "kubeconfig-context",
        visible_alias = "from-context",
        value_name = "NAME"
    )]
    pub from_context: Option<String>,
    /// Kubeconfig of the management cluster to move them to.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["dry_run", "to_directory"]
    )]
    pub to_kubeconfig: Option<PathBuf>,
    /// Context in --to-kubeconfig (default: its current-context).
    #[arg(
        long = "to-kubeconfig-context",
        visible_alias = "to-context",
        value_name = "NAME"
    )]
    pub to_context: Option<String>,
    /// Namespace of the cluster's objects (default, as in clusterctl: the namespace of the
    /// kubeconfig's context; a context that names none: capi-self, where bootstrap puts them).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Change nothing: print what would be moved, in order (groups, what stays behind);
    /// --to-kubeconfig is not needed.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete the moved objects from the source afterwards.
    #[arg(long)]
    pub delete_source: bool,
    /// Journal file that lets an interrupted move resume (default with --cluster:
    /// clusters/<name>/.capi-manage/move-journal.json; else none).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// The cluster (a folder under clusters/ of the config repository containing the working
    /// directory): the journal goes next to its config.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Save the objects to this directory (one file per object, 0600, directory 0700) instead
    /// of moving them; the source is paused while it is read and resumed afterwards.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["to_kubeconfig", "from_directory", "delete_source"])]
    pub to_directory: Option<PathBuf>,
    /// Create the objects saved by --to-directory on the target (--to-kubeconfig) instead of
    /// reading them from a source cluster.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["from_kubeconfig", "from_context", "delete_source", "dry_run"])]
    pub from_directory: Option<PathBuf>,
}

/// The journal: --journal, else next to the cluster's config with --cluster, else none.
fn journal(args: &Args) -> anyhow::Result<Option<PathBuf>> {
    if let Some(j) = &args.journal {
        return Ok(Some(j.clone()));
    }
    let Some(cluster) = &args.cluster else {
        return Ok(None);
    };
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    Ok(Some(Repo::discover(&cwd)?.layout(cluster)?.move_journal()))
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let cancel = super::cancel_on_ctrl_c();
    let journal = journal(&args)?;
    // One move per journal at a time: two runs writing one journal would lose each other's
    // progress.
    let _lock = match &journal {
        Some(j) => {
            let mut name = j.file_name().unwrap_or_default().to_os_string();
            name.push(".lock");
            // A missing folder is created private (it will hold the journal); an existing one
            // is left as it is.
            if let Some(parent) = j
                .parent()
                .filter(|p| !p.as_os_str().is_empty() && !p.exists())
            {
                capi_manage::fs::private_dir(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            Some(capi_manage::repo::lock_file(&j.with_file_name(name))?)
        }
        None => None,
    };
    let options = |client: &::kube::Client| MoveOptions {
        journal: journal.clone(),
        delete_source: args.delete_source,
        ..MoveOptions::new(namespace(args.namespace.as_deref(), client))
    };
    if let Some(dir) = &args.from_directory {
        let to = connect(&client_options(
            args.to_kubeconfig.clone(),
            args.to_context.clone(),
        ))
        .await?;
        let options = options(&to);
        let report = restore(&Discovery::new(to), dir, &options, observer, &cancel).await?;
        print_report(&report, "restored");
        return Ok(());
    }
    let from = connect(&client_options(
        args.from_kubeconfig.clone(),
        args.from_context.clone(),
    ))
    .await?;
    let options = options(&from);
    let source = Discovery::new(from);
    if args.dry_run {
        // Planning only reads: dropping it at Ctrl-C leaves nothing to undo.
        let planned = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(capi_manage::capi::Error::Cancelled),
            planned = plan(&source, &options.namespace) => planned,
        };
        print_report(&planned?, "would move");
        return Ok(());
    }
    if let Some(dir) = &args.to_directory {
        let report = backup(&source, dir, &options, observer, &cancel).await?;
        print_report(&report, "saved");
        return Ok(());
    }
    let to = connect(&client_options(
        args.to_kubeconfig.clone(),
        args.to_context.clone(),
    ))
    .await?;
    let target = Discovery::new(to);
    let report = move_objects(&source, &target, &options, observer, &cancel).await?;
    print_report(&report, "moved");
    Ok(())
}

/// The namespace to move: `-n`, else the context's namespace as clusterctl takes it, else
/// bootstrap's namespace (a context naming none gives the client `default`).
fn namespace(flag: Option<&str>, client: &::kube::Client) -> String {
    match flag {
        Some(n) => n.to_string(),
        None if client.default_namespace() != "default" => client.default_namespace().to_string(),
        None => capi_manage::bootstrap::DEFAULT_NAMESPACE.to_string(),
    }
}

fn print_report(report: &MoveReport, verb: &str) {
    for (i, group) in report.groups.iter().enumerate() {
        for o in group {
            println!("{verb:<12} group {:<2} {o}", i + 1);
        }
    }
    for s in &report.skipped {
        println!("{:<12} {}  ({})", "not moved", s.object, s.reason);
    }
    for (o, owner) in &report.dropped_owner_refs {
        println!(
            "{:<12} {o}: owner reference to {owner} (not moved)",
            "dropped ref"
        );
    }
}
