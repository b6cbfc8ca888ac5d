//! Metrics read outside the app: a backend that defers them holds `GET /api/metrics` and due pushes until
//! [`App::supply_metrics`](crate::App::supply_metrics) answers them all with one reading.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};

use super::app::setup;
use crate::{AppConfig, AppError, CommandReply, ConnectionId, MetricsSupplied};

fn metrics_request(token: &str) -> String {
    alloc::format!("GET /api/metrics HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {token}\r\n\r\n")
}

/// Status code and JSON body of every response in `output`, in order.
fn answers(output: &[u8]) -> Vec<(u16, Value)> {
    let text = String::from_utf8(output.to_vec()).unwrap();
    text.split("HTTP/1.1 ")
        .skip(1)
        .map(|answer| {
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            (head[..3].parse().unwrap(), serde_json::from_str(body).unwrap())
        })
        .collect()
}

#[test]
fn deferred_requests_on_many_connections_are_answered_by_one_reading() {
    let mut setup = setup(AppConfig::default());
    setup.kernel.defer_metrics = true;
    let token = setup.viewer.clone();
    let request = metrics_request(&token);
    let ids: Vec<ConnectionId> = (0..3).map(|_| setup.app.open(0).unwrap()).collect();
    assert!(!setup.app.wants_metrics());
    for &id in &ids {
        assert_eq!(setup.app.receive(&mut setup.kernel, id, 10, request.as_bytes()), Ok(request.len()));
        assert!(setup.app.pending_output(id).is_empty(), "nothing is answered before the reading");
        assert!(setup.app.awaits_answer(id));
        assert!(!setup.app.awaits_command(id));
    }
    assert_eq!(setup.kernel.metrics_deferred, 3);
    assert!(setup.app.wants_metrics());
    assert_eq!(setup.app.awaiting_commands(), 0);
    // No timeout fires on a connection waiting for its reading.
    setup.app.poll(&mut setup.kernel, 120_000_000_000);
    assert!(ids.iter().all(|&id| setup.app.pending_output(id).is_empty() && !setup.app.should_close(id)));
    let reading = json!({ "uptime_ns": 42 });
    let supplied = setup.app.supply_metrics(&mut setup.kernel, &reading, 120_000_000_000);
    assert_eq!(supplied, MetricsSupplied { answered: 3, pushed: 0 });
    for &id in &ids {
        assert_eq!(answers(setup.app.pending_output(id)), [(200, reading.clone())]);
        assert!(!setup.app.awaits_answer(id));
    }
    assert!(!setup.app.wants_metrics());
    let counters = setup.app.counters();
    assert_eq!((counters.responses.success, counters.latency.count), (3, 3));
    assert_eq!(setup.kernel.metrics_reads, 0, "the backend never read metrics itself");
    // A second reading finds nobody waiting.
    assert_eq!(setup.app.supply_metrics(&mut setup.kernel, &reading, 0), MetricsSupplied::default());
}

#[test]
fn a_pipelined_request_waits_for_the_next_reading() {
    let mut setup = setup(AppConfig::default());
    setup.kernel.defer_metrics = true;
    let token = setup.admin.clone();
    let both = metrics_request(&token) + &metrics_request(&token);
    let id = setup.app.open(0).unwrap();
    assert_eq!(setup.app.receive(&mut setup.kernel, id, 0, both.as_bytes()), Ok(both.len()));
    assert_eq!(setup.kernel.metrics_deferred, 1, "the second request is not parsed before the first is answered");
    let first = json!({ "reading": 1 });
    assert_eq!(setup.app.supply_metrics(&mut setup.kernel, &first, 5).answered, 1);
    assert_eq!(answers(setup.app.pending_output(id)), [(200, first)]);
    assert_eq!(setup.kernel.metrics_deferred, 2);
    assert!(setup.app.wants_metrics(), "the pipelined request waits for a reading taken after it arrived");
    let second = json!({ "reading": 2 });
    assert_eq!(setup.app.supply_metrics(&mut setup.kernel, &second, 6).answered, 1);
    let output = answers(setup.app.pending_output(id));
    assert_eq!(output.len(), 2);
    assert_eq!(output[1], (200, second));
    assert!(!setup.app.wants_metrics());
}

#[test]
fn a_due_push_is_deferred_to_the_reading_and_keeps_its_schedule() {
    let mut setup = setup(AppConfig::default());
    let token = setup.viewer.clone();
    let id = setup.websocket(0, &alloc::format!("?token={token}"));
    setup.say(id, 1_000, r#"{"subscribe":"metrics","interval_ms":100}"#);
    setup.frames(id);
    setup.kernel.defer_metrics = true;
    setup.app.poll(&mut setup.kernel, 1_000);
    assert_eq!(setup.frames(id), Vec::<Value>::new());
    assert!(setup.app.wants_metrics());
    let reading = json!({ "uptime_ns": 7 });
    let supplied = setup.app.supply_metrics(&mut setup.kernel, &reading, 3_000);
    assert_eq!(supplied, MetricsSupplied { answered: 0, pushed: 1 });
    assert_eq!(setup.frames(id), [json!({ "type": "metrics", "now_ns": 3_000, "metrics": reading })]);
    assert!(!setup.app.wants_metrics());
    assert_eq!(setup.app.session(id).unwrap().metrics.unwrap().next_due_ns, 1_000 + 100_000_000);
    // Nothing due: a reading pushes nothing.
    assert_eq!(setup.app.supply_metrics(&mut setup.kernel, &reading, 4_000).pushed, 0);
    assert_eq!(setup.frames(id), Vec::<Value>::new());
}

#[test]
fn a_connection_closed_while_waiting_is_forgotten_and_commands_and_readings_are_not_confused() {
    let mut setup = setup(AppConfig::default());
    setup.kernel.defer_metrics = true;
    let token = setup.admin.clone();
    let request = metrics_request(&token);
    let gone = setup.app.open(0).unwrap();
    let kept = setup.app.open(0).unwrap();
    for id in [gone, kept] {
        setup.app.receive(&mut setup.kernel, id, 0, request.as_bytes()).unwrap();
    }
    let reply = CommandReply { json: json!({ "ok": true }), permission_denied: false };
    assert_eq!(setup.app.complete_command(&mut setup.kernel, kept, reply, 0), Err(AppError::NotAwaiting));
    setup.app.close(gone).unwrap();
    assert!(!setup.app.awaits_answer(gone));
    let supplied = setup.app.supply_metrics(&mut setup.kernel, &json!({}), 0);
    assert_eq!(supplied.answered, 1);
    assert_eq!(answers(setup.app.pending_output(kept)), [(200, json!({}))]);
    assert_eq!(setup.app.counters().responses.success, 1);
}

#[test]
fn without_a_connection_a_deferred_reading_is_a_503() {
    let mut setup = setup(AppConfig::default());
    setup.kernel.defer_metrics = true;
    let token = setup.viewer.clone();
    let request = crate::Request {
        method: crate::Method::Get,
        path: String::from("/api/metrics"),
        query: None,
        version: crate::Version::Http11,
        headers: alloc::vec![(String::from("Authorization"), alloc::format!("Bearer {token}"))],
        body: Vec::new(),
        keep_alive: true,
    };
    let response = setup.app.handle_request(&mut setup.kernel, &request, 0);
    assert_eq!(response.status, 503);
}
