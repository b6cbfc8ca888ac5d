//! The kernel's meta-agent: a thread that runs the governor on the workloads' ports every interval, within the
//! kernel's guardrails; `autoctl` controls it, `memctl` shows the pool and its strategy (docs/autonomy.md) and
//! `safetyctl` the guardrails (docs/safety.md).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde_json::json;
use sis_ai::Agent;
use sis_autonomy::{
    AutonomyMetrics, DecisionTrace, Directive, Disposition, Heuristic, MetaConfig, NeverAct, StrategyConfig,
};
use sis_hal::Clock;
use sis_metrics::LatencyHistogram;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread;
use sis_platform::time::PlatformClock;
use sis_safety::{DeadlineState, Guardrails, LiveState};
use sis_sched::{ServerParams, ThreadId, MAX_DEADLINE_PERIODS};
use sis_shell::{ArgSpec, Capabilities, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_stress::governor::{self, strategy_cap, BoxedPolicy, Governor, TRACES_KEPT};
use sis_stress::learning::LearnedPolicy;
use sis_stress::port::NO_CAP;

use sis_governance::registry::ModelId;

use super::aiops::Runs;
use super::stress::{DEADLINE_PORT, FLOOD_PORT, MEMORY_PORT};
use super::Kernel;

mod explain;

/// Counters of every intervention since the last reset.
pub static METRICS: AutonomyMetrics = AutonomyMetrics::new();
/// Default decision interval.
pub const DEFAULT_INTERVAL_MS: u64 = 10;
/// The server a boosted command consumer gets: 4 ms every 10 ms (40 % of the CPU at most), deadline 10 ms; the
/// longest command of the flood's mix (help) takes 2.3 ms in deterministic mode, so one fits a budget.
const BOOST: ServerParams = ServerParams { budget_ns: 4_000_000, period_ns: 10_000_000, deadline_ns: 10_000_000 };
/// Stack of the autonomy thread.
const STACK_BYTES: u64 = 64 * 1024;
/// The autonomy thread's kernel-log source.
const LOG_SOURCE: &str = "autonomy";
/// Policies `autoctl policy` accepts.
const POLICIES: &[&str] = &["heuristic", "learned", "never-act"];

/// The meta-agent's state; `None` until first used.
static STATE: IrqMutex<Option<Autonomy>> = IrqMutex::new(None);
/// The thread was started (once per boot).
static THREAD_STARTED: AtomicBool = AtomicBool::new(false);
/// CPU time of the autonomy thread (updated after every wake-up), ns.
static THREAD_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// Where the meta-agent's policy comes from: a built-in one chosen by name (`autoctl policy`), or a registered
/// agent-network model the lifecycle put in production (`aiopsctl promote`, `rollback`). A fresh meta-agent
/// (`stresstest compare`) is built from it again.
#[derive(Clone)]
pub enum PolicySource {
    /// `heuristic`, `learned` (a copy of neuralctl's agent) or `never-act`.
    Builtin(String),
    /// A model's agent, built from its registered weights.
    Model {
        /// The model.
        model: ModelId,
        /// Its agent as built from the weights (each fresh meta-agent starts from a copy).
        agent: Box<Agent>,
    },
}

impl PolicySource {
    /// The model in force, if the policy is one.
    pub fn model(&self) -> Option<&ModelId> {
        match self {
            PolicySource::Model { model, .. } => Some(model),
            PolicySource::Builtin(_) => None,
        }
    }
}

/// What `autoctl` changes.
pub struct Autonomy {
    enabled: bool,
    interval_ns: u64,
    pub(super) governor: Governor,
    /// Where the policy in force came from.
    pub(super) source: PolicySource,
    /// Shadow and canary runs of a candidate policy (`aiopsctl`).
    pub(super) runs: Runs,
    /// The kernel's safety envelope: every action the meta-agent (and later any agent or model) takes passes
    /// it first. It outlives the governor: a new policy or a comparison's fresh agent keeps its rules and counts.
    guardrails: Guardrails,
    /// Time each decision took (the tick, lock held), ns; the shadow's step is timed apart (`Runs`).
    pub(super) decision_cost: LatencyHistogram,
    /// Wake-ups while enabled with no workload attached (nothing decided).
    idle_ticks: u64,
    /// Boosts the scheduler refused (admission), with the last reason.
    boosts_refused: u64,
    last_boost_error: Option<String>,
    /// Deadline relaxations not applied (the scheduler refused, or no deadline thread), with the last reason.
    deadline_adjustments_refused: u64,
    last_deadline_error: Option<String>,
    /// The longest relative deadline a relaxation set, per mille of the thread's period (the effector's own
    /// record: what the scheduler accepted).
    deadline_relaxed_max_per_mille_of_period: u64,
    /// Decisions of the meta-agents `autoctl policy` replaced: the export sequence number of this agent's trace
    /// `id` is `trace_base + id`, so the exporters' sequence runs on across a policy change.
    trace_base: u64,
}

fn new_governor(source: &PolicySource, config: MetaConfig) -> Result<Governor, ShellError> {
    let name = match source {
        PolicySource::Builtin(name) => name.as_str(),
        PolicySource::Model { agent, .. } => {
            return Governor::new(Box::new(LearnedPolicy::new((**agent).clone())), config, StrategyConfig::default())
                .map_err(|error| {
                    ShellError::new("internal", alloc::format!("meta-agent configuration refused: {error:?}"))
                })
        }
    };
    let policy: BoxedPolicy = match name {
        "heuristic" => Box::new(Heuristic),
        "never-act" => Box::new(NeverAct),
        "learned" => {
            let guard = super::neural::AGENT.lock();
            let installed = guard.as_ref().ok_or_else(|| {
                ShellError::new(
                    "no-agent",
                    "no agent installed: run `stresstest learning` to train one (or `neuralctl load` a saved one)",
                )
            })?;
            Box::new(LearnedPolicy::new(installed.agent.clone()))
        }
        other => {
            return Err(ShellError::new(sis_shell::codes::INVALID_VALUE, alloc::format!("unknown policy {other}")))
        }
    };
    Governor::new(policy, config, StrategyConfig::default())
        .map_err(|error| ShellError::new("internal", alloc::format!("meta-agent configuration refused: {error:?}")))
}

/// Runs `body` on the state, creating it (autonomy off, heuristic policy) on first use. IRQs are masked while
/// it runs: `body` must not take the model governor's lock (take that one first).
pub(super) fn with_state<R>(body: impl FnOnce(&mut Autonomy) -> R) -> Result<R, ShellError> {
    let mut guard = STATE.lock();
    if guard.is_none() {
        *guard = Some(Autonomy {
            enabled: false,
            interval_ns: DEFAULT_INTERVAL_MS * 1_000_000,
            governor: new_governor(&PolicySource::Builtin(String::from("heuristic")), MetaConfig::default())?,
            source: PolicySource::Builtin(String::from("heuristic")),
            runs: Runs::new(),
            guardrails: Guardrails::new(),
            decision_cost: LatencyHistogram::new(),
            idle_ticks: 0,
            boosts_refused: 0,
            last_boost_error: None,
            deadline_adjustments_refused: 0,
            last_deadline_error: None,
            deadline_relaxed_max_per_mille_of_period: 0,
            trace_base: 0,
        });
    }
    match guard.as_mut() {
        Some(state) => Ok(body(state)),
        None => Err(ShellError::new("internal", "autonomy state missing")),
    }
}

/// Runs `body` on the meta-agent and the export sequence number of its trace 0 (the decisions of the agents
/// `autoctl policy` replaced), IRQs masked: it must be short (copy traces out, nothing more). For the exporters of
/// its decision traces; `None` before the autonomy state exists (there is no trace yet).
pub fn with_agent<R>(body: impl FnOnce(&sis_autonomy::MetaAgent<BoxedPolicy, TRACES_KEPT>, u64) -> R) -> Option<R> {
    STATE.lock().as_ref().map(|state| body(state.governor.agent(), state.trace_base))
}

/// The meta-agent's decision times (`autoctl status`'s `decision_cost`) as the OTLP histogram
/// `sis.autonomy.decision.duration`, computed under the state's lock (the histogram is not copied out).
/// `None` before the autonomy state exists (no `autoctl` command and no stress run has made it).
pub fn decision_cost_metric(since_ns: u64, now_ns: u64) -> Option<sis_otel::Metric> {
    STATE.lock().as_ref().and_then(|state| {
        sis_otel::latency_histogram(
            "sis.autonomy.decision.duration",
            "Time each meta-agent decision took, its lock held",
            &state.decision_cost,
            since_ns,
            now_ns,
        )
    })
}

/// Starts the autonomy thread once; it sleeps an interval, then decides if autonomy is on.
fn ensure_thread() -> Result<(), ShellError> {
    if THREAD_STARTED.swap(true, Relaxed) {
        return Ok(());
    }
    thread::spawn("autonomy", STACK_BYTES, run).map(|_| ()).map_err(|error| {
        THREAD_STARTED.store(false, Relaxed);
        ShellError::new("spawn-failed", alloc::format!("cannot start the autonomy thread: {error}"))
    })
}

fn run() {
    loop {
        let interval = with_state(|state| state.interval_ns).unwrap_or(DEFAULT_INTERVAL_MS * 1_000_000);
        thread::sleep_ns(interval);
        let rolled_back = with_state(|state| {
            if !state.enabled {
                return None;
            }
            let start = PlatformClock.now_ns();
            let live = live_state();
            let (flood, deadline) = (Some(&FLOOD_PORT), Some(&DEADLINE_PORT));
            let guardrails = &mut state.guardrails;
            match state.governor.tick(start, &MEMORY_PORT, flood, deadline, &live, guardrails, &METRICS) {
                Some(traces) => {
                    // The scheduling decision's boost or relaxation goes through the scheduler; the memory
                    // decision was applied through the pool's port in the same interval.
                    for trace in traces.iter() {
                        if trace.disposition == Disposition::Acted {
                            publish_intervention(trace);
                        }
                        match (trace.disposition, trace.directive) {
                            (Disposition::Acted, Directive::BoostPriority) => boost_consumer(state),
                            (Disposition::Acted, Directive::AdjustDeadline { relax_per_mille }) => {
                                relax_deadline(state, relax_per_mille)
                            }
                            _ => {}
                        }
                    }
                    let decided = PlatformClock.now_ns();
                    state.decision_cost.record(decided.saturating_sub(start));
                    // The shadow decides after production acted, timed apart: production's cost above does not
                    // include it, and `aiopsctl shadow report` shows it.
                    if state.governor.shadowing() {
                        state.governor.shadow_step();
                        state.runs.record_shadow_cost(PlatformClock.now_ns().saturating_sub(decided));
                    }
                }
                None => state.idle_ticks += 1,
            }
            // A canary its rule stopped at this decision: its candidate leaves the decisions now, and the
            // lifecycle hears of it below, with the autonomy lock released (the governor's lock comes first).
            let stopped = state.governor.take_rolled_back_canary()?;
            state.runs.canary_rolled_back(stopped.1)
        });
        if let Ok(Some((subject, reason))) = rolled_back {
            super::aiops::audit_canary_rollback(&subject, reason);
        }
        THREAD_CPU_NS.store(thread::current_cpu_time_ns(), Relaxed);
    }
}

/// What the guardrails judge on now: the pool's throttle and cap and the flood's rate limit in force (from
/// their ports), the watched deadline thread's server as the scheduler holds it, with the bound
/// `CbsEdf::set_deadline` enforces (`MAX_DEADLINE_PERIODS` periods), and whether console lines still run with
/// the admin capability (the one that stops an agent: `autoctl off`, `safetyctl set`).
pub fn live_state() -> LiveState {
    let watched = DEADLINE_PORT.telemetry();
    let deadline = ThreadId::try_from(watched.thread).ok().filter(|_| watched.attached).and_then(thread::server).map(
        |(params, _)| DeadlineState {
            deadline_ns: params.deadline_ns,
            period_ns: params.period_ns,
            bound_ns: params.period_ns.saturating_mul(MAX_DEADLINE_PERIODS),
        },
    );
    LiveState {
        deadline,
        console_capability_held: Capabilities::CONSOLE.contains(Capabilities::ADMIN),
        ..governor::live_state(&MEMORY_PORT, Some(&FLOOD_PORT))
    }
}

/// Runs `body` on the kernel's guardrails (`safetyctl`; the autonomy thread holds them while it decides).
pub fn with_guardrails<R>(body: impl FnOnce(&mut Guardrails) -> R) -> Result<R, ShellError> {
    with_state(|state| body(&mut state.guardrails))
}

/// Publishes an acted decision as an `autonomy.intervention` event.
fn publish_intervention(trace: &DecisionTrace) {
    crate::events::publish(sis_events::Kind::Intervention {
        decision: trace.id,
        interval: trace.interval,
        subsystem: trace.subsystem,
        directive: trace.directive,
        confidence_per_mille: trace.confidence_per_mille,
    });
}

/// Gives the flood's consumer thread a deadline server through the scheduler's admission control.
fn boost_consumer(state: &mut Autonomy) {
    let commands = FLOOD_PORT.telemetry();
    if !commands.attached {
        return;
    }
    let Ok(consumer) = ThreadId::try_from(commands.consumer_thread) else { return };
    match thread::give_server(consumer, BOOST) {
        Ok(()) => FLOOD_PORT.set_boosted(),
        Err(error) => {
            state.boosts_refused += 1;
            state.last_boost_error = Some(alloc::format!("{error:?}"));
            // Refused again at every decision while the overload lasts: the log's rate limit keeps it readable.
            crate::klog!(LOG_SOURCE, "autonomy: priority boost of thread {consumer} refused: {error:?}");
        }
    }
}

/// Relaxes the relative deadline of the deadline thread the port names by `relax_per_mille` of itself
/// (D' = D * (1000 + relax) / 1000), through the scheduler's bounded `set_deadline`.
fn relax_deadline(state: &mut Autonomy, relax_per_mille: u16) {
    let watched = DEADLINE_PORT.telemetry();
    let relaxed = ThreadId::try_from(watched.thread)
        .ok()
        .filter(|_| watched.attached)
        .ok_or_else(|| String::from("no deadline thread attached"))
        .and_then(|id| {
            let (params, _) = thread::server(id).ok_or_else(|| String::from("the thread has no deadline server"))?;
            let deadline_ns = params
                .deadline_ns
                .checked_mul(1000 + u64::from(relax_per_mille))
                .map(|scaled| scaled / 1000)
                .ok_or_else(|| String::from("the relaxed deadline overflows"))?;
            thread::set_deadline(id, deadline_ns).map_err(|error| alloc::format!("{error:?}"))?;
            Ok(deadline_ns as u128 * 1000 / params.period_ns.max(1) as u128)
        });
    match relaxed {
        Ok(per_mille_of_period) => {
            let per_mille_of_period = u64::try_from(per_mille_of_period).unwrap_or(u64::MAX);
            state.deadline_relaxed_max_per_mille_of_period =
                state.deadline_relaxed_max_per_mille_of_period.max(per_mille_of_period);
        }
        Err(error) => {
            crate::klog!(LOG_SOURCE, "autonomy: deadline relaxation not applied: {error}");
            state.deadline_adjustments_refused += 1;
            state.last_deadline_error = Some(error);
        }
    }
}

/// Turns autonomy on or off (the thread is started the first time). Off drops pending outcomes and lifts
/// any throttle and cap the meta-agent set on the pool; on observes deadline misses from now.
pub fn set_enabled(enabled: bool) -> Result<(), ShellError> {
    ensure_thread()?;
    with_state(|state| {
        if enabled && !state.enabled {
            state.governor.observe_deadline_from_now(&DEADLINE_PORT);
        }
        state.enabled = enabled;
        if !enabled {
            state.governor.agent_mut().clear_pending(&METRICS);
            MEMORY_PORT.set_throttle(0);
            MEMORY_PORT.set_pressure_cap(NO_CAP);
        }
    })
}

/// Whether autonomy is on.
pub fn enabled() -> bool {
    with_state(|state| state.enabled).unwrap_or(false)
}

/// A fresh meta-agent with the current policy and threshold (`stresstest compare` starts every run from one),
/// its decision costs cleared.
pub fn restart_agent() -> Result<(), ShellError> {
    with_state(|state| {
        install(state, state.source.clone())?;
        state.idle_ticks = 0;
        state.boosts_refused = 0;
        state.last_boost_error = None;
        state.deadline_adjustments_refused = 0;
        state.last_deadline_error = None;
        state.deadline_relaxed_max_per_mille_of_period = 0;
        Ok(())
    })?
}

/// A fresh meta-agent running the policy from `source` with the confidence and pressure thresholds in force; its
/// decision costs start over. A shadow or canary goes on beside it.
pub(super) fn install(state: &mut Autonomy, source: PolicySource) -> Result<(), ShellError> {
    let config = *state.governor.agent().config();
    let mut governor = new_governor(&source, config)?;
    // The outcomes the old agent still watched will never resolve: take them off the pending gauge.
    state.governor.agent_mut().clear_pending(&METRICS);
    state.trace_base = state.trace_base.saturating_add(state.governor.agent().decisions());
    governor.take_runs_from(&mut state.governor);
    state.governor = governor;
    state.source = source;
    state.governor.observe_deadline_from_now(&DEADLINE_PORT);
    state.decision_cost.reset();
    Ok(())
}

/// CPU time the autonomy thread has used since boot, ns.
pub fn thread_cpu_ns() -> u64 {
    THREAD_CPU_NS.load(Relaxed)
}

/// `autoctl`.
pub static AUTOCTL: CommandSpec<Kernel> = CommandSpec {
    name: "autoctl",
    summary: "The meta-agent: on/off, status, interval, confidence threshold, audit, explain, policy",
    description: "A kernel thread wakes every interval and, when autonomy is on, reads the memory workload's pool through its port (and the command flood's and a deadline thread's ports, when attached), predicts the pressure trend, decides one directive with a confidence and acts through the subsystems' interfaces (reclaim, throttle, strategy; a priority boost or a deadline relaxation through the scheduler). Below the confidence threshold it holds and records why. Every decision is a trace. docs/autonomy.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "on",
            summary: "Turn autonomy on",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(on),
        },
        CommandSpec {
            name: "off",
            summary: "Turn autonomy off (pending outcomes are dropped; throttle and cap lifted)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(off),
        },
        CommandSpec {
            name: "status",
            summary: "State, policy, interval, threshold, decisions, decision cost and every counter",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "interval",
            summary: "Set the decision interval",
            description: "",
            args: &[ArgSpec::positional("ms", ValueKind::U64 { min: 1, max: 10_000 }, "milliseconds").required()],
            subcommands: &[],
            handler: Some(interval),
        },
        CommandSpec {
            name: "conf-threshold",
            summary: "Set the confidence below which decisions are held, per mille",
            description: "",
            args: &[ArgSpec::positional("n", ValueKind::U64 { min: 0, max: 1000 }, "per mille (0..=1000)").required()],
            subcommands: &[],
            handler: Some(conf_threshold),
        },
        CommandSpec {
            name: "thresholds",
            summary: "Show or set the memory rules' pressure thresholds, per mille",
            description: "The heuristic's memory rules fire at these pressures: relax-below (Conservative back to Balanced when pressure and its prediction are below it), reclaim-at (a predicted pressure at or above it: switch to Conservative, or reclaim), throttle-at (pressure at or above it: switch to Conservative, or throttle). They must keep relax-below < reclaim-at < throttle-at; a set that breaks it changes nothing. Without options, shows them. They hold until changed (a new policy keeps them).",
            args: &[
                ArgSpec::flag("relax-below", ValueKind::U64 { min: 0, max: 1000 }, "per mille (default 600)"),
                ArgSpec::flag("reclaim-at", ValueKind::U64 { min: 0, max: 1000 }, "per mille (default 800)"),
                ArgSpec::flag("throttle-at", ValueKind::U64 { min: 0, max: 1000 }, "per mille (default 900)"),
            ],
            subcommands: &[],
            handler: Some(thresholds),
        },
        CommandSpec {
            name: "audit",
            summary: "The last N decision traces, oldest first",
            description: "",
            args: &[
                ArgSpec::positional("last", ValueKind::Choice(&["last"]), "the word `last`").required(),
                ArgSpec::positional("n", ValueKind::U64 { min: 1, max: TRACES_KEPT as u64 }, "how many (the last 256 are kept)")
                    .required(),
            ],
            subcommands: &[],
            handler: Some(audit),
        },
        CommandSpec {
            name: "explain",
            summary: "One decision: its trace, every action's score, and why the chosen action scored what it did",
            description: "Shows the decision's inputs, directive, confidence, reason, outcome and reward, the policy's score for every action it considered (the learned policy: Q-values of the network version that decided; the heuristic: each candidate's rule confidence), and the attribution of the chosen action's score to each input feature: exact Shapley values against a documented baseline (every feature 0), computed now, their sum equal to the score minus the baseline's. The attribution's cost is measured: time, and instructions when the PMU counts them (QEMU: under -icount). never-act gives no scores. docs/autonomy.md.",
            args: &[ArgSpec::positional("id", ValueKind::U64 { min: 0, max: u64::MAX }, "decision id").required()],
            subcommands: &[],
            handler: Some(explain::explain),
        },
        CommandSpec {
            name: "policy",
            summary: "Choose the policy: heuristic, learned or never-act",
            description: "learned: the installed agent (trained by stresstest learning or loaded by neuralctl load; a copy is taken now) choosing epsilon-greedily, its telemetry mapped onto the inputs it trained on, confidence the softmax probability of its action; it learns online from each interval's measured reward, a training step every 4 decisions (policy_updates). never-act decides and records but never acts: with it, autonomy on gives the results of autonomy off. Changing the policy starts a fresh meta-agent (traces and strategy reset).",
            args: &[
                ArgSpec::positional("policy", ValueKind::Choice(POLICIES), "heuristic, learned or never-act").required(),
            ],
            subcommands: &[],
            handler: Some(policy),
        },
    ],
    handler: None,
};

