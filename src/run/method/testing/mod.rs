//! Test support for the methods and the executor, in one place: problems with their
//! objective and gradient written out by hand ([`problems`]), the fused methods and
//! schedules written out on plain vectors ([`reference`]), and the drivers that run catopt
//! on a problem as `catopt run` does (lowered, planned, solved) and round-trip a
//! checkpoint. Each method's own tests keep their own written-out reference of that
//! method (line searches, Adam, L-BFGS) next to them.

mod problems;
mod reference;

pub(crate) use problems::{
    convex_quadratic, ill_conditioned_quadratic, parameterised_quadratic, rosenbrock_chain,
    TestProblem, CLASSIC_START, RANDOM_START, ROSENBROCK_LR,
};
pub(crate) use reference::{assert_follows, Ended, Reference};

use crate::cli::checkpoint::{
    checkpoint_bytes, parse_checkpoint, validate, Fingerprint, MethodRecord, StateLayout,
};
use crate::lower::{lower_text, Problem};
use crate::method_spec::{resolve_method, Given, MethodConfig, Schedule};
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::method::{build, Method};
use crate::run::plan::Plan;
use crate::run::solver::{solve, NoObserver, Outcome, SolverState, StopReason, StopRule};
use std::sync::Arc;

/// The problem `text` lowers to (panics on an error).
pub(crate) fn lower(text: &str) -> Problem {
    lower_text(text, None).unwrap_or_else(|e| panic!("{e}")).1
}

/// The method `name(params)`, resolved (panics on an error).
pub(crate) fn config(name: &str, params: &[(&str, f64)]) -> MethodConfig {
    let given: Vec<(&str, Given<'_>)> =
        params.iter().map(|&(p, v)| (p, Given::Number(v))).collect();
    resolve_method(name, &given).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Runs `method` on `problem` from `state` until step `steps` (or another stop) on
/// `backend`, with a fresh executor (as a new `catopt run` process would). Returns the
/// outcome and the value-only evaluations.
pub(crate) fn solve_from(
    problem: &Problem,
    method: &mut dyn Method,
    backend: Backend,
    state: &mut SolverState,
    steps: u64,
) -> (Outcome, u64) {
    let plan = Arc::new(Plan::for_problem(problem).unwrap());
    let mut executor = Executor::new(plan, backend);
    let stop = StopRule {
        max_steps: steps,
        tolerance: None,
        rel_tolerance: None,
    };
    let outcome = solve(&mut executor, method, stop, state, &mut NoObserver).unwrap();
    (outcome, executor.value_evaluations())
}

/// What [`run`] returns.
pub(crate) struct Ran {
    pub state: SolverState,
    pub outcome: Outcome,
    pub value_evaluations: u64,
}

/// Runs `method` on `problem` from its initial point for at most `steps` steps on
/// `backend`.
pub(crate) fn run_on(
    problem: &Problem,
    method: &mut dyn Method,
    backend: Backend,
    steps: u64,
) -> Ran {
    let mut state = SolverState::new(problem.initial_values.clone());
    let (outcome, value_evaluations) = solve_from(problem, method, backend, &mut state, steps);
    Ran {
        state,
        outcome,
        value_evaluations,
    }
}

/// [`run_on`] the serial backend.
pub(crate) fn run(problem: &Problem, method: &mut dyn Method, steps: u64) -> Ran {
    run_on(problem, method, Backend::serial(), steps)
}

/// catopt's run of the method `name(params)` with `schedule`, `steps` steps from the
/// problem's initial point (all of them: no other stop).
pub(crate) fn catopt_run(
    problem: &TestProblem,
    name: &str,
    params: &[(&str, f64)],
    schedule: Schedule,
    steps: u64,
) -> Ended {
    let mut method = build(&config(name, params), schedule).unwrap();
    let ran = run(&problem.problem, &mut *method, steps);
    assert_eq!(
        ran.outcome.stop_reason,
        StopReason::MaxSteps,
        "{:?}",
        ran.outcome
    );
    assert_eq!(ran.state.step, steps);
    let stats = method.stats();
    Ended {
        values: ran.state.values,
        objective: ran.outcome.evaluation.objective,
        step_sizes: (stats.min_step_size, stats.max_step_size),
    }
}

/// Running `2 k` steps straight ends with the same bits as running `k` steps, writing a
/// checkpoint (bytes through `checkpoint_bytes`, `parse_checkpoint` and `validate`), and
/// running on from it with a fresh method and executor.
pub(crate) fn assert_resumes_bit_for_bit(
    problem: &Problem,
    name: &str,
    params: &[(&str, f64)],
    schedule: Schedule,
    k: u64,
) {
    let config = config(name, params);
    let steps = |state: &mut SolverState, until: u64| {
        let mut method = build(&config, schedule).unwrap();
        let serial = Backend::serial();
        let (outcome, _) = solve_from(problem, &mut *method, serial, state, until);
        assert_eq!(outcome.stop_reason, StopReason::MaxSteps, "{outcome:?}");
        outcome
    };
    let mut straight = SolverState::new(problem.initial_values.clone());
    let straight_outcome = steps(&mut straight, 2 * k);

    let mut first = SolverState::new(problem.initial_values.clone());
    steps(&mut first, k);
    let layout = StateLayout::of(&*build(&config, schedule).unwrap());
    let fingerprint = Fingerprint::of(problem, MethodRecord::of(&config, &schedule));
    let bytes = checkpoint_bytes(&fingerprint, layout, &first, &[]);
    let parsed = parse_checkpoint(&bytes).unwrap();
    let names: Vec<&str> = parsed.header.vectors.iter().map(|v| &*v.name).collect();
    assert_eq!(names, layout.vectors, "the checkpoint holds every vector");
    let scalars: Vec<&str> = parsed.header.scalars.iter().map(|s| &*s.0).collect();
    assert_eq!(scalars, layout.scalars, "the checkpoint holds every scalar");
    let mut resumed = validate(parsed, &fingerprint, layout).unwrap();
    assert_eq!(resumed.step, k);
    let resumed_outcome = steps(&mut resumed, 2 * k);

    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_ne!(bits(&first.values), bits(&straight.values), "the run moves");
    assert_eq!(resumed.step, straight.step);
    assert_eq!(bits(&resumed.values), bits(&straight.values), "values");
    assert_eq!(resumed.vectors.len(), straight.vectors.len());
    for (i, (a, b)) in resumed.vectors.iter().zip(&straight.vectors).enumerate() {
        assert_eq!(bits(a), bits(b), "{}", layout.vectors[i + 1]);
    }
    assert_eq!(bits(&resumed.scalars), bits(&straight.scalars), "scalars");
    let evaluation = |o: &Outcome| bits(&[o.evaluation.objective, o.evaluation.gradient_norm]);
    assert_eq!(evaluation(&resumed_outcome), evaluation(&straight_outcome));
}

/// Asserts `a` equals `b` to `tolerance` relative (to the larger magnitude, at least 1).
pub(crate) fn assert_close(a: &[f64], b: &[f64], tolerance: f64, what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (&u, &v)) in a.iter().zip(b).enumerate() {
        let scale = u.abs().max(v.abs()).max(1.0);
        assert!(
            (u - v).abs() <= tolerance * scale,
            "{what}: coordinate {i}: {u} vs {v} (difference {:e})",
            (u - v).abs()
        );
    }
}

/// `sum a_i b_i`, in order.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
