//! Where a plan runs: serial, a thread pool, or one rank of several processes.

use super::transport::Transport;

/// Where a plan's box evaluations and reductions run. Every backend follows the plan's
/// fixed summation order, so they all produce the same bits. A clone shares the pool or the
/// transport (a minibatch run's full-data executor runs on its minibatch executor's).
#[derive(Clone)]
pub enum Backend {
    /// One thread, the reference.
    Serial,
    /// A rayon thread pool.
    Threads(std::sync::Arc<rayon::ThreadPool>),
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
            .map(|pool| Backend::Threads(std::sync::Arc::new(pool)))
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
    pub(crate) fn for_each(
        &self,
        parallel: bool,
        count: usize,
        task: impl Fn(usize) + Sync + Send,
    ) {
        match self {
            Backend::Threads(pool) if parallel && count > 1 => pool.install(|| {
                use rayon::prelude::*;
                (0..count).into_par_iter().for_each(task);
            }),
            _ => (0..count).for_each(task),
        }
    }
}
