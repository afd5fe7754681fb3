//! Docker for the kind tests: the real engine (dockerd from Debian's docker.io), a stand-in
//! kindest/node image, and a relay that lets the stand-in node's API server port reach a real
//! test control plane.
//!
//! Why a stand-in: no image can be pulled here and `--privileged` is refused (the capability
//! bounding set lacks CAP_SYS_RESOURCE), so a real kindest/node cannot boot. The stand-in is
//! `docker import`ed from busybox-static plus small shell scripts that play the parts kind talks
//! to inside the node — systemd's boot line, `kubeadm`, `kubectl`, `containerd` and `ctr` — and
//! record what they were asked. Everything else (network, container settings, exec with exit
//! codes and output, file copy, logs, port publishing, delete) is the real engine.
//!
//! The stand-in's API server: the node's 6443 is published on 127.0.0.1:<port> by Docker as for
//! a real node; inside the node, busybox `nc` forwards 6443 to the `kind` network's gateway,
//! where [`Relay`] (a few lines of tokio) forwards to the test control plane's kube-apiserver on
//! 127.0.0.1. TLS runs end to end between the client on the host and the real apiserver, whose
//! certificate is valid for 127.0.0.1 — the address our rewritten kubeconfig uses.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptionsBuilder, InspectNetworkOptions};
use futures::StreamExt;

/// The engine's socket the tests use.
pub const SOCKET: &str = "/var/run/docker.sock";

/// `unix://` address of [`SOCKET`].
pub fn docker_host() -> String {
    format!("unix://{SOCKET}")
}

/// Capabilities the stand-in node gets instead of `--privileged` (test only).
pub fn test_capabilities() -> Vec<String> {
    vec!["SYS_ADMIN".into(), "NET_ADMIN".into()]
}

/// Connects to dockerd, starting it through `scripts/prereqs/kind.sh` when its socket does not
/// answer; panics naming the fix when that fails.
pub async fn engine() -> Docker {
    if let Some(d) = try_connect().await {
        return d;
    }
    let script = super::project_root().join("scripts/prereqs/kind.sh");
    // dockerd outlives the test: it must not inherit the test's open files (a
    // `flock /work/docker.lock` around the test run would stay held by dockerd for ever).
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script);
    // SAFETY: close_range is async-signal-safe; the closure allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let out = cmd.output();
    if let Some(d) = try_connect().await {
        return d;
    }
    panic!(
        "no Docker engine answers on {SOCKET} and {} could not start one ({}): run `sudo scripts/prereqs/kind.sh` (installs docker.io and busybox-static, starts dockerd)",
        script.display(),
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        }
    );
}

async fn try_connect() -> Option<Docker> {
    let d = Docker::connect_with_unix(SOCKET, 120, bollard::API_DEFAULT_VERSION).ok()?;
    d.negotiate_version().await.ok()
}

/// How the stand-in node behaves.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// What `/kind/version` says.
    pub kube_version: String,
    /// `kubeadm init` fails once (output 40 numbered lines and an error), then works.
    pub kubeadm_fails_once: bool,
    /// The node never reports Ready.
    pub never_ready: bool,
    /// The API server the stand-in's admin.conf names: CA PEM and bearer token.
    pub ca_pem: String,
    /// Bearer token in admin.conf.
    pub token: String,
}

impl Default for StandIn {
    fn default() -> Self {
        StandIn {
            kube_version: "v1.35.0".into(),
            kubeadm_fails_once: false,
            never_ready: false,
            ca_pem: "-----BEGIN CERTIFICATE-----\nnot a real CA\n-----END CERTIFICATE-----\n"
                .into(),
            token: "no-api-server".into(),
        }
    }
}

/// A built stand-in node image, removed from the engine on drop (drop it after the clusters
/// that run it).
pub struct StandInImage {
    /// Its reference.
    pub image: String,
    /// The port the node forwards 6443 to on the `kind` network's gateway.
    pub relay_port: u16,
}

impl Drop for StandInImage {
    fn drop(&mut self) {
        remove_image_now(&self.image, true);
    }
}

/// Removes `image` from the engine (`force`: with its other names too), from a drop: on a
/// thread of its own, since a drop may run inside a runtime.
fn remove_image_now(image: &str, force: bool) {
    let image = image.to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Some(d) = try_connect().await {
                let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
                    .force(force)
                    .build();
                let _ = d.remove_image(&image, Some(options), None).await;
            }
        });
    })
    .join();
}

