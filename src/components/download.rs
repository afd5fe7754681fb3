//! The thin I/O layer: HTTP(S) GET with retries, progress and cancellation.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, ObserverExt};

/// Tries per download (the first and three retries).
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Progress is reported at most once per this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// `<mirror>/<host[:port]>/<path>`: where a mirror serves an upstream URL (query dropped).
pub fn mirror_url(mirror: &str, url: &str) -> String {
    let mirror = mirror.trim_end_matches('/');
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let host = match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            format!("{mirror}/{host}{}", u.path())
        }
        Err(_) => format!("{mirror}/{url}"),
    }
}

pub(crate) enum Failure {
    /// The server answered with a status that is not success (after retries for 5xx).
    Status(u16),
    /// The request or the body failed (after retries).
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// The body is larger than the caller allows.
    TooLarge {
        limit: u64,
    },
    Cancelled,
}

pub(crate) struct Downloader {
    client: reqwest::Client,
}

impl Downloader {
    pub fn new(https: bool) -> Result<Downloader, Box<dyn std::error::Error + Send + Sync>> {
        let mut roots = rustls::RootCertStore::empty();
        if https {
            // Reading the system store costs tens of milliseconds: only when needed.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("capi-manage/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Downloader { client })
    }

    /// GETs `url`, retrying transport errors and 408/429/5xx answers with backoff.
    pub async fn get(
        &self,
        url: &str,
        what: &str,
        limit: u64,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, Failure> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                r = self.once(url, what, limit, observer) => r,
            };
            let retry = match &result {
                Ok(_) => false,
                Err(Failure::Status(s)) => *s == 408 || *s == 429 || *s >= 500,
                Err(Failure::Transport(_)) => true,
                Err(Failure::Cancelled) | Err(Failure::TooLarge { .. }) => false,
            };
            if !retry || attempt >= ATTEMPTS {
                return result;
            }
            let why = match &result {
                Err(Failure::Status(s)) => format!("HTTP {s}"),
                Err(Failure::Transport(e)) => e.to_string(),
                _ => String::new(),
            };
            observer.warning(format!(
                "{what}: {why}; retrying in {}ms (attempt {} of {ATTEMPTS})",
                backoff.as_millis(),
                attempt + 1
            ));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn once(
        &self,
        url: &str,
        what: &str,
        limit: u64,
        observer: &dyn Observer,
    ) -> Result<Vec<u8>, Failure> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| Failure::Transport(Box::new(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let total = response.content_length();
        if total.is_some_and(|t| t > limit) {
            return Err(Failure::TooLarge { limit });
        }
        let mut body = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
        let mut reported = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Transport(Box::new(e)))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Failure::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
            let done = body.len() as u64;
            if done - reported >= PROGRESS_STEP && Some(done) != total {
                observer.progress(what, done, total);
                reported = done;
            }
        }
        let done = body.len() as u64;
        if let Some(t) = total
            && t != done
        {
            return Err(Failure::Transport(
                format!("the body ended after {done} of {t} bytes").into(),
            ));
        }
        observer.progress(what, done, Some(done));
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_layout_is_host_then_path() {
        assert_eq!(
            mirror_url(
                "http://127.0.0.1:8080/",
                "https://github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml"
            ),
            "http://127.0.0.1:8080/github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml"
        );
        assert_eq!(
            mirror_url("http://m/base", "http://example.com:81/a/b.yaml?x=1"),
            "http://m/base/example.com:81/a/b.yaml"
        );
    }
}
