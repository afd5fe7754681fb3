//! Backup of a namespace's Cluster API objects into a directory, and restore from one, as
//! `clusterctl move --to-directory` and `--from-directory` do.

// Errors name the object they concern; they are built only on failure, so their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::kube::api::DynamicObject;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::discovery::Skipped;
use super::discovery::resolve_on_target;
use super::error::Error;
use super::graph::ObjectRef;
use super::mover::{CopyTo, MoveOptions, MoveReport, Mover, ensure_namespace};
use super::transform::{backup_copy, is_paused, pausable_key};
use crate::fs::{private_dir, write_private};
use crate::kube::Discovery;
use crate::observe::{Observer, ObserverExt};

/// The file of one object in a backup directory, named as clusterctl names them:
/// `<Kind>_<namespace>_<name>.yaml`.
pub fn backup_file_name(reference: &ObjectRef) -> String {
    format!(
        "{}_{}_{}.yaml",
        reference.kind, reference.namespace, reference.name
    )
}

/// Backs up every Cluster API object of `options.namespace` on `source` into `directory`, as
/// `clusterctl move --to-directory` does: one YAML file per object
/// ([`backup_file_name`]), files 0600 in a 0700 directory (Secrets are among them). The source
/// is paused while it is read (so the files are one consistent state) and resumed afterwards;
/// the files hold the objects as they were before this pause (a Cluster paused by someone else
/// stays paused in the files). UIDs and owner references are kept: [`restore`] rebuilds the
/// graph from them.
///
/// # Errors
///
/// [`Error::DirectoryNotEmpty`] for an existing folder that holds files,
/// [`Error::Directory`] when a file cannot be written, [`Error::Rolledback`] when reading failed
/// (the source was resumed), and [`Error::Cancelled`].
pub async fn backup(
    source: &Discovery,
    directory: &Path,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let mut mover = Mover::new(Some(source), None, options, observer, cancel)?;
    let report = mover.discover().await?;
    match std::fs::read_dir(directory) {
        Ok(mut entries) => {
            // Never chmod a folder that exists (it could be /tmp or a home): use it only when
            // it is empty.
            if entries.next().is_some() {
                return Err(Error::DirectoryNotEmpty {
                    path: directory.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            private_dir(directory).map_err(|source| Error::Directory {
                path: directory.to_path_buf(),
                what: "create the backup directory (mode 0700)",
                source,
            })?;
        }
        Err(source) => {
            return Err(Error::Directory {
                path: directory.to_path_buf(),
                what: "read the backup directory",
                source,
            });
        }
    }
    mover.wait_unblocked().await?;
    mover.pause_source().await?;
    let written = mover.copy_all(CopyTo::Directory(directory)).await;
    mover.restore_source().await?;
    if let Err(e) = written {
        return Err(Error::Rolledback {
            copied: 0,
            source: Box::new(e),
        });
    }
    mover.finish()?;
    Ok(report)
}

/// Writes one object, as read from the source, to its file in `directory` ([`backup_copy`]).
pub(super) fn write_object(
    directory: &Path,
    reference: &ObjectRef,
    current: Value,
    paused_by_us: bool,
) -> Result<(), Error> {
    let current = backup_copy(current, paused_by_us);
    let path = directory.join(backup_file_name(reference));
    let yaml = crate::manifest::to_yaml(&[crate::manifest::Object::new(current)]);
    write_private(&path, yaml.as_bytes()).map_err(|source| Error::Directory {
        path,
        what: "write the backup file",
        source,
    })
}

/// The objects of a backup directory: every `*.yaml` file in it (not hidden), one object each.
fn read_backup(directory: &Path) -> Result<Vec<Value>, Error> {
    let dir_err = |what| {
        let path = directory.to_path_buf();
        move |source| Error::Directory { path, what, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(dir_err("read the backup directory"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::EmptyBackup {
            path: directory.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    // Which file holds each uid: the graph is rebuilt from uids, so two objects with one uid
    // (or none) would silently become one.
    let mut files_of_uid: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        let objects = crate::manifest::parse_file(&f).map_err(|source| Error::BackupFile {
            path: f.clone(),
            source,
        })?;
        for o in objects {
            if let Err(e) = serde_json::from_value::<DynamicObject>(o.value.clone()) {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: format!("does not fit a Kubernetes object's metadata ({e})"),
                });
            }
            let uid = o.value["metadata"]["uid"].as_str().unwrap_or_default();
            if uid.is_empty() {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: "field `metadata.uid` is missing: restore rebuilds the graph from uids; take the backup again with `move --to-directory`".into(),
                });
            }
            if let Some(first) = files_of_uid.insert(uid.to_string(), f.clone()) {
                return Err(Error::BackupObject {
                    path: f.clone(),
                    problem: format!(
                        "field `metadata.uid` {uid} is also the uid of the object in {}: one of the two files does not belong to this backup",
                        first.display()
                    ),
                });
            }
            out.push(o.value);
        }
    }
    Ok(out)
}

/// Restores a [`backup`] directory's objects of `options.namespace` onto `target`, as
/// `clusterctl move --from-directory` does: the graph is rebuilt from the files' UIDs and owner
/// references, objects are created group by group with owner references rewritten to the
/// target's UIDs and their status restored. Clusters and ClusterClasses are created paused and
/// unpaused at the end, unless they were paused in the backup. Re-runs (with the journal) update
/// what is already there.
///
/// # Errors
///
/// [`Error::EmptyBackup`], [`Error::BackupFile`] and [`Error::BackupObject`] for a directory or
/// file restore cannot use (naming the file and field), [`Error::Preflight`] when the target
/// lacks kinds, and the errors of writing to the target.
pub async fn restore(
    target: &Discovery,
    directory: &Path,
    options: &MoveOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<MoveReport, Error> {
    let ns = options.namespace.as_str();
    let mut mover = Mover::new(None, Some(target), options, observer, cancel)?;
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for o in read_backup(directory)? {
        if o["metadata"]["namespace"].as_str() == Some(ns) {
            objects.push(o);
        } else {
            skipped.push(Skipped {
                object: ObjectRef::of(&o),
                reason: format!("not in namespace {ns}"),
            });
        }
    }
    let resources = resolve_on_target(target, &objects).await?;
    let report = mover.load(objects, skipped, resources)?;
    ensure_namespace(target, ns).await?;
    let unpaused: Vec<String> = mover
        .graph
        .nodes()
        .filter(|n| !is_paused(&n.object))
        .filter_map(|n| pausable_key(&n.reference))
        .collect();
    mover.journal.paused.extend(unpaused);
    mover.save()?;
    observer.action(format!(
        "restoring {} objects from {} into namespace {ns}",
        mover.graph.len(),
        directory.display()
    ));
    mover.copy_all(CopyTo::Target).await?;
    mover.unpause_target().await?;
    mover.finish()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const CLUSTER_A: &str = "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata:\n  name: a\n  namespace: n\n  uid: u-1\n";

    #[test]
    fn backups_with_missing_duplicate_uids_or_bad_metadata_are_refused_naming_the_files() {
        let other = CLUSTER_A.replace("name: a", "name: b");
        let dir = backup_dir(&[
            ("Cluster_n_a.yaml", CLUSTER_A),
            ("Cluster_n_b.yaml", &other),
        ]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("Cluster_n_b.yaml") && e.contains("Cluster_n_a.yaml"),
            "{e}"
        );
        assert!(e.contains("metadata.uid"), "{e}");

        let no_uid = CLUSTER_A.replace("  uid: u-1\n", "");
        let dir = backup_dir(&[("Cluster_n_a.yaml", &no_uid)]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("Cluster_n_a.yaml: field `metadata.uid` is missing"),
            "{e}"
        );

        let bad_meta = CLUSTER_A.replace("  uid: u-1\n", "  uid: u-1\n  labels: [1, 2]\n");
        let dir = backup_dir(&[("Cluster_n_a.yaml", &bad_meta)]);
        let e = read_backup(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("does not fit a Kubernetes object's metadata"),
            "{e}"
        );

        let dir = backup_dir(&[("Cluster_n_a.yaml", CLUSTER_A)]);
        assert_eq!(read_backup(dir.path()).unwrap().len(), 1);
    }
}
