//! Elementwise formulas and the loops that apply them.
//!
//! Every scalar formula (value and derivative) is written once here and used by both the
//! single-objective plan and the batched kernel, so the two give bit-identical results.

/// An elementwise function after compilation: the language's functions plus the
/// specialisations the compiler introduces for constant exponents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Elementwise {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Sin,
    Cos,
    /// `x^2` computed as `x * x`.
    Square,
    /// `x^n` for an integer constant `n`.
    Powi(i32),
    /// `x^c` for a non-integer constant `c`.
    Powf(f64),
}

/// Logistic sigmoid without overflow for large `|x|`.
#[inline(always)]
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Odd Taylor coefficients of tanh (x, x^3, ..., x^23), for |x| < [`TANH_SERIES_LIMIT`].
#[allow(clippy::excessive_precision)] // generated exactly, rounded by the compiler
const TANH_SERIES: [f64; 12] = [
    1.0,
    -3.333_333_333_333_333_15e-1,
    1.333_333_333_333_333_31e-1,
    -5.396_825_396_825_397_08e-2,
    2.186_948_853_615_520_30e-2,
    -8.863_235_529_902_197_33e-3,
    3.592_128_036_572_481_14e-3,
    -1.455_834_387_051_318_33e-3,
    5.900_274_409_455_859_47e-4,
    -2.391_291_142_435_524_78e-4,
    9.691_537_956_929_450_95e-5,
    -3.927_832_388_331_683_27e-5,
];
/// 1/k! for k = 1..=13 (the Taylor polynomial of exp on |r| <= ln2 / 2).
#[allow(clippy::excessive_precision)]
const EXP_SERIES: [f64; 13] = [
    1.00000000000000000e+00,
    5.00000000000000000e-01,
    1.66666666666666657e-01,
    4.16666666666666644e-02,
    8.33333333333333322e-03,
    1.38888888888888894e-03,
    1.98412698412698413e-04,
    2.48015873015873016e-05,
    2.75573192239858925e-06,
    2.75573192239858883e-07,
    2.50521083854417202e-08,
    2.08767569878681002e-09,
    1.60590438368216133e-10,
];
/// Below this |x| the series is used (its truncation error is below 1e-18 there).
const TANH_SERIES_LIMIT: f64 = 0.25;

/// tanh to within three ulps (tested against libm), written without branches or calls so
/// that the compiler vectorises loops over it (libm's scalar `tanh` takes more than half of a
/// naive W1 step); NaN stays NaN. Small |x|: the Taylor series; otherwise
/// `(e - 1) / (e + 1)` with `e = exp(2|x|)` (Cody-Waite reduction, degree-13 Taylor
/// polynomial, exponent by bit manipulation).
///
/// ```
/// assert!((catopt::numerics::tanh(0.5) - 0.5f64.tanh()).abs() < 1e-15);
/// assert_eq!(catopt::numerics::tanh(-30.0), -1.0);
/// ```
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let magnitude = x.abs().min(19.5); // tanh(19.5) rounds to 1
                                       // Series branch.
    let square = magnitude * magnitude;
    let mut series = TANH_SERIES[11];
    for &c in TANH_SERIES[..11].iter().rev() {
        series = series * square + c;
    }
    let series = series * magnitude;
    // Exponential branch: e = exp(y), y = 2|x| in [0, 39].
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f64 = 6.931_471_803_691_238_16e-1;
    #[allow(clippy::excessive_precision)]
    const LN2_LO: f64 = 1.908_214_929_270_587_70e-10;
    const SHIFTER: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: rounds to an integer
    let y = 2.0 * magnitude;
    let shifted = y * std::f64::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = (y - n * LN2_HI) - n * LN2_LO; // |r| <= ln2 / 2
    let mut p = EXP_SERIES[12];
    for &c in EXP_SERIES[..12].iter().rev() {
        p = p * r + c;
    }
    let exp_r = p * r + 1.0;
    let scale = f64::from_bits(((shifted.to_bits() & 0xfff) + 1023) << 52);
    let e = exp_r * scale;
    let large = (e - 1.0) / (e + 1.0);
    let value = if magnitude < TANH_SERIES_LIMIT {
        series
    } else {
        large
    };
    // `min` above turned a NaN into 19.5: give NaN back (a select, so loops still vectorise).
    if x.is_nan() {
        x
    } else {
        value.copysign(x)
    }
}

/// `out[i] = tanh(a[i])` with [`tanh`], compiled for AVX2 when the CPU has it (the same
/// bits either way: no fused multiply-add is used).
fn tanh_slice(a: &[f64], out: &mut [f64]) {
    #[inline(always)]
    fn body(a: &[f64], out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(a) {
            *o = tanh(x);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU supports AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(a: &[f64], out: &mut [f64]) {
            body(a, out)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(a, out) };
        }
    }
    body(a, out)
}

/// `log(1 + exp(x))` without overflow for large `x` and without losing precision for very
/// negative `x`.
#[inline(always)]
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

impl Elementwise {
    /// The value `f(a)`.
    #[inline(always)]
    pub(crate) fn value(self, a: f64) -> f64 {
        match self {
            Elementwise::Neg => -a,
            Elementwise::Exp => a.exp(),
            Elementwise::Log => a.ln(),
            Elementwise::Sqrt => a.sqrt(),
            Elementwise::Abs => a.abs(),
            Elementwise::Tanh => tanh(a),
            Elementwise::Sigmoid => sigmoid(a),
            Elementwise::Relu => {
                if a > 0.0 {
                    a
                } else {
                    0.0
                }
            }
            Elementwise::Softplus => softplus(a),
            Elementwise::Sin => a.sin(),
            Elementwise::Cos => a.cos(),
            Elementwise::Square => a * a,
            Elementwise::Powi(n) => a.powi(n),
            Elementwise::Powf(c) => a.powf(c),
        }
    }

