//! Start a new branch at HEAD's commit and check it out (`git switch -c`), for changes that go
//! to a review branch instead of the current one.

use std::path::{Path, PathBuf};

use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

/// What [`switch_new_branch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwitchOutcome {
    /// The branch was created at HEAD's commit and HEAD now names it.
    Created {
        /// The branch HEAD named before (`None`: HEAD was detached).
        previous: Option<String>,
        /// The commit both point to (hex).
        commit: String,
    },
    /// HEAD already named the branch (a re-run): nothing changed.
    AlreadyOn,
}

/// Why [`switch_new_branch`] failed. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    /// No repository at or above the path.
    #[error("{path}: not inside a git repository")]
    NotARepository {
        /// Where we looked.
        path: PathBuf,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// The name is not a valid branch name.
    #[error("{name:?} is not a valid branch name")]
    InvalidName {
        /// The name given.
        name: String,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// HEAD has no commit yet to start the branch at.
    #[error("{path}: HEAD has no commit yet; commit something first")]
    Unborn {
        /// The repository.
        path: PathBuf,
    },
    /// The branch exists and HEAD is elsewhere.
    #[error(
        "{path}: branch {name} already exists; switch to it (`git switch {name}`) or choose another name"
    )]
    Exists {
        /// The repository.
        path: PathBuf,
        /// The branch.
        name: String,
    },
    /// A repository operation failed.
    #[error("{path}: cannot {what}")]
    Repository {
        /// The repository.
        path: PathBuf,
        /// What failed.
        what: &'static str,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
}

/// Creates branch `name` at HEAD's commit and points HEAD at it, as `git switch -c name` does.
/// The work tree and index are untouched (both name the same commit), and so is the branch HEAD
/// named before. When HEAD already names `name` nothing happens, so a re-run converges.
pub fn switch_new_branch(repo: &Path, name: &str) -> Result<SwitchOutcome, SwitchError> {
    let mut repository = gix::discover(repo).map_err(|source| SwitchError::NotARepository {
        path: repo.to_owned(),
        source,
    })?;
    let root = repository
        .workdir()
        .map(Path::to_owned)
        .unwrap_or_else(|| repository.git_dir().to_owned());
    let fail = |what: &'static str| {
        let path = root.clone();
        move |source| SwitchError::Repository { path, what, source }
    };
    let short = name.strip_prefix("refs/heads/").unwrap_or(name);
    let full: FullName = format!("refs/heads/{short}").try_into().map_err(
        |e: gix::validate::reference::name::Error| SwitchError::InvalidName {
            name: name.into(),
            source: gix::Error::from_error(e),
        },
    )?;
    let previous = repository.head_name().map_err(fail("read HEAD"))?;
    if previous.as_ref() == Some(&full) {
        return Ok(SwitchOutcome::AlreadyOn);
    }
    let commit = repository
        .head_id()
        .map_err(|_| SwitchError::Unborn { path: root.clone() })?
        .detach();
    if repository
        .try_find_reference(full.as_ref())
        .map_err(fail("read the branches"))?
        .is_some()
    {
        return Err(SwitchError::Exists {
            path: root,
            name: short.into(),
        });
    }
    let _ = repository.committer_or_set_generic_fallback();
    let log = |message: String| LogChange {
        mode: RefLog::AndReference,
        force_create_reflog: false,
        message: message.into(),
    };
    let from = previous
        .as_ref()
        .map(|p| p.shorten().to_string())
        .unwrap_or_else(|| commit.to_hex_with_len(12).to_string());
    repository
        .edit_reference(RefEdit {
            change: Change::Update {
                log: log(format!("branch: Created from {from}")),
                expected: PreviousValue::MustNotExist,
                new: Target::Object(commit),
            },
            name: full.clone(),
            deref: false,
        })
        .map_err(fail("create the branch"))?;
    repository
        .edit_reference(RefEdit {
            change: Change::Update {
                log: log(format!("checkout: moving from {from} to {short}")),
                expected: PreviousValue::Any,
                new: Target::Symbolic(full),
            },
            name: "HEAD".try_into().expect("HEAD is a valid ref name"),
            deref: false,
        })
        .map_err(fail("point HEAD at the new branch"))?;
    Ok(SwitchOutcome::Created {
        previous: previous.map(|p| p.shorten().to_string()),
        commit: commit.to_string(),
    })
}
