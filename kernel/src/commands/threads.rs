//! `threads`: list threads with CPU time; `threads spawn --spin` starts a diagnostic spinner.

use alloc::vec::Vec;

use serde_json::json;
use sis_platform::thread;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::format;

/// Most diagnostic threads one `threads spawn` starts.
const MAX_SPAWN: u64 = 16;
/// Stack of diagnostic threads.
const DIAGNOSTIC_STACK_BYTES: u64 = 16 * 1024;

/// `threads [spawn --spin]`.
pub static THREADS: CommandSpec<Kernel> = CommandSpec {
    name: "threads",
    summary: "List threads with state, CPU time and switch count",
    description: "CPU time is accounted at every switch; the running thread's current run is included.",
    args: &[],
    subcommands: &[CommandSpec {
        name: "spawn",
        summary: "Start a diagnostic thread",
        description: "--spin starts a thread that spins forever without yielding: the shell keeps answering only because the timer preempts it.",
        args: &[
            ArgSpec::flag("spin", ValueKind::Switch, "spin forever without yielding").required(),
            ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_SPAWN }, "how many threads to start").default("1"),
        ],
        subcommands: &[],
        handler: Some(spawn),
    }],
    handler: Some(list),
};

fn list(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let threads = thread::snapshot();
    let policy = thread::policy_name();
    let name_width = threads.iter().map(|info| info.name.len()).max().unwrap_or(4).max(4);
    let mut human = alloc::format!(
        "policy {policy}\n{:>4}  {:name_width$}  {:8}  {:>16}  {:>9}",
        "ID",
        "NAME",
        "STATE",
        "CPU TIME",
        "SWITCHES"
    );
    for info in &threads {
        human.push_str(&alloc::format!(
            "\n{:>4}  {:name_width$}  {:8}  {:>16}  {:>9}",
            info.id,
            info.name,
            info.state.name(),
            format::milliseconds(info.cpu_time_ns),
            format::thousands(info.switches)
        ));
    }
    let list: Vec<_> = threads
        .iter()
        .map(|info| {
            json!({
                "id": info.id,
                "name": info.name,
                "state": info.state.name(),
                "cpu_time_ns": info.cpu_time_ns,
                "switches": info.switches,
                "stack_bytes": info.stack_bytes,
            })
        })
        .collect();
    Ok(Reply::new(human, json!({ "policy": policy, "threads": list })))
}

fn spawn(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    // `--spin` is required by the declaration; it is the only workload so far.
    let count = invocation.args.u64("count").unwrap_or(1);
    let mut spawned = Vec::new();
    for _ in 0..count {
        match thread::spawn("spin", DIAGNOSTIC_STACK_BYTES, || loop {
            core::hint::spin_loop();
        }) {
            Ok(id) => spawned.push(id),
            Err(error) => {
                return Err(ShellError::new(
                    "spawn-failed",
                    alloc::format!("started {} of {count} threads, then: {error}", spawned.len()),
                ))
            }
        }
    }
    let ids: Vec<alloc::string::String> = spawned.iter().map(|id| alloc::format!("{id}")).collect();
    let list: Vec<_> = spawned.iter().map(|id| json!({ "id": id, "name": "spin" })).collect();
    Ok(Reply::new(alloc::format!("started spin thread(s) {}", ids.join(", ")), json!({ "spawned": list })))
}
