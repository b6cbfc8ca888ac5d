//! Counters for `webctl status`: connections, requests by status class, bytes, errors by kind, WebSocket traffic
//! and the latency of request handling.

use serde::Serialize;
use sis_metrics::{LatencyHistogram, LatencySummary};

use crate::connection::{ConnectionStats, HttpError, Timeout};
use crate::ws::close_code;

/// Everything `webctl status --json` shows; read with [`App::counters`](crate::App::counters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections closed since start.
    pub connections_closed: u64,
    /// Connections refused because `max_connections` were open.
    pub connections_refused: u64,
    /// Responses sent, by status class.
    pub responses: StatusClasses,
    /// Bytes received (taken by `feed`).
    pub bytes_in: u64,
    /// Bytes sent (reported by `consume`).
    pub bytes_out: u64,
    /// Requests and frames refused for breaking a rule, by kind.
    pub protocol_errors: ProtocolErrors,
    /// WebSocket traffic.
    pub websocket: WebSocketCounters,
    /// Requests refused for authentication (401) and for a missing capability (403).
    pub auth: AuthCounters,
    /// Time from a request's last byte to its response being queued, read from the backend's clock.
    pub latency: LatencySummary,
}

/// Responses by status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusClasses {
    /// 1xx (101 upgrades; `100 Continue` is not counted).
    pub informational: u64,
    /// 2xx.
    pub success: u64,
    /// 4xx.
    pub client_error: u64,
    /// 5xx.
    pub server_error: u64,
}

/// Refusals by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolErrors {
    /// 400 from the parser.
    pub malformed: u64,
    /// 431, head too long.
    pub head_too_large: u64,
    /// 431, too many header fields.
    pub too_many_headers: u64,
    /// 413.
    pub body_too_large: u64,
    /// 501, unknown method.
    pub unsupported_method: u64,
    /// 501, transfer coding other than chunked.
    pub unsupported_transfer_encoding: u64,
    /// 505.
    pub unsupported_version: u64,
    /// 503, the heap could not hold a body.
    pub out_of_memory: u64,
    /// 408, head not complete in time (slowloris).
    pub head_timeouts: u64,
    /// 408, body not complete in time.
    pub body_timeouts: u64,
    /// Keep-alive connections closed for idling.
    pub idle_timeouts: u64,
    /// Connections closed because their output waited too long unsent.
    pub send_timeouts: u64,
    /// Responses that would have overflowed the output queue (connection closed).
    pub output_overflows: u64,
    /// WebSocket close 1002 sent.
    pub ws_protocol: u64,
    /// WebSocket close 1007 sent.
    pub ws_invalid_payload: u64,
    /// WebSocket close 1009 sent.
    pub ws_message_too_big: u64,
    /// Upgrade requests refused (400/426).
    pub ws_bad_handshake: u64,
}

/// WebSocket traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebSocketCounters {
    /// Upgrades accepted.
    pub upgrades: u64,
    /// WebSockets open now.
    pub open: u64,
    /// Text and binary messages received.
    pub messages_in: u64,
    /// Text messages queued (replies, metric pushes, events).
    pub messages_out: u64,
    /// Frames refused because a connection's output queue was full.
    pub pushes_refused: u64,
    /// Close handshakes the peer started.
    pub closed_by_peer: u64,
    /// WebSockets the server closed (protocol error, revoked token, shutdown).
    pub closed_by_server: u64,
}

/// Authentication refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuthCounters {
    /// 401: no token or an unknown one.
    pub unauthorized: u64,
    /// 403: the token's role lacks the command's capability.
    pub forbidden: u64,
}

/// What the [`App`](crate::App) accumulates; live connections' figures are added when read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) counters: Counters,
    /// Figures of connections already closed.
    pub(crate) closed: ConnectionStats,
    pub(crate) latency: LatencyHistogram,
}

impl Tally {
    pub(crate) fn status(&mut self, status: u16) {
        let classes = &mut self.counters.responses;
        match status {
            100..=199 => classes.informational += 1,
            200..=299 => classes.success += 1,
            400..=499 => classes.client_error += 1,
            500..=599 => classes.server_error += 1,
            _ => {}
        }
        match status {
            401 => self.counters.auth.unauthorized += 1,
            403 => self.counters.auth.forbidden += 1,
            _ => {}
        }
    }

    pub(crate) fn http_error(&mut self, error: HttpError) {
        let errors = &mut self.counters.protocol_errors;
        *match error {
            HttpError::Malformed => &mut errors.malformed,
            HttpError::HeadTooLarge => &mut errors.head_too_large,
            HttpError::TooManyHeaders => &mut errors.too_many_headers,
            HttpError::BodyTooLarge => &mut errors.body_too_large,
            HttpError::UnsupportedMethod => &mut errors.unsupported_method,
            HttpError::UnsupportedTransferEncoding => &mut errors.unsupported_transfer_encoding,
            HttpError::UnsupportedVersion => &mut errors.unsupported_version,
            HttpError::OutOfMemory => &mut errors.out_of_memory,
        } += 1;
        self.status(error.status());
    }

    pub(crate) fn timeout(&mut self, timeout: Timeout) {
        let errors = &mut self.counters.protocol_errors;
        match timeout {
            Timeout::Head => errors.head_timeouts += 1,
            Timeout::Body => errors.body_timeouts += 1,
            Timeout::Idle => errors.idle_timeouts += 1,
            Timeout::Send => errors.send_timeouts += 1,
        }
        if matches!(timeout, Timeout::Head | Timeout::Body) {
            self.status(408);
        }
    }

    pub(crate) fn ws_closed(&mut self, code: u16, by_peer: bool) {
        if by_peer {
            self.counters.websocket.closed_by_peer += 1;
            return;
        }
        self.counters.websocket.closed_by_server += 1;
        let errors = &mut self.counters.protocol_errors;
        match code {
            close_code::PROTOCOL_ERROR => errors.ws_protocol += 1,
            close_code::INVALID_PAYLOAD => errors.ws_invalid_payload += 1,
            close_code::MESSAGE_TOO_BIG => errors.ws_message_too_big += 1,
            _ => {}
        }
    }
}

/// Adds `add` into `total`.
pub(crate) fn add_stats(total: &mut ConnectionStats, add: &ConnectionStats) {
    total.bytes_in += add.bytes_in;
    total.bytes_out += add.bytes_out;
    total.pushes_refused += add.pushes_refused;
    total.output_overflows += add.output_overflows;
}
