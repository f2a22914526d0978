//! `report` blocks: named expressions of a composite's junctions, private variables
//! (`label.var`), data and consts, checked (names, shapes) and unrolled here, evaluated
//! after a run by `crate::report` (docs/language.md, "Reports").

use super::program::{BinaryOp, Callee, Composite, CompositeId, Function};
use super::report_types::{Report, ReportExpr, ReportKind, ReportLine, VariableRef};
use super::{closest, Checker, DataEntry, GlobalKind};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::{counted, IndexedName};
use crate::shape::Shape;
use crate::syntax::ast;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The most lines a report may have once its families are unrolled.
pub const MAX_REPORT_LINES: i64 = 100_000;

/// One member of a report line: its index (for a family) and the loop variable's value.
type Member<'a> = (Option<i64>, Vec<(&'a str, i64)>);

/// What a name of a report line means.
enum LineEntry {
    Single(usize),
    Family(BTreeMap<i64, usize>),
}

/// Names visible in one report block.
struct Scope<'c> {
    composite: &'c Composite,
    /// Single junctions and family members by name.
    junctions: HashMap<IndexedName, usize>,
    /// Junction family bases, with their members' indices.
    families: HashMap<Arc<str>, BTreeMap<i64, usize>>,
    /// Box labels of each composite met so far (the solved one, nested ones on demand).
    labels: HashMap<CompositeId, HashMap<IndexedName, Callee>>,
    lines: HashMap<String, LineEntry>,
    shapes: Vec<Shape>,
}

