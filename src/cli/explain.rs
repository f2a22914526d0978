//! `catopt explain FILE`: a composite in plain words and tables.
//!
//! It says what the pushout made of the boxes' variables (the state space: each global
//! variable, its shape, its coordinates, and the box ports identified with it), how each box
//! reads its variables and adds its gradient back (gather and scatter), what is communicated
//! per step, and the update formula of the discrete system. Large composites are summarised
//! by box type so that the output stays bounded.

use super::run::{load_problem_with, Failure};
use super::{EXIT_BAD_INPUT, EXIT_OK};
use crate::check::program::{Program, Solve};
use crate::lower::Problem;
use crate::method_spec::MethodClass;
use clap::Args;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Above this many rows a table is cut, and above this many boxes boxes are summarised by type.
pub const ROW_LIMIT: usize = 40;

/// At most this many partial derivatives are written out in one sum.
const TERMS_LISTED: usize = 4;

/// At most this many ports are listed for one junction.
const PORTS_LISTED: usize = 6;

/// The arguments of `catopt explain`.
#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// The .opt file.
    pub file: PathBuf,
    /// The composite to explain (default: the one with a solve block, or the only one).
    #[arg(long)]
    pub composite: Option<String>,
    /// Where data files may be read from.
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Also say how the boxes split over this many ranks (`catopt run --backend mpi` under
    /// `mpirun -n N`) and how many bytes they exchange per step (1 to 65536).
    #[arg(long, value_name = "N", value_parser = parse_ranks)]
    pub ranks: Option<usize>,
}

/// The most ranks `--ranks` accepts.
pub const MAX_RANKS: usize = 65536;

fn parse_ranks(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_RANKS).contains(&n) => Ok(n),
        _ => Err(format!(
            "--ranks must be a whole number from 1 to {MAX_RANKS}"
        )),
    }
}

/// Runs `catopt explain` and returns the exit code.
pub fn run(args: &ExplainArgs) -> i32 {
    match load_problem_with(&args.file, args.composite.as_deref(), None, &args.data) {
        Ok((program, problem)) => {
            super::render::print_stdout(&explain(&program, &problem));
            if let Some(ranks) = args.ranks {
                match distribution(&problem, ranks) {
                    Ok(text) => super::render::print_stdout(&text),
                    Err(message) => {
                        crate::warn_line!("error: {message}");
                        return EXIT_BAD_INPUT;
                    }
                }
            }
            EXIT_OK
        }
        Err(Failure::Reported) => EXIT_BAD_INPUT,
        Err(Failure::Message(message)) => {
            crate::warn_line!("error: {message}");
            EXIT_BAD_INPUT
        }
    }
}

/// How the composite's boxes split over `ranks` ranks and what they exchange per step
/// (the same schedule `catopt run --backend mpi` follows).
pub fn distribution(problem: &Problem, ranks: usize) -> Result<String, String> {
    if ranks == 0 {
        return Err("--ranks must be at least 1".into());
    }
    let plan = crate::run::plan::Plan::for_problem(problem).map_err(|e| e.to_string())?;
    let traffic = crate::run::distribute::RankSchedule::traffic(&plan, ranks);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Across {ranks} rank{} (catopt run --backend mpi)\n",
        if ranks == 1 { "" } else { "s" }
    );
    out.push_str(
        "Each rank evaluates a contiguous share of the kernel calls, balanced by cost, and\n\
         reads and updates only its boxes' coordinates. Per step it sends, for every coordinate\n\
         shared with other ranks, its partial sum (if its boxes come first in plan order) or\n\
         its own contributions one by one, and every rank sharing the coordinate adds them up\n\
         in plan order: the serial backend's bits. Then each rank all-gathers one number per\n\
         kernel call it ran (the objective), one per norm block it summed, and an interrupt\n\
         flag.\n\n",
    );
    out.push_str("| rank | boxes | coordinates | numbers exchanged | numbers all-gathered |\n");
    out.push_str("|---|---|---|---|---|\n");
    for r in 0..ranks.min(ROW_LIMIT) {
        let _ = writeln!(
            out,
            "| {r} | {} | {} | {} | {} |",
            traffic.boxes[r],
            traffic.coordinates[r],
            traffic.exchange_numbers[r],
            traffic.gather_numbers[r]
        );
    }
    if ranks > ROW_LIMIT {
        let _ = writeln!(out, "| ... | | | | |");
    }
    let _ = writeln!(
        out,
        "\nShared coordinates: {}; entries sent only to sum a norm block in one place: {}.\n\
         Bytes per step (all ranks, all-gathered numbers counted once per receiver): {}.",
        traffic.shared_coordinates,
        traffic.norm_transfers,
        traffic.bytes_per_step()
    );
    Ok(out)
}

