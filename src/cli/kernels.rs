//! `catopt explain`'s section on kernel calls: how the run evaluates the box types (batched
//! or box by box) and what per-box data each box type reads.

use super::explain::ROW_LIMIT;
use crate::lower::Problem;
use crate::run::plan::Plan;
use std::fmt::Write;

/// The `## Kernels per step` section: one row per box type, with its boxes, its per-box
/// data, how its boxes are evaluated and how many kernel calls that makes per step.
pub fn kernels_section(problem: &Problem) -> Result<String, String> {
    let plan = Plan::for_problem(problem).map_err(|e| e.to_string())?;
    let mut out = String::new();
    out.push_str("## Kernels per step\n\n");
    let _ = writeln!(
        out,
        "Boxes of one objective whose data arguments have the same shapes are one box type:\n\
         data that differ from box to box in value only are per-box data, which each box reads\n\
         from the plan as it reads its variables. Each evaluation runs {} ({}).\n",
        crate::name::counted(plan.chunk_count(), "kernel call"),
        crate::name::counted(plan.groups().len(), "box type"),
    );
    out.push_str("| box type | boxes | per-box data (numbers per box) | evaluated | calls |\n");
    out.push_str("|---|---|---|---|---|\n");
    for group in plan.groups().iter().take(ROW_LIMIT) {
        let t = problem.box_type_of[group.boxes[0] as usize] as usize;
        let objective = &group.objective;
        let data = match (objective.raw_data_len(), objective.data_len()) {
            (0, _) => "none".to_string(),
            (raw, all) if raw == all => raw.to_string(),
            (raw, all) => format!("{raw} (+ {} folded from them)", all - raw),
        };
        let (evaluated, calls) = if group.is_batched() {
            let size = group.chunk_size();
            let kernels = match group.kernel_note() {
                crate::numerics::KernelNote::Interpreted => String::new(),
                note => format!("; {note}"),
            };
            (
                format!("batched, up to {size} boxes per call{kernels}"),
                group.boxes.len().div_ceil(size),
            )
        } else if objective.is_batchable() {
            ("one box".to_string(), group.boxes.len())
        } else {
            (
                "box by box (vectors and matrices)".to_string(),
                group.boxes.len(),
            )
        };
        let _ = writeln!(
            out,
            "| {} (type {t}) | {} | {data} | {evaluated} | {calls} |",
            problem.box_types[t].name,
            group.boxes.len(),
        );
    }
    if plan.groups().len() > ROW_LIMIT {
        let _ = writeln!(
            out,
            "| ... | | | | {} more box types |",
            plan.groups().len() - ROW_LIMIT
        );
    }
    out.push('\n');
    Ok(out)
}
