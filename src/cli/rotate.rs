//! `capi-manage rotate <cluster>`: re-seal `clusters/<name>/credentials.yaml` with the cluster's
//! sealed-secrets certificate into `credentials-sealed.yaml`, commit exactly that file and push.
//!
//! Sealing is randomized, so every run writes a new file and a new commit; a run after a failed
//! push pushes the earlier commit along with the new one (the push sends whatever the remote
//! lacks).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use capi_manage::git::{
    self, Author, CommitOptions, CommitOutcome, HttpCredentials, PushOptions, SshOptions,
    SwitchOutcome,
};
use capi_manage::kube::{ClientOptions, connect};
use capi_manage::observe::ObserverExt;
use capi_manage::repo::{Credentials, Repo};
use capi_manage::seal::{
    DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE, SealOptions, SealingKey, Secret,
    fetch_certificate, seal, to_yaml,
};
use tokio_util::sync::CancellationToken;

use super::{CertArgs, Terminal};

/// The sealed file's name inside `clusters/<name>/`.
pub const SEALED_FILE: &str = "credentials-sealed.yaml";

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

/// The default commit message of `capi-manage rotate <cluster>`.
pub fn default_message(cluster: &str) -> String {
    format!("Rotate credentials - {cluster}")
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let start = match &args.repo {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the working directory")?,
    };
    let repo = Repo::discover(&start)?;
    let dir = repo.cluster_dir(&args.cluster)?;
    let credentials_path = dir.join("credentials.yaml");
    let rela_sealed = Path::new("clusters").join(&args.cluster).join(SEALED_FILE);

    // Everything is checked before the network and before anything changes on disk.
    let credentials = Credentials::load(&credentials_path)?;
    if !credentials.placeholders.is_empty() {
        bail!(
            "{}: {} still hold{} the template's placeholder REPLACE_ME: fill in the application credential",
            credentials_path.display(),
            credentials.placeholders.join(", "),
            if credentials.placeholders.len() == 1 {
                "s"
            } else {
                ""
            }
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&credentials_path)
            .with_context(|| format!("cannot read {}", credentials_path.display()))?,
    );
    let mut secrets = Secret::parse(&text, Some(&credentials_path))?;
    drop(text);
    if secrets.len() != 1 {
        bail!(
            "{}: holds {} documents; expected exactly one Secret",
            credentials_path.display(),
            secrets.len()
        );
    }
    let secret = secrets.remove(0);

    let _lock = capi_manage::repo::lock_state_dir(&dir.join(capi_manage::capi::STATE_DIR))?;
    let facts = git::open(repo.root())?;
    let url = match (&args.remote_url, &facts.origin_url) {
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => bail!(
            "{}: no remote `origin` to push to; add one (`git remote add origin URL`) or pass --remote-url",
            facts.root.display()
        ),
    };
    let author = match (&args.author_name, &args.author_email) {
        (Some(name), Some(email)) => Some(Author {
            name: name.clone(),
            email: email.clone(),
        }),
        _ => None,
    };
    // Credentials in the URL leave it here, once: nothing after this prints them.
    let (url, url_credentials) = git::split_credentials(&url);
    let http_credentials = http_credentials()?.or(url_credentials);

    let (key, key_from) = sealing_key(&args, &dir, observer).await?;
    let sealed = seal(&secret, &key, &SealOptions::default())?;
    drop(secret);
    let yaml = to_yaml(&sealed);

    let branch = match &args.branch {
        None => facts.branch.clone(),
        Some(b) => {
            let b = b.strip_prefix("refs/heads/").unwrap_or(b).to_string();
            match git::switch_new_branch(repo.root(), &b)? {
                SwitchOutcome::Created { previous, .. } => observer.success(
                    format!(
                        "created branch {b} from {} and switched to it",
                        previous.as_deref().unwrap_or("HEAD")
                    ),
                    None,
                ),
                _ => observer.success(format!("already on branch {b}"), None),
            }
            b
        }
    };

    let sealed_path = dir.join(SEALED_FILE);
    super::seal::write_atomically(&sealed_path, yaml.as_bytes())?;
    observer.success(
        format!(
            "sealed {} with certificate {key_from} (subject {}, SHA-256 fingerprint {})",
            rela_sealed.display(),
            key.subject(),
            key.fingerprint_sha256()
        ),
        None,
    );

    let mut commit = CommitOptions::new(
        [rela_sealed.clone()],
        args.message
            .clone()
            .unwrap_or_else(|| default_message(&args.cluster)),
    );
    commit.author = author;
    let outcome = git::commit(repo.root(), &commit, observer)?;
    let commit_id = match &outcome {
        CommitOutcome::Committed { id, .. } => id.clone(),
        CommitOutcome::Unchanged { head } => head.clone(),
        _ => String::new(),
    };

    let mut push = PushOptions::new(&url, &branch);
    if http_credentials.is_some() {
        push.http_credentials = http_credentials;
    }
    push.ssh = ssh_options(&args);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    let pushed = git::push(repo.root(), &push, observer, &cancel).await?;
    println!(
        "rotated {}: commit {} on {branch}, {} at {url} {}",
        rela_sealed.display(),
        &commit_id[..commit_id.len().min(12)],
        if pushed.up_to_date {
            "already"
        } else {
            "pushed to"
        },
        pushed.remote_ref
    );
    Ok(())
}

/// The sealing key and where it came from.
async fn sealing_key(
    args: &Args,
    dir: &Path,
    observer: &Terminal,
) -> anyhow::Result<(SealingKey, String)> {
    if let Some(key) = args.cert.key().await? {
        return Ok((key, args.cert.cert.clone().unwrap_or_default()));
    }
    let kubeconfig = dir.join("kubeconfig");
    if !kubeconfig.is_file() {
        bail!(
            "{}: missing; the certificate is fetched through the cluster's kubeconfig: put it there or pass --cert FILE|URL",
            kubeconfig.display()
        );
    }
    let client = connect(&ClientOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .await?;
    let fetched =
        fetch_certificate(&client, &args.controller_namespace, &args.controller_name).await?;
    if let Some(reason) = &fetched.fallback_reason {
        observer.warning(format!(
            "using the certificate of {} because the controller's service proxy failed: {reason}",
            fetched.from
        ));
    }
    let key = SealingKey::from_pem(fetched.pem.as_bytes(), &fetched.from)?;
    Ok((key, fetched.from))
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
