//! Running composites: the execution plan (gather, batched kernels, scatter-add in a fixed
//! order), the backends, and the solver loop.

pub mod plan;
pub mod solver;
