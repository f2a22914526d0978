//! Penalties, equality constraints and dual marks of an objective (docs/language.md,
//! "Constraints and penalties" and "Saddle problems"), typed into [`Penalty`] and
//! [`Constraint`] in the objective's scope.
//!
//! The rules checked here, each a coded error:
//! - `dual` marks ports and `var`s, not data parameters (E0239);
//! - a penalty is `l1(x, weight)` or `l2(x, weight)` (E0240, with the closest kind);
//! - a penalty's first argument is a port or `var` of the objective itself, not data, a
//!   `let` or an expression (E0241), and its weight is a constant >= 0 (E0111, E0242);
//! - the two sides of `subject to LHS == RHS` have one shape (E0243): the constraint has
//!   one dual variable per entry, so neither side broadcasts.

use super::objective::Scope;
use super::program::{Constraint, ExprKind, Penalty, PenaltyKind, VariableRef};
use super::{closest, Checker};
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast;

impl Checker<'_> {
    /// `dual` written on a data parameter (E0239).
    pub(crate) fn dual_on_data(&mut self, mark: Span, param: &str, objective: &str) {
        self.error(
            Diagnostic::error(
                "E0239",
                format!("data parameter `{param}` of `{objective}` is marked `dual`, but data is not a variable"),
                mark,
            )
            .with_label("`dual` on data")
            .with_help("`dual` marks a port or `var` that methods ascend in (a price); move it before the `;` in the header, or remove `dual`"),
        );
    }

    /// Checks `penalty KIND(variable, weight);` in the objective's scope; `None` after an
    /// error.
    pub(super) fn penalty(
        &mut self,
        kind: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        objective: &str,
        scope: &mut Scope,
    ) -> Option<Penalty> {
        let Some(&(penalty_kind, _)) = PenaltyKind::ALL.iter().find(|(_, n)| *n == kind.name)
        else {
            let names = PenaltyKind::ALL.iter().map(|(_, n)| *n);
            let help = match closest(&kind.name, names) {
                Some(best) => format!("did you mean `{best}`? write `penalty l1(x, weight);` (sum of |x|) or `penalty l2(x, weight);` (Euclidean norm)"),
                None => "write `penalty l1(x, weight);` (sum of |x|) or `penalty l2(x, weight);` (Euclidean norm)".to_string(),
            };
            self.error(
                Diagnostic::error(
                    "E0240",
                    format!("unknown penalty `{}`", kind.name),
                    kind.span,
                )
                .with_label("no such penalty")
                .with_help(help),
            );
            return None;
        };
        let [target, weight] = args else {
            self.error(
                Diagnostic::error(
                    "E0240",
                    format!(
                        "penalty `{}` takes 2 arguments (a variable and a weight), but {} given",
                        kind.name,
                        crate::name::counted_is(args.len(), "argument")
                    ),
                    span,
                )
                .with_label("wrong number of arguments")
                .with_help(format!("write `penalty {}(x, 0.01);`", kind.name)),
            );
            return None;
        };
        let typed = self.expr(target, scope);
        let weight_value = self.const_eval(weight, &[]);
        let variable = match typed?.kind {
            ExprKind::Port(i) => VariableRef::Port(i),
            ExprKind::Var(i) => VariableRef::Var(i),
            other => {
                let what = match other {
                    ExprKind::DataParam(_) | ExprKind::Data(_) => "data",
                    ExprKind::Let(_) => "a `let` binding",
                    _ => "an expression",
                };
                self.error(
                    Diagnostic::error(
                        "E0241",
                        format!(
                            "`penalty {}` on `{}` in `{objective}`, which is {what}, not a decision variable",
                            kind.name,
                            self.snippet(target.span)
                        ),
                        target.span,
                    )
                    .with_label(format!("{what}, not a variable"))
                    .with_help("a penalty's proximal step moves a variable: name a port or `var` of this objective (for a term of an expression, add it to `minimize`)"),
                );
                return None;
            }
        };
        let weight_value = weight_value?;
        if weight_value < 0.0 {
            self.error(
                Diagnostic::error(
                    "E0242",
                    format!("`penalty {}` in `{objective}` has a negative weight {weight_value}", kind.name),
                    weight.span,
                )
                .with_label("negative")
                .with_help("a penalty's weight is >= 0 (a negative one rewards large values and has no proximal step)"),
            );
            return None;
        }
        Some(Penalty {
            kind: penalty_kind,
            variable,
            weight: weight_value,
            span,
        })
    }

    /// Checks `subject to LHS == RHS;` in the objective's scope; `None` after an error.
    pub(super) fn constraint(
        &mut self,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        span: Span,
        objective: &str,
        scope: &mut Scope,
    ) -> Option<Constraint> {
        let left = self.expr(lhs, scope);
        let right = self.expr(rhs, scope);
        let (left, right) = (left?, right?);
        if left.shape != right.shape {
            self.error(
                Diagnostic::error(
                    "E0243",
                    format!(
                        "the sides of a `subject to` in `{objective}` differ in shape: {} and {}",
                        left.shape, right.shape
                    ),
                    span,
                )
                .with_label("shapes differ")
                .with_secondary(lhs.span, format!("`{}` is {}", self.snippet(lhs.span), left.shape))
                .with_secondary(rhs.span, format!("`{}` is {}", self.snippet(rhs.span), right.shape))
                .with_help("a constraint has one dual variable per entry, so both sides need one shape (no broadcasting): write the right side at the left side's shape (e.g. data of that shape), or reduce the left side"),
            );
            return None;
        }
        let rows = left.shape.len();
        Some(Constraint {
            lhs: left,
            rhs: right,
            rows,
            span,
        })
    }
}
