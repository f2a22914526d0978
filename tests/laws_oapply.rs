//! Law group 3: oapply — identity, nesting = flattening, copy/merge, outer ports.

use catopt::category::*;
use catopt::laws::check::same_bits;
use catopt::laws::strategy::{
    open_objective, point, random_composite, smooth_expr, RandomComposite,
};
use catopt::laws::{correspondence, DynObjective};
use catopt::name::IndexedName;
use catopt::shape::Shape;
use proptest::prelude::*;
use std::sync::Arc;

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(catopt::laws::strategy::config("laws_oapply", 256))]

    /// oapply on the identity diagram gives the box back, up to relabelling its variables.
    #[test]
    fn identity_diagram_changes_nothing(open in open_objective(), seed in point(8)) {
        let d = WiringDiagram::identity(IndexedName::plain("f"), &open.port_shapes);
        let composite = oapply_boxes(&d, &[open.to_open()]).unwrap();
        let n = open.objective.dimension();
        prop_assert_eq!(composite.apex(), n);
        let sigma = FinFunction::new(composite.local_to_global(0).to_vec(), n).unwrap();
        prop_assert!(sigma.is_injective());
        // Portmap: the composite's ports are the box's ports, relabelled by sigma.
        prop_assert_eq!(composite.portmap(), &open.to_open().portmap().compose(&sigma).unwrap());
        // Objective and gradient: F(z) = f(sigma^* z).
        let z: Vec<f64> = seed[..n].to_vec();
        let local: Vec<f64> = (0..n).map(|k| z[sigma.apply(k)]).collect();
        let (mut g, mut local_g) = (vec![0.0; n], vec![0.0; n]);
        let v = composite.reverse(&z, 1.0, &mut g);
        let local_v = open.objective.reverse(&local, 1.0, &mut local_g);
        prop_assert!(v == local_v || (v.is_nan() && local_v.is_nan()));
        for k in 0..n {
            prop_assert!(g[sigma.apply(k)] == local_g[k]);
        }
    }

    /// f(x, x): both ports merge into one variable and both partials add up.
    #[test]
    fn copy_merge_sums_both_partials(f in smooth_expr(2, 6), x in -1.0f64..1.0) {
        let mut d = WiringDiagram::new();
        let j = d.add_junction(IndexedName::plain("x"), Shape::Scalar);
        d.add_box(IndexedName::plain("f"), &[j, j]).unwrap();
        let open = Open::objective(vec![Shape::Scalar; 2], vec![0, 1], f.clone()).unwrap();
        let composite = oapply_boxes(&d, &[open]).unwrap();
        prop_assert_eq!(composite.apex(), 1);
        let mut g = [0.0];
        let v = composite.reverse(&[x], 1.0, &mut g);
        let mut partials = [0.0; 2];
        let expected = f.reverse(&[x, x], 1.0, &mut partials);
        prop_assert!(v == expected);
        prop_assert!(g[0] == partials[0] + partials[1]);
    }

    /// Exposing a junction as an outer port adds a port and changes nothing else.
    #[test]
    fn outer_port_exposes_without_changing_the_objective(
        random in random_composite(), which in any::<usize>(), z in point(64)
    ) {
        let before = random.composite().unwrap();
        let mut exposed = random.clone();
        let j = which % exposed.diagram.junction_count();
        exposed.diagram.add_outer_port(j).unwrap();
        let after = exposed.composite().unwrap();
        prop_assert_eq!(after.apex(), before.apex());
        prop_assert_eq!(after.boxes_to_apex(), before.boxes_to_apex());
        let mut ports = before.portmap().table().to_vec();
        ports.extend_from_slice(before.junction_variables(j));
        prop_assert_eq!(after.portmap().table(), &ports[..]);
        let n = before.apex();
        prop_assume!(n <= z.len());
        let (mut g1, mut g2) = (vec![0.0; n], vec![0.0; n]);
        let v1 = before.reverse(&z[..n], 1.0, &mut g1);
        let v2 = after.reverse(&z[..n], 1.0, &mut g2);
        // Bit for bit (a NaN's sign and payload do not count).
        prop_assert!(same_bits(v1, v2), "{} vs {}", v1, v2);
        prop_assert!(g1.iter().zip(&g2).all(|(a, b)| same_bits(*a, *b)), "{:?} vs {:?}", g1, g2);
    }

    /// Associativity: oapply of the flattened diagram equals oapply of the outer diagram with
    /// the inner composite (as an open objective) in one of its boxes.
    #[test]
    fn nesting_equals_flattening(
        outer in random_composite(),
        inner in random_composite(),
        position in any::<usize>(),
        wiring in proptest::collection::vec(any::<usize>(), 3),
        z in point(128),
    ) {
        check_nesting(&outer, &inner, position, &wiring, &z)?;
    }
}

