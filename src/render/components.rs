//! Components (`kind: Component`, kustomize.config.k8s.io/v1alpha1): kustomizations listed in
//! `components` that work on their parent's accumulated resources, after the parent's resources
//! and generators and before its transformers. The build flow is in `build.rs`; this module
//! holds the rules kustomize enforces on them.

use std::path::{Path, PathBuf};

use super::Error;
use super::build::{is_remote, normalize};
use super::kustomization::{self, Kustomization};

/// Where `components[i]` points: a local folder with a kustomization file.
pub fn resolve(k: &Kustomization, field: &str, entry: &str) -> Result<PathBuf, Error> {
    if is_remote(entry) {
        return Err(Error::Unsupported {
            file: k.file.clone(),
            field: field.to_string(),
            hint: format!("{entry} is remote: vendor it into the repository and refer to the copy"),
        });
    }
    if Path::new(entry).is_absolute() {
        return Err(Error::Invalid {
            file: k.file.clone(),
            field: field.to_string(),
            problem: format!(
                "{entry} is absolute: kustomize only takes paths relative to the kustomization"
            ),
        });
    }
    let path = normalize(&k.dir.join(entry));
    if !path.is_dir() {
        let problem = if path.exists() {
            format!("{} is a file: a component is a folder", path.display())
        } else {
            format!("{} does not exist", path.display())
        };
        return Err(Error::Invalid {
            file: k.file.clone(),
            field: field.to_string(),
            problem,
        });
    }
    if kustomization::find_file(&path).is_none() {
        return Err(Error::Invalid {
            file: k.file.clone(),
            field: field.to_string(),
            problem: format!(
                "{} has no kustomization.yaml: a component needs one of kind Component",
                path.display()
            ),
        });
    }
    Ok(path)
}

/// kustomize's rule: `components` lists only `kind: Component`, `resources` never does.
/// `parent_file`/`field` name the entry that included `k`.
pub fn check_kind(
    k: &Kustomization,
    parent_file: &Path,
    field: &str,
    as_component: bool,
) -> Result<(), Error> {
    let problem = match (as_component, k.is_component) {
        (true, false) => format!(
            "{} is a Kustomization: `components` takes only kind Component (list it in `resources`)",
            k.file.display()
        ),
        (false, true) => format!(
            "{} is a Component: `resources` takes no kind Component (list it in `components`)",
            k.file.display()
        ),
        _ => return Ok(()),
    };
    Err(Error::Invalid {
        file: parent_file.to_path_buf(),
        field: field.to_string(),
        problem,
    })
}
