//! Finite functions (morphisms of FinSet) as index arrays, their coproducts, and pushouts.
//!
//! A finite set is a natural number `n`, standing for `{0, .., n-1}`. A finite function
//! `f: n -> m` is its `table` (`f(i) = table[i]`) together with its codomain size `target`.

use super::error::CategoryError;

/// A function between finite sets `{0..source} -> {0..target}`, stored as an index array.
///
/// ```
/// use catopt::category::FinFunction;
/// let f = FinFunction::new(vec![1, 0, 1], 2).unwrap();
/// let g = FinFunction::new(vec![2, 0], 3).unwrap();
/// // compose(f, g) is "f then g": i -> g(f(i))
/// assert_eq!(f.compose(&g).unwrap().table(), &[0, 2, 0]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FinFunction {
    table: Vec<usize>,
    target: usize,
}

impl FinFunction {
    /// The function with the given table and codomain size; fails when a value is out of range.
    pub fn new(table: Vec<usize>, target: usize) -> Result<FinFunction, CategoryError> {
        if let Some((element, &value)) = table.iter().enumerate().find(|(_, &v)| v >= target) {
            return Err(CategoryError::FunctionOutOfRange {
                element,
                value,
                target,
            });
        }
        Ok(FinFunction { table, target })
    }

    /// The function with the given table, trusting that every value is below `target`
    /// (checked only in debug builds).
    pub fn new_unchecked(table: Vec<usize>, target: usize) -> FinFunction {
        debug_assert!(table.iter().all(|&v| v < target));
        FinFunction { table, target }
    }

    /// The identity on `{0..n}`.
    pub fn identity(n: usize) -> FinFunction {
        FinFunction {
            table: (0..n).collect(),
            target: n,
        }
    }

    /// The unique function from the empty set into `{0..target}`.
    pub fn initial(target: usize) -> FinFunction {
        FinFunction {
            table: Vec::new(),
            target,
        }
    }

    /// The size of the domain.
    pub fn source(&self) -> usize {
        self.table.len()
    }

    /// The size of the codomain.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The index array: `table()[i]` is the image of `i`.
    pub fn table(&self) -> &[usize] {
        &self.table
    }

    /// Consumes the function, returning its index array.
    pub fn into_table(self) -> Vec<usize> {
        self.table
    }

    /// The image of `i`. Panics when `i` is not in the domain.
    pub fn apply(&self, i: usize) -> usize {
        self.table[i]
    }

    /// Diagrammatic composition "`self` then `next`": `i -> next(self(i))`.
    pub fn compose(&self, next: &FinFunction) -> Result<FinFunction, CategoryError> {
        if self.target != next.source() {
            return Err(CategoryError::NotComposable {
                first_target: self.target,
                second_source: next.source(),
            });
        }
        Ok(FinFunction {
            table: self.table.iter().map(|&i| next.table[i]).collect(),
            target: next.target,
        })
    }

    /// The first coproduct injection `{0..left} -> {0..left+right}`.
    pub fn inject_left(left: usize, right: usize) -> FinFunction {
        FinFunction {
            table: (0..left).collect(),
            target: left + right,
        }
    }

    /// The second coproduct injection `{0..right} -> {0..left+right}` (shift by `left`).
    pub fn inject_right(left: usize, right: usize) -> FinFunction {
        FinFunction {
            table: (left..left + right).collect(),
            target: left + right,
        }
    }

    /// The copairing `[self, other]: source(self) + source(other) -> target`, defined when both
    /// land in the same set.
    pub fn copair(&self, other: &FinFunction) -> Result<FinFunction, CategoryError> {
        if self.target != other.target {
            return Err(CategoryError::MalformedSpan {
                detail: format!(
                    "copairing needs a common codomain, got sizes {} and {}",
                    self.target, other.target
                ),
            });
        }
        let mut table = Vec::with_capacity(self.source() + other.source());
        table.extend_from_slice(&self.table);
        table.extend_from_slice(&other.table);
        Ok(FinFunction {
            table,
            target: self.target,
        })
    }

    /// The coproduct (monoidal product) `self + other: A + C -> B + D`.
    pub fn coproduct(&self, other: &FinFunction) -> FinFunction {
        let mut table = Vec::with_capacity(self.source() + other.source());
        table.extend_from_slice(&self.table);
        table.extend(other.table.iter().map(|&v| v + self.target));
        FinFunction {
            table,
            target: self.target + other.target,
        }
    }

    /// True when no two elements share an image.
    pub fn is_injective(&self) -> bool {
        let mut seen = vec![false; self.target];
        self.table
            .iter()
            .all(|&v| !std::mem::replace(&mut seen[v], true))
    }

