//! Safe hardware traits that portable crates take as parameters, with controllable fakes for host tests.
//!
//! Portable crates never read time or entropy from globals (CONVENTIONS S3):
//! the kernel passes a platform implementation, host tests pass a fake.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod random;

use core::cell::Cell;

pub use random::SeededRandom;

/// The FNV-1a (64-bit) hash of no bytes, where [`fnv1a64_extend`] starts.
pub const FNV1A64_EMPTY: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64-bit, continued from `hash` over `bytes`: a compact, stable checksum for reports.
pub fn fnv1a64_extend(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// A monotonic clock.
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed origin; never decreases.
    fn now_ns(&self) -> u64;
}

/// A clock the caller can wait on: the platform sleeps the calling thread, a fake moves its time.
pub trait Sleep: Clock {
    /// Returns once [`Clock::now_ns`] reads at least `deadline_ns` (at once if it already does).
    fn sleep_until_ns(&self, deadline_ns: u64);
}

/// A clock that moves only when told to, for deterministic host tests.
#[derive(Debug, Default)]
pub struct FakeClock {
    now_ns: Cell<u64>,
}

impl FakeClock {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        FakeClock { now_ns: Cell::new(start_ns) }
    }

    /// Moves the clock forward by `delta_ns` (saturating at `u64::MAX`).
    pub fn advance(&self, delta_ns: u64) {
        self.now_ns.set(self.now_ns.get().saturating_add(delta_ns));
    }

    /// Moves the clock to `now_ns`; ignored if that would go backwards.
    pub fn set(&self, now_ns: u64) {
        self.now_ns.set(self.now_ns.get().max(now_ns));
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }
}

impl Sleep for FakeClock {
    /// Waiting on a fake clock moves it to the deadline: the wait takes no host time.
    fn sleep_until_ns(&self, deadline_ns: u64) {
        self.set(deadline_ns);
    }
}

/// A source of seeds for pseudo-random generators.
pub trait Entropy {
    /// A 64-bit seed, different between boots where the machine allows it.
    fn seed(&self) -> u64;
}

/// Entropy that always returns the seed it was built with.
#[derive(Debug, Clone, Copy)]
pub struct FixedEntropy(pub u64);

impl Entropy for FixedEntropy {
    fn seed(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_forward() {
        let clock = FakeClock::new(100);
        assert_eq!(clock.now_ns(), 100);
        clock.advance(50);
        assert_eq!(clock.now_ns(), 150);
        clock.set(120);
        assert_eq!(clock.now_ns(), 150);
        clock.set(u64::MAX);
        clock.advance(1);
        assert_eq!(clock.now_ns(), u64::MAX);
    }

    #[test]
    fn sleeping_on_a_fake_clock_moves_it_to_the_deadline_never_back() {
        let clock = FakeClock::new(1_000);
        clock.sleep_until_ns(5_000);
        assert_eq!(clock.now_ns(), 5_000);
        clock.sleep_until_ns(2_000);
        assert_eq!(clock.now_ns(), 5_000);
    }

    #[test]
    fn fixed_entropy_returns_its_seed() {
        assert_eq!(FixedEntropy(7).seed(), 7);
    }
}
