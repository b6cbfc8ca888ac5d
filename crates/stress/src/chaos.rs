//! Chaos engineering: seeded events against real subsystems, a measured steady state, recovery times,
//! faults injected into recovery paths, and replay of any single event.
//!
//! The engine only plans, times and judges. Everything that acts on the system, and every health
//! check, goes through a [`ChaosTarget`]: the kernel's acts on its real subsystems, the tests' on a
//! simulated one. Rules (recovery, failures, status) are documented in `docs/stress.md`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_metrics::{LatencyHistogram, LatencySummary};

use crate::{learning, Status, StressRng};

/// The kinds of chaos event (the seed's nine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Telemetry queries through the command registry, back to back, from a separate thread.
    TelemetryStorm,
    /// A command flood through the registry's bounded queue.
    CommandBurst,
    /// The budget of an admitted deadline thread cut below its work.
    DeadlinePressure,
    /// The installed learning agent retrained on a real episode and committed while in service.
    HotRetrain,
    /// Unreclaimable memory allocated in the chaos pool, then released.
    MemorySpike,
    /// Autonomy switched to the opposite state for a while.
    AutonomyFlip,
    /// Part of the pool's working set freed at once; the workload then refills it.
    MemoryRelease,
    /// Every network frame dropped, both ways.
    NetworkPartition,
    /// Every disk request held until the stall ends.
    DiskStall,
}

impl EventKind {
    /// All kinds, in the order events draw them.
    pub const ALL: [EventKind; 9] = [
        EventKind::TelemetryStorm,
        EventKind::CommandBurst,
        EventKind::DeadlinePressure,
        EventKind::HotRetrain,
        EventKind::MemorySpike,
        EventKind::AutonomyFlip,
        EventKind::MemoryRelease,
        EventKind::NetworkPartition,
        EventKind::DiskStall,
    ];

    /// The JSON name (`memory_spike`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::TelemetryStorm => "telemetry_storm",
            EventKind::CommandBurst => "command_burst",
            EventKind::DeadlinePressure => "deadline_pressure",
            EventKind::HotRetrain => "hot_retrain",
            EventKind::MemorySpike => "memory_spike",
            EventKind::AutonomyFlip => "autonomy_flip",
            EventKind::MemoryRelease => "memory_release",
            EventKind::NetworkPartition => "network_partition",
            EventKind::DiskStall => "disk_stall",
        }
    }

    /// The name for people (`Memory spike`).
    pub fn label(self) -> &'static str {
        match self {
            EventKind::TelemetryStorm => "Telemetry storm",
            EventKind::CommandBurst => "Command burst",
            EventKind::DeadlinePressure => "Deadline pressure",
            EventKind::HotRetrain => "Hot retrain",
            EventKind::MemorySpike => "Memory spike",
            EventKind::AutonomyFlip => "Autonomy flip",
            EventKind::MemoryRelease => "Memory release",
            EventKind::NetworkPartition => "Network partition",
            EventKind::DiskStall => "Disk I/O stall",
        }
    }

    /// The fault `--fail-rate` injects into this kind's recovery path.
    pub fn fault(self) -> &'static str {
        match self {
            EventKind::TelemetryStorm => "the storm ignores its stop",
            EventKind::CommandBurst => "the burst's producer ignores its stop",
            EventKind::DeadlinePressure => "the budget restore is refused",
            EventKind::HotRetrain => "the retrain aborts mid-commit",
            EventKind::MemorySpike => "reclaim refuses",
            EventKind::AutonomyFlip => "the flip back is refused",
            EventKind::MemoryRelease => "refill allocations fail",
            EventKind::NetworkPartition => "packets drop during recovery",
            EventKind::DiskStall => "requests fail during recovery",
        }
    }
}

