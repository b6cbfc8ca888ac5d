//! Workloads' ports: telemetry their owners publish and directives an observer on another thread posts.
//!
//! The memory workload owns its pool and is the only code that touches it.
//! Another thread (the kernel's meta-agent) sees the pool only through this
//! port: the owner publishes its figures after every step, and applies the
//! directives posted here at its next step, through the pool's own interface
//! (a compaction, refusing a share of allocation requests). A port nobody
//! posts to changes nothing, so a workload run with an observer that never
//! acts is the run without one: no workload code asks whether autonomy is on.
//!
//! All fields are atomics with relaxed ordering: each is a counter or a
//! setting read on its own; no invariant spans two of them.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// No cap on the pressure the owner steers toward.
pub const NO_CAP: u32 = u32::MAX;

/// The largest throttle: every allocation request refused.
pub const THROTTLE_ALL_PER_MILLE: u32 = 1_000;

/// Telemetry and control of one pool.
#[derive(Debug)]
pub struct PoolPort {
    attached: AtomicBool,
    runs: AtomicU64,
    pressure_per_mille: AtomicU32,
    peak_since_read_per_mille: AtomicU32,
    limit_pages: AtomicU64,
    cache_pages: AtomicU64,
    oom_events: AtomicU64,
    allocation_requests: AtomicU64,
    steps: AtomicU64,
    reclaim_requests: AtomicU64,
    reclaims_applied: AtomicU64,
    reclaims_requested_in_run: AtomicU64,
    throttle_per_mille: AtomicU32,
    throttle_max_per_mille: AtomicU32,
    throttled_requests: AtomicU64,
    cache_objects_dropped: AtomicU64,
    pressure_cap_per_mille: AtomicU32,
}

/// What an observer reads from the port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortTelemetry {
    /// A workload owns the pool now.
    pub attached: bool,
    /// Runs attached since boot (a change tells the observer a new run started).
    pub run: u64,
    /// Pool pressure, per mille of the limit.
    pub pressure_per_mille: u32,
    /// The pool's limit, pages.
    pub limit_pages: u64,
    /// Pages held by reclaimable cache.
    pub cache_pages: u64,
    /// OOM events of this run so far.
    pub oom_events: u64,
    /// Allocation requests of this run so far (throttled ones included).
    pub allocation_requests: u64,
    /// Workload steps of this run so far.
    pub steps: u64,
    /// Reclaims posted and not yet carried out.
    pub reclaims_pending: u64,
    /// Reclaims posted in this run (the effector's own count, whatever posted them).
    pub reclaims_requested: u64,
    /// The throttle in force, per mille of allocation requests refused.
    pub throttle_per_mille: u32,
    /// The largest throttle set in this run, per mille (the effector's own record).
    pub throttle_max_per_mille: u32,
    /// Requests refused by the throttle in this run.
    pub throttled_requests: u64,
    /// Cache objects dropped by the reclaims posted here, in this run.
    pub cache_objects_dropped: u64,
}

impl Default for PoolPort {
    fn default() -> Self {
        Self::new()
    }
}

impl PoolPort {
    /// A detached port.
    pub const fn new() -> Self {
        PoolPort {
            attached: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            pressure_per_mille: AtomicU32::new(0),
            peak_since_read_per_mille: AtomicU32::new(0),
            limit_pages: AtomicU64::new(0),
            cache_pages: AtomicU64::new(0),
            oom_events: AtomicU64::new(0),
            allocation_requests: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            reclaim_requests: AtomicU64::new(0),
            reclaims_applied: AtomicU64::new(0),
            reclaims_requested_in_run: AtomicU64::new(0),
            throttle_per_mille: AtomicU32::new(0),
            throttle_max_per_mille: AtomicU32::new(0),
            throttled_requests: AtomicU64::new(0),
            cache_objects_dropped: AtomicU64::new(0),
            pressure_cap_per_mille: AtomicU32::new(NO_CAP),
        }
    }

    // The owner's side.

    /// A workload takes the pool: figures start from zero and directives left from an earlier run are dropped.
    pub fn attach(&self, limit_pages: u64) {
        self.clear();
        self.limit_pages.store(limit_pages, Relaxed);
        self.runs.fetch_add(1, Relaxed);
        self.attached.store(true, Relaxed);
    }

