//! Paired statistics tests: figures compared with scipy 1.17.1, plus error cases and hand-checked edges.
//!
//! Every expected value below was printed by the Python call written beside
//! it (`from scipy import stats; import numpy as np`), so it can be
//! reproduced. The difference is always `on - off`, matching scipy's
//! `wilcoxon(on, off)` and `ttest_rel(on, off)`.

use super::*;

fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let error = (actual - expected).abs();
    assert!(error <= relative * expected.abs(), "{what}: got {actual:e}, expected {expected:e}, error {error:e}");
}

/// Checks a t-test against scipy's `ttest_rel(on, off)` and its `confidence_interval(0.95)`.
fn assert_t_test(result: &PairedTTest, t: f64, p: f64, low: f64, high: f64) {
    assert_close(result.t, t, 1e-12, "t");
    assert_close(result.p_value, p, 1e-9, "p");
    assert_close(result.ci95_low, low, 1e-9, "ci95_low");
    assert_close(result.ci95_high, high, 1e-9, "ci95_high");
}

// All ten differences positive and distinct: W+ = 55 is the largest possible sum,
// reached by one sign pattern of 1024, so the exact two-sided p is 2/1024.
const ALL_POSITIVE_OFF: [f64; 10] = [3.0, 5.0, 2.0, 8.0, 4.0, 6.0, 1.0, 7.0, 9.0, 2.0];
const ALL_POSITIVE_ON: [f64; 10] = [4.5, 7.0, 2.25, 12.0, 6.0, 9.5, 1.5, 11.0, 14.0, 3.75];

// Differences -3 -3 1 -5 -2 1 -4 -3 -3 -2 -3 -2: ties, two positive, no zeros.
const TIES_OFF: [f64; 12] = [8.0, 11.0, 9.0, 14.0, 7.0, 10.0, 12.0, 9.0, 13.0, 8.0, 10.0, 11.0];
const TIES_ON: [f64; 12] = [5.0, 8.0, 10.0, 9.0, 5.0, 11.0, 8.0, 6.0, 10.0, 6.0, 7.0, 9.0];

// Differences 0 -2 -2 0 -3 2 -3 0 -3 -1 0 -4 -3 0 1: five zeros, ties, mixed signs.
const ZEROS_OFF: [f64; 15] = [6.0, 4.0, 9.0, 5.0, 7.0, 3.0, 8.0, 6.0, 5.0, 7.0, 4.0, 9.0, 6.0, 5.0, 8.0];
const ZEROS_ON: [f64; 15] = [6.0, 2.0, 7.0, 5.0, 4.0, 5.0, 5.0, 6.0, 2.0, 6.0, 4.0, 5.0, 3.0, 5.0, 9.0];

// off[i] = 20 + (7 i mod 13); d[i] = (i + 1) / 2, negated unless i % 4 == 0: twenty distinct magnitudes.
const DISTINCT_OFF: [f64; 20] = [
    20.0, 27.0, 21.0, 28.0, 22.0, 29.0, 23.0, 30.0, 24.0, 31.0, 25.0, 32.0, 26.0, 20.0, 27.0, 21.0, 28.0, 22.0, 29.0,
    23.0,
];
const DISTINCT_ON: [f64; 20] = [
    20.5, 26.0, 19.5, 26.0, 24.5, 26.0, 19.5, 26.0, 28.5, 26.0, 19.5, 26.0, 32.5, 13.0, 19.5, 13.0, 36.5, 13.0, 19.5,
    13.0,
];

#[test]
fn wilcoxon_all_positive_n10_is_two_in_1024() {
    // stats.wilcoxon(on, off, method='exact').pvalue == 0.001953125
    let result = wilcoxon_signed_rank(&ALL_POSITIVE_OFF, &ALL_POSITIVE_ON).unwrap();
    assert_eq!(result.p_value, 2.0 / 1024.0);
    assert_eq!((result.w_plus, result.w_minus), (55.0, 0.0));
    assert_eq!((result.pairs, result.zeros_dropped, result.n_used), (10, 0, 10));
    assert_eq!(result.method, WilcoxonMethod::Exact);
    assert_eq!(result.z, None);
}

