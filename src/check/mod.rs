//! Check: name resolution, shape inference, data loading; produces the typed [`Program`].
//!
//! The checker runs after [`crate::syntax::parse`] and reports every independent error it
//! finds (duplicates, unknown names, shape mismatches, bad data, bad settings), with a
//! stable code (see `docs/errors.md`), a span, the culprit by name and a help line.
//! Loops are unrolled here; a composite's size is estimated and refused before anything
//! is allocated when it would exceed [`CheckOptions::memory_limit_bytes`].
//!
//! ```
//! use catopt::check::{check_source, CheckOptions};
//! use catopt::diagnostic::SourceFile;
//! let text = "objective f(b: real) { minimize (b - 2)^2; }\ncomposite c() { f(b); }\n";
//! let outcome = check_source(SourceFile::new("a.opt", text), &CheckOptions::default());
//! let program = outcome.program.expect("a good file");
//! assert_eq!(program.composites[0].junctions.len(), 1);
//! ```

mod composite;
pub mod constraint_types;
mod constraints;
mod consts;
mod data;
mod data_cache;
mod data_family;
mod data_values;
mod domains;
pub mod estimate;
mod objective;
pub mod program;
mod report;
mod report_calls;
pub mod report_types;
mod rows;
pub mod sampling;
mod solve;

pub use data_cache::files_read as data_files_read;
pub use program::Program;

use crate::diagnostic::{Diagnostic, Report, SourceFile, Span};
use crate::shape::Shape;
use crate::syntax::ast;
use consts::ConstState;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default memory limit: 8 GiB.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 8 << 30;

/// The deepest nesting of composites (a composite whose boxes are all objectives has depth
/// 1); deeper files are refused with E0602, so later stages may recurse on the nesting.
pub const MAX_COMPOSITE_DEPTH: usize = 256;

/// The default size limit of one data file: 1 GiB.
pub const DEFAULT_MAX_DATA_BYTES: u64 = 1 << 30;

/// The most errors reported for one file; more are summarised in one last diagnostic.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The most warnings reported for one file; more are summarised in one last warning (W0009).
pub const MAX_REPORTED_WARNINGS: usize = 20;

/// How to check a file.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The directory of the .opt file (set by [`check_file_with`]); the data root when
    /// `data_root` is `None`.
    pub base_dir: PathBuf,
    /// The data root: `csv(...)` paths are relative to it and must stay inside it (no
    /// absolute paths, no `..`, no symlinks leading out). Default `None`: `base_dir`.
    pub data_root: Option<PathBuf>,
    /// Lift the data root's confinement: absolute paths, `..` and symlinks leading out
    /// are accepted. Data files must still be regular files within `max_data_bytes`.
    pub allow_any_path: bool,
    /// The largest data file read, in bytes; larger files are refused before reading.
    /// Default [`DEFAULT_MAX_DATA_BYTES`] (1 GiB).
    pub max_data_bytes: u64,
    /// The most memory a checked program may need (data, boxes, junctions, decision
    /// variables); larger programs are refused before anything is allocated. Default
    /// [`DEFAULT_MEMORY_LIMIT_BYTES`] (8 GiB).
    pub memory_limit_bytes: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            base_dir: PathBuf::from("."),
            data_root: None,
            allow_any_path: false,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
        }
    }
}

/// The result of checking one file.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The typed program; `None` exactly when the report holds an error.
    pub program: Option<Program>,
    /// Every error and warning, in source order.
    pub report: Report,
}

/// Parses and checks a source text.
pub fn check_source(source: Arc<SourceFile>, options: &CheckOptions) -> CheckOutcome {
    let file = match crate::syntax::parse(&source) {
        Ok(file) => file,
        Err(diagnostics) => {
            return CheckOutcome {
                program: None,
                report: finish_report(source, diagnostics),
            }
        }
    };
    let mut checker = Checker::new(&source, &file, options);
    let program = checker.run();
    let diagnostics = std::mem::take(&mut checker.diagnostics);
    let report = finish_report(source, diagnostics);
    CheckOutcome {
        program: if report.has_errors() { None } else { program },
        report,
    }
}

