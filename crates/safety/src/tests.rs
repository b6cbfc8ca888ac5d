//! Host tests: each rule blocks exactly the actions outside its bound, frequency windows are exact on a fake
//! clock, counters add up, refused settings change nothing, invariants are validated on live states.

use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;
use serde_json::json;

use super::*;

const MS: u64 = 1_000_000;

fn throttle(per_mille: u64) -> ProposedAction {
    ProposedAction::new(Effector::AllocationThrottle, per_mille)
}

fn reclaim() -> ProposedAction {
    ProposedAction::new(Effector::MemoryReclaim, 1)
}

fn with(rule: &str, value: u64) -> Guardrails {
    let mut guardrails = Guardrails::new();
    guardrails.set(rule, value).unwrap();
    guardrails
}

/// A deadline thread with D = T = 10 ms under the scheduler's two-period bound.
fn deadline_thread(deadline_ns: u64) -> LiveState {
    LiveState {
        deadline: Some(DeadlineState { deadline_ns, period_ns: 10 * MS, bound_ns: 20 * MS }),
        ..LiveState::default()
    }
}

#[test]
fn rule_ids_are_stable_unique_and_each_frequency_rule_has_its_window() {
    let ids: Vec<&str> = RuleId::ALL.iter().map(|rule| rule.id()).collect();
    assert_eq!(ids.len(), RULES);
    assert_eq!(
        ids,
        [
            "reclaim.max_per_window",
            "reclaim.window_ms",
            "throttle.max_per_mille",
            "throttle.max_step_per_mille",
            "throttle.max_per_window",
            "throttle.window_ms",
            "pressure_cap.min_per_mille",
            "pressure_cap.max_step_per_mille",
            "pressure_cap.max_per_window",
            "pressure_cap.window_ms",
            "deadline.max_relax_per_mille",
            "deadline.max_per_mille_of_period",
            "deadline.max_per_window",
            "deadline.window_ms",
            "boost.max_per_window",
            "boost.window_ms",
            "output_rate.min_lines_per_second",
            "output_rate.max_per_window",
            "output_rate.window_ms",
            "generic.max_magnitude",
            "generic.max_per_window",
            "generic.window_ms",
            "console.capability_held",
        ]
    );
    for (index, &rule) in RuleId::ALL.iter().enumerate() {
        assert_eq!(rule.index(), index);
        assert_eq!(RuleId::from_id(rule.id()), Some(rule));
        let spec = rule.spec();
        assert!(spec.min <= spec.default && spec.default <= spec.max, "{rule}");
        let frequency = spec.kind == RuleKind::Frequency;
        assert_eq!(rule.window().is_some(), frequency, "{rule}");
        if let Some(window) = rule.window() {
            assert_eq!((window.spec().kind, window.spec().effector), (RuleKind::Window, spec.effector));
            assert_eq!(window.index(), rule.index() + 1, "the window follows its rule");
        }
    }
    // Every effector has a frequency rule; every rule but the console's belongs to one effector.
    for effector in Effector::ALL {
        let frequency = RuleId::ALL.iter().filter(|rule| rule.spec().kind == RuleKind::Frequency);
        assert_eq!(frequency.filter(|rule| rule.spec().effector == Some(effector)).count(), 1, "{effector:?}");
        assert_eq!(Effector::ALL[effector.index()], effector);
    }
    assert_eq!(RuleId::ALL.iter().filter(|rule| rule.spec().effector.is_none()).count(), 1);
    // Each effector's list is its rules, and the console's, in table order, without window parameters.
    for effector in Effector::ALL {
        let expected: Vec<RuleId> = RuleId::ALL
            .iter()
            .copied()
            .filter(|rule| rule.applies_to(effector) && rule.spec().kind != RuleKind::Window)
            .collect();
        assert_eq!(RuleId::judging(effector), expected.as_slice(), "{effector:?}");
    }
    assert_eq!(serde_json::to_value(RuleId::ThrottleMaxPerMille).unwrap(), json!("throttle.max_per_mille"));
}

