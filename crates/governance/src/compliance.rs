//! Compliance: every loaded model verified again, sizes within limits, the audit chain whole, no budget overdrawn,
//! and the kernel's agent running weights a signed artifact vouches for.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::artifact;
use crate::audit::{AuditLog, ChainError};
use crate::keys::TrustedKeys;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::registry::{ModelId, Registry};

/// Where the weights of the kernel's learning agent came from, as compliance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum AgentSource {
    /// A registered agent-network model, installed through [`crate::Governor::install`] (audited).
    Model {
        /// The model.
        model: ModelId,
    },
    /// Weights no signed artifact vouches for: trained in the kernel, read from a file, or drawn at random.
    Unsigned {
        /// How they were made, in words.
        origin: String,
    },
}

/// One way the system is out of compliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// A loaded model's artifact, or that of the model the agent was installed from, no longer verifies (changed
    /// in memory, or its key is no longer trusted), or its metadata differs from what the artifact says.
    ModelIntegrity {
        /// The model.
        model: ModelId,
        /// Why: the artifact error's code, or `metadata-mismatch`.
        code: &'static str,
    },
    /// A loaded model is larger than its registrant's model size limit now.
    ModelTooLarge {
        /// The model.
        model: ModelId,
        /// Who registered it.
        principal: Principal,
        /// Its artifact's size.
        bytes: u64,
        /// The limit now.
        max_model_bytes: u64,
    },
    /// The audit chain breaks.
    AuditChain {
        /// Where and how.
        error: ChainError,
    },
    /// The kernel's agent runs weights that no signed artifact vouches for.
    AgentUnsigned {
        /// How they were made.
        origin: String,
    },
    /// A principal's window has more tokens charged than its budget (the budget was lowered below them).
    BudgetOverdrawn {
        /// Whose.
        principal: Principal,
        /// Tokens charged to the current window.
        used_tokens: u64,
        /// The budget.
        budget_tokens: u64,
    },
}

impl Violation {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::ModelIntegrity { .. } => "model-integrity",
            Violation::ModelTooLarge { .. } => "model-too-large",
            Violation::AuditChain { .. } => "audit-chain",
            Violation::AgentUnsigned { .. } => "agent-unsigned",
            Violation::BudgetOverdrawn { .. } => "budget-overdrawn",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ModelIntegrity { model, code } => {
                write!(formatter, "model {model} (loaded, or the agent's source) fails verification ({code})")
            }
            Violation::ModelTooLarge { model, principal, bytes, max_model_bytes } => write!(
                formatter,
                "loaded model {model} is {bytes} bytes; {principal}'s model size limit is {max_model_bytes}"
            ),
            Violation::AuditChain { error } => write!(formatter, "{error}"),
            Violation::AgentUnsigned { origin } => {
                write!(formatter, "the agent runs weights no signed model vouches for ({origin})")
            }
            Violation::BudgetOverdrawn { principal, used_tokens, budget_tokens } => write!(
                formatter,
                "{principal} has {used_tokens} tokens charged to this window; its budget is {budget_tokens}"
            ),
        }
    }
}

