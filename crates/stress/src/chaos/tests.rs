//! The chaos engine against a simulated system whose recovery times and faults are known exactly.

use super::*;

const MS: u64 = 1_000_000;

/// A system where event `i` takes `delay_ms(i)` to recover after its disturbance, and an armed fault holds
/// the recovery (visibly or not) until `settle`.
struct Sim {
    now: u64,
    disturbed_until: u64,
    recovers_at: u64,
    fault_armed: bool,
    /// Whether an armed fault makes a check fail.
    faults_visible: bool,
    /// Event numbers whose disturbance never ends on its own.
    overstays: Vec<u32>,
    /// Event numbers after which the invariants fail.
    inconsistent: Vec<u32>,
    /// Event numbers with an allocation that failed after reclaim.
    unrecovered_oom: Vec<u32>,
    /// From this event on, nothing recovers, even when settled.
    broken_from: Option<u32>,
    current: u32,
    begun: Vec<PlannedEvent>,
    /// Events whose record the run handed over, with whether each recovered.
    ended: Vec<(u32, bool)>,
    leak: bool,
}

impl Sim {
    fn new() -> Self {
        Sim {
            now: 0,
            disturbed_until: 0,
            recovers_at: 0,
            fault_armed: false,
            faults_visible: true,
            overstays: Vec::new(),
            inconsistent: Vec::new(),
            unrecovered_oom: Vec::new(),
            broken_from: None,
            current: 0,
            begun: Vec::new(),
            ended: Vec::new(),
            leak: false,
        }
    }

    fn delay_ns(index: u32) -> u64 {
        u64::from(index % 30) * MS
    }

    fn broken(&self) -> bool {
        self.broken_from.is_some_and(|from| self.current >= from)
    }
}

impl ChaosTarget for Sim {
    fn now_ns(&mut self) -> u64 {
        self.now += 1_000;
        self.now
    }

    fn sleep_until_ns(&mut self, deadline_ns: u64) {
        self.now = self.now.max(deadline_ns);
    }

    fn check(&mut self) -> Health {
        let mut health = Health::default();
        let recovered = self.now >= self.recovers_at && !self.broken();
        health.push("memory", recovered, String::new());
        health.push("shell", !(self.fault_armed && self.faults_visible), String::new());
        health
    }

    fn begin(&mut self, planned: &PlannedEvent) -> Result<(), String> {
        self.current = planned.index;
        self.begun.push(*planned);
        self.disturbed_until =
            if self.overstays.contains(&planned.index) { u64::MAX } else { self.now + planned.event.disturbance_ns() };
        self.recovers_at = self.disturbed_until.saturating_add(Self::delay_ns(planned.index));
        self.fault_armed = planned.fault;
        Ok(())
    }

    fn advance(&mut self) -> bool {
        self.now < self.disturbed_until
    }

    fn settle(&mut self) {
        self.fault_armed = false;
        self.disturbed_until = self.disturbed_until.min(self.now);
        self.recovers_at = self.recovers_at.min(self.now);
    }

    fn invariants(&mut self) -> Result<(), String> {
        if self.inconsistent.contains(&self.current) {
            Err(String::from("weights match neither version"))
        } else {
            Ok(())
        }
    }

    fn take_figures(&mut self) -> EventFigures {
        let failed = u64::from(self.unrecovered_oom.contains(&self.current));
        EventFigures { oom_events: failed * 3, oom_unrecovered: failed, ..EventFigures::default() }
    }

    fn finish(&mut self) -> Integrity {
        Integrity { passed: !self.leak, detail: String::from("simulated") }
    }

    fn event_ended(&mut self, record: &EventRecord) {
        assert_eq!(self.current, record.planned.index, "told before the next event begins");
        self.ended.push((record.planned.index, record.failure.is_none()));
    }
}

fn config(duration_ms: u64, seed: u64, fail_rate_percent: u64) -> ChaosConfig {
    ChaosConfig {
        duration_ms,
        seed,
        fail_rate_percent,
        expect_failures: false,
        recovery_timeout_ms: DEFAULT_RECOVERY_TIMEOUT_MS,
        poll_interval_us: DEFAULT_POLL_INTERVAL_US,
        only: None,
    }
}

fn run(sim: &mut Sim, config: &ChaosConfig) -> ChaosReport {
    run_chaos(sim, config, &EventKind::ALL, Vec::new(), &mut |_| {})
}

