//! `bench ai`: what the learning agent costs per decision, against the interval it decides for; then what the
//! guardrails cost per decision (`crate::guardrails`).

use std::time::Instant;

use sis_mm::{FrameAllocator, FrameMeta, PAGE_SIZE};
use sis_stress::learning::{measure_costs, CostReport, DECISIONS_PER_EPISODE, STEPS_PER_DECISION};

use crate::{median, HostClock};

/// Training episodes per repetition (the default of `stresstest learning`).
const EPISODES: u32 = 20;
/// Agent seed.
const SEED: u64 = 1;
/// Frames of the host frame allocator the pool draws from (16 MiB).
const FRAMES: usize = 4 * 1024;
/// Target from issue 6: inference and update together under 1 % of the decision interval.
pub const OVERHEAD_TARGET_PERCENT: f64 = 1.0;

fn one_run() -> CostReport {
    let mut metadata = vec![FrameMeta::default(); FRAMES];
    let mut frames = FrameAllocator::new(0x4000_0000, FRAMES, &mut metadata).expect("frame allocator");
    frames.free_range(0x4000_0000, 0x4000_0000 + FRAMES as u64 * PAGE_SIZE).expect("free range");
    measure_costs(&mut frames, &HostClock(Instant::now()), SEED, EPISODES)
}

/// Runs the measurement `repetitions` times and prints medians.
pub fn run(repetitions: u32) {
    println!(
        "learning agent, seed {SEED}, {EPISODES} training episodes of {DECISIONS_PER_EPISODE} decisions, {repetitions} repetitions"
    );
    println!(
        "(inference: one forward pass and the epsilon-greedy draw; update: store the transition and one training step;\n interval: the action carried out and {STEPS_PER_DECISION} workload steps in the pool, the span the decision governs)"
    );
    let mut columns: [Vec<f64>; 6] = Default::default();
    for repetition in 1..=repetitions {
        let report = one_run();
        let decisions = report.decisions as f64;
        let figures = [
            report.inference.p50_ns as f64,
            report.update.p50_ns as f64,
            report.interval.p50_ns as f64,
            report.inference_total_ns as f64 / decisions,
            report.update_total_ns as f64 / decisions,
            report.interval_total_ns as f64 / decisions,
        ];
        println!(
            "  run {repetition:>2}: inference p50 {:>7.0} ns  update p50 {:>7.0} ns  interval p50 {:>8.0} ns  overhead {:.2} %",
            figures[0], figures[1], figures[2], report.overhead_percent
        );
        for (column, figure) in columns.iter_mut().zip(figures) {
            column.push(figure);
        }
    }
    let [inference_p50, update_p50, interval_p50, inference_mean, update_mean, interval_mean] =
        columns.map(|mut values| median(&mut values));
    let overhead = (inference_mean + update_mean) / interval_mean * 100.0;
    println!(
        "median per decision: inference {inference_p50:.0} ns (mean {inference_mean:.0}), update {update_p50:.0} ns (mean {update_mean:.0}), interval {interval_p50:.0} ns (mean {interval_mean:.0})"
    );
    let verdict = if overhead < OVERHEAD_TARGET_PERCENT { "met" } else { "NOT met" };
    println!(
        "learning overhead against the 64-step interval: {overhead:.2} % (ratio {:.4}; target < {OVERHEAD_TARGET_PERCENT:.0} %: {verdict})",
        overhead / 100.0
    );
    println!(
        "shortest decision interval for < {OVERHEAD_TARGET_PERCENT:.0} %: {:.0} us",
        (inference_mean + update_mean) * 100.0 / OVERHEAD_TARGET_PERCENT / 1e3
    );
    crate::guardrails::run(repetitions, inference_mean + update_mean);
    crate::shadow::run(repetitions);
}
