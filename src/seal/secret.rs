use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::{Error, Scope};
use crate::manifest::{Object, Origin};

/// A Secret's values by key, each in a buffer wiped when dropped.
pub type SecretData = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// A Kubernetes Secret to seal: its metadata, type and decoded values.
///
/// `data` (base64) and `stringData` (text) are merged into [`Secret::data`], `stringData`
/// winning on a shared key as the API server does. `Debug` shows keys, never values.
#[derive(Clone)]
pub struct Secret {
    /// `metadata` as written (name, namespace, labels, annotations...).
    pub metadata: Map<String, Value>,
    /// `type`, e.g. `Opaque`; `None` leaves it to the API server's default.
    pub secret_type: Option<String>,
    /// `immutable`.
    pub immutable: Option<bool>,
    /// The decoded values.
    pub data: SecretData,
    /// Where the Secret came from.
    pub origin: Origin,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("secret_type", &self.secret_type)
            .field("immutable", &self.immutable)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("origin", &self.origin)
            .finish()
    }
}

impl Secret {
    /// A Secret built in code: name, namespace (if any) and values.
    pub fn new(name: &str, namespace: Option<&str>, data: SecretData) -> Self {
        let mut metadata = Map::new();
        metadata.insert("name".into(), Value::String(name.into()));
        if let Some(ns) = namespace {
            metadata.insert("namespace".into(), Value::String(ns.into()));
        }
        Secret {
            metadata,
            secret_type: None,
            immutable: None,
            data,
            origin: Origin::default(),
        }
    }

    /// Reads the Secrets of a multi-document YAML text (every document must be a Secret).
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Vec<Secret>, Error> {
        crate::manifest::parse_str(text, file)
            .map_err(Error::Manifest)?
            .into_iter()
            .map(Secret::from_object)
            .collect()
    }

    /// Takes a `v1` Secret object apart; the plaintext strings inside `object` are wiped.
    pub fn from_object(mut object: Object) -> Result<Secret, Error> {
        let result = Self::read(&object);
        wipe(&mut object.value);
        result
    }

    fn read(object: &Object) -> Result<Secret, Error> {
        let origin = object.origin.clone();
        if object.api_version() != "v1" || object.kind() != "Secret" {
            return Err(Error::NotASecret {
                origin,
                found: format!(
                    "{} {} {}",
                    object.api_version(),
                    object.kind(),
                    object.name()
                ),
            });
        }
        let invalid = |field: String, problem: &str| Error::InvalidField {
            origin: origin.clone(),
            field,
            problem: problem.to_string(),
        };
        let mut data = SecretData::new();
        for (field, base64) in [("data", true), ("stringData", false)] {
            match object.value.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (k, v) in map {
                        let Value::String(s) = v else {
                            return Err(invalid(
                                format!("{field}.{k}"),
                                "must be a string: quote the value",
                            ));
                        };
                        let bytes = if base64 {
                            let compact: Zeroizing<String> =
                                Zeroizing::new(s.chars().filter(|c| !c.is_whitespace()).collect());
                            Zeroizing::new(STANDARD.decode(compact.as_bytes()).map_err(|_| {
                                invalid(
                                    format!("{field}.{k}"),
                                    "is not valid base64: put plain text under `stringData` instead",
                                )
                            })?)
                        } else {
                            Zeroizing::new(s.as_bytes().to_vec())
                        };
                        data.insert(k.clone(), bytes);
                    }
                }
                Some(_) => {
                    return Err(invalid(
                        field.to_string(),
                        "must be a mapping of keys to values",
                    ));
                }
            }
        }
        let secret_type = match object.value.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
            Some(_) => return Err(invalid("type".into(), "must be a string such as Opaque")),
        };
        let immutable = match object.value.get("immutable") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(invalid("immutable".into(), "must be true or false")),
        };
        let metadata = object
            .value
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(Secret {
            metadata,
            secret_type,
            immutable,
            data,
            origin,
        })
    }

    /// `metadata.name`, or "".
    pub fn name(&self) -> &str {
        self.metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `metadata.namespace`, if set and not empty.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// The scope the Secret's annotations ask for.
    pub fn annotated_scope(&self) -> Scope {
        Scope::from_annotations(|k| self.annotation(k).map(str::to_string))
    }

    /// Whether the Secret carries a scope annotation at all.
    pub fn has_scope_annotation(&self) -> bool {
        [
            super::CLUSTER_WIDE_ANNOTATION,
            super::NAMESPACE_WIDE_ANNOTATION,
        ]
        .iter()
        .any(|k| self.annotation(k).is_some())
    }
}

/// Overwrites the plaintext of a Secret object (`data`, `stringData`, and any last-applied
/// annotation, which embeds a copy of the whole object) before it is dropped.
fn wipe(value: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = value.get_mut(field) {
            for v in map.values_mut() {
                if let Value::String(s) = v {
                    s.zeroize();
                }
            }
        }
    }
    if let Some(Value::Object(annotations)) = value
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        for (k, v) in annotations.iter_mut() {
            if k.ends_with("last-applied-configuration")
                && let Value::String(s) = v
            {
                s.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Secret, Error> {
        Secret::parse(text, Some(Path::new("s.yaml"))).map(|mut v| v.remove(0))
    }

    #[test]
    fn decodes_data_and_string_data_string_data_winning() {
        let s = one("apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: n}\ntype: Opaque\nimmutable: true\ndata:\n  x: aGVs\n    bG8=\n  y: b2xk\nstringData:\n  y: new\n  z: ''\n").unwrap();
        assert_eq!(&s.data["x"][..], b"hello");
        assert_eq!(&s.data["y"][..], b"new");
        assert_eq!(&s.data["z"][..], b"");
        assert_eq!(s.secret_type.as_deref(), Some("Opaque"));
        assert_eq!(s.immutable, Some(true));
        assert_eq!((s.name(), s.namespace()), ("a", Some("n")));
        assert!(!format!("{s:?}").contains("hello"));
    }

    #[test]
    fn rejects_what_is_not_a_secret() {
        let e = one("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.yaml (document 1, line 1): v1 ConfigMap a is not a Secret: seal expects `apiVersion: v1` and `kind: Secret`"
        );
        let e = one("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\ndata: {k: '%%%'}\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("field `data.k` is not valid base64"),
            "{e}"
        );
        let e = one("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {port: 5}\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("`stringData.port` must be a string"),
            "{e}"
        );
    }

    #[test]
    fn wipes_plaintext_of_the_object() {
        let mut v = serde_json::json!({"data": {"a": "c2VjcmV0"}, "stringData": {"b": "secret"},
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{secret}"}}});
        wipe(&mut v);
        assert!(!v.to_string().contains("secret"), "{v}");
        assert!(!v.to_string().contains("c2VjcmV0"), "{v}");
    }
}
