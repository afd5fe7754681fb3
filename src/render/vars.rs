//! Legacy `vars`: `$(NAME)` in kustomize's var-reference fields (container command, args, env
//! values, mount paths, Ingress hosts, labels and annotations...) becomes a field of the object
//! `objref` names. Each level ties its vars to the objects it holds after its transformers (by
//! any name they had); the top level resolves them all after name references are fixed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::Error;
use super::fieldspec::{self, FieldSpec, Leaf};
use super::kustomization::Kustomization;
use super::replacements::{Fields, lookup, split_path};
use super::res::{Id, Res};
use crate::manifest::Gvk;

#[derive(Debug, Clone)]
pub struct Var {
    name: String,
    gvk: Gvk,
    obj_name: String,
    namespace: String,
    field_path: String,
    /// Where it is declared, for messages.
    file: PathBuf,
    field: String,
}

/// The vars accumulated so far, by name (kustomize resolves them in name order).
#[derive(Debug, Clone, Default)]
pub struct VarSet {
    vars: BTreeMap<String, Var>,
}

fn conflict(file: PathBuf, field: &str, name: &str, first: &Var) -> Error {
    Error::Invalid {
        file,
        field: field.to_string(),
        problem: format!(
            "var {name} is already declared ({} `{}`): var names must be unique",
            first.file.display(),
            first.field
        ),
    }
}

impl VarSet {
    fn add(&mut self, file: PathBuf, field: &str, v: Var) -> Result<(), Error> {
        if let Some(first) = self.vars.get(&v.name) {
            return Err(conflict(file, field, &v.name, first));
        }
        self.vars.insert(v.name.clone(), v);
        Ok(())
    }

    /// Adds the vars of a base (`field` is the `resources` entry that brought them).
    pub fn merge_set(
        &mut self,
        k: &Kustomization,
        field: &str,
        other: VarSet,
    ) -> Result<(), Error> {
        for (_, v) in other.vars {
            self.add(k.file.clone(), field, v)?;
        }
        Ok(())
    }
}

fn parse(k: &Kustomization) -> Result<Vec<Var>, Error> {
    let list = match &k.vars {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field: "vars".into(),
                problem: "expected a list".into(),
            });
        }
    };
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let f = format!("vars[{i}]");
        let m = Fields::new(k, v, &f, &["name", "objref", "fieldref"])?;
        let name = m.string(k, &f, "name")?;
        if name.is_empty() {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field: format!("{f}.name"),
                problem: "a var needs a name".into(),
            });
        }
        let of = format!("{f}.objref");
        let o = m.get("objref").unwrap_or(&Value::Null);
        let empty = Value::Object(Default::default());
        let om = Fields::new(
            k,
            if o.is_null() { &empty } else { o },
            &of,
            &[
                "apiVersion",
                "group",
                "version",
                "kind",
                "name",
                "namespace",
            ],
        )?;
        let s = |n: &str| om.string(k, &of, n);
        let mut gvk = Gvk {
            group: s("group")?,
            version: s("version")?,
            kind: s("kind")?,
        };
        let api_version = s("apiVersion")?;
        if !api_version.is_empty() {
            match api_version.split_once('/') {
                Some((g, v)) => {
                    gvk.group = g.into();
                    gvk.version = v.into();
                }
                None => gvk.version = api_version,
            }
        }
        let ff = format!("{f}.fieldref");
        let field_path = match m.get("fieldref") {
            Some(x) => Fields::new(k, x, &ff, &["fieldPath"])?.string(k, &ff, "fieldPath")?,
            None => String::new(),
        };
        out.push(Var {
            name,
            gvk,
            obj_name: s("name")?,
            namespace: s("namespace")?,
            field_path: if field_path.is_empty() {
                "metadata.name".into()
            } else {
                field_path
            },
            file: k.file.clone(),
            field: f,
        });
    }
    Ok(out)
}

/// kustomize's `MergeVars`: ties each var of `k` to the one object its `objref` names (by any
/// of the object's names) and adds it to the set.
pub fn merge(k: &Kustomization, list: &mut [Res], set: &mut VarSet) -> Result<(), Error> {
    for v in parse(k)? {
        let target = Id {
            gvk: v.gvk.clone(),
            name: v.obj_name.clone(),
            namespace: v.namespace.clone(),
        };
        let strict_ns = !target.namespace.is_empty() || target.is_cluster_scoped();
        let hits: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.any_id(|id| {
                    id.gvk == target.gvk
                        && id.name == target.name
                        && (!strict_ns || id.ns_equals(&target))
                })
            })
            .map(|(i, _)| i)
            .collect();
        if hits.len() > 1 {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field: v.field.clone(),
                problem: format!(
                    "{} objects match the objref of var {} ({target}): give a namespace to pick one",
                    hits.len(),
                    v.name
                ),
            });
        }
        if let Some(&i) = hits.first() {
            list[i].ref_vars.push(v.name.clone());
        }
        set.add(k.file.clone(), &v.field.clone(), v)?;
    }
    Ok(())
}

