//! Exit codes of the real binary that no other test covers: a reader that goes away.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use crate::support::{capi_manage, project_root};

/// A pipe whose read end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills both descriptors; we own them from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the read end is ours and closed once.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is a valid descriptor we own.
    unsafe { OwnedFd::from_raw_fd(fds[1]) }
}

#[test]
fn a_closed_stdout_ends_the_run_with_0_and_no_message() {
    let example = project_root().join("clusters/example");
    for args in [
        vec!["render".to_string(), example.display().to_string()],
        vec!["completions".to_string(), "bash".to_string()],
    ] {
        let out = capi_manage()
            .args(&args)
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
