//! A sampled box's data vector in a minibatch run: the rows drawn for it at a step
//! ([`RowDraws`]: a pure function of seed, box and step), written into its own buffer and
//! folded, once per step however many evaluations the step makes (a line search's trial
//! points see the same minibatch). The sweep of the worker that owns the box keeps the
//! buffer, so threads and ranks fill their own boxes' minibatches, and every backend reads
//! the same bits.

use super::plan::Plan;
use super::sampling::RowDraws;
use crate::lower::{Minibatches, SampledInstance};

/// One sampled box's minibatch buffer.
pub(crate) struct BoxMinibatch {
    /// The box (in the diagram's order: the draws' key).
    box_index: u64,
    draws: RowDraws,
    /// The rows of the current minibatch.
    rows: Vec<u32>,
    /// The box's data vector with those rows.
    data: Vec<f64>,
    /// The step the buffer holds the minibatch of.
    drawn_for: Option<u64>,
}

impl BoxMinibatch {
    /// The buffer of box `b` of `plan`, if it has sampled data (its data vector starts as
    /// the plan's, which holds the raw data of its other parameters).
    pub(crate) fn of_box(plan: &Plan, b: usize) -> Option<BoxMinibatch> {
        let minibatches = plan.minibatches()?;
        let instance = minibatches.of_box(b)?;
        let spec = minibatches.spec();
        Some(BoxMinibatch {
            box_index: b as u64,
            draws: RowDraws::new(instance.rows, spec.batch, spec.order, spec.seed),
            rows: vec![0; spec.batch as usize],
            data: plan.box_data(b).to_vec(),
            drawn_for: None,
        })
    }

    /// The box's data vector with its minibatch of step `step` (drawn and folded if the
    /// buffer holds another step's).
    pub(crate) fn at_step(&mut self, minibatches: &Minibatches, step: u64) -> &[f64] {
        if self.drawn_for != Some(step) {
            self.draws.draw(self.box_index, step, &mut self.rows);
            self.instance(minibatches).fill(&self.rows, &mut self.data);
            self.drawn_for = Some(step);
        }
        &self.data
    }

    fn instance<'a>(&self, minibatches: &'a Minibatches) -> &'a SampledInstance {
        minibatches
            .of_box(self.box_index as usize)
            .expect("a minibatch buffer is made for a sampled box")
    }
}
