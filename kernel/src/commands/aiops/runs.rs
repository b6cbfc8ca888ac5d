//! Wiring of `aiopsctl`: each lifecycle step of crates/governance (audited there) and the shadow or canary run of
//! crates/stress it starts or stops in the meta-agent, under the governor's lock then the autonomy lock (in that
//! order, never the other way round: the autonomy thread audits a canary rollback after releasing its own).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sis_ai::{Agent, NetworkWeights, WeightsError};
use sis_autonomy::Heuristic;
use sis_governance::artifact::ModelRef;
use sis_governance::lifecycle::{self, Stage, Transition};
use sis_governance::registry::ModelId;
use sis_governance::{GovernanceError, Principal};
use sis_metrics::LatencyHistogram;
use sis_platform::time;
use sis_shell::ShellError;
use sis_stress::aiops::{
    CanaryConfig, CanaryConfigError, CanaryStatus, ShadowCriteria, ShadowCriteriaError, ShadowReport,
};
use sis_stress::governor::{BoxedPolicy, Governor};
use sis_stress::learning::{self, LearnedPolicy};

use crate::commands::autonomy::{self, Autonomy, PolicySource};
use crate::governance::{self, LlmError, INSTALLED_AGENT_SEED};

/// The principal an automatic canary rollback is audited under: the meta-agent, agent 0.
pub const META_AGENT: Principal = Principal::Agent(0);

/// Why an `aiopsctl` step changed nothing.
#[derive(Debug, Clone)]
pub enum AiopsError {
    /// Refused by the model governor or the lifecycle (audited there).
    Governance(GovernanceError),
    /// The model governor is unusable (`sis.trust` refused).
    Llm(LlmError),
    /// The model's weights do not make the meta-agent's network (`bad-weights`; nothing moved).
    Weights {
        /// The model.
        model: ModelId,
        /// Why.
        error: WeightsError,
    },
    /// `shadow start` of a subject not registered, `canary start` of one not in shadow (`wrong-stage`).
    WrongStage {
        /// The subject.
        subject: ModelId,
        /// Its stage.
        stage: Stage,
        /// The stage the command starts from.
        expected: Stage,
    },
    /// `shadow stop` without a candidate in shadow (`no-shadow`).
    NoShadow,
    /// `canary stop` without a candidate in canary (`no-canary`).
    NoCanary,
    /// `shadow report` before any shadow (`no-shadow-report`).
    NoShadowReport,
    /// `canary status` before any canary (`no-canary-status`).
    NoCanaryStatus,
    /// Canary options out of range.
    Canary(CanaryConfigError),
    /// Shadow criteria out of range.
    Criteria(ShadowCriteriaError),
    /// The meta-agent's state (`internal`).
    Autonomy(ShellError),
}

impl AiopsError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AiopsError::Governance(error) => error.code(),
            AiopsError::Llm(error) => error.code(),
            AiopsError::Weights { .. } => "bad-weights",
            AiopsError::WrongStage { .. } => "wrong-stage",
            AiopsError::NoShadow => "no-shadow",
            AiopsError::NoCanary => "no-canary",
            AiopsError::NoShadowReport => "no-shadow-report",
            AiopsError::NoCanaryStatus => "no-canary-status",
            AiopsError::Canary(CanaryConfigError::BadShare { .. }) => "bad-share",
            AiopsError::Canary(CanaryConfigError::BadWindow { .. }) => "bad-window",
            AiopsError::Canary(CanaryConfigError::BadRewardDrop { .. }) => "bad-max-drop",
            AiopsError::Criteria(ShadowCriteriaError::BadMinCompared { .. }) => "bad-min-decisions",
            AiopsError::Criteria(ShadowCriteriaError::BadMinAgreement { .. }) => "bad-min-agreement",
            AiopsError::Autonomy(error) => error.code(),
        }
    }
}

