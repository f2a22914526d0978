//! The laws of a method on a composite, by the method's class ([`MethodClass`]):
//!
//! - **runtime = central**, for every method: the compiled plan on the serial, threads(2),
//!   threads(3), ranks(2) and ranks(3) backends against a *central reference*: the same
//!   method driven by the composite's central gradient. The reference runs the method's own
//!   arithmetic (its [`Method`] and update rule) on a plan with one group per box, which
//!   sums the boxes' gradients in box order, exactly as the category core's composite
//!   objective does; [`check_runtime_vs_central`] checks that this gradient is the category
//!   core's bit for bit at every iterate of the reference run. Bitwise when the compiled
//!   plan sums in box order ([`Plan::is_in_box_order`]); otherwise to rounding.
//! - **per-box variant vs composite** ([`per_box_vs_composite`], the variant is
//!   [`super::per_box`]): a law (to rounding) for compositional methods that take their
//!   gradient at `values`; a measured difference, not a law, for coordinatewise and global
//!   methods and for look-ahead methods.

use super::check::{relative_deviation, same_bits, LawReport};
use super::per_box::PerBox;
use super::strategy::RandomComposite;
use crate::category::{oapply, Composite, Open, ReverseDerivative};
use crate::lower::{CompiledBox, Problem};
use crate::method_spec::{MethodClass, MethodConfig, Schedule};
use crate::numerics::{BoxData, CompiledObjective};
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::method::{build_with, MethodContext};
use crate::run::plan::{Plan, PlanInput};
use crate::run::solver::{solve, Observer, SolverState, StepInfo, StopReason, StopRule};
use crate::run::transport::LocalRanks;
use std::rc::Rc;
use std::sync::Arc;

/// A composite with compiled box objectives: what the method laws run on.
#[derive(Clone)]
pub struct MethodProblem {
    /// The category core's composite (its gradient is the central gradient).
    pub composite: Composite<CompiledBox>,
    /// The compiled box types.
    pub box_types: Vec<Arc<CompiledObjective>>,
    /// Box `b` is an instance of `box_types[box_type_of[b]]`.
    pub box_type_of: Vec<u32>,
    /// Each box's data vector (box types with per-box data).
    pub box_data: Arc<BoxData>,
}

impl MethodProblem {
    /// A lowered `.opt` problem.
    pub fn of_problem(problem: &Problem) -> MethodProblem {
        MethodProblem {
            composite: problem.composite.clone(),
            box_types: problem.compiled_box_types(),
            box_type_of: problem.box_type_of.clone(),
            box_data: problem.box_data.clone(),
        }
    }

    /// A random composite of the law tests, its expressions compiled by the numerics module.
    ///
    /// # Errors
    /// If an expression does not compile or the diagram does not compose.
    pub fn of_random(random: &RandomComposite) -> Result<MethodProblem, String> {
        let mut box_types = Vec::new();
        let mut open = Vec::new();
        for t in &random.box_types {
            let compiled = Arc::new(t.objective.compile()?);
            box_types.push(compiled.clone());
            open.push(
                Open::objective(
                    t.port_shapes.clone(),
                    t.portmap.clone(),
                    CompiledBox::new(compiled),
                )
                .map_err(|e| e.to_string())?,
            );
        }
        let composite =
            oapply(&random.diagram, &open, &random.box_type_of).map_err(|e| e.to_string())?;
        Ok(MethodProblem {
            composite,
            box_types,
            box_type_of: random.box_type_of.clone(),
            box_data: Arc::new(BoxData::none()),
        })
    }

    /// The number of coordinates.
    pub fn apex(&self) -> usize {
        self.composite.apex()
    }

    fn input<'a>(
        &'a self,
        box_types: &'a [Arc<CompiledObjective>],
        box_type_of: &'a [u32],
    ) -> PlanInput<'a> {
        PlanInput {
            apex: self.composite.apex(),
            box_types,
            box_type_of,
            local_to_global: self.composite.boxes_to_apex().table(),
            summand_offsets: self.composite.box_offsets(),
            box_data: self.box_data.clone(),
        }
    }

    /// The plan input of the composite as it is (its box types).
    pub fn plan_input(&self) -> PlanInput<'_> {
        self.input(&self.box_types, &self.box_type_of)
    }

    /// The compiled plan, boxes grouped by type (what `catopt run` runs).
    ///
    /// # Errors
    /// If the plan cannot be built.
    pub fn plan(&self) -> Result<Plan, String> {
        Plan::new(&self.plan_input()).map_err(|e| e.to_string())
    }

    /// A plan with one group per box, in box order: it sums the boxes' gradients in box
    /// order, as the category core does (the central reference).
    ///
    /// # Errors
    /// If the plan cannot be built.
    pub fn box_order_plan(&self) -> Result<Plan, String> {
        let types: Vec<Arc<CompiledObjective>> = self
            .box_type_of
            .iter()
            .map(|&t| self.box_types[t as usize].clone())
            .collect();
        let type_of: Vec<u32> = (0..types.len() as u32).collect();
        Plan::new(&self.input(&types, &type_of)).map_err(|e| e.to_string())
    }
}

