//! `capi-manage rotate <cluster>`: re-seal `clusters/<name>/credentials.yaml` with the cluster's
//! sealed-secrets certificate into `credentials-sealed.yaml`, commit exactly that file and push.
//!
//! Sealing is randomized, so every run writes a new file and a new commit; a run after a failed
//! push pushes the earlier commit along with the new one (the push sends whatever the remote
//! lacks).

use std::path::PathBuf;

use anyhow::Context;
use capi_manage::bootstrap::{self, RotateOptions, StepError};
use capi_manage::repo::Repo;
use capi_manage::seal::{DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE};

use super::{CertArgs, Terminal};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "HTTP(S) remotes: credentials from $CAPI_MANAGE_GIT_TOKEN (an access \
token), or $CAPI_MANAGE_GIT_USERNAME and $CAPI_MANAGE_GIT_PASSWORD, else those in the URL."
)]
pub struct Args {
    /// The cluster: a folder under clusters/.
    pub cluster: String,
    /// The config repository (default: the one containing the working directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    #[command(flatten)]
    pub cert: CertArgs,
    /// Namespace of the sealed-secrets controller.
    #[arg(long, value_name = "NS", default_value = DEFAULT_CONTROLLER_NAMESPACE)]
    pub controller_namespace: String,
    /// Name of the sealed-secrets controller's Service.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// Commit on this new branch (created at the current commit and checked out) and push it
    /// there for review; the current branch is left as it is.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    #[command(flatten)]
    pub git: super::git_args::GitArgs,
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let start = match &args.repo {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the working directory")?,
    };
    let repo = Repo::discover(&start)?;
    let mut o = RotateOptions::new(repo.root(), &args.cluster);
    o.certificate = args
        .cert
        .source(&args.controller_namespace, &args.controller_name)?;
    o.branch = args.branch.clone();
    o.message = args.git.message.clone();
    o.author = args.git.author();
    o.remote_url = args.git.git_url.clone();
    o.http_credentials = args.git.http_credentials()?;
    o.ssh = args.git.ssh();
    o.timeouts.connect = super::timeouts().connect;
    o.timeouts.request = super::timeouts().request;
    let cancel = super::cancel_on_ctrl_c();
    let report = bootstrap::rotate(&o, observer, &cancel)
        .await
        .map_err(hinted)?;
    println!(
        "rotated {}: commit {} on {}, {} at {} {}",
        report.sealed.display(),
        &report.commit[..report.commit.len().min(12)],
        report.branch,
        if report.push.up_to_date {
            "already"
        } else {
            "pushed to"
        },
        report.url,
        report.push.remote_ref
    );
    Ok(())
}

/// The library's error, with the flag that fixes it where one does.
fn hinted(e: bootstrap::Error) -> anyhow::Error {
    let hint = match e.step_error() {
        Some((_, StepError::NoKubeconfig { .. })) => "put it there or pass --cert FILE|URL",
        Some((_, StepError::NoRemote { .. })) => "or pass --git-url",
        _ => return e.into(),
    };
    anyhow::anyhow!("{}; {hint}", super::one_line(&anyhow::Error::from(e)))
}
