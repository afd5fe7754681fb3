//! OpenAPI for the renderer: `crds` (OpenAPI definitions whose `x-kubernetes-*` extensions add
//! field specs for custom kinds) and `openapi` (a schema whose patch strategies and merge keys
//! drive strategic merges on custom kinds).

use serde_json::{Map, Value};

use super::fieldspec::{Config, FieldSpec, NameBackRef};
use super::res::GvkSel;
use crate::manifest::Gvk;

const X_ANNOTATION: &str = "x-kubernetes-annotation";
const X_LABEL_SELECTOR: &str = "x-kubernetes-label-selector";
const X_IDENTITY: &str = "x-kubernetes-identity";
const X_VERSION: &str = "x-kubernetes-object-ref-api-version";
const X_KIND: &str = "x-kubernetes-object-ref-kind";
const X_NAME_KEY: &str = "x-kubernetes-object-ref-name-key";

/// A definition's schema: kustomize decodes `Schema` case-insensitively.
fn schema_of(def: &Value) -> Option<&Map<String, Value>> {
    def.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))
        .and_then(|(_, v)| v.as_object())
}

fn properties(schema: &Map<String, Value>) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// kustomize's test for a definition of a Kubernetes type: `kind`, `apiVersion` and
/// `metadata` properties.
fn looks_like_a_type(schema: &Map<String, Value>) -> bool {
    properties(schema).is_some_and(|p| {
        ["kind", "apiVersion", "metadata"]
            .iter()
            .all(|k| p.contains_key(*k))
    })
}

fn spec(kind: &str, path: &[String]) -> FieldSpec {
    FieldSpec {
        gvk: GvkSel::new("", "", kind),
        path: path.join("/"),
        create: false,
    }
}

fn load_definition(
    out: &mut Config,
    kind: &str,
    defs: &Map<String, Value>,
    type_name: &str,
    path: &[String],
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Err(format!(
            "{type_name}: definitions refer to each other too deeply"
        ));
    }
    let Some(props) = defs.get(type_name).and_then(schema_of).and_then(properties) else {
        return Ok(());
    };
    for (name, prop) in props {
        let Some(p) = prop.as_object() else { continue };
        let string = |k: &str| p.get(k).and_then(Value::as_str);
        let mut here = path.to_vec();
        here.push(name.clone());
        if string(X_ANNOTATION).is_some() {
            super::fieldspec::merge_specs(&mut out.common_annotations, &[spec(kind, &here)])?;
        }
        if string(X_LABEL_SELECTOR).is_some() {
            super::fieldspec::merge_specs(&mut out.common_labels, &[spec(kind, &here)])?;
        }
        if string(X_IDENTITY).is_some() {
            super::fieldspec::merge_specs(&mut out.name_prefix, &[spec(kind, &here)])?;
        }
        if let (Some(version), Some(ref_kind)) = (string(X_VERSION), string(X_KIND)) {
            let key = string(X_NAME_KEY).unwrap_or("name");
            let mut at = here.clone();
            at.push(key.to_string());
            out.add_name_reference(NameBackRef {
                target: GvkSel::new("", version, ref_kind),
                referrers: vec![spec(kind, &at)],
            })?;
        }
        if let Some(r) = string("$ref") {
            load_definition(out, kind, defs, r, &here, depth + 1)?;
        }
    }
    Ok(())
}

/// The field specs a `crds` file (a map of OpenAPI definitions, by Go type name) adds: each
/// definition of a Kubernetes type (kind taken from the name after its last `.`) contributes
/// its annotated properties, following `$ref`s.
pub fn config_from_definitions(v: &Value) -> Result<Config, String> {
    let defs = v
        .as_object()
        .ok_or("expected a mapping of type names to OpenAPI definitions")?;
    let mut out = Config::default();
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort();
    for name in names {
        let Some(schema) = schema_of(&defs[name.as_str()]) else {
            continue;
        };
        if !looks_like_a_type(schema) {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name);
        let mut c = Config::default();
        load_definition(&mut c, kind, defs, name, &[], 0)?;
        out.merge(&c)?;
    }
    Ok(out)
}

/// A custom OpenAPI schema (`openapi.path`): definitions indexed by the kinds they describe
/// (`x-kubernetes-group-version-kind`). Like kustomize, it replaces the built-in Kubernetes
/// schema: kinds it does not describe have no merge keys.
#[derive(Debug, Default)]
pub struct Schema {
    defs: Map<String, Value>,
    types: std::collections::HashMap<(String, String), String>,
}

/// How a strategic merge treats a list.
#[derive(Debug, PartialEq, Eq)]
pub enum ListMerge {
    /// Replaced by the patch's list.
    Replace,
    /// Merged element by element on these keys.
    Keys(Vec<String>),
    /// Merged as a set of values.
    Values,
}

