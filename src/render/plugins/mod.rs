//! `generators`, `transformers` and `validators`: configurations of kustomize's builtin plugins
//! (`apiVersion: builtin`), given inline, as files, or as kustomization folders whose output is
//! such configurations; and `configurations`/`crds`, the field specs added to the defaults.
//!
//! What runs outside this program (exec, Go and container/KRM-function plugins, and helm
//! chart inflation) is refused with an error naming the file and the field.

mod builtins;

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fieldspec::{self, Config, FieldSpec};
use super::kustomization::Kustomization;
use super::res::Res;
use super::{Error, build, generate};
use crate::manifest;

/// The label a validator may add without counting as a change (kustomize's `validated-by`).
const VALIDATED_BY: &str = "validated-by";

fn invalid(k: &Kustomization, field: &str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Merges a sub-kustomization's field specs into those accumulated so far.
pub fn merge_config(
    k: &Kustomization,
    field: &str,
    into: &mut Config,
    from: &Config,
) -> Result<(), Error> {
    into.merge(from).map_err(|p| invalid(k, field, p))
}

/// Sets `k.config`: what the included kustomizations added, then `configurations`, then `crds`
/// (kustomize's order).
pub fn configure(k: &mut Kustomization, mut config: Config) -> Result<(), Error> {
    for (i, path) in k.configurations.iter().enumerate() {
        let field = format!("configurations[{i}]");
        let value = read_yaml(k, &field, path)?;
        let c = Config::parse(&value).map_err(|p| invalid(k, &field, format!("{path}: {p}")))?;
        config.merge(&c).map_err(|p| invalid(k, &field, p))?;
    }
    for (i, path) in k.crds.iter().enumerate() {
        let field = format!("crds[{i}]");
        let value = read_yaml(k, &field, path)?;
        let c = super::openapi::config_from_definitions(&value)
            .map_err(|p| invalid(k, &field, format!("{path}: {p}")))?;
        config.merge(&c).map_err(|p| invalid(k, &field, p))?;
    }
    k.config = config;
    Ok(())
}

/// Reads a YAML (or JSON) file a kustomization names.
pub fn read_yaml(k: &Kustomization, field: &str, rel: &str) -> Result<Value, Error> {
    let file = k.dir.join(rel);
    if !file.is_file() {
        return Err(invalid(
            k,
            field,
            format!("{} does not exist", file.display()),
        ));
    }
    let bytes = generate::read_local(k, field, rel)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(k, field, "not UTF-8"))?;
    serde_yaml_ng::from_str(&text).map_err(|source| Error::Yaml { file, source })
}

/// One plugin configuration and the entry it comes from.
struct Entry {
    field: String,
    res: Res,
    /// The entry as written when it names a file or folder; `None` for an inline one.
    path: Option<String>,
}

fn is_remote(r: &str) -> bool {
    r.contains("://")
        || r.starts_with("git@")
        || r.starts_with("github.com/")
        || r.contains("?ref=")
        || r.contains(".git//")
}

