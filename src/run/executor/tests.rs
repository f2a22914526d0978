//! The executor against central gradient descent, on every backend.

use super::*;
use crate::category::{euler, gradient_flow, iterate};
use crate::lower::Problem;
use crate::run::lanes::sum_of_squares;
use crate::run::method::by_name;
use crate::run::method::testing::{lower as problem, run_on};
use crate::run::plan::{Layout, SUM_BLOCK};

fn plan_of(problem: &Problem) -> Arc<Plan> {
    Arc::new(Plan::for_problem(problem).unwrap())
}

/// `steps` steps of gd with step size `lr` on `backend`: the iterate.
fn run(problem: &Problem, backend: Backend, lr: f64, steps: u64) -> Vec<f64> {
    let mut gd = by_name("gd", &[("lr", lr)]).unwrap();
    run_on(problem, &mut *gd, backend, steps).state.values
}

fn central(problem: &Problem, lr: f64, steps: usize) -> Vec<f64> {
    iterate(
        &euler(gradient_flow(&problem.composite), lr),
        &problem.initial_values,
        steps,
    )
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

const CHAIN: &str = "
    objective rosen(a: real, b: real) { minimize 100 * (b - a^2)^2 + (1 - a)^2; }
    composite chain() { for i in 0..5000 { rosen(x[i], x[i + 1]); } }
    solve chain { method = gd(lr = 1e-4); init x = -1.2; }";

#[test]
fn a_chain_uses_run_layouts_and_equals_central_gradient_descent_bitwise() {
    let p = problem(CHAIN);
    let plan = plan_of(&p);
    assert!(plan.is_in_box_order());
    assert!(plan.chunk_count() > 3, "several chunks, so threads defer");
    assert!(plan
        .chunks
        .iter()
        .all(|c| matches!(c.layout, Layout::PerInputRuns { .. })));
    let reference = bits(&central(&p, 1e-4, 7));
    assert_eq!(bits(&run(&p, Backend::serial(), 1e-4, 7)), reference);
    for threads in [2, 3] {
        let values = run(&p, Backend::threads(threads).unwrap(), 1e-4, 7);
        assert_eq!(bits(&values), reference, "{threads} threads");
    }
}

#[test]
fn interleaved_box_types_give_the_same_bits_on_every_backend() {
    let text = "
        objective f(x: real, y: real) { minimize (x - y)^2 + 0.1 * x^4; }
        objective g(x: real) { minimize sin(x) + x^2; }
        composite c() { for i in 0..3000 { f(z[i], z[i + 1]); g(z[i]); } }
        solve c { method = gd(lr = 0.01); init z = 0.5; }";
    let p = problem(text);
    let plan = plan_of(&p);
    assert!(!plan.is_in_box_order());
    let serial = run(&p, Backend::serial(), 0.01, 5);
    for threads in [1, 2, 3] {
        let values = run(&p, Backend::threads(threads).unwrap(), 0.01, 5);
        assert_eq!(bits(&values), bits(&serial), "{threads} threads");
    }
    let reference = central(&p, 0.01, 5);
    let worst = serial
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-13, "{worst}");
}

#[test]
fn repeated_ports_and_matrix_boxes_match_central_gradient_descent() {
    let text = "
        objective q(a: real[3], b: real[3]) { minimize sumsq(a - 2 * b) + dot(a, b) + sum(exp(0.1 * a)); }
        composite c() where (u: real[3] = 0.3, v: real[3] = -0.2) { q(u, u); q(u, v); q(v, u); }
        solve c { method = gd(lr = 0.05); }";
    let p = problem(text);
    let plan = plan_of(&p);
    assert!(plan.is_in_box_order());
    let reference = bits(&central(&p, 0.05, 20));
    for backend in [Backend::serial(), Backend::threads(2).unwrap()] {
        assert_eq!(bits(&run(&p, backend, 0.05, 20)), reference);
    }
}

#[test]
fn the_gradient_is_the_sum_of_the_boxes_gradients() {
    // f1(a, b) = (a-1)^2 + (b-2)^2 and f2(b, c) = (b-4)^2 + (c+1)^2 at 0: the shared b
    // gets -4 from f1 and -8 from f2.
    let p = problem(
        "objective f1(b: real) { var a: real; minimize (a - 1)^2 + (b - 2)^2; }
         objective f2(b: real) { var c: real; minimize (b - 4)^2 + (c + 1)^2; }
         composite total() { f1(b); f2(b); }",
    );
    let mut executor = Executor::new(plan_of(&p), Backend::serial());
    let evaluation = executor.evaluate(&[0.0, 0.0, 0.0]);
    assert_eq!(evaluation.objective, 1.0 + 4.0 + 16.0 + 1.0);
    let b = p.composite.junction_variables(0)[0];
    assert_eq!(executor.gradient()[b], -12.0);
    let mut sorted = executor.gradient().to_vec();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, vec![-12.0, -2.0, 2.0]);
}

#[test]
fn partitions_cover_every_chunk_in_order() {
    let p = problem(CHAIN);
    let plan = plan_of(&p);
    for parts in 1..6 {
        let ranges = plan.partition(parts);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, plan.chunk_count());
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }
}

#[test]
fn the_sweep_finishes_every_block_that_one_worker_completes() {
    // 5001 coordinates: 10 norm blocks, 10 chunks of a chain.
    let p = problem(CHAIN);
    let plan = plan_of(&p);
    let blocks = 5001usize.div_ceil(SUM_BLOCK);
    let serial = plan.block_schedule(&plan.partition(1));
    assert!(serial.after_sweep.is_empty());
    assert_eq!(serial.blocks.len(), blocks);
    // Block b is complete after chunk b (its last coordinate is read by no later box).
    assert_eq!(plan.chunk_count(), blocks);
    for c in 0..blocks {
        assert_eq!(serial.after_chunk(c), [c as u32]);
    }
    // Two workers: the block holding the coordinate they share is finished afterwards.
    let ranges = plan.partition(2);
    let split = ranges[1].start;
    let two = plan.block_schedule(&ranges);
    assert_eq!(two.after_sweep, vec![split as u32]);
    assert_eq!(two.blocks.len(), blocks - 1);
    // Either way, the norm and the update are those of the complete gradient.
    let state: Vec<f64> = (0..5001).map(|i| (i as f64 * 0.37).sin()).collect();
    for backend in [Backend::serial(), Backend::threads(2).unwrap()] {
        let mut executor = Executor::new(plan.clone(), backend);
        let mut next = vec![0.0; 5001];
        let rule = crate::run::method::GdRule { eta: 0.5 };
        let evaluation = executor.evaluate_and_update(0, &[&state], &mut [&mut next], &rule);
        let gradient = executor.gradient();
        let norm: f64 = (0..blocks)
            .map(|b| sum_of_squares(&gradient[b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(5001)]))
            .sum::<f64>()
            .sqrt();
        assert_eq!(evaluation.gradient_norm.to_bits(), norm.to_bits());
        for j in 0..5001 {
            assert_eq!(next[j].to_bits(), (state[j] - 0.5 * gradient[j]).to_bits());
        }
    }
}
