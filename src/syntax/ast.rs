//! The owned syntax tree of a `.opt` file. Every node carries its byte [`Span`]; no pest
//! type appears here. Names are resolved later, by the checker.

use crate::diagnostic::Span;

/// A whole `.opt` file: its items in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    /// Top-level items (const, data, objective, composite, solve).
    pub items: Vec<Item>,
}

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The text of the name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A top-level item.
#[allow(clippy::large_enum_variant)] // few items per file; boxing buys nothing
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `const n = 8;`
    Const(ConstItem),
    /// `data X = ...;`
    Data(DataItem),
    /// `objective f(...) { ... }`
    Objective(ObjectiveItem),
    /// `composite c(...) where (...) { ... }`
    Composite(CompositeItem),
    /// `solve c { ... }`
    Solve(SolveItem),
    /// `report c { ... }`: named expressions evaluated after a run (`catopt eval`).
    Report(ReportItem),
}

impl Item {
    /// The item's name (the solved composite for a `solve` block).
    pub fn name(&self) -> &Ident {
        match self {
            Item::Const(i) => &i.name,
            Item::Data(i) => &i.name,
            Item::Objective(i) => &i.name,
            Item::Composite(i) => &i.name,
            Item::Solve(i) => &i.target,
            Item::Report(i) => &i.target,
        }
    }

    /// The span of the whole item.
    pub fn span(&self) -> Span {
        match self {
            Item::Const(i) => i.span,
            Item::Data(i) => i.span,
            Item::Objective(i) => i.span,
            Item::Composite(i) => i.span,
            Item::Solve(i) => i.span,
            Item::Report(i) => i.span,
        }
    }
}

/// `const NAME = EXPR;`
#[derive(Debug, Clone, PartialEq)]
pub struct ConstItem {
    /// The const's name.
    pub name: Ident,
    /// Its value: a constant expression of numbers and other consts.
    pub value: Expr,
    /// The whole item.
    pub span: Span,
}

/// `data NAME[: TYPE] = VALUE;` or a data family `data X[t] = VALUE for t in RANGE;`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataItem {
    /// The data item's (or family's) name.
    pub name: Ident,
    /// For a family, its index variable and range.
    pub family: Option<DataFamily>,
    /// The declared type, checked against the loaded value.
    pub ty: Option<Type>,
    /// `in DOMAIN` after the type: an error (data is not a decision variable), kept so
    /// that the checker can say so.
    pub domain: Option<Domain>,
    /// `csv(...)`, an inline literal `[1, 2; 3, 4]` or a number.
    pub source: Value,
    /// The whole item.
    pub span: Span,
}

/// The family part of `data X[t] = ... for t in 0..8;`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFamily {
    /// The index variable in `X[t]`.
    pub index: Ident,
    /// The loop variable after `for` (must be the same name).
    pub loop_var: Ident,
    /// The member range.
    pub range: RangeExpr,
}

/// A type: `real`, `real[n]`, `real[m, n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    /// Zero, one or two dimension expressions.
    pub dims: Vec<Expr>,
    /// Where it is written.
    pub span: Span,
}

/// `in NAME` or `in NAME(ARGS)` after a type: the set a decision variable is kept in
/// (`nonneg`, `box(lo, hi)`, `simplex`, `ball(r)`; the checker knows the names).
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The domain's name as written.
    pub name: Ident,
    /// Its arguments (`box(-1, 1)`); empty without brackets.
    pub args: Vec<Expr>,
    /// Whether brackets were written (`simplex()` as well as `simplex`).
    pub brackets: bool,
    /// From the name to the closing bracket.
    pub span: Span,
}

/// `NAME: [dual] TYPE [in DOMAIN] [sample]` in an objective header.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// Its declared type.
    pub ty: Type,
    /// Where `dual` is written before the type (a dual variable), if it is.
    pub dual: Option<Span>,
    /// `in DOMAIN` after the type, if written.
    pub domain: Option<Domain>,
    /// Where `sample` is written after the type (a data parameter whose rows are drawn in
    /// minibatches), if it is.
    pub sample: Option<Span>,
    /// The whole parameter.
    pub span: Span,
}

