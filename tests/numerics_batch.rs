//! The batched kernel gives bit-identical values and gradients to the single-box plan, and
//! every gradient is bit-for-bit deterministic.

mod numerics_common;

use catopt::numerics::{CompiledObjective, ExprBuilder, NodeId, Shape};
use numerics_common::baselines::rosenbrock_box;
use numerics_common::{build_program, Instr, Rng};
use proptest::prelude::*;

/// Compares the batched kernel with one `value_and_gradient` per box, bitwise.
fn assert_batch_matches_single(objective: &CompiledObjective, boxes: &[Vec<f64>]) {
    let n = objective.num_inputs();
    let batch = boxes.len();
    let mut x = vec![0.0; n * batch];
    for (k, point) in boxes.iter().enumerate() {
        for i in 0..n {
            x[i * batch + k] = point[i];
        }
    }
    let mut ws = objective.batch_workspace(batch + 3);
    let mut values = vec![0.0; batch];
    let mut gradient = vec![f64::NAN; n * batch];
    objective.batch_value_and_gradient(&mut ws, batch, &x, &mut values, &mut gradient);
    let mut single_ws = objective.workspace();
    let mut g = vec![0.0; n];
    for (k, point) in boxes.iter().enumerate() {
        let value = objective.value_and_gradient(&mut single_ws, point, &mut g);
        assert_eq!(
            value.to_bits(),
            values[k].to_bits(),
            "value of box {k}: {value} vs {}",
            values[k]
        );
        for i in 0..n {
            assert_eq!(
                g[i].to_bits(),
                gradient[i * batch + k].to_bits(),
                "gradient {i} of box {k}: {} vs {}",
                g[i],
                gradient[i * batch + k]
            );
        }
    }
}

#[test]
fn rosenbrock_batch_is_bit_identical_to_single_boxes() {
    let objective = rosenbrock_box();
    assert!(objective.is_batchable());
    let mut rng = Rng(2024);
    let boxes: Vec<Vec<f64>> = (0..37).map(|_| rng.vec(2, -2.0, 2.0)).collect();
    assert_batch_matches_single(&objective, &boxes);
    // And against the hand-derived formulas.
    let mut ws = objective.batch_workspace(1);
    let (mut values, mut gradient) = ([0.0], [0.0; 2]);
    objective.batch_value_and_gradient(&mut ws, 1, &[-1.2, 1.0], &mut values, &mut gradient);
    assert!((values[0] - 24.2).abs() < 1e-13);
    assert!((gradient[0] + 215.6).abs() < 1e-12 && (gradient[1] + 88.0).abs() < 1e-12);
}

#[test]
fn batch_workspaces_are_reusable_with_smaller_batches() {
    let objective = rosenbrock_box();
    let mut ws = objective.batch_workspace(8);
    let mut rng = Rng(3);
    for batch in [8, 3, 1, 8, 0] {
        let x = rng.vec(2 * batch, -1.0, 1.0);
        let mut values = vec![0.0; batch];
        let mut gradient = vec![0.0; 2 * batch];
        objective.batch_value_and_gradient(&mut ws, batch, &x, &mut values, &mut gradient);
        let mut single = objective.workspace();
        for k in 0..batch {
            let mut g = [0.0; 2];
            let v = objective.value_and_gradient(&mut single, &[x[k], x[batch + k]], &mut g);
            assert_eq!(v.to_bits(), values[k].to_bits());
            assert_eq!(g[0].to_bits(), gradient[k].to_bits());
            assert_eq!(g[1].to_bits(), gradient[batch + k].to_bits());
        }
    }
}

#[test]
fn objectives_with_vectors_are_not_batchable() {
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Vector(2));
    let f = b.dot(x, x).unwrap();
    assert!(!b.compile(f).unwrap().is_batchable());
}

