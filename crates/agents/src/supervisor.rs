//! The supervisor: every loaded agent's lifecycle, restart policy, resource accounting and the shared audit log.
//!
//! Time is passed in (`now_ms`), never read, so the restart policy is tested on a fake clock. A slice is run in
//! two halves so that the kernel can run it without holding the supervisor's lock: [`Supervisor::begin_slice`]
//! hands out the agent's [`Sandbox`] when it is due to run, the caller steps it, and [`Supervisor::end_slice`]
//! takes it back with the outcome. [`Supervisor::run_slice`] does all three for callers that hold the lock anyway.

use crate::audit::{AuditLog, AuditRecord};
use crate::caps::CapabilitySet;
use crate::host::Host;
use crate::sandbox::{LoadError, Sandbox, StepOutcome, StopReason, Usage};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

pub use crate::sandbox::Limits;

/// Agents one supervisor holds at most.
pub const MAX_AGENTS: usize = 16;
/// Audit records the supervisor keeps over all agents before the oldest are dropped.
pub const SUPERVISOR_AUDIT_CAPACITY: usize = 2048;

/// When a stopped agent is started again by the supervisor itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never: a failure leaves the agent crashed until an operator starts it.
    Never,
    /// After a failure (anything but exit code 0), wait `initial_backoff_ms * 2^k` (at most `max_backoff_ms`),
    /// where `k` is the number of restarts already made in the last `window_ms`, then restart; when `max_restarts`
    /// restarts were already made in that window, give up instead.
    OnFailure {
        /// Wait before the first restart in a window.
        initial_backoff_ms: u64,
        /// Upper bound of the wait.
        max_backoff_ms: u64,
        /// Restarts allowed within `window_ms` before the agent gives up.
        max_restarts: u32,
        /// The sliding window, in ms.
        window_ms: u64,
    },
}

impl RestartPolicy {
    /// The default on-failure policy: 100 ms doubling to 10 s, at most 5 restarts a minute.
    pub const DEFAULT_ON_FAILURE: Self =
        Self::OnFailure { initial_backoff_ms: 100, max_backoff_ms: 10_000, max_restarts: 5, window_ms: 60_000 };

    /// `never` or `on-failure`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnFailure { .. } => "on-failure",
        }
    }
}

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Loaded and validated, never started.
    Loaded,
    /// Runnable: the next slice runs as soon as its thread asks.
    Running,
    /// Asked to sleep; runnable again at `wake_at_ms`.
    Sleeping,
    /// Stopped by an operator or finished with exit code 0.
    Stopped,
    /// Failed; restarts at `restart_at_ms` when the policy allows, else stays crashed.
    Crashed,
    /// Failed more often than the restart policy allows; stays down until an operator starts it.
    GaveUp,
}

impl State {
    /// The stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Running => "running",
            Self::Sleeping => "sleeping",
            Self::Stopped => "stopped",
            Self::Crashed => "crashed",
            Self::GaveUp => "gave-up",
        }
    }
}

/// Why an agent last stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastStop {
    /// The agent stopped on its own or was stopped by the sandbox.
    Agent(StopReason),
    /// An operator stopped it.
    Operator,
}

impl LastStop {
    /// A stable kebab-case name of the kind of stop (`operator`, or the [`StopReason::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Agent(reason) => reason.kind(),
            Self::Operator => "operator",
        }
    }
}

impl fmt::Display for LastStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(reason) => write!(f, "{reason}"),
            Self::Operator => f.write_str("stopped by operator"),
        }
    }
}

/// Errors of the supervisor's operations; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorError {
    /// No agent has this name.
    UnknownAgent(String),
    /// An agent with this name is already loaded.
    DuplicateName(String),
    /// The name is empty, longer than 32 bytes or has characters other than `a-z 0-9 - _`.
    BadName(String),
    /// [`MAX_AGENTS`] agents are loaded.
    TooManyAgents,
    /// Every id up to `u32::MAX` was given out in this boot (ids are never reused).
    IdsExhausted,
    /// The module was refused.
    Load(LoadError),
    /// The agent is already running or sleeping.
    AlreadyRunning(String),
    /// The agent's sandbox is out for a slice; try again when the slice ends.
    Busy(String),
}

