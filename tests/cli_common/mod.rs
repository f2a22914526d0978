//! Helpers shared by the test binaries that run the `catopt` executable.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The repository root (examples, bench and docs paths are relative to it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `catopt` executable of this build, run from the repository root.
pub fn catopt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_catopt"));
    command.current_dir(root());
    command
}

/// A fresh, empty folder for one test (named by the test and this process's id).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
