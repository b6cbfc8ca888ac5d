//! HTTP/1.1 requests: parsing, pipelining, bodies, limits at their boundaries, keep-alive, timeouts.

use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{connection, drive, take_output};
use crate::{Event, HttpError, Limits, Method, RespondError, Response, State, Timeout, Version};

fn requests(events: &[Event]) -> Vec<&crate::Request> {
    events.iter().filter_map(|event| if let Event::Request(request) = event { Some(request) } else { None }).collect()
}

#[test]
fn parses_method_path_query_headers_and_answers_with_exact_bytes() {
    let mut connection = connection(Limits::default());
    let events =
        drive(&mut connection, 5, b"GET /api/metrics?a=1&token=x%2By HTTP/1.1\r\nHost: sis\r\nX-Test:  v \r\n\r\n");
    let [Event::Request(request)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.path, "/api/metrics");
    assert_eq!(request.query.as_deref(), Some("a=1&token=x%2By"));
    assert_eq!(request.query_param("token").as_deref(), Some("x+y"));
    assert_eq!(request.query_param("b"), None);
    assert_eq!(request.version, Version::Http11);
    assert_eq!(
        request.headers,
        [(String::from("Host"), String::from("sis")), (String::from("X-Test"), String::from("v"))]
    );
    assert!(request.keep_alive);
    assert!(request.body.is_empty());
    assert_eq!(
        take_output(&mut connection),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n/api/metrics"
    );
    assert_eq!(connection.state(), State::Http);
    assert!(!connection.should_close());
}

#[test]
fn pipelined_requests_in_one_read_are_answered_in_order() {
    let mut connection = connection(Limits::default());
    let input = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n";
    let events = drive(&mut connection, 0, input);
    let paths: Vec<(&str, &[u8])> =
        requests(&events).iter().map(|request| (request.path.as_str(), request.body.as_slice())).collect();
    assert_eq!(paths, [("/a", &b""[..]), ("/b", &b"xyz"[..]), ("/c", &b""[..])]);
    let output = take_output(&mut connection);
    let bodies: Vec<&str> =
        output.split("\r\n\r\n").skip(1).map(|part| &part[..part.find("HTTP/").unwrap_or(part.len())]).collect();
    assert_eq!(bodies, ["/a", "/bxyz", "/c"]);
    assert_eq!(output.matches("Connection: keep-alive").count(), 2);
    assert!(output.ends_with("Connection: close\r\n\r\n/c"), "{output}");
    assert!(connection.should_close());
}

