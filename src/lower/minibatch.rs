//! Sampled data in a minibatch run (docs/language.md, "Stochastic gradients"): how the data
//! parameters marked `sample` are lowered, and where each sampled box's rows come from, so
//! that the run can write the rows it draws at each step into the box's data vector.
//!
//! A sampled parameter is always per-box data ([`crate::numerics::ExprBuilder::data_input`]):
//! of `batch` rows in the minibatch problem, of all its rows in the full problem that a
//! minibatch run evaluates every `full_every` steps and at the end. Both are lowered from
//! the same diagram, so they have the same coordinates, box types and chunks.

use crate::check::program::{DataArg, DataValues, Program, SamplingOrder};
use crate::check::sampling::rows_of;
use crate::numerics::CompiledObjective;
use crate::shape::Shape;
use std::sync::Arc;

/// How a lowering treats the data parameters marked `sample`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampledRows {
    /// As any other data (a run without `batch`: the v0 compilation).
    AsData,
    /// Every row, as per-box data: the full objective of a minibatch run, compiled as the
    /// minibatch problem is, so that both split the same way over threads and ranks.
    All,
    /// `batch` rows per box, drawn by the run at each step.
    Minibatch(MinibatchSpec),
}

/// The draws of a minibatch run: `batch` rows per sampled box and step, in `order`, keyed
/// by `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinibatchSpec {
    /// Rows per box and step.
    pub batch: u64,
    /// `shuffle` or `replace`.
    pub order: SamplingOrder,
    /// The seed the draws are keyed by.
    pub seed: u64,
}

impl SampledRows {
    /// The shape a data parameter of full shape `shape` takes, `sampled` or not: a
    /// sampled one has `batch` rows in a minibatch; everything else keeps its shape.
    pub(crate) fn param_shape(&self, sampled: bool, shape: Shape) -> Shape {
        if !sampled {
            return shape;
        }
        match (*self, shape) {
            (SampledRows::Minibatch(spec), Shape::Vector(_)) => Shape::Vector(spec.batch as usize),
            (SampledRows::Minibatch(spec), Shape::Matrix(_, cols)) => {
                Shape::Matrix(spec.batch as usize, cols)
            }
            _ => shape,
        }
    }

    /// Whether sampled parameters are per-box data (every mode but [`SampledRows::AsData`]).
    pub(crate) fn per_box(&self) -> bool {
        *self != SampledRows::AsData
    }
}

/// Where the boxes of a minibatch problem find their rows: for each open box type
/// (distinct objective and data arguments) with sampled data, its box type and the parts of
/// its raw data vector.
pub struct Minibatches {
    spec: MinibatchSpec,
    /// Box -> its open box type (the problem's `open_box_type_of`).
    instance_of_box: Vec<u32>,
    /// Per open box type: its sampled data, if any.
    instances: Vec<Option<SampledInstance>>,
}

/// The sampled data of one open box type: its compiled objective, the rows it draws from,
/// and where they go in its data vector.
pub struct SampledInstance {
    /// The box type (its sampled parameters are `batch` rows of per-box data).
    pub objective: Arc<CompiledObjective>,
    /// The rows of its sampled data parameters (one count for all of them).
    pub rows: u64,
    /// Its sampled parameters, in raw-data order.
    sources: Vec<RowSource>,
}

/// A sampled parameter: its full rows and where a minibatch of them goes in the raw data.
struct RowSource {
    /// Offset in the data vector of its first minibatch row.
    offset: usize,
    /// Numbers per row (1 for a vector).
    row_len: usize,
    /// The full data, row-major (`rows * row_len` numbers; a number argument fills it): a
    /// view of the data item's storage, not a copy.
    values: DataValues,
}

impl Minibatches {
    /// The draws' batch size, order and seed.
    pub fn spec(&self) -> MinibatchSpec {
        self.spec
    }

    /// Box `b`'s sampled data, if it has any.
    pub fn of_box(&self, b: usize) -> Option<&SampledInstance> {
        self.instances[self.instance_of_box[b] as usize].as_ref()
    }

    /// The largest row count of any sampled box (what `epochs` counts passes over).
    pub fn largest_rows(&self) -> u64 {
        self.instances
            .iter()
            .flatten()
            .map(|i| i.rows)
            .max()
            .unwrap_or(0)
    }

    /// How many boxes have sampled data.
    pub fn sampled_box_count(&self) -> usize {
        self.instance_of_box
            .iter()
            .filter(|&&i| self.instances[i as usize].is_some())
            .count()
    }
}

impl SampledInstance {
    /// Writes the minibatch of rows `rows` (each below [`SampledInstance::rows`]) into a
    /// box's data vector `data` and computes what is folded from them; the raw data of its
    /// other parameters, which do not change between steps, is left as it is.
    ///
    /// # Panics
    /// If a row is out of range or `data` is not the box type's data vector.
    pub fn fill(&self, rows: &[u32], data: &mut [f64]) {
        for source in &self.sources {
            let len = source.row_len;
            let out = &mut data[source.offset..source.offset + rows.len() * len];
            for (chunk, &row) in out.chunks_exact_mut(len).zip(rows) {
                let start = row as usize * len;
                chunk.copy_from_slice(&source.values[start..start + len]);
            }
        }
        self.objective.fold_box_data(data);
    }
}

/// Builds [`Minibatches`] as the box types are made: one call of
/// [`MinibatchesBuilder::instance`] per open box type, in order.
pub(crate) struct MinibatchesBuilder {
    spec: MinibatchSpec,
    instances: Vec<Option<SampledInstance>>,
}

impl MinibatchesBuilder {
    pub(crate) fn new(spec: MinibatchSpec) -> MinibatchesBuilder {
        MinibatchesBuilder {
            spec,
            instances: Vec::new(),
        }
    }

    /// The next open box type: objective `objective` of `program` with arguments `args`,
    /// compiled as `compiled` with the parameters marked in `per_box` as per-box data.
    pub(crate) fn instance(
        &mut self,
        program: &Program,
        objective: &crate::check::program::Objective,
        args: &[DataArg],
        per_box: &[bool],
        compiled: &Arc<CompiledObjective>,
    ) {
        let mut offset = 0;
        let mut sources = Vec::new();
        let mut rows = 0;
        for ((param, arg), _) in objective
            .data_params
            .iter()
            .zip(args)
            .zip(per_box)
            .filter(|(_, p)| **p)
        {
            let full = super::objective::arg_shape(program, param.shape, arg);
            let batch_len = SampledRows::Minibatch(self.spec)
                .param_shape(param.sampled, full)
                .len();
            if param.sampled {
                let full_rows = rows_of(full).unwrap_or(1);
                rows = full_rows as u64;
                let values = match *arg {
                    DataArg::Data(id) => program.data[id.0 as usize].value.values.clone(),
                    DataArg::Number(v) => DataValues::from(Arc::<[f64]>::from(vec![v; full.len()])),
                };
                sources.push(RowSource {
                    offset,
                    row_len: full.len() / full_rows.max(1),
                    values,
                });
            }
            offset += batch_len;
        }
        self.instances
            .push((!sources.is_empty()).then(|| SampledInstance {
                objective: compiled.clone(),
                rows,
                sources,
            }));
    }

    /// The finished table, with each box's open box type.
    pub(crate) fn finish(self, instance_of_box: Vec<u32>) -> Minibatches {
        Minibatches {
            spec: self.spec,
            instance_of_box,
            instances: self.instances,
        }
    }
}
