//! kind's kubeadm configuration for the single control-plane node, in the kubeadm API the node's
//! Kubernetes version takes. Pure.

use std::fmt;

use super::config::{API_SERVER_PORT, POD_SUBNET};

/// kind's fixed bootstrap token; the cluster is throwaway and never joined by other nodes.
pub(crate) const BOOTSTRAP_TOKEN: &str = "abcdef.0123456789abcdef";
/// kind's default service subnet (IPv4 clusters).
pub(crate) const SERVICE_SUBNET: &str = "10.96.0.0/16";

/// A Kubernetes version `major.minor.patch`, as read from the node's `/kind/version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl KubeVersion {
    /// Parses `v1.35.0`, `1.35.0` or `v1.35.0-alpha.1+abc` (pre-release and build suffixes are
    /// ignored, as kind's generic version parser does).
    pub fn parse(s: &str) -> Option<KubeVersion> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() {
            return None;
        }
        Some(KubeVersion {
            major,
            minor,
            patch,
        })
    }

    const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KubeVersion {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The kubeadm configuration API a node image's Kubernetes version takes, as kind chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeadmApi {
    /// `kubeadm.k8s.io/v1beta3`, Kubernetes 1.23 to 1.35.
    V1Beta3,
    /// `kubeadm.k8s.io/v1beta4`, Kubernetes 1.36 and later.
    V1Beta4,
}

impl KubeadmApi {
    /// The API for a version, or `None` below 1.23 (which this crate does not support).
    pub fn for_version(v: KubeVersion) -> Option<KubeadmApi> {
        if v < KubeVersion::new(1, 23, 0) {
            None
        } else if v < KubeVersion::new(1, 36, 0) {
            Some(KubeadmApi::V1Beta3)
        } else {
            Some(KubeadmApi::V1Beta4)
        }
    }
}

/// What the kubeadm configuration of the single control-plane node is made from.
#[derive(Debug, Clone)]
pub(crate) struct KubeadmData<'a> {
    pub cluster_name: &'a str,
    pub version: KubeVersion,
    /// The node's container name, also its hostname and Kubernetes node name.
    pub node_name: &'a str,
    /// The node's IPv4 address on the `kind` network.
    pub node_address: &'a str,
}

/// Double-quotes a string for YAML (a JSON string is a valid YAML double-quoted scalar).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

impl KubeadmApi {
    fn api_version(self) -> &'static str {
        match self {
            KubeadmApi::V1Beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1Beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }

    /// `key:` with its arguments under it, at `indent`: a map in v1beta3, a list of name/value
    /// pairs in v1beta4.
    fn args(self, indent: &str, key: &str, args: &[(&str, &str)]) -> String {
        let mut out = format!("{indent}{key}:\n");
        for (name, value) in args {
            out.push_str(&match self {
                KubeadmApi::V1Beta3 => format!("{indent}  {name}: {value}\n"),
                KubeadmApi::V1Beta4 => {
                    format!("{indent}- name: {name}\n{indent}  value: {value}\n")
                }
            });
        }
        out
    }
}

