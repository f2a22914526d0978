//! The MPI transport (cargo feature `mpi`): the collectives of [`Transport`] on
//! `MPI_COMM_WORLD`, through rsmpi. Launch with `mpirun -n 4 catopt run FILE --backend mpi`
//! or `srun`; see docs/distributed.md.

use super::transport::Transport;
use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

/// `MPI_COMM_WORLD` of an initialised MPI environment; MPI is finalised when this is dropped.
pub struct MpiTransport {
    world: SimpleCommunicator,
    rank: usize,
    ranks: usize,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl MpiTransport {
    /// Initialises MPI (once per process). Without `mpirun`, a singleton world of one rank.
    pub fn initialise() -> Result<MpiTransport, String> {
        let universe = mpi::initialize().ok_or_else(|| {
            "MPI could not be initialised (it was initialised before in this process)".to_string()
        })?;
        let world = universe.world();
        Ok(MpiTransport {
            rank: world.rank() as usize,
            ranks: world.size() as usize,
            world,
            _universe: universe,
        })
    }

    /// `MPI_Allreduce` with `MPI_SUM`. The backend does not use it (MPI chooses the order
    /// of the additions, so the bits could depend on the number of ranks); it is here to
    /// measure the ordered exchange against it (`examples/mpi_exchange.rs`).
    pub fn all_reduce_sum(&self, values: &[f64], result: &mut [f64]) {
        self.world
            .all_reduce_into(values, result, SystemOperation::sum());
    }

    /// MPI's counts and displacements (C ints) for per-rank counts.
    fn counts_and_displacements(&self, counts: &[usize]) -> (Vec<Count>, Vec<Count>) {
        let mut displacement = 0usize;
        let mut counts_out = Vec::with_capacity(counts.len());
        let mut displacements = Vec::with_capacity(counts.len());
        for &n in counts {
            match (Count::try_from(n), Count::try_from(displacement)) {
                (Ok(n), Ok(d)) => {
                    counts_out.push(n);
                    displacements.push(d);
                }
                _ => {
                    eprintln!(
                        "error: a message of {} numbers is too large for MPI (at most {} per call)",
                        displacement + n,
                        Count::MAX
                    );
                    self.abort(2);
                }
            }
            displacement += n;
        }
        (counts_out, displacements)
    }
}

impl Transport for MpiTransport {
    fn name(&self) -> &'static str {
        "mpi"
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn exchange(
        &self,
        send: &[f64],
        send_counts: &[usize],
        receive: &mut [f64],
        receive_counts: &[usize],
    ) {
        let (send_counts, send_displacements) = self.counts_and_displacements(send_counts);
        let (receive_counts, receive_displacements) = self.counts_and_displacements(receive_counts);
        let send = Partition::new(send, &send_counts[..], &send_displacements[..]);
        let mut receive =
            PartitionMut::new(receive, &receive_counts[..], &receive_displacements[..]);
        self.world.all_to_all_varcount_into(&send, &mut receive);
    }

    fn all_gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]) {
        let (counts, displacements) = self.counts_and_displacements(counts);
        let mut receive = PartitionMut::new(receive, &counts[..], &displacements[..]);
        self.world.all_gather_varcount_into(send, &mut receive);
    }

    fn gather(&self, send: &[f64], receive: &mut [f64], counts: &[usize]) {
        let root = self.world.process_at_rank(0);
        if self.rank == 0 {
            let (counts, displacements) = self.counts_and_displacements(counts);
            let mut receive = PartitionMut::new(receive, &counts[..], &displacements[..]);
            root.gather_varcount_into_root(send, &mut receive);
        } else {
            root.gather_varcount_into(send);
        }
    }

    fn min(&self, value: u64) -> u64 {
        let mut result = value;
        self.world
            .all_reduce_into(&value, &mut result, SystemOperation::min());
        result
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
