//! Flux's GitOps objects as data, after flux2's `manifestgen`: the source Secret, the
//! GitRepository and the Kustomizations that sync a cluster folder (and, optionally, the
//! vendored components) from git.
//!
//! Pure: nothing here reads files or talks to a cluster. [`sync_objects`] returns objects ready
//! for [`crate::kube::apply`].

use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::manifest::Object;

/// `apiVersion` of GitRepository (source-controller v1).
pub const SOURCE_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";
/// `apiVersion` of Kustomization (kustomize-controller v1).
pub const KUSTOMIZE_API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";
/// `apiVersion` of HelmRelease (helm-controller v2).
pub const HELM_API_VERSION: &str = "helm.toolkit.fluxcd.io/v2";

/// Secret key of the SSH private key (flux2's `identity`).
pub const IDENTITY_KEY: &str = "identity";
/// Secret key of the SSH public key.
pub const IDENTITY_PUB_KEY: &str = "identity.pub";
/// Secret key of the SSH known_hosts lines.
pub const KNOWN_HOSTS_KEY: &str = "known_hosts";
/// Secret key of the HTTPS basic-auth user name.
pub const USERNAME_KEY: &str = "username";
/// Secret key of the HTTPS basic-auth password.
pub const PASSWORD_KEY: &str = "password";
/// Secret key of the HTTPS bearer token.
pub const BEARER_TOKEN_KEY: &str = "bearerToken";
/// Secret key of the CA certificate (PEM) that signs the git server's certificate.
pub const CA_CRT_KEY: &str = "ca.crt";

/// How source-controller authenticates to the git server.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceAuth {
    /// An SSH deploy key and the host keys to trust (`ssh://` URLs).
    Ssh {
        /// The private key in OpenSSH format.
        identity: String,
        /// The public key line.
        identity_pub: String,
        /// known_hosts lines of the git host (e.g. from `git::scan_host_keys`).
        known_hosts: String,
    },
    /// HTTPS with basic auth or a bearer token, and optionally a CA to trust.
    Https {
        /// Basic-auth user; written only together with `password`, as flux2 does.
        username: Option<String>,
        /// Basic-auth password.
        password: Option<String>,
        /// A bearer token (instead of basic auth).
        bearer_token: Option<String>,
        /// The CA certificate (PEM) of the git server.
        ca_crt: Option<String>,
    },
    /// A public repository: no Secret and no `secretRef`.
    None,
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            SourceAuth::Ssh { identity_pub, .. } => f
                .debug_struct("Ssh")
                .field("identity_pub", identity_pub)
                .finish_non_exhaustive(),
            SourceAuth::Https {
                username, ca_crt, ..
            } => f
                .debug_struct("Https")
                .field("username", username)
                .field("ca_crt", &ca_crt.is_some())
                .finish_non_exhaustive(),
            SourceAuth::None => f.write_str("None"),
        }
    }
}

/// What [`sync_objects`] generates.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The cluster's name: names the GitRepository, the Secret and the cluster Kustomization.
    pub name: String,
    /// Where the objects live (`flux-system`).
    pub namespace: String,
    /// The repository URL Flux clones (`ssh://...` or `https://...`).
    pub url: String,
    /// The branch to follow.
    pub branch: String,
    /// The cluster folder in the repository (`./clusters/<name>`).
    pub path: String,
    /// How often source-controller looks for new commits.
    pub interval: Duration,
    /// How often kustomize-controller re-applies (and corrects drift).
    pub kustomization_interval: Duration,
    /// The folder with the vendored components' `kustomization.yaml` (`./vendor-manifests`);
    /// `None` leaves the components to capi-manage alone.
    pub components_path: Option<String>,
    /// Whether Flux deletes component objects removed from git. Off by default: removing a
    /// CRD from the folder would delete every object of that kind, e.g. every Cluster.
    pub components_prune: bool,
    /// Credentials for the git server.
    pub auth: SourceAuth,
}

impl SyncOptions {
    /// The defaults for cluster `name` syncing `url` at `branch`: namespace `flux-system`, path
    /// `./clusters/<name>`, source interval 1m, Kustomization interval 5m, components from
    /// `./vendor-manifests`, no credentials.
    pub fn new(name: impl Into<String>, url: impl Into<String>, branch: impl Into<String>) -> Self {
        let name = name.into();
        SyncOptions {
            path: format!("./clusters/{name}"),
            name,
            namespace: "flux-system".into(),
            url: url.into(),
            branch: branch.into(),
            interval: Duration::from_secs(60),
            kustomization_interval: Duration::from_secs(300),
            components_path: Some("./vendor-manifests".into()),
            components_prune: false,
            auth: SourceAuth::None,
        }
    }

