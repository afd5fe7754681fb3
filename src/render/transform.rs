//! kustomize's built-in transformers: namespace, name prefix/suffix, labels, annotations,
//! images and replicas, with the field specs kustomize applies them to.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Error;
use super::fieldspec::{self, FieldSpec, Leaf};
use super::kustomization::{ImageSpec, Kustomization, LabelSpec, ReplicaSpec};
use super::res::{IdKey, Res};

type Spec = (&'static str, &'static str, &'static str, &'static str, bool);

fn specs(table: &[Spec]) -> Vec<FieldSpec> {
    table
        .iter()
        .map(|(g, v, k, p, c)| FieldSpec::new(g, v, k, p, *c))
        .collect()
}

const AFFINITY: &[&str] = &[
    "podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
];

/// Where labels go on metadata and pod templates (kustomize's metadata-labels specs).
const METADATA_LABELS: &[Spec] = &[
    ("", "", "", "metadata/labels", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/labels",
        true,
    ),
    ("", "", "Deployment", "spec/template/metadata/labels", true),
    ("", "", "ReplicaSet", "spec/template/metadata/labels", true),
    ("", "", "DaemonSet", "spec/template/metadata/labels", true),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/template/metadata/labels",
        true,
    ),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates[]/metadata/labels",
        true,
    ),
    ("batch", "", "Job", "spec/template/metadata/labels", true),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/labels",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/labels",
        true,
    ),
];

/// Field specs of `commonLabels` (and `labels` with `includeSelectors`).
fn common_label_specs() -> Vec<FieldSpec> {
    let mut out = specs(&[
        ("", "v1", "Service", "spec/selector", true),
        ("", "v1", "ReplicationController", "spec/selector", true),
        ("", "", "Deployment", "spec/selector/matchLabels", true),
    ]);
    let affinity = |out: &mut Vec<FieldSpec>, kind: &str| {
        for a in AFFINITY {
            out.push(FieldSpec::new(
                "apps",
                "",
                kind,
                &format!("spec/template/spec/affinity/{a}"),
                false,
            ));
        }
        out.push(FieldSpec::new(
            "apps",
            "",
            kind,
            "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
            false,
        ));
    };
    affinity(&mut out, "Deployment");
    out.extend(specs(&[
        ("", "", "ReplicaSet", "spec/selector/matchLabels", true),
        ("", "", "DaemonSet", "spec/selector/matchLabels", true),
        ("apps", "", "StatefulSet", "spec/selector/matchLabels", true),
    ]));
    affinity(&mut out, "StatefulSet");
    out.extend(specs(&[
        ("batch", "", "Job", "spec/selector/matchLabels", false),
        (
            "batch",
            "",
            "CronJob",
            "spec/jobTemplate/spec/selector/matchLabels",
            false,
        ),
        (
            "policy",
            "",
            "PodDisruptionBudget",
            "spec/selector/matchLabels",
            false,
        ),
        (
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/podSelector/matchLabels",
            false,
        ),
        (
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/ingress/from/podSelector/matchLabels",
            false,
        ),
        (
            "networking.k8s.io",
            "",
            "NetworkPolicy",
            "spec/egress/to/podSelector/matchLabels",
            false,
        ),
    ]));
    out.extend(specs(METADATA_LABELS));
    out
}

const COMMON_ANNOTATIONS: &[Spec] = &[
    ("", "", "", "metadata/annotations", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "Deployment",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "ReplicaSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "DaemonSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "StatefulSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "Job",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ),
];

const IMAGES: &[Spec] = &[
    ("", "", "", "spec/containers[]/image", true),
    ("", "", "", "spec/initContainers[]/image", true),
    ("", "", "", "spec/volumes[]/image/reference", true),
    ("", "", "", "spec/template/spec/containers[]/image", true),
    (
        "",
        "",
        "",
        "spec/template/spec/initContainers[]/image",
        true,
    ),
    (
        "",
        "",
        "",
        "spec/template/spec/volumes[]/image/reference",
        true,
    ),
];

const REPLICAS: &[Spec] = &[
    ("", "", "Deployment", "spec/replicas", true),
    ("", "", "ReplicationController", "spec/replicas", true),
    ("", "", "ReplicaSet", "spec/replicas", true),
    ("", "", "StatefulSet", "spec/replicas", true),
];

fn invalid(k: &Kustomization, field: &str, res: &Res, problem: String) -> Error {
    Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: format!("{}: {problem}", res.cur_id()),
    }
}