fn on(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    set_enabled(true)?;
    Ok(Reply::new("autonomy on", json!({ "enabled": true })))
}

fn off(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    set_enabled(false)?;
    Ok(Reply::new("autonomy off", json!({ "enabled": false })))
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (human, value) = with_state(|state| {
        let agent = state.governor.agent();
        let counters = METRICS.snapshot();
        let cost = state.decision_cost.summary();
        let human = alloc::format!(
            "Autonomy: {}\n  Policy: {}, interval {} ms, confidence threshold {} per mille\n  Decisions: {} in {} intervals, {} held below the threshold, {} blocked by guardrails ({} wake-ups with no workload to watch), pending outcomes {}\n  Strategy: {:?}\n  Decision cost: p50 {} ns, p99 {} ns over {} decisions; autonomy thread CPU {} us\n  Interventions: {} (proactive compactions {}, throttles {}, strategy switches {}, priority boosts {}, deadline adjustments {}, {} of them refused); succeeded {}, failed {}, success rate {}",
            if state.enabled { "ON" } else { "OFF" },
            agent.policy().name(),
            state.interval_ns / 1_000_000,
            agent.config().confidence_threshold_per_mille,
            agent.decisions(),
            agent.intervals(),
            counters.decisions_held,
            counters.decisions_blocked,
            state.idle_ticks,
            agent.pending_interventions(),
            state.governor.strategy().current(),
            cost.p50_ns,
            cost.p99_ns,
            cost.count,
            thread_cpu_ns() / 1_000,
            counters.total_interventions,
            counters.proactive_compactions,
            counters.allocation_throttles,
            counters.strategy_switches,
            counters.priority_boosts,
            counters.deadline_adjustments,
            state.deadline_adjustments_refused,
            counters.interventions_succeeded,
            counters.interventions_failed,
            counters.success_rate_per_mille.map_or(String::from("n/a"), |rate| alloc::format!("{}.{}%", rate / 10, rate % 10)),
        );
        let value = json!({
            "enabled": state.enabled,
            "policy": agent.policy().name(),
            "interval_ms": state.interval_ns / 1_000_000,
            "confidence_threshold_per_mille": agent.config().confidence_threshold_per_mille,
            "config": agent.config(),
            "decisions": agent.decisions(),
            "intervals": agent.intervals(),
            "idle_wakeups": state.idle_ticks,
            "pending_outcomes": agent.pending_interventions(),
            "strategy": state.governor.strategy().current(),
            "decision_cost": cost,
            "thread_cpu_ns": thread_cpu_ns(),
            "boosts_refused": state.boosts_refused,
            "last_boost_error": state.last_boost_error,
            "deadline_adjustments_refused": state.deadline_adjustments_refused,
            "last_deadline_error": state.last_deadline_error,
            "deadline_relaxed_max_per_mille_of_period": state.deadline_relaxed_max_per_mille_of_period,
            "metrics": counters,
        });
        (human, value)
    })?;
    Ok(Reply::new(human, value))
}

