//! Patches: strategic merge (kustomize's kyaml flavour, with merge keys for the built-in
//! workload and Service types) and JSON 6902, and target selection.

use serde_json::Value;

use super::Error;
use super::kustomization::{Kustomization, PatchSpec, Selector};
use super::openapi::MergeCtx;
use super::res::{Res, scalar_string};
use crate::manifest::Gvk;

fn invalid(k: &Kustomization, field: &str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// A loaded patch.
enum Loaded {
    Strategic(Vec<Value>),
    Json(json_patch::Patch),
}

fn split_docs(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push(String::new());
            if let Some(rest) = t.strip_prefix("--- ") {
                docs.last_mut().expect("non-empty").push_str(rest);
            }
            continue;
        }
        let d = docs.last_mut().expect("non-empty");
        d.push_str(line);
        d.push('\n');
    }
    docs
}

/// Only comments, blank lines and document markers.
fn is_blank(text: &str) -> bool {
    split_docs(text)
        .iter()
        .all(|d| serde_yaml_ng::from_str::<Value>(d).is_ok_and(|v| v.is_null()))
}

fn load(k: &Kustomization, field: &str, text: &str) -> Result<Loaded, Error> {
    let mut values = Vec::new();
    for doc in split_docs(text) {
        let v: Value = serde_yaml_ng::from_str(&doc)
            .map_err(|e| invalid(k, field, format!("the patch is not valid YAML: {e}")))?;
        if !v.is_null() {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Err(invalid(k, field, "the patch is empty"));
    }
    if values.len() == 1 && values[0].is_array() {
        let ops: json_patch::Patch = serde_json::from_value(values.remove(0))
            .map_err(|e| invalid(k, field, format!("not a JSON 6902 patch: {e}")))?;
        return Ok(Loaded::Json(ops));
    }
    for v in &values {
        if !v.is_object() {
            return Err(invalid(
                k,
                field,
                "neither a strategic-merge patch (a mapping) nor a JSON 6902 patch (a list)",
            ));
        }
    }
    Ok(Loaded::Strategic(values))
}

fn patch_text(k: &Kustomization, spec: &PatchSpec) -> Result<String, Error> {
    match (&spec.patch, &spec.path) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(path)) => {
            let bytes = super::generate::read_local(k, &format!("{}.path", spec.field), path)?;
            String::from_utf8(bytes)
                .map_err(|_| invalid(k, &format!("{}.path", spec.field), "not UTF-8"))
        }
        (None, None) => Err(invalid(k, &spec.field, "give one of `path` and `patch`")),
    }
}

