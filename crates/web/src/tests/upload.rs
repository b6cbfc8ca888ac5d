//! `POST /api/models`: routing, the token and capability checked before the body is read, the upload's own body
//! limit at its boundary in both framings (every other route keeping its own), refusals at their statuses, the
//! backend called with the sender's token, deferral, and a body the heap cannot hold.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::json;

use super::app::{parse_answer, setup, Answer, Setup};
use super::{connection, take_output};
use crate::token::{TokenId, SECRET_BYTES};
use crate::{
    refusal_status, AppConfig, AppError, CommandReply, ConnectionId, Event, HttpError, Limits, ModelReply,
    RespondError, Response, Role, State, Timeout,
};

/// The head of an upload: the bearer token and content type when given, and `framing` (a `Content-Length` or
/// `Transfer-Encoding` line).
fn head(token: Option<&str>, content_type: Option<&str>, framing: &str) -> String {
    let auth = token.map(|token| alloc::format!("Authorization: Bearer {token}\r\n")).unwrap_or_default();
    let kind = content_type.map(|kind| alloc::format!("Content-Type: {kind}\r\n")).unwrap_or_default();
    alloc::format!("POST /api/models HTTP/1.1\r\nHost: sis\r\n{auth}{kind}{framing}\r\n\r\n")
}

