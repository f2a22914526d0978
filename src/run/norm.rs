//! The gradient norm without underflow or overflow, with the same bits on every backend.
//!
//! Each block of [`SUM_BLOCK`] coordinates is summed by one worker or rank into one number,
//! its *partial*: normally the block's plain sum of squares (a fixed-order fold). When that
//! sum is out of the safe range `[SMALL, inf)` although the block's entries are finite and
//! not all zero (squares that underflow, or overflow), the partial is instead minus the
//! block's norm computed with scaling, as LAPACK's `dnrm2` does: the entries are divided by
//! a power of two near the largest (exactly), squared and summed. The gradient norm adds the
//! partials in block order; only when a block is scaled, or that sum overflows, are they
//! combined instead as (scale, scaled sum of squares) pairs with the `dlassq` rule, in the
//! same order. Ordinary gradients keep the bits of the plain sum, and every backend, which
//! computes the same partials and combines them in the same order, gets the same bits.

use super::lanes::fixed_order_fold;
#[cfg(doc)]
use super::plan::SUM_BLOCK;

/// Block sums of squares at or above this (2^-962) are accurate: an entry whose square is
/// below `f64::MIN_POSITIVE` loses at most 2^-1075 to underflow, a block at most 2^-1066,
/// under 2^-104 of such a sum.
const SMALL: f64 = f64::MIN_POSITIVE * (1u64 << 60) as f64;

/// The partial of one block of the gradient (see the module doc): its sum of squares, or
/// minus its norm when that sum would underflow or overflow. NaN or infinity when an entry
/// is not finite.
#[inline(always)]
pub(crate) fn block_partial(entries: &[f64]) -> f64 {
    let sum = fixed_order_fold(entries, |v| v * v);
    if (SMALL..f64::INFINITY).contains(&sum) {
        sum
    } else {
        scaled_partial(entries, sum)
    }
}

/// [`block_partial`] when the plain `sum` of squares is out of the safe range.
#[cold]
#[inline(never)]
fn scaled_partial(entries: &[f64], sum: f64) -> f64 {
    // A NaN or infinite entry propagates; an all-zero block is exactly 0.
    if sum.is_nan() || entries.iter().any(|v| !v.is_finite()) {
        return sum;
    }
    let largest = entries.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if largest == 0.0 {
        return sum;
    }
    let scale = power_of_two_at_most(largest);
    let scaled = fixed_order_fold(entries, |v| {
        let y = v / scale;
        y * y
    });
    -(scale * scaled.sqrt())
}

/// The largest power of two at most `x` (positive and finite; subnormals included).
fn power_of_two_at_most(x: f64) -> f64 {
    let bits = x.to_bits();
    if x >= f64::MIN_POSITIVE {
        f64::from_bits(bits & (0x7ff << 52))
    } else {
        f64::from_bits(1 << (63 - bits.leading_zeros()))
    }
}

/// The gradient norm from the blocks' partials ([`block_partial`]), combined in block order.
pub(crate) fn norm_of_partials(partials: &[f64]) -> f64 {
    let sum: f64 = partials.iter().sum();
    if sum.is_nan() || (sum < f64::INFINITY && partials.iter().all(|&p| p >= 0.0)) {
        return sum.sqrt();
    }
    scaled_norm(partials)
}

/// [`norm_of_partials`] when a block is scaled or the plain sum overflows: each partial as a
/// power-of-two scale `s` and a sum `q` with `s * s * q` its sum of squares, combined in
/// block order by LAPACK's `dlassq` rule (the smaller scale's sum is rescaled to the larger).
#[cold]
#[inline(never)]
fn scaled_norm(partials: &[f64]) -> f64 {
    let (mut scale, mut sum) = (0.0f64, 0.0f64);
    for &p in partials {
        if p.is_infinite() {
            return f64::INFINITY; // a non-finite entry, or a block norm beyond f64::MAX
        }
        let (s, q) = if p < 0.0 {
            let s = power_of_two_at_most(-p);
            let t = -p / s;
            (s, t * t)
        } else if p > 0.0 {
            // p >= SMALL (block_partial), so s * s >= 2^-962 is exact.
            let s = power_of_two_at_most(p.sqrt());
            (s, p / (s * s))
        } else {
            continue;
        };
        if s > scale {
            let r = scale / s;
            sum = q + sum * (r * r);
            scale = s;
        } else {
            let r = s / scale;
            sum += q * (r * r);
        }
    }
    scale * sum.sqrt()
}

#[cfg(test)]
mod tests {
    use super::{block_partial, norm_of_partials};
    use crate::lower::{lower_text, Problem};
    use crate::run::backend::Backend;
    use crate::run::executor::Executor;
    use crate::run::lanes::fixed_order_fold;
    use crate::run::plan::Plan;
    use crate::run::solver::{solve, NoObserver, Outcome, SolverState, StopReason, StopRule};
    use crate::run::transport::LocalRanks;
    use std::sync::Arc;

