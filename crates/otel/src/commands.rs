//! Telemetry of shell commands: one span per command run, counters by command and outcome, a latency histogram,
//! and the export of all of it as OTLP/JSON lines (what `otelctl file` writes).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{
    encode_metrics, encode_traces, ExportQueue, HistogramPoint, IdGenerator, KeyValue, Metric, NoAttempt, NumberPoint,
    NumberValue, OpenSpan, Poll, QueueConfig, QueueConfigError, QueueCounters, Resource, Scope, Span, SpanKind, Start,
    Status,
};

/// Upper bounds of the command latency histogram's buckets, ns: 10 µs, 100 µs, 1 ms, 10 ms, 100 ms, 1 s, 10 s.
pub const LATENCY_BOUNDS_NS: [u64; 7] =
    [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000];

/// The queue of command spans: exported 64 a line or a request, at most 256 held. Over HTTP a failed batch is
/// tried 4 times in all, 0.5 s, 1 s and 2 s after each failure, then dropped and counted; a file write takes
/// every batch at once and is one attempt.
pub const COMMAND_QUEUE: QueueConfig = QueueConfig {
    max_batch: 64,
    max_queued: 256,
    max_attempts: 4,
    initial_backoff_ns: 500_000_000,
    max_backoff_ns: 2_000_000_000,
};

/// What [`CommandTelemetry::start_traces`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracesAttempt {
    /// No span waits.
    Idle,
    /// A failed batch waits for its retry, due at `retry_at_ns`.
    Waiting {
        /// When the retry is due.
        retry_at_ns: u64,
    },
    /// An attempt is open already.
    Busy,
    /// An attempt began: post `body` (an `ExportTraceServiceRequest` of `spans` spans), then
    /// [`CommandTelemetry::finish_traces`].
    Ready {
        /// The OTLP/JSON body.
        body: String,
        /// Spans in it.
        spans: usize,
    },
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome<'a> {
    /// It succeeded.
    Ok,
    /// It failed with this error code.
    Failed(&'a str),
}

/// Runs and failures of one command path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommandCounts {
    /// Runs that succeeded.
    pub ok: u64,
    /// Runs that failed.
    pub failed: u64,
}

/// What [`CommandTelemetry::export`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Export {
    /// Spans in it.
    pub spans: u64,
    /// Lines of traces (one per batch of at most [`COMMAND_QUEUE`]'s `max_batch` spans).
    pub trace_lines: u64,
    /// Metrics in its one metrics line.
    pub metrics: u64,
    /// Its size.
    pub bytes: u64,
}

/// Command spans waiting for export, and the figures the metrics are made of, since `since_ns`.
#[derive(Debug, Clone)]
pub struct CommandTelemetry {
    seed: u64,
    since_ns: u64,
    ids: IdGenerator,
    queue: ExportQueue<Span>,
    counts: BTreeMap<String, CommandCounts>,
    latency_buckets: [u64; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: u64,
    latency_min_ns: Option<u64>,
    latency_max_ns: Option<u64>,
    exports: u64,
}

impl CommandTelemetry {
    /// Starts at `since_ns`, with span ids from `seed` and spans queued as `queue` says (the kernel's:
    /// [`COMMAND_QUEUE`]).
    pub fn new(seed: u64, since_ns: u64, queue: QueueConfig) -> Result<Self, QueueConfigError> {
        Ok(CommandTelemetry {
            seed,
            since_ns,
            ids: IdGenerator::new(seed),
            queue: ExportQueue::new(queue)?,
            counts: BTreeMap::new(),
            latency_buckets: [0; LATENCY_BOUNDS_NS.len() + 1],
            latency_sum_ns: 0,
            latency_min_ns: None,
            latency_max_ns: None,
            exports: 0,
        })
    }

    /// The seed of its span ids.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Its id generator, for other spans of the same export (the decision traces'): they draw from the same
    /// seeded sequence.
    pub fn ids(&mut self) -> &mut IdGenerator {
        &mut self.ids
    }

    /// When it started counting, ns.
    pub fn since_ns(&self) -> u64 {
        self.since_ns
    }

    /// The span queue's counters.
    pub fn queue_counters(&self) -> QueueCounters {
        self.queue.counters()
    }

    /// Runs and failures by command path.
    pub fn counts(&self) -> &BTreeMap<String, CommandCounts> {
        &self.counts
    }

