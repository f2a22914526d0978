//! The laws of the methods by class, on random diagrams filled with random smooth
//! objectives (compiled by the numerics module): every implemented method of the registry.
//!
//! - compositional (gd, momentum; nesterov and agd once implemented): every backend gives
//!   the central reference's bits (the plan in box order) or the serial bits and the central
//!   iterate to rounding (types interleaved); the per-box variant equals the composite
//!   method to 1e-10 relative (for methods that take their gradient at `values`);
//! - coordinatewise (adam): distributed = central in the same sense, and on a diagram with
//!   a shared junction the per-box variant differs from the composite method.

use catopt::laws::check::same_bits;
use catopt::laws::methods::{
    check_runtime_vs_central, per_box_vs_composite, run_on_backend, LawBackend, MethodChoice,
    MethodProblem,
};
use catopt::laws::strategy::{config, random_composite, RandomComposite};
use catopt::laws::PointGenerator;
use catopt::method_spec::{MethodClass, METHODS};
use proptest::prelude::*;
use std::sync::Arc;

const STEPS: u64 = 5;

/// The implemented methods of a class, with `lr = 0.01` where they take one.
fn methods_of(class: MethodClass) -> Vec<MethodChoice> {
    METHODS
        .iter()
        .filter(|spec| spec.class == class)
        .filter_map(|spec| {
            let lr: &[(&str, f64)] = if spec.params.iter().any(|p| p.name == "lr") {
                &[("lr", 0.01)]
            } else {
                &[]
            };
            let method = MethodChoice::by_name(spec.name, lr).ok()?;
            catopt::run::method::build(&method.config, method.schedule).ok()?;
            Some(method)
        })
        .collect()
}

fn start(problem: &MethodProblem, seed: u64) -> Vec<f64> {
    PointGenerator::new(seed).point(problem.apex(), 0.8)
}

/// Every backend gives the serial bits, and the central reference's (bitwise when the plan
/// sums in box order, else to 1e-10).
fn assert_distributed_is_central(problem: &MethodProblem, method: &MethodChoice, x0: &[f64]) {
    let [reference, runtime] = check_runtime_vs_central(problem, method, x0, STEPS, 1e-10).unwrap();
    assert!(reference.passed, "{}: {reference:?}", method.describe());
    assert!(runtime.passed, "{}: {runtime:?}", method.describe());
    let plan = Arc::new(problem.plan().unwrap());
    let serial = run_on_backend(&plan, LawBackend::Serial, method, x0, STEPS).unwrap();
    for backend in LawBackend::ALL {
        let run = run_on_backend(&plan, backend, method, x0, STEPS).unwrap();
        assert_eq!(run.steps, serial.steps);
        let all = |r: &catopt::laws::methods::MethodRun| {
            let mut v = r.values.clone();
            v.extend(r.vectors.iter().flatten());
            v
        };
        assert!(
            all(&run)
                .iter()
                .zip(&all(&serial))
                .all(|(a, b)| same_bits(*a, *b)),
            "{} on {}",
            method.describe(),
            backend.describe()
        );
    }
}

/// Whether per-box Adam's first step must differ from the composite's at `x0`: some
/// coordinate receives clearly non-zero gradients (above 1e-6 in magnitude) from two local
/// coordinates (of one box or two) whose signs do not add up to the sign of their sum.
/// Adam's first step moves a coordinate by about `-lr sign(g)`: per box, by `-lr` times the
/// sum of its contributions' signs; composite, by `-lr sign(sum)`. (Contributions -1, +1, +1
/// on one coordinate move it by `-lr` either way; so does a coordinate that no objective
/// depends on, or whose second contribution is tiny, say 1e-300, which Adam's `eps` turns
/// into a step below the coordinate's last bit.)
fn has_a_shared_moving_coordinate(problem: &MethodProblem, x0: &[f64]) -> bool {
    let n = problem.apex();
    let (mut count, mut sum, mut signs) = (vec![0usize; n], vec![0.0; n], vec![0.0; n]);
    for (b, &t) in problem.box_type_of.iter().enumerate() {
        let phi = problem.composite.local_to_global(b);
        let objective = &problem.box_types[t as usize];
        let local: Vec<f64> = phi.iter().map(|&i| x0[i]).collect();
        let mut gradient = vec![0.0; phi.len()];
        objective.value_and_gradient(&mut objective.workspace(), &local, &mut gradient);
        for (&i, &g) in phi.iter().zip(&gradient) {
            if g.abs() > 1e-6 {
                count[i] += 1;
                sum[i] += g;
                signs[i] += g.signum();
            }
        }
    }
    (0..n).any(|i| {
        let composite = if sum[i] == 0.0 { 0.0 } else { sum[i].signum() };
        count[i] >= 2 && signs[i] != composite
    })
}

