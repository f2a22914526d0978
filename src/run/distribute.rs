//! Distributed memory: a plan split over *ranks*, processes that share no memory (MPI), and
//! what they must tell each other per step so that every rank ends with the same bits as the
//! serial backend.
//!
//! **Who does what.** The plan's chunks are cut into one contiguous range per rank, balanced
//! by cost ([`Plan::partition`], as for threads). A rank evaluates only its own boxes, so it
//! reads and updates only the coordinates its boxes touch: a private variable lives on its
//! box's rank and never travels. A coordinate touched by several ranks is *shared*.
//!
//! **The exchange, in plan order.** As with threads, the first rank (in plan order) that
//! touches a coordinate sums its own contributions directly; later ranks keep theirs apart
//! (deferred). Per step, every rank sends, for each shared coordinate, its partial sum (the
//! first rank) or its deferred contributions one by one (the others) to every other rank that
//! touches the coordinate. Each of them then adds them up in the same order, partial first,
//! then rank after rank, contribution after contribution: plan order, so the same bits as
//! the serial scatter-add, on every rank. (An MPI all-reduce would be simpler, but its
//! summation order is up to the MPI library, so it cannot promise those bits.)
//!
//! **The norm and the objective.** The gradient norm is summed in fixed blocks of
//! [`SUM_BLOCK`] coordinates. Each block is summed by one rank that holds the whole block's
//! gradient (one that touches all its coordinates, or else the one that touches most of
//! them, which then also receives the missing entries in the exchange above). The blocks'
//! partials (sums of squares, scaled when they would underflow or overflow:
//! `run::norm`) and the chunks' objectives are then all-gathered, each number computed by
//! exactly one rank, and every rank adds them up in the serial order.
//!
//! **Reductions of the methods' vectors** (line searches' `g . d`, lbfgs's dot products).
//! They are summed in the same fixed blocks as the norm, each block by the rank that sums
//! its norm block, which therefore needs correct entries of the method's vectors on the
//! whole block, not only where its boxes touch it. So a rank keeps its vectors current on
//! its *state runs*: the coordinates its boxes touch and every coordinate of its norm
//! blocks. On the extra coordinates it has the assembled gradient (received in the exchange
//! above; zero where no box touches), and it runs the method's update there too (the fused
//! rule, `Executor::finish_rank`, and the methods' own passes over
//! `Executor::local_runs`): a per-coordinate update of correct entries gives correct
//! entries, and every rank starts from the whole initial state. Each block's partials are
//! then computed by one rank from correct entries and all-gathered, and every rank adds
//! them in block order (`Executor::reduce`), as the serial backend does: one all-gather of
//! a few numbers per block owner per reduction. A trial point's objective
//! (`Executor::evaluate_value`) needs no exchange: each rank evaluates its boxes at the
//! trial point (its state runs hold it where its boxes read) and the chunks' objectives are
//! all-gathered, one reduction per trial.
//!
//! Everything here is a pure function of the plan and the number of ranks, so every rank
//! computes every other rank's counts itself, and `catopt explain` can predict the bytes
//! exchanged per step without running anything.

use super::partition::Deferrals;
use super::plan::{Plan, SUM_BLOCK};
use std::ops::Range;

/// Where an assembled gradient entry's summands come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// This rank's partial sum at the coordinate (it touches it first in plan order).
    OwnPartial,
    /// This rank's `j`-th deferred contribution.
    OwnDeferred(u32),
    /// Entry `i` of the receive buffer.
    Received(u32),
}

/// One number this rank sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// Its partial sum at a coordinate.
    Partial(u32),
    /// Its `j`-th deferred contribution.
    Deferred(u32),
}

/// How one coordinate's final gradient is assembled on this rank: `start`, then the `adds`,
/// in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assembly {
    pub coordinate: u32,
    pub start: Source,
    pub adds: Range<u32>,
}

/// One rank's share of a distributed plan and its part in the per-step exchange.
#[derive(Clone, Debug)]
pub struct RankSchedule {
    rank: usize,
    ranks: usize,
    /// Every rank's chunk range (contiguous, in rank order).
    pub(crate) chunk_ranges: Vec<Range<usize>>,
    /// Per rank: the coordinates whose final values it reports to rank 0 (those it touches
    /// first; rank 0 also the untouched ones), as sorted runs.
    pub(crate) owned_runs: Vec<Vec<Range<usize>>>,
    /// What this rank sends, destination after destination.
    pub(crate) send_items: Vec<Item>,
    /// Numbers sent to each rank (zero to itself).
    pub(crate) send_counts: Vec<usize>,
    /// Numbers received from each rank (zero from itself).
    pub(crate) receive_counts: Vec<usize>,
    /// The coordinates this rank assembles from several ranks' contributions.
    pub(crate) assembly: Vec<Assembly>,
    /// The summands of `assembly`'s `adds`.
    pub(crate) add_sources: Vec<Source>,
    /// Per rank: the norm blocks whose partial sum it computes, ascending.
    pub(crate) norm_blocks: Vec<Vec<u32>>,
    /// Coordinates whose method vectors this rank keeps current and updates: those its
    /// boxes touch (rank 0 also takes the ones no box touches, whose gradient is zero) and
    /// every coordinate of its norm blocks, as sorted runs (see "Reductions" in the module doc).
    pub(crate) state_runs: Vec<Range<usize>>,
}

