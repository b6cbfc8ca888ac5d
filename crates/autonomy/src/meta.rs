//! Meta-agent policy: telemetry in, one directive per subsystem with a confidence out; the heuristic and the
//! never-acting policy.
//!
//! A [`Policy`] sees a [`Telemetry`] record and the [`MetaConfig`] and
//! returns a [`Decision`] for memory and, if it governs it, one for scheduling
//! (the CPU and the command flow): one decision interval can direct both. The [`crate::MetaAgent`] around it applies the
//! confidence threshold, counts, tracks outcomes and keeps the trace, so a
//! learned policy can replace the heuristic without touching any of that.
//! Everything is integer arithmetic in per mille and nanoseconds.

use alloc::boxed::Box;

use crate::explain::{Scorer, ScorerUnavailable, Scoring};
use crate::heuristic_scoring::{memory_scoring, scheduling_scoring, RuleScorer};
use crate::{MemoryStrategy, Prediction, TrendEstimate};

/// What the meta-agent sees at one decision. The default is a decision at time 0 with nothing observed:
/// empty memory, no trend, no events, the Aggressive strategy (no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Telemetry {
    /// Time of the decision.
    pub now_ns: u64,
    /// Memory in use, per mille of the total.
    pub pressure_per_mille: u16,
    /// Least-squares trend of recent pressure samples, predicted at the configured horizon.
    pub trend: Option<TrendEstimate>,
    /// Reclaimable cache, per mille of the memory limit.
    pub cache_per_mille: u16,
    /// Allocation requests per workload step since the previous decision, per mille.
    pub demand_per_mille: u16,
    /// OOM events since the previous decision.
    pub oom_events: u32,
    /// Workload steps since the previous decision.
    pub steps: u64,
    /// Allocation requests since the previous decision (throttled ones included).
    pub allocation_requests: u64,
    /// Requests the throttle refused since the previous decision.
    pub requests_throttled: u64,
    /// Cache objects the meta-agent's reclaims dropped since the previous decision.
    pub cache_objects_dropped: u64,
    /// Scheduler deadline misses since the previous decision.
    pub deadline_misses: u32,
    /// Jobs the watched deadline threads completed since the previous decision (the misses among them).
    pub deadline_jobs: u32,
    /// Longest command latency (offered to completed) since the previous decision: best-effort work waiting.
    pub command_latency_max_ns: u64,
    /// Commands waiting in the command queue.
    pub command_queue_depth: u32,
    /// The command consumer already runs with a priority boost.
    pub commands_boosted: bool,
    /// Memory strategy in force (the agent fills it in from the strategy controller).
    pub strategy: MemoryStrategy,
}

/// The subsystems a decision interval directs, each with its own decision and trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subsystem {
    /// The memory workload's pool: reclaim, throttle, strategy (its pressure cap).
    Memory,
    /// The CPU and the command flow: priority boost, deadline relaxation, output rate limit.
    Scheduling,
}

/// An action through one subsystem's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "directive", rename_all = "snake_case")]
pub enum Directive {
    /// Do nothing.
    None,
    /// Reclaim and compact memory now rather than at the allocation that fails.
    ProactiveReclaim,
    /// Defer this share of allocation requests.
    ThrottleAllocations {
        /// Share of allocation requests deferred, per mille.
        per_mille: u16,
    },
    /// Change the memory strategy (through [`crate::StrategyController::request`]).
    SwitchStrategy {
        /// Strategy wanted.
        strategy: MemoryStrategy,
    },
    /// Relax the relative deadline of the deadline thread that missed: D' = D * (1000 + relax) / 1000.
    AdjustDeadline {
        /// Extension of the relative deadline, per mille of itself.
        relax_per_mille: u16,
    },
    /// Raise the priority of best-effort work that missed deadlines.
    BoostPriority,
    /// Limit output to drain the command queue.
    LimitOutputRate {
        /// Lines per second allowed.
        lines_per_second: u32,
    },
}

