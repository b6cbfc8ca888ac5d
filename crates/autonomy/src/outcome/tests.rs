//! Outcome tracking tests: the horizon edges, matching failures, a full table, and the success rate.

use super::*;

const HORIZON_NS: u64 = 500;

fn collect<const N: usize>(
    tracker: &mut InterventionTracker<N>,
    metrics: &AutonomyMetrics,
    now_ns: u64,
    failure: Option<ObservedFailure>,
) -> Vec<(u64, InterventionOutcome)> {
    let mut resolved = Vec::new();
    tracker.resolve(metrics, now_ns, failure, |done| resolved.push((done.intervention.tag, done.outcome)));
    resolved
}

#[test]
fn success_only_after_the_horizon_passed() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<4> = InterventionTracker::new();
    tracker.track(&metrics, 7, InterventionKind::ProactiveCompaction, Prediction::Oom, 1_000, HORIZON_NS).unwrap();
    assert_eq!(collect(&mut tracker, &metrics, 1_200, None), vec![]);
    // The deadline (1,500) is inside the horizon: not yet decided.
    assert_eq!(collect(&mut tracker, &metrics, 1_500, None), vec![]);
    assert_eq!(metrics.snapshot().interventions_pending, 1);
    assert_eq!(collect(&mut tracker, &metrics, 1_501, None), vec![(7, InterventionOutcome::Succeeded)]);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.interventions_succeeded, snapshot.interventions_failed), (1, 0));
    assert_eq!((snapshot.oom_preventions, snapshot.interventions_pending), (1, 0));
    assert_eq!(snapshot.success_rate_per_mille, Some(1000));
    assert_eq!(tracker.pending(), 0);
}

#[test]
fn failure_inside_the_horizon_including_its_last_instant() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<4> = InterventionTracker::new();
    tracker.track(&metrics, 1, InterventionKind::AllocationThrottle, Prediction::Oom, 1_000, HORIZON_NS).unwrap();
    tracker.track(&metrics, 2, InterventionKind::PriorityBoost, Prediction::DeadlineMiss, 1_000, HORIZON_NS).unwrap();
    // An OOM at the deadline fails only the OOM prediction.
    assert_eq!(
        collect(&mut tracker, &metrics, 1_500, Some(ObservedFailure::Oom)),
        vec![(1, InterventionOutcome::Failed)]
    );
    // An OOM after the deadline is outside every horizon: the deadline-miss prediction succeeds.
    assert_eq!(
        collect(&mut tracker, &metrics, 1_600, Some(ObservedFailure::Oom)),
        vec![(2, InterventionOutcome::Succeeded)]
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.interventions_succeeded, snapshot.interventions_failed), (1, 1));
    assert_eq!(snapshot.oom_preventions, 0);
    assert_eq!(snapshot.success_rate_per_mille, Some(500));
}

#[test]
fn pressure_prediction_needs_pressure_strictly_above_the_bound() {
    let prediction = Prediction::PressureAbove { per_mille: 900 };
    assert!(!prediction.is_met_by(ObservedFailure::Pressure { per_mille: 900 }));
    assert!(prediction.is_met_by(ObservedFailure::Pressure { per_mille: 901 }));
    assert!(!prediction.is_met_by(ObservedFailure::Oom));
    assert!(!Prediction::Oom.is_met_by(ObservedFailure::Pressure { per_mille: 1000 }));

    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<2> = InterventionTracker::new();
    tracker.track(&metrics, 3, InterventionKind::StrategySwitch, prediction, 0, HORIZON_NS).unwrap();
    let quiet = Some(ObservedFailure::Pressure { per_mille: 900 });
    assert_eq!(collect(&mut tracker, &metrics, 100, quiet), vec![]);
    let high = Some(ObservedFailure::Pressure { per_mille: 950 });
    assert_eq!(collect(&mut tracker, &metrics, 200, high), vec![(3, InterventionOutcome::Failed)]);
}

#[test]
fn failure_before_the_intervention_does_not_count_against_it() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<2> = InterventionTracker::new();
    tracker.track(&metrics, 4, InterventionKind::ProactiveCompaction, Prediction::Oom, 1_000, HORIZON_NS).unwrap();
    assert_eq!(collect(&mut tracker, &metrics, 999, Some(ObservedFailure::Oom)), vec![]);
    assert_eq!(tracker.pending(), 1);
}

#[test]
fn full_table_rejects_and_counts_untracked() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<2> = InterventionTracker::new();
    for tag in 0..2 {
        tracker.track(&metrics, tag, InterventionKind::ProactiveCompaction, Prediction::Oom, 0, HORIZON_NS).unwrap();
    }
    assert_eq!(
        tracker.track(&metrics, 2, InterventionKind::ProactiveCompaction, Prediction::Oom, 0, HORIZON_NS),
        Err(TrackerFull { capacity: 2 })
    );
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.interventions_pending, snapshot.interventions_untracked), (2, 1));
    // Resolving frees the slots again.
    let counts = tracker.resolve(&metrics, HORIZON_NS + 1, None, |_| {});
    assert_eq!(counts, ResolveCounts { succeeded: 2, failed: 0 });
    assert_eq!(tracker.track(&metrics, 3, InterventionKind::ProactiveCompaction, Prediction::Oom, 600, 1), Ok(()));
}

#[test]
fn clear_drops_pending_without_an_outcome() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<3> = InterventionTracker::new();
    tracker.track(&metrics, 0, InterventionKind::OutputRateLimit, Prediction::DeadlineMiss, 0, 10).unwrap();
    tracker.track(&metrics, 1, InterventionKind::OutputRateLimit, Prediction::DeadlineMiss, 0, 10).unwrap();
    let mut dropped = Vec::new();
    assert_eq!(tracker.clear(&metrics, |intervention| dropped.push(intervention.tag)), 2);
    assert_eq!(dropped, [0, 1]);
    let snapshot = metrics.snapshot();
    assert_eq!(
        (snapshot.interventions_pending, snapshot.interventions_succeeded, snapshot.interventions_failed),
        (0, 0, 0)
    );
    assert_eq!(snapshot.success_rate_per_mille, None);
}

#[test]
fn horizon_end_saturates() {
    let metrics = AutonomyMetrics::new();
    let mut tracker: InterventionTracker<1> = InterventionTracker::new();
    tracker.track(&metrics, 9, InterventionKind::PriorityBoost, Prediction::DeadlineMiss, u64::MAX - 1, 10).unwrap();
    assert_eq!(collect(&mut tracker, &metrics, u64::MAX, None), vec![]);
    assert_eq!(
        collect(&mut tracker, &metrics, u64::MAX, Some(ObservedFailure::DeadlineMiss)),
        vec![(9, InterventionOutcome::Failed)]
    );
}
