//! Running a plan: an [`Executor`] holds the buffers and evaluates the composite's value
//! and gradient by the distributed algorithm.
//!
//! **Placements.** Where the boxes are evaluated and how their contributions meet is one
//! value, a [`Placement`](placement::Placement), chosen once from the backend:
//! - shared memory (`executor/shared.rs`; the serial and threads backends): every
//!   coordinate lives in this process's buffers. The serial backend sweeps the chunks in
//!   order. The threads backend splits the chunk sequence into one contiguous range per
//!   worker, balanced by cost; a worker adds directly onto the coordinates that its range
//!   touches first and defers its contributions to coordinates that an earlier range
//!   touched, which are then added range by range, in order. Reductions are local.
//! - ranks (`executor/ranks.rs`; the distributed backend): this process sweeps its own
//!   chunks, exchanges the contributions to shared coordinates and assembles them in plan
//!   order ([`crate::run::distribute`]), updates its own coordinates, and all-gathers the
//!   scalars (chunks' objectives, norm partials, reduction partials), counting the traffic.
//!
//! The executor calls the placement without asking which it is; the dispatch is one
//! `match` per operation in `executor/placement.rs`. Every coordinate sums its
//! contributions in plan order whatever the placement and the number of threads or ranks:
//! all backends give the same bits.

mod placement;
mod ranks;
mod shared;
mod sweep;
#[cfg(test)]
mod tests;
mod update;

use super::backend::Backend;
use super::method::{NoUpdate, UpdateRule};
use super::minibatch::BoxMinibatch;
use super::norm::norm_of_partials;
use super::partition::{BlockSchedule, Deferrals};
use super::plan::{Plan, SUM_BLOCK};
use super::shared_slice::SharedSlice;
use placement::Placement;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use sweep::SweepContext;
use update::Update;

/// Below this many slots (numbers gathered per evaluation), the threads backend runs the
/// sweep on the calling thread unless [`Executor::calibrate`] measures that an evaluation
/// is slow enough to be worth splitting: handing tiny work to the pool costs more than it
/// saves. The bits are the same either way.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

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

/// A plan with its buffers and placement: evaluates the composite's value and gradient by
/// the distributed algorithm (gather, the boxes' own gradients, scatter-add in plan
/// order). After construction, evaluations allocate nothing.
pub struct Executor {
    plan: Arc<Plan>,
    /// Where the boxes run and how their contributions meet (holds the backend).
    placement: Placement,
    /// What every placement's sweep reads and fills.
    buffers: Buffers,
    /// Ctrl-C, as seen by this process.
    interrupt_flag: Option<Arc<AtomicBool>>,
    /// Whether any rank saw an interrupt at the last evaluation.
    interrupt_requested: bool,
    /// Evaluations so far.
    evaluations: u64,
    /// Value-only evaluations (line-search trials) so far.
    value_evaluations: u64,
    /// The per-block partials of the last [`Executor::reduce`], `N` per block.
    reduce_partials: Vec<f64>,
    /// The result of the last evaluation.
    last: Evaluation,
}

/// How the sweep splits the plan's slots and norm blocks among workers: which slots'
/// contributions are deferred, and which blocks the sweep finishes (from the placement's
/// partition of the chunks, `Plan::deferrals` and `Plan::block_schedule`).
struct SweepLayout {
    /// Bit per slot: deferred (to the ordered second phase, or the exchange).
    deferred: Vec<u64>,
    /// Per chunk: whether any of its slots is deferred.
    chunk_deferred: Vec<bool>,
    /// Which blocks the sweep finishes, and after which chunk.
    blocks: BlockSchedule,
}

