//! `buildMetadata` (origin and transformer annotations, the managed-by label) and the
//! annotations kustomize never lets out of a build.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::kustomization::Kustomization;
use super::res::{BuildOrigin, Res};

/// The kustomize release whose behaviour the renderer follows; its managed-by label names it.
pub const KUSTOMIZE_VERSION: &str = "v5.8.1";

const ORIGIN: &str = "config.kubernetes.io/origin";
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Annotations kustomize's reader and build bookkeeping use, removed from every output object.
const INTERNAL: &[&str] = &[
    "internal.config.kubernetes.io/path",
    "internal.config.kubernetes.io/index",
    "internal.config.kubernetes.io/id",
    "internal.config.kubernetes.io/seqindent",
    "internal.config.kubernetes.io/annotations-migration-resource-id",
    "config.kubernetes.io/path",
    "config.kubernetes.io/index",
    "config.k8s.io/id",
    "internal.config.kubernetes.io/previousKinds",
    "internal.config.kubernetes.io/previousNames",
    "internal.config.kubernetes.io/prefixes",
    "internal.config.kubernetes.io/suffixes",
    "internal.config.kubernetes.io/previousNamespaces",
    "internal.config.kubernetes.io/allowNameChange",
    "internal.config.kubernetes.io/allowKindChange",
    "internal.config.kubernetes.io/refBy",
    "internal.config.kubernetes.io/generatorBehavior",
    "internal.config.kubernetes.io/needsHashSuffix",
];

/// Records that a builtin transformer of `k` ran over `list` (every object, matched or not, as
/// kustomize does); an object with no origin yet takes the transformer as its origin.
pub fn note_transformer(k: &Kustomization, list: &mut [Res], kind: &'static str) {
    if !k.track_origin {
        return;
    }
    let o = BuildOrigin::Builtin {
        configured_in: configured_in(k),
        kind,
    };
    for r in list {
        if r.build_origin.is_none() {
            r.build_origin = Some(o.clone());
        } else {
            r.transformations.push(o.clone());
        }
    }
}

/// Records that the builtin plugin configured by `config` (a `transformers` entry of `k`, read
/// from `file`, or inline when `None`) ran over `list`.
pub fn note_plugin(k: &Kustomization, list: &mut [Res], file: Option<&str>, config: &Res) {
    if !k.track_origin {
        return;
    }
    let o = BuildOrigin::Plugin {
        configured_in: file.map_or_else(|| configured_in(k), |f| join(&k.origin_path, f)),
        kind: config.kind().to_string(),
        name: config.name().to_string(),
    };
    for r in list {
        if r.build_origin.is_none() {
            r.build_origin = Some(o.clone());
        } else {
            r.transformations.push(o.clone());
        }
    }
}

/// Gives the objects `k`'s generators made (those without an origin) the generator as origin.
pub fn note_generated(k: &Kustomization, list: &mut [Res]) {
    if !k.track_origin {
        return;
    }
    for r in list.iter_mut().filter(|r| r.build_origin.is_none()) {
        let kind = if r.kind() == "Secret" {
            "SecretGenerator"
        } else {
            "ConfigMapGenerator"
        };
        r.build_origin = Some(BuildOrigin::Builtin {
            configured_in: configured_in(k),
            kind,
        });
    }
}

/// The last step of a build: the managed-by label and origin/transformer annotations the top
/// kustomization asks for, internal annotations removed, an emptied annotation map dropped.
pub fn finish(top: &Kustomization, list: &mut [Res]) {
    let wants = |o: &str| top.build_metadata.iter().any(|x| x == o);
    let (origins, transformations) = (wants("originAnnotations"), wants("transformerAnnotations"));
    for r in list.iter_mut() {
        if wants("managedByLabel") {
            let md = r.metadata_mut();
            let labels = md
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            labels.as_object_mut().expect("a mapping").insert(
                MANAGED_BY.into(),
                Value::String(format!("kustomize-{KUSTOMIZE_VERSION}")),
            );
        }
        let origin = r
            .build_origin
            .as_ref()
            .filter(|_| origins)
            .map(|o| yaml_text(&origin_value(o)));
        let done = (!r.transformations.is_empty() && transformations).then(|| {
            let list: Vec<Value> = r.transformations.iter().map(origin_value).collect();
            yaml_text(&Value::Array(list))
        });
        let md = r.metadata_mut();
        let Some(annotations) = md.get_mut("annotations").and_then(Value::as_object_mut) else {
            if origin.is_none() && done.is_none() {
                continue;
            }
            md.insert("annotations".into(), Value::Object(Map::new()));
            let a = md["annotations"].as_object_mut().expect("just made");
            set(a, origin, done);
            continue;
        };
        for key in INTERNAL {
            annotations.remove(*key);
        }
        annotations.remove(ORIGIN);
        annotations.remove(TRANSFORMATIONS);
        set(annotations, origin, done);
        if annotations.is_empty() {
            md.remove("annotations");
        }
    }
}

fn set(a: &mut Map<String, Value>, origin: Option<String>, transformations: Option<String>) {
    if let Some(t) = transformations {
        a.insert(TRANSFORMATIONS.into(), Value::String(t));
    }
    if let Some(o) = origin {
        a.insert(ORIGIN.into(), Value::String(o));
    }
}

fn yaml_text(v: &Value) -> String {
    crate::manifest::to_yaml_value(v)
}

/// `path` (a relative path as written) joined to the origin path of `k`'s folder.
pub fn origin_path(k: &Kustomization, path: &str) -> String {
    join(&k.origin_path, path)
}

fn configured_in(k: &Kustomization) -> String {
    let name = k.file.file_name().map(|n| n.to_string_lossy().into_owned());
    join(&k.origin_path, &name.unwrap_or_default())
}

/// Go's `filepath.Join`: joined, `.` dropped, `name/..` removed, leading `..` kept.
pub fn join(base: &str, path: &str) -> String {
    let joined = super::build::normalize(&Path::new(base).join(path));
    let s = joined.to_string_lossy().into_owned();
    if s.is_empty() { ".".into() } else { s }
}

/// kustomize's Origin as a mapping: `path` for a file, `configuredIn` and `configuredBy` for a
/// builtin plugin.
fn origin_value(o: &BuildOrigin) -> Value {
    match o {
        BuildOrigin::File(p) => json!({ "path": p }),
        BuildOrigin::Builtin {
            configured_in,
            kind,
        } => json!({
            "configuredIn": configured_in,
            "configuredBy": { "apiVersion": "builtin", "kind": kind },
        }),
        BuildOrigin::Plugin {
            configured_in,
            kind,
            name,
        } => json!({
            "configuredIn": configured_in,
            "configuredBy": { "apiVersion": "builtin", "kind": kind, "name": name },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_go() {
        assert_eq!(join("", "./x.yaml"), "x.yaml");
        assert_eq!(join("", "../a/base"), "../a/base");
        assert_eq!(join("../a/base", "dep.yaml"), "../a/base/dep.yaml");
        assert_eq!(join("base", "../other/x.yaml"), "other/x.yaml");
        assert_eq!(join("", "."), ".");
    }

    #[test]
    fn origins_are_kustomize_shaped() {
        assert_eq!(
            yaml_text(&origin_value(&BuildOrigin::File("../b/d.yaml".into()))),
            "path: ../b/d.yaml\n"
        );
        let t = origin_value(&BuildOrigin::Builtin {
            configured_in: "kustomization.yaml".into(),
            kind: "PatchTransformer",
        });
        assert_eq!(
            yaml_text(&Value::Array(vec![t])),
            "- configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PatchTransformer\n"
        );
    }
}
