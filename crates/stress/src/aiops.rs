//! Shadow and canary runs of a candidate meta-agent policy beside the production one (docs/aiops.md).
//!
//! **Shadow**: after each production decision, [`Shadow::observe`] hands the candidate exactly the telemetry
//! the production policy decided on (the same [`Telemetry`] value, strategy included) and the same
//! configuration; the candidate's choice is recorded and never acted on. Only memory decisions are compared
//! (every interval has one; scheduling decisions are not compared). The report counts
//! agreements, a confusion matrix over directive kinds, the decisions where the two differ, and the reward the
//! pool measured over the interval after each production decision.
//!
//! **Canary**: the candidate makes the decision of a configured share of intervals ([`CanaryConfig`]), chosen
//! deterministically from a seed; a guardrail block of one of its decisions, or a mean interval reward over
//! its last `window` decisions below the production's over the same number by more than `max_reward_drop_milli`,
//! stops it ([`CanaryRollback`]).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use serde::Serialize;
use sis_autonomy::{DecisionTrace, Directive, Disposition, MetaConfig, Telemetry};

use crate::governor::BoxedPolicy;
use crate::learning::LearnedPolicy;

/// Directive kinds of the confusion matrix, in its row and column order.
pub const DIRECTIVE_KINDS: [&str; 5] =
    ["none", "proactive_reclaim", "throttle_allocations", "switch_strategy", "scheduling"];
/// Differing decisions a shadow report keeps (the first ones; later ones are only counted).
pub const DIFFERENCES_KEPT: usize = 32;

/// The row or column of `directive` in the confusion matrix.
pub fn directive_kind(directive: Directive) -> usize {
    match directive {
        Directive::None => 0,
        Directive::ProactiveReclaim => 1,
        Directive::ThrottleAllocations { .. } => 2,
        Directive::SwitchStrategy { .. } => 3,
        Directive::AdjustDeadline { .. } | Directive::BoostPriority | Directive::LimitOutputRate { .. } => 4,
    }
}

/// A decision where production and candidate chose differently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// The production decision's id (its trace in `autoctl audit`/`explain`).
    pub decision: u64,
    /// Its decision interval.
    pub interval: u64,
    /// Production's directive.
    pub production: Directive,
    /// Production's confidence, per mille.
    pub production_confidence_per_mille: u16,
    /// What became of production's decision.
    pub production_disposition: Disposition,
    /// The candidate's directive (never acted on).
    pub candidate: Directive,
    /// The candidate's confidence, per mille (clamped to 1000).
    pub candidate_confidence_per_mille: u16,
    /// Whether the candidate's confidence reached the threshold (it would have been offered to the guardrails).
    pub candidate_confident: bool,
    /// The reward the pool measured over the interval after production's decision, thousandths of a point per
    /// step; `None` until the next decision measured it.
    pub production_reward_milli: Option<i64>,
}

/// What a shadow run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    /// The candidate policy's name.
    pub candidate_policy: &'static str,
    /// The production policy's name (the policy of the last decision compared: `autoctl policy` may change it).
    pub production_policy: &'static str,
    /// Memory decisions both made.
    pub compared: u64,
    /// Those where both chose the same directive (kind and parameters).
    pub agreed: u64,
    /// `agreed * 1000 / compared`, truncated (0 when nothing was compared).
    pub agreement_per_mille: u64,
    /// `confusion[p][c]`: decisions where production chose kind `p` and the candidate kind `c` ([`DIRECTIVE_KINDS`]).
    pub confusion: [[u64; 5]; 5],
    /// Decisions where they differed: `compared - agreed`.
    pub differed: u64,
    /// The first [`DIFFERENCES_KEPT`] of them.
    pub differences: Vec<Difference>,
    /// Rewards measured after agreeing decisions: the candidate would have done exactly this (same action).
    pub agreed_reward_milli_sum: i64,
    /// How many agreeing decisions have a measured reward.
    pub agreed_rewarded: u64,
    /// Rewards measured after differing decisions: what production got; what the candidate would have got is
    /// not observable (its action was never carried out).
    pub differed_reward_milli_sum: i64,
    /// How many differing decisions have a measured reward.
    pub differed_rewarded: u64,
    /// Training steps the candidate took on its own decisions (a learned candidate goes on learning).
    pub candidate_updates: u64,
}

impl ShadowReport {
    fn new(candidate_policy: &'static str, production_policy: &'static str) -> Self {
        ShadowReport {
            candidate_policy,
            production_policy,
            compared: 0,
            agreed: 0,
            agreement_per_mille: 0,
            confusion: [[0; 5]; 5],
            differed: 0,
            differences: Vec::new(),
            agreed_reward_milli_sum: 0,
            agreed_rewarded: 0,
            differed_reward_milli_sum: 0,
            differed_rewarded: 0,
            candidate_updates: 0,
        }
    }

