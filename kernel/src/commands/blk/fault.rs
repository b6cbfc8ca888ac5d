//! `blkctl fault stall|error|clear`: the fault injector under the cache, from the shell.

use serde_json::json;
use sis_blk::MAX_ERROR_PERCENT;
use sis_hal::Clock;
use sis_platform::time::PlatformClock;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::disk::with_disk;
use super::Kernel;
use crate::format;

/// Longest stall: 10 minutes.
const MAX_STALL_MS: u64 = 600_000;

/// `blkctl fault`.
pub const FAULT: CommandSpec<Kernel> = CommandSpec {
    name: "fault",
    summary: "Inject device faults: stall for a duration, fail requests with a probability, clear",
    description: "Faults act below the cache, where the device is: a stall delays every request that reaches the device until it ends (none is dropped); an error probability fails reads, writes and flushes without touching the device, and the command that asked gets the error (code injected-error). Cached reads reach neither.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "stall",
            summary: "Hold every device request from now for MS milliseconds",
            description: "",
            args: &[ArgSpec::positional("ms", ValueKind::U64 { min: 1, max: MAX_STALL_MS }, "duration, ms").required()],
            subcommands: &[],
            handler: Some(stall),
        },
        CommandSpec {
            name: "error",
            summary: "Fail each device request with PERCENT % chance (0 turns it off), from a seeded generator",
            description: "",
            args: &[
                ArgSpec::positional("percent", ValueKind::U64 { min: 0, max: MAX_ERROR_PERCENT }, "chance, percent")
                    .required(),
                ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "generator seed (default: the clock)"),
            ],
            subcommands: &[],
            handler: Some(error),
        },
        CommandSpec {
            name: "clear",
            summary: "End every fault (counters are kept)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(clear),
        },
    ],
    handler: None,
};

fn stall(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let stall_ms = invocation.args.u64("ms").unwrap_or(1);
    with_disk(|disk| {
        let until = disk.faults().stall_for(stall_ms * 1_000_000);
        Ok(Reply::new(
            alloc::format!("device requests stall for {stall_ms} ms (until {})", format::milliseconds(until)),
            json!({ "stall_ms": stall_ms, "stall_until_ns": until }),
        ))
    })
}

fn error(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let percent = invocation.args.u64("percent").unwrap_or(0);
    let seed = invocation.args.u64("seed").unwrap_or_else(|| PlatformClock.now_ns());
    with_disk(|disk| {
        // The shell already held `percent` to 0..=100, so this cannot refuse.
        disk.faults().set_error_percent(percent, seed).map_err(|percent| {
            ShellError::new(
                sis_shell::codes::OUT_OF_RANGE,
                alloc::format!("{percent} % is above {MAX_ERROR_PERCENT} %"),
            )
        })?;
        Ok(Reply::new(
            alloc::format!("device requests fail with {percent} % chance (seed {seed})"),
            json!({ "error_percent": percent, "seed": seed }),
        ))
    })
}

fn clear(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    with_disk(|disk| {
        disk.faults().clear();
        Ok(Reply::new("no device faults", json!({ "cleared": true })))
    })
}
