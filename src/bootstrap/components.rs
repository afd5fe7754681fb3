//! What the steps do with the other modules: vendored components, git and Flux.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::state::write_private;
use super::{DeployKeyNotice, Error, Options, relative};
use crate::git::{CommitOptions, CommitOutcome, PushOptions};
use crate::kube::Discovery;
use crate::observe::{Observer, ObserverExt};

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn other(message: String) -> BoxError {
    Box::new(std::io::Error::other(message))
}

/// Installs every vendored component (verified against the lock) with health gates.
pub(super) async fn install(
    _discovery: &Discovery,
    _o: &Options,
    _observer: &dyn Observer,
    _cancel: &CancellationToken,
) -> Result<(), BoxError> {
    todo!("vendor + flux install")
}

/// What [`commit_and_push`] left on the remote.
pub(super) struct Pushed {
    pub commit: String,
    pub branch: String,
}

/// The URL the bootstrap pushes to: `--git-url`, else `origin`.
pub(super) fn push_url(o: &Options) -> Result<(String, String), BoxError> {
    let facts = crate::git::open(&o.root)?;
    let url = match (&o.git.push_url, &facts.origin_url) {
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => {
            return Err(other(format!(
                "{}: the repository has no remote `origin`; add one (`git remote add origin <url>`) or pass --git-url",
                o.root.display()
            )));
        }
    };
    Ok((url, facts.branch))
}

/// The URL Flux clones.
pub(super) fn flux_url(o: &Options) -> Result<String, BoxError> {
    match &o.git.flux_url {
        Some(u) => Ok(u.clone()),
        None => Ok(crate::git::flux_url(&push_url(o)?.0)?),
    }
}

/// Commits the sealed credentials and the kustomization listing them, and pushes the branch.
pub(super) async fn commit_and_push(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Pushed, BoxError> {
    let (url, branch) = push_url(o)?;
    let dir = relative(&o.root, &o.cluster_dir());
    let files: Vec<PathBuf> = vec![
        dir.join(super::run::SEALED_CREDENTIALS),
        dir.join("kustomization.yaml"),
    ];
    let message = o
        .git
        .message
        .clone()
        .unwrap_or_else(|| crate::git::bootstrap_message(&o.cluster));
    let mut co = CommitOptions::new(files, message);
    co.author = o.git.author.clone();
    let root = o.root.clone();
    let obs: &dyn Observer = observer;
    let outcome = crate::git::commit(&root, &co, obs)?;
    match &outcome {
        CommitOutcome::Committed { id, .. } => observer.success(format!("committed {id}"), None),
        CommitOutcome::Unchanged { head } => {
            observer.success(format!("nothing new to commit (at {head})"), None)
        }
    }
    let mut po = PushOptions::new(url, &branch);
    po.http_credentials = o.git.http_credentials.clone();
    po.ssh = o.git.ssh.clone();
    let pushed = crate::git::push(&o.root, &po, observer, cancel).await?;
    Ok(Pushed {
        commit: pushed.new,
        branch,
    })
}

/// Flux's deploy key: generated once (kept in the state folder, 0600), shown, and confirmed.
/// Nothing to do for HTTP(S) remotes.
pub(super) async fn deploy_key(o: &Options, observer: &dyn Observer) -> Result<(), BoxError> {
    let url = flux_url(o)?;
    if !url.starts_with("ssh://") {
        observer.success(format!("{url} is not SSH: no deploy key needed"), None);
        return Ok(());
    }
    let (private, public) = load_or_generate_key(o)?;
    let _ = private;
    let fingerprint = ssh_key::PublicKey::from_openssh(public.trim())
        .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string())
        .map_err(|e| other(format!("deploy key {}: {e}", pub_path(o).display())))?;
    let notice = DeployKeyNotice {
        url: url.clone(),
        public_line: public.trim().to_string(),
        fingerprint: fingerprint.clone(),
        path: pub_path(o),
    };
    observer.action(format!(
        "add this deploy key (read access) to {url}: {}",
        notice.public_line
    ));
    if let Some(confirm) = &o.confirm_deploy_key {
        let confirm = confirm.clone();
        let n = notice.clone();
        let added = tokio::task::spawn_blocking(move || confirm(&n))
            .await
            .map_err(|e| other(format!("deploy key prompt: {e}")))?;
        if !added {
            return Err(Box::new(Error::DeployKeyNotAdded {
                url,
                fingerprint,
                path: notice.path,
            }));
        }
    }
    Ok(())
}

fn key_path(o: &Options) -> PathBuf {
    o.state_dir().join("deploy-key")
}

fn pub_path(o: &Options) -> PathBuf {
    o.state_dir().join("deploy-key.pub")
}

/// The deploy key pair (private OpenSSH text, public line), generated on first use.
pub(super) fn load_or_generate_key(
    o: &Options,
) -> Result<(zeroize::Zeroizing<String>, String), BoxError> {
    let (kp, pp) = (key_path(o), pub_path(o));
    if let (Ok(private), Ok(public)) = (std::fs::read_to_string(&kp), std::fs::read_to_string(&pp))
    {
        return Ok((zeroize::Zeroizing::new(private), public));
    }
    let key = crate::git::generate_deploy_key(&format!("flux-{}", o.cluster))?;
    write_private(&kp, key.private_openssh.as_bytes())
        .map_err(|e| other(format!("cannot write {}: {e}", kp.display())))?;
    write_private(&pp, format!("{}\n", key.public_line).as_bytes())
        .map_err(|e| other(format!("cannot write {}: {e}", pp.display())))?;
    Ok((
        key.private_openssh.clone(),
        format!("{}\n", key.public_line),
    ))
}

/// Applies Flux's source Secret, GitRepository and Kustomizations on the cluster.
pub(super) async fn flux_sync(
    _target: &Discovery,
    _o: &Options,
    _branch: &str,
    _observer: &dyn Observer,
    _cancel: &CancellationToken,
) -> Result<(), BoxError> {
    todo!("flux gen")
}

/// Waits until Flux applied `revision`.
pub(super) async fn wait_synced(
    _target: &Discovery,
    _o: &Options,
    _revision: &str,
    _observer: &dyn Observer,
    _cancel: &CancellationToken,
) -> Result<(), BoxError> {
    todo!("flux health")
}

/// Suspends Flux's Kustomization of the cluster (teardown).
pub(super) async fn suspend_sync(
    _target: &Discovery,
    _o: &Options,
    _observer: &dyn Observer,
) -> Result<(), BoxError> {
    todo!("flux suspend")
}
