//! Shapley values against an independent reference (the average over every ordering of the features) and
//! their axioms: completeness, symmetry, dummy features, linearity.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// Tolerance of the f64 sums: the scores here are below 10^3, and 256 weighted terms lose far less than this.
pub(crate) const TOLERANCE: f64 = 1e-9;

/// A small deterministic generator (splitmix64), so the tests need no dependency.
pub(crate) struct Generator(pub(crate) u64);

impl Generator {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    pub(crate) fn between(&mut self, scale: f64) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 * scale - scale
    }
}

/// A nonlinear score with interactions: linear terms, pairwise products, a maximum and a threshold.
struct Nonlinear {
    linear: Vec<f64>,
    pairs: Vec<Vec<f64>>,
    peak: Vec<f64>,
}

impl Nonlinear {
    fn new(features: usize, generator: &mut Generator) -> Self {
        Nonlinear {
            linear: (0..features).map(|_| generator.between(5.0)).collect(),
            pairs: (0..features).map(|_| (0..features).map(|_| generator.between(2.0)).collect()).collect(),
            peak: (0..features).map(|_| generator.between(3.0)).collect(),
        }
    }

    fn score(&self, x: &[f64]) -> f64 {
        let mut total: f64 = self.linear.iter().zip(x).map(|(a, x)| a * x).sum();
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                total += self.pairs[i][j] * x[i] * x[j];
            }
        }
        total += self.peak.iter().zip(x).map(|(c, x)| c * x).fold(f64::MIN, f64::max);
        if x[0] > 0.5 {
            total += 7.0;
        }
        total
    }
}

/// Every ordering of `0..n` (Heap's algorithm).
fn orderings(n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut all = vec![order.clone()];
    let mut counters = vec![0usize; n];
    let mut index = 1;
    while index < n {
        if counters[index] < index {
            let other = if index % 2 == 0 { 0 } else { counters[index] };
            order.swap(other, index);
            all.push(order.clone());
            counters[index] += 1;
            index = 1;
        } else {
            counters[index] = 0;
            index += 1;
        }
    }
    all
}

/// The definition: each feature's marginal contribution, switched on in every possible order, averaged.
pub(crate) fn reference(input: &[f64], baseline: &[f64], mut score: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let orders = orderings(input.len());
    let mut totals = vec![0.0; input.len()];
    for order in &orders {
        let mut point = baseline.to_vec();
        let mut previous = score(&point);
        for &feature in order {
            point[feature] = input[feature];
            let now = score(&point);
            totals[feature] += now - previous;
            previous = now;
        }
    }
    totals.iter().map(|total| total / orders.len() as f64).collect()
}

#[test]
fn the_orderings_are_all_distinct_and_complete() {
    for n in 0..=6 {
        let mut all = orderings(n);
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
        assert_eq!(count, (1..=n).product::<usize>());
    }
}

#[test]
fn equals_the_average_over_every_ordering_and_is_complete() {
    let mut generator = Generator(24);
    for features in 1..=MAX_FEATURES {
        for _ in 0..3 {
            let function = Nonlinear::new(features, &mut generator);
            let input: Vec<f64> = (0..features).map(|_| generator.between(1.0)).collect();
            let baseline: Vec<f64> = (0..features).map(|_| generator.between(1.0)).collect();
            let values = shapley(&input, &baseline, |x| function.score(x)).unwrap();
            let expected = reference(&input, &baseline, |x| function.score(x));
            assert_eq!(values.features(), features);
            assert_eq!(values.evaluations, 1 << features);
            for (index, (got, want)) in values.contributions().iter().zip(&expected).enumerate() {
                assert!((got - want).abs() <= TOLERANCE, "{features} features, feature {index}: {got} != {want}");
            }
            assert_eq!(values.score, function.score(&input));
            assert_eq!(values.baseline_score, function.score(&baseline));
            assert!(values.completeness_error() <= TOLERANCE, "{}", values.completeness_error());
        }
    }
}

#[test]
fn symmetric_features_get_equal_values_and_dummies_get_zero() {
    // Features 0 and 1 enter only through their sum, 3 not at all.
    let score = |x: &[f64]| (x[0] + x[1]).max(0.2) * x[2] + if x[0] + x[1] > 1.0 { 3.0 } else { 0.0 };
    let input = [0.7, 0.7, 2.0, 9.0];
    let baseline = [0.0; 4];
    let values = shapley(&input, &baseline, score).unwrap();
    let contributions = values.contributions();
    assert_eq!(contributions[0], contributions[1]);
    assert_eq!(contributions[3], 0.0);
    assert!(contributions[2] > 0.0);
    assert!(values.completeness_error() <= TOLERANCE);
    // A score that ignores every feature: every value is 0.
    let constant = shapley(&input, &baseline, |_| 5.0).unwrap();
    assert!(constant.contributions().iter().all(|value| *value == 0.0));
}

#[test]
fn a_linear_score_gives_each_feature_its_own_term() {
    let weights = [2.0, -3.0, 0.5, 4.0, -1.0];
    let input = [1.0, 2.0, -4.0, 0.25, 3.0];
    let baseline = [0.5, 0.0, 0.0, 0.0, 1.0];
    let values = shapley(&input, &baseline, |x| weights.iter().zip(x).map(|(w, x)| w * x).sum()).unwrap();
    for index in 0..5 {
        let expected = weights[index] * (input[index] - baseline[index]);
        assert!((values.contributions()[index] - expected).abs() <= TOLERANCE);
    }
}

#[test]
fn an_interaction_is_split_evenly() {
    // Only both together score: each gets half.
    let values = shapley(&[1.0, 1.0], &[0.0, 0.0], |x| if x[0] > 0.0 && x[1] > 0.0 { 800.0 } else { 0.0 }).unwrap();
    assert_eq!(values.contributions(), &[400.0, 400.0]);
    assert_eq!(values.ranking()[..2], [0, 1]);
}

#[test]
fn ranking_orders_by_magnitude_and_keeps_ties_in_input_order() {
    let weights = [1.0, -5.0, 3.0, 3.0, 0.0];
    let values = shapley(&[1.0; 5], &[0.0; 5], |x| weights.iter().zip(x).map(|(w, x)| w * x).sum()).unwrap();
    assert_eq!(values.ranking()[..5], [1, 2, 3, 0, 4]);
}

#[test]
fn bad_arguments_are_refused() {
    assert_eq!(shapley(&[1.0], &[0.0, 0.0], |_| 0.0), Err(ShapleyError::LengthMismatch { input: 1, baseline: 2 }));
    assert_eq!(shapley(&[0.0; 9], &[0.0; 9], |_| 0.0), Err(ShapleyError::TooManyFeatures { features: 9 }));
    assert_eq!(
        shapley(&[1.0, 1.0], &[0.0, 0.0], |x| if x[1] > 0.0 { f64::NAN } else { 0.0 }),
        Err(ShapleyError::NotFinite { coalition: 2 })
    );
    // No features: nothing to attribute, one evaluation.
    let empty = shapley(&[], &[], |_| 3.0).unwrap();
    assert_eq!((empty.features(), empty.evaluations, empty.score, empty.baseline_score), (0, 1, 3.0, 3.0));
}
