//! Evaluating a checked `report` block (docs/language.md, "Reports") on a composite's
//! values: a direct evaluation of its typed expressions over dense row-major arrays, with
//! no gradient. Shapes were checked by the checker; this module knows nothing of the
//! command line or of where the values come from (`catopt eval` reads them from a file).
//!
//! The elementwise functions are the numerics' own (`tanh`, `sigmoid`, `softplus`), so a
//! report computes what an objective with the same expression computes, up to the order
//! of summation.

use crate::check::program::{BinaryOp, Function, Program};
use crate::check::report_types::{Report, ReportExpr, ReportKind, VariableRef};
use crate::diagnostic::Diagnostic;
use crate::shape::Shape;

/// A value: its shape and its entries in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Its shape.
    pub shape: Shape,
    /// `shape.len()` numbers, row-major.
    pub values: Vec<f64>,
}

impl Value {
    /// Entry `k` of a value broadcast to a shape with `cols` columns and `k` below its
    /// length (the checker made sure it broadcasts: equal shapes, a scalar, or a row).
    fn at(&self, k: usize, len: usize, cols: usize) -> f64 {
        if self.values.len() == len {
            self.values[k]
        } else if self.values.len() == 1 {
            self.values[0]
        } else {
            self.values[k % cols]
        }
    }
}

/// Evaluates every line of `report`, in order, reading the composite's variables through
/// `variable` (their values flat, row-major). Returns one value per line
/// ([`Report::lines`]); printed lines are scalars. A variable `variable` does not know
/// is an error `E0911` located at its first use.
pub fn evaluate(
    program: &Program,
    report: &Report,
    variable: &dyn Fn(&VariableRef) -> Option<Vec<f64>>,
) -> Result<Vec<Value>, Box<Diagnostic>> {
    let mut lines: Vec<Value> = Vec::with_capacity(report.lines.len());
    for line in &report.lines {
        let value = Evaluator {
            program,
            lines: &lines,
            variable,
        }
        .eval(&line.expr)?;
        lines.push(value);
    }
    Ok(lines)
}

struct Evaluator<'a> {
    program: &'a Program,
    lines: &'a [Value],
    variable: &'a dyn Fn(&VariableRef) -> Option<Vec<f64>>,
}

fn cols_of(shape: Shape) -> usize {
    match shape {
        Shape::Scalar => 1,
        Shape::Vector(n) | Shape::Matrix(_, n) => n,
    }
}

fn rows_cols(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Scalar => (1, 1),
        Shape::Vector(n) => (1, n),
        Shape::Matrix(m, n) => (m, n),
    }
}

