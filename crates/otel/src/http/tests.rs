use super::*;

fn endpoint() -> Endpoint {
    Endpoint::parse("http://10.0.2.2:4318/v1/traces").unwrap()
}

#[test]
fn the_request_goes_out_in_pieces_and_a_2xx_answer_ends_the_attempt() {
    let mut exchange = Exchange::new(&endpoint(), "{\"resourceSpans\":[]}", 1_000, 500);
    let expected = "POST /v1/traces HTTP/1.1\r\nHost: 10.0.2.2:4318\r\nUser-Agent: sis-kernel\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"resourceSpans\":[]}";
    assert_eq!(exchange.unsent(), expected.as_bytes());
    assert_eq!(exchange.request_bytes(), expected.len());
    assert_eq!(exchange.step(1_100, Link::Connecting, b""), None);
    exchange.sent(10);
    assert_eq!(exchange.unsent(), &expected.as_bytes()[10..]);
    exchange.sent(usize::MAX);
    assert_eq!(exchange.unsent(), b"");
    assert_eq!(exchange.step(1_200, Link::Open, b"HTTP/1.1 200 OK\r\nContent-Le"), None);
    assert_eq!(exchange.step(1_300, Link::Open, b"ngth: 2\r\n\r\n{}"), Some(Ok(200)));
}

#[test]
fn every_way_an_attempt_fails_has_its_reason() {
    let at = |link: Link, received: &[u8], now: u64| Exchange::new(&endpoint(), "{}", 0, 100).step(now, link, received);
    assert_eq!(at(Link::Closed { established: false }, b"", 1), Some(Err(ExportError::Refused)));
    assert_eq!(at(Link::Connecting, b"", 99), None);
    assert_eq!(at(Link::Connecting, b"", 100), Some(Err(ExportError::Timeout { connected: false })));
    assert_eq!(at(Link::Open, b"HTTP/1.1 200", 100), Some(Err(ExportError::Timeout { connected: true })));
    assert_eq!(
        at(Link::Open, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 1),
        Some(Err(ExportError::Status(503)))
    );
    assert_eq!(
        at(Link::PeerClosed, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", 1),
        Some(Err(ExportError::Reset))
    );
    assert_eq!(at(Link::Closed { established: true }, b"", 1), Some(Err(ExportError::Reset)));
    // A response framed by the close is complete when the close comes.
    assert_eq!(at(Link::PeerClosed, b"HTTP/1.0 202 Accepted\r\n\r\n{}", 1), Some(Ok(202)));
    assert_eq!(
        at(Link::Open, b"220 smtp ready\r\n\r\n", 1),
        Some(Err(ExportError::BadResponse(ResponseError::Malformed)))
    );
    let errors = [
        ExportError::Refused,
        ExportError::Timeout { connected: false },
        ExportError::Reset,
        ExportError::Status(400),
        ExportError::BadResponse(ResponseError::BodyTooLarge),
        ExportError::Local(String::from("no-device")),
    ];
    let codes: Vec<&str> = errors.iter().map(ExportError::code).collect();
    assert_eq!(codes, ["refused", "timeout", "reset", "http-status", "response-too-large", "no-device"]);
}

#[test]
fn attempts_are_counted_by_outcome() {
    let mut counters = AttemptCounters::default();
    counters.record(100, &Ok(200));
    counters.record(50, &Err(ExportError::Status(503)));
    counters.record(50, &Err(ExportError::Refused));
    counters.record(50, &Err(ExportError::Timeout { connected: true }));
    counters.record(10, &Err(ExportError::Local(String::from("no-device"))));
    assert_eq!(
        counters,
        AttemptCounters {
            attempts: 5,
            succeeded: 1,
            refused: 1,
            timeouts: 1,
            resets: 0,
            http_errors: 1,
            bad_responses: 0,
            local_errors: 1,
            request_bytes: 260,
            last_status: Some(503),
            last_error: Some(String::from("no-device")),
        }
    );
}
