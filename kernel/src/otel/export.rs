//! OTLP/HTTP export from the kernel's own network stack: a thread posts the command spans (`/v1/traces`) and
//! metric snapshots (`/v1/metrics`) to a collector through smoltcp, one attempt at a time, never holding a lock a
//! command needs while it waits on the network.
//!
//! Spans wait in the telemetry's bounded queue ([`sis_otel::COMMAND_QUEUE`]: batches of 64, 4 attempts, then
//! dropped and counted); metric snapshots in a queue of their own ([`METRICS_QUEUE`]). Each attempt is an
//! [`Exchange`] over a client connection ([`sis_net::NetStack::connect`]) with a deadline, so a collector that is
//! down, refuses or never answers costs counted failures and nothing else: the shell keeps answering and commands
//! keep being recorded (into the queue, or dropped with a count when it is full).

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_otel::{
    encode_metrics, encode_traces, records_span, AttemptCounters, Endpoint, Exchange, ExportError, ExportQueue, Link,
    QueueConfig, QueueCounters, Scope, Signal, Start, TracesAttempt, MAX_RESPONSE_BYTES,
};
use sis_platform::{thread, time};
use sis_sched::ThreadId;
use sis_shell::ShellError;

use super::{decisions, resource, scope, STATE};
use crate::commands::net::link;

/// Metric snapshots held for export: one a request, at most 4 waiting (more are dropped and counted), each tried
/// 4 times (0.5 s, 1 s, 2 s apart).
pub const METRICS_QUEUE: QueueConfig = QueueConfig {
    max_batch: 1,
    max_queued: 4,
    max_attempts: 4,
    initial_backoff_ns: 500_000_000,
    max_backoff_ns: 2_000_000_000,
};
/// Receive and send buffer of an export connection.
const CONNECTION_BUFFER_BYTES: usize = 16 * 1024;
/// The export thread's wait between two looks at a connection in progress.
const STEP_NS: u64 = 1_000_000;
/// The export thread's longest sleep with nothing to send.
const IDLE_NS: u64 = 100_000_000;
/// Decision traces in one span (one event each).
const DECISIONS_PER_SPAN: usize = 64;
/// Wait before a failed batch of decision traces is read and tried again.
const DECISIONS_RETRY_NS: u64 = 1_000_000_000;
/// Stack of the export thread (bodies are on the heap).
const EXPORT_STACK_BYTES: u64 = 64 * 1024;

/// One running export: where to, its limits and what its attempts came to.
#[derive(Debug)]
pub struct HttpExport {
    /// Where to.
    pub endpoint: Endpoint,
    /// Deadline of one attempt, from its start.
    pub timeout_ns: u64,
    /// Between two metric snapshots (metrics only).
    pub interval_ns: u64,
    /// When it started, ns since boot.
    pub started_ns: u64,
    /// The attempts' outcomes.
    pub attempts: AttemptCounters,
    /// Spans (traces) or snapshots (metrics) in requests the collector accepted.
    pub items_sent: u64,
    /// Decision traces sent as span events in accepted requests (traces only).
    pub decisions_sent: u64,
    /// Metric snapshots waiting (metrics only).
    snapshots: Option<ExportQueue<String>>,
    /// When the next snapshot is due (metrics only).
    next_snapshot_ns: u64,
    /// Changes at every start, so an attempt of an export that was stopped meanwhile is not counted in its successor.
    generation: u64,
    /// `otelctl stop` asked for its end: no attempt starts; the thread retires it after the one in progress.
    stopping: bool,
}

/// The exports, and the thread that runs them.
struct Exports {
    traces: Option<HttpExport>,
    metrics: Option<HttpExport>,
    /// The final status of the last export of each signal that ended.
    stopped_traces: Option<ExportStatus>,
    stopped_metrics: Option<ExportStatus>,
    thread: Option<ThreadId>,
    generations: u64,
}

