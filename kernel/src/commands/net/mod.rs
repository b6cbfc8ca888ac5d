//! `netctl`: the virtio-net device, the smoltcp stack and its TCP echo service: status, stats, ping, fault.

mod ceiling;
mod fault;
pub mod link;
pub mod profile;

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_net::{PingError, ECHO_PORT};
use sis_platform::{thread, time};
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::format;
use link::{with_net, Net};

/// Most echo requests one `ping` sends.
const MAX_PING_COUNT: u64 = 100;
/// Most payload bytes of one echo request.
const MAX_PING_PAYLOAD: u64 = 1024;
/// Error code: no echo request was answered.
pub const NO_REPLY: &str = "no-reply";
/// Error code: the ICMP socket refused the request.
pub const PING_REFUSED: &str = "ping-refused";

/// Parses a dotted IPv4 address (four decimal octets, no name lookup).
pub fn parse_ipv4(text: &str) -> Result<[u8; 4], String> {
    let refuse =
        || alloc::format!("'{text}' is not an IPv4 address like 10.0.2.2 (four numbers 0-255; no name lookup)");
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in octets.iter_mut() {
        let part = parts.next().ok_or_else(refuse)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(refuse());
        }
        *octet = part.parse::<u8>().map_err(|_| refuse())?;
    }
    if parts.next().is_some() {
        return Err(refuse());
    }
    Ok(octets)
}

fn parse_host(text: &str) -> Result<ArgValue, String> {
    parse_ipv4(text).map(|_| ArgValue::Str(String::from(text)))
}

const HOST: ValueKind = ValueKind::Custom { value_name: "HOST", parse: parse_host };

/// `netctl`.
pub static NETCTL: CommandSpec<Kernel> = CommandSpec {
    name: "netctl",
    summary: "The virtio-net device and smoltcp stack: status, stats, ping, fault injection",
    description: "The interface is 10.0.2.15/24 with gateway 10.0.2.2 (QEMU user networking). A kernel thread polls smoltcp with the kernel clock, sleeping until its next timer (at most 10 ms) or the device's interrupt. A TCP echo service listens on port 7 (4 connections at a time, any number in sequence). Frames pass a fault injector between smoltcp and the driver. Without a network device every subcommand but status fails with no-device.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Show the device, addresses, echo service and faults in force (or that there is no device)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "stats",
            summary: "Show frame, driver, fault and echo counters",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(stats),
        },
        CommandSpec {
            name: "ping",
            summary: "Send ICMP echo requests to HOST and report the measured round-trip times",
            description: "Requests go one at a time: the next leaves when the reply arrived or the timeout passed. The round trip is timed from queuing the request to seeing its reply (the network thread's poll included). Fails with no-reply when no request was answered (the report is still printed).",
            args: &[
                ArgSpec::positional("host", HOST, "IPv4 address, e.g. 10.0.2.2").required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_PING_COUNT }, "requests").default("4"),
                ArgSpec::flag("timeout-ms", ValueKind::U64 { min: 1, max: 10_000 }, "wait per request, ms")
                    .default("1000"),
                ArgSpec::flag("size", ValueKind::U64 { min: 0, max: MAX_PING_PAYLOAD }, "payload bytes").default("32"),
            ],
            subcommands: &[],
            handler: Some(ping),
        },
        fault::FAULT,
        profile::PROFILE,
        ceiling::CEILING,
    ],
    handler: None,
};

fn ipv4(octets: [u8; 4]) -> String {
    alloc::format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3])
}

fn mac(octets: [u8; 6]) -> String {
    let parts: Vec<String> = octets.iter().map(|byte| alloc::format!("{byte:02x}")).collect();
    parts.join(":")
}

