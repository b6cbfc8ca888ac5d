//! What agents reach through their host calls (the kernel's `Host`), the supervisor they live in, one kernel
//! thread per started agent, and the example modules the image carries.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use sis_agents::host::{Host, HostError, Verdict};
use sis_agents::protocol::LogLevel;
use sis_agents::supervisor::{Slice, Supervisor, SupervisorError};
use sis_governance::Principal;
use sis_platform::{memory, thread, time};
use sis_safety::{Effector, ProposedAction};
use sis_sched::ThreadId;
use sis_shell::{Capabilities, Outcome, Output, Registry};
use sis_vfs::VfsError;

use crate::commands::autonomy::{live_state, with_guardrails};
use crate::commands::files::FILES;
use crate::commands::Kernel;

/// Stack of an agent's thread: the interpreter, and registry handlers for COMMAND_RUN (the shell's size).
const AGENT_STACK_BYTES: u64 = 256 * 1024;

/// A module the image carries: its name, the capabilities it needs, its bytes (built from agents/ by the
/// kernel's build script).
pub struct Example {
    /// The agent's name (its crate's).
    pub name: &'static str,
    /// The capabilities its work needs (the hostile ones are given what they probe past).
    pub capabilities: &'static str,
    /// The module.
    pub wasm: &'static [u8],
}

macro_rules! example {
    ($name:literal, $file:literal, $capabilities:literal) => {
        Example {
            name: $name,
            capabilities: $capabilities,
            wasm: include_bytes!(concat!(env!("SIS_AGENT_MODULES"), "/", $file, ".wasm")),
        }
    };
}

/// The example agents (docs/agents.md).
pub static EXAMPLES: [Example; 9] = [
    example!("file-lister", "file_lister", "fs.list:/tmp,fs.read:/tmp/*,log"),
    example!("metrics-watcher", "metrics_watcher", "metrics.read,propose,log"),
    example!("chatty", "chatty", "log"),
    example!("crasher", "crasher", "log"),
    example!("spin", "spin", ""),
    example!("memory-bomb", "memory_bomb", ""),
    example!("cap-violator", "cap_violator", "log,fs.read:/tmp/**"),
    example!("malformed", "malformed", "log"),
    example!("inferrer", "inferrer", "command:llmctl,log"),
];

/// The supervisor and the thread of each agent that has one.
pub struct Agents {
    /// Every loaded agent.
    pub supervisor: Supervisor,
    /// Threads of started agents, by agent name.
    pub threads: BTreeMap<String, ThreadId>,
}

static AGENTS: spin::Mutex<Option<Agents>> = spin::Mutex::new(None);
/// Bumped by every operator action, so a sleeping agent thread wakes to look at its state.
static WAKE_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Runs `body` on the agents, taking the lock with a yield between tries (never with IRQs masked: loading
/// validates a module under it).
pub fn with_agents<R>(body: impl FnOnce(&mut Agents) -> R) -> R {
    let mut guard = crate::sync::lock(&AGENTS);
    body(guard.get_or_insert_with(|| Agents { supervisor: Supervisor::new(), threads: BTreeMap::new() }))
}

/// Milliseconds since boot: the supervisor's clock.
pub fn now_ms() -> u64 {
    time::now_ns() / 1_000_000
}

/// Starts the thread of `name` unless it has one (call [`wake_all`] after releasing the lock, so a thread that
/// sleeps looks at its state again).
pub fn ensure_thread(agents: &mut Agents, name: &str, kernel: &Kernel) -> Result<(), thread::SpawnError> {
    if agents.threads.contains_key(name) {
        return Ok(());
    }
    let agent = String::from(name);
    let kernel = kernel.clone();
    let id = thread::spawn(&alloc::format!("agent:{name}"), AGENT_STACK_BYTES, move || run(agent, kernel))?;
    agents.threads.insert(name.to_string(), id);
    Ok(())
}

/// Tells every sleeping agent thread to look at its state again. Takes the agents' lock: never call it holding it.
pub fn wake_all() {
    WAKE_GENERATION.fetch_add(1, Ordering::SeqCst);
    let ids: Vec<ThreadId> = with_agents(|agents| agents.threads.values().copied().collect());
    for id in ids {
        thread::wake(id);
    }
}

/// Waits up to `timeout_ms` for `done` to hold, checking every millisecond.
pub fn wait_for(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = time::now_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));
    loop {
        if done() {
            return true;
        }
        if time::now_ns() >= deadline {
            return false;
        }
        thread::sleep_ns(1_000_000);
    }
}