fn interval(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let ms = invocation.args.u64("ms").unwrap_or(DEFAULT_INTERVAL_MS);
    with_state(|state| state.interval_ns = ms * 1_000_000)?;
    Ok(Reply::new(alloc::format!("decision interval {ms} ms"), json!({ "interval_ms": ms })))
}

fn conf_threshold(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let threshold = invocation.args.u64("n").unwrap_or(0) as u16;
    with_state(|state| state.governor.agent_mut().set_confidence_threshold(threshold))?.map_err(|error| {
        ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("threshold refused: {error:?}"))
    })?;
    Ok(Reply::new(
        alloc::format!("confidence threshold {threshold} per mille"),
        json!({ "confidence_threshold_per_mille": threshold }),
    ))
}

fn thresholds(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let wanted = |name: &str| invocation.args.u64(name).map(|value| value as u16);
    let (relax, reclaim, throttle) = (wanted("relax-below"), wanted("reclaim-at"), wanted("throttle-at"));
    let config = with_state(|state| {
        let agent = state.governor.agent_mut();
        let current = *agent.config();
        if relax.is_some() || reclaim.is_some() || throttle.is_some() {
            agent.set_pressure_thresholds(
                relax.unwrap_or(current.relax_below_per_mille),
                reclaim.unwrap_or(current.reclaim_at_per_mille),
                throttle.unwrap_or(current.throttle_at_per_mille),
            )?;
        }
        Ok(*agent.config())
    })?
    .map_err(|error: sis_autonomy::MetaConfigError| {
        ShellError::new(
            sis_shell::codes::INVALID_VALUE,
            alloc::format!("thresholds refused ({error:?}): they must keep relax-below < reclaim-at < throttle-at"),
        )
    })?;
    Ok(Reply::new(
        alloc::format!(
            "pressure thresholds: relax below {}, reclaim at {}, throttle at {} per mille",
            config.relax_below_per_mille,
            config.reclaim_at_per_mille,
            config.throttle_at_per_mille
        ),
        json!({
            "relax_below_per_mille": config.relax_below_per_mille,
            "reclaim_at_per_mille": config.reclaim_at_per_mille,
            "throttle_at_per_mille": config.throttle_at_per_mille,
        }),
    ))
}

