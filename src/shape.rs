//! Shapes of values in the `.opt` language: a scalar, a vector or a matrix.
//!
//! Shared by the checker (shape inference) and the numerics (buffer sizes); it knows
//! nothing of either.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of a value: `real`, `real[n]` or `real[rows, cols]`.
///
/// Values are stored flat in row-major order, so a shape also fixes how many scalar
/// coordinates (decision variables) a value occupies.
///
/// ```
/// use catopt::shape::Shape;
/// assert_eq!(Shape::Matrix(64, 32).len(), 2048);
/// assert_eq!(Shape::Vector(3).to_string(), "real[3]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// A single real number.
    Scalar,
    /// A vector of the given length.
    Vector(usize),
    /// A matrix with the given numbers of rows and columns.
    Matrix(usize, usize),
}

impl Shape {
    /// The number of scalar entries.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Scalar => 1,
            Shape::Vector(n) => n,
            Shape::Matrix(rows, cols) => rows * cols,
        }
    }

    /// True when the shape holds no entries (a zero dimension).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for `real`.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Shape::Scalar)
    }

    /// The number of scalar entries, or `None` if it overflows `usize`.
    pub fn checked_len(&self) -> Option<usize> {
        match *self {
            Shape::Scalar => Some(1),
            Shape::Vector(n) => Some(n),
            Shape::Matrix(rows, cols) => rows.checked_mul(cols),
        }
    }

    /// The shape of an elementwise operation on `self` and `other` under the language's
    /// broadcasting rules (NumPy's, restricted to rank <= 2): a scalar broadcasts to
    /// anything, a vector of length n broadcasts over the rows of an `[m, n]` matrix.
    /// Returns `None` when the shapes do not broadcast.
    ///
    /// ```
    /// use catopt::shape::Shape;
    /// assert_eq!(Shape::Scalar.broadcast(Shape::Vector(3)), Some(Shape::Vector(3)));
    /// assert_eq!(Shape::Vector(3).broadcast(Shape::Matrix(2, 3)), Some(Shape::Matrix(2, 3)));
    /// assert_eq!(Shape::Vector(2).broadcast(Shape::Matrix(2, 3)), None);
    /// ```
    pub fn broadcast(self, other: Shape) -> Option<Shape> {
        use Shape::*;
        match (self, other) {
            (a, b) if a == b => Some(a),
            (Scalar, b) => Some(b),
            (a, Scalar) => Some(a),
            (Vector(n), Matrix(m, k)) | (Matrix(m, k), Vector(n)) if n == k => Some(Matrix(m, k)),
            _ => None,
        }
    }

    /// The shape of the matrix product `self @ other` under NumPy's rules: a vector on the
    /// left acts as a row, on the right as a column, and vector @ vector is a dot product.
    /// Returns `None` when the inner dimensions disagree or an operand is a scalar.
    ///
    /// ```
    /// use catopt::shape::Shape;
    /// assert_eq!(Shape::Matrix(5, 3).matmul(Shape::Vector(3)), Some(Shape::Vector(5)));
    /// assert_eq!(Shape::Vector(3).matmul(Shape::Vector(3)), Some(Shape::Scalar));
    /// ```
    pub fn matmul(self, other: Shape) -> Option<Shape> {
        use Shape::*;
        match (self, other) {
            (Vector(a), Vector(b)) if a == b => Some(Scalar),
            (Vector(a), Matrix(b, c)) if a == b => Some(Vector(c)),
            (Matrix(a, b), Vector(c)) if b == c => Some(Vector(a)),
            (Matrix(a, b), Matrix(c, d)) if b == c => Some(Matrix(a, d)),
            _ => None,
        }
    }

    /// The shape of the transpose `x'`: a matrix swaps its dimensions; scalars and vectors
    /// are unchanged (as in NumPy).
    pub fn transpose(self) -> Shape {
        match self {
            Shape::Matrix(rows, cols) => Shape::Matrix(cols, rows),
            other => other,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Scalar => write!(f, "real"),
            Shape::Vector(n) => write!(f, "real[{n}]"),
            Shape::Matrix(rows, cols) => write!(f, "real[{rows}, {cols}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_is_symmetric() {
        let shapes = [
            Shape::Scalar,
            Shape::Vector(2),
            Shape::Vector(3),
            Shape::Matrix(2, 3),
            Shape::Matrix(3, 2),
        ];
        for a in shapes {
            for b in shapes {
                assert_eq!(a.broadcast(b), b.broadcast(a), "{a} and {b}");
            }
        }
    }

    #[test]
    fn matmul_rejects_scalars_and_mismatches() {
        assert_eq!(Shape::Scalar.matmul(Shape::Vector(2)), None);
        assert_eq!(Shape::Matrix(2, 3).matmul(Shape::Matrix(2, 3)), None);
        assert_eq!(
            Shape::Matrix(2, 3).matmul(Shape::Matrix(3, 4)),
            Some(Shape::Matrix(2, 4))
        );
        assert_eq!(
            Shape::Vector(2).matmul(Shape::Matrix(2, 4)),
            Some(Shape::Vector(4))
        );
    }
}
