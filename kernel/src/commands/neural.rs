//! `neuralctl`: the kernel's learning agent (trained by `stresstest learning`, or installed from a signed model):
//! status, inference, reset, save, load, install, export.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sis_ai::{Agent, VectorUnit};
use sis_governance::artifact::ModelRef;
use sis_governance::compliance::AgentSource;
use sis_governance::hex;
use sis_governance::registry::ModelId;
use sis_platform::fpu;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::memory::KernelFrames;
use sis_platform::time::PlatformClock;
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_stress::learning::{self, Action, STATE_NAMES, STATE_SIZE};

use super::files::{shell_error, FILES};
use super::llmctl::parse_model;
use super::Kernel;
use crate::governance;

mod inspect;

/// The kernel's agent and where it came from.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The agent.
    pub agent: Agent,
    /// Seed of its generator, and of its initial weights unless they came from a model.
    pub seed: u64,
    /// How it got its current weights.
    pub origin: Origin,
}

/// Where the agent's weights came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A registered agent-network model, installed by `neuralctl install` through the governor.
    Model {
        /// The model.
        model: ModelId,
        /// Its artifact's SHA-256 (hex).
        digest: String,
    },
    /// Made in the kernel or read from a file (`stresstest learning`, `neuralctl reset` or `load`, a chaos run):
    /// how, in words.
    Unsigned(String),
}

impl Origin {
    /// In words, for `neuralctl status`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Model { model, digest } => alloc::format!("installed from {model} (digest {digest})"),
            Origin::Unsigned(text) => text.clone(),
        }
    }

    /// What compliance checks.
    pub fn source(&self) -> AgentSource {
        match self {
            Origin::Model { model, .. } => AgentSource::Model { model: model.clone() },
            Origin::Unsigned(text) => AgentSource::Unsigned { origin: text.clone() },
        }
    }
}

/// Where the installed agent's weights came from, for `llmctl compliance` (`None`: no agent installed).
pub fn agent_source() -> Option<AgentSource> {
    AGENT.lock().as_ref().map(|installed| installed.origin.source())
}

/// The agent `neuralctl` works on; `None` until `stresstest learning` or `neuralctl reset`.
/// Held only briefly: a training run takes the agent out and puts it back.
pub static AGENT: IrqMutex<Option<Installed>> = IrqMutex::new(None);

/// Why the FPU loops were refused at boot, when they were (`neuralctl status`).
static VECTOR_UNIT_ERROR: IrqMutex<Option<String>> = IrqMutex::new(None);

/// Hands the network's inner loops to the FPU ([`sis_platform::fpu`]) once `sis_ai` has checked that they
/// compute the software loops' bits; if they do not, the software loops stay and `neuralctl status` says why.
pub fn install_fpu_loops() {
    let unit = VectorUnit {
        name: "fpu",
        forward: fpu::layer_forward,
        backward: fpu::layer_backward,
        update: fpu::layer_update,
    };
    if let Err(error) = sis_ai::install_vector_unit(unit) {
        *VECTOR_UNIT_ERROR.lock() = Some(error.to_string());
    }
}

/// Episodes a fresh agent's exploration schedule is laid out for.
const RESET_EPISODES: u32 = 20;

/// A finite decimal number (validated here, parsed again by the handler).
pub fn parse_number(text: &str) -> Result<ArgValue, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() => Ok(ArgValue::Str(String::from(text))),
        _ => Err(String::from("expected a finite decimal number, e.g. 0.85 or -0.2")),
    }
}

const NUMBER: ValueKind = ValueKind::Custom { value_name: "X", parse: parse_number };

