//! A token bucket in exact integer arithmetic: the level is in units of 10^-9 request.

use serde::Serialize;

/// Units in one request.
const UNITS_PER_REQUEST: u128 = 1_000_000_000;

/// The bucket's level and when it was last refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct Bucket {
    level_units: u128,
    updated_ns: u64,
}

impl Bucket {
    /// Holding `burst` requests at `now_ns`.
    pub(super) fn full(burst: u64, now_ns: u64) -> Bucket {
        Bucket { level_units: capacity(burst), updated_ns: now_ns }
    }

    /// Adds what `rate_per_second` brings from the last refill to `now_ns`, up to `burst` requests. A clock
    /// reading earlier than the last one adds nothing.
    pub(super) fn refill(&mut self, rate_per_second: u64, burst: u64, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.updated_ns);
        // rate_per_second units per ns; (2^64 - 1)^2 < 2^128, so the product fits.
        let added = u128::from(elapsed) * u128::from(rate_per_second);
        self.level_units = self.level_units.saturating_add(added).min(capacity(burst));
        self.updated_ns = self.updated_ns.max(now_ns);
    }

    /// Keeps at most `burst` requests.
    pub(super) fn clamp(&mut self, burst: u64) {
        self.level_units = self.level_units.min(capacity(burst));
    }

    /// `None` if a whole request is available; otherwise the ns until one is, rounded up.
    pub(super) fn retry_after_ns(&self, rate_per_second: u64) -> Option<u64> {
        let missing = UNITS_PER_REQUEST.checked_sub(self.level_units).filter(|&missing| missing > 0)?;
        let rate = u128::from(rate_per_second.max(1));
        // missing <= 10^9, so the quotient fits in u64.
        Some(u64::try_from(missing.div_ceil(rate)).unwrap_or(u64::MAX))
    }

    /// Takes one request; the caller checked [`Bucket::retry_after_ns`] is `None`.
    pub(super) fn take_one(&mut self) {
        self.level_units = self.level_units.saturating_sub(UNITS_PER_REQUEST);
    }

    /// Whole requests available.
    pub(super) fn whole_requests(&self) -> u64 {
        u64::try_from(self.level_units / UNITS_PER_REQUEST).unwrap_or(u64::MAX)
    }
}

fn capacity(burst: u64) -> u128 {
    u128::from(burst) * UNITS_PER_REQUEST
}
