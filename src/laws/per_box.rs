//! The per-box variant of a method: every box runs the method on its own objective, alone.
//!
//! For each box `b` there is a one-box problem: the box's objective `f_b` on its own
//! coordinates (its local decision vector, ports then private variables; a port wired twice
//! to one junction is two local coordinates here), with its own plan, executor and its own
//! copy of the method's state (every vector after `values`, every scalar, and whatever the
//! method object keeps, such as a line search's last step size). One step of the variant:
//!
//! 1. each box gathers its coordinates from the global iterate, `x_b = phi_b^* x`;
//! 2. takes one step of the method on `f_b` alone, from `x_b` and its own state (its
//!    gradient is `grad f_b(x_b)`; a line search evaluates `f_b` only);
//! 3. its increment `x_b' - x_b` is pushed forward along `phi_b` and added on junctions:
//!    `x <- x + sum_b phi_b* (x_b' - x_b)`.
//!
//! For a *compositional* method whose gradient is taken at `values` (`gd`, `momentum`) this
//! is the composite method, to rounding: the update is linear in the gradient, and the
//! state it keeps (momentum's velocity) is itself a sum of the boxes' pushed forward. For
//! Adam, the per-coordinate rescaling by `sqrt(s)` is not linear, so the sum of the boxes'
//! Adam steps is another algorithm; for a line search, each box chooses its own step size.
//! A method that takes its gradient at a look-ahead point (`nesterov`, `agd`) keeps that
//! point in its state, per box here: on a junction shared by several boxes, a box's own
//! look-ahead is not the composite's, so the variant differs there too.

use crate::method_spec::{MethodConfig, Schedule};
use crate::numerics::CompiledObjective;
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::method::{build_with, Method, MethodContext, MethodStop, StepContext, MAX_VECTORS};
use crate::run::plan::{Plan, PlanInput};
use crate::run::solver::SolverState;
use std::sync::Arc;

/// One box of the variant: its one-box executor, its method and state.
struct BoxRun {
    /// Global coordinate of each local coordinate (`phi_b`).
    phi: Vec<usize>,
    executor: Executor,
    method: Box<dyn Method>,
    state: SolverState,
    /// Buffers for the proposed vectors (`values` first).
    next: Vec<Vec<f64>>,
    next_scalars: Vec<f64>,
}

/// How a run of the per-box variant ended.
#[derive(Debug, Clone, PartialEq)]
pub struct PerBoxRun {
    /// The global iterate after the steps taken.
    pub values: Vec<f64>,
    /// Steps taken.
    pub steps: u64,
    /// A box's method could not go on (`box`, reason): the run stopped there.
    pub stopped: Option<(usize, String)>,
}

/// The per-box variant of a method on a composite (see the module documentation).
pub struct PerBox {
    apex: usize,
    boxes: Vec<BoxRun>,
    /// `x`, and the sum of the increments of one step.
    values: Vec<f64>,
    increments: Vec<f64>,
    step: u64,
}

impl PerBox {
    /// One one-box problem per box of the composite described by `input`, each with its
    /// own `method` (with `schedule`), starting from the global point `start`.
    ///
    /// # Errors
    /// If the method has no implementation, a plan cannot be built, or `start` has the
    /// wrong length.
    pub fn new(
        input: &PlanInput<'_>,
        method: &MethodConfig,
        schedule: Schedule,
        context: &MethodContext,
        start: &[f64],
    ) -> Result<PerBox, String> {
        if start.len() != input.apex {
            return Err(format!(
                "the start has {} coordinates, the composite {}",
                start.len(),
                input.apex
            ));
        }
        let mut boxes = Vec::with_capacity(input.box_type_of.len());
        for (b, &t) in input.box_type_of.iter().enumerate() {
            let phi = input.local_to_global[input.summand_offsets[b]..input.summand_offsets[b + 1]]
                .to_vec();
            let objective: &Arc<CompiledObjective> = &input.box_types[t as usize];
            let arity = phi.len();
            let identity: Vec<usize> = (0..arity).collect();
            let mut data = crate::numerics::BoxData::none();
            let (entry, vector) = data.push_entry(input.box_data.of_box(b).len());
            vector.copy_from_slice(input.box_data.of_box(b));
            data.set_entries(vec![entry]);
            let plan = Plan::new(&PlanInput {
                apex: arity,
                box_types: std::slice::from_ref(objective),
                box_type_of: &[0],
                local_to_global: &identity,
                summand_offsets: &[0, arity],
                box_data: Arc::new(data),
            })
            .map_err(|e| e.to_string())?;
            // The box's own variables keep the composite's groups (a per-layer step size
            // stays per layer inside the box).
            let method = build_with(method, schedule, &context.restricted(&phi))?;
            let mut state = SolverState::new(phi.iter().map(|&i| start[i]).collect());
            state.start(&*method);
            let next = vec![vec![0.0; arity]; method.vectors().len()];
            let next_scalars = vec![0.0; method.scalars().len()];
            boxes.push(BoxRun {
                phi,
                executor: Executor::new(Arc::new(plan), Backend::serial()),
                method,
                state,
                next,
                next_scalars,
            });
        }
        Ok(PerBox {
            apex: input.apex,
            boxes,
            values: start.to_vec(),
            increments: vec![0.0; input.apex],
            step: 0,
        })
    }

    /// The global iterate.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// One step of the variant: every box's own step from the gathered iterate, the
    /// increments added on junctions (in box order).
    ///
    /// # Errors
    /// The first box whose method could not go on, and why.
    pub fn step(&mut self) -> Result<(), (usize, String)> {
        self.increments.fill(0.0);
        for (b, run) in self.boxes.iter_mut().enumerate() {
            for (local, &global) in run.state.values.iter_mut().zip(&run.phi) {
                *local = self.values[global];
            }
            let count = run.next.len();
            let mut current: [&[f64]; MAX_VECTORS] = [&[]; MAX_VECTORS];
            current[0] = &run.state.values;
            for (slot, v) in current[1..].iter_mut().zip(&run.state.vectors) {
                *slot = v;
            }
            let mut next: [&mut [f64]; MAX_VECTORS] = [&mut [], &mut [], &mut [], &mut []];
            for (slot, v) in next.iter_mut().zip(run.next.iter_mut()) {
                *slot = v;
            }
            let mut context = StepContext {
                executor: &mut run.executor,
                step: self.step,
                current: &current[..count],
                current_scalars: &run.state.scalars,
                next: &mut next[..count],
                next_scalars: &mut run.next_scalars,
                stops_here: &|_| false,
            };
            if let Err(MethodStop::NoProgress(reason)) = run.method.propose(&mut context) {
                return Err((b, reason));
            }
            for ((&global, proposed), current) in
                run.phi.iter().zip(&run.next[0]).zip(&run.state.values)
            {
                self.increments[global] += proposed - current;
            }
            for (own, proposed) in run.state.vectors.iter_mut().zip(&mut run.next[1..]) {
                std::mem::swap(own, proposed);
            }
            std::mem::swap(&mut run.state.scalars, &mut run.next_scalars);
        }
        for (x, d) in self.values.iter_mut().zip(&self.increments) {
            *x += d;
        }
        self.step += 1;
        Ok(())
    }

    /// Takes `steps` steps (fewer if a box's method stops).
    pub fn run(mut self, steps: u64) -> PerBoxRun {
        let mut stopped = None;
        while self.step < steps {
            if let Err(reason) = self.step() {
                stopped = Some(reason);
                break;
            }
        }
        debug_assert_eq!(self.values.len(), self.apex);
        PerBoxRun {
            values: self.values,
            steps: self.step,
            stopped,
        }
    }
}
