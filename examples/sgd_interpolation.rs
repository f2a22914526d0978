//! Accelerated SGD under interpolation (Mishkin, Pilanci, Schmidt 2024; docs/experiments.md):
//! consistent least squares (`examples/sgd_interpolation.opt`, A 200 x 50, b = A x*), `agd`
//! against `gd` at the same step eta = 1 / (rho L) with one row per step (`batch = 1`,
//! drawn with replacement) over several seeds, and both with every row per step
//! (`batch = 200`, eta = 1 / L) against the deterministic rates. L, mu and the strong growth
//! constant rho are computed here from the data (as examples/data/make_interpolation.py
//! prints them). Each run stops when the full objective reaches 1e-12 f(x0) (f* = 0); the
//! linear rate is the least-squares slope of ln f over the steps where f / f(x0) is in
//! [1e-12, 1e-4].
//!
//! `cargo run --release --example sgd_interpolation [-- --quick] [-- --out DIR]` writes
//! `DIR/sgd_interpolation.md` and `DIR/sgd_interpolation.svg` (default DIR: docs/images)
//! and prints the table. `--quick` is the tests' version (two seeds).

#[path = "experiments/plot.rs"]
mod plot;
#[path = "experiments/runner.rs"]
mod runner;

use nalgebra::{DMatrix, DVector};
pub use runner::mean;
use runner::{arguments, mean_sd, Loaded, RunSpec};
use std::path::Path;

/// The problem's constants.
#[derive(Clone, Copy, Debug)]
pub struct Constants {
    /// The largest eigenvalue of H = A^T A / n: f is L-smooth.
    pub l: f64,
    /// The smallest: f is mu-strongly convex.
    pub mu: f64,
    /// max_i |a_i|^2: each f_i is L_max-smooth.
    pub l_max: f64,
    /// The strong growth constant of single-row sampling: lambda_max(H^-1 M H^-1), with
    /// M = (1/n) sum_i |a_i|^2 a_i a_i^T.
    pub rho: f64,
}

/// Reads examples/data/interpolation.csv: A (200 x 50) and b.
pub fn read_data() -> Result<(DMatrix<f64>, DVector<f64>), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/interpolation.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(|v| v.parse::<f64>()).collect())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (n, d) = (rows.len(), rows[0].len() - 1);
    let a = DMatrix::from_fn(n, d, |i, j| rows[i][j]);
    let b = DVector::from_fn(n, |i, _| rows[i][d]);
    Ok((a, b))
}

/// L, mu, L_max and rho of the data.
pub fn constants(a: &DMatrix<f64>) -> Constants {
    let n = a.nrows() as f64;
    let h = a.transpose() * a / n;
    let eigen = h.clone().symmetric_eigen();
    let l = eigen.eigenvalues.max();
    let mu = eigen.eigenvalues.min();
    let norms: Vec<f64> = a.row_iter().map(|r| r.norm_squared()).collect();
    let weighted = DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| norms[i] * a[(i, j)]);
    let m = a.transpose() * weighted / n;
    let h_inv = eigen.recompose_inverse();
    let r = &h_inv * m * &h_inv;
    let r = (&r + r.transpose()) / 2.0;
    Constants {
        l,
        mu,
        l_max: norms.iter().copied().fold(0.0, f64::max),
        rho: r.symmetric_eigen().eigenvalues.max(),
    }
}

trait Inverse {
    fn recompose_inverse(self) -> DMatrix<f64>;
}

impl Inverse for nalgebra::SymmetricEigen<f64, nalgebra::Dyn> {
    fn recompose_inverse(mut self) -> DMatrix<f64> {
        self.eigenvalues.apply(|v| *v = 1.0 / *v);
        self.recompose()
    }
}

