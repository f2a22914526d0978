//! Speed ratios of the compiled plans against the hand-written baselines, measured robustly
//! on a shared machine: the two are run alternately and the minimum time of each over many
//! rounds is compared. A measurement tool, not a pass/fail gate (beyond checking that both
//! compute the same thing); run with
//! `cargo test --release --test numerics_speed -- --ignored --nocapture`.

mod numerics_common;

use catopt::numerics::{CompiledObjective, Workspace};
use nalgebra::{DMatrix, DVector};
use numerics_common::baselines::{rosenbrock_box, rosenbrock_by_hand, HandTask};
use numerics_common::w1;
use std::hint::black_box;
use std::time::Instant;

fn time(f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Minimum times of `a` and `b` over `rounds` alternating runs.
fn alternate(rounds: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        best_a = best_a.min(time(&mut a));
        best_b = best_b.min(time(&mut b));
    }
    (best_a, best_b)
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn w1_compiled_against_hand_written() {
    let tasks = w1::load_tasks();
    let point = w1::initial_point();
    let compiled: Vec<CompiledObjective> = tasks.iter().map(w1::build_task).collect();
    let mut workspaces: Vec<Workspace> = compiled.iter().map(|o| o.workspace()).collect();
    let mut hand: Vec<HandTask> = tasks.iter().map(HandTask::new).collect();
    let w = DMatrix::from_row_slice(w1::FEATURES, w1::HIDDEN, &point[..w1::OFFSET_B]);
    let b = point[w1::OFFSET_B..w1::OFFSET_V].to_vec();
    let v = DVector::from_column_slice(&point[w1::OFFSET_V..w1::OFFSET_C]);
    let c = point[w1::OFFSET_C];
    let mut gradient = vec![0.0; w1::NUM_INPUTS];
    let mut hand_gradient = vec![0.0; w1::NUM_INPUTS];
    let (mut total, mut hand_total) = (0.0, 0.0);
    let (compiled_time, hand_time) = alternate(
        300,
        || {
            total = 0.0;
            for t in 0..w1::TASKS {
                total += compiled[t].value_and_gradient(&mut workspaces[t], &point, &mut gradient);
            }
            black_box(total);
        },
        || {
            hand_total = 0.0;
            for task in hand.iter_mut() {
                hand_total += task.value_and_gradient(&w, &b, &v, c, &mut hand_gradient);
            }
            black_box(hand_total);
        },
    );
    assert!((total - hand_total).abs() <= 1e-12 * total);
    for (g, h) in gradient.iter().zip(&hand_gradient) {
        assert!((g - h).abs() <= 1e-12 * h.abs().max(1e-3));
    }
    eprintln!(
        "W1 value+gradient, 8 tasks: compiled {:.1} us, hand-written {:.1} us, ratio {:.3}",
        compiled_time * 1e6,
        hand_time * 1e6,
        compiled_time / hand_time
    );
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn w2_batched_kernel_against_hand_written_loop() {
    const BOXES: usize = 1_000_000;
    const CHUNK: usize = 4096;
    let objective = rosenbrock_box();
    let mut ws = objective.batch_workspace(CHUNK);
    let chain: Vec<f64> = (0..=BOXES).map(|i| -1.2 + 1e-7 * i as f64).collect();
    let chunks: Vec<Vec<f64>> = (0..BOXES)
        .step_by(CHUNK)
        .map(|start| {
            let batch = CHUNK.min(BOXES - start);
            let mut x = chain[start..start + batch].to_vec();
            x.extend_from_slice(&chain[start + 1..start + 1 + batch]);
            x
        })
        .collect();
    let mut values = vec![0.0; CHUNK];
    let mut gradient = vec![0.0; 2 * CHUNK];
    let mut hand_values = vec![0.0; CHUNK];
    let mut hand_gradient = vec![0.0; 2 * CHUNK];
    let (compiled_time, hand_time) = alternate(
        40,
        || {
            for x in &chunks {
                let batch = x.len() / 2;
                objective.batch_value_and_gradient(
                    &mut ws,
                    batch,
                    x,
                    &mut values[..batch],
                    &mut gradient[..2 * batch],
                );
            }
            black_box(&values);
        },
        || {
            for x in &chunks {
                let batch = x.len() / 2;
                rosenbrock_by_hand(
                    x,
                    &mut hand_values[..batch],
                    &mut hand_gradient[..2 * batch],
                );
            }
            black_box(&hand_values);
        },
    );
    for (a, b) in values.iter().zip(&hand_values) {
        assert!((a - b).abs() <= 1e-12 * b.abs());
    }
    eprintln!(
        "W2 value+gradient, 1e6 boxes in chunks of 4096: batched {:.3} ms, hand loop {:.3} ms, ratio {:.2}",
        compiled_time * 1e3,
        hand_time * 1e3,
        compiled_time / hand_time
    );
}
