//! One cloud of a `clouds.yaml`: where Keystone is, how to log in, which region and interface.

use serde_json::Value;

use super::Error;

/// How the cloud logs in.
#[derive(Clone)]
pub enum Auth {
    /// `auth_type: v3applicationcredential`.
    ApplicationCredential {
        /// `auth.application_credential_id` (or, with a user, the credential's name).
        id: Option<String>,
        /// `auth.application_credential_name`, used with `username`/`user_id`.
        name: Option<String>,
        /// `auth.username` or `auth.user_id` with its domain, for a credential given by name.
        user: Option<User>,
        /// `auth.application_credential_secret`.
        secret: zeroize::Zeroizing<String>,
    },
    /// `auth_type: password` (or no `auth_type` with a `password`).
    Password {
        /// The user.
        user: User,
        /// `auth.password`.
        password: zeroize::Zeroizing<String>,
    },
}

/// A Keystone user by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `user_id`.
    pub id: Option<String>,
    /// `username`.
    pub name: Option<String>,
    /// `user_domain_name` (or `domain_name`).
    pub domain_name: Option<String>,
    /// `user_domain_id` (or `domain_id`).
    pub domain_id: Option<String>,
}

/// The project the values expect the credential to log into (`auth.project_id`/`project_name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectScope {
    /// `project_id` (or `tenant_id`).
    pub id: Option<String>,
    /// `project_name` (or `tenant_name`).
    pub name: Option<String>,
    /// `project_domain_name`.
    pub domain_name: Option<String>,
    /// `project_domain_id`.
    pub domain_id: Option<String>,
}

impl ProjectScope {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_none()
    }
}

/// One cloud of a `clouds.yaml`. Its `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct CloudConfig {
    /// The cloud's name in `clouds:`.
    pub name: String,
    /// `auth.auth_url`, ending in `/v3`.
    pub auth_url: String,
    /// The login.
    pub auth: Auth,
    /// The project named in `auth` (none for an application credential, whose project is fixed).
    pub project: ProjectScope,
    /// `region_name` (none: the first region of each service).
    pub region: Option<String>,
    /// `interface` (`public` unless given; `publicURL` and the like are accepted).
    pub interface: String,
    /// `cacert`: a PEM file of extra trust roots.
    pub cacert: Option<std::path::PathBuf>,
    /// `verify: false` in the file (refused: the preflight never skips TLS verification).
    pub insecure: bool,
}

impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::ApplicationCredential { id, name, .. } => {
                format!(
                    "application credential {}",
                    id.as_ref().or(name.as_ref()).map_or("?", |s| s)
                )
            }
            Auth::Password { user, .. } => {
                format!(
                    "password of {}",
                    user.name.as_ref().or(user.id.as_ref()).map_or("?", |s| s)
                )
            }
        };
        f.debug_struct("CloudConfig")
            .field("name", &self.name)
            .field("auth_url", &self.auth_url)
            .field("auth", &auth)
            .field("project", &self.project)
            .field("region", &self.region)
            .field("interface", &self.interface)
            .field("cacert", &self.cacert)
            .finish()
    }
}