#[test]
fn wilcoxon_with_ties_matches_scipy_exact_permutation() {
    // stats.wilcoxon(on, off, method=stats.PermutationMethod(n_resamples=np.inf)) -> statistic 3.0,
    // pvalue 0.001953125 (4 of 4096 sign patterns have W+ <= 3). scipy's method='exact' gives
    // 0.00244140625 here because its table assumes untied ranks; ours is conditional on the ties.
    let result = wilcoxon_signed_rank(&TIES_OFF, &TIES_ON).unwrap();
    assert_close(result.p_value, 0.001953125, 1e-9, "p");
    assert_eq!((result.w_plus, result.w_minus), (3.0, 75.0));
    assert_eq!((result.zeros_dropped, result.n_used), (0, 12));
}

#[test]
fn wilcoxon_drops_zero_differences() {
    // stats.wilcoxon(on, off, zero_method='wilcox', method=stats.PermutationMethod(n_resamples=np.inf))
    // -> statistic 5.5, pvalue 0.025390625 (13 of 1024 patterns of the ten non-zero ranks have W+ <= 5.5).
    let result = wilcoxon_signed_rank(&ZEROS_OFF, &ZEROS_ON).unwrap();
    assert_close(result.p_value, 0.025390625, 1e-9, "p");
    assert_eq!((result.w_plus, result.w_minus), (5.5, 49.5));
    assert_eq!((result.pairs, result.zeros_dropped, result.n_used), (15, 5, 10));
    assert_eq!(result.method, WilcoxonMethod::Exact);
}

#[test]
fn wilcoxon_distinct_n20_matches_scipy_exact() {
    // stats.wilcoxon(on, off, method='exact') -> statistic 45.0, pvalue 0.023950576782226562
    let result = wilcoxon_signed_rank(&DISTINCT_OFF, &DISTINCT_ON).unwrap();
    assert_close(result.p_value, 0.023950576782226562, 1e-9, "p");
    assert_eq!((result.w_plus, result.w_minus), (45.0, 165.0));
}

#[test]
fn wilcoxon_n50_is_still_exact() {
    // d = [((i*37) % 50 + 1) * (1 if (i*3) % 7 == 0 else -1) for i in range(50)]; off = [100.0]*50
    // stats.wilcoxon(on, off, method='exact') -> statistic 160.0, pvalue 7.723469384046666e-07
    let off = [100.0; 50];
    let on: Vec<f64> = (0..50)
        .map(|i| {
            let magnitude = ((i * 37) % 50 + 1) as f64;
            100.0 + if (i * 3) % 7 == 0 { magnitude } else { -magnitude }
        })
        .collect();
    let result = wilcoxon_signed_rank(&off, &on).unwrap();
    assert_eq!(result.method, WilcoxonMethod::Exact);
    assert_eq!((result.w_plus, result.w_minus), (160.0, 1115.0));
    assert_close(result.p_value, 7.723469384046666e-07, 1e-9, "p");
}

#[test]
fn wilcoxon_above_50_uses_normal_approximation_with_corrections() {
    // off = [(i*7) % 11 + 5 for i in range(60)]; on = [(i*5) % 9 + 4 for i in range(60)]
    // stats.wilcoxon(on, off, zero_method='wilcox', method='asymptotic', correction=True)
    // -> statistic 360.5, zstatistic -3.434747086458469, pvalue 0.0005931070917288466 (5 zeros, 55 used)
    let off: Vec<f64> = (0..60).map(|i| ((i * 7) % 11 + 5) as f64).collect();
    let on: Vec<f64> = (0..60).map(|i| ((i * 5) % 9 + 4) as f64).collect();
    let result = wilcoxon_signed_rank(&off, &on).unwrap();
    assert_eq!(result.method, WilcoxonMethod::Normal);
    assert_eq!((result.zeros_dropped, result.n_used), (5, 55));
    assert_eq!((result.w_plus, result.w_minus), (360.5, 1179.5));
    assert_close(result.z.unwrap(), -3.434747086458469, 1e-9, "z");
    assert_close(result.p_value, 0.0005931070917288466, 1e-9, "p");

    // stats.ttest_rel(on, off) -> statistic -3.9045825629110307, pvalue 0.0002451991167238584,
    // confidence_interval(0.95) (-3.125778718062496, -1.0075546152708377)
    let t_test = paired_t_test(&off, &on).unwrap();
    assert_t_test(&t_test, -3.9045825629110307, 0.0002451991167238584, -3.125778718062496, -1.0075546152708377);
}

#[test]
fn wilcoxon_single_difference_has_p_one() {
    // One non-zero difference: both sign patterns are equally likely, so p = min(1, 2 * 1/2) = 1.
    let result = wilcoxon_signed_rank(&[1.0, 2.0], &[1.0, 5.0]).unwrap();
    assert_eq!((result.n_used, result.w_plus, result.p_value), (1, 1.0, 1.0));
}

