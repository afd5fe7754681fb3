//! Reading a kustomization file strictly: every field is either understood or an error.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Error;
use super::fieldspec::FieldSpec;
use super::res::GvkSel;

/// File names kustomize recognises, in its order.
const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub fn find_file(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// A target selector (`patches[].target`).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub gvk: GvkSel,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

#[derive(Debug, Clone)]
pub struct PatchSpec {
    /// `patches[3]`, for messages.
    pub field: String,
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LabelSpec {
    pub pairs: Vec<(String, String)>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub field: String,
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
    pub tag_suffix: String,
}

#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

#[derive(Debug, Clone)]
pub struct GenSpec {
    pub field: String,
    pub name: String,
    pub namespace: String,
    pub behavior: super::res::Behavior,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub secret_type: String,
    pub options: Option<GenOptions>,
}

#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub field: String,
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Legacy,
    Fifo,
}

#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub resources: Vec<String>,
    pub patches: Vec<PatchSpec>,
    pub patches_json6902: Vec<PatchSpec>,
    /// Paths or inline patches, with their field names.
    pub patches_strategic_merge: Vec<(String, String)>,
    pub namespace: String,
    pub name_prefix: String,
    pub name_suffix: String,
    pub labels: Vec<LabelSpec>,
    pub common_labels: Vec<(String, String)>,
    pub common_annotations: Vec<(String, String)>,
    pub images: Vec<ImageSpec>,
    pub replicas: Vec<ReplicaSpec>,
    pub config_map_generator: Vec<GenSpec>,
    pub secret_generator: Vec<GenSpec>,
    pub generator_options: Option<GenOptions>,
    pub sort_order: Option<SortOrder>,
    /// `sortOptions.legacySortOptions` (legacy order only).
    pub legacy_sort: Option<super::sort::Ranking>,
    /// `buildMetadata` (only the top kustomization's counts).
    pub build_metadata: Vec<String>,
    /// `kind: Component`.
    pub is_component: bool,
    /// `components`: folders of `kind: Component` kustomizations.
    pub components: Vec<String>,
    /// `replacements`, as written (read by `replacements.rs`).
    pub replacements: Option<Value>,
    /// `vars`, as written (read by `vars.rs`).
    pub vars: Option<Value>,
    /// Files must be in or below `dir`.
    pub root_only: bool,
    /// `generators`, `transformers`, `validators`: plugin config files, folders or inline YAML.
    pub generators: Vec<String>,
    pub transformers: Vec<String>,
    pub validators: Vec<String>,
    /// `configurations` and `crds`: files adding field specs to kustomize's defaults.
    pub configurations: Vec<String>,
    pub crds: Vec<String>,
    /// `openapi`: `path` (a schema file) and/or `version`.
    pub openapi: Vec<(String, String)>,
    /// The field specs this build adds to the defaults (set while building).
    pub config: super::fieldspec::Config,
    /// The build's custom OpenAPI schema, if any (set while building).
    pub schema: Option<std::sync::Arc<super::openapi::Schema>>,
    /// Record origins for buildMetadata (the top kustomization has it).
    pub track_origin: bool,
    /// This folder's path as kustomize's origins spell it: the relative paths as written,
    /// joined from the built folder ("" for it).
    pub origin_path: String,
}

/// The fields of a patch or replacement target selector.
pub(super) const SELECTOR_FIELDS: &[&str] = &[
    "group",
    "version",
    "kind",
    "name",
    "namespace",
    "labelSelector",
    "annotationSelector",
];

/// Fields kustomize has that this renderer refuses, with the reason given to the user.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "helmCharts",
        "helm chart inflation is not implemented; use a Flux HelmRelease",
    ),
    (
        "helmGlobals",
        "helm chart inflation is not implemented; use a Flux HelmRelease",
    ),
    (
        "helmChartInflationGenerator",
        "helm chart inflation is not implemented; use a Flux HelmRelease",
    ),
];

struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn invalid(&self, field: &str, problem: impl Into<String>) -> Error {
        Error::Invalid {
            file: self.file.to_path_buf(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn map<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>, Error> {
        v.as_object()
            .ok_or_else(|| self.invalid(field, "expected a mapping"))
    }

    fn string(&self, v: &Value, field: &str) -> Result<String, Error> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            _ => Err(self.invalid(field, "expected a string (quote it)")),
        }
    }

    fn boolean(&self, v: &Value, field: &str) -> Result<bool, Error> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.invalid(field, "expected true or false")),
        }
    }

    fn strings(&self, v: &Value, field: &str) -> Result<Vec<String>, Error> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| self.string(x, &format!("{field}[{i}]")))
                .collect(),
            _ => Err(self.invalid(field, "expected a list of strings")),
        }
    }

    fn list<'v>(&self, v: &'v Value, field: &str) -> Result<&'v [Value], Error> {
        match v {
            Value::Null => Ok(&[]),
            Value::Array(a) => Ok(a),
            _ => Err(self.invalid(field, "expected a list")),
        }
    }

    /// A `map[string]string`: kustomize rejects non-string values.
    fn string_map(&self, v: &Value, field: &str) -> Result<Vec<(String, String)>, Error> {
        if v.is_null() {
            return Ok(Vec::new());
        }
        self.map(v, field)?
            .iter()
            .map(|(k, x)| Ok((k.clone(), self.string(x, &format!("{field}.{k}"))?)))
            .collect()
    }

    /// Rejects keys outside `known`.
    fn only(&self, m: &Map<String, Value>, field: &str, known: &[&str]) -> Result<(), Error> {
        for k in m.keys() {
            if !known.contains(&k.as_str()) {
                let f = if field.is_empty() {
                    k.clone()
                } else {
                    format!("{field}.{k}")
                };
                return Err(self.invalid(
                    &f,
                    format!("unknown field (known here: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

pub fn load(dir: &Path) -> Result<Kustomization, Error> {
    let file = find_file(dir).ok_or_else(|| Error::NoKustomization {
        dir: dir.to_path_buf(),
    })?;
    let found: Vec<&str> = FILE_NAMES
        .iter()
        .copied()
        .filter(|n| dir.join(n).is_file())
        .collect();
    if found.len() > 1 {
        return Err(Error::Invalid {
            file: file.clone(),
            field: "(file)".into(),
            problem: format!(
                "the folder has several kustomization files ({}): keep one",
                found.join(", ")
            ),
        });
    }
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
        path: file.clone(),
        source,
    })?;
    let (value, unreadable) = super::yaml11::from_str(&text).map_err(|source| Error::Yaml {
        file: file.clone(),
        source,
    })?;
    if let Some((field, problem)) = unreadable.into_iter().next() {
        return Err(Error::Invalid {
            file,
            field,
            problem,
        });
    }
    parse(value, &file, dir)
}

fn parse(value: Value, file: &Path, dir: &Path) -> Result<Kustomization, Error> {
    let cx = Ctx { file };
    let top = match &value {
        Value::Object(m) => m,
        Value::Null => return Err(cx.invalid("(top level)", "the kustomization is empty")),
        _ => return Err(cx.invalid("(top level)", "expected a mapping")),
    };
    if top.keys().all(|k| k == "apiVersion" || k == "kind") {
        return Err(cx.invalid(
            "(top level)",
            "the kustomization is empty: list `resources` at least",
        ));
    }
    // kustomize decodes the kustomization as JSON, which matches field names ignoring case.
    let canonical = canonical_fields(top);
    let top = &canonical;
    let mut k = Kustomization {
        file: file.to_path_buf(),
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let mut image_tags = Vec::new();
    for (key, v) in top {
        if let Some((_, hint)) = UNSUPPORTED.iter().find(|(f, _)| f == key) {
            return Err(Error::Unsupported {
                file: file.to_path_buf(),
                field: key.clone(),
                hint: hint.to_string(),
            });
        }
        match key.as_str() {
            // Checked after the loop, against `kind`.
            "apiVersion" => {
                cx.string(v, key)?;
            }
            "kind" => {
                let s = cx.string(v, key)?;
                if !s.is_empty() && s != "Kustomization" && s != "Component" {
                    return Err(cx.invalid(key, "must be Kustomization or Component"));
                }
                k.is_component = s == "Component";
            }
            "components" => k.components.extend(cx.strings(v, key)?),
            "replacements" => k.replacements = Some(v.clone()),
            "vars" => k.vars = Some(v.clone()),
            // Informational only: kustomize does not use it either.
            "metadata" => {}
            "resources" => k.resources.extend(cx.strings(v, key)?),
            // Deprecated alias of resources: kustomize appends them after `resources`.
            "bases" => {}
            "namespace" => k.namespace = cx.string(v, key)?,
            "namePrefix" => k.name_prefix = cx.string(v, key)?,
            "nameSuffix" => k.name_suffix = cx.string(v, key)?,
            "commonLabels" => k.common_labels = cx.string_map(v, key)?,
            "commonAnnotations" => k.common_annotations = cx.string_map(v, key)?,
            "labels" => {
                for (i, l) in cx.list(v, key)?.iter().enumerate() {
                    k.labels.push(parse_label(&cx, l, &format!("labels[{i}]"))?);
                }
            }
            "patches" => {
                for (i, p) in cx.list(v, key)?.iter().enumerate() {
                    k.patches
                        .push(parse_patch(&cx, p, &format!("patches[{i}]"), false)?);
                }
            }
            "patchesJson6902" => {
                for (i, p) in cx.list(v, key)?.iter().enumerate() {
                    k.patches_json6902.push(parse_patch(
                        &cx,
                        p,
                        &format!("patchesJson6902[{i}]"),
                        true,
                    )?);
                }
            }
            "patchesStrategicMerge" => {
                for (i, p) in cx.strings(v, key)?.into_iter().enumerate() {
                    k.patches_strategic_merge
                        .push((format!("patchesStrategicMerge[{i}]"), p));
                }
            }
            "images" => {
                for (i, im) in cx.list(v, key)?.iter().enumerate() {
                    k.images
                        .push(parse_image(&cx, im, &format!("images[{i}]"))?);
                }
            }
            "replicas" => {
                for (i, r) in cx.list(v, key)?.iter().enumerate() {
                    let f = format!("replicas[{i}]");
                    let m = cx.map(r, &f)?;
                    cx.only(m, &f, &["name", "count"])?;
                    let name = cx.string(m.get("name").unwrap_or(&Value::Null), &f)?;
                    let count = match m.get("count") {
                        Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or(0),
                        None | Some(Value::Null) => 0,
                        _ => return Err(cx.invalid(&format!("{f}.count"), "expected an integer")),
                    };
                    k.replicas.push(ReplicaSpec {
                        field: f,
                        name,
                        count,
                    });
                }
            }
            "configMapGenerator" | "secretGenerator" => {
                for (i, g) in cx.list(v, key)?.iter().enumerate() {
                    let spec =
                        parse_generator(&cx, g, &format!("{key}[{i}]"), key == "secretGenerator")?;
                    if key == "secretGenerator" {
                        k.secret_generator.push(spec);
                    } else {
                        k.config_map_generator.push(spec);
                    }
                }
            }
            "generators" => k.generators = cx.strings(v, key)?,
            "transformers" => k.transformers = cx.strings(v, key)?,
            "validators" => k.validators = cx.strings(v, key)?,
            "configurations" => k.configurations = cx.strings(v, key)?,
            "crds" => k.crds = cx.strings(v, key)?,
            "openapi" => k.openapi = cx.string_map(v, key)?,
            // Deprecated alias of images: kustomize appends them after `images`.
            "imageTags" => {
                for (i, im) in cx.list(v, key)?.iter().enumerate() {
                    image_tags.push(parse_image(&cx, im, &format!("imageTags[{i}]"))?);
                }
            }
            "buildMetadata" => k.build_metadata = cx.strings(v, key)?,
            "generatorOptions" => {
                k.generator_options = Some(parse_gen_options(&cx, v, key)?);
            }
            "sortOptions" => {
                let m = cx.map(v, key)?;
                cx.only(m, key, &["order", "legacySortOptions"])?;
                let order =
                    cx.string(m.get("order").unwrap_or(&Value::Null), "sortOptions.order")?;
                k.sort_order = Some(match order.as_str() {
                    "legacy" => SortOrder::Legacy,
                    "fifo" => SortOrder::Fifo,
                    _ => {
                        return Err(cx.invalid("sortOptions.order", "must be legacy or fifo"));
                    }
                });
                if let Some(l) = m.get("legacySortOptions").filter(|l| !l.is_null()) {
                    let f = "sortOptions.legacySortOptions";
                    if k.sort_order == Some(SortOrder::Fifo) {
                        return Err(cx.invalid(f, "is set but the order is fifo, not legacy"));
                    }
                    let lm = cx.map(l, f)?;
                    cx.only(lm, f, &["orderFirst", "orderLast"])?;
                    let list = |n: &str| {
                        cx.strings(lm.get(n).unwrap_or(&Value::Null), &format!("{f}.{n}"))
                    };
                    k.legacy_sort = Some(super::sort::Ranking {
                        first: list("orderFirst")?,
                        last: list("orderLast")?,
                    });
                }
            }
            _ => {
                return Err(cx.invalid(key, "unknown kustomization field (check the spelling)"));
            }
        }
    }
    let wanted = if k.is_component {
        "kustomize.config.k8s.io/v1alpha1"
    } else {
        "kustomize.config.k8s.io/v1beta1"
    };
    if let Some(v) = top.get("apiVersion") {
        let s = cx.string(v, "apiVersion")?;
        if !s.is_empty() && s != wanted {
            let kind = if k.is_component {
                "Component"
            } else {
                "Kustomization"
            };
            return Err(cx.invalid("apiVersion", format!("must be {wanted} for a {kind}")));
        }
    }
    if let Some(b) = top.get("bases") {
        k.resources.extend(cx.strings(b, "bases")?);
    }
    k.images.extend(image_tags);
    Ok(k)
}

/// Every field of kustomize's Kustomization type.
const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// `top` with each key spelled as kustomize's field it matches ignoring case (`NamePrefix`,
/// `patchesJSON6902`); a later spelling of the same field replaces an earlier one, as in Go.
fn canonical_fields(top: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, v) in top {
        let name = FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(key))
            .map_or_else(|| key.clone(), |f| f.to_string());
        out.insert(name, v.clone());
    }
    out
}

fn parse_label(cx: &Ctx, v: &Value, f: &str) -> Result<LabelSpec, Error> {
    let m = cx.map(v, f)?;
    cx.only(
        m,
        f,
        &["pairs", "includeSelectors", "includeTemplates", "fields"],
    )?;
    let mut l = LabelSpec::default();
    if let Some(p) = m.get("pairs") {
        l.pairs = cx.string_map(p, &format!("{f}.pairs"))?;
    }
    if let Some(b) = m.get("includeSelectors") {
        l.include_selectors = cx.boolean(b, &format!("{f}.includeSelectors"))?;
    }
    if let Some(b) = m.get("includeTemplates") {
        l.include_templates = cx.boolean(b, &format!("{f}.includeTemplates"))?;
    }
    if let Some(fs) = m.get("fields") {
        for (i, x) in cx.list(fs, &format!("{f}.fields"))?.iter().enumerate() {
            let ff = format!("{f}.fields[{i}]");
            let xm = cx.map(x, &ff)?;
            cx.only(xm, &ff, &["path", "group", "version", "kind", "create"])?;
            let s = |k: &str| cx.string(xm.get(k).unwrap_or(&Value::Null), &format!("{ff}.{k}"));
            l.fields.push(FieldSpec {
                gvk: GvkSel::new(&s("group")?, &s("version")?, &s("kind")?),
                path: s("path")?,
                create: cx.boolean(
                    xm.get("create").unwrap_or(&Value::Null),
                    &format!("{ff}.create"),
                )?,
            });
        }
    }
    Ok(l)
}

fn parse_selector(cx: &Ctx, v: &Value, f: &str) -> Result<Selector, Error> {
    let m = cx.map(v, f)?;
    cx.only(m, f, SELECTOR_FIELDS)?;
    let s = |k: &str| cx.string(m.get(k).unwrap_or(&Value::Null), &format!("{f}.{k}"));
    let sel = Selector {
        gvk: GvkSel::new(&s("group")?, &s("version")?, &s("kind")?),
        name: s("name")?,
        namespace: s("namespace")?,
        label_selector: s("labelSelector")?,
        annotation_selector: s("annotationSelector")?,
    };
    for (k, pat) in [
        ("group", &sel.gvk.group),
        ("version", &sel.gvk.version),
        ("kind", &sel.gvk.kind),
        ("name", &sel.name),
        ("namespace", &sel.namespace),
    ] {
        if !pat.is_empty() && regex::Regex::new(pat).is_err() {
            return Err(cx.invalid(
                &format!("{f}.{k}"),
                format!("invalid regular expression {pat:?}"),
            ));
        }
    }
    Ok(sel)
}

fn parse_patch(cx: &Ctx, v: &Value, f: &str, json6902: bool) -> Result<PatchSpec, Error> {
    let m = cx.map(v, f)?;
    let known: &[&str] = if json6902 {
        &["path", "patch", "target"]
    } else {
        &["path", "patch", "target", "options"]
    };
    cx.only(m, f, known)?;
    let path = match m.get("path") {
        Some(p) => Some(cx.string(p, &format!("{f}.path"))?).filter(|s| !s.is_empty()),
        None => None,
    };
    let patch = match m.get("patch") {
        Some(p) => Some(cx.string(p, &format!("{f}.patch"))?).filter(|s| !s.trim().is_empty()),
        None => None,
    };
    match (&path, &patch) {
        (None, None) => return Err(cx.invalid(f, "give one of `path` and `patch`")),
        (Some(_), Some(_)) => {
            return Err(cx.invalid(f, "give only one of `path` and `patch`, not both"));
        }
        _ => {}
    }
    let target = match m.get("target") {
        Some(t) if !t.is_null() => Some(parse_selector(cx, t, &format!("{f}.target"))?),
        _ => None,
    };
    if json6902 && target.is_none() {
        return Err(cx.invalid(f, "a JSON 6902 patch needs a `target`"));
    }
    let (mut allow_name_change, mut allow_kind_change) = (false, false);
    if let Some(o) = m.get("options") {
        let of = format!("{f}.options");
        let om = cx.map(o, &of)?;
        cx.only(om, &of, &["allowNameChange", "allowKindChange"])?;
        if let Some(b) = om.get("allowNameChange") {
            allow_name_change = cx.boolean(b, &format!("{of}.allowNameChange"))?;
        }
        if let Some(b) = om.get("allowKindChange") {
            allow_kind_change = cx.boolean(b, &format!("{of}.allowKindChange"))?;
        }
    }
    Ok(PatchSpec {
        field: f.to_string(),
        path,
        patch,
        target,
        allow_name_change,
        allow_kind_change,
    })
}

fn parse_image(cx: &Ctx, v: &Value, f: &str) -> Result<ImageSpec, Error> {
    let m = cx.map(v, f)?;
    cx.only(m, f, &["name", "newName", "newTag", "digest", "tagSuffix"])?;
    let s = |k: &str| cx.string(m.get(k).unwrap_or(&Value::Null), &format!("{f}.{k}"));
    let im = ImageSpec {
        field: f.to_string(),
        name: s("name")?,
        new_name: s("newName")?,
        new_tag: s("newTag")?,
        digest: s("digest")?,
        tag_suffix: s("tagSuffix")?,
    };
    if im.name.is_empty() {
        return Err(cx.invalid(&format!("{f}.name"), "an image needs a name to match"));
    }
    Ok(im)
}

fn parse_gen_options(cx: &Ctx, v: &Value, f: &str) -> Result<GenOptions, Error> {
    let m = cx.map(v, f)?;
    cx.only(
        m,
        f,
        &[
            "labels",
            "annotations",
            "disableNameSuffixHash",
            "immutable",
        ],
    )?;
    let mut o = GenOptions::default();
    if let Some(x) = m.get("labels") {
        o.labels = cx.string_map(x, &format!("{f}.labels"))?;
    }
    if let Some(x) = m.get("annotations") {
        o.annotations = cx.string_map(x, &format!("{f}.annotations"))?;
    }
    if let Some(x) = m.get("disableNameSuffixHash") {
        o.disable_name_suffix_hash = cx.boolean(x, &format!("{f}.disableNameSuffixHash"))?;
    }
    if let Some(x) = m.get("immutable") {
        o.immutable = cx.boolean(x, &format!("{f}.immutable"))?;
    }
    Ok(o)
}

fn parse_generator(cx: &Ctx, v: &Value, f: &str, secret: bool) -> Result<GenSpec, Error> {
    let m = cx.map(v, f)?;
    let mut known = vec![
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
    ];
    if secret {
        known.push("type");
    }
    cx.only(m, f, &known)?;
    let s = |k: &str| cx.string(m.get(k).unwrap_or(&Value::Null), &format!("{f}.{k}"));
    let l = |k: &str| cx.strings(m.get(k).unwrap_or(&Value::Null), &format!("{f}.{k}"));
    let name = s("name")?;
    if name.is_empty() {
        return Err(cx.invalid(&format!("{f}.name"), "a generated object needs a name"));
    }
    let behavior = match s("behavior")?.as_str() {
        "" | "create" => super::res::Behavior::Create,
        "merge" => super::res::Behavior::Merge,
        "replace" => super::res::Behavior::Replace,
        other => {
            return Err(cx.invalid(
                &format!("{f}.behavior"),
                format!("unknown behavior {other:?}: use create, merge or replace"),
            ));
        }
    };
    let mut envs = l("envs")?;
    let env = s("env")?;
    if !env.is_empty() {
        envs.push(env);
    }
    let options = match m.get("options") {
        Some(o) if !o.is_null() => Some(parse_gen_options(cx, o, &format!("{f}.options"))?),
        _ => None,
    };
    Ok(GenSpec {
        field: f.to_string(),
        name,
        namespace: s("namespace")?,
        behavior,
        literals: l("literals")?,
        files: l("files")?,
        envs,
        secret_type: if secret { s("type")? } else { String::new() },
        options,
    })
}
