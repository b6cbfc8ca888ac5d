//! Phase 6's judge, HTTP side: the server's start and stop, requests, the two endpoints and authentication; and
//! the entry point, which hands the WebSocket tests to [`super::stream`].

use serde_json::{json, Value};

use super::record::*;
use super::stream;
use super::GUEST_PORT;
use crate::phases::Verdict;
use crate::web::Ending;

/// Sockets the server's listener has (the kernel's `LISTENER_SOCKETS`).
const LISTENER_SOCKETS: u64 = 64;
/// The sections of `GET /api/metrics` and of every metrics frame.
pub(super) const SECTIONS: [&str; 8] =
    ["autonomy", "block", "memory", "network", "scheduler", "threads", "uptime_ns", "workload"];
/// Each section that is a command's reply, with that command (the console's own handlers).
const SECTION_COMMANDS: [(&str, &str); 7] = [
    ("autonomy", "autoctl status"),
    ("block", "blkctl status"),
    ("memory", "meminfo"),
    ("network", "netctl stats"),
    ("scheduler", "schedctl util"),
    ("threads", "threads"),
    ("workload", "memctl status"),
];

/// Every test's verdict from the session's record.
pub fn judge(observations: &Observations) -> Vec<Verdict> {
    let o = observations;
    vec![
        ("Server startup", step(&o.startup).and_then(server_startup)),
        ("HTTP requests", step(&o.http).and_then(http_requests)),
        ("Server shutdown", step(&o.shutdown).and_then(server_shutdown)),
        ("WebSocket connection", step(&o.connection).and_then(stream::websocket_connection)),
        ("Message exchange", step(&o.exchange).and_then(stream::message_exchange)),
        ("Metric subscription", step(&o.subscription).and_then(stream::metric_subscription)),
        ("GET /api/metrics", step(&o.metrics_api).and_then(get_metrics)),
        ("POST /api/command", step(&o.command_api).and_then(post_command)),
        ("Token required", step(&o.token_required).and_then(token_required)),
        ("Invalid token refused", step(&o.invalid_token).and_then(invalid_token_refused)),
        ("Role enforced", step(&o.roles).and_then(role_enforced)),
        ("Metrics stream", step(&o.stream).and_then(stream::metrics_stream)),
        ("Event stream", step(&o.events).and_then(stream::event_stream)),
        ("Update interval", step(&o.interval).and_then(stream::update_interval)),
        (
            "Reconnection",
            step(&o.reconnection)
                .and_then(|reconnection| step(&o.shutdown).map(|shutdown| (reconnection, shutdown)))
                .and_then(|(reconnection, shutdown)| stream::reconnection(reconnection, shutdown)),
        ),
    ]
}

fn step<T>(step: &Step<T>) -> Result<&T, String> {
    step.as_ref().map_err(|reason| format!("the session could not complete the step: {reason}"))
}

/// The unsigned integer at `pointer`.
pub(super) fn at(value: &Value, pointer: &str) -> Result<u64, String> {
    value.pointer(pointer).and_then(Value::as_u64).ok_or_else(|| format!("{pointer} a number, got {value}"))
}

/// `pointer` moved by exactly `expected` from `before` to `after` (both `webctl status` replies).
pub(super) fn moved(before: &Value, after: &Value, pointer: &str, expected: u64) -> Result<(), String> {
    let (from, to) = (at(before, pointer)?, at(after, pointer)?);
    match to.checked_sub(from) {
        Some(got) if got == expected => Ok(()),
        _ => Err(format!("webctl status {pointer} moves by {expected}, got {from} -> {to}")),
    }
}

/// The value at `pointer` is `expected`.
pub(super) fn equals(value: &Value, pointer: &str, expected: Value) -> Result<(), String> {
    match value.pointer(pointer) {
        Some(got) if *got == expected => Ok(()),
        got => Err(format!("{pointer} {expected}, got {} in {value}", got.unwrap_or(&Value::Null))),
    }
}