#[test]
fn events_draw_every_kind_with_parameters_in_range_and_the_fault_last() {
    let mut kinds = Vec::new();
    for index in 1..=400 {
        let planned = plan_event(5, index, 30, &EventKind::ALL).unwrap();
        assert_eq!(planned.index, index);
        let in_range = match planned.event {
            ChaosEvent::TelemetryStorm { intensity, duration_ms } => {
                (50..=200).contains(&intensity) && (20..=200).contains(&duration_ms)
            }
            ChaosEvent::CommandBurst { rate, duration_ms } => {
                (500..=20_000).contains(&rate) && (50..=500).contains(&duration_ms)
            }
            ChaosEvent::DeadlinePressure { tight_per_mille, duration_ms } => {
                (500..=900).contains(&tight_per_mille) && (20..=200).contains(&duration_ms)
            }
            ChaosEvent::HotRetrain { decisions } => (10..=100).contains(&decisions),
            ChaosEvent::MemorySpike { mib } => (1..=10).contains(&mib),
            ChaosEvent::AutonomyFlip { duration_ms } => (20..=200).contains(&duration_ms),
            ChaosEvent::MemoryRelease { percent } => (10..=50).contains(&percent),
            ChaosEvent::NetworkPartition { duration_ms } | ChaosEvent::DiskStall { duration_ms } => {
                (50..=500).contains(&duration_ms)
            }
        };
        assert!(in_range, "{planned:?}");
        // The fail rate changes only the fault, never the event.
        assert_eq!(plan_event(5, index, 0, &EventKind::ALL).unwrap().event, planned.event);
        assert!(!plan_event(5, index, 0, &EventKind::ALL).unwrap().fault);
        assert!(plan_event(5, index, 100, &EventKind::ALL).unwrap().fault);
        kinds.push(planned.event.kind());
    }
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, EventKind::ALL.to_vec());
    let only_memory = [EventKind::MemorySpike];
    assert_eq!(plan_event(5, 3, 0, &only_memory).unwrap().event.kind(), EventKind::MemorySpike);
    assert_eq!(plan_event(5, 3, 0, &[]), None);
}

#[test]
fn the_same_seed_replays_the_same_run_and_another_seed_does_not() {
    let first = run(&mut Sim::new(), &config(30_000, 7, 20));
    let again = run(&mut Sim::new(), &config(30_000, 7, 20));
    let other = run(&mut Sim::new(), &config(30_000, 8, 20));
    let json = |report: &ChaosReport| serde_json::to_string(report).unwrap();
    assert_eq!(json(&first), json(&again));
    let sequence = |report: &ChaosReport| report.events.iter().map(|event| event.planned.event).collect::<Vec<_>>();
    assert_ne!(sequence(&first), sequence(&other));
    assert!(first.unique_events > 50, "{} unique events in 30 s", first.unique_events);
}

#[test]
fn recovery_time_is_measured_from_the_end_of_the_disturbance() {
    let report = run(&mut Sim::new(), &config(3_000, 11, 0));
    assert_eq!(report.failed, 0);
    assert_eq!(report.status, Status::Pass);
    for event in &report.events {
        let expected = Sim::delay_ns(event.planned.index);
        let recovery = event.recovery_ns.unwrap();
        // Readings cost 1 µs each and checks are read every 2 ms.
        assert!(recovery >= expected && recovery <= expected + 2 * MS + 10_000, "{event:?}");
        let disturbance = event.planned.event.disturbance_ns();
        assert!(event.disturbance_ns >= disturbance && event.disturbance_ns <= disturbance + 10_000, "{event:?}");
    }
    assert_eq!(report.recovery.count, report.total_events);
    assert_eq!(report.success_rate_per_mille, 1000);
}

#[test]
fn observed_failures_track_the_fail_rate_when_faults_are_visible() {
    for fail_rate in [0u64, 10, 30, 50] {
        let report = run(&mut Sim::new(), &config(120_000, 3, fail_rate));
        assert_eq!(report.failures_with_fault, report.injected_faults, "every visible fault fails its event");
        assert_eq!(report.failures_without_fault, 0);
        let observed = report.failed * 100 / report.total_events;
        assert!(
            observed.abs_diff(fail_rate) <= 6,
            "fail rate {fail_rate}: observed {observed} % of {}",
            report.total_events
        );
        let expected = Status::from_counts(report.failed, report.total_events, true);
        assert_eq!(report.status, expected);
        for event in report.events.iter().filter(|event| event.planned.fault) {
            assert_eq!(event.failure, Some(Failure::Timeout { checks: alloc::vec!["shell"] }));
            assert_eq!(event.fault_injected, Some(event.planned.event.kind().fault()));
        }
    }
}

#[test]
fn a_fault_no_check_sees_is_not_a_failure() {
    let mut sim = Sim::new();
    sim.faults_visible = false;
    let report = run(&mut sim, &config(20_000, 3, 50));
    assert!(report.injected_faults > 10);
    assert_eq!(report.failed, 0);
}

