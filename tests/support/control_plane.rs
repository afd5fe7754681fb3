//! A real Kubernetes control plane per test: etcd and kube-apiserver (optionally the
//! controller-manager, the scheduler and kwok with one fake node) built from their Go modules,
//! on free loopback ports, with generated certificates, RBAC, and an admin kubeconfig file the
//! code under test loads exactly like a user's.
//!
//! Services get ClusterIPs in a loopback /24 of their own (`127.A.B.0/24`, unique per control
//! plane across the processes of this machine): kube-apiserver resolves a webhook's or conversion
//! webhook's `clientConfig.service` to the Service's ClusterIP, so a listener of the test on that
//! address (see `webhooks.rs`) receives the calls without rewriting the upstream manifests.
//! Binding a Service's port (443 for webhooks) needs root or CAP_NET_BIND_SERVICE.
//!
//! One per test, not one per binary: tests create cluster-scoped objects (CRDs, namespaces) and
//! the move tests need two independent clusters, so sharing would couple tests. Start-up takes a
//! few seconds; everything is killed and removed on drop, also when the test panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use capi_manage::kube::ClientOptions;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::{Process, free_port, test_bin};

/// What to run besides etcd and kube-apiserver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// kube-controller-manager and kube-scheduler: Deployments get ReplicaSets and Pods,
    /// ServiceAccounts get tokens, namespaces are finalized.
    pub controllers: bool,
    /// kwok with one fake Node it keeps Ready, and whose Pods it marks Running: Deployments
    /// become Available. Implies `controllers`.
    pub kwok: bool,
}

impl Options {
    /// Controllers, scheduler and a kwok node.
    pub fn kwok() -> Self {
        Options {
            controllers: true,
            kwok: true,
        }
    }
}

/// A loopback /24 for a control plane's Services, reserved for this control plane's lifetime:
/// the reservation is a listener on the range's network address (`127.A.B.0`) at a fixed port
/// below the ephemeral range, so another control plane (of this process or another one on this
/// machine) that picks the same range finds it taken and picks the next one.
struct ServiceRange {
    cidr: String,
    /// The first address: the `kubernetes` Service's ClusterIP.
    first: std::net::Ipv4Addr,
    _reservation: std::net::TcpListener,
}

/// Port of the range reservations (below Linux's ephemeral range, so `free_port` never gives it).
const RANGE_RESERVATION_PORT: u16 = 20999;

fn service_range() -> ServiceRange {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // 127.64.0.0 - 127.253.255.0: 190 * 256 ranges, none touching 127.0.0.0/16.
    const RANGES: u32 = 190 * 256;
    let start = std::process::id().wrapping_mul(2_654_435_761) % RANGES;
    for _ in 0..RANGES {
        let n = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % RANGES;
        let (a, b) = (64 + (n / 256) as u8, (n % 256) as u8);
        let network = std::net::Ipv4Addr::new(127, a, b, 0);
        if let Ok(listener) = std::net::TcpListener::bind((network, RANGE_RESERVATION_PORT)) {
            return ServiceRange {
                cidr: format!("{network}/24"),
                first: std::net::Ipv4Addr::new(127, a, b, 1),
                _reservation: listener,
            };
        }
    }
    panic!("no free loopback /24 for a control plane's Services");
}

/// A running control plane. Dropping it stops every process and deletes its directory.
pub struct ControlPlane {
    // Attached helpers first (they use the apiserver), then the processes, then the directory.
    attached: Vec<Box<dyn std::any::Any + Send>>,
    processes: Vec<Process>,
    port: u16,
    kubeconfig: PathBuf,
    ca_pem: String,
    token: String,
    /// kube-apiserver's arguments, to start it again after [`ControlPlane::kill_apiserver`].
    apiserver_args: Vec<String>,
    services: ServiceRange,
    dir: tempfile::TempDir,
}

