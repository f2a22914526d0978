//! Native box kernels give the interpreter's bits: values and gradients, both input
//! layouts, the value-only pass, odd and even box counts, per-box data, special values
//! (zeros of both signs, ties, infinities, NaN), on random scalar tapes over every scalar
//! operation and on the W2 (Rosenbrock chain) box.
//!
//! "The same bits" is every bit of every number, except that a NaN equals any NaN: which
//! NaN an operation of two NaNs returns (its sign and payload) depends on the order in which
//! a compiler puts the operands of a commutative operation, which IEEE 754 leaves open and
//! neither LLVM nor Cranelift fixes.

mod numerics_common;

use catopt::numerics::{
    BinaryOp, CompiledObjective, ExprBuilder, KernelChoice, KernelNote, NodeId, Reduction, Shape,
    UnaryOp, Unsupported,
};
use numerics_common::baselines::rosenbrock_box;
use numerics_common::Rng;
use proptest::prelude::*;

/// Whether this machine generates native code (the tests that need it say so when not).
fn native_available() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
}

/// The bits of `x`, one pattern for every NaN (see the module's documentation).
fn same_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// Runs both kernels of `objective` on `count` boxes (inputs read through offsets into a
/// state `z` when `chained`, copied entry-major otherwise) and compares every bit of the
/// values and gradients, and of the value-only pass.
fn assert_native_matches(objective: &CompiledObjective, count: usize, seed: u64, chained: bool) {
    let (native, note) = objective.with_kernels(KernelChoice::Native);
    if native_available() {
        assert!(
            matches!(note, KernelNote::Native { .. }),
            "no native code: {note}"
        );
        assert!(native.is_native());
    }
    let n = objective.num_inputs();
    let mut rng = Rng(seed);
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e300,
        -1e-300,
    ];
    let draw = |rng: &mut Rng| {
        if rng.next_f64() < 0.15 {
            special[(rng.next_f64() * special.len() as f64) as usize % special.len()]
        } else {
            rng.uniform(-2.5, 2.5)
        }
    };
    // The state and each input's offset into it (consecutive boxes read consecutive
    // coordinates), or the copied layout.
    let (x, offsets): (Vec<f64>, Option<Vec<usize>>) = if chained {
        let z: Vec<f64> = (0..count + n).map(|_| draw(&mut rng)).collect();
        (z, Some((0..n).collect()))
    } else {
        ((0..n * count).map(|_| draw(&mut rng)).collect(), None)
    };
    let raw_len = objective.raw_data_len();
    let mut data = vec![0.0; objective.data_len() * count];
    let mut vector = vec![0.0; objective.data_len()];
    for k in 0..count {
        let raw: Vec<f64> = (0..raw_len).map(|_| draw(&mut rng)).collect();
        objective.box_data(&raw, &mut vector);
        for (j, &v) in vector.iter().enumerate() {
            data[j * count + k] = v;
        }
    }
    let run = |objective: &CompiledObjective| {
        let mut ws = objective.batch_workspace(count.max(1));
        let mut values = vec![f64::NAN; count];
        let mut gradient = vec![f64::NAN; n * count];
        objective.batch_value_and_gradient_with(
            &mut ws,
            count,
            &x,
            offsets.as_deref(),
            &data,
            &mut values,
            &mut gradient,
        );
        let mut forward = vec![f64::NAN; count];
        objective.batch_value_with(&mut ws, count, &x, offsets.as_deref(), &data, &mut forward);
        (values, gradient, forward)
    };
    let bits = |v: &[f64]| v.iter().map(|&x| same_bits(x)).collect::<Vec<_>>();
    let (values, gradient, forward) = run(objective);
    let (native_values, native_gradient, native_forward) = run(&native);
    assert!(!objective.is_native());
    for k in 0..count {
        assert_eq!(
            same_bits(values[k]),
            same_bits(native_values[k]),
            "value of box {k}: interpreter {} native {}",
            values[k],
            native_values[k]
        );
        for i in 0..n {
            let (a, b) = (gradient[i * count + k], native_gradient[i * count + k]);
            assert_eq!(
                same_bits(a),
                same_bits(b),
                "gradient {i} of box {k}: interpreter {a} native {b}"
            );
        }
    }
    assert_eq!(bits(&forward), bits(&native_forward), "value-only pass");
    assert_eq!(bits(&forward), bits(&values), "value-only against full");
}

