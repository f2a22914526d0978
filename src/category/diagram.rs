//! Undirected wiring diagrams (Catlab's schema) as struct-of-arrays.
//!
//! A diagram has boxes, each with an ordered list of ports; junctions, each with a
//! [`Shape`]; and outer ports. Every port is wired to one junction, every outer port to one
//! junction. Ports are stored grouped by box (box `b` owns ports
//! `box_port_offsets[b]..box_port_offsets[b+1]`), so a million-box diagram is a handful of
//! flat arrays. Names are kept only for messages, as runs ([`NameRuns`]): the boxes and
//! junctions a loop makes cost one record each, whatever their number.

use super::error::{CategoryError, SubstitutionShapeConflict};
use super::finite::{pushout, FinFunction};
use crate::name::{IndexedName, NameRuns};
use crate::shape::Shape;
use petgraph::graph::UnGraph;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// An undirected wiring diagram: boxes with ports, junctions, outer ports.
///
/// ```
/// use catopt::category::WiringDiagram;
/// use catopt::name::IndexedName;
/// use catopt::shape::Shape;
/// let mut d = WiringDiagram::new();
/// let b = d.add_junction(IndexedName::plain("b"), Shape::Scalar);
/// let a = d.add_junction(IndexedName::plain("a"), Shape::Scalar);
/// d.add_box(IndexedName::plain("f1"), &[a, b]).unwrap();
/// d.add_outer_port(b).unwrap();
/// assert_eq!(d.box_junctions(0), &[a, b]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct WiringDiagram {
    box_names: NameRuns<()>,
    box_port_offsets: Vec<usize>,
    /// Port -> box, derived from `box_port_offsets` on first use (only reports need it).
    port_box: OnceLock<Vec<usize>>,
    port_junction: Vec<usize>,
    /// Junction names, each with its shape.
    junctions: NameRuns<Shape>,
    outer_port_junction: Vec<usize>,
}

impl PartialEq for WiringDiagram {
    /// Equal boxes, ports, junctions and outer ports (the derived port -> box cache aside).
    fn eq(&self, other: &WiringDiagram) -> bool {
        self.box_names == other.box_names
            && self.box_port_offsets == other.box_port_offsets
            && self.port_junction == other.port_junction
            && self.junctions == other.junctions
            && self.outer_port_junction == other.outer_port_junction
    }
}

/// The diagram at the level of scalar coordinates: each junction of shape `s` stands for
/// `s.len()` consecutive scalar junctions, each port for as many scalar ports. This is the
/// cospan `port scalars -> junction scalars <- outer port scalars` that the pushout in
/// `oapply` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarWiring {
    /// `junction_offsets[j]..junction_offsets[j+1]` are junction `j`'s scalars.
    pub junction_offsets: Vec<usize>,
    /// `port_offsets[p]..port_offsets[p+1]` are port `p`'s scalars.
    pub port_offsets: Vec<usize>,
    /// Scalar port -> scalar junction.
    pub ports_to_junctions: FinFunction,
    /// Scalar outer port -> scalar junction.
    pub outer_to_junctions: FinFunction,
}

/// The result of substituting a diagram into a box, with the maps that say where things went.
#[derive(Debug, Clone, PartialEq)]
pub struct Substitution {
    /// The flattened diagram.
    pub diagram: WiringDiagram,
    /// Outer diagram's junctions -> flattened junctions (injective unless the inner diagram
    /// exposes one junction on two outer ports, which merges the box's junctions).
    pub outer_junctions: FinFunction,
    /// Inner diagram's junctions -> flattened junctions.
    pub inner_junctions: FinFunction,
    /// The inner boxes occupy `first_inner_box..first_inner_box + inner.box_count()` in the
    /// flattened diagram, in place of the substituted box; outer boxes after it shift by
    /// `inner.box_count() - 1`.
    pub first_inner_box: usize,
}

/// A node of the petgraph view of a diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiagramNode {
    /// A box, by index.
    Box(usize),
    /// A junction, by index.
    Junction(usize),
    /// An outer port, by index.
    OuterPort(usize),
}

impl WiringDiagram {
    /// The empty diagram.
    pub fn new() -> WiringDiagram {
        WiringDiagram {
            box_port_offsets: vec![0],
            ..WiringDiagram::default()
        }
    }

