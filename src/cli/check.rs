//! `catopt check FILE...`.

use std::path::PathBuf;

/// Checks each file, prints a summary or the rendered errors, and returns the exit code
/// (0 when every file is good, 2 otherwise).
pub fn run(files: &[PathBuf]) -> i32 {
    let _ = files;
    eprintln!("catopt check: not built yet");
    super::EXIT_BAD_INPUT
}
