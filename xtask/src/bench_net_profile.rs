//! `cargo xtask bench net --profile`: where the guest's instructions go per frame, per round trip and per TCP
//! segment of payload, by layer, in deterministic mode (QEMU `-icount`, where the PMU counts instructions exactly);
//! with `--real-time`, where the guest's time goes instead (the virtual counter, in real time: the wall clock the
//! timed bench sees, including what device accesses and exits to QEMU cost, and the idle thread's share).
//!
//! SIS boots once (with `-icount` unless real time); `netctl profile --start` starts the count. Each phase (the round trips, then the
//! bulk echo, both driven by the same client code as the timed bench) is bracketed by two readings of `netctl
//! profile --json`, and what the phase added is divided by what it moved. The command's own instructions fall
//! into layer `other` (the shell thread) and are left out of the per-frame figures.

use std::collections::BTreeMap;

use serde_json::Value;
use sis_testing::{QemuConfig, Sis};

/// Layers in the order of the table; `other` (the shell, the reading itself) is printed but not divided.
const LAYERS: [&str; 12] = [
    "interrupt",
    "scheduler",
    "idle",
    "net_thread",
    "smoltcp_poll",
    "smoltcp_ingress",
    "smoltcp_egress",
    "socket_copy",
    "frame_copy",
    "net_device_receive",
    "net_device_transmit",
    "other",
];

/// One phase's additions: instructions (or nanoseconds) per layer and the frames moved.
#[derive(Debug, Default)]
struct Phase {
    counts: BTreeMap<String, u64>,
    entries: BTreeMap<String, u64>,
    frames: BTreeMap<String, u64>,
    interrupts: u64,
}

fn reading(sis: &mut Sis, start: bool) -> Result<Value, String> {
    let line = if start { "netctl profile --start --json" } else { "netctl profile --json" };
    let reply = sis.run_json(line).map_err(|error| format!("`{line}`: {error}"))?;
    if reply["ok"] != true {
        return Err(format!("`{line}` failed: {reply}"));
    }
    Ok(reply)
}

