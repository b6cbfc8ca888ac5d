//! Hostile: sends malformed messages (wrong version, unknown call, a header cut short, a length past the end,
//! trailing bytes, a path that is not UTF-8). The kernel answers each with its error code and stops the agent
//! after too many. Exit code 99 would mean one was served.
#![no_std]

use sis_agent_sdk::{call, encode, raw_call, HEADER_LEN};

sis_agent_sdk::agent_main!(main);

/// Writes one malformed message into the buffer and returns its length.
type Builder = dyn Fn(&mut [u8]) -> usize;

fn main() -> i32 {
    let mut response = [0u8; 64];
    let mut message = [0u8; 64];
    let messages: [&Builder; 6] = [
        // Version 2.
        &|out| {
            let length = encode(call::LOG, 1, &[&[2], b"hi"], out).unwrap_or(0);
            out[0] = 2;
            length
        },
        // Call 42.
        &|out| encode(42, 2, &[b"x"], out).unwrap_or(0),
        // Five bytes of a header.
        &|out| {
            out[..5].copy_from_slice(&[1, 0, 6, 0, 3]);
            5
        },
        // Declares 100 payload bytes, sends 2.
        &|out| {
            let length = encode(call::FS_READ, 4, &[b"/t"], out).unwrap_or(0);
            out[8] = 100;
            length
        },
        // A SLEEP payload of 5 bytes instead of 4.
        &|out| encode(call::SLEEP, 5, &[&[1, 0, 0, 0, 0]], out).unwrap_or(0),
        // A path that is not UTF-8.
        &|out| encode(call::FS_READ, 6, &[&[b'/', 0xff, 0xfe]], out).unwrap_or(0),
    ];
    for build in messages {
        let length = build(&mut message);
        let written = raw_call(&message[..length], &mut response);
        if written >= HEADER_LEN as i32 && response[2] == 0 && response[3] == 0 {
            return 99;
        }
    }
    0
}
