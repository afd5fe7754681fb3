//! The ephemeral kind cluster, created through the Docker Engine API (no kind binary).
//!
//! [`create`] makes (or reuses) a single-node cluster exactly as kind's docker provider does —
//! the `kind` network, a `<cluster>-control-plane` node container with kind's settings,
//! `kubeadm init` inside it, CNI and storage installed, node Ready — and returns a kubeconfig for
//! the host. [`delete`] removes it with its volumes (and the network when nothing else uses it);
//! [`load_image_archive`] streams a `docker save` tarball into the node's containerd, as
//! `kind load image-archive` does, and [`load_image_files`] streams files (an OCI image layout)
//! into it as one archive; [`CreateOptions::registry`] writes containerd's `hosts.toml` for
//! registry mirrors, as kind's documented `containerdConfigPatches` set-up does. Clusters made here carry kind's container names, labels,
//! network and files, so kind's own commands (`kind get clusters`, `kind delete cluster`) see
//! them, and a cluster kind made is reused here.
//!
//! Deliberate differences from kind: the CNI manifest is applied rather than created (so a rerun
//! after a failure converges), a failed `kubeadm init` is reset and retried on the next run
//! instead of failing for good, and only single-node IPv4 clusters with kind's default subnets
//! are made (what the bootstrap needs).

mod archive;
mod config;
mod delete;
mod docker;
mod engine;
mod error;
mod kubeadm;
mod load;
mod network;
mod node;
mod registry;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, ObserverExt};

pub use archive::{ArchiveContent, ArchiveFile};
pub use config::{
    API_SERVER_PORT, DEFAULT_KUBERNETES_VERSION, KubeconfigError, NODE_IMAGES, node_image_for,
};
pub use delete::{DeleteError, DeleteOptions, Deleted, delete};
pub use docker::{DEFAULT_DOCKER_HOST, DockerError, docker_host};
pub use engine::{
    EngineVersion, ImageAvailability, NodeLog, engine_version, image_availability, node_logs,
};
pub use error::{CreateError, UnknownVersion};
pub use kubeadm::{KubeVersion, KubeadmApi};
pub use load::{LoadError, LoadOptions, Loaded, load_image_archive, load_image_files};
pub use network::NETWORK_NAME;
pub use registry::{
    CERTS_DIR, RegistryCa, RegistryConfig, RegistryError, RegistryMirror, hosts_toml,
};

/// The label kind puts on every node container: its value is the cluster name.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// The label kind puts on every node container: its value is the node's role.
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The cluster name when none is given (`KIND_CLUSTER_NAME` overrides it in the CLI).
pub const DEFAULT_CLUSTER_NAME: &str = "kind";

