//! `push`: git's receive-pack protocol (v1) on gix plumbing, over file, HTTP(S) and SSH.

mod file;
mod http;
pub(crate) mod known_hosts;
pub(crate) mod pack;
pub(crate) mod protocol;
pub(crate) mod ssh;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gix::ObjectId;
use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, ObserverExt};
use protocol::{Advertisement, Command, Report};

/// Basic credentials for smart HTTP(S); tokens go in `password`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCredentials {
    /// The user name (forges accept any non-empty name with a token).
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl HttpCredentials {
    /// Credentials for an access token (user name `x-access-token`, which GitHub, Gitea and
    /// GitLab accept with a token as password).
    pub fn token(token: impl Into<String>) -> Self {
        HttpCredentials {
            username: "x-access-token".into(),
            password: token.into(),
        }
    }
}

impl std::fmt::Debug for HttpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to authenticate and verify the server over SSH.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SshOptions {
    /// Private keys to try, in order. Empty: `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub identity_files: Vec<PathBuf>,
    /// Skip the ssh-agent at `SSH_AUTH_SOCK` even if one is running.
    pub no_agent: bool,
    /// The known_hosts file; `None`: `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Trust and record a host key when known_hosts has no entry at all for the host, as
    /// OpenSSH's `StrictHostKeyChecking=accept-new` does: a host listed with other keys (of any
    /// algorithm) is refused as changed, a `@revoked` key always.
    pub accept_new_host_key: bool,
}

/// What [`push()`] pushes and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// The remote: a local path, `file://`, `http(s)://`, `ssh://` or scp-like `user@host:path`.
    pub url: String,
    /// The local ref (or `HEAD`) whose commit is pushed.
    pub local_ref: String,
    /// The remote ref to update, e.g. `refs/heads/main`.
    pub remote_ref: String,
    /// Credentials for HTTP(S); `None`: those in the URL, if any.
    pub http_credentials: Option<HttpCredentials>,
    /// SSH keys and host verification.
    pub ssh: SshOptions,
    /// HTTP(S) and SSH: how long connecting may take (for SSH: with the key exchange and host
    /// key check).
    pub connect_timeout: std::time::Duration,
    /// HTTP(S) and SSH: how long the server may send nothing while it answers.
    pub read_timeout: std::time::Duration,
}

impl PushOptions {
    /// Push local `branch` to the same branch at `url`. Credentials in an HTTP(S) URL's userinfo
    /// (`https://user:TOKEN@host/...`) are taken out of it into [`PushOptions::http_credentials`]
    /// here, once: the URL the push carries, reports and prints holds no secret.
    pub fn new(url: impl Into<String>, branch: &str) -> Self {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let (url, http_credentials) = split_credentials(&url.into());
        PushOptions {
            url,
            local_ref: format!("refs/heads/{branch}"),
            remote_ref: format!("refs/heads/{branch}"),
            http_credentials,
            ssh: SshOptions::default(),
            connect_timeout: std::time::Duration::from_secs(30),
            read_timeout: std::time::Duration::from_secs(300),
        }
    }
}

