//! Law group 5: distributed gradient descent (each box's local gradient, summed on junctions
//! in box order, then one Euler step) equals central gradient descent on the composite,
//! bit for bit.

use catopt::category::*;
use catopt::laws::check_distributed_vs_central;
use catopt::laws::strategy::{point, random_composite_with};
use proptest::prelude::*;

proptest! {
    #![proptest_config(catopt::laws::strategy::config("laws_distributed", 128))]

    #[test]
    fn distributed_equals_central_bit_for_bit(
        random in random_composite_with(1..=8), start in point(128), steps in 1usize..40
    ) {
        let n = random.composite().unwrap().apex();
        prop_assume!(n <= start.len());
        let report = check_distributed_vs_central(
            &random.diagram, &random.open_types(), &random.box_type_of, &start[..n], 0.05, steps,
        ).unwrap();
        prop_assert!(report.passed, "{:?}", report);
        prop_assert_eq!(report.max_deviation, 0.0);
    }

    /// The distributed run, written out by hand as the runtime will do it: gather, local
    /// reverse derivative, scatter-add in box order, Euler step.
    #[test]
    fn hand_written_distributed_loop_matches(
        random in random_composite_with(1..=8), start in point(128)
    ) {
        let composite = random.composite().unwrap();
        let n = composite.apex();
        prop_assume!(n <= start.len());
        let gamma = 0.05;
        let mut x = start[..n].to_vec();
        let mut velocity = vec![0.0; n];
        let mut local = vec![0.0; composite.max_box_apex()];
        let mut local_gradient = vec![0.0; composite.max_box_apex()];
        for _ in 0..10 {
            velocity.fill(0.0);
            for b in 0..composite.box_count() {
                let phi = composite.local_to_global(b);
                for (k, &i) in phi.iter().enumerate() {
                    local[k] = x[i];
                }
                composite.box_decoration(b).reverse(&local[..phi.len()], -1.0, &mut local_gradient[..phi.len()]);
                for (k, &i) in phi.iter().enumerate() {
                    velocity[i] += local_gradient[k];
                }
            }
            for i in 0..n {
                x[i] += gamma * velocity[i];
            }
        }
        let central = iterate(&euler(gradient_flow(&composite), gamma), &start[..n], 10);
        // Bit for bit, except that a NaN's sign and payload (which depend on operand order)
        // do not count.
        for (i, (a, b)) in x.iter().zip(&central).enumerate() {
            prop_assert!(
                catopt::laws::check::same_bits(*a, *b),
                "coordinate {}: {:e} ({:#x}) vs {:e} ({:#x})", i, a, a.to_bits(), b, b.to_bits()
            );
        }
    }
}

/// The check can fail: a different step size in one of the two runs is detected.
#[test]
fn the_distributed_check_reports_a_difference() {
    use catopt::laws::Quadratic;
    use catopt::name::IndexedName;
    use catopt::shape::Shape;
    let mut d = WiringDiagram::new();
    let x = d.add_junction(IndexedName::plain("x"), Shape::Scalar);
    d.add_box(IndexedName::plain("f"), &[x]).unwrap();
    let open = Open::objective(
        vec![Shape::Scalar],
        vec![0],
        Quadratic::distance_squared(&[1.0]),
    )
    .unwrap();
    let good = check_distributed_vs_central(&d, std::slice::from_ref(&open), &[0], &[0.0], 0.1, 5)
        .unwrap();
    assert!(good.passed && good.max_deviation == 0.0);
    // The increment form with a loose tolerance passes, with zero tolerance it is a bitwise
    // check and would fail where rounding differs; a wrong start length is an error.
    assert!(check_distributed_vs_central(&d, &[open], &[0], &[0.0, 1.0], 0.1, 5).is_err());
}