/// One `patches` (or `patchesJson6902`) entry.
pub fn apply_spec(k: &Kustomization, list: &mut Vec<Res>, spec: &PatchSpec) -> Result<(), Error> {
    let text = patch_text(k, spec)?;
    // kustomize skips a `patches` entry that is empty or only comments (`[]` included); the
    // legacy patchesJson6902 refuses it.
    let legacy = spec.field.starts_with("patchesJson6902");
    if !legacy && is_blank(&text) {
        return Ok(());
    }
    match load(k, &spec.field, &text)? {
        Loaded::Json(ops) if legacy && ops.0.is_empty() => {
            Err(invalid(k, &spec.field, "the patch is empty"))
        }
        Loaded::Json(ops) if ops.0.is_empty() => Ok(()),
        Loaded::Json(ops) => {
            let Some(target) = &spec.target else {
                return Err(invalid(
                    k,
                    &spec.field,
                    "a JSON 6902 patch needs a `target`",
                ));
            };
            let sel = select(k, &spec.field, list, target)?;
            for i in sel {
                let r = &mut list[i];
                // kustomize patches the object as JSON: it decodes it first.
                super::replacements::check_decodable(r)?;
                r.store_prev();
                let object = r.cur_id().to_string();
                // kustomize's objects always carry (internal) annotations while it patches, so
                // paths under /metadata/annotations resolve even when the file has none.
                let had_annotations = r
                    .value
                    .get("metadata")
                    .is_some_and(|m| m.get("annotations").is_some());
                if !had_annotations {
                    r.metadata_mut()
                        .insert("annotations".into(), Value::Object(Default::default()));
                }
                json_patch::patch(&mut r.value, &ops).map_err(|source| Error::JsonPatch {
                    file: k.file.clone(),
                    field: spec.field.clone(),
                    object,
                    source,
                })?;
                // kustomize patches the object as JSON and reads it back: every scalar it holds
                // is typed from then on, created ones included.
                r.untagged.clear();
                r.mistyped.clear();
                if !had_annotations
                    && let Some(md) = r.value.get_mut("metadata").and_then(Value::as_object_mut)
                    && md
                        .get("annotations")
                        .is_some_and(|a| a.as_object().is_some_and(|m| m.is_empty()) || a.is_null())
                {
                    md.shift_remove("annotations");
                }
            }
            Ok(())
        }
        Loaded::Strategic(patches) => {
            let opts = Opts {
                allow_name_change: spec.allow_name_change,
                allow_kind_change: spec.allow_kind_change,
                schema: k.schema.as_deref(),
            };
            if let Some(target) = &spec.target {
                if patches.len() > 1 {
                    return Err(invalid(
                        k,
                        &spec.field,
                        "several strategic-merge patches in one entry cannot share a `target`",
                    ));
                }
                let sel = select(k, &spec.field, list, target)?;
                let mut deleted = Vec::new();
                for i in sel {
                    if !smp_one(&mut list[i], &patches[0], opts) {
                        deleted.push(i);
                    }
                }
                remove_indices(list, deleted);
                Ok(())
            } else {
                for p in &patches {
                    smp_by_id(k, &spec.field, list, p, opts)?;
                }
                Ok(())
            }
        }
    }
}

