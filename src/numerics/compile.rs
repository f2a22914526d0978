//! Compilation of an expression DAG into a plan of steps over preallocated buffers, and its
//! forward (value) and reverse (vector-Jacobian product) evaluation.
//!
//! Compilation:
//! 1. keeps only the nodes the output depends on;
//! 2. folds every data-only subexpression into a constant (evaluated once, here);
//! 3. lowers the remaining (active) nodes to steps; inputs and constants are read in
//!    place (no step, no buffer), and the transpose of a vector or scalar is free;
//!    constant exponents are specialised (`x^2` becomes `x * x`, integer `x^n` uses `powi`);
//! 4. fuses a matrix product with the bias added to it (`X @ W + b` is one step), then
//!    compacts the buffer layout;
//! 5. decides, for every operand, whether its adjoint (or gradient entry) is written (the
//!    first contribution in reverse order) or accumulated, so no adjoint buffer is zeroed.
//!
//! Gradients are bit-for-bit deterministic: every sum runs in a fixed order. The matrix
//! product uses fused multiply-adds when the CPU has AVX2 and FMA, so results can differ
//! in the last bits between machines with and without FMA (never between runs).

use super::builder::{BinaryOp, ExprBuilder, Node, NodeId, Reduction, ShapeError, UnaryOp};
use super::kernels::{self, Arith, Broadcast, Elementwise, MatRef, Reduce, Side, Src};
use crate::shape::Shape;
use std::sync::Arc;

/// Where the value of a node lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// A region of the workspace's value (and adjoint) buffer, at this offset.
    Slot(usize),
    /// A region of the plan's constant pool, at this offset.
    Const(usize),
    /// A region of the decision vector `x` (and of the gradient), at this offset.
    Input(usize),
    /// A region of the box's own data vector (its per-box data and what is folded from
    /// it), at this offset: constant, no gradient.
    Data(usize),
}

/// One operand of a step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand {
    pub(crate) loc: Loc,
    pub(crate) shape: Shape,
    /// For a `Slot` or `Input` operand: add to its adjoint (true) or overwrite it (false,
    /// the first contribution in reverse order).
    pub(crate) accumulate: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum StepKind {
    Unary {
        op: Elementwise,
        arg: Operand,
    },
    Transpose {
        arg: Operand,
        rows: usize,
        cols: usize,
    },
    Binary {
        op: Arith,
        lhs: Operand,
        rhs: Operand,
        lhs_mode: Broadcast,
        rhs_mode: Broadcast,
        rows: usize,
        cols: usize,
    },
    MatMul {
        lhs: Operand,
        rhs: Operand,
        m: usize,
        k: usize,
        n: usize,
    },
    /// `lhs @ rhs + bias` (the bias broadcast): a product fused with the addition that
    /// is its only consumer, so the product needs no buffer or pass of its own.
    MatMulBias {
        lhs: Operand,
        rhs: Operand,
        bias: Operand,
        bias_mode: Broadcast,
        m: usize,
        k: usize,
        n: usize,
    },
    Reduce {
        op: Reduce,
        arg: Operand,
    },
    /// One reduction per row of `arg` (`rows x cols`).
    RowReduce {
        op: Reduce,
        arg: Operand,
        cols: usize,
    },
    /// Row-wise softmax of `arg` (`rows x cols`).
    Softmax {
        arg: Operand,
        cols: usize,
    },
    Dot {
        lhs: Operand,
        rhs: Operand,
    },
    Gather {
        items: Vec<Operand>,
    },
    Index {
        arg: Operand,
        flat: usize,
    },
}

/// One operation of the plan, writing `len` values at `out` in the slot buffer.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) out: usize,
    pub(crate) len: usize,
    pub(crate) kind: StepKind,
}

impl Step {
    fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match &mut self.kind {
            StepKind::Unary { arg, .. }
            | StepKind::Transpose { arg, .. }
            | StepKind::Reduce { arg, .. }
            | StepKind::RowReduce { arg, .. }
            | StepKind::Softmax { arg, .. }
            | StepKind::Index { arg, .. } => vec![arg],
            StepKind::Binary { lhs, rhs, .. }
            | StepKind::MatMul { lhs, rhs, .. }
            | StepKind::Dot { lhs, rhs } => vec![lhs, rhs],
            StepKind::MatMulBias { lhs, rhs, bias, .. } => vec![lhs, rhs, bias],
            StepKind::Gather { items } => items.iter_mut().collect(),
        }
    }

    pub(crate) fn operands(&self) -> Vec<&Operand> {
        match &self.kind {
            StepKind::Unary { arg, .. }
            | StepKind::Transpose { arg, .. }
            | StepKind::Reduce { arg, .. }
            | StepKind::RowReduce { arg, .. }
            | StepKind::Softmax { arg, .. }
            | StepKind::Index { arg, .. } => vec![arg],
            StepKind::Binary { lhs, rhs, .. }
            | StepKind::MatMul { lhs, rhs, .. }
            | StepKind::Dot { lhs, rhs } => vec![lhs, rhs],
            StepKind::MatMulBias { lhs, rhs, bias, .. } => vec![lhs, rhs, bias],
            StepKind::Gather { items } => items.iter().collect(),
        }
    }
}

/// The immutable compiled plan.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) num_inputs: usize,
    pub(crate) num_nodes: usize,
    pub(crate) consts: Vec<f64>,
    pub(crate) steps: Vec<Step>,
    pub(crate) slot_len: usize,
    pub(crate) scratch_len: usize,
    /// The gradient entries no step writes: zeroed before each reverse pass.
    pub(crate) zero_ranges: Vec<std::ops::Range<usize>>,
    pub(crate) output: Loc,
    pub(crate) batchable: bool,
    /// Length of a box's raw data vector (its [`ExprBuilder::data_input`]s).
    pub(crate) raw_data_len: usize,
    /// Length of a box's data vector: the raw data, then the values folded from it.
    pub(crate) data_len: usize,
    /// The folding of data-only subexpressions that read per-box data, run once per box
    /// over its data vector (raw data first; `Loc::Slot` here addresses that vector).
    pub(crate) data_steps: Vec<Step>,
    /// Whether per-box data is the exponent of a power (`x ^ d`), which a constant
    /// exponent would have specialised (`x * x`, `powi`): the bits differ from a
    /// compilation with `d` constant.
    pub(crate) data_exponent: bool,
    /// Batched kernel only: for each slot, the slot whose adjoint buffer holds its adjoint.
    /// A slot whose only contribution is its consumer's adjoint unchanged (an operand of an
    /// addition, the left operand of a subtraction) shares its consumer's buffer, so the
    /// copy is never made (`adjoint_home[slot] != slot`); every other slot owns its buffer.
    pub(crate) adjoint_home: Vec<usize>,
    /// Batched kernel only: which tile buffer holds each slot's values and each slot's
    /// adjoint (the slots that own one), shared between slots whose lifetimes do not
    /// overlap so that a tile's buffers stay few and in cache.
    pub(crate) batch_buffers: BatchBuffers,
}

