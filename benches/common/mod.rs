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
use catopt::lower::{lower_with, SampledRows};
use catopt::run::backend::Backend;
use catopt::run::executor::{Evaluation, Executor};
use catopt::run::method::{by_name, Method, StepContext, MAX_VECTORS};
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
/// W1 with Adam: the step size of `bench/reference/adam_w1.py` (optax.adam, other
/// parameters at their defaults, W1_STEPS steps).
pub const W1_ADAM_LR: f64 = 0.01;
/// W1 with Adam: the optax reference's objective after W1_STEPS steps.
pub const W1_ADAM_FINAL_OBJECTIVE: f64 = 0.447280965456;
/// W2 with Adam: the step size (no external reference; timing only).
pub const W2_ADAM_LR: f64 = 1e-3;
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
    /// The method (gd unless [`CatoptRun::with_method`]).
    method: Box<dyn Method>,
    /// The current iterate.
    pub values: Vec<f64>,
    /// The method's other vectors.
    vectors: Vec<Vec<f64>>,
    /// The method's scalars.
    scalars: Vec<f64>,
    /// The proposal (swapped in after each step).
    next_values: Vec<f64>,
    next_vectors: Vec<Vec<f64>>,
    next_scalars: Vec<f64>,
    /// Steps done since the last restart.
    steps: u64,
    /// The initial point (to restart).
    pub initial_values: Vec<f64>,
    /// The step size.
    pub learning_rate: f64,
    /// In a minibatch run: whether each step draws its own minibatch (as `catopt run`
    /// does) or every step reads step 0's (the step without the cost of sampling).
    pub draw_each_step: bool,
}

impl CatoptRun {
    /// Parses, checks, lowers and plans `file` (the work `catopt run` reports as
    /// `compile_seconds`), with `backend`, to run gradient descent with `learning_rate`.
    pub fn compile(file: &Path, backend: Backend, learning_rate: f64) -> CatoptRun {
        CatoptRun::compile_with(file, backend, learning_rate, SampledRows::AsData)
    }

    /// [`CatoptRun::compile`] with the file's sampled data lowered as `sampled` says
    /// (`SampledRows::Minibatch(..)`: a minibatch run's plan).
    pub fn compile_with(
        file: &Path,
        backend: Backend,
        learning_rate: f64,
        sampled: SampledRows,
    ) -> CatoptRun {
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
        let problem = lower_with(&program, id, None, sampled)
            .unwrap_or_else(|_| panic!("{} does not lower", file.display()));
        let plan = Plan::for_problem(&problem).expect("the workload plans");
        let n = problem.initial_values.len();
        let mut run = CatoptRun {
            executor: Executor::new(Arc::new(plan), backend),
            method: by_name("gd", &[("lr", learning_rate)]).expect("gd"),
            values: problem.initial_values.clone(),
            vectors: Vec::new(),
            scalars: Vec::new(),
            next_values: vec![0.0; n],
            next_vectors: Vec::new(),
            next_scalars: Vec::new(),
            steps: 0,
            initial_values: problem.initial_values,
            learning_rate,
            draw_each_step: true,
        };
        run.restart();
        run
    }

    /// The same run with another method: `with_method("adam", &[("lr", 0.01)])`.
    pub fn with_method(mut self, name: &str, params: &[(&str, f64)]) -> CatoptRun {
        self.method = by_name(name, params).unwrap_or_else(|e| panic!("{name}: {e}"));
        self.restart();
        self
    }

    /// Back to the initial point, with the method's state at its start.
    pub fn restart(&mut self) {
        let n = self.initial_values.len();
        self.values.copy_from_slice(&self.initial_values);
        let vectors = self.method.vectors().len() - 1;
        self.vectors = vec![vec![0.0; n]; vectors];
        self.next_vectors = vec![vec![0.0; n]; vectors];
        self.scalars = vec![0.0; self.method.scalars().len()];
        self.next_scalars = self.scalars.clone();
        self.method
            .start(&self.values, &mut self.vectors, &mut self.scalars);
        self.steps = 0;
    }

    /// One step of the method, as the solver (`run::solver::solve`) takes it: evaluate
    /// every box, scatter-add the gradient and compute the method's update in the same pass,
    /// then swap the proposal in. Returns the evaluation before the update.
    #[inline]
    pub fn step(&mut self) -> Evaluation {
        let count = self.method.vectors().len();
        let mut current: [&[f64]; MAX_VECTORS] = [&[]; MAX_VECTORS];
        current[0] = &self.values;
        for (slot, v) in current[1..].iter_mut().zip(&self.vectors) {
            *slot = v;
        }
        let mut next: [&mut [f64]; MAX_VECTORS] = [&mut [], &mut [], &mut [], &mut []];
        let (first, rest) = next.split_at_mut(1);
        first[0] = &mut self.next_values;
        for (slot, v) in rest.iter_mut().zip(self.next_vectors.iter_mut()) {
            *slot = v;
        }
        if self.draw_each_step {
            self.executor.set_sample_step(self.steps);
        }
        let mut context = StepContext {
            executor: &mut self.executor,
            step: self.steps,
            current: &current[..count],
            current_scalars: &self.scalars,
            next: &mut next[..count],
            next_scalars: &mut self.next_scalars,
            stops_here: &|_| false,
        };
        let evaluation = self.method.propose(&mut context).expect("a step");
        std::mem::swap(&mut self.values, &mut self.next_values);
        std::mem::swap(&mut self.vectors, &mut self.next_vectors);
        std::mem::swap(&mut self.scalars, &mut self.next_scalars);
        self.steps += 1;
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