    /// The names of the generated objects.
    pub fn names(&self) -> SyncNames {
        let mut kustomizations = Vec::new();
        if self.components_path.is_some() {
            kustomizations.push(self.components_name());
        }
        kustomizations.push(self.name.clone());
        SyncNames {
            namespace: self.namespace.clone(),
            source: self.name.clone(),
            secret: (self.auth != SourceAuth::None).then(|| self.name.clone()),
            kustomizations,
        }
    }

    fn components_name(&self) -> String {
        format!("{}-components", self.name)
    }
}

/// The objects [`sync_objects`] generates, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncNames {
    /// Their namespace.
    pub namespace: String,
    /// The GitRepository.
    pub source: String,
    /// The source Secret, if there are credentials.
    pub secret: Option<String>,
    /// The Kustomizations, in dependency order (components first).
    pub kustomizations: Vec<String>,
}

/// The revision Flux reports for `commit` on `branch`: `<branch>@sha1:<hex>`.
pub fn revision(branch: &str, commit: &str) -> String {
    format!("{branch}@sha1:{commit}")
}

/// Go's `time.Duration` string for whole units, as Flux writes intervals: `1m0s`, `5m0s`, `30s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let millis = d.subsec_millis();
    let secs = if millis > 0 {
        format!("{sec}.{millis:03}")
            .trim_end_matches('0')
            .to_string()
    } else {
        sec.to_string()
    };
    match (h, m) {
        (0, 0) if millis > 0 && sec == 0 => format!("{millis}ms"),
        (0, 0) => format!("{secs}s"),
        (0, _) => format!("{m}m{secs}s"),
        _ => format!("{h}h{m}m{secs}s"),
    }
}

/// Flux paths start with `./`: `clusters/a` and `./clusters/a` both become `./clusters/a`.
fn flux_path(p: &str) -> String {
    let trimmed = p.trim_start_matches("./").trim_end_matches('/');
    if trimmed.is_empty() {
        "./".into()
    } else {
        format!("./{trimmed}")
    }
}

/// The source Secret for `auth`, or `None` for [`SourceAuth::None`]. Values go into `data`
/// (base64), so server-side apply compares them with what is stored.
pub fn source_secret(name: &str, namespace: &str, auth: &SourceAuth) -> Option<Object> {
    let mut data = Map::new();
    let mut put = |k: &str, v: &str| {
        data.insert(
            k.into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
        );
    };
    match auth {
        SourceAuth::None => return None,
        SourceAuth::Ssh {
            identity,
            identity_pub,
            known_hosts,
        } => {
            put(IDENTITY_KEY, identity);
            put(IDENTITY_PUB_KEY, identity_pub);
            put(KNOWN_HOSTS_KEY, known_hosts);
        }
        SourceAuth::Https {
            username,
            password,
            bearer_token,
            ca_crt,
        } => {
            if let (Some(u), Some(p)) = (username, password) {
                put(USERNAME_KEY, u);
                put(PASSWORD_KEY, p);
            }
            if let Some(t) = bearer_token {
                put(BEARER_TOKEN_KEY, t);
            }
            if let Some(ca) = ca_crt {
                put(CA_CRT_KEY, ca);
            }
        }
    }
    Some(Object::new(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": data,
    })))
}

/// The GitRepository: `url` at `branch`, polled every `interval`, credentials from the Secret.
pub fn git_repository(o: &SyncOptions) -> Object {
    let mut spec = json!({
        "interval": go_duration(o.interval),
        "ref": {"branch": o.branch},
        "url": o.url,
    });
    if o.auth != SourceAuth::None {
        spec["secretRef"] = json!({"name": o.name});
    }
    Object::new(json!({
        "apiVersion": SOURCE_API_VERSION,
        "kind": "GitRepository",
        "metadata": {"name": o.name, "namespace": o.namespace},
        "spec": spec,
    }))
}

/// A Kustomization applying `path` of the GitRepository, after `depends_on`.
fn kustomization(
    o: &SyncOptions,
    name: &str,
    path: &str,
    prune: bool,
    depends_on: Option<&str>,
) -> Object {
    let mut spec = json!({
        "interval": go_duration(o.kustomization_interval),
        "path": flux_path(path),
        "prune": prune,
        "sourceRef": {"kind": "GitRepository", "name": o.name},
    });
    if let Some(dep) = depends_on {
        spec["dependsOn"] = json!([{"name": dep}]);
    }
    Object::new(json!({
        "apiVersion": KUSTOMIZE_API_VERSION,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": o.namespace},
        "spec": spec,
    }))
}

