//! Lowering: a checked composite becomes a flat wiring diagram whose boxes are instances of
//! compiled box types, composed by `oapply` (the pushout), with initial values.
//!
//! This is the one module that knows both the typed program (front end) and the category
//! core and numerics (back end). Nested composites are flattened here (operad
//! substitution: the boxes of an inner composite take the place of the box that calls it,
//! its outer ports are identified with that box's junctions, and its other junctions become
//! new junctions named `label.junction`); the category core's `WiringDiagram::substitute`
//! is the specification, and a test checks that both agree.

mod init;
pub mod minibatch;
mod objective;
pub mod random;

pub use minibatch::{MinibatchSpec, Minibatches, SampledInstance, SampledRows};
pub use objective::{compile_box_type, compile_box_type_with, BoxType, PrivateVariable};

use crate::category::{oapply, Composite, Open, ReverseDerivative, WiringDiagram};
use crate::check::program::{Callee, CompositeId, DataArg, Program};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::numerics::{BoxData, CompiledObjective};
use crate::shape::Shape;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

/// A box's compiled objective with its data, as a decoration for the category core (the
/// reverse derivative of a smooth map, computed by our reverse mode): one per distinct
/// (objective, data arguments).
#[derive(Clone)]
pub struct CompiledBox {
    /// The box type's compiled objective.
    pub objective: Arc<CompiledObjective>,
    /// Where its data vector is, when the objective reads per-box data: an entry of the
    /// problem's [`BoxData`] (shared, not copied).
    data: Option<(Arc<BoxData>, u32)>,
}

impl CompiledBox {
    /// An objective without per-box data.
    pub fn new(objective: Arc<CompiledObjective>) -> CompiledBox {
        CompiledBox {
            objective,
            data: None,
        }
    }

    /// Its data vector (empty without per-box data).
    pub fn data(&self) -> &[f64] {
        match &self.data {
            Some((data, entry)) => data.entry(*entry as usize),
            None => &[],
        }
    }
}

impl ReverseDerivative for CompiledBox {
    fn dimension(&self) -> usize {
        self.objective.num_inputs()
    }

    fn value(&self, x: &[f64]) -> f64 {
        let mut workspace = self.objective.workspace();
        self.objective.value_with(&mut workspace, x, self.data())
    }

    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        let mut workspace = self.objective.workspace();
        let value =
            self.objective
                .value_and_gradient_with(&mut workspace, x, self.data(), gradient);
        if seed != 1.0 {
            for g in gradient.iter_mut() {
                *g *= seed;
            }
        }
        value
    }
}

/// A composite ready to run: the flat diagram, the box types, the composite objective
/// (pushout) and the initial point.
pub struct Problem {
    /// The solved composite's name.
    pub name: String,
    /// Its id in the program.
    pub composite_id: CompositeId,
    /// The flat wiring diagram (nested composites substituted).
    pub diagram: WiringDiagram,
    /// The junctions of `diagram` with an initial value (from `where (... = v)`), in
    /// increasing junction order; the others start at zero.
    pub junction_init: Vec<(usize, f64)>,
    /// The solved composite's own junctions are the diagram's first ones; inner
    /// composites' junctions (named `label.junction`) follow.
    pub top_level_junctions: usize,
    /// The box types, compiled: one per objective and shapes of its data arguments
    /// (boxes whose data differ only in values share one and read their data through
    /// `box_data`), except where per-box data would be a power's exponent (then one per
    /// distinct data, as constants).
    pub box_types: Vec<BoxType>,
    /// Box `b` of the diagram instantiates `box_types[box_type_of[b]]`.
    pub box_type_of: Vec<u32>,
    /// Each box's data vector, for box types with per-box data.
    pub box_data: Arc<BoxData>,
    /// In a minibatch run's problem ([`SampledRows::Minibatch`]): where each sampled box's
    /// rows come from (its data vector in `box_data` holds its first `batch` rows).
    pub minibatches: Option<Arc<Minibatches>>,
    /// The category core's box types: one open objective per distinct (objective, data
    /// arguments), its decoration the box type with its data (ports first, then private
    /// variables).
    pub open_box_types: Vec<Open<CompiledBox>>,
    /// Box `b` is an instance of `open_box_types[open_box_type_of[b]]`.
    pub open_box_type_of: Vec<u32>,
    /// The composite objective: oapply of `open_box_types` along the diagram.
    pub composite: Composite<CompiledBox>,
    /// The initial point (defaults, `var` and `where` initial values, solve-block `init`s).
    pub initial_values: Vec<f64>,
    /// The checker's estimate of the bytes a run of this composite takes.
    pub memory_estimate_bytes: u64,
}