    /// The workload is done: observers see a detached port, and nothing posted now carries over.
    pub fn detach(&self) {
        self.attached.store(false, Relaxed);
        self.drop_directives();
    }

    /// Pending reclaims count as carried out; throttle and cap are lifted.
    fn drop_directives(&self) {
        self.reclaims_applied.store(self.reclaim_requests.load(Relaxed), Relaxed);
        self.throttle_per_mille.store(0, Relaxed);
        self.pressure_cap_per_mille.store(NO_CAP, Relaxed);
    }

    fn clear(&self) {
        let counters = [
            &self.oom_events,
            &self.allocation_requests,
            &self.steps,
            &self.throttled_requests,
            &self.cache_objects_dropped,
            &self.reclaims_requested_in_run,
        ];
        for counter in counters {
            counter.store(0, Relaxed);
        }
        self.throttle_max_per_mille.store(0, Relaxed);
        self.pressure_per_mille.store(0, Relaxed);
        self.peak_since_read_per_mille.store(0, Relaxed);
        self.cache_pages.store(0, Relaxed);
        self.drop_directives();
    }

    /// Publishes the figures after a step.
    pub fn publish(&self, pressure_per_mille: u32, cache_pages: u64, oom_events: u64, requests: u64, steps: u64) {
        self.pressure_per_mille.store(pressure_per_mille, Relaxed);
        self.cache_pages.store(cache_pages, Relaxed);
        self.peak_since_read_per_mille.fetch_max(pressure_per_mille, Relaxed);
        self.oom_events.store(oom_events, Relaxed);
        self.allocation_requests.store(requests, Relaxed);
        self.steps.store(steps, Relaxed);
    }

    /// Whether a reclaim is pending; taking it marks every reclaim posted so far as carried out
    /// (reclaims posted between two steps coalesce into one compaction).
    pub fn take_reclaim(&self) -> bool {
        let requested = self.reclaim_requests.load(Relaxed);
        if requested == self.reclaims_applied.load(Relaxed) {
            return false;
        }
        self.reclaims_applied.store(requested, Relaxed);
        true
    }

    /// The highest pressure the owner should steer toward, per mille ([`NO_CAP`]: its own target).
    pub fn pressure_cap(&self) -> u32 {
        self.pressure_cap_per_mille.load(Relaxed)
    }

    /// The throttle in force, per mille.
    pub fn throttle(&self) -> u32 {
        self.throttle_per_mille.load(Relaxed)
    }

    /// Counts a request refused by the throttle.
    pub fn count_throttled(&self) {
        self.throttled_requests.fetch_add(1, Relaxed);
    }

    /// Counts the cache objects a reclaim posted here dropped (what the reclaim cost the workload).
    pub fn count_dropped(&self, objects: u64) {
        self.cache_objects_dropped.fetch_add(objects, Relaxed);
    }

    // The observer's side.

    /// The current figures.
    pub fn telemetry(&self) -> PortTelemetry {
        PortTelemetry {
            attached: self.attached.load(Relaxed),
            run: self.runs.load(Relaxed),
            pressure_per_mille: self.pressure_per_mille.load(Relaxed),
            limit_pages: self.limit_pages.load(Relaxed),
            cache_pages: self.cache_pages.load(Relaxed),
            oom_events: self.oom_events.load(Relaxed),
            allocation_requests: self.allocation_requests.load(Relaxed),
            steps: self.steps.load(Relaxed),
            reclaims_pending: self.reclaim_requests.load(Relaxed) - self.reclaims_applied.load(Relaxed),
            reclaims_requested: self.reclaims_requested_in_run.load(Relaxed),
            throttle_per_mille: self.throttle_per_mille.load(Relaxed),
            throttle_max_per_mille: self.throttle_max_per_mille.load(Relaxed),
            throttled_requests: self.throttled_requests.load(Relaxed),
            cache_objects_dropped: self.cache_objects_dropped.load(Relaxed),
        }
    }

    /// The highest pressure published since the previous call (0 if nothing was published), per mille.
    pub fn take_peak_pressure(&self) -> u32 {
        self.peak_since_read_per_mille.swap(0, Relaxed)
    }

