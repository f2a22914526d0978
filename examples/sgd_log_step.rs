//! The log step size experiment (Shamaee, Hafshejani, Saeidian 2025; docs/experiments.md):
//! SGD with `batch = 32` on the tanh network of `examples/sgd_log_step.opt` (digits), with
//! the schedules `log(T)` (restarting every T steps), `cosine(T)` (the same restarts),
//! `constant` and `inv_sqrt` at the same lr and budget, over several seeds: the final
//! training loss (the full objective) and the test accuracy (the file's report) per
//! schedule, mean and standard deviation over the seeds, as a markdown table, and the
//! training loss per step (mean over the seeds) as an SVG.
//!
//! `cargo run --release --example sgd_log_step [-- --quick] [-- --out DIR]` writes
//! `DIR/sgd_log_step.md` and `DIR/sgd_log_step.svg` (default DIR: docs/images) and prints
//! the table. `--quick` is the small version the tests run.

#[path = "experiments/plot.rs"]
mod plot;
#[path = "experiments/runner.rs"]
mod runner;

pub use runner::mean;
use runner::{arguments, mean_sd, Loaded, RunSpec};
use std::path::Path;

/// The schedules compared, as `--schedule` takes them, for a restart period `t`.
pub fn schedules(t: u64) -> [String; 4] {
    [
        format!("log({t})"),
        format!("cosine({t})"),
        "constant".into(),
        "inv_sqrt".into(),
    ]
}

/// The experiment's size.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Step sizes; every schedule runs at each.
    pub lrs: Vec<f64>,
    /// The budget: steps of every run.
    pub steps: u64,
    /// The restart period of `log(T)` and `cosine(T)`.
    pub period: u64,
    /// The seeds (initial values and minibatch draws).
    pub seeds: Vec<u64>,
    /// The full objective is recorded every this many steps.
    pub full_every: u64,
}

impl Setup {
    /// The documented experiment: lr 0.1 and 0.5, 3000 steps (80 epochs) with restarts
    /// every 1000, five seeds.
    pub fn full() -> Setup {
        Setup {
            lrs: vec![0.1, 0.5],
            steps: 3000,
            period: 1000,
            seeds: (1..=5).collect(),
            full_every: 25,
        }
    }

    /// The tests' version: lr 0.5, 400 steps with restarts every 200, three seeds.
    pub fn quick() -> Setup {
        Setup {
            lrs: vec![0.5],
            steps: 400,
            period: 200,
            seeds: (1..=3).collect(),
            full_every: 20,
        }
    }
}

/// One row of the table: a schedule at one lr over the seeds.
#[derive(Clone, Debug)]
pub struct Row {
    /// The step size.
    pub lr: f64,
    /// The schedule as written.
    pub schedule: String,
    /// The full training loss at the last iterate, one per seed.
    pub losses: Vec<f64>,
    /// The test accuracy, one per seed.
    pub accuracies: Vec<f64>,
    /// The training loss every `full_every` steps, mean over the seeds.
    pub curve: Vec<(f64, f64)>,
}

/// Runs every (lr, schedule, seed) of `setup`.
pub fn experiment(setup: &Setup) -> Result<Vec<Row>, String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sgd_log_step.opt");
    let loaded = Loaded::new(&file)?;
    let mut rows = Vec::new();
    for &lr in &setup.lrs {
        for schedule in schedules(setup.period) {
            let mut row = Row {
                lr,
                schedule: schedule.clone(),
                losses: Vec::new(),
                accuracies: Vec::new(),
                curve: Vec::new(),
            };
            let mut sums: Vec<(f64, f64)> = Vec::new();
            for &seed in &setup.seeds {
                let result = runner::run(
                    &loaded,
                    &RunSpec {
                        method: Some(format!("gd(lr = {lr})")),
                        schedule: Some(schedule.clone()),
                        steps: Some(setup.steps),
                        seed,
                        full_every: setup.full_every,
                        ..RunSpec::default()
                    },
                )?;
                if result.steps != setup.steps {
                    return Err(format!(
                        "{schedule}, lr {lr}, seed {seed} stopped after {} steps",
                        result.steps
                    ));
                }
                let accuracy = result
                    .report
                    .iter()
                    .find(|(name, _)| name == "accuracy")
                    .map(|r| r.1)
                    .ok_or("the report has no `accuracy` line")?;
                row.losses.push(result.objective);
                row.accuracies.push(accuracy);
                sums.resize(result.trace.len(), (0.0, 0.0));
                for (sum, (step, value)) in sums.iter_mut().zip(&result.trace) {
                    *sum = (*step as f64, sum.1 + value);
                }
            }
            let n = setup.seeds.len() as f64;
            row.curve = sums.into_iter().map(|(s, v)| (s, v / n)).collect();
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The table: one line per (lr, schedule), mean ± standard deviation over the seeds.
pub fn markdown(setup: &Setup, rows: &[Row]) -> String {
    let mut out = format!(
        "SGD, batch 32, {} steps ({:.0} epochs), restart period T = {}, {} seeds; mean ± sd \
         over seeds (min to max)\n\n\
         | lr | schedule | final training loss | test accuracy (%) |\n|---|---|---|---|\n",
        setup.steps,
        setup.steps as f64 * 32.0 / 1200.0,
        setup.period,
        setup.seeds.len()
    );
    for row in rows {
        let (loss, loss_sd) = mean_sd(&row.losses);
        let percent: Vec<f64> = row.accuracies.iter().map(|a| 100.0 * a).collect();
        let (acc, acc_sd) = mean_sd(&percent);
        let lo = percent.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = percent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.push_str(&format!(
            "| {} | `{}` | {loss:.4} ± {loss_sd:.4} | {acc:.2} ± {acc_sd:.2} ({lo:.2} to {hi:.2}) |\n",
            row.lr, row.schedule
        ));
    }
    out
}

/// The plot: the training loss per step (mean over seeds), one panel per lr.
pub fn svg(setup: &Setup, rows: &[Row]) -> Result<String, String> {
    let panels: Vec<plot::Panel> = setup
        .lrs
        .iter()
        .map(|&lr| plot::Panel {
            title: format!("lr = {lr}"),
            x_desc: "step".into(),
            y_desc: format!("full training loss (mean of {} seeds)", setup.seeds.len()),
            curves: rows
                .iter()
                .filter(|r| r.lr == lr)
                .map(|r| plot::Curve {
                    name: r.schedule.clone(),
                    points: r.curve.clone(),
                })
                .collect(),
        })
        .collect();
    plot::svg(
        "SGD on the digits tanh network (batch 32): step-size schedules",
        &panels,
        500 * setup.lrs.len() as u32,
    )
}

/// Runs the experiment and writes `out/sgd_log_step.{md,svg}`; returns the table.
pub fn write(quick: bool, out: &Path) -> Result<String, String> {
    let setup = if quick { Setup::quick() } else { Setup::full() };
    let rows = experiment(&setup)?;
    let table = markdown(&setup, &rows);
    let picture = svg(&setup, &rows)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in [("sgd_log_step.md", &table), ("sgd_log_step.svg", &picture)] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(table)
}

#[allow(dead_code)]
fn main() {
    let outcome = arguments().and_then(|(quick, out)| write(quick, &out));
    match outcome {
        Ok(table) => print!("{table}"),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}