fn check_nesting(
    outer: &RandomComposite,
    inner: &RandomComposite,
    position: usize,
    wiring: &[usize],
    z: &[f64],
) -> Result<(), TestCaseError> {
    // The outer diagram with one more box, at `position`, for the inner composite; its ports
    // are wired to outer junctions of the right shapes.
    let od = &outer.diagram;
    let inner_shapes = inner.diagram.outer_port_shapes();
    let position = position % (od.box_count() + 1);
    let mut nested_ports = Vec::new();
    for (k, shape) in inner_shapes.iter().enumerate() {
        let candidates: Vec<usize> = (0..od.junction_count())
            .filter(|&j| od.junction_shape(j) == *shape)
            .collect();
        nested_ports.push(candidates[wiring[k % wiring.len()] % candidates.len()]);
    }
    let mut box_names = Vec::new();
    let mut port_box = Vec::new();
    let mut port_junction = Vec::new();
    let mut push_box = |name: IndexedName, junctions: &[usize]| {
        let b = box_names.len();
        box_names.push(name);
        for &j in junctions {
            port_box.push(b);
            port_junction.push(j);
        }
    };
    let outer_type_count = outer.box_types.len() as u32;
    let mut nested_type_of = Vec::new();
    for b in 0..=od.box_count() {
        if b == position {
            push_box(IndexedName::plain("nest"), &nested_ports);
            nested_type_of.push(outer_type_count);
        }
        if b < od.box_count() {
            push_box(od.box_name(b).clone(), od.box_junctions(b));
            nested_type_of.push(outer.box_type_of[b]);
        }
    }
    let junction_names = (0..od.junction_count())
        .map(|j| od.junction_name(j).clone())
        .collect();
    let nested_diagram = WiringDiagram::from_parts(
        box_names,
        port_box,
        port_junction,
        junction_names,
        od.junction_shapes().to_vec(),
        od.outer_port_junction().to_vec(),
    )
    .unwrap();

    // Nested: the inner composite as an open objective in box `position`.
    let inner_composite = inner.composite().unwrap();
    let inner_open = inner_composite
        .clone()
        .into_open()
        .map_decoration(|c| Arc::new(c) as DynObjective);
    let mut nested_types = outer.open_types();
    nested_types.push(inner_open);
    let nested = oapply(&nested_diagram, &nested_types, &nested_type_of).unwrap();

    // Flat: substitute the inner diagram into that box.
    let sub = nested_diagram
        .substitute_with_maps(position, &inner.diagram)
        .unwrap();
    let mut flat_types = outer.open_types();
    flat_types.extend(inner.open_types());
    let mut flat_type_of = nested_type_of.clone();
    flat_type_of.splice(
        position..=position,
        inner.box_type_of.iter().map(|t| t + outer_type_count),
    );
    let flat = oapply(&sub.diagram, &flat_types, &flat_type_of).unwrap();

    // The correspondence flat apex -> nested apex, through leaf boxes and junctions.
    let mut pairs = Vec::new();
    let inner_boxes = inner.diagram.box_count();
    for b in 0..nested_diagram.box_count() {
        if b == position {
            continue;
        }
        let fb = if b < position { b } else { b + inner_boxes - 1 };
        pairs.extend(
            flat.local_to_global(fb)
                .iter()
                .copied()
                .zip(nested.local_to_global(b).iter().copied()),
        );
    }
    let nest_phi = nested.local_to_global(position);
    for i in 0..inner_boxes {
        let flat_phi = flat.local_to_global(sub.first_inner_box + i);
        let via_inner = inner_composite
            .local_to_global(i)
            .iter()
            .map(|&v| nest_phi[v]);
        pairs.extend(flat_phi.iter().copied().zip(via_inner));
    }
    for j in 0..nested_diagram.junction_count() {
        let fj = sub.outer_junctions.apply(j);
        pairs.extend(
            flat.junction_variables(fj)
                .iter()
                .copied()
                .zip(nested.junction_variables(j).iter().copied()),
        );
    }
    for j in 0..inner.diagram.junction_count() {
        let fj = sub.inner_junctions.apply(j);
        let via_inner = inner_composite
            .junction_variables(j)
            .iter()
            .map(|&v| nest_phi[v]);
        pairs.extend(flat.junction_variables(fj).iter().copied().zip(via_inner));
    }
    let sigma = correspondence(pairs, flat.apex(), nested.apex()).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&flat.portmap().compose(&sigma).unwrap(), nested.portmap());

    let n = flat.apex();
    prop_assume!(n <= z.len());
    let z_flat = &z[..n];
    let mut z_nested = vec![0.0; n];
    for i in 0..n {
        z_nested[sigma.apply(i)] = z_flat[i];
    }
    let (mut g_flat, mut g_nested) = (vec![0.0; n], vec![0.0; n]);
    let v_flat = flat.reverse(z_flat, 1.0, &mut g_flat);
    let v_nested = nested.reverse(&z_nested, 1.0, &mut g_nested);
    prop_assume!(v_flat.is_finite() && g_flat.iter().all(|v| v.is_finite()));
    prop_assert!(close(v_flat, v_nested), "values {} vs {}", v_flat, v_nested);
    for i in 0..n {
        prop_assert!(
            close(g_flat[i], g_nested[sigma.apply(i)]),
            "gradient {} vs {}",
            g_flat[i],
            g_nested[sigma.apply(i)]
        );
    }
    Ok(())
}