#[test]
fn the_deadline_default_is_the_schedulers_own_bound() {
    assert_eq!(RuleId::DeadlineMaxPerMilleOfPeriod.spec().default, sis_sched::MAX_DEADLINE_PERIODS * 1000);
}

#[test]
fn defaults_allow_every_directive_the_meta_agent_can_issue_at_one_decision_a_millisecond() {
    let mut guardrails = Guardrails::new();
    let live = deadline_thread(10 * MS);
    let mut now = 0;
    for round in 0..2_000u64 {
        // Every magnitude a directive can carry: throttles and caps 0..=1000 per mille, relaxations up to
        // 1000 per mille, any rate.
        for action in [
            reclaim(),
            throttle(round % 1001),
            ProposedAction::new(Effector::PressureCap, [700, 850, 1000][round as usize % 3]),
            ProposedAction::new(Effector::DeadlineRelaxation, round % 1001),
            ProposedAction::new(Effector::PriorityBoost, 1),
            ProposedAction::new(Effector::OutputRateLimit, round * 7),
            ProposedAction::generic("model.scale", round % 1001),
        ] {
            assert_eq!(guardrails.check(&action, &live, now), Verdict::Allowed, "{action:?} at {now}");
            guardrails.commit(&action, now);
        }
        now += MS;
    }
    assert_eq!(guardrails.totals().blocked, 0);
    assert_eq!(guardrails.totals().committed, 2_000 * 7);
}

#[test]
fn a_throttle_above_the_set_share_is_blocked_with_the_rule_and_figures_and_kept_in_the_trace() {
    let mut guardrails = with("throttle.max_per_mille", 300);
    let live = LiveState::default();
    assert_eq!(guardrails.check(&throttle(300), &live, 5), Verdict::Allowed);
    let verdict = guardrails.check(&throttle(301), &live, 7);
    let Verdict::Blocked(violation) = verdict else { panic!("{verdict:?}") };
    assert_eq!(violation.rule, RuleId::ThrottleMaxPerMille);
    assert_eq!(violation.figures, Figures::AboveMax { value: 301, limit: 300 });
    assert_eq!(violation.reason(), "301 per mille is above throttle.max_per_mille = 300");
    let blocks: Vec<&BlockEntry> = guardrails.blocks().collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        serde_json::to_value(blocks[0]).unwrap(),
        json!({
            "at_ns": 7, "effector": "allocation_throttle", "action": "allocation_throttle", "magnitude": 301,
            "rule": "throttle.max_per_mille", "figures": { "kind": "above_max", "value": 301, "limit": 300 },
            "reason": "301 per mille is above throttle.max_per_mille = 300",
        })
    );
}

#[test]
fn reasons_carry_the_figures() {
    let reason = |guardrails: &mut Guardrails, action: ProposedAction, live: LiveState| match guardrails
        .check(&action, &live, 0)
    {
        Verdict::Blocked(violation) => violation.reason(),
        Verdict::Allowed => String::from("allowed"),
    };
    let live = LiveState { throttle_per_mille: 100, ..LiveState::default() };
    assert_eq!(
        reason(&mut with("throttle.max_step_per_mille", 200), throttle(400), live),
        "100 to 400 per mille is a change of 300, above throttle.max_step_per_mille = 200"
    );
    assert_eq!(
        reason(
            &mut with("deadline.max_per_mille_of_period", 1500),
            ProposedAction::new(Effector::DeadlineRelaxation, 250),
            deadline_thread(12_500_000)
        ),
        "relative deadline 15625000 ns is beyond 15000000 ns, the smaller of deadline.max_per_mille_of_period = 1500 \
         (15000000 ns of the 10000000 ns period) and the scheduler's bound 20000000 ns"
    );
    let mut guardrails = with("reclaim.max_per_window", 2);
    guardrails.commit(&reclaim(), 0);
    guardrails.commit(&reclaim(), 0);
    assert_eq!(
        reason(&mut guardrails, reclaim(), LiveState::default()),
        "already 2 in the last 1000 ms, the most reclaim.max_per_window = 2 allows"
    );
    let no_console = LiveState { console_capability_held: false, ..LiveState::default() };
    assert_eq!(
        reason(&mut Guardrails::new(), ProposedAction::generic("model.act", 1), no_console),
        "the console would not hold its capability (console.capability_held)"
    );
}

