//! Meta-agent tests: never-act equals off, counting matches traces, threshold, refusals, outcomes, audit.

use super::*;
use crate::{AutonomySnapshot, Heuristic, MemoryStrategy, NeverAct, PressureTrend, StrategyConfig, TREND_CAPACITY};
use sis_safety::{Effector, Guardrails, LiveState, RuleId};

const STEP_NS: u64 = 10_000_000;

fn calm(now_ns: u64) -> Telemetry {
    crate::meta::tests::calm_at(now_ns)
}

fn controller() -> StrategyController {
    StrategyController::new(StrategyConfig::default(), MemoryStrategy::Balanced).unwrap()
}

/// A toy memory workload: seeded allocations and frees in per mille of memory, an OOM (and a kill that
/// frees down to 600 ‰) when use passes 1000 ‰. Autonomy can only act through `throttle_per_mille`,
/// `reclaim()` and the strategy; the random stream never depends on them.
struct Workload {
    state: u64,
    used_per_mille: u32,
    throttle_per_mille: u32,
    oom_events: u32,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload { state: seed, used_per_mille: 300, throttle_per_mille: 0, oom_events: 0 }
    }

    fn next(&mut self) -> u32 {
        // 64-bit LCG (Knuth's MMIX constants); the high bits are the output.
        self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.state >> 33) as u32
    }

    /// One step; returns whether it ran out of memory.
    fn step(&mut self, strategy: MemoryStrategy) -> bool {
        let allocated = self.next() % 40 * (1000 - self.throttle_per_mille) / 1000;
        let mut freed = self.next() % 30;
        if strategy == MemoryStrategy::Conservative {
            freed += 5;
        }
        self.used_per_mille = (self.used_per_mille + allocated).saturating_sub(freed);
        if self.used_per_mille > 1000 {
            self.oom_events += 1;
            self.used_per_mille = 600;
            return true;
        }
        false
    }

    fn reclaim(&mut self) {
        self.used_per_mille = self.used_per_mille.saturating_sub(120);
    }
}

struct RunResult {
    pressures: Vec<u32>,
    oom_events: u32,
}

/// Runs the workload for `steps` steps, with no meta-agent (`agent` None: autonomy off) or with one.
fn run<P: Policy>(
    seed: u64,
    steps: u64,
    agent: Option<&mut MetaAgent<P, 1024, 64>>,
    metrics: &AutonomyMetrics,
) -> RunResult {
    run_guarded(seed, steps, agent, &mut Guardrails::new(), metrics)
}

/// [`run`] with the meta-agent acting within `guardrails` (the live state: the workload's throttle in force).
fn run_guarded<P: Policy>(
    seed: u64,
    steps: u64,
    mut agent: Option<&mut MetaAgent<P, 1024, 64>>,
    guardrails: &mut Guardrails,
    metrics: &AutonomyMetrics,
) -> RunResult {
    let mut workload = Workload::new(seed);
    let mut strategy = controller();
    let mut trend = PressureTrend::new();
    let mut pressures = Vec::new();
    let mut oom_since_decision = 0;
    for step in 0..steps {
        let now_ns = step * STEP_NS;
        let oom = workload.step(strategy.current());
        pressures.push(workload.used_per_mille);
        oom_since_decision += oom as u32;
        let Some(agent) = agent.as_deref_mut() else { continue };
        if oom {
            agent.resolve(now_ns, Some(ObservedFailure::Oom), metrics);
        }
        let pressure_per_mille = workload.used_per_mille.min(1000) as u16;
        agent.resolve(now_ns, Some(ObservedFailure::Pressure { per_mille: pressure_per_mille }), metrics);
        trend.push(now_ns, pressure_per_mille).unwrap();
        let telemetry = Telemetry {
            pressure_per_mille,
            trend: trend.estimate(agent.config().horizon_ns),
            cache_per_mille: 0,
            demand_per_mille: 0,
            oom_events: oom_since_decision,
            ..calm(now_ns)
        };
        oom_since_decision = 0;
        let live = LiveState {
            throttle_per_mille: workload.throttle_per_mille.into(),
            pressure_cap_per_mille: strategy.current().pressure_cap_per_mille().map_or(1000, u64::from),
            ..LiveState::default()
        };
        let traces = agent.step(telemetry, &live, guardrails, &mut strategy, metrics);
        workload.throttle_per_mille = 0;
        for trace in traces.iter().filter(|trace| trace.disposition == Disposition::Acted) {
            match trace.directive {
                Directive::ThrottleAllocations { per_mille } => workload.throttle_per_mille = per_mille as u32,
                Directive::ProactiveReclaim => workload.reclaim(),
                _ => {}
            }
        }
    }
    RunResult { pressures, oom_events: workload.oom_events }
}

