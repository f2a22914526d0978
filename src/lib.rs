//! # catopt
//!
//! Composite optimization in the style of applied category theory. Open objective functions
//! are written in `.opt` files, composed by sharing variables (undirected wiring diagrams,
//! composition by pushout), and compiled through the gradient-descent functor into an open
//! dynamical system that runs distributed gradient descent.
//!
//! The pipeline (see ARCHITECTURE.md), one module per stage:
//!
//! ```text
//! text --syntax--> AST --check--> typed program --lower--> wiring diagram + open objectives
//!      --category (pushout, GD functor)--> open dynamical system --run--> iterates
//! ```

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod category;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod laws;
pub mod lower;
pub mod method_spec;
pub mod name;
pub mod numerics;
pub mod report;
pub mod run;
pub mod shape;
pub mod syntax;
