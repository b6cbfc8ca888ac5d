//! `stresstest memory`: a seeded workload of mixed sizes, lifetimes and bursts that drives a real pool toward a target pressure.
//!
//! Each step either allocates (more likely below the target pressure, always
//! during a burst) or frees a random live object; objects also expire after a
//! random lifetime. Compaction starts proactively at the OOM threshold and
//! reactively after an allocation fails, which is then retried once. Every
//! figure is read from the pool and the frame allocator or counted as it
//! happens; at the end every object is freed, the pool must hold nothing and
//! every frame the pool took must have gone back to the frame allocator
//! (counted at the pool's frame source, so frames other threads take meanwhile
//! — the heap grows by blocks it keeps — are reported but are not the
//! workload's leak).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_hal::Clock;
use sis_metrics::{LatencyHistogram, LatencySummary, RELATIVE_ERROR_PPM};
use sis_mm::{CountedFrames, FrameSource, MemoryKind, ObjectHandle, Pool, PoolError};

use crate::port::{PoolPort, Throttle};
use crate::{Status, StressRng, StressTestConfig};

/// Steps between scans for expired objects.
const EXPIRY_SCAN_STEPS: u64 = 32;
/// Fewest steps between two proactive compactions.
const COMPACTION_COOLDOWN_STEPS: u64 = 256;
/// OOM events announced one by one in progress output; later ones are counted in the periodic lines.
const ANNOUNCED_OOM_EVENTS: u64 = 10;

/// The shape of one run's workload, drawn from the seed and reported with the results.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WorkloadProfile {
    /// Share of allocations of 2 KiB .. 64 KiB, percent.
    pub medium_percent: u64,
    /// Share of allocations of 64 KiB .. 1 MiB, percent.
    pub large_percent: u64,
    /// Longest object lifetime in steps (lifetimes are log-uniform from 1).
    pub max_lifetime_steps: u64,
    /// Chance per step of starting a burst, per 10,000.
    pub burst_chance_per_10k: u64,
    /// Longest burst, in allocations.
    pub max_burst_length: u64,
    /// Share of allocations that are reclaimable cache, percent.
    pub reclaimable_percent: u64,
}

impl WorkloadProfile {
    fn draw(rng: &mut StressRng) -> Self {
        WorkloadProfile {
            medium_percent: rng.range(10, 40),
            large_percent: rng.range(1, 12),
            max_lifetime_steps: rng.log_uniform(200, 500_000),
            burst_chance_per_10k: rng.range(0, 30),
            max_burst_length: rng.range(8, 96),
            reclaimable_percent: rng.range(5, 40),
        }
    }
}

/// Everything `stresstest memory` measured.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// The configuration, seed included.
    pub config: StressTestConfig,
    /// The workload shape the seed chose.
    pub profile: WorkloadProfile,
    /// Outcome under the documented rules.
    pub status: Status,
    /// Guest time the workload ran.
    pub elapsed_ms: u64,
    /// Workload steps taken.
    pub steps: u64,
    /// Highest pool pressure seen, per-mille of the limit.
    pub peak_pressure_per_mille: u32,
    /// Mean pool pressure over all steps, per-mille.
    pub average_pressure_per_mille: u32,
    /// Allocation attempts (injected failures included).
    pub allocation_attempts: u64,
    /// Allocations that succeeded.
    pub allocations: u64,
    /// Objects freed by the workload (expiry or random choice).
    pub frees: u64,
    /// Cache objects that the pool had already dropped when their owner freed them.
    pub frees_of_reclaimed: u64,
    /// Allocations the pool or the frame allocator refused (real failures).
    pub oom_events: u64,
    /// OOM events whose retry after compaction succeeded.
    pub oom_recovered: u64,
    /// Failures injected by `--fail-rate`.
    pub injected_failures: u64,
    /// Allocations that finally failed: unrecovered OOMs plus injected failures.
    pub failed_allocations: u64,
    /// Compactions run (proactive + reactive).
    pub compaction_triggers: u64,
    /// Compactions started by the OOM threshold.
    pub proactive_compactions: u64,
    /// Compactions started by an OOM event.
    pub reactive_compactions: u64,
    /// Compactions asked for through the pool's port (by the meta-agent), carried out at the next step.
    pub directed_compactions: u64,
    /// Allocation requests refused by a throttle set through the port (not attempts, not failures:
    /// the request was never made to the pool).
    pub throttled_requests: u64,
    /// Bytes compaction returned to the frame allocator.
    pub memory_recovered_bytes: u64,
    /// Allocation bursts started.
    pub bursts: u64,
    /// Allocation latency, including failed attempts.
    pub allocation_latency: LatencySummary,
    /// Deallocation latency.
    pub deallocation_latency: LatencySummary,
    /// Bound on the histograms' quantile error, parts per million.
    pub latency_relative_error_ppm: u32,
    /// Frame-allocator fragmentation at peak pressure, per-mille (share of free memory outside the largest free block).
    pub fragmentation_at_peak_per_mille: u32,
    /// Free bytes inside slab pages at peak pressure (internal fragmentation).
    pub slab_free_bytes_at_peak: u64,
    /// The baseline check after the test.
    pub leak_check: LeakCheck,
}

