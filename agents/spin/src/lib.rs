//! Hostile: an infinite loop that makes no host call. The sandbox preempts it every slice and stops it when its
//! total fuel is spent.
#![no_std]

use sis_agent_sdk::agent_main;

agent_main!(main);

fn main() -> i32 {
    let mut counter = 0u64;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}
