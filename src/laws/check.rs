//! Law checks on a user's own diagram and objectives, returning reports (no printing), for
//! `catopt laws FILE` and for tests.

use crate::category::{
    euler, gradient_flow, oapply, CategoryError, DiscreteMap, Open, ReverseDerivative, VectorField,
};

/// The outcome of one law check.
#[derive(Debug, Clone, PartialEq)]
pub struct LawReport {
    /// Which law.
    pub name: String,
    /// Whether every sample was within tolerance.
    pub passed: bool,
    /// The largest deviation seen (relative, or absolute for bitwise checks; see `detail`).
    pub max_deviation: f64,
    /// The tolerance it was held to (`0.0` for bit-for-bit checks).
    pub tolerance: f64,
    /// How many points or steps were compared.
    pub samples: usize,
    /// What was compared, and where the worst deviation occurred.
    pub detail: String,
}

/// A small deterministic generator (SplitMix64) for random evaluation points.
#[derive(Debug, Clone)]
pub struct PointGenerator {
    state: u64,
}

impl PointGenerator {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> PointGenerator {
        PointGenerator { state: seed }
    }

    /// The next uniform number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A point of `R^dimension` with coordinates uniform in `[-radius, radius)`.
    pub fn point(&mut self, dimension: usize, radius: f64) -> Vec<f64> {
        (0..dimension)
            .map(|_| radius * (2.0 * self.next_unit() - 1.0))
            .collect()
    }
}

/// `max_i |a_i - b_i| / max(1, max_i |a_i|)`; infinite when either holds a non-finite number
/// where the other differs (two NaNs count as equal, whatever their signs).
pub fn relative_deviation(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        if same_bits(*x, *y) {
            continue;
        }
        let d = (x - y).abs();
        if !d.is_finite() {
            return f64::INFINITY;
        }
        worst = worst.max(d / scale);
    }
    worst
}

/// GD naturality at `points` random points (coordinates in `[-radius, radius)`, seeded):
/// `-grad(oapply(d, f_b))(z) == oapply(d, -grad f_b)(z)` within relative `tolerance`.
pub fn check_gd_naturality<F: ReverseDerivative + Clone>(
    diagram: &crate::category::WiringDiagram,
    box_types: &[Open<F>],
    box_type_of: &[u32],
    points: usize,
    seed: u64,
    radius: f64,
    tolerance: f64,
) -> Result<LawReport, CategoryError> {
    let composite = oapply(diagram, box_types, box_type_of)?;
    let flows: Vec<_> = box_types
        .iter()
        .map(|t| t.clone().map_decoration(gradient_flow))
        .collect();
    let composite_of_flows = oapply(diagram, &flows, box_type_of)?;
    let flow_of_composite = gradient_flow(&composite);
    let n = composite.apex();
    let mut generator = PointGenerator::new(seed);
    let (mut left, mut right) = (vec![0.0; n], vec![0.0; n]);
    let mut max_deviation = 0.0f64;
    let mut worst_point = 0;
    for k in 0..points {
        let z = generator.point(n, radius);
        flow_of_composite.eval(&z, &mut left);
        composite_of_flows.eval(&z, &mut right);
        let d = relative_deviation(&left, &right);
        if d > max_deviation || d.is_nan() {
            max_deviation = d;
            worst_point = k;
        }
    }
    Ok(LawReport {
        name: "GD naturality".into(),
        passed: max_deviation <= tolerance,
        max_deviation,
        tolerance,
        samples: points,
        detail: format!(
            "-grad of the composite vs the composite of the boxes' -grad at {points} random points of R^{n} (seed {seed}); worst at point #{worst_point}"
        ),
    })
}

/// Distributed = central: `steps` steps of the distributed algorithm (each box's local
/// gradient, summed on junctions in box order, then one Euler step:
/// `euler(oapply(d, gradient_flow(f_b)), gamma)`) against `steps` steps of gradient descent
/// on the composite objective (`euler(gradient_flow(oapply(d, f_b)), gamma)`), compared bit
/// for bit at every step. `max_deviation` is the largest absolute difference.
pub fn check_distributed_vs_central<F: ReverseDerivative + Clone>(
    diagram: &crate::category::WiringDiagram,
    box_types: &[Open<F>],
    box_type_of: &[u32],
    start: &[f64],
    step_size: f64,
    steps: usize,
) -> Result<LawReport, CategoryError> {
    let composite = oapply(diagram, box_types, box_type_of)?;
    check_length(start.len(), composite.apex())?;
    let flows: Vec<_> = box_types
        .iter()
        .map(|t| t.clone().map_decoration(gradient_flow))
        .collect();
    let distributed = euler(oapply(diagram, &flows, box_type_of)?, step_size);
    let central = euler(gradient_flow(&composite), step_size);
    let (report, _) = compare_runs(&distributed, &central, start, steps, 0.0);
    Ok(LawReport {
        name: "distributed = central (bitwise)".into(),
        ..report
    })
}

