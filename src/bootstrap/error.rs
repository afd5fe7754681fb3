//! Why a bootstrap, teardown or rotation stopped ([`Error`]), and why one of its steps failed
//! ([`StepError`], the module errors it wraps as their `#[source]`).

use std::path::PathBuf;
use std::time::Duration;

/// Why a bootstrap, teardown or rotation stopped. What was done is saved: a rerun resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A step of a bootstrap or teardown failed.
    #[error(
        "step {step} ({what}) failed; fix the cause and run the command again to resume{}",
        bundle_note(support_bundle.as_deref())
    )]
    Step {
        /// The step's id.
        step: &'static str,
        /// What it does.
        what: &'static str,
        /// The support bundle written for it (`clusters/<name>/.capi-manage/support-*.tar.gz`),
        /// when one could be written.
        support_bundle: Option<PathBuf>,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// A step of a rotation failed (nothing was pushed unless the step was the push).
    #[error("cannot {what}")]
    Rotate {
        /// The step's id.
        step: &'static str,
        /// What it does.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// Interrupted: the state is saved.
    #[error("interrupted during step {step}; run the command again to resume from it")]
    Cancelled {
        /// The step that was running.
        step: &'static str,
    },
    /// The repository or cluster folder is not usable, or another run holds its lock.
    #[error("cannot use the cluster's config")]
    Repo(#[source] crate::repo::Error),
    /// The preflight found problems; nothing was created.
    #[error(
        "the preflight found {} problem(s), nothing was created: {}",
        problems.len(),
        problems.join("; ")
    )]
    Preflight {
        /// One line each: the check, what is wrong and the fix.
        problems: Vec<String>,
        /// Every check, problems or not.
        preflight: super::Preflight,
    },
    /// The state file cannot be read or written.
    #[error("state file {}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file does not parse.
    #[error(
        "{}: not a capi-manage state file; move it aside to start over (each step checks what exists before it acts) or restore it", path.display()
    )]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The state file was written by a newer capi-manage.
    #[error(
        "{}: state format {found} was written by a newer capi-manage (this one reads up to {supported}); resume with that version", path.display()
    )]
    StateFormat {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The kubeconfig is gone after the cluster moved off kind.
    #[error(
        "{} is missing, and the cluster already moved off the kind cluster it was read from: restore the file (the cluster's <name>-kubeconfig Secret holds it)", path.display()
    )]
    KubeconfigGone {
        /// The expected file.
        path: PathBuf,
    },
    /// Teardown needs the cluster's kubeconfig.
    #[error(
        "{} is missing: teardown needs the self-managed cluster's kubeconfig (written by bootstrap)", path.display()
    )]
    NoKubeconfig {
        /// The expected file.
        path: PathBuf,
    },
}

fn bundle_note(bundle: Option<&std::path::Path>) -> String {
    bundle
        .map(|b| format!(" (support bundle: {})", b.display()))
        .unwrap_or_default()
}

impl Error {
    /// The support bundle written for a failed step.
    pub fn support_bundle(&self) -> Option<&std::path::Path> {
        match self {
            Error::Step { support_bundle, .. } => support_bundle.as_deref(),
            _ => None,
        }
    }

    /// The preflight's checks, when it stopped the run.
    pub fn preflight(&self) -> Option<&super::Preflight> {
        match self {
            Error::Preflight { preflight, .. } => Some(preflight),
            _ => None,
        }
    }

    /// Whether the error is an interruption.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. })
    }

    /// The step that failed and why, for [`Error::Step`] and [`Error::Rotate`].
    pub fn step_error(&self) -> Option<(&'static str, &StepError)> {
        match self {
            Error::Step { step, source, .. } | Error::Rotate { step, source, .. } => {
                Some((step, &**source))
            }
            _ => None,
        }
    }
}

/// Which cluster a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// The ephemeral kind cluster.
    Kind,
    /// The self-managed cluster (`clusters/<name>/kubeconfig`).
    Cluster,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Kind => "kind cluster",
            Side::Cluster => "self-managed cluster",
        })
    }
}

