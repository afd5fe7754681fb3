//! Round trips through the REAL sealed-secrets controller (same Go module version as kubeseal)
//! running against a real kube-apiserver.
//!
//! The controller only runs in-cluster: it reads the service-account token and CA from the
//! path client-go hard-codes, so each controller runs in a private mount namespace
//! (`unshare -m`) where its own directory is bind-mounted there; parallel tests do not clash.
//! The API server refuses to proxy to loopback endpoints, so for the service-proxy path the
//! controller listens on a non-loopback address of this machine and its Service's Endpoints
//! point there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use capi_manage::kube::Discovery;
use capi_manage::manifest::{Object, parse_file, parse_str};
use capi_manage::seal::fetch_certificate;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};

use super::{assert_one_line_error, capi, kubeseal, ok, redacted};
use crate::support::{ControlPlane, Process, project_root, sealed_secrets};

pub(crate) const NS: &str = capi_manage::seal::DEFAULT_CONTROLLER_NAMESPACE;
const NAME: &str = capi_manage::seal::DEFAULT_CONTROLLER_NAME;

/// A running controller and the cluster it serves.
pub(crate) struct Controller {
    pub(crate) cp: ControlPlane,
    process: Process,
}

async fn apply_all(cp: &ControlPlane, objects: &[Object]) {
    crate::support::capi::apply_all(&Discovery::new(cp.client().await), objects).await;
}

/// The upstream sealed-secrets CRD: `../shared/fixtures/upstream` beside the project, or beside
/// the folder of git worktrees when the project is a worktree (`/work/wt/<name>`).
fn sealed_secrets_crd() -> std::path::PathBuf {
    let root = project_root();
    [root.join("../shared"), root.join("../../shared")]
        .iter()
        .map(|s| s.join("fixtures/upstream/sealed-secrets/bitnami.com_sealedsecrets.yaml"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "test fixture missing: ../shared/fixtures/upstream/sealed-secrets/bitnami.com_sealedsecrets.yaml beside {}",
                root.display()
            )
        })
}

fn object(v: Value) -> Object {
    Object::new(v)
}

pub(crate) async fn start() -> Controller {
    let cp = ControlPlane::start().await;
    eprintln!("control plane in {}", cp.dir().display());
    let crd = parse_file(&sealed_secrets_crd()).unwrap();
    let mut setup = crd;
    for ns in [NS, "apps", "other"] {
        setup.push(object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ));
    }
    apply_all(&cp, &setup).await;

    let process = sealed_secrets::start_controller(&cp, NS).await;
    Controller { cp, process }
}

