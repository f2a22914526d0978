//! `momentum(lr, beta = 0.9)`: heavy ball, `v <- beta v + g; x <- x - eta_k v` (v0 = 0).
//! Compositional: the velocity is a linear function of past gradients, so the composite's
//! velocity is the sum of the boxes' velocities pushed forward on junctions.

use super::{Block, Method, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::{MethodConfig, Schedule};
use crate::run::executor::Evaluation;
use crate::run::lanes::map2_lanes;

/// Heavy-ball momentum with a step-size schedule.
pub struct Momentum {
    config: MethodConfig,
    lr: f64,
    beta: f64,
    schedule: Schedule,
    stats: StepStats,
}

impl Momentum {
    /// From a resolved `momentum(...)`.
    pub fn new(config: MethodConfig, schedule: Schedule) -> Momentum {
        Momentum {
            lr: config.number("lr"),
            beta: config.number("beta"),
            config,
            schedule,
            stats: StepStats::default(),
        }
    }
}

/// `v' = beta v + g; x' = x - eta v'`.
#[derive(Clone, Copy)]
struct MomentumRule {
    eta: f64,
    beta: f64,
}

impl UpdateRule for MomentumRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let (eta, beta) = (self.eta, self.beta);
        let [values, velocity, ..] = block.current;
        let [next_values, next_velocity, ..] = block.next;
        map2_lanes(next_velocity, velocity, block.gradient, |v, g| beta * v + g);
        map2_lanes(next_values, values, next_velocity, |z, v| z - eta * v);
    }
}

impl Method for Momentum {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn vectors(&self) -> &'static [&'static str] {
        &["values", "velocity"]
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let rule = MomentumRule {
            eta: self.schedule.step_size(self.lr, context.step),
            beta: self.beta,
        };
        self.stats.record(rule.eta);
        Ok(context.fused(0, &rule))
    }
}
