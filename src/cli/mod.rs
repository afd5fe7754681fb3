//! Command-line parsing and dispatch. Everything the user types is validated here and turned
//! into the library's options; errors are reported only by `main`.

mod apply;
mod bootstrap;
mod git_args;
mod images;
mod move_cmd;
mod observer;
mod plan;
mod render;
mod rotate;
mod seal;
mod status;
mod vendor;
mod version;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

pub use observer::Terminal;

/// Bootstrap a self-managed Cluster API cluster on OpenStack and hand it to Flux.
#[derive(Debug, Parser)]
#[command(name = "capi-manage", version, about, long_about = None)]
pub struct Cli {
    /// More detail: -v N as kind takes it (1: debug, 2 and up: trace), or -v, -vv.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Verbosity level N (what `-v N` becomes).
    #[arg(
        long,
        global = true,
        value_name = "N",
        hide = true,
        conflicts_with = "quiet"
    )]
    pub verbosity: Option<u8>,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Longest wait for one answer from a Kubernetes API server or git server, e.g. 90s, 5m,
    /// 1h (a bare number is seconds; 0: no limit).
    #[arg(long, global = true, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Longest wait for a connection to a Kubernetes API server or git server (0: no limit).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
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
        client_options(self.kubeconfig.clone(), self.context.clone())
    }
}

/// A duration as flux, kind and Go write them: `90s`, `10m`, `1h`, `1h30m`, `1.5h`, `500ms`,
/// or a bare number of seconds; `0` means no limit where the flag says so.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration such as 90s, 10m, 1h or 1h30m");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{s}`: the unit must be ms, s, m or h"))?;
        let (number, tail) = rest.split_at(n_end);
        let u_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_end);
        let n: f64 = number.parse().map_err(|_| bad())?;
        let unit_seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("`{s}`: the unit must be ms, s, m or h")),
        };
        total += Duration::try_from_secs_f64(n * unit_seconds).map_err(|_| bad())?;
        rest = tail;
    }
    Ok(total)
}

/// The global --connect-timeout and --request-timeout, set once by [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting; `None`: no limit.
    pub connect: Option<Duration>,
    /// One request's answer; `None`: no limit.
    pub request: Option<Duration>,
}

static TIMEOUTS: OnceLock<Timeouts> = OnceLock::new();

/// The timeouts the user chose (the library's defaults before [`run`] sets them).
pub fn timeouts() -> Timeouts {
    *TIMEOUTS.get_or_init(|| Timeouts {
        connect: Some(capi_manage::kube::DEFAULT_CONNECT_TIMEOUT),
        request: Some(capi_manage::kube::DEFAULT_READ_TIMEOUT),
    })
}

/// Client options for a kubeconfig and context, with the user's timeouts.
pub fn client_options(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) -> capi_manage::kube::ClientOptions {
    let t = timeouts();
    capi_manage::kube::ClientOptions {
        kubeconfig,
        context,
        connect_timeout: t.connect,
        read_timeout: t.request,
    }
}

/// What "no limit" is where the library wants a duration: a century.
const UNLIMITED: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The timeout of each request the cloud preflight makes: the user's `--request-timeout`.
pub fn cloud_timeout() -> Duration {
    timeouts().request.unwrap_or(UNLIMITED)
}

/// The longest wait for one answer of the Docker engine: --request-timeout.
pub fn docker_timeout() -> Duration {
    timeouts().request.unwrap_or(UNLIMITED)
}

/// A cancellation token that Ctrl-C (SIGINT) fires. The operation stops at its next request
/// or wait (a request in flight is dropped), undoes what it must, and the command exits 130.
pub fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    cancel
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
    match cert_hint(&error) {
        Some(hint) => CertHint { error, hint }.into(),
        None => error.into(),
    }
}

