//! Building an expression DAG over shapes, one node at a time, children before parents.

use super::compile::CompiledObjective;
use crate::shape::Shape;
use std::fmt;

/// A node of an expression under construction: an index into its [`ExprBuilder`].
///
/// Children always have smaller ids than their parents (egg's `RecExpr` invariant), and
/// using one id twice shares the subexpression (a DAG: it is computed once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// The position of the node in its builder (children come first).
    pub fn index(self) -> usize {
        self.0
    }
}

/// Elementwise functions of one argument, and the transpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `x'`: a matrix swaps its dimensions; scalars and vectors are unchanged.
    Transpose,
    /// `exp(x)`.
    Exp,
    /// `log(x)`, the natural logarithm.
    Log,
    /// `sqrt(x)`.
    Sqrt,
    /// `abs(x)` (its derivative at 0 is taken as 0).
    Abs,
    /// `tanh(x)`.
    Tanh,
    /// `sigmoid(x) = 1 / (1 + exp(-x))`, computed without overflow.
    Sigmoid,
    /// `relu(x) = max(x, 0)` (its derivative at 0 is taken as 0).
    Relu,
    /// `softplus(x) = log(1 + exp(x))`, computed without overflow.
    Softplus,
    /// `sin(x)`.
    Sin,
    /// `cos(x)`.
    Cos,
}

impl UnaryOp {
    /// The name of the operation as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Transpose => "'",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
        }
    }

    /// Every unary operation, for tests and documentation.
    pub const ALL: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Transpose,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Softplus,
        UnaryOp::Sin,
        UnaryOp::Cos,
    ];
}

/// Operations of two arguments. All but `MatMul` are elementwise and broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b` (elementwise).
    Mul,
    /// `a / b`.
    Div,
    /// `a ^ b` (elementwise power).
    Pow,
    /// `a @ b`, the matrix product under NumPy's rules.
    MatMul,
    /// `max(a, b)` elementwise (broadcasting). NaN propagates; the adjoint goes to the
    /// larger operand, half to each on a tie.
    Max,
    /// `min(a, b)` elementwise (broadcasting). NaN propagates; the adjoint goes to the
    /// smaller operand, half to each on a tie.
    Min,
}

impl BinaryOp {
    /// The operator as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
            BinaryOp::MatMul => "@",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        }
    }

    /// Every binary operator (the infix ones; `max` and `min` are functions and not
    /// listed, being smooth only away from ties), for tests and documentation.
    pub const ALL: [BinaryOp; 6] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::MatMul,
    ];
}

/// Reductions of a value to a scalar, over every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// `sum(x)`.
    Sum,
    /// `mean(x)`.
    Mean,
    /// `sumsq(x)`, the sum of squares.
    SumSq,
    /// `logsumexp(x) = log(sum(exp(x)))`, computed stably (shifted by the maximum).
    LogSumExp,
}

impl Reduction {
    /// The function's name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::SumSq => "sumsq",
            Reduction::LogSumExp => "logsumexp",
        }
    }
}

/// An operation was given operands of shapes it cannot combine (or a builder call was
/// otherwise inconsistent). The message names the operation and the shapes involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// The operation as written in the language (`@`, `+`, `dot`, `index`, ...).
    pub operation: String,
    /// The shapes of the operands, in order.
    pub shapes: Vec<Shape>,
    /// Why they do not fit.
    pub reason: String,
}

