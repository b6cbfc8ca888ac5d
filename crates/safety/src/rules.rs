//! The rules: stable ids, kinds, defaults and ranges, and the values in force with their validated setter.
//!
//! Every default leaves the meta-agent exactly as it acted before guardrails existed: magnitude and step
//! bounds sit at the edge of what its directives can carry (a throttle or a cap is at most 1000 per mille),
//! frequency limits allow 1000 actions a second where the autonomy thread decides at most once a
//! millisecond, and the deadline bound is the scheduler's own (two periods), which refuses any relaxation
//! beyond it anyway.

use core::fmt;

use alloc::string::String;
use serde::{Serialize, Serializer};

use crate::action::Effector;

/// What a rule bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The action's magnitude is at most the value.
    MaxMagnitude,
    /// The action's magnitude is at least the value.
    MinMagnitude,
    /// |new - current| is at most the value, the current figure read from the live state.
    RateOfChange,
    /// At most the value actions committed within the effector's window (a sliding window, exact).
    Frequency,
    /// The window of the effector's frequency rule, ms (a parameter: never blocks by itself).
    Window,
    /// A condition on the state after the action (and on the live state, in `validate`).
    Invariant,
}

/// The largest value a frequency rule takes: the guardrails keep this many commit times per effector.
pub const FREQUENCY_MAX_COUNT: u64 = 1_000;
/// The longest frequency window, ms (one hour).
pub const WINDOW_MAX_MS: u64 = 3_600_000;
/// Deadline bound's largest value, per mille of the period (ten periods; the scheduler's own bound applies
/// as well).
pub const DEADLINE_MAX_PER_MILLE_OF_PERIOD: u64 = 10_000;
/// Output rate floor's largest value, lines per second.
pub const OUTPUT_RATE_MAX_LINES_PER_SECOND: u64 = 1_000_000;

/// A rule's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    /// Stable id, `effector.bound`.
    pub id: &'static str,
    /// The effector whose actions it judges; `None`: every effector's.
    pub effector: Option<Effector>,
    /// What it bounds.
    pub kind: RuleKind,
    /// Value at boot.
    pub default: u64,
    /// Smallest value `set` accepts.
    pub min: u64,
    /// Largest value `set` accepts.
    pub max: u64,
    /// `set` may change it (a fixed rule keeps its default).
    pub settable: bool,
    /// Unit of the value.
    pub unit: &'static str,
    /// What it means, one sentence.
    pub summary: &'static str,
}

macro_rules! rules {
    ($($variant:ident => $id:literal, $effector:expr, $kind:ident, $default:expr, $min:expr, $max:expr, $settable:expr, $unit:literal, $summary:literal;)*) => {
        /// A rule, by its stable id (serialized as the id).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId {
            $(
                #[doc = $summary]
                $variant,
            )*
        }

        impl RuleId {
            /// Every rule, in evaluation order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];

            /// The rule's declaration.
            pub const fn spec(self) -> &'static RuleSpec {
                &SPECS[self as usize]
            }
        }

        const SPECS: &[RuleSpec] = &[$(RuleSpec {
            id: $id,
            effector: $effector,
            kind: RuleKind::$kind,
            default: $default,
            min: $min,
            max: $max,
            settable: $settable,
            unit: $unit,
            summary: $summary,
        }),*];
    };
}

use Effector::*;

