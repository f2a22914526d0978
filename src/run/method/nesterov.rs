//! `nesterov(lr, beta = 0.9)`: Nesterov's accelerated gradient, with the gradient taken at
//! the look-ahead `y` (y0 = x0):
//!
//! ```text
//! x' = y - eta_k grad F(y);   y <- x' + beta (x' - x);   x <- x'
//! ```
//!
//! The method keeps `values` (x, the reported iterate) and `lookahead` (y), and evaluates at
//! y: the objective and gradient norm a step sees (stopping rules, traces) are y's; the
//! solver evaluates once more at the final x for the reported objective.
//!
//! One fused pass per step: the rule reads y, x and the gradient at y, and writes x' and y'.
//! Compositional: x' and y' are affine in the gradient, with one step size for every box,
//! so the boxes' own updates added on junctions are the composite update.

use super::fused_map::map_lanes;
use super::{Block, Method, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::{MethodConfig, Schedule};
use crate::run::executor::Evaluation;

/// The index of the look-ahead `y` among [`Method::vectors`].
const LOOKAHEAD: usize = 1;

/// Nesterov's accelerated gradient with a step-size schedule.
pub struct Nesterov {
    config: MethodConfig,
    lr: f64,
    beta: f64,
    schedule: Schedule,
    stats: StepStats,
}

impl Nesterov {
    /// From a resolved `nesterov(...)`.
    pub fn new(config: MethodConfig, schedule: Schedule) -> Nesterov {
        Nesterov {
            lr: config.number("lr"),
            beta: config.number("beta"),
            config,
            schedule,
            stats: StepStats::default(),
        }
    }
}

/// `x' = y - eta g; y' = x' + beta (x' - x)`, with `g` the gradient at `y`.
#[derive(Clone, Copy)]
struct NesterovRule {
    eta: f64,
    beta: f64,
}

impl UpdateRule for NesterovRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let (eta, beta) = (self.eta, self.beta);
        let [values, lookahead, ..] = block.current;
        let [next_values, next_lookahead, ..] = block.next;
        map_lanes(
            [next_values, next_lookahead],
            [values, lookahead, block.gradient],
            block.stream,
            |[x, y, g]| {
                let next = y - eta * g;
                [next, next + beta * (next - x)]
            },
        );
    }
}

impl Method for Nesterov {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn vectors(&self) -> &'static [&'static str] {
        &["values", "lookahead"]
    }

    fn evaluation_point(&self) -> usize {
        LOOKAHEAD
    }

    /// y0 = x0.
    fn start(&self, values: &[f64], vectors: &mut [Vec<f64>], _: &mut [f64]) {
        vectors[LOOKAHEAD - 1].copy_from_slice(values);
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let rule = NesterovRule {
            eta: self.schedule.step_size(self.lr, context.step),
            beta: self.beta,
        };
        self.stats.record(rule.eta);
        Ok(context.fused(LOOKAHEAD, &rule))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_follows, assert_resumes_bit_for_bit, catopt_run, convex_quadratic, rosenbrock_chain,
        Reference, RANDOM_START, ROSENBROCK_LR,
    };
    use crate::method_spec::Schedule;

    #[test]
    fn nesterov_follows_the_reference_on_random_quadratics() {
        for seed in 0..4 {
            let problem = convex_quadratic(seed, 9, 14);
            for beta in [0.0, 0.5, 0.9] {
                let params = [("lr", 0.05), ("beta", beta)];
                let ours = catopt_run(&problem, "nesterov", &params, Schedule::Constant, 100);
                let reference =
                    Reference::Nesterov { lr: 0.05, beta }.run(&problem, Schedule::Constant, 100);
                assert_follows(&ours, &reference, &format!("seed {seed}, beta {beta}"));
            }
        }
    }

    #[test]
    fn nesterov_follows_the_reference_on_the_rosenbrock_chain() {
        let problem = rosenbrock_chain(40, RANDOM_START);
        let params = [("lr", ROSENBROCK_LR), ("beta", 0.9)];
        let ours = catopt_run(&problem, "nesterov", &params, Schedule::Constant, 100);
        let reference = Reference::Nesterov {
            lr: ROSENBROCK_LR,
            beta: 0.9,
        }
        .run(&problem, Schedule::Constant, 100);
        assert_follows(&ours, &reference, "rosenbrock");
    }

    #[test]
    fn nesterov_resumes_from_a_checkpoint_bit_for_bit() {
        assert_resumes_bit_for_bit(
            &rosenbrock_chain(30, RANDOM_START).problem,
            "nesterov",
            &[("lr", ROSENBROCK_LR), ("beta", 0.8)],
            Schedule::Cosine { period: 7 },
            13,
        );
    }
}
