//! Small random smooth expression trees, for the law tests: random objectives that are not
//! just quadratics. A stand-in until the numerics module's `ExprBuilder` is available on this
//! branch; it implements [`ReverseDerivative`] with its own reverse mode.

use crate::category::ReverseDerivative;

/// A smooth unary operation of the `.opt` language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `x^2`
    Square,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// `tanh x`
    Tanh,
    /// `sigmoid x`
    Sigmoid,
    /// `softplus x = log(1 + exp x)`
    Softplus,
    /// `exp x`
    Exp,
}

/// A smooth binary operation of the `.opt` language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
}

/// One node of an expression, referring to earlier nodes by index.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Input variable `i`.
    Input(usize),
    /// A constant.
    Constant(f64),
    /// A unary operation of an earlier node.
    Unary(UnaryOp, usize),
    /// A binary operation of two earlier nodes.
    Binary(BinaryOp, usize, usize),
}

/// An expression `f: R^dimension -> R` as a flat array of nodes, children before parents;
/// the last node is the value.
///
/// ```
/// use catopt::laws::expr::{BinaryOp, Expr, Node, UnaryOp};
/// use catopt::category::ReverseDerivative;
/// // sin(x0) * x1
/// let f = Expr::new(2, vec![
///     Node::Input(0), Node::Input(1),
///     Node::Unary(UnaryOp::Sin, 0),
///     Node::Binary(BinaryOp::Mul, 2, 1),
/// ]).unwrap();
/// let mut g = [0.0; 2];
/// let v = f.reverse(&[0.0, 3.0], 1.0, &mut g);
/// assert_eq!((v, g), (0.0, [3.0, 0.0]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    dimension: usize,
    nodes: Vec<Node>,
}

impl Expr {
    /// Checks that every node refers to earlier nodes and inputs below `dimension`.
    pub fn new(dimension: usize, nodes: Vec<Node>) -> Result<Expr, String> {
        if nodes.is_empty() {
            return Err("an expression needs at least one node".into());
        }
        for (k, node) in nodes.iter().enumerate() {
            let ok = match *node {
                Node::Input(i) => i < dimension,
                Node::Constant(c) => c.is_finite(),
                Node::Unary(_, a) => a < k,
                Node::Binary(_, a, b) => a < k && b < k,
            };
            if !ok {
                return Err(format!(
                    "node {k} ({node:?}) refers forward or out of range"
                ));
            }
        }
        Ok(Expr { dimension, nodes })
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The same expression built with the numerics module's [`ExprBuilder`] and compiled,
    /// for the runtime (plans, executors, methods). Its reverse mode is the numerics
    /// module's, so its gradient may differ from [`Expr`]'s own in the last bits.
    ///
    /// [`ExprBuilder`]: crate::numerics::ExprBuilder
    ///
    /// # Errors
    /// If the numerics module refuses the expression (it should not: every node is scalar).
    pub fn compile(&self) -> Result<crate::numerics::CompiledObjective, String> {
        use crate::numerics::{BinaryOp as B, ExprBuilder, NodeId, Shape, UnaryOp as U};
        let mut builder = ExprBuilder::new(self.dimension);
        let mut ids: Vec<NodeId> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let id = match *node {
                Node::Input(i) => builder.input(i, Shape::Scalar),
                Node::Constant(c) => builder.scalar(c),
                Node::Unary(UnaryOp::Square, a) => builder
                    .binary(B::Mul, ids[a], ids[a])
                    .map_err(|e| e.to_string())?,
                Node::Unary(op, a) => {
                    let op = match op {
                        UnaryOp::Neg => U::Neg,
                        UnaryOp::Sin => U::Sin,
                        UnaryOp::Cos => U::Cos,
                        UnaryOp::Tanh => U::Tanh,
                        UnaryOp::Sigmoid => U::Sigmoid,
                        UnaryOp::Softplus => U::Softplus,
                        UnaryOp::Exp => U::Exp,
                        UnaryOp::Square => unreachable!("handled above"),
                    };
                    builder.unary(op, ids[a])
                }
                Node::Binary(op, a, b) => {
                    let op = match op {
                        BinaryOp::Add => B::Add,
                        BinaryOp::Sub => B::Sub,
                        BinaryOp::Mul => B::Mul,
                    };
                    builder
                        .binary(op, ids[a], ids[b])
                        .map_err(|e| e.to_string())?
                }
            };
            ids.push(id);
        }
        let output = *ids.last().expect("non-empty");
        builder.compile(output).map_err(|e| e.to_string())
    }