    /// Builds a diagram from flat arrays, checking them: ports grouped by box (`port_box`
    /// non-decreasing), every port and outer port wired to an existing junction.
    pub fn from_parts(
        box_names: Vec<IndexedName>,
        port_box: Vec<usize>,
        port_junction: Vec<usize>,
        junction_names: Vec<IndexedName>,
        junction_shapes: Vec<Shape>,
        outer_port_junction: Vec<usize>,
    ) -> Result<WiringDiagram, CategoryError> {
        if port_box.len() != port_junction.len() {
            return Err(CategoryError::MalformedSpan {
                detail: format!(
                    "{} ports have a box but {} have a junction",
                    port_box.len(),
                    port_junction.len()
                ),
            });
        }
        if junction_names.len() != junction_shapes.len() {
            return Err(CategoryError::MalformedSpan {
                detail: format!(
                    "{} junction names but {} junction shapes",
                    junction_names.len(),
                    junction_shapes.len()
                ),
            });
        }
        let box_count = box_names.len();
        let mut box_port_offsets = vec![0; box_count + 1];
        for (port, &b) in port_box.iter().enumerate() {
            if b >= box_count {
                return Err(CategoryError::MissingBox {
                    box_index: b,
                    box_count,
                });
            }
            if port > 0 && port_box[port - 1] > b {
                return Err(CategoryError::UngroupedPorts {
                    port,
                    box_index: b,
                    previous_box: port_box[port - 1],
                });
            }
            box_port_offsets[b + 1] += 1;
        }
        for b in 0..box_count {
            box_port_offsets[b + 1] += box_port_offsets[b];
        }
        let mut names = NameRuns::new();
        for name in box_names {
            names.push(name, ());
        }
        let mut junctions = NameRuns::new();
        for (name, shape) in junction_names.into_iter().zip(junction_shapes) {
            junctions.push(name, shape);
        }
        let diagram = WiringDiagram {
            box_names: names,
            box_port_offsets,
            port_box: OnceLock::from(port_box),
            port_junction,
            junctions,
            outer_port_junction,
        };
        diagram.validate()?;
        Ok(diagram)
    }

    /// Checks that every port and outer port is wired to an existing junction.
    pub fn validate(&self) -> Result<(), CategoryError> {
        let junction_count = self.junction_count();
        for (port, &junction) in self.port_junction.iter().enumerate() {
            if junction >= junction_count {
                let b = self.box_of_port(port);
                return Err(CategoryError::MissingJunction {
                    box_name: self.box_name(b),
                    port: port - self.box_port_offsets[b],
                    junction,
                    junction_count,
                });
            }
        }
        for (outer_port, &junction) in self.outer_port_junction.iter().enumerate() {
            if junction >= junction_count {
                return Err(CategoryError::OuterPortMissingJunction {
                    outer_port,
                    junction,
                    junction_count,
                });
            }
        }
        Ok(())
    }

    /// Adds a junction of the given shape; returns its index.
    pub fn add_junction(&mut self, name: IndexedName, shape: Shape) -> usize {
        self.junctions.push(name, shape);
        self.junctions.len() - 1
    }

    /// Adds a box whose ports, in order, are wired to the given junctions; returns its index.
    pub fn add_box(
        &mut self,
        name: IndexedName,
        junctions: &[usize],
    ) -> Result<usize, CategoryError> {
        let junction_count = self.junction_count();
        if let Some((port, &junction)) = junctions
            .iter()
            .enumerate()
            .find(|(_, &j)| j >= junction_count)
        {
            return Err(CategoryError::MissingJunction {
                box_name: name,
                port,
                junction,
                junction_count,
            });
        }
        let b = self.box_names.len();
        self.box_names.push(name, ());
        self.port_junction.extend_from_slice(junctions);
        if let Some(port_box) = self.port_box.get_mut() {
            port_box.extend(std::iter::repeat(b).take(junctions.len()));
        }
        self.box_port_offsets.push(self.port_junction.len());
        Ok(b)
    }

    /// Releases the spare capacity of the diagram's arrays (once it is built box by box).
    pub fn shrink_to_fit(&mut self) {
        self.box_port_offsets.shrink_to_fit();
        self.port_junction.shrink_to_fit();
        self.outer_port_junction.shrink_to_fit();
    }

