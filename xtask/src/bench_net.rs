//! `cargo xtask bench net`: TCP echo round trips and bulk throughput from the host into SIS through QEMU user
//! networking, against a host-native echo server measured in the same run.
//!
//! Guest: SIS booted with virtio-net on QEMU user networking (slirp), the
//! echo service on port 7 reached through a `hostfwd` on 127.0.0.1. Peer: an
//! echo server thread in this process on 127.0.0.1 (the host's loopback TCP),
//! driven by the same client code with the same payloads. The ratio is what
//! the emulated path (slirp, virtio-net, smoltcp, TCG) costs over the host's
//! own TCP loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sis_testing::{QemuConfig, Sis};

/// The guest's UDP port the ceiling loop reflects (RFC 863's discard port, put to the opposite use).
const CEILING_GUEST_PORT: u16 = 9;
/// Bytes of UDP payload per ceiling datagram: a full 1,500-byte IPv4 packet, as a full TCP segment is.
const CEILING_DATAGRAM_BYTES: usize = 1472;
/// Datagrams the ceiling client keeps in flight (about 46 KiB, within the 64 KiB echo socket's window).
const CEILING_WINDOW: usize = 32;
/// Seconds each ceiling run lasts.
const CEILING_SECONDS: f64 = 2.0;

/// One run's figures against one server.
#[derive(Debug, Clone, Copy)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    bulk_mib_per_s: f64,
}

