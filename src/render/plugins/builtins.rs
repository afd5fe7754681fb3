//! kustomize's builtin plugins configured explicitly: each reads its configuration the way
//! kustomize does (unknown keys ignored) and applies to the field specs the configuration gives.

use serde_json::{Map, Value, json};

use super::invalid;
use crate::manifest::Origin;
use crate::render::Error;
use crate::render::fieldspec::{self, FieldSpec, Leaf};
use crate::render::kustomization::{
    GenOptions, GenSpec, ImageSpec, Kustomization, PatchSpec, ReplicaSpec, Selector,
};
use crate::render::res::{Behavior, GvkSel, Res};
use crate::render::{generate, patch, transform};

/// The builtin transformers kustomize can load from a configuration.
const TRANSFORMERS: &[&str] = &[
    "AnnotationsTransformer",
    "HashTransformer",
    "ImageTagTransformer",
    "LabelTransformer",
    "NamespaceTransformer",
    "PatchJson6902Transformer",
    "PatchStrategicMergeTransformer",
    "PatchTransformer",
    "PrefixSuffixTransformer",
    "PrefixTransformer",
    "SuffixTransformer",
    "ReplacementTransformer",
    "ReplicaCountTransformer",
    "ValueAddTransformer",
];

pub fn is_transformer(kind: &str) -> bool {
    TRANSFORMERS.contains(&kind)
}

/// Typed reads of a configuration, errors naming the entry and the key.
struct Cfg<'a> {
    k: &'a Kustomization,
    field: &'a str,
    v: &'a Value,
}

impl Cfg<'_> {
    fn get(&self, path: &str) -> &Value {
        self.v.pointer(path).unwrap_or(&Value::Null)
    }

    fn key(path: &str) -> String {
        path.trim_start_matches('/').replace('/', ".")
    }

    fn string(&self, path: &str) -> Result<String, Error> {
        match self.get(path) {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.bad(path, "expected a string")),
        }
    }

    fn boolean(&self, path: &str) -> Result<bool, Error> {
        match self.get(path) {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(*b),
            _ => Err(self.bad(path, "expected true or false")),
        }
    }

    fn strings(&self, path: &str) -> Result<Vec<String>, Error> {
        match self.get(path) {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.bad(path, "expected a list of strings")),
                })
                .collect(),
            _ => Err(self.bad(path, "expected a list of strings")),
        }
    }

    fn pairs(&self, path: &str) -> Result<Vec<(String, String)>, Error> {
        match self.get(path) {
            Value::Null => Ok(Vec::new()),
            Value::Object(m) => m
                .iter()
                .map(|(a, b)| match b {
                    Value::String(s) => Ok((a.clone(), s.clone())),
                    Value::Null => Ok((a.clone(), String::new())),
                    _ => Err(self.bad(path, "expected string values (quote them)")),
                })
                .collect(),
            _ => Err(self.bad(path, "expected a mapping")),
        }
    }

    /// `fieldSpecs`; None when the key is absent.
    fn specs(&self) -> Result<Option<Vec<FieldSpec>>, Error> {
        match self.v.get("fieldSpecs") {
            None => Ok(None),
            Some(v) => fieldspec::parse_specs(v, "fieldSpecs")
                .map(Some)
                .map_err(|p| invalid(self.k, self.field, p)),
        }
    }

    fn bad(&self, path: &str, problem: &str) -> Error {
        invalid(
            self.k,
            self.field,
            format!("`{}`: {problem}", Self::key(path)),
        )
    }
}

fn gen_options(c: &Cfg, base: &str) -> Result<Option<GenOptions>, Error> {
    if c.get(base).is_null() {
        return Ok(None);
    }
    Ok(Some(GenOptions {
        labels: c.pairs(&format!("{base}/labels"))?,
        annotations: c.pairs(&format!("{base}/annotations"))?,
        disable_name_suffix_hash: c.boolean(&format!("{base}/disableNameSuffixHash"))?,
        immutable: c.boolean(&format!("{base}/immutable"))?,
    }))
}

