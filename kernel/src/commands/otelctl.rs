//! `otelctl`: OpenTelemetry of shell commands (`sis-otel`): turn it on and off, see its counters, export it to a
//! file as OTLP/JSON lines.

use alloc::string::String;
use core::sync::atomic::Ordering::Relaxed;

use serde_json::json;
use sis_otel::{CommandTelemetry, Endpoint, Signal, COMMAND_QUEUE};
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::files::{shell_error, FILES};
use super::net::link;
use super::Kernel;
use crate::format;
use crate::otel::{decisions, export};
use crate::otel::{resource, scope, ENABLED, STATE};

/// `otelctl`.
pub static OTELCTL: CommandSpec<Kernel> = CommandSpec {
    name: "otelctl",
    summary: "OpenTelemetry of shell commands: a span each, counters and latencies, exported as OTLP/JSON",
    description: "While enabled, every command run on the console or from sis.run becomes one span (its path, outcome, error code, start and end in ns since boot) and is counted by path and outcome, its duration in a latency histogram. Spans wait in a queue of at most 256 (more are dropped and counted) until `otelctl file` writes them or `otelctl export` posts them to a collector. Fields and encoding: docs/otel.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Whether telemetry is on, its seed, its span queue's counters and the commands counted",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "enable",
            summary: "Record every command from now on (resumes after disable, keeping what was recorded)",
            description: "Span ids are drawn from --seed (default: the clock; always printed). The seed is fixed at the first enable until reboot.",
            args: &[ArgSpec::flag(
                "seed",
                ValueKind::U64 { min: 0, max: u64::MAX },
                "seed of the trace and span ids (default: the clock)",
            )],
            subcommands: &[],
            handler: Some(enable),
        },
        CommandSpec {
            name: "disable",
            summary: "Stop recording commands; what was recorded stays for `otelctl file`",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(disable),
        },
        CommandSpec {
            name: "file",
            summary: "Write the queued spans and the metrics to PATH as OTLP/JSON lines",
            description: "One line per batch of at most 64 spans (an ExportTraceServiceRequest), then one line of metrics (an ExportMetricsServiceRequest). The spans written leave the queue; when the file cannot be written nothing changes.",
            args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path (missing directories are made)")
                .required()],
            subcommands: &[],
            handler: Some(file),
        },
        CommandSpec {
            name: "export",
            summary: "Post spans (/v1/traces) or metric snapshots (/v1/metrics) to an OTLP/HTTP collector",
            description: "A kernel thread posts OTLP/JSON over the kernel's TCP/IP stack: spans in batches of 64 from the queue, or a metrics snapshot every --interval-ms. A failed attempt (refused, no answer by --timeout-ms, a status other than 2xx) is retried 0.5 s, 1 s and 2 s later, then its batch is dropped and counted; the shell never waits on the network. The host must be an IPv4 address (QEMU's host is 10.0.2.2). Stop with `otelctl stop traces|metrics`.",
            args: &[
                ArgSpec::flag("to", ValueKind::Str, "http://A.B.C.D[:PORT]/v1/traces or /v1/metrics").required(),
                ArgSpec::flag(
                    "timeout-ms",
                    ValueKind::U64 { min: 100, max: 60_000 },
                    "deadline of one attempt, from connect to the whole answer",
                )
                .default("2000"),
                ArgSpec::flag(
                    "interval-ms",
                    ValueKind::U64 { min: 100, max: 3_600_000 },
                    "between two metric snapshots (metrics only; default 1000)",
                ),
            ],
            subcommands: &[],
            handler: Some(export_start),
        },
        CommandSpec {
            name: "stop",
            summary: "Stop the export of traces or metrics; what it sent and its failures",
            description: "Spans not yet sent stay queued (for `otelctl file` or the next export). An attempt in progress runs to its end or its deadline (a request is never cut short); its batch is then exported or kept, but the stopped export's counters no longer change.",
            args: &[ArgSpec::positional("signal", ValueKind::Choice(&["traces", "metrics"]), "which export")
                .required()],
            subcommands: &[],
            handler: Some(export_stop),
        },
        CommandSpec {
            name: "decisions",
            summary: "The meta-agent's decision traces through cursors: read, write as JSON lines, cursor status",
            description: "Traces are numbered from 0; the ring keeps the newest 256. A cursor is the id of the next trace to export: it moves only past traces that were written (file) or accepted (OTLP), so none is sent twice or skipped; a trace is read only once its outcome is final (an acted decision waits for its horizon while its run goes on, or, when the run ends first, until the next run or autonomy off drops it; the traces after it wait too); traces overwritten before a cursor reached them are counted as evicted. While spans are exported over HTTP, traces also go there as span events (span sis.autonomy.decisions, scope sis.autonomy).",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "status",
                    summary: "The trace ids kept, and the file and OTLP cursors with what they exported and lost",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(decisions_status),
                },
                CommandSpec {
                    name: "read",
                    summary: "Up to --max traces from --cursor, with the next cursor and the evicted count",
                    description: "Reads without moving any cursor: the caller keeps its own (this is GET /api/decisions). A cursor below the oldest trace kept starts at the oldest, and `evicted` says how many were lost.",
                    args: &[
                        ArgSpec::flag("cursor", ValueKind::U64 { min: 0, max: u64::MAX }, "id of the first trace wanted")
                            .default("0"),
                        ArgSpec::flag("max", ValueKind::U64 { min: 1, max: 256 }, "most traces returned").default("64"),
                    ],
                    subcommands: &[],
                    handler: Some(decisions_read),
                },
                CommandSpec {
                    name: "file",
                    summary: "Write the traces from the file cursor to PATH as JSON lines and move the cursor past them",
                    description: "One trace per line, as `autoctl audit --json` prints it. When the file cannot be written the cursor does not move.",
                    args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path (missing directories are made)")
                        .required()],
                    subcommands: &[],
                    handler: Some(decisions_file),
                },
            ],
            handler: None,
        },
    ],
    handler: None,
};