impl Evaluator<'_> {
    fn eval(&self, e: &ReportExpr) -> Result<Value, Box<Diagnostic>> {
        let shape = e.shape;
        let values = match &e.kind {
            ReportKind::Number(v) => vec![*v],
            ReportKind::Data(id) => self.program.data[id.0 as usize].value.values.to_vec(),
            ReportKind::Variable(v) => match (self.variable)(v) {
                Some(values) if values.len() == v.shape.len() => values,
                Some(values) => {
                    return Err(Box::new(
                        Diagnostic::error(
                            "E0912",
                            format!(
                                "`{}` has {} numbers in the values, its shape {} needs {}",
                                v.name,
                                values.len(),
                                v.shape,
                                v.shape.len()
                            ),
                            e.span,
                        )
                        .with_label("read here")
                        .with_help("the values must come from a run of this composite"),
                    ))
                }
                None => {
                    return Err(Box::new(
                        Diagnostic::error(
                            "E0911",
                            format!("the values have no variable `{}`", v.name),
                            e.span,
                        )
                        .with_label("read here")
                        .with_help(
                            "evaluate values saved by `catopt run --output` for this composite",
                        ),
                    ))
                }
            },
            ReportKind::Line(i) => self.lines[*i].values.clone(),
            ReportKind::Neg(a) => self.eval(a)?.values.iter().map(|x| -x).collect(),
            ReportKind::Transpose(a) => {
                let a = self.eval(a)?;
                match a.shape {
                    Shape::Matrix(m, n) => {
                        let mut out = vec![0.0; m * n];
                        for i in 0..m {
                            for j in 0..n {
                                out[j * m + i] = a.values[i * n + j];
                            }
                        }
                        out
                    }
                    _ => a.values,
                }
            }
            ReportKind::Binary(BinaryOp::MatMul, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                matmul(&a, &b)
            }
            ReportKind::Binary(op, a, b) => {
                let f = |x: f64, y: f64| match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div => x / y,
                    _ => x.powf(y),
                };
                self.zip(a, b, shape, f)?
            }
            ReportKind::Compare(op, a, b) => {
                self.zip(a, b, shape, |x, y| f64::from(u8::from(op.holds(x, y))))?
            }
            ReportKind::Call(function, args) => return self.call(*function, args, shape),
            ReportKind::Argmax(a) => {
                let a = self.eval(a)?;
                let cols = cols_of(a.shape);
                a.values.chunks(cols.max(1)).map(argmax).collect()
            }
            ReportKind::Columns(members) => {
                let members: Vec<Value> = members
                    .iter()
                    .map(|m| self.eval(m))
                    .collect::<Result<_, _>>()?;
                let (rows, cols) = (members.first().map_or(0, |m| m.values.len()), members.len());
                let mut out = vec![0.0; rows * cols];
                for (c, member) in members.iter().enumerate() {
                    for (r, v) in member.values.iter().enumerate() {
                        out[r * cols + c] = *v;
                    }
                }
                out
            }
            ReportKind::Vector(items) => items
                .iter()
                .map(|x| Ok(self.eval(x)?.values[0]))
                .collect::<Result<_, Box<Diagnostic>>>()?,
            ReportKind::Matrix(rows) => rows
                .iter()
                .flatten()
                .map(|x| Ok(self.eval(x)?.values[0]))
                .collect::<Result<_, Box<Diagnostic>>>()?,
            ReportKind::Index(a, at) => {
                let a = self.eval(a)?;
                let flat = match at.as_slice() {
                    [i] => *i,
                    [i, j] => i * cols_of(a.shape) + j,
                    _ => 0,
                };
                vec![a.values[flat]]
            }
        };
        Ok(Value { shape, values })
    }

    fn zip(
        &self,
        a: &ReportExpr,
        b: &ReportExpr,
        shape: Shape,
        f: impl Fn(f64, f64) -> f64,
    ) -> Result<Vec<f64>, Box<Diagnostic>> {
        let (a, b) = (self.eval(a)?, self.eval(b)?);
        let (len, cols) = (shape.len(), cols_of(shape));
        Ok((0..len)
            .map(|k| f(a.at(k, len, cols), b.at(k, len, cols)))
            .collect())
    }

    fn call(
        &self,
        function: Function,
        args: &[ReportExpr],
        shape: Shape,
    ) -> Result<Value, Box<Diagnostic>> {
        use crate::numerics::{sigmoid, softplus, tanh};
        let a = self.eval(&args[0])?;
        let map = |f: fn(f64) -> f64| a.values.iter().map(|&x| f(x)).collect::<Vec<f64>>();
        // A row-wise call keeps only its matrix; its result is not a scalar.
        let rowwise = args.len() == 1 && matches!(a.shape, Shape::Matrix(..)) && !shape.is_scalar();
        let cols = cols_of(a.shape).max(1);
        let values = match function {
            Function::Exp => map(f64::exp),
            Function::Log => map(f64::ln),
            Function::Sqrt => map(f64::sqrt),
            Function::Abs => map(f64::abs),
            Function::Tanh => map(tanh),
            Function::Sigmoid => map(sigmoid),
            Function::Relu => map(|x| if x > 0.0 { x } else { 0.0 }),
            Function::Softplus => map(softplus),
            Function::Sin => map(f64::sin),
            Function::Cos => map(f64::cos),
            Function::Softmax => a.values.chunks(cols).flat_map(softmax).collect(),
            Function::Sum | Function::Mean | Function::LogSumExp | Function::SumSq => {
                let reduce = |row: &[f64]| match function {
                    Function::Sum => row.iter().sum(),
                    Function::Mean => row.iter().sum::<f64>() / row.len() as f64,
                    Function::SumSq => row.iter().map(|x| x * x).sum(),
                    _ => logsumexp(row),
                };
                if rowwise {
                    a.values.chunks(cols).map(reduce).collect()
                } else {
                    vec![reduce(&a.values)]
                }
            }
            Function::Dot => {
                let b = self.eval(&args[1])?;
                vec![a.values.iter().zip(&b.values).map(|(x, y)| x * y).sum()]
            }
            Function::Max | Function::Min => {
                let b = self.eval(&args[1])?;
                let (len, cols) = (shape.len(), cols_of(shape));
                let pick_max = function == Function::Max;
                (0..len)
                    .map(|k| {
                        let (x, y) = (a.at(k, len, cols), b.at(k, len, cols));
                        if x.is_nan() || y.is_nan() {
                            f64::NAN
                        } else if (x > y) == pick_max {
                            x
                        } else {
                            y
                        }
                    })
                    .collect()
            }
        };
        Ok(Value { shape, values })
    }
}