const ENTRYPOINT: &str = r#"#!/bin/sh
# Stand-in for kind's entrypoint + systemd: forward the API server port, say systemd is up.
echo "INFO: stand-in kind node (busybox), not a real kindest/node"
gw=$(ip route | awk '/^default/ {print $3}')
nc -ll -p 6443 -e nc "$gw" "$(cat /kind/stand-in/relay-port)" &
echo "[  OK  ] Reached target Multi-User System."
exec sleep 2147483647
"#;

const KUBEADM: &str = r#"#!/bin/sh
# Stand-in kubeadm: validates what kind's flow gives it, writes admin.conf for the test API server.
log=/kind/stand-in/kubeadm.log
echo "kubeadm $*" >> "$log"
case "$1" in
init)
  [ -f /kind/kubeadm.conf ] || { echo "open /kind/kubeadm.conf: no such file or directory" >&2; exit 1; }
  grep -q "^kind: InitConfiguration" /kind/kubeadm.conf || { echo "no InitConfiguration in /kind/kubeadm.conf" >&2; exit 1; }
  if [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then
    echo "[preflight] /etc/kubernetes/manifests/kube-apiserver.yaml already exists" >&2; exit 1
  fi
  mkdir -p /etc/kubernetes/manifests
  echo "stand-in" > /etc/kubernetes/manifests/kube-apiserver.yaml
  if [ -f /kind/stand-in/fail-once ] && [ ! -f /var/lib/stand-in/failed-once ]; then
    mkdir -p /var/lib/stand-in && touch /var/lib/stand-in/failed-once
    i=1; while [ $i -le 40 ]; do echo "[stand-in] kubeadm init output line $i"; i=$((i+1)); done
    echo "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster" >&2
    exit 1
  fi
  cluster=$(awk -F'"' '/^clusterName:/ {print $2; exit}' /kind/kubeadm.conf)
  ca=$(base64 /kind/stand-in/ca.crt | tr -d '\n')
  cat > /etc/kubernetes/admin.conf <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $ca
    server: https://$(hostname):6443
  name: $cluster
contexts:
- context:
    cluster: $cluster
    user: kubernetes-admin
  name: kubernetes-admin@$cluster
current-context: kubernetes-admin@$cluster
preferences: {}
users:
- name: kubernetes-admin
  user:
    token: $(cat /kind/stand-in/token)
EOF
  echo "Your Kubernetes control-plane has initialized successfully!"
  ;;
reset)
  rm -rf /etc/kubernetes/manifests /etc/kubernetes/admin.conf
  echo "[reset] stand-in reset done"
  ;;
*)
  echo "stand-in kubeadm: unsupported: $*" >&2; exit 1 ;;
esac
"#;

const KUBECTL: &str = r#"#!/bin/sh
# Stand-in kubectl: records calls and manifests; the node turns Ready once a CNI is applied.
dir=/kind/stand-in
echo "kubectl $*" >> "$dir/kubectl.log"
for a in "$@"; do
  case "$a" in --kubeconfig=*)
    f="${a#--kubeconfig=}"
    [ -f "$f" ] || { echo "error: stat $f: no such file or directory" >&2; exit 1; } ;;
  esac
done
case " $* " in
*" apply -f - "*)
  n=$(ls "$dir" | grep -c '^applied-')
  cat > "$dir/applied-$n.yaml"
  if grep -q "^kind: DaemonSet" "$dir/applied-$n.yaml"; then touch "$dir/cni-applied"; fi
  echo "applied"
  ;;
*" taint nodes --all "*)
  echo "node/$(hostname) untainted" ;;
*" get nodes "*)
  if [ -f "$dir/cni-applied" ] && [ ! -f "$dir/never-ready" ]; then echo "'True'"; else echo "'False'"; fi ;;
*)
  echo "stand-in kubectl: unsupported: $*" >&2; exit 1 ;;
esac
"#;

const CONTAINERD: &str = r#"#!/bin/sh
# Stand-in containerd: `config dump` as containerd 1.7 prints it (abridged), native snapshotter.
case "$*" in
"config dump")
  cat <<'EOF'
version = 2
root = "/var/lib/containerd"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      discard_unpacked_layers = true
      snapshotter = "native"
