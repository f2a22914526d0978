//! The experiments' runs: a `.opt` file solved in this process through the library, as
//! `catopt run` solves it (the solve block's settings, overridden as by `--method`,
//! `--schedule`, `--batch`, `--sampling`, `--steps`, `--seed`), recording the full objective
//! every `full_every` steps and evaluating the file's `report` block at the end.

// Each experiment uses part of this module.
#![allow(dead_code)]
use catopt::check::program::{CompositeId, Program};
use catopt::check::{check_file_with, CheckOptions};
use catopt::cli::settings::{resolve, DataPerStep, Overrides};
use catopt::lower::{lower_with, MinibatchSpec, Problem, SampledRows};
use catopt::run::backend::Backend;
use catopt::run::executor::Executor;
use catopt::run::method::{build_with, MethodContext};
use catopt::run::plan::Plan;
use catopt::run::solver::{solve, Observer, SolverState, StepInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checked `.opt` file and the composite its first solve block names.
pub struct Loaded {
    program: Program,
    composite: CompositeId,
}

impl Loaded {
    /// Checks `path` (its data read relative to its folder).
    pub fn new(path: &Path) -> Result<Loaded, String> {
        let outcome = check_file_with(path, &CheckOptions::default());
        let program = outcome
            .program
            .ok_or_else(|| format!("{} does not check:\n{:?}", path.display(), outcome.report))?;
        let composite = program
            .solves
            .first()
            .map(|s| s.composite)
            .ok_or_else(|| format!("{} has no solve block", path.display()))?;
        Ok(Loaded { program, composite })
    }
}

/// What one run overrides in the solve block (`None`: the block's setting).
#[derive(Clone, Debug, Default)]
pub struct RunSpec {
    /// As `--method`.
    pub method: Option<String>,
    /// As `--schedule`.
    pub schedule: Option<String>,
    /// As `--batch`.
    pub batch: Option<u64>,
    /// As `--sampling`.
    pub sampling: Option<String>,
    /// As `--steps`.
    pub steps: Option<u64>,
    /// As `--seed`: the initial values' and the minibatch draws' seed.
    pub seed: u64,
    /// The full objective is recorded every this many steps (from step 0).
    pub full_every: u64,
    /// Stop as soon as a recorded full objective is at or below this fraction of the first.
    pub stop_below: Option<f64>,
}

/// What one run gives.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// (step, full objective) every `full_every` steps, and at the last step.
    pub trace: Vec<(u64, f64)>,
    /// The full objective at the final iterate.
    pub objective: f64,
    /// Steps done.
    pub steps: u64,
    /// Why the run stopped: `max_steps`, `interrupted` (the target or [`DIVERGED`]), ...
    pub stop_reason: &'static str,
    /// The report block's printed lines at the final iterate (empty without one).
    pub report: Vec<(String, f64)>,
}

/// A run stops when its full objective is above this many times its first (or not a
/// number): a minibatch run's objective does not rise at every step, so the solver's own
/// blow-up rule may never fire.
pub const DIVERGED: f64 = 1e6;

/// Records the full objective at the iterate every `every` steps.
struct FullTrace {
    executor: Executor,
    every: u64,
    stop_below: Option<f64>,
    trace: Vec<(u64, f64)>,
}

impl Observer for FullTrace {
    fn observe(&mut self, info: &StepInfo<'_>) -> Result<bool, String> {
        if info.step % self.every != 0 {
            return Ok(true);
        }
        let value = self.executor.evaluate_value(&info.state.values);
        self.trace.push((info.step, value));
        let first = self.trace[0].1;
        let diverging = value.is_nan() || value > DIVERGED * first.abs().max(1.0);
        Ok(!self.stop_below.is_some_and(|t| value <= t * first) && !diverging)
    }
}

fn lowered(loaded: &Loaded, seed: u64, rows: SampledRows) -> Result<Problem, String> {
    lower_with(&loaded.program, loaded.composite, Some(seed), rows)
        .map_err(|d| format!("cannot lower: {d:?}"))
}

/// Runs `loaded`'s composite with `spec`'s settings on the serial backend.
pub fn run(loaded: &Loaded, spec: &RunSpec) -> Result<RunResult, String> {
    let block = loaded
        .program
        .solves
        .iter()
        .find(|s| s.composite == loaded.composite);
    let settings = resolve(
        &Overrides {
            method: spec.method.as_deref(),
            schedule: spec.schedule.as_deref(),
            steps: spec.steps,
            batch: spec.batch,
            sampling: spec.sampling.as_deref(),
            ..Overrides::default()
        },
        block,
    )?;
    let full = lowered(loaded, spec.seed, SampledRows::All)?;
    let stepped = match settings.data {
        DataPerStep::Full => None,
        DataPerStep::Minibatch { batch, order, .. } => Some(lowered(
            loaded,
            spec.seed,
            SampledRows::Minibatch(MinibatchSpec {
                batch,
                order,
                seed: spec.seed,
            }),
        )?),
    };
    let plan = |p: &Problem| {
        Plan::for_problem(p)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    };
    let full_plan = plan(&full)?;
    let mut executor = Executor::new(
        match &stepped {
            Some(problem) => plan(problem)?,
            None => full_plan.clone(),
        },
        Backend::serial(),
    );
    let mut method = build_with(
        &settings.method,
        settings.schedule,
        &MethodContext::for_problem(&full),
    )?;
    let mut state = SolverState::new(full.initial_values.clone());
    let mut observer = FullTrace {
        executor: Executor::new(full_plan, Backend::serial()),
        every: spec.full_every.max(1),
        stop_below: spec.stop_below,
        trace: Vec::new(),
    };
    let outcome = solve(
        &mut executor,
        &mut *method,
        settings.stop,
        &mut state,
        &mut observer,
    )?;
    let objective = observer.executor.evaluate(&state.values).objective;
    if observer.trace.last().map(|t| t.0) != Some(state.step) {
        observer.trace.push((state.step, objective));
    }
    let report = match loaded
        .program
        .reports
        .iter()
        .find(|r| r.composite == loaded.composite)
    {
        Some(block) => {
            catopt::cli::eval::report_entries(&loaded.program, block, &full, &state.values)
                .map_err(|d| format!("report: {d:?}"))?
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect()
        }
        None => Vec::new(),
    };
    Ok(RunResult {
        trace: observer.trace,
        objective,
        steps: state.step,
        stop_reason: outcome.stop_reason.as_str(),
        report,
    })
}

/// The mean and the sample standard deviation (0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    mean_sd(values).0
}

/// Parses `--quick` and `--out DIR`.
pub fn arguments() -> Result<(bool, PathBuf), String> {
    let mut quick = false;
    let mut out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => out = args.next().ok_or("--out needs a folder")?.into(),
            other => return Err(format!("unknown argument `{other}` (--quick, --out DIR)")),
        }
    }
    Ok((quick, out))
}