/// `a..b` for a contiguous run of coordinates, a single number, or a short list.
fn coordinates(coords: &[usize]) -> String {
    match coords {
        [] => "none".into(),
        [one] => one.to_string(),
        _ if coords.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("{}..{}", coords[0], coords[coords.len() - 1] + 1)
        }
        _ if coords.len() <= 8 => coords
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        _ => format!(
            "{}, {}, ... ({} coordinates)",
            coords[0],
            coords[1],
            coords.len()
        ),
    }
}

/// "1 number" / "3 numbers".
fn numbers(count: usize) -> String {
    if count == 1 {
        "1 number".into()
    } else {
        format!("{count} numbers")
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// A box's local variables: its ports (named by the objective), then its private variables.
struct LocalLayout {
    /// (name, offset, length) per local variable, ports first.
    pieces: Vec<(String, usize, usize)>,
    /// How many of `pieces` are ports.
    port_count: usize,
}

fn local_layout(program: &Program, problem: &Problem, box_type: usize) -> LocalLayout {
    let ty = &problem.box_types[box_type];
    let mut pieces = Vec::new();
    let mut offset = 0;
    if let Some((_, objective)) = program.objective(&ty.name) {
        for port in &objective.ports {
            pieces.push((port.name.clone(), offset, port.shape.len()));
            offset += port.shape.len();
        }
    }
    let port_count = pieces.len();
    for var in &ty.private {
        pieces.push((var.name.clone(), var.offset, var.shape.len()));
    }
    LocalLayout { pieces, port_count }
}

/// The whole explanation as text.
pub fn explain(program: &Program, problem: &Problem) -> String {
    let diagram = &problem.diagram;
    let composite = &problem.composite;
    let comp = &program.composites[problem.composite_id.0 as usize];
    let box_count = diagram.box_count();
    let junction_count = diagram.junction_count();
    let apex = problem.variable_count();
    let layouts: Vec<LocalLayout> = (0..problem.box_types.len())
        .map(|t| local_layout(program, problem, t))
        .collect();
    // Ports of each junction (CSR by junction), in box order.
    let mut junction_port_start = vec![0usize; junction_count + 1];
    for &j in diagram.port_junction() {
        junction_port_start[j + 1] += 1;
    }
    for j in 0..junction_count {
        junction_port_start[j + 1] += junction_port_start[j];
    }
    let mut fill = junction_port_start.clone();
    let mut junction_ports = vec![0usize; diagram.port_count()];
    for (port, &j) in diagram.port_junction().iter().enumerate() {
        junction_ports[fill[j]] = port;
        fill[j] += 1;
    }
    // How many boxes read each coordinate (a coordinate read by two boxes is summed).
    let mut readers = vec![0u32; apex];
    for b in 0..box_count {
        let mut seen: Vec<usize> = composite.local_to_global(b).to_vec();
        seen.sort_unstable();
        seen.dedup();
        for g in seen {
            readers[g] += 1;
        }
    }
    let gathered: usize = *composite.box_offsets().last().unwrap_or(&0);
    let shared = readers.iter().filter(|&&r| r >= 2).count();
    let private_total: usize = (0..box_count)
        .map(|b| {
            problem.box_types[problem.box_type_of[b] as usize]
                .private
                .iter()
                .map(|v| v.shape.len())
                .sum::<usize>()
        })
        .sum();

    let mut out = String::new();
    let outer: Vec<String> = comp
        .outer_ports
        .iter()
        .map(|j| comp.junctions.name(j.0 as usize).to_string())
        .collect();
    let _ = writeln!(
        out,
        "Composite `{}({})` from {}\n",
        problem.name,
        outer.join(", "),
        program.source.name
    );
    let _ = writeln!(
        out,
        "It is an undirected wiring diagram with {} ({}), {} (shared variables) and {}.\n\
         Composing the boxes by pushout identifies every port with the junction it is wired to,\n\
         so the composite's state is one vector z of {}: each junction's numbers once,\n\
         then each box's private variables. The composite objective is\n\
         F(z) = sum over boxes b of f_b(phi_b z), where phi_b picks box b's variables out of z.\n",
        plural(box_count, "box", "boxes"),
        plural(problem.box_types.len(), "box type", "box types"),
        plural(junction_count, "junction", "junctions"),
        plural(diagram.outer_port_count(), "outer port", "outer ports"),
        numbers(apex),
    );

    // 1. The state space.
    out.push_str("## State space (the pushout)\n\n");
    out.push_str("| variable | shape | coordinates of z | identified with (box.port) |\n");
    out.push_str("|---|---|---|---|\n");
    let mut rows = 0usize;
    let total_rows = junction_count
        + (0..box_count)
            .map(|b| {
                problem.box_types[problem.box_type_of[b] as usize]
                    .private
                    .len()
            })
            .sum::<usize>();
    'junctions: for j in 0..junction_count {
        if rows == ROW_LIMIT {
            break 'junctions;
        }
        rows += 1;
        let ports = &junction_ports[junction_port_start[j]..junction_port_start[j + 1]];
        let mut names: Vec<String> = ports
            .iter()
            .take(PORTS_LISTED)
            .map(|&p| {
                let b = diagram.port_box()[p];
                let k = p - diagram.box_ports(b).start;
                let layout = &layouts[problem.box_type_of[b] as usize];
                let port_name = layout
                    .pieces
                    .get(k)
                    .map(|piece| piece.0.clone())
                    .unwrap_or_else(|| format!("port {k}"));
                format!("{}.{port_name}", diagram.box_name(b))
            })
            .collect();
        if ports.len() > PORTS_LISTED {
            names.push(format!("... ({} ports)", ports.len()));
        }
        for (o, _) in diagram
            .outer_port_junction()
            .iter()
            .enumerate()
            .filter(|(_, &outer)| outer == j)
        {
            names.push(format!("outer port {o}"));
        }
        if names.is_empty() {
            names.push("no port (unused)".into());
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            diagram.junction_name(j),
            diagram.junction_shape(j),
            coordinates(composite.junction_variables(j)),
            names.join(", ")
        );
    }
    'boxes: for b in 0..box_count {
        let ty = &problem.box_types[problem.box_type_of[b] as usize];
        for var in &ty.private {
            if rows == ROW_LIMIT {
                break 'boxes;
            }
            rows += 1;
            let phi = composite.local_to_global(b);
            let _ = writeln!(
                out,
                "| {}.{} | {} | {} | private to box {} |",
                diagram.box_name(b),
                var.name,
                var.shape,
                coordinates(&phi[var.offset..var.offset + var.shape.len()]),
                diagram.box_name(b)
            );
        }
    }
    if total_rows > rows {
        let _ = writeln!(
            out,
            "| ... | | | {} more variables (junctions and private variables) |",
            total_rows - rows
        );
    }
    out.push('\n');

    // 2. Gather and scatter.
    out.push_str("## Boxes: gather and scatter\n\n");
    out.push_str(
        "Each step, box b gathers its local vector phi_b z (its ports, then its private\n\
         variables), computes its own gradient, and scatters it back: the gradient's entries\n\
         are added at the same coordinates of z.\n\n",
    );
    if box_count <= ROW_LIMIT {
        out.push_str("| box | objective | gathers (local <- coordinates of z) | numbers |\n");
        out.push_str("|---|---|---|---|\n");
        for b in 0..box_count {
            let t = problem.box_type_of[b] as usize;
            let phi = composite.local_to_global(b);
            let layout = &layouts[t];
            let reads: Vec<String> = layout
                .pieces
                .iter()
                .enumerate()
                .map(|(i, (name, offset, len))| {
                    let tag = if i < layout.port_count { "" } else { " (var)" };
                    format!(
                        "{name}{tag} <- {}",
                        coordinates(&phi[*offset..offset + len])
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                diagram.box_name(b),
                problem.box_types[t].name,
                reads.join("; "),
                phi.len()
            );
        }
    } else {
        // Summarise by box type.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); problem.box_types.len()];
        for b in 0..box_count {
            let list = &mut members[problem.box_type_of[b] as usize];
            if list.len() < 3 {
                list.push(b);
            }
        }
        let mut counts = vec![0usize; problem.box_types.len()];
        for &t in &problem.box_type_of {
            counts[t as usize] += 1;
        }
        let _ = writeln!(
            out,
            "{} boxes are summarised by box type (objective and data arguments):\n",
            box_count
        );
        out.push_str(
            "| box type | boxes | local variables (ports; private) | numbers per box | first boxes |\n",
        );
        out.push_str("|---|---|---|---|---|\n");
        for (t, ty) in problem.box_types.iter().enumerate().take(ROW_LIMIT) {
            let layout = &layouts[t];
            let ports: Vec<&str> = layout.pieces[..layout.port_count]
                .iter()
                .map(|p| p.0.as_str())
                .collect();
            let vars: Vec<&str> = layout.pieces[layout.port_count..]
                .iter()
                .map(|p| p.0.as_str())
                .collect();
            let first: Vec<String> = members[t]
                .iter()
                .map(|&b| diagram.box_name(b).to_string())
                .collect();
            let _ = writeln!(
                out,
                "| {} (type {t}) | {} | {}; {} | {} | {}{} |",
                ty.name,
                counts[t],
                ports.join(", "),
                if vars.is_empty() {
                    "none".into()
                } else {
                    vars.join(", ")
                },
                ty.compiled.num_inputs(),
                first.join(", "),
                if counts[t] > first.len() { ", ..." } else { "" }
            );
        }
        if problem.box_types.len() > ROW_LIMIT {
            let _ = writeln!(
                out,
                "| ... | | | | {} more box types |",
                problem.box_types.len() - ROW_LIMIT
            );
        }
    }
    out.push('\n');

    // 2b. Kernel calls.
    match super::kernels::kernels_section(problem) {
        Ok(section) => out.push_str(&section),
        Err(message) => {
            let _ = writeln!(out, "## Kernels per step\n\nNo plan: {message}\n");
        }
    }

    // 3. Communication.
    out.push_str("## Communication per step\n\n");
    let _ = writeln!(
        out,
        "Per step the boxes gather {} in total and scatter-add as many gradient entries back.\n\
         Shared coordinates of z (read by two or more boxes; their increments are summed): {}.\n\
         Private coordinates (a box's own variables; they never leave their box): {}.\n",
        numbers(gathered),
        shared,
        private_total,
    );
    // Junctions by number of boxes.
    let boxes_of = |j: usize| -> Vec<usize> {
        let mut list: Vec<usize> = junction_ports
            [junction_port_start[j]..junction_port_start[j + 1]]
            .iter()
            .map(|&p| diagram.port_box()[p])
            .collect();
        list.dedup();
        list
    };
    if junction_count <= ROW_LIMIT {
        out.push_str("| junction | numbers | sent to boxes | increments summed |\n");
        out.push_str("|---|---|---|---|\n");
        for j in 0..junction_count {
            let boxes = boxes_of(j);
            let names: Vec<String> = boxes
                .iter()
                .take(PORTS_LISTED)
                .map(|&b| diagram.box_name(b).to_string())
                .collect();
            let more = if boxes.len() > PORTS_LISTED {
                format!(", ... ({} boxes)", boxes.len())
            } else {
                String::new()
            };
            let ports = junction_port_start[j + 1] - junction_port_start[j];
            let _ = writeln!(
                out,
                "| {} | {} | {}{} | {} |",
                diagram.junction_name(j),
                diagram.junction_shape(j).len(),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
                more,
                ports
            );
        }
    } else {
        let mut by_degree: BTreeMap<usize, (usize, usize, Vec<String>)> = BTreeMap::new();
        for j in 0..junction_count {
            let ports = junction_port_start[j + 1] - junction_port_start[j];
            let entry = by_degree.entry(ports).or_default();
            entry.0 += 1;
            entry.1 += diagram.junction_shape(j).len();
            if entry.2.len() < 3 {
                entry.2.push(diagram.junction_name(j).to_string());
            }
        }
        let _ = writeln!(
            out,
            "{} junctions, grouped by how many ports are wired to them:\n",
            junction_count
        );
        out.push_str("| ports wired | junctions | numbers | first junctions |\n");
        out.push_str("|---|---|---|---|\n");
        for (ports, (count, size, first)) in &by_degree {
            let _ = writeln!(
                out,
                "| {ports} | {count} | {size} | {}{} |",
                first.join(", "),
                if *count > first.len() { ", ..." } else { "" }
            );
        }
    }
    out.push('\n');

    // 4. The update formula.
    out.push_str("## The discrete system\n\n");
    let solve = program
        .solves
        .iter()
        .find(|s| s.composite == problem.composite_id);
    out.push_str(&update_formula(problem, solve, &layouts));
    out
}

/// The method's formula, why it composes (or not), and what the backends exchange for it.
fn method_text(solve: Option<&Solve>, name: &str, lr: &str, beta: Option<&str>) -> String {
    let mut out = String::new();
    let resolved = super::settings::resolve(&super::settings::Overrides::default(), solve).ok();
    let written = solve.is_some_and(|s| s.method.is_some());
    let Some(settings) = resolved else {
        return format!(
            "The method `{name}` (its settings do not resolve; see `catopt check`).\n\n"
        );
    };
    let spec = settings.method.spec;
    let _ = writeln!(
        out,
        "Method: {} [{}], schedule {}{}.\n\n    {}\n",
        settings.method.describe(),
        spec.class.as_str(),
        settings.schedule.describe(),
        if written {
            " (the solve block's)"
        } else {
            " (no method in a solve block: gd; `catopt run` takes --method and --lr)"
        },
        spec.formula
    );
    out.push_str(
        "The gradient-descent functor sends each box's objective f_b to its gradient flow, and\n\
         composes the flows along the same diagram: shared coordinates add their boxes' terms,\n\
         g = sum_b phi_b^T grad f_b(phi_b x) = grad F(x).\n",
    );
    match (spec.class, name) {
        (MethodClass::Compositional, "gd") => {
            let _ = writeln!(
                out,
                "An Euler step of size lr = {lr} of that flow is gradient descent: the boxes' own\n\
                 steps added on shared coordinates are exactly gradient descent on F.\n\n    \
                 z(k+1) = z(k) - lr * sum_b phi_b^T grad f_b(phi_b z(k))\n"
            );
        }
        (MethodClass::Compositional, _) => {
            let _ = writeln!(
                out,
                "{name} is not a plain Euler step, but its update is linear in the gradient, with\n\
                 step sizes and constants shared by every box: its velocity (or look-ahead) is a\n\
                 linear function of past gradients, so each box's own update added on shared\n\
                 coordinates equals {name} on F.{}\n",
                match beta {
                    Some(beta) if name == "momentum" => format!(
                        "\n\n    vel(k+1) = {beta} * vel(k) + sum_b phi_b^T grad f_b(phi_b z(k))\n    \
                         z(k+1)   = z(k) - lr * vel(k+1)"
                    ),
                    _ => String::new(),
                }
            );
        }
        (MethodClass::Coordinatewise, _) => out.push_str(
            "It rescales each coordinate by the history of its summed gradient: the distributed run\n\
             is exactly the method on F (distributed = central), but each box running it on its own\n\
             objective and adding the increments on shared coordinates would be another\n\
             algorithm (`catopt laws` measures by how much).\n\n",
        ),
        (MethodClass::Global, _) => out.push_str(
            "It needs the composite's value at trial points (a line search): each trial is one more\n\
             evaluation of every box's value, summed in plan order (`catopt laws` measures how far\n\
             each box searching its own step would be).\n\n",
        ),
    }
    out.push_str(match spec.class {
        MethodClass::Global => {
            "Per step, the threads backend shares memory; the mpi backend exchanges the shared\n\
             coordinates' gradient contributions and all-gathers the objective and norm partials\n\
             once per gradient evaluation, plus one all-gather of the objective per line-search\n\
             trial (and of the dot products the search needs).\n"
        }
        _ => {
            "Per step, the threads backend shares memory; the mpi backend exchanges the shared\n\
             coordinates' gradient contributions and all-gathers the objective and norm partials\n\
             once (see --ranks); the update itself is computed by every rank on its own\n\
             coordinates and needs no communication.\n"
        }
    });
    out
}

/// The method's name and step size as written in the solve block (or symbolic).
fn method_of(solve: Option<&Solve>) -> (String, String, Option<String>) {
    let Some(method) = solve.and_then(|s| s.method.as_ref()) else {
        return ("gd".into(), "lr".into(), None);
    };
    let param = |name: &str| {
        method
            .params
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, v)| format!("{v}"))
    };
    let lr = param("lr").unwrap_or_else(|| "lr".into());
    let beta = (method.name == "momentum" || method.name == "nesterov")
        .then(|| param("beta").unwrap_or_else(|| "0.9".into()));
    (method.name.clone(), lr, beta)
}

