//! Repository facts: root, current branch, `origin` URL; scp-like URL conversion for Flux.

use std::path::{Path, PathBuf};

/// What the bootstrap needs to know about the config repository.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepoFacts {
    /// The work tree's root (the git directory for a bare repository).
    pub root: PathBuf,
    /// The checked-out branch's short name, e.g. `main`.
    pub branch: String,
    /// `remote.origin.url` (the push URL if one is configured), as written in the config.
    pub origin_url: Option<String>,
}

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No repository at or above the path.
    #[error(
        "{path}: not inside a git repository (run capi-manage from your fork of the repository)"
    )]
    NotARepository {
        /// Where we looked.
        path: PathBuf,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// HEAD cannot be read.
    #[error("{path}: cannot read HEAD")]
    Head {
        /// The repository.
        path: PathBuf,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// HEAD is detached: there is no branch to commit on.
    #[error("{path}: HEAD is detached; check out a branch first (`git switch <branch>`)")]
    DetachedHead {
        /// The repository.
        path: PathBuf,
    },
    /// A remote exists but cannot be read.
    #[error("{path}: remote `{name}` is invalid")]
    Remote {
        /// The repository.
        path: PathBuf,
        /// The remote's name.
        name: String,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
    /// `origin` exists but cannot be read.
    #[error("{path}: remote `origin` is invalid")]
    Origin {
        /// The repository.
        path: PathBuf,
        /// gix's reason.
        #[source]
        source: gix::Error,
    },
}

/// The URL of remote `name` (its push URL if one is configured) in the repository containing
/// `path`, as written in the config; `Ok(None)` when there is no such remote. Works on a detached
/// HEAD and in linked worktrees (whose config is the main repository's).
pub fn remote_url(path: &Path, name: &str) -> Result<Option<String>, OpenError> {
    let repo = gix::discover(path).map_err(|source| OpenError::NotARepository {
        path: path.to_owned(),
        source,
    })?;
    match repo.try_find_remote(name) {
        None => Ok(None),
        Some(Err(source)) => Err(OpenError::Remote {
            path: path.to_owned(),
            name: name.to_string(),
            source,
        }),
        Some(Ok(remote)) => Ok(remote
            .url(gix::remote::Direction::Push)
            .map(|u| u.to_bstring().to_string())),
    }
}

/// Opens the repository containing `path` and reads its branch and `origin`.
pub fn open(path: &Path) -> Result<RepoFacts, OpenError> {
    let repo = gix::discover(path).map_err(|source| OpenError::NotARepository {
        path: path.to_owned(),
        source,
    })?;
    let root = repo
        .workdir()
        .map(Path::to_owned)
        .unwrap_or_else(|| repo.git_dir().to_owned());
    let head = repo.head_name().map_err(|source| OpenError::Head {
        path: root.clone(),
        source,
    })?;
    let Some(head) = head else {
        return Err(OpenError::DetachedHead { path: root });
    };
    let branch = head.shorten().to_string();
    let origin_url = match repo.try_find_remote("origin") {
        None => None,
        Some(Err(source)) => {
            return Err(OpenError::Origin { path: root, source });
        }
        Some(Ok(remote)) => remote
            .url(gix::remote::Direction::Push)
            .map(|u| u.to_bstring().to_string()),
    };
    Ok(RepoFacts {
        root,
        branch,
        origin_url,
    })
}

/// Why [`flux_url`] cannot convert a URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Flux pulls over SSH with the deploy key; this URL is not SSH.
    #[error(
        "git URL {url:?} is not an SSH URL; Flux needs `ssh://user@host/path` or `user@host:path` (set origin with `git remote set-url origin ...`)"
    )]
    NotSsh {
        /// The URL.
        url: String,
    },
}

/// Converts a git SSH URL into the `ssh://` form Flux's GitRepository accepts:
/// `git@github.com:org/repo.git` becomes `ssh://git@github.com/org/repo.git`; `ssh://` URLs are
/// returned unchanged. HTTP(S), `file://` and local paths are refused.
pub fn flux_url(url: &str) -> Result<String, UrlError> {
    let not_ssh = || UrlError::NotSsh { url: url.into() };
    if let Some(rest) = url
        .strip_prefix("ssh://")
        .or_else(|| url.strip_prefix("git+ssh://"))
        .or_else(|| url.strip_prefix("ssh+git://"))
    {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(not_ssh());
        }
        return Ok(format!("ssh://{rest}"));
    }
    if url.contains("://") {
        return Err(not_ssh());
    }
    // scp-like: [user@]host:path, where host has no slash before the colon (else a local path).
    let (host_part, path) = url.split_once(':').ok_or_else(not_ssh)?;
    if host_part.is_empty() || host_part.contains('/') || path.is_empty() {
        return Err(not_ssh());
    }
    let host = host_part.rsplit('@').next().unwrap_or(host_part);
    if host.is_empty() || (host.len() == 1 && url.as_bytes().get(2) == Some(&b'\\')) {
        // `C:\path` on Windows.
        return Err(not_ssh());
    }
    // `host:~user/repo` and `host:/abs` keep their meaning; relative paths are relative to the
    // login directory, which ssh:// expresses as `/~/path`... but every forge resolves
    // `/org/repo` for `org/repo`, so a relative path becomes absolute.
    let path = path.strip_prefix('/').unwrap_or(path);
    Ok(format!("ssh://{host_part}/{path}"))
}

/// The entries of `tree`: name to id and kind.
pub(super) fn tree_entries(
    repo: &gix::Repository,
    tree: gix::ObjectId,
) -> Result<
    std::collections::HashMap<gix::bstr::BString, (gix::ObjectId, gix::object::tree::EntryKind)>,
    gix::Error,
> {
    let tree = repo.find_tree(tree)?;
    let mut out = std::collections::HashMap::new();
    for entry in tree.iter() {
        let entry = entry?;
        out.insert(
            entry.filename().to_owned(),
            (entry.oid().to_owned(), entry.mode().kind()),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_like_urls_become_ssh_urls() {
        for (input, want) in [
            (
                "git@github.com:org/repo.git",
                "ssh://git@github.com/org/repo.git",
            ),
            ("github.com:org/repo", "ssh://github.com/org/repo"),
            ("git@host:/srv/repo.git", "ssh://git@host/srv/repo.git"),
            (
                "ssh://git@host:2222/org/repo.git",
                "ssh://git@host:2222/org/repo.git",
            ),
            ("git+ssh://git@host/org/repo", "ssh://git@host/org/repo"),
        ] {
            assert_eq!(flux_url(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn non_ssh_urls_are_refused() {
        for input in [
            "https://github.com/org/repo.git",
            "file:///srv/repo.git",
            "/srv/repo.git",
            "./repo:odd",
            "repo",
            "ssh:///path",
            "host:",
        ] {
            assert!(
                matches!(flux_url(input), Err(UrlError::NotSsh { .. })),
                "{input}"
            );
        }
    }
}
