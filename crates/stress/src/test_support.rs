//! Shared by host tests: a frame allocator, and memory runs governed by a meta-agent on a fake clock.

use alloc::vec;
use core::cell::{Cell, RefCell};

use sis_autonomy::{AutonomyMetrics, AutonomySnapshot};
use sis_hal::Clock;
use sis_mm::{FrameAllocator, FrameMeta, PAGE_SIZE};

use crate::compare::{memory_values, RunRecord};
use crate::governor::Governor;
use crate::learning::workload_seed;
use crate::port::{PoolPort, PortTelemetry};
use crate::{run_memory_test, MemoryReport, RunOptions, StressTestConfig};
use sis_safety::Guardrails;

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

/// A clock that advances `step_ns` at every reading, then lets `act` observe the port at the new time: an
/// observer on another thread, interleaved with the workload deterministically.
pub struct ActingClock<'a> {
    now: Cell<u64>,
    step_ns: u64,
    port: &'a PoolPort,
    act: &'a dyn Fn(u64, &PoolPort),
}

impl<'a> ActingClock<'a> {
    /// Starts at 0.
    pub fn new(step_ns: u64, port: &'a PoolPort, act: &'a dyn Fn(u64, &PoolPort)) -> Self {
        ActingClock { now: Cell::new(0), step_ns, port, act }
    }
}

impl Clock for ActingClock<'_> {
    fn now_ns(&self) -> u64 {
        let now = self.now.get() + self.step_ns;
        self.now.set(now);
        (self.act)(now, self.port);
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
    configured_run(&config, governor, &mut frames())
}

/// A memory run of `config` on frames from `source`, with `governor` deciding every [`INTERVAL_NS`] (or none).
pub fn configured_run(
    config: &StressTestConfig,
    governor: Option<&RefCell<Governor>>,
    source: &mut FrameAllocator<'static>,
) -> (MemoryReport, AutonomySnapshot) {
    let guardrails = RefCell::new(Guardrails::new());
    let (report, counted, _) = guarded_run(config, governor, &guardrails, source);
    (report, counted)
}

/// [`configured_run`] within `guardrails`; also returns what the pool's port recorded of the run.
pub fn guarded_run(
    config: &StressTestConfig,
    governor: Option<&RefCell<Governor>>,
    guardrails: &RefCell<Guardrails>,
    source: &mut FrameAllocator<'static>,
) -> (MemoryReport, AutonomySnapshot, PortTelemetry) {
    let before = source.stats();
    let port = PoolPort::new();
    let metrics = AutonomyMetrics::new();
    // The governor decides every INTERVAL_NS, as the kernel's thread would.
    let next_tick = Cell::new(0);
    let act = |now: u64, port: &PoolPort| {
        if let Some(governor) = governor.filter(|_| now >= next_tick.get()) {
            next_tick.set(now + INTERVAL_NS);
            let live = crate::governor::live_state(port, None);
            let mut governor = governor.borrow_mut();
            governor.tick(now, port, None, None, &live, &mut guardrails.borrow_mut(), &metrics);
            // The kernel's thread runs the shadow (if any) after the production decision, as here.
            governor.shadow_step();
        }
    };
    let clock = ActingClock::new(NS_PER_READING, &port, &act);
    let options = RunOptions { port: Some(&port), ..RunOptions::default() };
    let report = run_memory_test(config, source, &clock, &mut |_| {}, options);
    assert_eq!(source.stats(), before, "every run gives its frames back");
    (report, metrics.snapshot(), port.telemetry())
}

/// One side of a comparison: its runs and their interventions summed.
pub type PairSide = (Vec<RunRecord>, AutonomySnapshot);

/// `runs` pairs as `stresstest compare memory` runs them: pair i runs workload seed `workload_seed(seed, i)` of
/// `config` with autonomy off, then with a fresh heuristic governor, on frames from `source`.
pub fn governed_pairs(
    seed: u64,
    runs: u64,
    config: &StressTestConfig,
    source: &mut FrameAllocator<'static>,
) -> (PairSide, PairSide) {
    let mut off = (Vec::new(), AutonomySnapshot::default());
    let mut on = (Vec::new(), AutonomySnapshot::default());
    for index in 0..runs {
        let config = StressTestConfig { seed: workload_seed(seed, index), ..*config };
        let (report, counted) = configured_run(&config, None, source);
        off.0.push(RunRecord { seed: config.seed, values: memory_values(&report), interventions: 0 });
        off.1 = off.1.add(&counted);
        let governor = RefCell::new(Governor::heuristic().unwrap());
        let (report, counted) = configured_run(&config, Some(&governor), source);
        let interventions = counted.total_interventions;
        on.0.push(RunRecord { seed: config.seed, values: memory_values(&report), interventions });
        on.1 = on.1.add(&counted);
    }
    (off, on)
}