/// A ConfigMapGenerator or SecretGenerator configuration: `name`/`namespace` (or those of
/// `metadata`), `behavior`, `literals`, `files`, `envs`, `env`, `options` and `type`.
pub fn gen_spec(k: &Kustomization, field: &str, v: &Value, secret: bool) -> Result<GenSpec, Error> {
    let c = Cfg { k, field, v };
    let mut name = c.string("/name")?;
    if name.is_empty() {
        name = c.string("/metadata/name")?;
    }
    let mut namespace = c.string("/namespace")?;
    if namespace.is_empty() {
        namespace = c.string("/metadata/namespace")?;
    }
    let behavior = match c.string("/behavior")?.as_str() {
        "" | "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        other => {
            return Err(invalid(
                k,
                field,
                format!("unknown behavior {other:?}: use create, merge or replace"),
            ));
        }
    };
    let mut envs = c.strings("/envs")?;
    let env = c.string("/env")?;
    if !env.is_empty() {
        envs.push(env);
    }
    Ok(GenSpec {
        field: field.to_string(),
        name,
        namespace,
        behavior,
        literals: c.strings("/literals")?,
        files: c.strings("/files")?,
        envs,
        secret_type: if secret {
            c.string("/type")?
        } else {
            String::new()
        },
        options: gen_options(&c, "/options")?,
    })
}

/// IAMPolicyGenerator: a GKE workload-identity ServiceAccount.
pub fn iam_policy(k: &Kustomization, field: &str, v: &Value) -> Result<Res, Error> {
    let c = Cfg { k, field, v };
    let cloud = c.string("/cloud")?;
    if cloud != "gke" {
        return Err(invalid(
            k,
            field,
            format!("cloud provider {cloud:?} is not supported (only gke)"),
        ));
    }
    let mut md = Map::new();
    md.insert(
        "annotations".into(),
        json!({"iam.gke.io/gcp-service-account": format!(
            "{}@{}.iam.gserviceaccount.com",
            c.string("/serviceAccount/name")?,
            c.string("/serviceAccount/projectId")?
        )}),
    );
    md.insert("name".into(), json!(c.string("/kubernetesService/name")?));
    let ns = c.string("/kubernetesService/namespace")?;
    if !ns.is_empty() {
        md.insert("namespace".into(), json!(ns));
    }
    Ok(Res::new(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": md}),
        Origin {
            file: Some(k.file.clone()),
            document: 0,
            line: 0,
        },
    ))
}

fn selector(c: &Cfg, base: &str) -> Result<Option<Selector>, Error> {
    if c.get(base).is_null() {
        return Ok(None);
    }
    let s = |x: &str| c.string(&format!("{base}/{x}"));
    Ok(Some(Selector {
        gvk: GvkSel::new(&s("group")?, &s("version")?, &s("kind")?),
        name: s("name")?,
        namespace: s("namespace")?,
        label_selector: s("labelSelector")?,
        annotation_selector: s("annotationSelector")?,
    }))
}

fn none_if_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.trim().is_empty())
}

