//! Render a kustomization folder and seal a Secret, offline: no cluster, no network, no async
//! runtime. Needs only the `render` and `seal` features:
//!
//! ```toml
//! capi-manage = { version = "0.1", default-features = false, features = ["render", "seal"] }
//! ```
//!
//! Usage: `cargo run --example offline -- [DIR [SECRET.yaml [CERT.pem]]]`
//! (defaults: `clusters/example`, its `credentials.yaml`, and no certificate).
//!
//! The certificate is the sealed-secrets controller's (`kubeseal --fetch-cert`, or
//! `capi_manage::seal::fetch_certificate` with the `kube` feature). Without one, this example
//! makes a throwaway self-signed certificate (with `rcgen`, a dev-dependency of this crate, so
//! only examples and tests have it): the sealing runs the same way, but no controller holds the
//! private key, so the SealedSecret it prints can never be opened. Do not commit it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use capi_manage::{render, seal};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let dir = args
        .next()
        .unwrap_or_else(|| PathBuf::from("clusters/example"));
    let secret = args.next().unwrap_or_else(|| dir.join("credentials.yaml"));
    let cert = args.next();
    match run(&dir, &secret, cert.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors are one line; their causes follow as sources.
            let mut line = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                line.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, secret: &Path, cert: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    // 1. Render: the same objects `kustomize build DIR` prints, in kustomize's order.
    let objects = render::render(dir)?;
    println!("# {} objects from {}", objects.len(), dir.display());
    for o in &objects {
        println!("#   {o}");
    }

    // 2. Seal: every Secret in the file, with the controller's public key.
    let (pem, from) = match cert {
        Some(path) => (std::fs::read(path)?, path.display().to_string()),
        None => {
            eprintln!("no certificate given: sealing with a throwaway one (nothing can unseal it)");
            (
                throwaway_certificate().into_bytes(),
                "a throwaway certificate".into(),
            )
        }
    };
    let key = seal::SealingKey::from_pem(&pem, &from)?;
    let text = std::fs::read_to_string(secret)?;
    for s in seal::Secret::parse(&text, Some(secret))? {
        let sealed = seal::seal(&s, &key, &seal::SealOptions::default())?;
        print!("{}", seal::to_yaml(&sealed));
    }
    Ok(())
}

/// A self-signed RSA certificate as sealed-secrets makes one (2048 bits); its private key is
/// dropped here.
fn throwaway_certificate() -> String {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 2048)
        .expect("an RSA key from the OS random source");
    let pem = key
        .to_pkcs8_pem(Default::default())
        .expect("PKCS#8 encoding");
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .expect("the key, for rcgen");
    rcgen::CertificateParams::new(vec!["sealed-secret".into()])
        .expect("certificate parameters")
        .self_signed(&pair)
        .expect("a self-signed certificate")
        .pem()
}
