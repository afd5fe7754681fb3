//! `bootstrap` and `teardown` as plans of steps.
//!
//! Each step has a stable name, knows how to run and re-runs safely; the names of finished steps
//! are saved after each step in `clusters/<name>/.capi-manage/` (gitignored), so a rerun after
//! Ctrl-C, a crash or a failed step resumes at the first unfinished step. Steps that need a
//! cluster reconnect on their own (the kind cluster's kubeconfig is kept in the same folder).

mod components;
mod run;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use run::{bootstrap, teardown};
pub use state::State;

use crate::git::{Author, HttpCredentials, SshOptions};
use crate::kind::CreateOptions;

/// The namespace the cluster's Cluster API objects live in.
pub const DEFAULT_NAMESPACE: &str = "capi-self";

/// A step of the bootstrap, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Create (or reuse) the ephemeral kind cluster.
    KindCluster,
    /// Install the vendored components (Flux, cert-manager, Cluster API, ORC, CAPO and
    /// sealed-secrets) on it.
    KindComponents,
    /// Apply the credentials and the rendered `clusters/<name>` to it.
    ApplyCluster,
    /// Wait until the cluster is ready (Cluster, MachineDeployments, releases).
    ClusterReady,
    /// Write `clusters/<name>/kubeconfig` (0600).
    Kubeconfig,
    /// Install the components on the new cluster.
    TargetComponents,
    /// Move the Cluster API objects to the new cluster.
    Move,
    /// Wait until the cluster is ready on its new management cluster.
    TargetReady,
    /// Seal the credentials with the new cluster's sealed-secrets certificate.
    Seal,
    /// Commit the sealed credentials and push.
    Push,
    /// Generate Flux's deploy key and have it added to the git host.
    DeployKey,
    /// Apply the Flux source Secret, GitRepository and Kustomizations.
    FluxSync,
    /// Wait until Flux applied the pushed revision and the cluster is still ready.
    SyncHealth,
    /// Delete the kind cluster.
    DeleteKind,
}

impl Step {
    /// Every bootstrap step, in order.
    pub const BOOTSTRAP: [Step; 14] = [
        Step::KindCluster,
        Step::KindComponents,
        Step::ApplyCluster,
        Step::ClusterReady,
        Step::Kubeconfig,
        Step::TargetComponents,
        Step::Move,
        Step::TargetReady,
        Step::Seal,
        Step::Push,
        Step::DeployKey,
        Step::FluxSync,
        Step::SyncHealth,
        Step::DeleteKind,
    ];

    /// The stable name (state files, `--output json`).
    pub fn name(self) -> &'static str {
        match self {
            Step::KindCluster => "kind-cluster",
            Step::KindComponents => "kind-components",
            Step::ApplyCluster => "apply-cluster",
            Step::ClusterReady => "cluster-ready",
            Step::Kubeconfig => "kubeconfig",
            Step::TargetComponents => "target-components",
            Step::Move => "move",
            Step::TargetReady => "target-ready",
            Step::Seal => "seal",
            Step::Push => "push",
            Step::DeployKey => "deploy-key",
            Step::FluxSync => "flux-sync",
            Step::SyncHealth => "sync-health",
            Step::DeleteKind => "delete-kind",
        }
    }

    /// What the step does, for humans.
    pub fn describe(self) -> &'static str {
        match self {
            Step::KindCluster => "create the kind cluster",
            Step::KindComponents => "install the vendored components (vendor-manifests/) on kind",
            Step::ApplyCluster => "apply the cluster's config and credentials to kind",
            Step::ClusterReady => "wait for the cluster to be ready",
            Step::Kubeconfig => "write the cluster's kubeconfig",
            Step::TargetComponents => "install the components on the new cluster",
            Step::Move => "move the Cluster API objects to the new cluster",
            Step::TargetReady => "wait for the cluster on its new management cluster",
            Step::Seal => "seal the credentials with the new cluster's certificate",
            Step::Push => "commit and push the sealed credentials",
            Step::DeployKey => "set up Flux's deploy key",
            Step::FluxSync => "point Flux at the repository",
            Step::SyncHealth => "wait for Flux to apply the pushed revision",
            Step::DeleteKind => "delete the kind cluster",
        }
    }
}

