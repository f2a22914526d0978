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
mod agd;
mod armijo;
mod fused_map;
mod gd;
mod lbfgs;
mod momentum;
mod nesterov;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
pub(crate) mod testing;

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
    /// Whether the solver stops at this evaluation whatever is proposed (a tolerance is
    /// met, or the step budget is used up): a line search then skips its trials.
    pub stops_here: &'c dyn Fn(&Evaluation) -> bool,
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

    /// What the method keeps beyond its vectors and scalars (lbfgs's pairs), by name, so
    /// that checkpoints can save it: each entry a list of numbers (a vector of the iterate's
    /// length, or a few scalars). On a distributed backend, vectors of the iterate's length
    /// are current on [`Executor::local_runs`] only: collect them on rank 0 as the state
    /// vectors are. Empty by default.
    fn memory(&self) -> Vec<(String, Vec<f64>)> {
        Vec::new()
    }

    /// Takes back what [`Method::memory`] gave (from a checkpoint), replacing the method's
    /// memory.
    ///
    /// # Errors
    /// If the entries are not what this method's `memory` gives (names, lengths).
    fn restore_memory(&mut self, memory: &[(String, Vec<f64>)]) -> Result<(), String> {
        match memory.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!(
                "`{}` keeps no memory, but `{name}` was given",
                self.config().name()
            )),
        }
    }
}

/// What a method may need to know of the problem besides its parameters, given by the
/// caller (who has the lowered problem: [`MethodContext::for_problem`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodContext {
    /// Coordinate groups for per-group step sizes (`armijo(groups = variables)`), in order;
    /// every coordinate in exactly one. Empty when unknown.
    pub groups: Vec<CoordinateGroup>,
}

/// A named set of coordinates (a junction family, or all private variables).
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinateGroup {
    /// The family's base name (`x` for `x[0]`, `x[1]`, ...), or `private`.
    pub name: String,
    /// Its coordinates, ascending.
    pub coordinates: Vec<usize>,
}

impl MethodContext {
    /// The groups of `problem`: one per junction family (junctions grouped by their base
    /// name, in order of first appearance), then one for every private variable (and any
    /// coordinate of no named variable).
    pub fn for_problem(problem: &crate::lower::Problem) -> MethodContext {
        let junctions = problem.diagram.junction_count();
        let mut group_of = vec![u32::MAX; problem.variable_count()];
        let mut names: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, u32> = Default::default();
        for (k, variable) in problem.all_variables().iter().enumerate() {
            if k >= junctions {
                break; // private variables: the last group
            }
            let base = variable.name().base.to_string();
            let group = *index.entry(base.clone()).or_insert_with(|| {
                names.push(base);
                (names.len() - 1) as u32
            });
            for &c in variable.coordinates() {
                group_of[c] = group;
            }
        }
        let mut groups: Vec<CoordinateGroup> = names
            .into_iter()
            .map(|name| CoordinateGroup {
                name,
                coordinates: Vec::new(),
            })
            .collect();
        let mut private = Vec::new();
        for (c, &g) in group_of.iter().enumerate() {
            match groups.get_mut(g as usize) {
                Some(group) => group.coordinates.push(c),
                None => private.push(c),
            }
        }
        if !private.is_empty() {
            groups.push(CoordinateGroup {
                name: "private".into(),
                coordinates: private,
            });
        }
        MethodContext { groups }
    }

    /// The groups seen from one box whose local coordinate `i` is global coordinate
    /// `phi[i]` (a box's own variables, for the per-box variant of `catopt laws`): each
    /// group keeps the box's coordinates in it, as local indices; groups the box does not
    /// touch are left out.
    pub fn restricted(&self, phi: &[usize]) -> MethodContext {
        let mut group_of = std::collections::HashMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            for &c in &group.coordinates {
                group_of.insert(c, g);
            }
        }
        let mut groups: Vec<CoordinateGroup> = Vec::new();
        let mut local_of_group: std::collections::HashMap<usize, usize> = Default::default();
        for (i, global) in phi.iter().enumerate() {
            let Some(&g) = group_of.get(global) else {
                continue;
            };
            let k = *local_of_group.entry(g).or_insert_with(|| {
                groups.push(CoordinateGroup {
                    name: self.groups[g].name.clone(),
                    coordinates: Vec::new(),
                });
                groups.len() - 1
            });
            groups[k].coordinates.push(i);
        }
        MethodContext { groups }
    }
}

/// The implementation of a resolved method, with its schedule.
///
/// # Errors
/// If the method is in the registry but has no implementation here yet, or it takes no
/// schedule and one other than `constant` is given.
pub fn build(config: &MethodConfig, schedule: Schedule) -> Result<Box<dyn Method>, String> {
    build_with(config, schedule, &MethodContext::default())
}

/// [`build`] with what the method needs to know of the problem (`armijo(groups =
/// variables)` needs its coordinate groups).
///
/// # Errors
/// As [`build`], and if the method needs something `context` lacks.
pub fn build_with(
    config: &MethodConfig,
    schedule: Schedule,
    context: &MethodContext,
) -> Result<Box<dyn Method>, String> {
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
        "nesterov" => Box::new(nesterov::Nesterov::new(config, schedule)),
        "agd" => Box::new(agd::Agd::new(config, schedule)),
        "armijo" => Box::new(armijo::Armijo::new(config, context)?),
        "lbfgs" => Box::new(lbfgs::Lbfgs::new(config)),
        other => return Err(format!("the method `{other}` is not implemented yet")),
    })
}

/// A method by name with numeric parameters and the constant schedule (tests, examples,
/// library users): `by_name("momentum", &[("lr", 0.1), ("beta", 0.5)])`.
///
/// # Errors
/// As [`crate::method_spec::resolve_method`] and [`build`], as a message.
pub fn by_name(name: &str, params: &[(&str, f64)]) -> Result<Box<dyn Method>, String> {
    build(
        &crate::method_spec::resolve_numeric(name, params)?,
        Schedule::Constant,
    )
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
            const NOT_YET: &[&str] = &[];
            assert_eq!(
                method.is_ok(),
                !NOT_YET.contains(&spec.name),
                "{}",
                spec.name
            );
        }
    }
}