/// Everything out of compliance at `now_ns`, in the order: models (by name and version), audit, the agent,
/// budgets. Empty when compliant. The models checked are the loaded ones and the one the agent was installed
/// from (`agent`, if it is [`AgentSource::Model`]), loaded or not: the agent still runs its weights.
pub fn check(
    registry: &Registry,
    keys: &TrustedKeys,
    policy: &Policy,
    audit: &AuditLog,
    agent: Option<&AgentSource>,
    now_ns: u64,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let installed = match agent {
        Some(AgentSource::Model { model }) => Some(model),
        _ => None,
    };
    for model in registry.models().iter().filter(|model| model.is_loaded() || installed == Some(&model.id())) {
        match artifact::decode(model.artifact(), keys) {
            Err(error) => violations.push(Violation::ModelIntegrity { model: model.id(), code: error.code() }),
            Ok(verified) if &verified.metadata != model.metadata() => {
                violations.push(Violation::ModelIntegrity { model: model.id(), code: "metadata-mismatch" })
            }
            Ok(_) => {}
        }
        let bytes = model.artifact().len() as u64;
        let max_model_bytes = policy.limits(model.registered_by()).max_model_bytes;
        if model.is_loaded() && bytes > max_model_bytes {
            violations.push(Violation::ModelTooLarge {
                model: model.id(),
                principal: model.registered_by(),
                bytes,
                max_model_bytes,
            });
        }
    }
    if let Err(error) = audit.verify() {
        violations.push(Violation::AuditChain { error });
    }
    if let Some(AgentSource::Unsigned { origin }) = agent {
        violations.push(Violation::AgentUnsigned { origin: origin.clone() });
    }
    for status in policy.statuses(now_ns) {
        if status.window_used_tokens > status.limits.budget_tokens {
            violations.push(Violation::BudgetOverdrawn {
                principal: status.principal,
                used_tokens: status.window_used_tokens,
                budget_tokens: status.limits.budget_tokens,
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ModelRef, Version};
    use crate::audit::{Action, ChainErrorKind, Event, Figures, Outcome};
    use crate::keys::{public_key_from_seed, KeyId};
    use crate::policy::Limits;
    use crate::testing::{artifact, keys, SEED};

    struct World {
        registry: Registry,
        keys: TrustedKeys,
        policy: Policy,
        audit: AuditLog,
    }

    impl World {
        fn check(&self, now_ns: u64) -> Vec<Violation> {
            check(&self.registry, &self.keys, &self.policy, &self.audit, None, now_ns)
        }
    }

    fn id(name: &str) -> ModelId {
        ModelId { name: name.into(), version: Version::new(1, 0, 0).unwrap() }
    }

    /// Two loaded models and one registered only, some tokens used, a few audit entries: compliant.
    fn world() -> World {
        let mut world = World {
            registry: Registry::default(),
            keys: keys(),
            policy: Policy::new(Limits { budget_tokens: 100, ..Limits::DEFAULT }).unwrap(),
            audit: AuditLog::new(16),
        };
        for name in ["a", "b", "c"] {
            let bytes = artifact(name, (1, 0, 0), 64);
            world.registry.register(&bytes, &world.keys, &world.policy, Principal::Console, 0).unwrap();
            world.audit.append(Event {
                time_ns: 0,
                principal: Principal::Console,
                action: Action::Register,
                model: Some(id(name)),
                target: None,
                outcome: Outcome::Ok,
                figures: Figures { bytes: Some(bytes.len() as u64), ..Figures::default() },
            });
        }
        for name in ["a", "b"] {
            world.registry.load(&ModelRef::parse(name).unwrap()).unwrap();
        }
        world.policy.request(Principal::Token(1), 60, 0).unwrap();
        world
    }

    #[test]
    fn a_compliant_system_has_no_violation() {
        assert_eq!(world().check(0), Vec::new());
    }

    #[test]
    fn a_loaded_model_changed_in_memory_or_no_longer_trusted_is_a_violation() {
        let mut world = world();
        // Weights of `a` changed in memory; `c` too, but it is not loaded, so it is not checked.
        for index in [0, 2] {
            let model = &mut world.registry.models_mut()[index];
            let last_weight = model.artifact().len() - 105;
            model.artifact_mut()[last_weight] ^= 1;
        }
        assert_eq!(world.check(0), [Violation::ModelIntegrity { model: id("a"), code: "digest-mismatch" }]);
        let signer = KeyId::of(&public_key_from_seed(&SEED));
        assert!(world.keys.remove(signer));
        assert_eq!(
            world.check(0),
            [
                Violation::ModelIntegrity { model: id("a"), code: "digest-mismatch" },
                Violation::ModelIntegrity { model: id("b"), code: "unknown-key" },
            ]
        );
    }

    #[test]
    fn a_loaded_model_over_a_lowered_size_limit_is_a_violation() {
        let mut world = world();
        let bytes = world.registry.get("a", None).unwrap().artifact().len() as u64;
        world.policy.set_model_limit(Principal::Console, bytes - 1, 0).unwrap();
        assert_eq!(
            world.check(0),
            [
                Violation::ModelTooLarge {
                    model: id("a"),
                    principal: Principal::Console,
                    bytes,
                    max_model_bytes: bytes - 1
                },
                Violation::ModelTooLarge {
                    model: id("b"),
                    principal: Principal::Console,
                    bytes,
                    max_model_bytes: bytes - 1
                },
            ]
        );
    }

    #[test]
    fn a_broken_audit_chain_is_a_violation_naming_the_index() {
        let mut world = world();
        world.audit.entries_mut()[1].event.time_ns = 5;
        assert_eq!(
            world.check(0),
            [Violation::AuditChain { error: ChainError { index: 1, kind: ChainErrorKind::Hash } }]
        );
    }

    #[test]
    fn an_agent_from_an_unsigned_source_is_a_violation_placed_after_the_audit_chain() {
        let mut world = world();
        let unsigned = AgentSource::Unsigned { origin: "untrained (neuralctl reset, seed 3)".into() };
        let violation = Violation::AgentUnsigned { origin: "untrained (neuralctl reset, seed 3)".into() };
        let check =
            |world: &World| check(&world.registry, &world.keys, &world.policy, &world.audit, Some(&unsigned), 0);
        assert_eq!(check(&world), core::slice::from_ref(&violation));
        assert_eq!(violation.code(), "agent-unsigned");
        assert_eq!(
            serde_json::to_value(&violation).unwrap(),
            serde_json::json!({"kind": "agent-unsigned", "origin": "untrained (neuralctl reset, seed 3)"})
        );
        assert_eq!(
            violation.to_string(),
            "the agent runs weights no signed model vouches for (untrained (neuralctl reset, seed 3))"
        );
        world.audit.entries_mut()[0].event.time_ns = 9;
        world.policy.set_budget(Principal::Token(1), 50, Limits::DEFAULT.window_ns, 0).unwrap();
        let codes: Vec<&str> = check(&world).iter().map(Violation::code).collect();
        assert_eq!(codes, ["audit-chain", "agent-unsigned", "budget-overdrawn"]);
    }

    #[test]
    fn the_model_an_agent_was_installed_from_is_verified_again_even_unloaded() {
        let mut world = world();
        // `c` is registered but not loaded: unchecked until the agent runs its weights.
        let model = &mut world.registry.models_mut()[2];
        let last_weight = model.artifact().len() - 105;
        model.artifact_mut()[last_weight] ^= 1;
        assert_eq!(world.check(0), Vec::new());
        let from_c = AgentSource::Model { model: id("c") };
        let checked = check(&world.registry, &world.keys, &world.policy, &world.audit, Some(&from_c), 0);
        assert_eq!(checked, [Violation::ModelIntegrity { model: id("c"), code: "digest-mismatch" }]);
        // An agent from an intact model is compliant.
        let from_a = AgentSource::Model { model: id("a") };
        assert_eq!(check(&world.registry, &world.keys, &world.policy, &world.audit, Some(&from_a), 0), Vec::new());
        assert_eq!(
            serde_json::to_value(&from_a).unwrap(),
            serde_json::json!({"source": "model", "model": {"name": "a", "version": "1.0.0"}})
        );
    }

    #[test]
    fn an_overdrawn_budget_is_a_violation_until_the_window_ends() {
        let mut world = world();
        world.policy.set_budget(Principal::Token(1), 50, Limits::DEFAULT.window_ns, 10).unwrap();
        let violation =
            Violation::BudgetOverdrawn { principal: Principal::Token(1), used_tokens: 60, budget_tokens: 50 };
        assert_eq!(world.check(10), core::slice::from_ref(&violation));
        assert_eq!(violation.code(), "budget-overdrawn");
        let json = serde_json::to_value(&violation).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "budget-overdrawn", "principal": "token:1", "used_tokens": 60, "budget_tokens": 50})
        );
        assert_eq!(world.check(Limits::DEFAULT.window_ns), Vec::new());
    }
}
