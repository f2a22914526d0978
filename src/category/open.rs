//! Open systems (cospans of finite sets decorated with an objective, a vector field or a
//! map) and their composition along a wiring diagram, `oapply`.

use super::diagram::{prefix_sums, WiringDiagram};
use super::error::CategoryError;
use super::finite::{pushout_of_pairs, FinFunction};
use crate::shape::Shape;
use std::cell::RefCell;
use std::sync::Arc;

/// The reverse derivative of a scalar function `f: R^n -> R`, as in a Cartesian reverse
/// derivative category (CRDC): `R[f](x, dy) = dy * grad f(x)`.
///
/// The smooth maps (reverse-mode automatic differentiation) are one model; polynomials over a
/// commutative ring (e.g. Z2) are another. Composition in this module only ever calls these
/// three methods, so a new domain plugs in without touching it.
///
/// ```
/// use catopt::category::ReverseDerivative;
/// struct Square;
/// impl ReverseDerivative for Square {
///     fn dimension(&self) -> usize { 1 }
///     fn value(&self, x: &[f64]) -> f64 { x[0] * x[0] }
///     fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
///         gradient[0] = seed * 2.0 * x[0];
///         x[0] * x[0]
///     }
/// }
/// let mut g = [0.0];
/// assert_eq!(Square.reverse(&[3.0], -1.0, &mut g), 9.0);
/// assert_eq!(g, [-6.0]);
/// ```
pub trait ReverseDerivative {
    /// The number of scalar inputs `n`.
    fn dimension(&self) -> usize;
    /// `f(x)`; `x.len() == self.dimension()`.
    fn value(&self, x: &[f64]) -> f64;
    /// Overwrites `gradient` (length `n`) with `seed * grad f(x)` and returns `f(x)`.
    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64;
}

impl<T: ReverseDerivative + ?Sized> ReverseDerivative for &T {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn value(&self, x: &[f64]) -> f64 {
        (**self).value(x)
    }
    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        (**self).reverse(x, seed, gradient)
    }
}

impl<T: ReverseDerivative + ?Sized> ReverseDerivative for Arc<T> {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn value(&self, x: &[f64]) -> f64 {
        (**self).value(x)
    }
    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        (**self).reverse(x, seed, gradient)
    }
}

impl<T: ReverseDerivative + ?Sized> ReverseDerivative for Box<T> {
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn value(&self, x: &[f64]) -> f64 {
        (**self).value(x)
    }
    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        (**self).reverse(x, seed, gradient)
    }
}

/// An open system: a cospan `ports -> apex <- 0` of finite sets (the `portmap`, at the level
/// of scalar coordinates) decorated with an objective, a vector field or a map on `R^apex`.
///
/// Ports have shapes; port `i` of shape `s` occupies `s.len()` consecutive scalar ports, and
/// the portmap sends each scalar port to a variable of the apex. Variables of the apex that
/// no port reaches are the system's private variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Open<D> {
    apex: usize,
    port_shapes: Vec<Shape>,
    portmap: FinFunction,
    decoration: D,
}

/// An open objective: an objective `f: R^apex -> R` with a portmap.
pub type OpenObjective<F> = Open<F>;
/// An open continuous dynamical system: a vector field on `R^apex` with a portmap.
pub type OpenContinuousSystem<V> = Open<V>;
/// An open discrete dynamical system: a map `R^apex -> R^apex` with a portmap.
pub type OpenDiscreteSystem<M> = Open<M>;

impl<D> Open<D> {
    /// An open system with the given apex size, port shapes and portmap (scalar port ->
    /// apex variable). Fails when the portmap points outside the apex or does not have one
    /// entry per scalar port. The decoration must work on `R^apex`; prefer
    /// [`Open::objective`] and friends, which read the apex from the decoration.
    pub fn new(
        apex: usize,
        port_shapes: Vec<Shape>,
        portmap: Vec<usize>,
        decoration: D,
    ) -> Result<Open<D>, CategoryError> {
        let owner = || "an open system".to_string();
        let shape_len: usize = port_shapes.iter().map(|s| s.len()).sum();
        if portmap.len() != shape_len {
            return Err(CategoryError::PortmapLengthMismatch {
                owner: owner(),
                portmap_len: portmap.len(),
                shape_len,
            });
        }
        if let Some((scalar_port, &value)) = portmap.iter().enumerate().find(|(_, &v)| v >= apex) {
            return Err(CategoryError::PortmapOutOfRange {
                owner: owner(),
                scalar_port,
                value,
                apex,
            });
        }
        Ok(Open {
            apex,
            port_shapes,
            portmap: FinFunction::new_unchecked(portmap, apex),
            decoration,
        })
    }

