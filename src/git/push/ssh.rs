//! SSH with russh: host key checked against known_hosts, keys from `~/.ssh` or the agent, then
//! `git-receive-pack '<path>'` on an exec channel.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};

use super::known_hosts::{self, Verdict};
use super::protocol::{self, Advertisement, Command, Line, LineBuffer, Report};
use super::{PushError, SshOptions};
use crate::observe::{Observer, ObserverExt};
use tokio_util::sync::CancellationToken;

/// Where an SSH URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    /// The path as given to `git-receive-pack`.
    pub path: String,
}

impl Target {
    /// `None` if `url` is not an SSH URL at all.
    pub(crate) fn parse(url: &str) -> Option<Result<Target, String>> {
        if let Some(rest) = ["ssh://", "git+ssh://", "ssh+git://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
        {
            return Some(parse_ssh_url(rest));
        }
        if url.contains("://") {
            return None;
        }
        let (host_part, path) = url.split_once(':')?;
        if host_part.is_empty() || host_part.contains('/') || path.is_empty() {
            return None;
        }
        let (user, host) = split_user(host_part);
        Some(Ok(Target {
            user,
            host: host.trim_matches(['[', ']']).to_owned(),
            port: 22,
            path: path.to_owned(),
        }))
    }
}

fn split_user(s: &str) -> (Option<String>, &str) {
    match s.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_owned()), host),
        None => (None, s),
    }
}

fn parse_ssh_url(rest: &str) -> Result<Target, String> {
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| "no repository path".to_owned())?;
    let (user, host_port) = split_user(authority);
    let (host, port) = if let Some(h) = host_port.strip_prefix('[') {
        let (host, after) = h.split_once(']').ok_or("unclosed [ in host")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let port = match port {
        None | Some("") => 22,
        Some(p) => p.parse().map_err(|_| format!("invalid port {p:?}"))?,
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    // `ssh://host/~user/repo` means `~user/repo`, as git does.
    let path = if path.starts_with('~') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(Target {
        user,
        host: host.to_owned(),
        port,
        path,
    })
}

/// The known_hosts host field: `host` for port 22, `[host]:port` otherwise.
pub fn known_hosts_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// What the host-key check found, for the error after the handshake aborts.
#[derive(Debug)]
enum HostKeyProblem {
    Unknown { fingerprint: String },
    Changed { fingerprint: String, line: usize },
    Revoked { fingerprint: String, line: usize },
    Unreadable { error: String },
}

struct Verifier {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    problem: Arc<Mutex<Option<HostKeyProblem>>>,
    learned: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.problem.lock().unwrap() = Some(HostKeyProblem::Unreadable {
                error: "the server presented a certificate; only plain host keys are supported"
                    .into(),
            });
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let entries = match read_known_hosts(&self.known_hosts) {
            Ok(entries) => entries,
            Err(error) => {
                *self.problem.lock().unwrap() = Some(HostKeyProblem::Unreadable { error });
                return Ok(false);
            }
        };
        let host = known_hosts_host(&self.host, self.port);
        let problem = match known_hosts::check(&entries, &host, key) {
            Verdict::Known => return Ok(true),
            Verdict::New if self.accept_new => {
                match known_hosts::learn(&self.known_hosts, &host, key) {
                    Ok(()) => {
                        *self.learned.lock().unwrap() = Some(fingerprint);
                        return Ok(true);
                    }
                    Err(e) => HostKeyProblem::Unreadable {
                        error: format!(
                            "cannot record the host key in {}: {e}",
                            self.known_hosts.display()
                        ),
                    },
                }
            }
            Verdict::New => HostKeyProblem::Unknown { fingerprint },
            Verdict::Changed { line } => HostKeyProblem::Changed { fingerprint, line },
            Verdict::Revoked { line } => HostKeyProblem::Revoked { fingerprint, line },
        };
        *self.problem.lock().unwrap() = Some(problem);
        Ok(false)
    }
}

