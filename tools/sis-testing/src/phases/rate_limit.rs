//! Phase 8's "No output flooding": a flood of kernel messages meets its source's rate limit, another source
//! loses nothing, the suppressed messages are reported exactly, and a command typed during the flood is
//! answered at once.
//!
//! The probe needs a console session, not a batch: the floods are started, and once the noisy flood's first
//! suppression line is on the console (its second second has begun: 20,000 messages a second are being
//! suppressed) a status line is typed, while the flood runs on its own thread; then a wait for the floods'
//! end. The replies are read from the raw output among the log lines.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::judge::{expect, number};
use super::Verdict;
use crate::console::{json_replies, klog_suppressed, lines_with};
use crate::{QemuConfig, Sis};

/// The floods: 200,000 messages over 10 s (20 every millisecond) from `noisy`, 20 over 1 s from `steady`.
pub const FLOODS: &str = "logctl flood --source noisy --count 200000 --duration 10000 --json\r\
     logctl flood --source steady --count 20 --duration 1000 --json\r";
/// Typed once the noisy flood's first suppression line is on the console: a status, and a wait for the
/// floods' end.
pub const DURING: &str = "logctl status --json\rlogctl wait --json\r";
/// The noisy flood's suppression lines, the first of which comes when its second window opens.
const NOISY_SUPPRESSION: &str = "klog: noisy: ";
/// Messages the noisy flood sends in its first second.
const FIRST_SECOND: u64 = 20_000;
/// Set first: `steady` sends 20 messages in its second, within its own limit.
pub const STEADY_LIMIT: &str = "logctl ratelimit set --source steady --burst 20 --interval-ms 1000";

/// Messages of the noisy flood.
const NOISY: u64 = 200_000;
/// Its 1 s windows: its messages come at 1 ms steps over 10 s, so ten windows.
const NOISY_WINDOWS: u64 = 10;
/// Messages of the steady source.
const STEADY: u64 = 20;
/// The default limit's burst, per 1 s window.
const DEFAULT_BURST: u64 = 10;
/// How long the console may take to answer the status line typed behind the two floods, guest time in
/// deterministic mode (the kernel log's QEMU test measured 0.12 to 0.83 ms over twelve runs; a shell waiting
/// behind a flood thread's 10 ms time slice fails).
const ANSWER_BOUND_NS: u64 = 5_000_000;

/// The test's verdict from a boot of `config`.
pub fn no_output_flooding(config: &QemuConfig) -> Vec<Verdict> {
    vec![("No output flooding", flood(config))]
}

fn flood(config: &QemuConfig) -> Result<(), String> {
    let mut sis = Sis::boot(config).map_err(|error| format!("the boot failed: {error}"))?;
    let limit = sis.run_json(STEADY_LIMIT).map_err(|error| format!("{STEADY_LIMIT}: {error}"))?;
    if limit["ok"] != true {
        return Err(format!("{STEADY_LIMIT} succeeds, got {limit}"));
    }
    let from = sis.raw_output().len();
    sis.send_raw(FLOODS.as_bytes()).map_err(|error| format!("typing the floods: {error}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&sis.raw_output()[from..]).contains(NOISY_SUPPRESSION) {
        if Instant::now() > deadline {
            return Err(String::from("the noisy flood's first suppression line within 60 s, got none"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    sis.send_raw(DURING.as_bytes()).map_err(|error| format!("typing the status: {error}"))?;
    sis.sync().map_err(|error| format!("waiting for the floods' end: {error}"))?;
    judge_flood(&sis.raw_output()[from..])
}

/// The verdict from the raw console output of [`FLOODS`] and [`DURING`].
pub fn judge_flood(raw: &[u8]) -> Result<(), String> {
    let replies = json_replies(raw);
    let commands: Vec<&str> = replies.iter().filter_map(|reply| reply["command"].as_str()).collect();
    if commands != ["logctl flood", "logctl flood", "logctl status", "logctl wait"] || replies.len() != 4 {
        return Err(format!("the four replies in order, got {commands:?}"));
    }
    if let Some(failed) = replies.iter().find(|reply| reply["ok"] != true) {
        return Err(format!("every command succeeds, got {failed}"));
    }
    let (status, wait) = (&replies[2], &replies[3]);

    // The console answered the line typed in the middle of the flood, at once.
    let floods = status["floods"].as_array().into_iter().flatten();
    let noisy_running = floods
        .filter(|flood| flood["source"] == "noisy")
        .find_map(|flood| flood["sent"].as_u64())
        .filter(|sent| (FIRST_SECOND..NOISY).contains(sent));
    if noisy_running.is_none() {
        return Err(format!(
            "the status answered after the noisy flood's first second and before its end ({FIRST_SECOND} to {NOISY} sent), got floods {}",
            status["floods"]
        ));
    }
    let latency = number(status, "answer_latency_ns")?;
    if latency >= ANSWER_BOUND_NS {
        return Err(format!("answer_latency_ns below {ANSWER_BOUND_NS}, got {latency}"));
    }

    // The flood met its limit, and every suppressed message is reported.
    let noisy = &source(wait, "noisy")?["counters"];
    expect(noisy, "emitted", NOISY)?;
    let printed = DEFAULT_BURST * NOISY_WINDOWS;
    expect(noisy, "printed", printed)?;
    expect(noisy, "suppressed", NOISY - printed)?;
    // A line at the start of each later window for the one before, and the flood's last flush.
    expect(noisy, "suppression_reports", NOISY_WINDOWS)?;
    let reported = klog_suppressed(raw, "noisy")?;
    if reported != NOISY - printed {
        return Err(format!("klog: noisy: lines adding up to {}, got {reported}", NOISY - printed));
    }
    let on_console = lines_with(raw, "flood noisy message ").len() as u64;
    if on_console != printed {
        return Err(format!("{printed} noisy messages on the console, got {on_console}"));
    }

    // Nothing else is lost: the other source prints every message, in order.
    let steady = &source(wait, "steady")?["counters"];
    expect(steady, "printed", STEADY)?;
    expect(steady, "suppressed", 0)?;
    let lines = lines_with(raw, "flood steady message ");
    let expected: Vec<String> = (1..=STEADY).map(|i| format!("flood steady message {i} of {STEADY}")).collect();
    if lines != expected {
        return Err(format!("the {STEADY} steady messages in order, got {lines:?}"));
    }
    expect(&wait["totals"], "pending_suppressed", 0)?;
    expect(wait, "floods_finished", number(wait, "floods_started")?)
}

/// The source `name` of a status or wait reply.
fn source<'a>(reply: &'a Value, name: &str) -> Result<&'a Value, String> {
    reply["sources"]
        .as_array()
        .and_then(|sources| sources.iter().find(|source| source["name"] == name))
        .ok_or_else(|| format!("source {name} in {}", reply["sources"]))
}
