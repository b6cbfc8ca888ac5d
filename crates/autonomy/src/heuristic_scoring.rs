//! The heuristic's features and its score for every candidate directive, derived from its rules.
//!
//! The heuristic does not rank directives by a score: it takes the first of its rules that applies
//! ([`crate::decide_memory`], [`crate::decide_scheduling`]), and each rule gives its directive a confidence. A
//! candidate directive's **score** is the confidence of the first rule that would issue it on these features
//! if every rule were tried on its own, in the rules' order, and 0 when no rule would. The chosen directive's
//! score is therefore its decision's confidence (the first rule that applies issued it). Doing nothing always
//! scores 0: the heuristic gives it no confidence. A candidate that scores above the chosen one was not chosen
//! because an earlier rule applied.
//!
//! The rules read only the features below, so the score is a function of them: the memory rules read the
//! pressure, the trend's prediction and confidence (its fit R² times the share of its sample window filled;
//! no trend reads as a prediction of 0 at confidence 0, which every rule treats exactly as no trend), the OOM
//! events and whether the Conservative strategy is in force; the scheduling rules read the deadline misses,
//! the jobs, the longest command latency, whether the consumer is boosted and the queue depth. Every feature is
//! an integer, exact in f64. The baseline of both is every feature 0: an idle machine.

use crate::agent::DecisionTrace;
use crate::explain::{Feature, Schema, Scorer, ScorerUnavailable, Scoring};
use crate::meta::{memory_rules, scheduling_rules, Decision, Directive, MetaConfig, Telemetry};
use crate::{MemoryStrategy, TrendEstimate};

/// The memory decision's features.
const MEMORY_FEATURES: [Feature; 5] = [
    Feature {
        name: "pressure",
        unit: "per mille",
        reading_factor: 0.1,
        reading_unit: "%",
        meaning: "of the pool in use",
    },
    Feature {
        name: "predicted_pressure",
        unit: "per mille",
        reading_factor: 0.1,
        reading_unit: "%",
        meaning: "of the pool predicted in use at the horizon by the pressure trend (0 without a trend)",
    },
    Feature {
        name: "trend_confidence",
        unit: "per mille",
        reading_factor: 0.1,
        reading_unit: "%",
        meaning: "confidence in the trend: its fit R² times the share of its sample window filled",
    },
    Feature {
        name: "oom_events",
        unit: "events",
        reading_factor: 1.0,
        reading_unit: "OOM events",
        meaning: "since the previous decision",
    },
    Feature {
        name: "conservative",
        unit: "flag",
        reading_factor: 1.0,
        reading_unit: "",
        meaning: "1: the Conservative strategy is in force, 0: it is not",
    },
];

/// The heuristic's memory decisions.
pub static HEURISTIC_MEMORY: Schema = Schema {
    name: "heuristic_memory",
    score: "rule confidence, per mille: the confidence of the first memory rule that would issue the action on these features, each rule tried on its own; 0 when none would, and always 0 for none",
    features: &MEMORY_FEATURES,
    actions: &["none", "switch_to_conservative", "throttle_allocations", "proactive_reclaim", "switch_to_balanced"],
    baseline: &[0.0; 5],
    baseline_meaning: "an idle machine: every feature 0 (no pressure, no trend, no OOM event, Conservative not in force)",
};

/// The scheduling decision's features.
const SCHEDULING_FEATURES: [Feature; 5] = [
    Feature {
        name: "deadline_misses",
        unit: "misses",
        reading_factor: 1.0,
        reading_unit: "deadline misses",
        meaning: "since the previous decision",
    },
    Feature {
        name: "deadline_jobs",
        unit: "jobs",
        reading_factor: 1.0,
        reading_unit: "jobs",
        meaning: "completed by the watched deadline threads since the previous decision",
    },
    Feature {
        name: "command_latency_max",
        unit: "ns",
        reading_factor: 1e-6,
        reading_unit: "ms",
        meaning: "longest command latency since the previous decision",
    },
    Feature {
        name: "commands_boosted",
        unit: "flag",
        reading_factor: 1.0,
        reading_unit: "",
        meaning: "1: the command consumer already has a priority boost, 0: it has not",
    },
    Feature {
        name: "command_queue_depth",
        unit: "commands",
        reading_factor: 1.0,
        reading_unit: "commands",
        meaning: "waiting in the command queue",
    },
];

