//! Commit exactly the given files on the current branch, after scanning each of them.

use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use gix::bstr::BStr;
use gix::objs::tree::EntryKind;

use super::scan::{Violation, scan_file};
use crate::observe::{Observer, ObserverExt};

/// Who authored the commit, when not taken from git config (`user.name`/`user.email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The author's name.
    pub name: String,
    /// The author's email address.
    pub email: String,
}

/// What [`commit()`] commits.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CommitOptions {
    /// The files to commit, relative to the repository root (or absolute, inside the work
    /// tree). A listed file that does not exist is removed from the tree. Nothing else changes.
    /// Files that exist but are ignored by `.gitignore` are committed all the same: the scan,
    /// not ignore rules, decides what must not be committed.
    pub files: Vec<PathBuf>,
    /// The commit message, e.g. `Bootstrap cluster - prod`.
    pub message: String,
    /// The author (and committer, if git config names none); `None`: from git config.
    pub author: Option<Author>,
}

impl CommitOptions {
    /// Options committing `files` with `message`, author from git config.
    pub fn new(
        files: impl IntoIterator<Item = impl Into<PathBuf>>,
        message: impl Into<String>,
    ) -> Self {
        CommitOptions {
            files: files.into_iter().map(Into::into).collect(),
            message: message.into(),
            author: None,
        }
    }
}

/// The default commit message of `capi-manage bootstrap <cluster>`.
pub fn bootstrap_message(cluster: &str) -> String {
    format!("Bootstrap cluster - {cluster}")
}

/// What [`commit()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitOutcome {
    /// A new commit on `branch`.
    Committed {
        /// The commit's id (hex).
        id: String,
        /// The branch it was committed on, e.g. `main`.
        branch: String,
    },
    /// The files already had this content: nothing was committed.
    Unchanged {
        /// The branch's current commit (hex).
        head: String,
    },
}

/// Why [`commit()`] failed. Nothing was committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// No repository with a work tree at or above the path.
    #[error("{path}: not inside a git work tree")]
    NotARepository {
        /// Where we looked.
        path: PathBuf,
        /// gix's reason, if any.
        #[source]
        source: Option<gix::Error>,
    },
    /// HEAD is detached.
    #[error("{path}: HEAD is detached; check out a branch first (`git switch <branch>`)")]
    DetachedHead {
        /// The repository.
        path: PathBuf,
    },
    /// A file to commit lies outside the work tree (or inside `.git`).
    #[error("{file}: not inside the repository's work tree {root}")]
    OutsideRepository {
        /// The file.
        file: PathBuf,
        /// The work tree.
        root: PathBuf,
    },
    /// A file to commit cannot be read.
    #[error("{file}: cannot read")]
    ReadFile {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tree to commit contains something that must never be committed.
    #[error("refusing to commit {file}: {violation}")]
    Refused {
        /// The offending file, relative to the repository root.
        file: String,
        /// What is wrong with it.
        violation: Violation,
    },
    /// Neither options nor git config name an author.
    #[error(
        "no commit author: set `git config user.name` and `git config user.email`, or pass the author explicitly"
    )]
    NoIdentity,
    /// A repository operation failed.
    #[error("{path}: cannot {what}")]
    Repository {
        /// The repository.
        path: PathBuf,
        /// What failed, e.g. "write the commit".
        what: &'static str,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
}

