//! What a bootstrap or teardown has done so far, kept next to the cluster's config
//! (`clusters/<name>/.capi-manage/`, gitignored) so that a rerun resumes where it stopped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

/// The state folder of a cluster: `clusters/<name>/.capi-manage`.
pub fn state_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join(crate::capi::STATE_DIR)
}

/// The persisted progress of one operation (bootstrap or teardown).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// Steps finished, by their stable names.
    pub done: BTreeSet<String>,
    /// The commit pushed by the bootstrap, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// The branch it was pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl State {
    /// Reads the state at `path`; a missing file is a fresh start.
    pub fn load(path: &Path) -> Result<State, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(Error::State {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the state atomically (private file).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        write_private(path, &bytes).map_err(|source| Error::State {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes `bytes` to `path` whole ([`crate::fs::write_atomic`]); an existing file keeps its
/// permissions.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fs::write_atomic(path, bytes, crate::fs::Access::Keep)
}

/// Writes `bytes` to `path` whole as a file only the user can read (0600), creating its folder
/// (0700) when missing.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        crate::fs::private_dir(dir)?;
    }
    crate::fs::write_atomic(path, bytes, crate::fs::Access::Private)
}

#[cfg(test)]
mod tests {
    use super::*;
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
