//! The sandbox: one agent's WebAssembly instance with a memory limit, a fuel budget and typed outcomes.
//!
//! An agent module may import only `sis.host_call(req_ptr, req_len, resp_ptr, resp_cap: i32) -> i32` and must
//! export its linear `memory` and `run: () -> i32`. [`Sandbox::step`] runs `run` for at most one slice of fuel;
//! every host call pauses the guest (a wasmi resumable host trap), is decoded, checked against the agent's
//! capabilities, handed to the [`Host`], audited, answered in the agent's response buffer and resumed.

use crate::audit::AuditLog;
use crate::caps::CapabilitySet;
use crate::host::Host;
use crate::protocol::{DecodeError, MAX_MESSAGE};
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;
use wasmi::{
    Config, Engine, ExternType, Func, Instance, Linker, Memory, Module, ResumableCall, ResumableCallHostTrap,
    ResumableCallOutOfFuel, Store, Val, ValType,
};

/// The only import an agent may have: (module, name).
pub const HOST_CALL_IMPORT: (&str, &str) = ("sis", "host_call");
/// Bytes in a WebAssembly page.
pub const PAGE_BYTES: usize = 64 * 1024;
/// Fuel charged for a host call on top of the instructions around it, plus one unit per 8 bytes moved.
pub const HOST_CALL_FUEL: u64 = 100;

/// Resource limits of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory limit in 64 KiB pages; growing past it stops the agent with [`StopReason::MemoryLimit`].
    pub memory_pages: u32,
    /// Fuel one [`Sandbox::step`] may use before the agent is preempted.
    pub fuel_per_slice: u64,
    /// Fuel for the agent's whole run; when it is spent the agent stops with [`StopReason::OutOfFuel`].
    pub fuel_total: u64,
    /// Host calls (other than SLEEP) one slice may make; later ones are answered `RateLimited`.
    pub calls_per_slice: u32,
    /// Malformed messages answered with an error code before the agent is stopped for a protocol violation.
    pub max_protocol_errors: u32,
    /// Calls denied by the capability check before the agent is stopped for probing past its capabilities.
    pub max_denials: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_pages: 16,
            fuel_per_slice: 1_000_000,
            fuel_total: 100_000_000,
            calls_per_slice: 64,
            max_protocol_errors: 3,
            max_denials: 8,
        }
    }
}

/// Why a module was refused at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly module (the validator's message).
    Invalid(String),
    /// The module imports something other than `sis.host_call`.
    ForbiddenImport { module: String, name: String },
    /// `sis.host_call` is imported with the wrong type.
    WrongImportType,
    /// A required export (`memory`, `run`) is missing or has the wrong type.
    MissingExport(&'static str),
    /// The module's initial memory is larger than the limit.
    MemoryLimit { declared_pages: u64, limit_pages: u32 },
    /// Instantiation or the start function failed.
    Instantiate(String),
}

impl LoadError {
    /// The stable code for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid-module",
            Self::ForbiddenImport { .. } => "forbidden-import",
            Self::WrongImportType => "wrong-import-type",
            Self::MissingExport(_) => "missing-export",
            Self::MemoryLimit { .. } => "module-memory-too-large",
            Self::Instantiate(_) => "instantiate-failed",
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => write!(f, "not a valid WebAssembly module: {message}"),
            Self::ForbiddenImport { module, name } => {
                write!(f, "module imports {module}.{name}; only sis.host_call is allowed")
            }
            Self::WrongImportType => f.write_str("sis.host_call must have type (i32, i32, i32, i32) -> i32"),
            Self::MissingExport(name) => write!(f, "module must export '{name}' with the agent ABI type"),
            Self::MemoryLimit { declared_pages, limit_pages } => {
                write!(f, "module declares {declared_pages} memory pages; the limit is {limit_pages}")
            }
            Self::Instantiate(message) => write!(f, "instantiation failed: {message}"),
        }
    }
}

