//! The lifecycle state machine: every legal transition and every refusal, with nothing changed by a refusal.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

fn model(name: &str, minor: u32) -> ModelId {
    ModelId { name: String::from(name), version: Version { major: 1, minor, patch: 0 } }
}

fn moves(made: &[Transition]) -> Vec<(String, Stage, Stage, TransitionKind)> {
    made.iter().map(|t| (alloc::format!("{}", t.subject), t.from, t.to, t.kind)).collect()
}

/// The state a refusal must leave unchanged.
fn snapshot(lifecycle: &Lifecycle) -> (Vec<(ModelId, Stage)>, Vec<ModelId>, u64) {
    (lifecycle.subjects().to_vec(), lifecycle.previous_production().to_vec(), lifecycle.transitions())
}

#[test]
fn starts_with_the_heuristic_in_production() {
    let lifecycle = Lifecycle::new();
    assert_eq!(lifecycle.production(), &heuristic());
    assert_eq!(alloc::format!("{}", heuristic()), "heuristic@0.0.0");
    assert_eq!(lifecycle.stage(&model("a", 0)), Stage::Registered);
    assert_eq!(lifecycle.candidate(), None);
    assert_eq!(lifecycle.transitions(), 0);
}

#[test]
fn the_full_path_with_passing_reports() {
    let mut lifecycle = Lifecycle::new();
    let a = model("a", 0);
    assert_eq!(
        moves(&lifecycle.promote(&a, false, false, 10).unwrap()),
        [(String::from("a@1.0.0"), Stage::Registered, Stage::Shadow, TransitionKind::Promote)]
    );
    assert_eq!(lifecycle.candidate(), Some((&a, Stage::Shadow)));
    assert_eq!(
        moves(&lifecycle.promote(&a, true, false, 20).unwrap()),
        [(String::from("a@1.0.0"), Stage::Shadow, Stage::Canary, TransitionKind::Promote)]
    );
    assert_eq!(
        moves(&lifecycle.promote(&a, true, false, 30).unwrap()),
        [
            (String::from("a@1.0.0"), Stage::Canary, Stage::Production, TransitionKind::Promote),
            (String::from("heuristic@0.0.0"), Stage::Production, Stage::Retired, TransitionKind::Promote),
        ]
    );
    assert_eq!(lifecycle.production(), &a);
    assert_eq!(lifecycle.stage(&heuristic()), Stage::Retired);
    assert_eq!(lifecycle.previous_production(), [heuristic()]);
    assert_eq!(lifecycle.candidate(), None);
    assert_eq!(lifecycle.transitions(), 4);
    let times: Vec<(u64, u64)> = lifecycle.history().iter().map(|t| (t.sequence, t.time_ns)).collect();
    assert_eq!(times, [(0, 10), (1, 20), (2, 30), (3, 30)]);
}

#[test]
fn rollback_restores_the_previous_production_version_in_one_call() {
    let mut lifecycle = Lifecycle::new();
    let (a, b) = (model("a", 0), model("b", 0));
    for subject in [&a, &b] {
        for _ in 0..3 {
            lifecycle.promote(subject, true, false, 1).unwrap();
        }
    }
    assert_eq!(lifecycle.production(), &b);
    assert_eq!(lifecycle.previous_production(), [heuristic(), a.clone()]);
    assert_eq!(
        moves(&lifecycle.rollback(5).unwrap()),
        [
            (String::from("a@1.0.0"), Stage::Retired, Stage::Production, TransitionKind::Rollback),
            (String::from("b@1.0.0"), Stage::Production, Stage::Retired, TransitionKind::Rollback),
        ]
    );
    assert_eq!(lifecycle.production(), &a);
    lifecycle.rollback(6).unwrap();
    assert_eq!(lifecycle.production(), &heuristic());
    assert_eq!(lifecycle.stage(&a), Stage::Retired);
    let before = snapshot(&lifecycle);
    assert_eq!(lifecycle.rollback(7), Err(LifecycleError::NoPreviousProduction));
    assert_eq!(snapshot(&lifecycle), before);
}

#[test]
fn promotion_to_canary_or_production_needs_a_report_or_force() {
    let mut lifecycle = Lifecycle::new();
    let a = model("a", 0);
    lifecycle.promote(&a, false, false, 1).unwrap();
    let before = snapshot(&lifecycle);
    let refused = lifecycle.promote(&a, false, false, 2).unwrap_err();
    assert_eq!(refused, LifecycleError::NoPassingShadowReport { subject: a.clone(), to: Stage::Canary });
    assert_eq!(refused.code(), "no-passing-shadow-report");
    assert_eq!(snapshot(&lifecycle), before);
    assert_eq!(lifecycle.promote(&a, false, true, 3).unwrap()[0].kind, TransitionKind::ForcePromote);
    let refused = lifecycle.promote(&a, false, false, 4).unwrap_err();
    assert_eq!(refused, LifecycleError::NoPassingShadowReport { subject: a.clone(), to: Stage::Production });
    // Force with a passing report is an ordinary promotion: nothing was forced.
    let made = lifecycle.promote(&a, true, true, 5).unwrap();
    assert_eq!(made.iter().map(|t| t.kind).collect::<Vec<_>>(), [TransitionKind::Promote; 2]);
}

