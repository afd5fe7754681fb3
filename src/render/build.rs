//! The build: accumulate resources depth-first, generate, transform (kustomize's order), then
//! at the top level add hash suffixes, fix name references, drop local config and sort.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::kustomization::{self, Kustomization, LabelSpec, SortOrder};
use super::res::{IdKey, Res};
use super::{
    Error, buildmeta, components, generate, nameref, patch, replacements, sort, transform, vars,
};
use crate::manifest::{self, Object};

pub fn build(dir: &Path, options: &super::Options) -> Result<Vec<Object>, Error> {
    let mut stack = Vec::new();
    let mut options = options.clone();
    let root_only = options.load_restrictions == super::LoadRestrictions::RootOnly;
    options.schema = super::openapi::for_build(dir, root_only)?.map(std::sync::Arc::new);
    // Origins are tracked through the whole build when the top kustomization has buildMetadata.
    options.track_origin = !kustomization::load(dir)?.build_metadata.is_empty();
    let mut var_set = vars::VarSet::default();
    let (k, mut list) = accumulate(dir, None, &mut stack, &options, &mut var_set)?;
    generate::add_hashes(&mut list);
    nameref::fix_with(&mut list, &k.config.name_reference).map_err(|problem| Error::Invalid {
        file: k.file.clone(),
        field: "resources".into(),
        problem,
    })?;
    vars::resolve(&k, &mut list, &var_set)?;
    list.retain(|r| {
        r.value
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("config.kubernetes.io/local-config"))
            .and_then(|v| v.as_str())
            != Some("true")
    });
    // kustomize: the kustomization's sortOptions win over `--reorder`; without either, legacy.
    match (k.sort_order, options.reorder) {
        (Some(SortOrder::Fifo), _) | (None, super::Reorder::None) => {}
        (Some(SortOrder::Legacy), _) if k.legacy_sort.is_some() => {
            sort::legacy_with(&mut list, k.legacy_sort.as_ref().expect("checked"));
        }
        _ => sort::legacy(&mut list),
    }
    buildmeta::finish(&k, &mut list);
    for r in &list {
        replacements::check_decodable(r)?;
    }
    Ok(list
        .into_iter()
        .map(|r| Object {
            value: r.value,
            origin: r.origin,
        })
        .collect())
}

pub(super) fn is_remote(r: &str) -> bool {
    r.contains("://")
        || r.starts_with("git@")
        || r.starts_with("github.com/")
        || r.starts_with("gitlab.com/")
        || r.starts_with("bitbucket.org/")
        || r.contains("?ref=")
        || r.contains(".git//")
}

/// Removes `.` and `name/..` from a path without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Adds `r` to `list`; `ids` holds the ids of `list` (a lookup, not a scan of the list).
fn append(
    k: &Kustomization,
    field: &str,
    list: &mut Vec<Res>,
    ids: &mut HashSet<IdKey>,
    r: Res,
) -> Result<(), Error> {
    let id = r.cur_id();
    if !ids.insert(id.key()) {
        return Err(Error::Invalid {
            file: k.file.clone(),
            field: field.to_string(),
            problem: format!("{id} is already defined by an earlier resource: ids must be unique"),
        });
    }
    list.push(r);
    Ok(())
}

pub(super) fn accumulate(
    dir: &Path,
    parent: Option<(&Path, &str)>,
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
    var_set: &mut vars::VarSet,
) -> Result<(Kustomization, Vec<Res>), Error> {
    let mut list = Vec::new();
    let k = accumulate_into(dir, parent, stack, options, var_set, &mut list, false)?;
    Ok((k, list))
}

