//! The end-to-end test's checks of `capi-manage status` and of the support bundle, kept apart
//! from tests/it/bootstrap.rs. Each returns the problems it found instead of panicking, so that
//! the end-to-end test still tears the cluster down (and frees its OpenStack resources) before
//! it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use capi_manage::kube::Discovery;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::capi::api_in;
use crate::support::capi_manage;

const CAPI: &str = "cluster.x-k8s.io/v1beta2";

/// Where the end-to-end test's cluster is and how `status` reaches its git remote.
pub struct Target<'a> {
    pub work: &'a Path,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub home: &'a Path,
    pub ssh_identity: &'a Path,
    pub known_hosts: &'a Path,
    /// The branch head on the remote (hex).
    pub head: &'a str,
}

impl Target<'_> {
    fn status(&self, extra: &[&str]) -> Output {
        let out = capi_manage()
            .arg("status")
            .args(extra)
            .arg("--repo")
            .arg(self.work)
            .arg("--ssh-identity")
            .arg(self.ssh_identity)
            .arg("--known-hosts")
            .arg(self.known_hosts)
            .arg("--no-agent")
            .env("HOME", self.home)
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap();
        eprintln!(
            "$ capi-manage status {} -> {:?}\n{}{}",
            extra.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

macro_rules! check {
    ($problems:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $problems.push(format!($($arg)+));
        }
    };
}

/// The condition `type_` of a live object.
fn live_condition(o: &Value, type_: &str) -> Value {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Machines in a JSON tree: a Machine row counts one, a group its members.
fn machines_in(row: &Value, out: &mut Vec<String>) {
    if row["kind"] == "Machine" {
        out.push(row["name"].as_str().unwrap_or_default().to_string());
    }
    if let Some(m) = row["members"].as_array() {
        out.extend(m.iter().map(|n| n.as_str().unwrap_or_default().to_string()));
    }
    for c in row["children"].as_array().into_iter().flatten() {
        machines_in(c, out);
    }
}

/// `status` on the pivoted cluster: ready (0) with its tree and JSON matching the live objects,
/// not ready once its Cluster is paused (4), and an unreachable API server (1, one line).
pub async fn status_checks(t: &Target<'_>, d: &Discovery) -> Vec<String> {
    let mut p = Vec::new();
    let (cluster, ns) = (t.cluster, t.namespace);

    // Ready: 0, the tree drawn like clusterctl's.
    let out = t.status(&[cluster]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    check!(
        p,
        out.status.code() == Some(0),
        "ready: exit {:?}",
        out.status.code()
    );
    let lines: Vec<&str> = text.lines().collect();
    check!(
        p,
        lines.first() == Some(&format!("cluster {cluster}: ready").as_str()),
        "first line: {text}"
    );
    check!(
        p,
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("NAME") && l.contains("STATUS  REASON")),
        "heading: {text}"
    );
    check!(
        p,
        lines
            .get(2)
            .is_some_and(|l| l.starts_with(&format!("Cluster {ns}/{cluster} "))),
        "root row: {text}"
    );
    for want in [
        format!("├─ClusterInfrastructure - OpenStackCluster {ns}/{cluster}"),
        format!("├─ControlPlane - KubeadmControlPlane {ns}/"),
        "└─Workers".to_string(),
        format!("  └─MachineDeployment {ns}/{cluster}-md-0"),
        format!("Kustomization {cluster}: Ready=True"),
        format!("sha1:{}", t.head),
        "in sync".to_string(),
    ] {
        check!(p, text.contains(&want), "ready text lacks {want:?}");
    }
    check!(p, !text.contains("drift:"), "drift reported: {text}");

    // The JSON: the tree's conditions are the live objects' conditions.
    let out = t.status(&[cluster, "-o", "json"]);
    check!(
        p,
        out.status.code() == Some(0),
        "json: exit {:?}",
        out.status.code()
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let live = api_in(d, CAPI, "Cluster", ns)
        .await
        .get(cluster)
        .await
        .unwrap();
    let live = serde_json::to_value(&live).unwrap();
    let available = live_condition(&live, "Available");
    let shown = &j["describe"]["tree"]["condition"];
    check!(p, j["ready"] == true, "json ready: {}", j["ready"]);
    check!(
        p,
        shown["type"] == "Available"
            && shown["status"] == available["status"]
            && shown["reason"] == available["reason"]
            && shown["since"] == available["lastTransitionTime"],
        "tree condition {shown} vs live {available}"
    );
    let mut in_tree = Vec::new();
    machines_in(&j["describe"]["tree"], &mut in_tree);
    let live_machines = api_in(d, CAPI, "Machine", ns)
        .await
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    check!(
        p,
        in_tree.len() == live_machines.len() && in_tree.len() == 5,
        "machines in the tree {in_tree:?}, live {}",
        live_machines.len()
    );
    for m in &live_machines {
        let ready = live_condition(&serde_json::to_value(m).unwrap(), "Ready");
        check!(
            p,
            ready["status"] == "True",
            "live Machine {:?} Ready {ready}",
            m.metadata.name
        );
    }
    check!(
        p,
        j["flux"]["head"] == t.head,
        "flux head {}",
        j["flux"]["head"]
    );
    let flux = j["flux"]["objects"].as_array().cloned().unwrap_or_default();
    check!(
        p,
        flux.iter()
            .any(|o| o["kind"] == "Kustomization" && o["name"] == cluster)
            && flux.iter().all(|o| o["drift"].is_null()),
        "flux objects {flux:?}"
    );

    // --all: the example folder is not bootstrapped and changes nothing.
    let out = t.status(&["--all", "-o", "json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let by_name: BTreeMap<String, Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["cluster"].as_str().unwrap_or_default().to_string(),
                r.clone(),
            )
        })
        .collect();
    check!(
        p,
        out.status.code() == Some(0),
        "--all: exit {:?}",
        out.status.code()
    );
    check!(
        p,
        by_name
            .get("example")
            .is_some_and(|r| r["bootstrapped"] == false)
            && by_name.get(cluster).is_some_and(|r| r["ready"] == true),
        "--all: {all}"
    );

    // Not ready: the Cluster paused (spec.paused, the user's field a move sets too; the
    // controllers then stand still) gives 4 and says why.
    let clusters = api_in(d, CAPI, "Cluster", ns).await;
    let pause = |v: Value| Patch::Merge(json!({"spec": {"paused": v}}));
    clusters
        .patch(cluster, &PatchParams::default(), &pause(json!(true)))
        .await
        .unwrap();
    let out = t.status(&[cluster]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    check!(
        p,
        out.status.code() == Some(4),
        "paused: exit {:?}",
        out.status.code()
    );
    check!(
        p,
        text.starts_with(&format!("cluster {cluster}: not ready\n")),
        "paused text: {text}"
    );
    check!(
        p,
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with(&format!(
                "error: cluster {cluster} is not ready: Cluster {ns}/{cluster}"
            )) && l.contains("paused (spec.paused)")),
        "paused stderr: {stderr}"
    );
    let out = t.status(&[cluster, "-o", "json"]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    check!(
        p,
        out.status.code() == Some(4)
            && j["ready"] == false
            && j["describe"]["tree"]["paused"] == true,
        "paused json: {:?} {j}",
        out.status.code()
    );
    clusters
        .patch(cluster, &PatchParams::default(), &pause(Value::Null))
        .await
        .unwrap();
    let out = t.status(&[cluster]);
    check!(
        p,
        out.status.code() == Some(0),
        "unpaused: exit {:?}",
        out.status.code()
    );

    // Unreachable: the kubeconfig names a port nobody listens on: 1, one line.
    let kc = t.work.join(format!("clusters/{cluster}/kubeconfig"));
    let original = std::fs::read_to_string(&kc).unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let server = regex::Regex::new(r"server: https://[^\s]+").unwrap();
    std::fs::write(
        &kc,
        server
            .replace_all(
                &original,
                format!("server: https://127.0.0.1:{port}").as_str(),
            )
            .as_ref(),
    )
    .unwrap();
    let out = t.status(&[cluster]);
    std::fs::write(&kc, &original).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    check!(
        p,
        out.status.code() == Some(1),
        "unreachable: exit {:?}",
        out.status.code()
    );
    check!(
        p,
        stderr.lines().count() == 1
            && stderr.starts_with("error: ")
            && stderr.contains(&format!(
                "reading cluster {cluster} through {}",
                kc.display()
            )),
        "unreachable stderr: {stderr}"
    );
    p
}

/// The support bundles in the cluster's state folder.
pub fn bundles(work: &Path, cluster: &str) -> Vec<PathBuf> {
    let dir = work.join(format!("clusters/{cluster}/.capi-manage"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("support-")
        })
        .collect();
    v.sort();
    v
}

/// The values in a kubeconfig that are credentials: client keys, certificates' keys, tokens.
pub fn kubeconfig_secrets(kubeconfig: &str) -> Vec<String> {
    let v: Value = serde_yaml_ng::from_str(kubeconfig).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for u in v["users"].as_array().into_iter().flatten() {
        for k in ["client-key-data", "token", "password"] {
            if let Some(s) = u["user"][k].as_str() {
                out.push(s.to_string());
            }
        }
    }
    out
}

/// The bundle of a step failed after the Cluster exists: the node's logs, the Cluster's
/// conditions as the live object holds them, the controllers' Pods (and what of their logs
/// could not be read), the events, the state file; none of `secrets` anywhere in it.
pub async fn bundle_checks(
    bundle: &Path,
    step: &str,
    cluster: &str,
    namespace: &str,
    kind_d: &Discovery,
    secrets: &[String],
) -> Vec<String> {
    let mut p = Vec::new();
    // The credential, two kubeconfigs' keys or tokens, the sealing key (two forms).
    check!(
        p,
        secrets.len() >= 5,
        "only {} credential values to look for",
        secrets.len()
    );
    let files = crate::support::untar(bundle);
    let names: Vec<&String> = files.keys().collect();
    eprintln!("support bundle {}: {names:?}", bundle.display());
    for want in [
        "README.txt",
        "error.txt",
        "state.json",
        "node/docker-logs.txt",
        "kind/events.yaml",
        "kind/cluster-conditions.yaml",
    ] {
        check!(p, files.contains_key(want), "{want} not in {names:?}");
    }
    check!(
        p,
        files
            .get("error.txt")
            .is_some_and(|e| e.contains(&format!("step {step}"))),
        "error.txt: {:?}",
        files.get("error.txt")
    );
    check!(
        p,
        files
            .get("node/docker-logs.txt")
            .is_some_and(|l| !l.trim().is_empty()),
        "empty node logs"
    );
    // The Cluster's conditions as its controllers wrote them: every condition in the bundle is
    // the live object's (same type and status, reason and transition time) unless it moved on
    // since; the bundle was written moments ago.
    let conditions: Value = files
        .get("kind/cluster-conditions.yaml")
        .and_then(|t| serde_yaml_ng::from_str(t).ok())
        .unwrap_or(Value::Null);
    eprintln!("bundle's Cluster conditions: {conditions}");
    let live = api_in(kind_d, CAPI, "Cluster", namespace)
        .await
        .get(cluster)
        .await
        .unwrap();
    let live = serde_json::to_value(&live).unwrap();
    check!(
        p,
        conditions["cluster"] == format!("{namespace}/{cluster}"),
        "cluster-conditions names {}",
        conditions["cluster"]
    );
    let listed = conditions["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    check!(
        p,
        !listed.is_empty(),
        "no conditions in the bundle: {conditions}"
    );
    for c in &listed {
        let now = live_condition(&live, c["type"].as_str().unwrap_or_default());
        let same = now["status"] == c["status"] && now["reason"] == c["reason"];
        let moved_on = now["lastTransitionTime"].as_str() > c["lastTransitionTime"].as_str();
        check!(p, same || moved_on, "bundle condition {c} vs live {now}");
    }
    // Controllers: their Pods are in it; logs a node cannot serve are named as not gathered.
    let readme = files.get("README.txt").cloned().unwrap_or_default();
    let controller_pods: Vec<&String> = names
        .iter()
        .copied()
        .filter(|n| {
            n.starts_with("kind/pods/capi-system/") || n.starts_with("kind/pods/capo-system/")
        })
        .collect();
    check!(
        p,
        !controller_pods.is_empty(),
        "no controller Pods in {names:?}"
    );
    let logs: Vec<&String> = controller_pods
        .iter()
        .copied()
        .filter(|n| n.ends_with(".log"))
        .collect();
    check!(
        p,
        !logs.is_empty() || readme.contains("logs of capi-system/"),
        "controller logs neither gathered nor said missing: {readme}"
    );
    eprintln!("controller logs gathered: {logs:?}; README:\n{readme}");
    // No secret value anywhere, in the files or the raw archive.
    for s in secrets {
        for (name, text) in &files {
            check!(p, !text.contains(s.as_str()), "{name} holds a secret value");
        }
    }
    let raw = std::fs::read(bundle).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut all).unwrap();
    for s in secrets {
        check!(
            p,
            !all.windows(s.len()).any(|w| w == s.as_bytes()),
            "the archive holds a secret value"
        );
    }
    p
}
