//! Shadow and canary on the host: the real workload, pool and meta-agent on a fake clock, and the canary's rules
//! on made-up intervals.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use sis_autonomy::{
    Decision, Heuristic, MetaConfig, NeverAct, Policy, Reason, Scoring, Selection, Subsystem, TraceOutcome,
};
use sis_safety::Guardrails;

use super::*;
use crate::governor::{Governor, TRACES_KEPT};
use crate::learning::{new_agent, LearnedPolicy};
use crate::test_support::{frames, guarded_run};
use crate::StressTestConfig;

/// The comparison's memory configuration for 1 s (100 decisions at 10 ms).
fn config() -> StressTestConfig {
    StressTestConfig {
        duration_ms: 1_000,
        pool_bytes: 6 << 20,
        target_pressure_percent: 85,
        oom_threshold_percent: 90,
        ..StressTestConfig::with_seed(7)
    }
}

/// Everything production shows of a run: the report, the counters, the pool's record, every trace, the
/// guardrails' totals.
fn production_run(governor: Governor, guardrails: Guardrails) -> (String, RefCell<Governor>) {
    let governor = RefCell::new(governor);
    let guardrails = RefCell::new(guardrails);
    let (report, counted, port) = guarded_run(&config(), Some(&governor), &guardrails, &mut frames());
    let traces: Vec<String> = governor.borrow().agent().audit(TRACES_KEPT).map(|trace| format!("{trace:?}")).collect();
    let totals = guardrails.borrow().totals();
    (format!("{report:?}\n{counted:?}\n{port:?}\n{traces:?}\n{totals:?}"), governor)
}

fn learned() -> BoxedPolicy {
    Box::new(LearnedPolicy::new(new_agent(3, 1)))
}

#[test]
fn a_shadow_changes_nothing_in_production() {
    let (alone, _) = production_run(Governor::heuristic().unwrap(), Guardrails::new());
    let mut shadowed = Governor::heuristic().unwrap();
    shadowed.start_shadow(learned());
    let (with_shadow, governor) = production_run(shadowed, Guardrails::new());
    assert_eq!(alone, with_shadow);
    let governor = governor.borrow();
    let report = governor.shadow_report().unwrap();
    assert_eq!(report.compared, governor.agent().intervals());
    assert!(report.compared >= 90, "{}", report.compared);
    assert_eq!((report.candidate_policy, report.production_policy), ("learned", "heuristic"));
}

#[test]
fn agreement_is_counted_exactly_against_the_production_traces() {
    let mut governor = Governor::heuristic().unwrap();
    governor.start_shadow(Box::new(NeverAct));
    let (_, governor) = production_run(governor, Guardrails::new());
    let governor = governor.borrow();
    let report = governor.shadow_report().unwrap();
    let memory: Vec<_> =
        governor.agent().audit(TRACES_KEPT).filter(|trace| trace.subsystem == Subsystem::Memory).collect();
    assert_eq!(report.compared, memory.len() as u64);
    let nones = memory.iter().filter(|trace| trace.directive == Directive::None).count() as u64;
    assert!(nones > 0 && nones < report.compared, "{nones} of {}", report.compared);
    assert_eq!(report.agreed, nones);
    assert_eq!(report.differed, report.compared - nones);
    assert_eq!(report.agreement_per_mille, nones * 1000 / report.compared);
    // Never-act always chooses none: only the first column is filled, each row with production's count of
    // that kind.
    for (kind, row) in report.confusion.iter().enumerate() {
        let count = memory.iter().filter(|trace| directive_kind(trace.directive) == kind).count() as u64;
        assert_eq!(row[0], count, "kind {kind}");
        assert_eq!(row[1..].iter().sum::<u64>(), 0);
    }
    let differing: Vec<u64> = memory.iter().filter(|t| t.directive != Directive::None).map(|t| t.id).collect();
    let kept: Vec<u64> = report.differences.iter().map(|difference| difference.decision).collect();
    assert_eq!(kept, differing[..differing.len().min(DIFFERENCES_KEPT)]);
    assert!(report.differences.iter().all(|difference| difference.candidate == Directive::None));
    // Every decision but the last was measured by the next one.
    assert_eq!(report.agreed_rewarded + report.differed_rewarded, report.compared - 1);
}

