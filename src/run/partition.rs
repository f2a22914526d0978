//! Splitting a plan's chunks over workers (threads or ranks) without changing a bit: which
//! contributions each range adds directly and which it defers, which norm blocks the sweep
//! can finish early, and the check that no two workers write the same place.

use super::lanes::{bit, set_bit};
use super::plan::{Plan, SUM_BLOCK};
use std::ops::Range;

impl Plan {
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
    pub(crate) chunk_starts: Vec<u32>,
    pub(crate) blocks: Vec<u32>,
    /// Blocks with a deferred contribution, contributions from several workers, or no
    /// contribution at all: finished after the sweep.
    pub(crate) after_sweep: Vec<u32>,
}

impl BlockSchedule {
    /// Every block finished after the sweep (the distributed backend's own pass).
    pub(crate) fn none(chunks: usize) -> BlockSchedule {
        BlockSchedule {
            chunk_starts: vec![0; chunks + 1],
            blocks: Vec::new(),
            after_sweep: Vec::new(),
        }
    }

    /// The blocks complete after chunk `c`.
    pub(crate) fn after_chunk(&self, c: usize) -> &[u32] {
        &self.blocks[self.chunk_starts[c] as usize..self.chunk_starts[c + 1] as usize]
    }
}
