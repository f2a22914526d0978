//! The execution plan: a composite compiled once into gather and scatter-add index arrays
//! and batched kernels, so that each step of distributed gradient descent allocates nothing.
//!
//! Layout. The boxes are grouped by box type (same compiled objective). Each group is cut
//! into chunks of at most [`CHUNK`] boxes; a chunk of `c` boxes of arity `n` owns `c * n`
//! consecutive *local slots*, input-major (`slot = i * c + k` for input `i` of the chunk's
//! `k`-th box). The same layout serves the gather (`gather[slot]` is the global coordinate
//! read by that input), the batched kernel's input and gradient buffers, and the local
//! gradients. The scatter-add is the transpose of the gather, stored as a CSR table: for
//! each global coordinate, the slots that contribute to it, **in box order**. That order is
//! the fixed summation order of the composite's gradient (the order in which the pushout's
//! composite objective adds the boxes' pulled-back gradients), so every backend produces the
//! same bits.

use crate::numerics::{BatchWorkspace, CompiledObjective, Workspace};
use std::sync::Arc;

/// The largest number of boxes evaluated together by one batched kernel call.
pub const CHUNK: usize = 2048;

/// Block size of the deterministic blocked sums (objective, gradient norm).
pub const SUM_BLOCK: usize = 4096;

/// One box type of a composite: a compiled objective and the boxes that instantiate it.
#[derive(Clone)]
pub struct BoxGroup {
    /// The box type's objective (its decision vector: ports, then private variables).
    pub objective: Arc<CompiledObjective>,
    /// The boxes of this type, in increasing box order.
    pub boxes: Vec<u32>,
    /// The first local slot of this group.
    slot_start: usize,
    /// Whether the objective is evaluated by the batched (vectorised) kernel.
    batched: bool,
}

impl BoxGroup {
    /// Number of scalar inputs of one box.
    pub fn arity(&self) -> usize {
        self.objective.num_inputs()
    }

    /// True when this group is evaluated by the batched kernel.
    pub fn is_batched(&self) -> bool {
        self.batched
    }

    fn chunk_size(&self) -> usize {
        if self.batched {
            CHUNK
        } else {
            1
        }
    }

    /// The chunks of this group: (first member, member count, first slot).
    fn chunks(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let size = self.chunk_size();
        let arity = self.arity();
        let members = self.boxes.len();
        (0..members.div_ceil(size)).map(move |c| {
            let first = c * size;
            let count = size.min(members - first);
            (first, count, self.slot_start + first * arity)
        })
    }
}

/// What a plan is built from: the composite's box types, which type each box is, and the
/// pushout leg from the coproduct of the boxes' decision spaces to the composite's.
pub struct PlanInput<'a> {
    /// Number of global scalar coordinates (the composite's apex).
    pub apex: usize,
    /// The box types.
    pub box_types: &'a [Arc<CompiledObjective>],
    /// Box `b` instantiates `box_types[box_type_of[b]]`.
    pub box_type_of: &'a [u32],
    /// `local_to_global[summand_offsets[b] + i]` is the global coordinate of box `b`'s
    /// `i`-th local coordinate (phi_b in the paper).
    pub local_to_global: &'a [usize],
    /// Start of each box's summand in `local_to_global`; length boxes + 1.
    pub summand_offsets: &'a [usize],
}

/// A composite compiled for running: index arrays and groups; immutable and shareable.
pub struct Plan {
    apex: usize,
    box_count: usize,
    groups: Vec<BoxGroup>,
    /// Global coordinate read by each local slot.
    gather: Vec<u32>,
    /// CSR over global coordinates: `contributions[offsets[g]..offsets[g+1]]` are the local
    /// slots adding into coordinate `g`, in box order.
    contribution_offsets: Vec<u32>,
    contributions: Vec<u32>,
    /// Position of each box's value in the values buffer when groups interleave boxes
    /// (empty when the values buffer is already in box order).
    value_order: Vec<u32>,
}

/// Why a plan could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// More coordinates than the index arrays can address.
    #[error("the composite has {0} local coordinates; at most 4294967295 are supported")]
    TooLarge(usize),
    /// Inconsistent input (a bug in the caller).
    #[error("inconsistent plan input: {0}")]
    Inconsistent(String),
}