/// An agent's thread: runs its slices until it has nothing to run, then ends.
fn run(name: String, kernel: Kernel) {
    let mut host = KernelHost::new(kernel);
    loop {
        let generation = WAKE_GENERATION.load(Ordering::SeqCst);
        let (slice, id) = with_agents(|agents| {
            let slice = agents.supervisor.begin_slice(&name, now_ms());
            if matches!(slice, Ok(Slice::Idle) | Err(SupervisorError::UnknownAgent(_))) {
                agents.threads.remove(&name);
            }
            (slice, agents.supervisor.id(&name).ok())
        });
        match slice {
            Ok(Slice::Run(mut sandbox)) => {
                // Read with the slice, under the same lock: an agent unloaded and loaded again under this name
                // while the thread lives is another agent with another id.
                host.agent_id = id;
                let outcome = sandbox.step(&mut host);
                with_agents(|agents| agents.supervisor.end_slice(&name, sandbox, outcome, now_ms()));
                thread::yield_now();
            }
            Ok(Slice::WaitUntil(due_ms)) => {
                thread::sleep_until_ns_or_woken(due_ms.saturating_mul(1_000_000), || {
                    WAKE_GENERATION.load(Ordering::SeqCst) != generation
                });
            }
            Ok(Slice::Idle) | Err(SupervisorError::UnknownAgent(_)) => return,
            // A restart that failed to instantiate (the supervisor gave the agent up) or a slice still out.
            Err(_) => thread::sleep_ns(1_000_000),
        }
    }
}

/// The kernel's side of the host calls: the in-memory filesystem, measured metrics, the shell registry (with
/// only the shell capability `infer`, as the agent's own governance principal), the kernel log and the guardrails.
pub struct KernelHost {
    kernel: Kernel,
    registry: Option<Registry<Kernel>>,
    /// The supervisor's id of the agent being served: its COMMAND_RUN lines run as the principal `agent:ID`.
    /// `None` for a sandbox outside the supervisor (a red-team or benchmark run), whose lines run as the
    /// principal of the kernel context the host was made with.
    agent_id: Option<u32>,
}

impl KernelHost {
    /// A host acting with this kernel context.
    pub fn new(kernel: Kernel) -> Self {
        Self { kernel, registry: None, agent_id: None }
    }
}

/// The shell capabilities a COMMAND_RUN line runs with: commands open to every caller, and `llmctl infer`, which is
/// charged to the agent's own budget and rate limit. (The agent's `command:NAME` capabilities decide which
/// commands it may reach at all.)
pub const AGENT_SHELL_CAPABILITIES: Capabilities = Capabilities::INFER;

fn vfs_error(error: VfsError) -> HostError {
    match error {
        VfsError::NotFound { .. } => HostError::NotFound,
        VfsError::InvalidPath { .. } | VfsError::NotADirectory { .. } | VfsError::IsADirectory { .. } => {
            HostError::InvalidArgument
        }
        _ => HostError::Failed,
    }
}

/// The metrics agents can read, each measured now: `(name, value)`.
pub fn metrics() -> Vec<(String, i64)> {
    let stats = memory::stats();
    let frames = stats.frames;
    let usable = frames.free_frames.saturating_add(frames.allocated_frames);
    let pressure_percent = frames.allocated_frames.saturating_mul(100).checked_div(usable).unwrap_or(0);
    let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    alloc::vec![
        (String::from("memory.frames_allocated"), as_i64(frames.allocated_frames as u64)),
        (String::from("memory.frames_free"), as_i64(frames.free_frames as u64)),
        (String::from("memory.heap_allocations"), as_i64(stats.heap_allocation_count)),
        (String::from("memory.heap_used_bytes"), as_i64(stats.heap_used_bytes)),
        (String::from("memory.pressure_percent"), as_i64(pressure_percent as u64)),
        (String::from("threads.count"), as_i64(thread::snapshot().len() as u64)),
        (String::from("uptime.ms"), as_i64(now_ms())),
    ]
}

