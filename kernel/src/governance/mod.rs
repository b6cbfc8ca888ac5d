//! The kernel's model governance for `llmctl` and `neuralctl install`: one `sis_governance::Governor` and the parsed
//! weights of each loaded language model.
//!
//! The governor checks, acts and audits every operation (crates/governance); this module only holds it behind a
//! lock, passes the clock, and runs generation with `sis_lm` between the grant and its completion, without the
//! lock held, so a long generation does not stop `llmctl list` or `audit`.
//!
//! Keys: the kernel trusts the public test key `models/keys/sis-test.pub` (a key whose seed is committed on
//! purpose, for tests) unless booted with `sis.trust=HEX[,HEX...]`, which replaces it. The image carries two
//! signed artifacts, [`BUILTIN_ARTIFACTS`]: `models/shakespeare-lm.sismodel` (`llmctl register builtin` or
//! `builtin:shakespeare-lm`) and `models/memory-agent.sismodel` (`builtin:memory-agent`).
//!
//! With a virtio-blk disk attached, the audit log lives in the disk's last 4,096 sectors (`disk_region::AUDIT`)
//! and is read back, chain verified, after a reboot (`persist`).

pub mod persist;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use sis_ai::{Agent, NetworkWeights, WeightsError};
use sis_governance::artifact::{Kind, ModelRef};
use sis_governance::audit::AuditLog;
use sis_governance::keys::{KeyError, TrustedKeys};
use sis_governance::policy::{Limits, Policy};
use sis_governance::registry::{ModelId, ModelInfo, Registry, DEFAULT_MAX_MODELS, DEFAULT_MAX_TOTAL_BYTES};
use sis_governance::{GovernanceError, Governor, InstallError, Principal, Refusal};
use sis_lm::{Generator, LmError, Model};
use sis_platform::{console, time};
use sis_proto::bootargs;

/// The signed artifacts built into the image, by the name each is signed under (`llmctl register builtin:NAME`);
/// the first is also `llmctl register builtin`.
pub const BUILTIN_ARTIFACTS: [(&str, &[u8]); 2] = [
    ("shakespeare-lm", include_bytes!("../../../models/shakespeare-lm.sismodel")),
    ("memory-agent", include_bytes!("../../../models/memory-agent.sismodel")),
];
/// The seed of an installed agent's generator (exploration draws, replay sampling): its weights come from the
/// artifact, not from a seed.
pub const INSTALLED_AGENT_SEED: u64 = 0;
/// The public test key's hex, trusted unless `sis.trust` is given (models/keys/README.md).
pub const TEST_PUBLIC_KEY_HEX: &str = include_str!("../../../models/keys/sis-test.pub");
/// The boot argument naming the trusted keys instead of the test key.
pub const TRUST_ARGUMENT: &str = "sis.trust";

/// Why an `llmctl` operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmError {
    /// Refused by the governor (and audited).
    Governance(GovernanceError),
    /// A loaded language model's weights are not a sis-lm model (the grant was given back unused).
    BadWeights {
        /// The model.
        model: ModelId,
        /// What sis-lm said.
        error: LmError,
    },
    /// The model is not a language model, so it cannot generate text (refused before any grant).
    NotALanguageModel {
        /// The model.
        model: ModelId,
        /// Its kind.
        kind: Kind,
    },
    /// `neuralctl install` refused (and audited).
    Install(InstallError<AgentWeights>),
    /// `sis.trust` is not a list of public keys: nothing is trusted.
    BadTrustArgument {
        /// Why.
        reason: String,
    },
}

impl LlmError {
    /// The stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Governance(error) => error.code(),
            LlmError::BadWeights { .. } => "bad-weights",
            LlmError::NotALanguageModel { .. } => "not-a-language-model",
            LlmError::Install(error) => error.code(),
            LlmError::BadTrustArgument { .. } => "bad-trust-argument",
        }
    }
}

impl fmt::Display for LlmError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmError::Governance(error) => write!(formatter, "{error}"),
            LlmError::BadWeights { model, error } => write!(formatter, "{model}: the weights do not load: {error}"),
            LlmError::NotALanguageModel { model, kind: Kind::AgentNetwork } => write!(
                formatter,
                "{model} is an agent network, not a language model: it generates no text; install it into the learning agent with `neuralctl install {model}`"
            ),
            LlmError::NotALanguageModel { model, kind } => {
                write!(formatter, "{model} is of kind {}, not a language model", kind.name())
            }
            LlmError::Install(error) => write!(formatter, "{error}"),
            LlmError::BadTrustArgument { reason } => write!(formatter, "{TRUST_ARGUMENT}: {reason}"),
        }
    }
}

impl From<GovernanceError> for LlmError {
    fn from(error: GovernanceError) -> LlmError {
        match error {
            GovernanceError::WrongKind { model, kind, expected: Kind::LanguageModel } => {
                LlmError::NotALanguageModel { model, kind }
            }
            other => LlmError::Governance(other),
        }
    }
}

/// Agent-network weights refused by sis-ai's format: not the format, shapes that are not the network's, or
/// layer sizes that are not the agent's. Its code is the one the `install` audit entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentWeights(pub WeightsError);

