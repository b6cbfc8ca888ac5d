//! Autonomy counters: what the meta-agent did and how its interventions turned out, as atomics.
//!
//! Counters follow seed 000 Phase 2 (`AutonomyMetrics`), widened to `u64`
//! (aarch64 has 64-bit atomics) and with the success rate derived from
//! resolved outcomes instead of being stored. Every counter is updated with
//! `Relaxed` ordering: each is an independent tally, nothing else is
//! published through them. A [`AutonomyMetrics::snapshot`] reads them one by
//! one, so a snapshot taken while the agent runs may mix two moments; take
//! it after a run stops when the figures must add up exactly.

use crate::InterventionOutcome;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An action the meta-agent took through a subsystem's interface; each one adds to `total_interventions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionKind {
    /// Reclaim or compaction started before memory ran out.
    ProactiveCompaction,
    /// Allocation requests deferred to slow down memory growth.
    AllocationThrottle,
    /// Memory strategy changed on the agent's request.
    StrategySwitch,
    /// Deadline of best-effort work relaxed.
    DeadlineAdjustment,
    /// Priority of best-effort work raised.
    PriorityBoost,
    /// Work moved between queues or threads (no directive issues it yet; kept for the seed's breakdown).
    WorkloadRebalancing,
    /// Output rate limited to drain a deep command queue.
    OutputRateLimit,
}

/// Something the agent did that is not itself an intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutonomyEvent {
    /// A decision was made with a pressure trend prediction in hand.
    PressurePrediction,
    /// The driving policy updated its parameters (learning step).
    PolicyUpdate,
    /// An acted directive was chosen by exploring.
    ExplorationAction,
    /// An acted directive was chosen by exploiting what the policy learned.
    ExploitationAction,
    /// A decision with a directive was held: its confidence was below the threshold.
    DecisionHeld,
    /// A decision confident enough to act on was blocked by a guardrail rule and not carried out.
    DecisionBlocked,
}

/// The autonomy counters; `const` constructible so it can live in a `static`.
#[derive(Debug, Default)]
pub struct AutonomyMetrics {
    proactive_compactions: AtomicU64,
    allocation_throttles: AtomicU64,
    strategy_switches: AtomicU64,
    deadline_adjustments: AtomicU64,
    priority_boosts: AtomicU64,
    workload_rebalancing: AtomicU64,
    output_rate_limits: AtomicU64,
    total_interventions: AtomicU64,
    pressure_predictions: AtomicU64,
    policy_updates: AtomicU64,
    exploration_actions: AtomicU64,
    exploitation_actions: AtomicU64,
    decisions_held: AtomicU64,
    decisions_blocked: AtomicU64,
    oom_preventions: AtomicU64,
    interventions_succeeded: AtomicU64,
    interventions_failed: AtomicU64,
    interventions_pending: AtomicU64,
    interventions_untracked: AtomicU64,
}

/// Plain copy of the counters, for reports and JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AutonomySnapshot {
    /// Proactive reclaims and compactions.
    pub proactive_compactions: u64,
    /// Allocation throttles.
    pub allocation_throttles: u64,
    /// Strategy switches the agent requested and the strategy controller accepted.
    pub strategy_switches: u64,
    /// Best-effort deadline adjustments.
    pub deadline_adjustments: u64,
    /// Best-effort priority boosts.
    pub priority_boosts: u64,
    /// Workload rebalancings.
    pub workload_rebalancing: u64,
    /// Output rate limits.
    pub output_rate_limits: u64,
    /// Sum of all interventions above.
    pub total_interventions: u64,
    /// Decisions made with a pressure trend prediction.
    pub pressure_predictions: u64,
    /// Policy parameter updates.
    pub policy_updates: u64,
    /// Acted directives chosen by exploration.
    pub exploration_actions: u64,
    /// Acted directives chosen by exploitation.
    pub exploitation_actions: u64,
    /// Decisions with a directive held because their confidence was below the threshold.
    pub decisions_held: u64,
    /// Decisions confident enough to act on that a guardrail rule blocked (not carried out, not counted as
    /// interventions).
    pub decisions_blocked: u64,
    /// Interventions that predicted an OOM and whose horizon then passed without one (measured, see
    /// [`crate::InterventionTracker`]).
    pub oom_preventions: u64,
    /// Tracked interventions whose predicted failure did not happen within their horizon.
    pub interventions_succeeded: u64,
    /// Tracked interventions whose predicted failure happened within their horizon.
    pub interventions_failed: u64,
    /// Tracked interventions whose horizon has not passed yet.
    pub interventions_pending: u64,
    /// Interventions with a prediction that could not be tracked because the pending table was full.
    pub interventions_untracked: u64,
    /// `1000 * succeeded / (succeeded + failed)`, rounded down; `None` until an intervention is resolved.
    pub success_rate_per_mille: Option<u64>,
}

