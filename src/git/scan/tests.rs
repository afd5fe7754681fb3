//! The scan's table: every bypass of issue 14 refused, and what a config repository really
//! holds allowed, each case within one second.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// What a case must come out as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allow,
    Secret,
    Credentials,
    Kubeconfig,
    Key,
    Cloud,
    Generator,
    Local,
    Unparseable,
}

fn want_of(v: &Option<Violation>) -> Want {
    match v {
        None => Want::Allow,
        Some(Violation::PlaintextSecret { .. }) => Want::Secret,
        Some(Violation::Credentials) => Want::Credentials,
        Some(Violation::Kubeconfig) => Want::Kubeconfig,
        Some(Violation::PrivateKey) => Want::Key,
        Some(Violation::CloudCredentials) => Want::Cloud,
        Some(Violation::SecretGenerator) => Want::Generator,
        Some(Violation::LocalState) => Want::Local,
        Some(Violation::Unparseable { .. }) => Want::Unparseable,
    }
}

/// Scans on another thread: a case that does not finish within a second fails (and its thread
/// is left spinning until the test binary exits).
fn scan_within_a_second(path: &str, content: &[u8]) -> (Option<Violation>, Duration) {
    within_a_second(path, content, scan_file)
}

fn within_a_second<T: Send + 'static>(
    path: &str,
    content: &[u8],
    scan: fn(&str, &[u8]) -> T,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let (path_owned, content) = (path.to_owned(), content.to_vec());
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(scan(&path_owned, &content));
    });
    match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(v) => (v, started.elapsed()),
        Err(_) => panic!("{path}: the scan did not finish within one second"),
    }
}

const GOOD_CREDENTIALS: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  namespace: capi-self\n  labels:\n    addons.stackhpc.com/watch: \"true\"\n  annotations:\n    sealedsecrets.bitnami.com/managed: \"true\"\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth_type: v3applicationcredential\n        auth:\n          auth_url: https://keystone.example.com:5000/v3\n          application_credential_id: 0a1b2c3d4e5f\n          application_credential_secret: mVq3-Zk8xR2pL9sT4wYc\n";

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: kind\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: LS0tLS1CRUdJTg==\nusers:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJU\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt\ncontexts:\n- name: kind\n  context: {cluster: kind, user: admin}\ncurrent-context: kind\n";

const TOKEN_KUBECONFIG_NO_KIND: &str = "clusters:\n- name: prod\n  cluster:\n    server: https://10.0.0.1:6443\nusers:\n- name: ci\n  user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.payload.sig\ncontexts:\n- name: prod\n  context: {cluster: prod, user: ci}\n";

const OPENSSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDc0FFQ4bcyBtMmfyb1Zx0kOmZ3Qh+IuWrnNy8iD0PZsQAAAJj2wQkD9sEJ\n-----END OPENSSH PRIVATE KEY-----\n";

const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n";

const HELM_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"app.fullname\" . }}\n  labels:\n    {{- include \"app.labels\" . | nindent 4 }}\nspec:\n  {{- if .Values.autoscaling.enabled }}\n  replicas: 1\n  {{- else }}\n  replicas: {{ .Values.replicaCount }}\n  {{- end }}\n  template:\n    spec:\n      containers:\n      - name: app\n        image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n        env:\n        - name: PASSWORD\n          valueFrom:\n            secretKeyRef: {name: {{ .Values.secretName }}, key: password}\n";

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xff, 0xfe] } else { Vec::new() };
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// Sealed credentials exactly as bootstrap writes them: the credentials Secret sealed with a
/// certificate, the header comment, kubeseal's layout.
fn sealed_credentials() -> String {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 2048)
        .expect("RSA key");
    let pem = key.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sealed-secret".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let sealing = crate::seal::SealingKey::from_pem(cert.pem().as_bytes(), "test").unwrap();
    let secrets = crate::seal::Secret::parse(GOOD_CREDENTIALS, None).unwrap();
    let sealed =
        crate::seal::seal(&secrets[0], &sealing, &crate::seal::SealOptions::default()).unwrap();
    format!(
        "# The cluster's OpenStack credentials, sealed by capi-manage.\n{}",
        crate::seal::to_yaml(&sealed)
    )
}

fn example_credentials() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/example/credentials.yaml"),
    )
    .expect("the example's credentials.yaml")
}

#[test]
fn the_placeholder_is_the_one_the_credentials_check_uses() {
    assert_eq!(PLACEHOLDER, crate::repo::PLACEHOLDER);
}