/// The rule that blocks `action` on `live`, if any.
fn blocker(guardrails: &mut Guardrails, action: ProposedAction, live: &LiveState) -> Option<RuleId> {
    guardrails.check(&action, live, 0).blocked_by()
}

proptest! {
    #[test]
    fn each_magnitude_rule_blocks_exactly_outside_its_bound(bound in 0u64..=1000, magnitude in 0u64..=1500) {
        let live = LiveState::default();
        let blocked = blocker(&mut with("throttle.max_per_mille", bound), throttle(magnitude), &live);
        prop_assert_eq!(blocked, (magnitude > bound).then_some(RuleId::ThrottleMaxPerMille));

        let relax = ProposedAction::new(Effector::DeadlineRelaxation, magnitude);
        let blocked = blocker(&mut with("deadline.max_relax_per_mille", bound), relax, &live);
        prop_assert_eq!(blocked, (magnitude > bound).then_some(RuleId::DeadlineMaxRelaxPerMille));

        let cap = ProposedAction::new(Effector::PressureCap, magnitude.min(1000));
        let blocked = blocker(&mut with("pressure_cap.min_per_mille", bound), cap, &live);
        prop_assert_eq!(blocked, (magnitude.min(1000) < bound).then_some(RuleId::PressureCapMinPerMille));

        let rate = ProposedAction::new(Effector::OutputRateLimit, magnitude);
        let blocked = blocker(&mut with("output_rate.min_lines_per_second", bound), rate, &live);
        prop_assert_eq!(blocked, (magnitude < bound).then_some(RuleId::OutputRateMinLinesPerSecond));

        let generic = ProposedAction::generic("model.scale", magnitude);
        let blocked = blocker(&mut with("generic.max_magnitude", bound), generic, &live);
        prop_assert_eq!(blocked, (magnitude > bound).then_some(RuleId::GenericMaxMagnitude));
    }

    #[test]
    fn each_step_rule_blocks_exactly_the_changes_beyond_it(bound in 0u64..=1000, current in 0u64..=1000, proposed in 0u64..=1000) {
        let live = LiveState { throttle_per_mille: current, pressure_cap_per_mille: current, ..LiveState::default() };
        let outside = current.abs_diff(proposed) > bound;
        let blocked = blocker(&mut with("throttle.max_step_per_mille", bound), throttle(proposed), &live);
        prop_assert_eq!(blocked, outside.then_some(RuleId::ThrottleMaxStepPerMille));
        let cap = ProposedAction::new(Effector::PressureCap, proposed);
        let blocked = blocker(&mut with("pressure_cap.max_step_per_mille", bound), cap, &live);
        prop_assert_eq!(blocked, outside.then_some(RuleId::PressureCapMaxStepPerMille));
    }

    #[test]
    fn the_deadline_invariant_blocks_exactly_the_relaxations_beyond_the_smaller_bound(
        per_mille_of_period in 1u64..=DEADLINE_MAX_PER_MILLE_OF_PERIOD,
        period_ns in 1u64..=1_000_000_000,
        deadline_per_mille in 1u64..=3000,
        scheduler_periods in 1u64..=4,
        relax in 0u64..=1000,
    ) {
        let deadline_ns = period_ns * deadline_per_mille / 1000;
        let bound_ns = period_ns * scheduler_periods;
        let live = LiveState {
            deadline: Some(DeadlineState { deadline_ns, period_ns, bound_ns }),
            ..LiveState::default()
        };
        let relaxed = deadline_ns as u128 * (1000 + relax as u128) / 1000;
        let limit = (period_ns as u128 * per_mille_of_period as u128 / 1000).min(bound_ns as u128);
        let action = ProposedAction::new(Effector::DeadlineRelaxation, relax);
        let blocked = blocker(&mut with("deadline.max_per_mille_of_period", per_mille_of_period), action, &live);
        prop_assert_eq!(blocked, (relaxed > limit).then_some(RuleId::DeadlineMaxPerMilleOfPeriod));
    }

    /// The straight-line judgement of each effector is the rule table's: the first rule of `judging`, in order,
    /// whose own evaluation finds figures.
    #[test]
    fn each_effector_is_judged_by_its_rules_in_table_order(
        effector in 0usize..7,
        magnitude in 0u64..=1500,
        current in 0u64..=1000,
        console in any::<bool>(),
        values in proptest::collection::vec(0u64..=1200, RULES),
        commits in 0u64..=5,
    ) {
        let mut guardrails = Guardrails::new();
        for (&rule, value) in RuleId::ALL.iter().zip(values) {
            let spec = rule.spec();
            let _ = guardrails.set(rule.id(), value.clamp(spec.min, spec.max));
        }
        let action = ProposedAction::new(Effector::ALL[effector], magnitude);
        for at in 0..commits {
            guardrails.commit(&action, at * MS);
        }
        let live = LiveState {
            throttle_per_mille: current,
            pressure_cap_per_mille: current,
            console_capability_held: console,
            ..deadline_thread(10 * MS)
        };
        let now = commits * MS;
        let expected = RuleId::judging(action.effector)
            .iter()
            .find_map(|&rule| guardrails.evaluate(rule, &action, &live, now).map(|figures| Violation { rule, figures }));
        prop_assert_eq!(guardrails.first_violation(&action, &live, now), expected);
    }

    /// Commits at random times; every check agrees with a brute-force count over the sliding window.
    #[test]
    fn the_frequency_window_is_exact_on_a_fake_clock(
        limit in 0u64..=6,
        window_ms in 1u64..=50,
        gaps_us in proptest::collection::vec(0u64..=20_000, 1..80),
    ) {
        let mut guardrails = with("boost.max_per_window", limit);
        guardrails.set("boost.window_ms", window_ms).unwrap();
        let boost = ProposedAction::new(Effector::PriorityBoost, 1);
        let mut committed: Vec<u64> = Vec::new();
        let mut now = 0;
        for gap in gaps_us {
            now += gap * 1_000;
            let in_window = committed.iter().filter(|&&time| now - time < window_ms * MS).count() as u64;
            let verdict = guardrails.check(&boost, &LiveState::default(), now);
            if in_window >= limit {
                prop_assert_eq!(
                    verdict,
                    Verdict::Blocked(Violation {
                        rule: RuleId::BoostMaxPerWindow,
                        figures: Figures::TooFrequent { in_window, limit, window_ms },
                    })
                );
            } else {
                prop_assert_eq!(verdict, Verdict::Allowed);
                guardrails.commit(&boost, now);
                committed.push(now);
            }
        }
        let counters = guardrails.effector_counters(Effector::PriorityBoost);
        prop_assert_eq!(counters.committed, committed.len() as u64);
    }

    /// A random mix of actions and settings: per effector and per rule, checked = allowed + blocked; each rule
    /// checked exactly the actions that reached it (recounted from the verdicts); the effectors' blocks are the
    /// rules' blocks and the blocks recorded.
    #[test]
    fn counters_add_up(steps in proptest::collection::vec((0usize..7, 0u64..=1200, 0u64..=1000, any::<bool>()), 1..200)) {
        let mut guardrails = with("throttle.max_per_mille", 600);
        guardrails.set("reclaim.max_per_window", 3).unwrap();
        guardrails.set("pressure_cap.max_step_per_mille", 200).unwrap();
        guardrails.set("deadline.max_relax_per_mille", 300).unwrap();
        guardrails.set("generic.max_magnitude", 500).unwrap();
        let mut now = 0;
        let mut reached = [(0u64, 0u64); RULES];
        for (effector, magnitude, current, console) in steps {
            now += 7 * MS;
            let action = ProposedAction::new(Effector::ALL[effector], magnitude);
            let live = LiveState {
                throttle_per_mille: current,
                pressure_cap_per_mille: current,
                console_capability_held: console,
                ..deadline_thread(10 * MS)
            };
            let verdict = guardrails.check(&action, &live, now);
            for &rule in RuleId::judging(action.effector) {
                reached[rule.index()].0 += 1;
                if verdict.blocked_by() == Some(rule) {
                    reached[rule.index()].1 += 1;
                    break;
                }
            }
            if verdict == Verdict::Allowed {
                guardrails.commit(&action, now);
            }
        }
        let mut blocked = 0;
        for effector in Effector::ALL {
            let counters = guardrails.effector_counters(effector);
            prop_assert_eq!(counters.checked, counters.allowed + counters.blocked);
            prop_assert_eq!(counters.committed, counters.allowed);
            blocked += counters.blocked;
        }
        let by_rule: u64 = RuleId::ALL.iter().map(|&rule| {
            let counters = guardrails.rule_counters(rule);
            assert_eq!(counters.checked, counters.allowed + counters.blocked, "{}", rule);
            assert_eq!((counters.checked, counters.blocked), reached[rule.index()], "{}", rule);
            counters.blocked
        }).sum();
        prop_assert_eq!(blocked, by_rule);
        prop_assert_eq!(blocked, guardrails.blocks_total());
        prop_assert_eq!(guardrails.totals().blocked, blocked);
        prop_assert_eq!(guardrails.blocks().count() as u64, blocked.min(BLOCKS_KEPT as u64));
    }
}

