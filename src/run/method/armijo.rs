//! `armijo(lr = 1, c = 0.1, shrink = 0.5, grow = 2, direction = gd, groups = all)`: a
//! backtracking line search on the composite objective (Vaswani et al. 2019; Adam-SLS and
//! the per-group split of Kenneweg et al. 2023), as the language specifies it
//! (docs/language.md, "Methods"; the registry entry in `crate::method_spec`):
//!
//! `eta <- grow * eta_prev` (`eta = lr` at step 0); while `F(x - eta d) > F(x) - c eta (g . d)`
//! and fewer than 100 tries, `eta <- shrink * eta`; then `x <- x - eta d`.
//!
//! - `direction = gd`: `d = g`. `direction = adam`: `m`, `s` updated as adam updates them
//!   (`m <- beta1 m + (1-beta1) g; s <- beta2 s + (1-beta2) g^2`, fused into the
//!   evaluation), `d = g / (sqrt(s_hat) + eps)` in the test and `m_hat / (sqrt(s_hat) +
//!   eps)` in the update, with `m_hat = m / (1 - beta1^t)`, `s_hat = s / (1 - beta2^t)`,
//!   `t = k + 1`.
//! - `groups = variables`: one step size per group of coordinates (a junction family, and
//!   one for all private variables: [`super::MethodContext::for_problem`]). In the first 5
//!   steps every group is searched together (one `eta`, exactly as `groups = all`); from
//!   step 5 on, step `k` searches group `h = (k - 5) mod G` only: the trial point moves
//!   group `h` alone, `x - eta d_h` (`d_h`: `d` on the group's coordinates, zero
//!   elsewhere), the test is `F(x - eta d_h) > F(x) - c eta (g . d_h)`, and the step moves
//!   group `h` alone; the other groups keep their last step sizes for their turn. (Moving
//!   every group with its kept step size while testing one group's, or testing the whole
//!   step, was tried: the first is not a descent method, its objective rose from 2.3 to
//!   3.8 on examples/layered_armijo.opt, and the second can fail for every `eta` when the
//!   others' kept steps alone increase `F`. Moving the searched group alone is a block
//!   line search that always finds a step on a smooth objective and never increases `F`.)
//!
//! A trial's objective is a value-only evaluation ([`Executor::evaluate_value`]); the dot
//! products are block-wise reductions ([`Executor::reduce`]): every backend gives the
//! serial bits. A trial whose objective is NaN is rejected (the test is written
//! `!(F_trial <= F - ...)`). After 100 rejected trials the method stops the run
//! ([`MethodStop::NoProgress`]), keeping the current iterate. The step sizes `eta_prev` (one
//! per group) are the method's scalars, so checkpoints keep them.
//!
//! [`Executor::evaluate_value`]: crate::run::executor::Executor::evaluate_value
//! [`Executor::reduce`]: crate::run::executor::Executor::reduce

use super::{Block, Method, MethodContext, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::MethodConfig;
use crate::run::executor::Evaluation;
use crate::run::lanes::{fixed_order_fold_indexed, map2_lanes};
use std::ops::Range;

/// Trials before a line search gives up.
pub(crate) const MAX_TRIES: u32 = 100;

/// With `groups = variables`: the first steps, in which every group is searched together.
const TOGETHER_STEPS: u64 = 5;

/// Adam's parameters, for `direction = adam`.
#[derive(Clone, Copy)]
struct AdamParams {
    beta1: f64,
    beta2: f64,
    eps: f64,
}

/// The coordinate groups of `groups = variables`.
struct Groups {
    /// Per coordinate: its group.
    group_of: Vec<u32>,
    /// The scalars' names, `eta_prev.<group>`.
    names: &'static [&'static str],
}