/// Reads and checks a file with the default options; `csv(...)` paths are relative to its
/// directory and stay inside it. An unreadable file or one that is not UTF-8 gives a coded
/// diagnostic.
pub fn check_file(path: &Path) -> CheckOutcome {
    check_file_with(path, &CheckOptions::default())
}

/// [`check_file`] with options; `base_dir` is replaced by the file's directory (the data
/// root unless `options.data_root` is set). A UTF-8 byte order mark is skipped (spans are
/// offsets into the text after it).
pub fn check_file_with(path: &Path, options: &CheckOptions) -> CheckOutcome {
    let name = path.display().to_string();
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let options = CheckOptions {
        base_dir,
        ..options.clone()
    };
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            let source = SourceFile::new(name.clone(), "");
            let diagnostic = Diagnostic::error(
                "E0701",
                format!("cannot read `{name}`: {err}"),
                Span::new(0, 0),
            )
            .with_help("check the path and the file's permissions");
            return CheckOutcome {
                program: None,
                report: finish_report(source, vec![diagnostic]),
            };
        }
    };
    // A byte order mark is dropped before the SourceFile exists: spans are offsets into
    // the text after it, and line and column numbers are unchanged.
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    bytes.drain(..bom);
    match String::from_utf8(bytes) {
        Ok(text) => check_source(SourceFile::new(name, text), &options),
        Err(err) => {
            let at = err.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
            let source = SourceFile::new(name.clone(), text);
            let diagnostic = Diagnostic::error(
                "E0702",
                format!(
                    "`{name}` is not UTF-8 text (invalid byte at offset {})",
                    at + bom
                ),
                Span::new(at, at + 1),
            )
            .with_label("invalid UTF-8 here")
            .with_help("save the file as UTF-8; .opt files are text");
            CheckOutcome {
                program: None,
                report: finish_report(source, vec![diagnostic]),
            }
        }
    }
}

/// Sorts diagnostics into source order, clamps spans into the text, and caps the count.
fn finish_report(source: Arc<SourceFile>, mut diagnostics: Vec<Diagnostic>) -> Report {
    let len = source.text.len();
    for d in &mut diagnostics {
        clamp(&mut d.primary.0, len);
        for (span, _) in &mut d.secondary {
            clamp(span, len);
        }
    }
    diagnostics.sort_by_key(|d| d.primary.0.start);
    // Errors and warnings are capped apart: warnings never fail a file, however many.
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let (mut kept_errors, mut kept_warnings) = (0, 0);
    diagnostics.retain(|d| {
        let kept = if d.is_error() {
            &mut kept_errors
        } else {
            &mut kept_warnings
        };
        let cap = if d.is_error() {
            MAX_REPORTED_ERRORS
        } else {
            MAX_REPORTED_WARNINGS
        };
        *kept += 1;
        *kept <= cap
    });
    if warnings > MAX_REPORTED_WARNINGS {
        diagnostics.push(
            Diagnostic::warning(
                "W0009",
                format!(
                    "{} more warnings not shown ({warnings} in all)",
                    warnings - MAX_REPORTED_WARNINGS
                ),
                Span::new(len, len),
            )
            .with_help("fix the warnings above, or silence unused names with a leading `_`"),
        );
    }
    if errors > MAX_REPORTED_ERRORS {
        diagnostics.push(
            Diagnostic::error(
                "E0009",
                format!("too many errors ({errors}); showing the first {MAX_REPORTED_ERRORS}"),
                Span::new(len, len),
            )
            .with_help("fix the errors above first"),
        );
    }
    Report {
        source,
        diagnostics,
    }
}

fn clamp(span: &mut Span, len: usize) {
    span.start = span.start.min(len);
    span.end = span.end.clamp(span.start, len);
}