    /// Asks the owner to compact the pool at its next step; ignored while detached.
    pub fn request_reclaim(&self) -> bool {
        if !self.attached.load(Relaxed) {
            return false;
        }
        self.reclaim_requests.fetch_add(1, Relaxed);
        self.reclaims_requested_in_run.fetch_add(1, Relaxed);
        true
    }

    /// Caps the pressure the owner steers toward, per mille; [`NO_CAP`] lifts the cap. Ignored while detached.
    pub fn set_pressure_cap(&self, per_mille: u32) -> bool {
        if !self.attached.load(Relaxed) {
            return false;
        }
        self.pressure_cap_per_mille.store(per_mille, Relaxed);
        true
    }

    /// Sets the share of allocation requests the owner refuses, per mille (clamped to
    /// [`THROTTLE_ALL_PER_MILLE`]); ignored while detached.
    pub fn set_throttle(&self, per_mille: u32) -> bool {
        if !self.attached.load(Relaxed) {
            return false;
        }
        let per_mille = per_mille.min(THROTTLE_ALL_PER_MILLE);
        self.throttle_per_mille.store(per_mille, Relaxed);
        self.throttle_max_per_mille.fetch_max(per_mille, Relaxed);
        true
    }
}

/// The command flood's port: its queue and latency published by the consumer, and whether the meta-agent
/// boosted the consumer's priority. The boost itself goes through the scheduler's interface (the kernel gives
/// the consumer thread a CBS server); this port only says which thread and whether it is done.
#[derive(Debug)]
pub struct FloodPort {
    attached: AtomicBool,
    runs: AtomicU64,
    consumer_thread: AtomicU64,
    queue_depth: AtomicU32,
    processed: AtomicU64,
    latency_max_since_read_ns: AtomicU64,
    boosted: AtomicBool,
    rate_limit_per_s: AtomicU32,
}

/// What an observer reads from the flood's port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FloodTelemetry {
    /// A flood runs now.
    pub attached: bool,
    /// Floods attached since boot.
    pub run: u64,
    /// The consumer thread's ID.
    pub consumer_thread: u64,
    /// Lines waiting in the queue.
    pub queue_depth: u32,
    /// Lines processed in this run.
    pub processed: u64,
    /// The consumer runs with a priority boost.
    pub boosted: bool,
    /// Lines per second the producer may offer (0: its own rate).
    pub rate_limit_per_s: u32,
}

impl Default for FloodPort {
    fn default() -> Self {
        Self::new()
    }
}

impl FloodPort {
    /// A detached port.
    pub const fn new() -> Self {
        FloodPort {
            attached: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            consumer_thread: AtomicU64::new(0),
            queue_depth: AtomicU32::new(0),
            processed: AtomicU64::new(0),
            latency_max_since_read_ns: AtomicU64::new(0),
            boosted: AtomicBool::new(false),
            rate_limit_per_s: AtomicU32::new(0),
        }
    }

    /// A flood starts, consumed by thread `consumer_thread`.
    pub fn attach(&self, consumer_thread: u64) {
        self.consumer_thread.store(consumer_thread, Relaxed);
        self.queue_depth.store(0, Relaxed);
        self.processed.store(0, Relaxed);
        self.latency_max_since_read_ns.store(0, Relaxed);
        self.drop_directives();
        self.runs.fetch_add(1, Relaxed);
        self.attached.store(true, Relaxed);
    }

    /// The flood ended (its consumer thread with it, and any boost).
    pub fn detach(&self) {
        self.attached.store(false, Relaxed);
        self.drop_directives();
    }

    /// No boost, no rate limit.
    fn drop_directives(&self) {
        self.boosted.store(false, Relaxed);
        self.rate_limit_per_s.store(0, Relaxed);
    }

    /// Limits the producer to `lines_per_second` for the rest of the run (0 lifts it); ignored while detached.
    pub fn set_rate_limit(&self, lines_per_second: u32) -> bool {
        if !self.attached.load(Relaxed) {
            return false;
        }
        self.rate_limit_per_s.store(lines_per_second, Relaxed);
        true
    }

