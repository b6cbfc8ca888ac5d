//! `otelctl`: OpenTelemetry of shell commands (`sis-otel`): turn it on and off, see its counters, export it to a
//! file as OTLP/JSON lines.

use alloc::string::String;
use core::sync::atomic::Ordering::Relaxed;

use serde_json::json;
use sis_otel::{CommandTelemetry, COMMAND_QUEUE};
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::files::{shell_error, FILES};
use super::Kernel;
use crate::format;
use crate::otel::{resource, scope, ENABLED, STATE};

/// `otelctl`.
pub static OTELCTL: CommandSpec<Kernel> = CommandSpec {
    name: "otelctl",
    summary: "OpenTelemetry of shell commands: a span each, counters and latencies, exported as OTLP/JSON",
    description: "While enabled, every command run on the console or from sis.run becomes one span (its path, outcome, error code, start and end in ns since boot) and is counted by path and outcome, its duration in a latency histogram. Spans wait in a queue of at most 256 (more are dropped and counted) until `otelctl file` writes them. Fields and encoding: docs/otel.md.",
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
                             "files_written": 0 });
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
    let mut state = crate::sync::lock(&STATE);
    let telemetry = state.as_mut().ok_or_else(not_enabled)?;
    let export = telemetry.export(&resource(), &scope(), time::now_ns(), |text| {
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
