//! What a bootstrap or teardown has done so far, kept next to the cluster's config
//! (`clusters/<name>/.capi-manage/`, gitignored) so that a rerun resumes where it stopped.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// The format of the state files this version writes; files without a version are the
/// format's first release, read the same way.
pub const STATE_VERSION: u32 = 1;

/// The persisted progress of one operation (bootstrap or teardown).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The file's format ([`STATE_VERSION`]); 0 when read from a file that has none.
    #[serde(default)]
    pub version: u32,
    /// Steps finished, by their stable names.
    pub done: BTreeSet<String>,
    /// The commit pushed by the bootstrap, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// The branch it was pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The kind cluster the steps ran on: the uid of its `kube-system` Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_cluster_uid: Option<String>,
    /// The cluster `clusters/<name>/kubeconfig` reached: the uid of its `kube-system` Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster_uid: Option<String>,
}

impl State {
    /// Reads the state at `path`; a missing file is a fresh start. A file that does not parse,
    /// or that a newer capi-manage wrote, is an error saying what to do.
    ///
    /// # Errors
    ///
    /// [`Error::StateCorrupt`], [`Error::StateFormat`], or [`Error::State`] when the file
    /// cannot be read.
    pub fn load(path: &Path) -> Result<State, Error> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|source| Error::StateCorrupt {
                        path: path.to_path_buf(),
                        source,
                    })?;
                if state.version > STATE_VERSION {
                    return Err(Error::StateFormat {
                        path: path.to_path_buf(),
                        found: state.version,
                        supported: STATE_VERSION,
                    });
                }
                Ok(state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(Error::State {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's bytes, at this version's format.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut current = self.clone();
        current.version = STATE_VERSION;
        serde_json::to_vec_pretty(&current).expect("state serializes")
    }

    /// Writes the state atomically (private file).
    ///
    /// # Errors
    ///
    /// [`Error::State`] naming the file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        crate::fs::write_private(path, &self.to_bytes()).map_err(|source| Error::State {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_newer_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, r#"{"done": ["kind-cluster"]}"#).unwrap();
        let old = State::load(&path).unwrap();
        assert_eq!(old.version, 0);
        assert!(old.done.contains("kind-cluster"));

        std::fs::write(&path, r#"{"version": 9, "done": []}"#).unwrap();
        let e = State::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("format 9") && e.contains("newer capi-manage"),
            "{e}"
        );

        std::fs::write(&path, "{\"done\": [tru").unwrap();
        let e = State::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not a capi-manage state file", path.display())),
            "{e}"
        );
        assert!(e.contains("move it aside"), "{e}");
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn state_round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/.capi-manage/state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.done.insert("kind-cluster".into());
        s.pushed = Some("abc".into());
        s.save(&path).unwrap();
        s.version = STATE_VERSION;
        assert_eq!(State::load(&path).unwrap(), s);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn a_corrupt_state_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = State::load(&path).unwrap_err();
        assert!(e.to_string().contains("state.json"), "{e}");
    }
}
