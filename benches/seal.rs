//! Sealing 100 Secrets, one whole process each, with `capi-manage seal --cert` and with the real
//! `kubeseal --cert` in the same run (both to standard output; ours with -w, which syncs to
//! disk, timed too), and all 100 in one `capi-manage seal --output-dir` run
//! (which kubeseal cannot do); prints the medians of BENCH_ROUNDS (default 5) rounds and the
//! ratios. The floor of a process, `--version` of each tool, is timed in the same rounds.
//!
//!     cargo bench --bench seal            (needs `scripts/test-binaries kubeseal`)
//!
//! Env: `BENCH_BIN=<capi-manage binary>` times that binary instead of the bench's own build
//! (e.g. `scripts/build-static`'s, the one that ships); `BENCH_BASELINE=<capi-manage binary>`
//! times another build as well, one process per Secret, in the same rounds (e.g. the previous
//! commit's).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SECRETS: usize = 100;

fn kubeseal() -> PathBuf {
    common::test_bin("kubeseal")
}

/// A certificate for a 4096-bit RSA key, the size the controller generates.
fn certificate(dir: &Path) -> PathBuf {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 4096)
        .expect("RSA key");
    let pem = key.to_pkcs8_pem(Default::default()).expect("PKCS#8");
    let kp = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .expect("key pair");
    let cert = rcgen::CertificateParams::new(vec!["sealed-secret".into()])
        .expect("params")
        .self_signed(&kp)
        .expect("certificate");
    let path = dir.join("cert.pem");
    std::fs::write(&path, cert.pem()).expect("write cert");
    path
}

fn secret(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: bench\n  labels: {{app: bench}}\ntype: Opaque\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth:\n          application_credential_id: id-{i}\n          application_credential_secret: secret-value-{i}\n  cacert: |\n    -----BEGIN CERTIFICATE-----\n    {}\n    -----END CERTIFICATE-----\n",
        "A".repeat(1200)
    )
}