rules! {
    ReclaimMaxPerWindow => "reclaim.max_per_window", Some(MemoryReclaim), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many reclaim requests within reclaim.window_ms.";
    ReclaimWindowMs => "reclaim.window_ms", Some(MemoryReclaim), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of reclaim.max_per_window.";
    ThrottleMaxPerMille => "throttle.max_per_mille", Some(AllocationThrottle), Invariant, 1_000, 0, 1_000, true, "per mille",
        "The throttle in force never refuses more than this share of allocation requests.";
    ThrottleMaxStepPerMille => "throttle.max_step_per_mille", Some(AllocationThrottle), RateOfChange, 1_000, 0, 1_000, true, "per mille",
        "A throttle action changes the throttle in force by at most this much.";
    ThrottleMaxPerWindow => "throttle.max_per_window", Some(AllocationThrottle), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many throttle actions within throttle.window_ms.";
    ThrottleWindowMs => "throttle.window_ms", Some(AllocationThrottle), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of throttle.max_per_window.";
    PressureCapMinPerMille => "pressure_cap.min_per_mille", Some(PressureCap), MinMagnitude, 0, 0, 1_000, true, "per mille",
        "A strategy switch never caps pressure below this (1000: no cap).";
    PressureCapMaxStepPerMille => "pressure_cap.max_step_per_mille", Some(PressureCap), RateOfChange, 1_000, 0, 1_000, true, "per mille",
        "A strategy switch moves the pressure cap by at most this much.";
    PressureCapMaxPerWindow => "pressure_cap.max_per_window", Some(PressureCap), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many strategy switches within pressure_cap.window_ms.";
    PressureCapWindowMs => "pressure_cap.window_ms", Some(PressureCap), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of pressure_cap.max_per_window.";
    DeadlineMaxRelaxPerMille => "deadline.max_relax_per_mille", Some(DeadlineRelaxation), MaxMagnitude, 1_000, 0, 1_000, true, "per mille",
        "One relaxation lengthens the relative deadline by at most this share of itself.";
    DeadlineMaxPerMilleOfPeriod => "deadline.max_per_mille_of_period", Some(DeadlineRelaxation), Invariant, 2_000, 1, DEADLINE_MAX_PER_MILLE_OF_PERIOD, true, "per mille of the period",
        "The relative deadline never exceeds this share of its period, nor the scheduler's bound.";
    DeadlineMaxPerWindow => "deadline.max_per_window", Some(DeadlineRelaxation), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many deadline relaxations within deadline.window_ms.";
    DeadlineWindowMs => "deadline.window_ms", Some(DeadlineRelaxation), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of deadline.max_per_window.";
    BoostMaxPerWindow => "boost.max_per_window", Some(PriorityBoost), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many priority boosts within boost.window_ms.";
    BoostWindowMs => "boost.window_ms", Some(PriorityBoost), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of boost.max_per_window.";
    OutputRateMinLinesPerSecond => "output_rate.min_lines_per_second", Some(OutputRateLimit), MinMagnitude, 0, 0, OUTPUT_RATE_MAX_LINES_PER_SECOND, true, "lines/s",
        "An output rate limit never allows fewer lines per second than this.";
    OutputRateMaxPerWindow => "output_rate.max_per_window", Some(OutputRateLimit), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many output rate limits within output_rate.window_ms.";
    OutputRateWindowMs => "output_rate.window_ms", Some(OutputRateLimit), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of output_rate.max_per_window.";
    GenericMaxMagnitude => "generic.max_magnitude", Some(Generic), MaxMagnitude, 1_000, 0, 1_000, true, "per mille of full scale",
        "A generic action's magnitude is at most this.";
    GenericMaxPerWindow => "generic.max_per_window", Some(Generic), Frequency, FREQUENCY_MAX_COUNT, 0, FREQUENCY_MAX_COUNT, true, "actions",
        "At most this many generic actions within generic.window_ms.";
    GenericWindowMs => "generic.window_ms", Some(Generic), Window, 1_000, 1, WINDOW_MAX_MS, true, "ms",
        "The sliding window of generic.max_per_window.";
    ConsoleCapabilityHeld => "console.capability_held", None, Invariant, 1, 1, 1, false, "required",
        "After any action the console still holds its capability, so a person can stop every agent (fixed).";
}

/// Number of rules.
pub const RULES: usize = RuleId::ALL.len();

