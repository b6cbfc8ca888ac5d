//! The meta-agent: runs a policy, applies the confidence threshold, counts interventions, tracks their
//! outcomes and keeps a trace of every decision.
//!
//! One [`MetaAgent::step`] per decision interval: a memory decision, and a
//! scheduling decision when the policy governs scheduling and proposes a
//! directive, each with its own trace carrying the interval's number. A
//! decision with a directive and a confidence at or above the threshold is
//! acted on; below it, it is held, recorded as such and counted in
//! `decisions_held`, and no intervention is counted. Before a confident
//! decision is acted on, its action is checked by the caller's
//! [`Guardrails`] against the live state the caller supplies: a blocked one is
//! not carried out, is recorded as `blocked` with the rule in its trace and is
//! counted in `decisions_blocked`; an acted one is committed to the
//! guardrails (their frequency rules count it). Strategy switches are
//! applied here, through [`StrategyController::request`], because that
//! controller may refuse them (cooldown, oscillation freeze); a refused
//! switch is recorded as refused and not counted. Every other acted directive
//! is counted as an intervention when the step returns, and the caller must
//! apply it through the subsystem's interface.

use crate::explain::Scoring;
use crate::meta::{Decision, Directive, MetaConfig, MetaConfigError, Policy, Reason, Selection, Subsystem, Telemetry};
use crate::metrics::{AutonomyEvent, AutonomyMetrics, InterventionKind};
use crate::outcome::{InterventionOutcome, InterventionTracker, ObservedFailure, Prediction, ResolveCounts};
use crate::ring::Ring;
use crate::strategy::{StrategyController, StrategyUpdate};
use sis_safety::{Effector, Guardrails, LiveState, ProposedAction, RuleId, Verdict};

/// Reward recorded for an intervention whose predicted failure did not happen.
pub const REWARD_SUCCESS_PER_MILLE: i32 = 1000;
/// Reward recorded for an intervention whose predicted failure happened anyway.
pub const REWARD_FAILURE_PER_MILLE: i32 = -1000;

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Nothing to do: the directive was `None`, or a switch to the strategy already in force.
    NoAction,
    /// Confidence reached the threshold; the directive was issued and counted.
    Acted,
    /// Confidence was below the threshold; nothing was done.
    Held,
    /// A strategy switch the strategy controller refused because the last switch is too recent.
    RefusedByCooldown,
    /// A strategy switch the strategy controller refused because switching is frozen (oscillation).
    RefusedByFreeze,
    /// Confidence reached the threshold but a guardrail rule blocked the action: nothing was done.
    Blocked,
}

/// What is known about an acted decision's prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    /// Not acted on, so nothing to watch.
    NotApplicable,
    /// Acted on without a prediction to check.
    NotTracked,
    /// Acted on, but the pending table was full.
    Untracked,
    /// Horizon not passed yet.
    Pending,
    /// The predicted failure did not happen within the horizon.
    Succeeded,
    /// The predicted failure happened within the horizon.
    Failed,
    /// Watching stopped before the horizon passed (autonomy switched off, a new run began, or the policy was
    /// replaced): neither success nor failure, and no reward.
    Dropped,
}

impl TraceOutcome {
    /// Whether the outcome can still change ([`TraceOutcome::Pending`] only): an exporter waits for it.
    pub fn is_settled(self) -> bool {
        self != TraceOutcome::Pending
    }
}

/// One decision, as `autoctl audit` and `autoctl explain` show it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DecisionTrace {
    /// Sequence number from 0.
    pub id: u64,
    /// The decision interval it was made in, from 0 (a memory and a scheduling decision can share one).
    pub interval: u64,
    /// The subsystem it directs (memory for a memory decision with no directive).
    pub subsystem: Subsystem,
    /// Time of the decision.
    pub at_ns: u64,
    /// Policy that decided.
    pub policy: &'static str,
    /// What the policy saw.
    pub inputs: Telemetry,
    /// What it chose.
    pub directive: Directive,
    /// Its confidence, per mille (clamped to 1000).
    pub confidence_per_mille: u16,
    /// The threshold in force.
    pub threshold_per_mille: u16,
    /// Why.
    pub reason: Reason,
    /// Rule, exploration or exploitation.
    pub selection: Selection,
    /// The failure the directive is meant to prevent.
    pub prediction: Option<Prediction>,
    /// Acted, held, blocked, refused or nothing to do.
    pub disposition: Disposition,
    /// The guardrail rule that blocked it (a `blocked` disposition only).
    pub blocked_by: Option<RuleId>,
    /// Outcome of the prediction once known.
    pub outcome: TraceOutcome,
    /// [`REWARD_SUCCESS_PER_MILLE`] or [`REWARD_FAILURE_PER_MILLE`] once the outcome is known.
    pub reward_per_mille: Option<i32>,
    /// The features the policy read and its score for every action it considered.
    pub scoring: Scoring,
    /// The configuration in force (the heuristic's thresholds), for the decision's score function; not in JSON.
    #[serde(skip)]
    pub config: MetaConfig,
}