impl AutonomySnapshot {
    /// The counters of two periods together (e.g. the runs of a comparison); the success rate is recomputed
    /// from the summed outcomes.
    pub fn add(&self, other: &AutonomySnapshot) -> AutonomySnapshot {
        let succeeded = self.interventions_succeeded + other.interventions_succeeded;
        let failed = self.interventions_failed + other.interventions_failed;
        AutonomySnapshot {
            proactive_compactions: self.proactive_compactions + other.proactive_compactions,
            allocation_throttles: self.allocation_throttles + other.allocation_throttles,
            strategy_switches: self.strategy_switches + other.strategy_switches,
            deadline_adjustments: self.deadline_adjustments + other.deadline_adjustments,
            priority_boosts: self.priority_boosts + other.priority_boosts,
            workload_rebalancing: self.workload_rebalancing + other.workload_rebalancing,
            output_rate_limits: self.output_rate_limits + other.output_rate_limits,
            total_interventions: self.total_interventions + other.total_interventions,
            pressure_predictions: self.pressure_predictions + other.pressure_predictions,
            policy_updates: self.policy_updates + other.policy_updates,
            exploration_actions: self.exploration_actions + other.exploration_actions,
            exploitation_actions: self.exploitation_actions + other.exploitation_actions,
            decisions_held: self.decisions_held + other.decisions_held,
            decisions_blocked: self.decisions_blocked + other.decisions_blocked,
            oom_preventions: self.oom_preventions + other.oom_preventions,
            interventions_succeeded: succeeded,
            interventions_failed: failed,
            interventions_pending: self.interventions_pending + other.interventions_pending,
            interventions_untracked: self.interventions_untracked + other.interventions_untracked,
            success_rate_per_mille: (succeeded as u128 * 1000)
                .checked_div((succeeded + failed) as u128)
                .map(|rate| rate as u64),
        }
    }
}

impl AutonomyMetrics {
    /// All counters at zero.
    pub const fn new() -> Self {
        AutonomyMetrics {
            proactive_compactions: AtomicU64::new(0),
            allocation_throttles: AtomicU64::new(0),
            strategy_switches: AtomicU64::new(0),
            deadline_adjustments: AtomicU64::new(0),
            priority_boosts: AtomicU64::new(0),
            workload_rebalancing: AtomicU64::new(0),
            output_rate_limits: AtomicU64::new(0),
            total_interventions: AtomicU64::new(0),
            pressure_predictions: AtomicU64::new(0),
            policy_updates: AtomicU64::new(0),
            exploration_actions: AtomicU64::new(0),
            exploitation_actions: AtomicU64::new(0),
            decisions_held: AtomicU64::new(0),
            decisions_blocked: AtomicU64::new(0),
            oom_preventions: AtomicU64::new(0),
            interventions_succeeded: AtomicU64::new(0),
            interventions_failed: AtomicU64::new(0),
            interventions_pending: AtomicU64::new(0),
            interventions_untracked: AtomicU64::new(0),
        }
    }