    /// The number of variables (the apex).
    pub fn apex(&self) -> usize {
        self.apex
    }

    /// The shapes of the ports, in order.
    pub fn port_shapes(&self) -> &[Shape] {
        &self.port_shapes
    }

    /// Scalar port -> apex variable.
    pub fn portmap(&self) -> &FinFunction {
        &self.portmap
    }

    /// The decoration (objective, vector field or map).
    pub fn decoration(&self) -> &D {
        &self.decoration
    }

    /// Consumes the open system, returning its decoration.
    pub fn into_decoration(self) -> D {
        self.decoration
    }

    /// The same cospan with a new decoration (a functor on decorations, such as the GD
    /// functor [`gradient_flow`](super::gradient_flow) or [`euler`](super::euler)). The new
    /// decoration must work on the same `R^apex`.
    pub fn map_decoration<E>(self, transform: impl FnOnce(D) -> E) -> Open<E> {
        Open {
            apex: self.apex,
            port_shapes: self.port_shapes,
            portmap: self.portmap,
            decoration: transform(self.decoration),
        }
    }

    /// The same cospan with a borrowed decoration.
    pub fn as_ref(&self) -> Open<&D> {
        Open {
            apex: self.apex,
            port_shapes: self.port_shapes.clone(),
            portmap: self.portmap.clone(),
            decoration: &self.decoration,
        }
    }
}

impl<F: ReverseDerivative> Open<F> {
    /// An open objective; the apex is `objective.dimension()`.
    ///
    /// ```
    /// use catopt::category::{Open, ReverseDerivative};
    /// use catopt::shape::Shape;
    /// # struct Sum2;
    /// # impl ReverseDerivative for Sum2 {
    /// #     fn dimension(&self) -> usize { 2 }
    /// #     fn value(&self, x: &[f64]) -> f64 { x[0] + x[1] }
    /// #     fn reverse(&self, x: &[f64], s: f64, g: &mut [f64]) -> f64 { g[0] = s; g[1] = s; x[0] + x[1] }
    /// # }
    /// // Expose variable 1 only; variable 0 is private.
    /// let open = Open::objective(vec![Shape::Scalar], vec![1], Sum2).unwrap();
    /// assert_eq!(open.apex(), 2);
    /// ```
    pub fn objective(
        port_shapes: Vec<Shape>,
        portmap: Vec<usize>,
        objective: F,
    ) -> Result<Open<F>, CategoryError> {
        Open::new(objective.dimension(), port_shapes, portmap, objective)
    }
}

/// The composite of open systems along a wiring diagram: the result of [`oapply`].
///
/// The composite apex is the pushout `(disjoint union of the box apexes) / (port ~ junction)`,
/// numbered by first appearance visiting the junction scalars first: so (when no box
/// identifies two of its ports) junction `j`'s scalars are contiguous and in junction order,
/// followed by each box's private variables in box order.
///
/// Box `b` reads its variables through `phi_b = local_to_global(b)` (a slice of ONE
/// finite function from the coproduct of the boxes' apexes to the composite apex).
///
/// **The fixed summation order.** Every evaluation (objective value, gradient, vector field,
/// map increment) visits the boxes in box order `0, 1, ..`, adding each box's contribution
/// in its local coordinate order onto an accumulator that starts at `0.0`. The distributed
/// runtime must use the same order to reproduce the central iterates bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite<D> {
    apex: usize,
    box_types: Vec<D>,
    type_apexes: Vec<usize>,
    box_type_of: Vec<u32>,
    box_offsets: Vec<usize>,
    boxes_to_apex: FinFunction,
    /// Where each junction's scalars start in `junctions_to_apex`; `None` when every
    /// junction is a scalar (junction `j` is scalar `j`), which saves a million offsets.
    junction_offsets: Option<Vec<usize>>,
    junctions_to_apex: FinFunction,
    portmap: FinFunction,
    outer_port_shapes: Vec<Shape>,
    max_box_apex: usize,
}