#[test]
fn never_act_gives_results_identical_to_autonomy_off() {
    for seed in [1, 7, 42] {
        let metrics = AutonomyMetrics::new();
        let off = run::<NeverAct>(seed, 2_000, None, &metrics);
        assert_eq!(metrics.snapshot().total_interventions, 0);
        let mut agent: MetaAgent<NeverAct, 1024, 64> = MetaAgent::new(NeverAct, MetaConfig::default()).unwrap();
        let on = run(seed, 2_000, Some(&mut agent), &metrics);
        assert_eq!(on.pressures, off.pressures, "seed {seed}");
        assert_eq!(on.oom_events, off.oom_events, "seed {seed}");
        assert!(off.oom_events > 0, "seed {seed}: the workload must run out of memory for this test to mean anything");
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.total_interventions, 0);
        assert_eq!(snapshot.interventions_pending, 0);
        assert_eq!(agent.decisions(), 2_000);
        assert!(agent
            .audit(1024)
            .all(|trace| trace.disposition == Disposition::NoAction && trace.policy == "never-act"));
    }
}

#[test]
fn heuristic_interventions_are_all_counted_and_traced() {
    for seed in [1, 7, 42] {
        let metrics = AutonomyMetrics::new();
        let off = run::<Heuristic>(seed, 1_000, None, &metrics);
        let mut agent: MetaAgent<Heuristic, 1024, 64> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
        let on = run(seed, 1_000, Some(&mut agent), &metrics);
        let snapshot = metrics.snapshot();
        let acted: Vec<&DecisionTrace> =
            agent.audit(1024).filter(|trace| trace.disposition == Disposition::Acted).collect();
        assert!(!acted.is_empty(), "seed {seed}");
        assert_ne!(on.pressures, off.pressures, "seed {seed}");
        // In this toy workload reclaiming early is cheap, so the heuristic must cut OOMs; the kernel's
        // compare mode measures whether it does on the real allocator.
        assert!(on.oom_events < off.oom_events, "seed {seed}: {} on, {} off", on.oom_events, off.oom_events);
        assert_eq!(snapshot.total_interventions, acted.len() as u64, "seed {seed}");
        let count = |kind| acted.iter().filter(|trace| intervention_kind(trace.directive) == Some(kind)).count() as u64;
        assert_eq!(snapshot.allocation_throttles, count(InterventionKind::AllocationThrottle));
        assert_eq!(snapshot.proactive_compactions, count(InterventionKind::ProactiveCompaction));
        assert_eq!(snapshot.strategy_switches, count(InterventionKind::StrategySwitch));
        // Every acted decision with a prediction is pending, resolved, or was untracked.
        let predicted = acted.iter().filter(|trace| trace.prediction.is_some()).count() as u64;
        assert_eq!(
            snapshot.interventions_succeeded
                + snapshot.interventions_failed
                + snapshot.interventions_pending
                + snapshot.interventions_untracked,
            predicted
        );
        let resolved = acted.iter().filter(|trace| trace.reward_per_mille.is_some()).count() as u64;
        assert_eq!(resolved, snapshot.interventions_succeeded + snapshot.interventions_failed);
        assert_eq!(
            snapshot.pressure_predictions,
            agent.audit(1024).filter(|trace| trace.inputs.trend.is_some()).count() as u64
        );
    }
}