/// kind's kubeadm configuration for a single control-plane node of an IPv4 cluster with
/// iptables kube-proxy, in the API the version takes. `None` for versions below 1.23.
pub(crate) fn kubeadm_config(d: &KubeadmData<'_>) -> Option<String> {
    let api = KubeadmApi::for_version(d.version)?;
    // kind switched the kubelet to the systemd cgroup driver with Kubernetes 1.24.
    let cgroup_driver = if d.version < KubeVersion::new(1, 24, 0) {
        "cgroupfs"
    } else {
        "systemd"
    };
    let api_version = api.api_version();
    let version = d.version;
    let cluster = q(d.cluster_name);
    let endpoint = q(&format!("{}:{API_SERVER_PORT}", d.node_name));
    let (pods, services, token) = (q(POD_SUBNET), q(SERVICE_SUBNET), q(BOOTSTRAP_TOKEN));
    let addr = q(d.node_address);
    let provider = q(&format!("kind://docker/{}/{}", d.cluster_name, d.node_name));
    // v1beta3 still carries kind's empty runtime-config and scheduler arguments; v1beta4 has
    // neither, and turns every extraArgs map into a list of name/value pairs.
    let (api_server_args, scheduler) = match api {
        KubeadmApi::V1Beta3 => (
            api.args("  ", "extraArgs", &[("runtime-config", "\"\"")]),
            "scheduler:\n  extraArgs: {}\n",
        ),
        KubeadmApi::V1Beta4 => (String::new(), ""),
    };
    let controller_manager_args = api.args(
        "  ",
        "extraArgs",
        &[("enable-hostpath-provisioner", "\"true\"")],
    );
    let node_registration = format!(
        "nodeRegistration:\n  criSocket: unix:///run/containerd/containerd.sock\n{}",
        api.args(
            "  ",
            "kubeletExtraArgs",
            &[
                ("node-ip", &addr),
                ("provider-id", &provider),
                ("node-labels", "\"\""),
            ],
        )
    );
    let local_endpoint = |indent: &str| {
        format!(
            "{indent}localAPIEndpoint:\n{indent}  advertiseAddress: {addr}\n{indent}  bindPort: {API_SERVER_PORT}\n"
        )
    };
    let (init_endpoint, join_endpoint) = (local_endpoint(""), local_endpoint("  "));
    Some(format!(
        "# config generated by capi-manage, as kind generates it
apiVersion: {api_version}
kind: ClusterConfiguration
metadata:
  name: config
kubernetesVersion: {version}
clusterName: {cluster}
controlPlaneEndpoint: {endpoint}
apiServer:
  certSANs: [localhost, \"127.0.0.1\"]
{api_server_args}controllerManager:
{controller_manager_args}{scheduler}networking:
  podSubnet: {pods}
  serviceSubnet: {services}
---
apiVersion: {api_version}
kind: InitConfiguration
metadata:
  name: config
bootstrapTokens:
- token: {token}
{init_endpoint}{node_registration}skipPhases:
  - preflight
---
apiVersion: {api_version}
kind: JoinConfiguration
metadata:
  name: config
controlPlane:
{join_endpoint}{node_registration}discovery:
  bootstrapToken:
    apiServerEndpoint: {endpoint}
    token: {token}
    unsafeSkipCAVerification: true
skipPhases:
  - preflight
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
metadata:
  name: config
cgroupDriver: {cgroup_driver}
cgroupRoot: /kubelet
failSwapOn: false
imageGCHighThresholdPercent: 100
evictionHard:
  nodefs.available: \"0%\"
  nodefs.inodesFree: \"0%\"
  imagefs.available: \"0%\"
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
metadata:
  name: config
mode: iptables
iptables:
  minSyncPeriod: 1s
conntrack:
  maxPerCore: 0
"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::config::parse_docs;

    #[test]
    fn versions_parse_and_pick_the_kubeadm_api() {
        let v = KubeVersion::parse("v1.35.0\n").unwrap();
        assert_eq!(v.to_string(), "v1.35.0");
        assert_eq!(KubeVersion::parse("1.36.1-alpha.0+abc").unwrap().minor, 36);
        assert!(KubeVersion::parse("banana").is_none());
        assert_eq!(
            KubeadmApi::for_version(KubeVersion::parse("1.23.0").unwrap()),
            Some(KubeadmApi::V1Beta3)
        );
        assert_eq!(KubeadmApi::for_version(v), Some(KubeadmApi::V1Beta3));
        assert_eq!(
            KubeadmApi::for_version(KubeVersion::parse("1.36.0").unwrap()),
            Some(KubeadmApi::V1Beta4)
        );
        assert_eq!(
            KubeadmApi::for_version(KubeVersion::parse("1.22.9").unwrap()),
            None
        );
    }

    #[test]
    fn kubeadm_config_v1beta3_and_v1beta4() {
        let mut d = KubeadmData {
            cluster_name: "kind",
            version: KubeVersion::parse("v1.35.0").unwrap(),
            node_name: "kind-control-plane",
            node_address: "172.18.0.2",
        };
        let docs = parse_docs(&kubeadm_config(&d).unwrap());
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ClusterConfiguration",
                "InitConfiguration",
                "JoinConfiguration",
                "KubeletConfiguration",
                "KubeProxyConfiguration"
            ]
        );
        assert_eq!(docs[0]["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(docs[0]["controlPlaneEndpoint"], "kind-control-plane:6443");
        assert_eq!(docs[0]["kubernetesVersion"], "v1.35.0");
        assert_eq!(docs[0]["networking"]["podSubnet"], "10.244.0.0/16");
        assert_eq!(
            docs[1]["nodeRegistration"]["kubeletExtraArgs"]["provider-id"],
            "kind://docker/kind/kind-control-plane"
        );
        assert_eq!(
            docs[1]["localAPIEndpoint"]["advertiseAddress"],
            "172.18.0.2"
        );
        assert_eq!(docs[1]["skipPhases"][0], "preflight");
        assert_eq!(docs[3]["cgroupDriver"], "systemd");

        d.version = KubeVersion::parse("v1.36.0").unwrap();
        let docs = parse_docs(&kubeadm_config(&d).unwrap());
        assert_eq!(docs[0]["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(docs[1]["apiVersion"], "kubeadm.k8s.io/v1beta4");
        let args = docs[1]["nodeRegistration"]["kubeletExtraArgs"]
            .as_sequence()
            .unwrap();
        assert_eq!(args[0]["name"], "node-ip");
        assert_eq!(args[0]["value"], "172.18.0.2");
        assert_eq!(
            docs[0]["controllerManager"]["extraArgs"][0]["name"],
            "enable-hostpath-provisioner"
        );

        d.version = KubeVersion::parse("v1.23.17").unwrap();
        let docs = parse_docs(&kubeadm_config(&d).unwrap());
        assert_eq!(docs[3]["cgroupDriver"], "cgroupfs");
        d.version = KubeVersion::parse("v1.22.0").unwrap();
        assert!(kubeadm_config(&d).is_none());
    }
}