/// One event's kind and parameters, drawn from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChaosEvent {
    /// `queries` telemetry commands, back to back, over `duration_ms`.
    TelemetryStorm {
        /// Queries per 10 ms the storm thread aims for (50..=200).
        intensity: u32,
        /// How long the storm lasts (20..=200 ms).
        duration_ms: u32,
    },
    /// A command flood.
    CommandBurst {
        /// Lines offered per second (500..=20,000).
        rate: u32,
        /// How long the producer offers (50..=500 ms).
        duration_ms: u32,
    },
    /// The deadline thread's budget cut to `tight_per_mille` ‰ of its reservation.
    DeadlinePressure {
        /// 500..=900 ‰ of the reserved budget (the job needs 750 ‰).
        tight_per_mille: u32,
        /// How long the cut lasts (20..=200 ms).
        duration_ms: u32,
    },
    /// A retrain on a real episode of `decisions` decisions.
    HotRetrain {
        /// Decisions in the training episode (10..=100).
        decisions: u32,
    },
    /// `mib` MiB of unreclaimable memory allocated in the chaos pool, then released.
    MemorySpike {
        /// 1..=10 MiB.
        mib: u32,
    },
    /// Autonomy switched to the opposite state.
    AutonomyFlip {
        /// For 20..=200 ms.
        duration_ms: u32,
    },
    /// `percent` % of the working set freed.
    MemoryRelease {
        /// 10..=50 %.
        percent: u32,
    },
    /// Every frame dropped, both ways.
    NetworkPartition {
        /// For 50..=500 ms.
        duration_ms: u32,
    },
    /// Every disk request held.
    DiskStall {
        /// For 50..=500 ms.
        duration_ms: u32,
    },
}

impl ChaosEvent {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            ChaosEvent::TelemetryStorm { .. } => EventKind::TelemetryStorm,
            ChaosEvent::CommandBurst { .. } => EventKind::CommandBurst,
            ChaosEvent::DeadlinePressure { .. } => EventKind::DeadlinePressure,
            ChaosEvent::HotRetrain { .. } => EventKind::HotRetrain,
            ChaosEvent::MemorySpike { .. } => EventKind::MemorySpike,
            ChaosEvent::AutonomyFlip { .. } => EventKind::AutonomyFlip,
            ChaosEvent::MemoryRelease { .. } => EventKind::MemoryRelease,
            ChaosEvent::NetworkPartition { .. } => EventKind::NetworkPartition,
            ChaosEvent::DiskStall { .. } => EventKind::DiskStall,
        }
    }

    /// How long the disturbance itself lasts, ns (0: it acts at once).
    pub fn disturbance_ns(&self) -> u64 {
        let ms = match *self {
            ChaosEvent::TelemetryStorm { duration_ms, .. }
            | ChaosEvent::CommandBurst { duration_ms, .. }
            | ChaosEvent::DeadlinePressure { duration_ms, .. }
            | ChaosEvent::AutonomyFlip { duration_ms }
            | ChaosEvent::NetworkPartition { duration_ms }
            | ChaosEvent::DiskStall { duration_ms } => duration_ms,
            ChaosEvent::HotRetrain { .. } | ChaosEvent::MemorySpike { .. } | ChaosEvent::MemoryRelease { .. } => 0,
        };
        u64::from(ms) * 1_000_000
    }

    /// `Memory spike (5 MiB)`.
    pub fn describe(&self) -> String {
        let parameters = match *self {
            ChaosEvent::TelemetryStorm { intensity, duration_ms } => {
                format!("{intensity} queries/10 ms, {duration_ms} ms")
            }
            ChaosEvent::CommandBurst { rate, duration_ms } => format!("{rate} lines/s, {duration_ms} ms"),
            ChaosEvent::DeadlinePressure { tight_per_mille, duration_ms } => {
                format!("budget {}.{:03}x, {duration_ms} ms", tight_per_mille / 1000, tight_per_mille % 1000)
            }
            ChaosEvent::HotRetrain { decisions } => format!("{decisions} decisions"),
            ChaosEvent::MemorySpike { mib } => format!("{mib} MiB"),
            ChaosEvent::AutonomyFlip { duration_ms }
            | ChaosEvent::NetworkPartition { duration_ms }
            | ChaosEvent::DiskStall { duration_ms } => format!("{duration_ms} ms"),
            ChaosEvent::MemoryRelease { percent } => format!("{percent} %"),
        };
        format!("{} ({parameters})", self.kind().label())
    }
}

/// Event `index` of a run: its parameters and whether a fault is injected into its recovery path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlannedEvent {
    /// 1-based position in the run.
    pub index: u32,
    /// What happens.
    pub event: ChaosEvent,
    /// Whether `--fail-rate` armed this kind's recovery fault.
    pub fault: bool,
}

