use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{
    API_VERSION, CLUSTER_WIDE_ANNOTATION, Error, KIND, NAMESPACE_WIDE_ANNOTATION, Scope,
    SealingKey, Secret, SecretData, UnsealingKey,
};
use crate::manifest::Object;

/// Annotations kubectl and kubecfg add with a full copy of the applied object: sealing them
/// into the template would put the plaintext in git.
const LAST_APPLIED: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// Metadata the API server owns; a Secret read back from a cluster has it, a template must not.
const SERVER_METADATA: [&str; 9] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
    "ownerReferences",
];

/// Choices for [`seal`]; the defaults take everything from the Secret.
#[derive(Debug, Clone, Default)]
pub struct SealOptions {
    /// The scope; `None` takes it from the Secret's annotations (strict without them).
    pub scope: Option<Scope>,
    /// Seal under this name instead of the Secret's.
    pub name: Option<String>,
    /// Seal into this namespace instead of the Secret's.
    pub namespace: Option<String>,
    /// Seal a Secret without values (kubeseal's `--allow-empty-data`) instead of refusing it.
    pub allow_empty_data: bool,
}

/// Seals a Secret into a SealedSecret object laid out as `kubeseal -o yaml` lays it out:
/// name, namespace and scope annotation in `metadata`; every value (from `data` and
/// `stringData`) in `spec.encryptedData`; the Secret's own metadata (without server-owned
/// fields, owner references and last-applied copies), `type` and `immutable` in `spec.template`.
/// Keys are sorted at every level, as kubeseal's YAML encoder sorts them.
///
/// # Errors
///
/// [`Error::InvalidField`] when the Secret has no name, [`Error::NoNamespace`] when its scope
/// binds a namespace and it has none, [`Error::EmptyData`] when it has no values,
/// [`Error::Random`] or [`Error::Encrypt`] when encryption fails. Each names the Secret and
/// its file.
pub fn seal(secret: &Secret, key: &SealingKey, options: &SealOptions) -> Result<Object, Error> {
    let name = options.name.as_deref().unwrap_or(secret.name()).to_string();
    if name.is_empty() {
        return Err(Error::InvalidField {
            origin: secret.origin.clone(),
            field: "metadata.name".into(),
            problem: "is missing: give the Secret a name or pass --name".into(),
        });
    }
    let namespace = options
        .namespace
        .as_deref()
        .or(secret.namespace())
        .map(str::to_string);
    let scope = options.scope.unwrap_or_else(|| secret.annotated_scope());
    if scope != Scope::ClusterWide && namespace.is_none() {
        return Err(Error::NoNamespace {
            origin: secret.origin.clone(),
            name,
            scope,
        });
    }
    if secret.data.is_empty() && !options.allow_empty_data {
        return Err(Error::EmptyData {
            origin: secret.origin.clone(),
            name,
        });
    }
    let label = scope.label(namespace.as_deref().unwrap_or(""), &name);
    let mut encrypted = Map::new();
    for (k, v) in &secret.data {
        encrypted.insert(k.clone(), Value::String(seal_value(key, v, &label)?));
    }

    let template_metadata = template_metadata(secret, &name, namespace.as_deref(), scope);
    let mut template = Map::new();
    if let Some(immutable) = secret.immutable {
        template.insert("immutable".into(), Value::Bool(immutable));
    }
    template.insert("metadata".into(), sorted(Value::Object(template_metadata)));
    if let Some(t) = &secret.secret_type {
        template.insert("type".into(), Value::String(t.clone()));
    }

    let mut metadata = Map::new();
    if let Some(a) = scope.annotation() {
        metadata.insert("annotations".into(), json!({ a: "true" }));
    }
    metadata.insert("name".into(), Value::String(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), Value::String(ns));
    }
    let value = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "encryptedData": encrypted,
            "template": template,
        },
    });
    Ok(Object {
        value,
        origin: secret.origin.clone(),
    })
}

fn seal_value(key: &SealingKey, value: &[u8], label: &[u8]) -> Result<String, Error> {
    Ok(STANDARD.encode(key.encrypt(value, label)?))
}