/// A policy that always returns the same decision and learns from every feedback.
struct Fixed(Decision);

impl Policy for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn decide(&mut self, _telemetry: &Telemetry, _config: &MetaConfig) -> Decision {
        self.0
    }

    fn feedback(&mut self, _trace: &DecisionTrace) -> bool {
        true
    }
}

fn reclaim(confidence_per_mille: u16, selection: Selection) -> Decision {
    Decision {
        directive: Directive::ProactiveReclaim,
        confidence_per_mille,
        reason: Reason::Learned { action: 3 },
        selection,
        prediction: Some(Prediction::Oom),
        scoring: Scoring::NONE,
    }
}

#[test]
fn below_threshold_is_held_and_not_counted() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(reclaim(599, Selection::Exploitation)), MetaConfig::default()).unwrap();
    let trace = agent.step(calm(0), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory;
    assert_eq!(
        (trace.disposition, trace.outcome, trace.threshold_per_mille),
        (Disposition::Held, TraceOutcome::NotApplicable, 600)
    );
    // Held is counted, and nothing else is.
    assert_eq!(metrics.snapshot(), AutonomySnapshot { decisions_held: 1, ..AutonomyMetrics::new().snapshot() });
    agent.set_confidence_threshold(599).unwrap();
    let trace =
        agent.step(calm(STEP_NS), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory;
    assert_eq!((trace.disposition, trace.outcome), (Disposition::Acted, TraceOutcome::Pending));
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.proactive_compactions, snapshot.total_interventions), (1, 1));
    assert_eq!(
        (snapshot.exploitation_actions, snapshot.exploration_actions, snapshot.interventions_pending),
        (1, 0, 1)
    );
    assert_eq!(
        agent.set_confidence_threshold(1001),
        Err(MetaConfigError::AboveOneThousand { field: "confidence_threshold_per_mille", value: 1001 })
    );
    assert_eq!(agent.config().confidence_threshold_per_mille, 599);
}

#[test]
fn confidence_above_1000_is_clamped() {
    let metrics = AutonomyMetrics::new();
    let mut agent: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(reclaim(5000, Selection::Exploration)), MetaConfig::default()).unwrap();
    let trace = agent.step(calm(0), &LiveState::default(), &mut Guardrails::new(), &mut controller(), &metrics).memory;
    assert_eq!(trace.confidence_per_mille, 1000);
    assert_eq!(metrics.snapshot().exploration_actions, 1);
}

#[test]
fn outcome_and_reward_reach_the_trace_and_the_policy() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(reclaim(900, Selection::Rule)), MetaConfig::default()).unwrap();
    let horizon_ns = agent.config().horizon_ns;
    agent.step(calm(0), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics);
    agent.step(calm(STEP_NS), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics);
    // An OOM inside the second decision's horizon (and the first's): both fail.
    assert_eq!(
        agent.resolve(2 * STEP_NS, Some(ObservedFailure::Oom), &metrics),
        ResolveCounts { succeeded: 0, failed: 2 }
    );
    assert_eq!(agent.settled_until(), 2);
    agent.step(calm(3 * STEP_NS), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics);
    assert_eq!(agent.resolve(3 * STEP_NS + horizon_ns, None, &metrics), ResolveCounts::default());
    assert_eq!(agent.settled_until(), 2, "decision 2 waits for its horizon");
    assert_eq!(agent.resolve(3 * STEP_NS + horizon_ns + 1, None, &metrics), ResolveCounts { succeeded: 1, failed: 0 });
    assert_eq!(agent.settled_until(), 3);
    let outcomes: Vec<_> = agent.audit(3).map(|trace| (trace.id, trace.outcome, trace.reward_per_mille)).collect();
    assert_eq!(
        outcomes,
        vec![
            (0, TraceOutcome::Failed, Some(REWARD_FAILURE_PER_MILLE)),
            (1, TraceOutcome::Failed, Some(REWARD_FAILURE_PER_MILLE)),
            (2, TraceOutcome::Succeeded, Some(REWARD_SUCCESS_PER_MILLE)),
        ]
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.policy_updates, snapshot.oom_preventions), (3, 1));
    assert_eq!(snapshot.success_rate_per_mille, Some(333));
}

