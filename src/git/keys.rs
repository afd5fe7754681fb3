//! Flux's side of SSH: a deploy key pair, and the git host's keys for its known_hosts.

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use ssh_key::rand_core::UnwrapErr;
use zeroize::Zeroizing;

use crate::observe::{Observer, ObserverExt};
use tokio_util::sync::CancellationToken;

pub use super::push::ssh::known_hosts_host;

/// A generated SSH key pair for a repository deploy key.
#[derive(Clone)]
#[non_exhaustive]
pub struct DeployKey {
    /// The private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted.
    pub private_openssh: Zeroizing<String>,
    /// The public key as an authorized_keys line: `ssh-ed25519 AAAA... comment`.
    pub public_line: String,
    /// The public key's SHA256 fingerprint, e.g. `SHA256:...`.
    pub fingerprint: String,
}

impl std::fmt::Debug for DeployKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployKey")
            .field("public_line", &self.public_line)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why key generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The OS random number generator or the encoder failed.
    #[error("cannot generate an ed25519 deploy key")]
    Generate {
        /// The cause.
        #[source]
        source: ssh_key::Error,
    },
}

/// Generates an ed25519 deploy key; `comment` ends the public line (e.g. `flux-prod`).
pub fn generate_deploy_key(comment: &str) -> Result<DeployKey, KeyError> {
    let fail = |source| KeyError::Generate { source };
    let mut rng = UnwrapErr(ssh_key::getrandom::SysRng);
    let mut key =
        ssh_key::PrivateKey::random(&mut rng, ssh_key::Algorithm::Ed25519).map_err(fail)?;
    key.set_comment(comment);
    let private_openssh = key.to_openssh(ssh_key::LineEnding::LF).map_err(fail)?;
    let public_line = key.public_key().to_openssh().map_err(fail)?;
    Ok(DeployKey {
        private_openssh: Zeroizing::new(private_openssh.to_string()),
        public_line,
        fingerprint: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    })
}

/// Where [`scan_host_keys`] connects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostKeyScanOptions {
    /// The git host.
    pub host: String,
    /// Its SSH port.
    pub port: u16,
}

impl HostKeyScanOptions {
    /// Scan `host` on `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostKeyScanOptions {
            host: host.into(),
            port,
        }
    }
}

/// The host keys found, one known_hosts line each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostKeys {
    /// `host keytype base64` lines (`[host]:port` when the port is not 22), one per key.
    pub lines: Vec<String>,
    /// The SHA256 fingerprints, in the same order.
    pub fingerprints: Vec<String>,
}

impl HostKeys {
    /// The lines joined as a known_hosts file (each ends with a newline).
    pub fn known_hosts(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Only the scanned keys that `known_hosts` (the file that verified the push) lists for
    /// `host` on `port`: a scan is unauthenticated, so a key is handed on only with that file's
    /// word for it. None left is an error showing the offered fingerprints.
    pub fn verified_by(
        &self,
        known_hosts: &std::path::Path,
        host: &str,
        port: u16,
    ) -> Result<HostKeys, HostKeyScanError> {
        let host_field = known_hosts_host(host, port);
        let text = match std::fs::read_to_string(known_hosts) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(HostKeyScanError::KnownHosts {
                    known_hosts: known_hosts.to_path_buf(),
                    source,
                });
            }
        };
        let entries = super::push::known_hosts::parse(&text);
        let mut kept = HostKeys {
            lines: Vec::new(),
            fingerprints: Vec::new(),
        };
        for (line, fingerprint) in self.lines.iter().zip(&self.fingerprints) {
            let key = line
                .split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let Ok(key) = russh::keys::PublicKey::from_openssh(&key) else {
                continue;
            };
            if super::push::known_hosts::check(&entries, &host_field, &key)
                == super::push::known_hosts::Verdict::Known
            {
                kept.lines.push(line.clone());
                kept.fingerprints.push(fingerprint.clone());
            }
        }
        if kept.lines.is_empty() {
            return Err(HostKeyScanError::NoneKnown {
                host: host_field,
                known_hosts: known_hosts.to_path_buf(),
                fingerprints: self.fingerprints.clone(),
            });
        }
        Ok(kept)
    }
}

/// Why the host key scan failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyScanError {
    /// The SSH server cannot be reached or the handshake failed.
    #[error("cannot scan the SSH host keys of {host}")]
    Connect {
        /// `host` or `[host]:port`.
        host: String,
        /// The cause.
        #[source]
        source: russh::Error,
    },
    /// The server offered no host key algorithm we know.
    #[error("{host} offered no ed25519, ECDSA or RSA host key")]
    NoKeys {
        /// `host` or `[host]:port`.
        host: String,
    },
    /// None of the scanned keys is in the known_hosts file that vouches for the host.
    #[error(
        "none of the host keys {host} offers ({}) is listed for it in {}: add the host's key there (checked against the fingerprints its operator publishes), or let a first push to it record the key (accept-new)", fingerprints.join(", "), known_hosts.display()
    )]
    NoneKnown {
        /// `host` or `[host]:port`.
        host: String,
        /// The known_hosts file read.
        known_hosts: std::path::PathBuf,
        /// SHA256 fingerprints of the keys the host offered.
        fingerprints: Vec<String>,
    },
    /// The known_hosts file cannot be read.
    #[error("cannot read {}", known_hosts.display())]
    KnownHosts {
        /// The file.
        known_hosts: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The cancellation token fired.
    #[error("host key scan of {host} cancelled")]
    Cancelled {
        /// `host` or `[host]:port`.
        host: String,
    },
}

/// Scans every host key the server offers (ed25519, ECDSA P-256/384/521, RSA), one handshake
/// per algorithm like `ssh-keyscan`, so Flux's known_hosts matches whichever key its SSH client
/// negotiates. Keys are returned as known_hosts lines, never trusted here: the caller shows the
/// fingerprints.
pub async fn scan_host_keys(
    options: &HostKeyScanOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<HostKeys, HostKeyScanError> {
    let host_field = known_hosts_host(&options.host, options.port);
    observer.action(format!("scanning SSH host keys of {host_field}"));
    let algorithms = [
        Algorithm::Ed25519,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        },
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
    ];
    let mut keys = HostKeys {
        lines: Vec::new(),
        fingerprints: Vec::new(),
    };
    for algorithm in algorithms {
        let fetched = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(HostKeyScanError::Cancelled { host: host_field }),
            r = super::push::ssh::fetch_host_key(&options.host, options.port, algorithm) => r,
        };
        let key = fetched.map_err(|source| HostKeyScanError::Connect {
            host: host_field.clone(),
            source,
        })?;
        let Some(key) = key else { continue };
        let Ok(openssh) = key.to_openssh() else {
            continue;
        };
        // The key blob alone: the comment (if any) is the server's business.
        let mut parts = openssh.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            continue;
        };
        let line = format!("{host_field} {kind} {blob}");
        if !keys.lines.contains(&line) {
            keys.fingerprints
                .push(key.fingerprint(HashAlg::Sha256).to_string());
            keys.lines.push(line);
        }
    }
    if keys.lines.is_empty() {
        return Err(HostKeyScanError::NoKeys { host: host_field });
    }
    observer.success(
        format!("{} host keys of {host_field}", keys.lines.len()),
        None,
    );
    Ok(keys)
}
