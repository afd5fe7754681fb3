//! Resources as the renderer tracks them: the object plus kustomize's build-time bookkeeping
//! (previous ids, prefixes and suffixes applied, hash and generator behaviour).

use serde_json::{Map, Value};

use crate::manifest::{Gvk, Origin};

/// How a generated object combines with an existing one of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Create,
    Merge,
    Replace,
}

/// Group/version/kind + name + namespace (as written; "" when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

/// kustomize's stand-in namespace for cluster-scoped objects.
const NOT_A_NAMESPACE: &str = "_non_namespaceable_";

impl Id {
    /// The namespace kustomize compares: "default" for an unset namespace, a marker for
    /// cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if is_cluster_scoped(&self.gvk) {
            NOT_A_NAMESPACE
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    pub fn ns_equals(&self, o: &Id) -> bool {
        self.effective_namespace() == o.effective_namespace()
    }

    /// kustomize's `ResId.Equals`.
    pub fn equals(&self, o: &Id) -> bool {
        self.ns_equals(o) && self.gvk == o.gvk && self.name == o.name
    }

    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.gvk)
    }

    /// A hashable form of the id: two ids are [`Id::equals`] exactly when their keys are equal.
    pub fn key(&self) -> IdKey {
        IdKey {
            gvk: self.gvk.clone(),
            name: self.name.clone(),
            namespace: self.effective_namespace().to_string(),
        }
    }
}

/// An [`Id`] for hash maps: its GVK, name and effective namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdKey {
    gvk: Gvk,
    name: String,
    namespace: String,
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.gvk.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.gvk.kind, self.namespace, self.name)
        }
    }
}

/// A partial GVK: empty fields match anything (kustomize's `Gvk.IsSelected`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GvkSel {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GvkSel {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        GvkSel {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    pub fn selects(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }
}

/// Kinds of the Kubernetes API that are cluster-scoped (kustomize knows them from its built-in
/// OpenAPI schema; every other kind, custom resources included, is treated as namespaced).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "TokenReview"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("extensions", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
];

pub fn is_cluster_scoped(gvk: &Gvk) -> bool {
    // The kind first: it tells most kinds apart without comparing groups.
    CLUSTER_SCOPED
        .iter()
        .any(|(g, k)| *k == gvk.kind && *g == gvk.group)
}

/// One object during a build.
#[derive(Debug, Clone)]
pub struct Res {
    pub value: Value,
    pub origin: Origin,
    /// Ids the object had before its current one, oldest first.
    pub prev: Vec<Id>,
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// Generated with a name hash still to add.
    pub needs_hash: bool,
    pub behavior: Behavior,
    /// With `buildMetadata`: where the object came from (kustomize's `config.kubernetes.io/origin`).
    pub build_origin: Option<BuildOrigin>,
    /// With `buildMetadata`: the transformers that ran over it, in order.
    pub transformations: Vec<BuildOrigin>,
    /// Names of the `vars` whose `objref` is this object (kustomize's refVarNames).
    pub ref_vars: Vec<String>,
    /// JSON pointers of plain (untagged) scalars a replacement created: kustomize prints them
    /// by their text's YAML type unless a strategic-merge patch (or var expansion, in its
    /// fields) turns them into strings; a JSON patch types them for good.
    pub untagged: Vec<String>,
    /// Text a replacement wrote under a type tag that cannot decode it (kustomize keeps the
    /// field's tag): kustomize fails when it next decodes the object, unless a later write
    /// replaced the text.
    pub mistyped: Vec<Mistyped>,
}

/// See [`Res::mistyped`].
#[derive(Debug, Clone)]
pub struct Mistyped {
    /// JSON pointer of the field.
    pub at: String,
    /// The tag the field kept (`!!int`, `!!float`, `!!bool`).
    pub tag: &'static str,
    /// The text written.
    pub text: String,
    /// The kustomization and the field of the replacement that wrote it.
    pub file: std::path::PathBuf,
    pub field: String,
}

