//! `lbfgs(memory = 10, c = 1e-4)`: limited-memory BFGS (Nocedal 1980; Nocedal & Wright,
//! *Numerical Optimization*, algorithms 7.4 and 7.5).
//!
//! At step k, with `g = grad F(x)`:
//! 1. The pair of the last step, `s = x_k - x_{k-1}`, `y = g_k - g_{k-1}`, joins the last
//!    `memory` pairs unless `s . y <= 1e-10 |s| |y|` (skipped: BFGS needs `s . y > 0`).
//! 2. `d = H g` by the two-loop recursion on the pairs (newest first, then oldest first),
//!    with the initial inverse Hessian `gamma I`, `gamma = (s . y) / (y . y)` of the newest
//!    pair (Nocedal & Wright (7.20)); with no pair, `gamma = 1`, so the first step's
//!    direction is the gradient itself.
//! 3. If `g . d <= 0` (not a descent direction) the method stops the run
//!    ([`MethodStop::NoProgress`]), keeping `x`.
//! 4. Backtracking Armijo line search: `eta = 1, 1/2, 1/4, ...` until
//!    `F(x - eta d) <= F(x) - c eta (g . d)`, at most 100 tries (then `NoProgress`);
//!    `x <- x - eta d`.
//!
//! Every dot product is a block-wise reduction ([`Executor::reduce`]) and the trials are
//! value-only evaluations, so every backend gives the serial bits. On a distributed backend
//! each dot product is one small all-gather: `2 len + 2` per step (`len` pairs kept) plus
//! one per trial; the vectors live on each rank's local runs only.
//!
//! **Memory.** The pairs do not fit the solver's state vectors; the method keeps them, with
//! the last step's `s` and gradient, and hands them to checkpoints through
//! [`Method::memory`] / [`Method::restore_memory`], tagged with the step whose proposal last
//! updated them. A propose at that same step again (a run resumed from a checkpoint written
//! while observing that step) does not add the pair twice, so the resumed run continues with
//! the same bits. A propose at any step other than that one or the next (a fresh start, or a
//! state from elsewhere) starts with no pair. When the solver rolls its vectors back after a
//! divergence, the pairs are not touched: the method returns at once on a non-finite
//! evaluation (before updating anything), and the run stops there.
//!
//! [`Executor::reduce`]: crate::run::executor::Executor::reduce

use super::armijo::MAX_TRIES;
use super::{Method, MethodStop, StepContext, StepStats};
use crate::method_spec::MethodConfig;
use crate::run::executor::{Evaluation, Executor};
use crate::run::lanes::fixed_order_fold_indexed;
use std::collections::VecDeque;
use std::ops::Range;

/// A pair (s, y) with its products.
struct Pair {
    s: Vec<f64>,
    y: Vec<f64>,
    /// `s . y` (positive: the skip rule).
    sy: f64,
    /// `y . y`.
    yy: f64,
}

/// Limited-memory BFGS with a backtracking line search.
pub struct Lbfgs {
    config: MethodConfig,
    memory: usize,
    c: f64,
    /// The kept pairs, oldest first.
    pairs: VecDeque<Pair>,
    /// Buffers of dropped or skipped pairs, for reuse.
    free: Vec<Pair>,
    /// The step whose proposal last updated the memory.
    last_step: Option<u64>,
    /// `x_{k+1} - x_k` of that proposal.
    pending_s: Vec<f64>,
    /// The gradient at that proposal's `x_k`.
    previous_gradient: Vec<f64>,
    /// The direction (the two-loop recursion's `q`, then `r = d`).
    direction: Vec<f64>,
    /// The two-loop recursion's `alpha_i`.
    alphas: Vec<f64>,
    runs: Vec<Range<usize>>,
    stats: StepStats,
    /// The evaluation at the point the last step accepted, when its first trial was a
    /// full evaluation ([`Lbfgs::propose`]): the next step's evaluation, if the executor
    /// has evaluated nothing since (its gradient is then the one at that point).
    accepted: Option<Accepted>,
}

