//! The node container: kind's settings, booting, and the steps run inside it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::config::{self, API_SERVER_PORT};
use super::docker::{self, DockerError, ExecOutput};
use super::kubeadm::{self, KubeVersion, KubeadmApi, KubeadmData};
use super::network::NETWORK_NAME;
use super::{CLUSTER_LABEL, CreateError, CreateOptions, NodePrivileges, ROLE_LABEL};
use crate::observe::{Observer, ObserverExt};

/// What an existing node container looks like.
pub(crate) struct Found {
    pub cluster: Option<String>,
    pub running: bool,
    pub image: Option<String>,
}

pub(crate) async fn find(docker: &Docker, name: &str) -> Result<Option<Found>, DockerError> {
    match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => Ok(Some(Found {
            image: c.config.as_ref().and_then(|c| c.image.clone()),
            cluster: c
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(CLUSTER_LABEL)),
            running: c.state.and_then(|s| s.running).unwrap_or(false),
        })),
        Err(e) => {
            let e = DockerError::api(format!("inspect container {name}"))(e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// The node image: used when present, else pulled with retries and progress.
pub(crate) async fn ensure_image(
    docker: &Docker,
    options: &CreateOptions,
    observer: &dyn Observer,
) -> Result<(), CreateError> {
    let image = &options.image;
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) => {
            let e = DockerError::api(format!("inspect image {image}"))(e);
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
    }
    let attempts = options.pull_attempts.max(1);
    let mut last = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        observer.action(format!(
            "pulling node image {image} (attempt {attempt}/{attempts})"
        ));
        let request = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = docker.create_image(Some(request), None, None);
        // Per layer: bytes downloaded, bytes in all, done.
        let mut layers: HashMap<String, (u64, u64, bool)> = HashMap::new();
        let mut failed = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let status = info.status.unwrap_or_default();
                    // Layer lines carry the layer id; others (e.g. "Pulling from ...") do not
                    // use one of these statuses.
                    const LAYER: [&str; 8] = [
                        "Pulling fs layer",
                        "Waiting",
                        "Downloading",
                        "Verifying Checksum",
                        "Download complete",
                        "Extracting",
                        "Pull complete",
                        "Already exists",
                    ];
                    let Some(id) = info.id.filter(|_| LAYER.contains(&status.as_str())) else {
                        continue;
                    };
                    let layer = layers.entry(id).or_default();
                    if status == "Downloading"
                        && let Some(detail) = info.progress_detail
                        && let (Some(cur), Some(total)) = (detail.current, detail.total)
                        && total > 0
                    {
                        layer.0 = cur.max(0) as u64;
                        layer.1 = total as u64;
                        let done: u64 = layers.values().map(|v| v.0).sum();
                        let total: u64 = layers.values().map(|v| v.1).sum();
                        observer.progress("node image bytes downloaded", done, Some(total));
                    } else if status == "Pull complete" || status == "Already exists" {
                        layer.2 = true;
                        let done = layers.values().filter(|v| v.2).count() as u64;
                        observer.progress(
                            "node image layers pulled",
                            done,
                            Some(layers.len() as u64),
                        );
                    }
                }
                Err(e) => {
                    failed = Some(DockerError::api(format!("pull image {image}"))(e));
                    break;
                }
            }
        }
        match failed {
            None => {
                observer.success(format!("pulled {image}"), None);
                return Ok(());
            }
            Some(e) => last = Some(e),
        }
    }
    Err(CreateError::Pull {
        image: image.clone(),
        attempts,
        source: last.expect("at least one attempt"),
    })
}

/// The settings kind adds depending on the engine (`docker info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EngineQuirks {
    /// userns-remap is on: the node runs in the host's user namespace (`--userns=host`).
    pub userns_host: bool,
    /// btrfs/ZFS/devicemapper storage (or a btrfs/xfs/ZFS backing filesystem): the node needs
    /// `/dev/mapper` (`--volume /dev/mapper:/dev/mapper`).
    pub dev_mapper: bool,
    /// Rootless engine: `/dev/fuse` for fuse-overlayfs (`--device /dev/fuse`).
    pub dev_fuse: bool,
}