static EXPORTS: spin::Mutex<Exports> = spin::Mutex::new(Exports {
    traces: None,
    metrics: None,
    stopped_traces: None,
    stopped_metrics: None,
    thread: None,
    generations: 0,
});

impl Exports {
    fn slot(&mut self, signal: Signal) -> &mut Option<HttpExport> {
        match signal {
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
        }
    }

    fn stopped(&mut self, signal: Signal) -> &mut Option<ExportStatus> {
        match signal {
            Signal::Traces => &mut self.stopped_traces,
            Signal::Metrics => &mut self.stopped_metrics,
        }
    }

    /// The generation of the export of `signal` when it runs and is not stopping.
    fn active(&mut self, signal: Signal) -> Option<u64> {
        self.slot(signal).as_ref().filter(|export| !export.stopping).map(|export| export.generation)
    }

    /// Moves exports that are stopping to their final status (between attempts: none is in progress).
    fn retire_stopping(&mut self) {
        for signal in [Signal::Traces, Signal::Metrics] {
            if self.slot(signal).as_ref().is_some_and(|export| export.stopping) {
                let final_status = self
                    .slot(signal)
                    .take()
                    .map(|export| ExportStatus { state: ExportState::Stopped, ..status_of(&export) });
                *self.stopped(signal) = final_status;
            }
        }
    }
}

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportState {
    /// Sending.
    Running,
    /// `otelctl stop` ran; the attempt in progress ends (at most its deadline), then it is stopped.
    Stopping,
    /// Over: these are its final figures.
    Stopped,
}

/// What `otelctl status` shows of one export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportStatus {
    /// Running, stopping or stopped.
    pub state: ExportState,
    /// The URL, canonical.
    pub url: String,
    /// What it sends.
    pub signal: Signal,
    /// Deadline of one attempt, ms.
    pub timeout_ms: u64,
    /// Between two snapshots, ms (metrics; null for traces).
    pub interval_ms: Option<u64>,
    /// When it started, ns since boot.
    pub started_ns: u64,
    /// Spans or snapshots in accepted requests (command spans and decision spans, for traces).
    pub items_sent: u64,
    /// Decision traces sent as span events in accepted requests (traces; 0 for metrics).
    pub decisions_sent: u64,
    /// The attempts by outcome.
    pub attempts: AttemptCounters,
    /// The snapshot queue's counters (metrics; null for traces, whose queue is `spans` in the status).
    pub snapshots: Option<QueueCounters>,
}

fn status_of(export: &HttpExport) -> ExportStatus {
    let state = match export.stopping {
        false => ExportState::Running,
        true => ExportState::Stopping,
    };
    ExportStatus {
        state,
        url: export.endpoint.url(),
        signal: export.endpoint.signal,
        timeout_ms: export.timeout_ns / 1_000_000,
        interval_ms: (export.endpoint.signal == Signal::Metrics).then_some(export.interval_ns / 1_000_000),
        started_ns: export.started_ns,
        items_sent: export.items_sent,
        decisions_sent: export.decisions_sent,
        attempts: export.attempts.clone(),
        snapshots: export.snapshots.as_ref().map(ExportQueue::counters),
    }
}

/// The status of the export of `signal`, if one runs (or is stopping).
pub fn status(signal: Signal) -> Option<ExportStatus> {
    crate::sync::lock(&EXPORTS).slot(signal).as_ref().map(status_of)
}

/// The final status of the last export of `signal` that ended, if any.
pub fn last_stopped(signal: Signal) -> Option<ExportStatus> {
    crate::sync::lock(&EXPORTS).stopped(signal).clone()
}