proptest! {
    #![proptest_config(config("laws_methods", 48))]

    #[test]
    fn compositional_methods_per_box_is_composite_and_distributed_is_central(
        random in random_composite(),
        seed in 0u64..1000,
    ) {
        let problem = MethodProblem::of_random(&random).unwrap();
        let x0 = start(&problem, seed);
        let methods = methods_of(MethodClass::Compositional);
        prop_assert!(methods.iter().any(|m| m.config.name() == "gd"));
        prop_assert!(methods.iter().any(|m| m.config.name() == "momentum"));
        for method in &methods {
            assert_distributed_is_central(&problem, method, &x0);
            if method.per_box_is_a_law().unwrap() {
                let comparison = per_box_vs_composite(&problem, method, &x0, STEPS).unwrap();
                prop_assert!(comparison.stopped.is_none());
                prop_assert!(
                    comparison.relative <= 1e-10,
                    "{}: per-box vs composite {:e}",
                    method.describe(),
                    comparison.relative
                );
            }
        }
    }

    #[test]
    fn coordinatewise_methods_distributed_is_central_and_per_box_differs(
        random in random_composite(),
        seed in 0u64..1000,
    ) {
        let problem = MethodProblem::of_random(&random).unwrap();
        let x0 = start(&problem, seed);
        let methods = methods_of(MethodClass::Coordinatewise);
        prop_assert!(methods.iter().any(|m| m.config.name() == "adam"));
        for method in &methods {
            assert_distributed_is_central(&problem, method, &x0);
            if has_a_shared_moving_coordinate(&problem, &x0) {
                let comparison = per_box_vs_composite(&problem, method, &x0, STEPS).unwrap();
                prop_assert!(
                    comparison.max_abs > 0.0,
                    "{}: the per-box variant equals the composite method",
                    method.describe()
                );
            }
        }
    }
}

/// Two boxes sharing one scalar junction, hand-built: the per-box Adam differs by a known
/// amount after one step (each box moves the shared coordinate by about `lr` against its own
/// gradient's sign; the composite Adam moves it by about `lr` once).
#[test]
fn per_box_adam_on_a_shared_junction_moves_twice() {
    use catopt::laws::expr::{BinaryOp, Expr, Node, UnaryOp};
    use catopt::laws::strategy::RandomOpen;
    use catopt::name::IndexedName;
    use catopt::shape::Shape;
    // f(x) = (x - 1)^2 twice on one junction: both boxes push x the same way.
    let square_minus_one = Expr::new(
        1,
        vec![
            Node::Input(0),
            Node::Constant(1.0),
            Node::Binary(BinaryOp::Sub, 0, 1),
            Node::Unary(UnaryOp::Square, 2),
        ],
    )
    .unwrap();
    let mut diagram = catopt::category::WiringDiagram::new();
    let x = diagram.add_junction(IndexedName::plain("x"), Shape::Scalar);
    diagram.add_box(IndexedName::member("f", 0), &[x]).unwrap();
    diagram.add_box(IndexedName::member("f", 1), &[x]).unwrap();
    let random = RandomComposite {
        diagram,
        box_types: vec![RandomOpen {
            port_shapes: vec![Shape::Scalar],
            portmap: vec![0],
            objective: square_minus_one,
        }],
        box_type_of: vec![0, 0],
    };
    let problem = MethodProblem::of_random(&random).unwrap();
    let adam = MethodChoice::by_name("adam", &[("lr", 0.01)]).unwrap();
    let comparison = per_box_vs_composite(&problem, &adam, &[0.0], 1).unwrap();
    // One Adam step is -lr * g / (|g| + eps) per coordinate: 0.01 for the composite,
    // 2 * 0.01 for the two boxes.
    assert!(
        (comparison.composite[0] - 0.01).abs() < 1e-9,
        "{comparison:?}"
    );
    assert!(
        (comparison.per_box[0] - 0.02).abs() < 1e-9,
        "{comparison:?}"
    );
    // gd is compositional: the same point to rounding.
    let gd = MethodChoice::by_name("gd", &[("lr", 0.1)]).unwrap();
    let comparison = per_box_vs_composite(&problem, &gd, &[0.0], 3).unwrap();
    assert!(comparison.relative <= 1e-15, "{comparison:?}");
}