/// The tile buffers of the batched kernel ([`batch_buffers`]).
#[derive(Debug, Default)]
pub(crate) struct BatchBuffers {
    /// Slot -> index of the value buffer that holds it.
    pub(crate) value: Vec<usize>,
    /// Slot -> index of the adjoint buffer that holds its adjoint (meaningful for the
    /// slots that own their adjoint, `adjoint_home[slot] == slot`).
    pub(crate) adjoint: Vec<usize>,
    /// Number of value buffers.
    pub(crate) values: usize,
    /// Number of adjoint buffers.
    pub(crate) adjoints: usize,
}

/// A compiled open objective: its value and gradient as a function of the box's decision
/// vector. Immutable, `Send + Sync` and cheap to clone (the plan is shared); the mutable
/// buffers live in a [`Workspace`] (one per thread).
#[derive(Clone, Debug)]
pub struct CompiledObjective {
    pub(crate) plan: Arc<Plan>,
    /// The plan's batched kernels as machine code, when asked for and supported
    /// ([`with_kernels`](Self::with_kernels)); the interpreter otherwise.
    pub(crate) native: Option<Arc<super::native::NativeKernel>>,
}

/// The preallocated buffers for evaluating one [`CompiledObjective`] (values and adjoints
/// of every intermediate node).
#[derive(Clone, Debug)]
pub struct Workspace {
    pub(crate) values: Vec<f64>,
    pub(crate) adjoints: Vec<f64>,
    /// Room to pack a transposed operand of a matrix product.
    pub(crate) scratch: Vec<f64>,
}

fn rows_cols(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Scalar => (1, 1),
        Shape::Vector(n) => (1, n),
        Shape::Matrix(rows, cols) => (rows, cols),
    }
}

fn broadcast_mode(operand: Shape, out: Shape) -> Broadcast {
    if operand == out {
        Broadcast::Full
    } else if operand.is_scalar() {
        Broadcast::Scalar
    } else {
        Broadcast::Row
    }
}

fn elementwise_of(op: UnaryOp) -> Elementwise {
    match op {
        UnaryOp::Neg => Elementwise::Neg,
        UnaryOp::Exp => Elementwise::Exp,
        UnaryOp::Log => Elementwise::Log,
        UnaryOp::Sqrt => Elementwise::Sqrt,
        UnaryOp::Abs => Elementwise::Abs,
        UnaryOp::Tanh => Elementwise::Tanh,
        UnaryOp::Sigmoid => Elementwise::Sigmoid,
        UnaryOp::Relu => Elementwise::Relu,
        UnaryOp::Softplus => Elementwise::Softplus,
        UnaryOp::Sin => Elementwise::Sin,
        UnaryOp::Cos => Elementwise::Cos,
        UnaryOp::Transpose => unreachable!("transpose is not elementwise"),
    }
}

fn reduce_of(op: Reduction) -> Reduce {
    match op {
        Reduction::Sum => Reduce::Sum,
        Reduction::Mean => Reduce::Mean,
        Reduction::SumSq => Reduce::SumSq,
        Reduction::LogSumExp => Reduce::LogSumExp,
    }
}

/// The specialisation of `x ^ c` for a constant exponent `c`.
fn power_of(c: f64) -> Elementwise {
    if c == 2.0 {
        Elementwise::Square
    } else if c.fract() == 0.0 && c.abs() <= f64::from(i32::MAX) {
        Elementwise::Powi(c as i32)
    } else {
        Elementwise::Powf(c)
    }
}

/// What a node reads, in increasing order of dependence: constants only, per-box data
/// (and constants), or the decision vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Const,
    Data,
    Active,
}

/// The result of lowering one node.
enum Lowered {
    /// The node needs no step: its value already lives at this location.
    Alias(Loc),
    /// The step that computes the node.
    Compute(Step),
}