/// Salt that keeps chaos streams apart from the other tests' streams of the same seed.
const CHAOS_STREAM: u64 = 0xC4A0_5000_0000_0000;

/// Draws event `index` of the run with `seed`. Each event has its own stream derived from the seed and
/// its index, so one event replays on its own (`--only`) and the events do not depend on the fail rate:
/// the kind and parameters are drawn before the fault.
pub fn plan_event(seed: u64, index: u32, fail_rate_percent: u64, available: &[EventKind]) -> Option<PlannedEvent> {
    if available.is_empty() {
        return None;
    }
    let mut rng = StressRng::new(learning::workload_seed(seed ^ CHAOS_STREAM, u64::from(index)));
    let kind = available[rng.below(available.len() as u64) as usize];
    let mut draw = |low: u64, high: u64| rng.range(low, high) as u32;
    let event = match kind {
        EventKind::TelemetryStorm => {
            ChaosEvent::TelemetryStorm { intensity: draw(50, 200), duration_ms: draw(20, 200) }
        }
        EventKind::CommandBurst => ChaosEvent::CommandBurst { rate: draw(500, 20_000), duration_ms: draw(50, 500) },
        EventKind::DeadlinePressure => {
            ChaosEvent::DeadlinePressure { tight_per_mille: draw(500, 900), duration_ms: draw(20, 200) }
        }
        EventKind::HotRetrain => ChaosEvent::HotRetrain { decisions: draw(10, 100) },
        EventKind::MemorySpike => ChaosEvent::MemorySpike { mib: draw(1, 10) },
        EventKind::AutonomyFlip => ChaosEvent::AutonomyFlip { duration_ms: draw(20, 200) },
        EventKind::MemoryRelease => ChaosEvent::MemoryRelease { percent: draw(10, 50) },
        EventKind::NetworkPartition => ChaosEvent::NetworkPartition { duration_ms: draw(50, 500) },
        EventKind::DiskStall => ChaosEvent::DiskStall { duration_ms: draw(50, 500) },
    };
    let fault = rng.chance_percent(fail_rate_percent);
    Some(PlannedEvent { index, event, fault })
}

/// One steady-state check's reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `shell`, `memory`, `deadline`, `threads`, `autonomy`, `agent`, `network`, `disk`.
    pub name: &'static str,
    /// Whether it holds.
    pub passed: bool,
    /// What was read, for people.
    pub detail: String,
}

/// Every check of the steady state, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
}

impl Health {
    /// Adds a check.
    pub fn push(&mut self, name: &'static str, passed: bool, detail: String) {
        self.checks.push(Check { name, passed, detail });
    }

    /// Whether every check holds.
    pub fn steady(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// Names of the checks that fail.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|check| !check.passed).map(|check| check.name).collect()
    }
}

/// Figures of one event that the target counted while it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventFigures {
    /// Allocations the pool refused during the event.
    pub oom_events: u64,
    /// Of those, allocations that still failed after reclaim and a retry.
    pub oom_unrecovered: u64,
    /// Allocation requests refused by a throttle the meta-agent set through the pool's port (not attempts).
    pub throttled: u64,
    /// Compactions the meta-agent asked for through the pool's port, carried out during the event.
    pub directed_reclaims: u64,
    /// Jobs the periodic deadline thread completed during the event.
    pub deadline_jobs: u64,
    /// Of those, jobs completed after their deadline (release + D in force at completion).
    pub deadline_misses: u64,
}

/// Whether the system's integrity held at the end: everything the run took was given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// Whether every resource is back at its baseline.
    pub passed: bool,
    /// What was compared.
    pub detail: String,
}

