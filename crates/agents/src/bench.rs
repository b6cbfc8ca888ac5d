//! The benchmark workloads of `cargo xtask bench agents` and `agentsys bench`: one source compiled natively (here)
//! and to WebAssembly (the `compute` and `pinger` agents include this file), so the interpreter is compared with
//! the same code.
//!
//! This file is included by `agents/compute` and `agents/pinger` with `#[path]`: it uses `core` only.

/// Rounds of [`checksum`] the `compute` agent runs.
pub const COMPUTE_ROUNDS: u32 = 2_000;
/// Host calls the `pinger` agent makes.
pub const PING_CALLS: u32 = 1_000;
/// The path the pinger asks to read: no capability grants it, so each call is decoded, checked, denied and
/// audited, and never reaches the host.
pub const PING_PATH: &str = "/bench/ping";

/// Words of state [`checksum`] mixes.
const WORDS: usize = 64;

/// A small integer compute kernel: `rounds` passes of rotate, multiply and xor over 64 words, folded to one word.
pub fn checksum(rounds: u32) -> u32 {
    let mut state = [0u32; WORDS];
    for (index, word) in state.iter_mut().enumerate() {
        *word = (index as u32).wrapping_mul(0x9E37_79B1) ^ 0x85EB_CA6B;
    }
    for round in 0..rounds {
        for index in 0..WORDS {
            let next = state[(index + 1) % WORDS];
            state[index] = state[index].rotate_left(5) ^ next.wrapping_mul(0x9E37_79B1).wrapping_add(round);
        }
    }
    state.iter().fold(0, |folded, word| folded.rotate_left(1) ^ word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_depends_on_every_round() {
        assert_ne!(checksum(1), checksum(2));
        assert_eq!(checksum(COMPUTE_ROUNDS), checksum(COMPUTE_ROUNDS));
        // Pinned: the agent's exit code is compared with this natively computed value.
        assert_eq!(checksum(0), {
            let mut folded = 0u32;
            for index in 0..64u32 {
                folded = folded.rotate_left(1) ^ (index.wrapping_mul(0x9E37_79B1) ^ 0x85EB_CA6B);
            }
            folded
        });
    }
}