/// One configuration: a method at a batch, with its step and the rate its theory gives.
#[derive(Clone, Debug)]
pub struct Row {
    /// `gd` or `agd`.
    pub method: &'static str,
    /// Rows per step.
    pub batch: u64,
    /// The step size.
    pub eta: f64,
    /// The theorem's per-step factor of the bound on E f(x_k) - f*: 1 - mu eta for gd,
    /// 1 - sqrt(mu eta) for agd.
    pub bound: f64,
    /// Per seed: the measured per-step factor of f.
    pub factors: Vec<f64>,
    /// Per seed: the first recorded step with f <= 1e-8 f(x0) (None if never).
    pub steps_to_1e8: Vec<Option<u64>>,
    /// The first seed's trace of f / f(x0).
    pub curve: Vec<(f64, f64)>,
}

/// The experiment's size.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The seeds of the batch = 1 runs.
    pub seeds: Vec<u64>,
    /// The most steps of a batch = 1 run.
    pub max_steps: u64,
}

impl Setup {
    /// Five seeds.
    pub fn full() -> Setup {
        Setup {
            seeds: (1..=5).collect(),
            max_steps: 400_000,
        }
    }

    /// Two seeds (the tests).
    pub fn quick() -> Setup {
        Setup {
            seeds: vec![1, 2],
            max_steps: 400_000,
        }
    }
}

/// The least-squares slope of ln f over the points with f / f0 in [low, high], as a
/// per-step factor.
pub fn rate(trace: &[(u64, f64)], f0: f64, low: f64, high: f64) -> f64 {
    let points: Vec<(f64, f64)> = trace
        .iter()
        .filter(|(_, f)| *f / f0 >= low && *f / f0 <= high)
        .map(|&(k, f)| (k as f64, f.ln()))
        .collect();
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxy / sxx).exp()
}

/// Runs the four configurations.
pub fn experiment(setup: &Setup) -> Result<(Constants, Vec<Row>), String> {
    let (a, _) = read_data()?;
    let c = constants(&a);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sgd_interpolation.opt");
    let loaded = Loaded::new(&file)?;
    let mut rows = Vec::new();
    for (batch, eta, sampling, seeds, every) in [
        (1, 1.0 / (c.rho * c.l), "replace", setup.seeds.clone(), 10),
        (200, 1.0 / c.l, "shuffle", vec![1], 1),
    ] {
        for method in ["gd", "agd"] {
            let written = match method {
                "gd" => format!("gd(lr = {eta:e})"),
                _ => format!("agd(lr = {eta:e}, mu = {0:e}, gamma0 = {0:e})", c.mu),
            };
            let bound = match method {
                "gd" => 1.0 - c.mu * eta,
                _ => 1.0 - (c.mu * eta).sqrt(),
            };
            let mut row = Row {
                method,
                batch,
                eta,
                bound,
                factors: Vec::new(),
                steps_to_1e8: Vec::new(),
                curve: Vec::new(),
            };
            for &seed in &seeds {
                let spec = RunSpec {
                    method: Some(written.clone()),
                    batch: Some(batch),
                    sampling: Some(sampling.into()),
                    steps: Some(setup.max_steps),
                    seed,
                    full_every: every,
                    stop_below: Some(1e-12),
                    ..RunSpec::default()
                };
                let result = runner::run(&loaded, &spec)?;
                let f0 = result.trace[0].1;
                let last = result.trace.last().map_or(f64::NAN, |t| t.1);
                if last.is_nan() || last > 1e-12 * f0 {
                    return Err(format!(
                        "{written}, batch {batch}, seed {seed}: f = {last:e} = {:e} f(x0) after \
                         {} steps ({}), not 1e-12 f(x0)",
                        last / f0,
                        result.steps,
                        result.stop_reason
                    ));
                }
                row.factors.push(rate(&result.trace, f0, 1e-12, 1e-4));
                row.steps_to_1e8.push(
                    result
                        .trace
                        .iter()
                        .find(|(_, f)| *f <= 1e-8 * f0)
                        .map(|t| t.0),
                );
                if row.curve.is_empty() {
                    row.curve = result
                        .trace
                        .iter()
                        .map(|&(k, f)| (k as f64, f / f0))
                        .collect();
                }
            }
            rows.push(row);
        }
    }
    Ok((c, rows))
}

