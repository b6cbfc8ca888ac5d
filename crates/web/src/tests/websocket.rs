//! WebSocket: the accept key, the handshake, frames, fragmentation, control-frame rules, every close code.

use alloc::vec::Vec;

use super::{client_frame, connection, take_output, websocket, UPGRADE};
use crate::ws::{accept_key, check_handshake, close_code, encode_frame, HandshakeError, Opcode};
use crate::{Event, Limits, SendError, State};

const FIN_TEXT: u8 = 0x81;
const FIN_BINARY: u8 = 0x82;
const TEXT_START: u8 = 0x01;
const CONTINUATION: u8 = 0x00;
const FIN_CONTINUATION: u8 = 0x80;
const CLOSE: u8 = 0x88;
const PING: u8 = 0x89;
const PONG: u8 = 0x8A;

fn feed_events(connection: &mut crate::Connection, bytes: &[u8]) -> Vec<Event> {
    assert_eq!(connection.feed(0, bytes), bytes.len());
    core::iter::from_fn(|| connection.poll(0)).collect()
}

/// Feeds a frame and expects the server to close with `code`: the event, the exact close frame, the end.
fn assert_closes_with(limits: Limits, frames: &[Vec<u8>], code: u16) {
    let mut connection = websocket(limits);
    let mut events = Vec::new();
    for frame in frames {
        events.extend(feed_events(&mut connection, frame));
    }
    assert_eq!(events.last(), Some(&Event::WsClosed { code, by_peer: false }), "{events:?}");
    let [high, low] = code.to_be_bytes();
    assert!(connection.pending_output().ends_with(&[0x88, 0x02, high, low]), "{:x?}", connection.pending_output());
    assert_eq!(connection.state(), State::Closing);
    connection.consume(usize::MAX);
    assert!(connection.should_close());
}

