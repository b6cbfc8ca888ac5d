//! Paired statistics for autonomy off/on comparisons: Wilcoxon signed-rank and paired t-test.
//!
//! Each run `i` gives one figure with autonomy off (`off[i]`) and one with
//! autonomy on (`on[i]`) from the same seed; every statistic here works on
//! the differences `d[i] = on[i] - off[i]`, computed in `f64`. Both tests are
//! two-sided. The sample sizes this is made for are small (10–30 pairs), so
//! the Wilcoxon p-value is exact (the null distribution is enumerated) up to
//! [`WILCOXON_EXACT_LIMIT`] non-zero differences, and the t distribution is
//! evaluated through the regularized incomplete beta function rather than a
//! normal approximation. Results never contain NaN: a test that cannot be
//! computed returns a [`PairedError`] saying why.

use alloc::vec::Vec;
use core::fmt;

/// Largest number of non-zero differences for which the Wilcoxon p-value is exact.
///
/// Above it the normal approximation is used. At 50 the enumeration has
/// 2^50 sign patterns, counted in `u64` without overflow, in a table of
/// 2,551 entries.
pub const WILCOXON_EXACT_LIMIT: usize = 50;

/// Why a paired statistic could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PairedError {
    /// The two samples have different lengths, so they cannot be paired.
    LengthMismatch {
        /// Values with autonomy off.
        off: usize,
        /// Values with autonomy on.
        on: usize,
    },
    /// A value (or its difference) is NaN or infinite.
    NonFinite {
        /// Index of the first offending pair.
        index: usize,
    },
    /// Fewer pairs than the test needs.
    TooFewPairs {
        /// Pairs given.
        pairs: usize,
        /// Pairs the test needs.
        required: usize,
    },
    /// Every difference is zero, so the Wilcoxon test has nothing to rank.
    AllDifferencesZero {
        /// Pairs given.
        pairs: usize,
    },
    /// All differences are equal, so the standard deviation is zero and the t statistic is undefined
    /// (or infinite); the mean difference is still reported.
    ZeroVariance {
        /// The common difference.
        mean_difference: f64,
    },
}

impl fmt::Display for PairedError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairedError::LengthMismatch { off, on } => {
                write!(formatter, "cannot pair {off} values (autonomy off) with {on} values (autonomy on)")
            }
            PairedError::NonFinite { index } => write!(formatter, "pair {index} is not a finite number"),
            PairedError::TooFewPairs { pairs, required } => {
                write!(formatter, "too few pairs: {pairs}, the test needs at least {required}")
            }
            PairedError::AllDifferencesZero { pairs } => {
                write!(formatter, "all {pairs} differences are zero: nothing to rank")
            }
            PairedError::ZeroVariance { mean_difference } => {
                write!(formatter, "every difference equals {mean_difference}: zero variance, no t statistic")
            }
        }
    }
}

/// How a Wilcoxon p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// Exact: the null distribution of W+ enumerated over all sign patterns of the observed ranks
    /// (conditional on ties, so it stays exact when ties give half ranks).
    Exact,
    /// Normal approximation with tie correction of the variance and a continuity correction of 0.5.
    Normal,
}

/// Result of a two-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WilcoxonResult {
    /// Pairs given.
    pub pairs: usize,
    /// Pairs whose difference is exactly zero; dropped before ranking (Wilcoxon's convention).
    pub zeros_dropped: usize,
    /// Differences ranked (`pairs - zeros_dropped`).
    pub n_used: usize,
    /// Sum of the ranks of positive differences (`on > off`); average ranks for ties.
    pub w_plus: f64,
    /// Sum of the ranks of negative differences (`on < off`).
    pub w_minus: f64,
    /// Standardized statistic after continuity correction (normal method only).
    pub z: Option<f64>,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The smallest two-sided p-value this test could give with these `n_used` differences and their ties,
    /// whatever their signs: the p of every difference having the same sign. Exact method: `min(1, 2 / 2^n_used)`
    /// (one sign pattern of `2^n_used` has W+ = 0, ties or not); normal method: the approximation at W+ = its
    /// maximum, with the same tie and continuity corrections. A `p_value` at this floor means the effect could not
    /// have been shown more strongly with these pairs; a floor at or above a significance level means the test
    /// cannot reach it, however large the effect.
    pub min_reachable_p: f64,
    /// Exact or normal approximation.
    pub method: WilcoxonMethod,
}

