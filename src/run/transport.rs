//! The seam between the distributed executor and a message-passing library: the handful of
//! collective operations a step needs. [`LocalRanks`] implements it with threads in one
//! process (for tests and for teaching: no MPI needed); the `mpi` feature adds an MPI
//! implementation (`run::mpi`).

use std::sync::{Arc, Barrier, Mutex};

/// The collective operations of distributed gradient descent. Every rank must call the same
/// operations in the same order (as in MPI); the counts are known to all ranks beforehand.
pub trait Transport {
    /// A name for summaries (`mpi`, `local-ranks`).
    fn name(&self) -> &'static str;

    /// This process's rank, in `0..ranks()`.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn ranks(&self) -> usize;

    /// All-to-all with per-rank counts: `send` holds the numbers for rank 0, then rank 1, ...
    /// (`send_counts[q]` each); `receive` gets the numbers from rank 0, then rank 1, ...
    /// (`receive_counts[q]` each). Counts to and from oneself are zero.
    fn exchange(
        &self,
        send: &[f64],
        send_counts: &[usize],
        receive: &mut [f64],
        receive_counts: &[usize],
    );

    /// All-gather of pieces of different sizes: every rank contributes `send`
    /// (`counts[rank]` numbers) and receives all pieces, in rank order, in `receive`.
    fn all_gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]);

    /// Gather to rank 0: like [`Transport::all_gather`], but only rank 0's `receive` is
    /// written.
    fn gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]);

    /// The smallest of the ranks' values, on every rank.
    fn min(&self, value: u64) -> u64;

    /// Ends every rank's process with `code` at once (after an error on one rank that the
    /// others cannot know of).
    fn abort(&self, code: i32) -> !;
}

/// Ranks as threads of one process, exchanging through shared memory: the distributed
/// algorithm without MPI. Create all ranks with [`LocalRanks::new`] and give each to one
/// thread.
pub struct LocalRanks {
    rank: usize,
    shared: Arc<LocalShared>,
}

struct LocalShared {
    ranks: usize,
    barrier: Barrier,
    /// Each rank's posted numbers for the current operation.
    posted: Mutex<Vec<Vec<f64>>>,
    /// Each rank's posted counts (exchange: send counts).
    counts: Mutex<Vec<Vec<usize>>>,
}

impl LocalRanks {
    /// `ranks` connected ranks, one per thread.
    pub fn new(ranks: usize) -> Vec<LocalRanks> {
        let ranks = ranks.max(1);
        let shared = Arc::new(LocalShared {
            ranks,
            barrier: Barrier::new(ranks),
            posted: Mutex::new(vec![Vec::new(); ranks]),
            counts: Mutex::new(vec![Vec::new(); ranks]),
        });
        (0..ranks)
            .map(|rank| LocalRanks {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    fn post(&self, numbers: &[f64], counts: &[usize]) {
        {
            let mut posted = self.shared.posted.lock().unwrap_or_else(|e| e.into_inner());
            posted[self.rank].clear();
            posted[self.rank].extend_from_slice(numbers);
            let mut all_counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
            all_counts[self.rank].clear();
            all_counts[self.rank].extend_from_slice(counts);
        }
        self.shared.barrier.wait();
    }

    fn done(&self) {
        self.shared.barrier.wait();
    }
}

impl Transport for LocalRanks {
    fn name(&self) -> &'static str {
        "local-ranks"
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.shared.ranks
    }

    fn exchange(
        &self,
        send: &[f64],
        send_counts: &[usize],
        receive: &mut [f64],
        receive_counts: &[usize],
    ) {
        self.post(send, send_counts);
        {
            let posted = self.shared.posted.lock().unwrap_or_else(|e| e.into_inner());
            let counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
            let mut at = 0;
            for sender in 0..self.shared.ranks {
                let offset: usize = counts[sender][..self.rank].iter().sum();
                let n = counts[sender][self.rank];
                assert_eq!(n, receive_counts[sender], "exchange counts disagree");
                receive[at..at + n].copy_from_slice(&posted[sender][offset..offset + n]);
                at += n;
            }
        }
        self.done();
    }

    fn all_gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]) {
        self.post(send, &[]);
        {
            let posted = self.shared.posted.lock().unwrap_or_else(|e| e.into_inner());
            let mut at = 0;
            for (sender, &n) in counts.iter().enumerate() {
                receive[at..at + n].copy_from_slice(&posted[sender][..n]);
                at += n;
            }
        }
        self.done();
    }

    fn gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]) {
        if self.rank == 0 {
            self.all_gather(send, receive, counts);
        } else {
            self.post(send, &[]);
            self.done();
        }
    }

    fn min(&self, value: u64) -> u64 {
        self.post(&[f64::from_bits(value)], &[]);
        let result = {
            let posted = self.shared.posted.lock().unwrap_or_else(|e| e.into_inner());
            posted.iter().map(|p| p[0].to_bits()).min().unwrap_or(value)
        };
        self.done();
        result
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}
