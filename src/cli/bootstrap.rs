//! `capi-manage bootstrap` and `capi-manage teardown`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use capi_manage::bootstrap::{self, DeployKeyNotice, Options, StepError};
use capi_manage::git::HttpCredentials;
#[cfg(feature = "test-support")]
use capi_manage::kind::NodePrivileges;
use capi_manage::kind::{RegistryCa, RegistryConfig, RegistryMirror};
use capi_manage::repo::Repo;
use tokio_util::sync::CancellationToken;

use super::Terminal;

/// The flags of both `bootstrap` and `teardown`.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The cluster: a folder under clusters/.
    pub cluster: String,
    /// The config repository (default: found from the working directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Namespace of the cluster's Cluster API objects.
    #[arg(long, short = 'n', default_value = bootstrap::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Name of the ephemeral kind cluster (default: $KIND_CLUSTER_NAME as kind reads it, then
    /// capi-manage-<cluster>).
    #[arg(long, value_name = "NAME", env = "KIND_CLUSTER_NAME")]
    pub kind_name: Option<String>,
    /// kindest/node image for the kind cluster (default: the pinned one); `--image` as kind
    /// spells it.
    #[arg(long, visible_alias = "image", value_name = "IMAGE")]
    pub node_image: Option<String>,
    /// Air-gapped: an OCI image layout (`capi-manage images pull --to DIR` writes it) loaded
    /// into the kind node before the first component is installed; the preflight refuses one
    /// that lacks an image the bootstrap runs.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Air-gapped: the kind node's containerd pulls HOST's images through URL (its
    /// /etc/containerd/certs.d/HOST/hosts.toml), e.g. docker.io=https://mirror.internal:5000;
    /// repeatable, mirrors of one host tried in order.
    #[arg(long = "registry-mirror", value_name = "HOST=URL", value_parser = parse_mirror)]
    pub registry_mirrors: Vec<RegistryMirror>,
    /// The CA certificate (PEM) of the https:// registry mirrors, copied into the kind node.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Keep the kind cluster after success (as `kind create cluster --retain` keeps nodes);
    /// delete it later with `kind delete cluster --name <NAME>`.
    #[arg(long, visible_alias = "keep-kind")]
    pub retain: bool,
    /// Docker engine address (default: $DOCKER_HOST, then the local socket).
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// Skip the check of the OpenStack cloud (login, catalog, what the values name, quotas)
    /// that runs before the first step.
    #[arg(long)]
    pub skip_cloud_preflight: bool,
    /// Preflight checks whose problems only warn, comma-separated ids (components, config,
    /// credentials, docker, inotify, node-image, images, git-remote, host-key, branch,
    /// kubeconfig, cloud) or `all`, as kubeadm's flag of the same name.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub ignore_preflight_errors: Vec<String>,
    /// Output: text (a line per step; a spinner on a terminal) or json (one event per line).
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Longest wait for the cluster to become ready (and, in teardown, deleted), e.g. 90m or
    /// 1h (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = super::parse_duration)]
    pub cluster_timeout: Duration,
    /// Longest wait for each component and for Flux's sync, e.g. 90s or 10m (a bare number is
    /// seconds).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// TEST ONLY: run the kind node unprivileged with these capabilities (a real kindest/node
    /// does not boot this way). Only with the `test-support` feature.
    #[cfg(feature = "test-support")]
    #[arg(long, hide = true, value_delimiter = ',')]
    pub test_only_node_capabilities: Vec<String>,
}

/// `bootstrap`: the common flags, the git remote and the deploy key.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The git remote and the commit (shared with `rotate`).
    #[command(flatten)]
    pub git: super::git_args::GitArgs,
    /// The URL Flux clones (default: the push URL; scp-like forms become ssh://). Flux gets
    /// $CAPI_MANAGE_FLUX_GIT_TOKEN (a read-only token) when set, else the push's credentials.
    #[arg(long, value_name = "URL")]
    pub flux_url: Option<String>,
    /// Do not ask: assume the deploy key is added.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The deploy key (clusters/<name>/.capi-manage/deploy-key.pub) is already added.
    #[arg(long)]
    pub deploy_key_added: bool,
}