/// The decisions of one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalTraces {
    /// The memory decision, made at every interval.
    pub memory: DecisionTrace,
    /// The scheduling decision, when the policy governs scheduling and proposed a directive.
    pub scheduling: Option<DecisionTrace>,
}

impl IntervalTraces {
    /// Both traces, memory first.
    pub fn iter(&self) -> impl Iterator<Item = &DecisionTrace> + '_ {
        core::iter::once(&self.memory).chain(self.scheduling.as_ref())
    }
}

/// Why `explain` has no trace for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ExplainError {
    /// No decision has this id yet.
    NotIssued {
        /// Id asked for.
        id: u64,
        /// Id the next decision will get.
        next_id: u64,
    },
    /// The trace was overwritten by newer ones.
    Evicted {
        /// Id asked for.
        id: u64,
        /// Oldest id still kept.
        oldest_kept: u64,
    },
}

/// The meta-agent with policy `P`, the last `TRACES` decision traces and up to `PENDING` watched outcomes.
#[derive(Debug)]
pub struct MetaAgent<P, const TRACES: usize = 64, const PENDING: usize = 32> {
    policy: P,
    config: MetaConfig,
    traces: Ring<DecisionTrace, TRACES>,
    tracker: InterventionTracker<PENDING>,
    intervals: u64,
}

impl<P: Policy, const TRACES: usize, const PENDING: usize> MetaAgent<P, TRACES, PENDING> {
    /// An agent with no decisions yet, or the configuration's broken rule.
    pub fn new(policy: P, config: MetaConfig) -> Result<Self, MetaConfigError> {
        config.validate()?;
        Ok(MetaAgent { policy, config, traces: Ring::new(), tracker: InterventionTracker::new(), intervals: 0 })
    }

    /// The configuration.
    pub fn config(&self) -> &MetaConfig {
        &self.config
    }

