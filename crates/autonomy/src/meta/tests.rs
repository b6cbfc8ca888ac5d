//! Heuristic rule tests: each rule's directive, confidence, reason and prediction, and rule order.

use super::*;
use crate::TREND_CAPACITY;

fn calm() -> Telemetry {
    calm_at(0)
}

/// Nothing happening at `now_ns`: half-full memory, Balanced (shared with the agent's tests).
pub(crate) fn calm_at(now_ns: u64) -> Telemetry {
    Telemetry { now_ns, pressure_per_mille: 500, strategy: MemoryStrategy::Balanced, ..Telemetry::default() }
}

fn trend(predicted_per_mille: u16, fit_per_mille: u16, samples: u16) -> TrendEstimate {
    TrendEstimate {
        samples,
        capacity: TREND_CAPACITY as u16,
        latest_per_mille: 500,
        slope_per_mille_per_s: 0,
        horizon_ns: 200_000_000,
        predicted_per_mille,
        fit_per_mille,
    }
}

#[test]
fn nothing_to_do_when_calm() {
    assert_eq!(decide_memory(&calm(), &MetaConfig::default()), Decision::none(Reason::Nominal));
}

#[test]
fn oom_comes_first() {
    // Also high pressure and missed deadlines: the OOM rule wins. First it keeps headroom (Conservative)...
    let telemetry = Telemetry { oom_events: 2, pressure_per_mille: 990, deadline_misses: 5, ..calm() };
    let oom = Decision {
        directive: Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative },
        confidence_per_mille: 1000,
        reason: Reason::OomObserved { events: 2 },
        selection: Selection::Rule,
        prediction: Some(Prediction::Oom),
        scoring: Scoring::NONE,
    };
    assert_eq!(decide_memory(&telemetry, &MetaConfig::default()), oom);
    // ... and once Conservative is in force, it throttles.
    let conservative = Telemetry { strategy: MemoryStrategy::Conservative, ..telemetry };
    assert_eq!(
        decide_memory(&conservative, &MetaConfig::default()),
        Decision { directive: Directive::ThrottleAllocations { per_mille: 500 }, ..oom }
    );
}

#[test]
fn high_pressure_throttles_in_proportion() {
    let config = MetaConfig::default();
    // Balanced in force: keep headroom first, with the confidence the throttle would have.
    let balanced = decide_memory(&Telemetry { pressure_per_mille: 950, ..calm() }, &config);
    assert_eq!(balanced.directive, Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative });
    assert_eq!(balanced.confidence_per_mille, 800);
    // Conservative in force: 950 ‰ is half-way from the threshold (900) to full: throttle 250 + 375,
    // confidence 600 + 200.
    let conservative = Telemetry { strategy: MemoryStrategy::Conservative, ..calm() };
    let decision = decide_memory(&Telemetry { pressure_per_mille: 950, ..conservative }, &config);
    assert_eq!(decision.directive, Directive::ThrottleAllocations { per_mille: 625 });
    assert_eq!(decision.confidence_per_mille, 800);
    assert_eq!(decision.reason, Reason::PressureHigh { pressure_per_mille: 950, threshold_per_mille: 900 });
    let at_threshold = decide_memory(&Telemetry { pressure_per_mille: 900, ..conservative }, &config);
    assert_eq!(
        (at_threshold.directive, at_threshold.confidence_per_mille),
        (Directive::ThrottleAllocations { per_mille: 250 }, 600)
    );
    let full = decide_memory(&Telemetry { pressure_per_mille: 1000, ..conservative }, &config);
    assert_eq!((full.directive, full.confidence_per_mille), (Directive::ThrottleAllocations { per_mille: 1000 }, 1000));
}

#[test]
fn predicted_pressure_switches_to_conservative_then_reclaims() {
    let config = MetaConfig::default();
    // R² 900 ‰ over 8 of 16 samples: confidence 450.
    let telemetry = Telemetry { trend: Some(trend(850, 900, 8)), ..calm() };
    let decision = decide_memory(&telemetry, &config);
    assert_eq!(decision.directive, Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative });
    assert_eq!(decision.confidence_per_mille, 450);
    assert_eq!(
        decision.reason,
        Reason::PressurePredicted { predicted_per_mille: 850, threshold_per_mille: 800, fit_per_mille: 900 }
    );
    assert_eq!(decision.prediction, Some(Prediction::PressureAbove { per_mille: 900 }));
    let conservative = Telemetry { strategy: MemoryStrategy::Conservative, ..telemetry };
    assert_eq!(decide_memory(&conservative, &config).directive, Directive::ProactiveReclaim);
    // A flat line (R² 0) at 850 ‰ now, half-way from reclaim (800) to throttle (900): the level gives 800.
    let flat = Telemetry { pressure_per_mille: 850, trend: Some(trend(850, 0, 16)), ..calm() };
    assert_eq!(decide_memory(&flat, &config).confidence_per_mille, 800);
    // Just below the reclaim threshold: nothing.
    let below = Telemetry { trend: Some(trend(799, 1000, 16)), ..calm() };
    assert_eq!(decide_memory(&below, &config).directive, Directive::None);
}