    /// The contribution `g * f'(a)` to the argument's adjoint, given the argument `a`, the
    /// value `out = f(a)` and the output adjoint `g`.
    #[inline(always)]
    pub(crate) fn vjp(self, a: f64, out: f64, g: f64) -> f64 {
        match self {
            Elementwise::Neg => -g,
            Elementwise::Exp => g * out,
            Elementwise::Log => g / a,
            Elementwise::Sqrt => g / (2.0 * out),
            Elementwise::Abs => {
                if a > 0.0 {
                    g
                } else if a < 0.0 {
                    -g
                } else {
                    0.0
                }
            }
            Elementwise::Tanh => g * (1.0 - out * out),
            Elementwise::Sigmoid => g * (out * (1.0 - out)),
            Elementwise::Relu => {
                if a > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            Elementwise::Softplus => g * sigmoid(a),
            Elementwise::Sin => g * a.cos(),
            Elementwise::Cos => -(g * a.sin()),
            Elementwise::Square => g * (2.0 * a),
            // As in JAX: the derivative of x^0 is 0, even at x = 0.
            Elementwise::Powi(0) => 0.0,
            Elementwise::Powi(n) => g * (f64::from(n) * a.powi(n - 1)),
            Elementwise::Powf(c) => g * (c * a.powf(c - 1.0)),
        }
    }
}

/// An elementwise arithmetic operation of two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// `max(a, b)`: NaN propagates; on a tie each operand gets half the adjoint.
    Max,
    /// `min(a, b)`: NaN propagates; on a tie each operand gets half the adjoint.
    Min,
}

/// `max(a, b)` with NaN propagating (`f64::max` would drop it).
#[inline(always)]
fn max_nan(a: f64, b: f64) -> f64 {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// `min(a, b)` with NaN propagating.
#[inline(always)]
fn min_nan(a: f64, b: f64) -> f64 {
    if a < b || a.is_nan() {
        a
    } else {
        b
    }
}

/// The share of the adjoint that goes to the operand `mine` of `max`/`min` whose other
/// operand is `other`, given `wins` (it is strictly larger, resp. smaller): all of it when it
/// wins, half on a tie, nothing otherwise (and nothing when either is NaN).
#[inline(always)]
fn select_share(wins: bool, mine: f64, other: f64, g: f64) -> f64 {
    if wins {
        g
    } else if mine == other {
        0.5 * g
    } else {
        0.0
    }
}

impl Arith {
    #[inline(always)]
    pub(crate) fn value(self, a: f64, b: f64) -> f64 {
        match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
            Arith::Pow => a.powf(b),
            Arith::Max => max_nan(a, b),
            Arith::Min => min_nan(a, b),
        }
    }

    /// Contribution to the left operand's adjoint.
    #[inline(always)]
    pub(crate) fn vjp_lhs(self, a: f64, b: f64, out: f64, g: f64) -> f64 {
        let _ = out;
        match self {
            Arith::Add | Arith::Sub => g,
            Arith::Mul => g * b,
            Arith::Div => g / b,
            // As in JAX: the derivative of x^0 with respect to x is 0, even at x = 0.
            Arith::Pow => {
                if b == 0.0 {
                    0.0
                } else {
                    g * (b * a.powf(b - 1.0))
                }
            }
            Arith::Max => select_share(a > b, a, b, g),
            Arith::Min => select_share(a < b, a, b, g),
        }
    }

    /// Contribution to the right operand's adjoint.
    #[inline(always)]
    pub(crate) fn vjp_rhs(self, a: f64, b: f64, out: f64, g: f64) -> f64 {
        match self {
            Arith::Add => g,
            Arith::Sub => -g,
            Arith::Mul => g * a,
            Arith::Div => -(g * out / b),
            // As in JAX, log(x) is taken as 0 at x = 0 (the exponent's derivative there).
            Arith::Pow => {
                if a == 0.0 {
                    0.0
                } else {
                    g * (out * a.ln())
                }
            }
            Arith::Max => select_share(b > a, b, a, g),
            Arith::Min => select_share(b < a, b, a, g),
        }
    }
}

/// One operand of an elementwise loop: a slice as long as the loop, or one splatted value.
#[derive(Clone, Copy)]
pub(crate) enum Src<'a> {
    Slice(&'a [f64]),
    Splat(f64),
}

impl Src<'_> {
    #[inline(always)]
    fn sub(self, start: usize, len: usize) -> Self {
        match self {
            Src::Slice(s) => Src::Slice(&s[start..start + len]),
            splat => splat,
        }
    }
}

/// Writes or accumulates `f(i)` into `out[i]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the range loop is the point (see below)
fn store(out: &mut [f64], accumulate: bool, f: impl Fn(usize) -> f64) {
    // Indexed by a range over `out.len()` (not `enumerate`), so that the compiler sees the
    // bound that the callers' operands share and drops their bounds checks: the whole
    // loop vectorises instead of leaving a scalar tail.
    let n = out.len();
    if accumulate {
        for i in 0..n {
            out[i] += f(i);
        }
    } else {
        for i in 0..n {
            out[i] = f(i);
        }
    }
}