/// What the engine needs from the system under chaos.
pub trait ChaosTarget {
    /// Current time, ns.
    fn now_ns(&mut self) -> u64;
    /// Waits until `deadline_ns`.
    fn sleep_until_ns(&mut self, deadline_ns: u64);
    /// Reads every steady-state check.
    fn check(&mut self) -> Health;
    /// Starts `planned`'s disturbance and, if `planned.fault`, arms its recovery fault, which holds until
    /// [`ChaosTarget::settle`].
    fn begin(&mut self, planned: &PlannedEvent) -> Result<(), String>;
    /// Drives the event at the current time: ends the disturbance when due and runs the recovery paths
    /// (which an armed fault may hold). Returns whether the disturbance is still on.
    fn advance(&mut self) -> bool;
    /// Ends the disturbance and disarms every fault, at once.
    fn settle(&mut self);
    /// Consistency checks of the subsystems' state; `Err` describes an inconsistency.
    fn invariants(&mut self) -> Result<(), String>;
    /// Figures counted since the event began.
    fn take_figures(&mut self) -> EventFigures;
    /// Gives back everything the run took and compares the resources with their baseline.
    fn finish(&mut self) -> Integrity;
    /// Told of each event's record as soon as the event is judged, before the next begins (the kernel publishes
    /// it as a `chaos.event`). Does nothing by default.
    fn event_ended(&mut self, _record: &EventRecord) {}
}

/// Parameters of a chaos run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChaosConfig {
    /// Run time, ms; events start while it has not passed.
    pub duration_ms: u64,
    /// The run's seed.
    pub seed: u64,
    /// Chance that an event's recovery fault is armed, percent.
    pub fail_rate_percent: u64,
    /// A PARTIAL PASS counts as success.
    pub expect_failures: bool,
    /// Time a recovery may take after the disturbance ends, ms.
    pub recovery_timeout_ms: u64,
    /// Interval between readings of the checks, µs.
    pub poll_interval_us: u64,
    /// Run only this event of the seed's sequence (replay).
    pub only: Option<u32>,
}

/// Default recovery timeout, ms.
pub const DEFAULT_RECOVERY_TIMEOUT_MS: u64 = 250;
/// Default interval between check readings, µs.
pub const DEFAULT_POLL_INTERVAL_US: u64 = 2_000;

/// Why an event failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The steady state did not return within the recovery timeout; these checks still failed.
    Timeout {
        /// Failing checks at the timeout.
        checks: Vec<&'static str>,
    },
    /// Allocations failed even after reclaim and a retry.
    OomNotRecovered {
        /// How many.
        count: u64,
    },
    /// An invariant check found an inconsistent state.
    Inconsistent {
        /// What was inconsistent.
        what: String,
    },
    /// The event could not be started.
    StartFailed {
        /// Why.
        why: String,
    },
}

impl Failure {
    /// Short name for breakdowns (`timeout`).
    pub fn name(&self) -> &'static str {
        match self {
            Failure::Timeout { .. } => "timeout",
            Failure::OomNotRecovered { .. } => "oom_not_recovered",
            Failure::Inconsistent { .. } => "inconsistent_state",
            Failure::StartFailed { .. } => "start_failed",
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Timeout { checks } => format!("timeout: {} still failing", checks.join(", ")),
            Failure::OomNotRecovered { count } => format!("{count} allocations failed after reclaim"),
            Failure::Inconsistent { what } => format!("inconsistent state: {what}"),
            Failure::StartFailed { why } => format!("could not start: {why}"),
        }
    }
}

/// One event as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    /// What was planned.
    #[serde(flatten)]
    pub planned: PlannedEvent,
    /// The fault armed, if any.
    pub fault_injected: Option<&'static str>,
    /// Time from the event's start until its disturbance ended, ns.
    pub disturbance_ns: u64,
    /// Time from the disturbance's end until every check passed, ns; `None` when the event failed.
    pub recovery_ns: Option<u64>,
    /// Why it failed; `None` when it recovered.
    pub failure: Option<Failure>,
    /// Figures counted during the event.
    pub figures: EventFigures,
    /// The run's time when the event began, ns since the run started.
    pub started_at_ns: u64,
}

impl EventRecord {
    /// `[CHAOS] Event #3: Memory spike (5 MiB) → Recovered (1.2 ms) | replay: --replay 7 --only 3`.
    pub fn line(&self, seed: u64) -> String {
        let fault = match self.fault_injected {
            Some(fault) => format!(" [fault: {fault}]"),
            None => String::new(),
        };
        let outcome = match (&self.failure, self.recovery_ns) {
            (None, Some(recovery)) => format!("Recovered ({})", millis_text(recovery)),
            (Some(failure), _) => format!("FAILED ({})", failure.describe()),
            (None, None) => String::from("no outcome"),
        };
        format!(
            "[CHAOS] Event #{}: {}{fault} → {outcome} | replay: --replay {seed} --only {}",
            self.planned.index,
            self.planned.event.describe(),
            self.planned.index
        )
    }
}

