//! `catopt run FILE`: solve a composite by distributed gradient descent.

mod minibatch;
mod observer;

use observer::RunObserver;

use super::checkpoint::{MethodRecord, StateLayout};
use super::output::{apply_values, values_text, ValuesView, WithValues};
use super::render::{print_report, OutputFile};
use super::settings::{DataPerStep, Overrides, Settings};
use super::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK};
use crate::check::program::{CompositeId, Program, Solve};
use crate::diagnostic::Report;
use crate::lower::{lower, Goal, MinibatchSpec, NamedVariable, Problem};
use crate::run::backend::Backend;
use crate::run::executor::{Evaluation, Executor};
use crate::run::method::{Method, StepStats};
use crate::run::plan::Plan;
use crate::run::solver::{solve, Divergence, DivergenceCause, Outcome, SolverState, StopReason};
use crate::run::transport::Transport;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Backends for `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// One thread, the reference.
    Serial,
    /// A thread pool (rayon); the default.
    Threads,
    /// One process per rank, launched by `mpirun` or `srun` (needs the `mpi` feature).
    Mpi,
}

/// Output formats for `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human summary.
    Text,
    /// One JSON object on stdout (schema in docs/cli.md).
    Json,
}

/// The arguments of `catopt run`.
#[derive(Args, Debug, Clone)]
#[command(after_help = super::settings::method_help())]
pub struct RunArgs {
    /// The .opt file.
    pub file: PathBuf,
    /// The composite to solve (default: the one with a solve block, or the only one).
    #[arg(long)]
    pub composite: Option<String>,
    /// Where data files may be read from.
    #[command(flatten)]
    pub data: super::DataArgs,
    /// At most this many updates (overrides `steps`).
    #[arg(long)]
    pub steps: Option<u64>,
    /// The step size (overrides the method's `lr`).
    #[arg(long)]
    pub lr: Option<f64>,
    /// The optimiser, as in a solve block: `adam` or 'adam(lr = 0.01, beta1 = 0.8)'
    /// (overrides `method`; the list is below).
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// The momentum coefficient of momentum and nesterov (default 0.9).
    #[arg(long)]
    pub beta: Option<f64>,
    /// The step-size schedule: constant, 'log(T)', 'cosine(T)', inv_sqrt,
    /// 'step(every, factor)' (overrides `schedule`).
    #[arg(long, value_name = "SCHEDULE")]
    pub schedule: Option<String>,
    /// Stop when the gradient norm falls to or below this (overrides `tolerance`).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Stop when the relative objective change falls to or below this.
    #[arg(long)]
    pub rel_tolerance: Option<f64>,
    /// Seed for `normal(...)` initial values and minibatch draws (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Rows drawn per box and step from the data marked `sample` (overrides `batch`).
    #[arg(long, value_name = "B")]
    pub batch: Option<u64>,
    /// How minibatches are drawn: shuffle (each epoch a permutation) or replace
    /// (overrides `sampling`).
    #[arg(long, value_name = "ORDER")]
    pub sampling: Option<String>,
    /// In a minibatch run, trace the full objective every N steps (overrides `full_every`).
    #[arg(long, value_name = "N")]
    pub full_every: Option<u64>,
    /// Where boxes are evaluated.
    #[arg(long, value_enum, default_value_t = BackendChoice::Threads)]
    pub backend: BackendChoice,
    /// Worker threads for the threads backend, 1 to 1024 (default: all cores; the mpi
    /// backend runs one thread per rank).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also report inner junctions and every private variable (`label.var`) on stdout
    /// (`--output` always writes them).
    #[arg(long)]
    pub all: bool,
    /// Write one CSV row per step (step, objective, gradient norm).
    #[arg(long, value_name = "FILE.csv")]
    pub trace: Option<PathBuf>,
    /// With --trace, add one column per box with its own objective.
    #[arg(long, requires = "trace")]
    pub trace_boxes: bool,
    /// Write the final values as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub output: Option<PathBuf>,
    /// Start from values saved by --output (names not in the file keep their initial values).
    #[arg(long, value_name = "FILE.json")]
    pub init: Option<PathBuf>,
    /// Write the full solver state to this file every --checkpoint-every steps (atomically).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// How often to checkpoint (at least 1).
    #[arg(long, default_value_t = 100, requires = "checkpoint",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// Continue a run from a checkpoint (`--steps` counts from the original start).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Plot objective and gradient norm per step (log scale) into FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE.svg|png")]
    pub plot: Option<PathBuf>,
    /// Replace output files that are write-protected (mode without any write bit).
    #[arg(long)]
    pub force: bool,
    /// After the run, evaluate the composite's `report` block at the final values and print
    /// it (as `catopt eval` would from an --output file).
    #[arg(long)]
    pub report: bool,
}

