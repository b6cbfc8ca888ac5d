//! The app: router status codes, authentication, commands, WebSocket subscriptions, fan-out, revocation,
//! counters, all through real bytes on fake connections.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_shell::Capabilities;

use super::{client_frame, UPGRADE};
use crate::token::{TokenId, SECRET_BYTES};
use crate::{App, AppConfig, AppError, Backend, CommandReply, ConnectionId, Limits, ModelReply, Role};

/// A kernel stand-in: metrics carry the time asked for (or, with `defer_metrics`, are deferred and counted);
/// `mkdir` needs FILES and `reboot` needs ADMIN, as in the registry; a line starting `slow` is deferred (run
/// elsewhere, answered later); every clock read advances 1 µs. Uploaded artifacts are kept with their token: one
/// starting `slow` is deferred, one starting `dup` is refused `version-exists`, one starting `bad` is refused
/// `digest-mismatch`, any other is registered as `{"name":"fake","bytes":LENGTH,"registered_by":"token:ID"}`.
#[derive(Debug, Default)]
pub(super) struct FakeKernel {
    clock_ns: u64,
    pub(super) metrics_reads: u64,
    pub(super) defer_metrics: bool,
    pub(super) metrics_deferred: u64,
    lines: Vec<(String, Capabilities)>,
    deferred: Vec<(ConnectionId, String)>,
    pub(super) uploads: Vec<(ConnectionId, Vec<u8>, TokenId)>,
}

impl Backend for FakeKernel {
    fn metrics(&mut self, now_ns: u64) -> Option<Value> {
        if self.defer_metrics {
            self.metrics_deferred += 1;
            return None;
        }
        self.metrics_reads += 1;
        Some(json!({ "uptime_ns": now_ns, "reads": self.metrics_reads }))
    }

    fn command(
        &mut self,
        connection: ConnectionId,
        line: &str,
        _token: TokenId,
        capabilities: Capabilities,
    ) -> Option<CommandReply> {
        self.lines.push((String::from(line), capabilities));
        if line.starts_with("slow") {
            self.deferred.push((connection, String::from(line)));
            return None;
        }
        let needed = match line.split(' ').next() {
            Some("mkdir") => Capabilities::FILES,
            Some("reboot") => Capabilities::ADMIN,
            _ => Capabilities::NONE,
        };
        if capabilities.contains(needed) {
            Some(CommandReply { json: json!({ "ok": true, "command": line }), permission_denied: false })
        } else {
            let error = json!({ "code": "permission-denied", "message": "needs more" });
            Some(CommandReply {
                json: json!({ "ok": false, "command": line, "error": error }),
                permission_denied: true,
            })
        }
    }

    fn register_model(&mut self, connection: ConnectionId, artifact: Vec<u8>, token: TokenId) -> Option<ModelReply> {
        let reply = if artifact.starts_with(b"slow") {
            None
        } else if artifact.starts_with(b"dup") {
            let message = String::from("fake@1.0.0 is registered already");
            Some(ModelReply::Refused { code: String::from("version-exists"), message })
        } else if artifact.starts_with(b"bad") {
            let message = String::from("the digest does not match");
            Some(ModelReply::Refused { code: String::from("digest-mismatch"), message })
        } else {
            let registered_by = alloc::format!("token:{}", token.0);
            Some(ModelReply::Registered(
                json!({ "name": "fake", "bytes": artifact.len(), "registered_by": registered_by }),
            ))
        };
        self.uploads.push((connection, artifact, token));
        reply
    }

    fn now_ns(&mut self) -> u64 {
        self.clock_ns += 1_000;
        self.clock_ns
    }
}

pub(super) struct Setup {
    pub(super) app: App,
    pub(super) kernel: FakeKernel,
    pub(super) viewer: String,
    pub(super) operator: String,
    pub(super) admin: String,
}

/// An app with a viewer, an operator and an admin token; the kernel stand-in publishes events.
pub(super) fn setup(config: AppConfig) -> Setup {
    let mut app = App::new(AppConfig { events_published: true, ..config });
    let mut token = |role, byte| app.create_token(role, [byte; SECRET_BYTES], 0).unwrap().1;
    let viewer = token(Role::Viewer, 1);
    let operator = token(Role::Operator, 2);
    let admin = token(Role::Admin, 3);
    Setup { app, kernel: FakeKernel::default(), viewer, operator, admin }
}

