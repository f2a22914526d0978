//! The executor's two placements and the one place that dispatches between them: shared
//! memory ([`SharedMemory`]: serial and threads) and ranks ([`Ranks`]: one process of
//! several). The executor calls these operations without asking which placement it has;
//! each `match` below forwards to the placement's own file, or answers for the placement
//! that has nothing to do (no transport: nothing to collect, no traffic to count).
//!
//! An enum rather than a trait object: the fused update is generic over the method's
//! [`UpdateRule`], so that each method's per-coordinate arithmetic is compiled into the
//! sweep; a trait with generic methods cannot be a trait object, and making the executor
//! generic over its placement would leak into every caller.

use super::ranks::Ranks;
use super::shared::SharedMemory;
use super::update::Update;
use super::{BlockSums, Buffers, SweepLayout};
use crate::run::backend::Backend;
use crate::run::method::UpdateRule;
use crate::run::plan::Plan;
use std::ops::Range;

/// Where the boxes are evaluated and how their contributions meet.
pub(super) enum Placement {
    /// Every coordinate in this process's memory (serial and threads backends).
    Shared(SharedMemory),
    /// This process is one rank of several (distributed backend).
    Ranks(Box<Ranks>),
}

impl Placement {
    /// The placement `backend` asks for, with the sweep layout of its partition.
    pub(super) fn new(plan: &Plan, backend: Backend) -> (Placement, SweepLayout) {
        match backend {
            Backend::Distributed(transport) => {
                let (ranks, layout) = Ranks::new(plan, transport);
                (Placement::Ranks(Box::new(ranks)), layout)
            }
            backend => {
                let (shared, layout) = SharedMemory::new(plan, backend);
                (Placement::Shared(shared), layout)
            }
        }
    }

    /// The backend it runs on.
    pub(super) fn backend(&self) -> &Backend {
        match self {
            Placement::Shared(shared) => shared.backend(),
            Placement::Ranks(ranks) => ranks.backend(),
        }
    }

    /// Whether this process holds only its share of the state.
    pub(super) fn is_distributed(&self) -> bool {
        matches!(self, Placement::Ranks(_))
    }

    /// Whether the sweep can be handed to a pool (several threads and workers).
    pub(super) fn can_split(&self) -> bool {
        match self {
            Placement::Shared(shared) => shared.can_split(),
            Placement::Ranks(_) => false,
        }
    }

    /// Hand the sweep to the pool (if there is one) or not.
    pub(super) fn set_parallel(&mut self, parallel: bool) {
        match self {
            Placement::Shared(shared) => shared.set_parallel(parallel),
            Placement::Ranks(_) => {}
        }
    }

    /// Box values are recorded from now on.
    pub(super) fn record_box_values(&mut self, plan: &Plan) {
        match self {
            Placement::Shared(_) => {}
            Placement::Ranks(ranks) => ranks.record_box_values(plan),
        }
    }

    /// One evaluation at `state` with the fused `update`, filling `buffers` (every chunk's
    /// objective, every norm partial, the gradient where this process keeps it). Returns
    /// whether any process saw an interrupt (`interrupted`: this one did).
    pub(super) fn evaluate<R: UpdateRule + ?Sized>(
        &mut self,
        plan: &Plan,
        buffers: &mut Buffers,
        state: &[f64],
        update: Update<'_, R>,
        interrupted: bool,
    ) -> bool {
        match self {
            Placement::Shared(shared) => {
                shared.evaluate(plan, buffers, state, update);
                interrupted
            }
            Placement::Ranks(ranks) => ranks.evaluate(plan, buffers, state, update, interrupted),
        }
    }

    /// Every chunk's objective at `point`, in `buffers.chunk_objective`.
    pub(super) fn evaluate_value(&mut self, plan: &Plan, buffers: &mut Buffers, point: &[f64]) {
        match self {
            Placement::Shared(shared) => shared.evaluate_value(plan, buffers, point),
            Placement::Ranks(ranks) => ranks.evaluate_value(plan, buffers, point),
        }
    }

    /// Every block's `N` partial sums `partials(block's range, gradient)`, into
    /// `block_partials` (`N` per block, in block order).
    pub(super) fn reduce<const N: usize>(
        &mut self,
        gradient: &[f64],
        block_partials: &mut [f64],
        partials: &impl BlockSums<N>,
    ) {
        match self {
            Placement::Shared(shared) => shared.reduce(gradient, block_partials, partials),
            Placement::Ranks(ranks) => ranks.reduce(gradient, block_partials, partials),
        }
    }

    /// The coordinates this process keeps a method's vectors current on, as sorted runs.
    pub(super) fn local_runs(&self) -> &[Range<usize>] {
        match self {
            Placement::Shared(shared) => shared.local_runs(),
            Placement::Ranks(ranks) => ranks.local_runs(),
        }
    }

    /// The chunks this process evaluates.
    pub(super) fn own_chunks(&self) -> Range<usize> {
        match self {
            Placement::Shared(shared) => shared.own_chunks(),
            Placement::Ranks(ranks) => ranks.own_chunks(),
        }
    }

    /// Every process's `mine` (all as long), in rank order: `mine` itself in shared
    /// memory. A collective call on ranks.
    pub(super) fn all_gather(&self, mine: &[f64]) -> Vec<f64> {
        match self {
            Placement::Shared(_) => mine.to_vec(),
            Placement::Ranks(ranks) => ranks.all_gather(mine),
        }
    }

    /// The smallest of the processes' `value`s. A collective call on ranks.
    pub(super) fn min(&self, value: u64) -> u64 {
        match self {
            Placement::Shared(_) => value,
            Placement::Ranks(ranks) => ranks.min(value),
        }
    }

    /// Makes `values` complete on rank 0 (nothing to do in shared memory).
    pub(super) fn collect_on_first_rank(&self, values: &mut [f64]) {
        match self {
            Placement::Shared(_) => {}
            Placement::Ranks(ranks) => ranks.collect_on_first_rank(values),
        }
    }

    /// Seconds in the transport's calls (`None` in shared memory).
    pub(super) fn communication_seconds(&self) -> Option<f64> {
        match self {
            Placement::Shared(_) => None,
            Placement::Ranks(ranks) => Some(ranks.communication_seconds()),
        }
    }

    /// Bytes sent by all ranks per evaluation (`None` in shared memory).
    pub(super) fn bytes_sent_per_evaluation(&self, evaluations: u64) -> Option<f64> {
        match self {
            Placement::Shared(_) => None,
            Placement::Ranks(ranks) => Some(ranks.bytes_sent_per_evaluation(evaluations)),
        }
    }

    /// Bytes all ranks sent in value-only evaluations and reductions (`None` in shared
    /// memory).
    pub(super) fn line_search_bytes_sent(&self) -> Option<f64> {
        match self {
            Placement::Shared(_) => None,
            Placement::Ranks(ranks) => Some(ranks.line_search_bytes_sent()),
        }
    }
}
