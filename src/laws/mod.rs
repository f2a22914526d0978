//! Laws of the category core as reusable checks and proptest strategies.
//!
//! - [`strategy`]: proptest strategies for finite functions, spans, random smooth objectives,
//!   random open objectives and random diagrams filled with them (used by `tests/laws_*.rs`,
//!   and usable by anyone testing their own objectives).
//! - [`check`]: law checks on a given diagram and objectives (GD naturality at random points,
//!   distributed vs central runs), each returning a [`LawReport`]; no printing.
//! - [`expr`]: small random smooth expression trees with their own reverse mode.
//! - [`Quadratic`]: `x' P x + a' x + c`, the form of the reference problems.

pub mod check;
pub mod expr;
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
