//! QEMU tests of the web server with clients no one here wrote: `curl` for the HTTP endpoints and status codes,
//! Python's `websockets` for metric subscriptions, raw TCP bytes for malformed requests; tokens made and revoked
//! on the serial console, a long command over HTTP while metrics keep streaming and the console answers, and
//! the heap back at its baseline once the connections closed.

mod common;

use common::{error_code, number, ok};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sis_testing::web::{Connected, Request, WebClient, WebSocket, WsEvent};
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};

struct Web {
    sis: Sis,
    client: WebClient,
    admin: String,
}

fn boot_web() -> Web {
    let admin = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(admin.clone()));
    let client = WebClient::new(config.forwarded_address().unwrap());
    let sis = Sis::boot(&config).unwrap_or_else(|error| panic!("boot: {error}"));
    Web { sis, client, admin }
}

impl Web {
    /// Sends `request` with curl; returns the status and the JSON body.
    fn send(&self, request: &Request) -> (u16, Value) {
        let transfer =
            self.client.send(request).unwrap_or_else(|error| panic!("{} {}: {error}", request.method, request.path));
        let body = transfer.json().unwrap_or_else(|error| panic!("{}: {error}", request.path));
        (transfer.status, body)
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let request = Request::get(path);
        self.send(&match token {
            Some(token) => request.bearer(token),
            None => request,
        })
    }

    fn command(&self, token: &str, line: &str) -> (u16, Value) {
        self.send(&Request::command(line).bearer(token))
    }

    /// Sends raw bytes and returns the status code of the response's first line.
    fn raw_status(&self, bytes: &[u8]) -> u16 {
        let reply = self.client.raw(bytes, Duration::from_secs(20)).unwrap();
        reply.status().unwrap_or_else(|| panic!("no status line: {reply:?}"))
    }