/// `neuralctl`.
pub static NEURALCTL: CommandSpec<Kernel> = CommandSpec {
    name: "neuralctl",
    summary: "The learning agent that manages a memory pool: status, inference, reset, save, load, install, export, bench",
    description: "A Q-learning agent (f32 MLP, experience replay, target network) for the memory-pool control problem of `stresstest learning` (docs/stress.md). `stresstest learning` installs the agent it trained; `neuralctl reset` installs an untrained one; `neuralctl install` installs a signed agent-network model of the registry (llmctl).",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Network shape, training steps, recent loss, replay size, decisions",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "infer",
            summary: "Q-values of each action for a state, and the greedy action",
            description: "The state is pressure (0..1), pressure change over the last interval (-1..1), cache share of the limit (0..1), OOM events of the last interval / 16 (0..1), demand (requests per step, 0..1).",
            args: &[
                ArgSpec::positional("pressure", NUMBER, "pool pressure, 0..1").required(),
                ArgSpec::positional("pressure_change", NUMBER, "change over the last interval, -1..1").required(),
                ArgSpec::positional("cache_share", NUMBER, "cache pages / limit, 0..1").required(),
                ArgSpec::positional("oom_events", NUMBER, "OOM events of the last interval / 16, 0..1").required(),
                ArgSpec::positional("demand", NUMBER, "allocation requests per step, 0..1").required(),
            ],
            subcommands: &[],
            handler: Some(infer),
        },
        CommandSpec {
            name: "inspect",
            summary: "The network's layers, shapes, parameter counts and weight statistics; activations for --input",
            description: "Each layer: kind (dense_relu, dense_linear), inputs, outputs, parameters, and the statistics of its weights and biases (count, min, max, mean, population standard deviation, zeros), computed from the installed agent's online network. With --input, every layer's output for that state (statistics and values), the Q-values and the greedy action.",
            args: &[ArgSpec::flag("input", inspect::INPUT, "state: pressure,pressure_change,cache_share,oom_events,demand")],
            subcommands: &[],
            handler: Some(inspect::inspect),
        },
        CommandSpec {
            name: "reset",
            summary: "Install an untrained agent with weights drawn from --seed",
            description: "",
            args: &[ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "weight seed").default("0")],
            subcommands: &[],
            handler: Some(reset),
        },
        CommandSpec {
            name: "save",
            summary: "Write the agent's parameters to a file of the in-memory filesystem (JSON)",
            description: "Parent directories are created. The file holds `shape`, `seed` and `parameters` (f32 values printed so they read back exactly).",
            args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path").required()],
            subcommands: &[],
            handler: Some(save),
        },
        CommandSpec {
            name: "load",
            summary: "Load parameters saved by `neuralctl save` into the agent",
            description: "The shape must match; a file that does not parse, has the wrong shape or a non-finite value is refused and changes nothing. Training counters and replay start afresh.",
            args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path").required()],
            subcommands: &[],
            handler: Some(load),
        },
        CommandSpec {
            name: "install",
            summary: "Install a registered, loaded agent-network model (llmctl register, llmctl load) into the agent, audited",
            description: "Through the model governor, as the caller's principal: the model must be registered and loaded (the latest loaded version unless @VERSION) and of kind agent-network; its weights must decode (docs/governance.md, \"Agent networks\"), its input and output shapes be [5] and [3] and its layers the agent's [5, 16, 3]. A refusal says why and changes nothing; either way one `install` entry goes to the audit log (llmctl audit --action install). The installed agent explores at epsilon's floor (0.05) from its first decision; its training counters and replay start empty. `neuralctl status` then names the model and its digest.",
            args: &[ArgSpec::positional(
                "model",
                ValueKind::Custom { value_name: "NAME[@VERSION]", parse: parse_model },
                "model name, optionally @MAJOR.MINOR.PATCH",
            )
            .required()],
            subcommands: &[],
            handler: Some(install),
        },
        CommandSpec {
            name: "export",
            summary: "Write the agent's weights to a file of the in-memory filesystem in the agent-network weights format, to sign on the host",
            description: "Parent directories are created. The file is the blob `cargo xtask model sign --kind agent-network --input-shape 5 --output-shape 3` signs (docs/governance.md, \"Agent networks\"); the reply carries it in hex too (weights_hex), the way it leaves the guest, and its SHA-256.",
            args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path").required()],
            subcommands: &[],
            handler: Some(export),
        },
        CommandSpec {
            name: "bench",
            summary: "Time the agent's inference and update per decision against the decision interval",
            description: "Trains a fresh agent (weights from --seed; the installed agent is not touched) on --episodes episodes of the stresstest learning problem and times every decision: inference (a forward pass and the epsilon-greedy draw), update (storing the transition and one training step) and the interval (the action carried out and the workload's steps until the next decision). In deterministic mode guest time counts instructions, so the figures replay exactly.",
            args: &[
                ArgSpec::flag("episodes", ValueKind::U64 { min: 1, max: 1_000 }, "training episodes").default("5"),
                ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "weight and workload seed").default("1"),
            ],
            subcommands: &[],
            handler: Some(bench),
        },
    ],
    handler: None,
};

