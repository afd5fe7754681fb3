//! `capi-manage render example` against `kustomize build clusters/example`, both as whole
//! processes (start-up included, as a user runs them), interleaved in one run. Prints the
//! median of each and the ratio. Needs `scripts/test-binaries kustomize`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn kustomize() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("CAPI_MANAGE_TEST_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let out = Command::new(root.join("scripts/test-binaries"))
                .arg("--print-dir")
                .output()
                .expect("run scripts/test-binaries --print-dir");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    let bin = dir.join("kustomize");
    assert!(
        bin.is_file(),
        "kustomize is missing at {}: run `scripts/test-binaries kustomize`",
        bin.display()
    );
    bin
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let theirs = kustomize();
    let dir = root.join("clusters/example");
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // Same output first: a fast wrong answer is no answer.
    let a = Command::new(&ours)
        .arg("render")
        .arg(&dir)
        .output()
        .unwrap();
    let b = Command::new(&theirs)
        .arg("build")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(a.status.success() && b.status.success());
    let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        t_ours.push(time(Command::new(&ours).arg("render").arg(&dir)));
        t_theirs.push(time(Command::new(&theirs).arg("build").arg(&dir)));
    }
    let (m_ours, m_theirs) = (median(t_ours), median(t_theirs));
    println!("render clusters/example, median of {rounds} runs each (whole process):");
    println!(
        "  capi-manage render   {:>8.2} ms",
        m_ours.as_secs_f64() * 1e3
    );
    println!(
        "  kustomize build      {:>8.2} ms",
        m_theirs.as_secs_f64() * 1e3
    );
    println!(
        "  ratio kustomize / capi-manage = {:.2}x",
        m_theirs.as_secs_f64() / m_ours.as_secs_f64()
    );
}
