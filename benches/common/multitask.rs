//! W1 written by hand: multitask shared-trunk regression with nalgebra's matrix product
//! (matrixmultiply's packed, SIMD kernels) and fused element-wise loops, all buffers
//! allocated once. The eight tasks are stacked into one 4096 x 64 data matrix so that the
//! forward product and the weight gradient are one large product each, the way an expert
//! (or XLA, from the JAX reference's `einsum`) would write it.
//!
//! Per task t: `pred_t = tanh(X_t W + b) v_t + c_t`, `loss_t = mean((pred_t - y_t)^2)`;
//! the objective is the sum of the losses. The gradient, by hand:
//! `r = 2 (pred - y) / n`, `dv_t = H_t^T r`, `dc_t = sum r`,
//! `dZ_t = (r v_t^T) .* (1 - H_t.^2)`, `db = sum over rows of dZ`, `dW = X^T dZ`.

use super::{read_csv, W1_LR};
use catopt::numerics::tanh;
use nalgebra::DMatrix;
use std::path::Path;

/// Tasks, rows per task, inputs, hidden units of W1.
pub const TASKS: usize = 8;
/// Rows (samples) per task.
pub const ROWS: usize = 512;
/// Input dimension.
pub const INPUTS: usize = 64;
/// Hidden units (columns of the shared trunk W).
pub const HIDDEN: usize = 32;

/// The hand-written W1 solver: parameters, constant data and every scratch buffer.
pub struct MultitaskBaseline {
    /// All tasks' inputs stacked, (TASKS * ROWS) x INPUTS.
    inputs: DMatrix<f64>,
    /// Its transpose (for the weight gradient as a plain product).
    inputs_transposed: DMatrix<f64>,
    /// All tasks' targets, task-major.
    targets: Vec<f64>,
    /// The shared trunk.
    trunk: DMatrix<f64>,
    trunk_initial: DMatrix<f64>,
    /// The shared bias.
    bias: Vec<f64>,
    /// The heads, one column per task (HIDDEN x TASKS).
    heads: DMatrix<f64>,
    /// The heads' offsets.
    offsets: Vec<f64>,
    /// Hidden activations, (TASKS * ROWS) x HIDDEN.
    hidden: DMatrix<f64>,
    /// Gradient with respect to the pre-activations.
    hidden_gradient: DMatrix<f64>,
    trunk_gradient: DMatrix<f64>,
    bias_gradient: Vec<f64>,
    heads_gradient: DMatrix<f64>,
    offsets_gradient: Vec<f64>,
    /// Per-row residual gradient of one task.
    residual: Vec<f64>,
    learning_rate: f64,
}

impl MultitaskBaseline {
    /// Loads W1's data (`task{t}_x.csv`, `task{t}_y.csv`, `w0.csv`) from `data_dir`.
    pub fn load(data_dir: &Path) -> MultitaskBaseline {
        let mut stacked = Vec::with_capacity(TASKS * ROWS * INPUTS);
        let mut targets = Vec::with_capacity(TASKS * ROWS);
        for t in 0..TASKS {
            let (x, rows, columns) = read_csv(&data_dir.join(format!("task{t}_x.csv")));
            assert_eq!((rows, columns), (ROWS, INPUTS), "task {t} inputs");
            stacked.extend_from_slice(&x);
            let (y, rows, columns) = read_csv(&data_dir.join(format!("task{t}_y.csv")));
            assert_eq!(rows * columns, ROWS, "task {t} targets");
            targets.extend_from_slice(&y);
        }
        let inputs = DMatrix::from_row_slice(TASKS * ROWS, INPUTS, &stacked);
        let (w0, rows, columns) = read_csv(&data_dir.join("w0.csv"));
        assert_eq!((rows, columns), (INPUTS, HIDDEN), "w0.csv");
        let trunk = DMatrix::from_row_slice(INPUTS, HIDDEN, &w0);
        MultitaskBaseline {
            inputs_transposed: inputs.transpose(),
            inputs,
            targets,
            trunk_initial: trunk.clone(),
            trunk,
            bias: vec![0.0; HIDDEN],
            heads: DMatrix::from_element(HIDDEN, TASKS, 0.1),
            offsets: vec![0.0; TASKS],
            hidden: DMatrix::zeros(TASKS * ROWS, HIDDEN),
            hidden_gradient: DMatrix::zeros(TASKS * ROWS, HIDDEN),
            trunk_gradient: DMatrix::zeros(INPUTS, HIDDEN),
            bias_gradient: vec![0.0; HIDDEN],
            heads_gradient: DMatrix::zeros(HIDDEN, TASKS),
            offsets_gradient: vec![0.0; TASKS],
            residual: vec![0.0; ROWS],
            learning_rate: W1_LR,
        }
    }

    /// Back to the initial point (W from w0.csv, b = 0, v_t = 0.1, c_t = 0).
    pub fn restart(&mut self) {
        self.trunk.copy_from(&self.trunk_initial);
        self.bias.fill(0.0);
        self.heads.fill(0.1);
        self.offsets.fill(0.0);
    }

