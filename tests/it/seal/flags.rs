//! kubeseal's command lines work unchanged as `capi-manage seal <the same flags>`: the real
//! kubeseal and capi-manage get the same arguments, the same input and the same environment,
//! and write the same output with the ciphertexts masked, in both formats; both tools open
//! each other's values.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use capi_manage::seal::UnsealingKey;

use super::{keys, kubeseal_unseal, ok};
use crate::support::test_bin;

/// Each run of 100 or more base64 characters (a sealed value) as `SEALED`.
pub(super) fn masked(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars() {
        if is_b64(c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 100 { "SEALED" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() >= 100 { "SEALED" } else { &run });
    out
}

/// Runs `program args` in `cwd` with `stdin` and only `env` of the SEALED_SECRETS_*
/// variables.
fn run(program: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8], cwd: &Path) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SEALED_SECRETS_") {
            cmd.env_remove(k);
        }
    }
    // No cluster for either tool to fall back to.
    cmd.env("KUBECONFIG", cwd.join("no-kubeconfig"));
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// The same command line to both tools, in fresh copies of `files`; returns the outputs
/// (stdout, then the file named `out` when it was written) of kubeseal and of capi-manage.
fn both(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
    files: &[(&str, &str)],
) -> [(String, Option<String>); 2] {
    let ours = Path::new(env!("CARGO_BIN_EXE_capi-manage"));
    let theirs = test_bin("kubeseal");
    [(theirs.as_path(), false), (ours, true)].map(|(program, seal)| {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut full = if seal { vec!["seal"] } else { vec![] };
        full.extend_from_slice(args);
        let out = run(program, &full, env, stdin, dir.path());
        let what = format!("{} {args:?} {env:?}", program.display());
        let stdout = ok(out, &what);
        (stdout, std::fs::read_to_string(dir.path().join("out")).ok())
    })
}

/// A command line, the SEALED_SECRETS_* variables it runs with, and its standard input.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a [u8]);

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: cloud
  namespace: capi-self
  labels:
    team: platform
  annotations:
    note: \"a <b> & c\"
type: Opaque
data:
  cacert: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
stringData:
  clouds.yaml: |
    secret: s3cr3t-value
";

/// The same Secret without a namespace, and one without values.
fn variants() -> (String, String) {
    let no_namespace = SECRET.replace("  namespace: capi-self\n", "");
    let empty = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: empty\n  namespace: capi-self\ntype: Opaque\n";
    (no_namespace, empty.to_string())
}

fn values() -> BTreeMap<String, Vec<u8>> {
    [
        ("cacert", &b"-----BEGIN CERTIFICATE-----"[..]),
        ("clouds.yaml", &b"secret: s3cr3t-value\n"[..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_vec()))
    .collect()
}

#[test]
fn kubeseal_command_lines_give_the_same_output_in_both_formats() {
    let cert = keys().cert.to_str().unwrap().to_string();
    let (no_namespace, empty) = variants();
    let files = [
        ("secret.yaml", SECRET),
        ("no-namespace.yaml", no_namespace.as_str()),
        ("empty.yaml", empty.as_str()),
    ];
    for format in ["json", "yaml"] {
        let cases: Vec<Case> = vec![
            (
                vec!["--cert", &cert, "-f", "secret.yaml", "-o", format],
                vec![],
                b"",
            ),
            (
                vec!["--cert", &cert, "--format", format],
                vec![],
                SECRET.as_bytes(),
            ),
            (
                vec![
                    "--cert",
                    &cert,
                    "--secret-file",
                    "secret.yaml",
                    "-o",
                    format,
                    "-w",
                    "out",
                ],
                vec![],
                b"",
            ),
            (
                vec![
                    "--cert",
                    &cert,
                    "-f",
                    "secret.yaml",
                    "-o",
                    format,
                    "--sealed-secret-file",
                    "out",
                    "--scope",
                    "cluster-wide",
                ],
                vec![],
                b"",
            ),
            (
                vec![
                    "--cert",
                    &cert,
                    "-f",
                    "no-namespace.yaml",
                    "-o",
                    format,
                    "-n",
                    "capi-self",
                ],
                vec![],
                b"",
            ),
            (
                vec![
                    "--cert",
                    &cert,
                    "-f",
                    "empty.yaml",
                    "-o",
                    format,
                    "--allow-empty-data",
                ],
                vec![],
                b"",
            ),
            // kubeseal's environment variables instead of flags.
            (
                vec!["-f", "secret.yaml"],
                vec![
                    ("SEALED_SECRETS_CERT", cert.as_str()),
                    ("SEALED_SECRETS_FORMAT", format),
                    ("SEALED_SECRETS_SCOPE", "namespace-wide"),
                    ("SEALED_SECRETS_SEALED_SECRET_FILE", "out"),
                ],
                b"",
            ),
        ];
        for (args, env, stdin) in cases {
            let [theirs, ours] = both(&args, &env, stdin, &files);
            let what = format!("{args:?} {env:?}");
            assert_eq!(masked(&ours.0), masked(&theirs.0), "stdout of {what}");
            assert_eq!(
                ours.1.as_deref().map(masked),
                theirs.1.as_deref().map(masked),
                "file of {what}"
            );
            let ours = ours.1.unwrap_or(ours.0);
            let theirs = theirs.1.unwrap_or(theirs.0);
            assert!(
                ours.contains("SealedSecret") && !ours.contains("s3cr3t"),
                "{what}: {ours}"
            );
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(&ours).unwrap();
            }
            if !args.contains(&"empty.yaml") {
                assert_eq!(
                    kubeseal_unseal(&ours),
                    values(),
                    "kubeseal opens ours: {what}"
                );
                assert_eq!(kubeseal_unseal(&theirs), values(), "{what}");
            }
        }
    }
    // Without --allow-empty-data both refuse the empty Secret; ours names the flag.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.yaml"), &empty).unwrap();
    let ours = run(
        Path::new(env!("CARGO_BIN_EXE_capi-manage")),
        &["seal", "--cert", &cert, "-f", "empty.yaml"],
        &[],
        b"",
        dir.path(),
    );
    let theirs = run(
        &test_bin("kubeseal"),
        &["--cert", &cert, "-f", "empty.yaml"],
        &[],
        b"",
        dir.path(),
    );
    assert_eq!(theirs.status.code(), Some(1));
    assert_eq!(ours.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ours.stderr).contains("--allow-empty-data"));
}