/// Whether the test gave back everything it took.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LeakCheck {
    /// Frames the workload's pool took from the frame allocator.
    pub frames_taken: u64,
    /// Frames the pool returned after freeing everything and compacting.
    pub frames_returned: u64,
    /// Free frames in the whole allocator before the test (context: the rest of the kernel allocates beside the
    /// workload, and the heap grows by 1 MiB blocks it keeps, so this pair need not match for the check to pass).
    pub baseline_free_frames: u64,
    /// Free frames in the whole allocator afterwards.
    pub final_free_frames: u64,
    /// Pages still charged to the pool afterwards.
    pub pool_charged_pages_after: u64,
    /// Objects still live in the pool afterwards.
    pub pool_live_objects_after: u64,
    /// Every frame taken was returned, and the pool holds no page and no object.
    pub passed: bool,
}

/// How to run the workload beyond its configuration.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// The port through which the pool publishes its figures and takes directives (the kernel's
    /// meta-agent); `None` is the same as a port nobody posts to.
    pub port: Option<&'a PoolPort>,
    /// Objects deliberately not freed at the end (a test of the leak check).
    pub leak: u64,
    /// Stop after this many steps even if the duration has not passed.
    pub max_steps: Option<u64>,
    /// Told after every OOM event: the run's OOM events so far and the size of the allocation refused, bytes
    /// (the kernel publishes them as events).
    pub on_oom: Option<&'a mut dyn FnMut(u64, u64)>,
}

impl core::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("RunOptions")
            .field("port", &self.port)
            .field("leak", &self.leak)
            .field("max_steps", &self.max_steps)
            .field("on_oom", &self.on_oom.is_some())
            .finish()
    }
}

struct Live {
    handle: ObjectHandle,
    expires_at_step: u64,
}

