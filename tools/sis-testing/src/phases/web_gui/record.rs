//! What the phase 6 session records, step by step: HTTP exchanges, WebSocket frames, console replies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::web::{Closed, Connected, RawReply, Transfer, WsEvent};

/// A step of the session, or why it could not be completed (a client or the console failed).
pub type Step<T> = Result<T, String>;

/// Everything the session saw, step by step (each step is named after the test that judges it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observations {
    /// Before and after `webctl start --port 8080`.
    pub startup: Step<Startup>,
    /// Four requests on one keep-alive connection.
    pub http: Step<HttpRequests>,
    /// Two reads of `GET /api/metrics`.
    pub metrics_api: Step<MetricsApi>,
    /// `POST /api/command` lines.
    pub command_api: Step<CommandApi>,
    /// Requests without a token.
    pub token_required: Step<TokenRequired>,
    /// Requests with a token that is unknown, malformed or revoked.
    pub invalid_token: Step<InvalidToken>,
    /// Commands with each role's token.
    pub roles: Step<Roles>,
    /// A WebSocket opened and closed.
    pub connection: Step<WsConnection>,
    /// Messages and their replies.
    pub exchange: Step<Exchange>,
    /// A metrics subscription, its end, and the silence after it.
    pub subscription: Step<Subscription>,
    /// A metrics stream while a console command changes a figure.
    pub stream: Step<Stream>,
    /// Push times at 200 ms and at the default interval.
    pub interval: Step<Interval>,
    /// A WebSocket closed and another opened with the same token.
    pub reconnection: Step<Reconnection>,
    /// `webctl stop` with a WebSocket open, a connect while stopped, `webctl start` and a WebSocket after it.
    pub shutdown: Step<Shutdown>,
    /// An events subscription while a stress test runs through `POST /api/command`.
    pub events: Step<Events>,
}

/// One HTTP exchange: status, headers, body (JSON when it parses, else its text) and curl's byte counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Http {
    /// Status (0: no response).
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: BTreeMap<String, Vec<String>>,
    /// Body.
    pub body: Value,
    /// Bytes curl sent.
    pub request_bytes: u64,
    /// Bytes curl received.
    pub response_bytes: u64,
    /// Connections curl opened for it (0: reused).
    pub new_connections: u64,
}

impl Http {
    pub(super) fn from_transfer(transfer: Transfer) -> Http {
        let body = serde_json::from_str(&transfer.body).unwrap_or(Value::String(transfer.body));
        Http {
            status: transfer.status,
            headers: transfer.headers,
            body,
            request_bytes: transfer.request_bytes,
            response_bytes: transfer.response_bytes,
            new_connections: transfer.new_connections,
        }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|values| values.first()).map(String::as_str)
    }
}

/// What a WebSocket client saw: a message (JSON when it parses, metrics frames digested), nothing, or the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// A text message.
    Frame(Value),
    /// A binary message.
    Binary(Vec<u8>),
    /// Nothing within the wait.
    Silent,
    /// The connection ended.
    Closed(Closed),
}

impl Seen {
    pub(super) fn from_event(event: WsEvent) -> Seen {
        match event {
            WsEvent::Text { text, .. } => match serde_json::from_str::<Value>(&text) {
                Ok(frame) if frame["type"] == "metrics" => Seen::Frame(json!({
                    "type": "metrics",
                    "now_ns": frame["now_ns"],
                    "metrics": digest_metrics(&frame["metrics"]),
                })),
                Ok(frame) => Seen::Frame(frame),
                Err(_) => Seen::Frame(Value::String(text)),
            },
            WsEvent::Binary { bytes, .. } => Seen::Binary(bytes),
            WsEvent::Silent => Seen::Silent,
            WsEvent::Closed(closed) => Seen::Closed(closed),
        }
    }

    /// The frame, if this is one.
    pub fn frame(&self) -> Option<&Value> {
        match self {
            Seen::Frame(frame) => Some(frame),
            _ => None,
        }
    }
}

