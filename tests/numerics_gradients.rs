//! Reverse-mode gradients against central finite differences, per operation and on random
//! expression DAGs, plus the chain rule for compositions of random expressions.
//!
//! Tolerances (`check_gradient` compares `|g - fd| <= rtol * max(1, |fd|_inf)`), with
//! central differences of step `1e-6 * max(1, |x|)`: truncation error ~ h^2 |f'''| and
//! rounding ~ 1e-16 |f| / h ~ 1e-10, so
//! - smooth elementwise functions, transpose, products, reductions: `1e-7`;
//! - `/`, `^` and `log` (larger third derivatives near small arguments): `1e-6`;
//! - random DAGs (long compositions, values up to ~1e2): `1e-5`.

mod numerics_common;

use catopt::numerics::{BinaryOp, ExprBuilder, NodeId, Reduction, Shape, UnaryOp};
use numerics_common::{build_program, check_gradient, gradient, Instr, Rng};
use proptest::prelude::*;

const SHAPES: [Shape; 3] = [Shape::Scalar, Shape::Vector(3), Shape::Matrix(2, 3)];

/// `dot(weights, node)` with fixed pseudo-random weights, so adjoints are not uniform.
fn weighted_sum(b: &mut ExprBuilder, node: NodeId, rng: &mut Rng) -> NodeId {
    let shape = b.shape(node);
    let weights = b.constant(shape, &rng.vec(shape.len(), -1.5, 1.5));
    b.dot(weights, node).unwrap()
}

/// Inputs away from the kinks of abs and relu: |x| in [0.2, 1.5], random sign.
fn away_from_zero(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let magnitude = rng.uniform(0.2, 1.5);
            if rng.next_f64() < 0.5 {
                -magnitude
            } else {
                magnitude
            }
        })
        .collect()
}

#[test]
fn every_unary_operation_matches_finite_differences() {
    let mut rng = Rng(0x5eed_1234);
    for op in UnaryOp::ALL {
        for shape in SHAPES {
            let mut b = ExprBuilder::new(shape.len());
            let x = b.input(0, shape);
            let y = b.unary(op, x);
            let f = weighted_sum(&mut b, y, &mut rng);
            let objective = b.compile(f).unwrap();
            let point = match op {
                UnaryOp::Log | UnaryOp::Sqrt => rng.vec(shape.len(), 0.3, 2.0),
                _ => away_from_zero(&mut rng, shape.len()),
            };
            let rtol = if op == UnaryOp::Log { 1e-6 } else { 1e-7 };
            check_gradient(&objective, &point, rtol)
                .unwrap_or_else(|e| panic!("{} on {shape}: {e}", op.name()));
        }
    }
}

#[test]
fn elementwise_binary_operations_broadcast_and_match_finite_differences() {
    let mut rng = Rng(0xabcdef);
    let pairs = [
        (Shape::Scalar, Shape::Scalar),
        (Shape::Scalar, Shape::Vector(3)),
        (Shape::Vector(3), Shape::Scalar),
        (Shape::Vector(3), Shape::Vector(3)),
        (Shape::Scalar, Shape::Matrix(2, 3)),
        (Shape::Matrix(2, 3), Shape::Scalar),
        (Shape::Vector(3), Shape::Matrix(2, 3)),
        (Shape::Matrix(2, 3), Shape::Vector(3)),
        (Shape::Matrix(2, 3), Shape::Matrix(2, 3)),
    ];
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
    ] {
        for (sa, sb) in pairs {
            let mut b = ExprBuilder::new(sa.len() + sb.len());
            let x = b.input(0, sa);
            let y = b.input(sa.len(), sb);
            let z = b.binary(op, x, y).unwrap();
            let f = weighted_sum(&mut b, z, &mut rng);
            let objective = b.compile(f).unwrap();
            let mut point = rng.vec(sa.len(), 0.5, 2.0);
            point.extend(match op {
                BinaryOp::Pow => rng.vec(sb.len(), -1.5, 1.5),
                _ => rng.vec(sb.len(), 0.5, 2.0),
            });
            let rtol = if matches!(op, BinaryOp::Div | BinaryOp::Pow) {
                1e-6
            } else {
                1e-7
            };
            check_gradient(&objective, &point, rtol)
                .unwrap_or_else(|e| panic!("{sa} {} {sb}: {e}", op.name()));
        }
    }
}