    /// Files written by [`Self::export`].
    pub fn exports(&self) -> u64 {
        self.exports
    }

    /// Records one command run from `start_ns` to `end_ns`: its span (queued, or dropped and counted when the
    /// queue is full), its count and its latency.
    pub fn record(&mut self, path: &str, start_ns: u64, end_ns: u64, outcome: CommandOutcome<'_>) {
        let end_ns = end_ns.max(start_ns);
        let mut span = OpenSpan::root(&mut self.ids, path, SpanKind::Server, start_ns);
        span.set_attribute(KeyValue::string("sis.command.path", path));
        let counts = self.counts.entry(String::from(path)).or_default();
        match outcome {
            CommandOutcome::Ok => {
                counts.ok += 1;
                span.set_attribute(KeyValue::string("sis.command.outcome", "ok"));
                span.set_status(Status::Ok);
            }
            CommandOutcome::Failed(code) => {
                counts.failed += 1;
                span.set_attribute(KeyValue::string("sis.command.outcome", "failed"));
                span.set_attribute(KeyValue::string("sis.command.error_code", code));
                span.set_status(Status::Error(String::from(code)));
            }
        }
        let duration_ns = end_ns - start_ns;
        let bucket = LATENCY_BOUNDS_NS.partition_point(|bound| *bound < duration_ns);
        self.latency_buckets[bucket] += 1;
        self.latency_sum_ns = self.latency_sum_ns.saturating_add(duration_ns);
        self.latency_min_ns = Some(self.latency_min_ns.map_or(duration_ns, |min| min.min(duration_ns)));
        self.latency_max_ns = Some(self.latency_max_ns.map_or(duration_ns, |max| max.max(duration_ns)));
        if let Ok(span) = span.end(end_ns) {
            // A full queue counts the span as dropped; the command's count and latency are kept all the same.
            let _ = self.queue.enqueue(span);
        }
    }

    /// The metrics at `now_ns`: `sis.shell.commands` (runs by path and outcome), `sis.shell.command.duration`
    /// (latency histogram, ns), and the span queue's `sis.otel.spans.*` counters and held gauge.
    pub fn metrics(&self, now_ns: u64) -> Vec<Metric> {
        metrics_of(self, &self.queue.counters(), now_ns)
    }

    /// Begins an export attempt of the next batch of spans at `now_ns` (over HTTP: it ends with
    /// [`Self::finish_traces`], the batch held until then). A batch that cannot be encoded fails at once.
    pub fn start_traces(&mut self, resource: &Resource, scope: &Scope, now_ns: u64) -> TracesAttempt {
        let encoded = match self.queue.start(now_ns) {
            Start::Idle => return TracesAttempt::Idle,
            Start::Waiting { retry_at_ns } => return TracesAttempt::Waiting { retry_at_ns },
            Start::Busy => return TracesAttempt::Busy,
            Start::Ready(batch) => encode_traces(resource, scope, batch).map(|body| (body, batch.len())),
        };
        match encoded {
            Ok((body, spans)) => TracesAttempt::Ready { body, spans },
            Err(_) => match self.queue.finish(now_ns, Err(())) {
                Ok(Poll::Retrying { retry_at_ns, .. }) => TracesAttempt::Waiting { retry_at_ns },
                _ => TracesAttempt::Idle,
            },
        }
    }

    /// Ends the attempt [`Self::start_traces`] began with the exporter's `result`.
    pub fn finish_traces<E>(&mut self, now_ns: u64, result: Result<(), E>) -> Result<Poll<E>, NoAttempt> {
        self.queue.finish(now_ns, result)
    }

    /// Queues a span made elsewhere in the kernel (a stress run's, an inference's), or drops and counts it when
    /// the queue is full; it is exported with the command spans.
    pub fn enqueue_span(&mut self, span: Span) {
        // A full queue counts the span as dropped.
        let _ = self.queue.enqueue(span);
    }

    /// Writes every queued span and the metrics at `now_ns` as OTLP/JSON lines (traces lines of up to 64 spans,
    /// then one metrics line) through `write`, which gets the whole text. Only when `write` succeeds are the
    /// spans taken from the queue and counted as exported; when it fails nothing changes.
    pub fn export<E>(
        &mut self,
        resource: &Resource,
        scope: &Scope,
        now_ns: u64,
        write: impl FnOnce(&str) -> Result<(), E>,
    ) -> Result<Export, E> {
        self.export_with(resource, scope, now_ns, Vec::new(), write)
    }