/// An HTTP(S) URL without its userinfo, and the credentials the userinfo held (user name and
/// password, percent-decoded; a lone user name is taken as a token). Other URLs are returned
/// unchanged: an SSH URL's user name is no secret.
pub fn split_credentials(url: &str) -> (String, Option<HttpCredentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return (url.to_string(), None);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let credentials = match userinfo.split_once(':') {
        Some((user, password)) => HttpCredentials {
            username: percent_decode(user),
            password: percent_decode(password),
        },
        None => HttpCredentials::token(percent_decode(userinfo)),
    };
    (format!("{scheme}://{host}{path}"), Some(credentials))
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What [`push()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushOutcome {
    /// The remote ref.
    pub remote_ref: String,
    /// Its previous commit (hex), `None` if it was created.
    pub old: Option<String>,
    /// Its commit now (hex).
    pub new: String,
    /// Objects sent.
    pub objects: usize,
    /// Size of the pack sent, in bytes (0 when up to date).
    pub pack_bytes: u64,
    /// The remote already had this commit: nothing was sent.
    pub up_to_date: bool,
    /// What the remote said on its side-band (hook output), line by line.
    pub remote_messages: Vec<String>,
}

/// Why [`push()`] failed. The remote ref is unchanged unless stated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The URL is not one we can push to.
    #[error("cannot push to {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The local repository or ref cannot be read.
    #[error("{path}: cannot {what}")]
    Local {
        /// The local repository.
        path: PathBuf,
        /// What failed.
        what: String,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// The server cannot be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The remote URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The SSH host key is not in known_hosts.
    #[error("host key of {host} is unknown ({fingerprint}, not in {known_hosts})")]
    UnknownHostKey {
        /// `host` or `[host]:port`.
        host: String,
        /// The key's SHA256 fingerprint.
        fingerprint: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
    },
    /// The SSH host key differs from the one in known_hosts.
    #[error(
        "host key of {host} CHANGED ({fingerprint} is not among its keys in {known_hosts}, first listed at line {line}); someone may be intercepting the connection, or the host was reinstalled"
    )]
    HostKeyChanged {
        /// `host` or `[host]:port`.
        host: String,
        /// The presented key's SHA256 fingerprint.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// The line listing the other key.
        line: usize,
    },
    /// The SSH host key is marked `@revoked` in known_hosts.
    #[error(
        "host key of {host} is REVOKED ({fingerprint}, {known_hosts} line {line}); refusing to connect"
    )]
    HostKeyRevoked {
        /// `host` or `[host]:port`.
        host: String,
        /// The presented key's SHA256 fingerprint.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// The `@revoked` line.
        line: usize,
    },
    /// The server refused our credentials.
    #[error("authentication to {url} failed: {detail}")]
    AuthFailed {
        /// The remote URL.
        url: String,
        /// What was tried.
        detail: String,
    },
    /// The server could not serve the repository (not found, not a git repository, ...).
    #[error("{url}: {message}")]
    Remote {
        /// The remote URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The remote ref has commits we do not have.
    #[error(
        "{url} rejected {remote_ref}: non-fast-forward (the remote has commits you do not have); pull them (`git pull --rebase`) and push again"
    )]
    NonFastForward {
        /// The remote URL.
        url: String,
        /// The remote ref.
        remote_ref: String,
    },
    /// A server-side hook refused the update.
    #[error("{url} rejected {remote_ref}: {reason}: {message}")]
    HookRejected {
        /// The remote URL.
        url: String,
        /// The remote ref.
        remote_ref: String,
        /// The status reason, e.g. `pre-receive hook declined`.
        reason: String,
        /// The hook's output, lines joined with ` | `.
        message: String,
    },
    /// The server refused the update for another reason.
    #[error("{url} rejected {remote_ref}: {reason}")]
    Rejected {
        /// The remote URL.
        url: String,
        /// The remote ref.
        remote_ref: String,
        /// The server's reason.
        reason: String,
    },
    /// A commit to push carries a file that must never reach the remote. Nothing was sent.
    #[error(
        "refusing to push {remote_ref} to {url}: commit {commit} adds {path}: {violation}; remove it from the unpushed commits (e.g. `git rebase -i`), then push again"
    )]
    Refused {
        /// The remote URL.
        url: String,
        /// The remote ref.
        remote_ref: String,
        /// The commit (hex) that adds or changes the file.
        commit: String,
        /// The file, relative to the repository root.
        path: String,
        /// What is wrong with it.
        violation: Box<super::Violation>,
    },
    /// The server spoke something we do not understand.
    #[error("{url}: protocol error: {detail}")]
    Protocol {
        /// The remote URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The cancellation token fired.
    #[error("push to {url} cancelled")]
    Cancelled {
        /// The remote URL.
        url: String,
    },
}

/// Where the bytes go.
pub(crate) enum Remote {
    File(file::Local),
    Http(http::Http),
    Ssh(ssh::Ssh),
}

impl Remote {
    async fn connect(
        options: &PushOptions,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<(Remote, Advertisement), PushError> {
        let url = options.url.as_str();
        let timeouts = http::Timeouts {
            connect: options.connect_timeout,
            read: options.read_timeout,
        };
        if url.starts_with("http://") || url.starts_with("https://") {
            let (remote, adv) =
                http::Http::connect(url, options.http_credentials.clone(), timeouts).await?;
            return Ok((Remote::Http(remote), adv));
        }
        if let Some(target) = ssh::Target::parse(url) {
            let target = target.map_err(|reason| PushError::InvalidUrl {
                url: url.into(),
                reason,
            })?;
            let (remote, adv) =
                ssh::Ssh::connect(url, target, &options.ssh, timeouts, observer, cancel).await?;
            return Ok((Remote::Ssh(remote), adv));
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if url.contains("://") => {
                return Err(PushError::InvalidUrl {
                    url: url.into(),
                    reason: "unsupported scheme (use file://, http(s):// or ssh://)".into(),
                });
            }
            None => PathBuf::from(url),
        };
        let (remote, adv) = file::Local::connect(url, path).await?;
        Ok((Remote::File(remote), adv))
    }

    async fn send(
        self,
        command: &Command,
        adv: &Advertisement,
        pack: Vec<u8>,
        observer: &dyn Observer,
    ) -> Result<Report, PushError> {
        match self {
            Remote::File(remote) => remote.apply(command, pack).await,
            Remote::Http(remote) => remote.send(command, adv, pack, observer).await,
            Remote::Ssh(remote) => remote.send(command, adv, pack, observer).await,
        }
    }

    async fn close(self) {
        if let Remote::Ssh(remote) = self {
            remote.close().await;
        }
    }
}

/// Pushes `options.local_ref` of the repository containing `repo` to `options.remote_ref` at
/// `options.url`, without any git program.
///
/// Only the objects the remote lacks are sent: commits not reachable from the refs the remote
/// advertises, and the trees and blobs not in the trees of the commits at that boundary. A
/// remote ref that is not an ancestor of ours is refused before anything is sent
/// ([`PushError::NonFastForward`]), and so is a push whose commits add or change a file the
/// scan refuses, in any commit, even one deleted again later ([`PushError::Refused`]).
///
/// Transports: smart HTTP(S) and SSH talk to the server's `git-receive-pack`, which runs its
/// hooks. `file://` URLs and local paths are applied in-process instead of spawning
/// `git-receive-pack`: the pack is indexed into the remote's object database with gix-pack and
/// the ref updated with a compare-and-swap transaction. **Server-side hooks do not run for
/// local remotes**, and a remote branch checked out in a non-bare repository is refused.
///
/// # Errors
///
/// [`PushError::InvalidUrl`] for a URL it cannot push to; [`PushError::Local`] when the local
/// repository or ref cannot be read; [`PushError::Connect`] when the server is unreachable;
/// [`PushError::UnknownHostKey`], [`PushError::HostKeyChanged`] or
/// [`PushError::HostKeyRevoked`] when the SSH host key does not verify;
/// [`PushError::AuthFailed`] when the credentials are refused; [`PushError::Remote`] when the
/// server cannot serve the repository; [`PushError::NonFastForward`] or
/// [`PushError::Refused`] before anything is sent (see above); [`PushError::HookRejected`] or
/// [`PushError::Rejected`] when the server refuses the update; [`PushError::Protocol`] for
/// answers it does not understand; [`PushError::Cancelled`] when `cancel` fired.
#[tracing::instrument(
    name = "push",
    level = "info",
    skip_all,
    fields(url = %split_credentials(&options.url).0, remote_ref = %options.remote_ref)
)]
pub async fn push(
    repo: &Path,
    options: &PushOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<PushOutcome, PushError> {
    let started = Instant::now();
    let url = options.url.clone();
    let cancelled = || PushError::Cancelled { url: url.clone() };
    let repo_path = repo.to_owned();
    let local_ref = options.local_ref.clone();
    observer.action(format!("pushing {} to {}", options.remote_ref, options.url));
    // The local repository is opened and its tip read while the remote answers. A local failure
    // wins: it is returned as soon as it is known, and also when connecting failed as well.
    let local = tokio::task::spawn_blocking(move || local_tip(&repo_path, &local_ref));
    let connect = Remote::connect(options, observer, cancel);
    tokio::pin!(local, connect);
    let mut opened: Option<ObjectId> = None;
    let mut connected: Option<(Remote, Advertisement)> = None;
    while opened.is_none() || connected.is_none() {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                if let Some((remote, _)) = connected {
                    remote.close().await;
                }
                return Err(cancelled());
            }
            l = &mut local, if opened.is_none() => {
                match l.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
                    Ok(l) => opened = Some(l),
                    Err(e) => {
                        if let Some((remote, _)) = connected {
                            remote.close().await;
                        }
                        return Err(e);
                    }
                }
            }
            c = &mut connect, if connected.is_none() => match c {
                Ok(c) => connected = Some(c),
                Err(e) => {
                    if opened.is_none() {
                        (&mut local)
                            .await
                            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                    }
                    return Err(e);
                }
            },
        }
    }
    let (tip, (remote, adv)) = (
        opened.expect("loop ends when opened"),
        connected.expect("loop ends when connected"),
    );
    let old = adv.refs.get(&options.remote_ref).copied();
    let null = ObjectId::null(tip.kind());
    if old == Some(tip) {
        remote.close().await;
        observer.success(format!("{} is up to date", options.remote_ref), None);
        return Ok(PushOutcome {
            remote_ref: options.remote_ref.clone(),
            old: Some(tip.to_string()),
            new: tip.to_string(),
            objects: 0,
            pack_bytes: 0,
            up_to_date: true,
            remote_messages: Vec::new(),
        });
    }

    // Plan and pack on a blocking thread; the token interrupts gix-pack.
    let interrupt = Arc::new(AtomicBool::new(false));
    let plan = {
        let repo_path = repo.to_owned();
        let interrupt = interrupt.clone();
        let haves: Vec<ObjectId> = adv
            .refs
            .values()
            .chain(adv.extra_haves.iter())
            .copied()
            .collect();
        let url = url.clone();
        let remote_ref = options.remote_ref.clone();
        blocking(move || make_pack(&repo_path, tip, old, &haves, &interrupt, &url, &remote_ref))
    };
    let pack = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            interrupt.store(true, Ordering::Relaxed);
            remote.close().await;
            return Err(cancelled());
        }
        p = plan => p,
    };
    let pack = match pack {
        Ok(p) => p,
        Err(e) => {
            remote.close().await;
            return Err(e);
        }
    };
    observer.progress(
        "objects to send",
        pack.objects as u64,
        Some(pack.objects as u64),
    );
    let pack_bytes = pack.bytes.len() as u64;
    let command = Command {
        old: old.unwrap_or(null),
        new: tip,
        name: options.remote_ref.clone(),
    };
    // Once the request is out, the remote decides; cancelling here only stops our waiting.
    let report = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(cancelled()),
        r = remote.send(&command, &adv, pack.bytes, observer) => r?,
    };
    check_report(&report, &options.url, &options.remote_ref)?;
    observer.success(
        format!(
            "pushed {} to {} ({} objects, {} bytes)",
            tip.to_hex_with_len(12),
            options.remote_ref,
            pack.objects,
            pack_bytes
        ),
        Some(started.elapsed()),
    );
    Ok(PushOutcome {
        remote_ref: options.remote_ref.clone(),
        old: old.map(|o| o.to_string()),
        new: tip.to_string(),
        objects: pack.objects,
        pack_bytes,
        up_to_date: false,
        remote_messages: report.messages,
    })
}