/// The reply of a console command succeeded.
fn succeeded(reply: &Value, what: &str) -> Result<(), String> {
    if reply["ok"] != true {
        return Err(format!("{what} succeeds, got {reply}"));
    }
    Ok(())
}

/// The reply of a console command failed with `code`.
fn refused_with(reply: &Value, code: &str, what: &str) -> Result<(), String> {
    if reply["ok"] != false || reply["error"]["code"] != code {
        return Err(format!("{what} refused with {code}, got {reply}"));
    }
    Ok(())
}

/// An HTTP exchange answered `status` with the error `code` in its body.
fn error_response(http: &Http, status: u16, code: &str, what: &str) -> Result<(), String> {
    if http.status != status || http.body["error"]["code"] != code {
        return Err(format!("{what}: {status} with error code {code}, got {} {}", http.status, http.body));
    }
    Ok(())
}

/// An HTTP exchange answered 200 with a command reply that succeeded.
fn command_ok(http: &Http, what: &str) -> Result<(), String> {
    if http.status != 200 || http.body["ok"] != true {
        return Err(format!("{what}: 200 with ok true, got {} {}", http.status, http.body));
    }
    Ok(())
}

/// A request nobody answered: no byte came back, and the connection ended (QEMU passes the guest's reset on
/// as the end or a reset of the host connection).
fn refused(raw: &crate::web::RawReply, what: &str) -> Result<(), String> {
    if !raw.received.is_empty() || !matches!(raw.ending, Ending::Closed | Ending::Reset) {
        return Err(format!(
            "{what}: the connection ends with no byte answered, got {:?} after {:?}",
            raw.ending,
            String::from_utf8_lossy(&raw.received)
        ));
    }
    Ok(())
}

/// Before `webctl start` nothing answers; the start listens on 8080 with 16 sockets; a second start is refused
/// and changes nothing; the first request is served, on the one connection the listener accepted.
fn server_startup(startup: &Startup) -> Result<(), String> {
    equals(&startup.before, "/running", json!(false))?;
    equals(&startup.before, "/port", Value::Null)?;
    refused(&startup.refused, "a request before the start")?;
    succeeded(&startup.start, "webctl start --port 8080")?;
    equals(&startup.start, "/running", json!(true))?;
    equals(&startup.start, "/port", json!(GUEST_PORT))?;
    equals(&startup.start, "/sockets", json!(LISTENER_SOCKETS))?;
    equals(&startup.started, "/running", json!(true))?;
    equals(&startup.started, "/port", json!(GUEST_PORT))?;
    equals(&startup.started, "/started_ns", startup.start["started_ns"].clone())?;
    refused_with(&startup.start_again, "already-running", "a second webctl start")?;
    if startup.first.status != 200 {
        return Err(format!(
            "the first GET /api/metrics answered 200, got {} {}",
            startup.first.status, startup.first.body
        ));
    }
    equals(&startup.after, "/started_ns", startup.start["started_ns"].clone())?;
    moved(&startup.started, &startup.after, "/listener/accepted", 1)?;
    moved(&startup.started, &startup.after, "/app/connections_accepted", 1)?;
    moved(&startup.started, &startup.after, "/app/responses/success", 1)
}

