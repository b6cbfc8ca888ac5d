//! QEMU tests of virtio-net, the TCP echo service and `netctl`: exact echoes from the host through the forwarded
//! port, a partition that stops traffic and lets the same connection resume, malformed streams and bad arguments
//! that change nothing, and a boot without a network device.

mod common;

use common::{error_code, number, ok};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use sis_hal::SeededRandom;
use sis_testing::{QemuConfig, Sis};

/// The guest's echo port.
const ECHO_PORT: u16 = 7;

fn boot_with_network() -> (Sis, SocketAddr) {
    let config = QemuConfig::new().user_network_free_port(ECHO_PORT).unwrap();
    let address = config.forwarded_address().unwrap();
    let sis = Sis::boot(&config).unwrap_or_else(|error| panic!("boot: {error}"));
    (sis, address)
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Writes `payload` and reads back exactly as many bytes.
fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    stream.write_all(payload).unwrap();
    let mut back = vec![0; payload.len()];
    stream.read_exact(&mut back).unwrap();
    back
}

fn seeded_payload(random: &mut SeededRandom, bytes: usize) -> Vec<u8> {
    (0..bytes).map(|_| random.next_u64() as u8).collect()
}

/// Waits (up to 10 s) until every echo socket listens again.
fn wait_all_listening(sis: &mut Sis) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = ok(sis, "netctl status");
        if status["echo"]["socket_states"] == serde_json::json!(["listen", "listen", "listen", "listen"]) {
            return status;
        }
        assert!(Instant::now() < deadline, "echo sockets never all listened again: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_thousand_echo_round_trips_from_the_host_return_exactly_what_was_sent() {
    let (mut sis, address) = boot_with_network();
    let status = ok(&mut sis, "netctl status");
    assert_eq!(status["attached"], true);
    assert_eq!(
        (&status["address"], &status["prefix_len"], &status["gateway"], &status["mac"]),
        (&"10.0.2.15".into(), &24.into(), &"10.0.2.2".into(), &"52:54:00:12:34:56".into())
    );
    assert_eq!(number(&status, "/echo/port"), 7);
    assert_eq!(number(&status, "/echo/connections"), 0);

    let ping = ok(&mut sis, "netctl ping 10.0.2.2 --count 3");
    assert_eq!((number(&ping, "/sent"), number(&ping, "/received"), number(&ping, "/lost")), (3, 3, 0));
    for reply in ping["replies"].as_array().unwrap() {
        let rtt_ns = number(reply, "/rtt_ns");
        assert!(rtt_ns > 0 && rtt_ns < 1_000_000_000, "{reply}");
    }
    assert!(number(&ping, "/rtt/min_ns") <= number(&ping, "/rtt/p50_ns"));
    assert!(number(&ping, "/rtt/p50_ns") <= number(&ping, "/rtt/max_ns"));

    let mut random = SeededRandom::new(8);
    let mut sent_bytes = 0u64;
    for connection in 0..4 {
        let mut stream = connect(address);
        for index in 0..250 {
            let size = random.log_uniform(1, 16 * 1024) as usize;
            let payload = seeded_payload(&mut random, size);
            assert_eq!(round_trip(&mut stream, &payload), payload, "connection {connection}, round trip {index}");
            sent_bytes += size as u64;
        }
    }
    let status = wait_all_listening(&mut sis);
    assert_eq!(number(&status, "/echo/connections"), 4);
    assert_eq!(number(&status, "/echo/bytes_echoed"), sent_bytes);
    let stats = ok(&mut sis, "netctl stats");
    assert_eq!(number(&stats, "/echo/bytes_echoed"), sent_bytes);
    for counter in ["dropped_random", "dropped_partition", "corrupted", "transmit_failures"] {
        assert_eq!(number(&stats, &format!("/link/{counter}")), 0, "{counter}");
    }
    assert_eq!(number(&stats, "/driver/receive_errors"), 0);
    assert_eq!(number(&stats, "/link/received_frames"), number(&stats, "/driver/received_frames"));
    assert!(number(&stats, "/driver/interrupts") > 0);
    // Posting a receive buffer again tells the device nothing while it has others (at most 12 frames are in flight
    // here, against 32 buffers): notifications come from the 32 buffers posted at start and from sends.
    let (notifications, sent) = (number(&stats, "/driver/notifications"), number(&stats, "/driver/transmitted_frames"));
    assert!(number(&stats, "/driver/received_frames") > 1_000, "{stats}");
    assert!(notifications <= sent + 32, "{notifications} notifications for {sent} frames sent: {stats}");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn during_a_two_second_partition_traffic_stops_and_the_same_connection_resumes_after() {
    let (mut sis, address) = boot_with_network();
    let mut stream = connect(address);
    assert_eq!(round_trip(&mut stream, b"before"), b"before");
    let partition = ok(&mut sis, "netctl fault partition 2000");
    let started = Instant::now();
    assert_eq!(number(&partition, "/partition_ms"), 2000);
    stream.write_all(b"during").unwrap();
    // Wait for a reply until shortly before the partition ends: none may come.
    let window = Duration::from_millis(1800).saturating_sub(started.elapsed());
    stream.set_read_timeout(Some(window)).unwrap();
    let mut byte = [0u8; 1];
    let error = stream.read(&mut byte).expect_err("a reply arrived inside the partition");
    assert!(matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{error}");
    assert!(started.elapsed() < Duration::from_millis(2000), "the window ended inside the partition");
    let faults = ok(&mut sis, "netctl status")["faults"].clone();
    assert!(number(&faults, "/partition_remaining_ns") > 0, "{faults}");

    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut back = [0u8; 6];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"during");
    assert!(started.elapsed() >= Duration::from_millis(2000), "the reply came after the partition");
    for index in 0..20u8 {
        let payload = vec![index; 100 + index as usize];
        assert_eq!(round_trip(&mut stream, &payload), payload);
    }
    let status = ok(&mut sis, "netctl status");
    assert_eq!(number(&status, "/faults/partition_remaining_ns"), 0);
    assert_eq!(number(&status, "/echo/connections"), 1, "the same connection, nothing restarted");
    let stats = ok(&mut sis, "netctl stats");
    assert!(number(&stats, "/link/dropped_partition") > 0, "{stats}");
    assert_eq!(number(&stats, "/link/dropped_random"), 0);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn malformed_streams_and_bad_arguments_get_clear_errors_and_the_echo_keeps_working() {
    let (mut sis, address) = boot_with_network();
    let mut random = SeededRandom::new(21);
    // Garbage, then gone without reading the echo: the guest's replies meet a closed socket.
    let mut garbage = connect(address);
    garbage.write_all(&seeded_payload(&mut random, 64 * 1024)).unwrap();
    drop(garbage);
    // Closed mid-stream with a reset: the echo is left unread, so the host's close sends RST (RFC 2525, 2.17).
    let mut half = connect(address);
    half.write_all(&seeded_payload(&mut random, 3000)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(half);
    // Connected and closed with nothing sent.
    connect(address).shutdown(Shutdown::Both).unwrap();
    // A huge write, read concurrently: 8 MiB echoed exactly.
    let huge = seeded_payload(&mut random, 8 << 20);
    let mut stream = connect(address);
    let mut reader = stream.try_clone().unwrap();
    let expected = huge.len();
    let reading = std::thread::spawn(move || {
        let mut back = vec![0; expected];
        reader.read_exact(&mut back).map(|_| back)
    });
    stream.write_all(&huge).unwrap();
    assert!(reading.join().unwrap().unwrap() == huge, "8 MiB came back different");
    drop(stream);

    let before = wait_all_listening(&mut sis);
    let faults_before = before["faults"].clone();
    let refused = [
        ("netctl ping 10.0.2", "invalid-value"),
        ("netctl ping 10.0.2.256", "invalid-value"),
        ("netctl ping gateway.example", "invalid-value"),
        ("netctl ping 10.0.2.2 --count 0", "out-of-range"),
        ("netctl ping 10.0.2.2 --count 101", "out-of-range"),
        ("netctl ping 10.0.2.2 --size 1025", "out-of-range"),
        ("netctl ping", "missing-argument"),
        ("netctl fault drop 101", "out-of-range"),
        ("netctl fault drop ten", "invalid-value"),
        ("netctl fault corrupt -1", "invalid-value"),
        ("netctl fault partition 0", "out-of-range"),
        ("netctl fault partition 600001", "out-of-range"),
        ("netctl fault", "missing-argument"),
        ("netctl frobnicate", "unknown-subcommand"),
    ];
    for (line, code) in refused {
        assert_eq!(error_code(&mut sis, line), code, "{line}");
    }
    assert_eq!(
        sis.run("netctl ping 10.0.2.256").unwrap().text,
        "error[invalid-value]: HOST: '10.0.2.256' is not an IPv4 address like 10.0.2.2 (four numbers 0-255; no name lookup) (got '10.0.2.256')\n"
    );
    assert_eq!(ok(&mut sis, "netctl status")["faults"], faults_before, "refused commands changed the faults");

    let mut stream = connect(address);
    for index in 0..50 {
        let payload = seeded_payload(&mut random, 1 + index * 97);
        assert_eq!(round_trip(&mut stream, &payload), payload);
    }
    drop(stream);
    let status = wait_all_listening(&mut sis);
    assert_eq!(number(&status, "/echo/connections"), 5);

    // Drops and corruption cost retransmissions, never bytes; a ping through a total drop fails with no-reply.
    ok(&mut sis, "netctl fault drop 10 --seed 3");
    ok(&mut sis, "netctl fault corrupt 10 --seed 4");
    let mut stream = connect(address);
    for index in 0..20 {
        let payload = seeded_payload(&mut random, 200 + index * 50);
        assert_eq!(round_trip(&mut stream, &payload), payload);
    }
    let stats = ok(&mut sis, "netctl stats");
    assert!(number(&stats, "/link/dropped_random") > 0 && number(&stats, "/link/corrupted") > 0, "{stats}");
    ok(&mut sis, "netctl fault drop 100 --seed 5");
    let ping = sis.run_json("netctl ping 10.0.2.2 --count 2 --timeout-ms 200").unwrap();
    assert_eq!(ping["error"]["code"], "no-reply", "{ping}");
    assert_eq!((number(&ping, "/received"), number(&ping, "/lost")), (0, 2));
    let cleared = ok(&mut sis, "netctl fault clear");
    assert_eq!(cleared["cleared"], true);
    let faults = ok(&mut sis, "netctl status")["faults"].clone();
    assert_eq!((number(&faults, "/drop_percent"), number(&faults, "/corrupt_percent")), (0, 0));
    assert_eq!(round_trip(&mut stream, b"after clear"), b"after clear");
    assert_eq!(number(&ok(&mut sis, "netctl ping 10.0.2.2 --count 1"), "/received"), 1);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn without_a_network_device_status_says_so_and_every_other_subcommand_refuses() {
    let mut sis = Sis::boot(&QemuConfig::new()).unwrap();
    let status = ok(&mut sis, "netctl status");
    assert_eq!(status["attached"], false);
    assert_eq!(number(&status, "/virtio_network_devices"), 0);
    assert_eq!(
        sis.run("netctl status").unwrap().text,
        "no network device attached (0 virtio device(s) on 32 transport(s))\n"
    );
    for line in [
        "netctl stats",
        "netctl ping 10.0.2.2",
        "netctl fault drop 5",
        "netctl fault corrupt 5",
        "netctl fault partition 10",
        "netctl fault clear",
        "netctl profile --start",
    ] {
        assert_eq!(error_code(&mut sis, line), "no-device", "{line}");
    }
    let human = sis.run("netctl ping 10.0.2.2").unwrap();
    assert!(
        human.text.starts_with("error[no-device]: no network device: QEMU was started without virtio-net"),
        "{human}"
    );
    assert_eq!(error_code(&mut sis, "netctl ping 10.0.2"), "invalid-value", "arguments are checked first");
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_profile_charges_time_always_and_instructions_in_deterministic_mode_to_the_network_layers() {
    // Real time: the PMU does not count instructions, so the profile counts time only; every nanosecond between two
    // readings is charged to some layer, and the echo's layers got some of it.
    let (mut sis, address) = boot_with_network();
    assert_eq!(error_code(&mut sis, "netctl profile"), "profile-not-started");
    let before = ok(&mut sis, "netctl profile --start");
    assert_eq!(before["counting"], false);
    let host_started = Instant::now();
    let mut stream = connect(address);
    let mut random = SeededRandom::new(4);
    let payload = seeded_payload(&mut random, 100_000);
    assert!(round_trip(&mut stream, &payload) == payload);
    let host_echo = host_started.elapsed();
    let after = ok(&mut sis, "netctl profile");
    let host_between = host_started.elapsed();
    let grew = |pointer: &str| number(&after, pointer) - number(&before, pointer);
    let layers: Vec<String> = after["nanoseconds"].as_object().unwrap().keys().cloned().collect();
    assert!(layers.iter().all(|layer| after["instructions"][layer] == 0), "{after}");
    assert!(number(&after, "/mark_cost_ns") > 0, "a mark costs time: {after}");
    let charged: u64 = layers.iter().map(|layer| grew(&format!("/nanoseconds/{layer}"))).sum();
    assert!(charged as u128 >= host_echo.as_nanos() * 9 / 10, "{charged} ns charged over a {host_echo:?} echo");
    assert!(charged as u128 <= host_between.as_nanos() * 11 / 10 + 50_000_000, "{charged} ns in {host_between:?}");
    for layer in ["smoltcp_ingress", "smoltcp_egress", "net_device_receive", "net_device_transmit", "idle"] {
        assert!(grew(&format!("/nanoseconds/{layer}")) > 0, "{layer}: {after}");
    }
    drop(sis);

    let config = QemuConfig::new().user_network_free_port(ECHO_PORT).unwrap().deterministic();
    let address = config.forwarded_address().unwrap();
    let mut sis = Sis::boot(&config).unwrap();
    let before = ok(&mut sis, "netctl profile --start");
    assert_eq!(before["counting"], true);
    let mut stream = connect(address);
    let mut random = SeededRandom::new(3);
    let payload = seeded_payload(&mut random, 100_000);
    assert!(round_trip(&mut stream, &payload) == payload);
    let after = ok(&mut sis, "netctl profile");
    let grew = |pointer: &str| number(&after, pointer) - number(&before, pointer);
    // Every payload byte came in once and went out once (no faults on this link), in segments of at most 1,460.
    assert_eq!(grew("/frames/received_payload_bytes"), 100_000);
    assert_eq!(grew("/frames/transmitted_payload_bytes"), 100_000);
    assert!(grew("/frames/received_payload_segments") > 100_000 / 1_460, "{after}");
    for layer in
        ["smoltcp_ingress", "smoltcp_egress", "socket_copy", "frame_copy", "net_device_receive", "net_device_transmit"]
    {
        // Each payload segment passes each of these layers: at least a hundred instructions a segment in each.
        assert!(
            grew(&format!("/instructions/{layer}")) > 100 * grew("/frames/received_payload_segments"),
            "{layer}: {after}"
        );
    }
    // Interrupts, wake-ups and polls each serve several frames, but none of them is free.
    for layer in ["smoltcp_poll", "net_thread", "interrupt", "scheduler"] {
        assert!(grew(&format!("/instructions/{layer}")) > 1_000, "{layer}: {after}");
    }
    assert!(grew("/entries/smoltcp_ingress") >= grew("/frames/received_frames"), "{after}");
    // One entry to the interrupt layer takes every interrupt pending at the GIC, so it may take several.
    assert!(grew("/device_interrupts") > 0 && grew("/entries/interrupt") > 0, "{after}");
}
