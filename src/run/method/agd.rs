//! `agd(lr, mu = 0, gamma0 = 1/lr)`: accelerated gradient descent in the estimating-sequence
//! form of Mishkin, Pilanci and Schmidt (2024), as docs/language.md writes it:
//!
//! ```text
//! alpha_k in (0,1) solves  alpha^2 = eta_k ((1 - alpha) gamma_k + alpha mu)
//! gamma_{k+1} = (1 - alpha_k) gamma_k + alpha_k mu
//! y_k         = (alpha_k gamma_k v_k + gamma_{k+1} x_k) / (gamma_k + alpha_k mu)
//! g_k         = grad F(y_k)
//! x_{k+1}     = y_k - eta_k g_k
//! v_{k+1}     = ((1 - alpha_k) gamma_k v_k + alpha_k mu y_k - alpha_k g_k) / gamma_{k+1}
//! v_0 = x_0
//! ```
//!
//! **State.** The vectors `values` (x, the reported iterate), `estimate` (v) and `lookahead`
//! (y, where the gradient is taken), and the scalar `gamma` (gamma_k); checkpoints store all
//! four, so a resumed run continues with the same bits.
//!
//! **The fused form.** y_k needs only x_k, v_k and scalars, so it is computed at the end of
//! the previous step's pass, from x_k and v_k as that pass writes them: one pass per step
//! reads x_k, v_k, y_k and the gradient at y_k and writes x_{k+1}, v_{k+1} and
//! y_{k+1}. The scalars of step k+1 are known in advance (alpha_{k+1} depends on gamma_{k+1}
//! and eta_{k+1}, and the schedule gives eta_{k+1}); [`Method::start`] computes y_0 from
//! x_0 and v_0 = x_0 by the formula. Per coordinate, step k's pass computes
//!
//! ```text
//! x' = y - eta_k g
//! v' = ((c_v v + c_y y) - alpha_k g) r           c_v = (1 - alpha_k) gamma_k, c_y = alpha_k mu,
//!                                                r = 1 / gamma_{k+1}
//! y' = (a' v' + gamma_{k+2} x') r'               a' = alpha_{k+1} gamma_{k+1},
//!                                                r' = 1 / (gamma_{k+1} + alpha_{k+1} mu)
//! ```
//!
//! which is the formula's arithmetic in the formula's order (the products of scalars
//! `(1 - alpha) gamma_k`, `alpha mu` and `alpha gamma_k` first, then left to right), with
//! one change: the divisions by the step's scalars are multiplications by their
//! reciprocals, computed once per step (within a rounding of the division; per-coordinate
//! divisions made the pass compute-bound, 1.3x gd's step on W2). y_{k+1} is computed by
//! the same code ([`LookaheadRule`]) whether in the pass or in [`Method::start`], so the
//! fused pass gives the same bits as computing y_k at the start of step k. The only cost
//! of fusing is one y computed after the last step and not used.
//!
//! Compositional with global constants: the update is affine in the gradient, with
//! coefficients (eta, alpha, gamma) that are the same for every box.

