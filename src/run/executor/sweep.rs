//! One worker's sweep: evaluate its chunks, scatter-add their gradients in plan order, and
//! finish the norm blocks it completes.

use super::super::lanes::{add_slices, bit, bits_uniform, fixed_order_fold};
use super::super::minibatch::BoxMinibatch;
use super::super::partition::BlockSchedule;
use super::super::plan::{Chunk, Layout, Plan};
use super::super::shared_slice::SharedSlice;
use super::update::{finish_block, Update};
use crate::numerics::{BatchWorkspace, Workspace};
use crate::run::method::UpdateRule;
use std::ops::Range;

/// Scratch for evaluating one group's chunks.
struct GroupScratch {
    inputs: Vec<f64>,
    gradient: Vec<f64>,
    values: Vec<f64>,
    single: Option<Workspace>,
    batch: Option<BatchWorkspace>,
}

/// One worker's share (a thread's, or a rank's): its chunks, scratch, and the
/// contributions it defers.
pub(super) struct Worker {
    chunks: Range<usize>,
    groups: Vec<GroupScratch>,
    /// Coordinates (in plan order) of the contributions this worker defers to the ordered
    /// second phase (threads) or the exchange (ranks), because an earlier worker touches
    /// them first.
    pub(super) deferred_coordinates: Vec<u32>,
    /// Their values, filled each evaluation.
    pub(super) deferred_values: Vec<f64>,
    /// In a minibatch run: the minibatch buffers of this worker's sampled boxes, by chunk
    /// (each a chunk of one box), in chunk order.
    minibatches: Vec<(usize, BoxMinibatch)>,
}

impl Worker {
    /// A worker for the chunks `chunks` of `plan`, deferring its contributions to
    /// `deferred_coordinates`, with scratch for every group.
    pub(super) fn new(plan: &Plan, chunks: Range<usize>, deferred_coordinates: Vec<u32>) -> Worker {
        let groups = plan
            .groups
            .iter()
            .map(|g| {
                let chunk = g.chunk_size().min(g.boxes.len());
                GroupScratch {
                    inputs: vec![0.0; chunk * g.arity()],
                    gradient: vec![0.0; chunk * g.arity()],
                    values: vec![0.0; chunk],
                    single: (!g.batched).then(|| g.objective.workspace()),
                    batch: g.batched.then(|| g.objective.batch_workspace(chunk)),
                }
            })
            .collect();
        let minibatches = if plan.minibatches().is_some() {
            chunks
                .clone()
                .filter_map(|c| {
                    let boxes = plan.chunk_boxes(c);
                    let minibatch = match boxes {
                        &[b] => BoxMinibatch::of_box(plan, b as usize),
                        _ => None,
                    };
                    minibatch.map(|m| (c, m))
                })
                .collect()
        } else {
            Vec::new()
        };
        Worker {
            chunks,
            groups,
            minibatches,
            deferred_values: vec![0.0; deferred_coordinates.len()],
            deferred_coordinates,
        }
    }
}

/// What a worker's sweep reads and writes.
pub(super) struct SweepContext<'a, R: ?Sized> {
    pub(super) plan: &'a Plan,
    pub(super) deferred: &'a [u64],
    pub(super) chunk_deferred: &'a [bool],
    pub(super) state: &'a [f64],
    pub(super) gradient: SharedSlice<'a>,
    pub(super) chunk_objective: SharedSlice<'a>,
    pub(super) box_values: Option<SharedSlice<'a>>,
    pub(super) blocks: &'a BlockSchedule,
    pub(super) update: Update<'a, R>,
    pub(super) norm_partials: SharedSlice<'a>,
    /// Only the boxes' values (a line search's trial point): no gradient, scatter-add,
    /// box values or block finishing.
    pub(super) value_only: bool,
    /// The step whose minibatches sampled boxes read (a minibatch run).
    pub(super) sample_step: u64,
}