/// A kind that was not drawn, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The kind.
    pub kind: EventKind,
    /// Why it cannot run here (e.g. no disk attached).
    pub reason: &'static str,
}

/// Failures of one (kind, reason) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The event kind.
    pub kind: EventKind,
    /// [`Failure::name`].
    pub failure: &'static str,
    /// How many events.
    pub count: u64,
    /// Their numbers, to investigate or replay.
    pub events: Vec<u32>,
}

/// The report of `stresstest chaos`.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// The run's parameters.
    pub config: ChaosConfig,
    /// Kinds the run drew from.
    pub available: Vec<EventKind>,
    /// Kinds it could not draw, and why.
    pub skipped: Vec<Skipped>,
    /// Whether the steady state held before the first event.
    pub steady_state_at_start: bool,
    /// The checks read before the first event.
    pub baseline: Health,
    /// Every event, in order.
    pub events: Vec<EventRecord>,
    /// Events run.
    pub total_events: u64,
    /// Distinct (kind, parameters) pairs among them.
    pub unique_events: u64,
    /// Events after which every check passed within the timeout, with no other failure.
    pub recovered: u64,
    /// Events that failed.
    pub failed: u64,
    /// recovered / total, ‰.
    pub success_rate_per_mille: u32,
    /// Events whose recovery fault was armed.
    pub injected_faults: u64,
    /// Failed events with an armed fault.
    pub failures_with_fault: u64,
    /// Failed events with no fault armed: the system's own failures.
    pub failures_without_fault: u64,
    /// Recovery times of recovered events.
    pub recovery: LatencySummary,
    /// Failures by kind and reason, with the events to investigate.
    pub failures_by_type: Vec<FailureGroup>,
    /// The event after which the steady state did not return even once everything was undone.
    pub steady_state_lost_after: Option<u32>,
    /// Resources back at their baseline at the end.
    pub integrity: Integrity,
    /// Run time, ns.
    pub elapsed_ns: u64,
    /// See `docs/stress.md`.
    pub status: Status,
}

/// Polls the checks until they all pass or `timeout_ns` has gone by; returns the last reading and whether
/// it was steady.
fn wait_steady<T: ChaosTarget + ?Sized>(target: &mut T, timeout_ns: u64, poll_ns: u64) -> (Health, bool) {
    let start = target.now_ns();
    loop {
        target.advance();
        let health = target.check();
        if health.steady() {
            return (health, true);
        }
        let now = target.now_ns();
        if now.saturating_sub(start) >= timeout_ns {
            return (health, false);
        }
        target.sleep_until_ns(now + poll_ns);
    }
}

/// Runs one planned event to its outcome.
pub fn run_event<T: ChaosTarget + ?Sized>(target: &mut T, planned: &PlannedEvent, config: &ChaosConfig) -> EventRecord {
    let timeout_ns = config.recovery_timeout_ms * 1_000_000;
    let poll_ns = config.poll_interval_us * 1_000;
    let begun = target.now_ns();
    let mut record = EventRecord {
        planned: *planned,
        fault_injected: planned.fault.then(|| planned.event.kind().fault()),
        disturbance_ns: 0,
        recovery_ns: None,
        failure: None,
        figures: EventFigures::default(),
        started_at_ns: begun,
    };
    if let Err(why) = target.begin(planned) {
        target.settle();
        record.failure = Some(Failure::StartFailed { why });
        record.figures = target.take_figures();
        return record;
    }
    // A disturbance that overstays its planned length by the timeout is cut short and counted as a timeout.
    // Readings fall on the planned end, so a disturbance that ends on time is seen ending on time.
    let planned_end = begun + planned.event.disturbance_ns();
    let disturbance_limit = planned.event.disturbance_ns() + timeout_ns;
    let ended = loop {
        let still_on = target.advance();
        let now = target.now_ns();
        if !still_on {
            break Some(now);
        }
        if now.saturating_sub(begun) >= disturbance_limit {
            break None;
        }
        let next = now + poll_ns;
        target.sleep_until_ns(if now < planned_end { next.min(planned_end) } else { next });
    };
    let Some(ended) = ended else {
        record.disturbance_ns = target.now_ns().saturating_sub(begun);
        record.failure = Some(Failure::Timeout { checks: alloc::vec!["disturbance"] });
        target.settle();
        record.figures = target.take_figures();
        return record;
    };
    record.disturbance_ns = ended.saturating_sub(begun);
    loop {
        let health = target.check();
        let now = target.now_ns();
        if health.steady() {
            record.recovery_ns = Some(now.saturating_sub(ended));
            break;
        }
        if now.saturating_sub(ended) >= timeout_ns {
            record.failure = Some(Failure::Timeout { checks: health.failing() });
            break;
        }
        target.sleep_until_ns(now + poll_ns);
        target.advance();
    }
    target.settle();
    record.figures = target.take_figures();
    if record.failure.is_none() && record.figures.oom_unrecovered > 0 {
        record.failure = Some(Failure::OomNotRecovered { count: record.figures.oom_unrecovered });
    }
    if let Err(what) = target.invariants() {
        if record.failure.is_none() {
            record.failure = Some(Failure::Inconsistent { what });
        }
    }
    if record.failure.is_some() {
        record.recovery_ns = None;
    }
    record
}

