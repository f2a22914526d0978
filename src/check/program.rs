//! The typed program: what the checker hands to the later stages.
//!
//! Every name is resolved to an index, every expression carries its [`Shape`], loops are
//! unrolled, junction types are inferred, and data files are loaded. Composites are stored
//! compactly (flat arrays with ranges; boxes and junctions as runs, one record for all the
//! boxes or family members one loop statement makes) because a loop may create a million
//! boxes.

pub use super::constraint_types::{
    Constraint, ConstraintUse, Domain, Penalty, PenaltyKind, VariableRef,
};
pub use super::data_values::DataValues;
use crate::diagnostic::{SourceFile, Span};
pub use crate::name::IndexedName;
use crate::name::NameRuns;
use crate::shape::Shape;
use std::ops::{Index, Range};
use std::sync::{Arc, OnceLock};

/// A checked `.opt` file.
#[derive(Debug, Clone)]
pub struct Program {
    /// The source the spans point into.
    pub source: Arc<SourceFile>,
    /// `const` items, values already computed.
    pub consts: Vec<Const>,
    /// Loaded `data` items; a data family contributes one item per member.
    pub data: Vec<DataItem>,
    /// `objective` items, in source order.
    pub objectives: Vec<Objective>,
    /// `composite` items, in source order.
    pub composites: Vec<Composite>,
    /// `solve` blocks, in source order.
    pub solves: Vec<Solve>,
    /// `report` blocks, in source order (at most one per composite).
    pub reports: Vec<super::report_types::Report>,
}

impl Program {
    /// The objective with this name.
    pub fn objective(&self, name: &str) -> Option<(ObjectiveId, &Objective)> {
        self.objectives
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == name)
            .map(|(i, o)| (ObjectiveId(i as u32), o))
    }

    /// The number of scalar decision variables of a composite once flattened: its
    /// junctions plus the private variables of every box (nested composites included).
    pub fn decision_variables(&self, composite: CompositeId) -> u64 {
        self.composites[composite.0 as usize].decision_variables
    }

    /// The composite with this name.
    pub fn composite(&self, name: &str) -> Option<(CompositeId, &Composite)> {
        self.composites
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
            .map(|(i, c)| (CompositeId(i as u32), c))
    }
}

/// Index of an objective in [`Program::objectives`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectiveId(pub u32);

/// Index of a composite in [`Program::composites`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompositeId(pub u32);

/// Index of a data item in [`Program::data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataId(pub u32);

/// Index of a junction in [`Composite::junctions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JunctionId(pub u32);

/// A `const` item.
#[derive(Debug, Clone)]
pub struct Const {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Where it is declared.
    pub span: Span,
}

/// A constant value (data), flat in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct DataValue {
    /// Its shape.
    pub shape: Shape,
    /// `shape.len()` numbers, row-major. Always finite. Possibly a view of rows of storage
    /// that other items share (`X[i]`, `X[a..b]`, `csv(..., rows = a..b)`).
    pub values: DataValues,
}

/// A `data` item (or one member of a data family).
#[derive(Debug, Clone)]
pub struct DataItem {
    /// `X` or `X[3]` (for rows of another item, see [`DataItem::rows_of`]).
    pub name: IndexedName,
    /// The loaded value.
    pub value: DataValue,
    /// Where it is declared (for rows of another item: where they are first read).
    pub span: Span,
    /// `Some` for rows of another data item, made by a box call's `X[i]` or `X[a..b]`:
    /// a view of the parent's storage, not declared and not listed by `catopt check`.
    pub rows_of: Option<RowsOf>,
}

/// Which rows of which data item a derived data item is (`X[i]` or `X[a..b]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsOf {
    /// The matrix the rows are taken from.
    pub parent: DataId,
    /// The first row.
    pub start: usize,
    /// One past the last row.
    pub end: usize,
    /// `X[i]`: one row, a vector; else `X[a..b]`, a matrix.
    pub single: bool,
}

impl DataItem {
    /// The item's name as the user wrote it: `X`, `X[3]` (a family member or a row) or
    /// `X[2..5]` (rows).
    pub fn display_name(&self) -> String {
        match self.rows_of {
            Some(RowsOf {
                start,
                end,
                single: false,
                ..
            }) => format!("{}[{start}..{end}]", self.name.base),
            _ => self.name.to_string(),
        }
    }
}

