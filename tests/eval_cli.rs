//! `catopt eval`: a small problem is run, its values saved, its report evaluated, and every
//! number compared with the same quantity computed here from the saved values; and the
//! errors of `eval` (a variable the values lack, a wrong shape, a file too large, a
//! composite without a report) are coded and located.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod cli_common;
use cli_common::{catopt, temp_dir};

const PROBLEM: &str = r#"
data X = [1, 0; 0, 1; 1, 1; 2, 1];
data y = [1, 2, 3, 4];
data y2 = [2, 3, 4, 5];
data Xt = [1, 2; 2, 0; 0.5, 0.5; 3, 1; -1, 2];
data yt = [5, 2, 1.5, 5, 3];
data lt = [1, 0, 0, 1, 1];

objective fit(w: real[2]; X: real[4, 2], y: real[4]) {
    var c: real;
    minimize 0.5 * sumsq(X @ w + c - y) + 0.1 * c^2;
}

composite c(w) {
    fit(w; X, y);
    fit(w; X, y2);
}

solve c {
    method = gd(lr = 0.05);
    steps = 200;
}

report c {
    let pred[k] = Xt @ w + fit[k].c for k in 0..2;
    mse[k] = mean((pred[k] - yt) ^ 2) for k in 0..2;
    hits = mean((pred[0] > 3) == lt);
    pick = mean(argmax(columns(pred)) == lt);
    wnorm = sqrt(sumsq(w));
    corner = (Xt' @ Xt)[0, 1];
    shifted = mean(softplus(pred[1]) - max(pred[0], 2));
}
"#;

fn write_problem(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("problem.opt");
    std::fs::write(&file, text).unwrap();
    file
}

/// Runs `catopt run FILE --output OUT EXTRA...`.
fn run_and_save(file: &Path, out: &Path, extra: &[&str]) {
    let output = catopt()
        .arg("run")
        .arg(file)
        .args(["--quiet", "--output"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `catopt eval FILE --values VALUES EXTRA...`: (exit code, stdout, stderr).
fn eval(file: &Path, values: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let output = catopt()
        .arg("eval")
        .arg(file)
        .arg("--values")
        .arg(values)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not numbers: {other}"),
    }
}

#[test]
fn eval_computes_what_the_saved_values_give() {
    let dir = temp_dir("eval-numbers");
    let file = write_problem(&dir, PROBLEM);
    let values = dir.join("values.json");
    run_and_save(&file, &values, &[]);
    let (code, stdout, stderr) = eval(&file, &values, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["composite"], "c");
    let report = &report["report"];

    // The same quantities, computed here from the saved values.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&values).unwrap()).unwrap();
    let w = numbers(&saved["values"]["w"]);
    let c = [
        saved["values"]["fit[0].c"].as_f64().unwrap(),
        saved["values"]["fit[1].c"].as_f64().unwrap(),
    ];
    let xt = [[1.0, 2.0], [2.0, 0.0], [0.5, 0.5], [3.0, 1.0], [-1.0, 2.0]];
    let yt = [5.0, 2.0, 1.5, 5.0, 3.0];
    let lt = [1.0, 0.0, 0.0, 1.0, 1.0];
    let pred: Vec<Vec<f64>> = (0..2)
        .map(|k| {
            xt.iter()
                .map(|r| r[0] * w[0] + r[1] * w[1] + c[k])
                .collect()
        })
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let close = |name: &str, actual: f64, expected: f64| {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{name}: eval gives {actual}, expected {expected}"
        );
    };
    let mse = numbers(&report["mse"]);
    assert_eq!(mse.len(), 2);
    for k in 0..2 {
        let squares: Vec<f64> = pred[k]
            .iter()
            .zip(&yt)
            .map(|(p, y)| (p - y).powi(2))
            .collect();
        close(&format!("mse[{k}]"), mse[k], mean(&squares));
    }
    let hits: Vec<f64> = pred[0]
        .iter()
        .zip(&lt)
        .map(|(p, l)| f64::from(u8::from((*p > 3.0) == (*l == 1.0))))
        .collect();
    close("hits", report["hits"].as_f64().unwrap(), mean(&hits));
    let pick: Vec<f64> = (0..5)
        .map(|i| {
            let best = if pred[1][i] > pred[0][i] { 1.0 } else { 0.0 };
            f64::from(u8::from(best == lt[i]))
        })
        .collect();
    close("pick", report["pick"].as_f64().unwrap(), mean(&pick));
    close(
        "wnorm",
        report["wnorm"].as_f64().unwrap(),
        (w[0] * w[0] + w[1] * w[1]).sqrt(),
    );
    let corner: f64 = xt.iter().map(|r| r[0] * r[1]).sum();
    close("corner", report["corner"].as_f64().unwrap(), corner);
    let shifted: Vec<f64> = (0..5)
        .map(|i| (1.0 + pred[1][i].exp()).ln() - pred[0][i].max(2.0))
        .collect();
    close(
        "shifted",
        report["shifted"].as_f64().unwrap(),
        mean(&shifted),
    );
    // The lets are not printed.
    assert!(report.get("pred").is_none());

    // The text table lists the printed lines in order.
    let (code, text, _) = eval(&file, &values, &[]);
    assert_eq!(code, Some(0));
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["mse[0]", "mse[1]", "hits", "pick", "wnorm", "corner", "shifted"]
    );
}

#[test]
fn a_private_variable_missing_from_the_values_is_located() {
    let dir = temp_dir("eval-missing");
    let file = write_problem(&dir, PROBLEM);
    let values = dir.join("values.json");
    // `--output` saves every variable; a file written by hand may lack some.
    std::fs::write(&values, r#"{"values": {"w": [1, 2]}}"#).unwrap();
    let (code, stdout, stderr) = eval(&file, &values, &[]);
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("error[E0911]") && stderr.contains("has no `fit[0].c`"),
        "{stderr}"
    );
    // Located at the first use, `fit[k].c` in the `let pred[k]` line.
    let line = PROBLEM
        .lines()
        .position(|l| l.contains("let pred[k]"))
        .unwrap()
        + 1;
    let column = PROBLEM
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("fit[k].c")
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("problem.opt:{line}:{column}: error[E0911]")),
        "not located: {stderr}"
    );
    assert!(stderr.contains("catopt run --output"), "no hint: {stderr}");
}

