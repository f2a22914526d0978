//! The category core: finite functions, pushouts, undirected wiring diagrams, open systems
//! and `oapply`, the GD functor and Euler's method.
//!
//! This module knows nothing of the `.opt` syntax, the checker or the numerics: objectives
//! enter only through the [`ReverseDerivative`] trait.
//!
//! ```
//! use catopt::category::*;
//! use catopt::name::IndexedName;
//! use catopt::shape::Shape;
//! # #[derive(Clone)]
//! # struct Shifted(f64, f64);
//! # impl ReverseDerivative for Shifted {
//! #     fn dimension(&self) -> usize { 2 }
//! #     fn value(&self, x: &[f64]) -> f64 { (x[0] - self.0).powi(2) + (x[1] - self.1).powi(2) }
//! #     fn reverse(&self, x: &[f64], s: f64, g: &mut [f64]) -> f64 {
//! #         g[0] = s * 2.0 * (x[0] - self.0); g[1] = s * 2.0 * (x[1] - self.1); self.value(x)
//! #     }
//! # }
//! // f1(a, b) = (a-1)^2 + (b-2)^2 and f2(b, c) = (b-4)^2 + (c+1)^2 share b.
//! let mut d = WiringDiagram::new();
//! let [a, b, c] = ["a", "b", "c"].map(|n| d.add_junction(IndexedName::plain(n), Shape::Scalar));
//! d.add_box(IndexedName::plain("f1"), &[a, b]).unwrap();
//! d.add_box(IndexedName::plain("f2"), &[b, c]).unwrap();
//! let ports = vec![Shape::Scalar, Shape::Scalar];
//! let f1 = Open::objective(ports.clone(), vec![0, 1], Shifted(1.0, 2.0)).unwrap();
//! let f2 = Open::objective(ports, vec![0, 1], Shifted(4.0, -1.0)).unwrap();
//! let composite = oapply_boxes(&d, &[f1, f2]).unwrap();
//! let descent = euler(gradient_flow(&composite), 0.1);
//! let x = iterate(&descent, &[0.0, 0.0, 0.0], 1);
//! assert!((x[0] - 0.2).abs() < 1e-15 && (x[1] - 1.2).abs() < 1e-15 && (x[2] + 0.2).abs() < 1e-15);
//! ```

mod diagram;
mod dynamics;
mod error;
mod finite;
mod open;

pub use diagram::{DiagramNode, ScalarWiring, Substitution, WiringDiagram};
pub use dynamics::{
    euler, gradient_flow, iterate, trajectory, DiscreteMap, Euler, GradientFlow, VectorField,
};
pub use error::{CategoryError, SubstitutionShapeConflict};
pub use finite::{pushout, FinFunction, Pushout};
pub use open::{
    oapply, oapply_boxes, Composite, CompositeObjective, Open, OpenContinuousSystem,
    OpenDiscreteSystem, OpenObjective, ReverseDerivative,
};