/// A method with its schedule, as the laws run it.
#[derive(Clone, Debug)]
pub struct MethodChoice {
    /// The resolved method.
    pub config: MethodConfig,
    /// The step-size schedule.
    pub schedule: Schedule,
    /// What the method knows of the problem (the coordinate groups of
    /// `armijo(groups = variables)`).
    pub context: MethodContext,
}

impl MethodChoice {
    /// A method by name and numeric parameters, with the constant schedule.
    ///
    /// # Errors
    /// As [`crate::method_spec::resolve_method`], as a message.
    pub fn by_name(name: &str, params: &[(&str, f64)]) -> Result<MethodChoice, String> {
        let config = crate::method_spec::resolve_numeric(name, params)?;
        Ok(MethodChoice {
            context: MethodContext::default(),
            config,
            schedule: Schedule::Constant,
        })
    }

    /// `adam(lr = 0.01, ...)`, with the schedule if not constant.
    pub fn describe(&self) -> String {
        if self.schedule.is_constant() {
            self.config.describe()
        } else {
            format!(
                "{}, schedule {}",
                self.config.describe(),
                self.schedule.describe()
            )
        }
    }

    /// Whether the per-box variant of this method must equal the composite method: a
    /// compositional method that takes its gradient at `values`.
    ///
    /// # Errors
    /// If the method has no implementation.
    pub fn per_box_is_a_law(&self) -> Result<bool, String> {
        let method = build_with(&self.config, self.schedule, &self.context)?;
        Ok(self.config.spec.class == MethodClass::Compositional && method.evaluation_point() == 0)
    }
}

/// How a run of a method ended (on rank 0 for a distributed backend).
#[derive(Clone, Debug, PartialEq)]
pub struct MethodRun {
    /// The final iterate.
    pub values: Vec<f64>,
    /// The method's other vectors at the end.
    pub vectors: Vec<Vec<f64>>,
    /// Steps taken.
    pub steps: u64,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The points where the gradient was taken, one per iterate (recorded on request).
    pub evaluation_points: Vec<Vec<f64>>,
}

/// Records the evaluation point of every iterate.
struct Recorder {
    at: usize,
    points: Option<Vec<Vec<f64>>>,
}

impl Observer for Recorder {
    fn observe(&mut self, info: &StepInfo<'_>) -> Result<bool, String> {
        if let Some(points) = &mut self.points {
            points.push(if self.at == 0 {
                info.state.values.clone()
            } else {
                info.state.vectors[self.at - 1].clone()
            });
        }
        Ok(true)
    }
}

/// `steps` steps of `method` on `executor` from `start`; the evaluation points recorded if
/// `record`.
///
/// # Errors
/// If the method has no implementation or the run fails.
pub fn run_method(
    executor: &mut Executor,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
    record: bool,
) -> Result<MethodRun, String> {
    let mut built = build_with(&method.config, method.schedule, &method.context)?;
    let mut state = SolverState::new(start.to_vec());
    let mut recorder = Recorder {
        at: built.evaluation_point(),
        points: record.then(Vec::new),
    };
    let stop = StopRule {
        max_steps: steps,
        tolerance: None,
        rel_tolerance: None,
    };
    let outcome = solve(executor, &mut *built, stop, &mut state, &mut recorder)?;
    executor.collect_on_first_rank(&mut state.values);
    for v in &mut state.vectors {
        executor.collect_on_first_rank(v);
    }
    Ok(MethodRun {
        values: state.values,
        vectors: state.vectors,
        steps: state.step,
        stop_reason: outcome.stop_reason,
        evaluation_points: recorder.points.unwrap_or_default(),
    })
}

/// The backends the runtime law runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LawBackend {
    /// The serial backend.
    Serial,
    /// The threads backend with this many workers.
    Threads(usize),
    /// The distributed backend's algorithm with this many ranks, as threads of this process.
    Ranks(usize),
}

impl LawBackend {
    /// The backends of `catopt laws`.
    pub const ALL: [LawBackend; 5] = [
        LawBackend::Serial,
        LawBackend::Threads(2),
        LawBackend::Threads(3),
        LawBackend::Ranks(2),
        LawBackend::Ranks(3),
    ];

    /// `serial`, `threads(2)`, `ranks(3)`.
    pub fn describe(self) -> String {
        match self {
            LawBackend::Serial => "serial".into(),
            LawBackend::Threads(n) => format!("threads({n})"),
            LawBackend::Ranks(n) => format!("ranks({n})"),
        }
    }
}

