//! The seeded generator every randomized part of SIS draws from (stress workloads, learning agents).

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// xoshiro256++ with the draws SIS needs; the same stream on every platform for a seed.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    inner: Xoshiro256PlusPlus,
}

impl SeededRandom {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom { inner: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// A uniform 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `0..bound` without modulo bias (Lemire's method); 0 when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = self.next_u64() as u128 * bound as u128;
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Uniform in `low..=high` (the bounds may come in either order).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        let (low, high) = if low <= high { (low, high) } else { (high, low) };
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// Uniform in [0, 1) with 24 bits of precision (exact in f32).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// True with probability `percent` / 100.
    pub fn chance_percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Log-uniform in `low..=high` (both at least 1): every power of two between them is equally likely.
    pub fn log_uniform(&mut self, low: u64, high: u64) -> u64 {
        let (low, high) = (low.max(1), high.max(1));
        let (low, high) = if low <= high { (low, high) } else { (high, low) };
        let low_bits = 63 - low.leading_zeros() as u64;
        let high_bits = 63 - high.leading_zeros() as u64;
        let bits = self.range(low_bits, high_bits);
        let start = (1u64 << bits).max(low);
        let end = if bits == 63 { u64::MAX } else { ((1u64 << (bits + 1)) - 1).min(high) };
        self.range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = (0..8).scan(SeededRandom::new(7), |rng, _| Some(rng.next_u64())).collect();
        let b: Vec<u64> = (0..8).scan(SeededRandom::new(7), |rng, _| Some(rng.next_u64())).collect();
        let c: Vec<u64> = (0..8).scan(SeededRandom::new(8), |rng, _| Some(rng.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn bounded_draws_stay_in_bounds_and_cover_them() {
        let mut rng = SeededRandom::new(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let value = rng.range(10, 19);
            assert!((10..=19).contains(&value));
            seen[(value - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&count| (800..1200).contains(&count)), "{seen:?}");
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.range(5, 5), 5);
        let _ = rng.range(0, u64::MAX);
    }

    #[test]
    fn log_uniform_spreads_over_powers_of_two() {
        let mut rng = SeededRandom::new(3);
        let mut per_power = [0u32; 11];
        for _ in 0..11_000 {
            let value = rng.log_uniform(1, 2047);
            assert!((1..=2047).contains(&value));
            per_power[63 - value.leading_zeros() as usize] += 1;
        }
        assert!(per_power.iter().all(|&count| (800..1200).contains(&count)), "{per_power:?}");
    }

    #[test]
    fn chance_matches_its_percentage() {
        let mut rng = SeededRandom::new(11);
        let hits = (0..100_000).filter(|_| rng.chance_percent(15)).count();
        assert!((14_000..16_000).contains(&hits), "{hits}");
    }
}
