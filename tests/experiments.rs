//! The two stochastic experiments of docs/experiments.md, run in their quick mode: the
//! commands' tables have their shape, the files are written, and the claims the docs make
//! hold with tolerances that can fail. The examples' `.opt` files also check and run with
//! the binary.

// Each example includes the shared modules (examples/experiments/) itself: two copies here.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../examples/sgd_interpolation.rs"]
mod sgd_interpolation;
#[allow(dead_code)]
#[path = "../examples/sgd_log_step.rs"]
mod sgd_log_step;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("catopt-experiments-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The markdown table's data rows (after the header and the separator).
fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

fn catopt_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(args)
        .args(["--format", "json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "catopt {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The log step size experiment: four schedules, every run trains (loss well below the
/// initial ln 10 and far better than chance on the test images), the same seeds give the
/// same bits, and the ordering the docs report holds: at the same lr and budget the final
/// training loss is constant < cosine(T) < log(T) < inv_sqrt.
#[test]
fn log_step_experiment_quick() {
    let dir = temp_dir("log-step");
    let table = sgd_log_step::write(true, &dir).unwrap();
    let rows = table_rows(&table);
    let setup = sgd_log_step::Setup::quick();
    assert_eq!(rows.len(), 4 * setup.lrs.len(), "{table}");
    for (row, schedule) in rows.iter().zip(sgd_log_step::schedules(setup.period)) {
        assert_eq!(row.len(), 4, "{table}");
        assert_eq!(row[1], format!("`{schedule}`"));
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("sgd_log_step.md")).unwrap(),
        table
    );
    let svg = std::fs::read_to_string(dir.join("sgd_log_step.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("log(200)") && svg.contains("inv_sqrt"));

    let results = sgd_log_step::experiment(&setup).unwrap();
    let again = sgd_log_step::experiment(&setup).unwrap();
    let mut losses = Vec::new();
    for (row, same) in results.iter().zip(&again) {
        assert_eq!(row.losses.len(), setup.seeds.len());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&row.losses), bits(&same.losses), "{}", row.schedule);
        for (&loss, &accuracy) in row.losses.iter().zip(&row.accuracies) {
            assert!(
                loss.is_finite() && loss < 0.5,
                "{}: loss {loss}",
                row.schedule
            );
            assert!(accuracy > 0.8, "{}: accuracy {accuracy}", row.schedule);
        }
        losses.push(sgd_log_step::mean(&row.losses));
    }
    // constant, cosine, log, inv_sqrt: in the order of `schedules`.
    let order = [2, 1, 0, 3];
    for pair in order.windows(2) {
        assert!(
            losses[pair[0]] < losses[pair[1]],
            "final training losses {losses:?} (log, cosine, constant, inv_sqrt)"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The interpolation experiment: the constants agree with what make_interpolation.py prints
/// and what sgd_interpolation.opt is written with; with batch 200 agd's objective contracts
/// like deterministic Nesterov's (1 - sqrt(mu/L))^(2k) (the square: f is quadratic in the
/// error) and gd's like (1 - mu/L)^(2k), within 10% and 20% of the exponent; with batch 1 at
/// eta = 1/(rho L) agd reaches 1e-8 f(x0) in less than half gd's steps, gd is at least as
/// fast as its bound, and agd is slower than the theorem's bound (the docs' finding).
#[test]
fn interpolation_experiment_quick() {
    let dir = temp_dir("interpolation");
    let (c, rows, table) = sgd_interpolation::write(true, &dir).unwrap();
    let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs();
    // As make_interpolation.py prints them.
    assert!(
        close(c.l, 1.22204, 1e-5) && close(c.mu, 0.0428443, 1e-5),
        "{c:?}"
    );
    assert!(
        close(c.l_max, 34.0702, 1e-5) && close(c.rho, 459.186, 1e-5),
        "{c:?}"
    );
    // As the .opt file's solve block is written.
    let opt = std::fs::read_to_string(root().join("examples/sgd_interpolation.opt")).unwrap();
    let written = format!("agd(lr = {:.8}, mu = {:.7})", 1.0 / (c.rho * c.l), c.mu);
    assert!(opt.contains(&written), "{written}");

    let table_lines = table_rows(&table);
    assert_eq!(table_lines.len(), 4, "{table}");
    assert!(table_lines.iter().all(|r| r.len() == 7), "{table}");
    assert!(std::fs::read_to_string(dir.join("sgd_interpolation.svg"))
        .unwrap()
        .starts_with("<svg"));

    let find = |method: &str, batch: u64| {
        rows.iter()
            .find(|r| r.method == method && r.batch == batch)
            .unwrap()
    };
    let exponent =
        |row: &sgd_interpolation::Row| sgd_interpolation::mean(&row.factors).ln() / row.bound.ln();
    let (agd200, gd200) = (find("agd", 200), find("gd", 200));
    let q = c.mu / c.l;
    assert!(close(agd200.bound, 1.0 - q.sqrt(), 1e-12));
    assert!(
        close(exponent(agd200), 2.0, 0.1),
        "agd, batch 200: {}",
        exponent(agd200)
    );
    assert!(
        close(exponent(gd200), 2.0, 0.2),
        "gd, batch 200: {}",
        exponent(gd200)
    );

    let (agd1, gd1) = (find("agd", 1), find("gd", 1));
    let steps = |row: &sgd_interpolation::Row| {
        let steps: Vec<f64> = row
            .steps_to_1e8
            .iter()
            .map(|s| s.expect("reaches 1e-8") as f64)
            .collect();
        sgd_interpolation::mean(&steps)
    };
    assert!(
        2.0 * steps(agd1) < steps(gd1),
        "steps to 1e-8: agd {}, gd {}",
        steps(agd1),
        steps(gd1)
    );
    assert!(exponent(gd1) >= 1.0, "gd, batch 1: {}", exponent(gd1));
    assert!(exponent(agd1) < 1.0, "agd, batch 1: {}", exponent(agd1));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The examples check and run with the binary: the digits network learns (its report's test
/// accuracy), the least-squares run goes down.
#[test]
fn the_experiment_files_run() {
    let report = catopt_json(&[
        "run",
        "examples/sgd_log_step.opt",
        "--report",
        "--steps",
        "300",
    ]);
    let accuracy = report["report"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8 && accuracy <= 1.0, "{report:#}");
    assert_eq!(report["sampling"]["batch"], 32);
    let report = catopt_json(&["run", "examples/sgd_interpolation.opt"]);
    let objective = report["objective"].as_f64().unwrap();
    assert!(objective < 1.0, "{report:#}");
    assert_eq!(report["sampling"]["order"], "replace");
}

/// A minibatch run that blows up is reported as diverged, as a full-batch run is: plain SGD
/// with too large a step on the interpolation example reached a full objective of 3e156
/// after 2000 steps and stopped with `max_steps`, exit 0, when the blow-up rule
/// (`BLOW_UP_FACTOR`, src/run/solver.rs) asked a minibatch objective to rise at each of the
/// last 20 steps, which a noisy objective does not.
#[test]
fn a_blowing_up_minibatch_run_is_reported_as_diverged() {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args([
            "run",
            "examples/sgd_interpolation.opt",
            "--method",
            "gd(lr = 0.2)",
        ])
        .args(["--steps", "2000", "--format", "json"])
        .current_dir(root())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stop_reason"], "diverged", "{report:#}");
    assert_eq!(output.status.code(), Some(3));
}

/// docs/experiments.md shows the tables the two commands wrote (docs/images/*.md), and links
/// their plots.
#[test]
fn the_docs_show_the_committed_tables() {
    let docs = std::fs::read_to_string(root().join("docs/experiments.md")).unwrap();
    for name in ["sgd_log_step", "sgd_interpolation"] {
        let table = std::fs::read_to_string(root().join(format!("docs/images/{name}.md"))).unwrap();
        assert!(
            docs.contains(&table),
            "docs/experiments.md lacks docs/images/{name}.md"
        );
        assert!(docs.contains(&format!("(images/{name}.svg)")));
        assert!(root().join(format!("docs/images/{name}.svg")).is_file());
    }
}