#[test]
fn a_values_file_of_another_shape_or_size_is_refused() {
    let dir = temp_dir("eval-shape");
    let file = write_problem(&dir, PROBLEM);
    let values = dir.join("values.json");
    std::fs::write(&values, r#"{"values": {"w": [1, 2, 3]}}"#).unwrap();
    let (code, _, stderr) = eval(&file, &values, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("error[E0912]") && stderr.contains("`w`: expected 2 numbers"),
        "{stderr}"
    );
    std::fs::write(&values, r#"{"values": {"v": [1, 2]}}"#).unwrap();
    let (_, _, stderr) = eval(&file, &values, &[]);
    assert!(stderr.contains("did you mean `w`?"), "{stderr}");
    // Bounded like --init: a file far larger than this problem's values can need.
    let big = format!(
        "{{\"values\": {{\"w\": [1, 2]}}, \"pad\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    std::fs::write(&values, big).unwrap();
    let (code, _, stderr) = eval(&file, &values, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("E0912") && stderr.contains("larger than"),
        "{stderr}"
    );
}

#[test]
fn a_composite_without_a_report_is_named() {
    let dir = temp_dir("eval-no-report");
    let text = PROBLEM.replace("report c {", "composite d(w) { fit(w; X, y); }\nreport c {");
    let file = write_problem(&dir, &text);
    let values = dir.join("values.json");
    std::fs::write(&values, r#"{"values": {"w": [1, 2]}}"#).unwrap();
    let (code, _, stderr) = eval(&file, &values, &["--composite", "d"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("composite `d` has no report block") && stderr.contains("reports on c"),
        "{stderr}"
    );
}

#[test]
fn run_report_prints_what_eval_computes_from_the_saved_values() {
    let dir = temp_dir("eval-run-report");
    let file = write_problem(&dir, PROBLEM);
    let values = dir.join("values.json");
    let output = catopt()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--report", "--format", "json", "--output"])
        .arg(&values)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let run: Value = serde_json::from_slice(&output.stdout).unwrap();
    let (code, stdout, _) = eval(&file, &values, &["--format", "json"]);
    assert_eq!(code, Some(0));
    let evaluated: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["report"], evaluated["report"]);
    assert!(run["report"]["mse"].is_array());
    // Text: the table after the values.
    let output = catopt()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--report"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("report:\n  mse[0]"), "{text}");
    // A composite without a report is refused before the run.
    let plain = PROBLEM[..PROBLEM.find("report c {").unwrap()].to_string();
    let file = write_problem(&dir, &plain);
    let output = catopt()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--report"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no report block"));
    assert!(output.stdout.is_empty());
}