    fn forward(&self, x: &[f64], values: &mut Vec<f64>) -> f64 {
        assert_eq!(
            x.len(),
            self.dimension,
            "expression evaluated at the wrong length"
        );
        values.clear();
        for node in &self.nodes {
            let v = match *node {
                Node::Input(i) => x[i],
                Node::Constant(c) => c,
                Node::Unary(op, a) => {
                    let a = values[a];
                    match op {
                        UnaryOp::Neg => -a,
                        UnaryOp::Square => a * a,
                        UnaryOp::Sin => a.sin(),
                        UnaryOp::Cos => a.cos(),
                        UnaryOp::Tanh => a.tanh(),
                        UnaryOp::Sigmoid => sigmoid(a),
                        UnaryOp::Softplus => softplus(a),
                        UnaryOp::Exp => a.exp(),
                    }
                }
                Node::Binary(op, a, b) => {
                    let (a, b) = (values[a], values[b]);
                    match op {
                        BinaryOp::Add => a + b,
                        BinaryOp::Sub => a - b,
                        BinaryOp::Mul => a * b,
                    }
                }
            };
            values.push(v);
        }
        *values.last().expect("non-empty")
    }
}

fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

fn softplus(a: f64) -> f64 {
    if a > 30.0 {
        a + (-a).exp().ln_1p()
    } else {
        a.exp().ln_1p()
    }
}

impl ReverseDerivative for Expr {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn value(&self, x: &[f64]) -> f64 {
        self.forward(x, &mut Vec::with_capacity(self.nodes.len()))
    }

    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        let mut values = Vec::with_capacity(self.nodes.len());
        let value = self.forward(x, &mut values);
        let mut adjoint = vec![0.0; self.nodes.len()];
        *adjoint.last_mut().expect("non-empty") = seed;
        gradient.fill(0.0);
        for (k, node) in self.nodes.iter().enumerate().rev() {
            let bar = adjoint[k];
            match *node {
                Node::Input(i) => gradient[i] += bar,
                Node::Constant(_) => {}
                Node::Unary(op, a) => {
                    let va = values[a];
                    let d = match op {
                        UnaryOp::Neg => -1.0,
                        UnaryOp::Square => 2.0 * va,
                        UnaryOp::Sin => va.cos(),
                        UnaryOp::Cos => -va.sin(),
                        UnaryOp::Tanh => 1.0 - values[k] * values[k],
                        UnaryOp::Sigmoid => values[k] * (1.0 - values[k]),
                        UnaryOp::Softplus => sigmoid(va),
                        UnaryOp::Exp => values[k],
                    };
                    adjoint[a] += bar * d;
                }
                Node::Binary(op, a, b) => match op {
                    BinaryOp::Add => {
                        adjoint[a] += bar;
                        adjoint[b] += bar;
                    }
                    BinaryOp::Sub => {
                        adjoint[a] += bar;
                        adjoint[b] -= bar;
                    }
                    BinaryOp::Mul => {
                        adjoint[a] += bar * values[b];
                        adjoint[b] += bar * values[a];
                    }
                },
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences agree with the reverse mode for every operation.
    #[test]
    fn reverse_mode_matches_finite_differences() {
        let unary = [
            UnaryOp::Neg,
            UnaryOp::Square,
            UnaryOp::Sin,
            UnaryOp::Cos,
            UnaryOp::Tanh,
            UnaryOp::Sigmoid,
            UnaryOp::Softplus,
            UnaryOp::Exp,
        ];
        for op in unary {
            for binary in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
                // op(x0) (binary) x1*x0
                let f = Expr::new(
                    2,
                    vec![
                        Node::Input(0),
                        Node::Input(1),
                        Node::Unary(op, 0),
                        Node::Binary(BinaryOp::Mul, 1, 0),
                        Node::Binary(binary, 2, 3),
                    ],
                )
                .unwrap();
                let x = [0.3, -0.7];
                let mut g = [0.0; 2];
                f.reverse(&x, 1.0, &mut g);
                for i in 0..2 {
                    let h = 1e-6;
                    let mut up = x;
                    let mut down = x;
                    up[i] += h;
                    down[i] -= h;
                    let fd = (f.value(&up) - f.value(&down)) / (2.0 * h);
                    assert!(
                        (fd - g[i]).abs() < 1e-7,
                        "{op:?} {binary:?} d{i}: {fd} vs {}",
                        g[i]
                    );
                }
            }
        }
    }
}
