//! Git without the git CLI: repository facts, commit, push, deploy keys and host keys.
//!
//! Everything runs in-process on gitoxide's plumbing and never spawns a program:
//! - [`open`] reads the config repository's root, current branch and `origin` URL, and
//!   [`flux_url`] turns scp-like URLs into the `ssh://` form Flux needs.
//! - [`commit()`] commits exactly the given files on the current branch after [`scan_file`]
//!   refuses none of them (plaintext Secrets, credentials files, kubeconfigs, private keys, ...).
//! - [`push()`] speaks git's receive-pack protocol (v1) itself: it reads the remote's refs, scans
//!   every file each unpushed commit adds or changes (refusing the push, naming commit and path),
//!   sends a pack of only the objects the remote lacks (built with gix-pack) and the ref update,
//!   and maps the report to [`PushError`]s; server text is escaped before it is shown. Transports: `file://` and local paths (applied
//!   in-process, see [`push()`]), smart HTTP(S) (reqwest + rustls) and SSH (russh).
//! - [`generate_deploy_key`] and [`scan_host_keys`] prepare what Flux's GitRepository needs.
//!
//! Each operation owns its `Options`, `Error` and outcome types; long ones take an
//! [`Observer`](crate::observe::Observer) and a cancellation token.

mod branch;
mod commit;
mod keys;
mod push;
mod repo;
mod scan;

pub use branch::{SwitchError, SwitchOutcome, switch_new_branch};
pub use commit::{Author, CommitError, CommitOptions, CommitOutcome, bootstrap_message, commit};
pub use keys::{
    DeployKey, HostKeyScanError, HostKeyScanOptions, HostKeys, KeyError, generate_deploy_key,
    known_hosts_host, scan_host_keys,
};
pub use push::{
    HttpCredentials, PushAccess, PushError, PushOptions, PushOutcome, SshOptions,
    check_push_access, push, split_credentials,
};
pub use repo::{OpenError, RepoFacts, UrlError, flux_url, open, remote_url};
pub use scan::{Violation, scan_file};

/// The error type of gitoxide's plumbing, carried as the `#[source]` of our errors.
pub type GixError = gix::Error;
