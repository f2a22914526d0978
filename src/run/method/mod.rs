//! The optimisers: one file per method, behind two traits (argmin's `Solver` is the model).
//!
//! - An [`UpdateRule`] is a method's per-coordinate arithmetic: given a block of the
//!   composite gradient and the method's vectors there (`values`, the reported iterate,
//!   first), it writes the next vectors. The executor runs it inside the gradient sweep, on
//!   each block as soon as the block's gradient is complete, on every backend: the rule
//!   sees each coordinate's *summed* gradient, so every backend gives the serial bits.
//! - A [`Method`] is the step: by default one fused evaluation ([`StepContext::fused`]); a
//!   line search calls value-only and value-and-gradient evaluations as it needs.
//!
//! Per-step scalars (the step size `eta_k` of the schedule, Adam's bias corrections, agd's
//! constants) are computed once per step by the method and carried in the rule. The names,
//! parameters and classes are [`crate::method_spec`]; [`build`] maps a resolved
//! [`MethodConfig`] to its implementation.

mod adam;
mod gd;
mod momentum;

pub use gd::GdRule;

use super::executor::{Evaluation, Executor};
use crate::method_spec::{MethodConfig, Schedule};

/// The most vectors (each as long as the iterate) a method keeps, `values` included.
pub const MAX_VECTORS: usize = 4;

/// One block of coordinates for an [`UpdateRule`]: the summed gradient there, the method's
/// current vectors, and the buffers for the next ones (`values` first; the unused entries
/// are empty).
pub struct Block<'a> {
    /// The composite gradient, at the method's evaluation point.
    pub gradient: &'a [f64],
    /// The current vectors, in the method's order ([`Method::vectors`]).
    pub current: [&'a [f64]; MAX_VECTORS],
    /// Receive the next vectors, in the same order.
    pub next: [&'a mut [f64]; MAX_VECTORS],
    /// The iterate is large (beyond the caches): write `values` with non-temporal stores
    /// if the rule can (same values either way).
    pub stream: bool,
}

/// A method's per-coordinate update, fused into the gradient sweep. Implementations are
/// small `Copy` structs holding the step's scalars; `apply` should be `#[inline(always)]`
/// so that it is compiled into the sweep's vectorised loop.
pub trait UpdateRule: Sync {
    /// Writes the next vectors on one block.
    fn apply(&self, block: Block<'_>);
}

/// The rule of a plain evaluation: reads and writes nothing.
pub struct NoUpdate;

impl UpdateRule for NoUpdate {
    #[inline(always)]
    fn apply(&self, _: Block<'_>) {}
}

/// What a method reports about the steps it took (JSON, traces, `catopt explain`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The step size of the last step (for per-group line searches: the last group's).
    pub last_step_size: f64,
    /// The smallest step size used so far.
    pub min_step_size: f64,
    /// The largest step size used so far.
    pub max_step_size: f64,
    /// Line-search trials so far (trial points whose objective was evaluated).
    pub trials: u64,
}

impl Default for StepStats {
    fn default() -> StepStats {
        StepStats {
            last_step_size: f64::NAN,
            min_step_size: f64::INFINITY,
            max_step_size: f64::NEG_INFINITY,
            trials: 0,
        }
    }
}

impl StepStats {
    /// Records a step taken with step size `eta`.
    pub fn record(&mut self, eta: f64) {
        self.last_step_size = eta;
        self.min_step_size = self.min_step_size.min(eta);
        self.max_step_size = self.max_step_size.max(eta);
    }
}

/// Why a method stopped the run by itself.
#[derive(Clone, Debug, PartialEq)]
pub enum MethodStop {
    /// A line search found no acceptable step, or a direction was not a descent direction.
    NoProgress(String),
}

/// The method's view of the solver state.
pub struct StepContext<'c, 'v> {
    /// Runs evaluations.
    pub executor: &'c mut Executor,
    /// Updates done before this one (`k`, 0-based).
    pub step: u64,
    /// The current vectors (`values` first), in [`Method::vectors`] order.
    pub current: &'c [&'v [f64]],
    /// The current scalars, in [`Method::scalars`] order.
    pub current_scalars: &'c [f64],
    /// Receive the proposed vectors.
    pub next: &'c mut [&'v mut [f64]],
    /// Receive the proposed scalars.
    pub next_scalars: &'c mut [f64],
}

