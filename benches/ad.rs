//! Compiled reverse mode against hand-written gradients.
//!
//! - `w1_gradient`: value + gradient of the W1 objective (8 tasks of
//!   `mean((tanh(X @ W + b) @ v + c - y)^2)`, X 512 x 64, W 64 x 32): the compiled plan vs a
//!   hand-written nalgebra implementation (preallocated buffers, precomputed X').
//! - `w2_rosenbrock`: value + gradient of 1e6 Rosenbrock boxes in chunks of 4096: the
//!   batched kernel vs a hand-written fused loop.
//!
//! Run with `cargo bench --bench ad`.

#[path = "../tests/numerics_common/mod.rs"]
mod numerics_common;

use catopt::numerics::{CompiledObjective, Workspace};
use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::{DMatrix, DVector};
use numerics_common::baselines::{rosenbrock_box, rosenbrock_by_hand, HandTask};
use numerics_common::w1;
use std::hint::black_box;

fn w1_benchmarks(c: &mut Criterion) {
    let tasks = w1::load_tasks();
    let point = w1::initial_point();
    let compiled: Vec<CompiledObjective> = tasks.iter().map(w1::build_task).collect();
    let mut workspaces: Vec<Workspace> = compiled.iter().map(|o| o.workspace()).collect();
    let mut hand: Vec<HandTask> = tasks.iter().map(HandTask::new).collect();
    let w = DMatrix::from_row_slice(w1::FEATURES, w1::HIDDEN, &point[..w1::OFFSET_B]);
    let b = point[w1::OFFSET_B..w1::OFFSET_V].to_vec();
    let v = DVector::from_column_slice(&point[w1::OFFSET_V..w1::OFFSET_C]);
    let cval = point[w1::OFFSET_C];
    let mut gradient = vec![0.0; w1::NUM_INPUTS];
    let mut hand_gradient = vec![0.0; w1::NUM_INPUTS];

    // The two must agree before their speed is compared.
    let mut total = 0.0;
    let mut hand_total = 0.0;
    for t in 0..w1::TASKS {
        total += compiled[t].value_and_gradient(&mut workspaces[t], &point, &mut gradient);
        hand_total += hand[t].value_and_gradient(&w, &b, &v, cval, &mut hand_gradient);
        for (i, (g, h)) in gradient.iter().zip(&hand_gradient).enumerate() {
            assert!(
                (g - h).abs() <= 1e-12 * h.abs().max(1e-3),
                "task {t} coordinate {i}: {g} vs {h}"
            );
        }
    }
    assert!((total - hand_total).abs() < 1e-12 * total);

    let mut group = c.benchmark_group("w1_gradient");
    group.bench_function("compiled", |bench| {
        bench.iter(|| {
            let mut total = 0.0;
            for t in 0..w1::TASKS {
                total += compiled[t].value_and_gradient(&mut workspaces[t], &point, &mut gradient);
            }
            black_box(total)
        })
    });
    group.bench_function("hand_written_nalgebra", |bench| {
        bench.iter(|| {
            let mut total = 0.0;
            for task in hand.iter_mut() {
                total += task.value_and_gradient(&w, &b, &v, cval, &mut hand_gradient);
            }
            black_box(total)
        })
    });
    group.finish();
}

fn w2_benchmarks(c: &mut Criterion) {
    const BOXES: usize = 1_000_000;
    const CHUNK: usize = 4096;
    let objective = rosenbrock_box();
    let mut ws = objective.batch_workspace(CHUNK);
    // Input-major chunks, as the runtime gathers them: x_i then x_{i+1} of each box.
    let chain: Vec<f64> = (0..=BOXES).map(|i| -1.2 + 1e-7 * i as f64).collect();
    let chunks: Vec<Vec<f64>> = (0..BOXES)
        .step_by(CHUNK)
        .map(|start| {
            let batch = CHUNK.min(BOXES - start);
            let mut x = Vec::with_capacity(2 * batch);
            x.extend_from_slice(&chain[start..start + batch]);
            x.extend_from_slice(&chain[start + 1..start + 1 + batch]);
            x
        })
        .collect();
    let mut values = vec![0.0; CHUNK];
    let mut gradient = vec![0.0; 2 * CHUNK];
    // Agreement check (to rounding: the hand loop orders operations differently).
    for x in &chunks[..2] {
        let batch = x.len() / 2;
        let mut hv = vec![0.0; batch];
        let mut hg = vec![0.0; 2 * batch];
        rosenbrock_by_hand(x, &mut hv, &mut hg);
        objective.batch_value_and_gradient(
            &mut ws,
            batch,
            x,
            &mut values[..batch],
            &mut gradient[..2 * batch],
        );
        for k in 0..batch {
            assert!((hv[k] - values[k]).abs() <= 1e-12 * hv[k].abs());
        }
        for k in 0..2 * batch {
            assert!((hg[k] - gradient[k]).abs() <= 1e-12 * hg[k].abs().max(1.0));
        }
    }

    let mut group = c.benchmark_group("w2_rosenbrock_1e6");
    group.bench_function("batched_kernel", |bench| {
        bench.iter(|| {
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
            black_box(values[0])
        })
    });
    group.bench_function("hand_written_loop", |bench| {
        bench.iter(|| {
            for x in &chunks {
                let batch = x.len() / 2;
                rosenbrock_by_hand(x, &mut values[..batch], &mut gradient[..2 * batch]);
            }
            black_box(values[0])
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = w1_benchmarks, w2_benchmarks
}
criterion_main!(benches);
