//! The web server's HTTP/1.1 connection (`sis_web::Connection`) on arbitrary bytes in arbitrary pieces.
//!
//! The first byte seeds the piece lengths, the second chooses small or default limits. Invariants: no panic;
//! the output queue never holds more than its bound; `feed` never claims more bytes than it was given; the
//! events are the same whether the input arrives at once or in pieces (requests, errors, WebSocket messages);
//! after every timeout has passed the connection is closing, closed or a WebSocket.
#![no_main]
#![forbid(unsafe_code)]

#[path = "common/driver.rs"]
mod driver;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [seed, selector, input @ ..] = data else { return };
    let limits = driver::limits(selector & 1 == 1);
    let mut whole = driver::connection(limits);
    let whole_events = driver::run(&mut whole, input, &[input.len()]);
    let mut split = driver::connection(limits);
    let split_events = driver::run(&mut split, input, &driver::pieces(*seed, input.len()));
    assert_eq!(whole_events, split_events, "events depend on how the input was split");
    assert_eq!(whole.state(), split.state());
    driver::expire(&mut split);
});
