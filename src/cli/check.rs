//! `catopt check FILE...`.

use crate::check::{check_file_with, summary, CheckOptions};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Checks each file, prints a summary or the rendered errors, and returns the exit code
/// (0 when every file is good, 2 otherwise). Diagnostics go to stderr, rendered by miette
/// (source line and caret) on a terminal and as plain `file:line:col: error[CODE]` text
/// otherwise or with `plain`.
pub fn run(files: &[PathBuf]) -> i32 {
    run_with(files, !std::io::stderr().is_terminal())
}

/// [`run`] with an explicit choice of plain rendering.
pub fn run_with(files: &[PathBuf], plain: bool) -> i32 {
    run_with_options(files, plain, &CheckOptions::default())
}

/// [`run_with`] with check options (data root, path and size limits).
pub fn run_with_options(files: &[PathBuf], plain: bool, options: &CheckOptions) -> i32 {
    let mut code = super::EXIT_OK;
    for path in files {
        let outcome = check_file_with(path, options);
        super::render::print_report_with(&outcome.report, plain);
        match &outcome.program {
            Some(program) => super::render::print_stdout(&summary(program)),
            None => code = super::EXIT_BAD_INPUT,
        }
    }
    code
}
