//! The sealed-secrets controller's certificate, and the Secrets it unsealed, read from a
//! cluster (features `seal` and `kube`).

use std::collections::BTreeMap;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::{Secret, Service};
use zeroize::Zeroizing;

use super::{Error, SEALING_KEY_LABEL};
use crate::kube::RequestError;

/// A certificate read from a cluster.
#[derive(Debug, Clone)]
pub struct FetchedCertificate {
    /// The PEM text.
    pub pem: String,
    /// Where it came from, for messages: the service proxy URL path or the Secret.
    pub from: String,
    /// Why the service proxy was not used, when the certificate came from a Secret.
    pub fallback_reason: Option<String>,
}

/// How long the service proxy may take to hand over the certificate.
const PROXY_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads the controller's certificate as kubeseal does, through the API server's proxy to the
/// controller's Service (`/api/v1/namespaces/<ns>/services/http:<name>:<port-name>/proxy/v1/cert.pem`,
/// the port being the Service's first). When the proxy fails (controller not ready, API server
/// unable to reach pods) it falls back to `tls.crt` of the newest Secret in `namespace`
/// labelled `sealedsecrets.bitnami.com/sealed-secrets-key=active`.
///
/// A missing Service is an error, not a reason to fall back: it means the name or namespace
/// is wrong.
///
/// # Errors
///
/// [`Error::ControllerNotFound`] when the Service does not exist, [`Error::ControllerRequest`]
/// when a request fails before the server answers, [`Error::CertificateUnavailable`] when
/// neither the proxy nor the key Secrets give a certificate.
pub async fn fetch_certificate(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<FetchedCertificate, Error> {
    let request_failed = |source| Error::ControllerRequest {
        namespace: namespace.into(),
        name: name.into(),
        source,
    };
    let port = service_port(client, namespace, name).await?;
    let proxy_error = match port {
        None => format!("Service {namespace}/{name} has no ports"),
        Some(port) => {
            let path = format!(
                "/api/v1/namespaces/{namespace}/services/http:{name}:{port}/proxy/v1/cert.pem"
            );
            let request =
                pem_request(&path).map_err(|e| request_failed(RequestError::Transport(e)))?;
            match tokio::time::timeout(PROXY_TIMEOUT, client.request_text(request)).await {
                Err(_) => format!("{path}: no answer in {}s", PROXY_TIMEOUT.as_secs()),
                Ok(answer) => match answer.map_err(RequestError::from) {
                    Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {
                        return Ok(FetchedCertificate {
                            pem,
                            from: path,
                            fallback_reason: None,
                        });
                    }
                    Ok(_) => format!("{path} answered something that is not a PEM certificate"),
                    Err(source @ RequestError::Transport(_)) => {
                        return Err(request_failed(source));
                    }
                    Err(e) => format!("{path}: {e}"),
                },
            }
        }
    };
    fallback(client, namespace, proxy_error)
        .await
        .map_err(|(proxy, fallback)| Error::CertificateUnavailable {
            namespace: namespace.into(),
            name: name.into(),
            proxy,
            fallback,
        })
}

/// The name of the first port of the controller's Service (`None`: it has no ports).
pub(super) async fn service_port(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = match services.get(name).await.map_err(RequestError::from) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => {
            return Err(Error::ControllerNotFound {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
        Err(source) => {
            return Err(Error::ControllerRequest {
                namespace: namespace.into(),
                name: name.into(),
                source,
            });
        }
    };
    Ok(service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.name.clone().unwrap_or_default()))
}

/// A GET of `path` asking for a PEM file.
fn pem_request(path: &str) -> Result<http::Request<Vec<u8>>, ::kube::Error> {
    http::Request::get(path)
        .header(http::header::ACCEPT, "application/x-pem-file, */*")
        .body(Vec::new())
        .map_err(::kube::Error::HttpError)
}

/// The certificate of the newest active key Secret, after the service proxy failed; or the
/// proxy's failure and the fallback's.
async fn fallback(
    client: &Client,
    namespace: &str,
    proxy_error: String,
) -> Result<FetchedCertificate, (String, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let listed = secrets
        .list(&ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await
        .map_err(RequestError::from);
    let fallback_problem = match listed {
        Ok(list) => {
            let newest = list
                .items
                .into_iter()
                .filter(|s| s.data.as_ref().is_some_and(|d| d.contains_key("tls.crt")))
                .max_by_key(|s| {
                    (
                        s.metadata.creation_timestamp.clone().map(|t| t.0),
                        s.metadata.name.clone(),
                    )
                });
            match newest {
                Some(secret) => {
                    let secret_name = secret.metadata.name.clone().unwrap_or_default();
                    let pem = secret
                        .data
                        .and_then(|mut d| d.remove("tls.crt"))
                        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                        .unwrap_or_default();
                    return Ok(FetchedCertificate {
                        pem,
                        from: format!("Secret {namespace}/{secret_name} (tls.crt)"),
                        fallback_reason: Some(proxy_error),
                    });
                }
                None => format!(
                    "no Secret labelled {SEALING_KEY_LABEL}=active with a tls.crt in {namespace}"
                ),
            }
        }
        Err(e) => format!("listing its key Secrets failed: {e}"),
    };
    Err((proxy_error, fallback_problem))
}

/// The values of the Secret the controller unsealed from SealedSecret `namespace/name`, if it
/// exists and the controller owns it (an owner reference to that SealedSecret). `None` when
/// there is no such Secret yet.
///
/// # Errors
///
/// [`Error::UnsealedSecret`] when reading the Secret fails for another reason than its absence.
pub async fn unsealed_secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Zeroizing<Vec<u8>>>>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get(name).await.map_err(RequestError::from) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(source) => {
            return Err(Error::UnsealedSecret {
                namespace: namespace.into(),
                name: name.into(),
                source,
            });
        }
    };
    let owned = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "SealedSecret" && o.name == name);
    if !owned {
        return Ok(None);
    }
    Ok(Some(
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Zeroizing::new(v.0)))
            .collect(),
    ))
}

/// Downloads a certificate from an `https://` URL (e.g. a controller exposed through an
/// ingress), trusting the system's root certificates.
///
/// A plain `http://` URL is refused unless `allow_insecure_http` is set: anyone on the path
/// could hand over their own certificate, and every value sealed to it would be theirs to read.
///
/// # Errors
///
/// [`Error::InsecureCertificateUrl`] for a URL that is not trusted,
/// [`Error::CertificateDownload`] when the download fails.
pub async fn fetch_certificate_url(url: &str, allow_insecure_http: bool) -> Result<Vec<u8>, Error> {
    super::source::check_url(url, allow_insecure_http)?;
    let failed = |source: ::kube::Error| Error::CertificateDownload {
        url: url.to_string(),
        source: RequestError::from(source),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| failed(::kube::Error::HttpError(e.into())))?;
    let origin = http::Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("https"))
        .authority(uri.authority().map(|a| a.as_str()).unwrap_or_default())
        .path_and_query("/")
        .build()
        .map_err(|e| failed(::kube::Error::HttpError(e)))?;
    let client = Client::try_from(::kube::Config::new(origin)).map_err(failed)?;
    let request = pem_request(uri.path_and_query().map_or("/", |p| p.as_str())).map_err(failed)?;
    client
        .request_text(request)
        .await
        .map(String::into_bytes)
        .map_err(failed)
}