    /// The objective and its gradient at the current parameters (into the gradient
    /// buffers). Allocates nothing.
    pub fn objective_and_gradient(&mut self) -> f64 {
        let n = TASKS * ROWS;
        // Pre-activations of all tasks in one product, then tanh(. + b) in place.
        self.hidden.gemm(1.0, &self.inputs, &self.trunk, 0.0);
        for (column, &bias) in self
            .hidden
            .as_mut_slice()
            .chunks_exact_mut(n)
            .zip(&self.bias)
        {
            tanh_shifted(column, bias);
        }
        self.bias_gradient.fill(0.0);
        let scale = 2.0 / ROWS as f64;
        let mut objective = 0.0;
        let hidden = self.hidden.as_slice();
        let hidden_gradient = self.hidden_gradient.as_mut_slice();
        for t in 0..TASKS {
            let rows = t * ROWS..(t + 1) * ROWS;
            let head = self.heads.column(t);
            // Predictions: c_t + H_t v_t, column by column (contiguous).
            let residual = &mut self.residual;
            residual.fill(self.offsets[t]);
            for j in 0..HIDDEN {
                let column = &hidden[j * n + rows.start..j * n + rows.end];
                let weight = head[j];
                for (r, h) in residual.iter_mut().zip(column) {
                    *r += h * weight;
                }
            }
            let mut loss = 0.0;
            let mut offset_gradient = 0.0;
            for (r, y) in residual.iter_mut().zip(&self.targets[rows.clone()]) {
                let error = *r - y;
                loss += error * error;
                *r = scale * error;
                offset_gradient += *r;
            }
            objective += loss / ROWS as f64;
            self.offsets_gradient[t] = offset_gradient;
            // dv_t = H_t^T r; dZ_t = (r v_t^T) .* (1 - H_t^2); db = column sums of dZ.
            for j in 0..HIDDEN {
                let column = &hidden[j * n + rows.start..j * n + rows.end];
                let out = &mut hidden_gradient[j * n + rows.start..j * n + rows.end];
                let (head_gradient, bias_gradient) =
                    hidden_backward(column, residual, head[j], out);
                self.heads_gradient[(j, t)] = head_gradient;
                self.bias_gradient[j] += bias_gradient;
            }
        }
        // dW = X^T dZ, all tasks at once.
        self.trunk_gradient
            .gemm(1.0, &self.inputs_transposed, &self.hidden_gradient, 0.0);
        objective
    }

    /// One gradient-descent step; returns the objective before the update.
    pub fn step(&mut self) -> f64 {
        let objective = self.objective_and_gradient();
        let lr = self.learning_rate;
        let pairs = [
            (self.trunk.as_mut_slice(), self.trunk_gradient.as_slice()),
            (self.heads.as_mut_slice(), self.heads_gradient.as_slice()),
            (&mut self.bias[..], &self.bias_gradient[..]),
            (&mut self.offsets[..], &self.offsets_gradient[..]),
        ];
        for (parameters, gradient) in pairs {
            for (p, g) in parameters.iter_mut().zip(gradient) {
                *p -= lr * g;
            }
        }
        objective
    }
}

/// `column[i] = tanh(column[i] + bias)`, with AVX2 when the CPU has it (runtime check,
/// like catopt's own kernels and matrixmultiply).
fn tanh_shifted(column: &mut [f64], bias: f64) {
    #[inline(always)]
    fn body(column: &mut [f64], bias: f64) {
        for h in column {
            *h = tanh(*h + bias);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(column: &mut [f64], bias: f64) {
            body(column, bias)
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the enabled features (checked just above).
            return unsafe { avx2(column, bias) };
        }
    }
    body(column, bias)
}

/// One hidden unit's backward pass over one task: `dz = r * weight * (1 - h^2)`; returns
/// (sum of h * r, sum of dz), each summed in four lanes so that the loop vectorises.
fn hidden_backward(column: &[f64], residual: &[f64], weight: f64, out: &mut [f64]) -> (f64, f64) {
    #[inline(always)]
    fn body(column: &[f64], residual: &[f64], weight: f64, out: &mut [f64]) -> (f64, f64) {
        let mut head = [0.0f64; 4];
        let mut bias = [0.0f64; 4];
        for ((dz4, h4), r4) in out
            .chunks_exact_mut(4)
            .zip(column.chunks_exact(4))
            .zip(residual.chunks_exact(4))
        {
            for k in 0..4 {
                head[k] += h4[k] * r4[k];
                dz4[k] = r4[k] * weight * (1.0 - h4[k] * h4[k]);
                bias[k] += dz4[k];
            }
        }
        (
            (head[0] + head[1]) + (head[2] + head[3]),
            (bias[0] + bias[1]) + (bias[2] + bias[3]),
        )
    }
    assert_eq!(column.len() % 4, 0, "rows per task are a multiple of 4");
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(
            column: &[f64],
            residual: &[f64],
            weight: f64,
            out: &mut [f64],
        ) -> (f64, f64) {
            body(column, residual, weight, out)
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the enabled features (checked just above).
            return unsafe { avx2(column, residual, weight, out) };
        }
    }
    body(column, residual, weight, out)
}

/// The largest relative error of catopt's vectorisable [`tanh`] against libm's on a grid of [-20, 20].
pub fn tanh_worst_relative_error() -> f64 {
    let mut worst: f64 = 0.0;
    for i in -400_000..=400_000 {
        let x = i as f64 * 5e-5;
        let exact = x.tanh();
        let error = (tanh(x) - exact).abs() / exact.abs().max(f64::MIN_POSITIVE);
        worst = worst.max(error);
    }
    worst
}
