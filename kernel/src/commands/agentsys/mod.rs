//! `agentsys`: WebAssembly agents in sandboxes, each on its own kernel thread, under the supervisor of
//! `sis-agents` (docs/agents.md). This module parses, wires and prints; the logic is in the crate.

mod world;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sis_agents::audit::AuditRecord;
use sis_agents::caps::CapabilitySet;
use sis_agents::protocol::{decode_header, encode_request, ErrorCode, Request, HEADER_LEN};
use sis_agents::sandbox::Limits;
use sis_agents::supervisor::{AgentStatus, RestartPolicy, State, SupervisorError};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::files::{shell_error, FILES};
use super::Kernel;
use world::{ensure_thread, now_ms, wait_for, wake_all, with_agents, KernelHost, EXAMPLES};

/// How long `stop`, `restart` and `unload` wait for an agent's slice and thread to end.
const STOP_TIMEOUT_MS: u64 = 5_000;
/// The capabilities `test-fs-list` acts with unless `--caps` says otherwise.
const TEST_FS_LIST_CAPS: &str = "fs.list:/tmp/**";
/// Where `examples install` writes the modules unless `--dir` says otherwise.
const EXAMPLES_DIR: &str = "/wasm";

const NAME: ArgSpec = ArgSpec::positional("name", ValueKind::Str, "agent name").required();

