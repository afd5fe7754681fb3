//! Applying to a fresh kube-apiserver: `capi-manage apply` vs `kubectl apply --server-side`, both
//! as whole processes, in one run.
//!
//! Run: `scripts/test-binaries kubectl && cargo bench --bench apply`. Every measurement starts a
//! fresh control plane, so no tool sees objects another created. Three parts:
//!
//! 1. The upstream CRD bundle (Flux, CAPI, CAPO, sealed-secrets). capi-manage returns once every
//!    CRD is established and its kinds discoverable; kubectl returns once the CRDs are written,
//!    so it is timed bare and followed by `kubectl wait --for=condition=Established` (the same
//!    end state).
//! 2. The requests each tool makes for that bundle, from one traced run each: capi-manage's own
//!    HTTP trace (`-v` with `RUST_LOG=kube_client::client::builder=debug`), kubectl's `-v=6`.
//!    capi-manage's requests are printed as a timeline (start and duration, ms since the first).
//! 3. Scaling: N ConfigMaps (N = 10, 100, 1000, 3000) in one namespace, with the growth factor
//!    per tenfold increase.
//!
//! Env: `BENCH_ROUNDS` (default 5) runs per measurement, medians reported; `BENCH_SIZES`
//! (default `10,100,1000,3000`; empty: skip part 3); `BENCH_BASELINE=<capi-manage binary>` times
//! another build of capi-manage as well (e.g. the previous commit's), in the same rounds;
//! `BENCH_TIMELINE=0` skips part 2.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "common/trace.rs"]
mod trace;

use trace::{Request, our_requests, timeline};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