fn template_metadata(
    secret: &Secret,
    name: &str,
    namespace: Option<&str>,
    scope: Scope,
) -> Map<String, Value> {
    let mut md = secret.metadata.clone();
    for k in SERVER_METADATA {
        md.remove(k);
    }
    md.insert("name".into(), Value::String(name.into()));
    match namespace {
        Some(ns) => md.insert("namespace".into(), Value::String(ns.into())),
        None => md.remove("namespace"),
    };
    let mut annotations = match md.remove("annotations") {
        Some(Value::Object(a)) => a,
        _ => Map::new(),
    };
    for k in LAST_APPLIED
        .iter()
        .chain(&[CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION])
    {
        annotations.remove(*k);
    }
    if let Some(a) = scope.annotation() {
        annotations.insert(a.into(), Value::String("true".into()));
    }
    if !annotations.is_empty() {
        md.insert("annotations".into(), Value::Object(annotations));
    }
    if md
        .get("labels")
        .is_some_and(|l| l.as_object().is_some_and(Map::is_empty))
    {
        md.remove("labels");
    }
    md
}

/// Objects with their keys sorted at every level (kubeseal's YAML has them so).
pub(super) fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Seals one value as `kubeseal --raw` does and returns it base64-encoded, ready for
/// `spec.encryptedData.<key>`. Strict scope needs the namespace and name, namespace-wide the
/// namespace.
pub fn seal_raw(
    value: &[u8],
    key: &SealingKey,
    scope: Scope,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<String, Error> {
    let namespace = namespace.filter(|s| !s.is_empty());
    let name = name.filter(|s| !s.is_empty());
    if scope != Scope::ClusterWide && namespace.is_none() {
        return Err(Error::RawNeeds {
            scope,
            what: "--namespace",
        });
    }
    if scope == Scope::Strict && name.is_none() {
        return Err(Error::RawNeeds {
            scope,
            what: "--name",
        });
    }
    let label = scope.label(namespace.unwrap_or(""), name.unwrap_or(""));
    seal_value(key, value, &label)
}

/// The scope a SealedSecret's values are sealed under, as the controller reads it: from the
/// annotations of `spec.template.metadata`.
pub fn sealed_scope(sealed: &Object) -> Scope {
    Scope::from_annotations(|k| {
        sealed
            .value
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn check_sealed(sealed: &Object) -> Result<(), Error> {
    if sealed.api_version() != API_VERSION || sealed.kind() != KIND {
        return Err(Error::NotASealedSecret {
            origin: sealed.origin.clone(),
            found: format!(
                "{} {} {}",
                sealed.api_version(),
                sealed.kind(),
                sealed.name()
            ),
        });
    }
    Ok(())
}

/// Opens every value of a SealedSecret with the controller's private key, binding them to the
/// SealedSecret's namespace, name and scope as the controller does.
pub fn unseal(sealed: &Object, key: &UnsealingKey) -> Result<SecretData, Error> {
    check_sealed(sealed)?;
    let label = sealed_scope(sealed).label(sealed.namespace().unwrap_or(""), sealed.name());
    let mut out = SecretData::new();
    if let Some(Value::Object(data)) = sealed.value.pointer("/spec/encryptedData") {
        for (k, v) in data {
            let fail = |source: Error| Error::Unseal {
                origin: sealed.origin.clone(),
                key: k.clone(),
                source: Box::new(source),
            };
            let bytes = STANDARD
                .decode(v.as_str().unwrap_or_default())
                .map_err(|_| fail(Error::Decrypt("not base64".into())))?;
            out.insert(k.clone(), key.decrypt(&bytes, &label).map_err(fail)?);
        }
    }
    Ok(out)
}

/// Choices for [`merge_into`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions<'a> {
    /// The scope; it must be the SealedSecret's. `None` takes the Secret's scope annotations if
    /// it has any, else the SealedSecret's scope.
    pub scope: Option<Scope>,
    /// What the SealedSecret's values currently unseal to, when known (e.g. read from the
    /// Secret the controller made). Keys whose value is unchanged keep their sealed bytes.
    pub current: Option<&'a SecretData>,
}

/// The result of [`merge_into`].
#[derive(Debug, Clone)]
pub struct Merged {
    /// The updated SealedSecret, fields in the existing file's order.
    pub object: Object,
    /// Keys sealed anew (new or changed values).
    pub resealed: Vec<String>,
    /// Keys of the Secret whose value was known to be unchanged and kept their sealed bytes.
    pub unchanged: Vec<String>,
}

/// Seals a Secret's values into an existing SealedSecret, as `kubeseal --merge-into` does but
/// touching only what changed, so a diff shows just the rotated values:
/// - the name, namespace and scope are the SealedSecret's (a scope asked for otherwise is an
///   error: values of one SealedSecret share a scope);
/// - a key whose value [`MergeOptions::current`] shows unchanged keeps its sealed bytes; every
///   other key of the Secret is sealed anew; keys only in the SealedSecret stay as they are;
/// - the Secret's labels and annotations are merged into the template's.
pub fn merge_into(
    existing: &Object,
    secret: &Secret,
    key: &SealingKey,
    options: &MergeOptions<'_>,
) -> Result<Merged, Error> {
    check_sealed(existing)?;
    let name = existing.name().to_string();
    let namespace = existing.namespace().map(str::to_string);
    let scope = sealed_scope(existing);
    let wanted = options.scope.unwrap_or_else(|| {
        if secret.has_scope_annotation() {
            secret.annotated_scope()
        } else {
            scope
        }
    });
    if wanted != scope {
        return Err(Error::ScopeMismatch {
            origin: existing.origin.clone(),
            existing: scope,
            wanted,
        });
    }
    if scope != Scope::ClusterWide && namespace.is_none() {
        return Err(Error::NoNamespace {
            origin: existing.origin.clone(),
            name,
            scope,
        });
    }
    if secret.data.is_empty() {
        return Err(Error::EmptyData {
            origin: secret.origin.clone(),
            name: secret.name().to_string(),
        });
    }
    let label = scope.label(namespace.as_deref().unwrap_or(""), &name);

    let mut value = existing.value.clone();
    if !value.is_object() {
        value = Value::Object(Map::new());
    }
    let root = value.as_object_mut().expect("made an object");
    let spec = object_at(root, "spec");
    let encrypted = object_at(spec, "encryptedData");
    let was_sorted = encrypted.keys().is_sorted();
    let mut resealed = Vec::new();
    let mut unchanged = Vec::new();
    for (k, v) in &secret.data {
        let same = encrypted.contains_key(k)
            && options
                .current
                .and_then(|c| c.get(k))
                .is_some_and(|old| old[..] == v[..]);
        if same {
            unchanged.push(k.clone());
        } else {
            encrypted.insert(k.clone(), Value::String(seal_value(key, v, &label)?));
            resealed.push(k.clone());
        }
    }
    if was_sorted {
        encrypted.sort_keys();
    }

    let template_md = object_at(object_at(spec, "template"), "metadata");
    for field in ["labels", "annotations"] {
        let Some(Value::Object(incoming)) = secret.metadata.get(field) else {
            continue;
        };
        let target = object_at(template_md, field);
        let was_sorted = target.keys().is_sorted();
        for (k, v) in incoming {
            let skip = field == "annotations"
                && (LAST_APPLIED.contains(&k.as_str())
                    || k == CLUSTER_WIDE_ANNOTATION
                    || k == NAMESPACE_WIDE_ANNOTATION);
            if !skip && target.get(k) != Some(v) {
                target.insert(k.clone(), v.clone());
            }
        }
        if was_sorted {
            target.sort_keys();
        }
        if target.is_empty() {
            template_md.remove(field);
        }
    }
    Ok(Merged {
        object: Object {
            value,
            origin: existing.origin.clone(),
        },
        resealed,
        unchanged,
    })
}

/// The mapping at `field` of `value`, created (or replacing a non-mapping) when needed.
fn object_at<'v>(map: &'v mut Map<String, Value>, field: &str) -> &'v mut Map<String, Value> {
    let entry = map
        .entry(field.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object")
}

/// A SealedSecret as YAML, starting with `---` and with quoted values in double quotes, as
/// kubeseal's output has them (so re-sealing a kubeseal-made file does not change every
/// quoted line).
pub fn to_yaml(sealed: &Object) -> String {
    let yaml = crate::manifest::to_yaml(std::slice::from_ref(sealed));
    let mut out = String::with_capacity(yaml.len() + 4);
    out.push_str("---\n");
    // Lines of a block scalar (`key: |`) are content, not `key: value` pairs.
    let mut block_indent: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if block_indent.is_some_and(|i| indent > i || line.trim().is_empty()) {
            out.push_str(line);
        } else {
            block_indent = None;
            let value = line.split_once(": ").map_or("", |(_, v)| v);
            if value.starts_with('|') || value.starts_with('>') {
                block_indent = Some(indent);
            }
            out.push_str(&double_quoted(line).unwrap_or_else(|| line.to_string()));
        }
        out.push('\n');
    }
    out
}

/// Fields of Kubernetes' ObjectMeta in the order Go writes them.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// A SealedSecret as JSON, laid out as `kubeseal -o json` writes it: fields in the order of
/// the Go types (kind, apiVersion, metadata, spec: template, data, encryptedData), maps sorted,
/// two-space indentation, `<`, `>` and `&` escaped, and a final newline.
pub fn to_json(sealed: &Object) -> String {
    let v = &sealed.value;
    let mut top = Map::new();
    for k in ["kind", "apiVersion"] {
        if let Some(x) = v.get(k) {
            top.insert(k.into(), x.clone());
        }
    }
    if let Some(md) = v.get("metadata") {
        top.insert("metadata".into(), go_ordered(md, OBJECT_META));
    }
    if let Some(spec) = v.get("spec") {
        let mut out = Map::new();
        if let Some(t) = spec.get("template") {
            let mut template = Map::new();
            if let Some(md) = t.get("metadata") {
                template.insert("metadata".into(), go_ordered(md, OBJECT_META));
            }
            for k in ["type", "immutable", "data"] {
                if let Some(x) = t.get(k) {
                    template.insert(k.into(), sorted(x.clone()));
                }
            }
            out.insert("template".into(), Value::Object(template));
        }
        for k in ["data", "encryptedData"] {
            if let Some(x) = spec.get(k) {
                out.insert(k.into(), sorted(x.clone()));
            }
        }
        top.insert("spec".into(), Value::Object(out));
    }
    if let Some(status) = v.get("status") {
        top.insert("status".into(), sorted(status.clone()));
    }
    let mut text =
        serde_json::to_string_pretty(&Value::Object(top)).expect("a JSON value always serializes");
    // Go's encoder escapes these inside strings (outside strings JSON has none of them).
    for (c, escaped) in [
        ('<', "\\u003c"),
        ('>', "\\u003e"),
        ('&', "\\u0026"),
        ('\u{2028}', "\\u2028"),
        ('\u{2029}', "\\u2029"),
    ] {
        if text.contains(c) {
            text = text.replace(c, escaped);
        }
    }
    text.push('\n');
    text
}

/// An object with the `order` fields first, in that order, then any others sorted; nested
/// maps sorted.
fn go_ordered(value: &Value, order: &[&str]) -> Value {
    let Some(map) = value.as_object() else {
        return value.clone();
    };
    let mut out = Map::new();
    for k in order {
        if let Some(x) = map.get(*k) {
            out.insert((*k).into(), sorted(x.clone()));
        }
    }
    let mut rest: Vec<_> = map
        .iter()
        .filter(|(k, _)| !order.contains(&k.as_str()))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    for (k, x) in rest {
        out.insert(k.clone(), sorted(x.clone()));
    }
    Value::Object(out)
}

/// `key: 'value'` as `key: "value"`, when the line is exactly one single-quoted scalar value.
fn double_quoted(line: &str) -> Option<String> {
    let (key, value) = line.split_once(": '")?;
    let body = value.strip_suffix('\'')?;
    if key.contains('\'') || key.contains('"') {
        return None;
    }
    // Inside single quotes, `''` is a quote and nothing else may be a lone quote.
    let text = body.replace("''", "\u{0}");
    if text.contains('\'') || body.contains('\u{0}') {
        return None;
    }
    let text = text.replace('\u{0}', "'");
    let mut quoted = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            c => quoted.push(c),
        }
    }
    Some(format!("{key}: \"{quoted}\""))
}