/// The Armijo line search.
pub struct Armijo {
    config: MethodConfig,
    lr: f64,
    c: f64,
    shrink: f64,
    grow: f64,
    adam: Option<AdamParams>,
    groups: Option<Groups>,
    /// The coordinates this process keeps current (the executor's local runs).
    runs: Vec<Range<usize>>,
    stats: StepStats,
}

impl Armijo {
    /// From a resolved `armijo(...)`; `groups = variables` takes its groups from `context`.
    ///
    /// # Errors
    /// `groups = variables` without groups in `context`.
    pub fn new(config: MethodConfig, context: &MethodContext) -> Result<Armijo, String> {
        let adam = (config.choice("direction") == "adam").then(|| AdamParams {
            beta1: config.number("beta1"),
            beta2: config.number("beta2"),
            eps: config.number("eps"),
        });
        let groups = if config.choice("groups") == "variables" {
            if context.groups.is_empty() {
                return Err(
                    "`armijo(groups = variables)` needs the problem's variables: build \
                            it with `build_with` and `MethodContext::for_problem`"
                        .into(),
                );
            }
            let apex: usize = context.groups.iter().map(|g| g.coordinates.len()).sum();
            let mut group_of = vec![u32::MAX; apex];
            for (k, group) in context.groups.iter().enumerate() {
                for &c in &group.coordinates {
                    match group_of.get_mut(c) {
                        Some(slot) if *slot == u32::MAX => *slot = k as u32,
                        _ => {
                            return Err(format!(
                                "coordinate {c} of group `{}` is out of range or in two groups",
                                group.name
                            ))
                        }
                    }
                }
            }
            // The names live as long as the run (one small leak per method built).
            let names: Vec<&'static str> = context
                .groups
                .iter()
                .map(|g| &*Box::leak(format!("eta_prev.{}", g.name).into_boxed_str()))
                .collect();
            Some(Groups {
                group_of,
                names: Box::leak(names.into_boxed_slice()),
            })
        } else {
            None
        };
        Ok(Armijo {
            lr: config.number("lr"),
            c: config.number("c"),
            shrink: config.number("shrink"),
            grow: config.number("grow"),
            config,
            adam,
            groups,
            runs: Vec::new(),
            stats: StepStats::default(),
        })
    }
}

/// Adam's moments, fused into the evaluation: `m' = beta1 m + (1-beta1) g`,
/// `s' = beta2 s + (1-beta2) g^2`.
#[derive(Clone, Copy)]
struct MomentsRule {
    beta1: f64,
    beta2: f64,
}

impl UpdateRule for MomentsRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let (beta1, beta2) = (self.beta1, self.beta2);
        let [_, m, s, ..] = block.current;
        let [_, next_m, next_s, ..] = block.next;
        map2_lanes(next_m, m, block.gradient, |m, g| {
            beta1 * m + (1.0 - beta1) * g
        });
        map2_lanes(next_s, s, block.gradient, |s, g| {
            beta2 * s + (1.0 - beta2) * (g * g)
        });
    }
}

/// For `direction = adam`: `m'`, `s'`, `1 - beta1^t`, `1 - beta2^t`, `eps`.
type AdamTerms<'a> = (&'a [f64], &'a [f64], f64, f64, f64);

/// The search direction at one coordinate: `test` (in the sufficient-decrease test and the
/// trial point) and `update` (in the accepted step).
struct Direction<'a> {
    gradient: &'a [f64],
    adam: Option<AdamTerms<'a>>,
}

impl Direction<'_> {
    #[inline(always)]
    fn test(&self, i: usize) -> f64 {
        match self.adam {
            None => self.gradient[i],
            Some((_, s, _, c2, eps)) => self.gradient[i] / ((s[i] / c2).sqrt() + eps),
        }
    }

    #[inline(always)]
    fn update(&self, i: usize) -> f64 {
        match self.adam {
            None => self.gradient[i],
            Some((m, s, c1, c2, eps)) => (m[i] / c1) / ((s[i] / c2).sqrt() + eps),
        }
    }
}

