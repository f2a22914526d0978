//! Open dynamical systems, continuous (vector fields) and discrete (maps), the GD functor
//! (`gradient_flow`: objective -> `-grad f`) and Euler's method.
//!
//! Composition ([`oapply`](super::oapply)) works for these decorations too: a composite of
//! vector fields sums the boxes' velocities on shared variables; a composite of discrete maps
//! sums the boxes' increments `s_b(y) - y`.

use super::open::{Composite, ReverseDerivative};

/// A vector field `v: R^n -> R^n` (the decoration of a continuous open dynamical system).
pub trait VectorField {
    /// The state dimension `n`.
    fn dimension(&self) -> usize;
    /// Overwrites `out` with `v(x)`.
    fn eval(&self, x: &[f64], out: &mut [f64]);
}

/// A map `s: R^n -> R^n` (the decoration of a discrete open dynamical system).
pub trait DiscreteMap {
    /// The state dimension `n`.
    fn dimension(&self) -> usize;
    /// Overwrites `out` with `s(x)`.
    fn step(&self, x: &[f64], out: &mut [f64]);
}

impl<T: VectorField + ?Sized> VectorField for &T {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn eval(&self, x: &[f64], out: &mut [f64]) {
        (**self).eval(x, out)
    }
}

impl<T: VectorField + ?Sized> VectorField for std::sync::Arc<T> {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn eval(&self, x: &[f64], out: &mut [f64]) {
        (**self).eval(x, out)
    }
}

impl<T: DiscreteMap + ?Sized> DiscreteMap for &T {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn step(&self, x: &[f64], out: &mut [f64]) {
        (**self).step(x, out)
    }
}

impl<T: DiscreteMap + ?Sized> DiscreteMap for std::sync::Arc<T> {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn step(&self, x: &[f64], out: &mut [f64]) {
        (**self).step(x, out)
    }
}

/// The gradient flow `v = -grad f` of an objective: the GD functor on decorations.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientFlow<F> {
    /// The objective whose negative gradient this is.
    pub objective: F,
}

/// The GD functor on a decoration: `f` goes to its gradient flow `-grad f = -R[f](x, 1)`,
/// computed as the reverse derivative with seed `-1` (exact negation, so no rounding).
///
/// On open objectives use `open.map_decoration(gradient_flow)`; on composites
/// `composite.map_decorations(gradient_flow)` or `gradient_flow(composite)` — the two agree
/// exactly (GD naturality).
pub fn gradient_flow<F: ReverseDerivative>(objective: F) -> GradientFlow<F> {
    GradientFlow { objective }
}

impl<F: ReverseDerivative> VectorField for GradientFlow<F> {
    fn dimension(&self) -> usize {
        self.objective.dimension()
    }
    fn eval(&self, x: &[f64], out: &mut [f64]) {
        self.objective.reverse(x, -1.0, out);
    }
}

/// Euler's method with one step size: the discrete system `x -> x + step_size * v(x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Euler<V> {
    /// The vector field.
    pub field: V,
    /// The step size `gamma` (learning rate, for a gradient flow).
    pub step_size: f64,
}

/// Euler's method: turns a continuous system into a discrete one, `x + gamma * v(x)`.
/// Applied to a gradient flow it is gradient descent with learning rate `gamma`.
///
/// ```
/// use catopt::category::{euler, gradient_flow, iterate, ReverseDerivative};
/// # struct Sq;
/// # impl ReverseDerivative for Sq {
/// #     fn dimension(&self) -> usize { 1 }
/// #     fn value(&self, x: &[f64]) -> f64 { x[0] * x[0] }
/// #     fn reverse(&self, x: &[f64], s: f64, g: &mut [f64]) -> f64 { g[0] = s * 2.0 * x[0]; x[0] * x[0] }
/// # }
/// let descent = euler(gradient_flow(Sq), 0.25);
/// assert_eq!(iterate(&descent, &[4.0], 2), vec![1.0]);
/// ```
pub fn euler<V: VectorField>(field: V, step_size: f64) -> Euler<V> {
    Euler { field, step_size }
}

impl<V: VectorField> DiscreteMap for Euler<V> {
    fn dimension(&self) -> usize {
        self.field.dimension()
    }
    fn step(&self, x: &[f64], out: &mut [f64]) {
        self.field.eval(x, out);
        for (o, &xi) in out.iter_mut().zip(x) {
            *o = xi + self.step_size * *o;
        }
    }
}

impl<V: VectorField> VectorField for Composite<V> {
    fn dimension(&self) -> usize {
        self.apex()
    }

    /// `v(z) = sum_b phi_b*( v_b(phi_b^* z) )`, added in box order onto zeros — the same
    /// operations, in the same order, as the composite objective's reverse derivative, so
    /// `oapply(d, gradient_flow(f_b))` equals `gradient_flow(oapply(d, f_b))` bit for bit.
    fn eval(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(out.len(), self.apex(), "output of the wrong length");
        out.fill(0.0);
        self.for_each_box(x, |phi, field, local, local_out| {
            field.eval(local, local_out);
            for (&i, &v) in phi.iter().zip(local_out.iter()) {
                out[i] += v;
            }
        });
    }
}

impl<M: DiscreteMap> DiscreteMap for Composite<M> {
    fn dimension(&self) -> usize {
        self.apex()
    }

    /// `s(z) = z + sum_b phi_b*( s_b(phi_b^* z) - phi_b^* z )`: boxes' increments summed in
    /// box order onto `z`.
    ///
    /// For `s_b = euler(v_b, gamma)` the increment `(y + gamma v_b) - y` equals `gamma v_b`
    /// only up to rounding, so this composite agrees with `euler(oapply(d, v_b), gamma)` to
    /// rounding, not bit for bit. The bitwise-reproducible distributed algorithm sums the
    /// boxes' velocities on junctions first and then takes one Euler step, which is exactly
    /// `euler(oapply(d, gradient_flow(f_b)), gamma)`.
    fn step(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(out.len(), self.apex(), "output of the wrong length");
        out.copy_from_slice(x);
        self.for_each_box(x, |phi, map, local, local_out| {
            map.step(local, local_out);
            for ((&i, &next), &now) in phi.iter().zip(local_out.iter()).zip(local.iter()) {
                out[i] += next - now;
            }
        });
    }
}

/// Runs `steps` steps of a discrete system from `start`; returns the final state.
pub fn iterate<M: DiscreteMap + ?Sized>(map: &M, start: &[f64], steps: usize) -> Vec<f64> {
    let mut state = start.to_vec();
    let mut next = vec![0.0; start.len()];
    for _ in 0..steps {
        map.step(&state, &mut next);
        std::mem::swap(&mut state, &mut next);
    }
    state
}

/// Runs `steps` steps and returns every state, starting with `start` (`steps + 1` states).
pub fn trajectory<M: DiscreteMap + ?Sized>(map: &M, start: &[f64], steps: usize) -> Vec<Vec<f64>> {
    let mut states = Vec::with_capacity(steps + 1);
    states.push(start.to_vec());
    for _ in 0..steps {
        let mut next = vec![0.0; start.len()];
        map.step(states.last().expect("non-empty"), &mut next);
        states.push(next);
    }
    states
}
