//! The docs cannot rot: every ```opt block in docs/*.md is a complete file that must check,
//! and one with a `solve` block must run (without diverging); every flag of every command
//! appears in docs/cli.md; the digits table of docs/tutorial.md is the one the golden test
//! measured (tests/golden/examples/multitask_digits.accuracy.json); and every ```text or
//! ```json block in docs/*.md and README.md carries a marker comment on the line before
//! it: `<!-- output: catopt ARGS -->` (the block is what the command prints, `...` standing
//! for lines left out), `<!-- output json: catopt ARGS -->` (the same JSON, times aside),
//! or `<!-- not output: WHY -->` / `<!-- output not checked: WHY -->`. An ```opt block
//! after `<!-- file: NAME -->` is saved as NAME for the commands of the markers below it.
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

/// A fresh folder for one test (`name`) with a copy of `examples/data`.
fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-docs-{name}-{}", std::process::id()));
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
    let dir = workspace("blocks");
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
    for command in ["check", "run", "graph", "explain", "laws", "eval"] {
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
    for command in ["check", "run", "graph", "explain", "laws", "eval"] {
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

/// What a marker comment says about the fenced block after it.
#[derive(Debug)]
enum Marker {
    /// `<!-- output: catopt ARGS -->`: the block is (a part of) what the command prints.
    Output(String),
    /// `<!-- output json: catopt ARGS -->`: the block is the command's JSON, up to times.
    Json(String),
    /// `<!-- not output: ... -->` (a synopsis, a host file) or `<!-- output not checked:
    /// ... -->` (with the reason).
    Unchecked,
    /// `<!-- file: NAME -->`: the ```opt block after it is the file NAME of the example.
    File(String),
}

/// A fenced block of a markdown text: its first line number, language, text, and the marker
/// comment on the line before its opening fence, if any.
struct Fenced {
    line: usize,
    language: String,
    text: String,
    marker: Option<Marker>,
}

fn marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let command = |rest: &str| {
        rest.trim()
            .strip_prefix("catopt ")
            .unwrap_or_else(|| panic!("a marker command starts with `catopt `: {line}"))
            .to_string()
    };
    if let Some(rest) = inner.strip_prefix("output json:") {
        Some(Marker::Json(command(rest)))
    } else if let Some(rest) = inner.strip_prefix("output:") {
        Some(Marker::Output(command(rest)))
    } else if let Some(rest) = inner.strip_prefix("file:") {
        Some(Marker::File(rest.trim().to_string()))
    } else if inner.starts_with("not output:") || inner.starts_with("output not checked:") {
        Some(Marker::Unchecked)
    } else {
        None
    }
}

fn fenced_blocks(markdown: &str) -> Vec<Fenced> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(language) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        blocks.push(Fenced {
            line: start + 1,
            language: language.trim().to_string(),
            text,
            marker: start.checked_sub(1).and_then(|p| marker(lines[p])),
        });
        i += 1;
    }
    blocks
}

/// The same line with a thread count (`backend threads (2 threads)`, which depends on
/// the machine) written as N.
fn without_thread_count(line: &str) -> String {
    match line.find("backend threads (") {
        Some(at) => {
            let rest = &line[at + "backend threads (".len()..];
            let end = rest.find(')').unwrap_or(rest.len());
            format!("{}backend threads (N threads{}", &line[..at], &rest[end..])
        }
        None => line.to_string(),
    }
}

/// Whether `shown` (a doc block's lines, where `...` stands for any number of lines) is a
/// run of consecutive lines of `printed`.
fn shows(shown: &[String], printed: &[String]) -> bool {
    fn from(shown: &[String], printed: &[String]) -> bool {
        match shown.split_first() {
            None => true,
            Some((first, rest)) if first.trim() == "..." => {
                (0..=printed.len()).any(|skip| from(rest, &printed[skip..]))
            }
            Some((first, rest)) => printed.first() == Some(first) && from(rest, &printed[1..]),
        }
    }
    (0..printed.len()).any(|start| from(shown, &printed[start..]))
}

/// Keys of `catopt run --format json` that vary from run to run or machine to machine.
const VOLATILE_KEYS: [&str; 5] = [
    "seconds",
    "compile_seconds",
    "steps_per_second",
    "threads",
    "peak_memory_bytes",
];

