//! The preflight against the OpenStack cloud: before anything is created, check that the
//! credential in `credentials.yaml` logs in, that the catalog has the services the values need
//! in the region, that everything the values name exists (flavors large enough for their role,
//! an active image, an external network, the key pair, availability zones, security groups,
//! volume types) and that the quotas fit the machines plus one rolling-upgrade surge.
//!
//! `plan --online` runs it, and so can `bootstrap` and `teardown` before their first step:
//! [`preflight_cluster`] for a loaded [`crate::repo::Cluster`], or [`preflight`] for any cloud
//! and values. Problems are data ([`Report::problems`], one line each, naming the values field,
//! what is wrong and what exists instead); [`Error`] is for what stopped the check itself (a
//! malformed `clouds.yaml`, an unreachable endpoint, an unexpected answer).
//!
//! The OpenStack APIs are called with reqwest (rustls with ring) and serde: the few GETs needed
//! here do not justify an SDK crate (`openstack_sdk` generates a module per API call and brings
//! its own client stack; `osauth` sits on an older reqwest).
//!
//! The evaluation is pure ([`Needs::from_values`], [`evaluate`]), unit-tested here; the calls are
//! in `client.rs` and tested against real services in `tests/it/cloud.rs`.

mod check;
mod client;
mod config;
mod needs;

use std::path::PathBuf;
use std::time::Duration;

pub use check::{
    CONTROL_PLANE_MIN, Facts, Flavor, Ident, Image, Network, WORKER_MIN, alternatives, demand,
    evaluate,
};
pub use config::{Auth, CloudConfig, ProjectScope, User};
pub use needs::{Group, GroupRef, ImageRef, Named, Needs, Volume};

/// The cloud of `clouds.yaml` that the chart (and so the preflight) uses.
pub const CLOUD_NAME: &str = "openstack";

/// What stopped the preflight (not a problem of the cloud: those are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `clouds.yaml` lacks a field or has a wrong one.
    #[error("clouds.yaml: field `{field}`: {problem}")]
    Config {
        /// The field, e.g. `clouds.openstack.auth.auth_url`.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The `cacert` file cannot be read.
    #[error("cannot read the cacert file {}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `cacert` file holds no usable PEM certificate.
    #[error("the cacert file {} holds no usable PEM certificate", path.display())]
    CaCertPem {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTPS client")]
    Client {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A request did not get an answer.
    #[error("{service}: GET/POST {url} failed")]
    Request {
        /// The service (identity, compute, ...).
        service: &'static str,
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A service answered with an unexpected status.
    #[error("{service}: {url} answered {status}: {body}")]
    Status {
        /// The service.
        service: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (the service's own message).
        body: String,
    },
    /// A service answered with JSON we cannot read.
    #[error("{service}: {url} answered with an unexpected body")]
    Decode {
        /// The service.
        service: &'static str,
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// One problem: the values (or clouds.yaml) field, and what is wrong with what exists instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, e.g. `controlPlane.machineFlavor` or `clouds.openstack.region_name`.
    pub field: String,
    /// What is wrong, and what exists instead.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One quota and its use, as the service reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// `instances`, `cores`, `ram` (MiB), `ports`, `floating IPs`, `security groups`,
    /// `load balancers`, `volumes` or `volume gigabytes`.
    pub resource: &'static str,
    /// The limit (`None`: unlimited).
    pub limit: Option<u64>,
    /// In use now.
    pub used: u64,
}

/// The project the credential logged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// The preflight's outcome.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The project the credential logged into (none when the login failed).
    pub project: Option<Project>,
    /// The region checked.
    pub region: Option<String>,
    /// The problems found, one line each. Empty: the cloud has what the values need.
    pub problems: Vec<Problem>,
    /// What could not be checked and why (a quota the credential may not read, say).
    pub skipped: Vec<String>,
}

impl Report {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(p) = &self.project {
            writeln!(
                f,
                "project {} ({}), region {}",
                p.name,
                p.id,
                self.region.as_deref().unwrap_or("(any)")
            )?;
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        for s in &self.skipped {
            writeln!(f, "not checked: {s}")?;
        }
        if self.is_ok() {
            writeln!(f, "the cloud has what the values need")?;
        }
        Ok(())
    }
}

/// Settings of a preflight.
#[derive(Debug, Clone)]
pub struct Options {
    /// Timeout of each request.
    pub timeout: Duration,
    /// The folder a relative `cacert` path is taken from (the current folder when `None`).
    pub base_dir: Option<PathBuf>,
    /// The cluster may exist already (a resumed bootstrap, a teardown): check only the login,
    /// the project and the catalog, not the flavors, image, network, key pair or quotas that
    /// creating it needs (its own machines would count against the quotas).
    pub existing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(30),
            base_dir: None,
            existing: false,
        }
    }
}

/// Checks the cloud against the chart values (`data."values.yaml"`, parsed): logs in, reads the
/// catalog, fetches the facts the values need and evaluates them. Problems are in the report;
/// `Err` only when the check itself could not run.
pub async fn preflight(
    cloud: &CloudConfig,
    values: &serde_json::Value,
    options: &Options,
) -> Result<Report, Error> {
    let mut needs = Needs::from_values(values);
    if options.existing {
        needs = needs.for_existing();
    }
    client::run(cloud, &needs, options).await
}

/// [`preflight`] for a cluster folder: the `openstack` cloud of its `credentials.yaml` and its
/// values; a relative `cacert` is taken from the cluster folder.
#[cfg(feature = "repo")]
pub async fn preflight_cluster(
    cluster: &crate::repo::Cluster,
    options: &Options,
) -> Result<Report, Error> {
    let cloud = CloudConfig::from_clouds_yaml(&cluster.credentials.clouds_yaml, CLOUD_NAME)?;
    let mut options = options.clone();
    options
        .base_dir
        .get_or_insert_with(|| cluster.dir.path().to_path_buf());
    preflight(&cloud, &cluster.values.chart, &options).await
}

#[cfg(test)]
mod tests;
