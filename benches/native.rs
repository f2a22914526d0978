//! Native box kernels against the interpreter, on W2's box (the Rosenbrock chain).
//!
//! - `w2_kernel_1e5`: value and gradient of 1e5 chained boxes in the plan's chunks of 512,
//!   each chunk reading the state in place (`batch_value_and_gradient_at`, as the sweep
//!   does for a chain): the interpreter, native code, and the hand-written fused loop on
//!   copied chunks for scale. The first two must agree bit for bit before they are timed.
//! - `codegen`: generating and finalising the native kernels of the W2 box.
//!
//! Run with `cargo bench --bench native`; the ratio is native / interpreted.

#[path = "../tests/numerics_common/mod.rs"]
mod numerics_common;

use catopt::numerics::{CompiledObjective, KernelChoice, KernelNote};
use criterion::{criterion_group, criterion_main, Criterion};
use numerics_common::baselines::{rosenbrock_box, rosenbrock_by_hand};
use std::hint::black_box;
use std::time::Duration;

const BOXES: usize = 100_000;
/// The plan's chunk size (`run::plan::CHUNK`).
const CHUNK: usize = 512;

/// One sweep's kernel calls over the chain `z`: chunk by chunk, inputs read in place.
fn sweep(
    objective: &CompiledObjective,
    ws: &mut catopt::numerics::BatchWorkspace,
    z: &[f64],
    values: &mut [f64],
    gradient: &mut [f64],
) -> f64 {
    let mut total = 0.0;
    for first in (0..BOXES).step_by(CHUNK) {
        let count = CHUNK.min(BOXES - first);
        objective.batch_value_and_gradient_at(
            ws,
            count,
            z,
            &[first, first + 1],
            &mut values[..count],
            &mut gradient[..2 * count],
        );
        total += values[0] + gradient[count];
    }
    total
}

fn w2_kernel(c: &mut Criterion) {
    let interpreted = rosenbrock_box();
    let (native, note) = interpreted.with_kernels(KernelChoice::Native);
    assert!(matches!(note, KernelNote::Native { .. }), "{note}");
    let z: Vec<f64> = (0..=BOXES).map(|i| -1.2 + 1e-7 * i as f64).collect();
    let mut ws = interpreted.batch_workspace(CHUNK);
    let mut native_ws = native.batch_workspace(CHUNK);
    let (mut values, mut gradient) = (vec![0.0; CHUNK], vec![0.0; 2 * CHUNK]);
    let (mut native_values, mut native_gradient) = (vec![0.0; CHUNK], vec![0.0; 2 * CHUNK]);
    // Same bits, chunk by chunk, before any timing.
    for first in (0..BOXES).step_by(CHUNK) {
        let count = CHUNK.min(BOXES - first);
        let offsets = [first, first + 1];
        interpreted.batch_value_and_gradient_at(
            &mut ws,
            count,
            &z,
            &offsets,
            &mut values[..count],
            &mut gradient[..2 * count],
        );
        native.batch_value_and_gradient_at(
            &mut native_ws,
            count,
            &z,
            &offsets,
            &mut native_values[..count],
            &mut native_gradient[..2 * count],
        );
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&values), bits(&native_values), "chunk at {first}");
        assert_eq!(bits(&gradient), bits(&native_gradient), "chunk at {first}");
    }
    let copied: Vec<Vec<f64>> = (0..BOXES)
        .step_by(CHUNK)
        .map(|first| {
            let count = CHUNK.min(BOXES - first);
            [&z[first..first + count], &z[first + 1..first + 1 + count]].concat()
        })
        .collect();

    let mut group = c.benchmark_group("w2_kernel_1e5");
    group.bench_function("interpreted", |bench| {
        bench.iter(|| black_box(sweep(&interpreted, &mut ws, &z, &mut values, &mut gradient)))
    });
    group.bench_function("native", |bench| {
        bench.iter(|| {
            black_box(sweep(
                &native,
                &mut native_ws,
                &z,
                &mut values,
                &mut gradient,
            ))
        })
    });
    group.bench_function("hand_written_loop", |bench| {
        bench.iter(|| {
            for x in &copied {
                let count = x.len() / 2;
                rosenbrock_by_hand(x, &mut values[..count], &mut gradient[..2 * count]);
            }
            black_box(values[0])
        })
    });
    group.finish();
}

fn codegen(c: &mut Criterion) {
    let objective = rosenbrock_box();
    let mut group = c.benchmark_group("codegen");
    group.bench_function("w2_box", |bench| {
        bench.iter(|| black_box(objective.with_kernels(KernelChoice::Native).0.is_native()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = w2_kernel, codegen
}
criterion_main!(benches);
