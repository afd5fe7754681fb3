//! Command-line parsing and dispatch. Everything the user types is validated here and turned
//! into the library's options; errors are reported only by `main`.

mod apply;
mod bootstrap;
mod move_cmd;
mod observer;
mod plan;
mod render;
mod rotate;
mod seal;
mod status;
mod vendor;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use observer::Terminal;

/// Bootstrap a self-managed Cluster API cluster on OpenStack and hand it to Flux.
#[derive(Debug, Parser)]
#[command(name = "capi-manage", version, about, long_about = None)]
pub struct Cli {
    /// More detail (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that talk to a cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    pub fn options(&self) -> capi_manage::kube::ClientOptions {
        capi_manage::kube::ClientOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// Where the sealing certificate comes from when it is not fetched from the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct CertArgs {
    /// The controller's certificate: a file or an https:// URL. Without it the certificate is
    /// fetched from the cluster.
    #[arg(long, value_name = "FILE|URL")]
    pub cert: Option<String>,
    /// Accept a plain http:// --cert URL (anyone on the path could substitute the certificate).
    #[arg(long, requires = "cert")]
    pub insecure_cert_url: bool,
}

impl CertArgs {
    /// The certificate source: --cert when given, else the controller `namespace/name` of the
    /// cluster. Checked before any request: a plain http:// URL without --insecure-cert-url
    /// is refused naming that flag.
    pub fn source(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<capi_manage::seal::CertSource> {
        use capi_manage::seal::CertSource;
        let source = match &self.cert {
            Some(cert) => CertSource::file_or_url(cert, self.insecure_cert_url),
            None => CertSource::Cluster {
                namespace: namespace.into(),
                name: name.into(),
            },
        };
        source.check().map_err(with_cert_hint)?;
        Ok(source)
    }

    /// The sealing key of --cert, when given.
    pub async fn key(&self) -> anyhow::Result<Option<capi_manage::seal::SealingKey>> {
        if self.cert.is_none() {
            return Ok(None);
        }
        let source = self.source("", "")?;
        let (key, _) = source
            .resolve(None, &capi_manage::observe::Silent)
            .await
            .map_err(with_cert_hint)?;
        Ok(Some(key))
    }
}

/// A sealing-certificate error with the flags that fix it, printed `error; hint`.
#[derive(Debug, thiserror::Error)]
#[error("{error}; {hint}")]
pub struct CertHint {
    error: capi_manage::seal::Error,
    hint: &'static str,
}

/// The error, with the flags of the seal and rotate commands that fix it when there are some.
pub fn with_cert_hint(error: capi_manage::seal::Error) -> anyhow::Error {
    use capi_manage::seal::Error as E;
    let hint = match &error {
        E::InsecureCertificateUrl { url } if url.starts_with("http://") => {
            "use an https:// URL or a file, or pass --insecure-cert-url to accept it"
        }
        E::ControllerNotFound { .. } => {
            "check --controller-namespace and --controller-name, or seal offline with --cert"
        }
        E::CertificateUnavailable { .. } => "or seal offline with --cert",
        _ => return error.into(),
    };
    CertHint { error, hint }.into()
}

/// Tells which certificate sealing uses: its subject and SHA-256 fingerprint, to compare with
/// the controller's (`kubeseal --fetch-cert | openssl x509 -noout -fingerprint -sha256`).
pub fn report_certificate(observer: &Terminal, key: &capi_manage::seal::SealingKey, from: &str) {
    use capi_manage::observe::ObserverExt as _;
    observer.action(format!(
        "sealing with certificate {from}: subject {}, SHA-256 fingerprint {}",
        key.subject(),
        key.fingerprint_sha256()
    ));
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the cluster from clusters/<name>, make it self-managed and hand it to Flux.
    Bootstrap(bootstrap::Args),
    /// Move the cluster back to a temporary management cluster and delete it.
    Teardown(bootstrap::Args),
    /// Print the rendered manifests of a cluster (or any kustomization folder).
    Render(render::Args),
    /// Check a cluster's config and print the steps bootstrap would take.
    Plan(plan::Args),
    /// Seal a Secret for sealed-secrets (kubeseal's format).
    Seal(seal::Args),
    /// Re-seal a cluster's credentials, commit and push.
    Rotate(rotate::Args),
    /// Download, verify and record the pinned component manifests.
    Vendor(vendor::Args),
    /// Move Cluster API objects between management clusters.
    Move(move_cmd::Args),
    /// Print where a cluster's kubeconfig is, or its contents.
    Kubeconfig(bootstrap::KubeconfigArgs),
    /// Show a cluster's conditions and Flux health.
    Status(status::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Server-side apply manifest files to a cluster (as capi-manage does during bootstrap).
    Apply(apply::Args),
}

/// Ctrl-C stopped the operation; the message says how to resume.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

pub fn parse() -> Cli {
    Cli::parse()
}

pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        // kube-client logs failed connections at ERROR; they are reported once, as the error.
        0 => "warn,kube_client::client::builder=off",
        1 => "capi_manage=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // The library's spans (apply, push, kind create) are logged as they close, with their
    // fields and duration, from -v on.
    let spans = if verbose == 0 {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let observer = Terminal::stderr();
    match cli.command {
        Command::Render(args) => render::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Seal(args) => seal::run(args, &observer).await,
        Command::Rotate(args) => rotate::run(args, &observer).await,
        Command::Apply(args) => apply::run(args, &observer).await,
        Command::Bootstrap(args) => bootstrap::run_bootstrap(args).await,
        Command::Teardown(args) => bootstrap::run_teardown(args).await,
        Command::Vendor(args) => vendor::run(args, &observer).await,
        Command::Move(args) => move_cmd::run(args, &observer).await,
        Command::Kubeconfig(args) => bootstrap::run_kubeconfig(args),
        Command::Status(args) => status::run(args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "capi-manage", &mut script);
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&script)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// The error and its causes on one line: `a: b: c`.
pub fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string().replace('\n', " "))
        .collect::<Vec<_>>()
        .join(": ")
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Interrupted>().is_some() || e.chain().any(is_cancelled) {
        130
    } else if is_broken_pipe(e) {
        // The reader went away (`capi-manage render x | head`): not a failure.
        0
    } else {
        1
    }
}

/// The flag that fixes an error whose library message describes only the input.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    use capi_manage::kind;
    e.chain()
        .any(|c| {
            c.downcast_ref::<kind::UnknownVersion>().is_some()
                || matches!(
                    c.downcast_ref::<kind::CreateError>(),
                    Some(kind::CreateError::Pull { .. })
                )
        })
        .then_some("pass --node-image IMAGE")
}

