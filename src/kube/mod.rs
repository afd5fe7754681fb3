//! Talking to Kubernetes: kubeconfig and client, cached discovery, server-side apply of object
//! bundles in dependency order, and composable wait conditions.

mod apply;
mod client;
mod discovery;
mod proxy;
pub mod wait;

pub use apply::{Applied, ApplyOptions, ApplyReport, apply};
pub use client::{
    ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, connect, until_cancelled,
};
pub use discovery::{Discovery, Resource};
pub use proxy::{ProxyEnv, bypass};

use std::path::PathBuf;
use std::time::Duration;

use crate::manifest::{Gvk, Origin};

/// The field manager capi-manage applies with.
pub const FIELD_MANAGER: &str = "capi-manage";

/// A request the API server answered with an error, or that never reached it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server refused the request; `message` is the server's own words.
    #[error("{message} (HTTP {code}, {reason})")]
    Server {
        /// HTTP status code.
        code: u16,
        /// Machine-readable reason, e.g. `Invalid`, `NotFound`.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The request failed before the server answered (connection, TLS, decoding).
    #[error("request failed")]
    Transport(#[source] ::kube::Error),
    /// The request was dropped unanswered because the operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl RequestError {
    /// Whether retrying can help: throttling, server errors and transport failures.
    pub fn is_transient(&self) -> bool {
        match self {
            RequestError::Server { code, .. } => *code == 429 || *code >= 500,
            RequestError::Transport(e) => !matches!(
                e,
                ::kube::Error::SerdeError(_) | ::kube::Error::BuildRequest(_)
            ),
            RequestError::Cancelled => false,
        }
    }

    /// Whether the request was cancelled (see [`until_cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RequestError::Cancelled)
    }

    /// Whether the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RequestError::Server { code: 404, .. })
    }
}

impl From<::kube::Error> for RequestError {
    fn from(e: ::kube::Error) -> Self {
        match e {
            ::kube::Error::Api(s) => RequestError::Server {
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            other => RequestError::Transport(other),
        }
    }
}

/// What went wrong talking to a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kubeconfig could not be read or does not yield a usable configuration.
    #[error("cannot load kubeconfig {}", path.as_ref().map_or_else(|| "from KUBECONFIG or ~/.kube/config".to_string(), |p| p.display().to_string()))]
    Kubeconfig {
        /// The file, when one was given explicitly.
        path: Option<PathBuf>,
        /// Why.
        #[source]
        source: ::kube::config::KubeconfigError,
    },
    /// `HTTPS_PROXY` or `HTTP_PROXY` holds no URL.
    #[error("the proxy `{value}` (HTTPS_PROXY or HTTP_PROXY) is not a URL")]
    Proxy {
        /// The variable's value.
        value: String,
        /// Why.
        #[source]
        source: ::http::uri::InvalidUri,
    },
    /// A client could not be built from the configuration.
    #[error("cannot build a Kubernetes client for {server}")]
    Client {
        /// The cluster's URL.
        server: String,
        /// Why.
        #[source]
        source: ::kube::Error,
    },
    /// Discovery of an API group version failed.
    #[error("cannot discover API resources of {api_version}")]
    Discovery {
        /// The group version, e.g. `apps/v1`.
        api_version: String,
        /// Why.
        #[source]
        source: RequestError,
    },
    /// Objects of kinds the server does not serve and no CRD in the bundle defines.
    #[error("{}", unknown_kinds_message(.kinds))]
    UnknownKinds {
        /// Each unknown kind with the first object that uses it.
        kinds: Vec<(Gvk, Origin)>,
    },
    /// The server refused or failed a request about one object.
    #[error("{action} {identity} from {origin}")]
    Object {
        /// What was being done: `applying`, `reading`, `deleting`...
        action: &'static str,
        /// `Kind namespace/name`.
        identity: String,
        /// Where the object came from.
        origin: Origin,
        /// The server's answer.
        #[source]
        source: RequestError,
    },
    /// A wait ended without the condition being met.
    #[error("timed out after {}s waiting for {what}{}", timeout.as_secs(), last.as_ref().map(|l| format!(": last seen {l}")).unwrap_or_default())]
    Timeout {
        /// What was awaited, e.g. `Deployment ns/name available`.
        what: String,
        /// How long it waited.
        timeout: Duration,
        /// The object's last state (conditions), if it was ever seen.
        last: Option<String>,
    },
    /// A wait saw the object fail for good (e.g. a Deployment's progress deadline exceeded).
    #[error("{what} failed: {reason}")]
    Failed {
        /// What was awaited.
        what: String,
        /// Why it cannot succeed.
        reason: String,
    },
    /// A request about something other than a manifest object failed.
    #[error("cannot read {what} from the cluster")]
    Request {
        /// What was read, e.g. `Secret capi-system/cluster-kubeconfig`.
        what: String,
        /// The server's answer, or why there was none.
        #[source]
        source: RequestError,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}

fn unknown_kinds_message(kinds: &[(Gvk, Origin)]) -> String {
    let (gvk, origin) = &kinds[0];
    let more = if kinds.len() > 1 {
        format!(" (and {} more unknown kinds)", kinds.len() - 1)
    } else {
        String::new()
    };
    format!(
        "unknown kind `{}` (apiVersion {}) in {origin}: the server does not serve it and no CRD in the bundle defines it; install its CRD first or fix apiVersion/kind{more}; nothing was applied",
        gvk.kind,
        gvk.api_version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_server_errors_and_transport_failures_are_transient() {
        let server = |code: u16| RequestError::Server {
            code,
            reason: String::new(),
            message: String::new(),
        };
        assert!(server(429).is_transient());
        assert!(server(500).is_transient());
        assert!(server(503).is_transient());
        assert!(!server(422).is_transient());
        assert!(!server(404).is_transient());
        assert!(server(404).is_not_found());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(RequestError::Transport(::kube::Error::ReadEvents(io)).is_transient());
    }
}