    /// Sets the confidence threshold (`autoctl conf-threshold N`); values above 1000 are refused.
    pub fn set_confidence_threshold(&mut self, per_mille: u16) -> Result<(), MetaConfigError> {
        let config = MetaConfig { confidence_threshold_per_mille: per_mille, ..self.config };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Sets the pressure thresholds of the memory rules (`autoctl thresholds`): relax below, reclaim at,
    /// throttle at, per mille. A set the configuration refuses (out of range, or not relax < reclaim <
    /// throttle) changes nothing.
    pub fn set_pressure_thresholds(
        &mut self,
        relax_below_per_mille: u16,
        reclaim_at_per_mille: u16,
        throttle_at_per_mille: u16,
    ) -> Result<(), MetaConfigError> {
        let config = MetaConfig { relax_below_per_mille, reclaim_at_per_mille, throttle_at_per_mille, ..self.config };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The policy, mutably (e.g. to load learned parameters).
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// Decisions made so far (the id the next one gets).
    pub fn decisions(&self) -> u64 {
        self.traces.pushed()
    }

    /// Decision intervals so far (each made a memory decision, and some a scheduling one too).
    pub fn intervals(&self) -> u64 {
        self.intervals
    }

    /// Interventions whose horizon has not passed.
    pub fn pending_interventions(&self) -> usize {
        self.tracker.pending()
    }

    /// Makes one interval's decisions from `telemetry` (its `strategy` is taken from `strategy`): the policy's
    /// memory decision and, if it has one with a directive, its scheduling decision. Acts on each if confident
    /// enough and allowed by `guardrails` on `live` (the state the caller's effectors are in now), and returns
    /// (copies of) their traces.
    pub fn step(
        &mut self,
        telemetry: Telemetry,
        live: &LiveState,
        guardrails: &mut Guardrails,
        strategy: &mut StrategyController,
        metrics: &AutonomyMetrics,
    ) -> IntervalTraces {
        let inputs = Telemetry { strategy: strategy.current(), ..telemetry };
        let memory = self.policy.decide(&inputs, &self.config);
        let scheduling = self
            .policy
            .decide_scheduling(&inputs, &self.config)
            .filter(|decision| decision.directive != Directive::None);
        for _ in 0..self.policy.take_updates() {
            metrics.record_event(AutonomyEvent::PolicyUpdate);
        }
        if inputs.trend.is_some() {
            metrics.record_event(AutonomyEvent::PressurePrediction);
        }
        let interval = self.intervals;
        self.intervals += 1;
        let mut effectors = Effectors { live, guardrails, strategy, metrics };
        let memory = self.record(interval, Subsystem::Memory, inputs, memory, &mut effectors);
        let scheduling =
            scheduling.map(|decision| self.record(interval, Subsystem::Scheduling, inputs, decision, &mut effectors));
        IntervalTraces { memory, scheduling }
    }

    /// Applies the threshold and the guardrails to one decision, acts (strategy switches) and counts, and keeps
    /// its trace.
    fn record(
        &mut self,
        interval: u64,
        slot: Subsystem,
        inputs: Telemetry,
        decision: Decision,
        effectors: &mut Effectors<'_>,
    ) -> DecisionTrace {
        let Decision { directive, confidence_per_mille, reason, selection, prediction, scoring } = decision;
        let confidence_per_mille = confidence_per_mille.min(1000);
        let threshold_per_mille = self.config.confidence_threshold_per_mille;
        let id = self.traces.pushed();
        let Effectors { live, guardrails, strategy, metrics } = effectors;
        let metrics: &AutonomyMetrics = metrics;

        let mut blocked_by = None;
        let disposition = match (directive, proposed_action(directive)) {
            (_, None) => Disposition::NoAction,
            _ if confidence_per_mille < threshold_per_mille => Disposition::Held,
            (Directive::SwitchStrategy { strategy: wanted }, _) if wanted == strategy.current() => {
                Disposition::NoAction
            }
            (_, Some(action)) => match guardrails.check(&action, live, inputs.now_ns) {
                Verdict::Blocked(violation) => {
                    blocked_by = Some(violation.rule);
                    Disposition::Blocked
                }
                Verdict::Allowed => {
                    let disposition = match directive {
                        Directive::SwitchStrategy { strategy: wanted } => {
                            match strategy.request(inputs.now_ns, wanted, inputs.pressure_per_mille) {
                                StrategyUpdate::Switched(_) => Disposition::Acted,
                                StrategyUpdate::Unchanged => Disposition::NoAction,
                                StrategyUpdate::HeldByCooldown { .. } => Disposition::RefusedByCooldown,
                                StrategyUpdate::Suppressed { .. } => Disposition::RefusedByFreeze,
                            }
                        }
                        _ => Disposition::Acted,
                    };
                    if disposition == Disposition::Acted {
                        guardrails.commit(&action, inputs.now_ns);
                    }
                    disposition
                }
            },
        };
        match disposition {
            Disposition::Held => metrics.record_event(AutonomyEvent::DecisionHeld),
            Disposition::Blocked => metrics.record_event(AutonomyEvent::DecisionBlocked),
            _ => {}
        }

        let mut outcome = TraceOutcome::NotApplicable;
        if let (Disposition::Acted, Some(kind)) = (disposition, intervention_kind(directive)) {
            metrics.record_intervention(kind);
            match selection {
                Selection::Rule => {}
                Selection::Exploration => metrics.record_event(AutonomyEvent::ExplorationAction),
                Selection::Exploitation => metrics.record_event(AutonomyEvent::ExploitationAction),
            }
            outcome = match prediction {
                None => TraceOutcome::NotTracked,
                Some(prediction) => {
                    match self.tracker.track(metrics, id, kind, prediction, inputs.now_ns, self.config.horizon_ns) {
                        Ok(()) => TraceOutcome::Pending,
                        Err(_) => TraceOutcome::Untracked,
                    }
                }
            };
        }

        let trace = DecisionTrace {
            id,
            interval,
            subsystem: directive.subsystem().unwrap_or(slot),
            at_ns: inputs.now_ns,
            policy: self.policy.name(),
            inputs,
            directive,
            confidence_per_mille,
            threshold_per_mille,
            reason,
            selection,
            prediction,
            disposition,
            blocked_by,
            outcome,
            reward_per_mille: None,
            scoring,
            config: self.config,
        };
        self.traces.push(trace);
        trace
    }

    /// Resolves watched interventions at `now_ns` (see [`InterventionTracker::resolve`]), writes outcome and
    /// reward into their traces and gives each resolved trace to the policy as feedback. An outcome whose
    /// trace was already overwritten still counts in the metrics but reaches neither trace nor policy.
    pub fn resolve(
        &mut self,
        now_ns: u64,
        observed_failure: Option<ObservedFailure>,
        metrics: &AutonomyMetrics,
    ) -> ResolveCounts {
        let traces = &mut self.traces;
        let policy = &mut self.policy;
        self.tracker.resolve(metrics, now_ns, observed_failure, |resolved| {
            let (outcome, reward) = match resolved.outcome {
                InterventionOutcome::Succeeded => (TraceOutcome::Succeeded, REWARD_SUCCESS_PER_MILLE),
                InterventionOutcome::Failed => (TraceOutcome::Failed, REWARD_FAILURE_PER_MILLE),
            };
            if let Some(trace) = traces.get_mut(resolved.intervention.tag) {
                trace.outcome = outcome;
                trace.reward_per_mille = Some(reward);
                if policy.feedback(trace) {
                    metrics.record_event(AutonomyEvent::PolicyUpdate);
                }
            }
        })
    }

    /// Drops every watched intervention without an outcome (e.g. when autonomy is switched off); their traces
    /// still kept say [`TraceOutcome::Dropped`].
    pub fn clear_pending(&mut self, metrics: &AutonomyMetrics) -> usize {
        let traces = &mut self.traces;
        self.tracker.clear(metrics, |dropped| {
            if let Some(trace) = traces.get_mut(dropped.tag) {
                trace.outcome = TraceOutcome::Dropped;
            }
        })
    }

    /// The id of the oldest trace kept whose outcome is still pending, or [`Self::decisions`] when none is: every
    /// trace before it is final, so an exporter that stops here never sends a trace it would have to send again.
    pub fn settled_until(&self) -> u64 {
        let oldest = self.traces.oldest_index();
        self.traces
            .iter()
            .position(|trace| !trace.outcome.is_settled())
            .map_or(self.traces.pushed(), |offset| oldest + offset as u64)
    }

    /// The last `count` traces kept, oldest first.
    pub fn audit(&self, count: usize) -> impl Iterator<Item = &DecisionTrace> + '_ {
        self.traces.last(count)
    }

    /// The id of the oldest trace still kept (equal to [`Self::decisions`] when none is): older ones were
    /// overwritten.
    pub fn oldest_trace_id(&self) -> u64 {
        self.traces.oldest_index()
    }

    /// The trace of decision `id`.
    pub fn explain(&self, id: u64) -> Result<&DecisionTrace, ExplainError> {
        if id >= self.traces.pushed() {
            return Err(ExplainError::NotIssued { id, next_id: self.traces.pushed() });
        }
        self.traces.get(id).ok_or(ExplainError::Evicted { id, oldest_kept: self.traces.oldest_index() })
    }
}

/// What a step acts through: the live state, the guardrails, the strategy controller, the counters.
struct Effectors<'a> {
    live: &'a LiveState,
    guardrails: &'a mut Guardrails,
    strategy: &'a mut StrategyController,
    metrics: &'a AutonomyMetrics,
}