/// Starts exporting `endpoint`'s signal (refused when one runs already, or the thread cannot start: nothing
/// changes then).
pub fn start(endpoint: Endpoint, timeout_ns: u64, interval_ns: u64) -> Result<ExportStatus, ShellError> {
    let mut exports = crate::sync::lock(&EXPORTS);
    if let Some(running) = exports.slot(endpoint.signal).as_ref() {
        let message = match running.stopping {
            true => alloc::format!(
                "the export of {} to {} is stopping (its last attempt ends within {} ms)",
                endpoint.signal.name(),
                running.endpoint.url(),
                running.timeout_ns / 1_000_000
            ),
            false => alloc::format!(
                "{} go to {} already: `otelctl stop {}` first",
                endpoint.signal.name(),
                running.endpoint.url(),
                endpoint.signal.name()
            ),
        };
        return Err(ShellError::new("already-exporting", message));
    }
    if exports.thread.is_none() {
        let id = thread::spawn("otel-export", EXPORT_STACK_BYTES, run).map_err(|error| {
            ShellError::new("spawn-failed", alloc::format!("cannot start the export thread: {error}"))
        })?;
        exports.thread = Some(id);
    }
    let snapshots = match endpoint.signal {
        Signal::Traces => None,
        Signal::Metrics => Some(
            ExportQueue::new(METRICS_QUEUE).map_err(|error| ShellError::new("bad-queue", alloc::format!("{error}")))?,
        ),
    };
    exports.generations += 1;
    let now = time::now_ns();
    let export = HttpExport {
        endpoint,
        timeout_ns,
        interval_ns,
        started_ns: now,
        attempts: AttemptCounters::default(),
        items_sent: 0,
        decisions_sent: 0,
        snapshots,
        next_snapshot_ns: now,
        generation: exports.generations,
        stopping: false,
    };
    let status = status_of(&export);
    *exports.slot(endpoint.signal) = Some(export);
    if let Some(id) = exports.thread {
        thread::wake(id);
    }
    Ok(status)
}

/// Stops the export of `signal`: no attempt starts from now on, and the thread retires it once the attempt in
/// progress (if any) ended, at most its deadline later: a request is never cut short. Its status now (`stopping`);
/// the final one is [`last_stopped`] once [`status`] is `None`.
pub fn stop(signal: Signal) -> Result<ExportStatus, ShellError> {
    let mut exports = crate::sync::lock(&EXPORTS);
    let not_exporting = || ShellError::new("not-exporting", alloc::format!("no export of {} runs", signal.name()));
    let export = exports.slot(signal).as_mut().filter(|export| !export.stopping).ok_or_else(not_exporting)?;
    export.stopping = true;
    let status = status_of(export);
    if let Some(id) = exports.thread {
        thread::wake(id);
    }
    Ok(status)
}

/// Whether the export of `signal` started as `generation` still runs.
fn running(signal: Signal, generation: u64) -> Option<(Endpoint, u64)> {
    let mut exports = crate::sync::lock(&EXPORTS);
    exports
        .slot(signal)
        .as_ref()
        .filter(|export| export.generation == generation)
        .map(|export| (export.endpoint, export.timeout_ns))
}

/// The export thread: spans, then a metric snapshot if one is due, then sleep until the next thing to do.
fn run() {
    loop {
        crate::sync::lock(&EXPORTS).retire_stopping();
        let traces_next = export_traces();
        let decisions_next = export_decisions();
        let metrics_next = export_metrics();
        let now = time::now_ns();
        let wake_at = traces_next.min(decisions_next).min(metrics_next).min(now.saturating_add(IDLE_NS));
        if wake_at > now {
            thread::sleep_until_ns_or_woken(wake_at, || false);
        }
    }
}

