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

fn laws(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .arg("laws")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn adam_is_coordinatewise_its_runtime_is_central_and_its_per_box_difference_is_reported() {
    let file = example("three_quadratics.opt");
    let (code, stdout, stderr) = laws(&[
        &file,
        "--cases",
        "3",
        "--steps",
        "6",
        "--method",
        "adam(lr = 0.01)",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "method adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8) (class coordinatewise)"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PASS") && l.contains("runtime = central")),
        "{stdout}"
    );
    let diff = stdout
        .lines()
        .find(|l| l.starts_with("DIFF") && l.contains("per-box variant vs composite"))
        .unwrap_or_else(|| panic!("no DIFF line:\n{stdout}"));
    // A measured difference that is not zero.
    assert!(!diff.contains("relative difference 0.000e0"), "{diff}");
    assert!(stdout.contains("max abs difference"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn momentum_per_box_is_a_law_and_lr_still_overrides() {
    let file = example("first.opt");
    let (code, stdout, stderr) = laws(&[
        &file,
        "--cases",
        "3",
        "--steps",
        "6",
        "--method",
        "momentum(beta = 0.5)",
        "--lr",
        "0.05",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("method momentum(lr = 0.05, beta = 0.5) (class compositional)"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PASS") && l.contains("per-box updates = composite update")),
        "{stdout}"
    );
    // --lr alone keeps the solve block's method.
    let (code, stdout, _) = laws(&[&file, "--cases", "3", "--steps", "3", "--lr", "0.02"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("method gd(lr = 0.02) (class compositional)"),
        "{stdout}"
    );
}

#[test]
fn a_bad_method_exits_2_with_a_message() {
    let file = example("first.opt");
    let (code, stdout, stderr) = laws(&[&file, "--method", "adma(lr = 0.1)"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("unknown method `adma`"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