#[test]
fn full_pending_table_marks_traces_untracked() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Fixed, 8, 1> =
        MetaAgent::new(Fixed(reclaim(900, Selection::Rule)), MetaConfig::default()).unwrap();
    assert_eq!(
        agent.step(calm(0), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory.outcome,
        TraceOutcome::Pending
    );
    assert_eq!(
        agent.step(calm(1), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory.outcome,
        TraceOutcome::Untracked
    );
    let snapshot = metrics.snapshot();
    assert_eq!(
        (snapshot.total_interventions, snapshot.interventions_pending, snapshot.interventions_untracked),
        (2, 1, 1)
    );
    // Trace 0 is still pending: an exporter stops before it, though trace 1 is final.
    assert_eq!(agent.settled_until(), 0);
    assert_eq!(agent.clear_pending(&metrics), 1);
    assert_eq!(agent.pending_interventions(), 0);
    assert_eq!(agent.explain(0).unwrap().outcome, TraceOutcome::Dropped);
    assert_eq!(agent.explain(0).unwrap().reward_per_mille, None);
    assert_eq!(agent.settled_until(), 2);
}

#[test]
fn refused_strategy_switch_is_recorded_and_not_counted() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let switch = |to| Decision {
        directive: Directive::SwitchStrategy { strategy: to },
        confidence_per_mille: 1000,
        reason: Reason::Learned { action: 0 },
        selection: Selection::Rule,
        prediction: None,
        scoring: Scoring::NONE,
    };
    let mut agent: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(switch(MemoryStrategy::Conservative)), MetaConfig::default()).unwrap();
    let trace = agent.step(calm(0), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory;
    assert_eq!((trace.disposition, trace.outcome), (Disposition::Acted, TraceOutcome::NotTracked));
    assert_eq!(strategy.current(), MemoryStrategy::Conservative);
    // The same request again changes nothing.
    assert_eq!(
        agent
            .step(calm(STEP_NS), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics)
            .memory
            .disposition,
        Disposition::NoAction
    );
    agent.policy_mut().0 = switch(MemoryStrategy::Aggressive);
    let trace =
        agent.step(calm(2 * STEP_NS), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory;
    assert_eq!(trace.disposition, Disposition::RefusedByCooldown);
    assert_eq!(trace.inputs.strategy, MemoryStrategy::Conservative);
    assert_eq!((metrics.snapshot().strategy_switches, metrics.snapshot().total_interventions), (1, 1));
}

#[test]
fn audit_and_explain_over_a_small_ring() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Heuristic, 8, 4> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    for step in 0..6 {
        agent.step(
            Telemetry { command_queue_depth: step as u32 * 32, ..calm(step * STEP_NS) },
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut strategy,
            &metrics,
        );
    }
    // Intervals 0 and 1 (depth 0 and 32) make a memory decision only; 2 to 5 (depth 64 to 160) a memory and a
    // scheduling one each: 10 traces, ids 0 to 9.
    assert_eq!((agent.intervals(), agent.decisions()), (6, 10));
    assert_eq!(agent.audit(3).map(|trace| trace.id).collect::<Vec<_>>(), vec![7, 8, 9]);
    assert_eq!(agent.audit(20).count(), 8);
    assert_eq!(agent.explain(1), Err(ExplainError::Evicted { id: 1, oldest_kept: 2 }));
    assert_eq!(agent.oldest_trace_id(), 2);
    assert_eq!(agent.explain(10), Err(ExplainError::NotIssued { id: 10, next_id: 10 }));
    // Interval 3, depth 96 against a limit of 64: confidence 1000 * 96 / 160 = 600, exactly the threshold.
    let memory = agent.explain(4).unwrap();
    assert_eq!((memory.interval, memory.subsystem, memory.disposition), (3, Subsystem::Memory, Disposition::NoAction));
    let trace = agent.explain(5).unwrap();
    assert_eq!((trace.interval, trace.subsystem), (3, Subsystem::Scheduling));
    assert_eq!(trace.reason, Reason::QueueDeep { depth: 96, limit: 64 });
    assert_eq!((trace.confidence_per_mille, trace.disposition), (600, Disposition::Acted));
    // Interval 2, depth 64: confidence 500, held.
    assert_eq!(agent.explain(3).unwrap().disposition, Disposition::Held);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.output_rate_limits, snapshot.decisions_held), (3, 1));
}

