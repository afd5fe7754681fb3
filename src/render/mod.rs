//! A kustomize-compatible renderer: `kustomize build` without kustomize.
//!
//! Pure: it reads the files of a kustomization (and the kustomizations it includes) and returns
//! the objects in kustomize's output order. Supported: `resources` (files and folders, nested,
//! cycles detected), `patches`, `patchesJson6902`, `patchesStrategicMerge`, `namespace`,
//! `namePrefix`/`nameSuffix` (with name-reference updates), `labels`, `commonLabels`,
//! `commonAnnotations`, `images`, `replicas`, `configMapGenerator`/`secretGenerator` with
//! `generatorOptions` and kustomize's hash suffix, `sortOptions` (with `legacySortOptions`),
//! `buildMetadata` (origin and transformer annotations, the managed-by label), the deprecated
//! `bases` and `imageTags`, field names in any case (kustomize matches them so), `components`,
//! `replacements`, the legacy `vars`, `generators`/`transformers`/`validators` holding
//! configurations of kustomize's builtin plugins, `configurations`, `crds` and `openapi`.
//! Anything else (remote bases, exec/Go/KRM-function plugins, helm charts...) is an error
//! naming the file and the field: nothing is ignored silently.

mod build;
mod buildmeta;
mod components;
mod fieldspec;
mod generate;
mod kustomization;
mod nameref;
mod openapi;
mod patch;
mod plugins;
mod replacements;
mod res;
mod sort;
mod transform;
mod vars;
mod yaml11;

use std::path::{Path, PathBuf};

use crate::manifest::Object;

pub use generate::hash_suffix;

/// What went wrong rendering a kustomization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A folder has no `kustomization.yaml` (or `.yml`, or `Kustomization`).
    #[error("{}: no kustomization.yaml, kustomization.yml or Kustomization in this folder", dir.display())]
    NoKustomization {
        /// The folder.
        dir: PathBuf,
    },
    /// A file is not valid YAML.
    #[error("{}: invalid YAML", file.display())]
    Yaml {
        /// The file.
        file: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A resource file does not hold Kubernetes objects.
    #[error("{}: field `{field}`: cannot load a resource", file.display())]
    Manifest {
        /// The kustomization that names the file.
        file: PathBuf,
        /// The field naming it, e.g. `resources[2]`.
        field: String,
        /// What is wrong with the objects.
        #[source]
        source: crate::manifest::Error,
    },
    /// A field holds a value kustomize would reject too.
    #[error("{}: field `{field}`: {problem}", file.display())]
    Invalid {
        /// The kustomization (or patch) file.
        file: PathBuf,
        /// The field, e.g. `patches[0].target.kind`.
        field: String,
        /// What is wrong, and how to fix it.
        problem: String,
    },
    /// A field kustomize knows but this renderer does not implement.
    #[error("{}: field `{field}` is not supported by capi-manage's renderer ({hint})", file.display())]
    Unsupported {
        /// The kustomization file.
        file: PathBuf,
        /// The field.
        field: String,
        /// Why, or what to use instead.
        hint: String,
    },
    /// Kustomizations include each other in a loop.
    #[error("{}: field `resources`: cycle: {}", file.display(), chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The kustomization that closes the loop.
        file: PathBuf,
        /// The folders in the loop, first repeated last.
        chain: Vec<PathBuf>,
    },
    /// A JSON 6902 patch does not apply to an object it targets.
    #[error("{}: field `{field}`: cannot patch {object}", file.display())]
    JsonPatch {
        /// The kustomization.
        file: PathBuf,
        /// The patch's field.
        field: String,
        /// The object, `Kind namespace/name`.
        object: String,
        /// The failing operation.
        #[source]
        source: json_patch::PatchError,
    },
}

/// Which files a kustomization may read (kustomize's `--load-restrictor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictions {
    /// Only files in or below the kustomization's folder (`kustomize build`'s default).
    #[default]
    RootOnly,
    /// Any file (how Flux's kustomize-controller builds, confined to the repository).
    None,
}

/// How to render.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Which files kustomizations may read.
    pub load_restrictions: LoadRestrictions,
    /// The build's custom OpenAPI schema (set by the build from `openapi` fields).
    pub(crate) schema: Option<std::sync::Arc<openapi::Schema>>,
    /// The output order when the kustomization sets no `sortOptions` (kustomize's `--reorder`).
    pub reorder: Reorder,
    /// Set during a build whose top kustomization has `buildMetadata`.
    pub(crate) track_origin: bool,
    /// The origin path of the folder being accumulated (see `Kustomization::origin_path`).
    pub(crate) origin_path: String,
}

/// kustomize's `--reorder` flag: the kustomization's `sortOptions` win over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reorder {
    /// No flag: kustomize's legacy order.
    #[default]
    Unspecified,
    /// `--reorder legacy`.
    Legacy,
    /// `--reorder none`: the order the resources were read and generated in.
    None,
}

/// Renders the kustomization in `dir` like `kustomize build dir` (kustomize v5 semantics, legacy
/// output order unless the kustomization sets `sortOptions`).
///
/// # Errors
///
/// [`Error::NoKustomization`] when `dir` (or a folder it includes) has no kustomization file,
/// [`Error::Read`], [`Error::Yaml`] or [`Error::Manifest`] for unreadable input,
/// [`Error::Invalid`] or [`Error::Unsupported`] for a field kustomize would refuse or that is
/// not implemented, [`Error::Cycle`] for folders that include each other and
/// [`Error::JsonPatch`] for a patch that does not apply. Each names the file.
pub fn render(dir: &Path) -> Result<Vec<Object>, Error> {
    build::build(dir, &Options::default())
}

/// [`render`] with options.
pub fn render_with(dir: &Path, options: &Options) -> Result<Vec<Object>, Error> {
    build::build(dir, options)
}

/// Whether `dir` holds a kustomization file.
pub fn is_kustomization_dir(dir: &Path) -> bool {
    kustomization::find_file(dir).is_some()
}