impl Directive {
    /// The subsystem whose interface carries this directive (`None` for no directive).
    pub fn subsystem(&self) -> Option<Subsystem> {
        match self {
            Directive::None => None,
            Directive::ProactiveReclaim | Directive::ThrottleAllocations { .. } | Directive::SwitchStrategy { .. } => {
                Some(Subsystem::Memory)
            }
            Directive::AdjustDeadline { .. } | Directive::BoostPriority | Directive::LimitOutputRate { .. } => {
                Some(Subsystem::Scheduling)
            }
        }
    }
}

/// Why a policy chose its directive (the figures it used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Nothing called for action.
    Nominal,
    /// OOM events happened since the previous decision.
    OomObserved {
        /// How many.
        events: u32,
    },
    /// Pressure is at or above the throttle threshold now.
    PressureHigh {
        /// Pressure now.
        pressure_per_mille: u16,
        /// Throttle threshold.
        threshold_per_mille: u16,
    },
    /// The trend predicts pressure at or above the reclaim threshold within the horizon.
    PressurePredicted {
        /// Predicted pressure.
        predicted_per_mille: u16,
        /// Reclaim threshold.
        threshold_per_mille: u16,
        /// R² of the trend fit.
        fit_per_mille: u16,
    },
    /// Pressure is low and predicted to stay low, so a Conservative strategy only costs throughput.
    PressureLow {
        /// Pressure now.
        pressure_per_mille: u16,
        /// Relax threshold.
        threshold_per_mille: u16,
    },
    /// Deadlines were missed.
    DeadlinesMissed {
        /// Misses since the previous decision.
        misses: u32,
        /// Jobs completed since the previous decision.
        jobs: u32,
        /// Longest command latency since the previous decision.
        command_latency_max_ns: u64,
    },
    /// Commands wait too long: best-effort work is starved of the CPU.
    CommandsSlow {
        /// Longest command latency since the previous decision.
        latency_max_ns: u64,
        /// The latency limit.
        limit_ns: u64,
    },
    /// The command queue is deep.
    QueueDeep {
        /// Commands waiting.
        depth: u32,
        /// Depth limit.
        limit: u32,
    },
    /// The policy never acts.
    NeverActs,
    /// A learned policy chose action number `action`.
    Learned {
        /// The policy's action index.
        action: u16,
    },
}

/// How the policy arrived at its directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// A fixed rule.
    Rule,
    /// A learned policy explored.
    Exploration,
    /// A learned policy exploited.
    Exploitation,
}

/// A policy's choice.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Decision {
    /// What to do.
    pub directive: Directive,
    /// How sure the policy is, per mille (values above 1000 are taken as 1000).
    pub confidence_per_mille: u16,
    /// Why.
    pub reason: Reason,
    /// Rule, exploration or exploitation.
    pub selection: Selection,
    /// The failure the directive is meant to prevent, tracked over the horizon when it is acted on.
    pub prediction: Option<Prediction>,
    /// The features the policy read and its score for every action it considered ([`Scoring::NONE`] for a
    /// policy that gives no scores).
    pub scoring: Scoring,
}

impl Decision {
    /// A decision to do nothing.
    pub const fn none(reason: Reason) -> Self {
        Decision {
            directive: Directive::None,
            confidence_per_mille: 0,
            reason,
            selection: Selection::Rule,
            prediction: None,
            scoring: Scoring::NONE,
        }
    }
}