/// Per-step traffic of a distributed plan, in numbers (8-byte floats) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// Per rank: numbers sent in the gradient exchange (to all peers together).
    pub exchange_numbers: Vec<usize>,
    /// Per rank: numbers it contributes to the all-gather of objectives and norm partials
    /// (each sent to every other rank); the first is the interrupt flag.
    pub gather_numbers: Vec<usize>,
    /// Shared coordinates (touched by two or more ranks).
    pub shared_coordinates: usize,
    /// Coordinates sent only so that a norm block is summed in one place.
    pub norm_transfers: usize,
    /// Per rank: its boxes.
    pub boxes: Vec<usize>,
    /// Per rank: the coordinates it reads and updates (its boxes' variables; rank 0 also
    /// those of no box).
    pub coordinates: Vec<usize>,
}

impl Traffic {
    /// Bytes all ranks together send per step: exchange numbers plus all-gather numbers
    /// times the number of receivers, 8 bytes each.
    pub fn bytes_per_step(&self) -> u64 {
        let ranks = self.exchange_numbers.len() as u64;
        let exchange: u64 = self.exchange_numbers.iter().map(|&n| n as u64).sum();
        let gather: u64 = self.gather_numbers.iter().map(|&n| n as u64).sum();
        8 * (exchange + gather * ranks.saturating_sub(1))
    }
}

/// The coordinates each rank touches, with the first toucher (owner) of each coordinate.
struct Touchers {
    /// Per coordinate: the first rank that touches it, `u32::MAX` if none.
    owner: Vec<u32>,
    /// Coordinates touched by two or more ranks, ascending.
    shared: Vec<u32>,
    /// `touchers[start[i]..start[i + 1]]`: the ranks touching `shared[i]`, ascending.
    start: Vec<usize>,
    touchers: Vec<u32>,
}

impl Touchers {
    fn new(plan: &Plan, ranges: &[Range<usize>], owner: Vec<u32>) -> Touchers {
        let mut last = vec![u32::MAX; plan.apex()];
        let mut extra: Vec<(u32, u32)> = Vec::new();
        for (w, range) in ranges.iter().enumerate() {
            let w = w as u32;
            for c in range.clone() {
                plan.for_each_coordinate_of_chunk(c, |g| {
                    if last[g] != w {
                        if last[g] != u32::MAX {
                            extra.push((g as u32, w));
                        }
                        last[g] = w;
                    }
                });
            }
        }
        extra.sort_by_key(|&(g, _)| g); // stable: ranks stay ascending
        let mut shared = Vec::new();
        let mut start = vec![0];
        let mut touchers = Vec::new();
        for (i, &(g, w)) in extra.iter().enumerate() {
            if i == 0 || extra[i - 1].0 != g {
                if i > 0 {
                    start.push(touchers.len());
                }
                shared.push(g);
                touchers.push(owner[g as usize]);
            }
            touchers.push(w);
        }
        if !shared.is_empty() {
            start.push(touchers.len());
        }
        Touchers {
            owner,
            shared,
            start,
            touchers,
        }
    }

    /// The ranks touching `g`, ascending (empty if none).
    fn of(&self, g: u32) -> Touching<'_> {
        let owner = self.owner[g as usize];
        if owner == u32::MAX {
            return Touching::One(&[]);
        }
        match self.shared.binary_search(&g) {
            Ok(i) => Touching::Many(&self.touchers[self.start[i]..self.start[i + 1]]),
            Err(_) => Touching::One(std::slice::from_ref(&self.owner[g as usize])),
        }
    }
}

enum Touching<'a> {
    One(&'a [u32]),
    Many(&'a [u32]),
}

impl<'a> Touching<'a> {
    fn ranks(&self) -> &'a [u32] {
        match *self {
            Touching::One(r) | Touching::Many(r) => r,
        }
    }
}

/// Pushes `g` onto sorted runs.
fn push_run(runs: &mut Vec<Range<usize>>, g: usize) {
    match runs.last_mut() {
        Some(run) if run.end == g => run.end += 1,
        _ => runs.push(g..g + 1),
    }
}

impl RankSchedule {
    /// The schedule of rank `rank` of `ranks` for `plan`. Every rank computes the same
    /// partition and counts, so no communication is needed to agree on them.
    pub fn new(plan: &Plan, ranks: usize, rank: usize) -> RankSchedule {
        let ranges = Self::ranges(plan, ranks);
        let deferrals = plan.deferrals(&ranges);
        Self::build(plan, ranges, &deferrals, rank).0
    }

    /// Every rank's chunk range: the plan's partition, padded with empty ranges when there
    /// are more ranks than chunks.
    pub(crate) fn ranges(plan: &Plan, ranks: usize) -> Vec<Range<usize>> {
        let ranks = ranks.max(1);
        let mut chunk_ranges = plan.partition(ranks);
        while chunk_ranges.len() < ranks {
            let end = chunk_ranges.last().map_or(0, |r| r.end);
            chunk_ranges.push(end..end);
        }
        chunk_ranges
    }

    /// [`RankSchedule::new`] from the ranges' deferrals, which the executor needs too.
    pub(crate) fn with_deferrals(
        plan: &Plan,
        ranges: Vec<Range<usize>>,
        deferrals: &Deferrals,
        rank: usize,
    ) -> RankSchedule {
        Self::build(plan, ranges, deferrals, rank).0
    }

