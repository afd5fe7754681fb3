//! A mirror of release assets on loopback: a tiny HTTP server, and release-like files built from
//! the upstream fixtures, served at `/<host>/<path>` of their real release URLs (the layout
//! `capi-manage vendor --mirror` reads). cert-manager is a small stand-in: a Namespace, two CRDs
//! written here and its three Deployments.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------- the mirror

/// A tiny HTTP/1.1 server: GET of a path it holds answers the bytes, anything else 404.
pub struct Mirror {
    pub base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Answer this many requests with 503 before serving.
    pub fail_next: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Mirror {
    pub fn start(files: HashMap<String, Vec<u8>>) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let files = Arc::new(Mutex::new(files));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (files, fail_next, requests, stop) = (
                files.clone(),
                fail_next.clone(),
                requests.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    requests.fetch_add(1, Ordering::Relaxed);
                    let fail = fail_next
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok();
                    let files = files.clone();
                    std::thread::spawn(move || serve(stream, &files, fail));
                }
            });
        }
        Mirror {
            base: format!("http://127.0.0.1:{port}/"),
            files,
            fail_next,
            requests,
            stop,
            port,
        }
    }

    pub fn set(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), bytes);
    }

    pub fn remove(&self, path: &str) {
        self.files.lock().unwrap().remove(path);
    }

    pub fn get(&self, path: &str) -> Vec<u8> {
        self.files.lock().unwrap()[path].clone()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>, fail: bool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let body = files.lock().unwrap().get(&path).cloned();
    let (status, body) = match (fail, body) {
        (true, _) => ("503 Service Unavailable", b"busy".to_vec()),
        (false, Some(b)) => ("200 OK", b),
        (false, None) => ("404 Not Found", b"not here".to_vec()),
    };
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/yaml\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(&body);
    let _ = out.flush();
    let _ = out.read(&mut [0u8; 1]);
}

// ---------------------------------------------------------------- release-like files

pub fn fixture(rel: &str) -> String {
    let p = super::fixtures().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

pub fn fixtures_matching(dir: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(super::fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| pred(n))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {dir}");
    names
        .iter()
        .map(|n| fixture(&format!("{dir}/{n}")))
        .collect()
}

pub fn join(docs: &[String]) -> String {
    docs.iter()
        .map(|d| d.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n"
}

pub fn namespace(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    control-plane: controller-manager\n"
    )
}

/// A controller's ServiceAccount and Deployment as providers publish them, with clusterctl
/// variables in its args (the pods need the ServiceAccount to be admitted).
pub fn deployment(name: &str, ns: &str, image: &str, args: &[&str]) -> String {
    let args: String = args
        .iter()
        .map(|a| format!("        - \"{a}\"\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {ns}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: manager\n        image: {image}\n        args:\n{args}"
    )
}

/// The RBAC, webhook Service, serving Certificate and webhook configuration a provider ships.
pub fn provider_plumbing(prefix: &str, ns: &str) -> Vec<String> {
    vec![
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {prefix}-manager\n  namespace: {ns}\n"
        ),
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {prefix}-manager-role\nrules:\n- apiGroups: [\"\"]\n  resources: [\"secrets\"]\n  verbs: [\"get\"]\n"
        ),
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {prefix}-manager-rolebinding\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {prefix}-manager-role\nsubjects:\n- kind: ServiceAccount\n  name: {prefix}-manager\n  namespace: {ns}\n"
        ),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {prefix}-webhook-service\n  namespace: {ns}\nspec:\n  ports:\n  - port: 443\n    targetPort: 9443\n  selector:\n    app: {prefix}\n"
        ),
        format!(
            "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: {prefix}-serving-cert\n  namespace: {ns}\nspec:\n  dnsNames:\n  - {prefix}-webhook-service.{ns}.svc\n  - {prefix}-webhook-service.{ns}.svc.cluster.local\n  issuerRef:\n    kind: Issuer\n    name: {prefix}-selfsigned-issuer\n  secretName: {prefix}-webhook-service-cert\n"
        ),
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {prefix}-validating-webhook-configuration\n  annotations:\n    cert-manager.io/inject-ca-from: {ns}/{prefix}-serving-cert\nwebhooks:\n- admissionReviewVersions: [\"v1\"]\n  clientConfig:\n    service:\n      name: {prefix}-webhook-service\n      namespace: {ns}\n      path: /validate\n  failurePolicy: Fail\n  name: validation.{prefix}.x-k8s.io\n  sideEffects: None\n"
        ),
    ]
}

pub fn provider_file(
    ns: &str,
    prefix: &str,
    crds: Vec<String>,
    image: &str,
    args: &[&str],
) -> String {
    let mut docs = vec![namespace(ns)];
    docs.extend(crds);
    docs.extend(provider_plumbing(prefix, ns));
    docs.push(deployment(
        &format!("{prefix}-controller-manager"),
        ns,
        image,
        args,
    ));
    join(&docs)
}

pub const GH: &str = "/github.com";