/// Thresholds and limits of the meta-agent (per mille, ns, counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetaConfig {
    /// Decisions below this confidence are held (recorded, not acted on).
    pub confidence_threshold_per_mille: u16,
    /// How far ahead predictions look and how long an intervention's outcome is watched.
    pub horizon_ns: u64,
    /// Predicted pressure at or above which memory is reclaimed ahead of need.
    pub reclaim_at_per_mille: u16,
    /// Pressure at or above which allocations are throttled.
    pub throttle_at_per_mille: u16,
    /// Pressure (now and predicted) below which a Conservative strategy is relaxed to Balanced.
    pub relax_below_per_mille: u16,
    /// Throttle applied after an OOM event.
    pub oom_throttle_per_mille: u16,
    /// Deadline misses per decision at or above which best-effort work is helped (at least 1).
    pub deadline_miss_limit: u32,
    /// Latency p99 at or above which missed deadlines get a priority boost rather than a deadline relaxation.
    pub latency_limit_ns: u64,
    /// Deadline relaxation issued.
    pub deadline_relax_per_mille: u16,
    /// Queue depth at or above which output is rate limited (at least 1).
    pub queue_depth_limit: u32,
    /// Output rate issued.
    pub output_lines_per_second: u32,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            confidence_threshold_per_mille: 600,
            horizon_ns: 200_000_000,
            reclaim_at_per_mille: 800,
            throttle_at_per_mille: 900,
            relax_below_per_mille: 600,
            oom_throttle_per_mille: 500,
            deadline_miss_limit: 1,
            latency_limit_ns: 10_000_000,
            deadline_relax_per_mille: 250,
            queue_depth_limit: 64,
            output_lines_per_second: 100,
        }
    }
}

/// A configuration the meta-agent refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum MetaConfigError {
    /// A per mille value is above 1000.
    AboveOneThousand {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: u16,
    },
    /// Thresholds must satisfy relax < reclaim < throttle.
    ThresholdsOutOfOrder,
    /// A limit that must be at least 1 is 0.
    ZeroLimit {
        /// Which field.
        field: &'static str,
    },
}

impl MetaConfig {
    /// Checks ranges and ordering.
    pub fn validate(&self) -> Result<(), MetaConfigError> {
        for (field, value) in [
            ("confidence_threshold_per_mille", self.confidence_threshold_per_mille),
            ("reclaim_at_per_mille", self.reclaim_at_per_mille),
            ("throttle_at_per_mille", self.throttle_at_per_mille),
            ("relax_below_per_mille", self.relax_below_per_mille),
            ("oom_throttle_per_mille", self.oom_throttle_per_mille),
            ("deadline_relax_per_mille", self.deadline_relax_per_mille),
        ] {
            if value > 1000 {
                return Err(MetaConfigError::AboveOneThousand { field, value });
            }
        }
        if self.relax_below_per_mille >= self.reclaim_at_per_mille
            || self.reclaim_at_per_mille >= self.throttle_at_per_mille
        {
            return Err(MetaConfigError::ThresholdsOutOfOrder);
        }
        if self.deadline_miss_limit == 0 {
            return Err(MetaConfigError::ZeroLimit { field: "deadline_miss_limit" });
        }
        if self.queue_depth_limit == 0 {
            return Err(MetaConfigError::ZeroLimit { field: "queue_depth_limit" });
        }
        Ok(())
    }
}

/// Something that chooses directives; the heuristic today, a learned policy later.
pub trait Policy {
    /// Short name for traces and `autoctl status`.
    fn name(&self) -> &'static str;

    /// Chooses one memory directive for this telemetry.
    fn decide(&mut self, telemetry: &Telemetry, config: &MetaConfig) -> Decision;

    /// Chooses one scheduling directive for the same telemetry, in the same decision interval, or `None` for a
    /// policy that does not govern scheduling (the default).
    fn decide_scheduling(&mut self, _telemetry: &Telemetry, _config: &MetaConfig) -> Option<Decision> {
        None
    }

    /// Called when an acted decision's outcome and reward are known; returns whether the policy changed its
    /// parameters (counted as a policy update). The default ignores it.
    fn feedback(&mut self, _trace: &crate::DecisionTrace) -> bool {
        false
    }

    /// Parameter updates the policy made on its own since the last call (a policy that learns online from
    /// every decision's measured outcome); each counts as a policy update. The default makes none.
    fn take_updates(&mut self) -> u64 {
        0
    }