impl SweepLayout {
    /// The layout of the partition `ranges` of the chunks, with `deferrals` computed for it
    /// and `blocks` finished by the sweep; with each range's deferred coordinates.
    fn new(
        plan: &Plan,
        ranges: &[Range<usize>],
        deferrals: Deferrals,
        blocks: BlockSchedule,
    ) -> (SweepLayout, Vec<Vec<u32>>) {
        debug_assert_eq!(
            plan.check_disjoint_writes(ranges, &deferrals, &blocks),
            Ok(())
        );
        let Deferrals {
            deferred,
            chunk_deferred,
            deferred_coordinates,
            ..
        } = deferrals;
        let layout = SweepLayout {
            deferred,
            chunk_deferred,
            blocks,
        };
        (layout, deferred_coordinates)
    }
}

/// `N` partial sums of one block of coordinates, given the gradient ([`Executor::reduce`]).
trait BlockSums<const N: usize>: Fn(Range<usize>, &[f64]) -> [f64; N] + Sync + Send {}

impl<const N: usize, F> BlockSums<N> for F where
    F: Fn(Range<usize>, &[f64]) -> [f64; N] + Sync + Send
{
}

/// The buffers an evaluation fills, whatever the placement.
struct Buffers {
    layout: SweepLayout,
    /// Each chunk's sum of box values.
    chunk_objective: Vec<f64>,
    /// Each box's value, when recorded.
    box_values: Option<Vec<f64>>,
    /// The composite gradient.
    gradient: Vec<f64>,
    /// Per-block sums of squares.
    norm_partials: Vec<f64>,
    /// The step whose minibatches a minibatch run's sampled boxes read.
    sample_step: u64,
}

impl Buffers {
    fn new(plan: &Plan, layout: SweepLayout) -> Buffers {
        Buffers {
            layout,
            chunk_objective: vec![0.0; plan.chunks.len()],
            box_values: None,
            gradient: vec![0.0; plan.apex],
            norm_partials: vec![0.0; plan.apex.div_ceil(SUM_BLOCK)],
            sample_step: 0,
        }
    }

    /// What a worker's sweep at `state` reads and writes (`value_only`: the chunks'
    /// objectives only).
    fn sweep_context<'a, R: UpdateRule + ?Sized>(
        &'a mut self,
        plan: &'a Plan,
        state: &'a [f64],
        update: Update<'a, R>,
        value_only: bool,
    ) -> SweepContext<'a, R> {
        assert_eq!(state.len(), plan.apex, "state length");
        SweepContext {
            plan,
            deferred: &self.layout.deferred,
            chunk_deferred: &self.layout.chunk_deferred,
            state,
            gradient: SharedSlice::new(&mut self.gradient),
            chunk_objective: SharedSlice::new(&mut self.chunk_objective),
            box_values: self.box_values.as_deref_mut().map(SharedSlice::new),
            blocks: &self.layout.blocks,
            update,
            norm_partials: SharedSlice::new(&mut self.norm_partials),
            value_only,
            sample_step: self.sample_step,
        }
    }
}

/// No update: an evaluation alone.
fn no_update(apex: usize) -> Update<'static, NoUpdate> {
    Update::new(&NoUpdate, &[], &mut [], apex)
}

impl Executor {
    /// Prepares buffers for running `plan` on `backend`.
    pub fn new(plan: Arc<Plan>, backend: Backend) -> Executor {
        let (placement, layout) = Placement::new(&plan, backend);
        Executor {
            buffers: Buffers::new(&plan, layout),
            placement,
            evaluations: 0,
            value_evaluations: 0,
            reduce_partials: Vec::new(),
            last: Evaluation {
                objective: f64::NAN,
                gradient_norm: f64::NAN,
            },
            interrupt_flag: None,
            interrupt_requested: false,
            plan,
        }
    }

    /// Times one (warm) evaluation at `state` on the calling thread and hands later
    /// evaluations to the pool only if it took longer than 50 µs (a few heavy boxes are
    /// worth splitting, a few light ones are not). Results are the same bits either way.
    /// Nothing to do unless the placement can split the sweep (several threads).
    pub fn calibrate(&mut self, state: &[f64]) {
        if !self.placement.can_split() {
            return;
        }
        self.placement.set_parallel(false);
        self.evaluate(state); // warm-up: first touches of the buffers
        let started = std::time::Instant::now();
        self.evaluate(state);
        self.placement
            .set_parallel(started.elapsed() > std::time::Duration::from_micros(50));
    }