#[test]
fn missed_deadlines_boost_or_relax() {
    let config = MetaConfig::default();
    let slow = Telemetry { deadline_misses: 3, command_latency_max_ns: 20_000_000, ..calm() };
    let decision = decide_scheduling(&slow, &config);
    assert_eq!((decision.directive, decision.confidence_per_mille), (Directive::BoostPriority, 750));
    assert_eq!(decision.prediction, Some(Prediction::DeadlineMiss));
    let fast = Telemetry { deadline_misses: 1, command_latency_max_ns: 1_000_000, ..calm() };
    let decision = decide_scheduling(&fast, &config);
    assert_eq!(
        (decision.directive, decision.confidence_per_mille),
        (Directive::AdjustDeadline { relax_per_mille: 250 }, 500)
    );
    // One late job of the one the interval completed: certain; one of four: the count's 500 stands.
    let all_late = decide_scheduling(&Telemetry { deadline_jobs: 1, ..fast }, &config);
    assert_eq!(all_late.confidence_per_mille, 1000);
    assert_eq!(all_late.reason, Reason::DeadlinesMissed { misses: 1, jobs: 1, command_latency_max_ns: 1_000_000 });
    assert_eq!(decide_scheduling(&Telemetry { deadline_jobs: 4, ..fast }, &config).confidence_per_mille, 500);
    assert_eq!(
        decide_scheduling(&Telemetry { deadline_misses: 2, deadline_jobs: 3, ..fast }, &config).confidence_per_mille,
        666
    );
}

#[test]
fn deep_queue_limits_output() {
    let decision = decide_scheduling(&Telemetry { command_queue_depth: 128, ..calm() }, &MetaConfig::default());
    assert_eq!(decision.directive, Directive::LimitOutputRate { lines_per_second: 100 });
    assert_eq!(decision.confidence_per_mille, 666);
    assert_eq!(decision.reason, Reason::QueueDeep { depth: 128, limit: 64 });
    assert_eq!(decision.prediction, None);
}

#[test]
fn low_pressure_relaxes_conservative() {
    let config = MetaConfig::default();
    let telemetry = Telemetry {
        strategy: MemoryStrategy::Conservative,
        pressure_per_mille: 400,
        trend: Some(trend(300, 1000, 16)),
        ..calm()
    };
    let decision = decide_memory(&telemetry, &config);
    assert_eq!(decision.directive, Directive::SwitchStrategy { strategy: MemoryStrategy::Balanced });
    assert_eq!(decision.confidence_per_mille, 1000);
    // Without a trend there is no evidence pressure stays low: confidence 0.
    assert_eq!(decide_memory(&Telemetry { trend: None, ..telemetry }, &config).confidence_per_mille, 0);
    // A prediction at the relax threshold keeps Conservative.
    assert_eq!(
        decide_memory(&Telemetry { trend: Some(trend(600, 1000, 16)), ..telemetry }, &config).directive,
        Directive::None
    );
}

#[test]
fn never_act_never_acts() {
    let telemetry = Telemetry { oom_events: 9, pressure_per_mille: 1000, ..calm() };
    assert_eq!(NeverAct.decide(&telemetry, &MetaConfig::default()), Decision::none(Reason::NeverActs));
    assert_eq!(Heuristic.decide(&telemetry, &MetaConfig::default()).confidence_per_mille, 1000);
}