/// The composite of open objectives: `F(z) = sum_b f_b(phi_b^* z)`.
pub type CompositeObjective<F> = Composite<F>;

/// Composes open systems along a diagram.
///
/// Box `b` of `diagram` is an instance of `box_types[box_type_of[b]]`; a few box types may
/// serve a million boxes. Checks that every box has as many ports as its type, that port
/// shapes agree with the junctions they are wired to, and that type indices exist; errors
/// name the box and junction.
///
/// ```
/// use catopt::category::{oapply, Open, ReverseDerivative, WiringDiagram};
/// use catopt::name::IndexedName;
/// use catopt::shape::Shape;
/// # #[derive(Clone)]
/// # struct Sq(f64);
/// # impl ReverseDerivative for Sq {
/// #     fn dimension(&self) -> usize { 1 }
/// #     fn value(&self, x: &[f64]) -> f64 { (x[0] - self.0).powi(2) }
/// #     fn reverse(&self, x: &[f64], s: f64, g: &mut [f64]) -> f64 { g[0] = s * 2.0 * (x[0] - self.0); self.value(x) }
/// # }
/// let mut d = WiringDiagram::new();
/// let x = d.add_junction(IndexedName::plain("x"), Shape::Scalar);
/// d.add_box(IndexedName::member("f", 0), &[x]).unwrap();
/// d.add_box(IndexedName::member("f", 1), &[x]).unwrap();
/// let types = [Open::objective(vec![Shape::Scalar], vec![0], Sq(1.0)).unwrap()];
/// let composite = oapply(&d, &types, &[0, 0]).unwrap();
/// assert_eq!(composite.apex(), 1);
/// assert_eq!(composite.value(&[3.0]), 8.0);
/// ```
pub fn oapply<D: Clone>(
    diagram: &WiringDiagram,
    box_types: &[Open<D>],
    box_type_of: &[u32],
) -> Result<Composite<D>, CategoryError> {
    let box_count = diagram.box_count();
    if box_type_of.len() != box_count {
        return Err(CategoryError::BoxTypeCountMismatch {
            box_count,
            given: box_type_of.len(),
        });
    }
    diagram.validate()?;
    for (b, &t) in box_type_of.iter().enumerate() {
        let Some(box_type) = box_types.get(t as usize) else {
            return Err(CategoryError::MissingBoxType {
                box_name: diagram.box_name(b),
                box_type: t as usize,
                type_count: box_types.len(),
            });
        };
        let junctions = diagram.box_junctions(b);
        if junctions.len() != box_type.port_shapes.len() {
            return Err(CategoryError::PortCountMismatch {
                box_name: diagram.box_name(b),
                diagram_ports: junctions.len(),
                system_ports: box_type.port_shapes.len(),
            });
        }
        for (port, (&j, &port_shape)) in junctions.iter().zip(&box_type.port_shapes).enumerate() {
            if diagram.junction_shape(j) != port_shape {
                return Err(CategoryError::ShapeMismatch {
                    junction: diagram.junction_name(j),
                    junction_shape: diagram.junction_shape(j),
                    box_name: diagram.box_name(b),
                    port,
                    port_shape,
                });
            }
        }
    }
    let type_apexes: Vec<usize> = box_types.iter().map(|t| t.apex).collect();
    let box_offsets = prefix_sums(box_type_of.iter().map(|&t| type_apexes[t as usize]));
    let total_local = *box_offsets.last().expect("prefix sums are non-empty");

    // The span: scalar ports -> junction scalars, scalar ports -> coproduct of box apexes
    // (the diagram's scalar wiring, `WiringDiagram::scalar_wiring`). Ports are grouped by
    // box, and a box's port scalars are in its type's portmap order. Streamed into the
    // pushout pair by pair: neither leg of the span is stored.
    let junction_offsets = if diagram.all_junctions_scalar() {
        None
    } else {
        Some(prefix_sums(
            (0..diagram.junction_count()).map(|j| diagram.junction_shape(j).len()),
        ))
    };
    let scalars_of = |j: usize| match &junction_offsets {
        None => j..j + 1,
        Some(offsets) => offsets[j]..offsets[j + 1],
    };
    let scalar_junctions = match &junction_offsets {
        None => diagram.junction_count(),
        Some(offsets) => *offsets.last().expect("prefix sums are non-empty"),
    };
    let pairs = box_type_of.iter().enumerate().flat_map(|(b, &t)| {
        let offset = box_offsets[b];
        let portmap = box_types[t as usize].portmap.table();
        diagram
            .box_junctions(b)
            .iter()
            .flat_map(|&j| scalars_of(j))
            .zip(portmap)
            .map(move |(scalar, &local)| (scalar, local + offset))
    });
    let glued = pushout_of_pairs(scalar_junctions, total_local, pairs);
    let portmap: Vec<usize> = diagram
        .outer_port_junction()
        .iter()
        .flat_map(|&j| scalars_of(j))
        .map(|scalar| glued.left.apply(scalar))
        .collect();
    Ok(Composite {
        apex: glued.size(),
        box_types: box_types.iter().map(|t| t.decoration.clone()).collect(),
        max_box_apex: type_apexes.iter().copied().max().unwrap_or(0),
        type_apexes,
        box_type_of: box_type_of.to_vec(),
        box_offsets,
        portmap: FinFunction::new_unchecked(portmap, glued.size()),
        boxes_to_apex: glued.right,
        junction_offsets,
        junctions_to_apex: glued.left,
        outer_port_shapes: diagram.outer_port_shapes(),
    })
}