#[test]
fn constant_exponents_are_specialised_correctly() {
    let mut rng = Rng(77);
    for exponent in [2.0, 3.0, -1.0, 0.5, 1.7, 0.0, 1.0] {
        let mut b = ExprBuilder::new(3);
        let x = b.input(0, Shape::Vector(3));
        let c = b.scalar(exponent);
        let y = b.binary(BinaryOp::Pow, x, c).unwrap();
        let f = weighted_sum(&mut b, y, &mut rng);
        let objective = b.compile(f).unwrap();
        let point = rng.vec(3, 0.5, 2.0);
        check_gradient(&objective, &point, 1e-6).unwrap_or_else(|e| panic!("x^{exponent}: {e}"));
        // The value without weights: sum(x^c) must equal the plain powf sum.
        let mut b = ExprBuilder::new(3);
        let x = b.input(0, Shape::Vector(3));
        let c = b.scalar(exponent);
        let y = b.binary(BinaryOp::Pow, x, c).unwrap();
        let f = b.reduce(Reduction::Sum, y);
        let (value, _) = gradient(&b.compile(f).unwrap(), &point);
        let expected: f64 = point.iter().map(|p| p.powf(exponent)).sum();
        assert!(
            (value - expected).abs() <= 1e-14 * expected.abs().max(1.0),
            "x^{exponent}"
        );
    }
}

#[test]
fn matrix_products_in_every_numpy_case_match_finite_differences() {
    let mut rng = Rng(99);
    let cases = [
        (Shape::Vector(4), Shape::Vector(4)),
        (Shape::Vector(3), Shape::Matrix(3, 2)),
        (Shape::Matrix(2, 3), Shape::Vector(3)),
        (Shape::Matrix(2, 3), Shape::Matrix(3, 4)),
        // Large enough for the register-blocked kernel (with leftover rows and columns).
        (Shape::Matrix(9, 10), Shape::Matrix(10, 11)),
        (Shape::Vector(10), Shape::Matrix(10, 9)),
        (Shape::Matrix(12, 10), Shape::Vector(10)),
    ];
    for (sa, sb) in cases {
        for constant_side in [None, Some(0), Some(1)] {
            let n = sa.len() + sb.len();
            let mut b = ExprBuilder::new(n);
            let values = rng.vec(n, -1.0, 1.0);
            let x = match constant_side {
                Some(0) => b.constant(sa, &values[..sa.len()]),
                _ => b.input(0, sa),
            };
            let y = match constant_side {
                Some(1) => b.constant(sb, &values[sa.len()..]),
                _ => b.input(sa.len(), sb),
            };
            let z = b.binary(BinaryOp::MatMul, x, y).unwrap();
            let f = weighted_sum(&mut b, z, &mut rng);
            let objective = b.compile(f).unwrap();
            check_gradient(&objective, &values, 1e-7)
                .unwrap_or_else(|e| panic!("{sa} @ {sb} (constant {constant_side:?}): {e}"));
        }
    }
}

#[test]
fn transposed_products_match_finite_differences() {
    // x' @ A and A' @ x' @ x style expressions.
    let mut rng = Rng(5);
    let mut b = ExprBuilder::new(12 + 12);
    let x = b.input(0, Shape::Matrix(3, 4));
    let y = b.input(12, Shape::Matrix(3, 4));
    let xt = b.unary(UnaryOp::Transpose, x);
    let p = b.binary(BinaryOp::MatMul, xt, y).unwrap(); // 4 x 4
    let pt = b.unary(UnaryOp::Transpose, p);
    let q = b.binary(BinaryOp::MatMul, y, pt).unwrap(); // 3 x 4
    let f = weighted_sum(&mut b, q, &mut rng);
    let objective = b.compile(f).unwrap();
    check_gradient(&objective, &rng.vec(24, -1.0, 1.0), 1e-7).unwrap();
}