/// Commits exactly `options.files` on the current branch of the repository containing `repo`.
///
/// Before committing, every file to commit is checked with [`scan_file`](super::scan_file): a
/// plaintext Secret, a credentials file, a kubeconfig, a private key (and the rest the scan
/// refuses) refuses the commit, naming the file. Files committed earlier are left to
/// [`push()`](super::push), which scans every file of every commit it sends. When the files
/// already have the committed content, nothing happens ([`CommitOutcome::Unchanged`]). The index
/// is updated for the committed files so `git status` stays clean.
///
/// # Errors
///
/// [`CommitError::NotARepository`], [`CommitError::DetachedHead`] or
/// [`CommitError::OutsideRepository`] when there is nothing to commit on or a file lies
/// outside the repository; [`CommitError::ReadFile`] for an unreadable file;
/// [`CommitError::Refused`] when the scan refuses a file; [`CommitError::NoIdentity`] without
/// an author; [`CommitError::Repository`] when gix fails to write.
pub fn commit(
    repo: &Path,
    options: &CommitOptions,
    observer: &dyn Observer,
) -> Result<CommitOutcome, CommitError> {
    let started = Instant::now();
    let repository = gix::discover(repo).map_err(|source| CommitError::NotARepository {
        path: repo.to_owned(),
        source: Some(source),
    })?;
    let root = repository
        .workdir()
        .ok_or_else(|| CommitError::NotARepository {
            path: repo.to_owned(),
            source: None,
        })?
        .to_owned();
    let fail = |what: &'static str| {
        let path = root.clone();
        move |source| CommitError::Repository { path, what, source }
    };
    let branch = repository
        .head_name()
        .map_err(fail("read HEAD"))?
        .ok_or_else(|| CommitError::DetachedHead { path: root.clone() })?;
    let head = repository.head().map_err(fail("read HEAD"))?;
    let parent = head.id().map(|id| id.detach());
    let base_tree = match parent {
        Some(parent) => repository
            .find_commit(parent)
            .and_then(|c| c.tree_id())
            .map_err(fail("read the current commit"))?
            .detach(),
        None => repository.empty_tree().id,
    };

    // Stage: blobs for the listed files into a copy of the current tree.
    let mut editor = repository
        .edit_tree(base_tree)
        .map_err(fail("read the current tree"))?;
    let mut staged = Vec::new();
    for file in &options.files {
        let rela = relative_path(&root, file)?;
        let absolute = root.join(&rela);
        let rela_str = rela
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        match std::fs::symlink_metadata(&absolute) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                editor
                    .remove(rela_str.as_str())
                    .map_err(fail("edit the tree"))?;
                staged.push((rela_str, None));
            }
            Err(source) => {
                return Err(CommitError::ReadFile {
                    file: absolute,
                    source,
                });
            }
            Ok(meta) => {
                let (content, kind) = if meta.file_type().is_symlink() {
                    let target =
                        std::fs::read_link(&absolute).map_err(|source| CommitError::ReadFile {
                            file: absolute.clone(),
                            source,
                        })?;
                    (
                        target.to_string_lossy().into_owned().into_bytes(),
                        EntryKind::Link,
                    )
                } else {
                    let content =
                        std::fs::read(&absolute).map_err(|source| CommitError::ReadFile {
                            file: absolute.clone(),
                            source,
                        })?;
                    (
                        content,
                        if is_executable(&meta) {
                            EntryKind::BlobExecutable
                        } else {
                            EntryKind::Blob
                        },
                    )
                };
                if let Some(violation) = scan_file(&rela_str, &content) {
                    return Err(CommitError::Refused {
                        file: rela_str,
                        violation,
                    });
                }
                let id = repository
                    .write_blob(&content)
                    .map_err(fail("write a blob"))?
                    .detach();
                editor
                    .upsert(rela_str.as_str(), kind, id)
                    .map_err(fail("edit the tree"))?;
                staged.push((rela_str, Some((id, kind))));
            }
        }
    }
    let tree = editor.write().map_err(fail("write the tree"))?.detach();
    if let Some(parent) = parent.filter(|_| tree == base_tree) {
        observer.success("nothing to commit: the files are unchanged", None);
        return Ok(CommitOutcome::Unchanged {
            head: parent.to_string(),
        });
    }

    // Files committed earlier are not scanned here: `push` scans every file of every commit
    // it sends, which is what reaches the remote (a repository may well hold test fixtures
    // that look like secrets in history the remote already has).

    let mut time_buf = gix::date::parse::TimeBuf::default();
    let author_sig = options.author.as_ref().map(|a| gix::actor::Signature {
        name: a.name.as_str().into(),
        email: a.email.as_str().into(),
        time: gix::date::Time::now_local_or_utc(),
    });
    let author_ref = match &author_sig {
        Some(sig) => sig.to_ref(&mut time_buf),
        None => match repository.author() {
            Some(Ok(sig)) => sig,
            _ => return Err(CommitError::NoIdentity),
        },
    };
    let committer_ref = match repository.committer() {
        Some(Ok(sig)) => sig,
        _ => author_ref,
    };
    let id = repository
        .commit_as(
            committer_ref,
            author_ref,
            branch.as_ref(),
            &options.message,
            tree,
            parent,
        )
        .map_err(fail("write the commit"))?
        .detach();

    update_index(&repository, &root, tree, &staged).map_err(fail("update the index"))?;
    let branch_short = branch.shorten().to_string();
    observer.success(
        format!("committed {} on {branch_short}", id.to_hex_with_len(12)),
        Some(started.elapsed()),
    );
    Ok(CommitOutcome::Committed {
        id: id.to_string(),
        branch: branch_short,
    })
}

fn relative_path(root: &Path, file: &Path) -> Result<PathBuf, CommitError> {
    let outside = || CommitError::OutsideRepository {
        file: file.to_owned(),
        root: root.to_owned(),
    };
    let absolute = root.join(file);
    // Compare canonical parents so `/tmp` vs `/private/tmp`-style links do not matter.
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let parent = absolute.parent().ok_or_else(outside)?;
    let canonical_parent = parent.canonicalize().unwrap_or_else(|_| parent.to_owned());
    let name = absolute.file_name().ok_or_else(outside)?;
    let rela = canonical_parent
        .strip_prefix(&canonical_root)
        .map_err(|_| outside())?
        .join(name);
    if rela
        .components()
        .any(|c| !matches!(c, Component::Normal(_)) || c.as_os_str() == ".git")
    {
        return Err(outside());
    }
    Ok(rela)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

type Staged = [(String, Option<(gix::ObjectId, EntryKind)>)];

fn update_index(
    repository: &gix::Repository,
    root: &Path,
    tree: gix::ObjectId,
    staged: &Staged,
) -> Result<(), gix::Error> {
    if !repository.index_path().exists() {
        let mut index = repository.index_from_tree(&tree)?;
        return index
            .write(Default::default())
            .map_err(gix::Error::from_error);
    }
    let mut index = repository.open_index()?;
    let removed: Vec<&str> = staged.iter().map(|(p, _)| p.as_str()).collect();
    index.remove_entries(|_, path, _| removed.iter().any(|r| path == BStr::new(r)));
    for (path, blob) in staged {
        let Some((id, kind)) = blob else { continue };
        let mode = match kind {
            EntryKind::BlobExecutable => gix::index::entry::Mode::FILE_EXECUTABLE,
            EntryKind::Link => gix::index::entry::Mode::SYMLINK,
            _ => gix::index::entry::Mode::FILE,
        };
        let stat = gix::index::fs::Metadata::from_path_no_follow(&root.join(path))
            .ok()
            .and_then(|m| gix::index::entry::Stat::from_fs(&m).ok())
            .unwrap_or_default();
        index.dangerously_push_entry(
            stat,
            *id,
            gix::index::entry::Flags::empty(),
            mode,
            path.as_str().into(),
        );
    }
    index.sort_entries();
    // Our entries changed: the tree cache would describe the old content (gitoxide #2421).
    index.remove_tree();
    index
        .write(Default::default())
        .map_err(gix::Error::from_error)
}