/// Four requests on one keep-alive connection (curl opened one connection): 200, 404 `not-found`, 200, 405
/// `method-not-allowed` with `Allow: GET`, all JSON; the server counts one connection, two successes, two client
/// errors, four latencies, and exactly the bytes curl sent and received.
fn http_requests(requests: &HttpRequests) -> Result<(), String> {
    let exchanges = &requests.exchanges;
    let statuses: Vec<u16> = exchanges.iter().map(|exchange| exchange.status).collect();
    if statuses != [200, 404, 200, 405] {
        return Err(format!("statuses [200, 404, 200, 405], got {statuses:?}"));
    }
    let connections: Vec<u64> = exchanges.iter().map(|exchange| exchange.new_connections).collect();
    if connections != [1, 0, 0, 0] {
        return Err(format!(
            "one connection kept alive for all four (new connections [1, 0, 0, 0]), got {connections:?}"
        ));
    }
    error_response(&exchanges[1], 404, "not-found", "GET /nowhere")?;
    error_response(&exchanges[3], 405, "method-not-allowed", "DELETE /api/metrics")?;
    if exchanges[3].header("allow") != Some("GET") {
        return Err(format!("the 405 names Allow: GET, got {:?}", exchanges[3].headers));
    }
    if let Some(other) = exchanges.iter().find(|exchange| exchange.header("content-type") != Some("application/json")) {
        return Err(format!("every response is application/json, got {:?}", other.headers));
    }
    let (before, after) = (&requests.before, &requests.after);
    let sent: u64 = exchanges.iter().map(|exchange| exchange.request_bytes).sum();
    let received: u64 = exchanges.iter().map(|exchange| exchange.response_bytes).sum();
    moved(before, after, "/app/connections_accepted", 1)?;
    moved(before, after, "/app/connections_closed", 1)?;
    moved(before, after, "/listener/accepted", 1)?;
    moved(before, after, "/app/responses/success", 2)?;
    moved(before, after, "/app/responses/client_error", 2)?;
    moved(before, after, "/app/latency/count", 4)?;
    moved(before, after, "/app/bytes_in", sent)?;
    moved(before, after, "/app/bytes_out", received)?;
    moved(before, after, "/listener/bytes_in", sent)?;
    moved(before, after, "/listener/bytes_out", received)
}

/// With a viewer token: 200, JSON, exactly the seven sections, each section the reply of its console command
/// (which succeeded), the memory total the console's; read at request time: uptime and the network's poll
/// count grow from one read to the next.
fn get_metrics(api: &MetricsApi) -> Result<(), String> {
    let [first, second] = api.reads.as_slice() else {
        return Err(format!("two reads, got {}", api.reads.len()));
    };
    for read in [first, second] {
        if read.status != 200 || read.header("content-type") != Some("application/json") {
            return Err(format!("200 application/json, got {} {:?}", read.status, read.headers));
        }
        check_sections(&read.body)?;
        equals(&read.body, "/memory_total_bytes", api.meminfo["total_bytes"].clone())?;
    }
    for pointer in ["/uptime_ns", "/network_polls"] {
        let (earlier, later) = (at(&first.body, pointer)?, at(&second.body, pointer)?);
        if later <= earlier {
            return Err(format!("{pointer} read at request time grows between two reads, got {earlier} then {later}"));
        }
    }
    Ok(())
}

/// A digested metrics object has exactly [`SECTIONS`], each command section from its own command, succeeded.
pub(super) fn check_sections(digest: &Value) -> Result<(), String> {
    if digest["sections"] != json!(SECTIONS) {
        return Err(format!("sections {SECTIONS:?}, got {}", digest["sections"]));
    }
    for (section, command) in SECTION_COMMANDS {
        if digest["commands"][section] != command || digest["ok"][section] != true {
            return Err(format!("section {section} is {command}'s reply with ok true, got {digest}"));
        }
    }
    Ok(())
}

