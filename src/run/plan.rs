//! The execution plan: a composite compiled once into gather/scatter index arrays and
//! batched kernels, so that each step of distributed gradient descent allocates nothing.
//!
//! **Layout.** Boxes are grouped by box type (one compiled objective). Each group is cut
//! into chunks of at most [`CHUNK`] boxes, evaluated together by one batched kernel call
//! (or one box per chunk for objectives that are not batchable, such as matrix-valued
//! ones). A chunk of `c` boxes of arity `n` owns `c * n` consecutive *slots*, input-major
//! (`slot = i * c + k` for input `i` of the chunk's `k`-th box): `gather[slot]` is the global
//! coordinate that input reads, and the same layout is the kernel's input and gradient.
//!
//! **The fixed summation order.** Each box's local gradient is added onto the composite
//! gradient (the scatter-add, the transpose of the gather) in *plan order*: chunk after
//! chunk, and inside a chunk box after box, each box's inputs in order. The first
//! contribution to a coordinate is written as `0.0 + c`, the others added. When the groups
//! occupy consecutive runs of boxes (a single box type, or types in separate runs, as in
//! every loop over one objective), plan order is box order, which is the order in which
//! the category core's composite objective sums its boxes' pulled-back gradients: the run
//! then equals central gradient descent bit for bit ([`Plan::is_in_box_order`]).
//!
//! How the chunks are split over threads or ranks is [`crate::run::partition`]; running a
//! plan is [`crate::run::executor`].

use super::lanes::{bit, set_bit};
use crate::lower::Minibatches;
use crate::numerics::{BoxData, CompiledObjective, KernelChoice, KernelNote};
use std::sync::Arc;

/// The largest number of boxes evaluated together by one batched kernel call.
pub const CHUNK: usize = 512;

/// Block size of the deterministic blocked sum of squares (gradient norm). Small enough
/// that a distributed run seldom has to send entries to the rank that sums a block
/// (a chain's chunk of [`CHUNK`] boxes covers whole blocks), large enough that the
/// per-block partial sums stay few.
pub const SUM_BLOCK: usize = 512;

/// The largest number of coordinates a plan addresses (u32 indices).
const MAX_COORDINATES: usize = u32::MAX as usize;

/// One box type of a composite: a compiled objective and the boxes that instantiate it.
#[derive(Clone)]
pub struct BoxGroup {
    /// The box type's objective (its decision vector: ports, then private variables).
    pub objective: Arc<CompiledObjective>,
    /// The boxes of this type, in increasing box order.
    pub boxes: Vec<u32>,
    /// Whether the objective is evaluated by the batched (vectorised) kernel.
    pub(crate) batched: bool,
    /// Which code runs the batched kernel (native code, or the interpreter and why).
    pub(crate) kernels: KernelNote,
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

    /// Which code runs the batched kernel, and for native code its generation time.
    pub fn kernel_note(&self) -> &KernelNote {
        &self.kernels
    }

    pub(crate) fn chunk_size(&self) -> usize {
        if self.batched {
            CHUNK
        } else {
            1
        }
    }
}

/// How a chunk's slots map to global coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Input `i` of the chunk's `k`-th box reads coordinate `bases[i] + k`: each input is
    /// one run of consecutive coordinates (loops over junction families). The chunk's
    /// `arity` entries `Plan::bases[offset..]` are `(base, input)` pairs sorted by base
    /// descending, then input ascending: the order in which the scatter visits the inputs.
    PerInputRuns { offset: usize },
    /// One box whose slots form runs of consecutive coordinates, described by
    /// `Plan::runs[offset..offset + count]`.
    Runs { offset: usize, count: usize },
    /// Any other wiring: `Plan::gather[offset..]`, one coordinate per slot.
    Indexed { offset: usize },
}

/// A run of boxes of one group evaluated by one kernel call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk {
    pub(crate) group: u32,
    pub(crate) first_member: u32,
    pub(crate) count: u32,
    pub(crate) slot_start: usize,
    pub(crate) layout: Layout,
    /// Batched chunks of a type with per-box data: where the chunk's data starts in
    /// `Plan::batch_data` (entry `j` of its `k`-th box at `data_start + j * count + k`).
    pub(crate) data_start: usize,
}

/// Consecutive slots reading consecutive coordinates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub(crate) slot: u32,
    pub(crate) coordinate: u32,
    pub(crate) len: u32,
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
    /// Each box's data vector, for box types with per-box data
    /// ([`CompiledObjective::data_len`]); [`BoxData::none`] otherwise.
    pub box_data: Arc<BoxData>,
}

