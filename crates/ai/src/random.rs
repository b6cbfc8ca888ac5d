//! The seeded generator behind weights, exploration and replay sampling.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// xoshiro256++ with the draws learning needs.
#[derive(Debug, Clone)]
pub struct Random {
    inner: Xoshiro256PlusPlus,
}

impl Random {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Random { inner: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.inner.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// Uniform in 0..bound (0 when bound is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            ((self.inner.next_u64() as u128 * bound as u128) >> 64) as usize
        }
    }
}
