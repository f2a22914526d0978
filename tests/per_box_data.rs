//! Per-box data: boxes of one objective whose data arguments differ only in values are one
//! box type, and each box still evaluates with the bits it had when its data were compiled
//! as constants (one box type per distinct data, the compilation before per-box data).

use catopt::check::program::{Callee, CompositeId, Program};
use catopt::laws::methods::{check_runtime_vs_central, MethodChoice, MethodProblem};
use catopt::lower::{compile_box_type, lower, lower_text, Problem};
use catopt::numerics::{BoxData, CompiledObjective};
use catopt::run::backend::Backend;
use catopt::run::executor::Executor;
use catopt::run::plan::Plan;
use std::path::PathBuf;
use std::sync::Arc;

/// A chain whose boxes read their loop index as data: folded data (`exp(c)`, `c^3`,
/// `1 / w`), data in products and a power with a constant exponent.
const CHAIN: &str = "
    objective f(a: real, b: real; c: real, w: real) {
        minimize (b - a * c / 100)^2 / w + exp(c / 1000) * a + (c / 1000)^3 * b * b;
    }
    composite chain() { for i in 0..2000 { f(x[i], x[i + 1]; i, 2001 - i); } }";

/// The reference: every box its own box type, compiled with its data as constants.
fn constant_data_reference(program: &Program, problem: &Problem, id: CompositeId) -> MethodProblem {
    let comp = &program.composites[id.0 as usize];
    let mut box_types: Vec<Arc<CompiledObjective>> = Vec::new();
    for call in comp.boxes.iter() {
        let Callee::Objective(objective) = call.callee else {
            panic!("a flat composite");
        };
        let args = comp.data_args_of_call(&call);
        let compiled = compile_box_type(program, &program.objectives[objective.0 as usize], args)
            .unwrap()
            .compiled;
        assert_eq!(compiled.data_len(), 0);
        box_types.push(compiled);
    }
    MethodProblem {
        composite: problem.composite.clone(),
        box_type_of: (0..box_types.len() as u32).collect(),
        box_types,
        box_data: Arc::new(BoxData::none()),
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Value, gradient and box values of both plans at a few points, bit for bit.
fn assert_same_bits(ours: Plan, reference: Plan, start: &[f64]) {
    let box_count = ours.box_count();
    let mut a = Executor::new(Arc::new(ours), Backend::serial());
    let mut b = Executor::new(Arc::new(reference), Backend::serial());
    a.record_box_values();
    b.record_box_values();
    for k in 0..3 {
        let point: Vec<f64> = start
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.3 * ((i * 7 + k * 13) as f64).sin())
            .collect();
        let (ea, eb) = (a.evaluate(&point), b.evaluate(&point));
        // The boxes' values are the same bits (below); their sum is taken chunk by chunk,
        // as for every batched box type, where the reference (one type per box) adds them
        // one by one: equal up to the rounding of that sum.
        let scale = ea.objective.abs().max(1.0);
        assert!((ea.objective - eb.objective).abs() <= 1e-14 * scale);
        assert_eq!(ea.gradient_norm.to_bits(), eb.gradient_norm.to_bits());
        assert_eq!(bits(a.gradient()), bits(b.gradient()));
        for box_index in 0..box_count {
            assert_eq!(
                a.box_value(box_index).map(f64::to_bits),
                b.box_value(box_index).map(f64::to_bits)
            );
        }
        assert_eq!(a.evaluate_value(&point).to_bits(), ea.objective.to_bits());
    }
}

#[test]
fn a_per_box_data_chain_is_one_batched_box_type() {
    let (_, problem) = lower_text(CHAIN, None).unwrap();
    assert_eq!(problem.box_types.len(), 1);
    assert!(problem.box_type_of.iter().all(|&t| t == 0));
    // The category core keeps one decoration per distinct data.
    assert_eq!(problem.open_box_types.len(), 2000);
    let compiled = &problem.box_types[0].compiled;
    assert!(compiled.is_batchable());
    // c and w, then what is folded from them per box.
    assert_eq!(compiled.raw_data_len(), 2);
    assert!(compiled.data_len() > 2);
    let plan = Plan::for_problem(&problem).unwrap();
    assert_eq!(plan.groups().len(), 1);
    assert!(plan.groups()[0].is_batched());
    assert_eq!(plan.chunk_count(), 4); // 2000 boxes in chunks of 512
    assert!(plan.is_in_box_order());
    // `catopt explain` says so.
    let section = catopt::cli::kernels::kernels_section(&problem).unwrap();
    assert!(
        section.contains("runs 4 kernel calls (1 box type)"),
        "{section}"
    );
    assert!(
        section.contains("| f (type 0) | 2000 | 2 (+ ")
            && section.contains("| batched, up to 512 boxes per call | 4 |"),
        "{section}"
    );
    // Stored once: one data vector per box.
    assert_eq!(problem.box_data.stored_len(), 2000 * compiled.data_len());
}

#[test]
fn per_box_data_gives_the_bits_of_constant_data() {
    let (program, problem) = lower_text(CHAIN, None).unwrap();
    let reference = constant_data_reference(&program, &problem, problem.composite_id);
    let ours = MethodProblem::of_problem(&problem);
    assert_same_bits(
        ours.plan().unwrap(),
        reference.plan().unwrap(),
        &problem.initial_values,
    );
    // Runs: the plan against the category core's composite gradient, on every backend.
    let gd = MethodChoice::by_name("gd", &[("lr", 1e-3)]).unwrap();
    let [central, runtime] =
        check_runtime_vs_central(&ours, &gd, &problem.initial_values, 20, 0.0).unwrap();
    assert!(central.passed && runtime.passed, "{central:?} {runtime:?}");
}

#[test]
fn a_per_box_exponent_keeps_one_box_type_per_value() {
    // `x ^ p` with p constant is specialised (x * x, powi): per-box p would lose those bits.
    let text = "objective f(a: real; p: real, s: real) { minimize s * a ^ p; }
        composite c() { for i in 0..3 { for j in 0..2 { f(x[2 * i + j]; 2 + j, i); } } }";
    let (program, problem) = lower_text(text, None).unwrap();
    assert_eq!(problem.box_types.len(), 6);
    let reference = constant_data_reference(&program, &problem, problem.composite_id);
    let ours = MethodProblem::of_problem(&problem);
    assert_same_bits(
        ours.plan().unwrap(),
        reference.plan().unwrap(),
        &problem.initial_values,
    );
}

/// A data family of vectors and matrices, one member per task: the test vehicle of data
/// families (`data X[t] = csv("task{t}.csv") for t in 0..n`).
fn family_problem(composite: &str) -> (Program, Problem) {
    let dir = std::env::temp_dir().join(format!("catopt_per_box_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for t in 0..5 {
        let rows: String = (0..6)
            .map(|r| {
                let v = |c: usize| ((t * 31 + r * 7 + c * 3) % 11) as f64 / 4.0 - 1.0;
                format!("{},{},{},{}\n", v(0), v(1), v(2), v(3))
            })
            .collect();
        std::fs::write(dir.join(format!("task{t}.csv")), rows).unwrap();
    }
    let opt = "
        data X[t] = csv(\"task{t}.csv\", cols = 0..3) for t in 0..5;
        data y[t] = csv(\"task{t}.csv\", cols = 3..4) for t in 0..5;
        objective fit(w: real[3]; X: real[6, 3], y: real[6], s: real) {
            var c: real = 0.5;
            let g = X' @ X;
            minimize mean(softplus(X @ w + c) - y * (X @ w)) + sum(g @ w) * s / 100 + s * c ^ 2;
        }
        composite shared(w) { for t in 0..5 { fit(w; X[t], y[t], t + 1); } }
        composite mixed(w) { for t in 0..5 { fit(w; X[t], y[0], 2); } extra: fit(w; X[0], y[1], 2); }
        solve shared { method = gd(lr = 0.1); steps = 5; }";
    let path: PathBuf = dir.join("family.opt");
    std::fs::write(&path, opt).unwrap();
    let outcome = catopt::check::check_file(&path);
    let Some(program) = outcome.program else {
        panic!("{}", outcome.report.to_plain_string());
    };
    let (id, _) = program.composite(composite).unwrap();
    let problem = lower(&program, id, None).unwrap();
    (program, problem)
}

#[test]
fn a_data_family_of_matrices_is_one_box_type_with_the_bits_of_constants() {
    for composite in ["shared", "mixed"] {
        let (program, problem) = family_problem(composite);
        assert_eq!(problem.box_types.len(), 1, "{composite}");
        let compiled = &problem.box_types[0].compiled;
        assert!(!compiled.is_batchable());
        let reference = constant_data_reference(&program, &problem, problem.composite_id);
        let ours = MethodProblem::of_problem(&problem);
        assert_same_bits(
            ours.plan().unwrap(),
            reference.plan().unwrap(),
            &problem.initial_values,
        );
        let gd = MethodChoice::by_name("gd", &[("lr", 0.05)]).unwrap();
        let [central, runtime] =
            check_runtime_vs_central(&ours, &gd, &problem.initial_values, 10, 0.0).unwrap();
        assert!(central.passed && runtime.passed, "{central:?} {runtime:?}");
    }
    // `mixed` shares y[0] in five boxes of six: y is still per-box data, s is constant.
    let (_, problem) = family_problem("mixed");
    let compiled = &problem.box_types[0].compiled;
    assert_eq!(compiled.raw_data_len(), 6 * 3 + 6);
}

#[test]
fn the_multitask_digits_heads_are_one_box_type() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/multitask_digits.opt");
    let program = catopt::check::check_file(&path)
        .program
        .expect("the example checks");
    for composite in ["multitask", "independent"] {
        let (id, _) = program.composite(composite).unwrap();
        let problem = lower(&program, id, None).unwrap();
        assert_eq!(problem.diagram.box_count(), 10);
        assert_eq!(problem.box_types.len(), 1, "{composite}");
        // y[k] is per-box data (1200 numbers a head); X, shared by all, stays a constant.
        assert_eq!(problem.box_types[0].compiled.raw_data_len(), 1200);
        let plan = Plan::for_problem(&problem).unwrap();
        assert_eq!(plan.groups().len(), 1);
        let reference = constant_data_reference(&program, &problem, id);
        assert_same_bits(plan, reference.plan().unwrap(), &problem.initial_values);
    }
}
