//! Golden tests of every example in `examples/`: each is run by the binary and its result
//! compared with `tests/golden/examples/NAME.json`, and, where the answer is known
//! independently, with that answer (normal equations, exact equilibria).
//!
//! The multitask digits example is also evaluated on its test split: `catopt eval` computes
//! the per-task test accuracies (the example's `report` blocks) from the values saved by
//! `catopt run --output`, for the shared trunk and for ten independent models; they are
//! compared with the table in `tests/golden/examples/multitask_digits.accuracy.json` (the
//! table of the docs) and with the same accuracies computed here independently
//! ([`digits_test_accuracy`]).
//!
//! To regenerate the expected files after an intended change:
//! `CATOPT_BLESS=1 cargo test --release --test examples_golden`, then review the diff.

use nalgebra::{DMatrix, DVector};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

mod cli_common;
use cli_common::{root, temp_dir};

fn bless() -> bool {
    std::env::var_os("CATOPT_BLESS").is_some()
}

/// Runs `catopt run FILE --all --format json --quiet EXTRA...`; returns the JSON report.
fn run_example(file: &str, extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["run", file, "--all", "--format", "json", "--quiet"])
        .args(extra)
        .current_dir(root())
        .output()
        .expect("catopt runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "catopt run {file} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Flattens a JSON value (numbers, nested arrays) into numbers.
fn numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(items) => items.iter().for_each(|v| numbers(v, out)),
        Value::Object(map) => map.values().for_each(|v| numbers(v, out)),
        other => panic!("unexpected value {other}"),
    }
}

fn flat(value: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    numbers(value, &mut out);
    out
}

/// Compares a run with its golden file (or writes it when blessing).
fn check_golden(name: &str, report: &Value, tolerance: f64) {
    let path = root().join(format!("tests/golden/examples/{name}.json"));
    let actual = json!({
        "composite": report["composite"],
        "steps": report["steps"],
        "stop_reason": report["stop_reason"],
        "objective": report["objective"],
        "values": report["values"],
    });
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CATOPT_BLESS=1 writes it)", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    for key in ["composite", "steps", "stop_reason"] {
        assert_eq!(actual[key], expected[key], "{name}: `{key}` differs");
    }
    let (a, e) = (
        actual["objective"].as_f64().unwrap(),
        expected["objective"].as_f64().unwrap(),
    );
    assert!(
        (a - e).abs() <= tolerance * (1.0 + e.abs()),
        "{name}: objective {a} expected {e}"
    );
    let expected_values = expected["values"].as_object().unwrap();
    let actual_values = actual["values"].as_object().unwrap();
    assert_eq!(
        actual_values.keys().collect::<Vec<_>>(),
        expected_values.keys().collect::<Vec<_>>(),
        "{name}: variable names differ"
    );
    for (key, value) in expected_values {
        let (e, a) = (flat(value), flat(&actual_values[key]));
        assert_eq!(e.len(), a.len(), "{name}: {key} has another size");
        for (i, (x, y)) in a.iter().zip(&e).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * (1.0 + y.abs()),
                "{name}: {key}[{i}] = {x}, expected {y}"
            );
        }
    }
}