/// The same registry as the console: `echo` gives exactly the console's object, `meminfo` the console's keys
/// and total, an unknown command the registry's `unknown-command`, a body without `command` 400
/// `bad-command-body`; a token made through the API is in the console's `webctl token list`.
fn post_command(api: &CommandApi) -> Result<(), String> {
    let echo = json!({ "command": "echo", "ok": true, "schema_version": 1, "text": "phase six" });
    if api.echo.status != 200 || api.echo.body != echo {
        return Err(format!("echo phase six: 200 {echo}, got {} {}", api.echo.status, api.echo.body));
    }
    command_ok(&api.meminfo_http, "meminfo")?;
    let keys = |value: &Value| value.as_object().map(|object| object.keys().cloned().collect::<Vec<_>>());
    if keys(&api.meminfo_http.body) != keys(&api.meminfo) {
        return Err(format!("meminfo has the console's fields, got {} against {}", api.meminfo_http.body, api.meminfo));
    }
    equals(&api.meminfo_http.body, "/total_bytes", api.meminfo["total_bytes"].clone())?;
    if api.unknown.status != 200
        || api.unknown.body["ok"] != false
        || api.unknown.body["error"]["code"] != "unknown-command"
    {
        return Err(format!("frobnicate: 200 with unknown-command, got {} {}", api.unknown.status, api.unknown.body));
    }
    error_response(&api.bad_body, 400, "bad-command-body", "a body without command")?;
    command_ok(&api.token_create, "webctl token create --role viewer")?;
    equals(&api.token_create.body, "/token/role", json!("viewer"))?;
    let id = at(&api.token_create.body, "/token/id")?;
    let listed = api.token_list["tokens"].as_array().into_iter().flatten();
    if !listed.clone().any(|token| token["id"] == id && token["role"] == "viewer") {
        return Err(format!("token {id} (viewer) in the console's webctl token list, got {}", api.token_list));
    }
    moved(&api.before, &api.after, "/app/responses/success", 4)?;
    moved(&api.before, &api.after, "/app/responses/client_error", 1)?;
    equals(&api.after, "/commands_waiting", json!(0))
}

/// No token: 401 `missing-token` with the `Bearer realm="sis"` challenge on GET and POST, the POSTed command
/// not run (no token made), and the WebSocket handshake refused with 401; three refusals counted, no upgrade.
fn token_required(required: &TokenRequired) -> Result<(), String> {
    error_response(&required.get, 401, "missing-token", "GET /api/metrics without a token")?;
    if required.get.header("www-authenticate") != Some("Bearer realm=\"sis\"") {
        return Err(format!("WWW-Authenticate: Bearer realm=\"sis\", got {:?}", required.get.headers));
    }
    error_response(&required.post, 401, "missing-token", "POST /api/command without a token")?;
    if required.websocket != (crate::web::Connected::Refused { status: 401 }) {
        return Err(format!("a WebSocket without a token refused with 401, got {:?}", required.websocket));
    }
    moved(&required.before, &required.after, "/tokens", 0)?;
    moved(&required.before, &required.after, "/app/auth/unauthorized", 3)?;
    moved(&required.before, &required.after, "/app/websocket/upgrades", 0)
}

/// A token never issued and a non-Bearer header: 401 `invalid-token` (the challenge says `invalid_token`), and
/// the WebSocket refused; a token that worked is revoked on the console: its open WebSocket is closed with 1008
/// at once, and it is refused from then on (401 and a refused handshake).
fn invalid_token_refused(invalid: &InvalidToken) -> Result<(), String> {
    error_response(&invalid.unknown, 401, "invalid-token", "a token never issued")?;
    if invalid.unknown.header("www-authenticate") != Some("Bearer realm=\"sis\", error=\"invalid_token\"") {
        return Err(format!("the challenge says error=\"invalid_token\", got {:?}", invalid.unknown.headers));
    }
    error_response(&invalid.basic, 401, "invalid-token", "Authorization: Basic")?;
    let refused = crate::web::Connected::Refused { status: 401 };
    if invalid.websocket_unknown != refused {
        return Err(format!(
            "a WebSocket with a token never issued refused with 401, got {:?}",
            invalid.websocket_unknown
        ));
    }
    if invalid.valid.status != 200 {
        return Err(format!("the token works before its revocation (200), got {}", invalid.valid.status));
    }
    succeeded(&invalid.revoke, "webctl token revoke")?;
    equals(&invalid.revoke, "/websockets_closed", json!(1))?;
    let closed_1008 = Seen::Closed(crate::web::Closed { code: Some(1008), reason: Some(String::new()) });
    if invalid.websocket_end != closed_1008 {
        return Err(format!("the revoked token's WebSocket closed with 1008, got {:?}", invalid.websocket_end));
    }
    error_response(&invalid.revoked, 401, "invalid-token", "the revoked token")?;
    if invalid.websocket_revoked != refused {
        return Err(format!(
            "a WebSocket with the revoked token refused with 401, got {:?}",
            invalid.websocket_revoked
        ));
    }
    moved(&invalid.before, &invalid.after, "/app/auth/unauthorized", 5)?;
    moved(&invalid.before, &invalid.after, "/app/websocket/closed_by_server", 1)?;
    // The revoked token is forgotten: one token fewer.
    moved(&invalid.after, &invalid.before, "/tokens", 1)
}