    /// Whether the report passes: at least `min_compared` decisions compared and an agreement of at least
    /// `min_agreement_per_mille`.
    pub fn passes(&self, min_compared: u64, min_agreement_per_mille: u64) -> bool {
        self.compared >= min_compared && self.agreement_per_mille >= min_agreement_per_mille
    }

    /// Whether the report passes `criteria`.
    pub fn passes_criteria(&self, criteria: &ShadowCriteria) -> bool {
        self.passes(criteria.min_compared, criteria.min_agreement_per_mille)
    }
}

/// What a shadow report needs to pass (a promotion to canary or production needs a passing one, or force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShadowCriteria {
    /// Memory decisions compared at least (1..=1,000,000).
    pub min_compared: u64,
    /// Agreement at least, per mille (0..=1000).
    pub min_agreement_per_mille: u64,
}

impl Default for ShadowCriteria {
    /// 100 decisions (1 s of decisions at the default 10 ms interval), agreeing on 800 per mille.
    fn default() -> Self {
        ShadowCriteria { min_compared: 100, min_agreement_per_mille: 800 }
    }
}

/// Shadow criteria refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ShadowCriteriaError {
    /// `min_compared` not in 1..=1,000,000.
    BadMinCompared {
        /// The value.
        min_compared: u64,
    },
    /// `min_agreement_per_mille` above 1000.
    BadMinAgreement {
        /// The value.
        min_agreement_per_mille: u64,
    },
}

impl ShadowCriteria {
    /// The criteria, or the first rule they break.
    pub fn validate(&self) -> Result<(), ShadowCriteriaError> {
        if !(1..=1_000_000).contains(&self.min_compared) {
            return Err(ShadowCriteriaError::BadMinCompared { min_compared: self.min_compared });
        }
        if self.min_agreement_per_mille > 1000 {
            return Err(ShadowCriteriaError::BadMinAgreement { min_agreement_per_mille: self.min_agreement_per_mille });
        }
        Ok(())
    }
}

/// The last production decision, waiting for the next decision's telemetry to measure its interval.
#[derive(Debug, Clone, Copy)]
struct Unrewarded {
    agreed: bool,
    /// Index into `differences`, if kept.
    kept: Option<usize>,
}

/// A candidate deciding beside production, never acting.
pub struct Shadow {
    candidate: BoxedPolicy,
    report: ShadowReport,
    unrewarded: Option<Unrewarded>,
}

impl core::fmt::Debug for Shadow {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Shadow").field("report", &self.report).finish()
    }
}

impl Shadow {
    /// A shadow of `candidate` beside the production policy named `production_policy`.
    pub fn new(candidate: BoxedPolicy, production_policy: &'static str) -> Self {
        let report = ShadowReport::new(candidate.name(), production_policy);
        Shadow { candidate, report, unrewarded: None }
    }

    /// The report so far.
    pub fn report(&self) -> &ShadowReport {
        &self.report
    }

    /// The candidate, and the report, when the shadow ends.
    pub fn into_parts(self) -> (BoxedPolicy, ShadowReport) {
        (self.candidate, self.report)
    }

    /// Gives the candidate production's inputs and configuration of a memory decision, records its choice
    /// against production's trace, and measures the previous decision's interval from these inputs.
    pub fn observe(&mut self, inputs: &Telemetry, config: &MetaConfig, production: &DecisionTrace) {
        let reward = LearnedPolicy::reward_milli(inputs);
        if let Some(previous) = self.unrewarded.take() {
            if previous.agreed {
                self.report.agreed_reward_milli_sum = self.report.agreed_reward_milli_sum.saturating_add(reward);
                self.report.agreed_rewarded += 1;
            } else {
                self.report.differed_reward_milli_sum = self.report.differed_reward_milli_sum.saturating_add(reward);
                self.report.differed_rewarded += 1;
                if let Some(kept) = previous.kept.and_then(|index| self.report.differences.get_mut(index)) {
                    kept.production_reward_milli = Some(reward);
                }
            }
        }
        let decision = self.candidate.decide(inputs, config);
        self.report.candidate_updates += self.candidate.take_updates();
        let report = &mut self.report;
        report.production_policy = production.policy;
        report.compared += 1;
        let agreed = decision.directive == production.directive;
        report.confusion[directive_kind(production.directive)][directive_kind(decision.directive)] += 1;
        let mut kept = None;
        if agreed {
            report.agreed += 1;
        } else {
            report.differed += 1;
            if report.differences.len() < DIFFERENCES_KEPT {
                kept = Some(report.differences.len());
                let confidence = decision.confidence_per_mille.min(1000);
                report.differences.push(Difference {
                    decision: production.id,
                    interval: production.interval,
                    production: production.directive,
                    production_confidence_per_mille: production.confidence_per_mille,
                    production_disposition: production.disposition,
                    candidate: decision.directive,
                    candidate_confidence_per_mille: confidence,
                    candidate_confident: confidence >= config.confidence_threshold_per_mille,
                    production_reward_milli: None,
                });
            }
        }
        report.agreement_per_mille = report.agreed * 1000 / report.compared;
        self.unrewarded = Some(Unrewarded { agreed, kept });
    }