impl fmt::Display for AiopsError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AiopsError::Governance(error) => write!(formatter, "{error}"),
            AiopsError::Llm(error) => write!(formatter, "{error}"),
            AiopsError::Weights { model, error } => {
                write!(formatter, "{model}: its weights do not make the meta-agent's network: {error}")
            }
            AiopsError::WrongStage { subject, stage, expected } => write!(
                formatter,
                "{subject} is {}, not {}: nothing changed (aiopsctl status shows every stage)",
                stage.name(),
                expected.name()
            ),
            AiopsError::NoShadow => write!(formatter, "no candidate is in shadow"),
            AiopsError::NoCanary => write!(formatter, "no candidate is in canary"),
            AiopsError::NoShadowReport => write!(formatter, "no shadow has run since boot"),
            AiopsError::NoCanaryStatus => write!(formatter, "no canary has run since boot"),
            AiopsError::Canary(CanaryConfigError::BadShare { share_per_mille }) => {
                write!(formatter, "--share takes 1 to 1000 per mille, not {share_per_mille}; nothing changed")
            }
            AiopsError::Canary(CanaryConfigError::BadWindow { window }) => {
                write!(formatter, "--window takes 1 to 256 decisions, not {window}; nothing changed")
            }
            AiopsError::Canary(CanaryConfigError::BadRewardDrop { max_reward_drop_milli }) => {
                write!(formatter, "--max-drop takes 0 or more, not {max_reward_drop_milli}; nothing changed")
            }
            AiopsError::Criteria(ShadowCriteriaError::BadMinCompared { min_compared }) => {
                write!(formatter, "--min-decisions takes 1 to 1000000, not {min_compared}; nothing changed")
            }
            AiopsError::Criteria(ShadowCriteriaError::BadMinAgreement { min_agreement_per_mille }) => {
                write!(
                    formatter,
                    "--min-agreement takes 0 to 1000 per mille, not {min_agreement_per_mille}; nothing changed"
                )
            }
            AiopsError::Autonomy(error) => write!(formatter, "{}", error.message()),
        }
    }
}

impl From<GovernanceError> for AiopsError {
    fn from(error: GovernanceError) -> Self {
        AiopsError::Governance(error)
    }
}

impl From<LlmError> for AiopsError {
    fn from(error: LlmError) -> Self {
        AiopsError::Llm(error)
    }
}

impl From<ShellError> for AiopsError {
    fn from(error: ShellError) -> Self {
        AiopsError::Autonomy(error)
    }
}

/// A shadow that ended, with what it found.
#[derive(Debug, Clone)]
pub struct FinishedShadow {
    /// The candidate.
    pub subject: ModelId,
    /// What its report needed to pass.
    pub criteria: ShadowCriteria,
    /// Its final report.
    pub report: ShadowReport,
}

/// The candidate runs beside the meta-agent (the runs themselves live in its governor), and their last results.
pub struct Runs {
    /// The subject shadowed now, with its criteria.
    shadow: Option<(ModelId, ShadowCriteria)>,
    /// The last shadow that ended.
    last_shadow: Option<FinishedShadow>,
    /// The subject in canary now.
    canary: Option<ModelId>,
    /// The last canary that ended (stopped, promoted or rolled back), with its final status.
    last_canary: Option<(ModelId, CanaryStatus)>,
    /// Time each shadow step took (the candidate's decision and the comparison), ns, since the shadow started.
    shadow_cost: LatencyHistogram,
    /// Canaries rolled back automatically since boot.
    canary_rollbacks: u64,
}

impl Default for Runs {
    fn default() -> Self {
        Runs::new()
    }
}

impl Runs {
    /// No run yet.
    pub const fn new() -> Runs {
        Runs {
            shadow: None,
            last_shadow: None,
            canary: None,
            last_canary: None,
            shadow_cost: LatencyHistogram::new(),
            canary_rollbacks: 0,
        }
    }

    /// One shadow step's time.
    pub fn record_shadow_cost(&mut self, ns: u64) {
        self.shadow_cost.record(ns);
    }

    /// The time of each shadow step.
    pub fn shadow_cost(&self) -> &LatencyHistogram {
        &self.shadow_cost
    }

    /// Canaries rolled back automatically since boot.
    pub fn canary_rollbacks(&self) -> u64 {
        self.canary_rollbacks
    }

    /// Records a canary its rule stopped (the governor has let go of it): its subject and the reason's code, for
    /// the lifecycle and the audit log.
    pub fn canary_rolled_back(&mut self, status: CanaryStatus) -> Option<(ModelId, &'static str)> {
        let subject = self.canary.take()?;
        let reason = status.rollback.map_or("unknown", |rollback| rollback.code());
        self.canary_rollbacks += 1;
        self.last_canary = Some((subject.clone(), status));
        Some((subject, reason))
    }

    /// The shadow report now (running or the last one), with its subject, criteria and whether it runs.
    pub fn shadow_report(&self, governor: &Governor) -> Option<(ModelId, ShadowCriteria, ShadowReport, bool)> {
        match (&self.shadow, governor.shadow_report()) {
            (Some((subject, criteria)), Some(report)) => Some((subject.clone(), *criteria, report.clone(), true)),
            _ => {
                self.last_shadow.as_ref().map(|last| (last.subject.clone(), last.criteria, last.report.clone(), false))
            }
        }
    }

