//! One object for a command module: every operation checks policy, acts, and leaves exactly one audit entry.
//!
//! `llmctl` parses its arguments, calls one method with the caller's principal and the clock, and prints the
//! result or the error (`code()` for `--json`). Whatever the outcome, the operation appended one entry to
//! [`Governor::audit`], refusals included; a refusal changes nothing else but policy counters.

use alloc::vec::Vec;
use core::fmt;

use crate::artifact::{Kind, ModelRef};
use crate::audit::{Action, AuditLog, Event, Figures, Outcome};
use crate::compliance::{self, AgentSource, Violation};
use crate::keys::{KeyError, KeyId, TrustedKeys, PUBLIC_KEY_BYTES};
use crate::lifecycle::{self, Lifecycle, LifecycleError, Transition, TransitionKind};
use crate::policy::{Grant, Policy, PolicyError};
use crate::principal::Principal;
use crate::registry::{Model, ModelId, ModelInfo, Registry, RegistryError};

/// Why a governed operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceError {
    /// By the registry (including artifact verification).
    Registry(RegistryError),
    /// By the policy.
    Policy(PolicyError),
    /// A public key was not trusted.
    Key(KeyError),
    /// By the lifecycle's state machine.
    Lifecycle(LifecycleError),
    /// The model is of another kind than the operation needs (`infer` a language model, `install` an agent
    /// network).
    WrongKind {
        /// The model.
        model: ModelId,
        /// Its kind.
        kind: Kind,
        /// The kind the operation needs.
        expected: Kind,
    },
}

impl GovernanceError {
    /// The stable code of the underlying error.
    pub fn code(&self) -> &'static str {
        match self {
            GovernanceError::Registry(error) => error.code(),
            GovernanceError::Policy(error) => error.code(),
            GovernanceError::Key(error) => error.code(),
            GovernanceError::Lifecycle(error) => error.code(),
            GovernanceError::WrongKind { expected: Kind::LanguageModel, .. } => "not-a-language-model",
            GovernanceError::WrongKind { expected: Kind::AgentNetwork, .. } => "not-an-agent-network",
        }
    }
}

impl fmt::Display for GovernanceError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GovernanceError::Registry(error) => write!(formatter, "{error}"),
            GovernanceError::Policy(error) => write!(formatter, "{error}"),
            GovernanceError::Key(error) => write!(formatter, "{error}"),
            GovernanceError::Lifecycle(error) => write!(formatter, "{error}"),
            GovernanceError::WrongKind { model, kind, expected } => {
                write!(formatter, "{model} is of kind {}, not {}", kind.name(), expected.name())
            }
        }
    }
}

impl From<RegistryError> for GovernanceError {
    fn from(error: RegistryError) -> GovernanceError {
        GovernanceError::Registry(error)
    }
}

impl From<PolicyError> for GovernanceError {
    fn from(error: PolicyError) -> GovernanceError {
        GovernanceError::Policy(error)
    }
}

/// A refusal made by the caller's own check of a model's weights ([`Governor::install`]), with the stable code its
/// audit entry records.
pub trait Refusal: fmt::Display {
    /// A stable kebab-case code (at most 48 bytes are kept in the audit entry).
    fn code(&self) -> &'static str;
}

/// Why [`Governor::install`] installed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallError<E> {
    /// The governor refused: the model is unknown, not loaded, or not an agent network.
    Governance(GovernanceError),
    /// The caller's check refused the model's weights.
    Weights {
        /// The model.
        model: ModelId,
        /// What the check said.
        error: E,
    },
}

impl<E: Refusal> InstallError<E> {
    /// The stable code: the governor's, or the check's.
    pub fn code(&self) -> &'static str {
        match self {
            InstallError::Governance(error) => error.code(),
            InstallError::Weights { error, .. } => error.code(),
        }
    }
}

impl<E: Refusal> fmt::Display for InstallError<E> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Governance(error) => write!(formatter, "{error}"),
            InstallError::Weights { model, error } => write!(formatter, "{model}: {error}"),
        }
    }
}

/// A granted inference: the model to run and the tokens it may generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inference {
    /// The loaded model it runs on.
    pub model: ModelId,
    /// The policy's grant (`granted_tokens` is the most the model may generate).
    pub grant: Grant,
}

