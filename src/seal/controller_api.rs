//! Calls to the sealed-secrets controller's HTTP API about a SealedSecret: `/v1/verify`
//! (kubeseal's `--validate`) and `/v1/rotate` (`--re-encrypt`), through the API server's
//! service proxy as kubeseal makes them, or at a URL where the controller is reachable (a
//! port-forward, an ingress).

use ::kube::Client;

use super::Error;
use crate::kube::RequestError;
use crate::manifest::Object;

/// How the controller is reached.
#[derive(Clone, Copy)]
pub enum Controller<'a> {
    /// Through the API server's proxy to the controller's Service.
    Service {
        /// A client of the cluster.
        client: &'a Client,
        /// The Service's namespace.
        namespace: &'a str,
        /// The Service's name.
        name: &'a str,
    },
    /// Directly, at this `http://` or `https://` URL (the API's paths are appended).
    Url(&'a str),
}

impl std::fmt::Debug for Controller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Controller({self})")
    }
}

impl std::fmt::Display for Controller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Controller::Service {
                namespace, name, ..
            } => write!(f, "{namespace}/{name}"),
            Controller::Url(url) => f.write_str(url),
        }
    }
}

/// POSTs `sealed` as JSON (as kubeseal sends it) to the controller's `api` path; the answer's
/// text, or the refusal.
async fn post(
    controller: Controller<'_>,
    api: &'static str,
    sealed: &Object,
) -> Result<Result<String, RequestError>, Error> {
    let body = serde_json::to_vec(&sealed.value).expect("a JSON value always serializes");
    let request = |path: String| {
        http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .map_err(::kube::Error::HttpError)
    };
    let call_failed = |e: ::kube::Error| Error::ControllerCall {
        controller: controller.to_string(),
        what: format!("{} {}", operation(api), sealed.identity()),
        source: RequestError::from(e),
    };
    match controller {
        Controller::Service {
            client,
            namespace,
            name,
        } => {
            let port = super::cluster::service_port(client, namespace, name)
                .await?
                .ok_or_else(|| Error::ControllerNotFound {
                    namespace: namespace.into(),
                    name: name.into(),
                })?;
            let path =
                format!("/api/v1/namespaces/{namespace}/services/http:{name}:{port}/proxy{api}");
            let request = request(path).map_err(call_failed)?;
            Ok(client
                .request_text(request)
                .await
                .map_err(RequestError::from))
        }
        Controller::Url(url) => {
            let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
                call_failed(::kube::Error::HttpError(e.into()))
            })?;
            let origin = http::Uri::builder()
                .scheme(uri.scheme_str().unwrap_or("https"))
                .authority(uri.authority().map(|a| a.as_str()).unwrap_or_default())
                .path_and_query("/")
                .build()
                .map_err(|e| call_failed(::kube::Error::HttpError(e)))?;
            let client = Client::try_from(::kube::Config::new(origin)).map_err(call_failed)?;
            let path = format!("{}{api}", uri.path().trim_end_matches('/'));
            let request = request(path).map_err(call_failed)?;
            Ok(client
                .request_text(request)
                .await
                .map_err(RequestError::from))
        }
    }
}

fn operation(api: &str) -> &'static str {
    if api == "/v1/verify" {
        "validate"
    } else {
        "re-encrypt"
    }
}

/// Asks the controller whether it can decrypt `sealed` (kubeseal's `--validate`): `true` when
/// it can, `false` when it answers that it cannot (HTTP 409).
///
/// # Errors
///
/// [`Error::ControllerNotFound`] or [`Error::ControllerRequest`] for the Service,
/// [`Error::ControllerCall`] when the call fails otherwise.
pub async fn validate_sealed(controller: Controller<'_>, sealed: &Object) -> Result<bool, Error> {
    match post(controller, "/v1/verify", sealed).await? {
        Ok(_) => Ok(true),
        Err(RequestError::Server { code: 409, .. }) => Ok(false),
        Err(source) => Err(Error::ControllerCall {
            controller: controller.to_string(),
            what: format!("validate {}", sealed.identity()),
            source,
        }),
    }
}

/// Has the controller re-encrypt `sealed` with its newest key (kubeseal's `--re-encrypt`) and
/// returns the new SealedSecret.
///
/// # Errors
///
/// [`Error::ControllerNotFound`] or [`Error::ControllerRequest`] for the Service,
/// [`Error::ControllerCall`] when the controller refuses (it cannot decrypt `sealed`: HTTP
/// 409) or the call fails, [`Error::ControllerAnswer`] when the answer is not a SealedSecret.
pub async fn reencrypt_sealed(
    controller: Controller<'_>,
    sealed: &Object,
) -> Result<Object, Error> {
    let text = post(controller, "/v1/rotate", sealed)
        .await?
        .map_err(|source| Error::ControllerCall {
            controller: controller.to_string(),
            what: format!("re-encrypt {}", sealed.identity()),
            source,
        })?;
    let bad = |detail: String| Error::ControllerAnswer {
        controller: controller.to_string(),
        sealed: sealed.identity(),
        detail,
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    let Some(map) = value.as_object_mut() else {
        return Err(bad("JSON that is not an object".into()));
    };
    // The controller writes the object without its type (kubeseal's decoder fills it in).
    for (field, expected) in [("apiVersion", super::API_VERSION), ("kind", super::KIND)] {
        match map.get(field) {
            None => {
                map.insert(field.into(), expected.into());
            }
            Some(v) if v == expected => {}
            Some(v) => return Err(bad(format!("{field} {v} instead of {expected}"))),
        }
    }
    if !map
        .get("spec")
        .is_some_and(|s| s["encryptedData"].is_object())
    {
        return Err(bad("no spec.encryptedData".into()));
    }
    Ok(Object {
        // Keys sorted, as kubeseal writes them.
        value: super::sealed::sorted(value),
        origin: sealed.origin.clone(),
    })
}