#[test]
fn t_test_matches_scipy() {
    // stats.ttest_rel(on, off): statistic, pvalue, df, confidence_interval(0.95)
    let all_positive = paired_t_test(&ALL_POSITIVE_OFF, &ALL_POSITIVE_ON).unwrap();
    assert_t_test(&all_positive, 4.862327832168825, 0.0008929496080780447, 1.3101580888503184, 3.5898419111496818);
    assert_eq!(all_positive.degrees_of_freedom, 9);
    assert_close(all_positive.mean_difference, 2.45, 1e-15, "mean");
    // d.std(ddof=1) == 1.5933891203622828
    assert_close(all_positive.std_dev, 1.5933891203622828, 1e-12, "std_dev");

    let ties = paired_t_test(&TIES_OFF, &TIES_ON).unwrap();
    assert_t_test(&ties, -4.553105449115936, 0.0008259208564842562, -3.4612738340768416, -1.2053928325898253);

    let zeros = paired_t_test(&ZEROS_OFF, &ZEROS_ON).unwrap();
    assert_t_test(&zeros, -2.60975301720504, 0.020582775613734144, -2.1862021457715413, -0.21379785422845865);
    assert_eq!(zeros.degrees_of_freedom, 14);

    let distinct = paired_t_test(&DISTINCT_OFF, &DISTINCT_ON).unwrap();
    assert_t_test(&distinct, -2.522457273706419, 0.020733775274034978, -5.4892679962022335, -0.5107320037977665);
    assert_eq!(distinct.mean_difference, -3.0);
}

#[test]
fn t_quantiles_match_scipy() {
    // stats.t.ppf(0.975, df) for df = 1, 2, 9, 29
    for (df, expected) in
        [(1.0, 12.706204736174694), (2.0, 4.302652729749462), (9.0, 2.262157162798205), (29.0, 2.045229642132703)]
    {
        assert_close(student_t_quantile(0.975, df), expected, 1e-12, "t quantile");
        assert_close(student_t_quantile(0.025, df), -expected, 1e-12, "t quantile");
    }
    assert_eq!(student_t_quantile(0.5, 5.0), 0.0);
    assert_eq!(student_t_quantile(0.0, 5.0), f64::NEG_INFINITY);
    assert_eq!(student_t_quantile(1.0, 5.0), f64::INFINITY);
}

#[test]
fn incomplete_beta_matches_scipy() {
    // scipy.special.betainc(2.5, 0.5, 0.3) == 0.018927124071945658
    assert_close(regularized_incomplete_beta(2.5, 0.5, 0.3), 0.018927124071945658, 1e-12, "betainc");
    assert_eq!(regularized_incomplete_beta(2.0, 3.0, 0.0), 0.0);
    assert_eq!(regularized_incomplete_beta(2.0, 3.0, 1.0), 1.0);
}

#[test]
fn errors_are_explicit_and_never_nan() {
    assert_eq!(paired_t_test(&[1.0, 2.0], &[1.0]), Err(PairedError::LengthMismatch { off: 2, on: 1 }));
    assert_eq!(wilcoxon_signed_rank(&[1.0], &[1.0, 2.0]), Err(PairedError::LengthMismatch { off: 1, on: 2 }));
    assert_eq!(paired_t_test(&[], &[]), Err(PairedError::TooFewPairs { pairs: 0, required: 2 }));
    assert_eq!(paired_t_test(&[1.0], &[3.0]), Err(PairedError::TooFewPairs { pairs: 1, required: 2 }));
    assert_eq!(wilcoxon_signed_rank(&[], &[]), Err(PairedError::TooFewPairs { pairs: 0, required: 1 }));
    assert_eq!(wilcoxon_signed_rank(&[4.0, 5.0], &[4.0, 5.0]), Err(PairedError::AllDifferencesZero { pairs: 2 }));
    assert_eq!(
        paired_t_test(&[1.0, 2.0, 3.0], &[3.0, 4.0, 5.0]),
        Err(PairedError::ZeroVariance { mean_difference: 2.0 })
    );
    assert_eq!(paired_t_test(&[1.0, f64::NAN], &[1.0, 2.0]), Err(PairedError::NonFinite { index: 1 }));
    assert_eq!(wilcoxon_signed_rank(&[f64::INFINITY], &[1.0]), Err(PairedError::NonFinite { index: 0 }));
}