#[test]
fn one_interval_directs_memory_and_scheduling_and_both_are_counted() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Heuristic> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    // An OOM event and a command that waited 15 ms, in the same interval.
    let telemetry = Telemetry { oom_events: 1, command_latency_max_ns: 15_000_000, ..calm(0) };
    let traces = agent.step(telemetry, &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics);
    let scheduling = traces.scheduling.expect("a scheduling decision");
    assert_eq!(
        (traces.memory.interval, traces.memory.subsystem, traces.memory.directive, traces.memory.disposition),
        (
            0,
            Subsystem::Memory,
            Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative },
            Disposition::Acted
        )
    );
    // 5 ms over the 10 ms limit: confidence 600 + 400 * 5 / 10 = 800.
    assert_eq!(
        (scheduling.interval, scheduling.subsystem, scheduling.directive, scheduling.disposition),
        (0, Subsystem::Scheduling, Directive::BoostPriority, Disposition::Acted)
    );
    assert_eq!((scheduling.id, scheduling.confidence_per_mille), (1, 800));
    assert_eq!(strategy.current(), MemoryStrategy::Conservative);
    let snapshot = metrics.snapshot();
    assert_eq!(
        (
            snapshot.strategy_switches,
            snapshot.priority_boosts,
            snapshot.total_interventions,
            snapshot.interventions_pending
        ),
        (1, 1, 2, 2)
    );
    // A policy that governs memory only never makes a scheduling decision.
    let mut memory_only: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(reclaim(900, Selection::Rule)), MetaConfig::default()).unwrap();
    assert_eq!(
        memory_only
            .step(telemetry, &LiveState::default(), &mut Guardrails::new(), &mut controller(), &metrics)
            .scheduling,
        None
    );
}

#[test]
fn trace_serializes_for_json() {
    let metrics = AutonomyMetrics::new();
    let mut agent: MetaAgent<Heuristic> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    let mut strategy = controller();
    let trace = agent
        .step(
            Telemetry { oom_events: 1, ..calm(5) },
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut strategy,
            &metrics,
        )
        .memory;
    assert_eq!(trace.directive, Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative });
    // Conservative now in force: the next OOM throttles.
    let trace = agent
        .step(
            Telemetry { oom_events: 1, ..calm(6) },
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut strategy,
            &metrics,
        )
        .memory;
    let json = serde_json::to_value(trace).unwrap();
    assert_eq!(json["id"], 1);
    assert_eq!(json["interval"], 1);
    assert_eq!(json["subsystem"], "memory");
    assert_eq!(json["policy"], "heuristic");
    assert_eq!(json["directive"], serde_json::json!({ "directive": "throttle_allocations", "per_mille": 500 }));
    assert_eq!(json["reason"], serde_json::json!({ "reason": "oom_observed", "events": 1 }));
    assert_eq!(json["prediction"], serde_json::json!({ "kind": "oom" }));
    assert_eq!(json["disposition"], "acted");
    assert_eq!(json["outcome"], "pending");
    assert_eq!(json["inputs"]["strategy"], "conservative");
    assert!(json["reward_per_mille"].is_null());
    assert_eq!(TREND_CAPACITY, 16);
}