impl RuleId {
    /// Stable id.
    pub const fn id(self) -> &'static str {
        self.spec().id
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|rule| rule.id() == id)
    }

    /// Position in [`RuleId::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The rules that judge an action through `effector`, in evaluation order: its own and the console's,
    /// without the window parameters (which are read by their frequency rules).
    pub const fn judging(effector: Effector) -> &'static [RuleId] {
        use RuleId::*;
        match effector {
            Effector::MemoryReclaim => &[ReclaimMaxPerWindow, ConsoleCapabilityHeld],
            Effector::AllocationThrottle => {
                &[ThrottleMaxPerMille, ThrottleMaxStepPerMille, ThrottleMaxPerWindow, ConsoleCapabilityHeld]
            }
            Effector::PressureCap => {
                &[PressureCapMinPerMille, PressureCapMaxStepPerMille, PressureCapMaxPerWindow, ConsoleCapabilityHeld]
            }
            Effector::DeadlineRelaxation => {
                &[DeadlineMaxRelaxPerMille, DeadlineMaxPerMilleOfPeriod, DeadlineMaxPerWindow, ConsoleCapabilityHeld]
            }
            Effector::PriorityBoost => &[BoostMaxPerWindow, ConsoleCapabilityHeld],
            Effector::OutputRateLimit => &[OutputRateMinLinesPerSecond, OutputRateMaxPerWindow, ConsoleCapabilityHeld],
            Effector::Generic => &[GenericMaxMagnitude, GenericMaxPerWindow, ConsoleCapabilityHeld],
        }
    }

    /// Whether it judges actions through `effector`.
    pub fn applies_to(self, effector: Effector) -> bool {
        self.spec().effector.is_none_or(|own| own == effector)
    }

    /// The window parameter of a frequency rule.
    pub const fn window(self) -> Option<RuleId> {
        Some(match self {
            RuleId::ReclaimMaxPerWindow => RuleId::ReclaimWindowMs,
            RuleId::ThrottleMaxPerWindow => RuleId::ThrottleWindowMs,
            RuleId::PressureCapMaxPerWindow => RuleId::PressureCapWindowMs,
            RuleId::DeadlineMaxPerWindow => RuleId::DeadlineWindowMs,
            RuleId::BoostMaxPerWindow => RuleId::BoostWindowMs,
            RuleId::OutputRateMaxPerWindow => RuleId::OutputRateWindowMs,
            RuleId::GenericMaxPerWindow => RuleId::GenericWindowMs,
            _ => return None,
        })
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.id())
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// Why `set` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum SetError {
    /// No rule has this id.
    UnknownRule {
        /// The id given.
        id: String,
    },
    /// The value is outside the rule's range.
    OutOfRange {
        /// The rule.
        rule: RuleId,
        /// The value given.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// The rule cannot be changed.
    FixedRule {
        /// The rule.
        rule: RuleId,
    },
}

impl SetError {
    /// Stable error code (as serialized in `code`).
    pub fn code(&self) -> &'static str {
        match self {
            SetError::UnknownRule { .. } => "unknown-rule",
            SetError::OutOfRange { .. } => "out-of-range",
            SetError::FixedRule { .. } => "fixed-rule",
        }
    }
}

impl fmt::Display for SetError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::UnknownRule { id } => {
                write!(formatter, "no rule named `{id}` (`safetyctl rules` lists the {RULES} rules)")
            }
            SetError::OutOfRange { rule, value, min, max } => {
                let unit = rule.spec().unit;
                write!(formatter, "{rule} takes {min} to {max} {unit}, not {value}; nothing changed")
            }
            SetError::FixedRule { rule } => write!(formatter, "{rule} is fixed and cannot be set; nothing changed"),
        }
    }
}

/// The values in force, one per rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    values: [u64; RULES],
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

impl Rules {
    /// Every rule at its default.
    pub const fn new() -> Self {
        let mut values = [0; RULES];
        let mut index = 0;
        while index < RULES {
            values[index] = SPECS[index].default;
            index += 1;
        }
        Rules { values }
    }

    /// The value of `rule`.
    pub const fn get(&self, rule: RuleId) -> u64 {
        self.values[rule as usize]
    }

    /// The values of the rules from position `index` on, in table order.
    pub(crate) fn values_from(&self, index: usize) -> &[u64] {
        self.values.get(index..).unwrap_or(&[])
    }

    /// Sets the rule with id `id` to `value`, returning the value it had; a refusal changes nothing.
    pub fn set(&mut self, id: &str, value: u64) -> Result<u64, SetError> {
        let rule = RuleId::from_id(id).ok_or_else(|| SetError::UnknownRule { id: String::from(id) })?;
        self.set_rule(rule, value)
    }

    /// Sets `rule` to `value`, returning the value it had; a refusal changes nothing.
    pub fn set_rule(&mut self, rule: RuleId, value: u64) -> Result<u64, SetError> {
        let spec = rule.spec();
        if !spec.settable {
            return Err(SetError::FixedRule { rule });
        }
        if value < spec.min || value > spec.max {
            return Err(SetError::OutOfRange { rule, value, min: spec.min, max: spec.max });
        }
        Ok(core::mem::replace(&mut self.values[rule as usize], value))
    }
}