/// What [`check_push_access`] found: the remote answered receive-pack's handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushAccess {
    /// The remote (without credentials).
    pub url: String,
    /// The remote ref asked about.
    pub remote_ref: String,
    /// Its commit there (hex); `None`: the push would create it.
    pub remote_commit: Option<String>,
    /// How many refs the remote advertised.
    pub refs: usize,
}

/// Checks that `options.url` answers git's receive-pack handshake with our credentials (and,
/// over SSH, a known host key), without updating anything: the ref advertisement is read and
/// the connection ended with an empty command list. Nothing is sent or written locally (an
/// unknown SSH host key is recorded only when [`SshOptions::accept_new_host_key`] says so).
///
/// # Errors
///
/// As [`push()`] before it sends anything: [`PushError::InvalidUrl`], [`PushError::Connect`],
/// the host key errors, [`PushError::AuthFailed`], [`PushError::Remote`],
/// [`PushError::Protocol`] and [`PushError::Cancelled`].
pub async fn check_push_access(
    options: &PushOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<PushAccess, PushError> {
    let (remote, adv) = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(PushError::Cancelled { url: options.url.clone() }),
        r = Remote::connect(options, observer, cancel) => r?,
    };
    remote.close().await;
    Ok(PushAccess {
        url: options.url.clone(),
        remote_ref: options.remote_ref.clone(),
        remote_commit: adv.refs.get(&options.remote_ref).map(ToString::to_string),
        refs: adv.refs.len(),
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PushError> + Send + 'static,
) -> Result<T, PushError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn local_tip(repo: &Path, local_ref: &str) -> Result<ObjectId, PushError> {
    let fail = |what: String| {
        let path = repo.to_owned();
        move |source| PushError::Local { path, what, source }
    };
    let repository = gix::discover(repo).map_err(fail("open the repository".into()))?;
    let id = if local_ref == "HEAD" {
        repository.head_id().map_err(fail("read HEAD".into()))?
    } else {
        repository
            .find_reference(local_ref)
            .and_then(|mut r| r.peel_to_id())
            .map_err(fail(format!("read {local_ref}")))?
    };
    Ok(id.detach())
}

fn make_pack(
    repo: &Path,
    tip: ObjectId,
    old: Option<ObjectId>,
    haves: &[ObjectId],
    interrupt: &AtomicBool,
    url: &str,
    remote_ref: &str,
) -> Result<pack::Pack, PushError> {
    let fail = |what: &str| {
        let path = repo.to_owned();
        let what = what.to_owned();
        move |source| PushError::Local { path, what, source }
    };
    let repository = gix::discover(repo).map_err(fail("open the repository"))?;
    if let Some(old) = old {
        let fast_forward = repository.has_object(old)
            && pack::is_ancestor(&repository, old, tip).map_err(fail("walk the history"))?;
        if !fast_forward {
            return Err(PushError::NonFastForward {
                url: url.into(),
                remote_ref: remote_ref.into(),
            });
        }
    }
    // Every file of every commit the pack carries, not only the final tree: a secret committed
    // and deleted again would still reach the remote.
    if let Some(found) = super::scan::history::first_violation(&repository, tip, haves)
        .map_err(fail("scan the commits to push"))?
    {
        return Err(PushError::Refused {
            url: url.into(),
            remote_ref: remote_ref.into(),
            commit: found.commit.to_string(),
            path: found.path,
            violation: Box::new(found.violation),
        });
    }
    let ids =
        pack::objects_to_send(&repository, tip, haves).map_err(fail("find the objects to send"))?;
    pack::write_pack(&repository, ids, interrupt).map_err(fail("build the pack"))
}

fn check_report(report: &Report, url: &str, remote_ref: &str) -> Result<(), PushError> {
    if let Some(Err(reason)) = &report.unpack {
        return Err(PushError::Rejected {
            url: url.into(),
            remote_ref: remote_ref.into(),
            reason: format!("the remote could not unpack our objects: {reason}"),
        });
    }
    let status = report
        .refs
        .iter()
        .find(|(name, _)| name == remote_ref)
        .map(|(_, s)| s.clone());
    match status {
        Some(Ok(())) => Ok(()),
        None => Err(PushError::Protocol {
            url: url.into(),
            detail: format!("no status for {remote_ref} in the server's report"),
        }),
        Some(Err(reason)) => {
            if reason.contains("non-fast-forward") || reason.contains("fetch first") {
                Err(PushError::NonFastForward {
                    url: url.into(),
                    remote_ref: remote_ref.into(),
                })
            } else if reason.contains("hook") {
                let message = report
                    .messages
                    .iter()
                    .map(|m| m.strip_prefix("remote: ").unwrap_or(m).trim())
                    .filter(|m| !m.is_empty() && !m.starts_with("error: failed to push"))
                    .collect::<Vec<_>>()
                    .join(" | ");
                Err(PushError::HookRejected {
                    url: url.into(),
                    remote_ref: remote_ref.into(),
                    reason,
                    message: if message.is_empty() {
                        "(the hook printed nothing)".into()
                    } else {
                        message
                    },
                })
            } else {
                Err(PushError::Rejected {
                    url: url.into(),
                    remote_ref: remote_ref.into(),
                    reason,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_http_urls_once_and_only_http_urls() {
        let (url, c) = split_credentials("https://me:t%40ken@git.example.com:8443/org/repo.git");
        assert_eq!(url, "https://git.example.com:8443/org/repo.git");
        let c = c.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "t@ken"));
        let (url, c) = split_credentials("http://ghp_TOKEN@127.0.0.1:9/r.git");
        assert_eq!(url, "http://127.0.0.1:9/r.git");
        assert_eq!(c.unwrap().password, "ghp_TOKEN");
        for kept in [
            "ssh://git@host/r.git",
            "git@host:r.git",
            "/srv/r.git",
            "https://host/a@b",
        ] {
            assert_eq!(split_credentials(kept), (kept.to_string(), None), "{kept}");
        }
        let o = PushOptions::new("https://u:secret@h/r.git", "main");
        assert_eq!(o.url, "https://h/r.git");
        assert!(!format!("{o:?}").contains("secret"));
    }
}