fn set_string(to: &str) -> impl FnMut(&mut Value) -> Result<(), String> + '_ {
    move |v: &mut Value| match v {
        Value::Object(_) | Value::Array(_) => Err("expected a scalar".into()),
        _ => {
            *v = Value::String(to.to_string());
            Ok(())
        }
    }
}

fn set_pairs(pairs: &[(String, String)]) -> impl FnMut(&mut Value) -> Result<(), String> + '_ {
    move |v: &mut Value| {
        if v.is_null() {
            *v = Value::Object(Default::default());
        }
        let m = v
            .as_object_mut()
            .ok_or_else(|| "expected a mapping".to_string())?;
        let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
        sorted.sort();
        for (k, val) in sorted {
            m.insert(k.clone(), Value::String(val.clone()));
        }
        Ok(())
    }
}

/// `namespace:`.
pub fn namespace(k: &Kustomization, list: &mut [Res]) -> Result<(), Error> {
    let ns = k.namespace.as_str();
    let extra = specs(&[
        (
            "apiregistration.k8s.io",
            "",
            "APIService",
            "spec/service/namespace",
            true,
        ),
        (
            "apiextensions.k8s.io",
            "",
            "CustomResourceDefinition",
            "spec/conversion/webhook/clientConfig/service/namespace",
            false,
        ),
    ]);
    // Field specs `configurations` and `crds` add (metadata/namespace is set above anyway).
    let added: Vec<FieldSpec> = k
        .config
        .namespace
        .iter()
        .filter(|f| f.path != "metadata/namespace" && f.path != "metadata/name")
        .filter(|f| !extra.iter().any(|e| e.gvk == f.gvk && e.path == f.path))
        .cloned()
        .collect();
    let extra = [extra, added].concat();
    // The ids of the objects not yet moved, and of those moved: a moved object's new id must
    // be neither (kustomize checks each object as it goes), looked up instead of scanned.
    let mut unmoved: HashMap<IdKey, usize> = HashMap::new();
    for r in list.iter() {
        *unmoved.entry(r.cur_id().key()).or_default() += 1;
    }
    let mut moved: HashSet<IdKey> = HashSet::new();
    for r in list.iter_mut() {
        let before = r.cur_id().key();
        if let Some(n) = unmoved.get_mut(&before) {
            *n -= 1;
            if *n == 0 {
                unmoved.remove(&before);
            }
        }
        r.store_prev();
        let gvk = r.gvk();
        if !super::res::is_cluster_scoped(&gvk) {
            r.set_namespace(ns);
        }
        if gvk.kind == "Namespace"
            && r.value.get("apiVersion").and_then(Value::as_str) == Some("v1")
        {
            r.set_name(ns);
        }
        if (gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
            && let Some(subjects) = r.value.get_mut("subjects").and_then(Value::as_array_mut)
        {
            // kustomize's default: only subjects named "default" follow the namespace; the
            // others are fixed by name references at the end.
            for s in subjects {
                if s.get("name").and_then(Value::as_str) == Some("default")
                    && let Some(m) = s.as_object_mut()
                {
                    m.insert("namespace".into(), Value::String(ns.into()));
                }
            }
        }
        for fs in &extra {
            let mut set = set_string(ns);
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Scalar, &mut set)
                .map_err(|e| invalid(k, "namespace", r, e))?;
        }
        let id = r.cur_id();
        let key = id.key();
        if unmoved.contains_key(&key) || !moved.insert(key) {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field: "namespace".into(),
                problem: format!("setting the namespace makes two objects {id}"),
            });
        }
    }
    Ok(())
}

fn skips_prefix_suffix(r: &Res) -> bool {
    let id = r.org_id();
    id.gvk.kind == "CustomResourceDefinition"
        || id.gvk.kind == "Namespace"
        || (id.gvk.group == "apiregistration.k8s.io" && id.gvk.kind == "APIService")
}

/// `namePrefix:` (prefix = true) or `nameSuffix:`.
pub fn prefix_suffix(k: &Kustomization, list: &mut [Res], prefix: bool) -> Result<(), Error> {
    let affix = if prefix {
        &k.name_prefix
    } else {
        &k.name_suffix
    };
    for r in list.iter_mut() {
        if skips_prefix_suffix(r) {
            continue;
        }
        if prefix {
            r.prefixes.push(affix.clone());
        } else {
            r.suffixes.push(affix.clone());
        }
        r.store_prev();
        let name = r.name().to_string();
        let new = if prefix {
            format!("{affix}{name}")
        } else {
            format!("{name}{affix}")
        };
        r.set_name(&new);
        let added = if prefix {
            &k.config.name_prefix
        } else {
            &k.config.name_suffix
        };
        if !added.is_empty() {
            super::plugins::affix_extra(k, r, added, prefix, affix)?;
        }
    }
    Ok(())
}

