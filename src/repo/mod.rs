//! The config repository: its root (the folder holding `clusters/`), a cluster's folder
//! `clusters/<name>/`, and the checks `plan` and `bootstrap` run on it before touching anything:
//! the values ConfigMap parses, the credentials Secret is well formed and named as the values
//! say, and the folder renders.

mod credentials;
mod kustomization;
mod layout;
mod lock;
mod values;

use std::path::{Path, PathBuf};

pub use credentials::{Credentials, PLACEHOLDER};
pub use kustomization::{add_resource, list_resource};
pub use layout::{
    CLUSTERS_DIR, CREDENTIALS, ClusterDir, KUBECONFIG, KUSTOMIZATION, SEALED_CREDENTIALS,
    STATE_DIR, VALUES,
};
pub use lock::{LOCK_FILE, RunLock, lock_file, lock_state_dir};
pub use values::Values;

/// What is wrong with the repository or a cluster's folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No ancestor of the starting folder holds `clusters/`.
    #[error("{}: not inside a config repository (no clusters/ folder here or above)", start.display())]
    NoRepo {
        /// Where the search started.
        start: PathBuf,
    },
    /// The cluster name cannot be a folder name and Kubernetes object name.
    #[error(
        "cluster name {name:?} is invalid: use lowercase letters, digits and '-' (at most 63, starting with a letter)"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// `clusters/<name>` does not exist or has no kustomization.
    #[error("{}: no such cluster (create it from clusters/example)", dir.display())]
    NoCluster {
        /// The folder expected.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The credentials still hold the template's placeholder.
    #[error(
        "{}: {} still hold{} the template's placeholder {PLACEHOLDER}: fill in the OpenStack application credential", path.display(), fields.join(", "), if fields.len() == 1 { "s" } else { "" }
    )]
    Placeholders {
        /// The credentials file.
        path: PathBuf,
        /// The fields that hold it, e.g. `clouds.openstack.auth.application_credential_secret`.
        fields: Vec<String>,
    },
    /// A file is not valid YAML or not the expected object.
    #[error("{}: invalid YAML", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A field is missing or wrong.
    #[error("{}: field `{field}`: {problem}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, e.g. `stringData.clouds.yaml`.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Another run holds the lock.
    #[error("{}: locked by {holder}: one run at a time; wait for it to end, or stop it", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock {}", path.display())]
    Lock {
        /// The lock file (or the folder that could not be created).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The cluster's folder does not render.
    #[error("{}: does not render", dir.display())]
    Render {
        /// The cluster's folder.
        dir: PathBuf,
        /// The renderer's error.
        #[source]
        source: Box<crate::render::Error>,
    },
}

/// A config repository on disk.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