/// Measures guest and host `runs` times each; prints per-run figures, medians and ratios.
/// With `linux`, a Linux guest on the same emulated machine is measured too (see [`crate::linux_peer`]).
pub fn run(round_trips: u32, payload_bytes: usize, bulk_mib: u64, runs: u32, linux: bool) -> Result<(), String> {
    println!(
        "TCP echo: {round_trips} round trips of {payload_bytes} B (TCP_NODELAY, one at a time), then {bulk_mib} MiB bulk \
         (written and read concurrently), {runs} runs\n\
         guest: SIS in QEMU (virt, cortex-a72, TCG, real time), virtio-net + smoltcp echo on port 7, QEMU user \
         networking with hostfwd on 127.0.0.1\n\
         host:  an echo thread in this process on 127.0.0.1 (host loopback TCP), same client, same payloads"
    );
    println!(
        "ceiling: the same QEMU, the guest's network thread only turning UDP datagrams around in the driver's \
         buffers (netctl ceiling, no TCP/IP stack), {CEILING_DATAGRAM_BYTES} B datagrams, {CEILING_WINDOW} in flight, \
         {CEILING_SECONDS} s"
    );
    let udp_port = UdpSocket::bind(("127.0.0.1", 0))
        .and_then(|socket| socket.local_addr())
        .map_err(|error| error.to_string())?
        .port();
    let config = QemuConfig::new()
        .user_network_free_port(7)
        .map_err(|error| error.to_string())?
        .udp_forward(udp_port, CEILING_GUEST_PORT);
    let linux_peer = if linux {
        let image = crate::linux_peer::prepare()?;
        println!(
            "linux: Debian's Linux in the same QEMU (same machine, one CPU, TCG, virtio-net on user networking with \
             hostfwd), echo on port 7 by busybox `nc -ll -p 7 -e cat`; packages {}",
            image.packages.join(", ")
        );
        Some(crate::linux_peer::LinuxPeer::boot(&image)?)
    } else {
        None
    };
    let guest_address = config.forwarded_address().ok_or("no forwarded port")?;
    let mut sis = Sis::boot(&config).map_err(|error| format!("boot: {error}"))?;
    let host_address = spawn_host_echo()?;
    let mut guest = Vec::new();
    let mut host = Vec::new();
    let mut ceiling = Vec::new();
    let mut peer = Vec::new();
    for run in 1..=runs {
        let figures = measure(guest_address, round_trips, payload_bytes, bulk_mib)?;
        print_run("guest", run, figures);
        guest.push(figures);
        let figures = measure(host_address, round_trips, payload_bytes, bulk_mib)?;
        print_run("host ", run, figures);
        host.push(figures);
        if let Some(linux) = &linux_peer {
            let figures = measure(linux.address, round_trips, payload_bytes, bulk_mib)?;
            print_run("linux", run, figures);
            peer.push(figures);
        }
        let (rate, p50) = measure_ceiling(&mut sis, SocketAddr::from(([127, 0, 0, 1], udp_port)), round_trips)?;
        println!("  ceil. run {run:>2}: round trip p50 {p50:9.1} us                      {rate:9.1} MiB/s reflected");
        ceiling.push((rate, p50));
    }
    drop(sis);
    drop(linux_peer);
    let median = crate::bench::median_of::<Figures>;
    let (guest_p50, host_p50) = (median(&guest, |f| f.p50_us), median(&host, |f| f.p50_us));
    let (guest_p99, host_p99) = (median(&guest, |f| f.p99_us), median(&host, |f| f.p99_us));
    let (guest_bulk, host_bulk) = (median(&guest, |f| f.bulk_mib_per_s), median(&host, |f| f.bulk_mib_per_s));
    println!("median  guest round trip p50 {guest_p50:9.1} us  p99 {guest_p99:9.1} us  bulk {guest_bulk:9.1} MiB/s");
    println!("median  host  round trip p50 {host_p50:9.1} us  p99 {host_p99:9.1} us  bulk {host_bulk:9.1} MiB/s");
    let ceiling_rate = crate::bench::median_of::<(f64, f64)>(&ceiling, |figures| figures.0);
    let ceiling_p50 = crate::bench::median_of::<(f64, f64)>(&ceiling, |figures| figures.1);
    println!(
        "median  ceiling     round trip p50 {ceiling_p50:9.1} us                      bulk {ceiling_rate:9.1} MiB/s \
         (UDP reflected in the driver)"
    );
    println!(
        "ratio guest / host: p50 {:.1}x, p99 {:.1}x slower; bulk {:.4} of the host's",
        guest_p50 / host_p50,
        guest_p99 / host_p99,
        guest_bulk / host_bulk
    );
    let shares: Vec<f64> =
        guest.iter().zip(&ceiling).map(|(figures, (rate, _))| figures.bulk_mib_per_s / rate).collect();
    let (low, high) = shares.iter().fold((f64::MAX, 0.0f64), |(low, high), &share| (low.min(share), high.max(share)));
    println!(
        "SIS's bulk echo reaches {:.1} % of what this QEMU can move (median of medians; per run {:.1}-{:.1} %); \
         the ceiling is {:.3} of the host's; round trip p50 {:.2}x the ceiling's",
        guest_bulk / ceiling_rate * 100.0,
        low * 100.0,
        high * 100.0,
        ceiling_rate / host_bulk,
        guest_p50 / ceiling_p50
    );
    if !peer.is_empty() {
        let (linux_p50, linux_p99) = (median(&peer, |f| f.p50_us), median(&peer, |f| f.p99_us));
        let linux_bulk = median(&peer, |f| f.bulk_mib_per_s);
        println!(
            "median  linux round trip p50 {linux_p50:9.1} us  p99 {linux_p99:9.1} us  bulk {linux_bulk:9.1} MiB/s \
             ({:.1} % of the ceiling)",
            linux_bulk / ceiling_rate * 100.0
        );
        let bulk_ratios: Vec<f64> =
            guest.iter().zip(&peer).map(|(sis, linux)| sis.bulk_mib_per_s / linux.bulk_mib_per_s).collect();
        let (low, high) =
            bulk_ratios.iter().fold((f64::MAX, 0.0f64), |(low, high), &ratio| (low.min(ratio), high.max(ratio)));
        println!(
            "ratio SIS / Linux on the same QEMU: bulk {:.2}x (per run {low:.2}-{high:.2}x), round trip p50 {:.2}x, \
             p99 {:.2}x",
            guest_bulk / linux_bulk,
            guest_p50 / linux_p50,
            guest_p99 / linux_p99
        );
    }
    Ok(())
}

