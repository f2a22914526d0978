//! The shared-memory placement (serial and threads backends): every coordinate lives in
//! this process's buffers, nothing is exchanged, and reductions are local.
//!
//! The chunk sequence is split into one contiguous range per thread, balanced by cost
//! (`Plan::partition`). A worker adds directly onto the coordinates that its range touches
//! first and defers its contributions to coordinates that an earlier range touched; those
//! are added after the sweep, range by range, in order. The sweep finishes the norm blocks
//! one worker completes; the others are finished after it. The serial backend is the same
//! with one range.

use super::sweep::Worker;
use super::update::{finish_block, Update};
use super::{BlockSums, Buffers, SweepLayout, PARALLEL_THRESHOLD};
use crate::run::backend::Backend;
use crate::run::method::UpdateRule;
use crate::run::plan::{Plan, SUM_BLOCK};
use crate::run::shared_slice::SharedSlice;
use std::ops::Range;
use std::sync::Mutex;

/// Serial or threads: the workers and whether they run on the pool.
pub(super) struct SharedMemory {
    backend: Backend,
    /// Whether work is handed to the pool (threads backend, large enough plan).
    parallel: bool,
    workers: Vec<Mutex<Worker>>,
    /// Every coordinate, as one run.
    local_runs: Vec<Range<usize>>,
    /// Every chunk.
    chunks: Range<usize>,
}

impl SharedMemory {
    /// One worker per thread of `backend` (serial or threads).
    pub(super) fn new(plan: &Plan, backend: Backend) -> (SharedMemory, SweepLayout) {
        // The partition (and so the deferred contributions) depends only on the thread
        // count; whether the workers then run in parallel or one after the other on the
        // calling thread does not change a bit.
        let threads = backend.thread_count();
        let parallel = threads > 1 && plan.local_len() >= PARALLEL_THRESHOLD;
        let ranges = plan.partition(threads);
        let blocks = plan.block_schedule(&ranges);
        let (layout, deferred_coordinates) =
            SweepLayout::new(plan, &ranges, plan.deferrals(&ranges), blocks);
        let workers = ranges
            .into_iter()
            .zip(deferred_coordinates)
            .map(|(range, coordinates)| Mutex::new(Worker::new(plan, range, coordinates)))
            .collect();
        let shared = SharedMemory {
            backend,
            parallel,
            workers,
            local_runs: std::iter::once(0..plan.apex).collect(),
            chunks: 0..plan.chunks.len(),
        };
        (shared, layout)
    }

    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Several threads and several workers.
    pub(super) fn can_split(&self) -> bool {
        self.backend.thread_count() > 1 && self.workers.len() > 1
    }

    /// Hand the sweep to the pool (when there is one).
    pub(super) fn set_parallel(&mut self, parallel: bool) {
        self.parallel = parallel && self.backend.thread_count() > 1;
    }

    pub(super) fn local_runs(&self) -> &[Range<usize>] {
        &self.local_runs
    }

    pub(super) fn own_chunks(&self) -> Range<usize> {
        self.chunks.clone()
    }

    /// The sweep with the fused update, then the blocks it could not finish.
    pub(super) fn evaluate<R: UpdateRule + ?Sized>(
        &mut self,
        plan: &Plan,
        buffers: &mut Buffers,
        state: &[f64],
        update: Update<'_, R>,
    ) {
        // The sweep finishes most blocks of the gradient as soon as they are complete.
        self.sweep(plan, buffers, state, update, false);
        self.finish(buffers, update);
    }

    /// The chunks' objectives only.
    pub(super) fn evaluate_value(&mut self, plan: &Plan, buffers: &mut Buffers, point: &[f64]) {
        self.sweep(plan, buffers, point, super::no_update(plan.apex), true);
    }

    /// Every worker evaluates its chunks and scatter-adds their gradients; then deferred
    /// contributions are added worker by worker (not for `value_only`).
    fn sweep<R: UpdateRule + ?Sized>(
        &mut self,
        plan: &Plan,
        buffers: &mut Buffers,
        state: &[f64],
        update: Update<'_, R>,
        value_only: bool,
    ) {
        let context = buffers.sweep_context(plan, state, update, value_only);
        let workers = &self.workers;
        self.backend.for_each(self.parallel, workers.len(), |w| {
            let mut worker = workers[w].lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: `worker.chunks` is range `w` of the partition the deferrals and the
            // block schedule were computed for (`SharedMemory::new`), and each worker runs
            // once per sweep; what `SweepContext::sweep` requires of them is checked in
            // debug builds by `Plan::check_disjoint_writes`.
            unsafe { context.sweep(&mut worker) };
        });
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
                buffers.gradient[g as usize] += value;
            }
        }
    }

    /// The blocks of the gradient that the sweep could not finish (those with deferred
    /// contributions, or with contributions from several workers): their sums of squares
    /// and the update.
    fn finish<R: UpdateRule + ?Sized>(&mut self, buffers: &mut Buffers, update: Update<'_, R>) {
        let gradient = SharedSlice::new(&mut buffers.gradient);
        let partials = SharedSlice::new(&mut buffers.norm_partials);
        let blocks = &buffers.layout.blocks.after_sweep;
        // A few blocks (a chain's worker boundaries) are not worth handing to the pool.
        let parallel = self.parallel && blocks.len() >= 64;
        self.backend.for_each(parallel, blocks.len(), |i| {
            // SAFETY: the sweep is over (nothing else writes the gradient), every block in
            // `after_sweep` exists and is listed once (`Plan::block_schedule`), and a task
            // touches only its own block's entries.
            unsafe { finish_block(blocks[i] as usize, gradient, update, partials) };
        });
    }

    /// Every block's partials, computed here (in parallel on large plans).
    pub(super) fn reduce<const N: usize>(
        &mut self,
        gradient: &[f64],
        block_partials: &mut [f64],
        partials: &impl BlockSums<N>,
    ) {
        let apex = gradient.len();
        let blocks = block_partials.len() / N;
        let shared = SharedSlice::new(block_partials);
        let parallel = self.parallel && blocks >= 64;
        self.backend.for_each(parallel, blocks, |b| {
            let sums = partials(b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(apex), gradient);
            // SAFETY: each task writes its own block's `N` entries, in bounds.
            unsafe { shared.range(b * N..(b + 1) * N) }.copy_from_slice(&sums);
        });
    }
}