/// What a composite's run does with its objective (see [`Problem::goal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Every box minimises: the sum is minimised.
    Minimize,
    /// Every box maximises: the sum is maximised (by minimising its negation).
    Maximize,
    /// Some boxes minimise, some maximise: the minimised boxes' values minus the maximised
    /// boxes' values is minimised.
    Mixed,
}

impl Goal {
    /// `minimize`, `maximize` or `mixed`, as in `--format json`'s `goal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Minimize => "minimize",
            Goal::Maximize => "maximize",
            Goal::Mixed => "mixed",
        }
    }
}

/// A named piece of the composite's state, for output: a junction of the flat diagram, or
/// a box's private variable (`label.var`). Its name, shape and coordinates are looked up
/// on demand, so the list of a million junctions costs three words per junction.
#[derive(Clone, Copy)]
pub struct NamedVariable<'a> {
    problem: &'a Problem,
    /// The junction, or the box that owns the private variable.
    index: usize,
    /// 0 for a junction; `k + 1` for the box's `k`-th private variable.
    private: u32,
}

impl<'a> NamedVariable<'a> {
    /// `b`, `x[3]`, `label.var`.
    pub fn name(&self) -> IndexedName {
        let diagram = &self.problem.diagram;
        match self.private_variable() {
            None => diagram.junction_name(self.index),
            Some(var) => private_name(&diagram.box_name(self.index), &var.name),
        }
    }

    /// Its shape.
    pub fn shape(&self) -> Shape {
        match self.private_variable() {
            None => self.problem.diagram.junction_shape(self.index),
            Some(var) => var.shape,
        }
    }

    /// Its composite coordinates, row-major (a slice of the pushout's legs).
    pub fn coordinates(&self) -> &'a [usize] {
        let composite = &self.problem.composite;
        match self.private_variable() {
            None => composite.junction_variables(self.index),
            Some(var) => {
                &composite.local_to_global(self.index)[var.offset..var.offset + var.shape.len()]
            }
        }
    }

    fn private_variable(&self) -> Option<&'a PrivateVariable> {
        let k = (self.private as usize).checked_sub(1)?;
        let problem = self.problem;
        Some(&problem.box_types[problem.box_type_of[self.index] as usize].private[k])
    }
}

impl std::fmt::Debug for NamedVariable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedVariable")
            .field("name", &self.name())
            .field("shape", &self.shape())
            .field("coordinates", &self.coordinates())
            .finish()
    }
}

impl Problem {
    /// The number of scalar decision variables of the composite.
    pub fn variable_count(&self) -> usize {
        self.composite.apex()
    }