fn trace_line(trace: &DecisionTrace) -> String {
    let blocked = trace.blocked_by.map_or(String::new(), |rule| alloc::format!(" by {rule}"));
    alloc::format!(
        "#{} at {} ms (interval {}, {:?}): pressure {} per mille, {:?} -> {:?} confidence {} ({:?}{blocked}), {:?}, outcome {:?}",
        trace.id,
        trace.at_ns / 1_000_000,
        trace.interval,
        trace.subsystem,
        trace.inputs.pressure_per_mille,
        trace.reason,
        trace.directive,
        trace.confidence_per_mille,
        trace.disposition,
        trace.selection,
        trace.outcome
    )
}

fn audit(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let count = invocation.args.u64("n").unwrap_or(1) as usize;
    let traces: Vec<DecisionTrace> = with_state(|state| state.governor.agent().audit(count).copied().collect())?;
    let mut human = alloc::format!("{} of the last {count} decisions", traces.len());
    for trace in &traces {
        human.push_str(&alloc::format!("\n  {}", trace_line(trace)));
    }
    Ok(Reply::new(human, json!({ "traces": traces })))
}

/// The trace of the meta-agent's decision `id`, or why there is none (`not-found`).
pub fn decision(id: u64) -> Result<DecisionTrace, ShellError> {
    with_state(|state| state.governor.agent().explain(id).copied())?.map_err(explain::not_found)
}

