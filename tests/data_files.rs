//! `csv(...)` data files from the command line: the data root confines paths (no absolute
//! paths, no `..`, no symlinks leading out) unless `--allow-any-path`; only regular files
//! are read (devices and FIFOs are refused without blocking); `--max-data-bytes` caps a
//! file; messages never show a file's contents beyond one escaped cell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "SECRET=hunter2";

/// A fresh directory `outer/` holding `secret.csv` (a fake secret line) and `outer/root/`.
fn layout(name: &str) -> (PathBuf, PathBuf) {
    let outer = std::env::temp_dir().join(format!("catopt-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outer);
    let root = outer.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(outer.join("secret.csv"), format!("root:x:0\n{SECRET}\n")).unwrap();
    std::fs::write(outer.join("numbers.csv"), "1,2\n3,4\n").unwrap();
    (outer, root)
}

/// Writes `root/p.opt` holding one data item and returns its path.
fn opt_file(root: &Path, data: &str) -> PathBuf {
    let file = root.join("p.opt");
    std::fs::write(&file, format!("{data}\n")).unwrap();
    file
}

/// Runs catopt, killing it (and failing) when it takes more than 20 s.
fn catopt(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("catopt {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.code().unwrap_or(-1), text)
}

fn check(file: &Path, flags: &[&str]) -> (i32, String) {
    let mut args = vec!["check", "--plain", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    catopt(&args)
}

fn assert_refused(code: i32, out: &str, error: &str) {
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(error), "expected {error}:\n{out}");
    assert!(!out.contains("hunter2"), "a secret leaked:\n{out}");
}

#[test]
fn an_absolute_path_outside_the_root_is_refused() {
    let (outer, root) = layout("absolute");
    let secret = outer.join("secret.csv");
    let file = opt_file(
        &root,
        &format!("data S = csv(\"{}\", header = true);", secret.display()),
    );
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0311]");
    assert!(out.contains("--allow-any-path"), "{out}");
    // Even /etc/passwd, which exists everywhere, is refused before being opened.
    let file = opt_file(&root, "data S = csv(\"/etc/passwd\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0311]");
    assert!(!out.contains("root:"), "{out}");
}

#[test]
fn a_parent_path_is_refused() {
    let (_outer, root) = layout("parent");
    let file = opt_file(&root, "data S = csv(\"../secret.csv\", header = true);");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0311]");
    let file = opt_file(&root, "data S = csv(\"sub/../../secret.csv\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0311]");
}

#[cfg(unix)]
#[test]
fn a_symlink_leading_out_of_the_root_is_refused() {
    let (outer, root) = layout("symlink");
    std::os::unix::fs::symlink(outer.join("secret.csv"), root.join("link.csv")).unwrap();
    std::os::unix::fs::symlink(&outer, root.join("up")).unwrap();
    for path in ["link.csv", "up/secret.csv"] {
        let file = opt_file(&root, &format!("data S = csv(\"{path}\", header = true);"));
        let (code, out) = check(&file, &[]);
        assert_refused(code, &out, "error[E0311]");
    }
    // A missing file behind such a link is refused the same way: whether files exist
    // outside the root is not told.
    let file = opt_file(&root, "data S = csv(\"up/no_such_file.csv\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0311]");
    assert!(!out.contains("E0301"), "{out}");
    // A symlink that stays inside the root is fine.
    std::fs::write(root.join("real.csv"), "1,2\n").unwrap();
    std::os::unix::fs::symlink(root.join("real.csv"), root.join("inside.csv")).unwrap();
    let file = opt_file(&root, "data S = csv(\"inside.csv\");");
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 0, "{out}");
}

#[cfg(unix)]
#[test]
fn allow_any_path_accepts_absolute_parent_and_symlinked_paths() {
    let (outer, root) = layout("allow");
    std::os::unix::fs::symlink(outer.join("numbers.csv"), root.join("link.csv")).unwrap();
    let absolute = outer.join("numbers.csv").display().to_string();
    for path in [absolute.as_str(), "../numbers.csv", "link.csv"] {
        let file = opt_file(&root, &format!("data S = csv(\"{path}\");"));
        let (code, out) = check(&file, &[]);
        assert_eq!(code, 2, "{path} accepted without --allow-any-path:\n{out}");
        let (code, out) = check(&file, &["--allow-any-path"]);
        assert_eq!(code, 0, "{path}:\n{out}");
        assert!(out.contains("data S: real[2, 2]"), "{out}");
    }
}

#[test]
fn the_data_root_flag_moves_the_root() {
    let (outer, root) = layout("root-flag");
    let file = opt_file(&root, "data S = csv(\"numbers.csv\");");
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 2, "{out}");
    let outer_arg = outer.display().to_string();
    let (code, out) = check(&file, &["--data-root", &outer_arg]);
    assert_eq!(code, 0, "{out}");
    // Every command that checks a file takes the flags.
    for command in ["run", "laws", "graph", "explain"] {
        let (_, out) = catopt(&[command, "--help"]);
        for flag in ["--data-root", "--allow-any-path", "--max-data-bytes"] {
            assert!(out.contains(flag), "catopt {command} --help lacks {flag}");
        }
    }
    let file = root.join("q.opt");
    std::fs::write(
        &file,
        "data S = csv(\"numbers.csv\");\n\
         objective f(x: real[2]; A: real[2, 2]) { minimize sum((A @ x)^2); }\n\
         composite c() { f(x; S); }\n",
    )
    .unwrap();
    let (code, out) = catopt(&["explain", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("E0301"), "{out}");
    let (code, out) = catopt(&["explain", file.to_str().unwrap(), "--data-root", &outer_arg]);
    assert_eq!(code, 0, "{out}");
}