    /// A side-effect-free score function for the decision `trace` records, of the model version that made
    /// it, for its attribution ([`crate::attribute`]). The default: this policy gives no scores.
    fn scorer(&self, _trace: &crate::DecisionTrace) -> Result<Box<dyn Scorer + Send>, ScorerUnavailable> {
        Err(ScorerUnavailable::NoScores { policy: self.name() })
    }
}

/// A boxed policy is a policy, so the agent can switch between policies at run time
/// (`MetaAgent<Box<dyn Policy + Send>>`, for `autoctl policy learned|heuristic`).
impl<T: Policy + ?Sized> Policy for alloc::boxed::Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn decide(&mut self, telemetry: &Telemetry, config: &MetaConfig) -> Decision {
        (**self).decide(telemetry, config)
    }

    fn decide_scheduling(&mut self, telemetry: &Telemetry, config: &MetaConfig) -> Option<Decision> {
        (**self).decide_scheduling(telemetry, config)
    }

    fn feedback(&mut self, trace: &crate::DecisionTrace) -> bool {
        (**self).feedback(trace)
    }

    fn take_updates(&mut self) -> u64 {
        (**self).take_updates()
    }

    fn scorer(&self, trace: &crate::DecisionTrace) -> Result<Box<dyn Scorer + Send>, ScorerUnavailable> {
        (**self).scorer(trace)
    }
}

/// The rule-based policy: [`decide_memory`] and [`decide_scheduling`], each decision with the score of every
/// candidate directive (`crate::heuristic_scoring` says how they are derived from the rules).
#[derive(Debug, Clone, Copy, Default)]
pub struct Heuristic;

impl Policy for Heuristic {
    fn name(&self) -> &'static str {
        "heuristic"
    }

    fn decide(&mut self, telemetry: &Telemetry, config: &MetaConfig) -> Decision {
        let decision = decide_memory(telemetry, config);
        Decision { scoring: memory_scoring(telemetry, config, decision.directive), ..decision }
    }

    fn decide_scheduling(&mut self, telemetry: &Telemetry, config: &MetaConfig) -> Option<Decision> {
        let decision = decide_scheduling(telemetry, config);
        Some(Decision { scoring: scheduling_scoring(telemetry, config, decision.directive), ..decision })
    }

    fn scorer(&self, trace: &crate::DecisionTrace) -> Result<Box<dyn Scorer + Send>, ScorerUnavailable> {
        RuleScorer::for_trace(trace).map(|scorer| Box::new(scorer) as Box<dyn Scorer + Send>)
    }
}

/// A policy that never acts: with it, autonomy on must give exactly the results of autonomy off.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverAct;

impl Policy for NeverAct {
    fn name(&self) -> &'static str {
        "never-act"
    }

    fn decide(&mut self, _telemetry: &Telemetry, _config: &MetaConfig) -> Decision {
        Decision::none(Reason::NeverActs)
    }
}

/// The heuristic's memory decision: the first of these rules that applies.
///
/// Keeping headroom is cheaper than refusing requests, so rules 1 to 3 first
/// switch to Conservative when another strategy is in force.
///
/// 1. OOM events since the last decision: switch to Conservative, or, if it
///    is in force, throttle allocations by `oom_throttle_per_mille`;
///    confidence 1000 (the failure is happening). Predicts an OOM.
/// 2. Pressure at or above `throttle_at`: switch to Conservative, or throttle
///    by 250 ‰ at the threshold rising linearly to 1000 ‰ at full memory;
///    confidence rises from 600 to 1000 the same way. Predicts an OOM.
/// 3. Trend predicts pressure at or above `reclaim_at`: switch to
///    Conservative, or reclaim now. Confidence is the larger of the fit's R²
///    scaled by how full the sample window is (`fit * samples / capacity`, so
///    two points never make a confident line) and the level's: pressure now at
///    or above `reclaim_at` gives 600 there, rising to 1000 at `throttle_at`
///    (a flat line fits badly but is sure of its level). Predicts pressure
///    above `throttle_at`.
/// 4. Conservative in force while pressure is below `relax_below` and so is
///    the prediction: switch to Balanced, confidence as in rule 3 (0 without a
///    trend). Predicts pressure above `throttle_at`.
/// 5. Otherwise nothing.
pub fn decide_memory(telemetry: &Telemetry, config: &MetaConfig) -> Decision {
    first_rule(memory_rules(telemetry, config))
}

