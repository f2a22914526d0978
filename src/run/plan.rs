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
//! **Backends.** The serial backend sweeps the chunks in order. The threads backend splits
//! the chunk sequence into one contiguous range per worker, balanced by cost; a worker adds
//! directly onto the coordinates that its range touches first and defers its contributions
//! to coordinates that an earlier range touched, which are then added range by range, in
//! order. Every coordinate therefore sums its contributions in plan order whatever the
//! number of threads: all backends give the same bits.

use super::distribute::{Item, RankSchedule, Source};
use super::norm::{block_partial, norm_of_partials};
use super::shared_slice::SharedSlice;
use super::transport::Transport;
use crate::numerics::{BatchWorkspace, CompiledObjective, Workspace};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The largest number of boxes evaluated together by one batched kernel call.
pub const CHUNK: usize = 512;

/// Block size of the deterministic blocked sum of squares (gradient norm). Small enough
/// that a distributed run seldom has to send entries to the rank that sums a block
/// (a chain's chunk of [`CHUNK`] boxes covers whole blocks), large enough that the
/// per-block partial sums stay few.
pub const SUM_BLOCK: usize = 512;

/// Below this many slots (numbers gathered per evaluation), the threads backend runs the
/// sweep on the calling thread unless [`Executor::calibrate`] measures that an evaluation
/// is slow enough to be worth splitting: handing tiny work to the pool costs more than it
/// saves. The bits are the same either way.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// The largest number of coordinates a plan addresses (u32 indices).
const MAX_COORDINATES: usize = u32::MAX as usize;

fn bit(bits: &[u64], i: usize) -> bool {
    (bits[i >> 6] >> (i & 63)) & 1 != 0
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i >> 6] |= 1 << (i & 63);
}

/// `Some(b)` when bits `start..start + len` all equal `b`; `None` when they are mixed.
fn bits_uniform(bits: &[u64], start: usize, len: usize) -> Option<bool> {
    if len == 0 {
        return Some(false);
    }
    let value = bit(bits, start);
    let mut i = start;
    let end = start + len;
    while i < end {
        if i & 63 == 0 && i + 64 <= end {
            let word = bits[i >> 6];
            if word != if value { u64::MAX } else { 0 } {
                return None;
            }
            i += 64;
        } else {
            if bit(bits, i) != value {
                return None;
            }
            i += 1;
        }
    }
    Some(value)
}

/// The sum of squares in a fixed order (eight interleaved partial sums, as
/// [`fixed_order_sum`]).
pub fn sum_of_squares(values: &[f64]) -> f64 {
    fixed_order_fold(values, |v| v * v)
}

/// A sum in a fixed order that does not depend on the backend: eight interleaved partial
/// sums, added pairwise at the end (faster than one dependent chain, same bits every run).
pub fn fixed_order_sum(values: &[f64]) -> f64 {
    fixed_order_fold(values, |v| v)
}