/// [`oapply`] for a few boxes, each its own type: box `b` is filled by `boxes[b]`.
pub fn oapply_boxes<D: Clone>(
    diagram: &WiringDiagram,
    boxes: &[Open<D>],
) -> Result<Composite<D>, CategoryError> {
    let types: Vec<u32> = (0..boxes.len() as u32).collect();
    oapply(diagram, boxes, &types)
}

impl<D> Composite<D> {
    /// The number of variables of the composite (the pushout apex).
    pub fn apex(&self) -> usize {
        self.apex
    }

    /// The number of boxes.
    pub fn box_count(&self) -> usize {
        self.box_type_of.len()
    }

    /// `phi_b`: box `b`'s local variable `k` is composite variable `local_to_global(b)[k]`.
    pub fn local_to_global(&self, b: usize) -> &[usize] {
        &self.boxes_to_apex.table()[self.box_offsets[b]..self.box_offsets[b + 1]]
    }

    /// The pushout leg from the coproduct of the boxes' apexes (in box order) to the apex.
    pub fn boxes_to_apex(&self) -> &FinFunction {
        &self.boxes_to_apex
    }

    /// `box_offsets()[b]` is where box `b`'s summand starts in [`Composite::boxes_to_apex`]
    /// (length `box_count() + 1`).
    pub fn box_offsets(&self) -> &[usize] {
        &self.box_offsets
    }

    /// The pushout leg from junction scalars (junction by junction) to the apex.
    pub fn junctions_to_apex(&self) -> &FinFunction {
        &self.junctions_to_apex
    }

    /// The composite variables of junction `j`'s scalars (row-major).
    pub fn junction_variables(&self, j: usize) -> &[usize] {
        let scalars = match &self.junction_offsets {
            None => j..j + 1,
            Some(offsets) => offsets[j]..offsets[j + 1],
        };
        &self.junctions_to_apex.table()[scalars]
    }

    /// The composite's portmap: outer scalar port -> composite variable.
    pub fn portmap(&self) -> &FinFunction {
        &self.portmap
    }

    /// The shapes of the composite's ports (the diagram's outer ports).
    pub fn outer_port_shapes(&self) -> &[Shape] {
        &self.outer_port_shapes
    }

    /// Box `b`'s type index.
    pub fn box_type(&self, b: usize) -> usize {
        self.box_type_of[b] as usize
    }