#[test]
fn a_shadow_of_production_itself_agrees_everywhere() {
    let mut governor = Governor::heuristic().unwrap();
    governor.start_shadow(Box::new(Heuristic));
    let (_, governor) = production_run(governor, Guardrails::new());
    let report = governor.borrow_mut().stop_shadow().unwrap().1;
    assert_eq!((report.agreed, report.differed, report.agreement_per_mille), (report.compared, 0, 1000));
    let diagonal: u64 = (0..5).map(|kind| report.confusion[kind][kind]).sum();
    assert_eq!(diagonal, report.compared);
    assert!(report.passes(report.compared, 1000));
    assert!(!report.passes(report.compared + 1, 0));
    assert!(governor.borrow().shadow_report().is_none());
}

#[test]
fn the_canary_share_is_exact_from_the_seed() {
    for (share, seed) in [(250u16, 0u64), (1, 5), (333, 999), (1000, 7), (500, 1_000_001)] {
        let config = CanaryConfig { share_per_mille: share, seed, ..CanaryConfig::default() };
        for start in [0u64, 1000, 123_456] {
            let chosen = (start..start + 1000).filter(|index| config.selects(*index)).count();
            assert_eq!(chosen, usize::from(share), "share {share} seed {seed} from {start}");
        }
    }
    let every_fourth = CanaryConfig { share_per_mille: 250, seed: 0, ..CanaryConfig::default() };
    let picked: Vec<u64> = (0..16).filter(|index| every_fourth.selects(*index)).collect();
    assert_eq!(picked, [3, 7, 11, 15]);
    let shifted = CanaryConfig { seed: 2, ..every_fourth };
    assert_eq!((0..16).filter(|index| shifted.selects(*index)).collect::<Vec<_>>(), [1, 5, 9, 13]);
}

#[test]
fn bad_canary_configurations_are_refused() {
    let bad = [
        (
            CanaryConfig { share_per_mille: 0, ..CanaryConfig::default() },
            CanaryConfigError::BadShare { share_per_mille: 0 },
        ),
        (
            CanaryConfig { share_per_mille: 1001, ..CanaryConfig::default() },
            CanaryConfigError::BadShare { share_per_mille: 1001 },
        ),
        (CanaryConfig { window: 0, ..CanaryConfig::default() }, CanaryConfigError::BadWindow { window: 0 }),
        (CanaryConfig { window: 257, ..CanaryConfig::default() }, CanaryConfigError::BadWindow { window: 257 }),
        (
            CanaryConfig { max_reward_drop_milli: -1, ..CanaryConfig::default() },
            CanaryConfigError::BadRewardDrop { max_reward_drop_milli: -1 },
        ),
    ];
    for (config, error) in bad {
        assert_eq!(config.validate(), Err(error));
        let mut governor = Governor::heuristic().unwrap();
        assert_eq!(governor.start_canary(Box::new(NeverAct), config), Err(error));
        assert!(governor.canary_status().is_none());
    }
}

/// Always throttles everything, fully confident.
struct Throttler;

impl Policy for Throttler {
    fn name(&self) -> &'static str {
        "throttler"
    }

    fn decide(&mut self, _: &Telemetry, _: &MetaConfig) -> Decision {
        Decision {
            directive: Directive::ThrottleAllocations { per_mille: 1000 },
            confidence_per_mille: 1000,
            reason: Reason::Nominal,
            selection: Selection::Rule,
            prediction: None,
            scoring: Scoring::NONE,
        }
    }
}

