//! What `catopt run` reports (issue 13): `rel_tolerance = 0` turns the relative rule off,
//! `maximize` reports the objective as written, `--output` saves every variable so that
//! `--init` restarts faithfully, and sparse junction families show each member's index.

use serde_json::Value;

mod cli_common;
use cli_common::{catopt, temp_dir};

/// Runs `catopt run FILE ARGS --quiet`; returns (exit code, stdout, stderr).
fn run(file: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = catopt()
        .arg("run")
        .arg(file)
        .args(args)
        .arg("--quiet")
        .output()
        .expect("catopt runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn run_json(file: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, stdout, stderr) = run(file, &all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A plateau to the last bit: x = 1e8 moves by 2e-12 per step, less than half its ulp,
/// so every objective is bitwise equal to the one before while the gradient is 2e8.
const PLATEAU: &str = "
objective f(x: real) { minimize x^2; }
composite c() where (x: real = 1e8) { f(x); }
solve c { method = gd(lr = 1e-20); steps = 40; rel_tolerance = 0; }
";

#[test]
fn rel_tolerance_zero_turns_the_relative_rule_off() {
    let dir = temp_dir("rel-zero");
    let file = dir.join("plateau.opt");
    std::fs::write(&file, PLATEAU).unwrap();
    // In the solve block.
    let json = run_json(&file, &[]);
    assert_eq!(json["stop_reason"], "max_steps", "{json}");
    assert_eq!(json["steps"], 40);
    // On the command line, over a block that sets the rule.
    let with_rule = dir.join("rule.opt");
    std::fs::write(
        &with_rule,
        PLATEAU.replace("rel_tolerance = 0", "rel_tolerance = 1e-9"),
    )
    .unwrap();
    let json = run_json(&with_rule, &[]);
    assert_eq!(json["stop_reason"], "objective_tolerance", "{json}");
    assert_eq!(json["steps"], 1, "{json}");
    let json = run_json(&with_rule, &["--rel-tolerance", "0"]);
    assert_eq!(json["stop_reason"], "max_steps", "{json}");
    assert_eq!(json["steps"], 40);
    let _ = std::fs::remove_dir_all(&dir);
}
