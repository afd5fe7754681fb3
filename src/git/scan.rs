//! The pre-commit scan: what must never reach the repository.

use std::fmt;

/// A file the commit must not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A Kubernetes Secret with `data` or `stringData`: plaintext credentials.
    PlaintextSecret {
        /// The Secret's `metadata.name`, if it has one.
        name: Option<String>,
    },
    /// A `credentials.yaml` outside `clusters/example/`.
    Credentials,
    /// A kubeconfig (by file name, or a YAML document of `kind: Config`).
    Kubeconfig,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::PlaintextSecret { name: Some(n) } => write!(
                f,
                "plaintext Secret {n:?} (data/stringData); seal it, commit only the SealedSecret"
            ),
            Violation::PlaintextSecret { name: None } => write!(
                f,
                "plaintext Secret (data/stringData); seal it, commit only the SealedSecret"
            ),
            Violation::Credentials => write!(
                f,
                "unsealed credentials file; commit credentials-sealed.yaml instead and list credentials.yaml in .gitignore"
            ),
            Violation::Kubeconfig => write!(
                f,
                "kubeconfig with cluster-admin access; never commit it (list it in .gitignore)"
            ),
        }
    }
}

/// Whether the file at `path` (relative to the repository root, `/`-separated) with `content`
/// must not be committed. The example cluster's `credentials.yaml` is a template and allowed.
pub fn scan_file(path: &str, content: &[u8]) -> Option<Violation> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let in_example = path.starts_with("clusters/example/");
    if name == "credentials.yaml" || name == "credentials.yml" {
        return (!in_example).then_some(Violation::Credentials);
    }
    if name == "kubeconfig" || name.ends_with(".kubeconfig") {
        return Some(Violation::Kubeconfig);
    }
    let is_manifest = [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if !is_manifest {
        return None;
    }
    scan_manifests(content)
}

fn scan_manifests(content: &[u8]) -> Option<Violation> {
    use serde::Deserialize;
    // Cheap pre-filter: a Secret or a kubeconfig must say so.
    let text = std::str::from_utf8(content).ok()?;
    if !text.contains("Secret") && !text.contains("Config") {
        return None;
    }
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        // Documents that do not parse (templates, other tools' files) are not manifests.
        let Ok(value) = serde_yaml_ng::Value::deserialize(document) else {
            continue;
        };
        if let Some(v) = check_object(&value) {
            return Some(v);
        }
        // `kind: List` and friends.
        if let Some(items) = value.get("items").and_then(|i| i.as_sequence())
            && let Some(v) = items.iter().find_map(check_object)
        {
            return Some(v);
        }
    }
    None
}

fn check_object(value: &serde_yaml_ng::Value) -> Option<Violation> {
    let kind = value.get("kind")?.as_str()?;
    let api_version = value.get("apiVersion").and_then(|v| v.as_str());
    match (kind, api_version) {
        ("Secret", Some("v1")) => {
            let has = |field: &str| {
                value.get(field).is_some_and(|d| match d {
                    serde_yaml_ng::Value::Null => false,
                    serde_yaml_ng::Value::Mapping(m) => !m.is_empty(),
                    _ => true,
                })
            };
            (has("data") || has("stringData")).then(|| Violation::PlaintextSecret {
                name: value
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|n| n.as_str())
                    .map(str::to_owned),
            })
        }
        ("Config", Some("v1"))
            if value.get("users").is_some() || value.get("clusters").is_some() =>
        {
            Some(Violation::Kubeconfig)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_plaintext_secrets_credentials_and_kubeconfigs() {
        let secret = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: cloud\nstringData:\n  clouds.yaml: x\n";
        assert_eq!(
            scan_file("clusters/prod/extra.yaml", secret),
            Some(Violation::PlaintextSecret {
                name: Some("cloud".into())
            })
        );
        let data = b"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{\"a\":\"eA==\"}}";
        assert!(matches!(
            scan_file("x/s.json", data),
            Some(Violation::PlaintextSecret { name: None })
        ));
        let list = b"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: l}\n  data: {a: eA==}\n";
        assert!(scan_file("l.yaml", list).is_some());
        assert_eq!(
            scan_file("clusters/prod/credentials.yaml", b"anything"),
            Some(Violation::Credentials)
        );
        assert_eq!(
            scan_file("clusters/prod/kubeconfig", b""),
            Some(Violation::Kubeconfig)
        );
        let kubeconfig = b"apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n";
        assert_eq!(
            scan_file("admin.yaml", kubeconfig),
            Some(Violation::Kubeconfig)
        );
    }

    #[test]
    fn allows_sealed_and_empty_secrets_and_the_example_template() {
        let sealed = b"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: cloud}\nspec:\n  encryptedData: {a: AgB}\n  template:\n    type: Opaque\n";
        assert_eq!(
            scan_file("clusters/prod/credentials-sealed.yaml", sealed),
            None
        );
        let empty = b"apiVersion: v1\nkind: Secret\nmetadata: {name: e}\ndata: {}\n";
        assert_eq!(scan_file("e.yaml", empty), None);
        assert_eq!(
            scan_file("clusters/example/credentials.yaml", b"stringData: {}"),
            None
        );
        assert_eq!(scan_file("README.md", b"kind: Secret\ndata: {a: b}"), None);
        assert_eq!(scan_file("broken.yaml", b"{{ template }}: ["), None);
    }
}
