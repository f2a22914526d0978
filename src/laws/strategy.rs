//! proptest strategies for the laws: finite functions, spans, random smooth objectives,
//! random open objectives and random wiring diagrams filled with them.
//!
//! ```
//! use catopt::laws::strategy::random_composite;
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//! let mut runner = TestRunner::deterministic();
//! let sample = random_composite().new_tree(&mut runner).unwrap().current();
//! assert!(sample.composite().is_ok());
//! ```

use super::expr::{BinaryOp, Expr, Node, UnaryOp};
use super::DynObjective;
use crate::category::{oapply, CategoryError, Composite, FinFunction, Open, WiringDiagram};
use crate::name::IndexedName;
use crate::shape::Shape;
use proptest::prelude::*;
use std::sync::Arc;

/// A finite function `{0..source} -> {0..target}` (`target > 0` unless `source == 0`).
pub fn fin_function(source: usize, target: usize) -> BoxedStrategy<FinFunction> {
    if target == 0 {
        assert_eq!(
            source, 0,
            "no function from a non-empty set to the empty set"
        );
        return Just(FinFunction::initial(0)).boxed();
    }
    proptest::collection::vec(0..target, source)
        .prop_map(move |table| FinFunction::new(table, target).expect("in range"))
        .boxed()
}

/// A finite function with random sizes (source in `0..8`, target in `1..8`).
pub fn any_fin_function() -> BoxedStrategy<FinFunction> {
    (0usize..8, 1usize..8)
        .prop_flat_map(|(s, t)| fin_function(s, t))
        .boxed()
}

/// Three composable finite functions `f: a -> b`, `g: b -> c`, `h: c -> d`.
pub fn composable_triple() -> BoxedStrategy<(FinFunction, FinFunction, FinFunction)> {
    (0usize..8, 1usize..8, 1usize..8, 1usize..8)
        .prop_flat_map(|(a, b, c, d)| (fin_function(a, b), fin_function(b, c), fin_function(c, d)))
        .boxed()
}

/// A span `B <-f- A -g-> C` of finite functions (A in `0..10`, B and C in `1..8`).
pub fn span() -> BoxedStrategy<(FinFunction, FinFunction)> {
    (0usize..10, 1usize..8, 1usize..8)
        .prop_flat_map(|(a, b, c)| (fin_function(a, b), fin_function(a, c)))
        .boxed()
}

const UNARY: [UnaryOp; 8] = [
    UnaryOp::Neg,
    UnaryOp::Square,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Softplus,
    UnaryOp::Exp,
];
const BINARY: [BinaryOp; 3] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul];

/// A random smooth expression in `dimension` inputs with up to `max_operations` operations
/// (unary: - ^2 sin cos tanh sigmoid softplus exp; binary: + - *; constants). Every node
/// that nothing else uses is added into the result, so every input matters.
pub fn smooth_expr(dimension: usize, max_operations: usize) -> BoxedStrategy<Expr> {
    proptest::collection::vec(
        (0u8..13, any::<u16>(), any::<u16>(), -2.0f64..2.0),
        0..=max_operations,
    )
    .prop_map(move |ops| {
        let mut nodes: Vec<Node> = (0..dimension).map(Node::Input).collect();
        for (choice, a, b, constant) in ops {
            let k = nodes.len();
            let node = if k == 0 || choice == 12 {
                Node::Constant(constant)
            } else if (choice as usize) < UNARY.len() {
                Node::Unary(UNARY[choice as usize], a as usize % k)
            } else {
                let op = BINARY[(choice as usize - UNARY.len()) % BINARY.len()];
                Node::Binary(op, a as usize % k, b as usize % k)
            };
            nodes.push(node);
        }
        // Sum the roots (nodes no one uses).
        let mut used = vec![false; nodes.len()];
        for node in &nodes {
            match *node {
                Node::Unary(_, a) => used[a] = true,
                Node::Binary(_, a, b) => {
                    used[a] = true;
                    used[b] = true;
                }
                _ => {}
            }
        }
        let roots: Vec<usize> = (0..nodes.len()).filter(|&k| !used[k]).collect();
        if roots.is_empty() {
            nodes.push(Node::Constant(0.0));
        } else {
            let mut acc = roots[0];
            for &r in &roots[1..] {
                nodes.push(Node::Binary(BinaryOp::Add, acc, r));
                acc = nodes.len() - 1;
            }
            if acc != nodes.len() - 1 {
                nodes.push(Node::Unary(UnaryOp::Neg, acc));
                nodes.push(Node::Unary(UnaryOp::Neg, nodes.len() - 1));
            }
        }
        Expr::new(dimension, nodes).expect("built in order")
    })
    .boxed()
}

/// The port shapes used by the random diagrams.
pub const PORT_SHAPES: [Shape; 2] = [Shape::Scalar, Shape::Vector(2)];

/// A random open objective: data to build an [`Open`] around a random [`Expr`].
#[derive(Debug, Clone)]
pub struct RandomOpen {
    /// Port shapes.
    pub port_shapes: Vec<Shape>,
    /// Scalar port -> apex variable (not necessarily injective).
    pub portmap: Vec<usize>,
    /// The objective on the apex.
    pub objective: Expr,
}

impl RandomOpen {
    /// As an open objective with a type-erased decoration.
    pub fn to_open(&self) -> Open<DynObjective> {
        Open::objective(
            self.port_shapes.clone(),
            self.portmap.clone(),
            Arc::new(self.objective.clone()) as DynObjective,
        )
        .expect("generated consistently")
    }
}

