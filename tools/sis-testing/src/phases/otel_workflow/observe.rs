//! The phase 7 session: the collector, a boot with a network device, the workflow typed on the console, and the
//! wait until everything the kernel recorded has reached the collector.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Exchange, Recording, METRICS_INTERVAL_MS, SPAN_SEED, WORKFLOW};
use crate::otel::{Collector, CollectorOptions};
use crate::{free_local_port, parse_json_reply, QemuConfig, Sis};

/// Longest wait (host time) for the exports to send what is held, and for them to stop.
const DRAIN_WAIT: Duration = Duration::from_secs(90);
/// Metric snapshots the session waits for after recording ends, so that the last one received was taken after
/// the last command recorded (one may have been taken just before).
const SNAPSHOTS_AFTER: u64 = 2;
/// An export attempt's deadline, guest time: the longest `otelctl export` takes. Under `-icount` with
/// `sleep=off` an idle guest's clock jumps to its next timer, so the default 2 s passed while the collector was
/// still parsing a batch of 64 decision traces: measured 33 timeouts in 45 attempts in one session, each a
/// repeat at the collector, and a span batch has only 4 attempts before it is dropped.
const ATTEMPT_TIMEOUT_MS: u64 = 60_000;
/// The guest port forwarded (unused: the kernel only connects out, to the host at 10.0.2.2).
const GUEST_PORT: u16 = 7;

/// Starts the collector, boots SIS with a network device, runs the workflow and records what both sides counted.
/// `Err` when nothing could be judged (the collector or the boot failed, a console line got no reply).
pub fn observe(config: &QemuConfig) -> Result<Recording, String> {
    let collector = Collector::start(CollectorOptions::default()).map_err(|error| format!("the collector: {error}"))?;
    let port = collector.address().port();
    let host_port = free_local_port().map_err(|error| format!("no free host port: {error}"))?;
    let config = config.clone().user_network(host_port, GUEST_PORT);
    let mut sis = Sis::boot(&config).map_err(|error| format!("the boot failed: {error}"))?;
    let setup = [
        format!("otelctl enable --seed {SPAN_SEED}"),
        format!("otelctl export --to http://10.0.2.2:{port}/v1/traces --timeout-ms {ATTEMPT_TIMEOUT_MS}"),
        format!(
            "otelctl export --to http://10.0.2.2:{port}/v1/metrics --interval-ms {METRICS_INTERVAL_MS} \
             --timeout-ms {ATTEMPT_TIMEOUT_MS}"
        ),
    ];
    let mut recorded = Vec::new();
    for line in setup.iter().map(String::as_str).chain(WORKFLOW) {
        let (reply, log) = console_with_log(&mut sis, line)?;
        recorded.push(Exchange { line: line.to_string(), reply, log });
    }
    // Not recorded: `otelctl disable` and every line after it.
    console(&mut sis, "otelctl disable")?;
    let deadline = Instant::now() + DRAIN_WAIT;
    wait(&mut sis, deadline, "every span and decision trace sent", |status, decisions| {
        status["spans"]["held"] == 0 && decisions["otlp"]["cursor"] == decisions["next_id"]
    })?;
    let snapshots = console(&mut sis, "otelctl status")?["exports"]["metrics"]["items_sent"].as_u64().unwrap_or(0);
    wait(&mut sis, deadline, "metric snapshots taken after the last command", |status, _| {
        status["exports"]["metrics"]["items_sent"].as_u64().unwrap_or(0) >= snapshots + SNAPSHOTS_AFTER
    })?;
    console(&mut sis, "otelctl stop traces")?;
    console(&mut sis, "otelctl stop metrics")?;
    wait(&mut sis, deadline, "both exports stopped", |status, _| {
        status["exports"]["traces"].is_null() && status["exports"]["metrics"].is_null()
    })?;
    let otel_status = console(&mut sis, "otelctl status")?;
    let decisions_status = console(&mut sis, "otelctl decisions status")?;
    let autonomy = console(&mut sis, "autoctl status")?;
    let summary = collector.summary().map_err(|error| format!("the collector's summary: {error}"))?;
    Ok(Recording { recorded, otel_status, decisions_status, autonomy, summary })
}

/// The JSON reply of `line --json` (failed commands included: their `ok` is false).
fn console(sis: &mut Sis, line: &str) -> Result<Value, String> {
    sis.run_json(line).map_err(|error| format!("{line}: {error}"))
}

/// The JSON reply of `line --json` and the kernel's log lines printed while it ran (the canary's automatic
/// rollback is logged on the console during the run that provokes it).
fn console_with_log(sis: &mut Sis, line: &str) -> Result<(Value, Vec<String>), String> {
    let output = sis.run(&format!("{line} --json")).map_err(|error| format!("{line}: {error}"))?;
    let (mut replies, mut log) = (Vec::new(), Vec::new());
    for text in output.text.lines() {
        match parse_json_reply(&format!("{text}\n")) {
            Ok(reply) => replies.push(reply),
            Err(_) => log.push(text.to_string()),
        }
    }
    match <[Value; 1]>::try_from(replies) {
        Ok([reply]) => Ok((reply, log)),
        Err(replies) => Err(format!("{line}: one JSON reply, got {} in {:?}", replies.len(), output.text)),
    }
}

/// Reads `otelctl status` and `otelctl decisions status` until `done` holds, at most until `deadline`.
fn wait(sis: &mut Sis, deadline: Instant, what: &str, done: impl Fn(&Value, &Value) -> bool) -> Result<(), String> {
    loop {
        let status = console(sis, "otelctl status")?;
        let decisions = console(sis, "otelctl decisions status")?;
        if done(&status, &decisions) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not {what} within {} s: {status} {decisions}", DRAIN_WAIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