/// `agentsys`.
pub static AGENTSYS: CommandSpec<Kernel> = CommandSpec {
    name: "agentsys",
    summary: "WebAssembly agents: load, start, stop, status, capabilities, audit (sandboxed, supervised)",
    description: "An agent is a WebAssembly module run by the wasmi interpreter in its own instance, with a memory limit and fuel budgets, on its own kernel thread. It reaches the kernel only through sis.host_call messages (FS_LIST, FS_READ, FS_WRITE, METRICS_READ, COMMAND_RUN, LOG, SLEEP, PROPOSE_ACTION), each checked against its capabilities before anything runs and audited. A trap, out-of-fuel, memory-limit hit, protocol or capability violation stops that agent only, with its reason; the restart policy decides what happens next. docs/agents.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "examples",
            summary: "The example agents the image carries: name, size, SHA-256, the capabilities they need",
            description: "",
            args: &[],
            subcommands: &[CommandSpec {
                name: "install",
                summary: "Write the example modules into the filesystem as DIR/NAME.wasm",
                description: "",
                args: &[ArgSpec::flag("dir", ValueKind::Str, "directory (created if missing)").default(EXAMPLES_DIR)],
                subcommands: &[],
                handler: Some(examples_install),
            }],
            handler: Some(examples),
        },
        CommandSpec {
            name: "load",
            summary: "Validate a module from the filesystem and load it as an agent (state loaded)",
            description: "Capabilities: comma-separated fs.read:PATTERN, fs.write:PATTERN, fs.list:PATTERN, metrics.read, command:NAME, log, propose (docs/agents.md). The module must import only sis.host_call and export memory and run.",
            args: &[
                ArgSpec::positional("path", ValueKind::Str, "absolute path of the .wasm module").required(),
                ArgSpec::flag("name", ValueKind::Str, "agent name (default: the file name without .wasm)"),
                ArgSpec::flag("caps", ValueKind::Str, "capabilities, comma-separated (default: none)").default(""),
                ArgSpec::flag("restart", ValueKind::Choice(&["never", "on-failure"]), "restart policy").default("never"),
                ArgSpec::flag("backoff-ms", ValueKind::U64 { min: 1, max: 3_600_000 }, "on-failure: first wait")
                    .default("100"),
                ArgSpec::flag("max-backoff-ms", ValueKind::U64 { min: 1, max: 3_600_000 }, "on-failure: longest wait")
                    .default("10000"),
                ArgSpec::flag("max-restarts", ValueKind::U64 { min: 0, max: 1000 }, "on-failure: restarts per window")
                    .default("5"),
                ArgSpec::flag("window-ms", ValueKind::U64 { min: 1, max: 86_400_000 }, "on-failure: sliding window")
                    .default("60000"),
                ArgSpec::flag("memory-pages", ValueKind::U64 { min: 1, max: 1024 }, "memory limit, 64 KiB pages")
                    .default("16"),
                ArgSpec::flag("fuel-per-slice", ValueKind::U64 { min: 1_000, max: 1_000_000_000 }, "fuel a slice")
                    .default("1000000"),
                ArgSpec::flag("fuel-total", ValueKind::U64 { min: 1_000, max: 1_000_000_000_000 }, "fuel in all")
                    .default("100000000"),
                ArgSpec::flag("calls-per-slice", ValueKind::U64 { min: 1, max: 100_000 }, "host calls a slice")
                    .default("64"),
            ],
            subcommands: &[],
            handler: Some(load),
        },
        CommandSpec {
            name: "unload",
            summary: "Stop the agent if it runs and free everything it holds",
            description: "",
            args: &[NAME],
            subcommands: &[],
            handler: Some(unload),
        },
        CommandSpec {
            name: "start",
            summary: "Start a loaded, stopped, crashed or given-up agent on its own thread",
            description: "",
            args: &[NAME],
            subcommands: &[],
            handler: Some(start),
        },
        CommandSpec {
            name: "stop",
            summary: "Stop an agent (a slice in progress ends first)",
            description: "",
            args: &[NAME],
            subcommands: &[],
            handler: Some(stop),
        },
        CommandSpec {
            name: "restart",
            summary: "Stop an agent and start it from a fresh instance",
            description: "",
            args: &[NAME],
            subcommands: &[],
            handler: Some(restart),
        },
        CommandSpec {
            name: "status",
            summary: "State, last stop reason, restart policy and resource use of every agent, or of one",
            description: "States: loaded, running, sleeping, stopped, crashed, gave-up. Usage is summed over every instance since load; memory is the live instance's.",
            args: &[ArgSpec::positional("name", ValueKind::Str, "agent name")],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "caps",
            summary: "An agent's capabilities",
            description: "",
            args: &[NAME],
            subcommands: &[],
            handler: Some(caps),
        },
        CommandSpec {
            name: "audit",
            summary: "Host calls, allowed or refused: agent, call, call id, request digest, outcome, fuel",
            description: "Refused: denied by the capabilities or over the slice's rate limit.",
            args: &[
                ArgSpec::flag("agent", ValueKind::Str, "only this agent's calls"),
                ArgSpec::flag("denied", ValueKind::Switch, "only refused calls"),
                ArgSpec::flag("limit", ValueKind::U64 { min: 1, max: 2048 }, "at most the last N").default("50"),
            ],
            subcommands: &[CommandSpec {
                name: "clear",
                summary: "Forget every audit record (and the count of dropped ones)",
                description: "",
                args: &[],
                subcommands: &[],
                handler: Some(audit_clear),
            }],
            handler: Some(audit),
        },
        CommandSpec {
            name: "bench",
            summary: "The interpreter against native code on one compute kernel, and the host-call round trip (ns)",
            description: "The compute kernel of crates/agents/src/bench.rs runs natively and in the `compute` agent (its exit code must equal the native checksum); the `pinger` agent makes 1,000 host calls its capabilities deny (decode, check, audit). Medians over the repetitions; figures from the kernel's clock.",
            args: &[ArgSpec::flag("repetitions", ValueKind::U64 { min: 1, max: 100 }, "runs").default("5")],
            subcommands: &[],
            handler: Some(bench),
        },
        CommandSpec {
            name: "test-fs-list",
            summary: "One FS_LIST request through the protocol, capability check, host and audit (no sandbox)",
            description: "Acts as the agent `test-fs-list` with the capabilities given (default fs.list:/tmp/**), so a path outside them is denied exactly as an agent's call would be.",
            args: &[
                ArgSpec::positional("path", ValueKind::Str, "directory").required(),
                ArgSpec::flag("caps", ValueKind::Str, "capabilities").default(TEST_FS_LIST_CAPS),
            ],
            subcommands: &[],
            handler: Some(test_fs_list),
        },
    ],
    handler: None,
};