    /// Hands the sweep to the pool whenever there are several workers, however small the
    /// plan (tests: real concurrency on small composites).
    #[cfg(test)]
    pub(crate) fn force_parallel(&mut self) {
        self.placement.set_parallel(true);
    }

    /// Keep every box's value at each evaluation (for per-box traces); costs one write
    /// per box.
    pub fn record_box_values(&mut self) {
        self.buffers.box_values = Some(vec![0.0; self.plan.box_count]);
        self.placement.record_box_values(&self.plan);
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
        self.placement.is_distributed()
    }

    /// Makes `values` (a vector of global coordinates that every rank updates in its own
    /// share, such as the iterate or the velocity) complete on rank 0: every rank sends
    /// the coordinates it reports for. A collective call on a distributed backend (every
    /// rank must make it); nothing to do otherwise.
    pub fn collect_on_first_rank(&self, values: &mut [f64]) {
        self.placement.collect_on_first_rank(values);
    }

    /// Seconds this rank spent in the transport's calls during evaluations so far, waiting
    /// for slower ranks included (`None` unless distributed).
    pub fn communication_seconds(&self) -> Option<f64> {
        self.placement.communication_seconds()
    }

    /// Bytes sent by all ranks together per evaluation so far, measured from the buffers
    /// handed to the transport (exchange, and the all-gather counted once per receiver).
    /// A collective call on a distributed backend; `None` otherwise.
    pub fn bytes_sent_per_evaluation(&self, evaluations: u64) -> Option<f64> {
        self.placement.bytes_sent_per_evaluation(evaluations)
    }

    /// Bytes all ranks together sent so far in value-only evaluations and reductions (line
    /// searches), all-gathered numbers counted once per receiver: the traffic that
    /// [`Executor::bytes_sent_per_evaluation`] leaves out. A collective call on a
    /// distributed backend; `None` otherwise.
    pub fn line_search_bytes_sent(&self) -> Option<f64> {
        self.placement.line_search_bytes_sent()
    }

    /// Makes the evaluations that follow read the minibatches of step `step` (a minibatch
    /// run: [`Plan::minibatches`]; nothing changes otherwise). The solver sets it before
    /// each step, so that a line search's trials see the step's minibatch.
    pub fn set_sample_step(&mut self, step: u64) {
        self.buffers.sample_step = step;
    }

