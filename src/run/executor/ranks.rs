//! The ranks placement (distributed backend): this process is one rank of several that
//! share no memory. It sweeps its own chunks, sends its contributions to shared
//! coordinates (and the entries other ranks need for their norm blocks) and assembles each
//! such coordinate's gradient in plan order ([`crate::run::distribute`]), updates the
//! coordinates it keeps (its state runs), and all-gathers the scalars each rank computed
//! (chunks' objectives, norm partials, reduction partials, box values), so that every rank
//! adds them up in the serial order. It counts the numbers it hands to the transport and
//! the time spent in its calls.

use super::sweep::Worker;
use super::update::{update_range, Update};
use super::{BlockSums, Buffers, SweepLayout};
use crate::run::backend::Backend;
use crate::run::distribute::{Item, RankSchedule, Source};
use crate::run::method::UpdateRule;
use crate::run::norm::block_partial;
use crate::run::partition::BlockSchedule;
use crate::run::plan::{Plan, SUM_BLOCK};
use crate::run::transport::Transport;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A rank's schedule, worker, exchange buffers, transport and traffic counters.
pub(super) struct Ranks {
    /// The distributed backend (holds `transport`).
    backend: Backend,
    transport: Rc<dyn Transport>,
    schedule: RankSchedule,
    /// This rank's share of the chunks.
    worker: Worker,
    send: Vec<f64>,
    receive: Vec<f64>,
    gather_send: Vec<f64>,
    gather_receive: Vec<f64>,
    gather_counts: Vec<usize>,
    /// Numbers this rank handed to the transport in evaluations, weighted by receivers.
    numbers_sent: u64,
    /// Time this rank spent in the transport's calls during evaluations (waiting included).
    communication: Duration,
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

impl Ranks {
    /// This process's rank of `transport`, with the sweep layout of the ranks' partition.
    pub(super) fn new(plan: &Plan, transport: Rc<dyn Transport>) -> (Ranks, SweepLayout) {
        let ranges = RankSchedule::ranges(plan, transport.ranks());
        let deferrals = plan.deferrals(&ranges);
        let me = transport.rank();
        let schedule = RankSchedule::with_deferrals(plan, ranges.clone(), &deferrals, me);
        // Every block is finished by the rank's own pass, after the exchange.
        let blocks = BlockSchedule::none(plan.chunks.len());
        let (layout, mut deferred_coordinates) = SweepLayout::new(plan, &ranges, deferrals, blocks);
        // A rank keeps scratch for its own share only.
        let worker = Worker::new(
            plan,
            ranges[me].clone(),
            std::mem::take(&mut deferred_coordinates[me]),
        );
        let gather_counts: Vec<usize> = (0..schedule.ranks())
            .map(|q| 1 + schedule.chunk_ranges[q].len() + schedule.norm_blocks[q].len())
            .collect();
        let value_counts: Vec<usize> = (0..schedule.ranks())
            .map(|q| schedule.chunk_ranges[q].len())
            .collect();
        let ranks = Ranks {
            backend: Backend::Distributed(transport.clone()),
            transport,
            worker,
            value_receive: vec![0.0; value_counts.iter().sum()],
            value_counts,
            reduce_send: Vec::new(),
            reduce_receive: Vec::new(),
            reduce_counts: Vec::with_capacity(schedule.ranks()),
            extra_numbers_sent: 0,
            send: vec![0.0; schedule.send_items.len()],
            receive: vec![0.0; schedule.receive_counts.iter().sum()],
            gather_send: Vec::with_capacity(gather_counts[me]),
            gather_receive: vec![0.0; gather_counts.iter().sum()],
            gather_counts,
            schedule,
            numbers_sent: 0,
            communication: Duration::ZERO,
        };
        (ranks, layout)
    }

    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The rank's state runs: where its boxes touch and its norm blocks.
    pub(super) fn local_runs(&self) -> &[Range<usize>] {
        &self.schedule.state_runs
    }

    pub(super) fn own_chunks(&self) -> Range<usize> {
        self.schedule.chunks()
    }

    /// Box values travel with the all-gather from now on.
    pub(super) fn record_box_values(&mut self, plan: &Plan) {
        for (q, count) in self.gather_counts.iter_mut().enumerate() {
            *count += self.schedule.chunk_ranges[q]
                .clone()
                .map(|c| plan.chunks[c].count as usize)
                .sum::<usize>();
        }
        self.gather_receive = vec![0.0; self.gather_counts.iter().sum()];
        self.gather_send = Vec::with_capacity(self.gather_counts[self.schedule.rank()]);
    }

