//! The method's per-coordinate update, fused into the evaluation: each norm block of the
//! gradient is handed to the [`UpdateRule`] as soon as it is complete, while it is in cache.

use super::super::lanes::STREAM_FROM;
use super::super::method::{Block, UpdateRule, MAX_VECTORS};
use super::super::norm::block_partial;
use super::super::plan::SUM_BLOCK;
use super::super::shared_slice::SharedSlice;
use std::ops::Range;

/// An [`UpdateRule`] with the vectors it reads and writes, as the workers see it: each
/// finishes its own norm blocks.
pub(super) struct Update<'a, R: ?Sized> {
    rule: &'a R,
    /// The method's current vectors (`values` first), whole.
    current: [&'a [f64]; MAX_VECTORS],
    /// Receive the proposed vectors; as many as `current`.
    next: [SharedSlice<'a>; MAX_VECTORS],
    /// How many vectors are in use.
    count: usize,
    /// The problem is large enough for non-temporal stores ([`STREAM_FROM`]).
    stream: bool,
}

impl<R: ?Sized> Clone for Update<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: ?Sized> Copy for Update<'_, R> {}

impl<'a, R: UpdateRule + ?Sized> Update<'a, R> {
    /// The update of `rule` from `current` into `next` (each as long as the gradient,
    /// `len`).
    ///
    /// # Panics
    /// If the vector counts differ, exceed [`MAX_VECTORS`], or a vector's length is not `len`.
    pub(super) fn new(
        rule: &'a R,
        current: &[&'a [f64]],
        next: &'a mut [&mut [f64]],
        len: usize,
    ) -> Update<'a, R> {
        let count = current.len();
        assert!(
            count == next.len() && count <= MAX_VECTORS,
            "an update reads and writes the same vectors, at most {MAX_VECTORS}"
        );
        assert!(
            current.iter().all(|v| v.len() == len) && next.iter().all(|v| v.len() == len),
            "vector length"
        );
        let mut currents: [&'a [f64]; MAX_VECTORS] = [&[]; MAX_VECTORS];
        currents[..count].copy_from_slice(current);
        let mut nexts = [
            SharedSlice::new(&mut []),
            SharedSlice::new(&mut []),
            SharedSlice::new(&mut []),
            SharedSlice::new(&mut []),
        ];
        for (slot, vector) in nexts.iter_mut().zip(next.iter_mut()) {
            *slot = SharedSlice::new(vector);
        }
        Update {
            rule,
            current: currents,
            next: nexts,
            count,
            stream: len >= STREAM_FROM,
        }
    }
}

/// Finishes norm block `block` of a complete gradient: its sum of squares into
/// `partials[block]`, and the update on its coordinates.
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
/// If the update's vectors are shorter than the gradient.
#[inline(always)]
pub(super) unsafe fn finish_block<R: UpdateRule + ?Sized>(
    block: usize,
    gradient: SharedSlice<'_>,
    update: Update<'_, R>,
    partials: SharedSlice<'_>,
) {
    let start = block * SUM_BLOCK;
    let range = start..(start + SUM_BLOCK).min(gradient.len());
    // SAFETY: no thread writes the block's gradient entries now (this function's contract).
    let gradient = unsafe { gradient.read(range.clone()) };
    // SAFETY: no other thread accesses the update's outputs on the block (the contract).
    unsafe { update_range(range, gradient, update) };
    // SAFETY: `block < partials.len()`, accessed by this thread only (the contract).
    unsafe { *partials.get(block) = block_partial(gradient) };
}

/// The update on the coordinates `range` (`gradient` holds the gradient's entries there).
///
/// # Safety
/// No other thread accesses the update's outputs (the `next` vectors) in `range` while
/// this runs.
///
/// # Panics
/// If `range` reaches past the update's vectors, or `gradient` is shorter than `range`.
#[inline(always)]
pub(super) unsafe fn update_range<R: UpdateRule + ?Sized>(
    range: Range<usize>,
    gradient: &[f64],
    update: Update<'_, R>,
) {
    if update.count == 0 {
        return;
    }
    let mut current: [&[f64]; MAX_VECTORS] = [&[]; MAX_VECTORS];
    for (slot, vector) in current.iter_mut().zip(&update.current[..update.count]) {
        *slot = &vector[range.clone()];
    }
    let nexts = &update.next;
    let of = |i: usize| {
        if i < update.count {
            range.clone()
        } else {
            0..0
        }
    };
    // SAFETY: this thread alone accesses the `next` vectors in `range` (the contract); they
    // are distinct buffers (`Update::new` takes them as separate `&mut`), and the unused
    // ones are empty.
    let next = unsafe {
        [
            nexts[0].range(of(0)),
            nexts[1].range(of(1)),
            nexts[2].range(of(2)),
            nexts[3].range(of(3)),
        ]
    };
    update.rule.apply(Block {
        gradient: &gradient[..range.len()],
        current,
        next,
        stream: update.stream,
    });
}