/// The figures of a metrics object the judge reads: its sections, each section's `command` and `ok`, the
/// uptime, the network's poll count, the memory total and the meta-agent's confidence threshold.
pub fn digest_metrics(metrics: &Value) -> Value {
    let Some(sections) = metrics.as_object() else { return metrics.clone() };
    let mut commands = Map::new();
    let mut ok = Map::new();
    for (name, section) in sections {
        if section.is_object() {
            commands.insert(name.clone(), section["command"].clone());
            ok.insert(name.clone(), section["ok"].clone());
        }
    }
    json!({
        "sections": sections.keys().collect::<Vec<_>>(),
        "commands": commands,
        "ok": ok,
        "uptime_ns": metrics["uptime_ns"],
        "network_polls": metrics["network"]["polls"],
        "memory_total_bytes": metrics["memory"]["total_bytes"],
        "confidence_threshold_per_mille": metrics["autonomy"]["confidence_threshold_per_mille"],
    })
}

/// A `webctl status --json` reply.
pub type Status = Value;

/// Server startup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Startup {
    /// Status before the start.
    pub before: Status,
    /// A request before the start.
    pub refused: RawReply,
    /// `webctl start --port 8080`.
    pub start: Value,
    /// Status after it.
    pub started: Status,
    /// A second `webctl start --port 8080`.
    pub start_again: Value,
    /// The first `GET /api/metrics`.
    pub first: Http,
    /// Status once its connection closed.
    pub after: Status,
}

/// HTTP requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpRequests {
    /// Status before.
    pub before: Status,
    /// GET /api/metrics, GET /nowhere, GET /api/metrics, DELETE /api/metrics on one connection.
    pub exchanges: Vec<Http>,
    /// Status once the connection closed.
    pub after: Status,
}

/// GET /api/metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsApi {
    /// `meminfo` on the console.
    pub meminfo: Value,
    /// Two reads with a viewer token, bodies digested.
    pub reads: Vec<Http>,
}

/// POST /api/command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandApi {
    /// Status before.
    pub before: Status,
    /// `meminfo` on the console.
    pub meminfo: Value,
    /// `echo phase six`.
    pub echo: Http,
    /// `meminfo`.
    pub meminfo_http: Http,
    /// `frobnicate` (no such command).
    pub unknown: Http,
    /// A body without `command`.
    pub bad_body: Http,
    /// `webctl token create --role viewer`.
    pub token_create: Http,
    /// `webctl token list` on the console after it.
    pub token_list: Value,
    /// Status after.
    pub after: Status,
}

/// Token required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRequired {
    /// Status before.
    pub before: Status,
    /// GET /api/metrics without a token.
    pub get: Http,
    /// POST /api/command (`webctl token create --role admin`) without a token.
    pub post: Http,
    /// A WebSocket without a token.
    pub websocket: Connected,
    /// Status after.
    pub after: Status,
}

/// Invalid token refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvalidToken {
    /// Status before.
    pub before: Status,
    /// A 64-digit token never issued.
    pub unknown: Http,
    /// `Authorization: Basic ...`.
    pub basic: Http,
    /// A WebSocket with the unknown token.
    pub websocket_unknown: Connected,
    /// The token made through `POST /api/command`, before its revocation.
    pub valid: Http,
    /// `webctl token revoke ID` on the console while a WebSocket of that token is open.
    pub revoke: Value,
    /// What that WebSocket saw next.
    pub websocket_end: Seen,
    /// The revoked token on GET /api/metrics.
    pub revoked: Http,
    /// A WebSocket with the revoked token.
    pub websocket_revoked: Connected,
    /// Status after.
    pub after: Status,
}

/// Role enforced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Roles {
    /// Status before.
    pub before: Status,
    /// Viewer: `mkdir /phase6-viewer`.
    pub viewer_mkdir: Http,
    /// Viewer: `ls /`.
    pub viewer_ls: Http,
    /// Operator: `mkdir /phase6-operator`.
    pub operator_mkdir: Http,
    /// Operator: `stresstest memory --duration 100`.
    pub operator_stress: Http,
    /// Admin: `webctl token list`.
    pub admin_tokens: Http,
    /// `ls /` on the console.
    pub ls: Value,
    /// Status after.
    pub after: Status,
}