/// The most worker threads `--threads` accepts.
pub const MAX_THREADS: usize = 1024;

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "--threads must be a whole number from 1 to {MAX_THREADS} (leave it out to use all cores)"
        )),
    }
}

impl RunArgs {
    /// The output files of the run, with the flags that name them.
    fn output_files(&self) -> Vec<OutputFile<'_>> {
        let flags = [
            (&self.output, "--output", true),
            (&self.trace, "--trace", false),
            (&self.checkpoint, "--checkpoint", false),
            (&self.plot, "--plot", false),
        ];
        flags
            .into_iter()
            .filter_map(|(path, what, stdout_ok)| {
                Some(OutputFile {
                    path: path.as_deref()?,
                    what,
                    force: self.force,
                    stdout_ok,
                })
            })
            .collect()
    }

    fn output_file(&self, what: &str) -> Option<OutputFile<'_>> {
        self.output_files().into_iter().find(|o| o.what == what)
    }
}

/// Runs `catopt run` and returns the exit code.
pub fn run(args: &RunArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(Failure::Reported) => EXIT_BAD_INPUT,
        Err(Failure::Message(message)) => {
            crate::warn_line!("error: {message}");
            EXIT_BAD_INPUT
        }
    }
}

/// Why a command failed.
pub enum Failure {
    /// Diagnostics were already printed.
    Reported,
    /// A plain message (arguments, files).
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

fn settings(args: &RunArgs, solve: Option<&Solve>) -> Result<Settings, String> {
    super::settings::resolve(
        &Overrides {
            method: args.method.as_deref(),
            lr: args.lr,
            beta: args.beta,
            schedule: args.schedule.as_deref(),
            steps: args.steps,
            tolerance: args.tolerance,
            rel_tolerance: args.rel_tolerance,
            batch: args.batch,
            sampling: args.sampling.as_deref(),
            full_every: args.full_every,
        },
        solve,
    )
}

/// Chooses the composite: by name, or the one with a solve block, or the only one.
pub fn choose_composite(program: &Program, requested: Option<&str>) -> Result<CompositeId, String> {
    let names = || {
        program
            .composites
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = requested {
        return program
            .composite(name)
            .map(|(id, _)| id)
            .ok_or_else(|| format!("no composite named `{name}`; the file defines: {}", names()));
    }
    if let Some(solve) = program.solves.first() {
        return Ok(solve.composite);
    }
    match program.composites.len() {
        1 => Ok(CompositeId(0)),
        0 => Err("the file defines no composite to run; add `composite NAME() { ... }`".into()),
        _ => Err(format!(
            "the file defines several composites ({}) and no solve block; choose one with --composite",
            names()
        )),
    }
}

/// Checks and lowers a file, printing diagnostics. Shared by `run` and `laws`.
pub fn load_problem(
    file: &Path,
    composite: Option<&str>,
    seed: Option<u64>,
) -> Result<(Program, Problem), Failure> {
    load_problem_with(file, composite, seed, &super::DataArgs::default())
}

/// [`load_problem`] with the data-file flags.
pub fn load_problem_with(
    file: &Path,
    composite: Option<&str>,
    seed: Option<u64>,
    data: &super::DataArgs,
) -> Result<(Program, Problem), Failure> {
    let (program, id) = check_and_choose(file, composite, data)?;
    let problem = lower(&program, id, seed).map_err(|diagnostics| {
        print_report(&Report {
            source: program.source.clone(),
            diagnostics,
        });
        Failure::Reported
    })?;
    Ok((program, problem))
}

/// Checks a file, printing diagnostics, and chooses the composite.
fn check_and_choose(
    file: &Path,
    composite: Option<&str>,
    data: &super::DataArgs,
) -> Result<(Program, CompositeId), Failure> {
    let outcome = crate::check::check_file_with(file, &data.options());
    print_report(&outcome.report);
    let Some(program) = outcome.program else {
        return Err(Failure::Reported);
    };
    let id = choose_composite(&program, composite)?;
    Ok((program, id))
}

/// Reads a values file written by `--output` (or its `values` object alone) into `state`,
/// bounded by what this problem's values can take: the `--init` file of `run` and the
/// `--values` file of `eval`. Returns the `values` object (names as written).
pub fn read_values_file(
    path: &Path,
    what: &str,
    problem: &Problem,
    state: &mut [f64],
) -> Result<Map<String, Value>, String> {
    let limit = (1 << 20) + 256 * problem.variable_count() as u64;
    let bytes = super::checkpoint::read_bounded(path, what, limit)?;
    let mut json: Value = super::output::parse_json_strict(&bytes)
        .map_err(|e| format!("{what} {} is not valid JSON: {e}", path.display()))?;
    // The `values` object of an --output file, or a bare object of values.
    let values = match json.get_mut("values") {
        Some(Value::Object(values)) => std::mem::take(values),
        _ => match json {
            Value::Object(values) => values,
            _ => return Err(format!("{what} {} has no `values` object", path.display())),
        },
    };
    apply_values(&problem.all_variables(), &values, state)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    Ok(values)
}

/// What a run starts from: everything read and compiled before any numeric work.
struct Prepared {
    problem: Problem,
    settings: Settings,
    method: Box<dyn Method>,
    state: SolverState,
    plan: Plan,
    /// A minibatch run's full data (its objective in the trace and at the end).
    full_data: Option<minibatch::FullData>,
    /// With `--report`: the typed program, kept for its report block and data.
    report: Option<Program>,
}

/// Reads the file, the settings and the starting point, and compiles the plan.
fn prepare(args: &RunArgs) -> Result<Prepared, Failure> {
    let (program, id) = check_and_choose(&args.file, args.composite.as_deref(), &args.data)?;
    let solve_block = program.solves.iter().find(|s| s.composite == id);
    let settings = settings(args, solve_block)?;
    let (problem, minibatch_plan, full_data) = match settings.data {
        DataPerStep::Full => {
            let problem = lower(&program, id, args.seed).map_err(|diagnostics| {
                print_report(&Report {
                    source: program.source.clone(),
                    diagnostics,
                });
                Failure::Reported
            })?;
            (problem, None, None)
        }
        DataPerStep::Minibatch {
            batch,
            order,
            full_every,
        } => {
            let spec = MinibatchSpec {
                batch,
                order,
                // The draws' seed: --seed, else the solve block's, else 0 (as `normal`'s).
                seed: args.seed.or(solve_block.and_then(|s| s.seed)).unwrap_or(0),
            };
            let run = minibatch::MinibatchRun { spec, full_every };
            let (problem, plan, full) =
                minibatch::lower_minibatch_run(&program, id, args.seed, run)?;
            (problem, Some(plan), Some(full))
        }
    };
    // The method's own state (a --method may differ from the solve block's).
    let bytes = problem.memory_estimate_bytes as f64
        + settings.method.state_bytes_per_variable() as f64 * problem.variable_count() as f64;
    let limit = args.data.options().memory_limit_bytes;
    if bytes > limit as f64 {
        return Err(Failure::Message(format!(
            "{} would need about {:.1} GiB for this problem's {} variables, more than the limit \
             of {:.1} GiB\n  help: choose a method that keeps less state per variable (gd, \
             momentum), or a smaller `memory`",
            settings.method.describe(),
            bytes / f64::from(1u32 << 30),
            problem.variable_count(),
            limit as f64 / f64::from(1u32 << 30)
        )));
    }
    let mut method = crate::run::method::build_with(
        &settings.method,
        settings.schedule,
        &crate::run::method::MethodContext::for_problem(&problem),
    )?;
    // The typed program is no longer needed (unless --report evaluates its report block
    // after the run): free it before the plan is built.
    let report = if args.report {
        if !program
            .reports
            .iter()
            .any(|r| r.composite == problem.composite_id)
        {
            return Err(Failure::Message(format!(
                "--report: composite `{0}` has no report block\n  help: add `report {0} {{ name = expression; }}` (docs/language.md, \"Reports\")",
                program.composites[problem.composite_id.0 as usize].name
            )));
        }
        Some(program)
    } else {
        drop(program);
        None
    };
    // Starting point: initial values, then --init, then --resume.
    let mut state = SolverState::new(problem.initial_values.clone());
    if let Some(path) = &args.init {
        read_values_file(path, "--init file", &problem, &mut state.values)?;
    }
    if let Some(path) = &args.resume {
        let memory;
        (state, memory) = super::checkpoint::read_checkpoint(
            path,
            &problem,
            StateLayout::of(&*method),
            MethodRecord::of(&settings.method, &settings.schedule),
            settings.method.state_bytes_per_variable(),
        )?;
        method
            .restore_memory(&memory)
            .map_err(|e| format!("cannot resume from {}: {e}", path.display()))?;
    }
    let plan = match minibatch_plan {
        Some(plan) => plan,
        None => Plan::for_problem(&problem).map_err(|e| e.to_string())?,
    };
    Ok(Prepared {
        problem,
        settings,
        method,
        state,
        plan,
        full_data,
        report,
    })
}

/// The MPI transport for `--backend mpi` (MPI is initialised here, before anything else).
fn open_transport(args: &RunArgs) -> Result<Option<Rc<dyn Transport>>, Failure> {
    if args.backend != BackendChoice::Mpi {
        return Ok(None);
    }
    if args.threads.is_some() {
        return Err(Failure::Message(
            "--threads applies to --backend threads; with --backend mpi, start more ranks (mpirun -n N)".into(),
        ));
    }
    #[cfg(feature = "mpi")]
    {
        let transport = crate::run::mpi::MpiTransport::initialise()?;
        Ok(Some(Rc::new(transport)))
    }
    #[cfg(not(feature = "mpi"))]
    Err(Failure::Message(
        "this catopt was built without MPI support; build it with `cargo build --release --features mpi` (see docs/distributed.md)".into(),
    ))
}

/// On a distributed run, makes every rank agree on whether a setup step failed anywhere:
/// the first failing rank reports (rank 0 as usual, another rank with its number), the
/// others stay silent, and all return an error, so no rank waits for the others forever.
fn agree<T>(transport: Option<&dyn Transport>, outcome: Result<T, Failure>) -> Result<T, Failure> {
    let Some(transport) = transport else {
        return outcome;
    };
    let rank = transport.rank() as u64;
    let first_failure = transport.min(if outcome.is_err() { rank } else { u64::MAX });
    match outcome {
        Ok(value) if first_failure == u64::MAX => Ok(value),
        Err(failure) if first_failure == rank && rank != 0 => {
            let prefix = format!("rank {rank} of {}", transport.ranks());
            let captured = super::render::take_captured_diagnostics();
            if !captured.is_empty() {
                super::render::print_stderr(&format!("{prefix}:\n{captured}"));
            }
            Err(match failure {
                Failure::Message(message) => Failure::Message(format!("{prefix}: {message}")),
                Failure::Reported => Failure::Reported,
            })
        }
        Err(failure) if first_failure == rank => Err(failure),
        _ => Err(Failure::Reported),
    }
}

fn run_inner(args: &RunArgs) -> Result<i32, Failure> {
    let started = Instant::now();
    let transport = open_transport(args)?;
    let leader = transport.as_ref().map_or(true, |t| t.rank() == 0);
    if !leader {
        super::render::capture_diagnostics();
    }
    let Prepared {
        problem,
        settings,
        mut method,
        mut state,
        plan,
        full_data,
        report: report_program,
    } = agree(transport.as_deref(), prepare(args))?;
    let variables = if args.all {
        problem.all_variables()
    } else {
        problem.top_level_variables()
    };
    let backend = match (&transport, args.backend) {
        (Some(transport), _) => Backend::Distributed(transport.clone()),
        (None, BackendChoice::Threads) => Backend::threads(args.threads.unwrap_or(0))?,
        (None, _) => Backend::serial(),
    };
    let backend_name = backend.name();
    let thread_count = backend.thread_count();
    let ranks = backend.ranks();
    let mut executor = Executor::new(Arc::new(plan), backend.clone());
    if args.trace_boxes {
        executor.record_box_values();
    }
    executor.calibrate(&state.values);
    let full_objective = full_data
        .map(|data| minibatch::FullObjective::new(data, backend, &executor))
        .transpose()?;
    let compile_seconds = started.elapsed().as_secs_f64();

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // Failing to install the handler (e.g. twice in one process) only loses Ctrl-C handling.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    executor.set_interrupt_flag(interrupted.clone());
    let mut observer = agree(
        transport.as_deref(),
        RunObserver::new(
            args,
            &problem,
            &settings,
            StateLayout::of(&*method),
            &state,
            leader,
            full_objective,
        )
        .map_err(Failure::Message),
    )?;
    // From here on the ranks run in lockstep: an error on one rank ends them all at once.
    let abort_on_error = |result: Result<(), String>| -> Result<(), Failure> {
        match (result, &transport) {
            (Err(message), Some(transport)) if transport.ranks() > 1 => {
                crate::warn_line!("error: rank {}: {message}", transport.rank());
                transport.abort(EXIT_BAD_INPUT)
            }
            (result, _) => result.map_err(Failure::Message),
        }
    };
    let solve_started = Instant::now();
    let start_step = state.step;
    let outcome = solve(
        &mut executor,
        &mut *method,
        settings.stop,
        &mut state,
        &mut observer,
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(message) => {
            abort_on_error(Err(message))?;
            unreachable!("an error is returned or the job aborted")
        }
    };
    let seconds = solve_started.elapsed().as_secs_f64();
    // A minibatch run reports the full objective at the final iterate (every rank takes
    // part; each reads its own coordinates, current before they are collected).
    let mut full_objective = observer.take_full_objective();
    let full_evaluation = full_objective
        .as_mut()
        .map(|full| full.evaluate(&state.values));
    // Rank 0 reports: it collects the other ranks' coordinates.
    executor.collect_on_first_rank(&mut state.values);
    for vector in &mut state.vectors {
        executor.collect_on_first_rank(vector);
    }
    // The method's own memory (lbfgs's pairs), for a checkpoint at the end.
    let mut memory = method.memory();
    for (_, vector) in memory
        .iter_mut()
        .filter(|(_, v)| v.len() == state.values.len())
    {
        executor.collect_on_first_rank(vector);
    }
    // Per gradient evaluation, as `catopt explain --ranks N` predicts (a line search's value-only
    // trials are counted apart).
    let bytes_per_step =
        executor.bytes_sent_per_evaluation(outcome.evaluations - executor.value_evaluations());
    let line_search_bytes = executor.line_search_bytes_sent();
    let communication_seconds = executor.communication_seconds();
    let steps_done = state.step - start_step;
    let exit_code = if matches!(
        outcome.stop_reason,
        StopReason::Diverged | StopReason::NoProgress
    ) {
        EXIT_DIVERGED
    } else if outcome.stop_reason == StopReason::Interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    };
    if !leader {
        return Ok(exit_code);
    }
    // Every output is attempted even if another one fails (a full disk); the failures are
    // reported after the results and make the exit code EXIT_OUTPUT_FAILED.
    let mut lost = observer.finish();
    if let (Some(output), Some(recorder)) = (args.output_file("--plot"), &observer.plot) {
        let title = format!("{}: {}", args.file.display(), settings.method.describe());
        let maximised = problem.goal() == Goal::Maximize;
        if let Err(message) = super::plot::write_plot(&output, &title, recorder, maximised) {
            lost.push(message);
        }
    }
    if outcome.stop_reason == StopReason::Interrupted || interrupted.load(Ordering::SeqCst) {
        if let Err(message) = observer.write_checkpoint(&state, &memory) {
            lost.push(message);
        }
    }
    let diverged = outcome
        .divergence
        .as_ref()
        .map(|d| DivergenceReport::of(d, &outcome, &problem, &settings));
    let report = RunReport {
        file: &args.file,
        problem: &problem,
        settings: &settings,
        outcome: &outcome,
        state: &state,
        variables: &variables,
        seconds,
        compile_seconds,
        steps_done,
        backend: backend_name,
        threads: thread_count,
        ranks,
        bytes_per_step,
        line_search_bytes,
        communication_seconds,
        diverged: diverged.as_ref(),
        stats: method.stats(),
        minibatch: full_objective.as_ref().zip(full_evaluation),
    };
    if let Some(output) = args.output_file("--output") {
        let fields = report.output_fields();
        // Every variable (inner junctions and private `label.var` too, whatever `--all`
        // says), so that `--init` from the file restarts the run from where it ended.
        let every;
        let saved: &[NamedVariable<'_>] = if args.all {
            &variables
        } else {
            every = problem.all_variables();
            &every
        };
        let object = WithValues {
            fields: &fields,
            values: ValuesView {
                variables: saved,
                state: &state.values,
            },
        };
        if let Err(message) = output.write_with(|file| {
            serde_json::to_writer_pretty(&mut *file, &object).map_err(std::io::Error::from)?;
            file.write_all(b"\n")
        }) {
            lost.push(message);
        }
    }
    // --report: the report block at the final values (as `catopt eval` computes it).
    let evaluated = match &report_program {
        Some(program) => {
            let block = program
                .reports
                .iter()
                .find(|r| r.composite == problem.composite_id);
            match block.map(|b| super::eval::report_entries(program, b, &problem, &state.values)) {
                Some(Ok(entries)) => Some(entries),
                Some(Err(diagnostic)) => {
                    print_report(&Report {
                        source: program.source.clone(),
                        diagnostics: vec![*diagnostic],
                    });
                    None
                }
                None => None,
            }
        }
        None => None,
    };
    match args.format {
        Format::Json => {
            let mut fields = report.json();
            if let Some(entries) = &evaluated {
                fields.insert("report".into(), super::eval::report_json(entries));
            }
            super::render::print_json(&WithValues {
                fields: &fields,
                values: report.values_view(),
            })
        }
        Format::Text => {
            let mut text = report.text();
            if let Some(entries) = &evaluated {
                text.push_str(&super::eval::text("report:", entries));
            }
            super::render::print_stdout(&text)
        }
    }
    if let Some(d) = &diverged {
        crate::warn_line!(
            "error[R0001]: the run diverged at step {}: {}.\n  \
             The values reported are {}.\n  \
             help: {}",
            d.step,
            d.message,
            if d.step == state.step {
                format!("the iterate of step {}", state.step)
            } else {
                format!("the last finite iterate (step {})", state.step)
            },
            d.hint
        );
    }
    if let (StopReason::NoProgress, Some(message)) = (outcome.stop_reason, &outcome.message) {
        crate::warn_line!(
            "error[R0002]: {} stopped at step {}: {message}.\n  \
             The values reported are the last accepted iterate.",
            settings.method.name(),
            state.step
        );
    }
    if outcome.stop_reason == StopReason::Interrupted {
        crate::warn_line!(
            "interrupted at step {}: the results so far are reported",
            state.step
        );
    }
    if !lost.is_empty() {
        for message in &lost {
            crate::warn_line!("error: {message}");
        }
        if observer.checkpoint_written {
            if let Some(path) = &args.checkpoint {
                crate::warn_line!(
                    "  the last checkpoint written, {}, is kept: continue with --resume {}",
                    path.display(),
                    path.display()
                );
            }
        }
        return Ok(super::EXIT_OUTPUT_FAILED);
    }
    Ok(exit_code)
}

struct RunReport<'a> {
    file: &'a Path,
    problem: &'a Problem,
    settings: &'a Settings,
    outcome: &'a Outcome,
    state: &'a SolverState,
    variables: &'a [NamedVariable<'a>],
    seconds: f64,
    compile_seconds: f64,
    steps_done: u64,
    backend: &'static str,
    threads: usize,
    ranks: usize,
    bytes_per_step: Option<f64>,
    /// Bytes all ranks sent in line-search trials and reductions (distributed only).
    line_search_bytes: Option<f64>,
    communication_seconds: Option<f64>,
    diverged: Option<&'a DivergenceReport>,
    /// The method's step sizes and line-search trials.
    stats: StepStats,
    /// A minibatch run's full objective, with its evaluation at the final iterate.
    minibatch: Option<(&'a minibatch::FullObjective, Evaluation)>,
}

