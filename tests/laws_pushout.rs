//! Law group 2: the union-find pushout commutes, is universal, and is unique up to a
//! unique permutation (compared with an independent, naive construction).

use catopt::category::{pushout, FinFunction, Pushout};
use catopt::laws::strategy::{fin_function, span};
use proptest::prelude::*;

/// An independent pushout: label every element of B + C by its own index, then repeatedly
/// relabel until f(a) and g(a) carry the same label for every a; classes are the labels,
/// renumbered in increasing order of label. Quadratic, obviously correct.
fn naive_pushout(f: &FinFunction, g: &FinFunction) -> Pushout {
    let b = f.target();
    let mut label: Vec<usize> = (0..b + g.target()).collect();
    loop {
        let mut changed = false;
        for a in 0..f.source() {
            let (x, y) = (label[f.apply(a)], label[b + g.apply(a)]);
            if x != y {
                let (keep, drop) = (x.min(y), x.max(y));
                for l in label.iter_mut() {
                    if *l == drop {
                        *l = keep;
                    }
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut distinct: Vec<usize> = label.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let table: Vec<usize> = label
        .iter()
        .map(|l| distinct.binary_search(l).unwrap())
        .collect();
    Pushout {
        left: FinFunction::new(table[..b].to_vec(), distinct.len()).unwrap(),
        right: FinFunction::new(table[b..].to_vec(), distinct.len()).unwrap(),
    }
}

/// A cocone built independently of the pushout: arbitrary maps h: B -> X, k: C -> X, then
/// merged in X until they agree over the span.
fn coequalised_cocone(
    f: &FinFunction,
    g: &FinFunction,
    h: &FinFunction,
    k: &FinFunction,
) -> (FinFunction, FinFunction) {
    let (mut h, mut k) = (h.table().to_vec(), k.table().to_vec());
    loop {
        let mut changed = false;
        for a in 0..f.source() {
            let (x, y) = (h[f.apply(a)], k[g.apply(a)]);
            if x != y {
                for v in h.iter_mut().chain(k.iter_mut()) {
                    if *v == y {
                        *v = x;
                    }
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let target = h.iter().chain(&k).max().map_or(1, |m| m + 1);
    (
        FinFunction::new(h, target).unwrap(),
        FinFunction::new(k, target).unwrap(),
    )
}

proptest! {
    #![proptest_config(catopt::laws::strategy::config("laws_pushout", 256))]

    #[test]
    fn pushout_square_commutes((f, g) in span()) {
        let p = pushout(&f, &g).unwrap();
        prop_assert_eq!(f.compose(&p.left).unwrap(), g.compose(&p.right).unwrap());
        // The legs are jointly surjective.
        prop_assert!(p.left.copair(&p.right).unwrap().is_surjective());
    }

    #[test]
    fn pushout_classes_are_numbered_by_first_appearance((f, g) in span()) {
        let p = pushout(&f, &g).unwrap();
        let mut next = 0;
        for &class in p.left.table().iter().chain(p.right.table()) {
            prop_assert!(class <= next);
            if class == next {
                next += 1;
            }
        }
        prop_assert_eq!(next, p.size());
    }

    /// Any cocone factors through the pushout, uniquely: the factor satisfies both
    /// equations, and (legs being jointly surjective) it is determined by them.
    #[test]
    fn pushout_is_universal(
        ((f, g), (h, k)) in span().prop_flat_map(|(f, g)| {
            let (b, c) = (f.target(), g.target());
            (Just((f, g)), (1usize..6).prop_flat_map(move |x| (fin_function(b, x), fin_function(c, x))))
        })
    ) {
        let p = pushout(&f, &g).unwrap();
        let (h, k) = coequalised_cocone(&f, &g, &h, &k);
        let u = p.factor(&f, &g, &h, &k).unwrap();
        prop_assert_eq!(p.left.compose(&u).unwrap(), h.clone());
        prop_assert_eq!(p.right.compose(&u).unwrap(), k.clone());
        // Uniqueness: any map agreeing with u on the image of the legs equals u.
        prop_assert!(p.left.copair(&p.right).unwrap().is_surjective());
        // Cocones through the pushout itself factor as themselves (identity).
        let id = p.factor(&f, &g, &p.left, &p.right).unwrap();
        prop_assert_eq!(id, FinFunction::identity(p.size()));
    }

    /// A pair that does not commute over the span is refused.
    #[test]
    fn non_cocones_do_not_factor(
        ((f, g), (h, k)) in span().prop_flat_map(|(f, g)| {
            let (b, c) = (f.target(), g.target());
            (Just((f, g)), (1usize..6).prop_flat_map(move |x| (fin_function(b, x), fin_function(c, x))))
        })
    ) {
        let p = pushout(&f, &g).unwrap();
        let commutes = f.compose(&h).unwrap() == g.compose(&k).unwrap();
        prop_assert_eq!(p.factor(&f, &g, &h, &k).is_ok(), commutes);
    }

    /// The union-find pushout and the naive one differ by exactly one permutation sigma
    /// with left ; sigma = left' and right ; sigma = right'.
    #[test]
    fn pushout_is_unique_up_to_permutation((f, g) in span()) {
        let p = pushout(&f, &g).unwrap();
        let q = naive_pushout(&f, &g);
        prop_assert_eq!(p.size(), q.size());
        let sigma = p.factor(&f, &g, &q.left, &q.right).unwrap();
        prop_assert!(sigma.is_injective() && sigma.is_surjective());
        let inverse = q.factor(&f, &g, &p.left, &p.right).unwrap();
        prop_assert_eq!(sigma.compose(&inverse).unwrap(), FinFunction::identity(p.size()));
    }
}
