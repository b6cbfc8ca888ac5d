//! `cargo xtask bench web`: `GET /api/metrics` with keep-alive at 1, 8 and 64 concurrent connections against
//! SIS's web server and against a host-native HTTP server answering the same bytes, measured in the same run;
//! then WebSocket push latency of metric frames.
//!
//! Guest: SIS booted as the QEMU tests boot it (`QemuConfig::web_server`: virtio-net on QEMU user networking, the
//! server started at boot with a host token, a `hostfwd` on 127.0.0.1). Peer: a minimal HTTP/1.1 server thread per
//! connection in this process on 127.0.0.1 (`load::spawn_host_server`), answering the exact bytes SIS sent for one
//! `GET /api/metrics` fetched first (head and body). Both are driven by the same closed-loop clients, one thread
//! and one connection each, on the same shared cores, so the ratio is what SIS in QEMU (TCG, slirp, virtio-net,
//! smoltcp, and reading the metrics for each request) costs over a native server that only copies bytes.

mod load;
mod push;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};

use load::Figures;
use push::PushFigures;

/// Unmeasured time at the start of each measurement (connections open, queues warm).
const WARMUP: Duration = Duration::from_millis(500);
/// Clock probes before and after the timed pushes.
const CLOCK_PROBES: usize = 100;
/// The shortest push interval the server accepts, ms.
const PUSH_INTERVAL_MS: u64 = 50;

