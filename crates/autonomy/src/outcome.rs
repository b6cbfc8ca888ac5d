//! Intervention outcomes: an intervention predicts a failure within a horizon; the horizon decides.
//!
//! When the agent acts it states what it expects would otherwise go wrong
//! ("an OOM within 200 ms", "pressure above 900 ‰ within 200 ms"). The
//! intervention is a success only when its horizon passes without that
//! failure being observed, and a failure when the failure is observed inside
//! the horizon. This measures whether the predicted failure happened, not
//! whether the intervention caused its absence; the paired off/on comparison
//! is the causal evidence.
//!
//! The pending table has a fixed capacity and never allocates. When it is
//! full, a new intervention is not tracked: [`InterventionTracker::track`]
//! returns [`TrackerFull`], the intervention still counts as an intervention,
//! and `interventions_untracked` counts it so the success rate's coverage is
//! visible.

use crate::{AutonomyMetrics, InterventionKind};

/// The failure an intervention expects to prevent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prediction {
    /// An out-of-memory event.
    Oom,
    /// Memory pressure strictly above `per_mille`.
    PressureAbove {
        /// Pressure bound in parts per thousand.
        per_mille: u16,
    },
    /// A scheduler deadline miss.
    DeadlineMiss,
    /// Best-effort (command) latency strictly above `ns`.
    LatencyAbove {
        /// Latency bound, ns.
        ns: u64,
    },
}

/// A failure observed by the caller at the time passed to [`InterventionTracker::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObservedFailure {
    /// An out-of-memory event happened.
    Oom,
    /// Memory pressure was measured at `per_mille`.
    Pressure {
        /// Measured pressure in parts per thousand.
        per_mille: u16,
    },
    /// A scheduler deadline was missed.
    DeadlineMiss,
    /// The longest command latency was measured at `ns`.
    Latency {
        /// Measured latency, ns.
        ns: u64,
    },
}

impl Prediction {
    /// Whether `failure` is the failure this prediction names.
    pub fn is_met_by(&self, failure: ObservedFailure) -> bool {
        match (self, failure) {
            (Prediction::Oom, ObservedFailure::Oom) => true,
            (Prediction::PressureAbove { per_mille: bound }, ObservedFailure::Pressure { per_mille }) => {
                per_mille > *bound
            }
            (Prediction::DeadlineMiss, ObservedFailure::DeadlineMiss) => true,
            (Prediction::LatencyAbove { ns: bound }, ObservedFailure::Latency { ns }) => ns > *bound,
            _ => false,
        }
    }
}

/// How a tracked intervention turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionOutcome {
    /// The horizon passed without the predicted failure.
    Succeeded,
    /// The predicted failure was observed inside the horizon.
    Failed,
}

/// An intervention waiting for its horizon to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PendingIntervention {
    /// Caller's identifier (the meta-agent uses the decision id).
    pub tag: u64,
    /// What was done.
    pub kind: InterventionKind,
    /// What it expects to prevent.
    pub prediction: Prediction,
    /// When it was recorded.
    pub recorded_at_ns: u64,
    /// End of the horizon (inclusive): `recorded_at_ns + horizon_ns`, saturating.
    pub deadline_ns: u64,
}

/// A pending intervention with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedIntervention {
    /// The intervention as recorded.
    pub intervention: PendingIntervention,
    /// How it turned out.
    pub outcome: InterventionOutcome,
    /// The `now_ns` of the resolve call that decided it.
    pub resolved_at_ns: u64,
}

/// The pending table was full; the intervention is not tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrackerFull {
    /// Capacity of the table.
    pub capacity: usize,
}

/// Outcomes decided by one [`InterventionTracker::resolve`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolveCounts {
    /// Interventions resolved as succeeded.
    pub succeeded: u32,
    /// Interventions resolved as failed.
    pub failed: u32,
}

/// Fixed table of up to `N` pending interventions.
#[derive(Debug, Clone)]
pub struct InterventionTracker<const N: usize> {
    slots: [Option<PendingIntervention>; N],
}

impl<const N: usize> Default for InterventionTracker<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> InterventionTracker<N> {
    /// An empty table.
    pub const fn new() -> Self {
        InterventionTracker { slots: [None; N] }
    }

    /// Interventions waiting for their horizon.
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }

    /// Starts tracking an intervention made at `now_ns` that predicts `prediction` within `horizon_ns`.
    ///
    /// The intervention itself is counted by the caller
    /// ([`AutonomyMetrics::record_intervention`]); this only adds it to the
    /// pending gauge, or to `interventions_untracked` when the table is full.
    pub fn track(
        &mut self,
        metrics: &AutonomyMetrics,
        tag: u64,
        kind: InterventionKind,
        prediction: Prediction,
        now_ns: u64,
        horizon_ns: u64,
    ) -> Result<(), TrackerFull> {
        let Some(slot) = self.slots.iter_mut().find(|slot| slot.is_none()) else {
            metrics.record_untracked();
            return Err(TrackerFull { capacity: N });
        };
        *slot = Some(PendingIntervention {
            tag,
            kind,
            prediction,
            recorded_at_ns: now_ns,
            deadline_ns: now_ns.saturating_add(horizon_ns),
        });
        metrics.record_tracked();
        Ok(())
    }

    /// Decides every pending intervention that can be decided at `now_ns`.
    ///
    /// `observed_failure` is a failure seen at `now_ns`: it fails every
    /// pending intervention that predicted it and whose horizon
    /// `[recorded_at_ns, deadline_ns]` contains `now_ns`. Then every
    /// intervention whose deadline is before `now_ns` succeeds. For this to be
    /// right, the caller reports each failure (with its own time) before any
    /// call whose `now_ns` is later, and calls this regularly with `None` so
    /// horizons close. `on_resolved` sees each decided intervention.
    pub fn resolve(
        &mut self,
        metrics: &AutonomyMetrics,
        now_ns: u64,
        observed_failure: Option<ObservedFailure>,
        mut on_resolved: impl FnMut(ResolvedIntervention),
    ) -> ResolveCounts {
        let mut counts = ResolveCounts::default();
        for slot in self.slots.iter_mut() {
            let Some(intervention) = *slot else { continue };
            let inside_horizon = intervention.recorded_at_ns <= now_ns && now_ns <= intervention.deadline_ns;
            let outcome = match observed_failure {
                Some(failure) if inside_horizon && intervention.prediction.is_met_by(failure) => {
                    InterventionOutcome::Failed
                }
                _ if now_ns > intervention.deadline_ns => InterventionOutcome::Succeeded,
                _ => continue,
            };
            *slot = None;
            match outcome {
                InterventionOutcome::Succeeded => counts.succeeded += 1,
                InterventionOutcome::Failed => counts.failed += 1,
            }
            metrics.record_resolved(Some(outcome), intervention.prediction == Prediction::Oom);
            on_resolved(ResolvedIntervention { intervention, outcome, resolved_at_ns: now_ns });
        }
        counts
    }

    /// Drops every pending intervention without an outcome (neither success nor failure), telling `on_dropped`
    /// of each; returns how many.
    pub fn clear(&mut self, metrics: &AutonomyMetrics, mut on_dropped: impl FnMut(PendingIntervention)) -> usize {
        let mut dropped = 0;
        for slot in self.slots.iter_mut() {
            if let Some(intervention) = slot.take() {
                metrics.record_resolved(None, false);
                on_dropped(intervention);
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests;
