//! The encoder's element-wise work: layer norm, activations, softmax, row broadcasts.
//!
//! Each kernel is a plain loop without branches in its body, so that the compiler vectorises
//! it, and runs through [`pulp::Arch::dispatch`], which compiles it a second time for AVX2 and
//! FMA and picks that copy at run time when the CPU has them. `exp` and `erf` are polynomial
//! approximations written for that purpose (the standard library's call into libm one value
//! at a time); both stay within a few units in the last place of `f32` for the inputs an
//! encoder feeds them, which the tests below check against `f64` references.

use pulp::{Arch, Simd, WithSimd};

/// `f32::exp` for `x` in [-87.3, 88]; inputs outside are clamped, so the result is never
/// infinite and never below the smallest normal `f32`.
///
/// Cephes' `expf`: `x = n·ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6 polynomial for `e^r`,
/// and `2^n` built from its exponent bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer, which ends up in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 in two parts, so that `n·LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e_r = p * r2 + r + 1.0;
    e_r * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// The error function, to within 6e-7 (Abramowitz and Stegun, 7.1.26: 1.5e-7, plus the
/// rounding of `1 - p·e^(-x²)` in `f32`, a few units of 6e-8 near 1).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_72) * t
        + 0.254_829_6)
        * t;
    let magnitude = 1.0 - poly * exp(-a * a);
    magnitude.copysign(x)
}

/// `tanh`, from `exp`: `1 - 2 / (e^2x + 1)`, exact at the saturated ends.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// A kernel's loop, run through [`vectorised`].
trait Kernel {
    /// Must be `#[inline(always)]`, as must everything it calls, so that it is compiled into
    /// pulp's copy for the wider instruction set rather than called from it.
    fn run(self);
}

struct Dispatch<K>(K);

impl<K: Kernel> WithSimd for Dispatch<K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        self.0.run();
    }
}

/// Run `kernel` compiled for the best instruction set this CPU has.
fn vectorised(kernel: impl Kernel) {
    Arch::new().dispatch(Dispatch(kernel));
}

/// GELU as BERT defines it: `x/2 · (1 + erf(x/√2))`, in place.
pub(crate) fn gelu_erf(values: &mut [f32]) {
    struct GeluErf<'a>(&'a mut [f32]);
    impl Kernel for GeluErf<'_> {
        #[inline(always)]
        fn run(self) {
            for v in self.0.iter_mut() {
                let x = *v;
                *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
    vectorised(GeluErf(values));
}

/// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`), in place.
pub(crate) fn gelu_tanh(values: &mut [f32]) {
    struct GeluTanh<'a>(&'a mut [f32]);
    impl Kernel for GeluTanh<'_> {
        #[inline(always)]
        fn run(self) {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            for v in self.0.iter_mut() {
                let x = *v;
                *v = 0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)));
            }
        }
    }
    vectorised(GeluTanh(values));
}

/// `max(x, 0)`, in place.
pub(crate) fn relu(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = v.max(0.0);
    }
}

/// Accumulators a reduction keeps side by side. The compiler keeps a float sum in order
/// (reordering changes the result), so a plain `sum()` runs one value at a time; partial sums
/// in lanes give it independent chains to put in one vector register.
const LANES: usize = 8;

/// The sum of `(v - centre)²` over `values`, or of `v` when `square` is false, in
/// [`LANES`] partial sums.
#[inline(always)]
fn sum(values: &[f32], centre: f32, square: bool) -> f32 {
    let term = |v: f32| {
        if square {
            (v - centre) * (v - centre)
        } else {
            v
        }
    };
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| term(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The largest of `values` (negative infinity if there are none), in [`LANES`] lanes.
#[inline(always)]
fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v);
        }
    }
    lanes.into_iter().fold(tail, f32::max)
}

/// Softmax of each row of `width` values, in place.
pub(crate) fn softmax_rows(values: &mut [f32], width: usize) {
    struct Softmax<'a>(&'a mut [f32], usize);
    impl Kernel for Softmax<'_> {
        #[inline(always)]
        fn run(self) {
            for row in self.0.chunks_exact_mut(self.1) {
                let max = max(row);
                let mut lanes = [0.0f32; LANES];
                let mut chunks = row.chunks_exact_mut(LANES);
                for chunk in &mut chunks {
                    for (lane, v) in lanes.iter_mut().zip(chunk) {
                        *v = exp(*v - max);
                        *lane += *v;
                    }
                }
                let mut sum = lanes.iter().sum::<f32>();
                for v in chunks.into_remainder() {
                    *v = exp(*v - max);
                    sum += *v;
                }
                let scale = 1.0 / sum;
                for v in row.iter_mut() {
                    *v *= scale;
                }
            }
        }
    }
    vectorised(Softmax(values, width));
}

/// Layer norm of each row of `gamma.len()` values, in place: `(x - mean) / sqrt(var + eps)`,
/// scaled by `gamma` and shifted by `beta`. The variance is the biased one, as in torch.
pub(crate) fn layer_norm_rows(values: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    struct LayerNorm<'a> {
        values: &'a mut [f32],
        gamma: &'a [f32],
        beta: &'a [f32],
        eps: f32,
    }
    impl Kernel for LayerNorm<'_> {
        #[inline(always)]
        fn run(self) {
            let width = self.gamma.len();
            let n = width as f32;
            for row in self.values.chunks_exact_mut(width) {
                let mean = sum(row, 0.0, false) / n;
                let variance = sum(row, mean, true) / n;
                let inverse = 1.0 / (variance + self.eps).sqrt();
                for ((v, g), b) in row.iter_mut().zip(self.gamma).zip(self.beta) {
                    *v = (*v - mean) * inverse * g + b;
                }
            }
        }
    }
    vectorised(LayerNorm {
        values,
        gamma,
        beta,
        eps,
    });
}

