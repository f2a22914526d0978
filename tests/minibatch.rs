//! Minibatch runs (docs/language.md, "Stochastic gradients"): each step evaluates every
//! sampled box on the rows drawn for (seed, box, step), with the same bits on every backend,
//! for every method, and across a resumed run.

use catopt::check::program::{CompositeId, Program, SamplingOrder};
use catopt::laws::methods::{run_method, run_on_backend, LawBackend, MethodChoice};
use catopt::lower::{lower_text, lower_with, MinibatchSpec, Problem, SampledRows};
use catopt::run::backend::Backend;
use catopt::run::executor::Executor;
use catopt::run::plan::Plan;
use catopt::run::sampling::RowDraws;
use catopt::run::solver::{solve, NoObserver, SolverState, StopRule};
use std::sync::Arc;

/// A deterministic pseudo-random number in [-1, 1).
fn noise(i: usize) -> f64 {
    let z = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// `rows x cols` numbers as an inline data literal.
fn matrix(rows: usize, cols: usize, seed: usize) -> (String, Vec<f64>) {
    let values: Vec<f64> = (0..rows * cols)
        .map(|i| (noise(seed * 100_000 + i) * 1e3).round() / 1e3)
        .collect();
    let text = values
        .chunks(cols)
        .map(|row| {
            row.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("; ");
    (format!("[{text}]"), values)
}

/// Two least-squares boxes on one shared `x` (3 entries), each with its own sampled rows
/// (`A0`: 24 rows, `A1`: 18 rows), and the data as numbers.
struct TwoShards {
    text: String,
    a: [Vec<f64>; 2],
    y: [Vec<f64>; 2],
    rows: [usize; 2],
}

fn two_shards() -> TwoShards {
    let rows = [24, 18];
    let (a0, a0v) = matrix(rows[0], 3, 1);
    let (a1, a1v) = matrix(rows[1], 3, 2);
    let (y0, y0v) = matrix(1, rows[0], 3);
    let (y1, y1v) = matrix(1, rows[1], 4);
    let text = format!(
        "data A0 = {a0};\ndata A1 = {a1};\ndata y0 = {y0};\ndata y1 = {y1};\n\
         objective fit0(x: real[3]; A: real[24, 3] sample, y: real[24] sample) {{
             minimize mean((A @ x - y)^2) / 2;
         }}
         objective fit1(x: real[3]; A: real[18, 3] sample, y: real[18] sample) {{
             minimize mean((A @ x - y)^2) / 2;
         }}
         composite shards(x) {{ fit0(x; A0, y0); fit1(x; A1, y1); }}"
    );
    TwoShards {
        text,
        a: [a0v, a1v],
        y: [y0v, y1v],
        rows,
    }
}

fn minibatch_plan(program: &Program, spec: MinibatchSpec) -> (Problem, Plan) {
    let id = CompositeId(program.composites.len() as u32 - 1);
    let problem = lower_with(program, id, None, SampledRows::Minibatch(spec)).unwrap();
    let plan = Plan::for_problem(&problem).unwrap();
    (problem, plan)
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// gd on minibatches is, step after step, gd on the mean over the rows that `RowDraws`
/// gives each box for (seed, box, step), written out by hand.
#[test]
fn minibatch_gd_follows_the_drawn_rows() {
    let shards = two_shards();
    let (program, _) = lower_text(&shards.text, None).unwrap();
    for order in [SamplingOrder::Shuffle, SamplingOrder::Replace] {
        let spec = MinibatchSpec {
            batch: 5,
            order,
            seed: 11,
        };
        let (problem, plan) = minibatch_plan(&program, spec);
        assert_eq!(plan.minibatches().unwrap().sampled_box_count(), 2);
        let lr = 0.1;
        let steps = 60;
        let start = vec![0.3, -0.2, 0.1];
        let method = MethodChoice::by_name("gd", &[("lr", lr)]).unwrap();
        let mut executor = Executor::new(Arc::new(plan), Backend::serial());
        let ours = run_method(&mut executor, &method, &start, steps, false).unwrap();
        assert_eq!(ours.steps, steps);
        let mut x = start.clone();
        let mut rows = vec![0u32; 5];
        for k in 0..steps {
            let mut gradient = [0.0; 3];
            for b in 0..2 {
                RowDraws::new(shards.rows[b] as u64, 5, order, 11).draw(b as u64, k, &mut rows);
                for &r in &rows {
                    let a = &shards.a[b][r as usize * 3..r as usize * 3 + 3];
                    let residual =
                        a[0] * x[0] + a[1] * x[1] + a[2] * x[2] - shards.y[b][r as usize];
                    for j in 0..3 {
                        gradient[j] += residual * a[j] / 5.0;
                    }
                }
            }
            for j in 0..3 {
                x[j] -= lr * gradient[j];
            }
        }
        for (ours, reference) in ours.values.iter().zip(&x) {
            assert!(
                (ours - reference).abs() <= 1e-12 * reference.abs().max(1.0),
                "{order:?}: {ours} against {reference}"
            );
        }
        // Not the full-batch iterates: the draws matter.
        let full = lower_text(&shards.text, None).unwrap().1;
        let mut full_executor = Executor::new(
            Arc::new(Plan::for_problem(&full).unwrap()),
            Backend::serial(),
        );
        let full_run = run_method(&mut full_executor, &method, &start, steps, false).unwrap();
        assert!(full_run
            .values
            .iter()
            .zip(&x)
            .any(|(f, m)| (f - m).abs() > 1e-6));
        assert_eq!(problem.variable_count(), 3);
    }
}

/// A chain of boxes, each sampling its own slice of one data set, on enough boxes to split
/// over threads and ranks.
fn chain() -> String {
    let mut text = String::new();
    let mut calls = String::new();
    for k in 0..8 {
        let (a, _) = matrix(12, 2, 10 + k);
        let (y, _) = matrix(1, 12, 20 + k);
        text.push_str(&format!("data A{k} = {a};\ndata y{k} = {y};\n"));
        calls.push_str(&format!("link(x[{k}], x[{}]; A{k}, y{k}); ", k + 1));
    }
    format!(
        "{text}
         objective link(u: real[2], v: real[2]; A: real[12, 2] sample, y: real[12] sample) {{
             minimize mean((A @ u - y)^2) + 0.1 * sum((u - v)^2) + 0.01 * sum(u^4);
         }}
         composite chain() {{ {calls} }}"
    )
}

/// Every method gives the serial bits on threads and ranks with minibatches: each worker
/// draws its own boxes' rows, and the draws depend on (seed, box, step) alone. A line
/// search's trials (armijo, lbfgs) see their step's minibatch on every backend.
#[test]
fn every_backend_gives_the_serial_bits_with_minibatches() {
    let (program, _) = lower_text(&chain(), None).unwrap();
    for order in [SamplingOrder::Shuffle, SamplingOrder::Replace] {
        let spec = MinibatchSpec {
            batch: 4,
            order,
            seed: 3,
        };
        let (problem, plan) = minibatch_plan(&program, spec);
        let plan = Arc::new(plan);
        let start: Vec<f64> = (0..problem.variable_count())
            .map(|i| 0.5 * noise(i + 77))
            .collect();
        let methods = [
            MethodChoice::by_name("gd", &[("lr", 0.05)]).unwrap(),
            MethodChoice::by_name("nesterov", &[("lr", 0.05)]).unwrap(),
            MethodChoice::by_name("adam", &[("lr", 0.01)]).unwrap(),
            MethodChoice::by_name("armijo", &[]).unwrap(),
            MethodChoice::by_name("lbfgs", &[]).unwrap(),
        ];
        for method in &methods {
            let serial = run_on_backend(&plan, LawBackend::Serial, method, &start, 30).unwrap();
            assert_eq!(serial.steps, 30, "{}", method.describe());
            for backend in LawBackend::ALL {
                let other = run_on_backend(&plan, backend, method, &start, 30).unwrap();
                assert_eq!(
                    bits(&other.values),
                    bits(&serial.values),
                    "{} on {} ({order:?})",
                    method.describe(),
                    backend.describe()
                );
            }
        }
    }
}

/// The evaluations of one step read one minibatch (a line search's trial at the current
/// point gives the step's objective bit for bit); the next step reads another.
#[test]
fn a_steps_evaluations_share_its_minibatch() {
    let (program, _) = lower_text(&chain(), None).unwrap();
    let spec = MinibatchSpec {
        batch: 4,
        order: SamplingOrder::Shuffle,
        seed: 9,
    };
    let (problem, plan) = minibatch_plan(&program, spec);
    let point: Vec<f64> = (0..problem.variable_count())
        .map(|i| noise(i + 5))
        .collect();
    let mut executor = Executor::new(Arc::new(plan), Backend::serial());
    executor.set_sample_step(3);
    let at_three = executor.evaluate(&point).objective;
    assert_eq!(executor.data_version(), 3);
    assert_eq!(
        executor.evaluate_value(&point).to_bits(),
        at_three.to_bits()
    );
    executor.set_sample_step(4);
    assert_ne!(
        executor.evaluate_value(&point).to_bits(),
        at_three.to_bits()
    );
    executor.set_sample_step(3);
    assert_eq!(
        executor.evaluate(&point).objective.to_bits(),
        at_three.to_bits()
    );
}

/// A run resumed at step k draws what the uninterrupted run draws from step k on.
#[test]
fn a_resumed_run_continues_the_same_draws() {
    let (program, _) = lower_text(&chain(), None).unwrap();
    let spec = MinibatchSpec {
        batch: 5,
        order: SamplingOrder::Shuffle,
        seed: 4,
    };
    let (problem, plan) = minibatch_plan(&program, spec);
    let plan = Arc::new(plan);
    let start: Vec<f64> = (0..problem.variable_count())
        .map(|i| 0.2 * noise(i))
        .collect();
    let stop = |max_steps| StopRule {
        max_steps,
        tolerance: None,
        rel_tolerance: None,
    };
    let method = MethodChoice::by_name("gd", &[("lr", 0.05)]).unwrap();
    let build = || {
        catopt::run::method::build_with(&method.config, method.schedule, &method.context).unwrap()
    };
    let mut executor = Executor::new(plan.clone(), Backend::serial());
    let mut whole = SolverState::new(start.clone());
    solve(
        &mut executor,
        &mut *build(),
        stop(40),
        &mut whole,
        &mut NoObserver,
    )
    .unwrap();
    let mut first = SolverState::new(start);
    solve(
        &mut executor,
        &mut *build(),
        stop(17),
        &mut first,
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(first.step, 17);
    // A fresh executor and method, from the saved step and iterate (what --resume does).
    let mut resumed = SolverState::new(first.values.clone());
    resumed.step = first.step;
    let mut executor = Executor::new(plan, Backend::serial());
    solve(
        &mut executor,
        &mut *build(),
        stop(40),
        &mut resumed,
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(resumed.step, 40);
    assert_eq!(bits(&resumed.values), bits(&whole.values));
    // Restarting the draws from step 0 instead is another run.
    let mut restarted = SolverState::new(first.values.clone());
    solve(
        &mut executor,
        &mut *build(),
        stop(23),
        &mut restarted,
        &mut NoObserver,
    )
    .unwrap();
    assert_ne!(bits(&restarted.values), bits(&whole.values));
}

/// With `batch` equal to the rows, a `shuffle` minibatch is every row (in another order):
/// the full objective up to the rounding of the sum.
#[test]
fn a_batch_of_every_row_is_the_full_objective() {
    let shards = two_shards();
    let (program, full) = lower_text(&shards.text, None).unwrap();
    let id = full.composite_id;
    let point = vec![0.4, 0.1, -0.3];
    let full_value = Executor::new(
        Arc::new(Plan::for_problem(&full).unwrap()),
        Backend::serial(),
    )
    .evaluate(&point)
    .objective;
    // Box 1 has 18 rows: a batch of 18 draws all of them (box 0 draws 18 of its 24).
    let all_rows = lower_with(&program, id, None, SampledRows::All).unwrap();
    let all_value = Executor::new(
        Arc::new(Plan::for_problem(&all_rows).unwrap()),
        Backend::serial(),
    )
    .evaluate(&point)
    .objective;
    assert_eq!(all_value.to_bits(), full_value.to_bits());
    let spec = MinibatchSpec {
        batch: 18,
        order: SamplingOrder::Shuffle,
        seed: 1,
    };
    let (_, plan) = minibatch_plan(&program, spec);
    let mut executor = Executor::new(Arc::new(plan), Backend::serial());
    executor.record_box_values();
    let mini = executor.evaluate(&point);
    let mut full_executor = Executor::new(
        Arc::new(Plan::for_problem(&full).unwrap()),
        Backend::serial(),
    );
    full_executor.record_box_values();
    full_executor.evaluate(&point);
    let (ours, reference) = (
        executor.box_value(1).unwrap(),
        full_executor.box_value(1).unwrap(),
    );
    assert!(
        (ours - reference).abs() <= 1e-14 * reference.abs(),
        "{ours} against {reference}"
    );
    assert!(mini.objective.is_finite());
}

/// Checks that the evaluation each step reports is that step's minibatch objective at the
/// iterate, by evaluating it again on an executor of its own.
struct SameMinibatch {
    executor: Executor,
    steps: u64,
}

impl catopt::run::solver::Observer for SameMinibatch {
    fn observe(&mut self, info: &catopt::run::solver::StepInfo<'_>) -> Result<bool, String> {
        self.executor.set_sample_step(info.step);
        let again = self.executor.evaluate(&info.state.values);
        if again.objective.to_bits() != info.evaluation.objective.to_bits() {
            return Err(format!(
                "step {}: {} reported, {} evaluated",
                info.step, info.evaluation.objective, again.objective
            ));
        }
        self.steps += 1;
        Ok(true)
    }
}

/// Every step's evaluation reads its own minibatch: lbfgs's reuse of its accepted trial's
/// evaluation (made on the step before's rows) must not stand in for the next step's.
#[test]
fn each_step_reports_its_own_minibatch() {
    let (program, _) = lower_text(&chain(), None).unwrap();
    let spec = MinibatchSpec {
        batch: 6,
        order: SamplingOrder::Replace,
        seed: 2,
    };
    let (problem, plan) = minibatch_plan(&program, spec);
    let plan = Arc::new(plan);
    let start: Vec<f64> = (0..problem.variable_count())
        .map(|i| 0.3 * noise(i + 9))
        .collect();
    for (name, params) in [("gd", &[("lr", 0.05)][..]), ("armijo", &[]), ("lbfgs", &[])] {
        let method = MethodChoice::by_name(name, params).unwrap();
        let mut built =
            catopt::run::method::build_with(&method.config, method.schedule, &method.context)
                .unwrap();
        let mut observer = SameMinibatch {
            executor: Executor::new(plan.clone(), Backend::serial()),
            steps: 0,
        };
        let mut executor = Executor::new(plan.clone(), Backend::serial());
        let stop = StopRule {
            max_steps: 25,
            tolerance: None,
            rel_tolerance: None,
        };
        let mut state = SolverState::new(start.clone());
        solve(&mut executor, &mut *built, stop, &mut state, &mut observer)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(observer.steps, 26, "{name}"); // steps 0 to 25
    }
}

/// A box's per-box data that is not sampled keeps its shape in the data vector, whatever
/// comes after it: here each box reads its own weights `c` (a vector that differs between
/// boxes) before its sampled rows, and a batch of every row gives each box's full value.
#[test]
fn per_box_data_before_sampled_rows_keeps_its_place() {
    let mut text = String::new();
    let mut calls = String::new();
    for k in 0..3 {
        let (a, _) = matrix(12, 2, 40 + k);
        let (y, _) = matrix(1, 12, 50 + k);
        let (c, _) = matrix(1, 5, 60 + k);
        text.push_str(&format!(
            "data A{k} = {a};\ndata y{k} = {y};\ndata c{k} = {c};\n"
        ));
        calls.push_str(&format!("link(x[{k}], x[{}]; c{k}, A{k}, y{k}); ", k + 1));
    }
    let text = format!(
        "{text}
         objective link(u: real[2], v: real[2]; c: real[5], A: real[12, 2] sample, y: real[12] sample) {{
             minimize mean((A @ u - y)^2) + sum(c) * sum((u - v)^2);
         }}
         composite chain() {{ {calls} }}"
    );
    let (program, full) = lower_text(&text, None).unwrap();
    let spec = MinibatchSpec {
        batch: 12,
        order: SamplingOrder::Shuffle,
        seed: 8,
    };
    let (_, plan) = minibatch_plan(&program, spec);
    let point: Vec<f64> = (0..full.variable_count()).map(|i| noise(i + 3)).collect();
    let mut executor = Executor::new(Arc::new(plan), Backend::serial());
    executor.record_box_values();
    executor.evaluate(&point);
    let mut reference = Executor::new(
        Arc::new(Plan::for_problem(&full).unwrap()),
        Backend::serial(),
    );
    reference.record_box_values();
    reference.evaluate(&point);
    for b in 0..3 {
        let (ours, expected) = (
            executor.box_value(b).unwrap(),
            reference.box_value(b).unwrap(),
        );
        assert!(
            (ours - expected).abs() <= 1e-13 * expected.abs().max(1.0),
            "box {b}: {ours} against {expected}"
        );
    }
}
