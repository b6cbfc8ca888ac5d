//! Host tests: exact bytes on the wire, each limit at its boundary, each close code, the router's status codes.

mod app;
mod deferred_metrics;
mod http;
mod token;
mod upload;
mod websocket;

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Connection, ConnectionId, Event, Limits, Response};

/// Feeds all of `bytes` at `now_ns`, answering every request `200 ok` (body: the request's path and body), and
/// returns the events in order.
fn drive(connection: &mut Connection, now_ns: u64, bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut offset = 0;
    loop {
        offset += connection.feed(now_ns, &bytes[offset..]);
        let mut answered = false;
        while let Some(event) = connection.poll(now_ns) {
            if let Event::Request(request) = &event {
                let mut body = request.path.clone().into_bytes();
                body.extend_from_slice(&request.body);
                connection.respond(&Response::new(200).with_body("text/plain", body)).unwrap();
                answered = true;
            }
            events.push(event);
        }
        if offset == bytes.len() || !answered {
            return events;
        }
    }
}

fn connection(limits: Limits) -> Connection {
    Connection::new(ConnectionId(1), 0, limits)
}

/// The pending output as text, drained.
fn take_output(connection: &mut Connection) -> String {
    let text = String::from_utf8_lossy(connection.pending_output()).into_owned();
    connection.consume(usize::MAX);
    text
}

/// A masked client frame.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = alloc::vec![first_byte];
    match payload.len() {
        length @ 0..=125 => frame.push(0x80 | length as u8),
        length @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
    frame
}

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: sis\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A connection upgraded to WebSocket with the RFC's example key, its 101 drained.
fn websocket(limits: Limits) -> Connection {
    let mut connection = connection(limits);
    connection.feed(0, UPGRADE.as_bytes());
    let Some(Event::Request(request)) = connection.poll(0) else { panic!("no upgrade request") };
    let accept = crate::ws::check_handshake(&request).unwrap();
    connection.accept_websocket(&accept).unwrap();
    take_output(&mut connection);
    connection
}