/// Trusted keys, registry, policy and audit log, kept consistent with each other.
#[derive(Debug, Clone)]
pub struct Governor {
    keys: TrustedKeys,
    registry: Registry,
    policy: Policy,
    audit: AuditLog,
    /// The model of each open grant.
    open: Vec<(u64, ModelId)>,
    /// The stages of the meta-agent's policy versions.
    lifecycle: Lifecycle,
}

impl Governor {
    /// Governs with these parts (the audit log may have been read back from disk).
    pub fn new(keys: TrustedKeys, registry: Registry, policy: Policy, audit: AuditLog) -> Governor {
        Governor { keys, registry, policy, audit, open: Vec::new(), lifecycle: Lifecycle::new() }
    }

    /// The trusted keys.
    pub fn keys(&self) -> &TrustedKeys {
        &self.keys
    }

    /// The registry (`list`, `info`, `versions`, a loaded model's weights).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The policy (`budget show`, `ratelimit show`, counters).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log (`audit` queries, `audit verify`, records to persist).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Trusts `public_key`.
    pub fn trust_key(
        &mut self,
        principal: Principal,
        public_key: &[u8; PUBLIC_KEY_BYTES],
        now_ns: u64,
    ) -> Result<KeyId, GovernanceError> {
        let result = self.keys.add(public_key).map_err(GovernanceError::Key);
        self.record(now_ns, principal, Action::TrustKey, None, None, &result, Figures::default());
        result
    }

    /// Verifies and registers an artifact under `principal`'s size limit.
    pub fn register(
        &mut self,
        principal: Principal,
        artifact: &[u8],
        now_ns: u64,
    ) -> Result<ModelInfo, GovernanceError> {
        let result = self
            .registry
            .register(artifact, &self.keys, &self.policy, principal, now_ns)
            .map_err(GovernanceError::from);
        let model = result
            .as_ref()
            .ok()
            .map(|info| ModelId { name: info.metadata.name.clone(), version: info.metadata.version });
        let figures = Figures { bytes: Some(artifact.len() as u64), ..Figures::default() };
        self.record(now_ns, principal, Action::Register, model, None, &result, figures);
        result
    }

    /// Loads a model (the latest version when none is given).
    pub fn load(&mut self, principal: Principal, model: &ModelRef, now_ns: u64) -> Result<ModelInfo, GovernanceError> {
        let result = self.registry.load(model).map_err(GovernanceError::from);
        self.record(now_ns, principal, Action::Load, self.named(model, &result), None, &result, Figures::default());
        result
    }

    /// Unloads a model (the latest loaded version when none is given).
    pub fn unload(
        &mut self,
        principal: Principal,
        model: &ModelRef,
        now_ns: u64,
    ) -> Result<ModelInfo, GovernanceError> {
        let result = self.registry.unload(model).map_err(GovernanceError::from);
        self.record(now_ns, principal, Action::Unload, self.named(model, &result), None, &result, Figures::default());
        result
    }

    /// Asks to generate up to `max_tokens` with a loaded model: the model must be a loaded language model, then
    /// the rate limit and the budget decide (cut or refused, see [`crate::policy`]). Finish with
    /// [`Governor::complete`].
    pub fn infer(
        &mut self,
        principal: Principal,
        model: &ModelRef,
        max_tokens: u64,
        now_ns: u64,
    ) -> Result<Inference, GovernanceError> {
        let result = self
            .registry
            .loaded(model)
            .map_err(GovernanceError::from)
            .and_then(|found| match found.metadata().kind {
                Kind::LanguageModel => Ok(found.id()),
                kind => Err(GovernanceError::WrongKind { model: found.id(), kind, expected: Kind::LanguageModel }),
            })
            .and_then(|id| Ok(Inference { grant: self.policy.request(principal, max_tokens, now_ns)?, model: id }));
        let mut figures = Figures { requested_tokens: Some(max_tokens), ..Figures::default() };
        match &result {
            Ok(inference) => {
                figures.granted_tokens = Some(inference.grant.granted_tokens);
                figures.remaining_tokens = Some(inference.grant.remaining_tokens);
                self.open.push((inference.grant.id, inference.model.clone()));
            }
            Err(GovernanceError::Policy(PolicyError::RateLimited { retry_after_ns })) => {
                figures.retry_after_ns = Some(*retry_after_ns);
            }
            Err(GovernanceError::Policy(PolicyError::BudgetExhausted {
                remaining_tokens, window_reset_ns, ..
            })) => {
                figures.remaining_tokens = Some(*remaining_tokens);
                figures.window_reset_ns = Some(*window_reset_ns);
            }
            Err(_) => {}
        }
        let named = result.as_ref().ok().map(|inference| inference.model.clone());
        let named = named.or_else(|| self.registry.resolve(model).ok().map(Model::id));
        self.record(now_ns, principal, Action::Infer, named, None, &result, figures);
        result
    }