/// Whether the reader of standard output went away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether an error of the chain is a library operation's cancellation (Ctrl-C).
fn is_cancelled(c: &(dyn std::error::Error + 'static)) -> bool {
    use capi_manage::{bootstrap, capi, components, flux, git, kind, kube};
    matches!(
        c.downcast_ref::<kube::Error>(),
        Some(kube::Error::Cancelled)
    ) || matches!(
        c.downcast_ref::<components::Error>(),
        Some(components::Error::Cancelled)
    ) || matches!(
        c.downcast_ref::<capi::Error>(),
        Some(capi::Error::Cancelled)
    ) || matches!(
        c.downcast_ref::<capi::readiness::ReadinessError>(),
        Some(capi::readiness::ReadinessError::Cancelled)
    ) || matches!(
        c.downcast_ref::<flux::Error>(),
        Some(flux::Error::Cancelled)
    ) || matches!(
        c.downcast_ref::<kind::CreateError>(),
        Some(kind::CreateError::Cancelled)
    ) || matches!(
        c.downcast_ref::<kind::LoadError>(),
        Some(kind::LoadError::Cancelled)
    ) || matches!(
        c.downcast_ref::<git::PushError>(),
        Some(git::PushError::Cancelled { .. })
    ) || matches!(
        c.downcast_ref::<git::HostKeyScanError>(),
        Some(git::HostKeyScanError::Cancelled { .. })
    ) || matches!(
        c.downcast_ref::<bootstrap::Error>(),
        Some(bootstrap::Error::Cancelled { .. })
    )
}