/// `out = f(a)` elementwise.
#[inline(always)]
pub(crate) fn unary_forward(op: Elementwise, a: &[f64], out: &mut [f64]) {
    let a = &a[..out.len()];
    macro_rules! go {
        ($op:expr) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = $op.value(x);
            }
        };
    }
    // One monomorphic loop per function so that the cheap ones vectorise.
    match op {
        Elementwise::Neg => go!(Elementwise::Neg),
        Elementwise::Square => go!(Elementwise::Square),
        Elementwise::Relu => go!(Elementwise::Relu),
        Elementwise::Abs => go!(Elementwise::Abs),
        Elementwise::Tanh => tanh_slice(a, out),
        other => go!(other),
    }
}

/// `adjoint_a (+)= g * f'(a)` elementwise.
#[inline(always)]
pub(crate) fn unary_backward(
    op: Elementwise,
    a: &[f64],
    out: &[f64],
    g: &[f64],
    adjoint: &mut [f64],
    accumulate: bool,
) {
    let n = adjoint.len();
    let (a, out, g) = (&a[..n], &out[..n], &g[..n]);
    macro_rules! go {
        ($op:expr) => {
            store(adjoint, accumulate, |i| $op.vjp(a[i], out[i], g[i]))
        };
    }
    match op {
        Elementwise::Neg => go!(Elementwise::Neg),
        Elementwise::Square => go!(Elementwise::Square),
        Elementwise::Tanh => go!(Elementwise::Tanh),
        Elementwise::Relu => go!(Elementwise::Relu),
        other => go!(other),
    }
}

/// `out = a (op) b` elementwise; `a` and `b` are as long as `out` or splatted.
#[inline(always)]
pub(crate) fn binary_forward(op: Arith, a: Src, b: Src, out: &mut [f64]) {
    let n = out.len();
    macro_rules! go {
        ($op:expr) => {
            match (a, b) {
                (Src::Slice(a), Src::Slice(b)) => {
                    let (a, b) = (&a[..n], &b[..n]);
                    for i in 0..n {
                        out[i] = $op.value(a[i], b[i]);
                    }
                }
                (Src::Slice(a), Src::Splat(b)) => {
                    let a = &a[..n];
                    for i in 0..n {
                        out[i] = $op.value(a[i], b);
                    }
                }
                (Src::Splat(a), Src::Slice(b)) => {
                    let b = &b[..n];
                    for i in 0..n {
                        out[i] = $op.value(a, b[i]);
                    }
                }
                (Src::Splat(a), Src::Splat(b)) => {
                    for o in out.iter_mut() {
                        *o = $op.value(a, b);
                    }
                }
            }
        };
    }
    match op {
        Arith::Add => go!(Arith::Add),
        Arith::Sub => go!(Arith::Sub),
        Arith::Mul => go!(Arith::Mul),
        Arith::Div => go!(Arith::Div),
        Arith::Pow => go!(Arith::Pow),
        Arith::Max => go!(Arith::Max),
        Arith::Min => go!(Arith::Min),
    }
}

/// Which operand of a binary operation an adjoint belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Side {
    Lhs,
    Rhs,
}

/// The per-element contribution of a binary operation to one operand's adjoint, over a
/// loop of `n` elements (operands as long as the loop or splatted; `out` and `g` as long).
#[inline(always)]
fn binary_contribution(
    op: Arith,
    side: Side,
    a: Src,
    b: Src,
    out: &[f64],
    g: &[f64],
    i: usize,
) -> f64 {
    let av = match a {
        Src::Slice(s) => s[i],
        Src::Splat(v) => v,
    };
    let bv = match b {
        Src::Slice(s) => s[i],
        Src::Splat(v) => v,
    };
    match side {
        Side::Lhs => op.vjp_lhs(av, bv, out[i], g[i]),
        Side::Rhs => op.vjp_rhs(av, bv, out[i], g[i]),
    }
}

/// `adjoint (+)= contribution` for one operand whose value is as long as the loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn binary_backward_full(
    op: Arith,
    side: Side,
    a: Src,
    b: Src,
    out: &[f64],
    g: &[f64],
    adjoint: &mut [f64],
    accumulate: bool,
) {
    let n = adjoint.len();
    let (out, g) = (&out[..n], &g[..n]);
    // One monomorphic, bounds-check-free loop per operand layout, so that it vectorises.
    macro_rules! go {
        ($op:expr, $side:expr) => {{
            let f = |av: f64, bv: f64, o: f64, gi: f64| match $side {
                Side::Lhs => $op.vjp_lhs(av, bv, o, gi),
                Side::Rhs => $op.vjp_rhs(av, bv, o, gi),
            };
            match (a, b) {
                (Src::Slice(a), Src::Slice(b)) => {
                    let (a, b) = (&a[..n], &b[..n]);
                    store(adjoint, accumulate, |i| f(a[i], b[i], out[i], g[i]))
                }
                (Src::Slice(a), Src::Splat(b)) => {
                    let a = &a[..n];
                    store(adjoint, accumulate, |i| f(a[i], b, out[i], g[i]))
                }
                (Src::Splat(a), Src::Slice(b)) => {
                    let b = &b[..n];
                    store(adjoint, accumulate, |i| f(a, b[i], out[i], g[i]))
                }
                (Src::Splat(a), Src::Splat(b)) => {
                    store(adjoint, accumulate, |i| f(a, b, out[i], g[i]))
                }
            }
        }};
    }
    match (op, side) {
        (Arith::Add, _) => go!(Arith::Add, Side::Lhs),
        (Arith::Sub, Side::Lhs) => go!(Arith::Sub, Side::Lhs),
        (Arith::Sub, Side::Rhs) => go!(Arith::Sub, Side::Rhs),
        (Arith::Mul, Side::Lhs) => go!(Arith::Mul, Side::Lhs),
        (Arith::Mul, Side::Rhs) => go!(Arith::Mul, Side::Rhs),
        (Arith::Div, Side::Lhs) => go!(Arith::Div, Side::Lhs),
        (Arith::Div, Side::Rhs) => go!(Arith::Div, Side::Rhs),
        (Arith::Pow, side) => go!(Arith::Pow, side),
        (Arith::Max, Side::Lhs) => go!(Arith::Max, Side::Lhs),
        (Arith::Max, Side::Rhs) => go!(Arith::Max, Side::Rhs),
        (Arith::Min, Side::Lhs) => go!(Arith::Min, Side::Lhs),
        (Arith::Min, Side::Rhs) => go!(Arith::Min, Side::Rhs),
    }
}