    /// The canary status now (running or the last one), with its subject and whether it runs.
    pub fn canary_status(&self, governor: &Governor) -> Option<(ModelId, CanaryStatus, bool)> {
        match (&self.canary, governor.canary_status()) {
            (Some(subject), Some(status)) => Some((subject.clone(), status, true)),
            _ => self.last_canary.as_ref().map(|(subject, status)| (subject.clone(), status.clone(), false)),
        }
    }

    /// Whether `subject` has a passing shadow report (the running shadow's, or the last one's).
    fn passed(&self, subject: &ModelId, governor: &Governor) -> bool {
        self.shadow_report(governor)
            .is_some_and(|(shadowed, criteria, report, _)| shadowed == *subject && report.passes_criteria(&criteria))
    }

    /// The criteria `subject` was last shadowed with.
    fn criteria_of(&self, subject: &ModelId) -> Option<ShadowCriteria> {
        match (&self.shadow, &self.last_shadow) {
            (Some((shadowed, criteria)), _) if shadowed == subject => Some(*criteria),
            (_, Some(last)) if last.subject == *subject => Some(last.criteria),
            _ => None,
        }
    }
}

/// A lifecycle subject made into a policy: the heuristic, or a model's agent built from its registered weights.
#[derive(Clone)]
pub enum Candidate {
    /// The built-in heuristic.
    Heuristic,
    /// A registered agent-network model.
    Model {
        /// The model.
        model: ModelId,
        /// Its agent (weights from the artifact, generator seed [`INSTALLED_AGENT_SEED`]).
        agent: Box<Agent>,
    },
}

impl Candidate {
    fn policy(&self) -> BoxedPolicy {
        match self {
            Candidate::Heuristic => Box::new(Heuristic),
            Candidate::Model { agent, .. } => Box::new(LearnedPolicy::new((**agent).clone())),
        }
    }

    fn source(self) -> PolicySource {
        match self {
            Candidate::Heuristic => PolicySource::Builtin(String::from("heuristic")),
            Candidate::Model { model, agent } => PolicySource::Model { model, agent },
        }
    }
}

/// What a step starts with: shadow criteria and canary options (checked before anything moves).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// For a shadow the step starts (`None`: the subject's last criteria, or the defaults).
    pub criteria: Option<ShadowCriteria>,
    /// For a canary the step starts.
    pub canary: CanaryConfig,
}

impl Options {
    /// The options, or the first rule they break.
    pub fn validate(&self) -> Result<(), AiopsError> {
        if let Some(criteria) = &self.criteria {
            criteria.validate().map_err(AiopsError::Criteria)?;
        }
        self.canary.validate().map_err(AiopsError::Canary)
    }
}

/// Promotes `model` one stage (see the lifecycle) and starts what the new stage does: a shadow, a canary, or the
/// model's policy in production. With `expected`, a subject in another stage is refused before the lifecycle is
/// asked.
pub fn promote(
    principal: Principal,
    model: &ModelRef,
    force: bool,
    options: &Options,
    expected: Option<Stage>,
) -> Result<Vec<Transition>, AiopsError> {
    options.validate()?;
    governance::with(|state| {
        let governor = &mut state.governor;
        // An unknown or wrong-kind model is refused by `promote` below, which audits the refusal.
        let (candidate, passed) = match governor.subject(model) {
            Ok(subject) => {
                let stage = governor.lifecycle().stage(&subject);
                if let Some(expected) = expected.filter(|expected| *expected != stage) {
                    return Err(AiopsError::WrongStage { subject, stage, expected });
                }
                let candidate = match stage {
                    Stage::Registered | Stage::Shadow | Stage::Canary => Some(candidate(governor, &subject)?),
                    Stage::Production | Stage::Retired => None,
                };
                (candidate, autonomy::with_state(|meta| meta.runs.passed(&subject, &meta.governor))?)
            }
            Err(_) => (None, false),
        };
        let made = governor.promote(principal, model, passed, force, time::now_ns())?;
        if let (Some(candidate), Some(moved)) = (candidate, made.first()) {
            autonomy::with_state(|meta| apply(meta, moved, candidate, options))??;
        }
        Ok(made)
    })?
}

/// Demotes `model` one stage and stops (or, back from canary, restarts) what its stage did. With `expected`, a
/// subject in another stage is refused before the lifecycle is asked.
pub fn demote(principal: Principal, model: &ModelRef, expected: Option<Stage>) -> Result<Transition, AiopsError> {
    governance::with(|state| {
        let governor = &mut state.governor;
        let candidate = match governor.subject(model) {
            Ok(subject) => {
                let stage = governor.lifecycle().stage(&subject);
                if let Some(expected) = expected.filter(|expected| *expected != stage) {
                    return Err(AiopsError::WrongStage { subject, stage, expected });
                }
                // Back from canary the candidate shadows again.
                match stage {
                    Stage::Canary => Some(candidate(governor, &subject)?),
                    _ => None,
                }
            }
            Err(_) => None,
        };
        let moved = governor.demote(principal, model, time::now_ns())?;
        autonomy::with_state(|meta| match candidate {
            Some(candidate) => apply(meta, &moved, candidate, &Options::default()),
            None => {
                stop_runs_of(meta, &moved.subject);
                Ok(())
            }
        })??;
        Ok(moved)
    })?
}

