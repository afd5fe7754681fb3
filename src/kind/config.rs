//! Pure pieces of the kind cluster: node images, the IPv6 subnet of the `kind` network, the host kubeconfig, containerd's snapshotter, CNI templating and the small
//! tar archives used to copy files into the node. No I/O here.

use serde_yaml_ng::Value;

/// The API server port inside the node (kubeadm's default, published on the host).
pub const API_SERVER_PORT: u16 = 6443;
/// kind's default pod subnet (IPv4 clusters).
pub(crate) const POD_SUBNET: &str = "10.244.0.0/16";
/// kindest/node images pinned by digest, newest first: the images kind's releases publish
/// (v1.35.0 from kind v0.31.0; the others from kind v0.30.0).
pub const NODE_IMAGES: &[(&str, &str)] = &[
    (
        "1.35.0",
        "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    ),
    (
        "1.34.0",
        "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    ),
    (
        "1.33.4",
        "kindest/node:v1.33.4@sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2",
    ),
    (
        "1.32.8",
        "kindest/node:v1.32.8@sha256:abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
    ),
    (
        "1.31.12",
        "kindest/node:v1.31.12@sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
    ),
];

/// The Kubernetes version used when none is asked for.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.35.0";

/// The pinned image for a Kubernetes version (`1.34`, `1.34.0` or `v1.34.0`; a bare minor picks
/// its newest pinned patch), or `None` when no image is pinned for it.
pub fn node_image_for(version: &str) -> Option<&'static str> {
    let v = version.trim().trim_start_matches('v');
    let exact = NODE_IMAGES.iter().find(|(k, _)| *k == v);
    let minor = || {
        let parts: Vec<&str> = v.split('.').collect();
        (parts.len() == 2)
            .then(|| {
                NODE_IMAGES
                    .iter()
                    .find(|(k, _)| k.starts_with(&format!("{v}.")))
            })
            .flatten()
    };
    exact.or_else(minor).map(|(_, image)| *image)
}

/// The IPv6 ULA /64 kind gives a network: `fc00::/8` plus bytes 2..8 of
/// SHA-1(name ‖ attempt as little-endian i32), so every host derives the same subnet for `kind`
/// and collisions are probed with the next attempt.
pub(crate) fn ula_subnet(name: &str, attempt: i32) -> String {
    let mut input = name.as_bytes().to_vec();
    input.extend_from_slice(&attempt.to_le_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    let h = digest.as_ref();
    let mut ip = [0u8; 16];
    ip[0] = 0xfc;
    ip[2..8].copy_from_slice(&h[2..8]);
    format!("{}/64", std::net::Ipv6Addr::from(ip))
}

/// Why admin.conf could not be turned into a host kubeconfig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeconfigError {
    /// Not YAML.
    #[error("admin.conf is not YAML")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// Not the single cluster, user and context kubeadm writes.
    #[error("admin.conf must have exactly one cluster, user and context, as kubeadm writes it")]
    Shape,
}

/// Rewrites kubeadm's admin.conf for the host as kind does: the only cluster, user and context
/// are all renamed `kind-<cluster>`, the context made current, and the server set to
/// `https://127.0.0.1:<host_port>`. Credentials are kept as they are.
pub(crate) fn host_kubeconfig(
    admin_conf: &[u8],
    cluster_name: &str,
    host_port: u16,
) -> Result<Vec<u8>, KubeconfigError> {
    let mut doc: Value = serde_yaml_ng::from_slice(admin_conf).map_err(KubeconfigError::Yaml)?;
    let name = format!("kind-{cluster_name}");
    let server = format!("https://127.0.0.1:{host_port}");
    let single = |doc: &mut Value, key: &str| -> Result<(), KubeconfigError> {
        match doc.get_mut(key).and_then(Value::as_sequence_mut) {
            Some(list) if list.len() == 1 => {
                list[0]["name"] = Value::from(name.clone());
                Ok(())
            }
            _ => Err(KubeconfigError::Shape),
        }
    };
    single(&mut doc, "clusters")?;
    single(&mut doc, "users")?;
    single(&mut doc, "contexts")?;
    let cluster = doc["clusters"][0]
        .get_mut("cluster")
        .filter(|c| c.is_mapping())
        .ok_or(KubeconfigError::Shape)?;
    cluster["server"] = Value::from(server);
    let context = doc["contexts"][0]
        .get_mut("context")
        .filter(|c| c.is_mapping())
        .ok_or(KubeconfigError::Shape)?;
    context["cluster"] = Value::from(name.clone());
    context["user"] = Value::from(name.clone());
    doc["current-context"] = Value::from(name);
    Ok(crate::manifest::to_yaml_of(&doc)
        .map_err(|_| KubeconfigError::Shape)?
        .into_bytes())
}

/// The snapshotter containerd's CRI plugin uses, from `containerd config dump` (TOML): the
/// `snapshotter` key of `[plugins."io.containerd.grpc.v1.cri".containerd]` (containerd 1.x) or
/// of `[plugins."io.containerd.cri.v1.images"]` (containerd 2.x). `None` when neither is set.
pub(crate) fn containerd_snapshotter(config_dump: &str) -> Option<String> {
    const TABLES: [&str; 2] = [
        r#"plugins."io.containerd.grpc.v1.cri".containerd"#,
        r#"plugins."io.containerd.cri.v1.images""#,
    ];
    let mut table = String::new();
    for line in config_dump.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = header.trim().replace(' ', "");
            continue;
        }
        if !TABLES.contains(&table.as_str()) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "snapshotter" {
            let value = value.split('#').next().unwrap_or("").trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
    }
    None
}

