//! `catopt run` with minibatches: the settings and their flags, the output's `epochs`,
//! `minibatch_objective` and full `objective`, the trace's `full_objective` column, and a
//! resumed run that continues the same draws.

mod cli_common;

use cli_common::{catopt, temp_dir};
use serde_json::Value;
use std::path::Path;

/// Logistic regression on 40 rows (sampled), two features and a bias.
const LOGISTIC: &str = "
data X = [XROWS];
data y = [YROWS];
objective fit(w: real[2]; X: real[40, 2] sample, y: real[40] sample) {
    var c: real;
    let z = X @ w + c;
    minimize mean(softplus(z) - y * z);
}
composite model(w) { fit(w; X, y); }
solve model { method = gd(lr = 0.5); batch = 8; steps = 30; seed = 5; full_every = 10; }
";

fn write_problem(dir: &Path) -> std::path::PathBuf {
    let rows: Vec<String> = (0..40)
        .map(|i| {
            let t = i as f64 / 40.0;
            format!("{:.3}, {:.3}", (7.0 * t).sin(), (3.0 * t).cos())
        })
        .collect();
    let labels: Vec<String> = (0..40)
        .map(|i| ((i * 7) % 3 == 0) as u8)
        .map(|v| v.to_string())
        .collect();
    let text = LOGISTIC
        .replace("XROWS", &rows.join("; "))
        .replace("YROWS", &labels.join(", "));
    let path = dir.join("logistic.opt");
    std::fs::write(&path, &text).unwrap();
    // The same problem without minibatches.
    let full = text
        .replace(" batch = 8;", "")
        .replace(" full_every = 10;", "");
    std::fs::write(dir.join("logistic_full.opt"), full).unwrap();
    path
}

fn run_json(args: &[&str]) -> Value {
    let output = catopt()
        .args(["run", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn error_of(args: &[&str]) -> String {
    let output = catopt().arg("run").args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_minibatch_run_reports_epochs_and_the_full_objective() {
    let dir = temp_dir("minibatch-json");
    let file = write_problem(&dir);
    let file = file.to_str().unwrap();
    let values = dir.join("values.json");
    let json = run_json(&[file, "--output", values.to_str().unwrap()]);
    assert_eq!(json["steps"], 30);
    assert_eq!(json["epochs"].as_f64(), Some(30.0 * 8.0 / 40.0));
    assert_eq!(json["sampling"]["batch"], 8);
    assert_eq!(json["sampling"]["order"], "shuffle");
    assert_eq!(json["sampling"]["full_every"], 10);
    assert_eq!(json["sampling"]["seed"], 5);
    let minibatch = json["minibatch_objective"].as_f64().unwrap();
    let full = json["objective"].as_f64().unwrap();
    assert_ne!(minibatch, full);
    // `objective` is the full objective at the final iterate: what a run without
    // `batch` reports there after no step.
    let at_end = run_json(&[
        dir.join("logistic_full.opt").to_str().unwrap(),
        "--init",
        values.to_str().unwrap(),
        "--steps",
        "0",
    ]);
    assert!(at_end.get("epochs").is_none());
    assert_eq!(at_end["objective"].as_f64(), Some(full));
    assert_eq!(at_end["gradient_norm"], json["gradient_norm"]);
    // --batch, --sampling and --seed override the block.
    let other = run_json(&[file, "--batch", "4", "--sampling", "replace", "--seed", "9"]);
    assert_eq!(other["sampling"]["batch"], 4);
    assert_eq!(other["sampling"]["order"], "replace");
    assert_eq!(other["epochs"].as_f64(), Some(30.0 * 4.0 / 40.0));
    assert_ne!(other["objective"], json["objective"]);
}

#[test]
fn the_trace_shows_the_full_objective_every_full_every_steps() {
    let dir = temp_dir("minibatch-trace");
    let file = write_problem(&dir);
    let trace = dir.join("trace.csv");
    let json = run_json(&[
        file.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--full-every",
        "7",
    ]);
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("step,objective,gradient_norm,step_size,evaluations,full_objective")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 31); // steps 0 to 30
    for row in &rows {
        let step: u64 = row[0].parse().unwrap();
        assert_eq!(row.len(), 6);
        assert_eq!(row[5].is_empty(), step % 7 != 0, "step {step}");
    }
    // At step 30 (not a multiple of 7) the trace has the minibatch objective, which the
    // JSON repeats; the full objective of the start is every sample's loss at 0: ln 2.
    assert_eq!(
        rows[30][1].parse::<f64>().unwrap(),
        json["minibatch_objective"].as_f64().unwrap()
    );
    let start: f64 = rows[0][5].parse().unwrap();
    assert!((start - 2f64.ln()).abs() < 1e-15, "{start}");
}

#[test]
fn bad_minibatch_settings_are_refused() {
    let dir = temp_dir("minibatch-bad");
    let file = write_problem(&dir);
    let file = file.to_str().unwrap();
    let too_large = error_of(&[file, "--batch", "41"]);
    assert!(
        too_large.contains("batch = 41 is more than the 40 rows of `fit`'s sampled data"),
        "{too_large}"
    );
    let order = error_of(&[file, "--sampling", "shufle"]);
    assert!(order.contains("the orders are shuffle, replace"), "{order}");
    let tolerance = error_of(&[file, "--tolerance", "1e-6"]);
    assert!(
        tolerance.contains("`tolerance` with `batch = 8`"),
        "{tolerance}"
    );
    let zero = error_of(&[file, "--batch", "0"]);
    assert!(zero.contains("--batch must be at least 1"), "{zero}");
    // Flags of minibatches on a file without sampled data.
    let first = "examples/first.opt";
    let nothing = error_of(&[first, "--batch", "1"]);
    assert!(
        nothing.contains("no box of `total` has sampled data"),
        "{nothing}"
    );
    let stray = error_of(&[first, "--full-every", "3"]);
    assert!(
        stray.contains("--full-every applies to minibatches"),
        "{stray}"
    );
}

#[test]
fn a_resumed_minibatch_run_continues_the_same_draws() {
    let dir = temp_dir("minibatch-resume");
    let file = write_problem(&dir);
    let file = file.to_str().unwrap();
    let whole = run_json(&[file, "--steps", "30", "--method", "momentum(lr = 0.3)"]);
    let checkpoint = dir.join("state.ckpt");
    run_json(&[
        file,
        "--steps",
        "12",
        "--method",
        "momentum(lr = 0.3)",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--checkpoint-every",
        "12",
    ]);
    let resumed = run_json(&[
        file,
        "--steps",
        "30",
        "--method",
        "momentum(lr = 0.3)",
        "--resume",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(resumed["steps"], 30);
    assert_eq!(resumed["values"], whole["values"]);
    assert_eq!(resumed["objective"], whole["objective"]);
}