#[test]
fn bad_configurations_are_refused() {
    let base = MetaConfig::default();
    assert_eq!(
        MetaConfig { confidence_threshold_per_mille: 1001, ..base }.validate(),
        Err(MetaConfigError::AboveOneThousand { field: "confidence_threshold_per_mille", value: 1001 })
    );
    assert_eq!(MetaConfig { reclaim_at_per_mille: 900, ..base }.validate(), Err(MetaConfigError::ThresholdsOutOfOrder));
    assert_eq!(
        MetaConfig { relax_below_per_mille: 800, ..base }.validate(),
        Err(MetaConfigError::ThresholdsOutOfOrder)
    );
    assert_eq!(
        MetaConfig { queue_depth_limit: 0, ..base }.validate(),
        Err(MetaConfigError::ZeroLimit { field: "queue_depth_limit" })
    );
    assert_eq!(
        MetaConfig { deadline_miss_limit: 0, ..base }.validate(),
        Err(MetaConfigError::ZeroLimit { field: "deadline_miss_limit" })
    );
    assert_eq!(base.validate(), Ok(()));
}

#[test]
fn boxed_policies_can_be_swapped() {
    let telemetry = Telemetry { oom_events: 1, ..calm() };
    let mut policy: Box<dyn Policy + Send> = Box::new(Heuristic);
    assert_eq!(
        (policy.name(), policy.decide(&telemetry, &MetaConfig::default()).confidence_per_mille),
        ("heuristic", 1000)
    );
    policy = Box::new(NeverAct);
    assert_eq!(policy.name(), "never-act");
    assert_eq!(policy.decide(&telemetry, &MetaConfig::default()).directive, Directive::None);
}

#[test]
fn slow_commands_get_their_consumer_boosted_once() {
    let config = MetaConfig::default();
    // 15 ms against a 10 ms limit: half-way to twice the limit, confidence 800.
    let slow = Telemetry { command_latency_max_ns: 15_000_000, ..calm() };
    let decision = decide_scheduling(&slow, &config);
    assert_eq!((decision.directive, decision.confidence_per_mille), (Directive::BoostPriority, 800));
    assert_eq!(decision.reason, Reason::CommandsSlow { latency_max_ns: 15_000_000, limit_ns: 10_000_000 });
    assert_eq!(decision.prediction, Some(Prediction::LatencyAbove { ns: 10_000_000 }));
    let very_slow = Telemetry { command_latency_max_ns: 90_000_000, ..calm() };
    assert_eq!(decide_scheduling(&very_slow, &config).confidence_per_mille, 1000);
    // Already boosted, or fast enough: nothing.
    assert_eq!(decide_scheduling(&Telemetry { commands_boosted: true, ..slow }, &config).directive, Directive::None);
    let fast = Telemetry { command_latency_max_ns: 9_999_999, ..calm() };
    assert_eq!(decide_scheduling(&fast, &config).directive, Directive::None);
    // The prediction fails on latency strictly above the bound.
    let bound = Prediction::LatencyAbove { ns: 10_000_000 };
    assert!(bound.is_met_by(crate::ObservedFailure::Latency { ns: 10_000_001 }));
    assert!(!bound.is_met_by(crate::ObservedFailure::Latency { ns: 10_000_000 }));
}

#[test]
fn memory_and_scheduling_are_decided_independently() {
    let config = MetaConfig::default();
    // An OOM event, a deadline miss and a slow command at once: each subsystem's first rule applies.
    let both =
        Telemetry { oom_events: 2, deadline_misses: 1, deadline_jobs: 1, command_latency_max_ns: 20_000_000, ..calm() };
    assert_eq!(
        decide_memory(&both, &config).directive,
        Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative }
    );
    assert_eq!(decide_scheduling(&both, &config).directive, Directive::BoostPriority);
    // Neither looks at the other's inputs.
    let memory_only = Telemetry { oom_events: 2, ..calm() };
    assert_eq!(decide_scheduling(&memory_only, &config), Decision::none(Reason::Nominal));
    let scheduling_only = Telemetry { deadline_misses: 1, deadline_jobs: 1, ..calm() };
    assert_eq!(decide_memory(&scheduling_only, &config), Decision::none(Reason::Nominal));
    // The heuristic's decision is the rules' decision, with the scores of every candidate added.
    let decided = Heuristic.decide_scheduling(&both, &config).unwrap();
    assert_eq!(Decision { scoring: Scoring::NONE, ..decided }, decide_scheduling(&both, &config));
    assert_eq!(decided.scoring.chosen_action(), Some("boost_priority"));
    assert_eq!(NeverAct.decide_scheduling(&both, &config), None);
    assert_eq!(Directive::BoostPriority.subsystem(), Some(Subsystem::Scheduling));
    assert_eq!(Directive::ProactiveReclaim.subsystem(), Some(Subsystem::Memory));
    assert_eq!(Directive::None.subsystem(), None);
}