    /// Adds an outer port wired to the given junction; returns its index.
    pub fn add_outer_port(&mut self, junction: usize) -> Result<usize, CategoryError> {
        if junction >= self.junction_count() {
            return Err(CategoryError::OuterPortMissingJunction {
                outer_port: self.outer_port_junction.len(),
                junction,
                junction_count: self.junction_count(),
            });
        }
        self.outer_port_junction.push(junction);
        Ok(self.outer_port_junction.len() - 1)
    }

    /// The identity diagram on the given port shapes: one box named `box_name` whose port `i`
    /// is wired to its own junction `p{i}`, exposed as outer port `i`.
    pub fn identity(box_name: IndexedName, port_shapes: &[Shape]) -> WiringDiagram {
        let mut d = WiringDiagram::new();
        let base: Arc<str> = Arc::from("p");
        let junctions: Vec<usize> = port_shapes
            .iter()
            .enumerate()
            .map(|(i, &s)| d.add_junction(IndexedName::member(base.clone(), i as i64), s))
            .collect();
        d.add_box(box_name, &junctions)
            .expect("junctions were just added");
        for j in junctions {
            d.add_outer_port(j).expect("junction was just added");
        }
        d
    }

    /// The monoidal product: `self` and `other` side by side, sharing nothing. Boxes,
    /// junctions and outer ports of `other` come after those of `self`.
    pub fn parallel(&self, other: &WiringDiagram) -> WiringDiagram {
        let junctions = self.junction_count();
        let ports = self.port_count();
        let mut d = self.clone();
        d.port_box = OnceLock::new();
        d.box_names.extend_mapped(&other.box_names, |_| ());
        d.box_port_offsets
            .extend(other.box_port_offsets[1..].iter().map(|&o| o + ports));
        d.port_junction
            .extend(other.port_junction.iter().map(|&j| j + junctions));
        d.junctions.extend_mapped(&other.junctions, |&shape| shape);
        d.outer_port_junction
            .extend(other.outer_port_junction.iter().map(|&j| j + junctions));
        d
    }

    /// Number of boxes.
    pub fn box_count(&self) -> usize {
        self.box_names.len()
    }

    /// Number of junctions.
    pub fn junction_count(&self) -> usize {
        self.junctions.len()
    }

    /// Number of ports (over all boxes).
    pub fn port_count(&self) -> usize {
        self.port_junction.len()
    }

    /// Number of outer ports.
    pub fn outer_port_count(&self) -> usize {
        self.outer_port_junction.len()
    }

    /// The name of box `b` (made on demand: names are stored as runs).
    pub fn box_name(&self, b: usize) -> IndexedName {
        self.box_names.name(b)
    }

