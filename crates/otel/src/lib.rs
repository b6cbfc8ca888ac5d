//! OpenTelemetry for SIS: spans and metrics as OTLP models them, their OTLP/JSON encoding, and the machinery to
//! export them without ever blocking the kernel.
//!
//! - [`TraceId`], [`SpanId`] and [`IdGenerator`]: ids drawn from a seeded generator, never all zero.
//! - [`Span`], [`Resource`], [`Scope`] and attributes ([`KeyValue`], [`AnyValue`]): the trace model.
//! - [`Metric`] with [`MetricData::Sum`], [`MetricData::Gauge`] and [`MetricData::Histogram`]: the metrics model.
//! - [`encode_traces`] and [`encode_metrics`]: the bodies of `POST /v1/traces` and `POST /v1/metrics` in
//!   OTLP/JSON (lowerCamelCase names, ids in hex, 64-bit integers as decimal strings, enums as integers).
//! - [`ExportQueue`]: a bounded queue that batches, retries a failed batch with backoff on the caller's clock,
//!   and drops with a count when full or out of attempts.
//! - [`Endpoint`] and [`Exchange`]: where an OTLP/HTTP export goes and one `POST` attempt as a state machine over
//!   the caller's TCP connection, with the web server's HTTP parser reading the answer.
//! - [`CursorExporter`]: reads a sequence-numbered source (such as the decision traces) so that every entry is
//!   exported exactly once or counted as evicted.
//! - [`records_span`] and [`json_lines`]: a cursor's batch of sequenced records (the decision traces) as one
//!   span with an event per record, or as JSON lines.
//! - [`RunTrace`], [`operation_span`] and [`latency_histogram`]: a stress run's span with a child per phase, an
//!   inference's span, and `sis-metrics` latency histograms as exact OTLP histograms.
//! - [`CommandTelemetry`]: a span per shell command, counters and a latency histogram, exported as OTLP/JSON
//!   lines (`otelctl`).
//!
//! Time is always an argument (Unix nanoseconds for telemetry, any monotonic nanoseconds for the queue's
//! backoff), so every rule is tested on the host with made-up clocks.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod attribute;
mod commands;
mod cursor;
mod encode;
mod endpoint;
mod http;
mod id;
mod metric;
mod queue;
mod records;
mod runs;
mod span;

pub use attribute::{AnyValue, KeyValue, Resource, Scope, SERVICE_NAME};
pub use commands::{
    CommandCounts, CommandOutcome, CommandTelemetry, Export, TracesAttempt, COMMAND_QUEUE, LATENCY_BOUNDS_NS,
};
pub use cursor::{CursorBatch, CursorCounters, CursorExporter, SequencedSource, StaleBatch};
pub use encode::{encode_metrics, encode_traces};
pub use endpoint::{Endpoint, Signal, UrlError};
pub use http::{AttemptCounters, Exchange, ExportError, Link, MAX_RESPONSE_BYTES};
pub use id::{HexError, IdGenerator, SpanId, TraceId};
pub use metric::{HistogramPoint, Metric, MetricData, MetricError, NumberPoint, NumberValue, Temporality};
pub use queue::{ExportQueue, NoAttempt, Poll, QueueConfig, QueueConfigError, QueueCounters, QueueFull, Start};
pub use records::{json_attributes, json_lines, records_span, Record};
pub use runs::{latency_histogram, operation_span, RunTrace, LATENCY_EXPONENTS};
pub use span::{OpenSpan, Span, SpanError, SpanEvent, SpanKind, Status};