/// A decision variable of an objective: a port or a private `var`.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// The initial value of every entry (`var v: real[3] = 0.1;`), if given.
    pub init: Option<f64>,
    /// `in DOMAIN` (`Domain::Real` when none is written).
    pub domain: Domain,
    /// Declared `dual`: methods ascend in it instead of descending.
    pub dual: bool,
    /// Where it is declared.
    pub span: Span,
}

/// A data parameter of an objective (after the `;` in its header).
#[derive(Debug, Clone)]
pub struct DataParam {
    /// Its name.
    pub name: String,
    /// Its declared shape.
    pub shape: Shape,
    /// Marked `sample`: its rows are drawn in minibatches when the solve block sets `batch`.
    pub sampled: bool,
    /// Where it is declared.
    pub span: Span,
}

/// A `let` binding inside an objective.
#[derive(Debug, Clone)]
pub struct Let {
    /// Its name.
    pub name: String,
    /// Its value; may refer to earlier lets.
    pub expr: Expr,
    /// Where it is declared.
    pub span: Span,
}

/// `minimize` or `maximize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// Minimise the expression.
    Minimize,
    /// Maximise the expression, i.e. minimise its negation.
    Maximize,
}

/// An `objective` item: one open objective (box type).
#[derive(Debug, Clone)]
pub struct Objective {
    /// Its name.
    pub name: String,
    /// Where it is declared (the name).
    pub span: Span,
    /// Exposed decision variables, in header order.
    pub ports: Vec<Variable>,
    /// Data parameters, in header order.
    pub data_params: Vec<DataParam>,
    /// Private decision variables, in declaration order.
    pub vars: Vec<Variable>,
    /// `let` bindings, in order.
    pub lets: Vec<Let>,
    /// Minimise or maximise.
    pub sense: Sense,
    /// The scalar expression after `minimize`/`maximize`, as written (not negated).
    pub body: Expr,
    /// `penalty` statements, in order (not part of `body`: not differentiated).
    pub penalties: Vec<Penalty>,
    /// `subject to` equality constraints, in order; each adds private dual variables.
    pub constraints: Vec<Constraint>,
}

impl Objective {
    /// The numbers one evaluation of this objective keeps: every node of its expressions
    /// (body and lets) at its shape's length, plus its ports, variables and data. The
    /// memory estimate charges a box type's workspace (value and adjoint per node) by it.
    pub fn workspace_elements(&self) -> u64 {
        let mut total: u64 = self
            .ports
            .iter()
            .chain(&self.vars)
            .map(|v| v.shape.len() as u64)
            .chain(self.data_params.iter().map(|d| d.shape.len() as u64))
            .sum();
        let mut stack: Vec<&Expr> = std::iter::once(&self.body)
            .chain(self.lets.iter().map(|l| &l.expr))
            .collect();
        while let Some(e) = stack.pop() {
            total = total.saturating_add(e.shape.len() as u64);
            match &e.kind {
                ExprKind::Neg(a) | ExprKind::Transpose(a) | ExprKind::Index(a, _) => stack.push(a),
                ExprKind::Binary(_, a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                ExprKind::Call(_, args) | ExprKind::Vector(args) => stack.extend(args),
                ExprKind::Matrix(rows) => stack.extend(rows.iter().flatten()),
                _ => {}
            }
        }
        total
    }
}

/// A typed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// Its inferred shape.
    pub shape: Shape,
    /// Where it is written.
    pub span: Span,
}

/// The kinds of typed expressions. Consts are folded into numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal or const.
    Number(f64),
    /// The i-th port of the enclosing objective.
    Port(usize),
    /// The i-th private `var` of the enclosing objective.
    Var(usize),
    /// The i-th data parameter of the enclosing objective.
    DataParam(usize),
    /// A global data item used directly.
    Data(DataId),
    /// The i-th `let` of the enclosing objective.
    Let(usize),
    /// Unary minus.
    Neg(Box<Expr>),
    /// Postfix transpose `x'`.
    Transpose(Box<Expr>),
    /// A binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Function, Vec<Expr>),
    /// `[e1, e2, e3]`: a vector of scalar expressions.
    Vector(Vec<Expr>),
    /// `[a, b; c, d]`: a matrix of scalar expressions, row by row.
    Matrix(Vec<Vec<Expr>>),
    /// `x[i]` or `A[i, j]` with constant, in-range, 0-based indices.
    Index(Box<Expr>, Vec<usize>),
}

