//! The CNCF distribution registry (built by `scripts/test-binaries registry`) on 127.0.0.1,
//! with filesystem storage and, optionally, token auth: a small token service here issues
//! ES256 JWTs carrying their certificate in `x5c`, which the registry trusts through its
//! `rootcertbundle`; the token service takes Basic credentials.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Process;

/// The user and password the token service accepts.
pub const USER: &str = "tester";
/// See [`USER`].
pub const PASSWORD: &str = "s3cret-for-tests";
const SERVICE: &str = "capi-manage-test-registry";
const ISSUER: &str = "capi-manage-test-token-service";

/// A running registry.
pub struct Registry {
    _process: Process,
    _token: Option<tokio::task::JoinHandle<()>>,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The storage root (`docker/registry/v2/...` below it).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How the registry asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Bearer tokens from the token service here, which takes Basic credentials.
    Token,
    /// Basic auth against an htpasswd file (bcrypt) holding [`USER`] and [`PASSWORD`].
    Htpasswd,
}

impl Registry {
    /// Starts the registry; with `token_auth`, behind the token service.
    pub async fn start(token_auth: bool) -> Registry {
        Registry::start_with(if token_auth { Auth::Token } else { Auth::None }).await
    }

    /// Starts the registry with `auth`.
    pub async fn start_with(mode: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = super::free_port();
        let mut auth = String::new();
        let mut token = None;
        if mode == Auth::Htpasswd {
            let file = dir.path().join("htpasswd");
            let hash = bcrypt::hash(PASSWORD, 5).unwrap();
            std::fs::write(&file, format!("{USER}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: capi-manage-test\n    path: {}\n",
                file.display()
            );
        }
        if mode == Auth::Token {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["token-signer".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let bundle = dir.path().join("token-ca.pem");
            std::fs::write(&bundle, cert.pem()).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let realm = format!("http://{}/token", listener.local_addr().unwrap());
            let signer = std::sync::Arc::new(
                ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &key.serialize_der(),
                    &ring::rand::SystemRandom::new(),
                )
                .unwrap(),
            );
            let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
            token = Some(tokio::spawn(async move {
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        return;
                    };
                    let (signer, x5c) = (signer.clone(), x5c.clone());
                    tokio::spawn(async move { serve_token(conn, &signer, &x5c).await });
                }
            }));
            auth = format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                bundle.display()
            );
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(super::test_bin("registry"));
        cmd.arg("serve").arg(&config);
        let mut process = Process::spawn("registry", cmd, &dir.path().join("registry.log"));
        let host = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            process.assert_running();
            if std::net::TcpStream::connect(&host).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Registry {
            _process: process,
            _token: token,
            host,
            storage,
            _dir: dir,
        }
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// Answers one token request: Basic credentials of [`USER`] get a token for the scope asked.
async fn serve_token(
    mut conn: tokio::net::TcpStream,
    signer: &ring::signature::EcdsaKeyPair,
    x5c: &str,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let target = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
    let scope = url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string());
    let expected = format!(
        "basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let authorised = text.lines().any(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("authorization: ")
            .is_some_and(|v| v.trim() == expected.to_ascii_lowercase())
    });
    let (status, body) = if !authorised {
        ("401 Unauthorized", json!({"details": "bad credentials"}))
    } else {
        let access: Vec<serde_json::Value> = scope
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (t, n, a) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [x5c]});
        let claims = json!({
            "iss": ISSUER, "sub": USER, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_id()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = signer
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
        ("200 OK", json!({"token": token, "expires_in": 300}))
    };
    let body = body.to_string();
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
}

fn rand_id() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", super::helm_repo::sha256_hex(bytes))
}

/// A blob written into an OCI layout folder.
fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.strip_prefix("sha256:").unwrap()), bytes).unwrap();
    d
}

/// An image made by `docker import` of `files`, exported from the engine (`docker save`) and
/// written into the OCI layout at `layout` as an image manifest (config and gzipped layer, the
/// config's architecture set to `arch`). Returns the manifest's descriptor.
pub async fn imported_image(
    docker: &Docker,
    layout: &Path,
    files: &[(&str, &[u8])],
    arch: &str,
) -> serde_json::Value {
    let src = tempfile::tempdir().unwrap();
    for (path, body) in files {
        let p = src.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let tar = std::process::Command::new("tar")
        .args(["-C", src.path().to_str().unwrap(), "-c", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let tag = format!("t{}", rand_id());
    let repo = "capi-manage.test/images";
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(&tag)
        .build();
    let mut stream = docker.create_image(
        Some(options),
        Some(bollard::body_full(tar.stdout.into())),
        None,
    );
    while let Some(item) = stream.next().await {
        item.expect("docker import");
    }
    let image = format!("{repo}:{tag}");
    let mut saved = Vec::new();
    let mut stream = docker.export_image(&image);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.expect("docker save"));
    }
    let _ = docker
        .remove_image(
            &image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    let out = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(&saved[..]);
    archive.unpack(out.path()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join(manifest[0]["Config"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    config["architecture"] = json!(arch);
    let config = serde_json::to_vec(&config).unwrap();
    let mut layers = Vec::new();
    for l in manifest[0]["Layers"].as_array().unwrap() {
        let raw = std::fs::read(out.path().join(l.as_str().unwrap())).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": put_blob(layout, &gz),
            "size": gz.len(),
        }));
    }
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put_blob(layout, &config),
            "size": config.len(),
        },
        "layers": layers,
    }))
    .unwrap();
    json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": put_blob(layout, &body),
        "size": body.len(),
        "platform": {"architecture": arch, "os": "linux"},
    })
}

/// An index of `manifests` (descriptors with platforms), written as a blob; its descriptor.
pub fn index_of(layout: &Path, manifests: &[serde_json::Value]) -> serde_json::Value {
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": put_blob(layout, &body),
        "size": body.len(),
    })
}

/// Writes `oci-layout` and `index.json` naming `images` (name, descriptor).
pub fn write_layout_index(layout: &Path, images: &[(&str, serde_json::Value)]) {
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|(name, d)| {
            let mut d = d.clone();
            d.as_object_mut().unwrap().remove("platform");
            d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
            d
        })
        .collect();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
}