#[test]
fn a_window_counts_commits_strictly_younger_than_it() {
    let mut guardrails = with("reclaim.max_per_window", 1);
    let live = LiveState::default();
    assert_eq!(guardrails.check(&reclaim(), &live, 0), Verdict::Allowed);
    guardrails.commit(&reclaim(), 0);
    assert_eq!(guardrails.check(&reclaim(), &live, 999_999_999).blocked_by(), Some(RuleId::ReclaimMaxPerWindow));
    assert_eq!(guardrails.check(&reclaim(), &live, 1_000_000_000), Verdict::Allowed);
    // A zero limit refuses everything; a check alone never fills the window.
    let mut none = with("reclaim.max_per_window", 0);
    assert_eq!(none.check(&reclaim(), &live, 0).blocked_by(), Some(RuleId::ReclaimMaxPerWindow));
    for _ in 0..5 {
        assert_eq!(guardrails.check(&reclaim(), &live, 1_000_000_000), Verdict::Allowed);
    }
    // Raising the limit or the window later is exact: the last 1000 commit times are kept.
    guardrails.set("reclaim.window_ms", 3_600_000).unwrap();
    assert_eq!(guardrails.check(&reclaim(), &live, 3_000_000_000).blocked_by(), Some(RuleId::ReclaimMaxPerWindow));
}