/// The node image to run: an explicit image wins; otherwise the image
/// pinned for a Kubernetes version (e.g. `KIND_CLUSTER_VERSION`: `1.34`, `v1.34.0`); otherwise
/// the image of [`DEFAULT_KUBERNETES_VERSION`].
pub fn resolve_node_image(
    image: Option<&str>,
    kubernetes_version: Option<&str>,
) -> Result<String, UnknownVersion> {
    if let Some(image) = image.filter(|i| !i.trim().is_empty()) {
        return Ok(image.trim().to_string());
    }
    let version = kubernetes_version
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(DEFAULT_KUBERNETES_VERSION);
    node_image_for(version)
        .map(str::to_string)
        .ok_or_else(|| UnknownVersion {
            version: version.to_string(),
            known: NODE_IMAGES
                .iter()
                .map(|(v, _)| *v)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The name of a cluster's control-plane node container.
pub fn control_plane_name(cluster: &str) -> String {
    format!("{cluster}-control-plane")
}

/// How the node container gets the privileges that running Kubernetes inside it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodePrivileges {
    /// `--privileged`, as kind runs every node. The only setting for real use.
    #[default]
    Privileged,
    /// **Test only.** Not privileged; these capabilities are added instead (e.g. `SYS_ADMIN`,
    /// `NET_ADMIN`). A real kindest/node image does not boot this way: it exists so that tests
    /// can run a stand-in node on hosts where `--privileged` is refused (a capability bounding set
    /// without `CAP_SYS_RESOURCE`, as in some CI sandboxes). Every other setting stays kind's.
    /// Only with the `test-support` feature.
    #[cfg(any(test, feature = "test-support"))]
    TestOnlyCapabilities(Vec<String>),
}

/// Options for [`create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The cluster name (`kind` by default); the node is `<name>-control-plane`.
    pub name: String,
    /// The node image, normally one of [`NODE_IMAGES`] (see [`node_image_for`]).
    pub image: String,
    /// The Docker engine address; `None` uses `DOCKER_HOST` or [`DEFAULT_DOCKER_HOST`].
    pub docker_host: Option<String>,
    /// Longest wait for the engine's answer to one request (connecting included).
    pub docker_timeout: Duration,
    /// The host port for the API server on 127.0.0.1; `None` picks a free one, as kind does.
    pub api_server_port: Option<u16>,
    /// How long to wait for systemd in the node to come up.
    pub boot_timeout: Duration,
    /// How long to wait for the node to become Ready after kubeadm init.
    pub ready_timeout: Duration,
    /// Attempts at pulling the image when it is missing (kind makes 4).
    pub pull_attempts: u32,
    /// Passed to the node's entrypoint as kind passes it (kind reads it from its environment).
    pub containerd_snapshotter: Option<String>,
    /// Proxy settings passed to the node as kind passes its own environment's (see
    /// [`ProxyEnv::from_env`]); empty by default.
    pub proxy: ProxyEnv,
    /// How the node is privileged; leave the default outside tests.
    pub privileges: NodePrivileges,
    /// Registry mirrors for the node's containerd (none by default): written before
    /// `kubeadm init`, and again (unchanged files left alone) when a cluster is reused.
    pub registry: RegistryConfig,
}

/// HTTP proxy settings for the node (its containerd pulls through them), as kind forwards
/// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTP_PROXY`.
    pub http_proxy: Option<String>,
    /// `HTTPS_PROXY`.
    pub https_proxy: Option<String>,
    /// `NO_PROXY`, before the cluster's own addresses are added to it.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (upper case first, then lower case), as
    /// kind does.
    pub fn from_env() -> ProxyEnv {
        let get = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| std::env::var(name.to_lowercase()).ok())
                .filter(|v| !v.is_empty())
        };
        ProxyEnv {
            http_proxy: get("HTTP_PROXY"),
            https_proxy: get("HTTPS_PROXY"),
            no_proxy: get("NO_PROXY"),
        }
    }

    /// The node's environment entries: when a proxy is set, both spellings of each variable,
    /// with `NO_PROXY` extended as kind extends it (the network's subnets, the node's name and
    /// the cluster's service domains) so that in-cluster traffic bypasses the proxy.
    pub(crate) fn node_env(&self, subnets: &[String], node: &str) -> Vec<String> {
        if self.http_proxy.is_none() && self.https_proxy.is_none() {
            return Vec::new();
        }
        let mut no_proxy: Vec<String> = subnets.to_vec();
        no_proxy.extend(self.no_proxy.iter().cloned());
        no_proxy.push(node.to_string());
        no_proxy.extend([".svc", ".svc.cluster", ".svc.cluster.local"].map(String::from));
        let no_proxy = no_proxy.join(",");
        let mut env = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", self.http_proxy.as_deref()),
            ("HTTPS_PROXY", self.https_proxy.as_deref()),
            ("NO_PROXY", Some(no_proxy.as_str())),
        ] {
            if let Some(v) = value {
                env.push(format!("{name}={v}"));
                env.push(format!("{}={v}", name.to_lowercase()));
            }
        }
        env
    }
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            name: DEFAULT_CLUSTER_NAME.to_string(),
            image: node_image_for(DEFAULT_KUBERNETES_VERSION)
                .expect("the default version is pinned")
                .to_string(),
            docker_host: None,
            docker_timeout: docker::DEFAULT_TIMEOUT,
            api_server_port: None,
            boot_timeout: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(300),
            pull_attempts: 4,
            containerd_snapshotter: None,
            proxy: ProxyEnv::default(),
            privileges: NodePrivileges::Privileged,
            registry: RegistryConfig::default(),
        }
    }
}

/// A cluster that [`create`] made or found.
#[derive(Debug, Clone)]
pub struct Created {
    /// The cluster name.
    pub name: String,
    /// The node container's name.
    pub node: String,
    /// The kubeconfig for the host: context, cluster and user `kind-<name>`, server
    /// `https://127.0.0.1:<api_server_port>`. Secret: write it 0600.
    pub kubeconfig: Vec<u8>,
    /// The host port the API server is published on.
    pub api_server_port: u16,
    /// The node's Kubernetes version.
    pub version: KubeVersion,
    /// Whether an existing cluster was reused (`false`: created now).
    pub reused: bool,
}