/// Status, headers and parsed JSON body of one response.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) head: String,
    pub(super) body: Value,
}

impl Setup {
    /// Sends one request on a new connection and reads its answer.
    pub(super) fn request(&mut self, text: &str) -> Answer {
        self.request_bytes(text.as_bytes())
    }

    /// Sends one request's bytes on a new connection and reads its answer.
    pub(super) fn request_bytes(&mut self, bytes: &[u8]) -> Answer {
        let id = self.app.open(0).unwrap();
        assert_eq!(self.app.receive(&mut self.kernel, id, 0, bytes), Ok(bytes.len()));
        let output = String::from_utf8(self.app.pending_output(id).to_vec()).unwrap();
        self.app.consume(&mut self.kernel, id, 0, usize::MAX);
        self.app.close(id).unwrap();
        parse_answer(&output)
    }

    pub(super) fn get(&mut self, path: &str, token: Option<&str>) -> Answer {
        let auth = token.map(|token| alloc::format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
        self.request(&alloc::format!("GET {path} HTTP/1.1\r\nHost: sis\r\n{auth}\r\n"))
    }

    fn command(&mut self, token: &str, body: &str) -> Answer {
        self.request(&alloc::format!(
            "POST /api/command HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Opens a WebSocket with `query` on `/ws`; returns its id with the 101 drained.
    pub(super) fn websocket(&mut self, now_ns: u64, query: &str) -> ConnectionId {
        let id = self.app.open(now_ns).unwrap();
        let upgrade = UPGRADE.replace("GET /ws ", &alloc::format!("GET /ws{query} "));
        self.app.receive(&mut self.kernel, id, now_ns, upgrade.as_bytes()).unwrap();
        assert!(
            self.app.pending_output(id).starts_with(b"HTTP/1.1 101 "),
            "{:?}",
            String::from_utf8_lossy(self.app.pending_output(id))
        );
        self.app.consume(&mut self.kernel, id, now_ns, usize::MAX);
        id
    }

    pub(super) fn say(&mut self, id: ConnectionId, now_ns: u64, text: &str) {
        let frame = client_frame(0x81, text.as_bytes());
        self.app.receive(&mut self.kernel, id, now_ns, &frame).unwrap();
    }

    /// The text frames a connection has queued, drained.
    pub(super) fn frames(&mut self, id: ConnectionId) -> Vec<Value> {
        let mut bytes = self.app.pending_output(id).to_vec();
        self.app.consume(&mut self.kernel, id, 0, usize::MAX);
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let (header, length) = match bytes[1] {
                126 => (4, usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))),
                length => (2, usize::from(length)),
            };
            let payload = &bytes[header..header + length];
            frames.push(match bytes[0] {
                0x81 => serde_json::from_slice(payload).unwrap(),
                0x88 => json!({ "close": u16::from_be_bytes([payload[0], payload[1]]) }),
                other => json!({ "opcode": other }),
            });
            bytes.drain(..header + length);
        }
        frames
    }
}

/// The status, head and JSON body of one response's text.
pub(super) fn parse_answer(output: &str) -> Answer {
    let (head, body) = output.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response in {output:?}"));
    let status = head[9..12].parse().unwrap();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap() };
    Answer { status, head: String::from(head), body }
}

#[test]
fn metrics_needs_a_valid_token() {
    let mut setup = setup(AppConfig::default());
    let viewer = setup.viewer.clone();
    let answer = setup.get("/api/metrics", Some(&viewer));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({ "uptime_ns": 0, "reads": 1 }));
    assert!(answer.head.contains("Content-Type: application/json\r\n"));

    let missing = setup.get("/api/metrics", None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body["error"]["code"], "missing-token");
    assert!(missing.head.contains("WWW-Authenticate: Bearer realm=\"sis\"\r\n"));
    let bad = setup.get("/api/metrics", Some(&"0".repeat(64)));
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"]["code"], "invalid-token");
    assert!(bad.head.contains("error=\"invalid_token\""));
    // A query token is for /ws only.
    let query = setup.get(&alloc::format!("/api/metrics?token={viewer}"), None);
    assert_eq!(query.status, 401);
    assert_eq!(setup.kernel.metrics_reads, 1);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let mut setup = setup(AppConfig::default());
    assert_eq!(setup.get("/nope", None).status, 404);
    let wrong = setup.get("/api/command", None);
    assert_eq!(wrong.status, 405);
    assert!(wrong.head.contains("\r\nAllow: POST"), "{}", wrong.head);
    let post = setup.request("POST /api/metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 405);
    assert!(post.head.contains("\r\nAllow: GET"));
    assert_eq!(setup.request("DELETE /ws HTTP/1.1\r\nHost: h\r\n\r\n").status, 405);
}