impl RunReport<'_> {
    fn steps_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.steps_done as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The evaluation reported: at the final iterate, of the full objective in a
    /// minibatch run.
    fn evaluation(&self) -> Evaluation {
        match self.minibatch {
            Some((_, full)) => full,
            None => self.outcome.evaluation,
        }
    }

    /// The final objective as the user wrote it (`maximize f` reports `f`, not `-f`).
    fn objective(&self) -> f64 {
        self.problem
            .objective_as_written(self.evaluation().objective)
    }

    fn values_view(&self) -> ValuesView<'_, '_> {
        ValuesView {
            variables: self.variables,
            state: &self.state.values,
        }
    }

    /// The fields of the `--output` file, without `values`.
    fn output_fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("composite".into(), json!(self.problem.name));
        fields.insert("step".into(), json!(self.state.step));
        fields
    }

    /// The fields of `--format json`, without `values`.
    fn json(&self) -> Map<String, Value> {
        let mut object = json!({
            "file": self.file.display().to_string(),
            "composite": self.problem.name,
            "method": self.settings.method.to_json(),
            "schedule": self.settings.schedule.describe(),
            "step_sizes": {
                "last": finite_or_null(self.stats.last_step_size),
                "min": finite_or_null(self.stats.min_step_size),
                "max": finite_or_null(self.stats.max_step_size),
            },
            "line_search_trials": self.stats.trials,
            "evaluations": self.outcome.evaluations,
            "steps": self.state.step,
            "stop_reason": self.outcome.stop_reason.as_str(),
            "objective": finite_or_null(self.objective()),
            "goal": self.problem.goal().as_str(),
            "gradient_norm": finite_or_null(self.evaluation().gradient_norm),
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "steps_per_second": self.steps_per_second(),
            "backend": self.backend,
            "threads": self.threads,
            "variables": self.problem.variable_count(),
            "boxes": self.problem.diagram.box_count(),
            "box_types": self.problem.box_types.len(),
            "memory_estimate_bytes": self.problem.memory_estimate_bytes
                + self.settings.method.state_bytes_per_variable()
                    * self.problem.variable_count() as u64,
            "peak_memory_bytes": peak_memory_bytes(),
        });
        if let Some(bytes) = self.bytes_per_step {
            object["ranks"] = json!(self.ranks);
            object["bytes_per_step"] = json!(bytes);
            object["line_search_bytes"] = json!(self.line_search_bytes);
            object["communication_seconds"] = json!(self.communication_seconds);
        }
        if let Some((full, _)) = self.minibatch {
            let minibatch_objective = self
                .problem
                .objective_as_written(self.outcome.evaluation.objective);
            for (name, value) in full.json_fields(self.state.step, minibatch_objective) {
                object[name] = value;
            }
        }
        if let Some(d) = self.diverged {
            object["diverged"] = json!({
                "step": d.step,
                "cause": d.cause,
                "box": d.box_name,
                "message": d.message,
                "hint": d.hint,
            });
        }
        if let Some(message) = &self.outcome.message {
            object["message"] = json!(message);
        }
        match object {
            Value::Object(fields) => fields,
            _ => Map::new(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let p = self.problem;
        out.push_str(&format!(
            "catopt run {}: {}\n",
            self.file.display(),
            p.describe()
        ));
        match self.bytes_per_step {
            Some(bytes) => out.push_str(&format!(
                "method {}, backend {} ({} rank{}, {bytes:.0} bytes exchanged per step, \
                 {:.0}% of rank 0's time in communication)\n",
                self.settings.method.describe(),
                self.backend,
                self.ranks,
                if self.ranks == 1 { "" } else { "s" },
                100.0 * self.communication_seconds.unwrap_or(0.0) / self.seconds.max(1e-12)
            )),
            None => out.push_str(&format!(
                "method {}, backend {} ({} thread{})\n",
                self.settings.method.describe(),
                self.backend,
                self.threads,
                if self.threads == 1 { "" } else { "s" }
            )),
        }
        match self.diverged {
            Some(d) if d.step != self.state.step => out.push_str(&format!(
                "diverged at step {}: reporting the last finite iterate, step {}\n",
                d.step, self.state.step
            )),
            Some(d) => out.push_str(&format!("diverged at step {}\n", d.step)),
            None => out.push_str(&format!(
                "stopped after {}: {}\n",
                crate::name::counted(self.state.step as usize, "step"),
                self.outcome.stop_reason.describe()
            )),
        }
        let goal = match self.problem.goal() {
            Goal::Minimize => "",
            Goal::Maximize => " (maximised)",
            Goal::Mixed => " (minimised: the maximize boxes' objectives enter negated)",
        };
        out.push_str(&format!("objective      {:.12e}{goal}\n", self.objective()));
        out.push_str(&format!(
            "gradient norm  {:.6e}\n",
            self.evaluation().gradient_norm
        ));
        if let Some((full, _)) = self.minibatch {
            let minibatch_objective = self
                .problem
                .objective_as_written(self.outcome.evaluation.objective);
            out.push_str(&full.text(self.state.step, minibatch_objective));
        }
        let stats = &self.stats;
        if stats.min_step_size < stats.max_step_size || stats.trials > 0 {
            out.push_str(&format!(
                "step size      last {} (min {}, max {}); {} evaluations{}\n",
                crate::name::short_number(stats.last_step_size),
                crate::name::short_number(stats.min_step_size),
                crate::name::short_number(stats.max_step_size),
                self.outcome.evaluations,
                if stats.trials > 0 {
                    format!(", {} line-search trials", stats.trials)
                } else {
                    String::new()
                }
            ));
        }
        out.push_str(&format!(
            "time           {:.6} s ({:.0} steps/s; compile {:.6} s)\n",
            self.seconds,
            self.steps_per_second(),
            self.compile_seconds
        ));
        out.push_str("values:\n");
        out.push_str(&values_text(self.variables, &self.state.values, 8));
        out
    }
}

/// The process's peak resident memory so far (Linux `VmHWM`), or `None` where unknown.
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn finite_or_null(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// What the report says about a divergence.
struct DivergenceReport {
    /// The step whose evaluation diverged.
    step: u64,
    /// `non_finite_at_start`, `non_finite` or `blowing_up`.
    cause: &'static str,
    /// The box to blame, if one is.
    box_name: Option<String>,
    /// What happened.
    message: String,
    /// What to try.
    hint: String,
}

impl DivergenceReport {
    fn of(
        divergence: &Divergence,
        outcome: &Outcome,
        problem: &Problem,
        settings: &Settings,
    ) -> DivergenceReport {
        let describe_box = |b: usize| {
            let type_name = &problem.box_types[problem.box_type_of[b] as usize].name;
            format!(
                "box `{}` (objective `{type_name}`)",
                problem.diagram.box_name(b)
            )
        };
        let smaller_step = match settings.method.learning_rate() {
            Some(lr) => format!(
                "try a smaller step size, e.g. --lr {}",
                crate::name::short_number(lr / 2.0)
            ),
            None => "start closer to a solution, or scale the problem".into(),
        };
        let non_finite = |at: &str| match (outcome.diverged_box, outcome.diverged_evaluation) {
            (Some(b), _) => format!(
                "{} gives a non-finite objective or gradient {at}",
                describe_box(b)
            ),
            (None, Some(e)) if !e.objective.is_finite() => format!(
                "the sum of the boxes' objectives overflowed {at} (each box's own value is finite)"
            ),
            _ => format!(
                "the gradient overflowed {at} where the boxes' gradients are added on shared \
                 variables (each box's own gradient is finite; norm beyond 1.8e308)"
            ),
        };
        let (cause, message, hint) = match &divergence.cause {
            DivergenceCause::NonFiniteAtStart => (
                "non_finite_at_start",
                non_finite("at the start point"),
                "this is not a step-size problem: the start point is outside the objective's \
                 domain (log or sqrt of a negative number, a division by zero, an overflowing \
                 exp); check the initial values (`init` lines, `var ... = X`, --init)"
                    .to_string(),
            ),
            DivergenceCause::NonFinite => (
                "non_finite",
                non_finite("after the update"),
                smaller_step.clone(),
            ),
            DivergenceCause::BlowingUp {
                start_objective,
                grew_most,
            } => (
                "blowing_up",
                format!(
                    "the objective is blowing up: {} after rising for {} steps, more than {} \
                     times its start ({}){}",
                    crate::name::short_number(outcome.evaluation.objective),
                    crate::run::solver::BLOW_UP_STEPS,
                    crate::name::short_number(crate::run::solver::BLOW_UP_FACTOR),
                    crate::name::short_number(*start_objective),
                    match grew_most {
                        Some((b, before, after)) => format!(
                            "; {} grew most, from {} to {}",
                            describe_box(*b),
                            crate::name::short_number(*before),
                            crate::name::short_number(*after)
                        ),
                        None => String::new(),
                    }
                ),
                smaller_step.clone(),
            ),
        };
        DivergenceReport {
            step: divergence.step,
            cause,
            box_name: outcome
                .diverged_box
                .map(|b| problem.diagram.box_name(b).to_string()),
            message,
            hint,
        }
    }
}
