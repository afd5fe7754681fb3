//! How render grows with the number of resources: an overlay (namespace, namePrefix, labels,
//! images, one JSON patch on every Deployment) over a base of N generated resources, half
//! Deployments and half the ConfigMaps they name (so name references are rewritten too), rendered by
//! `capi-manage render` and `kustomize build` as whole processes, interleaved in one run.
//! Prints the median of each per size, their ratio, and each tool's growth factor per
//! tenfold increase (linear growth: about 10x).
//!
//!     cargo bench --bench render_scale        (needs `scripts/test-binaries kustomize`)
//!
//! BENCH_ROUNDS (default 5) sets the runs per size and tool; BENCH_SIZES (default
//! `10,100,1000,3000`) the sizes N, in resources.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn kustomize() -> PathBuf {
    common::test_bin("kustomize")
}

/// base/ with `n` resources (n/2 Deployments and their ConfigMaps), overlay/ over it;
/// returns overlay/.
fn write_tree(root: &Path, n: usize) -> PathBuf {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&overlay).unwrap();
    let mut docs = String::new();
    for i in 0..n / 2 {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\ndata:\n  index: \"{i}\"\n\
             ---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels:\n    app: app-{i}\n\
             spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n\
             \x20   spec:\n      containers:\n      - name: main\n        image: registry.example.com/app:1.0\n        envFrom:\n        - configMapRef:\n            name: settings-{i}\n\
             \x20       volumeMounts:\n        - name: config\n          mountPath: /etc/app\n      volumes:\n      - name: config\n        configMap:\n          name: settings-{i}\n"
        ));
    }
    std::fs::write(base.join("objects.yaml"), docs).unwrap();
    std::fs::write(
        base.join("kustomization.yaml"),
        "resources:\n- objects.yaml\n",
    )
    .unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n- ../base\nnamespace: scale\nnamePrefix: prod-\nlabels:\n- pairs:\n    team: platform\n  includeSelectors: false\n\
         images:\n- name: registry.example.com/app\n  newName: mirror.example.com/app\n  newTag: \"2.0\"\n\
         patches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /spec/template/metadata/annotations\n      value: {patched: \"yes\"}\n",
    )
    .unwrap();
    overlay
}

/// The CPU time (user and system) of this process's finished children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Runs `cmd`: its wall time, its CPU time and its output. CPU time does not count the time a
/// process waits for a core, so it stays comparable on a busy machine.
fn run(cmd: &mut Command) -> (Duration, Duration, Vec<u8>) {
    let cpu = children_cpu();
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let took = start.elapsed();
    let cpu = children_cpu() - cpu;
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, cpu, out.stdout)
}

fn parse(yaml: &[u8]) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(yaml).expect("UTF-8 output");
    capi_manage::manifest::parse_str(text, None)
        .expect("valid YAML output")
        .into_iter()
        .map(|o| o.value)
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let theirs = kustomize();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,3000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_SIZES: numbers"))
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    println!(
        "render an overlay over N resources (N/2 Deployments, N/2 ConfigMaps), median of {rounds} runs each (whole process):"
    );
    println!(
        "{:>6} {:>14} {:>16} {:>8}   {:>15} {:>17} {:>8}",
        "N", "capi-manage ms", "kustomize ms", "ratio", "capi-manage CPU", "kustomize CPU", "ratio"
    );
    let mut rows: Vec<(usize, f64, f64)> = Vec::new();
    let mut cpu_rows: Vec<(usize, f64, f64)> = Vec::new();
    for &n in &sizes {
        let dir = write_tree(&tmp.path().join(format!("n{n}")), n);
        let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
        let (mut c_ours, mut c_theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, ca, out_a) = run(Command::new(&ours).arg("render").arg(&dir));
            let (b, cb, out_b) = run(Command::new(&theirs).arg("build").arg(&dir));
            c_ours.push(ca);
            c_theirs.push(cb);
            // The same objects, in the same order (kustomize sorts keys and quotes differently):
            // a fast wrong answer is no answer.
            if round == 0 && parse(&out_a) != parse(&out_b) {
                let dir = dir.parent().unwrap();
                std::fs::write(dir.join("capi-manage.yaml"), &out_a).unwrap();
                std::fs::write(dir.join("kustomize.yaml"), &out_b).unwrap();
                panic!(
                    "N={n}: capi-manage's output differs from kustomize's (both kept in {})",
                    tmp.keep().display()
                );
            }
            t_ours.push(a);
            t_theirs.push(b);
        }
        let (a, b) = (
            median(t_ours).as_secs_f64() * 1e3,
            median(t_theirs).as_secs_f64() * 1e3,
        );
        let (ca, cb) = (
            median(c_ours).as_secs_f64() * 1e3,
            median(c_theirs).as_secs_f64() * 1e3,
        );
        println!(
            "{n:>6} {a:>14.2} {b:>16.2} {:>7.2}x   {ca:>15.2} {cb:>17.2} {:>7.2}x",
            b / a,
            cb / ca
        );
        rows.push((n, a, b));
        cpu_rows.push((n, ca, cb));
    }
    growth("wall", &rows);
    growth("CPU", &cpu_rows);
}

/// Each tool's growth factor per tenfold increase of N.
fn growth(what: &str, rows: &[(usize, f64, f64)]) {
    println!("growth of {what} time per tenfold increase of N (linear: about 10x):");
    for w in rows.windows(2) {
        let ((n0, a0, b0), (n1, a1, b1)) = (w[0], w[1]);
        let decades = (n1 as f64 / n0 as f64).log10();
        if decades <= 0.0 {
            continue;
        }
        println!(
            "  N {n0} -> {n1}: capi-manage {:.1}x, kustomize {:.1}x",
            (a1 / a0).powf(1.0 / decades),
            (b1 / b0).powf(1.0 / decades)
        );
    }
}