#[test]
fn reductions_dot_gather_and_index_match_finite_differences() {
    let mut rng = Rng(31337);
    for op in [
        Reduction::Sum,
        Reduction::Mean,
        Reduction::SumSq,
        Reduction::LogSumExp,
    ] {
        for shape in SHAPES {
            let mut b = ExprBuilder::new(shape.len());
            let x = b.input(0, shape);
            let s = b.binary(BinaryOp::Mul, x, x).unwrap();
            let r = b.reduce(op, s);
            let objective = b.compile(r).unwrap();
            check_gradient(&objective, &rng.vec(shape.len(), -1.5, 1.5), 1e-7)
                .unwrap_or_else(|e| panic!("{} of {shape}: {e}", op.name()));
        }
    }
    // dot, [a, b; c, d], indexing of vectors and matrices.
    let mut b = ExprBuilder::new(7);
    let v = b.input(0, Shape::Vector(3));
    let m = b.input(3, Shape::Matrix(2, 2));
    let v0 = b.index(v, &[0]).unwrap();
    let v2 = b.index(v, &[2]).unwrap();
    let m10 = b.index(m, &[1, 0]).unwrap();
    let sq = b.binary(BinaryOp::Mul, v2, m10).unwrap();
    let built = b.matrix(&[vec![v0, sq], vec![m10, v0]]).unwrap();
    let prod = b.binary(BinaryOp::MatMul, built, m).unwrap();
    let tanh = b.unary(UnaryOp::Tanh, prod);
    let inner = b.index(tanh, &[1, 1]).unwrap(); // index of a computed node
    let vec = b.vector(&[inner, v0, sq]).unwrap();
    let d = b.dot(vec, v).unwrap();
    let objective = b.compile(d).unwrap();
    check_gradient(&objective, &rng.vec(7, -1.0, 1.0), 1e-7).unwrap();
}

#[test]
fn logsumexp_is_stable_for_large_arguments() {
    let mut b = ExprBuilder::new(3);
    let x = b.input(0, Shape::Vector(3));
    let f = b.reduce(Reduction::LogSumExp, x);
    let objective = b.compile(f).unwrap();
    let (value, g) = gradient(&objective, &[1000.0, 1000.0, -1000.0]);
    assert!((value - (1000.0 + 2f64.ln())).abs() < 1e-10, "{value}");
    // exp(1000 - (1000 + ln 2)) carries the rounding of 1000 + ln 2 (ulp 1.1e-13).
    assert!((g[0] - 0.5).abs() < 1e-12 && (g[1] - 0.5).abs() < 1e-12 && g[2] == 0.0);
}

#[test]
fn sigmoid_and_softplus_gradients_do_not_overflow() {
    for op in [UnaryOp::Sigmoid, UnaryOp::Softplus] {
        let mut b = ExprBuilder::new(2);
        let x = b.input(0, Shape::Vector(2));
        let y = b.unary(op, x);
        let f = b.reduce(Reduction::Sum, y);
        let objective = b.compile(f).unwrap();
        let (value, g) = gradient(&objective, &[800.0, -800.0]);
        assert!(value.is_finite(), "{}: {value}", op.name());
        assert!(g.iter().all(|v| v.is_finite()), "{}: {g:?}", op.name());
    }
}

#[test]
fn data_only_subexpressions_are_folded() {
    // f(w) = sum((X' @ X) @ w) with data X: X' @ X is computed at compile time.
    let mut rng = Rng(8);
    let data = rng.vec(12, -1.0, 1.0);
    let mut b = ExprBuilder::new(3);
    let x = b.constant(Shape::Matrix(4, 3), &data);
    let xt = b.unary(UnaryOp::Transpose, x);
    let gram = b.binary(BinaryOp::MatMul, xt, x).unwrap();
    let w = b.input(0, Shape::Vector(3));
    let gw = b.binary(BinaryOp::MatMul, gram, w).unwrap();
    let f = b.reduce(Reduction::Sum, gw);
    let objective = b.compile(f).unwrap();
    assert_eq!(
        objective.num_steps(),
        2,
        "only the product with w and the sum remain"
    );
    let point = [0.3, -0.2, 0.9];
    let (value, g) = gradient(&objective, &point);
    let mut expected_value = 0.0;
    let mut expected_grad = [0.0; 3];
    for i in 0..3 {
        for j in 0..3 {
            let gij: f64 = (0..4).map(|r| data[r * 3 + i] * data[r * 3 + j]).sum();
            expected_value += gij * point[j];
            expected_grad[j] += gij;
        }
    }
    assert!((value - expected_value).abs() < 1e-12);
    for j in 0..3 {
        assert!((g[j] - expected_grad[j]).abs() < 1e-12);
    }
    check_gradient(&objective, &point, 1e-7).unwrap();
}