fn bench(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let episodes = invocation.args.u64("episodes").unwrap_or(5) as u32;
    let seed = invocation.args.u64("seed").unwrap_or(1);
    let report = learning::measure_costs(&mut KernelFrames, &PlatformClock, seed, episodes);
    let line = |name: &str, summary: &sis_metrics::LatencySummary, total: u64| {
        alloc::format!(
            "\n  {name:<10} p50 {} ns, p99 {} ns, mean {} ns, total {} us",
            summary.p50_ns,
            summary.p99_ns,
            total / report.decisions.max(1),
            total / 1_000
        )
    };
    let mut human = alloc::format!(
        "Agent cost per decision: {} decisions, {episodes} episodes, seed {seed}, network {:?}, batch {}, loops on {}",
        report.decisions,
        report.network,
        report.batch_size,
        report.vector_unit
    );
    human.push_str(&line("inference", &report.inference, report.inference_total_ns));
    human.push_str(&line("update", &report.update, report.update_total_ns));
    human.push_str(&line("interval", &report.interval, report.interval_total_ns));
    human.push_str(&alloc::format!(
        "\n  Learning overhead: {:.2} % of the decision interval ((inference + update) / interval)",
        report.overhead_percent
    ));
    let value = serde_json::to_value(&report)
        .map_err(|error| ShellError::new("internal", alloc::format!("report encoding failed: {error}")))?;
    Ok(Reply::new(human, value))
}

fn no_agent() -> ShellError {
    ShellError::new(
        "no-agent",
        "no agent installed: run `stresstest learning` to train one, `neuralctl install NAME` to install a signed one, or `neuralctl reset` for an untrained one",
    )
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let guard = AGENT.lock();
    let installed = guard.as_ref().ok_or_else(no_agent)?;
    let agent = &installed.agent;
    let (decisions, explorations) = agent.decisions();
    let (training_steps, last_loss) = agent.training();
    let shape = agent.shape();
    let parameters = agent.parameters().len();
    let refused = VECTOR_UNIT_ERROR.lock().clone();
    let (weights, model) = match &installed.origin {
        Origin::Model { model, digest } => (
            alloc::format!("weights of {model}"),
            json!({ "name": model.name, "version": model.version, "digest": digest }),
        ),
        Origin::Unsigned(_) => (alloc::format!("weight seed {}", installed.seed), Value::Null),
    };
    let human = alloc::format!(
        "Agent: Q-learning, {origin}\n  Network: {shape:?} (ReLU hidden, linear output), {parameters} parameters, {weights}, loops on {unit}{refused}\n  Inputs: {inputs}\n  Actions: {actions}\n  Training steps: {training_steps}, last TD loss {last_loss:.4}\n  Replay: {replay} transitions\n  Decisions: {decisions} ({explorations} explored), epsilon now {epsilon:.3}",
        origin = installed.origin.describe(),
        unit = sis_ai::vector_unit().name,
        refused = refused.as_deref().map_or(String::new(), |error| alloc::format!(" (FPU refused: {error})")),
        inputs = STATE_NAMES.join(", "),
        actions = Action::ALL.map(Action::name).join(", "),
        replay = agent.replay_len(),
        epsilon = agent.epsilon(),
    );
    Ok(Reply::new(
        human,
        json!({
            "origin": installed.origin.describe(),
            "model": model,
            "seed": installed.seed,
            "shape": shape,
            "parameters": parameters,
            "inputs": STATE_NAMES,
            "actions": Action::ALL,
            "training_steps": training_steps,
            "last_loss": last_loss,
            "replay_size": agent.replay_len(),
            "decisions": decisions,
            "explorations": explorations,
            "epsilon": agent.epsilon(),
            "vector_unit": sis_ai::vector_unit().name,
            "vector_unit_error": refused,
        }),
    ))
}

fn infer(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let mut state = Vec::with_capacity(STATE_SIZE);
    for name in STATE_NAMES {
        let value = invocation.args.str(name).and_then(|text| text.parse::<f32>().ok());
        state.push(
            value.ok_or_else(|| ShellError::new(sis_shell::codes::INVALID_VALUE, alloc::format!("{name} missing")))?,
        );
    }
    let guard = AGENT.lock();
    let agent = &guard.as_ref().ok_or_else(no_agent)?.agent;
    let q_values = agent.q_values(&state);
    let greedy = agent.greedy(&state);
    let mut human = String::from("Q-values:");
    for (action, value) in Action::ALL.iter().zip(&q_values) {
        human.push_str(&alloc::format!("\n  {:<9} {value:>10.4}", action.name()));
    }
    human.push_str(&alloc::format!("\nGreedy action: {}", Action::ALL[greedy].name()));
    Ok(Reply::new(human, json!({ "state": state, "q_values": q_values, "action": Action::ALL[greedy] })))
}

