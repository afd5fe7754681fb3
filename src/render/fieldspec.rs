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
    apply_at(obj, gvk, fs, leaf, &mut |v, _| set(v))
}

/// [`apply`], also giving `set` the JSON pointer of each value.
pub fn apply_at(
    obj: &mut Value,
    gvk: &Gvk,
    fs: &FieldSpec,
    leaf: Leaf,
    set: &mut dyn FnMut(&mut Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    if !fs.matches(gvk) {
        return Ok(());
    }
    let path = split_path(&fs.path);
    let mut at = String::new();
    walk(obj, &path, fs.create, leaf, &mut at, set)
        .map_err(|e| format!("considering field '{}': {e}", fs.path))
}

/// `name` as one JSON-pointer segment.
pub fn pointer_segment(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: bool,
    leaf: Leaf,
    at: &mut String,
    set: &mut dyn FnMut(&mut Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    if path.is_empty() {
        return set(node, at);
    }
    let len = at.len();
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => {
            for (i, it) in items.iter_mut().enumerate() {
                at.push_str(&format!("/{i}"));
                let r = walk(it, path, create, leaf, at, set);
                at.truncate(len);
                r?;
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
            at.push_str(&pointer_segment(name));
            let r = walk(field, &path[1..], create, leaf, at, set);
            at.truncate(len);
            r
        }
        _ => Err("expected sequence or mapping node".into()),
    }
}

/// kustomize's `effectivelyEquals`: same path, and `other`'s non-empty GVK parts equal `have`'s.
fn effectively_equal(have: &FieldSpec, other: &FieldSpec) -> bool {
    have.path == other.path
        && (other.gvk.group.is_empty() || other.gvk.group == have.gvk.group)
        && (other.gvk.version.is_empty() || other.gvk.version == have.gvk.version)
        && (other.gvk.kind.is_empty() || other.gvk.kind == have.gvk.kind)
}

/// kustomize's `FsSlice.MergeAll`: appends what is not (effectively) there yet; a spec that is
/// there with another `create` is a conflict.
pub fn merge_specs(into: &mut Vec<FieldSpec>, incoming: &[FieldSpec]) -> Result<(), String> {
    for x in incoming {
        match into.iter().find(|h| effectively_equal(h, x)) {
            Some(h) if h.create != x.create => {
                return Err(format!(
                    "conflicting fieldspecs for path {:?} (create: {} and {})",
                    x.path, h.create, x.create
                ));
            }
            Some(_) => {}
            None => into.push(x.clone()),
        }
    }
    Ok(())
}

/// Drops from `extra` what the defaults already hold (kustomize merges user field specs into
/// its defaults, which the transformers keep themselves).
pub fn beyond_defaults(defaults: &[FieldSpec], extra: &[FieldSpec]) -> Vec<FieldSpec> {
    extra
        .iter()
        .filter(|x| !defaults.iter().any(|d| effectively_equal(d, x)))
        .cloned()
        .collect()
}

/// A `nameReference` entry: the kind referred to and the fields that name such an object.
#[derive(Debug, Clone, Default)]
pub struct NameBackRef {
    pub target: GvkSel,
    pub referrers: Vec<FieldSpec>,
}

/// Field specs that `configurations` files and `crds` add to kustomize's defaults (the defaults
/// stay with the transformers that use them). Accumulated from the kustomizations a build
/// includes, like kustomize's transformer config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

/// The keys of a transformer configuration file, in kustomize's spelling.
const CONFIG_KEYS: &[&str] = &[
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "templateLabels",
    "commonAnnotations",
    "nameReference",
    "varReference",
    "images",
    "replicas",
];

fn gvk_of(m: &Map<String, Value>, field: &str) -> Result<GvkSel, String> {
    let s = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{field}.{k}: expected a string")),
    };
    Ok(GvkSel::new(&s("group")?, &s("version")?, &s("kind")?))
}

/// A list of field specs (`group`, `version`, `kind`, `path`, `create`), as kustomize reads
/// them: unknown keys are ignored.
pub fn parse_specs(v: &Value, field: &str) -> Result<Vec<FieldSpec>, String> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(format!("{field}: expected a list of field specs")),
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let m = it
            .as_object()
            .ok_or_else(|| format!("{f}: expected a mapping"))?;
        let path = match m.get("path") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(format!("{f}.path: expected a string")),
        };
        let create = match m.get("create") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{f}.create: expected true or false")),
        };
        out.push(FieldSpec {
            gvk: gvk_of(m, &f)?,
            path,
            create,
        });
    }
    Ok(out)
}

