//! The benchmarks' hand-written baselines compute the workloads' objectives: their final
//! objectives agree with the JAX references, and the vectorised tanh agrees with libm.

#[path = "../benches/common/mod.rs"]
mod common;

use common::chain::ChainBaseline;
use common::multitask::{tanh_worst_relative_error, MultitaskBaseline};
use common::*;

#[test]
fn vectorised_tanh_agrees_with_libm_to_a_few_ulps() {
    let worst = tanh_worst_relative_error();
    assert!(worst < 5e-16, "worst relative error {worst:e}");
}

#[test]
fn handwritten_w1_matches_the_jax_reference() {
    let mut baseline = MultitaskBaseline::load(&repo_path("bench/data"));
    check_close(
        "initial",
        baseline.objective_and_gradient(),
        W1_INITIAL_OBJECTIVE,
    );
    for _ in 0..W1_STEPS {
        baseline.step();
    }
    check_close(
        "final",
        baseline.objective_and_gradient(),
        W1_FINAL_OBJECTIVE,
    );
    baseline.restart();
    check_close(
        "restarted",
        baseline.objective_and_gradient(),
        W1_INITIAL_OBJECTIVE,
    );
}

#[test]
fn handwritten_w2_matches_the_jax_reference() {
    let mut baseline = ChainBaseline::new(1_000);
    for _ in 0..W2_STEPS {
        baseline.step();
    }
    check_close("final", baseline.objective(), w2_final_objective(1_000));
}

#[test]
fn handwritten_w2_objective_is_the_sum_of_the_boxes() {
    // Against a direct sum, at a non-constant point (after some steps), for a length that
    // is not a multiple of the block or lane sizes.
    let mut baseline = ChainBaseline::new(2_503);
    for _ in 0..7 {
        baseline.step();
    }
    let x = baseline.values();
    let direct: f64 = x
        .windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum();
    let objective = baseline.objective();
    assert!(
        (objective - direct).abs() <= 1e-12 * direct.abs(),
        "{objective} vs {direct}"
    );
    // step() returns the objective before its update, summed block by block.
    let stepped = baseline.step();
    assert!(
        (stepped - direct).abs() <= 1e-12 * direct.abs(),
        "{stepped} vs {direct}"
    );
}

#[test]
fn catopt_run_of_w2_matches_the_jax_reference() {
    let mut run = CatoptRun::compile(
        &w2_file(1_000),
        catopt::run::backend::Backend::serial(),
        W2_LR,
    );
    for _ in 0..W2_STEPS {
        run.step();
    }
    check_close("catopt", run.objective(), w2_final_objective(1_000));
}
