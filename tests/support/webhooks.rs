//! The real Cluster API and CAPO webhooks for a test control plane: the upstream managers
//! (`capi-manager`, `capi-kubeadm-bootstrap-manager`, `capi-kubeadm-control-plane-manager`,
//! `capo-manager`, built by `scripts/test-binaries` at the pinned versions) run on this host as
//! the webhook servers of the cluster: conversion, defaulting and validation. Their reconcilers
//! stay idle (`--watch-filter` with a value no object carries) unless the test asks for them
//! ([`Webhooks::start_reconciling`]: CAPO against the loopback OpenStack). Leader election
//! is off, the CRD storage-version migration skipped (it would rewrite stored objects and CRD
//! status).
//!
//! The release manifests stay unchanged: their webhook configurations and CRD conversion
//! settings name the provider's webhook `Service`, which kube-apiserver resolves to the Service's
//! ClusterIP. The control plane's ClusterIPs are loopback addresses (see `control_plane.rs`), so
//! a relay on `<ClusterIP>:<port>` forwards each call to the manager's webhook port. Serving
//! certificates come from a test CA, for the Service's DNS names, and this harness plays
//! cert-manager's cainjector: every webhook configuration and CRD conversion webhook annotated
//! `cert-manager.io/inject-ca-from` a provider's namespace gets the test CA as `caBundle` (a
//! different value is overwritten, also after a re-apply).
//!
//! Everything is lazy, since capi-manage itself installs the components: a background task waits
//! for each provider's CRDs, Deployment and webhook Service, then starts its manager (again if it
//! exits) with the Deployment's own arguments (feature gates) and environment, binds the relay and
//! injects the CA. [`Webhooks::wait_ready`] waits until all four answer through their Service.
//! Dropping [`Webhooks`] stops everything.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use ::kube::core::{ApiResource, GroupVersionKind};
use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ControlPlane, free_port, test_bin};

/// The annotation cert-manager's cainjector acts on.
const INJECT: &str = "cert-manager.io/inject-ca-from";
/// A watch-filter value no object carries: the reconcilers ignore every object.
const WATCH_FILTER: &str = "capi-manage-test-webhooks-only";
/// The field manager of the CA injection.
const MANAGER: &str = "capi-manage-test-cainjector";

/// One provider's manager and the objects of its release it needs.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Short name, used for logs and reports.
    pub name: &'static str,
    /// The binary in the test-bin directory.
    pub binary: &'static str,
    /// The webhook Service of its release.
    pub service: &'static str,
    /// The Deployment of its release (its arguments and environment are reused).
    pub deployment: &'static str,
    /// CRDs the manager watches, which must exist before it starts.
    pub crds: &'static [&'static str],
}

const CLUSTERS: &str = "clusters.cluster.x-k8s.io";

/// The four managers.
pub const PROVIDERS: [Provider; 4] = [
    Provider {
        name: "capi",
        binary: "capi-manager",
        service: "capi-webhook-service",
        deployment: "capi-controller-manager",
        crds: &[
            CLUSTERS,
            "machines.cluster.x-k8s.io",
            "machinedeployments.cluster.x-k8s.io",
            "machinepools.cluster.x-k8s.io",
        ],
    },
    Provider {
        name: "capi-kubeadm-bootstrap",
        binary: "capi-kubeadm-bootstrap-manager",
        service: "capi-kubeadm-bootstrap-webhook-service",
        deployment: "capi-kubeadm-bootstrap-controller-manager",
        crds: &[
            CLUSTERS,
            "machines.cluster.x-k8s.io",
            "kubeadmconfigs.bootstrap.cluster.x-k8s.io",
        ],
    },
    Provider {
        name: "capi-kubeadm-control-plane",
        binary: "capi-kubeadm-control-plane-manager",
        service: "capi-kubeadm-control-plane-webhook-service",
        deployment: "capi-kubeadm-control-plane-controller-manager",
        crds: &[
            CLUSTERS,
            "machines.cluster.x-k8s.io",
            "kubeadmconfigs.bootstrap.cluster.x-k8s.io",
            "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
        ],
    },
    Provider {
        name: "capo",
        binary: "capo-manager",
        service: "capo-webhook-service",
        deployment: "capo-controller-manager",
        crds: &[
            CLUSTERS,
            "openstackclusters.infrastructure.cluster.x-k8s.io",
            "openstackmachines.infrastructure.cluster.x-k8s.io",
            "images.openstack.k-orc.cloud",
        ],
    },
];

