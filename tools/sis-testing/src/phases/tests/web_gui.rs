//! Phase 6's judge against a recorded session, and against that record changed the way a broken server would
//! change it: each test fails, with expected against got.

use serde_json::{json, Value};

use super::super::web_gui::{self, Observations};
use super::super::Verdict;

/// The record of one deterministic session (`cargo xtask phases --phase 6 --deterministic`, 2026-12-07, with the
/// kernel's event log).
fn recorded() -> Value {
    serde_json::from_str(include_str!("../phase6_observations.json")).unwrap()
}

fn verdicts(record: Value) -> Vec<Verdict> {
    let observations: Observations = serde_json::from_value(record).unwrap();
    web_gui::judge(&observations)
}

/// Test `test`'s verdict after `change` to the record.
fn verdict(test: &str, change: impl FnOnce(&mut Value)) -> Result<(), String> {
    let mut record = recorded();
    change(&mut record);
    verdicts(record).into_iter().find(|(name, _)| *name == test).unwrap().1
}

fn at<'a>(record: &'a mut Value, pointer: &str) -> &'a mut Value {
    record.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} in the record"))
}

/// The reason of a failing verdict, up to ", got" (what the test expected).
fn expected(verdict: Result<(), String>) -> String {
    let reason = verdict.expect_err("the test fails");
    reason.split(", got").next().unwrap().to_string()
}

#[test]
fn a_recorded_session_passes_all_fifteen_tests() {
    let verdicts = verdicts(recorded());
    let names: Vec<&str> = verdicts.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, web_gui::TESTS);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
}

#[test]
fn an_events_subscription_refused_as_before_the_event_log_fails_the_event_stream() {
    let verdict = verdict("Event stream", |record| {
        record["events"] = json!({ "Ok": {
            "reply": { "frame": { "type": "error", "error": { "code": "not-implemented", "message": "no events yet" } } },
            "stress": null,
            "frames": [],
        } });
    });
    assert_eq!(
        verdict,
        Err(String::from(
            "{\"subscribe\":\"events\"} acknowledged with {\"topic\":\"events\",\"type\":\"subscribed\"}, got \
             {\"error\":{\"code\":\"not-implemented\",\"message\":\"no events yet\"},\"type\":\"error\"}"
        ))
    );
}

#[test]
fn a_step_the_session_could_not_complete_fails_its_test_with_the_reason() {
    let verdict = verdict("Message exchange", |record| {
        record["exchange"] = json!({ "Err": "sending hello: the client failed: ConnectionClosedError" });
    });
    assert_eq!(
        verdict,
        Err(String::from(
            "the session could not complete the step: sending hello: the client failed: ConnectionClosedError"
        ))
    );
    // Reconnection also reads the shutdown step.
    let verdict = verdict_of_reconnection_without_shutdown();
    assert!(verdict.unwrap_err().starts_with("the session could not complete the step: no restart"));
}

fn verdict_of_reconnection_without_shutdown() -> Result<(), String> {
    verdict("Reconnection", |record| record["shutdown"] = json!({ "Err": "no restart" }))
}

#[test]
fn a_server_answering_before_its_start_or_starting_twice_fails_startup() {
    let answered = verdict("Server startup", |record| {
        *at(record, "/startup/Ok/refused") = json!({ "received": [72, 84], "ending": "closed" });
    });
    assert_eq!(expected(answered), "a request before the start: the connection ends with no byte answered");
    let twice = verdict("Server startup", |record| *at(record, "/startup/Ok/start_again/ok") = json!(true));
    assert_eq!(expected(twice), "a second webctl start refused with already-running");
    let uncounted = verdict("Server startup", |record| {
        let accepted = at(record, "/startup/Ok/after/listener/accepted");
        *accepted = json!(accepted.as_u64().unwrap() + 1);
    });
    assert_eq!(expected(uncounted), "webctl status /listener/accepted moves by 1");
}

