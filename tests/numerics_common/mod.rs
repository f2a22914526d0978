//! Helpers shared by the numerics test binaries: central finite differences and a small
//! interpreter that builds random expression DAGs from a list of instructions.
#![allow(dead_code)]

pub mod baselines;
pub mod w1;

use catopt::numerics::{
    BinaryOp, CompiledObjective, ExprBuilder, NodeId, Reduction, Shape, UnaryOp,
};

/// Central finite differences with step `h * max(1, |x_i|)`.
pub fn finite_difference(objective: &CompiledObjective, x: &[f64], h: f64) -> Vec<f64> {
    let mut ws = objective.workspace();
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            let step = h * x[i].abs().max(1.0);
            probe[i] = x[i] + step;
            let up = objective.value(&mut ws, &probe);
            probe[i] = x[i] - step;
            let down = objective.value(&mut ws, &probe);
            probe[i] = x[i];
            (up - down) / (2.0 * step)
        })
        .collect()
}

/// The reverse-mode gradient at `x`, computed in a workspace that was first used at
/// another point (so stale buffers from an earlier call would show).
pub fn gradient(objective: &CompiledObjective, x: &[f64]) -> (f64, Vec<f64>) {
    let mut ws = objective.workspace();
    let mut g = vec![0.0; x.len()];
    let elsewhere: Vec<f64> = x.iter().map(|v| 0.5 * v + 0.1).collect();
    objective.value_and_gradient(&mut ws, &elsewhere, &mut g);
    let value = objective.value_and_gradient(&mut ws, x, &mut g);
    (value, g)
}

/// Checks `|g_i - fd_i| <= rtol * max(1, max_j |fd_j|)` for every i: relative to the
/// gradient's scale, absolute below 1. Returns a description of the first violation.
pub fn check_gradient(objective: &CompiledObjective, x: &[f64], rtol: f64) -> Result<(), String> {
    let (_, g) = gradient(objective, x);
    let fd = finite_difference(objective, x, 1e-6);
    let scale = fd.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for i in 0..x.len() {
        let err = (g[i] - fd[i]).abs();
        if err.is_nan() || err > rtol * scale {
            return Err(format!(
                "component {i}: reverse mode {} vs finite differences {} (error {err:e}, allowed {:e})",
                g[i],
                fd[i],
                rtol * scale
            ));
        }
    }
    Ok(())
}

/// A small deterministic generator (xorshift) for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// One instruction of a random expression program; operands index the nodes built so far
/// (modulo their number).
#[derive(Clone, Debug)]
pub enum Instr {
    Unary(usize, usize),
    Binary(usize, usize, usize),
    Reduce(usize, usize),
    Dot(usize, usize),
    Constant(usize, f64),
    Index(usize, usize),
}

/// Smooth unary operations (no kinks, so finite differences are reliable anywhere).
pub const SMOOTH_UNARY: [UnaryOp; 9] = [
    UnaryOp::Neg,
    UnaryOp::Transpose,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Softplus,
    UnaryOp::Sin,
];

const REDUCTIONS: [Reduction; 4] = [
    Reduction::Sum,
    Reduction::Mean,
    Reduction::SumSq,
    Reduction::LogSumExp,
];

/// Builds the program over `leaves` and returns a scalar that depends on every node built
/// (each node enters the output through a weighted sum, so subexpressions are shared).
///
/// Domain safety: `log`, `sqrt`, `/` and `^` are applied to `softplus(a) + 0.5`, which is
/// positive; `exp` to `tanh(a)` so values stay bounded.
pub fn build_program(b: &mut ExprBuilder, leaves: &[NodeId], program: &[Instr]) -> NodeId {
    let mut nodes: Vec<NodeId> = leaves.to_vec();
    let positive = |b: &mut ExprBuilder, a: NodeId| {
        let sp = b.unary(UnaryOp::Softplus, a);
        let half = b.scalar(0.5);
        b.binary(BinaryOp::Add, sp, half).unwrap()
    };
    for instr in program {
        let pick = |i: usize| nodes[i % nodes.len()];
        let new = match *instr {
            Instr::Unary(op, a) => {
                let op = SMOOTH_UNARY[op % SMOOTH_UNARY.len()];
                let a = pick(a);
                let a = match op {
                    UnaryOp::Log | UnaryOp::Sqrt => positive(b, a),
                    UnaryOp::Exp => b.unary(UnaryOp::Tanh, a),
                    _ => a,
                };
                b.unary(op, a)
            }
            Instr::Binary(op, a, c) => {
                let op = BinaryOp::ALL[op % BinaryOp::ALL.len()];
                let (a, c) = (pick(a), pick(c));
                let (a, c) = match op {
                    BinaryOp::Div => (a, positive(b, c)),
                    BinaryOp::Pow => {
                        let base = positive(b, a);
                        let exponent = b.unary(UnaryOp::Tanh, c);
                        (base, exponent)
                    }
                    _ => (a, c),
                };
                match b.binary(op, a, c) {
                    Ok(node) => node,
                    Err(_) => {
                        // Shapes do not fit: combine a with a reduction of c instead.
                        let reduced = b.reduce(Reduction::Mean, c);
                        let op = if op == BinaryOp::MatMul {
                            BinaryOp::Mul
                        } else {
                            op
                        };
                        b.binary(op, a, reduced).unwrap()
                    }
                }
            }
            Instr::Reduce(op, a) => b.reduce(REDUCTIONS[op % REDUCTIONS.len()], pick(a)),
            Instr::Dot(a, c) => {
                let (a, c) = (pick(a), pick(c));
                match b.dot(a, c) {
                    Ok(node) => node,
                    Err(_) => b.dot(a, a).unwrap(),
                }
            }
            Instr::Constant(shape, value) => {
                let shape = [Shape::Scalar, Shape::Vector(3), Shape::Matrix(2, 3)][shape % 3];
                let values: Vec<f64> = (0..shape.len()).map(|i| value + 0.1 * i as f64).collect();
                b.constant(shape, &values)
            }
            Instr::Index(a, i) => {
                let a = pick(a);
                match b.shape(a) {
                    Shape::Scalar => a,
                    Shape::Vector(n) => b.index(a, &[i % n]).unwrap(),
                    Shape::Matrix(r, c) => b.index(a, &[i % r, (i / r) % c]).unwrap(),
                }
            }
        };
        nodes.push(new);
    }
    // Output: sum over nodes of weight_k * mean(node_k), with weights 1, -0.5, 0.25, ...
    let mut total: Option<NodeId> = None;
    for (k, &node) in nodes.iter().enumerate() {
        let mean = b.reduce(Reduction::Mean, node);
        let weight = b.scalar(if k % 2 == 0 { 1.0 } else { -0.5 } / (1 + k % 3) as f64);
        let term = b.binary(BinaryOp::Mul, weight, mean).unwrap();
        total = Some(match total {
            None => term,
            Some(t) => b.binary(BinaryOp::Add, t, term).unwrap(),
        });
    }
    total.expect("at least one leaf")
}