#[test]
fn pressure_thresholds_are_set_together_and_a_refused_set_changes_nothing() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut agent: MetaAgent<Heuristic> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    let at_750 = Telemetry { pressure_per_mille: 750, ..calm(0) };
    assert_eq!(
        agent.step(at_750, &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory.directive,
        Directive::None
    );
    assert_eq!(agent.set_pressure_thresholds(700, 650, 900), Err(MetaConfigError::ThresholdsOutOfOrder));
    assert_eq!(
        agent.set_pressure_thresholds(600, 800, 1001),
        Err(MetaConfigError::AboveOneThousand { field: "throttle_at_per_mille", value: 1001 })
    );
    assert_eq!(*agent.config(), MetaConfig::default());
    agent.set_pressure_thresholds(500, 600, 700).unwrap();
    // 750 is now 50 above the throttle threshold of 700: confidence 600 + 400 * 50 / 300 = 666.
    let trace = agent
        .step(
            Telemetry { now_ns: STEP_NS, ..at_750 },
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut strategy,
            &metrics,
        )
        .memory;
    assert_eq!(trace.reason, Reason::PressureHigh { pressure_per_mille: 750, threshold_per_mille: 700 });
    assert_eq!((trace.confidence_per_mille, trace.disposition), (666, Disposition::Acted));
}

#[test]
fn default_guardrails_block_nothing_the_heuristic_does_and_see_every_action_it_takes() {
    for seed in [1, 7, 42] {
        let metrics = AutonomyMetrics::new();
        let mut agent: MetaAgent<Heuristic, 1024, 64> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
        let mut guardrails = Guardrails::new();
        let unguarded_metrics = AutonomyMetrics::new();
        let mut unguarded: MetaAgent<Heuristic, 1024, 64> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
        let guarded = run_guarded(seed, 1_000, Some(&mut agent), &mut guardrails, &metrics);
        let fresh = run(seed, 1_000, Some(&mut unguarded), &unguarded_metrics);
        assert_eq!((guarded.pressures, guarded.oom_events), (fresh.pressures, fresh.oom_events), "seed {seed}");
        assert_eq!(metrics.snapshot(), unguarded_metrics.snapshot());
        let totals = guardrails.totals();
        assert_eq!(totals.blocked, 0, "seed {seed}");
        // Every confident decision with an action was checked; the acted ones were committed.
        let traces: Vec<&DecisionTrace> = agent.audit(1024).collect();
        let acted = traces.iter().filter(|trace| trace.disposition == Disposition::Acted).count() as u64;
        let refused = traces
            .iter()
            .filter(|trace| matches!(trace.disposition, Disposition::RefusedByCooldown | Disposition::RefusedByFreeze))
            .count() as u64;
        assert!(acted > 0);
        assert_eq!((totals.checked, totals.committed), (acted + refused, acted), "seed {seed}");
        assert!(traces.iter().all(|trace| trace.blocked_by.is_none()));
    }
}

/// A policy that throttles by a different share at every decision: 0, 137, 274, ... (mod 1001) per mille.
struct Sweep(u16);

impl Policy for Sweep {
    fn name(&self) -> &'static str {
        "sweep"
    }

    fn decide(&mut self, _telemetry: &Telemetry, _config: &MetaConfig) -> Decision {
        self.0 = ((self.0 as u32 + 137) % 1001) as u16;
        Decision {
            directive: Directive::ThrottleAllocations { per_mille: self.0 },
            confidence_per_mille: 1000,
            reason: Reason::Learned { action: 2 },
            selection: Selection::Exploration,
            prediction: None,
            scoring: Scoring::NONE,
        }
    }
}