fn value(report: &Value, name: &str) -> f64 {
    report["values"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no value {name} in {}", report["values"]))
}

#[test]
fn first_matches_its_golden_file_and_the_known_minimiser() {
    let report = run_example("examples/first.opt", &[]);
    check_golden("first", &report, 1e-9);
    assert!((value(&report, "b") - 3.0).abs() < 1e-9);
    assert!((value(&report, "f1.a") - 1.0).abs() < 1e-9);
    assert!((value(&report, "f2.c") + 1.0).abs() < 1e-9);
}

#[test]
fn three_quadratics_match_their_golden_file() {
    let report = run_example("examples/three_quadratics.opt", &[]);
    check_golden("three_quadratics", &report, 1e-9);
    assert!((report["objective"].as_f64().unwrap() + 1.171598).abs() < 1e-6);
}

#[test]
fn rosenbrock_chain_matches_its_golden_file() {
    let report = run_example("examples/rosenbrock_chain.opt", &[]);
    check_golden("rosenbrock_chain", &report, 1e-9);
}

#[test]
fn hierarchical_settles_evenly_between_the_pins() {
    let report = run_example("examples/hierarchical.opt", &[]);
    check_golden("hierarchical", &report, 1e-9);
    assert_eq!(report["stop_reason"], "gradient_tolerance");
    for (name, expected) in [
        ("start", 0.0),
        ("rope.first.mid", 1.0),
        ("rope.middle", 2.0),
        ("rope.second.mid", 3.0),
        ("end", 4.0),
    ] {
        assert!(
            (value(&report, name) - expected).abs() < 1e-9,
            "{name} = {}",
            value(&report, name)
        );
    }
    // The flattened composite: 6 boxes, 3 box types (spring, pin at 0, pin at 4).
    assert_eq!(report["boxes"], 6);
    assert_eq!(report["variables"], 5);
}

/// Reads a csv file with a header into rows of numbers.
fn read_csv(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().parse().unwrap()).collect())
        .collect()
}

#[test]
fn least_squares_reaches_the_normal_equations_solution() {
    let report = run_example("examples/least_squares.opt", &[]);
    check_golden("least_squares", &report, 1e-7);
    assert_eq!(report["stop_reason"], "gradient_tolerance");
    // The ridge regression solved directly: (2/n) [X 1]^T ([X 1] beta - y) + 0.02 [w; 0] = 0.
    let mut rows = read_csv(&root().join("examples/data/diabetes_0.csv"));
    rows.extend(read_csv(&root().join("examples/data/diabetes_1.csv")));
    let n = rows.len();
    assert_eq!(n, 442);
    let design = DMatrix::from_fn(n, 11, |i, j| if j < 10 { rows[i][j] } else { 1.0 });
    let target = DVector::from_fn(n, |i, _| rows[i][10]);
    let mut normal = design.transpose() * &design * (2.0 / n as f64);
    for j in 0..10 {
        normal[(j, j)] += 0.02;
    }
    let rhs = design.transpose() * target * (2.0 / n as f64);
    let beta = normal
        .lu()
        .solve(&rhs)
        .expect("the normal equations are regular");
    let w = flat(&report["values"]["w"]);
    for j in 0..10 {
        assert!(
            (w[j] - beta[j]).abs() < 1e-6,
            "w[{j}] = {}, normal equations {}",
            w[j],
            beta[j]
        );
    }
    assert!((value(&report, "c") - beta[10]).abs() < 1e-6);
}

/// The test split of the digits example: pixel rows (64 numbers in [0, 1]) and digits.
fn digits_test_split() -> (Vec<Vec<f64>>, Vec<usize>) {
    let rows = read_csv(&root().join("examples/data/digits_test.csv"));
    let pixels = rows.iter().map(|r| r[..64].to_vec()).collect();
    let labels = rows.iter().map(|r| r[74] as usize).collect();
    (pixels, labels)
}

