//! Moving 1, 10 and 100 cluster graphs between two kube-apiservers: `capi-manage move` vs
//! `clusterctl move` (v1.14.0), both as whole processes, in one run.
//!
//! Run: `scripts/test-binaries clusterctl && cargo bench --features test-support --bench move`.
//! `BENCH_SIZES=1,10` picks other graph counts, `BENCH_ROUNDS` (default 5) the runs per
//! measurement (medians); `BENCH_COLD=1` skips warming the apiservers' watch caches (see
//! `setup`); `BENCH_BASELINE=<capi-manage binary>` times another build as well (e.g. the
//! previous commit's), in the same rounds; `BENCH_TRACE=1` prints, for the largest size, the
//! requests of one traced run of each capi-manage build by phase (count, first and last ms). Every measurement gets a fresh source and target, both set up as
//! `clusterctl init` leaves a management cluster (upstream CRDs with clusterctl's labels,
//! provider inventory), with N graphs `demo-0`..`demo-<N-1>` of 17 objects each in one
//! namespace, so no tool sees objects another created.
//!
//! The tools do not do the same work, and the differences affect the times:
//! - clusterctl moves the 14 objects of each graph tied to its Cluster; capi-manage moves every
//!   Secret and ConfigMap of the namespace as well (17 per graph: the values ConfigMap, the
//!   cloud credentials and Helm's release record).
//! - capi-manage restores each object's status on the target (one more write per object that
//!   has one); clusterctl leaves status to the controllers.
//! - clusterctl deletes what it moved from the source; capi-manage keeps the source (paused)
//!   unless `--delete-source`, so it is timed both ways.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "common/trace.rs"]
mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use capi_manage::kube::Discovery;
use futures::StreamExt;
use serde_json::Value;
use support::ControlPlane;
use support::capi::{
    NS, cluster_graph, clusterctl_management_cluster, mark_provisioned_for_clusterctl, snapshot,
};

/// Objects of a graph clusterctl leaves behind (not tied to the Cluster), by name pattern.
fn clusterctl_skips(key: &str) -> bool {
    key.starts_with("ConfigMap/") && key.ends_with("-values")
        || key.starts_with("Secret/sh.helm.release.v1.")
        || key.starts_with("Secret/") && key.ends_with("-cloud-credentials")
}