impl EngineQuirks {
    /// Reads them from `docker info` as kind does.
    pub fn from_info(info: &bollard::models::SystemInfo) -> EngineQuirks {
        let security = info.security_options.clone().unwrap_or_default();
        let driver = info.driver.clone().unwrap_or_default().to_lowercase();
        let backing = info
            .driver_status
            .iter()
            .flatten()
            .find(|kv| kv.first().map(String::as_str) == Some("Backing Filesystem"))
            .and_then(|kv| kv.get(1))
            .map(|v| v.to_lowercase())
            .unwrap_or_default();
        EngineQuirks {
            userns_host: security.iter().any(|o| o.contains("name=userns")),
            dev_mapper: matches!(driver.as_str(), "btrfs" | "zfs" | "devicemapper")
                || matches!(backing.as_str(), "btrfs" | "xfs" | "zfs"),
            dev_fuse: security.iter().any(|o| o.contains("name=rootless")),
        }
    }
}

/// kind's `docker run` flags for a control-plane node, as the Engine API's create body.
pub(crate) fn container_body(
    options: &CreateOptions,
    quirks: EngineQuirks,
    subnets: &[String],
    node: &str,
    host_port: u16,
) -> ContainerCreateBody {
    let mut labels = HashMap::new();
    labels.insert(CLUSTER_LABEL.to_string(), options.name.clone());
    labels.insert(ROLE_LABEL.to_string(), "control-plane".to_string());
    let mut env = Vec::new();
    // kind passes `-e KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER`: set only when kind's own
    // environment has it.
    if let Some(s) = &options.containerd_snapshotter {
        env.push(format!("KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER={s}"));
    }
    env.extend(options.proxy.node_env(subnets, node));
    env.push("KUBECONFIG=/etc/kubernetes/admin.conf".to_string());
    let port_key = format!("{API_SERVER_PORT}/tcp");
    let mut tmpfs = HashMap::new();
    tmpfs.insert("/tmp".to_string(), String::new());
    tmpfs.insert("/run".to_string(), String::new());
    let (privileged, cap_add) = match &options.privileges {
        NodePrivileges::Privileged => (true, None),
        #[cfg(any(test, feature = "test-support"))]
        NodePrivileges::TestOnlyCapabilities(caps) => (false, Some(caps.clone())),
    };
    let mut endpoints = HashMap::new();
    endpoints.insert(NETWORK_NAME.to_string(), EndpointSettings::default());
    let mut binds = vec!["/lib/modules:/lib/modules:ro".to_string()];
    if quirks.dev_mapper {
        binds.push("/dev/mapper:/dev/mapper".to_string());
    }
    ContainerCreateBody {
        hostname: Some(node.to_string()),
        image: Some(options.image.clone()),
        labels: Some(labels),
        env: Some(env),
        tty: Some(true),
        volumes: Some(vec!["/var".to_string()]),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            privileged: Some(privileged),
            cap_add,
            security_opt: Some(vec![
                "seccomp=unconfined".to_string(),
                "apparmor=unconfined".to_string(),
            ]),
            tmpfs: Some(tmpfs),
            binds: Some(binds),
            userns_mode: quirks.userns_host.then(|| "host".to_string()),
            devices: quirks.dev_fuse.then(|| {
                vec![bollard::models::DeviceMapping {
                    path_on_host: Some("/dev/fuse".to_string()),
                    path_in_container: Some("/dev/fuse".to_string()),
                    cgroup_permissions: Some("rwm".to_string()),
                }]
            }),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(1),
            }),
            init: Some(false),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            network_mode: Some(NETWORK_NAME.to_string()),
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(host_port.to_string()),
                }]),
            )])),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    }
}

fn is_port_in_use(e: &DockerError) -> bool {
    e.server_error().is_some_and(|(_, m)| {
        m.contains("port is already allocated") || m.contains("address already in use")
    })
}

pub(crate) async fn create_and_start(
    docker: &Docker,
    options: &CreateOptions,
    node: &str,
    host_port: u16,
) -> Result<(), CreateError> {
    let info = docker
        .info()
        .await
        .map_err(DockerError::api("read the engine's info"))?;
    let subnets = super::network::subnets(docker).await?;
    let body = container_body(
        options,
        EngineQuirks::from_info(&info),
        &subnets,
        node,
        host_port,
    );
    let create = CreateContainerOptionsBuilder::default().name(node).build();
    docker
        .create_container(Some(create), body)
        .await
        .map_err(DockerError::api(format!("create container {node}")))?;
    if let Err(e) = docker.start_container(node, None).await {
        let e = DockerError::api(format!("start container {node}"))(e);
        // A node that never started holds nothing worth keeping; remove it so a rerun starts
        // afresh instead of reusing it.
        let rm = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let _ = docker.remove_container(node, Some(rm)).await;
        if is_port_in_use(&e) {
            return Err(CreateError::PortInUse { port: host_port });
        }
        return Err(e.into());
    }
    Ok(())
}