/// One `labels` entry or `commonLabels`.
pub fn labels(
    k: &Kustomization,
    list: &mut [Res],
    spec: &LabelSpec,
    field: &str,
    common: bool,
) -> Result<(), Error> {
    if spec.pairs.is_empty() {
        return Ok(());
    }
    let mut fss = spec.fields.clone();
    if !common {
        fss.extend(k.config.labels.iter().cloned());
    }
    if common || spec.include_selectors {
        fss.extend(common_label_specs());
        fss.extend(k.config.common_labels.iter().cloned());
    } else {
        if spec.include_templates {
            fss.extend(specs(METADATA_LABELS));
            fss.extend(k.config.template_labels.iter().cloned());
        }
        fss.push(FieldSpec::new("", "", "", "metadata/labels", true));
    }
    let fss = dedup(fss);
    for r in list.iter_mut() {
        let gvk = r.gvk();
        for fs in &fss {
            let mut set = set_pairs(&spec.pairs);
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Map, &mut set)
                .map_err(|e| invalid(k, field, r, e))?;
        }
    }
    Ok(())
}

/// kustomize merges field-spec lists, dropping exact repeats.
fn dedup(fss: Vec<FieldSpec>) -> Vec<FieldSpec> {
    let mut out: Vec<FieldSpec> = Vec::new();
    for f in fss {
        if !out.iter().any(|o| o.gvk == f.gvk && o.path == f.path) {
            out.push(f);
        }
    }
    out
}

/// `commonAnnotations:`.
pub fn annotations(k: &Kustomization, list: &mut [Res]) -> Result<(), Error> {
    if k.common_annotations.is_empty() {
        return Ok(());
    }
    let fss = [
        specs(COMMON_ANNOTATIONS),
        k.config.common_annotations.clone(),
    ]
    .concat();
    for r in list.iter_mut() {
        let gvk = r.gvk();
        for fs in &fss {
            let mut set = set_pairs(&k.common_annotations);
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Map, &mut set)
                .map_err(|e| invalid(k, "commonAnnotations", r, e))?;
        }
    }
    Ok(())
}