/// The table.
pub fn markdown(c: &Constants, rows: &[Row]) -> String {
    let mut out = format!(
        "L = {:.6}, mu = {:.6} (L / mu = {:.2}), L_max = {:.4}, rho = {:.2} (bound L_max / mu \
         = {:.1}); batch 1 draws rows with replacement ({} seeds), batch 200 is every row \
         (deterministic). Rates are per step, of the full objective f (f* = 0), fitted where \
         1e-12 <= f / f(x0) <= 1e-4; the bound's factor is the theorem's for E f(x_k) - f*.\n\n\
         | batch | method | eta | bound's factor | measured factor (mean ± sd) | measured / bound exponent | steps to f <= 1e-8 f(x0) (mean ± sd) |\n\
         |---|---|---|---|---|---|---|\n",
        c.l,
        c.mu,
        c.l / c.mu,
        c.l_max,
        c.rho,
        c.l_max / c.mu,
        rows[0].factors.len()
    );
    for row in rows {
        let (factor, factor_sd) = mean_sd(&row.factors);
        let steps: Vec<f64> = row
            .steps_to_1e8
            .iter()
            .map(|s| s.map_or(f64::NAN, |s| s as f64))
            .collect();
        let (steps, steps_sd) = mean_sd(&steps);
        out.push_str(&format!(
            "| {} | `{}` | {:.6} | {:.6} | {factor:.6} ± {factor_sd:.6} | {:.2} | {steps:.0} ± {steps_sd:.0} |\n",
            row.batch,
            row.method,
            row.eta,
            row.bound,
            factor.ln() / row.bound.ln(),
        ));
    }
    out
}

/// At most this many points per curve in the plot.
const PLOTTED: usize = 600;

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let every = points.len().div_ceil(PLOTTED).max(1);
    points.iter().step_by(every).copied().collect()
}

/// The plot: f / f(x0) per step, batch 1 (first seed) and batch 200, with the bounds.
pub fn svg(rows: &[Row]) -> Result<String, String> {
    let panels = [1, 200]
        .into_iter()
        .map(|batch| {
            let mut curves = Vec::new();
            for row in rows.iter().filter(|r| r.batch == batch) {
                curves.push(plot::Curve {
                    name: format!("{} (eta = {:.3e})", row.method, row.eta),
                    points: thin(&row.curve),
                });
            }
            for row in rows.iter().filter(|r| r.batch == batch) {
                let last = row.curve.last().map_or(1.0, |p| p.0);
                let bound: Vec<(f64, f64)> = (0..=PLOTTED)
                    .map(|i| {
                        let k = last * i as f64 / PLOTTED as f64;
                        (k, row.bound.powf(k))
                    })
                    .filter(|p| p.1 >= 1e-13)
                    .collect();
                curves.push(plot::Curve {
                    name: format!("{} bound ({:.5})^k", row.method, row.bound),
                    points: bound,
                });
            }
            plot::Panel {
                title: if batch == 1 {
                    "batch = 1 (with replacement), seed 1".into()
                } else {
                    "batch = 200 (every row)".into()
                },
                x_desc: "step".into(),
                y_desc: "f(x_k) / f(x_0)".into(),
                curves,
            }
        })
        .collect::<Vec<_>>();
    plot::svg(
        "Consistent least squares (200 x 50): agd against gd at the same step",
        &panels,
        1000,
    )
}

/// Runs the experiment and writes `out/sgd_interpolation.{md,svg}`; returns the constants,
/// the rows and the table.
pub fn write(quick: bool, out: &Path) -> Result<(Constants, Vec<Row>, String), String> {
    let setup = if quick { Setup::quick() } else { Setup::full() };
    let (c, rows) = experiment(&setup)?;
    let table = markdown(&c, &rows);
    let picture = svg(&rows)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in [
        ("sgd_interpolation.md", &table),
        ("sgd_interpolation.svg", &picture),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok((c, rows, table))
}

#[allow(dead_code)]
fn main() {
    match arguments().and_then(|(quick, out)| write(quick, &out)) {
        Ok((_, _, table)) => print!("{table}"),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}