/// A composite compiled for running: index arrays and groups; immutable and shareable.
pub struct Plan {
    pub(crate) apex: usize,
    pub(crate) box_count: usize,
    pub(crate) groups: Vec<BoxGroup>,
    pub(crate) chunks: Vec<Chunk>,
    /// Coordinates of the slots of `Indexed` chunks.
    pub(crate) gather: Vec<u32>,
    /// `(base, input)` pairs of `PerInputRuns` chunks (scatter order).
    pub(crate) bases: Vec<(u32, u32)>,
    /// The same bases in input order, as the kernel's input offsets into the state.
    pub(crate) input_bases: Vec<usize>,
    /// Runs of `Runs` chunks.
    pub(crate) runs: Vec<Run>,
    /// Bit per slot: the first contribution (in plan order) to its coordinate.
    pub(crate) first: Vec<u64>,
    pub(crate) in_box_order: bool,
    /// The boxes' data vectors (read in place by chunks of one box).
    pub(crate) box_data: Arc<BoxData>,
    /// The data of batched chunks of types with per-box data, laid out as the batched
    /// kernel reads it (entry-major in each chunk, like the slots).
    pub(crate) batch_data: Vec<f64>,
    /// In a minibatch run: where the sampled boxes' rows come from (their data vectors
    /// are refilled at each step, `run::minibatch`).
    pub(crate) minibatches: Option<Arc<Minibatches>>,
}

/// Why a plan could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// More coordinates than the index arrays can address.
    #[error("the composite has {0} coordinates; at most 4294967295 are supported")]
    TooLarge(usize),
    /// Inconsistent input (a bug in the caller).
    #[error("inconsistent plan input: {0}")]
    Inconsistent(String),
}

impl Plan {
    /// Compiles a lowered problem's composite into a plan, with the batched kernels
    /// `CATOPT_KERNELS` asks for ([`KernelChoice::from_env`], the interpreter by default).
    pub fn for_problem(problem: &crate::lower::Problem) -> Result<Plan, PlanError> {
        let mut plan = Plan::new(&PlanInput {
            apex: problem.composite.apex(),
            box_types: &problem.compiled_box_types(),
            box_type_of: &problem.box_type_of,
            local_to_global: problem.composite.boxes_to_apex().table(),
            summand_offsets: problem.composite.box_offsets(),
            box_data: problem.box_data.clone(),
        })?;
        if let Some(minibatches) = &problem.minibatches {
            // A sampled box's data is a vector or matrix, so its type is never batched:
            // each sampled box is a chunk of its own, whose data the sweep reads from the
            // worker's minibatch buffer instead of `box_data`.
            for group in &plan.groups {
                if group.batched
                    && group
                        .boxes
                        .iter()
                        .any(|&b| minibatches.of_box(b as usize).is_some())
                {
                    return Err(PlanError::Inconsistent(
                        "a batched group has sampled data".into(),
                    ));
                }
            }
            plan.minibatches = Some(minibatches.clone());
        }
        plan.set_kernels(KernelChoice::from_env());
        Ok(plan)
    }

    /// Where the sampled boxes' rows come from, in a minibatch run.
    pub fn minibatches(&self) -> Option<&Arc<Minibatches>> {
        self.minibatches.as_ref()
    }