fn bad(field: &str, problem: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        problem: problem.into(),
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl CloudConfig {
    /// The cloud `cloud` of a `clouds.yaml` text (the chart reads the cloud named `openstack`).
    pub fn from_clouds_yaml(clouds_yaml: &str, cloud: &str) -> Result<CloudConfig, Error> {
        let doc: Value = serde_yaml_ng::from_str(clouds_yaml)
            .map_err(|e| bad("clouds.yaml", format!("is not valid YAML: {e}")))?;
        let c = doc
            .get("clouds")
            .and_then(|c| c.get(cloud))
            .ok_or_else(|| bad(&format!("clouds.{cloud}"), "is missing"))?;
        let f = |k: &str| format!("clouds.{cloud}.{k}");
        let auth = c.get("auth").ok_or_else(|| bad(&f("auth"), "is missing"))?;
        let auth_url =
            text(auth, "auth_url").ok_or_else(|| bad(&f("auth.auth_url"), "is missing"))?;
        if !(auth_url.starts_with("https://") || auth_url.starts_with("http://")) {
            return Err(bad(
                &f("auth.auth_url"),
                format!("{auth_url:?} is not an http(s) URL"),
            ));
        }
        let trimmed = auth_url.trim_end_matches('/');
        let auth_url = if trimmed.ends_with("/v3") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/v3")
        };
        let user = User {
            id: text(auth, "user_id"),
            name: text(auth, "username"),
            domain_name: text(auth, "user_domain_name").or_else(|| text(auth, "domain_name")),
            domain_id: text(auth, "user_domain_id").or_else(|| text(auth, "domain_id")),
        };
        let has_user = user.id.is_some() || user.name.is_some();
        let auth_type = text(c, "auth_type").unwrap_or_else(|| {
            if text(auth, "application_credential_secret").is_some() {
                "v3applicationcredential".into()
            } else {
                "password".into()
            }
        });
        let login = match auth_type.as_str() {
            "v3applicationcredential" | "applicationcredential" => {
                let secret = text(auth, "application_credential_secret")
                    .ok_or_else(|| bad(&f("auth.application_credential_secret"), "is missing"))?;
                let id = text(auth, "application_credential_id");
                let name = text(auth, "application_credential_name");
                if id.is_none() && !(name.is_some() && has_user) {
                    return Err(bad(
                        &f("auth.application_credential_id"),
                        "is missing (or give application_credential_name with username or user_id)",
                    ));
                }
                Auth::ApplicationCredential {
                    id,
                    name,
                    user: has_user.then(|| user.clone()),
                    secret: zeroize::Zeroizing::new(secret),
                }
            }
            "password" | "v3password" => {
                let password =
                    text(auth, "password").ok_or_else(|| bad(&f("auth.password"), "is missing"))?;
                if !has_user {
                    return Err(bad(&f("auth.username"), "is missing (or give user_id)"));
                }
                if user.id.is_none() && user.domain_name.is_none() && user.domain_id.is_none() {
                    return Err(bad(
                        &f("auth.user_domain_name"),
                        "is missing (a user given by name needs its domain)",
                    ));
                }
                Auth::Password {
                    user,
                    password: zeroize::Zeroizing::new(password),
                }
            }
            other => {
                return Err(bad(
                    &f("auth_type"),
                    format!("{other:?} is not supported: use v3applicationcredential or password"),
                ));
            }
        };
        let project = ProjectScope {
            id: text(auth, "project_id").or_else(|| text(auth, "tenant_id")),
            name: text(auth, "project_name").or_else(|| text(auth, "tenant_name")),
            domain_name: text(auth, "project_domain_name").or_else(|| text(auth, "domain_name")),
            domain_id: text(auth, "project_domain_id").or_else(|| text(auth, "domain_id")),
        };
        if matches!(login, Auth::Password { .. }) && project.is_empty() {
            return Err(bad(
                &f("auth.project_name"),
                "is missing (a password login needs the project to scope to)",
            ));
        }
        let interface = text(c, "interface")
            .or_else(|| text(c, "endpoint_type"))
            .unwrap_or_else(|| "public".into());
        let interface = interface.trim_end_matches("URL").to_string();
        if !matches!(interface.as_str(), "public" | "internal" | "admin") {
            return Err(bad(
                &f("interface"),
                format!("{interface:?} is not public, internal or admin"),
            ));
        }
        Ok(CloudConfig {
            name: cloud.into(),
            auth_url,
            auth: login,
            project,
            region: text(c, "region_name"),
            interface,
            cacert: text(c, "cacert").map(Into::into),
            insecure: matches!(c.get("verify"), Some(Value::Bool(false))),
        })
    }

    /// The `auth` field path of this cloud, for messages (`clouds.openstack.auth`).
    pub fn field(&self, key: &str) -> String {
        format!("clouds.{}.{key}", self.name)
    }

    /// The JSON body of `POST /v3/auth/tokens`.
    pub(crate) fn token_request(&self) -> Value {
        use serde_json::json;
        let user_json = |u: &User| {
            let mut o = serde_json::Map::new();
            if let Some(id) = &u.id {
                o.insert("id".into(), json!(id));
            }
            if let Some(n) = &u.name {
                o.insert("name".into(), json!(n));
                match (&u.domain_id, &u.domain_name) {
                    (Some(id), _) => o.insert("domain".into(), json!({ "id": id })),
                    (None, Some(n)) => o.insert("domain".into(), json!({ "name": n })),
                    (None, None) => None,
                };
            }
            Value::Object(o)
        };
        match &self.auth {
            Auth::ApplicationCredential {
                id,
                name,
                user,
                secret,
            } => {
                let mut cred = serde_json::Map::new();
                cred.insert("secret".into(), json!(secret.as_str()));
                if let Some(id) = id {
                    cred.insert("id".into(), json!(id));
                } else {
                    cred.insert("name".into(), json!(name));
                    if let Some(u) = user {
                        cred.insert("user".into(), user_json(u));
                    }
                }
                json!({"auth": {"identity": {
                    "methods": ["application_credential"],
                    "application_credential": cred,
                }}})
            }
            Auth::Password { user, password } => {
                let mut u = user_json(user);
                u["password"] = json!(password.as_str());
                let p = &self.project;
                let scope = match (&p.id, &p.name) {
                    (Some(id), _) => json!({"project": {"id": id}}),
                    (None, name) => {
                        let domain = match (&p.domain_id, &p.domain_name) {
                            (Some(id), _) => json!({"id": id}),
                            (None, Some(n)) => json!({"name": n}),
                            (None, None) => json!({"id": "default"}),
                        };
                        json!({"project": {"name": name, "domain": domain}})
                    }
                };
                json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": u}},
                    "scope": scope,
                }})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "clouds:\n  openstack:\n    auth:\n      auth_url: https://k.example:5000\n      application_credential_id: abc\n      application_credential_secret: s3cr3t\n    region_name: RegionOne\n    interface: internalURL\n    cacert: /etc/ca.pem\n    auth_type: v3applicationcredential\n";
    const PW: &str = "clouds:\n  admin:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3/\n      username: admin\n      password: pw\n      user_domain_name: Default\n      project_name: admin\n      project_domain_name: Default\n";

    #[test]
    fn an_application_credential_cloud() {
        let c = CloudConfig::from_clouds_yaml(APP, "openstack").unwrap();
        assert_eq!(c.auth_url, "https://k.example:5000/v3");
        assert_eq!(c.interface, "internal");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert_eq!(
            c.cacert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let body = c.token_request();
        assert_eq!(
            body["auth"]["identity"]["methods"][0],
            "application_credential"
        );
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["id"],
            "abc"
        );
        assert!(body["auth"].get("scope").is_none());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("abc"),
            "{shown}"
        );
    }

    #[test]
    fn a_password_cloud_scopes_to_its_project() {
        let c = CloudConfig::from_clouds_yaml(PW, "admin").unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.interface, "public");
        let body = c.token_request();
        let user = &body["auth"]["identity"]["password"]["user"];
        assert_eq!(user["name"], "admin");
        assert_eq!(user["domain"]["name"], "Default");
        assert_eq!(user["password"], "pw");
        assert_eq!(body["auth"]["scope"]["project"]["name"], "admin");
        assert_eq!(
            body["auth"]["scope"]["project"]["domain"]["name"],
            "Default"
        );
        assert!(!format!("{c:?}").contains("\"pw\""));
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (APP.replace("openstack:", "other:"), "clouds.openstack"),
            (
                APP.replace("      application_credential_secret: s3cr3t\n", ""),
                "application_credential_secret",
            ),
            (APP.replace("https://k", "ftp://k"), "auth.auth_url"),
            (APP.replace("internalURL", "private"), "interface"),
            (
                APP.replace("v3applicationcredential", "v3oidc"),
                "auth_type",
            ),
            (
                PW.replace("      project_name: admin\n", ""),
                "project_name",
            ),
            (
                PW.replace("      user_domain_name: Default\n", ""),
                "user_domain_name",
            ),
        ];
        for (text, field) in cases {
            let cloud = if text.contains("admin:") {
                "admin"
            } else {
                "openstack"
            };
            let e = CloudConfig::from_clouds_yaml(&text, cloud)
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }
}
