//! Applying the upstream CRD bundle (Flux, CAPI, CAPO, sealed-secrets) to a fresh kube-apiserver:
//! `capi-manage apply` vs `kubectl apply --server-side`, both as whole processes, in one run.
//!
//! Run: `scripts/test-binaries kubectl && cargo bench --bench apply`. Each round starts two fresh
//! control planes so neither tool sees objects the other created. capi-manage also waits until
//! every CRD is established and discoverable; kubectl returns as soon as they are written.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn crd_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for group in ["flux", "cluster-api", "openstack", "sealed-secrets"] {
        for e in std::fs::read_dir(support::fixtures().join(group)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("kind: CustomResourceDefinition") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let kubectl = support::test_bin("kubectl");
    let files = crd_files();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let cp = rt.block_on(support::ControlPlane::start());
        let mut cmd = support::capi_manage();
        cmd.arg("apply")
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path());
        for f in &files {
            cmd.arg("-f").arg(f);
        }
        ours.push(timed(cmd));
        drop(cp);

        let cp = rt.block_on(support::ControlPlane::start());
        let mut cmd = Command::new(&kubectl);
        cmd.arg("apply")
            .arg("--server-side")
            .arg("--force-conflicts")
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path());
        for f in &files {
            cmd.arg("-f").arg(f);
        }
        theirs.push(timed(cmd));
    }
    let (o, t) = (median(ours), median(theirs));
    println!(
        "apply {} CRD files to a fresh apiserver, median of {rounds}:",
        files.len()
    );
    println!(
        "  capi-manage apply            {:>8.1} ms (waits until established)",
        o.as_secs_f64() * 1e3
    );
    println!(
        "  kubectl apply --server-side  {:>8.1} ms",
        t.as_secs_f64() * 1e3
    );
    println!(
        "  ratio capi-manage/kubectl    {:>8.2}",
        o.as_secs_f64() / t.as_secs_f64()
    );
}