/// A fresh source with `n` graphs and a fresh, empty target; the source's objects.
fn setup(
    rt: &tokio::runtime::Runtime,
    n: usize,
) -> (
    (ControlPlane, Discovery),
    (ControlPlane, Discovery),
    BTreeMap<String, Value>,
) {
    rt.block_on(async {
        let ((a_cp, a), b) = tokio::join!(
            clusterctl_management_cluster(),
            clusterctl_management_cluster()
        );
        futures::stream::iter(0..n)
            .map(|i| {
                let a = &a;
                async move {
                    let name = format!("demo-{i}");
                    cluster_graph(a, &name).await;
                    mark_provisioned_for_clusterctl(a, &name).await;
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
        if std::env::var_os("BENCH_COLD").is_none() {
            // The controllers of a real management cluster watch every kind a move lists, so
            // the apiserver's watch caches are initialised. On a fresh apiserver the first
            // list of a never-written kind waits about a second for the cache (12 such kinds
            // here, for either tool); one untimed plan per side lists them all once.
            let (p, q) = tokio::join!(
                capi_manage::capi::plan(&a, NS),
                capi_manage::capi::plan(&b.1, NS)
            );
            p.unwrap();
            q.unwrap();
        }
        let before = snapshot(&a).await;
        assert_eq!(before.len(), 17 * n, "source objects");
        ((a_cp, a), b, before)
    })
}

fn timed(mut cmd: Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn keys(m: &BTreeMap<String, Value>) -> Vec<&String> {
    m.keys().collect()
}

/// `capi-manage move` of a fresh source with `n` graphs; checks the target holds all of them
/// (and, with `--delete-source`, that the source is empty).
fn ours(rt: &tokio::runtime::Runtime, bin: &Path, n: usize, delete_source: bool) -> Duration {
    ours_traced(rt, bin, n, delete_source, false).0
}

/// [`ours`], with capi-manage's HTTP trace on stderr when `trace`.
fn ours_traced(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    n: usize,
    delete_source: bool,
    trace: bool,
) -> (Duration, String) {
    let ((a_cp, a), (b_cp, b), before) = setup(rt, n);
    let mut cmd = Command::new(bin);
    if trace {
        cmd.arg("-v")
            .env("RUST_LOG", "kube_client::client::builder=debug");
    }
    cmd.arg("move")
        .arg("--from-kubeconfig")
        .arg(a_cp.kubeconfig_path())
        .arg("--to-kubeconfig")
        .arg(b_cp.kubeconfig_path())
        .args(["-n", NS]);
    if delete_source {
        cmd.arg("--delete-source");
    }
    let (took, stderr) = timed(cmd);
    rt.block_on(async {
        assert_eq!(
            keys(&snapshot(&b).await),
            keys(&before),
            "capi-manage target"
        );
        let left = snapshot(&a).await;
        if delete_source {
            assert!(left.is_empty(), "capi-manage --delete-source left {left:?}");
        } else {
            assert_eq!(keys(&left), keys(&before), "capi-manage source kept");
        }
    });
    (took, stderr)
}

/// `clusterctl move` of a fresh source with `n` graphs; checks the target holds every object
/// tied to a Cluster and the source only the others.
fn theirs(rt: &tokio::runtime::Runtime, n: usize, clusterctl: &Path, home: &Path) -> Duration {
    let ((a_cp, a), (b_cp, b), before) = setup(rt, n);
    let mut cmd = Command::new(clusterctl);
    cmd.arg("move")
        .arg("--kubeconfig")
        .arg(a_cp.kubeconfig_path())
        .arg("--to-kubeconfig")
        .arg(b_cp.kubeconfig_path())
        .args(["-n", NS])
        .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
        .env("HOME", home);
    let (took, _) = timed(cmd);
    let (moved, kept): (Vec<&String>, Vec<&String>) =
        before.keys().partition(|k| !clusterctl_skips(k));
    assert_eq!(moved.len(), 14 * n);
    rt.block_on(async {
        assert_eq!(keys(&snapshot(&b).await), moved, "clusterctl target");
        assert_eq!(keys(&snapshot(&a).await), kept, "clusterctl source");
    });
    took
}

/// Path segments after `namespaces/<ns>/`: 1 for a list, 2 for an object.
fn after_namespace(path: &str) -> usize {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .position(|s| *s == "namespaces")
        .map_or(0, |i| segments.len().saturating_sub(i + 2))
}

/// What a request of a move is for, for the timeline's summary.
fn purpose(r: &trace::Request) -> &'static str {
    let p = r.path.as_str();
    let m = r.method.as_str();
    if p == "/api" || p == "/apis" || p.starts_with("/api?") || p.starts_with("/apis?") {
        "discovery"
    } else if p.contains("customresourcedefinitions") {
        "list CRDs"
    } else if p.ends_with("/status") {
        "write status"
    } else if m == "GET" && !p.contains("/namespaces/") {
        "read cluster-wide"
    } else if m == "GET" && after_namespace(p) == 1 {
        "list"
    } else if m == "GET" {
        "read object"
    } else if m == "POST" {
        "create"
    } else if m == "PUT" {
        "replace"
    } else if m == "PATCH" {
        "patch (pause, unpause, mark)"
    } else if m == "DELETE" {
        "delete"
    } else {
        "other"
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_SIZES: comma-separated counts")
        })
        .collect();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let clusterctl = support::test_bin("clusterctl");
    let this = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    let home = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "move N cluster graphs between fresh kube-apiservers, median of {rounds} (seconds); growth per tenfold of N:"
    );
    println!(
        "{:>5} {:>12} {:>7} {:>14} {:>16} {:>7} {:>12} {:>12}",
        "N", "capi-manage", "growth", "capi-manage", "clusterctl move", "growth", "ratio", "ratio"
    );
    println!(
        "{:>5} {:>12} {:>7} {:>14} {:>16} {:>7} {:>12} {:>12}",
        "", "move", "", "--delete-src", "", "", "cc/ours", "cc/ours-del"
    );
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let mut prev: Option<(usize, f64, f64)> = None;
    for &n in &sizes {
        let (mut os, mut ods, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        let mut bs = Vec::new();
        for _ in 0..rounds {
            os.push(ours(&rt, &this, n, false));
            ods.push(ours(&rt, &this, n, true));
            ts.push(theirs(&rt, n, &clusterctl, home.path()));
            if let Some(b) = &baseline {
                bs.push(ours(&rt, b, n, false));
            }
        }
        let (o, od, t) = (median(os), median(ods), median(ts));
        let b = (!bs.is_empty()).then(|| median(bs));
        let growth = |now: f64, then: Option<(usize, f64)>| {
            then.map_or("-".to_string(), |(m, was)| {
                format!(
                    "{:.1}x",
                    (now / was).powf(1.0 / (n as f64 / m as f64).log10())
                )
            })
        };
        println!(
            "{n:>5} {o:>12.2} {:>7} {od:>14.2} {t:>16.2} {:>7} {:>12.2} {:>12.2}",
            growth(o, prev.map(|(m, o, _)| (m, o))),
            growth(t, prev.map(|(m, _, t)| (m, t))),
            t / o,
            t / od
        );
        if let Some(b) = b {
            println!(
                "      baseline capi-manage move {b:.2} s (baseline / this build {:.2})",
                b / o
            );
        }
        prev = Some((n, o, t));
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        let n = *sizes.iter().max().expect("a size");
        println!("requests of one traced move of {n} graphs (ms since the first request):");
        let mut builds = vec![("capi-manage move", this.clone())];
        if let Some(b) = &baseline {
            builds.push(("baseline capi-manage move", b.clone()));
        }
        for (label, bin) in builds {
            let (took, stderr) = ours_traced(&rt, &bin, n, false, true);
            trace::timeline(label, &trace::our_requests(&stderr), took, purpose);
        }
    }
    println!("objects moved per graph: capi-manage 17, clusterctl 14 (see the header comment)");
}
