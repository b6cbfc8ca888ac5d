//! Shared by host tests: a frame allocator, and memory runs governed by a meta-agent on a fake clock.

use alloc::vec;
use core::cell::{Cell, RefCell};

use sis_autonomy::{AutonomyMetrics, AutonomySnapshot};
use sis_hal::Clock;
use sis_mm::{FrameAllocator, FrameMeta, PAGE_SIZE};

use crate::governor::Governor;
use crate::port::PoolPort;
use crate::{run_memory_test, MemoryReport, RunOptions, StressTestConfig};

const BASE: u64 = 0x4000_0000;
const FRAMES: usize = 32 * 1024;
/// Fake time per clock reading (about two readings per workload step).
const NS_PER_READING: u64 = 3_000;
/// Decision interval, as the kernel's default.
pub const INTERVAL_NS: u64 = 10_000_000;

/// 128 MiB of frames.
pub fn frames() -> FrameAllocator<'static> {
    let metadata = alloc::boxed::Box::leak(vec![FrameMeta::default(); FRAMES].into_boxed_slice());
    let mut allocator = FrameAllocator::new(BASE, FRAMES, metadata).unwrap();
    allocator.free_range(BASE, BASE + FRAMES as u64 * PAGE_SIZE).unwrap();
    allocator
}

/// A clock that runs the governor every [`INTERVAL_NS`] of its own time, as the kernel's thread would.
struct GovernedClock<'a> {
    now: Cell<u64>,
    next_tick: Cell<u64>,
    governor: Option<&'a RefCell<Governor>>,
    port: &'a PoolPort,
    metrics: &'a AutonomyMetrics,
}

impl Clock for GovernedClock<'_> {
    fn now_ns(&self) -> u64 {
        let now = self.now.get() + NS_PER_READING;
        self.now.set(now);
        if let Some(governor) = self.governor.filter(|_| now >= self.next_tick.get()) {
            self.next_tick.set(now + INTERVAL_NS);
            governor.borrow_mut().tick(now, self.port, None, self.metrics);
        }
        now
    }
}

/// A 1-second memory run in a 16 MiB pool with `governor` (or none): the report and the interventions counted.
pub fn governed_run(seed: u64, governor: Option<Governor>) -> (MemoryReport, AutonomySnapshot) {
    let governor = governor.map(RefCell::new);
    run(seed, governor.as_ref())
}

/// [`governed_run`] with a governor the caller keeps, to read it afterwards.
pub fn governed_run_with(seed: u64, governor: &RefCell<Governor>) -> (MemoryReport, AutonomySnapshot) {
    run(seed, Some(governor))
}

fn run(seed: u64, governor: Option<&RefCell<Governor>>) -> (MemoryReport, AutonomySnapshot) {
    let config = StressTestConfig { duration_ms: 1_000, pool_bytes: 16 << 20, ..StressTestConfig::with_seed(seed) };
    let mut source = frames();
    let before = source.stats();
    let port = PoolPort::new();
    let metrics = AutonomyMetrics::new();
    let clock = GovernedClock { now: Cell::new(0), next_tick: Cell::new(0), governor, port: &port, metrics: &metrics };
    let options = RunOptions { port: Some(&port), ..RunOptions::default() };
    let report = run_memory_test(&config, &mut source, &clock, &mut |_| {}, options);
    assert_eq!(source.stats(), before, "every run gives its frames back");
    (report, metrics.snapshot())
}
