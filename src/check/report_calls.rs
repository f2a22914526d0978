//! The calls (`argmax`, `columns` and the built-in functions), family members and
//! private-variable paths (`label.var`) of report expressions; the rest of a report's
//! checking is in `report.rs`.

use super::program::{Callee, Composite, CompositeId, Function};
use super::report::{LineEntry, Scope};
use super::report_types::{ReportExpr, ReportKind, VariableRef};
use super::{closest, Checker, DataEntry};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::{counted, IndexedName};
use crate::shape::Shape;
use crate::syntax::ast;

/// Report-only functions (no gradient).
const REPORT_FUNCTIONS: [&str; 2] = ["argmax", "columns"];

impl Checker<'_> {
    /// Member `i` of the family `name` (a report line family, a junction family or a data
    /// family, in that order).
    pub(super) fn member(
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
        if let Some(LineEntry::Failed) = scope.lines.get(name) {
            return None;
        }
        let indices: Vec<i64> = if let Some(LineEntry::Family(m)) = scope.lines.get(name) {
            m.keys().copied().collect()
        } else if let Some(m) = scope.families.get(name) {
            m.keys().copied().collect()
        } else if let Some(DataEntry::Family(m)) = self.data_names.get(name) {
            m.indices().collect()
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

    pub(super) fn report_call(
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
            self.unknown_function(name, &REPORT_FUNCTIONS);
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
    pub(super) fn report_private(
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

pub(super) fn sorted<'a>(names: &[&'a str]) -> Vec<&'a str> {
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