/// Binary operators. All but `MatMul` are elementwise with broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Elementwise `exp`.
    Exp,
    /// Elementwise `log`.
    Log,
    /// Elementwise `sqrt`.
    Sqrt,
    /// Elementwise `abs`.
    Abs,
    /// Elementwise `tanh`.
    Tanh,
    /// Elementwise `sigmoid`.
    Sigmoid,
    /// Elementwise `relu`.
    Relu,
    /// Elementwise `softplus`.
    Softplus,
    /// Elementwise `sin`.
    Sin,
    /// Elementwise `cos`.
    Cos,
    /// Sum of all entries; `sum(X, 1)` per row.
    Sum,
    /// Mean of all entries; `mean(X, 1)` per row.
    Mean,
    /// `dot(a, b)`: sum of the elementwise product (same shapes).
    Dot,
    /// `sumsq(x)`: sum of squares.
    SumSq,
    /// `logsumexp(x)` over all entries; `logsumexp(X, 1)` per row.
    LogSumExp,
    /// `softmax(X, 1)`: row-wise softmax.
    Softmax,
    /// `max(a, b)` elementwise (broadcasting).
    Max,
    /// `min(a, b)` elementwise (broadcasting).
    Min,
}

impl Function {
    /// The function's name in the language.
    pub fn name(self) -> &'static str {
        use Function::*;
        match self {
            Exp => "exp",
            Log => "log",
            Sqrt => "sqrt",
            Abs => "abs",
            Tanh => "tanh",
            Sigmoid => "sigmoid",
            Relu => "relu",
            Softplus => "softplus",
            Sin => "sin",
            Cos => "cos",
            Sum => "sum",
            Mean => "mean",
            Dot => "dot",
            SumSq => "sumsq",
            LogSumExp => "logsumexp",
            Softmax => "softmax",
            Max => "max",
            Min => "min",
        }
    }

    /// Every built-in function.
    pub const ALL: [Function; 18] = [
        Function::Exp,
        Function::Log,
        Function::Sqrt,
        Function::Abs,
        Function::Tanh,
        Function::Sigmoid,
        Function::Relu,
        Function::Softplus,
        Function::Sin,
        Function::Cos,
        Function::Sum,
        Function::Mean,
        Function::Dot,
        Function::SumSq,
        Function::LogSumExp,
        Function::Softmax,
        Function::Max,
        Function::Min,
    ];
}

/// A junction of a composite: a shared variable.
#[derive(Debug, Clone)]
pub struct Junction {
    /// `b` or `x[3]` (a member of the junction family `x`).
    pub name: IndexedName,
    /// Declared in `where (...)` or inferred from the ports wired to it.
    pub shape: Shape,
    /// The initial value of every entry, from `where (W: real[2] = 0.01)`.
    pub init: Option<f64>,
    /// The common domain of its ports and its declaration (`Domain::Real` when none has one).
    pub domain: Domain,
    /// Wired to `dual` ports: a dual variable (a price the boxes share).
    pub dual: bool,
    /// The declaration, or the first use.
    pub span: Span,
}

/// What a box instantiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    /// An objective (a leaf box).
    Objective(ObjectiveId),
    /// Another composite (a nested diagram; operad substitution).
    Composite(CompositeId),
}

/// A data argument of a box call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataArg {
    /// A data item (or data family member).
    Data(DataId),
    /// A number (literal or const).
    Number(f64),
}

/// One box of a composite: `label: callee(j1, ..., jk; d1, ...)`.
#[derive(Debug, Clone)]
pub struct BoxCall {
    /// Its label: given, or the callee's name, or `name[k]` (see docs/language.md).
    pub label: IndexedName,
    /// What it instantiates.
    pub callee: Callee,
    /// Its junctions, one per callee port: a range into [`Composite::box_junctions`].
    pub junctions: Range<u32>,
    /// Its data arguments: a range into [`Composite::box_data_args`].
    pub data_args: Range<u32>,
    /// Where the call is written (for a box in a loop, the call inside the loop).
    pub span: Span,
}