#[test]
fn a_tighter_throttle_bound_blocks_the_throttles_above_it_and_nothing_above_it_is_carried_out() {
    let metrics = AutonomyMetrics::new();
    let mut agent: MetaAgent<Sweep, 1024, 64> = MetaAgent::new(Sweep(0), MetaConfig::default()).unwrap();
    let mut guardrails = Guardrails::new();
    guardrails.set("throttle.max_per_mille", 300).unwrap();
    run_guarded(1, 1_000, Some(&mut agent), &mut guardrails, &metrics);
    let traces: Vec<&DecisionTrace> = agent.audit(1024).collect();
    let throttles = |disposition| {
        traces
            .iter()
            .filter(|trace| trace.disposition == disposition)
            .filter_map(|trace| match trace.directive {
                Directive::ThrottleAllocations { per_mille } => Some(per_mille),
                _ => None,
            })
            .collect::<Vec<u16>>()
    };
    let (acted, blocked) = (throttles(Disposition::Acted), throttles(Disposition::Blocked));
    // 1000 decisions over the 1001 shares: every share but 0 once (137 is prime to 1001).
    assert_eq!((acted.len(), blocked.len()), (300, 700));
    assert!(acted.iter().all(|&per_mille| per_mille <= 300), "{acted:?}");
    assert!(blocked.iter().all(|&per_mille| per_mille > 300), "{blocked:?}");
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.decisions_blocked, blocked.len() as u64);
    assert_eq!(snapshot.allocation_throttles, acted.len() as u64);
    for trace in traces.iter().filter(|trace| trace.disposition == Disposition::Blocked) {
        assert_eq!(trace.blocked_by, Some(RuleId::ThrottleMaxPerMille));
        assert_eq!((trace.outcome, trace.reward_per_mille), (TraceOutcome::NotApplicable, None));
    }
    let counters = guardrails.effector_counters(Effector::AllocationThrottle);
    assert_eq!((counters.blocked, counters.committed), (blocked.len() as u64, acted.len() as u64));
    assert_eq!(guardrails.rule_counters(RuleId::ThrottleMaxPerMille).blocked, blocked.len() as u64);
}

