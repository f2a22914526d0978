//! Reference cases built directly through the category API (the lead adds `.opt` versions).

use catopt::category::*;
use catopt::laws::Quadratic;
use catopt::name::IndexedName;
use catopt::shape::Shape;
use nalgebra::{DMatrix, DVector};

fn scalars(n: usize) -> Vec<Shape> {
    vec![Shape::Scalar; n]
}

/// f1(a,b) = (a-1)^2 + (b-2)^2, f2(b,c) = (b-4)^2 + (c+1)^2, sharing b.
fn two_quadratics() -> (Composite<Quadratic>, [usize; 3]) {
    let mut d = WiringDiagram::new();
    let [a, b, c] = ["a", "b", "c"].map(|n| d.add_junction(IndexedName::plain(n), Shape::Scalar));
    d.add_box(IndexedName::plain("f1"), &[a, b]).unwrap();
    d.add_box(IndexedName::plain("f2"), &[b, c]).unwrap();
    let f1 = Open::objective(
        scalars(2),
        vec![0, 1],
        Quadratic::distance_squared(&[1.0, 2.0]),
    );
    let f2 = Open::objective(
        scalars(2),
        vec![0, 1],
        Quadratic::distance_squared(&[4.0, -1.0]),
    );
    let composite = oapply_boxes(&d, &[f1.unwrap(), f2.unwrap()]).unwrap();
    let vars = [a, b, c].map(|j| composite.junction_variables(j)[0]);
    (composite, vars)
}

#[test]
fn two_quadratics_one_step_and_minimiser() {
    let (composite, [a, b, c]) = two_quadratics();
    assert_eq!(composite.apex(), 3);
    let step = iterate(&euler(gradient_flow(&composite), 0.1), &[0.0; 3], 1);
    assert!((step[a] - 0.2).abs() < 1e-15, "a = {}", step[a]);
    assert!((step[b] - 1.2).abs() < 1e-15, "b = {}", step[b]);
    assert!((step[c] + 0.2).abs() < 1e-15, "c = {}", step[c]);
    // The distributed form (boxes' gradients summed on junctions) gives the same bits.
    let flows: Vec<_> = [
        Quadratic::distance_squared(&[1.0, 2.0]),
        Quadratic::distance_squared(&[4.0, -1.0]),
    ]
    .into_iter()
    .map(|q| {
        Open::objective(scalars(2), vec![0, 1], q)
            .unwrap()
            .map_decoration(gradient_flow)
    })
    .collect();
    let mut d = WiringDiagram::new();
    let [ja, jb, jc] =
        ["a", "b", "c"].map(|n| d.add_junction(IndexedName::plain(n), Shape::Scalar));
    d.add_box(IndexedName::plain("f1"), &[ja, jb]).unwrap();
    d.add_box(IndexedName::plain("f2"), &[jb, jc]).unwrap();
    let distributed = iterate(&euler(oapply_boxes(&d, &flows).unwrap(), 0.1), &[0.0; 3], 1);
    assert_eq!(distributed, step);

    let minimiser = iterate(&euler(gradient_flow(&composite), 0.1), &[0.0; 3], 500);
    assert!((minimiser[a] - 1.0).abs() < 1e-12);
    assert!((minimiser[b] - 3.0).abs() < 1e-12);
    assert!((minimiser[c] + 1.0).abs() < 1e-12);
    assert!((composite.value(&minimiser) - 2.0).abs() < 1e-12);
}

const P: [f64; 25] = [
    2.1154, -0.3038, 0.368, -1.5728, -1.203, //
    -0.3038, 1.5697, 1.0226, 0.159, -0.946, //
    0.368, 1.0226, 1.847, -0.4916, -1.2668, //
    -1.5728, 0.159, -0.4916, 2.2192, 1.5315, //
    -1.203, -0.946, -1.2668, 1.5315, 1.9281,
];
const Q: [f64; 9] = [
    0.2456, 0.3564, -0.0088, //
    0.3564, 0.5912, -0.0914, //
    -0.0088, -0.0914, 0.8774,
];
const R: [f64; 16] = [
    2.0546, -1.333, -0.5263, 0.3189, //
    -1.333, 1.0481, -0.0211, 0.2462, //
    -0.5263, -0.0211, 0.951, -0.7813, //
    0.3189, 0.2462, -0.7813, 1.5813,
];