    /// The per-step traffic of `plan` over `ranks` ranks, as [`RankSchedule::new`] would
    /// arrange it (without box values in the all-gather).
    pub fn traffic(plan: &Plan, ranks: usize) -> Traffic {
        let ranges = Self::ranges(plan, ranks);
        let deferrals = plan.deferrals(&ranges);
        Self::build(plan, ranges, &deferrals, 0).1
    }

    /// The schedule of `rank` and the traffic of all ranks, for the chunk ranges
    /// `chunk_ranges` (one per rank) and their deferrals.
    fn build(
        plan: &Plan,
        chunk_ranges: Vec<Range<usize>>,
        deferrals: &Deferrals,
        rank: usize,
    ) -> (RankSchedule, Traffic) {
        let ranks = chunk_ranges.len();
        let touchers = Touchers::new(plan, &chunk_ranges, deferrals.first_toucher.clone());
        let apex = plan.apex();
        let me = rank as u32;

        // Each rank's deferred contributions, grouped by coordinate: (coordinate, j).
        let by_coordinate: Vec<Vec<(u32, u32)>> = deferrals
            .deferred_coordinates
            .iter()
            .map(|list| {
                let mut pairs: Vec<(u32, u32)> = list
                    .iter()
                    .enumerate()
                    .map(|(j, &g)| (g, j as u32))
                    .collect();
                pairs.sort_by_key(|&(g, _)| g); // stable: j ascending
                pairs
            })
            .collect();
        let deferred_of = |w: u32, g: u32| -> &[(u32, u32)] {
            let list = &by_coordinate[w as usize];
            let lo = list.partition_point(|&(c, _)| c < g);
            let hi = list.partition_point(|&(c, _)| c <= g);
            &list[lo..hi]
        };

        // Norm blocks: who sums each, and which entries must be sent there.
        let block_count = apex.div_ceil(SUM_BLOCK);
        let mut norm_blocks = vec![Vec::new(); ranks];
        let mut transfers: Vec<(u32, u32)> = Vec::new(); // (coordinate, destination)
        let mut counts = vec![0usize; ranks];
        let mut seen: Vec<u32> = Vec::new();
        for block in 0..block_count {
            let range = block * SUM_BLOCK..((block + 1) * SUM_BLOCK).min(apex);
            let mut touched = 0;
            for g in range.clone() {
                for &r in touchers.of(g as u32).ranks() {
                    if counts[r as usize] == 0 {
                        seen.push(r);
                    }
                    counts[r as usize] += 1;
                }
                if touchers.owner[g] != u32::MAX {
                    touched += 1;
                }
            }
            seen.sort_unstable();
            let designated = seen
                .iter()
                .copied()
                .find(|&r| counts[r as usize] == touched)
                .or_else(|| {
                    // The rank that touches most of the block (the lowest on a tie).
                    seen.iter()
                        .copied()
                        .max_by_key(|&r| (counts[r as usize], std::cmp::Reverse(r)))
                })
                .unwrap_or(0);
            if counts[designated as usize] != touched {
                for g in range {
                    let touching = touchers.of(g as u32);
                    let ranks_touching = touching.ranks();
                    if !ranks_touching.is_empty() && !ranks_touching.contains(&designated) {
                        transfers.push((g as u32, designated));
                    }
                }
            }
            norm_blocks[designated as usize].push(block as u32);
            for &r in &seen {
                counts[r as usize] = 0;
            }
            seen.clear();
        }

        // The coordinates whose gradient travels: shared ones and norm transfers, ascending.
        let mut communicated: Vec<(u32, Option<u32>)> = Vec::new();
        {
            let (mut i, mut j) = (0, 0);
            let shared = &touchers.shared;
            while i < shared.len() || j < transfers.len() {
                let next_shared = shared.get(i).copied().unwrap_or(u32::MAX);
                let next_transfer = transfers.get(j).map_or(u32::MAX, |t| t.0);
                if next_shared < next_transfer {
                    communicated.push((next_shared, None));
                    i += 1;
                } else if next_transfer < next_shared {
                    communicated.push((next_transfer, Some(transfers[j].1)));
                    j += 1;
                } else {
                    communicated.push((next_shared, Some(transfers[j].1)));
                    i += 1;
                    j += 1;
                }
            }
        }

        let mut send_lists: Vec<Vec<Item>> = vec![Vec::new(); ranks];
        let mut exchange_numbers = vec![0usize; ranks];
        let mut receive_position = vec![0usize; ranks];
        let mut assembly = Vec::new();
        let mut pending_sources: Vec<(u32, u32)> = Vec::new();
        let mut pending: Vec<(u32, u32)> = Vec::new(); // (sender, items) for this coordinate
        for &(g, transfer) in &communicated {
            let touching = touchers.of(g).ranks();
            let owner = touching[0];
            let receivers = touching.iter().copied().chain(transfer);
            // Items each toucher sends for g: the owner its partial, the others their
            // deferred contributions.
            pending.clear();
            for &t in touching {
                let n = if t == owner {
                    1
                } else {
                    deferred_of(t, g).len() as u32
                };
                pending.push((t, n));
            }
            for q in receivers {
                for &(t, n) in &pending {
                    if t != q {
                        exchange_numbers[t as usize] += n as usize;
                    }
                }
            }
            // What this rank sends.
            if touching.contains(&me) {
                for q in touching.iter().copied().chain(transfer) {
                    if q == me {
                        continue;
                    }
                    let list = &mut send_lists[q as usize];
                    if me == owner {
                        list.push(Item::Partial(g));
                    } else {
                        list.extend(deferred_of(me, g).iter().map(|&(_, j)| Item::Deferred(j)));
                    }
                }
            }
            // What this rank receives and assembles. Received summands are noted as
            // (sender, offset in the sender's message) until the message sizes are known.
            let needs = touching.contains(&me) || transfer == Some(me);
            if needs {
                let start = if owner == me {
                    None
                } else {
                    let p = receive_position[owner as usize];
                    receive_position[owner as usize] += 1;
                    Some((owner, p as u32))
                };
                let first_add = pending_sources.len() as u32;
                for &(t, n) in pending.iter().skip(1) {
                    if t == me {
                        pending_sources
                            .extend(deferred_of(me, g).iter().map(|&(_, j)| (u32::MAX, j)));
                    } else {
                        let p = receive_position[t as usize] as u32;
                        receive_position[t as usize] += n as usize;
                        pending_sources.extend((0..n).map(|i| (t, p + i)));
                    }
                }
                assembly.push((g, start, first_add..pending_sources.len() as u32));
            }
        }
        // The receive buffer holds the senders' messages in rank order.
        let receive_counts: Vec<usize> = (0..ranks)
            .map(|q| if q == rank { 0 } else { receive_position[q] })
            .collect();
        let mut displacement = vec![0usize; ranks];
        for q in 1..ranks {
            displacement[q] = displacement[q - 1] + receive_counts[q - 1];
        }
        let resolve = |(sender, value): (u32, u32)| {
            if sender == u32::MAX {
                Source::OwnDeferred(value)
            } else {
                Source::Received(displacement[sender as usize] as u32 + value)
            }
        };
        let add_sources: Vec<Source> = pending_sources.into_iter().map(resolve).collect();
        let assembly: Vec<Assembly> = assembly
            .into_iter()
            .map(|(coordinate, start, adds)| Assembly {
                coordinate,
                start: start.map_or(Source::OwnPartial, resolve),
                adds,
            })
            .collect();
        let send_counts: Vec<usize> = send_lists.iter().map(Vec::len).collect();
        let send_items: Vec<Item> = send_lists.into_iter().flatten().collect();

        // Update and ownership runs.
        let mut update_runs = Vec::new();
        let mut owned_runs = vec![Vec::new(); ranks];
        let mut coordinates = vec![0usize; ranks];
        let mut next_shared = 0;
        for g in 0..apex {
            let owner = touchers.owner[g];
            match touchers.of(g as u32).ranks() {
                [] => coordinates[0] += 1,
                touching => touching.iter().for_each(|&r| coordinates[r as usize] += 1),
            }
            let touches_me = if owner == u32::MAX {
                rank == 0
            } else if owner == me {
                true
            } else if touchers.shared.get(next_shared) == Some(&(g as u32)) {
                matches!(touchers.of(g as u32), Touching::Many(r) if r.contains(&me))
            } else {
                false
            };
            if touchers.shared.get(next_shared) == Some(&(g as u32)) {
                next_shared += 1;
            }
            if touches_me {
                push_run(&mut update_runs, g);
            }
            let reporter = if owner == u32::MAX { 0 } else { owner as usize };
            push_run(&mut owned_runs[reporter], g);
        }

        // The state runs: the update runs merged with this rank's norm blocks.
        let mut state_runs: Vec<Range<usize>> = Vec::with_capacity(update_runs.len());
        {
            let blocks = norm_blocks[rank].iter().map(|&b| {
                let start = b as usize * SUM_BLOCK;
                start..(start + SUM_BLOCK).min(apex)
            });
            let mut all: Vec<Range<usize>> = update_runs.iter().cloned().chain(blocks).collect();
            all.sort_unstable_by_key(|r| r.start);
            for run in all {
                match state_runs.last_mut() {
                    Some(last) if last.end >= run.start => last.end = last.end.max(run.end),
                    _ => state_runs.push(run),
                }
            }
        }
        let gather_numbers = (0..ranks)
            .map(|r| 1 + chunk_ranges[r].len() + norm_blocks[r].len())
            .collect();
        let traffic = Traffic {
            exchange_numbers,
            gather_numbers,
            shared_coordinates: touchers.shared.len(),
            norm_transfers: transfers.len(),
            boxes: chunk_ranges
                .iter()
                .map(|range| range.clone().map(|c| plan.chunk_boxes(c).len()).sum())
                .collect(),
            coordinates,
        };
        let schedule = RankSchedule {
            rank,
            ranks,
            chunk_ranges,
            owned_runs,
            send_items,
            send_counts,
            receive_counts,
            assembly,
            add_sources,
            norm_blocks,
            state_runs,
        };
        (schedule, traffic)
    }