/// The junctions of a composite, in order of declaration or first use, stored as runs:
/// the members of a junction family that a loop makes one after the other share one record.
/// [`Junctions::get`] and the other accessors make a junction's record on demand.
///
/// `junctions[j]` also works, for callers that want a reference: the first indexing makes
/// every record once (`size_of::<Junction>()` bytes per junction), so code that may meet
/// large composites uses the accessors instead.
#[derive(Debug, Clone, Default)]
pub struct Junctions {
    runs: NameRuns<JunctionInfo>,
    records: OnceLock<Vec<Junction>>,
}

/// What a junction has besides its name.
#[derive(Debug, Clone, Copy, PartialEq)]
struct JunctionInfo {
    shape: Shape,
    init: Option<f64>,
    domain: Domain,
    dual: bool,
    span: Span,
}

/// What the checker infers for a run of junctions once the loops are unrolled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct JunctionType {
    /// The shape.
    pub(crate) shape: Shape,
    /// The common domain.
    pub(crate) domain: Domain,
    /// A dual variable.
    pub(crate) dual: bool,
}

impl Junctions {
    /// No junction.
    pub fn new() -> Junctions {
        Junctions::default()
    }

    /// The number of junctions.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// True when there is no junction.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The number of stored runs (the memory cost).
    pub fn run_count(&self) -> usize {
        self.runs.run_count()
    }

    /// Appends a junction; returns its id.
    pub fn push(&mut self, junction: Junction) -> JunctionId {
        let id = JunctionId(self.runs.len() as u32);
        let info = JunctionInfo {
            shape: junction.shape,
            init: junction.init,
            domain: junction.domain,
            dual: junction.dual,
            span: junction.span,
        };
        self.runs.push(junction.name, info);
        self.records = OnceLock::new();
        id
    }

    /// Junction `j`'s record. Panics when `j >= len()`.
    pub fn get(&self, j: usize) -> Junction {
        let info = self.runs.value(j);
        Junction {
            name: self.runs.name(j),
            shape: info.shape,
            init: info.init,
            domain: info.domain,
            dual: info.dual,
            span: info.span,
        }
    }

    /// Junction `j`'s name.
    pub fn name(&self, j: usize) -> IndexedName {
        self.runs.name(j)
    }

    /// Junction `j`'s shape.
    pub fn shape(&self, j: usize) -> Shape {
        self.runs.value(j).shape
    }

    /// Junction `j`'s initial value, if declared.
    pub fn init(&self, j: usize) -> Option<f64> {
        self.runs.value(j).init
    }

    /// Junction `j`'s domain (`Domain::Real` when unconstrained).
    pub fn domain(&self, j: usize) -> Domain {
        self.runs.value(j).domain
    }

    /// Whether junction `j` is a dual variable.
    pub fn dual(&self, j: usize) -> bool {
        self.runs.value(j).dual
    }

    /// Where junction `j` is declared or first used.
    pub fn span(&self, j: usize) -> Span {
        self.runs.value(j).span
    }

    /// Every junction's shape, in order.
    pub fn shapes(&self) -> impl Iterator<Item = Shape> + '_ {
        self.runs.values().map(|info| info.shape)
    }

    /// Every junction's record, in order.
    pub fn iter(&self) -> impl Iterator<Item = Junction> + '_ {
        self.runs.iter().map(|(name, info)| Junction {
            name,
            shape: info.shape,
            init: info.init,
            domain: info.domain,
            dual: info.dual,
            span: info.span,
        })
    }

    /// The same junctions with new types: `type_of(first, name)` gives the shape, domain
    /// and dual mark of the run of junctions that starts at id `first` with this name (a
    /// family's members, or one plain junction).
    pub(crate) fn with_types(
        &self,
        mut type_of: impl FnMut(JunctionId, &IndexedName) -> JunctionType,
    ) -> Junctions {
        Junctions {
            runs: self.runs.map_runs(|start, name, info| {
                let t = type_of(JunctionId(start as u32), name);
                JunctionInfo {
                    shape: t.shape,
                    domain: t.domain,
                    dual: t.dual,
                    ..*info
                }
            }),
            records: OnceLock::new(),
        }
    }
}

impl Index<usize> for Junctions {
    type Output = Junction;