    /// True when every element of the codomain is hit.
    pub fn is_surjective(&self) -> bool {
        let mut seen = vec![false; self.target];
        let mut hit = 0;
        for &v in &self.table {
            if !std::mem::replace(&mut seen[v], true) {
                hit += 1;
            }
        }
        hit == self.target
    }
}

/// A pushout of a span `left_foot <- apex -> right_foot`: the object (its size) and the two
/// legs from the feet into it, which make the square commute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushout {
    /// The leg from the span's left foot (the codomain of the first span map).
    pub left: FinFunction,
    /// The leg from the span's right foot (the codomain of the second span map).
    pub right: FinFunction,
}

impl Pushout {
    /// The size of the pushout object.
    pub fn size(&self) -> usize {
        self.left.target()
    }

    /// The universal property: given a cocone `(to_left, to_right)` over the same span
    /// (`to_left ∘ f == to_right ∘ g`), the unique map `u` out of the pushout with
    /// `u ∘ left == to_left` and `u ∘ right == to_right`. Fails with [`CategoryError::NotACocone`]
    /// when the pair does not commute over the span.
    pub fn factor(
        &self,
        span_left: &FinFunction,
        span_right: &FinFunction,
        to_left: &FinFunction,
        to_right: &FinFunction,
    ) -> Result<FinFunction, CategoryError> {
        if to_left.source() != self.left.source()
            || to_right.source() != self.right.source()
            || to_left.target() != to_right.target()
        {
            return Err(CategoryError::MalformedSpan {
                detail: format!(
                    "cocone legs {} -> {} and {} -> {} do not match pushout feet {} and {}",
                    to_left.source(),
                    to_left.target(),
                    to_right.source(),
                    to_right.target(),
                    self.left.source(),
                    self.right.source()
                ),
            });
        }
        for element in 0..span_left.source() {
            let via_left = to_left.apply(span_left.apply(element));
            let via_right = to_right.apply(span_right.apply(element));
            if via_left != via_right {
                return Err(CategoryError::NotACocone {
                    element,
                    via_left,
                    via_right,
                });
            }
        }
        let unset = usize::MAX;
        let mut table = vec![unset; self.size()];
        for (leg, to) in [(&self.left, to_left), (&self.right, to_right)] {
            for (i, &class) in leg.table().iter().enumerate() {
                let value = to.apply(i);
                if table[class] == unset {
                    table[class] = value;
                } else if table[class] != value {
                    // Cannot happen for a cocone over a genuine pushout; report it anyway.
                    return Err(CategoryError::NotACocone {
                        element: class,
                        via_left: table[class],
                        via_right: value,
                    });
                }
            }
        }
        // The legs of a pushout are jointly surjective, so every class was set.
        debug_assert!(table.iter().all(|&v| v != unset));
        FinFunction::new(table, to_left.target())
    }
}

/// The pushout of the span `B <-f- A -g-> C`, computed by one union-find pass over `A`.
///
/// The pushout object is `(B + C) / (f(a) ~ g(a))`. Its classes are numbered by first
/// appearance, visiting the elements of `B` in order and then those of `C` in order. So an
/// element of `B` that is identified with nothing earlier gets the next fresh number, and
/// elements of `C` that are not identified with anything in `B` come after all of `B`'s classes.
///
/// ```
/// use catopt::category::{pushout, FinFunction};
/// // Two ports (A = 2) wired to one junction (B = 1) and to two box variables (C = 3).
/// let f = FinFunction::new(vec![0, 0], 1).unwrap();
/// let g = FinFunction::new(vec![0, 2], 3).unwrap();
/// let p = pushout(&f, &g).unwrap();
/// assert_eq!(p.size(), 2);
/// assert_eq!(p.left.table(), &[0]);
/// assert_eq!(p.right.table(), &[0, 1, 0]);
/// ```
pub fn pushout(f: &FinFunction, g: &FinFunction) -> Result<Pushout, CategoryError> {
    if f.source() != g.source() {
        return Err(CategoryError::MalformedSpan {
            detail: format!(
                "the two maps of a span must share their domain, got sizes {} and {}",
                f.source(),
                g.source()
            ),
        });
    }
    Ok(pushout_of_pairs(
        f.target(),
        g.target(),
        f.table().iter().copied().zip(g.table().iter().copied()),
    ))
}