const CONTAINER_FIELDS: [&str; 8] = [
    "containers/args",
    "containers/command",
    "containers/env/value",
    "containers/volumeMounts/mountPath",
    "initContainers/args",
    "initContainers/command",
    "initContainers/env/value",
    "initContainers/volumeMounts/mountPath",
];

fn pod(out: &mut Vec<FieldSpec>, kind: &str, pod_spec: &str, nfs: &str) {
    for c in CONTAINER_FIELDS {
        out.push(FieldSpec::new(
            "",
            "",
            kind,
            &format!("{pod_spec}/{c}"),
            false,
        ));
    }
    out.push(FieldSpec::new("", "", kind, nfs, false));
}

/// kustomize's default var-reference fields.
fn reference_fields() -> Vec<FieldSpec> {
    let mut out = Vec::new();
    let t = "spec/template/spec";
    pod(
        &mut out,
        "CronJob",
        "spec/jobTemplate/spec/template/spec",
        "spec/jobTemplate/spec/template/volumes/nfs/server",
    );
    pod(
        &mut out,
        "DaemonSet",
        t,
        "spec/template/spec/volumes/nfs/server",
    );
    pod(
        &mut out,
        "Deployment",
        t,
        "spec/template/spec/volumes/nfs/server",
    );
    let fs = FieldSpec::new;
    out.push(fs(
        "",
        "",
        "Deployment",
        "spec/template/metadata/annotations",
        false,
    ));
    for p in ["spec/rules/host", "spec/tls/hosts", "spec/tls/secretName"] {
        out.push(fs("", "", "Ingress", p, false));
    }
    pod(&mut out, "Job", t, "spec/template/spec/volumes/nfs/server");
    pod(&mut out, "Pod", "spec", "spec/volumes/nfs/server");
    pod(
        &mut out,
        "ReplicaSet",
        t,
        "spec/template/spec/volumes/nfs/server",
    );
    out.push(fs("", "", "Service", "spec/ports/port", false));
    out.push(fs("", "", "Service", "spec/ports/targetPort", false));
    pod(
        &mut out,
        "StatefulSet",
        t,
        "spec/volumeClaimTemplates/spec/nfs/server",
    );
    out.push(fs("", "", "PersistentVolume", "spec/nfs/server", false));
    out.push(fs("", "", "", "metadata/labels", false));
    out.push(fs("", "", "", "metadata/annotations", false));
    out
}

