//! Test support for the methods: problems written as `.opt` text together with a
//! hand-written objective and gradient, straightforward reference implementations of the
//! methods and schedules (plain loops over `Vec<f64>`, written from docs/language.md and
//! nothing else of catopt), catopt's run of the same (lowered, planned and solved as
//! `catopt run` does), and a checkpoint round trip in the middle of a run.
use crate::cli::checkpoint::{
    checkpoint_bytes, parse_checkpoint, validate, Fingerprint, MethodRecord, StateLayout,
};
use crate::lower::{lower_text, Problem};
use crate::method_spec::{resolve_method, Given, MethodConfig, Schedule};
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::method::{build, StepStats};
use crate::run::plan::Plan;
use crate::run::solver::{solve, NoObserver, Outcome, SolverState, StopReason, StopRule};
use std::sync::Arc;

/// A problem over the variables `x[0..n]`: its `.opt` text and its hand-written objective
/// and gradient.
pub(super) struct TestProblem {
    /// The `.opt` text (with a solve block that sets the initial point).
    pub text: String,
    kind: Kind,
}

enum Kind {
    /// `0.5 x'Ax - b'x`, dense.
    Quadratic { a: Vec<Vec<f64>>, b: Vec<f64> },
    /// `sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`.
    Rosenbrock,
}

impl TestProblem {
    fn objective(&self, x: &[f64]) -> f64 {
        match &self.kind {
            Kind::Quadratic { a, b } => {
                let mut total = 0.0;
                for i in 0..x.len() {
                    let mut ax = 0.0;
                    for j in 0..x.len() {
                        ax += a[i][j] * x[j];
                    }
                    total += 0.5 * x[i] * ax - b[i] * x[i];
                }
                total
            }
            Kind::Rosenbrock => (0..x.len() - 1)
                .map(|i| {
                    let t = x[i + 1] - x[i] * x[i];
                    100.0 * t * t + (1.0 - x[i]) * (1.0 - x[i])
                })
                .sum(),
        }
    }

    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; x.len()];
        match &self.kind {
            Kind::Quadratic { a, b } => {
                for i in 0..x.len() {
                    let mut ax = 0.0;
                    for j in 0..x.len() {
                        ax += a[i][j] * x[j];
                    }
                    g[i] = ax - b[i];
                }
            }
            Kind::Rosenbrock => {
                for i in 0..x.len() - 1 {
                    let t = x[i + 1] - x[i] * x[i];
                    g[i] += -400.0 * t * x[i] - 2.0 * (1.0 - x[i]);
                    g[i + 1] += 200.0 * t;
                }
            }
        }
        g
    }

    /// The lowered problem and catopt's coordinate of each `x[i]`.
    fn lowered(&self) -> (Problem, Vec<usize>) {
        let (_, problem) = lower_text(&self.text, None).unwrap_or_else(|e| panic!("{e}"));
        let n = problem.variable_count();
        let mut coordinates = vec![usize::MAX; n];
        for variable in problem.top_level_variables() {
            let name = variable.name();
            assert_eq!(&*name.base, "x", "the test problems have only x");
            let i = name.index.expect("x[i]") as usize;
            coordinates[i] = variable.coordinates()[0];
        }
        assert!(
            coordinates.iter().all(|&c| c < n),
            "every x[i] is a variable"
        );
        (problem, coordinates)
    }

    /// The initial point (as catopt lowers it), in `x` order.
    fn initial_point(&self) -> Vec<f64> {
        let (problem, coordinates) = self.lowered();
        coordinates
            .iter()
            .map(|&c| problem.initial_values[c])
            .collect()
    }
}

/// A small deterministic generator (SplitMix64).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next()
    }
}

