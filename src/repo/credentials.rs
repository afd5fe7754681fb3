//! `clusters/<name>/credentials.yaml`: the OpenStack application credential as a Secret
//! holding `clouds.yaml`. Plaintext: it is never committed; bootstrap seals it.

use std::path::Path;

use serde_json::Value;

use super::Error;

/// The value the example's template uses for what the user must fill in.
pub const PLACEHOLDER: &str = "REPLACE_ME";

/// The parsed credentials Secret. Its `Debug` leaves the secret out, and the `clouds.yaml`
/// text is wiped from memory when dropped.
#[derive(Clone)]
pub struct Credentials {
    /// The Secret's name (must equal the values' `cloudCredentialsSecretName`).
    pub secret_name: String,
    /// Its namespace.
    pub namespace: String,
    /// The `clouds.yaml` text (it holds the application credential's secret).
    pub clouds_yaml: zeroize::Zeroizing<String>,
    /// `clouds.openstack.auth.auth_url`.
    pub auth_url: String,
    /// Fields still holding the template's placeholder (bootstrap refuses these).
    pub placeholders: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_name", &self.secret_name)
            .field("namespace", &self.namespace)
            .field(
                "clouds_yaml",
                &format_args!("<redacted, {} bytes>", self.clouds_yaml.len()),
            )
            .field("auth_url", &self.auth_url)
            .field("placeholders", &self.placeholders)
            .finish()
    }
}

