//! `bootstrap` and `teardown` as plans of steps, and `rotate`.
//!
//! Each step is a typed object ([`Step`], one file each under `steps/`): it has a stable id,
//! knows what it does, whether it needs the kind cluster and how to run, and re-runs safely.
//! The ids of finished steps are saved after each step in `clusters/<name>/.capi-manage/`
//! (gitignored), so a rerun after Ctrl-C, a crash or a failed step resumes at the first
//! unfinished step. Steps that need a cluster reconnect on their own (the kind cluster's
//! kubeconfig is kept in the same folder). A failed step is [`Error::Step`] with its id and a
//! [`StepError`] wrapping the module's error.
//!
//! [`rotate`] re-seals the credentials and pushes them with the seal and push steps' code.

mod airgap;
mod bundle;
mod context;
mod egress;
mod error;
mod plan;
mod preflight;
mod rotate;
mod run;
mod state;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use airgap::{ImageLayout, missing_images, read_layout};
pub use bundle::{REDACTED, is_secret_key, redact, scrub, secret_values};
pub use context::Context;
pub use egress::{Destination, EgressInput, Origin, egress, is_loopback};
pub use error::{Error, Side, StepError};
pub use plan::{CredentialsPlan, Machines, Plan, PlannedStep, ValuesPlan, plan};
pub use preflight::{
    Check, Operation, Preflight, Status as CheckStatus, inotify_check, inotify_from, preflight,
};
pub use rotate::{RotateOptions, RotateReport, rotate, rotate_message};
pub use run::{bootstrap, teardown};
pub use state::{STATE_VERSION, State};
pub use steps::{Step, bootstrap_steps, teardown_steps};

use crate::git::{Author, HttpCredentials, SshOptions};
use crate::kind::CreateOptions;
use crate::repo::ClusterDir;

/// The namespace the cluster's Cluster API objects live in.
pub const DEFAULT_NAMESPACE: &str = "capi-self";

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
    /// For a connection to an API server or the git remote; `None`: no limit.
    pub connect: Option<Duration>,
    /// For one answer of an API server or the git remote; `None`: no limit.
    pub request: Option<Duration>,
}

impl Timeouts {
    /// Client options for `kubeconfig` with these timeouts.
    pub fn client(&self, kubeconfig: PathBuf) -> crate::kube::ClientOptions {
        crate::kube::ClientOptions {
            kubeconfig: Some(kubeconfig),
            context: None,
            connect_timeout: self.connect,
            read_timeout: self.request,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            components: Duration::from_secs(600),
            cluster: Duration::from_secs(3600),
            sync: Duration::from_secs(600),
            delete: Duration::from_secs(3600),
            connect: Some(crate::kube::DEFAULT_CONNECT_TIMEOUT),
            request: Some(crate::kube::DEFAULT_READ_TIMEOUT),
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
    /// The preflight against the OpenStack cloud that runs before the first step (login,
    /// catalog, what the values name, quotas); `None` skips it.
    pub cloud_preflight: Option<crate::cloud::Options>,
    /// Preflight checks whose problems only warn (their ids, or `all`), as kubeadm's
    /// `--ignore-preflight-errors`.
    pub ignore_preflight: Vec<String>,
    /// Keep the kind cluster at the end (`--retain`): the `delete-kind` step leaves it running
    /// and reports it kept.
    pub retain_kind: bool,
    /// An OCI image layout (`capi-manage images pull --to DIR`) loaded into the kind node's
    /// containerd right after the kind cluster is made, before the first component is
    /// installed; the preflight refuses one that lacks an image the bootstrap runs. Registry
    /// mirrors for the node are in [`CreateOptions::registry`].
    pub images: Option<PathBuf>,
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
            cloud_preflight: Some(crate::cloud::Options::default()),
            ignore_preflight: Vec::new(),
            retain_kind: false,
            images: None,
        }
    }

    /// The paths of `clusters/<cluster>`.
    pub fn dir(&self) -> ClusterDir {
        ClusterDir::new(&self.root, &self.cluster)
    }
}

/// What a finished bootstrap did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Ids of the steps run now (the others were done by an earlier run).
    pub ran: Vec<&'static str>,
    /// Ids of the steps skipped as already done.
    pub skipped: Vec<&'static str>,
    /// The commit pushed, hex.
    pub pushed: Option<String>,
    /// The kubeconfig written.
    pub kubeconfig: PathBuf,
    /// The checks the preflight made before the first step.
    pub preflight: Preflight,
}