#[test]
fn commands_run_with_the_roles_capabilities() {
    let mut setup = setup(AppConfig::default());
    let (viewer, operator, admin) = (setup.viewer.clone(), setup.operator.clone(), setup.admin.clone());
    let ok = setup.command(&viewer, r#"{"command": "meminfo --json"}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, json!({ "ok": true, "command": "meminfo --json" }));
    let denied = setup.command(&viewer, r#"{"command": "mkdir /a"}"#);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["error"]["code"], "permission-denied");
    assert_eq!(setup.command(&operator, r#"{"command": "mkdir /a"}"#).status, 200);
    assert_eq!(setup.command(&operator, r#"{"command": "reboot"}"#).status, 403);
    assert_eq!(setup.command(&admin, r#"{"command": "reboot"}"#).status, 200);
    let capabilities: Vec<Capabilities> = setup.kernel.lines.iter().map(|(_, capabilities)| *capabilities).collect();
    assert_eq!(
        capabilities,
        [Capabilities::NONE, Capabilities::NONE, Capabilities::FILES, Capabilities::FILES, Capabilities::ALL]
    );
}

#[test]
fn bad_command_bodies_are_400_and_run_nothing() {
    let mut setup = setup(AppConfig::default());
    let admin = setup.admin.clone();
    let long = alloc::format!(r#"{{"command": "{}"}}"#, "x".repeat(1025));
    for body in
        ["", "not json", "[]", r#"{"command": 5}"#, r#"{"command": "  "}"#, r#"{"command": "a", "x": 1}"#, &long]
    {
        let answer = setup.command(&admin, body);
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body["error"]["code"], "bad-command-body");
    }
    assert_eq!(setup.kernel.lines, []);
    let exact = alloc::format!(r#"{{"command": "{}"}}"#, "x".repeat(1024));
    assert_eq!(setup.command(&admin, &exact).status, 200);
    // 401 comes before the body is looked at.
    assert_eq!(setup.command("bad", "not json").status, 401);
}

#[test]
fn protocol_limits_reach_the_client_as_413_and_431() {
    let limits = Limits { max_body_bytes: 16, max_head_bytes: 256, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let admin = setup.admin.clone();
    assert_eq!(setup.command(&admin, r#"{"command":"ab"}"#).status, 200);
    assert_eq!(setup.command(&admin, r#"{"command":"abc"}"#).status, 413);
    let big = alloc::format!("GET /api/metrics HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "y".repeat(256));
    assert_eq!(setup.request(&big).status, 431);
    let counters = setup.app.counters();
    assert_eq!(counters.protocol_errors.body_too_large, 1);
    assert_eq!(counters.protocol_errors.head_too_large, 1);
}

#[test]
fn websocket_needs_a_token_in_the_header_or_the_query() {
    let mut setup = setup(AppConfig::default());
    let viewer = setup.viewer.clone();
    let plain = setup.request(UPGRADE);
    assert_eq!(plain.status, 401);
    let id = setup.websocket(0, &alloc::format!("?token={viewer}"));
    assert_eq!(setup.app.session(id).unwrap().token, Some(crate::TokenId(1)));
    let with_header =
        UPGRADE.replace("Host: sis\r\n", &alloc::format!("Host: sis\r\nAuthorization: Bearer {viewer}\r\n"));
    assert_eq!(setup.request(&with_header).status, 101);
    let bad_version = with_header.replace("Version: 13", "Version: 8");
    let refused = setup.request(&bad_version);
    assert_eq!(refused.status, 426);
    assert!(refused.head.contains("Sec-WebSocket-Version: 13\r\n"));
    assert_eq!(setup.app.counters().protocol_errors.ws_bad_handshake, 1);
}

#[test]
fn metrics_subscription_pushes_on_its_interval() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    setup.say(id, 1_000, r#"{"subscribe":"metrics","interval_ms":100}"#);
    assert_eq!(setup.frames(id), [json!({ "type": "subscribed", "topic": "metrics", "interval_ms": 100 })]);
    assert_eq!(setup.app.due_pushes(1_000), [id]);
    assert_eq!(setup.app.next_deadline_ns(), Some(1_000));
    setup.app.poll(&mut setup.kernel, 1_000);
    assert_eq!(
        setup.frames(id),
        [json!({ "type": "metrics", "now_ns": 1_000, "metrics": { "uptime_ns": 1_000, "reads": 1 } })]
    );
    let interval = 100_000_000;
    assert_eq!(setup.app.due_pushes(1_000 + interval - 1), []);
    assert_eq!(setup.app.due_pushes(1_000 + interval), [id]);
    setup.app.poll(&mut setup.kernel, 1_000 + interval + 5);
    assert_eq!(setup.frames(id)[0]["now_ns"], 1_000 + interval + 5);
    // On schedule: the next push is one interval after the previous due time, not after the late poll.
    assert_eq!(setup.app.session(id).unwrap().metrics.unwrap().next_due_ns, 1_000 + 2 * interval);
    // More than an interval behind: no burst of catch-up pushes, one now and the next an interval later.
    setup.app.poll(&mut setup.kernel, 10 * interval);
    assert_eq!(setup.frames(id).len(), 1);
    assert_eq!(setup.app.session(id).unwrap().metrics.unwrap().next_due_ns, 11 * interval);
    setup.say(id, 10 * interval, r#"{"unsubscribe":"metrics"}"#);
    assert_eq!(setup.frames(id), [json!({ "type": "unsubscribed", "topic": "metrics" })]);
    setup.app.poll(&mut setup.kernel, 100 * interval);
    assert_eq!(setup.frames(id), Vec::<Value>::new());
    assert_eq!(setup.kernel.metrics_reads, 3);
}

#[test]
fn the_clock_message_answers_with_the_backend_clock_read_while_answering() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    let before = setup.kernel.clock_ns;
    // The turn's time (5 µs) is not the answer: the clock is read when the message is handled.
    setup.say(id, 5_000, r#"{"clock":"now"}"#);
    assert_eq!(setup.frames(id), [json!({ "type": "clock", "now_ns": before + 1_000 })]);
    assert_eq!(
        *setup.app.session(id).unwrap(),
        crate::Session { token: Some(crate::TokenId(1)), ..Default::default() }
    );
}

#[test]
fn bad_messages_get_error_frames_and_change_nothing() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    let cases = [
        ("not json", "bad-json"),
        ("[1]", "bad-json"),
        (r#"{"subscribe":"metrics","interval_ms":49}"#, "interval-out-of-range"),
        (r#"{"subscribe":"metrics","interval_ms":60001}"#, "interval-out-of-range"),
        (r#"{"subscribe":"metrics","interval_ms":"fast"}"#, "interval-out-of-range"),
        (r#"{"subscribe":"weather"}"#, "unknown-topic"),
        (r#"{"subscribe":"events","interval_ms":100}"#, "unknown-field"),
        (r#"{"subscribe":"events","x":1}"#, "unknown-field"),
        (r#"{}"#, "unknown-message"),
        (r#"{"subscribe":"events","unsubscribe":"events"}"#, "unknown-message"),
        (r#"{"clock":"later"}"#, "unknown-message"),
        (r#"{"clock":"now","subscribe":"events"}"#, "unknown-message"),
    ];
    for (text, code) in cases {
        setup.say(id, 0, text);
        let frames = setup.frames(id);
        assert_eq!(frames.len(), 1, "{text}");
        assert_eq!(frames[0]["type"], "error", "{text}");
        assert_eq!(frames[0]["error"]["code"], code, "{text}");
    }
    assert_eq!(
        *setup.app.session(id).unwrap(),
        crate::Session { token: Some(crate::TokenId(1)), metrics: None, events: false, events_missed: 0 }
    );
    let binary = client_frame(0x82, b"\x00");
    setup.app.receive(&mut setup.kernel, id, 0, &binary).unwrap();
    assert_eq!(setup.frames(id)[0]["error"]["code"], "binary-unsupported");
    // The boundaries themselves are accepted.
    setup.say(id, 0, r#"{"subscribe":"metrics","interval_ms":50}"#);
    setup.say(id, 0, r#"{"subscribe":"metrics","interval_ms":60000}"#);
    assert_eq!(
        setup.frames(id).iter().map(|frame| frame["interval_ms"].clone()).collect::<Vec<_>>(),
        [json!(50), json!(60000)]
    );
}

#[test]
fn events_fan_out_to_subscribers_only() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let query = alloc::format!("?token={token}");
    let (first, second, silent) = (setup.websocket(0, &query), setup.websocket(0, &query), setup.websocket(0, &query));
    setup.say(first, 0, r#"{"subscribe":"events"}"#);
    setup.say(second, 0, r#"{"subscribe":"events"}"#);
    setup.frames(first);
    setup.frames(second);
    let event = json!({ "kind": "oom", "pool": "net" });
    let fanout = setup.app.publish_event(&event);
    assert_eq!((fanout.queued, fanout.refused), (2, 0));
    assert_eq!(setup.frames(first), [json!({ "type": "event", "event": event })]);
    assert_eq!(setup.frames(second), [json!({ "type": "event", "event": event })]);
    assert_eq!(setup.frames(silent), Vec::<Value>::new());
}

#[test]
fn a_slow_subscriber_is_refused_not_grown() {
    let limits = Limits { max_output_bytes: 300, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let token = setup.viewer.clone();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    setup.say(id, 0, r#"{"subscribe":"events"}"#);
    setup.frames(id);
    let event = json!({ "pad": "p".repeat(100) });
    let outcomes: Vec<(u64, u64)> =
        (0..4).map(|_| setup.app.publish_event(&event)).map(|fanout| (fanout.queued, fanout.refused)).collect();
    assert_eq!(outcomes, [(1, 0), (1, 0), (0, 1), (0, 1)]);
    assert!(setup.app.pending_output(id).len() <= 300);
    assert_eq!(setup.app.counters().websocket.pushes_refused, 2);
    assert_eq!(setup.app.session(id).unwrap().events_missed, 2);
    // Once the queue drains, the subscriber hears how many it missed before the next event.
    assert_eq!(
        setup.frames(id),
        [json!({ "type": "event", "event": event }), json!({ "type": "event", "event": event })]
    );
    let next = json!({ "kind": "next" });
    assert_eq!(setup.app.publish_event(&next).queued, 1);
    assert_eq!(
        setup.frames(id),
        [
            json!({ "type": "event", "event": { "kind": "events.missed", "count": 2 } }),
            json!({ "type": "event", "event": next })
        ]
    );
    assert_eq!(setup.app.session(id).unwrap().events_missed, 0);
}

#[test]
fn events_the_log_dropped_are_reported_to_every_subscriber_at_once() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let query = alloc::format!("?token={token}");
    let (subscriber, silent) = (setup.websocket(0, &query), setup.websocket(0, &query));
    setup.say(subscriber, 0, r#"{"subscribe":"events"}"#);
    setup.frames(subscriber);
    let before = setup.app.counters().websocket.messages_out;
    setup.app.events_missed(0);
    assert_eq!(setup.frames(subscriber), Vec::<Value>::new());
    setup.app.events_missed(5);
    assert_eq!(
        setup.frames(subscriber),
        [json!({ "type": "event", "event": { "kind": "events.missed", "count": 5 } })]
    );
    assert_eq!(setup.frames(silent), Vec::<Value>::new());
    assert_eq!(setup.app.counters().websocket.messages_out, before + 1);
}

#[test]
fn revoking_a_token_closes_its_websockets_with_1008() {
    let mut setup = setup(AppConfig::default());
    let (viewer, admin) = (setup.viewer.clone(), setup.admin.clone());
    let revoked = setup.websocket(0, &alloc::format!("?token={viewer}"));
    let kept = setup.websocket(0, &alloc::format!("?token={admin}"));
    let (info, closed) = setup.app.revoke_token(crate::TokenId(1)).unwrap();
    assert_eq!(info.role, Role::Viewer);
    assert_eq!(closed, [revoked]);
    assert_eq!(setup.frames(revoked), [json!({ "close": 1008 })]);
    assert!(setup.app.should_close(revoked));
    assert!(!setup.app.should_close(kept));
    assert_eq!(setup.get("/api/metrics", Some(&viewer)).status, 401);
    assert_eq!(setup.app.revoke_token(crate::TokenId(1)).unwrap_err(), crate::TokenError::UnknownId);
}

#[test]
fn connections_are_bounded_and_counted() {
    let mut setup = setup(AppConfig { max_connections: 2, ..AppConfig::default() });
    let first = setup.app.open(0).unwrap();
    let second = setup.app.open(0).unwrap();
    assert_eq!(setup.app.open(0), Err(AppError::TooManyConnections));
    setup.app.close(first).unwrap();
    assert_eq!(setup.app.close(first), Err(AppError::UnknownConnection));
    assert_eq!(setup.app.receive(&mut setup.kernel, first, 0, b"x"), Err(AppError::UnknownConnection));
    let third = setup.app.open(0).unwrap();
    assert_eq!(setup.app.connection_ids(), [second, third]);
    let counters = setup.app.counters();
    assert_eq!(
        (
            counters.connections_open,
            counters.connections_accepted,
            counters.connections_closed,
            counters.connections_refused
        ),
        (2, 3, 1, 1)
    );
}

#[test]
fn counters_add_up_exactly() {
    let mut setup = setup(AppConfig::default());
    let viewer = setup.viewer.clone();
    setup.get("/api/metrics", Some(&viewer));
    setup.get("/api/metrics", None);
    setup.command(&viewer, r#"{"command":"mkdir /x"}"#);
    setup.request("GET / HTTP/9.9\r\n\r\n");
    let id = setup.websocket(0, &alloc::format!("?token={viewer}"));
    setup.say(id, 0, r#"{"subscribe":"events"}"#);
    setup.app.receive(&mut setup.kernel, id, 0, &[0x81, 0x01, b'x']).unwrap();
    let counters = setup.app.counters();
    assert_eq!(counters.responses.success, 1);
    assert_eq!(counters.responses.informational, 1);
    assert_eq!(counters.responses.client_error, 2);
    assert_eq!(counters.responses.server_error, 1);
    assert_eq!((counters.auth.unauthorized, counters.auth.forbidden), (1, 1));
    assert_eq!(counters.protocol_errors.unsupported_version, 1);
    assert_eq!(counters.protocol_errors.ws_protocol, 1);
    assert_eq!(
        (counters.websocket.upgrades, counters.websocket.messages_in, counters.websocket.messages_out),
        (1, 1, 1)
    );
    assert_eq!(counters.websocket.closed_by_server, 1);
    // Three routed requests and the upgrade were timed; the fake clock moves 1 µs per read.
    assert_eq!(counters.latency.count, 4);
    assert_eq!((counters.latency.min_ns, counters.latency.max_ns), (1_000, 1_000));
    let bytes_in: u64 = counters.bytes_in;
    assert!(bytes_in > 0 && counters.bytes_out > 0);
    let json = serde_json::to_value(&counters).unwrap();
    assert_eq!(json["responses"]["client_error"], 2);
    assert_eq!(json["latency"]["count"], 4);
}

#[test]
fn idle_and_slowloris_connections_time_out_through_poll() {
    let limits = Limits { head_timeout_ns: 1_000, idle_timeout_ns: 5_000, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let slow = setup.app.open(0).unwrap();
    let idle = setup.app.open(0).unwrap();
    setup.app.receive(&mut setup.kernel, slow, 0, b"GET / HT").unwrap();
    assert_eq!(setup.app.next_deadline_ns(), Some(1_001));
    setup.app.poll(&mut setup.kernel, 1_001);
    assert!(setup.app.pending_output(slow).starts_with(b"HTTP/1.1 408 "));
    assert!(!setup.app.should_close(idle));
    setup.app.poll(&mut setup.kernel, 5_001);
    assert!(setup.app.should_close(idle));
    let counters = setup.app.counters();
    assert_eq!((counters.protocol_errors.head_timeouts, counters.protocol_errors.idle_timeouts), (1, 1));
}

#[test]
fn a_deferred_command_holds_its_connection_and_the_requests_behind_it_until_it_completes() {
    let mut setup = setup(AppConfig::default());
    let token = setup.admin.clone();
    let post = |line: &str| {
        let body = alloc::format!("{{\"command\":\"{line}\"}}");
        alloc::format!(
            "POST /api/command HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Two pipelined requests: a slow command, then a quick one.
    let both = post("slow stresstest") + &post("echo hi");
    let id = setup.app.open(0).unwrap();
    assert_eq!(setup.app.receive(&mut setup.kernel, id, 0, both.as_bytes()), Ok(both.len()));
    assert!(setup.app.pending_output(id).is_empty(), "nothing answered while the slow command runs");
    assert_eq!(setup.kernel.deferred, [(id, String::from("slow stresstest"))]);
    assert_eq!(setup.kernel.lines.len(), 1, "the request behind it waits");
    assert_eq!(setup.app.awaiting_commands(), 1);
    // Time passes: no timeout fires on a connection waiting for its answer.
    setup.app.poll(&mut setup.kernel, 120_000_000_000);
    assert!(setup.app.pending_output(id).is_empty());
    assert!(!setup.app.should_close(id));
    let reply = CommandReply {
        json: json!({ "ok": true, "command": "slow stresstest", "ran_ms": 2000 }),
        permission_denied: false,
    };
    setup.app.complete_command(&mut setup.kernel, id, reply.clone(), 120_000_000_000).unwrap();
    let output = String::from_utf8(setup.app.pending_output(id).to_vec()).unwrap();
    let answers: Vec<&str> = output.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 2, "{output}");
    assert!(answers[0].starts_with("200 ") && answers[0].ends_with("\"ran_ms\":2000}\n"), "{:?}", answers[0]);
    assert!(answers[1].starts_with("200 ") && answers[1].contains("\"command\":\"echo hi\""), "{}", answers[1]);
    assert_eq!(setup.app.awaiting_commands(), 0);
    // Completing again, or for a connection that closed meanwhile, is refused.
    assert_eq!(setup.app.complete_command(&mut setup.kernel, id, reply.clone(), 0), Err(AppError::NotAwaiting));
    let gone = setup.app.open(0).unwrap();
    let slow = post("slow again");
    setup.app.receive(&mut setup.kernel, gone, 0, slow.as_bytes()).unwrap();
    setup.app.close(gone).unwrap();
    assert_eq!(setup.app.awaiting_commands(), 0);
    assert_eq!(setup.app.complete_command(&mut setup.kernel, gone, reply, 0), Err(AppError::UnknownConnection));
    assert_eq!(setup.app.counters().responses.success, 2);
}

#[test]
fn without_published_events_an_events_subscription_is_refused_not_left_silent() {
    let mut setup = setup(AppConfig::default());
    let mut app = App::new(AppConfig::default());
    core::mem::swap(&mut setup.app, &mut app);
    let (_, token) = setup.app.create_token(Role::Viewer, [9; SECRET_BYTES], 0).unwrap();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    setup.say(id, 0, r#"{"subscribe":"events"}"#);
    let frames = setup.frames(id);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["error"]["code"], "not-implemented");
    assert!(!setup.app.session(id).unwrap().events);
    assert_eq!(setup.app.publish_event(&json!({ "kind": "test" })).queued, 0);
}

#[test]
fn decisions_run_the_read_command_with_the_query_and_bad_queries_run_nothing() {
    let mut setup = setup(AppConfig::default());
    let viewer = setup.viewer.clone();
    let answer = setup.get("/api/decisions?cursor=300&max=5", Some(&viewer));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["command"], "otelctl decisions read --cursor 300 --max 5");
    assert_eq!(
        setup.get("/api/decisions", Some(&viewer)).body["command"],
        "otelctl decisions read --cursor 0 --max 64"
    );
    let max = setup.get("/api/decisions?max=256&cursor=18446744073709551615", Some(&viewer));
    assert_eq!(max.body["command"], "otelctl decisions read --cursor 18446744073709551615 --max 256");
    assert_eq!(setup.kernel.lines.len(), 3);
    for query in [
        "cursor=-1",
        "cursor=1e3",
        "cursor=0x10",
        "cursor=",
        "cursor=18446744073709551616",
        "max=0",
        "max=257",
        "cursor=1&cursor=2",
        "cursor=1;reboot",
        "cursor=1%20--max%201",
        "token=x",
    ] {
        let refused = setup.get(&alloc::format!("/api/decisions?{query}"), Some(&viewer));
        assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (400, Some("bad-query")), "{query}");
    }
    assert_eq!(setup.kernel.lines.len(), 3);
    assert_eq!(setup.get("/api/decisions", None).status, 401);
    assert_eq!(setup.request("POST /api/decisions HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").status, 405);
}