    /// The top-level junctions (the solved composite's own), in order, with coordinates.
    pub fn top_level_variables(&self) -> Vec<NamedVariable<'_>> {
        (0..self.top_level_junctions)
            .map(|j| self.junction_variable(j))
            .collect()
    }

    /// Junction `j` of the flat diagram as a named variable.
    pub fn junction_variable(&self, j: usize) -> NamedVariable<'_> {
        NamedVariable {
            problem: self,
            index: j,
            private: 0,
        }
    }

    /// Every named variable: all junctions (inner ones named `label.junction`), then every
    /// box's private variables, named `label.var`.
    pub fn all_variables(&self) -> Vec<NamedVariable<'_>> {
        let mut out: Vec<NamedVariable<'_>> = (0..self.diagram.junction_count())
            .map(|j| self.junction_variable(j))
            .collect();
        for b in 0..self.diagram.box_count() {
            let box_type = &self.box_types[self.box_type_of[b] as usize];
            for k in 0..box_type.private.len() {
                out.push(NamedVariable {
                    problem: self,
                    index: b,
                    private: u32::try_from(k + 1).expect("fewer than 2^32 private variables"),
                });
            }
        }
        out
    }

    /// `composite `name` (N variables, M boxes, K box types)`, for command headers.
    pub fn describe(&self) -> String {
        use crate::name::counted;
        format!(
            "composite `{}` ({}, {}, {})",
            self.name,
            counted(self.variable_count(), "variable"),
            counted(self.diagram.box_count(), "box"),
            counted(self.box_types.len(), "box type")
        )
    }

    /// The composite's goal: [`Goal::Maximize`] when every box maximises, then the solver
    /// minimises the negated sum and reports turn it back; [`Goal::Minimize`] when every
    /// box minimises; [`Goal::Mixed`] otherwise (the sum of the minimised boxes' values
    /// and the maximised boxes' negated values is minimised, and reported as such).
    pub fn goal(&self) -> Goal {
        let maximize = |t: &BoxType| t.sense == crate::check::program::Sense::Maximize;
        if !self.box_types.is_empty() && self.box_types.iter().all(maximize) {
            Goal::Maximize
        } else if self.box_types.iter().any(maximize) {
            Goal::Mixed
        } else {
            Goal::Minimize
        }
    }

    /// The composite objective as the user wrote it, from the value the solver minimises:
    /// negated back when every box maximises ([`Problem::goal`]), unchanged otherwise.
    pub fn objective_as_written(&self, minimised: f64) -> f64 {
        match self.goal() {
            Goal::Maximize => 0.0 - minimised,
            Goal::Minimize | Goal::Mixed => minimised,
        }
    }

    /// Box `b`'s objective as written, from the value its compiled objective computes.
    pub fn box_value_as_written(&self, b: usize, computed: f64) -> f64 {
        self.box_types[self.box_type_of[b] as usize].as_written(computed)
    }

    /// The box types as compiled objectives (for the run stage's plan).
    pub fn compiled_box_types(&self) -> Vec<Arc<CompiledObjective>> {
        self.box_types.iter().map(|t| t.compiled.clone()).collect()
    }
}

/// Checks and lowers `.opt` source text in one call: the composite named `composite`, or
/// the last one in the text. Errors come back as plain diagnostic text. Handy in tests and
/// for embedding small problems.
///
/// ```
/// let (_, problem) = catopt::lower::lower_text(
///     "objective f(x: real) { minimize (x - 1)^2; } composite c() { f(x); f(x); }",
///     None,
/// )
/// .unwrap();
/// assert_eq!(problem.variable_count(), 1);
/// assert_eq!(problem.diagram.box_count(), 2);
/// ```
pub fn lower_text(text: &str, composite: Option<&str>) -> Result<(Program, Problem), String> {
    let source = crate::diagnostic::SourceFile::new("<text>", text);
    let outcome = crate::check::check_source(source, &crate::check::CheckOptions::default());
    let Some(program) = outcome.program else {
        return Err(outcome.report.to_plain_string());
    };
    let id = match composite {
        Some(name) => program
            .composite(name)
            .map(|(id, _)| id)
            .ok_or_else(|| format!("no composite named `{name}`"))?,
        None => CompositeId(
            (program.composites.len() as u32)
                .checked_sub(1)
                .ok_or("the text defines no composite")?,
        ),
    };
    let problem = lower(&program, id, None).map_err(|diagnostics| {
        crate::diagnostic::Report {
            source: program.source.clone(),
            diagnostics,
        }
        .to_plain_string()
    })?;
    Ok((program, problem))
}

