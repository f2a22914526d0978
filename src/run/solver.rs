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
//! boxes' updates. (A per-box *nonlinear* rescaling, such as Adam's, would not commute with
//! the sum and would not be the functor's discrete system.)
//!
//! The gradient is summed on shared coordinates first and then multiplied by the step size:
//! in real arithmetic that equals summing the boxes' increments `-lr * grad f_b`; in
//! floating point it is the form that is bit-for-bit equal to central gradient descent on
//! the composite objective.

use super::executor::{Evaluation, Executor, Proposal};
use serde::{Deserialize, Serialize};

/// An optimiser: a discrete dynamical system built from the composite's gradient.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Method {
    /// Gradient descent: z <- z - lr * grad F(z).
    Gd {
        /// The step size (Euler step of the gradient flow).
        lr: f64,
    },
    /// Heavy-ball momentum: v <- beta * v + grad F(z); z <- z - lr * v.
    Momentum {
        /// The step size.
        lr: f64,
        /// The momentum coefficient, in [0, 1).
        beta: f64,
    },
}

impl Method {
    /// The method's name as written in `.opt` files and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Gd { .. } => "gd",
            Method::Momentum { .. } => "momentum",
        }
    }

    /// The step size.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            Method::Gd { lr } | Method::Momentum { lr, .. } => lr,
        }
    }

    /// A one-line description: `gd(lr = 0.1)`.
    pub fn describe(&self) -> String {
        match *self {
            Method::Gd { lr } => format!("gd(lr = {lr})"),
            Method::Momentum { lr, beta } => format!("momentum(lr = {lr}, beta = {beta})"),
        }
    }

    /// The optimisers `catopt run` knows, with their parameters, for help texts.
    pub const CATALOGUE: &'static [(&'static str, &'static str)] = &[
        ("gd(lr)", "gradient descent: z <- z - lr * grad F(z)"),
        (
            "momentum(lr, beta)",
            "heavy ball: v <- beta v + grad F(z); z <- z - lr v (beta defaults to 0.9)",
        ),
    ];
}

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
    /// The objective or gradient became non-finite.
    Diverged,
    /// The user interrupted the run (Ctrl-C).
    Interrupted,
}

impl StopReason {
    /// A phrase for the human summary.
    pub fn describe(&self) -> &'static str {
        match self {
            StopReason::MaxSteps => "step budget used up",
            StopReason::GradientTolerance => "gradient norm below tolerance",
            StopReason::ObjectiveTolerance => "relative objective change below rel_tolerance",
            StopReason::Diverged => "diverged (non-finite objective or gradient)",
            StopReason::Interrupted => "interrupted",
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
        }
    }
}

/// Everything needed to continue a run: the iterate, the optimiser's memory, the step count.
/// Saved in checkpoints; a resumed run continues with the same bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolverState {
    /// Updates done so far.
    pub step: u64,
    /// The global coordinates.
    pub values: Vec<f64>,
    /// Momentum's velocity (empty for gd).
    pub velocity: Vec<f64>,
    /// The objective at the previous iterate (for `rel_tolerance`).
    pub previous_objective: Option<f64>,
}

impl SolverState {
    /// A fresh state at `values`.
    pub fn new(values: Vec<f64>) -> SolverState {
        SolverState {
            step: 0,
            values,
            velocity: Vec::new(),
            previous_objective: None,
        }
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
    /// Number of gradient evaluations done by this call.
    pub evaluations: u64,
}

/// Runs the optimiser from `state` until a stop rule fires. On return, `state` holds the
/// final iterate; after a divergence, the last iterate whose objective and gradient were
/// finite (and `state.step` is its step).
pub fn solve(
    executor: &mut Executor,
    method: Method,
    stop: StopRule,
    state: &mut SolverState,
    observer: &mut dyn Observer,
) -> Result<Outcome, String> {
    if let Method::Momentum { .. } = method {
        if state.velocity.len() != state.values.len() {
            state.velocity = vec![0.0; state.values.len()];
        }
    }
    // Three iterate buffers rotated by swaps (no copies): the proposal computed with the
    // gradient, the current iterate, and the previous one, which a divergence returns to.
    let n = state.values.len();
    let mut proposal = vec![0.0; n];
    let mut previous = vec![0.0; n];
    let mut next_velocity = vec![0.0; if state.velocity.is_empty() { 0 } else { n }];
    let mut last_finite: Option<Evaluation> = None;
    let mut evaluations = 0;
    loop {
        let evaluation = match method {
            Method::Gd { lr } => executor.evaluate_and_propose(
                &state.values,
                Proposal::Gd {
                    lr,
                    next: &mut proposal,
                },
            ),
            Method::Momentum { lr, beta } => executor.evaluate_and_propose(
                &state.values,
                Proposal::Momentum {
                    lr,
                    beta,
                    velocity: &state.velocity,
                    next_velocity: &mut next_velocity,
                    next: &mut proposal,
                },
            ),
        };
        evaluations += 1;
        // The norm is scaled (`run::norm`): a finite gradient whose squared norm overflows
        // has a finite norm, so only a non-finite entry (or a norm beyond f64::MAX) lands here.
        if !evaluation.objective.is_finite() || !evaluation.gradient_norm.is_finite() {
            let diverged_box = executor.first_non_finite_box(&state.values);
            if let Some(finite) = last_finite {
                std::mem::swap(&mut state.values, &mut previous);
                state.step -= 1;
                return Ok(Outcome {
                    stop_reason: StopReason::Diverged,
                    evaluation: finite,
                    diverged_box,
                    diverged_evaluation: Some(evaluation),
                    evaluations,
                });
            }
            return Ok(Outcome {
                stop_reason: StopReason::Diverged,
                evaluation,
                diverged_box,
                diverged_evaluation: Some(evaluation),
                evaluations,
            });
        }
        if executor.is_distributed() && observer.wants_full_state(state.step) {
            executor.collect_on_first_rank(&mut state.values);
            if !state.velocity.is_empty() {
                executor.collect_on_first_rank(&mut state.velocity);
            }
        }
        let keep_going = observer.observe(&StepInfo {
            step: state.step,
            evaluation,
            executor,
            state,
        })? && !executor.interrupt_requested();
        let reason = if stop
            .tolerance
            .is_some_and(|t| evaluation.gradient_norm <= t)
        {
            Some(StopReason::GradientTolerance)
        } else if let (Some(rel), Some(previous)) = (stop.rel_tolerance, state.previous_objective) {
            let change = (evaluation.objective - previous).abs();
            (change <= rel * previous.abs().max(f64::MIN_POSITIVE))
                .then_some(StopReason::ObjectiveTolerance)
        } else {
            None
        };
        let reason = reason
            .or((state.step >= stop.max_steps).then_some(StopReason::MaxSteps))
            .or((!keep_going).then_some(StopReason::Interrupted));
        if let Some(stop_reason) = reason {
            return Ok(Outcome {
                stop_reason,
                evaluation,
                diverged_box: None,
                diverged_evaluation: None,
                evaluations,
            });
        }
        // Accept the proposal: previous <- current <- proposal.
        state.previous_objective = Some(evaluation.objective);
        last_finite = Some(evaluation);
        std::mem::swap(&mut previous, &mut state.values);
        std::mem::swap(&mut state.values, &mut proposal);
        if !next_velocity.is_empty() {
            std::mem::swap(&mut state.velocity, &mut next_velocity);
        }
        state.step += 1;
    }
}
