//! Quadratic objectives `x' P x + a' x + c`, the form of the reference problems.

use crate::category::ReverseDerivative;
use nalgebra::{DMatrix, DVector};

/// The objective `f(x) = x' P x + a' x + c` (no factor 1/2, as in AlgebraicOptimization.jl's
/// README problem), gradient `(P + P') x + a`.
///
/// ```
/// use catopt::laws::Quadratic;
/// use catopt::category::ReverseDerivative;
/// // (x0 - 1)^2 = x0^2 - 2 x0 + 1
/// let q = Quadratic::new(vec![1.0], vec![-2.0], 1.0);
/// assert_eq!(q.value(&[1.0]), 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Quadratic {
    /// `P`, square.
    pub matrix: DMatrix<f64>,
    /// `a`.
    pub linear: DVector<f64>,
    /// `c`.
    pub constant: f64,
}

impl Quadratic {
    /// From a row-major `n x n` matrix, a length-`n` vector and a constant.
    /// Panics when the sizes disagree (a programming error in a test or example).
    pub fn new(matrix_row_major: Vec<f64>, linear: Vec<f64>, constant: f64) -> Quadratic {
        let n = linear.len();
        assert_eq!(matrix_row_major.len(), n * n, "P must be n x n");
        Quadratic {
            matrix: DMatrix::from_row_slice(n, n, &matrix_row_major),
            linear: DVector::from_vec(linear),
            constant,
        }
    }

    /// `sum_i (x_i - centre_i)^2`.
    pub fn distance_squared(centre: &[f64]) -> Quadratic {
        let n = centre.len();
        Quadratic {
            matrix: DMatrix::identity(n, n),
            linear: DVector::from_iterator(n, centre.iter().map(|c| -2.0 * c)),
            constant: centre.iter().map(|c| c * c).sum(),
        }
    }
}

impl ReverseDerivative for Quadratic {
    fn dimension(&self) -> usize {
        self.linear.len()
    }

    fn value(&self, x: &[f64]) -> f64 {
        let n = self.dimension();
        let mut total = self.constant;
        for i in 0..n {
            let mut row = 0.0;
            for (j, xj) in x.iter().enumerate().take(n) {
                row += self.matrix[(i, j)] * xj;
            }
            total += x[i] * row + self.linear[i] * x[i];
        }
        total
    }

    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        let n = self.dimension();
        for (i, g) in gradient.iter_mut().enumerate().take(n) {
            let mut d = self.linear[i];
            for (j, xj) in x.iter().enumerate().take(n) {
                d += (self.matrix[(i, j)] + self.matrix[(j, i)]) * xj;
            }
            *g = seed * d;
        }
        self.value(x)
    }
}