/// A full evaluation at an accepted point, kept for the next step.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    /// The step it serves (the accepting step + 1).
    step: u64,
    /// The executor's evaluation count just after it.
    evaluations: u64,
    /// The data it read ([`Executor::data_version`]: a minibatch run draws new rows at
    /// the next step, and then the evaluation cannot serve it).
    data_version: u64,
    evaluation: Evaluation,
}

impl Lbfgs {
    /// From a resolved `lbfgs(...)`.
    pub fn new(config: MethodConfig) -> Lbfgs {
        Lbfgs {
            memory: config.number("memory") as usize,
            c: config.number("c"),
            config,
            pairs: VecDeque::new(),
            free: Vec::new(),
            last_step: None,
            pending_s: Vec::new(),
            previous_gradient: Vec::new(),
            direction: Vec::new(),
            alphas: Vec::new(),
            runs: Vec::new(),
            stats: StepStats::default(),
            accepted: None,
        }
    }

    /// Adds the pair of the last step, unless the skip rule drops it.
    fn add_pair(&mut self, executor: &mut Executor) {
        let n = self.pending_s.len();
        let mut pair = self.free.pop().unwrap_or_else(|| Pair {
            s: vec![0.0; n],
            y: vec![0.0; n],
            sy: 0.0,
            yy: 0.0,
        });
        {
            let gradient = executor.gradient();
            for run in &self.runs {
                for i in run.clone() {
                    pair.y[i] = gradient[i] - self.previous_gradient[i];
                }
            }
        }
        std::mem::swap(&mut pair.s, &mut self.pending_s);
        let (s, y) = (&pair.s, &pair.y);
        let [sy, ss, yy] = executor.reduce(|range, _| {
            let (start, len) = (range.start, range.len());
            [
                fixed_order_fold_indexed(len, |j| s[start + j] * y[start + j]),
                fixed_order_fold_indexed(len, |j| s[start + j] * s[start + j]),
                fixed_order_fold_indexed(len, |j| y[start + j] * y[start + j]),
            ]
        });
        if sy > 1e-10 * (ss.sqrt() * yy.sqrt()) {
            pair.sy = sy;
            pair.yy = yy;
            if self.pairs.len() == self.memory {
                let dropped = self.pairs.pop_front().expect("memory >= 1");
                self.free.push(dropped);
            }
            self.pairs.push_back(pair);
        } else {
            self.free.push(pair);
        }
    }
}

/// `a . b` by blocks (every backend, the serial bits).
fn dot(executor: &mut Executor, a: &[f64], b: &[f64]) -> f64 {
    executor.reduce(|range, _| {
        let (start, len) = (range.start, range.len());
        [fixed_order_fold_indexed(len, |j| {
            a[start + j] * b[start + j]
        })]
    })[0]
}