impl SupervisorError {
    /// The stable code for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownAgent(_) => "unknown-agent",
            Self::DuplicateName(_) => "duplicate-agent",
            Self::BadName(_) => "bad-agent-name",
            Self::TooManyAgents => "too-many-agents",
            Self::IdsExhausted => "agent-ids-exhausted",
            Self::Load(error) => error.code(),
            Self::AlreadyRunning(_) => "already-running",
            Self::Busy(_) => "agent-busy",
        }
    }
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAgent(name) => write!(f, "no agent named '{name}'"),
            Self::DuplicateName(name) => write!(f, "an agent named '{name}' is already loaded"),
            Self::BadName(name) => write!(f, "bad agent name '{name}' (1-32 of a-z, 0-9, '-', '_')"),
            Self::TooManyAgents => write!(f, "{MAX_AGENTS} agents are loaded already"),
            Self::IdsExhausted => write!(f, "every agent id up to {} was given out; ids are never reused", u32::MAX),
            Self::Load(error) => write!(f, "{error}"),
            Self::AlreadyRunning(name) => write!(f, "agent '{name}' is already running"),
            Self::Busy(name) => write!(f, "agent '{name}' is in the middle of a slice"),
        }
    }
}

/// What the caller of [`Supervisor::begin_slice`] should do.
#[derive(Debug)]
pub enum Slice {
    /// Step this sandbox once and give it back with [`Supervisor::end_slice`].
    Run(Box<Sandbox>),
    /// Nothing to run before this time (sleeping, or waiting to restart).
    WaitUntil(u64),
    /// Nothing to run until an operator acts (loaded, stopped, crashed without restart, gave up).
    Idle,
}

/// A snapshot of one agent for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// The agent's id: given at load, from 1, never reused by this supervisor (the governance principal `agent:ID`).
    pub id: u32,
    /// The agent's name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Why it last stopped, if it has.
    pub last_stop: Option<LastStop>,
    /// Its capabilities, as text.
    pub capabilities: String,
    /// Its limits.
    pub limits: Limits,
    /// Its restart policy.
    pub policy: RestartPolicy,
    /// Restarts made by the policy since load (operator starts not counted).
    pub restarts: u32,
    /// When a sleeping agent wakes or a crashed one restarts.
    pub due_at_ms: Option<u64>,
    /// Usage summed over every instance since load; `memory_bytes` is the current instance's.
    pub usage: Usage,
    /// Bytes of the module.
    pub module_bytes: usize,
}

#[derive(Debug)]
struct Agent {
    id: u32,
    name: String,
    wasm: Arc<[u8]>,
    capabilities: CapabilitySet,
    limits: Limits,
    policy: RestartPolicy,
    state: State,
    last_stop: Option<LastStop>,
    /// `None` when stopped or while out for a slice.
    sandbox: Option<Box<Sandbox>>,
    out_for_slice: bool,
    stop_requested: bool,
    due_at_ms: u64,
    /// Times of the policy's restarts still inside the window.
    recent_restarts: VecDeque<u64>,
    restarts: u32,
    /// Usage of finished instances.
    past_usage: Usage,
    /// The current instance's usage at its last slice end.
    current_usage: Usage,
}

/// All loaded agents.
#[derive(Debug)]
pub struct Supervisor {
    agents: Vec<Agent>,
    audit: AuditLog,
    /// The id the next loaded agent gets (`None` once `u32::MAX` was given).
    next_id: Option<u32>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// An empty supervisor.
    pub fn new() -> Self {
        Self { agents: Vec::new(), audit: AuditLog::with_capacity(SUPERVISOR_AUDIT_CAPACITY), next_id: Some(1) }
    }