fn is_array(s: &Map<String, Value>) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Array(a)) => a.len() == 1 && a[0] == "array",
        _ => false,
    }
}

impl Schema {
    /// Reads a swagger document (JSON or YAML) with `definitions`.
    pub fn parse(v: &Value) -> Result<Schema, String> {
        let defs = v
            .get("definitions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut types = std::collections::HashMap::new();
        for (name, d) in &defs {
            let Some(gvks) = d
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for g in gvks {
                let s = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("");
                let api_version = if s("group").is_empty() {
                    s("version").to_string()
                } else {
                    format!("{}/{}", s("group"), s("version"))
                };
                types.insert((api_version, s("kind").to_string()), name.clone());
            }
        }
        Ok(Schema { defs, types })
    }

    /// Follows `$ref`s (`#/definitions/name`).
    fn resolve<'a>(&'a self, mut s: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
        for _ in 0..64 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                return Some(s);
            };
            let name = r.strip_prefix("#/definitions/").unwrap_or(r);
            s = self.defs.get(name)?.as_object()?;
        }
        None
    }

    /// How the list at `path` (field names; list elements are stepped through) of an
    /// `api_version`/`kind` object merges.
    pub fn list(&self, api_version: &str, kind: &str, path: &[String]) -> ListMerge {
        let Some(mut cur) = self
            .types
            .get(&(api_version.to_string(), kind.to_string()))
            .and_then(|n| self.defs.get(n))
            .and_then(Value::as_object)
            .and_then(|s| self.resolve(s))
        else {
            return ListMerge::Replace;
        };
        for seg in path {
            if is_array(cur) {
                let Some(items) = cur
                    .get("items")
                    .and_then(Value::as_object)
                    .and_then(|i| self.resolve(i))
                else {
                    return ListMerge::Replace;
                };
                cur = items;
            }
            let next = cur
                .get("properties")
                .and_then(|p| p.get(seg))
                .or_else(|| cur.get("additionalProperties"))
                .and_then(Value::as_object)
                .and_then(|n| self.resolve(n));
            match next {
                Some(n) => cur = n,
                None => return ListMerge::Replace,
            }
        }
        let strategy = cur
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !strategy.split(',').any(|s| s == "merge") {
            return ListMerge::Replace;
        }
        let keys: Vec<String> = match cur.get("x-kubernetes-list-map-keys") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => cur
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
                .map(|k| vec![k.to_string()])
                .unwrap_or_default(),
        };
        if keys.is_empty() {
            ListMerge::Values
        } else {
            ListMerge::Keys(keys)
        }
    }
}

/// What a strategic merge knows of the patched object's type: its GVK and, when the build has
/// a custom OpenAPI schema, that schema.
pub struct MergeCtx<'a> {
    gvk: Gvk,
    api_version: String,
    schema: Option<&'a Schema>,
}

impl std::ops::Deref for MergeCtx<'_> {
    type Target = Gvk;
    fn deref(&self) -> &Gvk {
        &self.gvk
    }
}

impl<'a> MergeCtx<'a> {
    pub fn new(gvk: Gvk, schema: Option<&'a Schema>) -> Self {
        let api_version = gvk.api_version();
        MergeCtx {
            gvk,
            api_version,
            schema,
        }
    }

    /// The merge key of the list at `path`: the schema's when there is one, else `builtin`'s.
    pub fn merge_key(
        &self,
        path: &[String],
        builtin: fn(&Gvk, &[String]) -> Option<&'static str>,
    ) -> Option<String> {
        match self.schema {
            // Several keys (x-kubernetes-list-map-keys): the first identifies elements here.
            Some(s) => match s.list(&self.api_version, &self.gvk.kind, path) {
                ListMerge::Keys(k) => k.into_iter().next(),
                _ => None,
            },
            None => builtin(&self.gvk, path).map(String::from),
        }
    }

    /// Whether the list at `path` merges as a set of values.
    pub fn value_set(&self, path: &[String], builtin: fn(&Gvk, &[String]) -> bool) -> bool {
        match self.schema {
            Some(s) => s.list(&self.api_version, &self.gvk.kind, path) == ListMerge::Values,
            None => builtin(&self.gvk, path),
        }
    }
}