/// What `catopt check` prints for a good file: one line per item, with the boxes,
/// junctions and total scalar decision variables of each composite.
pub fn summary(program: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", program.source.name);
    for c in &program.consts {
        let _ = writeln!(
            out,
            "  const {} = {}",
            c.name,
            crate::name::short_number(c.value)
        );
    }
    let mut i = 0;
    while i < program.data.len() {
        let item = &program.data[i];
        // Rows read by box calls (`X[i]`) are views of a listed item, not items of their own.
        if item.rows_of.is_some() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if item.name.index.is_some() {
            while j < program.data.len()
                && program.data[j].name.base == item.name.base
                && program.data[j].value.shape == item.value.shape
                && program.data[j].rows_of.is_none()
            {
                j += 1;
            }
        }
        if j - i > 1 {
            let _ = writeln!(
                out,
                "  data {}[{}..={}]: {} ({} members)",
                item.name.base,
                item.name.index.unwrap_or(0),
                program.data[j - 1].name.index.unwrap_or(0),
                item.value.shape,
                j - i
            );
        } else {
            let _ = writeln!(out, "  data {}: {}", item.name, item.value.shape);
        }
        i = j;
    }
    for o in &program.objectives {
        let ports: Vec<String> = o.ports.iter().map(variable_summary).collect();
        let data: Vec<String> = o
            .data_params
            .iter()
            .map(|p| {
                let mark = if p.sampled { " sample" } else { "" };
                format!("{}: {}{mark}", p.name, p.shape)
            })
            .collect();
        let header = if data.is_empty() {
            ports.join(", ")
        } else {
            format!("{}; {}", ports.join(", "), data.join(", "))
        };
        let scalars: usize = o.ports.iter().chain(&o.vars).map(|v| v.shape.len()).sum();
        let sense = match o.sense {
            program::Sense::Minimize => "minimize",
            program::Sense::Maximize => "maximize",
        };
        let mut vars = crate::name::counted(o.vars.len(), "private variable");
        if o.vars.iter().any(|v| v.dual || !v.domain.is_trivial()) {
            let listed: Vec<String> = o.vars.iter().map(variable_summary).collect();
            let _ = write!(vars, " ({})", listed.join(", "));
        }
        let mut extras = String::new();
        if !o.penalties.is_empty() {
            let listed: Vec<String> = o
                .penalties
                .iter()
                .map(|p| {
                    let name = match p.variable {
                        program::VariableRef::Port(i) => &o.ports[i].name,
                        program::VariableRef::Var(i) => &o.vars[i].name,
                    };
                    format!("{}({name}, {})", p.kind.name(), p.weight)
                })
                .collect();
            let _ = write!(extras, ", penalties {}", listed.join(", "));
        }
        if !o.constraints.is_empty() {
            let rows: usize = o.constraints.iter().map(|c| c.rows).sum();
            let _ = write!(
                extras,
                ", {} ({})",
                crate::name::counted(o.constraints.len(), "equality constraint"),
                crate::name::counted(rows, "dual row")
            );
        }
        let _ = writeln!(
            out,
            "  objective {}({header}): {vars}, {}{extras}, {sense}",
            o.name,
            crate::name::counted(scalars, "decision variable")
        );
    }
    for c in &program.composites {
        let outer: Vec<String> = c
            .outer_ports
            .iter()
            .map(|j| c.junctions.name(j.0 as usize).to_string())
            .collect();
        let mut junctions = crate::name::counted(c.junctions.len(), "junction");
        let (in_domains, duals) = c.junctions.iter().fold((0, 0), |(d, u), j| {
            (
                d + usize::from(!j.domain.is_trivial()),
                u + usize::from(j.dual),
            )
        });
        if in_domains + duals > 0 {
            let mut parts = Vec::new();
            if in_domains > 0 {
                parts.push(format!("{in_domains} in a domain"));
            }
            if duals > 0 {
                parts.push(format!("{duals} dual"));
            }
            let _ = write!(junctions, " ({})", parts.join(", "));
        }
        let _ = writeln!(
            out,
            "  composite {}({}): {}, {junctions}, {}, about {} to run",
            c.name,
            outer.join(", "),
            crate::name::counted(c.boxes.len(), "box"),
            crate::name::counted(c.decision_variables as usize, "decision variable"),
            human_bytes(c.memory_estimate_bytes as f64)
        );
    }
    for s in &program.solves {
        let mut parts = Vec::new();
        if let Some(m) = &s.method {
            let params: Vec<String> = m
                .params
                .iter()
                .map(|(k, v)| format!("{k} = {}", v))
                .collect();
            parts.push(format!("{}({})", m.name, params.join(", ")));
        }
        if let Some(steps) = s.steps {
            parts.push(format!("steps = {steps}"));
        }
        if let Some(t) = s.tolerance {
            parts.push(format!("tolerance = {t:e}"));
        }
        if let Some(t) = s.rel_tolerance {
            parts.push(format!("rel_tolerance = {t:e}"));
        }
        if let Some(seed) = s.seed {
            parts.push(format!("seed = {seed}"));
        }
        if let Some(sampling) = &s.sampling {
            parts.push(sampling.to_string());
        }
        if !s.inits.is_empty() {
            parts.push(format!("{} init lines", s.inits.len()));
        }
        let _ = writeln!(
            out,
            "  solve {}: {}",
            program.composites[s.composite.0 as usize].name,
            parts.join(", ")
        );
    }
    for r in &program.reports {
        let printed = r.entries().count();
        let _ = writeln!(
            out,
            "  report {}: {}, {}",
            program.composites[r.composite.0 as usize].name,
            crate::name::counted(printed, "printed line"),
            crate::name::counted(r.lines.len() - printed, "let")
        );
    }
    out
}

