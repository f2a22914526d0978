//! Lane helpers of the hot loops: bit sets over slots, sums in a fixed order, and
//! element-wise maps written four entries at a time (so that they vectorise through raw
//! pointers) or with non-temporal stores.

pub(crate) fn bit(bits: &[u64], i: usize) -> bool {
    (bits[i >> 6] >> (i & 63)) & 1 != 0
}

pub(crate) fn set_bit(bits: &mut [u64], i: usize) {
    bits[i >> 6] |= 1 << (i & 63);
}

/// `Some(b)` when bits `start..start + len` all equal `b`; `None` when they are mixed.
pub(crate) fn bits_uniform(bits: &[u64], start: usize, len: usize) -> Option<bool> {
    if len == 0 {
        return Some(false);
    }
    let value = bit(bits, start);
    let mut i = start;
    let end = start + len;
    while i < end {
        if i & 63 == 0 && i + 64 <= end {
            let word = bits[i >> 6];
            if word != if value { u64::MAX } else { 0 } {
                return None;
            }
            i += 64;
        } else {
            if bit(bits, i) != value {
                return None;
            }
            i += 1;
        }
    }
    Some(value)
}

/// The sum of squares in a fixed order (eight interleaved partial sums, as
/// [`fixed_order_sum`]).
#[cfg(test)]
pub(crate) fn sum_of_squares(values: &[f64]) -> f64 {
    fixed_order_fold(values, |v| v * v)
}

/// A sum in a fixed order that does not depend on the backend: eight interleaved partial
/// sums, added pairwise at the end (faster than one dependent chain, same bits every run).
#[cfg(test)]
pub(crate) fn fixed_order_sum(values: &[f64]) -> f64 {
    fixed_order_fold(values, |v| v)
}