/// Files of the generated PKI.
struct Pki {
    ca_pem: String,
    ca_file: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    admin_cert_pem: String,
    admin_key_pem: String,
    sa_key: PathBuf,
    sa_pub: PathBuf,
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn pki(dir: &Path, kubernetes_ip: std::net::Ipv4Addr) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "capi-manage-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let serving_key = KeyPair::generate().unwrap();
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        kubernetes_ip.to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])
    .unwrap();
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let serving_cert = serving.signed_by(&serving_key, &issuer).unwrap();

    let admin_key = KeyPair::generate().unwrap();
    let mut admin = CertificateParams::new(Vec::<String>::new()).unwrap();
    admin
        .distinguished_name
        .push(DnType::CommonName, "capi-manage-test-admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &issuer).unwrap();

    let sa = KeyPair::generate().unwrap();
    let p = |n: &str| dir.join(n);
    write(&p("ca.crt"), &ca_cert.pem());
    write(&p("apiserver.crt"), &serving_cert.pem());
    write(&p("apiserver.key"), &serving_key.serialize_pem());
    write(&p("sa.key"), &sa.serialize_pem());
    write(&p("sa.pub"), &sa.public_key_pem());
    Pki {
        ca_pem: ca_cert.pem(),
        ca_file: p("ca.crt"),
        serving_cert: p("apiserver.crt"),
        serving_key: p("apiserver.key"),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
        sa_key: p("sa.key"),
        sa_pub: p("sa.pub"),
    }
}

fn kubeconfig_yaml(server: &str, pki: &Pki) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\ncurrent-context: test\n",
        b64(&pki.ca_pem),
        b64(&pki.admin_cert_pem),
        b64(&pki.admin_key_pem)
    )
}

impl ControlPlane {
    /// etcd and kube-apiserver only.
    pub async fn start() -> ControlPlane {
        Self::start_with(Options::default()).await
    }