/// Hands production back to the previous production version and puts its policy in force.
pub fn rollback(principal: Principal) -> Result<Vec<Transition>, AiopsError> {
    governance::with(|state| {
        let governor = &mut state.governor;
        let restored = governor.lifecycle().previous_production().last().cloned();
        let candidate = restored.map(|subject| candidate(governor, &subject)).transpose()?;
        let made = governor.rollback(principal, time::now_ns())?;
        if let Some(candidate) = candidate {
            autonomy::with_state(|meta| autonomy::install(meta, candidate.source()))??;
        }
        Ok(made)
    })?
}

/// The subject in `stage` (shadow or canary), if one is.
pub fn candidate_in(stage: Stage) -> Result<Option<ModelId>, AiopsError> {
    Ok(governance::with(|state| {
        state.governor.lifecycle().candidate().filter(|(_, now)| *now == stage).map(|(subject, _)| subject.clone())
    })?)
}

/// Tells the lifecycle that the canary `subject` was rolled back automatically for `reason`: one `canary-rollback`
/// audit entry under [`META_AGENT`]. Called by the autonomy thread at the decision that stopped it.
pub fn audit_canary_rollback(subject: &ModelId, reason: &'static str) {
    let refused =
        match governance::with(|state| state.governor.canary_rollback(META_AGENT, subject, reason, time::now_ns())) {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(alloc::format!("{error}")),
            Err(error) => Some(alloc::format!("{error}")),
        };
    match refused {
        None => crate::klog!("aiops", "canary {subject} rolled back automatically: {reason}"),
        Some(error) => crate::klog!("aiops", "canary {subject} stopped ({reason}) but the lifecycle refused: {error}"),
    }
}

/// The subject as a policy.
fn candidate(governor: &sis_governance::Governor, subject: &ModelId) -> Result<Candidate, AiopsError> {
    if *subject == lifecycle::heuristic() {
        return Ok(Candidate::Heuristic);
    }
    let found = governor.registry().get(&subject.name, Some(subject.version)).map_err(GovernanceError::Registry)?;
    let metadata = found.metadata();
    let weights_error = |error| AiopsError::Weights { model: subject.clone(), error };
    let weights = NetworkWeights::decode_for(found.weights(), &metadata.input_shape, &metadata.output_shape)
        .map_err(weights_error)?;
    let agent = learning::agent_with_weights(&weights, INSTALLED_AGENT_SEED).map_err(weights_error)?;
    Ok(Candidate::Model { model: subject.clone(), agent: Box::new(agent) })
}

/// Starts what `moved`'s new stage does, stopping what its old stage did.
fn apply(meta: &mut Autonomy, moved: &Transition, candidate: Candidate, options: &Options) -> Result<(), AiopsError> {
    stop_runs_of(meta, &moved.subject);
    match moved.to {
        Stage::Shadow => {
            let criteria = options.criteria.or(meta.runs.criteria_of(&moved.subject)).unwrap_or_default();
            meta.governor.start_shadow(candidate.policy());
            meta.runs.shadow = Some((moved.subject.clone(), criteria));
            meta.runs.shadow_cost.reset();
        }
        Stage::Canary => {
            meta.governor.start_canary(candidate.policy(), options.canary).map_err(AiopsError::Canary)?;
            meta.runs.canary = Some(moved.subject.clone());
        }
        Stage::Production => autonomy::install(meta, candidate.source())?,
        Stage::Registered | Stage::Retired => {}
    }
    Ok(())
}

/// Ends `subject`'s shadow or canary, keeping their results.
fn stop_runs_of(meta: &mut Autonomy, subject: &ModelId) {
    if meta.runs.shadow.as_ref().is_some_and(|(shadowed, _)| shadowed == subject) {
        if let (Some((shadowed, criteria)), Some((_, report))) = (meta.runs.shadow.take(), meta.governor.stop_shadow())
        {
            meta.runs.last_shadow = Some(FinishedShadow { subject: shadowed, criteria, report });
        }
    }
    if meta.runs.canary.as_ref() == Some(subject) {
        if let (Some(subject), Some((_, status))) = (meta.runs.canary.take(), meta.governor.stop_canary()) {
            meta.runs.last_canary = Some((subject, status));
        }
    }
}