#[test]
fn a_byte_miscounted_or_a_connection_not_kept_alive_fails_http_requests() {
    let miscounted = verdict("HTTP requests", |record| {
        let bytes = at(record, "/http/Ok/after/app/bytes_out");
        *bytes = json!(bytes.as_u64().unwrap() + 1);
    });
    let received: u64 = recorded()["http"]["Ok"]["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|exchange| exchange["response_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(expected(miscounted), format!("webctl status /app/bytes_out moves by {received}"));
    let not_kept = verdict("HTTP requests", |record| {
        for index in 0..4 {
            *at(record, &format!("/http/Ok/exchanges/{index}/new_connections")) = json!(1);
        }
    });
    assert_eq!(expected(not_kept), "one connection kept alive for all four (new connections [1, 0, 0, 0])");
    let no_allow = verdict("HTTP requests", |record| {
        at(record, "/http/Ok/exchanges/3/headers").as_object_mut().unwrap().remove("allow");
    });
    assert_eq!(expected(no_allow), "the 405 names Allow: GET");
}

#[test]
fn a_websocket_closed_politely_a_port_still_answering_or_no_restart_fails_shutdown() {
    let polite = verdict("Server shutdown", |record| {
        *at(record, "/shutdown/Ok/websocket_end") = json!({ "closed": { "code": 1001, "reason": "" } });
    });
    assert_eq!(expected(polite), "the open WebSocket reset without a close frame");
    let answering = verdict("Server shutdown", |record| {
        *at(record, "/shutdown/Ok/refused") = json!({ "received": b"HTTP/1.1 200 OK\r\n", "ending": "status_line" });
    });
    assert_eq!(expected(answering), "a request while stopped: the connection ends with no byte answered");
    let accepted = verdict("Server shutdown", |record| {
        let accepted = at(record, "/shutdown/Ok/status_refused/listener/accepted");
        *accepted = json!(accepted.as_u64().unwrap() + 1);
    });
    assert_eq!(expected(accepted), "webctl status /listener/accepted moves by 0");
    let down = verdict("Server shutdown", |record| *at(record, "/shutdown/Ok/back/status") = json!(0));
    assert_eq!(expected(down), "GET /api/metrics with the same admin token after the restart: 200");
}

#[test]
fn a_second_websocket_counted_or_a_close_not_echoed_fails_websocket_connection() {
    let two =
        verdict("WebSocket connection", |record| *at(record, "/connection/Ok/open/app/websocket/open") = json!(2));
    assert_eq!(expected(two), "/app/websocket/open 1");
    let unechoed = verdict("WebSocket connection", |record| {
        *at(record, "/connection/Ok/closed") = json!({ "code": null, "reason": null });
    });
    assert_eq!(expected(unechoed), "the server answers close 1000 with 1000");
}

#[test]
fn a_wrong_error_code_or_an_extra_frame_fails_message_exchange() {
    let wrong = verdict("Message exchange", |record| {
        *at(record, "/exchange/Ok/replies/2/1/frame/error/code") = json!("bad-json");
    });
    assert_eq!(expected(wrong), "{\"subscribe\":\"metrics\",\"interval_ms\":10}: answered with interval-out-of-range");
    let extra = verdict("Message exchange", |record| {
        let out = at(record, "/exchange/Ok/after/app/websocket/messages_out");
        *out = json!(out.as_u64().unwrap() + 1);
    });
    assert_eq!(expected(extra), "webctl status /app/websocket/messages_out moves by 6");
    let no_pong = verdict("Message exchange", |record| *at(record, "/exchange/Ok/pong") = json!({ "Err": "timeout" }));
    assert_eq!(expected(no_pong), "a ping answered with a pong");
}

#[test]
fn a_push_after_unsubscribing_fails_metric_subscription() {
    // A metrics frame arrived during the silence: it comes before the next acknowledgement.
    let pushed = verdict("Metric subscription", |record| {
        let frames = at(record, "/subscription/Ok/resubscribed").as_array_mut().unwrap();
        let push = frames[1].clone();
        frames.insert(0, push);
    });
    assert_eq!(
        expected(pushed),
        "the next subscription (nothing in the silence): the subscription acknowledged with \
         {\"interval_ms\":60000,\"topic\":\"metrics\",\"type\":\"subscribed\"}"
    );
    // The next push came too soon after the last: the subscription had not stopped.
    let soon = verdict("Metric subscription", |record| {
        let last = at(record, "/subscription/Ok/subscribed/4/frame/now_ns").as_u64().unwrap();
        *at(record, "/subscription/Ok/resubscribed/1/frame/now_ns") = json!(last + 250_000_000);
    });
    assert_eq!(expected(soon), "no push for at least 4 intervals of 250 ms after unsubscribing");
    let wrong_ack = verdict("Metric subscription", |record| {
        *at(record, "/subscription/Ok/subscribed/0/frame/interval_ms") = json!(1000);
    });
    assert!(expected(wrong_ack).starts_with("a 250 ms subscription: the subscription acknowledged with"));
}

#[test]
fn a_missing_section_or_a_stale_figure_fails_get_metrics() {
    let missing = verdict("GET /api/metrics", |record| {
        at(record, "/metrics_api/Ok/reads/0/body/sections").as_array_mut().unwrap().retain(|name| name != "block");
    });
    assert!(expected(missing).starts_with("sections [\"autonomy\", \"block\""));
    let stale = verdict("GET /api/metrics", |record| {
        let first = at(record, "/metrics_api/Ok/reads/0/body/uptime_ns").clone();
        *at(record, "/metrics_api/Ok/reads/1/body/uptime_ns") = first;
    });
    assert_eq!(expected(stale), "/uptime_ns read at request time grows between two reads");
    let other_total = verdict("GET /api/metrics", |record| {
        *at(record, "/metrics_api/Ok/reads/1/body/memory_total_bytes") = json!(1);
    });
    assert!(expected(other_total).starts_with("/memory_total_bytes 536870912"));
}

#[test]
fn a_reply_unlike_the_consoles_or_a_token_the_console_does_not_see_fails_post_command() {
    let echo = verdict("POST /api/command", |record| *at(record, "/command_api/Ok/echo/body/text") = json!("phase"));
    assert!(expected(echo).starts_with("echo phase six: 200 {\"command\":\"echo\""));
    let unlisted = verdict("POST /api/command", |record| {
        *at(record, "/command_api/Ok/token_list/tokens") = json!([]);
    });
    assert!(expected(unlisted).ends_with("(viewer) in the console's webctl token list"));
    let unknown = verdict("POST /api/command", |record| {
        *at(record, "/command_api/Ok/unknown/body/error/code") = json!("permission-denied");
    });
    assert_eq!(expected(unknown), "frobnicate: 200 with unknown-command");
}

#[test]
fn an_open_door_fails_the_authentication_tests() {
    let upgraded = verdict("Token required", |record| *at(record, "/token_required/Ok/websocket") = json!("open"));
    assert_eq!(expected(upgraded), "a WebSocket without a token refused with 401");
    let challenge = verdict("Token required", |record| {
        *at(record, "/token_required/Ok/get/headers/www-authenticate/0") = json!("Basic");
    });
    assert_eq!(expected(challenge), "WWW-Authenticate: Bearer realm=\"sis\"");
    let still_open = verdict("Invalid token refused", |record| {
        *at(record, "/invalid_token/Ok/websocket_end") = json!("silent");
    });
    assert_eq!(expected(still_open), "the revoked token's WebSocket closed with 1008");
    let revoked_works = verdict("Invalid token refused", |record| {
        *at(record, "/invalid_token/Ok/revoked/status") = json!(200);
    });
    assert_eq!(expected(revoked_works), "the revoked token: 401 with error code invalid-token");
    let viewer_writes = verdict("Role enforced", |record| {
        *at(record, "/roles/Ok/viewer_mkdir/status") = json!(200);
    });
    assert_eq!(expected(viewer_writes), "mkdir with a viewer token: 403 with error code permission-denied");
    let made_anyway = verdict("Role enforced", |record| {
        let entries = at(record, "/roles/Ok/ls/entries").as_array_mut().unwrap();
        entries.push(json!({ "directory": true, "name": "phase6-viewer", "size": 0 }));
    });
    assert!(expected(made_anyway).starts_with("/ holds phase6-operator and not phase6-viewer"));
}

#[test]
fn a_stream_that_does_not_follow_the_kernel_fails_metrics_stream() {
    // The frames never showed the raised threshold.
    let frozen = verdict("Metrics stream", |record| {
        for part in ["raised", "restored"] {
            for frame in at(record, &format!("/stream/Ok/{part}")).as_array_mut().unwrap() {
                frame["frame"]["metrics"]["confidence_threshold_per_mille"] = json!(600);
            }
        }
    });
    assert_eq!(expected(frozen), "the threshold runs 600, 700, 600 over the stream");
    // Figures read before the push (a cached frame).
    let cached = verdict("Metrics stream", |record| {
        *at(record, "/stream/Ok/before/2/frame/metrics/uptime_ns") = json!(1);
    });
    assert!(expected(cached).starts_with("figures read at push time (uptime_ns >= now_ns)"));
}

#[test]
fn a_push_off_its_schedule_or_another_default_fails_update_interval() {
    let late = verdict("Update interval", |record| {
        let time = at(record, "/interval/Ok/fast/5/frame/now_ns");
        *time = json!(time.as_u64().unwrap() + 150_000_000);
    });
    assert_eq!(expected(late), "a 200 ms subscription: push k within 100 ms of first + k x 200 ms");
    let other_default = verdict("Update interval", |record| {
        *at(record, "/interval/Ok/default/0/frame/interval_ms") = json!(500);
    });
    assert!(expected(other_default).starts_with("a 1000 ms subscription: the subscription acknowledged with"));
}

#[test]
fn a_subscription_carried_over_to_a_new_connection_fails_reconnection() {
    let carried = verdict("Reconnection", |record| {
        let push = at(record, "/reconnection/Ok/first/1").clone();
        at(record, "/reconnection/Ok/second_unsubscribe").as_array_mut().unwrap().insert(0, push);
    });
    assert_eq!(expected(carried), "the second connection starts unsubscribed (only the acknowledgement)");
    let stale = verdict("Reconnection", |record| {
        let before_stop = at(record, "/shutdown/Ok/open_before/2/frame/now_ns").clone();
        *at(record, "/shutdown/Ok/reconnected/1/frame/now_ns") = before_stop;
    });
    assert_eq!(expected(stale), "frames after the restart come after the last before the stop");
}

/// The recorded run's events after `change`, with their `seq` numbered again from 1 when `renumber`. The run
/// (seq 1 to 22) reports a partial pass: `stress.started`, eleven `stress.progress` from 0 to 100 % with nine
/// `memory.oom` events among them, and `stress.finished` with status `failed`.
fn event_verdict(renumber: bool, change: impl FnOnce(&mut Vec<Value>)) -> Result<(), String> {
    verdict("Event stream", |record| {
        let frames = at(record, "/events/Ok/frames").as_array_mut().unwrap();
        let mut events: Vec<Value> = frames.iter().map(|seen| seen["frame"]["event"].clone()).collect();
        change(&mut events);
        if renumber {
            for (index, event) in events.iter_mut().enumerate() {
                event["seq"] = json!(index + 1);
            }
        }
        *frames = events.into_iter().map(|event| json!({ "frame": { "type": "event", "event": event } })).collect();
    })
}

/// Indices of the events of `kind`.
fn of_kind(events: &[Value], kind: &str) -> Vec<usize> {
    events.iter().enumerate().filter(|(_, event)| event["kind"] == kind).map(|(index, _)| index).collect()
}

#[test]
fn each_broken_rule_of_the_events_contract_fails_the_event_stream() {
    assert_eq!(event_verdict(false, |_| {}), Ok(()));
    // Other kinds between the run's events, and a gap the server announced, are no fault.
    let interleaved = event_verdict(true, |events| {
        events.insert(5, json!({ "at_ms": events[4]["at_ms"], "kind": "autonomy.intervention", "decision": 1 }));
    });
    assert_eq!(interleaved, Ok(()));
    let announced = event_verdict(false, |events| events[4] = json!({ "kind": "events.missed", "count": 1 }));
    assert_eq!(announced, Ok(()));
    let silent_gap = event_verdict(false, |events| {
        events.remove(4);
    });
    assert_eq!(silent_gap, Err(String::from("seq 5 after 4 (0 missed), got 6")));
    let backwards = event_verdict(false, |events| events[3]["at_ms"] = json!(0));
    assert!(backwards.unwrap_err().starts_with("at_ms never goes back, got 0 after"));
    let no_progress = event_verdict(true, |events| events.retain(|event| event["kind"] != "stress.progress"));
    assert_eq!(
        no_progress,
        Err(String::from(
            "run 1: started, progress at least once, finished, in that order, got [\"stress.started\", \"stress.finished\"]"
        ))
    );
    let receding = event_verdict(false, |events| {
        let progress = of_kind(events, "stress.progress");
        events[progress[2]]["percent"] = json!(5);
    });
    assert_eq!(receding, Err(String::from("run 1: percent within 0..=100 and never decreasing, got 5 after 10")));
    let early = event_verdict(false, |events| {
        let last = events.len() - 1;
        events[last]["elapsed_ms"] = json!(1499);
    });
    assert_eq!(early, Err(String::from("run 1: finished after at least 1500 ms, got elapsed_ms 1499")));
    let other_seed = event_verdict(false, |events| events[0]["seed"] = json!(1));
    assert!(other_seed.unwrap_err().starts_with("/seed 6, got 1"));
    let other_duration = event_verdict(false, |events| events[0]["duration_ms"] = json!(1000));
    assert!(other_duration.unwrap_err().starts_with("/duration_ms 1500, got 1000"));
    // The finished event names the report's outcome: the recorded run failed (a partial pass).
    let other_status = event_verdict(false, |events| {
        let last = events.len() - 1;
        events[last]["status"] = json!("passed");
    });
    assert_eq!(other_status.unwrap_err().split(" in ").next(), Some("/status \"failed\", got \"passed\""));
    let passing_run = verdict("Event stream", |record| {
        *at(record, "/events/Ok/stress/body/ok") = json!(true);
        *at(record, "/events/Ok/frames/21/frame/event/status") = json!("passed");
    });
    assert_eq!(passing_run, Ok(()));
    let unfinished = verdict("Event stream", |record| {
        let frames = at(record, "/events/Ok/frames").as_array_mut().unwrap();
        frames.pop();
        frames.push(json!("silent"));
    });
    assert_eq!(unfinished, Err(String::from("event frames up to the run's stress.finished, got Silent")));
}