    /// Box type -> decoration.
    pub fn box_types(&self) -> &[D] {
        &self.box_types
    }

    /// Box `b`'s decoration.
    pub fn box_decoration(&self, b: usize) -> &D {
        &self.box_types[self.box_type_of[b] as usize]
    }

    /// The largest box apex (the scratch size an evaluation needs).
    pub fn max_box_apex(&self) -> usize {
        self.max_box_apex
    }

    /// The apex sizes of the box types.
    pub fn type_apexes(&self) -> &[usize] {
        &self.type_apexes
    }

    /// The composite as an open system again (apex, portmap = its outer ports, decoration =
    /// itself), so that composites compose: hierarchy is operad substitution.
    pub fn into_open(self) -> Open<Composite<D>> {
        Open {
            apex: self.apex,
            port_shapes: self.outer_port_shapes.clone(),
            portmap: self.portmap.clone(),
            decoration: self,
        }
    }

    /// Replaces every box type's decoration (e.g. by its gradient flow); the cospans stay.
    pub fn map_decorations<E>(self, transform: impl FnMut(D) -> E) -> Composite<E> {
        Composite {
            apex: self.apex,
            box_types: self.box_types.into_iter().map(transform).collect(),
            type_apexes: self.type_apexes,
            box_type_of: self.box_type_of,
            box_offsets: self.box_offsets,
            boxes_to_apex: self.boxes_to_apex,
            junction_offsets: self.junction_offsets,
            junctions_to_apex: self.junctions_to_apex,
            portmap: self.portmap,
            outer_port_shapes: self.outer_port_shapes,
            max_box_apex: self.max_box_apex,
        }
    }

    /// Runs `body(b, decoration, gathered, scratch)` for every box in box order, with
    /// `gathered = phi_b^* x` and a scratch slice of the box's apex length.
    pub(crate) fn for_each_box(
        &self,
        x: &[f64],
        mut body: impl FnMut(&[usize], &D, &[f64], &mut [f64]),
    ) {
        assert_eq!(
            x.len(),
            self.apex,
            "composite evaluated at a point of the wrong length"
        );
        with_scratch(2 * self.max_box_apex, |scratch| {
            let (local, out) = scratch.split_at_mut(self.max_box_apex);
            for b in 0..self.box_count() {
                let phi = self.local_to_global(b);
                let local = &mut local[..phi.len()];
                for (slot, &i) in local.iter_mut().zip(phi) {
                    *slot = x[i];
                }
                body(phi, self.box_decoration(b), local, &mut out[..phi.len()]);
            }
        });
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Lends a thread-local scratch buffer of at least `len` entries. Nested calls (a composite
/// inside a composite) get a fresh buffer, so the borrow never conflicts; in the steady state
/// of a flat composite no allocation happens.
fn with_scratch<R>(len: usize, body: impl FnOnce(&mut [f64]) -> R) -> R {
    let mut buffer = SCRATCH.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = body(&mut buffer[..len]);
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.len() < buffer.len() {
            *slot = buffer;
        }
    });
    result
}

impl<F: ReverseDerivative> ReverseDerivative for Composite<F> {
    fn dimension(&self) -> usize {
        self.apex
    }

    /// `F(z) = sum_b f_b(phi_b^* z)`, summed in box order from `0.0`.
    fn value(&self, x: &[f64]) -> f64 {
        let mut total = 0.0;
        self.for_each_box(x, |_, f, local, _| total += f.value(local));
        total
    }

    /// `seed * grad F(z) = sum_b phi_b*( seed * grad f_b(phi_b^* z) )`: each box's reverse
    /// derivative, scattered and added onto `gradient` (zeroed first) in box order.
    fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
        assert_eq!(gradient.len(), self.apex, "gradient of the wrong length");
        gradient.fill(0.0);
        let mut total = 0.0;
        self.for_each_box(x, |phi, f, local, local_gradient| {
            total += f.reverse(local, seed, local_gradient);
            for (&i, &g) in phi.iter().zip(local_gradient.iter()) {
                gradient[i] += g;
            }
        });
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::IndexedName;

