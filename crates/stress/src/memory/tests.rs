//! Memory workload tests on the host: the real buddy allocator and pool, a clock that advances per reading.

use super::*;
use crate::test_support::{frames, ActingClock};
use alloc::collections::BTreeSet;
use core::cell::Cell;
use sis_mm::FrameAllocator;

/// Advances 250 ns at every reading, as if each step took a few hundred nanoseconds.
struct SteppingClock(Cell<u64>);

impl Clock for SteppingClock {
    fn now_ns(&self) -> u64 {
        self.0.set(self.0.get() + 250);
        self.0.get()
    }
}

fn config(seed: u64) -> StressTestConfig {
    StressTestConfig { duration_ms: 60, pool_bytes: 16 << 20, ..StressTestConfig::with_seed(seed) }
}

fn run(config: &StressTestConfig) -> MemoryReport {
    run_with_leak(config, 0)
}

fn run_with_leak(config: &StressTestConfig, leak: u64) -> MemoryReport {
    let mut source = frames();
    let before = source.stats();
    let options = RunOptions { leak, ..RunOptions::default() };
    let report = run_memory_test(config, &mut source, &SteppingClock(Cell::new(0)), &mut |_| {}, options);
    assert_eq!(source.stats(), before, "the frame allocator is whole after every run");
    report
}

#[test]
fn same_seed_same_report() {
    let a = run(&config(42));
    let b = run(&config(42));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert!(a.steps > 10_000, "{} steps", a.steps);
    assert!(a.leak_check.passed);
    assert_eq!(a.compaction_triggers, a.proactive_compactions + a.reactive_compactions + a.directed_compactions);
    assert_eq!(a.allocation_attempts, a.allocations + a.failed_allocations);
}

#[test]
fn ten_seeds_give_varied_figures_from_the_workload() {
    let reports: Vec<MemoryReport> = (1..=10).map(|seed| run(&config(seed))).collect();
    let peaks: Vec<f64> = reports.iter().map(|r| r.peak_pressure_per_mille as f64 / 10.0).collect();
    let mean = peaks.iter().sum::<f64>() / peaks.len() as f64;
    let deviation = (peaks.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / peaks.len() as f64).sqrt();
    std::println!("peak pressure per seed {peaks:?}, stddev {deviation:.1} points");
    std::println!("OOM events {:?}", reports.iter().map(|r| r.oom_events).collect::<Vec<_>>());
    std::println!("compactions {:?}", reports.iter().map(|r| r.compaction_triggers).collect::<Vec<_>>());
    let distinct = |field: fn(&MemoryReport) -> u64| reports.iter().map(field).collect::<BTreeSet<_>>().len();
    assert!(distinct(|r| r.peak_pressure_per_mille as u64) >= 5, "peak pressure");
    assert!(deviation > 10.0, "the seed's target: stddev of peak pressure above 10 points, got {deviation:.1}");
    assert!(
        distinct(|r| r.oom_events) >= 5,
        "OOM events: {:?}",
        reports.iter().map(|r| r.oom_events).collect::<Vec<_>>()
    );
    assert!(distinct(|r| r.compaction_triggers) >= 5, "compaction triggers");
    assert!(reports.iter().all(|r| r.leak_check.passed && r.status != Status::Critical));
}

#[test]
fn a_higher_target_raises_average_pressure() {
    let low = run(&StressTestConfig { target_pressure_percent: 40, oom_threshold_percent: 95, ..config(2) });
    let high = run(&StressTestConfig { target_pressure_percent: 80, oom_threshold_percent: 95, ..config(2) });
    assert!(
        high.average_pressure_per_mille > low.average_pressure_per_mille + 100,
        "{} vs {}",
        high.average_pressure_per_mille,
        low.average_pressure_per_mille
    );
}

#[test]
fn the_oom_threshold_moves_proactive_compaction() {
    let early = run(&StressTestConfig { oom_threshold_percent: 50, ..config(9) });
    let late = run(&StressTestConfig { oom_threshold_percent: 100, ..config(9) });
    assert!(
        early.proactive_compactions > late.proactive_compactions * 2,
        "{} vs {}",
        early.proactive_compactions,
        late.proactive_compactions
    );
}

#[test]
fn the_fail_rate_injects_failures_in_proportion() {
    let report = run(&StressTestConfig { fail_rate_percent: 20, ..config(3) });
    let share = report.injected_failures * 1000 / report.allocation_attempts;
    assert!((180..=220).contains(&share), "{share} per-mille injected");
    assert_eq!(report.status, Status::PartialPass);
    assert!(!report.status.is_success(false));
    assert!(report.status.is_success(true));
    let all = run(&StressTestConfig { fail_rate_percent: 100, ..config(3) });
    assert_eq!(all.status, Status::Fail);
}

