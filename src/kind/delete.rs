//! Deleting a kind cluster: its node containers with their volumes, and the `kind` network
//! when nothing else uses it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};

use super::docker::{self, DockerError, docker_host};
use super::{CLUSTER_LABEL, DEFAULT_CLUSTER_NAME, network, node};
use crate::observe::{Observer, ObserverExt};

/// Options for [`delete`].
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    /// The cluster name.
    pub name: String,
    /// The Docker engine address; `None` uses `DOCKER_HOST` or [`DEFAULT_DOCKER_HOST`](super::DEFAULT_DOCKER_HOST).
    pub docker_host: Option<String>,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        DeleteOptions {
            name: DEFAULT_CLUSTER_NAME.to_string(),
            docker_host: None,
        }
    }
}

/// What [`delete`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The node containers removed (none when the cluster did not exist).
    pub containers: Vec<String>,
    /// Whether the `kind` network was removed (it is kept while other containers use it).
    pub network_removed: bool,
}

/// What went wrong deleting a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// The Docker engine could not be reached or refused a request.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Deletes every node container of the cluster with its anonymous volumes (kind's `/var`), then
/// the `kind` network when no container is attached to it any more. Deleting a cluster that does
/// not exist succeeds and removes nothing.
pub async fn delete(
    options: &DeleteOptions,
    observer: &dyn Observer,
) -> Result<Deleted, DeleteError> {
    let host = docker_host(options.docker_host.as_deref());
    let docker = docker::connect(&host).await?;
    let start = Instant::now();
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("{CLUSTER_LABEL}={}", options.name)],
    );
    let list = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(list))
        .await
        .map_err(DockerError::api("list kind node containers"))?;
    let mut deleted = Deleted::default();
    for c in containers {
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .or(c.id)
            .unwrap_or_default();
        observer.action(format!("deleting node {name}"));
        let rm = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(&name, Some(rm)).await {
            Ok(()) => deleted.containers.push(name),
            Err(e) => {
                let e = DockerError::api(format!("remove container {name}"))(e);
                if e.is_not_found() {
                    continue;
                }
                // A killed earlier delete left the engine removing it: wait until it is gone.
                if !matches!(e.server_error(), Some((409, _))) {
                    return Err(e.into());
                }
                let mut gone = false;
                for _ in 0..150 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if node::find(&docker, &name).await?.is_none() {
                        gone = true;
                        break;
                    }
                }
                if !gone {
                    return Err(e.into());
                }
                deleted.containers.push(name);
            }
        }
    }
    deleted.network_removed = network::remove_if_unused(&docker).await?;
    if !deleted.containers.is_empty() {
        observer.success(
            format!("deleted kind cluster {}", options.name),
            Some(start.elapsed()),
        );
    }
    Ok(deleted)
}