/// What the harness knows about one provider.
#[derive(Debug, Clone, Default)]
pub struct ProviderStatus {
    /// The namespace of its webhook Service, once it exists.
    pub namespace: Option<String>,
    /// The address the relay listens on (`<ClusterIP>:<port>`).
    pub relay: Option<SocketAddr>,
    /// The manager's process id while it runs.
    pub pid: Option<u32>,
    /// How many times the manager was started.
    pub starts: u32,
    /// From the manager's (last) start until its webhook first answered through the Service.
    pub ready_after: Option<Duration>,
    /// The webhook answered through the Service (TLS verified against the test CA).
    pub answers: bool,
    /// Every object annotated for this provider's namespace carries the test CA.
    pub injected: bool,
    /// The manager's current log file.
    pub log: Option<PathBuf>,
    /// The last problem seen (a failed start, an exit, a refused bind, ...).
    pub problem: Option<String>,
}

struct Shared {
    status: Mutex<BTreeMap<&'static str, ProviderStatus>>,
    children: Mutex<HashMap<&'static str, Child>>,
}

/// The running webhooks of one control plane. Drop it before the control plane.
pub struct Webhooks {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    ca_pem: String,
}

/// The test CA: its PEM and an issuer for serving certificates.
struct Ca {
    pem: String,
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "capi-manage-test-webhook-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

/// Writes `tls.crt` and `tls.key` for the Service's DNS names into `dir`.
fn serving_cert(ca: &Ca, service: &str, namespace: &str, dir: &Path) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ])
    .unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
}

impl Webhooks {
    /// Starts the background task for `cp`. Nothing runs until the providers' objects exist.
    /// Every reconciler stays idle.
    pub async fn start(cp: &ControlPlane) -> Webhooks {
        Webhooks::start_reconciling(cp, &[]).await
    }