impl ShapeError {
    fn new(operation: &str, shapes: &[Shape], reason: impl Into<String>) -> Self {
        ShapeError {
            operation: operation.to_string(),
            shapes: shapes.to_vec(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` cannot take ", self.operation)?;
        match self.shapes.as_slice() {
            [] => write!(f, "these operands")?,
            [one] => write!(f, "{one}")?,
            [a, b] => write!(f, "{a} and {b}")?,
            many => {
                let names: Vec<String> = many.iter().map(Shape::to_string).collect();
                write!(f, "{}", names.join(", "))?
            }
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ShapeError {}

/// One node of the expression DAG.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// `x[offset .. offset + len]` of the decision vector.
    Input {
        offset: usize,
    },
    /// Row-major data.
    Constant {
        values: Vec<f64>,
    },
    /// Data that differs from box to box (constant in time, never differentiated):
    /// `data[offset .. offset + len]` of the box's raw data vector.
    DataInput {
        offset: usize,
    },
    Unary {
        op: UnaryOp,
        arg: NodeId,
    },
    /// `operands[0] (op) operands[1]`.
    Binary {
        op: BinaryOp,
        operands: [NodeId; 2],
    },
    Reduce {
        op: Reduction,
        arg: NodeId,
    },
    /// `sum(X, 1)` and the like: one value per row of the matrix `arg`.
    RowReduce {
        op: Reduction,
        arg: NodeId,
    },
    /// `softmax(X, 1)`: the softmax of every row of the matrix `arg`.
    Softmax {
        arg: NodeId,
    },
    /// `dot(operands[0], operands[1])`.
    Dot {
        operands: [NodeId; 2],
    },
    /// A vector or matrix assembled from scalar nodes, row-major.
    Gather {
        items: Vec<NodeId>,
    },
    /// One entry of `arg`, at a row-major flat position.
    Index {
        arg: NodeId,
        flat: usize,
    },
}

impl Node {
    /// The children, in operand order.
    pub(crate) fn children(&self) -> &[NodeId] {
        match self {
            Node::Input { .. } | Node::Constant { .. } | Node::DataInput { .. } => &[],
            Node::Unary { arg, .. }
            | Node::Reduce { arg, .. }
            | Node::RowReduce { arg, .. }
            | Node::Softmax { arg }
            | Node::Index { arg, .. } => std::slice::from_ref(arg),
            Node::Binary { operands, .. } | Node::Dot { operands } => operands,
            Node::Gather { items } => items,
        }
    }
}

/// Builds the expression of one open objective over its decision vector `x`, then compiles
/// it into a [`CompiledObjective`].
///
/// ```
/// use catopt::numerics::{BinaryOp, ExprBuilder, Reduction, Shape};
/// // f(x) = sum((x - 1)^2) over x in R^3
/// let mut b = ExprBuilder::new(3);
/// let x = b.input(0, Shape::Vector(3));
/// let one = b.scalar(1.0);
/// let two = b.scalar(2.0);
/// let d = b.binary(BinaryOp::Sub, x, one).unwrap();
/// let sq = b.binary(BinaryOp::Pow, d, two).unwrap();
/// let f = b.reduce(Reduction::Sum, sq);
/// let objective = b.compile(f).unwrap();
/// let mut ws = objective.workspace();
/// let mut grad = [0.0; 3];
/// let value = objective.value_and_gradient(&mut ws, &[1.0, 2.0, 3.0], &mut grad);
/// assert_eq!(value, 5.0);
/// assert_eq!(grad, [0.0, 2.0, 4.0]);
/// ```
#[derive(Clone, Debug)]
pub struct ExprBuilder {
    pub(crate) num_inputs: usize,
    pub(crate) nodes: Vec<Node>,
    pub(crate) shapes: Vec<Shape>,
    /// Length of the raw per-box data vector ([`ExprBuilder::data_input`]).
    pub(crate) num_data: usize,
    /// The first inconsistency found by a call that cannot return an error; reported by
    /// [`ExprBuilder::compile`].
    pub(crate) deferred: Option<ShapeError>,
}

impl ExprBuilder {
    /// An empty expression over a decision vector of `num_inputs` reals.
    pub fn new(num_inputs: usize) -> ExprBuilder {
        ExprBuilder {
            num_inputs,
            nodes: Vec::new(),
            shapes: Vec::new(),
            num_data: 0,
            deferred: None,
        }
    }

    fn push(&mut self, node: Node, shape: Shape) -> NodeId {
        self.nodes.push(node);
        self.shapes.push(shape);
        NodeId(self.nodes.len() - 1)
    }

    fn defer(&mut self, error: ShapeError) {
        if self.deferred.is_none() {
            self.deferred = Some(error);
        }
    }

    /// The decision variables `x[offset .. offset + shape.len()]`, read row-major.
    ///
    /// A range past the end of `x` is reported by [`ExprBuilder::compile`].
    pub fn input(&mut self, offset: usize, shape: Shape) -> NodeId {
        let end = shape.checked_len().and_then(|len| offset.checked_add(len));
        let fits = matches!(end, Some(end) if end <= self.num_inputs);
        if !fits {
            self.defer(ShapeError::new(
                "input",
                &[shape],
                format!(
                    "offset {offset} runs past the end of the decision vector of length {}",
                    self.num_inputs
                ),
            ));
        }
        self.push(Node::Input { offset }, shape)
    }

    /// Per-box data of the given shape: the next `shape.len()` entries of each box's raw
    /// data vector (row-major), given when the boxes are evaluated
    /// ([`CompiledObjective::box_data`](super::CompiledObjective::box_data)). Boxes whose
    /// data differ only in values so share one compiled objective. Like a constant, it has
    /// no gradient; subexpressions of data only are folded once per box.
    pub fn data_input(&mut self, shape: Shape) -> NodeId {
        let offset = self.num_data;
        match shape.checked_len().and_then(|len| offset.checked_add(len)) {
            Some(end) => self.num_data = end,
            None => self.defer(ShapeError::new(
                "data",
                &[shape],
                "the per-box data is too large to store".to_string(),
            )),
        }
        self.push(Node::DataInput { offset }, shape)
    }

    /// Constant data of the given shape, row-major. A length mismatch is reported by
    /// [`ExprBuilder::compile`].
    pub fn constant(&mut self, shape: Shape, values: &[f64]) -> NodeId {
        if shape.checked_len() != Some(values.len()) {
            self.defer(ShapeError::new(
                "constant",
                &[shape],
                if values.len() == 1 {
                    "1 value was given".to_string()
                } else {
                    format!("{} values were given", values.len())
                },
            ));
        }
        self.push(
            Node::Constant {
                values: values.to_vec(),
            },
            shape,
        )
    }

    /// A scalar constant.
    pub fn scalar(&mut self, value: f64) -> NodeId {
        self.push(
            Node::Constant {
                values: vec![value],
            },
            Shape::Scalar,
        )
    }

    /// An elementwise function of `a`, or its transpose; the shape is `a`'s (transposed).
    pub fn unary(&mut self, op: UnaryOp, a: NodeId) -> NodeId {
        let shape = self.shape(a);
        let shape = if op == UnaryOp::Transpose {
            shape.transpose()
        } else {
            shape
        };
        self.push(Node::Unary { op, arg: a }, shape)
    }

    /// `a (op) b`: elementwise operations broadcast (a scalar to anything, a vector over the
    /// rows of a matrix); `MatMul` follows NumPy's rules for vectors.
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId, ShapeError> {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let shape = if op == BinaryOp::MatMul {
            sa.matmul(sb).ok_or_else(|| {
                let reason = if sa.is_scalar() || sb.is_scalar() {
                    "a matrix product needs vectors or matrices; use `*` for scalars".to_string()
                } else {
                    "the inner dimensions differ".to_string()
                };
                ShapeError::new(op.name(), &[sa, sb], reason)
            })?
        } else {
            sa.broadcast(sb).ok_or_else(|| {
                ShapeError::new(
                    op.name(),
                    &[sa, sb],
                    "the shapes do not broadcast (a vector broadcasts over the rows of a \
                     matrix with as many columns)",
                )
            })?
        };
        Ok(self.push(
            Node::Binary {
                op,
                operands: [a, b],
            },
            shape,
        ))
    }

    /// A reduction of every entry of `a` to a scalar.
    pub fn reduce(&mut self, op: Reduction, a: NodeId) -> NodeId {
        if self.shape(a).is_empty() {
            let shape = self.shape(a);
            self.defer(ShapeError::new(op.name(), &[shape], "there are no entries"));
        }
        self.push(Node::Reduce { op, arg: a }, Shape::Scalar)
    }

    /// `sum(a, 1)`, `mean(a, 1)`, `logsumexp(a, 1)`: a reduction of every row of the matrix
    /// `a` (`m x n`), giving a vector of length `m` (NumPy's `axis=1`). `sumsq` has no
    /// row-wise form. A vector or scalar `a` has no rows: an error, as `axis=1` is in NumPy.
    pub fn reduce_rows(&mut self, op: Reduction, a: NodeId) -> Result<NodeId, ShapeError> {
        let shape = self.shape(a);
        let Shape::Matrix(rows, cols) = shape else {
            return Err(ShapeError::new(
                op.name(),
                &[shape],
                "a row-wise reduction needs a matrix",
            ));
        };
        if op == Reduction::SumSq {
            return Err(ShapeError::new(
                op.name(),
                &[shape],
                "`sumsq` has no row-wise form",
            ));
        }
        if rows == 0 || cols == 0 {
            return Err(ShapeError::new(op.name(), &[shape], "there are no entries"));
        }
        Ok(self.push(Node::RowReduce { op, arg: a }, Shape::Vector(rows)))
    }

    /// `softmax(a, 1)`: the softmax of every row of the matrix `a` (same shape), computed
    /// stably (each row shifted by its maximum).
    pub fn softmax_rows(&mut self, a: NodeId) -> Result<NodeId, ShapeError> {
        let shape = self.shape(a);
        match shape {
            Shape::Matrix(rows, cols) if rows > 0 && cols > 0 => {
                Ok(self.push(Node::Softmax { arg: a }, shape))
            }
            Shape::Matrix(..) => Err(ShapeError::new("softmax", &[shape], "there are no entries")),
            _ => Err(ShapeError::new(
                "softmax",
                &[shape],
                "a row-wise softmax needs a matrix",
            )),
        }
    }

    /// `dot(a, b)`: the sum of the elementwise products of two values of the same shape.
    pub fn dot(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, ShapeError> {
        let (sa, sb) = (self.shape(a), self.shape(b));
        if sa != sb {
            return Err(ShapeError::new("dot", &[sa, sb], "the shapes differ"));
        }
        if sa.is_empty() {
            return Err(ShapeError::new("dot", &[sa, sb], "there are no entries"));
        }
        Ok(self.push(Node::Dot { operands: [a, b] }, Shape::Scalar))
    }

    fn all_scalars(&self, what: &str, items: &[NodeId]) -> Result<(), ShapeError> {
        if let Some(bad) = items.iter().find(|&&id| !self.shape(id).is_scalar()) {
            let shapes: Vec<Shape> = items.iter().map(|&id| self.shape(id)).collect();
            return Err(ShapeError::new(
                what,
                &shapes,
                format!(
                    "every entry must be a scalar, but entry {} is {}",
                    items.iter().position(|i| i == bad).unwrap_or(0),
                    self.shape(*bad)
                ),
            ));
        }
        Ok(())
    }

    /// `[e1, e2, ...]`: a vector of scalar nodes.
    pub fn vector(&mut self, items: &[NodeId]) -> Result<NodeId, ShapeError> {
        self.all_scalars("vector", items)?;
        if items.is_empty() {
            return Err(ShapeError::new("vector", &[], "a vector needs entries"));
        }
        Ok(self.push(
            Node::Gather {
                items: items.to_vec(),
            },
            Shape::Vector(items.len()),
        ))
    }

    /// `[a, b; c, d]`: a matrix of scalar nodes, given row by row.
    pub fn matrix(&mut self, rows: &[Vec<NodeId>]) -> Result<NodeId, ShapeError> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || cols == 0 {
            return Err(ShapeError::new("matrix", &[], "a matrix needs entries"));
        }
        if let Some((r, row)) = rows.iter().enumerate().find(|(_, row)| row.len() != cols) {
            return Err(ShapeError::new(
                "matrix",
                &[],
                format!(
                    "row 0 has {cols} entries but row {r} has {}; rows must be equally long",
                    row.len()
                ),
            ));
        }
        let items: Vec<NodeId> = rows.iter().flatten().copied().collect();
        self.all_scalars("matrix", &items)?;
        Ok(self.push(Node::Gather { items }, Shape::Matrix(rows.len(), cols)))
    }

    /// `a[i]` (one index, `a` a vector) or `a[i, j]` (two indices, `a` a matrix); 0-based.
    pub fn index(&mut self, a: NodeId, indices: &[usize]) -> Result<NodeId, ShapeError> {
        let shape = self.shape(a);
        let flat = match (shape, indices) {
            (Shape::Vector(n), &[i]) if i < n => i,
            (Shape::Matrix(rows, cols), &[i, j]) if i < rows && j < cols => i * cols + j,
            (Shape::Vector(n), &[i]) => {
                return Err(ShapeError::new(
                    "index",
                    &[shape],
                    format!("index {i} is out of bounds for length {n}"),
                ))
            }
            (Shape::Matrix(rows, cols), &[i, j]) => {
                return Err(ShapeError::new(
                    "index",
                    &[shape],
                    format!("index [{i}, {j}] is out of bounds for {rows} x {cols}"),
                ))
            }
            _ => {
                return Err(ShapeError::new(
                    "index",
                    &[shape],
                    format!(
                        "{} indices given; a vector takes 1 and a matrix 2",
                        indices.len()
                    ),
                ))
            }
        };
        Ok(self.push(Node::Index { arg: a, flat }, Shape::Scalar))
    }

    /// The shape of a node.
    ///
    /// # Panics
    /// If `node` did not come from this builder (a bug in the caller).
    pub fn shape(&self, node: NodeId) -> Shape {
        self.shapes[node.0]
    }

    /// The number of nodes built so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node has been built.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Compiles the expression rooted at `output` (which must be a scalar) into a plan with
    /// constant folding, activity analysis and preallocated-buffer layout.
    pub fn compile(self, output: NodeId) -> Result<CompiledObjective, ShapeError> {
        super::compile::compile(self, output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_name_operation_and_shapes() {
        let mut b = ExprBuilder::new(0);
        let m = b.constant(Shape::Matrix(2, 3), &[0.0; 6]);
        let err = b.binary(BinaryOp::MatMul, m, m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`@` cannot take real[2, 3] and real[2, 3]: the inner dimensions differ"
        );
        let v = b.constant(Shape::Vector(2), &[0.0; 2]);
        let err = b.binary(BinaryOp::Add, m, v).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("`+` cannot take real[2, 3] and real[2]"));
        assert!(b.index(v, &[2]).is_err());
        assert!(b.index(v, &[0, 0]).is_err());
        assert!(b.vector(&[v]).is_err());
        assert!(b.dot(m, v).is_err());
    }

    #[test]
    fn deferred_errors_surface_at_compile() {
        let mut b = ExprBuilder::new(2);
        let x = b.input(1, Shape::Vector(2));
        let s = b.reduce(Reduction::Sum, x);
        let err = b.compile(s).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");

        let mut b = ExprBuilder::new(0);
        let c = b.constant(Shape::Vector(3), &[1.0]);
        let s = b.reduce(Reduction::Sum, c);
        assert!(b.compile(s).is_err());
    }

    #[test]
    fn zero_sized_values_are_rejected_at_compile() {
        let mut b = ExprBuilder::new(0);
        let x = b.input(0, Shape::Vector(0));
        let e = b.unary(UnaryOp::Exp, x);
        let s = b.reduce(Reduction::Sum, e);
        let err = b.compile(s).unwrap_err();
        assert!(err.to_string().contains("no entries"), "{err}");
    }

    #[test]
    fn output_must_be_scalar() {
        let mut b = ExprBuilder::new(2);
        let x = b.input(0, Shape::Vector(2));
        let err = b.compile(x).unwrap_err();
        assert!(err.to_string().contains("scalar"), "{err}");
    }
}