impl Plan {
    /// Compiles the composite into a plan.
    pub fn new(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
        let box_count = input.box_type_of.len();
        if input.summand_offsets.len() != box_count + 1 {
            return Err(PlanError::Inconsistent("summand offsets".into()));
        }
        let total_local = *input.summand_offsets.last().unwrap_or(&0);
        if total_local != input.local_to_global.len() {
            return Err(PlanError::Inconsistent("local-to-global length".into()));
        }
        if total_local >= u32::MAX as usize || input.apex >= u32::MAX as usize {
            return Err(PlanError::TooLarge(total_local.max(input.apex)));
        }
        // Group boxes by type, keeping box order inside each group.
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); input.box_types.len()];
        for (b, &t) in input.box_type_of.iter().enumerate() {
            let t = t as usize;
            if t >= members.len() {
                return Err(PlanError::Inconsistent(format!("box {b} has type {t}")));
            }
            let arity = input.summand_offsets[b + 1] - input.summand_offsets[b];
            if arity != input.box_types[t].num_inputs() {
                return Err(PlanError::Inconsistent(format!(
                    "box {b} has {arity} local coordinates, its type {}",
                    input.box_types[t].num_inputs()
                )));
            }
            members[t].push(b as u32);
        }
        let mut groups = Vec::new();
        let mut slot = 0usize;
        for (t, boxes) in members.into_iter().enumerate() {
            if boxes.is_empty() {
                continue;
            }
            let objective = input.box_types[t].clone();
            let batched = objective.is_batchable() && boxes.len() > 1;
            let arity = objective.num_inputs();
            groups.push(BoxGroup {
                objective,
                boxes,
                slot_start: slot,
                batched,
            });
            slot += groups.last().map_or(0, |g| g.boxes.len() * arity);
        }
        // Gather table: the global coordinate each local slot reads; and, for each local
        // coordinate of the coproduct, its slot.
        let mut gather = vec![0u32; total_local];
        let mut slot_of_local = vec![0u32; total_local];
        for group in &groups {
            let arity = group.arity();
            for (first, count, start) in group.chunks() {
                for k in 0..count {
                    let b = group.boxes[first + k] as usize;
                    let base = input.summand_offsets[b];
                    for i in 0..arity {
                        let s = start + i * count + k;
                        let g = input.local_to_global[base + i];
                        if g >= input.apex {
                            return Err(PlanError::Inconsistent(format!(
                                "box {b} maps to coordinate {g} of {}",
                                input.apex
                            )));
                        }
                        gather[s] = g as u32;
                        slot_of_local[base + i] = s as u32;
                    }
                }
            }
        }
        // CSR transpose of the gather, contributions sorted by box (stable by local index).
        let mut contribution_offsets = vec![0u32; input.apex + 1];
        for &g in &gather {
            contribution_offsets[g as usize + 1] += 1;
        }
        for g in 0..input.apex {
            contribution_offsets[g + 1] += contribution_offsets[g];
        }
        // Fill in coproduct order, i.e. box order (then local index order): this fixes the
        // summation order of every shared coordinate.
        let mut cursor: Vec<u32> = contribution_offsets[..input.apex].to_vec();
        let mut contributions = vec![0u32; total_local];
        for (local, &g) in input.local_to_global.iter().enumerate() {
            let c = &mut cursor[g];
            contributions[*c as usize] = slot_of_local[local];
            *c += 1;
        }
        drop(cursor);
        // Values buffer order: group-major; remember each box's position if that is not
        // box order.
        let in_box_order = groups
            .iter()
            .flat_map(|g| g.boxes.iter())
            .enumerate()
            .all(|(i, &b)| i == b as usize);
        let value_order = if in_box_order {
            Vec::new()
        } else {
            let mut order = vec![0u32; box_count];
            let mut position = 0u32;
            for group in &groups {
                for &b in &group.boxes {
                    order[b as usize] = position;
                    position += 1;
                }
            }
            order
        };
        Ok(Plan {
            apex: input.apex,
            box_count,
            groups,
            gather,
            contribution_offsets,
            contributions,
            value_order,
        })
    }

    /// Number of global scalar coordinates.
    pub fn apex(&self) -> usize {
        self.apex
    }

    /// Number of boxes.
    pub fn box_count(&self) -> usize {
        self.box_count
    }

    /// The box groups (one per box type).
    pub fn groups(&self) -> &[BoxGroup] {
        &self.groups
    }

    /// Total number of local slots (sum of the boxes' arities).
    pub fn local_len(&self) -> usize {
        self.gather.len()
    }
}

/// Where a plan's box evaluations and reductions run. Every backend follows the plan's
/// fixed summation order, so they all produce the same bits.
pub enum Backend {
    /// One thread, the reference.
    Serial,
    /// A rayon thread pool.
    Threads(rayon::ThreadPool),
}

impl Backend {
    /// The serial backend.
    pub fn serial() -> Backend {
        Backend::Serial
    }

