//! Rendering diagnostics and writing files safely.

use crate::diagnostic::Report;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Prints a report's diagnostics on stderr: miette's fancy rendering (source line and
/// caret) on a terminal, the plain `file:line:col: error[CODE]: message` form otherwise.
pub fn print_report(report: &Report) {
    print_report_with(report, !std::io::stderr().is_terminal());
}

/// Diagnostics kept instead of printed (see [`capture_diagnostics`]).
static CAPTURED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// From now on, keep diagnostics (plain) instead of printing them: the ranks of a
/// distributed run other than rank 0 print only if they alone fail
/// ([`take_captured_diagnostics`]).
pub fn capture_diagnostics() {
    *CAPTURED.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::new());
}

/// The diagnostics kept since [`capture_diagnostics`] (empty if none).
pub fn take_captured_diagnostics() -> String {
    CAPTURED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

/// [`print_report`] with an explicit choice of plain rendering.
pub fn print_report_with(report: &Report, plain: bool) {
    if report.diagnostics.is_empty() {
        return;
    }
    if let Some(captured) = CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        captured.push_str(&report.to_plain_string());
        return;
    }
    if !plain {
        for diagnostic in report.to_miette() {
            eprintln!("{diagnostic:?}");
        }
    } else {
        eprint!("{}", report.to_plain_string());
    }
}

/// Writes `text` on stdout. A closed pipe (`catopt run ... | head`) is not an error: the
/// reader has what it wanted, so the rest is dropped quietly instead of panicking.
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

/// Writes `value` as pretty JSON and a newline on stdout, streamed (no whole string in
/// memory); a closed pipe is ignored as in [`print_stdout`].
pub fn print_json(value: &impl serde::Serialize) {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut stdout, value)
        .map_err(std::io::Error::from)
        .and_then(|_| stdout.write_all(b"\n"))
        .and_then(|_| stdout.flush());
}

/// [`write_atomically`] with the contents written by `write` into the temporary file.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let temporary = directory.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&temporary)?;
        let mut writer = std::io::BufWriter::new(file);
        write(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, flushed
/// to disk, then renamed over the target. A crash leaves either the old file or the new one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| file.write_all(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("catopt-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_cleanly() {
        let path = Path::new("/nonexistent-catopt-dir/x.json");
        assert!(write_atomically(path, b"x").is_err());
    }
}