    /// Reports that inference `grant_id` generated `used_tokens`; returns the tokens given back to the budget.
    pub fn complete(
        &mut self,
        principal: Principal,
        grant_id: u64,
        used_tokens: u64,
        now_ns: u64,
    ) -> Result<u64, GovernanceError> {
        let owned = self.policy.open_grants().iter().any(|grant| grant.id == grant_id && grant.principal == principal);
        let result = if owned {
            self.policy.complete(grant_id, used_tokens, now_ns).map_err(GovernanceError::from)
        } else {
            Err(GovernanceError::Policy(PolicyError::UnknownGrant { id: grant_id }))
        };
        let position = self.open.iter().position(|(id, _)| *id == grant_id);
        let model = match (&result, position) {
            (Ok(_), Some(index)) => Some(self.open.swap_remove(index).1),
            (_, Some(index)) => Some(self.open[index].1.clone()),
            (_, None) => None,
        };
        let figures = Figures { used_tokens: Some(used_tokens), ..Figures::default() };
        self.record(now_ns, principal, Action::Complete, model, None, &result, figures);
        result
    }

    /// Installs a loaded agent-network model into the caller's agent: the model must be loaded and of kind
    /// `agent-network`, then `build` turns its weights into the agent (checking them against the metadata's
    /// shapes and the agent's architecture). Returns the model and what `build` made; the caller puts it in place
    /// only on success, so a refusal changes nothing. One `install` audit entry either way. The policy's budgets
    /// and rate limits are for generation and do not apply.
    pub fn install<T, E: Refusal>(
        &mut self,
        principal: Principal,
        model: &ModelRef,
        now_ns: u64,
        build: impl FnOnce(&Model) -> Result<T, E>,
    ) -> Result<(ModelInfo, T), InstallError<E>> {
        let result = match self.registry.loaded(model) {
            Err(error) => Err(InstallError::Governance(error.into())),
            Ok(found) if found.metadata().kind != Kind::AgentNetwork => {
                Err(InstallError::Governance(GovernanceError::WrongKind {
                    model: found.id(),
                    kind: found.metadata().kind,
                    expected: Kind::AgentNetwork,
                }))
            }
            Ok(found) => match build(found) {
                Ok(built) => Ok((found.info(), built)),
                Err(error) => Err(InstallError::Weights { model: found.id(), error }),
            },
        };
        let (named, outcome) = match &result {
            Ok((info, _)) => {
                (Some(ModelId { name: info.metadata.name.clone(), version: info.metadata.version }), Outcome::Ok)
            }
            Err(error) => (self.registry.resolve(model).ok().map(Model::id), Outcome::refused(error.code())),
        };
        self.append(now_ns, principal, Action::Install, named, None, outcome, Figures::default());
        result
    }

    /// The lifecycle of the meta-agent's policy versions.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The lifecycle subject `model` names: the built-in heuristic (`heuristic`, `heuristic@0.0.0`) or a registered
    /// agent-network model (the latest version unless one is named).
    pub fn subject(&self, model: &ModelRef) -> Result<ModelId, GovernanceError> {
        let heuristic = lifecycle::heuristic();
        if model.name == heuristic.name && model.version.is_none_or(|version| version == heuristic.version) {
            return Ok(heuristic);
        }
        let found = self.registry.resolve(model)?;
        if found.metadata().kind != Kind::AgentNetwork {
            return Err(GovernanceError::WrongKind {
                model: found.id(),
                kind: found.metadata().kind,
                expected: Kind::AgentNetwork,
            });
        }
        Ok(found.id())
    }

    /// Promotes `model` one lifecycle stage (see [`Lifecycle::promote`]); one audit entry: `promote`, or
    /// `force-promote` when force stood in for a missing shadow report (refusals are `promote`).
    pub fn promote(
        &mut self,
        principal: Principal,
        model: &ModelRef,
        shadow_passed: bool,
        force: bool,
        now_ns: u64,
    ) -> Result<Vec<Transition>, GovernanceError> {
        let subject = self.subject(model);
        let result = subject.clone().and_then(|subject| {
            self.lifecycle.promote(&subject, shadow_passed, force, now_ns).map_err(GovernanceError::Lifecycle)
        });
        let action = match result.as_deref() {
            Ok([first, ..]) if first.kind == TransitionKind::ForcePromote => Action::ForcePromote,
            _ => Action::Promote,
        };
        let named = subject.ok().or_else(|| self.registry.resolve(model).ok().map(Model::id));
        self.record(now_ns, principal, action, named, None, &result, Figures::default());
        result
    }

