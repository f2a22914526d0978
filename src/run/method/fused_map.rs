//! Element-wise maps of several vectors to several vectors, for the update rules that read
//! and write more than one vector per coordinate (`nesterov`, `agd`, `adam`): four coordinates at a
//! time, every input read before any output is stored (so the loop vectorises although the
//! outputs come from raw pointers), optionally with non-temporal stores. The values written
//! are the same either way; only the stores differ.

/// `outputs[o][j] = f([inputs[0][j], inputs[1][j], ...])[o]` for `j < outputs[0].len()`.
///
/// With `stream` (the iterate is beyond the caches, [`super::Block::stream`]), the outputs
/// are written with non-temporal stores where they can be (x86-64, every output with the
/// same 16-byte alignment phase); otherwise with plain stores.
///
/// # Panics
/// If an input or output is shorter than `outputs[0]`.
///
/// On x86-64 processors with AVX the same loop runs compiled for AVX (four numbers per
/// instruction where SSE2 has two). The bits are the same: the arithmetic is IEEE addition,
/// multiplication, division and square root, correctly rounded at any vector width, and
/// nothing is fused (no FMA is enabled) or reordered. Adam's division and square root per
/// coordinate made its pass compute-bound: this halves it.
#[inline(always)]
pub(super) fn map_lanes<const I: usize, const O: usize>(
    outputs: [&mut [f64]; O],
    inputs: [&[f64]; I],
    stream: bool,
    f: impl Fn([f64; I]) -> [f64; O],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the processor has AVX (checked just above), the only requirement of a
        // `target_feature(enable = "avx")` function.
        unsafe { map_lanes_avx(outputs, inputs, stream, f) };
        return;
    }
    map_lanes_portable(outputs, inputs, stream, f);
}

/// [`map_lanes`] compiled for AVX.
///
/// # Safety
/// The processor must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn map_lanes_avx<const I: usize, const O: usize>(
    outputs: [&mut [f64]; O],
    inputs: [&[f64]; I],
    stream: bool,
    f: impl Fn([f64; I]) -> [f64; O],
) {
    map_lanes_portable(outputs, inputs, stream, f);
}

/// [`map_lanes`] for any processor (inlined into the AVX version, where it is compiled
/// with AVX).
#[inline(always)]
fn map_lanes_portable<const I: usize, const O: usize>(
    outputs: [&mut [f64]; O],
    inputs: [&[f64]; I],
    stream: bool,
    f: impl Fn([f64; I]) -> [f64; O],
) {
    let len = outputs.first().map_or(0, |o| o.len());
    let inputs: [&[f64]; I] = inputs.map(|v| &v[..len]);
    let mut outputs: [&mut [f64]; O] = outputs.map(|v| &mut v[..len]);
    #[cfg(target_arch = "x86_64")]
    if stream && same_alignment_phase(&outputs) {
        streaming(&mut outputs, &inputs, len, &f);
        return;
    }
    let _ = stream;
    let at = |j: usize| -> [f64; I] { std::array::from_fn(|i| inputs[i][j]) };
    let whole = len - len % 4;
    let mut j = 0;
    while j < whole {
        let results = [f(at(j)), f(at(j + 1)), f(at(j + 2)), f(at(j + 3))];
        for (o, output) in outputs.iter_mut().enumerate() {
            let lanes = [results[0][o], results[1][o], results[2][o], results[3][o]];
            output[j..j + 4].copy_from_slice(&lanes);
        }
        j += 4;
    }
    while j < len {
        let result = f(at(j));
        for (o, output) in outputs.iter_mut().enumerate() {
            output[j] = result[o];
        }
        j += 1;
    }
}

/// Whether every output starts at the same offset from a 16-byte boundary.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn same_alignment_phase<const O: usize>(outputs: &[&mut [f64]; O]) -> bool {
    let phase = |o: &[f64]| o.as_ptr() as usize % 16;
    outputs.iter().all(|o| phase(o) == phase(outputs[0]))
}

