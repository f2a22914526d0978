//! Test problems for the line-search methods with plain, independent reference
//! implementations: composites whose objective and gradient are also written out by hand
//! (loops over the boxes), and a runner for the solver.

use crate::lower::{lower_text, Problem};
use crate::run::backend::Backend;
use crate::run::executor::Executor;
use crate::run::method::Method;
use crate::run::plan::Plan;
use crate::run::solver::{solve, NoObserver, Outcome, SolverState, StopRule};
use std::collections::HashMap;
use std::sync::Arc;

/// One box of a test composite, on coordinates of the composite's state.
#[derive(Clone, Debug)]
enum Term {
    /// `c[0] a^2 + c[1] b^2 + c[2] a b + c[3] a + c[4] b`.
    Quadratic([f64; 5], usize, usize),
    /// `100 (b - a^2)^2 + (1 - a)^2`.
    Rosen(usize, usize),
    /// A private `w`: `1.5 w^2 + (w - a)^2 + 0.2 w`.
    Private { w: usize, a: usize },
}

/// A lowered composite and its objective written out by hand.
pub(crate) struct Reference {
    pub problem: Problem,
    terms: Vec<Term>,
    /// Per coordinate: its variable's name (`x[3]`, `p2.w`).
    pub names: Vec<String>,
}

impl Reference {
    fn new(text: &str, terms: impl Fn(&HashMap<String, usize>) -> Vec<Term>) -> Reference {
        let problem = lower_text(text, None).unwrap_or_else(|e| panic!("{e}")).1;
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
        Reference {
            problem,
            terms,
            names,
        }
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

/// The Rosenbrock chain on `x[0..=n]`, from `x = -1.2`.
pub(crate) fn rosenbrock_chain(n: usize) -> Reference {
    let text = format!(
        "objective rosen(a: real, b: real) {{ minimize 100 * (b - a^2)^2 + (1 - a)^2; }}
         composite chain() {{ for i in 0..{n} {{ rosen(x[i], x[i + 1]); }} }}
         solve chain {{ method = gd(lr = 1e-4); init x = -1.2; }}"
    );
    Reference::new(&text, |at| {
        (0..n)
            .map(|i| Term::Rosen(at[&format!("x[{i}]")], at[&format!("x[{}]", i + 1)]))
            .collect()
    })
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }

    /// A number in `[lo, hi)` with 4 decimals, as the text writes it.
    fn decimal(&mut self, lo: f64, hi: f64) -> f64 {
        let v = lo + (hi - lo) * self.unit();
        format!("{v:.4}").parse().unwrap()
    }
}

/// A random strongly convex quadratic: boxes of four random types on a junction family
/// `x[0..nx]` (each `x[i]` with a random `x[j]`, twice), boxes of a fifth type tying each
/// `y[i]` (`y[0..ny]`) to a random `x[j]`, and three boxes with a private variable. The
/// fifth type's `a^2` coefficient is `smallest`: the `y` directions are flat (the problem
/// ill-conditioned), so that 100 steps stay well above rounding, where no two
/// implementations can agree on a line search's decisions.
pub(crate) fn random_quadratic(seed: u64, nx: usize, ny: usize, smallest: f64) -> Reference {
    let mut random = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
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
    Reference::new(&text, |at| {
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

/// What [`run`] returns.
pub(crate) struct Ran {
    pub state: SolverState,
    pub outcome: Outcome,
    pub value_evaluations: u64,
}

/// Runs `method` on `problem` for at most `steps` steps on the serial backend.
pub(crate) fn run(problem: &Problem, method: &mut dyn Method, steps: u64) -> Ran {
    let plan = Arc::new(Plan::for_problem(problem).unwrap());
    let mut executor = Executor::new(plan, Backend::serial());
    let mut state = SolverState::new(problem.initial_values.clone());
    let stop = StopRule {
        max_steps: steps,
        tolerance: None,
        rel_tolerance: None,
    };
    let outcome = solve(&mut executor, method, stop, &mut state, &mut NoObserver).unwrap();
    Ran {
        state,
        outcome,
        value_evaluations: executor.value_evaluations(),
    }
}

/// Asserts `a` equals `b` to `tolerance` relative (to the larger magnitude, at least 1).
pub(crate) fn assert_close(a: &[f64], b: &[f64], tolerance: f64, what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (&u, &v)) in a.iter().zip(b).enumerate() {
        let scale = u.abs().max(v.abs()).max(1.0);
        assert!(
            (u - v).abs() <= tolerance * scale,
            "{what}: coordinate {i}: {u} vs {v} (difference {:e})",
            (u - v).abs()
        );
    }
}

/// `sum a_i b_i`, in order.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
