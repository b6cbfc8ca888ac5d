//! `netctl ceiling`: the emulation's own ceiling, a guest loop that only turns UDP datagrams around in the driver.

use serde_json::json;
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::link::{self, with_net, Ceiling};
use super::Kernel;
use crate::format;

/// Error code: `start` while a run is on, or `stop` with none.
pub const CEILING_STATE: &str = "ceiling-state";

/// `netctl ceiling`.
pub const CEILING: CommandSpec<Kernel> = CommandSpec {
    name: "ceiling",
    summary: "Measure what QEMU's virtio-net can move: the network thread only reflects UDP datagrams, no TCP/IP stack",
    description: "While a run is on, the network thread stops polling smoltcp and instead sends every received UDP datagram to --port straight back to its sender from the receive buffer it arrived in (addresses and ports swapped, no copy, no allocation, no checksum work); a spare buffer is posted in its place. Everything else received is dropped, so TCP connections stall until `stop`. The host drives the traffic (cargo xtask bench net forwards a UDP port and keeps a window of datagrams in flight).",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "start",
            summary: "Start reflecting UDP datagrams to --port",
            description: "",
            args: &[ArgSpec::flag("port", ValueKind::U64 { min: 1, max: 65_535 }, "UDP port in the guest").default("9")],
            subcommands: &[],
            handler: Some(start),
        },
        CommandSpec {
            name: "stop",
            summary: "Stop, give the stack the device back, and report frames and bytes reflected",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(stop),
        },
    ],
    handler: None,
};

fn start(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let port = invocation.args.u64("port").unwrap_or(9) as u16;
    with_net(|net| {
        if net.ceiling.is_some() {
            return Err(ShellError::new(CEILING_STATE, "a ceiling run is already on: `netctl ceiling stop` first"));
        }
        net.ceiling = Some(Ceiling { port, started_ns: time::now_ns(), frames: 0, bytes: 0 });
        Ok(())
    })?;
    link::kick();
    Ok(Reply::new(alloc::format!("reflecting UDP datagrams to port {port}"), json!({ "port": port })))
}

fn stop(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let ceiling =
        with_net(|net| net.ceiling.take().ok_or_else(|| ShellError::new(CEILING_STATE, "no ceiling run is on")))?;
    link::kick();
    let duration_ns = time::now_ns().saturating_sub(ceiling.started_ns);
    Ok(Reply::new(
        alloc::format!(
            "reflected {} datagrams ({}) to port {} in {}",
            format::thousands(ceiling.frames),
            format::bytes(ceiling.bytes),
            ceiling.port,
            format::milliseconds(duration_ns)
        ),
        json!({ "port": ceiling.port, "frames": ceiling.frames, "bytes": ceiling.bytes, "duration_ns": duration_ns }),
    ))
}