/// The procedure behind the docs' digits table. For task k, with trunk (W, b) and head
/// (v, c) read from a `catopt run --all --output` file, the score of an image x is
/// z_k = tanh(x W + b) . v + c, and the model answers "digit k" when z_k > 0. Returns the
/// per-task test accuracy (fraction of test images answered correctly), and the accuracy
/// of the ten-class rule "the digit is the k with the largest z_k".
fn digits_test_accuracy(values: &Value, shared_trunk: bool) -> (Vec<f64>, f64) {
    let (pixels, labels) = digits_test_split();
    let matrix = |v: &Value| -> DMatrix<f64> {
        let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(flat).collect();
        DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
    };
    let x = DMatrix::from_fn(pixels.len(), 64, |i, j| pixels[i][j]);
    let mut scores = DMatrix::zeros(pixels.len(), 10);
    for k in 0..10 {
        let (w, b) = if shared_trunk {
            (matrix(&values["W"]), flat(&values["b"]))
        } else {
            (matrix(&values["W"][k]), flat(&values["b"][k]))
        };
        let v = DVector::from_vec(flat(&values[format!("task[{k}].v")]));
        let c = values[format!("task[{k}].c")].as_f64().unwrap();
        let mut hidden = &x * w;
        for mut row in hidden.row_iter_mut() {
            for (h, bias) in row.iter_mut().zip(&b) {
                *h = (*h + bias).tanh();
            }
        }
        let z = hidden * v;
        for i in 0..pixels.len() {
            scores[(i, k)] = z[i] + c;
        }
    }
    let per_task = (0..10)
        .map(|k| {
            let correct = (0..pixels.len())
                .filter(|&i| (scores[(i, k)] > 0.0) == (labels[i] == k))
                .count();
            correct as f64 / pixels.len() as f64
        })
        .collect();
    let ten_class = (0..pixels.len())
        .filter(|&i| scores.row(i).transpose().argmax().0 == labels[i])
        .count() as f64
        / pixels.len() as f64;
    (per_task, ten_class)
}