    /// The producer's limit, lines per second (0: none).
    pub fn rate_limit(&self) -> u32 {
        self.rate_limit_per_s.load(Relaxed)
    }

    /// The consumer finished a line that waited `latency_ns` from offer to completion; `queue_depth` remain.
    pub fn publish(&self, queue_depth: u32, latency_ns: u64) {
        self.queue_depth.store(queue_depth, Relaxed);
        self.processed.fetch_add(1, Relaxed);
        self.latency_max_since_read_ns.fetch_max(latency_ns, Relaxed);
    }

    /// The longest latency published since the previous call (0 if none), ns.
    pub fn take_latency_max(&self) -> u64 {
        self.latency_max_since_read_ns.swap(0, Relaxed)
    }

    /// Records that the consumer now runs boosted (set by whoever applied the boost).
    pub fn set_boosted(&self) {
        if self.attached.load(Relaxed) {
            self.boosted.store(true, Relaxed);
        }
    }

    /// The current figures.
    pub fn telemetry(&self) -> FloodTelemetry {
        FloodTelemetry {
            attached: self.attached.load(Relaxed),
            run: self.runs.load(Relaxed),
            consumer_thread: self.consumer_thread.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            processed: self.processed.load(Relaxed),
            boosted: self.boosted.load(Relaxed),
            rate_limit_per_s: self.rate_limit_per_s.load(Relaxed),
        }
    }
}

/// A deadline thread's port: the workload publishes which thread it is and its server's job and miss counts
/// after every job. Nothing is posted back: a deadline relaxation goes through the scheduler's interface (the
/// kernel calls `thread::set_deadline`), and the workload restores its own parameters when its disturbance ends.
#[derive(Debug)]
pub struct DeadlinePort {
    attached: AtomicBool,
    runs: AtomicU64,
    thread: AtomicU64,
    jobs: AtomicU64,
    deadline_misses: AtomicU64,
}

/// What an observer reads from a deadline thread's port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeadlineTelemetry {
    /// A deadline thread runs now.
    pub attached: bool,
    /// Deadline threads attached since boot (a change tells the observer a new run started).
    pub run: u64,
    /// The thread's ID.
    pub thread: u64,
    /// Jobs its server counted as complete in this run.
    pub jobs: u64,
    /// Of those, jobs completed after their deadline (release + D).
    pub deadline_misses: u64,
}

impl Default for DeadlinePort {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadlinePort {
    /// A detached port.
    pub const fn new() -> Self {
        DeadlinePort {
            attached: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            thread: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            deadline_misses: AtomicU64::new(0),
        }
    }

    /// Deadline thread `thread` starts; its counts start from zero.
    pub fn attach(&self, thread: u64) {
        self.thread.store(thread, Relaxed);
        self.jobs.store(0, Relaxed);
        self.deadline_misses.store(0, Relaxed);
        self.runs.fetch_add(1, Relaxed);
        self.attached.store(true, Relaxed);
    }

    /// The thread stopped; its last counts stay readable.
    pub fn detach(&self) {
        self.attached.store(false, Relaxed);
    }

    /// The thread's server counts after a job (totals of this run, not increments).
    pub fn publish(&self, jobs: u64, deadline_misses: u64) {
        self.jobs.store(jobs, Relaxed);
        self.deadline_misses.store(deadline_misses, Relaxed);
    }

