//! `catopt graph FILE`: draws a composite's undirected wiring diagram.
//!
//! The drawing is Graphviz DOT built from the petgraph view of the flat diagram
//! ([`WiringDiagram::to_graph`]): boxes are labelled nodes with one cell per port, junctions
//! are dots named by their variables, the composite is a framed cluster whose outer ports
//! sit on its rim, and nested composites (box labels `outer.inner`) are clusters inside it.
//! SVG, PNG and PDF are produced by running Graphviz `dot -T<format>` when it is on `PATH`;
//! the format is `--format`, or else the `-o` file's extension.

use super::render::OutputFile;
use super::run::{load_problem_with, Failure};
use super::{EXIT_BAD_INPUT, EXIT_MISSING_TOOL, EXIT_OK};
use crate::category::{DiagramNode, WiringDiagram};
use crate::check::program::{Callee, CompositeId, Program};
use crate::lower::Problem;
use clap::{Args, ValueEnum};
use petgraph::visit::EdgeRef;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Diagrams with more boxes than this are refused unless `--max-boxes` raises the limit.
pub const DEFAULT_MAX_BOXES: usize = 2000;

/// Output formats for `catopt graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT text.
    Dot,
    /// SVG, rendered by Graphviz `dot` (must be on PATH).
    Svg,
    /// PNG, rendered by Graphviz `dot` (must be on PATH).
    Png,
    /// PDF, rendered by Graphviz `dot` (must be on PATH).
    Pdf,
}

impl GraphFormat {
    /// The format an `-o` file's extension names (any case): `.dot` and `.gv` are DOT text.
    pub fn from_extension(extension: &str) -> Option<GraphFormat> {
        match extension.to_ascii_lowercase().as_str() {
            "dot" | "gv" => Some(GraphFormat::Dot),
            "svg" => Some(GraphFormat::Svg),
            "png" => Some(GraphFormat::Png),
            "pdf" => Some(GraphFormat::Pdf),
            _ => None,
        }
    }

    /// The name Graphviz gives the format (`dot -Tsvg`), also the `--format` value.
    pub fn name(self) -> &'static str {
        match self {
            GraphFormat::Dot => "dot",
            GraphFormat::Svg => "svg",
            GraphFormat::Png => "png",
            GraphFormat::Pdf => "pdf",
        }
    }
}

/// The formats, for messages.
const FORMATS_HELP: &str =
    "the formats are .dot or .gv (DOT text), .svg, .png and .pdf (drawn by Graphviz `dot`)";

/// The format of `catopt graph`: `--format`, or else the `-o` file's extension (DOT on
/// stdout, for `-o -`, and for a file without an extension, such as `/dev/null`). An
/// unknown extension, or one that contradicts `--format` (DOT text in `p.png`), is refused.
pub fn choose_format(
    format: Option<GraphFormat>,
    output: Option<&Path>,
) -> Result<GraphFormat, String> {
    let extension = output
        .filter(|p| p.as_os_str() != "-")
        .and_then(Path::extension)
        .map(|e| e.to_string_lossy().into_owned());
    let Some(extension) = extension else {
        return Ok(format.unwrap_or(GraphFormat::Dot));
    };
    let path = output
        .map(Path::display)
        .expect("an extension comes from a path");
    match (GraphFormat::from_extension(&extension), format) {
        (None, None) => Err(format!(
            "-o {path}: unknown extension `.{extension}`\n  help: {FORMATS_HELP}; or choose one \
             with --format dot|svg|png|pdf"
        )),
        (Some(by_name), Some(asked)) if by_name != asked => Err(format!(
            "-o {path} names a .{extension} file, but --format is {}\n  help: name the file \
             FILE.{} or leave --format out ({FORMATS_HELP})",
            asked.name(),
            asked.name()
        )),
        (by_name, asked) => Ok(asked.or(by_name).unwrap_or(GraphFormat::Dot)),
    }
}

/// The arguments of `catopt graph`.
#[derive(Args, Debug, Clone)]
pub struct GraphArgs {
    /// The .opt file.
    pub file: PathBuf,
    /// The composite to draw (default: the one with a solve block, or the only one).
    #[arg(long)]
    pub composite: Option<String>,
    /// Where data files may be read from.
    #[command(flatten)]
    pub data: super::DataArgs,
    /// dot, svg, png or pdf (default: from the -o file's extension, .dot/.gv, .svg, .png or
    /// .pdf; dot on stdout).
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
    /// Write to this file instead of stdout (atomically; `-` is stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace a write-protected -o file.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Refuse to draw diagrams with more boxes than this.
    #[arg(long, default_value_t = DEFAULT_MAX_BOXES)]
    pub max_boxes: usize,
}

