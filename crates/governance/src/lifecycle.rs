//! The lifecycle of the meta-agent's policy versions: registered → shadow → canary → production → retired, one
//! candidate at a time, with rollback to the previous production version.
//!
//! A subject is a registered agent-network model (`NAME@VERSION`) or the built-in heuristic ([`HEURISTIC`],
//! `heuristic@0.0.0`), which is in production until something replaces it. This module is the state machine
//! alone; [`crate::Governor`] checks the registry, calls it and appends one audit entry per call.

use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::artifact::Version;
use crate::registry::ModelId;

/// Transitions [`Lifecycle::history`] keeps (older ones are counted in `history_dropped`).
pub const HISTORY_KEPT: usize = 256;
/// Name of the built-in heuristic policy as a lifecycle subject (version 0.0.0).
pub const HEURISTIC_NAME: &str = "heuristic";

/// The built-in heuristic policy as a lifecycle subject.
pub fn heuristic() -> ModelId {
    ModelId { name: alloc::string::String::from(HEURISTIC_NAME), version: Version { major: 0, minor: 0, patch: 0 } }
}

/// Where a subject is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Known, doing nothing (every registered agent-network model starts here).
    Registered,
    /// Deciding beside production on the same inputs; its choices are recorded, never acted on.
    Shadow,
    /// Acting on a share of the decisions.
    Canary,
    /// Making every decision.
    Production,
    /// Replaced or withdrawn; only a rollback brings a retired former production version back.
    Retired,
}

impl Stage {
    /// Its name (`registered`, `shadow`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Registered => "registered",
            Stage::Shadow => "shadow",
            Stage::Canary => "canary",
            Stage::Production => "production",
            Stage::Retired => "retired",
        }
    }
}

/// What moved a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransitionKind {
    /// One stage forward.
    Promote,
    /// One stage forward to canary or production without a passing shadow report, forced.
    ForcePromote,
    /// One stage back.
    Demote,
    /// Production handed back to the previous production version (both subjects move: two transitions).
    Rollback,
    /// A canary stopped automatically (guardrail block or reward drop), back to registered.
    CanaryRollback,
}

/// One subject's move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// Number of the transition, from 0.
    pub sequence: u64,
    /// When (the caller's clock, ns).
    pub time_ns: u64,
    /// The subject.
    pub subject: ModelId,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// Why.
    pub kind: TransitionKind,
}

/// Why a lifecycle operation changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    /// A promotion past production (`already-production`).
    AlreadyProduction(ModelId),
    /// A promotion or demotion of a retired subject (`retired`).
    Retired(ModelId),
    /// Another subject is in shadow or canary (`candidate-busy`).
    CandidateBusy {
        /// The subject asked for.
        subject: ModelId,
        /// The candidate in the way.
        candidate: ModelId,
        /// Its stage.
        stage: Stage,
    },
    /// A promotion to canary or production without a passing shadow report and without force
    /// (`no-passing-shadow-report`).
    NoPassingShadowReport {
        /// The subject.
        subject: ModelId,
        /// The stage it was to enter.
        to: Stage,
    },
    /// Production is left only by a rollback or by another version's promotion (`demote-production`).
    DemoteProduction(ModelId),
    /// A rollback with no earlier production version (`no-previous-production`).
    NoPreviousProduction,
    /// An automatic canary rollback of a subject not in canary (`not-in-canary`).
    NotInCanary(ModelId),
}

impl LifecycleError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::AlreadyProduction(_) => "already-production",
            LifecycleError::Retired(_) => "retired",
            LifecycleError::CandidateBusy { .. } => "candidate-busy",
            LifecycleError::NoPassingShadowReport { .. } => "no-passing-shadow-report",
            LifecycleError::DemoteProduction(_) => "demote-production",
            LifecycleError::NoPreviousProduction => "no-previous-production",
            LifecycleError::NotInCanary(_) => "not-in-canary",
        }
    }
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::AlreadyProduction(subject) => write!(formatter, "{subject} is in production already"),
            LifecycleError::Retired(subject) => {
                write!(formatter, "{subject} is retired: only a rollback brings a former production version back")
            }
            LifecycleError::CandidateBusy { subject, candidate, stage } => write!(
                formatter,
                "cannot move {subject}: {candidate} is in {} (one candidate at a time; demote it first)",
                stage.name()
            ),
            LifecycleError::NoPassingShadowReport { subject, to } => write!(
                formatter,
                "{subject} has no passing shadow report: promotion to {} refused (run it in shadow, or --force)",
                to.name()
            ),
            LifecycleError::DemoteProduction(subject) => {
                write!(formatter, "{subject} is in production: use rollback, or promote another version")
            }
            LifecycleError::NoPreviousProduction => write!(formatter, "no previous production version to roll back to"),
            LifecycleError::NotInCanary(subject) => write!(formatter, "{subject} is not in canary"),
        }
    }
}

/// The stages of every subject that left `registered`, the production versions before the current one and the
/// transitions so far.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Subjects not in `registered`, with their stage.
    stages: Vec<(ModelId, Stage)>,
    /// Former production versions, oldest first (a rollback takes the last).
    previous: Vec<ModelId>,
    history: Vec<Transition>,
    transitions: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

impl Lifecycle {
    /// The heuristic in production, nothing else moved.
    pub fn new() -> Lifecycle {
        Lifecycle {
            stages: alloc::vec![(heuristic(), Stage::Production)],
            previous: Vec::new(),
            history: Vec::new(),
            transitions: 0,
        }
    }