/// A random convex quadratic `0.5 x'Ax - b'x` over `x[0..n]`, as a composite of `pairs`
/// two-variable boxes (each a positive definite 2x2 block of A on two distinct variables,
/// and their terms of b) and one one-variable box per variable (A's diagonal, so A is
/// positive definite); each box its own objective with its own numbers.
pub(super) fn quadratic(seed: u64, n: usize, pairs: usize) -> TestProblem {
    let mut random = Random(seed.wrapping_mul(7919).wrapping_add(1));
    let mut a = vec![vec![0.0; n]; n];
    let mut b = vec![0.0; n];
    let mut objectives = String::new();
    let mut boxes = String::new();
    for k in 0..pairs {
        let i = (random.next() * n as f64) as usize % n;
        let j = (i + 1 + (random.next() * (n - 1) as f64) as usize % (n - 1)) % n;
        let p = random.between(0.5, 1.5);
        let s = random.between(0.5, 1.5);
        let r = random.between(-0.9, 0.9) * (p * s).sqrt();
        let (c, d) = (random.between(-1.0, 1.0), random.between(-1.0, 1.0));
        objectives.push_str(&format!(
            "objective q{k}(u: real, w: real) {{ minimize 0.5 * ({p:?} * u^2 + 2 * ({r:?}) * u * w \
             + {s:?} * w^2) - ({c:?}) * u - ({d:?}) * w; }}\n"
        ));
        boxes.push_str(&format!("q{k}(x[{i}], x[{j}]);\n"));
        a[i][i] += p;
        a[j][j] += s;
        a[i][j] += r;
        a[j][i] += r;
        b[i] += c;
        b[j] += d;
    }
    for (i, (row, bi)) in a.iter_mut().zip(&mut b).enumerate() {
        let e = random.between(0.1, 1.0);
        let f = random.between(-1.0, 1.0);
        objectives.push_str(&format!(
            "objective d{i}(u: real) {{ minimize 0.5 * {e:?} * u^2 - ({f:?}) * u; }}\n"
        ));
        boxes.push_str(&format!("d{i}(x[{i}]);\n"));
        row[i] += e;
        *bi += f;
    }
    TestProblem {
        text: format!(
            "{objectives}composite quad() {{\n{boxes}}}\n\
             solve quad {{ method = gd(lr = 0.05); init x = normal(0, 1); seed = {seed}; }}\n"
        ),
        kind: Kind::Quadratic { a, b },
    }
}

/// The Rosenbrock chain of `boxes` boxes over `x[0..=boxes]`, from a random start near 0.5.
/// Keep step sizes at most [`ROSENBROCK_LR`]: from 1e-3 on, accelerated runs of 100 steps
/// amplify a change of one ulp (in gamma0, say) to 1e-10, and no two implementations could
/// agree to 1e-12.
pub(super) const ROSENBROCK_LR: f64 = 5e-4;

/// See [`ROSENBROCK_LR`].
pub(super) fn rosenbrock_chain(boxes: usize) -> TestProblem {
    TestProblem {
        text: format!(
            "objective rosen(a: real, b: real) {{ minimize 100 * (b - a^2)^2 + (1 - a)^2; }}
             composite chain() {{ for i in 0..{boxes} {{ rosen(x[i], x[i + 1]); }} }}
             solve chain {{ method = gd(lr = 1e-4); init x = normal(0.5, 0.2); seed = 3; }}"
        ),
        kind: Kind::Rosenbrock,
    }
}

/// `eta_k` of a schedule, written from docs/language.md's table.
fn step_size(schedule: Schedule, lr: f64, k: u64) -> f64 {
    match schedule {
        Schedule::Constant => lr,
        Schedule::Log { period } => {
            let tau = (k % period) as f64 + 1.0;
            lr * (1.0 - tau.ln() / (period as f64).ln())
        }
        Schedule::Cosine { period } => {
            let tau = (k % period) as f64 + 1.0;
            0.5 * lr * (1.0 + (std::f64::consts::PI * (tau - 1.0) / period as f64).cos())
        }
        Schedule::InvSqrt => lr / (k as f64 + 1.0).sqrt(),
        Schedule::Step { every, factor } => {
            let mut eta = lr;
            for _ in 0..k / every {
                eta *= factor;
            }
            eta
        }
    }
}

/// Where a run ended: the reported iterate in `x` order and the objective there.
#[derive(Debug)]
pub(super) struct Ended {
    /// x after the steps.
    pub values: Vec<f64>,
    /// F(x).
    pub objective: f64,
    /// The smallest and largest step sizes used (steps 0..=steps: the solver proposes once
    /// more before it stops).
    pub step_sizes: (f64, f64),
}