#[test]
fn comparison_serializes_results_and_reasons() {
    let comparison = compare_paired(&[1.0, 2.0, 3.0], &[3.0, 4.0, 5.0]);
    assert_eq!(comparison.pairs, 3);
    assert_eq!(comparison.t_test, None);
    let json = serde_json::to_string(&comparison).unwrap();
    assert_eq!(
        json,
        r#"{"pairs":3,"wilcoxon":{"pairs":3,"zeros_dropped":0,"n_used":3,"w_plus":6.0,"w_minus":0.0,"z":null,"p_value":0.25,"min_reachable_p":0.25,"method":"exact"},"wilcoxon_error":null,"t_test":null,"t_test_error":{"code":"zero_variance","mean_difference":2.0}}"#
    );
    let mismatch = compare_paired(&[1.0], &[]);
    assert_eq!(mismatch.pairs, 0);
    assert_eq!(mismatch.wilcoxon_error, Some(PairedError::LengthMismatch { off: 1, on: 0 }));
}

#[test]
fn error_messages_say_what_is_wrong() {
    assert_eq!(
        PairedError::TooFewPairs { pairs: 1, required: 2 }.to_string(),
        "too few pairs: 1, the test needs at least 2"
    );
    assert_eq!(
        PairedError::LengthMismatch { off: 3, on: 2 }.to_string(),
        "cannot pair 3 values (autonomy off) with 2 values (autonomy on)"
    );
}

#[test]
fn the_smallest_reachable_p_is_two_in_two_to_the_informative_pairs_ties_and_zeros_aside() {
    // Ten distinct positive differences: the observed p is the floor.
    let result = wilcoxon_signed_rank(&ALL_POSITIVE_OFF, &ALL_POSITIVE_ON).unwrap();
    assert_eq!((result.p_value, result.min_reachable_p), (2.0 / 1024.0, 2.0 / 1024.0));
    // Twelve tied differences: W+ = 0 is still one sign pattern of 4096.
    let result = wilcoxon_signed_rank(&TIES_OFF, &TIES_ON).unwrap();
    assert_eq!(result.min_reachable_p, 2.0 / 4096.0);
    // Fifteen pairs, five zero: ten informative, so 2/1024 whatever the fifteen.
    let result = wilcoxon_signed_rank(&ZEROS_OFF, &ZEROS_ON).unwrap();
    assert_eq!((result.n_used, result.min_reachable_p), (10, 2.0 / 1024.0));
    // The issue's case: four informative pairs of 10 can never give less than 0.125, one pair never less than 1.
    let off = [5.0; 10];
    let on = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0];
    let result = wilcoxon_signed_rank(&off, &on).unwrap();
    assert_eq!((result.n_used, result.p_value, result.min_reachable_p), (4, 0.125, 0.125));
    let result = wilcoxon_signed_rank(&[1.0, 2.0], &[1.0, 5.0]).unwrap();
    assert_eq!(result.min_reachable_p, 1.0);
}

#[test]
fn above_50_the_smallest_reachable_p_is_the_normal_approximation_at_the_largest_rank_sum() {
    // Sixty differences 1..=60, all positive: W+ = 1830, mean 915, sd = sqrt(60·61·121/24) = 135.8400..., so
    // z = (915 − 0.5) / sd and the p of the data is the floor.
    let off = [0.0; 60];
    let on: Vec<f64> = (1..=60).map(f64::from).collect();
    let result = wilcoxon_signed_rank(&off, &on).unwrap();
    assert_eq!(result.method, WilcoxonMethod::Normal);
    assert_eq!(result.p_value, result.min_reachable_p);
    let z = 914.5 / libm::sqrt(60.0 * 61.0 * 121.0 / 24.0);
    assert_close(result.min_reachable_p, 2.0 * normal_upper_tail(z), 1e-12, "floor");
    assert!(result.min_reachable_p < 1e-10);
    // The mixed-sign data of the normal test above: its floor is that of 55 informative pairs with its ties, below
    // its p.
    let off: Vec<f64> = (0..60).map(|i| ((i * 7) % 11 + 5) as f64).collect();
    let on: Vec<f64> = (0..60).map(|i| ((i * 5) % 9 + 4) as f64).collect();
    let result = wilcoxon_signed_rank(&off, &on).unwrap();
    assert!(result.min_reachable_p < result.p_value);
    let flipped: Vec<f64> = off.iter().zip(&on).map(|(off, on)| off + (on - off).abs()).collect();
    assert_eq!(wilcoxon_signed_rank(&off, &flipped).unwrap().p_value, result.min_reachable_p, "all signs positive");
}