/// Accumulates the kustomization in `dir` into `list`: empty for a kustomization, the parent's
/// resources for a component (which works on its parent's accumulation).
pub(super) fn accumulate_into(
    dir: &Path,
    parent: Option<(&Path, &str)>,
    stack: &mut Vec<PathBuf>,
    options: &super::Options,
    var_set: &mut vars::VarSet,
    list: &mut Vec<Res>,
    as_component: bool,
) -> Result<Kustomization, Error> {
    let canon = dir.canonicalize().map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    if let Some(pos) = stack.iter().position(|p| *p == canon) {
        let mut chain: Vec<PathBuf> = stack[pos..].to_vec();
        chain.push(canon);
        let file = parent
            .map(|(f, _)| f.to_path_buf())
            .unwrap_or_else(|| dir.to_path_buf());
        return Err(Error::Cycle { file, chain });
    }
    stack.push(canon);
    let mut k = kustomization::load(dir)?;
    k.root_only = options.load_restrictions == super::LoadRestrictions::RootOnly;
    k.schema = options.schema.clone();
    k.track_origin = options.track_origin;
    k.origin_path = options.origin_path.clone();
    if let Some((file, field)) = parent {
        components::check_kind(&k, file, field, as_component)?;
    }
    let mut config = super::fieldspec::Config::default();
    // A component adds to its parent's accumulation: ids stay unique across both.
    let mut ids: HashSet<IdKey> = list.iter().map(|r| r.cur_id().key()).collect();
    for (i, r) in k.resources.iter().enumerate() {
        let field = format!("resources[{i}]");
        if is_remote(r) {
            return Err(Error::Unsupported {
                file: k.file.clone(),
                field,
                hint: format!("{r} is remote: vendor it into the repository and refer to the copy"),
            });
        }
        if Path::new(r).is_absolute() {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field,
                problem: format!(
                    "{r} is absolute: kustomize only takes paths relative to the kustomization"
                ),
            });
        }
        let path = normalize(&dir.join(r));
        if path.is_file() {
            generate::check_inside(&k, &field, &path)?;
            let read = manifest::ParseOptions {
                annotations_as_written: true,
                api_version_optional: true,
                name_required: true,
            };
            let objects =
                manifest::parse_file_with(&path, read).map_err(|source| Error::Manifest {
                    file: k.file.clone(),
                    field: field.clone(),
                    source,
                })?;
            for o in objects {
                let mut res = Res::new(o.value, o.origin);
                if k.track_origin {
                    let at = buildmeta::origin_path(&k, r);
                    res.build_origin = Some(super::res::BuildOrigin::File(at));
                }
                append(&k, &field, list, &mut ids, res)?;
            }
        } else if path.is_dir() {
            if kustomization::find_file(&path).is_none() {
                return Err(Error::Invalid {
                    file: k.file.clone(),
                    field,
                    problem: format!(
                        "{} has no kustomization.yaml: list its files instead, or add one",
                        path.display()
                    ),
                });
            }
            let mut sub_options = options.clone();
            sub_options.origin_path = buildmeta::origin_path(&k, r);
            let mut sub_vars = vars::VarSet::default();
            let (sk, sub) = accumulate(
                &path,
                Some((&k.file, &field)),
                stack,
                &sub_options,
                &mut sub_vars,
            )?;
            super::plugins::merge_config(&k, &field, &mut config, &sk.config)?;
            for r in sub {
                append(&k, &field, list, &mut ids, r)?;
            }
            var_set.merge_set(&k, &field, sub_vars)?;
        } else {
            return Err(Error::Invalid {
                file: k.file.clone(),
                field,
                problem: format!("{} does not exist", path.display()),
            });
        }
    }
    super::plugins::configure(&mut k, config)?;
    generate::run(&k, list)?;
    buildmeta::note_generated(&k, list);
    super::plugins::generate(&k, list, stack, options)?;
    // kustomize runs components after the generators and before the transformers.
    for (i, c) in k.components.iter().enumerate() {
        let field = format!("components[{i}]");
        let path = components::resolve(&k, &field, c)?;
        // A component's files and transformers record its own folder as where they come from.
        let mut comp_options = options.clone();
        comp_options.origin_path = buildmeta::origin_path(&k, c);
        accumulate_into(
            &path,
            Some((&k.file, &field)),
            stack,
            &comp_options,
            var_set,
            list,
            true,
        )?;
    }
    transform_all(&k, list)?;
    super::plugins::transform(&k, list, stack, options)?;
    super::plugins::validate(&k, list, stack, options)?;
    vars::merge(&k, list, var_set)?;
    stack.pop();
    Ok(k)
}

fn transform_all(k: &Kustomization, list: &mut Vec<Res>) -> Result<(), Error> {
    let note = buildmeta::note_transformer;
    if !k.patches_strategic_merge.is_empty() {
        patch::apply_strategic_merge(k, list, &k.patches_strategic_merge)?;
        note(k, list, "PatchStrategicMergeTransformer");
    }
    for p in &k.patches {
        patch::apply_spec(k, list, p)?;
        note(k, list, "PatchTransformer");
    }
    if !k.namespace.is_empty() {
        transform::namespace(k, list)?;
        note(k, list, "NamespaceTransformer");
    }
    if !k.name_prefix.is_empty() {
        transform::prefix_suffix(k, list, true)?;
        note(k, list, "PrefixTransformer");
    }
    if !k.name_suffix.is_empty() {
        transform::prefix_suffix(k, list, false)?;
        note(k, list, "SuffixTransformer");
    }
    for (i, l) in k.labels.iter().enumerate() {
        transform::labels(k, list, l, &format!("labels[{i}]"), false)?;
        note(k, list, "LabelTransformer");
    }
    if !k.common_labels.is_empty() {
        let spec = LabelSpec {
            pairs: k.common_labels.clone(),
            ..Default::default()
        };
        transform::labels(k, list, &spec, "commonLabels", true)?;
    }
    // kustomize configures the commonLabels transformer whenever `labels` is set too.
    if !k.common_labels.is_empty() || !k.labels.is_empty() {
        note(k, list, "LabelTransformer");
    }
    transform::annotations(k, list)?;
    if !k.common_annotations.is_empty() {
        note(k, list, "AnnotationsTransformer");
    }
    for p in &k.patches_json6902 {
        patch::apply_spec(k, list, p)?;
        note(k, list, "PatchJson6902Transformer");
    }
    for r in &k.replicas {
        transform::replicas(k, list, r)?;
        note(k, list, "ReplicaCountTransformer");
    }
    for im in &k.images {
        transform::image(k, list, im)?;
        note(k, list, "ImageTagTransformer");
    }
    replacements::apply(k, list)?;
    Ok(())
}
