//! Objectives: ports, data parameters, vars, lets, the goal; shape inference of every
//! expression under the broadcasting rules of docs/language.md.

use super::program::{
    BinaryOp, DataId, DataParam, Expr, ExprKind, Function, Let, Objective, Sense, Variable,
};
use super::{closest, Checker, DataEntry, GlobalKind};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::counted;
use crate::shape::Shape;
use crate::syntax::ast;
use std::collections::HashMap;

/// What a name means inside an objective body.
#[derive(Clone, Copy)]
pub(super) enum Local {
    Port(usize),
    Var(usize),
    DataParam(usize),
    Let(usize),
}

/// Names and shapes visible in one objective body.
pub(super) struct Scope {
    locals: HashMap<String, (Local, Span)>,
    ports: Vec<Shape>,
    vars: Vec<Shape>,
    data_params: Vec<Shape>,
    lets: Vec<Shape>,
    /// Which locals are used, by declaration span start.
    used: std::collections::HashSet<usize>,
    /// Locals that a did-you-mean pointed to, by declaration span start: their error
    /// already explains them, so they get no W0001 "unused" warning.
    suggested: std::collections::HashSet<usize>,
}

impl Scope {
    fn shape(&self, local: Local) -> Shape {
        match local {
            Local::Port(i) => self.ports[i],
            Local::Var(i) => self.vars[i],
            Local::DataParam(i) => self.data_params[i],
            Local::Let(i) => self.lets[i],
        }
    }
}

