//! `catopt laws` on every shipped example: every law passes, and the report names them.

use std::process::Command;

#[test]
fn every_law_passes_on_every_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut files: Vec<String> = std::fs::read_dir(format!("{root}/examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "opt"))
        .map(|p| p.display().to_string())
        .collect();
    files.push(format!("{root}/bench/w1.opt"));
    files.sort();
    assert!(files.len() >= 4);
    for file in files {
        let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
            .args(["laws", &file, "--cases", "5", "--steps", "5"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{file}:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for law in [
            "GD naturality",
            "distributed = central",
            "Euler naturality",
            "runtime = central",
        ] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with("PASS") && l.contains(law)),
                "{file}: no PASS line for {law}:\n{stdout}"
            );
        }
        assert!(!stdout.contains("FAIL"), "{file}:\n{stdout}");
    }
}

#[test]
fn a_bad_file_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["laws", "no-such-file.opt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