    /// The sweep of this rank's chunks (no update: the gradient of shared coordinates is
    /// not complete yet), the exchange, the update with the norm partials on this rank's
    /// coordinates, and the all-gather of the scalars. Returns whether any rank saw an
    /// interrupt (`interrupted`: this one did).
    pub(super) fn evaluate<R: UpdateRule + ?Sized>(
        &mut self,
        plan: &Plan,
        buffers: &mut Buffers,
        state: &[f64],
        update: Update<'_, R>,
        interrupted: bool,
    ) -> bool {
        self.sweep(plan, buffers, state, false);
        self.exchange(buffers);
        self.finish(buffers, update);
        self.share_scalars(plan, buffers, interrupted)
    }

    /// This rank's chunks' objectives, then every rank's (one all-gather).
    pub(super) fn evaluate_value(&mut self, plan: &Plan, buffers: &mut Buffers, point: &[f64]) {
        self.sweep(plan, buffers, point, true);
        let schedule = &self.schedule;
        let mine = schedule.chunks();
        let started = Instant::now();
        self.transport.all_gather(
            &buffers.chunk_objective[mine.clone()],
            &mut self.value_receive,
            &self.value_counts,
        );
        self.communication += started.elapsed();
        self.extra_numbers_sent += (mine.len() * (schedule.ranks() - 1)) as u64;
        let mut at = 0;
        for chunks in &schedule.chunk_ranges {
            buffers.chunk_objective[chunks.clone()]
                .copy_from_slice(&self.value_receive[at..at + chunks.len()]);
            at += chunks.len();
        }
    }

    /// This rank's worker evaluates its chunks and scatter-adds their gradients; its
    /// deferred contributions wait for the exchange.
    fn sweep(&mut self, plan: &Plan, buffers: &mut Buffers, state: &[f64], value_only: bool) {
        let context = buffers.sweep_context(plan, state, super::no_update(plan.apex), value_only);
        // SAFETY: `worker.chunks` is this rank's range of the partition the deferrals and
        // the (empty) block schedule were computed for (`Ranks::new`), and only this
        // worker runs.
        unsafe { context.sweep(&mut self.worker) };
    }