#[test]
fn a_blocked_decision_is_traced_counted_and_not_committed() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut guardrails = Guardrails::new();
    guardrails.set("reclaim.max_per_window", 1).unwrap();
    let mut agent: MetaAgent<Fixed> =
        MetaAgent::new(Fixed(reclaim(900, Selection::Rule)), MetaConfig::default()).unwrap();
    let live = LiveState::default();
    let first = agent.step(calm(0), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!((first.disposition, first.blocked_by), (Disposition::Acted, None));
    let second = agent.step(calm(STEP_NS), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!((second.disposition, second.blocked_by), (Disposition::Blocked, Some(RuleId::ReclaimMaxPerWindow)));
    assert_eq!((second.outcome, second.reward_per_mille), (TraceOutcome::NotApplicable, None));
    let json = serde_json::to_value(second).unwrap();
    assert_eq!(
        (json["disposition"].as_str(), json["blocked_by"].as_str()),
        (Some("blocked"), Some("reclaim.max_per_window"))
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.proactive_compactions, snapshot.total_interventions, snapshot.decisions_blocked), (1, 1, 1));
    assert_eq!((snapshot.interventions_pending, agent.pending_interventions()), (1, 1));
    // A second later the window has room again.
    let third = agent.step(calm(1_000_000_000), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!(third.disposition, Disposition::Acted);
    let counters = guardrails.effector_counters(Effector::MemoryReclaim);
    assert_eq!((counters.checked, counters.allowed, counters.blocked, counters.committed), (3, 2, 1, 2));
    // A held decision never reaches the guardrails.
    agent.policy_mut().0 = reclaim(100, Selection::Rule);
    agent.step(calm(2_000_000_000), &live, &mut guardrails, &mut strategy, &metrics);
    assert_eq!(guardrails.totals().checked, 3);
}

#[test]
fn a_strategy_switch_is_checked_before_the_controller_and_a_refused_one_is_not_committed() {
    let metrics = AutonomyMetrics::new();
    let mut strategy = controller();
    let mut guardrails = Guardrails::new();
    let mut agent: MetaAgent<Heuristic> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    let oom = |now_ns| Telemetry { oom_events: 1, ..calm(now_ns) };
    // Balanced (850) to Conservative (700) is a 150 per mille step.
    guardrails.set("pressure_cap.max_step_per_mille", 149).unwrap();
    let live = LiveState { pressure_cap_per_mille: 850, ..LiveState::default() };
    let trace = agent.step(oom(0), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!(trace.directive, Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative });
    assert_eq!((trace.disposition, trace.blocked_by), (Disposition::Blocked, Some(RuleId::PressureCapMaxStepPerMille)));
    assert_eq!((strategy.current(), strategy.stats().switches), (MemoryStrategy::Balanced, 0));
    guardrails.set("pressure_cap.max_step_per_mille", 150).unwrap();
    let trace = agent.step(oom(STEP_NS), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!((trace.disposition, strategy.current()), (Disposition::Acted, MemoryStrategy::Conservative));
    // Back to Balanced within the 50 ms cooldown: allowed by the guardrails, refused by the controller, and so
    // not committed.
    let mut back: MetaAgent<Fixed> = MetaAgent::new(
        Fixed(Decision {
            directive: Directive::SwitchStrategy { strategy: MemoryStrategy::Balanced },
            confidence_per_mille: 1000,
            reason: Reason::Learned { action: 0 },
            selection: Selection::Rule,
            prediction: None,
            scoring: Scoring::NONE,
        }),
        MetaConfig::default(),
    )
    .unwrap();
    let live = LiveState { pressure_cap_per_mille: 700, ..LiveState::default() };
    let trace = back.step(calm(2 * STEP_NS), &live, &mut guardrails, &mut strategy, &metrics).memory;
    assert_eq!(trace.disposition, Disposition::RefusedByCooldown);
    let counters = guardrails.effector_counters(Effector::PressureCap);
    assert_eq!((counters.checked, counters.allowed, counters.blocked, counters.committed), (3, 2, 1, 1));
    assert_eq!(metrics.snapshot().decisions_blocked, 1);
}

#[test]
fn a_relaxation_beyond_the_deadline_bound_is_blocked_by_the_invariant() {
    let metrics = AutonomyMetrics::new();
    let mut guardrails = Guardrails::new();
    let mut agent: MetaAgent<Heuristic> = MetaAgent::new(Heuristic, MetaConfig::default()).unwrap();
    let missed = |now_ns| Telemetry { deadline_misses: 1, deadline_jobs: 1, ..calm(now_ns) };
    let thread = |deadline_ns| LiveState {
        deadline: Some(sis_safety::DeadlineState { deadline_ns, period_ns: 10_000_000, bound_ns: 20_000_000 }),
        ..LiveState::default()
    };
    // 15.625 ms relaxed by 250 per mille is 19.53 ms: within two periods; 19.53 ms becomes 24.4 ms: beyond.
    let within = agent.step(missed(0), &thread(15_625_000), &mut guardrails, &mut controller(), &metrics);
    let within = within.scheduling.unwrap();
    assert_eq!(
        (within.directive, within.disposition),
        (Directive::AdjustDeadline { relax_per_mille: 250 }, Disposition::Acted)
    );
    let beyond = agent.step(missed(STEP_NS), &thread(19_531_250), &mut guardrails, &mut controller(), &metrics);
    let beyond = beyond.scheduling.unwrap();
    assert_eq!(
        (beyond.disposition, beyond.blocked_by),
        (Disposition::Blocked, Some(RuleId::DeadlineMaxPerMilleOfPeriod))
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.deadline_adjustments, snapshot.decisions_blocked), (1, 1));
}
