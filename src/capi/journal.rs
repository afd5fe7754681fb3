//! The move journal: what a move changed on the source, so that a re-run after a crash can
//! finish the job and undo exactly what this tool paused.

// Errors name the object they concern; they are built only on failure, so their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::graph::ObjectRef;
use super::mover::MoveOptions;
use super::transform::pausable_key;

/// The folder under a cluster's config folder (`clusters/<name>/`) for local state; the
/// repository's `.gitignore` keeps it out of git.
pub const STATE_DIR: &str = ".capi-manage";

/// The default journal of a cluster's move: `<cluster_dir>/.capi-manage/move-journal.json`.
pub fn journal_path(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join(STATE_DIR).join("move-journal.json")
}

/// The journal: what this tool changed on the source, so a re-run can finish and undo it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journal {
    /// Namespace being moved.
    pub namespace: String,
    /// Clusters and ClusterClasses this tool paused on the source (`Kind/name`).
    pub paused: BTreeSet<String>,
    /// HelmReleases this tool suspended on the source (names).
    pub suspended: BTreeSet<String>,
    /// Source UID -> target UID of objects already copied.
    pub copied: BTreeMap<String, String>,
    /// The id of the move run that wrote this journal (the value of
    /// [`PAUSED_BY_MOVE`](super::PAUSED_BY_MOVE)).
    #[serde(default)]
    pub run: String,
}

impl Journal {
    /// The journal of a run with `options`: the one left at `options.journal` by an earlier run,
    /// or a new one, for `options.namespace`, with a run id.
    pub(super) fn open(options: &MoveOptions) -> Result<Journal, Error> {
        let mut journal = match &options.journal {
            Some(p) => Journal::load(p)?.unwrap_or_default(),
            None => Journal::default(),
        };
        journal.namespace = options.namespace.clone();
        if journal.run.is_empty() {
            journal.run = run_id();
        }
        Ok(journal)
    }

    /// Writes the journal to `path`, when the run keeps one.
    pub(super) fn record(&self, path: Option<&Path>) -> Result<(), Error> {
        match path {
            Some(p) => self.save(p),
            None => Ok(()),
        }
    }

    /// The operation is complete: the journal at `path` has nothing left to resume.
    pub(super) fn discard(path: Option<&Path>) -> Result<(), Error> {
        let Some(p) = path else {
            return Ok(());
        };
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Journal {
                path: p.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Whether this tool paused the object (it is pausable and recorded as paused).
    pub(super) fn has_paused(&self, reference: &ObjectRef) -> bool {
        pausable_key(reference).is_some_and(|key| self.paused.contains(&key))
    }

    fn load(path: &Path) -> Result<Option<Journal>, Error> {
        let invalid = |e: String| Error::Journal {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let journal: Journal =
                    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
                // Every paused entry names an object as `Kind/name`.
                if let Some(bad) = journal.paused.iter().find(|k| {
                    !k.split_once('/')
                        .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
                }) {
                    return Err(invalid(format!(
                        "field `paused`: entry {bad:?} is not `Kind/name`; fix or remove the entry (or move the file aside and unpause the Clusters by hand)"
                    )));
                }
                Ok(Some(journal))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Journal {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn save(&self, path: &Path) -> Result<(), Error> {
        let err = |source| Error::Journal {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            crate::fs::private_dir(dir).map_err(err)?;
        }
        crate::fs::write_private(
            path,
            &serde_json::to_vec_pretty(self).expect("journal serialises"),
        )
        .map_err(err)
    }
}

/// A fresh run id: the time and the process, enough to tell two runs apart in an annotation.
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_secs(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_with_a_malformed_paused_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        for bad in ["Cluster", "/a", "Cluster/"] {
            std::fs::write(
                &path,
                format!(
                    r#"{{"namespace": "n", "paused": ["{bad}"], "suspended": [], "copied": {{}}}}"#
                ),
            )
            .unwrap();
            let e = Journal::load(&path).unwrap_err();
            let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(text.contains("is not `Kind/name`"), "{text}");
        }
        std::fs::write(
            &path,
            r#"{"namespace": "n", "paused": ["Cluster/a"], "suspended": [], "copied": {}}"#,
        )
        .unwrap();
        assert!(Journal::load(&path).unwrap().is_some());
    }
}