    /// Validates and instantiates `wasm` as agent `name`, in state `loaded`, and returns its id: 1 for the first
    /// agent this supervisor loads, one more for each later one, never reused (a refused load takes no id).
    pub fn load(
        &mut self,
        name: &str,
        wasm: &[u8],
        capabilities: CapabilitySet,
        limits: Limits,
        policy: RestartPolicy,
    ) -> Result<u32, SupervisorError> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(SupervisorError::BadName(name.to_string()));
        }
        if self.agents.iter().any(|agent| agent.name == name) {
            return Err(SupervisorError::DuplicateName(name.to_string()));
        }
        if self.agents.len() >= MAX_AGENTS {
            return Err(SupervisorError::TooManyAgents);
        }
        let id = self.next_id.ok_or(SupervisorError::IdsExhausted)?;
        let sandbox = Sandbox::load(name, wasm, capabilities.clone(), limits).map_err(SupervisorError::Load)?;
        let current_usage = sandbox.usage();
        self.agents.push(Agent {
            id,
            name: name.to_string(),
            wasm: Arc::from(wasm),
            capabilities,
            limits,
            policy,
            state: State::Loaded,
            last_stop: None,
            sandbox: Some(Box::new(sandbox)),
            out_for_slice: false,
            stop_requested: false,
            due_at_ms: 0,
            recent_restarts: VecDeque::new(),
            restarts: 0,
            past_usage: Usage::default(),
            current_usage,
        });
        self.next_id = id.checked_add(1);
        Ok(id)
    }

    /// Removes the agent and frees everything it held.
    pub fn unload(&mut self, name: &str) -> Result<(), SupervisorError> {
        let index = self.index(name)?;
        if self.agents[index].out_for_slice {
            return Err(SupervisorError::Busy(name.to_string()));
        }
        self.agents.remove(index);
        Ok(())
    }

    /// Makes the agent runnable: a loaded agent runs its first slice, a stopped, crashed or given-up one starts
    /// from a fresh instance (and its restart window is cleared).
    pub fn start(&mut self, name: &str) -> Result<(), SupervisorError> {
        let agent = self.agent_mut(name)?;
        match agent.state {
            State::Running | State::Sleeping => return Err(SupervisorError::AlreadyRunning(name.to_string())),
            State::Loaded => {}
            State::Stopped | State::Crashed | State::GaveUp => {
                agent.recent_restarts.clear();
                agent.instantiate()?;
            }
        }
        agent.state = State::Running;
        Ok(())
    }

    /// Stops the agent. One out for a slice stops when the slice ends.
    pub fn stop(&mut self, name: &str) -> Result<(), SupervisorError> {
        let agent = self.agent_mut(name)?;
        if agent.out_for_slice {
            agent.stop_requested = true;
        } else {
            agent.stop_by_operator();
        }
        Ok(())
    }

    /// Stops the agent and starts it from a fresh instance.
    pub fn restart(&mut self, name: &str) -> Result<(), SupervisorError> {
        let agent = self.agent_mut(name)?;
        if agent.out_for_slice {
            return Err(SupervisorError::Busy(name.to_string()));
        }
        if matches!(agent.state, State::Running | State::Sleeping) {
            agent.stop_by_operator();
        }
        self.start(name)
    }

    /// Hands out the agent's sandbox when it is due at `now_ms` (waking a sleeper, restarting a crashed agent
    /// whose backoff has passed).
    pub fn begin_slice(&mut self, name: &str, now_ms: u64) -> Result<Slice, SupervisorError> {
        let agent = self.agent_mut(name)?;
        if agent.out_for_slice {
            return Err(SupervisorError::Busy(name.to_string()));
        }
        match agent.state {
            State::Running => {}
            State::Crashed if !agent.restart_pending() => return Ok(Slice::Idle),
            State::Sleeping | State::Crashed if !agent.due(now_ms) => return Ok(Slice::WaitUntil(agent.due_at_ms)),
            State::Sleeping => agent.state = State::Running,
            State::Crashed => {
                if let Err(error) = agent.instantiate() {
                    // The module loaded before, so this is a host failure (out of memory): give up.
                    agent.state = State::GaveUp;
                    return Err(error);
                }
                agent.restarts = agent.restarts.saturating_add(1);
                agent.state = State::Running;
            }
            State::Loaded | State::Stopped | State::GaveUp => return Ok(Slice::Idle),
        }
        match agent.sandbox.take() {
            Some(sandbox) => {
                agent.out_for_slice = true;
                Ok(Slice::Run(sandbox))
            }
            None => Ok(Slice::Idle),
        }
    }

    /// Takes the sandbox back after one [`Sandbox::step`] that returned `outcome`, moves its audit records into
    /// the supervisor's log and applies the restart policy.
    pub fn end_slice(&mut self, name: &str, mut sandbox: Box<Sandbox>, outcome: StepOutcome, now_ms: u64) {
        let Ok(index) = self.index(name) else { return };
        for record in sandbox.audit.drain() {
            self.audit.push(record);
        }
        let agent = &mut self.agents[index];
        agent.out_for_slice = false;
        agent.current_usage = sandbox.usage();
        if agent.stop_requested {
            agent.stop_requested = false;
            agent.sandbox = Some(sandbox);
            agent.stop_by_operator();
            return;
        }
        match outcome {
            StepOutcome::Preempted => {
                agent.sandbox = Some(sandbox);
                agent.state = State::Running;
            }
            StepOutcome::Sleeping { duration_ms } => {
                agent.sandbox = Some(sandbox);
                agent.state = State::Sleeping;
                agent.due_at_ms = now_ms.saturating_add(u64::from(duration_ms));
            }
            StepOutcome::Stopped(reason) => {
                agent.retire_instance();
                drop(sandbox);
                let failed = reason.is_failure();
                agent.last_stop = Some(LastStop::Agent(reason));
                if !failed {
                    agent.state = State::Stopped;
                } else {
                    agent.schedule_restart(now_ms);
                }
            }
        }
    }

    /// Runs one slice of `name` if it is due: begin, step, end.
    pub fn run_slice(
        &mut self,
        name: &str,
        host: &mut dyn Host,
        now_ms: u64,
    ) -> Result<Option<StepOutcome>, SupervisorError> {
        match self.begin_slice(name, now_ms)? {
            Slice::Run(mut sandbox) => {
                let outcome = sandbox.step(host);
                self.end_slice(name, sandbox, outcome.clone(), now_ms);
                Ok(Some(outcome))
            }
            Slice::WaitUntil(_) | Slice::Idle => Ok(None),
        }
    }

    /// The agent's status.
    pub fn status(&self, name: &str) -> Result<AgentStatus, SupervisorError> {
        let index = self.index(name)?;
        Ok(self.agents[index].status())
    }

    /// Every agent's status, in load order.
    pub fn statuses(&self) -> Vec<AgentStatus> {
        self.agents.iter().map(Agent::status).collect()
    }

    /// The agent's id (see [`Supervisor::load`]).
    pub fn id(&self, name: &str) -> Result<u32, SupervisorError> {
        let index = self.index(name)?;
        Ok(self.agents[index].id)
    }

    /// The agents' names, in load order.
    pub fn names(&self) -> Vec<String> {
        self.agents.iter().map(|agent| agent.name.clone()).collect()
    }

    /// The agent's capabilities.
    pub fn capabilities(&self, name: &str) -> Result<&CapabilitySet, SupervisorError> {
        let index = self.index(name)?;
        Ok(&self.agents[index].capabilities)
    }

    /// Audit records kept, oldest first, optionally only one agent's and only refused calls.
    pub fn audit(&self, agent: Option<&str>, refused_only: bool) -> Vec<AuditRecord> {
        self.audit
            .records()
            .filter(|record| agent.is_none_or(|name| record.agent == name))
            .filter(|record| !refused_only || record.is_refused())
            .cloned()
            .collect()
    }

    /// Adds a record made outside a sandbox (a [`crate::serve_once`] self-test) to the log.
    pub fn record(&mut self, record: AuditRecord) {
        self.audit.push(record);
    }

    /// Forgets the audit log; returns how many records it held.
    pub fn clear_audit(&mut self) -> usize {
        self.audit.clear()
    }

    /// Audit records dropped for lack of room.
    pub fn audit_dropped(&self) -> u64 {
        self.audit.dropped()
    }

    fn index(&self, name: &str) -> Result<usize, SupervisorError> {
        self.agents
            .iter()
            .position(|agent| agent.name == name)
            .ok_or_else(|| SupervisorError::UnknownAgent(name.to_string()))
    }

    fn agent_mut(&mut self, name: &str) -> Result<&mut Agent, SupervisorError> {
        let index = self.index(name)?;
        Ok(&mut self.agents[index])
    }
}

