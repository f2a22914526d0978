//! A small deterministic random number generator for `normal(mean, sd)` initial values.
//!
//! SplitMix64 (Steele, Lea, Flood 2014) for uniform bits and the Box–Muller transform for
//! normal draws: a dozen lines, reproducible across platforms and versions, which is what a
//! seeded initialisation needs (a general-purpose RNG crate would add a dependency and may
//! change its streams between versions).

/// A seeded generator of normal draws.
///
/// ```
/// use catopt::lower::random::NormalSource;
/// let mut a = NormalSource::new(42);
/// let mut b = NormalSource::new(42);
/// assert_eq!(a.sample(0.0, 1.0), b.sample(0.0, 1.0));
/// ```
pub struct NormalSource {
    state: u64,
    spare: Option<f64>,
}

impl NormalSource {
    /// A generator for this seed.
    pub fn new(seed: u64) -> NormalSource {
        NormalSource {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A draw from the normal distribution with this mean and standard deviation.
    pub fn sample(&mut self, mean: f64, sd: f64) -> f64 {
        let standard = match self.spare.take() {
            Some(z) => z,
            None => {
                let radius = (-2.0 * self.uniform().ln()).sqrt();
                let angle = std::f64::consts::TAU * self.uniform();
                self.spare = Some(radius * angle.sin());
                radius * angle.cos()
            }
        };
        mean + sd * standard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_requested_mean_and_spread() {
        let mut source = NormalSource::new(7);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| source.sample(2.0, 3.0)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.03, "mean {mean}");
        assert!((var.sqrt() - 3.0).abs() < 0.03, "sd {}", var.sqrt());
    }

    #[test]
    fn different_seeds_give_different_streams() {
        let a: Vec<f64> = {
            let mut s = NormalSource::new(1);
            (0..4).map(|_| s.sample(0.0, 1.0)).collect()
        };
        let b: Vec<f64> = {
            let mut s = NormalSource::new(2);
            (0..4).map(|_| s.sample(0.0, 1.0)).collect()
        };
        assert_ne!(a, b);
    }
}
