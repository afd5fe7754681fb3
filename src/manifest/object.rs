use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// Where an object came from: a file (or stream) and the document in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The file, or a label such as `<stdin>`; `None` for objects built in code.
    pub file: Option<PathBuf>,
    /// Index of the YAML document in the file, from 0.
    pub document: usize,
    /// Line (from 1) where the document starts.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) => write!(
                f,
                "{} (document {}, line {})",
                p.display(),
                self.document + 1,
                self.line
            ),
            None => write!(f, "<generated> (document {})", self.document + 1),
        }
    }
}

/// Group, version and kind of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1beta1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl Gvk {
    /// Builds a GVK from an `apiVersion` (`group/version` or `version`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// The `apiVersion` string.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, Kind={}", self.api_version(), self.kind)
    }
}

/// One Kubernetes object: its fields as JSON, in their written order, plus where it came from.
///
/// Construction through [`crate::manifest::parse_str`] guarantees `apiVersion`, `kind` and
/// `metadata.name` (or `metadata.generateName`) are strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The object's fields.
    pub value: Value,
    /// Where it was read from.
    pub origin: Origin,
}

impl Object {
    /// Wraps a JSON value built in code.
    pub fn new(value: Value) -> Self {
        Object {
            value,
            origin: Origin::default(),
        }
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut v = &self.value;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str()
    }

    /// `apiVersion`, or "" when absent.
    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"]).unwrap_or("")
    }

    /// `kind`, or "" when absent.
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"]).unwrap_or("")
    }

    /// Group, version and kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }

    /// `metadata.name`, or "" when absent.
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"]).unwrap_or("")
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.str_at(&["metadata", "namespace"])
            .filter(|s| !s.is_empty())
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, namespace: &str) {
        self.metadata_mut()
            .insert("namespace".into(), Value::String(namespace.into()));
    }

    /// `metadata`, created empty when absent.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = self
            .value
            .as_object_mut()
            .expect("an Object's value is a JSON object");
        let md = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !md.is_object() {
            *md = Value::Object(Map::new());
        }
        md.as_object_mut().expect("just made an object")
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.str_at(&["metadata", "labels", key])
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.str_at(&["metadata", "annotations", key])
    }

    /// `Kind namespace/name` or `Kind name`, as users see objects in messages.
    pub fn identity(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {}/{}", self.kind(), ns, self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.identity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gvk_splits_core_and_grouped_api_versions() {
        let core = Gvk::from_api_version("v1", "ConfigMap");
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        assert_eq!(core.api_version(), "v1");
        let grouped = Gvk::from_api_version("cluster.x-k8s.io/v1beta2", "Cluster");
        assert_eq!(grouped.group, "cluster.x-k8s.io");
        assert_eq!(grouped.api_version(), "cluster.x-k8s.io/v1beta2");
    }

    #[test]
    fn identity_names_kind_namespace_and_name() {
        let mut o =
            Object::new(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}));
        assert_eq!(o.identity(), "Secret s");
        o.set_namespace("capi-self");
        assert_eq!(o.identity(), "Secret capi-self/s");
        assert_eq!(o.namespace(), Some("capi-self"));
    }
}
