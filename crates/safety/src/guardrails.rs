//! The guardrails: judge a proposed action against its effector's rules, remember committed ones for the
//! frequency rules, count everything, keep the last blocks, and validate the invariants on the live state.

use core::fmt;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::action::{Effector, LiveState, ProposedAction, EFFECTORS};
use crate::rules::{RuleId, RuleKind, Rules, SetError, FREQUENCY_MAX_COUNT, RULES};

/// Block entries kept (`safetyctl status` shows them, oldest first).
pub const BLOCKS_KEPT: usize = 32;

/// The figures a rule found outside its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figures {
    /// A value above the rule's maximum.
    AboveMax {
        /// The value.
        value: u64,
        /// The maximum.
        limit: u64,
    },
    /// A value below the rule's minimum.
    BelowMin {
        /// The value.
        value: u64,
        /// The minimum.
        limit: u64,
    },
    /// A change larger than the rule allows in one action.
    StepTooLarge {
        /// The figure in force.
        current: u64,
        /// The figure proposed.
        proposed: u64,
        /// The largest change allowed.
        limit: u64,
    },
    /// The window already holds the most actions allowed.
    TooFrequent {
        /// Actions committed within the window ending now.
        in_window: u64,
        /// The most allowed.
        limit: u64,
        /// The window, ms.
        window_ms: u64,
    },
    /// A relative deadline beyond its bound.
    DeadlineBeyondBound {
        /// The relative deadline, ns.
        deadline_ns: u64,
        /// The period, ns.
        period_ns: u64,
        /// The rule's value, per mille of the period.
        per_mille_of_period: u64,
        /// The scheduler's bound, ns.
        scheduler_bound_ns: u64,
        /// The bound: the smaller of the rule's share of the period and the scheduler's bound, ns.
        limit_ns: u64,
    },
    /// The console does not hold its capability.
    ConsoleCapabilityMissing,
}

/// A rule an action or a state breaks, with the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: RuleId,
    /// What it found.
    pub figures: Figures,
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.rule;
        let unit = rule.spec().unit;
        match self.figures {
            Figures::AboveMax { value, limit } => write!(formatter, "{value} {unit} is above {rule} = {limit}"),
            Figures::BelowMin { value, limit } => write!(formatter, "{value} {unit} is below {rule} = {limit}"),
            Figures::StepTooLarge { current, proposed, limit } => write!(
                formatter,
                "{current} to {proposed} {unit} is a change of {}, above {rule} = {limit}",
                current.abs_diff(proposed)
            ),
            Figures::TooFrequent { in_window, limit, window_ms } => {
                write!(formatter, "already {in_window} in the last {window_ms} ms, the most {rule} = {limit} allows")
            }
            Figures::DeadlineBeyondBound {
                deadline_ns,
                period_ns,
                per_mille_of_period,
                scheduler_bound_ns,
                limit_ns,
            } => write!(
                formatter,
                "relative deadline {deadline_ns} ns is beyond {limit_ns} ns, the smaller of {rule} = \
                 {per_mille_of_period} ({} ns of the {period_ns} ns period) and the scheduler's bound \
                 {scheduler_bound_ns} ns",
                share_of_period_ns(period_ns, per_mille_of_period)
            ),
            Figures::ConsoleCapabilityMissing => {
                write!(formatter, "the console would not hold its capability ({rule})")
            }
        }
    }
}

impl Violation {
    /// The sentence, with the figures.
    pub fn reason(&self) -> alloc::string::String {
        alloc::format!("{self}")
    }
}

impl Serialize for Violation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Violation", 3)?;
        state.serialize_field("rule", &self.rule)?;
        state.serialize_field("figures", &self.figures)?;
        state.serialize_field("reason", &self.reason())?;
        state.end()
    }
}

/// A guardrail's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every rule of the effector holds: the action may be carried out.
    Allowed,
    /// The first rule it breaks, in evaluation order ([`RuleId::ALL`]); it must not be carried out.
    Blocked(Violation),
}

impl Verdict {
    /// The rule that blocked, if any.
    pub fn blocked_by(&self) -> Option<RuleId> {
        match self {
            Verdict::Allowed => None,
            Verdict::Blocked(violation) => Some(violation.rule),
        }
    }
}

