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

impl IndexedName {
    /// A name with any number of indices: `f`, `f[3]`, or `f[1, 2, 3]` for a box in nested
    /// loops. The indices before the last are kept in the base (`f[1, 2]`, which no
    /// identifier can spell), so the name stays one base and one index and a loop's members
    /// still form runs.
    ///
    /// ```
    /// use catopt::name::IndexedName;
    /// assert_eq!(IndexedName::with_indices("f", &[1, 2, 3]).to_string(), "f[1, 2, 3]");
    /// assert_eq!(IndexedName::with_indices("f", &[4]), IndexedName::member("f", 4));
    /// assert_eq!(IndexedName::with_indices("f", &[]), IndexedName::plain("f"));
    /// ```
    pub fn with_indices(base: &str, indices: &[i64]) -> IndexedName {
        match indices {
            [] => IndexedName::plain(base),
            [i] => IndexedName::member(base, *i),
            [outer @ .., last] => {
                let outer: Vec<String> = outer.iter().map(i64::to_string).collect();
                IndexedName::member(format!("{base}[{}]", outer.join(", ")), *last)
            }
        }
    }
}

impl fmt::Display for IndexedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            // A base that already carries outer indices (`f[1, 2]`): `f[1, 2, 3]`.
            Some(i) => match self.base.strip_suffix(']') {
                Some(open) => write!(f, "{open}, {i}]"),
                None => write!(f, "{}[{}]", self.base, i),
            },
            None => f.write_str(&self.base),
        }
    }
}

/// A sequence of names, each with a value, stored as runs: consecutive members of one
/// family (`x[0]`, `x[1]`, `x[2]`, ...) with equal values share one record, so the million
/// names a loop makes cost one run. Names are made on demand.
///
/// ```
/// use catopt::name::{IndexedName, NameRuns};
/// let mut names = NameRuns::new();
/// for i in 0..1000 {
///     names.push(IndexedName::member("x", i), 'a');
/// }
/// names.push(IndexedName::plain("b"), 'a');
/// assert_eq!(names.len(), 1001);
/// assert_eq!(names.run_count(), 2);
/// assert_eq!(names.name(7).to_string(), "x[7]");
/// assert_eq!(names.name(1000).to_string(), "b");
/// assert_eq!(*names.value(3), 'a');
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NameRuns<T> {
    runs: Vec<NameRun<T>>,
    len: usize,
}

/// Elements `start..` (up to the next run's start) named `base[first + k]`, or one element
/// named `base` when `first` is `None`.
#[derive(Debug, Clone, PartialEq)]
struct NameRun<T> {
    start: usize,
    base: Arc<str>,
    first: Option<i64>,
    value: T,
}

impl<T> Default for NameRuns<T> {
    fn default() -> NameRuns<T> {
        NameRuns {
            runs: Vec::new(),
            len: 0,
        }
    }
}

