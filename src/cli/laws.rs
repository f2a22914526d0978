//! `catopt laws FILE`: checks the functor laws on the user's own problem, and the laws of
//! its method by the method's class (see [`crate::laws::methods`]).

use super::run::{load_problem_with, Failure};
use super::settings::{resolve, Overrides};
use super::{EXIT_BAD_INPUT, EXIT_LAW_FAILED, EXIT_OK};
use crate::check::program::Solve;
use crate::laws::methods::{check_per_box, check_runtime_vs_central, MethodChoice, MethodProblem};
use crate::laws::{
    check_distributed_vs_central, check_gd_naturality, check_increments_vs_central, LawReport,
};
use crate::lower::Problem;
use clap::Args;
use std::path::PathBuf;

/// The arguments of `catopt laws`.
#[derive(Args, Debug, Clone)]
pub struct LawsArgs {
    /// The .opt file.
    pub file: PathBuf,
    /// The composite to check (default: as for `catopt run`).
    #[arg(long)]
    pub composite: Option<String>,
    /// Where data files may be read from.
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Random points at which GD naturality is checked.
    #[arg(long, default_value_t = 20)]
    pub cases: usize,
    /// Steps of the distributed and central runs compared.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// The step size of those runs (overrides the method's `lr`; default: the solve
    /// block's, else 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// The method whose laws are checked, written as in a solve block or `catopt run
    /// --method`: `adam` or 'adam(lr = 0.01)' (default: the solve block's, else gd).
    #[arg(long)]
    pub method: Option<String>,
    /// The step-size schedule of the method's runs, as `catopt run --schedule`.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Random points have coordinates uniform in [-radius, radius).
    #[arg(long, default_value_t = 0.5)]
    pub radius: f64,
    /// Seed of the random points.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Relative tolerance of the laws that hold up to rounding.
    #[arg(long, default_value_t = 1e-12)]
    pub tolerance: f64,
}

/// Runs `catopt laws` and returns the exit code (1 if any law fails).
pub fn run(args: &LawsArgs) -> i32 {
    let (program, problem) =
        match load_problem_with(&args.file, args.composite.as_deref(), None, &args.data) {
            Ok(loaded) => loaded,
            Err(Failure::Reported) => return EXIT_BAD_INPUT,
            Err(Failure::Message(message)) => {
                crate::warn_line!("error: {message}");
                return EXIT_BAD_INPUT;
            }
        };
    let solve = program
        .solves
        .iter()
        .find(|s| s.composite == problem.composite_id);
    let method = match method_of(args, solve, &problem) {
        Ok(method) => method,
        Err(message) => {
            crate::warn_line!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    // The category core's laws are gradient descent's: with the method's lr, if it has one.
    let lr = method.config.learning_rate().unwrap_or(DEFAULT_LR);
    super::render::print_stdout(&format!(
        "catopt laws {}: {}\nmethod {} (class {}); gradient-descent laws with lr = {lr}\n",
        args.file.display(),
        problem.describe(),
        method.describe(),
        method.config.spec.class.as_str(),
    ));
    match check_all(&problem, args, lr, &method) {
        Ok(checks) => {
            let mut failed = false;
            for (report, kind) in &checks {
                failed |= !report.passed;
                let line = match kind {
                    Kind::Law => format!(
                        "{}  {:<40} max deviation {:.3e} (tolerance {:.0e}, {} samples)\n      {}\n",
                        if report.passed { "PASS" } else { "FAIL" },
                        report.name,
                        report.max_deviation,
                        report.tolerance,
                        report.samples,
                        report.detail
                    ),
                    Kind::Measurement => format!(
                        "DIFF  {:<40} relative difference {:.3e} (reported, not a law)\n      {}\n",
                        report.name, report.max_deviation, report.detail
                    ),
                };
                super::render::print_stdout(&line);
            }
            if failed {
                EXIT_LAW_FAILED
            } else {
                EXIT_OK
            }
        }
        Err(message) => {
            crate::warn_line!("error: {message}");
            EXIT_BAD_INPUT
        }
    }
}

/// The step size when neither the solve block, `--method` nor `--lr` gives one.
const DEFAULT_LR: f64 = 1e-3;

/// The method of the laws: the solve block's, overridden by `--method`, `--lr`,
/// `--schedule` (as `catopt run` resolves them); `lr = 1e-3` when none is given.
fn method_of(
    args: &LawsArgs,
    solve: Option<&Solve>,
    problem: &Problem,
) -> Result<MethodChoice, String> {
    let flags = |lr: Option<f64>| Overrides {
        method: args.method.as_deref(),
        lr,
        schedule: args.schedule.as_deref(),
        steps: Some(args.steps as u64),
        ..Overrides::default()
    };
    let settings = resolve(&flags(args.lr), solve).or_else(|error| match args.lr {
        // No step size anywhere: the default, if the method takes one.
        None => resolve(&flags(Some(DEFAULT_LR)), solve).map_err(|_| error),
        Some(_) => Err(error),
    })?;
    let context = crate::run::method::MethodContext::for_problem(problem);
    // Refused before anything is printed: a method that cannot be built.
    crate::run::method::build_with(&settings.method, settings.schedule, &context)?;
    Ok(MethodChoice {
        config: settings.method,
        schedule: settings.schedule,
        context,
    })
}

/// Whether a report is a law (may fail) or a measurement (reported only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A law: exit code 1 if it fails.
    Law,
    /// A measured difference, not a law.
    Measurement,
}

/// Every law check on `problem`: gradient descent's laws of the category core (with step
/// size `lr`), then the laws of `method` by its class ([`crate::laws::methods`]).
pub fn check_all(
    problem: &Problem,
    args: &LawsArgs,
    lr: f64,
    method: &MethodChoice,
) -> Result<Vec<(LawReport, Kind)>, String> {
    let diagram = &problem.diagram;
    let types = &problem.open_box_types;
    let type_of = &problem.open_box_type_of;
    let start = &problem.initial_values;
    let mut reports = Vec::new();
    let naturality = check_gd_naturality(
        diagram,
        types,
        type_of,
        args.cases,
        args.seed,
        args.radius,
        args.tolerance,
    )
    .map_err(|e| e.to_string())?;
    reports.push((naturality, Kind::Law));
    reports.push((
        check_distributed_vs_central(diagram, types, type_of, start, lr, args.steps)
            .map_err(|e| e.to_string())?,
        Kind::Law,
    ));
    reports.push((
        check_increments_vs_central(
            diagram,
            types,
            type_of,
            start,
            lr,
            args.steps,
            args.tolerance,
        )
        .map_err(|e| e.to_string())?,
        Kind::Law,
    ));
    let compiled = MethodProblem::of_problem(problem);
    let steps = args.steps as u64;
    for report in check_runtime_vs_central(&compiled, method, start, steps, args.tolerance)? {
        reports.push((report, Kind::Law));
    }
    let (per_box, is_law) = check_per_box(&compiled, method, start, steps, args.tolerance)?;
    reports.push((per_box, if is_law { Kind::Law } else { Kind::Measurement }));
    Ok(reports)
}
