//! Workload W1 (see bench/README in the shared folder): eight tasks of
//! `mean((tanh(X @ W + b) @ v + c - y)^2)`, built with the expression builder exactly as
//! the lowering would, one compiled objective per task over (W, b, v, c).
#![allow(dead_code)]

use catopt::numerics::{BinaryOp, CompiledObjective, ExprBuilder, Reduction, Shape, UnaryOp};
use std::path::{Path, PathBuf};

/// Rows of the data matrices, inputs per row, hidden units, tasks.
pub const SAMPLES: usize = 512;
pub const FEATURES: usize = 64;
pub const HIDDEN: usize = 32;
pub const TASKS: usize = 8;
/// The length of one task box's decision vector: W (64 x 32), b (32), v (32), c.
pub const NUM_INPUTS: usize = FEATURES * HIDDEN + HIDDEN + HIDDEN + 1;
/// Offsets of W, b, v and c in a task's decision vector.
pub const OFFSET_W: usize = 0;
pub const OFFSET_B: usize = FEATURES * HIDDEN;
pub const OFFSET_V: usize = OFFSET_B + HIDDEN;
pub const OFFSET_C: usize = OFFSET_V + HIDDEN;

/// The JAX reference's initial objective (float64).
pub const REFERENCE_INITIAL_OBJECTIVE: f64 = 24.5684599004;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/data")
}

/// Reads a CSV of numbers, row-major.
pub fn read_csv(name: &str) -> Vec<f64> {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .unwrap_or_else(|e| panic!("{name}: {s:?}: {e}"))
        })
        .collect()
}

/// One task's data: X (512 x 64, row-major) and y (512).
pub struct Task {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

pub fn load_tasks() -> Vec<Task> {
    (0..TASKS)
        .map(|t| {
            let x = read_csv(&format!("task{t}_x.csv"));
            let y = read_csv(&format!("task{t}_y.csv"));
            assert_eq!(x.len(), SAMPLES * FEATURES);
            assert_eq!(y.len(), SAMPLES);
            Task { x, y }
        })
        .collect()
}

/// Builds `mean((tanh(X @ W + b) @ v + c - y)^2)` as the lowering would.
pub fn build_task(task: &Task) -> CompiledObjective {
    let mut b = ExprBuilder::new(NUM_INPUTS);
    let w = b.input(OFFSET_W, Shape::Matrix(FEATURES, HIDDEN));
    let bias = b.input(OFFSET_B, Shape::Vector(HIDDEN));
    let x = b.constant(Shape::Matrix(SAMPLES, FEATURES), &task.x);
    let y = b.constant(Shape::Vector(SAMPLES), &task.y);
    let v = b.input(OFFSET_V, Shape::Vector(HIDDEN));
    let c = b.input(OFFSET_C, Shape::Scalar);
    let xw = b.binary(BinaryOp::MatMul, x, w).unwrap();
    let z = b.binary(BinaryOp::Add, xw, bias).unwrap();
    let h = b.unary(UnaryOp::Tanh, z);
    let hv = b.binary(BinaryOp::MatMul, h, v).unwrap();
    let pred = b.binary(BinaryOp::Add, hv, c).unwrap();
    let residual = b.binary(BinaryOp::Sub, pred, y).unwrap();
    let two = b.scalar(2.0);
    let squared = b.binary(BinaryOp::Pow, residual, two).unwrap();
    let loss = b.reduce(Reduction::Mean, squared);
    b.compile(loss).unwrap()
}

/// The initial decision vector of a task: W from w0.csv, b = 0, v = 0.1, c = 0.
pub fn initial_point() -> Vec<f64> {
    let w0 = read_csv("w0.csv");
    assert_eq!(w0.len(), FEATURES * HIDDEN);
    let mut x = vec![0.0; NUM_INPUTS];
    x[OFFSET_W..OFFSET_B].copy_from_slice(&w0);
    x[OFFSET_V..OFFSET_C].fill(0.1);
    x
}
