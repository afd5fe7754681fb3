//! Which objects the remote lacks, and the pack that carries them (gix-pack output).

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use gix::ObjectId;
use gix::objs::tree::EntryKind;
use gix_pack::data::output;

/// The objects to send and the pack bytes.
pub(crate) struct Pack {
    pub bytes: Vec<u8>,
    pub objects: usize,
}

/// Whether `ancestor` is reachable from `tip` (or equal to it).
pub(crate) fn is_ancestor(
    repo: &gix::Repository,
    ancestor: ObjectId,
    tip: ObjectId,
) -> Result<bool, gix::Error> {
    if ancestor == tip {
        return Ok(true);
    }
    for info in repo.rev_walk([tip]).all()? {
        if info?.id == ancestor {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The haves that are commits in `repo`: what a walk of the new commits hides.
pub(crate) fn hidden_commits(repo: &gix::Repository, haves: &[ObjectId]) -> Vec<ObjectId> {
    haves
        .iter()
        .copied()
        .filter(|id| {
            repo.find_header(*id)
                .is_ok_and(|h| h.kind() == gix::object::Kind::Commit)
        })
        .collect()
}

/// Objects reachable from `tip` but not from any of `haves` (those we have locally).
///
/// Commits come from a revision walk that hides everything reachable from the haves. For trees
/// and blobs, the trees of the commits at the boundary (the hidden parents of new commits, and
/// the haves themselves) are marked as present, recursively, like git's "edge" marking: a
/// remote that has a commit has its whole tree.
pub(crate) fn objects_to_send(
    repo: &gix::Repository,
    tip: ObjectId,
    haves: &[ObjectId],
) -> Result<Vec<ObjectId>, gix::Error> {
    let hidden = hidden_commits(repo, haves);
    let mut commits = Vec::new();
    let mut new_set = HashSet::new();
    let mut boundary = HashSet::new();
    for info in repo
        .rev_walk([tip])
        .with_hidden(hidden.iter().copied())
        .all()?
    {
        let info = info?;
        new_set.insert(info.id);
        commits.push(info.id);
        boundary.extend(info.parent_ids().map(|p| p.detach()));
    }
    boundary.retain(|id| !new_set.contains(id));

    let mut present = HashSet::new();
    for commit in &boundary {
        // A boundary parent we do not have would be a shallow clone: nothing to mark.
        if let Ok(commit) = repo.find_commit(*commit) {
            mark_tree(repo, commit.tree_id()?.detach(), &mut present, None)?;
        }
    }
    let mut out = Vec::new();
    for commit_id in &commits {
        out.push(*commit_id);
        let tree = repo.find_commit(*commit_id)?.tree_id()?.detach();
        mark_tree(repo, tree, &mut present, Some(&mut out))?;
    }
    Ok(out)
}

/// Adds `tree` and everything below it to `seen`, skipping subtrees already seen; newly seen
/// ids go to `out` when given.
fn mark_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    seen: &mut HashSet<ObjectId>,
    mut out: Option<&mut Vec<ObjectId>>,
) -> Result<(), gix::Error> {
    if !seen.insert(tree) {
        return Ok(());
    }
    if let Some(out) = out.as_deref_mut() {
        out.push(tree);
    }
    let mut stack = vec![tree];
    while let Some(id) = stack.pop() {
        let tree = repo.find_tree(id)?;
        for entry in tree.iter() {
            let entry = entry?;
            let kind = entry.mode().kind();
            if kind == EntryKind::Commit {
                // Submodule commits live in other repositories.
                continue;
            }
            let id = entry.oid().to_owned();
            if !seen.insert(id) {
                continue;
            }
            if let Some(out) = out.as_deref_mut() {
                out.push(id);
            }
            if kind == EntryKind::Tree {
                stack.push(id);
            }
        }
    }
    Ok(())
}

/// Writes a (non-thin) pack of exactly `ids`.
pub(crate) fn write_pack(
    repo: &gix::Repository,
    ids: Vec<ObjectId>,
    should_interrupt: &AtomicBool,
) -> Result<Pack, gix::Error> {
    let mut db = repo
        .objects
        .clone()
        .into_arc()
        .map_err(gix::error::ErrorExt::raise)?
        .into_inner();
    // Pack entries are copied by location: packs must stay mapped while we read them.
    db.prevent_pack_unload();
    let progress = gix::progress::Discard;
    let mut input = ids.into_iter().map(Ok);
    let (counts, _) = output::count::objects_unthreaded(
        &db,
        &mut input,
        &progress,
        should_interrupt,
        output::count::objects::ObjectExpansion::AsIs,
    )?;
    let objects = counts.len();
    let entries = output::entry::iter_from_counts(
        counts,
        db,
        Box::new(gix::progress::Discard),
        output::entry::iter_from_counts::Options {
            thread_limit: Some(1),
            mode: output::entry::iter_from_counts::Mode::PackCopyAndBaseObjects,
            // Deltas against objects outside the pack are re-compressed as whole objects: the
            // remote may not have the base.
            allow_thin_pack: false,
            chunk_size: 64,
            version: Default::default(),
            compression: Default::default(),
        },
    )?;
    let mut entries = gix::parallel::InOrderIter::from(entries);
    let mut bytes = Vec::new();
    {
        let mut writer = output::bytes::FromEntriesIter::new(
            entries.by_ref(),
            &mut bytes,
            objects as u32,
            gix_pack::data::Version::default(),
            repo.object_hash(),
        );
        for written in writer.by_ref() {
            written?;
        }
    }
    let stats = gix::parallel::Finalize::finalize(entries.inner)?;
    if stats.missing_objects > 0 {
        return Err(gix::error::ErrorExt::raise(std::io::Error::other(format!(
            "{} objects to send are missing from the local repository",
            stats.missing_objects
        ))));
    }
    Ok(Pack { bytes, objects })
}