type Case = (&'static str, Vec<u8>, Want);

fn cases() -> Vec<Case> {
    use Want::*;
    let example = example_credentials();
    let example_filled = example.replacen(
        "application_credential_secret: REPLACE_ME",
        "application_credential_secret: mVq3-Zk8xR2pL9sT4wYc",
        1,
    );
    let example_id_filled = example.replacen(
        "application_credential_id: REPLACE_ME",
        "application_credential_id: 0a1b2c3d4e5f",
        1,
    );
    let example_with_key = format!("{example}# {}", OPENSSH_KEY.replace('\n', "\n# "));
    let sealed = sealed_credentials();
    let mut latin1_secret = SECRET.replace("hunter2", "caf").into_bytes();
    latin1_secret.insert(latin1_secret.len() - 1, 0xe9);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0".to_vec();
    png.extend((0..=255u8).cycle().take(2048));

    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        // --- refused: each bypass of the issue ---
        ("clusters/prod/credentials.yaml.bak", GOOD_CREDENTIALS.into(), Credentials),
        ("clusters/prod/credentials.yaml~", GOOD_CREDENTIALS.into(), Credentials),
        ("clusters/prod/CREDENTIALS.YAML", GOOD_CREDENTIALS.into(), Credentials),
        ("clusters/prod/x.YAML", SECRET.into(), Secret),
        ("admin.conf", KUBECONFIG.into(), Kubeconfig),
        ("clusters/prod/kind-kubeconfig", KUBECONFIG.into(), Kubeconfig),
        ("clusters/prod/kubeconfig", b"".to_vec(), Kubeconfig),
        ("clusters/prod/access.yaml", TOKEN_KUBECONFIG_NO_KIND.into(), Kubeconfig),
        ("clusters/prod/.capi-manage/deploy-key", OPENSSH_KEY.into(), Local),
        ("keys/id_ed25519", OPENSSH_KEY.into(), Key),
        ("clusters/prod/clouds.yaml", b"clouds:\n  openstack:\n    auth:\n      password: x\n".to_vec(), Cloud),
        ("clusters/prod/secret.yaml", latin1_secret, Unparseable),
        ("clusters/prod/secret.yaml", utf16le(SECRET, true), Unparseable),
        ("notes.txt", utf16le(OPENSSH_KEY, false), Key),
        ("clusters/prod/dup.yaml", b"apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: d}\nstringData: {a: b}\n".to_vec(), Unparseable),
        ("clusters/prod/escaped.yaml", b"apiVersion: v1\nkind: \"Secr\\u0065t\"\nmetadata: {name: e}\ndata: {a: eA==}\n".to_vec(), Secret),
        ("clusters/prod/lists.yaml", b"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Secret\n    metadata: {name: inner}\n    data: {a: eA==}\n".to_vec(), Secret),
        ("clusters/prod/secretlist.json", br#"{"apiVersion":"v1","kind":"SecretList","items":[{"metadata":{"name":"s"},"data":{"a":"eA=="}}]}"#.to_vec(), Secret),
        ("clusters/prod/kustomization.yaml", b"resources: [app.yaml]\nsecretGenerator:\n- name: db\n  literals:\n  - password=hunter2\n".to_vec(), Generator),
        ("clusters/prod/cm.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cloud}\ndata:\n  cloud: |\n    clouds:\n      openstack:\n        auth: {application_credential_id: x}\n".to_vec(), Cloud),
        // Finding 1: YAML syntax errors in a Secret-ish file end (refused), never hang.
        ("clusters/prod/broken.yaml", b"apiVersion: v1\nkind: Secret\ndata: [unclosed\n".to_vec(), Unparseable),
        ("clusters/prod/broken.json", b"{\"kind\": \"Config\", \"users\": [".to_vec(), Unparseable),
        ("charts/x/templates/secret.yaml", b"{{- if .Values.create }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  {{- if .Values.a }}\n  a: eA==\n  {{- else }}\n  a: eQ==\n  {{- end }}\n{{- end }}\n".to_vec(), Secret),
        ("clusters/example/credentials.yaml", example_filled.into(), Credentials),
        ("clusters/example/credentials.yaml", example_id_filled.into(), Credentials),
        ("clusters/example/credentials.yaml", example_with_key.into(), Key),
        ("docs/setup.md", format!("Paste this:\n\n```\n{}```\n", KUBECONFIG).into(), Kubeconfig),
        ("docs/ci.md", format!("```yaml\n{TOKEN_KUBECONFIG_NO_KIND}```\n").into(), Kubeconfig),
        ("scripts/openrc.sh", b"export OS_AUTH_TYPE=v3applicationcredential\nexport OS_APPLICATION_CREDENTIAL_SECRET=mVq3-Zk8xR2pL9sT4wYc\n".to_vec(), Cloud),
        ("clusters/prod/tls.key", b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----\n".to_vec(), Key),
        ("clusters/prod/secret.json", br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j"},"data":{"a":"eA=="}}"#.to_vec(), Secret),
        // --- allowed: what a config repository holds ---
        ("clusters/prod/credentials-sealed.yaml", sealed.into(), Allow),
        ("clusters/prod/other-sealed.yaml", b"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: cloud, namespace: capi-self}\nspec:\n  encryptedData: {clouds.yaml: AgBy3i4OJSWK+PiTySYZZA==}\n  template:\n    type: Opaque\n    metadata: {name: cloud, namespace: capi-self}\n".to_vec(), Allow),
        ("clusters/example/credentials.yaml", example.clone().into(), Allow),
        ("clusters/prod/values.yaml", b"kubernetesVersion: 1.31.2\nmachineImage: ubuntu-2404-kube-v1.31.2\ncloudCredentialsSecretName: prod-cloud-credentials\ncontrolPlane:\n  machineCount: 3\nnodeGroups:\n- name: md-0\n  machineCount: 2\n".to_vec(), Allow),
        ("clusters/prod/cm.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  LOG_LEVEL: debug\n  cloud.conf: |\n    [Global]\n    use-clouds = true\n".to_vec(), Allow),
        ("clusters/prod/empty-secret.yaml", b"apiVersion: v1\nkind: Secret\nmetadata: {name: e}\ndata: {}\n".to_vec(), Allow),
        ("clusters/prod/kustomization.yaml", b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- credentials-sealed.yaml\nconfigMapGenerator:\n- name: settings\n  literals: [LOG_LEVEL=info]\n".to_vec(), Allow),
        ("charts/app/templates/deployment.yaml", HELM_DEPLOYMENT.into(), Allow),
        ("charts/app/templates/_helpers.tpl", b"{{- define \"app.labels\" -}}\napp: {{ .Chart.Name }}\n{{- end }}\n".to_vec(), Allow),
        ("charts/app/templates/service.yaml", b"apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  ports:\n  {{- range .Values.ports }}\n  - port: {{ . }}\n  {{- end }}\n".to_vec(), Allow),
        ("docs/logo.png", png, Allow),
        ("bin/blob", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), Allow),
        ("README.md", b"# Secrets\nNever commit a `kind: Secret` with `data:`; bootstrap seals the Secret.\nThe kubeconfig's `client-key-data` and the `application_credential_secret` stay local.\n".to_vec(), Allow),
        ("docs/kubeconfig.md", b"Bootstrap writes the kubeconfig to clusters/<name>/kubeconfig (0600).\nIts users: section holds a client certificate.\n".to_vec(), Allow),
        ("src/keys.rs", b"/// The key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`).\npub struct K;\n".to_vec(), Allow),
        ("clusters/prod/flux.yaml", b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: config, namespace: flux-system}\nspec:\n  url: ssh://git@example.com/config.git\n  secretRef: {name: flux-system}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: prod, namespace: flux-system}\nspec:\n  path: ./clusters/prod\n  sourceRef: {kind: GitRepository, name: config}\n".to_vec(), Allow),
        ("clusters/prod/empty.yaml", b"".to_vec(), Allow),
        ("clusters/prod/comments.yaml", b"# nothing here yet\n".to_vec(), Allow),
        ("package.json", b"{\n\t\"name\": \"x\",\n\t\"version\": \"1.0.0\"\n}\n".to_vec(), Allow),
        ("scripts/test-binaries", b"#!/bin/sh\nset -eu\nfor c in etcd kind; do go build \"$c\"; done\n".to_vec(), Allow),
        ("clusters/prod/rbac.yaml", b"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get]\n".to_vec(), Allow),
        ("clusters/prod/utf8-bom.yaml", b"\xef\xbb\xbfapiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {greeting: caf\xc3\xa9}\n".to_vec(), Allow),
    ];
    cases
}

/// Runs the table through `scan`; the failures, one line each.
fn run_table(scan: fn(&str, &[u8]) -> Want) -> Vec<String> {
    let cases = cases();
    let refused = cases.iter().filter(|c| c.2 != Want::Allow).count();
    let allowed = cases.len() - refused;
    assert!(
        cases.len() >= 40 && refused >= 20 && allowed >= 20,
        "{refused} refused, {allowed} allowed"
    );
    let mut failures = Vec::new();
    for (path, content, want) in &cases {
        let (got, took) = within_a_second(path, content, scan);
        if got != *want {
            failures.push(format!("{path}: want {want:?}, got {got:?}"));
        }
        assert!(took < Duration::from_secs(1), "{path}: took {took:?}");
    }
    failures
}

#[test]
fn table_of_bypasses_refused_and_real_files_allowed() {
    let failures = run_table(|path, content| {
        let got = scan_file(path, content);
        if let Some(v) = &got {
            assert!(!v.to_string().contains('\n'), "{path}: {v}");
        }
        want_of(&got)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_yaml_syntax_error_ends_the_scan_at_once() {
    // serde_yaml_ng's document iterator yields the same error forever; the scan must stop.
    let big_template =
        "{{- if .Values.x }}\napiVersion: v1\nkind: Secret\ndata: [unclosed\n".repeat(2000);
    for (path, content) in [
        ("t.yaml", "kind: Config\nfoo: [\n".to_owned()),
        ("charts/x/templates/t.yaml", big_template),
        ("config", "kind: Secret\ndata: {a: [\n".to_owned()),
    ] {
        let (v, took) = scan_within_a_second(path, content.as_bytes());
        assert!(took < Duration::from_secs(1), "{path}: {took:?}");
        assert!(v.is_some() || path == "config", "{path}: {v:?}");
    }
}