impl<R: ?Sized> Clone for SweepContext<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: ?Sized> Copy for SweepContext<'_, R> {}

impl<R: UpdateRule + ?Sized> SweepContext<'_, R> {
    /// Evaluates a worker's chunks in order and scatter-adds their gradients.
    ///
    /// # Safety
    /// The shared slices are written by other workers at the same time. Let `ranges` be the
    /// partition of the chunks that `deferred`, `chunk_deferred`, `blocks` and the other
    /// workers' `Worker::chunks` come from, with `worker.chunks` one of them. Then:
    /// - every coordinate that this worker writes directly (its chunks' slots whose
    ///   `deferred` bit is clear) is written directly by no other worker, and is in bounds
    ///   of `gradient` (`Plan::deferrals`: only a coordinate's first toucher writes it);
    /// - every block in `blocks.after_chunk(c)` for a chunk `c` of this worker exists, and
    ///   only this worker writes its gradient entries, its partial and its update
    ///   (`Plan::block_schedule`);
    /// - no two workers hold overlapping chunk ranges (`chunk_objective` entries) or a box
    ///   in common (`box_values` entries);
    /// - nothing else reads or writes the shared slices until every worker is done.
    ///
    /// `Plan::check_disjoint_writes` checks the first three (debug builds and tests).
    pub(super) unsafe fn sweep(&self, worker: &mut Worker) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above); the rest is this
                // function's own contract.
                return unsafe { self.sweep_avx2(worker) };
            }
        }
        // SAFETY: this function's contract.
        unsafe { self.sweep_body(worker) }
    }

    /// [`SweepContext::sweep`] with the scatter-add, the sums and the update compiled for
    /// AVX2 (only IEEE additions and multiplications, no fused multiply-add: the same bits
    /// as the generic version).
    ///
    /// # Safety
    /// The CPU supports AVX2, and the contract of [`SweepContext::sweep`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sweep_avx2(&self, worker: &mut Worker) {
        // SAFETY: this function's contract.
        unsafe { self.sweep_body(worker) }
    }

    /// # Safety
    /// The contract of [`SweepContext::sweep`].
    #[inline(always)]
    unsafe fn sweep_body(&self, worker: &mut Worker) {
        let plan = self.plan;
        let Worker {
            chunks,
            groups,
            deferred_values,
            minibatches,
            ..
        } = worker;
        let mut minibatches = minibatches.iter_mut().peekable();
        // SAFETY: the workers' chunk ranges are disjoint (the contract), so this worker alone
        // accesses its chunks' objective entries.
        let objectives = unsafe { self.chunk_objective.range(chunks.clone()) };
        let mut deferred_position = 0;
        for c in chunks.clone() {
            let chunk = &plan.chunks[c];
            let group = &plan.groups[chunk.group as usize];
            let scratch = &mut groups[chunk.group as usize];
            let count = chunk.count as usize;
            let slots = count * group.arity();
            let local_gradient = &mut scratch.gradient[..slots];
            let values = &mut scratch.values[..count];
            let inputs = &mut scratch.inputs[..slots];
            let data = match minibatches.next_if(|(m, _)| *m == c) {
                Some((_, minibatch)) => {
                    let sampled = plan.minibatches().expect("a minibatch run");
                    minibatch.at_step(sampled, self.sample_step)
                }
                None => plan.chunk_data(chunk),
            };
            if self.value_only {
                match (scratch.batch.as_mut(), chunk.layout) {
                    (Some(batch), Layout::PerInputRuns { offset }) => {
                        let offsets = &plan.input_bases[offset..offset + group.arity()];
                        group.objective.batch_value_with(
                            batch,
                            count,
                            self.state,
                            Some(offsets),
                            data,
                            values,
                        );
                    }
                    (Some(batch), _) => {
                        self.gather(chunk, inputs);
                        group
                            .objective
                            .batch_value_with(batch, count, inputs, None, data, values);
                    }
                    (None, _) => {
                        self.gather(chunk, inputs);
                        if let Some(single) = scratch.single.as_mut() {
                            values[0] = group.objective.value_with(single, inputs, data);
                        }
                    }
                }
                // The same sum as the full evaluation's, of the same values.
                objectives[c - chunks.start] = fixed_order_fold(values, |v| v);
                continue;
            }
            match (scratch.batch.as_mut(), chunk.layout) {
                (Some(batch), Layout::PerInputRuns { offset }) => {
                    // Each input is a run of the state: the kernel reads it in place.
                    let offsets = &plan.input_bases[offset..offset + group.arity()];
                    group.objective.batch_value_and_gradient_with(
                        batch,
                        count,
                        self.state,
                        Some(offsets),
                        data,
                        values,
                        local_gradient,
                    );
                }
                (Some(batch), _) => {
                    self.gather(chunk, inputs);
                    group.objective.batch_value_and_gradient_with(
                        batch,
                        count,
                        inputs,
                        None,
                        data,
                        values,
                        local_gradient,
                    );
                }
                (None, _) => {
                    self.gather(chunk, inputs);
                    if let Some(single) = scratch.single.as_mut() {
                        values[0] = group.objective.value_and_gradient_with(
                            single,
                            inputs,
                            data,
                            local_gradient,
                        );
                    }
                }
            }
            objectives[c - chunks.start] = fixed_order_fold(values, |v| v);
            if let Some(box_values) = self.box_values {
                for (k, &v) in values.iter().enumerate() {
                    let b = group.boxes[chunk.first_member as usize + k] as usize;
                    // SAFETY: box `b` is a box of this worker's chunk `c`, of no other
                    // worker's (the contract), and `b < box_count = box_values.len()`.
                    unsafe { *box_values.get(b) = v };
                }
            }
            if self.chunk_deferred[c] {
                // Slow path (chunks at worker boundaries): slot by slot.
                plan.for_each_slot(chunk, |s, g| {
                    let contribution = local_gradient[s - chunk.slot_start];
                    if bit(self.deferred, s) {
                        deferred_values[deferred_position] = contribution;
                        deferred_position += 1;
                    } else {
                        // SAFETY: slot `s` is not deferred, so this worker alone writes
                        // coordinate `g` (the contract).
                        unsafe { self.add(g, bit(&plan.first, s), contribution) };
                    }
                });
            } else {
                // SAFETY: no slot of chunk `c` is deferred, so this worker alone writes
                // the coordinates it scatters to (the contract).
                unsafe { self.scatter(chunk, local_gradient) };
            }
            for &block in self.blocks.after_chunk(c) {
                // SAFETY: the block is complete after chunk `c` and only this worker
                // writes its entries, partial and update (the contract).
                unsafe {
                    finish_block(
                        block as usize,
                        self.gradient,
                        self.update,
                        self.norm_partials,
                    )
                };
            }
        }
    }

    /// Reads the chunk's inputs from the state (the gather, phi_b^*).
    fn gather(&self, chunk: &Chunk, inputs: &mut [f64]) {
        let plan = self.plan;
        let count = chunk.count as usize;
        let state = self.state;
        match chunk.layout {
            Layout::PerInputRuns { offset } => {
                let arity = inputs.len() / count;
                for &(base, i) in &plan.bases[offset..offset + arity] {
                    let (base, i) = (base as usize, i as usize);
                    inputs[i * count..(i + 1) * count].copy_from_slice(&state[base..base + count]);
                }
            }
            Layout::Runs { offset, count: n } => {
                for run in &plan.runs[offset..offset + n] {
                    let (s, g, len) =
                        (run.slot as usize, run.coordinate as usize, run.len as usize);
                    inputs[s..s + len].copy_from_slice(&state[g..g + len]);
                }
            }
            Layout::Indexed { offset } => {
                let gather = &plan.gather[offset..offset + inputs.len()];
                for (x, &g) in inputs.iter_mut().zip(gather) {
                    *x = state[g as usize];
                }
            }
        }
    }

    /// Adds one contribution onto the gradient: written as `0.0 + c` when it is the first.
    ///
    /// # Safety
    /// `g < gradient.len()`, and no other thread accesses coordinate `g` meanwhile.
    #[inline(always)]
    unsafe fn add(&self, g: usize, first: bool, contribution: f64) {
        // SAFETY: this function's contract.
        let target = unsafe { self.gradient.get(g) };
        let base = if first { 0.0 } else { *target };
        *target = base + contribution;
    }

    /// Adds `contributions` onto the consecutive coordinates from `coordinate`, the first
    /// of them at slot `slot`: a vectorisable loop when the slots' FIRST bits are uniform.
    ///
    /// # Safety
    /// No other thread accesses the coordinates `coordinate..coordinate + len` meanwhile.
    ///
    /// # Panics
    /// If they reach past the gradient, or the slots past the plan's.
    #[inline(always)]
    unsafe fn add_run(&self, coordinate: usize, slot: usize, contributions: &[f64]) {
        let len = contributions.len();
        // SAFETY: this function's contract (bounds are checked by `range`).
        let target = unsafe { self.gradient.range(coordinate..coordinate + len) };
        match bits_uniform(&self.plan.first, slot, len) {
            Some(true) => add_slices(target, contributions, true),
            Some(false) => add_slices(target, contributions, false),
            None => {
                for (j, (t, &c)) in target.iter_mut().zip(contributions).enumerate() {
                    let base = if bit(&self.plan.first, slot + j) {
                        0.0
                    } else {
                        *t
                    };
                    *t = base + c;
                }
            }
        }
    }

    /// Adds the chunk's local gradients onto the composite gradient in plan order (the
    /// scatter-add, phi_b*), for a chunk with no deferred slot.
    ///
    /// # Safety
    /// No other thread accesses the coordinates that the chunk's slots read meanwhile
    /// (their indices come from the plan, which keeps them below `apex`, the gradient's
    /// length).
    #[inline(always)]
    unsafe fn scatter(&self, chunk: &Chunk, local_gradient: &[f64]) {
        let plan = self.plan;
        let count = chunk.count as usize;
        let first = &plan.first;
        match chunk.layout {
            Layout::PerInputRuns { offset } => {
                // Input by input, in (base descending, input ascending) order: for every
                // coordinate this visits its contributions in box order, as box-major
                // order would, but each pass is a dependency-free stream.
                let arity = local_gradient.len() / count;
                for &(base, i) in &plan.bases[offset..offset + arity] {
                    let s = i as usize * count;
                    // SAFETY: the run's coordinates are the chunk's (this function's contract).
                    unsafe {
                        self.add_run(
                            base as usize,
                            chunk.slot_start + s,
                            &local_gradient[s..s + count],
                        )
                    };
                }
            }
            Layout::Runs { offset, count: n } => {
                // One box: plan order is slot order.
                for run in &plan.runs[offset..offset + n] {
                    let (s, g, len) =
                        (run.slot as usize, run.coordinate as usize, run.len as usize);
                    // SAFETY: the run's coordinates are the chunk's (this function's contract).
                    unsafe { self.add_run(g, chunk.slot_start + s, &local_gradient[s..s + len]) };
                }
            }
            Layout::Indexed { offset } => {
                let gather = &plan.gather[offset..offset + local_gradient.len()];
                for k in 0..count {
                    let mut s = k;
                    while s < local_gradient.len() {
                        // SAFETY: `gather[s] < apex` (checked in `Plan::new`), and it is a
                        // coordinate of the chunk (this function's contract).
                        unsafe {
                            self.add(
                                gather[s] as usize,
                                bit(first, chunk.slot_start + s),
                                local_gradient[s],
                            )
                        };
                        s += count;
                    }
                }
            }
        }
    }
}
