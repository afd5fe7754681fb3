//! The OCI distribution API over reqwest: authentication (Bearer tokens, Basic), manifests and
//! blobs, with retries and cancellation.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, Response, StatusCode, header};
use tokio_util::sync::CancellationToken;

use super::Error;
use super::reference::Reference;

/// Tries per request (the first and three retries).
pub(crate) const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The largest manifest accepted.
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A user name and password for a registry: sent as Basic auth, or to its token service.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How registries are reached.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Credentials by registry host (`host[:port]`).
    pub credentials: BTreeMap<String, Credentials>,
    /// Registry hosts spoken to over plain HTTP. Loopback hosts (127.0.0.0/8, `localhost`,
    /// `[::1]`) always are, as Docker treats them.
    pub plain_http: Vec<String>,
    /// Extra CA certificates (PEM files) trusted for HTTPS registries.
    pub ca_files: Vec<PathBuf>,
    /// Longest wait for a connection (default 30s).
    pub connect_timeout: Option<Duration>,
    /// Longest pause while reading an answer (default 5m).
    pub read_timeout: Option<Duration>,
}

/// What a request is for: the token scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// A request body that can be sent again on retry.
pub(crate) enum Body {
    None,
    Bytes(Arc<Vec<u8>>),
}

/// A registry client, shared by one operation.
pub(crate) struct Client {
    http: reqwest::Client,
    options: ClientOptions,
    /// Authorization header values by `host repository access`.
    auth: Mutex<HashMap<String, String>>,
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://x/token",service="reg",scope="repository:a:pull"`.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (val, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, val);
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Client {
    pub fn new(options: &ClientOptions) -> Result<Client, Error> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Client { source: e };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for file in &options.ca_files {
            let pem = std::fs::read(file).map_err(Error::io(file))?;
            let mut found = false;
            use rustls::pki_types::pem::PemObject as _;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| err(Box::new(e)))?;
                roots.add(cert).map_err(|e| err(Box::new(e)))?;
                found = true;
            }
            if !found {
                return Err(Error::Io {
                    path: file.clone(),
                    source: std::io::Error::other("no PEM certificate in the file"),
                });
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("capi-manage/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout.unwrap_or(Duration::from_secs(30)))
            .read_timeout(options.read_timeout.unwrap_or(Duration::from_secs(300)))
            .build()
            .map_err(|e| err(Box::new(e)))?;
        Ok(Client {
            http,
            options: options.clone(),
            auth: Mutex::new(HashMap::new()),
        })
    }

    /// `scheme://host/v2/<repository>/<rest>`.
    pub fn url(&self, r: &Reference, rest: &str) -> String {
        let host = r.api_host();
        let scheme = if is_loopback(host) || self.options.plain_http.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{}/{rest}", r.repository)
    }

    /// Resolves `location` (a Location header) against `base`.
    pub fn resolve(base: &str, location: &str) -> String {
        match reqwest::Url::parse(base).and_then(|b| b.join(location)) {
            Ok(u) => u.to_string(),
            Err(_) => location.to_string(),
        }
    }

    fn auth_key(r: &Reference, access: Access) -> String {
        format!("{} {} {}", r.api_host(), r.repository, access.actions())
    }

    /// Sends a request, authenticating on a 401 challenge and retrying transport failures and
    /// 408/429/5xx answers (`retry`: the request is idempotent). Returns the last answer, whatever
    /// its status, except 401 after authenticating.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        r: &Reference,
        access: Access,
        headers: &[(&str, String)],
        body: &Body,
        retry: bool,
        cancel: &CancellationToken,
    ) -> Result<Response, Error> {
        let key = Self::auth_key(r, access);
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let mut req = self.http.request(method.clone(), url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let auth = self.auth.lock().expect("auth cache").get(&key).cloned();
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            if let Body::Bytes(b) = body {
                req = req.body(b.as_ref().clone());
            }
            let sent = tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                r = req.send() => r,
            };
            let failed = match sent {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !authenticated => {
                    let challenge = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    self.authenticate(r, access, challenge.as_deref(), cancel)
                        .await?;
                    authenticated = true;
                    attempt -= 1;
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(Error::Unauthorized {
                        registry: r.registry.clone(),
                        repository: r.repository.clone(),
                        problem: format!("{method} {url} answered 401 with the credentials sent"),
                    });
                }
                Ok(resp)
                    if retry
                        && attempt < ATTEMPTS
                        && (resp.status().is_server_error()
                            || resp.status() == StatusCode::TOO_MANY_REQUESTS
                            || resp.status() == StatusCode::REQUEST_TIMEOUT) =>
                {
                    None
                }
                Ok(resp) => return Ok(resp),
                Err(e) if retry && attempt < ATTEMPTS => Some(e),
                Err(source) => {
                    return Err(Error::Request {
                        method: method.to_string(),
                        url: url.to_string(),
                        attempts: attempt,
                        source,
                    });
                }
            };
            drop(failed);
            let wait = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Answers a challenge: fetches a token from a Bearer realm, or uses Basic credentials.
    async fn authenticate(
        &self,
        r: &Reference,
        access: Access,
        challenge: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let refused = |problem: String| Error::Unauthorized {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            problem,
        };
        let challenge = challenge
            .and_then(parse_challenge)
            .ok_or_else(|| refused("401 without a usable WWW-Authenticate challenge".into()))?;
        let credentials = self
            .options
            .credentials
            .get(&r.registry)
            .or_else(|| self.options.credentials.get(r.api_host()));
        let value = match challenge.scheme.as_str() {
            "basic" => {
                let c = credentials.ok_or_else(|| {
                    refused("the registry asks for a user name and password; none given".into())
                })?;
                basic(c)
            }
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .ok_or_else(|| refused("a Bearer challenge without a realm".into()))?;
                let mut url = reqwest::Url::parse(realm)
                    .map_err(|e| refused(format!("token realm `{realm}` is not a URL ({e})")))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = challenge.params.get("service") {
                        q.append_pair("service", s);
                    }
                    q.append_pair(
                        "scope",
                        &format!("repository:{}:{}", r.repository, access.actions()),
                    );
                }
                let mut req = self.http.get(url.clone());
                if let Some(c) = credentials {
                    req = req.header(header::AUTHORIZATION, basic(c));
                }
                let resp = tokio::select! {
                    _ = cancel.cancelled() => return Err(Error::Cancelled),
                    r = req.send() => r,
                }
                .map_err(|source| Error::Request {
                    method: "GET".into(),
                    url: url.to_string(),
                    attempts: 1,
                    source,
                })?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(refused(format!(
                        "the token service {realm} answered {}",
                        status.as_u16()
                    )));
                }
                let body = resp.bytes().await.map_err(|source| Error::Request {
                    method: "GET".into(),
                    url: url.to_string(),
                    attempts: 1,
                    source,
                })?;
                let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    refused(format!("the token service {realm} answered no JSON ({e})"))
                })?;
                let token = doc["token"]
                    .as_str()
                    .or_else(|| doc["access_token"].as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        refused(format!("the token service {realm} answered no token"))
                    })?;
                format!("Bearer {token}")
            }
            other => return Err(refused(format!("unsupported auth scheme `{other}`"))),
        };
        self.auth
            .lock()
            .expect("auth cache")
            .insert(Self::auth_key(r, access), value);
        Ok(())
    }
}

fn basic(c: &Credentials) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

/// An error for an unexpected answer, with the start of its body.
pub(crate) async fn status_error(method: &str, url: &str, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(300).collect();
    Error::Status {
        method: method.to_string(),
        url: url.to_string(),
        status,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("registry.k8s.io"));
    }
}