/// Runs `catopt graph` and returns the exit code.
pub fn run(args: &GraphArgs) -> i32 {
    match run_inner(args) {
        Ok(()) => EXIT_OK,
        Err(GraphFailure::Reported) => EXIT_BAD_INPUT,
        Err(GraphFailure::Message(message)) => {
            crate::warn_line!("error: {message}");
            EXIT_BAD_INPUT
        }
        Err(GraphFailure::Output(message)) => {
            crate::warn_line!("error: {message}");
            super::EXIT_OUTPUT_FAILED
        }
        Err(GraphFailure::NoGraphviz(message)) => {
            crate::warn_line!("error: {message}");
            EXIT_MISSING_TOOL
        }
    }
}

enum GraphFailure {
    Reported,
    Message(String),
    /// The -o file could not be written.
    Output(String),
    NoGraphviz(String),
}

impl From<Failure> for GraphFailure {
    fn from(failure: Failure) -> GraphFailure {
        match failure {
            Failure::Reported => GraphFailure::Reported,
            Failure::Message(message) => GraphFailure::Message(message),
        }
    }
}

fn run_inner(args: &GraphArgs) -> Result<(), GraphFailure> {
    let format =
        choose_format(args.format, args.output.as_deref()).map_err(GraphFailure::Message)?;
    let output = args.output.as_deref().map(|path| OutputFile {
        path,
        what: "-o",
        force: args.force,
        stdout_ok: true,
    });
    if let Some(output) = &output {
        output.check().map_err(GraphFailure::Message)?;
    }
    let (program, problem) =
        load_problem_with(&args.file, args.composite.as_deref(), None, &args.data)?;
    let dot = diagram_dot(&program, &problem, args.max_boxes).map_err(GraphFailure::Message)?;
    let bytes = match format {
        GraphFormat::Dot => dot.into_bytes(),
        drawing => render(&dot, drawing).map_err(|e| match e {
            RenderError::NotInstalled => GraphFailure::NoGraphviz(no_graphviz(drawing)),
            RenderError::Failed(message) => GraphFailure::Message(message),
        })?,
    };
    match output {
        Some(output) => output.write(&bytes).map_err(GraphFailure::Output),
        None => {
            super::render::print_bytes(&bytes);
            Ok(())
        }
    }
}

/// The message printed when Graphviz is missing and `format` needs it.
pub fn no_graphviz(format: GraphFormat) -> String {
    format!(
        "Graphviz's `dot` program was not found on PATH, and {} output needs it.\n  \
         help: install the `graphviz` package (Debian/Ubuntu: `apt-get install graphviz`; \
         Fedora: `dnf install graphviz`; macOS: `brew install graphviz`), \
         or write DOT (`-o FILE.dot`, or `--format dot`) and render it elsewhere",
        format.name().to_uppercase()
    )
}

/// Why rendering with Graphviz failed.
#[derive(Debug)]
pub enum RenderError {
    /// `dot` is not on PATH.
    NotInstalled,
    /// `dot` ran and failed (its message).
    Failed(String),
}

