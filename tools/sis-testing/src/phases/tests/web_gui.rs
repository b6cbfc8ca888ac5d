//! Phase 6's judge against a recorded session, and against that record changed the way a broken server would
//! change it: each test fails, with expected against got.

use serde_json::{json, Value};

use super::super::web_gui::{self, Observations};
use super::super::Verdict;

/// The record of one deterministic session (`cargo xtask phases --phase 6 --deterministic`, 2026-12-07), before
/// the kernel published events: the events subscription was refused with `not-implemented`.
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
fn a_recorded_session_passes_fourteen_tests_and_the_event_stream_fails_not_implemented() {
    let verdicts = verdicts(recorded());
    let names: Vec<&str> = verdicts.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, web_gui::TESTS);
    for (test, verdict) in &verdicts {
        if *test != "Event stream" {
            assert_eq!(verdict, &Ok(()), "{test}");
        }
    }
    assert_eq!(
        verdicts[12].1,
        Err(String::from(
            "{\"subscribe\":\"events\"} acknowledged with {\"topic\":\"events\",\"type\":\"subscribed\"}, got \
             {\"error\":{\"code\":\"not-implemented\",\"message\":\"the kernel publishes no events yet; metrics can be \
             subscribed to\"},\"type\":\"error\"}"
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
    assert_eq!(expected(miscounted), "webctl status /app/bytes_out moves by 6845");
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

/// An events session as the contract describes it (docs/phases.md): written here, not recorded, until the
/// kernel publishes events. The stress report carries seed 77.
fn with_events(frames: Vec<Value>) -> Value {
    let mut record = recorded();
    let stress = json!({
        "status": 200, "headers": {}, "request_bytes": 0, "response_bytes": 0, "new_connections": 1,
        "body": { "command": "stresstest memory", "ok": true, "memory": { "config": { "seed": 77 } } },
    });
    let frames: Vec<Value> =
        frames.into_iter().map(|event| json!({ "frame": { "type": "event", "event": event } })).collect();
    record["events"] = json!({ "Ok": {
        "reply": { "frame": { "type": "subscribed", "topic": "events" } },
        "stress": stress,
        "frames": frames,
    } });
    record
}

fn run_events() -> Vec<Value> {
    vec![
        json!({ "seq": 4, "at_ms": 900, "kind": "stress.started", "run": 2, "test": "memory", "seed": 77, "duration_ms": 1500 }),
        json!({ "seq": 5, "at_ms": 1150, "kind": "stress.progress", "run": 2, "test": "memory", "percent": 16, "elapsed_ms": 250 }),
        json!({ "seq": 6, "at_ms": 1160, "kind": "memory.oom", "run": 2, "new_oom_events": 3, "oom_events": 3, "bytes": 4096 }),
        json!({ "seq": 7, "at_ms": 1900, "kind": "stress.progress", "run": 2, "test": "memory", "percent": 66, "elapsed_ms": 1000 }),
        json!({ "seq": 8, "at_ms": 2400, "kind": "stress.finished", "run": 2, "test": "memory", "elapsed_ms": 1500, "status": "passed" }),
    ]
}

fn event_verdict(frames: Vec<Value>) -> Result<(), String> {
    verdicts(with_events(frames)).into_iter().find(|(name, _)| *name == "Event stream").unwrap().1
}

#[test]
fn events_as_the_contract_describes_pass_and_each_broken_rule_fails() {
    assert_eq!(event_verdict(run_events()), Ok(()));
    // A gap the server announced is no gap.
    let mut announced = run_events();
    announced.remove(2);
    announced.insert(2, json!({ "kind": "events.missed", "count": 1 }));
    assert_eq!(event_verdict(announced), Ok(()));
    let mut silent_gap = run_events();
    silent_gap.remove(2);
    assert_eq!(event_verdict(silent_gap), Err(String::from("seq 6 after 5 (0 missed), got 7")));
    let mut backwards = run_events();
    backwards[3]["at_ms"] = json!(1000);
    assert_eq!(event_verdict(backwards), Err(String::from("at_ms never goes back, got 1000 after 1160")));
    let mut no_progress = run_events();
    no_progress.retain(|event| event["kind"] != "stress.progress");
    for (seq, event) in no_progress.iter_mut().enumerate() {
        event["seq"] = json!(seq + 4);
    }
    assert_eq!(
        event_verdict(no_progress),
        Err(String::from(
            "run 2: started, progress at least once, finished, in that order, got [\"stress.started\", \"stress.finished\"]"
        ))
    );
    let mut receding = run_events();
    receding[3]["percent"] = json!(10);
    assert_eq!(
        event_verdict(receding),
        Err(String::from("run 2: percent within 0..=100 and never decreasing, got 10 after 16"))
    );
    let mut early = run_events();
    early[4]["elapsed_ms"] = json!(1499);
    assert_eq!(event_verdict(early), Err(String::from("run 2: finished after at least 1500 ms, got elapsed_ms 1499")));
    let mut other_seed = run_events();
    other_seed[0]["seed"] = json!(78);
    assert!(event_verdict(other_seed).unwrap_err().starts_with("/seed 77, got 78"));
    let unfinished = run_events()[..4].to_vec();
    assert!(with_events(unfinished.clone())["events"]["Ok"]["frames"].as_array().unwrap().len() == 4);
    let mut ended = unfinished;
    ended.push(json!(null));
    let mut record = with_events(ended);
    *at(&mut record, "/events/Ok/frames/4") = json!("silent");
    let verdict = verdicts(record).into_iter().find(|(name, _)| *name == "Event stream").unwrap().1;
    assert_eq!(verdict, Err(String::from("event frames up to the run's stress.finished, got Silent")));
}
