//! Pressure trend: least-squares line through the last samples, in exact integer arithmetic.
//!
//! The fit uses `i128` sums of times (ns, relative to the oldest sample
//! held) and pressures (per mille), so the prediction is the same on every
//! machine and under softfloat, with no rounding until the final division.
//! Sums stay far below `i128`'s range for any window shorter than about a
//! day; beyond that the estimate is `None` (checked arithmetic), never wrong.

use crate::ring::Ring;

/// Samples the trend keeps.
pub const TREND_CAPACITY: usize = 16;

/// What the fitted line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrendEstimate {
    /// Samples the line was fitted to.
    pub samples: u16,
    /// Samples the trend can hold ([`TREND_CAPACITY`]).
    pub capacity: u16,
    /// Most recent pressure sample.
    pub latest_per_mille: u16,
    /// Slope in per mille per second, rounded to nearest.
    pub slope_per_mille_per_s: i64,
    /// How far ahead of the latest sample the prediction looks.
    pub horizon_ns: u64,
    /// Pressure the line gives at the latest sample's time plus the horizon, rounded, clamped to 0..=1000.
    pub predicted_per_mille: u16,
    /// Coefficient of determination R² of the fit in per mille (1000 when every sample is equal).
    pub fit_per_mille: u16,
}

/// A sample's time was before the previous sample's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TimeWentBackwards {
    /// Time of the previous sample.
    pub previous_ns: u64,
    /// Time given.
    pub given_ns: u64,
}

/// The last [`TREND_CAPACITY`] pressure samples.
#[derive(Debug, Clone, Default)]
pub struct PressureTrend {
    samples: Ring<(u64, u16), TREND_CAPACITY>,
}

impl PressureTrend {
    /// No samples.
    pub fn new() -> Self {
        PressureTrend { samples: Ring::new() }
    }