/// The sum of `term(v)` over `values` in eight interleaved lanes, added pairwise at the end.
#[inline(always)]
pub(crate) fn fixed_order_fold(values: &[f64], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += term(v);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// [`fixed_order_fold`] of `term(j)` for `j` in `0..len` (terms that read several vectors,
/// such as a dot product's `a[j] * b[j]`): the same lanes and order, so the same bits as
/// `fixed_order_fold` over the terms written out.
#[inline(always)]
pub(crate) fn fixed_order_fold_indexed(len: usize, term: impl Fn(usize) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let full = len - len % 8;
    let mut j = 0;
    while j < full {
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane += term(j + k);
        }
        j += 8;
    }
    for (k, lane) in lanes.iter_mut().enumerate().take(len - full) {
        *lane += term(full + k);
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// `target[j] = base + contributions[j]` where `base` is `0.0` (`first`: the coordinate's
/// first contribution) or `target[j]`. Four entries at a time, each group read before it
/// is written, so that the loop vectorises even though `target` may come from a raw
/// pointer.
#[inline(always)]
pub(crate) fn add_slices(target: &mut [f64], contributions: &[f64], first: bool) {
    let len = target.len().min(contributions.len());
    let (target, contributions) = (&mut target[..len], &contributions[..len]);
    let mut targets = target.chunks_exact_mut(4);
    let mut sources = contributions.chunks_exact(4);
    for (t, c) in (&mut targets).zip(&mut sources) {
        let c = [c[0], c[1], c[2], c[3]];
        let base = if first {
            [0.0; 4]
        } else {
            [t[0], t[1], t[2], t[3]]
        };
        let sum = [
            base[0] + c[0],
            base[1] + c[1],
            base[2] + c[2],
            base[3] + c[3],
        ];
        t.copy_from_slice(&sum);
    }
    for (t, &c) in targets.into_remainder().iter_mut().zip(sources.remainder()) {
        let base = if first { 0.0 } else { *t };
        *t = base + c;
    }
}

/// `out[j] = f(a[j], b[j])`, four entries at a time: all four values are computed (their
/// inputs read) before any is stored, so that the loop vectorises even when `out` comes
/// from a raw pointer that might alias the inputs as far as the compiler knows.
#[inline(always)]
pub(crate) fn map2_lanes(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) {
    let len = out.len();
    let (a, b) = (&a[..len], &b[..len]);
    let mut outs = out.chunks_exact_mut(4);
    let mut lhs = a.chunks_exact(4);
    let mut rhs = b.chunks_exact(4);
    for ((o, x), y) in (&mut outs).zip(&mut lhs).zip(&mut rhs) {
        let values = [f(x[0], y[0]), f(x[1], y[1]), f(x[2], y[2]), f(x[3], y[3])];
        o.copy_from_slice(&values);
    }
    for ((o, &x), &y) in outs
        .into_remainder()
        .iter_mut()
        .zip(lhs.remainder())
        .zip(rhs.remainder())
    {
        *o = f(x, y);
    }
}

/// From this many coordinates on, gradient descent writes the proposed iterate with
/// non-temporal (streaming) stores: the iterate buffers then exceed the caches, and a
/// normal store would first read each line of the proposal from memory only to overwrite
/// it. Smaller problems keep the proposal in cache for the next step. The values written
/// are the same either way.
pub(crate) const STREAM_FROM: usize = 1 << 19;

/// [`map2_lanes`] with non-temporal stores (x86-64; elsewhere the same as [`map2_lanes`]).
/// The same values; a fence at the end orders the stores before anything that follows
/// (such as handing the iterate to another thread).
#[inline(always)]
pub(crate) fn map2_streaming(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_set_pd, _mm_sfence, _mm_stream_pd};
        let len = out.len();
        let (a, b) = (&a[..len], &b[..len]);
        let mut j = 0;
        // Up to a 16-byte boundary, then two numbers per store.
        while j < len && (out[j..].as_ptr() as usize) % 16 != 0 {
            out[j] = f(a[j], b[j]);
            j += 1;
        }
        while j + 2 <= len {
            let (low, high) = (f(a[j], b[j]), f(a[j + 1], b[j + 1]));
            // SAFETY: `out[j..j + 2]` is in bounds (`j + 2 <= len`, and the slicing checks it
            // again) and 16-byte aligned (the loop above); SSE2 is part of x86-64.
            unsafe { _mm_stream_pd(out[j..j + 2].as_mut_ptr(), _mm_set_pd(high, low)) };
            j += 2;
        }
        if j < len {
            out[j] = f(a[j], b[j]);
        }
        // SAFETY: SSE is part of x86-64; the fence has no memory-safety precondition.
        unsafe { _mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    map2_lanes(out, a, b, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn streaming_stores_write_what_plain_stores_write() {
        let a: Vec<f64> = (0..37).map(|i| (i as f64 * 0.7).sin()).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64 * 1.3).cos()).collect();
        let update = |z: f64, g: f64| z - 0.1 * g;
        // Every start offset (so both alignments) and every parity of the length.
        for start in 0..3 {
            for end in [start, start + 1, 30, 37] {
                let mut plain = vec![f64::NAN; 37];
                let mut streamed = vec![f64::NAN; 37];
                map2_lanes(&mut plain[start..end], &a[start..], &b[start..], update);
                map2_streaming(&mut streamed[start..end], &a[start..], &b[start..], update);
                assert_eq!(bits(&plain), bits(&streamed), "{start}..{end}");
            }
        }
    }

    #[test]
    fn uniform_bit_ranges_are_recognised() {
        let mut bits = vec![0u64; 4];
        for i in 10..200 {
            set_bit(&mut bits, i);
        }
        assert_eq!(bits_uniform(&bits, 10, 190), Some(true));
        assert_eq!(bits_uniform(&bits, 64, 64), Some(true));
        assert_eq!(bits_uniform(&bits, 0, 10), Some(false));
        assert_eq!(bits_uniform(&bits, 5, 10), None);
        assert_eq!(bits_uniform(&bits, 150, 100), None);
        assert_eq!(bits_uniform(&bits, 200, 56), Some(false));
    }

    #[test]
    fn fixed_order_sums_are_exact_on_small_integers() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(fixed_order_sum(&values), 500500.0);
        assert_eq!(sum_of_squares(&[3.0, 4.0]), 25.0);
        assert_eq!(fixed_order_sum(&[]), 0.0);
    }

    #[test]
    fn the_indexed_fold_sums_in_the_order_of_the_fold() {
        let a: Vec<f64> = (0..53).map(|i| (i as f64 * 0.7).sin() * 1e3).collect();
        let b: Vec<f64> = (0..53).map(|i| (i as f64 * 1.3).cos() / 7.0).collect();
        for len in [0, 1, 7, 8, 9, 16, 53] {
            let terms: Vec<f64> = (0..len).map(|j| a[j] * b[j]).collect();
            let indexed = fixed_order_fold_indexed(len, |j| a[j] * b[j]);
            assert_eq!(
                indexed.to_bits(),
                fixed_order_fold(&terms, |v| v).to_bits(),
                "{len}"
            );
        }
    }
}
