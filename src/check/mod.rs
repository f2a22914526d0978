//! Check: name resolution, shape inference, data loading; produces the typed [`Program`].

pub mod program;

pub use program::Program;