#[test]
fn gradients_are_bit_for_bit_deterministic() {
    let tasks = numerics_common::w1::load_tasks();
    let objective = numerics_common::w1::build_task(&tasks[0]);
    let x = numerics_common::w1::initial_point();
    let mut first = vec![0.0; x.len()];
    let mut ws = objective.workspace();
    let v1 = objective.value_and_gradient(&mut ws, &x, &mut first);
    // Same workspace (dirty buffers), a fresh workspace, and a clone of the objective on
    // another thread must all agree bitwise.
    let mut again = vec![0.0; x.len()];
    let v2 = objective.value_and_gradient(&mut ws, &x, &mut again);
    let other = objective.clone();
    let xc = x.clone();
    let (v3, third) = std::thread::spawn(move || {
        let mut g = vec![0.0; xc.len()];
        let v = other.value_and_gradient(&mut other.workspace(), &xc, &mut g);
        (v, g)
    })
    .join()
    .unwrap();
    assert_eq!(v1.to_bits(), v2.to_bits());
    assert_eq!(v1.to_bits(), v3.to_bits());
    for i in 0..x.len() {
        assert_eq!(first[i].to_bits(), again[i].to_bits());
        assert_eq!(first[i].to_bits(), third[i].to_bits());
    }
}

/// Random programs over scalar leaves, with every constant a scalar: all-scalar DAGs.
fn scalar_program() -> impl Strategy<Value = Vec<Instr>> {
    let instr = prop_oneof![
        3 => (0..9usize, 0..64usize).prop_map(|(o, a)| Instr::Unary(o, a)),
        4 => (0..5usize, 0..64usize, 0..64usize).prop_map(|(o, a, c)| Instr::Binary(o, a, c)),
        1 => (0..4usize, 0..64usize).prop_map(|(o, a)| Instr::Reduce(o, a)),
        1 => (0..64usize, 0..64usize).prop_map(|(a, c)| Instr::Dot(a, c)),
        1 => (-1.0..1.0f64).prop_map(|v| Instr::Constant(0, v)),
    ];
    prop::collection::vec(instr, 1..14)
}

proptest! {
    #[test]
    fn random_scalar_dags_batch_bit_identically(
        n in 1..4usize,
        program in scalar_program(),
        seed in 1u64..u64::MAX,
    ) {
        let mut b = ExprBuilder::new(n);
        let leaves: Vec<NodeId> = (0..n).map(|i| b.input(i, Shape::Scalar)).collect();
        let out = build_program(&mut b, &leaves, &program);
        let objective = b.compile(out).unwrap();
        prop_assert!(objective.is_batchable());
        let mut rng = Rng(seed);
        let boxes: Vec<Vec<f64>> = (0..9).map(|_| rng.vec(n, -1.5, 1.5)).collect();
        assert_batch_matches_single(&objective, &boxes);
    }
}

#[test]
fn shared_tile_buffers_keep_every_adjoint_until_its_last_reader() {
    use catopt::numerics::{BinaryOp, UnaryOp};
    // (sin(a) + exp(cos(a)))^2 + b: sin(a) is read once, by the addition, so its adjoint
    // is the sum's; the reverse step of sin reads it after those of exp and cos, whose
    // adjoints must not take over its buffer in between.
    let mut builder = ExprBuilder::new(2);
    let a = builder.input(0, Shape::Scalar);
    let b = builder.input(1, Shape::Scalar);
    let sin = builder.unary(UnaryOp::Sin, a);
    let cos = builder.unary(UnaryOp::Cos, a);
    let exp = builder.unary(UnaryOp::Exp, cos);
    let sum = builder.binary(BinaryOp::Add, sin, exp).unwrap();
    let square = builder.binary(BinaryOp::Mul, sum, sum).unwrap();
    let f = builder.binary(BinaryOp::Add, square, b).unwrap();
    let objective = builder.compile(f).unwrap();
    let mut rng = Rng(5);
    let boxes: Vec<Vec<f64>> = (0..11).map(|_| rng.vec(2, -2.0, 2.0)).collect();
    assert_batch_matches_single(&objective, &boxes);
}

#[test]
fn large_batches_spanning_several_tiles_are_bit_identical() {
    let objective = rosenbrock_box();
    let mut rng = Rng(77);
    let boxes: Vec<Vec<f64>> = (0..700).map(|_| rng.vec(2, -2.0, 2.0)).collect();
    assert_batch_matches_single(&objective, &boxes);
}

#[test]
fn compiled_objectives_are_send_and_sync() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<CompiledObjective>();
    fn sendable<T: Send>() {}
    sendable::<catopt::numerics::Workspace>();
    sendable::<catopt::numerics::BatchWorkspace>();
}