/// The heuristic's memory rules 1 to 4 of [`decide_memory`], in order, each tried on its own: the decision a
/// rule gives when it applies.
pub(crate) fn memory_rules(telemetry: &Telemetry, config: &MetaConfig) -> [Option<Decision>; 4] {
    let pressure = telemetry.pressure_per_mille.min(1000);
    let trend_confidence = |trend: &TrendEstimate| {
        (trend.fit_per_mille as u32 * trend.samples as u32 / trend.capacity.max(1) as u32).min(1000) as u16
    };
    let pressure_bound = Some(Prediction::PressureAbove { per_mille: config.throttle_at_per_mille });

    // Keeping headroom (Conservative) is cheaper than refusing requests: it comes first.
    let conservative = telemetry.strategy == MemoryStrategy::Conservative;
    let to_conservative = Directive::SwitchStrategy { strategy: MemoryStrategy::Conservative };
    let oom = (telemetry.oom_events > 0).then(|| {
        let directive = if conservative {
            Directive::ThrottleAllocations { per_mille: config.oom_throttle_per_mille }
        } else {
            to_conservative
        };
        rule(directive, 1000, Reason::OomObserved { events: telemetry.oom_events }, Some(Prediction::Oom))
    });
    let high = (pressure >= config.throttle_at_per_mille).then(|| {
        let excess = (pressure - config.throttle_at_per_mille) as u32;
        let room = (1000 - config.throttle_at_per_mille).max(1) as u32;
        let directive = if conservative {
            Directive::ThrottleAllocations { per_mille: (250 + 750 * excess / room) as u16 }
        } else {
            to_conservative
        };
        let reason =
            Reason::PressureHigh { pressure_per_mille: pressure, threshold_per_mille: config.throttle_at_per_mille };
        rule(directive, (600 + 400 * excess / room) as u16, reason, Some(Prediction::Oom))
    });
    let predicted =
        telemetry.trend.filter(|trend| trend.predicted_per_mille >= config.reclaim_at_per_mille).map(|trend| {
            let directive = if conservative { Directive::ProactiveReclaim } else { to_conservative };
            let reason = Reason::PressurePredicted {
                predicted_per_mille: trend.predicted_per_mille,
                threshold_per_mille: config.reclaim_at_per_mille,
                fit_per_mille: trend.fit_per_mille,
            };
            // A flat line fits badly (R² near 0) yet is sure of its level: pressure already at the threshold
            // counts as much as the fit, from 600 at the reclaim threshold to 1000 at the throttle threshold.
            let level = if pressure >= config.reclaim_at_per_mille {
                let above = (pressure - config.reclaim_at_per_mille) as u32;
                let span = (config.throttle_at_per_mille - config.reclaim_at_per_mille).max(1) as u32;
                (600 + 400 * above / span).min(1000) as u16
            } else {
                0
            };
            rule(directive, trend_confidence(&trend).max(level), reason, pressure_bound)
        });
    let predicted_low = telemetry.trend.is_none_or(|trend| trend.predicted_per_mille < config.relax_below_per_mille);
    let relax = (conservative && pressure < config.relax_below_per_mille && predicted_low).then(|| {
        let directive = Directive::SwitchStrategy { strategy: MemoryStrategy::Balanced };
        let confidence = telemetry.trend.as_ref().map_or(0, trend_confidence);
        let reason =
            Reason::PressureLow { pressure_per_mille: pressure, threshold_per_mille: config.relax_below_per_mille };
        rule(directive, confidence, reason, pressure_bound)
    });
    [oom, high, predicted, relax]
}

