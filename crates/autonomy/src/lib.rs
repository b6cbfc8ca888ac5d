//! SIS autonomy core: autonomy counters, intervention outcomes, memory strategy control and the meta-agent.
//!
//! Portable and host-tested; the kernel wires it to the memory manager,
//! scheduler and shell. Time is always passed in as nanoseconds, nothing
//! reads a clock or a global, and all decision arithmetic is integer (per
//! mille, ns), so the same inputs give the same decisions on every machine.
//! Autonomy acts only through the directives it returns and the strategy
//! controller it is handed; every action it takes is counted in
//! [`AutonomyMetrics`], so a difference between autonomy on and off can be
//! traced to counted interventions.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod agent;
mod explain;
pub mod feedback;
mod heuristic_scoring;
mod meta;
mod metrics;
mod outcome;
mod ring;
mod shapley;
mod strategy;
mod trend;

pub use agent::{
    intervention_kind, proposed_action, DecisionTrace, Disposition, ExplainError, IntervalTraces, MetaAgent,
    TraceOutcome, REWARD_FAILURE_PER_MILLE, REWARD_SUCCESS_PER_MILLE,
};
pub use explain::{
    attribute, Attribution, AttributionError, Feature, Schema, Scorer, ScorerUnavailable, Scoring, MAX_ACTIONS,
    NO_SCORES,
};
pub use heuristic_scoring::{
    memory_features, memory_scores, scheduling_features, scheduling_scores, RuleScorer, HEURISTIC_MEMORY,
    HEURISTIC_SCHEDULING,
};
pub use meta::{
    decide_memory, decide_scheduling, Decision, Directive, Heuristic, MetaConfig, MetaConfigError, NeverAct, Policy,
    Reason, Selection, Subsystem, Telemetry,
};
pub use metrics::{AutonomyEvent, AutonomyMetrics, AutonomySnapshot, InterventionKind};
pub use outcome::{
    InterventionOutcome, InterventionTracker, ObservedFailure, PendingIntervention, Prediction, ResolveCounts,
    ResolvedIntervention, TrackerFull,
};
pub use ring::Ring;
pub use shapley::{shapley, Shapley, ShapleyError, MAX_FEATURES};
pub use strategy::{
    MemoryStrategy, StrategyConfig, StrategyConfigError, StrategyController, StrategyStats, StrategySwitch,
    StrategyUpdate, SwitchReason, OSCILLATION_CAPACITY, STRATEGY_HISTORY_CAPACITY,
};
pub use trend::{PressureTrend, TimeWentBackwards, TrendEstimate, TREND_CAPACITY};
