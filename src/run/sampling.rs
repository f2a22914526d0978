//! Which rows each box's minibatch holds at each step (docs/language.md, "Stochastic
//! gradients"): a pure function of (seed, box, step), so that every backend, thread count
//! and rank count draws the same rows, and a resumed run continues the same stream without
//! storing anything.
//!
//! - `shuffle` (the default): an epoch is a random permutation of the box's `rows`, cut
//!   into `rows / batch` batches (the last `rows mod batch` rows of each permutation are
//!   not drawn in that epoch, as with `drop_last`; every batch has the same size, so one
//!   kernel serves every step). Step k is batch `k mod (rows / batch)` of epoch
//!   `k / (rows / batch)`. The permutation is a keyed pseudo-random permutation (a
//!   twelve-round Feistel network on the smallest power-of-two domain holding the rows, with
//!   cycle walking), keyed by (seed, box, epoch): it is computed row by row where needed,
//!   in O(batch) per step and no memory, where storing a shuffled index array per box
//!   would cost `rows` numbers for each of a million boxes.
//! - `replace`: each of the `batch` rows is uniform on the rows, independently (Lemire's
//!   multiply-and-reject, so no row is favoured).

use crate::check::program::SamplingOrder;

/// The row draws of one kind of box: its row count, the batch size, the order and the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDraws {
    rows: u64,
    batch: u64,
    order: SamplingOrder,
    seed: u64,
}

impl RowDraws {
    /// Draws of `batch` out of `rows` rows.
    ///
    /// # Panics
    /// If `batch` is 0 or more than `rows` (the checker refuses both: E0521).
    pub fn new(rows: u64, batch: u64, order: SamplingOrder, seed: u64) -> RowDraws {
        assert!(
            batch >= 1 && batch <= rows,
            "a batch of {batch} out of {rows} rows"
        );
        RowDraws {
            rows,
            batch,
            order,
            seed,
        }
    }

    /// The number of batches an epoch is cut into (`shuffle`).
    pub fn batches_per_epoch(&self) -> u64 {
        self.rows / self.batch
    }

    /// How many passes over the rows `steps` steps make: `steps * batch / rows`.
    pub fn epochs(&self, steps: u64) -> f64 {
        steps as f64 * self.batch as f64 / self.rows as f64
    }

    /// The rows of box `box_index`'s minibatch at step `step`, into `out` (`batch` long).
    ///
    /// # Panics
    /// If `out.len()` is not the batch size.
    pub fn draw(&self, box_index: u64, step: u64, out: &mut [u32]) {
        assert_eq!(
            out.len() as u64,
            self.batch,
            "a minibatch of {}",
            self.batch
        );
        match self.order {
            SamplingOrder::Shuffle => {
                let per_epoch = self.batches_per_epoch();
                let (epoch, within) = (step / per_epoch, step % per_epoch);
                let permutation =
                    Permutation::new(self.rows, key(&[self.seed, box_index, epoch, SHUFFLE]));
                let first = within * self.batch;
                // Four rows at a time: their walks are independent, so the processor
                // overlaps their multiplications (the same rows as one at a time).
                let mut lanes = out.chunks_exact_mut(LANES);
                let mut next = first;
                for rows in &mut lanes {
                    let images = permutation.apply_lanes(std::array::from_fn(|l| next + l as u64));
                    for (row, image) in rows.iter_mut().zip(images) {
                        *row = image as u32;
                    }
                    next += LANES as u64;
                }
                for row in lanes.into_remainder() {
                    *row = permutation.apply(next) as u32;
                    next += 1;
                }
            }
            SamplingOrder::Replace => {
                let stream = key(&[self.seed, box_index, step, REPLACE]);
                let mut counter = 0u64;
                for row in out.iter_mut() {
                    *row = uniform_below(self.rows, || {
                        counter += 1;
                        mix(stream ^ mix(counter))
                    }) as u32;
                }
            }
        }
    }
}

/// Rows a shuffled draw computes together.
const LANES: usize = 4;

/// Domain separation of the two orders' keys.
const SHUFFLE: u64 = 0x5348_5546_464c_4531;
const REPLACE: u64 = 0x5245_504c_4143_4531;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A key from several numbers (each mixed in turn).
fn key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x6361_746f_7074_0001, |k, &p| mix(k ^ p))
}

