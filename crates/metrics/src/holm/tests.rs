//! Holm adjustment: hand-computed families, ties, untestable members, and the step-down invariants.

use super::*;
use proptest::prelude::*;

#[test]
fn a_family_of_four_is_adjusted_step_down_in_the_original_order() {
    // Sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06, the running max), 0.04 (×1, max 0.06).
    // statsmodels.stats.multitest.multipletests([0.03, 0.01, 0.04, 0.02], method='holm')[1] gives the same.
    let adjusted = holm_adjusted(&[0.03, 0.01, 0.04, 0.02]);
    let expected = [0.06, 0.04, 0.06, 0.06];
    for (got, want) in adjusted.iter().zip(expected) {
        assert!((got - want).abs() < 1e-15, "{adjusted:?}");
    }
}

#[test]
fn nine_equal_p_values_are_each_multiplied_by_nine_and_an_untestable_member_counts_in_the_family() {
    assert_eq!(holm_adjusted(&[2.0 / 64.0; 9]), [9.0 * 2.0 / 64.0; 9]);
    // One real test among three: the two that could not be computed enter as p = 1 and make m = 3.
    assert_eq!(holm_adjusted(&[1.0, 0.01, 1.0]), [1.0, 0.03, 1.0]);
    assert_eq!(holm_adjusted(&[0.5, 0.4]), [0.8, 0.8], "capped by the running max, not below");
    assert_eq!(holm_adjusted(&[0.9, 0.8]), [1.0, 1.0], "capped at 1");
    assert_eq!(holm_adjusted(&[f64::NAN, 0.01]), [1.0, 0.02]);
    assert!(holm_adjusted(&[]).is_empty());
}

proptest! {
    #[test]
    fn adjusted_values_are_at_least_the_raw_ones_at_most_bonferroni_and_keep_the_order(
        p_values in proptest::collection::vec(0.0f64..=1.0, 1..30)
    ) {
        let adjusted = holm_adjusted(&p_values);
        let family = p_values.len() as f64;
        for (raw, holm) in p_values.iter().zip(&adjusted) {
            prop_assert!(*holm >= *raw && *holm <= 1.0);
            prop_assert!(*holm <= (family * raw).min(1.0), "never above Bonferroni");
        }
        for i in 0..p_values.len() {
            for j in 0..p_values.len() {
                if p_values[i] <= p_values[j] {
                    prop_assert!(adjusted[i] <= adjusted[j]);
                }
            }
        }
    }
}