#[test]
fn merge_into_with_kubeseals_flags_writes_the_same_file() {
    let cert = keys().cert.to_str().unwrap().to_string();
    for format in ["json", "yaml"] {
        // The file to merge into, as kubeseal wrote it in that format.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.yaml"), SECRET).unwrap();
        let start = ok(
            run(
                &test_bin("kubeseal"),
                &["--cert", &cert, "-f", "secret.yaml", "-o", format],
                &[],
                b"",
                dir.path(),
            ),
            "kubeseal",
        );
        let update = SECRET
            .replace(
                "data:\n  cacert: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n",
                "",
            )
            .replace("secret: s3cr3t-value", "secret: n3w-value");
        let args = ["--cert", &cert, "-o", format, "--merge-into", "out"];
        let [theirs, ours] = both(&args, &[], update.as_bytes(), &[("out", &start)]);
        assert_eq!(ours.0, "", "{format}: merged in place");
        assert_eq!(theirs.0, "");
        let (ours, theirs) = (ours.1.unwrap(), theirs.1.unwrap());
        assert_eq!(masked(&ours), masked(&theirs), "{format}");
        let mut want = values();
        want.insert("clouds.yaml".into(), b"secret: n3w-value\n".to_vec());
        assert_eq!(kubeseal_unseal(&ours), want, "{format}");
        assert_eq!(kubeseal_unseal(&theirs), want, "{format}");
    }
}

#[test]
fn fetch_cert_and_raw_as_kubeseal() {
    let k = keys();
    let cert = k.cert.to_str().unwrap().to_string();
    let pem = std::fs::read_to_string(&k.cert).unwrap();
    for (args, env) in [
        (vec!["--cert", cert.as_str(), "--fetch-cert"], vec![]),
        (
            vec!["--fetch-cert"],
            vec![("SEALED_SECRETS_CERT", cert.as_str())],
        ),
    ] {
        let [theirs, ours] = both(&args, &env, b"", &[]);
        assert_eq!(ours.0, theirs.0, "{args:?}");
        assert_eq!(ours.0, pem, "{args:?}");
    }

    let key = UnsealingKey::from_pem(k.key_pem.as_bytes(), "key.pem").unwrap();
    for (scope, extra, label) in [
        (
            "strict",
            &["--namespace", "ns", "--name", "n"][..],
            &b"ns/n"[..],
        ),
        ("namespace-wide", &["-n", "ns"], b"ns"),
        ("cluster-wide", &[], b""),
    ] {
        let mut args = vec![
            "--cert",
            &cert,
            "--raw",
            "--from-file",
            "value",
            "--scope",
            scope,
        ];
        args.extend_from_slice(extra);
        let [theirs, ours] = both(&args, &[], b"", &[("value", "raw value\n")]);
        assert_eq!(masked(&ours.0), masked(&theirs.0), "{scope}");
        for sealed in [&theirs.0, &ours.0] {
            assert!(!sealed.ends_with('\n'), "{scope}: no newline, as kubeseal");
            let bytes = STANDARD.decode(sealed).unwrap();
            assert_eq!(
                &key.decrypt(&bytes, label).unwrap()[..],
                b"raw value\n",
                "{scope}"
            );
        }
    }
}

/// SEALED_SECRETS_CONTROLLER_NAMESPACE and _NAME choose the controller as in kubeseal: the
/// error of a cluster that has no such Service names it.
#[test]
fn controller_variables_choose_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_capi-manage")),
        &["seal", "--fetch-cert"],
        &[
            ("SEALED_SECRETS_KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("SEALED_SECRETS_CONTROLLER_NAMESPACE", "sealed-ns"),
            ("SEALED_SECRETS_CONTROLLER_NAME", "sealer"),
        ],
        b"",
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Service sealed-ns/sealer"), "{stderr}");
    // A flag wins over its variable.
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_capi-manage")),
        &["seal", "--fetch-cert", "--controller-name", "flagged"],
        &[
            ("SEALED_SECRETS_KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("SEALED_SECRETS_CONTROLLER_NAME", "sealer"),
        ],
        b"",
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Service kube-system/flagged"), "{stderr}");
}