/// Templates the node image's CNI manifest as kind does: when it asks for it, substitutes the
/// pod subnet and adds `CONTROL_PLANE_ENDPOINT` to the DaemonSet's first container, so kindnet
/// does not have to wait for kube-proxy.
pub(crate) fn template_cni(manifest: &str, control_plane_endpoint: &str) -> Result<String, String> {
    let mut manifest = manifest.to_string();
    if manifest.contains("would you kindly template this file") {
        for form in ["{{ .PodSubnet }}", "{{.PodSubnet}}"] {
            manifest = manifest.replace(form, POD_SUBNET);
        }
    }
    if !manifest.contains("would you kindly patch this file") {
        return Ok(manifest);
    }
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&manifest) {
        let mut value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| format!("CNI manifest is not YAML: {e}"))?;
        if value.is_null() {
            continue;
        }
        let is_daemonset = value["kind"].as_str() == Some("DaemonSet")
            && value["apiVersion"].as_str() == Some("apps/v1");
        if is_daemonset {
            let Some(container) = value
                .get_mut("spec")
                .and_then(|v| v.get_mut("template"))
                .and_then(|v| v.get_mut("spec"))
                .and_then(|v| v.get_mut("containers"))
                .and_then(|v| v.get_mut(0))
                .filter(|c| c.is_mapping())
            else {
                return Err(
                    "CNI DaemonSet: field spec.template.spec.containers has no container to patch"
                        .into(),
                );
            };
            if !container["env"].is_sequence() {
                container["env"] = Value::Sequence(Vec::new());
            }
            let mut env = serde_yaml_ng::Mapping::new();
            env.insert("name".into(), "CONTROL_PLANE_ENDPOINT".into());
            env.insert("value".into(), control_plane_endpoint.into());
            container["env"]
                .as_sequence_mut()
                .expect("set above")
                .push(Value::Mapping(env));
        }
        docs.push(crate::manifest::to_yaml_of(&value).map_err(|e| format!("CNI manifest: {e}"))?);
    }
    Ok(docs.join("---\n"))
}

/// The StorageClass kind installs when the node image ships no storage manifest.
pub(crate) const LEGACY_STORAGE_MANIFEST: &str = "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  namespace: kube-system
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: kubernetes.io/host-path
";