/// Renders DOT text with Graphviz `dot -T<format>` (for [`GraphFormat::Dot`], the text).
pub fn render(dot: &str, format: GraphFormat) -> Result<Vec<u8>, RenderError> {
    if format == GraphFormat::Dot {
        return Ok(dot.as_bytes().to_vec());
    }
    let mut child = match Command::new("dot")
        .arg(format!("-T{}", format.name()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RenderError::NotInstalled)
        }
        Err(e) => {
            return Err(RenderError::Failed(format!(
                "cannot run Graphviz `dot`: {e}"
            )))
        }
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let text = dot.to_owned();
    // Feed the input from another thread so that a large output cannot deadlock the pipes.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| RenderError::Failed(format!("Graphviz `dot` failed: {e}")))?;
    let written = writer.join();
    if !output.status.success() {
        return Err(RenderError::Failed(format!(
            "Graphviz `dot` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    if let Ok(Err(e)) = written {
        return Err(RenderError::Failed(format!(
            "cannot feed Graphviz `dot`: {e}"
        )));
    }
    Ok(output.stdout)
}

/// Escapes text for a DOT double-quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes text for a Graphviz HTML-like label.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The label path of a name: everything before its last `.` (`left.inner.f` -> `left.inner`),
/// empty for a top-level name.
fn cluster_of(name: &str) -> &str {
    name.rfind('.').map(|i| &name[..i]).unwrap_or("")
}

/// The composite that each nested box label path instantiates (`left` -> `pair`).
fn nested_composites(program: &Program, root: CompositeId) -> HashMap<String, String> {
    fn walk(
        program: &Program,
        composite: CompositeId,
        prefix: &str,
        out: &mut HashMap<String, String>,
    ) {
        let comp = &program.composites[composite.0 as usize];
        for call in comp.boxes.iter() {
            if let Callee::Composite(inner) = call.callee {
                let path = if prefix.is_empty() {
                    call.label.to_string()
                } else {
                    format!("{prefix}.{}", call.label)
                };
                out.insert(
                    path.clone(),
                    program.composites[inner.0 as usize].name.clone(),
                );
                walk(program, inner, &path, out);
            }
        }
    }
    let mut out = HashMap::new();
    walk(program, root, "", &mut out);
    out
}

/// Adds the cluster `path` and its missing ancestors, each registered with its parent.
fn ensure_cluster(clusters: &mut BTreeMap<String, Cluster>, path: &str) {
    if clusters.contains_key(path) {
        return;
    }
    let parent = cluster_of(path);
    ensure_cluster(clusters, parent);
    clusters.insert(path.to_string(), Cluster::default());
    if let Some(p) = clusters.get_mut(parent) {
        p.children.push(path.to_string());
    }
}

/// What one cluster (the composite, or a nested composite) holds.
#[derive(Default)]
struct Cluster {
    boxes: Vec<usize>,
    junctions: Vec<usize>,
    children: Vec<String>,
}

/// The DOT drawing of a lowered composite's wiring diagram.
///
/// Boxes are HTML-labelled nodes `b{index}` with one cell per port (`p{k}`), junctions are
/// point nodes `j{index}` labelled with their variable (and shape when not scalar), outer
/// ports are nodes `o{index}` on the rim of the composite's frame (`cluster_root`), nested
/// composites are clusters named after their label paths. Refuses (with a message) a
/// diagram with more than `max_boxes` boxes.
pub fn diagram_dot(
    program: &Program,
    problem: &Problem,
    max_boxes: usize,
) -> Result<String, String> {
    let diagram = &problem.diagram;
    if diagram.box_count() > max_boxes {
        return Err(format!(
            "composite `{}` has {} boxes and {} junctions, more than the drawing limit of {} boxes: \
             such a drawing would be unreadable and Graphviz would take very long.\n  \
             help: draw a smaller instance (a smaller loop bound), raise the limit with --max-boxes, \
             or read the summary of `catopt explain`",
            problem.name,
            diagram.box_count(),
            diagram.junction_count(),
            max_boxes
        ));
    }
    let comp = &program.composites[problem.composite_id.0 as usize];
    let nested = nested_composites(program, problem.composite_id);
    let graph = diagram.to_graph();

    // Sort the nodes into clusters by their label paths.
    let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
    clusters.insert(String::new(), Cluster::default());
    let mut outer_nodes = Vec::new();
    for node in graph.node_indices() {
        match graph[node] {
            DiagramNode::Box(b) => {
                let name = diagram.box_name(b).to_string();
                let path = cluster_of(&name).to_string();
                ensure_cluster(&mut clusters, &path);
                clusters.get_mut(&path).expect("ensured").boxes.push(b);
            }
            DiagramNode::Junction(j) => {
                let name = diagram.junction_name(j).to_string();
                let path = cluster_of(&name).to_string();
                ensure_cluster(&mut clusters, &path);
                clusters.get_mut(&path).expect("ensured").junctions.push(j);
            }
            DiagramNode::OuterPort(o) => outer_nodes.push(o),
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "graph {} {{", quoted(&problem.name));
    out.push_str(
        "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, nodesep=0.3, ranksep=0.5];\n  \
         node [fontname=\"Helvetica\", fontsize=11];\n  \
         edge [color=\"#4d4d4d\"];\n",
    );
    let outer_names: Vec<String> = comp
        .outer_ports
        .iter()
        .map(|j| comp.junctions.name(j.0 as usize).to_string())
        .collect();
    let root_label = format!("composite {}({})", problem.name, outer_names.join(", "));
    write_cluster(
        &mut out,
        program,
        problem,
        &clusters,
        &nested,
        "",
        &root_label,
        1,
    );
    // Outer ports: small squares on the frame's rim, wired to their junctions.
    for &o in &outer_nodes {
        let j = diagram.outer_port_junction()[o];
        let _ = writeln!(
            out,
            "  o{o} [shape=square, width=0.16, height=0.16, fixedsize=true, style=filled, fillcolor=\"#333333\", label=\"\", xlabel={}, tooltip={}];",
            quoted(&format!("outer port {o}: {}", diagram.junction_name(j))),
            quoted(&format!("outer port {o} = junction {}", diagram.junction_name(j)))
        );
    }
    // Wires: one per port (box cell to junction dot), one per outer port.
    for edge in graph.edge_references() {
        let (a, b) = (graph[edge.source()], graph[edge.target()]);
        match (a, b) {
            (DiagramNode::Box(bx), DiagramNode::Junction(j))
            | (DiagramNode::Junction(j), DiagramNode::Box(bx)) => {
                let port = *edge.weight() - diagram.box_ports(bx).start;
                let _ = writeln!(out, "  b{bx}:p{port}:s -- j{j};");
            }
            (DiagramNode::OuterPort(o), DiagramNode::Junction(j))
            | (DiagramNode::Junction(j), DiagramNode::OuterPort(o)) => {
                let _ = writeln!(out, "  j{j} -- o{o} [penwidth=2];");
            }
            _ => {}
        }
    }
    out.push_str("}\n");
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_cluster(
    out: &mut String,
    program: &Program,
    problem: &Problem,
    clusters: &BTreeMap<String, Cluster>,
    nested: &HashMap<String, String>,
    path: &str,
    label: &str,
    depth: usize,
) {
    let indent = "  ".repeat(depth);
    let id = if path.is_empty() {
        "cluster_root".to_string()
    } else {
        format!("cluster_{path}")
    };
    let style = if path.is_empty() {
        "style=\"rounded\"; penwidth=2; color=\"#333333\""
    } else {
        "style=\"rounded,dashed\"; color=\"#7a7a7a\""
    };
    let _ = writeln!(
        out,
        "{indent}subgraph {} {{\n{indent}  label={}; labeljust=l; {style};",
        quoted(&id),
        quoted(label)
    );
    let Some(cluster) = clusters.get(path) else {
        let _ = writeln!(out, "{indent}}}");
        return;
    };
    let diagram = &problem.diagram;
    for &b in &cluster.boxes {
        let _ = writeln!(
            out,
            "{indent}  b{b} [shape=plain, label=<{}>];",
            box_label(program, problem, b)
        );
    }
    for &j in &cluster.junctions {
        let name = diagram.junction_name(j).to_string();
        let shape = diagram.junction_shape(j);
        let short = name[cluster_of(&name).len()..].trim_start_matches('.');
        let text = if shape.is_scalar() {
            short.to_string()
        } else {
            format!("{short} : {shape}")
        };
        let _ = writeln!(
            out,
            "{indent}  j{j} [shape=point, width=0.11, xlabel={}, tooltip={}];",
            quoted(&text),
            quoted(&format!("junction {name} : {shape}"))
        );
    }
    let mut children = cluster.children.clone();
    children.sort();
    children.dedup();
    for child in children {
        if child == path {
            continue;
        }
        let short = &child[cluster_of(&child).len()..].trim_start_matches('.');
        let child_label = match nested.get(&child) {
            Some(composite) if composite != short => format!("{short} : {composite}"),
            _ => short.to_string(),
        };
        write_cluster(
            out,
            program,
            problem,
            clusters,
            nested,
            &child,
            &child_label,
            depth + 1,
        );
    }
    let _ = writeln!(out, "{indent}}}");
}

/// A box's HTML label: its name and objective, its private variables, one cell per port.
fn box_label(program: &Program, problem: &Problem, b: usize) -> String {
    let diagram: &WiringDiagram = &problem.diagram;
    let box_type = &problem.box_types[problem.box_type_of[b] as usize];
    let name = diagram.box_name(b).to_string();
    let short = &name[cluster_of(&name).len()..].trim_start_matches('.');
    let ports: Vec<String> = match program.objective(&box_type.name) {
        Some((_, objective)) => objective.ports.iter().map(|p| p.name.clone()).collect(),
        None => (0..diagram.box_ports(b).len())
            .map(|k| format!("port {k}"))
            .collect(),
    };
    let mut subtitle = format!("objective {}", box_type.name);
    if !box_type.private.is_empty() {
        let vars: Vec<&str> = box_type.private.iter().map(|v| v.name.as_str()).collect();
        let _ = write!(subtitle, "; var {}", vars.join(", "));
    }
    let columns = ports.len().max(1);
    let mut label = format!(
        "<table border=\"0\" cellborder=\"1\" cellspacing=\"0\" cellpadding=\"4\">\
         <tr><td colspan=\"{columns}\" bgcolor=\"#dce6f5\"><b>{}</b><br/><font point-size=\"9\">{}</font></td></tr><tr>",
        html(short),
        html(&subtitle)
    );
    if ports.is_empty() {
        label.push_str("<td><font point-size=\"9\">no ports</font></td>");
    }
    for (k, port) in ports.iter().enumerate() {
        let _ = write!(label, "<td port=\"p{k}\">{}</td>", html(port));
    }
    label.push_str("</tr></table>");
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(text: &str, composite: &str) -> (Program, Problem) {
        crate::lower::lower_text(text, Some(composite)).expect("checks and lowers")
    }

    const NESTED: &str = "
        objective f(x: real, y: real) { minimize (x - y)^2; }
        composite pair(x, z) { f(x, y); f(y, z); }
        composite top(a) { left: pair(a, m); right: pair(m, e); }
    ";

    #[test]
    fn nested_composites_become_clusters_and_outer_ports_are_wired() {
        let (program, problem) = lowered(NESTED, "top");
        let dot = diagram_dot(&program, &problem, 100).unwrap();
        assert!(dot.contains("subgraph \"cluster_root\""), "{dot}");
        assert!(dot.contains("subgraph \"cluster_left\""), "{dot}");
        assert!(dot.contains("label=\"left : pair\""), "{dot}");
        assert!(dot.contains("label=\"composite top(a)\""), "{dot}");
        // 4 boxes with 2 ports each, 1 outer port.
        assert_eq!(dot.matches(" -- j").count(), 8, "{dot}");
        assert_eq!(dot.matches("-- o0").count(), 1, "{dot}");
        // The inner junction `left.y` is drawn inside its cluster, named `y`.
        let left = dot.find("cluster_left").unwrap();
        let right = dot.find("cluster_right").unwrap();
        let y = dot.find("tooltip=\"junction left.y").unwrap();
        assert!(left < y && y < right, "{dot}");
    }

    #[test]
    fn large_diagrams_are_refused_with_a_message() {
        let (program, problem) = lowered(
            "objective q(a: real, b: real) { minimize (a - b)^2; }
             composite chain() { for i in 0..50 { q(x[i], x[i + 1]); } }",
            "chain",
        );
        let err = diagram_dot(&program, &problem, 10).unwrap_err();
        assert!(err.contains("50 boxes"), "{err}");
        assert!(err.contains("--max-boxes"), "{err}");
        assert!(diagram_dot(&program, &problem, 50).is_ok());
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(html("<a & b>"), "&lt;a &amp; b&gt;");
        assert_eq!(cluster_of("a.b[2].c"), "a.b[2]");
        assert_eq!(cluster_of("x[3]"), "");
    }

    #[test]
    fn the_extension_chooses_the_format_and_contradictions_are_refused() {
        let choose = |format, path: &str| choose_format(format, Some(Path::new(path)));
        assert_eq!(choose(None, "p.dot"), Ok(GraphFormat::Dot));
        assert_eq!(choose(None, "p.GV"), Ok(GraphFormat::Dot));
        assert_eq!(choose(None, "p.svg"), Ok(GraphFormat::Svg));
        assert_eq!(choose(None, "p1.png"), Ok(GraphFormat::Png));
        assert_eq!(choose(None, "p.Pdf"), Ok(GraphFormat::Pdf));
        assert_eq!(choose(None, "/dev/null"), Ok(GraphFormat::Dot));
        assert_eq!(choose(Some(GraphFormat::Svg), "-"), Ok(GraphFormat::Svg));
        assert_eq!(choose_format(None, None), Ok(GraphFormat::Dot));
        assert_eq!(
            choose(Some(GraphFormat::Dot), "p.txt"),
            Ok(GraphFormat::Dot)
        );
        let unknown = choose(None, "p.jpg").unwrap_err();
        assert!(unknown.contains("unknown extension `.jpg`"), "{unknown}");
        assert!(unknown.contains(".svg, .png and .pdf"), "{unknown}");
        let contradiction = choose(Some(GraphFormat::Dot), "p1.png").unwrap_err();
        assert!(contradiction.contains("--format is dot"), "{contradiction}");
    }
}