/// WebSocket connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WsConnection {
    /// Status before.
    pub before: Status,
    /// The handshake's answer.
    pub connected: Connected,
    /// Status while it is open.
    pub open: Status,
    /// The server's close frame after the client's close 1000.
    pub closed: Closed,
    /// Status once closed.
    pub after: Status,
}

/// Message exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    /// Status once connected.
    pub before: Status,
    /// Each message sent (binary ones as `binary:HEX`) with what came back.
    pub replies: Vec<(String, Seen)>,
    /// Whether a ping got its pong (or the client's error).
    pub pong: Step<()>,
    /// Status after the exchange, still connected.
    pub after: Status,
}

/// Metric subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    /// Status once connected.
    pub before: Status,
    /// After `{"subscribe":"metrics","interval_ms":250}`: its reply and four metrics frames.
    pub subscribed: Vec<Seen>,
    /// After `{"unsubscribe":"metrics"}`: up to and including its reply.
    pub unsubscribed: Vec<Seen>,
    /// Guest uptime read on the console once the silence had lasted (ns).
    pub silence_until_ns: u64,
    /// After `{"subscribe":"metrics","interval_ms":60000}`: its reply and the first push.
    pub resubscribed: Vec<Seen>,
    /// After unsubscribing again: up to its reply.
    pub unsubscribed_again: Vec<Seen>,
    /// Status after, still connected.
    pub after: Status,
}

/// Metrics stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stream {
    /// The reply to `{"subscribe":"metrics","interval_ms":100}` and three frames.
    pub before: Vec<Seen>,
    /// `autoctl conf-threshold 700` on the console.
    pub raise: Value,
    /// Frames up to the first that shows 700.
    pub raised: Vec<Seen>,
    /// `autoctl conf-threshold 600`.
    pub restore: Value,
    /// Frames up to the first that shows 600 again.
    pub restored: Vec<Seen>,
}

/// Update interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interval {
    /// The reply to `{"subscribe":"metrics","interval_ms":200}` and nine frames.
    pub fast: Vec<Seen>,
    /// The reply to `{"subscribe":"metrics"}` (no interval) and three frames.
    pub default: Vec<Seen>,
}

/// Reconnection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconnection {
    /// First connection: the reply to a 100 ms subscription and three frames.
    pub first: Vec<Seen>,
    /// Its close.
    pub first_closed: Closed,
    /// Status after it closed.
    pub between: Status,
    /// Second connection, same token: what came after `{"unsubscribe":"metrics"}` up to its reply.
    pub second_unsubscribe: Vec<Seen>,
    /// Its 100 ms subscription's reply and three frames.
    pub second: Vec<Seen>,
    /// Status after it closed.
    pub after: Status,
}

/// Server shutdown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shutdown {
    /// A subscribed WebSocket: its reply and two frames.
    pub open_before: Vec<Seen>,
    /// `webctl stop`.
    pub stop: Value,
    /// The open WebSocket's end (the last of what it received; frames before it are dropped).
    pub websocket_end: Seen,
    /// Status once every connection is gone.
    pub stopped: Status,
    /// A second `webctl stop`.
    pub stop_again: Value,
    /// `netctl stats` before the request while stopped.
    pub net_before: Value,
    /// A request while stopped.
    pub refused: RawReply,
    /// `netctl stats` after it.
    pub net_after: Value,
    /// Status after it.
    pub status_refused: Status,
    /// `webctl start --port 8080`.
    pub start: Value,
    /// GET /api/metrics after the start, same admin token.
    pub back: Http,
    /// Status after it.
    pub status_back: Status,
    /// A WebSocket after the restart, same token: its 100 ms subscription's reply and two frames.
    pub reconnected: Vec<Seen>,
}

/// Event stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Events {
    /// The reply to `{"subscribe":"events"}`.
    pub reply: Seen,
    /// `POST /api/command` `stresstest memory --duration 1500` (absent when the subscription was refused).
    pub stress: Option<Http>,
    /// Frames after it, up to the run's `stress.finished` event.
    pub frames: Vec<Seen>,
}
