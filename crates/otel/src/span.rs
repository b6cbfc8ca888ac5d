//! Spans: an operation's ids, parent, name, kind, times, attributes, events and status.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{IdGenerator, KeyValue, SpanId, TraceId};

/// What side of an interaction a span is (OTLP's `Span.SpanKind`, written as its number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Not said (0).
    Unspecified,
    /// An operation inside the kernel (1): a command, a stress phase, an inference.
    Internal,
    /// Handling a request from outside (2), such as an HTTP request to the web server.
    Server,
    /// A request to something outside (3).
    Client,
    /// Sending a message for later handling (4).
    Producer,
    /// Handling such a message (5).
    Consumer,
}

impl SpanKind {
    /// Its number in OTLP.
    pub fn code(self) -> u8 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
}

/// How the operation ended (OTLP's `Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not said (code 0).
    Unset,
    /// It succeeded (code 1).
    Ok,
    /// It failed (code 2), with a message for people.
    Error(String),
}

impl Status {
    /// Its code in OTLP.
    pub fn code(&self) -> u8 {
        match self {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error(_) => 2,
        }
    }
}

/// Something that happened at one moment during a span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// What happened.
    pub name: String,
    /// When, Unix ns.
    pub time_unix_nano: u64,
    /// Its details.
    pub attributes: Vec<KeyValue>,
}

/// A finished span, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for the root of a trace.
    pub parent_span_id: Option<SpanId>,
    /// The operation.
    pub name: String,
    /// Its kind.
    pub kind: SpanKind,
    /// When it started, Unix ns.
    pub start_time_unix_nano: u64,
    /// When it ended, Unix ns (not before the start when made through [`OpenSpan::end`]).
    pub end_time_unix_nano: u64,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Its events, in the order they were added.
    pub events: Vec<SpanEvent>,
    /// How it ended.
    pub status: Status,
}

/// Why a span could not be started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanError {
    /// A child would start before its parent.
    StartsBeforeParent {
        /// The parent's start, Unix ns.
        parent_start_unix_nano: u64,
        /// The child's, Unix ns.
        start_unix_nano: u64,
    },
    /// The span would end before it started.
    EndsBeforeStart {
        /// Its start, Unix ns.
        start_unix_nano: u64,
        /// The end asked for, Unix ns.
        end_unix_nano: u64,
    },
}

impl fmt::Display for SpanError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpanError::StartsBeforeParent { parent_start_unix_nano, start_unix_nano } => write!(
                formatter,
                "a child span cannot start ({start_unix_nano} ns) before its parent ({parent_start_unix_nano} ns)"
            ),
            SpanError::EndsBeforeStart { start_unix_nano, end_unix_nano } => {
                write!(formatter, "a span cannot end ({end_unix_nano} ns) before it starts ({start_unix_nano} ns)")
            }
        }
    }
}

/// A span still running: attributes, events and a status can be added until [`OpenSpan::end`] finishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSpan {
    span: Span,
}

impl OpenSpan {
    /// Starts the root span of a new trace at `start_unix_nano`.
    pub fn root(ids: &mut IdGenerator, name: &str, kind: SpanKind, start_unix_nano: u64) -> Self {
        let trace_id = ids.trace_id();
        OpenSpan::start(trace_id, ids.span_id(), None, name, kind, start_unix_nano)
    }

    /// Starts a child of this span, in its trace; refused if it would start before this one.
    pub fn child(
        &self,
        ids: &mut IdGenerator,
        name: &str,
        kind: SpanKind,
        start_unix_nano: u64,
    ) -> Result<OpenSpan, SpanError> {
        let parent_start_unix_nano = self.span.start_time_unix_nano;
        if start_unix_nano < parent_start_unix_nano {
            return Err(SpanError::StartsBeforeParent { parent_start_unix_nano, start_unix_nano });
        }
        let parent = Some(self.span.span_id);
        Ok(OpenSpan::start(self.span.trace_id, ids.span_id(), parent, name, kind, start_unix_nano))
    }

    fn start(
        trace_id: TraceId,
        span_id: SpanId,
        parent_span_id: Option<SpanId>,
        name: &str,
        kind: SpanKind,
        start_time_unix_nano: u64,
    ) -> Self {
        OpenSpan {
            span: Span {
                trace_id,
                span_id,
                parent_span_id,
                name: name.into(),
                kind,
                start_time_unix_nano,
                end_time_unix_nano: start_time_unix_nano,
                attributes: Vec::new(),
                events: Vec::new(),
                status: Status::Unset,
            },
        }
    }