fn not_enabled() -> ShellError {
    ShellError::new("not-enabled", "telemetry has not been enabled since boot: run `otelctl enable` first")
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let enabled = ENABLED.load(Relaxed);
    let state = crate::sync::lock(&STATE);
    let Some(telemetry) = state.as_ref() else {
        let fields = json!({ "enabled": false, "seed": null, "since_ns": null, "spans": null, "commands": {},
                             "files_written": 0, "exports": { "traces": null, "metrics": null },
                             "stopped": { "traces": null, "metrics": null } });
        return Ok(Reply::new("Telemetry: off (never enabled since boot)", fields));
    };
    let spans = telemetry.queue_counters();
    let mut human = alloc::format!(
        "Telemetry: {}, seed {}, since {} after boot\nSpans: {} recorded, {} exported, {} held, {} dropped (queue full); {} files written",
        if enabled { "on" } else { "off" },
        telemetry.seed(),
        format::milliseconds(telemetry.since_ns()),
        format::thousands(spans.enqueued + spans.dropped_full),
        format::thousands(spans.exported),
        format::thousands(spans.held),
        format::thousands(spans.dropped_full),
        format::thousands(telemetry.exports()),
    );
    let (traces, metrics) = (export::status(Signal::Traces), export::status(Signal::Metrics));
    for status in [&traces, &metrics].into_iter().flatten() {
        human.push_str(&export_line(status));
    }
    for (path, counts) in telemetry.counts() {
        human.push_str(&alloc::format!("\n  {path:<24} {:>8} ok {:>8} failed", counts.ok, counts.failed));
    }
    let fields = json!({
        "enabled": enabled,
        "seed": telemetry.seed(),
        "since_ns": telemetry.since_ns(),
        "spans": spans,
        "commands": telemetry.counts(),
        "files_written": telemetry.exports(),
        "exports": { "traces": traces, "metrics": metrics },
        "stopped": {
            "traces": export::last_stopped(Signal::Traces),
            "metrics": export::last_stopped(Signal::Metrics),
        },
    });
    Ok(Reply::new(human, fields))
}

