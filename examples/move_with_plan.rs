//! Move a cluster's Cluster API objects between management clusters, as `clusterctl move`
//! does, after printing the plan: the groups in move order and what stays behind. Needs two
//! reachable clusters; CI only compiles it.
//!
//! Usage: `cargo run --example move_with_plan -- FROM_KUBECONFIG TO_KUBECONFIG [NAMESPACE]`
//!
//! Feature: `capi` (which enables `kube`):
//!
//! ```toml
//! capi-manage = { version = "0.1", default-features = false, features = ["capi"] }
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use capi_manage::capi::{self, MoveOptions};
use capi_manage::kube::{ClientOptions, Discovery, connect};
use capi_manage::observe::Event;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (from, to, namespace) = match args.as_slice() {
        [from, to] => (from, to, "capi-self"),
        [from, to, ns] => (from, to, ns.as_str()),
        _ => {
            eprintln!("usage: move_with_plan FROM_KUBECONFIG TO_KUBECONFIG [NAMESPACE]");
            return ExitCode::from(2);
        }
    };
    match run(from.into(), to.into(), namespace).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                line.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    from: PathBuf,
    to: PathBuf,
    namespace: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let options = |kubeconfig: PathBuf| ClientOptions {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    };
    let source = Discovery::new(connect(&options(from)).await?);
    let target = Discovery::new(connect(&options(to)).await?);

    // 1. The plan: reads the source, changes nothing.
    let plan = capi::plan(&source, namespace).await?;
    for (i, group) in plan.groups.iter().enumerate() {
        for object in group {
            println!("group {}: {object}", i + 1);
        }
    }
    for s in &plan.skipped {
        println!("stays: {} ({})", s.object, s.reason);
    }

    // 2. The move. Without a journal an interrupted move cannot resume; see
    //    `MoveOptions::for_cluster_dir` for one next to the cluster's config.
    let observer = |event: Event| eprintln!("{event}");
    let report = capi::move_objects(
        &source,
        &target,
        &MoveOptions::new(namespace),
        &observer,
        &CancellationToken::new(),
    )
    .await?;
    println!("moved {} objects", report.moved().count());
    Ok(())
}