/// Output of a command an agent ran.
#[derive(Default)]
struct Captured(String);

impl Output for Captured {
    fn write_str(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

impl Host for KernelHost {
    fn fs_list(&mut self, path: &str) -> Result<Vec<String>, HostError> {
        let entries = FILES.lock().list(path).map_err(vfs_error)?;
        Ok(entries
            .into_iter()
            .map(|entry| if entry.is_directory { alloc::format!("{}/", entry.name) } else { entry.name })
            .collect())
    }

    fn fs_read(&mut self, path: &str) -> Result<Vec<u8>, HostError> {
        FILES.lock().read(path).map(<[u8]>::to_vec).map_err(vfs_error)
    }

    fn fs_write(&mut self, path: &str, data: &[u8]) -> Result<(), HostError> {
        FILES.lock().write(path, data, false).map_err(vfs_error)
    }

    fn metrics_read(&mut self, prefix: &str) -> Result<Vec<(String, i64)>, HostError> {
        let found: Vec<_> = metrics().into_iter().filter(|(name, _)| name.starts_with(prefix)).collect();
        if found.is_empty() {
            Err(HostError::NotFound)
        } else {
            Ok(found)
        }
    }

    fn command_run(&mut self, _agent: &str, line: &str) -> Result<String, HostError> {
        let registry = self.registry.get_or_insert_with(crate::commands::registry);
        let mut output = Captured::default();
        self.kernel.line_received_ns = None;
        let caller = self.kernel.principal;
        if let Some(id) = self.agent_id {
            self.kernel.principal = Principal::Agent(id);
        }
        let outcome = registry.execute_as(&mut self.kernel, line.as_bytes(), &mut output, AGENT_SHELL_CAPABILITIES);
        self.kernel.principal = caller;
        match outcome {
            Outcome::Ok | Outcome::Empty => Ok(output.0),
            Outcome::Failed { .. } => Err(HostError::Failed),
        }
    }

    fn log(&mut self, agent: &str, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        };
        crate::klog::log(&alloc::format!("agent:{agent}"), &alloc::format!("{level}: {message}"));
    }

    fn propose(&mut self, _agent: &str, action: &str, _reason: &str) -> Result<Verdict, HostError> {
        let action = parse_action(action).ok_or(HostError::InvalidArgument)?;
        let live = live_state();
        let verdict = with_guardrails(|guardrails| guardrails.check(&action, &live, time::now_ns()))
            .map_err(|_| HostError::Failed)?;
        Ok(if verdict.blocked_by().is_none() { Verdict::Accepted } else { Verdict::Blocked })
    }
}

/// `EFFECTOR` or `EFFECTOR:MAGNITUDE` (magnitude 1 by default) for one of the guardrails' named effectors.
pub fn parse_action(text: &str) -> Option<ProposedAction> {
    let (name, magnitude) = match text.split_once(':') {
        Some((name, magnitude)) => (name, magnitude.parse().ok()?),
        None => (text, 1),
    };
    let effector =
        Effector::ALL.into_iter().find(|effector| *effector != Effector::Generic && effector.name() == name)?;
    Some(ProposedAction::new(effector, magnitude))
}

/// Slices a red-team run of a hostile agent may take before the sandbox is judged to have let it run on.
const HOSTILE_MAX_SLICES: u32 = 10_000;

/// Runs the example `name` in a fresh sandbox of its own (not supervised, no thread) with its capabilities and
/// `limits`, slice after slice, until it stops: `Ok` with the stop reason, `Err` with a load error's code; `Ok(None)`
/// when it was still running after [`HOSTILE_MAX_SLICES`]. Sleeps are not waited out.
pub fn run_example_to_stop(
    name: &str,
    limits: sis_agents::sandbox::Limits,
    kernel: &Kernel,
) -> Result<Option<sis_agents::sandbox::StopReason>, &'static str> {
    use sis_agents::sandbox::{Sandbox, StepOutcome};
    let example = EXAMPLES.iter().find(|example| example.name == name).ok_or("unknown-agent")?;
    let capabilities = sis_agents::caps::CapabilitySet::parse(example.capabilities).map_err(|error| error.code())?;
    let mut sandbox = Sandbox::load(name, example.wasm, capabilities, limits).map_err(|error| error.code())?;
    let mut host = KernelHost::new(kernel.clone());
    for _ in 0..HOSTILE_MAX_SLICES {
        if let StepOutcome::Stopped(reason) = sandbox.step(&mut host) {
            return Ok(Some(reason));
        }
    }
    Ok(None)
}