    /// A control plane with the given extras.
    pub async fn start_with(options: Options) -> ControlPlane {
        let (etcd, apiserver) = (test_bin("etcd"), test_bin("kube-apiserver"));
        let dir = tempfile::Builder::new()
            .prefix("capi-manage-cp-")
            .tempdir()
            .unwrap();
        let d_buf = dir.path().to_path_buf();
        let d = d_buf.as_path();
        let services = service_range();
        let pki = pki(d, services.first);
        let token = format!(
            "admin-{}",
            std::process::id() as u64 * 1_000_003 + free_port() as u64
        );
        write(
            &d.join("tokens.csv"),
            &format!("{token},capi-manage-test-token,token-admin,\"system:masters\"\n"),
        );

        let (client_port, peer_port, port) = (free_port(), free_port(), free_port());
        let mut processes = Vec::new();
        let mut cmd = Command::new(etcd);
        cmd.args([
            "--name=test",
            &format!("--data-dir={}", d.join("etcd").display()),
            &format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
            &format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
            &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]);
        processes.push(Process::spawn("etcd", cmd, &d.join("etcd.log")));

        let apiserver_args: Vec<String> = [
            &format!("--etcd-servers=http://127.0.0.1:{client_port}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            &format!("--secure-port={port}"),
            &format!("--cert-dir={}", d.join("certs").display()),
            &format!("--tls-cert-file={}", pki.serving_cert.display()),
            &format!("--tls-private-key-file={}", pki.serving_key.display()),
            &format!("--client-ca-file={}", pki.ca_file.display()),
            &format!("--token-auth-file={}", d.join("tokens.csv").display()),
            "--service-account-issuer=https://kubernetes.default.svc",
            &format!("--service-account-key-file={}", pki.sa_pub.display()),
            &format!(
                "--service-account-signing-key-file={}",
                pki.sa_key.display()
            ),
            &format!("--service-cluster-ip-range={}", services.cidr),
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let mut cmd = Command::new(apiserver);
        cmd.args(&apiserver_args);
        processes.push(Process::spawn(
            "kube-apiserver",
            cmd,
            &d.join("kube-apiserver.log"),
        ));

        let server = format!("https://127.0.0.1:{port}");
        let kubeconfig = d.join("admin.kubeconfig");
        write(&kubeconfig, &kubeconfig_yaml(&server, &pki));
        let mut cp = ControlPlane {
            attached: Vec::new(),
            processes,
            port,
            kubeconfig,
            ca_pem: pki.ca_pem.clone(),
            token,
            apiserver_args,
            services,
            dir,
        };
        cp.wait_ready().await;

        if options.controllers || options.kwok {
            let kc = cp.kubeconfig.display().to_string();
            let mut cmd = Command::new(test_bin("kube-controller-manager"));
            cmd.args([
                &format!("--kubeconfig={kc}"),
                &format!("--authentication-kubeconfig={kc}"),
                &format!("--authorization-kubeconfig={kc}"),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", free_port()),
                &format!(
                    "--service-account-private-key-file={}",
                    pki.sa_key.display()
                ),
                &format!("--root-ca-file={}", pki.ca_file.display()),
                "--controllers=*,-nodeipam,-cloud-node-lifecycle",
            ]);
            cp.processes.push(Process::spawn(
                "kube-controller-manager",
                cmd,
                &d.join("kube-controller-manager.log"),
            ));
            let mut cmd = Command::new(test_bin("kube-scheduler"));
            cmd.args([
                &format!("--kubeconfig={kc}"),
                &format!("--authentication-kubeconfig={kc}"),
                &format!("--authorization-kubeconfig={kc}"),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={}", free_port()),
            ]);
            cp.processes.push(Process::spawn(
                "kube-scheduler",
                cmd,
                &d.join("kube-scheduler.log"),
            ));
        }
        if options.kwok {
            let mut cmd = Command::new(test_bin("kwok"));
            cmd.args([
                &format!("--kubeconfig={}", cp.kubeconfig.display()),
                "--manage-all-nodes=true",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.1.0.1",
                &format!("--server-address=127.0.0.1:{}", free_port()),
                "--node-lease-duration-seconds=40",
                &format!(
                    "--config={}",
                    super::project_root()
                        .join("tests/data/kwok/stages.yaml")
                        .display()
                ),
            ]);
            cmd.env("HOME", d);
            cp.processes
                .push(Process::spawn("kwok", cmd, &d.join("kwok.log")));
            cp.create_fake_node().await;
        }
        cp
    }

    async fn wait_ready(&mut self) {
        let client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let req = http::Request::get("/readyz").body(Vec::new()).unwrap();
            match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => return,
                _ => {}
            }
            for p in &mut self.processes {
                p.assert_running();
            }
            if Instant::now() > deadline {
                panic!(
                    "kube-apiserver not ready after 90s; last log lines:\n{}",
                    self.processes[1].log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn create_fake_node(&self) {
        use kube::api::{Api, PostParams};
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "kwok-node-0", "labels": {"type": "kwok", "kubernetes.io/hostname": "kwok-node-0", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"}, "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"}}
        }))
        .unwrap();
        let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client().await);
        api.create(&PostParams::default(), &node)
            .await
            .expect("create the kwok node");
    }

    /// The admin kubeconfig file (client-certificate auth, context `test`, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Options that make capi-manage load this cluster's kubeconfig file.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            ..Default::default()
        }
    }

    /// A client loaded through capi-manage's own kubeconfig loading.
    pub async fn client(&self) -> kube::Client {
        capi_manage::kube::connect(&self.client_options())
            .await
            .expect("connect to the test control plane")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Keeps `helper` (e.g. the webhooks) alive as long as the control plane, stopped before it.
    pub fn attach(&mut self, helper: impl std::any::Any + Send) {
        self.attached.push(Box::new(helper));
    }

    /// The Services' ClusterIP range (`127.A.B.0/24`), this control plane's own.
    pub fn service_cidr(&self) -> &str {
        &self.services.cidr
    }

    /// The apiserver's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A static bearer token of a `system:masters` user, for clients that use tokens.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// The control plane's private directory (logs, certificates, etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the apiserver (fault injection).
    pub fn kill_apiserver(&mut self) {
        self.processes[1].kill();
    }

    /// The apiserver's process id (to kill it from a callback that cannot borrow `self`).
    pub fn apiserver_pid(&self) -> u32 {
        self.processes[1].pid()
    }

    /// Starts the apiserver again (after [`ControlPlane::kill_apiserver`]) on the same port with
    /// the same etcd, certificates and flags, and waits until it is ready: the same cluster comes
    /// back with everything it stored.
    pub async fn restart_apiserver(&mut self) {
        self.processes[1].kill();
        let mut cmd = Command::new(test_bin("kube-apiserver"));
        cmd.args(&self.apiserver_args);
        let log = self.dir().join("kube-apiserver.restarted.log");
        self.processes[1] = Process::spawn("kube-apiserver", cmd, &log);
        self.wait_ready().await;
    }

    /// The last log lines of a component (`etcd`, `kube-apiserver`, `kwok`, ...).
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir().join(format!("{component}.log")))
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
