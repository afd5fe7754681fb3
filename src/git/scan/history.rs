//! The pre-push scan: every file each new commit adds or changes, not only the final tree, so a
//! secret committed and deleted again before the push is found in the commit that added it.

use std::collections::HashSet;

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};
use gix::objs::tree::EntryKind;

use super::{Violation, scan_file};

/// A refused file in one of the commits a push would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The commit that adds or changes the file.
    pub commit: ObjectId,
    /// The file, relative to the repository root.
    pub path: String,
    pub violation: Violation,
}

/// Scans the commits reachable from `tip` but not from `haves` (what the remote has), oldest
/// first. In each, every blob (and symlink) that differs from the same path in all of its
/// parents is scanned with [`scan_file`]; a root commit has all its files scanned. Returns the
/// first refused file.
pub(crate) fn first_violation(
    repo: &gix::Repository,
    tip: ObjectId,
    haves: &[ObjectId],
) -> Result<Option<Finding>, gix::Error> {
    let hidden = crate::git::push::pack::hidden_commits(repo, haves);
    let mut commits = Vec::new();
    for info in repo.rev_walk([tip]).with_hidden(hidden).all()? {
        let info = info?;
        commits.push((
            info.id,
            info.parent_ids().map(|p| p.detach()).collect::<Vec<_>>(),
        ));
    }
    // Oldest first: the finding names the commit that introduced the file.
    commits.reverse();
    let mut scanned: HashSet<(BString, ObjectId)> = HashSet::new();
    for (commit, parents) in commits {
        let tree = repo.find_commit(commit)?.tree_id()?.detach();
        // A parent we do not have (shallow history) counts as empty: everything is scanned.
        let parent_trees: Vec<ObjectId> = parents
            .iter()
            .filter_map(|p| repo.find_commit(*p).ok())
            .map(|c| c.tree_id().map(|t| t.detach()))
            .collect::<Result<_, _>>()?;
        if let Some((path, violation)) = scan_tree(repo, tree, &parent_trees, &mut scanned)? {
            return Ok(Some(Finding {
                commit,
                path,
                violation,
            }));
        }
    }
    Ok(None)
}

/// Walks `tree` against the trees at the same path in the parents: identical subtrees and
/// blobs are skipped; so is a (path, object) pair scanned before in another commit.
fn scan_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    parent_trees: &[ObjectId],
    scanned: &mut HashSet<(BString, ObjectId)>,
) -> Result<Option<(String, Violation)>, gix::Error> {
    let mut stack: Vec<(BString, ObjectId, Vec<ObjectId>)> =
        vec![(BString::default(), tree, parent_trees.to_vec())];
    while let Some((prefix, tree_id, parents)) = stack.pop() {
        if parents.contains(&tree_id) || !scanned.insert((prefix.clone(), tree_id)) {
            continue;
        }
        let parent_entries = parents
            .iter()
            .map(|p| crate::git::repo::tree_entries(repo, *p))
            .collect::<Result<Vec<_>, _>>()?;
        let tree = repo.find_tree(tree_id)?;
        for entry in tree.iter() {
            let entry = entry?;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.filename());
            let id = entry.oid().to_owned();
            let kind = entry.mode().kind();
            let in_parents: Vec<(ObjectId, EntryKind)> = parent_entries
                .iter()
                .filter_map(|p| p.get(entry.filename()).copied())
                .collect();
            match kind {
                EntryKind::Tree => {
                    let parent_subtrees = in_parents
                        .iter()
                        .filter(|(_, k)| *k == EntryKind::Tree)
                        .map(|(id, _)| *id)
                        .collect();
                    stack.push((path, id, parent_subtrees));
                }
                EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link => {
                    if in_parents
                        .iter()
                        .any(|(pid, k)| *pid == id && *k != EntryKind::Tree)
                        || !scanned.insert((path.clone(), id))
                    {
                        continue;
                    }
                    let blob = repo.find_blob(id)?;
                    let path = path.to_str_lossy().into_owned();
                    if let Some(violation) = scan_file(&path, &blob.data) {
                        return Ok(Some((path, violation)));
                    }
                }
                // Submodule commits live in other repositories.
                EntryKind::Commit => {}
            }
        }
    }
    Ok(None)
}