    /// This rank's number.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Numbers this rank sends to and receives from each rank in the gradient exchange.
    pub fn exchange_counts(&self) -> (&[usize], &[usize]) {
        (&self.send_counts, &self.receive_counts)
    }

    /// This rank's chunks (a contiguous range of the plan's kernel calls).
    pub fn chunks(&self) -> Range<usize> {
        self.chunk_ranges[self.rank].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::{lower_text, Problem};
    use crate::run::backend::Backend;
    use crate::run::executor::Executor;
    use crate::run::method::by_name;
    use crate::run::solver::{solve, NoObserver, Outcome, SolverState, StopRule};

    /// A method by name and parameters (`by_name`'s arguments).
    type TestMethod = (&'static str, &'static [(&'static str, f64)]);
    use crate::run::transport::{LocalRanks, Transport};
    use proptest::prelude::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn problem(text: &str) -> Problem {
        lower_text(text, None).unwrap_or_else(|e| panic!("{e}")).1
    }

    /// What a run leaves on rank 0 (or on the only process).
    #[derive(Debug)]
    struct Finished {
        values: Vec<u64>,
        velocity: Vec<u64>,
        scalars: Vec<u64>,
        outcome: Outcome,
        box_values: Vec<u64>,
        bytes_per_step: Option<f64>,
        value_evaluations: u64,
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    fn finish(
        executor: &mut Executor,
        problem: &Problem,
        method: TestMethod,
        steps: u64,
        interrupt: Option<u64>,
    ) -> Finished {
        executor.record_box_values();
        let flag = Arc::new(AtomicBool::new(false));
        executor.set_interrupt_flag(flag.clone());
        let mut state = SolverState::new(problem.initial_values.clone());
        let stop = StopRule {
            max_steps: steps,
            tolerance: None,
            rel_tolerance: None,
        };
        // Interrupt (on this process only) after `interrupt` steps, through an observer.
        struct Interrupter(Option<u64>, Arc<AtomicBool>);
        impl crate::run::solver::Observer for Interrupter {
            fn observe(&mut self, info: &crate::run::solver::StepInfo<'_>) -> Result<bool, String> {
                if self.0 == Some(info.step) {
                    self.1.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(true)
            }
        }
        let mut method = test_method(problem, method);
        let method = &mut *method;
        let outcome = match interrupt {
            None => solve(executor, method, stop, &mut state, &mut NoObserver),
            Some(step) => solve(
                executor,
                method,
                stop,
                &mut state,
                &mut Interrupter(Some(step), flag.clone()),
            ),
        }
        .unwrap();
        executor.collect_on_first_rank(&mut state.values);
        for vector in &mut state.vectors {
            executor.collect_on_first_rank(vector);
        }
        let bytes_per_step = executor.bytes_sent_per_evaluation(outcome.evaluations);
        Finished {
            values: bits(&state.values),
            velocity: state.vectors.iter().flat_map(|v| bits(v)).collect(),
            scalars: bits(&state.scalars),
            box_values: (0..problem.diagram.box_count())
                .map(|b| executor.box_value(b).unwrap().to_bits())
                .collect(),
            outcome,
            bytes_per_step,
            value_evaluations: executor.value_evaluations(),
        }
    }

    /// `by_name`, and for the line searches' choices: `armijo/adam` (direction = adam),
    /// `armijo/variables` (groups = variables, the problem's groups).
    fn test_method(problem: &Problem, method: TestMethod) -> Box<dyn crate::run::method::Method> {
        use crate::method_spec::{resolve_method, Given, Schedule};
        let (name, choice) = match method.0.split_once('/') {
            Some((name, choice)) => (name, Some(choice)),
            None => return by_name(method.0, method.1).unwrap(),
        };
        let mut given: Vec<(&str, Given<'_>)> = method
            .1
            .iter()
            .map(|&(p, v)| (p, Given::Number(v)))
            .collect();
        given.push(match choice {
            Some("adam") => ("direction", Given::Name("adam")),
            _ => ("groups", Given::Name("variables")),
        });
        let config = resolve_method(name, &given).unwrap();
        let context = crate::run::method::MethodContext::for_problem(problem);
        crate::run::method::build_with(&config, Schedule::Constant, &context).unwrap()
    }

    fn serial(problem: &Problem, method: TestMethod, steps: u64) -> Finished {
        let plan = Arc::new(Plan::for_problem(problem).unwrap());
        let mut executor = Executor::new(plan, Backend::serial());
        finish(&mut executor, problem, method, steps, None)
    }

    /// Runs `ranks` ranks as threads; `interrupt = (rank, step)` sets one rank's Ctrl-C flag.
    fn distributed(
        problem: &Problem,
        ranks: usize,
        method: TestMethod,
        steps: u64,
        interrupt: Option<(usize, u64)>,
    ) -> Finished {
        let plan = Arc::new(Plan::for_problem(problem).unwrap());
        let results: Vec<Finished> = std::thread::scope(|scope| {
            let handles: Vec<_> = LocalRanks::new(ranks)
                .into_iter()
                .map(|transport| {
                    let plan = plan.clone();
                    scope.spawn(move || {
                        let rank = transport.rank();
                        let backend = Backend::Distributed(std::rc::Rc::new(transport));
                        let mut executor = Executor::new(plan, backend);
                        let at = interrupt.filter(|&(r, _)| r == rank).map(|(_, s)| s);
                        finish(&mut executor, problem, method, steps, at)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut results = results.into_iter();
        let first = results.next().unwrap();
        for other in results {
            // Every rank agrees on how the run went.
            assert_eq!(other.outcome.stop_reason, first.outcome.stop_reason);
            assert_eq!(
                bits(&[other.outcome.evaluation.objective]),
                bits(&[first.outcome.evaluation.objective])
            );
            assert_eq!(other.outcome.diverged_box, first.outcome.diverged_box);
            assert_eq!(other.bytes_per_step, first.bytes_per_step);
        }
        first
    }

    fn assert_same(serial: &Finished, ranked: &Finished, what: &str) {
        assert_eq!(ranked.values, serial.values, "{what}: values");
        assert_eq!(ranked.velocity, serial.velocity, "{what}: velocity");
        assert_eq!(ranked.scalars, serial.scalars, "{what}: scalars");
        assert_eq!(ranked.box_values, serial.box_values, "{what}: box values");
        assert_eq!(
            ranked.value_evaluations, serial.value_evaluations,
            "{what}: value evaluations"
        );
        assert_eq!(ranked.outcome.message, serial.outcome.message, "{what}");
        assert_eq!(
            ranked.outcome.stop_reason, serial.outcome.stop_reason,
            "{what}"
        );
        assert_eq!(
            ranked.outcome.diverged_box, serial.outcome.diverged_box,
            "{what}"
        );
        assert_eq!(
            bits(&[
                ranked.outcome.evaluation.objective,
                ranked.outcome.evaluation.gradient_norm
            ]),
            bits(&[
                serial.outcome.evaluation.objective,
                serial.outcome.evaluation.gradient_norm
            ]),
            "{what}: objective and gradient norm"
        );
    }

    const CHAIN: &str = "
        objective rosen(a: real, b: real) { minimize 100 * (b - a^2)^2 + (1 - a)^2; }
        composite chain() { for i in 0..5000 { rosen(x[i], x[i + 1]); } }
        solve chain { method = gd(lr = 1e-4); init x = -1.2; }";

    const INTERLEAVED: &str = "
        objective f(x: real, y: real) { minimize (x - y)^2 + 0.1 * x^4; }
        objective g(x: real) { var p: real = 0.2; minimize sin(x) + (x - p)^2; }
        composite c() { for i in 0..1500 { f(z[i], z[i + 1]); g(z[i]); } }
        solve c { method = gd(lr = 0.01); init z = 0.5; }";

    const MATRICES: &str = "
        objective q(a: real[3], b: real[3]) { var w: real[3, 3] = 0.1; minimize sumsq(w @ a - 2 * b) + dot(a, b) + sum(exp(0.1 * a)); }
        composite c() where (u: real[3] = 0.3, v: real[3] = -0.2, s: real[3] = 0.1) {
            q(u, u); q(u, v); q(v, u); q(s, v); q(u, s); q(s, s); q(v, v);
        }
        solve c { method = gd(lr = 0.02); }";

    #[test]
    fn ranks_give_the_serial_bits_on_a_chain() {
        let p = problem(CHAIN);
        let method: TestMethod = ("gd", &[("lr", 1e-4)]);
        let reference = serial(&p, method, 7);
        for ranks in 1..=4 {
            assert_same(
                &reference,
                &distributed(&p, ranks, method, 7, None),
                &format!("{ranks} ranks"),
            );
        }
    }

    #[test]
    fn ranks_give_the_serial_bits_with_interleaved_types_and_momentum() {
        let p = problem(INTERLEAVED);
        let method: TestMethod = ("momentum", &[("lr", 0.01), ("beta", 0.9)]);
        let reference = serial(&p, method, 9);
        for ranks in [2, 3, 5] {
            assert_same(
                &reference,
                &distributed(&p, ranks, method, 9, None),
                &format!("{ranks} ranks"),
            );
        }
    }

    /// The look-ahead methods (gradient at y, not at the reported x).
    const LOOK_AHEAD: [TestMethod; 3] = [
        ("nesterov", &[("lr", 0.01), ("beta", 0.9)]),
        ("agd", &[("lr", 0.01)]),
        ("agd", &[("lr", 0.01), ("mu", 0.5)]),
    ];

    #[test]
    fn ranks_and_threads_give_the_serial_bits_with_look_ahead_methods() {
        for text in [INTERLEAVED, MATRICES] {
            let p = problem(text);
            for method in LOOK_AHEAD {
                let reference = serial(&p, method, 9);
                for ranks in [2, 3, 5] {
                    assert_same(
                        &reference,
                        &distributed(&p, ranks, method, 9, None),
                        &format!("{method:?}, {ranks} ranks"),
                    );
                }
                for threads in [2, 3] {
                    assert_same(
                        &reference,
                        &threaded(&p, threads, method, 9),
                        &format!("{method:?}, {threads} threads"),
                    );
                }
            }
        }
    }

    #[test]
    fn a_look_ahead_divergence_is_found_in_the_same_box_at_the_same_step() {
        let p = problem(MATRICES);
        for method in [
            ("nesterov", &[("lr", 3.0)][..]),
            ("agd", &[("lr", 3.0), ("mu", 0.1)][..]),
        ] {
            let reference = serial(&p, method, 500);
            assert_eq!(
                reference.outcome.stop_reason,
                crate::run::solver::StopReason::Diverged,
                "{method:?}"
            );
            for ranks in [2, 3] {
                assert_same(
                    &reference,
                    &distributed(&p, ranks, method, 500, None),
                    &format!("{method:?}, {ranks} ranks"),
                );
            }
        }
    }

    #[test]
    fn ranks_give_the_serial_bits_with_matrix_boxes_and_repeated_ports() {
        let p = problem(MATRICES);
        let method: TestMethod = ("gd", &[("lr", 0.02)]);
        let reference = serial(&p, method, 15);
        // More ranks than boxes: some ranks have nothing to do.
        for ranks in [2, 3, 4, 9] {
            assert_same(
                &reference,
                &distributed(&p, ranks, method, 15, None),
                &format!("{ranks} ranks"),
            );
        }
    }

    #[test]
    fn threads_and_ranks_give_the_serial_bits_with_adam() {
        let method: TestMethod = ("adam", &[("lr", 0.01), ("beta1", 0.8), ("beta2", 0.99)]);
        for text in [CHAIN, INTERLEAVED, MATRICES] {
            let p = problem(text);
            let reference = serial(&p, method, 9);
            for threads in [2, 3] {
                let threaded = threaded(&p, threads, method, 9);
                assert_same(&reference, &threaded, &format!("{threads} threads"));
            }
            for ranks in [2, 3, 5] {
                assert_same(
                    &reference,
                    &distributed(&p, ranks, method, 9, None),
                    &format!("{ranks} ranks"),
                );
            }
        }
    }

    #[test]
    fn a_divergence_is_found_in_the_same_box_at_the_same_step() {
        let p = problem(MATRICES);
        let method: TestMethod = ("gd", &[("lr", 3.0)]);
        let reference = serial(&p, method, 500);
        assert_eq!(
            reference.outcome.stop_reason,
            crate::run::solver::StopReason::Diverged
        );
        for ranks in [2, 3] {
            assert_same(
                &reference,
                &distributed(&p, ranks, method, 500, None),
                &format!("{ranks} ranks"),
            );
        }
    }

    #[test]
    fn an_interrupt_on_one_rank_stops_every_rank_at_the_same_step() {
        let p = problem(CHAIN);
        let method: TestMethod = ("gd", &[("lr", 1e-4)]);
        let ranked = distributed(&p, 3, method, 50, Some((2, 4)));
        assert_eq!(
            ranked.outcome.stop_reason,
            crate::run::solver::StopReason::Interrupted
        );
        // The flag set while observing step 4 is seen at the next evaluation.
        let reference = serial(&p, method, 5);
        assert_eq!(ranked.values, reference.values);
    }

    #[test]
    fn the_measured_traffic_is_the_predicted_one() {
        for (text, ranks) in [(CHAIN, 2), (CHAIN, 3), (INTERLEAVED, 3), (MATRICES, 4)] {
            let p = problem(text);
            let plan = Plan::for_problem(&p).unwrap();
            let predicted = RankSchedule::traffic(&plan, ranks);
            // The runs above record box values, which travel too: add them.
            let boxes: u64 = p.diagram.box_count() as u64;
            let expected = predicted.bytes_per_step() + 8 * boxes * (ranks as u64 - 1);
            let measured = distributed(&p, ranks, ("gd", &[("lr", 1e-4)]), 3, None)
                .bytes_per_step
                .unwrap();
            assert_eq!(measured, expected as f64, "{ranks} ranks");
        }
    }

    #[test]
    fn a_chain_shares_one_coordinate_per_rank_boundary() {
        let p = problem(CHAIN);
        let plan = Plan::for_problem(&p).unwrap();
        let traffic = RankSchedule::traffic(&plan, 3);
        assert_eq!(traffic.shared_coordinates, 2);
        assert_eq!(traffic.norm_transfers, 0);
        // Each boundary: the owner's partial one way, the deferred contribution the other.
        assert_eq!(traffic.exchange_numbers.iter().sum::<usize>(), 4);
    }

    /// The line searches' methods, as `test_method` reads them.
    const LINE_SEARCHES: [TestMethod; 5] = [
        ("armijo", &[("lr", 0.5)]),
        ("armijo/adam", &[("lr", 0.05)]),
        ("armijo/variables", &[("lr", 0.5)]),
        ("lbfgs", &[]),
        ("lbfgs", &[("memory", 2.0)]),
    ];

    /// Norm blocks spread over ranks: box `g` on the even coordinates, `h` on the odd ones,
    /// and a chain on the first 300; with 2 or 3 ranks, some rank sums a norm block whose
    /// coordinates it partly does not touch (it receives their gradient only).
    const SPREAD: &str = "
        objective f(x: real, y: real) { minimize (x - y)^2 + 0.1 * x^4; }
        objective g(x: real) { var p: real = 0.2; minimize sin(x) + (x - p)^2 + p^2; }
        objective h(x: real) { minimize cos(x) + 2 * x^2; }
        composite c() {
            for i in 0..600 { g(z[2 * i]); }
            for i in 0..600 { h(z[2 * i + 1]); }
            for i in 0..300 { f(z[i], z[i + 1]); }
        }
        solve c { method = gd(lr = 0.01); init z = 0.5; }";

    #[test]
    fn line_searches_give_the_serial_bits_on_ranks() {
        let spread = problem(SPREAD);
        let plan = Plan::for_problem(&spread).unwrap();
        assert!(RankSchedule::traffic(&plan, 2).norm_transfers > 0);
        assert!(RankSchedule::traffic(&plan, 3).norm_transfers > 0);
        for (text, ranks, steps) in [
            (SPREAD, &[2, 3][..], 12),
            (INTERLEAVED, &[3][..], 12),
            (MATRICES, &[2, 4, 9][..], 12),
            (CHAIN, &[3][..], 4),
        ] {
            let p = problem(text);
            for method in LINE_SEARCHES {
                let reference = serial(&p, method, steps);
                // Every armijo step tries value-only points; lbfgs evaluates its first trial
                // with the gradient once it has pairs, so only its first steps do.
                let trials = if method.0.starts_with("lbfgs") {
                    1
                } else {
                    steps
                };
                assert!(reference.value_evaluations >= trials, "{}", method.0);
                for &ranks in ranks {
                    let ranked = distributed(&p, ranks, method, steps, None);
                    // (Compare before printing: the vectors are long.)
                    let what = format!("{} on {ranks} ranks", method.0);
                    assert!(ranked.values == reference.values, "{what}: values differ");
                    assert_same(&reference, &ranked, &what);
                }
            }
        }
    }

    #[test]
    fn line_searches_give_the_serial_bits_on_threads() {
        for text in [SPREAD, INTERLEAVED, MATRICES, CHAIN] {
            let p = problem(text);
            for method in LINE_SEARCHES {
                let reference = serial(&p, method, 6);
                for threads in [2, 3, 7] {
                    let threaded = threaded(&p, threads, method, 6);
                    let what = format!("{} on {threads} threads", method.0);
                    assert!(threaded.values == reference.values, "{what}: values differ");
                    assert_same(&reference, &threaded, &what);
                }
            }
        }
    }

    fn random_problem() -> impl Strategy<Value = String> {
        let boxes = prop::collection::vec((0usize..3, 0usize..6, 0usize..6), 1..14);
        (boxes, 0usize..700).prop_map(|(boxes, chain)| {
            let mut text = String::from(
                "objective f(x: real, y: real) { minimize (x - y)^2 + 0.1 * x^4; }
                 objective g(x: real) { var p: real = 0.2; minimize sin(x) + (x - p)^2; }
                 objective h(a: real[2], x: real) { minimize sumsq(a) * (1 + x^2) + x; }
                 composite c() where (v0: real[2] = 0.1, v1: real[2] = -0.3) {\n",
            );
            for (kind, i, j) in boxes {
                text.push_str(&match kind {
                    0 => format!("f(z[{i}], z[{j}]);\n"),
                    1 => format!("g(z[{i}]);\n"),
                    _ => format!("h(v{}, z[{j}]);\n", i % 2),
                });
            }
            if chain > 0 {
                text.push_str(&format!(
                    "for i in 0..{chain} {{ link: f(z[i], z[i + 1]); }}\n"
                ));
            }
            text.push_str("}\nsolve c { method = gd(lr = 0.01); init z = 0.3; }\n");
            text
        })
    }

    /// Runs the threads backend with `threads` workers, on the pool however small the plan,
    /// after checking the disjointness its `unsafe` sweep relies on.
    fn threaded(problem: &Problem, threads: usize, method: TestMethod, steps: u64) -> Finished {
        let plan = Arc::new(Plan::for_problem(problem).unwrap());
        let ranges = plan.partition(threads);
        let deferrals = plan.deferrals(&ranges);
        let blocks = plan.block_schedule(&ranges);
        assert_eq!(
            plan.check_disjoint_writes(&ranges, &deferrals, &blocks),
            Ok(())
        );
        let mut executor = Executor::new(plan, Backend::threads(threads).unwrap());
        executor.force_parallel();
        finish(&mut executor, problem, method, steps, None)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_composites_give_the_serial_bits_on_any_number_of_threads(
            text in random_problem(),
            threads in 1usize..=8,
            momentum: bool,
            look_ahead in prop::option::of(0usize..LOOK_AHEAD.len()),
        ) {
            let p = problem(&text);
            let method: TestMethod = if let Some(m) = look_ahead {
                LOOK_AHEAD[m]
            } else if momentum {
                ("momentum", &[("lr", 0.01), ("beta", 0.5)])
            } else {
                ("gd", &[("lr", 0.01)])
            };
            let reference = serial(&p, method, 4);
            let threaded = threaded(&p, threads, method, 4);
            assert_same(&reference, &threaded, &format!("{threads} threads"));
        }

        #[test]
        fn random_composites_give_the_serial_bits_with_line_searches(
            text in random_problem(),
            workers in 1usize..5,
            which in 0usize..5,
        ) {
            let p = problem(&text);
            let method = LINE_SEARCHES[which];
            let reference = serial(&p, method, 5);
            assert_same(&reference, &threaded(&p, workers, method, 5), &format!("{workers} threads"));
            let ranked = distributed(&p, workers, method, 5, None);
            assert_same(&reference, &ranked, &format!("{workers} ranks"));
        }

        #[test]
        fn random_composites_give_the_serial_bits_with_adam(
            text in random_problem(),
            threads in 1usize..=8,
            ranks in 1usize..5,
        ) {
            let p = problem(&text);
            let method: TestMethod = ("adam", &[("lr", 0.01)]);
            let reference = serial(&p, method, 4);
            assert_same(&reference, &threaded(&p, threads, method, 4), &format!("{threads} threads"));
            assert_same(&reference, &distributed(&p, ranks, method, 4, None), &format!("{ranks} ranks"));
        }

        #[test]
        fn random_composites_give_the_serial_bits_on_any_number_of_ranks(
            text in random_problem(),
            ranks in 1usize..5,
            look_ahead in prop::option::of(0usize..LOOK_AHEAD.len()),
        ) {
            let p = problem(&text);
            let method: TestMethod = match look_ahead {
                Some(m) => LOOK_AHEAD[m],
                None => ("momentum", &[("lr", 0.01), ("beta", 0.5)]),
            };
            let reference = serial(&p, method, 4);
            let ranked = distributed(&p, ranks, method, 4, None);
            assert_same(&reference, &ranked, &format!("{ranks} ranks"));
        }
    }
}
