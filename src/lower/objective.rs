//! Lowering one objective (with its data arguments) to a compiled expression: a box type.

use super::minibatch::SampledRows;
use crate::check::program::{
    BinaryOp, DataArg, Expr, ExprKind, Function, Objective, Program, Sense,
};
use crate::numerics::{self, CompiledObjective, ExprBuilder, NodeId, Reduction, UnaryOp};
use crate::shape::Shape;

/// A box type: an objective instantiated with concrete data arguments, compiled.
///
/// Its decision vector is the objective's ports, in header order, followed by its private
/// variables, in declaration order, each flat in row-major order.
#[derive(Clone)]
pub struct BoxType {
    /// The objective's name.
    pub name: String,
    /// The compiled objective (value and gradient; negated for `maximize`).
    pub compiled: std::sync::Arc<CompiledObjective>,
    /// Number of scalar coordinates taken by the ports (they come first).
    pub port_len: usize,
    /// The private variables: name, shape, offset in the decision vector, initial value.
    pub private: Vec<PrivateVariable>,
    /// `minimize` or `maximize`, as written: `compiled` computes the negation for `maximize`,
    /// and reports turn its values back into the objective as written.
    pub sense: Sense,
}

impl BoxType {
    /// The value of the objective as written (`maximize f` reports `f`) from the value
    /// `compiled` computes (`-f` for `maximize`). Zero stays `+0`.
    pub fn as_written(&self, computed: f64) -> f64 {
        match self.sense {
            Sense::Minimize => computed,
            Sense::Maximize => 0.0 - computed,
        }
    }
}

/// A private variable of a box type.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateVariable {
    /// Its name in the objective.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// Offset of its first entry in the box's decision vector.
    pub offset: usize,
    /// Initial value of every entry (0 when not given).
    pub init: f64,
}

/// Compiles `objective` with the given data arguments, each a constant. Shapes were
/// checked by the checker, so an error here is an internal inconsistency, reported as a
/// message.
pub fn compile_box_type(
    program: &Program,
    objective: &Objective,
    data_args: &[DataArg],
) -> Result<BoxType, String> {
    compile_box_type_with(program, objective, data_args, &vec![false; data_args.len()])
}

/// [`compile_box_type`] where the data parameters marked in `per_box` are per-box data
/// (read from each box's data vector, [`raw_data`]) rather than constants: one box type
/// then serves every box whose arguments differ only there. `data_args` gives the
/// constant arguments (the others only their shapes).
pub fn compile_box_type_with(
    program: &Program,
    objective: &Objective,
    data_args: &[DataArg],
    per_box: &[bool],
) -> Result<BoxType, String> {
    compile_sampled_box_type(program, objective, data_args, per_box, SampledRows::AsData)
}

