use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use ::kube::Client;
use ::kube::config::{Config, KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

use super::proxy::ProxyEnv;
use super::{Error, RequestError};

/// How long connecting to an API server may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an API server may take to answer one request by default. Long enough for the
/// slowest request the library makes (a large list, an apply behind slow webhooks); it makes no
/// watch requests.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Which kubeconfig and context to use, and how long to wait for the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A kubeconfig file; `None` reads `KUBECONFIG` (a list, merged) or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// A context in it; `None` uses `current-context`.
    pub context: Option<String>,
    /// Longest wait for a connection to the server (TCP and TLS); `None`: no limit.
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the server's answer to one request; `None`: no limit.
    pub read_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            kubeconfig: None,
            context: None,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
        }
    }
}

/// Loads the kubeconfig as kubectl does and builds a client for the chosen context.
///
/// # Errors
/// [`Error::Kubeconfig`] when the kubeconfig cannot be read or has no usable context, and
/// [`Error::Client`] when no client can be built from it (e.g. a bad certificate).
pub async fn connect(options: &ClientOptions) -> Result<Client, Error> {
    let kubeconfig = match &options.kubeconfig {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    }
    .map_err(|source| Error::Kubeconfig {
        path: options.kubeconfig.clone(),
        source,
    })?;
    let kc_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let explicit_proxy = cluster_proxy_url(&kubeconfig, options.context.as_deref());
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &kc_options)
        .await
        .map_err(|source| Error::Kubeconfig {
            path: options.kubeconfig.clone(),
            source,
        })?;
    // kube reads HTTPS_PROXY but matches NO_PROXY against the proxy's address; decide as
    // kubectl does instead (see super::proxy).
    config.proxy_url = match explicit_proxy {
        Some(url) => Some(url),
        None => {
            let url = &config.cluster_url;
            let scheme = url.scheme_str().unwrap_or("https");
            let port = url
                .port_u16()
                .unwrap_or(if scheme == "http" { 80 } else { 443 });
            match ProxyEnv::from_process().proxy_for(scheme, url.host().unwrap_or_default(), port) {
                Some(p) => Some(
                    p.parse::<::http::Uri>()
                        .map_err(|source| Error::Proxy { value: p, source })?,
                ),
                None => None,
            }
        }
    };
    config.connect_timeout = options.connect_timeout;
    config.read_timeout = options.read_timeout;
    // The read timeout counts from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = options.read_timeout.is_some();
    let server = config.cluster_url.to_string();
    Client::try_from(config).map_err(|source| Error::Client { server, source })
}

/// The `proxy-url` of the cluster the context (or `current-context`) names, if it has one.
fn cluster_proxy_url(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<::http::Uri> {
    let context = context.or(kubeconfig.current_context.as_deref())?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .as_deref()
        .filter(|u| !u.is_empty())?
        .parse()
        .ok()
}

/// Runs one request until the server answers or `cancel` fires. A cancelled request is
/// dropped, which closes its connection, and reported as [`RequestError::Cancelled`]: Ctrl-C
/// reaches a request whose server accepted the connection and never answers.
pub async fn until_cancelled<T>(
    cancel: &CancellationToken,
    request: impl Future<Output = Result<T, ::kube::Error>>,
) -> Result<T, RequestError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(RequestError::Cancelled),
        r = request => r.map_err(RequestError::from),
    }
}