fn policy(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = String::from(invocation.args.str("policy").unwrap_or("heuristic"));
    with_state(|state| install(state, PolicySource::Builtin(name.clone())))??;
    Ok(Reply::new(alloc::format!("policy {name} (a fresh meta-agent)"), json!({ "policy": name })))
}

/// `memctl`.
pub static MEMCTL: CommandSpec<Kernel> = CommandSpec {
    name: "memctl",
    summary: "The memory workload's pool as the meta-agent sees it, and its memory strategy",
    description: "",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "The pool port's telemetry and the directives in force",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(mem_status),
        },
        CommandSpec {
            name: "strategy",
            summary: "The memory strategy: status or history",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "status",
                    summary: "Strategy in force, its pressure cap, thresholds, switch counters, freeze",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(strategy_status),
                },
                CommandSpec {
                    name: "history",
                    summary: "The last strategy switches, oldest first",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(strategy_history),
                },
            ],
            handler: None,
        },
    ],
    handler: None,
};

fn mem_status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let telemetry = MEMORY_PORT.telemetry();
    let cap = MEMORY_PORT.pressure_cap();
    let cap_text = if cap == NO_CAP { String::from("none") } else { alloc::format!("{cap} per mille") };
    let human = alloc::format!(
        "Memory workload pool: {}\n  Run {}: pressure {} per mille of {} pages, {} OOM events, {} requests, {} steps\n  Directives: throttle {} per mille ({} refused), pressure cap {cap_text}, reclaims pending {}",
        if telemetry.attached { "attached" } else { "no workload running" },
        telemetry.run,
        telemetry.pressure_per_mille,
        telemetry.limit_pages,
        telemetry.oom_events,
        telemetry.allocation_requests,
        telemetry.steps,
        telemetry.throttle_per_mille,
        telemetry.throttled_requests,
        telemetry.reclaims_pending
    );
    let cap_json = if cap == NO_CAP { serde_json::Value::Null } else { json!(cap) };
    Ok(Reply::new(human, json!({ "port": telemetry, "pressure_cap_per_mille": cap_json })))
}