/// What a global name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GlobalKind {
    Const,
    Data,
    Objective,
    Composite,
}

impl std::fmt::Display for GlobalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GlobalKind::Const => "a const",
            GlobalKind::Data => "a data item",
            GlobalKind::Objective => "an objective",
            GlobalKind::Composite => "a composite",
        })
    }
}

/// A global data name: one item or a family of members.
#[derive(Debug, Clone)]
pub(crate) enum DataEntry {
    Single(program::DataId),
    Family(data_family::FamilyMembers),
    Failed,
}

/// The checker's state for one file.
pub(crate) struct Checker<'a> {
    pub(crate) source: &'a SourceFile,
    pub(crate) file: &'a ast::File,
    pub(crate) options: &'a CheckOptions,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) globals: HashMap<String, (GlobalKind, Span)>,
    pub(crate) const_state: HashMap<String, ConstState>,
    pub(crate) data: Vec<program::DataItem>,
    pub(crate) data_names: HashMap<String, DataEntry>,
    pub(crate) data_bytes: u64,
    /// Csv files read and row views made (each file is read once).
    pub(crate) data_cache: data_cache::DataCache,
    pub(crate) objectives: Vec<Option<program::Objective>>,
    pub(crate) objective_names: HashMap<String, usize>,
    pub(crate) composites: Vec<Option<program::Composite>>,
    pub(crate) composite_names: HashMap<String, usize>,
    /// Scalar decision variables of each checked composite (for nesting and the memory estimate).
    pub(crate) composite_scalars: Vec<u64>,
    /// Flattened cost of each composite checked so far (for the memory estimate).
    pub(crate) composite_costs: Vec<estimate::Cost>,
    pub(crate) errors_seen: std::collections::HashSet<(&'static str, usize)>,
}

