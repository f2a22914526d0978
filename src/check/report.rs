//! `report` blocks: named expressions of a composite's junctions, private variables
//! (`label.var`), data and consts, checked (names, shapes) and unrolled here, evaluated
//! after a run by `crate::report` (docs/language.md, "Reports").

use super::program::{BinaryOp, Callee, Composite, CompositeId};
use super::report_calls::sorted;
use super::report_types::{Report, ReportExpr, ReportKind, ReportLine, VariableRef};
use super::{closest, Checker, DataEntry, GlobalKind};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::shape::Shape;
use crate::syntax::ast;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The most lines a report may have once its families are unrolled.
pub const MAX_REPORT_LINES: i64 = 100_000;

/// One member of a report line: its index (for a family) and the loop variable's value.
type Member<'a> = (Option<i64>, Vec<(&'a str, i64)>);

/// What a name of a report line means.
pub(super) enum LineEntry {
    Single(usize),
    Family(BTreeMap<i64, usize>),
    /// A line with an error (already reported): its uses are not reported again.
    Failed,
}

/// Names visible in one report block.
pub(super) struct Scope<'c> {
    pub(super) composite: &'c Composite,
    /// Single junctions and family members by name.
    pub(super) junctions: HashMap<IndexedName, usize>,
    /// Junction family bases, with their members' indices.
    pub(super) families: HashMap<Arc<str>, BTreeMap<i64, usize>>,
    /// Box labels of each composite met so far (the solved one, nested ones on demand).
    pub(super) labels: HashMap<CompositeId, HashMap<IndexedName, Callee>>,
    pub(super) lines: HashMap<String, LineEntry>,
    pub(super) shapes: Vec<Shape>,
}

