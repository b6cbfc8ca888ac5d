//! `version`, `uptime`, `echo`, `shutdown`.

use serde_json::json;
use sis_hal::Clock;
use sis_platform::time::{self, PlatformClock};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError};

use super::Kernel;
use crate::format;

/// `version`: what is running.
pub static VERSION: CommandSpec<Kernel> = CommandSpec {
    name: "version",
    summary: "Show the kernel version, target and source commit",
    description: "The commit is the one the image was built from (empty when built outside git).",
    args: &[],
    subcommands: &[],
    handler: Some(version),
};

fn version(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let version = env!("CARGO_PKG_VERSION");
    let commit = env!("SIS_GIT_COMMIT");
    let target = "aarch64-unknown-none-softfloat";
    let scheduler = sis_platform::thread::policy_name();
    let shown_commit = if commit.is_empty() { "unknown" } else { commit };
    Ok(Reply::new(
        alloc::format!("SIS {version} ({target}, commit {shown_commit}, scheduler {scheduler})"),
        json!({ "name": "SIS", "version": version, "commit": commit, "target": target, "scheduler": scheduler }),
    ))
}

/// `uptime`: time since the counter started.
pub static UPTIME: CommandSpec<Kernel> = CommandSpec {
    name: "uptime",
    summary: "Show time since QEMU started, read from the generic timer",
    description: "The virtual counter starts with the machine; in deterministic mode (-icount) it counts instructions, so readings replay exactly.",
    args: &[],
    subcommands: &[],
    handler: Some(uptime),
};

fn uptime(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let uptime_ns = PlatformClock.now_ns();
    let frequency = time::frequency_hz();
    Ok(Reply::new(
        alloc::format!(
            "up {} (counter {} Hz; Rust entry at {})",
            format::milliseconds(uptime_ns),
            format::thousands(frequency),
            format::milliseconds(kernel.rust_entry_ns)
        ),
        json!({ "uptime_ns": uptime_ns, "counter_frequency_hz": frequency, "rust_entry_ns": kernel.rust_entry_ns }),
    ))
}

/// `echo`: prints its arguments.
pub static ECHO: CommandSpec<Kernel> = CommandSpec {
    name: "echo",
    summary: "Print the arguments, separated by single spaces",
    description: "Quotes group words: echo \"a  b\" prints a  b.",
    args: &[ArgSpec::rest("text", "words to print")],
    subcommands: &[],
    handler: Some(echo),
};

fn echo(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let text = invocation.args.rest().join(" ");
    Ok(Reply::new(text.clone(), json!({ "text": text })))
}

/// `shutdown`: PSCI SYSTEM_OFF.
pub static SHUTDOWN: CommandSpec<Kernel> = CommandSpec {
    name: "shutdown",
    summary: "Power the machine off through PSCI SYSTEM_OFF (QEMU exits with status 0)",
    description: "The reply is printed first, then the machine powers off.",
    args: &[],
    subcommands: &[],
    handler: Some(shutdown),
};

fn shutdown(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    kernel.shutdown_requested = true;
    Ok(Reply::new("powering off", json!({ "powering_off": true })))
}

/// `sleep MS`: the shell waits (batch runs use it to let threads run).
pub static SLEEP: CommandSpec<Kernel> = CommandSpec {
    name: "sleep",
    summary: "Wait the given number of milliseconds (other threads run meanwhile)",
    description: "The shell thread sleeps on the timer; in deterministic mode the wait is in guest time.",
    args: &[ArgSpec::positional("milliseconds", sis_shell::ValueKind::U64 { min: 1, max: 3_600_000 }, "how long")
        .required()],
    subcommands: &[],
    handler: Some(sleep),
};

fn sleep(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let milliseconds = invocation.args.u64("milliseconds").unwrap_or(1);
    let started = PlatformClock.now_ns();
    sis_platform::thread::sleep_ns(milliseconds * 1_000_000);
    let slept_ns = PlatformClock.now_ns() - started;
    Ok(Reply::new(
        alloc::format!("slept {}", format::milliseconds(slept_ns)),
        json!({ "requested_ms": milliseconds, "slept_ns": slept_ns }),
    ))
}