fn field(path: &Path, field: &str, problem: impl Into<String>) -> Error {
    Error::Field {
        path: path.to_path_buf(),
        field: field.into(),
        problem: problem.into(),
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl Credentials {
    /// Reads and checks the credentials Secret.
    pub fn load(path: &Path) -> Result<Credentials, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                field(
                    path,
                    "(file)",
                    "is missing: copy clusters/example/credentials.yaml and fill in the application credential",
                )
            } else {
                Error::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks the Secret's text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Credentials, Error> {
        let s: Value = serde_yaml_ng::from_str(text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        if str_at(&s, &["kind"]) != Some("Secret") || str_at(&s, &["apiVersion"]) != Some("v1") {
            return Err(field(path, "kind", "must be a v1 Secret"));
        }
        let name = str_at(&s, &["metadata", "name"])
            .filter(|n| !n.is_empty())
            .ok_or_else(|| field(path, "metadata.name", "is missing"))?;
        let namespace = str_at(&s, &["metadata", "namespace"])
            .filter(|n| !n.is_empty())
            .ok_or_else(|| field(path, "metadata.namespace", "is missing"))?;
        if str_at(&s, &["metadata", "labels", "addons.stackhpc.com/watch"]) != Some("true") {
            return Err(field(
                path,
                "metadata.labels.addons.stackhpc.com/watch",
                "must be \"true\" so the addon provider sees credential changes",
            ));
        }
        if str_at(
            &s,
            &[
                "metadata",
                "annotations",
                "sealedsecrets.bitnami.com/managed",
            ],
        ) != Some("true")
        {
            return Err(field(
                path,
                "metadata.annotations.sealedsecrets.bitnami.com/managed",
                "must be \"true\" so sealed-secrets may take the Secret over",
            ));
        }
        let clouds_yaml = match (
            str_at(&s, &["stringData", "clouds.yaml"]),
            str_at(&s, &["data", "clouds.yaml"]),
        ) {
            (Some(t), _) => t.to_string(),
            (None, Some(b64)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.split_whitespace().collect::<String>())
                    .map_err(|e| field(path, "data.clouds.yaml", format!("is not base64: {e}")))?;
                String::from_utf8(bytes)
                    .map_err(|_| field(path, "data.clouds.yaml", "is not UTF-8 text"))?
            }
            (None, None) => {
                return Err(field(path, "stringData.clouds.yaml", "is missing"));
            }
        };
        let clouds: Value = serde_yaml_ng::from_str(&clouds_yaml).map_err(|e| {
            field(
                path,
                "stringData.clouds.yaml",
                format!("is not valid YAML: {e}"),
            )
        })?;
        let auth = clouds
            .get("clouds")
            .and_then(|c| c.get("openstack"))
            .ok_or_else(|| {
                field(
                    path,
                    "stringData.clouds.yaml: clouds.openstack",
                    "is missing (the chart reads the cloud named openstack)",
                )
            })?;
        let auth_type = str_at(auth, &["auth_type"]).unwrap_or("");
        if auth_type != "v3applicationcredential" {
            return Err(field(
                path,
                "stringData.clouds.yaml: clouds.openstack.auth_type",
                "must be v3applicationcredential (use an application credential, not a password)",
            ));
        }
        let mut placeholders = Vec::new();
        let mut auth_url = String::new();
        for k in [
            "auth_url",
            "application_credential_id",
            "application_credential_secret",
        ] {
            let v = str_at(auth, &["auth", k]).unwrap_or("");
            if v.is_empty() {
                return Err(field(
                    path,
                    &format!("stringData.clouds.yaml: clouds.openstack.auth.{k}"),
                    "is missing",
                ));
            }
            if v.contains(PLACEHOLDER) {
                placeholders.push(format!("clouds.openstack.auth.{k}"));
            }
            if k == "auth_url" {
                auth_url = v.to_string();
            }
        }
        if !(auth_url.contains(PLACEHOLDER)
            || auth_url.starts_with("https://")
            || auth_url.starts_with("http://"))
        {
            return Err(field(
                path,
                "stringData.clouds.yaml: clouds.openstack.auth.auth_url",
                format!("{auth_url:?} is not an http(s) URL"),
            ));
        }
        Ok(Credentials {
            secret_name: name.into(),
            namespace: namespace.into(),
            clouds_yaml: zeroize::Zeroizing::new(clouds_yaml),
            auth_url,
            placeholders,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  namespace: capi-self\n  labels:\n    addons.stackhpc.com/watch: \"true\"\n  annotations:\n    sealedsecrets.bitnami.com/managed: \"true\"\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth_type: v3applicationcredential\n        auth:\n          auth_url: https://keystone.example.com:5000/v3\n          application_credential_id: id1\n          application_credential_secret: s3cr3t\n";

    fn p() -> &'static Path {
        Path::new("clusters/x/credentials.yaml")
    }

    #[test]
    fn a_filled_in_secret_parses() {
        let c = Credentials::parse(GOOD, p()).unwrap();
        assert_eq!(c.secret_name, "c");
        assert_eq!(c.auth_url, "https://keystone.example.com:5000/v3");
        assert!(c.placeholders.is_empty());
    }

    #[test]
    fn debug_leaves_the_secret_out() {
        let c = Credentials::parse(GOOD, p()).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("application_credential_id"), "{shown}");
        assert!(shown.contains("<redacted, "), "{shown}");
        assert!(c.clouds_yaml.contains("s3cr3t"));
    }

    #[test]
    fn the_example_template_parses_with_placeholders() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/example/credentials.yaml"),
        )
        .unwrap();
        let c = Credentials::parse(&text, p()).unwrap();
        assert_eq!(c.placeholders.len(), 3);
    }

    #[test]
    fn data_may_be_base64() {
        use base64::Engine as _;
        let clouds = GOOD.split("clouds.yaml: |\n").nth(1).unwrap();
        let clouds: String = clouds.lines().map(|l| format!("{}\n", &l[4..])).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(clouds);
        let text = format!(
            "{}data:\n  clouds.yaml: {b64}\n",
            GOOD.split("stringData:").next().unwrap()
        );
        assert_eq!(Credentials::parse(&text, p()).unwrap().secret_name, "c");
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (
                GOOD.replace("v3applicationcredential", "password"),
                "auth_type",
            ),
            (
                GOOD.replace("addons.stackhpc.com/watch: \"true\"", "x: y"),
                "addons.stackhpc.com/watch",
            ),
            (
                GOOD.replace("sealedsecrets.bitnami.com/managed", "other"),
                "sealedsecrets.bitnami.com/managed",
            ),
            (
                GOOD.replace("          application_credential_secret: s3cr3t\n", ""),
                "application_credential_secret",
            ),
            (
                GOOD.replace("https://keystone", "ftp://keystone"),
                "auth_url",
            ),
            (GOOD.replace("kind: Secret", "kind: ConfigMap"), "kind"),
            (
                GOOD.replace("  namespace: capi-self\n", ""),
                "metadata.namespace",
            ),
        ];
        for (text, field) in cases {
            let e = Credentials::parse(&text, p()).unwrap_err().to_string();
            assert!(
                e.contains(field) && e.contains("credentials.yaml"),
                "{field}: {e}"
            );
        }
    }
}
