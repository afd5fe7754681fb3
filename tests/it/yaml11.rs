//! Every YAML capi-manage writes reads back the same in a YAML 1.1 reader (PyYAML, as kubectl's
//! go-yaml v2 and Flux's readers resolve scalars) as in a YAML 1.2 one: strings such as `yes`,
//! `off`, `~`, `0644`, `1e3`, `2024-01-01` or `12:30:00` come back as strings, not as booleans,
//! numbers, nulls or dates. Covers `render` (the CLI), `seal` (the CLI; rotate and bootstrap
//! write sealed files through the same `seal::to_yaml`), the library's `seal::to_yaml` and
//! `manifest::to_yaml`, and the Flux objects bootstrap generates.

use std::io::Write;
use std::process::{Command, Stdio};

use capi_manage::manifest::{Object, parse_str, to_yaml};
use serde_json::{Map, Value, json};

use crate::seal::{capi, keys, ok};

/// Strings a YAML 1.1 reader resolves to something else when written plain.
const AMBIGUOUS: &[&str] = &[
    "yes",
    "Yes",
    "YES",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "y",
    "Y",
    "n",
    "N",
    "~",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "null",
    "Null",
    "NULL",
    "0644",
    "0o17",
    "1e3",
    "1E3",
    "2024-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "0x1F",
    "0b1010",
    ".inf",
    "-.Inf",
    ".NaN",
    "1_000",
    "12:30:00",
    "190:20:30.15",
    "1.5",
    "+12",
    "-0",
    "42",
    "<<",
    "=",
];

/// The documents of `yaml` as PyYAML's `safe_load_all` reads them, as JSON. A scalar it reads
/// as a date makes the JSON encoding (and so the test) fail.
fn pyyaml(yaml: &str) -> Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/prereqs/pyyaml.sh installs PyYAML)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyYAML cannot read (or JSON-encode) this; install PyYAML with scripts/prereqs/pyyaml.sh\n{}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// PyYAML reads `yaml` exactly as our (YAML 1.2) reader does.
fn readers_agree(yaml: &str, what: &str) -> Vec<Value> {
    let ours: Vec<Value> = serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    let theirs = pyyaml(yaml);
    let theirs: Vec<Value> = theirs
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v.is_null())
        .cloned()
        .collect();
    assert_eq!(theirs, ours, "{what}: a YAML 1.1 reader reads\n{yaml}");
    ours
}

fn ambiguous_map(prefix: &str) -> Map<String, Value> {
    AMBIGUOUS
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{prefix}{i}"), json!(s)))
        .collect()
}

#[test]
fn manifest_to_yaml_quotes_what_yaml_1_1_would_retype() {
    let mut data = ambiguous_map("v");
    for s in AMBIGUOUS {
        data.insert(format!("key-{s}"), json!(s));
        data.insert((*s).to_string(), json!("as key"));
    }
    let cm = Object::new(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "yes", "namespace": "on", "labels": ambiguous_map("l"), "annotations": ambiguous_map("a")},
        "data": data,
        "list": AMBIGUOUS,
    }));
    let yaml = to_yaml(std::slice::from_ref(&cm));
    let back = readers_agree(&yaml, "manifest::to_yaml");
    assert_eq!(back, vec![cm.value.clone()]);
    for (i, s) in AMBIGUOUS.iter().enumerate() {
        assert_eq!(back[0]["data"][format!("v{i}")], json!(s));
    }
}