    /// As [`Webhooks::start`], with the reconcilers of the providers named in `reconciling`
    /// (e.g. `["capo"]`) running for real, with no watch filter.
    pub async fn start_reconciling(cp: &ControlPlane, reconciling: &[&'static str]) -> Webhooks {
        for p in PROVIDERS {
            test_bin(p.binary);
        }
        let ca = new_ca();
        let ca_pem = ca.pem.clone();
        let shared = Arc::new(Shared {
            status: Mutex::new(
                PROVIDERS
                    .iter()
                    .map(|p| (p.name, ProviderStatus::default()))
                    .collect(),
            ),
            children: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        let run = Run {
            client: cp.client().await,
            kubeconfig: cp.kubeconfig_path().to_path_buf(),
            dir: cp.dir().join("webhooks"),
            ca,
            shared: shared.clone(),
            cancel: cancel.clone(),
            managers: HashMap::new(),
            relays: HashMap::new(),
            verified_crds: HashMap::new(),
            reconciling: reconciling.to_vec(),
        };
        std::fs::create_dir_all(&run.dir).unwrap();
        let task = tokio::spawn(run.run());
        Webhooks {
            shared,
            cancel,
            task,
            ca_pem,
        }
    }

    /// The test CA (PEM) that signs the managers' serving certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every provider's status.
    pub fn status(&self) -> BTreeMap<&'static str, ProviderStatus> {
        self.shared.status.lock().unwrap().clone()
    }

    /// Waits until all four webhooks answer through their Service and every annotated object
    /// carries the test CA; panics after `timeout` with each provider's status and log tail.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if status.values().all(|s| s.answers && s.injected) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "webhooks not ready after {timeout:?}:\n{}",
                    self.describe(&status)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Each provider's status and the tail of its manager's log, for failure messages.
    pub fn describe(&self, status: &BTreeMap<&'static str, ProviderStatus>) -> String {
        status
            .iter()
            .map(|(name, s)| {
                format!(
                    "{name}: {s:?}\n  log tail:\n{}",
                    s.log
                        .as_deref()
                        .map(|l| log_tail(l, 15))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Per provider: the time its manager took to answer, and its resident memory now (KiB).
    pub fn report(&self) -> Vec<(&'static str, Option<Duration>, Option<u64>)> {
        self.status()
            .into_iter()
            .map(|(name, s)| (name, s.ready_after, s.pid.and_then(rss_kib)))
            .collect()
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
        for (_, mut child) in self.shared.children.lock().unwrap().drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A started manager.
struct Manager {
    started: Instant,
    webhook_port: u16,
}

/// A bound relay.
struct Relay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The background task's state.
struct Run {
    client: ::kube::Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
    ca: Ca,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    managers: HashMap<&'static str, Manager>,
    relays: HashMap<&'static str, Relay>,
    /// CRDs found carrying the CA, by name: the resourceVersion seen then.
    verified_crds: HashMap<String, String>,
    /// The providers whose reconcilers run.
    reconciling: Vec<&'static str>,
}

impl Run {
    async fn run(mut self) {
        while !self.cancel.is_cancelled() {
            if let Err(e) = self.round().await {
                // The apiserver may be restarting: note it and try again.
                for s in self.shared.status.lock().unwrap().values_mut() {
                    s.problem = Some(format!("round failed: {e}"));
                }
            }
            // Quick rounds while something is missing, calmer ones once all answer (the CA is
            // still re-injected within a second of a re-apply).
            let settled =
                (self.shared.status.lock().unwrap().values()).all(|s| s.answers && s.injected);
            let pause = Duration::from_millis(if settled { 1000 } else { 300 });
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.relays.clear();
    }

    fn set(&self, provider: &'static str, f: impl FnOnce(&mut ProviderStatus)) {
        f(self
            .shared
            .status
            .lock()
            .unwrap()
            .get_mut(provider)
            .unwrap())
    }

    async fn round(&mut self) -> Result<(), ::kube::Error> {
        let services = Api::<Service>::all(self.client.clone())
            .list(&ListParams::default())
            .await?;
        let mut namespaces = Vec::new();
        for p in PROVIDERS {
            let Some(svc) = services
                .items
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(p.service))
            else {
                continue;
            };
            let ns = svc.metadata.namespace.clone().unwrap_or_default();
            namespaces.push(ns.clone());
            self.set(p.name, |s| s.namespace = Some(ns.clone()));
            self.manager(p, &ns).await?;
            self.relay(p, svc);
            self.probe(p, &ns).await;
        }
        let injected = self.inject(&namespaces).await?;
        for p in PROVIDERS {
            let ns = self.shared.status.lock().unwrap()[p.name].namespace.clone();
            let ok = ns.is_some_and(|ns| injected.get(&ns) == Some(&true));
            self.set(p.name, |s| s.injected = ok);
        }
        Ok(())
    }

    /// Starts the provider's manager once its objects exist; starts it again if it exited.
    async fn manager(&mut self, p: Provider, ns: &str) -> Result<(), ::kube::Error> {
        if self.managers.contains_key(p.name) {
            let exited = {
                let mut children = self.shared.children.lock().unwrap();
                match children.get_mut(p.name).map(|c| c.try_wait()) {
                    Some(Ok(Some(status))) => {
                        children.remove(p.name);
                        Some(status.to_string())
                    }
                    Some(Ok(None)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                    None => Some("gone".into()),
                }
            };
            match exited {
                None => return Ok(()),
                Some(why) => {
                    self.managers.remove(p.name);
                    self.relays.remove(p.name);
                    self.set(p.name, |s| {
                        s.problem = Some(format!("manager exited ({why}); starting it again"));
                        s.pid = None;
                        s.answers = false;
                    });
                }
            }
        }
        let crds = dynamic(
            &self.client,
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
        );
        for crd in p.crds {
            if crds.get_metadata_opt(crd).await?.is_none() {
                return Ok(());
            }
        }
        let Some(deployment) = Api::<Deployment>::namespaced(self.client.clone(), ns)
            .get_opt(p.deployment)
            .await?
        else {
            return Ok(());
        };
        let container = deployment
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == "manager"))
            .cloned()
            .unwrap_or_else(|| panic!("{} has no container `manager`", p.deployment));

        let dir = self.dir.join(p.name);
        let cert_dir = dir.join("certs");
        serving_cert(&self.ca, p.service, ns, &cert_dir);
        let webhook_port = free_port();
        let mut args: Vec<String> = container
            .args
            .unwrap_or_default()
            .iter()
            .map(|a| resolve_defaults(a))
            .filter(|a| !OVERRIDDEN.iter().any(|f| flag_is(a, f)))
            .collect();
        args.extend([
            "--leader-elect=false".to_string(),
            "--diagnostics-address=0".to_string(),
            format!("--health-addr=127.0.0.1:{}", free_port()),
            format!("--webhook-port={webhook_port}"),
            format!("--webhook-cert-dir={}", cert_dir.display()),
            "--skip-crd-migration-phases=StorageVersionMigration".to_string(),
            "--skip-crd-migration-phases=CleanupManagedFields".to_string(),
        ]);
        if !self.reconciling.contains(&p.name) {
            args.push(format!("--watch-filter={WATCH_FILTER}"));
        }
        let mut cmd = Command::new(test_bin(p.binary));
        cmd.args(&args).env("KUBECONFIG", &self.kubeconfig);
        for e in container.env.unwrap_or_default() {
            let value = match (
                &e.value,
                e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()),
            ) {
                (Some(v), _) => v.clone(),
                (None, Some(f)) => match f.field_path.as_str() {
                    "metadata.namespace" => ns.to_string(),
                    "metadata.name" => format!("{}-test", p.deployment),
                    "metadata.uid" => "00000000-0000-4000-8000-000000000001".to_string(),
                    _ => continue,
                },
                _ => continue,
            };
            cmd.env(&e.name, value);
        }
        let starts = self.shared.status.lock().unwrap()[p.name].starts + 1;
        let log = dir.join(format!("manager-{starts}.log"));
        let child = spawn(cmd, &log);
        self.set(p.name, |s| {
            s.starts = starts;
            s.pid = Some(child.id());
            s.log = Some(log.clone());
            s.answers = false;
            s.ready_after = None;
        });
        self.shared.children.lock().unwrap().insert(p.name, child);
        self.managers.insert(
            p.name,
            Manager {
                started: Instant::now(),
                webhook_port,
            },
        );
        Ok(())
    }

    /// Listens on the Service's ClusterIP and port, forwarding to the manager's webhook port.
    fn relay(&mut self, p: Provider, svc: &Service) {
        let Some(manager) = self.managers.get(p.name) else {
            return;
        };
        let spec = svc.spec.clone().unwrap_or_default();
        let (Some(ip), Some(port)) = (
            spec.cluster_ip.as_deref(),
            spec.ports
                .as_ref()
                .and_then(|ps| ps.first())
                .map(|p| p.port),
        ) else {
            return;
        };
        let ip: Ipv4Addr = match ip.parse() {
            Ok(ip) if Ipv4Addr::is_loopback(&ip) => ip,
            _ => {
                self.set(p.name, |s| {
                    s.problem = Some(format!(
                        "ClusterIP {ip} is not a loopback address: the control plane needs a loopback service range"
                    ))
                });
                return;
            }
        };
        let addr = SocketAddr::from((ip, port as u16));
        if self.relays.get(p.name).is_some_and(|r| r.addr == addr) {
            return;
        }
        self.relays.remove(p.name);
        let listener = match std::net::TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                self.set(p.name, |s| {
                    s.problem = Some(format!(
                        "bind {addr}: {e} (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                    ))
                });
                return;
            }
        };
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let target = manager.webhook_port;
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.relays.insert(p.name, Relay { addr, task });
        self.set(p.name, |s| s.relay = Some(addr));
    }

    /// One HTTPS request to the webhook server through the relay, verified against the test CA
    /// for the Service's DNS name: any HTTP answer means the webhook is served.
    async fn probe(&mut self, p: Provider, ns: &str) {
        let (Some(manager), Some(relay)) = (self.managers.get(p.name), self.relays.get(p.name))
        else {
            return;
        };
        if self.shared.status.lock().unwrap()[p.name].answers {
            return;
        }
        let host = format!("{}.{ns}.svc", p.service);
        let url = format!("https://{host}:{}/", relay.addr.port());
        // The DNS name resolves to the relay, as kube-apiserver resolves the Service.
        let client = prober(&self.ca.der, &host, relay.addr);
        let started = manager.started;
        match client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(_) => self.set(p.name, |s| {
                s.answers = true;
                s.ready_after = Some(started.elapsed());
                s.problem = None;
            }),
            Err(e) => self.set(p.name, |s| {
                s.problem = Some(format!("probe {url}: {}", super::error_chain(&e)))
            }),
        }
    }

    /// Plays cert-manager's cainjector for the providers' namespaces. Returns, per namespace,
    /// whether annotated objects were seen and all of them carry the CA.
    async fn inject(
        &mut self,
        namespaces: &[String],
    ) -> Result<HashMap<String, bool>, ::kube::Error> {
        let want = base64::engine::general_purpose::STANDARD.encode(&self.ca.pem);
        let ours = |annotations: Option<&BTreeMap<String, String>>| -> Option<String> {
            let ns = annotations?.get(INJECT)?.split('/').next()?;
            namespaces.iter().any(|n| n == ns).then(|| ns.to_string())
        };
        let mut done: HashMap<String, bool> = HashMap::new();
        let mut note = |ns: String, ok: bool| *done.entry(ns).or_insert(true) &= ok;
        for kind in [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            let api = dynamic(&self.client, "admissionregistration.k8s.io", kind);
            for o in api.list(&ListParams::default()).await?.items {
                let Some(ns) = ours(o.metadata.annotations.as_ref()) else {
                    continue;
                };
                let mut webhooks = o.data["webhooks"].as_array().cloned().unwrap_or_default();
                let stale: Vec<&mut Value> = webhooks
                    .iter_mut()
                    .filter(|w| w["clientConfig"]["caBundle"].as_str() != Some(want.as_str()))
                    .collect();
                if stale.is_empty() {
                    note(ns, true);
                    continue;
                }
                for w in stale {
                    w["clientConfig"]["caBundle"] = json!(want);
                }
                // A merge patch replaces the list; the resourceVersion makes it fail rather than
                // overwrite a concurrent change (the next round tries again).
                let patch = json!({
                    "metadata": {"resourceVersion": o.metadata.resource_version},
                    "webhooks": webhooks,
                });
                let name = o.metadata.name.unwrap_or_default();
                let ok = api
                    .patch(&name, &params(), &Patch::Merge(&patch))
                    .await
                    .is_ok();
                note(ns, ok);
            }
        }
        let crds = dynamic(
            &self.client,
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
        );
        for m in crds.list_metadata(&ListParams::default()).await?.items {
            let Some(ns) = ours(m.metadata.annotations.as_ref()) else {
                continue;
            };
            let name = m.metadata.name.clone().unwrap_or_default();
            let rv = m.metadata.resource_version.clone().unwrap_or_default();
            if self.verified_crds.get(&name) == Some(&rv) {
                note(ns, true);
                continue;
            }
            let crd = crds.get(&name).await?;
            let conversion = &crd.data["spec"]["conversion"];
            if conversion["strategy"].as_str() != Some("Webhook")
                || conversion["webhook"]["clientConfig"]["caBundle"].as_str() == Some(&want)
            {
                self.verified_crds.insert(name, rv);
                note(ns, true);
                continue;
            }
            let patch =
                json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": want}}}}});
            match crds.patch(&name, &params(), &Patch::Merge(&patch)).await {
                Ok(after) => {
                    let rv = after.metadata.resource_version.unwrap_or_default();
                    self.verified_crds.insert(name, rv);
                    note(ns, true);
                }
                Err(_) => note(ns, false),
            }
        }
        Ok(done)
    }
}

/// The cluster-scoped API of `kind` in `group`/v1.
fn dynamic(client: &::kube::Client, group: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

/// Patches as the test's cainjector.
fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Flags the harness sets itself (the Deployment's values are dropped).
const OVERRIDDEN: [&str; 9] = [
    "leader-elect",
    "diagnostics-address",
    "insecure-diagnostics",
    "metrics-bind-addr",
    "health-addr",
    "webhook-port",
    "webhook-cert-dir",
    "watch-filter",
    "skip-crd-migration-phases",
];

fn flag_is(arg: &str, flag: &str) -> bool {
    arg.strip_prefix("--")
        .and_then(|a| a.strip_prefix(flag))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
}

/// `${NAME:=default}` → `default`, for Deployments applied without clusterctl's processing.
fn resolve_defaults(arg: &str) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        out.push_str(inner.split_once(":=").map(|(_, d)| d).unwrap_or(""));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Starts a manager, its output to `log`, killed with the test process (PR_SET_PDEATHSIG).
pub(super) fn spawn(mut cmd: Command, log: &Path) -> Child {
    let out =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().unwrap();
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()))
}

/// A TLS client trusting only the test CA, resolving `host` to `addr`.
fn prober(ca_der: &[u8], host: &str, addr: SocketAddr) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .resolve(host, addr)
        .build()
        .unwrap()
}
