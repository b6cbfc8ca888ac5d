//! `stresstest multi`: memory and command flood at once, and the flood's cross effect measured against a baseline.

use serde::Serialize;

use crate::{FloodReport, MemoryReport, Status};

/// How the memory workload changed the command flood.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CrossEffect {
    /// Median command latency alone.
    pub baseline_p50_ns: u64,
    /// Median command latency under memory pressure.
    pub loaded_p50_ns: u64,
    /// 99th percentile alone.
    pub baseline_p99_ns: u64,
    /// 99th percentile under memory pressure.
    pub loaded_p99_ns: u64,
    /// loaded / baseline median, times 1000.
    pub p50_ratio_milli: u64,
    /// loaded / baseline 99th percentile, times 1000.
    pub p99_ratio_milli: u64,
    /// loaded / baseline achieved rate, times 1000.
    pub rate_ratio_milli: u64,
}

impl CrossEffect {
    /// Compares the flood under load with the flood alone.
    pub fn between(baseline: &FloodReport, loaded: &FloodReport) -> Self {
        let ratio = |loaded: u64, baseline: u64| (loaded as u128 * 1000 / baseline.max(1) as u128) as u64;
        CrossEffect {
            baseline_p50_ns: baseline.latency.p50_ns,
            loaded_p50_ns: loaded.latency.p50_ns,
            baseline_p99_ns: baseline.latency.p99_ns,
            loaded_p99_ns: loaded.latency.p99_ns,
            p50_ratio_milli: ratio(loaded.latency.p50_ns, baseline.latency.p50_ns),
            p99_ratio_milli: ratio(loaded.latency.p99_ns, baseline.latency.p99_ns),
            rate_ratio_milli: ratio(loaded.achieved_rate_milli_per_s, baseline.achieved_rate_milli_per_s),
        }
    }
}

/// Everything `stresstest multi` measured.
#[derive(Debug, Clone, Serialize)]
pub struct MultiReport {
    /// Worst status of the parts.
    pub status: Status,
    /// The memory workload, run beside the flood.
    pub memory: MemoryReport,
    /// The flood under memory pressure.
    pub commands: FloodReport,
    /// The flood alone, just before (a quarter of the duration, same rate).
    pub baseline_commands: FloodReport,
    /// Loaded against baseline.
    pub cross_effect: CrossEffect,
}

impl Status {
    /// The more severe of two statuses.
    pub fn worst(self, other: Status) -> Status {
        let rank = |status: Status| match status {
            Status::Pass => 0,
            Status::PartialPass => 1,
            Status::Fail => 2,
            Status::Critical => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Derives the flood's seed from the test seed, so the two workloads draw independent streams.
pub fn flood_seed(seed: u64) -> u64 {
    // SplitMix64 step.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_wins() {
        assert_eq!(Status::Pass.worst(Status::PartialPass), Status::PartialPass);
        assert_eq!(Status::Critical.worst(Status::Fail), Status::Critical);
        assert_eq!(Status::Pass.worst(Status::Pass), Status::Pass);
    }

    #[test]
    fn flood_seed_differs_from_the_seed_and_is_stable() {
        assert_ne!(flood_seed(7), 7);
        assert_eq!(flood_seed(7), flood_seed(7));
        assert_ne!(flood_seed(7), flood_seed(8));
    }
}