/// A method as docs/language.md writes it, on plain vectors.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reference {
    /// `x <- x - eta_k g`.
    Gd { lr: f64 },
    /// `v <- beta v + g; x <- x - eta_k v`.
    Momentum { lr: f64, beta: f64 },
    /// `x' = y - eta_k grad F(y); y <- x' + beta (x' - x); x <- x'`.
    Nesterov { lr: f64, beta: f64 },
    /// The estimating-sequence accelerated gradient.
    Agd { lr: f64, mu: f64, gamma0: f64 },
}

impl Reference {
    /// `steps` steps from the problem's initial point.
    pub(super) fn run(self, problem: &TestProblem, schedule: Schedule, steps: u64) -> Ended {
        let mut x = problem.initial_point();
        let n = x.len();
        let lr = match self {
            Reference::Gd { lr }
            | Reference::Momentum { lr, .. }
            | Reference::Nesterov { lr, .. }
            | Reference::Agd { lr, .. } => lr,
        };
        let etas: Vec<f64> = (0..=steps).map(|k| step_size(schedule, lr, k)).collect();
        let mut v = match self {
            Reference::Agd { .. } => x.clone(),
            _ => vec![0.0; n],
        };
        let mut y = x.clone();
        let mut gamma = match self {
            Reference::Agd { gamma0, .. } => gamma0,
            _ => 0.0,
        };
        for &eta in &etas[..steps as usize] {
            match self {
                Reference::Gd { .. } => {
                    let g = problem.gradient(&x);
                    for i in 0..n {
                        x[i] -= eta * g[i];
                    }
                }
                Reference::Momentum { beta, .. } => {
                    let g = problem.gradient(&x);
                    for i in 0..n {
                        v[i] = beta * v[i] + g[i];
                        x[i] -= eta * v[i];
                    }
                }
                Reference::Nesterov { beta, .. } => {
                    let g = problem.gradient(&y);
                    for i in 0..n {
                        let next = y[i] - eta * g[i];
                        y[i] = next + beta * (next - x[i]);
                        x[i] = next;
                    }
                }
                Reference::Agd { mu, .. } => {
                    // The positive root of alpha^2 + eta (gamma - mu) alpha - eta gamma = 0.
                    let b = eta * (gamma - mu);
                    let alpha = (-b + (b * b + 4.0 * eta * gamma).sqrt()) / 2.0;
                    let next_gamma = (1.0 - alpha) * gamma + alpha * mu;
                    for i in 0..n {
                        y[i] = (alpha * gamma * v[i] + next_gamma * x[i]) / (gamma + alpha * mu);
                    }
                    let g = problem.gradient(&y);
                    for i in 0..n {
                        x[i] = y[i] - eta * g[i];
                        v[i] = ((1.0 - alpha) * gamma * v[i] + alpha * mu * y[i] - alpha * g[i])
                            / next_gamma;
                    }
                    gamma = next_gamma;
                }
            }
        }
        Ended {
            objective: problem.objective(&x),
            values: x,
            step_sizes: (
                etas.iter().copied().fold(f64::INFINITY, f64::min),
                etas.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
        }
    }
}

/// A resolved method.
fn config(name: &str, params: &[(&str, f64)]) -> MethodConfig {
    let given: Vec<(&str, Given<'_>)> =
        params.iter().map(|&(p, v)| (p, Given::Number(v))).collect();
    resolve_method(name, &given).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Runs the solver from `state` up to step `steps` with a fresh method and executor (as a
/// new `catopt run` process would); returns the outcome and the method's step sizes.
fn run_from(
    problem: &Problem,
    config: &MethodConfig,
    schedule: Schedule,
    state: &mut SolverState,
    steps: u64,
) -> (Outcome, StepStats) {
    let mut method = build(config, schedule).unwrap();
    let plan = Arc::new(Plan::for_problem(problem).unwrap());
    let mut executor = Executor::new(plan, Backend::serial());
    let stop = StopRule {
        max_steps: steps,
        tolerance: None,
        rel_tolerance: None,
    };
    let outcome = solve(&mut executor, &mut *method, stop, state, &mut NoObserver).unwrap();
    assert_eq!(outcome.stop_reason, StopReason::MaxSteps, "{outcome:?}");
    (outcome, method.stats())
}

/// catopt's run of the method `name(params)` with `schedule`, `steps` steps from the
/// problem's initial point.
pub(super) fn catopt_run(
    problem: &TestProblem,
    name: &str,
    params: &[(&str, f64)],
    schedule: Schedule,
    steps: u64,
) -> Ended {
    let (lowered, coordinates) = problem.lowered();
    let mut state = SolverState::new(lowered.initial_values.clone());
    let (outcome, stats) = run_from(&lowered, &config(name, params), schedule, &mut state, steps);
    assert_eq!(state.step, steps);
    Ended {
        values: coordinates.iter().map(|&c| state.values[c]).collect(),
        objective: outcome.evaluation.objective,
        step_sizes: (stats.min_step_size, stats.max_step_size),
    }
}

/// The iterates agree to 1e-12 relative (in the largest entry), and so do the objectives
/// and the step sizes used.
pub(super) fn assert_close(ours: &Ended, reference: &Ended, what: &str) {
    assert!(
        reference.values.iter().all(|v| v.is_finite()),
        "{what}: the reference diverged"
    );
    let scale = reference.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let error = ours
        .values
        .iter()
        .zip(&reference.values)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        error <= 1e-12 * scale,
        "{what}: iterates differ by {error:e} (scale {scale:e})\nours {:?}\nreference {:?}",
        ours.values,
        reference.values
    );
    let relative = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
    assert!(
        relative(ours.objective, reference.objective) <= 1e-12,
        "{what}: objective {} vs {}",
        ours.objective,
        reference.objective
    );
    for (a, b) in [
        (ours.step_sizes.0, reference.step_sizes.0),
        (ours.step_sizes.1, reference.step_sizes.1),
    ] {
        assert!(
            a == b || relative(a, b) <= 1e-14,
            "{what}: step sizes {:?} vs {:?}",
            ours.step_sizes,
            reference.step_sizes
        );
    }
}

/// Running `2 k` steps straight ends with the same bits as running `k` steps, writing a
/// checkpoint (bytes through `checkpoint_bytes`, `parse_checkpoint` and `validate`), and
/// running on from it with a fresh method and executor.
pub(super) fn assert_resumes_bit_for_bit(
    problem: &TestProblem,
    name: &str,
    params: &[(&str, f64)],
    schedule: Schedule,
    k: u64,
) {
    let (lowered, _) = problem.lowered();
    let config = config(name, params);
    let mut straight = SolverState::new(lowered.initial_values.clone());
    let (straight_outcome, _) = run_from(&lowered, &config, schedule, &mut straight, 2 * k);

    let mut first = SolverState::new(lowered.initial_values.clone());
    run_from(&lowered, &config, schedule, &mut first, k);
    let layout = StateLayout::of(&*build(&config, schedule).unwrap());
    let fingerprint = Fingerprint::of(&lowered, MethodRecord::of(&config, &schedule));
    let bytes = checkpoint_bytes(&fingerprint, layout, &first, &[]);
    let parsed = parse_checkpoint(&bytes).unwrap();
    let names: Vec<&str> = parsed.header.vectors.iter().map(|v| &*v.name).collect();
    assert_eq!(names, layout.vectors, "the checkpoint holds every vector");
    let scalars: Vec<&str> = parsed.header.scalars.iter().map(|s| &*s.0).collect();
    assert_eq!(scalars, layout.scalars, "the checkpoint holds every scalar");
    let mut resumed = validate(parsed, &fingerprint, layout).unwrap();
    assert_eq!(resumed.step, k);
    let (resumed_outcome, _) = run_from(&lowered, &config, schedule, &mut resumed, 2 * k);

    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_ne!(bits(&first.values), bits(&straight.values), "the run moves");
    assert_eq!(resumed.step, straight.step);
    assert_eq!(bits(&resumed.values), bits(&straight.values), "values");
    assert_eq!(resumed.vectors.len(), straight.vectors.len());
    for (i, (a, b)) in resumed.vectors.iter().zip(&straight.vectors).enumerate() {
        assert_eq!(bits(a), bits(b), "{}", layout.vectors[i + 1]);
    }
    assert_eq!(bits(&resumed.scalars), bits(&straight.scalars), "scalars");
    let evaluation = |o: &Outcome| bits(&[o.evaluation.objective, o.evaluation.gradient_norm]);
    assert_eq!(evaluation(&resumed_outcome), evaluation(&straight_outcome));
}