/// `objective NAME(PORTS; DATA) { BODY }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveItem {
    /// The objective's name.
    pub name: Ident,
    /// Exposed decision variables.
    pub ports: Vec<Param>,
    /// Data parameters (after `;`).
    pub data_params: Vec<Param>,
    /// Statements of the body, in order.
    pub body: Vec<Stmt>,
    /// The whole item.
    pub span: Span,
}

/// Minimise or maximise, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// `minimize`
    Minimize,
    /// `maximize`
    Maximize,
}

/// A statement in an objective body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `var NAME: [dual] TYPE [in DOMAIN] [= EXPR];`
    Var {
        /// The variable's name.
        name: Ident,
        /// Its type.
        ty: Type,
        /// Where `dual` is written, if it is.
        dual: Option<Span>,
        /// `in DOMAIN`, if written.
        domain: Option<Domain>,
        /// Its initial value (every entry).
        init: Option<Expr>,
        /// The whole statement.
        span: Span,
    },
    /// `let NAME = EXPR;`
    Let {
        /// The bound name.
        name: Ident,
        /// Its value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `penalty KIND(ARGS);` (`penalty l1(x, 0.01);`): a non-differentiated term.
    Penalty {
        /// `l1` or `l2` as written (the checker knows the kinds).
        kind: Ident,
        /// The arguments as written: the variable, then the weight.
        args: Vec<Expr>,
        /// The whole statement.
        span: Span,
    },
    /// `subject to LHS == RHS;`: an equality constraint.
    Constraint {
        /// The left side.
        lhs: Expr,
        /// The right side.
        rhs: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `minimize EXPR;` or `maximize EXPR;`
    Goal {
        /// Which way.
        goal: Goal,
        /// The objective value.
        expr: Expr,
        /// The whole statement.
        span: Span,
    },
}

impl Stmt {
    /// The whole statement.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Var { span, .. }
            | Stmt::Let { span, .. }
            | Stmt::Penalty { span, .. }
            | Stmt::Constraint { span, .. }
            | Stmt::Goal { span, .. } => *span,
        }
    }
}

/// `composite NAME(OUTER) where (DECLS) { BODY }`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeItem {
    /// The composite's name.
    pub name: Ident,
    /// Outer ports (junctions exposed).
    pub outer_ports: Vec<JunctionRef>,
    /// Junction declarations from the `where` clause.
    pub where_decls: Vec<JunctionDecl>,
    /// Box calls and loops.
    pub body: Vec<CompositeStmt>,
    /// The whole item.
    pub span: Span,
}

/// A junction reference: `b` or a family member `x[i + 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JunctionRef {
    /// The (family) name.
    pub name: Ident,
    /// The member index expression, for a family member.
    pub index: Option<Expr>,
    /// Further indices after the first (`f[i, j]`): only box labels in `init` targets
    /// take them; a junction reference with them is an error.
    pub more_indices: Vec<Expr>,
    /// The whole reference.
    pub span: Span,
}

/// `NAME: TYPE [in DOMAIN] [= EXPR]` in a `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct JunctionDecl {
    /// The junction's name.
    pub name: Ident,
    /// Its type.
    pub ty: Type,
    /// `in DOMAIN`, if written.
    pub domain: Option<Domain>,
    /// Its initial value (every entry).
    pub init: Option<Expr>,
    /// The whole declaration.
    pub span: Span,
}

/// A statement in a composite body.
#[derive(Debug, Clone, PartialEq)]
pub enum CompositeStmt {
    /// A box call.
    Call(BoxStmt),
    /// A loop.
    For(ForStmt),
}

/// `[LABEL:] CALLEE(J1, ..., JK [; D1, ...]);`
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStmt {
    /// The optional label.
    pub label: Option<Ident>,
    /// The label's index expressions (`cell[i, j]: ...`); empty for a bare label.
    pub label_indices: Vec<Expr>,
    /// The objective or composite instantiated.
    pub callee: Ident,
    /// The junctions wired to the callee's ports, in order.
    pub junctions: Vec<JunctionRef>,
    /// The data arguments.
    pub data_args: Vec<Expr>,
    /// The whole statement.
    pub span: Span,
}

/// `for VAR in RANGE { BODY }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForStmt {
    /// The loop variable.
    pub var: Ident,
    /// Its half-open range.
    pub range: RangeExpr,
    /// The loop body.
    pub body: Vec<CompositeStmt>,
    /// The whole loop.
    pub span: Span,
}