    fn norm(blocks: &[&[f64]]) -> f64 {
        let partials: Vec<f64> = blocks.iter().map(|b| block_partial(b)).collect();
        norm_of_partials(&partials)
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            ((actual - expected) / expected).abs() <= 1e-14,
            "{actual:e} instead of {expected:e}"
        );
    }

    #[test]
    fn ordinary_gradients_keep_the_plain_sums_bits() {
        let block: Vec<f64> = (0..300).map(|i| (i as f64 - 150.0) * 0.37).collect();
        let plain = fixed_order_fold(&block, |v| v * v);
        assert_eq!(block_partial(&block).to_bits(), plain.to_bits());
        assert_eq!(
            norm(&[&block, &block[..7], &[0.0; 4]]).to_bits(),
            ((plain + fixed_order_fold(&block[..7], |v| v * v)) + 0.0)
                .sqrt()
                .to_bits()
        );
    }

    #[test]
    fn blocks_out_of_range_are_scaled() {
        assert_close(norm(&[&[3e-170, 4e-170]]), 5e-170);
        assert_close(norm(&[&[3e160, -4e160]]), 5e160);
        // A scaled block combined with ordinary ones, in either order.
        assert_close(norm(&[&[3e200], &[4.0]]), 3e200);
        assert_close(norm(&[&[4.0], &[3e-200], &[3.0]]), 5.0);
        // Ordinary blocks whose sum overflows.
        assert_close(norm(&[&[1e154], &[1e154]]), 2f64.sqrt() * 1e154);
        assert!(norm(&[&[f64::from_bits(1)]]) > 0.0);
        assert_eq!(norm(&[&[0.0, -0.0]]), 0.0);
    }

    #[test]
    fn non_finite_entries_and_norms_beyond_the_largest_float_propagate() {
        assert_eq!(norm(&[&[1.0, f64::INFINITY], &[1e200]]), f64::INFINITY);
        assert!(norm(&[&[1e-200, f64::NAN], &[1.0]]).is_nan());
        assert_eq!(norm(&[&[f64::MAX; 2]]), f64::INFINITY);
    }

    /// A chain of `boxes` boxes `scale * (a + b)`: the gradient is `2 * scale` on the inner
    /// coordinates and `scale` on the two ends, whatever the iterate.
    fn chain(scale: &str, boxes: usize) -> Problem {
        let text = format!(
            "objective f(a: real, b: real) {{ minimize {scale} * (a + b); }}
             composite c() {{ for i in 0..{boxes} {{ f(x[i], x[i + 1]); }} }}
             solve c {{ method = gd(lr = 1e-170); init x = 1; }}"
        );
        lower_text(&text, None).unwrap_or_else(|e| panic!("{e}")).1
    }

    /// Three gd steps stopping at a gradient norm of 1e-300: the outcome and final step.
    fn run(executor: &mut Executor, problem: &Problem) -> (Outcome, u64) {
        let mut state = SolverState::new(problem.initial_values.clone());
        let stop = StopRule {
            max_steps: 3,
            tolerance: Some(1e-300),
            rel_tolerance: None,
        };
        let method = ("gd", &[("lr", 1e-170)]);
        let mut method = crate::run::method::by_name(method.0, method.1).unwrap();
        let outcome = solve(executor, &mut *method, stop, &mut state, &mut NoObserver).unwrap();
        (outcome, state.step)
    }

    /// The run on every backend: serial, 2 and 3 threads, 2 and 3 local ranks.
    fn on_every_backend(problem: &Problem) -> Vec<(String, Outcome, u64)> {
        let plan = Arc::new(Plan::for_problem(problem).unwrap());
        let mut runs = Vec::new();
        let mut executor = Executor::new(plan.clone(), Backend::serial());
        let (outcome, step) = run(&mut executor, problem);
        runs.push(("serial".to_string(), outcome, step));
        for threads in [2, 3] {
            let mut executor = Executor::new(plan.clone(), Backend::threads(threads).unwrap());
            executor.force_parallel();
            let (outcome, step) = run(&mut executor, problem);
            runs.push((format!("{threads} threads"), outcome, step));
        }
        for ranks in [2, 3] {
            let mut results: Vec<(Outcome, u64)> = std::thread::scope(|scope| {
                let handles: Vec<_> = LocalRanks::new(ranks)
                    .into_iter()
                    .map(|transport| {
                        let plan = plan.clone();
                        scope.spawn(move || {
                            let backend = Backend::Distributed(std::rc::Rc::new(transport));
                            run(&mut Executor::new(plan, backend), problem)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let (outcome, step) = results.swap_remove(0);
            runs.push((format!("{ranks} ranks"), outcome, step));
        }
        runs
    }

    fn assert_runs_on(scale: f64, text: &str) {
        let boxes = 3000; // 3001 coordinates: six norm blocks, several chunks
        let problem = chain(text, boxes);
        let expected = scale * ((4 * (boxes - 1) + 2) as f64).sqrt();
        let runs = on_every_backend(&problem);
        for (backend, outcome, step) in &runs {
            assert_eq!(outcome.stop_reason, StopReason::MaxSteps, "{backend}");
            assert_eq!(*step, 3, "{backend}");
            let norm = outcome.evaluation.gradient_norm;
            assert!(
                ((norm - expected) / expected).abs() <= 1e-14,
                "{backend}: norm {norm:e}, expected {expected:e}"
            );
            assert_eq!(
                norm.to_bits(),
                runs[0].1.evaluation.gradient_norm.to_bits(),
                "{backend}"
            );
        }
    }

    #[test]
    fn a_tiny_gradient_does_not_underflow_to_convergence() {
        assert_runs_on(1e-170, "1e-170");
    }

    #[test]
    fn a_huge_finite_gradient_does_not_overflow_to_divergence() {
        assert_runs_on(1e160, "1e160");
    }
}