/// A uniform integer below `n` from a stream of uniform 64-bit words (Lemire 2019:
/// multiply, and reject the few low products that would favour some values).
fn uniform_below(n: u64, mut next: impl FnMut() -> u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let product = u128::from(next()) * u128::from(n);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

/// A keyed permutation of `0..n`: a Feistel network on the `bits` bits of the smallest
/// power of two (at least 4) that holds `n`, split into a high and a low part (unbalanced
/// when `bits` is odd; each round changes one part by a keyed hash of the other, so it is a
/// bijection whatever the split), walked until it lands below `n`. The domain is less than
/// `2n`, so a walk takes fewer than two passes on average, and one when `n` is a power of two.
struct Permutation {
    n: u64,
    high_bits: u32,
    low_bits: u32,
    round_keys: [u64; 12],
}

impl Permutation {
    fn new(n: u64, key: u64) -> Permutation {
        let bits = (64 - (n.max(2) - 1).leading_zeros()).max(2);
        Permutation {
            n,
            high_bits: bits / 2,
            low_bits: bits - bits / 2,
            round_keys: std::array::from_fn(|r| mix(key ^ (r as u64 + 1))),
        }
    }

    /// The image of `i < n`.
    fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        // The walk ends because the network is a bijection of the domain (the cycle
        // through i returns to values below n).
        let mut x = i;
        loop {
            x = self.encrypt(x);
            if x < self.n {
                return x;
            }
        }
    }

    /// [`Permutation::apply`] of [`LANES`] indices at once (each walked until it lands
    /// below `n`; a lane that has landed keeps its image).
    #[inline]
    fn apply_lanes(&self, indices: [u64; LANES]) -> [u64; LANES] {
        let mut x = indices.map(|i| self.encrypt(i));
        while x.iter().any(|&v| v >= self.n) {
            let again = x.map(|v| self.encrypt(v));
            for (v, a) in x.iter_mut().zip(again) {
                if *v >= self.n {
                    *v = a;
                }
            }
        }
        x
    }

    /// One pass of the network: twelve rounds, alternately changing the high and the low
    /// part. The round function is a multiplicative hash of the other part and the round's
    /// key (one multiplication; its top bits, the best mixed; the keys are SplitMix
    /// outputs). Few rounds are far from uniform on small domains (four rounds on 16 rows
    /// favour some pairs of first rows by a factor of 3, whatever the round function;
    /// `the_permutations_of_different_keys_look_independent_and_uniform`); twelve pass, and
    /// cost less than four rounds of a full SplitMix did (sampling is on every step's path).
    #[inline]
    fn encrypt(&self, x: u64) -> u64 {
        let low_mask = (1u64 << self.low_bits) - 1;
        let (mut high, mut low) = (x >> self.low_bits, x & low_mask);
        let hash = |part: u64, key: u64, bits: u32| {
            (part ^ key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)
        };
        for (round, &key) in self.round_keys.iter().enumerate() {
            if round % 2 == 0 {
                high ^= hash(low, key, self.high_bits);
            } else {
                low ^= hash(high, key, self.low_bits);
            }
        }
        (high << self.low_bits) | low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rows: u64, batch: u64, order: SamplingOrder) -> RowDraws {
        RowDraws::new(rows, batch, order, 7)
    }

    #[test]
    fn a_shuffled_epoch_draws_distinct_rows_and_each_epoch_a_new_order() {
        for rows in [1u64, 2, 3, 5, 16, 17, 64, 1797] {
            for batch in [1u64, 2, 3, 32, 64] {
                if batch > rows {
                    continue;
                }
                let d = draws(rows, batch, SamplingOrder::Shuffle);
                let per_epoch = d.batches_per_epoch();
                let mut epochs = Vec::new();
                for epoch in 0..3 {
                    let mut seen = vec![false; rows as usize];
                    let mut order = Vec::new();
                    let mut out = vec![0u32; batch as usize];
                    for step in epoch * per_epoch..(epoch + 1) * per_epoch {
                        d.draw(4, step, &mut out);
                        for &row in &out {
                            assert!((row as u64) < rows);
                            assert!(!seen[row as usize], "row {row} twice in an epoch");
                            seen[row as usize] = true;
                            order.push(row);
                        }
                    }
                    assert_eq!(order.len() as u64, per_epoch * batch);
                    epochs.push(order);
                }
                if rows >= 16 {
                    assert_ne!(epochs[0], epochs[1], "rows {rows}, batch {batch}");
                }
            }
        }
    }

    #[test]
    fn the_permutation_is_a_bijection_of_the_rows() {
        for n in [1u64, 2, 3, 4, 5, 63, 64, 65, 1000, 4097] {
            let p = Permutation::new(n, 99);
            let mut hit = vec![false; n as usize];
            for i in 0..n {
                let j = p.apply(i);
                assert!(j < n && !hit[j as usize], "n = {n}");
                hit[j as usize] = true;
            }
        }
    }

    #[test]
    fn draws_depend_on_seed_box_and_step_only() {
        for order in [SamplingOrder::Shuffle, SamplingOrder::Replace] {
            let d = draws(1797, 32, order);
            let (mut a, mut b) = (vec![0u32; 32], vec![0u32; 32]);
            d.draw(3, 100, &mut a);
            // Other draws in between change nothing.
            d.draw(5, 7, &mut b);
            d.draw(3, 100, &mut b);
            assert_eq!(a, b);
            d.draw(4, 100, &mut b);
            assert_ne!(a, b, "another box, other rows");
            d.draw(3, 101, &mut b);
            assert_ne!(a, b, "another step, other rows");
            RowDraws::new(1797, 32, order, 8).draw(3, 100, &mut b);
            assert_ne!(a, b, "another seed, other rows");
        }
    }

    #[test]
    fn every_row_is_drawn_about_equally_often() {
        // 10 rows, 20,000 draws of 3: each row expected 6,000 times (shuffle: 3 batches
        // of 3 per epoch, so each epoch leaves out one row, a different one each time).
        for order in [SamplingOrder::Replace, SamplingOrder::Shuffle] {
            let expected = 6000.0;
            let d = draws(10, 3, order);
            let mut counts = [0u32; 10];
            let mut out = [0u32; 3];
            for step in 0..20_000 {
                d.draw(1, step, &mut out);
                for &r in &out {
                    counts[r as usize] += 1;
                }
            }
            // Chi-square with 9 degrees of freedom: above 40 has probability < 1e-5.
            let chi: f64 = counts
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            assert!(chi < 40.0, "{order:?}: {counts:?} (chi-square {chi})");
        }
    }

    #[test]
    fn the_permutations_of_different_keys_look_independent_and_uniform() {
        // Where the first two positions of a shuffled epoch land, over 48,000 keys: every
        // ordered pair of distinct rows of 16 (240 cells, 200 expected each), and, for 1,000
        // rows (a walked domain), the first position in 100 bins of 10 rows.
        let pairs = {
            let mut counts = vec![0u32; 256];
            for epoch in 0..48_000u64 {
                let p = Permutation::new(16, key(&[7, 1, epoch, SHUFFLE]));
                counts[(p.apply(0) * 16 + p.apply(1)) as usize] += 1;
            }
            counts
        };
        let chi = |counts: &[u32], expected: f64| -> f64 {
            counts
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum()
        };
        let distinct: Vec<u32> = (0..256)
            .filter(|c| c / 16 != c % 16)
            .map(|c| pairs[c])
            .collect();
        assert!((0..16).all(|r| pairs[r * 16 + r] == 0), "a row twice");
        // 239 degrees of freedom: above 239 + 6 sqrt(2 * 239) = 370 has probability < 1e-5.
        let pair_chi = chi(&distinct, 200.0);
        assert!(pair_chi < 370.0, "pairs: chi-square {pair_chi}");
        let mut bins = vec![0u32; 100];
        for epoch in 0..48_000u64 {
            let p = Permutation::new(1000, key(&[3, 2, epoch, SHUFFLE]));
            bins[(p.apply(0) / 10) as usize] += 1;
        }
        // 99 degrees of freedom: above 99 + 6 sqrt(2 * 99) = 184 has probability < 1e-5.
        let first_chi = chi(&bins, 480.0);
        assert!(first_chi < 184.0, "first position: chi-square {first_chi}");
    }

    #[test]
    fn rows_drawn_four_at_a_time_are_the_rows_drawn_one_at_a_time() {
        for rows in [2u64, 5, 16, 100, 1797] {
            let p = Permutation::new(rows, key(&[5, 6, 7, SHUFFLE]));
            for start in 0..rows.saturating_sub(LANES as u64) {
                let lanes = p.apply_lanes(std::array::from_fn(|l| start + l as u64));
                let one: Vec<u64> = (0..LANES as u64).map(|l| p.apply(start + l)).collect();
                assert_eq!(lanes.to_vec(), one, "rows {rows}, start {start}");
            }
        }
    }

    #[test]
    fn uniform_below_rejects_the_biased_products() {
        // n = 3 on a stream that starts with a product in the biased zone (low word below
        // 2^64 mod 3 = 1): the zero word gives product 0, rejected; then u64::MAX.
        let mut words = [0u64, u64::MAX].into_iter();
        assert_eq!(uniform_below(3, || words.next().unwrap()), 2);
    }

    #[test]
    fn epochs_count_passes_over_the_rows() {
        assert_eq!(draws(1797, 64, SamplingOrder::Shuffle).epochs(1797), 64.0);
        assert_eq!(draws(100, 10, SamplingOrder::Replace).epochs(25), 2.5);
    }
}