    /// `subject`'s stage (`registered` unless it moved).
    pub fn stage(&self, subject: &ModelId) -> Stage {
        self.stages.iter().find(|(id, _)| id == subject).map_or(Stage::Registered, |(_, stage)| *stage)
    }

    /// The version in production.
    pub fn production(&self) -> &ModelId {
        self.in_stage(Stage::Production).unwrap_or(&self.stages[0].0)
    }

    /// The candidate (the subject in shadow or canary), with its stage.
    pub fn candidate(&self) -> Option<(&ModelId, Stage)> {
        self.stages
            .iter()
            .find(|(_, stage)| matches!(stage, Stage::Shadow | Stage::Canary))
            .map(|(id, stage)| (id, *stage))
    }

    /// Former production versions, oldest first (rollback targets the last).
    pub fn previous_production(&self) -> &[ModelId] {
        &self.previous
    }

    /// Every subject that left `registered`, with its stage, in the order they first moved.
    pub fn subjects(&self) -> &[(ModelId, Stage)] {
        &self.stages
    }

    /// The last [`HISTORY_KEPT`] transitions, oldest first.
    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    /// Transitions made so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// Moves `subject` one stage forward. Entering canary or production needs `shadow_passed` (a passing shadow
    /// report of this subject) or `force`; force is used, and the transition is `force-promote`, only when the
    /// report is missing. Promotion to production retires the version it replaces and remembers it for
    /// rollback. Returns the transitions made (the subject's, then the replaced version's).
    pub fn promote(
        &mut self,
        subject: &ModelId,
        shadow_passed: bool,
        force: bool,
        now_ns: u64,
    ) -> Result<Vec<Transition>, LifecycleError> {
        let from = self.stage(subject);
        let to = match from {
            Stage::Registered => Stage::Shadow,
            Stage::Shadow => Stage::Canary,
            Stage::Canary => Stage::Production,
            Stage::Production => return Err(LifecycleError::AlreadyProduction(subject.clone())),
            Stage::Retired => return Err(LifecycleError::Retired(subject.clone())),
        };
        if from == Stage::Registered {
            if let Some((candidate, stage)) = self.candidate() {
                return Err(LifecycleError::CandidateBusy {
                    subject: subject.clone(),
                    candidate: candidate.clone(),
                    stage,
                });
            }
        }
        let forced = !shadow_passed && matches!(to, Stage::Canary | Stage::Production);
        if forced && !force {
            return Err(LifecycleError::NoPassingShadowReport { subject: subject.clone(), to });
        }
        let kind = if forced { TransitionKind::ForcePromote } else { TransitionKind::Promote };
        let mut made = Vec::new();
        if to == Stage::Production {
            let replaced = self.production().clone();
            made.push(self.move_to(subject, Stage::Production, kind, now_ns));
            made.push(self.move_to(&replaced, Stage::Retired, kind, now_ns));
            self.previous.push(replaced);
        } else {
            made.push(self.move_to(subject, to, kind, now_ns));
        }
        Ok(made)
    }

    /// Moves `subject` one stage back: canary → shadow → registered → retired. Production is refused (roll back,
    /// or promote another version), as is a retired subject.
    pub fn demote(&mut self, subject: &ModelId, now_ns: u64) -> Result<Transition, LifecycleError> {
        let to = match self.stage(subject) {
            Stage::Canary => Stage::Shadow,
            Stage::Shadow => Stage::Registered,
            Stage::Registered => Stage::Retired,
            Stage::Production => return Err(LifecycleError::DemoteProduction(subject.clone())),
            Stage::Retired => return Err(LifecycleError::Retired(subject.clone())),
        };
        Ok(self.move_to(subject, to, TransitionKind::Demote, now_ns))
    }

    /// Hands production back to the last former production version: the current one is retired. Returns the
    /// two transitions (the restored version's, then the retired one's).
    pub fn rollback(&mut self, now_ns: u64) -> Result<Vec<Transition>, LifecycleError> {
        let restored = self.previous.pop().ok_or(LifecycleError::NoPreviousProduction)?;
        let current = self.production().clone();
        Ok(alloc::vec![
            self.move_to(&restored, Stage::Production, TransitionKind::Rollback, now_ns),
            self.move_to(&current, Stage::Retired, TransitionKind::Rollback, now_ns),
        ])
    }

    /// Stops the canary `subject` automatically: back to registered (a new shadow run is needed).
    pub fn canary_rollback(&mut self, subject: &ModelId, now_ns: u64) -> Result<Transition, LifecycleError> {
        if self.stage(subject) != Stage::Canary {
            return Err(LifecycleError::NotInCanary(subject.clone()));
        }
        Ok(self.move_to(subject, Stage::Registered, TransitionKind::CanaryRollback, now_ns))
    }

    fn in_stage(&self, wanted: Stage) -> Option<&ModelId> {
        self.stages.iter().find(|(_, stage)| *stage == wanted).map(|(id, _)| id)
    }

    fn move_to(&mut self, subject: &ModelId, to: Stage, kind: TransitionKind, now_ns: u64) -> Transition {
        let from = self.stage(subject);
        match self.stages.iter_mut().find(|(id, _)| id == subject) {
            Some(entry) => entry.1 = to,
            None => self.stages.push((subject.clone(), to)),
        }
        let transition =
            Transition { sequence: self.transitions, time_ns: now_ns, subject: subject.clone(), from, to, kind };
        self.transitions += 1;
        if self.history.len() == HISTORY_KEPT {
            self.history.remove(0);
        }
        self.history.push(transition.clone());
        transition
    }
}

#[cfg(test)]
mod tests;