/// The flags of the seal and rotate commands that fix a sealing-certificate error.
fn cert_hint(error: &capi_manage::seal::Error) -> Option<&'static str> {
    use capi_manage::seal::Error as E;
    match error {
        E::InsecureCertificateUrl { url } if url.starts_with("http://") => {
            Some("use an https:// URL or a file, or pass --insecure-cert-url to accept it")
        }
        E::ControllerNotFound { .. } => {
            Some("check --controller-namespace and --controller-name, or seal offline with --cert")
        }
        E::CertificateUnavailable { .. } => Some("or seal offline with --cert FILE|URL"),
        E::EmptyData { .. } => Some("pass --allow-empty-data to seal it anyway"),
        _ => None,
    }
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
    Teardown(bootstrap::TeardownArgs),
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
    /// The images and charts of an air-gapped bootstrap: list, pull into a folder, push.
    Images(images::Args),
    /// Print where a cluster's kubeconfig is, or its contents.
    Kubeconfig(bootstrap::KubeconfigArgs),
    /// Show a cluster's conditions and Flux health.
    Status(status::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(visible_alias = "completions")]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Server-side apply manifest files to a cluster (as capi-manage does during bootstrap).
    Apply(apply::Args),
    /// Print the version, the pinned components and the pinned charts.
    Version(version::Args),
}

/// Ctrl-C stopped the operation; the message says how to resume.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

static QUIET: OnceLock<bool> = OnceLock::new();

/// Whether `-q` was given: progress and notes are not printed, only the final error.
pub fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

/// Parses the command line. `-v N`, `-vN` and `-v=N` (kind's verbosity) become `--verbosity N`
/// first, so that `-v`, `-vv` keep counting.
pub fn parse() -> Cli {
    let cli = Cli::parse_from(verbosity_args(std::env::args_os()));
    let _ = QUIET.set(cli.quiet);
    cli
}

/// Rewrites kind's `-v N` forms into `--verbosity=N`, up to a `--`.
fn verbosity_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter().peekable();
    let level = |s: &str| s.parse::<u8>().ok();
    while let Some(a) = args.next() {
        let Some(text) = a.to_str() else {
            out.push(a);
            continue;
        };
        if text == "--" {
            out.push(a);
            out.extend(args);
            break;
        }
        let attached = text
            .strip_prefix("-v=")
            .or_else(|| text.strip_prefix("-v"))
            .and_then(level);
        if let Some(n) = attached {
            out.push(format!("--verbosity={n}").into());
        } else if text == "-v"
            && let Some(n) = args.peek().and_then(|n| n.to_str()).and_then(level)
        {
            out.push(format!("--verbosity={n}").into());
            args.next();
        } else {
            out.push(a);
        }
    }
    out
}

impl Cli {
    /// The verbosity level: `-v N`, else the count of `-v`.
    pub fn verbosity(&self) -> u8 {
        self.verbosity.unwrap_or(self.verbose)
    }
}