/// Puts the guest in the ceiling loop, times `round_trips` single 64-byte datagrams, then keeps [`CEILING_WINDOW`]
/// datagrams in flight for [`CEILING_SECONDS`]; returns the MiB/s of payload that came back (each byte went in and
/// out, as in the bulk echo) and the round trip p50 in µs.
fn measure_ceiling(sis: &mut Sis, address: SocketAddr, round_trips: u32) -> Result<(f64, f64), String> {
    let started = sis.run_json(&format!("netctl ceiling start --port {CEILING_GUEST_PORT} --json"));
    let started = started.map_err(|error| format!("netctl ceiling start: {error}"))?;
    if started["ok"] != true {
        return Err(format!("netctl ceiling start failed: {started}"));
    }
    let latency = reflect_one_at_a_time(address, round_trips);
    let measured = reflect_window(address);
    let stopped =
        sis.run_json("netctl ceiling stop --json").map_err(|error| format!("netctl ceiling stop: {error}"))?;
    if stopped["ok"] != true {
        return Err(format!("netctl ceiling stop failed: {stopped}"));
    }
    let (received, elapsed) = measured?;
    let latency_p50_us = latency?;
    let guest_frames = stopped["frames"].as_u64().unwrap_or(0);
    if guest_frames < received {
        return Err(format!("the host received {received} datagrams but the guest reflected {guest_frames}"));
    }
    Ok(((received * CEILING_DATAGRAM_BYTES as u64) as f64 / (1024.0 * 1024.0) / elapsed, latency_p50_us))
}

/// `round_trips` datagrams of 64 B, one at a time (a lost one is sent again after 50 ms, not timed): p50, µs.
fn reflect_one_at_a_time(address: SocketAddr, round_trips: u32) -> Result<f64, String> {
    let io = |error: std::io::Error| format!("{address} (udp): {error}");
    let socket = UdpSocket::bind(("127.0.0.1", 0)).map_err(io)?;
    socket.connect(address).map_err(io)?;
    socket.set_read_timeout(Some(Duration::from_millis(50))).map_err(io)?;
    let request = payload(64, 4);
    let mut back = [0u8; 65];
    let mut latencies_ns = Vec::with_capacity(round_trips as usize);
    let mut losses = 0;
    while latencies_ns.len() < round_trips as usize {
        let started = Instant::now();
        socket.send(&request).map_err(io)?;
        match socket.recv(&mut back) {
            Ok(64) if back[..64] == request[..] => latencies_ns.push(started.elapsed().as_nanos() as u64),
            Ok(_) => return Err(format!("{address}: a reflected datagram differed from what was sent")),
            Err(_) => {
                losses += 1;
                if losses > 100 {
                    return Err(format!("{address}: more than 100 datagrams lost"));
                }
            }
        }
    }
    latencies_ns.sort_unstable();
    Ok(latencies_ns[latencies_ns.len() / 2] as f64 / 1_000.0)
}

/// The windowed UDP client: datagrams received back in [`CEILING_SECONDS`], and the seconds measured.
///
/// Each datagram carries its sequence number in its first 8 bytes. QEMU's user networking keeps their order, so a
/// datagram coming back means every earlier one still out was lost: the window is topped up to
/// [`CEILING_WINDOW`] after every arrival, and after 5 ms with none.
fn reflect_window(address: SocketAddr) -> Result<(u64, f64), String> {
    let io = |error: std::io::Error| format!("{address} (udp): {error}");
    let socket = UdpSocket::bind(("127.0.0.1", 0)).map_err(io)?;
    socket.connect(address).map_err(io)?;
    socket.set_read_timeout(Some(Duration::from_millis(50))).map_err(io)?;
    let mut datagram = payload(CEILING_DATAGRAM_BYTES, 3);
    let mut back = vec![0u8; CEILING_DATAGRAM_BYTES + 1];
    let mut next_sequence = 0u64;
    let send = |datagram: &mut Vec<u8>, next_sequence: &mut u64| {
        datagram[..8].copy_from_slice(&next_sequence.to_le_bytes());
        *next_sequence += 1;
        socket.send(datagram).map(|_| ()).map_err(io)
    };
    // The first datagram to arrive back says the path is open (slirp and the guest both ready); only then time.
    let opened = Instant::now();
    loop {
        send(&mut datagram, &mut next_sequence)?;
        if socket.recv(&mut back).is_ok() {
            break;
        }
        if opened.elapsed() > Duration::from_secs(10) {
            return Err(format!("{address}: no datagram came back in 10 s"));
        }
    }
    socket.set_read_timeout(Some(Duration::from_millis(5))).map_err(io)?;
    // Drain the priming datagrams, then start counting from a fresh sequence.
    while socket.recv(&mut back).is_ok() {}
    let first_counted = next_sequence;
    let started = Instant::now();
    let mut received = 0u64;
    let mut highest_back = first_counted;
    while started.elapsed().as_secs_f64() < CEILING_SECONDS {
        let outstanding = next_sequence - highest_back;
        for _ in outstanding..CEILING_WINDOW as u64 {
            send(&mut datagram, &mut next_sequence)?;
        }
        match socket.recv(&mut back) {
            Ok(length) => {
                let sequence = u64::from_le_bytes(back[..8].try_into().unwrap_or_default());
                if length != CEILING_DATAGRAM_BYTES || back[8..length] != datagram[8..] {
                    return Err(format!("{address}: a reflected datagram differed from what was sent"));
                }
                if sequence >= first_counted {
                    received += 1;
                    highest_back = highest_back.max(sequence + 1);
                }
            }
            // Nothing for 5 ms: everything out is lost.
            Err(_) => highest_back = next_sequence,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Drain what is still in flight so the next run starts with an empty path.
    while socket.recv(&mut back).is_ok() {}
    Ok((received, elapsed))
}

fn print_run(side: &str, run: u32, figures: Figures) {
    println!(
        "  {side} run {run:>2}: round trip p50 {:9.1} us  p99 {:9.1} us   bulk {:9.1} MiB/s",
        figures.p50_us, figures.p99_us, figures.bulk_mib_per_s
    );
}

/// An echo server on 127.0.0.1 with an OS-picked port, one thread per connection, for the life of the process.
fn spawn_host_echo() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|error| error.to_string())?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut stream = stream;
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(received) = stream.read(&mut buffer) {
                    if received == 0 || stream.write_all(&buffer[..received]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(address)
}

fn connect(address: SocketAddr) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|error| format!("{address}: {error}"))?;
    stream.set_nodelay(true).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|error| error.to_string())?;
    Ok(stream)
}