/// Euler naturality: the increment form of the composite discrete system,
/// `oapply(d, euler(gradient_flow(f_b), gamma))` (boxes' increments `s_b(y) - y` summed on
/// junctions), against central gradient descent `euler(gradient_flow(oapply(d, f_b)), gamma)`.
/// The two maps are equal up to rounding, so they are compared one step at a time at each of
/// the `steps` states of the central run (both maps applied to the same state), held to a
/// relative `tolerance`. Comparing two free-running trajectories instead would measure the
/// objective's sensitivity (a nonconvex objective amplifies a rounding difference
/// exponentially), not the law.
pub fn check_increments_vs_central<F: ReverseDerivative + Clone>(
    diagram: &crate::category::WiringDiagram,
    box_types: &[Open<F>],
    box_type_of: &[u32],
    start: &[f64],
    step_size: f64,
    steps: usize,
    tolerance: f64,
) -> Result<LawReport, CategoryError> {
    let composite = oapply(diagram, box_types, box_type_of)?;
    check_length(start.len(), composite.apex())?;
    let maps: Vec<_> = box_types
        .iter()
        .map(|t| {
            t.clone()
                .map_decoration(|f| euler(gradient_flow(f), step_size))
        })
        .collect();
    let increments = oapply(diagram, &maps, box_type_of)?;
    let central = euler(gradient_flow(&composite), step_size);
    let (report, _) = compare_runs(&increments, &central, start, steps, tolerance);
    Ok(LawReport {
        name: "Euler naturality (summed increments vs central)".into(),
        ..report
    })
}

fn check_length(found: usize, expected: usize) -> Result<(), CategoryError> {
    if found != expected {
        return Err(CategoryError::LengthMismatch {
            what: "the starting point".into(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Runs two discrete systems side by side; deviation is absolute when `tolerance == 0`
/// (bit-for-bit), relative otherwise. Returns the report and the final states.
/// Bit-for-bit equality of two numbers, except that every NaN equals every NaN: the sign
/// and payload of a NaN depend on operand order and the processor, not on the law.
pub fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn compare_runs(
    first: &impl DiscreteMap,
    second: &impl DiscreteMap,
    start: &[f64],
    steps: usize,
    tolerance: f64,
) -> (LawReport, (Vec<f64>, Vec<f64>)) {
    let n = start.len();
    let (mut a, mut b) = (start.to_vec(), start.to_vec());
    let (mut next_a, mut next_b) = (vec![0.0; n], vec![0.0; n]);
    let mut max_deviation = 0.0f64;
    let mut bitwise = true;
    let mut first_difference = None;
    for step in 1..=steps {
        // Bitwise checks run both systems freely; tolerance checks shadow the second run.
        if tolerance == 0.0 {
            first.step(&a, &mut next_a);
        } else {
            first.step(&b, &mut next_a);
        }
        second.step(&b, &mut next_b);
        std::mem::swap(&mut a, &mut next_a);
        std::mem::swap(&mut b, &mut next_b);
        let identical = a.iter().zip(&b).all(|(x, y)| same_bits(*x, *y));
        if !identical {
            bitwise = false;
            first_difference.get_or_insert(step);
        }
        let d = if tolerance == 0.0 {
            a.iter()
                .zip(&b)
                .filter(|(x, y)| !same_bits(**x, **y))
                .map(|(x, y)| (x - y).abs())
                .fold(
                    0.0f64,
                    |m, v| if v.is_nan() { f64::INFINITY } else { m.max(v) },
                )
        } else {
            relative_deviation(&b, &a)
        };
        max_deviation = max_deviation.max(d);
    }
    let passed = if tolerance == 0.0 {
        bitwise
    } else {
        max_deviation <= tolerance
    };
    let detail = match first_difference {
        None => format!("{steps} steps from the given start agree bit for bit"),
        Some(step) => format!("{steps} steps; the states first differ at step {step}"),
    };
    (
        LawReport {
            name: String::new(),
            passed,
            max_deviation,
            tolerance,
            samples: steps,
            detail,
        },
        (a, b),
    )
}

/// Builds the map `sigma: {0..from} -> {0..to}` from pairs `(i, sigma(i))`, checking that the
/// pairs are consistent and that `sigma` is a bijection (so two composites' apexes are
/// isomorphic in the way the pairs say). Used to compare composites built in different ways.
pub fn correspondence(
    pairs: impl IntoIterator<Item = (usize, usize)>,
    from: usize,
    to: usize,
) -> Result<crate::category::FinFunction, String> {
    if from != to {
        return Err(format!("apex sizes differ: {from} vs {to}"));
    }
    let mut table = vec![usize::MAX; from];
    for (i, j) in pairs {
        if table[i] != usize::MAX && table[i] != j {
            return Err(format!(
                "variable {i} corresponds to both {} and {j}",
                table[i]
            ));
        }
        table[i] = j;
    }
    if let Some(i) = table.iter().position(|&j| j == usize::MAX) {
        return Err(format!("variable {i} corresponds to nothing"));
    }
    let sigma = crate::category::FinFunction::new(table, to).map_err(|e| e.to_string())?;
    if !sigma.is_injective() {
        return Err("the correspondence is not injective".into());
    }
    Ok(sigma)
}