/// `steps` steps of `method` on `plan` on one backend (rank 0's result for ranks).
///
/// # Errors
/// If a backend cannot be made or a run fails.
pub fn run_on_backend(
    plan: &Arc<Plan>,
    backend: LawBackend,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
) -> Result<MethodRun, String> {
    match backend {
        LawBackend::Serial => run_method(
            &mut Executor::new(plan.clone(), Backend::serial()),
            method,
            start,
            steps,
            false,
        ),
        LawBackend::Threads(n) => run_method(
            &mut Executor::new(plan.clone(), Backend::threads(n)?),
            method,
            start,
            steps,
            false,
        ),
        LawBackend::Ranks(n) => std::thread::scope(|scope| {
            let handles: Vec<_> = LocalRanks::new(n)
                .into_iter()
                .map(|transport| {
                    scope.spawn(move || {
                        let backend = Backend::Distributed(Rc::new(transport));
                        run_method(
                            &mut Executor::new(plan.clone(), backend),
                            method,
                            start,
                            steps,
                            false,
                        )
                    })
                })
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.join().map_err(|_| "a rank panicked".to_string())??);
            }
            results.into_iter().next().ok_or_else(|| "no rank".into())
        }),
    }
}

/// The central reference: `method` driven by the composite's central gradient (a plan in
/// box order, serial), with a report that its gradient at every iterate is the category
/// core's bit for bit.
///
/// # Errors
/// If a plan cannot be built or the run fails.
pub fn run_central(
    problem: &MethodProblem,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
) -> Result<(MethodRun, LawReport), String> {
    let plan = Arc::new(problem.box_order_plan()?);
    let mut executor = Executor::new(plan, Backend::serial());
    let run = run_method(&mut executor, method, start, steps, true)?;
    let n = problem.apex();
    let mut core = vec![0.0; n];
    let mut differing = 0usize;
    let mut max_deviation = 0.0f64;
    for point in &run.evaluation_points {
        executor.evaluate(point);
        problem.composite.reverse(point, 1.0, &mut core);
        for (a, b) in core.iter().zip(executor.gradient()) {
            if !same_bits(*a, *b) {
                differing += 1;
                max_deviation = max_deviation.max((a - b).abs().max(f64::MIN_POSITIVE));
            }
        }
    }
    let report = LawReport {
        name: "central reference = category core gradient".into(),
        passed: differing == 0,
        max_deviation,
        tolerance: 0.0,
        samples: run.evaluation_points.len(),
        detail: format!(
            "the gradient driving the central {} run, against the category core's composite \
             gradient at each of its {} iterates, bit for bit ({differing} entries differ)",
            method.config.name(),
            run.evaluation_points.len()
        ),
    };
    Ok((run, report))
}

/// Runtime = central for `method`: the compiled plan on every backend of
/// [`LawBackend::ALL`] against the central reference ([`run_central`]), bit for bit when
/// the plan sums in box order, else within relative `tolerance`. Returns the reference's
/// own report first.
///
/// # Errors
/// If a plan or backend cannot be built or a run fails.
pub fn check_runtime_vs_central(
    problem: &MethodProblem,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
    tolerance: f64,
) -> Result<[LawReport; 2], String> {
    let (central, reference) = run_central(problem, method, start, steps)?;
    let plan = Arc::new(problem.plan()?);
    let bitwise = plan.is_in_box_order();
    let mut max_deviation = 0.0f64;
    let mut worst = String::new();
    let mut names = Vec::new();
    for backend in LawBackend::ALL {
        let run = run_on_backend(&plan, backend, method, start, steps)?;
        let mut deviation = if bitwise {
            absolute_bit_deviation(&central.values, &run.values)
        } else {
            relative_deviation(&central.values, &run.values)
        };
        for (a, b) in central.vectors.iter().zip(&run.vectors) {
            deviation = deviation.max(if bitwise {
                absolute_bit_deviation(a, b)
            } else {
                relative_deviation(a, b)
            });
        }
        if run.steps != central.steps || run.stop_reason != central.stop_reason {
            deviation = f64::INFINITY;
        }
        if deviation > max_deviation {
            max_deviation = deviation;
            worst = backend.describe();
        }
        names.push(backend.describe());
    }
    let allowed = if bitwise { 0.0 } else { tolerance };
    let runtime = LawReport {
        name: format!(
            "runtime = central ({})",
            if bitwise { "bitwise" } else { "to rounding" }
        ),
        passed: max_deviation <= allowed,
        max_deviation,
        tolerance: allowed,
        samples: steps as usize,
        detail: format!(
            "{steps} steps of {} on the compiled plan on the {} backends against the central \
             reference (iterate and the method's vectors){}{}",
            method.describe(),
            names.join(", "),
            if bitwise {
                String::new()
            } else {
                "; box types interleave, so the plan sums in type-grouped order".into()
            },
            if worst.is_empty() {
                String::new()
            } else {
                format!("; worst: {worst}")
            }
        ),
    };
    Ok([reference, runtime])
}