/// A half-open range `START..END`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeExpr {
    /// The first value.
    pub start: Expr,
    /// One past the last value.
    pub end: Expr,
    /// The whole range.
    pub span: Span,
}

/// `solve NAME { SETTINGS }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveItem {
    /// The composite to solve.
    pub target: Ident,
    /// Settings in order.
    pub settings: Vec<Setting>,
    /// The whole item.
    pub span: Span,
}

/// `report NAME { LINES }`: named expressions of a composite's variables and data.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportItem {
    /// The composite whose variables the lines read.
    pub target: Ident,
    /// The lines in order.
    pub lines: Vec<ReportLine>,
    /// The whole item.
    pub span: Span,
}

/// `[let] NAME[[k]] = EXPR [for k in RANGE];` in a report block.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    /// `let`: an intermediate value (any shape), not printed.
    pub is_let: bool,
    /// The entry's (or family's) name.
    pub name: Ident,
    /// For a family, its index variable and range (as in a data family).
    pub family: Option<DataFamily>,
    /// The value.
    pub value: Expr,
    /// The whole line.
    pub span: Span,
}

/// One line of a solve block.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `NAME = VALUE;`
    Assign {
        /// The setting's name.
        name: Ident,
        /// Its value.
        value: Value,
        /// The whole line.
        span: Span,
    },
    /// `init TARGET = VALUE;`
    Init {
        /// The dotted target path (`x`, `x[3]`, `left.v`).
        target: Vec<JunctionRef>,
        /// The initial value.
        value: Value,
        /// The whole line.
        span: Span,
    },
}

/// A setting or data value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What was written.
    pub kind: ValueKind,
    /// Where.
    pub span: Span,
}

/// The kinds of setting values.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// An expression (numbers, consts, inline literals).
    Expr(Expr),
    /// A string literal.
    Str(StringLit),
    /// `true` or `false`.
    Bool(bool),
    /// `a..b`.
    Range(RangeExpr),
    /// `name(args)`: `gd(lr = 0.1)`, `csv("x.csv", header = true)`, `normal(0, 1)`.
    Call {
        /// The called name.
        name: Ident,
        /// Positional and named arguments.
        args: Vec<Arg>,
    },
}

/// An argument of a call value: positional or `name = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The name of a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Value,
}

/// A string literal, split into text and `{name}` interpolations.
#[derive(Debug, Clone, PartialEq)]
pub struct StringLit {
    /// The parts in order.
    pub parts: Vec<StringPart>,
    /// The whole literal including quotes.
    pub span: Span,
}

/// A piece of a string literal.
#[derive(Debug, Clone, PartialEq)]
pub enum StringPart {
    /// Literal text (escapes already resolved).
    Text(String),
    /// `{name}`: the value of a loop variable or const.
    Interpolation(Ident),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is written.
    pub span: Span,
}

/// Binary operators as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// `@`
    MatMul,
}

impl BinaryOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
            BinaryOp::MatMul => "@",
        }
    }
}

/// The kinds of expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A numeric literal.
    Number(f64),
    /// A name (variable, port, let, data, const, loop variable).
    Name(String),
    /// Unary minus.
    Neg(std::boxed::Box<Expr>),
    /// Postfix transpose.
    Transpose(std::boxed::Box<Expr>),
    /// A binary operation.
    Binary(BinaryOp, std::boxed::Box<Expr>, std::boxed::Box<Expr>),
    /// A function call `f(a, b)`.
    Call(Ident, Vec<Expr>),
    /// Indexing `x[i]` or `A[i, j]`.
    Index(std::boxed::Box<Expr>, Vec<Expr>),
    /// Rows `X[a..b]` of a data item (a box call's data argument only).
    Rows(std::boxed::Box<Expr>, std::boxed::Box<RangeExpr>),
    /// A bracket literal: rows separated by `;`. One row is a vector.
    Matrix(Vec<Vec<Expr>>),
    /// A comparison `a < b` (brackets, call arguments and report lines only): 1 or 0.
    Compare(CompareOp, std::boxed::Box<Expr>, std::boxed::Box<Expr>),
    /// A private variable of a box, `label.var` (report blocks only).
    Field(std::boxed::Box<Expr>, Ident),
}

/// Comparison operators as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether `a OP b` holds (false when either is NaN, except `!=`).
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        }
    }
}
