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
mod objective;
pub mod random;

pub use objective::{compile_box_type, BoxType, PrivateVariable};

use crate::category::{oapply, Composite, Open, ReverseDerivative, WiringDiagram};
use crate::check::program::{Callee, CompositeId, DataArg, Program};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::numerics::CompiledObjective;
use crate::shape::Shape;
use std::collections::HashMap;
use std::sync::Arc;

/// A box type's compiled objective as a decoration for the category core (the reverse
/// derivative of a smooth map, computed by our reverse mode).
#[derive(Clone)]
pub struct CompiledBox(pub Arc<CompiledObjective>);

impl ReverseDerivative for CompiledBox {
    fn dimension(&self) -> usize {
        self.0.num_inputs()
    }

    fn value(&self, x: &[f64]) -> f64 {
        let mut workspace = self.0.workspace();
        self.0.value(&mut workspace, x)
    }

    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        let mut workspace = self.0.workspace();
        let value = self.0.value_and_gradient(&mut workspace, x, gradient);
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
    /// The initial value of each junction of `diagram` (from `where (... = v)`).
    pub junction_init: Vec<Option<f64>>,
    /// The solved composite's own junctions are the diagram's first ones; inner
    /// composites' junctions (named `label.junction`) follow.
    pub top_level_junctions: usize,
    /// The distinct box types (objective + data arguments), compiled.
    pub box_types: Vec<BoxType>,
    /// Box `b` of the diagram instantiates `box_types[box_type_of[b]]`.
    pub box_type_of: Vec<u32>,
    /// The box types as open objectives (ports first, then private variables).
    pub open_box_types: Vec<Open<CompiledBox>>,
    /// The composite objective: oapply of the box types along the diagram.
    pub composite: Composite<CompiledBox>,
    /// The initial point (defaults, `var` and `where` initial values, solve-block `init`s).
    pub initial_values: Vec<f64>,
}

