//! `rotate`: re-seal `clusters/<name>/credentials.yaml` with the cluster's sealed-secrets
//! certificate into `credentials-sealed.yaml`, commit exactly that file and push, with the
//! bootstrap's seal and push steps' code.
//!
//! Sealing is randomized, so every run writes a new file and a new commit; a run after a failed
//! push pushes the earlier commit along with the new one (the push sends whatever the remote
//! lacks).

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::steps::push::{Change, commit_and_push, remote};
use super::steps::seal::{read_credentials, sealed_yaml, sealing_key, write_sealed};
use super::{Error, StepError};
use crate::git::{Author, HttpCredentials, PushOutcome, SshOptions, SwitchOutcome};
use crate::kube::connect;
use crate::observe::{Observer, ObserverExt};
use crate::repo::{Credentials, Repo};
use crate::seal::CertSource;

const SEAL: (&str, &str) = (
    "seal",
    "seal the credentials with the cluster's certificate",
);
const PUSH: (&str, &str) = ("push", "commit and push the sealed credentials");

/// Options of [`rotate`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateOptions {
    /// The config repository's root.
    pub root: PathBuf,
    /// The cluster: `clusters/<cluster>`.
    pub cluster: String,
    /// The sealing certificate.
    pub certificate: CertSource,
    /// Commit on this new branch (created at the current commit and checked out) and push it;
    /// `None`: the current branch.
    pub branch: Option<String>,
    /// The commit message; `None`: [`rotate_message`].
    pub message: Option<String>,
    /// The author; `None`: from git config.
    pub author: Option<Author>,
    /// Where to push; `None`: `origin`. Credentials in it are used and never shown.
    pub remote_url: Option<String>,
    /// HTTP(S) credentials, instead of those in the URL.
    pub http_credentials: Option<HttpCredentials>,
    /// SSH keys and host verification.
    pub ssh: SshOptions,
    /// Connect and request timeouts (only those two are used).
    pub timeouts: super::Timeouts,
}

impl RotateOptions {
    /// Defaults for `clusters/<cluster>` in the repository at `root`: the certificate from the
    /// cluster's controller in its default namespace.
    pub fn new(root: impl Into<PathBuf>, cluster: impl Into<String>) -> RotateOptions {
        RotateOptions {
            root: root.into(),
            cluster: cluster.into(),
            certificate: CertSource::default(),
            branch: None,
            message: None,
            author: None,
            remote_url: None,
            http_credentials: None,
            ssh: SshOptions::default(),
            timeouts: super::Timeouts::default(),
        }
    }
}

/// The default commit message of a rotation of `cluster`.
pub fn rotate_message(cluster: &str) -> String {
    format!("Rotate credentials - {cluster}")
}

/// What a rotation did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateReport {
    /// The sealed file, relative to the repository's root.
    pub sealed: PathBuf,
    /// The commit the branch is at (hex).
    pub commit: String,
    /// The branch pushed.
    pub branch: String,
    /// The remote, without credentials.
    pub url: String,
    /// The push.
    pub push: PushOutcome,
}

fn failed((step, what): (&'static str, &'static str)) -> impl FnOnce(StepError) -> Error {
    move |source| Error::Rotate {
        step,
        what,
        source: Box::new(source),
    }
}

/// Re-seals the cluster's credentials, commits exactly the sealed file and pushes it.
/// Everything is checked (credentials, lock, repository, remote, certificate) before anything
/// changes on disk.
///
/// # Errors
///
/// [`Error::Repo`] when the cluster's folder or credentials are unusable or another run holds
/// the lock; [`Error::Rotate`] naming the step (`seal` or `push`) with its
/// [`StepError`]; [`Error::Cancelled`] when `cancel` fired while the certificate was fetched or
/// the branch pushed.
pub async fn rotate(
    o: &RotateOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<RotateReport, Error> {
    let dir = Repo::at(&o.root).layout(&o.cluster).map_err(Error::Repo)?;
    let credentials = Credentials::load(&dir.credentials()).map_err(Error::Repo)?;
    credentials
        .ensure_filled(&dir.credentials())
        .map_err(Error::Repo)?;
    let secret = read_credentials(&dir.credentials()).map_err(failed(SEAL))?;

    let _lock = dir.lock().map_err(Error::Repo)?;
    let (url, facts) = remote(&o.root, o.remote_url.as_deref()).map_err(failed(PUSH))?;

    let fetch = async {
        let client = match &o.certificate {
            CertSource::Cluster { .. } => {
                let kubeconfig = dir.kubeconfig();
                if !kubeconfig.is_file() {
                    return Err(StepError::NoKubeconfig { path: kubeconfig });
                }
                let client = connect(&o.timeouts.client(kubeconfig.clone()))
                    .await
                    .map_err(|source| StepError::Connect {
                        side: super::Side::Cluster,
                        kubeconfig,
                        source: Box::new(source),
                    })?;
                Some(client)
            }
            _ => None,
        };
        sealing_key(&o.certificate, client.as_ref(), observer).await
    };
    let (key, from) = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Error::Cancelled { step: SEAL.0 }),
        r = fetch => r.map_err(failed(SEAL))?,
    };

    let yaml = sealed_yaml(&dir, &secret, &key).map_err(failed(SEAL))?;
    drop(secret);
    // Nothing has changed yet: an interruption up to here leaves everything as it was.
    if cancel.is_cancelled() {
        return Err(Error::Cancelled { step: SEAL.0 });
    }

    let branch = match &o.branch {
        None => facts.branch.clone(),
        Some(b) => {
            let b = b.strip_prefix("refs/heads/").unwrap_or(b).to_string();
            let switched = crate::git::switch_new_branch(&o.root, &b)
                .map_err(|e| failed(PUSH)(StepError::Switch(e)))?;
            match switched {
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

    let sealed_path = write_sealed(&dir, &yaml).map_err(failed(SEAL))?;
    let sealed = dir.relative(&sealed_path);
    observer.success(
        format!(
            "sealed {} with certificate {from} (subject {}, SHA-256 fingerprint {})",
            sealed.display(),
            key.subject(),
            key.fingerprint_sha256()
        ),
        None,
    );

    let change = Change {
        root: &o.root,
        files: vec![sealed.clone()],
        message: o
            .message
            .clone()
            .unwrap_or_else(|| rotate_message(&o.cluster)),
        author: o.author.clone(),
        url,
        branch: branch.clone(),
        http_credentials: o.http_credentials.clone(),
        ssh: o.ssh.clone(),
        timeouts: (o.timeouts.connect, o.timeouts.request),
    };
    let pushed = match commit_and_push(change, observer, cancel).await {
        Ok(p) => p,
        Err(_) if cancel.is_cancelled() => return Err(Error::Cancelled { step: PUSH.0 }),
        Err(e) => return Err(failed(PUSH)(e)),
    };
    Ok(RotateReport {
        sealed,
        commit: pushed.commit,
        branch,
        url: pushed.url,
        push: pushed.outcome,
    })
}
