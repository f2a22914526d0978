//! Laws of the category core as reusable checks and proptest strategies.
//!
//! - [`strategy`]: proptest strategies for finite functions, spans, random smooth objectives,
//!   random open objectives and random diagrams filled with them (used by `tests/laws_*.rs`,
//!   and usable by anyone testing their own objectives).
//! - [`check`]: law checks on a given diagram and objectives (GD naturality at random points,
//!   distributed vs central runs), each returning a [`LawReport`]; no printing.
//! - [`expr`]: small random smooth expression trees with their own reverse mode.
//! - [`Quadratic`]: `x' P x + a' x + c`, the form of the reference problems.
//! - [`methods`]: the laws of a method by its class (runtime = central for any method, the
//!   per-box variant against the composite method), on compiled composites.
//! - [`per_box`]: the per-box variant of a method (each box runs the method alone on its
//!   own objective; the increments are added on junctions).

pub mod check;
pub mod expr;
pub mod methods;
pub mod per_box;
mod quadratic;
pub mod strategy;

pub use check::{
    check_distributed_vs_central, check_gd_naturality, check_increments_vs_central, correspondence,
    LawReport, PointGenerator,
};
pub use quadratic::Quadratic;

use crate::category::ReverseDerivative;
use std::sync::Arc;

/// A type-erased objective, so that decorations of different types mix in one diagram.
pub type DynObjective = Arc<dyn ReverseDerivative + Send + Sync>;