/// A step of the teardown, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TeardownStep {
    /// Create (or reuse) the ephemeral kind cluster.
    KindCluster,
    /// Install the components on it.
    KindComponents,
    /// Suspend Flux's sync of the cluster on the self-managed cluster.
    SuspendFlux,
    /// Move the Cluster API objects back to kind.
    Move,
    /// Delete the Cluster and wait until it is gone.
    DeleteCluster,
    /// Delete the kind cluster.
    DeleteKind,
}

impl TeardownStep {
    /// Every teardown step, in order.
    pub const ALL: [TeardownStep; 6] = [
        TeardownStep::KindCluster,
        TeardownStep::KindComponents,
        TeardownStep::SuspendFlux,
        TeardownStep::Move,
        TeardownStep::DeleteCluster,
        TeardownStep::DeleteKind,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            TeardownStep::KindCluster => "kind-cluster",
            TeardownStep::KindComponents => "kind-components",
            TeardownStep::SuspendFlux => "suspend-flux",
            TeardownStep::Move => "move",
            TeardownStep::DeleteCluster => "delete-cluster",
            TeardownStep::DeleteKind => "delete-kind",
        }
    }

    /// What the step does, for humans.
    pub fn describe(self) -> &'static str {
        match self {
            TeardownStep::KindCluster => "create the kind cluster",
            TeardownStep::KindComponents => "install the components on kind",
            TeardownStep::SuspendFlux => "suspend Flux's sync of the cluster",
            TeardownStep::Move => "move the Cluster API objects back to kind",
            TeardownStep::DeleteCluster => "delete the cluster and wait until it is gone",
            TeardownStep::DeleteKind => "delete the kind cluster",
        }
    }
}

/// What the user is shown when Flux's deploy key must be added to the git host.
#[derive(Debug, Clone)]
pub struct DeployKeyNotice {
    /// The repository URL Flux will clone.
    pub url: String,
    /// The public key line to add (read-only access is enough).
    pub public_line: String,
    /// Its SHA256 fingerprint.
    pub fingerprint: String,
    /// Where the public key was written.
    pub path: PathBuf,
}

/// Asks whether the deploy key was added; `false` stops the bootstrap (a rerun asks again).
pub type ConfirmDeployKey = Arc<dyn Fn(&DeployKeyNotice) -> bool + Send + Sync>;

/// How to reach the config repository's remote.
#[derive(Debug, Clone, Default)]
pub struct GitOptions {
    /// Where to push; `None`: `origin`.
    pub push_url: Option<String>,
    /// The URL Flux clones; `None`: the push URL, scp-like forms turned into `ssh://`.
    pub flux_url: Option<String>,
    /// The commit message; `None`: `Bootstrap cluster - <name>`.
    pub message: Option<String>,
    /// The author; `None`: from git config.
    pub author: Option<Author>,
    /// HTTP(S) credentials for the push; given to Flux too when `flux_http_credentials` is
    /// `None` (a warning says so: Flux only needs to read).
    pub http_credentials: Option<HttpCredentials>,
    /// HTTP(S) credentials for Flux's source Secret, e.g. a read-only token.
    pub flux_http_credentials: Option<HttpCredentials>,
    /// SSH keys and host verification for the push.
    pub ssh: SshOptions,
}

/// How long waits may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For each component's Deployments and CRDs.
    pub components: Duration,
    /// For the cluster to become ready.
    pub cluster: Duration,
    /// For Flux to apply the pushed revision.
    pub sync: Duration,
    /// For the deleted Cluster to be gone (teardown).
    pub delete: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            components: Duration::from_secs(600),
            cluster: Duration::from_secs(3600),
            sync: Duration::from_secs(600),
            delete: Duration::from_secs(3600),
        }
    }
}