/// The benchmark modules (`agentsys bench`): the compute kernel and the host-call pinger.
pub static BENCH_COMPUTE: &[u8] = include_bytes!(concat!(env!("SIS_AGENT_MODULES"), "/compute.wasm"));
/// See [`BENCH_COMPUTE`].
pub static BENCH_PINGER: &[u8] = include_bytes!(concat!(env!("SIS_AGENT_MODULES"), "/pinger.wasm"));

/// One repetition of `agentsys bench`, in ns of the kernel's clock.
#[derive(Debug, Clone, Copy)]
pub struct BenchRun {
    /// The compute kernel run natively.
    pub native_ns: u64,
    /// The same kernel in the `compute` agent, one slice to its end.
    pub interpreted_ns: u64,
    /// Fuel the agent used.
    pub fuel_used: u64,
    /// The pinger's run: [`sis_agents::bench::PING_CALLS`] host calls.
    pub ping_ns: u64,
}

/// Runs the benchmark once; `Err` says what did not match (a wrong checksum, a call not denied).
pub fn bench_once(kernel: &Kernel) -> Result<BenchRun, String> {
    use sis_agents::bench::{checksum, COMPUTE_ROUNDS, PING_CALLS};
    use sis_agents::caps::CapabilitySet;
    use sis_agents::sandbox::{Limits, Sandbox, StepOutcome, StopReason};
    let limits = Limits {
        fuel_per_slice: 1_000_000_000,
        fuel_total: 1_000_000_000,
        calls_per_slice: u32::MAX,
        max_denials: u32::MAX,
        ..Limits::default()
    };
    let started = time::now_ns();
    let expected = core::hint::black_box(checksum(core::hint::black_box(COMPUTE_ROUNDS)));
    let native_ns = time::now_ns() - started;

    let mut host = KernelHost::new(kernel.clone());
    let mut compute = Sandbox::load("bench-compute", BENCH_COMPUTE, CapabilitySet::default(), limits)
        .map_err(|error| alloc::format!("compute: {error}"))?;
    let started = time::now_ns();
    let outcome = compute.step(&mut host);
    let interpreted_ns = time::now_ns() - started;
    if outcome != StepOutcome::Stopped(StopReason::Finished { exit_code: expected as i32 }) {
        return Err(alloc::format!("compute: expected exit code {}, got {outcome:?}", expected as i32));
    }
    let fuel_used = compute.usage().fuel_used;

    let mut pinger = Sandbox::load("bench-pinger", BENCH_PINGER, CapabilitySet::default(), limits)
        .map_err(|error| alloc::format!("pinger: {error}"))?;
    let started = time::now_ns();
    let outcome = pinger.step(&mut host);
    let ping_ns = time::now_ns() - started;
    if outcome != StepOutcome::Stopped(StopReason::Finished { exit_code: PING_CALLS as i32 }) {
        return Err(alloc::format!("pinger: expected {PING_CALLS} denied calls, got {outcome:?}"));
    }
    Ok(BenchRun { native_ns, interpreted_ns, fuel_used, ping_ns })
}
