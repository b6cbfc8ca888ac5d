//! Command telemetry (`sis-otel`): while `otelctl enable` is on, the shell's console and batch doors record
//! every command they run here (one span, its count, its latency); `otelctl file` exports it as OTLP/JSON lines,
//! `otelctl export` over HTTP ([`export`]).
//!
//! The state is behind a yielding lock ([`crate::sync::lock`]): an export encodes up to 256 spans, which must
//! not run with IRQs masked. A command's span is recorded after it ran, so `otelctl enable` is the first span
//! and `otelctl disable` is not recorded.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use alloc::vec::Vec;

use sis_otel::{CommandOutcome, CommandTelemetry, KeyValue, Metric, Resource, Scope, Span};
use sis_shell::{Outcome, Registry};

use crate::commands::Kernel;

pub mod decisions;
pub mod export;

/// The telemetry since the first `otelctl enable` (kept through `disable`, until reboot).
pub static STATE: spin::Mutex<Option<CommandTelemetry>> = spin::Mutex::new(None);
/// Whether commands are recorded; read without the lock on every command.
pub static ENABLED: AtomicBool = AtomicBool::new(false);

/// The resource every export names: `service.name` `sis-kernel`, its version, and the architecture.
pub fn resource() -> Resource {
    Resource::new("sis-kernel")
        .with(KeyValue::string("service.version", env!("CARGO_PKG_VERSION")))
        .with(KeyValue::string("host.arch", "arm64"))
}

/// The instrumentation scope of the shell's spans and metrics.
pub fn scope() -> Scope {
    Scope::new("sis.shell", env!("CARGO_PKG_VERSION"))
}

/// Records one command line that ran from `start_ns` to `end_ns` with `outcome`, when telemetry is enabled.
/// A line that names no command is recorded as `unknown`; an empty line is not recorded.
pub fn record_command(registry: &Registry<Kernel>, line: &[u8], start_ns: u64, end_ns: u64, outcome: &Outcome) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    let outcome = match outcome {
        Outcome::Empty => return,
        Outcome::Ok => CommandOutcome::Ok,
        Outcome::Failed { code } => CommandOutcome::Failed(code),
    };
    let path = registry.command_path(line).unwrap_or_else(|| String::from("unknown"));
    if let Some(telemetry) = crate::sync::lock(&STATE).as_mut() {
        telemetry.record(&path, start_ns, end_ns, outcome);
    }
}

/// Runs `body` on the telemetry when recording is on (`None` when off or never enabled): for the kernel's other
/// spans (stress runs, inferences), made only while commands are recorded too.
pub fn while_recording<R>(body: impl FnOnce(&mut CommandTelemetry) -> R) -> Option<R> {
    if !ENABLED.load(Relaxed) {
        return None;
    }
    crate::sync::lock(&STATE).as_mut().map(body)
}

/// Runs `body` on the telemetry if it was ever enabled (to end a span begun while recording was on).
pub fn with_telemetry<R>(body: impl FnOnce(&mut CommandTelemetry) -> R) -> Option<R> {
    crate::sync::lock(&STATE).as_mut().map(body)
}

/// Queues finished spans with the command spans (dropped and counted when the queue is full).
pub fn enqueue_spans(spans: Vec<Span>) {
    with_telemetry(|telemetry| spans.into_iter().for_each(|span| telemetry.enqueue_span(span)));
}

/// The kernel's latency histograms beyond the shell's, cumulative from `since_ns` to `now_ns`:
/// `sis.autonomy.decision.duration` (each meta-agent decision, lock held; once the autonomy state exists).
pub fn kernel_metrics(since_ns: u64, now_ns: u64) -> Vec<Metric> {
    let mut metrics = Vec::new();
    if let Some(decisions) = crate::commands::autonomy::decision_cost_metric(since_ns, now_ns) {
        metrics.push(decisions);
    }
    metrics
}
