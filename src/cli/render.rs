//! Rendering diagnostics and writing files safely.

use crate::diagnostic::Report;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
            print_stderr(&format!("{diagnostic:?}\n"));
        }
    } else {
        print_stderr(&report.to_plain_string());
    }
}

/// Set when a write to stdout failed for another reason than a closed pipe: the command
/// then ends with [`super::EXIT_OUTPUT_FAILED`] (see [`stdout_failed`]).
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout failed (full disk, I/O error) since the process started.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::SeqCst)
}

/// Prints `text` on stderr, ignoring errors: a full or closed stderr must not turn into a
/// panic (`eprintln!` panics), and there is nowhere left to report it.
pub fn print_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|_| stderr.flush());
}

/// `eprintln!` that never panics (see [`print_stderr`]).
#[macro_export]
#[doc(hidden)]
macro_rules! warn_line {
    ($($arg:tt)*) => {
        $crate::cli::render::print_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Handles the result of a write to stdout: a closed pipe (`catopt run ... | head`) is not
/// an error, the reader has what it wanted; any other failure (a full disk) is reported on
/// stderr and makes the command exit with [`super::EXIT_OUTPUT_FAILED`], so a truncated
/// result never ends with exit code 0.
fn stdout_result(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::SeqCst);
            print_stderr(&format!(
                "error: cannot write the results to stdout: {e}\n  \
                 help: free some space, or write them to a file with --output\n"
            ));
        }
    }
}

/// Writes `text` on stdout (see [`stdout_result`] for errors).
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    stdout_result(
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush()),
    );
}

/// Writes `bytes` on stdout (see [`stdout_result`] for errors).
pub fn print_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    stdout_result(stdout.write_all(bytes).and_then(|_| stdout.flush()));
}

/// Writes `value` as pretty JSON and a newline on stdout, streamed (no whole string in
/// memory); errors as in [`print_stdout`].
pub fn print_json(value: &impl serde::Serialize) {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    stdout_result(
        serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(std::io::Error::from)
            .and_then(|_| stdout.write_all(b"\n"))
            .and_then(|_| stdout.flush()),
    );
}

/// An output file named on the command line (`--output`, `--trace`, `--checkpoint`,
/// `--plot`, `graph -o`), and how it may be written.
///
/// - A regular file (or a name not yet taken) is written atomically: into a new temporary
///   file of a unique name (`.NAME.catopt-PID-HOST-TIME-N.tmp`, created with `O_EXCL`, so a
///   planted file or symlink at that name is never written through) in the target's folder,
///   flushed to disk, then renamed over the target. It is removed on every error path.
/// - A character device (`/dev/null`) or a FIFO is written directly, never replaced.
/// - `-` is stdout where `stdout_ok` (`--output -`, `graph -o -`); elsewhere it is refused.
/// - A symbolic link is followed (its target is written as above); a dangling one is refused.
/// - Directories, block devices and sockets are refused; so is a regular file or a folder
///   whose permission bits allow nobody to write (e.g. 0444), unless `force`: catopt runs
///   as root on teaching servers, where the operating system would not refuse.
#[derive(Clone, Copy, Debug)]
pub struct OutputFile<'a> {
    /// The path as given.
    pub path: &'a Path,
    /// The flag that named it, for messages (`--output`).
    pub what: &'a str,
    /// `--force`: replace write-protected files.
    pub force: bool,
    /// Whether `-` means stdout.
    pub stdout_ok: bool,
}

/// Where an [`OutputFile`] goes.
#[derive(Debug)]
enum Target {
    /// A regular file, existing (with its permissions) or not: written atomically.
    File(PathBuf, Option<std::fs::Permissions>),
    /// A character device or a FIFO: written directly.
    Stream(PathBuf),
    /// `-`.
    Stdout,
}

