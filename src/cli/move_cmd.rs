use std::path::PathBuf;

use capi_manage::capi::{MoveOptions, MoveReport, move_objects, plan};
use capi_manage::kube::{ClientOptions, Discovery, connect};
use tokio_util::sync::CancellationToken;

use super::Terminal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of the management cluster the objects are on.
    #[arg(long, value_name = "FILE")]
    pub from_kubeconfig: Option<PathBuf>,
    /// Context in --from-kubeconfig.
    #[arg(long, value_name = "NAME")]
    pub from_context: Option<String>,
    /// Kubeconfig of the management cluster to move them to.
    #[arg(long, value_name = "FILE", required_unless_present = "dry_run")]
    pub to_kubeconfig: Option<PathBuf>,
    /// Context in --to-kubeconfig.
    #[arg(long, value_name = "NAME")]
    pub to_context: Option<String>,
    /// Namespace of the cluster's objects.
    #[arg(long, short = 'n', default_value = "capi-self")]
    pub namespace: String,
    /// Print the move plan (groups in order, what stays behind) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete the moved objects from the source afterwards.
    #[arg(long)]
    pub delete_source: bool,
    /// Journal file that lets an interrupted move resume (default: none).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let from = connect(&ClientOptions {
        kubeconfig: args.from_kubeconfig.clone(),
        context: args.from_context.clone(),
    })
    .await?;
    let source = Discovery::new(from);
    if args.dry_run {
        print_report(&plan(&source, &args.namespace).await?, "would move");
        return Ok(());
    }
    let to = connect(&ClientOptions {
        kubeconfig: args.to_kubeconfig.clone(),
        context: args.to_context.clone(),
    })
    .await?;
    let target = Discovery::new(to);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    let options = MoveOptions {
        journal: args.journal.clone(),
        delete_source: args.delete_source,
        ..MoveOptions::new(&args.namespace)
    };
    let report = move_objects(&source, &target, &options, observer, &cancel).await?;
    print_report(&report, "moved");
    Ok(())
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