    /// Demotes `model` one lifecycle stage (see [`Lifecycle::demote`]); one `demote` audit entry.
    pub fn demote(
        &mut self,
        principal: Principal,
        model: &ModelRef,
        now_ns: u64,
    ) -> Result<Transition, GovernanceError> {
        let subject = self.subject(model);
        let result = subject
            .clone()
            .and_then(|subject| self.lifecycle.demote(&subject, now_ns).map_err(GovernanceError::Lifecycle));
        let named = subject.ok().or_else(|| self.registry.resolve(model).ok().map(Model::id));
        self.record(now_ns, principal, Action::Demote, named, None, &result, Figures::default());
        result
    }

    /// Hands production back to the previous production version; one `rollback` audit entry naming the restored
    /// version (none when refused).
    pub fn rollback(&mut self, principal: Principal, now_ns: u64) -> Result<Vec<Transition>, GovernanceError> {
        let result = self.lifecycle.rollback(now_ns).map_err(GovernanceError::Lifecycle);
        let named = result.as_ref().ok().and_then(|made| made.first()).map(|first| first.subject.clone());
        self.record(now_ns, principal, Action::Rollback, named, None, &result, Figures::default());
        result
    }

    /// Stops the canary automatically for `reason` (a stable code: `guardrail-block`, `reward-drop`); one
    /// `canary-rollback` audit entry whose outcome is `refused` with the reason when the rollback happened, and
    /// `refused` with `not-in-canary` when the subject was not in canary (nothing changed).
    pub fn canary_rollback(
        &mut self,
        principal: Principal,
        subject: &ModelId,
        reason: &'static str,
        now_ns: u64,
    ) -> Result<Transition, GovernanceError> {
        let result = self.lifecycle.canary_rollback(subject, now_ns).map_err(GovernanceError::Lifecycle);
        let outcome = match &result {
            Ok(_) => Outcome::refused(reason),
            Err(error) => Outcome::refused(error.code()),
        };
        self.append(
            now_ns,
            principal,
            Action::CanaryRollback,
            Some(subject.clone()),
            None,
            outcome,
            Figures::default(),
        );
        result
    }

    /// Sets `target`'s token budget.
    pub fn set_budget(
        &mut self,
        principal: Principal,
        target: Principal,
        budget_tokens: u64,
        window_ns: u64,
        now_ns: u64,
    ) -> Result<(), GovernanceError> {
        let result = self.policy.set_budget(target, budget_tokens, window_ns, now_ns).map_err(GovernanceError::from);
        let figures = Figures { budget_tokens: Some(budget_tokens), window_ns: Some(window_ns), ..Figures::default() };
        self.record(now_ns, principal, Action::SetBudget, None, Some(target), &result, figures);
        result
    }

    /// Sets `target`'s rate limit.
    pub fn set_rate(
        &mut self,
        principal: Principal,
        target: Principal,
        rate_per_second: u64,
        burst: u64,
        now_ns: u64,
    ) -> Result<(), GovernanceError> {
        let result = self.policy.set_rate(target, rate_per_second, burst, now_ns).map_err(GovernanceError::from);
        let figures = Figures { rate_per_second: Some(rate_per_second), burst: Some(burst), ..Figures::default() };
        self.record(now_ns, principal, Action::SetRate, None, Some(target), &result, figures);
        result
    }

    /// Sets `target`'s model size limit.
    pub fn set_model_limit(
        &mut self,
        principal: Principal,
        target: Principal,
        max_model_bytes: u64,
        now_ns: u64,
    ) -> Result<(), GovernanceError> {
        let result = self.policy.set_model_limit(target, max_model_bytes, now_ns).map_err(GovernanceError::from);
        let figures = Figures { max_model_bytes: Some(max_model_bytes), ..Figures::default() };
        self.record(now_ns, principal, Action::SetModelLimit, None, Some(target), &result, figures);
        result
    }

    /// Every violation at `now_ns`, given where the kernel's agent got its weights (none installed: `None`); see
    /// [`crate::compliance::check`].
    pub fn compliance(&self, agent: Option<&AgentSource>, now_ns: u64) -> Vec<Violation> {
        compliance::check(&self.registry, &self.keys, &self.policy, &self.audit, agent, now_ns)
    }

