//! Governor tests on the host: the real workload, pool and meta-agent, decisions driven by a fake clock.

use super::*;
use crate::port::{DeadlinePort, PortTelemetry};
use crate::test_support::{configured_run, frames, governed_run, guarded_run};
use crate::StressTestConfig;
use core::cell::RefCell;
use proptest::prelude::*;
use sis_autonomy::{AutonomySnapshot, NeverAct, TraceOutcome};
use sis_safety::{Guardrails, LiveState};

#[test]
fn the_default_configurations_are_valid() {
    assert!(Governor::heuristic().is_ok());
}

#[test]
fn a_governor_that_never_acts_changes_nothing() {
    for seed in [2, 6] {
        let (off, none) = governed_run(seed, None);
        let never = Governor::new(Box::new(NeverAct), MetaConfig::default(), StrategyConfig::default()).unwrap();
        let (on, counted) = governed_run(seed, Some(never));
        assert_eq!(format!("{off:?}"), format!("{on:?}"), "seed {seed}");
        assert_eq!(counted.total_interventions, 0);
        assert_eq!(none, AutonomySnapshot::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Autonomy on with a policy that never acts is autonomy off, bit for bit, over the whole range of every
    /// flag: the governor has no effect on a workload that is not a counted intervention.
    #[test]
    fn never_act_is_autonomy_off_over_every_flag(
        seed in any::<u64>(),
        target in 1u8..=100,
        threshold in 1u8..=100,
        fail_rate in 0u8..=100,
        duration_ms in 1u64..=300,
        pool_kib in 64u64..=16 << 10,
    ) {
        let config = StressTestConfig {
            duration_ms,
            target_pressure_percent: target,
            oom_threshold_percent: threshold,
            fail_rate_percent: fail_rate,
            pool_bytes: pool_kib << 10,
            ..StressTestConfig::with_seed(seed)
        };
        let mut source = frames();
        let (off, _) = configured_run(&config, None, &mut source);
        let never = RefCell::new(
            Governor::new(Box::new(NeverAct), MetaConfig::default(), StrategyConfig::default()).unwrap(),
        );
        let (on, counted) = configured_run(&config, Some(&never), &mut source);
        prop_assert_eq!(format!("{off:?}"), format!("{on:?}"));
        prop_assert_eq!(counted.total_interventions, 0);
    }
}

#[test]
fn never_act_at_target_95_is_autonomy_off() {
    // The review's case: at a target above the Balanced strategy's 85 % cap, a governor that capped the pool at
    // every new run took seed 2 from hundreds of OOM events to a few with no intervention counted.
    for seed in [2, 6] {
        let config = StressTestConfig {
            duration_ms: 1_000,
            target_pressure_percent: 95,
            oom_threshold_percent: 98,
            pool_bytes: 16 << 20,
            ..StressTestConfig::with_seed(seed)
        };
        let mut source = frames();
        let (off, _) = configured_run(&config, None, &mut source);
        let never =
            RefCell::new(Governor::new(Box::new(NeverAct), MetaConfig::default(), StrategyConfig::default()).unwrap());
        let (on, counted) = configured_run(&config, Some(&never), &mut source);
        assert!(off.oom_events > 100, "seed {seed}: {} OOM events", off.oom_events);
        assert_eq!((on.oom_events, on.peak_pressure_per_mille), (off.oom_events, off.peak_pressure_per_mille));
        assert_eq!(format!("{off:?}"), format!("{on:?}"), "seed {seed}");
        assert_eq!(counted.total_interventions, 0);
    }
}

#[test]
fn the_heuristic_keeps_headroom_once_pressure_is_predicted_and_every_intervention_is_counted() {
    // Seed 2 reaches the limit without autonomy: 30 OOM events in one second.
    let (off, _) = governed_run(2, None);
    let (on, counted) = governed_run(2, Some(Governor::heuristic().unwrap()));
    assert_eq!(off.oom_events, 30);
    assert_eq!(on.oom_events, 0);
    // One switch to Conservative (the pressure cap) and one reclaim carried out by the workload.
    assert_eq!((counted.strategy_switches, counted.proactive_compactions), (1, 1));
    assert_eq!(counted.total_interventions, 2);
    assert_eq!(on.directed_compactions, counted.proactive_compactions);
    // The cost: the workload held lower serves fewer allocations.
    assert_eq!((off.average_pressure_per_mille, on.average_pressure_per_mille), (775, 635));
    assert!(on.allocations < off.allocations);
}

#[test]
fn a_naive_threshold_policy_on_the_same_samples_flaps_where_the_governor_does_not() {
    // Seed 7: once Conservative holds it near 70 %, pressure hovers on the naive Balanced threshold (700).
    let governor = RefCell::new(Governor::heuristic().unwrap());
    let (_, counted) = crate::test_support::governed_run_with(7, &governor);
    let governor = governor.into_inner();
    assert_eq!((governor.naive_switches(), counted.strategy_switches), (35, 1));
}

#[test]
fn the_telemetry_carries_the_misses_published_since_the_last_decision_and_a_further_miss_fails_the_relaxation() {
    let pool = PoolPort::new();
    pool.attach(4096);
    pool.publish(500, 0, 0, 0, 1);
    let deadline = DeadlinePort::new();
    let metrics = AutonomyMetrics::new();
    let mut governor = Governor::heuristic().unwrap();
    // The thread publishes its totals, then the governor decides at `at_ms`: its scheduling decision, when it
    // made one, else its memory decision (both carry the same inputs).
    let tick = |governor: &mut Governor, at_ms: u64, jobs: u64, misses: u64| {
        deadline.publish(jobs, misses);
        let traces = governor
            .tick(
                at_ms * 1_000_000,
                &pool,
                None,
                Some(&deadline),
                &LiveState::default(),
                &mut Guardrails::new(),
                &metrics,
            )
            .unwrap();
        assert_eq!(traces.memory.directive, Directive::None);
        traces.scheduling.unwrap_or(traces.memory)
    };
    // Detached: whatever it holds is not observed.
    deadline.publish(3, 3);
    assert_eq!(
        governor
            .tick(0, &pool, None, Some(&deadline), &LiveState::default(), &mut Guardrails::new(), &metrics)
            .unwrap()
            .memory
            .inputs
            .deadline_misses,
        0
    );
    deadline.attach(7);
    assert_eq!(tick(&mut governor, 10, 1, 0).inputs.deadline_misses, 0);
    // Three misses among six jobs since the last decision: relax by 250 per mille, confidence the larger of
    // 1000 * 3 / (3 + 1) and 1000 * 3 / 6.
    let relax = tick(&mut governor, 20, 7, 3);
    assert_eq!((relax.inputs.deadline_jobs, relax.inputs.deadline_misses), (6, 3));
    assert_eq!(relax.directive, Directive::AdjustDeadline { relax_per_mille: 250 });
    assert_eq!((relax.confidence_per_mille, relax.disposition), (750, Disposition::Acted));
    assert_eq!(relax.prediction, Some(sis_autonomy::Prediction::DeadlineMiss));
    assert_eq!(metrics.snapshot().deadline_adjustments, 1);
    // No new miss: the delta is 0, not the run's total.
    let calm = tick(&mut governor, 30, 8, 3);
    assert_eq!((calm.inputs.deadline_jobs, calm.inputs.deadline_misses), (1, 0));
    assert_eq!(metrics.snapshot().interventions_pending, 1);
    // One more within the 200 ms horizon: the relaxation failed; the new decision (one of two jobs late,
    // confidence 500) is held.
    let again = tick(&mut governor, 40, 10, 4);
    assert_eq!((again.inputs.deadline_misses, again.confidence_per_mille), (1, 500));
    assert_eq!(again.disposition, Disposition::Held);
    let counted = metrics.snapshot();
    assert_eq!((counted.interventions_failed, counted.interventions_pending), (1, 0));
    assert_eq!(governor.agent().explain(relax.id).unwrap().outcome, TraceOutcome::Failed);
    // A new run counts from zero: its first two misses are two, not a negative delta from the old total.
    deadline.detach();
    deadline.attach(9);
    let fresh = tick(&mut governor, 50, 2, 2);
    assert_eq!((fresh.inputs.deadline_misses, fresh.disposition), (2, Disposition::Acted));
    // No miss until its horizon has passed: this one succeeded.
    assert_eq!(tick(&mut governor, 251, 30, 2).inputs.deadline_misses, 0);
    assert_eq!(governor.agent().explain(fresh.id).unwrap().outcome, TraceOutcome::Succeeded);
    assert_eq!(metrics.snapshot().interventions_succeeded, 1);
}

#[test]
fn without_a_deadline_port_no_miss_is_observed() {
    let pool = PoolPort::new();
    pool.attach(4096);
    pool.publish(500, 0, 0, 0, 1);
    let metrics = AutonomyMetrics::new();
    let mut governor = Governor::heuristic().unwrap();
    let trace =
        governor.tick(0, &pool, None, None, &LiveState::default(), &mut Guardrails::new(), &metrics).unwrap().memory;
    assert_eq!((trace.inputs.deadline_misses, trace.directive), (0, Directive::None));
}

#[test]
fn misses_published_before_the_governor_looks_are_not_observed_once_it_starts_from_now() {
    let pool = PoolPort::new();
    pool.attach(4096);
    pool.publish(500, 0, 0, 0, 1);
    let deadline = DeadlinePort::new();
    deadline.attach(7);
    deadline.publish(40, 30);
    let metrics = AutonomyMetrics::new();
    let mut governor = Governor::heuristic().unwrap();
    governor.observe_deadline_from_now(&deadline);
    deadline.publish(41, 30);
    let trace = governor
        .tick(0, &pool, None, Some(&deadline), &LiveState::default(), &mut Guardrails::new(), &metrics)
        .unwrap()
        .memory;
    assert_eq!((trace.inputs.deadline_jobs, trace.inputs.deadline_misses), (1, 0));
    // Without it, a fresh governor counts the whole run.
    let mut fresh = Governor::heuristic().unwrap();
    let trace = fresh
        .tick(0, &pool, None, Some(&deadline), &LiveState::default(), &mut Guardrails::new(), &metrics)
        .unwrap()
        .memory;
    assert_eq!((trace.inputs.deadline_jobs, trace.inputs.deadline_misses), (41, 30));
}

/// A 1 s run of the comparison's memory configuration (6 MiB pool, target 85 %, OOM at 90 %) under a fresh
/// heuristic governor within `guardrails`: the pool port's record, the interventions and the guardrails.
fn guarded_heuristic_run(guardrails: Guardrails) -> (PortTelemetry, AutonomySnapshot, Guardrails) {
    let config = StressTestConfig {
        duration_ms: 1_000,
        pool_bytes: 6 << 20,
        target_pressure_percent: 85,
        oom_threshold_percent: 90,
        ..StressTestConfig::with_seed(7)
    };
    let governor = RefCell::new(Governor::heuristic().unwrap());
    let guardrails = RefCell::new(guardrails);
    let (_, counted, port) = guarded_run(&config, Some(&governor), &guardrails, &mut frames());
    (port, counted, guardrails.into_inner())
}

#[test]
fn a_tighter_envelope_blocks_what_the_heuristic_does_and_the_pool_never_sees_beyond_it() {
    let (free, counted, guardrails) = guarded_heuristic_run(Guardrails::new());
    assert_eq!((counted.decisions_blocked, guardrails.totals().blocked), (0, 0));
    // The envelope below the agent's habits: it throttles 500 per mille after an OOM and reclaims often.
    assert!(free.throttle_max_per_mille > 300, "{free:?}");
    assert!(free.reclaims_requested > 1, "{free:?}");
    assert_eq!(free.reclaims_requested, guardrails.effector_counters(sis_safety::Effector::MemoryReclaim).committed);

    let mut tight = Guardrails::new();
    tight.set("throttle.max_per_mille", 300).unwrap();
    tight.set("reclaim.max_per_window", 1).unwrap();
    tight.set("reclaim.window_ms", 10_000).unwrap();
    let (port, counted, guardrails) = guarded_heuristic_run(tight);
    // The pool's own record: no throttle above 300, at most one reclaim in 10 s.
    assert!(port.throttle_max_per_mille <= 300, "{port:?}");
    assert!(port.reclaims_requested <= 1, "{port:?}");
    let totals = guardrails.totals();
    assert!(totals.blocked > 0);
    assert_eq!(counted.decisions_blocked, totals.blocked);
    let reclaims = guardrails.effector_counters(sis_safety::Effector::MemoryReclaim);
    assert_eq!(port.reclaims_requested, reclaims.committed);
    assert_eq!(counted.proactive_compactions, reclaims.committed);
    assert_eq!(
        totals.blocked,
        guardrails.rule_counters(sis_safety::RuleId::ThrottleMaxPerMille).blocked
            + guardrails.rule_counters(sis_safety::RuleId::ReclaimMaxPerWindow).blocked
    );
}