/// Both operands' adjoints of an elementwise operation in one loop (they must be distinct
/// buffers, each as long as the loop). Each entry gets exactly what
/// [`binary_backward_full`] would give it.
#[inline(always)]
pub(crate) fn binary_backward_both(
    op: Arith,
    a: Src,
    b: Src,
    out: &[f64],
    g: &[f64],
    (adj_a, acc_a): (&mut [f64], bool),
    (adj_b, acc_b): (&mut [f64], bool),
) {
    let n = adj_a.len();
    let (out, g, adj_b) = (&out[..n], &g[..n], &mut adj_b[..n]);
    macro_rules! go {
        ($op:expr, $acc_a:expr, $acc_b:expr) => {{
            let at = |i: usize| match a {
                Src::Slice(s) => s[i],
                Src::Splat(v) => v,
            };
            let bt = |i: usize| match b {
                Src::Slice(s) => s[i],
                Src::Splat(v) => v,
            };
            if let (Src::Slice(sa), Src::Slice(sb)) = (a, b) {
                let (sa, sb) = (&sa[..n], &sb[..n]);
                for i in 0..n {
                    let da = $op.vjp_lhs(sa[i], sb[i], out[i], g[i]);
                    let db = $op.vjp_rhs(sa[i], sb[i], out[i], g[i]);
                    adj_a[i] = if $acc_a { adj_a[i] + da } else { da };
                    adj_b[i] = if $acc_b { adj_b[i] + db } else { db };
                }
            } else {
                for i in 0..n {
                    let da = $op.vjp_lhs(at(i), bt(i), out[i], g[i]);
                    let db = $op.vjp_rhs(at(i), bt(i), out[i], g[i]);
                    adj_a[i] = if $acc_a { adj_a[i] + da } else { da };
                    adj_b[i] = if $acc_b { adj_b[i] + db } else { db };
                }
            }
        }};
    }
    macro_rules! modes {
        ($op:expr) => {
            match (acc_a, acc_b) {
                (false, false) => go!($op, false, false),
                (false, true) => go!($op, false, true),
                (true, false) => go!($op, true, false),
                (true, true) => go!($op, true, true),
            }
        };
    }
    match op {
        Arith::Add => modes!(Arith::Add),
        Arith::Sub => modes!(Arith::Sub),
        Arith::Mul => modes!(Arith::Mul),
        Arith::Div => modes!(Arith::Div),
        Arith::Pow => modes!(Arith::Pow),
        Arith::Max => modes!(Arith::Max),
        Arith::Min => modes!(Arith::Min),
    }
}

/// The sum of the contributions over a loop of `n` elements, added in index order: the
/// adjoint of an operand that was broadcast (a splatted scalar or one row).
#[inline]
pub(crate) fn binary_backward_sum(
    op: Arith,
    side: Side,
    a: Src,
    b: Src,
    out: &[f64],
    g: &[f64],
) -> f64 {
    let n = out.len();
    let mut total = binary_contribution(op, side, a, b, out, g, 0);
    for i in 1..n {
        total += binary_contribution(op, side, a, b, out, g, i);
    }
    total
}

/// How an operand of a broadcasting operation maps onto the output, seen as rows x cols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// Same shape as the output.
    Full,
    /// One row of `cols` entries, repeated for every row of the output.
    Row,
    /// One entry for the whole output.
    Scalar,
}

fn src_for_row<'a>(mode: Broadcast, data: Src<'a>, row: usize, cols: usize) -> Src<'a> {
    match (mode, data) {
        (Broadcast::Full, d) => d.sub(row * cols, cols),
        (Broadcast::Row, d) => d.sub(0, cols),
        (Broadcast::Scalar, Src::Slice(s)) => Src::Splat(s[0]),
        (Broadcast::Scalar, d) => d,
    }
}

/// Broadcasting elementwise forward over an output of `rows x cols`.
pub(crate) fn broadcast_forward(
    op: Arith,
    a: (Broadcast, Src),
    b: (Broadcast, Src),
    rows: usize,
    cols: usize,
    out: &mut [f64],
) {
    if a.0 == Broadcast::Row || b.0 == Broadcast::Row {
        for r in 0..rows {
            let sa = src_for_row(a.0, a.1, r, cols);
            let sb = src_for_row(b.0, b.1, r, cols);
            binary_forward(op, sa, sb, &mut out[r * cols..(r + 1) * cols]);
        }
    } else {
        let n = rows * cols;
        let sa = src_for_row(a.0, a.1, 0, n);
        let sb = src_for_row(b.0, b.1, 0, n);
        binary_forward(op, sa, sb, &mut out[..n]);
    }
}

