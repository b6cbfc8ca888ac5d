//! `netctl fault drop|corrupt|partition|clear`: the fault injector between smoltcp and virtio-net, from the shell.

use serde_json::json;
use sis_net::MAX_PERCENT;
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::link::with_net;
use super::Kernel;
use crate::format;

/// Longest partition: 10 minutes.
const MAX_PARTITION_MS: u64 = 600_000;

const PERCENT: ValueKind = ValueKind::U64 { min: 0, max: MAX_PERCENT };
const SEED: ValueKind = ValueKind::U64 { min: 0, max: u64::MAX };

/// `netctl fault`.
pub const FAULT: CommandSpec<Kernel> = CommandSpec {
    name: "fault",
    summary: "Inject link faults: drop or corrupt frames with a probability, partition for a duration, clear",
    description: "Faults act on every Ethernet frame between smoltcp and the driver, both directions: a partition drops all of them; else a frame is dropped with the drop probability; else one of its bits is flipped with the corrupt probability (checksums then reject it). Probabilities draw from seeded generators; the seed defaults to the clock and is printed.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "drop",
            summary: "Drop each frame with PERCENT % chance (0 turns it off)",
            description: "",
            args: &[
                ArgSpec::positional("percent", PERCENT, "chance, percent").required(),
                ArgSpec::flag("seed", SEED, "generator seed (default: the clock)"),
            ],
            subcommands: &[],
            handler: Some(drop_frames),
        },
        CommandSpec {
            name: "corrupt",
            summary: "Flip one bit of each frame with PERCENT % chance (0 turns it off)",
            description: "",
            args: &[
                ArgSpec::positional("percent", PERCENT, "chance, percent").required(),
                ArgSpec::flag("seed", SEED, "generator seed (default: the clock)"),
            ],
            subcommands: &[],
            handler: Some(corrupt),
        },
        CommandSpec {
            name: "partition",
            summary: "Drop every frame from now for MS milliseconds",
            description: "",
            args: &[ArgSpec::positional("ms", ValueKind::U64 { min: 1, max: MAX_PARTITION_MS }, "duration, ms")
                .required()],
            subcommands: &[],
            handler: Some(partition),
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

fn out_of_range(percent: u64) -> ShellError {
    ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{percent} % is above {MAX_PERCENT} %"))
}

fn drop_frames(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let percent = invocation.args.u64("percent").unwrap_or(0);
    let seed = invocation.args.u64("seed").unwrap_or_else(time::now_ns);
    with_net(|net| {
        net.faults().set_drop_percent(percent, seed).map_err(out_of_range)?;
        Ok(Reply::new(
            alloc::format!("frames are dropped with {percent} % chance (seed {seed})"),
            json!({ "drop_percent": percent, "seed": seed }),
        ))
    })
}

fn corrupt(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let percent = invocation.args.u64("percent").unwrap_or(0);
    let seed = invocation.args.u64("seed").unwrap_or_else(time::now_ns);
    with_net(|net| {
        net.faults().set_corrupt_percent(percent, seed).map_err(out_of_range)?;
        Ok(Reply::new(
            alloc::format!("frames get one bit flipped with {percent} % chance (seed {seed})"),
            json!({ "corrupt_percent": percent, "seed": seed }),
        ))
    })
}

fn partition(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let partition_ms = invocation.args.u64("ms").unwrap_or(1);
    with_net(|net| {
        let now = time::now_ns();
        let until = net.faults().partition_for(now, partition_ms * 1_000_000);
        Ok(Reply::new(
            alloc::format!("every frame is dropped for {partition_ms} ms (until {})", format::milliseconds(until)),
            json!({ "partition_ms": partition_ms, "partition_until_ns": until }),
        ))
    })
}

fn clear(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    with_net(|net| {
        net.faults().clear();
        Ok(Reply::new("no link faults", json!({ "cleared": true })))
    })
}
