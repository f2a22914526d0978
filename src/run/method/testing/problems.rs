//! Test problems with their objective and gradient also written out by hand (loops over
//! the boxes, from the problem's own numbers and nothing else of catopt): the references
//! that catopt's lowered, planned and differentiated runs are held to.

use super::lower;
use crate::laws::PointGenerator;
use crate::lower::Problem;
use std::collections::HashMap;

/// One box of a test composite, on coordinates of the composite's state.
#[derive(Clone, Debug)]
enum Term {
    /// `c[0] a^2 + c[1] b^2 + c[2] a b + c[3] a + c[4] b` (`a` and `b` may be one
    /// coordinate).
    Quadratic([f64; 5], usize, usize),
    /// `p (a - c)^2 + q (b - d)^2 + r a b`, from `[p, q, r, c, d]`.
    Centered([f64; 5], usize, usize),
    /// `100 (b - a^2)^2 + (1 - a)^2`.
    Rosen(usize, usize),
    /// A private `w`: `1.5 w^2 + (w - a)^2 + 0.2 w`.
    Private { w: usize, a: usize },
}

/// A lowered composite and its objective written out by hand.
pub(crate) struct TestProblem {
    /// The lowered problem (its solve block sets the initial point).
    pub problem: Problem,
    terms: Vec<Term>,
    /// Per coordinate: its variable's name (`x[3]`, `p2.w`).
    pub names: Vec<String>,
}

impl TestProblem {
    /// Lowers `text`; `terms` builds the boxes from the coordinates of the variables by
    /// name.
    fn new(text: &str, terms: impl FnOnce(&HashMap<String, usize>) -> Vec<Term>) -> TestProblem {
        let problem = lower(text);
        let mut names = vec![String::new(); problem.variable_count()];
        let mut coordinate = HashMap::new();
        for variable in problem.all_variables() {
            let name = variable.name().to_string();
            let coordinates = variable.coordinates();
            assert_eq!(coordinates.len(), 1, "scalar variables");
            names[coordinates[0]] = name.clone();
            coordinate.insert(name, coordinates[0]);
        }
        let terms = terms(&coordinate);
        TestProblem {
            problem,
            terms,
            names,
        }
    }

    /// The initial point (as catopt lowers it).
    pub fn initial_values(&self) -> &[f64] {
        &self.problem.initial_values
    }

    /// The objective at `x`, box after box.
    pub fn value(&self, x: &[f64]) -> f64 {
        let mut f = 0.0;
        for term in &self.terms {
            f += match *term {
                Term::Quadratic(c, a, b) => {
                    let (a, b) = (x[a], x[b]);
                    c[0] * a * a + c[1] * b * b + c[2] * a * b + c[3] * a + c[4] * b
                }
                Term::Centered([p, q, r, c, d], a, b) => {
                    let (a, b) = (x[a], x[b]);
                    p * (a - c) * (a - c) + q * (b - d) * (b - d) + r * a * b
                }
                Term::Rosen(a, b) => {
                    let (a, b) = (x[a], x[b]);
                    100.0 * (b - a * a) * (b - a * a) + (1.0 - a) * (1.0 - a)
                }
                Term::Private { w, a } => {
                    let (w, a) = (x[w], x[a]);
                    1.5 * w * w + (w - a) * (w - a) + 0.2 * w
                }
            };
        }
        f
    }

    /// The gradient at `x`, derived by hand.
    pub fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; x.len()];
        for term in &self.terms {
            match *term {
                Term::Quadratic(c, i, j) => {
                    let (a, b) = (x[i], x[j]);
                    g[i] += 2.0 * c[0] * a + c[2] * b + c[3];
                    g[j] += 2.0 * c[1] * b + c[2] * a + c[4];
                }
                Term::Centered([p, q, r, c, d], i, j) => {
                    let (a, b) = (x[i], x[j]);
                    g[i] += 2.0 * p * (a - c) + r * b;
                    g[j] += 2.0 * q * (b - d) + r * a;
                }
                Term::Rosen(i, j) => {
                    let (a, b) = (x[i], x[j]);
                    g[i] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
                    g[j] += 200.0 * (b - a * a);
                }
                Term::Private { w, a } => {
                    let (wv, av) = (x[w], x[a]);
                    g[w] += 3.0 * wv + 2.0 * (wv - av) + 0.2;
                    g[a] += -2.0 * (wv - av);
                }
            }
        }
        g
    }
}

/// The classic start of the Rosenbrock chain, `x = -1.2`.
pub(crate) const CLASSIC_START: &str = "-1.2";

