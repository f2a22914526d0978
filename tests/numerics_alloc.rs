//! After warm-up, evaluating value + gradient allocates nothing: proven with a counting
//! global allocator (counting only on the thread under test).

mod numerics_common;

use catopt::numerics::{BinaryOp, CompiledObjective, ExprBuilder, Reduction, Shape, UnaryOp};
use numerics_common::{w1, Rng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while running `f`.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    // Guards against a vacuous test: an allocation must be seen.
    let n = allocations_during(|| {
        let v: Vec<f64> = vec![1.0; 100];
        std::hint::black_box(v);
    });
    assert!(n >= 1);
}

fn assert_no_allocation_after_warm_up(objective: &CompiledObjective, x: &[f64]) {
    let mut ws = objective.workspace();
    let mut gradient = vec![0.0; x.len()];
    objective.value_and_gradient(&mut ws, x, &mut gradient); // warm-up
    let n = allocations_during(|| {
        for _ in 0..3 {
            std::hint::black_box(objective.value_and_gradient(&mut ws, x, &mut gradient));
            std::hint::black_box(objective.value(&mut ws, x));
        }
    });
    assert_eq!(n, 0, "value_and_gradient allocated {n} times after warm-up");
}

#[test]
fn w1_value_and_gradient_allocates_nothing() {
    let tasks = w1::load_tasks();
    let objective = w1::build_task(&tasks[0]);
    assert_no_allocation_after_warm_up(&objective, &w1::initial_point());
}

#[test]
fn every_operation_kind_allocates_nothing() {
    // Products of every NumPy case (packed and small), transposes, broadcasting,
    // reductions, dot, gather and index, with active operands on both sides.
    let mut rng = Rng(11);
    let mut b = ExprBuilder::new(16 * 12 + 12 * 10 + 10 + 3);
    let a = b.input(0, Shape::Matrix(16, 12));
    let m = b.input(192, Shape::Matrix(12, 10));
    let v = b.input(312, Shape::Vector(10));
    let s = b.input(322, Shape::Vector(3));
    let am = b.binary(BinaryOp::MatMul, a, m).unwrap(); // 16 x 10
    let amv = b.binary(BinaryOp::Add, am, v).unwrap();
    let t = b.unary(UnaryOp::Tanh, amv);
    let tt = b.unary(UnaryOp::Transpose, t); // 10 x 16
    let p = b.binary(BinaryOp::MatMul, tt, t).unwrap(); // 10 x 10
    let pv = b.binary(BinaryOp::MatMul, p, v).unwrap(); // 10
    let vp = b.binary(BinaryOp::MatMul, v, p).unwrap(); // 10
    let d = b.dot(pv, vp).unwrap();
    let s0 = b.index(s, &[0]).unwrap();
    let s2 = b.index(s, &[2]).unwrap();
    let built = b.vector(&[s0, d, s2]).unwrap();
    let e = b.unary(UnaryOp::Sigmoid, built);
    let e1 = b.index(e, &[1]).unwrap();
    let l = b.reduce(Reduction::LogSumExp, e);
    let q = b.binary(BinaryOp::Pow, l, e1).unwrap();
    let mean = b.reduce(Reduction::Mean, p);
    let f = b.binary(BinaryOp::Div, q, mean).unwrap();
    let objective = b.compile(f).unwrap();
    let x = rng.vec(objective.num_inputs(), 0.1, 1.0);
    assert_no_allocation_after_warm_up(&objective, &x);
}

#[test]
fn row_wise_operations_and_max_min_allocate_nothing() {
    // Softmax cross-entropy over rows, row-wise sum and mean, softmax, max and min (with
    // broadcasting), on active operands.
    let mut rng = Rng(12);
    let mut b = ExprBuilder::new(20 * 8 + 8 * 5 + 5);
    let x = b.input(0, Shape::Matrix(20, 8));
    let w = b.input(160, Shape::Matrix(8, 5));
    let bias = b.input(200, Shape::Vector(5));
    let z = b.binary(BinaryOp::MatMul, x, w).unwrap();
    let z = b.binary(BinaryOp::Add, z, bias).unwrap(); // 20 x 5
    let lse = b.reduce_rows(Reduction::LogSumExp, z).unwrap(); // 20
    let p = b.softmax_rows(z).unwrap();
    let hi = b.binary(BinaryOp::Max, p, bias).unwrap();
    let zero = b.scalar(0.25);
    let lo = b.binary(BinaryOp::Min, hi, zero).unwrap();
    let rs = b.reduce_rows(Reduction::Sum, lo).unwrap();
    let rm = b.reduce_rows(Reduction::Mean, z).unwrap();
    let d = b.binary(BinaryOp::Sub, lse, rm).unwrap();
    let e = b.binary(BinaryOp::Mul, d, rs).unwrap();
    let f = b.reduce(Reduction::Mean, e);
    let objective = b.compile(f).unwrap();
    let point = rng.vec(objective.num_inputs(), -1.0, 1.0);
    assert_no_allocation_after_warm_up(&objective, &point);
}

#[test]
fn the_batched_kernel_allocates_nothing() {
    let mut b = ExprBuilder::new(2);
    let x0 = b.input(0, Shape::Scalar);
    let x1 = b.input(1, Shape::Scalar);
    let two = b.scalar(2.0);
    let sq = b.binary(BinaryOp::Pow, x0, two).unwrap();
    let d = b.binary(BinaryOp::Sub, x1, sq).unwrap();
    let e = b.unary(UnaryOp::Exp, d);
    let f = b.binary(BinaryOp::Mul, e, x0).unwrap();
    let objective = b.compile(f).unwrap();
    let batch = 1000;
    let mut ws = objective.batch_workspace(batch);
    let x = Rng(4).vec(2 * batch, -1.0, 1.0);
    let mut values = vec![0.0; batch];
    let mut gradient = vec![0.0; 2 * batch];
    let n = allocations_during(|| {
        for _ in 0..3 {
            objective.batch_value_and_gradient(&mut ws, batch, &x, &mut values, &mut gradient);
        }
    });
    assert_eq!(n, 0, "the batched kernel allocated {n} times");
}