/// Lowers one node whose operands already have locations.
fn lower(
    node: &Node,
    shape: Shape,
    shapes: &[Shape],
    locs: &[Option<Loc>],
    consts: &[f64],
    out: usize,
) -> Lowered {
    let operand = |id: NodeId| Operand {
        loc: locs[id.0].expect("operands are lowered before their parents"),
        shape: shapes[id.0],
        accumulate: true,
    };
    let step = |kind| Step {
        out,
        len: shape.len(),
        kind,
    };
    match node {
        Node::Input { offset } => Lowered::Alias(Loc::Input(*offset)),
        Node::Constant { .. } => unreachable!("constants are placed in the pool"),
        Node::DataInput { .. } => unreachable!("per-box data is placed in the data vector"),
        Node::Unary { op, arg } => {
            let arg = operand(*arg);
            match (op, arg.shape) {
                (UnaryOp::Transpose, Shape::Matrix(rows, cols)) => {
                    Lowered::Compute(step(StepKind::Transpose { arg, rows, cols }))
                }
                (UnaryOp::Transpose, _) => Lowered::Alias(arg.loc),
                (op, _) => Lowered::Compute(step(StepKind::Unary {
                    op: elementwise_of(*op),
                    arg,
                })),
            }
        }
        Node::Binary {
            op,
            operands: [lhs, rhs],
        } => {
            let (lhs, rhs) = (operand(*lhs), operand(*rhs));
            let arith = match op {
                BinaryOp::MatMul => {
                    let (m, k) = rows_cols(lhs.shape);
                    let (k2, n) = match rhs.shape {
                        Shape::Vector(len) => (len, 1),
                        other => rows_cols(other),
                    };
                    debug_assert_eq!(k, k2);
                    return Lowered::Compute(step(StepKind::MatMul { lhs, rhs, m, k, n }));
                }
                BinaryOp::Add => Arith::Add,
                BinaryOp::Sub => Arith::Sub,
                BinaryOp::Mul => Arith::Mul,
                BinaryOp::Div => Arith::Div,
                BinaryOp::Pow => Arith::Pow,
                BinaryOp::Max => Arith::Max,
                BinaryOp::Min => Arith::Min,
            };
            if let (Arith::Pow, Loc::Const(c), Shape::Scalar) = (arith, rhs.loc, rhs.shape) {
                return Lowered::Compute(step(StepKind::Unary {
                    op: power_of(consts[c]),
                    arg: lhs,
                }));
            }
            let (rows, cols) = rows_cols(shape);
            Lowered::Compute(step(StepKind::Binary {
                op: arith,
                lhs,
                rhs,
                lhs_mode: broadcast_mode(lhs.shape, shape),
                rhs_mode: broadcast_mode(rhs.shape, shape),
                rows,
                cols,
            }))
        }
        Node::Reduce { op, arg } => Lowered::Compute(step(StepKind::Reduce {
            op: reduce_of(*op),
            arg: operand(*arg),
        })),
        Node::RowReduce { op, arg } => {
            let arg = operand(*arg);
            let (_, cols) = rows_cols(arg.shape);
            Lowered::Compute(step(StepKind::RowReduce {
                op: reduce_of(*op),
                arg,
                cols,
            }))
        }
        Node::Softmax { arg } => {
            let arg = operand(*arg);
            let (_, cols) = rows_cols(arg.shape);
            Lowered::Compute(step(StepKind::Softmax { arg, cols }))
        }
        Node::Dot {
            operands: [lhs, rhs],
        } => Lowered::Compute(step(StepKind::Dot {
            lhs: operand(*lhs),
            rhs: operand(*rhs),
        })),
        Node::Gather { items } => Lowered::Compute(step(StepKind::Gather {
            items: items.iter().map(|&id| operand(id)).collect(),
        })),
        Node::Index { arg, flat } => {
            let arg = operand(*arg);
            match arg.loc {
                Loc::Input(offset) => Lowered::Alias(Loc::Input(offset + flat)),
                Loc::Const(offset) => Lowered::Alias(Loc::Const(offset + flat)),
                Loc::Data(offset) => Lowered::Alias(Loc::Data(offset + flat)),
                Loc::Slot(_) => Lowered::Compute(step(StepKind::Index { arg, flat: *flat })),
            }
        }
    }
}

/// The read-only sources of one evaluation: the constant pool, the decision vector and
/// the box's data vector.
#[derive(Clone, Copy)]
struct Sources<'a> {
    consts: &'a [f64],
    x: &'a [f64],
    data: &'a [f64],
}

/// Reads the value at `loc` (up to the end of its buffer; kernels take what they need).
#[inline(always)]
fn read<'a>(loc: Loc, slots: &'a [f64], sources: Sources<'a>) -> &'a [f64] {
    match loc {
        Loc::Slot(offset) => &slots[offset..],
        Loc::Const(offset) => &sources.consts[offset..],
        Loc::Input(offset) => &sources.x[offset..],
        Loc::Data(offset) => &sources.data[offset..],
    }
}

/// Runs the forward computation of one step. `before` holds every slot before `out`.
fn forward_step(step: &Step, before: &[f64], out: &mut [f64], sources: Sources<'_>) {
    let get = |operand: &Operand| read(operand.loc, before, sources);
    match &step.kind {
        StepKind::Unary { op, arg } => kernels::unary_forward(*op, get(arg), out),
        StepKind::Transpose { arg, rows, cols } => {
            let a = get(arg);
            for i in 0..*rows {
                for j in 0..*cols {
                    out[j * rows + i] = a[i * cols + j];
                }
            }
        }
        StepKind::Binary {
            op,
            lhs,
            rhs,
            lhs_mode,
            rhs_mode,
            rows,
            cols,
        } => kernels::broadcast_forward(
            *op,
            (*lhs_mode, Src::Slice(get(lhs))),
            (*rhs_mode, Src::Slice(get(rhs))),
            *rows,
            *cols,
            out,
        ),
        StepKind::MatMul { lhs, rhs, m, k, n } => kernels::matmul(
            MatRef::new(get(lhs), *m, *k),
            MatRef::new(get(rhs), *k, *n),
            out,
            false,
            &mut [],
        ),
        StepKind::MatMulBias {
            lhs,
            rhs,
            bias,
            bias_mode,
            m,
            k,
            n,
        } => {
            kernels::broadcast_fill(*bias_mode, get(bias), *m, *n, out);
            kernels::matmul(
                MatRef::new(get(lhs), *m, *k),
                MatRef::new(get(rhs), *k, *n),
                out,
                true,
                &mut [],
            );
        }
        StepKind::Reduce { op, arg } => out[0] = op.value(&get(arg)[..arg.shape.len()]),
        StepKind::RowReduce { op, arg, cols } => {
            kernels::row_reduce_forward(*op, &get(arg)[..arg.shape.len()], *cols, out)
        }
        StepKind::Softmax { arg, cols } => {
            kernels::softmax_forward(&get(arg)[..arg.shape.len()], *cols, out)
        }
        StepKind::Dot { lhs, rhs } => {
            out[0] = kernels::dot(&get(lhs)[..lhs.shape.len()], get(rhs));
        }
        StepKind::Gather { items } => {
            for (o, item) in out.iter_mut().zip(items) {
                *o = get(item)[0];
            }
        }
        StepKind::Index { arg, flat } => out[0] = get(arg)[*flat],
    }
}

/// The adjoint buffer of one operand: `None` for constants.
fn sink<'a>(
    operand: &Operand,
    adjoint_before: &'a mut [f64],
    gradient: &'a mut [f64],
) -> Option<(&'a mut [f64], bool)> {
    let len = operand.shape.len();
    match operand.loc {
        Loc::Slot(offset) => Some((
            &mut adjoint_before[offset..offset + len],
            operand.accumulate,
        )),
        Loc::Input(offset) => Some((&mut gradient[offset..offset + len], operand.accumulate)),
        Loc::Const(_) | Loc::Data(_) => None,
    }
}