#[test]
fn the_canary_decides_its_share_and_a_guardrail_block_rolls_it_back() {
    // Within the default envelope the throttler's decisions act: every fourth interval is its.
    let mut governor = Governor::heuristic().unwrap();
    let config = CanaryConfig { share_per_mille: 250, seed: 0, window: 256, max_reward_drop_milli: i64::MAX };
    governor.start_canary(Box::new(Throttler), config).unwrap();
    let (_, governor) = production_run(governor, Guardrails::new());
    let status = governor.borrow().canary_status().unwrap();
    assert_eq!(status.intervals, governor.borrow().agent().intervals());
    assert_eq!(status.candidate_intervals, status.intervals / 4);
    assert_eq!((status.active, status.rollback, status.candidate_blocked), (true, None, 0));
    let by_candidate: Vec<u64> = governor
        .borrow()
        .agent()
        .audit(TRACES_KEPT)
        .filter(|trace| trace.policy == "throttler")
        .map(|trace| trace.interval)
        .collect();
    assert_eq!(by_candidate, (0..status.intervals).filter(|index| index % 4 == 3).collect::<Vec<_>>());

    // With throttles capped at 300 per mille its first decision is blocked and the canary stops there.
    let mut tight = Guardrails::new();
    tight.set("throttle.max_per_mille", 300).unwrap();
    let mut governor = Governor::heuristic().unwrap();
    governor.start_canary(Box::new(Throttler), config).unwrap();
    let (_, governor) = production_run(governor, tight);
    let mut governor = governor.borrow_mut();
    let blocked = governor.agent().audit(TRACES_KEPT).find(|trace| trace.policy == "throttler").unwrap().id;
    assert_eq!(governor.agent().audit(TRACES_KEPT).filter(|trace| trace.policy == "throttler").count(), 1);
    let (candidate, status) = governor.take_rolled_back_canary().unwrap();
    assert_eq!(candidate.name(), "throttler");
    assert_eq!(
        status.rollback,
        Some(CanaryRollback::GuardrailBlock { decision: blocked, rule: "throttle.max_per_mille" })
    );
    assert_eq!(status.rollback.unwrap().code(), "guardrail-block");
    assert_eq!((status.active, status.candidate_intervals, status.candidate_blocked), (false, 1, 1));
    assert!(governor.canary_status().is_none());
}

/// A memory trace of interval `interval` with `disposition`.
fn trace(interval: u64, disposition: Disposition) -> DecisionTrace {
    DecisionTrace {
        id: interval,
        interval,
        subsystem: Subsystem::Memory,
        at_ns: interval * 10_000_000,
        policy: "test",
        inputs: Telemetry::default(),
        directive: Directive::None,
        confidence_per_mille: 0,
        threshold_per_mille: 0,
        reason: Reason::Nominal,
        selection: Selection::Rule,
        prediction: None,
        disposition,
        blocked_by: None,
        outcome: TraceOutcome::NotApplicable,
        reward_per_mille: None,
        scoring: Scoring::NONE,
        config: MetaConfig::default(),
    }
}

/// Telemetry of an interval of one step with `served` allocations served (4 points each): reward `4000 * served`
/// thousandths of a point.
fn interval(now_ns: u64, served: u64) -> Telemetry {
    Telemetry { now_ns, steps: 1, allocation_requests: served, ..Telemetry::default() }
}