/// The heuristic's scheduling decisions.
pub static HEURISTIC_SCHEDULING: Schema = Schema {
    name: "heuristic_scheduling",
    score: "rule confidence, per mille: the confidence of the first scheduling rule that would issue the action on these features, each rule tried on its own; 0 when none would, and always 0 for none",
    features: &SCHEDULING_FEATURES,
    actions: &["none", "boost_priority", "adjust_deadline", "limit_output_rate"],
    baseline: &[0.0; 5],
    baseline_meaning: "a quiet machine: every feature 0 (no deadline miss, no job, no command latency, no boost, an empty queue)",
};

/// The memory features of `telemetry`, in [`HEURISTIC_MEMORY`]'s order.
pub fn memory_features(telemetry: &Telemetry) -> [f64; 5] {
    let (predicted, confidence) = telemetry.trend.map_or((0, 0), |trend| {
        let confidence = trend.fit_per_mille as u32 * trend.samples as u32 / trend.capacity.max(1) as u32;
        (trend.predicted_per_mille, confidence.min(1000))
    });
    [
        f64::from(telemetry.pressure_per_mille),
        f64::from(predicted),
        f64::from(confidence),
        f64::from(telemetry.oom_events),
        if telemetry.strategy == MemoryStrategy::Conservative { 1.0 } else { 0.0 },
    ]
}

/// The scheduling features of `telemetry`, in [`HEURISTIC_SCHEDULING`]'s order (a latency above 2^53 ns, 104
/// days, is not exact in f64).
pub fn scheduling_features(telemetry: &Telemetry) -> [f64; 5] {
    [
        f64::from(telemetry.deadline_misses),
        f64::from(telemetry.deadline_jobs),
        telemetry.command_latency_max_ns as f64,
        if telemetry.commands_boosted { 1.0 } else { 0.0 },
        f64::from(telemetry.command_queue_depth),
    ]
}

/// Every memory candidate's score at `features` (see the module's documentation).
pub fn memory_scores(features: &[f64], config: &MetaConfig) -> [f64; 5] {
    let telemetry = memory_telemetry(features);
    scores(&memory_rules(&telemetry, config), memory_candidate)
}

/// Every scheduling candidate's score at `features`.
pub fn scheduling_scores(features: &[f64], config: &MetaConfig) -> [f64; 4] {
    let telemetry = scheduling_telemetry(features);
    scores(&scheduling_rules(&telemetry, config), scheduling_candidate)
}

/// The heuristic's memory scoring of `telemetry` with the directive it chose.
pub(crate) fn memory_scoring(telemetry: &Telemetry, config: &MetaConfig, chosen: Directive) -> Scoring {
    let features = memory_features(telemetry);
    let scores = memory_scores(&features, config);
    memory_candidate(chosen)
        .and_then(|chosen| Scoring::new(&HEURISTIC_MEMORY, &features, &scores, chosen, 0))
        .unwrap_or(Scoring::NONE)
}

/// The heuristic's scheduling scoring of `telemetry` with the directive it chose.
pub(crate) fn scheduling_scoring(telemetry: &Telemetry, config: &MetaConfig, chosen: Directive) -> Scoring {
    let features = scheduling_features(telemetry);
    let scores = scheduling_scores(&features, config);
    scheduling_candidate(chosen)
        .and_then(|chosen| Scoring::new(&HEURISTIC_SCHEDULING, &features, &scores, chosen, 0))
        .unwrap_or(Scoring::NONE)
}

/// The heuristic's score function for one decision: its rules with the thresholds the decision was made with.
#[derive(Debug, Clone, Copy)]
pub struct RuleScorer {
    config: MetaConfig,
    memory: bool,
}