/// The action a directive proposes to the guardrails (`None` for no directive): a reclaim or a boost is one
/// request, a throttle its share, a strategy switch the pressure cap it sets (1000: none), a relaxation its
/// per mille, a rate limit its lines per second.
pub fn proposed_action(directive: Directive) -> Option<ProposedAction> {
    let (effector, magnitude, name) = match directive {
        Directive::None => return None,
        Directive::ProactiveReclaim => (Effector::MemoryReclaim, 1, "proactive_reclaim"),
        Directive::ThrottleAllocations { per_mille } => {
            (Effector::AllocationThrottle, u64::from(per_mille), "throttle_allocations")
        }
        Directive::SwitchStrategy { strategy } => {
            (Effector::PressureCap, strategy.pressure_cap_per_mille().map_or(1000, u64::from), "switch_strategy")
        }
        Directive::AdjustDeadline { relax_per_mille } => {
            (Effector::DeadlineRelaxation, u64::from(relax_per_mille), "adjust_deadline")
        }
        Directive::BoostPriority => (Effector::PriorityBoost, 1, "boost_priority"),
        Directive::LimitOutputRate { lines_per_second } => {
            (Effector::OutputRateLimit, u64::from(lines_per_second), "limit_output_rate")
        }
    };
    Some(ProposedAction { effector, magnitude, name })
}

/// The intervention counter a directive adds to (`None` for no directive).
pub fn intervention_kind(directive: Directive) -> Option<InterventionKind> {
    Some(match directive {
        Directive::None => return None,
        Directive::ProactiveReclaim => InterventionKind::ProactiveCompaction,
        Directive::ThrottleAllocations { .. } => InterventionKind::AllocationThrottle,
        Directive::SwitchStrategy { .. } => InterventionKind::StrategySwitch,
        Directive::AdjustDeadline { .. } => InterventionKind::DeadlineAdjustment,
        Directive::BoostPriority => InterventionKind::PriorityBoost,
        Directive::LimitOutputRate { .. } => InterventionKind::OutputRateLimit,
    })
}

#[cfg(test)]
mod tests;
