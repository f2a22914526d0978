//! The optimiser's update, fused into the evaluation.

use super::super::lanes::{map2_lanes, map2_streaming, STREAM_FROM};
use super::super::norm::block_partial;
use super::super::plan::SUM_BLOCK;
use super::super::shared_slice::SharedSlice;
use std::ops::Range;

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
pub(super) enum Update<'a> {
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
    pub(super) fn of(proposal: Option<Proposal<'a>>, len: usize) -> Update<'a> {
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
pub(super) unsafe fn finish_block(
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
pub(super) unsafe fn update_range(
    range: Range<usize>,
    gradient: &[f64],
    state: &[f64],
    update: Update<'_>,
) {
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