/// Creates the cluster, or reuses it when its node already exists, and returns its kubeconfig.
///
/// Steps, each skipped when already done (so a rerun after a failure continues): the node image
/// (inspected, pulled only when missing), the `kind` network, the node container (started if
/// stopped), the wait for systemd, the registry mirrors, `/kind/kubeadm.conf`, `kubeadm init`, the control-plane taint
/// removed, the CNI and storage manifests, the node Ready, and admin.conf rewritten for the host.
/// On a failure inside the node the cluster is kept, and the error says how to delete it.
///
/// # Errors
///
/// [`CreateError::InvalidName`] before anything is done; [`CreateError::Docker`] when the
/// engine cannot be reached or refuses a request; [`CreateError::Pull`] when the image cannot
/// be pulled; [`CreateError::PortInUse`] or [`CreateError::NoFreePort`] for the API server
/// port; [`CreateError::NameTaken`] or [`CreateError::NoPublishedPort`] when an existing
/// container is not a usable node of this cluster; [`CreateError::Boot`],
/// [`CreateError::Version`], [`CreateError::Step`], [`CreateError::Cni`],
/// [`CreateError::NotReady`] or [`CreateError::Kubeconfig`] when the node does not come up;
/// [`CreateError::Cancelled`] when `cancel` fired.
#[tracing::instrument(name = "kind_create", level = "info", skip_all, fields(cluster = %options.name))]
pub async fn create(
    options: &CreateOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Created, CreateError> {
    validate_name(&options.name)?;
    let host = docker_host(options.docker_host.as_deref());
    let connect = docker::connect_with_timeout(&host, options.docker_timeout);
    let docker = cancellable(cancel, connect).await??;
    let node = control_plane_name(&options.name);
    let start = Instant::now();

    // A killed earlier run may have left a create request that the engine finishes after it
    // died: a name conflict on create means the node exists now, so look again and reuse it.
    let mut existing = cancellable(cancel, node::find(&docker, &node)).await??;
    if existing.is_none() {
        cancellable(cancel, node::ensure_image(&docker, options, observer)).await??;
        cancellable(cancel, network::ensure(&docker, observer)).await??;
        observer.action(format!("creating node {node}"));
        let (mut conflicts, mut network_gone) = (0, 0);
        loop {
            match create_node(&docker, options, &node).await {
                Ok(()) => {
                    node::wait_for_boot(&docker, &node, 0, options.boot_timeout, observer, cancel)
                        .await?;
                    break;
                }
                // The engine holds the name of a container still being created (or rolled back)
                // for a moment before it can be inspected: look again, then retry.
                Err(e) if node::is_name_conflict(&e) && conflicts < 50 => {
                    conflicts += 1;
                    existing = node::find(&docker, &node).await?;
                    if existing.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) if network::is_gone(&e) && network_gone < 5 => {
                    network_gone += 1;
                    cancellable(cancel, network::ensure(&docker, observer)).await??;
                }
                Err(e) => return Err(e),
            }
        }
    }
    let reused = existing.is_some();
    if let Some(info) = existing {
        if info.cluster.as_deref() != Some(options.name.as_str()) {
            return Err(CreateError::NameTaken {
                container: node,
                cluster: options.name.clone(),
            });
        }
        observer.action(format!("reusing kind cluster {}", options.name));
        if info.image.as_deref() != Some(options.image.as_str()) {
            observer.warning(format!(
                "cluster {} runs image {}, not {}: delete it to change the image",
                options.name,
                info.image.as_deref().unwrap_or("(unknown)"),
                options.image
            ));
        }
        if !info.running {
            observer.action(format!("starting node {node}"));
            let since = unix_now();
            docker
                .start_container(&node, None)
                .await
                .map_err(DockerError::api(format!("start container {node}")))?;
            node::wait_for_boot(
                &docker,
                &node,
                since,
                options.boot_timeout,
                observer,
                cancel,
            )
            .await?;
        }
    }

    let port = node::published_port(&docker, &node).await?.ok_or_else(|| {
        CreateError::NoPublishedPort {
            container: node.clone(),
        }
    })?;
    let version = node::kube_version(&docker, &node, &options.image).await?;
    registry::configure(&docker, &node, &options.name, &options.registry, observer).await?;
    node::provision(&docker, options, &node, version, observer, cancel).await?;

    let admin = docker::exec(&docker, &node, &["cat", "/etc/kubernetes/admin.conf"], None).await?;
    step_ok(options, &node, "read /etc/kubernetes/admin.conf", &admin)?;
    let kubeconfig = config::host_kubeconfig(admin.stdout.as_bytes(), &options.name, port)
        .map_err(|source| CreateError::Kubeconfig {
            container: node.clone(),
            source,
        })?;
    observer.success(
        format!(
            "kind cluster {} ready (Kubernetes {version}, API server https://127.0.0.1:{port})",
            options.name
        ),
        Some(start.elapsed()),
    );
    Ok(Created {
        name: options.name.clone(),
        node,
        kubeconfig,
        api_server_port: port,
        version,
        reused,
    })
}

/// Creates and starts the node container on the requested or a free port.
async fn create_node(
    docker: &bollard::Docker,
    options: &CreateOptions,
    node: &str,
) -> Result<(), CreateError> {
    match options.api_server_port {
        Some(port) => node::create_and_start(docker, options, node, port).await,
        // A port found free can be taken before the engine binds it: try another.
        None => {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match node::create_and_start(docker, options, node, free_port()?).await {
                    Err(CreateError::PortInUse { .. }) if attempts < 3 => continue,
                    other => return other,
                }
            }
        }
    }
}