#[test]
fn rules_judge_only_their_effectors_actions() {
    // A throttle bound does not block a reclaim, even with a throttle in force above it.
    let mut guardrails = with("throttle.max_per_mille", 100);
    let live = LiveState { throttle_per_mille: 900, ..LiveState::default() };
    assert_eq!(guardrails.check(&reclaim(), &live, 0), Verdict::Allowed);
    assert_eq!(guardrails.rule_counters(RuleId::ThrottleMaxPerMille).checked, 0);
    assert_eq!(guardrails.rule_counters(RuleId::ReclaimMaxPerWindow).checked, 1);
    assert_eq!(guardrails.rule_counters(RuleId::ConsoleCapabilityHeld).checked, 1);
    // The console invariant judges every effector's actions.
    let no_console = LiveState { console_capability_held: false, ..LiveState::default() };
    for effector in Effector::ALL {
        let verdict = guardrails.check(&ProposedAction::new(effector, 1), &no_console, 0);
        assert_eq!(verdict.blocked_by(), Some(RuleId::ConsoleCapabilityHeld), "{effector:?}");
    }
    // Judged in order up to the first rule that blocks: a throttle above the share never reaches the step rule.
    let mut guardrails = with("throttle.max_per_mille", 300);
    guardrails.set("throttle.max_step_per_mille", 100).unwrap();
    let free = LiveState::default();
    assert_eq!(guardrails.check(&throttle(500), &free, 0).blocked_by(), Some(RuleId::ThrottleMaxPerMille));
    assert_eq!(guardrails.check(&throttle(250), &free, 0).blocked_by(), Some(RuleId::ThrottleMaxStepPerMille));
    assert_eq!(guardrails.check(&throttle(50), &free, 0), Verdict::Allowed);
    assert_eq!(guardrails.check(&reclaim(), &no_console, 0).blocked_by(), Some(RuleId::ConsoleCapabilityHeld));
    let counted = |rule| {
        let counters = guardrails.rule_counters(rule);
        (counters.checked, counters.allowed, counters.blocked)
    };
    assert_eq!(counted(RuleId::ThrottleMaxPerMille), (3, 2, 1));
    assert_eq!(counted(RuleId::ThrottleMaxStepPerMille), (2, 1, 1));
    assert_eq!(counted(RuleId::ThrottleMaxPerWindow), (1, 1, 0));
    assert_eq!(counted(RuleId::ReclaimMaxPerWindow), (1, 1, 0));
    assert_eq!(counted(RuleId::ConsoleCapabilityHeld), (2, 1, 1));
    // A relaxation with no deadline thread watched has nothing to bound.
    let relax = ProposedAction::new(Effector::DeadlineRelaxation, 1000);
    assert_eq!(guardrails.check(&relax, &LiveState::default(), 0), Verdict::Allowed);
}

