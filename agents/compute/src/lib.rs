//! Benchmark: runs the compute kernel of `crates/agents/src/bench.rs` (the same source the kernel and the host run
//! natively) and returns its checksum as the exit code. No capability needed.
#![no_std]

#[path = "../../../crates/agents/src/bench.rs"]
#[allow(dead_code)]
mod bench;

sis_agent_sdk::agent_main!(main);

fn main() -> i32 {
    bench::checksum(core::hint::black_box(bench::COMPUTE_ROUNDS)) as i32
}