/// Splits an image reference into name, tag and digest (kustomize's rules).
fn split_image(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@');
    let colon = search.find(':');
    match (colon, at) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (c, Some(a)) if c.is_none() || a < c.unwrap_or(usize::MAX) => {
            let a = a + slash;
            (
                image[..a].to_string(),
                String::new(),
                image[a + 1..].to_string(),
            )
        }
        (Some(c), Some(a)) => {
            let (c, a) = (c + slash, a + slash);
            (
                image[..c].to_string(),
                image[c + 1..a].to_string(),
                image[a + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + slash;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        (None, Some(_)) => unreachable!("handled above"),
    }
}

fn update_image(spec: &ImageSpec, re: &regex::Regex, v: &mut Value) -> Result<(), String> {
    let current = match &*v {
        Value::String(s) => s.clone(),
        Value::Null => return Ok(()),
        Value::Object(_) | Value::Array(_) => return Err("expected a scalar image".into()),
        other => other.to_string(),
    };
    if !re.is_match(&current) {
        return Ok(());
    }
    let (mut name, mut tag, mut digest) = split_image(&current);
    if !spec.new_name.is_empty() {
        name = spec.new_name.clone();
    }
    if !spec.new_tag.is_empty() && !spec.digest.is_empty() {
        tag = spec.new_tag.clone();
        digest = spec.digest.clone();
    } else if !spec.new_tag.is_empty() {
        tag = spec.new_tag.clone();
        digest.clear();
    } else if !spec.digest.is_empty() {
        tag.clear();
        digest = spec.digest.clone();
    } else if !spec.tag_suffix.is_empty() {
        tag.push_str(&spec.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    *v = Value::String(name);
    Ok(())
}

/// Every `containers`/`initContainers` list anywhere in the object (kustomize's legacy pass).
fn legacy_images(
    node: &mut Value,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    match node {
        Value::Object(m) => {
            for (key, v) in m.iter_mut() {
                legacy_images(v, f)?;
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(items) = v
                {
                    for it in items {
                        if let Some(img) = it.get_mut("image") {
                            f(img)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for it in items {
                legacy_images(it, f)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// One `images` entry.
pub fn image(k: &Kustomization, list: &mut [Res], spec: &ImageSpec) -> Result<(), Error> {
    let fss = dedup([specs(IMAGES), k.config.images.clone()].concat());
    image_with(k, list, spec, &fss)
}

/// An image update on kustomize's legacy container lists and on the fields `fss` names.
pub fn image_with(
    k: &Kustomization,
    list: &mut [Res],
    spec: &ImageSpec,
    fss: &[FieldSpec],
) -> Result<(), Error> {
    let re = regex::Regex::new(&format!(
        "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
        spec.name
    ))
    .map_err(|e| Error::Invalid {
        file: k.file.clone(),
        field: format!("{}.name", spec.field),
        problem: format!("not usable as a pattern: {e}"),
    })?;
    for r in list.iter_mut() {
        if r.kind() == "CustomResourceDefinition" {
            continue;
        }
        let gvk = r.gvk();
        let mut f = |v: &mut Value| update_image(spec, &re, v);
        legacy_images(&mut r.value, &mut f).map_err(|e| invalid(k, &spec.field, r, e))?;
        for fs in fss {
            let mut f = |v: &mut Value| update_image(spec, &re, v);
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::None, &mut f)
                .map_err(|e| invalid(k, &spec.field, r, e))?;
        }
    }
    Ok(())
}

/// One `replicas` entry.
pub fn replicas(k: &Kustomization, list: &mut [Res], spec: &ReplicaSpec) -> Result<(), Error> {
    let fss = dedup([specs(REPLICAS), k.config.replicas.clone()].concat());
    replicas_with(k, list, spec, &fss)
}

/// A replica count set on the fields `fss` names, in the objects `spec` names.
pub fn replicas_with(
    k: &Kustomization,
    list: &mut [Res],
    spec: &ReplicaSpec,
    fss: &[FieldSpec],
) -> Result<(), Error> {
    let mut found = false;
    for fs in fss {
        for r in list.iter_mut() {
            if !r.any_id(|id| id.name == spec.name && fs.gvk.selects(&id.gvk)) {
                continue;
            }
            found = true;
            let gvk = r.gvk();
            let count = spec.count;
            let mut set = |v: &mut Value| {
                *v = Value::from(count);
                Ok(())
            };
            fieldspec::apply(&mut r.value, &gvk, fs, Leaf::Scalar, &mut set)
                .map_err(|e| invalid(k, &spec.field, r, e))?;
        }
    }
    if !found {
        return Err(Error::Invalid {
            file: k.file.clone(),
            field: format!("{}.name", spec.field),
            problem: format!(
                "no Deployment, ReplicationController, ReplicaSet or StatefulSet named {:?}",
                spec.name
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, namespace: Option<&str>) -> Res {
        let mut v =
            serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = namespace {
            v["metadata"]["namespace"] = ns.into();
        }
        Res::new(v, Default::default())
    }

    #[test]
    fn namespace_refuses_objects_it_would_make_the_same() {
        let k = Kustomization {
            namespace: "z".into(),
            ..Default::default()
        };
        let mut ok = vec![
            object("ConfigMap", "a", None),
            object("ConfigMap", "b", Some("x")),
            object("Secret", "a", Some("z")),
        ];
        namespace(&k, &mut ok).unwrap();
        assert!(ok.iter().all(|r| r.namespace() == "z"));
        for mut list in [
            vec![
                object("ConfigMap", "a", Some("x")),
                object("ConfigMap", "a", Some("y")),
            ],
            // The second is already where the first moves.
            vec![
                object("ConfigMap", "a", None),
                object("ConfigMap", "a", Some("z")),
            ],
            // Both Namespaces are renamed to the namespace.
            vec![
                object("Namespace", "p", None),
                object("Namespace", "q", None),
            ],
        ] {
            let e = namespace(&k, &mut list).unwrap_err().to_string();
            assert!(e.contains("setting the namespace makes two objects"), "{e}");
        }
    }

    #[test]
    fn image_references_split_like_kustomize() {
        let s = |i: &str| {
            let (a, b, c) = split_image(i);
            (a, b, c)
        };
        assert_eq!(s("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(s("nginx:1.2"), ("nginx".into(), "1.2".into(), "".into()));
        assert_eq!(
            s("localhost:5000/app:v1"),
            ("localhost:5000/app".into(), "v1".into(), "".into())
        );
        assert_eq!(
            s("app@sha256:abc"),
            ("app".into(), "".into(), "sha256:abc".into())
        );
        assert_eq!(
            s("r.io/app:v1@sha256:abc"),
            ("r.io/app".into(), "v1".into(), "sha256:abc".into())
        );
    }
}