/// Checks of one effector's actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EffectorCounters {
    /// Actions checked.
    pub checked: u64,
    /// Of those, allowed.
    pub allowed: u64,
    /// Of those, blocked.
    pub blocked: u64,
    /// Allowed actions committed as carried out (what the frequency rules count).
    pub committed: u64,
}

/// Evaluations of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounters {
    /// Actions it was evaluated for (an action is judged rule by rule and stops at the first that blocks).
    pub checked: u64,
    /// Of those, actions it let through.
    pub allowed: u64,
    /// Of those, actions it blocked.
    pub blocked: u64,
}

/// One blocked action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry {
    /// Time of the check.
    pub at_ns: u64,
    /// The action proposed.
    pub action: ProposedAction,
    /// Why it was blocked.
    pub violation: Violation,
}

impl Serialize for BlockEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("BlockEntry", 7)?;
        state.serialize_field("at_ns", &self.at_ns)?;
        state.serialize_field("effector", &self.action.effector)?;
        state.serialize_field("action", &self.action.name)?;
        state.serialize_field("magnitude", &self.action.magnitude)?;
        state.serialize_field("rule", &self.violation.rule)?;
        state.serialize_field("figures", &self.violation.figures)?;
        state.serialize_field("reason", &self.violation.reason())?;
        state.end()
    }
}

/// How an invariant stands on a live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvariantStatus {
    /// It holds.
    Held,
    /// It is broken.
    Violated,
    /// The state has nothing it bounds (no deadline thread is watched).
    NotApplicable,
}

/// One invariant judged on a live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvariantReport {
    /// The invariant.
    pub rule: RuleId,
    /// Held, violated or not applicable.
    pub status: InvariantStatus,
    /// The figures when violated.
    pub violation: Option<Violation>,
    /// The figure judged (throttle per mille, relative deadline ns, 1 when the console holds its capability);
    /// `None` when not applicable.
    pub value: Option<u64>,
    /// The bound it was judged against, in the same unit.
    pub limit: Option<u64>,
}

impl Serialize for InvariantReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("InvariantReport", 5)?;
        state.serialize_field("rule", &self.rule)?;
        state.serialize_field("status", &self.status)?;
        state.serialize_field("value", &self.value)?;
        state.serialize_field("limit", &self.limit)?;
        state.serialize_field("reason", &self.violation.map(|violation| violation.reason()))?;
        state.end()
    }
}

/// A rule with its value in force, as `safetyctl rules` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// Stable id.
    pub id: RuleId,
    /// The effector it judges (`null`: every effector).
    pub effector: Option<Effector>,
    /// What it bounds.
    pub kind: RuleKind,
    /// Value in force.
    pub value: u64,
    /// Value at boot.
    pub default: u64,
    /// Smallest settable value.
    pub min: u64,
    /// Largest settable value.
    pub max: u64,
    /// `set` may change it.
    pub settable: bool,
    /// Unit of the values.
    pub unit: &'static str,
    /// What it means.
    pub summary: &'static str,
}

/// The guardrails: rules in force, the commit times the frequency rules count, counters and the last blocks.
///
/// All the memory it will ever hold is taken when it is made (about 56 KiB of commit times, and the block
/// entries), so a kernel's heap is as steady around a run as before it.
#[derive(Debug, Clone)]
pub struct Guardrails {
    rules: Rules,
    /// Per effector, the times of its last [`FREQUENCY_MAX_COUNT`] commits, ascending.
    commits: [VecDeque<u64>; EFFECTORS],
    effectors: [EffectorCounters; EFFECTORS],
    /// Actions each rule blocked; what it checked and allowed follows from these and the effectors' checks
    /// ([`Guardrails::rule_counters`]).
    blocked_by_rule: [u64; RULES],
    blocks: VecDeque<BlockEntry>,
    blocks_total: u64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails::new()
    }
}

impl Guardrails {
    /// Every rule at its default, nothing counted.
    pub fn new() -> Self {
        Guardrails {
            rules: Rules::new(),
            commits: core::array::from_fn(|_| VecDeque::with_capacity(FREQUENCY_MAX_COUNT as usize)),
            effectors: [EffectorCounters::default(); EFFECTORS],
            blocked_by_rule: [0; RULES],
            blocks: VecDeque::with_capacity(BLOCKS_KEPT),
            blocks_total: 0,
        }
    }