impl<'a> Checker<'a> {
    fn new(source: &'a SourceFile, file: &'a ast::File, options: &'a CheckOptions) -> Self {
        Checker {
            source,
            file,
            options,
            diagnostics: Vec::new(),
            globals: HashMap::new(),
            const_state: HashMap::new(),
            data: Vec::new(),
            data_names: HashMap::new(),
            data_bytes: 0,
            data_cache: Default::default(),
            objectives: Vec::new(),
            objective_names: HashMap::new(),
            composites: Vec::new(),
            composite_names: HashMap::new(),
            composite_scalars: Vec::new(),
            composite_costs: Vec::new(),
            errors_seen: Default::default(),
        }
    }

    /// Records an error or warning; the same code at the same place is reported once
    /// (a loop body is checked many times).
    pub(crate) fn error(&mut self, diagnostic: Diagnostic) {
        if self
            .errors_seen
            .insert((diagnostic.code, diagnostic.primary.0.start))
        {
            self.diagnostics.push(diagnostic);
        }
    }

    /// The source text of a span (shortened).
    pub(crate) fn snippet(&self, span: Span) -> String {
        let text = self.source.text.get(span.start..span.end).unwrap_or("");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > 40 {
            let short: String = text.chars().take(37).collect();
            format!("{short}...")
        } else {
            text
        }
    }

    /// A help line: "did you mean `x`?" for a close global name, else `fallback`.
    pub(crate) fn suggest(&self, name: &str, fallback: &str) -> String {
        let candidates = self.globals.keys().map(String::as_str);
        match closest(name, candidates) {
            Some(best) => format!("did you mean `{best}`?"),
            None => fallback.to_string(),
        }
    }

    /// Reports that something would need `bytes` of memory, more than the limit.
    pub(crate) fn memory_error(&mut self, span: Span, what: &str, bytes: f64) {
        let limit = self.options.memory_limit_bytes;
        self.error(
            Diagnostic::error(
                "E0601",
                format!(
                    "{what} would need about {} bytes ({}), more than the limit of {limit} bytes ({})",
                    bytes as u128,
                    human_bytes(bytes),
                    human_bytes(limit as f64)
                ),
                span,
            )
            .with_label("too large to fit in memory")
            .with_help("make the dimension or loop smaller, or split the problem"),
        );
    }

    /// The shape of a written type.
    pub(crate) fn shape(&mut self, ty: &ast::Type) -> Option<Shape> {
        let dims: Vec<Option<usize>> = ty.dims.iter().map(|d| self.dimension(d)).collect();
        let shape = match dims.as_slice() {
            [] => Shape::Scalar,
            [n] => Shape::Vector((*n)?),
            [m, n] => Shape::Matrix((*m)?, (*n)?),
            _ => return None,
        };
        let bytes = shape.len() as f64 * 8.0;
        if shape.checked_len().is_none() || bytes > self.options.memory_limit_bytes as f64 {
            let total: f64 = dims.iter().map(|d| d.unwrap_or(1) as f64).product::<f64>() * 8.0;
            self.memory_error(ty.span, &format!("a value of type {shape}"), total);
            return None;
        }
        Some(shape)
    }