/// [`compile_box_type_with`] where the parameters marked `sample` take the shape `sampled`
/// gives them (`batch` rows in a minibatch run); `per_box` must mark them unless
/// `sampled` is [`SampledRows::AsData`].
pub(crate) fn compile_sampled_box_type(
    program: &Program,
    objective: &Objective,
    data_args: &[DataArg],
    per_box: &[bool],
    sampled: SampledRows,
) -> Result<BoxType, String> {
    let port_len: usize = objective.ports.iter().map(|p| p.shape.len()).sum();
    let private_len: usize = objective.vars.iter().map(|v| v.shape.len()).sum();
    let mut builder = ExprBuilder::new(port_len + private_len);
    let mut offset = 0;
    let mut ports = Vec::with_capacity(objective.ports.len());
    for port in &objective.ports {
        ports.push(builder.input(offset, port.shape));
        offset += port.shape.len();
    }
    let mut vars = Vec::with_capacity(objective.vars.len());
    let mut private = Vec::with_capacity(objective.vars.len());
    for var in &objective.vars {
        vars.push(builder.input(offset, var.shape));
        private.push(PrivateVariable {
            name: var.name.clone(),
            shape: var.shape,
            offset,
            init: var.init.unwrap_or(0.0),
        });
        offset += var.shape.len();
    }
    if data_args.len() != objective.data_params.len() {
        return Err(format!(
            "objective `{}` takes {}, got {}",
            objective.name,
            crate::name::counted(objective.data_params.len(), "data argument"),
            data_args.len()
        ));
    }
    let mut data_params = Vec::with_capacity(data_args.len());
    for ((param, arg), &per_box) in objective.data_params.iter().zip(data_args).zip(per_box) {
        let node = match *arg {
            _ if per_box => {
                let shape = arg_shape(program, param.shape, arg);
                builder.data_input(sampled.param_shape(param.sampled, shape))
            }
            DataArg::Number(value) => {
                let values = vec![value; param.shape.len()];
                builder.constant(param.shape, &values)
            }
            DataArg::Data(id) => {
                let value = &program.data[id.0 as usize].value;
                builder.constant(value.shape, &value.values)
            }
        };
        data_params.push(node);
    }
    let mut lowering = Lowering {
        program,
        builder,
        ports,
        vars,
        data_params,
        lets: Vec::with_capacity(objective.lets.len()),
    };
    for binding in &objective.lets {
        let node = lowering.expr(&binding.expr)?;
        lowering.lets.push(node);
    }
    let mut output = lowering.expr(&objective.body)?;
    if objective.sense == Sense::Maximize {
        output = lowering.builder.unary(UnaryOp::Neg, output);
    }
    let compiled = lowering
        .builder
        .compile(output)
        .map_err(|e| format!("objective `{}`: {e}", objective.name))?;
    Ok(BoxType {
        name: objective.name.clone(),
        compiled: std::sync::Arc::new(compiled),
        port_len,
        private,
        sense: objective.sense,
    })
}

/// The shape of a data argument: a number fills the parameter's shape.
pub(crate) fn arg_shape(program: &Program, param: Shape, arg: &DataArg) -> Shape {
    match *arg {
        DataArg::Number(_) => param,
        DataArg::Data(id) => program.data[id.0 as usize].value.shape,
    }
}

/// Appends a box's raw data vector to `out`: the values of its arguments marked `per_box`,
/// in parameter order (a number repeated to fill its parameter's shape); of a sampled
/// parameter, as many of its first rows as `sampled` gives it (a minibatch run draws the
/// rows at each step).
pub(crate) fn raw_data(
    program: &Program,
    objective: &Objective,
    data_args: &[DataArg],
    per_box: &[bool],
    sampled: SampledRows,
    out: &mut Vec<f64>,
) {
    for ((param, arg), _) in objective
        .data_params
        .iter()
        .zip(data_args)
        .zip(per_box)
        .filter(|(_, p)| **p)
    {
        let len = sampled
            .param_shape(param.sampled, arg_shape(program, param.shape, arg))
            .len();
        match *arg {
            DataArg::Number(value) => out.extend(std::iter::repeat(value).take(len)),
            DataArg::Data(id) => {
                out.extend_from_slice(&program.data[id.0 as usize].value.values[..len])
            }
        }
    }
}

struct Lowering<'a> {
    program: &'a Program,
    builder: ExprBuilder,
    ports: Vec<NodeId>,
    vars: Vec<NodeId>,
    data_params: Vec<NodeId>,
    lets: Vec<NodeId>,
}