    /// Junction `j`'s record (every record is made on the first call).
    fn index(&self, j: usize) -> &Junction {
        &self.records.get_or_init(|| self.iter().collect())[j]
    }
}

/// The boxes of a composite, in source (and loop) order, stored as runs: the boxes that
/// one statement in a loop makes (labels `name[i]` with consecutive `i`, one callee, their
/// junctions and data arguments one after the other in the flat arrays) share one record.
#[derive(Debug, Clone, Default)]
pub struct BoxCalls {
    runs: Vec<BoxRun>,
    len: usize,
}

/// Boxes `start..` (up to the next run): the first is `first`, each next one has the next
/// label index and the next ranges of junctions and data arguments.
#[derive(Debug, Clone)]
struct BoxRun {
    start: usize,
    first: BoxCall,
}

impl BoxCalls {
    /// No box.
    pub fn new() -> BoxCalls {
        BoxCalls::default()
    }

    /// The number of boxes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no box.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of stored runs (the memory cost).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Appends a box; it joins the last run when it is that run's next box.
    pub fn push(&mut self, call: BoxCall) {
        if let Some(last) = self.runs.last() {
            let n = (self.len - last.start) as u32;
            let first = &last.first;
            let next = |range: &Range<u32>, of: &Range<u32>| {
                let width = of.end - of.start;
                range.end - range.start == width
                    && Some(range.start) == n.checked_mul(width).map(|w| of.start + w)
            };
            let extends = first.label.index.is_some()
                && first.label.index.and_then(|i| i.checked_add(n as i64)) == call.label.index
                && (Arc::ptr_eq(&first.label.base, &call.label.base)
                    || first.label.base == call.label.base)
                && first.callee == call.callee
                && first.span == call.span
                && next(&call.junctions, &first.junctions)
                && next(&call.data_args, &first.data_args);
            if extends {
                self.len += 1;
                return;
            }
        }
        self.runs.push(BoxRun {
            start: self.len,
            first: call,
        });
        self.len += 1;
    }

    /// Box `b`'s call. Panics when `b >= len()`.
    pub fn get(&self, b: usize) -> BoxCall {
        assert!(b < self.len, "box {b} of {}", self.len);
        let run = &self.runs[self.runs.partition_point(|run| run.start <= b) - 1];
        run.nth(b - run.start)
    }

    /// What each run of boxes instantiates, a run at a time (an objective or composite
    /// may come more than once).
    pub fn callees(&self) -> impl Iterator<Item = Callee> + '_ {
        self.runs.iter().map(|run| run.first.callee)
    }

    /// Every box's call, in order.
    pub fn iter(&self) -> impl Iterator<Item = BoxCall> + '_ {
        self.runs.iter().enumerate().flat_map(move |(k, run)| {
            let end = self.runs.get(k + 1).map_or(self.len, |next| next.start);
            (0..end - run.start).map(move |offset| run.nth(offset))
        })
    }
}

impl BoxRun {
    /// The run's `offset`-th box.
    fn nth(&self, offset: usize) -> BoxCall {
        let first = &self.first;
        let shift = |range: &Range<u32>| {
            let start = range.start + offset as u32 * (range.end - range.start);
            start..start + (range.end - range.start)
        };
        BoxCall {
            label: IndexedName {
                base: first.label.base.clone(),
                index: first.label.index.map(|i| i + offset as i64),
            },
            callee: first.callee,
            junctions: shift(&first.junctions),
            data_args: shift(&first.data_args),
            span: first.span,
        }
    }
}

/// A `composite` item: an undirected wiring diagram, loops unrolled.
#[derive(Debug, Clone)]
pub struct Composite {
    /// Its name.
    pub name: String,
    /// Where it is declared (the name).
    pub span: Span,
    /// The outer ports: the junctions exposed when this composite is used as a box.
    pub outer_ports: Vec<JunctionId>,
    /// Every junction, in order of declaration or first use.
    pub junctions: Junctions,
    /// Every box, in source (and loop) order.
    pub boxes: BoxCalls,
    /// The junction of each port of each box, flat; see [`BoxCall::junctions`].
    pub box_junctions: Vec<JunctionId>,
    /// The data arguments of each box, flat; see [`BoxCall::data_args`].
    pub box_data_args: Vec<DataArg>,
    /// What running this composite is estimated to take, in bytes (nested composites
    /// flattened; see `check::estimate` and docs/cli.md, "Limits").
    pub memory_estimate_bytes: u64,
    /// Scalar decision variables once flattened: junctions plus every box's private
    /// variables, nested composites included (counted by the checker).
    pub decision_variables: u64,
}