fn enable(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let asked_seed = invocation.args.u64("seed");
    let mut state = crate::sync::lock(&STATE);
    if ENABLED.load(Relaxed) {
        return Err(ShellError::new("already-enabled", "telemetry is already on"));
    }
    let resumed = state.is_some();
    match state.as_ref().map(CommandTelemetry::seed) {
        Some(seed) => {
            if let Some(asked) = asked_seed.filter(|asked| *asked != seed) {
                return Err(ShellError::new(
                    "seed-fixed",
                    alloc::format!("the ids' seed is {seed} until reboot; --seed {asked} cannot change it"),
                ));
            }
        }
        None => {
            let now = time::now_ns();
            let telemetry = CommandTelemetry::new(asked_seed.unwrap_or(now), now, COMMAND_QUEUE)
                .map_err(|error| ShellError::new("bad-queue", alloc::format!("{error}")))?;
            *state = Some(telemetry);
        }
    }
    let seed = state.as_ref().map_or(0, CommandTelemetry::seed);
    ENABLED.store(true, Relaxed);
    let human = alloc::format!("Telemetry on ({}), seed {seed}", if resumed { "resumed" } else { "new" });
    Ok(Reply::new(human, json!({ "enabled": true, "seed": seed, "resumed": resumed })))
}

fn disable(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let state = crate::sync::lock(&STATE);
    if !ENABLED.load(Relaxed) {
        return Err(ShellError::new("not-enabled", "telemetry is already off"));
    }
    ENABLED.store(false, Relaxed);
    let held = state.as_ref().map_or(0, |telemetry| telemetry.queue_counters().held);
    Ok(Reply::new(
        alloc::format!("Telemetry off; {held} spans held for `otelctl file`"),
        json!({ "enabled": false, "held": held }),
    ))
}

fn file(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = String::from(invocation.args.str("path").unwrap_or("/"));
    let since_ns = crate::sync::lock(&STATE).as_ref().map(CommandTelemetry::since_ns).ok_or_else(not_enabled)?;
    // Read before the telemetry's lock is taken: they take their own subsystems' locks.
    let now = time::now_ns();
    let extra = crate::otel::kernel_metrics(since_ns, now);
    let mut state = crate::sync::lock(&STATE);
    let telemetry = state.as_mut().ok_or_else(not_enabled)?;
    if let Some(running) = export::status(Signal::Traces) {
        return Err(ShellError::new(
            "exporting",
            alloc::format!(
                "spans go to {} ({:?}): `otelctl stop traces`, and once it has stopped write them to a file",
                running.url,
                running.state
            ),
        ));
    }
    let export = telemetry.export_with(&resource(), &scope(), now, extra, |text| {
        FILES.lock().write(&path, text.as_bytes(), true).map_err(shell_error)
    })?;
    let exported = telemetry.queue_counters().exported;
    let human = alloc::format!(
        "Wrote {path}: {} spans in {} trace lines, {} metrics, {}",
        export.spans,
        export.trace_lines,
        export.metrics,
        format::bytes(export.bytes)
    );
    Ok(Reply::new(
        human,
        json!({
            "path": path, "spans": export.spans, "trace_lines": export.trace_lines, "metrics": export.metrics,
            "bytes": export.bytes, "exported_total": exported,
        }),
    ))
}

fn export_line(status: &export::ExportStatus) -> String {
    let attempts = &status.attempts;
    alloc::format!(
        "\nExport of {} to {}: {} sent in {} accepted requests; {} attempts failed ({} refused, {} timed out, {} reset, {} HTTP errors, {} bad answers, {} local)",
        status.signal.name(),
        status.url,
        format::thousands(status.items_sent),
        format::thousands(attempts.succeeded),
        format::thousands(attempts.attempts - attempts.succeeded),
        attempts.refused,
        attempts.timeouts,
        attempts.resets,
        attempts.http_errors,
        attempts.bad_responses,
        attempts.local_errors,
    )
}