    fn run(&mut self) -> Option<Program> {
        let file = self.file;
        if file.items.is_empty() {
            self.error(
                Diagnostic::error("E0110", "the file defines nothing", Span::new(0, 0))
                    .with_label("empty file")
                    .with_help("add an objective, a composite that uses it, and a solve block (see docs/language.md)"),
            );
            return None;
        }
        // Global names: unique across const, data, objective and composite items.
        for (index, item) in file.items.iter().enumerate() {
            let kind = match item {
                ast::Item::Const(_) => GlobalKind::Const,
                ast::Item::Data(_) => GlobalKind::Data,
                ast::Item::Objective(_) => GlobalKind::Objective,
                ast::Item::Composite(_) => GlobalKind::Composite,
                ast::Item::Solve(_) | ast::Item::Report(_) => continue,
            };
            let name = item.name();
            if is_builtin(&name.name) {
                self.error(
                    Diagnostic::error(
                        "E0109",
                        format!("`{}` is the name of a built-in function", name.name),
                        name.span,
                    )
                    .with_label("reserved")
                    .with_help("choose another name"),
                );
            }
            if let Some((first_kind, first)) = self.globals.get(&name.name).copied() {
                self.error(
                    Diagnostic::error(
                        "E0101",
                        format!("duplicate name `{}`", name.name),
                        name.span,
                    )
                    .with_label(format!("{kind} named `{}` again", name.name))
                    .with_secondary(first, format!("first declared here as {first_kind}"))
                    .with_help("names of items are global and must be unique; rename one of them"),
                );
                continue;
            }
            self.globals.insert(name.name.clone(), (kind, name.span));
            if kind == GlobalKind::Const {
                self.const_state
                    .insert(name.name.clone(), ConstState::Pending(index));
            }
        }
        // Consts, in source order (each evaluated lazily, so order does not matter).
        let mut consts = Vec::new();
        for item in &file.items {
            if let ast::Item::Const(c) = item {
                if self.globals.get(&c.name.name).map(|g| g.1) != Some(c.name.span) {
                    continue;
                }
                if let Some(value) = self.const_value(&c.name.name, c.name.span) {
                    consts.push(program::Const {
                        name: c.name.name.clone(),
                        value,
                        span: c.name.span,
                    });
                }
            }
        }
        for item in &file.items {
            if let ast::Item::Data(d) = item {
                if self.globals.get(&d.name.name).map(|g| g.1) == Some(d.name.span) {
                    self.data_item(d);
                }
            }
        }
        for item in &file.items {
            if let ast::Item::Objective(o) = item {
                let first = self.globals.get(&o.name.name).map(|g| g.1) == Some(o.name.span);
                let checked = self.objective(o);
                if first {
                    self.objective_names
                        .insert(o.name.name.clone(), self.objectives.len());
                    self.objectives.push(checked);
                }
            }
        }
        self.composites_in_order();
        let mut solves = Vec::new();
        for item in &file.items {
            if let ast::Item::Solve(s) = item {
                if let Some(solve) = self.solve(s) {
                    solves.push(solve);
                }
            }
        }
        let reports = self.reports();
        if self.diagnostics.iter().any(Diagnostic::is_error) {
            return None;
        }
        Some(Program {
            source: Arc::new(SourceFile {
                name: self.source.name.clone(),
                text: self.source.text.clone(),
            }),
            consts,
            data: std::mem::take(&mut self.data),
            objectives: std::mem::take(&mut self.objectives)
                .into_iter()
                .collect::<Option<Vec<_>>>()?,
            composites: std::mem::take(&mut self.composites)
                .into_iter()
                .collect::<Option<Vec<_>>>()?,
            solves,
            reports,
        })
    }
}

/// `name: [dual] SHAPE [in DOMAIN]`, as declared.
fn variable_summary(v: &program::Variable) -> String {
    let dual = if v.dual { "dual " } else { "" };
    let domain = if v.domain.is_trivial() {
        String::new()
    } else {
        format!(" in {}", v.domain)
    };
    format!("{}: {dual}{}{domain}", v.name, v.shape)
}

/// True for the name of a built-in function.
pub(crate) fn is_builtin(name: &str) -> bool {
    program::Function::ALL.iter().any(|f| f.name() == name)
}

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub(crate) fn closest<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        let limit = name.len().max(c.len()).div_ceil(3);
        if d <= limit && best.map_or(true, |(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `12.0 GiB`-style rendering of a byte count.
pub(crate) fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let names = ["rosen", "total", "f1"];
        assert_eq!(closest("rosne", names.iter().copied()), Some("rosen"));
        assert_eq!(closest("zzz", names.iter().copied()), None);
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(8.0 * 1024.0 * 1024.0 * 1024.0), "8.0 GiB");
        assert_eq!(human_bytes(10.0), "10 B");
    }
}