/// Result of a two-sided paired t-test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairedTTest {
    /// Pairs given.
    pub pairs: usize,
    /// Mean of `on - off`.
    pub mean_difference: f64,
    /// Sample standard deviation of the differences (divisor `n - 1`).
    pub std_dev: f64,
    /// Standard error of the mean difference (`std_dev / sqrt(n)`).
    pub std_error: f64,
    /// t statistic (`mean_difference / std_error`).
    pub t: f64,
    /// Degrees of freedom (`n - 1`).
    pub degrees_of_freedom: usize,
    /// Two-sided p-value from the Student t distribution.
    pub p_value: f64,
    /// Lower end of the 95 % confidence interval of the mean difference.
    pub ci95_low: f64,
    /// Upper end of the 95 % confidence interval of the mean difference.
    pub ci95_high: f64,
}

/// Both paired tests on the same data, each with its result or the reason it has none (for JSON reports).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairedComparison {
    /// Pairs given (0 when the lengths differ).
    pub pairs: usize,
    /// Wilcoxon signed-rank test, when it could be computed.
    pub wilcoxon: Option<WilcoxonResult>,
    /// Why there is no Wilcoxon result.
    pub wilcoxon_error: Option<PairedError>,
    /// Paired t-test, when it could be computed.
    pub t_test: Option<PairedTTest>,
    /// Why there is no t-test result.
    pub t_test_error: Option<PairedError>,
}

/// Runs both tests on `off` and `on` (paired by index).
pub fn compare_paired(off: &[f64], on: &[f64]) -> PairedComparison {
    let (wilcoxon, wilcoxon_error) = split(wilcoxon_signed_rank(off, on));
    let (t_test, t_test_error) = split(paired_t_test(off, on));
    let pairs = if off.len() == on.len() { off.len() } else { 0 };
    PairedComparison { pairs, wilcoxon, wilcoxon_error, t_test, t_test_error }
}

/// Two-sided Wilcoxon signed-rank test of the differences `on[i] - off[i]`.
///
/// Zero differences are dropped before ranking (Wilcoxon's convention, scipy's
/// `zero_method="wilcox"`). Ties in `|d|` (exact `f64` equality) get average
/// ranks. With at most [`WILCOXON_EXACT_LIMIT`] non-zero differences the
/// p-value is `min(1, 2 * min(P(W+ <= w), P(W+ >= w)))` under the exact
/// permutation distribution of the observed ranks; above that it comes from
/// the normal approximation with tie and continuity corrections.
pub fn wilcoxon_signed_rank(off: &[f64], on: &[f64]) -> Result<WilcoxonResult, PairedError> {
    let differences = differences(off, on)?;
    let pairs = differences.len();
    if pairs == 0 {
        return Err(PairedError::TooFewPairs { pairs, required: 1 });
    }
    let mut magnitudes: Vec<(f64, bool)> =
        differences.iter().filter(|d| **d != 0.0).map(|d| (d.abs(), *d > 0.0)).collect();
    let n_used = magnitudes.len();
    if n_used == 0 {
        return Err(PairedError::AllDifferencesZero { pairs });
    }
    magnitudes.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Ranks doubled so that the average rank of a tie group (first + last) / 2 stays an integer.
    let mut doubled_ranks: Vec<u64> = Vec::with_capacity(n_used);
    let mut w_plus_doubled: u64 = 0;
    let mut tie_term: f64 = 0.0;
    let mut start = 0;
    while start < n_used {
        let mut end = start;
        while end + 1 < n_used && magnitudes[end + 1].0 == magnitudes[start].0 {
            end += 1;
        }
        let doubled_rank = (start + 1 + end + 1) as u64;
        for (_, positive) in &magnitudes[start..=end] {
            doubled_ranks.push(doubled_rank);
            if *positive {
                w_plus_doubled += doubled_rank;
            }
        }
        let group = (end - start + 1) as f64;
        tie_term += group * group * group - group;
        start = end + 1;
    }
    let total_doubled = (n_used * (n_used + 1)) as u64;
    let w_plus = w_plus_doubled as f64 / 2.0;
    let w_minus = (total_doubled - w_plus_doubled) as f64 / 2.0;

    let (p_value, min_reachable_p, z, method) = if n_used <= WILCOXON_EXACT_LIMIT {
        let min_reachable_p = (2.0 / libm::ldexp(1.0, n_used as i32)).min(1.0);
        (exact_p_value(&doubled_ranks, w_plus_doubled), min_reachable_p, None, WilcoxonMethod::Exact)
    } else {
        let (p_value, z) = normal_p_value(n_used, tie_term, w_plus);
        let (min_reachable_p, _) = normal_p_value(n_used, tie_term, total_doubled as f64 / 2.0);
        (p_value, min_reachable_p, Some(z), WilcoxonMethod::Normal)
    };
    Ok(WilcoxonResult {
        pairs,
        zeros_dropped: pairs - n_used,
        n_used,
        w_plus,
        w_minus,
        z,
        p_value,
        min_reachable_p,
        method,
    })
}

