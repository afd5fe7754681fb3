//! A full bootstrap from a program: kind cluster, components, the workload cluster, the move
//! and Flux, as `capi-manage bootstrap` runs it, with progress through a closure and Ctrl-C
//! cancelling it. Needs Docker, OpenStack credentials in `clusters/<name>/credentials.yaml`
//! and a pushable git remote; CI only compiles it.
//!
//! Usage: `cargo run --example bootstrap -- REPO_ROOT CLUSTER`
//!
//! Features: `bootstrap`, plus tokio's `signal` for Ctrl-C (the `cli` feature turns it on for
//! this example; a program of its own enables `tokio/signal` itself):
//!
//! ```toml
//! capi-manage = { version = "0.1", default-features = false, features = ["bootstrap"] }
//! tokio = { version = "1", features = ["rt-multi-thread", "macros", "signal"] }
//! ```
//!
//! Interrupted or failed, what was done is kept in the cluster's state folder, and running it
//! again resumes from there.

use std::process::ExitCode;
use std::sync::Arc;

use capi_manage::bootstrap::{self, DeployKeyNotice, Options, StepError};
use capi_manage::observe::Event;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, cluster] = args.as_slice() else {
        eprintln!("usage: bootstrap REPO_ROOT CLUSTER");
        return ExitCode::from(2);
    };

    let mut options = Options::new(root, cluster);
    // Flux's deploy key must be on the git host before Flux clones: ask, as the binary does.
    options.confirm_deploy_key = Some(Arc::new(|notice: &DeployKeyNotice| {
        eprintln!(
            "add this read-only deploy key to {} and press Enter:\n{}",
            notice.url, notice.public_line
        );
        std::io::stdin().read_line(&mut String::new()).is_ok()
    }));

    // Any `Fn(Event) + Send + Sync` is an observer.
    let observer = |event: Event| eprintln!("{event}");

    // Ctrl-C cancels: the running step stops at its next await and the run returns an error.
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });

    match bootstrap::bootstrap(&options, &observer, &cancel).await {
        Ok(report) => {
            println!("ran: {}", report.ran.join(", "));
            println!("already done: {}", report.skipped.join(", "));
            if let Some(commit) = &report.pushed {
                println!("pushed {commit}");
            }
            println!("kubeconfig: {}", report.kubeconfig.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut line = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                line.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {line}");
            // Errors are typed: the failed step's id and the module error it wraps.
            if let Some((step, StepError::DeployKeyNotAdded { path, .. })) = e.step_error() {
                eprintln!(
                    "step {step}: add the key in {} and run again",
                    path.display()
                );
            }
            if cancel.is_cancelled() {
                eprintln!("interrupted: run again to resume");
                return ExitCode::from(130);
            }
            ExitCode::FAILURE
        }
    }
}