/// Runs the reverse (vector-Jacobian product) of one step: `g` is the step's adjoint,
/// `value` its output, `adjoint_before` the adjoints of all earlier slots.
#[allow(clippy::too_many_arguments)]
fn backward_step(
    step: &Step,
    slots: &[f64],
    value: &[f64],
    g: &[f64],
    adjoint_before: &mut [f64],
    gradient: &mut [f64],
    sources: Sources<'_>,
    scratch: &mut [f64],
) {
    let get = |operand: &Operand| read(operand.loc, slots, sources);
    match &step.kind {
        StepKind::Unary { op, arg } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                kernels::unary_backward(*op, get(arg), value, g, adj, acc);
            }
        }
        StepKind::Transpose { arg, rows, cols } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                for i in 0..*rows {
                    for j in 0..*cols {
                        let contribution = g[j * rows + i];
                        if acc {
                            adj[i * cols + j] += contribution;
                        } else {
                            adj[i * cols + j] = contribution;
                        }
                    }
                }
            }
        }
        StepKind::Binary {
            op,
            lhs,
            rhs,
            lhs_mode,
            rhs_mode,
            rows,
            cols,
        } => {
            let a = (*lhs_mode, Src::Slice(get(lhs)));
            let b = (*rhs_mode, Src::Slice(get(rhs)));
            for (side, operand) in [(Side::Lhs, lhs), (Side::Rhs, rhs)] {
                if let Some((adj, acc)) = sink(operand, adjoint_before, gradient) {
                    kernels::broadcast_backward(*op, side, a, b, *rows, *cols, value, g, adj, acc);
                }
            }
        }
        StepKind::MatMul { lhs, rhs, m, k, n } => {
            let grad = MatRef::new(g, *m, *n);
            if let Some((adj, acc)) = sink(lhs, adjoint_before, gradient) {
                // dA = G B^T
                kernels::matmul(grad, MatRef::new(get(rhs), *k, *n).t(), adj, acc, scratch);
            }
            if let Some((adj, acc)) = sink(rhs, adjoint_before, gradient) {
                // dB = A^T G
                kernels::matmul(MatRef::new(get(lhs), *m, *k).t(), grad, adj, acc, scratch);
            }
        }
        StepKind::MatMulBias {
            lhs,
            rhs,
            bias,
            bias_mode,
            m,
            k,
            n,
        } => {
            let grad = MatRef::new(g, *m, *n);
            if let Some((adj, acc)) = sink(lhs, adjoint_before, gradient) {
                kernels::matmul(grad, MatRef::new(get(rhs), *k, *n).t(), adj, acc, scratch);
            }
            if let Some((adj, acc)) = sink(rhs, adjoint_before, gradient) {
                kernels::matmul(MatRef::new(get(lhs), *m, *k).t(), grad, adj, acc, scratch);
            }
            if let Some((adj, acc)) = sink(bias, adjoint_before, gradient) {
                kernels::broadcast_sum(*bias_mode, g, *m, *n, adj, acc);
            }
        }
        StepKind::Reduce { op, arg } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                op.backward(get(arg), value[0], g[0], adj, acc);
            }
        }
        StepKind::RowReduce { op, arg, cols } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                kernels::row_reduce_backward(*op, get(arg), *cols, value, g, adj, acc);
            }
        }
        StepKind::Softmax { arg, cols } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                kernels::softmax_backward(value, *cols, g, adj, acc);
            }
        }
        StepKind::Dot { lhs, rhs } => {
            let len = lhs.shape.len();
            for (operand, other) in [(lhs, rhs), (rhs, lhs)] {
                if let Some((adj, acc)) = sink(operand, adjoint_before, gradient) {
                    let other = &get(other)[..len];
                    let g = g[0];
                    if acc {
                        for (o, &v) in adj.iter_mut().zip(other) {
                            *o += g * v;
                        }
                    } else {
                        for (o, &v) in adj.iter_mut().zip(other) {
                            *o = g * v;
                        }
                    }
                }
            }
        }
        StepKind::Gather { items } => {
            for (item, &gi) in items.iter().zip(g) {
                if let Some((adj, acc)) = sink(item, adjoint_before, gradient) {
                    if acc {
                        adj[0] += gi;
                    } else {
                        adj[0] = gi;
                    }
                }
            }
        }
        StepKind::Index { arg, flat } => {
            if let Some((adj, acc)) = sink(arg, adjoint_before, gradient) {
                if !acc {
                    adj.fill(0.0);
                }
                adj[*flat] += g[0];
            }
        }
    }
}

/// Runs `steps` forward over `slots` (len at least every step's end).
fn run_forward(steps: &[Step], slots: &mut [f64], sources: Sources<'_>) {
    for step in steps {
        let (before, rest) = slots.split_at_mut(step.out);
        forward_step(step, before, &mut rest[..step.len], sources);
    }
}

/// The operation a node performs, as written in the language (for error messages).
fn node_name(node: &Node) -> &'static str {
    match node {
        Node::Input { .. } => "input",
        Node::Constant { .. } => "constant",
        Node::DataInput { .. } => "data",
        Node::Unary { op, .. } => op.name(),
        Node::Binary { op, .. } => op.name(),
        Node::Reduce { op, .. } | Node::RowReduce { op, .. } => op.name(),
        Node::Softmax { .. } => "softmax",
        Node::Dot { .. } => "dot",
        Node::Gather { .. } => "[...]",
        Node::Index { .. } => "index",
    }
}

/// Replaces `Add(MatMul(a, b), bias)` (either order) by one `MatMulBias` step when the
/// product's value is read by nothing else; the product's step is removed (its slot
/// region stays unused).
fn fuse_bias_additions(steps: &mut Vec<Step>, output: Option<Loc>) {
    if !steps
        .iter()
        .any(|step| matches!(step.kind, StepKind::MatMul { .. }))
    {
        return;
    }
    let mut uses: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for step in steps.iter() {
        for operand in step.operands() {
            if let Loc::Slot(offset) = operand.loc {
                *uses.entry(offset).or_default() += 1;
            }
        }
    }
    if let Some(Loc::Slot(offset)) = output {
        *uses.entry(offset).or_default() += 1;
    }
    let producer: std::collections::HashMap<usize, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| (step.out, i))
        .collect();
    let mut removed = vec![false; steps.len()];
    for index in 0..steps.len() {
        let StepKind::Binary {
            op: Arith::Add,
            lhs,
            rhs,
            lhs_mode,
            rhs_mode,
            ..
        } = steps[index].kind
        else {
            continue;
        };
        let candidates = [
            (lhs, lhs_mode, rhs, rhs_mode),
            (rhs, rhs_mode, lhs, lhs_mode),
        ];
        for (product, product_mode, bias, bias_mode) in candidates {
            let Loc::Slot(offset) = product.loc else {
                continue;
            };
            if product_mode != Broadcast::Full || uses.get(&offset) != Some(&1) {
                continue;
            }
            let Some(&source) = producer.get(&offset) else {
                continue;
            };
            if let StepKind::MatMul {
                lhs: a,
                rhs: b,
                m,
                k,
                n,
            } = steps[source].kind
            {
                steps[index].kind = StepKind::MatMulBias {
                    lhs: a,
                    rhs: b,
                    bias,
                    bias_mode,
                    m,
                    k,
                    n,
                };
                removed[source] = true;
                break;
            }
        }
    }
    let mut index = 0;
    steps.retain(|_| {
        let keep = !removed[index];
        index += 1;
        keep
    });
}

