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

/// Objects reachable from `tip` but not from any of `haves` (those we have locally), as far as
/// the parents of the new commits tell.
///
/// Commits come from a revision walk that hides everything reachable from the haves. Each new
/// commit's tree is walked against its parents' trees at the same path, as git's sparse
/// reachability does (`pack.useSparse`): an entry whose id a parent has at that path is in the
/// remote already (a hidden parent: the remote has its whole tree) or in this pack (a new
/// parent, walked the same way); only the others are sent, and only the trees among them are
/// opened. The cost follows the size of the change, not of the repository. An object the remote
/// has under another path may be sent again, which receive-pack accepts.
pub(crate) fn objects_to_send(
    repo: &gix::Repository,
    tip: ObjectId,
    haves: &[ObjectId],
) -> Result<Vec<ObjectId>, gix::Error> {
    let hidden = hidden_commits(repo, haves);
    let mut commits = Vec::new();
    for info in repo
        .rev_walk([tip])
        .with_hidden(hidden.iter().copied())
        .all()?
    {
        let info = info?;
        commits.push((
            info.id,
            info.parent_ids().map(|p| p.detach()).collect::<Vec<_>>(),
        ));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (commit_id, parents) in commits {
        out.push(commit_id);
        let tree = repo.find_commit(commit_id)?.tree_id()?.detach();
        // A parent we do not have (shallow history) counts as empty.
        let parent_trees = parents
            .iter()
            .filter_map(|p| repo.find_commit(*p).ok())
            .map(|c| c.tree_id().map(|t| t.detach()))
            .collect::<Result<Vec<_>, _>>()?;
        if parent_trees.contains(&tree) || !seen.insert(tree) {
            continue;
        }
        out.push(tree);
        walk_changed(repo, tree, parent_trees, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// Sends what `tree` (already sent) holds that its `parents` (the trees at the same path in the
/// parent commits) do not hold: an entry whose id is any entry of those trees (the same name, or
/// a file or folder renamed within the folder) is there already. New subtrees are walked against
/// the parents' subtrees of the same name.
fn walk_changed(
    repo: &gix::Repository,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<(), gix::Error> {
    let mut stack = vec![(tree, parents)];
    while let Some((id, parents)) = stack.pop() {
        let parent_entries = parents
            .iter()
            .map(|p| crate::git::repo::tree_entries(repo, *p))
            .collect::<Result<Vec<_>, _>>()?;
        let known: HashSet<ObjectId> = parent_entries
            .iter()
            .flat_map(|p| p.values().map(|(id, _)| *id))
            .collect();
        let tree = repo.find_tree(id)?;
        for entry in tree.iter() {
            let entry = entry?;
            let kind = entry.mode().kind();
            if kind == EntryKind::Commit {
                // Submodule commits live in other repositories.
                continue;
            }
            let id = entry.oid().to_owned();
            if known.contains(&id) || !seen.insert(id) {
                continue;
            }
            out.push(id);
            if kind == EntryKind::Tree {
                let subtrees = parent_entries
                    .iter()
                    .filter_map(|p| p.get(entry.filename()))
                    .filter(|(_, k)| *k == EntryKind::Tree)
                    .map(|(p, _)| *p)
                    .collect();
                stack.push((id, subtrees));
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