impl Agent {
    fn instantiate(&mut self) -> Result<(), SupervisorError> {
        self.retire_instance();
        let sandbox = Sandbox::load(&self.name, &self.wasm, self.capabilities.clone(), self.limits)
            .map_err(SupervisorError::Load)?;
        self.current_usage = sandbox.usage();
        self.sandbox = Some(Box::new(sandbox));
        Ok(())
    }

    /// Adds the current instance's usage to the past and drops the instance.
    fn retire_instance(&mut self) {
        let current = core::mem::take(&mut self.current_usage);
        let past = &mut self.past_usage;
        past.fuel_used = past.fuel_used.saturating_add(current.fuel_used);
        past.calls = past.calls.saturating_add(current.calls);
        past.denials = past.denials.saturating_add(current.denials);
        past.rate_limited = past.rate_limited.saturating_add(current.rate_limited);
        past.protocol_errors = past.protocol_errors.saturating_add(current.protocol_errors);
        past.slices = past.slices.saturating_add(current.slices);
        self.sandbox = None;
    }

    fn stop_by_operator(&mut self) {
        self.retire_instance();
        self.state = State::Stopped;
        self.last_stop = Some(LastStop::Operator);
    }

    fn restart_pending(&self) -> bool {
        self.state == State::Crashed && matches!(self.policy, RestartPolicy::OnFailure { .. })
    }