/// Why an agent stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `run` returned this exit code.
    Finished { exit_code: i32 },
    /// The guest trapped (the interpreter's message, e.g. unreachable, out-of-bounds access).
    Trap(String),
    /// The total fuel budget is spent.
    OutOfFuel,
    /// The guest tried to grow its memory past the limit.
    MemoryLimit,
    /// The guest broke the protocol badly enough to be stopped.
    ProtocolViolation(Violation),
    /// The guest made more calls its capabilities deny than [`Limits::max_denials`].
    CapabilityViolation {
        /// Denied calls, the last one included.
        denials: u64,
    },
}

impl StopReason {
    /// A stable kebab-case name of the kind of stop.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Finished { .. } => "finished",
            Self::Trap(_) => "trap",
            Self::OutOfFuel => "out-of-fuel",
            Self::MemoryLimit => "memory-limit",
            Self::ProtocolViolation(_) => "protocol-violation",
            Self::CapabilityViolation { .. } => "capability-violation",
        }
    }

    /// Whether the stop counts as a failure for the restart policy (everything but a clean exit 0).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Finished { exit_code: 0 })
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished { exit_code } => write!(f, "finished with exit code {exit_code}"),
            Self::Trap(message) => write!(f, "trap: {message}"),
            Self::OutOfFuel => f.write_str("out of fuel"),
            Self::MemoryLimit => f.write_str("memory limit"),
            Self::ProtocolViolation(violation) => write!(f, "protocol violation: {violation}"),
            Self::CapabilityViolation { denials } => write!(f, "capability violation: {denials} denied calls"),
        }
    }
}

/// A protocol violation that stops the agent (a malformed message is answered first, up to the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The request buffer lies outside linear memory.
    RequestOutOfBounds,
    /// The response buffer lies outside linear memory or cannot hold a header.
    ResponseBufferInvalid,
    /// More malformed messages than [`Limits::max_protocol_errors`]; the last one's error.
    TooManyMalformed(DecodeError),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RequestOutOfBounds => f.write_str("request buffer outside linear memory"),
            Self::ResponseBufferInvalid => f.write_str("response buffer outside linear memory or under 12 bytes"),
            Self::TooManyMalformed(error) => write!(f, "too many malformed messages (last: {error})"),
        }
    }
}

/// What one [`Sandbox::step`] ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The agent called SLEEP; step again after `duration_ms`.
    Sleeping { duration_ms: u32 },
    /// The slice's fuel ran out; the agent can be stepped again.
    Preempted,
    /// The agent stopped for good.
    Stopped(StopReason),
}

/// What an agent has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Fuel consumed, including host-call charges.
    pub fuel_used: u64,
    /// Linear memory now, in bytes.
    pub memory_bytes: usize,
    /// Host calls made (allowed, denied and malformed).
    pub calls: u64,
    /// Calls refused by the capability check.
    pub denials: u64,
    /// Calls refused by the per-slice rate limit.
    pub rate_limited: u64,
    /// Malformed messages.
    pub protocol_errors: u64,
    /// Slices run.
    pub slices: u64,
}

/// One loaded agent.
pub struct Sandbox {
    pub(crate) name: String,
    pub(crate) capabilities: CapabilitySet,
    pub(crate) limits: Limits,
    pub(crate) store: Store<StoreData>,
    pub(crate) memory: Memory,
    run: Func,
    resume: Resume,
    pub(crate) usage: Usage,
    pub(crate) audit: AuditLog,
    pub(crate) calls_this_slice: u32,
    stopped: Option<StopReason>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("name", &self.name).field("usage", &self.usage).finish_non_exhaustive()
    }
}

enum Resume {
    NotStarted,
    HostTrap(ResumableCallHostTrap, i32),
    OutOfFuel(ResumableCallOutOfFuel),
    Done,
}

/// The host-call arguments, carried out of the guest as a resumable host error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingCall {
    pub request_ptr: u32,
    pub request_len: u32,
    pub response_ptr: u32,
    pub response_cap: u32,
}

impl fmt::Display for PendingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pending host call")
    }
}

impl wasmi::errors::HostError for PendingCall {}

pub(crate) struct StoreData {
    limits: wasmi::StoreLimits,
}

