//! Numerics: a compiled expression IR with our own reverse-mode differentiation.
//!
//! An open objective's body is built node by node with an [`ExprBuilder`] (a flat array of
//! operations, children before parents, shapes known per node; reusing a [`NodeId`] shares
//! the subexpression), then compiled once into a [`CompiledObjective`]: data-only
//! subexpressions are folded, and the remaining steps run over preallocated buffers held
//! in a [`Workspace`], so evaluating the value and gradient allocates nothing.
//!
//! Scalar-only objectives (such as a Rosenbrock box) can also be evaluated for many boxes
//! at once with [`CompiledObjective::batch_value_and_gradient`], bit-identically.
//!
//! This module knows nothing of the syntax, the checker or the category core.
//!
//! ```
//! use catopt::numerics::{BinaryOp, ExprBuilder, Reduction, Shape, UnaryOp};
//! // f(w) = logsumexp(A @ w) for a constant 2 x 2 matrix A
//! let mut b = ExprBuilder::new(2);
//! let a = b.constant(Shape::Matrix(2, 2), &[1.0, 0.0, 0.0, 2.0]);
//! let w = b.input(0, Shape::Vector(2));
//! let aw = b.binary(BinaryOp::MatMul, a, w).unwrap();
//! let f = b.reduce(Reduction::LogSumExp, aw);
//! let objective = b.compile(f).unwrap();
//! let mut ws = objective.workspace();
//! let mut gradient = [0.0; 2];
//! let value = objective.value_and_gradient(&mut ws, &[0.0, 0.0], &mut gradient);
//! assert!((value - 2f64.ln()).abs() < 1e-15);
//! assert_eq!(gradient, [0.5, 1.0]);
//! ```

mod batch;
mod box_data;
mod builder;
mod compile;
mod kernels;
mod native;

pub use crate::shape::Shape;
pub use batch::BatchWorkspace;
pub use box_data::BoxData;
pub use builder::{BinaryOp, ExprBuilder, NodeId, Reduction, ShapeError, UnaryOp};
pub use compile::{CompiledObjective, Workspace};
pub use kernels::tanh;
pub(crate) use kernels::{sigmoid, softplus};
pub use native::{KernelChoice, KernelNote, Unsupported};