    /// The model an operation concerned: what it returned, or the registered model the reference names.
    fn named(&self, model: &ModelRef, result: &Result<ModelInfo, GovernanceError>) -> Option<ModelId> {
        match result {
            Ok(info) => Some(ModelId { name: info.metadata.name.clone(), version: info.metadata.version }),
            Err(_) => self.registry.resolve(model).ok().map(Model::id),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record<T>(
        &mut self,
        time_ns: u64,
        principal: Principal,
        action: Action,
        model: Option<ModelId>,
        target: Option<Principal>,
        result: &Result<T, GovernanceError>,
        figures: Figures,
    ) {
        let outcome = match result {
            Ok(_) => Outcome::Ok,
            Err(error) => Outcome::refused(error.code()),
        };
        self.append(time_ns, principal, action, model, target, outcome, figures);
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        time_ns: u64,
        principal: Principal,
        action: Action,
        model: Option<ModelId>,
        target: Option<Principal>,
        outcome: Outcome,
        figures: Figures,
    ) {
        self.audit.append(Event { time_ns, principal, action, model, target, outcome, figures });
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use super::*;
    use crate::audit::{decode, Entry, Filter};
    use crate::keys::public_key_from_seed;
    use crate::policy::Limits;
    use crate::testing::{agent_artifact, artifact, artifact_signed, keys, UNTRUSTED_SEED};

    const CONSOLE: Principal = Principal::Console;
    const WEB: Principal = Principal::Token(3);

    fn governor() -> Governor {
        let policy =
            Policy::new(Limits { budget_tokens: 100, rate_per_second: 1, burst: 2, ..Limits::DEFAULT }).unwrap();
        Governor::new(keys(), Registry::default(), policy, AuditLog::new(64))
    }

    fn reference(text: &str) -> ModelRef {
        ModelRef::parse(text).unwrap()
    }

    fn last(governor: &Governor) -> &Entry {
        governor.audit().entries().last().unwrap()
    }

    fn outcome(entry: &Entry) -> String {
        match &entry.event.outcome {
            Outcome::Ok => String::from("ok"),
            Outcome::Refused { code } => code.clone(),
        }
    }

    #[test]
    fn every_operation_leaves_exactly_one_entry_with_its_outcome_and_figures() {
        let mut governor = governor();
        let bytes = artifact("lm", (1, 0, 0), 32);
        governor.register(CONSOLE, &bytes, 10).unwrap();
        let entry = last(&governor);
        assert_eq!((entry.sequence, entry.event.action, outcome(entry)), (0, Action::Register, "ok".into()));
        assert_eq!(entry.event.model.as_ref().unwrap().to_string(), "lm@1.0.0");
        assert_eq!(entry.event.figures, Figures { bytes: Some(bytes.len() as u64), ..Figures::default() });

        // Not loaded: refused with the model named.
        assert_eq!(governor.infer(WEB, &reference("lm"), 10, 20).unwrap_err().code(), "not-loaded");
        assert_eq!((last(&governor).event.action, outcome(last(&governor))), (Action::Infer, "not-loaded".into()));
        assert_eq!(last(&governor).event.model.as_ref().unwrap().to_string(), "lm@1.0.0");

        governor.load(CONSOLE, &reference("lm"), 30).unwrap();
        let inference = governor.infer(WEB, &reference("lm"), 60, 40).unwrap();
        assert_eq!((inference.model.to_string(), inference.grant.granted_tokens), ("lm@1.0.0".into(), 60));
        assert_eq!(
            last(&governor).event.figures,
            Figures {
                requested_tokens: Some(60),
                granted_tokens: Some(60),
                remaining_tokens: Some(40),
                ..Figures::default()
            }
        );
        // Completing someone else's grant is refused; the owner's is done once.
        assert_eq!(governor.complete(CONSOLE, inference.grant.id, 5, 50).unwrap_err().code(), "unknown-grant");
        assert_eq!(governor.complete(WEB, inference.grant.id, 50, 50), Ok(10));
        assert_eq!(
            (last(&governor).event.action, last(&governor).event.figures.used_tokens),
            (Action::Complete, Some(50))
        );
        assert_eq!(last(&governor).event.model.as_ref().unwrap().to_string(), "lm@1.0.0");

        // Cut to the remaining 50, then the bucket (burst 2) is empty: refused with retry-after.
        assert!(governor.infer(WEB, &reference("lm"), 80, 60).unwrap().grant.cut);
        let refused = governor.infer(WEB, &reference("lm"), 1, 60).unwrap_err();
        assert_eq!(refused, GovernanceError::Policy(PolicyError::RateLimited { retry_after_ns: 1_000_000_000 - 20 }));
        assert_eq!(last(&governor).event.figures.retry_after_ns, Some(999_999_980));
        // After the refill, the budget is spent: refused with the remaining budget and the reset time.
        let refused = governor.infer(WEB, &reference("lm"), 1, 2_000_000_000).unwrap_err();
        assert_eq!(refused.code(), "budget-exhausted");
        assert_eq!(last(&governor).event.figures.remaining_tokens, Some(0));
        assert_eq!(last(&governor).event.figures.window_reset_ns, Some(40 + Limits::DEFAULT.window_ns));

        governor.set_budget(CONSOLE, WEB, 500, 1_000, 70).unwrap();
        assert_eq!((last(&governor).event.target, last(&governor).event.figures.budget_tokens), (Some(WEB), Some(500)));
        assert_eq!(governor.set_rate(CONSOLE, WEB, 0, 1, 71).unwrap_err().code(), "invalid-setting");
        assert_eq!(governor.policy().limits(WEB).rate_per_second, 1);
        governor.set_model_limit(CONSOLE, WEB, 10, 72).unwrap();
        governor.unload(CONSOLE, &reference("lm"), 80).unwrap();
        assert_eq!(governor.unload(CONSOLE, &reference("lm"), 81).unwrap_err().code(), "not-loaded");

        let actions: Vec<&str> = governor.audit().entries().map(|entry| entry.event.action.name()).collect();
        assert_eq!(
            actions,
            [
                "register",
                "infer",
                "load",
                "infer",
                "complete",
                "complete",
                "infer",
                "infer",
                "infer",
                "set-budget",
                "set-rate",
                "set-model-limit",
                "unload",
                "unload"
            ]
        );
        assert_eq!(governor.audit().verify(), Ok(()));
        assert_eq!(governor.compliance(None, 100), Vec::new());
        let refusals = governor.audit().entries().filter(|entry| entry.event.outcome != Outcome::Ok).count();
        assert_eq!(refusals, 6);
    }

    #[test]
    fn a_refused_registration_leaves_nothing_but_its_audit_entry() {
        let mut governor = governor();
        let mut flipped = artifact("lm", (1, 0, 0), 32);
        flipped[40] ^= 4;
        let unsigned = artifact_signed("lm", (1, 0, 0), 32, &UNTRUSTED_SEED);
        for (bytes, code) in
            [(flipped, "digest-mismatch"), (unsigned, "unknown-key"), (Vec::from(&b"SISMODEL"[..]), "truncated")]
        {
            assert_eq!(governor.register(WEB, &bytes, 5).unwrap_err().code(), code);
            let entry = last(&governor);
            assert_eq!((entry.event.principal, entry.event.model.clone(), outcome(entry)), (WEB, None, code.into()));
        }
        assert!(governor.registry().list().is_empty());
        assert_eq!(governor.audit().len(), 3);
        // Trusting the signer makes the same bytes acceptable.
        governor.trust_key(CONSOLE, &public_key_from_seed(&UNTRUSTED_SEED), 6).unwrap();
        assert_eq!(last(&governor).event.action, Action::TrustKey);
        governor.register(WEB, &artifact_signed("lm", (1, 0, 0), 32, &UNTRUSTED_SEED), 7).unwrap();
        assert_eq!(governor.registry().list().len(), 1);
    }

    #[test]
    fn the_audit_log_persisted_record_by_record_reads_back_after_a_reboot() {
        let mut governor = governor();
        let mut disk = governor.audit().encode();
        let mut persisted = governor.audit().next_sequence();
        for (index, name) in ["a", "b", "c"].into_iter().enumerate() {
            governor.register(CONSOLE, &artifact(name, (1, 0, 0), 8), index as u64).unwrap();
            governor.load(CONSOLE, &reference(name), index as u64).unwrap();
            disk.extend_from_slice(&governor.audit().records_since(persisted));
            persisted = governor.audit().next_sequence();
        }
        let decoded = decode(&disk, 64).unwrap();
        assert_eq!((decoded.records, decoded.torn_tail), (6, None));
        assert!(decoded.log.entries().eq(governor.audit().entries()));
        let loads = decoded.log.query(&Filter { action: Some(Action::Load), ..Filter::default() });
        assert_eq!(loads.len(), 3);
    }

    /// The test's weights check: weights must be `[5, 3]` (two bytes).
    #[derive(Debug, PartialEq)]
    struct BadBytes(usize);

    impl fmt::Display for BadBytes {
        fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(formatter, "{} bytes of weights", self.0)
        }
    }

    impl Refusal for BadBytes {
        fn code(&self) -> &'static str {
            "bad-bytes"
        }
    }

    fn two_bytes(model: &Model) -> Result<[u8; 2], BadBytes> {
        model.weights().try_into().map_err(|_| BadBytes(model.weights().len()))
    }

    #[test]
    fn install_needs_a_loaded_agent_network_whose_weights_pass_the_check_and_audits_each_try() {
        let mut governor = governor();
        governor.register(CONSOLE, &artifact("lm", (1, 0, 0), 32), 1).unwrap();
        governor.register(CONSOLE, &agent_artifact("agent", (1, 0, 0), &[5, 3]), 2).unwrap();
        governor.register(CONSOLE, &agent_artifact("agent", (2, 0, 0), &[5, 3, 0]), 3).unwrap();
        governor.load(CONSOLE, &reference("lm"), 4).unwrap();
        let before = governor.audit().len();
        let install = |governor: &mut Governor, model: &str| {
            governor.install(CONSOLE, &reference(model), 10, two_bytes).map(|(info, built)| (info.metadata.name, built))
        };
        let refused = install(&mut governor, "nothing").unwrap_err();
        assert_eq!((refused.code(), refused.to_string()), ("unknown-model", String::from("no model is named nothing")));
        assert_eq!(install(&mut governor, "agent").unwrap_err().code(), "not-loaded");
        let refused = install(&mut governor, "lm").unwrap_err();
        assert_eq!(refused.code(), "not-an-agent-network");
        assert_eq!(refused.to_string(), "lm@1.0.0 is of kind language-model, not agent-network");
        governor.load(CONSOLE, &reference("agent"), 11).unwrap();
        // The latest version is loaded: its three bytes fail the check.
        let refused = install(&mut governor, "agent").unwrap_err();
        assert_eq!(
            refused,
            InstallError::Weights {
                model: ModelId { name: "agent".into(), version: crate::artifact::Version::new(2, 0, 0).unwrap() },
                error: BadBytes(3)
            }
        );
        assert_eq!(
            (refused.code(), refused.to_string()),
            ("bad-bytes", String::from("agent@2.0.0: 3 bytes of weights"))
        );
        governor.load(CONSOLE, &reference("agent@1.0.0"), 12).unwrap();
        assert_eq!(install(&mut governor, "agent@1.0.0"), Ok((String::from("agent"), [5, 3])));

        let installs: Vec<(Option<String>, String)> = governor
            .audit()
            .entries()
            .skip(before)
            .filter(|entry| entry.event.action == Action::Install)
            .map(|entry| (entry.event.model.as_ref().map(ToString::to_string), outcome(entry)))
            .collect();
        let expected = [
            (None, "unknown-model"),
            (Some("agent@2.0.0"), "not-loaded"),
            (Some("lm@1.0.0"), "not-an-agent-network"),
            (Some("agent@2.0.0"), "bad-bytes"),
            (Some("agent@1.0.0"), "ok"),
        ];
        let expected: Vec<(Option<String>, String)> =
            expected.iter().map(|(model, code)| (model.map(String::from), String::from(*code))).collect();
        assert_eq!(installs, expected);
        assert_eq!(governor.audit().len(), before + 7, "five installs and two loads");
        assert_eq!(governor.audit().verify(), Ok(()));
        // Installing asks nothing of the policy.
        assert_eq!(governor.policy().status(CONSOLE, 20).counters.requests, 0);
    }

    #[test]
    fn infer_on_an_agent_network_is_refused_before_the_policy_and_audited() {
        let mut governor = governor();
        governor.register(CONSOLE, &agent_artifact("agent", (1, 0, 0), &[5, 3]), 1).unwrap();
        governor.load(CONSOLE, &reference("agent"), 2).unwrap();
        let refused = governor.infer(WEB, &reference("agent"), 10, 3).unwrap_err();
        assert_eq!(refused.code(), "not-a-language-model");
        assert_eq!(refused.to_string(), "agent@1.0.0 is of kind agent-network, not language-model");
        let entry = last(&governor);
        assert_eq!((entry.event.action, outcome(entry)), (Action::Infer, "not-a-language-model".into()));
        assert_eq!(entry.event.model.as_ref().unwrap().to_string(), "agent@1.0.0");
        let status = governor.policy().status(WEB, 3);
        assert_eq!((status.counters.requests, status.remaining_tokens), (0, 100));
    }

    #[test]
    fn lifecycle_operations_are_audited_one_entry_each_in_order() {
        let mut governor = governor();
        governor.register(CONSOLE, &artifact("lm", (1, 0, 0), 32), 1).unwrap();
        governor.register(CONSOLE, &agent_artifact("agent", (1, 0, 0), &[5, 3]), 2).unwrap();
        let before = governor.audit().len();
        assert_eq!(
            governor.promote(CONSOLE, &reference("nothing"), false, false, 3).unwrap_err().code(),
            "unknown-model"
        );
        assert_eq!(
            governor.promote(CONSOLE, &reference("lm"), false, false, 4).unwrap_err().code(),
            "not-an-agent-network"
        );
        assert_eq!(
            governor.promote(CONSOLE, &reference("agent"), false, false, 5).unwrap()[0].to,
            lifecycle::Stage::Shadow
        );
        let refused = governor.promote(CONSOLE, &reference("agent"), false, false, 6).unwrap_err();
        assert_eq!(refused.code(), "no-passing-shadow-report");
        assert_eq!(
            governor.lifecycle().stage(&governor.subject(&reference("agent")).unwrap()),
            lifecycle::Stage::Shadow
        );
        governor.promote(CONSOLE, &reference("agent"), false, true, 7).unwrap();
        let agent = governor.subject(&reference("agent@1.0.0")).unwrap();
        governor.canary_rollback(Principal::Agent(0), &agent, "guardrail-block", 8).unwrap();
        assert_eq!(
            governor.canary_rollback(Principal::Agent(0), &agent, "reward-drop", 9).unwrap_err().code(),
            "not-in-canary"
        );
        assert_eq!(governor.rollback(WEB, 10).unwrap_err().code(), "no-previous-production");
        governor.promote(CONSOLE, &reference("agent"), false, false, 11).unwrap();
        governor.promote(CONSOLE, &reference("agent"), true, false, 12).unwrap();
        governor.promote(CONSOLE, &reference("agent"), true, false, 13).unwrap();
        assert_eq!(governor.lifecycle().production(), &agent);
        assert_eq!(governor.demote(CONSOLE, &reference("agent"), 14).unwrap_err().code(), "demote-production");
        governor.rollback(WEB, 15).unwrap();
        assert_eq!(governor.lifecycle().production(), &lifecycle::heuristic());
        assert_eq!(governor.demote(CONSOLE, &reference("heuristic"), 16).unwrap_err().code(), "demote-production");

        let entries: Vec<(u64, &str, Option<String>, String)> = governor
            .audit()
            .entries()
            .skip(before)
            .map(|entry| {
                (
                    entry.event.time_ns,
                    entry.event.action.name(),
                    entry.event.model.as_ref().map(ToString::to_string),
                    outcome(entry),
                )
            })
            .collect();
        let agent = || Some(String::from("agent@1.0.0"));
        let expected = [
            (3, "promote", None, "unknown-model"),
            (4, "promote", Some(String::from("lm@1.0.0")), "not-an-agent-network"),
            (5, "promote", agent(), "ok"),
            (6, "promote", agent(), "no-passing-shadow-report"),
            (7, "force-promote", agent(), "ok"),
            (8, "canary-rollback", agent(), "guardrail-block"),
            (9, "canary-rollback", agent(), "not-in-canary"),
            (10, "rollback", None, "no-previous-production"),
            (11, "promote", agent(), "ok"),
            (12, "promote", agent(), "ok"),
            (13, "promote", agent(), "ok"),
            (14, "demote", agent(), "demote-production"),
            (15, "rollback", Some(String::from("heuristic@0.0.0")), "ok"),
            (16, "demote", Some(String::from("heuristic@0.0.0")), "demote-production"),
        ];
        let expected: Vec<(u64, &str, Option<String>, String)> =
            expected.into_iter().map(|(time, action, model, code)| (time, action, model, String::from(code))).collect();
        assert_eq!(entries, expected);
        assert_eq!(governor.audit().verify(), Ok(()));
    }
}