/// Runs events from the seed's sequence until the duration has passed (or only `config.only`), and judges.
pub fn run_chaos<T: ChaosTarget + ?Sized>(
    target: &mut T,
    config: &ChaosConfig,
    available: &[EventKind],
    skipped: Vec<Skipped>,
    progress: &mut dyn FnMut(&str),
) -> ChaosReport {
    let timeout_ns = config.recovery_timeout_ms * 1_000_000;
    let poll_ns = config.poll_interval_us * 1_000;
    let start = target.now_ns();
    let (baseline, steady_state_at_start) = wait_steady(target, timeout_ns, poll_ns);
    let mut events = Vec::new();
    let mut steady_state_lost_after = None;
    if steady_state_at_start {
        let mut index = config.only.unwrap_or(1);
        while let Some(planned) = plan_event(config.seed, index, config.fail_rate_percent, available) {
            let mut record = run_event(target, &planned, config);
            record.started_at_ns = record.started_at_ns.saturating_sub(start);
            target.event_ended(&record);
            progress(&record.line(config.seed));
            let failed = record.failure.is_some();
            events.push(record);
            if failed && !wait_steady(target, timeout_ns, poll_ns).1 {
                steady_state_lost_after = Some(index);
                progress(&format!("[CHAOS] The steady state did not return after event #{index}; stopping"));
                break;
            }
            index += 1;
            let elapsed = target.now_ns().saturating_sub(start);
            if config.only.is_some() || elapsed >= config.duration_ms.saturating_mul(1_000_000) {
                break;
            }
        }
    } else {
        progress(&format!("[CHAOS] No steady state before the first event: {} failing", baseline.failing().join(", ")));
    }
    let integrity = target.finish();
    let elapsed_ns = target.now_ns().saturating_sub(start);
    summarize(
        config,
        available,
        skipped,
        baseline,
        steady_state_at_start,
        events,
        steady_state_lost_after,
        integrity,
        elapsed_ns,
    )
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    config: &ChaosConfig,
    available: &[EventKind],
    skipped: Vec<Skipped>,
    baseline: Health,
    steady_state_at_start: bool,
    events: Vec<EventRecord>,
    steady_state_lost_after: Option<u32>,
    integrity: Integrity,
    elapsed_ns: u64,
) -> ChaosReport {
    let total_events = events.len() as u64;
    let failed = events.iter().filter(|event| event.failure.is_some()).count() as u64;
    let recovered = total_events - failed;
    let mut unique: Vec<ChaosEvent> = events.iter().map(|event| event.planned.event).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut histogram = LatencyHistogram::new();
    for recovery in events.iter().filter_map(|event| event.recovery_ns) {
        histogram.record(recovery);
    }
    let mut failures_by_type: Vec<FailureGroup> = Vec::new();
    for event in &events {
        let Some(failure) = &event.failure else { continue };
        let kind = event.planned.event.kind();
        match failures_by_type.iter_mut().find(|group| group.kind == kind && group.failure == failure.name()) {
            Some(group) => {
                group.count += 1;
                group.events.push(event.planned.index);
            }
            None => failures_by_type.push(FailureGroup {
                kind,
                failure: failure.name(),
                count: 1,
                events: alloc::vec![event.planned.index],
            }),
        }
    }
    failures_by_type.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    let injected_faults = events.iter().filter(|event| event.planned.fault).count() as u64;
    let failures_with_fault =
        events.iter().filter(|event| event.planned.fault && event.failure.is_some()).count() as u64;
    let integrity_ok = integrity.passed && steady_state_at_start && steady_state_lost_after.is_none();
    ChaosReport {
        config: *config,
        available: available.to_vec(),
        skipped,
        steady_state_at_start,
        baseline,
        total_events,
        unique_events: unique.len() as u64,
        recovered,
        failed,
        success_rate_per_mille: (recovered * 1000).checked_div(total_events).unwrap_or(0) as u32,
        injected_faults,
        failures_with_fault,
        failures_without_fault: failed - failures_with_fault,
        recovery: histogram.summary(),
        failures_by_type,
        steady_state_lost_after,
        integrity,
        elapsed_ns,
        status: Status::from_counts(failed, total_events, integrity_ok),
        events,
    }
}

