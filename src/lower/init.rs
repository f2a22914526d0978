//! Initial values: zeros, then `var` and `where` initial values, then the solve block's
//! `init` lines in order (a later line overrides an earlier one).

use super::random::NormalSource;
use super::Problem;
use crate::check::program::{InitTarget, InitValue, Program};
use crate::diagnostic::{Diagnostic, Span};
use std::collections::HashMap;

/// Computes the initial point of `problem`, using the first solve block of its composite
/// and `seed` (or the solve block's seed, or 0) for `normal(...)` draws.
pub(super) fn initial_values(
    program: &Program,
    problem: &Problem,
    seed: Option<u64>,
) -> Result<Vec<f64>, Vec<Diagnostic>> {
    let composite = &problem.composite;
    let mut values = vec![0.0; composite.apex()];
    for b in 0..problem.diagram.box_count() {
        let box_type = &problem.box_types[problem.box_type_of[b] as usize];
        if box_type.private.iter().all(|v| v.init == 0.0) {
            continue;
        }
        let phi = composite.local_to_global(b);
        for var in &box_type.private {
            for &g in &phi[var.offset..var.offset + var.shape.len()] {
                values[g] = var.init;
            }
        }
    }
    for &(j, init) in &problem.junction_init {
        for &g in composite.junction_variables(j) {
            values[g] = init;
        }
    }
    let Some(solve) = program
        .solves
        .iter()
        .find(|s| s.composite == problem.composite_id)
    else {
        return Ok(values);
    };
    let mut source = NormalSource::new(seed.or(solve.seed).unwrap_or(0));
    let mut box_index: Option<HashMap<String, Option<usize>>> = None;
    let mut errors = Vec::new();
    for init in &solve.inits {
        let coordinates: Vec<usize> = match &init.target {
            InitTarget::Junction(j) => composite.junction_variables(j.0 as usize).to_vec(),
            InitTarget::Family(members) => members
                .iter()
                .flat_map(|j| composite.junction_variables(j.0 as usize).iter().copied())
                .collect(),
            InitTarget::Private(path) => {
                // A label shared by several boxes maps to None: `init` must not pick one.
                let index = box_index.get_or_insert_with(|| {
                    let mut index = HashMap::new();
                    for b in 0..problem.diagram.box_count() {
                        index
                            .entry(problem.diagram.box_name(b).to_string())
                            .and_modify(|e| *e = None)
                            .or_insert(Some(b));
                    }
                    index
                });
                match resolve_private(problem, index, path, init.span) {
                    Ok(coordinates) => coordinates,
                    Err(diagnostic) => {
                        errors.push(*diagnostic);
                        continue;
                    }
                }
            }
        };
        match &init.value {
            InitValue::Number(v) => coordinates.iter().for_each(|&g| values[g] = *v),
            InitValue::Normal { mean, sd } => {
                for &g in &coordinates {
                    values[g] = source.sample(*mean, *sd);
                }
            }
            InitValue::Data(data) => {
                if data.values.len() != coordinates.len() {
                    errors.push(
                        Diagnostic::error(
                            "E0811",
                            format!(
                                "the initial value has {} entries ({}) but its target has {}",
                                data.values.len(),
                                data.shape,
                                coordinates.len()
                            ),
                            init.span,
                        )
                        .with_help("give one value per entry of the target, in row-major order"),
                    );
                    continue;
                }
                for (&g, &v) in coordinates.iter().zip(data.values.iter()) {
                    values[g] = v;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The coordinates of the private variable `label.var` (label possibly a path).
fn resolve_private(
    problem: &Problem,
    boxes: &HashMap<String, Option<usize>>,
    path: &[String],
    span: Span,
) -> Result<Vec<usize>, Box<Diagnostic>> {
    let (var, labels) = path.split_last().ok_or_else(|| {
        Box::new(Diagnostic::error(
            "E0812",
            "an empty private-variable path",
            span,
        ))
    })?;
    let label = labels.join(".");
    if let Some(None) = boxes.get(&label) {
        return Err(Box::new(
            Diagnostic::error(
                "E0814",
                format!(
                    "`{label}` labels several boxes of composite `{}`: `init` cannot tell which",
                    problem.name
                ),
                span,
            )
            .with_help("give the boxes distinct labels (`label: objective(...)`)"),
        ));
    }
    let Some(&Some(b)) = boxes.get(&label) else {
        return Err(Box::new(
            Diagnostic::error(
                "E0812",
                format!("no box labelled `{label}` in composite `{}`", problem.name),
                span,
            )
            .with_help(
                "a private variable is addressed as `label.var`; `catopt check` lists the boxes",
            ),
        ));
    };
    let box_type = &problem.box_types[problem.box_type_of[b] as usize];
    let Some(variable) = box_type.private.iter().find(|v| &v.name == var) else {
        let known: Vec<&str> = box_type.private.iter().map(|v| v.name.as_str()).collect();
        return Err(Box::new(
            Diagnostic::error(
                "E0813",
                format!(
                    "box `{label}` ({}) has no private variable `{var}`",
                    box_type.name
                ),
                span,
            )
            .with_help(if known.is_empty() {
                format!("`{}` declares no `var`", box_type.name)
            } else {
                format!("its private variables are: {}", known.join(", "))
            }),
        ));
    };
    let phi = problem.composite.local_to_global(b);
    Ok(phi[variable.offset..variable.offset + variable.shape.len()].to_vec())
}