#[test]
fn refused_settings_change_nothing_and_say_why() {
    let mut guardrails = Guardrails::new();
    guardrails.set("throttle.max_per_mille", 400).unwrap();
    let before: Vec<RuleView> = guardrails.rule_views().collect();
    let refusals = [
        (
            "throttle.max_share",
            300,
            "unknown-rule",
            "no rule named `throttle.max_share` (`safetyctl rules` lists the 23 rules)",
        ),
        ("", 1, "unknown-rule", "no rule named `` (`safetyctl rules` lists the 23 rules)"),
        (
            "throttle.max_per_mille",
            1001,
            "out-of-range",
            "throttle.max_per_mille takes 0 to 1000 per mille, not 1001; nothing changed",
        ),
        ("reclaim.window_ms", 0, "out-of-range", "reclaim.window_ms takes 1 to 3600000 ms, not 0; nothing changed"),
        (
            "reclaim.max_per_window",
            1001,
            "out-of-range",
            "reclaim.max_per_window takes 0 to 1000 actions, not 1001; nothing changed",
        ),
        (
            "deadline.max_per_mille_of_period",
            0,
            "out-of-range",
            "deadline.max_per_mille_of_period takes 1 to 10000 per mille of the period, not 0; nothing changed",
        ),
        (
            "console.capability_held",
            0,
            "fixed-rule",
            "console.capability_held is fixed and cannot be set; nothing changed",
        ),
        (
            "console.capability_held",
            1,
            "fixed-rule",
            "console.capability_held is fixed and cannot be set; nothing changed",
        ),
    ];
    for (id, value, code, message) in refusals {
        let error = guardrails.set(id, value).unwrap_err();
        assert_eq!((error.code(), alloc::format!("{error}").as_str()), (code, message));
        assert_eq!(serde_json::to_value(&error).unwrap()["code"], code);
    }
    assert_eq!(guardrails.rule_views().collect::<Vec<_>>(), before);
    assert_eq!(guardrails.rules().get(RuleId::ThrottleMaxPerMille), 400);
    assert_eq!(guardrails.set("throttle.max_per_mille", 0), Ok(400));
    assert_eq!(guardrails.set("throttle.max_per_mille", 1000), Ok(0));
}