/// Runs the memory workload.
pub fn run_memory_test(
    config: &StressTestConfig,
    source: &mut dyn FrameSource,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(&str),
    mut options: RunOptions<'_>,
) -> MemoryReport {
    let mut counted = CountedFrames::new(source);
    let source: &mut dyn FrameSource = &mut counted;
    let leak = options.leak;
    let sample_every = config.latency_sample_every.max(1);
    let record_latency = config.latency_sample_every > 0;
    // Operations until the next timed one: a countdown, because a division per operation costs more than the sampling saves.
    let mut until_timed = sample_every;
    // Whether to time the next operation.
    let timing_for = |until_timed: &mut u32| -> Option<&dyn Clock> {
        *until_timed -= 1;
        if *until_timed != 0 {
            return None;
        }
        *until_timed = sample_every;
        record_latency.then_some(clock)
    };
    let mut rng = StressRng::new(config.seed);
    let profile = WorkloadProfile::draw(&mut rng);
    let mut pool = Pool::new(config.pool_bytes);
    let baseline_free_frames = source.frame_stats().free_frames as u64;
    let mut allocation_latency = LatencyHistogram::new();
    let mut deallocation_latency = LatencyHistogram::new();
    let mut report = MemoryReport {
        config: *config,
        profile,
        status: Status::Pass,
        elapsed_ms: 0,
        steps: 0,
        peak_pressure_per_mille: 0,
        average_pressure_per_mille: 0,
        allocation_attempts: 0,
        allocations: 0,
        frees: 0,
        frees_of_reclaimed: 0,
        oom_events: 0,
        oom_recovered: 0,
        injected_failures: 0,
        failed_allocations: 0,
        compaction_triggers: 0,
        proactive_compactions: 0,
        reactive_compactions: 0,
        directed_compactions: 0,
        throttled_requests: 0,
        memory_recovered_bytes: 0,
        bursts: 0,
        allocation_latency: LatencySummary::default(),
        deallocation_latency: LatencySummary::default(),
        latency_relative_error_ppm: RELATIVE_ERROR_PPM,
        fragmentation_at_peak_per_mille: 0,
        slab_free_bytes_at_peak: 0,
        leak_check: LeakCheck {
            frames_taken: 0,
            frames_returned: 0,
            baseline_free_frames,
            final_free_frames: 0,
            pool_charged_pages_after: 0,
            pool_live_objects_after: 0,
            passed: false,
        },
    };
    let mut integrity_ok = true;
    let mut live: Vec<Live> = Vec::new();
    let mut burst_left = 0u64;
    let mut last_compaction_step = 0u64;
    let mut pressure_sum = 0u128;
    let started = clock.now_ns();
    let duration_ns = config.duration_ms.saturating_mul(1_000_000);
    let mut next_progress_tenth = 1u64;
    let target = config.target_pressure_percent as u32 * 10;
    let threshold = config.oom_threshold_percent as u32 * 10;
    let mut throttle = Throttle::default();
    if let Some(port) = options.port {
        port.attach(pool.stats().limit_pages);
    }
    progress("[MEMORY] Starting allocation loop...");

    loop {
        let elapsed = clock.now_ns().saturating_sub(started);
        if elapsed >= duration_ns || options.max_steps.is_some_and(|max| report.steps >= max) {
            break;
        }
        report.steps += 1;
        let step = report.steps;

        if step.is_multiple_of(EXPIRY_SCAN_STEPS) {
            let mut index = 0;
            while index < live.len() {
                if live[index].expires_at_step <= step {
                    let object = live.swap_remove(index);
                    integrity_ok &= free_object(
                        &mut pool,
                        source,
                        timing_for(&mut until_timed),
                        object.handle,
                        &mut report,
                        &mut deallocation_latency,
                    );
                } else {
                    index += 1;
                }
            }
        }

        if let Some(port) = options.port.filter(|port| port.take_reclaim()) {
            report.directed_compactions += 1;
            let dropped = compact(&mut pool, source, &mut report);
            integrity_ok &= dropped.is_some();
            port.count_dropped(dropped.unwrap_or(0));
        }
        let pressure = pool.pressure_per_mille();
        if pressure >= threshold && step - last_compaction_step >= COMPACTION_COOLDOWN_STEPS {
            last_compaction_step = step;
            report.proactive_compactions += 1;
            integrity_ok &= compact(&mut pool, source, &mut report).is_some();
        }

        let allocate = if burst_left > 0 {
            burst_left -= 1;
            true
        } else if rng.below(10_000) < profile.burst_chance_per_10k {
            burst_left = rng.range(4, profile.max_burst_length);
            report.bursts += 1;
            true
        } else {
            // Steer toward the target: mostly allocate below it, mostly free above it.
            let target = options.port.map_or(target, |port| target.min(port.pressure_cap()));
            let allocation_percent = if pressure < target { 80 } else { 10 };
            live.is_empty() || rng.chance_percent(allocation_percent)
        };

        if allocate {
            let class = rng.below(100);
            let size = if class < profile.large_percent {
                rng.log_uniform((64 << 10) + 1, 1 << 20)
            } else if class < profile.large_percent + profile.medium_percent {
                rng.log_uniform(2049, 64 << 10)
            } else {
                rng.log_uniform(16, 2048)
            };
            let kind = if rng.chance_percent(profile.reclaimable_percent) {
                MemoryKind::Reclaimable
            } else {
                MemoryKind::Unreclaimable
            };
            let lifetime = rng.log_uniform(1, profile.max_lifetime_steps);
            // Drawn whether or not the throttle refuses the request: a refused request takes the same draws.
            let inject_failure = rng.chance_percent(config.fail_rate_percent as u64);
            if let Some(port) = options.port.filter(|port| throttle.refuse(port.throttle())) {
                report.throttled_requests += 1;
                port.count_throttled();
            } else if inject_failure {
                report.allocation_attempts += 1;
                report.injected_failures += 1;
                report.failed_allocations += 1;
            } else {
                report.allocation_attempts += 1;
                match timed_allocate(
                    &mut pool,
                    source,
                    timing_for(&mut until_timed),
                    size,
                    kind,
                    &mut allocation_latency,
                ) {
                    Ok(handle) => {
                        report.allocations += 1;
                        live.push(Live { handle, expires_at_step: step + lifetime });
                    }
                    Err(error) if error.is_out_of_memory() => {
                        report.oom_events += 1;
                        if let Some(on_oom) = options.on_oom.as_mut() {
                            on_oom(report.oom_events, size);
                        }
                        report.reactive_compactions += 1;
                        let recovered_before = report.memory_recovered_bytes;
                        integrity_ok &= compact(&mut pool, source, &mut report).is_some();
                        let retry = timed_allocate(
                            &mut pool,
                            source,
                            timing_for(&mut until_timed),
                            size,
                            kind,
                            &mut allocation_latency,
                        );
                        if report.oom_events <= ANNOUNCED_OOM_EVENTS {
                            progress(&format!(
                                "[MEMORY] OOM event #{} ({} bytes) - compaction recovered {} ({})",
                                report.oom_events,
                                size,
                                kib(report.memory_recovered_bytes - recovered_before),
                                seconds(clock.now_ns().saturating_sub(started))
                            ));
                        }
                        match retry {
                            Ok(handle) => {
                                report.oom_recovered += 1;
                                report.allocations += 1;
                                live.push(Live { handle, expires_at_step: step + lifetime });
                            }
                            Err(_) => report.failed_allocations += 1,
                        }
                    }
                    Err(_) => integrity_ok = false,
                }
            }
        } else if !live.is_empty() {
            let object = live.swap_remove(rng.below(live.len() as u64) as usize);
            integrity_ok &= free_object(
                &mut pool,
                source,
                timing_for(&mut until_timed),
                object.handle,
                &mut report,
                &mut deallocation_latency,
            );
        }

        let pressure = pool.pressure_per_mille();
        if let Some(port) = options.port {
            let requests = report.allocation_attempts + report.throttled_requests;
            port.publish(pressure, pool.cache_pages(), report.oom_events, requests, step);
        }
        pressure_sum += pressure as u128;
        if pressure > report.peak_pressure_per_mille {
            report.peak_pressure_per_mille = pressure;
            report.fragmentation_at_peak_per_mille = source.frame_stats().fragmentation_per_mille();
            report.slab_free_bytes_at_peak = pool.stats().slab_free_bytes;
        }
        let elapsed = clock.now_ns().saturating_sub(started);
        while next_progress_tenth <= 9 && elapsed >= duration_ns / 10 * next_progress_tenth {
            progress(&format!(
                "[MEMORY] Pressure: {} | live objects {} | OOM events {} | compactions {} ({})",
                percent_text(pressure),
                live.len(),
                report.oom_events,
                report.proactive_compactions + report.reactive_compactions,
                seconds(elapsed)
            ));
            next_progress_tenth += 1;
        }
    }

    report.elapsed_ms = clock.now_ns().saturating_sub(started) / 1_000_000;
    progress(&format!("[MEMORY] Test duration reached ({})", seconds(clock.now_ns().saturating_sub(started))));
    // A deliberate leak keeps unreclaimable objects (compaction could drop cache ones).
    let mut leaked = Vec::new();
    for object in live.drain(..) {
        if (leaked.len() as u64) < leak && !object.handle.is_reclaimable() {
            leaked.push(object);
        } else {
            integrity_ok &= free_object(
                &mut pool,
                source,
                timing_for(&mut until_timed),
                object.handle,
                &mut report,
                &mut deallocation_latency,
            );
        }
    }
    // Cleanup compaction: not a trigger of the workload, so not counted.
    let recovered = report.memory_recovered_bytes;
    integrity_ok &= pool.compact(source).is_ok();
    report.memory_recovered_bytes = recovered;
    report.compaction_triggers =
        report.proactive_compactions + report.reactive_compactions + report.directed_compactions;
    report.average_pressure_per_mille =
        if report.steps == 0 { 0 } else { (pressure_sum / report.steps as u128) as u32 };
    report.allocation_latency = allocation_latency.summary();
    report.deallocation_latency = deallocation_latency.summary();

    if let Some(port) = options.port {
        port.detach();
    }
    let after = pool.stats();
    let final_free_frames = source.frame_stats().free_frames as u64;
    let (frames_taken, frames_returned) = (counted.taken(), counted.returned());
    report.leak_check = LeakCheck {
        frames_taken,
        frames_returned,
        baseline_free_frames,
        final_free_frames,
        pool_charged_pages_after: after.charged_pages,
        pool_live_objects_after: after.live_objects,
        passed: frames_taken == frames_returned && after.charged_pages == 0 && after.live_objects == 0,
    };
    report.status = Status::from_counts(
        report.failed_allocations,
        report.allocation_attempts,
        integrity_ok && report.leak_check.passed,
    );
    // A deliberately leaked object is returned now so the kernel is whole again; the report keeps the finding.
    for object in leaked {
        let _ = pool.free(&mut counted, object.handle);
    }
    let _ = pool.compact(&mut counted);
    report
}

