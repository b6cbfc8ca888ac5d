//! Spans of work that has parts (a stress run and its phases) and of single operations (an inference), and the
//! kernel's latency histograms (`sis-metrics`) as OTLP histograms.

use alloc::string::String;
use alloc::vec::Vec;

use sis_metrics::LatencyHistogram;

use crate::{CommandOutcome, HistogramPoint, IdGenerator, KeyValue, Metric, OpenSpan, Span, SpanKind, Status};

/// Bounds of a latency histogram exported by [`latency_histogram`]: `2^k - 1` ns for k = 10..=34 (1,023 ns to
/// about 17.2 s). They are where `sis-metrics`' buckets meet, so every count is exact: a value `v` (whole ns) is
/// at most `2^k - 1` exactly when it is below `2^k`.
pub const LATENCY_EXPONENTS: core::ops::RangeInclusive<u32> = 10..=34;

/// A run: a root span from its start, and a child span for each part from the end of the one before (or the
/// run's start) to its own end.
#[derive(Debug, Clone)]
pub struct RunTrace {
    root: OpenSpan,
    last_boundary_ns: u64,
    parts: Vec<Span>,
}

impl RunTrace {
    /// The run `name` starting at `start_ns` with `attributes`.
    pub fn start(ids: &mut IdGenerator, name: &str, start_ns: u64, attributes: Vec<KeyValue>) -> RunTrace {
        let mut root = OpenSpan::root(ids, name, SpanKind::Internal, start_ns);
        for attribute in attributes {
            root.set_attribute(attribute);
        }
        RunTrace { root, last_boundary_ns: start_ns, parts: Vec::new() }
    }

    /// Part `name` ended at `now_ns`: its span runs from the previous part's end (or the run's start).
    pub fn part_done(&mut self, ids: &mut IdGenerator, name: &str, now_ns: u64, attributes: Vec<KeyValue>) {
        let now_ns = now_ns.max(self.last_boundary_ns);
        // The part starts at or after the root's start, so `child` cannot refuse it.
        if let Ok(mut part) = self.root.child(ids, name, SpanKind::Internal, self.last_boundary_ns) {
            for attribute in attributes {
                part.set_attribute(attribute);
            }
            part.set_status(Status::Ok);
            self.parts.push(part.end_no_earlier_than_start(now_ns));
        }
        self.last_boundary_ns = now_ns;
    }

    /// The run ended at `now_ns` with `outcome`: its parts' spans, then the root's (ok, or error with the code).
    pub fn finish(self, now_ns: u64, outcome: CommandOutcome<'_>) -> Vec<Span> {
        let mut root = self.root;
        match outcome {
            CommandOutcome::Ok => root.set_status(Status::Ok),
            CommandOutcome::Failed(code) => {
                root.set_attribute(KeyValue::string("sis.error_code", code));
                root.set_status(Status::Error(String::from(code)));
            }
        }
        let mut spans = self.parts;
        spans.push(root.end_no_earlier_than_start(now_ns.max(self.last_boundary_ns)));
        spans
    }
}

/// One operation as a root span `name` from `start_ns` to `end_ns` with `attributes`, ok or failed.
pub fn operation_span(
    ids: &mut IdGenerator,
    name: &str,
    start_ns: u64,
    end_ns: u64,
    attributes: Vec<KeyValue>,
    outcome: CommandOutcome<'_>,
) -> Span {
    RunTrace::start(ids, name, start_ns, attributes).finish(end_ns, outcome).pop().unwrap_or_else(|| {
        // `finish` always returns the root last; never reached.
        OpenSpan::root(ids, name, SpanKind::Internal, start_ns).end_no_earlier_than_start(end_ns)
    })
}

/// `histogram` as a cumulative OTLP histogram `name` (unit ns) from `start_ns` to `now_ns`, with the bounds of
/// [`LATENCY_EXPONENTS`]; `None` when a count cannot be exact (a value past `sis-metrics`' last bucket).
pub fn latency_histogram(
    name: &str,
    description: &str,
    histogram: &LatencyHistogram,
    start_ns: u64,
    now_ns: u64,
) -> Option<Metric> {
    let limits: Vec<u64> = LATENCY_EXPONENTS.map(|exponent| 1u64 << exponent).collect();
    // One pass over the buckets (the kernel reads it under its subsystem's lock).
    let below = histogram.counts_below(&limits)?;
    let mut buckets = Vec::with_capacity(limits.len() + 1);
    let mut previous = 0;
    for count in below.as_slice() {
        buckets.push(count - previous);
        previous = *count;
    }
    buckets.push(histogram.count() - previous);
    let bounds = LATENCY_EXPONENTS.map(|exponent| ((1u64 << exponent) - 1) as f64).collect();
    let mut point = HistogramPoint::new(start_ns, now_ns, bounds, buckets).ok()?;
    if histogram.count() > 0 {
        point.sum = Some(histogram.sum_ns() as f64);
        point.min = Some(histogram.min() as f64);
        point.max = Some(histogram.max() as f64);
    }
    Some(Metric::histogram(name, description, "ns", alloc::vec![point]))
}

#[cfg(test)]
mod tests;