/// The sum of `term(v)` over `values` in eight interleaved lanes, added pairwise at the end.
#[inline(always)]
pub(crate) fn fixed_order_fold(values: &[f64], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += term(v);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// `target[j] = base + contributions[j]` where `base` is `0.0` (`first`: the coordinate's
/// first contribution) or `target[j]`. Four entries at a time, each group read before it
/// is written, so that the loop vectorises even though `target` may come from a raw
/// pointer.
#[inline(always)]
fn add_slices(target: &mut [f64], contributions: &[f64], first: bool) {
    let len = target.len().min(contributions.len());
    let (target, contributions) = (&mut target[..len], &contributions[..len]);
    let mut targets = target.chunks_exact_mut(4);
    let mut sources = contributions.chunks_exact(4);
    for (t, c) in (&mut targets).zip(&mut sources) {
        let c = [c[0], c[1], c[2], c[3]];
        let base = if first {
            [0.0; 4]
        } else {
            [t[0], t[1], t[2], t[3]]
        };
        let sum = [
            base[0] + c[0],
            base[1] + c[1],
            base[2] + c[2],
            base[3] + c[3],
        ];
        t.copy_from_slice(&sum);
    }
    for (t, &c) in targets.into_remainder().iter_mut().zip(sources.remainder()) {
        let base = if first { 0.0 } else { *t };
        *t = base + c;
    }
}

/// `out[j] = f(a[j], b[j])`, four entries at a time: all four values are computed (their
/// inputs read) before any is stored, so that the loop vectorises even when `out` comes
/// from a raw pointer that might alias the inputs as far as the compiler knows.
#[inline(always)]
fn map2_lanes(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) {
    let len = out.len();
    let (a, b) = (&a[..len], &b[..len]);
    let mut outs = out.chunks_exact_mut(4);
    let mut lhs = a.chunks_exact(4);
    let mut rhs = b.chunks_exact(4);
    for ((o, x), y) in (&mut outs).zip(&mut lhs).zip(&mut rhs) {
        let values = [f(x[0], y[0]), f(x[1], y[1]), f(x[2], y[2]), f(x[3], y[3])];
        o.copy_from_slice(&values);
    }
    for ((o, &x), &y) in outs
        .into_remainder()
        .iter_mut()
        .zip(lhs.remainder())
        .zip(rhs.remainder())
    {
        *o = f(x, y);
    }
}

/// From this many coordinates on, gradient descent writes the proposed iterate with
/// non-temporal (streaming) stores: the iterate buffers then exceed the caches, and a
/// normal store would first read each line of the proposal from memory only to overwrite
/// it. Smaller problems keep the proposal in cache for the next step. The values written
/// are the same either way.
pub const STREAM_FROM: usize = 1 << 19;

/// [`map2_lanes`] with non-temporal stores (x86-64; elsewhere the same as [`map2_lanes`]).
/// The same values; a fence at the end orders the stores before anything that follows
/// (such as handing the iterate to another thread).
#[inline(always)]
fn map2_streaming(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_set_pd, _mm_sfence, _mm_stream_pd};
        let len = out.len();
        let (a, b) = (&a[..len], &b[..len]);
        let mut j = 0;
        // Up to a 16-byte boundary, then two numbers per store.
        while j < len && (out[j..].as_ptr() as usize) % 16 != 0 {
            out[j] = f(a[j], b[j]);
            j += 1;
        }
        while j + 2 <= len {
            let (low, high) = (f(a[j], b[j]), f(a[j + 1], b[j + 1]));
            // SAFETY: `out[j..j + 2]` is in bounds (`j + 2 <= len`, and the slicing checks it
            // again) and 16-byte aligned (the loop above); SSE2 is part of x86-64.
            unsafe { _mm_stream_pd(out[j..j + 2].as_mut_ptr(), _mm_set_pd(high, low)) };
            j += 2;
        }
        if j < len {
            out[j] = f(a[j], b[j]);
        }
        // SAFETY: SSE is part of x86-64; the fence has no memory-safety precondition.
        unsafe { _mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    map2_lanes(out, a, b, f);
}

/// One box type of a composite: a compiled objective and the boxes that instantiate it.
#[derive(Clone)]
pub struct BoxGroup {
    /// The box type's objective (its decision vector: ports, then private variables).
    pub objective: Arc<CompiledObjective>,
    /// The boxes of this type, in increasing box order.
    pub boxes: Vec<u32>,
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
}

/// How a chunk's slots map to global coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
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
struct Chunk {
    group: u32,
    first_member: u32,
    count: u32,
    slot_start: usize,
    layout: Layout,
}

/// Consecutive slots reading consecutive coordinates.
#[derive(Clone, Copy, Debug)]
struct Run {
    slot: u32,
    coordinate: u32,
    len: u32,
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
    chunks: Vec<Chunk>,
    /// Coordinates of the slots of `Indexed` chunks.
    gather: Vec<u32>,
    /// `(base, input)` pairs of `PerInputRuns` chunks (scatter order).
    bases: Vec<(u32, u32)>,
    /// The same bases in input order, as the kernel's input offsets into the state.
    input_bases: Vec<usize>,
    /// Runs of `Runs` chunks.
    runs: Vec<Run>,
    /// Bit per slot: the first contribution (in plan order) to its coordinate.
    first: Vec<u64>,
    in_box_order: bool,
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
    /// Compiles a lowered problem's composite into a plan.
    pub fn for_problem(problem: &crate::lower::Problem) -> Result<Plan, PlanError> {
        Plan::new(&PlanInput {
            apex: problem.composite.apex(),
            box_types: &problem.compiled_box_types(),
            box_type_of: &problem.box_type_of,
            local_to_global: problem.composite.boxes_to_apex().table(),
            summand_offsets: problem.composite.box_offsets(),
        })
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
        for (gi, group) in groups.iter().enumerate() {
            let arity = group.arity();
            let size = group.chunk_size();
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
                chunks.push(Chunk {
                    group: gi as u32,
                    first_member: first as u32,
                    count: count as u32,
                    slot_start: slot,
                    layout,
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
    fn for_each_slot(&self, chunk: &Chunk, mut visit: impl FnMut(usize, usize)) {
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
    fn coordinate(&self, chunk: &Chunk, s: usize) -> usize {
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

    fn chunk_cost(&self, chunk: &Chunk) -> usize {
        let group = &self.groups[chunk.group as usize];
        chunk.count as usize * (group.objective.num_nodes() + group.arity())
    }

    /// Which contributions of the scatter-add each range of a partition (threads or ranks)
    /// adds directly, and which it defers to the ranges before it.
    pub(crate) fn deferrals(&self, ranges: &[Range<usize>]) -> Deferrals {
        let mut deferred = vec![0u64; self.local_len().div_ceil(64)];
        let mut chunk_deferred = vec![false; self.chunks.len()];
        let mut first_toucher = vec![u32::MAX; self.apex];
        let mut lists = Vec::with_capacity(ranges.len());
        for (w, range) in ranges.iter().enumerate() {
            let mut deferred_coordinates = Vec::new();
            for c in range.clone() {
                self.for_each_slot(&self.chunks[c], |s, g| {
                    if first_toucher[g] == u32::MAX {
                        first_toucher[g] = w as u32;
                    } else if first_toucher[g] != w as u32 {
                        set_bit(&mut deferred, s);
                        chunk_deferred[c] = true;
                        deferred_coordinates.push(g as u32);
                    }
                });
            }
            lists.push(deferred_coordinates);
        }
        Deferrals {
            first_toucher,
            deferred,
            chunk_deferred,
            deferred_coordinates: lists,
        }
    }

    /// When each norm block (of [`SUM_BLOCK`] coordinates) of the gradient is complete
    /// during a sweep split into `ranges` (one per worker): right after the chunk that
    /// adds its last contribution, if a single worker adds every contribution to the
    /// block directly (none deferred); after the sweep otherwise.
    pub(crate) fn block_schedule(&self, ranges: &[Range<usize>]) -> BlockSchedule {
        let mut worker_of_chunk = vec![0u32; self.chunks.len()];
        for (w, range) in ranges.iter().enumerate() {
            worker_of_chunk[range.clone()].fill(w as u32);
        }
        let mut first_chunk = vec![u32::MAX; self.apex];
        let mut last_chunk = vec![0u32; self.apex];
        for (c, chunk) in self.chunks.iter().enumerate() {
            self.for_each_slot(chunk, |_, g| {
                if first_chunk[g] == u32::MAX {
                    first_chunk[g] = c as u32;
                }
                last_chunk[g] = c as u32;
            });
        }
        let blocks = self.apex.div_ceil(SUM_BLOCK);
        let mut after: Vec<(u32, u32)> = Vec::with_capacity(blocks);
        let mut after_sweep = Vec::new();
        for block in 0..blocks {
            let start = block * SUM_BLOCK;
            let end = (start + SUM_BLOCK).min(self.apex);
            let mut worker = None;
            let mut done = None;
            let mut single_worker = true;
            for g in start..end {
                if first_chunk[g] == u32::MAX {
                    continue; // no box reads it: its gradient stays 0
                }
                let w = worker_of_chunk[first_chunk[g] as usize];
                if worker_of_chunk[last_chunk[g] as usize] != w || worker.is_some_and(|v| v != w) {
                    single_worker = false;
                    break;
                }
                worker = Some(w);
                done = done.max(Some(last_chunk[g]));
            }
            match done {
                Some(chunk) if single_worker => after.push((chunk, block as u32)),
                _ => after_sweep.push(block as u32),
            }
        }
        after.sort_unstable();
        let mut chunk_starts = Vec::with_capacity(self.chunks.len() + 1);
        let mut at = 0;
        for c in 0..=self.chunks.len() {
            while at < after.len() && (after[at].0 as usize) < c {
                at += 1;
            }
            chunk_starts.push(at as u32);
        }
        BlockSchedule {
            chunk_starts,
            blocks: after.into_iter().map(|(_, block)| block).collect(),
            after_sweep,
        }
    }

    /// Checks what the threaded sweep's `unsafe` code rests on ([`SweepContext::sweep`]),
    /// for a partition `ranges` of the chunks with its `deferrals` and `blocks`: the ranges
    /// are contiguous and in order; the coordinates that different ranges write directly
    /// (slots not deferred) are pairwise disjoint; and every block finished during the
    /// sweep, after a chunk of range `w`, receives no deferred contribution and no direct
    /// write from another range. Run by [`Executor::new`] in debug builds, and by tests.
    pub(crate) fn check_disjoint_writes(
        &self,
        ranges: &[Range<usize>],
        deferrals: &Deferrals,
        blocks: &BlockSchedule,
    ) -> Result<(), String> {
        let mut end = 0;
        for range in ranges {
            if range.start != end || range.end < range.start {
                return Err(format!("range {range:?} does not follow chunk {end}"));
            }
            end = range.end;
        }
        if end != self.chunks.len() {
            return Err(format!(
                "the ranges end at chunk {end} of {}",
                self.chunks.len()
            ));
        }
        const NONE: u32 = u32::MAX;
        let mut writer = vec![NONE; self.apex];
        let mut deferred_to = vec![false; self.apex];
        let mut clash = None;
        for (w, range) in ranges.iter().enumerate() {
            for c in range.clone() {
                self.for_each_slot(&self.chunks[c], |s, g| {
                    if bit(&deferrals.deferred, s) {
                        deferred_to[g] = true;
                    } else if writer[g] == NONE {
                        writer[g] = w as u32;
                    } else if writer[g] != w as u32 {
                        clash.get_or_insert((g, writer[g], w));
                    }
                });
            }
        }
        if let Some((g, first, second)) = clash {
            return Err(format!(
                "ranges {first} and {second} both write coordinate {g}"
            ));
        }
        let mut finished = vec![false; self.apex.div_ceil(SUM_BLOCK)];
        for (w, range) in ranges.iter().enumerate() {
            for c in range.clone() {
                for &block in blocks.after_chunk(c) {
                    let block = block as usize;
                    if block >= finished.len() || std::mem::replace(&mut finished[block], true) {
                        return Err(format!("block {block} is missing or finished twice"));
                    }
                    let start = block * SUM_BLOCK;
                    for g in start..(start + SUM_BLOCK).min(self.apex) {
                        if deferred_to[g] || (writer[g] != NONE && writer[g] != w as u32) {
                            return Err(format!(
                                "range {w} finishes block {block}, but coordinate {g} is \
                                 written by another range"
                            ));
                        }
                    }
                }
            }
        }
        for &block in &blocks.after_sweep {
            let block = block as usize;
            if block >= finished.len() || std::mem::replace(&mut finished[block], true) {
                return Err(format!("block {block} is missing or finished twice"));
            }
        }
        Ok(())
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

    /// Splits the chunks into `parts` contiguous ranges of about equal cost (the box
    /// objective's size times the number of boxes), in plan order.
    pub(crate) fn partition(&self, parts: usize) -> Vec<Range<usize>> {
        let parts = parts.clamp(1, self.chunks.len().max(1));
        let total: usize = self.chunks.iter().map(|c| self.chunk_cost(c)).sum();
        let mut ranges = Vec::with_capacity(parts);
        let mut start = 0;
        let mut cumulative = 0;
        for (c, chunk) in self.chunks.iter().enumerate() {
            cumulative += self.chunk_cost(chunk);
            let target = total * (ranges.len() + 1) / parts;
            if cumulative >= target && ranges.len() + 1 < parts {
                ranges.push(start..c + 1);
                start = c + 1;
            }
        }
        ranges.push(start..self.chunks.len());
        ranges
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

/// Where a plan's box evaluations and reductions run. Every backend follows the plan's
/// fixed summation order, so they all produce the same bits.
pub enum Backend {
    /// One thread, the reference.
    Serial,
    /// A rayon thread pool.
    Threads(rayon::ThreadPool),
    /// One rank of several processes that share no memory (MPI, or [`LocalRanks`] in
    /// tests): this process evaluates its share of the boxes, and the ranks exchange the
    /// shared coordinates' contributions each step ([`crate::run::distribute`]).
    ///
    /// [`LocalRanks`]: crate::run::transport::LocalRanks
    Distributed(std::rc::Rc<dyn Transport>),
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

    /// A short name (`serial`, `threads`, or the transport's: `mpi`, `local-ranks`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Serial => "serial",
            Backend::Threads(_) => "threads",
            Backend::Distributed(transport) => transport.name(),
        }
    }

    /// Number of worker threads (of this process).
    pub fn thread_count(&self) -> usize {
        match self {
            Backend::Serial | Backend::Distributed(_) => 1,
            Backend::Threads(pool) => pool.current_num_threads(),
        }
    }

    /// Number of ranks (processes) taking part: 1 unless distributed.
    pub fn ranks(&self) -> usize {
        match self {
            Backend::Distributed(transport) => transport.ranks(),
            _ => 1,
        }
    }

    /// This process's rank: 0 unless distributed.
    pub fn rank(&self) -> usize {
        match self {
            Backend::Distributed(transport) => transport.rank(),
            _ => 0,
        }
    }

    /// The transport of a distributed backend.
    pub fn transport(&self) -> Option<&dyn Transport> {
        match self {
            Backend::Distributed(transport) => Some(&**transport),
            _ => None,
        }
    }

    /// Runs `task(i)` for `i` in `0..count`: in order on the serial backend (or when
    /// `parallel` is false), in parallel on the pool otherwise.
    fn for_each(&self, parallel: bool, count: usize, task: impl Fn(usize) + Sync + Send) {
        match self {
            Backend::Threads(pool) if parallel && count > 1 => pool.install(|| {
                use rayon::prelude::*;
                (0..count).into_par_iter().for_each(task);
            }),
            _ => (0..count).for_each(task),
        }
    }
}

/// How a partition of the chunks into contiguous ranges (threads or ranks) splits the
/// scatter-add so that every coordinate still sums its contributions in plan order: a range
/// adds directly onto the coordinates it touches first, and keeps its contributions to the
/// others apart, to be added after the earlier ranges' ones, range by range.
pub(crate) struct Deferrals {
    /// Per coordinate: the first range that touches it (`u32::MAX`: none does).
    pub first_toucher: Vec<u32>,
    /// Bit per slot: the slot's contribution is deferred.
    pub deferred: Vec<u64>,
    /// Per chunk: whether any of its slots is deferred.
    pub chunk_deferred: Vec<bool>,
    /// Per range: the coordinates of its deferred contributions, in plan order.
    pub deferred_coordinates: Vec<Vec<u32>>,
}

/// Which norm blocks of the gradient (runs of [`SUM_BLOCK`] coordinates) are finished
/// (sum of squares and the optimiser's update) during the sweep, right after the chunk that
/// completes them while they are still in cache, and which after the sweep.
pub(crate) struct BlockSchedule {
    /// The blocks finished right after chunk `c` are `blocks[chunk_starts[c]..chunk_starts[c + 1]]`.
    chunk_starts: Vec<u32>,
    blocks: Vec<u32>,
    /// Blocks with a deferred contribution, contributions from several workers, or no
    /// contribution at all: finished after the sweep.
    after_sweep: Vec<u32>,
}

impl BlockSchedule {
    /// Every block finished after the sweep (the distributed backend's own pass).
    fn none(chunks: usize) -> BlockSchedule {
        BlockSchedule {
            chunk_starts: vec![0; chunks + 1],
            blocks: Vec::new(),
            after_sweep: Vec::new(),
        }
    }

    /// The blocks complete after chunk `c`.
    fn after_chunk(&self, c: usize) -> &[u32] {
        &self.blocks[self.chunk_starts[c] as usize..self.chunk_starts[c + 1] as usize]
    }
}

/// Scratch for evaluating one group's chunks.
struct GroupScratch {
    inputs: Vec<f64>,
    gradient: Vec<f64>,
    values: Vec<f64>,
    single: Option<Workspace>,
    batch: Option<BatchWorkspace>,
}

/// One worker's share: its chunks, scratch, and the contributions it defers.
struct Worker {
    chunks: Range<usize>,
    groups: Vec<GroupScratch>,
    /// Coordinates (in plan order) of the contributions this worker defers to the ordered
    /// second phase, because an earlier worker touches them first.
    deferred_coordinates: Vec<u32>,
    /// Their values, filled each evaluation.
    deferred_values: Vec<f64>,
}

/// The result of evaluating the composite objective and its gradient at a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The composite objective: the sum of the boxes' objectives, in plan order.
    pub objective: f64,
    /// The Euclidean norm of the composite gradient, computed with scaling where squares
    /// would underflow or overflow: infinite only for a non-finite entry or a norm beyond
    /// `f64::MAX`.
    pub gradient_norm: f64,
}

/// The update that [`Executor::evaluate_and_propose`] computes along with the gradient norm:
/// the Euler step of the composed discrete system, written into separate buffers so the
/// current iterate survives if the run stops.
pub enum Proposal<'a> {
    /// Gradient descent: `next = current - lr * gradient`.
    Gd {
        /// Step size.
        lr: f64,
        /// Receives the proposed iterate.
        next: &'a mut [f64],
    },
    /// Heavy ball: `next_velocity = beta * velocity + gradient`, `next = current - lr * next_velocity`.
    Momentum {
        /// Step size.
        lr: f64,
        /// Momentum coefficient.
        beta: f64,
        /// The current velocity.
        velocity: &'a [f64],
        /// Receives the proposed velocity.
        next_velocity: &'a mut [f64],
        /// Receives the proposed iterate.
        next: &'a mut [f64],
    },
}

/// A [`Proposal`] as the workers see it: each finishes its own norm blocks.
#[derive(Clone, Copy)]
enum Update<'a> {
    /// Only the gradient norm.
    None,
    Gd {
        lr: f64,
        next: SharedSlice<'a>,
        /// Write `next` with non-temporal stores ([`STREAM_FROM`]).
        stream: bool,
    },
    Momentum {
        lr: f64,
        beta: f64,
        velocity: &'a [f64],
        next_velocity: SharedSlice<'a>,
        next: SharedSlice<'a>,
    },
}

impl<'a> Update<'a> {
    fn of(proposal: Option<Proposal<'a>>, len: usize) -> Update<'a> {
        match proposal {
            None => Update::None,
            Some(Proposal::Gd { lr, next }) => {
                assert_eq!(next.len(), len, "proposal length");
                Update::Gd {
                    lr,
                    next: SharedSlice::new(next),
                    stream: len >= STREAM_FROM,
                }
            }
            Some(Proposal::Momentum {
                lr,
                beta,
                velocity,
                next_velocity,
                next,
            }) => {
                assert!(
                    next.len() == len && next_velocity.len() == len && velocity.len() == len,
                    "proposal length"
                );
                Update::Momentum {
                    lr,
                    beta,
                    velocity,
                    next_velocity: SharedSlice::new(next_velocity),
                    next: SharedSlice::new(next),
                }
            }
        }
    }
}

/// Finishes norm block `block` of a complete gradient: its sum of squares into
/// `partials[block]`, and the proposed update on its coordinates.
///
/// # Safety
/// - `block < partials.len()`, and `block * SUM_BLOCK < gradient.len()` (the block exists);
/// - no other thread writes the block's gradient entries, and none accesses
///   `partials[block]` or the update's outputs on the block's coordinates, while this runs.
///
/// The sweep establishes both in `Plan::block_schedule` (a block finished during the sweep
/// is complete, and its coordinates are written by the finishing worker only); the pass
/// after the sweep, by finishing each block in one task.
///
/// # Panics
/// If `state` or the update's buffers are shorter than the gradient.
#[inline(always)]
unsafe fn finish_block(
    block: usize,
    gradient: SharedSlice<'_>,
    state: &[f64],
    update: Update<'_>,
    partials: SharedSlice<'_>,
) {
    let start = block * SUM_BLOCK;
    let range = start..(start + SUM_BLOCK).min(gradient.len());
    // SAFETY: no thread writes the block's gradient entries now (this function's contract).
    let gradient = unsafe { gradient.read(range.clone()) };
    // SAFETY: no other thread accesses the update's outputs on the block (the contract).
    unsafe { update_range(range, gradient, state, update) };
    // SAFETY: `block < partials.len()`, accessed by this thread only (the contract).
    unsafe { *partials.get(block) = block_partial(gradient) };
}

/// The proposed update on the coordinates `range` (`gradient` holds the gradient's entries
/// there; `state` is the whole iterate).
///
/// # Safety
/// No other thread accesses the update's outputs (`next`, `next_velocity`) in `range`
/// while this runs.
///
/// # Panics
/// If `range` reaches past `state` or the update's buffers, or `gradient` is shorter than
/// `range`.
#[inline(always)]
unsafe fn update_range(range: Range<usize>, gradient: &[f64], state: &[f64], update: Update<'_>) {
    let state = &state[range.clone()];
    match update {
        Update::None => {}
        Update::Gd { lr, next, stream } => {
            // SAFETY: this thread alone accesses `next` in `range` (the contract).
            let next = unsafe { next.range(range) };
            if stream {
                map2_streaming(next, state, gradient, |z, g| z - lr * g);
            } else {
                map2_lanes(next, state, gradient, |z, g| z - lr * g);
            }
        }
        Update::Momentum {
            lr,
            beta,
            velocity,
            next_velocity,
            next,
        } => {
            // SAFETY: this thread alone accesses `next_velocity` and `next` in `range` (the
            // contract); they are two distinct buffers (`Update::of` takes two `&mut`).
            let (next_velocity, next) = unsafe {
                (
                    next_velocity.range(range.clone()),
                    next.range(range.clone()),
                )
            };
            map2_lanes(next_velocity, &velocity[range], gradient, |v, g| {
                beta * v + g
            });
            map2_lanes(next, state, next_velocity, |z, v| z - lr * v);
        }
    }
}

/// A plan with its buffers and backend: evaluates the composite's value and gradient by
/// the distributed algorithm (gather, the boxes' own gradients, scatter-add in plan
/// order). After construction, evaluations allocate nothing.
pub struct Executor {
    plan: Arc<Plan>,
    backend: Backend,
    /// Whether work is handed to the pool (threads backend, large enough plan).
    parallel: bool,
    workers: Vec<Mutex<Worker>>,
    /// Bit per slot: deferred to the ordered second phase (threads backend).
    deferred: Vec<u64>,
    /// Per chunk: whether any of its slots is deferred.
    chunk_deferred: Vec<bool>,
    /// Each chunk's sum of box values.
    chunk_objective: Vec<f64>,
    /// Each box's value, when recorded.
    box_values: Option<Vec<f64>>,
    /// The composite gradient.
    gradient: Vec<f64>,
    /// Per-block sums of squares.
    norm_partials: Vec<f64>,
    /// Which blocks the sweep finishes, and after which chunk.
    blocks: BlockSchedule,
    /// Ctrl-C, as seen by this process.
    interrupt_flag: Option<Arc<AtomicBool>>,
    /// Whether any rank saw an interrupt at the last evaluation.
    interrupt_requested: bool,
    /// The distributed backend's schedule and buffers.
    rank: Option<RankState>,
}

/// A rank's schedule and exchange buffers (distributed backend).
struct RankState {
    schedule: RankSchedule,
    send: Vec<f64>,
    receive: Vec<f64>,
    gather_send: Vec<f64>,
    gather_receive: Vec<f64>,
    gather_counts: Vec<usize>,
    /// Numbers this rank handed to the transport in evaluations, weighted by receivers.
    numbers_sent: u64,
    /// Time this rank spent in the transport's calls during evaluations (waiting included).
    communication: std::time::Duration,
}

impl Executor {
    /// Prepares buffers for running `plan` on `backend`.
    pub fn new(plan: Arc<Plan>, backend: Backend) -> Executor {
        // The partition (and so the deferred contributions) depends only on the thread
        // count; whether the workers then run in parallel or one after the other on the
        // calling thread does not change a bit.
        let parallel = backend.thread_count() > 1 && plan.local_len() >= PARALLEL_THRESHOLD;
        let ranges = match backend.transport() {
            Some(transport) => RankSchedule::ranges(&plan, transport.ranks()),
            None => plan.partition(backend.thread_count()),
        };
        let deferrals = plan.deferrals(&ranges);
        let schedule = backend.transport().map(|transport| {
            RankSchedule::with_deferrals(&plan, ranges.clone(), &deferrals, transport.rank())
        });
        let own_rank = schedule.as_ref().map(RankSchedule::rank);
        let blocks = match &schedule {
            Some(_) => BlockSchedule::none(plan.chunks.len()),
            None => plan.block_schedule(&ranges),
        };
        debug_assert_eq!(
            plan.check_disjoint_writes(&ranges, &deferrals, &blocks),
            Ok(())
        );
        let Deferrals {
            deferred,
            chunk_deferred,
            deferred_coordinates,
            ..
        } = deferrals;
        let mut workers = Vec::with_capacity(ranges.len());
        for (w, (range, deferred_coordinates)) in
            ranges.iter().zip(deferred_coordinates).enumerate()
        {
            // A rank keeps scratch for its own share only.
            let idle = own_rank.is_some_and(|r| r != w);
            let groups = plan
                .groups
                .iter()
                .filter(|_| !idle)
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
            workers.push(Mutex::new(Worker {
                chunks: range.clone(),
                groups,
                deferred_values: vec![0.0; deferred_coordinates.len()],
                deferred_coordinates,
            }));
        }
        let rank = schedule.map(|schedule| {
            let gather_counts: Vec<usize> = (0..schedule.ranks())
                .map(|q| 1 + schedule.chunk_ranges[q].len() + schedule.norm_blocks[q].len())
                .collect();
            RankState {
                send: vec![0.0; schedule.send_items.len()],
                receive: vec![0.0; schedule.receive_counts.iter().sum()],
                gather_send: Vec::with_capacity(gather_counts[schedule.rank()]),
                gather_receive: vec![0.0; gather_counts.iter().sum()],
                gather_counts,
                schedule,
                numbers_sent: 0,
                communication: std::time::Duration::ZERO,
            }
        });
        Executor {
            interrupt_flag: None,
            interrupt_requested: false,
            rank,
            parallel,
            chunk_objective: vec![0.0; plan.chunks.len()],
            box_values: None,
            gradient: vec![0.0; plan.apex],
            norm_partials: vec![0.0; plan.apex.div_ceil(SUM_BLOCK)],
            blocks,
            deferred,
            chunk_deferred,
            workers,
            plan,
            backend,
        }
    }

    /// Times one (warm) evaluation at `state` on the calling thread and hands later evaluations to
    /// the pool only if it took longer than 50 µs (a few heavy boxes are worth splitting, a
    /// few light ones are not). Results are the same bits either way.
    pub fn calibrate(&mut self, state: &[f64]) {
        if self.backend.thread_count() <= 1 || self.workers.len() <= 1 || self.rank.is_some() {
            return;
        }
        self.parallel = false;
        self.evaluate(state); // warm-up: first touches of the buffers
        let started = std::time::Instant::now();
        self.evaluate(state);
        self.parallel = started.elapsed() > std::time::Duration::from_micros(50);
    }

    /// Hands the sweep to the pool whenever there are several workers, however small the
    /// plan (tests: real concurrency on small composites).
    #[cfg(test)]
    pub(crate) fn force_parallel(&mut self) {
        self.parallel = self.backend.thread_count() > 1 && self.rank.is_none();
    }

    /// Keep every box's value at each evaluation (for per-box traces); costs one write
    /// per box.
    pub fn record_box_values(&mut self) {
        self.box_values = Some(vec![0.0; self.plan.box_count]);
        if let Some(rank) = &mut self.rank {
            // Box values travel with the all-gather.
            for (q, count) in rank.gather_counts.iter_mut().enumerate() {
                *count += rank.schedule.chunk_ranges[q]
                    .clone()
                    .map(|c| self.plan.chunks[c].count as usize)
                    .sum::<usize>();
            }
            rank.gather_receive = vec![0.0; rank.gather_counts.iter().sum()];
            rank.gather_send = Vec::with_capacity(rank.gather_counts[rank.schedule.rank()]);
        }
    }

    /// Watch `flag` (set by a Ctrl-C handler): each evaluation reads it, on a distributed
    /// backend on every rank, and [`Executor::interrupt_requested`] says whether any rank
    /// saw it set, so that all ranks stop at the same step.
    pub fn set_interrupt_flag(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt_flag = Some(flag);
    }

    /// Whether an interrupt was seen (by any rank) at the last evaluation.
    pub fn interrupt_requested(&self) -> bool {
        self.interrupt_requested
    }

    /// True on a distributed backend: this process holds only its share of the state.
    pub fn is_distributed(&self) -> bool {
        self.rank.is_some()
    }

    /// Makes `values` (a vector of global coordinates that every rank updates in its own
    /// share, such as the iterate or the velocity) complete on rank 0: every rank sends
    /// the coordinates it reports for. A collective call on a distributed backend (every
    /// rank must make it); nothing to do otherwise.
    pub fn collect_on_first_rank(&self, values: &mut [f64]) {
        let Some(rank) = &self.rank else { return };
        let transport = self.backend.transport().expect("distributed backend");
        let schedule = &rank.schedule;
        let counts: Vec<usize> = schedule
            .owned_runs
            .iter()
            .map(|runs| runs.iter().map(|r| r.len()).sum())
            .collect();
        let mut send = Vec::with_capacity(counts[schedule.rank()]);
        for run in &schedule.owned_runs[schedule.rank()] {
            send.extend_from_slice(&values[run.clone()]);
        }
        let mut receive = vec![
            0.0;
            if schedule.rank() == 0 {
                counts.iter().sum()
            } else {
                0
            }
        ];
        transport.gather(&send, &mut receive, &counts);
        if schedule.rank() == 0 {
            let mut at = counts[0];
            for runs in &schedule.owned_runs[1..] {
                for run in runs {
                    values[run.clone()].copy_from_slice(&receive[at..at + run.len()]);
                    at += run.len();
                }
            }
        }
    }

    /// Seconds this rank spent in the transport's calls during evaluations so far, waiting
    /// for slower ranks included (`None` unless distributed).
    pub fn communication_seconds(&self) -> Option<f64> {
        self.rank.as_ref().map(|r| r.communication.as_secs_f64())
    }

    /// Bytes sent by all ranks together per evaluation so far, measured from the buffers
    /// handed to the transport (exchange, and the all-gather counted once per receiver).
    /// A collective call on a distributed backend; `None` otherwise.
    pub fn bytes_sent_per_evaluation(&self, evaluations: u64) -> Option<f64> {
        let rank = self.rank.as_ref()?;
        let transport = self.backend.transport()?;
        let ranks = transport.ranks();
        let mut all = vec![0.0; ranks];
        transport.all_gather(&[rank.numbers_sent as f64], &mut all, &vec![1; ranks]);
        let total: f64 = all.iter().sum();
        Some(8.0 * total / evaluations.max(1) as f64)
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

    /// The value of box `b` at the last evaluation, if values are recorded.
    pub fn box_value(&self, b: usize) -> Option<f64> {
        self.box_values.as_ref().map(|v| v[b])
    }

    /// Evaluates every box's value and local gradient at `state` (the global coordinates),
    /// adds the local gradients on shared coordinates in plan order, and returns the
    /// composite objective and gradient norm. The gradient is then in
    /// [`Executor::gradient`].
    pub fn evaluate(&mut self, state: &[f64]) -> Evaluation {
        self.evaluate_with(state, None)
    }

    fn evaluate_with(&mut self, state: &[f64], proposal: Option<Proposal<'_>>) -> Evaluation {
        if self.rank.is_some() {
            self.sweep(state, Update::None);
            self.exchange();
            self.finish_rank(state, proposal);
            self.share_scalars();
        } else {
            // The sweep finishes most blocks of the gradient as soon as they are complete.
            let update = Update::of(proposal, self.plan.apex);
            self.sweep(state, update);
            self.finish(state, update);
            self.interrupt_requested = self
                .interrupt_flag
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed));
        }
        let objective: f64 = self.chunk_objective.iter().sum();
        Evaluation {
            objective,
            gradient_norm: norm_of_partials(&self.norm_partials),
        }
    }

    /// [`Executor::evaluate`], and in the same pass over the gradient, the proposed next
    /// iterate of the optimiser.
    pub fn evaluate_and_propose(&mut self, state: &[f64], proposal: Proposal<'_>) -> Evaluation {
        self.evaluate_with(state, Some(proposal))
    }

    /// The distributed step: every worker evaluates its chunks and scatter-adds their
    /// gradients; then deferred contributions are added worker by worker. On a distributed
    /// backend, this rank's worker only, and the deferred contributions wait for the
    /// exchange.
    fn sweep(&mut self, state: &[f64], update: Update<'_>) {
        assert_eq!(state.len(), self.plan.apex, "state length");
        let plan: &Plan = &self.plan;
        let blocks = &self.blocks;
        let norm_partials = SharedSlice::new(&mut self.norm_partials);
        let deferred: &[u64] = &self.deferred;
        let chunk_deferred: &[bool] = &self.chunk_deferred;
        let gradient = SharedSlice::new(&mut self.gradient);
        let chunk_objective = SharedSlice::new(&mut self.chunk_objective);
        let box_values = self.box_values.as_deref_mut().map(SharedSlice::new);
        let workers = &self.workers;
        let own_rank = self.rank.as_ref().map(|r| r.schedule.rank());
        let sweep_worker = |w: usize| {
            let mut worker = workers[w].lock().unwrap_or_else(|e| e.into_inner());
            let context = SweepContext {
                plan,
                deferred,
                chunk_deferred,
                state,
                gradient,
                chunk_objective,
                box_values,
                blocks,
                update,
                norm_partials,
            };
            // SAFETY: `worker.chunks` is range `w` of the partition the deferrals and the
            // block schedule were computed for (`Executor::new`), and each worker runs once
            // per sweep; what `SweepContext::sweep` requires of them is checked in debug
            // builds by `Plan::check_disjoint_writes`. On a distributed backend only this
            // rank's worker runs.
            unsafe { context.sweep(&mut worker) };
        };
        if let Some(rank) = own_rank {
            sweep_worker(rank);
            return;
        }
        self.backend
            .for_each(self.parallel, workers.len(), sweep_worker);
        for worker in workers.iter().skip(1) {
            let worker = worker.lock().unwrap_or_else(|e| e.into_inner());
            for (&g, &value) in worker
                .deferred_coordinates
                .iter()
                .zip(&worker.deferred_values)
            {
                self.gradient[g as usize] += value;
            }
        }
    }

    /// Distributed backend: sends this rank's contributions to shared coordinates (and the
    /// entries other ranks need for their norm blocks), then assembles each such
    /// coordinate's gradient in plan order ([`crate::run::distribute`]).
    fn exchange(&mut self) {
        let Some(rank) = self.rank.as_mut() else {
            return;
        };
        let transport = self.backend.transport().expect("distributed backend");
        let schedule = &rank.schedule;
        let worker = self.workers[schedule.rank()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let deferred = &worker.deferred_values;
        for (slot, item) in rank.send.iter_mut().zip(&schedule.send_items) {
            *slot = match *item {
                Item::Partial(g) => self.gradient[g as usize],
                Item::Deferred(j) => deferred[j as usize],
            };
        }
        let started = std::time::Instant::now();
        transport.exchange(
            &rank.send,
            &schedule.send_counts,
            &mut rank.receive,
            &schedule.receive_counts,
        );
        rank.communication += started.elapsed();
        rank.numbers_sent += rank.send.len() as u64;
        let gradient = &mut self.gradient;
        let receive = &rank.receive;
        let value_of = |source: Source, gradient: &[f64], g: usize| match source {
            Source::OwnPartial => gradient[g],
            Source::OwnDeferred(j) => deferred[j as usize],
            Source::Received(i) => receive[i as usize],
        };
        for assembly in &schedule.assembly {
            let g = assembly.coordinate as usize;
            let mut value = value_of(assembly.start, gradient, g);
            for &source in
                &schedule.add_sources[assembly.adds.start as usize..assembly.adds.end as usize]
            {
                value += value_of(source, gradient, g);
            }
            gradient[g] = value;
        }
    }

    /// Distributed backend: the proposal on this rank's coordinates and the sums of
    /// squares of its norm blocks, in one pass in coordinate order (each block's proposal
    /// right before its sum, while its gradient is in cache).
    fn finish_rank(&mut self, state: &[f64], proposal: Option<Proposal<'_>>) {
        let Some(rank) = self.rank.as_ref() else {
            return;
        };
        let schedule = &rank.schedule;
        let gradient = &self.gradient;
        let update = Update::of(proposal, gradient.len());
        let runs = &schedule.update_runs;
        let mut run_index = 0;
        let mut done_until = 0;
        // Proposes every coordinate of the update runs below `limit` not proposed yet.
        let mut propose_until = |limit: usize| {
            while let Some(run) = runs.get(run_index) {
                let range = run.start.max(done_until)..run.end.min(limit);
                if !range.is_empty() {
                    // SAFETY: only this thread touches the proposal's buffers (the rank's
                    // own pass, after its sweep).
                    unsafe { update_range(range.clone(), &gradient[range], state, update) };
                }
                if run.end > limit {
                    break;
                }
                run_index += 1;
            }
            done_until = done_until.max(limit);
        };
        for &block in &schedule.norm_blocks[schedule.rank()] {
            let start = block as usize * SUM_BLOCK;
            let end = (start + SUM_BLOCK).min(gradient.len());
            propose_until(end);
            self.norm_partials[block as usize] = block_partial(&gradient[start..end]);
        }
        propose_until(usize::MAX);
    }

    /// Distributed backend: all-gathers the interrupt flags, the chunks' objectives, the
    /// norm blocks' partial sums (and the box values, if recorded), each computed by one
    /// rank, so that every rank adds them up in the serial order.
    fn share_scalars(&mut self) {
        let Some(rank) = self.rank.as_mut() else {
            return;
        };
        let transport = self.backend.transport().expect("distributed backend");
        let schedule = &rank.schedule;
        let me = schedule.rank();
        let interrupted = self
            .interrupt_flag
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        let plan = &self.plan;
        let send = &mut rank.gather_send;
        send.clear();
        send.push(if interrupted { 1.0 } else { 0.0 });
        send.extend_from_slice(&self.chunk_objective[schedule.chunk_ranges[me].clone()]);
        send.extend(
            schedule.norm_blocks[me]
                .iter()
                .map(|&b| self.norm_partials[b as usize]),
        );
        if let Some(values) = &self.box_values {
            for c in schedule.chunk_ranges[me].clone() {
                send.extend(plan.chunk_boxes(c).iter().map(|&b| values[b as usize]));
            }
        }
        let started = std::time::Instant::now();
        transport.all_gather(send, &mut rank.gather_receive, &rank.gather_counts);
        rank.communication += started.elapsed();
        rank.numbers_sent += (send.len() * (schedule.ranks() - 1)) as u64;
        let mut at = 0;
        self.interrupt_requested = false;
        for q in 0..schedule.ranks() {
            let piece = &rank.gather_receive[at..at + rank.gather_counts[q]];
            at += rank.gather_counts[q];
            self.interrupt_requested |= piece[0] != 0.0;
            let chunks = schedule.chunk_ranges[q].clone();
            let (objectives, rest) = piece[1..].split_at(chunks.len());
            self.chunk_objective[chunks.clone()].copy_from_slice(objectives);
            let (partials, box_values) = rest.split_at(schedule.norm_blocks[q].len());
            for (&b, &p) in schedule.norm_blocks[q].iter().zip(partials) {
                self.norm_partials[b as usize] = p;
            }
            if let Some(values) = self.box_values.as_mut() {
                let mut k = 0;
                for c in chunks {
                    for &b in plan.chunk_boxes(c) {
                        values[b as usize] = box_values[k];
                        k += 1;
                    }
                }
            }
        }
    }

    /// The blocks of the gradient that the sweep could not finish (those with deferred
    /// contributions, or with contributions from several workers): their sums of squares
    /// and, if asked, the proposed update.
    fn finish(&mut self, state: &[f64], update: Update<'_>) {
        let gradient = SharedSlice::new(&mut self.gradient);
        let partials = SharedSlice::new(&mut self.norm_partials);
        let blocks = &self.blocks.after_sweep;
        // A few blocks (a chain's worker boundaries) are not worth handing to the pool.
        let parallel = self.parallel && blocks.len() >= 64;
        self.backend.for_each(parallel, blocks.len(), |i| {
            // SAFETY: the sweep is over (nothing else writes the gradient), every block in
            // `after_sweep` exists and is listed once (`Plan::block_schedule`), and a task
            // touches only its own block's entries.
            unsafe { finish_block(blocks[i] as usize, gradient, state, update, partials) };
        });
    }

    /// The first box (in box order) whose value or gradient is not finite at `state`:
    /// a slow, box-by-box search, used only to report a divergence.
    pub fn first_non_finite_box(&self, state: &[f64]) -> Option<usize> {
        let plan = &self.plan;
        let mut found: Option<usize> = None;
        let mut inputs = Vec::new();
        let mut gradient = Vec::new();
        // A rank searches its own boxes; the ranks then agree on the first.
        let chunks = match &self.rank {
            Some(rank) => &plan.chunks[rank.schedule.chunks()],
            None => &plan.chunks[..],
        };
        for chunk in chunks {
            let group = &plan.groups[chunk.group as usize];
            let arity = group.arity();
            let count = chunk.count as usize;
            let mut workspace = group.objective.workspace();
            inputs.resize(arity, 0.0);
            gradient.resize(arity, 0.0);
            for k in 0..count {
                let b = group.boxes[chunk.first_member as usize + k] as usize;
                if found.is_some_and(|f| f <= b) {
                    continue;
                }
                for (i, x) in inputs.iter_mut().enumerate() {
                    *x = state[plan.coordinate(chunk, i * count + k)];
                }
                let value =
                    group
                        .objective
                        .value_and_gradient(&mut workspace, &inputs, &mut gradient);
                if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
                    found = Some(b);
                }
            }
        }
        match self.backend.transport() {
            Some(transport) => {
                let first = transport.min(found.map_or(u64::MAX, |b| b as u64));
                (first != u64::MAX).then_some(first as usize)
            }
            None => found,
        }
    }
}

/// What a worker's sweep reads and writes.
struct SweepContext<'a> {
    plan: &'a Plan,
    deferred: &'a [u64],
    chunk_deferred: &'a [bool],
    state: &'a [f64],
    gradient: SharedSlice<'a>,
    chunk_objective: SharedSlice<'a>,
    box_values: Option<SharedSlice<'a>>,
    blocks: &'a BlockSchedule,
    update: Update<'a>,
    norm_partials: SharedSlice<'a>,
}

impl SweepContext<'_> {
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
    unsafe fn sweep(&self, worker: &mut Worker) {
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
            ..
        } = worker;
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
            match (scratch.batch.as_mut(), chunk.layout) {
                (Some(batch), Layout::PerInputRuns { offset }) => {
                    // Each input is a run of the state: the kernel reads it in place.
                    let offsets = &plan.input_bases[offset..offset + group.arity()];
                    group.objective.batch_value_and_gradient_at(
                        batch,
                        count,
                        self.state,
                        offsets,
                        values,
                        local_gradient,
                    );
                }
                (Some(batch), _) => {
                    self.gather(chunk, inputs);
                    group.objective.batch_value_and_gradient(
                        batch,
                        count,
                        inputs,
                        values,
                        local_gradient,
                    );
                }
                (None, _) => {
                    self.gather(chunk, inputs);
                    if let Some(single) = scratch.single.as_mut() {
                        values[0] =
                            group
                                .objective
                                .value_and_gradient(single, inputs, local_gradient);
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
                        self.state,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::category::{euler, gradient_flow, iterate};
    use crate::lower::{lower_text, Problem};
    use crate::run::solver::{solve, Method, NoObserver, SolverState, StopRule};

    fn problem(text: &str) -> Problem {
        lower_text(text, None).unwrap_or_else(|e| panic!("{e}")).1
    }

    fn plan_of(problem: &Problem) -> Arc<Plan> {
        Arc::new(Plan::for_problem(problem).unwrap())
    }

    fn run(problem: &Problem, backend: Backend, lr: f64, steps: u64) -> Vec<f64> {
        let mut executor = Executor::new(plan_of(problem), backend);
        let mut state = SolverState::new(problem.initial_values.clone());
        let stop = StopRule {
            max_steps: steps,
            tolerance: None,
            rel_tolerance: None,
        };
        solve(
            &mut executor,
            Method::Gd { lr },
            stop,
            &mut state,
            &mut NoObserver,
        )
        .unwrap();
        state.values
    }

    fn central(problem: &Problem, lr: f64, steps: usize) -> Vec<f64> {
        iterate(
            &euler(gradient_flow(&problem.composite), lr),
            &problem.initial_values,
            steps,
        )
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    const CHAIN: &str = "
        objective rosen(a: real, b: real) { minimize 100 * (b - a^2)^2 + (1 - a)^2; }
        composite chain() { for i in 0..5000 { rosen(x[i], x[i + 1]); } }
        solve chain { method = gd(lr = 1e-4); init x = -1.2; }";

    #[test]
    fn a_chain_uses_run_layouts_and_equals_central_gradient_descent_bitwise() {
        let p = problem(CHAIN);
        let plan = plan_of(&p);
        assert!(plan.is_in_box_order());
        assert!(plan.chunk_count() > 3, "several chunks, so threads defer");
        assert!(plan
            .chunks
            .iter()
            .all(|c| matches!(c.layout, Layout::PerInputRuns { .. })));
        let reference = bits(&central(&p, 1e-4, 7));
        assert_eq!(bits(&run(&p, Backend::serial(), 1e-4, 7)), reference);
        for threads in [2, 3] {
            let values = run(&p, Backend::threads(threads).unwrap(), 1e-4, 7);
            assert_eq!(bits(&values), reference, "{threads} threads");
        }
    }

    #[test]
    fn interleaved_box_types_give_the_same_bits_on_every_backend() {
        let text = "
            objective f(x: real, y: real) { minimize (x - y)^2 + 0.1 * x^4; }
            objective g(x: real) { minimize sin(x) + x^2; }
            composite c() { for i in 0..3000 { f(z[i], z[i + 1]); g(z[i]); } }
            solve c { method = gd(lr = 0.01); init z = 0.5; }";
        let p = problem(text);
        let plan = plan_of(&p);
        assert!(!plan.is_in_box_order());
        let serial = run(&p, Backend::serial(), 0.01, 5);
        for threads in [1, 2, 3] {
            let values = run(&p, Backend::threads(threads).unwrap(), 0.01, 5);
            assert_eq!(bits(&values), bits(&serial), "{threads} threads");
        }
        let reference = central(&p, 0.01, 5);
        let worst = serial
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-13, "{worst}");
    }

    #[test]
    fn repeated_ports_and_matrix_boxes_match_central_gradient_descent() {
        let text = "
            objective q(a: real[3], b: real[3]) { minimize sumsq(a - 2 * b) + dot(a, b) + sum(exp(0.1 * a)); }
            composite c() where (u: real[3] = 0.3, v: real[3] = -0.2) { q(u, u); q(u, v); q(v, u); }
            solve c { method = gd(lr = 0.05); }";
        let p = problem(text);
        let plan = plan_of(&p);
        assert!(plan.is_in_box_order());
        let reference = bits(&central(&p, 0.05, 20));
        for backend in [Backend::serial(), Backend::threads(2).unwrap()] {
            assert_eq!(bits(&run(&p, backend, 0.05, 20)), reference);
        }
    }

    #[test]
    fn the_gradient_is_the_sum_of_the_boxes_gradients() {
        // f1(a, b) = (a-1)^2 + (b-2)^2 and f2(b, c) = (b-4)^2 + (c+1)^2 at 0: the shared b
        // gets -4 from f1 and -8 from f2.
        let p = problem(
            "objective f1(b: real) { var a: real; minimize (a - 1)^2 + (b - 2)^2; }
             objective f2(b: real) { var c: real; minimize (b - 4)^2 + (c + 1)^2; }
             composite total() { f1(b); f2(b); }",
        );
        let mut executor = Executor::new(plan_of(&p), Backend::serial());
        let evaluation = executor.evaluate(&[0.0, 0.0, 0.0]);
        assert_eq!(evaluation.objective, 1.0 + 4.0 + 16.0 + 1.0);
        let b = p.composite.junction_variables(0)[0];
        assert_eq!(executor.gradient()[b], -12.0);
        let mut sorted = executor.gradient().to_vec();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, vec![-12.0, -2.0, 2.0]);
    }

    #[test]
    fn partitions_cover_every_chunk_in_order() {
        let p = problem(CHAIN);
        let plan = plan_of(&p);
        for parts in 1..6 {
            let ranges = plan.partition(parts);
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, plan.chunk_count());
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
        }
    }

    #[test]
    fn the_sweep_finishes_every_block_that_one_worker_completes() {
        // 5001 coordinates: 10 norm blocks, 10 chunks of a chain.
        let p = problem(CHAIN);
        let plan = plan_of(&p);
        let blocks = 5001usize.div_ceil(SUM_BLOCK);
        let serial = plan.block_schedule(&plan.partition(1));
        assert!(serial.after_sweep.is_empty());
        assert_eq!(serial.blocks.len(), blocks);
        // Block b is complete after chunk b (its last coordinate is read by no later box).
        assert_eq!(plan.chunk_count(), blocks);
        for c in 0..blocks {
            assert_eq!(serial.after_chunk(c), [c as u32]);
        }
        // Two workers: the block holding the coordinate they share is finished afterwards.
        let ranges = plan.partition(2);
        let split = ranges[1].start;
        let two = plan.block_schedule(&ranges);
        assert_eq!(two.after_sweep, vec![split as u32]);
        assert_eq!(two.blocks.len(), blocks - 1);
        // Either way, the norm and the update are those of the complete gradient.
        let state: Vec<f64> = (0..5001).map(|i| (i as f64 * 0.37).sin()).collect();
        for backend in [Backend::serial(), Backend::threads(2).unwrap()] {
            let mut executor = Executor::new(plan.clone(), backend);
            let mut next = vec![0.0; 5001];
            let evaluation = executor.evaluate_and_propose(
                &state,
                Proposal::Gd {
                    lr: 0.5,
                    next: &mut next,
                },
            );
            let gradient = executor.gradient();
            let norm: f64 = (0..blocks)
                .map(|b| sum_of_squares(&gradient[b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(5001)]))
                .sum::<f64>()
                .sqrt();
            assert_eq!(evaluation.gradient_norm.to_bits(), norm.to_bits());
            for j in 0..5001 {
                assert_eq!(next[j].to_bits(), (state[j] - 0.5 * gradient[j]).to_bits());
            }
        }
    }

    #[test]
    fn streaming_stores_write_what_plain_stores_write() {
        let a: Vec<f64> = (0..37).map(|i| (i as f64 * 0.7).sin()).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64 * 1.3).cos()).collect();
        let update = |z: f64, g: f64| z - 0.1 * g;
        // Every start offset (so both alignments) and every parity of the length.
        for start in 0..3 {
            for end in [start, start + 1, 30, 37] {
                let mut plain = vec![f64::NAN; 37];
                let mut streamed = vec![f64::NAN; 37];
                map2_lanes(&mut plain[start..end], &a[start..], &b[start..], update);
                map2_streaming(&mut streamed[start..end], &a[start..], &b[start..], update);
                assert_eq!(bits(&plain), bits(&streamed), "{start}..{end}");
            }
        }
    }

    #[test]
    fn uniform_bit_ranges_are_recognised() {
        let mut bits = vec![0u64; 4];
        for i in 10..200 {
            set_bit(&mut bits, i);
        }
        assert_eq!(bits_uniform(&bits, 10, 190), Some(true));
        assert_eq!(bits_uniform(&bits, 64, 64), Some(true));
        assert_eq!(bits_uniform(&bits, 0, 10), Some(false));
        assert_eq!(bits_uniform(&bits, 5, 10), None);
        assert_eq!(bits_uniform(&bits, 150, 100), None);
        assert_eq!(bits_uniform(&bits, 200, 56), Some(false));
    }

    #[test]
    fn fixed_order_sums_are_exact_on_small_integers() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(fixed_order_sum(&values), 500500.0);
        assert_eq!(sum_of_squares(&[3.0, 4.0]), 25.0);
        assert_eq!(fixed_order_sum(&[]), 0.0);
    }
}
