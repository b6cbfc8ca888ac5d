//! Memory isolation: one pool exhausting its budget must not make another budgeted pool fail.
//!
//! Two pools draw frames from the same allocator. The greedy one allocates 64 KiB objects and never frees
//! them, so it reaches its budget and then meets a refusal at every attempt; the steady one grows a
//! working set of 4 KiB objects to three quarters of its own budget, then frees it all and gives its
//! frames back (compaction), and grows it again: it needs fresh frames from the allocator in every cycle.
//! The steps interleave, so the steady pool allocates while the greedy one is at its limit. Isolation holds when every refusal the greedy pool meets is its own
//! budget's (`LimitReached`, never the machine's `FramesExhausted`), the steady pool's every allocation
//! succeeds, and both give every frame back.

use alloc::vec::Vec;

use serde::Serialize;
use sis_mm::{FrameSource, MemoryKind, ObjectHandle, Pool, PoolError, PAGE_SIZE};

/// Size of the greedy pool's objects.
pub const GREEDY_OBJECT_BYTES: u64 = 64 << 10;
/// Size of the steady pool's objects.
pub const STEADY_OBJECT_BYTES: u64 = PAGE_SIZE;

/// What the memory-isolation experiment measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryIsolationReport {
    /// Interleaved steps (one greedy attempt and one steady allocation, or the steady pool's release).
    pub steps: u64,
    /// The greedy pool's budget, bytes.
    pub greedy_budget_bytes: u64,
    /// The steady pool's budget, bytes.
    pub steady_budget_bytes: u64,
    /// Greedy allocations that succeeded before its budget was spent.
    pub greedy_allocations: u64,
    /// Greedy attempts refused by its own budget.
    pub greedy_limit_refusals: u64,
    /// Greedy attempts refused because the machine had no frames (a failure of isolation).
    pub greedy_frame_refusals: u64,
    /// Steady allocations that succeeded.
    pub steady_allocations: u64,
    /// Times the steady pool released its working set and gave its frames back.
    pub steady_releases: u64,
    /// Steady allocations that failed, for any reason.
    pub steady_failures: u64,
    /// Free frames before the experiment, and after both pools gave everything back.
    pub free_frames_before: u64,
    /// Free frames after.
    pub free_frames_after: u64,
}

impl MemoryIsolationReport {
    /// Isolation held: the greedy pool met its own limit only, the steady pool never failed, and every frame
    /// came back.
    pub fn isolated(&self) -> bool {
        self.greedy_limit_refusals > 0
            && self.greedy_frame_refusals == 0
            && self.steady_failures == 0
            && self.steady_allocations > 0
            && self.free_frames_after == self.free_frames_before
    }
}

/// Runs `steps` interleaved steps of a greedy pool of `greedy_budget_bytes` and a steady pool of
/// `steady_budget_bytes` on frames from `source`.
pub fn memory_isolation<S: FrameSource + ?Sized>(
    source: &mut S,
    greedy_budget_bytes: u64,
    steady_budget_bytes: u64,
    steps: u64,
) -> MemoryIsolationReport {
    let mut report = MemoryIsolationReport {
        steps,
        greedy_budget_bytes,
        steady_budget_bytes,
        free_frames_before: source.frame_stats().free_frames as u64,
        ..MemoryIsolationReport::default()
    };
    let mut greedy = Pool::new(greedy_budget_bytes);
    let mut steady = Pool::new(steady_budget_bytes);
    let mut greedy_live: Vec<ObjectHandle> = Vec::new();
    let mut steady_live: Vec<ObjectHandle> = Vec::new();
    let working_set = (steady_budget_bytes * 3 / 4 / STEADY_OBJECT_BYTES).max(1) as usize;
    for _ in 0..steps {
        match greedy.allocate(source, GREEDY_OBJECT_BYTES, MemoryKind::Unreclaimable) {
            Ok(handle) => {
                report.greedy_allocations += 1;
                greedy_live.push(handle);
            }
            Err(PoolError::LimitReached { .. }) => report.greedy_limit_refusals += 1,
            Err(_) => report.greedy_frame_refusals += 1,
        }
        if steady_live.len() >= working_set {
            for handle in steady_live.drain(..) {
                let _ = steady.free(source, handle);
            }
            let _ = steady.compact(source);
            report.steady_releases += 1;
            continue;
        }
        match steady.allocate(source, STEADY_OBJECT_BYTES, MemoryKind::Unreclaimable) {
            Ok(handle) => {
                report.steady_allocations += 1;
                steady_live.push(handle);
            }
            Err(_) => report.steady_failures += 1,
        }
    }
    for handle in greedy_live {
        let _ = greedy.free(source, handle);
    }
    for handle in steady_live {
        let _ = steady.free(source, handle);
    }
    let _ = greedy.compact(source);
    let _ = steady.compact(source);
    report.free_frames_after = source.frame_stats().free_frames as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::frames;

    #[test]
    fn a_pool_at_its_limit_does_not_make_another_fail() {
        let mut source = frames();
        let report = memory_isolation(&mut source, 4 << 20, 1 << 20, 1_000);
        // 4 MiB of 64 KiB objects: 64 fit, the other 936 attempts meet the greedy pool's own limit.
        assert_eq!((report.greedy_allocations, report.greedy_limit_refusals), (64, 936));
        assert_eq!(report.greedy_frame_refusals, 0);
        // Working sets of 192 pages (three quarters of 1 MiB), released and grown again: 5 full cycles of 193
        // steps, then 35 allocations.
        assert_eq!((report.steady_allocations, report.steady_releases, report.steady_failures), (995, 5, 0));
        assert_eq!(report.free_frames_after, report.free_frames_before);
        assert!(report.isolated());
    }

    #[test]
    fn without_a_budget_between_them_the_steady_pool_fails() {
        // The greedy pool's budget is the machine's 128 MiB: it takes the frames themselves, and the steady
        // pool fails, which is what the budgets prevent.
        let mut source = frames();
        let report = memory_isolation(&mut source, 1 << 30, 1 << 20, 3_000);
        assert!(report.greedy_frame_refusals > 0, "{report:?}");
        assert!(report.steady_failures > 0, "{report:?}");
        assert!(!report.isolated());
        assert_eq!(report.free_frames_after, report.free_frames_before);
    }
}