/// The configurations one of `generators`, `transformers` or `validators` lists: inline ones
/// first, then those from files and folders, each in the order given (kustomize's order).
fn load_entries(
    k: &Kustomization,
    key: &str,
    entries: &[String],
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
) -> Result<Vec<Entry>, Error> {
    let mut inline = Vec::new();
    let mut paths = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let field = format!("{key}[{i}]");
        let parsed = manifest::parse_str(e, Some(&k.file))
            .ok()
            .filter(|objs| !objs.is_empty() && e.contains(':'));
        match parsed {
            Some(objs) => {
                for o in objs {
                    inline.push(Entry {
                        field: field.clone(),
                        res: Res::new(o.value, o.origin),
                        path: None,
                    });
                }
            }
            None => paths.push((field, e)),
        }
    }
    let mut out = inline;
    for (field, e) in paths {
        if is_remote(e) {
            return Err(Error::Unsupported {
                file: k.file.clone(),
                field,
                hint: format!("{e} is remote: vendor it into the repository and refer to the copy"),
            });
        }
        if Path::new(e).is_absolute() {
            return Err(invalid(
                k,
                &field,
                format!(
                    "{e} is absolute: kustomize only takes paths relative to the kustomization"
                ),
            ));
        }
        let path = build::normalize(&k.dir.join(e));
        if path.is_file() {
            generate::check_inside(k, &field, &path)?;
            let objects = manifest::parse_file(&path).map_err(|source| Error::Manifest {
                file: k.file.clone(),
                field: field.clone(),
                source,
            })?;
            for o in objects {
                out.push(Entry {
                    field: field.clone(),
                    res: Res::new(o.value, o.origin),
                    path: Some(e.clone()),
                });
            }
        } else if path.is_dir() {
            if super::kustomization::find_file(&path).is_none() {
                return Err(invalid(
                    k,
                    &field,
                    format!("{} has no kustomization.yaml", path.display()),
                ));
            }
            // Vars declared in a plugin-config folder are not the build's: kept apart.
            let mut vars = super::vars::VarSet::default();
            let (_, sub) =
                build::accumulate(&path, Some((&k.file, &field)), stack, options, &mut vars)?;
            for r in sub {
                // kustomize names the file the configuration was read from.
                let read_from = r
                    .origin
                    .file
                    .as_deref()
                    .and_then(|f| f.strip_prefix(&k.dir).ok())
                    .map_or_else(|| e.clone(), |p| p.to_string_lossy().into_owned());
                out.push(Entry {
                    field: field.clone(),
                    res: r,
                    path: Some(read_from),
                });
            }
        } else {
            return Err(invalid(
                k,
                &field,
                format!("{} does not exist", path.display()),
            ));
        }
    }
    Ok(out)
}

/// Refuses what is not a builtin plugin; returns the builtin's kind.
fn builtin_kind<'a>(k: &Kustomization, e: &'a Entry) -> Result<&'a str, Error> {
    let api_version = e
        .res
        .value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = e.res.kind();
    if api_version != "builtin" {
        let what = if e
            .res
            .value
            .pointer("/metadata/annotations/config.kubernetes.io~1function")
            .is_some()
        {
            "a KRM-function (container, exec or starlark) plugin"
        } else {
            "an exec or Go plugin"
        };
        return Err(Error::Unsupported {
            file: k.file.clone(),
            field: e.field.clone(),
            hint: format!(
                "{kind} {:?} ({api_version}) is {what}, which capi-manage does not run; only \
                 kustomize's builtin plugins (apiVersion: builtin) are rendered",
                e.res.name()
            ),
        });
    }
    if kind == "HelmChartInflationGenerator" {
        return Err(Error::Unsupported {
            file: k.file.clone(),
            field: e.field.clone(),
            hint: "helm chart inflation is not implemented; use a Flux HelmRelease".into(),
        });
    }
    Ok(kind)
}