/// The red team's hostile-agent attack: the example `name` in a sandbox of its own under `limits`; the stop kind
/// it was given (`out-of-fuel`, ...), `finished` or `still-running` when nothing stopped it, or a load error's code.
pub(crate) fn hostile_run(name: &str, limits: Limits, kernel: &Kernel) -> &'static str {
    match world::run_example_to_stop(name, limits, kernel) {
        Ok(Some(reason)) => reason.kind(),
        Ok(None) => "still-running",
        Err(code) => code,
    }
}

fn supervisor_error(error: SupervisorError) -> ShellError {
    ShellError::new(error.code(), error.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| alloc::format!("{byte:02x}")).collect()
}

fn examples(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let mut human = alloc::format!("{} example agents (agentsys examples install writes them):", EXAMPLES.len());
    let mut list = Vec::new();
    for example in &EXAMPLES {
        let sha256 = hex(&Sha256::digest(example.wasm));
        human.push_str(&alloc::format!(
            "\n  {:<16} {:>6} bytes  sha256 {}…  caps {}",
            example.name,
            example.wasm.len(),
            &sha256[..16],
            if example.capabilities.is_empty() { "(none)" } else { example.capabilities }
        ));
        list.push(json!({
            "name": example.name,
            "bytes": example.wasm.len(),
            "sha256": sha256,
            "capabilities": example.capabilities,
        }));
    }
    Ok(Reply::new(human, json!({ "examples": list })))
}

fn examples_install(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let dir = invocation.args.str("dir").unwrap_or(EXAMPLES_DIR).trim_end_matches('/').to_string();
    let mut files = FILES.lock();
    files.mkdir(&dir, true).map_err(shell_error)?;
    let mut installed = Vec::new();
    let mut human = String::new();
    for example in &EXAMPLES {
        let path = alloc::format!("{dir}/{}.wasm", example.name);
        files.write(&path, example.wasm, false).map_err(shell_error)?;
        human.push_str(&alloc::format!("{path} ({} bytes)\n", example.wasm.len()));
        installed.push(json!({ "path": path, "bytes": example.wasm.len() }));
    }
    Ok(Reply::new(human.trim_end(), json!({ "dir": dir, "installed": installed })))
}

fn load(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let path = args.str("path").unwrap_or("");
    let name = match args.str("name") {
        Some(name) => name.to_string(),
        None => path.rsplit('/').next().unwrap_or("").trim_end_matches(".wasm").to_string(),
    };
    let capabilities = CapabilitySet::parse(args.str("caps").unwrap_or(""))
        .map_err(|error| ShellError::new(error.code(), error.to_string()))?;
    let number = |flag: &str| args.u64(flag).unwrap_or(0);
    let policy = match args.str("restart") {
        Some("on-failure") => RestartPolicy::OnFailure {
            initial_backoff_ms: number("backoff-ms"),
            max_backoff_ms: number("max-backoff-ms"),
            max_restarts: number("max-restarts") as u32,
            window_ms: number("window-ms"),
        },
        _ => RestartPolicy::Never,
    };
    let limits = Limits {
        memory_pages: number("memory-pages") as u32,
        fuel_per_slice: number("fuel-per-slice"),
        fuel_total: number("fuel-total"),
        calls_per_slice: number("calls-per-slice") as u32,
        ..Limits::default()
    };
    let wasm = FILES.lock().read(path).map_err(shell_error)?.to_vec();
    let sha256 = hex(&Sha256::digest(&wasm));
    let id = with_agents(|agents| agents.supervisor.load(&name, &wasm, capabilities.clone(), limits, policy))
        .map_err(supervisor_error)?;
    Ok(Reply::new(
        alloc::format!(
            "loaded {name} (id {id}, principal agent:{id}) from {path} ({} bytes), caps {capabilities}, restart {}",
            wasm.len(),
            policy.name()
        ),
        json!({
            "id": id,
            "name": name,
            "path": path,
            "module_bytes": wasm.len(),
            "sha256": sha256,
            "capabilities": capabilities.to_string(),
            "state": State::Loaded.name(),
            "limits": limits_json(&limits),
            "policy": policy_json(&policy),
        }),
    ))
}

fn name_arg<'a>(invocation: &'a Invocation<'_>) -> &'a str {
    invocation.args.str("name").unwrap_or("")
}