impl Checker<'_> {
    /// Checks one objective; `None` if it has errors.
    pub(crate) fn objective(&mut self, item: &ast::ObjectiveItem) -> Option<Objective> {
        let errors_before = self.error_count();
        let mut scope = Scope {
            locals: HashMap::new(),
            ports: Vec::new(),
            vars: Vec::new(),
            data_params: Vec::new(),
            lets: Vec::new(),
            used: Default::default(),
            suggested: Default::default(),
        };
        let mut ports = Vec::new();
        for p in &item.ports {
            let shape = self.shape(&p.ty);
            let owner = format!("port `{}` of `{}`", p.name.name, item.name.name);
            let domain = self.domain(p.domain.as_ref(), shape, &owner);
            if self.declare(&mut scope, &p.name, Local::Port(ports.len()), "port") {
                scope.ports.push(shape.unwrap_or(Shape::Scalar));
                ports.push(Variable {
                    name: p.name.name.clone(),
                    shape: shape.unwrap_or(Shape::Scalar),
                    init: None,
                    domain,
                    dual: p.dual.is_some(),
                    span: p.name.span,
                });
            }
        }
        let mut data_params = Vec::new();
        for p in &item.data_params {
            let shape = self.shape(&p.ty);
            if let Some(domain) = &p.domain {
                let owner = format!("data parameter `{}` of `{}`", p.name.name, item.name.name);
                self.domain_on_data(domain, &owner);
            }
            if let Some(mark) = p.dual {
                self.dual_on_data(mark, &p.name.name, &item.name.name);
            }
            if self.declare(
                &mut scope,
                &p.name,
                Local::DataParam(data_params.len()),
                "data parameter",
            ) {
                scope.data_params.push(shape.unwrap_or(Shape::Scalar));
                data_params.push(DataParam {
                    name: p.name.name.clone(),
                    shape: shape.unwrap_or(Shape::Scalar),
                    sampled: p.sample.is_some(),
                    span: p.name.span,
                });
            }
        }
        // Vars first: decision variables are visible in the whole body.
        let mut vars = Vec::new();
        for stmt in &item.body {
            if let ast::Stmt::Var {
                name,
                ty,
                dual,
                domain,
                init,
                ..
            } = stmt
            {
                let shape = self.shape(ty);
                let init = init.as_ref().and_then(|e| self.const_eval(e, &[]));
                let owner = format!("variable `{}` of `{}`", name.name, item.name.name);
                let domain = self.domain(domain.as_ref(), shape, &owner);
                if self.declare(&mut scope, name, Local::Var(vars.len()), "variable") {
                    scope.vars.push(shape.unwrap_or(Shape::Scalar));
                    vars.push(Variable {
                        name: name.name.clone(),
                        shape: shape.unwrap_or(Shape::Scalar),
                        init,
                        domain,
                        dual: dual.is_some(),
                        span: name.span,
                    });
                }
            }
        }
        let mut lets = Vec::new();
        let mut penalties = Vec::new();
        let mut constraints = Vec::new();
        let mut goal: Option<(Sense, Option<Expr>, Span)> = None;
        for stmt in &item.body {
            if let Some((_, _, goal_span)) = &goal {
                let goal_span = *goal_span;
                let (code, message) = match stmt {
                    ast::Stmt::Goal { .. } => (
                        "E0217",
                        format!("objective `{}` has two goals", item.name.name),
                    ),
                    _ => (
                        "E0218",
                        format!("statement after the goal of objective `{}`", item.name.name),
                    ),
                };
                let span = stmt.span();
                self.error(
                    Diagnostic::error(code, message, span)
                        .with_label("after the goal")
                        .with_secondary(goal_span, "the goal is here")
                        .with_help("an objective body ends with exactly one `minimize` or `maximize`; add the terms together"),
                );
                continue;
            }
            match stmt {
                ast::Stmt::Var { .. } => {}
                ast::Stmt::Penalty { kind, args, span } => {
                    let name = &item.name.name;
                    penalties.push(self.penalty(kind, args, *span, name, &mut scope));
                }
                ast::Stmt::Constraint { lhs, rhs, span } => {
                    let name = &item.name.name;
                    constraints.push(self.constraint(lhs, rhs, *span, name, &mut scope));
                }
                ast::Stmt::Let { name, value, .. } => {
                    let expr = self.expr(value, &mut scope);
                    if self.declare(&mut scope, name, Local::Let(lets.len()), "let binding") {
                        let shape = expr.as_ref().map_or(Shape::Scalar, |e| e.shape);
                        scope.lets.push(shape);
                        lets.push(expr.map(|expr| Let {
                            name: name.name.clone(),
                            expr,
                            span: name.span,
                        }));
                    }
                }
                ast::Stmt::Goal {
                    goal: g,
                    expr,
                    span,
                } => {
                    let sense = match g {
                        ast::Goal::Minimize => Sense::Minimize,
                        ast::Goal::Maximize => Sense::Maximize,
                    };
                    let body = self.expr(expr, &mut scope);
                    if let Some(body) = &body {
                        if !body.shape.is_scalar() {
                            let word = if sense == Sense::Minimize {
                                "minimize"
                            } else {
                                "maximize"
                            };
                            self.error(
                                Diagnostic::error(
                                    "E0216",
                                    format!("`{word}` needs a scalar, but `{}` is {}", self.snippet(expr.span), body.shape),
                                    expr.span,
                                )
                                .with_label(format!("this is {}", body.shape))
                                .with_help("reduce it to a number with `sum(...)`, `mean(...)` or `sumsq(...)`"),
                            );
                        }
                    }
                    goal = Some((sense, body, *span));
                }
            }
        }
        let Some((sense, body, _)) = goal else {
            self.error(
                Diagnostic::error(
                    "E0219",
                    format!(
                        "objective `{}` has no `minimize` or `maximize`",
                        item.name.name
                    ),
                    item.name.span,
                )
                .with_label("no goal")
                .with_help("end the body with `minimize EXPR;`"),
            );
            return None;
        };
        // Unused warnings.
        let mut unused: Vec<(&str, &ast::Ident)> = Vec::new();
        for p in &item.ports {
            unused.push(("port", &p.name));
        }
        for p in &item.data_params {
            unused.push(("data parameter", &p.name));
        }
        for stmt in &item.body {
            match stmt {
                ast::Stmt::Var { name, .. } => unused.push(("variable", name)),
                ast::Stmt::Let { name, .. } => unused.push(("let binding", name)),
                ast::Stmt::Goal { .. }
                | ast::Stmt::Penalty { .. }
                | ast::Stmt::Constraint { .. } => {}
            }
        }
        for (what, name) in unused {
            if !scope.used.contains(&name.span.start)
                && !scope.suggested.contains(&name.span.start)
                && !name.name.starts_with('_')
            {
                self.error(
                    Diagnostic::warning(
                        "W0001",
                        format!("{what} `{}` is never used", name.name),
                        name.span,
                    )
                    .with_label("unused")
                    .with_help(format!(
                        "use it in the objective, remove it, or name it `_{}`",
                        name.name
                    )),
                );
            }
        }
        if data_params.len() == item.data_params.len() {
            let shapes: Vec<Shape> = data_params.iter().map(|p| p.shape).collect();
            self.sampled_params(item, &shapes);
        }
        if self.error_count() > errors_before {
            return None;
        }
        Some(Objective {
            name: item.name.name.clone(),
            span: item.name.span,
            ports,
            data_params,
            vars,
            lets: lets.into_iter().collect::<Option<Vec<_>>>()?,
            sense,
            body: body?,
            penalties: penalties.into_iter().collect::<Option<Vec<_>>>()?,
            constraints: constraints.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Declares a local name; reports a duplicate and returns false.
    fn declare(&mut self, scope: &mut Scope, name: &ast::Ident, local: Local, what: &str) -> bool {
        if let Some((_, first)) = scope.locals.get(&name.name) {
            let first = *first;
            self.error(
                Diagnostic::error(
                    "E0103",
                    format!("duplicate name `{}` in this objective", name.name),
                    name.span,
                )
                .with_label(format!("{what} `{}` declared again", name.name))
                .with_secondary(first, "first declared here")
                .with_help(
                    "ports, data parameters, vars and lets of one objective need distinct names",
                ),
            );
            return false;
        }
        scope.locals.insert(name.name.clone(), (local, name.span));
        true
    }

    /// Checks an expression and infers its shape; `None` after reporting an error.
    pub(super) fn expr(&mut self, e: &ast::Expr, scope: &mut Scope) -> Option<Expr> {
        let (kind, shape) = match &e.kind {
            ast::ExprKind::Number(n) => (ExprKind::Number(*n), Shape::Scalar),
            ast::ExprKind::Name(name) => return self.name_expr(name, e.span, scope),
            ast::ExprKind::Neg(inner) => {
                let inner = self.expr(inner, scope)?;
                let shape = inner.shape;
                (ExprKind::Neg(Box::new(inner)), shape)
            }
            ast::ExprKind::Transpose(inner) => {
                let inner = self.expr(inner, scope)?;
                let shape = inner.shape.transpose();
                (ExprKind::Transpose(Box::new(inner)), shape)
            }
            ast::ExprKind::Binary(op, lhs, rhs) => {
                let a = self.expr(lhs, scope);
                let b = self.expr(rhs, scope);
                let (a, b) = (a?, b?);
                let op = BinaryOp::from(*op);
                let shape = if op == BinaryOp::MatMul {
                    a.shape.matmul(b.shape)
                } else {
                    a.shape.broadcast(b.shape)
                };
                let Some(shape) = shape else {
                    let (code, message, help) = if op == BinaryOp::MatMul {
                        (
                            "E0202",
                            format!("cannot multiply {} @ {}", a.shape, b.shape),
                            "the inner dimensions of `@` must agree (and neither side may be a scalar; use `*` for scaling); transpose with `'`".to_string(),
                        )
                    } else {
                        (
                            "E0201",
                            format!("shapes {} and {} do not broadcast in `{}`", a.shape, b.shape, symbol(op)),
                            "elementwise operators need equal shapes, a scalar, or a vector whose length is the matrix's number of columns".to_string(),
                        )
                    };
                    self.error(
                        Diagnostic::error(code, message, e.span)
                            .with_label("shape mismatch")
                            .with_secondary(
                                a.span,
                                format!("`{}` is {}", self.snippet(a.span), a.shape),
                            )
                            .with_secondary(
                                b.span,
                                format!("`{}` is {}", self.snippet(b.span), b.shape),
                            )
                            .with_help(help),
                    );
                    return None;
                };
                (ExprKind::Binary(op, Box::new(a), Box::new(b)), shape)
            }
            ast::ExprKind::Call(name, args) => return self.call(name, args, e.span, scope),
            ast::ExprKind::Matrix(rows) => {
                let mut checked_rows = Vec::with_capacity(rows.len());
                let mut ok = true;
                for row in rows {
                    let mut r = Vec::with_capacity(row.len());
                    for item in row {
                        match self.expr(item, scope) {
                            Some(x) if x.shape.is_scalar() => r.push(x),
                            Some(x) => {
                                ok = false;
                                self.error(
                                    Diagnostic::error(
                                        "E0205",
                                        format!("entry `{}` of a bracket literal is {}, not a scalar", self.snippet(item.span), x.shape),
                                        item.span,
                                    )
                                    .with_label("not a scalar")
                                    .with_help("`[a, b; c, d]` builds a vector or matrix from scalars; index with `x[i]` to pick an entry"),
                                );
                            }
                            None => ok = false,
                        }
                    }
                    checked_rows.push(r);
                }
                let cols = rows.first().map_or(0, Vec::len);
                if cols == 0 {
                    self.error(
                        Diagnostic::error("E0205", "empty bracket literal", e.span)
                            .with_label("no entries")
                            .with_help("write at least one entry: `[a, b]`"),
                    );
                    return None;
                }
                if let Some((r, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
                    self.error(
                        Diagnostic::error(
                            "E0213",
                            format!(
                                "row {} of the matrix literal has {}, the first row has {cols}",
                                r + 1,
                                counted(row.len(), "entry")
                            ),
                            e.span,
                        )
                        .with_label("ragged matrix literal")
                        .with_help("every row needs the same number of entries"),
                    );
                    return None;
                }
                if !ok {
                    return None;
                }
                if checked_rows.len() == 1 {
                    let row = checked_rows.pop().unwrap_or_default();
                    (ExprKind::Vector(row), Shape::Vector(cols))
                } else {
                    let shape = Shape::Matrix(checked_rows.len(), cols);
                    (ExprKind::Matrix(checked_rows), shape)
                }
            }
            ast::ExprKind::Index(base, indices) => return self.index(base, indices, e.span, scope),
            ast::ExprKind::Rows(..) => {
                self.error(
                    Diagnostic::error(
                        "E0415",
                        format!("`{}` reads rows: only a box call's data argument may", self.snippet(e.span)),
                        e.span,
                    )
                    .with_label("rows outside a data argument")
                    .with_help("pass the rows to the objective as data (`f(x; X[a..b])` in the composite) and use the data parameter here"),
                );
                return None;
            }
            ast::ExprKind::Compare(op, ..) => {
                self.error(
                    Diagnostic::error(
                        "E0904",
                        format!("comparison `{}` in an objective", op.symbol()),
                        e.span,
                    )
                    .with_label("has no gradient")
                    .with_help("comparisons (and `argmax`, `columns`, `label.var`) are for `report` blocks, which are evaluated after a run, not differentiated; in an objective use a smooth surrogate (`sigmoid`, `softplus`, `max`)"),
                );
                return None;
            }
            ast::ExprKind::Field(_, field) => {
                self.error(
                    Diagnostic::error(
                        "E0904",
                        format!("`{}` in an objective", self.snippet(e.span)),
                        field.span,
                    )
                    .with_label("`label.var` paths exist only in report blocks and `init` lines")
                    .with_help("an objective sees its own ports, variables, data parameters and lets; pass a shared value through a port"),
                );
                return None;
            }
        };
        Some(Expr {
            kind,
            shape,
            span: e.span,
        })
    }

    fn name_expr(&mut self, name: &str, span: Span, scope: &mut Scope) -> Option<Expr> {
        if let Some(&(local, decl)) = scope.locals.get(name) {
            // A let is only visible after its definition.
            if let Local::Let(i) = local {
                if i >= scope.lets.len() {
                    return self.unknown_name(name, span, Some(decl), scope);
                }
            }
            scope.used.insert(decl.start);
            let kind = match local {
                Local::Port(i) => ExprKind::Port(i),
                Local::Var(i) => ExprKind::Var(i),
                Local::DataParam(i) => ExprKind::DataParam(i),
                Local::Let(i) => ExprKind::Let(i),
            };
            return Some(Expr {
                kind,
                shape: scope.shape(local),
                span,
            });
        }
        match self.globals.get(name).map(|g| g.0) {
            Some(GlobalKind::Const) => {
                let value = self.const_value(name, span)?;
                Some(Expr {
                    kind: ExprKind::Number(value),
                    shape: Shape::Scalar,
                    span,
                })
            }
            Some(GlobalKind::Data) => match self.data_names.get(name) {
                Some(DataEntry::Single(id)) => {
                    let id = *id;
                    Some(Expr {
                        kind: ExprKind::Data(id),
                        shape: self.data[id.0 as usize].value.shape,
                        span,
                    })
                }
                Some(DataEntry::Family(_)) => {
                    self.error(
                        Diagnostic::error("E0105", format!("data family `{name}` used without an index"), span)
                            .with_label("a family, not one value")
                            .with_help(format!("pick a member with `{name}[i]`, or pass it as a data argument `{name}[t]`")),
                    );
                    None
                }
                _ => None,
            },
            Some(kind) => {
                self.error(
                    Diagnostic::error("E0104", format!("`{name}` is {kind}, not a value"), span)
                        .with_label("not usable in an expression")
                        .with_help("objectives and composites are called as boxes in a composite, not in expressions"),
                );
                None
            }
            None => self.unknown_name(name, span, None, scope),
        }
    }

    /// The closest visible local to a misspelled `name`, looked for among the ports, then
    /// the variables, the lets defined so far and the data parameters; with its declaration.
    fn closest_local<'s>(name: &str, scope: &'s Scope) -> Option<(&'s str, Span)> {
        let visible = |local: &Local| match *local {
            Local::Let(i) => i < scope.lets.len(),
            _ => true,
        };
        let rank = |local: &Local| match local {
            Local::Port(_) => 0,
            Local::Var(_) => 1,
            Local::Let(_) => 2,
            Local::DataParam(_) => 3,
        };
        (0..4).find_map(|r| {
            let candidates = scope
                .locals
                .iter()
                .filter(|(_, (l, _))| rank(l) == r && visible(l))
                .map(|(n, _)| n.as_str());
            let best = closest(name, candidates)?;
            scope
                .locals
                .get_key_value(best)
                .map(|(n, (_, decl))| (n.as_str(), *decl))
        })
    }

    fn unknown_name(
        &mut self,
        name: &str,
        span: Span,
        later: Option<Span>,
        scope: &mut Scope,
    ) -> Option<Expr> {
        let mut d = Diagnostic::error("E0104", format!("unknown name `{name}`"), span)
            .with_label("not declared here");
        d = match later {
            Some(decl) => d
                .with_secondary(decl, "defined later, here")
                .with_help(format!("move `let {name}` before its first use")),
            None => match Self::closest_local(name, scope) {
                Some((best, decl)) => {
                    let best = best.to_string();
                    scope.suggested.insert(decl.start);
                    d.with_secondary(decl, format!("`{best}` is declared here"))
                        .with_help(format!("did you mean `{best}`?"))
                }
                None => d.with_help(self.suggest(
                    name,
                    &format!(
                    "declare it with `var {name}: real;`, make it a port, or define it with `let`"
                ),
                )),
            },
        };
        self.error(d);
        None
    }

    fn call(
        &mut self,
        name: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        scope: &mut Scope,
    ) -> Option<Expr> {
        let Some(function) = Function::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name.name)
        else {
            if matches!(name.name.as_str(), "argmax" | "columns") {
                self.error(
                    Diagnostic::error(
                        "E0904",
                        format!("`{}` in an objective", name.name),
                        name.span,
                    )
                    .with_label("has no gradient")
                    .with_help("`argmax` and `columns` are for `report` blocks, which are evaluated after a run, not differentiated"),
                );
                return None;
            }
            self.unknown_function(name, &[]);
            return None;
        };
        // `sum(X, 1)`, `mean(X, 1)`, `logsumexp(X, 1)` and `softmax(X, 1)` reduce (or
        // normalise) along rows; the second argument is the axis, which must be 1.
        let rowwise_optional = matches!(
            function,
            Function::Sum | Function::Mean | Function::LogSumExp
        );
        let (arities, usage): (&[usize], String) = match function {
            Function::Dot | Function::Max | Function::Min => {
                (&[2], format!("write `{}(a, b)`", name.name))
            }
            Function::Softmax => (&[2], "write `softmax(X, 1)` (row-wise)".to_string()),
            _ if rowwise_optional => (
                &[1, 2],
                format!(
                    "write `{0}(x)` over every entry, or `{0}(X, 1)` along the rows of a matrix",
                    name.name
                ),
            ),
            _ => (&[1], format!("write `{}(x)`", name.name)),
        };
        if !arities.contains(&args.len()) {
            let takes = match arities {
                [1] => "1 argument".to_string(),
                [n] => format!("{n} arguments"),
                _ => "1 or 2 arguments".to_string(),
            };
            self.error(
                Diagnostic::error(
                    "E0203",
                    format!("`{}` takes {takes}, found {}", name.name, args.len()),
                    span,
                )
                .with_label("wrong number of arguments")
                .with_help(usage),
            );
            return None;
        }
        let rowwise = args.len() == 2 && (rowwise_optional || function == Function::Softmax);
        if rowwise {
            // The axis is a constant expression; anything else (a port, a variable) gets
            // the axis's own diagnostic rather than the constant evaluator's.
            let before = self.diagnostics.len();
            let axis = self.const_eval(&args[1], &[]);
            self.diagnostics.truncate(before);
            if axis != Some(1.0) {
                let found = match axis {
                    Some(value) => format!("found {value}"),
                    None => format!("found `{}`, not a constant", self.snippet(args[1].span)),
                };
                self.error(
                    Diagnostic::error(
                        "E0206",
                        format!(
                            "the axis of `{}` must be the constant 1, {found}",
                            name.name
                        ),
                        args[1].span,
                    )
                    .with_label("only axis 1 (along each row) is supported")
                    .with_help(format!(
                        "for axis 0 (down each column) transpose the matrix: `{}(X', 1)`",
                        name.name
                    )),
                );
                return None;
            }
        }
        let checked: Vec<Option<Expr>> = if rowwise {
            vec![self.expr(&args[0], scope)]
        } else {
            args.iter().map(|a| self.expr(a, scope)).collect()
        };
        let checked: Vec<Expr> = checked.into_iter().collect::<Option<_>>()?;
        let shape = match function {
            _ if rowwise => {
                let Shape::Matrix(rows, cols) = checked[0].shape else {
                    let alternative = if function == Function::Softmax {
                        "a vector has no rows; for one row write `exp(x - logsumexp(x))`"
                            .to_string()
                    } else {
                        format!(
                            "a vector has no rows (as with NumPy's `axis=1`); write `{}(x)` for all its entries",
                            name.name
                        )
                    };
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
                        .with_help(alternative),
                    );
                    return None;
                };
                if function == Function::Softmax {
                    Shape::Matrix(rows, cols)
                } else {
                    Shape::Vector(rows)
                }
            }
            Function::Sum | Function::Mean | Function::SumSq | Function::LogSumExp => Shape::Scalar,
            Function::Max | Function::Min => {
                let Some(shape) = checked[0].shape.broadcast(checked[1].shape) else {
                    self.error(
                        Diagnostic::error(
                            "E0201",
                            format!(
                                "shapes {} and {} do not broadcast in `{}`",
                                checked[0].shape, checked[1].shape, name.name
                            ),
                            span,
                        )
                        .with_label("shape mismatch")
                        .with_secondary(checked[0].span, format!("this is {}", checked[0].shape))
                        .with_secondary(checked[1].span, format!("this is {}", checked[1].shape))
                        .with_help("elementwise functions need equal shapes, a scalar, or a vector whose length is the matrix's number of columns"),
                    );
                    return None;
                };
                shape
            }
            Function::Dot => {
                if checked[0].shape != checked[1].shape {
                    self.error(
                        Diagnostic::error(
                            "E0204",
                            format!("`dot` needs two arguments of one shape, found {} and {}", checked[0].shape, checked[1].shape),
                            span,
                        )
                        .with_label("shape mismatch")
                        .with_secondary(checked[0].span, format!("this is {}", checked[0].shape))
                        .with_secondary(checked[1].span, format!("this is {}", checked[1].shape))
                        .with_help("`dot(a, b)` sums the elementwise product of equal shapes; use `@` for a matrix product"),
                    );
                    return None;
                }
                Shape::Scalar
            }
            _ => checked[0].shape,
        };
        Some(Expr {
            kind: ExprKind::Call(function, checked),
            shape,
            span,
        })
    }

    fn index(
        &mut self,
        base: &ast::Expr,
        indices: &[ast::Expr],
        span: Span,
        scope: &mut Scope,
    ) -> Option<Expr> {
        // A member of a global data family: `X[3]`.
        if let ast::ExprKind::Name(name) = &base.kind {
            if !scope.locals.contains_key(name) {
                if let Some(DataEntry::Family(members)) = self.data_names.get(name) {
                    let members = *members;
                    let [index] = indices else {
                        self.error(
                            Diagnostic::error(
                                "E0211",
                                format!("data family `{name}` takes one index"),
                                span,
                            )
                            .with_label("wrong number of indices")
                            .with_help(format!("write `{name}[i]`")),
                        );
                        return None;
                    };
                    let i = self.const_int(index, &[], "a family index")?;
                    return match members.get(i) {
                        Some(id) => Some(Expr {
                            kind: ExprKind::Data(id),
                            shape: self.data[id.0 as usize].value.shape,
                            span,
                        }),
                        None => self.missing_member(name, i, index.span),
                    };
                }
            }
        }
        let base = self.expr(base, scope)?;
        let at = self.constant_indices(base.span, base.shape, indices, &[], span)?;
        Some(Expr {
            kind: ExprKind::Index(Box::new(base), at),
            shape: Shape::Scalar,
            span,
        })
    }

    pub(crate) fn missing_member(&mut self, name: &str, i: i64, span: Span) -> Option<Expr> {
        self.error(
            Diagnostic::error(
                "E0115",
                format!("data family `{name}` has no member {i}"),
                span,
            )
            .with_label("no such member")
            .with_help(format!(
                "use an index inside the range of the `for` that defines `{name}`"
            )),
        );
        None
    }

    /// The data id of `X` or `X[i]` (with `env` for loop variables), for a box's data argument.
    pub(crate) fn data_member(&self, name: &str, index: Option<i64>) -> Option<DataId> {
        match (self.data_names.get(name)?, index) {
            (DataEntry::Single(id), None) => Some(*id),
            (DataEntry::Family(m), Some(i)) => m.get(i),
            _ => None,
        }
    }
}