/// Everything Flux needs to sync the cluster from git: the source Secret (unless the
/// repository is public), the GitRepository, the components Kustomization (when
/// `components_path` is set) and the cluster Kustomization, which depends on the components
/// one so the CRDs it needs exist first. The cluster folder is always pruned.
pub fn sync_objects(o: &SyncOptions) -> Vec<Object> {
    let mut out = Vec::new();
    out.extend(source_secret(&o.name, &o.namespace, &o.auth));
    out.push(git_repository(o));
    let components = o.components_name();
    if let Some(path) = &o.components_path {
        out.push(kustomization(
            o,
            &components,
            path,
            o.components_prune,
            None,
        ));
    }
    out.push(kustomization(
        o,
        &o.name,
        &o.path,
        true,
        o.components_path.as_ref().map(|_| components.as_str()),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(o: &Object, key: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD
            .decode(o.value["data"][key].as_str().unwrap())
            .unwrap();
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn go_durations_match_go() {
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(3600 + 61)), "1h1m1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn ssh_sync_objects_follow_flux_bootstrap() {
        let mut o = SyncOptions::new("prod", "ssh://git@example.com/r.git", "main");
        o.auth = SourceAuth::Ssh {
            identity: "PRIVATE".into(),
            identity_pub: "ssh-ed25519 AAAA".into(),
            known_hosts: "example.com ssh-ed25519 BBBB\n".into(),
        };
        let objs = sync_objects(&o);
        let kinds: Vec<String> = objs.iter().map(|o| o.identity()).collect();
        assert_eq!(
            kinds,
            [
                "Secret flux-system/prod",
                "GitRepository flux-system/prod",
                "Kustomization flux-system/prod-components",
                "Kustomization flux-system/prod"
            ]
        );
        assert_eq!(decode(&objs[0], "identity"), "PRIVATE");
        assert_eq!(decode(&objs[0], "identity.pub"), "ssh-ed25519 AAAA");
        assert_eq!(
            decode(&objs[0], "known_hosts"),
            "example.com ssh-ed25519 BBBB\n"
        );
        let repo = &objs[1].value;
        assert_eq!(repo["apiVersion"], "source.toolkit.fluxcd.io/v1");
        assert_eq!(repo["spec"]["ref"]["branch"], "main");
        assert_eq!(repo["spec"]["interval"], "1m0s");
        assert_eq!(repo["spec"]["secretRef"]["name"], "prod");
        assert_eq!(repo["spec"]["url"], "ssh://git@example.com/r.git");
        let comp = &objs[2].value["spec"];
        assert_eq!(comp["path"], "./vendor-manifests");
        assert_eq!(comp["prune"], false);
        let ks = &objs[3].value;
        assert_eq!(ks["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
        assert_eq!(ks["spec"]["path"], "./clusters/prod");
        assert_eq!(ks["spec"]["prune"], true);
        assert_eq!(ks["spec"]["interval"], "5m0s");
        assert_eq!(
            ks["spec"]["sourceRef"],
            json!({"kind": "GitRepository", "name": "prod"})
        );
        assert_eq!(
            ks["spec"]["dependsOn"],
            json!([{"name": "prod-components"}])
        );
        assert_eq!(
            o.names().kustomizations,
            ["prod-components".to_string(), "prod".to_string()]
        );
    }

    #[test]
    fn https_secret_keys_and_public_repositories() {
        let mut o = SyncOptions::new("a", "https://git.example.com/r.git", "dev");
        o.components_path = None;
        o.path = "clusters/a/".into();
        o.auth = SourceAuth::Https {
            username: Some("git".into()),
            password: None,
            bearer_token: Some("tok".into()),
            ca_crt: Some("PEM".into()),
        };
        let objs = sync_objects(&o);
        assert_eq!(objs.len(), 3);
        let data = objs[0].value["data"].as_object().unwrap();
        // A user name without a password is left out, as flux2 does.
        assert_eq!(data.keys().collect::<Vec<_>>(), ["bearerToken", "ca.crt"]);
        assert_eq!(decode(&objs[0], "ca.crt"), "PEM");
        assert_eq!(objs[2].value["spec"]["path"], "./clusters/a");
        assert!(objs[2].value["spec"].get("dependsOn").is_none());

        o.auth = SourceAuth::None;
        let objs = sync_objects(&o);
        assert_eq!(objs.len(), 2);
        assert!(objs[0].value["spec"].get("secretRef").is_none());
        assert_eq!(o.names().secret, None);
    }

    #[test]
    fn revisions_use_flux_format() {
        assert_eq!(revision("main", "abc"), "main@sha1:abc");
    }

    #[test]
    fn debug_hides_secrets() {
        let a = SourceAuth::Ssh {
            identity: "PRIVATE".into(),
            identity_pub: "pub".into(),
            known_hosts: String::new(),
        };
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
