//! The solver loop: discrete gradient descent (the Euler step of the GD functor's gradient
//! flow) on a plan, with stopping rules, divergence detection, observers and checkpoints.
//!
//! Why the optimisers are compositional: the GD functor sends each box's objective f_b to
//! its gradient flow -grad f_b, and composition sums the flows on junctions. An update that
//! is *linear in the gradient* commutes with that sum: with one step size for every box,
//! `gd` takes z - lr * sum_b phi_b*(grad f_b), exactly the boxes' own steps added up on
//! shared variables. Heavy-ball `momentum` keeps a velocity that is itself a linear
//! function of past gradients (v <- beta v + g), so the composite's velocity is the sum of
//! the boxes' velocities pushed forward along phi_b, and the update is again the sum of the
//! boxes' updates. (A per-box *nonlinear* rescaling, such as Adam's, does not commute with
//! the sum: Adam is coordinatewise, see `catopt laws`.) Each method's arithmetic is one
//! file under [`crate::run::method`]; this loop is the same for all of them.
//!
//! The gradient is summed on shared coordinates first and then multiplied by the step size:
//! in real arithmetic that equals summing the boxes' increments `-lr * grad f_b`; in
//! floating point it is the form that is bit-for-bit equal to central gradient descent on
//! the composite objective.

use super::executor::{Evaluation, Executor};
use super::method::{Method, MethodStop, StepContext, MAX_VECTORS};
use serde::{Deserialize, Serialize};

/// When to stop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopRule {
    /// At most this many updates (counted from the start of the original run).
    pub max_steps: u64,
    /// Stop when the gradient's norm falls to or below this.
    pub tolerance: Option<f64>,
    /// Stop when |F_k - F_{k-1}| <= rel_tolerance * max(|F_{k-1}|, tiny).
    pub rel_tolerance: Option<f64>,
}

impl StopRule {
    /// Which rule stops the run at `evaluation` of step `step` (`previous`: the objective
    /// of the step before), if one does. Interruptions are the solver's own business.
    pub fn reason(
        &self,
        evaluation: &Evaluation,
        previous: Option<f64>,
        step: u64,
    ) -> Option<StopReason> {
        if self
            .tolerance
            .is_some_and(|t| evaluation.gradient_norm <= t)
        {
            return Some(StopReason::GradientTolerance);
        }
        if let (Some(rel), Some(previous)) = (self.rel_tolerance, previous) {
            let change = (evaluation.objective - previous).abs();
            if change <= rel * previous.abs().max(f64::MIN_POSITIVE) {
                return Some(StopReason::ObjectiveTolerance);
            }
        }
        (step >= self.max_steps).then_some(StopReason::MaxSteps)
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The step budget is used up.
    MaxSteps,
    /// The gradient norm fell below the tolerance.
    GradientTolerance,
    /// The relative change of the objective fell below `rel_tolerance`.
    ObjectiveTolerance,
    /// The objective or gradient became non-finite, or the objective is blowing up
    /// ([`BLOW_UP_FACTOR`]): see [`Outcome::divergence`].
    Diverged,
    /// The user interrupted the run (Ctrl-C).
    Interrupted,
    /// The method could not go on (a line search found no acceptable step): see
    /// [`Outcome::message`].
    NoProgress,
}

impl StopReason {
    /// A phrase for the human summary.
    pub fn describe(&self) -> &'static str {
        match self {
            StopReason::MaxSteps => "step budget used up",
            StopReason::GradientTolerance => "gradient norm below tolerance",
            StopReason::ObjectiveTolerance => "relative objective change below rel_tolerance",
            StopReason::Diverged => "diverged",
            StopReason::Interrupted => "interrupted",
            StopReason::NoProgress => "the method could not make progress",
        }
    }

    /// The name used in JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::MaxSteps => "max_steps",
            StopReason::GradientTolerance => "gradient_tolerance",
            StopReason::ObjectiveTolerance => "objective_tolerance",
            StopReason::Diverged => "diverged",
            StopReason::Interrupted => "interrupted",
            StopReason::NoProgress => "no_progress",
        }
    }
}

/// Everything needed to continue a run: the iterate, the optimiser's memory, the step count.
/// Saved in checkpoints; a resumed run continues with the same bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolverState {
    /// Updates done so far.
    pub step: u64,
    /// The global coordinates (the reported iterate).
    pub values: Vec<f64>,
    /// The method's other vectors ([`Method::vectors`] after `values`: momentum's
    /// velocity, Adam's moments), each as long as `values`; empty until the method starts.
    pub vectors: Vec<Vec<f64>>,
    /// The method's scalars ([`Method::scalars`]).
    pub scalars: Vec<f64>,
    /// The objective at the previous iterate (for `rel_tolerance`).
    pub previous_objective: Option<f64>,
}

