//! The SIS web server's core: HTTP/1.1 and WebSocket connections, bearer tokens with roles, the API router
//! and the counters of `webctl status`, all without sockets or clocks of its own.
//!
//! The kernel owns the TCP sockets (smoltcp) and drives an [`App`] from its polling loop: [`App::open`] per
//! accepted socket, [`App::receive`] with received bytes, [`App::poll`] every turn (timeouts, metric pushes),
//! [`App::pending_output`] / [`App::consume`] to send, [`App::should_close`] / [`App::close`] to end a
//! connection. Time comes in as `now_ns`; the request-latency clock and the kernel's figures and command
//! registry come through the [`Backend`] trait the kernel implements. Below the app, a [`Connection`] is the
//! protocol state machine alone (`feed`, `poll`, `respond`, `pending_output`, `consume`). The [`client`] module is
//! the other side, for the kernel's own requests: [`client::post_request`] and [`client::ResponseReader`], which
//! reads a response with the same head parser and body framing.
//!
//! # Endpoints
//! | request | answer |
//! |---|---|
//! | `GET /api/metrics` | 200, [`Backend::metrics`] as JSON; any valid token. The backend may defer the reading ([`Backend::metrics`] returns `None`): the connection then waits, as for a deferred command, until [`App::supply_metrics`] answers every waiting request and due push with one reading taken after they arrived |
//! | `POST /api/command` with `{"command": LINE}` | 200 with the shell's JSON reply; 403 with it when the registry refused the line with `permission-denied`; 400 `bad-command-body` when the body is not that object (exactly one field, a non-empty string of at most 1024 bytes). The backend may defer the line ([`Backend::command`] returns `None`): the connection then waits, its pipelined requests behind it and no timeout armed, until [`App::complete_command`] |
//! | `POST /api/models` with a signed model artifact as the body (`Content-Type: application/octet-stream`) | 201 with the registered model's JSON ([`Backend::register_model`], as `llmctl register` registers it, under the principal `token:ID` of the sender); a refusal with its code at the status [`refusal_status`] gives it (409 `version-exists`, 413 `model-too-large`, 422 for an artifact that does not verify, 503, 507); 403 `permission-denied` for a token without the admin capability, 415 `unsupported-media-type` for another content type. Its body limit is [`Limits::max_upload_bytes`] (2 MiB), and these checks run on the head before any body byte is read. The backend may defer the registration (`None`) until [`App::complete_model`] |
//! | `GET /api/decisions?cursor=N&max=M` | the meta-agent's decision traces from cursor N (default 0), at most M (1..=256, default 64): runs `otelctl decisions read --cursor N --max M` through [`Backend::command`] as `POST /api/command` does, any valid token; 400 `bad-query` for another parameter, a repeated one, or a value that is not a decimal integer in range |
//! | `GET /ws` | 101 and WebSocket; token in `Authorization: Bearer` or the `token` query parameter |
//!
//! Checks run in this order: path (404 `not-found`), method (405 `method-not-allowed` with `Allow`), token
//! (401 `missing-token` / `invalid-token` with `WWW-Authenticate: Bearer realm="sis"`), then the endpoint's own.
//! Error bodies are `{"error":{"code":CODE,"message":TEXT}}`, as every SIS door prints them.
//!
//! The body of `POST /api/models` ([`UPLOAD_ROUTE`]) is read only after its head passed the path, method, token,
//! capability and content-type checks ([`Event::BodyAdmission`], [`Connection::admit_body`]): a refused upload is
//! answered at once and the connection closes with the body unread, so no client without an admin token makes
//! the server buffer more than `max_body_bytes`.
//!
//! # Status codes from the protocol layer (each closes the connection after the response)
//! | code | when |
//! |---|---|
//! | 400 | malformed request line, header or chunked framing; missing `Host` on HTTP/1.1; bad, conflicting or doubled framing (`Content-Length` with `Transfer-Encoding`); a target that is not a path; a header value that is not UTF-8 |
//! | 408 | head not complete `head_timeout_ns` after its first byte (slowloris), or body not complete `body_timeout_ns` after the head |
//! | 413 | body over `max_body_bytes`, or `max_upload_bytes` for `POST /api/models` (decided from `Content-Length` before the body is read, or while chunks arrive) |
//! | 431 | head over `max_head_bytes`, or more than `max_headers` fields |
//! | 501 | unknown method, or a transfer coding other than `chunked` |
//! | 505 | HTTP version other than 1.0 and 1.1 |
//! | 503 | `out-of-memory`: the heap cannot hold the body (bodies grow fallibly; an upload's `Content-Length` is reserved when it is admitted) |
//!
//! An idle keep-alive connection (no request begun within `idle_timeout_ns`) is closed without a response,
//! and a connection whose queued output waits `send_timeout_ns` with none of it sent (a client that stopped
//! reading) is closed at once, its output dropped.
//! Upgrade refusals keep the connection: 426 without `Upgrade: websocket` or with a `Sec-WebSocket-Version`
//! other than 13 (the answer names 13), 400 for a key that is not base64 of 16 bytes or a non-GET/HTTP/1.0
//! upgrade. `Expect: 100-continue` gets `100 Continue` before the body.
//!
//! # Limits ([`Limits::default`])
//! head 8192 bytes, 32 header fields, body 65,536 bytes (an upload's 2,097,152), head timeout 10 s, body timeout 30 s, idle timeout
//! 60 s, send timeout 30 s, output queue 524,288 bytes, WebSocket message 65,536 bytes; 64 connections and 64 tokens
//! ([`AppConfig::default`]). A value at a limit passes, one more fails. A response that does not fit in the
//! output queue closes the connection at once ([`State::Closed`], counted as an output overflow); a WebSocket
//! frame that does not fit is refused and counted ([`Counters`]`.websocket.pushes_refused`), so a slow
//! subscriber never grows memory. While the queue holds half its bound, no new pipelined request is started.
//!
//! # WebSocket close codes
//! 1000..1003, 1007..1011 and 3000..4999 from the peer are echoed and the connection closes (an empty close is
//! reported as 1005 and answered with an empty close). The server sends 1002 for an unmasked frame, reserved
//! bits, a reserved opcode, a fragmented or over-125-byte control frame, a continuation without a message or a
//! new message inside a fragmented one, a non-minimal length, or an invalid close code or one-byte close
//! payload; 1007 for text (or a close reason) that is not UTF-8; 1009 for a message over
//! `max_ws_message_bytes` (decided from the frame header); 1008 when the connection's token is revoked; 1001
//! from [`App::close_websockets`]. After a close frame of its own the server closes the socket once the frame
//! is sent. Pings are answered with pongs automatically. WebSocket connections have no idle timeout.
//!
//! # WebSocket messages
//! `{"subscribe":"metrics","interval_ms":N}` (N in 50..=60000, default 1000) pushes
//! `{"type":"metrics","now_ns":T,"metrics":{...}}` every N ms, the first at once; `{"subscribe":"events"}`
//! receives `{"type":"event","event":{...}}` from [`App::publish_event`] (refused with `not-implemented` while
//! [`AppConfig::events_published`] is false: a kernel that publishes nothing says so); a subscriber that missed
//! events (its queue was full, or [`App::events_missed`] reported a gap upstream) first gets
//! `{"type":"event","event":{"kind":"events.missed","count":N}}`; `{"unsubscribe":"metrics"|"events"}`
//! stops either. Each is acknowledged (`{"type":"subscribed",...}`). `{"clock":"now"}` is answered
//! `{"type":"clock","now_ns":T}`, the backend's clock read while answering, so a client can bound the offset
//! between its clock and the server's from the round trip (T was read between its send and its receipt).
//! Anything else is answered `{"type":"error","error":{"code":...,"message":...}}` and changes nothing.
//!
//! # Roles
//! A token's [`Role`] maps onto the shell registry's capabilities, so the web door enforces exactly what the
//! registry enforces: viewer = none (unrestricted commands only: status and listings), operator = `FILES`,
//! admin = `ALL` (what the serial console holds). Tokens are stored as SHA-256 hashes only and compared in
//! constant time; revocation takes effect on the next request and closes the token's WebSockets (1008).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod app;
pub mod client;
mod connection;
mod counters;
mod limits;
mod output;
mod request;
mod response;
pub mod token;
pub mod ws;

#[cfg(test)]
mod tests;

pub use app::{
    refusal_status, App, AppConfig, AppError, Backend, CommandReply, Fanout, MetricsSubscription, MetricsSupplied,
    ModelReply, Session, MAX_COMMAND_BYTES, MAX_INTERVAL_MS, MIN_INTERVAL_MS, MODEL_CONTENT_TYPE, ROUTES,
    UPLOAD_CAPABILITY,
};
pub use connection::{
    Connection, ConnectionId, ConnectionStats, Event, HttpError, RespondError, SendError, State, Timeout,
};
pub use counters::{AuthCounters, Counters, ProtocolErrors, StatusClasses, WebSocketCounters};
pub use limits::{Limits, MAX_CHUNK_LINE_BYTES, MAX_WS_FRAME_HEADER_BYTES, UPLOAD_ROUTE};
pub use request::{percent_decode, Method, Request, Version};
pub use response::{reason, Response};
pub use token::{Role, TokenError, TokenId, TokenInfo, TokenStore};