    /// Forgets the decision waiting for its reward (a new workload run starts: its interval does not follow).
    pub fn new_run(&mut self) {
        self.unrewarded = None;
    }
}

/// How a canary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CanaryConfig {
    /// Share of decision intervals the candidate decides, per mille (1..=1000).
    pub share_per_mille: u16,
    /// Seed of the selection (its phase).
    pub seed: u64,
    /// Decisions per side the reward rule compares (1..=256).
    pub window: u32,
    /// Largest allowed drop of the candidate's mean interval reward below production's, thousandths of a point
    /// per step (at least 0).
    pub max_reward_drop_milli: i64,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig { share_per_mille: 250, seed: 0, window: 16, max_reward_drop_milli: 500 }
    }
}

/// A canary configuration refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum CanaryConfigError {
    /// `share_per_mille` not in 1..=1000.
    BadShare {
        /// The value.
        share_per_mille: u16,
    },
    /// `window` not in 1..=256.
    BadWindow {
        /// The value.
        window: u32,
    },
    /// `max_reward_drop_milli` below 0.
    BadRewardDrop {
        /// The value.
        max_reward_drop_milli: i64,
    },
}

impl CanaryConfig {
    /// The configuration, or the first rule it breaks.
    pub fn validate(&self) -> Result<(), CanaryConfigError> {
        if !(1..=1000).contains(&self.share_per_mille) {
            return Err(CanaryConfigError::BadShare { share_per_mille: self.share_per_mille });
        }
        if !(1..=256).contains(&self.window) {
            return Err(CanaryConfigError::BadWindow { window: self.window });
        }
        if self.max_reward_drop_milli < 0 {
            return Err(CanaryConfigError::BadRewardDrop { max_reward_drop_milli: self.max_reward_drop_milli });
        }
        Ok(())
    }

    /// Whether the candidate decides the canary's `index`-th interval (from 0): with `phase = seed mod 1000`,
    /// interval `i` is the candidate's when `floor((i + phase + 1) * share / 1000) > floor((i + phase) * share /
    /// 1000)`. Any 1000 consecutive intervals hold exactly `share` of them, spread evenly.
    pub fn selects(&self, index: u64) -> bool {
        let share = u64::from(self.share_per_mille);
        let position = index.wrapping_add(self.seed % 1000);
        (position + 1) * share / 1000 > position * share / 1000
    }
}

/// Why a canary was stopped automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum CanaryRollback {
    /// The guardrails blocked a decision the candidate made.
    GuardrailBlock {
        /// The decision's id.
        decision: u64,
        /// The rule that blocked it.
        rule: &'static str,
    },
    /// The candidate's mean interval reward fell below production's by more than the threshold.
    RewardDrop {
        /// Candidate's mean over its last `window` decisions, thousandths of a point per step.
        candidate_mean_milli: i64,
        /// Production's mean over its last `window` decisions.
        production_mean_milli: i64,
        /// The threshold in force.
        max_reward_drop_milli: i64,
    },
}

impl CanaryRollback {
    /// The stable code the audit entry records.
    pub fn code(&self) -> &'static str {
        match self {
            CanaryRollback::GuardrailBlock { .. } => "guardrail-block",
            CanaryRollback::RewardDrop { .. } => "reward-drop",
        }
    }
}

/// What a canary has done so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryStatus {
    /// The candidate policy's name.
    pub candidate_policy: &'static str,
    /// Its configuration.
    pub config: CanaryConfig,
    /// Whether the canary is still running (false once stopped or rolled back).
    pub active: bool,
    /// Decision intervals since it started.
    pub intervals: u64,
    /// Those the candidate decided.
    pub candidate_intervals: u64,
    /// Candidate decisions the guardrails blocked.
    pub candidate_blocked: u64,
    /// The candidate's last `window` measured interval rewards, oldest first.
    pub candidate_rewards_milli: Vec<i64>,
    /// Production's last `window` measured interval rewards, oldest first.
    pub production_rewards_milli: Vec<i64>,
    /// Why it was rolled back, if it was.
    pub rollback: Option<CanaryRollback>,
}