/// Every output block in the docs is marked with the command that prints it, and is what
/// that command prints (up to times and the machine's thread count, and `...` for lines
/// left out), so the docs cannot drift from the tool. A ```text or ```json block without a
/// marker fails, so new examples are covered too.
#[test]
fn every_output_shown_in_the_docs_is_what_catopt_prints() {
    let dir = workspace("outputs");
    let mut files = docs();
    files.push(root().join("README.md"));
    let mut checked = 0;
    for doc in files {
        let markdown = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        let mut saved: Vec<String> = Vec::new();
        for block in fenced_blocks(&markdown) {
            let here = format!("{name}, block at line {}", block.line);
            let command = match (&block.marker, block.language.as_str()) {
                (Some(Marker::File(file)), "opt") => {
                    std::fs::write(dir.join(file), &block.text).unwrap();
                    saved.push(file.clone());
                    continue;
                }
                (Some(Marker::Unchecked), _) => continue,
                (Some(Marker::Output(command)), "text") | (Some(Marker::Json(command)), "json") => {
                    command.clone()
                }
                (_, "text" | "json") => panic!(
                    "{here}: an output block needs a marker on the line before it: \
                     `<!-- output: catopt ARGS -->`, `<!-- output json: catopt ARGS -->`, \
                     `<!-- not output: WHY -->` or `<!-- output not checked: WHY -->`"
                ),
                (marker, _) => {
                    assert!(
                        marker.is_none(),
                        "{here}: a marker before a ```{} block",
                        block.language
                    );
                    continue;
                }
            };
            checked += 1;
            let args: Vec<&str> = command.split_whitespace().collect();
            // A file saved from the doc is run where it was saved; the repository's files
            // from the repository root.
            let cwd = if args.iter().any(|a| saved.iter().any(|s| s == a)) {
                dir.clone()
            } else {
                root()
            };
            let output = catopt().args(&args).current_dir(&cwd).output().unwrap();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{here}: `catopt {command}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let printed = String::from_utf8_lossy(&output.stdout).into_owned();
            if let Some(Marker::Json(_)) = block.marker {
                let mut shown: serde_json::Value = serde_json::from_str(&block.text)
                    .unwrap_or_else(|e| panic!("{here} is not JSON: {e}"));
                let mut got: serde_json::Value = serde_json::from_str(&printed).unwrap();
                for key in VOLATILE_KEYS {
                    for object in [&mut shown, &mut got] {
                        if let Some(value) = object.get_mut(key) {
                            *value = serde_json::Value::Null;
                        }
                    }
                }
                assert_eq!(
                    shown, got,
                    "{here} differs from `catopt {command}` (times and threads aside):\n{printed}"
                );
            } else {
                let shown: Vec<String> = block.text.lines().map(without_thread_count).collect();
                let printed_lines: Vec<String> =
                    printed.lines().map(without_thread_count).collect();
                assert!(
                    shows(&shown, &printed_lines),
                    "{here} is not what `catopt {command}` prints (`...` stands for lines left \
                     out):\n--- the doc shows\n{}--- catopt prints\n{printed}",
                    block.text
                );
            }
        }
    }
    assert!(checked >= 4, "only {checked} output blocks are checked");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Numbers quoted in the tutorial's prose are those of the golden runs, which
/// tests/examples_golden.rs reproduces with the tool.
#[test]
fn the_tutorials_quoted_results_are_the_golden_runs() {
    let tutorial = std::fs::read_to_string(root().join("docs/tutorial.md")).unwrap();
    let golden = |name: &str| -> serde_json::Value {
        let path = root().join(format!("tests/golden/examples/{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let least_squares = golden("least_squares");
    let quoted = format!(
        "stops after {} steps with objective {:.7}",
        least_squares["steps"],
        least_squares["objective"].as_f64().unwrap()
    );
    assert!(
        tutorial.contains(&quoted),
        "docs/tutorial.md lacks `{quoted}`"
    );
    let accuracy = golden("multitask_digits.accuracy");
    let quoted = format!(
        "{:.4} shared, {:.4} independent",
        accuracy["shared_trunk"]["objective"].as_f64().unwrap(),
        accuracy["independent"]["objective"].as_f64().unwrap()
    );
    assert!(
        tutorial.contains(&quoted),
        "docs/tutorial.md lacks `{quoted}`"
    );
}

#[test]
fn the_doc_output_matcher_skips_only_where_told() {
    let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
    let printed = lines("a\nb\nc\nd");
    assert!(shows(&lines("b\nc"), &printed));
    assert!(shows(&lines("a\n...\nd"), &printed));
    assert!(shows(&lines("a\n...\nb\nc\nd"), &printed));
    assert!(!shows(&lines("a\nc"), &printed));
    assert!(!shows(&lines("a\n...\nb\nd"), &printed));
    assert_eq!(
        without_thread_count("method gd(lr = 0.1), backend threads (1 thread)"),
        "method gd(lr = 0.1), backend threads (N threads)"
    );
}
