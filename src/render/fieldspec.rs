//! Field specs: "which field of which kinds" a transformer touches, walked the way kustomize
//! walks them (lists are traversed implicitly; `create` makes missing mappings on the way).

use serde_json::{Map, Value};

use super::res::GvkSel;
use crate::manifest::Gvk;

#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub gvk: GvkSel,
    pub path: String,
    pub create: bool,
}

/// What a created leaf starts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Never create anything.
    None,
    Scalar,
    Map,
}

impl FieldSpec {
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> Self {
        FieldSpec {
            gvk: GvkSel::new(group, version, kind),
            path: path.to_string(),
            create,
        }
    }

    /// kustomize's `isMatchGVK`: every non-empty part must be equal.
    pub fn matches(&self, gvk: &Gvk) -> bool {
        self.gvk.selects(gvk)
    }
}

/// Splits a field path at `/`, keeping `\/` as a literal slash.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    for seg in path.split('/') {
        let seg = match pending.take() {
            Some(p) => format!("{p}/{seg}"),
            None => seg.to_string(),
        };
        if let Some(stripped) = seg.strip_suffix('\\') {
            pending = Some(stripped.to_string());
        } else {
            out.push(seg);
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// Applies `set` to every value `fs` designates in `obj` (when `fs` matches `gvk`).
pub fn apply(
    obj: &mut Value,
    gvk: &Gvk,
    fs: &FieldSpec,
    leaf: Leaf,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if !fs.matches(gvk) {
        return Ok(());
    }
    let path = split_path(&fs.path);
    walk(obj, &path, fs.create, leaf, set)
        .map_err(|e| format!("considering field '{}': {e}", fs.path))
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: bool,
    leaf: Leaf,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if path.is_empty() {
        return set(node);
    }
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => {
            for it in items {
                walk(it, path, create, leaf, set)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let (name, is_seq) = match path[0].strip_suffix("[]") {
                Some(n) => (n, true),
                None => (path[0].as_str(), false),
            };
            if name.is_empty() {
                return Err("cannot set or create an empty field name".into());
            }
            let creating = create && leaf != Leaf::None && !is_seq;
            let last = path.len() == 1;
            let fresh = || {
                if !last || leaf == Leaf::Map {
                    Value::Object(Map::new())
                } else {
                    Value::String(String::new())
                }
            };
            if !map.contains_key(name) {
                if !creating {
                    return Ok(());
                }
                map.insert(name.to_string(), fresh());
            }
            let field = map.get_mut(name).expect("present");
            if field.is_null() && creating {
                *field = fresh();
            }
            walk(field, &path[1..], create, leaf, set)
        }
        _ => Err("expected sequence or mapping node".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaped_slashes_stay_in_the_segment() {
        assert_eq!(
            split_path(r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-secret"),
            [
                "metadata",
                "annotations",
                "nginx.ingress.kubernetes.io/auth-secret"
            ]
        );
    }

    #[test]
    fn walks_lists_and_creates_maps() {
        let mut v = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let gvk = Gvk::from_api_version("v1", "Pod");
        let fs = FieldSpec::new("", "", "Pod", "spec/containers/image", true);
        apply(&mut v, &gvk, &fs, Leaf::Scalar, &mut |x| {
            *x = json!("img");
            Ok(())
        })
        .unwrap();
        assert_eq!(v["spec"]["containers"][1]["image"], "img");
        let fs = FieldSpec::new("", "", "", "metadata/labels", true);
        apply(&mut v, &gvk, &fs, Leaf::Map, &mut |x| {
            x.as_object_mut().unwrap().insert("a".into(), json!("b"));
            Ok(())
        })
        .unwrap();
        assert_eq!(v["metadata"]["labels"]["a"], "b");
        let fs = FieldSpec::new("", "", "Deployment", "metadata/labels", true);
        let mut called = false;
        apply(&mut v, &gvk, &fs, Leaf::Map, &mut |_| {
            called = true;
            Ok(())
        })
        .unwrap();
        assert!(!called, "kind does not match");
    }
}