    /// [`Self::export`] with `extra` metrics (the kernel's other latencies) after the telemetry's own.
    pub fn export_with<E>(
        &mut self,
        resource: &Resource,
        scope: &Scope,
        now_ns: u64,
        extra: Vec<Metric>,
        write: impl FnOnce(&str) -> Result<(), E>,
    ) -> Result<Export, E> {
        let mut trial = self.queue.clone();
        let mut text = String::new();
        let (mut spans, mut trace_lines) = (0u64, 0u64);
        loop {
            let poll = trial.poll(now_ns, |batch: &[Span]| match encode_traces(resource, scope, batch) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                    Ok(())
                }
                Err(error) => Err(error),
            });
            match poll {
                Poll::Exported { items } => {
                    spans += items as u64;
                    trace_lines += 1;
                }
                // An encoding that fails drops its batch (counted by the queue); no attempt waits.
                Poll::Dropped { .. } => {}
                Poll::Idle | Poll::Waiting { .. } | Poll::Retrying { .. } => break,
            }
        }
        let mut metrics = metrics_of(self, &trial.counters(), now_ns);
        metrics.extend(extra);
        if let Ok(line) = encode_metrics(resource, scope, &metrics) {
            text.push_str(&line);
            text.push('\n');
        }
        write(&text)?;
        self.queue = trial;
        self.exports += 1;
        Ok(Export { spans, trace_lines, metrics: metrics.len() as u64, bytes: text.len() as u64 })
    }
}

fn metrics_of(telemetry: &CommandTelemetry, queue: &QueueCounters, now_ns: u64) -> Vec<Metric> {
    let since = telemetry.since_ns;
    let counter = |value: u64, attributes: Vec<KeyValue>| {
        let mut point = NumberPoint::new(since, now_ns, NumberValue::Int(i64::try_from(value).unwrap_or(i64::MAX)));
        point.attributes = attributes;
        point
    };
    let mut runs = Vec::new();
    for (path, counts) in &telemetry.counts {
        for (outcome, count) in [("ok", counts.ok), ("failed", counts.failed)] {
            if count > 0 {
                let attributes = alloc::vec![
                    KeyValue::string("sis.command.path", path),
                    KeyValue::string("sis.command.outcome", outcome),
                ];
                runs.push(counter(count, attributes));
            }
        }
    }
    let bounds = LATENCY_BOUNDS_NS.iter().map(|bound| *bound as f64).collect();
    let mut metrics = alloc::vec![Metric::counter("sis.shell.commands", "Shell commands run", "{command}", runs)];
    if let Ok(mut latency) = HistogramPoint::new(since, now_ns, bounds, telemetry.latency_buckets.to_vec()) {
        latency.sum = Some(telemetry.latency_sum_ns as f64);
        latency.min = telemetry.latency_min_ns.map(|min| min as f64);
        latency.max = telemetry.latency_max_ns.map(|max| max as f64);
        metrics.push(Metric::histogram(
            "sis.shell.command.duration",
            "Time from a command's start to its reply",
            "ns",
            alloc::vec![latency],
        ));
    }
    let spans = |name: &str, description: &str, value: u64| {
        Metric::counter(name, description, "{span}", alloc::vec![counter(value, Vec::new())])
    };
    metrics.push(spans("sis.otel.spans.enqueued", "Command spans queued for export", queue.enqueued));
    metrics.push(spans("sis.otel.spans.exported", "Command spans exported", queue.exported));
    metrics.push(spans("sis.otel.spans.dropped", "Command spans dropped: the queue was full", queue.dropped_full));
    metrics.push(spans(
        "sis.otel.spans.failed",
        "Command spans dropped after every export attempt failed",
        queue.dropped_after_retries,
    ));
    let held = NumberValue::Int(i64::try_from(queue.held).unwrap_or(i64::MAX));
    metrics.push(Metric::gauge(
        "sis.otel.spans.held",
        "Command spans waiting for export",
        "{span}",
        alloc::vec![NumberPoint::new(since, now_ns, held)],
    ));
    metrics
}

#[cfg(test)]
mod tests;