    /// Sends this rank's contributions to shared coordinates (and the entries other ranks
    /// need for their norm blocks), then assembles each such coordinate's gradient in plan
    /// order ([`crate::run::distribute`]).
    fn exchange(&mut self, buffers: &mut Buffers) {
        let schedule = &self.schedule;
        let deferred = &self.worker.deferred_values;
        let gradient = &mut buffers.gradient;
        for (slot, item) in self.send.iter_mut().zip(&schedule.send_items) {
            *slot = match *item {
                Item::Partial(g) => gradient[g as usize],
                Item::Deferred(j) => deferred[j as usize],
            };
        }
        let started = Instant::now();
        self.transport.exchange(
            &self.send,
            &schedule.send_counts,
            &mut self.receive,
            &schedule.receive_counts,
        );
        self.communication += started.elapsed();
        self.numbers_sent += self.send.len() as u64;
        let receive = &self.receive;
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

    /// The update on this rank's coordinates (its state runs: where its boxes touch and
    /// its norm blocks) and the sums of squares of its norm blocks, in one pass in
    /// coordinate order (each block's update right before its sum, while its gradient is
    /// in cache).
    fn finish<R: UpdateRule + ?Sized>(&self, buffers: &mut Buffers, update: Update<'_, R>) {
        let schedule = &self.schedule;
        let gradient = &buffers.gradient;
        let runs = &schedule.state_runs;
        let mut run_index = 0;
        let mut done_until = 0;
        // Updates every coordinate of the state runs below `limit` not updated yet.
        let mut update_until = |limit: usize| {
            while let Some(run) = runs.get(run_index) {
                let range = run.start.max(done_until)..run.end.min(limit);
                if !range.is_empty() {
                    // SAFETY: only this thread touches the update's buffers (the rank's
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
            update_until(end);
            buffers.norm_partials[block as usize] = block_partial(&gradient[start..end]);
        }
        update_until(usize::MAX);
    }

    /// All-gathers the interrupt flags, the chunks' objectives, the norm blocks' partial
    /// sums (and the box values, if recorded), each computed by one rank, so that every
    /// rank adds them up in the serial order. Returns whether any rank was interrupted.
    fn share_scalars(&mut self, plan: &Plan, buffers: &mut Buffers, interrupted: bool) -> bool {
        let schedule = &self.schedule;
        let me = schedule.rank();
        let send = &mut self.gather_send;
        send.clear();
        send.push(if interrupted { 1.0 } else { 0.0 });
        send.extend_from_slice(&buffers.chunk_objective[schedule.chunks()]);
        send.extend(
            schedule.norm_blocks[me]
                .iter()
                .map(|&b| buffers.norm_partials[b as usize]),
        );
        if let Some(values) = &buffers.box_values {
            for c in schedule.chunks() {
                send.extend(plan.chunk_boxes(c).iter().map(|&b| values[b as usize]));
            }
        }
        let started = Instant::now();
        self.transport
            .all_gather(send, &mut self.gather_receive, &self.gather_counts);
        self.communication += started.elapsed();
        self.numbers_sent += (send.len() * (schedule.ranks() - 1)) as u64;
        let mut at = 0;
        let mut interrupt_requested = false;
        for q in 0..schedule.ranks() {
            let piece = &self.gather_receive[at..at + self.gather_counts[q]];
            at += self.gather_counts[q];
            interrupt_requested |= piece[0] != 0.0;
            let chunks = schedule.chunk_ranges[q].clone();
            let (objectives, rest) = piece[1..].split_at(chunks.len());
            buffers.chunk_objective[chunks.clone()].copy_from_slice(objectives);
            let (partials, box_values) = rest.split_at(schedule.norm_blocks[q].len());
            for (&b, &p) in schedule.norm_blocks[q].iter().zip(partials) {
                buffers.norm_partials[b as usize] = p;
            }
            if let Some(values) = buffers.box_values.as_mut() {
                let mut k = 0;
                for c in chunks {
                    for &b in plan.chunk_boxes(c) {
                        values[b as usize] = box_values[k];
                        k += 1;
                    }
                }
            }
        }
        interrupt_requested
    }

    /// The partials of this rank's norm blocks, computed here, then every rank's (one
    /// all-gather).
    pub(super) fn reduce<const N: usize>(
        &mut self,
        gradient: &[f64],
        block_partials: &mut [f64],
        partials: &impl BlockSums<N>,
    ) {
        let apex = gradient.len();
        let schedule = &self.schedule;
        self.reduce_send.clear();
        for &b in &schedule.norm_blocks[schedule.rank()] {
            let b = b as usize;
            let range = b * SUM_BLOCK..((b + 1) * SUM_BLOCK).min(apex);
            self.reduce_send
                .extend_from_slice(&partials(range, gradient));
        }
        self.reduce_counts.clear();
        self.reduce_counts
            .extend(schedule.norm_blocks.iter().map(|b| b.len() * N));
        let counts = &self.reduce_counts;
        let total: usize = counts.iter().sum();
        if self.reduce_receive.len() < total {
            self.reduce_receive.resize(total, 0.0);
        }
        let started = Instant::now();
        self.transport
            .all_gather(&self.reduce_send, &mut self.reduce_receive[..total], counts);
        self.communication += started.elapsed();
        self.extra_numbers_sent += (self.reduce_send.len() * (schedule.ranks() - 1)) as u64;
        let mut at = 0;
        for blocks in &schedule.norm_blocks {
            for &b in blocks {
                let b = b as usize;
                block_partials[b * N..(b + 1) * N]
                    .copy_from_slice(&self.reduce_receive[at..at + N]);
                at += N;
            }
        }
    }

    /// Every rank's `mine` (all as long), in rank order.
    pub(super) fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        let ranks = self.transport.ranks();
        let mut all = vec![0.0; mine.len() * ranks];
        self.transport
            .all_gather(mine, &mut all, &vec![mine.len(); ranks]);
        all
    }

    /// The smallest of the ranks' values.
    pub(super) fn min(&self, value: u64) -> u64 {
        self.transport.min(value)
    }

    /// Makes `values` (global coordinates every rank updates in its own share) complete on
    /// rank 0: every rank sends the coordinates it reports for.
    pub(super) fn collect_on_first_rank(&self, values: &mut [f64]) {
        let schedule = &self.schedule;
        let counts: Vec<usize> = schedule
            .owned_runs
            .iter()
            .map(|runs| runs.iter().map(|r| r.len()).sum())
            .collect();
        let mut send = Vec::with_capacity(counts[schedule.rank()]);
        for run in &schedule.owned_runs[schedule.rank()] {
            send.extend_from_slice(&values[run.clone()]);
        }
        let first = schedule.rank() == 0;
        let mut receive = vec![0.0; if first { counts.iter().sum() } else { 0 }];
        self.transport.gather(&send, &mut receive, &counts);
        if first {
            let mut at = counts[0];
            for runs in &schedule.owned_runs[1..] {
                for run in runs {
                    values[run.clone()].copy_from_slice(&receive[at..at + run.len()]);
                    at += run.len();
                }
            }
        }
    }

    /// Seconds spent in the transport's calls during evaluations so far.
    pub(super) fn communication_seconds(&self) -> f64 {
        self.communication.as_secs_f64()
    }

    /// Bytes sent by all ranks together per evaluation so far (a collective call).
    pub(super) fn bytes_sent_per_evaluation(&self, evaluations: u64) -> f64 {
        let total: f64 = self.all_gather(&[self.numbers_sent as f64]).iter().sum();
        8.0 * total / evaluations.max(1) as f64
    }

    /// Bytes all ranks together handed to the transport in value-only evaluations and
    /// reductions so far (a collective call).
    pub(super) fn line_search_bytes_sent(&self) -> f64 {
        let total: f64 = self
            .all_gather(&[self.extra_numbers_sent as f64])
            .iter()
            .sum();
        8.0 * total
    }
}