fn time(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("spawn");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let ours = std::env::var_os("BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_capi-manage")));
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    let theirs = kubeseal();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = certificate(dir.path());
    let inputs_dir = dir.path().join("secrets");
    std::fs::create_dir(&inputs_dir).expect("secrets folder");
    let inputs: Vec<PathBuf> = (0..SECRETS)
        .map(|i| {
            let p = inputs_dir.join(format!("secret-{i:03}.yaml"));
            std::fs::write(&p, secret(i)).expect("write secret");
            p
        })
        .collect();
    let out_dir = dir.path().join("sealed");
    std::fs::create_dir(&out_dir).expect("output folder");

    // Both print to standard output, redirected to a file: `capi-manage seal -w` also syncs the
    // file and its folder to disk before renaming it into place, which kubeseal's -w does not
    // (timed separately below).
    let to_file = |cmd: &mut Command, name: String| {
        let out = std::fs::File::create(dir.path().join(name)).expect("output file");
        cmd.stdout(out);
    };
    let one = |bin: &Path, input: &Path, i: usize| {
        let mut a = Command::new(bin);
        a.arg("seal").arg(input).arg("--cert").arg(&cert).arg("-q");
        to_file(&mut a, format!("ours-{i}.yaml"));
        a
    };
    let ours_one = |input: &Path, i: usize| one(&ours, input, i);
    let version = |bin: &Path| {
        let mut a = Command::new(bin);
        a.arg("--version").stdout(std::process::Stdio::null());
        a
    };
    let ours_durable = |input: &Path, i: usize| {
        let mut a = Command::new(&ours);
        a.arg("seal")
            .arg(input)
            .arg("--cert")
            .arg(&cert)
            .arg("-q")
            .arg("-w")
            .arg(dir.path().join(format!("durable-{i}.yaml")));
        a
    };
    let theirs_one = |input: &Path, i: usize| {
        let mut b = Command::new(&theirs);
        b.arg("--cert").arg(&cert).arg("-f").arg(input);
        to_file(&mut b, format!("theirs-{i}.yaml"));
        b
    };
    let ours_all_stdout = || {
        let mut a = Command::new(&ours);
        a.arg("seal")
            .arg("--cert")
            .arg(&cert)
            .arg("-q")
            .arg(&inputs_dir);
        to_file(&mut a, "all.yaml".into());
        a
    };
    let ours_all = || {
        let mut a = Command::new(&ours);
        a.arg("seal")
            .arg("--cert")
            .arg(&cert)
            .arg("-q")
            .arg("--output-dir")
            .arg(&out_dir)
            .arg(&inputs_dir);
        a
    };

    // One warm-up run each (page cache, dynamic loader), then interleaved runs so both tools
    // see the same machine load.
    time(ours_one(&inputs[0], 0));
    time(theirs_one(&inputs[0], 0));
    time(ours_all());
    let (mut t_ours, mut t_theirs, mut t_all) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_durable, mut t_stream) = (Vec::new(), Vec::new());
    let (mut t_base, mut t_floor_ours, mut t_floor_theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (mut a, mut b, mut c) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let (mut d, mut e, mut f) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for (i, input) in inputs.iter().enumerate() {
            a += time(ours_one(input, i));
            b += time(theirs_one(input, i));
            c += time(ours_durable(input, i));
            if let Some(base) = &baseline {
                d += time(one(base, input, i));
            }
            e += time(version(&ours));
            f += time(version(&theirs));
        }
        t_ours.push(a);
        t_theirs.push(b);
        t_durable.push(c);
        t_base.push(d);
        t_floor_ours.push(e);
        t_floor_theirs.push(f);
        t_all.push(time(ours_all()));
        t_stream.push(time(ours_all_stdout()));
    }
    // The one-run output is what the per-file runs wrote.
    for i in [0, SECRETS - 1] {
        let one = std::fs::read_to_string(dir.path().join(format!("ours-{i}.yaml"))).unwrap();
        let many = std::fs::read_to_string(out_dir.join(format!("secret-{i:03}.yaml"))).unwrap();
        let layout = |s: &str| {
            s.lines()
                .map(|l| l.split_once(": ").map_or(l, |(k, _)| k).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(layout(&one), layout(&many), "secret {i}: same layout");
    }
    let (ours_m, theirs_m, all_m) = (median(t_ours), median(t_theirs), median(t_all));
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / SECRETS as f64;
    println!("seal {SECRETS} Secrets, median of {rounds} rounds:");
    println!(
        "  one process each: capi-manage {:.3}s ({:.2} ms/secret), kubeseal {:.3}s ({:.2} ms/secret)",
        ours_m.as_secs_f64(),
        per(ours_m),
        theirs_m.as_secs_f64(),
        per(theirs_m)
    );
    println!(
        "  ratio kubeseal/capi-manage: {:.2}x (above 1: capi-manage is faster)",
        theirs_m.as_secs_f64() / ours_m.as_secs_f64()
    );
    if baseline.is_some() {
        let base_m = median(t_base);
        println!(
            "  baseline capi-manage (BENCH_BASELINE), one process each: {:.3}s ({:.2} ms/secret), {:.2}x kubeseal; this build is {:.2}x the baseline",
            base_m.as_secs_f64(),
            per(base_m),
            theirs_m.as_secs_f64() / base_m.as_secs_f64(),
            base_m.as_secs_f64() / ours_m.as_secs_f64()
        );
    }
    let (floor_ours, floor_theirs) = (median(t_floor_ours), median(t_floor_theirs));
    println!(
        "  floor, --version of each ({SECRETS} processes): capi-manage {:.2} ms/process, kubeseal {:.2} ms/process",
        per(floor_ours),
        per(floor_theirs)
    );
    let durable_m = median(t_durable);
    println!(
        "  capi-manage seal -w (file and folder synced to disk): {:.3}s ({:.2} ms/secret), {:.2}x kubeseal",
        durable_m.as_secs_f64(),
        per(durable_m),
        theirs_m.as_secs_f64() / durable_m.as_secs_f64()
    );
    let stream_m = median(t_stream);
    println!(
        "  one process for all, one stream (capi-manage seal FOLDER > file): {:.3}s ({:.3} ms/secret), {:.1}x kubeseal's one-process-each",
        stream_m.as_secs_f64(),
        per(stream_m),
        theirs_m.as_secs_f64() / stream_m.as_secs_f64()
    );
    println!(
        "  one process for all (capi-manage seal --output-dir DIR FOLDER; kubeseal has no such mode): {:.3}s ({:.3} ms/secret), {:.1}x kubeseal's one-process-each",
        all_m.as_secs_f64(),
        per(all_m),
        theirs_m.as_secs_f64() / all_m.as_secs_f64()
    );
}