impl fmt::Display for AgentWeights {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl Refusal for AgentWeights {
    fn code(&self) -> &'static str {
        self.0.code()
    }
}

/// A generation request, checked by the command's parser (temperature in range, tokens 1..=4096).
#[derive(Debug, Clone)]
pub struct InferRequest<'a> {
    /// The model.
    pub model: &'a ModelRef,
    /// The prompt's bytes.
    pub prompt: &'a [u8],
    /// Tokens asked for.
    pub max_tokens: u64,
    /// Sampling temperature (0: greedy).
    pub temperature: f32,
    /// Sampling seed.
    pub seed: u64,
}

/// What a granted generation produced.
#[derive(Debug, Clone)]
pub struct InferResult {
    /// The model that generated.
    pub model: ModelId,
    /// The generated bytes (vocabulary bytes, ASCII for the shipped model).
    pub text: Vec<u8>,
    /// Tokens asked for.
    pub requested_tokens: u64,
    /// Whether the budget cut the request.
    pub cut: bool,
    /// The principal's budget left in this window, after the charge.
    pub remaining_tokens: u64,
    /// When the window resets (ns since boot).
    pub window_reset_ns: u64,
    /// Time the grant took: the governor's lock, the model lookup, the rate limit and budget check and the audit
    /// entry.
    pub grant_ns: u64,
    /// Time spent generating.
    pub generation_ns: u64,
}

/// Registers an artifact (from the VFS or the image).
pub fn register(principal: Principal, artifact: &[u8]) -> Result<ModelInfo, LlmError> {
    with(|state| state.governor.register(principal, artifact, time::now_ns()).map_err(LlmError::from))?
}

/// Loads a model and, for a language model, keeps its parsed weights for `infer`.
pub fn load(principal: Principal, model: &ModelRef) -> Result<ModelInfo, LlmError> {
    with(|state| {
        let info = state.governor.load(principal, model, time::now_ns())?;
        if info.metadata.kind == Kind::LanguageModel {
            let id = ModelId { name: info.metadata.name.clone(), version: info.metadata.version };
            let parsed = state
                .governor
                .registry()
                .get(&id.name, Some(id.version))
                .map(|entry| Model::from_bytes(entry.weights()));
            // A model whose weights do not parse stays loaded (the signature vouches for its bytes) and `infer`
            // reports why; its grant is given back unused.
            let weights = match parsed {
                Ok(Ok(model)) => Ok(Arc::new(model)),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(LmError::BadMagic),
            };
            state.weights.retain(|(loaded, _)| *loaded != id);
            state.weights.push((id, weights));
        }
        Ok(info)
    })?
}

/// Unloads a model and drops its parsed weights.
pub fn unload(principal: Principal, model: &ModelRef) -> Result<ModelInfo, LlmError> {
    with(|state| {
        let info = state.governor.unload(principal, model, time::now_ns())?;
        let id = ModelId { name: info.metadata.name.clone(), version: info.metadata.version };
        state.weights.retain(|(loaded, _)| *loaded != id);
        Ok(info)
    })?
}

/// Asks the governor for a grant, generates the granted tokens without the lock held, and reports the tokens
/// used. Both steps are audited (`infer`, then `complete`).
pub fn infer(principal: Principal, request: &InferRequest<'_>) -> Result<InferResult, LlmError> {
    let asked_ns = time::now_ns();
    let (inference, weights) = with(|state| {
        let inference = state.governor.infer(principal, request.model, request.max_tokens, asked_ns)?;
        let weights = state.weights.iter().find(|(id, _)| *id == inference.model).map(|(_, weights)| weights.clone());
        Ok::<_, LlmError>((inference, weights))
    })??;
    let started_ns = time::now_ns();
    let grant_ns = started_ns.saturating_sub(asked_ns);
    let generated = match weights {
        Some(Ok(model)) => Generator::new(&model, request.prompt, request.temperature, request.seed)
            .map(|mut generator| {
                (0..inference.grant.granted_tokens).map(|_| generator.next_byte()).collect::<Vec<u8>>()
            })
            .map_err(|error| LlmError::BadWeights { model: inference.model.clone(), error }),
        Some(Err(error)) => Err(LlmError::BadWeights { model: inference.model.clone(), error }),
        None => Err(LlmError::NotALanguageModel { model: inference.model.clone(), kind: Kind::LanguageModel }),
    };
    let generation_ns = time::now_ns().saturating_sub(started_ns);
    let used_tokens = generated.as_ref().map_or(0, |text| text.len() as u64);
    with(|state| {
        let now_ns = time::now_ns();
        state.governor.complete(principal, inference.grant.id, used_tokens, now_ns)?;
        let text = generated?;
        let status = state.governor.policy().status(principal, now_ns);
        Ok(InferResult {
            model: inference.model.clone(),
            text,
            requested_tokens: request.max_tokens,
            cut: inference.grant.cut,
            remaining_tokens: status.remaining_tokens,
            window_reset_ns: status.window_reset_ns,
            grant_ns,
            generation_ns,
        })
    })?
}

