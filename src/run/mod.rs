//! Running composites: the execution plan (gather, batched kernels, scatter-add in a fixed
//! order), the backends (serial, threads, and ranks that share no memory), and the solver
//! loop.

pub mod distribute;
#[cfg(feature = "mpi")]
pub mod mpi;
pub(crate) mod norm;
pub mod plan;
mod shared_slice;
pub mod solver;
pub mod transport;