/// Two-sided paired t-test of the differences `on[i] - off[i]`, with a 95 % confidence interval of their mean.
///
/// Needs at least two pairs and differences that are not all equal.
pub fn paired_t_test(off: &[f64], on: &[f64]) -> Result<PairedTTest, PairedError> {
    let differences = differences(off, on)?;
    let pairs = differences.len();
    if pairs < 2 {
        return Err(PairedError::TooFewPairs { pairs, required: 2 });
    }
    let n = pairs as f64;
    let mean_difference = differences.iter().sum::<f64>() / n;
    if differences.iter().all(|d| *d == differences[0]) {
        return Err(PairedError::ZeroVariance { mean_difference });
    }
    let squares: f64 = differences.iter().map(|d| (d - mean_difference) * (d - mean_difference)).sum();
    let std_dev = libm::sqrt(squares / (n - 1.0));
    let std_error = std_dev / libm::sqrt(n);
    let t = mean_difference / std_error;
    let degrees_of_freedom = pairs - 1;
    let df = degrees_of_freedom as f64;
    let p_value = student_t_two_sided_p(t, df);
    let t_critical = student_t_quantile(0.975, df);
    Ok(PairedTTest {
        pairs,
        mean_difference,
        std_dev,
        std_error,
        t,
        degrees_of_freedom,
        p_value,
        ci95_low: mean_difference - t_critical * std_error,
        ci95_high: mean_difference + t_critical * std_error,
    })
}

/// Cumulative distribution function of Student's t with `df > 0` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * student_t_two_sided_p(t, df);
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Two-sided tail probability `P(|T| >= |t|)` for Student's t with `df > 0` degrees of freedom.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// Quantile of Student's t: the `t` with `student_t_cdf(t, df) == probability`, for `0 < probability < 1`.
///
/// Found by bisection on the CDF after doubling an upper bracket, until the
/// interval cannot be halved further in `f64`. A probability of 0 or less
/// gives negative infinity, 1 or more positive infinity, 0.5 exactly 0.
pub fn student_t_quantile(probability: f64, df: f64) -> f64 {
    if probability <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if probability >= 1.0 {
        return f64::INFINITY;
    }
    if probability == 0.5 {
        return 0.0;
    }
    if probability < 0.5 {
        return -student_t_quantile(1.0 - probability, df);
    }
    let mut high = 1.0;
    while student_t_cdf(high, df) < probability && high < 1e300 {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if middle <= low || middle >= high {
            break;
        }
        if student_t_cdf(middle, df) < probability {
            low = middle;
        } else {
            high = middle;
        }
    }
    0.5 * (low + high)
}

/// Upper tail `P(Z >= z)` of the standard normal distribution.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / core::f64::consts::SQRT_2)
}