    /// Opens a WebSocket and subscribes it to events (the acknowledgement checked).
    fn events_subscriber(&self, token: &str) -> WebSocket {
        let (mut socket, connected) = self.client.websocket(Some(token)).unwrap();
        assert_eq!(connected, Connected::Open);
        socket.send_text(r#"{"subscribe":"events"}"#).unwrap();
        let reply = socket.receive(Duration::from_secs(30)).unwrap();
        assert_eq!(reply.json(), Some(json!({ "type": "subscribed", "topic": "events" })), "{reply:?}");
        socket
    }
}

/// The frames `socket` receives up to an event `stress.finished` of test `last_test` (each within 180 s).
fn frames_until_finished(socket: &mut WebSocket, last_test: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let received = socket.receive(Duration::from_secs(180)).unwrap();
        let frame = received.json().unwrap_or_else(|| panic!("an event frame, got {received:?} after {frames:?}"));
        let done = frame["event"]["kind"] == "stress.finished" && frame["event"]["test"] == last_test;
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// Subscribes to metrics every `interval_ms` over a WebSocket and returns the `now_ns` of every metrics frame
/// received within `seconds`, then closes with 1000.
fn metric_stamps(client: WebClient, token: &str, interval_ms: u64, seconds: f64) -> Vec<u64> {
    let (mut socket, connected) = client.websocket(Some(token)).unwrap();
    assert_eq!(connected, Connected::Open);
    socket.send_text(&json!({ "subscribe": "metrics", "interval_ms": interval_ms }).to_string()).unwrap();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut stamps = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let event = socket.receive(left).unwrap();
        match event.json() {
            Some(message) if message["type"] == "metrics" => {
                assert!(message["metrics"]["uptime_ns"].is_u64(), "{message}");
                stamps.push(message["now_ns"].as_u64().unwrap());
            }
            Some(_) => {}
            None if event == WsEvent::Silent => break,
            None => panic!("the subscription ended: {event:?}"),
        }
    }
    socket.close(1000).unwrap();
    stamps
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn http_endpoints_answer_with_exact_status_codes_and_tokens_take_effect_at_once() {
    let mut web = boot_web();
    let admin = web.admin.clone();
    // Metrics: every section, numbers read at request time.
    let (status, first) = web.get("/api/metrics", Some(&admin));
    assert_eq!(status, 200, "{first}");
    let sections = ["autonomy", "block", "memory", "network", "scheduler", "threads", "uptime_ns", "workload"];
    assert_eq!(keys(&first), sections.iter().map(|key| key.to_string()).collect());
    for pointer in ["/memory/heap_used_bytes", "/memory/frames_free", "/network/polls", "/autonomy/decisions"] {
        number(&first, pointer);
    }
    std::thread::sleep(Duration::from_millis(50));
    let (_, second) = web.get("/api/metrics", Some(&admin));
    assert!(number(&second, "/uptime_ns") > number(&first, "/uptime_ns"), "{first} then {second}");
    assert!(number(&second, "/network/polls") > number(&first, "/network/polls"));
    // A command: the same object the console prints.
    let (status, reply) = web.command(&admin, "meminfo");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["command"], "meminfo");
    assert_eq!(keys(&reply), keys(&ok(&mut web.sis, "meminfo --json")));
    // Authentication.
    let (status, reply) = web.get("/api/metrics", None);
    assert_eq!((status, reply["error"]["code"].as_str()), (401, Some("missing-token")));
    let (status, reply) = web.get("/api/metrics", Some(&"0".repeat(64)));
    assert_eq!((status, reply["error"]["code"].as_str()), (401, Some("invalid-token")));
    let created = ok(&mut web.sis, "webctl token create --role viewer --json");
    let viewer = created["secret"].as_str().unwrap().to_string();
    let viewer_id = number(&created, "/token/id");
    assert_eq!(created["token"]["role"], "viewer");
    let (status, reply) = web.command(&viewer, "stresstest memory --duration 100");
    assert_eq!((status, reply["error"]["code"].as_str()), (403, Some("permission-denied")), "{reply}");
    let (status, reply) = web.command(&viewer, "uptime");
    assert_eq!((status, reply["ok"].as_bool()), (200, Some(true)), "{reply}");
    let listed = ok(&mut web.sis, "webctl token list --json");
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2, "{listed}");
    assert!(!listed.to_string().contains(&viewer), "a listing never shows a secret");
    ok(&mut web.sis, &format!("webctl token revoke {viewer_id} --json"));
    let (status, reply) = web.get("/api/metrics", Some(&viewer));
    assert_eq!((status, reply["error"]["code"].as_str()), (401, Some("invalid-token")));
    assert_eq!(error_code(&mut web.sis, &format!("webctl token revoke {viewer_id} --json")), "unknown-token");
    // Paths, methods and protocol errors.
    assert_eq!(web.get("/nowhere", Some(&admin)).0, 404);
    assert_eq!(web.send(&Request::new("DELETE", "/api/metrics").bearer(&admin)).0, 405);
    let oversized_body = format!(
        "POST /api/command HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Length: 70000\r\n\r\n"
    );
    assert_eq!(web.raw_status(oversized_body.as_bytes()), 413);
    let oversized_head = format!("GET /api/metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(web.raw_status(oversized_head.as_bytes()), 431);
    assert_eq!(web.raw_status(b"GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    // The counters saw all of it.
    let status = ok(&mut web.sis, "webctl status --json");
    assert_eq!(status["running"], true);
    assert_eq!(status["port"], 80);
    assert_eq!(number(&status, "/app/auth/forbidden"), 1);
    assert_eq!(number(&status, "/app/auth/unauthorized"), 3);
    assert_eq!(number(&status, "/app/protocol_errors/body_too_large"), 1);
    assert_eq!(number(&status, "/app/protocol_errors/head_too_large"), 1);
    assert_eq!(number(&status, "/app/protocol_errors/malformed"), 1);
    assert!(number(&status, "/app/latency/count") >= 10, "{status}");
    // Administration needs the admin role and stays idempotent on bad input.
    assert_eq!(error_code(&mut web.sis, "webctl start --json"), "already-running");
    assert_eq!(error_code(&mut web.sis, "webctl token create --role root --json"), "invalid-value");
    let stopped = ok(&mut web.sis, "webctl stop --json");
    assert_eq!(stopped["running"], false);
    assert_eq!(error_code(&mut web.sis, "webctl stop --json"), "not-running");
    assert_eq!(ok(&mut web.sis, "webctl status --json")["running"], false);
    ok(&mut web.sis, "webctl start --json");
    assert_eq!(web.get("/api/metrics", Some(&admin)).0, 200, "tokens outlive a restart");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn websocket_streams_metrics_while_a_long_command_runs_and_memory_returns_to_baseline() {
    let mut web = boot_web();
    let admin = web.admin.clone();
    // Warm-up: one of everything, so queues have their steady capacity before the baseline is read.
    assert_eq!(web.command(&admin, "uptime").0, 200);
    assert!(metric_stamps(web.client, &admin, 250, 0.6).len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    let before = ok(&mut web.sis, "meminfo --json");
    let frames = metric_stamps(web.client, &admin, 250, 1.2);
    assert!(frames.len() >= 3, "{frames:?}");
    assert!(frames.windows(2).all(|pair| pair[0] < pair[1]), "now_ns increases: {frames:?}");
    // A 3 s stress test over HTTP; metrics keep streaming and the console keeps answering meanwhile.
    let subscriber = {
        let (client, admin) = (web.client, admin.clone());
        std::thread::spawn(move || metric_stamps(client, &admin, 250, 2.5))
    };
    let started = Instant::now();
    let long = {
        let (client, admin) = (web.client, admin.clone());
        std::thread::spawn(move || client.command(&admin, "stresstest memory --duration 3000 --json").unwrap())
    };
    std::thread::sleep(Duration::from_millis(500));
    let echo = ok(&mut web.sis, "echo hi --json");
    assert_eq!(echo["text"], "hi", "{echo}");
    assert!(started.elapsed() < Duration::from_millis(2500), "the console answered while the stress test ran");
    let during = subscriber.join().unwrap();
    assert!(during.len() >= 6, "frames during the stress test: {during:?}");
    let transfer = long.join().unwrap();
    assert_eq!(transfer.status, 200, "{transfer:?}");
    let report = transfer.json().unwrap();
    assert_eq!(report["command"], "stresstest memory", "{report}");
    assert!(started.elapsed() >= Duration::from_millis(3000));
    // Every connection closed: the heap is back where it was.
    std::thread::sleep(Duration::from_millis(500));
    let status = ok(&mut web.sis, "webctl status --json");
    assert_eq!(number(&status, "/app/connections_open"), 0, "{status}");
    let after = ok(&mut web.sis, "meminfo --json");
    for field in ["heap_used_bytes", "heap_allocations"] {
        assert_eq!(after[field], before[field], "{field}: before {before} after {after}");
    }
}

/// The events of kind `kind` (and of `run`, when given), in the order received.
fn of_kind<'a>(events: &'a [Value], kind: &str, run: Option<u64>) -> Vec<&'a Value> {
    events.iter().filter(|event| event["kind"] == kind && run.is_none_or(|run| event["run"] == run)).collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn kernel_events_reach_a_websocket_exactly_as_the_runs_counted_them() {
    let mut web = boot_web();
    let admin = web.admin.clone();
    let mut subscriber = web.events_subscriber(&admin);
    let first_seq = number(&ok(&mut web.sis, "eventctl status --json"), "/next_seq");
    // A memory run over HTTP with the meta-agent on, then a chaos run on the console with it off.
    ok(&mut web.sis, "autoctl on --json");
    let (status, memory) = web.command(&admin, "stresstest memory --duration 1500 --seed 5 --pool-mib 1 --json");
    assert_eq!(status, 200, "{memory}");
    ok(&mut web.sis, "autoctl off --json");
    // (Its autonomy flips let the meta-agent act during the chaos run too.)
    let chaos = web.sis.run_json("stresstest chaos --duration 1500 --seed 7 --json").unwrap();
    let audit = ok(&mut web.sis, "autoctl audit last 256 --json");
    let frames = frames_until_finished(&mut subscriber, "chaos");
    subscriber.close(1000).unwrap();
    assert!(frames.iter().all(|frame| frame["type"] == "event"), "{frames:?}");
    let events: Vec<Value> = frames.iter().map(|frame| frame["event"].clone()).collect();
    // Numbered without gaps from the first event after the subscription; nothing was missed.
    let seqs: Vec<u64> = events.iter().map(|event| number(event, "/seq")).collect();
    assert_eq!(seqs, (first_seq..first_seq + seqs.len() as u64).collect::<Vec<_>>(), "{events:?}");
    assert!(events.windows(2).all(|pair| number(&pair[0], "/at_ms") <= number(&pair[1], "/at_ms")));

    // The memory run: started, progress, OOM events, finished, in that order, with the report's figures.
    let started = of_kind(&events, "stress.started", None);
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(
        (&started[0]["test"], &started[0]["seed"], &started[0]["duration_ms"]),
        (&"memory".into(), &5.into(), &1500.into())
    );
    let run = number(started[0], "/run");
    let progress = of_kind(&events, "stress.progress", Some(run));
    let percents: Vec<u64> = progress.iter().map(|event| number(event, "/percent")).collect();
    assert!(!percents.is_empty() && percents.windows(2).all(|pair| pair[0] <= pair[1]), "{percents:?}");
    assert!(percents.iter().all(|percent| *percent <= 100));
    let finished = of_kind(&events, "stress.finished", Some(run));
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], if memory["ok"] == true { "passed" } else { "failed" }, "{memory}");
    assert!(number(finished[0], "/elapsed_ms") >= 1500);
    let index = |event: &Value| events.iter().position(|other| other == event).unwrap();
    assert!(index(started[0]) < index(progress[0]) && index(progress[progress.len() - 1]) < index(finished[0]));
    let oom = of_kind(&events, "memory.oom", Some(run));
    let reported_oom = number(&memory, "/memory/oom_events");
    assert!(reported_oom > 0, "a 1 MiB pool meets OOM events: {memory}");
    assert_eq!(oom.iter().map(|event| number(event, "/new_oom_events")).sum::<u64>(), reported_oom, "{oom:?}");
    // At most one per 100 ms, and the last OOM events flushed at the end.
    assert!(oom.len() as u64 <= number(finished[0], "/elapsed_ms") / 100 + 2, "{oom:?}");
    if let Some(last) = oom.last() {
        assert_eq!(number(last, "/oom_events"), reported_oom);
    }
    // Every decision the meta-agent acted on, and nothing else, is an intervention event.
    let acted: Vec<u64> = audit["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|trace| trace["disposition"] == "acted")
        .map(|trace| number(trace, "/id"))
        .collect();
    let interventions: Vec<u64> =
        of_kind(&events, "autonomy.intervention", None).iter().map(|event| number(event, "/decision")).collect();
    assert!(!acted.is_empty(), "the meta-agent acts on a pool at its limit: {audit}");
    assert_eq!(interventions, acted, "{audit}");
    println!(
        "{} events: {} OOM events in {} memory.oom, interventions {interventions:?}",
        events.len(),
        reported_oom,
        oom.len()
    );

    // The chaos run: one event per chaos event of its report, with its outcome.
    let chaos_run = number(started[1], "/run");
    assert_eq!((&started[1]["test"], chaos_run), (&"chaos".into(), run + 1));
    let reported: Vec<(u64, bool)> = chaos["chaos"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (number(event, "/index"), event["failure"].is_null()))
        .collect();
    let published: Vec<(u64, bool)> = of_kind(&events, "chaos.event", Some(chaos_run))
        .iter()
        .map(|event| (number(event, "/index"), event["recovered"] == true))
        .collect();
    assert!(!reported.is_empty());
    assert_eq!(published, reported, "{chaos}");
    let chaos_finished = of_kind(&events, "stress.finished", Some(chaos_run));
    assert_eq!(chaos_finished[0]["status"], if chaos["ok"] == true { "passed" } else { "failed" });

    // The console's door shows the same events.
    let tail = ok(&mut web.sis, &format!("eventctl tail --since {first_seq} --count 64 --json"));
    let shown = tail["events"].as_array().unwrap();
    assert_eq!(number(&tail, "/missed"), 0);
    assert_eq!(shown.as_slice(), &events[..shown.len()], "{tail}");
}
