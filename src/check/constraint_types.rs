//! The typed constraints of a checked program (docs/language.md, "Constraints and
//! penalties" and "Saddle problems"): the [`Domain`] a decision variable is kept in, an
//! objective's [`Penalty`] terms and equality [`Constraint`]s. Re-exported by
//! `check::program`, the contract with the run side, which projects onto domains, takes
//! proximal steps for penalties and ascends in the dual variables of constraints.

use super::program::{Callee, CompositeId, Expr, Objective, Program};
use crate::diagnostic::Span;
use std::fmt;

/// The set a decision variable (port, `var` or junction) is kept in: after every step the
/// run side projects the iterate onto it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Domain {
    /// No constraint: a variable declared without `in ...`. The trivial domain, which
    /// unifies with any other on a junction.
    #[default]
    Real,
    /// `nonneg`: every entry >= 0.
    NonNeg,
    /// `box(lo, hi)`: every entry in `[lo, hi]` (`lo <= hi`, checked).
    Box {
        /// The lower bound.
        lo: f64,
        /// The upper bound.
        hi: f64,
    },
    /// `simplex`: entries >= 0 that sum to 1 (a vector only, checked).
    Simplex,
    /// `ball(r)`: Euclidean norm of the whole variable <= r (`r > 0`, checked).
    Ball {
        /// The radius.
        radius: f64,
    },
}

/// The domains as written after `in`, with their number of arguments.
pub const DOMAIN_NAMES: [(&str, usize); 4] =
    [("nonneg", 0), ("box", 2), ("simplex", 0), ("ball", 1)];

impl Domain {
    /// True for [`Domain::Real`], the domain of an unconstrained variable.
    pub fn is_trivial(self) -> bool {
        self == Domain::Real
    }

    /// The common domain of two declarations of one junction (its ports' and its `where`
    /// declaration's): the trivial domain gives way to any other, equal domains agree, and
    /// two different non-trivial domains have none (`None`: an error, E0416). Domains are
    /// not intersected: `nonneg` and `box(0, 1)` on one junction are refused, so that a
    /// junction's domain is always one that some box or declaration wrote.
    pub fn unify(self, other: Domain) -> Option<Domain> {
        match (self, other) {
            (Domain::Real, d) | (d, Domain::Real) => Some(d),
            (a, b) if a == b => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for Domain {
    /// As written after `in` (`real` for the trivial domain).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Domain::Real => write!(f, "real"),
            Domain::NonNeg => write!(f, "nonneg"),
            Domain::Box { lo, hi } => write!(f, "box({lo}, {hi})"),
            Domain::Simplex => write!(f, "simplex"),
            Domain::Ball { radius } => write!(f, "ball({radius})"),
        }
    }
}

/// Which penalty a `penalty` statement adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyKind {
    /// `l1`: `weight * sum |x|` (its proximal step soft-thresholds every entry).
    L1,
    /// `l2`: `weight * ||x||`, the Euclidean norm of the whole variable (group lasso).
    L2,
}

impl PenaltyKind {
    /// Every kind, with its name as written.
    pub const ALL: [(PenaltyKind, &'static str); 2] =
        [(PenaltyKind::L1, "l1"), (PenaltyKind::L2, "l2")];

    /// The kind's name as written.
    pub fn name(self) -> &'static str {
        match self {
            PenaltyKind::L1 => "l1",
            PenaltyKind::L2 => "l2",
        }
    }
}

/// A decision variable of an objective, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableRef {
    /// The i-th port.
    Port(usize),
    /// The i-th private `var`.
    Var(usize),
}

/// `penalty KIND(variable, weight);`: a term of the objective that is not differentiated;
/// the run side takes its proximal step after each gradient step.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    /// `l1` or `l2`.
    pub kind: PenaltyKind,
    /// The penalised variable: a port or `var` of the objective (never data or an
    /// expression, checked).
    pub variable: VariableRef,
    /// The weight lambda (a constant >= 0, checked).
    pub weight: f64,
    /// The whole statement.
    pub span: Span,
}

/// `subject to LHS == RHS;`: an equality constraint of an objective. It adds a private
/// dual variable with one entry per entry of the sides (`rows`) and the Lagrangian term
/// `lambda . (LHS - RHS)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The left side, typed in the objective's scope.
    pub lhs: Expr,
    /// The right side; its shape equals the left side's (checked).
    pub rhs: Expr,
    /// The number of dual variables (rows of the constraint): the sides' number of entries.
    pub rows: usize,
    /// The whole statement.
    pub span: Span,
}

