use std::path::PathBuf;

use ::kube::Client;
use ::kube::config::{Config, KubeConfigOptions, Kubeconfig};

use super::Error;

/// Which kubeconfig and context to use.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A kubeconfig file; `None` reads `KUBECONFIG` (a list, merged) or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// A context in it; `None` uses `current-context`.
    pub context: Option<String>,
}

/// Loads the kubeconfig as kubectl does and builds a client for the chosen context.
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
    let config = Config::from_custom_kubeconfig(kubeconfig, &kc_options)
        .await
        .map_err(|source| Error::Kubeconfig {
            path: options.kubeconfig.clone(),
            source,
        })?;
    let server = config.cluster_url.to_string();
    Client::try_from(config).map_err(|source| Error::Client { server, source })
}
