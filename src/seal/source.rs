//! Where the sealing certificate comes from: a file, a URL or the controller in a cluster.

use std::fmt;
use std::path::PathBuf;

use super::{Error, SealingKey};

/// Where the controller's certificate comes from, for sealing.
///
/// A file is read offline ([`CertSource::resolve_offline`]); a URL and a cluster need the
/// `kube` feature ([`CertSource::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// A PEM file, e.g. the output of `kubeseal --fetch-cert`.
    File(PathBuf),
    /// A URL serving the PEM certificate (a controller exposed through an ingress).
    Url {
        /// The URL: `https://`, or `http://` with `allow_insecure_http`.
        url: String,
        /// Accept a plain `http://` URL (anyone on the path could substitute the certificate).
        allow_insecure_http: bool,
    },
    /// The sealed-secrets controller of a cluster, through its Service (see
    /// `fetch_certificate`, feature `kube`).
    Cluster {
        /// The controller's namespace, [`DEFAULT_CONTROLLER_NAMESPACE`] by default.
        namespace: String,
        /// The controller's Service, [`DEFAULT_CONTROLLER_NAME`] by default.
        name: String,
    },
}

/// Where the upstream `controller.yaml` (vendored by this project) installs the sealed-secrets
/// controller; kubeseal's default too.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "kube-system";
/// The name of the controller's Service in the upstream install; kubeseal's default too.
pub const DEFAULT_CONTROLLER_NAME: &str = "sealed-secrets-controller";

impl Default for CertSource {
    /// The controller of the upstream install.
    fn default() -> Self {
        CertSource::Cluster {
            namespace: DEFAULT_CONTROLLER_NAMESPACE.into(),
            name: DEFAULT_CONTROLLER_NAME.into(),
        }
    }
}

impl fmt::Display for CertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertSource::File(path) => write!(f, "{}", path.display()),
            CertSource::Url { url, .. } => f.write_str(url),
            CertSource::Cluster { namespace, name } => {
                write!(f, "sealed-secrets controller {namespace}/{name}")
            }
        }
    }
}

/// Refuses a URL that is neither `https://` nor, with the caller's consent, `http://`.
pub(super) fn check_url(url: &str, allow_insecure_http: bool) -> Result<(), Error> {
    if url.starts_with("https://") || (allow_insecure_http && url.starts_with("http://")) {
        Ok(())
    } else {
        Err(Error::InsecureCertificateUrl {
            url: url.to_string(),
        })
    }
}

impl CertSource {
    /// A file or URL as a user types it: anything with a `scheme://` is a URL, the rest a path.
    pub fn file_or_url(arg: &str, allow_insecure_http: bool) -> CertSource {
        if arg.contains("://") {
            CertSource::Url {
                url: arg.to_string(),
                allow_insecure_http,
            }
        } else {
            CertSource::File(PathBuf::from(arg))
        }
    }

    /// Checks what can be checked without reading anything: a URL must be trusted.
    ///
    /// # Errors
    ///
    /// [`Error::InsecureCertificateUrl`] for a URL that is not `https://` (or plain `http://`
    /// without `allow_insecure_http`).
    pub fn check(&self) -> Result<(), Error> {
        match self {
            CertSource::Url {
                url,
                allow_insecure_http,
            } => check_url(url, *allow_insecure_http),
            CertSource::File(_) | CertSource::Cluster { .. } => Ok(()),
        }
    }

    /// The key of a [`CertSource::File`], and where it came from; `None` for the sources that
    /// need the network.
    ///
    /// # Errors
    ///
    /// [`Error::CertificateFile`] when the file cannot be read, and the errors of
    /// [`SealingKey::from_pem`].
    pub fn resolve_offline(&self) -> Result<Option<(SealingKey, String)>, Error> {
        let CertSource::File(path) = self else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|source| Error::CertificateFile {
            path: path.clone(),
            source,
        })?;
        let from = path.display().to_string();
        Ok(Some((SealingKey::from_pem(&pem, &from)?, from)))
    }

    /// The sealing key and where it came from. A cluster source needs `client`; when its
    /// certificate comes from a key Secret because the service proxy failed, `observer` gets a
    /// warning saying why.
    ///
    /// # Errors
    ///
    /// [`Error::NoCluster`] for a cluster source without `client`; the errors of
    /// [`CertSource::resolve_offline`], [`super::fetch_certificate_url`],
    /// [`super::fetch_certificate`] and [`SealingKey::from_pem`].
    #[cfg(feature = "kube")]
    pub async fn resolve(
        &self,
        client: Option<&::kube::Client>,
        observer: &dyn crate::observe::Observer,
    ) -> Result<(SealingKey, String), Error> {
        use crate::observe::ObserverExt as _;
        match self {
            CertSource::File(_) => Ok(self.resolve_offline()?.expect("a file resolves offline")),
            CertSource::Url {
                url,
                allow_insecure_http,
            } => {
                let pem = super::fetch_certificate_url(url, *allow_insecure_http).await?;
                Ok((SealingKey::from_pem(&pem, url)?, url.clone()))
            }
            CertSource::Cluster { namespace, name } => {
                let client = client.ok_or_else(|| Error::NoCluster {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })?;
                let fetched = super::fetch_certificate(client, namespace, name).await?;
                if let Some(reason) = &fetched.fallback_reason {
                    observer.warning(format!(
                        "using the certificate of {} because the controller's service proxy failed: {reason}",
                        fetched.from
                    ));
                }
                let key = SealingKey::from_pem(fetched.pem.as_bytes(), &fetched.from)?;
                Ok((key, fetched.from))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_plain_http_is_accepted() {
        let url = |u: &str, insecure| CertSource::file_or_url(u, insecure).check();
        assert!(url("https://example.test/cert.pem", false).is_ok());
        assert!(matches!(
            url("http://example.test/cert.pem", false),
            Err(Error::InsecureCertificateUrl { .. })
        ));
        assert!(url("http://example.test/cert.pem", true).is_ok());
        assert!(matches!(
            url("ftp://example.test/cert.pem", true),
            Err(Error::InsecureCertificateUrl { .. })
        ));
        assert_eq!(
            CertSource::file_or_url("certs/cert.pem", false),
            CertSource::File("certs/cert.pem".into())
        );
    }

    #[test]
    fn only_a_file_resolves_offline_and_a_missing_file_is_named() {
        assert!(CertSource::default().resolve_offline().unwrap().is_none());
        let e = CertSource::File("/nonexistent/cert.pem".into())
            .resolve_offline()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read certificate file /nonexistent/cert.pem"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