/// Options of [`bootstrap`] and [`teardown`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// The config repository's root.
    pub root: PathBuf,
    /// The cluster: `clusters/<cluster>`.
    pub cluster: String,
    /// The namespace of its Cluster API objects.
    pub namespace: String,
    /// The kind cluster (its name defaults to `capi-manage-<cluster>`).
    pub kind: CreateOptions,
    /// The git remote.
    pub git: GitOptions,
    /// Asks whether the deploy key was added; `None`: assume it was (`--yes`).
    pub confirm_deploy_key: Option<ConfirmDeployKey>,
    /// Wait limits.
    pub timeouts: Timeouts,
    /// Namespace of the sealed-secrets controller.
    pub sealed_secrets_namespace: String,
    /// Name of its Service.
    pub sealed_secrets_name: String,
    /// Flux's namespace.
    pub flux_namespace: String,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("root", &self.root)
            .field("cluster", &self.cluster)
            .field("namespace", &self.namespace)
            .field("kind", &self.kind.name)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Defaults for `clusters/<cluster>` in the repository at `root`.
    pub fn new(root: impl Into<PathBuf>, cluster: impl Into<String>) -> Options {
        let cluster = cluster.into();
        Options {
            root: root.into(),
            kind: CreateOptions {
                name: format!("capi-manage-{cluster}"),
                ..CreateOptions::default()
            },
            cluster,
            namespace: DEFAULT_NAMESPACE.into(),
            git: GitOptions::default(),
            confirm_deploy_key: None,
            timeouts: Timeouts::default(),
            sealed_secrets_namespace: crate::seal::DEFAULT_CONTROLLER_NAMESPACE.into(),
            sealed_secrets_name: crate::seal::DEFAULT_CONTROLLER_NAME.into(),
            flux_namespace: "flux-system".into(),
        }
    }

    /// `clusters/<cluster>`.
    pub fn cluster_dir(&self) -> PathBuf {
        self.root.join("clusters").join(&self.cluster)
    }

    /// `clusters/<cluster>/kubeconfig`.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.cluster_dir().join("kubeconfig")
    }

    /// `clusters/<cluster>/.capi-manage`.
    pub fn state_dir(&self) -> PathBuf {
        state::state_dir(&self.cluster_dir())
    }
}

/// What a finished bootstrap did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Steps run now (the others were done by an earlier run).
    pub ran: Vec<&'static str>,
    /// Steps skipped as already done.
    pub skipped: Vec<&'static str>,
    /// The commit pushed, hex.
    pub pushed: Option<String>,
    /// The kubeconfig written.
    pub kubeconfig: PathBuf,
}

/// Why a bootstrap or teardown stopped. What was done is saved: a rerun resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A step failed.
    #[error("step {step} ({what}) failed; fix the cause and run the command again to resume")]
    Step {
        /// The step's name.
        step: &'static str,
        /// What it does.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Interrupted: the state is saved.
    #[error("interrupted during step {step}; run the command again to resume from it")]
    Cancelled {
        /// The step that was running.
        step: &'static str,
    },
    /// The repository or cluster folder is not usable.
    #[error("cannot use the cluster's config")]
    Repo(#[source] crate::repo::Error),
    /// The state file cannot be read or written.
    #[error("state file {path}")]
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
    /// A cluster is not the one the state file recorded.
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
    /// The user said the deploy key was not added.
    #[error(
        "the deploy key ({fingerprint}) was not confirmed as added to {url}; add it (public key in {path}) and run the command again, or pass --deploy-key-added"
    )]
    DeployKeyNotAdded {
        /// The repository.
        url: String,
        /// The key's fingerprint.
        fingerprint: String,
        /// The public key file.
        path: PathBuf,
    },
    /// The new cluster still does not serve kinds that the move carries.
    #[error(
        "the new cluster does not serve {} after {}s: the controllers that register them (the add-on provider's HelmRelease) did not start there", .missing.join(", "), .timeout.as_secs()
    )]
    TargetLacksKinds {
        /// The kinds, `Kind (group/version)`.
        missing: Vec<String>,
        /// How long they were awaited.
        timeout: Duration,
    },
    /// The kubeconfig is gone after the cluster moved off kind.
    #[error(
        "{path} is missing, and the cluster already moved off the kind cluster it was read from: restore the file (the cluster's <name>-kubeconfig Secret holds it)"
    )]
    KubeconfigGone {
        /// The expected file.
        path: PathBuf,
    },
    /// Teardown needs the cluster's kubeconfig.
    #[error(
        "{path} is missing: teardown needs the self-managed cluster's kubeconfig (written by bootstrap)"
    )]
    NoKubeconfig {
        /// The expected file.
        path: PathBuf,
    },
}

impl Error {
    /// Whether the error is an interruption.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. })
    }
}

/// The repository-relative path of a file in the cluster folder.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