    /// Runs every batched group's kernel as `choice` says: native code generated now
    /// (where the objective and the machine allow it, the interpreter otherwise), or the
    /// interpreter. The results are the same bit for bit; each group's
    /// [`kernel_note`](BoxGroup::kernel_note) says which runs.
    pub fn set_kernels(&mut self, choice: KernelChoice) {
        for group in self.groups.iter_mut().filter(|g| g.batched) {
            let (objective, note) = group.objective.with_kernels(choice);
            group.objective = Arc::new(objective);
            group.kernels = note;
        }
    }

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
        if input.apex > MAX_COORDINATES || total_local > MAX_COORDINATES {
            return Err(PlanError::TooLarge(input.apex));
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
            let data = input.box_data.of_box(b).len();
            if data != input.box_types[t].data_len() {
                return Err(PlanError::Inconsistent(format!(
                    "box {b} has {data} data values, its type {}",
                    input.box_types[t].data_len()
                )));
            }
            members[t].push(b as u32);
        }
        // Groups in order of their first box, so that runs of types keep box order.
        let mut groups: Vec<BoxGroup> = members
            .into_iter()
            .enumerate()
            .filter(|(_, boxes)| !boxes.is_empty())
            .map(|(t, boxes)| {
                let objective = input.box_types[t].clone();
                let batched = objective.is_batchable() && boxes.len() > 1;
                BoxGroup {
                    objective,
                    boxes,
                    batched,
                    kernels: KernelNote::Interpreted,
                }
            })
            .collect();
        groups.sort_by_key(|g| g.boxes[0]);
        let in_box_order = groups
            .iter()
            .flat_map(|g| g.boxes.iter())
            .enumerate()
            .all(|(i, &b)| i == b as usize);
        // Chunks in plan order, each with the most compact layout that describes it.
        let mut chunks = Vec::new();
        let mut gather = Vec::new();
        let mut bases = Vec::new();
        let mut runs = Vec::new();
        let mut slot = 0usize;
        let mut coordinates = Vec::new();
        let mut batch_data = Vec::new();
        for (gi, group) in groups.iter().enumerate() {
            let arity = group.arity();
            let size = group.chunk_size();
            let data_len = group.objective.data_len();
            for first in (0..group.boxes.len()).step_by(size) {
                let count = size.min(group.boxes.len() - first);
                coordinates.clear();
                coordinates.resize(count * arity, 0u32);
                for k in 0..count {
                    let b = group.boxes[first + k] as usize;
                    let base = input.summand_offsets[b];
                    for i in 0..arity {
                        let g = input.local_to_global[base + i];
                        if g >= input.apex {
                            return Err(PlanError::Inconsistent(format!(
                                "box {b} maps to coordinate {g} of {}",
                                input.apex
                            )));
                        }
                        coordinates[i * count + k] = g as u32;
                    }
                }
                let layout = choose_layout(
                    &coordinates,
                    count,
                    arity,
                    &mut gather,
                    &mut bases,
                    &mut runs,
                );
                let data_start = batch_data.len();
                if group.batched && data_len > 0 {
                    let boxes = &group.boxes[first..first + count];
                    for j in 0..data_len {
                        batch_data
                            .extend(boxes.iter().map(|&b| input.box_data.of_box(b as usize)[j]));
                    }
                }
                chunks.push(Chunk {
                    group: gi as u32,
                    first_member: first as u32,
                    count: count as u32,
                    slot_start: slot,
                    layout,
                    data_start,
                });
                slot += count * arity;
            }
        }
        let mut input_bases = vec![0usize; bases.len()];
        for chunk in &chunks {
            if let Layout::PerInputRuns { offset } = chunk.layout {
                let arity = groups[chunk.group as usize].arity();
                for &(base, i) in &bases[offset..offset + arity] {
                    input_bases[offset + i as usize] = base as usize;
                }
            }
        }
        let mut plan = Plan {
            apex: input.apex,
            box_count,
            groups,
            chunks,
            gather,
            bases,
            input_bases,
            runs,
            first: vec![0u64; slot.div_ceil(64)],
            in_box_order,
            box_data: input.box_data.clone(),
            batch_data,
            minibatches: None,
        };
        // Mark each coordinate's first contribution in plan order (box-major in a chunk).
        let mut seen = vec![0u64; input.apex.div_ceil(64)];
        let mut first = std::mem::take(&mut plan.first);
        for chunk in &plan.chunks {
            plan.for_each_slot(chunk, |s, g| {
                if !bit(&seen, g) {
                    set_bit(&mut seen, g);
                    set_bit(&mut first, s);
                }
            });
        }
        plan.first = first;
        Ok(plan)
    }

    /// Calls `visit(slot, coordinate)` for every slot of `chunk`, in plan order (box after
    /// box, each box's inputs in order).
    pub(crate) fn for_each_slot(&self, chunk: &Chunk, mut visit: impl FnMut(usize, usize)) {
        let count = chunk.count as usize;
        let arity = self.groups[chunk.group as usize].arity();
        if let Layout::PerInputRuns { offset } = chunk.layout {
            // Input i of the k-th box reads `input_bases[i] + k`: no search per slot.
            let bases = &self.input_bases[offset..offset + arity];
            for k in 0..count {
                for (i, &base) in bases.iter().enumerate() {
                    visit(chunk.slot_start + i * count + k, base + k);
                }
            }
            return;
        }
        for k in 0..count {
            for i in 0..arity {
                let s = i * count + k;
                visit(chunk.slot_start + s, self.coordinate(chunk, s));
            }
        }
    }

    /// The coordinate read by slot `s` (relative to the chunk) of `chunk`.
    pub(crate) fn coordinate(&self, chunk: &Chunk, s: usize) -> usize {
        let count = chunk.count as usize;
        match chunk.layout {
            Layout::PerInputRuns { offset } => {
                let arity = self.groups[chunk.group as usize].arity();
                let input = (s / count) as u32;
                let (base, _) = self.bases[offset..offset + arity]
                    .iter()
                    .find(|&&(_, i)| i == input)
                    .copied()
                    .unwrap_or_default();
                base as usize + s % count
            }
            Layout::Runs { offset, count: n } => {
                let runs = &self.runs[offset..offset + n];
                let r = runs.partition_point(|run| run.slot as usize <= s) - 1;
                runs[r].coordinate as usize + (s - runs[r].slot as usize)
            }
            Layout::Indexed { offset } => self.gather[offset + s] as usize,
        }
    }

    /// The data the kernel call of `chunk` reads: its boxes' data vectors, entry-major for
    /// a batched chunk, the box's own vector for a chunk of one box (empty without
    /// per-box data).
    pub(crate) fn chunk_data(&self, chunk: &Chunk) -> &[f64] {
        let group = &self.groups[chunk.group as usize];
        let len = group.objective.data_len();
        if len == 0 {
            return &[];
        }
        if group.batched {
            &self.batch_data[chunk.data_start..chunk.data_start + len * chunk.count as usize]
        } else {
            self.box_data
                .of_box(group.boxes[chunk.first_member as usize] as usize)
        }
    }

    /// Box `b`'s data vector (empty without per-box data).
    pub(crate) fn box_data(&self, b: usize) -> &[f64] {
        self.box_data.of_box(b)
    }

    /// Number of global scalar coordinates.
    pub fn apex(&self) -> usize {
        self.apex
    }

    /// Number of boxes.
    pub fn box_count(&self) -> usize {
        self.box_count
    }

    /// The box groups (one per box type), in order of their first box.
    pub fn groups(&self) -> &[BoxGroup] {
        &self.groups
    }

    /// Number of kernel calls per evaluation.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Total number of slots (the sum of the boxes' arities): the numbers gathered and
    /// scattered per evaluation.
    pub fn local_len(&self) -> usize {
        self.chunks.last().map_or(0, |c| {
            c.slot_start + c.count as usize * self.groups[c.group as usize].arity()
        })
    }

    /// True when plan order is box order, so the run's summation order is the category
    /// core's and the iterates equal central gradient descent bit for bit.
    pub fn is_in_box_order(&self) -> bool {
        self.in_box_order
    }

    pub(crate) fn chunk_cost(&self, chunk: &Chunk) -> usize {
        let group = &self.groups[chunk.group as usize];
        chunk.count as usize * (group.objective.num_nodes() + group.arity())
    }

    /// Calls `visit(coordinate)` for every slot of chunk `c`, in plan order.
    pub(crate) fn for_each_coordinate_of_chunk(&self, c: usize, mut visit: impl FnMut(usize)) {
        self.for_each_slot(&self.chunks[c], |_, g| visit(g));
    }

    /// The boxes of chunk `c`, in plan order.
    pub(crate) fn chunk_boxes(&self, c: usize) -> &[u32] {
        let chunk = &self.chunks[c];
        let first = chunk.first_member as usize;
        &self.groups[chunk.group as usize].boxes[first..first + chunk.count as usize]
    }
}