/// The known_hosts entries; a missing file has none.
fn read_known_hosts(path: &Path) -> Result<Vec<known_hosts::Entry>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(known_hosts::parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub(crate) struct Ssh {
    session: Handle<Verifier>,
    channel: russh::Channel<client::Msg>,
    url: String,
    /// Bytes received after the advertisement (normally none).
    lines: LineBuffer,
    stderr: Vec<u8>,
    /// Whether our request went out (else `close` ends the session with a flush).
    sent: bool,
}

/// The client configuration we use; `key_algorithms` restricts host key algorithms (scan).
pub(crate) fn config(key_algorithms: Option<Vec<russh::keys::Algorithm>>) -> Arc<client::Config> {
    config_with(key_algorithms, Duration::from_secs(120))
}

/// [`config`] with `inactivity` as the longest silence of the server.
fn config_with(
    key_algorithms: Option<Vec<russh::keys::Algorithm>>,
    inactivity: Duration,
) -> Arc<client::Config> {
    let mut config = client::Config {
        inactivity_timeout: Some(inactivity),
        ..Default::default()
    };
    if let Some(algorithms) = key_algorithms {
        config.preferred.key = algorithms.into();
    }
    Arc::new(config)
}

impl Ssh {
    pub(crate) async fn connect(
        url: &str,
        target: Target,
        options: &SshOptions,
        timeouts: super::http::Timeouts,
        observer: &dyn Observer,
        _cancel: &CancellationToken,
    ) -> Result<(Ssh, Advertisement), PushError> {
        let known_hosts = options
            .known_hosts
            .clone()
            .or_else(|| home().map(|h| h.join(".ssh/known_hosts")))
            .unwrap_or_else(|| PathBuf::from(".ssh/known_hosts"));
        let problem = Arc::new(Mutex::new(None));
        let learned = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            host: target.host.clone(),
            port: target.port,
            known_hosts: known_hosts.clone(),
            accept_new: options.accept_new_host_key,
            problem: problem.clone(),
            learned: learned.clone(),
        };
        let host_field = known_hosts_host(&target.host, target.port);
        // Offer the algorithms known_hosts has keys of first, as OpenSSH does.
        let algorithms = read_known_hosts(&known_hosts)
            .map(|entries| known_hosts::preferred_algorithms(&entries, &host_field))
            .ok();
        let connected = tokio::time::timeout(
            timeouts.connect,
            client::connect(
                config_with(algorithms, timeouts.read),
                (target.host.as_str(), target.port),
                verifier,
            ),
        )
        .await;
        let mut session = match connected {
            Ok(Ok(session)) => session,
            other => {
                if let Some(problem) = problem.lock().unwrap().take() {
                    return Err(match problem {
                        HostKeyProblem::Unknown { fingerprint } => PushError::UnknownHostKey {
                            host: host_field,
                            fingerprint,
                            known_hosts,
                        },
                        HostKeyProblem::Changed { fingerprint, line } => {
                            PushError::HostKeyChanged {
                                host: host_field,
                                fingerprint,
                                known_hosts,
                                line,
                            }
                        }
                        HostKeyProblem::Revoked { fingerprint, line } => {
                            PushError::HostKeyRevoked {
                                host: host_field,
                                fingerprint,
                                known_hosts,
                                line,
                            }
                        }
                        HostKeyProblem::Unreadable { error } => PushError::Connect {
                            url: url.into(),
                            source: error.into(),
                        },
                    });
                }
                return Err(PushError::Connect {
                    url: url.into(),
                    source: match other {
                        Ok(Err(e)) => Box::new(e),
                        _ => "no SSH handshake within 30s".into(),
                    },
                });
            }
        };
        if let Some(fingerprint) = learned.lock().unwrap().take() {
            observer.warning(format!(
                "added host key {fingerprint} of {host_field} to {}",
                known_hosts.display()
            ));
        }
        let user = target
            .user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "git".into());
        authenticate(&mut session, &user, options, url, observer).await?;

        let fail = |e: russh::Error| PushError::Connect {
            url: url.into(),
            source: Box::new(e),
        };
        let channel = session.channel_open_session().await.map_err(fail)?;
        let command = format!("git-receive-pack {}", shell_quote(&target.path));
        channel.exec(true, command).await.map_err(fail)?;
        let mut ssh = Ssh {
            session,
            channel,
            url: url.into(),
            lines: LineBuffer::default(),
            stderr: Vec::new(),
            sent: false,
        };
        let mut data = Vec::new();
        loop {
            match ssh.next_line().await? {
                Some(Line::Data(d)) => data.push(d),
                Some(_) => break,
                None if data.is_empty() => return Err(ssh.remote_failure("closed the connection")),
                None => break,
            }
        }
        let adv = protocol::parse_advertisement(&data).map_err(|detail| PushError::Protocol {
            url: url.into(),
            detail,
        })?;
        Ok((ssh, adv))
    }

    fn remote_failure(&self, what: &str) -> PushError {
        let stderr = stderr_message(&self.stderr);
        PushError::Remote {
            url: self.url.clone(),
            message: if stderr.is_empty() {
                format!("git-receive-pack {what}")
            } else {
                stderr
            },
        }
    }

    /// Reads until a full pkt-line is buffered; `None` at end of stream.
    async fn next_line(&mut self) -> Result<Option<Line>, PushError> {
        loop {
            if let Some(line) = self
                .lines
                .next_line()
                .map_err(|detail| PushError::Protocol {
                    url: self.url.clone(),
                    detail,
                })?
            {
                return Ok(Some(line));
            }
            if !self.read_more().await? {
                return Ok(None);
            }
        }
    }

    /// Receives the next chunk of stdout into the line buffer; false at end of stream.
    async fn read_more(&mut self) -> Result<bool, PushError> {
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    self.lines.extend(&data);
                    return Ok(true);
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(false),
                Some(ChannelMsg::ExitStatus { exit_status }) if exit_status != 0 => {
                    return Err(self.remote_failure(&format!("exited with {exit_status}")));
                }
                Some(_) => {}
            }
        }
    }

    pub(crate) async fn send(
        mut self,
        command: &Command,
        adv: &Advertisement,
        pack: Vec<u8>,
        observer: &dyn Observer,
    ) -> Result<Report, PushError> {
        let (request, sideband) = protocol::request(command, adv, pack);
        let fail = |e: russh::Error, url: &str| PushError::Connect {
            url: url.into(),
            source: Box::new(e),
        };
        self.channel
            .data(&request[..])
            .await
            .map_err(|e| fail(e, &self.url))?;
        self.channel.eof().await.map_err(|e| fail(e, &self.url))?;
        self.sent = true;
        // Collect the whole response: it is small (report and hook output).
        let mut response = Vec::new();
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => response.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        let report = protocol::parse_response(&response, sideband, |m| {
            observer.waiting("remote", Some(m.to_owned()))
        });
        let url = self.url.clone();
        let stderr_failure = self.remote_failure("ended without a report");
        self.close().await;
        match report {
            Ok(report) if report.unpack.is_none() && report.refs.is_empty() => Err(stderr_failure),
            Ok(report) => Ok(report),
            Err(detail) => Err(PushError::Protocol { url, detail }),
        }
    }

    pub(crate) async fn close(self) {
        if !self.sent {
            // No commands: a flush tells receive-pack to end without updating anything.
            let _ = self.channel.data(&b"0000"[..]).await;
            let _ = self.channel.eof().await;
        }
        let _ = self
            .session
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The server's stderr as one line, safe for a terminal.
fn stderr_message(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|l| protocol::sanitize(l.trim()))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn default_identities() -> Vec<PathBuf> {
    let Some(home) = home() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .collect()
}

async fn authenticate(
    session: &mut Handle<Verifier>,
    user: &str,
    options: &SshOptions,
    url: &str,
    observer: &dyn Observer,
) -> Result<(), PushError> {
    let fail = |e: russh::Error| PushError::Connect {
        url: url.into(),
        source: Box::new(e),
    };
    let mut tried = Vec::new();
    let rsa_hash = session
        .best_supported_rsa_hash()
        .await
        .map_err(fail)?
        .flatten();

    if !options.no_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(mut agent) => {
                let identities = agent.request_identities().await.unwrap_or_default();
                for identity in identities {
                    let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = identity
                    else {
                        continue;
                    };
                    let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                    tried.push(format!("agent key {comment}"));
                    match session
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await
                    {
                        Ok(result) if result.success() => return Ok(()),
                        Ok(_) => {}
                        Err(e) => observer.warning(format!("ssh-agent signing failed: {e}")),
                    }
                }
            }
            Err(e) => observer.warning(format!("cannot use ssh-agent: {e}")),
        }
    }

    let identities = if options.identity_files.is_empty() {
        default_identities()
    } else {
        options.identity_files.clone()
    };
    for path in identities {
        if !path.exists() {
            continue;
        }
        let key = match load_key(&path) {
            Ok(key) => key,
            Err(reason) => {
                observer.warning(format!("skipping SSH key {}: {reason}", path.display()));
                continue;
            }
        };
        tried.push(path.display().to_string());
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        let result = session
            .authenticate_publickey(user, key)
            .await
            .map_err(fail)?;
        if result.success() {
            return Ok(());
        }
    }
    Err(PushError::AuthFailed {
        url: url.into(),
        detail: if tried.is_empty() {
            "no SSH key found (looked in ~/.ssh for id_ed25519, id_ecdsa, id_rsa, and the ssh-agent)".into()
        } else {
            format!("user {user:?} rejected with {}", tried.join(", "))
        },
    })
}