    /// Counts one intervention of `kind` (and one in the total).
    pub fn record_intervention(&self, kind: InterventionKind) {
        let counter = match kind {
            InterventionKind::ProactiveCompaction => &self.proactive_compactions,
            InterventionKind::AllocationThrottle => &self.allocation_throttles,
            InterventionKind::StrategySwitch => &self.strategy_switches,
            InterventionKind::DeadlineAdjustment => &self.deadline_adjustments,
            InterventionKind::PriorityBoost => &self.priority_boosts,
            InterventionKind::WorkloadRebalancing => &self.workload_rebalancing,
            InterventionKind::OutputRateLimit => &self.output_rate_limits,
        };
        counter.fetch_add(1, Relaxed);
        self.total_interventions.fetch_add(1, Relaxed);
    }

    /// Counts one event that is not an intervention.
    pub fn record_event(&self, event: AutonomyEvent) {
        let counter = match event {
            AutonomyEvent::PressurePrediction => &self.pressure_predictions,
            AutonomyEvent::PolicyUpdate => &self.policy_updates,
            AutonomyEvent::ExplorationAction => &self.exploration_actions,
            AutonomyEvent::ExploitationAction => &self.exploitation_actions,
            AutonomyEvent::DecisionHeld => &self.decisions_held,
            AutonomyEvent::DecisionBlocked => &self.decisions_blocked,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// An intervention entered the pending table (only the tracker records outcomes, so they stay measured).
    pub(crate) fn record_tracked(&self) {
        self.interventions_pending.fetch_add(1, Relaxed);
    }

    /// An intervention with a prediction found the pending table full.
    pub(crate) fn record_untracked(&self) {
        self.interventions_untracked.fetch_add(1, Relaxed);
    }

    /// A pending intervention was resolved (or discarded, when `outcome` is `None`).
    pub(crate) fn record_resolved(&self, outcome: Option<InterventionOutcome>, predicted_oom: bool) {
        // Saturating: a reset() while interventions were pending must not wrap the gauge.
        let _ = self.interventions_pending.fetch_update(Relaxed, Relaxed, |pending| Some(pending.saturating_sub(1)));
        match outcome {
            Some(InterventionOutcome::Succeeded) => {
                self.interventions_succeeded.fetch_add(1, Relaxed);
                if predicted_oom {
                    self.oom_preventions.fetch_add(1, Relaxed);
                }
            }
            Some(InterventionOutcome::Failed) => {
                self.interventions_failed.fetch_add(1, Relaxed);
            }
            None => {}
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> AutonomySnapshot {
        let succeeded = self.interventions_succeeded.load(Relaxed);
        let failed = self.interventions_failed.load(Relaxed);
        let resolved = succeeded.saturating_add(failed);
        AutonomySnapshot {
            proactive_compactions: self.proactive_compactions.load(Relaxed),
            allocation_throttles: self.allocation_throttles.load(Relaxed),
            strategy_switches: self.strategy_switches.load(Relaxed),
            deadline_adjustments: self.deadline_adjustments.load(Relaxed),
            priority_boosts: self.priority_boosts.load(Relaxed),
            workload_rebalancing: self.workload_rebalancing.load(Relaxed),
            output_rate_limits: self.output_rate_limits.load(Relaxed),
            total_interventions: self.total_interventions.load(Relaxed),
            pressure_predictions: self.pressure_predictions.load(Relaxed),
            policy_updates: self.policy_updates.load(Relaxed),
            exploration_actions: self.exploration_actions.load(Relaxed),
            exploitation_actions: self.exploitation_actions.load(Relaxed),
            decisions_held: self.decisions_held.load(Relaxed),
            decisions_blocked: self.decisions_blocked.load(Relaxed),
            oom_preventions: self.oom_preventions.load(Relaxed),
            interventions_succeeded: succeeded,
            interventions_failed: failed,
            interventions_pending: self.interventions_pending.load(Relaxed),
            interventions_untracked: self.interventions_untracked.load(Relaxed),
            success_rate_per_mille: (succeeded as u128 * 1000).checked_div(resolved as u128).map(|rate| rate as u64),
        }
    }

    /// Sets every counter to zero (between runs; clear the intervention tracker at the same time, or its
    /// pending entries will later resolve into the new run's figures).
    pub fn reset(&self) {
        for counter in [
            &self.proactive_compactions,
            &self.allocation_throttles,
            &self.strategy_switches,
            &self.deadline_adjustments,
            &self.priority_boosts,
            &self.workload_rebalancing,
            &self.output_rate_limits,
            &self.total_interventions,
            &self.pressure_predictions,
            &self.policy_updates,
            &self.exploration_actions,
            &self.exploitation_actions,
            &self.decisions_held,
            &self.decisions_blocked,
            &self.oom_preventions,
            &self.interventions_succeeded,
            &self.interventions_failed,
            &self.interventions_pending,
            &self.interventions_untracked,
        ] {
            counter.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static METRICS: AutonomyMetrics = AutonomyMetrics::new();

    #[test]
    fn interventions_add_to_their_kind_and_the_total() {
        let metrics = AutonomyMetrics::new();
        metrics.record_intervention(InterventionKind::ProactiveCompaction);
        metrics.record_intervention(InterventionKind::ProactiveCompaction);
        metrics.record_intervention(InterventionKind::PriorityBoost);
        metrics.record_event(AutonomyEvent::PressurePrediction);
        metrics.record_event(AutonomyEvent::ExplorationAction);
        metrics.record_event(AutonomyEvent::DecisionBlocked);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.proactive_compactions, 2);
        assert_eq!(snapshot.priority_boosts, 1);
        assert_eq!(snapshot.total_interventions, 3);
        assert_eq!(snapshot.pressure_predictions, 1);
        assert_eq!(snapshot.exploration_actions, 1);
        assert_eq!(snapshot.exploitation_actions, 0);
        assert_eq!((snapshot.decisions_blocked, snapshot.decisions_held), (1, 0));
        assert_eq!(snapshot.success_rate_per_mille, None);
    }

    #[test]
    fn success_rate_counts_resolved_interventions_only() {
        let metrics = AutonomyMetrics::new();
        for _ in 0..4 {
            metrics.record_tracked();
        }
        metrics.record_resolved(Some(InterventionOutcome::Succeeded), true);
        metrics.record_resolved(Some(InterventionOutcome::Succeeded), false);
        metrics.record_resolved(Some(InterventionOutcome::Failed), true);
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.interventions_succeeded, snapshot.interventions_failed), (2, 1));
        assert_eq!(snapshot.interventions_pending, 1);
        assert_eq!(snapshot.oom_preventions, 1);
        assert_eq!(snapshot.success_rate_per_mille, Some(666));
    }

    #[test]
    fn reset_zeroes_everything_and_the_pending_gauge_never_wraps() {
        METRICS.record_intervention(InterventionKind::OutputRateLimit);
        METRICS.record_tracked();
        METRICS.reset();
        assert_eq!(METRICS.snapshot(), AutonomySnapshot::default());
        METRICS.record_resolved(None, false);
        assert_eq!(METRICS.snapshot().interventions_pending, 0);
    }

    #[test]
    fn snapshot_serializes_null_rate() {
        let json = serde_json::to_value(AutonomyMetrics::new().snapshot()).unwrap();
        assert_eq!(json["total_interventions"], 0);
        assert!(json["success_rate_per_mille"].is_null());
    }

    #[test]
    fn snapshots_add_up_and_the_rate_is_recomputed() {
        let a = AutonomySnapshot {
            total_interventions: 3,
            strategy_switches: 1,
            interventions_succeeded: 1,
            interventions_failed: 1,
            success_rate_per_mille: Some(500),
            ..AutonomySnapshot::default()
        };
        let b = AutonomySnapshot {
            total_interventions: 2,
            strategy_switches: 2,
            interventions_succeeded: 2,
            success_rate_per_mille: Some(1000),
            ..AutonomySnapshot::default()
        };
        let sum = a.add(&b);
        assert_eq!((sum.total_interventions, sum.strategy_switches), (5, 3));
        assert_eq!(sum.success_rate_per_mille, Some(750));
        assert_eq!(AutonomySnapshot::default().add(&AutonomySnapshot::default()).success_rate_per_mille, None);
    }
}