    /// The current figures.
    pub fn telemetry(&self) -> DeadlineTelemetry {
        DeadlineTelemetry {
            attached: self.attached.load(Relaxed),
            run: self.runs.load(Relaxed),
            thread: self.thread.load(Relaxed),
            jobs: self.jobs.load(Relaxed),
            deadline_misses: self.deadline_misses.load(Relaxed),
        }
    }
}

/// Refuses a share of requests evenly (error diffusion), without drawing from the workload's generator,
/// so the workload's random stream is the same whatever the throttle.
#[derive(Debug, Default, Clone, Copy)]
pub struct Throttle {
    carried: u32,
}

impl Throttle {
    /// Whether to refuse this request under a throttle of `per_mille`.
    pub fn refuse(&mut self, per_mille: u32) -> bool {
        if per_mille == 0 {
            return false;
        }
        self.carried += per_mille.min(THROTTLE_ALL_PER_MILLE);
        if self.carried >= THROTTLE_ALL_PER_MILLE {
            self.carried -= THROTTLE_ALL_PER_MILLE;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_reach_only_an_attached_owner_and_do_not_outlive_its_run() {
        let port = PoolPort::new();
        assert!(!port.request_reclaim(), "nobody owns the pool yet");
        assert!(!port.set_throttle(500));
        port.attach(256);
        assert_eq!(port.telemetry().run, 1);
        assert!(port.request_reclaim() && port.request_reclaim());
        assert_eq!(port.telemetry().reclaims_pending, 2);
        assert!(port.take_reclaim(), "two posted reclaims coalesce into one");
        assert!(!port.take_reclaim());
        assert!(port.set_throttle(5_000));
        assert_eq!(port.throttle(), THROTTLE_ALL_PER_MILLE);
        assert!(port.set_throttle(200));
        port.request_reclaim();
        let before = port.telemetry();
        assert_eq!(
            (before.throttle_per_mille, before.throttle_max_per_mille, before.reclaims_requested),
            (200, 1000, 3)
        );
        port.detach();
        port.attach(256);
        let fresh = port.telemetry();
        assert_eq!((fresh.run, fresh.reclaims_pending, fresh.throttle_per_mille), (2, 0, 0));
        assert_eq!((fresh.throttle_max_per_mille, fresh.reclaims_requested), (0, 0));
        assert!(!port.take_reclaim());
        port.publish(400, 0, 0, 0, 1);
        port.publish(700, 0, 0, 0, 2);
        port.publish(500, 0, 0, 0, 3);
        assert_eq!((port.take_peak_pressure(), port.take_peak_pressure()), (700, 0));
    }

    #[test]
    fn the_flood_port_keeps_the_longest_latency_and_a_boost_lasts_one_run() {
        let port = FloodPort::new();
        port.set_boosted();
        assert!(!port.telemetry().boosted, "nothing to boost while detached");
        port.attach(7);
        port.publish(3, 2_000);
        port.publish(1, 9_000);
        port.publish(0, 4_000);
        assert_eq!((port.take_latency_max(), port.take_latency_max()), (9_000, 0));
        port.set_boosted();
        let telemetry = port.telemetry();
        assert_eq!((telemetry.consumer_thread, telemetry.queue_depth, telemetry.processed), (7, 0, 3));
        assert!(telemetry.boosted);
        assert!(port.set_rate_limit(100));
        assert_eq!(port.rate_limit(), 100);
        port.detach();
        assert_eq!(port.rate_limit(), 0);
        port.attach(9);
        assert_eq!((port.telemetry().boosted, port.telemetry().run, port.telemetry().processed), (false, 2, 0));
    }

    #[test]
    fn the_deadline_port_carries_the_published_totals_and_a_new_run_starts_from_zero() {
        let port = DeadlinePort::new();
        assert_eq!(port.telemetry(), DeadlineTelemetry::default());
        port.attach(12);
        port.publish(5, 2);
        port.publish(6, 3);
        assert_eq!(
            port.telemetry(),
            DeadlineTelemetry { attached: true, run: 1, thread: 12, jobs: 6, deadline_misses: 3 }
        );
        port.detach();
        assert_eq!((port.telemetry().attached, port.telemetry().deadline_misses), (false, 3));
        port.attach(14);
        assert_eq!(
            port.telemetry(),
            DeadlineTelemetry { attached: true, run: 2, thread: 14, jobs: 0, deadline_misses: 0 }
        );
    }

    #[test]
    fn the_throttle_refuses_exactly_its_share_evenly() {
        let mut throttle = Throttle::default();
        let refused: Vec<bool> = (0..10).map(|_| throttle.refuse(300)).collect();
        assert_eq!(refused.iter().filter(|&&r| r).count(), 3);
        assert_eq!(refused, [false, false, false, true, false, false, true, false, false, true]);
        let mut throttle = Throttle::default();
        assert_eq!((0..1000).filter(|_| throttle.refuse(1)).count(), 1);
        assert!((0..5).all(|_| throttle.refuse(1000)));
        assert!(!(0..5).any(|_| throttle.refuse(0)));
    }
}
