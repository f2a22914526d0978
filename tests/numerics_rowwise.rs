//! The row-wise reductions (`sum(X, 1)`, `mean(X, 1)`, `logsumexp(X, 1)`), the row-wise
//! `softmax(X, 1)` and elementwise `max`/`min`: gradients against central finite
//! differences on random shapes, stability for large entries against a plain f64
//! reference, and the documented tie and NaN rules of `max`/`min`.

mod numerics_common;

use catopt::numerics::{BinaryOp, CompiledObjective, ExprBuilder, NodeId, Reduction, Shape};
use numerics_common::{check_gradient, gradient, Rng};
use proptest::prelude::*;

/// `dot(weights, node)` with fixed pseudo-random weights, so adjoints are not uniform.
fn weighted_sum(b: &mut ExprBuilder, node: NodeId, weights: &[f64]) -> NodeId {
    let shape = b.shape(node);
    let w = b.constant(shape, &weights[..shape.len()]);
    b.dot(w, node).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum RowOp {
    Reduce(Reduction),
    Softmax,
}

const ROW_OPS: [RowOp; 4] = [
    RowOp::Reduce(Reduction::Sum),
    RowOp::Reduce(Reduction::Mean),
    RowOp::Reduce(Reduction::LogSumExp),
    RowOp::Softmax,
];

/// `dot(weights, op(X))` over an `m x n` input.
fn row_objective(op: RowOp, m: usize, n: usize, weights: &[f64]) -> CompiledObjective {
    let mut b = ExprBuilder::new(m * n);
    let x = b.input(0, Shape::Matrix(m, n));
    let y = match op {
        RowOp::Reduce(r) => b.reduce_rows(r, x).unwrap(),
        RowOp::Softmax => b.softmax_rows(x).unwrap(),
    };
    assert_eq!(
        b.shape(y),
        match op {
            RowOp::Reduce(_) => Shape::Vector(m),
            RowOp::Softmax => Shape::Matrix(m, n),
        }
    );
    let f = weighted_sum(&mut b, y, weights);
    b.compile(f).unwrap()
}

/// Straightforward f64 references, one row at a time (shifted by the row maximum).
fn reference_logsumexp(row: &[f64]) -> f64 {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + row.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

fn reference_softmax(row: &[f64]) -> Vec<f64> {
    let l = reference_logsumexp(row);
    row.iter().map(|&x| (x - l).exp()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every row-wise function, on random shapes (including one row and one column),
    /// matches central finite differences.
    #[test]
    fn row_wise_gradients_match_finite_differences(
        op in 0..4usize, m in 1..6usize, n in 1..7usize, seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed | 1);
        let weights = rng.vec(m * n, -1.5, 1.5);
        let objective = row_objective(ROW_OPS[op], m, n, &weights);
        let point = rng.vec(m * n, -3.0, 3.0);
        check_gradient(&objective, &point, 1e-7)
            .map_err(|e| TestCaseError::fail(format!("{:?} on {m} x {n}: {e}", ROW_OPS[op])))?;
    }

    /// `max` and `min` broadcast like `+` and match finite differences away from ties.
    #[test]
    fn max_and_min_gradients_match_finite_differences(
        pair in 0..5usize, is_max in any::<bool>(), seed in any::<u64>(),
    ) {
        let pairs = [
            (Shape::Scalar, Shape::Matrix(2, 3)),
            (Shape::Vector(3), Shape::Scalar),
            (Shape::Vector(4), Shape::Vector(4)),
            (Shape::Matrix(3, 2), Shape::Vector(2)),
            (Shape::Matrix(2, 5), Shape::Matrix(2, 5)),
        ];
        let (sa, sb) = pairs[pair];
        let op = if is_max { BinaryOp::Max } else { BinaryOp::Min };
        let mut rng = Rng(seed | 1);
        let mut b = ExprBuilder::new(sa.len() + sb.len());
        let x = b.input(0, sa);
        let y = b.input(sa.len(), sb);
        let z = b.binary(op, x, y).unwrap();
        let weights = rng.vec(b.shape(z).len(), -1.5, 1.5);
        let f = weighted_sum(&mut b, z, &weights);
        let objective = b.compile(f).unwrap();
        // Entries on a grid of step 0.5, shifted apart: no two within 0.05 (no tie, no kink
        // inside the finite-difference step).
        let point: Vec<f64> = (0..sa.len() + sb.len())
            .map(|i| (rng.uniform(-4.0, 4.0) * 2.0).round() / 2.0 + 0.1 * (i % 2) as f64 + 0.01 * i as f64)
            .collect();
        check_gradient(&objective, &point, 1e-7)
            .map_err(|e| TestCaseError::fail(format!("{} of {sa} and {sb}: {e}", op.name())))?;
    }
}

/// Entries around 1000 (and -1000) overflow a naive `log(sum(exp(x)))`: the values and
/// gradients stay finite and match the f64 reference.
#[test]
fn logsumexp_and_softmax_by_rows_are_stable_for_large_entries() {
    let mut rng = Rng(0x1000);
    for (m, n) in [(1, 1), (3, 4), (5, 10), (2, 7)] {
        let mut point = rng.vec(m * n, 995.0, 1005.0);
        if m > 1 {
            // A row of very negative entries: exp underflows without the shift.
            for v in &mut point[n..2 * n] {
                *v -= 2000.0;
            }
        }
        let rows: Vec<&[f64]> = point.chunks(n).collect();
        let weights = rng.vec(m * n, -1.5, 1.5);

        let objective = row_objective(RowOp::Reduce(Reduction::LogSumExp), m, n, &weights);
        let (value, g) = gradient(&objective, &point);
        let expected: f64 = rows
            .iter()
            .zip(&weights)
            .map(|(row, w)| w * reference_logsumexp(row))
            .sum();
        assert!(
            value.is_finite() && g.iter().all(|v| v.is_finite()),
            "{value} {g:?}"
        );
        assert!(
            (value - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{value} vs {expected}"
        );
        for (i, row) in rows.iter().enumerate() {
            // The gradient of row i is its softmax times the incoming adjoint.
            for (j, s) in reference_softmax(row).into_iter().enumerate() {
                let want = weights[i] * s;
                assert!(
                    (g[i * n + j] - want).abs() <= 1e-12,
                    "{m}x{n} [{i},{j}]: {} vs {want}",
                    g[i * n + j]
                );
            }
        }

        let objective = row_objective(RowOp::Softmax, m, n, &weights);
        let (value, g) = gradient(&objective, &point);
        let soft: Vec<f64> = rows.iter().flat_map(|row| reference_softmax(row)).collect();
        let expected: f64 = soft.iter().zip(&weights).map(|(s, w)| s * w).sum();
        assert!(
            value.is_finite() && g.iter().all(|v| v.is_finite()),
            "{value} {g:?}"
        );
        assert!((value - expected).abs() <= 1e-12, "{value} vs {expected}");
        for i in 0..m {
            let (s, w) = (&soft[i * n..(i + 1) * n], &weights[i * n..(i + 1) * n]);
            let inner: f64 = s.iter().zip(w).map(|(a, b)| a * b).sum();
            for j in 0..n {
                let want = s[j] * (w[j] - inner);
                assert!(
                    (g[i * n + j] - want).abs() <= 1e-12,
                    "{m}x{n} [{i},{j}]: {} vs {want}",
                    g[i * n + j]
                );
            }
        }
        // Finite differences agree too (the step is 1e-3 at these magnitudes).
        check_gradient(&objective, &point, 1e-6).unwrap();
    }
}

/// Each row of a row-wise reduction equals the one-argument reduction of that row, bit for
/// bit.
#[test]
fn each_row_reduces_like_the_one_argument_form() {
    let mut rng = Rng(42);
    let (m, n) = (4, 6);
    let point = rng.vec(m * n, -3.0, 3.0);
    for op in [Reduction::Sum, Reduction::Mean, Reduction::LogSumExp] {
        for i in 0..m {
            let mut weights = vec![0.0; m];
            weights[i] = 1.0;
            let rowwise = row_objective(RowOp::Reduce(op), m, n, &weights);
            let mut b = ExprBuilder::new(n);
            let x = b.input(0, Shape::Vector(n));
            let f = b.reduce(op, x);
            let whole = b.compile(f).unwrap();
            let row = &point[i * n..(i + 1) * n];
            let mut ws = whole.workspace();
            let single = whole.value(&mut ws, row);
            let mut ws = rowwise.workspace();
            // dot(e_i, v) = 0 * ... + 1 * v_i + ...: exact for finite v.
            assert_eq!(rowwise.value(&mut ws, &point), single, "{op:?} row {i}");
        }
    }
}

#[test]
fn max_and_min_split_ties_and_propagate_nan() {
    for (op, a, b, value, ga, gb) in [
        (BinaryOp::Max, 2.0, 1.0, 2.0, 1.0, 0.0),
        (BinaryOp::Max, 1.0, 2.0, 2.0, 0.0, 1.0),
        (BinaryOp::Max, 1.5, 1.5, 1.5, 0.5, 0.5),
        (BinaryOp::Min, 2.0, 1.0, 1.0, 0.0, 1.0),
        (BinaryOp::Min, 1.0, 2.0, 1.0, 1.0, 0.0),
        (BinaryOp::Min, -1.5, -1.5, -1.5, 0.5, 0.5),
    ] {
        let mut builder = ExprBuilder::new(2);
        let x = builder.input(0, Shape::Scalar);
        let y = builder.input(1, Shape::Scalar);
        let z = builder.binary(op, x, y).unwrap();
        let objective = builder.compile(z).unwrap();
        let (v, g) = gradient(&objective, &[a, b]);
        assert_eq!((v, g[0], g[1]), (value, ga, gb), "{}({a}, {b})", op.name());
        for point in [[f64::NAN, b], [a, f64::NAN]] {
            let (v, _) = gradient(&objective, &point);
            assert!(v.is_nan(), "{}({point:?}) = {v}", op.name());
        }
    }
    // max(x, x): the two halves add up to the derivative of x.
    let mut builder = ExprBuilder::new(3);
    let x = builder.input(0, Shape::Vector(3));
    let z = builder.binary(BinaryOp::Max, x, x).unwrap();
    let f = builder.reduce(Reduction::Sum, z);
    let objective = builder.compile(f).unwrap();
    assert_eq!(gradient(&objective, &[1.0, -2.0, 3.0]).1, vec![1.0; 3]);
}

#[test]
fn row_wise_forms_reject_vectors_and_scalars() {
    let mut b = ExprBuilder::new(4);
    let v = b.input(0, Shape::Vector(3));
    let s = b.input(3, Shape::Scalar);
    for node in [v, s] {
        assert!(b.reduce_rows(Reduction::Sum, node).is_err());
        assert!(b.softmax_rows(node).is_err());
    }
    let m = b.input(0, Shape::Matrix(2, 2));
    assert!(b.reduce_rows(Reduction::SumSq, m).is_err());
}