impl Method for Lbfgs {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let step = context.step;
        let x = context.current[0];
        let n = x.len();
        let executor = &mut *context.executor;
        // The last step's accepted trial, if it was a full evaluation and nothing was
        // evaluated since: the same point (the solver's slots rotate the trial into
        // `current`), so the same bits as evaluating again.
        let evaluation = match self.accepted.take() {
            Some(a)
                if a.step == step
                    && a.evaluations == executor.evaluations()
                    && a.data_version == executor.data_version() =>
            {
                a.evaluation
            }
            _ => executor.evaluate(x),
        };
        if !evaluation.objective.is_finite() || !evaluation.gradient_norm.is_finite() {
            return Ok(evaluation); // the solver stops (divergence)
        }
        if (context.stops_here)(&evaluation) {
            // No step follows: no trials. The pair of this step is added on a resumed run
            // (the memory is tagged with its step).
            return Ok(evaluation);
        }
        if self.runs.is_empty() {
            self.runs = executor.local_runs().to_vec();
        }
        if self.pending_s.len() != n {
            self.pending_s = vec![0.0; n];
            self.previous_gradient = vec![0.0; n];
            self.direction = vec![0.0; n];
            self.last_step = None;
        }
        match self.last_step {
            Some(last) if last == step => {} // resumed: the memory is this step's already
            Some(last) if last + 1 == step => self.add_pair(executor),
            _ => {
                while let Some(pair) = self.pairs.pop_front() {
                    self.free.push(pair);
                }
            }
        }
        // The two-loop recursion: q = g; newest to oldest, alpha_i = rho_i s_i . q,
        // q -= alpha_i y_i; r = gamma q; oldest to newest, beta = rho_i y_i . r,
        // r += (alpha_i - beta) s_i.
        let mut q = std::mem::take(&mut self.direction);
        {
            let gradient = executor.gradient();
            for run in &self.runs {
                q[run.clone()].copy_from_slice(&gradient[run.clone()]);
            }
        }
        self.alphas.clear();
        self.alphas.resize(self.pairs.len(), 0.0);
        for (k, pair) in self.pairs.iter().enumerate().rev() {
            let alpha = (1.0 / pair.sy) * dot(executor, &pair.s, &q);
            self.alphas[k] = alpha;
            for run in &self.runs {
                for i in run.clone() {
                    q[i] -= alpha * pair.y[i];
                }
            }
        }
        let gamma = self.pairs.back().map_or(1.0, |p| p.sy / p.yy);
        for run in &self.runs {
            for i in run.clone() {
                q[i] *= gamma;
            }
        }
        for (k, pair) in self.pairs.iter().enumerate() {
            let beta = (1.0 / pair.sy) * dot(executor, &pair.y, &q);
            let factor = self.alphas[k] - beta;
            for run in &self.runs {
                for i in run.clone() {
                    q[i] += factor * pair.s[i];
                }
            }
        }
        let d = q;
        let gd = {
            let d = &d;
            executor.reduce(|range, gradient| {
                let (start, len) = (range.start, range.len());
                [fixed_order_fold_indexed(len, |j| {
                    gradient[start + j] * d[start + j]
                })]
            })[0]
        };
        if gd.is_nan() || gd <= 0.0 {
            self.direction = d;
            return Err(MethodStop::NoProgress(format!(
                "lbfgs: the direction is not a descent direction (g . d = {gd:e} with {} \
                 pairs kept): the gradient is zero or not the objective's (a non-smooth \
                 objective?); stop earlier with a gradient tolerance, or try `armijo`",
                self.pairs.len()
            )));
        }
        let trial = &mut *context.next[0];
        let f = evaluation.objective;
        {
            let gradient = executor.gradient();
            for run in &self.runs {
                self.previous_gradient[run.clone()].copy_from_slice(&gradient[run.clone()]);
            }
        }
        let mut eta = 1.0;
        let mut tries = 0;
        let mut full: Option<Evaluation>;
        loop {
            tries += 1;
            for run in &self.runs {
                for i in run.clone() {
                    trial[i] = x[i] - eta * d[i];
                }
            }
            // With curvature pairs the unit step is usually accepted: evaluate the first
            // trial with its gradient, which the next step then needs (a value-only trial
            // and the next step's evaluation cost more than one full evaluation). Without
            // pairs (d = g, a poor scale) and after a rejection, value only.
            let value = if tries == 1 && !self.pairs.is_empty() {
                let evaluation = executor.evaluate(trial);
                full = Some(evaluation);
                evaluation.objective
            } else {
                full = None;
                executor.evaluate_value(trial)
            };
            self.stats.trials += 1;
            if value <= f - self.c * eta * gd {
                break;
            }
            if tries >= MAX_TRIES {
                self.direction = d;
                if !self.pairs.is_empty() {
                    // The solver reports the executor's last full evaluation: make it the
                    // current iterate's again (a trial's replaced it; same bits as before).
                    executor.evaluate(x);
                }
                return Err(MethodStop::NoProgress(format!(
                    "lbfgs: no step size in {MAX_TRIES} halvings from 1 (down to {eta:e}) \
                     decreased the objective enough (F = {f:e}, g . d = {gd:e}); the \
                     objective may be non-smooth or its gradient inaccurate here: stop \
                     earlier with a gradient tolerance, or try `armijo`"
                )));
            }
            eta *= 0.5;
        }
        {
            for run in &self.runs {
                for i in run.clone() {
                    self.pending_s[i] = trial[i] - x[i];
                }
            }
        }
        self.direction = d;
        self.last_step = Some(step);
        self.stats.record(eta);
        self.accepted = full.map(|evaluation| Accepted {
            step: step + 1,
            evaluations: executor.evaluations(),
            data_version: executor.data_version(),
            evaluation,
        });
        Ok(evaluation)
    }

    fn memory(&self) -> Vec<(String, Vec<f64>)> {
        let mut memory = vec![
            (
                "step".to_string(),
                vec![self.last_step.map_or(-1.0, |s| s as f64)],
            ),
            ("pending_s".to_string(), self.pending_s.clone()),
            (
                "previous_gradient".to_string(),
                self.previous_gradient.clone(),
            ),
            (
                "pair_products".to_string(),
                self.pairs.iter().flat_map(|p| [p.sy, p.yy]).collect(),
            ),
        ];
        for (k, pair) in self.pairs.iter().enumerate() {
            memory.push((format!("s.{k}"), pair.s.clone()));
            memory.push((format!("y.{k}"), pair.y.clone()));
        }
        memory
    }

    fn restore_memory(&mut self, memory: &[(String, Vec<f64>)]) -> Result<(), String> {
        let get = |name: &str| -> Result<&Vec<f64>, String> {
            memory
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("lbfgs: the memory lacks `{name}`"))
        };
        let step = match get("step")?.as_slice() {
            [s] if *s == -1.0 => None,
            [s] if *s >= 0.0 && s.fract() == 0.0 => Some(*s as u64),
            _ => return Err("lbfgs: `step` is not a step number".into()),
        };
        let pending_s = get("pending_s")?.clone();
        let previous_gradient = get("previous_gradient")?.clone();
        let products = get("pair_products")?;
        let n = pending_s.len();
        let count = products.len() / 2;
        if previous_gradient.len() != n || products.len() % 2 != 0 || count > self.memory {
            return Err(format!(
                "lbfgs: the memory's vectors differ in length, or it holds more than \
                 memory = {} pairs",
                self.memory
            ));
        }
        if memory.len() != 4 + 2 * count {
            return Err("lbfgs: the memory holds unknown entries".into());
        }
        let mut pairs = VecDeque::with_capacity(count);
        for k in 0..count {
            let (s, y) = (get(&format!("s.{k}"))?, get(&format!("y.{k}"))?);
            if s.len() != n || y.len() != n {
                return Err(format!("lbfgs: pair {k} has the wrong length"));
            }
            pairs.push_back(Pair {
                s: s.clone(),
                y: y.clone(),
                sy: products[2 * k],
                yy: products[2 * k + 1],
            });
        }
        self.pairs = pairs;
        self.free.clear();
        self.last_step = step;
        self.pending_s = pending_s;
        self.previous_gradient = previous_gradient;
        self.direction = vec![0.0; n];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::by_name;
    use super::super::testing::{
        assert_close, ill_conditioned_quadratic, lower, rosenbrock_chain, run, solve_from,
        TestProblem, CLASSIC_START,
    };
    use crate::run::backend::Backend;
    use crate::run::method::Method;
    use crate::run::solver::{SolverState, StopReason};

    /// `a . b` summed as the executor's reductions sum (blocks of `SUM_BLOCK` coordinates,
    /// each in eight interleaved lanes, blocks in order).
    fn blocked_dot(a: &[f64], b: &[f64]) -> f64 {
        let terms: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        let mut sum = 0.0;
        for block in terms.chunks(crate::run::plan::SUM_BLOCK) {
            sum += crate::run::lanes::fixed_order_fold(block, |v| v);
        }
        sum
    }

    /// L-BFGS as the module doc writes it, with plain loops over `Vec`s. Returns the
    /// iterate after `steps` steps and the step sizes taken.
    fn reference_lbfgs(r: &TestProblem, memory: usize, c: f64, steps: u64) -> (Vec<f64>, Vec<f64>) {
        let dot = blocked_dot;
        let mut x = r.problem.initial_values.clone();
        let n = x.len();
        let mut pairs: Vec<(Vec<f64>, Vec<f64>, f64, f64)> = Vec::new();
        let mut pending: Option<(Vec<f64>, Vec<f64>)> = None;
        let mut etas = Vec::new();
        for _ in 0..steps {
            let g = r.gradient(&x);
            let f = r.value(&x);
            if let Some((s, previous)) = pending.take() {
                let y: Vec<f64> = (0..n).map(|i| g[i] - previous[i]).collect();
                let (sy, ss, yy) = (dot(&s, &y), dot(&s, &s), dot(&y, &y));
                if sy > 1e-10 * (ss.sqrt() * yy.sqrt()) {
                    if pairs.len() == memory {
                        pairs.remove(0);
                    }
                    pairs.push((s, y, sy, yy));
                }
            }
            let mut q = g.clone();
            let mut alphas = vec![0.0; pairs.len()];
            for (k, (s, y, sy, _)) in pairs.iter().enumerate().rev() {
                alphas[k] = (1.0 / sy) * dot(s, &q);
                for i in 0..n {
                    q[i] -= alphas[k] * y[i];
                }
            }
            let gamma = pairs.last().map_or(1.0, |p| p.2 / p.3);
            let mut d: Vec<f64> = q.iter().map(|v| v * gamma).collect();
            for (k, (s, y, sy, _)) in pairs.iter().enumerate() {
                let beta = (1.0 / sy) * dot(y, &d);
                for i in 0..n {
                    d[i] += (alphas[k] - beta) * s[i];
                }
            }
            let gd = dot(&g, &d);
            assert!(
                gd > 0.0,
                "the reference's direction is not a descent direction"
            );
            let mut eta = 1.0;
            let trial = loop {
                let trial: Vec<f64> = (0..n).map(|i| x[i] - eta * d[i]).collect();
                if r.value(&trial) <= f - c * eta * gd {
                    break trial;
                }
                eta *= 0.5;
                assert!(eta > 1e-30, "the reference line search failed");
            };
            etas.push(eta);
            pending = Some(((0..n).map(|i| trial[i] - x[i]).collect(), g));
            x = trial;
        }
        (x, etas)
    }

    #[test]
    fn lbfgs_follows_the_reference_on_the_rosenbrock_chain_and_quadratics() {
        // The chain: the first steps are sensitive to rounding (differences grow to 1e-6
        // halfway), and both runs then converge to the same minimiser by step 100.
        for memory in [10, 3] {
            let r = rosenbrock_chain(30, CLASSIC_START);
            let mut method = by_name("lbfgs", &[("memory", memory as f64)]).unwrap();
            let ran = run(&r.problem, &mut *method, 100);
            assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
            let (expected, etas) = reference_lbfgs(&r, memory, 1e-4, 100);
            assert_close(
                &ran.state.values,
                &expected,
                1e-12,
                &format!("memory {memory}"),
            );
            let stats = method.stats();
            let smallest = etas.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(stats.min_step_size, smallest);
            assert!(stats.trials > 100 && stats.max_step_size == 1.0);
        }
        // Quadratics: solved to rounding by step 60 (then no two implementations agree on
        // the line search's decisions); 50 steps.
        for seed in 0..3 {
            let r = ill_conditioned_quadratic(seed + 5, 40, 20, 0.1);
            let mut method = by_name("lbfgs", &[("memory", 5.0)]).unwrap();
            let ran = run(&r.problem, &mut *method, 50);
            assert_eq!(ran.outcome.stop_reason, StopReason::MaxSteps);
            let (expected, _) = reference_lbfgs(&r, 5, 1e-4, 50);
            assert_close(&ran.state.values, &expected, 1e-12, &format!("seed {seed}"));
            // A unit step accepted at its first trial (evaluated with its gradient) is the
            // next step's evaluation: one evaluation per step, not two.
            let trials = method.stats().trials;
            let evaluations = ran.outcome.evaluations;
            assert!(
                evaluations + 40 <= 50 + trials,
                "seed {seed}: {evaluations} evaluations for 50 steps and {trials} trials"
            );
        }
    }

    #[test]
    fn a_direction_that_is_not_a_descent_direction_stops_with_no_progress() {
        // Step 0: d = g = -2, eta = 1/2 lands on the minimum exactly; step 1: g = 0.
        let p = lower(
            "objective f(a: real) { minimize (a - 1)^2; }
             composite c() { f(z); }
             solve c { method = lbfgs; init z = 0; }",
        );
        let ran = run(&p, &mut *by_name("lbfgs", &[]).unwrap(), 10);
        assert_eq!(ran.outcome.stop_reason, StopReason::NoProgress);
        assert_eq!((ran.state.step, ran.state.values.clone()), (1, vec![1.0]));
        let message = ran.outcome.message.unwrap();
        assert!(message.contains("not a descent direction"), "{message}");
        assert_eq!(ran.outcome.evaluation.objective, 0.0);
    }

    #[test]
    fn a_line_search_that_fails_100_times_stops_with_no_progress() {
        // |z| just right of its kink: every step from 1 down to 2^-99 overshoots.
        let p = lower(
            "objective f(a: real) { minimize abs(a); }
             composite c() { f(z); }
             solve c { method = lbfgs; init z = 1e-40; }",
        );
        let mut method = by_name("lbfgs", &[]).unwrap();
        let ran = run(&p, &mut *method, 10);
        assert_eq!(ran.outcome.stop_reason, StopReason::NoProgress);
        assert_eq!((ran.state.step, ran.state.values.clone()), (0, vec![1e-40]));
        assert!(ran.outcome.message.unwrap().contains("100 halvings"));
        assert_eq!(method.stats().trials, 100);
    }

    #[test]
    fn the_memory_round_trip_resumes_with_the_same_bits() {
        let r = rosenbrock_chain(12, CLASSIC_START);
        let solve = |method: &mut dyn Method, state: &mut SolverState, steps| {
            solve_from(&r.problem, method, Backend::serial(), state, steps)
        };
        let mut whole = SolverState::new(r.problem.initial_values.clone());
        solve(
            &mut *by_name("lbfgs", &[("memory", 4.0)]).unwrap(),
            &mut whole,
            25,
        );
        // Stop at step 9 (the memory is then step 9's proposal's), resume in a new method.
        let mut first = by_name("lbfgs", &[("memory", 4.0)]).unwrap();
        let mut state = SolverState::new(r.problem.initial_values.clone());
        solve(&mut *first, &mut state, 9);
        let memory = first.memory();
        assert_eq!(memory.len(), 4 + 2 * 4, "four pairs kept");
        let mut second = by_name("lbfgs", &[("memory", 4.0)]).unwrap();
        second.restore_memory(&memory).unwrap();
        assert_eq!(second.memory(), memory);
        solve(&mut *second, &mut state, 25);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&state.values), bits(&whole.values));
        // Without the memory, the resumed run differs.
        let mut state = SolverState::new(r.problem.initial_values.clone());
        solve(
            &mut *by_name("lbfgs", &[("memory", 4.0)]).unwrap(),
            &mut state,
            9,
        );
        solve(
            &mut *by_name("lbfgs", &[("memory", 4.0)]).unwrap(),
            &mut state,
            25,
        );
        assert_ne!(bits(&state.values), bits(&whole.values));
        // Bad memory is refused.
        let mut third = by_name("lbfgs", &[("memory", 2.0)]).unwrap();
        assert!(third.restore_memory(&memory).is_err());
        assert!(by_name("gd", &[("lr", 0.1)])
            .unwrap()
            .restore_memory(&memory)
            .is_err());
    }
}