impl<T: PartialEq> NameRuns<T> {
    /// The empty sequence.
    pub fn new() -> NameRuns<T> {
        NameRuns::default()
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no name.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of stored runs (the memory cost).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Appends a name with its value; extends the last run when the name is the next
    /// member of its family and the value is the same.
    pub fn push(&mut self, name: IndexedName, value: T) {
        self.push_run(name.base, name.index, value, 1);
    }

    /// Appends `count` names `base[first]`, `base[first + 1]`, ... (or the one name `base`
    /// when `first` is `None` and `count` is 1) with one value.
    fn push_run(&mut self, base: Arc<str>, first: Option<i64>, value: T, count: usize) {
        if count == 0 {
            return;
        }
        debug_assert!(first.is_some() || count == 1);
        if let (Some(last), Some(first)) = (self.runs.last(), first) {
            let extends = last
                .first
                .is_some_and(|f| f.checked_add((self.len - last.start) as i64) == Some(first))
                && (Arc::ptr_eq(&last.base, &base) || last.base == base)
                && last.value == value;
            if extends {
                self.len += count;
                return;
            }
        }
        self.runs.push(NameRun {
            start: self.len,
            base,
            first,
            value,
        });
        self.len += count;
    }

    /// Appends every name of `other`, with its value transformed.
    pub fn extend_mapped<U>(&mut self, other: &NameRuns<U>, mut transform: impl FnMut(&U) -> T) {
        for (k, run) in other.runs.iter().enumerate() {
            let end = other.runs.get(k + 1).map_or(other.len, |next| next.start);
            self.push_run(
                run.base.clone(),
                run.first,
                transform(&run.value),
                end - run.start,
            );
        }
    }

    fn run_of(&self, i: usize) -> &NameRun<T> {
        assert!(i < self.len, "name {i} of {}", self.len);
        &self.runs[self.runs.partition_point(|run| run.start <= i) - 1]
    }

    /// The `i`-th name. Panics when `i >= len()`.
    pub fn name(&self, i: usize) -> IndexedName {
        let run = self.run_of(i);
        IndexedName {
            base: run.base.clone(),
            index: run.first.map(|f| f + (i - run.start) as i64),
        }
    }

    /// The `i`-th value. Panics when `i >= len()`.
    pub fn value(&self, i: usize) -> &T {
        &self.run_of(i).value
    }

    /// Every name with its value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (IndexedName, &T)> + '_ {
        self.runs.iter().enumerate().flat_map(move |(k, run)| {
            let end = self.runs.get(k + 1).map_or(self.len, |next| next.start);
            (0..end - run.start).map(move |offset| {
                let name = IndexedName {
                    base: run.base.clone(),
                    index: run.first.map(|f| f + offset as i64),
                };
                (name, &run.value)
            })
        })
    }

    /// The same names with each run's value transformed: `transform(start, first, value)`
    /// sees where the run starts, its first name and its value. Runs whose new values are
    /// equal merge.
    pub fn map_runs<U: PartialEq>(
        &self,
        mut transform: impl FnMut(usize, &IndexedName, &T) -> U,
    ) -> NameRuns<U> {
        let mut out = NameRuns::new();
        for (k, run) in self.runs.iter().enumerate() {
            let end = self.runs.get(k + 1).map_or(self.len, |next| next.start);
            let first = IndexedName {
                base: run.base.clone(),
                index: run.first,
            };
            let value = transform(run.start, &first, &run.value);
            out.push_run(run.base.clone(), run.first, value, end - run.start);
        }
        out
    }

    /// Every value, in order (one per name).
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.runs.iter().enumerate().flat_map(move |(k, run)| {
            let end = self.runs.get(k + 1).map_or(self.len, |next| next.start);
            std::iter::repeat(&run.value).take(end - run.start)
        })
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
/// assert_eq!(counted(2, "entry"), "2 entries");
/// assert_eq!(counted(2, "index"), "2 indices");
/// ```
pub fn counted(n: usize, noun: &str) -> String {
    let consonant_y = noun
        .strip_suffix('y')
        .and_then(|stem| stem.chars().last())
        .is_some_and(|c| !"aeiou".contains(c));
    if n == 1 {
        format!("1 {noun}")
    } else if noun.is_empty() {
        n.to_string()
    } else if noun == "index" {
        format!("{n} indices")
    } else if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with('x') || noun.ends_with('s') {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// [`counted`] with its verb: `1 junction is`, `2 junctions are` (with an empty noun,
/// `1 is`, `0 are`).
///
/// ```
/// use catopt::name::counted_is;
/// assert_eq!(counted_is(1, "junction"), "1 junction is");
/// assert_eq!(counted_is(0, ""), "0 are");
/// ```
pub fn counted_is(n: usize, noun: &str) -> String {
    let verb = if n == 1 { "is" } else { "are" };
    format!("{} {verb}", counted(n, noun))
}

/// A number for messages and summaries, short: `{}` for ordinary magnitudes, the shortest
/// round-trip scientific form (`5e-324`, `1e300`) for very small or large ones, never `-0`.
///
/// ```
/// use catopt::name::short_number;
/// assert_eq!(short_number(0.01), "0.01");
/// assert_eq!(short_number(5e-324), "5e-324");
/// assert_eq!(short_number(-1e300), "-1e300");
/// assert_eq!(short_number(-0.0), "0");
/// assert_eq!(short_number(3.0), "3");
/// ```
pub fn short_number(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v.is_finite() && (1e-5..1e16).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}