    /// Adds a sample (pressure above 1000 is taken as 1000); times must not go backwards.
    pub fn push(&mut self, at_ns: u64, pressure_per_mille: u16) -> Result<(), TimeWentBackwards> {
        if let Some((previous_ns, _)) = self.samples.last(1).next().copied() {
            if at_ns < previous_ns {
                return Err(TimeWentBackwards { previous_ns, given_ns: at_ns });
            }
        }
        self.samples.push((at_ns, pressure_per_mille.min(1000)));
        Ok(())
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Fits the line and predicts `horizon_ns` past the latest sample; `None` with fewer than two distinct
    /// sample times or if a sum would overflow.
    pub fn estimate(&self, horizon_ns: u64) -> Option<TrendEstimate> {
        let (origin_ns, _) = *self.samples.iter().next()?;
        let (latest_ns, latest_per_mille) = *self.samples.last(1).next()?;
        let n = self.samples.len() as i128;
        let (mut sum_t, mut sum_p, mut sum_tt, mut sum_tp, mut sum_pp) = (0i128, 0i128, 0i128, 0i128, 0i128);
        for (at_ns, pressure) in self.samples.iter() {
            let t = (at_ns - origin_ns) as i128;
            let p = *pressure as i128;
            sum_t = sum_t.checked_add(t)?;
            sum_p += p;
            sum_tt = sum_tt.checked_add(t.checked_mul(t)?)?;
            sum_tp = sum_tp.checked_add(t * p)?;
            sum_pp += p * p;
        }
        // n² times the variance of t, the covariance of t and p, and the variance of p.
        let spread_t = n.checked_mul(sum_tt)?.checked_sub(sum_t.checked_mul(sum_t)?)?;
        if spread_t <= 0 {
            return None;
        }
        let covariance = n.checked_mul(sum_tp)?.checked_sub(sum_t.checked_mul(sum_p)?)?;
        let spread_p = n * sum_pp - sum_p * sum_p;

        // p̂(x) = (Σp·D + C·(n·x − Σt)) / (n·D), with D = spread_t and C = covariance.
        let x = (latest_ns - origin_ns) as i128 + horizon_ns as i128;
        let numerator = sum_p.checked_mul(spread_t)?.checked_add(covariance.checked_mul(n.checked_mul(x)? - sum_t)?)?;
        let denominator = n.checked_mul(spread_t)?;
        let predicted = rounded_division(numerator, denominator)?.clamp(0, 1000) as u16;
        let slope = rounded_division(covariance.checked_mul(1_000_000_000)?, spread_t)?;
        let fit = if spread_p == 0 {
            1000
        } else {
            let explained = covariance.checked_mul(covariance)?.checked_mul(1000)?;
            (explained / spread_t.checked_mul(spread_p)?).clamp(0, 1000) as u16
        };
        Some(TrendEstimate {
            samples: n as u16,
            capacity: TREND_CAPACITY as u16,
            latest_per_mille,
            slope_per_mille_per_s: i64::try_from(slope).ok()?,
            horizon_ns,
            predicted_per_mille: predicted,
            fit_per_mille: fit,
        })
    }
}

/// `numerator / denominator` rounded to nearest (halves away from zero), for a positive denominator.
fn rounded_division(numerator: i128, denominator: i128) -> Option<i128> {
    let half = denominator / 2;
    let shifted = if numerator >= 0 { numerator.checked_add(half)? } else { numerator.checked_sub(half)? };
    Some(shifted / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn straight_line_is_predicted_exactly() {
        let mut trend = PressureTrend::new();
        // 500 ‰ rising by 10 ‰ every 10 ms: 1,000 ‰ per second.
        for step in 0..8u64 {
            trend.push(step * 10 * MS, 500 + 10 * step as u16).unwrap();
        }
        let estimate = trend.estimate(100 * MS).unwrap();
        assert_eq!(
            estimate,
            TrendEstimate {
                samples: 8,
                capacity: 16,
                latest_per_mille: 570,
                slope_per_mille_per_s: 1000,
                horizon_ns: 100 * MS,
                predicted_per_mille: 670,
                fit_per_mille: 1000,
            }
        );
    }

    #[test]
    fn noisy_samples_give_the_least_squares_line() {
        // t = 0, 1, 2, 3 s; p = 100, 300, 200, 400: slope 80 ‰/s, intercept 130, R² = 0.64.
        let mut trend = PressureTrend::new();
        for (second, pressure) in [(0u64, 100u16), (1, 300), (2, 200), (3, 400)] {
            trend.push(second * 1000 * MS, pressure).unwrap();
        }
        let estimate = trend.estimate(2_000 * MS).unwrap();
        assert_eq!(estimate.slope_per_mille_per_s, 80);
        // 130 + 80 · 5 = 530.
        assert_eq!(estimate.predicted_per_mille, 530);
        assert_eq!(estimate.fit_per_mille, 640);
    }

    #[test]
    fn prediction_is_clamped_and_flat_signal_fits_perfectly() {
        let mut trend = PressureTrend::new();
        for step in 0..4u64 {
            trend.push(step * MS, 900 + 30 * step as u16).unwrap();
        }
        assert_eq!(trend.estimate(1_000 * MS).unwrap().predicted_per_mille, 1000);
        let mut flat = PressureTrend::new();
        flat.push(0, 400).unwrap();
        flat.push(MS, 400).unwrap();
        let estimate = flat.estimate(MS).unwrap();
        assert_eq!(
            (estimate.predicted_per_mille, estimate.fit_per_mille, estimate.slope_per_mille_per_s),
            (400, 1000, 0)
        );
    }

    #[test]
    fn needs_two_distinct_times_and_time_order() {
        let mut trend = PressureTrend::new();
        assert_eq!(trend.estimate(MS), None);
        trend.push(5 * MS, 300).unwrap();
        assert_eq!(trend.estimate(MS), None);
        trend.push(5 * MS, 320).unwrap();
        assert_eq!(trend.estimate(MS), None);
        assert_eq!(trend.push(4 * MS, 300), Err(TimeWentBackwards { previous_ns: 5 * MS, given_ns: 4 * MS }));
        assert_eq!(trend.len(), 2);
    }

    #[test]
    fn window_slides_over_the_last_samples() {
        let mut trend = PressureTrend::new();
        // Twenty samples falling, then sixteen flat ones: only the flat ones remain.
        for step in 0..20u64 {
            trend.push(step * MS, 1000 - 10 * step as u16).unwrap();
        }
        for step in 20..36u64 {
            trend.push(step * MS, 250).unwrap();
        }
        let estimate = trend.estimate(50 * MS).unwrap();
        assert_eq!((estimate.samples, estimate.slope_per_mille_per_s, estimate.predicted_per_mille), (16, 0, 250));
    }
}