/// A random start near 0.5: keep step sizes at most [`ROSENBROCK_LR`] from there.
pub(crate) const RANDOM_START: &str = "normal(0.5, 0.2); seed = 3";

/// Step sizes on the Rosenbrock chain from [`RANDOM_START`]: from 1e-3 on, accelerated runs
/// of 100 steps amplify a change of one ulp (in gamma0, say) to 1e-10, and no two
/// implementations could agree to 1e-12.
pub(crate) const ROSENBROCK_LR: f64 = 5e-4;

/// The Rosenbrock chain of `boxes` boxes over `x[0..=boxes]`, from `init` (the text after
/// `init x = `: [`CLASSIC_START`] or [`RANDOM_START`]).
pub(crate) fn rosenbrock_chain(boxes: usize, init: &str) -> TestProblem {
    let text = format!(
        "objective rosen(a: real, b: real) {{ minimize 100 * (b - a^2)^2 + (1 - a)^2; }}
         composite chain() {{ for i in 0..{boxes} {{ rosen(x[i], x[i + 1]); }} }}
         solve chain {{ method = gd(lr = 1e-4); init x = {init}; }}"
    );
    TestProblem::new(&text, |at| {
        (0..boxes)
            .map(|i| Term::Rosen(at[&format!("x[{i}]")], at[&format!("x[{}]", i + 1)]))
            .collect()
    })
}

/// Random numbers for the problems' coefficients: the laws' generator (SplitMix64) with
/// the ranges the builders draw from.
struct Random(PointGenerator);

impl Random {
    fn new(seed: u64) -> Random {
        Random(PointGenerator::new(seed))
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0.next_unit()
    }

    /// Uniform in `[low, high)`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }

    /// A number in `[low, high)` with 4 decimals, as the text writes it.
    fn decimal(&mut self, low: f64, high: f64) -> f64 {
        format!("{:.4}", self.between(low, high)).parse().unwrap()
    }
}

/// A random convex quadratic `0.5 x'Ax - b'x` over `x[0..n]`, as a composite of `pairs`
/// two-variable boxes (each a positive definite 2x2 block of A on two distinct variables,
/// and their terms of b) and one one-variable box per variable (A's diagonal, so A is
/// positive definite); each box its own objective with its own numbers, from a random
/// start.
pub(crate) fn convex_quadratic(seed: u64, n: usize, pairs: usize) -> TestProblem {
    let mut random = Random::new(seed.wrapping_mul(7919).wrapping_add(1));
    let mut objectives = String::new();
    let mut boxes = String::new();
    let mut terms = Vec::new();
    for k in 0..pairs {
        let i = random.below(n);
        let j = (i + 1 + random.below(n - 1)) % n;
        let p = random.between(0.5, 1.5);
        let s = random.between(0.5, 1.5);
        let r = random.between(-0.9, 0.9) * (p * s).sqrt();
        let (c, d) = (random.between(-1.0, 1.0), random.between(-1.0, 1.0));
        objectives.push_str(&format!(
            "objective q{k}(u: real, w: real) {{ minimize 0.5 * ({p:?} * u^2 + 2 * ({r:?}) * u * w \
             + {s:?} * w^2) - ({c:?}) * u - ({d:?}) * w; }}\n"
        ));
        boxes.push_str(&format!("q{k}(x[{i}], x[{j}]);\n"));
        terms.push(([0.5 * p, 0.5 * s, r, -c, -d], i, j));
    }
    for i in 0..n {
        let e = random.between(0.1, 1.0);
        let f = random.between(-1.0, 1.0);
        objectives.push_str(&format!(
            "objective d{i}(u: real) {{ minimize 0.5 * {e:?} * u^2 - ({f:?}) * u; }}\n"
        ));
        boxes.push_str(&format!("d{i}(x[{i}]);\n"));
        terms.push(([0.5 * e, 0.0, 0.0, -f, 0.0], i, i));
    }
    let text = format!(
        "{objectives}composite quad() {{\n{boxes}}}\n\
         solve quad {{ method = gd(lr = 0.05); init x = normal(0, 1); seed = {seed}; }}\n"
    );
    TestProblem::new(&text, |at| {
        let x = |i: usize| at[&format!("x[{i}]")];
        terms
            .into_iter()
            .map(|(c, i, j)| Term::Quadratic(c, x(i), x(j)))
            .collect()
    })
}