fn reset(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let seed = invocation.args.u64("seed").unwrap_or(0);
    let agent = learning::new_agent(seed, RESET_EPISODES);
    let shape = agent.shape();
    let origin = Origin::Unsigned(alloc::format!("untrained (neuralctl reset, seed {seed})"));
    *AGENT.lock() = Some(Installed { agent, seed, origin });
    Ok(Reply::new(
        alloc::format!("Installed an untrained agent {shape:?}, weight seed {seed}"),
        json!({ "shape": shape, "seed": seed }),
    ))
}

fn save(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or_default();
    let text = {
        let guard = AGENT.lock();
        let installed = guard.as_ref().ok_or_else(no_agent)?;
        json!({
            "shape": installed.agent.shape(),
            "seed": installed.seed,
            "parameters": installed.agent.parameters(),
        })
        .to_string()
    };
    FILES.lock().write(path, text.as_bytes(), true).map_err(shell_error)?;
    Ok(Reply::new(
        alloc::format!("Saved the agent to {path} ({} bytes)", text.len()),
        json!({ "path": path, "bytes": text.len() }),
    ))
}

fn load(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or_default();
    let bytes = FILES.lock().read(path).map_err(shell_error)?.to_vec();
    let bad = |why: String| ShellError::new("bad-agent-file", alloc::format!("{path}: {why}"));
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|error| bad(alloc::format!("not JSON: {error}")))?;
    let shape: Vec<usize> = value["shape"]
        .as_array()
        .and_then(|shape| shape.iter().map(|size| size.as_u64().map(|size| size as usize)).collect())
        .ok_or_else(|| bad(String::from("no `shape` array of sizes")))?;
    let parameters: Vec<f32> = value["parameters"]
        .as_array()
        .and_then(|values| values.iter().map(|value| value.as_f64().map(|value| value as f32)).collect())
        .ok_or_else(|| bad(String::from("no `parameters` array of numbers")))?;
    let seed = value["seed"].as_u64().unwrap_or(0);
    let mut agent = learning::new_agent(seed, RESET_EPISODES);
    if shape != agent.shape() {
        return Err(bad(alloc::format!("shape {shape:?}, the agent has {:?}", agent.shape())));
    }
    agent.load_parameters(&parameters).map_err(|error| bad(alloc::format!("{error}")))?;
    *AGENT.lock() = Some(Installed { agent, seed, origin: Origin::Unsigned(alloc::format!("loaded from {path}")) });
    Ok(Reply::new(
        alloc::format!("Loaded {} parameters from {path}", parameters.len()),
        json!({ "path": path, "parameters": parameters.len() }),
    ))
}

fn install(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let model = invocation
        .args
        .str("model")
        .and_then(|text| ModelRef::parse(text).ok())
        .ok_or_else(|| ShellError::new("bad-model", "a model name is required"))?;
    let (info, agent) = governance::install_agent(caller, &model)
        .map_err(|refused| ShellError::new(refused.code(), refused.to_string()))?;
    let id = ModelId { name: info.metadata.name.clone(), version: info.metadata.version };
    let (shape, parameters) = (agent.shape(), agent.parameters().len());
    let human = alloc::format!(
        "Installed {id} (digest {}) into the agent: {shape:?}, {parameters} parameters, as {caller}",
        info.digest
    );
    let fields = json!({
        "model": { "name": id.name, "version": id.version, "digest": info.digest },
        "principal": caller,
        "shape": shape,
        "parameters": parameters,
        "epsilon": agent.epsilon(),
    });
    let origin = Origin::Model { model: id, digest: info.digest };
    *AGENT.lock() = Some(Installed { agent, seed: governance::INSTALLED_AGENT_SEED, origin });
    Ok(Reply::new(human, fields))
}

fn export(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or_default();
    let (blob, shape, parameters) = {
        let guard = AGENT.lock();
        let agent = &guard.as_ref().ok_or_else(no_agent)?.agent;
        let weights = agent.weights();
        let blob = weights
            .encode()
            .map_err(|refused| ShellError::new(refused.code(), alloc::format!("the agent's weights: {refused}")))?;
        (blob, weights.sizes, weights.parameters.len())
    };
    FILES.lock().write(path, &blob, true).map_err(shell_error)?;
    let sha256 = hex::encode(&Sha256::digest(&blob));
    Ok(Reply::new(
        alloc::format!(
            "Exported the agent's weights to {path}: {} bytes, {shape:?}, {parameters} parameters, sha256 {sha256}",
            blob.len()
        ),
        json!({
            "path": path,
            "bytes": blob.len(),
            "shape": shape,
            "parameters": parameters,
            "sha256": sha256,
            "weights_hex": hex::encode(&blob),
        }),
    ))
}