/// The heuristic's scheduling decision, made in the same interval as the memory one: the first of these rules
/// that applies.
///
/// 1. Deadline misses at or above the limit: boost priority when command
///    latency is at or above `latency_limit_ns`, else relax the deadline;
///    confidence the larger of `1000 * misses / (misses + limit)` and the
///    share of the interval's jobs that missed (`1000 * misses / jobs`; a
///    10 ms thread completes one job per 10 ms decision, so one late job out
///    of one is a certain miss, not half of one). Predicts another deadline
///    miss.
/// 2. The longest command latency since the last decision at or above
///    `latency_limit_ns`, the consumer not boosted yet: boost its priority;
///    confidence 600 at the limit rising to 1000 at twice the limit. Predicts
///    command latency above the limit.
/// 3. Queue depth at or above the limit: limit output rate; confidence
///    `1000 * depth / (depth + limit)`. No outcome is tracked.
/// 4. Otherwise nothing.
pub fn decide_scheduling(telemetry: &Telemetry, config: &MetaConfig) -> Decision {
    first_rule(scheduling_rules(telemetry, config))
}

/// The heuristic's scheduling rules 1 to 3 of [`decide_scheduling`], in order, each tried on its own.
pub(crate) fn scheduling_rules(telemetry: &Telemetry, config: &MetaConfig) -> [Option<Decision>; 3] {
    let missed = (telemetry.deadline_misses >= config.deadline_miss_limit).then(|| {
        let directive = if telemetry.command_latency_max_ns >= config.latency_limit_ns {
            Directive::BoostPriority
        } else {
            Directive::AdjustDeadline { relax_per_mille: config.deadline_relax_per_mille }
        };
        let misses = telemetry.deadline_misses as u64;
        let by_count = 1000 * misses / (misses + config.deadline_miss_limit as u64);
        let by_share = (1000 * misses).checked_div(telemetry.deadline_jobs as u64).unwrap_or(0);
        let confidence = by_count.max(by_share).min(1000) as u16;
        let reason = Reason::DeadlinesMissed {
            misses: telemetry.deadline_misses,
            jobs: telemetry.deadline_jobs,
            command_latency_max_ns: telemetry.command_latency_max_ns,
        };
        rule(directive, confidence, reason, Some(Prediction::DeadlineMiss))
    });
    let slow =
        (telemetry.command_latency_max_ns >= config.latency_limit_ns && !telemetry.commands_boosted).then(|| {
            let over = (telemetry.command_latency_max_ns - config.latency_limit_ns).min(config.latency_limit_ns);
            let confidence = (600 + 400 * over / config.latency_limit_ns.max(1)) as u16;
            let reason = Reason::CommandsSlow {
                latency_max_ns: telemetry.command_latency_max_ns,
                limit_ns: config.latency_limit_ns,
            };
            let prediction = Some(Prediction::LatencyAbove { ns: config.latency_limit_ns });
            rule(Directive::BoostPriority, confidence, reason, prediction)
        });
    let deep = (telemetry.command_queue_depth >= config.queue_depth_limit).then(|| {
        let depth = telemetry.command_queue_depth as u64;
        let confidence = (1000 * depth / (depth + config.queue_depth_limit as u64)) as u16;
        let directive = Directive::LimitOutputRate { lines_per_second: config.output_lines_per_second };
        let reason = Reason::QueueDeep { depth: telemetry.command_queue_depth, limit: config.queue_depth_limit };
        rule(directive, confidence, reason, None)
    });
    [missed, slow, deep]
}

/// The first rule that applies, or nothing.
fn first_rule<const RULES: usize>(rules: [Option<Decision>; RULES]) -> Decision {
    rules.into_iter().flatten().next().unwrap_or(Decision::none(Reason::Nominal))
}

/// A decision by a fixed rule.
fn rule(directive: Directive, confidence_per_mille: u16, reason: Reason, prediction: Option<Prediction>) -> Decision {
    Decision { directive, confidence_per_mille, reason, selection: Selection::Rule, prediction, scoring: Scoring::NONE }
}

#[cfg(test)]
pub(crate) mod tests;