/// `label.var` (the label may itself be a path, `outer.inner`).
pub fn private_name(label: &IndexedName, var: &str) -> IndexedName {
    IndexedName::plain(format!("{label}.{var}"))
}

/// The lowering's own diagnostics (codes E07xx).
fn lowering_error(code: &'static str, message: String, span: Span) -> Diagnostic {
    Diagnostic::error(code, message, span)
}

/// Flattening state: the flat diagram, built box by box.
struct Flat {
    diagram: WiringDiagram,
    /// Per box: its entry in `data_args`.
    box_table: Vec<u32>,
    /// Junctions with an initial value.
    junction_init: BTreeMap<usize, f64>,
    /// Distinct (objective, data arguments) of consecutive boxes.
    data_args: Vec<(u32, Vec<DataArg>)>,
}

/// `label.base` names for the members of one nested composite, one string per distinct
/// inner base (a loop of a million inner boxes shares one).
struct Prefixed<'a> {
    label: &'a IndexedName,
    bases: HashMap<Arc<str>, Arc<str>>,
}

impl Prefixed<'_> {
    fn name(&mut self, inner: &IndexedName) -> IndexedName {
        let label = self.label;
        let base = self
            .bases
            .entry(inner.base.clone())
            .or_insert_with(|| format!("{label}.{}", inner.base).into())
            .clone();
        IndexedName {
            base,
            index: inner.index,
        }
    }
}

fn flatten(
    program: &Program,
    composite: CompositeId,
    prefix: Option<&IndexedName>,
    outer: Option<&[usize]>,
    depth: usize,
    flat: &mut Flat,
) -> Result<(), Box<Diagnostic>> {
    let comp = &program.composites[composite.0 as usize];
    if depth > crate::check::MAX_COMPOSITE_DEPTH {
        return Err(Box::new(lowering_error(
            "E0602",
            format!(
                "composite `{}` is nested more than {} levels deep",
                comp.name,
                crate::check::MAX_COMPOSITE_DEPTH
            ),
            comp.span,
        )));
    }
    let mut prefixed = prefix.map(|label| Prefixed {
        label,
        bases: HashMap::new(),
    });
    let mut junction_map = vec![usize::MAX; comp.junctions.len()];
    if let Some(outer) = outer {
        for (k, &j) in comp.outer_ports.iter().enumerate() {
            let mapped = &mut junction_map[j.0 as usize];
            if *mapped != usize::MAX && *mapped != outer[k] {
                return Err(Box::new(lowering_error(
                    "E0801",
                    format!(
                        "composite `{}` exposes junction `{}` on two outer ports; used as a box, it would merge two junctions of the caller",
                        comp.name, comp.junctions.name(j.0 as usize)
                    ),
                    comp.span,
                )
                .with_help("expose each junction once")));
            }
            *mapped = outer[k];
            if let Some(init) = comp.junctions.init(j.0 as usize) {
                flat.junction_init.entry(outer[k]).or_insert(init);
            }
        }
    }
    for (j, junction) in comp.junctions.iter().enumerate() {
        if junction_map[j] != usize::MAX {
            continue;
        }
        let name = match &mut prefixed {
            None => junction.name,
            Some(prefixed) => prefixed.name(&junction.name),
        };
        junction_map[j] = flat.diagram.add_junction(name, junction.shape);
        if let Some(init) = junction.init {
            flat.junction_init.insert(junction_map[j], init);
        }
    }
    let mut last_args: Option<(u32, usize, u32)> = None; // (objective, args range start, table index)
    let mut junctions: Vec<usize> = Vec::new();
    for call in comp.boxes.iter() {
        junctions.clear();
        junctions.extend(
            comp.junctions_of_call(&call)
                .iter()
                .map(|j| junction_map[j.0 as usize]),
        );
        let label = match &mut prefixed {
            None => call.label.clone(),
            Some(prefixed) => prefixed.name(&call.label),
        };
        match call.callee {
            Callee::Objective(objective) => {
                let args = comp.data_args_of_call(&call);
                // Consecutive boxes usually share their data arguments (loops): reuse.
                let table_index = match last_args {
                    Some((o, start, index))
                        if o == objective.0
                            && comp.box_data_args[start..start + args.len()] == *args =>
                    {
                        index
                    }
                    _ => {
                        flat.data_args.push((objective.0, args.to_vec()));
                        (flat.data_args.len() - 1) as u32
                    }
                };
                last_args = Some((objective.0, call.data_args.start as usize, table_index));
                flat.diagram
                    .add_box(label, &junctions)
                    .map_err(|e| Box::new(internal(comp.span, e.to_string())))?;
                flat.box_table.push(table_index);
            }
            Callee::Composite(inner) => {
                flatten(
                    program,
                    inner,
                    Some(&label),
                    Some(&junctions),
                    depth + 1,
                    flat,
                )?;
            }
        }
    }
    Ok(())
}

