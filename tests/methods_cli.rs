//! End-to-end tests of the accelerated methods through `catopt run`: `method = nesterov(...)`
//! and `method = agd(...)` with a `schedule = ...` in a solve block, and the `--method` and
//! `--schedule` flags, checked against an independent implementation written here.

mod cli_common;

use cli_common::{catopt, temp_dir};
use serde_json::Value;
use std::path::Path;

/// The chain `sum_i 0.5 (x[i] - x[i+1])^2 + 0.5 (x[i] - 1)^2 + 0.1 x[i+1]^2`, from 0.3.
const BOXES: usize = 6;
/// Every variable's initial value.
const START: f64 = 0.3;

fn file(dir: &Path, solve: &str) -> String {
    let path = dir.join("chain.opt");
    std::fs::write(
        &path,
        format!(
            "objective q(a: real, b: real) {{ minimize 0.5 * (a - b)^2 + 0.5 * (a - 1)^2 + 0.1 * b^2; }}
             composite chain() {{ for i in 0..{BOXES} {{ q(x[i], x[i + 1]); }} }}
             solve chain {{ {solve} init x = 0.3; }}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn objective(x: &[f64]) -> f64 {
    (0..BOXES)
        .map(|i| {
            let (a, b) = (x[i], x[i + 1]);
            0.5 * (a - b) * (a - b) + 0.5 * (a - 1.0) * (a - 1.0) + 0.1 * b * b
        })
        .sum()
}

fn gradient(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..BOXES {
        let (a, b) = (x[i], x[i + 1]);
        g[i] += (a - b) + (a - 1.0);
        g[i + 1] += -(a - b) + 0.2 * b;
    }
    g
}

/// A step-size schedule as docs/language.md's table writes it.
#[derive(Clone, Copy)]
enum Schedule {
    Log(u64),
    Cosine(u64),
    Step(u64, f64),
    InvSqrt,
}

impl Schedule {
    fn eta(self, lr: f64, k: u64) -> f64 {
        match self {
            Schedule::Log(period) => {
                let tau = (k % period + 1) as f64;
                lr * (1.0 - tau.ln() / (period as f64).ln())
            }
            Schedule::Cosine(period) => {
                let tau = (k % period + 1) as f64;
                lr * (1.0 + (std::f64::consts::PI * (tau - 1.0) / period as f64).cos()) / 2.0
            }
            Schedule::Step(every, factor) => lr * factor.powi((k / every) as i32),
            Schedule::InvSqrt => lr / ((k + 1) as f64).sqrt(),
        }
    }
}

/// `nesterov(lr, beta)`: x' = y - eta g(y); y = x' + beta (x' - x); x = x'.
fn nesterov(lr: f64, beta: f64, schedule: Schedule, steps: u64) -> Vec<f64> {
    let mut x = vec![START; BOXES + 1];
    let mut y = x.clone();
    for k in 0..steps {
        let eta = schedule.eta(lr, k);
        let g = gradient(&y);
        for i in 0..x.len() {
            let next = y[i] - eta * g[i];
            y[i] = next + beta * (next - x[i]);
            x[i] = next;
        }
    }
    x
}

/// `agd(lr, mu, gamma0)` in the estimating-sequence form.
fn agd(lr: f64, mu: f64, gamma0: f64, schedule: Schedule, steps: u64) -> Vec<f64> {
    let mut x = vec![START; BOXES + 1];
    let mut v = x.clone();
    let mut y = x.clone();
    let mut gamma = gamma0;
    for k in 0..steps {
        let eta = schedule.eta(lr, k);
        let b = eta * (gamma - mu);
        let alpha = (-b + (b * b + 4.0 * eta * gamma).sqrt()) / 2.0;
        let next_gamma = (1.0 - alpha) * gamma + alpha * mu;
        for i in 0..x.len() {
            y[i] = (alpha * gamma * v[i] + next_gamma * x[i]) / (gamma + alpha * mu);
        }
        let g = gradient(&y);
        for i in 0..x.len() {
            x[i] = y[i] - eta * g[i];
            v[i] = ((1.0 - alpha) * gamma * v[i] + alpha * mu * y[i] - alpha * g[i]) / next_gamma;
        }
        gamma = next_gamma;
    }
    x
}

/// `catopt run FILE ARGS --format json --quiet`: the exit code and the JSON.
fn run(args: &[&str]) -> (i32, Value) {
    let output = catopt()
        .arg("run")
        .args(args)
        .args(["--format", "json", "--quiet"])
        .output()
        .expect("catopt runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), json)
}

/// The run reports the expected method, schedule, steps, iterate and objective (1e-12).
fn check(json: &Value, method: &str, schedule: &str, steps: u64, expected: &[f64]) {
    assert_eq!(json["method"]["name"], method, "{json}");
    assert_eq!(json["schedule"], schedule, "{json}");
    assert_eq!(json["steps"], steps, "{json}");
    assert_eq!(json["stop_reason"], "max_steps", "{json}");
    let values: Vec<f64> = json["values"]["x"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {json}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), expected.len());
    for (got, want) in values.iter().zip(expected) {
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
            "{method}: {values:?} vs {expected:?}"
        );
    }
    let got = json["objective"].as_f64().unwrap();
    let want = objective(expected);
    assert!(
        (got - want).abs() <= 1e-12 * want.abs(),
        "{method}: objective {got} vs {want}"
    );
}

#[test]
fn nesterov_in_a_solve_block_with_a_step_schedule() {
    let dir = temp_dir("methods-nesterov");
    let path = file(
        &dir,
        "method = nesterov(lr = 0.1, beta = 0.8); schedule = step(10, 0.5); steps = 30;",
    );
    let (code, json) = run(&[&path]);
    assert_eq!(code, 0, "{json}");
    let expected = nesterov(0.1, 0.8, Schedule::Step(10, 0.5), 30);
    check(&json, "nesterov", "step(10, 0.5)", 30, &expected);
}

#[test]
fn agd_in_a_solve_block_with_a_log_schedule() {
    let dir = temp_dir("methods-agd");
    let path = file(
        &dir,
        "method = agd(lr = 0.1, mu = 0.2, gamma0 = 5); schedule = log(12); steps = 40;",
    );
    let (code, json) = run(&[&path]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["method"]["gamma0"], 5.0);
    let expected = agd(0.1, 0.2, 5.0, Schedule::Log(12), 40);
    check(&json, "agd", "log(12)", 40, &expected);
}

#[test]
fn method_and_schedule_flags_override_the_solve_block() {
    let dir = temp_dir("methods-flags");
    let path = file(&dir, "method = gd(lr = 0.05); steps = 10;");
    let (code, json) = run(&[
        &path,
        "--method",
        "agd(lr = 0.1, mu = 0.5)",
        "--schedule",
        "cosine(50)",
        "--steps",
        "60",
    ]);
    assert_eq!(code, 0, "{json}");
    let expected = agd(0.1, 0.5, 1.0 / 0.1, Schedule::Cosine(50), 60);
    check(&json, "agd", "cosine(50)", 60, &expected);

    let (code, json) = run(&[
        &path,
        "--method",
        "nesterov(lr = 0.2)",
        "--schedule",
        "inv_sqrt",
    ]);
    assert_eq!(code, 0, "{json}");
    let expected = nesterov(0.2, 0.9, Schedule::InvSqrt, 10);
    check(&json, "nesterov", "inv_sqrt", 10, &expected);
}

/// lbfgs keeps its pairs inside the method: a checkpoint holds them, and a resumed run
/// continues with the same bits as a straight one.
#[test]
fn lbfgs_resumes_from_a_checkpoint_with_its_pairs() {
    let dir = std::env::temp_dir().join(format!("catopt-lbfgs-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chain.opt");
    std::fs::write(
        &file,
        "objective rosen(a: real, b: real) { minimize 100 * (b - a^2)^2 + (1 - a)^2; }\n\
         composite chain() { for i in 0..50 { rosen(x[i], x[i + 1]); } }\n\
         solve chain { method = lbfgs(memory = 5); steps = 60; init x = -1.2; }\n",
    )
    .unwrap();
    let checkpoint = dir.join("ck");
    let run = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_catopt"))
            .arg("run")
            .arg(&file)
            .args([
                "--backend",
                "serial",
                "--format",
                "json",
                "--quiet",
                "--force",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let straight = run(&[]);
    let ck = checkpoint.to_str().unwrap();
    run(&[
        "--steps",
        "25",
        "--checkpoint",
        ck,
        "--checkpoint-every",
        "25",
    ]);
    let header = std::fs::read(&checkpoint).unwrap();
    assert!(
        String::from_utf8_lossy(&header).contains("\"s.0\""),
        "the checkpoint holds the pairs"
    );
    let resumed = run(&["--resume", ck]);
    assert_eq!(resumed["steps"], straight["steps"]);
    assert_eq!(resumed["values"], straight["values"]);
    assert_eq!(resumed["objective"], straight["objective"]);
    let _ = std::fs::remove_dir_all(&dir);
}