#[test]
fn a_leaking_test_is_caught_and_the_kernel_made_whole() {
    let report = run_with_leak(&config(4), 3);
    assert!(!report.leak_check.passed);
    assert_eq!(report.leak_check.pool_live_objects_after, 3);
    assert_eq!(report.status, Status::Critical);
}

#[test]
fn a_leak_is_counted_in_frames_the_pool_did_not_return() {
    let report = run_with_leak(&config(4), 3);
    let check = report.leak_check;
    assert!(check.frames_taken > check.frames_returned, "{check:?}");
    assert_eq!(check.frames_taken - check.frames_returned, check.pool_charged_pages_after, "{check:?}");
}

/// The kernel's heap beside the workload: on the 100th allocation it claims a 1 MiB block of its own and keeps it.
struct GrowingNeighbour<'a> {
    inner: FrameAllocator<'a>,
    allocations: u64,
    claimed: Option<u64>,
}

impl FrameSource for GrowingNeighbour<'_> {
    fn allocate_frames(&mut self, order: usize) -> Result<u64, sis_mm::MmError> {
        self.allocations += 1;
        if self.allocations == 100 {
            self.claimed = Some(self.inner.allocate(8)?);
        }
        self.inner.allocate(order)
    }

    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), sis_mm::MmError> {
        self.inner.free(address, order)
    }

    fn frame_stats(&self) -> sis_mm::FrameStats {
        self.inner.stats()
    }
}

#[test]
fn frames_the_rest_of_the_kernel_takes_meanwhile_are_not_a_leak_of_the_workload() {
    let mut source = GrowingNeighbour { inner: frames(), allocations: 0, claimed: None };
    let report =
        run_memory_test(&config(4), &mut source, &SteppingClock(Cell::new(0)), &mut |_| {}, RunOptions::default());
    let check = report.leak_check;
    assert!(source.claimed.is_some(), "the neighbour grew during the run");
    assert_eq!(check.baseline_free_frames - check.final_free_frames, 256, "{check:?}");
    assert_eq!(check.frames_taken, check.frames_returned, "{check:?}");
    assert!(check.frames_taken > 0);
    assert!(check.passed, "{check:?}");
    assert_ne!(report.status, Status::Critical);
}

#[test]
fn latency_sampling_times_one_operation_in_n_and_changes_nothing_else() {
    let run_sampled = |every: u32| {
        let config = StressTestConfig {
            duration_ms: 3_600_000,
            latency_sample_every: every,
            pool_bytes: 16 << 20,
            ..StressTestConfig::with_seed(7)
        };
        let mut source = frames();
        let options = RunOptions { max_steps: Some(20_000), ..RunOptions::default() };
        run_memory_test(&config, &mut source, &SteppingClock(Cell::new(0)), &mut |_| {}, options)
    };
    let timed = |report: &MemoryReport| report.allocation_latency.count + report.deallocation_latency.count;
    let every = run_sampled(1);
    let sampled = run_sampled(64);
    let none = run_sampled(0);
    let operations = timed(&every);
    assert_eq!(every.allocation_latency.count, every.allocation_attempts);
    assert!(operations > every.allocation_attempts, "frees are timed too");
    assert_eq!(timed(&sampled), operations / 64);
    assert_eq!(timed(&none), 0);
    for report in [&sampled, &none] {
        assert_eq!(report.steps, every.steps);
        assert_eq!(report.allocation_attempts, every.allocation_attempts);
        assert_eq!(report.oom_events, every.oom_events);
        assert_eq!(report.peak_pressure_per_mille, every.peak_pressure_per_mille);
    }
}

fn run_observed(seed: u64, act: &dyn Fn(&PoolPort)) -> (MemoryReport, PoolPort) {
    let port = PoolPort::new();
    let report = {
        let act = |_: u64, port: &PoolPort| act(port);
        let clock = ActingClock::new(250, &port, &act);
        let mut source = frames();
        let before = source.stats();
        let options = RunOptions { port: Some(&port), max_steps: Some(30_000), ..RunOptions::default() };
        let config = StressTestConfig { duration_ms: 3_600_000, ..config(seed) };
        let report = run_memory_test(&config, &mut source, &clock, &mut |_| {}, options);
        assert_eq!(source.stats(), before);
        report
    };
    (report, port)
}