/// Installs a loaded agent-network model through the governor (one `install` audit entry either way): its weights
/// must decode (sis-ai's format), its shapes be the network's and its layer sizes the learning agent's. Returns
/// the model and the agent made from it, which the caller puts in place; a refusal made nothing.
pub fn install_agent(principal: Principal, model: &ModelRef) -> Result<(ModelInfo, Agent), LlmError> {
    with(|state| {
        let build = |found: &sis_governance::registry::Model| {
            let metadata = found.metadata();
            let weights = NetworkWeights::decode_for(found.weights(), &metadata.input_shape, &metadata.output_shape)
                .map_err(AgentWeights)?;
            sis_stress::learning::agent_with_weights(&weights, INSTALLED_AGENT_SEED).map_err(AgentWeights)
        };
        state.governor.install(principal, model, time::now_ns(), build).map_err(LlmError::Install)
    })?
}

/// The parsed weights of a loaded language model (the latest loaded version unless `model` names one), for
/// `llmctl inspect`: read only, neither charged to a budget nor audited (like `llmctl info`).
pub fn loaded_model(model: &ModelRef) -> Result<(ModelId, Arc<Model>), LlmError> {
    with(|state| {
        let found = state.governor.registry().loaded(model).map_err(GovernanceError::Registry)?;
        let (id, kind) = (found.id(), found.metadata().kind);
        match state.weights.iter().find(|(loaded, _)| *loaded == id) {
            Some((_, Ok(weights))) => Ok((id, weights.clone())),
            Some((_, Err(error))) => Err(LlmError::BadWeights { model: id, error: error.clone() }),
            None => Err(LlmError::NotALanguageModel { model: id, kind }),
        }
    })?
}

/// Runs `body` with the governor, then appends the audit entries it added to the disk's log. The governor is
/// made on first use (from a thread, since reading the disk blocks) from the keys [`boot`] read and
/// the audit log on the disk, if one is attached.
pub fn with<T>(body: impl FnOnce(&mut State) -> T) -> Result<T, LlmError> {
    let mut guard = crate::sync::lock(&STATE);
    let state = match guard.as_mut() {
        Some(state) => state,
        None => {
            let keys = TRUSTED.lock().clone().unwrap_or_else(|| trusted_keys_from(""))?;
            let (audit, disk) = persist::open();
            guard.insert(State::new(keys, audit, disk)?)
        }
    };
    let result = body(state);
    persist::append(&mut state.disk, state.governor.audit());
    Ok(result)
}

/// Reads the trusted keys from the boot arguments (`sis.trust`), printing why if `sis.trust` is refused (then
/// every `llmctl` command fails with `bad-trust-argument`: nothing is trusted).
pub fn boot(bootargs: &str) {
    let keys = trusted_keys_from(bootargs);
    if let Err(error) = &keys {
        console::write_str(&alloc::format!("llmctl: {error}; no model can be registered\n"));
    }
    *TRUSTED.lock() = Some(keys);
}

/// Where the audit log is kept: on the disk, or why not.
pub fn audit_persistence() -> Result<persist::Status, LlmError> {
    with(|state| state.disk.status())
}

/// The governor, the parsed weights of loaded language models, and the audit log's place on the disk.
pub struct State {
    /// Keys, registry, policy and audit log.
    pub governor: Governor,
    /// Each loaded language model's weights, or why they do not parse.
    weights: Vec<(ModelId, Result<Arc<Model>, LmError>)>,
    /// The audit log on the disk.
    disk: persist::DiskLog,
}

impl State {
    fn new(keys: TrustedKeys, audit: AuditLog, disk: persist::DiskLog) -> Result<State, LlmError> {
        let policy =
            Policy::new(Limits::DEFAULT).map_err(|error| LlmError::Governance(GovernanceError::Policy(error)))?;
        let registry = Registry::new(DEFAULT_MAX_MODELS, DEFAULT_MAX_TOTAL_BYTES);
        let governor = Governor::new(keys, registry, policy, audit);
        Ok(State { governor, weights: Vec::new(), disk })
    }
}

/// The keys `sis.trust` names, or the public test key without it.
fn trusted_keys_from(bootargs: &str) -> Result<TrustedKeys, LlmError> {
    let bad = |reason: String| LlmError::BadTrustArgument { reason };
    match bootargs::find(bootargs, TRUST_ARGUMENT).map_err(|error| bad(alloc::format!("{error}")))? {
        Some(list) => trusted_keys(&list).map_err(|error| bad(alloc::format!("{error} ({})", error.code()))),
        None => trusted_keys(TEST_PUBLIC_KEY_HEX.trim()).map_err(|error| bad(alloc::format!("{error}"))),
    }
}

fn trusted_keys(list: &str) -> Result<TrustedKeys, KeyError> {
    let mut keys = TrustedKeys::new();
    for hex in list.split(',') {
        keys.add_hex(hex)?;
    }
    Ok(keys)
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);
/// The keys [`boot`] read from `sis.trust`, or why they were refused.
static TRUSTED: spin::Mutex<Option<Result<TrustedKeys, LlmError>>> = spin::Mutex::new(None);