/// The pushout of a span `B <- A -> C` given element by element: `pairs` yields
/// `(f(a), g(a))` for every `a` of `A`, each `f(a) < left_size` and `g(a) < right_size`
/// (a value out of range panics). Same numbering as [`pushout`]; neither map is stored, so
/// a caller can stream a span it never materialises (`oapply` does, for a million boxes).
pub(crate) fn pushout_of_pairs(
    left_size: usize,
    right_size: usize,
    pairs: impl Iterator<Item = (usize, usize)>,
) -> Pushout {
    let total = left_size + right_size;
    // The union-find forest in 32-bit indices when they suffice: half the memory.
    if total <= u32::MAX as usize {
        pushout_in::<u32>(left_size, total, pairs)
    } else {
        pushout_in::<usize>(left_size, total, pairs)
    }
}

/// An index type for the union-find forest.
trait ForestIndex: Copy + Eq + Ord {
    fn from_usize(i: usize) -> Self;
    fn to_usize(self) -> usize;
}

impl ForestIndex for u32 {
    fn from_usize(i: usize) -> u32 {
        i as u32
    }
    fn to_usize(self) -> usize {
        self as usize
    }
}

impl ForestIndex for usize {
    fn from_usize(i: usize) -> usize {
        i
    }
    fn to_usize(self) -> usize {
        self
    }
}

fn pushout_in<I: ForestIndex>(
    left_size: usize,
    total: usize,
    pairs: impl Iterator<Item = (usize, usize)>,
) -> Pushout {
    let mut parent: Vec<I> = (0..total).map(I::from_usize).collect();
    for (b, c) in pairs {
        assert!(
            b < left_size && left_size + c < total,
            "span map out of range"
        );
        let root_b = find(&mut parent, I::from_usize(b));
        let root_c = find(&mut parent, I::from_usize(left_size + c));
        if root_b != root_c {
            // Keep the smaller index as root. So every root is the least element of its
            // class, which makes numbering by first appearance a single forward pass.
            let (low, high) = if root_b < root_c {
                (root_b, root_c)
            } else {
                (root_c, root_b)
            };
            parent[high.to_usize()] = low;
        }
    }
    // Visiting elements in order, a class first appears at its root (its least element):
    // a root gets the next number, any other element its root's, already numbered.
    let mut left = Vec::with_capacity(left_size);
    let mut right = Vec::with_capacity(total - left_size);
    let mut classes = 0;
    for element in 0..total {
        let root = find(&mut parent, I::from_usize(element)).to_usize();
        let class = if root == element {
            classes += 1;
            classes - 1
        } else if root < left_size {
            left[root]
        } else {
            right[root - left_size]
        };
        if element < left_size {
            left.push(class);
        } else {
            right.push(class);
        }
    }
    Pushout {
        left: FinFunction::new_unchecked(left, classes),
        right: FinFunction::new_unchecked(right, classes),
    }
}

/// Root of `x` with path halving.
fn find<I: ForestIndex>(parent: &mut [I], mut x: I) -> I {
    while parent[x.to_usize()] != x {
        let grandparent = parent[parent[x.to_usize()].to_usize()];
        parent[x.to_usize()] = grandparent;
        x = grandparent;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_out_of_range() {
        assert_eq!(
            FinFunction::new(vec![0, 3], 3),
            Err(CategoryError::FunctionOutOfRange {
                element: 1,
                value: 3,
                target: 3
            })
        );
    }

    #[test]
    fn compose_checks_boundaries() {
        let f = FinFunction::identity(2);
        let g = FinFunction::identity(3);
        assert!(f.compose(&g).is_err());
    }

    #[test]
    fn coproduct_shifts_the_right_summand() {
        let f = FinFunction::new(vec![1], 2).unwrap();
        let g = FinFunction::new(vec![0, 0], 1).unwrap();
        let h = f.coproduct(&g);
        assert_eq!(h.table(), &[1, 2, 2]);
        assert_eq!(h.target(), 3);
    }

    #[test]
    fn pushout_numbers_classes_by_first_appearance() {
        // B = 3, C = 3; identify b2 ~ c0 and b1 ~ c2.
        let f = FinFunction::new(vec![2, 1], 3).unwrap();
        let g = FinFunction::new(vec![0, 2], 3).unwrap();
        let p = pushout(&f, &g).unwrap();
        assert_eq!(p.left.table(), &[0, 1, 2]);
        assert_eq!(p.right.table(), &[2, 3, 1]);
    }

    #[test]
    fn factor_rejects_a_non_cocone() {
        let f = FinFunction::new(vec![0], 1).unwrap();
        let g = FinFunction::new(vec![0], 1).unwrap();
        let p = pushout(&f, &g).unwrap();
        let h = FinFunction::new(vec![0], 2).unwrap();
        let k = FinFunction::new(vec![1], 2).unwrap();
        assert!(matches!(
            p.factor(&f, &g, &h, &k),
            Err(CategoryError::NotACocone { .. })
        ));
    }
}