impl SolverState {
    /// A fresh state at `values`.
    pub fn new(values: Vec<f64>) -> SolverState {
        SolverState {
            step: 0,
            values,
            vectors: Vec::new(),
            scalars: Vec::new(),
            previous_objective: None,
        }
    }

    /// Whether the method's vectors and scalars are in place (a resumed or continued run).
    pub fn is_started_for(&self, method: &dyn Method) -> bool {
        self.vectors.len() + 1 == method.vectors().len()
            && self.vectors.iter().all(|v| v.len() == self.values.len())
            && self.scalars.len() == method.scalars().len()
    }

    /// Gives the method its vectors and scalars at the start, unless they are in place.
    pub fn start(&mut self, method: &dyn Method) {
        if self.is_started_for(method) {
            return;
        }
        let n = self.values.len();
        self.vectors = vec![vec![0.0; n]; method.vectors().len() - 1];
        self.scalars = vec![0.0; method.scalars().len()];
        method.start(&self.values, &mut self.vectors, &mut self.scalars);
    }
}

/// A method's vectors and scalars, as the solver rotates them.
struct Slot {
    values: Vec<f64>,
    vectors: Vec<Vec<f64>>,
    scalars: Vec<f64>,
}

impl Slot {
    fn like(state: &SolverState) -> Slot {
        let n = state.values.len();
        Slot {
            values: vec![0.0; n],
            vectors: vec![vec![0.0; n]; state.vectors.len()],
            scalars: vec![0.0; state.scalars.len()],
        }
    }

    /// Swaps with the state's vectors and scalars.
    fn swap(&mut self, state: &mut SolverState) {
        std::mem::swap(&mut self.values, &mut state.values);
        std::mem::swap(&mut self.vectors, &mut state.vectors);
        std::mem::swap(&mut self.scalars, &mut state.scalars);
    }
}

/// What an observer sees at each iterate (before the update that follows it).
pub struct StepInfo<'a> {
    /// Updates done before this iterate.
    pub step: u64,
    /// Objective and gradient norm at this iterate.
    pub evaluation: Evaluation,
    /// The executor (box values, gradient).
    pub executor: &'a Executor,
    /// The state (iterate) being observed.
    pub state: &'a SolverState,
    /// The step size of the update computed at this iterate (NaN if the method has none).
    pub step_size: f64,
    /// Evaluations done at this iterate (1 for a fused step; more with a line search).
    pub evaluations: u64,
    /// The method's own memory ([`Method::memory`]: lbfgs's pairs), complete on rank 0,
    /// when the observer asked for the full state at this step; empty otherwise.
    pub memory: &'a [(String, Vec<f64>)],
}