EOF
  # The registry's config_path once /etc/containerd/config.toml sets it (containerd 1.7
  # prints the table with an empty path otherwise).
  path=$(sed -n 's/^ *config_path *= *"\(.*\)"/\1/p' /etc/containerd/config.toml 2>/dev/null | head -n 1)
  printf '    [plugins."io.containerd.grpc.v1.cri".registry]\n      config_path = "%s"\n' "$path"
  ;;
*) echo "stand-in containerd: unsupported: $*" >&2; exit 1 ;;
esac
"#;

const CTR: &str = r#"#!/bin/sh
# Stand-in ctr: records its arguments and keeps the archive it is fed on stdin.
echo "ctr $*" >> /kind/stand-in/ctr.log
mkdir -p /var/lib/stand-in
cat > /var/lib/stand-in/import.tar
echo "unpacking $(wc -c < /var/lib/stand-in/import.tar) bytes...done"
"#;

const SYSTEMCTL: &str = r#"#!/bin/sh
# Stand-in systemctl: records what it is asked (the node's services are not real).
echo "systemctl $*" >> /kind/stand-in/systemctl.log
"#;

/// kind's base image `/etc/containerd/config.toml` as kind v0.31 ships it (abridged: the
/// runtime tables), so that a patch of it is applied to the file a real node has.
const CONTAINERD_CONFIG: &str = r#"# explicitly use v2 config format
version = 2

[proxy_plugins]
# fuse-overlayfs is used for rootless
[proxy_plugins."fuse-overlayfs"]
  type = "snapshot"
  address = "/run/containerd-fuse-overlayfs.sock"

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = false
"#;

const CNI: &str = r#"# would you kindly template this file
# would you kindly patch this file
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kindnet
  namespace: kube-system
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kindnet
  namespace: kube-system
spec:
  selector:
    matchLabels:
      app: kindnet
  template:
    metadata:
      labels:
        app: kindnet
    spec:
      containers:
      - name: kindnet-cni
        image: docker.io/kindest/kindnetd:stand-in
        env:
        - name: POD_SUBNET
          value: {{ .PodSubnet }}
"#;

/// The images the stand-in node's own manifests (CNI, storage) name.
pub fn node_manifest_images() -> Vec<String> {
    [CNI, STORAGE]
        .iter()
        .flat_map(|m| m.lines())
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .map(str::to_string)
        .collect()
}

const STORAGE: &str = r#"apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
"#;

const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "test",
    "[",
    "nc",
    "ip",
    "awk",
    "grep",
    "mkdir",
    "cp",
    "rm",
    "touch",
    "sleep",
    "echo",
    "hostname",
    "sed",
    "wc",
    "sha256sum",
    "head",
    "tail",
    "printf",
    "base64",
    "ls",
    "tr",
];

