//! `capi-manage rotate <cluster>`: re-seal `clusters/<name>/credentials.yaml` with the cluster's
//! sealed-secrets certificate into `credentials-sealed.yaml`, commit exactly that file and push.
//!
//! Sealing is randomized, so every run writes a new file and a new commit; a run after a failed
//! push pushes the earlier commit along with the new one (the push sends whatever the remote
//! lacks).

use std::path::PathBuf;

use anyhow::{Context, bail};
use capi_manage::bootstrap::{self, RotateOptions, StepError};
use capi_manage::git::{Author, HttpCredentials, SshOptions};
use capi_manage::repo::Repo;
use capi_manage::seal::{DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE};

use super::{CertArgs, Terminal};

/// Environment variable holding an access token for HTTP(S) remotes.
const TOKEN_ENV: &str = "CAPI_MANAGE_GIT_TOKEN";
/// Environment variables holding a user name and password for HTTP(S) remotes.
const USERNAME_ENV: &str = "CAPI_MANAGE_GIT_USERNAME";
const PASSWORD_ENV: &str = "CAPI_MANAGE_GIT_PASSWORD";

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
    /// Commit message (default: `Rotate credentials - <cluster>`).
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
    /// Commit author name (default: git config user.name).
    #[arg(long, value_name = "NAME", requires = "author_email")]
    pub author_name: Option<String>,
    /// Commit author email (default: git config user.email).
    #[arg(long, value_name = "EMAIL", requires = "author_name")]
    pub author_email: Option<String>,
    /// Push here instead of remote `origin`'s URL.
    #[arg(long, value_name = "URL")]
    pub remote_url: Option<String>,
    /// SSH private key to push with (repeatable; default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa).
    #[arg(long = "identity", value_name = "FILE")]
    pub identity_files: Vec<PathBuf>,
    /// SSH known_hosts file (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Trust and record an SSH host key known_hosts does not list yet.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Do not use the ssh-agent.
    #[arg(long)]
    pub no_agent: bool,
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
    o.message = args.message.clone();
    o.author = match (&args.author_name, &args.author_email) {
        (Some(name), Some(email)) => Some(Author {
            name: name.clone(),
            email: email.clone(),
        }),
        _ => None,
    };
    o.remote_url = args.remote_url.clone();
    o.http_credentials = http_credentials()?;
    o.ssh = ssh_options(&args);
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
        Some((_, StepError::NoRemote { .. })) => "or pass --remote-url",
        _ => return e.into(),
    };
    anyhow::anyhow!("{}; {hint}", super::one_line(&anyhow::Error::from(e)))
}

fn http_credentials() -> anyhow::Result<Option<HttpCredentials>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(token) = var(TOKEN_ENV) {
        return Ok(Some(HttpCredentials::token(token)));
    }
    match (var(USERNAME_ENV), var(PASSWORD_ENV)) {
        (Some(username), Some(password)) => Ok(Some(HttpCredentials { username, password })),
        (None, None) => Ok(None),
        _ => bail!("set both ${USERNAME_ENV} and ${PASSWORD_ENV}, or ${TOKEN_ENV}, or neither"),
    }
}

fn ssh_options(args: &Args) -> SshOptions {
    let mut ssh = SshOptions::default();
    ssh.identity_files = args.identity_files.clone();
    ssh.known_hosts = args.known_hosts.clone();
    ssh.accept_new_host_key = args.accept_new_host_key;
    ssh.no_agent = args.no_agent;
    ssh
}
