//! Shared driver of the web fuzz targets: feeds bytes to a `sis_web::Connection` in given pieces, answers
//! what comes out the same way every time, and checks the output bound after every step.

use sis_web::{ws, Connection, ConnectionId, Event, Limits, Response, State};

/// Small limits, so fuzzed inputs reach every boundary, or the defaults.
pub fn limits(small: bool) -> Limits {
    if small {
        Limits {
            max_head_bytes: 256,
            max_headers: 8,
            max_body_bytes: 128,
            max_upload_bytes: 256,
            max_output_bytes: 600,
            max_ws_message_bytes: 128,
            ..Limits::default()
        }
    } else {
        Limits::default()
    }
}

/// A new connection.
pub fn connection(limits: Limits) -> Connection {
    Connection::new(ConnectionId(1), 0, limits)
}

/// Piece lengths from a seed: 1..=max_piece bytes each, from a small LCG.
pub fn pieces(seed: u8, length: usize) -> Vec<usize> {
    let max_piece = usize::from(seed % 64) + 1;
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut out = Vec::new();
    let mut total = 0;
    while total < length {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let piece = ((state >> 16) as usize % max_piece + 1).min(length - total);
        out.push(piece);
        total += piece;
    }
    out
}

fn check_bound(connection: &Connection) {
    let bound = connection.limits().max_output_bytes;
    assert!(
        connection.pending_output().len() <= bound,
        "output {} over its bound {bound}",
        connection.pending_output().len()
    );
}

/// Answers one event; the output is drained after each, so what fits never depends on how input was split.
fn answer(connection: &mut Connection, event: &Event) {
    match event {
        Event::Request(request) => {
            if request.is_websocket_upgrade() {
                match ws::check_handshake(request) {
                    Ok(accept) => {
                        let _ = connection.accept_websocket(&accept);
                    }
                    Err(error) => {
                        let _ = connection.respond(&error.response());
                    }
                }
            } else {
                // A body that sometimes passes the output bound, so overflow closes are exercised.
                let size = request.body.len().saturating_mul(8) + request.path.len();
                let response = Response::new(200).with_body("text/plain", vec![b'r'; size]);
                let _ = connection.respond(&response);
            }
        }
        Event::BodyAdmission(head) => {
            // Uploads are admitted or refused by their number of header fields, so both ways are exercised the same
            // whether the input arrives at once or in pieces.
            if head.headers.len() % 2 == 0 {
                let _ = connection.admit_body();
            } else {
                let _ = connection.respond(&Response::new(401));
            }
        }
        Event::WsText(text) => {
            let _ = connection.send_text(text);
        }
        Event::WsBinary(bytes) => {
            let _ = connection.send_binary(bytes);
        }
        _ => {}
    }
    check_bound(connection);
    connection.consume(usize::MAX);
}

/// Feeds `input` in pieces of the given lengths at time 0; returns every event in order.
pub fn run(connection: &mut Connection, input: &[u8], pieces: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let end = offset + piece;
        while offset < end {
            let taken = connection.feed(0, &input[offset..end]);
            assert!(taken <= end - offset);
            offset += taken;
            check_bound(connection);
            let mut progressed = taken > 0;
            while let Some(event) = connection.poll(0) {
                answer(connection, &event);
                events.push(event);
                progressed = true;
            }
            connection.consume(usize::MAX);
            while let Some(event) = connection.poll(0) {
                answer(connection, &event);
                events.push(event);
                progressed = true;
            }
            if !progressed {
                // Nothing taken and nothing to answer: only possible once the connection stopped reading.
                assert!(
                    matches!(connection.state(), State::Closing | State::Closed),
                    "stalled in {:?}",
                    connection.state()
                );
                return events;
            }
        }
    }
    events
}

/// After the input: time passes past every timeout; the connection must then be closing or a WebSocket.
pub fn expire(connection: &mut Connection) {
    let limits = *connection.limits();
    let later = limits.head_timeout_ns.max(limits.body_timeout_ns).max(limits.idle_timeout_ns) + 1;
    while let Some(event) = connection.poll(later) {
        answer(connection, &event);
    }
    check_bound(connection);
    let state = connection.state();
    assert!(matches!(state, State::Closing | State::Closed | State::WebSocket), "still {state:?} after every timeout");
}
