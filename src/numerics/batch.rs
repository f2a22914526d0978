//! The batched kernel: one scalar-shaped objective evaluated for many boxes at once.
//!
//! Every node of a batchable plan is a scalar, so its values for `batch` boxes form one
//! contiguous slice; each step becomes one loop over the batch (auto-vectorisable), using
//! the same scalar formulas as the single-box plan, in the same order, so the results are
//! bit-identical to [`CompiledObjective::value_and_gradient`].

use super::compile::{CompiledObjective, Loc, Operand, StepKind};
use super::kernels::{self, Side, Src};

/// Preallocated buffers for [`CompiledObjective::batch_value_and_gradient`]: the values
/// and adjoints of every node for up to `max_batch` boxes.
#[derive(Clone, Debug)]
pub struct BatchWorkspace {
    values: Vec<f64>,
    adjoints: Vec<f64>,
    max_batch: usize,
    /// Scratch for the input offsets of the copying form (sized at creation).
    x_offsets: Vec<usize>,
}

impl BatchWorkspace {
    /// The largest batch these buffers hold.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }
}

/// Boxes are processed in tiles of this many, so that every node's buffer for a tile stays
/// in the L1 cache while the tile runs through the whole plan.
const TILE: usize = 512;

/// The boxes `start .. start + len` of a batch of `batch` boxes.
struct Tile<'a> {
    batch: usize,
    start: usize,
    len: usize,
    /// Input `i` of box `k` is `x[x_offsets[i] + k]`.
    x_offsets: &'a [usize],
}

/// The values of one operand for the current tile.
#[inline(always)]
fn source<'a>(
    operand: &Operand,
    slots: &'a [f64],
    consts: &[f64],
    x: &'a [f64],
    stride: usize,
    tile: &Tile,
) -> Src<'a> {
    match operand.loc {
        Loc::Slot(slot) => Src::Slice(&slots[slot * stride..slot * stride + tile.len]),
        Loc::Input(input) => Src::Slice(&x[tile.x_offsets[input] + tile.start..][..tile.len]),
        Loc::Const(offset) => Src::Splat(consts[offset]),
    }
}

fn slice(src: Src<'_>) -> &[f64] {
    match src {
        Src::Slice(s) => s,
        Src::Splat(_) => unreachable!("a folded constant never feeds a unary step"),
    }
}

impl CompiledObjective {
    /// Buffers for evaluating up to `max_batch` boxes at once.
    ///
    /// # Panics
    /// If the objective is not batchable ([`is_batchable`](Self::is_batchable)).
    pub fn batch_workspace(&self, max_batch: usize) -> BatchWorkspace {
        assert!(
            self.is_batchable(),
            "batch_workspace: the objective has non-scalar nodes"
        );
        let stride = max_batch.min(TILE);
        let len = self.plan.slot_len * stride;
        let mut adjoints = vec![0.0; len];
        // The output's adjoint is 1 and no step ever writes it: seed it once, here.
        if let Loc::Slot(slot) = self.plan.output {
            adjoints[slot * stride..(slot + 1) * stride].fill(1.0);
        }
        BatchWorkspace {
            values: vec![0.0; len],
            adjoints,
            max_batch,
            x_offsets: Vec::with_capacity(self.plan.num_inputs),
        }
    }