/// The served files, by mirror path (`/<host>/<path>` of the real release URLs).
pub fn release_files() -> HashMap<String, Vec<u8>> {
    let mut flux = vec![fixture("flux/install-namespace.yaml")];
    flux.extend(fixtures_matching("flux", |n| n.starts_with("crd-")));
    flux.extend(fixtures_matching("flux", |n| n.starts_with("rbac-")));
    // flux2's release puts the controllers (and their ServiceAccounts) in flux-system.
    for d in fixtures_matching("flux", |n| n.ends_with("-deployment.yaml")) {
        let name = d
            .lines()
            .find_map(|l| l.strip_prefix("  name: "))
            .expect("a named Deployment")
            .trim()
            .to_string();
        flux.push(format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: flux-system\n"
        ));
        flux.push(d.replacen(
            &format!("metadata:\n  name: {name}\n"),
            &format!("metadata:\n  name: {name}\n  namespace: flux-system\n"),
            1,
        ));
    }

    let cm_crd = |plural: &str, kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.cert-manager.io\n  labels:\n    app: cert-manager\nspec:\n  group: cert-manager.io\n  names:\n    kind: {kind}\n    plural: {plural}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
        )
    };
    let cert_manager = join(&[
        namespace("cert-manager"),
        cm_crd("certificates", "Certificate"),
        cm_crd("issuers", "Issuer"),
        deployment(
            "cert-manager",
            "cert-manager",
            "quay.io/jetstack/cert-manager-controller:v1.21.1",
            &["--v=2"],
        ),
        deployment(
            "cert-manager-cainjector",
            "cert-manager",
            "quay.io/jetstack/cert-manager-cainjector:v1.21.1",
            &["--v=2"],
        ),
        deployment(
            "cert-manager-webhook",
            "cert-manager",
            "quay.io/jetstack/cert-manager-webhook:v1.21.1",
            &["--v=2"],
        ),
    ]);

    let core = provider_file(
        "capi-system",
        "capi",
        fixtures_matching("cluster-api", |n| {
            ["cluster.x-k8s.io_", "addons.", "ipam.", "runtime."]
                .iter()
                .any(|p| n.starts_with(p))
        }),
        "registry.k8s.io/cluster-api/cluster-api-controller:v1.14.0",
        &[
            "--leader-elect",
            "--diagnostics-address=${CAPI_DIAGNOSTICS_ADDRESS:=:8443}",
            "--insecure-diagnostics=${CAPI_INSECURE_DIAGNOSTICS:=false}",
            "--feature-gates=MachinePool=${EXP_MACHINE_POOL:=true},ClusterResourceSet=${EXP_CLUSTER_RESOURCE_SET:=true},ClusterTopology=${CLUSTER_TOPOLOGY:=false},RuntimeSDK=${EXP_RUNTIME_SDK:=false}",
        ],
    );
    let bootstrap = provider_file(
        "capi-kubeadm-bootstrap-system",
        "capi-kubeadm-bootstrap",
        fixtures_matching("cluster-api", |n| n.starts_with("bootstrap.")),
        "registry.k8s.io/cluster-api/kubeadm-bootstrap-controller:v1.14.0",
        &[
            "--leader-elect",
            "--feature-gates=MachinePool=${EXP_MACHINE_POOL:=true},KubeadmBootstrapFormatIgnition=${EXP_KUBEADM_BOOTSTRAP_FORMAT_IGNITION:=false}",
            "--bootstrap-token-ttl=${KUBEADM_BOOTSTRAP_TOKEN_TTL:=15m}",
        ],
    );
    let control_plane = provider_file(
        "capi-kubeadm-control-plane-system",
        "capi-kubeadm-control-plane",
        fixtures_matching("cluster-api", |n| n.starts_with("controlplane.")),
        "registry.k8s.io/cluster-api/kubeadm-control-plane-controller:v1.14.0",
        &[
            "--leader-elect",
            "--feature-gates=ClusterTopology=${CLUSTER_TOPOLOGY:=false},KubeadmBootstrapFormatIgnition=${EXP_KUBEADM_BOOTSTRAP_FORMAT_IGNITION:=false}",
        ],
    );
    let capo = provider_file(
        "capo-system",
        "capo",
        fixtures_matching("openstack", |_| true),
        "registry.k8s.io/capi-openstack/capi-openstack-controller:v0.14.7",
        &[
            "--leader-elect",
            "--v=2",
            "--diagnostics-address=${CAPO_DIAGNOSTICS_ADDRESS:=:8443}",
        ],
    );
    let mut sealed = vec![fixture("sealed-secrets/bitnami.com_sealedsecrets.yaml")];
    sealed.push(deployment(
        "sealed-secrets-controller",
        "kube-system",
        "docker.io/bitnami/sealed-secrets-controller:0.36.6",
        &["--update-status"],
    ));
    sealed.push(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: sealed-secrets-controller\n  namespace: kube-system\nspec:\n  ports:\n  - name: http\n    port: 8080\n    targetPort: 8080\n  selector:\n    name: sealed-secrets-controller\n".to_string(),
    );

    let capi = format!("{GH}/kubernetes-sigs/cluster-api/releases/download/v1.14.0");
    [
        (format!("{GH}/fluxcd/flux2/releases/download/v2.9.4/install.yaml"), join(&flux)),
        (format!("{GH}/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml"), cert_manager),
        (format!("{capi}/core-components.yaml"), core),
        (format!("{capi}/bootstrap-components.yaml"), bootstrap),
        (format!("{capi}/control-plane-components.yaml"), control_plane),
        (format!("{GH}/kubernetes-sigs/cluster-api-provider-openstack/releases/download/v0.14.7/infrastructure-components.yaml"), capo),
        (format!("{GH}/bitnami-labs/sealed-secrets/releases/download/v0.36.6/controller.yaml"), join(&sealed)),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.into_bytes()))
    .collect()
}
