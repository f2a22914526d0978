//! The docs cannot rot: every ```opt block in docs/*.md is a complete file that must check,
//! and one with a `solve` block must run (without diverging); every flag of every command
//! appears in docs/cli.md; the digits table of docs/tutorial.md is the one the golden test
//! measured (tests/golden/examples/multitask_digits.accuracy.json).
//!
//! A block is written to a temporary folder beside a link to `examples/data`, so `csv` paths
//! in the docs are relative to `examples/`, like the examples' own.

use std::path::{Path, PathBuf};

mod cli_common;
use cli_common::{catopt, root};

/// The ```opt blocks of a markdown text: (first line number, code).
fn opt_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```opt") => current = Some((number + 2, String::new())),
            Some(_) if trimmed.starts_with("```") => blocks.push(current.take().unwrap()),
            Some((_, code)) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an ```opt block is not closed");
    blocks
}

fn docs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

fn workspace() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A copy, not a symlink: a symlink out of the data root (the .opt file's directory)
    // is refused.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for entry in std::fs::read_dir(root().join("examples/data")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("data").join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn every_opt_block_in_the_docs_checks_and_runs() {
    let dir = workspace();
    let mut count = 0;
    let mut ran = 0;
    for doc in docs() {
        let markdown = std::fs::read_to_string(&doc).unwrap();
        let name = doc.file_stem().unwrap().to_str().unwrap().to_string();
        for (line, code) in opt_blocks(&markdown) {
            count += 1;
            let file = dir.join(format!("{name}_{line}.opt"));
            std::fs::write(&file, &code).unwrap();
            let here = format!("docs/{name}.md, block at line {line}");
            let output = catopt()
                .args(["check", "--plain", file.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{here} does not check:\n{}\n{code}",
                String::from_utf8_lossy(&output.stderr)
            );
            if code.contains("solve ") {
                ran += 1;
                let output = catopt()
                    .args(["run", file.to_str().unwrap(), "--quiet", "--format", "json"])
                    .output()
                    .unwrap();
                assert_eq!(
                    output.status.code(),
                    Some(0),
                    "{here} does not run:\n{}\n{code}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                assert!(json["objective"].is_number(), "{here}: {json}");
            }
        }
    }
    assert!(count >= 8, "only {count} opt blocks in docs/");
    assert!(ran >= 5, "only {ran} blocks run");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The long flags in a command's help.
fn flags(command: &str) -> Vec<String> {
    let output = catopt().args([command, "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut out: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && w != &"--help")
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_command_and_flag_is_in_the_cli_reference() {
    let cli = std::fs::read_to_string(root().join("docs/cli.md")).unwrap();
    for command in ["check", "run", "graph", "explain", "laws"] {
        assert!(
            cli.contains(&format!("## `catopt {command}`")),
            "docs/cli.md has no section for `catopt {command}`"
        );
        let found = flags(command);
        assert!(!found.is_empty(), "{command} --help lists no flags");
        for flag in found {
            assert!(
                cli.contains(&format!("`{flag}")),
                "docs/cli.md does not document `catopt {command} {flag}`"
            );
        }
    }
    // Every command listed by `catopt --help` has a section.
    let output = catopt().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let commands = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help");
    for command in commands {
        assert!(
            cli.contains(&format!("## `catopt {command}`")),
            "docs/cli.md has no section for `catopt {command}`"
        );
    }
}

fn percent(value: &serde_json::Value) -> String {
    format!("{:.1}%", 100.0 * value.as_f64().unwrap())
}

#[test]
fn the_tutorials_digits_table_is_the_measured_one() {
    let tutorial = std::fs::read_to_string(root().join("docs/tutorial.md")).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/examples/multitask_digits.accuracy.json");
    let measured: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for k in 0..10 {
        let row = format!(
            "| is it {k}? | {} | {} | {} |",
            percent(&measured["shared_trunk"]["per_task"][k]),
            percent(&measured["independent"]["per_task"][k]),
            percent(&measured["always_no"][k]),
        );
        assert!(
            tutorial.contains(&row),
            "docs/tutorial.md lacks the row\n{row}"
        );
    }
    let row = format!(
        "| ten-class (largest score) | {} | {} |",
        percent(&measured["shared_trunk"]["ten_class"]),
        percent(&measured["independent"]["ten_class"]),
    );
    assert!(
        tutorial.contains(&row),
        "docs/tutorial.md lacks the row\n{row}"
    );
}

#[test]
fn the_drawings_in_the_docs_are_what_catopt_graph_draws() {
    for name in ["first", "three_quadratics", "hierarchical"] {
        let output = catopt()
            .args(["graph", &format!("examples/{name}.opt")])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let committed = std::fs::read(root().join(format!("docs/images/{name}.dot"))).unwrap();
        assert!(
            output.stdout == committed,
            "docs/images/{name}.dot is stale: regenerate it (and the .svg) with \
             `catopt graph examples/{name}.opt -o docs/images/{name}.dot` (and `-o ....svg`)"
        );
        let svg = std::fs::read_to_string(root().join(format!("docs/images/{name}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "docs/images/{name}.svg");
    }
}

#[test]
fn every_command_is_in_the_cli_command_table() {
    let cli = std::fs::read_to_string(root().join("docs/cli.md")).unwrap();
    for command in ["check", "run", "graph", "explain", "laws"] {
        assert!(
            cli.contains(&format!("| [`catopt {command} FILE")),
            "the command table of docs/cli.md lacks `catopt {command}`"
        );
    }
}

/// Every `*.md` file a source file points users to exists (`docs/language.md`, not
/// `LANGUAGE.md`).
#[test]
fn the_sources_cite_docs_that_exist() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "/_.-".contains(c))) {
            let word = word.trim_end_matches('.');
            if word.ends_with(".md") && !word.starts_with("http") {
                assert!(
                    root().join(word).is_file(),
                    "{} cites {word}, which does not exist",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_tutorial_describes_its_data_and_tools() {
    let tutorial = std::fs::read_to_string(root().join("docs/tutorial.md")).unwrap();
    // The test pixels are already in [0, 1]: the score does not divide them again.
    let csv = std::fs::read_to_string(root().join("examples/data/digits_test.csv")).unwrap();
    let max = csv
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').take(64).map(|c| c.parse::<f64>().unwrap()))
        .fold(f64::MIN, f64::max);
    assert!(
        max <= 1.0,
        "digits_test.csv is not scaled to [0, 1] (max {max})"
    );
    assert!(
        !tutorial.contains("pixels / 16"),
        "the tutorial divides scaled pixels by 16"
    );
    // SVG drawings need Graphviz.
    assert!(
        tutorial.contains("apt-get install graphviz"),
        "the tutorial does not say to install Graphviz"
    );
}
