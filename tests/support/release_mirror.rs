//! A mirror of release assets on loopback: a tiny HTTP server, and the release files, served at
//! `/<host>/<path>` of their real release URLs (the layout `capi-manage vendor --mirror` reads).
//!
//! Cluster API's and CAPO's component files are built from their release sources in
//! `../shared/fixtures/upstream/releases/` by the real kustomize, the way their release Makefiles
//! build them: the release image and `IfNotPresent` written into `config/default`'s image and
//! pull-policy patches (`manifest-modification`), then `kustomize build config/default` (CAPO's
//! release adds an overlay setting the image and the pull policy once more). ORC's file is its
//! release `install.yaml`, unchanged. Flux and sealed-secrets are assembled from their upstream
//! CRDs and controller manifests. cert-manager is a small stand-in: a Namespace, its Certificate
//! and Issuer CRDs (written here, schemaless) and its three Deployments.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

// ---------------------------------------------------------------- release files

/// Cluster API's release version the mirror serves.
pub const CAPI_VERSION: &str = "v1.13.3";
/// CAPO's release version the mirror serves.
pub const CAPO_VERSION: &str = "v0.14.6";
/// ORC's release version the mirror serves.
pub const ORC_VERSION: &str = "v2.6.0";
/// cert-manager's version (the stand-in's image tags).
pub const CERT_MANAGER_VERSION: &str = "v1.20.3";

pub const GH: &str = "/github.com";

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

/// A controller's ServiceAccount and Deployment (the pods need the ServiceAccount to be admitted).
pub fn deployment(name: &str, ns: &str, image: &str, args: &[&str]) -> String {
    let args: String = args
        .iter()
        .map(|a| format!("        - \"{a}\"\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {ns}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: manager\n        image: {image}\n        args:\n{args}"
    )
}

/// The mirror path of a Cluster API release asset.
pub fn capi_path(file: &str) -> String {
    format!("{GH}/kubernetes-sigs/cluster-api/releases/download/{CAPI_VERSION}/{file}")
}

/// The mirror path of CAPO's infrastructure components.
pub fn capo_path() -> String {
    format!(
        "{GH}/kubernetes-sigs/cluster-api-provider-openstack/releases/download/{CAPO_VERSION}/infrastructure-components.yaml"
    )
}

/// The mirror path of ORC's install manifest.
pub fn orc_path() -> String {
    format!("{GH}/k-orc/openstack-resource-controller/releases/download/{ORC_VERSION}/install.yaml")
}

/// The mirror path of cert-manager's manifest.
pub fn cert_manager_path() -> String {
    format!(
        "{GH}/cert-manager/cert-manager/releases/download/{CERT_MANAGER_VERSION}/cert-manager.yaml"
    )
}

/// `sed 's@<key>: .*@<key>: <value>@'` over a file, as the release Makefiles' `set-manifest-image`
/// and `set-manifest-pull-policy` do: the first `<key>: ` of each line and what follows.
fn set_field(path: &Path, key: &str, value: &str) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let needle = format!("{key}: ");
    let mut hits = 0;
    let mut out = String::new();
    for line in text.lines() {
        match line.find(&needle) {
            Some(i) => {
                hits += 1;
                out.push_str(&format!("{}{needle}{value}\n", &line[..i]));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(hits > 0, "no `{needle}` in {}", path.display());
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
            // Fixtures may be read-only; the copy is edited.
            let mut perms = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dst, perms).unwrap();
        }
    }
}

fn kustomize_build(dir: &Path) -> String {
    let out = Command::new(super::test_bin("kustomize"))
        .arg("build")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run kustomize build {}: {e}", dir.display()));
    assert!(
        out.status.success(),
        "kustomize build {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize prints UTF-8")
}

/// `config/default` of a release source with the release image and pull policy set, built.
fn build_default(config: &Path, image: &str) -> String {
    let default = config.join("default");
    set_field(&default.join("manager_image_patch.yaml"), "image", image);
    set_field(
        &default.join("manager_pull_policy.yaml"),
        "imagePullPolicy",
        "IfNotPresent",
    );
    kustomize_build(&default)
}