#[test]
fn oom_inconsistency_and_overstay_are_failures_with_their_reason() {
    let mut sim = Sim::new();
    sim.unrecovered_oom = alloc::vec![2];
    sim.inconsistent = alloc::vec![4];
    sim.overstays = alloc::vec![6];
    let report = run(&mut sim, &config(3_000, 9, 0));
    let failure = |index: usize| report.events[index - 1].failure.clone();
    assert_eq!(failure(2), Some(Failure::OomNotRecovered { count: 1 }));
    assert_eq!(report.events[1].figures, EventFigures { oom_events: 3, oom_unrecovered: 1, ..EventFigures::default() });
    assert!(matches!(failure(4), Some(Failure::Inconsistent { .. })));
    assert_eq!(failure(6), Some(Failure::Timeout { checks: alloc::vec!["disturbance"] }));
    assert_eq!(report.failed, 3);
    assert!(report.events.iter().all(|event| event.failure.is_none() == event.recovery_ns.is_some()));
    let groups: Vec<(&str, Vec<u32>)> =
        report.failures_by_type.iter().map(|group| (group.failure, group.events.clone())).collect();
    assert!(groups.contains(&("oom_not_recovered", alloc::vec![2])));
    assert!(groups.contains(&("inconsistent_state", alloc::vec![4])));
    assert!(groups.contains(&("timeout", alloc::vec![6])));
    // The target heard of every event, in order, with its outcome.
    let heard: Vec<(u32, bool)> =
        report.events.iter().map(|event| (event.planned.index, event.failure.is_none())).collect();
    assert_eq!(sim.ended, heard);
    assert_eq!(sim.ended.iter().filter(|(_, recovered)| !recovered).count(), 3);
}

#[test]
fn a_lost_steady_state_stops_the_run_and_is_critical_and_so_is_a_leak() {
    let mut sim = Sim::new();
    sim.broken_from = Some(3);
    let report = run(&mut sim, &config(10_000, 4, 0));
    assert_eq!(report.total_events, 3);
    assert_eq!(report.steady_state_lost_after, Some(3));
    assert_eq!(report.status, Status::Critical);

    let mut leaking = Sim::new();
    leaking.leak = true;
    let report = run(&mut leaking, &config(1_000, 4, 0));
    assert_eq!(report.failed, 0);
    assert_eq!(report.status, Status::Critical);
    assert!(human(&report).contains("Integrity: FAILED"));
}

#[test]
fn only_replays_one_event_with_its_parameters_and_fault() {
    let full = run(&mut Sim::new(), &config(5_000, 21, 40));
    let chosen = &full.events[6];
    let mut sim = Sim::new();
    let replay = run(&mut sim, &config(5_000, 21, 40).with_only(Some(7)));
    assert_eq!(replay.total_events, 1);
    assert_eq!(sim.begun, alloc::vec![chosen.planned]);
    assert_eq!(replay.events[0].failure, chosen.failure);
    assert!(chosen.line(21).ends_with("| replay: --replay 21 --only 7"), "{}", chosen.line(21));
}

#[test]
fn the_report_for_people_lists_failures_by_type_with_event_numbers() {
    let report = run(&mut Sim::new(), &config(10_000, 5, 30));
    let text = human(&report);
    assert!(text.contains(&format!("Total events: {} ({} unique)", report.total_events, report.unique_events)));
    let group = &report.failures_by_type[0];
    let numbers: Vec<String> = group.events.iter().take(8).map(|index| format!("#{index}")).collect();
    assert!(text.contains(&numbers.join(", ")), "{text}");
    assert_eq!(report.failures_by_type.iter().map(|group| group.count).sum::<u64>(), report.failed);
}

impl ChaosConfig {
    fn with_only(mut self, only: Option<u32>) -> Self {
        self.only = only;
        self
    }
}

/// `stresstest compare chaos` reads a run as the sums of its events' figures and its recovery summary.
#[test]
fn a_chaos_run_gives_the_comparison_its_figures() {
    let mut sim = Sim::new();
    sim.unrecovered_oom = alloc::vec![2, 5];
    let report = run(&mut sim, &config(3_000, 9, 0));
    let values = crate::compare::chaos_values(&report);
    let figures = crate::compare::figures(crate::compare::CompareTarget::Chaos);
    assert_eq!(values.len(), figures.len());
    let value = |key: &str| values[figures.iter().position(|figure| figure.key == key).unwrap()];
    assert_eq!((value("oom_events"), value("oom_not_recovered")), (6, 2));
    assert_eq!((value("failed_events"), value("recovered_events")), (2, report.total_events - 2));
    assert_eq!(value("recovery_p95_ns"), report.recovery.p95_ns);
    assert!(value("recovery_max_ns") >= value("recovery_p50_ns") && value("recovery_p50_ns") > 0);
    assert_eq!((value("throttled_requests"), value("directed_reclaims")), (0, 0));
}