/// Report-only functions (no gradient).
const REPORT_FUNCTIONS: [&str; 2] = ["argmax", "columns"];

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
            for (index, env) in members {
                let Some(expr) = self.report_expr(&line.value, &env, &mut scope, composites) else {
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
                scope.shapes.push(expr.shape);
                lines.push(ReportLine {
                    name,
                    printed: !line.is_let,
                    expr,
                    span: line.span,
                });
            }
            if line.family.is_some() {
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

    fn report_expr(
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
                let op = match op {
                    ast::BinaryOp::Add => BinaryOp::Add,
                    ast::BinaryOp::Sub => BinaryOp::Sub,
                    ast::BinaryOp::Mul => BinaryOp::Mul,
                    ast::BinaryOp::Div => BinaryOp::Div,
                    ast::BinaryOp::Pow => BinaryOp::Pow,
                    ast::BinaryOp::MatMul => BinaryOp::MatMul,
                };
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
        };
        Some(ReportExpr {
            kind,
            shape,
            span: e.span,
        })
    }

    fn shape_error(
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

    fn broadcast(
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
    fn check_size(&mut self, shape: Shape, span: Span) -> Option<()> {
        let bytes = shape.len() as f64 * 8.0;
        if bytes > self.options.memory_limit_bytes as f64 {
            self.memory_error(span, &format!("a report value of type {shape}"), bytes);
            return None;
        }
        Some(())
    }

    fn report_name(
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

    fn family_without_index(&mut self, name: &str, span: Span, what: &str) -> Option<ReportExpr> {
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

    fn report_index(
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
        let dims: Vec<usize> = match base.shape {
            Shape::Scalar => vec![],
            Shape::Vector(n) => vec![n],
            Shape::Matrix(m, n) => vec![m, n],
        };
        if dims.len() != indices.len() {
            self.error(
                Diagnostic::error(
                    "E0211",
                    format!(
                        "`{}` is {} and takes {}, found {}",
                        self.snippet(base.span),
                        base.shape,
                        counted(dims.len(), "index"),
                        indices.len()
                    ),
                    span,
                )
                .with_label("wrong number of indices")
                .with_help("index a vector with `x[i]` and a matrix with `A[i, j]`"),
            );
            return None;
        }
        let mut at = Vec::with_capacity(indices.len());
        for (index, &dim) in indices.iter().zip(&dims) {
            let i = self.const_int(index, env, "an index")?;
            if i < 0 || i as usize >= dim {
                self.error(
                    Diagnostic::error(
                        "E0212",
                        format!(
                            "index {i} is out of range for `{}` ({})",
                            self.snippet(base.span),
                            base.shape
                        ),
                        index.span,
                    )
                    .with_label(format!("must be in 0..{dim}"))
                    .with_help("indices are 0-based"),
                );
                return None;
            }
            at.push(i as usize);
        }
        Some(ReportExpr {
            kind: ReportKind::Index(Box::new(base), at),
            shape: Shape::Scalar,
            span,
        })
    }

    /// Member `i` of the family `name` (a report line family, a junction family or a data
    /// family, in that order).
    fn member(
        &mut self,
        name: &str,
        i: i64,
        span: Span,
        index_span: Span,
        scope: &Scope<'_>,
    ) -> Option<ReportExpr> {
        let found = if let Some(LineEntry::Family(members)) = scope.lines.get(name) {
            members
                .get(&i)
                .map(|&l| (ReportKind::Line(l), scope.shapes[l]))
        } else if let Some(members) = scope.families.get(name) {
            members.get(&i).map(|&j| {
                let variable = VariableRef {
                    name: IndexedName::member(name, i),
                    shape: scope.composite.junctions.shape(j),
                };
                let shape = variable.shape;
                (ReportKind::Variable(variable), shape)
            })
        } else {
            let id = self.data_member(name, Some(i));
            id.map(|id| (ReportKind::Data(id), self.data[id.0 as usize].value.shape))
        };
        match found {
            Some((kind, shape)) => Some(ReportExpr { kind, shape, span }),
            None => {
                self.error(
                    Diagnostic::error(
                        "E0115",
                        format!("family `{name}` has no member {i}"),
                        index_span,
                    )
                    .with_label("no such member")
                    .with_help(format!(
                        "use an index inside the range that defines `{name}`"
                    )),
                );
                None
            }
        }
    }

    /// Every member of the family `name`, in index order (for `columns`).
    fn members(&mut self, name: &str, span: Span, scope: &Scope<'_>) -> Option<Vec<ReportExpr>> {
        let indices: Vec<i64> = if let Some(LineEntry::Family(m)) = scope.lines.get(name) {
            m.keys().copied().collect()
        } else if let Some(m) = scope.families.get(name) {
            m.keys().copied().collect()
        } else if let Some(DataEntry::Family(m)) = self.data_names.get(name) {
            let mut keys: Vec<i64> = m.keys().copied().collect();
            keys.sort_unstable();
            keys
        } else {
            self.error(
                Diagnostic::error("E0906", format!("`columns` needs a family, found `{name}`"), span)
                    .with_label("not a family")
                    .with_help("`columns(z)` stacks the members z[i] of a family (of report lines, junctions or data) as columns"),
            );
            return None;
        };
        indices
            .into_iter()
            .map(|i| self.member(name, i, span, span, scope))
            .collect()
    }

    fn report_call(
        &mut self,
        name: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        env: &[(&str, i64)],
        scope: &mut Scope<'_>,
        composites: &[Option<Composite>],
    ) -> Option<ReportExpr> {
        let arity = |this: &mut Self, n: usize, usage: &str| -> Option<()> {
            if args.len() == n {
                return Some(());
            }
            this.error(
                Diagnostic::error(
                    "E0203",
                    format!(
                        "`{}` takes {}, found {}",
                        name.name,
                        counted(n, "argument"),
                        args.len()
                    ),
                    span,
                )
                .with_label("wrong number of arguments")
                .with_help(usage.to_string()),
            );
            None
        };
        if name.name == "columns" {
            arity(self, 1, "write `columns(z)` for a family `z`")?;
            let ast::ExprKind::Name(family) = &args[0].kind else {
                self.error(
                    Diagnostic::error(
                        "E0906",
                        format!(
                            "`columns` needs a family name, found `{}`",
                            self.snippet(args[0].span)
                        ),
                        args[0].span,
                    )
                    .with_label("not a family name")
                    .with_help("`columns(z)` stacks the members z[i] of a family as columns"),
                );
                return None;
            };
            let members = self.members(family, args[0].span, scope)?;
            let member_shape = members.first().map(|m| m.shape);
            let shape = match member_shape {
                Some(Shape::Scalar) => Some(Shape::Vector(members.len())),
                Some(Shape::Vector(n)) => Some(Shape::Matrix(n, members.len())),
                _ => None,
            };
            let Some(shape) =
                shape.filter(|_| members.iter().all(|m| Some(m.shape) == member_shape))
            else {
                self.error(
                    Diagnostic::error("E0906", format!("`columns({family})`: the members are not scalars or vectors of one length"), args[0].span)
                        .with_label(format!("members of {}", member_shape.map_or("no".to_string(), |s| s.to_string())))
                        .with_help("stack scalars (into a vector) or vectors of one length (into a matrix, one column per member)"),
                );
                return None;
            };
            self.check_size(shape, span)?;
            return Some(ReportExpr {
                kind: ReportKind::Columns(members),
                shape,
                span,
            });
        }
        if name.name == "argmax" {
            arity(
                self,
                1,
                "write `argmax(x)` (a vector) or `argmax(X)` (each row of a matrix)",
            )?;
            let a = self.report_expr(&args[0], env, scope, composites)?;
            let shape = match a.shape {
                Shape::Matrix(rows, _) => Shape::Vector(rows),
                _ => Shape::Scalar,
            };
            return Some(ReportExpr {
                kind: ReportKind::Argmax(Box::new(a)),
                shape,
                span,
            });
        }
        let Some(function) = Function::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name.name)
        else {
            let mut names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
            names.extend(REPORT_FUNCTIONS);
            let help = match closest(&name.name, names.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? The functions are {}",
                    names.join(", ")
                ),
                None => format!("the functions are {}", names.join(", ")),
            };
            self.error(
                Diagnostic::error(
                    "E0106",
                    format!("unknown function `{}`", name.name),
                    name.span,
                )
                .with_label("not a built-in function")
                .with_help(help),
            );
            return None;
        };
        let rowwise_optional = matches!(
            function,
            Function::Sum | Function::Mean | Function::LogSumExp
        );
        let rowwise = args.len() == 2 && (rowwise_optional || function == Function::Softmax);
        match function {
            Function::Dot | Function::Max | Function::Min => {
                arity(self, 2, &format!("write `{}(a, b)`", name.name))?
            }
            Function::Softmax => arity(self, 2, "write `softmax(X, 1)` (row-wise)")?,
            _ if rowwise_optional && args.len() == 2 => {}
            _ => arity(self, 1, &format!("write `{}(x)`", name.name))?,
        }
        if rowwise {
            let before = self.diagnostics.len();
            let axis = self.const_eval(&args[1], env);
            self.diagnostics.truncate(before);
            if axis != Some(1.0) {
                self.error(
                    Diagnostic::error(
                        "E0206",
                        format!("the axis of `{}` must be the constant 1", name.name),
                        args[1].span,
                    )
                    .with_label("only axis 1 (along each row) is supported")
                    .with_help(format!(
                        "for axis 0 transpose the matrix: `{}(X', 1)`",
                        name.name
                    )),
                );
                return None;
            }
        }
        let take = if rowwise { 1 } else { args.len() };
        let mut checked = Vec::with_capacity(take);
        for arg in &args[..take] {
            checked.push(self.report_expr(arg, env, scope, composites));
        }
        let checked: Vec<ReportExpr> = checked.into_iter().collect::<Option<_>>()?;
        let shape = if rowwise {
            let Shape::Matrix(rows, cols) = checked[0].shape else {
                self.error(
                    Diagnostic::error(
                        "E0207",
                        format!(
                            "`{}(X, 1)` needs a matrix, found {}",
                            name.name, checked[0].shape
                        ),
                        checked[0].span,
                    )
                    .with_label(format!("this is {}", checked[0].shape))
                    .with_help(format!(
                        "a vector has no rows; write `{}(x)` for all its entries",
                        name.name
                    )),
                );
                return None;
            };
            if function == Function::Softmax {
                Shape::Matrix(rows, cols)
            } else {
                Shape::Vector(rows)
            }
        } else {
            match function {
                Function::Sum | Function::Mean | Function::SumSq | Function::LogSumExp => {
                    Shape::Scalar
                }
                Function::Max | Function::Min => self.broadcast(
                    checked[0].shape,
                    checked[1].shape,
                    span,
                    &checked[0],
                    &checked[1],
                )?,
                Function::Dot => {
                    if checked[0].shape != checked[1].shape {
                        self.shape_error("E0204", &format!("`dot` needs two arguments of one shape, found {} and {}", checked[0].shape, checked[1].shape), span, &checked[0], &checked[1],
                            "`dot(a, b)` sums the elementwise product of equal shapes; use `@` for a matrix product");
                        return None;
                    }
                    Shape::Scalar
                }
                _ => checked[0].shape,
            }
        };
        Some(ReportExpr {
            kind: ReportKind::Call(function, checked),
            shape,
            span,
        })
    }

    /// `label.var`, `outer.inner.var`: a private variable of a box, as `init` addresses it.
    fn report_private(
        &mut self,
        e: &ast::Expr,
        env: &[(&str, i64)],
        scope: &mut Scope<'_>,
        composites: &[Option<Composite>],
    ) -> Option<ReportExpr> {
        let ast::ExprKind::Field(base, var_name) = &e.kind else {
            return None;
        };
        let mut segments = Vec::new();
        if !self.label_path(base, env, &mut segments)? {
            self.error(
                Diagnostic::error("E0905", format!("`{}` is not a private-variable path", self.snippet(e.span)), e.span)
                    .with_label("expected `label.var`")
                    .with_help("a box's private variable is `label.var` (`task[3].v`; nested: `outer.inner.var`), as in `init` lines"),
            );
            return None;
        }
        let mut composite = scope.composite;
        let mut composite_id = None;
        let mut path = Vec::with_capacity(segments.len());
        for (depth, (base, indices, span)) in segments.iter().enumerate() {
            let label = IndexedName::with_indices(base, indices);
            let labels = scope
                .labels
                .entry(composite_id.unwrap_or(CompositeId(u32::MAX)))
                .or_insert_with(|| {
                    composite
                        .boxes
                        .iter()
                        .map(|b| (b.label, b.callee))
                        .collect()
                });
            let Some(&callee) = labels.get(&label) else {
                let shown: Vec<String> = labels.keys().map(|l| l.to_string()).collect();
                let help = match closest(&label.to_string(), shown.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "the boxes of `{}` are {}",
                        composite.name,
                        first_few(&shown)
                    ),
                };
                self.error(
                    Diagnostic::error(
                        "E0905",
                        format!("no box `{label}` in composite `{}`", composite.name),
                        *span,
                    )
                    .with_label("no such box label")
                    .with_help(help),
                );
                return None;
            };
            path.push(label.to_string());
            let last = depth + 1 == segments.len();
            match callee {
                Callee::Objective(o) => {
                    if !last {
                        self.error(
                            Diagnostic::error(
                                "E0905",
                                format!("box `{label}` is an objective, not a nested composite"),
                                *span,
                            )
                            .with_label("has no boxes inside")
                            .with_help(format!("write `{label}.var` for its private variables")),
                        );
                        return None;
                    }
                    let Some(Some(objective)) = self.objectives.get(o.0 as usize) else {
                        return None;
                    };
                    let Some(v) = objective.vars.iter().find(|v| v.name == var_name.name) else {
                        let names: Vec<&str> =
                            objective.vars.iter().map(|v| v.name.as_str()).collect();
                        let help = match closest(&var_name.name, names.iter().copied()) {
                            Some(best) => format!("did you mean `{label}.{best}`?"),
                            None if names.is_empty() => format!("objective `{}` has no private variable (ports are junctions: use the junction's name)", objective.name),
                            None => format!("the private variables of `{}` are {}", objective.name, names.join(", ")),
                        };
                        self.error(
                            Diagnostic::error(
                                "E0905",
                                format!(
                                    "box `{label}` has no private variable `{}`",
                                    var_name.name
                                ),
                                var_name.span,
                            )
                            .with_label("no such private variable")
                            .with_help(help),
                        );
                        return None;
                    };
                    let name = IndexedName::plain(format!("{}.{}", path.join("."), v.name));
                    let shape = v.shape;
                    return Some(ReportExpr {
                        kind: ReportKind::Variable(VariableRef { name, shape }),
                        shape,
                        span: e.span,
                    });
                }
                Callee::Composite(c) => {
                    if last {
                        self.error(
                            Diagnostic::error("E0905", format!("box `{label}` is a composite: `{}` names one of its boxes, not a variable", var_name.name), var_name.span)
                                .with_label("a path to a box")
                                .with_help(format!("write `{label}.inner_label.var`")),
                        );
                        return None;
                    }
                    let Some(Some(inner)) = composites.get(c.0 as usize) else {
                        return None;
                    };
                    composite = inner;
                    composite_id = Some(c);
                }
            }
        }
        None
    }
}

impl Checker<'_> {
    /// The box labels of a path `a[1].b` into `out`, outermost first; `Some(false)` when
    /// the expression is no such path, `None` after an error in an index.
    fn label_path(
        &mut self,
        e: &ast::Expr,
        env: &[(&str, i64)],
        out: &mut Vec<(String, Vec<i64>, Span)>,
    ) -> Option<bool> {
        let (name, indices): (&str, &[ast::Expr]) = match &e.kind {
            ast::ExprKind::Name(n) => (n, &[]),
            ast::ExprKind::Field(base, field) => {
                if !self.label_path(base, env, out)? {
                    return Some(false);
                }
                (&field.name, &[])
            }
            ast::ExprKind::Index(base, indices) => match &base.kind {
                ast::ExprKind::Name(n) => (n.as_str(), indices.as_slice()),
                ast::ExprKind::Field(inner, field) => {
                    if !self.label_path(inner, env, out)? {
                        return Some(false);
                    }
                    (field.name.as_str(), indices.as_slice())
                }
                _ => return Some(false),
            },
            _ => return Some(false),
        };
        let mut values = Vec::with_capacity(indices.len());
        for index in indices {
            values.push(self.const_int(index, env, "a box index")?);
        }
        out.push((name.to_string(), values, e.span));
        Some(true)
    }
}

fn sorted<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut names = names.to_vec();
    names.sort_unstable();
    names
}

fn first_few(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().map(String::as_str).collect();
    shown.sort_unstable();
    let more = shown.len().saturating_sub(8);
    shown.truncate(8);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