/// Runs the benchmark: `runs` rounds of every count of `connections` against both servers, each measured for
/// `seconds`, then `runs` push-latency runs of `pushes` frames (none for 0).
pub fn run(seconds: u64, runs: u32, pushes: usize, connections: &[usize]) -> Result<(), String> {
    let window = Duration::from_secs(seconds);
    println!(
        "GET /api/metrics, keep-alive, closed loop (each connection sends its next request when the last response \
         ended), {} s per measurement after {} ms unmeasured, {runs} runs of {connections:?} connections\n\
         guest: SIS in QEMU (virt, cortex-a72, TCG, real time), web server on virtio-net + smoltcp, QEMU user \
         networking with hostfwd on 127.0.0.1\n\
         host:  an HTTP/1.1 server thread per connection in this process on 127.0.0.1, answering the bytes SIS sent \
         for one GET /api/metrics (head and body)",
        window.as_secs(),
        WARMUP.as_millis()
    );
    let token = hex(&host_random_bytes().map_err(|error| error.to_string())?);
    let config =
        QemuConfig::new().web_server(free_local_port().map_err(|error| error.to_string())?, Some(token.clone()));
    let guest = config.forwarded_address().ok_or("no forwarded port")?;
    let mut sis = Sis::boot(&config).map_err(|error| format!("boot: {error}"))?;
    let request = format!("GET /api/metrics HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {token}\r\n\r\n");
    let response = fetch(guest, request.as_bytes())?;
    let host = load::spawn_host_server(response.clone(), &token)?;
    println!("response: {} bytes (body {} bytes of JSON)", response.len(), body_of(&response).len());

    let mut figures: Vec<(usize, Figures, Figures)> = Vec::new();
    let counts = connections;
    for run in 1..=runs {
        for &connections in counts {
            wait_closed(&mut sis)?;
            let before = status(&mut sis)?;
            let cpu_before = thread_cpu(&mut sis)?;
            let guest_figures = match load::measure(guest, request.as_bytes(), connections, WARMUP, window) {
                Ok(figures) => figures,
                Err(error) => {
                    let state = ["webctl status", "netctl stats", "threads"].map(|line| {
                        format!("{line}: {}", sis.run_json(line).map_or_else(|e| e.to_string(), |v| v.to_string()))
                    });
                    return Err(format!("guest, {connections} connections: {error}\n{}", state.join("\n")));
                }
            };
            let cpu_after = thread_cpu(&mut sis)?;
            let after = status(&mut sis)?;
            // Every 200 in the window is a metrics answer; readings are reported by kernels that read metrics
            // outside the server's lock (webctl status `metrics_readings`), not by older ones.
            let answered = grew(&before, &after, "/app/responses/success")?;
            let readings = grew(&before, &after, "/metrics_readings/count").ok();
            print_run("guest", run, connections, guest_figures);
            let per_request = |name: &str| {
                let used = cpu_after.iter().find(|(thread, _)| thread == name).map_or(0, |(_, ns)| *ns)
                    - cpu_before.iter().find(|(thread, _)| thread == name).map_or(0, |(_, ns)| *ns);
                used as f64 / answered.max(1) as f64 / 1e3
            };
            let by_readings = readings.map_or(String::new(), |readings| {
                format!(" by {readings} metrics readings ({:.1} per reading)", answered as f64 / readings.max(1) as f64)
            });
            println!(
                "       kernel: {answered} requests answered{by_readings}; CPU per request: net {:.0} us, web {:.0} us, \
                 idle {:.0} us",
                per_request("net"),
                per_request("web"),
                per_request("idle")
            );
            let host_figures = load::measure(host, request.as_bytes(), connections, WARMUP, window)?;
            print_run("host ", run, connections, host_figures);
            figures.push((connections, guest_figures, host_figures));
        }
    }
    let last = status(&mut sis)?;
    println!("\nmedians of {runs} runs:");
    println!("  conns | guest req/s   p50 us   p99 us | host req/s   p50 us   p99 us | guest/host req/s  p50 ratio");
    for &connections in counts {
        let runs: Vec<(Figures, Figures)> =
            figures.iter().filter(|(c, _, _)| *c == connections).map(|(_, g, h)| (*g, *h)).collect();
        let median = crate::bench::median_of::<(Figures, Figures)>;
        let (guest_rate, host_rate) = (median(&runs, |r| r.0.requests_per_s), median(&runs, |r| r.1.requests_per_s));
        let (guest_p50, host_p50) = (median(&runs, |r| r.0.p50_us), median(&runs, |r| r.1.p50_us));
        let (guest_p99, host_p99) = (median(&runs, |r| r.0.p99_us), median(&runs, |r| r.1.p99_us));
        println!(
            "  {connections:>5} | {guest_rate:>11.0} {guest_p50:>8.0} {guest_p99:>8.0} | {host_rate:>10.0} {host_p50:>8.1} \
             {host_p99:>8.1} | {:>16.4} {:>9.1}x",
            guest_rate / host_rate,
            guest_p50 / host_p50
        );
    }
    let reading = &last["metrics_readings"]["duration"];
    if let (Ok(count), Ok(p50), Ok(p99)) =
        (number(&last, "/metrics_readings/count"), number(reading, "/p50_ns"), number(reading, "/p99_ns"))
    {
        println!(
            "kernel: {count} metrics readings in all, each p50 {:.0} us, p99 {:.0} us (webctl status, no lock held)",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3
        );
    }
    println!(
        "kernel: request handling in the app (last byte in to response queued, metrics reading included) p50 {:.0} \
         us, p99 {:.0} us",
        number(&last, "/app/latency/p50_ns")? as f64 / 1e3,
        number(&last, "/app/latency/p99_ns")? as f64 / 1e3,
    );

    if pushes > 0 {
        push_latency(guest, &token, runs, pushes)?;
    }
    drop(sis);
    Ok(())
}

