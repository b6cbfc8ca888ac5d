//! `cargo xtask model train-agent`: train the learning agent of `stresstest learning` on the host, with the same
//! code the kernel runs (sis-stress, sis-ai), and write its weights in the `agent-network` format (docs/governance.md,
//! "Agent networks") and its training report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use sha2::{Digest, Sha256};
use sis_governance::hex::encode as hex;
use sis_mm::{FrameAllocator, FrameMeta, PAGE_SIZE};
use sis_stress::learning::{self, LearningConfig, LearningReport};
use sis_testing::workspace_root;

/// The shipped agent's weights and training report, relative to the workspace root.
pub const WEIGHTS_PATH: &str = "models/memory-agent.bin";
/// See [`WEIGHTS_PATH`].
pub const REPORT_PATH: &str = "models/memory-agent.training.json";
/// The shipped agent's training: `stresstest learning`'s default episodes, seed 1, no noise.
pub const SHIPPED_EPISODES: u32 = 20;
/// See [`SHIPPED_EPISODES`].
pub const SHIPPED_SEED: u64 = 1;

/// Where the host's pools take their pages: 128 MiB of made-up frames (the pools only count them).
const FRAMES: usize = 32 * 1024;
const FRAMES_BASE: u64 = 0x4000_0000;

/// `model train-agent`.
#[derive(Args)]
pub struct TrainAgentArgs {
    /// Training episodes (as `stresstest learning --episodes`).
    #[arg(long, default_value_t = SHIPPED_EPISODES, value_parser = clap::value_parser!(u32).range(1..=learning::MAX_EPISODES as i64))]
    episodes: u32,
    /// Seed of the initial weights, the exploration and the workloads (as `stresstest learning --seed`).
    #[arg(long, default_value_t = SHIPPED_SEED)]
    seed: u64,
    /// Probability 0..=1 that the pool carries out a random action (as `stresstest learning --inject-noise`).
    #[arg(long, default_value = "0")]
    inject_noise: String,
    /// Where to write the weights blob (relative paths from the workspace root).
    #[arg(long, short, default_value = WEIGHTS_PATH)]
    output: PathBuf,
    /// Where to write the training report: the `learning` object `stresstest learning --json` prints, keys sorted,
    /// one line. Its SHA-256 is the artifact's training-data digest.
    #[arg(long, default_value = REPORT_PATH)]
    report: PathBuf,
    /// Write nothing: train, then fail unless the blob and the report equal the files at --output and --report
    /// byte for byte.
    #[arg(long)]
    check: bool,
}

/// The weights blob and the report's bytes of a training run; `progress` gets its lines.
pub fn train_agent(config: &LearningConfig, progress: &mut dyn FnMut(&str)) -> Result<(Vec<u8>, Vec<u8>), String> {
    config.validate().map_err(|error| error.to_string())?;
    let mut frames = host_frames()?;
    let (agent, report) = learning::train_agent(config, &mut frames, progress);
    let blob = agent.weights().encode().map_err(|error| format!("the trained weights: {error} ({})", error.code()))?;
    Ok((blob, report_bytes(&report)?))
}

/// The report as the kernel prints it inside `{"learning": ...}`: serialized through a `serde_json::Value`, so keys
/// are sorted, on one line, and a newline.
fn report_bytes(report: &LearningReport) -> Result<Vec<u8>, String> {
    let value = serde_json::to_value(report).map_err(|error| error.to_string())?;
    let mut bytes = serde_json::to_vec(&value).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn host_frames() -> Result<FrameAllocator<'static>, String> {
    let metadata = Box::leak(vec![FrameMeta::default(); FRAMES].into_boxed_slice());
    let mut frames = FrameAllocator::new(FRAMES_BASE, FRAMES, metadata).map_err(|error| error.to_string())?;
    frames.free_range(FRAMES_BASE, FRAMES_BASE + FRAMES as u64 * PAGE_SIZE).map_err(|error| error.to_string())?;
    Ok(frames)
}

fn from_root(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace_root().join(path)
    }
}

pub fn train(args: TrainAgentArgs) -> Result<(), String> {
    let noise_per_mille = learning::parse_noise_per_mille(&args.inject_noise)?;
    let config = LearningConfig { episodes: args.episodes, noise_per_mille, seed: args.seed };
    let started = Instant::now();
    let (blob, report) = train_agent(&config, &mut |line| println!("{line}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let parsed: serde_json::Value = serde_json::from_slice(&report).map_err(|error| error.to_string())?;
    println!(
        "trained       {} episodes, seed {}, noise {} in {seconds:.1} s: status {}, network {}, {} training steps",
        config.episodes, config.seed, args.inject_noise, parsed["status"], parsed["network"], parsed["training_steps"]
    );
    let held_out = &parsed["held_out"];
    println!(
        "held-out      greedy policy {} against the best baseline ({}) {}, Wilcoxon p {}",
        held_out["learned_mean"],
        held_out["best_baseline"],
        held_out["best_baseline_mean"],
        held_out["test"]["wilcoxon"]["p_value"]
    );
    let files = [("weights", &args.output, &blob), ("report", &args.report, &report)];
    if args.check {
        for (what, path, bytes) in files {
            let committed = std::fs::read(from_root(path)).map_err(|error| format!("{}: {error}", path.display()))?;
            if &committed != bytes {
                return Err(format!(
                    "the retrained {what} (sha-256 {}) differ from {} (sha-256 {})",
                    hex(&Sha256::digest(bytes)),
                    path.display(),
                    hex(&Sha256::digest(&committed))
                ));
            }
            println!("check         {} reproduced byte for byte ({} bytes)", path.display(), bytes.len());
        }
        return Ok(());
    }
    for (what, path, bytes) in files {
        let out = from_root(path);
        std::fs::write(&out, bytes).map_err(|error| format!("{}: {error}", out.display()))?;
        println!("wrote {what:<7} {} ({} bytes, sha-256 {})", path.display(), bytes.len(), hex(&Sha256::digest(bytes)));
    }
    Ok(())
}