/// A POSIX ustar archive holding regular files (`name` relative, no leading `/`), as Docker's
/// archive upload takes it.
pub(crate) fn tar_files(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, mode) in files {
        let h = super::archive::tar_header(name, data.len() as u64, *mode)
            .expect("tar_files: name too long");
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The last `n` non-empty lines of command output.
pub(crate) fn tail(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every YAML document of `s`, for tests.
#[cfg(test)]
pub(crate) fn parse_docs(s: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(s)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_images_by_version() {
        assert!(
            node_image_for("v1.35.0")
                .unwrap()
                .contains("@sha256:452d707d")
        );
        assert!(
            node_image_for("1.34")
                .unwrap()
                .starts_with("kindest/node:v1.34.0@")
        );
        assert!(node_image_for("1.20").is_none());
        assert!(node_image_for(DEFAULT_KUBERNETES_VERSION).is_some());
        for (v, image) in NODE_IMAGES {
            assert!(image.starts_with(&format!("kindest/node:v{v}@sha256:")));
            assert_eq!(image.split("@sha256:").nth(1).unwrap().len(), 64);
        }
    }

    #[test]
    fn ula_subnet_matches_kinds_derivation() {
        // kind's own unit test value for the network named "kind", attempt 0.
        assert_eq!(ula_subnet("kind", 0), "fc00:f853:ccd:e793::/64");
        assert_ne!(ula_subnet("kind", 1), ula_subnet("kind", 0));
        assert!(ula_subnet("other", 0).starts_with("fc00:"));
    }

    #[test]
    fn kubeconfig_is_renamed_and_pointed_at_the_host_port() {
        let admin = b"apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://kind-control-plane:6443
  name: kind
contexts:
- context:
    cluster: kind
    user: kubernetes-admin
  name: kubernetes-admin@kind
current-context: kubernetes-admin@kind
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";
        let out = host_kubeconfig(admin, "test", 40123).unwrap();
        let v: Value = serde_yaml_ng::from_slice(&out).unwrap();
        assert_eq!(v["clusters"][0]["name"], "kind-test");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:40123"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(v["users"][0]["name"], "kind-test");
        assert_eq!(v["users"][0]["user"]["client-key-data"], "S0VZ");
        assert_eq!(v["contexts"][0]["name"], "kind-test");
        assert_eq!(v["contexts"][0]["context"]["cluster"], "kind-test");
        assert_eq!(v["contexts"][0]["context"]["user"], "kind-test");
        assert_eq!(v["current-context"], "kind-test");

        let two = b"clusters: [{name: a, cluster: {}}, {name: b, cluster: {}}]\nusers: []\ncontexts: []\n";
        assert!(matches!(
            host_kubeconfig(two, "x", 1),
            Err(KubeconfigError::Shape)
        ));
        assert!(matches!(
            host_kubeconfig(b"{", "x", 1),
            Err(KubeconfigError::Yaml(_))
        ));
    }

    #[test]
    fn snapshotter_from_containerd_1_and_2_dumps() {
        let v1 = r#"version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"
  [plugins."io.containerd.snapshotter.v1.native"]
    snapshotter = "nope"
"#;
        assert_eq!(containerd_snapshotter(v1).as_deref(), Some("overlayfs"));
        let v2 = "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'fuse-overlayfs'\n";
        // containerd 2 writes double quotes; single-quoted keys are another table.
        assert_eq!(containerd_snapshotter(v2), None);
        let v2 = "version = 3\n[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"native\" # set by kind\n";
        assert_eq!(containerd_snapshotter(v2).as_deref(), Some("native"));
        assert_eq!(containerd_snapshotter(""), None);
    }

    #[test]
    fn cni_manifest_is_templated_and_patched() {
        let manifest = "# would you kindly template this file
# would you kindly patch this file
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kindnet
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kindnet
spec:
  template:
    spec:
      containers:
      - name: kindnet-cni
        env:
        - name: POD_SUBNET
          value: {{ .PodSubnet }}
";
        let out = template_cni(manifest, "kind-control-plane:6443").unwrap();
        let docs = parse_docs(&out);
        assert_eq!(docs.len(), 2);
        let env = &docs[1]["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], "10.244.0.0/16");
        assert_eq!(env[1]["name"], "CONTROL_PLANE_ENDPOINT");
        assert_eq!(env[1]["value"], "kind-control-plane:6443");
        // Manifests that ask for nothing pass through untouched.
        assert_eq!(template_cni("a: b\n", "x").unwrap(), "a: b\n");
    }

    #[test]
    fn a_cni_daemonset_without_containers_is_an_error_not_a_panic() {
        for spec in [
            "spec:\n  template:\n    spec:\n      containers: []\n",
            "spec:\n  template:\n    spec: {}\n",
            "spec: 3\n",
            "spec:\n  template:\n    spec:\n      containers: [1]\n",
        ] {
            let manifest = format!(
                "# would you kindly patch this file\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kindnet\n{spec}"
            );
            let e = template_cni(&manifest, "x:6443").unwrap_err();
            assert!(e.contains("spec.template.spec.containers"), "{e}");
        }
    }

    #[test]
    fn tar_headers_are_valid_ustar() {
        let tar = tar_files(&[("kubeadm.conf", b"hello", 0o644)]);
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[..12], b"kubeadm.conf");
        assert_eq!(&tar[124..136], b"00000000005\0");
        assert_eq!(&tar[512..517], b"hello");
        let sum: u32 = tar[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        let stored = u32::from_str_radix(std::str::from_utf8(&tar[148..154]).unwrap(), 8).unwrap();
        assert_eq!(stored, sum);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
