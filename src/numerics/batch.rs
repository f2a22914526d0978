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
    /// Entry `j` of box `k`'s data vector is `data[j * batch + k]`.
    data: &'a [f64],
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
        let buffers = &self.plan.batch_buffers;
        let mut adjoints = vec![0.0; buffers.adjoints * stride];
        // The output's adjoint is 1 and no step ever writes it: seed it once, here.
        if let Loc::Slot(slot) = self.plan.output {
            let b = buffers.adjoint[slot];
            adjoints[b * stride..(b + 1) * stride].fill(1.0);
        }
        BatchWorkspace {
            values: vec![0.0; buffers.values * stride],
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
        self.batch_value_and_gradient_with(ws, batch, x, None, &[], values, gradient);
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
        self.batch_at(ws, batch, x, input_offsets, &[], values, Some(gradient));
    }

    /// The batched value and gradient of boxes with per-box data: `data[j * batch + k]` is
    /// entry `j` of box `k`'s data vector ([`box_data`](Self::box_data)); the inputs are
    /// read as [`batch_value_and_gradient_at`](Self::batch_value_and_gradient_at) reads
    /// them (`input_offsets`), or from the copied layout (`None`, as
    /// [`batch_value_and_gradient`](Self::batch_value_and_gradient)). Each box gets the
    /// bits of [`value_and_gradient_with`](Self::value_and_gradient_with). No allocation.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_value_and_gradient_with(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: Option<&[usize]>,
        data: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
    ) {
        self.batch_with(ws, batch, x, input_offsets, data, values, Some(gradient));
    }

    /// The values of [`batch_value_and_gradient_with`](Self::batch_value_and_gradient_with)
    /// without the gradient (the forward pass only, same bits). No allocation.
    pub fn batch_value_with(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: Option<&[usize]>,
        data: &[f64],
        values: &mut [f64],
    ) {
        self.batch_with(ws, batch, x, input_offsets, data, values, None);
    }

    /// Either input layout: `None` is the copied one (`x[i * batch + k]`), whose offsets
    /// are made in the workspace's scratch.
    #[allow(clippy::too_many_arguments)]
    fn batch_with(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: Option<&[usize]>,
        data: &[f64],
        values: &mut [f64],
        gradient: Option<&mut [f64]>,
    ) {
        if let Some(offsets) = input_offsets {
            self.batch_at(ws, batch, x, offsets, data, values, gradient);
            return;
        }
        assert_eq!(
            x.len(),
            self.plan.num_inputs * batch,
            "x has the wrong length"
        );
        let mut offsets = std::mem::take(&mut ws.x_offsets);
        offsets.clear();
        offsets.extend((0..self.plan.num_inputs).map(|i| i * batch));
        self.batch_at(ws, batch, x, &offsets, data, values, gradient);
        ws.x_offsets = offsets;
    }

    /// The values of [`batch_value_and_gradient`](Self::batch_value_and_gradient) without
    /// the gradient: the forward pass only, with the same bits (line searches' trial
    /// points). No allocation.
    ///
    /// ```
    /// use catopt::numerics::{BinaryOp, ExprBuilder, Shape};
    /// let mut builder = ExprBuilder::new(2);
    /// let a = builder.input(0, Shape::Scalar);
    /// let b = builder.input(1, Shape::Scalar);
    /// let f = builder.binary(BinaryOp::Mul, a, b).unwrap();
    /// let objective = builder.compile(f).unwrap();
    /// let mut ws = objective.batch_workspace(4);
    /// let mut values = [0.0; 3];
    /// objective.batch_value(&mut ws, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut values);
    /// assert_eq!(values, [4.0, 10.0, 18.0]);
    /// ```
    pub fn batch_value(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        values: &mut [f64],
    ) {
        self.batch_with(ws, batch, x, None, &[], values, None);
    }

    /// [`batch_value`](Self::batch_value) reading each input from its own place, as
    /// [`batch_value_and_gradient_at`](Self::batch_value_and_gradient_at) does.
    pub fn batch_value_at(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: &[usize],
        values: &mut [f64],
    ) {
        self.batch_at(ws, batch, x, input_offsets, &[], values, None);
    }

    /// The checks and the tiles of both entry points; the backward pass only when a
    /// gradient buffer is given.
    #[allow(clippy::too_many_arguments)]
    fn batch_at(
        &self,
        ws: &mut BatchWorkspace,
        batch: usize,
        x: &[f64],
        input_offsets: &[usize],
        data: &[f64],
        values: &mut [f64],
        gradient: Option<&mut [f64]>,
    ) {
        let backward = gradient.is_some();
        let gradient = gradient.unwrap_or_default();
        let plan = &*self.plan;
        assert!(plan.batchable, "the objective is not batchable");
        assert!(
            batch <= ws.max_batch,
            "batch exceeds the workspace's max_batch"
        );
        let stride = ws.max_batch.min(TILE);
        assert!(
            ws.values.len() == plan.batch_buffers.values * stride
                && ws.adjoints.len() == plan.batch_buffers.adjoints * stride,
            "the batch workspace belongs to another objective"
        );
        assert_eq!(input_offsets.len(), plan.num_inputs, "one offset per input");
        assert!(
            input_offsets
                .iter()
                .all(|&o| o <= x.len() && batch <= x.len() - o),
            "an input reaches past the end of x"
        );
        assert_eq!(values.len(), batch, "values has the wrong length");
        assert_eq!(
            data.len(),
            plan.data_len * batch,
            "the boxes' data has the wrong length"
        );
        assert!(
            !backward || gradient.len() == plan.num_inputs * batch,
            "gradient has the wrong length"
        );
        if let Some(native) = &self.native {
            let gradient = backward.then_some(gradient);
            // SAFETY: the lengths the kernel relies on were asserted just above.
            unsafe { native.run(batch, x, input_offsets, data, values, gradient) };
            return;
        }
        let mut start = 0;
        while start < batch {
            let tile = Tile {
                batch,
                start,
                len: TILE.min(batch - start),
                x_offsets: input_offsets,
                data,
            };
            self.run_tile(ws, &tile, x, values, gradient, backward);
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
        backward: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), and the caller,
                // `batch_value_and_gradient_at`, checked the slices as `run_tile_body` asks.
                unsafe { self.run_tile_avx2(ws, tile, x, values, gradient, backward) };
                return;
            }
        }
        self.run_tile_body(ws, tile, x, values, gradient, backward);
    }

    /// [`run_tile_body`](Self::run_tile_body) compiled for AVX2.
    ///
    /// # Safety
    /// The CPU supports AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_tile_avx2(
        &self,
        ws: &mut BatchWorkspace,
        tile: &Tile,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
        backward: bool,
    ) {
        self.run_tile_body(ws, tile, x, values, gradient, backward);
    }

    /// One tile, forward and (if `backward`) backward. Safe to call only after the checks of
    /// [`batch_value_and_gradient_at`](Self::batch_value_and_gradient_at), which its raw
    /// pointers rely on (a private function: that is its only caller, through `run_tile`).
    #[inline(always)]
    fn run_tile_body(
        &self,
        ws: &mut BatchWorkspace,
        tile: &Tile,
        x: &[f64],
        values: &mut [f64],
        gradient: &mut [f64],
        backward: bool,
    ) {
        let plan = &*self.plan;
        let stride = ws.max_batch.min(TILE);
        let n = tile.len;
        let consts = &plan.consts[..];
        let values = &mut values[tile.start..tile.start + n];
        match plan.output {
            Loc::Slot(_) => {} // written by its step, through `output_values` below
            Loc::Input(input) => {
                values.copy_from_slice(&x[tile.x_offsets[input] + tile.start..][..n])
            }
            Loc::Const(offset) => values.fill(consts[offset]),
            Loc::Data(offset) => {
                values.copy_from_slice(&tile.data[offset * tile.batch + tile.start..][..n])
            }
        }
        // The output step writes the boxes' values in place (no step reads the output).
        let output_slot = match plan.output {
            Loc::Slot(slot) => Some(slot),
            _ => None,
        };
        // The steps address their regions by raw pointers, so that a step costs a few
        // instructions more than its loop. The invariants the SAFETY comments below rely on:
        // (B) bounds: with `n <= stride` (`n <= TILE`, `n <= batch <= max_batch`), every
        //     region is inside its buffer, as `batch_value_and_gradient_at` asserts once per
        //     call: `ws.values`/`ws.adjoints` hold `batch_buffers.{values,adjoints} * stride`
        //     numbers and every buffer index is below that count (`compile::batch_buffers`);
        //     input `i` reads `x[x_offsets[i] + start..][..n]` with `x_offsets[i] + batch <=
        //     x.len()` (checked without overflow); its gradient is `gradient[i * batch + start..][..n]` with
        //     `gradient.len() == num_inputs * batch`.
        // (D) disjointness: a step's own value buffer holds none of its operands, and an
        //     adjoint buffer none of the values read with it (`compile::batch_buffers`: a
        //     buffer is reused only after its last read, never by the step that reads it);
        //     the workspace, `x`, `values` and `gradient` are distinct allocations (one
        //     `&` and three `&mut` borrows), and distinct inputs' gradients are disjoint.
        // (A) aliasing: each raw pointer is derived after the last write through the
        //     reference it comes from, and that reference is not used again while the
        //     pointer is (Stacked and Tree Borrows; checkable with Miri).
        let value_buffer = &plan.batch_buffers.value[..];
        let adjoint_buffer = &plan.batch_buffers.adjoint[..];
        let slot_values = ws.values.as_mut_ptr();
        let slot_adjoints = ws.adjoints.as_mut_ptr();
        let output_values = values.as_mut_ptr();
        let inputs = x.as_ptr();
        let value_of = |slot: usize| -> *mut f64 {
            if output_slot == Some(slot) {
                output_values
            } else {
                // SAFETY: (B) the slot's buffer starts inside `ws.values`.
                unsafe { slot_values.add(value_buffer[slot] * stride) }
            }
        };
        let read = |operand: &Operand| -> Src<'_> {
            // SAFETY: (B) in bounds; (D) only read while `out` below is written, and the
            // step's own buffer holds no operand; `x` is never written.
            unsafe {
                match operand.loc {
                    Loc::Slot(slot) => Src::Slice(std::slice::from_raw_parts(value_of(slot), n)),
                    Loc::Input(input) => Src::Slice(std::slice::from_raw_parts(
                        inputs.add(tile.x_offsets[input] + tile.start),
                        n,
                    )),
                    Loc::Const(offset) => Src::Splat(consts[offset]),
                    Loc::Data(offset) => {
                        Src::Slice(&tile.data[offset * tile.batch + tile.start..][..n])
                    }
                }
            }
        };

        // Forward: one loop per step.
        for step in &plan.steps {
            // SAFETY: (B) in bounds; (D) the step's own buffer, which holds none of its
            // operands, so it overlaps no slice `read` makes for this step.
            let out = unsafe { std::slice::from_raw_parts_mut(value_of(step.out), n) };
            match &step.kind {
                StepKind::Unary { op, arg } => kernels::unary_forward(*op, slice(read(arg)), out),
                StepKind::Binary { op, lhs, rhs, .. } => {
                    kernels::binary_forward(*op, read(lhs), read(rhs), out)
                }
                StepKind::Reduce { op, arg } => {
                    let a = slice(read(arg));
                    for (o, &v) in out.iter_mut().zip(a) {
                        *o = op.single(v);
                    }
                }
                StepKind::Dot { lhs, rhs } => {
                    kernels::binary_forward(kernels::Arith::Mul, read(lhs), read(rhs), out)
                }
                _ => unreachable!("batchable plans hold only scalar elementwise steps"),
            }
        }

        if !backward {
            return;
        }
        // Reverse.
        for range in &plan.zero_ranges {
            for input in range.clone() {
                gradient[input * tile.batch + tile.start..][..n].fill(0.0);
            }
        }
        match plan.output {
            Loc::Slot(_) => {} // seeded with ones when the workspace was made
            Loc::Input(input) => {
                for g in &mut gradient[input * tile.batch + tile.start..][..n] {
                    *g += 1.0;
                }
                return;
            }
            Loc::Const(_) | Loc::Data(_) => return,
        }
        // (A): derived after the last write through `gradient` above, which would invalidate
        // it under Stacked and Tree Borrows; from here on `gradient` is not used.
        let gradients = gradient.as_mut_ptr();
        let home = &plan.adjoint_home[..];
        // The adjoint an operand's contribution goes to, and whether to accumulate: none
        // for constants and for slots whose adjoint lives in their consumer's buffer.
        let sink = |operand: &Operand| -> Option<(&mut [f64], bool)> {
            // SAFETY: (B) in bounds; (D) an adjoint buffer or an input's gradient, disjoint
            // from every value read with it. The loop below holds two sinks at once only
            // for distinct locations (`lhs.loc != rhs.loc`).
            unsafe {
                match operand.loc {
                    Loc::Slot(slot) if home[slot] == slot => Some((
                        std::slice::from_raw_parts_mut(
                            slot_adjoints.add(adjoint_buffer[slot] * stride),
                            n,
                        ),
                        operand.accumulate,
                    )),
                    Loc::Input(input) => Some((
                        std::slice::from_raw_parts_mut(
                            gradients.add(input * tile.batch + tile.start),
                            n,
                        ),
                        operand.accumulate,
                    )),
                    Loc::Slot(_) | Loc::Const(_) | Loc::Data(_) => None,
                }
            }
        };
        for step in plan.steps.iter().rev() {
            // SAFETY: (B) in bounds; (D) the step's adjoint (in its home's buffer, live at
            // this step like every operand's adjoint, so in a buffer of its own) and value,
            // only read while the operands' adjoints are written.
            let (g, value) = unsafe {
                (
                    std::slice::from_raw_parts(
                        slot_adjoints.add(adjoint_buffer[home[step.out]] * stride),
                        n,
                    ),
                    std::slice::from_raw_parts(value_of(step.out), n),
                )
            };
            match &step.kind {
                StepKind::Unary { op, arg } => {
                    if let Some((adj, acc)) = sink(arg) {
                        kernels::unary_backward(*op, slice(read(arg)), value, g, adj, acc);
                    }
                }
                StepKind::Binary { op, lhs, rhs, .. } => {
                    let (a, b) = (read(lhs), read(rhs));
                    // Both adjoints in one loop when they are distinct buffers.
                    if lhs.loc != rhs.loc {
                        if let (Some(adj_a), Some(adj_b)) = (sink(lhs), sink(rhs)) {
                            kernels::binary_backward_both(*op, a, b, value, g, adj_a, adj_b);
                            continue;
                        }
                    }
                    if let Some((adj, acc)) = sink(lhs) {
                        kernels::binary_backward_full(*op, Side::Lhs, a, b, value, g, adj, acc);
                    }
                    if let Some((adj, acc)) = sink(rhs) {
                        kernels::binary_backward_full(*op, Side::Rhs, a, b, value, g, adj, acc);
                    }
                }
                StepKind::Reduce { op, arg } => {
                    let a = slice(read(arg));
                    if let Some((adj, acc)) = sink(arg) {
                        for k in 0..n {
                            let contribution = op.single_vjp(a[k], value[k], g[k]);
                            if acc {
                                adj[k] += contribution;
                            } else {
                                adj[k] = contribution;
                            }
                        }
                    }
                }
                StepKind::Dot { lhs, rhs } => {
                    let (a, b) = (read(lhs), read(rhs));
                    let mul = kernels::Arith::Mul;
                    if let Some((adj, acc)) = sink(lhs) {
                        kernels::binary_backward_full(mul, Side::Lhs, a, b, value, g, adj, acc);
                    }
                    if let Some((adj, acc)) = sink(rhs) {
                        kernels::binary_backward_full(mul, Side::Rhs, a, b, value, g, adj, acc);
                    }
                }
                _ => unreachable!("batchable plans hold only scalar elementwise steps"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::numerics::{BinaryOp, ExprBuilder, Shape};

    #[test]
    #[should_panic(expected = "an input reaches past the end of x")]
    fn an_input_offset_that_wraps_around_is_rejected() {
        // f(a) = a * a; offset + batch wraps to 1 in release builds.
        let mut builder = ExprBuilder::new(1);
        let a = builder.input(0, Shape::Scalar);
        let f = builder.binary(BinaryOp::Mul, a, a).unwrap();
        let objective = builder.compile(f).unwrap();
        let mut ws = objective.batch_workspace(3);
        let x = [1.0, 2.0, 3.0, 4.0];
        let (mut values, mut gradient) = ([0.0; 3], [0.0; 3]);
        objective.batch_value_and_gradient_at(
            &mut ws,
            3,
            &x,
            &[usize::MAX - 1],
            &mut values,
            &mut gradient,
        );
    }

    #[test]
    fn per_box_data_gives_each_box_the_bits_of_its_data_as_constants() {
        use crate::numerics::UnaryOp;
        // f(a, b; d) = exp(d / 7) * a * b + (a - d)^2, d per box: exp(d / 7) is folded per
        // box. Each box of the batch against the same objective compiled with d constant.
        let build = |d: Option<f64>| {
            let mut builder = ExprBuilder::new(2);
            let a = builder.input(0, Shape::Scalar);
            let b = builder.input(1, Shape::Scalar);
            let d = match d {
                Some(value) => builder.scalar(value),
                None => builder.data_input(Shape::Scalar),
            };
            let seven = builder.scalar(7.0);
            let q = builder.binary(BinaryOp::Div, d, seven).unwrap();
            let e = builder.unary(UnaryOp::Exp, q);
            let ea = builder.binary(BinaryOp::Mul, e, a).unwrap();
            let eab = builder.binary(BinaryOp::Mul, ea, b).unwrap();
            let diff = builder.binary(BinaryOp::Sub, a, d).unwrap();
            let two = builder.scalar(2.0);
            let sq = builder.binary(BinaryOp::Pow, diff, two).unwrap();
            let f = builder.binary(BinaryOp::Add, eab, sq).unwrap();
            builder.compile(f).unwrap()
        };
        let shared = build(None);
        assert!(shared.is_batchable());
        assert_eq!((shared.raw_data_len(), shared.data_len()), (1, 3));
        let batch = 700; // more than one tile
        let ds: Vec<f64> = (0..batch).map(|k| (k as f64 * 0.61).cos() * 4.0).collect();
        // Entry-major data: entry j of box k at j * batch + k.
        let mut data = vec![0.0; 3 * batch];
        let mut vector = [0.0; 3];
        for (k, &d) in ds.iter().enumerate() {
            shared.box_data(&[d], &mut vector);
            for j in 0..3 {
                data[j * batch + k] = vector[j];
            }
        }
        let x: Vec<f64> = (0..2 * batch).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut ws = shared.batch_workspace(batch);
        let (mut values, mut gradient) = (vec![0.0; batch], vec![0.0; 2 * batch]);
        shared.batch_value_and_gradient_with(
            &mut ws,
            batch,
            &x,
            None,
            &data,
            &mut values,
            &mut gradient,
        );
        let mut forward = vec![0.0; batch];
        shared.batch_value_with(&mut ws, batch, &x, None, &data, &mut forward);
        for (k, &d) in ds.iter().enumerate() {
            let constant = build(Some(d));
            let mut single = constant.workspace();
            let point = [x[k], x[batch + k]];
            let mut g = [0.0; 2];
            let value = constant.value_and_gradient(&mut single, &point, &mut g);
            assert_eq!(values[k].to_bits(), value.to_bits(), "box {k}");
            assert_eq!(forward[k].to_bits(), value.to_bits(), "box {k}");
            assert_eq!(gradient[k].to_bits(), g[0].to_bits(), "box {k}");
            assert_eq!(gradient[batch + k].to_bits(), g[1].to_bits(), "box {k}");
            // The one-box form with the box's data vector, too.
            shared.box_data(&[d], &mut vector);
            let mut own = shared.workspace();
            let mut g2 = [0.0; 2];
            let v2 = shared.value_and_gradient_with(&mut own, &point, &vector, &mut g2);
            assert_eq!(v2.to_bits(), value.to_bits());
            assert_eq!(
                [g2[0].to_bits(), g2[1].to_bits()],
                [g[0].to_bits(), g[1].to_bits()]
            );
        }
    }

    #[test]
    fn an_unused_port_gets_a_zero_gradient() {
        // f(a, b, c) = a * c: port b is unused, so the reverse pass zeroes its gradient
        // before the kernel writes the others (through the raw pointer).
        let mut builder = ExprBuilder::new(3);
        let a = builder.input(0, Shape::Scalar);
        builder.input(1, Shape::Scalar);
        let c = builder.input(2, Shape::Scalar);
        let f = builder.binary(BinaryOp::Mul, a, c).unwrap();
        let objective = builder.compile(f).unwrap();
        assert!(objective.is_batchable());
        let mut ws = objective.batch_workspace(4);
        let z = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (mut values, mut gradient) = ([0.0; 4], [f64::NAN; 12]);
        for _ in 0..2 {
            // Inputs a = z[0..4], b = z[1..5], c = z[2..6].
            objective.batch_value_and_gradient_at(
                &mut ws,
                4,
                &z,
                &[0, 1, 2],
                &mut values,
                &mut gradient,
            );
            assert_eq!(values, [3.0, 8.0, 15.0, 24.0]);
            assert_eq!(&gradient[..4], &[3.0, 4.0, 5.0, 6.0]);
            assert_eq!(
                gradient[4..8]
                    .iter()
                    .map(|g| g.to_bits())
                    .collect::<Vec<_>>(),
                [0.0f64.to_bits(); 4]
            );
            assert_eq!(&gradient[8..], &[1.0, 2.0, 3.0, 4.0]);
            gradient.fill(f64::NAN);
        }
    }

    #[test]
    fn the_forward_only_pass_gives_the_values_of_the_full_pass() {
        use crate::numerics::UnaryOp;
        // f(a, b) = exp(sin(a) * b) + a * a - b, over more boxes than one tile.
        let mut builder = ExprBuilder::new(2);
        let a = builder.input(0, Shape::Scalar);
        let b = builder.input(1, Shape::Scalar);
        let s = builder.unary(UnaryOp::Sin, a);
        let p = builder.binary(BinaryOp::Mul, s, b).unwrap();
        let e = builder.unary(UnaryOp::Exp, p);
        let q = builder.binary(BinaryOp::Mul, a, a).unwrap();
        let t = builder.binary(BinaryOp::Add, e, q).unwrap();
        let f = builder.binary(BinaryOp::Sub, t, b).unwrap();
        let objective = builder.compile(f).unwrap();
        assert!(objective.is_batchable());
        let batch = 1000;
        let z: Vec<f64> = (0..batch + 1)
            .map(|i| (i as f64 * 0.37).sin() * 3.0)
            .collect();
        let mut ws = objective.batch_workspace(batch);
        let (mut full, mut gradient) = (vec![0.0; batch], vec![0.0; 2 * batch]);
        objective.batch_value_and_gradient_at(
            &mut ws,
            batch,
            &z,
            &[0, 1],
            &mut full,
            &mut gradient,
        );
        let mut forward = vec![f64::NAN; batch];
        objective.batch_value_at(&mut ws, batch, &z, &[0, 1], &mut forward);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&forward), bits(&full));
        let x: Vec<f64> = z[..batch].iter().chain(&z[1..]).copied().collect();
        let mut copied = vec![f64::NAN; batch];
        objective.batch_value(&mut ws, batch, &x, &mut copied);
        assert_eq!(bits(&copied), bits(&full));
    }
}
