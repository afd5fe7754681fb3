//! What goes wrong vendoring, loading and installing components.

use std::path::PathBuf;

/// What went wrong vendoring or loading the pinned manifests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `vendor.toml` is not valid TOML or has unknown fields.
    #[error("{}: invalid pin file", file.display())]
    PinsToml {
        /// The file.
        file: PathBuf,
        /// The parser's complaint (with line and field).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A pin is invalid.
    #[error("{}: field `{field}`: {problem}", file.display())]
    Pin {
        /// The file.
        file: PathBuf,
        /// The field, e.g. `component[2].provider.type`.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// `vendor.lock` is not valid TOML.
    #[error("{}: invalid lock file (re-create it with `capi-manage vendor`)", file.display())]
    LockToml {
        /// The file.
        file: PathBuf,
        /// The parser's complaint.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// `vendor.lock` holds something impossible.
    #[error("{}: {problem}", file.display())]
    Lock {
        /// The file.
        file: PathBuf,
        /// What.
        problem: String,
    },
    /// Nothing has been vendored yet.
    #[error("{} does not exist: run `capi-manage vendor` to download and record the pinned manifests", lock.display())]
    NotVendored {
        /// The missing lock.
        lock: PathBuf,
    },
    /// The pins changed since the manifests were vendored.
    #[error(
        "{component}: {problem}: run `capi-manage vendor` to bring vendor-manifests up to date"
    )]
    Stale {
        /// The component.
        component: String,
        /// What differs.
        problem: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A download failed after retries.
    #[error("{component}: cannot download {url} from {from} (tried {attempts} times)")]
    Download {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// Where it was fetched (the mirror's URL, or the same).
        from: String,
        /// How many tries.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An asset would be fetched through a mirror with nothing to check its bytes against.
    #[error(
        "{component}: {url} has no sha256 in vendor.toml and no entry in vendor.lock, so the mirror's copy cannot be checked; add the release's sha256 to the asset in vendor.toml, vendor it once from upstream, or trust the mirror explicitly"
    )]
    MirrorUnpinned {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
    },
    /// A download exceeded its size bound.
    #[error("{component}: {from} sent more than {limit} bytes for {url}; refused")]
    TooLarge {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// Where it was fetched from.
        from: String,
        /// The bound: the locked size plus a margin, or the default cap.
        limit: u64,
    },
    /// The server refused a download.
    #[error("{component}: {from} answered HTTP {status} for {url}")]
    HttpStatus {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// Where it was fetched.
        from: String,
        /// The status.
        status: u16,
    },
    /// A chart's Helm repository index does not give the pinned chart.
    #[error("chart {chart} {version}: {repository}/index.yaml: {problem}")]
    ChartIndex {
        /// The chart.
        chart: String,
        /// The pinned version.
        version: String,
        /// The Helm repository's URL.
        repository: String,
        /// What is wrong.
        problem: String,
    },
    /// A download differs from the sha256 recorded (or pinned) for it.
    #[error(
        "{component}: {url} (from {from}) has sha256 {actual}, but {expected} was recorded when it was first vendored; refusing it, nothing was written"
    )]
    Checksum {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// Where it was fetched.
        from: String,
        /// The recorded sha256.
        expected: String,
        /// The download's sha256.
        actual: String,
    },
    /// A rendered file differs from the sha256 recorded for it.
    #[error("{}: sha256 {actual} differs from {expected} recorded in vendor.lock: the file was changed after vendoring; refusing it (restore it, e.g. with git, or re-run `capi-manage vendor`)", file.display())]
    Tampered {
        /// The file.
        file: PathBuf,
        /// The recorded sha256.
        expected: String,
        /// The file's sha256.
        actual: String,
    },
    /// An asset is not UTF-8 text.
    #[error("{component}: {url} is not UTF-8 text")]
    NotUtf8 {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
    },
    /// An asset (or rendered file) does not hold Kubernetes objects.
    #[error("{component}: {url}: not a manifest")]
    Manifest {
        /// The component.
        component: String,
        /// The upstream URL or file.
        url: String,
        /// Why.
        #[source]
        source: crate::manifest::Error,
    },
    /// Variables are used without a value or a default.
    #[error("{component}: {url}: {}", missing_variables(names, *line))]
    Variable {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// Every missing variable, in order of first use.
        names: Vec<String>,
        /// The line where the first one is used.
        line: usize,
    },
    /// A provider's components break clusterctl's rules.
    #[error("{component}: {url}: {problem}")]
    Provider {
        /// The component.
        component: String,
        /// The upstream URL.
        url: String,
        /// What.
        problem: String,
    },
    /// Applying a unit failed; nothing later was applied.
    #[cfg(feature = "kube")]
    #[error("cannot install {unit}")]
    Install {
        /// The unit.
        unit: String,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// Discovery failed while resolving the kinds of a unit's objects to await.
    #[cfg(feature = "kube")]
    #[error("cannot resolve the kinds of {unit}'s objects")]
    InstallDiscovery {
        /// The unit.
        unit: String,
        /// Why.
        #[source]
        source: Box<crate::kube::Error>,
    },
    /// A unit was applied but some of its objects did not become healthy in time.
    #[cfg(feature = "kube")]
    #[error(
        "{unit} is not healthy after {}s ({} objects): {}",
        timeout.as_secs(),
        failures.len(),
        crate::kube::wait::ObjectFailure::list(failures)
    )]
    Unhealthy {
        /// The unit.
        unit: String,
        /// How long it was given.
        timeout: std::time::Duration,
        /// Every failing object with its last conditions.
        failures: Vec<crate::kube::wait::ObjectFailure>,
    },
    /// The operation was cancelled; nothing was written (by `vendor`) or applied after it.
    #[error("cancelled")]
    Cancelled,
}

fn missing_variables(names: &[String], line: usize) -> String {
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let (verb, has) = if names.len() == 1 {
        ("is", "has")
    } else {
        ("are", "have")
    };
    format!("variable {list} {verb} not set and {has} no default (first used on line {line})")
}
