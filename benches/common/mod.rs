//! What the benches share: where the peers' binaries are.

use std::path::PathBuf;
use std::process::Command;

/// The upstream binary `name` from `scripts/test-binaries` (its folder, or
/// `$CAPI_MANAGE_TEST_BIN`); panics with the command that builds it when it is missing.
pub fn test_bin(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("CAPI_MANAGE_TEST_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let out = Command::new(root.join("scripts/test-binaries"))
                .arg("--print-dir")
                .output()
                .expect("run scripts/test-binaries --print-dir");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{name} is missing at {}: run `scripts/test-binaries {name}`",
        bin.display()
    );
    bin
}
