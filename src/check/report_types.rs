//! The typed form of a `report` block (docs/language.md, "Reports"): what the checker hands
//! to `crate::report`, which evaluates it on a composite's values after a run.

use super::program::{BinaryOp, CompositeId, DataId, Function};
use crate::diagnostic::Span;
use crate::name::IndexedName;
use crate::shape::Shape;
pub use crate::syntax::ast::CompareOp;

/// A checked `report NAME { ... }` block, loops unrolled.
#[derive(Debug, Clone)]
pub struct Report {
    /// The composite whose variables the lines read.
    pub composite: CompositeId,
    /// Where the block is written (the composite's name after `report`).
    pub span: Span,
    /// Every line, family members one by one, in order; a line may use earlier ones.
    pub lines: Vec<ReportLine>,
}

impl Report {
    /// The lines that are printed (not `let`), in order.
    pub fn entries(&self) -> impl Iterator<Item = &ReportLine> {
        self.lines.iter().filter(|l| l.printed)
    }

    /// Every composite variable the report reads, with the span of its first use.
    pub fn variables(&self) -> Vec<(&VariableRef, Span)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<&ReportExpr> = self.lines.iter().rev().map(|l| &l.expr).collect();
        while let Some(e) = stack.pop() {
            if let ReportKind::Variable(v) = &e.kind {
                if seen.insert(&v.name) {
                    out.push((v, e.span));
                }
            }
            let children = e.children();
            stack.extend(children.into_iter().rev());
        }
        out
    }
}

/// One line (or one member of a family line) of a report.
#[derive(Debug, Clone)]
pub struct ReportLine {
    /// `accuracy` or `accuracy[3]`.
    pub name: IndexedName,
    /// A printed entry (a scalar), or a `let` (any shape, not printed).
    pub printed: bool,
    /// Its value.
    pub expr: ReportExpr,
    /// The line.
    pub span: Span,
}

/// A composite variable read by a report: a junction (`W`, `W[3]`) or a private variable
/// (`task[3].v`), named as `catopt run --output` names it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableRef {
    /// The variable's name in the values file.
    pub name: IndexedName,
    /// Its shape.
    pub shape: Shape,
}

/// A typed report expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportExpr {
    /// What it computes.
    pub kind: ReportKind,
    /// Its shape.
    pub shape: Shape,
    /// Where it is written.
    pub span: Span,
}

/// The kinds of report expressions: the objective language's, plus comparisons, `argmax`
/// and `columns`, which have no gradient and exist only in reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportKind {
    /// A literal, const or loop variable.
    Number(f64),
    /// A data item or data family member.
    Data(DataId),
    /// A junction or private variable of the composite.
    Variable(VariableRef),
    /// An earlier line of the report (index into [`Report::lines`]).
    Line(usize),
    /// Unary minus.
    Neg(Box<ReportExpr>),
    /// Transpose.
    Transpose(Box<ReportExpr>),
    /// An arithmetic operator, elementwise with broadcasting except `@`.
    Binary(BinaryOp, Box<ReportExpr>, Box<ReportExpr>),
    /// A comparison, elementwise with broadcasting: 1 where it holds, else 0.
    Compare(CompareOp, Box<ReportExpr>, Box<ReportExpr>),
    /// A built-in function, with the objective language's conventions (a row-wise call
    /// keeps only its matrix argument; its shape is not a scalar).
    Call(Function, Vec<ReportExpr>),
    /// `argmax(x)`: the 0-based position of the largest entry of a vector (a scalar), or of
    /// each row of a matrix (a vector); the first on ties; NaN if the row holds a NaN.
    Argmax(Box<ReportExpr>),
    /// `columns(F)`: the members of a family, in index order, as the columns of a matrix
    /// (vector members) or the entries of a vector (scalar members).
    Columns(Vec<ReportExpr>),
    /// A bracket literal of scalars: one row.
    Vector(Vec<ReportExpr>),
    /// A bracket literal of scalars: several rows.
    Matrix(Vec<Vec<ReportExpr>>),
    /// `x[i]` or `A[i, j]`, constant in-range indices.
    Index(Box<ReportExpr>, Vec<usize>),
}

impl ReportExpr {
    /// The direct subexpressions, in order.
    pub fn children(&self) -> Vec<&ReportExpr> {
        match &self.kind {
            ReportKind::Number(_)
            | ReportKind::Data(_)
            | ReportKind::Variable(_)
            | ReportKind::Line(_) => vec![],
            ReportKind::Neg(a)
            | ReportKind::Transpose(a)
            | ReportKind::Argmax(a)
            | ReportKind::Index(a, _) => vec![a],
            ReportKind::Binary(_, a, b) | ReportKind::Compare(_, a, b) => vec![a, b],
            ReportKind::Call(_, args) | ReportKind::Columns(args) | ReportKind::Vector(args) => {
                args.iter().collect()
            }
            ReportKind::Matrix(rows) => rows.iter().flatten().collect(),
        }
    }
}