#[test]
fn shared_subexpressions_are_computed_once() {
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Vector(2));
    let t = b.unary(UnaryOp::Tanh, x);
    let u = b.binary(BinaryOp::Mul, t, t).unwrap();
    let v = b.binary(BinaryOp::Add, u, t).unwrap();
    let f = b.reduce(Reduction::Sum, v);
    let objective = b.compile(f).unwrap();
    assert_eq!(objective.num_steps(), 4, "tanh, *, +, sum: tanh once");
    check_gradient(&objective, &[0.3, -0.7], 1e-7).unwrap();
}

fn instr_strategy() -> impl Strategy<Value = Instr> {
    prop_oneof![
        3 => (0..9usize, 0..64usize).prop_map(|(o, a)| Instr::Unary(o, a)),
        4 => (0..6usize, 0..64usize, 0..64usize).prop_map(|(o, a, c)| Instr::Binary(o, a, c)),
        1 => (0..4usize, 0..64usize).prop_map(|(o, a)| Instr::Reduce(o, a)),
        1 => (0..64usize, 0..64usize).prop_map(|(a, c)| Instr::Dot(a, c)),
        1 => (0..3usize, -1.0..1.0f64).prop_map(|(s, v)| Instr::Constant(s, v)),
        1 => (0..64usize, 0..64usize).prop_map(|(a, i)| Instr::Index(a, i)),
    ]
}

/// The leaves of a random program: inputs of the shapes in `leaf_shapes`.
fn inputs(b: &mut ExprBuilder, leaf_shapes: &[Shape]) -> Vec<NodeId> {
    let mut offset = 0;
    leaf_shapes
        .iter()
        .map(|&s| {
            let node = b.input(offset, s);
            offset += s.len();
            node
        })
        .collect()
}

