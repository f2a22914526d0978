//! The step-size schedules as the methods read them: every schedule with every method that
//! takes one, against the reference implementations of [`super::testing`] (which compute
//! `eta_k` from docs/language.md's table themselves).

use super::testing::{
    assert_follows, catopt_run, convex_quadratic, rosenbrock_chain, Reference, RANDOM_START,
    ROSENBROCK_LR,
};
use crate::method_spec::Schedule;

/// Every schedule, with periods shorter than the runs so that restarts and decays happen.
const SCHEDULES: [Schedule; 5] = [
    Schedule::Constant,
    Schedule::Log { period: 30 },
    Schedule::Cosine { period: 40 },
    Schedule::InvSqrt,
    Schedule::Step {
        every: 25,
        factor: 0.5,
    },
];

/// A method as catopt is given it, and as the reference runs it.
type Case = (&'static str, &'static [(&'static str, f64)], Reference);

const LR: f64 = 0.05;

const METHODS: [Case; 5] = [
    ("gd", &[("lr", LR)], Reference::Gd { lr: LR }),
    (
        "momentum",
        &[("lr", LR), ("beta", 0.5)],
        Reference::Momentum { lr: LR, beta: 0.5 },
    ),
    (
        "nesterov",
        &[("lr", LR), ("beta", 0.9)],
        Reference::Nesterov { lr: LR, beta: 0.9 },
    ),
    (
        "agd",
        &[("lr", LR)],
        Reference::Agd {
            lr: LR,
            mu: 0.0,
            gamma0: 1.0 / LR,
        },
    ),
    (
        "agd",
        &[("lr", LR), ("mu", 0.1)],
        Reference::Agd {
            lr: LR,
            mu: 0.1,
            gamma0: 1.0 / LR,
        },
    ),
];

#[test]
fn every_schedule_gives_the_reference_iterates_on_a_quadratic() {
    let problem = convex_quadratic(11, 10, 16);
    for schedule in SCHEDULES {
        for (name, params, reference) in METHODS {
            let ours = catopt_run(&problem, name, params, schedule, 100);
            let expected = reference.run(&problem, schedule, 100);
            assert_follows(
                &ours,
                &expected,
                &format!("{name} {params:?} with {}", schedule.describe()),
            );
        }
    }
}

#[test]
fn every_schedule_gives_the_reference_iterates_on_the_rosenbrock_chain() {
    let problem = rosenbrock_chain(25, RANDOM_START);
    let lr = ROSENBROCK_LR;
    let methods = [
        ("gd", vec![("lr", lr)], Reference::Gd { lr }),
        (
            "nesterov",
            vec![("lr", lr), ("beta", 0.9)],
            Reference::Nesterov { lr, beta: 0.9 },
        ),
        (
            "agd",
            vec![("lr", lr), ("mu", 0.2)],
            Reference::Agd {
                lr,
                mu: 0.2,
                gamma0: 1.0 / lr,
            },
        ),
    ];
    for schedule in SCHEDULES {
        for (name, params, reference) in &methods {
            let ours = catopt_run(&problem, name, params, schedule, 100);
            let expected = reference.run(&problem, schedule, 100);
            assert_follows(
                &ours,
                &expected,
                &format!("{name} with {}", schedule.describe()),
            );
        }
    }
}