/// Deterministic payload bytes (the same for guest and host).
fn payload(bytes: usize, salt: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ salt;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn measure(address: SocketAddr, round_trips: u32, payload_bytes: usize, bulk_mib: u64) -> Result<Figures, String> {
    let (p50_us, p99_us) = round_trip_percentiles(address, round_trips, payload_bytes)?;
    let bulk_mib_per_s = bulk(address, bulk_mib)?;
    Ok(Figures { p50_us, p99_us, bulk_mib_per_s })
}

/// `round_trips` echoes of `payload_bytes`, one at a time on one connection: p50 and p99, µs.
pub fn round_trip_percentiles(
    address: SocketAddr,
    round_trips: u32,
    payload_bytes: usize,
) -> Result<(f64, f64), String> {
    let io = |error: std::io::Error| format!("{address}: {error}");
    let mut stream = connect(address)?;
    let request = payload(payload_bytes, 1);
    let mut back = vec![0u8; payload_bytes];
    let mut latencies_ns = Vec::with_capacity(round_trips as usize);
    for _ in 0..round_trips {
        let started = Instant::now();
        stream.write_all(&request).map_err(io)?;
        stream.read_exact(&mut back).map_err(io)?;
        latencies_ns.push(started.elapsed().as_nanos() as u64);
        if back != request {
            return Err(format!("{address}: the echo differed from the request"));
        }
    }
    drop(stream);
    latencies_ns.sort_unstable();
    let percentile = |fraction: f64| {
        let index = ((latencies_ns.len() as f64 * fraction).ceil() as usize).clamp(1, latencies_ns.len()) - 1;
        latencies_ns[index] as f64 / 1_000.0
    };
    Ok((percentile(0.50), percentile(0.99)))
}

/// `bulk_mib` written and read back concurrently on a new connection: MiB/s.
pub fn bulk(address: SocketAddr, bulk_mib: u64) -> Result<f64, String> {
    let io = |error: std::io::Error| format!("{address}: {error}");
    let bulk = payload((bulk_mib << 20) as usize, 2);
    let stream = connect(address)?;
    let mut reader = stream.try_clone().map_err(io)?;
    let expected = bulk.len();
    let started = Instant::now();
    let reading = std::thread::spawn(move || {
        let mut received = vec![0u8; expected];
        reader.read_exact(&mut received).map(|_| received)
    });
    (&stream).write_all(&bulk).map_err(io)?;
    let received = reading.join().map_err(|_| "the bulk reader panicked".to_string())?.map_err(io)?;
    let elapsed = started.elapsed();
    if received != bulk {
        return Err(format!("{address}: the bulk echo differed from what was sent"));
    }
    Ok(bulk_mib as f64 / elapsed.as_secs_f64())
}