/// Broadcasting elementwise backward: the contribution to one operand's adjoint; the
/// adjoint of a broadcast operand is the sum over the broadcast dimension (in row order).
#[allow(clippy::too_many_arguments)]
pub(crate) fn broadcast_backward(
    op: Arith,
    side: Side,
    a: (Broadcast, Src),
    b: (Broadcast, Src),
    rows: usize,
    cols: usize,
    out: &[f64],
    g: &[f64],
    adjoint: &mut [f64],
    accumulate: bool,
) {
    let mode = match side {
        Side::Lhs => a.0,
        Side::Rhs => b.0,
    };
    let row_wise = a.0 == Broadcast::Row || b.0 == Broadcast::Row;
    let (rows, cols) = if row_wise {
        (rows, cols)
    } else {
        (1, rows * cols)
    };
    match mode {
        Broadcast::Full => {
            for r in 0..rows {
                let sa = src_for_row(a.0, a.1, r, cols);
                let sb = src_for_row(b.0, b.1, r, cols);
                let span = r * cols..(r + 1) * cols;
                binary_backward_full(
                    op,
                    side,
                    sa,
                    sb,
                    &out[span.clone()],
                    &g[span.clone()],
                    &mut adjoint[span],
                    accumulate,
                );
            }
        }
        Broadcast::Row => {
            for r in 0..rows {
                let sa = src_for_row(a.0, a.1, r, cols);
                let sb = src_for_row(b.0, b.1, r, cols);
                let span = r * cols..(r + 1) * cols;
                binary_backward_full(
                    op,
                    side,
                    sa,
                    sb,
                    &out[span.clone()],
                    &g[span],
                    &mut adjoint[..cols],
                    accumulate || r > 0,
                );
            }
        }
        Broadcast::Scalar => {
            let mut total = 0.0;
            for r in 0..rows {
                let sa = src_for_row(a.0, a.1, r, cols);
                let sb = src_for_row(b.0, b.1, r, cols);
                let span = r * cols..(r + 1) * cols;
                let part = binary_backward_sum(op, side, sa, sb, &out[span.clone()], &g[span]);
                total = if r == 0 { part } else { total + part };
            }
            if accumulate {
                adjoint[0] += total;
            } else {
                adjoint[0] = total;
            }
        }
    }
}

/// Fills `out` (rows x cols) with `value` broadcast from `mode`.
pub(crate) fn broadcast_fill(
    mode: Broadcast,
    value: &[f64],
    rows: usize,
    cols: usize,
    out: &mut [f64],
) {
    match mode {
        Broadcast::Full => out[..rows * cols].copy_from_slice(&value[..rows * cols]),
        Broadcast::Row => {
            for row in out[..rows * cols].chunks_exact_mut(cols) {
                row.copy_from_slice(&value[..cols]);
            }
        }
        Broadcast::Scalar => out[..rows * cols].fill(value[0]),
    }
}

/// The adjoint of a broadcast: `adjoint (+)= g` summed over the broadcast dimensions
/// (rows in order).
pub(crate) fn broadcast_sum(
    mode: Broadcast,
    g: &[f64],
    rows: usize,
    cols: usize,
    adjoint: &mut [f64],
    accumulate: bool,
) {
    let g = &g[..rows * cols];
    match mode {
        Broadcast::Full => store(&mut adjoint[..rows * cols], accumulate, |i| g[i]),
        Broadcast::Row => {
            let adjoint = &mut adjoint[..cols];
            for (r, row) in g.chunks_exact(cols).enumerate() {
                store(adjoint, accumulate || r > 0, |j| row[j]);
            }
        }
        Broadcast::Scalar => {
            let total = sum(g);
            adjoint[0] = if accumulate {
                adjoint[0] + total
            } else {
                total
            };
        }
    }
}

/// A reduction to a scalar, over every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    Sum,
    Mean,
    SumSq,
    LogSumExp,
}

impl Reduce {
    /// The reduction of `a` (non-empty). For one entry it equals the batched formula
    /// `single` exactly.
    pub(crate) fn value(self, a: &[f64]) -> f64 {
        match self {
            Reduce::Sum => sum(a),
            Reduce::Mean => sum(a) / a.len() as f64,
            Reduce::SumSq => {
                let mut total = a[0] * a[0];
                for &x in &a[1..] {
                    total += x * x;
                }
                total
            }
            Reduce::LogSumExp => {
                let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if m.is_infinite() {
                    return m;
                }
                let mut total = (a[0] - m).exp();
                for &x in &a[1..] {
                    total += (x - m).exp();
                }
                m + total.ln()
            }
        }
    }

    /// The reduction of a single entry (used by the batched kernel); equals `value(&[a])`.
    #[inline(always)]
    pub(crate) fn single(self, a: f64) -> f64 {
        match self {
            Reduce::Sum | Reduce::Mean => a,
            Reduce::SumSq => a * a,
            Reduce::LogSumExp => a,
        }
    }