/// `1.234 ms`.
pub fn millis_text(nanoseconds: u64) -> String {
    format!("{}.{:03} ms", nanoseconds / 1_000_000, nanoseconds / 1_000 % 1_000)
}

/// The report's summary for people (event lines are printed as the run goes).
pub fn human(report: &ChaosReport) -> String {
    let config = &report.config;
    let mut text = String::from("[STRESS TEST] Chaos engineering complete\n");
    text.push_str(&format!(
        "  Seed: {} | Duration: {} ms | Failure injection rate: {}% | Recovery timeout: {} ms\n",
        config.seed, config.duration_ms, config.fail_rate_percent, config.recovery_timeout_ms
    ));
    if !report.skipped.is_empty() {
        let skipped: Vec<String> =
            report.skipped.iter().map(|skip| format!("{} ({})", skip.kind.label(), skip.reason)).collect();
        text.push_str(&format!("  Not drawn: {}\n", skipped.join(", ")));
    }
    if !report.steady_state_at_start {
        text.push_str(&format!(
            "  No steady state before the first event: {} failing\n",
            report.baseline.failing().join(", ")
        ));
    }
    text.push_str(&format!(
        "  Total events: {} ({} unique)\n  Successful recoveries: {}\n  Failed recoveries: {}\n",
        report.total_events, report.unique_events, report.recovered, report.failed
    ));
    text.push_str(&format!(
        "  Recovery success rate: {}.{}%\n",
        report.success_rate_per_mille / 10,
        report.success_rate_per_mille % 10
    ));
    text.push_str(&format!(
        "  Injected faults: {} ({} led to a failure); failures without a fault: {}\n",
        report.injected_faults, report.failures_with_fault, report.failures_without_fault
    ));
    let recovery = &report.recovery;
    if recovery.count > 0 {
        text.push_str(&format!(
            "  Recovery time: p50 {} | p95 {} | p99 {} | max {}\n",
            millis_text(recovery.p50_ns),
            millis_text(recovery.p95_ns),
            millis_text(recovery.p99_ns),
            millis_text(recovery.max_ns)
        ));
    }
    if let Some(index) = report.steady_state_lost_after {
        text.push_str(&format!("  Steady state lost after event #{index}: the run stopped there\n"));
    }
    text.push_str(&format!(
        "  Integrity: {} ({})\n",
        if report.integrity.passed { "passed" } else { "FAILED" },
        report.integrity.detail
    ));
    text.push_str(&format!("  Status: {}\n", report.status.label()));
    if !report.failures_by_type.is_empty() {
        text.push_str("\nFailures requiring investigation:\n");
        for group in &report.failures_by_type {
            let numbers: Vec<String> = group.events.iter().take(8).map(|index| format!("#{index}")).collect();
            let more = if group.events.len() > 8 { ", …" } else { "" };
            text.push_str(&format!(
                "  - {} {} ({} occurrence{}): {}{more}\n",
                group.kind.label(),
                group.failure.replace('_', " "),
                group.count,
                if group.count == 1 { "" } else { "s" },
                numbers.join(", ")
            ));
        }
    }
    text.trim_end().into()
}

#[cfg(test)]
mod tests;