fn status(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    if !link::attached() {
        let network_devices = kernel.virtio_devices.iter().filter(|device| device.device_id == 1).count();
        return Ok(Reply::new(
            alloc::format!(
                "no network device attached ({} virtio device(s) on {} transport(s))",
                kernel.virtio_devices.len(),
                kernel.virtio_slots
            ),
            json!({ "attached": false, "virtio_transports": kernel.virtio_slots, "virtio_network_devices": network_devices }),
        ));
    }
    with_net(|net| {
        let now = time::now_ns();
        let config = net.stack.config();
        let faults = net.faults().state(now);
        let echo = net.stack.echo_stats();
        let states = net.stack.echo_states();
        let partition_remaining_ns = faults.partition_until_ns.map_or(0, |until| until.saturating_sub(now));
        let driver = net.driver();
        let human = alloc::format!(
            "virtio-net at {:#x} (interrupt {}), MAC {}\n\
             address {}/{} gateway {} (static, QEMU user networking)\n\
             echo    TCP port {ECHO_PORT}: {} connection(s) so far, {} active, {} echoed; sockets {}\n\
             faults  partition {}, drop {} % (seed {}), corrupt {} % (seed {})",
            driver.base(),
            driver.intid(),
            mac(config.mac),
            ipv4(config.address),
            config.prefix_len,
            ipv4(config.gateway),
            echo.connections,
            echo.active,
            format::bytes(echo.bytes_echoed),
            states.join(", "),
            if partition_remaining_ns > 0 {
                format::milliseconds(partition_remaining_ns)
            } else {
                String::from("none")
            },
            faults.drop_percent,
            faults.drop_seed,
            faults.corrupt_percent,
            faults.corrupt_seed,
        );
        Ok(Reply::new(
            human,
            json!({
                "attached": true,
                "base": driver.base(),
                "intid": driver.intid(),
                "mac": mac(config.mac),
                "address": ipv4(config.address),
                "prefix_len": config.prefix_len,
                "gateway": ipv4(config.gateway),
                "echo": {
                    "port": ECHO_PORT,
                    "connections": echo.connections,
                    "active": echo.active,
                    "bytes_echoed": echo.bytes_echoed,
                    "socket_states": states,
                },
                "faults": {
                    "partition_remaining_ns": partition_remaining_ns,
                    "drop_percent": faults.drop_percent,
                    "drop_seed": faults.drop_seed,
                    "corrupt_percent": faults.corrupt_percent,
                    "corrupt_seed": faults.corrupt_seed,
                },
            }),
        ))
    })
}

fn stats(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    with_net(|net| {
        let link = net.faults().stats();
        let driver = net.driver().stats();
        let echo = net.stack.echo_stats();
        let human = alloc::format!(
            "link    {} frames in ({}), {} frames out ({})\n\
             faults  {} dropped (random), {} dropped (partition), {} corrupted, {} send failures\n\
             driver  {} received, {} transmitted, {} receive errors, {} transmit errors, {} interrupts, {} notifications\n\
             thread  {} polls, {} early wakes\n\
             echo    {} connection(s), {} active, {} bytes echoed",
            format::thousands(link.received_frames),
            format::bytes(link.received_bytes),
            format::thousands(link.transmitted_frames),
            format::bytes(link.transmitted_bytes),
            link.dropped_random,
            link.dropped_partition,
            link.corrupted,
            link.transmit_failures,
            format::thousands(driver.received_frames),
            format::thousands(driver.transmitted_frames),
            driver.receive_errors,
            driver.transmit_errors,
            format::thousands(driver.interrupts),
            format::thousands(driver.notifications),
            format::thousands(net.stack.polls()),
            format::thousands(net.early_wakes),
            echo.connections,
            echo.active,
            format::thousands(echo.bytes_echoed),
        );
        Ok(Reply::new(
            human,
            json!({
                "link": {
                    "received_frames": link.received_frames,
                    "received_bytes": link.received_bytes,
                    "transmitted_frames": link.transmitted_frames,
                    "transmitted_bytes": link.transmitted_bytes,
                    "dropped_random": link.dropped_random,
                    "dropped_partition": link.dropped_partition,
                    "corrupted": link.corrupted,
                    "transmit_failures": link.transmit_failures,
                },
                "driver": {
                    "received_frames": driver.received_frames,
                    "transmitted_frames": driver.transmitted_frames,
                    "receive_errors": driver.receive_errors,
                    "transmit_errors": driver.transmit_errors,
                    "interrupts": driver.interrupts,
                    "notifications": driver.notifications,
                },
                "polls": net.stack.polls(),
                "early_wakes": net.early_wakes,
                "echo": { "connections": echo.connections, "active": echo.active, "bytes_echoed": echo.bytes_echoed },
            }),
        ))
    })
}