    /// `adjoint (+)= g * d(reduction)/da`.
    pub(crate) fn backward(self, a: &[f64], out: f64, g: f64, adjoint: &mut [f64], acc: bool) {
        let n = adjoint.len();
        let a = &a[..n];
        match self {
            Reduce::Sum => store(adjoint, acc, |_| g),
            Reduce::Mean => {
                let scaled = g / n as f64;
                store(adjoint, acc, |_| scaled)
            }
            Reduce::SumSq => store(adjoint, acc, |i| g * (2.0 * a[i])),
            Reduce::LogSumExp => store(adjoint, acc, |i| g * (a[i] - out).exp()),
        }
    }

    /// The derivative contribution for a single entry; equals `backward` on one entry.
    #[inline(always)]
    pub(crate) fn single_vjp(self, a: f64, out: f64, g: f64) -> f64 {
        match self {
            Reduce::Sum => g,
            Reduce::Mean => g / 1.0,
            Reduce::SumSq => g * (2.0 * a),
            Reduce::LogSumExp => g * (a - out).exp(),
        }
    }
}

/// `out[i] = op(row i of a)` for an `a` of `rows x cols` (row-major): one value per row.
/// Each row is reduced exactly as the one-argument form reduces a whole value.
pub(crate) fn row_reduce_forward(op: Reduce, a: &[f64], cols: usize, out: &mut [f64]) {
    for (o, row) in out.iter_mut().zip(a.chunks_exact(cols)) {
        *o = op.value(row);
    }
}

/// The vector-Jacobian product of [`row_reduce_forward`]: row `i` of the adjoint gets
/// `g[i]` times the row's derivative (for `logsumexp`, the row's softmax).
pub(crate) fn row_reduce_backward(
    op: Reduce,
    a: &[f64],
    cols: usize,
    out: &[f64],
    g: &[f64],
    adjoint: &mut [f64],
    acc: bool,
) {
    for (((row, adj), &o), &gi) in a
        .chunks_exact(cols)
        .zip(adjoint.chunks_exact_mut(cols))
        .zip(out)
        .zip(g)
    {
        op.backward(row, o, gi, adj, acc);
    }
}

/// Row-wise softmax of `a` (`rows x cols`), stable: each row is shifted by its maximum, so
/// large entries do not overflow. A row whose maximum is infinite gives NaN.
pub(crate) fn softmax_forward(a: &[f64], cols: usize, out: &mut [f64]) {
    for (row, o) in a.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for (y, &x) in o.iter_mut().zip(row) {
            *y = (x - m).exp();
        }
        let inv = 1.0 / sum(o);
        for y in o.iter_mut() {
            *y *= inv;
        }
    }
}

/// The vector-Jacobian product of row-wise softmax with output `y`:
/// `adjoint_ij (+)= y_ij * (g_ij - sum_k g_ik y_ik)`.
pub(crate) fn softmax_backward(y: &[f64], cols: usize, g: &[f64], adjoint: &mut [f64], acc: bool) {
    for ((y, g), adj) in y
        .chunks_exact(cols)
        .zip(g.chunks_exact(cols))
        .zip(adjoint.chunks_exact_mut(cols))
    {
        let inner = dot(g, y);
        store(adj, acc, |j| y[j] * (g[j] - inner));
    }
}

/// Sum in index order, starting from the first entry (so one entry sums to itself exactly).
#[inline]
pub(crate) fn sum(a: &[f64]) -> f64 {
    let mut total = a[0];
    for &x in &a[1..] {
        total += x;
    }
    total
}

/// Dot product in index order, starting from the first product.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let b = &b[..n];
    let mut total = a[0] * b[0];
    for i in 1..n {
        total += a[i] * b[i];
    }
    total
}

/// Dot product of two equally long slices with four independent partial sums (combined
/// as `(s0 + s1) + (s2 + s3)`, then the tail in order): a fixed order, so deterministic.
#[inline]
pub(crate) fn dot_lanes(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let b = &b[..n];
    let mut lanes = [0.0f64; 4];
    let chunks = n / 4;
    for c in 0..chunks {
        for l in 0..4 {
            lanes[l] += a[4 * c + l] * b[4 * c + l];
        }
    }
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for i in 4 * chunks..n {
        total += a[i] * b[i];
    }
    total
}

/// A row-major matrix operand of a product, possibly used transposed.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    /// Row-major entries of the stored matrix.
    pub data: &'a [f64],
    /// Rows of the stored matrix.
    pub rows: usize,
    /// Columns of the stored matrix.
    pub cols: usize,
    /// Use the transpose of the stored matrix.
    pub transposed: bool,
}