#[test]
fn render_output_reads_back_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"0644\"\n  annotations:\n    plain-bool: true\n    plain-octal: 0644\ndata:\n",
    );
    for (i, s) in AMBIGUOUS.iter().enumerate() {
        cm.push_str(&format!("  k{i}: {}\n", serde_json::to_string(s).unwrap()));
    }
    std::fs::write(dir.path().join("cm.yaml"), cm).unwrap();
    let mut k = String::from("resources:\n- cm.yaml\ncommonLabels:\n");
    for (i, s) in AMBIGUOUS.iter().take(20).enumerate() {
        k.push_str(&format!("  l{i}: {}\n", serde_json::to_string(s).unwrap()));
    }
    k.push_str("commonAnnotations:\n  note: \"2024-01-01\"\n");
    std::fs::write(dir.path().join("kustomization.yaml"), k).unwrap();
    let out = ok(
        capi(&["render", dir.path().to_str().unwrap()], b""),
        "capi-manage render",
    );
    let back = readers_agree(&out, "render");
    let cm = &back[0];
    for (i, s) in AMBIGUOUS.iter().enumerate() {
        assert_eq!(cm["data"][format!("k{i}")], json!(s), "{out}");
    }
    for (i, s) in AMBIGUOUS.iter().take(20).enumerate() {
        assert_eq!(cm["metadata"]["labels"][format!("l{i}")], json!(s), "{out}");
    }
    assert_eq!(cm["metadata"]["name"], "0644");
    // kustomize keeps annotation values as written, as strings.
    assert_eq!(cm["metadata"]["annotations"]["plain-bool"], "true");
    assert_eq!(cm["metadata"]["annotations"]["plain-octal"], "0644");
    assert_eq!(cm["metadata"]["annotations"]["note"], "2024-01-01");
}

fn ambiguous_secret() -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"yes\"\n  namespace: \"on\"\n  labels:\n",
    );
    for (i, v) in AMBIGUOUS.iter().enumerate() {
        s.push_str(&format!(
            "    l{i}: {}\n",
            serde_json::to_string(v).unwrap()
        ));
    }
    s.push_str("  annotations:\n");
    for (i, v) in AMBIGUOUS.iter().enumerate() {
        s.push_str(&format!(
            "    a{i}: {}\n",
            serde_json::to_string(v).unwrap()
        ));
    }
    s.push_str("type: Opaque\nstringData:\n");
    for v in AMBIGUOUS {
        s.push_str(&format!("  {}: x\n", serde_json::to_string(v).unwrap()));
    }
    s
}

fn check_sealed(back: &Value) {
    let template = &back["spec"]["template"]["metadata"];
    for (i, v) in AMBIGUOUS.iter().enumerate() {
        assert_eq!(template["labels"][format!("l{i}")], json!(v));
        assert_eq!(template["annotations"][format!("a{i}")], json!(v));
        assert!(
            back["spec"]["encryptedData"].get(*v).is_some(),
            "encryptedData lacks key {v:?}"
        );
    }
    assert_eq!(back["metadata"]["name"], "yes");
    assert_eq!(back["metadata"]["namespace"], "on");
}

#[test]
fn seal_cli_output_reads_back_as_strings() {
    let cert = keys().cert.to_str().unwrap();
    let out = ok(
        capi(&["seal", "--cert", cert], ambiguous_secret().as_bytes()),
        "capi-manage seal",
    );
    let back = readers_agree(&out, "seal");
    check_sealed(&back[0]);
}

#[test]
fn sealed_files_rotate_and_bootstrap_write_read_back_as_strings() {
    let key = capi_manage::seal::SealingKey::from_pem(
        &std::fs::read(&keys().cert).unwrap(),
        "test certificate",
    )
    .unwrap();
    let secret = capi_manage::seal::Secret::parse(&ambiguous_secret(), None)
        .unwrap()
        .remove(0);
    let sealed =
        capi_manage::seal::seal(&secret, &key, &capi_manage::seal::SealOptions::default()).unwrap();
    let yaml = capi_manage::seal::to_yaml(&sealed);
    let back = readers_agree(&yaml, "seal::to_yaml");
    check_sealed(&back[0]);
}

#[test]
fn flux_objects_bootstrap_generates_read_back_as_strings() {
    let mut o = capi_manage::flux::SyncOptions::new("yes", "ssh://git@127.0.0.1/on.git", "on");
    o.path = "./clusters/yes".into();
    let objects = capi_manage::flux::sync_objects(&o);
    let yaml = to_yaml(&objects);
    let back = readers_agree(&yaml, "flux sync objects");
    assert_eq!(
        back,
        objects.iter().map(|o| o.value.clone()).collect::<Vec<_>>()
    );
    let repo = back
        .iter()
        .find(|v| v["kind"] == "GitRepository")
        .expect("a GitRepository");
    assert_eq!(repo["metadata"]["name"], "yes");
    assert_eq!(repo["spec"]["ref"]["branch"], "on");
    // And what the writer reads back through our own parser is unchanged.
    assert_eq!(parse_str(&yaml, None).unwrap().len(), objects.len());
}