/// Now in Unix seconds, a second early so that a boot in this same second is not missed.
fn unix_now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_sub(1) as i32)
}

pub(crate) fn validate_name(name: &str) -> Result<(), CreateError> {
    let ok = !name.is_empty()
        && name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(CreateError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// A free port on 127.0.0.1, found as kind finds it: bind port 0 and release it.
fn free_port() -> Result<u16, CreateError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(CreateError::NoFreePort)
}

async fn cancellable<T>(
    cancel: &CancellationToken,
    f: impl Future<Output = T>,
) -> Result<T, CreateError> {
    tokio::select! {
        r = f => Ok(r),
        _ = cancel.cancelled() => Err(CreateError::Cancelled),
    }
}

fn step_ok(
    options: &CreateOptions,
    node: &str,
    step: &str,
    out: &docker::ExecOutput,
) -> Result<(), CreateError> {
    exec_ok(node, &options.name, step, out)
}

/// `Ok` when a command in the node succeeded, else [`CreateError::Step`] with its output's tail.
pub(crate) fn exec_ok(
    node: &str,
    cluster: &str,
    step: &str,
    out: &docker::ExecOutput,
) -> Result<(), CreateError> {
    if out.success() {
        Ok(())
    } else {
        Err(CreateError::Step {
            step: step.to_string(),
            container: node.to_string(),
            cluster: cluster.to_string(),
            exit_code: out.exit_code,
            tail: out.failure_tail(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(control_plane_name("kind"), "kind-control-plane");
        assert!(validate_name("kind").is_ok());
        assert!(validate_name("capi-bootstrap-2").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("Kind").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a b").is_err());
    }

    #[test]
    fn node_image_resolution() {
        assert_eq!(
            resolve_node_image(Some("registry.local/kindest/node:v1.35.0"), Some("1.20")).unwrap(),
            "registry.local/kindest/node:v1.35.0"
        );
        assert!(
            resolve_node_image(None, Some("v1.33"))
                .unwrap()
                .starts_with("kindest/node:v1.33.4@sha256:")
        );
        assert_eq!(
            resolve_node_image(None, None).unwrap(),
            CreateOptions::default().image
        );
        let e = resolve_node_image(Some(" "), Some("1.19.1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no kindest/node image is pinned for Kubernetes 1.19.1: choose one of 1.35.0, 1.34.0, 1.33.4, 1.32.8, 1.31.12, or name a node image explicitly"
        );
    }

    #[test]
    fn proxy_env_is_forwarded_with_no_proxy_extended() {
        assert!(ProxyEnv::default().node_env(&[], "n").is_empty());
        let p = ProxyEnv {
            http_proxy: Some("http://proxy:3128".into()),
            https_proxy: None,
            no_proxy: Some("internal.example".into()),
        };
        let env = p.node_env(&["172.18.0.0/16".into()], "kind-control-plane");
        assert_eq!(
            env,
            [
                "HTTP_PROXY=http://proxy:3128",
                "http_proxy=http://proxy:3128",
                "NO_PROXY=172.18.0.0/16,internal.example,kind-control-plane,.svc,.svc.cluster,.svc.cluster.local",
                "no_proxy=172.18.0.0/16,internal.example,kind-control-plane,.svc,.svc.cluster,.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn defaults_are_kinds() {
        let o = CreateOptions::default();
        assert_eq!(o.name, "kind");
        assert!(o.image.starts_with("kindest/node:v1.35.0@sha256:"));
        assert_eq!(o.privileges, NodePrivileges::Privileged);
        assert_eq!(o.pull_attempts, 4);
    }
}