/// Cluster API's core, bootstrap and control-plane components and CAPO's infrastructure
/// components, by mirror path: built once per test process (kustomize takes seconds).
pub fn built_release_files() -> &'static HashMap<String, Vec<u8>> {
    static BUILT: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let work = tempfile::Builder::new()
            .prefix("capi-manage-releases-")
            .tempdir()
            .unwrap();
        let releases = super::fixtures().join("releases");

        let capi = work.path().join("cluster-api");
        copy_tree(&releases.join(format!("cluster-api-{CAPI_VERSION}")), &capi);
        let capi_image = |name: &str| format!("registry.k8s.io/cluster-api/{name}:{CAPI_VERSION}");
        let core = build_default(&capi.join("config"), &capi_image("cluster-api-controller"));
        let bootstrap = build_default(
            &capi.join("bootstrap/kubeadm/config"),
            &capi_image("kubeadm-bootstrap-controller"),
        );
        let control_plane = build_default(
            &capi.join("controlplane/kubeadm/config"),
            &capi_image("kubeadm-control-plane-controller"),
        );

        // CAPO's release: the same edits, then an overlay over the built file that maps the
        // development image to the release image and sets the pull policy on the manager.
        let capo = work.path().join("capo");
        copy_tree(
            &releases.join(format!("cluster-api-provider-openstack-{CAPO_VERSION}")),
            &capo,
        );
        let capo_image = "registry.k8s.io/capi-openstack/capi-openstack-controller";
        let source = build_default(&capo.join("config"), &format!("{capo_image}:{CAPO_VERSION}"));
        let overlay = work.path().join("capo-release");
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(overlay.join("source-manifest.yaml"), source).unwrap();
        std::fs::write(
            overlay.join("pull-policy-patch.yaml"),
            "- op: replace\n  path: /spec/template/spec/containers/0/imagePullPolicy\n  value: IfNotPresent\n",
        )
        .unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- source-manifest.yaml\nimages:\n- name: gcr.io/k8s-staging-capi-openstack/capi-openstack-controller\n  newName: {capo_image}\n  newTag: {CAPO_VERSION}\npatches:\n- path: pull-policy-patch.yaml\n  target:\n    group: apps\n    version: v1\n    kind: Deployment\n    name: capo-controller-manager\n    namespace: capo-system\n"
            ),
        )
        .unwrap();
        let infrastructure = kustomize_build(&overlay);

        [
            (capi_path("core-components.yaml"), core),
            (capi_path("bootstrap-components.yaml"), bootstrap),
            (capi_path("control-plane-components.yaml"), control_plane),
            (capo_path(), infrastructure),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect()
    })
}

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

    // The providers' files hold Certificates and Issuers: the stand-in keeps their CRDs.
    let cm_crd = |plural: &str, kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.cert-manager.io\n  labels:\n    app: cert-manager\nspec:\n  group: cert-manager.io\n  names:\n    kind: {kind}\n    plural: {plural}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
        )
    };
    let cm_image =
        |name: &str| format!("quay.io/jetstack/cert-manager-{name}:{CERT_MANAGER_VERSION}");
    let cert_manager = join(&[
        namespace("cert-manager"),
        cm_crd("certificates", "Certificate"),
        cm_crd("issuers", "Issuer"),
        deployment(
            "cert-manager",
            "cert-manager",
            &cm_image("controller"),
            &["--v=2"],
        ),
        deployment(
            "cert-manager-cainjector",
            "cert-manager",
            &cm_image("cainjector"),
            &["--v=2"],
        ),
        deployment(
            "cert-manager-webhook",
            "cert-manager",
            &cm_image("webhook"),
            &["--v=2"],
        ),
    ]);

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

    let orc = std::fs::read(super::fixtures().join(format!(
        "releases/openstack-resource-controller-{ORC_VERSION}/dist/install.yaml"
    )))
    .expect("read ORC's release install.yaml");

    let mut files: HashMap<String, Vec<u8>> = [
        (
            format!("{GH}/fluxcd/flux2/releases/download/v2.9.4/install.yaml"),
            join(&flux),
        ),
        (cert_manager_path(), cert_manager),
        (
            format!("{GH}/bitnami-labs/sealed-secrets/releases/download/v0.36.6/controller.yaml"),
            join(&sealed),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.into_bytes()))
    .collect();
    files.insert(orc_path(), orc);
    files.extend(
        built_release_files()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    files
}