impl Method for Armijo {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn vectors(&self) -> &'static [&'static str] {
        match self.adam {
            None => &["values"],
            Some(_) => &["values", "m", "s"],
        }
    }

    fn scalars(&self) -> &'static [&'static str] {
        match &self.groups {
            None => &["eta_prev"],
            Some(groups) => groups.names,
        }
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let step = context.step;
        let evaluation = match self.adam {
            Some(a) => context.fused(
                0,
                &MomentsRule {
                    beta1: a.beta1,
                    beta2: a.beta2,
                },
            ),
            None => context.executor.evaluate(context.current[0]),
        };
        if !evaluation.objective.is_finite() || !evaluation.gradient_norm.is_finite() {
            return Ok(evaluation); // the solver stops (divergence)
        }
        if (context.stops_here)(&evaluation) {
            return Ok(evaluation); // no step follows: no trials
        }
        if self.runs.is_empty() {
            self.runs = context.executor.local_runs().to_vec();
        }
        let previous = context.current_scalars;
        // The group searched this step (`None`: all together).
        let searched = match &self.groups {
            Some(groups) if step >= TOGETHER_STEPS => {
                assert_eq!(
                    groups.group_of.len(),
                    context.current[0].len(),
                    "armijo: the groups do not cover the iterate"
                );
                Some(((step - TOGETHER_STEPS) % groups.names.len() as u64) as usize)
            }
            _ => None,
        };
        let first_eta = if step == 0 {
            self.lr
        } else {
            self.grow * previous[searched.unwrap_or(0)]
        };
        let group_of: &[u32] = self.groups.as_ref().map_or(&[], |g| &g.group_of);
        let x = context.current[0];
        let (first, rest) = context.next.split_at_mut(1);
        let trial = &mut *first[0];
        let t = (step + 1) as f64;
        let adam = self.adam.map(|a| {
            (
                &*rest[0],
                &*rest[1],
                1.0 - a.beta1.powf(t),
                1.0 - a.beta2.powf(t),
                a.eps,
            )
        });
        let executor = &mut *context.executor;
        // The searched coordinates' g . d (every coordinate's when all are searched).
        let [searched_dot] = executor.reduce(|range, gradient| {
            let direction = Direction { gradient, adam };
            let start = range.start;
            [match searched {
                None => fixed_order_fold_indexed(range.len(), |j| {
                    gradient[start + j] * direction.test(start + j)
                }),
                Some(s) => fixed_order_fold_indexed(range.len(), |j| {
                    let i = start + j;
                    if group_of[i] as usize == s {
                        gradient[i] * direction.test(i)
                    } else {
                        0.0
                    }
                }),
            }]
        });
        let f = evaluation.objective;
        let c = self.c;
        let in_search = |i: usize| searched.map_or(true, |s| group_of[i] as usize == s);
        let mut eta = first_eta;
        let mut tries = 0;
        loop {
            tries += 1;
            {
                let direction = Direction {
                    gradient: executor.gradient(),
                    adam,
                };
                move_searched(trial, x, &self.runs, &in_search, eta, |i| direction.test(i));
            }
            let value = executor.evaluate_value(trial);
            self.stats.trials += 1;
            if value <= f - c * eta * searched_dot {
                break;
            }
            if tries >= MAX_TRIES {
                return Err(MethodStop::NoProgress(format!(
                    "armijo: no step size in {MAX_TRIES} tries (from {first_eta:e} down to \
                     {eta:e}) decreased the objective enough (F = {f:e}, g . d = \
                     {searched_dot:e}); the objective may be non-smooth or its gradient \
                     inaccurate here, or the iterate at a minimum to rounding: stop earlier \
                     (a gradient tolerance), or try a smaller `c` or another method"
                )));
            }
            eta *= self.shrink;
        }
        if adam.is_some() || searched.is_some() {
            // The step: the searched group (every group in the first steps) moves with
            // `eta`; the others stay, keeping their step sizes for their turn.
            let direction = Direction {
                gradient: executor.gradient(),
                adam,
            };
            move_searched(trial, x, &self.runs, &in_search, eta, |i| {
                direction.update(i)
            });
        }
        let next_scalars = &mut *context.next_scalars;
        match searched {
            None => next_scalars.fill(eta),
            Some(s) => {
                next_scalars.copy_from_slice(previous);
                next_scalars[s] = eta;
            }
        }
        self.stats.record(eta);
        Ok(evaluation)
    }
}