impl Composite {
    /// The junctions that box `b`'s ports are wired to, in port order.
    pub fn junctions_of(&self, b: usize) -> &[JunctionId] {
        self.junctions_of_call(&self.boxes.get(b))
    }

    /// The data arguments of box `b`.
    pub fn data_args_of(&self, b: usize) -> &[DataArg] {
        self.data_args_of_call(&self.boxes.get(b))
    }

    /// The junctions of a box call of this composite, in port order.
    pub fn junctions_of_call(&self, call: &BoxCall) -> &[JunctionId] {
        &self.box_junctions[call.junctions.start as usize..call.junctions.end as usize]
    }

    /// The data arguments of a box call of this composite.
    pub fn data_args_of_call(&self, call: &BoxCall) -> &[DataArg] {
        &self.box_data_args[call.data_args.start as usize..call.data_args.end as usize]
    }
}

/// A `solve` block.
#[derive(Debug, Clone)]
pub struct Solve {
    /// The composite it solves.
    pub composite: CompositeId,
    /// Where it is declared.
    pub span: Span,
    /// `method = gd(lr = 0.05);`
    pub method: Option<MethodSetting>,
    /// `schedule = log(100);`, and where it is written.
    pub schedule: Option<(crate::method_spec::Schedule, crate::diagnostic::Span)>,
    /// `steps = 200;`
    pub steps: Option<u64>,
    /// `tolerance = 1e-8;` (stop when the gradient norm falls below).
    pub tolerance: Option<f64>,
    /// `rel_tolerance = 1e-12;` (stop when the relative objective change falls below).
    pub rel_tolerance: Option<f64>,
    /// `seed = 42;`
    pub seed: Option<u64>,
    /// `init TARGET = VALUE;` lines, in order.
    pub inits: Vec<Init>,
    /// `batch = B;` with `sampling` and `full_every`: minibatches of the sampled data
    /// (`None`: every step uses the full data).
    pub sampling: Option<Sampling>,
}

/// How a solve block samples minibatches (docs/language.md, "Stochastic gradients").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// `batch = B;`: rows drawn per box and step.
    pub batch: u64,
    /// `sampling = shuffle | replace;`
    pub order: SamplingOrder,
    /// `full_every = N;`: the full objective every N steps in the trace.
    pub full_every: Option<u64>,
    /// Where `batch` is written.
    pub span: Span,
}

/// The order in which a box's rows are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingOrder {
    /// Each epoch a random permutation of the rows, cut into batches (the default).
    Shuffle,
    /// Each draw independent and uniform, with replacement.
    Replace,
}

/// `method = NAME(param = value, ...)`.
#[derive(Debug, Clone)]
pub struct MethodSetting {
    /// `gd`, `momentum`, ...
    pub name: String,
    /// The parameters as written (named; numbers or names), in order, each checked
    /// against the method's registry entry.
    pub params: Vec<(String, crate::method_spec::GivenValue)>,
    /// Where it is written.
    pub span: Span,
}

/// One `init` line of a solve block.
#[derive(Debug, Clone)]
pub struct Init {
    /// What it sets.
    pub target: InitTarget,
    /// To what.
    pub value: InitValue,
    /// Where it is written.
    pub span: Span,
}

/// The target of an `init` line.
#[derive(Debug, Clone, PartialEq)]
pub enum InitTarget {
    /// A junction of the solved composite.
    Junction(JunctionId),
    /// Every member of a junction family of the solved composite (in index order).
    Family(Vec<JunctionId>),
    /// A private variable addressed by its label path: `["outer", "inner", "var"]`.
    /// The checker verifies the first label exists; the rest is resolved when lowering.
    Private(Vec<String>),
}

/// The value of an `init` line.
#[derive(Debug, Clone, PartialEq)]
pub enum InitValue {
    /// Every entry set to this number.
    Number(f64),
    /// Values from `csv(...)` (shape checked against the target when known).
    Data(DataValue),
    /// Independent draws from a normal distribution, using the solve block's seed.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (>= 0).
        sd: f64,
    },
}