/// One attempt at the spans' next batch, if an export of traces runs; returns when to look again.
fn export_traces() -> u64 {
    let now = time::now_ns();
    let Some(generation) = crate::sync::lock(&EXPORTS).active(Signal::Traces) else { return u64::MAX };
    let attempt =
        crate::sync::lock(&STATE).as_mut().map(|telemetry| telemetry.start_traces(&resource(), &scope(), now));
    let (body, spans) = match attempt {
        Some(TracesAttempt::Ready { body, spans }) => (body, spans),
        Some(TracesAttempt::Waiting { retry_at_ns }) => return retry_at_ns,
        Some(TracesAttempt::Idle | TracesAttempt::Busy) | None => return u64::MAX,
    };
    let (result, request_bytes) = post(Signal::Traces, generation, &body);
    let finished = time::now_ns();
    if let Some(telemetry) = crate::sync::lock(&STATE).as_mut() {
        // The attempt began above, so there is one to finish.
        let _ = telemetry.finish_traces(finished, result.as_ref().map(|_| ()));
    }
    let mut exports = crate::sync::lock(&EXPORTS);
    if let Some(export) = exports.traces.as_mut().filter(|export| export.generation == generation) {
        export.attempts.record(request_bytes, &result);
        if result.is_ok() {
            export.items_sent += spans as u64;
        }
    }
    finished
}

/// The scope of the decision traces' spans.
fn decisions_scope() -> Scope {
    Scope::new("sis.autonomy", env!("CARGO_PKG_VERSION"))
}

/// One attempt at the next decision traces from the OTLP cursor (a span with an event per trace), if an export of
/// traces runs; the cursor moves only when the collector accepted them. Returns when to look again.
fn export_decisions() -> u64 {
    let now = time::now_ns();
    let Some(generation) = crate::sync::lock(&EXPORTS).active(Signal::Traces) else { return u64::MAX };
    let (exporter, retry_at_ns) = *crate::sync::lock(&decisions::OTLP_CURSOR);
    if now < retry_at_ns {
        return retry_at_ns;
    }
    let batch = decisions::read(&exporter, DECISIONS_PER_SPAN);
    if batch.entries.is_empty() && batch.evicted == 0 {
        return u64::MAX;
    }
    let span = {
        let mut state = crate::sync::lock(&STATE);
        let Some(telemetry) = state.as_mut() else { return u64::MAX };
        records_span(telemetry.ids(), "sis.autonomy.decisions", "decision", "sis.decision", &batch, now)
    };
    let Ok(body) = encode_traces(&resource(), &decisions_scope(), &[span]) else { return u64::MAX };
    let (result, request_bytes) = post(Signal::Traces, generation, &body);
    let finished = time::now_ns();
    {
        let mut cursor = crate::sync::lock(&decisions::OTLP_CURSOR);
        match result {
            // Only this thread commits to the OTLP cursor, so the batch is never stale.
            Ok(_) => {
                let _ = cursor.0.commit(&batch);
            }
            Err(_) => cursor.1 = finished.saturating_add(DECISIONS_RETRY_NS),
        }
    }
    let mut exports = crate::sync::lock(&EXPORTS);
    if let Some(export) = exports.traces.as_mut().filter(|export| export.generation == generation) {
        export.attempts.record(request_bytes, &result);
        if result.is_ok() {
            export.items_sent += 1;
            export.decisions_sent += batch.entries.len() as u64;
        }
    }
    finished
}