#[test]
fn validate_reports_every_invariant_on_the_live_state() {
    let guardrails = with("throttle.max_per_mille", 300);
    let reports = guardrails.validate(&LiveState::default());
    let statuses: Vec<(RuleId, InvariantStatus)> = reports.iter().map(|report| (report.rule, report.status)).collect();
    assert_eq!(
        statuses,
        [
            (RuleId::ThrottleMaxPerMille, InvariantStatus::Held),
            (RuleId::DeadlineMaxPerMilleOfPeriod, InvariantStatus::NotApplicable),
            (RuleId::ConsoleCapabilityHeld, InvariantStatus::Held),
        ]
    );
    let broken = LiveState { throttle_per_mille: 500, console_capability_held: false, ..deadline_thread(25 * MS) };
    let reports = guardrails.validate(&broken);
    assert!(reports.iter().all(|report| report.status == InvariantStatus::Violated));
    assert_eq!(
        serde_json::to_value(&reports).unwrap(),
        json!([
            { "rule": "throttle.max_per_mille", "status": "violated", "value": 500, "limit": 300,
              "reason": "500 per mille is above throttle.max_per_mille = 300" },
            { "rule": "deadline.max_per_mille_of_period", "status": "violated", "value": 25_000_000, "limit": 20_000_000,
              "reason": "relative deadline 25000000 ns is beyond 20000000 ns, the smaller of deadline.max_per_mille_of_period = 2000 (20000000 ns of the 10000000 ns period) and the scheduler's bound 20000000 ns" },
            { "rule": "console.capability_held", "status": "violated", "value": 0, "limit": 1,
              "reason": "the console would not hold its capability (console.capability_held)" },
        ])
    );
    // validate counts nothing.
    assert_eq!(guardrails.totals(), EffectorCounters::default());
}

#[test]
fn the_memory_is_taken_when_made_and_never_grows() {
    let mut guardrails = with("generic.max_magnitude", 0);
    let capacities = Guardrails::capacities;
    let made = capacities(&guardrails);
    assert!(made.0.iter().all(|&capacity| capacity as u64 >= FREQUENCY_MAX_COUNT) && made.1 >= BLOCKS_KEPT);
    for at in 0..3_000u64 {
        for effector in Effector::ALL {
            let action = ProposedAction::new(effector, 1);
            if guardrails.check(&action, &LiveState::default(), at) == Verdict::Allowed {
                guardrails.commit(&action, at);
            }
        }
        // Now and then out of order.
        guardrails.commit(&reclaim(), at / 2);
    }
    assert!(guardrails.blocks_total() > BLOCKS_KEPT as u64);
    assert_eq!(capacities(&guardrails), made);
}

#[test]
fn the_block_trace_keeps_the_last_entries_in_order() {
    let mut guardrails = with("generic.max_magnitude", 0);
    for at in 0..(BLOCKS_KEPT as u64 + 5) {
        guardrails.check(&ProposedAction::generic("model.act", at + 1), &LiveState::default(), at);
    }
    let kept: Vec<u64> = guardrails.blocks().map(|entry| entry.at_ns).collect();
    assert_eq!(kept, (5..BLOCKS_KEPT as u64 + 5).collect::<Vec<_>>());
    assert_eq!(guardrails.blocks_total(), BLOCKS_KEPT as u64 + 5);
    assert!(guardrails.blocks().all(|entry| entry.action.name == "model.act"));
}

#[test]
fn the_state_after_an_action_is_what_the_effector_sets() {
    let live = deadline_thread(10 * MS);
    assert_eq!(live.after(&throttle(250)).throttle_per_mille, 250);
    assert_eq!(live.after(&ProposedAction::new(Effector::PressureCap, 700)).pressure_cap_per_mille, 700);
    assert_eq!(live.after(&ProposedAction::new(Effector::OutputRateLimit, 100)).output_rate_lines_per_second, 100);
    let relaxed = live.after(&ProposedAction::new(Effector::DeadlineRelaxation, 250)).deadline.unwrap();
    assert_eq!(relaxed.deadline_ns, 12_500_000);
    assert_eq!(live.after(&reclaim()), live);
    assert_eq!(relaxed_deadline_ns(u64::MAX, 1), u64::MAX);
    assert_eq!(relaxed_deadline_ns(u64::MAX, u64::MAX), u64::MAX);
}