impl OutputFile<'_> {
    fn error(&self, problem: impl std::fmt::Display, help: &str) -> String {
        format!(
            "cannot write {} {}: {problem}\n  help: {help}",
            self.what,
            self.path.display()
        )
    }

    /// Checks that the output can be written, without writing it: run before any work.
    pub fn check(&self) -> Result<(), String> {
        match self.target()? {
            Target::File(path, _) => {
                // Create and remove a probe in the folder (catches read-only file systems).
                let folder = folder_of(&path);
                TempFile::create(folder, ".catopt-probe")
                    .map(drop)
                    .map_err(|e| {
                        self.error(
                            format_args!("cannot create a file in {}: {e}", folder.display()),
                            "choose a folder you can write to",
                        )
                    })
            }
            Target::Stream(_) | Target::Stdout => Ok(()),
        }
    }

    fn target(&self) -> Result<Target, String> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if self.path.as_os_str() == "-" {
            return if self.stdout_ok {
                Ok(Target::Stdout)
            } else {
                Err(self.error("`-` (stdout) is not accepted here", "give a file name"))
            };
        }
        let mut path = self.path.to_path_buf();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                match std::fs::canonicalize(&path) {
                    Ok(resolved) => path = resolved,
                    Err(_) => {
                        return Err(self.error(
                            "it is a symbolic link to nothing (dangling)",
                            "remove the link or choose another name",
                        ))
                    }
                }
                std::fs::metadata(&path).map_err(|e| self.error(e, "choose another name"))?
            }
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let folder = folder_of(&path);
                return match std::fs::metadata(folder) {
                    Ok(m) if m.is_dir() => {
                        self.check_folder(folder, &m)?;
                        Ok(Target::File(path, None))
                    }
                    Ok(_) => Err(self.error(
                        format_args!("{} is not a folder", folder.display()),
                        "choose a path inside an existing folder",
                    )),
                    Err(_) => Err(self.error(
                        format_args!("there is no such folder {}", folder.display()),
                        &format!("create it first (mkdir -p {})", folder.display()),
                    )),
                };
            }
            Err(e) => return Err(self.error(e, "choose another name")),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(self.error(
                "it is a directory",
                &format!("give a file name, e.g. {}", self.path.join("out").display()),
            ));
        }
        if kind.is_char_device() || kind.is_fifo() {
            return Ok(Target::Stream(path));
        }
        if !kind.is_file() {
            return Err(self.error(
                "it is a block device or a socket",
                "catopt writes regular files, character devices (/dev/null) and FIFOs only",
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o222 == 0 && !self.force {
            return Err(self.error(
                format_args!("it is write-protected (mode {:04o})", mode & 0o7777),
                "pass --force to replace it anyway, or choose another name",
            ));
        }
        let folder = folder_of(&path);
        let folder_meta =
            std::fs::metadata(folder).map_err(|e| self.error(e, "choose another name"))?;
        self.check_folder(folder, &folder_meta)?;
        Ok(Target::File(path, Some(meta.permissions())))
    }

    fn check_folder(&self, folder: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o222 == 0 && !self.force {
            return Err(self.error(
                format_args!(
                    "its folder {} is write-protected (mode {:04o})",
                    folder.display(),
                    mode & 0o7777
                ),
                "choose another folder, or pass --force",
            ));
        }
        Ok(())
    }

    /// Opens the output for writing: [`OutputWriter::finish`] puts it in place.
    pub fn open(&self) -> Result<OutputWriter, String> {
        let (sink, temporary, target) = match self.target()? {
            Target::Stdout => (Sink::Stdout(std::io::stdout()), None, None),
            Target::Stream(path) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| self.error(e, "check the device or FIFO"))?;
                (Sink::File(file), None, None)
            }
            Target::File(path, permissions) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "output".into());
                let (file, temp) = TempFile::create(folder_of(&path), &format!(".{name}"))
                    .map_err(|e| self.error(e, "choose a folder you can write to"))?;
                (Sink::File(file), Some(temp), Some((path, permissions)))
            }
        };
        Ok(OutputWriter {
            writer: std::io::BufWriter::new(sink),
            temporary,
            target,
            name: format!("{} {}", self.what, self.path.display()),
        })
    }

    /// Writes the whole output with `write`, atomically for a regular file (see the type's
    /// doc). On error nothing is left behind and the message names the output.
    pub fn write_with(
        &self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let mut writer = self.open()?;
        let result = write(writer.writer());
        writer.fail_on(result)?;
        writer.finish()
    }

    /// [`OutputFile::write_with`] of a byte string.
    pub fn write(&self, contents: &[u8]) -> Result<(), String> {
        self.write_with(|w| w.write_all(contents))
    }
}