/// Why a step failed: the module's error as the source, with what the step was doing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The cluster's config (folder, credentials, values, rendering).
    #[error("cannot use the cluster's config")]
    Repo(#[source] crate::repo::Error),
    /// A file the step reads or writes.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A manifest file does not parse.
    #[error("cannot read the objects of {}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: crate::manifest::Error,
    },
    /// The credentials file does not hold exactly one Secret.
    #[error("{}: holds {found} documents; expected exactly one Secret", path.display())]
    CredentialsCount {
        /// The file.
        path: PathBuf,
        /// How many documents it holds.
        found: usize,
    },
    /// Creating the kind cluster.
    #[error("cannot create kind cluster {name}")]
    KindCreate {
        /// The kind cluster's name.
        name: String,
        /// Why.
        #[source]
        source: Box<crate::kind::CreateError>,
    },
    /// The image layout of `--images` is not usable.
    #[error("cannot use the image layout {}", dir.display())]
    ImageLayout {
        /// The layout's folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::images::Error>,
    },
    /// Loading the image layout into the kind node.
    #[error("cannot load the images of {} into kind cluster {name}", dir.display())]
    KindLoad {
        /// The kind cluster's name.
        name: String,
        /// The layout's folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::kind::LoadError>,
    },
    /// Deleting the kind cluster.
    #[error("cannot delete kind cluster {name}")]
    KindDelete {
        /// The kind cluster's name.
        name: String,
        /// Why.
        #[source]
        source: crate::kind::DeleteError,
    },
    /// Connecting to a cluster through a kubeconfig.
    #[error("cannot connect to the {side} through {}", kubeconfig.display())]
    Connect {
        /// The cluster.
        side: Side,
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// A request the step made itself.
    #[error("{what} on the {side}")]
    Request {
        /// The cluster.
        side: Side,
        /// What was requested, e.g. `reading Namespace kube-system`.
        what: String,
        /// The server's answer.
        #[source]
        source: crate::kube::RequestError,
    },
    /// Applying, discovering or waiting on a cluster.
    #[error("on the {side}")]
    Kube {
        /// The cluster.
        side: Side,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// The kubeconfig now reaches another cluster than the one the state file recorded.
    #[error(
        "{}: reaches a different cluster than the one this {operation} ran on (kube-system uid {found}, recorded {recorded}); restore the right kubeconfig, or move {} aside to start over", kubeconfig.display(), state.display()
    )]
    OtherCluster {
        /// `bootstrap` or `teardown`.
        operation: &'static str,
        /// The kubeconfig used.
        kubeconfig: PathBuf,
        /// The state file.
        state: PathBuf,
        /// The uid found.
        found: String,
        /// The uid recorded.
        recorded: String,
    },
    /// The vendored components (`vendor-manifests/`).
    #[error("cannot load the vendored components")]
    Components(#[source] Box<crate::components::Error>),
    /// Installing the vendored components with their health gates.
    #[error("installing the components on the {side}")]
    Install {
        /// The cluster.
        side: Side,
        /// Why.
        #[source]
        source: Box<crate::components::Error>,
    },
    /// Applying Flux's objects, suspending or waiting for Flux.
    #[error("on the {side}")]
    Flux {
        /// The cluster.
        side: Side,
        /// Why.
        #[source]
        source: crate::flux::Error,
    },
    /// Cluster API: the move, its plan, the kubeconfig Secret, deleting the Cluster.
    #[error("Cluster API objects")]
    Capi(#[source] Box<crate::capi::Error>),
    /// The cluster is not ready.
    #[error("Cluster {namespace}/{name} on the {side}")]
    Readiness {
        /// The management cluster.
        side: Side,
        /// The Cluster's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is not ready.
        #[source]
        source: Box<crate::capi::readiness::ReadinessError>,
    },
    /// The new cluster still does not serve kinds that the move carries.
    #[error(
        "the {side} does not serve {} after {}s: the controllers that register them (the add-on provider's HelmRelease) did not start there", .missing.join(", "), .timeout.as_secs()
    )]
    LacksKinds {
        /// The cluster awaited.
        side: Side,
        /// The kinds, `Kind (group/version)`.
        missing: Vec<String>,
        /// How long they were awaited.
        timeout: Duration,
    },
    /// No sealed-secrets certificate: the kubeconfig it is fetched through is missing.
    #[error(
        "{}: missing; the certificate is fetched through the cluster's kubeconfig", path.display()
    )]
    NoKubeconfig {
        /// The kubeconfig expected.
        path: PathBuf,
    },
    /// Getting the sealing certificate (read, downloaded or fetched from the controller).
    #[error("cannot get the sealing certificate of {source_of}")]
    Certificate {
        /// Where it was to come from.
        source_of: Box<crate::seal::CertSource>,
        /// Why.
        #[source]
        source: Box<crate::seal::Error>,
    },
    /// Sealing.
    #[error("cannot seal {}", path.display())]
    Seal {
        /// The credentials file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::seal::Error>,
    },
    /// The repository has no remote to push to.
    #[error("{}: the repository has no remote `origin` to push to; add one (`git remote add origin URL`)", root.display())]
    NoRemote {
        /// The repository.
        root: PathBuf,
    },
    /// Reading the repository (branch, remote).
    #[error("cannot read the git repository")]
    GitOpen(#[source] crate::git::OpenError),
    /// The URL Flux clones.
    #[error("cannot derive the URL Flux clones")]
    GitUrl(#[source] crate::git::UrlError),
    /// Switching to a new branch.
    #[error("cannot switch to the new branch")]
    Switch(#[source] crate::git::SwitchError),
    /// Committing.
    #[error("cannot commit")]
    Commit(#[source] crate::git::CommitError),
    /// Pushing.
    #[error("cannot push to {url}")]
    Push {
        /// The remote (without credentials).
        url: String,
        /// Why.
        #[source]
        source: Box<crate::git::PushError>,
    },
    /// Flux's deploy key cannot be generated.
    #[error("cannot generate Flux's deploy key")]
    DeployKey(#[source] crate::git::KeyError),
    /// Flux's deploy key on disk is not a public key.
    #[error("{}: not an OpenSSH public key", path.display())]
    DeployKeyFile {
        /// The public key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ssh_key::Error,
    },
    /// The confirmation of the deploy key failed to run.
    #[error("the deploy key confirmation did not answer")]
    Confirm(#[source] tokio::task::JoinError),
    /// The user said the deploy key was not added.
    #[error(
        "the deploy key ({fingerprint}) was not confirmed as added to {url}; add it (public key in {}) and run the command again", path.display()
    )]
    DeployKeyNotAdded {
        /// The repository.
        url: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// The public key file.
        path: PathBuf,
    },
    /// An SSH URL without a host.
    #[error("{url}: no host")]
    NoHost {
        /// The URL.
        url: String,
    },
    /// Scanning or verifying the git host's keys.
    #[error("cannot get the git host's keys")]
    HostKeys(#[source] crate::git::HostKeyScanError),
    /// Cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl StepError {
    /// [`StepError::Capi`] of `e`.
    pub(super) fn capi(e: crate::capi::Error) -> StepError {
        StepError::Capi(Box::new(e))
    }

    /// [`StepError::Kube`] of `e` on `side`.
    pub(super) fn kube(side: Side) -> impl FnOnce(crate::kube::Error) -> StepError {
        move |e| StepError::Kube {
            side,
            source: Box::new(e),
        }
    }
}