    /// The values in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Every rule with its value in force, in evaluation order.
    pub fn rule_views(&self) -> impl Iterator<Item = RuleView> + '_ {
        RuleId::ALL.iter().map(|&rule| {
            let spec = rule.spec();
            RuleView {
                id: rule,
                effector: spec.effector,
                kind: spec.kind,
                value: self.rules.get(rule),
                default: spec.default,
                min: spec.min,
                max: spec.max,
                settable: spec.settable,
                unit: spec.unit,
                summary: spec.summary,
            }
        })
    }

    /// Sets the rule with id `id` (see [`Rules::set`]); returns the value it had. A refusal changes nothing.
    pub fn set(&mut self, id: &str, value: u64) -> Result<u64, SetError> {
        self.rules.set(id, value)
    }

    /// Judges `action` on `live` at `now_ns` against every rule of its effector, in [`RuleId::ALL`] order, up
    /// to the first that blocks, and counts the result. Nothing is remembered for the frequency rules:
    /// [`Guardrails::commit`] does that once the action is carried out.
    pub fn check(&mut self, action: &ProposedAction, live: &LiveState, now_ns: u64) -> Verdict {
        let effector = action.effector;
        self.effectors[effector.index()].checked += 1;
        match self.first_violation(action, live, now_ns) {
            None => {
                self.effectors[effector.index()].allowed += 1;
                Verdict::Allowed
            }
            Some(violation) => {
                self.block(*action, violation, now_ns);
                Verdict::Blocked(violation)
            }
        }
    }

    /// The first rule of [`RuleId::judging`] that `action` breaks, with its figures. Written out per effector
    /// (straight-line code, a few instructions a rule) in the order of `judging`; a test checks it against
    /// [`Guardrails::evaluate`] rule by rule in that order.
    pub(crate) fn first_violation(&self, action: &ProposedAction, live: &LiveState, now_ns: u64) -> Option<Violation> {
        use RuleId::*;
        let judge = |rule: RuleId| self.evaluate(rule, action, live, now_ns).map(|figures| Violation { rule, figures });
        match action.effector {
            Effector::MemoryReclaim => judge(ReclaimMaxPerWindow).or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::AllocationThrottle => judge(ThrottleMaxPerMille)
                .or_else(|| judge(ThrottleMaxStepPerMille))
                .or_else(|| judge(ThrottleMaxPerWindow))
                .or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::PressureCap => judge(PressureCapMinPerMille)
                .or_else(|| judge(PressureCapMaxStepPerMille))
                .or_else(|| judge(PressureCapMaxPerWindow))
                .or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::DeadlineRelaxation => judge(DeadlineMaxRelaxPerMille)
                .or_else(|| judge(DeadlineMaxPerMilleOfPeriod))
                .or_else(|| judge(DeadlineMaxPerWindow))
                .or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::PriorityBoost => judge(BoostMaxPerWindow).or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::OutputRateLimit => judge(OutputRateMinLinesPerSecond)
                .or_else(|| judge(OutputRateMaxPerWindow))
                .or_else(|| judge(ConsoleCapabilityHeld)),
            Effector::Generic => judge(GenericMaxMagnitude)
                .or_else(|| judge(GenericMaxPerWindow))
                .or_else(|| judge(ConsoleCapabilityHeld)),
        }
    }

    /// The capacities of the commit histories and of the block entries.
    #[cfg(test)]
    pub(crate) fn capacities(&self) -> (Vec<usize>, usize) {
        (self.commits.iter().map(VecDeque::capacity).collect(), self.blocks.capacity())
    }

    /// Counts a block and keeps its entry.
    fn block(&mut self, action: ProposedAction, violation: Violation, now_ns: u64) {
        self.effectors[action.effector.index()].blocked += 1;
        self.blocked_by_rule[violation.rule.index()] += 1;
        self.blocks_total += 1;
        if self.blocks.len() == BLOCKS_KEPT {
            self.blocks.pop_front();
        }
        self.blocks.push_back(BlockEntry { at_ns: now_ns, action, violation });
    }

    /// Records `action`, allowed by [`Guardrails::check`], as carried out at `now_ns`: the frequency rule of
    /// its effector counts it from now on.
    pub fn commit(&mut self, action: &ProposedAction, now_ns: u64) {
        let effector = action.effector.index();
        let commits = &mut self.commits[effector];
        if commits.len() as u64 == FREQUENCY_MAX_COUNT {
            commits.pop_front();
        }
        // Times come from one clock and arrive in order; one that does not is still placed in order.
        if commits.back().is_none_or(|&last| last <= now_ns) {
            commits.push_back(now_ns);
        } else {
            let position = commits.partition_point(|&time| time <= now_ns);
            commits.insert(position, now_ns);
        }
        self.effectors[effector].committed += 1;
    }

    /// Judges every invariant on `live`, in evaluation order; counts nothing.
    pub fn validate(&self, live: &LiveState) -> Vec<InvariantReport> {
        RuleId::ALL
            .iter()
            .filter(|rule| rule.spec().kind == RuleKind::Invariant)
            .map(|&rule| {
                let (value, limit, figures) = self.invariant(rule, live);
                let status = match (value, figures) {
                    (None, _) => InvariantStatus::NotApplicable,
                    (Some(_), None) => InvariantStatus::Held,
                    (Some(_), Some(_)) => InvariantStatus::Violated,
                };
                InvariantReport {
                    rule,
                    status,
                    violation: figures.map(|figures| Violation { rule, figures }),
                    value,
                    limit,
                }
            })
            .collect()
    }

    /// Counters of `effector`'s actions.
    pub fn effector_counters(&self, effector: Effector) -> EffectorCounters {
        self.effectors[effector.index()]
    }

    /// Counters of `rule`. An action is judged by its effector's rules in order up to the first that blocks, so a
    /// rule checked every action of its effectors that the rules before it let through.
    pub fn rule_counters(&self, rule: RuleId) -> RuleCounters {
        let checked = Effector::ALL
            .iter()
            .filter_map(|&effector| {
                let rules = RuleId::judging(effector);
                let position = rules.iter().position(|&judging| judging == rule)?;
                let stopped_before: u64 =
                    rules[..position].iter().map(|earlier| self.blocked_by_rule[earlier.index()]).sum();
                Some(self.effectors[effector.index()].checked - stopped_before)
            })
            .sum();
        let blocked = self.blocked_by_rule[rule.index()];
        RuleCounters { checked, allowed: checked - blocked, blocked }
    }

    /// Every effector's counters summed.
    pub fn totals(&self) -> EffectorCounters {
        self.effectors.iter().fold(EffectorCounters::default(), |sum, counters| EffectorCounters {
            checked: sum.checked + counters.checked,
            allowed: sum.allowed + counters.allowed,
            blocked: sum.blocked + counters.blocked,
            committed: sum.committed + counters.committed,
        })
    }

    /// The last [`BLOCKS_KEPT`] blocks, oldest first.
    pub fn blocks(&self) -> impl Iterator<Item = &BlockEntry> + '_ {
        self.blocks.iter()
    }

    /// Blocks since boot (kept or not).
    pub fn blocks_total(&self) -> u64 {
        self.blocks_total
    }

    /// Figures outside `rule`'s bound for `action` on `live` at `now_ns`, or `None` when it holds. An invariant
    /// is judged on the state after the action ([`LiveState::after`]), field by field: the throttle after a
    /// throttle action is its magnitude, the deadline after a relaxation the relaxed one, and no action changes
    /// the console's capability.
    #[inline(always)]
    pub(crate) fn evaluate(
        &self,
        rule: RuleId,
        action: &ProposedAction,
        live: &LiveState,
        now_ns: u64,
    ) -> Option<Figures> {
        use RuleId::*;
        let limit = self.rules.get(rule);
        let magnitude = action.magnitude;
        let step = |current: u64| {
            (current.abs_diff(magnitude) > limit).then_some(Figures::StepTooLarge {
                current,
                proposed: magnitude,
                limit,
            })
        };
        match rule {
            ThrottleMaxPerMille | DeadlineMaxRelaxPerMille | GenericMaxMagnitude => {
                (magnitude > limit).then_some(Figures::AboveMax { value: magnitude, limit })
            }
            PressureCapMinPerMille | OutputRateMinLinesPerSecond => {
                (magnitude < limit).then_some(Figures::BelowMin { value: magnitude, limit })
            }
            ThrottleMaxStepPerMille => step(live.throttle_per_mille),
            PressureCapMaxStepPerMille => step(live.pressure_cap_per_mille),
            DeadlineMaxPerMilleOfPeriod => self.deadline_after(action, live),
            ConsoleCapabilityHeld => (!live.console_capability_held).then_some(Figures::ConsoleCapabilityMissing),
            ReclaimMaxPerWindow
            | ThrottleMaxPerWindow
            | PressureCapMaxPerWindow
            | DeadlineMaxPerWindow
            | BoostMaxPerWindow
            | OutputRateMaxPerWindow
            | GenericMaxPerWindow => self.too_frequent(rule, action.effector, now_ns),
            ReclaimWindowMs | ThrottleWindowMs | PressureCapWindowMs | DeadlineWindowMs | BoostWindowMs
            | OutputRateWindowMs | GenericWindowMs => None,
        }
    }

    /// The deadline invariant on the state after a relaxation. Kept out of line: inlined, its 128-bit
    /// arithmetic was computed ahead of every check, whatever the effector.
    #[inline(never)]
    fn deadline_after(&self, action: &ProposedAction, live: &LiveState) -> Option<Figures> {
        self.invariant(RuleId::DeadlineMaxPerMilleOfPeriod, &live.after(action)).2
    }

    /// The frequency rule's figures when `effector`'s window ending at `now_ns` already holds its limit.
    #[inline]
    fn too_frequent(&self, rule: RuleId, effector: Effector, now_ns: u64) -> Option<Figures> {
        let limit = self.rules.get(rule);
        // A frequency rule's window parameter follows it in the table (a test checks it).
        let window_ms = self.rules.values_from(rule.index() + 1).first().copied().unwrap_or(0);
        let window_ns = window_ms.saturating_mul(1_000_000);
        let commits = &self.commits[effector.index()];
        // A commit at t is within the window when now - t < window (a time after now counts as within).
        let within = |time: u64| now_ns.saturating_sub(time) < window_ns;
        let full = match limit {
            0 => true,
            _ => commits.len() as u64 >= limit && within(commits[commits.len() - limit as usize]),
        };
        full.then(|| Figures::TooFrequent {
            in_window: commits.iter().rev().take_while(|&&time| within(time)).count() as u64,
            limit,
            window_ms,
        })
    }

    /// An invariant on `state`: the figure judged and its bound (`None` when not applicable), and the figures
    /// when broken.
    fn invariant(&self, rule: RuleId, state: &LiveState) -> (Option<u64>, Option<u64>, Option<Figures>) {
        let value = self.rules.get(rule);
        match rule {
            RuleId::ThrottleMaxPerMille => {
                let throttle = state.throttle_per_mille;
                let broken = (throttle > value).then_some(Figures::AboveMax { value: throttle, limit: value });
                (Some(throttle), Some(value), broken)
            }
            RuleId::DeadlineMaxPerMilleOfPeriod => match state.deadline {
                None => (None, None, None),
                Some(deadline) => {
                    let limit_ns = share_of_period_ns(deadline.period_ns, value).min(deadline.bound_ns);
                    let broken = (deadline.deadline_ns > limit_ns).then_some(Figures::DeadlineBeyondBound {
                        deadline_ns: deadline.deadline_ns,
                        period_ns: deadline.period_ns,
                        per_mille_of_period: value,
                        scheduler_bound_ns: deadline.bound_ns,
                        limit_ns,
                    });
                    (Some(deadline.deadline_ns), Some(limit_ns), broken)
                }
            },
            RuleId::ConsoleCapabilityHeld => {
                let held = state.console_capability_held;
                (Some(held as u64), Some(1), (!held).then_some(Figures::ConsoleCapabilityMissing))
            }
            _ => (None, None, None),
        }
    }
}

/// `per_mille` of `period_ns`, rounded down (saturating).
fn share_of_period_ns(period_ns: u64, per_mille: u64) -> u64 {
    u64::try_from(period_ns as u128 * per_mille as u128 / 1000).unwrap_or(u64::MAX)
}