/// The folder a path is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Where an [`OutputWriter`] writes.
enum Sink {
    File(std::fs::File),
    Stdout(std::io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// An output being written: a temporary file renamed into place by [`OutputWriter::finish`]
/// (removed if the writer is dropped first), or a device, FIFO or stdout written directly.
pub struct OutputWriter {
    writer: std::io::BufWriter<Sink>,
    temporary: Option<TempFile>,
    target: Option<(PathBuf, Option<std::fs::Permissions>)>,
    /// `--output out.json`, for messages.
    name: String,
}

impl OutputWriter {
    /// Where to write the contents.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }

    /// The error message for `e`, naming the output (and removing the temporary file).
    pub fn fail(&mut self, e: impl std::fmt::Display) -> String {
        self.temporary = None;
        format!(
            "cannot write {}: {e}; it was not written (nothing partial is left)\n  \
             help: free some space or choose another place",
            self.name
        )
    }

    /// Turns a write error into the output's message.
    pub fn fail_on<T>(&mut self, result: std::io::Result<T>) -> Result<T, String> {
        result.map_err(|e| self.fail(e))
    }

    /// Flushes the contents and, for a regular file, syncs the temporary file and renames
    /// it over the target (with the target's former permissions).
    pub fn finish(mut self) -> Result<(), String> {
        let flushed = self.writer.flush();
        self.fail_on(flushed)?;
        let Some((path, permissions)) = self.target.take() else {
            return Ok(());
        };
        let result = (|| {
            if let Sink::File(file) = self.writer.get_ref() {
                if let Some(permissions) = permissions {
                    file.set_permissions(permissions)?;
                }
                file.sync_all()?;
            }
            let temporary = self.temporary.as_ref().map(|t| t.path.clone());
            if let Some(temporary) = temporary {
                std::fs::rename(&temporary, &path)?;
            }
            Ok::<(), std::io::Error>(())
        })();
        self.fail_on(result)?;
        if let Some(temporary) = &mut self.temporary {
            temporary.keep = true;
        }
        Ok(())
    }
}

/// A temporary file of a unique name, created with `O_EXCL` (never through an existing file
/// or symlink); removed when dropped unless `keep`.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// Creates `FOLDER/PREFIX.catopt-PID-HOST-TIME-N.tmp`, first removing such files left by
    /// processes of this machine that no longer exist (a `kill -9`).
    fn create(folder: &Path, prefix: &str) -> std::io::Result<(std::fs::File, TempFile)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        remove_stale_temporaries(folder, prefix);
        let pid = std::process::id();
        let host = host_name();
        let mut last_error = None;
        for _ in 0..16 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = folder.join(format!("{prefix}.catopt-{pid}-{host}-{nanos:x}-{n}.tmp"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok((file, TempFile { path, keep: false })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// This machine's name (Linux), so that temporary files of other machines sharing a folder
/// (NFS homes) are never taken for stale ones.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(32)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes `PREFIX.catopt-PID-HOST-*.tmp` files in `folder` left by a process of this machine
/// that no longer exists (no `/proc/PID`: a `kill -9`), unmodified for a minute. Best
/// effort: errors are ignored.
fn remove_stale_temporaries(folder: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let head = format!("{prefix}.catopt-");
    let host = host_name();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&head)) else {
            continue;
        };
        let mut parts = rest.split('-');
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60);
        if rest.ends_with(".tmp")
            && parts.next() == Some(host.as_str())
            && pid != std::process::id()
            && old
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `contents` to `path` atomically (see [`OutputFile`]): for callers without a flag.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    OutputFile {
        path,
        what: "file",
        force: false,
        stdout_ok: false,
    }
    .write(contents)
    .map_err(std::io::Error::other)
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
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("catopt-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let host = host_name();
        // PID 4194304 is above Linux's pid_max: never a live process.
        let dead = dir.join(format!(".out.json.catopt-4194304-{host}-1-0.tmp"));
        let other_host = dir.join(".out.json.catopt-4194304-elsewhere-1-0.tmp");
        let live = dir.join(format!(".out.json.catopt-1-{host}-1-0.tmp"));
        for path in [&dead, &other_host, &live] {
            std::fs::write(path, "x").unwrap();
            let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        write_atomically(&dir.join("out.json"), b"new").unwrap();
        assert!(!dead.exists());
        assert!(other_host.exists() || host.is_empty());
        assert!(live.exists(), "pid 1 is alive");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_cleanly() {
        let path = Path::new("/nonexistent-catopt-dir/x.json");
        assert!(write_atomically(path, b"x").is_err());
    }
}