/// The `openapi` field: `version` must be kustomize's built-in one (v1.21.2, the Kubernetes
/// schema this renderer's merge keys follow); `path` loads a custom schema; not both.
pub fn load(k: &super::kustomization::Kustomization) -> Result<Option<Schema>, super::Error> {
    let get = |key: &str| {
        k.openapi
            .iter()
            .find(|(a, _)| a == key)
            .map(|(_, b)| b.as_str())
    };
    let invalid = |field: &str, problem: &str| super::Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: problem.to_string(),
    };
    let path = get("path");
    if let Some(p) = path {
        let v = super::plugins::read_yaml(k, "openapi.path", p)?;
        if get("version").is_some() {
            return Err(invalid(
                "openapi",
                "give a built-in `version` or a custom schema `path`, not both",
            ));
        }
        let s = Schema::parse(&v).map_err(|e| invalid("openapi.path", &e))?;
        return Ok(Some(s));
    }
    match get("version") {
        None | Some("") | Some(BUILTIN_VERSION) => Ok(None),
        Some(_) => Err(invalid(
            "openapi.version",
            "not a built-in OpenAPI version (kustomize v5.8 has v1.21.2 only)",
        )),
    }
}

/// The Kubernetes OpenAPI version kustomize v5.8 has built in.
const BUILTIN_VERSION: &str = "v1.21.2";

/// The schema a build uses: kustomize keeps one for the whole build, the top kustomization's
/// if it sets `openapi`, else the first an included kustomization sets (in build order).
pub fn for_build(dir: &std::path::Path, root_only: bool) -> Result<Option<Schema>, super::Error> {
    Ok(first_set(dir, root_only, 0)?.flatten())
}

/// Some once a kustomization sets `openapi` (Some(None): the built-in version).
fn first_set(
    dir: &std::path::Path,
    root_only: bool,
    depth: usize,
) -> Result<Option<Option<Schema>>, super::Error> {
    if depth > 64 {
        return Ok(None);
    }
    let Ok(mut k) = super::kustomization::load(dir) else {
        // The build itself reports what is wrong with it.
        return Ok(None);
    };
    if !k.openapi.is_empty() {
        k.root_only = root_only;
        return load(&k).map(Some);
    }
    for r in &k.resources {
        let sub = super::build::normalize(&dir.join(r));
        if sub.is_dir() && super::kustomization::find_file(&sub).is_some() {
            let found = first_set(&sub, root_only, depth + 1)?;
            if found.is_some() {
                return Ok(found);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definitions_add_name_references_and_labels() {
        let defs = json!({
            "example.com/v1.Bee": {"Schema": {"properties": {
                "kind": {}, "apiVersion": {}, "metadata": {},
                "spec": {"$ref": "example.com/v1.BeeSpec"}
            }}},
            "example.com/v1.BeeSpec": {"Schema": {"properties": {
                "secretRef": {
                    "x-kubernetes-object-ref-api-version": "v1",
                    "x-kubernetes-object-ref-kind": "Secret"
                },
                "selector": {"x-kubernetes-label-selector": ""}
            }}}
        });
        let c = config_from_definitions(&defs).unwrap();
        assert_eq!(c.name_reference.len(), 1);
        assert_eq!(c.name_reference[0].target, GvkSel::new("", "v1", "Secret"));
        assert_eq!(c.name_reference[0].referrers[0].path, "spec/secretRef/name");
        assert_eq!(c.name_reference[0].referrers[0].gvk.kind, "Bee");
        assert_eq!(c.common_labels[0].path, "spec/selector");
        assert!(c.name_prefix.is_empty());
    }

    #[test]
    fn schema_merge_keys_follow_refs_and_items() {
        let v = json!({"definitions": {
            "T": {
                "properties": {"spec": {"$ref": "#/definitions/S"}},
                "x-kubernetes-group-version-kind": [{"group": "ex.com", "version": "v1", "kind": "T"}]
            },
            "S": {"properties": {
                "ws": {"type": "array", "items": {"$ref": "#/definitions/W"},
                       "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
                "tags": {"type": "array", "x-kubernetes-patch-strategy": "merge"},
                "plain": {"type": "array"}
            }},
            "W": {"properties": {"ports": {"type": "array",
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-list-map-keys": ["port", "protocol"]}}}
        }});
        let s = Schema::parse(&v).unwrap();
        let p = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.list("ex.com/v1", "T", &p(&["spec", "ws"])),
            ListMerge::Keys(vec!["name".into()])
        );
        assert_eq!(
            s.list("ex.com/v1", "T", &p(&["spec", "ws", "ports"])),
            ListMerge::Keys(vec!["port".into(), "protocol".into()])
        );
        assert_eq!(
            s.list("ex.com/v1", "T", &p(&["spec", "tags"])),
            ListMerge::Values
        );
        assert_eq!(
            s.list("ex.com/v1", "T", &p(&["spec", "plain"])),
            ListMerge::Replace
        );
        assert_eq!(
            s.list("apps/v1", "Deployment", &p(&["spec"])),
            ListMerge::Replace
        );
    }
}
