//! `adam(lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8)` (Kingma and Ba 2015), as
//! docs/language.md writes it, with `t = k + 1`:
//! `m <- beta1 m + (1-beta1) g; s <- beta2 s + (1-beta2) g^2;
//!  x <- x - eta_k (m / (1-beta1^t)) / (sqrt(s / (1-beta2^t)) + eps)` (m0 = s0 = 0).
//!
//! Coordinatewise: each coordinate's update reads only its own *summed* gradient, so every
//! backend gives the serial bits (distributed = central); but the update is not linear in
//! the gradient, so each box running its own Adam and adding the increments on junctions is
//! a different algorithm (`catopt laws` shows by how much).

use super::fused_map::map_lanes;
use super::{Block, Method, MethodStop, StepContext, StepStats, UpdateRule};
use crate::method_spec::{MethodConfig, Schedule};
use crate::run::executor::Evaluation;

/// Adam with a step-size schedule.
pub struct Adam {
    config: MethodConfig,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    schedule: Schedule,
    stats: StepStats,
}

impl Adam {
    /// From a resolved `adam(...)`.
    pub fn new(config: MethodConfig, schedule: Schedule) -> Adam {
        Adam {
            lr: config.number("lr"),
            beta1: config.number("beta1"),
            beta2: config.number("beta2"),
            eps: config.number("eps"),
            config,
            schedule,
            stats: StepStats::default(),
        }
    }

    /// Step `k`'s rule: `eta_k` and the bias corrections `1 - beta^t` (as reciprocals),
    /// computed once.
    fn rule(&self, k: u64) -> AdamRule {
        let t = (k + 1) as f64;
        AdamRule {
            eta: self.schedule.step_size(self.lr, k),
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            inverse_correction1: 1.0 / (1.0 - self.beta1.powf(t)),
            inverse_correction2: 1.0 / (1.0 - self.beta2.powf(t)),
        }
    }
}

/// One step of Adam on a block: `m`, `s` and `x` in one pass.
#[derive(Clone, Copy)]
struct AdamRule {
    eta: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// `1 / (1 - beta1^t)`.
    inverse_correction1: f64,
    /// `1 / (1 - beta2^t)`.
    inverse_correction2: f64,
}

impl AdamRule {
    /// `(x', m', s')` of one coordinate (no fused multiply-add: the same bits everywhere).
    /// The bias corrections are applied as the reciprocals computed once per step: per
    /// coordinate one division and one square root, where the literal
    /// `(m / c1) / (sqrt(s / c2) + eps)` takes three divisions (the results differ by
    /// rounding only).
    #[inline(always)]
    fn coordinate(&self, x: f64, m: f64, s: f64, g: f64) -> [f64; 3] {
        let m = self.beta1 * m + (1.0 - self.beta1) * g;
        let s = self.beta2 * s + (1.0 - self.beta2) * (g * g);
        let m_hat = m * self.inverse_correction1;
        let s_hat = s * self.inverse_correction2;
        let x = x - self.eta * m_hat / (s_hat.sqrt() + self.eps);
        [x, m, s]
    }
}

impl UpdateRule for AdamRule {
    #[inline(always)]
    fn apply(&self, block: Block<'_>) {
        let [values, first, second, ..] = block.current;
        let [next_values, next_first, next_second, ..] = block.next;
        map_lanes(
            [next_values, next_first, next_second],
            [values, first, second, block.gradient],
            block.stream,
            |[x, m, s, g]| self.coordinate(x, m, s, g),
        );
    }
}

impl Method for Adam {
    fn config(&self) -> &MethodConfig {
        &self.config
    }

    fn stats(&self) -> StepStats {
        self.stats
    }