/// Runs one composite of the digits example, saving its values; then `catopt eval` on
/// them. Returns the run's report, the saved values and the report `eval` computed.
fn run_digits(composite: &str, dir: &Path) -> (Value, Value, Value) {
    let output = dir.join(format!("{composite}.json"));
    let report = run_example(
        "examples/multitask_digits.opt",
        &[
            "--composite",
            composite,
            "--output",
            output.to_str().unwrap(),
        ],
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let eval = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args([
            "eval",
            "examples/multitask_digits.opt",
            "--composite",
            composite,
        ])
        .args(["--format", "json", "--values", output.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(
        eval.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let evaluated: Value = serde_json::from_slice(&eval.stdout).unwrap();
    (report, saved["values"].clone(), evaluated["report"].clone())
}

#[test]
fn multitask_digits_matches_the_docs_table() {
    let dir = temp_dir("digits");
    let (shared_report, shared_values, shared_eval) = run_digits("multitask", &dir);
    check_golden("multitask_digits", &shared_report, 1e-6);
    let (independent_report, independent_values, independent_eval) =
        run_digits("independent", &dir);
    // The table comes from `catopt eval`: the example's report blocks.
    let shared = flat(&shared_eval["accuracy"]);
    let shared_all = shared_eval["ten_class"].as_f64().unwrap();
    let independent = flat(&independent_eval["accuracy"]);
    let independent_all = independent_eval["ten_class"].as_f64().unwrap();
    let base = flat(&shared_eval["always_no"]);
    assert_eq!(base, flat(&independent_eval["always_no"]));
    // The same accuracies computed here, independently of the report language: equal up to
    // one test image (a score within rounding of 0 may fall either way).
    let (_, labels) = digits_test_split();
    let image = 1.0 / labels.len() as f64 + 1e-12;
    for (values, shared_trunk, per_task, ten_class) in [
        (&shared_values, true, &shared, shared_all),
        (&independent_values, false, &independent, independent_all),
    ] {
        let (expected, expected_all) = digits_test_accuracy(values, shared_trunk);
        for k in 0..10 {
            assert!(
                (per_task[k] - expected[k]).abs() <= image,
                "task {k}: eval gives {}, computed here {}",
                per_task[k],
                expected[k]
            );
        }
        assert!((ten_class - expected_all).abs() <= image);
    }
    for (k, measured) in base.iter().enumerate() {
        let always_no = labels.iter().filter(|&&l| l != k).count() as f64 / labels.len() as f64;
        assert!((measured - always_no).abs() <= 1e-15);
    }
    let table = json!({
        "test_images": labels.len(),
        "shared_trunk": { "per_task": shared, "ten_class": shared_all,
                          "objective": shared_report["objective"] },
        "independent": { "per_task": independent, "ten_class": independent_all,
                         "objective": independent_report["objective"] },
        "always_no": base,
    });
    // The markdown table of docs/tutorial.md, printed for `--nocapture`.
    println!("| task | shared trunk | independent | always \"no\" |\n|---|---|---|---|");
    for k in 0..10 {
        println!(
            "| is it {k}? | {:.1}% | {:.1}% | {:.1}% |",
            100.0 * shared[k],
            100.0 * independent[k],
            100.0 * base[k]
        );
    }
    println!(
        "| ten-class (largest score) | {:.1}% | {:.1}% | 10% |",
        100.0 * shared_all,
        100.0 * independent_all
    );
    let path = root().join("tests/golden/examples/multitask_digits.accuracy.json");
    if bless() {
        std::fs::write(&path, serde_json::to_string_pretty(&table).unwrap() + "\n").unwrap();
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Two test images of slack per task, in case the last bits of a long nonconvex run
    // differ on another CPU (FMA or not).
    let slack = 2.0 / labels.len() as f64 + 1e-12;
    for (model, actual) in [("shared_trunk", &shared), ("independent", &independent)] {
        let expected = flat(&expected[model]["per_task"]);
        for k in 0..10 {
            assert!(
                (actual[k] - expected[k]).abs() <= slack,
                "{model}, task {k}: accuracy {} expected {}",
                actual[k],
                expected[k]
            );
        }
    }
    for model in ["shared_trunk", "independent"] {
        let e = expected[model]["ten_class"].as_f64().unwrap();
        let a = table[model]["ten_class"].as_f64().unwrap();
        assert!((a - e).abs() <= slack, "{model} ten-class {a} expected {e}");
    }
    // Both models beat answering "no" always on every task.
    for k in 0..10 {
        assert!(shared[k] > base[k] + 0.02 && independent[k] > base[k] + 0.02);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The softmax regression example: its golden file, and its test accuracy (the digit is the
/// class of the largest logit `x W + b`) against `tests/golden/examples/softmax_digits.accuracy.json`.
/// The scikit-learn comparison of the example's header is `bench/reference/softmax_digits_sklearn.py`.
#[test]
fn softmax_digits_matches_its_golden_file_and_accuracy() {
    let dir = temp_dir("softmax");
    let output = dir.join("softmax.json");
    let report = run_example(
        "examples/softmax_digits.opt",
        &["--output", output.to_str().unwrap()],
    );
    check_golden("softmax_digits", &report, 1e-6);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let values = &saved["values"];
    let w: Vec<Vec<f64>> = values["W"].as_array().unwrap().iter().map(flat).collect();
    let b = flat(&values["b"]);
    let (pixels, labels) = digits_test_split();
    let correct = pixels
        .iter()
        .zip(&labels)
        .filter(|(x, &label)| {
            let logits: Vec<f64> = (0..10)
                .map(|k| b[k] + (0..64).map(|j| x[j] * w[j][k]).sum::<f64>())
                .collect();
            let best = (0..10)
                .max_by(|&i, &j| logits[i].total_cmp(&logits[j]))
                .unwrap();
            best == label
        })
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    println!(
        "softmax_digits test accuracy: {accuracy:.4} ({correct} / {})",
        labels.len()
    );
    let path = root().join("tests/golden/examples/softmax_digits.accuracy.json");
    let table = json!({ "test_images": labels.len(), "test_accuracy": accuracy,
                        "objective": report["objective"] });
    if bless() {
        std::fs::write(&path, serde_json::to_string_pretty(&table).unwrap() + "\n").unwrap();
    } else {
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let e = expected["test_accuracy"].as_f64().unwrap();
        assert!(
            (accuracy - e).abs() <= 2.0 / labels.len() as f64 + 1e-12,
            "test accuracy {accuracy}, expected {e}"
        );
    }
    assert!(
        accuracy > 0.9,
        "a linear softmax model reaches 90% on the digits"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