/// Whether creating the node failed because a container of that name exists already.
pub(crate) fn is_name_conflict(e: &CreateError) -> bool {
    matches!(e, CreateError::Docker(d) if matches!(d.server_error(), Some((409, _))))
}

/// Whether a log line says the node is ready for `docker exec` (kind's pattern: systemd reached
/// the multi-user target, or the entrypoint detected cgroup v1).
pub(crate) fn is_boot_line(line: &str) -> bool {
    (line.contains("Reached target") && line.contains("Multi-User System"))
        || line.contains("detected cgroup v1")
}

/// Follows the node's log until systemd reports the multi-user target.
///
/// `since` (Unix seconds) skips the log of earlier boots when a stopped node is started again.
pub(crate) async fn wait_for_boot(
    docker: &Docker,
    node: &str,
    since: i32,
    timeout: Duration,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), CreateError> {
    observer.waiting(format!("node {node} to boot"), None);
    let logs = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let mut stream = docker.logs(node, Some(logs));
    let follow = async {
        let mut pending = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(DockerError::api(format!("read logs of {node}")))?;
            pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(i) = pending.find('\n') {
                if is_boot_line(&pending[..i]) {
                    return Ok(true);
                }
                pending.drain(..=i);
            }
            if is_boot_line(&pending) {
                return Ok(true);
            }
        }
        Ok::<_, CreateError>(false)
    };
    let booted = tokio::select! {
        r = tokio::time::timeout(timeout, follow) => matches!(r, Ok(Ok(true))) || match r {
            Ok(Err(e)) => return Err(e),
            _ => false,
        },
        _ = cancel.cancelled() => return Err(CreateError::Cancelled),
    };
    if booted {
        Ok(())
    } else {
        Err(CreateError::Boot {
            container: node.to_string(),
            timeout,
        })
    }
}

/// The host port the node's API server port is published on.
pub(crate) async fn published_port(
    docker: &Docker,
    node: &str,
) -> Result<Option<u16>, DockerError> {
    let c = docker
        .inspect_container(node, None::<InspectContainerOptions>)
        .await
        .map_err(DockerError::api(format!("inspect container {node}")))?;
    let key = format!("{API_SERVER_PORT}/tcp");
    let from_state = c
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .and_then(|p| p.get(&key).cloned().flatten());
    let from_config = c
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .and_then(|p| p.get(&key).cloned().flatten());
    Ok(from_state
        .into_iter()
        .chain(from_config)
        .flatten()
        .filter_map(|b| b.host_port.and_then(|p| p.parse().ok()))
        .find(|p| *p != 0))
}

/// The node's IPv4 address on the `kind` network.
async fn node_address(docker: &Docker, node: &str) -> Result<String, DockerError> {
    let c = docker
        .inspect_container(node, None::<InspectContainerOptions>)
        .await
        .map_err(DockerError::api(format!("inspect container {node}")))?;
    Ok(c.network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove(NETWORK_NAME))
        .and_then(|e| e.ip_address)
        .unwrap_or_default())
}

/// The Kubernetes version the node image carries, from `/kind/version` as kind reads it.
pub(crate) async fn kube_version(
    docker: &Docker,
    node: &str,
    image: &str,
) -> Result<KubeVersion, CreateError> {
    let out = docker::exec(docker, node, &["cat", "/kind/version"], None).await?;
    let found = out.stdout.trim().to_string();
    KubeVersion::parse(&found)
        .filter(|v| KubeadmApi::for_version(*v).is_some())
        .ok_or(CreateError::Version {
            image: image.to_string(),
            found,
        })
}

const KUBECTL: &str = "kubectl";
const ADMIN: &str = "--kubeconfig=/etc/kubernetes/admin.conf";