    /// `sum_i (i+1) * x_i^2`.
    #[derive(Debug, Clone)]
    struct Weighted(usize);
    impl ReverseDerivative for Weighted {
        fn dimension(&self) -> usize {
            self.0
        }
        fn value(&self, x: &[f64]) -> f64 {
            x.iter()
                .enumerate()
                .map(|(i, v)| (i + 1) as f64 * v * v)
                .sum()
        }
        fn reverse(&self, x: &[f64], seed: f64, gradient: &mut [f64]) -> f64 {
            for (i, g) in gradient.iter_mut().enumerate() {
                *g = seed * 2.0 * (i + 1) as f64 * x[i];
            }
            self.value(x)
        }
    }

    fn name(s: &str) -> IndexedName {
        IndexedName::plain(s)
    }

    #[test]
    fn portmap_out_of_range_is_an_error() {
        let err = Open::objective(vec![Shape::Scalar], vec![2], Weighted(2)).unwrap_err();
        assert!(matches!(
            err,
            CategoryError::PortmapOutOfRange {
                value: 2,
                apex: 2,
                ..
            }
        ));
        let err = Open::objective(vec![Shape::Vector(2)], vec![0], Weighted(2)).unwrap_err();
        assert!(matches!(err, CategoryError::PortmapLengthMismatch { .. }));
    }

    #[test]
    fn shape_disagreement_names_junction_and_box() {
        let mut d = WiringDiagram::new();
        let x = d.add_junction(name("x"), Shape::Vector(3));
        d.add_box(name("f"), &[x]).unwrap();
        let f = Open::objective(vec![Shape::Scalar], vec![0], Weighted(1)).unwrap();
        let err = oapply_boxes(&d, &[f]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape disagreement at junction `x` (real[3]): port 0 of box `f` has shape real"
        );
    }

    #[test]
    fn port_count_and_type_index_are_checked() {
        let mut d = WiringDiagram::new();
        let x = d.add_junction(name("x"), Shape::Scalar);
        d.add_box(name("g"), &[x, x]).unwrap();
        let f = Open::objective(vec![Shape::Scalar], vec![0], Weighted(1)).unwrap();
        let err = oapply(&d, std::slice::from_ref(&f), &[0]).unwrap_err();
        assert!(err.to_string().contains("box `g` has 2 ports"));
        let err = oapply(&d, &[f], &[3]).unwrap_err();
        assert!(matches!(
            err,
            CategoryError::MissingBoxType { box_type: 3, .. }
        ));
    }

    #[test]
    fn apex_layout_puts_junctions_first_then_private_variables() {
        // Box type: apex 3, exposes variables 2 and 0; variable 1 is private.
        let t =
            Open::objective(vec![Shape::Scalar, Shape::Scalar], vec![2, 0], Weighted(3)).unwrap();
        let mut d = WiringDiagram::new();
        let p = d.add_junction(name("p"), Shape::Scalar);
        let q = d.add_junction(name("q"), Shape::Scalar);
        let r = d.add_junction(name("r"), Shape::Scalar);
        d.add_box(IndexedName::member("b", 0), &[p, q]).unwrap();
        d.add_box(IndexedName::member("b", 1), &[q, r]).unwrap();
        d.add_outer_port(r).unwrap();
        let c = oapply(&d, &[t], &[0, 0]).unwrap();
        assert_eq!(c.apex(), 5);
        assert_eq!(c.junction_variables(1), &[1]);
        // box 0: local 0 -> q, local 1 -> private #3, local 2 -> p
        assert_eq!(c.local_to_global(0), &[1, 3, 0]);
        assert_eq!(c.local_to_global(1), &[2, 4, 1]);
        assert_eq!(c.portmap().table(), &[2]);
        // Value and gradient: sum over the boxes, scattered.
        let z = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut g = [0.0; 5];
        let v = c.reverse(&z, 1.0, &mut g);
        let expected = (4.0 + 2.0 * 16.0 + 3.0 * 1.0) + (9.0 + 2.0 * 25.0 + 3.0 * 4.0);
        assert_eq!(v, expected);
        assert_eq!(c.value(&z), expected);
        assert_eq!(g, [6.0, 4.0 + 12.0, 6.0, 16.0, 20.0]);
    }
}
