//! Running a plan: an [`Executor`] holds the buffers and evaluates the composite's value
//! and gradient by the distributed algorithm.
//!
//!
//! **Backends.** The serial backend sweeps the chunks in order. The threads backend splits
//! the chunk sequence into one contiguous range per worker, balanced by cost; a worker adds
//! directly onto the coordinates that its range touches first and defers its contributions
//! to coordinates that an earlier range touched, which are then added range by range, in
//! order. Every coordinate therefore sums its contributions in plan order whatever the
//! number of threads: all backends give the same bits.

mod sweep;
#[cfg(test)]
mod tests;
mod update;

use super::backend::Backend;
use super::distribute::{Item, RankSchedule, Source};
use super::method::{NoUpdate, UpdateRule};
use super::norm::{block_partial, norm_of_partials};
use super::partition::{BlockSchedule, Deferrals};
use super::plan::{Plan, SUM_BLOCK};
use super::shared_slice::SharedSlice;
use crate::numerics::{BatchWorkspace, Workspace};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use sweep::SweepContext;
use update::{finish_block, update_range, Update};

/// Below this many slots (numbers gathered per evaluation), the threads backend runs the
/// sweep on the calling thread unless [`Executor::calibrate`] measures that an evaluation
/// is slow enough to be worth splitting: handing tiny work to the pool costs more than it
/// saves. The bits are the same either way.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

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
    /// Evaluations so far.
    evaluations: u64,
    /// Value-only evaluations (line-search trials) so far.
    value_evaluations: u64,
    /// The coordinates this process keeps the method's vectors current on (all of them,
    /// unless distributed: then the rank's state runs), as sorted runs.
    local_runs: Vec<Range<usize>>,
    /// The per-block partials of the last [`Executor::reduce`], `N` per block.
    reduce_partials: Vec<f64>,
    /// The result of the last evaluation.
    last: Evaluation,
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
    /// All-gather counts of a value-only evaluation: each rank's chunks' objectives.
    value_counts: Vec<usize>,
    /// Its receive buffer.
    value_receive: Vec<f64>,
    /// A reduction's send and receive buffers (sized at the first reduction).
    reduce_send: Vec<f64>,
    reduce_receive: Vec<f64>,
    /// A reduction's all-gather counts.
    reduce_counts: Vec<usize>,
    /// Numbers this rank handed to the transport in value-only evaluations and reductions.
    extra_numbers_sent: u64,
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
            let value_counts: Vec<usize> = (0..schedule.ranks())
                .map(|q| schedule.chunk_ranges[q].len())
                .collect();
            RankState {
                value_receive: vec![0.0; value_counts.iter().sum()],
                value_counts,
                reduce_send: Vec::new(),
                reduce_receive: Vec::new(),
                reduce_counts: Vec::with_capacity(schedule.ranks()),
                extra_numbers_sent: 0,
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
        let local_runs = match &rank {
            Some(rank) => rank.schedule.state_runs.clone(),
            None => std::iter::once(0..plan.apex).collect(),
        };
        Executor {
            evaluations: 0,
            value_evaluations: 0,
            local_runs,
            reduce_partials: Vec::new(),
            last: Evaluation {
                objective: f64::NAN,
                gradient_norm: f64::NAN,
            },
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

    /// Numbers this rank handed to the transport in value-only evaluations and reductions
    /// (line searches), weighted by receivers: traffic that
    /// [`Executor::bytes_sent_per_evaluation`] leaves out. `None` unless distributed.
    pub fn line_search_numbers_sent(&self) -> Option<u64> {
        self.rank.as_ref().map(|r| r.extra_numbers_sent)
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
        if self.rank.is_some() {
            self.sweep(
                state,
                Update::new(&NoUpdate, &[], &mut [], self.plan.apex),
                false,
            );
            self.exchange();
            self.finish_rank(update);
            self.share_scalars();
        } else {
            // The sweep finishes most blocks of the gradient as soon as they are complete.
            self.sweep(state, update, false);
            self.finish(update);
            self.interrupt_requested = self
                .interrupt_flag
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed));
        }
        let objective: f64 = self.chunk_objective.iter().sum();
        self.evaluations += 1;
        self.last = Evaluation {
            objective,
            gradient_norm: norm_of_partials(&self.norm_partials),
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
        let apex = self.plan.apex;
        self.sweep(point, Update::new(&NoUpdate, &[], &mut [], apex), true);
        if let Some(rank) = self.rank.as_mut() {
            let transport = self.backend.transport().expect("distributed backend");
            let schedule = &rank.schedule;
            let mine = schedule.chunk_ranges[schedule.rank()].clone();
            let started = std::time::Instant::now();
            transport.all_gather(
                &self.chunk_objective[mine.clone()],
                &mut rank.value_receive,
                &rank.value_counts,
            );
            rank.communication += started.elapsed();
            rank.extra_numbers_sent += (mine.len() * (schedule.ranks() - 1)) as u64;
            let mut at = 0;
            for q in 0..schedule.ranks() {
                let chunks = schedule.chunk_ranges[q].clone();
                self.chunk_objective[chunks.clone()]
                    .copy_from_slice(&rank.value_receive[at..at + chunks.len()]);
                at += chunks.len();
            }
        }
        self.value_evaluations += 1;
        self.chunk_objective.iter().sum()
    }

    /// The coordinates on which this process keeps a method's vectors current, as sorted
    /// runs: every coordinate, unless distributed; then the rank's state runs (the
    /// coordinates its boxes touch and those of the norm blocks it sums,
    /// [`crate::run::distribute`]). A method's own per-coordinate passes run over these;
    /// the fused update ([`Executor::evaluate_and_update`]) writes exactly these.
    pub fn local_runs(&self) -> &[Range<usize>] {
        &self.local_runs
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
        let gradient = &self.gradient[..];
        let apex = self.plan.apex;
        let blocks = apex.div_ceil(SUM_BLOCK);
        if self.reduce_partials.len() < blocks * N {
            self.reduce_partials.resize(blocks * N, 0.0);
        }
        let block_range = |b: usize| b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(apex);
        match self.rank.as_mut() {
            Some(rank) => {
                let transport = self.backend.transport().expect("distributed backend");
                let schedule = &rank.schedule;
                rank.reduce_send.clear();
                for &b in &schedule.norm_blocks[schedule.rank()] {
                    rank.reduce_send
                        .extend_from_slice(&partials(block_range(b as usize), gradient));
                }
                rank.reduce_counts.clear();
                rank.reduce_counts
                    .extend(schedule.norm_blocks.iter().map(|b| b.len() * N));
                let counts = &rank.reduce_counts;
                let total: usize = counts.iter().sum();
                if rank.reduce_receive.len() < total {
                    rank.reduce_receive.resize(total, 0.0);
                }
                let started = std::time::Instant::now();
                transport.all_gather(&rank.reduce_send, &mut rank.reduce_receive[..total], counts);
                rank.communication += started.elapsed();
                rank.extra_numbers_sent += (rank.reduce_send.len() * (schedule.ranks() - 1)) as u64;
                let mut at = 0;
                for blocks in &schedule.norm_blocks {
                    for &b in blocks {
                        let b = b as usize;
                        self.reduce_partials[b * N..(b + 1) * N]
                            .copy_from_slice(&rank.reduce_receive[at..at + N]);
                        at += N;
                    }
                }
            }
            None => {
                let shared = SharedSlice::new(&mut self.reduce_partials[..blocks * N]);
                let parallel = self.parallel && blocks >= 64;
                self.backend.for_each(parallel, blocks, |b| {
                    let sums = partials(block_range(b), gradient);
                    // SAFETY: each task writes its own block's `N` entries, in bounds.
                    unsafe { shared.range(b * N..(b + 1) * N) }.copy_from_slice(&sums);
                });
            }
        }
        let mut sums = [0.0; N];
        for block in self.reduce_partials[..blocks * N].chunks_exact(N) {
            for (sum, &p) in sums.iter_mut().zip(block) {
                *sum += p;
            }
        }
        sums
    }

    /// The result of the last evaluation (NaN before the first).
    pub fn last_evaluation(&self) -> Evaluation {
        self.last
    }

    /// The distributed step: every worker evaluates its chunks and scatter-adds their
    /// gradients; then deferred contributions are added worker by worker. On a distributed
    /// backend, this rank's worker only, and the deferred contributions wait for the
    /// exchange.
    ///
    /// `value_only`: the chunks' objectives only (no gradient, no deferred phase).
    fn sweep<R: UpdateRule + ?Sized>(
        &mut self,
        state: &[f64],
        update: Update<'_, R>,
        value_only: bool,
    ) {
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
                value_only,
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
        if value_only {
            return;
        }
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

    /// Distributed backend: the proposal on this rank's coordinates (its state runs: where
    /// its boxes touch and its norm blocks) and the sums of
    /// squares of its norm blocks, in one pass in coordinate order (each block's proposal
    /// right before its sum, while its gradient is in cache).
    fn finish_rank<R: UpdateRule + ?Sized>(&mut self, update: Update<'_, R>) {
        let Some(rank) = self.rank.as_ref() else {
            return;
        };
        let schedule = &rank.schedule;
        let gradient = &self.gradient;
        let runs = &schedule.state_runs;
        let mut run_index = 0;
        let mut done_until = 0;
        // Proposes every coordinate of the update runs below `limit` not proposed yet.
        let mut propose_until = |limit: usize| {
            while let Some(run) = runs.get(run_index) {
                let range = run.start.max(done_until)..run.end.min(limit);
                if !range.is_empty() {
                    // SAFETY: only this thread touches the proposal's buffers (the rank's
                    // own pass, after its sweep).
                    unsafe { update_range(range.clone(), &gradient[range], update) };
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
    fn finish<R: UpdateRule + ?Sized>(&mut self, update: Update<'_, R>) {
        let gradient = SharedSlice::new(&mut self.gradient);
        let partials = SharedSlice::new(&mut self.norm_partials);
        let blocks = &self.blocks.after_sweep;
        // A few blocks (a chain's worker boundaries) are not worth handing to the pool.
        let parallel = self.parallel && blocks.len() >= 64;
        self.backend.for_each(parallel, blocks.len(), |i| {
            // SAFETY: the sweep is over (nothing else writes the gradient), every block in
            // `after_sweep` exists and is listed once (`Plan::block_schedule`), and a task
            // touches only its own block's entries.
            unsafe { finish_block(blocks[i] as usize, gradient, update, partials) };
        });
    }

    /// The box whose value grew most from `start` to `now` (two points in global
    /// coordinates), with its two values: a slow, box-by-box search, used only to report
    /// a run that blows up. A collective call on a distributed backend.
    pub fn box_that_grew_most(&self, start: &[f64], now: &[f64]) -> Option<(usize, f64, f64)> {
        let plan = &self.plan;
        let mut best: Option<(usize, f64, f64)> = None;
        let mut inputs = Vec::new();
        let chunks = match &self.rank {
            Some(rank) => &plan.chunks[rank.schedule.chunks()],
            None => &plan.chunks[..],
        };
        for chunk in chunks {
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
                        .value_with(&mut workspace, &inputs, plan.box_data(b))
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
        let Some(transport) = self.backend.transport() else {
            return best;
        };
        let ranks = transport.ranks();
        let mine = best.map_or([f64::NAN; 3], |(b, before, after)| {
            [b as f64, before, after]
        });
        let mut all = vec![0.0; 3 * ranks];
        transport.all_gather(&mine, &mut all, &vec![3; ranks]);
        all.chunks_exact(3)
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
                let value = group.objective.value_and_gradient_with(
                    &mut workspace,
                    &inputs,
                    plan.box_data(b),
                    &mut gradient,
                );
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
