//! Hand-written baselines for the benchmark and the speed-ratio test: the W1 gradient with
//! nalgebra (preallocated buffers, precomputed X') and the W2 Rosenbrock boxes as one fused
//! loop.
#![allow(dead_code)]

use super::w1;
use catopt::numerics::{BinaryOp, CompiledObjective, ExprBuilder, Shape};
use nalgebra::{DMatrix, DVector};

/// The hand-written W1 gradient of one task, with every buffer preallocated.
pub struct HandTask {
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
    pub fn new(task: &w1::Task) -> Self {
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
    pub fn value_and_gradient(
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

/// `100 (x1 - x0^2)^2 + (1 - x0)^2`.
pub fn rosenbrock_box() -> CompiledObjective {
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

/// The same values and gradients, written by hand as one fused loop (compiled with AVX2
/// when the CPU has it, like the batched kernel).
pub fn rosenbrock_by_hand(x: &[f64], values: &mut [f64], gradient: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { rosenbrock_by_hand_avx2(x, values, gradient) };
            return;
        }
    }
    rosenbrock_loop(x, values, gradient);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rosenbrock_by_hand_avx2(x: &[f64], values: &mut [f64], gradient: &mut [f64]) {
    rosenbrock_loop(x, values, gradient);
}

#[inline(always)]
fn rosenbrock_loop(x: &[f64], values: &mut [f64], gradient: &mut [f64]) {
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