#[test]
fn accept_key_of_the_rfc_example() {
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn upgrade_answers_101_with_the_accept_key() {
    let mut connection = connection(Limits::default());
    connection.feed(0, UPGRADE.as_bytes());
    let Some(Event::Request(request)) = connection.poll(0) else { panic!() };
    assert!(request.is_websocket_upgrade());
    connection.accept_websocket(&check_handshake(&request).unwrap()).unwrap();
    assert_eq!(
        take_output(&mut connection),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: Upgrade\r\n\r\n"
    );
    assert_eq!(connection.state(), State::WebSocket);
}

#[test]
fn bad_upgrades_are_400_or_426() {
    let check = |text: &str| {
        let mut connection = connection(Limits::default());
        connection.feed(0, text.as_bytes());
        let Some(Event::Request(request)) = connection.poll(0) else { panic!("{text}") };
        check_handshake(&request)
    };
    let version_12 = UPGRADE.replace("Version: 13", "Version: 12");
    assert_eq!(check(&version_12), Err(HandshakeError::UnsupportedVersion));
    assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
    assert_eq!(HandshakeError::UnsupportedVersion.response().header("Sec-WebSocket-Version"), Some("13"));
    let short_key = UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==");
    assert_eq!(check(&short_key), Err(HandshakeError::BadKey));
    assert_eq!(HandshakeError::BadKey.status(), 400);
    let no_upgrade = UPGRADE.replace("Upgrade: websocket\r\n", "");
    assert_eq!(check(&no_upgrade), Err(HandshakeError::NotAnUpgrade));
    assert_eq!(HandshakeError::NotAnUpgrade.status(), 426);
    let post = UPGRADE.replace("GET", "POST");
    assert_eq!(check(&post), Err(HandshakeError::WrongMethodOrVersion));
}

#[test]
fn masked_text_and_binary_messages_arrive() {
    let mut connection = websocket(Limits::default());
    let mut input = client_frame(FIN_TEXT, "héllo".as_bytes());
    input.extend(client_frame(FIN_BINARY, &[0, 1, 2]));
    input.extend(client_frame(FIN_TEXT, &[b'x'; 300]));
    let events = feed_events(&mut connection, &input);
    assert_eq!(
        events,
        [
            Event::WsText("héllo".into()),
            Event::WsBinary(alloc::vec![0, 1, 2]),
            Event::WsText(alloc::string::String::from_utf8(alloc::vec![b'x'; 300]).unwrap())
        ]
    );
    assert_eq!(connection.pending_output(), b"");
}

#[test]
fn frames_split_byte_by_byte_decode_the_same() {
    let mut connection = websocket(Limits::default());
    let frame = client_frame(FIN_TEXT, &[b'y'; 200]);
    let mut events = Vec::new();
    for byte in &frame {
        events.extend(feed_events(&mut connection, core::slice::from_ref(byte)));
    }
    assert_eq!(events, [Event::WsText(alloc::string::String::from_utf8(alloc::vec![b'y'; 200]).unwrap())]);
}

#[test]
fn unmasked_client_frame_is_1002() {
    assert_closes_with(Limits::default(), &[alloc::vec![FIN_TEXT, 0x02, b'h', b'i']], close_code::PROTOCOL_ERROR);
}

#[test]
fn fragments_reassemble_with_a_ping_between_them() {
    let mut connection = websocket(Limits::default());
    let mut input = client_frame(TEXT_START, b"Hel");
    input.extend(client_frame(PING, b"p!"));
    input.extend(client_frame(CONTINUATION, b"lo, "));
    input.extend(client_frame(FIN_CONTINUATION, b"world"));
    assert_eq!(feed_events(&mut connection, &input), [Event::WsText("Hello, world".into())]);
    assert_eq!(connection.pending_output(), [PONG, 0x02, b'p', b'!']);
}

#[test]
fn utf8_split_across_fragments_is_valid_and_invalid_text_is_1007() {
    let mut connection = websocket(Limits::default());
    let euro = "€".as_bytes();
    let mut input = client_frame(TEXT_START, &euro[..1]);
    input.extend(client_frame(FIN_CONTINUATION, &euro[1..]));
    assert_eq!(feed_events(&mut connection, &input), [Event::WsText("€".into())]);
    assert_closes_with(Limits::default(), &[client_frame(FIN_TEXT, &[0xC3, 0x28])], close_code::INVALID_PAYLOAD);
}

#[test]
fn control_frame_rules_are_1002() {
    // Ping over 125 bytes (coded with a 16-bit length) and a ping without FIN.
    assert_closes_with(Limits::default(), &[client_frame(PING, &[0; 126])], close_code::PROTOCOL_ERROR);
    assert_closes_with(Limits::default(), &[client_frame(0x09, b"x")], close_code::PROTOCOL_ERROR);
    // 125 bytes is still a valid ping, answered with the same payload.
    let mut connection = websocket(Limits::default());
    assert_eq!(feed_events(&mut connection, &client_frame(PING, &[7; 125])), []);
    assert_eq!(connection.pending_output(), encode_frame(Opcode::Pong, &[7; 125]).as_slice());
}

#[test]
fn reserved_bits_opcodes_and_bad_fragmentation_are_1002() {
    for frames in [
        alloc::vec![client_frame(0xC1, b"rsv1")],
        alloc::vec![client_frame(0x83, b"opcode 3")],
        alloc::vec![client_frame(0x8B, b"opcode B")],
        alloc::vec![client_frame(FIN_CONTINUATION, b"no message")],
        alloc::vec![client_frame(TEXT_START, b"a"), client_frame(FIN_TEXT, b"b")],
        // Length 5 coded in 16 bits is not minimal.
        alloc::vec![alloc::vec![FIN_TEXT, 0x80 | 126, 0, 5, 0, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']],
    ] {
        assert_closes_with(Limits::default(), &frames, close_code::PROTOCOL_ERROR);
    }
}

#[test]
fn message_size_limit_at_its_boundary_is_1009() {
    let limits = Limits { max_ws_message_bytes: 10, ..Limits::default() };
    let mut connection = websocket(limits);
    assert_eq!(
        feed_events(&mut connection, &client_frame(FIN_BINARY, &[1; 10])),
        [Event::WsBinary(alloc::vec![1; 10])]
    );
    assert_closes_with(limits, &[client_frame(FIN_BINARY, &[1; 11])], close_code::MESSAGE_TOO_BIG);
    // Fragments count together; refused from the header of the fragment that passes the limit.
    assert_closes_with(
        limits,
        &[client_frame(0x02, &[1; 6]), alloc::vec![CONTINUATION, 0x80 | 5]],
        close_code::MESSAGE_TOO_BIG,
    );
    // A 64-bit length is refused before any payload arrives.
    let huge = [FIN_BINARY, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_closes_with(limits, &[huge.to_vec()], close_code::MESSAGE_TOO_BIG);
}

#[test]
fn peer_close_is_echoed_and_ends_the_connection() {
    let mut connection = websocket(Limits::default());
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    let events = feed_events(&mut connection, &client_frame(CLOSE, &close));
    assert_eq!(events, [Event::WsClosed { code: 1000, by_peer: true }]);
    assert_eq!(connection.pending_output(), [CLOSE, 0x02, 0x03, 0xE8]);
    assert_eq!(connection.send_text("late"), Err(SendError::NotOpen));
    connection.consume(4);
    assert!(connection.should_close());

    let mut connection = websocket(Limits::default());
    assert_eq!(
        feed_events(&mut connection, &client_frame(CLOSE, &[])),
        [Event::WsClosed { code: 1005, by_peer: true }]
    );
    assert_eq!(connection.pending_output(), [CLOSE, 0x00]);

    let mut connection = websocket(Limits::default());
    let events = feed_events(&mut connection, &client_frame(CLOSE, &4000u16.to_be_bytes()));
    assert_eq!(events, [Event::WsClosed { code: 4000, by_peer: true }]);
}

#[test]
fn invalid_close_frames() {
    for code in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_closes_with(Limits::default(), &[client_frame(CLOSE, &code.to_be_bytes())], close_code::PROTOCOL_ERROR);
    }
    assert_closes_with(Limits::default(), &[client_frame(CLOSE, &[0x03])], close_code::PROTOCOL_ERROR);
    assert_closes_with(Limits::default(), &[client_frame(CLOSE, &[0x03, 0xE8, 0xFF])], close_code::INVALID_PAYLOAD);
}

#[test]
fn pongs_are_ignored() {
    let mut connection = websocket(Limits::default());
    assert_eq!(feed_events(&mut connection, &client_frame(PONG, b"x")), []);
    assert_eq!(connection.pending_output(), b"");
}

#[test]
fn server_frames_use_minimal_lengths_and_no_mask() {
    assert_eq!(encode_frame(Opcode::Text, b"hi"), [0x81, 0x02, b'h', b'i']);
    assert_eq!(encode_frame(Opcode::Binary, &[0; 125])[..2], [0x82, 125]);
    assert_eq!(encode_frame(Opcode::Binary, &[0; 126])[..4], [0x82, 126, 0, 126]);
    assert_eq!(encode_frame(Opcode::Binary, &[0; 65_536])[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    let mut connection = websocket(Limits::default());
    connection.send_ping(b"are you there").unwrap();
    connection.send_binary(&[9]).unwrap();
    let mut expected = encode_frame(Opcode::Ping, b"are you there");
    expected.extend_from_slice(&[0x82, 0x01, 9]);
    assert_eq!(connection.pending_output(), expected.as_slice());
}

#[test]
fn a_push_that_does_not_fit_is_refused_and_counted() {
    let limits = Limits { max_output_bytes: 150, ..Limits::default() };
    let mut connection = websocket(limits);
    let text = "t".repeat(100);
    connection.send_text(&text).unwrap();
    assert_eq!(connection.send_text(&text), Err(SendError::Full));
    assert_eq!(connection.stats().pushes_refused, 1);
    assert_eq!(connection.pending_output().len(), 102);
    // A ping that cannot be answered is counted the same way.
    feed_events(&mut connection, &client_frame(PING, &[b'p'; 60]));
    assert_eq!(connection.stats().pushes_refused, 2);
    assert_eq!(connection.pending_output().len(), 102);
    // Exactly the bound still fits.
    connection.send_text(&"u".repeat(46)).unwrap();
    assert_eq!(connection.pending_output().len(), 150);
    // The server's own close makes room for itself by dropping what waits.
    assert!(connection.close_websocket(close_code::POLICY_VIOLATION));
    assert_eq!(connection.pending_output(), [CLOSE, 0x02, 0x03, 0xF0]);
}

#[test]
fn http_connections_refuse_websocket_sends() {
    let mut connection = connection(Limits::default());
    assert_eq!(connection.send_text("x"), Err(SendError::NotOpen));
    assert!(!connection.close_websocket(1000));
}

#[test]
fn a_peer_that_stops_reading_is_closed_after_the_send_timeout() {
    let limits = Limits { send_timeout_ns: 1_000, ..Limits::default() };
    let mut connection = websocket(limits);
    connection.send_text("first").unwrap();
    assert_eq!(connection.poll(100), None);
    assert_eq!(connection.next_deadline_ns(), Some(1_101));
    assert_eq!(connection.poll(900), None);
    // Progress (at the latest time seen, 900) restarts the wait.
    connection.consume(3);
    assert_eq!(connection.poll(1_500), None);
    assert_eq!(connection.poll(1_900), None);
    assert_eq!(connection.poll(1_901), Some(Event::TimedOut(crate::Timeout::Send)));
    assert_eq!(connection.state(), State::Closed);
    assert_eq!(connection.pending_output(), b"");
    assert!(connection.should_close());
}