/// A domain, penalty, equality constraint or `dual` mark that a composite uses: what the
/// run side does not run yet, so that `catopt run` can refuse it by name.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintUse {
    /// What it is, for a message: "the domain `nonneg` of `x`", "a `penalty`", ...
    pub what: String,
    /// Where it is written.
    pub span: Span,
}

impl Program {
    /// The first domain, penalty, `subject to` or `dual` mark that composite `composite`
    /// uses once flattened: in the objectives its boxes and its nested composites' boxes call,
    /// then on the junctions of these composites. `None` for a problem that plain gradient
    /// descent runs.
    pub fn constraint_use(&self, composite: CompositeId) -> Option<ConstraintUse> {
        let mut seen = vec![false; self.composites.len()];
        let mut reached = Vec::new();
        let mut stack = vec![composite];
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0 as usize], true) {
                continue;
            }
            reached.push(id);
            for callee in self.composites[id.0 as usize].boxes.callees() {
                match callee {
                    Callee::Objective(o) => {
                        if let Some(used) = objective_use(&self.objectives[o.0 as usize]) {
                            return Some(used);
                        }
                    }
                    Callee::Composite(inner) => stack.push(inner),
                }
            }
        }
        // A junction's domain or dual mark comes from a port (found above, unless no box
        // reaches it) or from its `where` declaration.
        reached.iter().find_map(|id| {
            let c = &self.composites[id.0 as usize];
            let j = c
                .junctions
                .iter()
                .find(|j| !j.domain.is_trivial() || j.dual)?;
            let what = if j.dual {
                format!("the dual junction `{}`", j.name)
            } else {
                format!("the domain `{}` of junction `{}`", j.domain, j.name)
            };
            Some(ConstraintUse { what, span: j.span })
        })
    }
}

/// The first constraint feature of one objective (see [`Program::constraint_use`]).
fn objective_use(o: &Objective) -> Option<ConstraintUse> {
    for v in o.ports.iter().chain(&o.vars) {
        if v.dual {
            let what = format!("the dual variable `{}` of `{}`", v.name, o.name);
            return Some(ConstraintUse { what, span: v.span });
        }
        if !v.domain.is_trivial() {
            let what = format!("the domain `{}` of `{}` in `{}`", v.domain, v.name, o.name);
            return Some(ConstraintUse { what, span: v.span });
        }
    }
    if let Some(p) = o.penalties.first() {
        let what = format!("a `penalty {}` in `{}`", p.kind.name(), o.name);
        return Some(ConstraintUse { what, span: p.span });
    }
    o.constraints.first().map(|c| ConstraintUse {
        what: format!("a `subject to` constraint in `{}`", o.name),
        span: c.span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Domain = Domain::Box { lo: -1.0, hi: 1.0 };

    #[test]
    fn the_trivial_domain_gives_way_to_any_other() {
        for d in [
            Domain::Real,
            Domain::NonNeg,
            B,
            Domain::Simplex,
            Domain::Ball { radius: 2.0 },
        ] {
            assert_eq!(Domain::Real.unify(d), Some(d));
            assert_eq!(d.unify(Domain::Real), Some(d));
        }
    }

    #[test]
    fn equal_domains_agree_and_different_ones_do_not() {
        assert_eq!(B.unify(B), Some(B));
        assert_eq!(
            Domain::Simplex.unify(Domain::Simplex),
            Some(Domain::Simplex)
        );
        assert_eq!(Domain::NonNeg.unify(Domain::Simplex), None);
        assert_eq!(Domain::NonNeg.unify(Domain::Box { lo: 0.0, hi: 1.0 }), None);
        assert_eq!(B.unify(Domain::Box { lo: -1.0, hi: 2.0 }), None);
        assert_eq!(
            Domain::Ball { radius: 1.0 }.unify(Domain::Ball { radius: 2.0 }),
            None
        );
    }

    #[test]
    fn unification_is_symmetric_and_associative() {
        let all = [
            Domain::Real,
            Domain::NonNeg,
            B,
            Domain::Simplex,
            Domain::Ball { radius: 1.0 },
        ];
        for a in all {
            for b in all {
                assert_eq!(a.unify(b), b.unify(a));
                for c in all {
                    let left = a.unify(b).and_then(|ab| ab.unify(c));
                    let right = b.unify(c).and_then(|bc| a.unify(bc));
                    assert_eq!(left, right, "{a} {b} {c}");
                }
            }
        }
    }

    #[test]
    fn domains_print_as_written() {
        assert_eq!(B.to_string(), "box(-1, 1)");
        assert_eq!(Domain::Ball { radius: 0.5 }.to_string(), "ball(0.5)");
        assert_eq!(Domain::Real.to_string(), "real");
    }
}