impl Lowering<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<NodeId, String> {
        let shape_error = |e: numerics::ShapeError| e.to_string();
        Ok(match &expr.kind {
            ExprKind::Number(value) => self.builder.scalar(*value),
            ExprKind::Port(i) => self.ports[*i],
            ExprKind::Var(i) => self.vars[*i],
            ExprKind::DataParam(i) => self.data_params[*i],
            ExprKind::Let(i) => self.lets[*i],
            ExprKind::Data(id) => {
                let value = &self.program.data[id.0 as usize].value;
                self.builder.constant(value.shape, &value.values)
            }
            ExprKind::Neg(inner) => {
                let a = self.expr(inner)?;
                self.builder.unary(UnaryOp::Neg, a)
            }
            ExprKind::Transpose(inner) => {
                let a = self.expr(inner)?;
                self.builder.unary(UnaryOp::Transpose, a)
            }
            ExprKind::Binary(op, left, right) => {
                let a = self.expr(left)?;
                let b = self.expr(right)?;
                let op = match op {
                    BinaryOp::Add => numerics::BinaryOp::Add,
                    BinaryOp::Sub => numerics::BinaryOp::Sub,
                    BinaryOp::Mul => numerics::BinaryOp::Mul,
                    BinaryOp::Div => numerics::BinaryOp::Div,
                    BinaryOp::Pow => numerics::BinaryOp::Pow,
                    BinaryOp::MatMul => numerics::BinaryOp::MatMul,
                };
                self.builder.binary(op, a, b).map_err(shape_error)?
            }
            ExprKind::Call(function, args) => {
                // The checker keeps only the matrix of a row-wise call (`sum(X, 1)`,
                // `softmax(X, 1)`): its axis is always 1.
                let rowwise = args.len() == 1
                    && match function {
                        Function::Softmax => true,
                        Function::Sum | Function::Mean | Function::LogSumExp => {
                            !expr.shape.is_scalar()
                        }
                        _ => false,
                    };
                let mut nodes = Vec::with_capacity(args.len());
                for arg in args {
                    nodes.push(self.expr(arg)?);
                }
                let unary = |f: Function| -> Option<UnaryOp> {
                    Some(match f {
                        Function::Exp => UnaryOp::Exp,
                        Function::Log => UnaryOp::Log,
                        Function::Sqrt => UnaryOp::Sqrt,
                        Function::Abs => UnaryOp::Abs,
                        Function::Tanh => UnaryOp::Tanh,
                        Function::Sigmoid => UnaryOp::Sigmoid,
                        Function::Relu => UnaryOp::Relu,
                        Function::Softplus => UnaryOp::Softplus,
                        Function::Sin => UnaryOp::Sin,
                        Function::Cos => UnaryOp::Cos,
                        _ => return None,
                    })
                };
                let reduction = |f: Function| -> Option<Reduction> {
                    Some(match f {
                        Function::Sum => Reduction::Sum,
                        Function::Mean => Reduction::Mean,
                        Function::SumSq => Reduction::SumSq,
                        Function::LogSumExp => Reduction::LogSumExp,
                        _ => return None,
                    })
                };
                let arity_error = || {
                    format!(
                        "`{}` called with {} arguments",
                        function.name(),
                        nodes.len()
                    )
                };
                if rowwise {
                    let [a] = nodes[..] else {
                        return Err(arity_error());
                    };
                    match reduction(*function) {
                        Some(op) => self.builder.reduce_rows(op, a).map_err(shape_error)?,
                        None => self.builder.softmax_rows(a).map_err(shape_error)?,
                    }
                } else if let Some(op) = unary(*function) {
                    let [a] = nodes[..] else {
                        return Err(arity_error());
                    };
                    self.builder.unary(op, a)
                } else if let Some(op) = reduction(*function) {
                    let [a] = nodes[..] else {
                        return Err(arity_error());
                    };
                    self.builder.reduce(op, a)
                } else {
                    let [a, b] = nodes[..] else {
                        return Err(arity_error());
                    };
                    match function {
                        Function::Max => self
                            .builder
                            .binary(numerics::BinaryOp::Max, a, b)
                            .map_err(shape_error)?,
                        Function::Min => self
                            .builder
                            .binary(numerics::BinaryOp::Min, a, b)
                            .map_err(shape_error)?,
                        _ => self.builder.dot(a, b).map_err(shape_error)?,
                    }
                }
            }
            ExprKind::Vector(items) => {
                let mut nodes = Vec::with_capacity(items.len());
                for item in items {
                    nodes.push(self.expr(item)?);
                }
                self.builder.vector(&nodes).map_err(shape_error)?
            }
            ExprKind::Matrix(rows) => {
                let mut node_rows = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut nodes = Vec::with_capacity(row.len());
                    for item in row {
                        nodes.push(self.expr(item)?);
                    }
                    node_rows.push(nodes);
                }
                self.builder.matrix(&node_rows).map_err(shape_error)?
            }
            ExprKind::Index(inner, indices) => {
                let a = self.expr(inner)?;
                self.builder.index(a, indices).map_err(shape_error)?
            }
        })
    }
}