/// The adjoint buffer of every slot of a batchable plan (all steps scalar): a slot read
/// once, as an operand whose contribution is the consumer's adjoint itself (either side of
/// `+`, the left side of `-`), shares its consumer's buffer; the others own theirs. A shared
/// buffer is never written after its owner's consumers have filled it, so every reader
/// sees exactly the values the copy would have held.
fn adjoint_homes(steps: &[Step], slot_len: usize) -> Vec<usize> {
    let mut uses = vec![0usize; slot_len];
    for step in steps {
        for operand in step.operands() {
            if let Loc::Slot(slot) = operand.loc {
                uses[slot] += 1;
            }
        }
    }
    let mut home: Vec<usize> = (0..slot_len).collect();
    // Consumers come after their operands: in reverse order, a step's own home is known
    // before its operands are given theirs.
    for step in steps.iter().rev() {
        let StepKind::Binary { op, lhs, rhs, .. } = &step.kind else {
            continue;
        };
        let identity_sides: &[&Operand] = match op {
            Arith::Add => &[lhs, rhs],
            Arith::Sub => &[lhs],
            _ => &[],
        };
        for operand in identity_sides {
            if let Loc::Slot(slot) = operand.loc {
                if uses[slot] == 1 {
                    home[slot] = home[step.out];
                }
            }
        }
    }
    home
}

/// Whether the reverse step of `step` reads the step's own value (its output): everything
/// but the operations whose derivative ignores it.
fn backward_reads_output(step: &Step) -> bool {
    !matches!(
        step.kind,
        StepKind::Binary {
            op: Arith::Add | Arith::Sub | Arith::Mul,
            ..
        } | StepKind::Dot { .. }
            | StepKind::Unary {
                op: Elementwise::Neg | Elementwise::Square | Elementwise::Powi(_),
                ..
            }
    )
}

/// Whether the reverse step of `step` reads the value of its operand `side` (0: lhs or
/// the only operand, 1: rhs): not for `+` and `-`, whose derivatives are constants, nor
/// for one side of `*` when the other side is a constant (its contribution, the only one
/// that would read this side, is not computed).
fn backward_reads_operand(step: &Step, side: usize) -> bool {
    match &step.kind {
        StepKind::Binary {
            op: Arith::Add | Arith::Sub,
            ..
        } => false,
        StepKind::Binary {
            op: Arith::Mul,
            lhs,
            rhs,
            ..
        }
        | StepKind::Dot { lhs, rhs } => {
            let other = if side == 0 { rhs } else { lhs };
            !matches!(other.loc, Loc::Const(_) | Loc::Data(_))
        }
        _ => true,
    }
}

/// Assigns the batched kernel's slots to as few tile buffers as their lifetimes allow
/// (a batchable plan: one slot per step, slot `k` written by step `k`). Positions run
/// through the forward steps, then the reverse steps in reverse order. A value lives
/// from its step to its last reader, forward or reverse; an adjoint from its first
/// contribution (its last consumer's reverse step) to its own reverse step; the output's
/// adjoint, seeded once, lives forever. A buffer is reused only by a slot written after
/// the buffer's last read, never by the step that reads it, so no step reads and writes
/// the same buffer. Every adjoint's first contribution overwrites it, so a reused buffer
/// needs no clearing.
fn batch_buffers(steps: &[Step], output: Option<Loc>, home: &[usize]) -> BatchBuffers {
    let m = steps.len();
    debug_assert!(steps.iter().enumerate().all(|(k, step)| step.out == k));
    let reverse = |k: usize| 2 * m - 1 - k; // position of step k's reverse step
    let output_slot = match output {
        Some(Loc::Slot(slot)) => Some(slot),
        _ => None,
    };
    let mut value_end: Vec<usize> = (0..m).collect();
    let mut adjoint_start = vec![usize::MAX; m];
    for (k, step) in steps.iter().enumerate() {
        if backward_reads_output(step) {
            value_end[k] = value_end[k].max(reverse(k));
        }
        for (side, operand) in step.operands().into_iter().enumerate() {
            let Loc::Slot(slot) = operand.loc else {
                continue;
            };
            value_end[slot] = value_end[slot].max(k);
            if backward_reads_operand(step, side) {
                value_end[slot] = value_end[slot].max(reverse(k));
            }
            adjoint_start[slot] = adjoint_start[slot].min(reverse(k));
        }
    }
    // Greedy interval assignment: `free_at[b]` is the position after which buffer b is free.
    fn assign(
        intervals: impl Iterator<Item = (usize, usize, usize)>,
        slots: usize,
    ) -> (Vec<usize>, usize) {
        let mut intervals: Vec<(usize, usize, usize)> = intervals.collect();
        intervals.sort_unstable();
        let mut buffer_of = vec![0; slots];
        let mut last_read: Vec<usize> = Vec::new();
        for (start, end, slot) in intervals {
            let free = last_read.iter().position(|&last| last < start);
            let b = free.unwrap_or_else(|| {
                last_read.push(0);
                last_read.len() - 1
            });
            last_read[b] = end;
            buffer_of[slot] = b;
        }
        let count = last_read.len();
        (buffer_of, count)
    }
    // An adjoint is read by its own reverse step, and by those of the slots that share it.
    let mut adjoint_end: Vec<usize> = (0..m).map(reverse).collect();
    for k in 0..m {
        adjoint_end[home[k]] = adjoint_end[home[k]].max(reverse(k));
    }
    // The output's values go straight to the caller's array: no buffer.
    let (value, values) = assign(
        (0..m)
            .filter(|&k| output_slot != Some(k))
            .map(|k| (k, value_end[k], k)),
        m,
    );
    let (adjoint, adjoints) = assign(
        (0..m).filter(|&k| home[k] == k).map(|k| {
            if output_slot == Some(k) {
                (0, usize::MAX, k) // seeded once, read at every evaluation
            } else {
                (adjoint_start[k], adjoint_end[k], k)
            }
        }),
        m,
    );
    BatchBuffers {
        value,
        adjoint,
        values,
        adjoints,
    }
}

