//! SIS guardrails: every action an agent proposes is judged against its effector's safety envelope before it
//! is carried out.
//!
//! An effector ([`Effector`]) is an interface through which an agent changes the
//! system: memory reclaim, the allocation throttle, the pressure cap (a strategy
//! switch), deadline relaxation, priority boost, output rate limit, and a generic
//! effector for later agent and model actions. Its envelope is a set of rules with
//! stable ids ([`RuleId`], e.g. `throttle.max_per_mille`) of four kinds: magnitude
//! bounds, rate of change against the figure in force, frequency (at most N
//! committed actions within a sliding window of W ms, exact), and invariants that
//! must hold on the state after the action ([`LiveState::after`]): the throttle
//! in force never above a set share, a relative deadline never beyond its share
//! of the period nor the scheduler's bound, and the console always holding its
//! capability.
//!
//! [`Guardrails::check`] judges an action rule by rule and stops at the first
//! that blocks ([`Verdict`], with the rule and its figures); the caller carries
//! out only an allowed action and then [`Guardrails::commit`]s it, which is what
//! the frequency rules count. Checks are counted per effector and per rule
//! (checked = allowed + blocked, exactly), the last [`BLOCKS_KEPT`] blocks are
//! kept, and [`Guardrails::validate`] judges every invariant on a live state.
//! Time is passed in; nothing reads a clock or a global.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod action;
mod guardrails;
mod rules;

pub use action::{relaxed_deadline_ns, DeadlineState, Effector, LiveState, ProposedAction, EFFECTORS};
pub use guardrails::{
    BlockEntry, EffectorCounters, Figures, Guardrails, InvariantReport, InvariantStatus, RuleCounters, RuleView,
    Verdict, Violation, BLOCKS_KEPT,
};
pub use rules::{
    RuleId, RuleKind, RuleSpec, Rules, SetError, DEADLINE_MAX_PER_MILLE_OF_PERIOD, FREQUENCY_MAX_COUNT,
    OUTPUT_RATE_MAX_LINES_PER_SECOND, RULES, WINDOW_MAX_MS,
};

#[cfg(test)]
mod tests;