pub fn init_tracing(verbose: u8, quiet: bool) {
    let level = match verbose {
        // -q: only errors, and kube-client's failed connections are reported once, as the
        // error.
        _ if quiet => "error,kube_client::client::builder=off",
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

/// Runs the commands that need no async runtime: `render`, offline `seal` (a --cert file),
/// `completion`. Any other command is handed back, to be run by [`run`] on the runtime.
pub fn run_offline(cli: Cli) -> Result<anyhow::Result<()>, Box<Cli>> {
    match cli.command {
        Command::Render(args) => Ok(render::run(args)),
        Command::Seal(mut args) => {
            args.apply_env();
            if args.offline() {
                Ok(seal::run_offline(args, &Terminal::stderr()))
            } else {
                Err(Box::new(Cli {
                    command: Command::Seal(args),
                    ..cli
                }))
            }
        }
        Command::Completion { shell } => Ok(completion(shell)),
        command => Err(Box::new(Cli { command, ..cli })),
    }
}

fn completion(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "capi-manage", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let limit = |d: Duration| (!d.is_zero()).then_some(d);
    let _ = TIMEOUTS.set(Timeouts {
        connect: limit(cli.connect_timeout),
        request: limit(cli.request_timeout),
    });
    let observer = Terminal::stderr();
    match cli.command {
        Command::Render(args) => render::run(args),
        Command::Plan(args) => plan::run(args).await,
        Command::Seal(args) => seal::run(args, &observer).await,
        Command::Rotate(args) => rotate::run(args, &observer).await,
        Command::Apply(args) => apply::run(args, &observer).await,
        Command::Bootstrap(args) => bootstrap::run_bootstrap(args).await,
        Command::Teardown(args) => bootstrap::run_teardown(args).await,
        Command::Vendor(args) => vendor::run(args, &observer).await,
        Command::Move(args) => move_cmd::run(args, &observer).await,
        Command::Images(args) => images::run(args, &observer).await,
        Command::Kubeconfig(args) => bootstrap::run_kubeconfig(args),
        Command::Status(args) => status::run(args).await,
        Command::Version(args) => version::run(args),
        Command::Completion { shell } => completion(shell),
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
    } else if e.downcast_ref::<status::NotReady>().is_some() {
        status::NOT_READY
    } else {
        1
    }
}

/// What the user can do about an error whose library message describes only the input: the
/// flag that fixes it, or after Ctrl-C the command that resumes.
pub fn hint(e: &anyhow::Error) -> Option<String> {
    if exit_code(e) == 130 {
        // Bootstrap and teardown name their resume command themselves.
        return e
            .downcast_ref::<Interrupted>()
            .is_none()
            .then(|| format!("run `{}` again to resume", command_line()));
    }
    e.chain().find_map(flag_hint).map(str::to_string)
}

/// The error of the chain as a `T`, also where the library boxes it (a boxed error shows in
/// the chain as its `Box`).
fn downcast<'a, T: std::error::Error + 'static>(
    c: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    c.downcast_ref::<T>()
        .or_else(|| c.downcast_ref::<Box<T>>().map(|b| &**b))
}

/// The flag that fixes one error of the chain.
fn flag_hint(c: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use capi_manage::{capi, kind};
    if downcast::<kind::UnknownVersion>(c).is_some()
        || matches!(
            downcast::<kind::CreateError>(c),
            Some(kind::CreateError::Pull { .. })
        )
    {
        return Some("pass --node-image (or --image) IMAGE");
    }
    if matches!(
        downcast::<capi_manage::git::PushError>(c),
        Some(capi_manage::git::PushError::UnknownHostKey { .. })
    ) {
        return Some("verify it, then re-run with --accept-new-host-key");
    }
    if matches!(
        downcast::<capi_manage::components::Error>(c),
        Some(capi_manage::components::Error::Variable { .. })
    ) {
        return Some("set it with --var NAME=VALUE or in the environment");
    }
    if matches!(
        downcast::<capi::Error>(c),
        Some(capi::Error::SameCluster { .. })
    ) {
        return Some("check --kubeconfig/--to-kubeconfig and their contexts");
    }
    if let Some(e) = downcast::<capi_manage::seal::Error>(c) {
        return cert_hint(e);
    }
    None
}

/// The command as the user typed it, for "run it again": words with spaces or quotes quoted,
/// credentials in HTTP(S) URLs left out (they would end up in logs).
fn command_line() -> String {
    let without_credentials = |a: String| match a.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => {
            format!("{flag}={}", capi_manage::git::split_credentials(value).0)
        }
        _ => capi_manage::git::split_credentials(&a).0,
    };
    std::iter::once("capi-manage".to_string())
        .chain(std::env::args().skip(1).map(without_credentials).map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
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
    matches!(downcast::<kube::Error>(c), Some(kube::Error::Cancelled))
        || matches!(
            downcast::<kube::RequestError>(c),
            Some(kube::RequestError::Cancelled)
        )
        || matches!(
            downcast::<components::Error>(c),
            Some(components::Error::Cancelled)
        )
        || matches!(downcast::<capi::Error>(c), Some(capi::Error::Cancelled))
        || matches!(
            downcast::<capi::readiness::ReadinessError>(c),
            Some(capi::readiness::ReadinessError::Cancelled)
        )
        || matches!(downcast::<flux::Error>(c), Some(flux::Error::Cancelled))
        || matches!(
            downcast::<kind::CreateError>(c),
            Some(kind::CreateError::Cancelled)
        )
        || matches!(
            downcast::<kind::LoadError>(c),
            Some(kind::LoadError::Cancelled)
        )
        || matches!(
            downcast::<git::PushError>(c),
            Some(git::PushError::Cancelled { .. })
        )
        || matches!(
            downcast::<git::HostKeyScanError>(c),
            Some(git::HostKeyScanError::Cancelled { .. })
        )
        || matches!(
            downcast::<bootstrap::Error>(c),
            Some(bootstrap::Error::Cancelled { .. })
        )
}