/// A var's value: kustomize substitutes strings, numbers and booleans only.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Expands `$(NAME)` in `input` (`$$` is a literal `$`); a whole-string reference takes the
/// value's type.
fn expand(input: &str, values: &BTreeMap<String, Value>) -> Value {
    let b = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let (read, is_var, advance) = match rest.as_bytes()[0] {
                b'$' => ("$".to_string(), false, 1),
                b'(' => match rest[1..].find(')') {
                    Some(end) => (rest[1..1 + end].to_string(), true, end + 2),
                    None => ("$(".to_string(), false, 1),
                },
                _ => {
                    let c = rest.chars().next().expect("non-empty");
                    (format!("${c}"), false, c.len_utf8())
                }
            };
            if is_var {
                let mapped = values.get(&read).filter(|v| text_of(v).is_some());
                if input == format!("$({read})") {
                    return match mapped {
                        Some(v) => v.clone(),
                        None => Value::String(input.to_string()),
                    };
                }
                match mapped.and_then(text_of) {
                    Some(t) => out.push_str(&t),
                    None => out.push_str(&format!("$({read})")),
                }
            } else {
                out.push_str(&read);
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    Value::String(out)
}

fn expand_node(node: &mut Value, values: &BTreeMap<String, Value>) -> Result<(), String> {
    match node {
        Value::Null => Ok(()),
        Value::String(s) => {
            *node = expand(s, values);
            Ok(())
        }
        Value::Array(items) => {
            for it in items {
                let Value::String(s) = it else {
                    return Err("a list holding variables must hold strings only".into());
                };
                *it = expand(s, values);
            }
            Ok(())
        }
        Value::Object(m) => {
            for (_, v) in m.iter_mut() {
                if let Value::String(s) = v {
                    *v = expand(s, values);
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// kustomize's var expansion takes an untagged scalar for a string and tags it so: a number or
/// boolean a replacement created (see [`Res::untagged`]) at or right under `at` becomes its
/// text.
fn settle_created(node: &mut Value, at: &str, untagged: &[String]) {
    let settle = |v: &mut Value, pointer: &str| {
        if let Value::Number(_) | Value::Bool(_) = v
            && untagged.iter().any(|u| u == pointer)
        {
            *v = Value::String(text_of(v).unwrap_or_default());
        }
    };
    match node {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                settle(v, &format!("{at}{}", fieldspec::pointer_segment(k)));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                settle(v, &format!("{at}/{i}"));
            }
        }
        _ => settle(node, at),
    }
}

/// kustomize's `ResolveVars`: every var must name an object with the field; `$(NAME)`s in the
/// var-reference fields are replaced (unknown names stay as written).
pub fn resolve(top: &Kustomization, list: &mut [Res], set: &VarSet) -> Result<(), Error> {
    if set.vars.is_empty() {
        return Ok(());
    }
    let mut values = BTreeMap::new();
    for (name, v) in &set.vars {
        let Some(res) = list.iter().find(|r| r.ref_vars.iter().any(|n| n == name)) else {
            return Err(Error::Invalid {
                file: v.file.clone(),
                field: v.field.clone(),
                problem: format!(
                    "var {name}: no object matches its objref ({} {}{})",
                    v.gvk.kind,
                    if v.namespace.is_empty() {
                        String::new()
                    } else {
                        format!("{}/", v.namespace)
                    },
                    v.obj_name
                ),
            });
        };
        let mut parts = Vec::new();
        for p in split_path(&v.field_path) {
            // `ports[0]` is `ports` then `0`.
            match p.strip_suffix(']').and_then(|x| x.rsplit_once('[')) {
                Some((head, idx)) if !idx.is_empty() && idx.bytes().all(|c| c.is_ascii_digit()) => {
                    if !head.is_empty() {
                        parts.push(head.to_string());
                    }
                    parts.push(idx.to_string());
                }
                _ => parts.push(p),
            }
        }
        // kustomize decodes the field it reads: text under a tag that cannot hold it is as
        // good as missing.
        let pointer: String = parts
            .iter()
            .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
            .collect();
        let value = lookup(&res.value, &parts)
            .ok()
            .flatten()
            .filter(|_| !res.is_mistyped_at(&pointer))
            .ok_or_else(|| Error::Invalid {
                file: v.file.clone(),
                field: format!("{}.fieldref.fieldPath", v.field),
                problem: format!("var {name}: {} has no field {}", res.cur_id(), v.field_path),
            })?;
        values.insert(name.clone(), value.clone());
    }
    let specs = reference_fields();
    for r in list.iter_mut() {
        let gvk = r.gvk();
        let id = r.cur_id();
        let untagged = &r.untagged;
        for fs in &specs {
            fieldspec::apply_at(&mut r.value, &gvk, fs, Leaf::None, &mut |n, at| {
                settle_created(n, at, untagged);
                expand_node(n, &values)
            })
            .map_err(|problem| Error::Invalid {
                file: top.file.clone(),
                field: "vars".into(),
                problem: format!("{id}: {problem}"),
            })?;
        }
        // kustomize rewrites an object's annotations as strings when it removes its build
        // annotations: a whole-value number or boolean there ends up quoted.
        if let Some(Value::Object(a)) = r
            .value
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
        {
            for v in a.values_mut() {
                if let Value::Number(_) | Value::Bool(_) = v {
                    *v = Value::String(text_of(v).unwrap_or_default());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_kustomize() {
        let mut values = BTreeMap::new();
        values.insert("A".to_string(), json!("x"));
        values.insert("N".to_string(), json!(5));
        assert_eq!(
            expand("$(A)-$(B)-$$(A)-$(A", &values),
            json!("x-$(B)-$(A)-$(A")
        );
        assert_eq!(expand("$(N)", &values), json!(5));
        assert_eq!(expand("port $(N)", &values), json!("port 5"));
        assert_eq!(expand("a$", &values), json!("a$"));
    }

    #[test]
    fn only_created_scalars_in_reached_fields_become_text() {
        let created = vec![
            "/labels/port".to_string(),
            "/args/1".to_string(),
            "/replicas".to_string(),
            "/labels/a~1b".to_string(),
        ];
        let mut labels = json!({"port": 80, "typed": 81, "a/b": true});
        settle_created(&mut labels, "/labels", &created);
        assert_eq!(labels, json!({"port": "80", "typed": 81, "a/b": "true"}));
        let mut args = json!([1, 2]);
        settle_created(&mut args, "/args", &created);
        assert_eq!(args, json!([1, "2"]));
        let mut replicas = json!(3);
        settle_created(&mut replicas, "/replicas", &created);
        assert_eq!(replicas, json!("3"));
        let mut other = json!(3);
        settle_created(&mut other, "/other", &created);
        assert_eq!(other, json!(3));
    }
}