fn difference(after: &Value, before: &Value, counted: &str) -> Phase {
    let table = |key: &str| -> BTreeMap<String, u64> {
        after[key]
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .map(|(name, value)| {
                        let was = before[key][name].as_u64().unwrap_or(0);
                        (name.clone(), value.as_u64().unwrap_or(0).saturating_sub(was))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let interrupts =
        after["device_interrupts"].as_u64().unwrap_or(0) - before["device_interrupts"].as_u64().unwrap_or(0);
    Phase { counts: table(counted), entries: table("entries"), frames: table("frames"), interrupts }
}

/// Boots SIS (deterministic unless `real_time`) and prints the per-layer breakdown of `round_trips` echoes and a
/// `bulk_mib` bulk echo: instructions, or with `real_time` nanoseconds.
pub fn run(round_trips: u32, payload_bytes: usize, bulk_mib: u64, real_time: bool) -> Result<(), String> {
    if real_time {
        println!(
            "guest time by layer, real time (the virtual counter; the profile's own marks included): {round_trips} \
             round trips of {payload_bytes} B, then {bulk_mib} MiB bulk echo"
        );
    } else {
        println!(
            "guest instructions by layer, deterministic mode (QEMU -icount, PMU INST_RETIRED): {round_trips} round \
             trips of {payload_bytes} B, then {bulk_mib} MiB bulk echo"
        );
    }
    let config = QemuConfig::new().user_network_free_port(7).map_err(|error| error.to_string())?;
    let config = if real_time { config } else { config.deterministic() };
    let (counted, unit_name) = if real_time { ("nanoseconds", "ns") } else { ("instructions", "instructions") };
    let address = config.forwarded_address().ok_or("no forwarded port")?;
    let mut sis = Sis::boot(&config).map_err(|error| format!("boot: {error}"))?;
    let start = reading(&mut sis, true)?;
    let (p50, p99) = crate::bench_net::round_trip_percentiles(address, round_trips, payload_bytes)?;
    let after_round_trips = reading(&mut sis, false)?;
    let bulk_rate = crate::bench_net::bulk(address, bulk_mib)?;
    let after_bulk = reading(&mut sis, false)?;
    drop(sis);
    if real_time {
        println!("(host-side, profile on: round trip p50 {p50:.1} us, p99 {p99:.1} us, bulk {bulk_rate:.1} MiB/s)");
    } else {
        println!("(host-side wall clock under -icount, not comparable with real time: round trip p50 {p50:.1} us, p99 {p99:.1} us, bulk {bulk_rate:.1} MiB/s)");
    }
    let round_trip = difference(&after_round_trips, &start, counted);
    let bulk = difference(&after_bulk, &after_round_trips, counted);
    // The median of the three readings' calibrations (each taken as the reading was made).
    let mark_cost_ns = if real_time {
        let mut costs: Vec<u64> = [&start, &after_round_trips, &after_bulk]
            .iter()
            .map(|reading| reading["mark_cost_ns"].as_u64().unwrap_or(0))
            .collect();
        costs.sort_unstable();
        println!("one mark costs {} ns (calibrations at the three readings: {costs:?}); \"less marks\" subtracts one per entry", costs[1]);
        costs[1]
    } else {
        0
    };
    let report = |title: &str, phase: &Phase, units: f64, unit: &str| {
        print_phase(title, phase, units, unit, unit_name, mark_cost_ns)
    };
    report(&format!("{round_trips} round trips"), &round_trip, f64::from(round_trips), "per round trip");
    let segments = bulk.frames.get("received_payload_segments").copied().unwrap_or(0);
    report(&format!("{bulk_mib} MiB bulk"), &bulk, segments as f64, "per payload segment received");
    Ok(())
}

fn print_phase(title: &str, phase: &Phase, unit_count: f64, unit: &str, unit_name: &str, mark_cost_ns: u64) {
    let frame = |key: &str| phase.frames.get(key).copied().unwrap_or(0);
    let (received, sent) = (frame("received_frames"), frame("transmitted_frames"));
    println!(
        "\n{title}: {received} frames received ({} with payload, {} B), {sent} sent ({} with payload, {} B), {} device \
         interrupts",
        frame("received_payload_segments"),
        frame("received_payload_bytes"),
        frame("transmitted_payload_segments"),
        frame("transmitted_payload_bytes"),
        phase.interrupts
    );
    let everything: u64 = phase.counts.values().sum();
    println!(
        "  {:<20} {:>14} {:>18} {:>14} {:>14} {:>8}{}",
        "layer",
        unit_name,
        unit,
        "per rx frame",
        "per tx frame",
        "share",
        if mark_cost_ns > 0 { format!(" {:>12} {:>10}", "less marks", "entries") } else { String::new() }
    );
    let mut path_total = 0u64;
    let mut path_own = 0u64;
    for layer in LAYERS {
        let count = phase.counts.get(layer).copied().unwrap_or(0);
        let entries = phase.entries.get(layer).copied().unwrap_or(0);
        let own = count.saturating_sub(entries * mark_cost_ns);
        if layer != "other" && layer != "idle" {
            path_total += count;
            path_own += own;
        }
        let corrected = if mark_cost_ns > 0 {
            format!(" {:>12.0} {:>10.1}", own as f64 / unit_count.max(1.0), entries as f64 / unit_count.max(1.0))
        } else {
            String::new()
        };
        println!(
            "  {layer:<20} {count:>14} {:>18.0} {:>14.0} {:>14.0} {:>7.1}%{corrected}",
            count as f64 / unit_count.max(1.0),
            count as f64 / (received.max(1)) as f64,
            count as f64 / (sent.max(1)) as f64,
            count as f64 * 100.0 / everything.max(1) as f64
        );
    }
    if mark_cost_ns > 0 {
        println!("  network path less marks: {:.0} ns {unit}", path_own as f64 / unit_count.max(1.0));
    }
    println!(
        "  {:<20} {path_total:>14} {:>18.0} {:>14.0} {:>14.0}",
        "network path (no idle, no other)",
        path_total as f64 / unit_count.max(1.0),
        path_total as f64 / (received.max(1)) as f64,
        path_total as f64 / (sent.max(1)) as f64
    );
    let by = |names: &[&str]| names.iter().map(|name| phase.counts.get(*name).copied().unwrap_or(0)).sum::<u64>();
    println!(
        "  receive path per received frame (device receive + smoltcp ingress): {:.0}; send path per sent frame \
         (smoltcp egress + device transmit): {:.0}; frame copies per frame (both ways): {:.0}",
        by(&["net_device_receive", "smoltcp_ingress"]) as f64 / received.max(1) as f64,
        by(&["smoltcp_egress", "net_device_transmit"]) as f64 / sent.max(1) as f64,
        by(&["frame_copy"]) as f64 / (received + sent).max(1) as f64,
    );
}