use super::fused_map::map_lanes;
use super::{Block, Method, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::{MethodConfig, Schedule};
use crate::run::executor::Evaluation;

/// The index of v among [`Method::vectors`].
const ESTIMATE: usize = 1;
/// The index of the look-ahead y among [`Method::vectors`].
const LOOKAHEAD: usize = 2;

/// The estimating-sequence accelerated gradient with a step-size schedule.
pub struct Agd {
    config: MethodConfig,
    lr: f64,
    mu: f64,
    gamma0: f64,
    schedule: Schedule,
    stats: StepStats,
}

impl Agd {
    /// From a resolved `agd(...)`.
    pub fn new(config: MethodConfig, schedule: Schedule) -> Agd {
        Agd {
            lr: config.number("lr"),
            mu: config.number("mu"),
            gamma0: config.number("gamma0"),
            config,
            schedule,
            stats: StepStats::default(),
        }
    }

    /// The scalars of step `k` from gamma_k.
    fn constants(&self, k: u64, gamma: f64) -> StepConstants {
        let eta = self.schedule.step_size(self.lr, k);
        let alpha = solve_alpha(eta, gamma, self.mu);
        StepConstants {
            eta,
            alpha,
            gamma,
            next_gamma: (1.0 - alpha) * gamma + alpha * self.mu,
        }
    }

    /// The look-ahead's coefficients of step `k` (`y = (a v + b x) / d`).
    fn lookahead(&self, step: &StepConstants) -> LookaheadRule {
        LookaheadRule {
            a: step.alpha * step.gamma,
            b: step.next_gamma,
            reciprocal_d: 1.0 / (step.gamma + step.alpha * self.mu),
        }
    }
}

/// Step k's scalars.
#[derive(Clone, Copy, Debug)]
struct StepConstants {
    /// eta_k.
    eta: f64,
    /// alpha_k.
    alpha: f64,
    /// gamma_k.
    gamma: f64,
    /// gamma_{k+1}.
    next_gamma: f64,
}

/// `alpha` in (0, 1) with `alpha^2 = eta ((1 - alpha) gamma + alpha mu)` (for `eta mu < 1`;
/// for `eta mu >= 1` the positive root is >= 1, for `eta = 0` it is 0).
///
/// The equation is `alpha^2 + b alpha - c = 0` with `b = eta (gamma - mu)`, `c = eta
/// gamma`; its positive root is computed without cancellation: `2c / (b + sqrt(b^2 + 4c))`
/// when `b >= 0`, `(sqrt(b^2 + 4c) - b) / 2` otherwise, with `sqrt(b^2 + 4c)` as
/// `hypot(b, 2 sqrt(c))` (no overflow for large gamma).
pub(crate) fn solve_alpha(eta: f64, gamma: f64, mu: f64) -> f64 {
    let b = eta * (gamma - mu);
    let c = eta * gamma;
    if c == 0.0 {
        return 0.0;
    }
    let root = b.hypot(2.0 * c.sqrt());
    if b >= 0.0 {
        2.0 * c / (b + root)
    } else {
        (root - b) / 2.0
    }
}

/// `y = (a v + b x) / d`: the look-ahead of a step, from that step's x and v.
#[derive(Clone, Copy, Debug)]
struct LookaheadRule {
    /// alpha_k gamma_k.
    a: f64,
    /// gamma_{k+1}.
    b: f64,
    /// 1 / (gamma_k + alpha_k mu).
    reciprocal_d: f64,
}

impl LookaheadRule {
    #[inline(always)]
    fn at(&self, x: f64, v: f64) -> f64 {
        (self.a * v + self.b * x) * self.reciprocal_d
    }
}

/// Step k's pass: x_{k+1}, v_{k+1} and y_{k+1} from x_k, v_k, y_k and the gradient at y_k.
#[derive(Clone, Copy)]
struct AgdRule {
    /// eta_k.
    eta: f64,
    /// (1 - alpha_k) gamma_k.
    c_v: f64,
    /// alpha_k mu.
    c_y: f64,
    /// alpha_k.
    alpha: f64,
    /// 1 / gamma_{k+1}.
    reciprocal_next_gamma: f64,
    /// y_{k+1} from x_{k+1} and v_{k+1}.
    next_lookahead: LookaheadRule,
}

impl UpdateRule for AgdRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let rule = *self;
        // x_k is not read: x_{k+1} comes from y_k.
        let [_, estimate, lookahead, ..] = block.current;
        let [next_values, next_estimate, next_lookahead, ..] = block.next;
        map_lanes(
            [next_values, next_estimate, next_lookahead],
            [estimate, lookahead, block.gradient],
            block.stream,
            |[v, y, g]| {
                let x = y - rule.eta * g;
                let v = (rule.c_v * v + rule.c_y * y - rule.alpha * g) * rule.reciprocal_next_gamma;
                [x, v, rule.next_lookahead.at(x, v)]
            },
        );
    }
}

