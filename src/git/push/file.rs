//! Local remotes (`file://` and paths), applied in-process: no `git-receive-pack` is spawned.
//!
//! The pack we would send is indexed into the remote's `objects/pack` with gix-pack, then the
//! ref is updated with a compare-and-swap ref transaction. Hooks do not run.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::PushError;
use super::protocol::{Advertisement, Command, Report};

pub(crate) struct Local {
    url: String,
    path: PathBuf,
}

impl Local {
    pub(crate) async fn connect(
        url: &str,
        path: PathBuf,
    ) -> Result<(Local, Advertisement), PushError> {
        let url = url.to_owned();
        let local = Local { url, path };
        let (url, path) = (local.url.clone(), local.path.clone());
        let adv = tokio::task::spawn_blocking(move || advertise(&url, &path))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok((local, adv))
    }

    pub(crate) async fn apply(self, command: &Command, pack: Vec<u8>) -> Result<Report, PushError> {
        let command = command.clone();
        tokio::task::spawn_blocking(move || apply(&self.url, &self.path, &command, &pack))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

fn open(url: &str, path: &std::path::Path) -> Result<gix::Repository, PushError> {
    gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| PushError::Remote {
        url: url.into(),
        message: format!("not a git repository ({e})"),
    })
}

fn advertise(url: &str, path: &std::path::Path) -> Result<Advertisement, PushError> {
    let repo = open(url, path)?;
    let fail = |e: gix::Error| PushError::Remote {
        url: url.into(),
        message: format!("cannot read refs ({e})"),
    };
    let mut adv = Advertisement::default();
    let platform = repo.references().map_err(fail)?;
    for reference in platform.all().map_err(fail)? {
        let reference = reference.map_err(fail)?;
        if let gix::refs::TargetRef::Object(id) = reference.target() {
            adv.refs
                .insert(reference.name().as_bstr().to_string(), id.to_owned());
        }
    }
    Ok(adv)
}

fn apply(
    url: &str,
    path: &std::path::Path,
    command: &Command,
    pack: &[u8],
) -> Result<Report, PushError> {
    let repo = open(url, path)?;
    let remote = |message: String| PushError::Remote {
        url: url.into(),
        message,
    };
    if !repo.is_bare()
        && repo
            .head_name()
            .ok()
            .flatten()
            .is_some_and(|h| h.as_bstr() == command.name.as_str())
    {
        return Err(PushError::Rejected {
            url: url.into(),
            remote_ref: command.name.clone(),
            reason:
                "the branch is checked out in the remote's work tree (push to a bare repository)"
                    .into(),
        });
    }
    if !pack.is_empty() {
        let pack_dir = repo.objects.store_ref().path().join("pack");
        std::fs::create_dir_all(&pack_dir)
            .map_err(|e| remote(format!("cannot create {} ({e})", pack_dir.display())))?;
        let mut reader = pack;
        gix_pack::Bundle::write_to_directory(
            &mut reader,
            Some(&pack_dir),
            &mut gix::progress::Discard,
            &AtomicBool::new(false),
            None::<gix::objs::find::Never>,
            repo.object_hash(),
            gix_pack::bundle::write::Options {
                thread_limit: Some(1),
                ..Default::default()
            },
        )
        .map_err(|e| PushError::Rejected {
            url: url.into(),
            remote_ref: command.name.clone(),
            reason: format!("the remote could not index our pack: {e}"),
        })?;
    }
    let name = FullName::try_from(command.name.as_str()).map_err(|e| PushError::InvalidUrl {
        url: url.into(),
        reason: format!("invalid ref name {:?}: {e}", command.name),
    })?;
    let expected = if command.old.is_null() {
        PreviousValue::MustNotExist
    } else {
        PreviousValue::MustExistAndMatch(Target::Object(command.old))
    };
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: "push".into(),
            },
            expected,
            new: Target::Object(command.new),
        },
        name,
        deref: false,
    };
    let mut repo = repo;
    // Reflog entries need a committer; the remote may have none configured.
    let _ = repo.committer_or_set_generic_fallback();
    repo.edit_reference(edit).map_err(|e| PushError::Rejected {
        url: url.into(),
        remote_ref: command.name.clone(),
        reason: format!("the ref changed while we pushed, pull and push again ({e})"),
    })?;
    Ok(Report {
        unpack: Some(Ok(())),
        refs: vec![(command.name.clone(), Ok(()))],
        messages: Vec::new(),
    })
}
