//! `catopt laws FILE`: checks the functor laws on the user's own problem.

use super::run::{load_problem_with, Failure};
use super::{EXIT_BAD_INPUT, EXIT_LAW_FAILED, EXIT_OK};
use crate::category::{euler, gradient_flow, iterate};
use crate::laws::check::{relative_deviation, same_bits};
use crate::laws::{
    check_distributed_vs_central, check_gd_naturality, check_increments_vs_central, LawReport,
};
use crate::lower::Problem;
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::plan::Plan;
use crate::run::solver::{solve, NoObserver, SolverState, StopRule};
use crate::run::transport::LocalRanks;
use clap::Args;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

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
    /// The step size of those runs (default: the solve block's, else 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
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
    let lr = args
        .lr
        .or_else(|| {
            program
                .solves
                .iter()
                .find(|s| s.composite == problem.composite_id)
                .and_then(|s| s.method.as_ref())
                .and_then(|m| {
                    m.params.iter().find_map(|(p, v)| match v {
                        crate::method_spec::GivenValue::Number(v) if p == "lr" => Some(*v),
                        _ => None,
                    })
                })
        })
        .unwrap_or(1e-3);
    super::render::print_stdout(&format!(
        "catopt laws {}: {}, lr = {lr}\n",
        args.file.display(),
        problem.describe()
    ));
    match check_all(&problem, args, lr) {
        Ok(reports) => {
            let mut failed = false;
            for report in &reports {
                failed |= !report.passed;
                super::render::print_stdout(&format!(
                    "{}  {:<40} max deviation {:.3e} (tolerance {:.0e}, {} samples)\n      {}\n",
                    if report.passed { "PASS" } else { "FAIL" },
                    report.name,
                    report.max_deviation,
                    report.tolerance,
                    report.samples,
                    report.detail
                ));
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

/// Every law check on `problem`.
pub fn check_all(problem: &Problem, args: &LawsArgs, lr: f64) -> Result<Vec<LawReport>, String> {
    let diagram = &problem.diagram;
    let types = &problem.open_box_types;
    let type_of = &problem.box_type_of;
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
    reports.push(naturality);
    reports.push(
        check_distributed_vs_central(diagram, types, type_of, start, lr, args.steps)
            .map_err(|e| e.to_string())?,
    );
    reports.push(
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
    );
    reports.push(runtime_matches_central(
        problem,
        lr,
        args.steps,
        args.tolerance,
    )?);
    Ok(reports)
}

/// The compiled runtime (plan, batched kernels, serial and threaded backends, and the
/// distributed backend's algorithm with ranks as threads) against central gradient descent
/// on the composite objective of the category core.
fn runtime_matches_central(
    problem: &Problem,
    lr: f64,
    steps: usize,
    tolerance: f64,
) -> Result<LawReport, String> {
    let central = iterate(
        &euler(gradient_flow(&problem.composite), lr),
        &problem.initial_values,
        steps,
    );
    let plan = Arc::new(Plan::for_problem(problem).map_err(|e| e.to_string())?);
    let bitwise = plan.is_in_box_order();
    let mut max_deviation = 0.0f64;
    let mut runs = Vec::new();
    let stop = StopRule {
        max_steps: steps as u64,
        tolerance: None,
        rel_tolerance: None,
    };
    let run = |backend: Backend| -> Result<Vec<f64>, String> {
        let mut executor = Executor::new(plan.clone(), backend);
        let mut state = SolverState::new(problem.initial_values.clone());
        let mut method = crate::run::method::by_name("gd", &[("lr", lr)])?;
        solve(
            &mut executor,
            &mut *method,
            stop,
            &mut state,
            &mut NoObserver,
        )?;
        executor.collect_on_first_rank(&mut state.values);
        Ok(state.values)
    };
    // The distributed backend's algorithm, with ranks as threads of this process.
    let on_ranks = |ranks: usize| -> Result<Vec<f64>, String> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = LocalRanks::new(ranks)
                .into_iter()
                .map(|transport| scope.spawn(|| run(Backend::Distributed(Rc::new(transport)))))
                .collect();
            let mut results = handles
                .into_iter()
                .map(|h| h.join().map_err(|_| "a rank failed".to_string())?);
            results.next().unwrap_or_else(|| Err("no rank".into()))
        })
    };
    let finals: Vec<(&str, Vec<f64>)> = vec![
        ("serial", run(Backend::serial())?),
        ("threads(2)", run(Backend::threads(2)?)?),
        ("threads(3)", run(Backend::threads(3)?)?),
        ("ranks(2)", on_ranks(2)?),
        ("ranks(3)", on_ranks(3)?),
    ];
    for (name, values) in finals {
        let state = SolverState::new(values);
        let deviation = if bitwise {
            central
                .iter()
                .zip(&state.values)
                .map(|(a, b)| {
                    if same_bits(*a, *b) {
                        0.0
                    } else {
                        (a - b).abs().max(f64::MIN_POSITIVE)
                    }
                })
                .fold(0.0, f64::max)
        } else {
            relative_deviation(&central, &state.values)
        };
        max_deviation = max_deviation.max(deviation);
        runs.push(name);
    }
    let allowed = if bitwise { 0.0 } else { tolerance };
    Ok(LawReport {
        name: format!(
            "runtime = central ({})",
            if bitwise { "bitwise" } else { "to rounding" }
        ),
        passed: max_deviation <= allowed,
        max_deviation,
        tolerance: allowed,
        samples: steps,
        detail: format!(
            "{steps} steps of the compiled plan on the {} backends against central gradient descent{}",
            runs.join(", "),
            if bitwise {
                ""
            } else {
                "; box types interleave, so the plan sums in type-grouped order"
            }
        ),
    })
}