impl Config {
    /// Reads a `configurations` file's content.
    pub fn parse(v: &Value) -> Result<Config, String> {
        let mut c = Config::default();
        let m = match v {
            Value::Null => return Ok(c),
            Value::Object(m) => m,
            _ => return Err("expected a mapping of transformer names to field specs".into()),
        };
        for (key, x) in m {
            if !CONFIG_KEYS.contains(&key.as_str()) {
                // kustomize reads these files leniently: other keys are ignored.
                continue;
            }
            if key == "nameReference" {
                let items = match x {
                    Value::Null => continue,
                    Value::Array(a) => a,
                    _ => return Err("nameReference: expected a list".into()),
                };
                for (i, it) in items.iter().enumerate() {
                    let f = format!("nameReference[{i}]");
                    let im = it
                        .as_object()
                        .ok_or_else(|| format!("{f}: expected a mapping"))?;
                    let nbr = NameBackRef {
                        target: gvk_of(im, &f)?,
                        referrers: parse_specs(
                            im.get("fieldSpecs").unwrap_or(&Value::Null),
                            &format!("{f}.fieldSpecs"),
                        )?,
                    };
                    c.add_name_reference(nbr)?;
                }
                continue;
            }
            let specs = parse_specs(x, key)?;
            merge_specs(c.slot(key), &specs)?;
        }
        Ok(c)
    }

    fn get(&self, key: &str) -> &[FieldSpec] {
        match key {
            "namePrefix" => &self.name_prefix,
            "nameSuffix" => &self.name_suffix,
            "namespace" => &self.namespace,
            "commonLabels" => &self.common_labels,
            "labels" => &self.labels,
            "templateLabels" => &self.template_labels,
            "commonAnnotations" => &self.common_annotations,
            "varReference" => &self.var_reference,
            "images" => &self.images,
            _ => &self.replicas,
        }
    }

    fn slot(&mut self, key: &str) -> &mut Vec<FieldSpec> {
        match key {
            "namePrefix" => &mut self.name_prefix,
            "nameSuffix" => &mut self.name_suffix,
            "namespace" => &mut self.namespace,
            "commonLabels" => &mut self.common_labels,
            "labels" => &mut self.labels,
            "templateLabels" => &mut self.template_labels,
            "commonAnnotations" => &mut self.common_annotations,
            "varReference" => &mut self.var_reference,
            "images" => &mut self.images,
            _ => &mut self.replicas,
        }
    }

    /// kustomize's `nbrSlice.mergeOne`: same referred GVK merges the referrers.
    pub fn add_name_reference(&mut self, nbr: NameBackRef) -> Result<(), String> {
        match self
            .name_reference
            .iter_mut()
            .find(|n| n.target == nbr.target)
        {
            Some(n) => merge_specs(&mut n.referrers, &nbr.referrers),
            None => {
                self.name_reference.push(nbr);
                Ok(())
            }
        }
    }

    /// Merges `other` into this (kustomize's `TransformerConfig.Merge`).
    pub fn merge(&mut self, other: &Config) -> Result<(), String> {
        for key in CONFIG_KEYS {
            if *key == "nameReference" {
                continue;
            }
            let theirs = other.get(key);
            merge_specs(self.slot(key), theirs)?;
        }
        for n in &other.name_reference {
            self.add_name_reference(n.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configurations_merge_like_kustomize() {
        let v: Value = serde_yaml_ng::from_str(
            "namePrefix:\n- path: metadata/name\n  kind: App\n- path: spec/host\n  kind: App\n\
             nameReference:\n- kind: ConfigMap\n  version: v1\n  fieldSpecs:\n  - kind: App\n    path: spec/cm\n\
             unknownKey: ignored\n",
        )
        .unwrap();
        let mut c = Config::parse(&v).unwrap();
        assert_eq!(c.name_prefix.len(), 2);
        // The same specs again add nothing; a new referrer for the same kind joins its entry.
        let again = Config::parse(&v).unwrap();
        c.merge(&again).unwrap();
        assert_eq!(c.name_prefix.len(), 2);
        let more: Value = serde_yaml_ng::from_str(
            "nameReference:\n- kind: ConfigMap\n  version: v1\n  fieldSpecs:\n  - kind: App\n    path: spec/other\n",
        )
        .unwrap();
        c.merge(&Config::parse(&more).unwrap()).unwrap();
        assert_eq!(c.name_reference.len(), 1);
        assert_eq!(c.name_reference[0].referrers.len(), 2);
        // A spec a wildcard default already covers is not added again; a narrower one is.
        let defaults = [FieldSpec::new("", "", "", "metadata/name", true)];
        let extra = [
            FieldSpec::new("", "", "", "metadata/name", true),
            FieldSpec::new("", "", "App", "metadata/name", true),
        ];
        assert_eq!(beyond_defaults(&defaults, &extra).len(), 1);
        // The same path with another `create` conflicts.
        let mut l = vec![FieldSpec::new("", "", "App", "spec/x", true)];
        assert!(merge_specs(&mut l, &[FieldSpec::new("", "", "App", "spec/x", false)]).is_err());
    }

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