    /// Evaluates `batch` boxes at once (batch <= max_batch). Layout is input-major (SoA):
    /// `x[i * batch + k]` is input i of box k; `gradient` has the same layout and is
    /// overwritten; `values[k]` receives box k's value. No allocation. Panics only on
    /// wrong slice lengths or a workspace of another objective (a bug in the caller).
    ///
    /// ```
    /// use catopt::numerics::{BinaryOp, ExprBuilder, Shape};
    /// // f(a, b) = a * b for three boxes at once
    /// let mut builder = ExprBuilder::new(2);
    /// let a = builder.input(0, Shape::Scalar);
    /// let b = builder.input(1, Shape::Scalar);
    /// let f = builder.binary(BinaryOp::Mul, a, b).unwrap();
    /// let objective = builder.compile(f).unwrap();
    /// let mut ws = objective.batch_workspace(4);
    /// let x = [1.0, 2.0, 3.0, /* b: */ 4.0, 5.0, 6.0];
    /// let (mut values, mut gradient) = ([0.0; 3], [0.0; 6]);
    /// objective.batch_value_and_gradient(&mut ws, 3, &x, &mut values, &mut gradient);
    /// assert_eq!(values, [4.0, 10.0, 18.0]);
    /// assert_eq!(gradient, [4.0, 5.0, 6.0, 1.0, 2.0, 3.0]);
    /// ```
    pub fn batch_value_and_gradient(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        assert_eq!(
            x.len(),
            self.plan.num_inputs * batch,
            "x has the wrong length"
        );
        let mut offsets = std::mem::take(&mut ws.x_offsets);
        offsets.clear();
        offsets.extend((0..self.plan.num_inputs).map(|i| i * batch));
        self.batch_value_and_gradient_at(ws, batch, x, &offsets, values, gradient);
        ws.x_offsets = offsets;
    }

    /// [`batch_value_and_gradient`](Self::batch_value_and_gradient) reading each input
    /// from its own place: input `i` of box `k` is `x[input_offsets[i] + k]`. A chunk of
    /// boxes wired to consecutive coordinates can so read the state directly, without a
    /// gather copy. `gradient` keeps the input-major layout (`gradient[i * batch + k]`).
    /// Same bits as the copying form. No allocation.
    ///
    /// ```
    /// use catopt::numerics::{BinaryOp, ExprBuilder, Shape};
    /// // f(a, b) = a * b on a chain: box k reads z[k] and z[k + 1]
    /// let mut builder = ExprBuilder::new(2);
    /// let a = builder.input(0, Shape::Scalar);
    /// let b = builder.input(1, Shape::Scalar);
    /// let f = builder.binary(BinaryOp::Mul, a, b).unwrap();
    /// let objective = builder.compile(f).unwrap();
    /// let mut ws = objective.batch_workspace(4);
    /// let z = [1.0, 2.0, 3.0, 4.0];
    /// let (mut values, mut gradient) = ([0.0; 3], [0.0; 6]);
    /// objective.batch_value_and_gradient_at(&mut ws, 3, &z, &[0, 1], &mut values, &mut gradient);
    /// assert_eq!(values, [2.0, 6.0, 12.0]);
    /// assert_eq!(gradient, [2.0, 3.0, 4.0, 1.0, 2.0, 3.0]);
    /// ```
    pub fn batch_value_and_gradient_at(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: &[usize],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        let plan = &*self.plan;
        assert!(plan.batchable, "the objective is not batchable");
        assert!(
            batch <= ws.max_batch,
            "batch exceeds the workspace's max_batch"
        );
        assert_eq!(
            ws.values.len(),
            plan.slot_len * ws.max_batch.min(TILE),
            "the batch workspace belongs to another objective"
        );
        assert_eq!(input_offsets.len(), plan.num_inputs, "one offset per input");
        assert!(
            input_offsets.iter().all(|&o| o + batch <= x.len()),
            "an input reaches past the end of x"
        );
        assert_eq!(values.len(), batch, "values has the wrong length");
        assert_eq!(
            gradient.len(),
            plan.num_inputs * batch,
            "gradient has the wrong length"
        );
        let mut start = 0;
        while start < batch {
            let tile = Tile {
                batch,
                start,
                len: TILE.min(batch - start),
                x_offsets: input_offsets,
            };
            self.run_tile(ws, &tile, x, values, gradient);
            start += tile.len;
        }
    }