#[test]
fn a_port_nobody_posts_to_changes_nothing() {
    let (observed, port) = run_observed(11, &|_| {});
    let mut source = frames();
    let options = RunOptions { max_steps: Some(30_000), ..RunOptions::default() };
    let config = StressTestConfig { duration_ms: 3_600_000, ..config(11) };
    let alone = run_memory_test(&config, &mut source, &SteppingClock(Cell::new(0)), &mut |_| {}, options);
    assert_eq!(format!("{observed:?}"), format!("{alone:?}"));
    let telemetry = port.telemetry();
    assert!(!telemetry.attached, "detached after the run");
    assert_eq!((telemetry.run, telemetry.steps, telemetry.oom_events), (1, 30_000, alone.oom_events));
    assert_eq!(telemetry.allocation_requests, alone.allocation_attempts);
}

#[test]
fn directives_act_through_the_pool_and_are_counted() {
    let (plain, _) = run_observed(12, &|_| {});
    // A reclaim every 1,000 published steps, and a throttle of 25 % from step 10,000 on.
    let last_posted = Cell::new(0);
    let (directed, port) = run_observed(12, &|port| {
        let steps = port.telemetry().steps;
        if steps > 0 && steps.is_multiple_of(1_000) && last_posted.get() != steps {
            last_posted.set(steps);
            port.request_reclaim();
            if steps == 10_000 {
                port.set_throttle(250);
            }
        }
    });
    // Posted after steps 1,000 .. 29,000 were published; each carried out at the next step. The one
    // posted after step 30,000 is never carried out: the run ends there.
    assert_eq!(directed.directed_compactions, 29);
    assert_eq!(
        directed.compaction_triggers,
        directed.proactive_compactions + directed.reactive_compactions + directed.directed_compactions
    );
    let telemetry = port.telemetry();
    assert_eq!(telemetry.throttled_requests, directed.throttled_requests);
    assert_eq!(telemetry.allocation_requests, directed.allocation_attempts + directed.throttled_requests);
    // A quarter of the requests from step 10,000 on, evenly: more than none, at most a quarter of all.
    assert!(directed.throttled_requests > 0 && directed.throttled_requests * 4 <= telemetry.allocation_requests);
    assert_eq!(plain.throttled_requests + plain.directed_compactions, 0);
    // The workload answers pressure, so the directives change its path: the runs differ.
    assert_ne!(directed.oom_events + directed.allocations, plain.oom_events + plain.allocations);
    assert!(directed.leak_check.passed);
}

#[test]
fn a_pressure_cap_lowers_what_the_workload_steers_toward() {
    let (plain, _) = run_observed(13, &|_| {});
    let (capped, port) = run_observed(13, &|port| {
        port.set_pressure_cap(200);
    });
    // Measured: uncapped average 45.8 %, peak 86.5 %; capped at 20 %: average 14.7 % (the run starts
    // empty), peak 30.7 % (bursts allocate whatever the pressure).
    assert_eq!((plain.average_pressure_per_mille, plain.peak_pressure_per_mille), (458, 865));
    assert_eq!((capped.average_pressure_per_mille, capped.peak_pressure_per_mille), (147, 307));
    assert_eq!(port.pressure_cap(), crate::port::NO_CAP, "the cap does not outlive the run");
}

#[test]
fn the_oom_observer_hears_every_oom_event_in_order_and_changes_nothing() {
    let config = StressTestConfig { duration_ms: 3_600_000, ..config(11) };
    let mut heard: Vec<(u64, u64)> = Vec::new();
    let observed = {
        let mut on_oom = |count: u64, bytes: u64| heard.push((count, bytes));
        let options = RunOptions { max_steps: Some(30_000), on_oom: Some(&mut on_oom), ..RunOptions::default() };
        run_memory_test(&config, &mut frames(), &SteppingClock(Cell::new(0)), &mut |_| {}, options)
    };
    let options = RunOptions { max_steps: Some(30_000), ..RunOptions::default() };
    let alone = run_memory_test(&config, &mut frames(), &SteppingClock(Cell::new(0)), &mut |_| {}, options);
    assert_eq!(format!("{observed:?}"), format!("{alone:?}"));
    assert!(alone.oom_events > 0, "the seed meets OOM events");
    assert_eq!(heard.iter().map(|(count, _)| *count).collect::<Vec<_>>(), (1..=alone.oom_events).collect::<Vec<_>>());
    assert!(heard.iter().all(|(_, bytes)| *bytes > 0));
}