#[test]
fn a_reward_drop_beyond_the_threshold_rolls_the_canary_back_on_a_fake_clock() {
    // Every other interval is the candidate's; windows of 2; a drop of more than 4000 rolls back.
    let config = CanaryConfig { share_per_mille: 500, seed: 0, window: 2, max_reward_drop_milli: 4000 };
    let mut canary = Canary::new(Box::new(NeverAct), config).unwrap();
    // Production's intervals serve 3 allocations (12000), the candidate's first ones 2 (8000): a drop of
    // exactly 4000 is allowed; then one serves 1 (4000): the candidate's mean 6000 is 6000 below, > 4000.
    let mut who = Vec::new();
    let mut served_next = 0;
    for index in 0..8u64 {
        let by_candidate = canary.begin_interval(&interval(index * 10_000_000, served_next));
        who.push(by_candidate);
        canary.end_interval(by_candidate, &trace(index, Disposition::NoAction));
        served_next = match (by_candidate, index) {
            (false, _) => 3,
            (true, index) if index < 4 => 2,
            (true, _) => 1,
        };
        if index == 5 {
            assert_eq!(canary.rollback(), None, "after two candidate intervals at 8000 vs 12000");
        }
    }
    assert_eq!(who, [false, true, false, true, false, true, false, false]);
    let status = canary.status();
    assert_eq!(
        status.rollback,
        Some(CanaryRollback::RewardDrop {
            candidate_mean_milli: 6000,
            production_mean_milli: 12000,
            max_reward_drop_milli: 4000
        })
    );
    assert_eq!(status.rollback.unwrap().code(), "reward-drop");
    assert!(!status.active);
    assert_eq!(status.candidate_rewards_milli, [8000, 4000]);
    assert_eq!(status.production_rewards_milli, [12000, 12000]);
    // Stopped: no interval is the candidate's any more.
    assert_eq!(status.candidate_intervals, 3);
}

#[test]
fn shadow_criteria_are_checked_and_judge_the_report() {
    assert_eq!(ShadowCriteria::default().validate(), Ok(()));
    assert_eq!(
        ShadowCriteria { min_compared: 0, min_agreement_per_mille: 0 }.validate(),
        Err(ShadowCriteriaError::BadMinCompared { min_compared: 0 })
    );
    assert_eq!(
        ShadowCriteria { min_compared: 1_000_001, min_agreement_per_mille: 0 }.validate(),
        Err(ShadowCriteriaError::BadMinCompared { min_compared: 1_000_001 })
    );
    assert_eq!(
        ShadowCriteria { min_compared: 1, min_agreement_per_mille: 1001 }.validate(),
        Err(ShadowCriteriaError::BadMinAgreement { min_agreement_per_mille: 1001 })
    );
    let mut governor = Governor::heuristic().unwrap();
    governor.start_shadow(Box::new(NeverAct));
    let (_, governor) = production_run(governor, Guardrails::new());
    let report = governor.borrow().shadow_report().unwrap().clone();
    let exactly = ShadowCriteria { min_compared: report.compared, min_agreement_per_mille: report.agreement_per_mille };
    assert!(report.passes_criteria(&exactly));
    assert!(!report.passes_criteria(&ShadowCriteria { min_compared: report.compared + 1, ..exactly }));
    assert!(
        !report.passes_criteria(&ShadowCriteria { min_agreement_per_mille: report.agreement_per_mille + 1, ..exactly })
    );
}

#[test]
fn a_fresh_governor_takes_the_runs_over_and_the_report_names_the_new_production_policy() {
    let mut old = Governor::heuristic().unwrap();
    old.start_shadow(Box::new(NeverAct));
    old.start_canary(Box::new(NeverAct), CanaryConfig::default()).unwrap();
    let mut fresh = Governor::new(Box::new(NeverAct), MetaConfig::default(), Default::default()).unwrap();
    fresh.take_runs_from(&mut old);
    assert!(!old.shadowing() && old.canary_status().is_none());
    assert!(fresh.shadowing());
    assert_eq!(fresh.canary_status().unwrap().candidate_policy, "never-act");
    let (_, fresh) = production_run(fresh, Guardrails::new());
    let fresh = fresh.borrow();
    let report = fresh.shadow_report().unwrap();
    assert_eq!(report.production_policy, "never-act");
    assert_eq!(report.compared + fresh.canary_status().unwrap().candidate_intervals, fresh.agent().intervals());
}
