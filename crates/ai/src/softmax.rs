//! The softmax probability of one action, in integer arithmetic.
//!
//! A meta-agent's confidence in a learned action is its softmax probability over the Q-values,
//! 1 / Σ_i exp(q_i − q_chosen), in per mille. Under the kernel's softfloat target each `expf` costs
//! hundreds of instructions; here the differences and exponentials are fixed point (24 and 30
//! fractional bits), exact integer operations that give the same result on every machine, within
//! 10⁻⁶ of the true probability before it is truncated to per mille.

/// Fractional bits of a Q-value difference.
const DIFFERENCE_BITS: u32 = 24;
/// Fractional bits of an exponential.
const EXP_BITS: u32 = 30;
const EXP_ONE: i64 = 1 << EXP_BITS;
/// log2(e) and ln(2) with 30 fractional bits.
const LOG2_E: i64 = 1_549_082_005;
const LN_2: i64 = 744_261_118;
/// Q-values are clamped to ±2^14 before they are subtracted (far beyond any the agents learn).
const LIMIT_BITS: i32 = 14;
/// exp(d) of differences at or above 20 is clamped to exp(20): the probability is below 10⁻⁸ either way.
const MAX_DIFFERENCE: i64 = 20 << DIFFERENCE_BITS;
/// exp(d) of differences at or below −32 is below 2^−46 and counts as 0.
const MIN_DIFFERENCE: i64 = -(32 << DIFFERENCE_BITS);

/// `x` with [`DIFFERENCE_BITS`] fractional bits (truncated toward zero), clamped to ±2^[`LIMIT_BITS`]; NaN is 0.
fn to_fixed(x: f32) -> i64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32;
    if exponent == 0xff && bits & 0x7f_ffff != 0 {
        return 0;
    }
    let mantissa = (bits & 0x7f_ffff) as i64 | if exponent == 0 { 0 } else { 1 << 23 };
    // |x| = mantissa · 2^(exponent − 150), or · 2^−149 for subnormals; in fixed point, shifted by 24 more.
    let shift = exponent.max(1) - 150 + DIFFERENCE_BITS as i32;
    let magnitude = if exponent >= 127 + LIMIT_BITS {
        1 << (LIMIT_BITS as u32 + DIFFERENCE_BITS)
    } else if shift >= 0 {
        mantissa << shift
    } else {
        mantissa >> (-shift).min(63)
    };
    if bits >> 31 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// exp(`d`) with [`EXP_BITS`] fractional bits, for `d` with [`DIFFERENCE_BITS`]: exp(d) = 2^k · exp(f·ln 2)
/// with k = ⌊d·log2 e⌋ and f its fraction, the second factor by its Taylor series to the 9th power
/// (error below 0.7^10 / 10! < 10⁻⁷).
fn exp_fixed(d: i64) -> u64 {
    if d <= MIN_DIFFERENCE {
        return 0;
    }
    let t = (d.min(MAX_DIFFERENCE) * LOG2_E) >> EXP_BITS;
    let k = t >> DIFFERENCE_BITS;
    let x = ((t - (k << DIFFERENCE_BITS)) * LN_2) >> DIFFERENCE_BITS;
    let mut r = EXP_ONE;
    for n in (1..=9).rev() {
        r = EXP_ONE + ((r * x) >> EXP_BITS) / n;
    }
    let r = r as u64;
    if k >= 0 {
        r << k
    } else {
        r >> (-k).min(63)
    }
}

/// The softmax probability of `values[index]` over `values`, in per mille, truncated: 1000 / Σ_i
/// exp(values[i] − values[index]). NaN values count as 0; an index out of range gets 0.
pub fn softmax_per_mille(values: &[f32], index: usize) -> u16 {
    let Some(&chosen) = values.get(index) else { return 0 };
    let chosen = to_fixed(chosen);
    let total = values
        .iter()
        .enumerate()
        .map(|(i, &value)| if i == index { EXP_ONE as u64 } else { exp_fixed(to_fixed(value) - chosen) })
        .fold(0u64, u64::saturating_add);
    (1000 * EXP_ONE as u64 / total) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Random;

    fn reference(values: &[f32], index: usize) -> f64 {
        let total: f64 = values.iter().map(|&value| ((value as f64) - values[index] as f64).exp()).sum();
        1000.0 / total
    }

    #[test]
    fn the_fixed_point_probability_is_the_true_one_truncated() {
        let mut random = Random::new(17);
        let mut exact = 0usize;
        let cases = 20_000;
        for case in 0..cases {
            let spread = [0.01, 1.0, 5.0, 40.0][case % 4];
            let values: Vec<f32> = (0..1 + case % 5).map(|_| random.between(-spread, spread)).collect();
            let index = case % values.len();
            let expected = reference(&values, index);
            let got = softmax_per_mille(&values, index) as f64;
            assert!(got <= expected + 1e-3 && got > expected - 1.0 - 1e-3, "{values:?}[{index}]: {got}, {expected}");
            // Within 10⁻⁵ below an integer, the fixed point (like f32) may land on the integer.
            exact += (got == expected.floor() || got == (expected + 1e-5).floor()) as usize;
        }
        assert_eq!(exact, cases, "cases that truncate to the true per mille");
    }

    #[test]
    fn known_probabilities_and_edges() {
        assert_eq!(softmax_per_mille(&[1.0], 0), 1000);
        assert_eq!(softmax_per_mille(&[0.5, 0.5], 1), 500);
        assert_eq!(softmax_per_mille(&[0.0, 0.0, 0.0], 2), 333);
        // 1 / (1 + e^-1) = 0.7310...
        assert_eq!(softmax_per_mille(&[2.0, 1.0], 0), 731);
        assert_eq!(softmax_per_mille(&[2.0, 1.0], 1), 268);
        assert_eq!(softmax_per_mille(&[1e30, 0.0], 1), 0);
        assert_eq!(softmax_per_mille(&[1e30, 0.0], 0), 1000);
        assert_eq!(softmax_per_mille(&[f32::NAN, 0.0], 1), 500);
        assert_eq!(softmax_per_mille(&[1.0, f32::NEG_INFINITY], 0), 1000);
        assert_eq!(softmax_per_mille(&[1.0], 3), 0);
        assert_eq!(softmax_per_mille(&[], 0), 0);
        assert_eq!(to_fixed(-1.5), -(3 << 23));
        assert_eq!(to_fixed(f32::from_bits(1)), 0);
        assert_eq!(exp_fixed(0), EXP_ONE as u64);
    }
}