/// Builds the stand-in node image with `docker import` (tagged uniquely per call).
pub async fn build_stand_in(docker: &Docker, s: &StandIn) -> StandInImage {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "missing /bin/busybox (busybox-static): run `sudo scripts/prereqs/kind.sh`"
    );
    let bytes = std::fs::read(busybox).unwrap();
    assert!(
        !bytes
            .windows(11)
            .any(|w| w == b"/lib64/ld-l" || w == b"/lib/ld-lin"),
        "/bin/busybox is dynamically linked (Debian's `busybox`), the stand-in image needs busybox-static: run `sudo scripts/prereqs/kind.sh`"
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let write = |rel: &str, body: &[u8], mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = r.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("bin/busybox", &bytes, 0o755);
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
    }
    let relay_port = super::free_port();
    write("usr/local/bin/entrypoint", ENTRYPOINT.as_bytes(), 0o755);
    write("usr/bin/kubeadm", KUBEADM.as_bytes(), 0o755);
    write("usr/bin/kubectl", KUBECTL.as_bytes(), 0o755);
    write("usr/bin/containerd", CONTAINERD.as_bytes(), 0o755);
    write("usr/bin/ctr", CTR.as_bytes(), 0o755);
    write("usr/bin/systemctl", SYSTEMCTL.as_bytes(), 0o755);
    write(
        "etc/containerd/config.toml",
        CONTAINERD_CONFIG.as_bytes(),
        0o644,
    );
    write(
        "kind/version",
        format!("{}\n", s.kube_version).as_bytes(),
        0o644,
    );
    write("kind/manifests/default-cni.yaml", CNI.as_bytes(), 0o644);
    write(
        "kind/manifests/default-storage.yaml",
        STORAGE.as_bytes(),
        0o644,
    );
    write(
        "kind/stand-in/relay-port",
        relay_port.to_string().as_bytes(),
        0o644,
    );
    write("kind/stand-in/ca.crt", s.ca_pem.as_bytes(), 0o644);
    write("kind/stand-in/token", s.token.as_bytes(), 0o600);
    if s.kubeadm_fails_once {
        write("kind/stand-in/fail-once", b"", 0o644);
    }
    if s.never_ready {
        write("kind/stand-in/never-ready", b"", 0o644);
    }
    for dir in [
        "etc",
        "tmp",
        "run",
        "var",
        "lib/modules",
        "proc",
        "sys",
        "dev",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    let tar = std::process::Command::new("tar")
        .args(["-C", r.to_str().unwrap(), "-c", "."])
        .output()
        .expect("run tar");
    assert!(
        tar.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&tar.stderr)
    );

    let tag = format!("stand-in-{}", relay_port);
    let repo = "capi-manage.test/kind-node";
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(&tag)
        .changes(vec![
            r#"ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]"#.to_string(),
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ])
        .build();
    let mut stream = docker.create_image(
        Some(options),
        Some(bollard::body_full(tar.stdout.into())),
        None,
    );
    while let Some(item) = stream.next().await {
        item.expect("docker import of the stand-in node image");
    }
    StandInImage {
        image: format!("{repo}:{tag}"),
        relay_port,
    }
}

/// A second name for an image in the engine (`docker tag`), removed on drop (the image stays
/// under its other names).
pub struct TaggedImage {
    /// `repo:tag`.
    pub image: String,
}

impl TaggedImage {
    /// Tags `image` as `repo:tag` (e.g. a name in an internal registry).
    pub async fn new(docker: &Docker, image: &str, repo: &str, tag: &str) -> TaggedImage {
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        docker
            .tag_image(image, Some(options))
            .await
            .unwrap_or_else(|e| panic!("docker tag {image} {repo}:{tag}: {e}"));
        TaggedImage {
            image: format!("{repo}:{tag}"),
        }
    }
}

impl Drop for TaggedImage {
    fn drop(&mut self) {
        // Not forced: only this name goes, the image keeps its others.
        remove_image_now(&self.image, false);
    }
}

/// Forwards connections from `<gateway of the kind network>:<port>` to `127.0.0.1:<target>`.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The IPv4 gateway of the `kind` network.
pub async fn kind_gateway(docker: &Docker) -> IpAddr {
    let n = docker
        .inspect_network("kind", None::<InspectNetworkOptions>)
        .await
        .expect("the kind network exists");
    n.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.gateway)
        .filter_map(|g| g.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .expect("the kind network has an IPv4 gateway")
}

impl Relay {
    /// Starts relaying `gateway:port` to the control plane on `127.0.0.1:target`.
    pub async fn start(docker: &Docker, port: u16, target: u16) -> Relay {
        let gateway = kind_gateway(docker).await;
        let listener = tokio::net::TcpListener::bind((gateway, port))
            .await
            .expect("bind the relay on the kind network's gateway");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { task, addr }
    }
}