/// Hashable key of a box type: objective and data arguments (numbers by their bits).
fn box_type_key(objective: u32, args: &[DataArg]) -> (u32, Vec<(bool, u64)>) {
    (
        objective,
        args.iter()
            .map(|a| match *a {
                DataArg::Data(id) => (true, id.0 as u64),
                DataArg::Number(v) => (false, v.to_bits()),
            })
            .collect(),
    )
}

/// Lowers composite `composite` of a checked program: flattens it, compiles its box types,
/// composes them by `oapply`, and computes the initial point from the declarations and
/// the first solve block for this composite (`seed` overrides the block's seed for
/// `normal(...)` draws). Errors are located diagnostics; a composite that uses domains,
/// penalties, `subject to` or `dual` is refused (E0815) until the run side implements them.
pub fn lower(
    program: &Program,
    composite: CompositeId,
    seed: Option<u64>,
) -> Result<Problem, Vec<Diagnostic>> {
    lower_with(program, composite, seed, SampledRows::AsData)
}

/// [`lower`] with the data parameters marked `sample` lowered as `sampled` says: as any
/// data (a run without `batch`), as per-box data of every row (a minibatch run's full
/// objective), or as `batch` rows that the run draws at each step.
pub fn lower_with(
    program: &Program,
    composite: CompositeId,
    seed: Option<u64>,
    sampled: SampledRows,
) -> Result<Problem, Vec<Diagnostic>> {
    // Domains, penalties, equality constraints and dual variables are checked but have no
    // lowering yet (issue 16): refuse them by name rather than run a different problem.
    if let Some(used) = program.constraint_use(composite) {
        return Err(vec![lowering_error(
            "E0815",
            format!(
                "{} is checked but not run yet: domains, penalties, `subject to` and `dual` \
                 variables are not implemented by the run side (issue 16)",
                used.what
            ),
            used.span,
        )
        .with_help(
            "`catopt check` accepts the file; to run it now, remove the `in ...` domains, \
             `penalty` and `subject to` statements and `dual` marks (or write a penalty as a \
             smooth term of `minimize`)",
        )]);
    }
    let comp = &program.composites[composite.0 as usize];
    let mut flat = Flat {
        diagram: WiringDiagram::new(),
        box_table: Vec::new(),
        junction_init: BTreeMap::new(),
        data_args: Vec::new(),
    };
    flatten(program, composite, None, None, 0, &mut flat).map_err(|d| vec![*d])?;
    // Instances: distinct (objective, data arguments), the category core's box types.
    let mut instance_index: HashMap<(u32, Vec<(bool, u64)>), u32> = HashMap::new();
    let mut table_to_instance: Vec<u32> = Vec::with_capacity(flat.data_args.len());
    let mut instances: Vec<usize> = Vec::new(); // their entries in `flat.data_args`
    for (t, (objective, table)) in flat.data_args.iter().enumerate() {
        let next = instances.len() as u32;
        let index = *instance_index
            .entry(box_type_key(*objective, table))
            .or_insert(next);
        if index == next {
            instances.push(t);
        }
        table_to_instance.push(index);
    }
    drop(instance_index);
    let types = box_types_of(program, &flat.data_args, &instances, sampled)?;
    let open_box_type_of: Vec<u32> = flat
        .box_table
        .iter()
        .map(|&table| table_to_instance[table as usize])
        .collect();
    let box_type_of: Vec<u32> = open_box_type_of
        .iter()
        .map(|&i| types.instance_type[i as usize])
        .collect();
    let minibatches = types
        .minibatches
        .map(|m| Arc::new(m.finish(open_box_type_of.clone())));
    let mut box_data = types.data;
    box_data.set_entries(open_box_type_of.clone());
    let box_data = Arc::new(box_data);
    let box_types = types.box_types;
    let Flat {
        mut diagram,
        junction_init,
        ..
    } = flat;
    for j in &comp.outer_ports {
        diagram
            .add_outer_port(j.0 as usize)
            .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    }
    diagram.shrink_to_fit();
    let port_shapes: Vec<Vec<Shape>> = box_types
        .iter()
        .map(|t| port_shapes_of(program, t))
        .collect();
    let opens: Vec<Open<CompiledBox>> = types
        .instance_type
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let ty = &box_types[t as usize];
            let data = (ty.compiled.data_len() > 0).then(|| (box_data.clone(), i as u32));
            let decoration = CompiledBox {
                objective: ty.compiled.clone(),
                data,
            };
            Open::objective(
                port_shapes[t as usize].clone(),
                (0..ty.port_len).collect(),
                decoration,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    let composite_objective = oapply(&diagram, &opens, &open_box_type_of)
        .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    let mut problem = Problem {
        open_box_types: opens,
        open_box_type_of,
        box_data,
        minibatches,
        name: comp.name.clone(),
        composite_id: composite,
        diagram,
        junction_init: junction_init.into_iter().collect(),
        top_level_junctions: comp.junctions.len(),
        box_types,
        box_type_of,
        composite: composite_objective,
        initial_values: Vec::new(),
        memory_estimate_bytes: comp.memory_estimate_bytes,
    };
    problem.initial_values = init::initial_values(program, &problem, seed)?;
    Ok(problem)
}

/// The box types of a composite's instances ([`box_types_of`]).
struct BoxTypes {
    box_types: Vec<BoxType>,
    /// Instance -> its box type.
    instance_type: Vec<u32>,
    /// One entry per instance, in order: its data vector.
    data: BoxData,
    /// In a minibatch lowering: each instance's sampled rows.
    minibatches: Option<minibatch::MinibatchesBuilder>,
}

/// Groups the instances (distinct (objective, data arguments); `instances[i]` is an entry
/// of `data_args`) into box types: the instances of one objective whose data arguments
/// have the same shapes are one box type, compiled once, with the arguments that differ
/// between them as per-box data (numbers, such as a loop index, too) and the others as
/// constants. Where per-box data would be a power's exponent, whose constant would have
/// been specialised (bits), each instance is its own box type, its data constant.
///
/// Sampled parameters are per-box data unless `sampled` is [`SampledRows::AsData`].
fn box_types_of(
    program: &Program,
    data_args: &[(u32, Vec<DataArg>)],
    instances: &[usize],
    sampled: SampledRows,
) -> Result<BoxTypes, Vec<Diagnostic>> {
    // Instances by (objective, argument shapes), in order of first appearance.
    let mut group_index: HashMap<(u32, Vec<Shape>), usize> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for (i, &t) in instances.iter().enumerate() {
        let (objective, args) = &data_args[t];
        let params = &program.objectives[*objective as usize].data_params;
        let shapes = params
            .iter()
            .zip(args)
            .map(|(p, a)| objective::arg_shape(program, p.shape, a))
            .collect();
        let next = groups.len();
        let g = *group_index.entry((*objective, shapes)).or_insert(next);
        if g == next {
            groups.push(Vec::new());
        }
        groups[g].push(i as u32);
    }
    drop(group_index);
    let mut out = BoxTypes {
        box_types: Vec::new(),
        instance_type: vec![0; instances.len()],
        data: BoxData::none(),
        minibatches: match sampled {
            SampledRows::Minibatch(spec) => Some(minibatch::MinibatchesBuilder::new(spec)),
            SampledRows::AsData | SampledRows::All => None,
        },
    };
    let mut entries: Vec<Option<(u32, Vec<bool>)>> = vec![None; instances.len()];
    let mut raw = Vec::new();
    for members in groups {
        let (objective, first_args) = &data_args[instances[members[0] as usize]];
        let objective_ref = &program.objectives[*objective as usize];
        let per_box: Vec<bool> = (0..first_args.len())
            .map(|p| {
                if sampled.per_box() && objective_ref.data_params[p].sampled {
                    return true;
                }
                let key = |i: &u32| box_type_key(0, &data_args[instances[*i as usize]].1[p..p + 1]);
                let first = key(&members[0]);
                members[1..].iter().any(|i| key(i) != first)
            })
            .collect();
        let compile = |per_box: &[bool], args: &[DataArg]| {
            objective::compile_sampled_box_type(program, objective_ref, args, per_box, sampled)
                .map_err(|message| {
                    vec![lowering_error(
                        "E0890",
                        format!(
                            "internal error while compiling `{}`: {message}",
                            objective_ref.name
                        ),
                        objective_ref.span,
                    )
                    .with_help("this is a bug in catopt; please report it with the file")]
                })
        };
        let shared = compile(&per_box, first_args)?;
        // Sampled data stays per-box data even as an exponent: a minibatch changes at
        // every step, so there are no constant data whose bits to keep (and the full and
        // minibatch problems must compile alike).
        let is_sampled = sampled.per_box() && objective_ref.sampled_rows().is_some();
        if !is_sampled && per_box.iter().any(|&p| p) && shared.compiled.has_data_exponent() {
            // One box type per instance, its data constant (the v0 compilation).
            for &i in &members {
                let args = &data_args[instances[i as usize]].1;
                out.instance_type[i as usize] = out.box_types.len() as u32;
                out.box_types.push(compile(&vec![false; args.len()], args)?);
                entries[i as usize] = Some((out.box_types.len() as u32 - 1, Vec::new()));
            }
            continue;
        }
        let t = out.box_types.len() as u32;
        out.box_types.push(shared);
        for &i in &members {
            out.instance_type[i as usize] = t;
            entries[i as usize] = Some((t, per_box.clone()));
        }
    }
    // The data vectors, one entry per instance, in instance order.
    for (i, entry) in entries.into_iter().enumerate() {
        let (t, per_box) = entry.expect("every instance has a box type");
        let compiled = &out.box_types[t as usize].compiled;
        let (objective, args) = &data_args[instances[i]];
        raw.clear();
        if compiled.data_len() > 0 {
            objective::raw_data(
                program,
                &program.objectives[*objective as usize],
                args,
                &per_box,
                sampled,
                &mut raw,
            );
        }
        let (_, vector) = out.data.push_entry(compiled.data_len());
        if !vector.is_empty() {
            compiled.box_data(&raw, vector);
        }
        if let Some(minibatches) = out.minibatches.as_mut() {
            let objective = &program.objectives[*objective as usize];
            minibatches.instance(program, objective, args, &per_box, compiled);
        }
    }
    Ok(out)
}

fn internal(span: Span, message: String) -> Diagnostic {
    lowering_error(
        "E0890",
        format!("internal error while composing: {message}"),
        span,
    )
    .with_help("this is a bug in catopt; please report it with the file")
}

fn port_shapes_of(program: &Program, box_type: &BoxType) -> Vec<Shape> {
    program
        .objective(&box_type.name)
        .map(|(_, o)| o.ports.iter().map(|p| p.shape).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximised_composite_reports_the_objective_as_written() {
        let max = "objective l(m: real) { maximize -(m - 2)^2; } composite c() { l(m); l(m); }";
        let (_, problem) = lower_text(max, None).unwrap();
        assert_eq!(problem.goal(), Goal::Maximize);
        assert_eq!(problem.objective_as_written(0.8525), -0.8525);
        assert_eq!(problem.box_value_as_written(1, 0.5), -0.5);
        // Zero stays +0 (never printed as -0).
        assert!(problem.objective_as_written(-0.0).is_sign_positive());
        let mixed = "objective l(m: real) { maximize -(m - 2)^2; }
                     objective q(m: real) { minimize m^2; }
                     composite c() { l(m); q(m); }";
        let (_, problem) = lower_text(mixed, None).unwrap();
        assert_eq!(problem.goal(), Goal::Mixed);
        assert_eq!(problem.objective_as_written(0.5), 0.5);
        assert_eq!(problem.box_value_as_written(0, 0.5), -0.5);
        assert_eq!(problem.box_value_as_written(1, 0.5), 0.5);
        let min = "objective q(m: real) { minimize m^2; } composite c() { q(m); }";
        let (_, problem) = lower_text(min, None).unwrap();
        assert_eq!(problem.goal(), Goal::Minimize);
        assert_eq!(problem.objective_as_written(0.5), 0.5);
    }

    const NESTED: &str = "
        objective f(a: real, b: real) { var v: real = 0.5; minimize (a - b)^2 + v^2; }
        composite pair(x, z) where (x: real = 3, y: real = 0.25) { f(x, y); f(y, z); }
        composite top() where (b: real = 7) {
            pair(a, b);
            inner: pair(b, c);
            for i in 0..3 { link: pair(p[i], p[i + 1]); }
        }";

    #[test]
    fn nested_junction_inits_and_names_follow_the_substitution() {
        let (_, problem) = lower_text(NESTED, Some("top")).unwrap();
        let names: Vec<String> = problem
            .all_variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect();
        assert_eq!(
            &names[..9],
            [
                "b",
                "a",
                "c",
                "p[0]",
                "p[1]",
                "p[2]",
                "p[3]",
                "pair[0].y",
                "inner.y"
            ]
        );
        assert_eq!(names[11], "link[2].y");
        // Then the private variables: box label (a path), then the variable.
        assert_eq!(names[12], "pair[0].f[0].v");
        assert_eq!(names.len(), 12 + problem.diagram.box_count());
        let value = |name: &str| {
            let v = problem.all_variables()[names.iter().position(|n| n == name).unwrap()];
            assert_eq!(v.shape(), Shape::Scalar);
            problem.initial_values[v.coordinates()[0]]
        };
        // The outer `where` wins over the inner one on a shared junction; an inner one
        // applies where the caller declares nothing.
        assert_eq!(value("b"), 7.0);
        assert_eq!(value("a"), 3.0);
        assert_eq!(value("p[2]"), 3.0);
        assert_eq!(value("c"), 0.0);
        assert_eq!(value("inner.y"), 0.25);
        assert_eq!(value("inner.f[1].v"), 0.5);
        assert_eq!(problem.junction_init.first(), Some(&(0, 7.0)));
        assert!(problem.junction_init.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_loop_of_boxes_is_named_on_demand() {
        let text = "objective f(a: real, b: real) { minimize (a - b)^2; }
            composite c() { for i in 0..1000 { f(x[i], x[i + 1]); } }";
        let (_, problem) = lower_text(text, None).unwrap();
        assert_eq!(problem.diagram.box_name(999).to_string(), "f[999]");
        assert_eq!(problem.diagram.junction_name(1000).to_string(), "x[1000]");
        let variables = problem.top_level_variables();
        assert_eq!(variables.len(), 1001);
        assert_eq!(variables[17].name().to_string(), "x[17]");
        assert_eq!(variables[17].coordinates(), &[17]);
        assert_eq!(std::mem::size_of::<NamedVariable<'_>>(), 24);
    }
}