fn timed_allocate(
    pool: &mut Pool,
    source: &mut dyn FrameSource,
    timing: Option<&dyn Clock>,
    size: u64,
    kind: MemoryKind,
    latency: &mut LatencyHistogram,
) -> Result<ObjectHandle, PoolError> {
    let Some(clock) = timing else { return pool.allocate(source, size, kind) };
    let start = clock.now_ns();
    let result = pool.allocate(source, size, kind);
    latency.record(clock.now_ns().saturating_sub(start));
    result
}

/// Frees one object; false means the pool reported a bookkeeping error.
fn free_object(
    pool: &mut Pool,
    source: &mut dyn FrameSource,
    timing: Option<&dyn Clock>,
    handle: ObjectHandle,
    report: &mut MemoryReport,
    latency: &mut LatencyHistogram,
) -> bool {
    let result = match timing {
        Some(clock) => {
            let start = clock.now_ns();
            let result = pool.free(source, handle);
            latency.record(clock.now_ns().saturating_sub(start));
            result
        }
        None => pool.free(source, handle),
    };
    match result {
        Ok(true) => {
            report.frees += 1;
            true
        }
        Ok(false) => {
            report.frees_of_reclaimed += 1;
            true
        }
        Err(_) => false,
    }
}

/// Compacts and counts; false means the pool reported a bookkeeping error.
/// Compacts the pool; the cache objects it dropped, or `None` when the pool's books failed a check.
fn compact(pool: &mut Pool, source: &mut dyn FrameSource, report: &mut MemoryReport) -> Option<u64> {
    let compaction = pool.compact(source).ok()?;
    report.memory_recovered_bytes += compaction.bytes_recovered;
    Some(compaction.cache_objects_dropped)
}

/// A per-mille figure as a percentage with one decimal (`91.3%`).
pub fn percent_text(per_mille: u32) -> String {
    format!("{}.{}%", per_mille / 10, per_mille % 10)
}

fn seconds(nanoseconds: u64) -> String {
    format!("{}.{}s", nanoseconds / 1_000_000_000, nanoseconds / 100_000_000 % 10)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[cfg(test)]
mod tests;