    /// All box names, in box order.
    pub fn box_names(&self) -> impl Iterator<Item = IndexedName> + '_ {
        self.box_names.iter().map(|(name, _)| name)
    }

    /// The name of junction `j` (made on demand: names are stored as runs).
    pub fn junction_name(&self, j: usize) -> IndexedName {
        self.junctions.name(j)
    }

    /// The shape of junction `j`.
    pub fn junction_shape(&self, j: usize) -> Shape {
        *self.junctions.value(j)
    }

    /// All junction shapes, in junction order.
    pub fn junction_shapes(&self) -> Vec<Shape> {
        self.junctions.values().copied().collect()
    }

    /// True when every junction is a scalar (`real`).
    pub fn all_junctions_scalar(&self) -> bool {
        self.junctions.values().all(Shape::is_scalar)
    }

    /// The box that owns `port`.
    fn box_of_port(&self, port: usize) -> usize {
        self.box_port_offsets
            .partition_point(|&offset| offset <= port)
            - 1
    }

    /// The ports of box `b` (a range of port indices).
    pub fn box_ports(&self, b: usize) -> Range<usize> {
        self.box_port_offsets[b]..self.box_port_offsets[b + 1]
    }

    /// The junctions that box `b`'s ports are wired to, in port order.
    pub fn box_junctions(&self, b: usize) -> &[usize] {
        &self.port_junction[self.box_ports(b)]
    }

    /// Port -> box (computed from the port ranges on first use, then kept).
    pub fn port_box(&self) -> &[usize] {
        self.port_box.get_or_init(|| {
            let mut port_box = Vec::with_capacity(self.port_count());
            for b in 0..self.box_count() {
                port_box.extend(std::iter::repeat(b).take(self.box_ports(b).len()));
            }
            port_box
        })
    }

    /// Port -> junction.
    pub fn port_junction(&self) -> &[usize] {
        &self.port_junction
    }

    /// Outer port -> junction.
    pub fn outer_port_junction(&self) -> &[usize] {
        &self.outer_port_junction
    }

    /// The shapes of the outer ports (those of their junctions).
    pub fn outer_port_shapes(&self) -> Vec<Shape> {
        self.outer_port_junction
            .iter()
            .map(|&j| self.junction_shape(j))
            .collect()
    }

    /// The scalar-level cospan: junction scalars are numbered junction by junction
    /// (row-major within a junction), and so are port scalars.
    pub fn scalar_wiring(&self) -> ScalarWiring {
        let junction_offsets = prefix_sums(self.junctions.values().map(|s| s.len()));
        let scalar_junctions = *junction_offsets.last().expect("prefix sums are non-empty");
        let port_offsets = prefix_sums(
            self.port_junction
                .iter()
                .map(|&j| junction_offsets[j + 1] - junction_offsets[j]),
        );
        let expand = |junctions: &[usize]| {
            let mut table = Vec::new();
            for &j in junctions {
                table.extend(junction_offsets[j]..junction_offsets[j + 1]);
            }
            FinFunction::new_unchecked(table, scalar_junctions)
        };
        ScalarWiring {
            ports_to_junctions: expand(&self.port_junction),
            outer_to_junctions: expand(&self.outer_port_junction),
            junction_offsets,
            port_offsets,
        }
    }

    /// Substitutes `inner` into box `box_index` (operad composition). See
    /// [`WiringDiagram::substitute_with_maps`].
    pub fn substitute(
        &self,
        box_index: usize,
        inner: &WiringDiagram,
    ) -> Result<WiringDiagram, CategoryError> {
        Ok(self.substitute_with_maps(box_index, inner)?.diagram)
    }

    /// Substitutes `inner` into box `box_index`: inner's outer ports are identified, in order,
    /// with the box's ports (shapes must agree); inner's other junctions become new junctions
    /// named `boxlabel.junction`, numbered after the outer junctions; inner's boxes, named
    /// `boxlabel.box`, take the box's place in the box order. The identification is a pushout
    /// of finite sets, so an inner junction exposed twice merges the two outer junctions.
    pub fn substitute_with_maps(
        &self,
        box_index: usize,
        inner: &WiringDiagram,
    ) -> Result<Substitution, CategoryError> {
        if box_index >= self.box_count() {
            return Err(CategoryError::MissingBox {
                box_index,
                box_count: self.box_count(),
            });
        }
        let label = &self.box_name(box_index);
        let box_junctions = self.box_junctions(box_index);
        if box_junctions.len() != inner.outer_port_count() {
            return Err(CategoryError::SubstitutionArity {
                box_name: label.clone(),
                box_ports: box_junctions.len(),
                inner_outer_ports: inner.outer_port_count(),
            });
        }
        for (port, (&outer_j, &inner_j)) in box_junctions
            .iter()
            .zip(&inner.outer_port_junction)
            .enumerate()
        {
            if self.junction_shape(outer_j) != inner.junction_shape(inner_j) {
                return Err(CategoryError::SubstitutionShape(std::boxed::Box::new(
                    SubstitutionShapeConflict {
                        box_name: label.clone(),
                        port,
                        junction: self.junction_name(outer_j),
                        outer_shape: self.junction_shape(outer_j),
                        inner_junction: inner.junction_name(inner_j),
                        inner_shape: inner.junction_shape(inner_j),
                    },
                )));
            }
        }
        // Pushout of  outer junctions <- box ports -> inner junctions.
        let to_outer = FinFunction::new_unchecked(box_junctions.to_vec(), self.junction_count());
        let to_inner =
            FinFunction::new_unchecked(inner.outer_port_junction.clone(), inner.junction_count());
        let glued = pushout(&to_outer, &to_inner)?;
        let junction_count = glued.size();

        // Junction names and shapes: each class takes the first member's name.
        let mut junction_names: Vec<Option<IndexedName>> = vec![None; junction_count];
        let mut junction_shapes = vec![Shape::Scalar; junction_count];
        for (j, &class) in glued.left.table().iter().enumerate() {
            if junction_names[class].is_none() {
                junction_names[class] = Some(self.junction_name(j));
                junction_shapes[class] = self.junction_shape(j);
            }
        }
        let mut prefixed = Prefixer::new(label);
        for (j, &class) in glued.right.table().iter().enumerate() {
            if junction_names[class].is_none() {
                junction_names[class] = Some(prefixed.name(&inner.junction_name(j)));
                junction_shapes[class] = inner.junction_shape(j);
            }
        }
        let junction_names: Vec<IndexedName> = junction_names
            .into_iter()
            .map(|n| n.expect("pushout legs are jointly surjective"))
            .collect();

        // Boxes: outer boxes before, inner boxes, outer boxes after.
        let mut box_names = Vec::with_capacity(self.box_count() + inner.box_count());
        let mut port_box = Vec::new();
        let mut port_junction = Vec::new();
        let outer_box = |b: usize,
                         box_names: &mut Vec<IndexedName>,
                         port_box: &mut Vec<usize>,
                         port_junction: &mut Vec<usize>| {
            let new_b = box_names.len();
            box_names.push(self.box_name(b));
            for &j in self.box_junctions(b) {
                port_box.push(new_b);
                port_junction.push(glued.left.apply(j));
            }
        };
        for b in 0..box_index {
            outer_box(b, &mut box_names, &mut port_box, &mut port_junction);
        }
        let first_inner_box = box_names.len();
        for b in 0..inner.box_count() {
            let new_b = box_names.len();
            box_names.push(prefixed.name(&inner.box_name(b)));
            for &j in inner.box_junctions(b) {
                port_box.push(new_b);
                port_junction.push(glued.right.apply(j));
            }
        }
        for b in box_index + 1..self.box_count() {
            outer_box(b, &mut box_names, &mut port_box, &mut port_junction);
        }
        let outer_port_junction = self
            .outer_port_junction
            .iter()
            .map(|&j| glued.left.apply(j))
            .collect();
        let diagram = WiringDiagram::from_parts(
            box_names,
            port_box,
            port_junction,
            junction_names,
            junction_shapes,
            outer_port_junction,
        )?;
        Ok(Substitution {
            diagram,
            outer_junctions: glued.left,
            inner_junctions: glued.right,
            first_inner_box,
        })
    }

    /// A petgraph view for drawing and analysis (connected components, degrees): one node
    /// per box, junction and outer port; one edge per port (box - junction) and per outer
    /// port (outer port - junction), weighted by the port's index. Not used for composition.
    pub fn to_graph(&self) -> UnGraph<DiagramNode, usize> {
        let mut graph = UnGraph::with_capacity(
            self.box_count() + self.junction_count() + self.outer_port_count(),
            self.port_count() + self.outer_port_count(),
        );
        let boxes: Vec<_> = (0..self.box_count())
            .map(|b| graph.add_node(DiagramNode::Box(b)))
            .collect();
        let junctions: Vec<_> = (0..self.junction_count())
            .map(|j| graph.add_node(DiagramNode::Junction(j)))
            .collect();
        for (b, &node) in boxes.iter().enumerate() {
            for port in self.box_ports(b) {
                graph.add_edge(node, junctions[self.port_junction[port]], port);
            }
        }
        for (outer, &j) in self.outer_port_junction.iter().enumerate() {
            let node = graph.add_node(DiagramNode::OuterPort(outer));
            graph.add_edge(node, junctions[j], outer);
        }
        graph
    }
}