/// One request's outcome: the round trip, or none when it timed out.
pub fn ping_once(target: [u8; 4], sequence: u16, payload: &[u8], timeout_ns: u64) -> Result<Option<u64>, ShellError> {
    let me = thread::current_id();
    let sent_at = time::now_ns();
    with_net(|net| {
        net.stack.ping_discard();
        net.stack.ping_send(target, sequence, payload).map_err(|error| {
            let code = if error == PingError::Unaddressable { sis_shell::codes::INVALID_VALUE } else { PING_REFUSED };
            ShellError::new(code, alloc::format!("cannot ping {}: {error}", ipv4(target)))
        })
    })?;
    link::kick();
    let deadline = sent_at.saturating_add(timeout_ns);
    loop {
        let mut answered = false;
        let check = |net: &mut Net| {
            while let Some(reply) = net.stack.ping_receive() {
                if reply.from == target && reply.sequence == sequence && reply.payload == payload {
                    return true;
                }
            }
            false
        };
        thread::sleep_until_ns_or_woken(deadline, || {
            let _ = with_net(|net| {
                answered = check(net);
                net.poll_waiter = Some(me);
                Ok(())
            });
            answered
        });
        let received_at = time::now_ns();
        if answered || with_net(|net| Ok(check(net)))? {
            return Ok(Some(received_at.saturating_sub(sent_at)));
        }
        if received_at >= deadline {
            return Ok(None);
        }
    }
}

fn ping(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let host = invocation.args.str("host").unwrap_or("");
    let target = parse_ipv4(host).map_err(|reason| ShellError::new(sis_shell::codes::INVALID_VALUE, reason))?;
    let count = invocation.args.u64("count").unwrap_or(4);
    let timeout_ms = invocation.args.u64("timeout-ms").unwrap_or(1000);
    let size = invocation.args.u64("size").unwrap_or(32) as usize;
    with_net(|_| Ok(()))?;
    let mut round_trips: Vec<Option<u64>> = Vec::new();
    let mut human = String::new();
    for sequence in 0..count as u16 {
        let payload: Vec<u8> = (0..size).map(|index| (index as u8).wrapping_add(sequence as u8)).collect();
        let outcome = ping_once(target, sequence, &payload, timeout_ms * 1_000_000)?;
        human.push_str(&match outcome {
            Some(rtt) => {
                alloc::format!("{size} bytes from {}: seq={sequence} time={}\n", host, format::milliseconds(rtt))
            }
            None => alloc::format!("no reply from {host}: seq={sequence} (timeout {timeout_ms} ms)\n"),
        });
        round_trips.push(outcome);
    }
    let mut answered: Vec<u64> = round_trips.iter().flatten().copied().collect();
    answered.sort_unstable();
    let received = answered.len() as u64;
    let summary = if answered.is_empty() {
        json!(null)
    } else {
        let sum: u64 = answered.iter().sum();
        json!({
            "min_ns": answered[0],
            "avg_ns": sum / received,
            "p50_ns": answered[(answered.len() - 1) / 2],
            "max_ns": answered[answered.len() - 1],
        })
    };
    human.push_str(&alloc::format!("{count} sent, {received} received, {} lost", count - received));
    if let (Some(min), Some(max)) = (answered.first(), answered.last()) {
        let avg = answered.iter().sum::<u64>() / received;
        human.push_str(&alloc::format!(
            "; round trip min {} avg {} max {}",
            format::milliseconds(*min),
            format::milliseconds(avg),
            format::milliseconds(*max)
        ));
    }
    let replies: Vec<Value> =
        round_trips.iter().enumerate().map(|(sequence, rtt)| json!({ "seq": sequence, "rtt_ns": rtt })).collect();
    let reply = Reply::new(
        human,
        json!({
            "host": host,
            "count": count,
            "size": size,
            "timeout_ms": timeout_ms,
            "sent": count,
            "received": received,
            "lost": count - received,
            "replies": replies,
            "rtt": summary,
        }),
    );
    if received == 0 {
        return Ok(reply.failing(ShellError::new(
            NO_REPLY,
            alloc::format!("no reply from {host} to {count} echo request(s) within {timeout_ms} ms each"),
        )));
    }
    Ok(reply)
}
