//! Installing the whole vendored component set (Flux, cert-manager, Cluster API core, kubeadm
//! bootstrap and control plane, ORC, CAPO, sealed-secrets) on a fresh control plane until every
//! CRD is Established and every Deployment Available: capi-manage vs `kubectl apply
//! --server-side` followed by `kubectl wait`, in one run.
//!
//! Run: `scripts/test-binaries kubectl kwok kustomize && cargo bench --features test-support
//! --bench components`. `BENCH_ROUNDS` (default 5) runs per tool, medians reported.
//!
//! The component files are the ones `capi-manage vendor` writes from the release assets (the
//! test mirror's, see `tests/support/release_mirror.rs`: Cluster API's and CAPO's built from
//! their release sources by kustomize, ORC's release install.yaml, Flux and sealed-secrets
//! assembled from their upstream files, cert-manager a stand-in). Every measurement gets a fresh
//! kube-apiserver with kube-controller-manager, the scheduler and a kwok node (Deployments
//! become Available there), so no tool sees objects another created.
//!
//! Both tools apply the same objects: every object of every component except the custom
//! resources whose kind a CRD of the set defines (the Certificates and Issuers of the Cluster
//! API, ORC and CAPO files). kubectl resolves every kind before it writes anything, so it
//! refuses those in the same run as their CRDs; and without cert-manager running they would
//! never be issued anyway. capi-manage runs in this process (the library's `apply`, then its
//! waits, from connecting to the kubeconfig on); kubectl as three processes:
//! `apply --server-side --force-conflicts -f <each file>`, `wait --for=condition=Established
//! crd --all`, `wait --for=condition=Available deployment --all -A`.
//!
//! Beside the times, the CPU time kube-apiserver spent during each run (median): validating,
//! storing and establishing the CRDs is most of the work of such an install, the same for both
//! tools, and with the server on a share of this machine's cores it is the floor of either time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use capi_manage::kube::wait::{Condition, WaitOptions, conditions, wait_all};
use capi_manage::kube::{ApplyOptions, Discovery, apply, connect};
use capi_manage::manifest::{Object, parse_file, to_yaml};
use capi_manage::observe::Silent;
use support::release_mirror::{Mirror, release_files, vendor_toml};
use support::{ControlPlane, Options};
use tokio_util::sync::CancellationToken;