/// `teardown`: only the flags it uses. Bootstrap's git and deploy-key flags that earlier
/// releases accepted here are still taken, hidden, and ignored with a warning; `--yes` (there
/// is nothing to confirm) is taken silently, as scripts pass it to both commands.
#[derive(Debug, clap::Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long, short = 'y', hide = true)]
    pub yes: bool,
    #[arg(long, hide = true)]
    pub deploy_key_added: bool,
    #[arg(long = "ssh-identity", hide = true, value_name = "FILE")]
    pub ssh_identity: Vec<PathBuf>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub accept_new_host_key: bool,
    #[arg(long = "git-url", hide = true, value_name = "URL")]
    pub git_url: Option<String>,
}

impl TeardownArgs {
    /// The names of the ignored flags given.
    fn ignored(&self) -> Vec<&'static str> {
        [
            (self.deploy_key_added, "--deploy-key-added"),
            (!self.ssh_identity.is_empty(), "--ssh-identity"),
            (self.known_hosts.is_some(), "--known-hosts"),
            (self.accept_new_host_key, "--accept-new-host-key"),
            (self.git_url.is_some(), "--git-url"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect()
    }
}

impl CommonArgs {
    /// The options both commands set.
    fn options(&self) -> anyhow::Result<Options> {
        let repo = match &self.repo {
            Some(dir) => Repo::at(dir),
            None => Repo::discover(&std::env::current_dir().context("working directory")?)?,
        };
        let mut o = Options::new(repo.root(), &self.cluster);
        if self.skip_cloud_preflight {
            o.cloud_preflight = None;
        }
        o.ignore_preflight = self.ignore_preflight_errors.clone();
        if let Some(cloud) = o.cloud_preflight.as_mut() {
            cloud.timeout = super::cloud_timeout();
        }
        o.namespace = self.namespace.clone();
        if let Some(n) = self.kind_name.as_ref().filter(|n| !n.is_empty()) {
            o.kind.name = n.clone();
        }
        o.retain_kind = self.retain;
        if let Some(i) = &self.node_image {
            o.kind.image = i.clone();
        }
        o.kind.docker_host = self.docker_host.clone();
        o.images = self.images.clone();
        let ca = self
            .registry_ca
            .as_deref()
            .map(RegistryCa::read)
            .transpose()
            .context("--registry-ca")?;
        o.kind.registry =
            RegistryConfig::new(self.registry_mirrors.clone(), ca).context("--registry-ca")?;
        o.kind.docker_timeout = super::docker_timeout();
        #[cfg(feature = "test-support")]
        if !self.test_only_node_capabilities.is_empty() {
            o.kind.privileges =
                NodePrivileges::TestOnlyCapabilities(self.test_only_node_capabilities.clone());
        }
        o.timeouts.cluster = self.cluster_timeout;
        o.timeouts.components = self.timeout;
        o.timeouts.sync = self.timeout;
        o.timeouts.delete = self.cluster_timeout;
        o.timeouts.connect = super::timeouts().connect;
        o.timeouts.request = super::timeouts().request;
        Ok(o)
    }
}

impl Args {
    fn options(&self) -> anyhow::Result<Options> {
        let mut o = self.common.options()?;
        o.git.push_url = self.git.git_url.clone();
        o.git.flux_url = self.flux_url.clone();
        o.git.message = self.git.message.clone();
        o.git.author = self.git.author();
        o.git.http_credentials = self.git.http_credentials()?;
        o.git.flux_http_credentials =
            super::git_args::env_value("CAPI_MANAGE_FLUX_GIT_TOKEN").map(HttpCredentials::token);
        o.git.ssh = self.git.ssh();
        o.confirm_deploy_key = if self.yes || self.deploy_key_added {
            None
        } else if std::io::stdin().is_terminal() {
            Some(Arc::new(ask_deploy_key))
        } else {
            Some(Arc::new(|n: &DeployKeyNotice| {
                // No terminal to ask on: the error names the flag.
                let _ = n;
                false
            }))
        };
        Ok(o)
    }
}

pub(crate) fn parse_mirror(s: &str) -> Result<RegistryMirror, String> {
    RegistryMirror::parse(s).map_err(|e| e.to_string())
}

fn ask_deploy_key(n: &DeployKeyNotice) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nAdd this deploy key to {} (read access is enough):\n\n  {}\n\n(fingerprint {}, also in {})",
        n.url,
        n.public_line,
        n.fingerprint,
        n.path.display()
    );
    let _ = write!(err, "Added? [y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

fn interrupt_token() -> CancellationToken {
    super::cancel_on_ctrl_c()
}

pub async fn run_bootstrap(args: Args) -> anyhow::Result<()> {
    let o = args.options()?;
    let args = args.common;
    let observer = Terminal::for_output(&args.output);
    let cancel = interrupt_token();
    let report = bootstrap::bootstrap(&o, &observer, &cancel).await;
    observer.finish();
    let report = report.map_err(|e| failed(e, &args, "bootstrap"))?;
    if args.output == "json" {
        print_preflight_json(&report.preflight);
    }
    if args.output == "text" && !super::quiet() {
        eprintln!(
            "cluster {} is self-managed and synced by Flux{}; kubeconfig: {}",
            args.cluster,
            report
                .pushed
                .map(|c| format!(" at commit {c}"))
                .unwrap_or_default(),
            report.kubeconfig.display()
        );
    }
    Ok(())
}

pub async fn run_teardown(args: TeardownArgs) -> anyhow::Result<()> {
    let o = args.common.options()?;
    let ignored = args.ignored();
    if !ignored.is_empty() && !super::quiet() {
        eprintln!(
            "warning: teardown does not use {}: ignored",
            ignored.join(", ")
        );
    }
    let args = args.common;
    let observer = Terminal::for_output(&args.output);
    let cancel = interrupt_token();
    let report = bootstrap::teardown(&o, &observer, &cancel).await;
    observer.finish();
    let report = report.map_err(|e| failed(e, &args, "teardown"))?;
    if args.output == "json" {
        print_preflight_json(&report.preflight);
    }
    if args.output == "text" && !super::quiet() {
        if args.retain {
            eprintln!(
                "cluster {} is deleted; kind cluster {} is kept",
                args.cluster, o.kind.name
            );
        } else {
            eprintln!(
                "cluster {} is deleted and the kind cluster is gone",
                args.cluster
            );
        }
    }
    Ok(())
}

/// Each check of the preflight as a JSON line on stdout (`"event": "preflight"`).
fn print_preflight_json(p: &bootstrap::Preflight) {
    let mut out = std::io::stdout().lock();
    for c in &p.checks {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        v["event"] = "preflight".into();
        let _ = writeln!(out, "{v}");
    }
}

/// A failed run: with `--output json`, the preflight's checks and the support bundle as JSON
/// lines first; then the error as [`interrupted`] makes it.
fn failed(e: bootstrap::Error, args: &CommonArgs, command: &str) -> anyhow::Error {
    if args.output == "json" {
        if let Some(p) = e.preflight() {
            print_preflight_json(p);
        }
        if let Some(path) = e.support_bundle() {
            println!(
                "{}",
                serde_json::json!({"event": "support-bundle", "path": path})
            );
        }
    }
    interrupted(e, &args.cluster, command)
}

/// An interruption becomes [`super::Interrupted`] (exit 130) with how to resume; an error a
/// flag fixes gets that flag.
fn interrupted(e: bootstrap::Error, cluster: &str, command: &str) -> anyhow::Error {
    if e.is_cancelled() {
        return anyhow::Error::new(super::Interrupted(format!(
            "{e}: `capi-manage {command} {cluster}`"
        )));
    }
    let hint = match e.step_error() {
        Some((_, StepError::DeployKeyNotAdded { .. })) => "or pass --deploy-key-added",
        Some((_, StepError::NoRemote { .. })) => "or pass --git-url",
        _ => return e.into(),
    };
    anyhow::anyhow!("{}; {hint}", super::one_line(&anyhow::Error::from(e)))
}

/// `capi-manage kubeconfig <cluster>`: the path, or with --print the contents.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// The cluster: a folder under clusters/.
    pub cluster: String,
    /// The config repository (default: found from the working directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print the kubeconfig itself instead of its path.
    #[arg(long)]
    pub print: bool,
}

pub fn run_kubeconfig(args: KubeconfigArgs) -> anyhow::Result<()> {
    let repo = match &args.repo {
        Some(dir) => Repo::at(dir),
        None => Repo::discover(&std::env::current_dir().context("working directory")?)?,
    };
    let path = repo.layout(&args.cluster)?.kubeconfig();
    if !path.is_file() {
        bail!(
            "{} is missing: `capi-manage bootstrap {}` writes it",
            path.display(),
            args.cluster
        );
    }
    if args.print {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        std::io::stdout().write_all(&bytes)?;
    } else {
        println!("{}", path.display());
    }
    Ok(())
}
