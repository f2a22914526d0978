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

/// The log-likelihood of issue 13: its maximum is -0.8525, at m = 2.
const MAXIMIZE: &str = "
objective loglik(m: real) { maximize -(m - 2)^2 - 0.8525; }
composite fit() { loglik(m); }
solve fit { method = gd(lr = 0.1); steps = 200; }
";

#[test]
fn maximize_reports_the_objective_as_written() {
    let dir = temp_dir("maximize");
    let file = dir.join("max.opt");
    std::fs::write(&file, MAXIMIZE).unwrap();
    let (code, text, stderr) = run(&file, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("objective      -8.525000000000e-1 (maximised)\n"),
        "{text}"
    );
    let trace = dir.join("t.csv");
    let json = run_json(
        &file,
        &["--trace", trace.to_str().unwrap(), "--trace-boxes"],
    );
    assert_eq!(json["goal"], "maximize");
    let objective = json["objective"].as_f64().unwrap();
    assert!((objective + 0.8525).abs() < 1e-12, "{json}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let last: Vec<f64> = trace
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|f| f.parse().unwrap())
        .collect();
    assert!((last[1] + 0.8525).abs() < 1e-12, "{trace}");
    assert!((last[5] + 0.8525).abs() < 1e-12, "the box column: {trace}");
    // The first iterate, m = 0: -4.8525.
    assert!(
        trace.lines().nth(1).unwrap().starts_with("0,-4.8525e0,"),
        "{trace}"
    );
    // A minimisation says nothing more, and reports `goal`.
    let min = dir.join("min.opt");
    std::fs::write(
        &min,
        MAXIMIZE.replace(
            "maximize -(m - 2)^2 - 0.8525",
            "minimize (m - 2)^2 + 0.8525",
        ),
    )
    .unwrap();
    let (_, text, _) = run(&min, &[]);
    assert!(
        text.contains("objective      8.525000000000e-1\n"),
        "{text}"
    );
    assert_eq!(run_json(&min, &[])["goal"], "minimize");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mixed_composite_says_what_it_minimised() {
    let dir = temp_dir("mixed");
    let file = dir.join("mixed.opt");
    std::fs::write(
        &file,
        "objective up(a: real) { maximize -(a - 1)^2 + 3; }
         objective down(a: real) { minimize (a - 2)^2; }
         composite c() { up(x); down(x); }
         solve c { method = gd(lr = 0.1); steps = 100; }",
    )
    .unwrap();
    let (code, text, stderr) = run(&file, &[]);
    assert_eq!(code, 0, "{stderr}");
    // At x = 1.5: (x - 1)^2 - 3 + (x - 2)^2 = -2.5, the minimised sum.
    assert!(
        text.contains("objective      -2.500000000000e0 (minimised: the maximize boxes' objectives enter negated)"),
        "{text}"
    );
    assert_eq!(run_json(&file, &[])["goal"], "mixed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Private variables, a nested composite's inner junction and a sparse family.
const STATE: &str = "
objective f(a: real) { var m: real = 1; minimize (a - m)^2 + m^2; }
objective g(a: real, b: real) { var w: real[2] = 0.5; minimize (a - b - 1)^2 + sumsq(w - a); }
composite inner(p) { g(p, q); f(q); }
composite c() {
  for i in 0..3 { f(x[2 * i + 1]); }
  nest: inner(x[1]);
}
solve c { method = gd(lr = 0.05); steps = 7; }
";

#[test]
fn output_without_all_saves_every_variable_and_init_restores_them() {
    let dir = temp_dir("output-all");
    let file = dir.join("state.opt");
    std::fs::write(&file, STATE).unwrap();
    let out = dir.join("values.json");
    let out_arg = out.to_str().unwrap();
    let first = run_json(&file, &["--all", "--output", out_arg]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // Without --all, --output still holds the private and inner variables...
    let (code, _, stderr) = run(&file, &["--output", out_arg]);
    assert_eq!(code, 0, "{stderr}");
    let saved_plain: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(saved_plain, saved);
    for name in ["f[0].m", "nest.q", "nest.g.w", "nest.f.m"] {
        assert!(
            saved["values"][name].is_number() || saved["values"][name].is_array(),
            "{name}: {saved}"
        );
    }
    assert_eq!(saved["values"], first["values"]);
    // ... while stdout keeps to the composite's own junctions.
    let plain = run_json(&file, &[]);
    assert!(plain["values"].get("f[0].m").is_none(), "{plain}");
    // Starting from the file with 0 steps reports the same values, bit for bit, and the
    // same objective.
    let again = run_json(&file, &["--all", "--init", out_arg, "--steps", "0"]);
    assert_eq!(again["values"], first["values"]);
    assert_eq!(again["objective"], first["objective"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sparse_family_prints_each_members_index() {
    let dir = temp_dir("sparse");
    let file = dir.join("sparse.opt");
    std::fs::write(
        &file,
        "objective f(a: real; k: real) { minimize (a - k)^2; }
         composite c() { f(x[1]; 0); f(x[3]; 1); f(x[5]; 2); for i in 0..3 { g: f(y[i]; 5); } }
         solve c { method = gd(lr = 0.5); steps = 1; }",
    )
    .unwrap();
    let (code, text, stderr) = run(&file, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("  x[1] = 0, x[3] = 1, x[5] = 2 (3 members)\n"),
        "{text}"
    );
    // A dense family keeps its short form.
    assert!(
        text.contains("  y[0..=2] = [5, 5, 5] (3 members)\n"),
        "{text}"
    );
    // JSON keys the sparse family by index.
    let json = run_json(&file, &[]);
    assert_eq!(
        json["values"]["x"],
        serde_json::json!({"1": 0.0, "3": 1.0, "5": 2.0})
    );
    let _ = std::fs::remove_dir_all(&dir);
}