fn update_formula(problem: &Problem, solve: Option<&Solve>, layouts: &[LocalLayout]) -> String {
    let diagram = &problem.diagram;
    let (method, lr, beta) = method_of(solve);
    let mut out = String::new();
    out.push_str(&method_text(solve, &method, lr.as_str(), beta.as_deref()));
    // Per variable, for small composites.
    if diagram.junction_count() + problem.box_types.len() > 0 && diagram.box_count() <= ROW_LIMIT {
        out.push_str(if method == "gd" || method == "momentum" {
            "\nVariable by variable (d f/d v is box f's partial derivative in its local variable v):\n\n"
        } else {
            "\nThe summed gradient g, variable by variable (d f/d v is box f's partial derivative in\n\
             its local variable v); the update above reads it coordinate by coordinate:\n\n"
        });
        let mut terms: Vec<(String, Vec<String>)> = Vec::new();
        // Junctions: the partial derivatives of every box port wired to them.
        let mut junction_terms: Vec<Vec<String>> = vec![Vec::new(); diagram.junction_count()];
        for (port, (&b, &j)) in diagram
            .port_box()
            .iter()
            .zip(diagram.port_junction())
            .enumerate()
        {
            let k = port - diagram.box_ports(b).start;
            let layout = &layouts[problem.box_type_of[b] as usize];
            let name = layout
                .pieces
                .get(k)
                .map(|p| p.0.clone())
                .unwrap_or_else(|| format!("port{k}"));
            junction_terms[j].push(format!("d {}/d {name}", diagram.box_name(b)));
        }
        for (j, list) in junction_terms.into_iter().enumerate() {
            terms.push((diagram.junction_name(j).to_string(), list));
        }
        for b in 0..diagram.box_count() {
            let layout = &layouts[problem.box_type_of[b] as usize];
            for (name, _, _) in &layout.pieces[layout.port_count..] {
                terms.push((
                    format!("{}.{name}", diagram.box_name(b)),
                    vec![format!("d {}/d {name}", diagram.box_name(b))],
                ));
            }
        }
        let width = terms.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, list) in terms.iter().take(ROW_LIMIT) {
            let sum = match list.len() {
                0 => "0".to_string(),
                1 => list[0].clone(),
                n if n <= TERMS_LISTED => format!("({})", list.join(" + ")),
                n => format!(
                    "({} + ... + {}; {n} terms)",
                    list[..TERMS_LISTED - 1].join(" + "),
                    list[n - 1]
                ),
            };
            match (method.as_str(), &beta) {
                ("gd", _) => {
                    let _ = writeln!(out, "    {name:<width$} <- {name} - {lr} * {sum}");
                }
                ("momentum", Some(beta)) => {
                    let _ = writeln!(
                        out,
                        "    {name:<width$} <- {name} - {lr} * vel[{name}],  vel[{name}] <- {beta} * vel[{name}] + {sum}"
                    );
                }
                _ => {
                    let pad = width - name.len();
                    let _ = writeln!(out, "    g[{name}]{:pad$} = {sum}", "");
                }
            }
        }
        if terms.len() > ROW_LIMIT {
            let _ = writeln!(
                out,
                "    ... and {} more variables",
                terms.len() - ROW_LIMIT
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(text: &str, composite: &str) -> (Program, Problem) {
        crate::lower::lower_text(text, Some(composite)).expect("checks and lowers")
    }

    const FIRST: &str = "
        objective f1(b: real) { var a: real; minimize (a - 1)^2 + (b - 2)^2; }
        objective f2(b: real) { var c: real = 0; minimize (b - 4)^2 + (c + 1)^2; }
        composite total() { f1(b); f2(b); }
        solve total { method = gd(lr = 0.1); steps = 200; }
    ";

    #[test]
    fn the_first_example_is_explained_variable_by_variable() {
        let (program, problem) = lowered(FIRST, "total");
        let text = explain(&program, &problem);
        assert!(text.contains("| b | real | 0 | f1.b, f2.b |"), "{text}");
        assert!(
            text.contains("| f1.a | real | 1 | private to box f1 |"),
            "{text}"
        );
        assert!(
            text.contains("| f1 | f1 | b <- 0; a (var) <- 1 | 2 |"),
            "{text}"
        );
        assert!(text.contains("gather 4 numbers in total"), "{text}");
        assert!(text.contains("summed): 1."), "{text}");
        assert!(text.contains("their box): 2."), "{text}");
        assert!(
            text.contains("b    <- b - 0.1 * (d f1/d b + d f2/d b)"),
            "{text}"
        );
        assert!(text.contains("f2.c <- f2.c - 0.1 * d f2/d c"), "{text}");
    }

    #[test]
    fn each_method_is_explained_by_its_class() {
        let text = |method: &str| {
            let (program, problem) = lowered(
                &FIRST.replace("method = gd(lr = 0.1)", &format!("method = {method}")),
                "total",
            );
            explain(&program, &problem)
        };
        let momentum = text("momentum(lr = 0.1, beta = 0.5)");
        assert!(momentum.contains("[compositional]"), "{momentum}");
        assert!(
            !momentum.contains("gradient descent: the boxes"),
            "{momentum}"
        );
        assert!(
            momentum.contains("momentum is not a plain Euler step"),
            "{momentum}"
        );
        assert!(momentum.contains("vel(k+1) = 0.5 * vel(k)"), "{momentum}");
        let adam = text("adam(lr = 0.1)");
        assert!(adam.contains("[coordinatewise]"), "{adam}");
        assert!(adam.contains("g[b]    = (d f1/d b + d f2/d b)"), "{adam}");
        let armijo = text("armijo(direction = adam)");
        assert!(armijo.contains("[global]"), "{armijo}");
        assert!(armijo.contains("direction = adam"), "{armijo}");
        assert!(armijo.contains("per line-search\ntrial"), "{armijo}");
        let gd = text("gd(lr = 0.1)");
        assert!(gd.contains("exactly gradient descent on F"), "{gd}");
    }

    #[test]
    fn large_composites_are_summarised_in_bounded_output() {
        let (program, problem) = lowered(
            "objective q(a: real, b: real) { var s: real; minimize (a - b)^2 + s^2; }
             composite chain() { for i in 0..5000 { q(x[i], x[i + 1]); } }",
            "chain",
        );
        let text = explain(&program, &problem);
        assert!(text.lines().count() < 150, "{} lines", text.lines().count());
        assert!(
            text.contains("| q (type 0) | 5000 | a, b; s | 3 | q[0], q[1], q[2], ... |"),
            "{text}"
        );
        // 4999 inner junctions have two ports, the two ends one.
        assert!(text.contains("| 2 | 4999 | 4999 |"), "{text}");
        assert!(text.contains("| 1 | 2 | 2 |"), "{text}");
        assert!(text.contains("gather 15000 numbers"), "{text}");
    }

    #[test]
    fn coordinates_are_compact() {
        assert_eq!(coordinates(&[3]), "3");
        assert_eq!(coordinates(&[3, 4, 5]), "3..6");
        assert_eq!(coordinates(&[3, 5]), "3, 5");
    }
}
