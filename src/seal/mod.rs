//! Sealing Secrets for bitnami sealed-secrets, natively and interchangeably with kubeseal.
//!
//! Pure and synchronous: certificates and manifests come in as bytes and objects, SealedSecrets
//! go out as objects: sealing needs neither a client nor an async runtime. With the `kube`
//! feature as well, the controller's certificate and the Secrets it unsealed are read from a
//! cluster ([`fetch_certificate`], [`unsealed_secret_data`], [`CertSource::resolve`]).
//!
//! - [`SealingKey`]: the controller's public key, from its certificate (RSA, not expired).
//! - [`Secret`]: a Secret to seal, its values held in buffers wiped on drop.
//! - [`seal`]: a `bitnami.com/v1alpha1` SealedSecret laid out as `kubeseal -o yaml` lays it out.
//! - [`merge_into`]: re-seal into an existing SealedSecret, touching only the keys that changed.
//! - [`seal_raw`]: one value, as `kubeseal --raw` prints it.
//! - [`seal_files`]: every Secret of many files (or folders, [`secret_files`]) with one key.
//! - [`unseal`] with an [`UnsealingKey`]: recovery with a backup of the controller's key.
//! - [`CertSource`]: where the certificate comes from (a file, a URL, a cluster's controller).

#[cfg(feature = "kube")]
mod cluster;
#[cfg(feature = "kube")]
mod controller_api;
mod crypto;
mod files;
mod oaep;
mod sealed;
mod secret;
mod source;

#[cfg(feature = "kube")]
pub use cluster::{
    FetchedCertificate, fetch_certificate, fetch_certificate_url, unsealed_secret_data,
};

#[cfg(feature = "kube")]
pub use controller_api::{Controller, reencrypt_sealed, validate_sealed};
pub use crypto::{MIN_RSA_BITS, SealingKey, UnsealingKey};
pub use files::{SealedFile, read_secret_file, seal_files, secret_files};
pub use sealed::{
    MergeOptions, Merged, SealOptions, merge_into, seal, seal_raw, sealed_scope, to_json, to_yaml,
    unseal,
};
pub use secret::{Secret, SecretData};
pub use source::{CertSource, DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE};

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::manifest::Origin;

/// `apiVersion` of SealedSecrets.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// `kind` of SealedSecrets.
pub const KIND: &str = "SealedSecret";
/// Annotation that makes a Secret cluster-wide (`"true"`).
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that makes a Secret namespace-wide (`"true"`).
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Label the controller puts on its key Secrets; `active` marks the ones it seals new values to.
pub const SEALING_KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

/// Where a sealed value may be unsealed: it is bound to this through the RSA-OAEP label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Only as a Secret of the same name in the same namespace (label `namespace/name`).
    #[default]
    Strict,
    /// As any Secret in the same namespace (label `namespace`).
    NamespaceWide,
    /// As any Secret anywhere (empty label).
    ClusterWide,
}

impl Scope {
    /// The OAEP label a value is sealed under.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// The scope a Secret's annotations ask for; cluster-wide wins over namespace-wide, as in
    /// the controller.
    pub fn from_annotations(annotation: impl Fn(&str) -> Option<String>) -> Scope {
        if annotation(CLUSTER_WIDE_ANNOTATION).as_deref() == Some("true") {
            Scope::ClusterWide
        } else if annotation(NAMESPACE_WIDE_ANNOTATION).as_deref() == Some("true") {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The scope's annotation, if it has one.
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Scope::Strict => None,
            Scope::NamespaceWide => Some(NAMESPACE_WIDE_ANNOTATION),
            Scope::ClusterWide => Some(CLUSTER_WIDE_ANNOTATION),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        })
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            other => Err(Error::InvalidScope(other.to_string())),
        }
    }
}

