//! A minibatch run (docs/language.md, "Stochastic gradients"): its two problems, lowered
//! from one diagram (the minibatch problem the solver steps on, whose sampled boxes read
//! `batch` drawn rows, and the full problem, whose objective the trace shows every
//! `full_every` steps and the report gives at the end), and what it adds to the output.

use super::Failure;
use crate::check::program::{CompositeId, Program};
use crate::lower::{lower_with, MinibatchSpec, Problem, SampledRows};
use crate::run::backend::Backend;
use crate::run::executor::{Evaluation, Executor};
use crate::run::plan::Plan;
use serde_json::{json, Value};
use std::sync::Arc;

/// The settings of a minibatch run.
#[derive(Clone, Copy, Debug)]
pub(super) struct MinibatchRun {
    /// The draws: batch, order, seed.
    pub(super) spec: MinibatchSpec,
    /// The full objective in the trace every this many steps.
    pub(super) full_every: Option<u64>,
}

/// A minibatch run's full-data side, before its executor exists.
pub(super) struct FullData {
    run: MinibatchRun,
    plan: Plan,
    /// The most rows any sampled box draws from (epochs count passes over them).
    rows: u64,
}

/// Lowers a minibatch run's two problems. Returns the full problem (its variables are the
/// minibatch problem's: one diagram), the minibatch problem's plan, and the full data.
/// `--batch` is checked here as the checker checks `batch = B;` (E0520, E0521).
pub(super) fn lower_minibatch_run(
    program: &Program,
    composite: CompositeId,
    init_seed: Option<u64>,
    run: MinibatchRun,
) -> Result<(Problem, Plan, FullData), Failure> {
    let lower = |sampled| {
        lower_with(program, composite, init_seed, sampled).map_err(|diagnostics| {
            super::print_report(&crate::diagnostic::Report {
                source: program.source.clone(),
                diagnostics,
            });
            Failure::Reported
        })
    };
    let full = lower(SampledRows::All)?;
    let batch = run.spec.batch;
    let sampled: Vec<(&str, usize)> = full
        .box_types
        .iter()
        .filter_map(|t| {
            let (_, objective) = program.objective(&t.name)?;
            Some((objective.name.as_str(), objective.sampled_rows()?))
        })
        .collect();
    if sampled.is_empty() {
        return Err(Failure::Message(format!(
            "batch = {batch}, but no box of `{}` has sampled data\n  help: mark the data \
             parameters whose rows are the examples with `sample` (docs/language.md, \
             \"Stochastic gradients\"), or leave out --batch",
            full.name
        )));
    }
    if let Some((name, rows)) = sampled.iter().find(|(_, rows)| batch > *rows as u64) {
        return Err(Failure::Message(format!(
            "batch = {batch} is more than the {rows} rows of `{name}`'s sampled data\n  help: \
             choose a batch of at most {rows}; to use every row each step, leave out --batch"
        )));
    }
    let minibatch = lower(SampledRows::Minibatch(run.spec))?;
    if minibatch.variable_count() != full.variable_count()
        || minibatch.box_type_of != full.box_type_of
    {
        return Err(Failure::Message(
            "internal error: the minibatch and full problems differ (a bug in catopt; please \
             report it with the file)"
                .into(),
        ));
    }
    let plan = Plan::for_problem(&minibatch).map_err(|e| e.to_string())?;
    let rows = plan
        .minibatches()
        .map_or(0, |m| m.largest_rows())
        .max(batch);
    drop(minibatch);
    let full_plan = Plan::for_problem(&full).map_err(|e| e.to_string())?;
    Ok((
        full,
        plan,
        FullData {
            run,
            plan: full_plan,
            rows,
        },
    ))
}

/// The full objective of a minibatch run: its executor, which runs on the minibatch
/// executor's backend with the same split of the boxes.
pub(super) struct FullObjective {
    run: MinibatchRun,
    rows: u64,
    executor: Executor,
}

impl FullObjective {
    /// The full data's executor beside `minibatch`'s, on its backend.
    pub(super) fn new(
        data: FullData,
        backend: Backend,
        minibatch: &Executor,
    ) -> Result<FullObjective, String> {
        let executor = Executor::new(Arc::new(data.plan), backend);
        // A rank keeps the iterate current on its own coordinates only: both executors
        // must read the same ones.
        if executor.local_runs() != minibatch.local_runs() {
            return Err(
                "internal error: the full and minibatch problems split differently over the \
                 ranks (a bug in catopt; please report it with the file)"
                    .into(),
            );
        }
        Ok(FullObjective {
            run: data.run,
            rows: data.rows,
            executor,
        })
    }

    /// Whether the trace has a `full_objective` column.
    pub(super) fn traced(&self) -> bool {
        self.run.full_every.is_some()
    }

    /// The full objective at `values`, the iterate of step `step`, when the trace is due to
    /// show it (every `full_every` steps, from step 0). A collective call on a distributed
    /// backend: every rank makes it at every step.
    pub(super) fn due(&mut self, step: u64, values: &[f64]) -> Option<f64> {
        let every = self.run.full_every?;
        (step % every == 0).then(|| self.executor.evaluate_value(values))
    }

    /// The full objective and gradient at the final iterate (a collective call).
    pub(super) fn evaluate(&mut self, values: &[f64]) -> Evaluation {
        self.executor.evaluate(values)
    }

    /// Passes over the sampled rows in `steps` steps.
    pub(super) fn epochs(&self, steps: u64) -> f64 {
        steps as f64 * self.run.spec.batch as f64 / self.rows as f64
    }

    /// What a minibatch run adds to `--format json`: `epochs`, `minibatch_objective` (the
    /// last step's) and the `sampling` settings.
    pub(super) fn json_fields(
        &self,
        steps: u64,
        minibatch_objective: f64,
    ) -> [(&'static str, Value); 3] {
        [
            ("epochs", json!(self.epochs(steps))),
            (
                "minibatch_objective",
                super::finite_or_null(minibatch_objective),
            ),
            (
                "sampling",
                json!({
                    "batch": self.run.spec.batch,
                    "order": self.run.spec.order.name(),
                    "full_every": self.run.full_every,
                    "seed": self.run.spec.seed,
                }),
            ),
        ]
    }

    /// The text report's line.
    pub(super) fn text(&self, steps: u64, minibatch_objective: f64) -> String {
        format!(
            "minibatches    {} rows per box and step ({}), {:.3} epochs; last minibatch \
             objective {:.6e}\n",
            self.run.spec.batch,
            self.run.spec.order.name(),
            self.epochs(steps),
            minibatch_objective
        )
    }
}