impl RuleScorer {
    /// The score function of `trace`'s schema with its thresholds.
    pub fn for_trace(trace: &DecisionTrace) -> Result<RuleScorer, ScorerUnavailable> {
        let schema = trace.scoring.schema;
        let memory = if core::ptr::eq(schema, &HEURISTIC_MEMORY) {
            true
        } else if core::ptr::eq(schema, &HEURISTIC_SCHEDULING) {
            false
        } else {
            return Err(ScorerUnavailable::ForeignSchema { policy: "heuristic", schema: schema.name });
        };
        Ok(RuleScorer { config: trace.config, memory })
    }
}

impl Scorer for RuleScorer {
    fn score(&mut self, features: &[f64], scores: &mut [f64]) {
        if self.memory {
            copy(&memory_scores(features, &self.config), scores);
        } else {
            copy(&scheduling_scores(features, &self.config), scores);
        }
    }
}

fn copy(from: &[f64], to: &mut [f64]) {
    for (slot, value) in to.iter_mut().zip(from) {
        *slot = *value;
    }
}

/// Telemetry whose memory rules read `features` (an integer feature out of its type's range saturates).
fn memory_telemetry(features: &[f64]) -> Telemetry {
    let feature = |index: usize| features.get(index).copied().unwrap_or(0.0);
    Telemetry {
        pressure_per_mille: feature(0) as u16,
        // One sample in a window of one: the trend's confidence is its fit.
        trend: Some(TrendEstimate {
            samples: 1,
            capacity: 1,
            latest_per_mille: 0,
            slope_per_mille_per_s: 0,
            horizon_ns: 0,
            predicted_per_mille: feature(1) as u16,
            fit_per_mille: feature(2) as u16,
        }),
        oom_events: feature(3) as u32,
        strategy: if feature(4) >= 0.5 { MemoryStrategy::Conservative } else { MemoryStrategy::Aggressive },
        ..Telemetry::default()
    }
}

/// Telemetry whose scheduling rules read `features`.
fn scheduling_telemetry(features: &[f64]) -> Telemetry {
    let feature = |index: usize| features.get(index).copied().unwrap_or(0.0);
    Telemetry {
        deadline_misses: feature(0) as u32,
        deadline_jobs: feature(1) as u32,
        command_latency_max_ns: feature(2) as u64,
        commands_boosted: feature(3) >= 0.5,
        command_queue_depth: feature(4) as u32,
        ..Telemetry::default()
    }
}

/// Each candidate's score: the confidence of the first rule whose decision is that candidate, 0 without one.
fn scores<const CANDIDATES: usize>(
    rules: &[Option<Decision>],
    candidate: fn(Directive) -> Option<usize>,
) -> [f64; CANDIDATES] {
    let mut scores = [0.0; CANDIDATES];
    let mut scored = [false; CANDIDATES];
    for decision in rules.iter().flatten() {
        if let Some(index) = candidate(decision.directive).filter(|index| *index > 0 && *index < CANDIDATES) {
            if !scored[index] {
                scored[index] = true;
                scores[index] = f64::from(decision.confidence_per_mille.min(1000));
            }
        }
    }
    scores
}

/// A memory directive's index in [`HEURISTIC_MEMORY`]'s actions.
fn memory_candidate(directive: Directive) -> Option<usize> {
    match directive {
        Directive::None => Some(0),
        Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative } => Some(1),
        Directive::ThrottleAllocations { .. } => Some(2),
        Directive::ProactiveReclaim => Some(3),
        Directive::SwitchStrategy { strategy: MemoryStrategy::Balanced } => Some(4),
        _ => None,
    }
}

/// A scheduling directive's index in [`HEURISTIC_SCHEDULING`]'s actions.
fn scheduling_candidate(directive: Directive) -> Option<usize> {
    match directive {
        Directive::None => Some(0),
        Directive::BoostPriority => Some(1),
        Directive::AdjustDeadline { .. } => Some(2),
        Directive::LimitOutputRate { .. } => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