/// Observes a run: traces, progress bars, checkpoints. Returning `false` asks the run to
/// stop (as an interruption).
pub trait Observer {
    /// Called at every iterate, including the first and the last.
    fn observe(&mut self, info: &StepInfo<'_>) -> Result<bool, String>;

    /// Whether [`Observer::observe`] needs the whole iterate at `step` (to write a
    /// checkpoint): on a distributed backend, every rank then sends its coordinates to rank
    /// 0 first. Must give the same answer on every rank.
    fn wants_full_state(&self, _step: u64) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&mut self, _: &StepInfo<'_>) -> Result<bool, String> {
        Ok(true)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Objective and gradient norm at the final iterate (for a divergence: the non-finite
    /// evaluation that stopped it).
    pub evaluation: Evaluation,
    /// For a divergence: the first box (in box order) with a non-finite value or gradient.
    pub diverged_box: Option<usize>,
    /// For a divergence: the non-finite evaluation that stopped the run (at step
    /// `state.step + 1`, or at step 0 if the starting point itself is non-finite).
    pub diverged_evaluation: Option<Evaluation>,
    /// Number of evaluations done by this call.
    pub evaluations: u64,
    /// For [`StopReason::NoProgress`]: what the method reported.
    pub message: Option<String>,
    /// For [`StopReason::Diverged`]: why, and at which step.
    pub divergence: Option<Divergence>,
}

/// A run is *blowing up* when its objective is above `BLOW_UP_FACTOR` times its start
/// (`max(|F_0|, 1)`) and has risen at each of the last [`BLOW_UP_STEPS`] steps (in a
/// minibatch run, whose objective is noisy: has stayed above that at each of them): finite
/// still, but hopeless. The run then stops as diverged (exit 3), reporting the iterate.
pub const BLOW_UP_FACTOR: f64 = 1e12;

/// See [`BLOW_UP_FACTOR`].
pub const BLOW_UP_STEPS: u64 = 20;

/// How a run diverged.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// The step whose evaluation diverged (the reported iterate is the last finite one:
    /// `state.step`, one before, or the same step for a blow-up).
    pub step: u64,
    /// What happened.
    pub cause: DivergenceCause,
}

/// What made a run diverge.
#[derive(Clone, Debug, PartialEq)]
pub enum DivergenceCause {
    /// The start point itself gives a non-finite objective or gradient: not a step-size
    /// problem.
    NonFiniteAtStart,
    /// A step led to a non-finite objective or gradient.
    NonFinite,
    /// The objective is finite but blowing up ([`BLOW_UP_FACTOR`]).
    BlowingUp {
        /// The objective at the start of the run.
        start_objective: f64,
        /// The box whose value grew most since the start, with its value then and now.
        grew_most: Option<(usize, f64, f64)>,
    },
}

/// The evaluation to report at the final `values`: `evaluation` itself when the method
/// takes its gradient there, else one more evaluation (counted).
fn at_values(
    executor: &mut Executor,
    state: &SolverState,
    at: usize,
    evaluation: Evaluation,
    evaluations: &mut u64,
) -> Evaluation {
    if at == 0 {
        return evaluation;
    }
    *evaluations += 1;
    executor.evaluate(&state.values)
}

/// Runs the optimiser from `state` until a stop rule fires. On return, `state` holds the
/// final iterate; after a divergence, the last iterate whose objective and gradient were
/// finite (and `state.step` is its step).
///
/// For a method that takes its gradient at a look-ahead point (`nesterov`, `agd`), the
/// stopping rules and observers see the evaluation there; the returned evaluation is one
/// more evaluation at the final `values`, so that the reported objective is the reported
/// iterate's.
pub fn solve(
    executor: &mut Executor,
    method: &mut dyn Method,
    stop: StopRule,
    state: &mut SolverState,
    observer: &mut dyn Observer,
) -> Result<Outcome, String> {
    state.start(method);
    let count = method.vectors().len();
    let at = method.evaluation_point();
    assert!(count <= MAX_VECTORS && at < count, "method vectors");
    // Three sets of vectors rotated by swaps (no copies): the proposal computed with the
    // gradient, the current state, and the previous one, which a divergence returns to.
    let mut proposal = Slot::like(state);
    let mut previous = Slot::like(state);
    let mut last_finite: Option<Evaluation> = None;
    let mut evaluations = 0;
    // For the blow-up rule: where the run started, its objective, and how long it has risen.
    let start_point = if at == 0 {
        state.values.clone()
    } else {
        state.vectors[at - 1].clone()
    };
    let mut start_objective: Option<f64> = None;
    let mut rising: u64 = 0;
    let noisy = executor.plan().minibatches().is_some();
    loop {
        let evaluations_before = executor.evaluations() + executor.value_evaluations();
        let (step, previous_objective) = (state.step, state.previous_objective);
        let stops_here = |e: &Evaluation| stop.reason(e, previous_objective, step).is_some();
        // A minibatch run's evaluations in this step (line-search trials included) read
        // the step's minibatches.
        executor.set_sample_step(step);
        let proposed = {
            let mut current: [&[f64]; MAX_VECTORS] = [&[]; MAX_VECTORS];
            current[0] = &state.values;
            for (slot, v) in current[1..].iter_mut().zip(&state.vectors) {
                *slot = v;
            }
            let mut next: [&mut [f64]; MAX_VECTORS] = [&mut [], &mut [], &mut [], &mut []];
            let (first, rest) = next.split_at_mut(1);
            first[0] = &mut proposal.values;
            for (slot, v) in rest.iter_mut().zip(proposal.vectors.iter_mut()) {
                *slot = v;
            }
            let mut context = StepContext {
                executor,
                step: state.step,
                current: &current[..count],
                current_scalars: &state.scalars,
                next: &mut next[..count],
                next_scalars: &mut proposal.scalars,
                stops_here: &stops_here,
            };
            method.propose(&mut context)
        };
        let step_evaluations =
            executor.evaluations() + executor.value_evaluations() - evaluations_before;
        evaluations += step_evaluations;
        let evaluation = match proposed {
            Ok(evaluation) => evaluation,
            Err(MethodStop::NoProgress(message)) => {
                // The method evaluated at the current iterate before it gave up.
                let evaluation = executor.last_evaluation();
                return Ok(Outcome {
                    stop_reason: StopReason::NoProgress,
                    evaluation,
                    diverged_box: None,
                    diverged_evaluation: None,
                    evaluations,
                    message: Some(message),
                    divergence: None,
                });
            }
        };
        // The norm is scaled (`run::norm`): a finite gradient whose squared norm overflows
        // has a finite norm, so only a non-finite entry (or a norm beyond f64::MAX) lands here.
        if !evaluation.objective.is_finite() || !evaluation.gradient_norm.is_finite() {
            let point = if at == 0 {
                &state.values
            } else {
                &state.vectors[at - 1]
            };
            let diverged_box = executor.first_non_finite_box(point);
            if let Some(finite) = last_finite {
                let step = state.step;
                previous.swap(state);
                state.step -= 1;
                return Ok(Outcome {
                    stop_reason: StopReason::Diverged,
                    evaluation: finite,
                    diverged_box,
                    diverged_evaluation: Some(evaluation),
                    evaluations,
                    message: None,
                    divergence: Some(Divergence {
                        step,
                        cause: DivergenceCause::NonFinite,
                    }),
                });
            }
            return Ok(Outcome {
                stop_reason: StopReason::Diverged,
                evaluation,
                diverged_box,
                diverged_evaluation: Some(evaluation),
                evaluations,
                message: None,
                divergence: Some(Divergence {
                    step: state.step,
                    cause: DivergenceCause::NonFiniteAtStart,
                }),
            });
        }
        let start = *start_objective.get_or_insert(evaluation.objective);
        let threshold = BLOW_UP_FACTOR * start.abs().max(1.0);
        rising = match last_finite {
            // A minibatch objective is noisy and need not rise at every step on its way up:
            // there the rule counts the steps it has stayed above the threshold.
            _ if noisy && evaluation.objective > threshold => rising + 1,
            Some(last) if !noisy && evaluation.objective > last.objective => rising + 1,
            _ => 0,
        };
        if rising >= BLOW_UP_STEPS && evaluation.objective > threshold {
            let point = if at == 0 {
                &state.values
            } else {
                &state.vectors[at - 1]
            };
            let grew_most = executor.box_that_grew_most(&start_point, point);
            let evaluation = at_values(executor, state, at, evaluation, &mut evaluations);
            return Ok(Outcome {
                stop_reason: StopReason::Diverged,
                evaluation,
                diverged_box: grew_most.map(|(b, _, _)| b),
                diverged_evaluation: None,
                evaluations,
                message: None,
                divergence: Some(Divergence {
                    step: state.step,
                    cause: DivergenceCause::BlowingUp {
                        start_objective: start,
                        grew_most,
                    },
                }),
            });
        }
        let mut memory = Vec::new();
        if observer.wants_full_state(state.step) {
            memory = method.memory();
            // Whole on rank 0 (nothing to do in shared memory).
            executor.collect_on_first_rank(&mut state.values);
            for v in &mut state.vectors {
                executor.collect_on_first_rank(v);
            }
            for (_, v) in memory
                .iter_mut()
                .filter(|(_, v)| v.len() == state.values.len())
            {
                executor.collect_on_first_rank(v);
            }
        }
        let keep_going = observer.observe(&StepInfo {
            step: state.step,
            evaluation,
            executor,
            state,
            step_size: method.stats().last_step_size,
            evaluations: step_evaluations,
            memory: &memory,
        })? && !executor.interrupt_requested();
        let reason = stop
            .reason(&evaluation, state.previous_objective, state.step)
            .or((!keep_going).then_some(StopReason::Interrupted));
        if let Some(stop_reason) = reason {
            let evaluation = at_values(executor, state, at, evaluation, &mut evaluations);
            return Ok(Outcome {
                stop_reason,
                evaluation,
                diverged_box: None,
                diverged_evaluation: None,
                evaluations,
                message: None,
                divergence: None,
            });
        }
        // Accept the proposal: previous <- current <- proposal (the old previous becomes
        // the next proposal's buffers).
        state.previous_objective = Some(evaluation.objective);
        last_finite = Some(evaluation);
        previous.swap(state);
        proposal.swap(state);
        state.step += 1;
    }
}