/// Runs a command in a container and returns (exit code, stdout+stderr).
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> (i64, String) {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd.to_vec()),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut out = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .expect("start exec")
    {
        while let Some(chunk) = output.next().await {
            out.push_str(&String::from_utf8_lossy(
                &chunk.expect("exec output").into_bytes(),
            ));
        }
    }
    let mut code = None;
    for _ in 0..100 {
        let i = docker
            .inspect_exec(&created.id)
            .await
            .expect("inspect exec");
        if i.running != Some(true) {
            code = i.exit_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (code.unwrap_or(-1), out)
}

/// Containers (all states) carrying a label `key=value`.
pub async fn containers_labelled(docker: &Docker, key: &str, value: &str) -> Vec<String> {
    let mut filters = HashMap::new();
    filters.insert("label".to_string(), vec![format!("{key}={value}")]);
    let list = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers");
    list.into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect()
}

/// A read-only Docker registry (HTTP API v2) on 127.0.0.1 serving one image, so that pulls by
/// digest run for real without leaving the machine. The image is taken from the engine with
/// `docker save`, its single layer gzipped as registries serve it.
pub struct Registry {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The manifest's digest (`sha256:...`): pin the image with it.
    pub manifest_digest: String,
    /// Blob downloads served so far.
    pub blob_gets: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes images pulled from loopback registries by earlier runs of the pull test.
pub async fn remove_loopback_registry_images(docker: &Docker) {
    let images = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .expect("list images");
    for image in images {
        let names = image.repo_tags.iter().chain(image.repo_digests.iter());
        if names.into_iter().any(|n| n.starts_with("127.0.0.1:")) {
            let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
                .force(true)
                .build();
            let _ = docker.remove_image(&image.id, Some(options), None).await;
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Registry {
    /// Serves `image` (present in the engine) as `<repo>:<tag>` and by its manifest digest.
    pub async fn serve(docker: &Docker, image: &str, repo: &str, tag: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut saved = Vec::new();
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            saved.extend_from_slice(&chunk.expect("docker save"));
        }
        let archive = dir.path().join("image.tar");
        std::fs::write(&archive, &saved).unwrap();
        let untar = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(untar.success());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        let config =
            std::fs::read(dir.path().join(manifest[0]["Config"].as_str().unwrap())).unwrap();
        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "the stand-in image has one layer");
        let layer_path = dir.path().join(layers[0].as_str().unwrap());
        let gz = std::process::Command::new("gzip")
            .args(["-c", "-n"])
            .arg(&layer_path)
            .output()
            .unwrap();
        assert!(gz.status.success());
        let layer = gz.stdout;
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let layer_digest = format!("sha256:{}", sha256_hex(&layer));
        let manifest_json = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": config_digest,
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": layer.len(),
                "digest": layer_digest,
            }],
        }))
        .unwrap();
        let manifest_digest = format!("sha256:{}", sha256_hex(&manifest_json));
        let mut blobs = HashMap::new();
        blobs.insert(config_digest, config);
        blobs.insert(layer_digest, layer);
        let blobs = std::sync::Arc::new(blobs);
        let manifest_json = std::sync::Arc::new(manifest_json);
        let blob_gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (repo, tag, digest) = (repo.to_string(), tag.to_string(), manifest_digest.clone());
        let counter = blob_gets.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (blobs, manifest_json, counter) =
                    (blobs.clone(), manifest_json.clone(), counter.clone());
                let (repo, tag, digest) = (repo.clone(), tag.clone(), digest.clone());
                tokio::spawn(async move {
                    let _ = serve_one(conn, &repo, &tag, &digest, &manifest_json, &blobs, &counter)
                        .await;
                });
            }
        });
        Registry {
            addr,
            manifest_digest,
            blob_gets,
            task,
        }
    }
}

async fn serve_one(
    mut conn: tokio::net::TcpStream,
    repo: &str,
    tag: &str,
    digest: &str,
    manifest: &[u8],
    blobs: &HashMap<String, Vec<u8>>,
    blob_gets: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // The engine tries TLS first; refuse it so that it falls back to plain HTTP at once.
        if head.is_empty() && buf[0] == 0x16 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("");
    let path = first.next().unwrap_or("");
    let manifests = format!("/v2/{repo}/manifests/");
    let blobs_prefix = format!("/v2/{repo}/blobs/");
    let (status, content_type, body, extra): (&str, &str, &[u8], String) = if path == "/v2/" {
        ("200 OK", "application/json", b"{}", String::new())
    } else if let Some(reference) = path.strip_prefix(&manifests) {
        if reference == tag || reference == digest {
            (
                "200 OK",
                "application/vnd.docker.distribution.manifest.v2+json",
                manifest,
                format!("Docker-Content-Digest: {digest}\r\n"),
            )
        } else {
            ("404 Not Found", "application/json", b"{}", String::new())
        }
    } else if let Some(blob) = path.strip_prefix(&blobs_prefix).and_then(|d| blobs.get(d)) {
        if method == "GET" {
            blob_gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        (
            "200 OK",
            "application/octet-stream",
            blob.as_slice(),
            String::new(),
        )
    } else {
        ("404 Not Found", "application/json", b"{}", String::new())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Distribution-API-Version: registry/2.0\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(response.as_bytes()).await?;
    if method != "HEAD" {
        conn.write_all(body).await?;
    }
    conn.shutdown().await
}