/// An upload of `body` with `Content-Length` and `application/octet-stream`.
fn upload(token: &str, body: &[u8]) -> Vec<u8> {
    let framing = alloc::format!("Content-Length: {}", body.len());
    let mut bytes = head(Some(token), Some("application/octet-stream"), &framing).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// An upload of `body` in chunks of at most `chunk` bytes.
fn chunked_upload(token: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut bytes = head(Some(token), Some("application/octet-stream"), "Transfer-Encoding: chunked").into_bytes();
    for piece in body.chunks(chunk) {
        bytes.extend_from_slice(alloc::format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

/// `length` bytes of an artifact the fake kernel registers.
fn artifact(length: usize) -> Vec<u8> {
    let mut bytes = b"SISMODEL".repeat(length / 8 + 1);
    bytes.truncate(length);
    bytes
}

impl Setup {
    /// Sends an upload's head alone on a new connection; returns the connection and what it answered at once.
    fn head_only(&mut self, head: &str) -> (ConnectionId, String) {
        let id = self.app.open(0).unwrap();
        assert_eq!(self.app.receive(&mut self.kernel, id, 0, head.as_bytes()), Ok(head.len()));
        let output = String::from_utf8(self.app.pending_output(id).to_vec()).unwrap();
        self.app.consume(&mut self.kernel, id, 0, usize::MAX);
        (id, output)
    }
}

#[test]
fn an_upload_is_registered_for_the_token_that_sent_it() {
    let mut setup = setup(AppConfig::default());
    let admin = setup.admin.clone();
    let (second, second_secret) = setup.app.create_token(Role::Admin, [4; SECRET_BYTES], 0).unwrap();
    assert_eq!(second.id, TokenId(4));
    let body = artifact(1000);
    let answer = setup.request_bytes(&upload(&second_secret, &body));
    assert_eq!(answer.status, 201, "{answer:?}");
    assert!(answer.head.starts_with("HTTP/1.1 201 Created\r\n"), "{}", answer.head);
    assert!(answer.head.contains("Content-Type: application/json\r\n"));
    assert_eq!(answer.body, json!({ "name": "fake", "bytes": 1000, "registered_by": "token:4" }));
    let answer = setup.request_bytes(&chunked_upload(&admin, &body, 300));
    assert_eq!(answer.body["registered_by"], "token:3");
    // The backend got the exact bytes, once each, with the sender's token.
    let uploads: Vec<(&[u8], TokenId)> =
        setup.kernel.uploads.iter().map(|(_, bytes, token)| (bytes.as_slice(), *token)).collect();
    assert_eq!(uploads, [(body.as_slice(), TokenId(4)), (body.as_slice(), TokenId(3))]);
    // Parameters and case of the content type do not matter.
    let mut text = head(Some(&admin), Some("Application/Octet-Stream; x=1"), "Content-Length: 2").into_bytes();
    text.extend_from_slice(b"ok");
    assert_eq!(setup.request_bytes(&text).status, 201);
    assert_eq!(setup.app.counters().responses.success, 3);
}

#[test]
fn refusals_carry_the_backends_code_at_their_status() {
    let mut setup = setup(AppConfig::default());
    let admin = setup.admin.clone();
    let duplicate = setup.request_bytes(&upload(&admin, b"dup artifact"));
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body,
        json!({ "error": { "code": "version-exists", "message": "fake@1.0.0 is registered already" } })
    );
    let damaged = setup.request_bytes(&upload(&admin, b"bad artifact"));
    assert_eq!((damaged.status, damaged.body["error"]["code"].as_str()), (422, Some("digest-mismatch")));
    assert!(damaged.head.starts_with("HTTP/1.1 422 Unprocessable Content\r\n"));
    assert_eq!(setup.kernel.uploads.len(), 2);
    let statuses: Vec<u16> = [
        "version-exists",
        "model-too-large",
        "registry-full",
        "registry-no-room",
        "out-of-memory",
        "bad-trust-argument",
        "permission-denied",
        "digest-mismatch",
        "signature-invalid",
        "unknown-key",
        "truncated",
        "bad-magic",
    ]
    .iter()
    .map(|code| refusal_status(code))
    .collect();
    assert_eq!(statuses, [409, 413, 507, 507, 507, 503, 403, 422, 422, 422, 422, 422]);
}

#[test]
fn an_upload_without_an_admin_token_or_octet_stream_is_refused_before_its_body_is_read() {
    let mut setup = setup(AppConfig::default());
    let (viewer, operator, admin) = (setup.viewer.clone(), setup.operator.clone(), setup.admin.clone());
    let octets = Some("application/octet-stream");
    let bad_token = "0".repeat(64);
    let cases = [
        (head(None, octets, "Content-Length: 1000"), 401, "missing-token"),
        (head(Some(&bad_token), octets, "Content-Length: 1000"), 401, "invalid-token"),
        (head(Some(&viewer), octets, "Content-Length: 1000"), 403, "permission-denied"),
        (head(Some(&operator), octets, "Transfer-Encoding: chunked"), 403, "permission-denied"),
        (head(Some(&admin), Some("application/json"), "Content-Length: 1000"), 415, "unsupported-media-type"),
        (head(Some(&admin), None, "Content-Length: 1000"), 415, "unsupported-media-type"),
    ];
    for (text, status, code) in cases {
        // The head alone is answered: the body was never needed.
        let (id, output) = setup.head_only(&text);
        let answer = parse_answer(&output);
        assert_eq!((answer.status, answer.body["error"]["code"].as_str()), (status, Some(code)), "{text}");
        assert!(answer.head.ends_with("\r\nConnection: close"), "{}", answer.head);
        assert!(setup.app.should_close(id));
        // What the client sends after it is taken and dropped.
        assert_eq!(setup.app.receive(&mut setup.kernel, id, 0, &[b'x'; 1000]), Ok(1000));
        assert!(setup.app.pending_output(id).is_empty());
        setup.app.close(id).unwrap();
    }
    assert_eq!(setup.kernel.uploads, []);
    let counters = setup.app.counters();
    assert_eq!((counters.auth.unauthorized, counters.auth.forbidden), (2, 2));
    assert_eq!(counters.responses.client_error, 6);
    // Other methods on the path are 405.
    let get = setup.get("/api/models", Some(&admin));
    assert_eq!(get.status, 405);
    assert!(get.head.contains("\r\nAllow: POST\r\n"), "{}", get.head);
}

#[test]
fn expect_continue_is_answered_only_for_an_admitted_upload() {
    let mut setup = setup(AppConfig::default());
    let (viewer, admin) = (setup.viewer.clone(), setup.admin.clone());
    let expect =
        |token: &str| head(Some(token), Some("application/octet-stream"), "Content-Length: 4\r\nExpect: 100-continue");
    let (refused, output) = setup.head_only(&expect(&viewer));
    assert!(output.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{output}");
    setup.app.close(refused).unwrap();
    let (admitted, output) = setup.head_only(&expect(&admin));
    assert_eq!(output, "HTTP/1.1 100 Continue\r\n\r\n");
    setup.app.receive(&mut setup.kernel, admitted, 0, b"SISM").unwrap();
    let output = String::from_utf8(setup.app.pending_output(admitted).to_vec()).unwrap();
    assert_eq!(parse_answer(&output).body, json!({ "name": "fake", "bytes": 4, "registered_by": "token:3" }));
}

/// The status and error code of an answer.
fn verdict(answer: &Answer) -> (u16, Option<&str>) {
    (answer.status, answer.body["error"]["code"].as_str())
}

#[test]
fn the_upload_limit_holds_at_its_boundary_in_both_framings_and_other_routes_keep_theirs() {
    let limits = Limits { max_body_bytes: 16, max_upload_bytes: 100, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let admin = setup.admin.clone();
    let too_large = (413, Some("body-too-large"));
    assert_eq!(setup.request_bytes(&upload(&admin, &artifact(100))).status, 201);
    assert_eq!(verdict(&setup.request_bytes(&upload(&admin, &artifact(101)))), too_large);
    assert_eq!(setup.request_bytes(&chunked_upload(&admin, &artifact(100), 30)).status, 201);
    assert_eq!(verdict(&setup.request_bytes(&chunked_upload(&admin, &artifact(101), 30))), too_large);
    // Decided from Content-Length alone, before any body byte, and before the token is looked at.
    let (_, output) = setup.head_only(&head(Some(&admin), Some("application/octet-stream"), "Content-Length: 101"));
    assert_eq!(verdict(&parse_answer(&output)), too_large);
    let (_, output) = setup.head_only(&head(None, None, "Content-Length: 101"));
    assert_eq!(verdict(&parse_answer(&output)), too_large);
    let sizes: Vec<usize> = setup.kernel.uploads.iter().map(|(_, bytes, _)| bytes.len()).collect();
    assert_eq!(sizes, [100, 100]);
    // Every other route keeps the 16-byte limit, the upload's path with another method included.
    let command = |body: &str| {
        alloc::format!(
            "POST /api/command HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {admin}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(setup.request(&command(r#"{"command":"ab"}"#)).status, 200);
    assert_eq!(verdict(&setup.request(&command(r#"{"command":"abc"}"#))), too_large);
    let put = "PUT /api/models HTTP/1.1\r\nHost: sis\r\nContent-Length: 17\r\n\r\n";
    assert_eq!(verdict(&setup.request(put)), too_large);
    assert_eq!(setup.app.counters().protocol_errors.body_too_large, 6);
}

#[test]
fn the_default_limits_are_2_mib_for_an_upload_and_64_kib_for_everything_else() {
    let limits = Limits::default();
    assert_eq!((limits.max_upload_bytes, limits.max_body_bytes), (2_097_152, 65_536));
    let mut setup = setup(AppConfig::default());
    let admin = setup.admin.clone();
    let answer = setup.request_bytes(&upload(&admin, &artifact(2_097_152)));
    assert_eq!((answer.status, answer.body["bytes"].as_u64()), (201, Some(2_097_152)));
    let answer = setup.request_bytes(&chunked_upload(&admin, &artifact(2_097_152), 65_536));
    assert_eq!((answer.status, answer.body["bytes"].as_u64()), (201, Some(2_097_152)));
    let too_large = (413, Some("body-too-large"));
    let (_, output) = setup.head_only(&head(Some(&admin), Some("application/octet-stream"), "Content-Length: 2097153"));
    assert_eq!(verdict(&parse_answer(&output)), too_large);
    assert_eq!(verdict(&setup.request_bytes(&chunked_upload(&admin, &artifact(2_097_153), 65_536))), too_large);
    let command = alloc::format!(
        "POST /api/command HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {admin}\r\nContent-Length: 65537\r\n\r\n"
    );
    assert_eq!(verdict(&setup.request(&command)), too_large);
    assert_eq!(setup.kernel.uploads.len(), 2);
}

#[test]
fn a_deferred_upload_holds_its_connection_until_complete_model() {
    let mut setup = setup(AppConfig::default());
    let (admin, viewer) = (setup.admin.clone(), setup.viewer.clone());
    let mut bytes = upload(&admin, b"slow artifact");
    bytes.extend_from_slice(
        alloc::format!("GET /api/metrics HTTP/1.1\r\nHost: sis\r\nAuthorization: Bearer {viewer}\r\n\r\n").as_bytes(),
    );
    let id = setup.app.open(0).unwrap();
    assert_eq!(setup.app.receive(&mut setup.kernel, id, 0, &bytes), Ok(bytes.len()));
    assert!(setup.app.pending_output(id).is_empty());
    assert_eq!((setup.app.awaiting_models(), setup.app.awaiting_commands()), (1, 0));
    assert!(setup.app.awaits_answer(id));
    assert_eq!(setup.kernel.metrics_reads, 0, "the request behind it waits");
    let command = CommandReply { json: json!({ "ok": true }), permission_denied: false };
    assert_eq!(setup.app.complete_command(&mut setup.kernel, id, command, 0), Err(AppError::NotAwaiting));
    let reply = ModelReply::Registered(json!({ "name": "slow" }));
    setup.app.complete_model(&mut setup.kernel, id, reply.clone(), 0).unwrap();
    let output = String::from_utf8(setup.app.pending_output(id).to_vec()).unwrap();
    let answers: Vec<&str> = output.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 2, "{output}");
    assert!(answers[0].starts_with("201 Created\r\n") && answers[0].ends_with("{\"name\":\"slow\"}\n"), "{output}");
    assert!(answers[1].starts_with("200 OK\r\n"), "{output}");
    assert_eq!(setup.app.awaiting_models(), 0);
    assert_eq!(setup.app.complete_model(&mut setup.kernel, id, reply.clone(), 0), Err(AppError::NotAwaiting));
    setup.app.close(id).unwrap();
    assert_eq!(setup.app.complete_model(&mut setup.kernel, id, reply, 0), Err(AppError::UnknownConnection));
}

#[test]
fn an_upload_the_heap_cannot_hold_is_503_and_reaches_no_backend() {
    let limits = Limits { max_upload_bytes: usize::MAX, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let admin = setup.admin.clone();
    let framing = alloc::format!("Content-Length: {}", 1u64 << 62);
    let (id, output) = setup.head_only(&head(Some(&admin), Some("application/octet-stream"), &framing));
    assert_eq!(verdict(&parse_answer(&output)), (503, Some("out-of-memory")));
    assert!(setup.app.should_close(id));
    assert_eq!(setup.kernel.uploads, []);
    assert_eq!(setup.app.counters().protocol_errors.out_of_memory, 1);
}

#[test]
fn a_slow_upload_body_times_out_with_408_and_registers_nothing() {
    let limits = Limits { body_timeout_ns: 1_000, ..Limits::default() };
    let mut setup = setup(AppConfig { limits, ..AppConfig::default() });
    let admin = setup.admin.clone();
    let bytes = upload(&admin, &artifact(100));
    let id = setup.app.open(0).unwrap();
    setup.app.receive(&mut setup.kernel, id, 10, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(setup.app.next_deadline_ns(), Some(1_011));
    setup.app.poll(&mut setup.kernel, 1_010);
    assert!(setup.app.pending_output(id).is_empty());
    setup.app.poll(&mut setup.kernel, 1_011);
    assert!(setup.app.pending_output(id).starts_with(b"HTTP/1.1 408 "));
    assert_eq!(setup.kernel.uploads, []);
    assert_eq!(setup.app.counters().protocol_errors.body_timeouts, 1);
}

#[test]
fn a_connection_reads_an_upload_body_only_once_admitted() {
    let text = "POST /api/models HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    let mut admitted = connection(Limits::default());
    admitted.feed(0, text.as_bytes());
    let Some(Event::BodyAdmission(head)) = admitted.poll(0) else { panic!("no admission") };
    assert_eq!((head.path.as_str(), head.body.len()), ("/api/models", 0));
    assert_eq!(admitted.poll(0), None, "nothing more until a decision");
    assert_eq!(take_output(&mut admitted), "", "no 100 Continue before the decision");
    admitted.admit_body().unwrap();
    assert_eq!(take_output(&mut admitted), "HTTP/1.1 100 Continue\r\n\r\n");
    let Some(Event::Request(request)) = admitted.poll(0) else { panic!("no request") };
    assert_eq!(request.body, b"abc");
    assert_eq!(admitted.admit_body(), Err(RespondError::NoRequest));

    // Refused: the answer goes out, the connection closes, later bytes are dropped.
    let mut refused = connection(Limits::default());
    refused.feed(0, text.as_bytes());
    assert!(matches!(refused.poll(0), Some(Event::BodyAdmission(_))));
    refused.respond(&Response::error(401, "missing-token", "no")).unwrap();
    assert_eq!(refused.poll(0), None);
    assert_eq!(refused.feed(0, b"more"), 4);
    assert!(take_output(&mut refused).contains("Connection: close\r\n"));
    assert!(refused.should_close());

    // Undecided: the body timeout runs from the end of the head.
    let limits = Limits { body_timeout_ns: 1_000, ..Limits::default() };
    let mut undecided = connection(limits);
    undecided.feed(5, text.as_bytes());
    assert!(matches!(undecided.poll(5), Some(Event::BodyAdmission(_))));
    assert_eq!(undecided.next_deadline_ns(), Some(1_006));
    assert_eq!(undecided.state(), State::Http);
    assert_eq!(undecided.poll(1_006), Some(Event::TimedOut(Timeout::Body)));
    assert!(take_output(&mut undecided).starts_with("HTTP/1.1 408 "));
    assert_eq!(HttpError::OutOfMemory.status(), 503);
}