/// A random strongly convex quadratic: boxes of four random types on a junction family
/// `x[0..nx]` (each `x[i]` with a random `x[j]`, twice), boxes of a fifth type tying each
/// `y[i]` (`y[0..ny]`) to a random `x[j]`, and three boxes with a private variable. The
/// fifth type's `a^2` coefficient is `smallest`: the `y` directions are flat (the problem
/// ill-conditioned), so that 100 steps stay well above rounding, where no two
/// implementations can agree on a line search's decisions.
pub(crate) fn ill_conditioned_quadratic(
    seed: u64,
    nx: usize,
    ny: usize,
    smallest: f64,
) -> TestProblem {
    let mut random = Random::new(seed);
    let mut kinds = Vec::new();
    let mut text = String::new();
    for k in 0..5 {
        let c0 = if k == 4 {
            smallest
        } else {
            random.decimal(0.5, 2.0)
        };
        let c1 = random.decimal(0.5, 2.0);
        let bound = 0.9 * (c0 * c1).sqrt();
        let c2: f64 = format!("{:.6}", (2.0 * random.unit() - 1.0) * bound)
            .parse()
            .unwrap();
        let (c3, c4) = (random.decimal(-1.0, 1.0), random.decimal(-1.0, 1.0));
        text.push_str(&format!(
            "objective q{k}(a: real, b: real) {{ minimize {c0} * a^2 + {c1} * b^2 + ({c2}) * a * b + ({c3}) * a + ({c4}) * b; }}\n"
        ));
        kinds.push([c0, c1, c2, c3, c4]);
    }
    text.push_str(
        "objective p(a: real) { var w: real = 0.5; minimize 1.5 * w^2 + (w - a)^2 + 0.2 * w; }\n",
    );
    text.push_str("composite c() {\n");
    let mut boxes = Vec::new();
    for _ in 0..2 {
        for i in 0..nx {
            let j = random.below(nx);
            boxes.push((random.below(4), format!("x[{i}]"), format!("x[{j}]")));
        }
    }
    for i in 0..ny {
        let j = random.below(nx);
        boxes.push((4, format!("y[{i}]"), format!("x[{j}]")));
    }
    for (kind, a, b) in &boxes {
        text.push_str(&format!("q{kind}({a}, {b});\n"));
    }
    let privates: Vec<String> = (0..3).map(|_| format!("x[{}]", random.below(nx))).collect();
    for (k, a) in privates.iter().enumerate() {
        text.push_str(&format!("p{k}: p({a});\n"));
    }
    text.push_str("}\nsolve c { method = gd(lr = 0.01); init x = 0.7; init y = -0.4; }\n");
    TestProblem::new(&text, |at| {
        let mut terms: Vec<Term> = boxes
            .iter()
            .map(|(kind, a, b)| Term::Quadratic(kinds[*kind], at[a], at[b]))
            .collect();
        for (k, a) in privates.iter().enumerate() {
            terms.push(Term::Private {
                w: at[&format!("p{k}.w")],
                a: at[a],
            });
        }
        terms
    })
}

/// A random quadratic of one box type with parameters (one batched kernel):
/// `boxes` boxes `p (u - c)^2 + q (v - d)^2 + r u v` on random pairs of `n` shared
/// variables `z[0..n]` (a pair may repeat a variable), from `z = 0.5`.
pub(crate) fn parameterised_quadratic(seed: u64, n: usize, boxes: usize) -> TestProblem {
    let mut random = Random::new(seed);
    let mut text = String::from(
        "objective quad(u: real, v: real; p: real, q: real, r: real, c: real, d: real) {
             minimize p * (u - c)^2 + q * (v - d)^2 + r * u * v;
         }
         composite c() {\n",
    );
    let mut terms = Vec::new();
    for _ in 0..boxes {
        let (i, j) = (random.below(n), random.below(n));
        let p = random.between(0.1, 2.1);
        let q = random.between(0.1, 2.1);
        let r = random.between(-0.1, 0.1);
        let c = random.between(-2.0, 2.0);
        let d = random.between(-2.0, 2.0);
        // `{:e}` writes the shortest text that reads back as the same number.
        text.push_str(&format!(
            "quad(z[{i}], z[{j}]; {p:e}, {q:e}, {r:e}, {c:e}, {d:e});\n"
        ));
        terms.push(([p, q, r, c, d], i, j));
    }
    text.push_str("}\nsolve c { method = gd(lr = 0.1); init z = 0.5; }\n");
    TestProblem::new(&text, |at| {
        let z = |i: usize| at[&format!("z[{i}]")];
        terms
            .into_iter()
            .map(|(c, i, j)| Term::Centered(c, z(i), z(j)))
            .collect()
    })
}
