//! The fused methods and the schedules written out with plain loops over `Vec<f64>`, from
//! docs/language.md and nothing else of catopt, on a [`TestProblem`]'s hand-written
//! gradient.

use super::problems::TestProblem;
use crate::method_spec::Schedule;

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

/// Where a run ended: the reported iterate (in the composite's coordinates) and the
/// objective there.
#[derive(Debug)]
pub(crate) struct Ended {
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
pub(crate) enum Reference {
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
    pub(crate) fn run(self, problem: &TestProblem, schedule: Schedule, steps: u64) -> Ended {
        let mut x = problem.initial_values().to_vec();
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
            objective: problem.value(&x),
            values: x,
            step_sizes: (
                etas.iter().copied().fold(f64::INFINITY, f64::min),
                etas.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
        }
    }
}

/// catopt's run follows the reference: the iterates agree to 1e-12 relative (in the
/// largest entry), and so do the objectives and the step sizes used.
pub(crate) fn assert_follows(ours: &Ended, reference: &Ended, what: &str) {
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
