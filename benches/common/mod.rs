//! Shared pieces of the benchmarks: the workloads of `/work/shared/bench/README.md` (copied
//! into `bench/README.md`), catopt's compiled run of each, and strong hand-written
//! implementations of the same objective and gradient to compare against.
//!
//! Every implementation here is checked against the JAX reference objectives before it is
//! timed (see [`check_close`]), so a benchmark never times a wrong computation.

#![allow(dead_code)] // each bench target uses a subset

pub mod chain;
pub mod multitask;

use catopt::check::check_file;
use catopt::lower::lower;
use catopt::run::backend::Backend;
use catopt::run::executor::{Evaluation, Executor, Proposal};
use catopt::run::plan::Plan;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// W1: the JAX reference's objective at the initial point.
pub const W1_INITIAL_OBJECTIVE: f64 = 24.5684599004;
/// W1: the JAX reference's objective after 200 steps.
pub const W1_FINAL_OBJECTIVE: f64 = 0.87081278483;
/// W1: step size and number of steps.
pub const W1_LR: f64 = 0.05;
/// W1: number of steps of the reference run.
pub const W1_STEPS: usize = 200;
/// W2: step size.
pub const W2_LR: f64 = 1e-4;
/// W2: number of steps of the reference run.
pub const W2_STEPS: usize = 100;

/// W2: the JAX reference's objective after 100 steps, for the chain lengths benchmarked.
pub fn w2_final_objective(boxes: usize) -> f64 {
    match boxes {
        1_000 => 1117.62417503,
        100_000 => 111540.610927,
        1_000_000 => 1115385.94504,
        other => panic!("no reference objective for a chain of {other} boxes"),
    }
}

/// The tolerance of the comparisons with the JAX reference. The references are printed
/// with 12 significant digits, so 1e-9 relative is well above their rounding.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Panics unless `value` agrees with `reference` to [`RELATIVE_TOLERANCE`].
pub fn check_close(what: &str, value: f64, reference: f64) {
    let relative = (value - reference).abs() / reference.abs().max(f64::MIN_POSITIVE);
    assert!(
        relative <= RELATIVE_TOLERANCE,
        "{what}: objective {value:.12e} differs from the reference {reference:.12e} \
         (relative {relative:.2e} > {RELATIVE_TOLERANCE:e})"
    );
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The `.opt` file of W2 with `boxes` Rosenbrock boxes.
pub fn w2_file(boxes: usize) -> PathBuf {
    repo_path(&format!("bench/w2_{boxes}.opt"))
}

/// The `.opt` file of W1.
pub fn w1_file() -> PathBuf {
    repo_path("bench/w1.opt")
}

/// catopt's compiled run of a workload: what `catopt run` does between compiling the file
/// and printing the result, without the observer (no trace, no progress bar).
pub struct CatoptRun {
    /// The plan with its buffers and backend.
    pub executor: Executor,
    /// The current iterate.
    pub values: Vec<f64>,
    /// The next iterate (swapped with `values` after each step).
    next: Vec<f64>,
    /// The initial point (to restart).
    pub initial_values: Vec<f64>,
    /// The step size.
    pub learning_rate: f64,
}

impl CatoptRun {
    /// Parses, checks, lowers and plans `file` (the work `catopt run` reports as
    /// `compile_seconds`), with `backend`.
    pub fn compile(file: &Path, backend: Backend, learning_rate: f64) -> CatoptRun {
        let outcome = check_file(file);
        let program = outcome.program.unwrap_or_else(|| {
            panic!(
                "{} does not check:\n{}",
                file.display(),
                outcome.report.to_plain_string()
            )
        });
        let id = program
            .solves
            .first()
            .map(|s| s.composite)
            .expect("the workload files have a solve block");
        let problem = lower(&program, id, None)
            .unwrap_or_else(|_| panic!("{} does not lower", file.display()));
        let plan = Plan::for_problem(&problem).expect("the workload plans");
        CatoptRun {
            executor: Executor::new(Arc::new(plan), backend),
            values: problem.initial_values.clone(),
            next: vec![0.0; problem.initial_values.len()],
            initial_values: problem.initial_values,
            learning_rate,
        }
    }

    /// Back to the initial point.
    pub fn restart(&mut self) {
        self.values.copy_from_slice(&self.initial_values);
    }

    /// One step of distributed gradient descent, as the solver (`run::solver::solve`)
    /// takes it: evaluate every box, scatter-add the gradient and propose
    /// z - lr * grad in the same pass, then swap the proposal in. Returns the evaluation
    /// at the iterate before the update.
    #[inline]
    pub fn step(&mut self) -> Evaluation {
        let evaluation = self.executor.evaluate_and_propose(
            &self.values,
            Proposal::Gd {
                lr: self.learning_rate,
                next: &mut self.next,
            },
        );
        std::mem::swap(&mut self.values, &mut self.next);
        evaluation
    }

    /// The objective at the current iterate.
    pub fn objective(&mut self) -> f64 {
        self.executor.evaluate(&self.values).objective
    }
}

/// Restarts `solver` and runs `step` `steps` times, `repetitions` times, and returns the
/// median seconds per step (as the JAX references time their runs).
pub fn median_seconds_per_step<S>(
    solver: &mut S,
    repetitions: usize,
    steps: usize,
    restart: impl Fn(&mut S),
    step: impl Fn(&mut S),
) -> f64 {
    let mut times: Vec<f64> = (0..repetitions.max(1))
        .map(|_| {
            restart(solver);
            let started = Instant::now();
            for _ in 0..steps {
                step(solver);
            }
            started.elapsed().as_secs_f64() / steps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Reads a CSV file of numbers (rows of comma-separated values) into row-major order,
/// with the number of rows and columns.
pub fn read_csv(path: &Path) -> (Vec<f64>, usize, usize) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut values = Vec::new();
    let mut rows = 0;
    let mut columns = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let before = values.len();
        values.extend(line.split(',').map(|field| {
            field
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{}: `{field}` is not a number: {e}", path.display()))
        }));
        let width = values.len() - before;
        assert!(
            rows == 0 || width == columns,
            "{}: ragged rows",
            path.display()
        );
        columns = width;
        rows += 1;
    }
    (values, rows, columns)
}