fn export_start(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let url = invocation.args.str("to").unwrap_or("");
    let endpoint = Endpoint::parse(url).map_err(|error| ShellError::new(error.code(), alloc::format!("{error}")))?;
    let timeout_ms = invocation.args.u64("timeout-ms").unwrap_or(2_000);
    let interval_ms = match (endpoint.signal, invocation.args.u64("interval-ms")) {
        (Signal::Traces, Some(_)) => {
            return Err(ShellError::new(
                sis_shell::codes::INVALID_VALUE,
                "--interval-ms applies to metrics: spans are sent as they are recorded",
            ))
        }
        (_, interval) => interval.unwrap_or(1_000),
    };
    if crate::sync::lock(&STATE).is_none() {
        return Err(not_enabled());
    }
    if !link::attached() {
        return Err(link::no_device());
    }
    let status = export::start(endpoint, timeout_ms * 1_000_000, interval_ms * 1_000_000)?;
    let human = match endpoint.signal {
        Signal::Traces => alloc::format!("Exporting spans to {} (attempt deadline {timeout_ms} ms)", status.url),
        Signal::Metrics => alloc::format!(
            "Exporting metrics to {} every {interval_ms} ms (attempt deadline {timeout_ms} ms)",
            status.url
        ),
    };
    Ok(Reply::new(human, json!(status)))
}

fn export_stop(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let signal = match invocation.args.str("signal") {
        Some("metrics") => Signal::Metrics,
        _ => Signal::Traces,
    };
    let status = export::stop(signal)?;
    Ok(Reply::new(
        alloc::format!(
            "Stopping: no attempt starts from now; the one in progress (if any) ends within {} ms.{}",
            status.timeout_ms,
            export_line(&status)
        ),
        json!(status),
    ))
}

fn decisions_status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (next_id, oldest_id, settled_until) = decisions::window();
    let (file, otlp) = decisions::counters();
    let human = alloc::format!(
        "Decision traces: ids {oldest_id}..{next_id} kept, final up to {settled_until} (later ones wait for an outcome)\n  file cursor {}: {} written, {} evicted\n  OTLP cursor {}: {} sent, {} evicted",
        file.cursor,
        format::thousands(file.exported),
        format::thousands(file.evicted),
        otlp.cursor,
        format::thousands(otlp.exported),
        format::thousands(otlp.evicted),
    );
    Ok(Reply::new(
        human,
        json!({ "next_id": next_id, "oldest_id": oldest_id, "settled_until": settled_until, "file": file, "otlp": otlp }),
    ))
}

fn decisions_read(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let cursor = invocation.args.u64("cursor").unwrap_or(0);
    let max = invocation.args.u64("max").unwrap_or(64) as usize;
    let batch = decisions::read(&sis_otel::CursorExporter::starting_at(cursor), max);
    let ids = decisions::ids(&batch);
    let human = alloc::format!(
        "{} traces from {} (cursor {cursor}, {} evicted); next cursor {}",
        ids.len(),
        batch.first_seq,
        batch.evicted,
        batch.next_cursor
    );
    let traces: alloc::vec::Vec<&serde_json::Value> = batch.entries.iter().map(|record| &record.value).collect();
    Ok(Reply::new(
        human,
        json!({ "cursor": cursor, "first_id": batch.first_seq, "evicted": batch.evicted,
                "next_cursor": batch.next_cursor, "traces": traces }),
    ))
}

fn decisions_file(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = String::from(invocation.args.str("path").unwrap_or("/"));
    let mut cursor = crate::sync::lock(&decisions::FILE_CURSOR);
    let batch = decisions::read(&cursor, decisions::MAX_BATCH);
    let text = decisions::lines(&batch);
    FILES.lock().write(&path, text.as_bytes(), true).map_err(shell_error)?;
    // Read at this cursor under its lock: never stale.
    let _ = cursor.commit(&batch);
    let ids = decisions::ids(&batch);
    let human = alloc::format!(
        "Wrote {path}: {} traces from {} ({} evicted before they were written), {}; cursor {}",
        ids.len(),
        batch.first_seq,
        batch.evicted,
        format::bytes(text.len() as u64),
        batch.next_cursor
    );
    Ok(Reply::new(
        human,
        json!({ "path": path, "first_id": batch.first_seq, "count": ids.len(), "evicted": batch.evicted,
                "next_cursor": batch.next_cursor, "bytes": text.len(), "totals": cursor.counters() }),
    ))
}
