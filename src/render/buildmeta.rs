//! `buildMetadata` (origin and transformer annotations, the managed-by label) and the
//! annotations kustomize never lets out of a build.

use std::path::{Component, Path, PathBuf};

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
        kustomization: k.file.clone(),
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
            kustomization: k.file.clone(),
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
            .map(|o| yaml_text(&origin_value(o, &top.dir)));
        let done = (!r.transformations.is_empty() && transformations).then(|| {
            let list: Vec<Value> = r
                .transformations
                .iter()
                .map(|o| origin_value(o, &top.dir))
                .collect();
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

/// kustomize's Origin as a mapping: `path` for a file, `configuredIn` and `configuredBy` for a
/// builtin plugin; paths relative to the built folder.
fn origin_value(o: &BuildOrigin, top: &Path) -> Value {
    match o {
        BuildOrigin::File(p) => json!({ "path": relative(top, p) }),
        BuildOrigin::Builtin {
            kustomization,
            kind,
        } => json!({
            "configuredIn": relative(top, kustomization),
            "configuredBy": { "apiVersion": "builtin", "kind": kind },
        }),
    }
}

/// `to` relative to the folder `from`, lexically (both are built from the same joins).
pub fn relative(from: &Path, to: &Path) -> String {
    let from = super::build::normalize(from);
    let to = super::build::normalize(to);
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c.as_os_str());
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_go_up_and_down() {
        assert_eq!(relative(Path::new("a/overlay"), Path::new("a/overlay/x.yaml")), "x.yaml");
        assert_eq!(
            relative(Path::new("a/overlay"), Path::new("a/overlay/../base/d.yaml")),
            "../base/d.yaml"
        );
        assert_eq!(relative(Path::new("./o"), Path::new("o/./k/kustomization.yaml")), "k/kustomization.yaml");
    }

    #[test]
    fn origins_are_kustomize_shaped() {
        let top = Path::new("/r/o");
        assert_eq!(
            yaml_text(&origin_value(&BuildOrigin::File("/r/b/d.yaml".into()), top)),
            "path: ../b/d.yaml\n"
        );
        let t = origin_value(
            &BuildOrigin::Builtin {
                kustomization: "/r/o/kustomization.yaml".into(),
                kind: "PatchTransformer",
            },
            top,
        );
        assert_eq!(
            yaml_text(&Value::Array(vec![t])),
            "- configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PatchTransformer\n"
        );
    }
}
