//! `netctl profile`: guest instructions (deterministic mode) and time charged to each layer of the network path, with
//! the frames they moved.

use alloc::string::String;

use serde_json::{json, Map, Value};
use sis_platform::profile::{self, Layer, Snapshot};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::link::with_net;
use super::Kernel;
use crate::format;

/// Error code: profiling was not started.
pub const NOT_STARTED: &str = "profile-not-started";

/// `netctl profile`.
pub const PROFILE: CommandSpec<Kernel> = CommandSpec {
    name: "profile",
    summary: "Guest time and instructions per layer (interrupts, scheduler, idle, network thread, smoltcp, copies, driver) and the frames moved",
    description: "Charges the time passed (the virtual counter) and, in deterministic mode (-icount, where QEMU's PMU counts them), the instructions retired to the layer the CPU is in: interrupt handlers, the scheduler, the idle thread, the network thread's loop, smoltcp (poll, ingress of a frame, egress of a frame), payload copies between sockets and services, frame copies, and the fault layer plus virtio-net driver (receive, transmit). In real time the time is where the wall clock goes (an instruction's cost under TCG varies, a device register access costs far more); each mark then also reads the counter, which the profile's own figures include. Counts run from --start and only grow: take two readings and subtract. Beside them: frames and TCP payload segments through the stack, and the driver's interrupts. Fails with profile-not-started before --start.",
    args: &[ArgSpec::flag("start", ValueKind::Switch, "start counting (idempotent)")],
    subcommands: &[],
    handler: Some(profile_command),
};

/// The layers' counts as a JSON object keyed by layer name.
pub fn layers_json(values: &[u64]) -> Value {
    let mut object = Map::new();
    for layer in Layer::ALL {
        object.insert(String::from(layer.name()), json!(values[layer as usize]));
    }
    Value::Object(object)
}

/// A snapshot of a running profile, or an error when it was not started.
pub fn running_snapshot() -> Result<Snapshot, ShellError> {
    let snapshot = profile::snapshot();
    if snapshot.timing {
        Ok(snapshot)
    } else {
        Err(ShellError::new(NOT_STARTED, "profiling was not started: run `netctl profile --start`"))
    }
}

fn profile_command(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    with_net(|_| Ok(()))?;
    if invocation.args.switch("start") {
        profile::start();
    }
    let snapshot = running_snapshot()?;
    // Calibrated once per reading, after the snapshot (its marks are charged to this command's layer).
    let mark_cost_ns = profile::mark_cost_ns();
    let (frames, interrupts) = with_net(|net| Ok((net.stack.frame_counts(), net.driver().stats().interrupts)))?;
    let total = snapshot.total().max(1);
    let total_ns = snapshot.nanoseconds.iter().sum::<u64>().max(1);
    let mut human = alloc::format!(
        "layer                 instructions      share       time      share   entries{}\n",
        if snapshot.counting { "" } else { "  (instructions: deterministic mode only)" }
    );
    for layer in Layer::ALL {
        let instructions = snapshot.of(layer);
        let nanoseconds = snapshot.nanoseconds[layer as usize];
        human.push_str(&alloc::format!(
            "{:<20} {:>14} {:>9.1} % {:>10} {:>7.1} % {:>9}\n",
            layer.name(),
            format::thousands(instructions),
            instructions as f64 * 100.0 / total as f64,
            format::milliseconds(nanoseconds),
            nanoseconds as f64 * 100.0 / total_ns as f64,
            format::thousands(snapshot.entries[layer as usize]),
        ));
    }
    human.push_str(&alloc::format!(
        "one mark (a layer change) costs about {} ns now; each layer's time includes one per entry\n",
        mark_cost_ns
    ));
    human.push_str(&alloc::format!(
        "frames  {} received ({} with TCP payload, {}), {} sent ({} with TCP payload, {}); {} device interrupts",
        format::thousands(frames.received_frames),
        format::thousands(frames.received_payload_segments),
        format::bytes(frames.received_payload_bytes),
        format::thousands(frames.transmitted_frames),
        format::thousands(frames.transmitted_payload_segments),
        format::bytes(frames.transmitted_payload_bytes),
        format::thousands(interrupts),
    ));
    Ok(Reply::new(
        human,
        json!({
            "counting": snapshot.counting,
            "instructions": layers_json(&snapshot.instructions),
            "nanoseconds": layers_json(&snapshot.nanoseconds),
            "mark_cost_ns": mark_cost_ns,
            "entries": layers_json(&snapshot.entries),
            "frames": {
                "received_frames": frames.received_frames,
                "transmitted_frames": frames.transmitted_frames,
                "received_payload_segments": frames.received_payload_segments,
                "transmitted_payload_segments": frames.transmitted_payload_segments,
                "received_payload_bytes": frames.received_payload_bytes,
                "transmitted_payload_bytes": frames.transmitted_payload_bytes,
                "transmit_refusals": frames.transmit_refusals,
            },
            "device_interrupts": interrupts,
        }),
    ))
}
