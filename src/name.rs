//! Names of junctions, boxes and data items, possibly members of a family (`x[3]`).

use std::fmt;
use std::sync::Arc;

/// A name, possibly a member of a family: `x` or `x[3]`.
///
/// The base is shared (`Arc<str>`), so a family of a million members costs one string.
///
/// ```
/// use catopt::name::IndexedName;
/// assert_eq!(IndexedName::member("x", 3).to_string(), "x[3]");
/// assert_eq!(IndexedName::plain("b").to_string(), "b");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexedName {
    /// The base name (`x`).
    pub base: Arc<str>,
    /// The member index, for a family member.
    pub index: Option<i64>,
}

impl IndexedName {
    /// A plain name.
    pub fn plain(base: impl Into<Arc<str>>) -> IndexedName {
        IndexedName {
            base: base.into(),
            index: None,
        }
    }

    /// A member of a family.
    pub fn member(base: impl Into<Arc<str>>, index: i64) -> IndexedName {
        IndexedName {
            base: base.into(),
            index: Some(index),
        }
    }
}

impl fmt::Display for IndexedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{}]", self.base, i),
            None => f.write_str(&self.base),
        }
    }
}

/// A count with its noun in the right number, for messages: `1 box`, `2 boxes`,
/// `0 junctions`.
///
/// ```
/// use catopt::name::counted;
/// assert_eq!(counted(1, "box"), "1 box");
/// assert_eq!(counted(3, "box"), "3 boxes");
/// assert_eq!(counted(0, "junction"), "0 junctions");
/// ```
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with('x') || noun.ends_with('s') {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}