impl Method for Agd {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn vectors(&self) -> &'static [&'static str] {
        &["values", "estimate", "lookahead"]
    }

    fn scalars(&self) -> &'static [&'static str] {
        &["gamma"]
    }

    fn evaluation_point(&self) -> usize {
        LOOKAHEAD
    }

    /// v_0 = x_0, gamma_0, and y_0 by the formula.
    fn start(&self, values: &[f64], vectors: &mut [Vec<f64>], scalars: &mut [f64]) {
        scalars[0] = self.gamma0;
        let lookahead = self.lookahead(&self.constants(0, self.gamma0));
        let (estimate, rest) = vectors.split_at_mut(LOOKAHEAD - 1);
        let estimate = &mut estimate[ESTIMATE - 1];
        estimate.copy_from_slice(values);
        for ((y, &x), &v) in rest[0].iter_mut().zip(values).zip(estimate.iter()) {
            *y = lookahead.at(x, v);
        }
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let k = context.step;
        let step = self.constants(k, context.current_scalars[0]);
        let next = self.constants(k + 1, step.next_gamma);
        let rule = AgdRule {
            eta: step.eta,
            c_v: (1.0 - step.alpha) * step.gamma,
            c_y: step.alpha * self.mu,
            alpha: step.alpha,
            reciprocal_next_gamma: 1.0 / step.next_gamma,
            next_lookahead: self.lookahead(&next),
        };
        self.stats.record(step.eta);
        context.next_scalars[0] = step.next_gamma;
        Ok(context.fused(LOOKAHEAD, &rule))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_follows, assert_resumes_bit_for_bit, catopt_run, convex_quadratic, rosenbrock_chain,
        Reference, RANDOM_START, ROSENBROCK_LR,
    };
    use super::solve_alpha;
    use crate::method_spec::Schedule;

    #[test]
    fn alpha_solves_its_equation_in_the_unit_interval() {
        for eta in [1e-8, 1e-3, 0.1, 0.5, 1.0, 3.0] {
            for gamma in [1e-12, 1e-3, 0.5, 1.0, 1.0 / eta, 1e3, 1e8] {
                for mu in [0.0, 1e-3, 0.1, 0.9 / eta] {
                    let alpha = solve_alpha(eta, gamma, mu);
                    assert!(alpha > 0.0 && alpha < 1.0, "{eta} {gamma} {mu}: {alpha}");
                    // alpha^2 + b alpha - c = 0, to rounding of its terms (backward error).
                    let (b, c) = (eta * (gamma - mu), eta * gamma);
                    let residual = alpha * alpha + b * alpha - c;
                    let scale = alpha * alpha + b.abs() * alpha + c;
                    assert!(
                        residual.abs() <= 4.0 * f64::EPSILON * scale,
                        "{eta} {gamma} {mu}: residual {residual:e} of {scale:e}"
                    );
                }
            }
        }
        // No overflow for a huge gamma (the root rounds to 1).
        assert_eq!(solve_alpha(10.0, 1e300, 0.0), 1.0);
        assert_eq!(solve_alpha(0.0, 2.0, 0.5), 0.0);
        // gamma = mu: alpha = sqrt(eta mu).
        assert_eq!(solve_alpha(0.25, 4.0, 4.0), 1.0);
        assert!((solve_alpha(0.01, 4.0, 4.0) - 0.2).abs() <= 1e-16);
    }

    #[test]
    fn agd_follows_the_reference_on_random_quadratics() {
        for seed in 0..4 {
            let problem = convex_quadratic(seed, 9, 14);
            for (mu, gamma0) in [
                (0.0, None),
                (0.05, None),
                (0.2, Some(3.0)),
                (0.0, Some(0.5)),
            ] {
                let lr = 0.05;
                let mut params = vec![("lr", lr), ("mu", mu)];
                params.extend(gamma0.map(|g| ("gamma0", g)));
                let ours = catopt_run(&problem, "agd", &params, Schedule::Constant, 100);
                let reference = Reference::Agd {
                    lr,
                    mu,
                    gamma0: gamma0.unwrap_or(1.0 / lr),
                }
                .run(&problem, Schedule::Constant, 100);
                assert_follows(&ours, &reference, &format!("seed {seed}, mu {mu}"));
            }
        }
    }

    #[test]
    fn agd_follows_the_reference_on_the_rosenbrock_chain() {
        let problem = rosenbrock_chain(40, RANDOM_START);
        for mu in [0.0, 0.5] {
            let params = [("lr", ROSENBROCK_LR), ("mu", mu)];
            let ours = catopt_run(&problem, "agd", &params, Schedule::Constant, 100);
            let reference = Reference::Agd {
                lr: ROSENBROCK_LR,
                mu,
                gamma0: 1.0 / ROSENBROCK_LR,
            }
            .run(&problem, Schedule::Constant, 100);
            assert_follows(&ours, &reference, &format!("rosenbrock, mu {mu}"));
        }
    }

    #[test]
    fn agd_resumes_from_a_checkpoint_bit_for_bit() {
        for mu in [0.0, 0.3] {
            assert_resumes_bit_for_bit(
                &rosenbrock_chain(30, RANDOM_START).problem,
                "agd",
                &[("lr", ROSENBROCK_LR), ("mu", mu)],
                Schedule::Log { period: 9 },
                13,
            );
        }
    }
}
