//! One run at a time per cluster: an exclusive advisory lock (`flock`) on a file, released when
//! the [`RunLock`] is dropped or the process ends (a killed run leaves no stale lock behind).
//!
//! The file holds the holder's process id and command line, so that a second run can say who
//! holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::Error;

/// The name of the lock file in a cluster's state folder (`clusters/<name>/.capi-manage/`).
pub const LOCK_FILE: &str = "lock";

/// An exclusive lock held for the length of a run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock of a cluster's state folder `state_dir` (created private when missing), for
/// `bootstrap`, `teardown`, `rotate` and `move`. Fails at once, naming the holder, when another
/// process holds it.
pub fn lock_state_dir(state_dir: &Path) -> Result<RunLock, Error> {
    if !state_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| Error::Lock {
                path: state_dir.to_path_buf(),
                source,
            })?;
    }
    lock_file(&state_dir.join(LOCK_FILE))
}

/// Takes an exclusive lock on `path` (created 0600 when missing).
pub fn lock_file(path: &Path) -> Result<RunLock, Error> {
    let io = |source| Error::Lock {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::Locked {
                path: path.to_path_buf(),
                holder: describe_holder(&holder),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let me = format!("{}\n{}\n", std::process::id(), command_line());
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(me.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(RunLock {
        _file: file,
        path: path.to_path_buf(),
    })
}

/// `O_NOFOLLOW` on Linux: the lock file is never a symbolic link planted by someone else.
const fn libc_o_nofollow() -> i32 {
    0o400000
}

fn command_line() -> String {
    std::env::args()
        .map(|a| a.replace(['\n', '\r'], " "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `process <pid> (<command line>)` from the lock file's text; the printable characters only,
/// since the file may have been written by anyone who can write the folder.
fn describe_holder(text: &str) -> String {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(200).collect() };
    let mut lines = text.lines();
    match (lines.next().map(str::trim), lines.next()) {
        (Some(pid), Some(cmd)) if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) => {
            format!("process {pid} ({})", clean(cmd))
        }
        (Some(pid), None) if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) => {
            format!("process {pid}")
        }
        _ => "another process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("clusters/a/.capi-manage");
        let held = lock_state_dir(&state).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let e = lock_state_dir(&state).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("process {} (", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&held.path().display().to_string()), "{text}");
        drop(held);
        lock_state_dir(&state).unwrap();
    }

    #[test]
    fn holder_text_is_sanitised() {
        assert_eq!(
            describe_holder("12\nrun \u{1b}[2Jx\n"),
            "process 12 (run [2Jx)"
        );
        assert_eq!(describe_holder("junk"), "another process");
        assert_eq!(describe_holder(""), "another process");
        assert_eq!(describe_holder("7"), "process 7");
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(lock_file(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
