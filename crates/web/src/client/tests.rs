use alloc::vec::Vec;

use super::*;

/// Feeds `bytes` in pieces of `piece` bytes; the first complete response.
fn read_in_pieces(bytes: &[u8], piece: usize, limit: usize) -> Result<Option<ClientResponse>, ResponseError> {
    let mut reader = ResponseReader::new(limit);
    for chunk in bytes.chunks(piece) {
        if let Some(response) = reader.feed(chunk)? {
            return Ok(Some(response));
        }
    }
    Ok(None)
}

#[test]
fn a_post_carries_host_type_length_and_close_and_refuses_line_breaks() {
    let request = post_request("10.0.2.2:4318", "/v1/traces", "application/json", b"{}").unwrap();
    assert_eq!(
        core::str::from_utf8(&request).unwrap(),
        "POST /v1/traces HTTP/1.1\r\nHost: 10.0.2.2:4318\r\nUser-Agent: sis-kernel\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    );
    assert_eq!(post_request("10.0.2.2\r\nX: y", "/v1/traces", "application/json", b""), None);
    assert_eq!(post_request("h", "/v1/traces\n", "application/json", b""), None);
    assert_eq!(post_request("h", "v1/traces", "application/json", b""), None);
    assert_eq!(post_request("h", "/", "a\0b", b""), None);
    // The server's own request parser reads the request back exactly.
    let mut connection = crate::Connection::new(crate::ConnectionId(1), 0, Limits::default());
    connection.feed(0, &request);
    match connection.poll(0) {
        Some(crate::Event::Request(parsed)) => {
            assert_eq!(parsed.path, "/v1/traces");
            assert_eq!(parsed.header("content-type"), Some("application/json"));
            assert_eq!(parsed.body, b"{}");
            assert!(!parsed.keep_alive);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_response_with_a_length_is_read_whole_in_any_pieces() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing";
    for piece in 1..bytes.len() {
        let response = read_in_pieces(bytes, piece, 64).unwrap().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(response.body, b"{}");
    }
}

#[test]
fn a_chunked_response_and_one_read_until_close_and_bodiless_statuses() {
    let chunked =
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n3\r\n!!!\r\n0\r\n\r\n";
    let response = read_in_pieces(chunked, 3, 64).unwrap().unwrap();
    assert_eq!((response.status, response.body.as_slice()), (503, &b"busy!!!"[..]));

    let mut reader = ResponseReader::new(64);
    assert_eq!(reader.feed(b"HTTP/1.0 400 Bad Request\r\n\r\n{\"code\":3}"), Ok(None));
    assert_eq!(reader.peer_closed().unwrap().body, b"{\"code\":3}");

    let no_content = read_in_pieces(b"HTTP/1.1 204 No Content\r\n\r\n", 100, 64).unwrap().unwrap();
    assert_eq!((no_content.status, no_content.body), (204, Vec::new()));
    let after_continue =
        read_in_pieces(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 7, 64);
    assert_eq!(after_continue.unwrap().unwrap().status, 200);
}

#[test]
fn broken_responses_are_refused_with_their_reason() {
    let cases: &[(&[u8], ResponseError)] = &[
        (b"HTTP/1.1 OK\r\n\r\n", ResponseError::Malformed),
        (b"SMTP 220 hello\r\n\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ResponseError::Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", ResponseError::BodyTooLarge),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", ResponseError::BodyTooLarge),
    ];
    for (bytes, error) in cases {
        assert_eq!(read_in_pieces(bytes, bytes.len(), 64), Err(*error), "{}", String::from_utf8_lossy(bytes));
    }
    let mut long_head = Vec::from(&b"HTTP/1.1 200 OK\r\nX: "[..]);
    long_head.resize(9000, b'a');
    assert_eq!(read_in_pieces(&long_head, 100, 64), Err(ResponseError::HeadTooLarge));
    let mut until_close = ResponseReader::new(4);
    assert_eq!(until_close.feed(b"HTTP/1.1 200 OK\r\n\r\nfive!"), Err(ResponseError::BodyTooLarge));
    // Closed early: inside the head, or before the length was reached.
    let mut cut = ResponseReader::new(64);
    assert_eq!(cut.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), Ok(None));
    assert_eq!(cut.peer_closed(), Err(ResponseError::Incomplete));
    assert_eq!(ResponseReader::new(64).peer_closed(), Err(ResponseError::Incomplete));
}