async fn run(
    docker: &Docker,
    options: &CreateOptions,
    node: &str,
    step: &str,
    cmd: &[&str],
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, CreateError> {
    let out = docker::exec(docker, node, cmd, stdin).await?;
    super::step_ok(options, node, step, &out)?;
    Ok(out)
}

/// [`run`] again every second while it fails, until `options.ready_timeout`: after a node
/// restart the API server takes a while to answer, and these steps converge when repeated.
async fn run_retrying(
    docker: &Docker,
    options: &CreateOptions,
    node: &str,
    step: &str,
    cmd: &[&str],
    stdin: Option<&[u8]>,
    cancel: &CancellationToken,
) -> Result<ExecOutput, CreateError> {
    let started = Instant::now();
    loop {
        match run(docker, options, node, step, cmd, stdin).await {
            Err(CreateError::Step { .. }) if started.elapsed() < options.ready_timeout => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = cancel.cancelled() => return Err(CreateError::Cancelled),
                }
            }
            other => return other,
        }
    }
}

async fn node_ready(docker: &Docker, node: &str) -> Result<bool, DockerError> {
    let out = docker::exec(
        docker,
        node,
        &[
            KUBECTL,
            "--request-timeout=1s",
            ADMIN,
            "get",
            "nodes",
            "--selector=node-role.kubernetes.io/control-plane",
            "-o=jsonpath='{.items..status.conditions[-1:].status}'",
        ],
        None,
    )
    .await?;
    let statuses: Vec<&str> = out.stdout.split_whitespace().collect();
    Ok(out.success() && !statuses.is_empty() && statuses.iter().all(|s| s.contains("True")))
}