fn state_reply(name: &str, verb: &str) -> Result<Reply, ShellError> {
    let status = with_agents(|agents| agents.supervisor.status(name)).map_err(supervisor_error)?;
    Ok(Reply::new(
        alloc::format!("{verb} {name}: {}", status.state.name()),
        json!({ "name": name, "state": status.state.name(), "last_stop": stop_json(&status) }),
    ))
}

fn start(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = name_arg(invocation);
    with_agents(|agents| {
        agents.supervisor.start(name).map_err(supervisor_error)?;
        ensure_thread(agents, name, kernel).map_err(|error| {
            // Without a thread the agent cannot run: it is stopped again.
            let _ = agents.supervisor.stop(name);
            ShellError::new("spawn-failed", alloc::format!("cannot start the thread of agent {name}: {error}"))
        })
    })?;
    wake_all();
    state_reply(name, "started")
}

/// Stops `name` and waits until its slice has ended.
fn stop_and_wait(name: &str) -> Result<(), ShellError> {
    with_agents(|agents| agents.supervisor.stop(name)).map_err(supervisor_error)?;
    wake_all();
    let stopped = wait_for(STOP_TIMEOUT_MS, || {
        with_agents(|agents| agents.supervisor.status(name).map(|status| status.state == State::Stopped))
            .unwrap_or(true)
    });
    if stopped {
        Ok(())
    } else {
        Err(ShellError::new(
            "stop-timeout",
            alloc::format!("agent {name} did not end its slice in {STOP_TIMEOUT_MS} ms"),
        ))
    }
}

fn stop(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = name_arg(invocation);
    stop_and_wait(name)?;
    state_reply(name, "stopped")
}

fn restart(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = name_arg(invocation);
    let running = with_agents(|agents| agents.supervisor.status(name))
        .map_err(supervisor_error)
        .map(|status| matches!(status.state, State::Running | State::Sleeping))?;
    if running {
        stop_and_wait(name)?;
    }
    start(kernel, invocation)
}

fn unload(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = name_arg(invocation);
    stop_and_wait(name)?;
    with_agents(|agents| agents.supervisor.unload(name)).map_err(supervisor_error)?;
    wake_all();
    let ended = wait_for(STOP_TIMEOUT_MS, || with_agents(|agents| !agents.threads.contains_key(name)));
    if !ended {
        return Err(ShellError::new("stop-timeout", alloc::format!("the thread of agent {name} did not end")));
    }
    Ok(Reply::new(alloc::format!("unloaded {name}"), json!({ "name": name, "unloaded": true })))
}

fn limits_json(limits: &Limits) -> Value {
    json!({
        "memory_pages": limits.memory_pages,
        "fuel_per_slice": limits.fuel_per_slice,
        "fuel_total": limits.fuel_total,
        "calls_per_slice": limits.calls_per_slice,
        "max_protocol_errors": limits.max_protocol_errors,
        "max_denials": limits.max_denials,
    })
}

fn policy_json(policy: &RestartPolicy) -> Value {
    match policy {
        RestartPolicy::Never => json!({ "kind": "never" }),
        RestartPolicy::OnFailure { initial_backoff_ms, max_backoff_ms, max_restarts, window_ms } => json!({
            "kind": "on-failure",
            "initial_backoff_ms": initial_backoff_ms,
            "max_backoff_ms": max_backoff_ms,
            "max_restarts": max_restarts,
            "window_ms": window_ms,
        }),
    }
}

fn stop_json(status: &AgentStatus) -> Value {
    match &status.last_stop {
        Some(stop) => json!({ "kind": stop.kind(), "reason": stop.to_string() }),
        None => Value::Null,
    }
}

fn status_json(status: &AgentStatus, thread: bool) -> Value {
    let usage = &status.usage;
    json!({
        "id": status.id,
        "name": status.name,
        "state": status.state.name(),
        "last_stop": stop_json(status),
        "capabilities": status.capabilities,
        "policy": policy_json(&status.policy),
        "restarts": status.restarts,
        "due_at_ms": status.due_at_ms,
        "thread": thread,
        "module_bytes": status.module_bytes,
        "limits": limits_json(&status.limits),
        "usage": {
            "fuel_used": usage.fuel_used,
            "memory_bytes": usage.memory_bytes,
            "calls": usage.calls,
            "denials": usage.denials,
            "rate_limited": usage.rate_limited,
            "protocol_errors": usage.protocol_errors,
            "slices": usage.slices,
        },
    })
}