    /// Its trace.
    pub fn trace_id(&self) -> TraceId {
        self.span.trace_id
    }

    /// Its id.
    pub fn span_id(&self) -> SpanId {
        self.span.span_id
    }

    /// Its start, Unix ns.
    pub fn start_time_unix_nano(&self) -> u64 {
        self.span.start_time_unix_nano
    }

    /// Adds an attribute.
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        self.span.attributes.push(attribute);
    }

    /// Adds an event.
    pub fn add_event(&mut self, event: SpanEvent) {
        self.span.events.push(event);
    }

    /// Sets how it ended.
    pub fn set_status(&mut self, status: Status) {
        self.span.status = status;
    }

    /// Ends it at `end_unix_nano`; refused (and the span given back unchanged) if that is before its start.
    pub fn end(self, end_unix_nano: u64) -> Result<Span, (Box<OpenSpan>, SpanError)> {
        let start_unix_nano = self.span.start_time_unix_nano;
        if end_unix_nano < start_unix_nano {
            return Err((Box::new(self), SpanError::EndsBeforeStart { start_unix_nano, end_unix_nano }));
        }
        let mut span = self.span;
        span.end_time_unix_nano = end_unix_nano;
        Ok(span)
    }

    /// Ends the span at `end_unix_nano`, or at its start if that is earlier (a clock read before the start).
    pub fn end_no_earlier_than_start(self, end_unix_nano: u64) -> Span {
        let mut span = self.span;
        span.end_time_unix_nano = end_unix_nano.max(span.start_time_unix_nano);
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_in_its_parents_trace_with_its_parents_id_and_a_new_id() {
        let mut ids = IdGenerator::new(3);
        let root = OpenSpan::root(&mut ids, "stresstest", SpanKind::Internal, 1_000);
        let child = root.child(&mut ids, "phase", SpanKind::Internal, 1_000).unwrap();
        let grandchild = child.child(&mut ids, "step", SpanKind::Internal, 1_500).unwrap();
        let (grandchild, child, root) =
            (grandchild.end(1_700).unwrap(), child.end(2_000).unwrap(), root.end(2_000).unwrap());
        assert_eq!(root.parent_span_id, None);
        assert_eq!(child.parent_span_id, Some(root.span_id));
        assert_eq!(grandchild.parent_span_id, Some(child.span_id));
        assert_eq!([child.trace_id, grandchild.trace_id], [root.trace_id; 2]);
        assert_ne!(child.span_id, root.span_id);
        assert_ne!(grandchild.span_id, child.span_id);
        assert_eq!((grandchild.start_time_unix_nano, grandchild.end_time_unix_nano), (1_500, 1_700));
        // A second root starts a second trace.
        let other = OpenSpan::root(&mut ids, "other", SpanKind::Internal, 0);
        assert_ne!(other.trace_id(), root.trace_id);
    }

    #[test]
    fn a_span_cannot_end_before_it_starts_nor_a_child_start_before_its_parent() {
        let mut ids = IdGenerator::new(3);
        let mut root = OpenSpan::root(&mut ids, "command", SpanKind::Internal, 5_000);
        assert_eq!(
            root.child(&mut ids, "early", SpanKind::Internal, 4_999),
            Err(SpanError::StartsBeforeParent { parent_start_unix_nano: 5_000, start_unix_nano: 4_999 })
        );
        root.set_attribute(KeyValue::string("sis.command.path", "meminfo"));
        root.set_status(Status::Error("exit status 2".into()));
        let before = root.clone();
        let (root, error) = root.end(4_000).unwrap_err();
        assert_eq!(error, SpanError::EndsBeforeStart { start_unix_nano: 5_000, end_unix_nano: 4_000 });
        assert_eq!(*root, before);
        let span = root.end(5_000).unwrap();
        assert_eq!(span.end_time_unix_nano, 5_000);
        assert_eq!(span.status.code(), 2);
        assert_eq!(span.attributes, [KeyValue::string("sis.command.path", "meminfo")]);
    }
}