    /// Runs the plan forward and backward for one tile of boxes, with AVX2 loops when the
    /// CPU has them. Only IEEE basic operations and the same libm calls run either way (no
    /// fused multiply-add), so both versions give bit-identical results.
    fn run_tile(
        &self,
        ws: &mut BatchWorkspace,
        tile: &Tile,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { self.run_tile_avx2(ws, tile, x, values, gradient) };
                return;
            }
        }
        self.run_tile_body(ws, tile, x, values, gradient);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_tile_avx2(
        &self,
        ws: &mut BatchWorkspace,
        tile: &Tile,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        self.run_tile_body(ws, tile, x, values, gradient);
    }

    #[inline(always)]
    fn run_tile_body(
        &self,
        ws: &mut BatchWorkspace,
        tile: &Tile,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        let plan = &*self.plan;
        let stride = ws.max_batch.min(TILE);
        let batch = tile.len;
        let consts = &plan.consts[..];
        let values = &mut values[tile.start..tile.start + batch];

        // The output step writes the boxes' values in place (no step reads the output).
        let output_slot = match plan.output {
            Loc::Slot(slot) => Some(slot),
            _ => None,
        };

        // Forward: one loop per step.
        for step in &plan.steps {
            let (before, rest) = ws.values.split_at_mut(step.out * stride);
            let out = if output_slot == Some(step.out) {
                &mut *values
            } else {
                &mut rest[..batch]
            };
            let src = |operand: &Operand| source(operand, before, consts, x, stride, tile);
            match &step.kind {
                StepKind::Unary { op, arg } => kernels::unary_forward(*op, slice(src(arg)), out),
                StepKind::Binary { op, lhs, rhs, .. } => {
                    kernels::binary_forward(*op, src(lhs), src(rhs), out)
                }
                StepKind::Reduce { op, arg } => {
                    let a = slice(src(arg));
                    for (o, &v) in out.iter_mut().zip(a) {
                        *o = op.single(v);
                    }
                }
                StepKind::Dot { lhs, rhs } => {
                    kernels::binary_forward(kernels::Arith::Mul, src(lhs), src(rhs), out)
                }
                _ => unreachable!("batchable plans hold only scalar elementwise steps"),
            }
        }
        match plan.output {
            Loc::Slot(_) => {} // written by its step
            Loc::Input(input) => {
                values.copy_from_slice(&x[tile.x_offsets[input] + tile.start..][..batch])
            }
            Loc::Const(offset) => values.fill(consts[offset]),
        }

        // Reverse.
        for range in &plan.zero_ranges {
            for input in range.clone() {
                gradient[input * tile.batch + tile.start..][..batch].fill(0.0);
            }
        }
        match plan.output {
            Loc::Slot(_) => {} // seeded with ones when the workspace was made
            Loc::Input(input) => {
                for g in &mut gradient[input * tile.batch + tile.start..][..batch] {
                    *g += 1.0;
                }
                return;
            }
            Loc::Const(_) => return,
        }
        let slots = &ws.values[..];
        let values = &*values;
        let home = &plan.adjoint_home[..];
        // A slot whose adjoint lives in its consumer's buffer gets no contribution of its own.
        let owns = |slot: usize| home[slot] == slot;
        for step in plan.steps.iter().rev() {
            let (adjoint_before, rest) = ws.adjoints.split_at_mut(step.out * stride);
            let g = &rest[(home[step.out] - step.out) * stride..][..batch];
            let value = if output_slot == Some(step.out) {
                values
            } else {
                &slots[step.out * stride..][..batch]
            };
            let src = |operand: &Operand| source(operand, slots, consts, x, stride, tile);
            // The adjoint slice of an operand, and whether to accumulate into it.
            macro_rules! with_sink {
                ($operand:expr, |$adj:ident, $acc:ident| $body:expr) => {
                    match $operand.loc {
                        Loc::Slot(slot) if owns(slot) => {
                            let $adj = &mut adjoint_before[slot * stride..slot * stride + batch];
                            let $acc = $operand.accumulate;
                            $body
                        }
                        Loc::Slot(_) => {}
                        Loc::Input(input) => {
                            let $adj = &mut gradient[input * tile.batch + tile.start..][..batch];
                            let $acc = $operand.accumulate;
                            $body
                        }
                        Loc::Const(_) => {}
                    }
                };
            }
            match &step.kind {
                StepKind::Unary { op, arg } => {
                    let a = slice(src(arg));
                    with_sink!(arg, |adj, acc| kernels::unary_backward(
                        *op, a, value, g, adj, acc
                    ));
                }
                StepKind::Binary { op, lhs, rhs, .. } => {
                    let (a, b) = (src(lhs), src(rhs));
                    // Both adjoints in one loop when they are distinct buffers.
                    let both = match (lhs.loc, rhs.loc) {
                        (Loc::Slot(l), Loc::Slot(r)) if l != r && owns(l) && owns(r) => {
                            let (low, high) = adjoint_before.split_at_mut(l.max(r) * stride);
                            let first = &mut low[l.min(r) * stride..][..batch];
                            let second = &mut high[..batch];
                            Some(if l < r {
                                (first, second)
                            } else {
                                (second, first)
                            })
                        }
                        (Loc::Slot(l), Loc::Input(r)) if owns(l) => Some((
                            &mut adjoint_before[l * stride..][..batch],
                            &mut gradient[r * tile.batch + tile.start..][..batch],
                        )),
                        (Loc::Input(l), Loc::Slot(r)) if owns(r) => Some((
                            &mut gradient[l * tile.batch + tile.start..][..batch],
                            &mut adjoint_before[r * stride..][..batch],
                        )),
                        (Loc::Input(l), Loc::Input(r)) if l != r => {
                            let (low, high) =
                                gradient.split_at_mut(l.max(r) * tile.batch + tile.start);
                            let first = &mut low[l.min(r) * tile.batch + tile.start..][..batch];
                            let second = &mut high[..batch];
                            Some(if l < r {
                                (first, second)
                            } else {
                                (second, first)
                            })
                        }
                        _ => None,
                    };
                    if let Some((adj_a, adj_b)) = both {
                        let acc_a = lhs.accumulate;
                        let acc_b = rhs.accumulate;
                        kernels::binary_backward_both(
                            *op,
                            a,
                            b,
                            value,
                            g,
                            (adj_a, acc_a),
                            (adj_b, acc_b),
                        );
                        continue;
                    }
                    with_sink!(lhs, |adj, acc| kernels::binary_backward_full(
                        *op,
                        Side::Lhs,
                        a,
                        b,
                        value,
                        g,
                        adj,
                        acc
                    ));
                    with_sink!(rhs, |adj, acc| kernels::binary_backward_full(
                        *op,
                        Side::Rhs,
                        a,
                        b,
                        value,
                        g,
                        adj,
                        acc
                    ));
                }
                StepKind::Reduce { op, arg } => {
                    let a = slice(src(arg));
                    with_sink!(arg, |adj, acc| {
                        for k in 0..batch {
                            let contribution = op.single_vjp(a[k], value[k], g[k]);
                            if acc {
                                adj[k] += contribution;
                            } else {
                                adj[k] = contribution;
                            }
                        }
                    });
                }
                StepKind::Dot { lhs, rhs } => {
                    let (a, b) = (src(lhs), src(rhs));
                    let mul = kernels::Arith::Mul;
                    with_sink!(lhs, |adj, acc| kernels::binary_backward_full(
                        mul,
                        Side::Lhs,
                        a,
                        b,
                        value,
                        g,
                        adj,
                        acc
                    ));
                    with_sink!(rhs, |adj, acc| kernels::binary_backward_full(
                        mul,
                        Side::Rhs,
                        a,
                        b,
                        value,
                        g,
                        adj,
                        acc
                    ));
                }
                _ => unreachable!("batchable plans hold only scalar elementwise steps"),
            }
        }
    }
}