    fn vectors(&self) -> &'static [&'static str] {
        &["values", "first_moment", "second_moment"]
    }

    fn propose(&mut self, context: &mut StepContext<'_, '_>) -> Result<Evaluation, MethodStop> {
        let rule = self.rule(context.step);
        self.stats.record(rule.eta);
        Ok(context.fused(0, &rule))
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::testing::{
        assert_resumes_bit_for_bit, config, parameterised_quadratic, rosenbrock_chain, run,
        TestProblem, CLASSIC_START,
    };
    use super::*;

    /// Adam written out with plain loops: the reference the implementation is held to.
    fn reference_adam(
        problem: &TestProblem,
        (lr, beta1, beta2, eps): (f64, f64, f64, f64),
        schedule: Schedule,
        steps: u64,
    ) -> Vec<f64> {
        let mut x = problem.initial_values().to_vec();
        let n = x.len();
        let (mut m, mut s) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..steps {
            let g = problem.gradient(&x);
            let t = (k + 1) as f64;
            let eta = schedule.step_size(lr, k);
            for i in 0..n {
                m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
                s[i] = beta2 * s[i] + (1.0 - beta2) * g[i] * g[i];
                let m_hat = m[i] / (1.0 - beta1.powf(t));
                let s_hat = s[i] / (1.0 - beta2.powf(t));
                x[i] -= eta * m_hat / (s_hat.sqrt() + eps);
            }
        }
        x
    }

    /// catopt's Adam, `steps` steps.
    fn adam(
        problem: &TestProblem,
        (lr, beta1, beta2, eps): (f64, f64, f64, f64),
        schedule: Schedule,
        steps: u64,
    ) -> Vec<f64> {
        let config = config(
            "adam",
            &[("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps)],
        );
        let mut method = build(&config, schedule).unwrap();
        let ran = run(&problem.problem, &mut *method, steps);
        assert_eq!(ran.state.step, steps);
        ran.state.values
    }

    fn relative(a: &[f64], b: &[f64]) -> f64 {
        crate::laws::check::relative_deviation(a, b)
    }

    const PARAMETERS: [(f64, f64, f64, f64); 3] = [
        (0.01, 0.9, 0.999, 1e-8),
        (0.05, 0.5, 0.9, 1e-6),
        (0.002, 0.0, 0.99, 1e-3),
    ];

    const SCHEDULES: [Schedule; 3] = [
        Schedule::Constant,
        Schedule::Cosine { period: 30 },
        Schedule::Step {
            every: 7,
            factor: 0.8,
        },
    ];

    #[test]
    fn adam_on_random_quadratics_is_the_written_out_formula() {
        for seed in 0..6 {
            let problem = parameterised_quadratic(seed, 3 + seed as usize, 4 + 2 * seed as usize);
            for (k, &parameters) in PARAMETERS.iter().enumerate() {
                let schedule = SCHEDULES[(seed as usize + k) % SCHEDULES.len()];
                let ours = adam(&problem, parameters, schedule, 100);
                let theirs = reference_adam(&problem, parameters, schedule, 100);
                assert!(ours != problem.initial_values(), "the run moved");
                let d = relative(&theirs, &ours);
                assert!(
                    d <= 1e-12,
                    "seed {seed}, {parameters:?}, {schedule:?}: {d:e}"
                );
            }
        }
    }

    #[test]
    fn adam_on_the_rosenbrock_chain_is_the_written_out_formula() {
        let problem = rosenbrock_chain(50, CLASSIC_START);
        for schedule in SCHEDULES
            .into_iter()
            .chain([Schedule::InvSqrt, Schedule::Log { period: 40 }])
        {
            let parameters = (0.01, 0.9, 0.999, 1e-8);
            let ours = adam(&problem, parameters, schedule, 100);
            let theirs = reference_adam(&problem, parameters, schedule, 100);
            let d = relative(&theirs, &ours);
            assert!(d <= 1e-12, "{schedule:?}: {d:e}");
        }
    }

    #[test]
    fn the_rule_on_a_block_is_the_coordinate_formula_at_every_length() {
        // The four-at-a-time loop and its remainder.
        let rule = Adam::new(config("adam", &[("lr", 0.1)]), Schedule::Constant).rule(3);
        for len in 0..11 {
            let x: Vec<f64> = (0..len).map(|i| (i as f64).sin()).collect();
            let m: Vec<f64> = (0..len).map(|i| 0.1 * (i as f64).cos()).collect();
            let s: Vec<f64> = (0..len).map(|i| 0.01 * i as f64).collect();
            let g: Vec<f64> = (0..len).map(|i| (i as f64 * 0.3).tanh()).collect();
            let (mut nx, mut nm, mut ns) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
            rule.apply(Block {
                gradient: &g,
                current: [&x, &m, &s, &[]],
                next: [&mut nx, &mut nm, &mut ns, &mut []],
                stream: false,
            });
            for i in 0..len {
                let [ex, em, es] = rule.coordinate(x[i], m[i], s[i], g[i]);
                assert_eq!(
                    (nx[i].to_bits(), nm[i].to_bits(), ns[i].to_bits()),
                    (ex.to_bits(), em.to_bits(), es.to_bits()),
                    "{len}: {i}"
                );
            }
        }
    }

    /// 2k steps straight, and k steps, a checkpoint written and read back through
    /// `cli::checkpoint`, k more steps by a fresh method and executor: the same bits.
    #[test]
    fn a_run_resumed_from_a_checkpoint_continues_bit_for_bit() {
        let params = [("lr", 0.03), ("beta1", 0.7)];
        let schedule = Schedule::Cosine { period: 17 };
        let method = build(&config("adam", &params), schedule).unwrap();
        assert_eq!(
            method.vectors(),
            ["values", "first_moment", "second_moment"]
        );
        let problem = parameterised_quadratic(11, 6, 9);
        assert_resumes_bit_for_bit(&problem.problem, "adam", &params, schedule, 25);
    }
}