/// `runs` push-latency runs of `pushes` frames each; per-run figures and medians.
fn push_latency(guest: SocketAddr, token: &str, runs: u32, pushes: usize) -> Result<(), String> {
    println!(
        "\nWebSocket push latency: metrics every {PUSH_INTERVAL_MS} ms, {pushes} frames per run, from the frame's \
         now_ns (kernel clock when the frame was queued) to its receipt here; the guest-host clock offset is bounded \
         by {CLOCK_PROBES} {{\"clock\":\"now\"}} round trips before and {CLOCK_PROBES} after (push.rs)"
    );
    let mut push_runs: Vec<PushFigures> = Vec::new();
    for run in 1..=runs {
        let figures = push::measure(guest, token, CLOCK_PROBES, pushes, PUSH_INTERVAL_MS)?;
        println!(
            "  run {run:>2}: {} frames, latency p50 {:7.0} us  p99 {:7.0} us  (± {:.0} us: offset bound; fastest probe \
             {:.0} us); spread over the smallest p50 {:.0} us  p99 {:.0} us (exact)",
            figures.frames,
            figures.p50_us,
            figures.p99_us,
            figures.bound_us,
            figures.probe_rtt_min_us,
            figures.spread_p50_us,
            figures.spread_p99_us
        );
        push_runs.push(figures);
    }
    let median = crate::bench::median_of::<PushFigures>;
    println!(
        "  median push latency p50 {:.0} us, p99 {:.0} us (each ± its run's bound, median ± {:.0} us); spread p99 {:.0} us",
        median(&push_runs, |f| f.p50_us),
        median(&push_runs, |f| f.p99_us),
        median(&push_runs, |f| f.bound_us),
        median(&push_runs, |f| f.spread_p99_us)
    );
    Ok(())
}

fn print_run(side: &str, run: u32, connections: usize, figures: Figures) {
    println!(
        "  {side} run {run:>2}, {connections:>2} conns: {:>9.0} req/s  p50 {:>8.1} us  p99 {:>8.1} us  ({} responses)",
        figures.requests_per_s, figures.p50_us, figures.p99_us, figures.requests
    );
}

/// One `GET /api/metrics` answered 200: the response's exact bytes.
fn fetch(address: SocketAddr, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = load::connect(address)?;
    stream.write_all(request).map_err(|error| error.to_string())?;
    let mut buffer = Vec::new();
    let (status, _) = load::read_response(&mut stream, &mut buffer)?;
    if status != 200 {
        return Err(format!("GET /api/metrics answered {status}: {}", String::from_utf8_lossy(&buffer)));
    }
    Ok(buffer)
}

fn body_of(response: &[u8]) -> &[u8] {
    let head = response.windows(4).position(|window| window == b"\r\n\r\n").map_or(0, |end| end + 4);
    &response[head..]
}

fn status(sis: &mut Sis) -> Result<Value, String> {
    let status = sis.run_json("webctl status").map_err(|error| error.to_string())?;
    if status["ok"] != true {
        return Err(format!("webctl status: {status}"));
    }
    Ok(status)
}

/// CPU time of every kernel thread by name (`threads`), ns.
fn thread_cpu(sis: &mut Sis) -> Result<Vec<(String, u64)>, String> {
    let threads = sis.run_json("threads").map_err(|error| error.to_string())?;
    let list = threads["threads"].as_array().ok_or_else(|| format!("threads: {threads}"))?;
    Ok(list
        .iter()
        .filter_map(|thread| Some((thread["name"].as_str()?.to_string(), thread["cpu_time_ns"].as_u64()?)))
        .collect())
}

fn number(value: &Value, pointer: &str) -> Result<u64, String> {
    value.pointer(pointer).and_then(Value::as_u64).ok_or_else(|| format!("no {pointer} in {value}"))
}

fn grew(before: &Value, after: &Value, pointer: &str) -> Result<u64, String> {
    Ok(number(after, pointer)?.saturating_sub(number(before, pointer)?))
}

/// Waits (up to 30 s) until the last measurement's connections are closed in the kernel, so every socket listens
/// again before the next one opens 64.
fn wait_closed(sis: &mut Sis) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let status = status(sis)?;
        if number(&status, "/listener/open")? == 0 && number(&status, "/app/connections_open")? == 0 {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("connections still open after 30 s: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