    /// A thread-pool backend with `threads` workers (0: one per core).
    pub fn threads(threads: usize) -> Result<Backend, String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("catopt-worker-{i}"))
            .build()
            .map(Backend::Threads)
            .map_err(|e| e.to_string())
    }

    /// A short name (`serial` or `threads`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Serial => "serial",
            Backend::Threads(_) => "threads",
        }
    }

    /// Number of worker threads.
    pub fn thread_count(&self) -> usize {
        match self {
            Backend::Serial => 1,
            Backend::Threads(pool) => pool.current_num_threads(),
        }
    }
}

/// Scratch space for evaluating one group's chunk on one thread.
struct GroupScratch {
    inputs: Vec<f64>,
    single: Option<Workspace>,
    batch: Option<BatchWorkspace>,
}

/// Per-thread scratch for every group.
struct ThreadScratch {
    groups: Vec<GroupScratch>,
}

impl ThreadScratch {
    fn new(plan: &Plan) -> ThreadScratch {
        ThreadScratch {
            groups: plan
                .groups
                .iter()
                .map(|g| {
                    let chunk = g.chunk_size().min(g.boxes.len());
                    GroupScratch {
                        inputs: vec![0.0; chunk * g.arity()],
                        single: (!g.batched).then(|| g.objective.workspace()),
                        batch: g.batched.then(|| g.objective.batch_workspace(chunk)),
                    }
                })
                .collect(),
        }
    }
}

/// The result of evaluating the composite objective and its gradient at a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The composite objective: the sum of the boxes' objectives, in box order.
    pub objective: f64,
    /// The Euclidean norm of the composite gradient.
    pub gradient_norm: f64,
}

/// A plan with its buffers and backend: evaluates the composite's gradient by the
/// distributed algorithm (gather, local gradients, scatter-add in box order). After
/// construction, [`Executor::evaluate`] allocates nothing.
pub struct Executor {
    plan: Arc<Plan>,
    backend: Backend,
    scratch: Vec<std::sync::Mutex<ThreadScratch>>,
    /// Local gradients, one per local slot (the boxes' own gradient steps).
    local_gradient: Vec<f64>,
    /// Box values, group-major.
    values: Vec<f64>,
    /// The composite gradient.
    gradient: Vec<f64>,
    /// Per-block partial sums (deterministic blocked reductions).
    partials: Vec<f64>,
}

