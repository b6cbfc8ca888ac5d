//! Benchmark: makes `PING_CALLS` host calls that its (empty) capabilities deny, each a full round trip through the
//! kernel's decoding, capability check and audit; returns how many were answered `denied`.
#![no_std]

#[path = "../../../crates/agents/src/bench.rs"]
#[allow(dead_code)]
mod bench;

use sis_agent_sdk::{Host, Status};

sis_agent_sdk::agent_main!(main);

fn main() -> i32 {
    let mut host = Host::new();
    let mut response = [0u8; 64];
    let mut denied = 0;
    for _ in 0..bench::PING_CALLS {
        if host.fs_read(bench::PING_PATH, &mut response) == Err(Status::DENIED) {
            denied += 1;
        }
    }
    denied
}
