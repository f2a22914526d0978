//! Compile-time numbers: consts, loop variables, dimensions, ranges and indices.

use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{self, BinaryOp, ExprKind};

/// Loop variables in scope during unrolling, innermost last.
pub(crate) type LoopEnv<'a> = [(&'a str, i64)];

/// The state of a const during lazy evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConstState {
    /// Not evaluated yet; the item index.
    Pending(usize),
    /// Being evaluated (a cycle if met again).
    InProgress,
    /// Its value.
    Done(f64),
    /// Its definition was wrong (already reported).
    Failed,
}

impl Checker<'_> {
    /// Evaluates a compile-time expression: numbers, consts and loop variables with
    /// `+ - * / ^`. Reports and returns `None` when it is not constant or not finite.
    pub(crate) fn const_eval(&mut self, expr: &ast::Expr, env: &LoopEnv) -> Option<f64> {
        let value = match &expr.kind {
            ExprKind::Number(n) => *n,
            ExprKind::Name(name) => {
                if let Some(&(_, v)) = env.iter().rev().find(|(n, _)| *n == name) {
                    return Some(v as f64);
                }
                return self.const_value(name, expr.span);
            }
            ExprKind::Neg(inner) => -self.const_eval(inner, env)?,
            ExprKind::Binary(op, lhs, rhs) => {
                let a = self.const_eval(lhs, env);
                let b = self.const_eval(rhs, env);
                let (a, b) = (a?, b?);
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Pow => a.powf(b),
                    BinaryOp::MatMul => {
                        self.error(
                            Diagnostic::error("E0111", "`@` in a constant expression", expr.span)
                                .with_label("not a number")
                                .with_help("constant expressions use numbers, consts and loop variables with + - * / ^"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0111",
                        format!("`{}` is not a constant expression", self.snippet(expr.span)),
                        expr.span,
                    )
                    .with_label("must be known when the file is checked")
                    .with_help("use numbers, consts and loop variables with + - * / ^"),
                );
                return None;
            }
        };
        if !value.is_finite() {
            self.error(
                Diagnostic::error(
                    "E0112",
                    format!(
                        "`{}` evaluates to {}",
                        self.snippet(expr.span),
                        crate::name::short_number(value)
                    ),
                    expr.span,
                )
                .with_label("not a finite number")
                .with_help("check for a division by zero or an overflow"),
            );
            return None;
        }
        Some(value)
    }

    /// The value of the const `name`, evaluating it on first use.
    pub(crate) fn const_value(&mut self, name: &str, span: Span) -> Option<f64> {
        match self.const_state.get(name).copied() {
            Some(ConstState::Done(v)) => Some(v),
            Some(ConstState::Failed) => None,
            Some(ConstState::InProgress) => {
                self.error(
                    Diagnostic::error(
                        "E0102",
                        format!("const `{name}` is defined in terms of itself"),
                        span,
                    )
                    .with_label("used while it is being defined")
                    .with_help("give the const a value that does not depend on itself"),
                );
                self.const_state
                    .insert(name.to_string(), ConstState::Failed);
                None
            }
            Some(ConstState::Pending(item)) => {
                self.const_state
                    .insert(name.to_string(), ConstState::InProgress);
                let ast::Item::Const(c) = &self.file.items[item] else {
                    return None;
                };
                let value = self.const_eval(&c.value, &[]);
                let state = match value {
                    Some(v) => ConstState::Done(v),
                    None => ConstState::Failed,
                };
                if !matches!(self.const_state.get(name), Some(ConstState::Failed)) {
                    self.const_state.insert(name.to_string(), state);
                }
                value
            }
            None => {
                let (message, help) = match self.globals.get(name) {
                    Some((kind, _)) => (
                        format!("`{name}` is {kind}, not a number"),
                        "a constant expression can use numbers, consts and loop variables"
                            .to_string(),
                    ),
                    None => (
                        format!("unknown name `{name}`"),
                        self.suggest(name, "declare it with `const NAME = VALUE;`"),
                    ),
                };
                self.error(
                    Diagnostic::error("E0104", message, span)
                        .with_label("not a const or loop variable")
                        .with_help(help),
                );
                None
            }
        }
    }

    /// A compile-time integer (dimension, range bound, index), with `what` naming its role.
    pub(crate) fn const_int(&mut self, expr: &ast::Expr, env: &LoopEnv, what: &str) -> Option<i64> {
        let value = self.const_eval(expr, env)?;
        if value.fract() != 0.0 || value.abs() > 9.0e15 {
            self.error(
                Diagnostic::error(
                    "E0113",
                    format!(
                        "{what} must be an integer, found {}",
                        crate::name::short_number(value)
                    ),
                    expr.span,
                )
                .with_label("not an integer")
                .with_help(format!("write {what} as a whole number")),
            );
            return None;
        }
        Some(value as i64)
    }

    /// A dimension: a positive integer.
    pub(crate) fn dimension(&mut self, expr: &ast::Expr) -> Option<usize> {
        let value = self.const_eval(expr, &[])?;
        if value.fract() != 0.0 || value < 1.0 {
            self.error(
                Diagnostic::error(
                    "E0214",
                    format!(
                        "dimension `{}` is {}",
                        self.snippet(expr.span),
                        crate::name::short_number(value)
                    ),
                    expr.span,
                )
                .with_label("not a positive integer")
                .with_help("a dimension is a positive whole number: `real[3]`, `real[N, 2]`"),
            );
            return None;
        }
        if value > 1.0e15 {
            self.memory_error(expr.span, "this dimension", value * 8.0);
            return None;
        }
        Some(value as usize)
    }
}