fn status(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let wanted = invocation.args.str("name").map(String::from);
    let (statuses, threads, now) = with_agents(|agents| {
        let statuses = match &wanted {
            Some(name) => agents.supervisor.status(name).map(|status| alloc::vec![status]),
            None => Ok(agents.supervisor.statuses()),
        };
        let threads: Vec<String> = agents.threads.keys().cloned().collect();
        (statuses, threads, now_ms())
    });
    let statuses = statuses.map_err(supervisor_error)?;
    let mut human = alloc::format!(
        "{} agent(s)\n  {:>4} {:<16} {:<9} {:>13} {:>9} {:>7} {:>7} {:>8}  last stop",
        statuses.len(),
        "id",
        "name",
        "state",
        "fuel",
        "memory",
        "calls",
        "denied",
        "restarts"
    );
    let mut list = Vec::new();
    for status in &statuses {
        let thread = threads.contains(&status.name);
        human.push_str(&alloc::format!(
            "\n  {:>4} {:<16} {:<9} {:>13} {:>9} {:>7} {:>7} {:>8}  {}",
            status.id,
            status.name,
            status.state.name(),
            crate::format::thousands(status.usage.fuel_used),
            crate::format::bytes(status.usage.memory_bytes as u64),
            status.usage.calls,
            status.usage.denials,
            status.restarts,
            status.last_stop.as_ref().map_or(String::from("-"), ToString::to_string)
        ));
        list.push(status_json(status, thread));
    }
    let mut value = json!({ "agents": list, "now_ms": now });
    if wanted.is_some() {
        value = list_first(value);
    }
    Ok(Reply::new(human, value))
}

/// `{"agents": [x], "now_ms": t}` as `x` with `now_ms` added, for `status NAME`.
fn list_first(value: Value) -> Value {
    let now = value["now_ms"].clone();
    match value["agents"].get(0).cloned() {
        Some(Value::Object(mut agent)) => {
            agent.insert(String::from("now_ms"), now);
            Value::Object(agent)
        }
        _ => value,
    }
}

fn caps(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = name_arg(invocation);
    let list: Vec<String> = with_agents(|agents| {
        agents.supervisor.capabilities(name).map(|caps| caps.iter().map(ToString::to_string).collect())
    })
    .map_err(supervisor_error)?;
    let human = if list.is_empty() { alloc::format!("{name}: no capabilities") } else { list.join("\n") };
    Ok(Reply::new(human, json!({ "name": name, "capabilities": list })))
}

fn record_json(record: &AuditRecord) -> Value {
    json!({
        "agent": record.agent,
        "call": record.call.map(|call| call.name()),
        "call_id": record.call_id,
        "digest": hex(&record.digest),
        "outcome": record.outcome.name(),
        "refused": record.is_refused(),
        "fuel_cost": record.fuel_cost,
    })
}