/// Regularized incomplete beta function `I_x(a, b)` for `a, b > 0` (Lentz's continued fraction).
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * libm::log(x) + b * libm::log1p(-x);
    let front = libm::exp(log_front);
    // The continued fraction converges fast below the mean (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) above it.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

fn split<T>(result: Result<T, PairedError>) -> (Option<T>, Option<PairedError>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    }
}

fn differences(off: &[f64], on: &[f64]) -> Result<Vec<f64>, PairedError> {
    if off.len() != on.len() {
        return Err(PairedError::LengthMismatch { off: off.len(), on: on.len() });
    }
    off.iter()
        .zip(on)
        .enumerate()
        .map(|(index, (off, on))| {
            let difference = on - off;
            if difference.is_finite() {
                Ok(difference)
            } else {
                Err(PairedError::NonFinite { index })
            }
        })
        .collect()
}

/// Two-sided p-value and continuity-corrected z of the rank sum `w_plus` of `n_used` differences under the normal
/// approximation; `tie_term` is the sum of `t^3 - t` over the tie groups of `|d|`.
fn normal_p_value(n_used: usize, tie_term: f64, w_plus: f64) -> (f64, f64) {
    let n = n_used as f64;
    let mean = n * (n + 1.0) / 4.0;
    let std_dev = libm::sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - tie_term / 2.0) / 24.0);
    let raw = (w_plus - mean) / std_dev;
    let z = if raw > 0.0 {
        raw - 0.5 / std_dev
    } else if raw < 0.0 {
        raw + 0.5 / std_dev
    } else {
        0.0
    };
    ((2.0 * normal_upper_tail(z.abs())).min(1.0), z)
}

/// Exact two-sided p-value of the doubled rank sum `observed` given the doubled ranks.
///
/// Under the null hypothesis every sign pattern is equally likely, so
/// `counts[s]` (the number of subsets of ranks with doubled sum `s`, built
/// one rank at a time) divided by `2^n` is the null distribution of 2·W+.
fn exact_p_value(doubled_ranks: &[u64], observed: u64) -> f64 {
    let total: u64 = doubled_ranks.iter().sum();
    let mut counts: Vec<u64> = alloc::vec![0; total as usize + 1];
    counts[0] = 1;
    let mut reachable = 0usize;
    for rank in doubled_ranks {
        let rank = *rank as usize;
        for sum in (0..=reachable).rev() {
            if counts[sum] != 0 {
                counts[sum + rank] += counts[sum];
            }
        }
        reachable += rank;
    }
    let observed = observed as usize;
    let at_most: u64 = counts[..=observed].iter().sum();
    let at_least: u64 = counts[observed..].iter().sum();
    let patterns = libm::ldexp(1.0, doubled_ranks.len() as i32);
    (2.0 * at_most.min(at_least) as f64 / patterns).min(1.0)
}

/// Continued fraction for the incomplete beta function (modified Lentz, as in Numerical Recipes §6.4).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPSILON: f64 = 1e-16;
    const MAX_TERMS: usize = 10_000;
    let sum_ab = a + b;
    let a_plus = a + 1.0;
    let a_minus = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - sum_ab * x / a_plus;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut fraction = d;
    // One Lentz step with coefficient `term`: updates d and c, returns the factor d * c.
    let lentz = |term: f64, d: &mut f64, c: &mut f64| {
        *d = 1.0 + term * *d;
        if d.abs() < TINY {
            *d = TINY;
        }
        *c = 1.0 + term / *c;
        if c.abs() < TINY {
            *c = TINY;
        }
        *d = 1.0 / *d;
        *d * *c
    };
    for m in 1..=MAX_TERMS {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a_minus + m2) * (a + m2));
        fraction *= lentz(even, &mut d, &mut c);
        let odd = -(a + m) * (sum_ab + m) * x / ((a + m2) * (a_plus + m2));
        let step = lentz(odd, &mut d, &mut c);
        fraction *= step;
        if (step - 1.0).abs() < EPSILON {
            break;
        }
    }
    fraction
}

#[cfg(test)]
mod tests;