#[test]
fn entering_shadow_needs_no_report() {
    let mut lifecycle = Lifecycle::new();
    assert_eq!(lifecycle.promote(&model("a", 0), false, false, 1).unwrap()[0].kind, TransitionKind::Promote);
}

#[test]
fn one_candidate_at_a_time() {
    let mut lifecycle = Lifecycle::new();
    let (a, b) = (model("a", 0), model("b", 0));
    lifecycle.promote(&a, false, false, 1).unwrap();
    for stage in [Stage::Shadow, Stage::Canary] {
        let before = snapshot(&lifecycle);
        let refused = lifecycle.promote(&b, true, true, 2).unwrap_err();
        assert_eq!(refused, LifecycleError::CandidateBusy { subject: b.clone(), candidate: a.clone(), stage });
        assert_eq!(refused.code(), "candidate-busy");
        assert_eq!(snapshot(&lifecycle), before);
        if stage == Stage::Shadow {
            lifecycle.promote(&a, true, false, 3).unwrap();
        }
    }
    lifecycle.promote(&a, true, false, 4).unwrap();
    assert_eq!(lifecycle.promote(&b, false, false, 5).unwrap()[0].to, Stage::Shadow);
}

#[test]
fn demotion_goes_one_stage_back() {
    let mut lifecycle = Lifecycle::new();
    let a = model("a", 0);
    lifecycle.promote(&a, false, false, 1).unwrap();
    lifecycle.promote(&a, true, false, 1).unwrap();
    let steps: Vec<(Stage, Stage)> = (0..3).map(|_| lifecycle.demote(&a, 2).map(|t| (t.from, t.to)).unwrap()).collect();
    assert_eq!(
        steps,
        [(Stage::Canary, Stage::Shadow), (Stage::Shadow, Stage::Registered), (Stage::Registered, Stage::Retired)]
    );
    assert!(lifecycle.history().iter().skip(2).all(|t| t.kind == TransitionKind::Demote));
}

#[test]
fn refusals_change_nothing() {
    let mut lifecycle = Lifecycle::new();
    let (a, r) = (model("a", 0), model("r", 0));
    lifecycle.demote(&r, 1).unwrap();
    let before = snapshot(&lifecycle);
    let cases = [
        (lifecycle.clone().promote(&heuristic(), true, true, 2).unwrap_err(), "already-production"),
        (lifecycle.clone().demote(&heuristic(), 2).unwrap_err(), "demote-production"),
        (lifecycle.clone().promote(&r, true, true, 2).unwrap_err(), "retired"),
        (lifecycle.clone().demote(&r, 2).unwrap_err(), "retired"),
        (lifecycle.clone().rollback(2).unwrap_err(), "no-previous-production"),
        (lifecycle.clone().canary_rollback(&a, 2).unwrap_err(), "not-in-canary"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error}");
    }
    assert_eq!(lifecycle.promote(&heuristic(), true, true, 2), Err(LifecycleError::AlreadyProduction(heuristic())));
    assert_eq!(lifecycle.demote(&r, 2), Err(LifecycleError::Retired(r.clone())));
    assert_eq!(snapshot(&lifecycle), before);
}

#[test]
fn canary_rollback_sends_the_candidate_back_to_registered() {
    let mut lifecycle = Lifecycle::new();
    let a = model("a", 0);
    lifecycle.promote(&a, false, false, 1).unwrap();
    assert_eq!(lifecycle.canary_rollback(&a, 2), Err(LifecycleError::NotInCanary(a.clone())));
    lifecycle.promote(&a, true, false, 3).unwrap();
    let made = lifecycle.canary_rollback(&a, 4).unwrap();
    assert_eq!((made.from, made.to, made.kind), (Stage::Canary, Stage::Registered, TransitionKind::CanaryRollback));
    assert_eq!(lifecycle.candidate(), None);
    assert_eq!(lifecycle.production(), &heuristic());
}

#[test]
fn history_keeps_the_last_transitions() {
    let mut lifecycle = Lifecycle::new();
    let a = model("a", 0);
    for time in 0..(HISTORY_KEPT as u64 + 10) {
        if time % 2 == 0 {
            lifecycle.promote(&a, false, false, time).unwrap();
        } else {
            lifecycle.demote(&a, time).unwrap();
        }
    }
    assert_eq!(lifecycle.history().len(), HISTORY_KEPT);
    assert_eq!(lifecycle.history()[0].sequence, 10);
    assert_eq!(lifecycle.transitions(), HISTORY_KEPT as u64 + 10);
}
