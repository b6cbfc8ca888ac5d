//! Hostile: grows linear memory one page at a time until the sandbox's memory limit stops it.
#![no_std]

use sis_agent_sdk::agent_main;

agent_main!(main);

fn main() -> i32 {
    loop {
        if core::arch::wasm32::memory_grow(0, 1) == usize::MAX {
            // Reached only if growth failed softly instead of stopping the agent.
            return 1;
        }
    }
}