/// `max |a_i - b_i|` over the entries that differ in their bits (infinite for a NaN).
fn absolute_bit_deviation(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .filter(|(x, y)| !same_bits(**x, **y))
        .map(|(x, y)| (x - y).abs().max(f64::MIN_POSITIVE))
        .fold(
            0.0,
            |m, v| if v.is_nan() { f64::INFINITY } else { m.max(v) },
        )
}

/// The per-box variant against the composite method after the same number of steps.
#[derive(Clone, Debug, PartialEq)]
pub struct PerBoxComparison {
    /// `max_i |x_i - y_i|` between the two final iterates.
    pub max_abs: f64,
    /// [`relative_deviation`] of the two final iterates.
    pub relative: f64,
    /// Steps compared.
    pub steps: u64,
    /// The composite run's final iterate.
    pub composite: Vec<f64>,
    /// The per-box variant's final iterate.
    pub per_box: Vec<f64>,
    /// A box whose method stopped the variant early, and why.
    pub stopped: Option<(usize, String)>,
}

/// Runs the per-box variant ([`super::per_box`]) and the composite method (the central
/// reference) for `steps` steps from `start` and compares the final iterates. If the
/// composite run stops early, both are compared after the steps it took.
///
/// # Errors
/// If a plan cannot be built, the method has no implementation or a run fails.
pub fn per_box_vs_composite(
    problem: &MethodProblem,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
) -> Result<PerBoxComparison, String> {
    let plan = Arc::new(problem.box_order_plan()?);
    let composite = run_method(
        &mut Executor::new(plan, Backend::serial()),
        method,
        start,
        steps,
        false,
    )?;
    let per_box = PerBox::new(
        &problem.plan_input(),
        &method.config,
        method.schedule,
        &method.context,
        start,
    )?
    .run(composite.steps);
    let max_abs = composite
        .values
        .iter()
        .zip(&per_box.values)
        .map(|(a, b)| {
            if same_bits(*a, *b) {
                0.0
            } else {
                (a - b).abs()
            }
        })
        .fold(
            0.0,
            |m: f64, v| if v.is_nan() { f64::INFINITY } else { m.max(v) },
        );
    Ok(PerBoxComparison {
        max_abs,
        relative: relative_deviation(&composite.values, &per_box.values),
        steps: per_box.steps,
        composite: composite.values,
        per_box: per_box.values,
        stopped: per_box.stopped,
    })
}

/// The per-box law or measurement as a report line: a law (within relative `tolerance`)
/// when [`MethodChoice::per_box_is_a_law`], otherwise a measurement that always passes.
///
/// # Errors
/// As [`per_box_vs_composite`].
pub fn check_per_box(
    problem: &MethodProblem,
    method: &MethodChoice,
    start: &[f64],
    steps: u64,
    tolerance: f64,
) -> Result<(LawReport, bool), String> {
    let is_law = method.per_box_is_a_law()?;
    let comparison = per_box_vs_composite(problem, method, start, steps)?;
    let name = method.config.name();
    let stopped = match &comparison.stopped {
        Some((b, reason)) => format!(
            "; box #{b}'s own {name} stopped at step {}: {reason}",
            comparison.steps
        ),
        None => String::new(),
    };
    let what = format!(
        "each box runs {name} on its own objective with its own state, its increments added \
         on junctions, vs {name} on the composite: {} steps, max abs difference {:.3e}, \
         relative {:.3e}{stopped}",
        comparison.steps, comparison.max_abs, comparison.relative
    );
    let why = match method.config.spec.class {
        _ if is_law => "",
        MethodClass::Compositional => {
            "; not a law here: the method takes its gradient at a look-ahead point, which each box keeps for itself"
        }
        MethodClass::Coordinatewise => {
            "; not a law: the per-coordinate rescaling is not linear in the gradient, so per-box sums are another algorithm"
        }
        MethodClass::Global => "; not a law: each box searches its own step size on its own objective",
    };
    Ok((
        LawReport {
            name: if is_law {
                "per-box updates = composite update".into()
            } else {
                "per-box variant vs composite (measured)".into()
            },
            passed: !is_law || comparison.relative <= tolerance,
            max_deviation: comparison.relative,
            tolerance: if is_law { tolerance } else { f64::INFINITY },
            samples: comparison.steps as usize,
            detail: format!("{what}{why}"),
        },
        is_law,
    ))
}