/// A random open objective: apex 1..=4, 0..=3 ports of shape `real` or `real[2]`, a random
/// (possibly non-injective) portmap and a random smooth objective.
pub fn open_objective() -> BoxedStrategy<RandomOpen> {
    (
        1usize..=4,
        proptest::collection::vec(0usize..PORT_SHAPES.len(), 0..=3),
    )
        .prop_flat_map(|(apex, shapes)| {
            let port_shapes: Vec<Shape> = shapes.iter().map(|&s| PORT_SHAPES[s]).collect();
            let scalars: usize = port_shapes.iter().map(|s| s.len()).sum();
            (
                Just(port_shapes),
                proptest::collection::vec(0..apex, scalars),
                smooth_expr(apex, 6),
            )
        })
        .prop_map(|(port_shapes, portmap, objective)| RandomOpen {
            port_shapes,
            portmap,
            objective,
        })
        .boxed()
}

/// A random wiring diagram filled with random open objectives.
#[derive(Debug, Clone)]
pub struct RandomComposite {
    /// The diagram.
    pub diagram: WiringDiagram,
    /// The box types.
    pub box_types: Vec<RandomOpen>,
    /// Box -> box type.
    pub box_type_of: Vec<u32>,
}

impl RandomComposite {
    /// The box types as open objectives with type-erased decorations.
    pub fn open_types(&self) -> Vec<Open<DynObjective>> {
        self.box_types.iter().map(RandomOpen::to_open).collect()
    }

    /// `oapply(diagram, box types, box_type_of)`.
    pub fn composite(&self) -> Result<Composite<DynObjective>, CategoryError> {
        oapply(&self.diagram, &self.open_types(), &self.box_type_of)
    }
}

/// A diagram of `box_count` boxes over the given types, with junctions of both port shapes
/// and up to 3 outer ports. `choices` pick types, junctions and outer ports.
fn build_diagram(
    types: &[RandomOpen],
    junction_shapes: &[usize],
    boxes: &[(usize, Vec<usize>)],
    outer: &[usize],
    box_base: &Arc<str>,
) -> (WiringDiagram, Vec<u32>) {
    let mut d = WiringDiagram::new();
    let junction_base: Arc<str> = Arc::from("j");
    let mut by_shape: Vec<Vec<usize>> = vec![Vec::new(); PORT_SHAPES.len()];
    for (i, &s) in junction_shapes.iter().enumerate() {
        let j = d.add_junction(
            IndexedName::member(junction_base.clone(), i as i64),
            PORT_SHAPES[s],
        );
        by_shape[s].push(j);
    }
    for (s, list) in by_shape.iter_mut().enumerate() {
        if list.is_empty() {
            let i = d.junction_count();
            list.push(d.add_junction(
                IndexedName::member(junction_base.clone(), i as i64),
                PORT_SHAPES[s],
            ));
        }
    }
    let mut box_type_of = Vec::new();
    for (b, (type_choice, port_choices)) in boxes.iter().enumerate() {
        let t = type_choice % types.len();
        let junctions: Vec<usize> = types[t]
            .port_shapes
            .iter()
            .zip(port_choices)
            .map(|(shape, &c)| {
                let s = PORT_SHAPES
                    .iter()
                    .position(|p| p == shape)
                    .expect("known shape");
                by_shape[s][c % by_shape[s].len()]
            })
            .collect();
        d.add_box(IndexedName::member(box_base.clone(), b as i64), &junctions)
            .expect("junctions exist");
        box_type_of.push(t as u32);
    }
    for &o in outer {
        d.add_outer_port(o % d.junction_count())
            .expect("junction exists");
    }
    (d, box_type_of)
}

/// A random composite: 1..=3 box types, 1..=5 boxes, 1..=5 junctions (both shapes present),
/// 0..=3 outer ports.
pub fn random_composite() -> BoxedStrategy<RandomComposite> {
    random_composite_with(1..=5)
}

/// A random composite with the number of boxes in the given range.
pub fn random_composite_with(
    boxes: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<RandomComposite> {
    (
        proptest::collection::vec(open_objective(), 1..=3),
        proptest::collection::vec(0usize..PORT_SHAPES.len(), 1..=5),
        proptest::collection::vec(
            (any::<usize>(), proptest::collection::vec(any::<usize>(), 3)),
            boxes,
        ),
        proptest::collection::vec(any::<usize>(), 0..=3),
    )
        .prop_map(|(types, junction_shapes, boxes, outer)| {
            let (diagram, box_type_of) =
                build_diagram(&types, &junction_shapes, &boxes, &outer, &Arc::from("box"));
            RandomComposite {
                diagram,
                box_types: types,
                box_type_of,
            }
        })
        .boxed()
}

/// A random point of `R^dimension` with coordinates in `[-1, 1]`.
pub fn point(dimension: usize) -> BoxedStrategy<Vec<f64>> {
    proptest::collection::vec(-1.0f64..1.0, dimension).boxed()
}

/// The proptest configuration of the law tests: `cases` cases, failures persisted to
/// `proptest-regressions/{name}.txt` (relative to the package root, where `cargo test` runs;
/// proptest's default cannot find a `lib.rs` beside files under `tests/`).
pub fn config(name: &str, cases: u32) -> ProptestConfig {
    let path: &'static str = Box::leak(format!("proptest-regressions/{name}.txt").into_boxed_str());
    ProptestConfig {
        cases,
        failure_persistence: Some(std::boxed::Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(path),
        )),
        ..ProptestConfig::default()
    }
}