impl<'a> MatRef<'a> {
    pub(crate) fn new(data: &'a [f64], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    pub(crate) fn t(self) -> Self {
        MatRef {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows and columns of the operand as used.
    fn dims(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Row and column strides of the operand as used.
    fn strides(&self) -> (usize, usize) {
        if self.transposed {
            (1, self.cols)
        } else {
            (self.cols, 1)
        }
    }
}

/// Rows of the register tile of the product kernel.
const MR: usize = 6;
/// Columns of the register tile of the product kernel.
const NR: usize = 8;

/// `out (m x n, row-major) (+)= a @ b`, allocation-free.
///
/// `scratch` must hold `k * n` values when `b` is used transposed (it is packed there so
/// that its rows are contiguous); otherwise it is not touched. Products with at least
/// `MR` rows and `NR` columns run a register-blocked kernel (AVX2 + FMA when the CPU has
/// them, detected once at run time); the rest run plain loops. Every output entry is a
/// sum over the inner index in increasing order, so results are deterministic.
pub(crate) fn matmul(a: MatRef, b: MatRef, out: &mut [f64], accumulate: bool, scratch: &mut [f64]) {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    debug_assert_eq!(k, k2);
    let out = &mut out[..m * n];
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    if n == 1 && k > 1 {
        // Matrix-vector product; b's single column is contiguous.
        let b_col = &b.data[..k];
        if acs == 1 {
            // Rows of a are contiguous: one dot product per row.
            for (i, o) in out.iter_mut().enumerate() {
                let total = dot_lanes(&a.data[i * ars..i * ars + k], b_col);
                *o = if accumulate { *o + total } else { total };
            }
        } else {
            // a is used transposed: out += b[p] * (row p of the stored matrix).
            if !accumulate {
                out.fill(0.0);
            }
            for (p, &bp) in b_col.iter().enumerate() {
                let stored_row = &a.data[p * acs..p * acs + m];
                for (o, &av) in out.iter_mut().zip(stored_row) {
                    *o += av * bp;
                }
            }
        }
        return;
    }
    if m >= 4 && n >= NR {
        // Rows of b must be contiguous for the kernel: pack a transposed b.
        let (b_rows, ldb): (&[f64], usize) = if bcs == 1 {
            (b.data, brs)
        } else {
            let packed = &mut scratch[..k * n];
            for p in 0..k {
                for j in 0..n {
                    packed[p * n + j] = b.data[p * brs + j * bcs];
                }
            }
            (packed, n)
        };
        let a_trans = acs != 1 || (ars == 1 && k == 1);
        let args = GemmArgs {
            m,
            n,
            k,
            a: a.data,
            lda: if a_trans { acs } else { ars },
            a_trans,
            b: b_rows,
            ldb,
            accumulate,
        };
        gemm_dispatch(&args, out);
        return;
    }
    if !accumulate {
        out.fill(0.0);
    }
    if bcs == 1 {
        // Rows of b are contiguous: out[i, :] += a[i, p] * b[p, :].
        for i in 0..m {
            let row = &mut out[i * n..(i + 1) * n];
            for p in 0..k {
                let aip = a.data[i * ars + p * acs];
                let brow = &b.data[p * brs..p * brs + n];
                for (o, &bv) in row.iter_mut().zip(brow) {
                    *o += aip * bv;
                }
            }
        }
    } else {
        // Columns of b are contiguous.
        for i in 0..m {
            for j in 0..n {
                let mut total = 0.0;
                for p in 0..k {
                    total += a.data[i * ars + p * acs] * b.data[p * brs + j * bcs];
                }
                out[i * n + j] += total;
            }
        }
    }
}

/// The operands of the blocked kernel: `a` with element (i, p) at `i * lda + p` (or at
/// `p * lda + i` when `a_trans`), `b` with element (p, j) at `p * ldb + j`.
struct GemmArgs<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f64],
    lda: usize,
    a_trans: bool,
    b: &'a [f64],
    ldb: usize,
    accumulate: bool,
}

fn gemm_dispatch(args: &GemmArgs, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { gemm_avx2_fma(args, out) };
            return;
        }
    }
    gemm_blocked::<false>(args, out);
}

/// [`gemm_blocked`] with fused multiply-adds, compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_fma(args: &GemmArgs, out: &mut [f64]) {
    gemm_blocked::<true>(args, out);
}

/// `x * y + acc`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(x: f64, y: f64, acc: f64) -> f64 {
    if FMA {
        x.mul_add(y, acc)
    } else {
        acc + x * y
    }
}

/// Inner-dimension block: a block of `b` (KC rows x NR columns) and of `a` stay in L1.
const KC: usize = 64;

#[inline(always)]
fn gemm_blocked<const FMA: bool>(args: &GemmArgs, out: &mut [f64]) {
    let &GemmArgs {
        m,
        n,
        k,
        a,
        lda,
        a_trans,
        b,
        ldb,
        accumulate,
    } = args;
    let n_main = n - n % NR;
    let mut k0 = 0;
    while k0 < k {
        let kc = KC.min(k - k0);
        // The first block overwrites (unless accumulating); later blocks add.
        let first = k0 == 0 && !accumulate;
        let mut i = 0;
        while i < m {
            let rows = MR.min(m - i);
            let block = RowBlock {
                i,
                k0,
                kc,
                n_main,
                first,
            };
            match rows {
                6 => rows_block::<FMA, 6>(args, &block, out),
                5 => rows_block::<FMA, 5>(args, &block, out),
                4 => rows_block::<FMA, 4>(args, &block, out),
                3 => rows_block::<FMA, 3>(args, &block, out),
                2 => rows_block::<FMA, 2>(args, &block, out),
                _ => rows_block::<FMA, 1>(args, &block, out),
            }
            i += rows;
        }
        k0 += kc;
    }
    // Leftover columns (fewer than NR): plain sums over the whole inner dimension.
    let a_at = |i: usize, p: usize| {
        if a_trans {
            a[p * lda + i]
        } else {
            a[i * lda + p]
        }
    };
    for r in 0..m {
        for jj in n_main..n {
            let mut total = 0.0;
            for p in 0..k {
                total = madd::<FMA>(a_at(r, p), b[p * ldb + jj], total);
            }
            let o = &mut out[r * n + jj];
            *o = if accumulate { *o + total } else { total };
        }
    }
}

/// Rows `i .. i + R` and inner indices `k0 .. k0 + kc` of a blocked product.
struct RowBlock {
    i: usize,
    k0: usize,
    kc: usize,
    n_main: usize,
    first: bool,
}

