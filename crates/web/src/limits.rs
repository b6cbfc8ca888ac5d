//! Limits of one connection: sizes, counts and timeouts, each with the status or close code it leads to.

use serde::Serialize;

use crate::request::{Method, Request};

/// The one route whose body may be larger than [`Limits::max_body_bytes`]: `POST /api/models` (a signed model
/// artifact). Its body limit is [`Limits::max_upload_bytes`], and its body is read only after the application
/// admitted the head ([`Event::BodyAdmission`](crate::Event::BodyAdmission)), so a caller without the right
/// token never makes the server buffer more than the default limit.
pub const UPLOAD_ROUTE: (Method, &str) = (Method::Post, "/api/models");

/// Limits applied to every connection; [`Limits::default`] gives the values documented on each field.
///
/// A value equal to a limit passes; one byte (or one header, or one nanosecond) more fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Request line plus headers plus the blank line, bytes (default 8192); more: 431.
    pub max_head_bytes: usize,
    /// Header fields in one request (default 32); more: 431.
    pub max_headers: usize,
    /// Request body after chunked decoding, bytes (default 65,536); more: 413. Every route but [`UPLOAD_ROUTE`].
    pub max_body_bytes: usize,
    /// Request body of [`UPLOAD_ROUTE`] after chunked decoding, bytes (default 2 MiB, 2,097,152); more: 413,
    /// decided from `Content-Length` before the body is read, or while chunks arrive. Twice the governance
    /// policy's default model size limit (1 MiB), ten times the shipped 200,262-byte model, and half the kernel
    /// heap's largest single allocation (the heap grows by buddy blocks of at most 4 MiB, so a 4 MiB body cannot
    /// be held: measured, it is refused `out-of-memory`); the body and the registry's copy are one allocation each.
    pub max_upload_bytes: usize,
    /// Time from a request's first byte to the end of its head (default 10 s); past it: 408 and close (slowloris).
    pub head_timeout_ns: u64,
    /// Time from the end of a head to the end of its body (default 30 s); past it: 408 and close.
    pub body_timeout_ns: u64,
    /// Time a keep-alive connection may wait for its next request (default 60 s); past it: closed without a response.
    pub idle_timeout_ns: u64,
    /// Time queued output may wait without any of it being sent (default 30 s), counted from the first
    /// [`Connection::poll`](crate::Connection::poll) that sees it waiting; past it the connection is closed at
    /// once (a client that stops reading, for HTTP and WebSocket alike).
    pub send_timeout_ns: u64,
    /// Bytes queued for the peer and not yet drained (default 524,288); an HTTP response that would go past it
    /// closes the connection, a WebSocket frame that would go past it is refused.
    pub max_output_bytes: usize,
    /// A WebSocket message (all its fragments), bytes (default 65,536); more: close 1009.
    pub max_ws_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8192,
            max_headers: 32,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 2 * 1024 * 1024,
            head_timeout_ns: 10_000_000_000,
            body_timeout_ns: 30_000_000_000,
            idle_timeout_ns: 60_000_000_000,
            send_timeout_ns: 30_000_000_000,
            max_output_bytes: 512 * 1024,
            max_ws_message_bytes: 64 * 1024,
        }
    }
}

/// Longest chunk-size line of a chunked body (size, extensions, CRLF), bytes; longer: 400.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;
/// Largest WebSocket frame header (2 + 8 length bytes + 4 mask bytes).
pub const MAX_WS_FRAME_HEADER_BYTES: usize = 14;

impl Limits {
    /// Whether `method path` is [`UPLOAD_ROUTE`].
    pub fn is_upload(method: Method, path: &str) -> bool {
        (method, path) == UPLOAD_ROUTE
    }

    /// The body limit of a request: [`Limits::max_upload_bytes`] for [`UPLOAD_ROUTE`], else
    /// [`Limits::max_body_bytes`].
    pub fn body_limit(&self, request: &Request) -> usize {
        if Limits::is_upload(request.method, &request.path) {
            self.max_upload_bytes
        } else {
            self.max_body_bytes
        }
    }

    /// Received bytes a connection buffers before [`Connection::feed`](crate::Connection::feed) takes no more:
    /// enough for the largest head or the largest WebSocket frame, plus room for the next request's start.
    pub fn input_capacity(&self) -> usize {
        let largest_unit = self.max_head_bytes.max(self.max_ws_message_bytes.saturating_add(MAX_WS_FRAME_HEADER_BYTES));
        largest_unit.saturating_add(MAX_CHUNK_LINE_BYTES).saturating_add(1)
    }
}