#[cfg(unix)]
#[test]
fn devices_are_refused_without_reading() {
    let (_outer, root) = layout("devices");
    for device in ["/dev/zero", "/dev/urandom"] {
        let file = opt_file(&root, &format!("data S = csv(\"{device}\");"));
        let start = Instant::now();
        let (code, out) = check(&file, &["--allow-any-path"]);
        assert_refused(code, &out, "error[E0312]");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    let file = opt_file(&root, "data S = csv(\".\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0312]");
}

#[cfg(unix)]
#[test]
fn a_fifo_without_a_writer_is_refused_without_blocking() {
    let (_outer, root) = layout("fifo");
    let fifo = root.join("pipe.csv");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let file = opt_file(&root, "data S = csv(\"pipe.csv\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0312]");
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_reading() {
    let (_outer, root) = layout("size");
    // Not numbers: had the file been read, E0304 would name a cell.
    std::fs::write(root.join("big.csv"), "hunter2,".repeat(100)).unwrap();
    let file = opt_file(&root, "data S = csv(\"big.csv\");");
    let (code, out) = check(&file, &["--max-data-bytes", "100"]);
    assert_refused(code, &out, "error[E0313]");
    assert!(!out.contains("E0304"), "{out}");
    assert!(out.contains("--max-data-bytes"), "{out}");
    let (code, out) = check(&file, &["--max-data-bytes", "800"]);
    assert_eq!(code, 2);
    assert!(out.contains("E0304"), "{out}");
    // The largest limit reads the whole file.
    std::fs::write(root.join("big.csv"), "1,2\n").unwrap();
    let (code, out) = check(&file, &["--max-data-bytes", &u64::MAX.to_string()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_bad_cell_is_shown_escaped_and_truncated() {
    let (_outer, root) = layout("escape");
    std::fs::write(root.join("bad.csv"), "1,2\n3,\x1b[31mred\x07\n").unwrap();
    let file = opt_file(&root, "data S = csv(\"bad.csv\");");
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("E0304"), "{out}");
    assert!(
        !out.contains('\x1b') && !out.contains('\x07'),
        "raw control bytes:\n{out:?}"
    );
    assert!(out.contains(r"\u{1b}[31mred\u{7}"), "{out}");
    // Control characters in the path (written in the .opt file) are escaped too.
    let file = opt_file(&root, "data S = csv(\"a\x1b[31m.csv\");");
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains('\x1b'), "raw control bytes:\n{out:?}");
    assert!(out.contains(r"a\u{1b}[31m.csv"), "{out}");
    let file = opt_file(&root, "data S = csv(\"bad.csv\");");
    let long = format!("1,{}\n", "z".repeat(100));
    std::fs::write(root.join("bad.csv"), long).unwrap();
    let (_, out) = check(&file, &[]);
    assert!(out.contains(&format!("`{}...`", "z".repeat(40))), "{out}");
    assert!(!out.contains(&"z".repeat(41)), "{out}");
}

#[test]
fn a_file_that_is_not_utf8_says_nothing_of_its_contents() {
    let (_outer, root) = layout("utf8");
    std::fs::write(root.join("bin.csv"), b"1,2\nhunter2\xff\xfe,3\n").unwrap();
    let file = opt_file(&root, "data S = csv(\"bin.csv\");");
    let (code, out) = check(&file, &[]);
    assert_refused(code, &out, "error[E0301]");
    assert!(out.contains("not UTF-8 at byte 11"), "{out}");
}

#[test]
fn a_byte_order_mark_is_accepted_in_csv_and_opt_files() {
    let (_outer, root) = layout("bom");
    std::fs::write(root.join("bom.csv"), "\u{feff}1,2\n3,4\n").unwrap();
    let file = root.join("p.opt");
    std::fs::write(&file, "\u{feff}data S = csv(\"bom.csv\");\n").unwrap();
    let (code, out) = check(&file, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("data S: real[2, 2]"), "{out}");
    // Spans stay right after the mark: the same error at the same line and column.
    std::fs::write(&file, "data S = [1, 2; 3];\n").unwrap();
    let (_, plain) = check(&file, &[]);
    std::fs::write(&file, "\u{feff}data S = [1, 2; 3];\n").unwrap();
    let (_, marked) = check(&file, &[]);
    assert!(plain.contains("p.opt:1:17: error[E0306]"), "{plain}");
    assert_eq!(plain, marked);
}

#[cfg(target_os = "linux")]
#[test]
fn reading_stops_at_the_size_limit_when_the_metadata_says_less() {
    // /proc files are regular files of size 0 whatever they hold.
    let (_outer, root) = layout("proc");
    let file = opt_file(&root, "data S = csv(\"/proc/self/environ\");");
    let mut command = Command::new(env!("CARGO_BIN_EXE_catopt"));
    command
        .args(["check", "--plain", file.to_str().unwrap()])
        .args(["--allow-any-path", "--max-data-bytes", "16"])
        .env("CATOPT_TEST_SECRET", "hunter2");
    let output = command.output().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_refused(output.status.code().unwrap_or(-1), &out, "error[E0313]");
    assert!(out.contains("more bytes than its size says"), "{out}");
}
