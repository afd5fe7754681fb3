//! Moving 1, 10 and 100 cluster graphs between two kube-apiservers: `capi-manage move` vs
//! `clusterctl move` (v1.14.0), both as whole processes, in one run.
//!
//! Run: `scripts/test-binaries clusterctl && cargo bench --bench move`. `BENCH_SIZES=1,10`
//! picks other graph counts, `BENCH_ROUNDS` (default 5) the runs per measurement (medians);
//! `BENCH_COLD=1` skips warming the apiservers' watch caches (see
//! `setup`). Every measurement gets a fresh source and target, both set up as
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

use std::collections::BTreeMap;
use std::path::Path;
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

fn timed(mut cmd: Command) -> Duration {
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
    elapsed
}

fn keys(m: &BTreeMap<String, Value>) -> Vec<&String> {
    m.keys().collect()
}

/// `capi-manage move` of a fresh source with `n` graphs; checks the target holds all of them
/// (and, with `--delete-source`, that the source is empty).
fn ours(rt: &tokio::runtime::Runtime, n: usize, delete_source: bool) -> Duration {
    let ((a_cp, a), (b_cp, b), before) = setup(rt, n);
    let mut cmd = support::capi_manage();
    cmd.arg("move")
        .arg("--from-kubeconfig")
        .arg(a_cp.kubeconfig_path())
        .arg("--to-kubeconfig")
        .arg(b_cp.kubeconfig_path())
        .args(["-n", NS]);
    if delete_source {
        cmd.arg("--delete-source");
    }
    let took = timed(cmd);
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
    took
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
    let took = timed(cmd);
    let (moved, kept): (Vec<&String>, Vec<&String>) =
        before.keys().partition(|k| !clusterctl_skips(k));
    assert_eq!(moved.len(), 14 * n);
    rt.block_on(async {
        assert_eq!(keys(&snapshot(&b).await), moved, "clusterctl target");
        assert_eq!(keys(&snapshot(&a).await), kept, "clusterctl source");
    });
    took
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
    for n in sizes {
        let (mut os, mut ods, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            os.push(ours(&rt, n, false));
            ods.push(ours(&rt, n, true));
            ts.push(theirs(&rt, n, &clusterctl, home.path()));
        }
        let (o, od, t) = (median(os), median(ods), median(ts));
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
        prev = Some((n, o, t));
    }
    println!("objects moved per graph: capi-manage 17, clusterctl 14 (see the header comment)");
}
