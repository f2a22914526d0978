//! `catopt eval FILE --values FILE`: evaluates a composite's `report` block (docs/language.md,
//! "Reports") on values saved by `catopt run --output`, e.g. test accuracy on test data.

use super::render::{print_report, print_stdout};
use super::run::{load_problem_with, read_values_file, Failure, Format};
use super::EXIT_OK;
use crate::check::program::Program;
use crate::check::report_types::Report as ReportBlock;
use crate::diagnostic::{Diagnostic, Report};
use crate::lower::Problem;
use crate::name::IndexedName;
use clap::Args;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The arguments of `catopt eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The .opt file with the `report` block.
    pub file: PathBuf,
    /// The values to evaluate at: a file written by `catopt run --output` (or an object of
    /// values in its format).
    #[arg(long, value_name = "FILE")]
    pub values: PathBuf,
    /// The composite whose report to evaluate (default: as `run` chooses).
    #[arg(long)]
    pub composite: Option<String>,
    /// Output format: a table of the report's lines, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Where data files may be read from.
    #[command(flatten)]
    pub data: super::DataArgs,
}

/// Runs `catopt eval` and returns the exit code.
pub fn run(args: &EvalArgs) -> i32 {
    match eval(args) {
        Ok(code) => code,
        Err(Failure::Reported) => super::EXIT_BAD_INPUT,
        Err(Failure::Message(message)) => {
            crate::warn_line!("error: {message}");
            super::EXIT_BAD_INPUT
        }
    }
}

fn eval(args: &EvalArgs) -> Result<i32, Failure> {
    let (program, problem) =
        load_problem_with(&args.file, args.composite.as_deref(), None, &args.data)?;
    let composite = &program.composites[problem.composite_id.0 as usize].name;
    let Some(report) = program
        .reports
        .iter()
        .find(|r| r.composite == problem.composite_id)
    else {
        let with: Vec<&str> = program
            .reports
            .iter()
            .map(|r| program.composites[r.composite.0 as usize].name.as_str())
            .collect();
        let others = if with.is_empty() {
            String::new()
        } else {
            format!(
                " (the file reports on {}: choose with --composite)",
                with.join(", ")
            )
        };
        return Err(Failure::Message(format!(
            "composite `{composite}` has no report block{others}\n  help: add `report {composite} {{ name = expression; }}` (docs/language.md, \"Reports\")"
        )));
    };
    let fail = |diagnostics: Vec<Diagnostic>| {
        print_report(&Report {
            source: program.source.clone(),
            diagnostics,
        });
        Failure::Reported
    };
    let mut state = problem.initial_values.clone();
    let given =
        read_values_file(&args.values, "values file", &problem, &mut state).map_err(|message| {
            fail(vec![Diagnostic::error("E0912", message, report.span)
                .with_label("the report of this composite")
                .with_help(
                    "give a file written by `catopt run --output` for this composite",
                )])
        })?;
    let missing: Vec<Diagnostic> = report
        .variables()
        .into_iter()
        .filter(|(v, _)| !present(&given, &v.name))
        .map(|(v, span)| {
            Diagnostic::error(
                "E0911",
                format!(
                    "the values file {} has no `{}`",
                    args.values.display(),
                    v.name
                ),
                span,
            )
            .with_label("read here")
            .with_help(
                "evaluate a file written by `catopt run --output` for this composite (it holds every variable, private ones included)",
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(fail(missing));
    }
    let entries = report_entries(&program, report, &problem, &state).map_err(|d| fail(vec![*d]))?;
    let entries: Vec<(&IndexedName, f64)> = entries.iter().map(|(n, v)| (*n, *v)).collect();
    match args.format {
        Format::Text => print_stdout(&text(
            &format!("report of `{composite}` at {}", args.values.display()),
            &entries,
        )),
        Format::Json => {
            let object = json!({
                "composite": composite,
                "values_file": args.values.display().to_string(),
                "report": report_json(&entries),
            });
            print_stdout(&format!("{object:#}\n"));
        }
    }
    Ok(EXIT_OK)
}

/// The printed lines of `report` (a checked report of `problem`'s composite) at the
/// global coordinates `state`: name and value, in order.
pub fn report_entries<'r>(
    program: &Program,
    report: &'r ReportBlock,
    problem: &Problem,
    state: &[f64],
) -> Result<Vec<(&'r IndexedName, f64)>, Box<Diagnostic>> {
    let variables = problem.all_variables();
    let coordinates: HashMap<String, &[usize]> = variables
        .iter()
        .map(|v| (v.name().to_string(), v.coordinates()))
        .collect();
    let lookup = |v: &crate::check::report_types::VariableRef| {
        coordinates
            .get(&v.name.to_string())
            .map(|coords| coords.iter().map(|&g| state[g]).collect())
    };
    let lines = crate::report::evaluate(program, report, &lookup)?;
    Ok(report
        .lines
        .iter()
        .zip(&lines)
        .filter(|(line, _)| line.printed)
        .map(|(line, value)| (&line.name, value.values[0]))
        .collect())
}

/// Whether the `values` object gives the variable `name` (a family member as an entry of
/// the family's array or object).
fn present(values: &Map<String, Value>, name: &IndexedName) -> bool {
    let Some(value) = values.get(&*name.base) else {
        return false;
    };
    match name.index {
        None => true,
        Some(i) => match value {
            Value::Array(items) => usize::try_from(i).is_ok_and(|i| i < items.len()),
            Value::Object(items) => items.contains_key(&i.to_string()),
            _ => false,
        },
    }
}

/// The printed lines as a table under `title`.
pub fn text(title: &str, entries: &[(&IndexedName, f64)]) -> String {
    let names: Vec<String> = entries.iter().map(|(n, _)| n.to_string()).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut out = format!("{title}\n");
    for (name, (_, value)) in names.iter().zip(entries) {
        out.push_str(&format!(
            "  {name:<width$}  {}\n",
            super::output::format_number(*value)
        ));
    }
    out
}

/// The printed lines as JSON: a family's members gathered into an array when their
/// indices are 0..n, an object keyed by index otherwise (as in the `values` object); a
/// non-finite number is `null`.
pub fn report_json(entries: &[(&IndexedName, f64)]) -> Value {
    let number = |v: f64| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number);
    let mut groups: BTreeMap<&str, Vec<(Option<i64>, f64)>> = BTreeMap::new();
    for (name, value) in entries {
        groups
            .entry(&*name.base)
            .or_default()
            .push((name.index, *value));
    }
    let mut out = Map::new();
    for (base, members) in groups {
        let value = match members.as_slice() {
            [(None, v)] => number(*v),
            _ if members
                .iter()
                .enumerate()
                .all(|(k, (i, _))| *i == Some(k as i64)) =>
            {
                Value::Array(members.iter().map(|(_, v)| number(*v)).collect())
            }
            _ => Value::Object(
                members
                    .iter()
                    .map(|(i, v)| (i.unwrap_or(0).to_string(), number(*v)))
                    .collect(),
            ),
        };
        out.insert(base.to_string(), value);
    }
    Value::Object(out)
}