/// A viewer reads (`ls /`) but cannot change files (`mkdir`: 403 `permission-denied`, the directory not made);
/// an operator changes files but cannot start a stress test (403); an admin runs `webctl`; two refusals counted.
fn role_enforced(roles: &Roles) -> Result<(), String> {
    error_response(&roles.viewer_mkdir, 403, "permission-denied", "mkdir with a viewer token")?;
    command_ok(&roles.viewer_ls, "ls / with a viewer token")?;
    command_ok(&roles.operator_mkdir, "mkdir with an operator token")?;
    error_response(&roles.operator_stress, 403, "permission-denied", "stresstest with an operator token")?;
    command_ok(&roles.admin_tokens, "webctl token list with an admin token")?;
    let names: Vec<&str> =
        roles.ls["entries"].as_array().into_iter().flatten().filter_map(|entry| entry["name"].as_str()).collect();
    if !names.contains(&"phase6-operator") || names.contains(&"phase6-viewer") {
        return Err(format!("/ holds phase6-operator and not phase6-viewer, got {names:?}"));
    }
    moved(&roles.before, &roles.after, "/app/auth/forbidden", 2)?;
    moved(&roles.before, &roles.after, "/app/auth/unauthorized", 0)
}

/// `webctl stop` with a subscribed WebSocket open: the WebSocket is reset (no close frame), the server
/// forgets every connection, a second stop is refused (`not-running`), and a request is refused by the guest (no
/// byte answered, nothing accepted, though its frames reached the guest); `webctl start` brings the server back,
/// and the admin token still works.
fn server_shutdown(shutdown: &Shutdown) -> Result<(), String> {
    if shutdown.open_before.iter().filter_map(Seen::frame).filter(|frame| frame["type"] == "metrics").count() != 2 {
        return Err(format!("a subscribed WebSocket with two frames before the stop, got {:?}", shutdown.open_before));
    }
    succeeded(&shutdown.stop, "webctl stop")?;
    equals(&shutdown.stop, "/running", json!(false))?;
    equals(&shutdown.stop, "/port", json!(GUEST_PORT))?;
    let reset = Seen::Closed(crate::web::Closed { code: None, reason: None });
    if shutdown.websocket_end != reset {
        return Err(format!("the open WebSocket reset without a close frame, got {:?}", shutdown.websocket_end));
    }
    equals(&shutdown.stopped, "/running", json!(false))?;
    equals(&shutdown.stopped, "/port", Value::Null)?;
    equals(&shutdown.stopped, "/app/websocket/open", json!(0))?;
    refused_with(&shutdown.stop_again, "not-running", "a second webctl stop")?;
    refused(&shutdown.refused, "a request while stopped")?;
    moved(&shutdown.stopped, &shutdown.status_refused, "/listener/accepted", 0)?;
    moved(&shutdown.stopped, &shutdown.status_refused, "/app/connections_accepted", 0)?;
    let frames = "/link/received_frames";
    if at(&shutdown.net_after, frames)? <= at(&shutdown.net_before, frames)? {
        return Err(format!("the refused connect's frames reached the guest ({frames} grows), got none"));
    }
    succeeded(&shutdown.start, "webctl start after the stop")?;
    equals(&shutdown.start, "/port", json!(GUEST_PORT))?;
    if shutdown.back.status != 200 {
        return Err(format!(
            "GET /api/metrics with the same admin token after the restart: 200, got {}",
            shutdown.back.status
        ));
    }
    moved(&shutdown.status_refused, &shutdown.status_back, "/listener/accepted", 1)
}