/// [`map_lanes`] with non-temporal stores, two numbers per store; a fence at the end orders
/// the stores before anything that follows (such as handing the vectors to another thread).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn streaming<const I: usize, const O: usize>(
    outputs: &mut [&mut [f64]; O],
    inputs: &[&[f64]; I],
    len: usize,
    f: &impl Fn([f64; I]) -> [f64; O],
) {
    use std::arch::x86_64::{_mm_set_pd, _mm_sfence, _mm_stream_pd};
    let at = |j: usize| -> [f64; I] { std::array::from_fn(|i| inputs[i][j]) };
    let mut j = 0;
    // Up to a 16-byte boundary (the same for every output), then two numbers per store.
    while j < len && (outputs[0][j..].as_ptr() as usize) % 16 != 0 {
        let result = f(at(j));
        for (o, output) in outputs.iter_mut().enumerate() {
            output[j] = result[o];
        }
        j += 1;
    }
    while j + 2 <= len {
        let (low, high) = (f(at(j)), f(at(j + 1)));
        for (o, output) in outputs.iter_mut().enumerate() {
            // SAFETY: `output[j..j + 2]` is in bounds (`j + 2 <= len`, and the slicing checks
            // it again) and 16-byte aligned (the loop above, and every output has the same
            // phase); SSE2 is part of x86-64.
            unsafe { _mm_stream_pd(output[j..j + 2].as_mut_ptr(), _mm_set_pd(high[o], low[o])) };
        }
        j += 2;
    }
    if j < len {
        let result = f(at(j));
        for (o, output) in outputs.iter_mut().enumerate() {
            output[j] = result[o];
        }
    }
    // SAFETY: SSE is part of x86-64; the fence has no memory-safety precondition.
    unsafe { _mm_sfence() };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn streaming_stores_write_what_plain_stores_write_and_the_map_is_pointwise() {
        let a: Vec<f64> = (0..37).map(|i| (i as f64 * 0.7).sin()).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64 * 1.3).cos()).collect();
        let f = |[x, y]: [f64; 2]| [x - 0.1 * y, x * y + 1.0, y / 3.0];
        // Every start offset (so both alignments, and outputs of different phases) and
        // every parity of the length.
        for start in 0..3 {
            for other in 0..2 {
                for end in [start, start + 1, 30, 37] {
                    let mut plain = [vec![f64::NAN; 38], vec![f64::NAN; 38], vec![f64::NAN; 38]];
                    let mut streamed = plain.clone();
                    let run = |out: &mut [Vec<f64>; 3], stream: bool| {
                        let [p, q, r] = out;
                        let n = end - start;
                        map_lanes(
                            [
                                &mut p[start..end],
                                &mut q[other..other + n],
                                &mut r[start..end],
                            ],
                            [&a[start..], &b[start..]],
                            stream,
                            f,
                        );
                    };
                    run(&mut plain, false);
                    run(&mut streamed, true);
                    for o in 0..3 {
                        assert_eq!(bits(&plain[o]), bits(&streamed[o]), "{start}..{end}");
                    }
                    for j in start..end {
                        let expected = f([a[j], b[j]]);
                        assert_eq!(plain[0][j].to_bits(), expected[0].to_bits());
                        assert_eq!(plain[1][other + j - start].to_bits(), expected[1].to_bits());
                        assert_eq!(plain[2][j].to_bits(), expected[2].to_bits());
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx_loop_gives_the_portable_bits() {
        if !std::arch::is_x86_feature_detected!("avx") {
            return;
        }
        // Adam's arithmetic (division, square root) on values of every magnitude,
        // subnormals, zeros and infinities included.
        let n = 1001;
        let value = |i: usize, salt: f64| {
            let t = (i as f64 * 0.37 + salt).sin();
            match i % 7 {
                0 => t * 1e-310,
                1 => t * 1e300,
                2 => 0.0,
                3 => f64::INFINITY * t.signum(),
                _ => t * 10f64.powi((i % 40) as i32 - 20),
            }
        };
        let (x, m, s, g): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = (
            (0..n).map(|i| value(i, 0.1)).collect(),
            (0..n).map(|i| value(i, 0.2)).collect(),
            (0..n).map(|i| value(i, 0.3).abs()).collect(),
            (0..n).map(|i| value(i, 0.4)).collect(),
        );
        let f = |[x, m, s, g]: [f64; 4]| {
            let m = 0.9 * m + (1.0 - 0.9) * g;
            let s = 0.999 * s + (1.0 - 0.999) * (g * g);
            [x - 1e-3 * (m * 1.7) / ((s * 3.1).sqrt() + 1e-8), m, s]
        };
        for stream in [false, true] {
            let mut portable = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
            let mut avx = portable.clone();
            {
                let [a, b, c] = &mut portable;
                map_lanes_portable([a, b, c], [&x, &m, &s, &g], stream, f);
            }
            {
                let [a, b, c] = &mut avx;
                // SAFETY: AVX is present (checked above).
                unsafe { map_lanes_avx([a, b, c], [&x, &m, &s, &g], stream, f) };
            }
            for o in 0..3 {
                assert_eq!(bits(&portable[o]), bits(&avx[o]), "output {o}");
            }
        }
    }
}