fn audit(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let agent = invocation.args.str("agent").map(String::from);
    let refused_only = invocation.args.switch("denied");
    let limit = invocation.args.u64("limit").unwrap_or(50) as usize;
    let (records, dropped) = with_agents(|agents| {
        (agents.supervisor.audit(agent.as_deref(), refused_only), agents.supervisor.audit_dropped())
    });
    let matching = records.len();
    let shown = &records[matching.saturating_sub(limit)..];
    let mut human = alloc::format!("{matching} matching record(s), last {} shown", shown.len());
    for record in shown {
        human.push_str(&alloc::format!(
            "\n  {:<16} {:<14} id {:<6} {} {:<18} fuel {}",
            record.agent,
            record.call.map_or("(malformed)", |call| call.name()),
            record.call_id,
            record.short_digest(),
            record.outcome.name(),
            record.fuel_cost
        ));
    }
    let list: Vec<Value> = shown.iter().map(record_json).collect();
    Ok(Reply::new(human, json!({ "matching": matching, "dropped": dropped, "records": list })))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn bench(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    use sis_agents::bench::{checksum, COMPUTE_ROUNDS, PING_CALLS};
    let repetitions = invocation.args.u64("repetitions").unwrap_or(5);
    let mut runs = Vec::new();
    for _ in 0..repetitions {
        runs.push(world::bench_once(kernel).map_err(|message| ShellError::new("bench-mismatch", message))?);
    }
    let native_ns = median(runs.iter().map(|run| run.native_ns).collect());
    let interpreted_ns = median(runs.iter().map(|run| run.interpreted_ns).collect());
    let ping_ns = median(runs.iter().map(|run| run.ping_ns).collect());
    let fuel_used = runs.first().map_or(0, |run| run.fuel_used);
    let ratio = interpreted_ns as f64 / native_ns.max(1) as f64;
    let ping_ns_per_call = ping_ns as f64 / f64::from(PING_CALLS);
    let human = alloc::format!(
        "compute kernel ({COMPUTE_ROUNDS} rounds, checksum {:#010x}), median of {repetitions}:\n  native       {:>12} ns\n  interpreted  {:>12} ns  ({ratio:.1}x native, {} fuel)\nhost-call round trip (denied FS_READ, {PING_CALLS} calls): {ping_ns_per_call:.0} ns a call",
        checksum(COMPUTE_ROUNDS),
        crate::format::thousands(native_ns),
        crate::format::thousands(interpreted_ns),
        crate::format::thousands(fuel_used),
    );
    let list: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "native_ns": run.native_ns,
                "interpreted_ns": run.interpreted_ns,
                "fuel_used": run.fuel_used,
                "ping_ns": run.ping_ns,
            })
        })
        .collect();
    Ok(Reply::new(
        human,
        json!({
            "rounds": COMPUTE_ROUNDS,
            "checksum": checksum(COMPUTE_ROUNDS),
            "repetitions": repetitions,
            "native_ns": native_ns,
            "interpreted_ns": interpreted_ns,
            "interpreted_over_native": ratio,
            "fuel_used": fuel_used,
            "ping_calls": PING_CALLS,
            "ping_ns": ping_ns,
            "ping_ns_per_call": ping_ns_per_call,
            "runs": list,
        }),
    ))
}

fn audit_clear(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let cleared = with_agents(|agents| agents.supervisor.clear_audit());
    Ok(Reply::new(alloc::format!("cleared {cleared} audit record(s)"), json!({ "cleared": cleared })))
}

fn test_fs_list(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or("");
    let capabilities = CapabilitySet::parse(invocation.args.str("caps").unwrap_or(TEST_FS_LIST_CAPS))
        .map_err(|error| ShellError::new(error.code(), error.to_string()))?;
    let request = encode_request(1, &Request::FsList { path: path.to_string() });
    let mut host = KernelHost::new(kernel.clone());
    let (response, record) = sis_agents::serve_once("test-fs-list", &capabilities, &request, &mut host);
    let status = decode_header(&response).map_or(ErrorCode::HostFailed.wire(), |header| header.kind);
    let outcome = record.outcome;
    let record_value = record_json(&record);
    with_agents(|agents| agents.supervisor.record(record));
    let listing = core::str::from_utf8(response.get(HEADER_LEN..).unwrap_or(&[])).unwrap_or("");
    let entries: Vec<&str> = listing.split('\n').filter(|entry| !entry.is_empty()).collect();
    let value = json!({
        "path": path,
        "capabilities": capabilities.to_string(),
        "status": status,
        "outcome": outcome.name(),
        "entries": entries,
        "audit": record_value,
    });
    if outcome != ErrorCode::Ok {
        let code = match outcome {
            ErrorCode::Denied => "capability-denied",
            ErrorCode::NotFound => "not-found",
            _ => "agent-call-failed",
        };
        return Err(ShellError::new(
            code,
            alloc::format!("FS_LIST {path} as test-fs-list (caps {capabilities}): {}", outcome.name()),
        ));
    }
    let mut human = alloc::format!("FS_LIST {path}: {} entries", entries.len());
    for entry in &entries {
        human.push_str(&alloc::format!("\n  {entry}"));
    }
    Ok(Reply::new(human, value))
}