/// One step of a random scalar tape; operands index the nodes made so far (modulo).
#[derive(Clone, Debug)]
enum Op {
    Unary(usize, usize),
    Binary(usize, usize, usize),
    /// A power with a constant exponent (specialised: square, `powi`, `powf`).
    PowConst(usize, usize),
    Reduce(usize, usize),
    Dot(usize, usize),
    Constant(f64),
    /// A per-box data entry.
    Data,
}

const BINARY: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Max,
    BinaryOp::Min,
];
const EXPONENTS: [f64; 8] = [0.0, 1.0, 2.0, 3.0, -1.0, 0.5, 2.5, -2.0];
const REDUCTIONS: [Reduction; 4] = [
    Reduction::Sum,
    Reduction::Mean,
    Reduction::SumSq,
    Reduction::LogSumExp,
];

/// Builds the tape over `n` scalar inputs; the output is the last node plus the input sum
/// (so that every input is active or its gradient entry zeroed).
fn build(n: usize, tape: &[Op]) -> CompiledObjective {
    let mut b = ExprBuilder::new(n);
    let mut nodes: Vec<NodeId> = (0..n).map(|i| b.input(i, Shape::Scalar)).collect();
    for op in tape {
        let pick = |i: usize| nodes[i % nodes.len()];
        let node = match *op {
            Op::Unary(o, a) => b.unary(UnaryOp::ALL[o % UnaryOp::ALL.len()], pick(a)),
            Op::Binary(o, a, c) => b
                .binary(BINARY[o % BINARY.len()], pick(a), pick(c))
                .unwrap(),
            Op::PowConst(a, e) => {
                let e = b.scalar(EXPONENTS[e % EXPONENTS.len()]);
                b.binary(BinaryOp::Pow, pick(a), e).unwrap()
            }
            Op::Reduce(o, a) => b.reduce(REDUCTIONS[o % REDUCTIONS.len()], pick(a)),
            Op::Dot(a, c) => b.dot(pick(a), pick(c)).expect("scalars have a dot product"),
            Op::Constant(v) => b.scalar(v),
            Op::Data => b.data_input(Shape::Scalar),
        };
        nodes.push(node);
    }
    let last = *nodes.last().expect("at least one input");
    let mut sum = nodes[0];
    for &input in &nodes[1..n] {
        sum = b.binary(BinaryOp::Add, sum, input).unwrap();
    }
    let out = b.binary(BinaryOp::Mul, last, sum).unwrap();
    b.compile(out).unwrap()
}

fn tape() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..12usize, 0..64usize).prop_map(|(o, a)| Op::Unary(o, a)),
        5 => (0..7usize, 0..64usize, 0..64usize).prop_map(|(o, a, c)| Op::Binary(o, a, c)),
        2 => (0..64usize, 0..8usize).prop_map(|(a, e)| Op::PowConst(a, e)),
        1 => (0..4usize, 0..64usize).prop_map(|(o, a)| Op::Reduce(o, a)),
        1 => (0..64usize, 0..64usize).prop_map(|(a, c)| Op::Dot(a, c)),
        1 => (-2.0..2.0f64).prop_map(Op::Constant),
        1 => Just(Op::Data),
    ];
    prop::collection::vec(op, 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn random_scalar_tapes_run_natively_with_the_interpreters_bits(
        n in 1..4usize,
        tape in tape(),
        count in 0..23usize,
        chained: bool,
        seed in 1u64..u64::MAX,
    ) {
        let objective = build(n, &tape);
        prop_assert!(objective.is_batchable());
        assert_native_matches(&objective, count, seed, chained);
    }
}

#[test]
fn the_w2_box_runs_natively_with_the_interpreters_bits() {
    let objective = rosenbrock_box();
    for (count, chained) in [
        (0, true),
        (1, true),
        (2, false),
        (1001, true),
        (4096, false),
    ] {
        assert_native_matches(&objective, count, 7 + count as u64, chained);
    }
}