/// Takes a metric snapshot if one is due and makes one attempt at the oldest waiting; returns when to look again.
fn export_metrics() -> u64 {
    let now = time::now_ns();
    let snapshot_due = {
        let exports = crate::sync::lock(&EXPORTS);
        match exports.metrics.as_ref().filter(|export| !export.stopping) {
            None => return u64::MAX,
            Some(export) => now >= export.next_snapshot_ns,
        }
    };
    let snapshot = if snapshot_due {
        let since_ns = crate::sync::lock(&STATE).as_ref().map(sis_otel::CommandTelemetry::since_ns);
        // The kernel's other histograms are read before the telemetry's lock: they take their own locks.
        let extra = since_ns.map(|since_ns| super::kernel_metrics(since_ns, now)).unwrap_or_default();
        crate::sync::lock(&STATE).as_ref().and_then(|telemetry| {
            let mut metrics = telemetry.metrics(now);
            metrics.extend(extra);
            encode_metrics(&resource(), &scope(), &metrics).ok()
        })
    } else {
        None
    };
    let (generation, body, next_snapshot_ns) = {
        let mut exports = crate::sync::lock(&EXPORTS);
        let Some(export) = exports.metrics.as_mut().filter(|export| !export.stopping) else { return u64::MAX };
        if snapshot_due {
            export.next_snapshot_ns = now.saturating_add(export.interval_ns);
        }
        let Some(queue) = export.snapshots.as_mut() else { return u64::MAX };
        if let Some(snapshot) = snapshot {
            // A full queue counts the snapshot as dropped.
            let _ = queue.enqueue(snapshot);
        }
        let body = match queue.start(now) {
            Start::Ready(batch) => batch.first().cloned(),
            Start::Waiting { retry_at_ns } => return retry_at_ns.min(export.next_snapshot_ns),
            Start::Idle | Start::Busy => return export.next_snapshot_ns,
        };
        (export.generation, body, export.next_snapshot_ns)
    };
    let Some(body) = body else { return next_snapshot_ns };
    let (result, request_bytes) = post(Signal::Metrics, generation, &body);
    let finished = time::now_ns();
    let mut exports = crate::sync::lock(&EXPORTS);
    if let Some(export) = exports.metrics.as_mut().filter(|export| export.generation == generation) {
        export.attempts.record(request_bytes, &result);
        if let Some(queue) = export.snapshots.as_mut() {
            let _ = queue.finish(finished, result.as_ref().map(|_| ()));
        }
        if result.is_ok() {
            export.items_sent += 1;
        }
    }
    finished
}

/// Posts `body` to the export of `signal` started as `generation` (`stopped` if it no longer runs): connects,
/// sends, reads the answer, releases the connection. Returns the outcome and the request's size.
fn post(signal: Signal, generation: u64, body: &str) -> (Result<u16, ExportError>, usize) {
    let Some((endpoint, timeout_ns)) = running(signal, generation) else {
        return (Err(ExportError::Local(String::from("stopped"))), 0);
    };
    let mut exchange = Exchange::new(&endpoint, body, time::now_ns(), timeout_ns);
    let request_bytes = exchange.request_bytes();
    let connected = link::with_net(|net| {
        net.stack
            .connect(endpoint.address, endpoint.port, CONNECTION_BUFFER_BYTES)
            .map_err(|error| ShellError::new("connect-failed", alloc::format!("{error}")))
    });
    let id = match connected {
        Ok(id) => id,
        Err(error) => return (Err(ExportError::Local(String::from(error.code()))), request_bytes),
    };
    link::kick();
    let mut received = Vec::new();
    // An attempt runs to its end or its deadline even if the export is stopped meanwhile: cutting the request
    // short would hand the collector half a body.
    let result = loop {
        let now = time::now_ns();
        received.clear();
        let stepped = link::with_net(|net| {
            let sent = net.stack.client_send(id, exchange.unsent()).unwrap_or(0);
            exchange.sent(sent);
            let _ = net.stack.client_receive(id, &mut received, MAX_RESPONSE_BYTES);
            let state = net.stack.client_state(id).unwrap_or(sis_net::ClientState::Closed { established: false });
            Ok((sent, state))
        });
        let (sent, state) = match stepped {
            Ok(stepped) => stepped,
            Err(error) => break Err(ExportError::Local(String::from(error.code()))),
        };
        if sent > 0 {
            link::kick();
        }
        let link_state = match state {
            sis_net::ClientState::Connecting => Link::Connecting,
            sis_net::ClientState::Open | sis_net::ClientState::Closing => Link::Open,
            sis_net::ClientState::PeerClosed => Link::PeerClosed,
            sis_net::ClientState::Closed { established } => Link::Closed { established },
        };
        if let Some(result) = exchange.step(now, link_state, &received) {
            break result;
        }
        thread::sleep_ns(STEP_NS);
    };
    let _ = link::with_net(|net| {
        let _ = net.stack.client_release(id, time::now_ns());
        Ok(())
    });
    link::kick();
    (result, request_bytes)
}
