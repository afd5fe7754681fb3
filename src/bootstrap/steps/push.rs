//! `push`: commit the sealed credentials and the kustomization listing them, and push. The
//! commit-and-push ([`commit_and_push`]) is shared with `rotate`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use tokio_util::sync::CancellationToken;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;
use crate::git::{
    Author, CommitOptions, CommitOutcome, HttpCredentials, PushOptions, PushOutcome, RepoFacts,
    SshOptions,
};
use crate::observe::{Observer, ObserverExt};

/// Commits and pushes what the seal step wrote.
pub(super) struct Push;

impl Step for Push {
    fn id(&self) -> &'static str {
        "push"
    }

    fn description(&self) -> &'static str {
        "commit and push the sealed credentials"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let o = ctx.o;
            let (url, facts) = remote(&o.root, o.git.push_url.as_deref())?;
            let message = o
                .git
                .message
                .clone()
                .unwrap_or_else(|| crate::git::bootstrap_message(&o.cluster));
            let change = Change {
                root: &o.root,
                files: vec![
                    ctx.dir.relative(&ctx.dir.sealed_credentials()),
                    ctx.dir.relative(&ctx.dir.kustomization()),
                ],
                message,
                author: o.git.author.clone(),
                url,
                branch: facts.branch.clone(),
                http_credentials: o.git.http_credentials.clone(),
                ssh: o.git.ssh.clone(),
                timeouts: (o.timeouts.connect, o.timeouts.request),
            };
            let pushed = commit_and_push(change, ctx.observer, ctx.cancel).await?;
            ctx.state.pushed = Some(pushed.outcome.new);
            ctx.state.branch = Some(facts.branch);
            Ok(())
        })
    }
}

/// The URL to push to: `explicit`, else the repository's `origin`; with the repository's
/// facts (its branch).
pub(in crate::bootstrap) fn remote(
    root: &Path,
    explicit: Option<&str>,
) -> Result<(String, RepoFacts), StepError> {
    let facts = crate::git::open(root).map_err(StepError::GitOpen)?;
    let url = match (explicit, &facts.origin_url) {
        (Some(u), _) => u.to_string(),
        (None, Some(u)) => u.clone(),
        (None, None) => {
            return Err(StepError::NoRemote {
                root: root.to_path_buf(),
            });
        }
    };
    Ok((url, facts))
}

/// A commit of exactly `files` (repository-relative) and its push.
pub(in crate::bootstrap) struct Change<'a> {
    pub root: &'a Path,
    pub files: Vec<PathBuf>,
    pub message: String,
    pub author: Option<Author>,
    /// Where to push (credentials in it are taken out and used).
    pub url: String,
    pub branch: String,
    /// Credentials for HTTP(S) remotes, instead of those in the URL.
    pub http_credentials: Option<HttpCredentials>,
    pub ssh: SshOptions,
    /// Connect and read timeouts of the push; `None`: no limit.
    pub timeouts: (Option<Duration>, Option<Duration>),
}

/// What [`commit_and_push`] did.
pub(in crate::bootstrap) struct Pushed {
    /// The commit the branch is at (committed now, or already there).
    pub commit: String,
    /// The push.
    pub outcome: PushOutcome,
    /// The URL pushed to, without credentials.
    pub url: String,
}

/// Commits `change.files` on the current branch (nothing when unchanged) and pushes the branch.
pub(in crate::bootstrap) async fn commit_and_push(
    change: Change<'_>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Pushed, StepError> {
    let mut co = CommitOptions::new(change.files, change.message);
    co.author = change.author;
    let outcome = crate::git::commit(change.root, &co, observer).map_err(StepError::Commit)?;
    let commit = match &outcome {
        CommitOutcome::Committed { id, .. } => {
            observer.success(format!("committed {id}"), None);
            id.clone()
        }
        CommitOutcome::Unchanged { head } => {
            observer.success(format!("nothing new to commit (at {head})"), None);
            head.clone()
        }
    };
    let mut po = PushOptions::new(change.url, &change.branch);
    if let Some(c) = change.http_credentials {
        po.http_credentials = Some(c);
    }
    po.ssh = change.ssh;
    // No limit: a century.
    let unlimited = Duration::from_secs(100 * 365 * 24 * 3600);
    po.connect_timeout = change.timeouts.0.unwrap_or(unlimited);
    po.read_timeout = change.timeouts.1.unwrap_or(unlimited);
    let url = po.url.clone();
    let outcome = crate::git::push(change.root, &po, observer, cancel)
        .await
        .map_err(|source| StepError::Push {
            url: url.clone(),
            source: Box::new(source),
        })?;
    Ok(Pushed {
        commit,
        outcome,
        url,
    })
}