/// Runs the builtin transformer `kind` configured by `v` on `list`.
pub fn run(
    k: &Kustomization,
    field: &str,
    kind: &str,
    v: &Value,
    list: &mut Vec<Res>,
) -> Result<(), Error> {
    let c = Cfg { k, field, v };
    match kind {
        "AnnotationsTransformer" | "LabelTransformer" => {
            let key = if kind == "LabelTransformer" {
                "/labels"
            } else {
                "/annotations"
            };
            let pairs = c.pairs(key)?;
            if pairs.is_empty() {
                return Ok(());
            }
            let fss = c.specs()?.unwrap_or_default();
            set_maps(k, field, list, &pairs, &fss)
        }
        "NamespaceTransformer" => {
            let mode = match c.string("/setRoleBindingSubjects")?.as_str() {
                "" | "defaultOnly" => Subjects::Default,
                "allServiceAccounts" => Subjects::AllServiceAccounts,
                "none" => Subjects::None,
                other => {
                    return Err(c.bad(
                        "/setRoleBindingSubjects",
                        &format!("{other:?} is not one of defaultOnly, none, allServiceAccounts"),
                    ));
                }
            };
            let ns = NamespaceArgs {
                namespace: c.string("/metadata/namespace")?,
                unset_only: c.boolean("/unsetOnly")?,
                subjects: mode,
            };
            namespace(k, field, list, &ns, &c.specs()?.unwrap_or_default())
        }
        "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
            let Some(fss) = c.specs()? else {
                return Err(invalid(k, field, "`fieldSpecs` is required"));
            };
            if kind != "SuffixTransformer" {
                affix(k, field, list, &c.string("/prefix")?, &fss, true)?;
            }
            if kind != "PrefixTransformer" {
                affix(k, field, list, &c.string("/suffix")?, &fss, false)?;
            }
            Ok(())
        }
        "ImageTagTransformer" => {
            let s = |x: &str| c.string(&format!("/imageTag/{x}"));
            let spec = ImageSpec {
                field: field.to_string(),
                name: s("name")?,
                new_name: s("newName")?,
                new_tag: s("newTag")?,
                digest: s("digest")?,
                tag_suffix: s("tagSuffix")?,
            };
            transform::image_with(k, list, &spec, &c.specs()?.unwrap_or_default())
        }
        "ReplicaCountTransformer" => {
            let count = match c.get("/replica/count") {
                Value::Null => 0,
                Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0),
                _ => return Err(c.bad("/replica/count", "expected an integer")),
            };
            let spec = ReplicaSpec {
                field: field.to_string(),
                name: c.string("/replica/name")?,
                count,
            };
            transform::replicas_with(k, list, &spec, &c.specs()?.unwrap_or_default())
        }
        "PatchTransformer" | "PatchJson6902Transformer" => {
            let json = kind == "PatchJson6902Transformer";
            let inline = if json { "/jsonOp" } else { "/patch" };
            let spec = PatchSpec {
                field: field.to_string(),
                path: none_if_empty(c.string("/path")?),
                patch: none_if_empty(c.string(inline)?),
                target: selector(&c, "/target")?,
                allow_name_change: c.boolean("/options/allowNameChange")?,
                allow_kind_change: c.boolean("/options/allowKindChange")?,
            };
            match (&spec.path, &spec.patch) {
                (None, None) => {
                    return Err(invalid(k, field, "give one of `path` and `patch`"));
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(k, field, "give only one of `path` and `patch`"));
                }
                _ => {}
            }
            if json && spec.target.is_none() {
                return Err(invalid(k, field, "a JSON 6902 patch needs a `target`"));
            }
            patch::apply_spec(k, list, &spec)
        }
        "PatchStrategicMergeTransformer" => {
            let mut entries: Vec<(String, String)> = c
                .strings("/paths")?
                .into_iter()
                .map(|p| (field.to_string(), p))
                .collect();
            let inline = c.string("/patches")?;
            if !inline.trim().is_empty() {
                entries.push((field.to_string(), inline));
            }
            if entries.is_empty() {
                return Err(invalid(k, field, "give `paths` or `patches`"));
            }
            patch::apply_strategic_merge(k, list, &entries)
        }
        "HashTransformer" => {
            for r in list.iter_mut().filter(|r| r.needs_hash) {
                let h = generate::hash_suffix(&r.value);
                r.store_prev();
                let name = format!("{}-{h}", r.name());
                r.set_name(&name);
            }
            Ok(())
        }
        "ValueAddTransformer" => value_add(&c, list),
        "ReplacementTransformer" => {
            // The configuration's `replacements` read as a kustomization's field would be.
            let mut with = k.clone();
            with.replacements = v.get("replacements").cloned();
            super::super::replacements::apply(&with, list)
        }
        other => Err(Error::Unsupported {
            file: k.file.clone(),
            field: field.to_string(),
            hint: format!("the builtin {other} is not implemented"),
        }),
    }
}

fn in_object(k: &Kustomization, field: &str, r: &Res, problem: String) -> Error {
    invalid(k, field, format!("{}: {problem}", r.cur_id()))
}