/// The most compact layout for a chunk's coordinates (`coordinates[i * count + k]`),
/// appending its data to the plan's tables.
fn choose_layout(
    coordinates: &[u32],
    count: usize,
    arity: usize,
    gather: &mut Vec<u32>,
    bases: &mut Vec<(u32, u32)>,
    runs: &mut Vec<Run>,
) -> Layout {
    let per_input_run = count > 1
        && (0..arity).all(|i| {
            let input = &coordinates[i * count..(i + 1) * count];
            input.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
        });
    if per_input_run {
        let offset = bases.len();
        let mut pairs: Vec<(u32, u32)> = (0..arity)
            .map(|i| (coordinates[i * count], i as u32))
            .collect();
        pairs.sort_by_key(|&(base, input)| (std::cmp::Reverse(base), input));
        bases.extend(pairs);
        return Layout::PerInputRuns { offset };
    }
    if count == 1 {
        let mut chunk_runs: Vec<Run> = Vec::new();
        for (s, &g) in coordinates.iter().enumerate() {
            match chunk_runs.last_mut() {
                Some(run) if run.coordinate + run.len == g => run.len += 1,
                _ => chunk_runs.push(Run {
                    slot: s as u32,
                    coordinate: g,
                    len: 1,
                }),
            }
        }
        // Worth it when runs are long on average.
        if chunk_runs.len() * 4 <= coordinates.len() {
            let offset = runs.len();
            let n = chunk_runs.len();
            runs.extend(chunk_runs);
            return Layout::Runs { offset, count: n };
        }
    }
    let offset = gather.len();
    gather.extend_from_slice(coordinates);
    Layout::Indexed { offset }
}