/// Copy `row` into every row of `values` (a bias, before a product is added to it).
pub(crate) fn fill_rows(values: &mut [f32], row: &[f32]) {
    for dst in values.chunks_exact_mut(row.len()) {
        dst.copy_from_slice(row);
    }
}

/// `values = source + row` for every row (a residual plus a bias, before a product is added
/// to it).
pub(crate) fn sum_rows(values: &mut [f32], source: &[f32], row: &[f32]) {
    let width = row.len();
    for (dst, src) in values
        .chunks_exact_mut(width)
        .zip(source.chunks_exact(width))
    {
        for ((d, s), r) in dst.iter_mut().zip(src).zip(row) {
            *d = s + r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from -range to range, plus both ends.
    fn spread(range: f32, count: usize) -> Vec<f32> {
        (0..=count)
            .map(|i| -range + 2.0 * range * i as f32 / count as f32)
            .collect()
    }

    fn relative_error(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / want.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_is_within_a_few_ulps_over_the_range_softmax_and_erf_use() {
        let worst = spread(87.0, 200_001)
            .into_iter()
            .map(|x| relative_error(exp(x), f64::from(x).exp()))
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn exp_clamps_instead_of_overflowing() {
        assert!(exp(1000.0).is_finite());
        assert!(exp(1000.0) > 1e38);
        let tiny = exp(-1000.0);
        assert!(tiny > 0.0 && tiny < 1e-37, "{tiny:e}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_is_within_6e_7_of_libm() {
        let worst = spread(8.0, 100_001)
            .into_iter()
            .map(|x| (f64::from(erf(x)) - libm::erf(f64::from(x))).abs())
            .fold(0.0, f64::max);
        // Measured: 5.0e-7, at x = 0.046.
        assert!(worst < 6e-7, "worst absolute error {worst:e}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-9.0), -1.0);
    }

    #[test]
    fn gelu_matches_its_definitions() {
        let inputs = spread(12.0, 4_801);
        let mut exact = inputs.clone();
        gelu_erf(&mut exact);
        let mut approximate = inputs.clone();
        gelu_tanh(&mut approximate);
        let mut rectified = inputs.clone();
        relu(&mut rectified);
        for (i, &x) in inputs.iter().enumerate() {
            let x64 = f64::from(x);
            let want = 0.5 * x64 * (1.0 + libm::erf(x64 / 2f64.sqrt()));
            let tolerance = 1e-6 * x64.abs().max(1.0);
            assert!((f64::from(exact[i]) - want).abs() < tolerance, "gelu({x})");
            let inner = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            let want = 0.5 * x64 * (1.0 + inner.tanh());
            assert!(
                (f64::from(approximate[i]) - want).abs() < tolerance,
                "gelu_tanh({x})"
            );
            assert_eq!(rectified[i], x.max(0.0));
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_definition() {
        let width = 37;
        let mut values: Vec<f32> = (0..width * 3)
            .map(|i| ((i * 7919) % 101) as f32 / 4.0 - 12.0)
            .collect();
        values[5] = 1e4; // a dominant score must not overflow
        let original = values.clone();
        softmax_rows(&mut values, width);
        for (row, input) in values.chunks(width).zip(original.chunks(width)) {
            let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let total: f64 = input.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            for (&got, &x) in row.iter().zip(input) {
                let want = (f64::from(x) - max).exp() / total;
                assert!((f64::from(got) - want).abs() < 1e-7, "{got} vs {want}");
            }
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        }
    }

    #[test]
    fn layer_norm_centres_and_scales_each_row() {
        let width = 384;
        let mut values: Vec<f32> = (0..width * 2)
            .map(|i| ((i * 31) % 97) as f32 * 0.37 - 9.0)
            .collect();
        let original = values.clone();
        let gamma: Vec<f32> = (0..width).map(|i| 0.5 + i as f32 / 1000.0).collect();
        let beta: Vec<f32> = (0..width).map(|i| i as f32 / 100.0 - 1.0).collect();
        layer_norm_rows(&mut values, &gamma, &beta, 1e-12);
        for (row, input) in values.chunks(width).zip(original.chunks(width)) {
            let n = width as f64;
            let mean = input.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = input
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            for (i, (&got, &x)) in row.iter().zip(input).enumerate() {
                let want = (f64::from(x) - mean) / (var + 1e-12).sqrt() * f64::from(gamma[i])
                    + f64::from(beta[i]);
                assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn lane_reductions_count_every_value_including_the_tail() {
        for len in [0, 1, 7, 8, 9, 17, 384] {
            let values: Vec<f32> = (0..len).map(|i| (i % 5) as f32 - 1.5).collect();
            let want: f32 = values.iter().map(|v| v * v).sum();
            assert_eq!(sum(&values, 0.0, true), want, "len {len}");
            let mut peaked = values.clone();
            if let Some(last) = peaked.last_mut() {
                *last = 100.0;
            }
            let want = peaked.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&peaked), want, "len {len}");
        }
    }

    #[test]
    fn rows_are_filled_and_summed_with_the_broadcast_row() {
        let row = [1.0, 2.0, 3.0];
        let mut values = vec![0.0; 6];
        fill_rows(&mut values, &row);
        assert_eq!(values, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let source = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        sum_rows(&mut values, &source, &row);
        assert_eq!(values, [11.0, 22.0, 33.0, 41.0, 52.0, 63.0]);
    }
}