/// `patchesStrategicMerge` entries: file paths or inline patches.
pub fn apply_strategic_merge(
    k: &Kustomization,
    list: &mut Vec<Res>,
    entries: &[(String, String)],
) -> Result<(), Error> {
    let mut all = Vec::new();
    for (field, entry) in entries {
        let path = k.dir.join(entry);
        let looks_inline = entry.contains('\n') || entry.contains(": ");
        let text = if !looks_inline && path.is_file() {
            let bytes = super::generate::read_local(k, field, entry)?;
            String::from_utf8(bytes).map_err(|_| invalid(k, field, "not UTF-8"))?
        } else if looks_inline {
            entry.clone()
        } else {
            return Err(Error::Read {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        };
        match load(k, field, &text)? {
            Loaded::Strategic(ps) => all.extend(ps.into_iter().map(|p| (field.clone(), p))),
            Loaded::Json(_) => {
                return Err(invalid(
                    k,
                    field,
                    "a JSON 6902 patch belongs in `patches` with a `target`",
                ));
            }
        }
    }
    for (field, p) in &all {
        let opts = Opts {
            schema: k.schema.as_deref(),
            ..Opts::default()
        };
        smp_by_id(k, field, list, p, opts)?;
    }
    Ok(())
}

fn remove_indices(list: &mut Vec<Res>, mut idx: Vec<usize>) {
    idx.sort_unstable();
    for i in idx.into_iter().rev() {
        list.remove(i);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Opts<'a> {
    allow_name_change: bool,
    allow_kind_change: bool,
    schema: Option<&'a super::openapi::Schema>,
}

fn patch_id(p: &Value) -> super::res::Id {
    let s = |path: &[&str]| {
        let mut v = p;
        for x in path {
            match v.get(x) {
                Some(n) => v = n,
                None => return String::new(),
            }
        }
        scalar_string(v)
    };
    super::res::Id {
        gvk: Gvk::from_api_version(&s(&["apiVersion"]), &s(&["kind"])),
        name: s(&["metadata", "name"]),
        namespace: s(&["metadata", "namespace"]),
    }
}

fn smp_by_id(
    k: &Kustomization,
    field: &str,
    list: &mut Vec<Res>,
    p: &Value,
    opts: Opts,
) -> Result<(), Error> {
    let id = patch_id(p);
    let matches = super::res::positions_of(list, &id);
    match matches.len() {
        0 => Err(invalid(
            k,
            field,
            format!(
                "no resource matches the patch's {} {} (apiVersion, kind, name and namespace must match)",
                if id.gvk.api_version().is_empty() {
                    "<no apiVersion>".to_string()
                } else {
                    id.gvk.api_version()
                },
                id
            ),
        )),
        1 => {
            if !smp_one(&mut list[matches[0]], p, opts) {
                list.remove(matches[0]);
            }
            Ok(())
        }
        _ => Err(invalid(
            k,
            field,
            format!("several resources match the patch's {id}"),
        )),
    }
}

/// Applies a strategic-merge patch; false when the patch deletes the object.
fn smp_one(r: &mut Res, patch: &Value, opts: Opts) -> bool {
    let (name, ns, kind) = (
        r.name().to_string(),
        r.namespace().to_string(),
        r.kind().to_string(),
    );
    if opts.allow_name_change || opts.allow_kind_change {
        r.store_prev();
    }
    let gvk = r.gvk();
    let mut patch = patch.clone();
    // The patch takes the target's apiVersion (kustomize sets it before merging).
    if let (Some(pm), Some(av)) = (patch.as_object_mut(), r.value.get("apiVersion").cloned()) {
        pm.insert("apiVersion".into(), av);
    }
    // Before merging: the pointers to created scalars are to the unpatched object.
    super::replacements::settle_untagged(r);
    let dest = std::mem::take(&mut r.value);
    let cx = MergeCtx::new(gvk, opts.schema);
    let merged = merge(Some(dest), &patch, &cx, &mut Vec::new());
    match merged {
        Some(v) if v.as_object().is_some_and(|m| !m.is_empty()) => r.value = v,
        _ => return false,
    }
    if !opts.allow_kind_change {
        r.set_kind(&kind);
    }
    if !opts.allow_name_change {
        r.set_name(&name);
    }
    r.set_namespace(&ns);
    true
}

fn directive(v: &Value) -> Option<&str> {
    v.as_object()?.get("$patch")?.as_str()
}

fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "$patch")
                .map(|(k, x)| (k.clone(), strip(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| directive(x).is_none() || x.as_object().is_some_and(|m| m.len() > 1))
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

const WORKLOADS: &[(&str, &[&str])] = &[
    ("Pod", &["spec"]),
    ("PodTemplate", &["template", "spec"]),
    ("Deployment", &["spec", "template", "spec"]),
    ("ReplicaSet", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("ReplicationController", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
];

fn builtin_group(g: &str) -> bool {
    matches!(g, "" | "apps" | "batch" | "extensions")
}

/// The merge key of the list at `path` in an object of kind `gvk`, from the Kubernetes API's
/// patch strategies; None means the list is replaced as a whole.
fn merge_key(gvk: &Gvk, path: &[String]) -> Option<&'static str> {
    if !builtin_group(&gvk.group) {
        return None;
    }
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    if p == ["metadata", "ownerReferences"] {
        return Some("uid");
    }
    if gvk.group.is_empty() && gvk.kind == "Service" && p == ["spec", "ports"] {
        return Some("port");
    }
    let (_, prefix) = WORKLOADS.iter().find(|(k, _)| *k == gvk.kind)?;
    let rest = p.strip_prefix(*prefix)?;
    match rest {
        ["containers" | "initContainers" | "ephemeralContainers"] => Some("name"),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => Some("name"),
        ["hostAliases"] => Some("ip"),
        ["containers" | "initContainers" | "ephemeralContainers", sub] => match *sub {
            "env" => Some("name"),
            "ports" => Some("containerPort"),
            "volumeMounts" => Some("mountPath"),
            "volumeDevices" => Some("devicePath"),
            "resizePolicy" => Some("resourceName"),
            _ => None,
        },
        _ => None,
    }
}

/// Lists of scalars the Kubernetes API merges as sets.
fn is_primitive_set(gvk: &Gvk, path: &[String]) -> bool {
    builtin_group(&gvk.group) && path.len() == 2 && path[0] == "metadata" && path[1] == "finalizers"
}

/// Merges `patch` into `dest`; None removes the field (or the object).
fn merge(
    dest: Option<Value>,
    patch: &Value,
    gvk: &MergeCtx,
    path: &mut Vec<String>,
) -> Option<Value> {
    match patch {
        Value::Null => None,
        Value::Object(pm) => {
            let d = directive(patch);
            let dest = match dest {
                None | Some(Value::Null) => {
                    if d == Some("delete") {
                        return None;
                    }
                    // A new mapping is merged into nothing: its nulls vanish, and a mapping
                    // left empty by that vanishes too (an empty one written as such stays).
                    let had_fields = pm.keys().any(|k| k != "$patch");
                    let merged = merge(Some(Value::Object(Default::default())), patch, gvk, path);
                    return match merged {
                        Some(Value::Object(m)) if m.is_empty() && had_fields => None,
                        other => other,
                    };
                }
                Some(v) => v,
            };
            match d {
                Some("delete") => return None,
                Some("replace") => return Some(strip(patch)),
                _ => {}
            }
            let Value::Object(mut dm) = dest else {
                return Some(strip(patch));
            };
            for (k, pv) in pm {
                if k == "$patch" {
                    continue;
                }
                path.push(k.clone());
                let existing = dm.get(k).cloned();
                match merge(existing, pv, gvk, path) {
                    Some(v) => {
                        if let Some(slot) = dm.get_mut(k) {
                            *slot = v;
                        } else {
                            dm.insert(k.clone(), v);
                        }
                    }
                    None => {
                        dm.shift_remove(k);
                    }
                }
                path.pop();
            }
            Some(Value::Object(dm))
        }
        Value::Array(pl) => {
            if gvk.merge_key(path, merge_key).is_none() && !gvk.value_set(path, is_primitive_set) {
                // Not associative (custom resources, atomic lists): replaced as written.
                return Some(patch.clone());
            }
            let list_directive = pl
                .iter()
                .filter(|x| x.as_object().is_some_and(|m| m.len() == 1))
                .find_map(directive);
            match list_directive {
                Some("delete") => return None,
                Some("replace") => return Some(strip(patch)),
                _ => {}
            }
            let dest = match dest {
                None | Some(Value::Null) => return Some(strip(patch)),
                Some(v) => v,
            };
            if gvk.value_set(path, is_primitive_set)
                && let Value::Array(dl) = &dest
            {
                // A set of scalars merged patch-first (metadata.finalizers).
                let mut out: Vec<Value> = Vec::new();
                for v in pl.iter().chain(dl.iter()) {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                return Some(Value::Array(out));
            }
            let (Some(key), Value::Array(dl)) = (gvk.merge_key(path, merge_key), &dest) else {
                return Some(strip(patch));
            };
            Some(Value::Array(merge_list(dl, pl, &key, gvk, path)))
        }
        scalar => Some(scalar.clone()),
    }
}

fn merge_list(
    dest: &[Value],
    patch: &[Value],
    key: &str,
    gvk: &MergeCtx,
    path: &mut Vec<String>,
) -> Vec<Value> {
    let key_of = |v: &Value| v.get(key).map(scalar_string);
    let mut order: Vec<String> = Vec::new();
    for v in patch.iter().chain(dest.iter()) {
        if let Some(kv) = key_of(v)
            && !order.contains(&kv)
        {
            order.push(kv);
        }
    }
    let mut out = Vec::new();
    for kv in &order {
        let d = dest.iter().find(|v| key_of(v).as_ref() == Some(kv));
        let p = patch.iter().find(|v| key_of(v).as_ref() == Some(kv));
        match (d, p) {
            (_, Some(p)) if directive(p) == Some("delete") => {}
            (Some(d), Some(p)) => {
                if let Some(v) = merge(Some(d.clone()), p, gvk, path) {
                    out.push(v);
                }
            }
            (None, Some(p)) => out.push(strip(p)),
            (Some(d), None) => out.push(d.clone()),
            (None, None) => {}
        }
    }
    out.extend(dest.iter().filter(|v| key_of(v).is_none()).cloned());
    out
}

// ---- selection -------------------------------------------------------------------------

fn anchored(k: &Kustomization, field: &str, pat: &str) -> Result<Option<regex::Regex>, Error> {
    if pat.is_empty() {
        return Ok(None);
    }
    regex::Regex::new(&format!("^(?:{pat})$"))
        .map(Some)
        .map_err(|e| invalid(k, field, format!("invalid regular expression: {e}")))
}

/// Indices of the resources a target selects (kustomize's `ResMap.Select`).
pub fn select(
    k: &Kustomization,
    field: &str,
    list: &[Res],
    s: &Selector,
) -> Result<Vec<usize>, Error> {
    let f = format!("{field}.target");
    let g = anchored(k, &format!("{f}.group"), &s.gvk.group)?;
    let v = anchored(k, &format!("{f}.version"), &s.gvk.version)?;
    let kd = anchored(k, &format!("{f}.kind"), &s.gvk.kind)?;
    let n = anchored(k, &format!("{f}.name"), &s.name)?;
    let ns = anchored(k, &format!("{f}.namespace"), &s.namespace)?;
    let labels = parse_selector(k, &format!("{f}.labelSelector"), &s.label_selector)?;
    let annos = parse_selector(
        k,
        &format!("{f}.annotationSelector"),
        &s.annotation_selector,
    )?;
    let m = |re: &Option<regex::Regex>, x: &str| re.as_ref().is_none_or(|r| r.is_match(x));
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let (cur, org) = (r.cur_id(), r.org_id());
        if !m(&ns, org.effective_namespace()) && !m(&ns, cur.effective_namespace()) {
            continue;
        }
        if !m(&n, &org.name) && !m(&n, &cur.name) {
            continue;
        }
        if !m(&g, &cur.gvk.group) || !m(&v, &cur.gvk.version) || !m(&kd, &cur.gvk.kind) {
            continue;
        }
        if !matches_selector(&labels, &r.meta_map("labels"))
            || !matches_selector(&annos, &r.meta_map("annotations"))
        {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

#[derive(Debug)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn parse_selector(k: &Kustomization, field: &str, s: &str) -> Result<Vec<Req>, Error> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    let mut out = Vec::new();
    let set = |x: &str| -> Option<Vec<String>> {
        let x = x.trim();
        let inner = x.strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let bad = || invalid(k, field, format!("cannot parse selector requirement {p:?}"));
        if let Some(rest) = p.strip_prefix('!') {
            out.push(Req::NotExists(rest.trim().into()));
        } else if let Some((a, b)) = p.split_once("!=") {
            out.push(Req::NotEq(a.trim().into(), b.trim().into()));
        } else if let Some((a, b)) = p.split_once("==") {
            out.push(Req::Eq(a.trim().into(), b.trim().into()));
        } else if let Some((a, b)) = p.split_once('=') {
            out.push(Req::Eq(a.trim().into(), b.trim().into()));
        } else if let Some((a, b)) = p.split_once(" notin ") {
            out.push(Req::NotIn(a.trim().into(), set(b).ok_or_else(bad)?));
        } else if let Some((a, b)) = p.split_once(" in ") {
            out.push(Req::In(a.trim().into(), set(b).ok_or_else(bad)?));
        } else if p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            out.push(Req::Exists(p.into()));
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

fn matches_selector(reqs: &[Req], map: &[(String, String)]) -> bool {
    let get = |k: &str| map.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k) == Some(v),
        Req::NotEq(k, v) => get(k) != Some(v),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_patch_order_first() {
        let gvk = MergeCtx::new(Gvk::from_api_version("apps/v1", "Deployment"), None);
        let dest = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "c:1"}, {"name": "b", "image": "b:2"}]}}}});
        let out = merge(Some(dest), &patch, &gvk, &mut Vec::new()).unwrap();
        let names: Vec<_> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["c:1", "b:2", "a:1"]);
    }

    #[test]
    fn custom_resource_lists_are_replaced_and_nulls_delete() {
        let gvk = MergeCtx::new(Gvk::from_api_version("example.com/v1", "Thing"), None);
        let dest = json!({"spec": {"items": [{"name": "a"}], "x": 1, "y": 2}});
        let patch = json!({"spec": {"items": [{"name": "b"}], "x": null}});
        let out = merge(Some(dest), &patch, &gvk, &mut Vec::new()).unwrap();
        assert_eq!(out, json!({"spec": {"items": [{"name": "b"}], "y": 2}}));
    }
}