/// What went wrong sealing or unsealing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not valid YAML or not Kubernetes objects.
    #[error("cannot read the Secret")]
    Manifest(#[source] crate::manifest::Error),
    /// The input object is not a `v1` Secret.
    #[error("{origin}: {found} is not a Secret: seal expects `apiVersion: v1` and `kind: Secret`")]
    NotASecret {
        /// Where the object came from.
        origin: Origin,
        /// What it is, `apiVersion kind name`.
        found: String,
    },
    /// The Secret has neither `data` nor `stringData` entries.
    #[error(
        "{origin}: Secret {name} has no `data` or `stringData` entries: nothing to seal; add the values (an empty Secret is almost always a mistake)"
    )]
    EmptyData {
        /// Where the Secret came from.
        origin: Origin,
        /// Its name.
        name: String,
    },
    /// A field of the Secret is malformed.
    #[error("{origin}: field `{field}` {problem}")]
    InvalidField {
        /// Where the object came from.
        origin: Origin,
        /// The field, e.g. `data.password`.
        field: String,
        /// What is wrong, with the fix.
        problem: String,
    },
    /// The Secret has no namespace and is not cluster-wide.
    #[error(
        "{origin}: Secret {name} has no namespace: set metadata.namespace or pass --namespace ({scope} scope binds the sealed values to a namespace)"
    )]
    NoNamespace {
        /// Where the Secret came from.
        origin: Origin,
        /// Its name.
        name: String,
        /// The scope that needs the namespace.
        scope: Scope,
    },
    /// `--raw` sealing misses the namespace or name its scope binds to.
    #[error("sealing a raw value with {scope} scope needs {what}")]
    RawNeeds {
        /// The scope.
        scope: Scope,
        /// `--namespace` or `--name`.
        what: &'static str,
    },
    /// Not one of the three scope names.
    #[error("unknown scope `{0}`: use strict, namespace-wide or cluster-wide")]
    InvalidScope(String),
    /// A certificate does not parse or holds no usable key.
    #[error("certificate {from}: {detail}")]
    Certificate {
        /// Where it came from.
        from: String,
        /// What is wrong.
        detail: String,
    },
    /// A certificate has expired.
    #[error(
        "certificate {from} expired on {not_after}: seal with the controller's current certificate (fetch it from the cluster instead of --cert)"
    )]
    CertificateExpired {
        /// Where it came from.
        from: String,
        /// Its `notAfter`.
        not_after: String,
    },
    /// A certificate is not valid yet (`notBefore` in the future).
    #[error(
        "certificate {from} is not valid before {not_before}: check the clock of this host, or that this is the controller's current cert.pem"
    )]
    CertificateNotYetValid {
        /// Where it came from.
        from: String,
        /// Its `notBefore`.
        not_before: String,
    },
    /// A certificate's RSA key is shorter than [`MIN_RSA_BITS`].
    #[error(
        "certificate {from} holds a {bits}-bit RSA key: sealed-secrets keys are 4096 bits and at least 2048 are needed; is this the controller's cert.pem?"
    )]
    CertificateKeyTooSmall {
        /// Where it came from.
        from: String,
        /// The modulus size.
        bits: usize,
    },
    /// A certificate's key is not RSA.
    #[error(
        "certificate {from} holds a {algorithm} key, not RSA: sealed-secrets controllers use RSA keys; is this the controller's cert.pem?"
    )]
    CertificateNotRsa {
        /// Where it came from.
        from: String,
        /// The key's algorithm.
        algorithm: String,
    },
    /// A private key does not parse.
    #[error("private key {from}: {detail}")]
    PrivateKey {
        /// Where it came from.
        from: String,
        /// What is wrong.
        detail: String,
    },
    /// The system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// Encryption failed (practically: a key too small for OAEP with SHA-256).
    #[error("cannot seal: {0}")]
    Encrypt(String),
    /// A sealed value does not open.
    #[error("cannot unseal: {0}")]
    Decrypt(String),
    /// A value of a SealedSecret does not open.
    #[error("{origin}: cannot unseal `spec.encryptedData.{key}`")]
    Unseal {
        /// Where the SealedSecret came from.
        origin: Origin,
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The object to merge into is not a SealedSecret.
    #[error("{origin}: {found} is not a SealedSecret ({API_VERSION}): cannot merge into it")]
    NotASealedSecret {
        /// Where the object came from.
        origin: Origin,
        /// What it is.
        found: String,
    },
    /// Merging would mix scopes in one SealedSecret, which the controller cannot unseal.
    #[error(
        "{origin}: the SealedSecret is {existing}-scoped but {wanted} scope was asked for: values of one SealedSecret share its scope; re-seal the whole Secret into a new file instead of --merge-into"
    )]
    ScopeMismatch {
        /// The SealedSecret's file.
        origin: Origin,
        /// Its scope.
        existing: Scope,
        /// The scope asked for.
        wanted: Scope,
    },
    /// A Secret file (or a folder of them) cannot be read, or is not UTF-8 text.
    #[error("cannot read Secret file {}", path.display())]
    SecretFile {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A Secret file holds no document.
    #[error("{} holds no Secret: expected a YAML `kind: Secret` document", path.display())]
    NoSecret {
        /// The file.
        path: PathBuf,
    },
    /// A certificate file cannot be read.
    #[error("cannot read certificate file {}", path.display())]
    CertificateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate URL that is not `https://` (or is plain `http://` without the caller's
    /// explicit consent).
    #[error(
        "certificate URL {url}: only https:// URLs are trusted for the sealing certificate (a certificate fetched over plain http could be anyone's)"
    )]
    InsecureCertificateUrl {
        /// The URL as given.
        url: String,
    },
    /// Downloading a certificate from a URL failed.
    #[cfg(feature = "kube")]
    #[error("cannot download certificate {url}")]
    CertificateDownload {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: crate::kube::RequestError,
    },
    /// The certificate of a cluster's controller was asked for without a cluster.
    #[error(
        "the certificate of sealed-secrets controller {namespace}/{name} comes from its cluster, and no cluster was given"
    )]
    NoCluster {
        /// The controller's namespace.
        namespace: String,
        /// Its Service.
        name: String,
    },
    /// The sealed-secrets controller's Service does not exist.
    #[error("no sealed-secrets controller Service {namespace}/{name}")]
    ControllerNotFound {
        /// The namespace looked in.
        namespace: String,
        /// The Service name looked for.
        name: String,
    },
    /// A request for the controller's Service or certificate failed before the server answered,
    /// or the server refused to read the Service.
    #[cfg(feature = "kube")]
    #[error("cannot read Service {namespace}/{name} from the cluster")]
    ControllerRequest {
        /// The controller's namespace.
        namespace: String,
        /// Its Service.
        name: String,
        /// The server's answer, or why there was none.
        #[source]
        source: crate::kube::RequestError,
    },
    /// The controller's certificate came neither through its Service nor from its key Secrets.
    #[error(
        "cannot get the certificate of sealed-secrets controller {namespace}/{name}: the service proxy failed ({proxy}) and {fallback}; is the controller running?"
    )]
    CertificateUnavailable {
        /// The controller's namespace.
        namespace: String,
        /// Its Service.
        name: String,
        /// What the service proxy answered.
        proxy: String,
        /// Why the key Secrets did not help.
        fallback: String,
    },
    /// The controller did not answer a call about a SealedSecret (validate, re-encrypt) as
    /// asked: it cannot decrypt it (HTTP 409), or the request failed.
    #[cfg(feature = "kube")]
    #[error("sealed-secrets controller {controller} cannot {what}")]
    ControllerCall {
        /// The controller: `namespace/name` of its Service, or its URL.
        controller: String,
        /// The call: `validate SealedSecret <namespace>/<name>` or `re-encrypt ...`.
        what: String,
        /// The answer, or why there was none.
        #[source]
        source: crate::kube::RequestError,
    },
    /// The controller's answer to a re-encryption is not a SealedSecret.
    #[error(
        "sealed-secrets controller {controller} answered the re-encryption of {sealed} with {detail}"
    )]
    ControllerAnswer {
        /// The controller: `namespace/name` of its Service, or its URL.
        controller: String,
        /// The SealedSecret, `Kind namespace/name`.
        sealed: String,
        /// What is wrong with the answer.
        detail: String,
    },
    /// The Secret unsealed from a SealedSecret cannot be read.
    #[cfg(feature = "kube")]
    #[error("cannot read Secret {namespace}/{name} from the cluster")]
    UnsealedSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The server's answer, or why there was none.
        #[source]
        source: crate::kube::RequestError,
    },
}
