//! `capi-manage seal` against the real kubeseal (same module version as the controller): each
//! tool's output opened by the other, the same layout, `--merge-into` of kubeseal-made files,
//! and one-line errors for bad input. The controller round trips are in `seal::controller`.

pub(crate) mod controller;
mod flags;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capi_manage::manifest::parse_str;
use capi_manage::seal::{Scope, UnsealingKey, unseal};

use crate::support::test_bin;

/// A controller-like key pair: an RSA key (PKCS#1 PEM, as the controller stores it) and a
/// self-signed certificate for it, written to files.
pub struct Keys {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub key_pem: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 3072)
            .unwrap();
        let pkcs8 = key.to_pkcs8_pem(Default::default()).unwrap();
        let kp =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let cert_pem = rcgen::CertificateParams::new(vec!["sealed-secret".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap()
            .pem();
        let key_pem = key.to_pkcs1_pem(Default::default()).unwrap().to_string();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &cert_pem).unwrap();
        std::fs::write(&key, &key_pem).unwrap();
        Keys {
            _dir: dir,
            cert,
            key,
            key_pem,
        }
    })
}

/// Runs a program with `stdin` fed in.
pub fn run(program: &Path, args: &[&str], stdin: &[u8], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    // A child that fails before reading its input (a usage error) closes the pipe early.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

pub fn capi(args: &[&str], stdin: &[u8]) -> Output {
    run(
        Path::new(env!("CARGO_BIN_EXE_capi-manage")),
        args,
        stdin,
        None,
    )
}

pub fn kubeseal(args: &[&str], stdin: &[u8]) -> Output {
    run(&test_bin("kubeseal"), args, stdin, None)
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The values of a sealed file as `kubeseal --recovery-unseal` opens them with the key.
pub fn kubeseal_unseal(sealed: &str) -> BTreeMap<String, Vec<u8>> {
    let k = keys();
    let out = ok(
        kubeseal(
            &[
                "--recovery-unseal",
                "--recovery-private-key",
                k.key.to_str().unwrap(),
                "-o",
                "json",
            ],
            sealed.as_bytes(),
        ),
        "kubeseal --recovery-unseal",
    );
    let secret: serde_json::Value = serde_json::from_str(&out).unwrap();
    secret["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), STANDARD.decode(v.as_str().unwrap()).unwrap()))
        .collect()
}

/// The values of a sealed file as our own unseal opens them with the key.
pub fn our_unseal(sealed: &str) -> BTreeMap<String, Vec<u8>> {
    let key = UnsealingKey::from_pem(keys().key_pem.as_bytes(), "key.pem").unwrap();
    let object = parse_str(sealed, None).unwrap().remove(0);
    unseal(&object, &key)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

/// The YAML with each sealed value replaced by `SEALED`, to compare layouts.
pub fn redacted(yaml: &str) -> String {
    yaml.lines()
        .map(|l| match l.split_once(": ") {
            Some((k, v)) if v.len() > 300 => format!("{k}: SEALED\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

const CREDENTIALS: &str = "apiVersion: v1
kind: Secret
metadata:
  name: cloud-credentials
  namespace: capi-self
  labels:
    clusterctl.cluster.x-k8s.io/move: \"true\"
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{\"stringData\":{\"clouds.yaml\":\"LEAKED\"}}'
    example.com/owner: platform
type: Opaque
data:
  cacert: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
stringData:
  clouds.yaml: |
    clouds:
      openstack:
        auth:
          application_credential_id: 0123
          application_credential_secret: s3cr3t-value
";

fn with_scope_annotation(scope: Scope) -> String {
    match scope.annotation() {
        None => CREDENTIALS.to_string(),
        Some(a) => CREDENTIALS.replace(
            "    example.com/owner: platform\n",
            &format!("    example.com/owner: platform\n    {a}: \"true\"\n"),
        ),
    }
}

#[test]
fn sealed_files_interchange_with_kubeseal_in_both_directions() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    let want = expected(&[
        ("cacert", "-----BEGIN CERTIFICATE-----"),
        (
            "clouds.yaml",
            "clouds:\n  openstack:\n    auth:\n      application_credential_id: 0123\n      application_credential_secret: s3cr3t-value\n",
        ),
    ]);
    for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
        let input = with_scope_annotation(scope);
        let ours = ok(capi(&["seal", "--cert", cert], input.as_bytes()), "seal");
        let theirs = ok(
            kubeseal(&["--cert", cert, "-o", "yaml"], input.as_bytes()),
            "kubeseal",
        );
        assert_eq!(redacted(&ours), redacted(&theirs), "layout, {scope} scope");
        for text in [&ours, &theirs] {
            assert!(
                !text.contains("s3cr3t") && !text.contains("LEAKED"),
                "{text}"
            );
        }
        assert_eq!(kubeseal_unseal(&ours), want, "kubeseal opens ours, {scope}");
        assert_eq!(our_unseal(&theirs), want, "we open kubeseal's, {scope}");
    }
}

#[test]
fn scope_flag_seals_as_kubeseal_scope_flag() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    for scope in ["namespace-wide", "cluster-wide"] {
        let ours = ok(
            capi(
                &["seal", "--cert", cert, "--scope", scope],
                CREDENTIALS.as_bytes(),
            ),
            "seal",
        );
        let theirs = ok(
            kubeseal(
                &["--cert", cert, "-o", "yaml", "--scope", scope],
                CREDENTIALS.as_bytes(),
            ),
            "kubeseal",
        );
        assert_eq!(redacted(&ours), redacted(&theirs), "{scope}");
        assert_eq!(kubeseal_unseal(&ours).len(), 2);
    }
}

#[test]
fn raw_values_interchange_with_kubeseal() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    let key = UnsealingKey::from_pem(k.key_pem.as_bytes(), "key.pem").unwrap();
    let cases: [(&str, &[&str], &[u8]); 3] = [
        ("strict", &["--namespace", "ns", "--name", "n"], b"ns/n"),
        ("namespace-wide", &["--namespace", "ns"], b"ns"),
        ("cluster-wide", &[], b""),
    ];
    for (scope, extra, label) in cases {
        let mut args = vec!["--cert", cert, "--raw", "--scope", scope];
        args.extend_from_slice(extra);
        let theirs = ok(kubeseal(&args, b"value\n"), "kubeseal --raw");
        let mut ours_args = vec!["seal"];
        ours_args.extend_from_slice(&args);
        let ours = ok(capi(&ours_args, b"value\n"), "seal --raw");
        for sealed in [theirs.trim(), ours.trim()] {
            let bytes = STANDARD.decode(sealed).unwrap();
            assert_eq!(
                &key.decrypt(&bytes, label).unwrap()[..],
                b"value\n",
                "{scope}"
            );
        }
    }
    let e = capi(
        &["seal", "--cert", cert, "--raw", "--namespace", "ns"],
        b"v",
    );
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("strict scope needs --name"),
        "{e:?}"
    );
}

#[test]
fn merge_into_a_kubeseal_file_changes_only_the_given_keys() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.sealed.yaml");
    let file_s = file.to_str().unwrap();
    let input = with_scope_annotation(Scope::NamespaceWide);
    ok(
        kubeseal(
            &["--cert", cert, "-o", "yaml", "-w", file_s],
            input.as_bytes(),
        ),
        "kubeseal",
    );
    let before = std::fs::read_to_string(&file).unwrap();

    // Rotate one value: a Secret with only that key, and no scope annotation (the file's
    // scope applies), under another name (the file's name applies).
    let rotation = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: whatever\nstringData:\n  clouds.yaml: rotated\n";
    let out = capi(
        &["seal", "--cert", cert, "--merge-into", file_s],
        rotation.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "merges in place");
    assert!(
        stderr.contains("re-sealed clouds.yaml into SealedSecret capi-self/cloud-credentials"),
        "{stderr}"
    );
    let after = std::fs::read_to_string(&file).unwrap();

    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");
    assert_eq!(
        changed.len(),
        1,
        "only the rotated value's line: {changed:?}"
    );
    assert!(changed[0].1.starts_with("    clouds.yaml: "));
    let values = kubeseal_unseal(&after);
    assert_eq!(values["clouds.yaml"], b"rotated");
    assert_eq!(values["cacert"], b"-----BEGIN CERTIFICATE-----");

    // A different scope than the file's is refused, and the file is left alone.
    let out = capi(
        &[
            "seal",
            "--cert",
            cert,
            "--merge-into",
            file_s,
            "--scope",
            "strict",
        ],
        rotation.as_bytes(),
    );
    assert_one_line_error(&out, "namespace-wide-scoped but strict scope was asked for");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
}

#[test]
fn output_file_is_written_whole_and_never_holds_plaintext() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.yaml");
    std::fs::write(&secret, CREDENTIALS).unwrap();
    let out_file = dir.path().join("sealed.yaml");
    let out = capi(
        &[
            "seal",
            secret.to_str().unwrap(),
            "--cert",
            k.cert.to_str().unwrap(),
            "-w",
            out_file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(!text.contains("s3cr3t") && !text.contains("LEAKED"));
    assert_eq!(kubeseal_unseal(&text).len(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

/// Exit code 1, nothing on stdout, exactly one `error: ...` line containing `needle`.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "`{needle}` in: {stderr}");
}

fn cert_file(
    dir: &Path,
    name: &str,
    params: rcgen::CertificateParams,
    kp: &rcgen::KeyPair,
) -> String {
    let path = dir.join(name);
    std::fs::write(&path, params.self_signed(kp).unwrap().pem()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bad_inputs_fail_with_one_line_errors() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.yaml");
    let out_s = out_file.to_str().unwrap();

    let not_secret =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {a: b}\n";
    let out = capi(
        &["seal", "--cert", cert, "-w", out_s],
        not_secret.as_bytes(),
    );
    assert_one_line_error(
        &out,
        "<stdin> (document 1, line 1): v1 ConfigMap c is not a Secret",
    );

    let empty = "apiVersion: v1\nkind: Secret\nmetadata: {name: c, namespace: n}\ntype: Opaque\n";
    let out = capi(&["seal", "--cert", cert, "-w", out_s], empty.as_bytes());
    assert_one_line_error(&out, "Secret c has no `data` or `stringData` entries");

    let out = capi(&["seal", "--cert", cert], b"a: [\n");
    assert_one_line_error(
        &out,
        "cannot read the Secret: <stdin> (document 1, line 1): invalid YAML",
    );

    // Certificates: expired, not RSA, not a certificate.
    let rsa_kp = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
        &{
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            rsa::RsaPrivateKey::from_pkcs1_pem(&k.key_pem)
                .unwrap()
                .to_pkcs8_pem(Default::default())
                .unwrap()
                .to_string()
        },
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["sealed-secret".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = cert_file(dir.path(), "expired.pem", params, &rsa_kp);
    let out = capi(
        &["seal", "--cert", &expired, "-w", out_s],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(&out, &format!("certificate {expired} expired on "));

    let ec_kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec = cert_file(
        dir.path(),
        "ec.pem",
        rcgen::CertificateParams::new(vec!["x".into()]).unwrap(),
        &ec_kp,
    );
    let out = capi(
        &["seal", "--cert", &ec, "-w", out_s],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(
        &out,
        &format!("certificate {ec} holds a ECDSA key, not RSA"),
    );

    let out = capi(
        &["seal", "--cert", k.key.to_str().unwrap(), "-w", out_s],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(&out, "no PEM `CERTIFICATE` block found");

    let out = capi(
        &["seal", "--cert", "/nonexistent/cert.pem"],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(&out, "cannot read certificate file /nonexistent/cert.pem");

    let out = capi(
        &["seal", "--cert", cert, "--scope", "global"],
        CREDENTIALS.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use strict, namespace-wide or cluster-wide")
    );

    // No cluster to fetch the certificate from: a kubeconfig pointing at a closed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let out = capi(
        &[
            "seal",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-w",
            out_s,
        ],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(
        &out,
        "cannot read Service kube-system/sealed-secrets-controller from the cluster",
    );

    assert!(!out_file.exists(), "no output file after any failure");
}

#[test]
fn certificate_urls_must_be_https_and_every_certificate_is_identified() {
    // A plain http URL is refused before any request: nothing listens on the port.
    let out = capi(
        &["seal", "--cert", "http://127.0.0.1:9/v1/cert.pem"],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(&out, "--insecure-cert-url");
    let out = capi(
        &[
            "seal",
            "--cert",
            "ftp://127.0.0.1:9/cert.pem",
            "--insecure-cert-url",
        ],
        CREDENTIALS.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));

    // The subject and SHA-256 fingerprint of the certificate used are reported.
    let k = keys();
    let out = capi(
        &["seal", "--cert", k.cert.to_str().unwrap()],
        CREDENTIALS.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let pem = std::fs::read(&k.cert).unwrap();
    let der = x509_parser::pem::Pem::iter_from_buffer(&pem)
        .next()
        .unwrap()
        .unwrap()
        .contents;
    use sha2::Digest;
    let fingerprint = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        stderr.contains(&format!("SHA-256 fingerprint {fingerprint}")),
        "{stderr}"
    );
}

/// A plain HTTP server on loopback that answers `GET path` with `body` and anything else with
/// 404, for as long as the test runs. Returns its address.
fn serve_certificate(path: &'static str, body: Vec<u8>) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let (status, body) = if request.starts_with(&format!("GET {path} ")) {
                ("200 OK", body.as_slice())
            } else {
                ("404 Not Found", b"not found".as_slice())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/x-pem-file\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    addr
}

#[test]
fn a_plain_http_certificate_url_is_used_only_with_consent() {
    let k = keys();
    let pem = std::fs::read(&k.cert).unwrap();
    let addr = serve_certificate("/v1/cert.pem", pem);
    let url = format!("http://{addr}/v1/cert.pem");

    let out = capi(
        &["seal", "--cert", &url, "--insecure-cert-url"],
        CREDENTIALS.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("sealing with certificate {url}: subject")),
        "{stderr}"
    );
    // Sealed to the served certificate: its private key opens every value.
    let sealed = parse_str(&String::from_utf8(out.stdout).unwrap(), None).unwrap();
    let key = UnsealingKey::from_pem(k.key_pem.as_bytes(), "key").unwrap();
    let opened = unseal(&sealed[0], &key).unwrap();
    assert!(!opened.is_empty());

    // Without consent nothing is fetched; a wrong path names the URL.
    let out = capi(&["seal", "--cert", &url], CREDENTIALS.as_bytes());
    assert_one_line_error(&out, "--insecure-cert-url");
    let missing = format!("http://{addr}/missing.pem");
    let out = capi(
        &["seal", "--cert", &missing, "--insecure-cert-url"],
        CREDENTIALS.as_bytes(),
    );
    assert_one_line_error(&out, &format!("cannot download certificate {missing}"));
}

#[test]
fn output_to_a_fifo_or_device_is_written_through_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = capi(
        &[
            "seal",
            "--cert",
            k.cert.to_str().unwrap(),
            "-w",
            fifo.to_str().unwrap(),
        ],
        CREDENTIALS.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = reader.join().unwrap();
    assert!(sealed.contains("kind: SealedSecret"), "{sealed}");
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO is still a FIFO"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left behind");
}

/// `seal -f a -f b --output-dir`, a folder, and several files to one output: one process seals
/// every file, each the same as a one-file run would (kubeseal opens each), and a bad file
/// among them fails the run naming it, writing nothing.
#[test]
fn many_files_and_folders_seal_in_one_run() {
    let k = keys();
    let cert = k.cert.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let mut files = Vec::new();
    for i in 0..3 {
        let path = inputs.join(format!("secret-{i}.yaml"));
        std::fs::write(
            &path,
            CREDENTIALS.replace("cloud-credentials", &format!("cloud-credentials-{i}")),
        )
        .unwrap();
        files.push(path);
    }
    std::fs::write(inputs.join("notes.txt"), "not a manifest").unwrap();
    let want = expected(&[
        ("cacert", "-----BEGIN CERTIFICATE-----"),
        (
            "clouds.yaml",
            "clouds:\n  openstack:\n    auth:\n      application_credential_id: 0123\n      application_credential_secret: s3cr3t-value\n",
        ),
    ]);
    let check = |text: &str, i: usize| {
        assert!(
            text.contains(&format!("name: cloud-credentials-{i}\n")),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(kubeseal_unseal(text), want, "file {i}");
    };

    // Each -f to --output-dir/<its name>.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec![
        "seal",
        "--cert",
        cert,
        "--output-dir",
        out.to_str().unwrap(),
    ];
    for f in &files {
        args.extend(["-f", f.to_str().unwrap()]);
    }
    ok(capi(&args, b""), "seal -f -f --output-dir");
    for i in 0..3 {
        check(
            &std::fs::read_to_string(out.join(format!("secret-{i}.yaml"))).unwrap(),
            i,
        );
    }

    // A folder: its .yaml files in name order, to standard output.
    let all = ok(
        capi(&["seal", "--cert", cert, inputs.to_str().unwrap()], b""),
        "seal FOLDER",
    );
    let docs: Vec<&str> = all.split("---\n").filter(|d| !d.is_empty()).collect();
    assert_eq!(docs.len(), 3, "{all}");
    for (i, doc) in docs.iter().enumerate() {
        check(doc, i);
    }

    // A file that is not a Secret fails the whole run, naming it; nothing is written.
    std::fs::write(
        inputs.join("secret-9.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let failed = capi(
        &[
            "seal",
            "--cert",
            cert,
            "--output-dir",
            fresh.to_str().unwrap(),
            inputs.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("secret-9.yaml") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0);
}