#[test]
fn every_operation_at_special_points_runs_natively_with_the_interpreters_bits() {
    // Each unary function, binary operation and constant power on its own, over many boxes
    // (so that the special values meet: ties for max/min, zeros for pow and abs).
    for o in 0..UnaryOp::ALL.len() {
        assert_native_matches(&build(1, &[Op::Unary(o, 0)]), 301, 11 + o as u64, true);
    }
    for o in 0..BINARY.len() {
        for (a, c) in [(0, 1), (0, 0), (1, 0)] {
            assert_native_matches(&build(2, &[Op::Binary(o, a, c)]), 301, 5, false);
        }
    }
    for e in 0..EXPONENTS.len() {
        assert_native_matches(&build(1, &[Op::PowConst(0, e)]), 301, 3, true);
    }
}

#[test]
fn objectives_the_generator_does_not_support_keep_the_interpreter_with_a_note() {
    // A vector objective has no batched kernel at all.
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Vector(2));
    let f = b.dot(x, x).unwrap();
    let vector = b.compile(f).unwrap();
    let (kept, note) = vector.with_kernels(KernelChoice::Native);
    assert_eq!(note, KernelNote::Fallback(Unsupported::NotScalar));
    assert!(!kept.is_native());
    assert!(note.to_string().contains("interpreted"), "{note}");
    // An objective that is one of its inputs computes nothing to compile.
    let mut b = ExprBuilder::new(1);
    let a = b.input(0, Shape::Scalar);
    let identity = b.compile(a).unwrap();
    let (kept, note) = identity.with_kernels(KernelChoice::Native);
    assert_eq!(note, KernelNote::Fallback(Unsupported::OutputNotComputed));
    assert!(!kept.is_native());
    // Asking for the interpreter generates nothing.
    let (kept, note) = rosenbrock_box().with_kernels(KernelChoice::Interpreted);
    assert_eq!(note, KernelNote::Interpreted);
    assert!(!kept.is_native());
}

#[test]
fn native_objectives_are_shared_between_threads() {
    let (native, _) = rosenbrock_box().with_kernels(KernelChoice::Native);
    let count = 64;
    let z: Vec<f64> = (0..=count).map(|i| (i as f64 * 0.3).sin()).collect();
    let run = |objective: &CompiledObjective| {
        let mut ws = objective.batch_workspace(count);
        let (mut values, mut gradient) = (vec![0.0; count], vec![0.0; 2 * count]);
        objective.batch_value_and_gradient_at(
            &mut ws,
            count,
            &z,
            &[0, 1],
            &mut values,
            &mut gradient,
        );
        (values, gradient)
    };
    let here = run(&native);
    let clone = native.clone();
    let there = std::thread::scope(|s| s.spawn(|| run(&clone)).join().unwrap());
    drop(native); // the clone keeps the code alive
    assert_eq!(here, there);
    assert_eq!(run(&clone), here);
}

#[test]
fn objectives_too_long_for_bounded_code_generation_keep_the_interpreter() {
    // 3 steps per round: sin, a product, a sum; well over the generator's limit.
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Scalar);
    let y = b.input(1, Shape::Scalar);
    let mut acc = b.binary(BinaryOp::Mul, x, y).unwrap();
    for _ in 0..400 {
        let s = b.unary(UnaryOp::Sin, acc);
        let t = b.binary(BinaryOp::Mul, s, x).unwrap();
        acc = b.binary(BinaryOp::Add, t, acc).unwrap();
    }
    let objective = b.compile(acc).unwrap();
    let (kept, note) = objective.with_kernels(KernelChoice::Native);
    assert!(
        matches!(
            note,
            KernelNote::Fallback(Unsupported::TooLarge { steps: 1201, .. })
        ),
        "{note}"
    );
    assert!(!kept.is_native());
    // A long objective under the limit still gets native code, with the same bits.
    let mut b = ExprBuilder::new(2);
    let x = b.input(0, Shape::Scalar);
    let y = b.input(1, Shape::Scalar);
    let mut acc = b.binary(BinaryOp::Mul, x, y).unwrap();
    for _ in 0..150 {
        let s = b.unary(UnaryOp::Sin, acc);
        let t = b.binary(BinaryOp::Mul, s, x).unwrap();
        acc = b.binary(BinaryOp::Add, t, acc).unwrap();
    }
    assert_native_matches(&b.compile(acc).unwrap(), 37, 9, true);
}