/// A valid cluster name: a DNS label starting with a letter.
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Repo {
    /// The repository whose root is `start` or its nearest ancestor holding `clusters/`.
    pub fn discover(start: &Path) -> Result<Repo, Error> {
        let abs = if start.is_absolute() {
            start.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|source| Error::Read {
                    path: start.to_path_buf(),
                    source,
                })?
                .join(start)
        };
        abs.ancestors()
            .find(|a| a.join("clusters").is_dir())
            .map(|r| Repo {
                root: r.to_path_buf(),
            })
            .ok_or(Error::NoRepo { start: abs })
    }

    /// The repository rooted at `root` (not checked).
    pub fn at(root: impl Into<PathBuf>) -> Repo {
        Repo { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `clusters/<name>`, checked to exist with a kustomization.
    pub fn cluster_dir(&self, name: &str) -> Result<PathBuf, Error> {
        if !valid_cluster_name(name) {
            return Err(Error::BadName { name: name.into() });
        }
        let dir = ClusterDir::new(&self.root, name);
        if !crate::render::is_kustomization_dir(&dir) {
            return Err(Error::NoCluster { dir: dir.into() });
        }
        Ok(dir.into())
    }

    /// The paths of `clusters/<name>`, checked to exist with a kustomization.
    pub fn layout(&self, name: &str) -> Result<ClusterDir, Error> {
        self.cluster_dir(name)?;
        Ok(ClusterDir::new(&self.root, name))
    }

    /// Loads and checks a cluster's folder: values, credentials, and that it renders.
    pub fn cluster(&self, name: &str) -> Result<Cluster, Error> {
        let dir = self.layout(name)?;
        let values = Values::load(&dir.values())?;
        let credentials = Credentials::load(&dir.credentials())?;
        if credentials.secret_name != values.cloud_credentials_secret_name {
            return Err(Error::Field {
                path: dir.credentials(),
                field: "metadata.name".into(),
                problem: format!(
                    "is {:?} but values.yaml's cloudCredentialsSecretName is {:?}: make them equal",
                    credentials.secret_name, values.cloud_credentials_secret_name
                ),
            });
        }
        if credentials.namespace != values.namespace {
            return Err(Error::Field {
                path: dir.credentials(),
                field: "metadata.namespace".into(),
                problem: format!(
                    "is {:?} but the values ConfigMap is in {:?}: put both in the cluster's namespace",
                    credentials.namespace, values.namespace
                ),
            });
        }
        let objects = crate::render::render(&dir).map_err(|source| Error::Render {
            dir: dir.path().to_path_buf(),
            source: Box::new(source),
        })?;
        check_wiring(&dir, &values, &objects)?;
        Ok(Cluster {
            name: name.into(),
            dir,
            values,
            credentials,
            objects,
        })
    }
}

/// The rendered folder holds the values ConfigMap and a HelmRelease that reads it.
fn check_wiring(
    dir: &ClusterDir,
    values: &Values,
    objects: &[crate::manifest::Object],
) -> Result<(), Error> {
    let kustomization = dir.kustomization();
    let (ns, cm) = (values.namespace.as_str(), values.config_map_name.as_str());
    if !objects
        .iter()
        .any(|o| o.kind() == "ConfigMap" && o.name() == cm && o.namespace() == Some(ns))
    {
        return Err(Error::Field {
            path: kustomization,
            field: "resources".into(),
            problem: format!("the rendered folder has no ConfigMap {ns}/{cm}: list values.yaml"),
        });
    }
    let reads_values = |o: &&crate::manifest::Object| {
        o.kind() == "HelmRelease"
            && o.namespace() == Some(ns)
            && o.value["spec"]["valuesFrom"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|r| r["kind"] == "ConfigMap" && r["name"] == cm)
            })
    };
    if !objects.iter().any(|o| reads_values(&o)) {
        return Err(Error::Field {
            path: kustomization,
            field: "patches".into(),
            problem: format!(
                "no HelmRelease in {ns} takes its values from ConfigMap {cm}: patch the cluster HelmRelease's spec.valuesFrom as clusters/example does"
            ),
        });
    }
    Ok(())
}

impl Credentials {
    /// Refuses credentials (read from `path`) whose fields still hold the template's
    /// placeholder.
    ///
    /// # Errors
    ///
    /// [`Error::Placeholders`] naming every such field.
    pub fn ensure_filled(&self, path: &Path) -> Result<(), Error> {
        if self.placeholders.is_empty() {
            return Ok(());
        }
        Err(Error::Placeholders {
            path: path.to_path_buf(),
            fields: self.placeholders.clone(),
        })
    }
}

/// A checked cluster folder.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The cluster's name (its folder under `clusters/`).
    pub name: String,
    /// `clusters/<name>` and the paths of its files.
    pub dir: ClusterDir,
    /// The values ConfigMap.
    pub values: Values,
    /// The credentials Secret (plaintext; never committed).
    pub credentials: Credentials,
    /// The folder rendered.
    pub objects: Vec<crate::manifest::Object>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_are_dns_labels() {
        assert!(valid_cluster_name("example"));
        assert!(valid_cluster_name("prod-2"));
        for bad in ["", "Prod", "2prod", "a_b", "a-", "../x", &"a".repeat(64)] {
            assert!(!valid_cluster_name(bad), "{bad}");
        }
    }
}