impl Controller {
    /// The controller's Service, with no endpoints: the API server refuses to proxy to loopback
    /// addresses, and the tests send no traffic beyond loopback, so the proxy answers 503 at
    /// once and the certificate comes from the active key Secret, as it would for a controller
    /// that is not (yet) reachable.
    pub(crate) async fn expose(&self) {
        apply_all(
            &self.cp,
            &[object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": NS},
                "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}}))],
        )
        .await;
    }

    /// The controller's HTTP API on loopback: its --listen-addr.
    pub(crate) fn url(&self) -> String {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.process.pid())).unwrap();
        let addr = cmdline
            .split(|b| *b == 0)
            .find_map(|a| a.strip_prefix(b"--listen-addr="))
            .expect("the controller runs with --listen-addr");
        format!("http://{}", String::from_utf8_lossy(addr))
    }

    pub(crate) fn kubeconfig(&self) -> &str {
        self.cp.kubeconfig_path().to_str().unwrap()
    }

    /// The certificate in the controller's active key Secret.
    pub(crate) async fn active_cert(&self) -> Vec<u8> {
        let secrets: Api<Secret> = Api::namespaced(self.cp.client().await, NS);
        let list = secrets
            .list(
                &kube::api::ListParams::default()
                    .labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"),
            )
            .await
            .unwrap();
        list.items[0].data.as_ref().unwrap()["tls.crt"].0.clone()
    }

    pub(crate) async fn apply_sealed(&self, yaml: &str) {
        apply_all(&self.cp, &parse_str(yaml, None).unwrap()).await;
    }

    /// The Secret the controller made, once it exists.
    pub(crate) async fn wait_secret(&mut self, namespace: &str, name: &str) -> Secret {
        let api: Api<Secret> = Api::namespaced(self.cp.client().await, namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = api.get_opt(name).await.unwrap() {
                return s;
            }
            self.process.assert_running();
            assert!(
                Instant::now() < deadline,
                "no Secret {namespace}/{name}; controller log:\n{}",
                self.process.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The controller's verdict on a SealedSecret it failed to unseal: its Synced condition.
    async fn wait_unseal_failure(&mut self, namespace: &str, name: &str) -> String {
        let gvk = kube::api::GroupVersionKind::gvk("bitnami.com", "v1alpha1", "SealedSecret");
        let ar = kube::api::ApiResource::from_gvk(&gvk);
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.cp.client().await, namespace, &ar);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = api.get(name).await.unwrap();
            let synced = o
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Synced").cloned());
            if let Some(c) = synced
                && c["status"] == "False"
            {
                return c["message"].as_str().unwrap_or_default().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "SealedSecret {namespace}/{name} never reported a failure; log:\n{}",
                self.process.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn data_of(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn input_secret(name: &str, namespace: &str, scope_annotation: Option<&str>) -> String {
    let scope = scope_annotation
        .map(|a| format!("    {a}: \"true\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    clusterctl.cluster.x-k8s.io/move: \"true\"
  annotations:
    example.com/owner: platform
{scope}type: kubernetes.io/basic-auth
data:
  password: aHVudGVyMg==
stringData:
  username: admin
  clouds.yaml: |
    clouds: {{openstack: {{auth: {{application_credential_secret: s3cr3t}}}}}}
"
    )
}

fn expected_data() -> BTreeMap<String, Vec<u8>> {
    [
        ("password", "hunter2"),
        ("username", "admin"),
        (
            "clouds.yaml",
            "clouds: {openstack: {auth: {application_credential_secret: s3cr3t}}}\n",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

/// The Secret made by the controller carries the input's data, type, labels and annotations.
fn assert_same_secret(made: &Secret, scope_annotation: Option<&str>) {
    assert_eq!(data_of(made), expected_data());
    assert_eq!(made.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let labels = made.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels,
        [(
            "clusterctl.cluster.x-k8s.io/move".to_string(),
            "true".to_string()
        )]
        .into()
    );
    let mut want: BTreeMap<String, String> =
        [("example.com/owner".to_string(), "platform".to_string())].into();
    if let Some(a) = scope_annotation {
        want.insert(a.to_string(), "true".to_string());
    }
    assert_eq!(made.metadata.annotations.clone().unwrap_or_default(), want);
    let owner = &made.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "SealedSecret");
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_unseals_what_capi_manage_seals_in_every_scope() {
    let mut c = start().await;
    c.expose().await;
    let kc = c.kubeconfig().to_string();

    // The proxy cannot reach the controller: the certificate is the active key Secret's.
    let client = c.cp.client().await;
    let fetched = fetch_certificate(&client, NS, NAME).await.unwrap();
    assert!(fetched.fallback_reason.is_some(), "{fetched:?}");
    assert!(
        fetched
            .from
            .starts_with(&format!("Secret {NS}/sealed-secrets-key")),
        "{}",
        fetched.from
    );
    assert_eq!(fetched.pem.as_bytes(), c.active_cert().await);

    for (name, annotation) in [
        ("strict", None),
        ("ns-wide", Some("sealedsecrets.bitnami.com/namespace-wide")),
        (
            "cluster-wide",
            Some("sealedsecrets.bitnami.com/cluster-wide"),
        ),
    ] {
        let input = input_secret(name, "apps", annotation);
        let sealed = ok(
            capi(&["seal", "--kubeconfig", &kc], input.as_bytes()),
            "seal",
        );
        assert!(!sealed.contains("hunter2") && !sealed.contains("s3cr3t"));
        c.apply_sealed(&sealed).await;
        let made = c.wait_secret("apps", name).await;
        assert_same_secret(&made, annotation);

        // The same sealed values under another name, and in another namespace.
        for (new_ns, new_name) in [
            ("apps", format!("{name}-renamed")),
            ("other", name.to_string()),
        ] {
            let moved = sealed
                .replace(&format!("name: {name}\n"), &format!("name: {new_name}\n"))
                .replace("namespace: apps\n", &format!("namespace: {new_ns}\n"));
            c.apply_sealed(&moved).await;
            let may_unseal = match annotation {
                None => false,
                Some(a) if a.ends_with("namespace-wide") => new_ns == "apps",
                Some(_) => true,
            };
            if may_unseal {
                assert_eq!(
                    data_of(&c.wait_secret(new_ns, &new_name).await),
                    expected_data()
                );
            } else {
                let message = c.wait_unseal_failure(new_ns, &new_name).await;
                assert!(message.contains("no key could decrypt secret"), "{message}");
                let api: Api<Secret> = Api::namespaced(client.clone(), new_ns);
                assert!(api.get_opt(&new_name).await.unwrap().is_none());
            }
        }
    }

    // The CLI says where the certificate came from.
    let out = capi(
        &["seal", "--kubeconfig", &kc],
        input_secret("fallback", "apps", None).as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("because the controller's service proxy failed"),
        "{stderr}"
    );
    c.apply_sealed(&String::from_utf8(out.stdout).unwrap())
        .await;
    assert_same_secret(&c.wait_secret("apps", "fallback").await, None);

    // A wrong controller name is an error, not a silent fallback.
    let out = capi(
        &[
            "seal",
            "--kubeconfig",
            &kc,
            "--controller-name",
            "no-such-controller",
        ],
        input_secret("x", "apps", None).as_bytes(),
    );
    assert_one_line_error(
        &out,
        "no sealed-secrets controller Service kube-system/no-such-controller; check --controller-namespace and --controller-name",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeseal_and_capi_manage_seal_to_the_same_secret_and_merge() {
    let mut c = start().await;
    c.expose().await;
    let kc = c.kubeconfig().to_string();
    let dir = tempfile::tempdir().unwrap();

    // kubeseal seals with the controller's certificate; capi-manage fetches it itself.
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, c.active_cert().await).unwrap();
    let kubeseal_args = ["--cert", cert.to_str().unwrap(), "-o", "yaml"];
    let theirs = ok(
        kubeseal(
            &kubeseal_args,
            input_secret("same", "apps", None).as_bytes(),
        ),
        "kubeseal",
    );
    let ours = ok(
        capi(
            &["seal", "--kubeconfig", &kc],
            input_secret("same", "other", None).as_bytes(),
        ),
        "seal",
    );
    assert_eq!(redacted(&ours).replace("other", "apps"), redacted(&theirs));
    c.apply_sealed(&theirs).await;
    c.apply_sealed(&ours).await;
    let a = c.wait_secret("apps", "same").await;
    let b = c.wait_secret("other", "same").await;
    assert_same_secret(&a, None);
    assert_same_secret(&b, None);
    assert_eq!(data_of(&a), data_of(&b));
    assert_eq!(a.metadata.labels, b.metadata.labels);
    assert_eq!(a.metadata.annotations, b.metadata.annotations);

    // kubeseal's command line in JSON, given to both tools (each with its own input file):
    // the same layout, and the controller unseals both to the same Secret.
    let json_file = |ns: &str| {
        let path = dir.path().join(format!("json-{ns}.yaml"));
        std::fs::write(&path, input_secret("json", ns, None)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (apps_file, other_file) = (json_file("apps"), json_file("other"));
    let json_args = |file: &str| {
        ["--cert", cert.to_str().unwrap(), "-o", "json", "-f", file].map(str::to_string)
    };
    let args = json_args(&apps_file);
    let theirs_json = ok(
        kubeseal(&args.iter().map(String::as_str).collect::<Vec<_>>(), b""),
        "kubeseal -o json",
    );
    let mut args: Vec<String> = vec!["seal".into()];
    args.extend(json_args(&other_file));
    let ours_json = ok(
        capi(&args.iter().map(String::as_str).collect::<Vec<_>>(), b""),
        "seal -o json",
    );
    assert_eq!(
        super::flags::masked(&ours_json).replace("other", "apps"),
        super::flags::masked(&theirs_json)
    );
    c.apply_sealed(&theirs_json).await;
    c.apply_sealed(&ours_json).await;
    let a = c.wait_secret("apps", "json").await;
    let b = c.wait_secret("other", "json").await;
    assert_eq!(data_of(&a), data_of(&b));
    assert_eq!(a.metadata.labels, b.metadata.labels);

    // Rotation: the full Secret with one changed value merged into kubeseal's file. The live
    // Secret shows which values are unchanged, so only the rotated line differs.
    let file = dir.path().join("same.sealed.yaml");
    std::fs::write(&file, &theirs).unwrap();
    let rotated = input_secret("same", "apps", None).replace("aHVudGVyMg==", "aHVudGVyMw==");
    let out = capi(
        &[
            "seal",
            "--kubeconfig",
            &kc,
            "--merge-into",
            file.to_str().unwrap(),
        ],
        rotated.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "re-sealed password into SealedSecret apps/same; unchanged: clouds.yaml, username"
        ),
        "{stderr}"
    );
    let merged = std::fs::read_to_string(&file).unwrap();
    let changed: Vec<_> = theirs
        .lines()
        .zip(merged.lines())
        .filter(|(x, y)| x != y)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.starts_with("    password: "));
    c.apply_sealed(&merged).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.wait_secret("apps", "same").await;
        if data_of(&s)["password"] == b"hunter3" {
            assert_eq!(data_of(&s)["username"], b"admin");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller never applied the rotation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `--validate` and `--re-encrypt` against the real controller. The API server refuses to
/// proxy to loopback, so capi-manage reaches the controller's HTTP API with --controller-url
/// (what a `kubectl port-forward` gives); kubeseal, which only goes through the proxy, cannot
/// take part. The same verdicts as the controller's, the re-encrypted file laid out as
/// kubeseal lays out a sealed file in both formats, and the controller unseals it.
#[tokio::test(flavor = "multi_thread")]
async fn validate_and_re_encrypt_through_the_real_controller() {
    let mut c = start().await;
    c.expose().await;
    let kc = c.kubeconfig().to_string();
    let url = c.url();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, c.active_cert().await).unwrap();
    let cert_s = cert.to_str().unwrap();
    let input = input_secret("checked", "apps", None);
    let good = dir.path().join("good.yaml");
    let sealed = ok(capi(&["seal", "--cert", cert_s], input.as_bytes()), "seal");
    std::fs::write(&good, &sealed).unwrap();
    // Sealed for namespace `other`, then moved to `apps`: strict scope makes it undecryptable.
    let bad = dir.path().join("bad.yaml");
    let other = ok(
        capi(
            &["seal", "--cert", cert_s],
            input_secret("checked", "other", None).as_bytes(),
        ),
        "seal",
    );
    std::fs::write(&bad, other.replace("namespace: other", "namespace: apps")).unwrap();
    let (good_s, bad_s) = (good.to_str().unwrap(), bad.to_str().unwrap());

    let ours = |extra: &[&str]| {
        let mut args = vec!["seal", "--controller-url", &url];
        args.extend_from_slice(extra);
        capi(&args, b"")
    };
    let out = ours(&["--validate", "-f", good_s]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_one_line_error(
        &ours(&["--validate", "-f", bad_s]),
        &format!("sealed-secrets controller {url} cannot decrypt SealedSecret apps/checked"),
    );
    // Without --controller-url the call goes through the API server's proxy, which cannot
    // reach a loopback controller: a one-line error naming the operation.
    let out = capi(
        &["seal", "--kubeconfig", &kc, "--validate", "-f", good_s],
        b"",
    );
    assert_one_line_error(
        &out,
        "sealed-secrets controller kube-system/sealed-secrets-controller cannot validate SealedSecret apps/checked",
    );

    for format in ["yaml", "json"] {
        let reencrypted = ok(
            ours(&["--re-encrypt", "-o", format, "-f", good_s]),
            "seal --re-encrypt",
        );
        // The controller re-seals under the SealedSecret's own metadata (it copies it over a
        // template that differs, as every sealed file's does): kubeseal's layout for the
        // Secret without its labels and annotations.
        let plain = input.replace(
            "  labels:\n    clusterctl.cluster.x-k8s.io/move: \"true\"\n  annotations:\n    example.com/owner: platform\n",
            "",
        );
        assert_ne!(plain, input);
        let theirs = ok(
            kubeseal(&["--cert", cert_s, "-o", format], plain.as_bytes()),
            "kubeseal",
        );
        assert_eq!(
            super::flags::masked(&reencrypted),
            super::flags::masked(&theirs),
            "{format}"
        );
        assert_ne!(super::flags::masked(&reencrypted), reencrypted);
    }
    let reencrypted = ok(ours(&["--re-encrypt", "-f", good_s]), "seal --re-encrypt");
    assert_ne!(reencrypted, sealed, "new ciphertexts");
    c.apply_sealed(&reencrypted).await;
    let secret = c.wait_secret("apps", "checked").await;
    // The values and type; labels and annotations the controller's re-encryption drops.
    assert_eq!(data_of(&secret), expected_data());
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_one_line_error(
        &ours(&["--re-encrypt", "-f", bad_s]),
        "cannot re-encrypt SealedSecret apps/checked",
    );
}