    /// Whether a sleeping agent may wake, or a crashed one restart, at `now_ms`; a crashed agent under
    /// [`RestartPolicy::Never`] never is.
    fn due(&self, now_ms: u64) -> bool {
        match self.state {
            State::Crashed => self.restart_pending() && now_ms >= self.due_at_ms,
            _ => now_ms >= self.due_at_ms,
        }
    }

    fn schedule_restart(&mut self, now_ms: u64) {
        self.state = State::Crashed;
        let RestartPolicy::OnFailure { initial_backoff_ms, max_backoff_ms, max_restarts, window_ms } = self.policy
        else {
            return;
        };
        while self.recent_restarts.front().is_some_and(|&at| now_ms.saturating_sub(at) >= window_ms) {
            self.recent_restarts.pop_front();
        }
        let made = self.recent_restarts.len();
        if made >= max_restarts as usize {
            self.state = State::GaveUp;
            return;
        }
        let mut backoff = initial_backoff_ms.min(max_backoff_ms);
        for _ in 0..made.min(64) {
            backoff = backoff.saturating_mul(2).min(max_backoff_ms);
        }
        self.due_at_ms = now_ms.saturating_add(backoff);
        self.recent_restarts.push_back(self.due_at_ms);
    }

    fn status(&self) -> AgentStatus {
        let current = self.current_usage;
        let past = self.past_usage;
        let usage = Usage {
            fuel_used: past.fuel_used.saturating_add(current.fuel_used),
            memory_bytes: current.memory_bytes,
            calls: past.calls.saturating_add(current.calls),
            denials: past.denials.saturating_add(current.denials),
            rate_limited: past.rate_limited.saturating_add(current.rate_limited),
            protocol_errors: past.protocol_errors.saturating_add(current.protocol_errors),
            slices: past.slices.saturating_add(current.slices),
        };
        let due_at_ms = match self.state {
            State::Sleeping => Some(self.due_at_ms),
            State::Crashed if self.restart_pending() => Some(self.due_at_ms),
            _ => None,
        };
        AgentStatus {
            id: self.id,
            name: self.name.clone(),
            state: self.state,
            last_stop: self.last_stop.clone(),
            capabilities: self.capabilities.to_string(),
            limits: self.limits,
            policy: self.policy,
            restarts: self.restarts,
            due_at_ms,
            usage,
            module_bytes: self.wasm.len(),
        }
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