#[test]
fn content_length_and_chunked_bodies() {
    let mut connection = connection(Limits::default());
    let chunked = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: t\r\n\r\n";
    let events = drive(&mut connection, 0, chunked);
    assert_eq!(requests(&events)[0].body, b"Wikipedia in\r\n\r\nchunks.");
    let events = drive(&mut connection, 0, b"PUT /l HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(requests(&events)[0].body, b"hello");
    assert_eq!(requests(&events)[0].method, Method::Put);
}

#[test]
fn bad_chunked_framing_is_400() {
    for body in ["zz\r\n", "3\r\nabcX\r\n", "3\r\nabc\r\n0\r\n\r"] {
        let mut connection = connection(Limits::default());
        let request = alloc::format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{body}X");
        let events = drive(&mut connection, 0, request.as_bytes());
        let expected: &[Event] = if body.ends_with('\r') { &[] } else { &[Event::HttpError(HttpError::Malformed)] };
        if expected.is_empty() {
            // "\r" then "X" is not the end of the trailers: the body is still pending, nothing is refused yet.
            assert_eq!(events, []);
        } else {
            assert_eq!(events, expected, "{body:?}");
            assert!(take_output(&mut connection).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        }
    }
}

/// A request whose head is exactly `head_bytes` long.
fn head_of_length(head_bytes: usize) -> String {
    let base = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n".len();
    let pad = "p".repeat(head_bytes - base);
    alloc::format!("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: {pad}\r\n\r\n")
}

fn first_error(limits: Limits, input: &[u8]) -> Option<HttpError> {
    let mut connection = connection(limits);
    drive(&mut connection, 0, input).into_iter().find_map(|event| match event {
        Event::HttpError(error) => Some(error),
        _ => None,
    })
}

#[test]
fn head_size_limit_at_its_boundary() {
    let limits = Limits { max_head_bytes: 200, ..Limits::default() };
    assert_eq!(head_of_length(200).len(), 200);
    assert_eq!(first_error(limits, head_of_length(200).as_bytes()), None);
    assert_eq!(first_error(limits, head_of_length(201).as_bytes()), Some(HttpError::HeadTooLarge));
    // An unfinished head is refused as soon as it passes the limit.
    let long = head_of_length(300);
    assert_eq!(first_error(limits, &long.as_bytes()[..201]), Some(HttpError::HeadTooLarge));
    let mut connection = connection(limits);
    drive(&mut connection, 0, head_of_length(201).as_bytes());
    assert!(take_output(&mut connection).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert!(connection.should_close());
}

#[test]
fn header_count_limit_at_its_boundary() {
    let limits = Limits { max_headers: 4, ..Limits::default() };
    let with = |count: usize| {
        let mut text = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for index in 1..count {
            text.push_str(&alloc::format!("X-{index}: v\r\n"));
        }
        text.push_str("\r\n");
        text
    };
    assert_eq!(first_error(limits, with(4).as_bytes()), None);
    assert_eq!(first_error(limits, with(5).as_bytes()), Some(HttpError::TooManyHeaders));
}

/// Regression (found by the `http_request` fuzz target): a head too long that also has too many headers past
/// the limit gave 431 `too-many-headers` read at once but `head-too-large` read in pieces.
#[test]
fn the_verdict_on_a_long_head_does_not_depend_on_the_pieces() {
    let limits = Limits { max_head_bytes: 64, max_headers: 3, ..Limits::default() };
    let head =
        alloc::format!("GET / HTTP/1.1\r\nHost: h\r\nX-Long: {}\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", "l".repeat(40));
    assert_eq!(first_error(limits, head.as_bytes()), Some(HttpError::HeadTooLarge));
    let mut connection = connection(limits);
    let mut events = alloc::vec::Vec::new();
    for byte in head.as_bytes() {
        events.extend(drive(&mut connection, 0, core::slice::from_ref(byte)));
    }
    assert_eq!(events, [Event::HttpError(HttpError::HeadTooLarge)]);
}

#[test]
fn body_limit_at_its_boundary_for_both_framings() {
    let limits = Limits { max_body_bytes: 10, ..Limits::default() };
    let length =
        |n: usize| alloc::format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n{}", "b".repeat(n));
    assert_eq!(first_error(limits, length(10).as_bytes()), None);
    assert_eq!(first_error(limits, length(11).as_bytes()), Some(HttpError::BodyTooLarge));
    // Refused from the header alone, before any body byte.
    assert_eq!(
        first_error(limits, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"),
        Some(HttpError::BodyTooLarge)
    );
    let chunked = |n: usize| {
        alloc::format!(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nbbbbbb\r\n{n:x}\r\n{}\r\n0\r\n\r\n",
            "c".repeat(n)
        )
    };
    assert_eq!(first_error(limits, chunked(4).as_bytes()), None);
    assert_eq!(first_error(limits, chunked(5).as_bytes()), Some(HttpError::BodyTooLarge));
    let mut connection = connection(limits);
    drive(&mut connection, 0, length(11).as_bytes());
    assert!(take_output(&mut connection).starts_with("HTTP/1.1 413 Content Too Large\r\n"));
}

#[test]
fn each_refusal_has_its_status() {
    let cases: [(&[u8], HttpError, &str); 9] = [
        (b"GET / HTTP/1.1\r\nHost h\r\n\r\n", HttpError::Malformed, "400 Bad Request"),
        (b"GET / HTTP/1.1\r\n\r\n", HttpError::Malformed, "400 Bad Request"),
        (b"GET nopath HTTP/1.1\r\nHost: h\r\n\r\n", HttpError::Malformed, "400 Bad Request"),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            HttpError::Malformed,
            "400 Bad Request",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::Malformed,
            "400 Bad Request",
        ),
        (b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", HttpError::UnsupportedMethod, "501 Not Implemented"),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            HttpError::UnsupportedTransferEncoding,
            "501 Not Implemented",
        ),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", HttpError::UnsupportedVersion, "505 HTTP Version Not Supported"),
        (b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n", HttpError::Malformed, "400 Bad Request"),
    ];
    for (input, error, status_line) in cases {
        let mut connection = connection(Limits::default());
        let events = drive(&mut connection, 0, input);
        assert_eq!(events, [Event::HttpError(error)], "{}", String::from_utf8_lossy(input));
        let output = take_output(&mut connection);
        assert!(output.starts_with(&alloc::format!("HTTP/1.1 {status_line}\r\n")), "{output}");
        assert!(output.contains("Connection: close\r\n"));
        assert!(output.contains(&alloc::format!("\"code\":\"{}\"", error.code())));
        assert!(connection.should_close());
        // Later bytes are taken and dropped.
        assert_eq!(connection.feed(0, b"GET / HTTP/1.1\r\n\r\n"), 18);
        assert_eq!(connection.poll(0), None);
    }
}

#[test]
fn keep_alive_by_version_and_connection_header() {
    let cases: [(&[u8], bool); 4] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
    ];
    for (input, keep_alive) in cases {
        let mut connection = connection(Limits::default());
        drive(&mut connection, 0, input);
        let output = take_output(&mut connection);
        let expected = if keep_alive { "Connection: keep-alive\r\n" } else { "Connection: close\r\n" };
        assert!(output.contains(expected), "{output}");
        assert_eq!(connection.should_close(), !keep_alive);
        assert_eq!(connection.state(), if keep_alive { State::Http } else { State::Closing });
    }
    // A closing response ends a keep-alive connection too.
    let mut connection = connection(Limits::default());
    connection.feed(0, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(connection.poll(0), Some(Event::Request(_))));
    connection.respond(&Response::new(204).closing()).unwrap();
    assert_eq!(take_output(&mut connection), "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    assert!(connection.should_close());
    assert_eq!(connection.respond(&Response::new(200)), Err(RespondError::NoRequest));
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut connection = connection(Limits::default());
    connection.feed(0, b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(connection.poll(0), None);
    assert_eq!(take_output(&mut connection), "HTTP/1.1 100 Continue\r\n\r\n");
    connection.feed(0, b"ok");
    assert!(matches!(connection.poll(0), Some(Event::Request(request)) if request.body == b"ok"));
}

#[test]
fn slowloris_head_times_out_at_its_boundary_with_408() {
    let limits = Limits { head_timeout_ns: 1_000, ..Limits::default() };
    let mut connection = connection(limits);
    connection.feed(500, b"GET / HTTP/1.1\r\nHost:");
    connection.feed(1_400, b" h\r\n");
    assert_eq!(connection.next_deadline_ns(), Some(1_501));
    assert_eq!(connection.poll(1_500), None);
    assert_eq!(connection.poll(1_501), Some(Event::TimedOut(Timeout::Head)));
    let output = take_output(&mut connection);
    assert!(output.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{output}");
    assert!(output.contains("Connection: close\r\n"));
    assert!(connection.should_close());
}

#[test]
fn slow_body_times_out_with_408() {
    let limits = Limits { body_timeout_ns: 1_000, ..Limits::default() };
    let mut connection = connection(limits);
    connection.feed(100, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab");
    assert_eq!(connection.poll(1_100), None);
    assert_eq!(connection.poll(1_101), Some(Event::TimedOut(Timeout::Body)));
    assert!(take_output(&mut connection).starts_with("HTTP/1.1 408 "));
}

#[test]
fn idle_keep_alive_connection_closes_without_a_response() {
    let limits = Limits { idle_timeout_ns: 1_000, ..Limits::default() };
    let mut connection = connection(limits);
    drive(&mut connection, 200, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    take_output(&mut connection);
    assert_eq!(connection.poll(1_200), None);
    assert_eq!(connection.poll(1_201), Some(Event::TimedOut(Timeout::Idle)));
    assert_eq!(connection.pending_output(), b"");
    assert!(connection.should_close());
}

#[test]
fn a_response_over_the_output_bound_closes_the_connection() {
    let limits = Limits { max_output_bytes: 100, ..Limits::default() };
    let mut connection = connection(limits);
    connection.feed(0, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(connection.poll(0), Some(Event::Request(_))));
    let response = Response::new(200).with_body("text/plain", alloc::vec![b'x'; 100]);
    assert_eq!(connection.respond(&response), Err(RespondError::OutputOverflow));
    assert_eq!(connection.state(), State::Closed);
    assert!(connection.should_close());
    assert_eq!(connection.pending_output(), b"");
    assert_eq!(connection.stats().output_overflows, 1);
}

#[test]
fn pipelining_pauses_while_half_the_output_bound_is_queued() {
    let limits = Limits { max_output_bytes: 200, ..Limits::default() };
    let mut connection = connection(limits);
    let input = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    connection.feed(0, input);
    assert!(matches!(connection.poll(0), Some(Event::Request(request)) if request.path == "/1"));
    connection.respond(&Response::new(200).with_body("text/plain", alloc::vec![b'x'; 60])).unwrap();
    assert!(connection.pending_output().len() >= 100);
    assert_eq!(connection.poll(0), None);
    connection.consume(usize::MAX);
    assert!(matches!(connection.poll(0), Some(Event::Request(request)) if request.path == "/2"));
}

#[test]
fn input_is_held_back_while_a_request_waits_for_its_answer() {
    let limits = Limits { max_head_bytes: 64, max_ws_message_bytes: 16, ..Limits::default() };
    let capacity = limits.input_capacity();
    assert_eq!(capacity, 64 + 1024 + 1);
    let mut connection = connection(limits);
    let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    input.resize(input.len() + 5_000, b'\r');
    let taken = connection.feed(0, &input);
    assert_eq!(taken, 27 + capacity);
    assert_eq!(connection.stats().bytes_in, taken as u64);
}

fn events_of(chunks: &[&[u8]]) -> (Vec<Event>, String) {
    let mut connection = connection(Limits { max_head_bytes: 256, max_body_bytes: 64, ..Limits::default() });
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(drive(&mut connection, 0, chunk));
    }
    (events, take_output(&mut connection))
}

const PIPELINE: &[u8] = b"GET /a?q=1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\nPUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nwxyzGET /d HTTP/1.0\r\n\r\n";

#[test]
fn byte_by_byte_gives_the_same_events_as_one_read() {
    let (whole, whole_output) = events_of(&[PIPELINE]);
    assert_eq!(
        requests(&whole).iter().map(|request| request.path.as_str()).collect::<Vec<_>>(),
        ["/a", "/b", "/c", "/d"]
    );
    assert_eq!(requests(&whole)[1].body, b"abcde");
    let bytes: Vec<&[u8]> = PIPELINE.chunks(1).collect();
    assert_eq!(events_of(&bytes), (whole, whole_output));
}

proptest! {
    #[test]
    fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0..PIPELINE.len(), 0..12)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&PIPELINE[start..cut]);
            start = cut;
        }
        chunks.push(&PIPELINE[start..]);
        prop_assert_eq!(events_of(&chunks), events_of(&[PIPELINE]));
    }

    #[test]
    fn arbitrary_bytes_never_overflow_the_output(input in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
        let limits = Limits { max_output_bytes: 300, max_head_bytes: 128, ..Limits::default() };
        let mut connection = connection(limits);
        let split = split.min(input.len());
        drive(&mut connection, 0, &input[..split]);
        drive(&mut connection, 0, &input[split..]);
        prop_assert!(connection.pending_output().len() <= 300);
    }
}
