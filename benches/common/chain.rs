//! W2 written by hand: a chain of N Rosenbrock boxes as one vectorisable stencil.
//!
//! Box i has ports (x_i, x_{i+1}) and objective `100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`.
//! The composite gradient at an interior coordinate collects box i-1's pull on its second
//! port and box i's on its first:
//! `g_i = 200 (x_i - x_{i-1}^2) - 400 x_i (x_{i+1} - x_i^2) - 2 (1 - x_i)`.
//! One step reads x once and writes the next iterate into a second buffer (then swaps),
//! block by block so that the objective's pass over the block hits the L1 cache.

use super::W2_LR;

/// Coordinates per block (fits in L1 with the next iterate's block).
const BLOCK: usize = 1024;

/// The hand-written W2 solver.
pub struct ChainBaseline {
    /// The iterate, N + 1 coordinates.
    values: Vec<f64>,
    /// The next iterate.
    next: Vec<f64>,
    learning_rate: f64,
}

/// The objective of box (a, b).
#[inline(always)]
fn rosenbrock(a: f64, b: f64) -> f64 {
    let t = b - a * a;
    let u = 1.0 - a;
    100.0 * t * t + u * u
}

/// The objective summed over boxes `first..last` with four independent accumulators
/// (so that the additions pipeline).
#[inline(always)]
fn chain_objective(values: &[f64], first: usize, last: usize) -> f64 {
    let a = &values[first..last];
    let b = &values[first + 1..last + 1];
    let mut lanes = [0.0f64; 4];
    let mut a_chunks = a.chunks_exact(4);
    let mut b_chunks = b.chunks_exact(4);
    for (a4, b4) in a_chunks.by_ref().zip(b_chunks.by_ref()) {
        for k in 0..4 {
            lanes[k] += rosenbrock(a4[k], b4[k]);
        }
    }
    let mut tail = 0.0;
    for (&a, &b) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += rosenbrock(a, b);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

impl ChainBaseline {
    /// A chain of `boxes` boxes at x = -1.2 everywhere.
    pub fn new(boxes: usize) -> ChainBaseline {
        assert!(boxes >= 2, "a chain has at least two boxes");
        ChainBaseline {
            values: vec![-1.2; boxes + 1],
            next: vec![0.0; boxes + 1],
            learning_rate: W2_LR,
        }
    }

    /// Back to x = -1.2.
    pub fn restart(&mut self) {
        self.values.fill(-1.2);
    }

    /// The current iterate.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The objective at the current iterate.
    pub fn objective(&self) -> f64 {
        chain_objective(&self.values, 0, self.values.len() - 1)
    }

    /// One gradient-descent step; returns the objective before the update. Allocates
    /// nothing.
    pub fn step(&mut self) -> f64 {
        let objective =
            step_with_best_instructions(&self.values, &mut self.next, self.learning_rate);
        std::mem::swap(&mut self.values, &mut self.next);
        objective
    }
}

/// [`stencil_step`] compiled for AVX2 when the CPU has it (runtime check, like catopt's own
/// kernels), else for the baseline target.
fn step_with_best_instructions(x: &[f64], next: &mut [f64], lr: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(x: &[f64], next: &mut [f64], lr: f64) -> f64 {
            stencil_step(x, next, lr)
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the enabled features (checked just above).
            return unsafe { avx2(x, next, lr) };
        }
    }
    stencil_step(x, next, lr)
}

/// Writes the next iterate of gradient descent into `next` and returns the objective at `x`.
#[inline(always)]
fn stencil_step(x: &[f64], next: &mut [f64], lr: f64) -> f64 {
    let boxes = x.len() - 1;
    // The two ends: coordinate 0 is only box 0's first port, coordinate N only box
    // N-1's second port.
    let (a, b) = (x[0], x[1]);
    next[0] = a - lr * (-400.0 * a * (b - a * a) - 2.0 * (1.0 - a));
    next[boxes] = x[boxes] - lr * (200.0 * (x[boxes] - x[boxes - 1] * x[boxes - 1]));
    let mut objective = 0.0;
    let mut start = 1;
    while start < boxes {
        let end = (start + BLOCK).min(boxes);
        let left = &x[start - 1..end - 1];
        let middle = &x[start..end];
        let right = &x[start + 1..end + 1];
        for (((out, &l), &m), &r) in next[start..end].iter_mut().zip(left).zip(middle).zip(right) {
            let gradient = 200.0 * (m - l * l) - 400.0 * m * (r - m * m) - 2.0 * (1.0 - m);
            *out = m - lr * gradient;
        }
        // Boxes start-1 .. end-1 (the last block also takes box N-1).
        let last_box = if end == boxes { boxes } else { end - 1 };
        objective += chain_objective(x, start - 1, last_box);
        start = end;
    }
    objective
}