fn shape_strategy() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Scalar),
        (1..4usize).prop_map(Shape::Vector),
        (1..4usize, 1..4usize).prop_map(|(r, c)| Shape::Matrix(r, c)),
        Just(Shape::Vector(3)),
        Just(Shape::Matrix(2, 3)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// On random expression DAGs of random shapes, the gradient equals central finite
    /// differences.
    #[test]
    fn random_dag_gradients_match_finite_differences(
        leaf_shapes in prop::collection::vec(shape_strategy(), 1..4),
        program in prop::collection::vec(instr_strategy(), 1..12),
        seed in 1u64..u64::MAX,
    ) {
        let n: usize = leaf_shapes.iter().map(Shape::len).sum();
        let mut b = ExprBuilder::new(n);
        let leaves = inputs(&mut b, &leaf_shapes);
        let out = build_program(&mut b, &leaves, &program);
        let objective = b.compile(out).unwrap();
        let mut rng = Rng(seed);
        let point = rng.vec(n, -1.0, 1.0);
        let (value, _) = gradient(&objective, &point);
        prop_assume!(value.is_finite() && value.abs() < 1e6);
        if let Err(e) = check_gradient(&objective, &point, 1e-5) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Chain rule: for random g: R^n -> R^m (m random scalar expressions) and random
    /// f: R^m -> R, the gradient of the composite h = f o g equals J_g(x)^T grad f(g(x)),
    /// each factor from its own compiled objective.
    #[test]
    fn chain_rule_holds_for_random_compositions(
        n in 1..4usize,
        inner in prop::collection::vec(prop::collection::vec(instr_strategy(), 1..6), 1..4),
        outer in prop::collection::vec(instr_strategy(), 1..8),
        seed in 1u64..u64::MAX,
    ) {
        let m = inner.len();
        let mut rng = Rng(seed);
        let x = rng.vec(n, -1.0, 1.0);
        let scalar_inputs = |b: &mut ExprBuilder, count: usize| -> Vec<NodeId> {
            (0..count).map(|i| b.input(i, Shape::Scalar)).collect()
        };

        // The composite, built in one expression (g's outputs feed f through a vector).
        let mut b = ExprBuilder::new(n);
        let xs = scalar_inputs(&mut b, n);
        let gs: Vec<NodeId> = inner.iter().map(|p| build_program(&mut b, &xs, p)).collect();
        let gv = b.vector(&gs).unwrap();
        let f_leaves: Vec<NodeId> = (0..m).map(|j| b.index(gv, &[j]).unwrap()).collect();
        let h = build_program(&mut b, &f_leaves, &outer);
        let composite = b.compile(h).unwrap();
        let (h_value, h_grad) = gradient(&composite, &x);

        // The Jacobian of g, row by row, and g(x).
        let mut g_values = vec![0.0; m];
        let mut jacobian = vec![vec![0.0; n]; m];
        for (j, program) in inner.iter().enumerate() {
            let mut b = ExprBuilder::new(n);
            let xs = scalar_inputs(&mut b, n);
            let out = build_program(&mut b, &xs, program);
            let (value, row) = gradient(&b.compile(out).unwrap(), &x);
            g_values[j] = value;
            jacobian[j] = row;
        }
        // grad f at g(x).
        let mut b = ExprBuilder::new(m);
        let ys = scalar_inputs(&mut b, m);
        let out = build_program(&mut b, &ys, &outer);
        let (f_value, f_grad) = gradient(&b.compile(out).unwrap(), &g_values);
        prop_assume!(h_value.is_finite() && h_value.abs() < 1e6);

        let scale = 1.0f64.max(h_value.abs());
        prop_assert!((h_value - f_value).abs() <= 1e-12 * scale, "{} vs {}", h_value, f_value);
        let grad_scale = h_grad.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        for i in 0..n {
            let chained: f64 = (0..m).map(|j| jacobian[j][i] * f_grad[j]).sum();
            prop_assert!(
                (h_grad[i] - chained).abs() <= 1e-10 * grad_scale,
                "component {}: composite {} vs chained {}", i, h_grad[i], chained
            );
        }
    }
}

#[test]
fn products_fused_with_a_bias_match_finite_differences() {
    // A @ W + bias in both orders, for a row, scalar and full bias, with the product
    // read once (fused) and read twice (not fused).
    let mut rng = Rng(4242);
    for bias_shape in [Shape::Vector(9), Shape::Scalar, Shape::Matrix(10, 9)] {
        for bias_first in [false, true] {
            for reuse_product in [false, true] {
                let (a_len, w_len) = (10 * 8, 8 * 9);
                let n = a_len + w_len + bias_shape.len();
                let mut b = ExprBuilder::new(n);
                let a = b.input(0, Shape::Matrix(10, 8));
                let w = b.input(a_len, Shape::Matrix(8, 9));
                let bias = b.input(a_len + w_len, bias_shape);
                let p = b.binary(BinaryOp::MatMul, a, w).unwrap();
                let z = if bias_first {
                    b.binary(BinaryOp::Add, bias, p).unwrap()
                } else {
                    b.binary(BinaryOp::Add, p, bias).unwrap()
                };
                let h = b.unary(UnaryOp::Tanh, z);
                let mut f = weighted_sum(&mut b, h, &mut rng);
                if reuse_product {
                    let extra = weighted_sum(&mut b, p, &mut rng);
                    f = b.binary(BinaryOp::Add, f, extra).unwrap();
                }
                let objective = b.compile(f).unwrap();
                let expected_steps = if reuse_product { 6 } else { 3 };
                assert_eq!(
                    objective.num_steps(),
                    expected_steps,
                    "{bias_shape} {reuse_product}"
                );
                check_gradient(&objective, &rng.vec(n, -1.0, 1.0), 1e-7)
                    .unwrap_or_else(|e| panic!("bias {bias_shape} first {bias_first}: {e}"));
            }
        }
    }
}

#[test]
fn degenerate_outputs_have_exact_gradients() {
    // The objective is an input itself, an entry of an input, a transposed scalar, or
    // data only: no steps at all, and the gradient is exact.
    let mut b = ExprBuilder::new(3);
    let x = b.input(1, Shape::Scalar);
    let objective = b.compile(x).unwrap();
    assert_eq!(objective.num_steps(), 0);
    assert_eq!(
        gradient(&objective, &[5.0, 6.0, 7.0]),
        (6.0, vec![0.0, 1.0, 0.0])
    );

    let mut b = ExprBuilder::new(3);
    let v = b.input(0, Shape::Vector(3));
    let v2 = b.index(v, &[2]).unwrap();
    let t = b.unary(UnaryOp::Transpose, v2);
    let objective = b.compile(t).unwrap();
    assert_eq!(
        gradient(&objective, &[5.0, 6.0, 7.0]),
        (7.0, vec![0.0, 0.0, 1.0])
    );

    let mut b = ExprBuilder::new(2);
    let data = b.constant(Shape::Vector(2), &[3.0, 4.0]);
    let norm = b.reduce(Reduction::SumSq, data);
    let objective = b.compile(norm).unwrap();
    assert_eq!(objective.num_steps(), 0);
    assert_eq!(gradient(&objective, &[1.0, 1.0]), (25.0, vec![0.0, 0.0]));

    // Degenerate outputs batch too.
    for objective in [
        {
            let mut b = ExprBuilder::new(2);
            let x = b.input(1, Shape::Scalar);
            b.compile(x).unwrap()
        },
        {
            let mut b = ExprBuilder::new(2);
            let c = b.scalar(2.5);
            b.compile(c).unwrap()
        },
    ] {
        assert!(objective.is_batchable());
        let mut ws = objective.batch_workspace(3);
        let (mut values, mut g) = ([0.0; 3], [9.0; 6]);
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        objective.batch_value_and_gradient(&mut ws, 3, &x, &mut values, &mut g);
        let mut single = objective.workspace();
        for k in 0..3 {
            let mut gk = [0.0; 2];
            let v = objective.value_and_gradient(&mut single, &[x[k], x[3 + k]], &mut gk);
            assert_eq!(v, values[k]);
            assert_eq!(gk, [g[k], g[3 + k]]);
        }
    }
}

#[test]
fn one_input_used_through_overlapping_nodes_sums_its_gradient() {
    // x as a vector and x[0] as its own scalar input node over the same coordinates:
    // f = sum(x * x) + 3 * x[0] has gradient 2x + (3, 0).
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Vector(2));
    let x0 = b.input(0, Shape::Scalar);
    let sq = b.binary(BinaryOp::Mul, x, x).unwrap();
    let s = b.reduce(Reduction::Sum, sq);
    let three = b.scalar(3.0);
    let t = b.binary(BinaryOp::Mul, three, x0).unwrap();
    let f = b.binary(BinaryOp::Add, s, t).unwrap();
    let objective = b.compile(f).unwrap();
    let (value, g) = gradient(&objective, &[1.5, -2.0]);
    assert_eq!(value, 1.5 * 1.5 + 4.0 + 4.5);
    assert_eq!(g, vec![2.0 * 1.5 + 3.0, -4.0]);
}

#[test]
fn zeroth_powers_have_zero_derivative_even_at_zero() {
    // As in JAX: d/dx x^0 = 0 at x = 0, for a constant and for a computed exponent.
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Scalar);
    let y = b.input(1, Shape::Scalar);
    let zero = b.scalar(0.0);
    let constant_power = b.binary(BinaryOp::Pow, x, zero).unwrap();
    let y0 = b.binary(BinaryOp::Mul, y, zero).unwrap();
    let computed_power = b.binary(BinaryOp::Pow, x, y0).unwrap();
    let f = b
        .binary(BinaryOp::Add, constant_power, computed_power)
        .unwrap();
    let (value, g) = gradient(&b.compile(f).unwrap(), &[0.0, 1.0]);
    assert_eq!(value, 2.0);
    assert_eq!(g, vec![0.0, 0.0]);
}