impl Executor {
    /// Prepares buffers for running `plan` on `backend`.
    pub fn new(plan: Arc<Plan>, backend: Backend) -> Executor {
        let threads = backend.thread_count();
        let scratch = (0..threads)
            .map(|_| std::sync::Mutex::new(ThreadScratch::new(&plan)))
            .collect();
        let blocks = plan
            .apex
            .div_ceil(SUM_BLOCK)
            .max(plan.box_count.div_ceil(SUM_BLOCK));
        Executor {
            local_gradient: vec![0.0; plan.local_len()],
            values: vec![0.0; plan.box_count],
            gradient: vec![0.0; plan.apex],
            partials: vec![0.0; blocks],
            scratch,
            plan,
            backend,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The composite gradient of the last evaluation.
    pub fn gradient(&self) -> &[f64] {
        &self.gradient
    }

    /// The value of box `b` at the last evaluation.
    pub fn box_value(&self, b: usize) -> f64 {
        if self.plan.value_order.is_empty() {
            self.values[b]
        } else {
            self.values[self.plan.value_order[b] as usize]
        }
    }

    /// Evaluates every box's value and local gradient at `state` (the global coordinates),
    /// adds the local gradients on shared coordinates in box order, and returns the
    /// composite objective and gradient norm. The gradient is then in [`Executor::gradient`].
    pub fn evaluate(&mut self, state: &[f64]) -> Evaluation {
        assert_eq!(state.len(), self.plan.apex, "state length");
        let Executor {
            plan,
            backend,
            scratch,
            local_gradient,
            values,
            gradient,
            partials,
        } = self;
        let plan: &Plan = plan;
        match backend {
            Backend::Serial => {
                let mut scratch = scratch[0].lock().unwrap_or_else(|e| e.into_inner());
                let mut value_start = 0;
                for (gi, group) in plan.groups.iter().enumerate() {
                    let n = group.boxes.len();
                    let region =
                        &mut local_gradient[group.slot_start..group.slot_start + n * group.arity()];
                    let gather =
                        &plan.gather[group.slot_start..group.slot_start + n * group.arity()];
                    let chunk_slots = group.chunk_size() * group.arity();
                    for ((grad, gather), vals) in region
                        .chunks_mut(chunk_slots)
                        .zip(gather.chunks(chunk_slots))
                        .zip(values[value_start..value_start + n].chunks_mut(group.chunk_size()))
                    {
                        evaluate_chunk(group, &mut scratch.groups[gi], state, gather, vals, grad);
                    }
                    value_start += n;
                }
                for (block, partial) in gradient.chunks_mut(SUM_BLOCK).enumerate() {
                    *partial_slot(partials, block) =
                        reduce_block(plan, local_gradient, block, partial);
                }
            }
            Backend::Threads(pool) => pool.install(|| {
                use rayon::prelude::*;
                let mut value_start = 0;
                for (gi, group) in plan.groups.iter().enumerate() {
                    let n = group.boxes.len();
                    let region =
                        &mut local_gradient[group.slot_start..group.slot_start + n * group.arity()];
                    let gather =
                        &plan.gather[group.slot_start..group.slot_start + n * group.arity()];
                    let chunk_slots = group.chunk_size() * group.arity();
                    region
                        .par_chunks_mut(chunk_slots)
                        .zip(gather.par_chunks(chunk_slots))
                        .zip(
                            values[value_start..value_start + n].par_chunks_mut(group.chunk_size()),
                        )
                        .for_each(|((grad, gather), vals)| {
                            let thread = rayon::current_thread_index().unwrap_or(0);
                            let mut scratch = scratch[thread % scratch.len()]
                                .lock()
                                .unwrap_or_else(|e| e.into_inner());
                            evaluate_chunk(
                                group,
                                &mut scratch.groups[gi],
                                state,
                                gather,
                                vals,
                                grad,
                            );
                        });
                    value_start += n;
                }
                let local_gradient: &[f64] = local_gradient;
                gradient
                    .par_chunks_mut(SUM_BLOCK)
                    .zip(partials.par_iter_mut())
                    .enumerate()
                    .for_each(|(block, (chunk, partial))| {
                        *partial = reduce_block(plan, local_gradient, block, chunk);
                    });
            }),
        }
        let gradient_blocks = self.gradient.len().div_ceil(SUM_BLOCK);
        let squared_norm: f64 = self.partials[..gradient_blocks].iter().sum();
        let objective = self.blocked_objective();
        Evaluation {
            objective,
            gradient_norm: squared_norm.sqrt(),
        }
    }

    /// The sum of the box values in box order, by fixed blocks (same bits on every backend).
    fn blocked_objective(&self) -> f64 {
        let n = self.plan.box_count;
        let mut total = 0.0;
        for start in (0..n).step_by(SUM_BLOCK) {
            let mut block = 0.0;
            for b in start..(start + SUM_BLOCK).min(n) {
                block += self.box_value(b);
            }
            total += block;
        }
        total
    }

    /// The first box (in box order) whose value or local gradient is not finite, if any.
    pub fn first_non_finite_box(&self) -> Option<usize> {
        let mut worst: Option<usize> = None;
        let mut value_start = 0;
        for group in &self.plan.groups {
            let arity = group.arity();
            for (first, count, start) in group.chunks() {
                for k in 0..count {
                    let b = group.boxes[first + k] as usize;
                    if worst.is_some_and(|w| w <= b) {
                        continue;
                    }
                    let value_ok = self.values[value_start + first + k].is_finite();
                    let gradient_ok =
                        (0..arity).all(|i| self.local_gradient[start + i * count + k].is_finite());
                    if !(value_ok && gradient_ok) {
                        worst = Some(b);
                    }
                }
            }
            value_start += group.boxes.len();
        }
        worst
    }
}

fn partial_slot(partials: &mut [f64], block: usize) -> &mut f64 {
    &mut partials[block]
}

/// Sums the contributions of one block of global coordinates (in box order) into `out`,
/// and returns the block's sum of squares.
fn reduce_block(plan: &Plan, local_gradient: &[f64], block: usize, out: &mut [f64]) -> f64 {
    let first = block * SUM_BLOCK;
    let mut squares = 0.0;
    for (j, slot) in out.iter_mut().enumerate() {
        let g = first + j;
        let range =
            plan.contribution_offsets[g] as usize..plan.contribution_offsets[g + 1] as usize;
        let mut sum = 0.0;
        for &s in &plan.contributions[range] {
            sum += local_gradient[s as usize];
        }
        *slot = sum;
        squares += sum * sum;
    }
    squares
}

/// Gathers one chunk's inputs and evaluates its boxes' values and local gradients.
fn evaluate_chunk(
    group: &BoxGroup,
    scratch: &mut GroupScratch,
    state: &[f64],
    gather: &[u32],
    values: &mut [f64],
    gradient: &mut [f64],
) {
    let inputs = &mut scratch.inputs[..gather.len()];
    for (x, &g) in inputs.iter_mut().zip(gather) {
        *x = state[g as usize];
    }
    if let Some(batch) = scratch.batch.as_mut() {
        group
            .objective
            .batch_value_and_gradient(batch, values.len(), inputs, values, gradient);
    } else if let Some(single) = scratch.single.as_mut() {
        values[0] = group.objective.value_and_gradient(single, inputs, gradient);
    }
}
