//! WebSocket frames (`sis_web::Connection` after a completed upgrade) on arbitrary bytes in arbitrary pieces.
//!
//! The first byte seeds the piece lengths, the second chooses small or default limits. Invariants: no panic;
//! the output queue never holds more than its bound; the messages and the close code are the same whether
//! the frames arrive at once or in pieces; a close is always the last event, and after it the connection is
//! closing and its output ends with a close frame.
#![no_main]
#![forbid(unsafe_code)]

#[path = "common/driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;
use sis_web::{Connection, Event, Limits, State};

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: sis\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn upgraded(limits: Limits) -> Connection {
    let mut connection = driver::connection(limits);
    let events = driver::run(&mut connection, UPGRADE, &[UPGRADE.len()]);
    assert!(matches!(events.as_slice(), [Event::Request(_)]));
    assert_eq!(connection.state(), State::WebSocket);
    connection
}

fuzz_target!(|data: &[u8]| {
    let [seed, selector, input @ ..] = data else { return };
    let limits = driver::limits(selector & 1 == 1);
    let mut whole = upgraded(limits);
    let whole_events = driver::run(&mut whole, input, &[input.len()]);
    let mut split = upgraded(limits);
    let split_events = driver::run(&mut split, input, &driver::pieces(*seed, input.len()));
    assert_eq!(whole_events, split_events, "events depend on how the frames were split");
    for (index, event) in whole_events.iter().enumerate() {
        assert!(
            matches!(event, Event::WsText(_) | Event::WsBinary(_) | Event::WsClosed { .. }),
            "unexpected event {event:?}"
        );
        if let Event::WsClosed { code, by_peer } = event {
            assert_eq!(index, whole_events.len() - 1, "events after a close");
            assert!(*by_peer || matches!(code, 1002 | 1007 | 1009), "server closed with {code}");
            assert!(matches!(whole.state(), State::Closing | State::Closed));
        }
    }
    if whole_events.iter().all(|event| !matches!(event, Event::WsClosed { .. })) {
        assert_eq!(whole.state(), State::WebSocket);
    }
    driver::expire(&mut whole);
});
