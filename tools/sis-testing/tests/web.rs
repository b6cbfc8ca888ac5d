//! QEMU tests of the web server with clients no one here wrote: `curl` for the HTTP endpoints and status codes,
//! Python's `websockets` for metric subscriptions, raw TCP bytes for malformed requests; tokens made and revoked
//! on the serial console, a long command over HTTP while metrics keep streaming and the console answers, and
//! the heap back at its baseline once the connections closed.

mod common;

use common::{error_code, number, ok};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};

/// Debian's Python with the `websockets` package (installed by `cargo xtask test`).
const PYTHON: &str = "/usr/bin/python3";

struct Web {
    sis: Sis,
    address: SocketAddr,
    admin: String,
}

fn boot_web() -> Web {
    let admin = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(admin.clone()));
    let address = config.forwarded_address().unwrap();
    let sis = Sis::boot(&config).unwrap_or_else(|error| panic!("boot: {error}"));
    Web { sis, address, admin }
}

impl Web {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Runs curl with `args` on `path`; returns the status and the body.
    fn curl(&self, path: &str, args: &[&str]) -> (u16, String) {
        let output = Command::new("curl")
            .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("curl runs");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.trim().parse().unwrap_or_else(|_| panic!("curl status in {text:?}")), body.to_string())
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let header = token.map(|token| format!("Authorization: Bearer {token}"));
        let mut args = Vec::new();
        if let Some(header) = &header {
            args.extend(["-H", header.as_str()]);
        }
        let (status, body) = self.curl(path, &args);
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: body {body:?}")))
    }

    fn command(&self, token: &str, line: &str) -> (u16, Value) {
        let header = format!("Authorization: Bearer {token}");
        let body = serde_json::json!({ "command": line }).to_string();
        let (status, text) =
            self.curl("/api/command", &["-H", &header, "-H", "Content-Type: application/json", "--data-binary", &body]);
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{line}: body {text:?}")))
    }

    /// Sends raw bytes and returns the status code of the response's first line.
    fn raw_status(&self, bytes: &[u8]) -> u16 {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.write_all(bytes).unwrap();
        let mut response = Vec::new();
        let mut buffer = [0u8; 4096];
        while !response.windows(2).any(|window| window == b"\r\n") {
            let count = stream.read(&mut buffer).unwrap();
            assert!(count > 0, "connection closed without a status line");
            response.extend_from_slice(&buffer[..count]);
        }
        let line = String::from_utf8_lossy(&response).lines().next().unwrap().to_string();
        line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("status line {line:?}"))
    }

    /// Subscribes to metrics every `interval_ms` over a WebSocket and returns the `now_ns` of every frame received
    /// within `seconds`.
    fn websocket_metrics(&self, token: &str, interval_ms: u64, seconds: f64) -> std::process::Child {
        let script = format!(
            r#"
import asyncio, json, sys, time, websockets
async def main():
    async with websockets.connect("ws://{address}/ws?token={token}") as ws:
        await ws.send(json.dumps({{"subscribe": "metrics", "interval_ms": {interval_ms}}}))
        stamps = []
        end = time.monotonic() + {seconds}
        while time.monotonic() < end:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if message.get("type") == "metrics":
                assert isinstance(message["metrics"]["uptime_ns"], int)
                stamps.append(message["now_ns"])
        print(json.dumps(stamps))
asyncio.run(main())
"#,
            address = self.address
        );
        Command::new(PYTHON).args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().expect("python3 runs")
    }

    /// Subscribes to events over a WebSocket; the client prints `ready` once subscribed, then every frame it
    /// receives (one JSON object per line) until an event `stress.finished` of test `last_test`, or 180 s.
    fn websocket_events(&self, token: &str, last_test: &str) -> std::process::Child {
        let script = format!(
            r#"
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect("ws://{address}/ws?token={token}") as ws:
        await ws.send(json.dumps({{"subscribe": "events"}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert reply == {{"type": "subscribed", "topic": "events"}}, reply
        print("ready", flush=True)
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 180))
            print(json.dumps(frame), flush=True)
            event = frame.get("event", {{}})
            if event.get("kind") == "stress.finished" and event.get("test") == "{last_test}":
                break
asyncio.run(main())
"#,
            address = self.address
        );
        Command::new(PYTHON).args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().expect("python3 runs")
    }
}

fn stamps(child: std::process::Child) -> Vec<u64> {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "websocket client failed: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
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
    assert_eq!(web.curl("/api/metrics", &["-X", "DELETE", "-H", &format!("Authorization: Bearer {admin}")]).0, 405);
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
    assert!(stamps(web.websocket_metrics(&admin, 250, 0.6)).len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    let before = ok(&mut web.sis, "meminfo --json");
    let frames = stamps(web.websocket_metrics(&admin, 250, 1.2));
    assert!(frames.len() >= 3, "{frames:?}");
    assert!(frames.windows(2).all(|pair| pair[0] < pair[1]), "now_ns increases: {frames:?}");
    // A 3 s stress test over HTTP; metrics keep streaming and the console keeps answering meanwhile.
    let subscriber = web.websocket_metrics(&admin, 250, 2.5);
    let started = Instant::now();
    let long = {
        let (address, admin) = (web.address, admin.clone());
        std::thread::spawn(move || {
            let body = serde_json::json!({ "command": "stresstest memory --duration 3000 --json" }).to_string();
            let output = Command::new("curl")
                .args(["-s", "--max-time", "60", "-w", "\n%{http_code}", "-H"])
                .arg(format!("Authorization: Bearer {admin}"))
                .args(["--data-binary", &body])
                .arg(format!("http://{address}/api/command"))
                .output()
                .unwrap();
            String::from_utf8(output.stdout).unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let echo = ok(&mut web.sis, "echo hi --json");
    assert_eq!(echo["text"], "hi", "{echo}");
    assert!(started.elapsed() < Duration::from_millis(2500), "the console answered while the stress test ran");
    let during = stamps(subscriber);
    assert!(during.len() >= 6, "frames during the stress test: {during:?}");
    let text = long.join().unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{text}");
    let report: Value = serde_json::from_str(body).unwrap();
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

/// Waits for the events client's `ready` line; returns a reader of the frames that follow.
fn await_ready(child: &mut std::process::Child) -> std::io::BufReader<std::process::ChildStdout> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the events client subscribed");
    reader
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
    let mut client = web.websocket_events(&admin, "chaos");
    let reader = await_ready(&mut client);
    let first_seq = number(&ok(&mut web.sis, "eventctl status --json"), "/next_seq");
    // A memory run over HTTP with the meta-agent on, then a chaos run on the console with it off.
    ok(&mut web.sis, "autoctl on --json");
    let (status, memory) = web.command(&admin, "stresstest memory --duration 1500 --seed 5 --pool-mib 1 --json");
    assert_eq!(status, 200, "{memory}");
    ok(&mut web.sis, "autoctl off --json");
    // (Its autonomy flips let the meta-agent act during the chaos run too.)
    let chaos = web.sis.run_json("stresstest chaos --duration 1500 --seed 7 --json").unwrap();
    let audit = ok(&mut web.sis, "autoctl audit last 256 --json");
    let output = {
        use std::io::BufRead;
        let lines: Vec<String> = reader.lines().map(Result::unwrap).collect();
        assert!(client.wait().unwrap().success(), "events client failed after {lines:?}");
        lines
    };
    let frames: Vec<Value> = output.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
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