    /// Which data the next evaluation reads: the sample step in a minibatch run, 0
    /// otherwise (the data never changes). Two evaluations with the same data version at
    /// the same point give the same bits.
    pub fn data_version(&self) -> u64 {
        if self.plan.minibatches().is_some() {
            self.buffers.sample_step
        } else {
            0
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        self.placement.backend()
    }

    /// The composite gradient of the last evaluation.
    pub fn gradient(&self) -> &[f64] {
        &self.buffers.gradient
    }

    /// The value of box `b` at the last evaluation, if values are recorded.
    pub fn box_value(&self, b: usize) -> Option<f64> {
        self.buffers.box_values.as_ref().map(|v| v[b])
    }

    /// Evaluates every box's value and local gradient at `state` (the global coordinates),
    /// adds the local gradients on shared coordinates in plan order, and returns the
    /// composite objective and gradient norm. The gradient is then in
    /// [`Executor::gradient`].
    pub fn evaluate(&mut self, state: &[f64]) -> Evaluation {
        self.evaluate_and_update(0, &[state], &mut [], &NoUpdate)
    }

    /// [`Executor::evaluate`] at `current[at]`, and in the same pass over the gradient, the
    /// method's update `rule` from the vectors `current` into `next` (each as long as the
    /// iterate; on a distributed backend, each rank writes the coordinates its boxes touch).
    /// An empty `next` asks for no update.
    ///
    /// # Panics
    /// If the vectors' lengths differ from the plan's apex, `current` and `next` differ in
    /// number (unless `next` is empty), or there are more than [`MAX_VECTORS`].
    ///
    /// [`MAX_VECTORS`]: crate::run::method::MAX_VECTORS
    pub fn evaluate_and_update<R: UpdateRule>(
        &mut self,
        at: usize,
        current: &[&[f64]],
        next: &mut [&mut [f64]],
        rule: &R,
    ) -> Evaluation {
        let state = current[at];
        let reads = if next.is_empty() { &[][..] } else { current };
        let update = Update::new(rule, reads, next, self.plan.apex);
        let interrupted = self
            .interrupt_flag
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed));
        self.interrupt_requested =
            self.placement
                .evaluate(&self.plan, &mut self.buffers, state, update, interrupted);
        let objective: f64 = self.buffers.chunk_objective.iter().sum();
        self.evaluations += 1;
        self.last = Evaluation {
            objective,
            gradient_norm: norm_of_partials(&self.buffers.norm_partials),
        };
        self.last
    }

    /// How many evaluations (value and gradient) this executor has done.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// How many value-only evaluations ([`Executor::evaluate_value`]) it has done.
    pub fn value_evaluations(&self) -> u64 {
        self.value_evaluations
    }

    /// The composite objective at `point` (a line search's trial point) without the
    /// gradient: each box's value (the forward pass only), summed per chunk and over chunks
    /// in plan order exactly as [`Executor::evaluate`] sums them, so the result has the bits
    /// of a full evaluation's objective at `point`. No scatter-add and no norm; on a
    /// distributed backend no gradient exchange either, only the all-gather of the chunks'
    /// objectives (one reduction). `point` need be current only on [`Executor::local_runs`]
    /// (a rank reads its boxes' coordinates only). Leaves [`Executor::gradient`],
    /// [`Executor::last_evaluation`] and the recorded box values as they were.
    ///
    /// # Panics
    /// If `point`'s length is not the plan's apex.
    pub fn evaluate_value(&mut self, point: &[f64]) -> f64 {
        self.placement
            .evaluate_value(&self.plan, &mut self.buffers, point);
        self.value_evaluations += 1;
        self.buffers.chunk_objective.iter().sum()
    }

    /// The coordinates on which this process keeps a method's vectors current, as sorted
    /// runs: every coordinate, unless distributed; then the rank's state runs (the
    /// coordinates its boxes touch and those of the norm blocks it sums,
    /// [`crate::run::distribute`]). A method's own per-coordinate passes run over these;
    /// the fused update ([`Executor::evaluate_and_update`]) writes exactly these.
    pub fn local_runs(&self) -> &[Range<usize>] {
        self.placement.local_runs()
    }

    /// `N` sums over all coordinates with the same bits on every backend:
    /// `partials(range, gradient)` gives the `N` partial sums of one block of [`SUM_BLOCK`]
    /// coordinates, given the composite gradient of the last evaluation (sum its terms
    /// with [`crate::run::lanes::fixed_order_fold`]-like fixed-order loops, reading only
    /// the block's entries, which are current there), and the blocks' partials are added in
    /// block order from `0.0`. Serial and threads compute every block (threads in parallel
    /// on large plans); on a distributed backend each block is computed by the rank that
    /// sums its norm block and the partials are all-gathered (one collective call: every
    /// rank must make it).
    pub fn reduce<const N: usize>(
        &mut self,
        partials: impl Fn(Range<usize>, &[f64]) -> [f64; N] + Sync + Send,
    ) -> [f64; N] {
        let blocks = self.plan.apex.div_ceil(SUM_BLOCK);
        if self.reduce_partials.len() < blocks * N {
            self.reduce_partials.resize(blocks * N, 0.0);
        }
        let block_partials = &mut self.reduce_partials[..blocks * N];
        self.placement
            .reduce(&self.buffers.gradient, block_partials, &partials);
        let mut sums = [0.0; N];
        for block in block_partials.chunks_exact(N) {
            for (sum, &p) in sums.iter_mut().zip(block) {
                *sum += p;
            }
        }
        sums
    }

    /// Box `b`'s data vector as the evaluations read it (in a minibatch run, a sampled
    /// box's minibatch of the current sample step, drawn again: for the slow box-by-box
    /// searches only).
    fn box_data_now(&self, b: usize) -> std::borrow::Cow<'_, [f64]> {
        match (self.plan.minibatches(), BoxMinibatch::of_box(&self.plan, b)) {
            (Some(minibatches), Some(mut minibatch)) => std::borrow::Cow::Owned(
                minibatch
                    .at_step(minibatches, self.buffers.sample_step)
                    .to_vec(),
            ),
            _ => std::borrow::Cow::Borrowed(self.plan.box_data(b)),
        }
    }

    /// The result of the last evaluation (NaN before the first).
    pub fn last_evaluation(&self) -> Evaluation {
        self.last
    }

    /// The box whose value grew most from `start` to `now` (two points in global
    /// coordinates), with its two values: a slow, box-by-box search, used only to report
    /// a run that blows up. A collective call on a distributed backend.
    pub fn box_that_grew_most(&self, start: &[f64], now: &[f64]) -> Option<(usize, f64, f64)> {
        let plan = &self.plan;
        let mut best: Option<(usize, f64, f64)> = None;
        let mut inputs = Vec::new();
        for chunk in &plan.chunks[self.placement.own_chunks()] {
            let group = &plan.groups[chunk.group as usize];
            let count = chunk.count as usize;
            let mut workspace = group.objective.workspace();
            inputs.resize(group.arity(), 0.0);
            for k in 0..count {
                let b = group.boxes[chunk.first_member as usize + k] as usize;
                let mut value_at = |point: &[f64]| {
                    for (i, x) in inputs.iter_mut().enumerate() {
                        *x = point[plan.coordinate(chunk, i * count + k)];
                    }
                    group
                        .objective
                        .value_with(&mut workspace, &inputs, &self.box_data_now(b))
                };
                let (before, after) = (value_at(start), value_at(now));
                let growth = after - before;
                if growth.is_finite()
                    && !best
                        .is_some_and(|(c, b0, a0)| growth < a0 - b0 || (growth == a0 - b0 && c < b))
                {
                    best = Some((b, before, after));
                }
            }
        }
        // The ranks agree on the best of their own (serial, threads: one piece, this one).
        let mine = best.map_or([f64::NAN; 3], |(b, before, after)| {
            [b as f64, before, after]
        });
        self.placement
            .all_gather(&mine)
            .chunks_exact(3)
            .filter(|p| !p[0].is_nan())
            .map(|p| (p[0] as usize, p[1], p[2]))
            .fold(
                None,
                |best: Option<(usize, f64, f64)>, (b, before, after)| match best {
                    Some((c, b0, a0))
                        if a0 - b0 > after - before || (a0 - b0 == after - before && c < b) =>
                    {
                        best
                    }
                    _ => Some((b, before, after)),
                },
            )
    }

    /// The first box (in box order) whose value or gradient is not finite at `state`:
    /// a slow, box-by-box search, used only to report a divergence.
    pub fn first_non_finite_box(&self, state: &[f64]) -> Option<usize> {
        let plan = &self.plan;
        let mut found: Option<usize> = None;
        let mut inputs = Vec::new();
        let mut gradient = Vec::new();
        // A rank searches its own boxes; the ranks then agree on the first.
        for chunk in &plan.chunks[self.placement.own_chunks()] {
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
                let value = group.objective.value_and_gradient_with(
                    &mut workspace,
                    &inputs,
                    &self.box_data_now(b),
                    &mut gradient,
                );
                if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
                    found = Some(b);
                }
            }
        }
        let first = self.placement.min(found.map_or(u64::MAX, |b| b as u64));
        (first != u64::MAX).then_some(first as usize)
    }
}
