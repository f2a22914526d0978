//! Data-driven golden tests: every `tests/check/NAME.opt` is checked and the result
//! (the summary for a good file, the plain diagnostics for a bad one, warnings included)
//! is compared with `tests/check/NAME.expected`. Run with `CATOPT_BLESS=1` to rewrite the
//! expectations after reviewing the differences.

use catopt::check::{check_file, summary};
use std::path::{Path, PathBuf};

fn render(path: &Path) -> String {
    let outcome = check_file(path);
    let mut out = outcome.report.to_plain_string();
    match &outcome.program {
        Some(program) => out.push_str(&summary(program)),
        None => out.push_str("exit: 2\n"),
    }
    out
}

#[test]
fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check");
    let bless = std::env::var_os("CATOPT_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/check exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "opt"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "golden files are missing");
    let mut failures = Vec::new();
    // Render paths relative to the crate so the expectations do not depend on the checkout.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("crate root");
    for file in files {
        let relative = file
            .strip_prefix(root)
            .expect("inside the crate")
            .to_path_buf();
        let actual = render(&relative);
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {}\n=== expected\n{expected}=== actual\n{actual}",
                relative.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches (CATOPT_BLESS=1 rewrites):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
