//! Law group 4: the GD functor is natural (compose then GD = GD then compose), Euler is
//! natural over 100 steps, and GD preserves the monoidal product.

use catopt::category::*;
use catopt::laws::check::same_bits;
use catopt::laws::strategy::{point, random_composite, RandomComposite};
use catopt::laws::{check_gd_naturality, check_increments_vs_central, correspondence};
use proptest::prelude::*;

proptest! {
    #![proptest_config(catopt::laws::strategy::config("laws_gd", 256))]

    #[test]
    fn gd_is_natural(random in random_composite(), seed in any::<u64>()) {
        let report = check_gd_naturality(
            &random.diagram, &random.open_types(), &random.box_type_of, 5, seed, 1.0, 1e-12,
        ).unwrap();
        prop_assert!(report.passed, "{:?}", report);
    }

    /// euler(oapply(d, v_b), gamma) against oapply(d, euler(v_b, gamma)) (summed increments),
    /// at the 100 states of a run: equal up to rounding (relative 1e-12).
    #[test]
    fn euler_is_natural_over_100_steps(random in random_composite(), start in point(64)) {
        let composite = random.composite().unwrap();
        let n = composite.apex();
        prop_assume!(n <= start.len());
        // Random objectives may blow up (exp of exp); the law is about runs that stay finite.
        let central = trajectory(&euler(gradient_flow(&composite), 0.01), &start[..n], 100);
        prop_assume!(central.iter().flatten().all(|v| v.is_finite() && v.abs() < 1e6));
        let report = check_increments_vs_central(
            &random.diagram, &random.open_types(), &random.box_type_of, &start[..n], 0.01, 100, 1e-12,
        ).unwrap();
        prop_assert!(report.passed, "{:?}", report);
    }

    /// GD(d1 (x) d2) = GD(d1) (x) GD(d2): the gradient flow of the side-by-side composite is
    /// the two gradient flows side by side, bit for bit.
    #[test]
    fn gd_preserves_the_monoidal_product(
        first in random_composite(), second in random_composite(), z in point(128)
    ) {
        check_monoidal(&first, &second, &z)?;
    }
}

fn check_monoidal(
    first: &RandomComposite,
    second: &RandomComposite,
    z: &[f64],
) -> Result<(), TestCaseError> {
    let c1 = first.composite().unwrap();
    let c2 = second.composite().unwrap();
    let product_diagram = first.diagram.parallel(&second.diagram);
    let mut types = first.open_types();
    types.extend(second.open_types());
    let offset = first.box_types.len() as u32;
    let mut type_of = first.box_type_of.clone();
    type_of.extend(second.box_type_of.iter().map(|t| t + offset));
    let product = oapply(&product_diagram, &types, &type_of).unwrap();

    // product apex -> c1 apex + c2 apex, through boxes and junctions.
    let (n1, n2) = (c1.apex(), c2.apex());
    let mut pairs = Vec::new();
    let boxes1 = first.diagram.box_count();
    for b in 0..boxes1 {
        pairs.extend(
            product
                .local_to_global(b)
                .iter()
                .copied()
                .zip(c1.local_to_global(b).iter().copied()),
        );
    }
    for b in 0..second.diagram.box_count() {
        let shifted = c2.local_to_global(b).iter().map(|&v| v + n1);
        pairs.extend(
            product
                .local_to_global(boxes1 + b)
                .iter()
                .copied()
                .zip(shifted),
        );
    }
    let junctions1 = first.diagram.junction_count();
    for j in 0..junctions1 {
        pairs.extend(
            product
                .junction_variables(j)
                .iter()
                .copied()
                .zip(c1.junction_variables(j).iter().copied()),
        );
    }
    for j in 0..second.diagram.junction_count() {
        let shifted = c2.junction_variables(j).iter().map(|&v| v + n1);
        pairs.extend(
            product
                .junction_variables(junctions1 + j)
                .iter()
                .copied()
                .zip(shifted),
        );
    }
    let sigma = correspondence(pairs, product.apex(), n1 + n2).map_err(TestCaseError::fail)?;
    let ports = c1.portmap().coproduct(c2.portmap());
    prop_assert_eq!(&product.portmap().compose(&sigma).unwrap(), &ports);

    let n = product.apex();
    prop_assume!(n <= z.len());
    let z = &z[..n];
    let mut split = vec![0.0; n];
    for i in 0..n {
        split[sigma.apply(i)] = z[i];
    }
    let mut v = vec![0.0; n];
    gradient_flow(&product).eval(z, &mut v);
    // The product of the boxes' gradient flows, composed as vector fields.
    let flows: Vec<_> = types
        .into_iter()
        .map(|t| t.map_decoration(gradient_flow))
        .collect();
    let mut v_flows = vec![0.0; n];
    oapply(&product_diagram, &flows, &type_of)
        .unwrap()
        .eval(z, &mut v_flows);
    let (mut v1, mut v2) = (vec![0.0; n1], vec![0.0; n2]);
    gradient_flow(&c1).eval(&split[..n1], &mut v1);
    gradient_flow(&c2).eval(&split[n1..], &mut v2);
    v1.extend(v2);
    for i in 0..n {
        // Bit for bit (a NaN's sign and payload do not count).
        prop_assert!(
            same_bits(v[i], v1[sigma.apply(i)]),
            "variable {}: {} vs {}",
            i,
            v[i],
            v1[sigma.apply(i)]
        );
        prop_assert!(
            same_bits(v_flows[i], v1[sigma.apply(i)]),
            "variable {} (composite of flows): {} vs {}",
            i,
            v_flows[i],
            v1[sigma.apply(i)]
        );
    }
    Ok(())
}