fn symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Pow => "^",
        BinaryOp::MatMul => "@",
    }
}

impl Checker<'_> {
    /// The constant entry indices `[i]` or `[i, j]` of a value of `shape` written at
    /// `base_span` (in an objective, or a report with loop variables `env`): one per
    /// dimension (E0211), each in range (E0212). Shared by objectives and reports.
    pub(super) fn constant_indices(
        &mut self,
        base_span: Span,
        shape: Shape,
        indices: &[ast::Expr],
        env: &super::consts::LoopEnv,
        span: Span,
    ) -> Option<Vec<usize>> {
        let dims: Vec<usize> = match shape {
            Shape::Scalar => vec![],
            Shape::Vector(n) => vec![n],
            Shape::Matrix(m, n) => vec![m, n],
        };
        if dims.len() != indices.len() {
            self.error(
                Diagnostic::error(
                    "E0211",
                    format!(
                        "`{}` is {shape} and takes {}, found {}",
                        self.snippet(base_span),
                        counted(dims.len(), "index"),
                        indices.len()
                    ),
                    span,
                )
                .with_label("wrong number of indices")
                .with_help(
                    "index a vector with `x[i]` and a matrix with `A[i, j]`; a scalar has no \
                     entries to index",
                ),
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
                            "index {i} is out of range for `{}` ({shape})",
                            self.snippet(base_span)
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
        Some(at)
    }

    /// E0106 for a call of an unknown function, with a did-you-mean over the built-in
    /// functions and `extra` names (a report's own functions).
    pub(super) fn unknown_function(&mut self, name: &ast::Ident, extra: &[&str]) {
        let mut names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
        names.extend_from_slice(extra);
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
    }
}

impl From<ast::BinaryOp> for BinaryOp {
    /// The checked operator of a written one.
    fn from(op: ast::BinaryOp) -> BinaryOp {
        match op {
            ast::BinaryOp::Add => BinaryOp::Add,
            ast::BinaryOp::Sub => BinaryOp::Sub,
            ast::BinaryOp::Mul => BinaryOp::Mul,
            ast::BinaryOp::Div => BinaryOp::Div,
            ast::BinaryOp::Pow => BinaryOp::Pow,
            ast::BinaryOp::MatMul => BinaryOp::MatMul,
        }
    }
}