impl Res {
    /// Whether the field at JSON pointer `at` holds text its kept tag cannot decode.
    pub fn is_mistyped_at(&self, at: &str) -> bool {
        self.live_mistyped().iter().any(|(p, _)| p == at)
    }

    /// The fields that still hold text their kept tag cannot decode, with the tag.
    pub fn live_mistyped(&self) -> Vec<(String, &'static str)> {
        self.mistyped
            .iter()
            .filter(|m| self.value.pointer(&m.at).and_then(Value::as_str) == Some(&m.text))
            .map(|m| (m.at.clone(), m.tag))
            .collect()
    }

    /// The first mistyped field that still holds its text: kustomize cannot decode the object.
    pub fn undecodable(&self) -> Option<&Mistyped> {
        self.mistyped
            .iter()
            .find(|m| self.value.pointer(&m.at).and_then(Value::as_str) == Some(m.text.as_str()))
    }
}

/// A resource's or transformer's origin, as kustomize records it: paths are the relative paths
/// as written, joined from the built folder down (`../base/dep.yaml`), cleaned as Go's
/// `filepath.Join` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOrigin {
    /// Read from this file.
    File(String),
    /// Made or changed by a builtin generator or transformer configured in this kustomization.
    Builtin {
        configured_in: String,
        kind: &'static str,
    },
    /// Changed by a builtin plugin configured in a `transformers` entry: the file holding its
    /// configuration (the kustomization file for an inline one) and the configuration's name.
    Plugin {
        configured_in: String,
        kind: String,
        name: String,
    },
}

impl Res {
    pub fn new(value: Value, origin: Origin) -> Self {
        Res {
            value,
            origin,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: Behavior::Create,
            build_origin: None,
            transformations: Vec::new(),
            ref_vars: Vec::new(),
            untagged: Vec::new(),
            mistyped: Vec::new(),
        }
    }

    fn str_at(&self, path: &[&str]) -> &str {
        let mut v = &self.value;
        for p in path {
            match v.get(p) {
                Some(x) => v = x,
                None => return "",
            }
        }
        v.as_str().unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }

    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }

    pub fn namespace(&self) -> &str {
        self.str_at(&["metadata", "namespace"])
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.str_at(&["apiVersion"]), self.kind())
    }

    pub fn cur_id(&self) -> Id {
        Id {
            gvk: self.gvk(),
            name: self.name().to_string(),
            namespace: self.namespace().to_string(),
        }
    }

    pub fn org_id(&self) -> Id {
        self.prev.first().cloned().unwrap_or_else(|| self.cur_id())
    }

    pub fn store_prev(&mut self) {
        let id = self.cur_id();
        self.prev.push(id);
    }

    /// The current id or any previous one satisfies `f`.
    pub fn any_id(&self, f: impl Fn(&Id) -> bool) -> bool {
        f(&self.cur_id()) || self.prev.iter().any(f)
    }

    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = self.value.as_object_mut().expect("resources are mappings");
        let md = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !md.is_object() {
            *md = Value::Object(Map::new());
        }
        md.as_object_mut().expect("just made a mapping")
    }

    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.into()));
    }

    pub fn set_namespace(&mut self, ns: &str) {
        if ns.is_empty() {
            self.metadata_mut().remove("namespace");
        } else {
            self.metadata_mut()
                .insert("namespace".into(), Value::String(ns.into()));
        }
    }

    pub fn set_kind(&mut self, kind: &str) {
        if let Some(o) = self.value.as_object_mut() {
            o.insert("kind".into(), Value::String(kind.into()));
        }
    }

    /// A string map under `metadata` (`labels` or `annotations`).
    pub fn meta_map(&self, field: &str) -> Vec<(String, String)> {
        self.value
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), scalar_string(v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A scalar as kustomize sees it in a string map.
/// The positions of the resources of `list` whose current or a previous id equals `id`.
pub fn positions_of(list: &[Res], id: &Id) -> Vec<usize> {
    list.iter()
        .enumerate()
        .filter(|(_, r)| r.any_id(|i| i.equals(id)))
        .map(|(i, _)| i)
        .collect()
}

pub fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