/// Label or annotation pairs set on every mapping `fss` designates.
fn set_maps(
    k: &Kustomization,
    field: &str,
    list: &mut [Res],
    pairs: &[(String, String)],
    fss: &[FieldSpec],
) -> Result<(), Error> {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    for r in list.iter_mut() {
        let gvk = r.gvk();
        for fs in fss {
            let mut set = |v: &mut Value| {
                if v.is_null() {
                    *v = Value::Object(Map::new());
                }
                let m = v
                    .as_object_mut()
                    .ok_or_else(|| "expected a mapping".to_string())?;
                for (a, b) in &sorted {
                    m.insert(a.clone(), Value::String(b.clone()));
                }
                Ok(())
            };
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Map, &mut set)
                .map_err(|e| in_object(k, field, r, e))?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Subjects {
    Default,
    AllServiceAccounts,
    None,
}

struct NamespaceArgs {
    namespace: String,
    unset_only: bool,
    subjects: Subjects,
}

/// kustomize's namespace filter: metadata.namespace of namespaced kinds, RoleBinding subjects
/// per the mode, then the other field specs.
fn namespace(
    k: &Kustomization,
    field: &str,
    list: &mut [Res],
    a: &NamespaceArgs,
    fss: &[FieldSpec],
) -> Result<(), Error> {
    if a.namespace.is_empty() {
        return Ok(());
    }
    for i in 0..list.len() {
        let r = &mut list[i];
        if r.value.as_object().is_none_or(|m| m.is_empty()) {
            continue;
        }
        r.store_prev();
        ns_one(r, a, fss).map_err(|e| in_object(k, field, r, e))?;
        let id = list[i].cur_id();
        if list.iter().filter(|o| o.cur_id().equals(&id)).count() != 1 {
            return Err(invalid(
                k,
                field,
                format!("setting the namespace makes two objects {id}"),
            ));
        }
    }
    Ok(())
}

/// The namespace filter on one object.
fn ns_one(r: &mut Res, a: &NamespaceArgs, fss: &[FieldSpec]) -> Result<(), String> {
    let set = |v: &mut Value| -> Result<(), String> {
        match v {
            Value::Object(_) | Value::Array(_) => {
                Err("namespace field specs must target scalar nodes".into())
            }
            Value::String(s) if a.unset_only && !s.is_empty() => Ok(()),
            _ => {
                *v = Value::String(a.namespace.clone());
                Ok(())
            }
        }
    };
    let gvk = r.gvk();
    let api_version = r
        .value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !crate::render::res::is_cluster_scoped(&gvk) {
        let md = r.metadata_mut();
        let slot = md
            .entry("namespace")
            .or_insert(Value::String(String::new()));
        set(slot)?;
    }
    let binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
    if binding
        && a.subjects != Subjects::None
        && let Some(subjects) = r.value.get_mut("subjects").and_then(Value::as_array_mut)
    {
        for s in subjects {
            let hit = match a.subjects {
                Subjects::Default => s.get("name").and_then(Value::as_str) == Some("default"),
                _ => s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"),
            };
            if hit && let Some(m) = s.as_object_mut() {
                let slot = m.entry("namespace").or_insert(Value::String(String::new()));
                set(slot)?;
            }
        }
    }
    for fs in fss {
        if fs.path == "metadata/namespace"
            || (fs.path == "metadata/name" && api_version != "v1")
            || (binding && fs.path == "subjects/namespace")
        {
            continue;
        }
        let mut st = set;
        fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Scalar, &mut st)?;
    }
    Ok(())
}

fn skips_affix(r: &Res) -> bool {
    let id = r.org_id();
    id.gvk.kind == "CustomResourceDefinition"
        || id.gvk.kind == "Namespace"
        || (id.gvk.group == "apiregistration.k8s.io" && id.gvk.kind == "APIService")
}

/// One prefix (or suffix) field spec on one object: `metadata/name` renames it (and records
/// the affix for name references), any other path gets the affix added to its value.
pub fn affix_one(r: &mut Res, fs: &FieldSpec, value: &str, prefix: bool) -> Result<(), String> {
    if fs.path == "metadata/name" {
        if prefix {
            r.prefixes.push(value.to_string());
        } else {
            r.suffixes.push(value.to_string());
        }
        if !value.is_empty() {
            r.store_prev();
        }
    }
    let gvk = r.gvk();
    let mut set = |v: &mut Value| -> Result<(), String> {
        let cur = match &*v {
            Value::Object(_) | Value::Array(_) => return Err("expected a scalar".into()),
            Value::Null => String::new(),
            other => crate::render::res::scalar_string(other),
        };
        *v = Value::String(if prefix {
            format!("{value}{cur}")
        } else {
            format!("{cur}{value}")
        });
        Ok(())
    };
    fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Scalar, &mut set)
}

/// PrefixTransformer / SuffixTransformer with explicit field specs.
fn affix(
    k: &Kustomization,
    field: &str,
    list: &mut [Res],
    value: &str,
    fss: &[FieldSpec],
    prefix: bool,
) -> Result<(), Error> {
    for r in list.iter_mut() {
        if skips_affix(r) {
            continue;
        }
        let org = r.org_id();
        for fs in fss {
            if !fs.gvk.selects(&org.gvk) {
                continue;
            }
            affix_one(r, fs, value, prefix).map_err(|e| in_object(k, field, r, e))?;
        }
    }
    Ok(())
}