fn run(mut cmd: Command) -> (Duration, Output) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, out)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A tool's invocation against one control plane.
#[derive(Clone, Copy)]
enum Tool<'a> {
    /// capi-manage (this build or another binary).
    Ours(&'a Path),
    /// `kubectl apply --server-side`.
    Kubectl(&'a Path),
    /// `kubectl apply --server-side`, then `kubectl wait --for=condition=Established` on the CRDs.
    KubectlWait(&'a Path),
}

fn apply_cmd(tool: Tool, kubeconfig: &Path, files: &[PathBuf], trace: bool) -> Command {
    let mut cmd = match tool {
        Tool::Ours(bin) => {
            let mut c = Command::new(bin);
            if trace {
                c.arg("-v")
                    .env("RUST_LOG", "kube_client::client::builder=debug");
            }
            c.arg("apply");
            c
        }
        Tool::Kubectl(bin) | Tool::KubectlWait(bin) => {
            let mut c = Command::new(bin);
            if trace {
                c.arg("-v=6");
            }
            c.args(["apply", "--server-side", "--force-conflicts"]);
            c
        }
    };
    cmd.arg("--kubeconfig").arg(kubeconfig);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd
}

/// Runs `tool` on a fresh control plane; the time and what it printed on stderr.
fn measure(
    rt: &tokio::runtime::Runtime,
    tool: Tool,
    files: &[PathBuf],
    trace: bool,
) -> (Duration, String) {
    let cp = rt.block_on(support::ControlPlane::start());
    let (mut took, out) = run(apply_cmd(tool, cp.kubeconfig_path(), files, trace));
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if let Tool::KubectlWait(bin) = tool {
        let mut cmd = Command::new(bin);
        if trace {
            cmd.arg("-v=6");
        }
        cmd.args(["wait", "--for=condition=Established", "--timeout=120s"])
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path());
        for f in files {
            cmd.arg("-f").arg(f);
        }
        let (waited, out) = run(cmd);
        took += waited;
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (took, stderr)
}

/// Requests in kubectl's `-v=6` log, by method.
fn kubectl_requests(stderr: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in stderr.lines().filter(|l| l.contains("\"Response\"")) {
        if let Some(i) = line.find("verb=\"") {
            let verb = &line[i + 6..];
            let verb = &verb[..verb.find('"').unwrap_or(verb.len())];
            *out.entry(verb.to_string()).or_default() += 1;
        }
    }
    out
}

/// What a request is for, for the timeline's summary.
fn purpose(r: &Request) -> &'static str {
    let p = r.path.as_str();
    if p == "/api" || p == "/apis" || p.starts_with("/api?") || p.starts_with("/apis?") {
        "discovery (aggregated)"
    } else if p.starts_with("/apis/") && p.matches('/').count() <= 3 && r.method == "GET" {
        "discovery (group version)"
    } else if p.contains("watch=true") {
        "wait (watch)"
    } else if p.contains("dryRun=All") {
        "dry run"
    } else if r.method == "PATCH" || r.method == "POST" || r.method == "PUT" {
        "write"
    } else if p.contains("customresourcedefinitions/") && r.method == "GET" {
        "read (CRD or its wait)"
    } else if r.method == "GET" && p.contains("?") {
        "list"
    } else {
        "read"
    }
}

fn configmaps(dir: &Path, n: usize) -> PathBuf {
    let mut s = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n");
    for i in 0..n {
        s.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: bench\ndata:\n  key: value-{i}\n"
        ));
    }
    let p = dir.join(format!("configmaps-{n}.yaml"));
    std::fs::write(&p, s).unwrap();
    p
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let kubectl = support::test_bin("kubectl");
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    let files = crd_files();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // 1. The CRD bundle.
    let mut tools: Vec<(&str, Tool)> = vec![
        ("capi-manage apply", Tool::Ours(&ours)),
        ("kubectl apply --server-side", Tool::Kubectl(&kubectl)),
        ("kubectl apply + wait", Tool::KubectlWait(&kubectl)),
    ];
    if let Some(b) = &baseline {
        tools.push(("baseline capi-manage", Tool::Ours(b)));
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); tools.len()];
    for _ in 0..rounds {
        for (i, (_, tool)) in tools.iter().enumerate() {
            times[i].push(measure(&rt, *tool, &files, false).0);
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    println!(
        "apply {} CRD files to a fresh apiserver, median of {rounds} (ms; ratio = other / capi-manage):",
        files.len()
    );
    for ((label, _), m) in tools.iter().zip(&medians) {
        println!(
            "  {label:<30} {:>8.0} ms   ratio {:>5.2}",
            ms(*m),
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }

    // 2. Requests and timeline.
    if std::env::var("BENCH_TIMELINE").as_deref() != Ok("0") {
        println!("requests for the CRD bundle (one traced run each):");
        let (took, stderr) = measure(&rt, Tool::Ours(&ours), &files, true);
        let reqs = our_requests(&stderr);
        timeline("capi-manage apply", &reqs, took, purpose);
        if let Some(b) = &baseline {
            let (took, stderr) = measure(&rt, Tool::Ours(b), &files, true);
            timeline(
                "baseline capi-manage",
                &our_requests(&stderr),
                took,
                purpose,
            );
        }
        for (label, tool) in [
            ("kubectl apply", Tool::Kubectl(&kubectl)),
            ("kubectl apply + wait", Tool::KubectlWait(&kubectl)),
        ] {
            let (took, stderr) = measure(&rt, tool, &files, true);
            let by = kubectl_requests(&stderr);
            println!(
                "  {label}: {} requests {by:?}, process {:.0} ms",
                by.values().sum::<usize>(),
                ms(took)
            );
        }
        if std::env::var_os("BENCH_TIMELINE_ALL").is_some() {
            for r in &reqs {
                println!(
                    "    {:>8.1} {:>7.1} {} {}",
                    r.start_ms, r.took_ms, r.method, r.path
                );
            }
        }
    }

    // 3. Scaling.
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,3000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_SIZES: comma-separated counts")
        })
        .collect();
    if sizes.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    println!(
        "apply N ConfigMaps (+1 Namespace) to a fresh apiserver, median of {rounds} (ms), growth per tenfold of N:"
    );
    println!(
        "{:>6} {:>12} {:>8} {:>12} {:>8} {:>8}",
        "N", "capi-manage", "growth", "kubectl", "growth", "ratio"
    );
    let mut prev: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for n in sizes {
        let file = [configmaps(dir.path(), n)];
        let (mut o, mut k) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            o.push(measure(&rt, Tool::Ours(&ours), &file, false).0);
            k.push(measure(&rt, Tool::Kubectl(&kubectl), &file, false).0);
        }
        let (o, k) = (ms(median(o)), ms(median(k)));
        // Per tenfold: against the next smaller size m, (t(n) / t(m)) ^ (1 / log10(n / m)).
        let smaller = prev.range(..n).next_back().map(|(m, t)| (*m, *t));
        let growth = |now: f64, then: Option<(usize, f64)>| {
            then.map_or("-".to_string(), |(m, t)| {
                let decades = (n as f64 / m as f64).log10();
                format!("{:.1}x", (now / t).powf(1.0 / decades))
            })
        };
        println!(
            "{n:>6} {o:>12.0} {:>8} {k:>12.0} {:>8} {:>8.2}",
            growth(o, smaller.map(|(m, t)| (m, t.0))),
            growth(k, smaller.map(|(m, t)| (m, t.1))),
            k / o
        );
        prev.insert(n, (o, k));
    }
}
