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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use sis_testing::{QemuConfig, Sis};

/// One run's figures against one server.
#[derive(Debug, Clone, Copy)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    bulk_mib_per_s: f64,
}

/// Measures guest and host `runs` times each; prints per-run figures, medians and ratios.
pub fn run(round_trips: u32, payload_bytes: usize, bulk_mib: u64, runs: u32) -> Result<(), String> {
    println!(
        "TCP echo: {round_trips} round trips of {payload_bytes} B (TCP_NODELAY, one at a time), then {bulk_mib} MiB bulk \
         (written and read concurrently), {runs} runs\n\
         guest: SIS in QEMU (virt, cortex-a72, TCG, real time), virtio-net + smoltcp echo on port 7, QEMU user \
         networking with hostfwd on 127.0.0.1\n\
         host:  an echo thread in this process on 127.0.0.1 (host loopback TCP), same client, same payloads"
    );
    let config = QemuConfig::new().user_network_free_port(7).map_err(|error| error.to_string())?;
    let guest_address = config.forwarded_address().ok_or("no forwarded port")?;
    let sis = Sis::boot(&config).map_err(|error| format!("boot: {error}"))?;
    let host_address = spawn_host_echo()?;
    let mut guest = Vec::new();
    let mut host = Vec::new();
    for run in 1..=runs {
        let figures = measure(guest_address, round_trips, payload_bytes, bulk_mib)?;
        print_run("guest", run, figures);
        guest.push(figures);
        let figures = measure(host_address, round_trips, payload_bytes, bulk_mib)?;
        print_run("host ", run, figures);
        host.push(figures);
    }
    drop(sis);
    let median = crate::bench::median_of::<Figures>;
    let (guest_p50, host_p50) = (median(&guest, |f| f.p50_us), median(&host, |f| f.p50_us));
    let (guest_p99, host_p99) = (median(&guest, |f| f.p99_us), median(&host, |f| f.p99_us));
    let (guest_bulk, host_bulk) = (median(&guest, |f| f.bulk_mib_per_s), median(&host, |f| f.bulk_mib_per_s));
    println!("median  guest round trip p50 {guest_p50:9.1} us  p99 {guest_p99:9.1} us  bulk {guest_bulk:9.1} MiB/s");
    println!("median  host  round trip p50 {host_p50:9.1} us  p99 {host_p99:9.1} us  bulk {host_bulk:9.1} MiB/s");
    println!(
        "ratio guest / host: p50 {:.1}x, p99 {:.1}x slower; bulk {:.4} of the host's",
        guest_p50 / host_p50,
        guest_p99 / host_p99,
        guest_bulk / host_bulk
    );
    Ok(())
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