/// `/`-separated path parts (kustomize's `PathSplit`: a leading empty part marks an absolute
/// path).
fn path_split(p: &str) -> Vec<String> {
    if p.is_empty() {
        return Vec::new();
    }
    let mut parts: Vec<String> = Vec::new();
    if p.starts_with('/') {
        parts.push(String::new());
    }
    parts.extend(p.split('/').filter(|x| !x.is_empty()).map(String::from));
    parts
}

/// kustomize's `InsertPathPart`: `part` inserted at `pos` among the path's parts.
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let mut parts = path_split(path);
    let mut pos = pos.min(parts.len());
    if parts.first().is_some_and(String::is_empty) && pos < parts.len() {
        pos += 1;
    }
    parts.insert(pos, part.to_string());
    if parts[0].is_empty() {
        format!("/{}", parts[1..].join("/"))
    } else {
        parts.join("/")
    }
}

/// ValueAddTransformer: a value (by default the kustomization folder's name) written to a
/// field of the selected objects, or inserted as a part of the path it holds.
fn value_add(c: &Cfg, list: &mut [Res]) -> Result<(), Error> {
    let (k, field) = (c.k, c.field);
    let mut value = c.string("/value")?.trim().to_string();
    if value.is_empty() {
        let dir = k.dir.canonicalize().map_err(|source| Error::Read {
            path: k.dir.clone(),
            source,
        })?;
        value = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let mut targets: Vec<Value> = match c.get("/targets") {
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    };
    let file = c.string("/targetFilePath")?;
    if !file.is_empty() {
        let v = super::read_yaml(k, field, &file)?;
        if let Some(a) = v.get("targets").and_then(Value::as_array) {
            targets.extend(a.iter().cloned());
        }
    }
    if targets.is_empty() {
        return Err(invalid(k, field, "give at least one of `targets`"));
    }
    for (i, t) in targets.iter().enumerate() {
        let tc = Cfg { k, field, v: t };
        let path = tc.string("/fieldPath")?;
        if path.is_empty() {
            return Err(invalid(
                k,
                field,
                format!("`targets[{i}].fieldPath` is empty"),
            ));
        }
        let position = match t.get("filePathPosition") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0) as usize,
            Some(_) => {
                return Err(invalid(
                    k,
                    field,
                    format!("`targets[{i}].filePathPosition` must be a non-negative integer"),
                ));
            }
        };
        let chosen: Vec<usize> = match selector(&tc, "/selector")? {
            Some(sel) => patch::select(k, field, list, &sel)?,
            None => (0..list.len()).collect(),
        };
        for idx in chosen {
            let r = &mut list[idx];
            if path == "metadata/namespace" {
                let a = NamespaceArgs {
                    namespace: value.clone(),
                    unset_only: false,
                    subjects: Subjects::Default,
                };
                ns_one(r, &a, &[]).map_err(|e| in_object(k, field, r, e))?;
                continue;
            }
            let parts = fieldspec::split_path(&path);
            let mut node = &mut r.value;
            for part in &parts {
                if node.is_null() {
                    *node = Value::Object(Map::new());
                }
                node = match node {
                    Value::Object(m) => m.entry(part.clone()).or_insert(Value::Null),
                    Value::Array(items) => match part.parse::<usize>() {
                        Ok(i) if i < items.len() => &mut items[i],
                        _ => {
                            let problem = format!("{path}: no element {part:?} in a list");
                            return Err(in_object(k, field, r, problem));
                        }
                    },
                    _ => {
                        let problem = format!("{path}: a scalar is on the way");
                        return Err(in_object(k, field, r, problem));
                    }
                };
            }
            let cur = match &*node {
                Value::Object(_) | Value::Array(_) => {
                    return Err(in_object(k, field, r, format!("{path}: expected a scalar")));
                }
                Value::Null => String::new(),
                other => crate::render::res::scalar_string(other),
            };
            let new = if position > 0 {
                insert_path_part(&cur, position - 1, &value)
            } else {
                value.clone()
            };
            *node = Value::String(new);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_insert_like_kustomize() {
        assert_eq!(
            insert_path_part("/data/app/logs", 1, "staging"),
            "/data/staging/app/logs"
        );
        assert_eq!(insert_path_part("a/b", 0, "x"), "x/a/b");
        assert_eq!(insert_path_part("a/b", 9, "x"), "a/b/x");
        assert_eq!(insert_path_part("", 3, "x"), "x");
        assert_eq!(insert_path_part("a", 0, ""), "a");
    }
}
