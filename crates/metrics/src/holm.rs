//! Holm–Bonferroni adjusted p-values: a family-wise error correction for several tests read together.
//!
//! A comparison tests many figures at once; at a level α per figure, the
//! chance that at least one of m unchanged figures shows a "difference"
//! grows towards m·α. Holm's step-down procedure keeps that family-wise
//! error at α for any dependence between the tests, and rejects at least
//! what Bonferroni rejects. Its adjusted p-values let each figure be read
//! against α directly: a figure differs at family-wise level α when its
//! adjusted p is below α, whatever α is.

use alloc::vec::Vec;

/// Holm-adjusted p-values, in the order of `p_values`.
///
/// With the p-values sorted ascending, `p_(1) <= … <= p_(m)`, the adjusted
/// value of the i-th is `max over j <= i of min(1, (m − j + 1) · p_(j))`.
/// Equal p-values get equal adjusted values, so the order among ties does
/// not matter. A test that could not be computed belongs in the family as a
/// p-value of 1 (it counts in m and is never rejected). Values are clamped
/// to 0..=1; a NaN is treated as 1.
pub fn holm_adjusted(p_values: &[f64]) -> Vec<f64> {
    let family = p_values.len();
    let clamped: Vec<f64> = p_values.iter().map(|p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }).collect();
    let mut order: Vec<usize> = (0..family).collect();
    order.sort_by(|a, b| clamped[*a].total_cmp(&clamped[*b]));
    let mut adjusted = alloc::vec![1.0; family];
    let mut running_max: f64 = 0.0;
    for (rank, index) in order.into_iter().enumerate() {
        let multiplier = (family - rank) as f64;
        running_max = running_max.max((multiplier * clamped[index]).min(1.0));
        adjusted[index] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests;