/// The AlgebraicOptimization.jl problem (tests/data/three_quadratics.md):
/// f(u,x), g(u,w,y), h(u,w,z). Returns the composite and the variables of u, w, x, y, z.
fn three_quadratics() -> (Composite<Quadratic>, [usize; 5]) {
    let mut d = WiringDiagram::new();
    let [x, y, z, u, w] =
        ["x", "y", "z", "u", "w"].map(|n| d.add_junction(IndexedName::plain(n), Shape::Scalar));
    d.add_box(IndexedName::plain("f"), &[u, x]).unwrap();
    d.add_box(IndexedName::plain("g"), &[u, w, y]).unwrap();
    d.add_box(IndexedName::plain("h"), &[u, w, z]).unwrap();
    for j in [x, y, z] {
        d.add_outer_port(j).unwrap();
    }
    let f = Quadratic::new(P.to_vec(), vec![-0.26, 0.22, 0.09, 0.19, -0.96], 0.0);
    let g = Quadratic::new(Q.to_vec(), vec![-0.72, 0.12, 0.41], 0.0);
    let h = Quadratic::new(R.to_vec(), vec![0.55, 0.51, 0.6, -0.61], 0.0);
    let boxes = [
        Open::objective(scalars(2), vec![1, 3], f).unwrap(),
        Open::objective(scalars(3), vec![0, 1, 2], g).unwrap(),
        Open::objective(scalars(3), vec![0, 2, 3], h).unwrap(),
    ];
    let composite = oapply_boxes(&d, &boxes).unwrap();
    let vars = [u, w, x, y, z].map(|j| composite.junction_variables(j)[0]);
    (composite, vars)
}

/// Hessian and gradient at 0 of a quadratic composite, by probing its (affine) gradient.
fn hessian_and_offset(f: &impl ReverseDerivative) -> (DMatrix<f64>, DVector<f64>) {
    let n = f.dimension();
    let mut g0 = vec![0.0; n];
    f.reverse(&vec![0.0; n], 1.0, &mut g0);
    let mut h = DMatrix::zeros(n, n);
    for i in 0..n {
        let mut e = vec![0.0; n];
        e[i] = 1.0;
        let mut gi = vec![0.0; n];
        f.reverse(&e, 1.0, &mut gi);
        for r in 0..n {
            h[(r, i)] = gi[r] - g0[r];
        }
    }
    (h, DVector::from_vec(g0))
}

#[test]
fn three_quadratics_minimiser_matches_the_reference() {
    let (composite, vars) = three_quadratics();
    assert_eq!(composite.apex(), 9);
    let (h, g0) = hessian_and_offset(&composite);
    let minimiser = h.clone().lu().solve(&(-g0)).expect("positive definite");
    let expected = [0.637071, -0.246168, -1.194938, -0.252899, -0.150220];
    for (name, (&v, e)) in ["u", "w", "x", "y", "z"]
        .iter()
        .zip(vars.iter().zip(expected))
    {
        assert!(
            (minimiser[v] - e).abs() < 1e-6,
            "{name} = {} expected {e}",
            minimiser[v]
        );
    }
    let value = composite.value(minimiser.as_slice());
    assert!((value - -1.171598).abs() < 1e-6, "F* = {value}");

    // Step-size threshold 2 / lambda_max.
    let lambda_max = h.symmetric_eigenvalues().max();
    let threshold = 2.0 / lambda_max;
    assert!(
        (threshold - 0.174).abs() < 5e-4,
        "2/lambda_max = {threshold}"
    );

    // lr 0.1 converges to the minimiser, lr 0.2 diverges.
    let start = vec![0.0; 9];
    let converged = iterate(&euler(gradient_flow(&composite), 0.1), &start, 3000);
    for i in 0..9 {
        assert!((converged[i] - minimiser[i]).abs() < 1e-9);
    }
    let diverged = iterate(&euler(gradient_flow(&composite), 0.2), &start, 500);
    let norm = diverged.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(norm > 1e6, "lr 0.2 should diverge, |x| = {norm}");
}