/// Runs the `generators` entries and absorbs what they make into `list`.
pub fn generate(
    k: &Kustomization,
    list: &mut Vec<Res>,
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
) -> Result<(), Error> {
    if k.generators.is_empty() {
        return Ok(());
    }
    let entries = load_entries(k, "generators", &k.generators, stack, options)?;
    // Plugin generators take their own options only, not the kustomization's.
    let mut own = k.clone();
    own.generator_options = None;
    for e in &entries {
        let kind = builtin_kind(k, e)?;
        match kind {
            "ConfigMapGenerator" | "SecretGenerator" => {
                let secret = kind == "SecretGenerator";
                let spec = builtins::gen_spec(k, &e.field, &e.res.value, secret)?;
                let res = generate::generate_one(&own, &spec, secret)?;
                generate::absorb(k, &e.field, list, res)?;
            }
            "IAMPolicyGenerator" => {
                let res = builtins::iam_policy(k, &e.field, &e.res.value)?;
                generate::absorb(k, &e.field, list, res)?;
            }
            other if builtins::is_transformer(other) => {
                return Err(invalid(
                    k,
                    &e.field,
                    format!(
                        "{other} is a transformer, not a generator: list it under `transformers`"
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    k,
                    &e.field,
                    format!("{other} is not one of kustomize's builtin plugins"),
                ));
            }
        }
    }
    Ok(())
}

/// Runs the `transformers` entries on `list`, in order.
pub fn transform(
    k: &Kustomization,
    list: &mut Vec<Res>,
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
) -> Result<(), Error> {
    if k.transformers.is_empty() {
        return Ok(());
    }
    let entries = load_entries(k, "transformers", &k.transformers, stack, options)?;
    let mut kinds = Vec::new();
    for e in &entries {
        kinds.push(check_transformer(k, e)?);
    }
    for (e, kind) in entries.iter().zip(kinds) {
        builtins::run(k, &e.field, kind, &e.res.value, list)?;
        super::buildmeta::note_plugin(k, list, e.path.as_deref(), &e.res);
    }
    Ok(())
}

fn check_transformer<'a>(k: &Kustomization, e: &'a Entry) -> Result<&'a str, Error> {
    let kind = builtin_kind(k, e)?;
    if builtins::is_transformer(kind) {
        return Ok(kind);
    }
    let problem = if matches!(
        kind,
        "ConfigMapGenerator" | "SecretGenerator" | "IAMPolicyGenerator"
    ) {
        format!("{kind} is a generator, not a transformer: list it under `generators`")
    } else {
        format!("{kind} is not one of kustomize's builtin plugins")
    };
    Err(invalid(k, &e.field, problem))
}

fn without_validated_by(list: &[Res]) -> Vec<Value> {
    list.iter()
        .map(|r| {
            let mut v = r.value.clone();
            if let Some(labels) = v
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.shift_remove(VALIDATED_BY);
                if labels.is_empty()
                    && let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    md.shift_remove("labels");
                }
            }
            v
        })
        .collect()
}

/// Runs the `validators` entries. kustomize has no validating builtin: a validator is a
/// transformer plugin that must leave the objects as they are (it may add a `validated-by`
/// label). External validators are refused like every other external plugin; builtin
/// transformers listed here run, and one that changes an object fails the build as in
/// kustomize.
pub fn validate(
    k: &Kustomization,
    list: &mut Vec<Res>,
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
) -> Result<(), Error> {
    if k.validators.is_empty() {
        return Ok(());
    }
    let entries = load_entries(k, "validators", &k.validators, stack, options)?;
    for e in &entries {
        let kind = check_transformer(k, e)?;
        let before: Vec<Value> = list.iter().map(|r| r.value.clone()).collect();
        builtins::run(k, &e.field, kind, &e.res.value, list)?;
        if without_validated_by(list) != before {
            return Err(invalid(
                k,
                &e.field,
                format!(
                    "the validator {kind} changed the objects: validators must not modify them"
                ),
            ));
        }
    }
    Ok(())
}

/// Field specs that `configurations`/`crds` add to `namePrefix` (or `nameSuffix`), applied to
/// one object the kustomization's prefix (suffix) already renamed.
pub fn affix_extra(
    k: &Kustomization,
    r: &mut Res,
    added: &[FieldSpec],
    prefix: bool,
    affix: &str,
) -> Result<(), Error> {
    let defaults = [FieldSpec::new("", "", "", "metadata/name", true)];
    let added = fieldspec::beyond_defaults(&defaults, added);
    let field = if prefix { "namePrefix" } else { "nameSuffix" };
    let org = r.org_id();
    for fs in &added {
        if !fs.gvk.selects(&org.gvk) {
            continue;
        }
        builtins::affix_one(r, fs, affix, prefix)
            .map_err(|p| invalid(k, field, format!("{}: {p}", r.cur_id())))?;
    }
    Ok(())
}