#[cfg(test)]
mod tests {
    use super::super::crypto::tests::test_keys;
    use super::*;
    use std::path::Path;

    fn keys() -> (SealingKey, UnsealingKey) {
        let (cert, key) = test_keys();
        (
            SealingKey::from_pem(cert.as_bytes(), "cert").unwrap(),
            UnsealingKey::from_pem(key.as_bytes(), "key").unwrap(),
        )
    }

    fn secret(text: &str) -> Secret {
        Secret::parse(text, Some(Path::new("s.yaml")))
            .unwrap()
            .remove(0)
    }

    const FULL: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: capi\n  uid: 1234\n  resourceVersion: '9'\n  creationTimestamp: '2024-01-01T00:00:00Z'\n  ownerReferences: [{apiVersion: v1, kind: X, name: y, uid: z}]\n  labels: {z: '1', a: '2'}\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"data\":\"leak\"}'\n    note: kept\ntype: Opaque\nimmutable: true\ndata:\n  password: aHVudGVyMg==\nstringData:\n  user: admin\n";

    #[test]
    fn seals_as_kubeseal_lays_it_out() {
        let (sk, uk) = keys();
        let sealed = seal(&secret(FULL), &sk, &SealOptions::default()).unwrap();
        let y = to_yaml(&sealed);
        let redacted: String = y
            .lines()
            .map(|l| match l.split_once(": ") {
                Some((k, v)) if v.len() > 300 => format!("{k}: SEALED\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        assert_eq!(
            double_quoted("  a: 'it''s \\ \"x\"'").as_deref(),
            Some("  a: \"it's \\\\ \\\"x\\\"\"")
        );
        assert_eq!(double_quoted("  a: 'x' 'y'"), None);
        let block = Object::new(json!({"a": "line: 'q'\nmore\n", "b": "true"}));
        assert_eq!(
            to_yaml(&block),
            "---\na: |\n  line: 'q'\n  more\nb: \"true\"\n"
        );
        assert_eq!(
            redacted,
            "---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: creds\n  namespace: capi\nspec:\n  encryptedData:\n    password: SEALED\n    user: SEALED\n  template:\n    immutable: true\n    metadata:\n      annotations:\n        note: kept\n      labels:\n        a: \"2\"\n        z: \"1\"\n      name: creds\n      namespace: capi\n    type: Opaque\n"
        );
        assert!(!y.contains("leak") && !y.contains("hunter2") && !y.contains("admin"));
        let data = unseal(&sealed, &uk).unwrap();
        assert_eq!(&data["password"][..], b"hunter2");
        assert_eq!(&data["user"][..], b"admin");
    }

    #[test]
    fn scopes_bind_labels_and_annotations() {
        let (sk, uk) = keys();
        let s = secret(FULL);
        for scope in [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide] {
            let options = SealOptions {
                scope: Some(scope),
                ..Default::default()
            };
            let sealed = seal(&s, &sk, &options).unwrap();
            assert_eq!(sealed_scope(&sealed), scope);
            assert_eq!(
                sealed.annotation(CLUSTER_WIDE_ANNOTATION).is_some(),
                scope == Scope::ClusterWide
            );
            assert!(unseal(&sealed, &uk).is_ok());
            // Another name: only strict scope refuses it.
            let mut renamed = sealed.clone();
            renamed.metadata_mut()["name"] = "other".into();
            assert_eq!(
                unseal(&renamed, &uk).is_ok(),
                scope != Scope::Strict,
                "{scope}"
            );
            let mut moved = sealed.clone();
            moved.set_namespace("elsewhere");
            assert_eq!(unseal(&moved, &uk).is_ok(), scope == Scope::ClusterWide);
        }
        let annotated = secret(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  annotations: {sealedsecrets.bitnami.com/cluster-wide: 'true'}\nstringData: {k: v}\n",
        );
        let sealed = seal(&annotated, &sk, &SealOptions::default()).unwrap();
        assert_eq!(sealed_scope(&sealed), Scope::ClusterWide);
        assert_eq!(sealed.namespace(), None);
    }

    #[test]
    fn refuses_empty_data_and_missing_namespace() {
        let (sk, _) = keys();
        let e = seal(
            &secret("apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: n}\n"),
            &sk,
            &SealOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::EmptyData { .. }), "{e}");
        let e = seal(
            &secret("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {k: v}\n"),
            &sk,
            &SealOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.yaml (document 1, line 1): Secret a has no namespace: set metadata.namespace or pass --namespace (strict scope binds the sealed values to a namespace)"
        );
    }

    #[test]
    fn raw_values_need_what_their_scope_binds() {
        let (sk, uk) = keys();
        let v = seal_raw(b"x", &sk, Scope::Strict, Some("n"), Some("a")).unwrap();
        let bytes = STANDARD.decode(v).unwrap();
        assert_eq!(&uk.decrypt(&bytes, b"n/a").unwrap()[..], b"x");
        assert!(seal_raw(b"x", &sk, Scope::Strict, Some("n"), None).is_err());
        assert!(seal_raw(b"x", &sk, Scope::NamespaceWide, None, None).is_err());
        let v = seal_raw(b"x", &sk, Scope::ClusterWide, None, None).unwrap();
        assert!(uk.decrypt(&STANDARD.decode(v).unwrap(), b"").is_ok());
    }

    #[test]
    fn merge_reseals_only_changed_keys() {
        let (sk, uk) = keys();
        let old = secret(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: c, namespace: n, labels: {a: '1'}}\nstringData: {id: one, secret: s1, keep: k}\n",
        );
        let sealed = seal(&old, &sk, &SealOptions::default()).unwrap();
        let new = secret(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: ignored, namespace: ignored, labels: {b: '2'}}\nstringData: {id: one, secret: s2, extra: e}\n",
        );
        let merged = merge_into(
            &sealed,
            &new,
            &sk,
            &MergeOptions {
                current: Some(&old.data),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(merged.resealed, ["extra", "secret"]);
        assert_eq!(merged.unchanged, ["id"]);
        let before = &sealed.value["spec"]["encryptedData"];
        let after = &merged.object.value["spec"]["encryptedData"];
        assert_eq!(before["id"], after["id"]);
        assert_eq!(before["keep"], after["keep"]);
        assert_ne!(before["secret"], after["secret"]);
        assert_eq!(
            after.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["extra", "id", "keep", "secret"]
        );
        assert_eq!(merged.object.name(), "c");
        assert_eq!(
            merged.object.value["spec"]["template"]["metadata"]["labels"],
            json!({"a": "1", "b": "2"})
        );
        let data = unseal(&merged.object, &uk).unwrap();
        assert_eq!(&data["secret"][..], b"s2");
        assert_eq!(&data["keep"][..], b"k");

        // Without knowing the current values, every key of the Secret is sealed anew.
        let merged = merge_into(&sealed, &new, &sk, &MergeOptions::default()).unwrap();
        assert_eq!(merged.resealed, ["extra", "id", "secret"]);
    }

    #[test]
    fn merge_keeps_the_file_scope_and_refuses_another() {
        let (sk, uk) = keys();
        let ns_wide = secret(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  namespace: n\n  annotations: {sealedsecrets.bitnami.com/namespace-wide: 'true'}\nstringData: {a: b}\n",
        );
        let sealed = seal(&ns_wide, &sk, &SealOptions::default()).unwrap();
        let plain =
            secret("apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {a: z}\n");
        let merged = merge_into(&sealed, &plain, &sk, &MergeOptions::default()).unwrap();
        assert_eq!(sealed_scope(&merged.object), Scope::NamespaceWide);
        assert_eq!(&unseal(&merged.object, &uk).unwrap()["a"][..], b"z");
        let e = merge_into(
            &sealed,
            &plain,
            &sk,
            &MergeOptions {
                scope: Some(Scope::Strict),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("namespace-wide-scoped but strict scope"),
            "{e}"
        );
        let not_sealed =
            Object::new(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}));
        assert!(matches!(
            merge_into(&not_sealed, &plain, &sk, &MergeOptions::default()),
            Err(Error::NotASealedSecret { .. })
        ));
    }
}
