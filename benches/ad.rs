//! Compiled reverse mode against hand-written gradients.
//!
//! - `w1_gradient`: value + gradient of the W1 objective (8 tasks of
//!   `mean((tanh(X @ W + b) @ v + c - y)^2)`, X 512 x 64, W 64 x 32): the compiled plan vs a
//!   hand-written nalgebra implementation (preallocated buffers, precomputed X').
//! - `w2_rosenbrock`: value + gradient of 1e6 Rosenbrock boxes in chunks of 4096: the
//!   batched kernel vs a hand-written fused loop.
//!
//! Run with `cargo bench --bench ad`.

#[path = "../tests/numerics_common/w1.rs"]
mod w1;

use catopt::numerics::{BinaryOp, CompiledObjective, ExprBuilder, Shape, Workspace};
use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::{DMatrix, DVector};
use std::hint::black_box;

/// The hand-written W1 gradient of one task, with every buffer preallocated.
struct HandTask {
    x: DMatrix<f64>,
    /// X' precomputed (a plain product on the transposed copy beats `tr_mul`).
    xt: DMatrix<f64>,
    y: DVector<f64>,
    h: DMatrix<f64>,
    dz: DMatrix<f64>,
    residual: DVector<f64>,
    dw: DMatrix<f64>,
}

impl HandTask {
    fn new(task: &w1::Task) -> Self {
        let x = DMatrix::from_row_slice(w1::SAMPLES, w1::FEATURES, &task.x);
        HandTask {
            xt: x.transpose(),
            x,
            y: DVector::from_column_slice(&task.y),
            h: DMatrix::zeros(w1::SAMPLES, w1::HIDDEN),
            dz: DMatrix::zeros(w1::SAMPLES, w1::HIDDEN),
            residual: DVector::zeros(w1::SAMPLES),
            dw: DMatrix::zeros(w1::FEATURES, w1::HIDDEN),
        }
    }

    /// Value and gradient; `w` is column-major 64 x 32, the gradient has the builder's
    /// layout (W row-major, then b, v, c).
    fn value_and_gradient(
        &mut self,
        w: &DMatrix<f64>,
        b: &[f64],
        v: &DVector<f64>,
        c: f64,
        gradient: &mut [f64],
    ) -> f64 {
        let n = w1::SAMPLES as f64;
        // H = tanh(X W + b), column by column (column-major: contiguous).
        self.h.gemm(1.0, &self.x, w, 0.0);
        for (j, mut column) in self.h.column_iter_mut().enumerate() {
            let bj = b[j];
            for z in column.iter_mut() {
                *z = (*z + bj).tanh();
            }
        }
        // r = H v + c - y
        self.residual.gemv(1.0, &self.h, v, 0.0);
        let mut loss = 0.0;
        for (r, &y) in self.residual.iter_mut().zip(self.y.iter()) {
            *r += c - y;
            loss += *r * *r;
        }
        loss /= n;
        // g = 2 r / n (kept in `residual`)
        let scale = 2.0 / n;
        self.residual.iter_mut().for_each(|r| *r *= scale);
        let (gw, rest) = gradient.split_at_mut(w1::OFFSET_B);
        let (gb, rest) = rest.split_at_mut(w1::HIDDEN);
        let (gv, gc) = rest.split_at_mut(w1::HIDDEN);
        gc[0] = self.residual.sum();
        // dv = H' g; dZ = (g v') .* (1 - H^2); db = column sums of dZ.
        for j in 0..w1::HIDDEN {
            let h = self.h.column(j);
            gv[j] = h.dot(&self.residual);
            let vj = v[j];
            let mut dz = self.dz.column_mut(j);
            let mut sum = 0.0;
            for i in 0..w1::SAMPLES {
                let hij = h[i];
                let d = self.residual[i] * vj * (1.0 - hij * hij);
                dz[i] = d;
                sum += d;
            }
            gb[j] = sum;
        }
        // dW = X' dZ
        self.dw.gemm(1.0, &self.xt, &self.dz, 0.0);
        for i in 0..w1::FEATURES {
            for j in 0..w1::HIDDEN {
                gw[i * w1::HIDDEN + j] = self.dw[(i, j)];
            }
        }
        loss
    }
}

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

/// `100 (x1 - x0^2)^2 + (1 - x0)^2`.
fn rosenbrock_box() -> CompiledObjective {
    let mut b = ExprBuilder::new(2);
    let x0 = b.input(0, Shape::Scalar);
    let x1 = b.input(1, Shape::Scalar);
    let two = b.scalar(2.0);
    let hundred = b.scalar(100.0);
    let one = b.scalar(1.0);
    let sq = b.binary(BinaryOp::Pow, x0, two).unwrap();
    let d = b.binary(BinaryOp::Sub, x1, sq).unwrap();
    let d2 = b.binary(BinaryOp::Pow, d, two).unwrap();
    let a = b.binary(BinaryOp::Mul, hundred, d2).unwrap();
    let e = b.binary(BinaryOp::Sub, one, x0).unwrap();
    let e2 = b.binary(BinaryOp::Pow, e, two).unwrap();
    let f = b.binary(BinaryOp::Add, a, e2).unwrap();
    b.compile(f).unwrap()
}

/// The same values and gradients, written by hand as one fused loop.
fn rosenbrock_by_hand(x: &[f64], values: &mut [f64], gradient: &mut [f64]) {
    let batch = values.len();
    let (x0s, x1s) = x.split_at(batch);
    let (g0s, g1s) = gradient.split_at_mut(batch);
    for k in 0..batch {
        let (x0, x1) = (x0s[k], x1s[k]);
        let d = x1 - x0 * x0;
        let e = 1.0 - x0;
        values[k] = 100.0 * (d * d) + e * e;
        g0s[k] = -400.0 * d * x0 - 2.0 * e;
        g1s[k] = 200.0 * d;
    }
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
