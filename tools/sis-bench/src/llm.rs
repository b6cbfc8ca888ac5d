//! `bench llm`: the shipped language model's generation speed, the artifact's verification time and the policy's
//! cost per request, on the host (the guest half is in xtask, `cargo xtask bench llm`).

use std::hint::black_box;
use std::time::Instant;

use sis_governance::artifact;
use sis_governance::keys::TrustedKeys;
use sis_governance::policy::{Limits, Policy};
use sis_governance::Principal;

use crate::median;

/// The artifact the kernel embeds.
const ARTIFACT: &[u8] = include_bytes!("../../../models/shakespeare-lm.sismodel");
/// The key it is signed with (public, for tests: models/keys/README.md).
const TEST_KEY: &str = include_str!("../../../models/keys/sis-test.pub");
/// The generation the guest half runs too.
pub const PROMPT: &str = "ROMEO:";
pub const TOKENS: usize = 2000;
pub const TEMPERATURE: f32 = 0.8;
pub const SEED: u64 = 1;
/// Policy requests per measurement.
const REQUESTS: u64 = 1_000_000;

/// Runs each measurement `repetitions` times and prints the medians.
pub fn run(repetitions: u32) {
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY).expect("the test key");
    let verified = artifact::decode(ARTIFACT, &keys).expect("the shipped artifact verifies");
    let model = sis_lm::Model::from_bytes(verified.weights).expect("the shipped weights");
    println!(
        "host: shakespeare-lm, {TOKENS} tokens after {PROMPT:?} at temperature {TEMPERATURE}, seed {SEED}; {repetitions} repetitions"
    );
    let (mut tokens_per_second, mut verify_us, mut policy_ns) = (Vec::new(), Vec::new(), Vec::new());
    for repetition in 1..=repetitions {
        let started = Instant::now();
        let text = sis_lm::generate(&model, PROMPT.as_bytes(), TOKENS, TEMPERATURE, SEED).expect("generation");
        let generation = started.elapsed().as_secs_f64();
        black_box(&text);

        let started = Instant::now();
        black_box(artifact::decode(black_box(ARTIFACT), &keys).expect("verifies"));
        let verify = started.elapsed().as_secs_f64() * 1e6;

        let limits = Limits {
            budget_tokens: u64::MAX / 2,
            rate_per_second: u64::MAX / 4,
            burst: u64::MAX / 4,
            ..Limits::DEFAULT
        };
        let mut policy = Policy::new(limits).expect("limits");
        let started = Instant::now();
        for request in 0..REQUESTS {
            let grant = policy.request(Principal::Console, 64, request).expect("granted");
            policy.complete(grant.id, 64, request).expect("completed");
        }
        let per_request = started.elapsed().as_secs_f64() * 1e9 / REQUESTS as f64;

        println!(
            "  run {repetition}: {:.0} tokens/s; artifact verification {verify:.0} µs; policy request + complete {per_request:.0} ns",
            TOKENS as f64 / generation
        );
        tokens_per_second.push(TOKENS as f64 / generation);
        verify_us.push(verify);
        policy_ns.push(per_request);
    }
    println!(
        "  median: {:.0} tokens/s; verifying the 200,262-byte artifact (SHA-256 + Ed25519) {:.0} µs; policy check per request {:.0} ns",
        median(&mut tokens_per_second),
        median(&mut verify_us),
        median(&mut policy_ns)
    );
}