impl StepContext<'_, '_> {
    /// One evaluation at vector `at` (the method's evaluation point) with `rule` fused into
    /// it: the objective and gradient norm there, and the proposal in `next`.
    pub fn fused<R: UpdateRule>(&mut self, at: usize, rule: &R) -> Evaluation {
        self.executor
            .evaluate_and_update(at, self.current, self.next, rule)
    }
}

/// An optimiser's step (see the module documentation).
pub trait Method {
    /// The resolved parameters.
    fn config(&self) -> &MethodConfig;

    /// Names of the vectors the method keeps, `values` (the reported iterate) first; each as
    /// long as the iterate. Checkpoints store them under these names.
    fn vectors(&self) -> &'static [&'static str] {
        &["values"]
    }

    /// Names of the scalars the method keeps between steps.
    fn scalars(&self) -> &'static [&'static str] {
        &[]
    }

    /// The vector at which the gradient is taken (the objective, gradient norm and stopping
    /// rules refer to it): `values` unless the method looks ahead.
    fn evaluation_point(&self) -> usize {
        0
    }

    /// The other vectors (after `values`) and the scalars at the start from `values`;
    /// they arrive zeroed, which is the default.
    fn start(&self, values: &[f64], vectors: &mut [Vec<f64>], scalars: &mut [f64]) {
        let _ = (values, vectors, scalars);
    }

    /// Evaluates at the current state and writes the proposed next state. Returns the
    /// evaluation at the evaluation point, or why the method cannot go on.
    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop>;

    /// The step sizes used and the line-search trials so far (in this process's run).
    fn stats(&self) -> StepStats;
}

/// The implementation of a resolved method, with its schedule.
///
/// # Errors
/// If the method is in the registry but has no implementation here yet, or it takes no
/// schedule and one other than `constant` is given.
pub fn build(config: &MethodConfig, schedule: Schedule) -> Result<Box<dyn Method>, String> {
    if !config.spec.takes_schedule && !schedule.is_constant() {
        return Err(format!(
            "`{}` takes no step-size schedule (it chooses its own steps); remove `schedule = {}`",
            config.name(),
            schedule.describe()
        ));
    }
    let config = config.clone();
    Ok(match config.name() {
        "gd" => Box::new(gd::Gd::new(config, schedule)),
        "momentum" => Box::new(momentum::Momentum::new(config, schedule)),
        "adam" => Box::new(adam::Adam::new(config, schedule)),
        other => return Err(format!("the method `{other}` is not implemented yet")),
    })
}

/// A method by name with numeric parameters and the constant schedule (tests, examples,
/// library users): `by_name("momentum", &[("lr", 0.1), ("beta", 0.5)])`.
///
/// # Errors
/// As [`crate::method_spec::resolve_method`] and [`build`], as a message.
pub fn by_name(name: &str, params: &[(&str, f64)]) -> Result<Box<dyn Method>, String> {
    let given: Vec<(&str, crate::method_spec::Given<'_>)> = params
        .iter()
        .map(|&(p, v)| (p, crate::method_spec::Given::Number(v)))
        .collect();
    let config = crate::method_spec::resolve_method(name, &given).map_err(|e| {
        let (message, hint) = e.message_and_hint();
        format!("{message}; {hint}")
    })?;
    build(&config, Schedule::Constant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method_spec::{resolve_method, Given, METHODS};

    #[test]
    fn every_registered_method_has_an_implementation() {
        for spec in METHODS {
            let given: Vec<(&str, Given<'_>)> = spec
                .params
                .iter()
                .filter(|p| p.name == "lr")
                .map(|p| (p.name, Given::Number(0.1)))
                .collect();
            let config = resolve_method(spec.name, &given).unwrap();
            let method = build(&config, Schedule::Constant);
            // Methods of the registry still to come (issue 14 is in progress).
            const NOT_YET: &[&str] = &["nesterov", "agd", "armijo", "lbfgs"];
            assert_eq!(
                method.is_ok(),
                !NOT_YET.contains(&spec.name),
                "{}",
                spec.name
            );
        }
    }
}
