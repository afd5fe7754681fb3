//! Test harness: real upstream components started as processes on loopback.
#![allow(dead_code)]

pub mod capi;
pub mod capo;
pub mod control_plane;
pub mod docker;
pub mod flux;
pub mod git_server;
pub mod helm_repo;
pub mod infra;
pub mod openstack;
pub mod orc;
mod process;
pub mod registry;
pub mod release_mirror;
pub mod sealed_secrets;
pub mod webhooks;

#[allow(unused_imports)]
pub use control_plane::{ControlPlane, Options};
pub use process::Process;

use std::net::TcpListener;
use std::path::PathBuf;

/// The project root.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/fixtures/upstream`: real upstream CRDs and manifests (test data only).
pub fn fixtures() -> PathBuf {
    let dir = project_root().join("../shared/fixtures/upstream");
    assert!(
        dir.is_dir(),
        "test fixtures missing: {} must exist (CI clones the project with ../shared beside it)",
        dir.display()
    );
    dir
}

/// Where `scripts/test-binaries` puts the upstream binaries.
pub fn test_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPI_MANAGE_TEST_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    cache.join("capi-manage/test-bin")
}

/// An upstream binary built by `scripts/test-binaries`; panics with the command that builds it.
pub fn test_bin(name: &str) -> PathBuf {
    let path = test_bin_dir().join(name);
    assert!(
        path.is_file(),
        "missing test prerequisite {}: run `scripts/test-binaries {name}` (builds it from its Go module)",
        path.display()
    );
    path
}

/// A TCP port free on 127.0.0.1 right now, and never handed out before in this process: tests
/// running in parallel bind their ports later, so two of them must not be given the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind an ephemeral port")
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// An error and its causes on one line, `a: b: c`, as the binary prints them.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s = format!("{s}: {c}");
        src = c.source();
    }
    s
}

/// The capi-manage binary under test: `$CAPI_MANAGE_TEST_EXE` when set (e.g. the static
/// release build of `scripts/build-static`, to measure what users run), else the one cargo
/// built with the tests. (`$CAPI_MANAGE_TEST_BIN` is the upstream binaries' folder.)
pub fn capi_manage_path() -> PathBuf {
    match std::env::var_os("CAPI_MANAGE_TEST_EXE") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "CAPI_MANAGE_TEST_EXE={} is not a file",
                p.display()
            );
            p
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_capi-manage")),
    }
}

/// The capi-manage binary under test (see [`capi_manage_path`]).
pub fn capi_manage() -> std::process::Command {
    std::process::Command::new(capi_manage_path())
}

/// The entries of a `.tar.gz` (a support bundle), name -> text.
pub fn untar(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let f = std::fs::File::open(path).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            (name, text)
        })
        .collect()
}
