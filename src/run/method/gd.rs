//! `gd(lr)`: gradient descent, `x <- x - eta_k g`. Compositional: the update is linear in
//! the gradient, so each box's own step added on junctions is the composite step.

use super::{Block, Method, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::{MethodConfig, Schedule};
use crate::run::executor::Evaluation;
use crate::run::lanes::{map2_lanes, map2_streaming};

/// Gradient descent with a step-size schedule.
pub struct Gd {
    config: MethodConfig,
    lr: f64,
    schedule: Schedule,
    stats: StepStats,
}

impl Gd {
    /// From a resolved `gd(...)`.
    pub fn new(config: MethodConfig, schedule: Schedule) -> Gd {
        Gd {
            lr: config.number("lr"),
            config,
            schedule,
            stats: StepStats::default(),
        }
    }
}

/// `next = x - eta g`.
#[derive(Clone, Copy)]
pub struct GdRule {
    /// `eta_k`.
    pub eta: f64,
}

impl UpdateRule for GdRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let eta = self.eta;
        let [next, ..] = block.next;
        if block.stream {
            map2_streaming(next, block.current[0], block.gradient, |z, g| z - eta * g);
        } else {
            map2_lanes(next, block.current[0], block.gradient, |z, g| z - eta * g);
        }
    }
}

impl Method for Gd {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let eta = self.schedule.step_size(self.lr, context.step);
        self.stats.record(eta);
        Ok(context.fused(0, &GdRule { eta }))
    }
}
