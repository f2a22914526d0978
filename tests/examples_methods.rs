//! Golden tests of the examples that show the methods beyond gd and momentum:
//! `examples/multitask_adam.opt` (Adam on the multitask digits model) and
//! `examples/layered_armijo.opt` (an Armijo line search with one step size per layer on a
//! three-layer network). Each is run by the binary; its objective, steps and test accuracy
//! on `examples/data/digits_test.csv` are compared with `tests/golden/examples/NAME.method.json`
//! (`CATOPT_BLESS=1` rewrites them; review the diff).

use nalgebra::DMatrix;
use serde_json::{json, Value};

mod cli_common;
use cli_common::{catopt, root, temp_dir};

fn bless() -> bool {
    std::env::var_os("CATOPT_BLESS").is_some()
}

/// Runs an example with `--all --output`; returns the JSON report and the saved values.
fn run(example: &str) -> (Value, Value) {
    let dir = temp_dir(&format!("methods-{}", example.replace('/', "-")));
    let output = dir.join("values.json");
    let result = catopt()
        .args([
            "run", example, "--all", "--format", "json", "--quiet", "--output",
        ])
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let report: Value = serde_json::from_slice(&result.stdout).unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    (report, saved["values"].clone())
}

fn flat(value: &Value) -> Vec<f64> {
    match value {
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => panic!("unexpected value {other}"),
    }
}

fn matrix(value: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = value.as_array().unwrap().iter().map(flat).collect();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

/// The test split: pixels (597 x 64) and labels.
fn test_split() -> (DMatrix<f64>, Vec<usize>) {
    let text = std::fs::read_to_string(root().join("examples/data/digits_test.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
        .collect();
    let pixels = DMatrix::from_fn(rows.len(), 64, |i, j| rows[i][j]);
    (pixels, rows.iter().map(|r| r[74] as usize).collect())
}

/// `tanh(X W + b)` (a layer).
fn layer(x: &DMatrix<f64>, w: &DMatrix<f64>, b: &[f64]) -> DMatrix<f64> {
    let mut h = x * w;
    for mut row in h.row_iter_mut() {
        for (v, bias) in row.iter_mut().zip(b) {
            *v = (*v + bias).tanh();
        }
    }
    h
}

/// The fraction of test images whose largest score is their label.
fn accuracy(scores: &DMatrix<f64>, labels: &[usize]) -> f64 {
    let correct = (0..labels.len())
        .filter(|&i| scores.row(i).transpose().argmax().0 == labels[i])
        .count();
    correct as f64 / labels.len() as f64
}

fn check(name: &str, report: &Value, test_accuracy: f64) {
    let measured = json!({
        "method": report["method"],
        "steps": report["steps"],
        "stop_reason": report["stop_reason"],
        "objective": report["objective"],
        "test_accuracy": test_accuracy,
    });
    let path = root().join(format!("tests/golden/examples/{name}.method.json"));
    if bless() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&measured).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(measured["method"], expected["method"], "{name}");
    assert_eq!(measured["steps"], expected["steps"], "{name}");
    assert_eq!(measured["stop_reason"], expected["stop_reason"], "{name}");
    let (a, e) = (
        measured["objective"].as_f64().unwrap(),
        expected["objective"].as_f64().unwrap(),
    );
    assert!(
        (a - e).abs() <= 1e-6 * e.abs(),
        "{name}: objective {a} expected {e}"
    );
    // Two test images of slack, in case the last bits of a long nonconvex run differ on
    // another CPU.
    let e = expected["test_accuracy"].as_f64().unwrap();
    assert!(
        (test_accuracy - e).abs() <= 2.0 / 597.0 + 1e-12,
        "{name}: test accuracy {test_accuracy} expected {e}"
    );
}

#[test]
fn adam_trains_the_multitask_digits_model() {
    let (report, values) = run("examples/multitask_adam.opt");
    assert_eq!(report["method"]["class"], "coordinatewise");
    let (x, labels) = test_split();
    let hidden = layer(&x, &matrix(&values["W"]), &flat(&values["b"]));
    let mut scores = DMatrix::zeros(labels.len(), 10);
    for k in 0..10 {
        let v = flat(&values[format!("task[{k}].v")]);
        let c = values[format!("task[{k}].c")].as_f64().unwrap();
        for i in 0..labels.len() {
            scores[(i, k)] = hidden
                .row(i)
                .iter()
                .zip(&v)
                .map(|(h, w)| h * w)
                .sum::<f64>()
                + c;
        }
    }
    let test = accuracy(&scores, &labels);
    assert!(test > 0.75, "ten-class test accuracy {test}");
    check("multitask_adam", &report, test);
}

#[test]
fn armijo_with_one_step_size_per_layer_trains_a_layered_network() {
    let (report, values) = run("examples/layered_armijo.opt");
    assert_eq!(report["method"]["groups"], "variables");
    assert!(report["line_search_trials"].as_u64().unwrap() > 0);
    let (x, labels) = test_split();
    let h1 = layer(&x, &matrix(&values["W1"]), &flat(&values["b1"]));
    let h2 = layer(&h1, &matrix(&values["W2"]), &flat(&values["b2"]));
    let mut scores = &h2 * matrix(&values["W3"]);
    let b3 = flat(&values["b3"]);
    for mut row in scores.row_iter_mut() {
        for (v, b) in row.iter_mut().zip(&b3) {
            *v += b;
        }
    }
    let test = accuracy(&scores, &labels);
    assert!(test > 0.85, "test accuracy {test}");
    check("layered_armijo", &report, test);
}