/// A named piece of the composite's state, for output.
#[derive(Clone, Debug)]
pub struct NamedVariable<'a> {
    /// `b`, `x[3]`, `label.var`.
    pub name: IndexedName,
    /// Its shape.
    pub shape: Shape,
    /// Its composite coordinates, row-major (a slice of the pushout's legs).
    pub coordinates: &'a [usize],
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
            name: self.diagram.junction_name(j).clone(),
            shape: self.diagram.junction_shape(j),
            coordinates: self.composite.junction_variables(j),
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
            let phi = self.composite.local_to_global(b);
            for var in &box_type.private {
                out.push(NamedVariable {
                    name: private_name(self.diagram.box_name(b), &var.name),
                    shape: var.shape,
                    coordinates: &phi[var.offset..var.offset + var.shape.len()],
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

/// Flattening state: the flat diagram's arrays.
#[derive(Default)]
struct Flat {
    box_names: Vec<IndexedName>,
    /// Per box: its entry in `data_args`.
    box_table: Vec<u32>,
    port_box: Vec<usize>,
    port_junction: Vec<usize>,
    junction_names: Vec<IndexedName>,
    junction_shapes: Vec<Shape>,
    junction_init: Vec<Option<f64>>,
    /// Distinct (objective, data arguments) of consecutive boxes.
    data_args: Vec<(u32, Vec<DataArg>)>,
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
    if depth > 256 {
        return Err(Box::new(lowering_error(
            "E0701",
            format!(
                "composite `{}` is nested more than 256 levels deep",
                comp.name
            ),
            comp.span,
        )));
    }
    let mut junction_map = vec![usize::MAX; comp.junctions.len()];
    if let Some(outer) = outer {
        for (k, &j) in comp.outer_ports.iter().enumerate() {
            let mapped = &mut junction_map[j.0 as usize];
            if *mapped != usize::MAX && *mapped != outer[k] {
                return Err(Box::new(lowering_error(
                    "E0702",
                    format!(
                        "composite `{}` exposes junction `{}` on two outer ports; used as a box, it would merge two junctions of the caller",
                        comp.name, comp.junctions.name(j.0 as usize)
                    ),
                    comp.span,
                )
                .with_help("expose each junction once")));
            }
            *mapped = outer[k];
            let init = comp.junctions.init(j.0 as usize);
            let target = &mut flat.junction_init[outer[k]];
            if target.is_none() {
                *target = init;
            }
        }
    }
    for (j, junction) in comp.junctions.iter().enumerate() {
        if junction_map[j] != usize::MAX {
            continue;
        }
        junction_map[j] = flat.junction_names.len();
        let name = match prefix {
            None => junction.name.clone(),
            Some(label) => IndexedName {
                base: format!("{label}.{}", junction.name.base).into(),
                index: junction.name.index,
            },
        };
        flat.junction_names.push(name);
        flat.junction_shapes.push(junction.shape);
        flat.junction_init.push(junction.init);
    }
    let mut last_args: Option<(u32, usize, u32)> = None; // (objective, args range start, table index)
    for (b, call) in comp.boxes.iter().enumerate() {
        let label = match prefix {
            None => call.label.clone(),
            Some(p) => IndexedName {
                base: format!("{p}.{}", call.label.base).into(),
                index: call.label.index,
            },
        };
        let junctions: Vec<usize> = comp
            .junctions_of(b)
            .iter()
            .map(|j| junction_map[j.0 as usize])
            .collect();
        match call.callee {
            Callee::Objective(objective) => {
                let args = comp.data_args_of(b);
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
                let box_index = flat.box_names.len();
                flat.box_names.push(label);
                flat.box_table.push(table_index);
                for j in junctions {
                    flat.port_box.push(box_index);
                    flat.port_junction.push(j);
                }
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
/// `normal(...)` draws). Errors are located diagnostics.
pub fn lower(
    program: &Program,
    composite: CompositeId,
    seed: Option<u64>,
) -> Result<Problem, Vec<Diagnostic>> {
    let comp = &program.composites[composite.0 as usize];
    let mut flat = Flat::default();
    flatten(program, composite, None, None, 0, &mut flat).map_err(|d| vec![*d])?;
    // Box types: distinct (objective, data arguments).
    let mut type_index: HashMap<(u32, Vec<(bool, u64)>), u32> = HashMap::new();
    let mut table_to_type: Vec<u32> = Vec::with_capacity(flat.data_args.len());
    let mut box_types = Vec::new();
    for (objective, table) in &flat.data_args {
        let objective = *objective;
        let key = box_type_key(objective, table);
        let next = box_types.len() as u32;
        let index = *type_index.entry(key).or_insert(next);
        if index == next {
            let objective_ref = &program.objectives[objective as usize];
            let box_type = compile_box_type(program, objective_ref, table).map_err(|message| {
                vec![lowering_error(
                    "E0790",
                    format!(
                        "internal error while compiling `{}`: {message}",
                        objective_ref.name
                    ),
                    objective_ref.span,
                )
                .with_help("this is a bug in catopt; please report it with the file")]
            })?;
            box_types.push(box_type);
        }
        table_to_type.push(index);
    }
    let box_type_of: Vec<u32> = flat
        .box_table
        .iter()
        .map(|&table| table_to_type[table as usize])
        .collect();
    let Flat {
        box_names,
        port_box,
        port_junction,
        junction_names,
        junction_shapes,
        junction_init,
        ..
    } = flat;
    let outer: Vec<usize> = comp.outer_ports.iter().map(|j| j.0 as usize).collect();
    let diagram = WiringDiagram::from_parts(
        box_names,
        port_box,
        port_junction,
        junction_names,
        junction_shapes,
        outer,
    )
    .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    let opens: Vec<Open<CompiledBox>> = box_types
        .iter()
        .map(|t| {
            let port_shapes = port_shapes_of(program, t);
            Open::objective(
                port_shapes,
                (0..t.port_len).collect(),
                CompiledBox(t.compiled.clone()),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    let composite_objective = oapply(&diagram, &opens, &box_type_of)
        .map_err(|e| vec![internal(comp.span, e.to_string())])?;
    let mut problem = Problem {
        open_box_types: opens,
        name: comp.name.clone(),
        composite_id: composite,
        diagram,
        junction_init,
        top_level_junctions: comp.junctions.len(),
        box_types,
        box_type_of,
        composite: composite_objective,
        initial_values: Vec::new(),
    };
    problem.initial_values = init::initial_values(program, &problem, seed)?;
    Ok(problem)
}

fn internal(span: Span, message: String) -> Diagnostic {
    lowering_error(
        "E0790",
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