/// Makes `label.name` names, sharing one `Arc<str>` base per distinct inner base.
struct Prefixer {
    label: String,
    bases: HashMap<Arc<str>, Arc<str>>,
}

impl Prefixer {
    fn new(label: &IndexedName) -> Prefixer {
        Prefixer {
            label: label.to_string(),
            bases: HashMap::new(),
        }
    }

    fn name(&mut self, inner: &IndexedName) -> IndexedName {
        let label = &self.label;
        let base = self
            .bases
            .entry(inner.base.clone())
            .or_insert_with(|| Arc::from(format!("{label}.{}", inner.base)))
            .clone();
        IndexedName {
            base,
            index: inner.index,
        }
    }
}

/// `[0, a0, a0+a1, ...]`.
pub(crate) fn prefix_sums(sizes: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut offsets = vec![0];
    let mut total = 0;
    for s in sizes {
        total += s;
        offsets.push(total);
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> IndexedName {
        IndexedName::plain(s)
    }

    #[test]
    fn builder_rejects_a_missing_junction_by_name() {
        let mut d = WiringDiagram::new();
        d.add_junction(name("x"), Shape::Scalar);
        let err = d.add_box(name("f"), &[0, 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "port 1 of box `f` is wired to junction #4, but the diagram has only 1 junctions"
        );
        assert!(d.add_outer_port(2).is_err());
    }

    #[test]
    fn from_parts_checks_grouping_and_junctions() {
        let err = WiringDiagram::from_parts(
            vec![name("f"), name("g")],
            vec![1, 0],
            vec![0, 0],
            vec![name("x")],
            vec![Shape::Scalar],
            vec![],
        )
        .unwrap_err();
        assert!(matches!(err, CategoryError::UngroupedPorts { port: 1, .. }));
        let err = WiringDiagram::from_parts(
            vec![name("f")],
            vec![0],
            vec![3],
            vec![name("x")],
            vec![Shape::Scalar],
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().contains("box `f`"));
    }

    #[test]
    fn scalar_wiring_expands_shapes() {
        let mut d = WiringDiagram::new();
        let x = d.add_junction(name("x"), Shape::Vector(2));
        let y = d.add_junction(name("y"), Shape::Scalar);
        d.add_box(name("f"), &[y, x]).unwrap();
        d.add_outer_port(x).unwrap();
        let w = d.scalar_wiring();
        assert_eq!(w.junction_offsets, vec![0, 2, 3]);
        assert_eq!(w.ports_to_junctions.table(), &[2, 0, 1]);
        assert_eq!(w.outer_to_junctions.table(), &[0, 1]);
    }

    #[test]
    fn substitution_names_new_junctions_after_the_box() {
        let mut outer = WiringDiagram::new();
        let a = outer.add_junction(name("a"), Shape::Scalar);
        let b = outer.add_junction(name("b"), Shape::Scalar);
        outer.add_box(name("first"), &[a]).unwrap();
        outer.add_box(name("g"), &[a, b]).unwrap();
        outer.add_box(name("last"), &[b]).unwrap();
        let mut inner = WiringDiagram::new();
        let u = inner.add_junction(name("u"), Shape::Scalar);
        let m = inner.add_junction(name("m"), Shape::Scalar);
        let v = inner.add_junction(name("v"), Shape::Scalar);
        inner.add_box(name("h1"), &[u, m]).unwrap();
        inner.add_box(name("h2"), &[m, v]).unwrap();
        inner.add_outer_port(u).unwrap();
        inner.add_outer_port(v).unwrap();
        let s = outer.substitute_with_maps(1, &inner).unwrap();
        let flat = &s.diagram;
        let names: Vec<String> = flat.box_names().map(|n| n.to_string()).collect();
        assert_eq!(names, ["first", "g.h1", "g.h2", "last"]);
        assert_eq!(flat.junction_count(), 3);
        assert_eq!(flat.junction_name(2).to_string(), "g.m");
        assert_eq!(flat.box_junctions(1), &[0, 2]);
        assert_eq!(flat.box_junctions(2), &[2, 1]);
        assert_eq!(s.first_inner_box, 1);
        // Arity and shape errors name the box.
        let err = outer.substitute(0, &inner).unwrap_err();
        assert!(err.to_string().contains("box `first`"));
    }

    #[test]
    fn graph_view_has_one_edge_per_port() {
        let mut d = WiringDiagram::new();
        let x = d.add_junction(name("x"), Shape::Scalar);
        d.add_box(name("f"), &[x, x]).unwrap();
        d.add_outer_port(x).unwrap();
        let g = d.to_graph();
        assert_eq!(g.node_count(), 3);
        assert_eq!(g.edge_count(), 3);
    }
}