/// One register tile of R rows x NR columns at a time, across the first `n_main` columns.
#[inline(always)]
fn rows_block<const FMA: bool, const R: usize>(args: &GemmArgs, block: &RowBlock, out: &mut [f64]) {
    let &GemmArgs {
        n,
        a,
        lda,
        a_trans,
        b,
        ldb,
        ..
    } = args;
    let &RowBlock {
        i,
        k0,
        kc,
        n_main,
        first,
    } = block;
    let mut j = 0;
    while j < n_main {
        let mut acc = [[0.0f64; NR]; R];
        if a_trans {
            for p in k0..k0 + kc {
                let bp: &[f64; NR] = b[p * ldb + j..p * ldb + j + NR].try_into().unwrap();
                let ap: &[f64; R] = a[p * lda + i..p * lda + i + R].try_into().unwrap();
                for r in 0..R {
                    for q in 0..NR {
                        acc[r][q] = madd::<FMA>(ap[r], bp[q], acc[r][q]);
                    }
                }
            }
        } else {
            let rows: [&[f64]; R] = std::array::from_fn(|r| &a[(i + r) * lda + k0..][..kc]);
            for p in 0..kc {
                let bp: &[f64; NR] = b[(k0 + p) * ldb + j..(k0 + p) * ldb + j + NR]
                    .try_into()
                    .unwrap();
                for r in 0..R {
                    let x = rows[r][p];
                    for q in 0..NR {
                        acc[r][q] = madd::<FMA>(x, bp[q], acc[r][q]);
                    }
                }
            }
        }
        for r in 0..R {
            let row = &mut out[(i + r) * n + j..(i + r) * n + j + NR];
            if first {
                row.copy_from_slice(&acc[r]);
            } else {
                for q in 0..NR {
                    row[q] += acc[r][q];
                }
            }
        }
        j += NR;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn tanh_is_within_three_ulps_of_libm_and_odd() {
        let mut worst: f64 = 0.0;
        for i in -400_000..=400_000 {
            let x = i as f64 * 5e-5;
            let exact = x.tanh();
            let error = (tanh(x) - exact).abs() / exact.abs().max(f64::MIN_POSITIVE);
            worst = worst.max(error);
            assert_eq!(tanh(-x).to_bits(), (-tanh(x)).to_bits(), "odd at {x}");
        }
        assert!(worst < 3.0 * f64::EPSILON, "worst relative error {worst:e}");
        for x in [
            1e-300,
            1e-8,
            0.2499,
            0.25,
            0.7,
            3.0,
            19.4,
            19.6,
            700.0,
            f64::MAX,
        ] {
            let error = (tanh(x) - x.tanh()).abs() / x.tanh();
            assert!(error < 3.0 * f64::EPSILON, "{x}: {error:e}");
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert!(tanh(f64::NAN).is_nan());
    }

    #[test]
    fn the_tanh_kernel_gives_the_same_bits_as_the_scalar_function() {
        let a: Vec<f64> = (0..1000).map(|i| (i as f64 - 500.0) * 0.013).collect();
        let mut out = vec![0.0; a.len()];
        tanh_slice(&a, &mut out);
        for (x, y) in a.iter().zip(&out) {
            assert_eq!(tanh(*x).to_bits(), y.to_bits());
        }
    }

    use super::*;

    #[test]
    fn sigmoid_and_softplus_do_not_overflow() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-300);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn logsumexp_is_stable() {
        let v = Reduce::LogSumExp.value(&[1000.0, 1000.0]);
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(
            Reduce::LogSumExp.value(&[3.5]),
            Reduce::LogSumExp.single(3.5)
        );
    }

    /// The blocked kernel (row tiles of every height, several inner blocks, leftover
    /// columns), the matrix-vector paths and the plain loops, against a naive triple loop,
    /// for every transposition, overwriting and accumulating.
    #[test]
    fn every_product_path_agrees_with_the_naive_product() {
        let dims = [
            (9, 9, 9),
            (13, 150, 19),
            (4, 70, 8),
            (5, 3, 1),
            (1, 7, 5),
            (11, 65, 1),
        ];
        for (m, k, n) in dims {
            let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                // Stored so that the operand as used is m x k and k x n.
                let ar = if ta {
                    MatRef::new(&a, k, m).t()
                } else {
                    MatRef::new(&a, m, k)
                };
                let br = if tb {
                    MatRef::new(&b, n, k).t()
                } else {
                    MatRef::new(&b, k, n)
                };
                let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
                let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
                let mut naive = vec![0.5; m * n];
                for i in 0..m {
                    for j in 0..n {
                        for p in 0..k {
                            naive[i * n + j] += at(i, p) * bt(p, j);
                        }
                    }
                }
                let mut scratch = vec![0.0; k * n];
                for accumulate in [false, true] {
                    let mut fast = vec![if accumulate { 0.5 } else { f64::NAN }; m * n];
                    matmul(ar, br, &mut fast, accumulate, &mut scratch);
                    for (idx, (x, y)) in fast.iter().zip(&naive).enumerate() {
                        let expected = if accumulate { *y } else { y - 0.5 };
                        assert!(
                            (x - expected).abs() < 1e-11,
                            "{m}x{k}x{n} ta={ta} tb={tb} acc={accumulate} [{idx}]: {x} vs {expected}"
                        );
                    }
                }
            }
        }
    }
}
