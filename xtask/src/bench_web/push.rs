//! The WebSocket side of `cargo xtask bench web`: push latency of metric frames, from the kernel's timestamp in
//! the frame (`now_ns`, read when the frame is queued) to the client's receipt.
//!
//! The kernel's clock (ns since boot) and the host's (`Instant`) have an unknown offset. It is bounded, not
//! guessed: a `{"clock":"now"}` message is answered with the kernel's clock read while answering, so each probe's
//! guest time T lies between the probe's send (host t0) and its receipt (host t1), and the offset
//! (guest − host) lies in [T − t1, T − t0]. The intersection over every probe, taken before and after the
//! frames, bounds the offset to an interval no wider than the fastest probe's round trip; each frame's latency is
//! reported at the interval's middle, ± half its width. Both clocks are monotonic and QEMU's virtual counter
//! follows the host's monotonic clock while the guest runs, so the offset does not drift (an empty intersection
//! would say it did, and fails the run). The spread of latencies (each less the smallest) does not depend on the
//! offset at all and is exact.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::Value;
use tungstenite::{Message, WebSocket};

use super::load::{connect, percentile};

type Socket = WebSocket<std::net::TcpStream>;

/// One push-latency run.
#[derive(Debug, Clone, Copy)]
pub struct PushFigures {
    /// Frames timed.
    pub frames: usize,
    /// Push latency at the offset interval's middle, µs.
    pub p50_us: f64,
    /// See [`PushFigures::p50_us`].
    pub p99_us: f64,
    /// Half the offset interval's width: every latency is exact within ± this, µs.
    pub bound_us: f64,
    /// Latency less the run's smallest (exact), µs.
    pub spread_p50_us: f64,
    /// See [`PushFigures::spread_p50_us`].
    pub spread_p99_us: f64,
    /// The fastest clock probe's round trip, µs.
    pub probe_rtt_min_us: f64,
}

/// Subscribes to metrics every `interval_ms` and times `frames` pushes, with `probes` clock probes before and
/// after.
pub fn measure(
    address: SocketAddr,
    token: &str,
    probes: usize,
    frames: usize,
    interval_ms: u64,
) -> Result<PushFigures, String> {
    let stream = connect(address)?;
    let url = format!("ws://{address}/ws?token={token}");
    let (mut socket, _) = tungstenite::client(url.as_str(), stream).map_err(|error| format!("{url}: {error}"))?;
    let base = Instant::now();
    let mut offset = OffsetBound::default();
    for _ in 0..probes {
        offset.probe(&mut socket, base)?;
    }
    send(&mut socket, &format!(r#"{{"subscribe":"metrics","interval_ms":{interval_ms}}}"#))?;
    // (receipt, kernel timestamp), ns; the first push answers the subscription itself and is left out.
    let mut timed: Vec<(i128, i128)> = Vec::with_capacity(frames);
    let mut first = true;
    while timed.len() < frames {
        let (received, message) = read_json(&mut socket, base)?;
        if message["type"] != "metrics" {
            continue;
        }
        if !std::mem::take(&mut first) {
            let stamp = message["now_ns"].as_u64().ok_or("a metrics frame without now_ns")?;
            timed.push((received, i128::from(stamp)));
        }
    }
    send(&mut socket, r#"{"unsubscribe":"metrics"}"#)?;
    while read_json(&mut socket, base)?.1["type"] != "unsubscribed" {}
    for _ in 0..probes {
        offset.probe(&mut socket, base)?;
    }
    let _ = socket.close(None);
    let (low, high) = offset.interval()?;
    let middle = (low + high) / 2;
    // Latency = receipt − (kernel stamp − offset).
    let mut latencies_ns: Vec<i128> = timed.iter().map(|(received, stamp)| received - stamp + middle).collect();
    latencies_ns.sort_unstable();
    let smallest = latencies_ns[0];
    let to_u64 = |values: &[i128]| values.iter().map(|value| (*value).max(0) as u64).collect::<Vec<_>>();
    let latencies = to_u64(&latencies_ns);
    let spread = to_u64(&latencies_ns.iter().map(|latency| latency - smallest).collect::<Vec<_>>());
    Ok(PushFigures {
        frames: timed.len(),
        p50_us: percentile(&latencies, 0.50) / 1e3,
        p99_us: percentile(&latencies, 0.99) / 1e3,
        bound_us: (high - low) as f64 / 2e3,
        spread_p50_us: percentile(&spread, 0.50) / 1e3,
        spread_p99_us: percentile(&spread, 0.99) / 1e3,
        probe_rtt_min_us: offset.fastest_ns as f64 / 1e3,
    })
}

/// The offset (guest − host, ns) as known from clock probes.
#[derive(Debug)]
struct OffsetBound {
    low: i128,
    high: i128,
    fastest_ns: i128,
}

impl Default for OffsetBound {
    fn default() -> Self {
        OffsetBound { low: i128::MIN, high: i128::MAX, fastest_ns: i128::MAX }
    }
}

impl OffsetBound {
    /// One `{"clock":"now"}` round trip: narrows the interval.
    fn probe(&mut self, socket: &mut Socket, base: Instant) -> Result<(), String> {
        let sent = since(base);
        send(socket, r#"{"clock":"now"}"#)?;
        let (received, message) = loop {
            let (received, message) = read_json(socket, base)?;
            if message["type"] == "clock" {
                break (received, message);
            }
        };
        let guest = i128::from(message["now_ns"].as_u64().ok_or("a clock frame without now_ns")?);
        self.low = self.low.max(guest - received);
        self.high = self.high.min(guest - sent);
        self.fastest_ns = self.fastest_ns.min(received - sent);
        Ok(())
    }

    fn interval(&self) -> Result<(i128, i128), String> {
        if self.low > self.high {
            return Err(format!(
                "the clock probes disagree (offset above {} ns and below {} ns): the guest's clock drifted",
                self.low, self.high
            ));
        }
        Ok((self.low, self.high))
    }
}

fn since(base: Instant) -> i128 {
    base.elapsed().as_nanos() as i128
}

fn send(socket: &mut Socket, text: &str) -> Result<(), String> {
    socket.send(Message::text(text)).map_err(|error| format!("WebSocket send: {error}"))
}

/// The next text message, parsed, with its receipt time (ns since `base`, read before parsing).
fn read_json(socket: &mut Socket, base: Instant) -> Result<(i128, Value), String> {
    loop {
        let message = socket.read().map_err(|error| format!("WebSocket read: {error}"))?;
        let received = since(base);
        if let Message::Text(text) = message {
            let value =
                serde_json::from_str(text.as_str()).map_err(|error| format!("a frame that is not JSON: {error}"))?;
            return Ok((received, value));
        }
    }
}