/// A candidate deciding a share of the intervals.
pub struct Canary {
    candidate: BoxedPolicy,
    status: CanaryStatus,
    candidate_rewards: VecDeque<i64>,
    production_rewards: VecDeque<i64>,
    /// Who decided the last interval (true: candidate), waiting for the next decision's telemetry.
    unrewarded: Option<bool>,
}

impl core::fmt::Debug for Canary {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Canary").field("status", &self.status).finish()
    }
}

impl Canary {
    /// A canary of `candidate` with `config`, or the rule the configuration breaks.
    pub fn new(candidate: BoxedPolicy, config: CanaryConfig) -> Result<Self, CanaryConfigError> {
        config.validate()?;
        let status = CanaryStatus {
            candidate_policy: candidate.name(),
            config,
            active: true,
            intervals: 0,
            candidate_intervals: 0,
            candidate_blocked: 0,
            candidate_rewards_milli: Vec::new(),
            production_rewards_milli: Vec::new(),
            rollback: None,
        };
        Ok(Canary {
            candidate,
            status,
            candidate_rewards: VecDeque::new(),
            production_rewards: VecDeque::new(),
            unrewarded: None,
        })
    }

    /// What it has done so far.
    pub fn status(&self) -> CanaryStatus {
        let mut status = self.status.clone();
        status.candidate_rewards_milli = self.candidate_rewards.iter().copied().collect();
        status.production_rewards_milli = self.production_rewards.iter().copied().collect();
        status
    }

    /// The candidate, and the final status, when the canary ends.
    pub fn into_parts(mut self) -> (BoxedPolicy, CanaryStatus) {
        self.status.active = false;
        let status = self.status();
        (self.candidate, status)
    }

    /// Measures the previous interval from `inputs` (the telemetry of the decision about to be made) for
    /// whoever decided it, then checks the reward rule. Returns whether the candidate decides this interval.
    pub(crate) fn begin_interval(&mut self, inputs: &Telemetry) -> bool {
        let reward = LearnedPolicy::reward_milli(inputs);
        let window = self.status.config.window as usize;
        if let Some(candidate) = self.unrewarded.take() {
            let side = if candidate { &mut self.candidate_rewards } else { &mut self.production_rewards };
            if side.len() == window {
                side.pop_front();
            }
            side.push_back(reward);
            self.check_rewards();
        }
        let selected = self.status.active && self.status.config.selects(self.status.intervals);
        self.status.intervals += 1;
        if selected {
            self.status.candidate_intervals += 1;
        }
        selected
    }

    /// Records the interval's memory decision (made by the candidate when `candidate`); a block of a candidate
    /// decision stops the canary.
    pub(crate) fn end_interval(&mut self, candidate: bool, trace: &DecisionTrace) {
        self.unrewarded = Some(candidate);
        if candidate && trace.disposition == Disposition::Blocked {
            self.status.candidate_blocked += 1;
            if self.status.rollback.is_none() {
                let rule = trace.blocked_by.map_or("unknown", sis_safety::RuleId::id);
                self.roll_back(CanaryRollback::GuardrailBlock { decision: trace.id, rule });
            }
        }
    }

    /// Forgets the interval waiting for its reward (a new workload run).
    pub(crate) fn new_run(&mut self) {
        self.unrewarded = None;
    }

    /// Whether the canary is active (not yet rolled back).
    pub fn active(&self) -> bool {
        self.status.active
    }

    /// Why it was rolled back, if it was.
    pub fn rollback(&self) -> Option<CanaryRollback> {
        self.status.rollback
    }

    pub(crate) fn candidate_mut(&mut self) -> &mut BoxedPolicy {
        &mut self.candidate
    }

    fn check_rewards(&mut self) {
        let window = self.status.config.window as usize;
        if self.status.rollback.is_some()
            || self.candidate_rewards.len() < window
            || self.production_rewards.len() < window
        {
            return;
        }
        let mean = |side: &VecDeque<i64>| side.iter().sum::<i64>() / window as i64;
        let (candidate_mean_milli, production_mean_milli) =
            (mean(&self.candidate_rewards), mean(&self.production_rewards));
        let max_reward_drop_milli = self.status.config.max_reward_drop_milli;
        if production_mean_milli.saturating_sub(candidate_mean_milli) > max_reward_drop_milli {
            self.roll_back(CanaryRollback::RewardDrop {
                candidate_mean_milli,
                production_mean_milli,
                max_reward_drop_milli,
            });
        }
    }

    fn roll_back(&mut self, reason: CanaryRollback) {
        self.status.rollback = Some(reason);
        self.status.active = false;
    }
}

#[cfg(test)]
mod tests;
