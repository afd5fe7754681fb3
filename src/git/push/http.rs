//! Smart HTTP(S): `GET info/refs?service=git-receive-pack`, then `POST git-receive-pack`.
//! reqwest with rustls and ring; trust roots from the system store.

use std::sync::Arc;

use super::protocol::{self, Advertisement, Command, Line, LineBuffer, Report};
use super::{HttpCredentials, PushError};
use crate::observe::{Observer, ObserverExt};

pub(crate) struct Http {
    client: reqwest::Client,
    /// The repository URL without credentials and trailing slash.
    base: String,
    /// For messages: the URL without credentials.
    display: String,
    credentials: Option<HttpCredentials>,
}

/// How long connecting may take, and how long the server may stay silent while answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: std::time::Duration,
    pub read: std::time::Duration,
}

fn client(display: &str, timeouts: Timeouts) -> Result<reqwest::Client, PushError> {
    let connect = |source: Box<dyn std::error::Error + Send + Sync>| PushError::Connect {
        url: display.into(),
        source,
    };
    let mut roots = rustls::RootCertStore::empty();
    if display.starts_with("https://") {
        // Reading the system store costs tens of milliseconds: only for HTTPS.
        for cert in rustls_native_certs::load_native_certs().certs {
            // Unparsable system certificates are skipped, as the platform's own clients do.
            let _ = roots.add(cert);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| connect(Box::new(e)))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        // Redirects are followed within the same scheme strength: never from https to http,
        // where the credentials and the pack would travel in the clear.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "refused a redirect from https to {to} (plain http)"
                ))
            } else if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!(
            "git/2.0 (capi-manage/",
            env!("CARGO_PKG_VERSION"),
            ")"
        ))
        .build()
        .map_err(|e| connect(Box::new(e)))
}

impl Http {
    pub(crate) async fn connect(
        url: &str,
        credentials: Option<HttpCredentials>,
        timeouts: Timeouts,
    ) -> Result<(Http, Advertisement), PushError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| PushError::InvalidUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        let from_url = (!parsed.username().is_empty()).then(|| HttpCredentials {
            username: percent_decode(parsed.username()),
            password: parsed.password().map(percent_decode).unwrap_or_default(),
        });
        let mut clean = parsed.clone();
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        let base = clean.as_str().trim_end_matches('/').to_owned();
        let http = Http {
            client: client(&base, timeouts)?,
            display: base.clone(),
            base,
            credentials: credentials.or(from_url),
        };
        let response = http
            .request(reqwest::Method::GET, "info/refs?service=git-receive-pack")
            .send()
            .await
            .map_err(|e| http.connect_error(e))?;
        let response = http.check_status(response).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type != "application/x-git-receive-pack-advertisement" {
            return Err(PushError::Remote {
                url: http.display.clone(),
                message: format!(
                    "not a smart git HTTP server (Content-Type {content_type:?}); pushing needs git-receive-pack behind HTTP"
                ),
            });
        }
        let body = response.bytes().await.map_err(|e| http.connect_error(e))?;
        let mut lines = LineBuffer::default();
        lines.extend(&body);
        let protocol_error = |detail: String| PushError::Protocol {
            url: http.display.clone(),
            detail,
        };
        // "# service=git-receive-pack" and a flush, then the advertisement up to a flush.
        match lines.next_line().map_err(protocol_error)? {
            Some(Line::Data(d)) if d.starts_with(b"# service=") => {
                if let Some(Line::Flush) = lines.next_line().map_err(protocol_error)? {
                } else {
                    return Err(protocol_error("no flush after the service line".into()));
                }
            }
            _ => return Err(protocol_error("missing `# service=` line".into())),
        }
        let mut data = Vec::new();
        while let Some(line) = lines.next_line().map_err(protocol_error)? {
            match line {
                Line::Data(d) => data.push(d),
                _ => break,
            }
        }
        let adv = protocol::parse_advertisement(&data).map_err(protocol_error)?;
        Ok((http, adv))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}/{path}", self.base))
            .header("Git-Protocol", "version=0");
        match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        }
    }

    fn connect_error(&self, e: reqwest::Error) -> PushError {
        PushError::Connect {
            url: self.display.clone(),
            source: Box::new(e),
        }
    }

    async fn check_status(
        &self,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, PushError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let first = first_line(&body);
        Err(match status.as_u16() {
            401 | 403 => PushError::AuthFailed {
                url: self.display.clone(),
                detail: match &self.credentials {
                    None => format!("HTTP {status}; pass credentials (a token) for this server"),
                    Some(c) => format!(
                        "HTTP {status} for user {:?}; check the token and its write permission",
                        c.username
                    ),
                },
            },
            _ => PushError::Remote {
                url: self.display.clone(),
                message: if first.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {first}")
                },
            },
        })
    }

    pub(crate) async fn send(
        self,
        command: &Command,
        adv: &Advertisement,
        pack: Vec<u8>,
        observer: &dyn Observer,
    ) -> Result<Report, PushError> {
        let (body, sideband) = protocol::request(command, adv, pack);
        let response = self
            .request(reqwest::Method::POST, "git-receive-pack")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-git-receive-pack-request",
            )
            .header(
                reqwest::header::ACCEPT,
                "application/x-git-receive-pack-result",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.connect_error(e))?;
        let response = self.check_status(response).await?;
        let body = response.bytes().await.map_err(|e| self.connect_error(e))?;
        protocol::parse_response(&body, sideband, |m| {
            observer.waiting("remote", Some(m.to_owned()))
        })
        .map_err(|detail| PushError::Protocol {
            url: self.display.clone(),
            detail,
        })
    }
}

/// The first line of a server's error body, safe for a terminal.
fn first_line(body: &str) -> String {
    protocol::sanitize(body.lines().next().unwrap_or("").trim())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_escaped() {
        assert_eq!(
            first_line("\x1b[2JRepository not found\x07\r\nsecond line"),
            "\\x1b[2JRepository not found\\x07"
        );
        assert_eq!(first_line(""), "");
    }
}