impl Checker<'_> {
    /// Checks every `report` block of the file (after the composites).
    pub(crate) fn reports(&mut self) -> Vec<Report> {
        let file = self.file;
        let mut reports = Vec::new();
        let mut seen: HashMap<usize, Span> = HashMap::new();
        for item in &file.items {
            let ast::Item::Report(item) = item else {
                continue;
            };
            let Some(id) = self.report_target(&item.target) else {
                continue;
            };
            if let Some(first) = seen.get(&id) {
                self.error(
                    Diagnostic::error(
                        "E0902",
                        format!("second report block for composite `{}`", item.target.name),
                        item.target.span,
                    )
                    .with_label("a second report")
                    .with_secondary(*first, "the first is here")
                    .with_help("put every line of a composite's report in one block"),
                );
                continue;
            }
            seen.insert(id, item.target.span);
            if let Some(report) = self.report(item, id) {
                reports.push(report);
            }
        }
        reports
    }

    /// The composite a report names (E0901 when there is none).
    fn report_target(&mut self, target: &ast::Ident) -> Option<usize> {
        if let Some(&id) = self.composite_names.get(&target.name) {
            return Some(id);
        }
        let names: Vec<&str> = self.composite_names.keys().map(String::as_str).collect();
        let help = match closest(&target.name, names.iter().copied()) {
            Some(best) => {
                format!("did you mean `{best}`? A report reads the variables of a composite")
            }
            None if names.is_empty() => "the file defines no composite".to_string(),
            None => format!("the composites are {}", sorted(&names).join(", ")),
        };
        self.error(
            Diagnostic::error(
                "E0901",
                format!("report block names no composite: `{}`", target.name),
                target.span,
            )
            .with_label("not a composite")
            .with_help(help),
        );
        None
    }

    fn report(&mut self, item: &ast::ReportItem, id: usize) -> Option<Report> {
        let composites = std::mem::take(&mut self.composites);
        let result = match composites.get(id).and_then(Option::as_ref) {
            Some(composite) => self.report_in(item, id, composite, &composites),
            None => None,
        };
        self.composites = composites;
        result
    }

    fn report_in(
        &mut self,
        item: &ast::ReportItem,
        id: usize,
        composite: &Composite,
        composites: &[Option<Composite>],
    ) -> Option<Report> {
        let errors_before = self.error_count();
        let mut junctions = HashMap::new();
        let mut families: HashMap<Arc<str>, BTreeMap<i64, usize>> = HashMap::new();
        for (j, junction) in composite.junctions.iter().enumerate() {
            if let Some(i) = junction.name.index {
                families
                    .entry(junction.name.base.clone())
                    .or_default()
                    .insert(i, j);
            }
            junctions.insert(junction.name, j);
        }
        let mut scope = Scope {
            composite,
            junctions,
            families,
            labels: HashMap::new(),
            lines: HashMap::new(),
            shapes: Vec::new(),
        };
        let mut lines = Vec::new();
        let mut kept_bytes = 0.0;
        let mut first_span: HashMap<&str, Span> = HashMap::new();
        for line in &item.lines {
            if let Some(first) = first_span.get(line.name.name.as_str()) {
                self.error(
                    Diagnostic::error(
                        "E0902",
                        format!("`{}` is defined twice in this report", line.name.name),
                        line.name.span,
                    )
                    .with_label("defined again")
                    .with_secondary(*first, "first defined here")
                    .with_help("give each report line its own name"),
                );
                continue;
            }
            first_span.insert(&line.name.name, line.name.span);
            let members: Vec<Member> = match &line.family {
                None => vec![(None, vec![])],
                Some(family) => {
                    if family.index.name != family.loop_var.name {
                        self.error(
                            Diagnostic::error(
                                "E0114",
                                format!(
                                    "report family index `{}` and loop variable `{}` differ",
                                    family.index.name, family.loop_var.name
                                ),
                                family.loop_var.span,
                            )
                            .with_label(format!("expected `{}`", family.index.name))
                            .with_secondary(family.index.span, "the family index")
                            .with_help("the index and the loop variable must be the same name"),
                        );
                        continue;
                    }
                    let start = self.const_int(&family.range.start, &[], "a range bound");
                    let end = self.const_int(&family.range.end, &[], "a range bound");
                    let (Some(start), Some(end)) = (start, end) else {
                        continue;
                    };
                    if end.saturating_sub(start) + lines.len() as i64 > MAX_REPORT_LINES {
                        self.error(
                            Diagnostic::error(
                                "E0907",
                                format!(
                                    "report of `{}` too large: more than {MAX_REPORT_LINES} lines once its families are unrolled",
                                    item.target.name
                                ),
                                family.range.span,
                            )
                            .with_label(format!("{} members", end.saturating_sub(start)))
                            .with_help("report summaries (a mean, a max) rather than one line per member"),
                        );
                        return None;
                    }
                    (start..end)
                        .map(|i| (Some(i), vec![(family.index.name.as_str(), i)]))
                        .collect()
                }
            };
            let mut family_members = BTreeMap::new();
            let mut failed = false;
            for (index, env) in members {
                let Some(expr) = self.report_expr(&line.value, &env, &mut scope, composites) else {
                    failed = true;
                    continue;
                };
                if !line.is_let && !expr.shape.is_scalar() {
                    self.error(
                        Diagnostic::error(
                            "E0903",
                            format!(
                                "report line `{}` is {}, not a number",
                                line.name.name, expr.shape
                            ),
                            line.value.span,
                        )
                        .with_label(format!("this is {}", expr.shape))
                        .with_help(format!(
                            "a printed line is one number: reduce it (`mean(...)`, `sum(...)`), pick an entry, or make it an intermediate with `let {} = ...;`",
                            line.name.name
                        )),
                    );
                    failed = true;
                    continue;
                }
                let name = match index {
                    Some(i) => {
                        family_members.insert(i, lines.len());
                        IndexedName::member(line.name.name.as_str(), i)
                    }
                    None => {
                        scope
                            .lines
                            .insert(line.name.name.clone(), LineEntry::Single(lines.len()));
                        IndexedName::plain(line.name.name.as_str())
                    }
                };
                // Every line's value is kept until the report is evaluated.
                kept_bytes += expr.shape.len() as f64 * 8.0;
                if kept_bytes > self.options.memory_limit_bytes as f64 {
                    self.memory_error(
                        line.span,
                        &format!("the lines of report `{}`", item.target.name),
                        kept_bytes,
                    );
                    return None;
                }
                scope.shapes.push(expr.shape);
                lines.push(ReportLine {
                    name,
                    printed: !line.is_let,
                    expr,
                    span: line.span,
                });
            }
            if failed {
                scope
                    .lines
                    .insert(line.name.name.clone(), LineEntry::Failed);
            } else if line.family.is_some() {
                scope
                    .lines
                    .insert(line.name.name.clone(), LineEntry::Family(family_members));
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        Some(Report {
            composite: CompositeId(id as u32),
            span: item.target.span,
            lines,
        })
    }

    pub(super) fn report_expr(
        &mut self,
        e: &ast::Expr,
        env: &[(&str, i64)],
        scope: &mut Scope<'_>,
        composites: &[Option<Composite>],
    ) -> Option<ReportExpr> {
        let (kind, shape) = match &e.kind {
            ast::ExprKind::Number(n) => (ReportKind::Number(*n), Shape::Scalar),
            ast::ExprKind::Name(name) => return self.report_name(name, e.span, env, scope),
            ast::ExprKind::Neg(a) => {
                let a = self.report_expr(a, env, scope, composites)?;
                let shape = a.shape;
                (ReportKind::Neg(Box::new(a)), shape)
            }
            ast::ExprKind::Transpose(a) => {
                let a = self.report_expr(a, env, scope, composites)?;
                let shape = a.shape.transpose();
                (ReportKind::Transpose(Box::new(a)), shape)
            }
            ast::ExprKind::Binary(op, lhs, rhs) => {
                let a = self.report_expr(lhs, env, scope, composites);
                let b = self.report_expr(rhs, env, scope, composites);
                let (a, b) = (a?, b?);
                let op = BinaryOp::from(*op);
                let shape = if op == BinaryOp::MatMul {
                    let shape = a.shape.matmul(b.shape);
                    if shape.is_none() {
                        self.shape_error("E0202", &format!("cannot multiply {} @ {}", a.shape, b.shape), e.span, &a, &b,
                            "the inner dimensions of `@` must agree (and neither side may be a scalar; use `*` for scaling); transpose with `'`");
                    }
                    shape
                } else {
                    self.broadcast(a.shape, b.shape, e.span, &a, &b)
                }?;
                self.check_size(shape, e.span)?;
                (ReportKind::Binary(op, Box::new(a), Box::new(b)), shape)
            }
            ast::ExprKind::Compare(op, lhs, rhs) => {
                let a = self.report_expr(lhs, env, scope, composites);
                let b = self.report_expr(rhs, env, scope, composites);
                let (a, b) = (a?, b?);
                let shape = self.broadcast(a.shape, b.shape, e.span, &a, &b)?;
                (ReportKind::Compare(*op, Box::new(a), Box::new(b)), shape)
            }
            ast::ExprKind::Call(name, args) => {
                return self.report_call(name, args, e.span, env, scope, composites)
            }
            ast::ExprKind::Matrix(rows) => {
                let mut checked = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut r = Vec::with_capacity(row.len());
                    for entry in row {
                        let x = self.report_expr(entry, env, scope, composites)?;
                        if !x.shape.is_scalar() {
                            self.error(
                                Diagnostic::error(
                                    "E0205",
                                    format!(
                                        "entry `{}` of a bracket literal is {}, not a scalar",
                                        self.snippet(entry.span),
                                        x.shape
                                    ),
                                    entry.span,
                                )
                                .with_label("not a scalar")
                                .with_help("`[a, b; c, d]` builds a vector or matrix from scalars"),
                            );
                            return None;
                        }
                        r.push(x);
                    }
                    checked.push(r);
                }
                let cols = checked.first().map_or(0, Vec::len);
                if cols == 0 || checked.iter().any(|r| r.len() != cols) {
                    self.error(
                        Diagnostic::error("E0213", "empty or ragged bracket literal", e.span)
                            .with_label("ragged matrix literal")
                            .with_help("every row needs the same, positive, number of entries"),
                    );
                    return None;
                }
                if checked.len() == 1 {
                    let row = checked.pop().unwrap_or_default();
                    (ReportKind::Vector(row), Shape::Vector(cols))
                } else {
                    let shape = Shape::Matrix(checked.len(), cols);
                    (ReportKind::Matrix(checked), shape)
                }
            }
            ast::ExprKind::Index(base, indices) => {
                return self.report_index(base, indices, e.span, env, scope, composites)
            }
            ast::ExprKind::Field(..) => return self.report_private(e, env, scope, composites),
            ast::ExprKind::Rows(..) => {
                self.error(
                    Diagnostic::error(
                        "E0415",
                        format!(
                            "`{}` reads rows: only a box call's data argument may",
                            self.snippet(e.span)
                        ),
                        e.span,
                    )
                    .with_label("rows outside a data argument")
                    .with_help(
                        "in a report, declare the rows as data (`data T = csv(\"f.csv\", rows = \
                         0..100);`) and use that name",
                    ),
                );
                return None;
            }
        };
        Some(ReportExpr {
            kind,
            shape,
            span: e.span,
        })
    }

    pub(super) fn shape_error(
        &mut self,
        code: &'static str,
        message: &str,
        span: Span,
        a: &ReportExpr,
        b: &ReportExpr,
        help: &str,
    ) {
        self.error(
            Diagnostic::error(code, message.to_string(), span)
                .with_label("shape mismatch")
                .with_secondary(a.span, format!("`{}` is {}", self.snippet(a.span), a.shape))
                .with_secondary(b.span, format!("`{}` is {}", self.snippet(b.span), b.shape))
                .with_help(help.to_string()),
        );
    }

    pub(super) fn broadcast(
        &mut self,
        a: Shape,
        b: Shape,
        span: Span,
        ea: &ReportExpr,
        eb: &ReportExpr,
    ) -> Option<Shape> {
        let shape = a.broadcast(b);
        if shape.is_none() {
            self.shape_error(
                "E0201",
                &format!("shapes {a} and {b} do not broadcast in `{}`", self.snippet(span)),
                span,
                ea,
                eb,
                "elementwise operators need equal shapes, a scalar, or a vector whose length is the matrix's number of columns",
            );
        }
        shape
    }

    /// Refuses a value larger than the memory limit (E0601).
    pub(super) fn check_size(&mut self, shape: Shape, span: Span) -> Option<()> {
        let bytes = shape.len() as f64 * 8.0;
        if bytes > self.options.memory_limit_bytes as f64 {
            self.memory_error(span, &format!("a report value of type {shape}"), bytes);
            return None;
        }
        Some(())
    }

    pub(super) fn report_name(
        &mut self,
        name: &str,
        span: Span,
        env: &[(&str, i64)],
        scope: &mut Scope<'_>,
    ) -> Option<ReportExpr> {
        let expr = |kind, shape| Some(ReportExpr { kind, shape, span });
        if let Some(&(_, v)) = env.iter().rev().find(|(n, _)| *n == name) {
            return expr(ReportKind::Number(v as f64), Shape::Scalar);
        }
        match scope.lines.get(name) {
            Some(LineEntry::Single(i)) => {
                return expr(ReportKind::Line(*i), scope.shapes[*i]);
            }
            Some(LineEntry::Family(_)) => {
                return self.family_without_index(name, span, "report line family")
            }
            Some(LineEntry::Failed) => return None,
            None => {}
        }
        if let Some(&j) = scope.junctions.get(&IndexedName::plain(name)) {
            let variable = VariableRef {
                name: IndexedName::plain(name),
                shape: scope.composite.junctions.shape(j),
            };
            let shape = variable.shape;
            return expr(ReportKind::Variable(variable), shape);
        }
        if scope.families.contains_key(name) {
            return self.family_without_index(name, span, "junction family");
        }
        match self.globals.get(name).map(|g| g.0) {
            Some(GlobalKind::Const) => {
                let value = self.const_value(name, span)?;
                expr(ReportKind::Number(value), Shape::Scalar)
            }
            Some(GlobalKind::Data) => match self.data_names.get(name) {
                Some(DataEntry::Single(id)) => {
                    let id = *id;
                    expr(ReportKind::Data(id), self.data[id.0 as usize].value.shape)
                }
                Some(DataEntry::Family(_)) => self.family_without_index(name, span, "data family"),
                _ => None,
            },
            Some(kind) => {
                self.error(
                    Diagnostic::error("E0104", format!("`{name}` is {kind}, not a value"), span)
                        .with_label("not usable in an expression")
                        .with_help("a report reads junctions, private variables (`label.var`), data, consts and its earlier lines"),
                );
                None
            }
            None => {
                let mut candidates: Vec<String> = scope.lines.keys().cloned().collect();
                candidates.extend(
                    scope
                        .junctions
                        .keys()
                        .filter(|n| n.index.is_none())
                        .map(|n| n.base.to_string()),
                );
                candidates.extend(scope.families.keys().map(|b| b.to_string()));
                candidates.extend(env.iter().map(|(n, _)| n.to_string()));
                candidates.extend(
                    self.globals
                        .iter()
                        .filter(|(_, g)| matches!(g.0, GlobalKind::Const | GlobalKind::Data))
                        .map(|(n, _)| n.clone()),
                );
                let help = match closest(name, candidates.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "a report reads the junctions of `{}`, private variables as `label.var`, data items, consts and its earlier lines",
                        scope.composite.name
                    ),
                };
                self.error(
                    Diagnostic::error(
                        "E0104",
                        format!(
                            "unknown name `{name}` in report of `{}`",
                            scope.composite.name
                        ),
                        span,
                    )
                    .with_label("not declared")
                    .with_help(help),
                );
                None
            }
        }
    }

    pub(super) fn family_without_index(
        &mut self,
        name: &str,
        span: Span,
        what: &str,
    ) -> Option<ReportExpr> {
        self.error(
            Diagnostic::error(
                "E0105",
                format!("{what} `{name}` used without an index"),
                span,
            )
            .with_label("a family, not one value")
            .with_help(format!(
                "pick a member with `{name}[i]`, or stack the members with `columns({name})`"
            )),
        );
        None
    }

    pub(super) fn report_index(
        &mut self,
        base: &ast::Expr,
        indices: &[ast::Expr],
        span: Span,
        env: &[(&str, i64)],
        scope: &mut Scope<'_>,
        composites: &[Option<Composite>],
    ) -> Option<ReportExpr> {
        if let ast::ExprKind::Name(name) = &base.kind {
            let shadowed = env.iter().any(|(n, _)| n == name)
                || matches!(scope.lines.get(name.as_str()), Some(LineEntry::Single(_)))
                || scope
                    .junctions
                    .contains_key(&IndexedName::plain(name.as_str()));
            let family = !shadowed
                && (matches!(scope.lines.get(name.as_str()), Some(LineEntry::Family(_)))
                    || scope.families.contains_key(name.as_str())
                    || matches!(self.data_names.get(name), Some(DataEntry::Family(_))));
            if family {
                let [index] = indices else {
                    self.error(
                        Diagnostic::error(
                            "E0211",
                            format!("family `{name}` takes one index"),
                            span,
                        )
                        .with_label("wrong number of indices")
                        .with_help(format!("write `{name}[i]`")),
                    );
                    return None;
                };
                let i = self.const_int(index, env, "a family index")?;
                return self.member(name, i, span, index.span, scope);
            }
        }
        let base = self.report_expr(base, env, scope, composites)?;
        let at = self.constant_indices(base.span, base.shape, indices, env, span)?;
        Some(ReportExpr {
            kind: ReportKind::Index(Box::new(base), at),
            shape: Shape::Scalar,
            span,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;

    fn codes(text: &str, options: &CheckOptions) -> Vec<&'static str> {
        let outcome = check_source(SourceFile::new("r.opt", text), options);
        outcome.report.diagnostics.iter().map(|d| d.code).collect()
    }

    #[test]
    fn a_report_value_past_the_memory_limit_is_refused_before_evaluation() {
        // A 1200 x 1 column times its transpose is 1200 x 1200 (11 MiB).
        let column: Vec<&str> = vec!["1"; 1200];
        let text = format!(
            "data A: real[1200, 1] = [{}];\nobjective f(x: real) {{ minimize x^2; }}\ncomposite c() {{ f(x); }}\n\
             report c {{ let outer = A @ A'; s = sum(outer); }}\n",
            column.join("; ")
        );
        let options = CheckOptions {
            memory_limit_bytes: 9 << 20,
            ..CheckOptions::default()
        };
        assert_eq!(codes(&text, &options), ["E0601"]);
        assert!(codes(&text, &CheckOptions::default()).is_empty());
    }
}
