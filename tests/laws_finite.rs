//! Law group 1: finite functions form a category with coproducts.

use catopt::category::FinFunction;
use catopt::laws::strategy::{any_fin_function, composable_triple, fin_function};
use proptest::prelude::*;

proptest! {
    #![proptest_config(catopt::laws::strategy::config("laws_finite", 256))]

    #[test]
    fn identity_is_neutral(f in any_fin_function()) {
        let left = FinFunction::identity(f.source()).compose(&f).unwrap();
        let right = f.compose(&FinFunction::identity(f.target())).unwrap();
        prop_assert_eq!(&left, &f);
        prop_assert_eq!(&right, &f);
    }

    #[test]
    fn composition_is_associative((f, g, h) in composable_triple()) {
        let fg_h = f.compose(&g).unwrap().compose(&h).unwrap();
        let f_gh = f.compose(&g.compose(&h).unwrap()).unwrap();
        prop_assert_eq!(fg_h, f_gh);
    }

    /// The copairing [f, g] is the unique map out of A + B with inj_A ; [f, g] = f and
    /// inj_B ; [f, g] = g: it satisfies both equations, and any map h out of A + B is the
    /// copairing of its restrictions.
    #[test]
    fn coproduct_universal_property(
        (f, g, h) in (0usize..6, 0usize..6, 1usize..6).prop_flat_map(|(a, b, c)| (
            fin_function(a, c), fin_function(b, c), fin_function(a + b, c)
        ))
    ) {
        let (a, b) = (f.source(), g.source());
        let copair = f.copair(&g).unwrap();
        prop_assert_eq!(FinFunction::inject_left(a, b).compose(&copair).unwrap(), f);
        prop_assert_eq!(FinFunction::inject_right(a, b).compose(&copair).unwrap(), g);
        let restricted_left = FinFunction::inject_left(a, b).compose(&h).unwrap();
        let restricted_right = FinFunction::inject_right(a, b).compose(&h).unwrap();
        prop_assert_eq!(restricted_left.copair(&restricted_right).unwrap(), h);
    }

    /// The coproduct of maps is functorial: (f + g) ; (f' + g') = (f ; f') + (g ; g').
    #[test]
    fn coproduct_is_functorial(
        ((f, f2), (g, g2)) in (
            (0usize..6, 1usize..6, 1usize..6).prop_flat_map(|(a, b, c)| (fin_function(a, b), fin_function(b, c))),
            (0usize..6, 1usize..6, 1usize..6).prop_flat_map(|(a, b, c)| (fin_function(a, b), fin_function(b, c))),
        )
    ) {
        let lhs = f.coproduct(&g).compose(&f2.coproduct(&g2)).unwrap();
        let rhs = f.compose(&f2).unwrap().coproduct(&g.compose(&g2).unwrap());
        prop_assert_eq!(lhs, rhs);
    }
}