impl Sandbox {
    /// Validates and instantiates `wasm` for the agent `name`.
    pub fn load(name: &str, wasm: &[u8], capabilities: CapabilitySet, limits: Limits) -> Result<Self, LoadError> {
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, wasm).map_err(|error| LoadError::Invalid(error.to_string()))?;
        check_imports(&module)?;
        check_exports(&module, limits)?;
        let limit_bytes = (limits.memory_pages as usize).saturating_mul(PAGE_BYTES);
        // Growing past the limit traps (GrowthOperationLimited) instead of returning -1, so a memory bomb stops.
        let store_limits = wasmi::StoreLimitsBuilder::new()
            .memory_size(limit_bytes)
            .table_elements(4096)
            .instances(1)
            .memories(1)
            .tables(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&engine, StoreData { limits: store_limits });
        store.limiter(|data| &mut data.limits);
        store.set_fuel(limits.fuel_per_slice.min(limits.fuel_total)).map_err(instantiate_error)?;
        let mut linker = Linker::<StoreData>::new(&engine);
        linker
            .func_wrap(
                HOST_CALL_IMPORT.0,
                HOST_CALL_IMPORT.1,
                |request_ptr: i32,
                 request_len: i32,
                 response_ptr: i32,
                 response_cap: i32|
                 -> Result<i32, wasmi::Error> {
                    Err(wasmi::Error::host(PendingCall {
                        request_ptr: request_ptr as u32,
                        request_len: request_len as u32,
                        response_ptr: response_ptr as u32,
                        response_cap: response_cap as u32,
                    }))
                },
            )
            .map_err(instantiate_error)?;
        let instance: Instance = linker.instantiate_and_start(&mut store, &module).map_err(instantiate_error)?;
        let memory = instance.get_memory(&store, "memory").ok_or(LoadError::MissingExport("memory"))?;
        let run = instance.get_func(&store, "run").ok_or(LoadError::MissingExport("run"))?;
        let start_fuel = limits.fuel_per_slice.min(limits.fuel_total) - store.get_fuel().unwrap_or(0);
        let usage = Usage { fuel_used: start_fuel, memory_bytes: memory.data_size(&store), ..Usage::default() };
        Ok(Self {
            name: name.to_string(),
            capabilities,
            limits,
            store,
            memory,
            run,
            resume: Resume::NotStarted,
            usage,
            audit: AuditLog::default(),
            calls_this_slice: 0,
            stopped: None,
        })
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The agent's capabilities.
    pub fn capabilities(&self) -> &CapabilitySet {
        &self.capabilities
    }