pub(crate) fn compile(
    builder: ExprBuilder,
    output: NodeId,
) -> Result<CompiledObjective, ShapeError> {
    if let Some(error) = builder.deferred {
        return Err(error);
    }
    let ExprBuilder {
        num_inputs,
        nodes,
        shapes,
        num_data,
        ..
    } = builder;
    if output.0 >= nodes.len() {
        return Err(ShapeError {
            operation: "compile".into(),
            shapes: vec![],
            reason: "the output node does not belong to this expression".into(),
        });
    }
    if !shapes[output.0].is_scalar() {
        return Err(ShapeError {
            operation: "minimize".into(),
            shapes: vec![shapes[output.0]],
            reason: "an objective must be a scalar".into(),
        });
    }

    // 1. Reachability from the output.
    let mut reachable = vec![false; nodes.len()];
    reachable[output.0] = true;
    for id in (0..=output.0).rev() {
        if reachable[id] {
            for child in nodes[id].children() {
                reachable[child.0] = true;
            }
        }
    }

    // Every value must have entries, and a size that fits in memory.
    for id in 0..nodes.len() {
        if !reachable[id] {
            continue;
        }
        let shape = shapes[id];
        let reason = match shape.checked_len() {
            None => "the value is too large to store",
            Some(0) => {
                "a value with no entries (a zero dimension) cannot take part in an objective"
            }
            Some(_) => continue,
        };
        return Err(ShapeError {
            operation: node_name(&nodes[id]).into(),
            shapes: vec![shape],
            reason: reason.into(),
        });
    }

    // 2. Constant folding: data-only nodes are evaluated now, with the same kernels.
    //    A node is constant (reads constants only), per-box data (reads per-box data and
    //    constants: folded once per box, `data_steps`) or active (reads the inputs).
    let mut class = vec![Class::Const; nodes.len()];
    for id in 0..nodes.len() {
        if reachable[id] {
            class[id] = match &nodes[id] {
                Node::Input { .. } => Class::Active,
                Node::Constant { .. } => Class::Const,
                Node::DataInput { .. } => Class::Data,
                node => node
                    .children()
                    .iter()
                    .map(|c| class[c.0])
                    .max()
                    .unwrap_or(Class::Const),
            };
        }
    }
    // A per-box exponent would lose the specialisation of a constant one (`lower`).
    let data_exponent = (0..nodes.len()).any(|id| {
        reachable[id]
            && matches!(&nodes[id], Node::Binary { op: BinaryOp::Pow, operands: [_, e] }
                if class[e.0] == Class::Data && shapes[e.0].is_scalar())
    });
    let is_const: Vec<bool> = class.iter().map(|&c| c == Class::Const).collect();
    let mut consts: Vec<f64> = Vec::new();
    let mut locs: Vec<Option<Loc>> = vec![None; nodes.len()];
    let mut fold_steps: Vec<Step> = Vec::new();
    let mut fold_len = 0;
    for id in 0..nodes.len() {
        if !reachable[id] || !is_const[id] {
            continue;
        }
        match &nodes[id] {
            Node::Constant { values } => {
                locs[id] = Some(Loc::Const(consts.len()));
                consts.extend_from_slice(values);
            }
            node => match lower(node, shapes[id], &shapes, &locs, &consts, fold_len) {
                Lowered::Alias(loc) => locs[id] = Some(loc),
                Lowered::Compute(step) => {
                    // Folded values are staged in slots, then moved to the pool below.
                    locs[id] = Some(Loc::Slot(fold_len));
                    fold_len += step.len;
                    fold_steps.push(step);
                }
            },
        }
    }
    if !fold_steps.is_empty() {
        let mut staged = vec![0.0; fold_len];
        let sources = Sources {
            consts: &consts,
            x: &[],
            data: &[],
        };
        run_forward(&fold_steps, &mut staged, sources);
        // Move the staged values to the pool; every staged location (steps and their
        // aliases, e.g. the transpose of a folded vector) shifts by the same base.
        let base = consts.len();
        consts.extend_from_slice(&staged);
        for id in 0..nodes.len() {
            if let Some(Loc::Slot(offset)) = locs[id] {
                if reachable[id] && is_const[id] {
                    locs[id] = Some(Loc::Const(base + offset));
                }
            }
        }
    }

    // 2b. The folding of per-box data: steps over a box's data vector (its raw data,
    //     then the folded values), run once per box by `box_data`. They are lowered with
    //     `Loc::Slot` addressing that vector, then the nodes' locations become `Loc::Data`.
    let mut data_steps: Vec<Step> = Vec::new();
    let mut data_len = num_data;
    for id in 0..nodes.len() {
        if !reachable[id] || class[id] != Class::Data {
            continue;
        }
        match &nodes[id] {
            Node::DataInput { offset } => locs[id] = Some(Loc::Slot(*offset)),
            node => match lower(node, shapes[id], &shapes, &locs, &consts, data_len) {
                Lowered::Alias(loc) => locs[id] = Some(loc),
                Lowered::Compute(step) => {
                    locs[id] = Some(Loc::Slot(data_len));
                    data_len += step.len;
                    data_steps.push(step);
                }
            },
        }
    }
    for id in 0..nodes.len() {
        if reachable[id] && class[id] == Class::Data {
            if let Some(Loc::Slot(offset)) = locs[id] {
                locs[id] = Some(Loc::Data(offset));
            }
        }
    }

    // 3. Lowering of the active nodes.
    let mut steps: Vec<Step> = Vec::new();
    let mut slot_len = 0;
    for id in 0..nodes.len() {
        if !reachable[id] || class[id] != Class::Active {
            continue;
        }
        match lower(&nodes[id], shapes[id], &shapes, &locs, &consts, slot_len) {
            Lowered::Alias(loc) => locs[id] = Some(loc),
            Lowered::Compute(step) => {
                locs[id] = Some(Loc::Slot(slot_len));
                slot_len += step.len;
                steps.push(step);
            }
        }
    }

    // 4. Fusion of a product with the addition of a bias, when the addition is the
    //    product's only consumer.
    fuse_bias_additions(&mut steps, locs[output.0]);

    // Compact the slot layout so that steps removed by fusion leave no gap (operands
    // always point at the start of a step's region).
    let mut new_offset = std::collections::HashMap::new();
    slot_len = 0;
    for step in steps.iter_mut() {
        new_offset.insert(step.out, slot_len);
        step.out = slot_len;
        slot_len += step.len;
    }
    let relocate = |loc: Loc| match loc {
        Loc::Slot(offset) => Loc::Slot(new_offset[&offset]),
        other => other,
    };
    for step in steps.iter_mut() {
        for operand in step.operands_mut() {
            operand.loc = relocate(operand.loc);
        }
    }
    locs[output.0] = locs[output.0].map(relocate);

    // 5. Adjoint write/accumulate decisions: the first contribution to a slot's adjoint
    //    in reverse order overwrites it.
    //    The same holds for the gradient's entries (inputs), as long as no two input
    //    operands overlap partially; entries no step writes are zeroed before the
    //    reverse pass.
    let mut written = vec![false; slot_len];
    let mut input_written = vec![false; num_inputs];
    let mut partial_overlap = false;
    for step in steps.iter_mut().rev() {
        for operand in step.operands_mut() {
            match operand.loc {
                Loc::Slot(offset) => {
                    operand.accumulate = written[offset];
                    written[offset] = true;
                }
                Loc::Input(offset) => {
                    let range = &mut input_written[offset..offset + operand.shape.len()];
                    if range.iter().all(|w| !w) {
                        operand.accumulate = false;
                        range.fill(true);
                    } else if range.iter().all(|&w| w) {
                        operand.accumulate = true;
                    } else {
                        partial_overlap = true;
                    }
                }
                Loc::Const(_) | Loc::Data(_) => {}
            }
        }
    }
    let zero_ranges = if partial_overlap {
        // Fall back to zeroing the whole gradient and accumulating every contribution.
        for step in steps.iter_mut() {
            for operand in step.operands_mut() {
                if let Loc::Input(_) = operand.loc {
                    operand.accumulate = true;
                }
            }
        }
        std::iter::once(0..num_inputs).collect()
    } else {
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, _) in input_written.iter().enumerate().filter(|(_, &w)| !w) {
            match ranges.last_mut() {
                Some(last) if last.end == i => last.end = i + 1,
                _ => ranges.push(i..i + 1),
            }
        }
        ranges
    };

    let batchable = steps
        .iter()
        .all(|step| step.len == 1 && step.operands().iter().all(|op| op.shape.is_scalar()))
        && steps.iter().all(|step| {
            matches!(
                step.kind,
                StepKind::Unary { .. }
                    | StepKind::Binary { .. }
                    | StepKind::Reduce { .. }
                    | StepKind::Dot { .. }
            )
        });

    let adjoint_home = if batchable {
        adjoint_homes(&steps, slot_len)
    } else {
        (0..slot_len).collect()
    };

    let batch_buffers = if batchable {
        batch_buffers(&steps, locs[output.0], &adjoint_home)
    } else {
        BatchBuffers::default()
    };

    let scratch_len = steps
        .iter()
        .map(|step| match step.kind {
            StepKind::MatMul { k, n, .. } | StepKind::MatMulBias { k, n, .. } => k * n,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let output_loc = locs[output.0].expect("the output is lowered");
    Ok(CompiledObjective {
        plan: Arc::new(Plan {
            num_inputs,
            num_nodes: reachable.iter().filter(|&&r| r).count(),
            consts,
            steps,
            slot_len,
            scratch_len,
            zero_ranges,
            output: output_loc,
            batchable,
            raw_data_len: num_data,
            data_len,
            data_steps,
            data_exponent,
            adjoint_home,
            batch_buffers,
        }),
        native: None,
    })
}

impl CompiledObjective {
    /// The length of the decision vector `x`.
    pub fn num_inputs(&self) -> usize {
        self.plan.num_inputs
    }

    /// The number of nodes the output depends on (before folding), for `catopt explain`.
    pub fn num_nodes(&self) -> usize {
        self.plan.num_nodes
    }

    /// The number of steps the plan runs per evaluation (after folding and aliasing).
    pub fn num_steps(&self) -> usize {
        self.plan.steps.len()
    }

    /// Fresh buffers for evaluating this objective; reuse them across calls.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            values: vec![0.0; self.plan.slot_len],
            adjoints: vec![0.0; self.plan.slot_len],
            scratch: vec![0.0; self.plan.scratch_len],
        }
    }

    fn check(&self, ws: &Workspace, x: &[f64]) {
        assert_eq!(
            x.len(),
            self.plan.num_inputs,
            "decision vector has the wrong length"
        );
        assert!(
            ws.values.len() == self.plan.slot_len && ws.adjoints.len() == self.plan.slot_len,
            "the workspace belongs to another objective"
        );
    }

    fn sources<'a>(&'a self, x: &'a [f64], data: &'a [f64]) -> Sources<'a> {
        assert_eq!(
            data.len(),
            self.plan.data_len,
            "the box's data vector has the wrong length"
        );
        Sources {
            consts: &self.plan.consts,
            x,
            data,
        }
    }

    /// The objective's value at `x` (length [`num_inputs`](Self::num_inputs)), for an
    /// objective without per-box data.
    pub fn value(&self, ws: &mut Workspace, x: &[f64]) -> f64 {
        self.value_with(ws, x, &[])
    }

    /// The value at `x` of the box whose data vector is `data` ([`box_data`](Self::box_data)).
    pub fn value_with(&self, ws: &mut Workspace, x: &[f64], data: &[f64]) -> f64 {
        self.check(ws, x);
        let sources = self.sources(x, data);
        run_forward(&self.plan.steps, &mut ws.values, sources);
        read(self.plan.output, &ws.values, sources)[0]
    }

    /// Overwrites `gradient` (len num_inputs) with the gradient; returns the value. No
    /// allocation after warm-up (none at all, in fact: the workspace holds every buffer).
    /// For an objective without per-box data.
    pub fn value_and_gradient(&self, ws: &mut Workspace, x: &[f64], gradient: &mut [f64]) -> f64 {
        self.value_and_gradient_with(ws, x, &[], gradient)
    }

    /// [`value_and_gradient`](Self::value_and_gradient) of the box whose data vector is
    /// `data` ([`box_data`](Self::box_data)). The gradient is with respect to `x` only.
    pub fn value_and_gradient_with(
        &self,
        ws: &mut Workspace,
        x: &[f64],
        data: &[f64],
        gradient: &mut [f64],
    ) -> f64 {
        self.check(ws, x);
        assert_eq!(
            gradient.len(),
            self.plan.num_inputs,
            "gradient has the wrong length"
        );
        let plan = &*self.plan;
        let sources = self.sources(x, data);
        run_forward(&plan.steps, &mut ws.values, sources);
        let value = read(plan.output, &ws.values, sources)[0];
        for range in &plan.zero_ranges {
            gradient[range.clone()].fill(0.0);
        }
        match plan.output {
            Loc::Const(_) | Loc::Data(_) => return value,
            Loc::Input(offset) => {
                gradient[offset] += 1.0;
                return value;
            }
            Loc::Slot(offset) => ws.adjoints[offset] = 1.0,
        }
        for step in plan.steps.iter().rev() {
            let (adjoint_before, rest) = ws.adjoints.split_at_mut(step.out);
            backward_step(
                step,
                &ws.values,
                &ws.values[step.out..step.out + step.len],
                &rest[..step.len],
                adjoint_before,
                gradient,
                sources,
                &mut ws.scratch,
            );
        }
        value
    }

    /// The length of a box's raw data vector: the values of its
    /// [`ExprBuilder::data_input`]s, in the order they were made (0 without per-box data).
    pub fn raw_data_len(&self) -> usize {
        self.plan.raw_data_len
    }

    /// The length of a box's data vector ([`box_data`](Self::box_data)).
    pub fn data_len(&self) -> usize {
        self.plan.data_len
    }

    /// True when per-box data is the exponent of a power (`x ^ d`): compiled with `d`
    /// constant, the power would have been specialised (`x * x`, `powi`), so the results
    /// can differ in the last bits. Callers that must keep those bits compile such data
    /// as constants instead.
    pub fn has_data_exponent(&self) -> bool {
        self.plan.data_exponent
    }

    /// Writes a box's data vector into `out` (length [`data_len`](Self::data_len)) from
    /// its raw data (length [`raw_data_len`](Self::raw_data_len)): the raw data, then every
    /// data-only subexpression that reads it, folded with the same kernels as constants
    /// are, so a box evaluates with the bits of a compilation with its data constant.
    pub fn box_data(&self, raw: &[f64], out: &mut [f64]) {
        let plan = &*self.plan;
        assert_eq!(
            raw.len(),
            plan.raw_data_len,
            "raw data has the wrong length"
        );
        assert_eq!(out.len(), plan.data_len, "data vector has the wrong length");
        out[..raw.len()].copy_from_slice(raw);
        self.fold_box_data(out);
    }

    /// [`box_data`](Self::box_data) with the raw data already in place: `data` (length
    /// [`data_len`](Self::data_len)) holds the raw data in its first
    /// [`raw_data_len`](Self::raw_data_len) entries, and the rest is computed from them
    /// (a minibatch's rows are written there directly, with no copy).
    pub fn fold_box_data(&self, data: &mut [f64]) {
        let plan = &*self.plan;
        assert_eq!(
            data.len(),
            plan.data_len,
            "data vector has the wrong length"
        );
        let out = data;
        let sources = Sources {
            consts: &plan.consts,
            x: &[],
            data: &[],
        };
        run_forward(&plan.data_steps, out, sources);
    }

    /// True when every node is scalar-shaped, so many boxes can be evaluated as one
    /// vectorised kernel ([`batch_value_and_gradient`](Self::batch_value_and_gradient)).
    pub fn is_batchable(&self) -> bool {
        self.plan.batchable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batched_rosenbrock_box_shares_tile_buffers() {
        // 100 * (b - a^2)^2 + (1 - a)^2: seven steps.
        let mut builder = ExprBuilder::new(2);
        let a = builder.input(0, Shape::Scalar);
        let b = builder.input(1, Shape::Scalar);
        let two = builder.scalar(2.0);
        let a2 = builder.binary(BinaryOp::Pow, a, two).unwrap();
        let d = builder.binary(BinaryOp::Sub, b, a2).unwrap();
        let d2 = builder.binary(BinaryOp::Pow, d, two).unwrap();
        let hundred = builder.scalar(100.0);
        let t = builder.binary(BinaryOp::Mul, hundred, d2).unwrap();
        let one = builder.scalar(1.0);
        let e = builder.binary(BinaryOp::Sub, one, a).unwrap();
        let e2 = builder.binary(BinaryOp::Pow, e, two).unwrap();
        let f = builder.binary(BinaryOp::Add, t, e2).unwrap();
        let objective = builder.compile(f).unwrap();
        let plan = &objective.plan;
        assert_eq!(plan.steps.len(), 7);
        // Only b - a^2 and 1 - a are read again in reverse (by their squares); 100 * d2 and
        // d2 + e2 share the output's adjoint (seeded with ones).
        assert_eq!(plan.batch_buffers.values, 4);
        assert_eq!(plan.batch_buffers.adjoints, 3);
        assert_eq!(plan.adjoint_home[3], 6);
        assert_eq!(plan.adjoint_home[5], 6);
    }

    #[test]
    fn fused_products_leave_no_gap_in_the_buffers() {
        // tanh(A @ W + b) with sum: the product is fused away, so the buffers hold the
        // fused step (10 x 9), tanh (10 x 9) and the sum: 181 values.
        let mut builder = ExprBuilder::new(8 * 9 + 9);
        let a = builder.constant(Shape::Matrix(10, 8), &[0.5; 80]);
        let w = builder.input(0, Shape::Matrix(8, 9));
        let b = builder.input(72, Shape::Vector(9));
        let p = builder.binary(BinaryOp::MatMul, a, w).unwrap();
        let z = builder.binary(BinaryOp::Add, p, b).unwrap();
        let h = builder.unary(UnaryOp::Tanh, z);
        let f = builder.reduce(Reduction::Sum, h);
        let objective = builder.compile(f).unwrap();
        assert_eq!(objective.num_steps(), 3);
        assert_eq!(objective.plan.slot_len, 90 + 90 + 1);
        assert_eq!(objective.plan.output, Loc::Slot(180));
    }
}