/// `trial = x - eta d` on the searched coordinates of `runs`, `x` elsewhere: the trial point
/// of the test (with the test direction) and the accepted step (with the update's).
fn move_searched(
    trial: &mut [f64],
    x: &[f64],
    runs: &[Range<usize>],
    in_search: &impl Fn(usize) -> bool,
    eta: f64,
    d: impl Fn(usize) -> f64,
) {
    for run in runs {
        for i in run.clone() {
            trial[i] = if in_search(i) {
                x[i] - eta * d(i)
            } else {
                x[i]
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_close, dot, ill_conditioned_quadratic, rosenbrock_chain, run, TestProblem,
        CLASSIC_START,
    };
    use super::super::{build_with, MethodContext};
    use crate::method_spec::{resolve_method, Given, Schedule};
    use crate::run::method::Method;
    use crate::run::solver::StopReason;

    /// `armijo(...)` with numbers and names, for `reference` (its groups if asked).
    fn armijo(
        reference: &TestProblem,
        numbers: &[(&str, f64)],
        names: &[(&str, &str)],
    ) -> Box<dyn Method> {
        let mut given: Vec<(&str, Given<'_>)> = numbers
            .iter()
            .map(|&(p, v)| (p, Given::Number(v)))
            .collect();
        given.extend(names.iter().map(|&(p, v)| (p, Given::Name(v))));
        let config = resolve_method("armijo", &given).unwrap();
        let context = MethodContext::for_problem(&reference.problem);
        build_with(&config, Schedule::Constant, &context).unwrap()
    }

    /// The parameters of the reference line search.
    struct Params {
        lr: f64,
        c: f64,
        shrink: f64,
        grow: f64,
        adam: Option<(f64, f64, f64)>,
        /// Per coordinate its group, and the group count (groups = variables).
        groups: Option<(Vec<usize>, usize)>,
    }

    /// The language's armijo, written out with plain loops over `Vec`s.
    fn reference_armijo(r: &TestProblem, p: &Params, steps: u64) -> Vec<f64> {
        let mut x = r.problem.initial_values.clone();
        let n = x.len();
        let group_count = p.groups.as_ref().map_or(1, |g| g.1);
        let group = |i: usize| p.groups.as_ref().map_or(0, |g| g.0[i]);
        let mut eta_prev = vec![0.0; group_count];
        let (mut m, mut s) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..steps {
            let g = r.gradient(&x);
            let f = r.value(&x);
            let t = (k + 1) as f64;
            let (mut dt, mut du) = (g.clone(), g.clone());
            if let Some((b1, b2, eps)) = p.adam {
                for i in 0..n {
                    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                    s[i] = b2 * s[i] + (1.0 - b2) * (g[i] * g[i]);
                    let denominator = (s[i] / (1.0 - b2.powf(t))).sqrt() + eps;
                    dt[i] = g[i] / denominator;
                    du[i] = (m[i] / (1.0 - b1.powf(t))) / denominator;
                }
            }
            let searched = match p.groups {
                Some(_) if k >= 5 => Some(((k - 5) % group_count as u64) as usize),
                _ => None,
            };
            let mut eta = if k == 0 {
                p.lr
            } else {
                p.grow * eta_prev[searched.unwrap_or(0)]
            };
            let in_search = |i: usize| searched.map_or(true, |s| group(i) == s);
            let mut b = 0.0;
            for i in 0..n {
                if in_search(i) {
                    b += g[i] * dt[i];
                }
            }
            let mut tries = 0;
            loop {
                tries += 1;
                let trial: Vec<f64> = (0..n)
                    .map(|i| {
                        if in_search(i) {
                            x[i] - eta * dt[i]
                        } else {
                            x[i]
                        }
                    })
                    .collect();
                if r.value(&trial) <= f - p.c * eta * b {
                    break;
                }
                assert!(tries < 100, "the reference line search failed");
                eta *= p.shrink;
            }
            x = (0..n)
                .map(|i| {
                    if in_search(i) {
                        x[i] - eta * du[i]
                    } else {
                        x[i]
                    }
                })
                .collect();
            match searched {
                None => eta_prev.fill(eta),
                Some(s) => eta_prev[s] = eta,
            }
        }
        x
    }

    const DEFAULTS: Params = Params {
        lr: 1.0,
        c: 0.1,
        shrink: 0.5,
        grow: 2.0,
        adam: None,
        groups: None,
    };

    #[test]
    fn direction_gd_follows_the_reference_on_quadratics_and_the_rosenbrock_chain() {
        for seed in 0..4 {
            let r = ill_conditioned_quadratic(seed, 12, 7, 0.001);
            let ran = run(&r.problem, &mut *armijo(&r, &[], &[]), 100);
            assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
            let expected = reference_armijo(&r, &DEFAULTS, 100);
            assert_close(&ran.state.values, &expected, 1e-12, &format!("seed {seed}"));
            assert!(ran.value_evaluations >= 100);
        }
        let r = rosenbrock_chain(20, CLASSIC_START);
        let params = Params {
            lr: 0.01,
            c: 0.3,
            shrink: 0.7,
            grow: 1.5,
            ..DEFAULTS
        };
        let mut method = armijo(
            &r,
            &[("lr", 0.01), ("c", 0.3), ("shrink", 0.7), ("grow", 1.5)],
            &[],
        );
        let ran = run(&r.problem, &mut *method, 100);
        assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
        assert_close(
            &ran.state.values,
            &reference_armijo(&r, &params, 100),
            1e-12,
            "chain",
        );
        let stats = method.stats();
        assert!(stats.trials > 100 && stats.min_step_size < stats.max_step_size);
    }

    #[test]
    fn direction_adam_follows_the_reference() {
        let params = Params {
            adam: Some((0.9, 0.999, 1e-8)),
            lr: 0.1,
            ..DEFAULTS
        };
        for seed in 0..3 {
            let r = ill_conditioned_quadratic(seed + 10, 10, 6, 0.001);
            let mut method = armijo(&r, &[("lr", 0.1)], &[("direction", "adam")]);
            assert_eq!(method.vectors(), ["values", "m", "s"]);
            let ran = run(&r.problem, &mut *method, 100);
            assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
            let expected = reference_armijo(&r, &params, 100);
            assert_close(&ran.state.values, &expected, 1e-12, &format!("seed {seed}"));
        }
        let r = rosenbrock_chain(15, CLASSIC_START);
        let params = Params {
            adam: Some((0.8, 0.99, 1e-6)),
            lr: 0.05,
            ..DEFAULTS
        };
        let mut method = armijo(
            &r,
            &[("lr", 0.05), ("beta1", 0.8), ("beta2", 0.99), ("eps", 1e-6)],
            &[("direction", "adam")],
        );
        let ran = run(&r.problem, &mut *method, 100);
        assert_close(
            &ran.state.values,
            &reference_armijo(&r, &params, 100),
            1e-12,
            "chain",
        );
    }

    #[test]
    fn groups_variables_searches_each_junction_family_and_the_private_variables_in_turn() {
        for seed in 0..3 {
            let r = ill_conditioned_quadratic(seed + 20, 9, 5, 0.001);
            // Independently of `MethodContext`: the groups from the variables' names, in
            // order of the first junction of each family; private variables last.
            let mut order: Vec<&str> = Vec::new();
            let mut family_of = Vec::new();
            for name in &r.names {
                let family = if name.contains('.') {
                    "private"
                } else {
                    &name[..name.find('[').unwrap()]
                };
                family_of.push(family);
            }
            for variable in r.problem.all_variables() {
                let name = variable.name().to_string();
                let family = &family_of[variable.coordinates()[0]];
                if !name.contains('.') && !order.contains(family) {
                    order.push(family);
                }
            }
            order.push("private");
            assert_eq!(order.len(), 3);
            let groups: Vec<usize> = family_of
                .iter()
                .map(|f| order.iter().position(|o| o == f).unwrap())
                .collect();
            let params = Params {
                groups: Some((groups, 3)),
                ..DEFAULTS
            };
            let mut method = armijo(&r, &[], &[("groups", "variables")]);
            assert_eq!(
                method.scalars().len(),
                3,
                "one step size per family and one for private variables"
            );
            // Per-group step sizes undo this problem's ill-conditioning (the flat `y` group
            // gets eta = 512): it is solved to rounding by step 60, after which no two
            // implementations agree on a line search's decisions. 50 steps: 15 searched
            // one group at a time.
            let ran = run(&r.problem, &mut *method, 50);
            assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
            let expected = reference_armijo(&r, &params, 50);
            assert_close(&ran.state.values, &expected, 1e-12, &format!("seed {seed}"));
            // The groups' step sizes differ by the end (each searched on its own).
            let etas = &ran.state.scalars;
            assert!(etas[0] != etas[1] || etas[1] != etas[2], "{etas:?}");
            // ... and the run differs from groups = all.
            let all = reference_armijo(&r, &DEFAULTS, 50);
            assert!(dot(&all, &all) != dot(&expected, &expected));
        }
    }

    #[test]
    fn a_search_that_fails_100_times_stops_with_no_progress_keeping_the_last_iterate() {
        // Step 0 is accepted (eta = 0.1); step 1 starts at eta = 1e5 and 100 shrinks by
        // 0.99 stay far above any acceptable step.
        let r = ill_conditioned_quadratic(3, 4, 2, 0.5);
        let mut method = armijo(&r, &[("lr", 0.001), ("grow", 1e6), ("shrink", 0.99)], &[]);
        let ran = run(&r.problem, &mut *method, 10);
        assert_eq!(ran.outcome.stop_reason, StopReason::NoProgress);
        assert_eq!(ran.state.step, 1);
        let message = ran.outcome.message.unwrap();
        assert!(message.contains("100 tries"), "{message}");
        let params = Params {
            lr: 0.001,
            grow: 1e6,
            shrink: 0.99,
            ..DEFAULTS
        };
        // The kept iterate is the one accepted at step 0, bit for bit.
        assert_close(
            &ran.state.values,
            &reference_armijo(&r, &params, 1),
            0.0,
            "kept",
        );
        assert_eq!(method.stats().trials, 1 + 100);
        // The reported evaluation is the kept iterate's.
        assert_eq!(ran.outcome.evaluation.objective, {
            let x = &ran.state.values;
            let plan =
                std::sync::Arc::new(crate::run::plan::Plan::for_problem(&r.problem).unwrap());
            crate::run::executor::Executor::new(plan, crate::run::backend::Backend::serial())
                .evaluate(x)
                .objective
        });
    }

    #[test]
    fn groups_variables_needs_the_problem() {
        let config = resolve_method("armijo", &[("groups", Given::Name("variables"))]).unwrap();
        let error = build_with(&config, Schedule::Constant, &MethodContext::default())
            .err()
            .unwrap();
        assert!(error.contains("MethodContext::for_problem"), "{error}");
    }
}