fn strategy_status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let now = PlatformClock.now_ns();
    let (human, value) = with_state(|state| {
        let strategy = state.governor.strategy();
        let current = strategy.current();
        let cap = strategy_cap(current);
        let stats = strategy.stats();
        let frozen = strategy.frozen_until(now);
        let human = alloc::format!(
            "Strategy: {current:?} (pressure cap {})\n  Config: {:?}\n  Counters: {:?}\n  A naive threshold policy on the same pressure samples: {} switches\n  Frozen: {}",
            if cap == NO_CAP { String::from("none") } else { alloc::format!("{cap} per mille") },
            strategy.config(),
            stats,
            state.governor.naive_switches(),
            frozen.map_or(String::from("no"), |until| alloc::format!("until {} ms", until / 1_000_000))
        );
        let value = json!({
            "strategy": current,
            "pressure_cap_per_mille": if cap == NO_CAP { serde_json::Value::Null } else { json!(cap) },
            "config": strategy.config(),
            "stats": stats,
            "naive_switches": state.governor.naive_switches(),
            "frozen_until_ns": frozen,
        });
        (human, value)
    })?;
    Ok(Reply::new(human, value))
}

fn strategy_history(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let switches: Vec<sis_autonomy::StrategySwitch> =
        with_state(|state| state.governor.strategy().history().copied().collect())?;
    let mut human = alloc::format!("{} strategy switches kept", switches.len());
    for switch in &switches {
        human.push_str(&alloc::format!("\n  {switch:?}"));
    }
    Ok(Reply::new(human, json!({ "switches": switches })))
}
