//! Sealing 100 Secrets, one whole process each, with `capi-manage seal --cert` and with the real
//! `kubeseal --cert` in the same run; prints both times and their ratio.
//!
//!     cargo bench --bench seal            (needs `scripts/test-binaries kubeseal`)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SECRETS: usize = 100;

fn kubeseal() -> PathBuf {
    let dir = std::env::var_os("CAPI_MANAGE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/capi-manage/test-bin")
        });
    let path = dir.join("kubeseal");
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/test-binaries kubeseal`",
        path.display()
    );
    path
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

fn main() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let theirs = kubeseal();
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = certificate(dir.path());
    let inputs: Vec<PathBuf> = (0..SECRETS)
        .map(|i| {
            let p = dir.path().join(format!("secret-{i}.yaml"));
            std::fs::write(&p, secret(i)).expect("write secret");
            p
        })
        .collect();

    // One warm-up run each (page cache, dynamic loader), then interleaved runs so both tools
    // see the same machine load.
    let mut ours_total = Duration::ZERO;
    let mut theirs_total = Duration::ZERO;
    for (i, input) in std::iter::once(&inputs[0]).chain(&inputs).enumerate() {
        let mut a = Command::new(&ours);
        a.arg("seal")
            .arg(input)
            .arg("--cert")
            .arg(&cert)
            .arg("-o")
            .arg(dir.path().join(format!("ours-{i}.yaml")));
        let mut b = Command::new(&theirs);
        b.arg("--cert")
            .arg(&cert)
            .arg("-f")
            .arg(input)
            .arg("-w")
            .arg(dir.path().join(format!("theirs-{i}.yaml")));
        let (ta, tb) = (time(a), time(b));
        if i > 0 {
            ours_total += ta;
            theirs_total += tb;
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / SECRETS as f64;
    println!(
        "seal {SECRETS} Secrets, one process each: capi-manage {:.2}s ({:.1} ms/secret), kubeseal {:.2}s ({:.1} ms/secret)",
        ours_total.as_secs_f64(),
        per(ours_total),
        theirs_total.as_secs_f64(),
        per(theirs_total)
    );
    println!(
        "ratio kubeseal/capi-manage: {:.2}x (above 1: capi-manage is faster)",
        theirs_total.as_secs_f64() / ours_total.as_secs_f64()
    );
}