/// Everything after the node booted, each step skipped when done: kubeadm config and init,
/// taint removal, CNI, storage, and the wait for Ready.
pub(crate) async fn provision(
    docker: &Docker,
    options: &CreateOptions,
    node: &str,
    version: KubeVersion,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), CreateError> {
    let initialized = docker::exec(
        docker,
        node,
        &["test", "-f", "/etc/kubernetes/admin.conf"],
        None,
    )
    .await?
    .success();
    if initialized && node_ready(docker, node).await? {
        return Ok(());
    }
    if cancel.is_cancelled() {
        return Err(CreateError::Cancelled);
    }
    if !initialized {
        let address = node_address(docker, node).await?;
        let kubeadm = kubeadm::kubeadm_config(&KubeadmData {
            cluster_name: &options.name,
            version,
            node_name: node,
            node_address: &address,
        })
        .expect("version checked when read");
        // An earlier attempt that failed part-way leaves state behind: reset it first.
        let earlier = docker::exec(docker, node, &["test", "-f", "/kind/kubeadm.conf"], None)
            .await?
            .success();
        if earlier {
            observer.action(format!("resetting the failed kubeadm init in {node}"));
            run(
                docker,
                options,
                node,
                "kubeadm reset",
                &["kubeadm", "reset", "--force"],
                None,
            )
            .await?;
        }
        docker::copy_files(
            docker,
            node,
            "/kind",
            &[("kubeadm.conf", kubeadm.as_bytes(), 0o644)],
        )
        .await?;
        observer.action(format!(
            "starting Kubernetes {version} in {node} (kubeadm init)"
        ));
        let started = Instant::now();
        let init = async {
            run(
                docker,
                options,
                node,
                "kubeadm init",
                &[
                    "kubeadm",
                    "init",
                    "--config=/kind/kubeadm.conf",
                    "--skip-token-print",
                    "--v=6",
                ],
                None,
            )
            .await
        };
        tokio::select! {
            r = init => { r?; }
            _ = cancel.cancelled() => return Err(CreateError::Cancelled),
        }
        observer.success("kubeadm init", Some(started.elapsed()));
    }

    // A single node runs workloads, so the control-plane taint goes (and the older master one
    // before 1.25). Tolerate "not found" so that reruns converge.
    let mut taints = vec!["node-role.kubernetes.io/control-plane-"];
    if version < KubeVersion::parse("1.25.0").expect("literal") {
        taints.push("node-role.kubernetes.io/master-");
    }
    for taint in taints {
        let started = Instant::now();
        loop {
            let out = docker::exec(
                docker,
                node,
                &[KUBECTL, ADMIN, "taint", "nodes", "--all", taint],
                None,
            )
            .await?;
            if out.success() || out.output.contains("not found") {
                break;
            }
            if started.elapsed() >= options.ready_timeout {
                super::step_ok(options, node, "remove the control-plane taint", &out)?;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => return Err(CreateError::Cancelled),
            }
        }
    }

    observer.action("installing CNI");
    let cni = run(
        docker,
        options,
        node,
        "read the CNI manifest",
        &["cat", "/kind/manifests/default-cni.yaml"],
        None,
    )
    .await?;
    let endpoint = format!("{node}:{API_SERVER_PORT}");
    let cni = config::template_cni(&cni.stdout, &endpoint).map_err(|message| CreateError::Cni {
        container: node.to_string(),
        message,
    })?;
    // kind creates; apply converges when a rerun finds it installed already.
    // kubectl apply of a manifest in the node, retried as `run_retrying` retries.
    let apply = async |step: &str, manifest: &str| {
        let cmd = [KUBECTL, ADMIN, "apply", "-f", "-"];
        run_retrying(
            docker,
            options,
            node,
            step,
            &cmd,
            Some(manifest.as_bytes()),
            cancel,
        )
        .await
    };
    apply("install CNI", &cni).await?;

    observer.action("installing StorageClass");
    let storage = docker::exec(
        docker,
        node,
        &["cat", "/kind/manifests/default-storage.yaml"],
        None,
    )
    .await?;
    let storage = if storage.success() {
        storage.stdout
    } else {
        observer
            .warning("node image has no storage manifest, installing kind's legacy StorageClass");
        config::LEGACY_STORAGE_MANIFEST.to_string()
    };
    apply("install StorageClass", &storage).await?;

    let started = Instant::now();
    let mut polls: u32 = 0;
    loop {
        if node_ready(docker, node).await? {
            observer.success(format!("node {node} Ready"), Some(started.elapsed()));
            return Ok(());
        }
        if started.elapsed() >= options.ready_timeout {
            return Err(CreateError::NotReady {
                container: node.to_string(),
                cluster: options.name.clone(),
                timeout: options.ready_timeout,
            });
        }
        // Say so now and then, not on every poll.
        if polls.is_multiple_of(10) {
            observer.waiting(format!("node {node} Ready"), None);
        }
        polls += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = cancel.cancelled() => return Err(CreateError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_lines() {
        assert!(is_boot_line(
            "[  OK  ] Reached target \u{1b}[0;1;39mMulti-User System\u{1b}[0m."
        ));
        assert!(is_boot_line("INFO: detected cgroup v1"));
        assert!(!is_boot_line("Reached target Basic System"));
    }

    #[test]
    fn container_body_has_kinds_settings() {
        let o = CreateOptions::default();
        let b = container_body(
            &o,
            EngineQuirks::default(),
            &[],
            "kind-control-plane",
            40000,
        );
        let h = b.host_config.unwrap();
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.cap_add, None);
        assert_eq!(h.init, Some(false));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.hostname.as_deref(), Some("kind-control-plane"));
        let o = CreateOptions {
            privileges: NodePrivileges::TestOnlyCapabilities(vec!["SYS_ADMIN".into()]),
            ..CreateOptions::default()
        };
        let h = container_body(&o, EngineQuirks::default(), &[], "n", 1)
            .host_config
            .unwrap();
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.cap_add, Some(vec!["SYS_ADMIN".to_string()]));
        assert_eq!(h.userns_mode, None);
        assert_eq!(h.devices, None);
        let quirks = EngineQuirks {
            userns_host: true,
            dev_mapper: true,
            dev_fuse: true,
        };
        let h = container_body(&o, quirks, &[], "n", 1).host_config.unwrap();
        assert_eq!(h.userns_mode.as_deref(), Some("host"));
        assert!(
            h.binds
                .unwrap()
                .contains(&"/dev/mapper:/dev/mapper".to_string())
        );
        assert_eq!(
            h.devices.unwrap()[0].path_on_host.as_deref(),
            Some("/dev/fuse")
        );
    }

    #[test]
    fn engine_quirks_from_docker_info() {
        let info = bollard::models::SystemInfo {
            driver: Some("overlay2".into()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
            security_options: Some(vec!["name=seccomp,profile=default".into()]),
            ..Default::default()
        };
        assert_eq!(EngineQuirks::from_info(&info), EngineQuirks::default());
        let info = bollard::models::SystemInfo {
            driver: Some("overlay2".into()),
            driver_status: Some(vec![vec!["Backing Filesystem".into(), "xfs".into()]]),
            security_options: Some(vec!["name=userns".into(), "name=rootless".into()]),
            ..Default::default()
        };
        let q = EngineQuirks::from_info(&info);
        assert!(q.dev_mapper && q.userns_host && q.dev_fuse);
        let info = bollard::models::SystemInfo {
            driver: Some("btrfs".into()),
            ..Default::default()
        };
        assert!(EngineQuirks::from_info(&info).dev_mapper);
    }
}