/// A `vendor-manifests/vendor.toml` pinning exactly what the mirror serves, in install order.
pub fn vendor_toml() -> String {
    let https = |path: String| format!("https:/{path}");
    format!(
        "[[component]]\nname = \"flux\"\nversion = \"v2.9.4\"\nassets = [\"https://github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml\"]\n\n\
         [[component]]\nname = \"cert-manager\"\nversion = \"{CERT_MANAGER_VERSION}\"\nclusterctl = \"cert-manager\"\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"cluster-api\"\nversion = \"{CAPI_VERSION}\"\nprovider = {{ name = \"cluster-api\", type = \"CoreProvider\" }}\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"bootstrap-kubeadm\"\nversion = \"{CAPI_VERSION}\"\nprovider = {{ name = \"kubeadm\", type = \"BootstrapProvider\" }}\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"control-plane-kubeadm\"\nversion = \"{CAPI_VERSION}\"\nprovider = {{ name = \"kubeadm\", type = \"ControlPlaneProvider\" }}\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"orc\"\nversion = \"{ORC_VERSION}\"\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"infrastructure-openstack\"\nversion = \"{CAPO_VERSION}\"\nprovider = {{ name = \"openstack\", type = \"InfrastructureProvider\" }}\nassets = [\"{}\"]\n\n\
         [[component]]\nname = \"sealed-secrets\"\nversion = \"v0.36.6\"\nassets = [\"https://github.com/bitnami-labs/sealed-secrets/releases/download/v0.36.6/controller.yaml\"]\n",
        https(cert_manager_path()),
        https(capi_path("core-components.yaml")),
        https(capi_path("bootstrap-components.yaml")),
        https(capi_path("control-plane-components.yaml")),
        https(orc_path()),
        https(capo_path()),
    )
}

/// The objects of cert-manager (the stand-in), Cluster API (core, kubeadm bootstrap and control
/// plane), ORC and CAPO as capi-manage installs them: vendored from the mirror with
/// [`vendor_toml`] (clusterctl's processing included), once per test process.
pub async fn release_components() -> Vec<capi_manage::manifest::Object> {
    static VENDORED: tokio::sync::OnceCell<Vec<capi_manage::manifest::Object>> =
        tokio::sync::OnceCell::const_new();
    VENDORED
        .get_or_init(|| async {
            let mirror = Mirror::start(release_files());
            let repo = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(repo.path().join("vendor-manifests")).unwrap();
            std::fs::write(
                repo.path().join("vendor-manifests/vendor.toml"),
                vendor_toml(),
            )
            .unwrap();
            let options = capi_manage::components::VendorOptions {
                trust_mirror_for_new_assets: true,
                mirror: Some(mirror.base.clone()),
                ..Default::default()
            };
            capi_manage::components::vendor(
                repo.path(),
                &options,
                &capi_manage::observe::Silent,
                &tokio_util::sync::CancellationToken::new(),
            )
            .await
            .expect("vendor the release files from the mirror");
            capi_manage::components::load(repo.path())
                .expect("load the vendored release files")
                .components
                .into_iter()
                .filter(|c| !["flux", "sealed-secrets"].contains(&c.name.as_str()))
                .flat_map(|c| c.objects)
                .collect()
        })
        .await
        .clone()
}