/// The position of the largest entry (the first on ties); NaN if any entry is NaN.
fn argmax(row: &[f64]) -> f64 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x.is_nan() {
            return f64::NAN;
        }
        if x > row[best] {
            best = i;
        }
    }
    best as f64
}

fn logsumexp(row: &[f64]) -> f64 {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return row.iter().map(|x| x.exp()).sum::<f64>().ln();
    }
    max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

fn softmax(row: &[f64]) -> Vec<f64> {
    let lse = logsumexp(row);
    row.iter().map(|x| (x - lse).exp()).collect()
}

/// The matrix product under NumPy's rules (a vector on the left is a row, on the right a
/// column; two vectors give their dot product).
fn matmul(a: &Value, b: &Value) -> Vec<f64> {
    let (m, k) = match a.shape {
        Shape::Vector(n) => (1, n),
        other => rows_cols(other),
    };
    let n = match b.shape {
        Shape::Vector(_) => 1,
        other => rows_cols(other).1,
    };
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = a.values[i * k + p];
            for j in 0..n {
                out[i * n + j] += x * b.values[p * n + j];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(shape: Shape, values: &[f64]) -> Value {
        Value {
            shape,
            values: values.to_vec(),
        }
    }

    #[test]
    fn argmax_takes_the_first_largest_and_refuses_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1.0);
        assert_eq!(argmax(&[-1.0]), 0.0);
        assert!(argmax(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn matmul_follows_numpy() {
        let a = value(Shape::Matrix(2, 3), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let v = value(Shape::Vector(3), &[1.0, 0.0, -1.0]);
        assert_eq!(matmul(&a, &v), vec![-2.0, -2.0]);
        let w = value(Shape::Vector(2), &[1.0, 1.0]);
        assert_eq!(matmul(&w, &a), vec![5.0, 7.0, 9.0]);
        assert_eq!(matmul(&v, &v), vec![2.0]);
    }

    #[test]
    fn logsumexp_is_stable() {
        assert!((logsumexp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let s = softmax(&[0.0, 0.0]);
        assert_eq!(s, vec![0.5, 0.5]);
    }

    #[test]
    fn broadcasting_reads_scalars_and_rows() {
        let row = value(Shape::Vector(2), &[10.0, 20.0]);
        assert_eq!(row.at(3, 4, 2), 20.0);
        assert_eq!(value(Shape::Scalar, &[7.0]).at(3, 4, 2), 7.0);
    }
}
