//! Structured errors of the category core: malformed finite functions, spans and diagrams.
//!
//! Every message names the culprit (junction, box, port) rather than a bare index where a
//! name is known, and says what would fix it.

use crate::name::IndexedName;
use crate::shape::Shape;

/// What can go wrong when building or composing finite functions, diagrams and open systems.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CategoryError {
    /// A finite function sends an element outside its declared codomain.
    #[error("finite function sends {element} to {value}, outside its codomain of size {target}")]
    FunctionOutOfRange {
        /// The element of the domain.
        element: usize,
        /// Where it was sent.
        value: usize,
        /// The size of the codomain.
        target: usize,
    },
    /// Two finite functions do not compose: the first's codomain is not the second's domain.
    #[error("cannot compose: the first function lands in a set of size {first_target}, the second starts from a set of size {second_source}")]
    NotComposable {
        /// Codomain size of the first function.
        first_target: usize,
        /// Domain size of the second function.
        second_source: usize,
    },
    /// The two legs of a span (or cocone) do not have the shapes they must have.
    #[error("malformed span: {detail}")]
    MalformedSpan {
        /// What disagrees.
        detail: String,
    },
    /// A pair of maps out of a pushout's feet does not form a cocone, so it cannot factor.
    #[error("not a cocone: element {element} of the apex of the span is sent to {via_left} through the left foot but to {via_right} through the right foot")]
    NotACocone {
        /// The element of the span's apex where the two composites disagree.
        element: usize,
        /// Its image through the left foot.
        via_left: usize,
        /// Its image through the right foot.
        via_right: usize,
    },
    /// A box's port is wired to a junction the diagram does not have.
    #[error("port {port} of box `{box_name}` is wired to junction #{junction}, but the diagram has only {junction_count} junctions")]
    MissingJunction {
        /// The box.
        box_name: IndexedName,
        /// The port's position on its box (0-based).
        port: usize,
        /// The junction index it names.
        junction: usize,
        /// How many junctions exist.
        junction_count: usize,
    },
    /// An outer port is wired to a junction the diagram does not have.
    #[error("outer port {outer_port} is wired to junction #{junction}, but the diagram has only {junction_count} junctions")]
    OuterPortMissingJunction {
        /// The outer port (0-based).
        outer_port: usize,
        /// The junction index it names.
        junction: usize,
        /// How many junctions exist.
        junction_count: usize,
    },
    /// A box index that does not exist.
    #[error("the diagram has no box #{box_index} (it has {box_count})")]
    MissingBox {
        /// The requested box.
        box_index: usize,
        /// How many boxes exist.
        box_count: usize,
    },
    /// A diagram given as arrays lists a box's ports apart from each other.
    #[error("ports must be grouped by box: port {port} belongs to box #{box_index} but follows a port of box #{previous_box}")]
    UngroupedPorts {
        /// The offending port.
        port: usize,
        /// Its box.
        box_index: usize,
        /// The box of the port before it.
        previous_box: usize,
    },
    /// A port's shape disagrees with the shape of the junction it is wired to.
    #[error("shape disagreement at junction `{junction}` ({junction_shape}): port {port} of box `{box_name}` has shape {port_shape}")]
    ShapeMismatch {
        /// The junction.
        junction: IndexedName,
        /// Its shape.
        junction_shape: Shape,
        /// The box.
        box_name: IndexedName,
        /// The port's position on its box.
        port: usize,
        /// The port's shape.
        port_shape: Shape,
    },
    /// A box has a different number of ports from the open system that fills it.
    #[error("box `{box_name}` has {diagram_ports} ports in the diagram but its open system has {system_ports}")]
    PortCountMismatch {
        /// The box.
        box_name: IndexedName,
        /// Ports in the diagram.
        diagram_ports: usize,
        /// Ports of the open system.
        system_ports: usize,
    },
    /// An open system's portmap points outside its apex.
    #[error("portmap out of range in {owner}: scalar port {scalar_port} is sent to variable {value}, but the apex has only {apex} variables")]
    PortmapOutOfRange {
        /// Which open system (a box name or a description).
        owner: String,
        /// The scalar port.
        scalar_port: usize,
        /// Where it is sent.
        value: usize,
        /// The apex size.
        apex: usize,
    },
    /// An open system's portmap domain disagrees with the total size of its port shapes.
    #[error("{owner}: the portmap has {portmap_len} scalar ports but the port shapes hold {shape_len} scalars")]
    PortmapLengthMismatch {
        /// Which open system.
        owner: String,
        /// The portmap's domain size.
        portmap_len: usize,
        /// The sum of the port shapes' lengths.
        shape_len: usize,
    },
    /// The decoration's dimension disagrees with the declared apex.
    #[error("{owner}: the apex has {apex} variables but the decoration works on {dimension}")]
    DimensionMismatch {
        /// Which open system.
        owner: String,
        /// Declared apex size.
        apex: usize,
        /// The decoration's dimension.
        dimension: usize,
    },
    /// `box_type_of` names a box type that does not exist, or has the wrong length.
    #[error("box `{box_name}` is an instance of box type #{box_type}, but only {type_count} box types were given")]
    MissingBoxType {
        /// The box.
        box_name: IndexedName,
        /// The type index.
        box_type: usize,
        /// How many types exist.
        type_count: usize,
    },
    /// `box_type_of` does not have one entry per box.
    #[error("expected one box type per box: the diagram has {box_count} boxes but {given} box types were assigned")]
    BoxTypeCountMismatch {
        /// Boxes in the diagram.
        box_count: usize,
        /// Entries given.
        given: usize,
    },
    /// Substituting a diagram into a box whose ports do not match the inner outer ports.
    #[error("cannot substitute into box `{box_name}`: it has {box_ports} ports but the inner diagram has {inner_outer_ports} outer ports")]
    SubstitutionArity {
        /// The box.
        box_name: IndexedName,
        /// Its ports.
        box_ports: usize,
        /// The inner diagram's outer ports.
        inner_outer_ports: usize,
    },
    /// Substituting a diagram whose outer port shape disagrees with the box's junction.
    #[error("cannot substitute into box `{}`: port {} is wired to junction `{}` ({}) but the inner outer port is wired to `{}` ({})", .0.box_name, .0.port, .0.junction, .0.outer_shape, .0.inner_junction, .0.inner_shape)]
    SubstitutionShape(std::boxed::Box<SubstitutionShapeConflict>),
    /// A state or output vector of the wrong length was handed to a system.
    #[error("{what}: expected a vector of length {expected}, got {found}")]
    LengthMismatch {
        /// What was being evaluated.
        what: String,
        /// The expected length.
        expected: usize,
        /// The length given.
        found: usize,
    },
}

/// The details of [`CategoryError::SubstitutionShape`].
#[derive(Debug, Clone, PartialEq)]
pub struct SubstitutionShapeConflict {
    /// The box.
    pub box_name: IndexedName,
    /// The port.
    pub port: usize,
    /// The outer junction.
    pub junction: IndexedName,
    /// Its shape.
    pub outer_shape: Shape,
    /// The inner junction.
    pub inner_junction: IndexedName,
    /// Its shape.
    pub inner_shape: Shape,
}
