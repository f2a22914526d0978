//! Running composites: the execution plan (gather, batched kernels, scatter-add in a fixed
//! order), its partition over workers, the backends (serial, threads, and ranks that share
//! no memory), the executor that evaluates a plan, and the solver loop.
//!
//! Dependencies run one way: `plan` <- `partition` <- `distribute` <- `executor` <-
//! `solver`.

pub mod backend;
pub mod distribute;
pub mod executor;
mod lanes;
pub mod method;
mod minibatch;
#[cfg(feature = "mpi")]
pub mod mpi;
pub(crate) mod norm;
mod partition;
pub mod plan;
pub mod sampling;
mod shared_slice;
pub mod solver;
pub mod transport;
