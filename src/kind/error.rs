//! What goes wrong resolving a node image and creating a cluster.

use std::time::Duration;

use super::{API_SERVER_PORT, DockerError, KubeconfigError};

/// No image is pinned for the Kubernetes version asked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "no kindest/node image is pinned for Kubernetes {version}: choose one of {known}, or name a node image explicitly"
)]
pub struct UnknownVersion {
    /// The version asked for.
    pub version: String,
    /// The pinned versions, comma-separated.
    pub known: String,
}

/// What went wrong creating a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The Docker engine could not be reached or refused a request.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The cluster name is not usable as a container name.
    #[error(
        "invalid cluster name {name:?}: use lowercase letters, digits and '-', starting with a letter or digit"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The node image is missing and could not be pulled.
    #[error(
        "cannot pull node image {image} after {attempts} attempts (air-gapped? `docker load` the image and name it by tag as the node image)"
    )]
    Pull {
        /// The image.
        image: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: DockerError,
    },
    /// The host port asked for is taken.
    #[error("port 127.0.0.1:{port} is already in use: free it or choose another API server port")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// No port could be had on 127.0.0.1 for the API server.
    #[error("no free port on 127.0.0.1 for the API server: choose one explicitly")]
    NoFreePort(#[source] std::io::Error),
    /// A container of that name exists but is not this cluster's kind node.
    #[error(
        "a container named {container} exists but is not the kind node of cluster {cluster}: remove it or choose another cluster name"
    )]
    NameTaken {
        /// The container.
        container: String,
        /// The cluster.
        cluster: String,
    },
    /// The existing node has no API server port published on the host.
    #[error(
        "node {container} publishes no host port for {API_SERVER_PORT}/tcp: delete the cluster and create it again"
    )]
    NoPublishedPort {
        /// The container.
        container: String,
    },
    /// systemd in the node did not report the multi-user target in time.
    #[error(
        "node {container} did not boot within {timeout:?} (no systemd 'Multi-User System' line in its log): see `docker logs {container}`"
    )]
    Boot {
        /// The container.
        container: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// The image's `/kind/version` is missing, unreadable or too old.
    #[error(
        "node image {image} reports Kubernetes version {found:?}, which is not a supported version (1.23 or later)"
    )]
    Version {
        /// The image.
        image: String,
        /// What `/kind/version` held.
        found: String,
    },
    /// A step inside the node failed. The cluster is kept for debugging.
    #[error(
        "{step} failed in node {container} (exit code {exit_code}); the cluster is kept for debugging (a rerun continues from it; delete it with `docker rm -f -v {container}` or `kind delete cluster --name {cluster}`); last output:\n{tail}"
    )]
    Step {
        /// The step, e.g. `kubeadm init`.
        step: String,
        /// The node.
        container: String,
        /// The cluster.
        cluster: String,
        /// The command's exit code.
        exit_code: i64,
        /// The last lines of its output.
        tail: String,
    },
    /// The node did not become Ready in time. The cluster is kept.
    #[error(
        "node {container} not Ready after {timeout:?}; the cluster is kept for debugging (a rerun continues from it; delete it with `docker rm -f -v {container}` or `kind delete cluster --name {cluster}`)"
    )]
    NotReady {
        /// The node.
        container: String,
        /// The cluster.
        cluster: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// admin.conf could not be rewritten for the host.
    #[error("cannot make a host kubeconfig from {container}:/etc/kubernetes/admin.conf")]
    Kubeconfig {
        /// The node.
        container: String,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
    /// The CNI manifest could not be templated.
    #[error("cannot template the CNI manifest of node {container}: {message}")]
    Cni {
        /// The node.
        container: String,
        /// Why.
        message: String,
    },
    /// The operation was cancelled; what exists is kept and a rerun continues from it.
    #[error("cancelled")]
    Cancelled,
}
