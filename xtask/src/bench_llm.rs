//! The guest half of `cargo xtask bench llm`: the image's signed model registered, loaded and generating in SIS
//! under QEMU (wall clock), against the same generation on the host in this process.

use std::time::Instant;

use serde_json::Value;
use sis_governance::artifact;
use sis_governance::keys::TrustedKeys;
use sis_testing::QemuConfig;

const ARTIFACT: &[u8] = include_bytes!("../../models/shakespeare-lm.sismodel");
const TEST_KEY: &str = include_str!("../../models/keys/sis-test.pub");
const PROMPT: &str = "ROMEO:";
const TOKENS: usize = 2000;
const TEMPERATURE: f32 = 0.8;
const SEED: u64 = 1;
/// One-token requests after the long generation, whose grants are timed: the first runs cold (QEMU translating the
/// code for the first time), so the median of these is the figure.
const GRANTS: usize = 9;

/// One boot's figures.
struct Figures {
    guest_tokens_per_second: f64,
    register_us: f64,
    grant_us: f64,
    host_tokens_per_second: f64,
}

/// Boots `runs` times and prints each run and the medians.
pub fn run(runs: u32) -> Result<(), String> {
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY).map_err(|error| error.to_string())?;
    let verified = artifact::decode(ARTIFACT, &keys).map_err(|error| error.to_string())?;
    let model = sis_lm::Model::from_bytes(verified.weights).map_err(|error| error.to_string())?;
    let commands = format!(
        "llmctl register builtin --json; llmctl load shakespeare-lm --json; \
         llmctl infer shakespeare-lm \"{PROMPT}\" --max-tokens {TOKENS} --temperature {TEMPERATURE} --seed {SEED} --json{}",
        "; llmctl infer shakespeare-lm \"a\" --max-tokens 1 --temperature 0 --json".repeat(GRANTS)
    );
    println!("\nin QEMU (wall clock, one boot per run): {TOKENS} tokens after {PROMPT:?}, temperature {TEMPERATURE}, seed {SEED}");
    let mut figures = Vec::new();
    for run in 1..=runs {
        let result = sis_testing::run_batch(&QemuConfig::new().batch(&commands)).map_err(|error| error.to_string())?;
        let replies = result.json_lines()?;
        let [registered, _, inferred, grants @ ..] = replies.as_slice() else {
            return Err(format!(
                "run {run}: {} JSON replies expected, got {}: {}",
                3 + GRANTS,
                replies.len(),
                result.output
            ));
        };
        if grants.len() != GRANTS {
            return Err(format!("run {run}: {} JSON replies expected, got {}", 3 + GRANTS, replies.len()));
        }
        let number =
            |reply: &Value, key: &str| reply[key].as_f64().ok_or_else(|| format!("run {run}: no {key} in {reply}"));
        let started = Instant::now();
        let expected =
            sis_lm::generate(&model, PROMPT.as_bytes(), TOKENS, TEMPERATURE, SEED).map_err(|e| e.to_string())?;
        let host_seconds = started.elapsed().as_secs_f64();
        if inferred["text"].as_str().map(str::as_bytes) != Some(expected.as_slice()) {
            return Err(format!("run {run}: the guest's text differs from the host's"));
        }
        let run_figures = Figures {
            guest_tokens_per_second: TOKENS as f64 * 1e9 / number(inferred, "generation_ns")?,
            register_us: number(registered, "register_ns")? / 1e3,
            grant_us: {
                let mut grants_us =
                    grants.iter().map(|reply| number(reply, "grant_ns")).collect::<Result<Vec<f64>, _>>()?;
                grants_us.sort_by(f64::total_cmp);
                grants_us[GRANTS / 2] / 1e3
            },
            host_tokens_per_second: TOKENS as f64 / host_seconds,
        };
        println!(
            "  run {run}: guest {:.0} tokens/s, host {:.0} tokens/s, the same {TOKENS} bytes; register (verify + copy) {:.0} µs; grant (policy check + audit entry, median of {GRANTS}) {:.1} µs",
            run_figures.guest_tokens_per_second,
            run_figures.host_tokens_per_second,
            run_figures.register_us,
            run_figures.grant_us
        );
        figures.push(run_figures);
    }
    let median = |field: fn(&Figures) -> f64| crate::bench::median_of(&figures, field);
    println!(
        "  median of {runs}: guest {:.0} tokens/s against the host's {:.0} ({:.1}x slower); registering the 200,262-byte artifact \
         (SHA-256, Ed25519 verify_strict, copy) {:.0} µs in the guest; an inference's grant (lock, policy check, audit \
         entry with its SHA-256) {:.1} µs in the guest",
        median(|f| f.guest_tokens_per_second),
        median(|f| f.host_tokens_per_second),
        median(|f| f.host_tokens_per_second) / median(|f| f.guest_tokens_per_second).max(1e-9),
        median(|f| f.register_us),
        median(|f| f.grant_us)
    );
    Ok(())
}