/// The vendored component set, one file per component in install order, without the custom
/// resources of the set's own CRDs (see the header); the number of objects and of them left out.
fn component_files(rt: &tokio::runtime::Runtime, dir: &Path) -> (Vec<PathBuf>, usize, usize) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("vendor-manifests")).unwrap();
    std::fs::write(repo.join("vendor-manifests/vendor.toml"), vendor_toml()).unwrap();
    let mirror = Mirror::start(release_files());
    let options = capi_manage::components::VendorOptions {
        trust_mirror_for_new_assets: true,
        mirror: Some(mirror.base.clone()),
        ..Default::default()
    };
    rt.block_on(capi_manage::components::vendor(
        &repo,
        &options,
        &Silent,
        &CancellationToken::new(),
    ))
    .expect("vendor the release files from the mirror");
    let components = capi_manage::components::load(&repo)
        .expect("load the vendored files")
        .components;
    let defined: BTreeSet<(String, String)> = components
        .iter()
        .flat_map(|c| &c.objects)
        .filter(|o| o.kind() == "CustomResourceDefinition")
        .map(|o| {
            let spec = &o.value["spec"];
            (
                spec["group"].as_str().unwrap_or_default().to_string(),
                spec["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let (mut kept, mut left) = (0, 0);
    let mut files = Vec::new();
    for (i, c) in components.iter().enumerate() {
        let objects: Vec<Object> = c
            .objects
            .iter()
            .filter(|o| {
                let gvk = o.gvk();
                let custom = defined.contains(&(gvk.group.clone(), gvk.kind.clone()));
                if custom {
                    left += 1;
                } else {
                    kept += 1;
                }
                !custom
            })
            .cloned()
            .collect();
        let path = dir.join(format!("{i:02}-{}.yaml", c.name));
        std::fs::write(&path, to_yaml(&objects)).unwrap();
        files.push(path);
    }
    (files, kept, left)
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CPU time (user and system) the process `pid` has used so far: kube-apiserver's, to show
/// how much of a run the server's own work is.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are the 12th and 13th, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// kubectl on a fresh control plane: apply, then both waits; the three times and the
/// apiserver's CPU time over them.
fn kubectl(rt: &tokio::runtime::Runtime, kubectl: &Path, files: &[PathBuf]) -> [Duration; 4] {
    let cp = rt.block_on(ControlPlane::start_with(Options::kwok()));
    let cpu = cpu_time(cp.apiserver_pid());
    let base = || {
        let mut c = Command::new(kubectl);
        c.arg("--kubeconfig").arg(cp.kubeconfig_path());
        c
    };
    let start = Instant::now();
    let mut apply = base();
    apply.args(["apply", "--server-side", "--force-conflicts"]);
    for f in files {
        apply.arg("-f").arg(f);
    }
    run(apply);
    let applied = start.elapsed();
    let mut established = base();
    established.args([
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=300s",
    ]);
    run(established);
    let crds = start.elapsed();
    let mut available = base();
    available.args([
        "wait",
        "--for=condition=Available",
        "deployment",
        "--all",
        "-A",
        "--timeout=300s",
    ]);
    run(available);
    let healthy = start.elapsed();
    [applied, crds, healthy, cpu_time(cp.apiserver_pid()) - cpu]
}

/// capi-manage on a fresh control plane: connect, parse, apply, then wait for every CRD and
/// Deployment; the time to applied and to healthy, and the apiserver's CPU time over them.
fn ours(rt: &tokio::runtime::Runtime, files: &[PathBuf]) -> [Duration; 3] {
    let cp = rt.block_on(ControlPlane::start_with(Options::kwok()));
    let cpu = cpu_time(cp.apiserver_pid());
    let cancel = CancellationToken::new();
    rt.block_on(async {
        let start = Instant::now();
        let discovery = Discovery::new(connect(&cp.client_options()).await.unwrap());
        let mut objects = Vec::new();
        for f in files {
            objects.extend(parse_file(f).unwrap());
        }
        apply(
            &discovery,
            &objects,
            &ApplyOptions::default(),
            &Silent,
            &cancel,
        )
        .await
        .unwrap();
        let applied = start.elapsed();
        let gated: Vec<(Object, String, Box<dyn Condition>)> = objects
            .iter()
            .filter_map(|o| {
                let c: Box<dyn Condition> = match o.kind() {
                    "CustomResourceDefinition" => Box::new(conditions::crd_established()),
                    "Deployment" => Box::new(conditions::deployment_available()),
                    _ => return None,
                };
                Some((o.clone(), o.identity(), c))
            })
            .collect();
        let failures = wait_all(
            &discovery,
            &gated,
            WaitOptions::timeout(Duration::from_secs(300)),
            &Silent,
            &cancel,
        )
        .await
        .unwrap();
        assert!(failures.is_empty(), "not healthy: {failures:?}");
        let healthy = start.elapsed();
        [applied, healthy, cpu_time(cp.apiserver_pid()) - cpu]
    })
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let kubectl_bin = support::test_bin("kubectl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (files, kept, left) = component_files(&rt, dir.path());
    let (mut o_apply, mut o_all, mut o_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut k_apply, mut k_crds, mut k_all, mut k_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let [a, b, c] = ours(&rt, &files);
        o_apply.push(a);
        o_all.push(b);
        o_cpu.push(c);
        let [a, b, c, d] = kubectl(&rt, &kubectl_bin, &files);
        k_apply.push(a);
        k_crds.push(b);
        k_all.push(c);
        k_cpu.push(d);
    }
    let (oa, ot, oc) = (median(o_apply), median(o_all), median(o_cpu));
    let (ka, kc, kt, kcpu) = (
        median(k_apply),
        median(k_crds),
        median(k_all),
        median(k_cpu),
    );
    println!(
        "install the vendored component set ({} files, {kept} objects; {left} custom resources of its own CRDs left out) on a fresh control plane with a kwok node, median of {rounds} (seconds):",
        files.len()
    );
    println!(
        "  {:<52} {:>8} {:>8} {:>14}",
        "", "applied", "healthy", "apiserver CPU"
    );
    println!(
        "  {:<52} {oa:>8.2} {ot:>8.2} {oc:>14.2}",
        "capi-manage (apply, then its waits)"
    );
    println!(
        "  {:<52} {ka:>8.2} {kt:>8.2} {kcpu:>14.2}   (CRDs Established at {kc:.2})",
        "kubectl apply --server-side + wait crd + wait deploy"
    );
    println!(
        "  ratio kubectl / capi-manage: healthy {:.2}x, apply alone {:.2}x",
        kt / ot,
        ka / oa
    );
}