    /// The agent's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What the agent has used so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The audit records kept so far (oldest first) and how many older ones were dropped.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Why the agent stopped, once it has.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stopped.as_ref()
    }

    /// Runs the agent for one slice: until it sleeps, is preempted, or stops.
    pub fn step(&mut self, host: &mut dyn Host) -> StepOutcome {
        if let Some(reason) = &self.stopped {
            return StepOutcome::Stopped(reason.clone());
        }
        let remaining = self.limits.fuel_total.saturating_sub(self.usage.fuel_used);
        let slice_fuel = self.limits.fuel_per_slice.min(remaining);
        if self.store.set_fuel(slice_fuel).is_err() {
            return self.stop(StopReason::OutOfFuel);
        }
        self.usage.slices += 1;
        self.calls_this_slice = 0;
        let mut results = [Val::I32(0)];
        let mut next = match core::mem::replace(&mut self.resume, Resume::Done) {
            Resume::NotStarted => self.run.call_resumable(&mut self.store, &[], &mut results),
            Resume::HostTrap(invocation, value) => invocation.resume(&mut self.store, &[Val::I32(value)], &mut results),
            Resume::OutOfFuel(invocation) => invocation.resume(&mut self.store, &mut results),
            Resume::Done => return self.stop(StopReason::Trap("resumed after the end".to_string())),
        };
        loop {
            match next {
                Ok(ResumableCall::Finished) => {
                    self.account_slice(slice_fuel);
                    let exit_code = match results[0] {
                        Val::I32(code) => code,
                        _ => -1,
                    };
                    return self.stop(StopReason::Finished { exit_code });
                }
                Ok(ResumableCall::HostTrap(invocation)) => {
                    let Some(pending) = invocation.host_error().downcast_ref::<PendingCall>().copied() else {
                        let message = format!("{}", invocation.host_error());
                        self.account_slice(slice_fuel);
                        return self.stop(StopReason::Trap(message));
                    };
                    match self.handle_call(pending, host) {
                        Ok(crate::calls::Reply::Continue(value)) => {
                            next = invocation.resume(&mut self.store, &[Val::I32(value)], &mut results);
                        }
                        Ok(crate::calls::Reply::Sleep { value, duration_ms }) => {
                            self.account_slice(slice_fuel);
                            self.resume = Resume::HostTrap(invocation, value);
                            return StepOutcome::Sleeping { duration_ms };
                        }
                        Err(reason) => {
                            self.account_slice(slice_fuel);
                            return self.stop(reason);
                        }
                    }
                }
                Ok(ResumableCall::OutOfFuel(invocation)) => {
                    self.account_slice(slice_fuel);
                    let left = self.limits.fuel_total.saturating_sub(self.usage.fuel_used);
                    let required = invocation.required_fuel();
                    if required > left || required > self.limits.fuel_per_slice {
                        // The remainder cannot pay for the next instruction: it is forfeit.
                        self.usage.fuel_used = self.limits.fuel_total;
                        return self.stop(StopReason::OutOfFuel);
                    }
                    self.resume = Resume::OutOfFuel(invocation);
                    return StepOutcome::Preempted;
                }
                Err(error) => {
                    self.account_slice(slice_fuel);
                    if error.as_trap_code() == Some(wasmi::TrapCode::GrowthOperationLimited) {
                        return self.stop(StopReason::MemoryLimit);
                    }
                    if error.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                        self.usage.fuel_used = self.limits.fuel_total;
                        return self.stop(StopReason::OutOfFuel);
                    }
                    return self.stop(StopReason::Trap(error.to_string()));
                }
            }
        }
    }

    fn account_slice(&mut self, slice_fuel: u64) {
        let left = self.store.get_fuel().unwrap_or(0);
        self.usage.fuel_used = self.usage.fuel_used.saturating_add(slice_fuel.saturating_sub(left));
        self.usage.memory_bytes = self.memory.data_size(&self.store);
    }

    fn stop(&mut self, reason: StopReason) -> StepOutcome {
        self.resume = Resume::Done;
        self.stopped = Some(reason.clone());
        StepOutcome::Stopped(reason)
    }

    /// Upper bound on a request copied out of the guest.
    pub(crate) const MAX_REQUEST: usize = MAX_MESSAGE;
}

fn instantiate_error(error: impl fmt::Display) -> LoadError {
    LoadError::Instantiate(error.to_string())
}

fn check_imports(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        if (import.module(), import.name()) != HOST_CALL_IMPORT {
            return Err(LoadError::ForbiddenImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
        let ExternType::Func(ty) = import.ty() else {
            return Err(LoadError::WrongImportType);
        };
        if ty.params() != [ValType::I32; 4] || ty.results() != [ValType::I32] {
            return Err(LoadError::WrongImportType);
        }
    }
    Ok(())
}

fn check_exports(module: &Module, limits: Limits) -> Result<(), LoadError> {
    let mut memory = false;
    let mut run = false;
    for export in module.exports() {
        match (export.name(), export.ty()) {
            ("memory", ExternType::Memory(ty)) => {
                if ty.minimum() > u64::from(limits.memory_pages) {
                    return Err(LoadError::MemoryLimit {
                        declared_pages: ty.minimum(),
                        limit_pages: limits.memory_pages,
                    });
                }
                memory = true;
            }
            ("run", ExternType::Func(ty)) => run = ty.params().is_empty() && ty.results() == [ValType::I32],
            _ => {}
        }
    }
    if !memory {
        return Err(LoadError::MissingExport("memory"));
    }
    if !run {
        return Err(LoadError::MissingExport("run"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