fn load_key(path: &Path) -> Result<russh::keys::PrivateKey, String> {
    russh::keys::load_secret_key(path, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            "encrypted; load it into ssh-agent (`ssh-add`) instead".to_owned()
        }
        e => e.to_string(),
    })
}

/// The host's public key as presented in a handshake restricted to `algorithm`, `None` if the
/// server does not offer that algorithm.
pub(crate) async fn fetch_host_key(
    host: &str,
    port: u16,
    algorithm: russh::keys::Algorithm,
) -> Result<Option<PublicKey>, russh::Error> {
    struct Recorder(Arc<Mutex<Option<PublicKey>>>);
    impl client::Handler for Recorder {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            key: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            if let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key {
                *self.0.lock().unwrap() = Some(key.clone());
            }
            // Abort: we only wanted the key.
            Ok(false)
        }
    }
    let slot = Arc::new(Mutex::new(None));
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        client::connect(
            config(Some(vec![algorithm])),
            (host, port),
            Recorder(slot.clone()),
        ),
    )
    .await;
    let key = slot.lock().unwrap().take();
    match (key, result) {
        (Some(key), _) => Ok(Some(key)),
        (None, Ok(Err(russh::Error::NoCommonAlgo { .. }))) => Ok(None),
        (None, Ok(Err(e))) => Err(e),
        (None, Ok(Ok(_))) => Ok(None),
        (None, Err(_)) => Err(russh::Error::ConnectionTimeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_and_scp_like_urls() {
        let t = |user: Option<&str>, host: &str, port, path: &str| Target {
            user: user.map(Into::into),
            host: host.into(),
            port,
            path: path.into(),
        };
        assert_eq!(
            Target::parse("git@github.com:org/repo.git"),
            Some(Ok(t(Some("git"), "github.com", 22, "org/repo.git")))
        );
        assert_eq!(
            Target::parse("ssh://me@127.0.0.1:2222/srv/r.git"),
            Some(Ok(t(Some("me"), "127.0.0.1", 2222, "/srv/r.git")))
        );
        assert_eq!(
            Target::parse("ssh://[::1]:22/~/r.git"),
            Some(Ok(t(None, "::1", 22, "~/r.git")))
        );
        assert_eq!(Target::parse("/srv/repo.git"), None);
        assert_eq!(Target::parse("https://h/r"), None);
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(known_hosts_host("h", 22), "h");
        assert_eq!(known_hosts_host("h", 2222), "[h]:2222");
    }

    #[test]
    fn stderr_is_one_escaped_line() {
        assert_eq!(
            stderr_message(b"fatal: '/x' does not appear\x1b[8m hidden\n\n\x1b]2;title\x07\n"),
            "fatal: '/x' does not appear\\x1b[8m hidden | \\x1b]2;title\\x07"
        );
    }
}
