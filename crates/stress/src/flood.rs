//! `stresstest commands`: a seeded mix of read-only commands, paced with jitter, and what their processing measured.
//!
//! The kernel runs a producer thread that offers lines to a bounded queue at
//! the configured rate (dropping when it is full: backpressure) and a
//! consumer thread that runs them through the real command registry. This
//! module holds the parts that need no kernel: the mix, the pacing, and the
//! recorder that turns counts and latencies into a report.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_metrics::{LatencyHistogram, LatencySummary, RELATIVE_ERROR_PPM};

use crate::{Status, StressRng};

/// Read-only commands the flood sends, with relative weights.
pub const COMMAND_MIX: [(&str, u64); 6] =
    [("echo", 30), ("uptime", 20), ("meminfo", 15), ("threads", 15), ("version", 10), ("help", 10)];

/// Words `echo` picks from.
const WORDS: [&str; 8] = ["alpha", "beta", "gamma", "delta", "sis", "stress", "flood", "\"two words\""];

/// How fast lines are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// This many lines per second, each interval jittered by up to ±25 %.
    PerSecond(u64),
    /// As fast as the consumer takes them: the producer waits while the queue is full, nothing is dropped.
    Max,
}

/// Configuration of the flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FloodConfig {
    /// Run time in milliseconds.
    pub duration_ms: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Offered rate.
    pub rate: Rate,
    /// Queue capacity in lines.
    pub queue_capacity: u64,
    /// A PARTIAL PASS counts as success.
    pub expect_failures: bool,
}

/// One command line of the mix: the command's index in [`COMMAND_MIX`] and the line.
pub fn next_line(rng: &mut StressRng) -> (usize, String) {
    let total: u64 = COMMAND_MIX.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.below(total);
    let index = COMMAND_MIX
        .iter()
        .position(|&(_, weight)| {
            if pick < weight {
                true
            } else {
                pick -= weight;
                false
            }
        })
        .unwrap_or(0);
    let name = COMMAND_MIX[index].0;
    let mut line = String::from(name);
    if name == "echo" {
        for _ in 0..rng.range(1, 6) {
            line.push(' ');
            line.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
    }
    if rng.chance_percent(50) {
        line.push_str(" --json");
    }
    (index, line)
}

/// Interval to the next line at `per_second`, jittered uniformly by ±25 %.
pub fn next_interval_ns(rng: &mut StressRng, per_second: u64) -> u64 {
    let period = 1_000_000_000 / per_second.max(1);
    period * rng.range(75, 125) / 100
}

/// Counts and latencies gathered while the flood runs.
#[derive(Debug, Clone)]
pub struct FloodRecorder {
    /// Lines the producer offered.
    pub sent: u64,
    /// Lines refused because the queue was full.
    pub dropped: u64,
    /// Lines the consumer ran.
    pub processed: u64,
    /// Lines whose command failed.
    pub failed: u64,
    /// Deepest the queue got.
    pub max_queue_depth: u64,
    /// Bytes of output the commands produced.
    pub output_bytes: u64,
    /// Lines run per command of [`COMMAND_MIX`].
    pub per_command: [u64; COMMAND_MIX.len()],
    /// Offer to completion.
    pub latency: LatencyHistogram,
    /// Execution alone.
    pub service: LatencyHistogram,
}

impl Default for FloodRecorder {
    fn default() -> Self {
        FloodRecorder {
            sent: 0,
            dropped: 0,
            processed: 0,
            failed: 0,
            max_queue_depth: 0,
            output_bytes: 0,
            per_command: [0; COMMAND_MIX.len()],
            latency: LatencyHistogram::new(),
            service: LatencyHistogram::new(),
        }
    }
}

/// Lines run for one command name.
#[derive(Debug, Clone, Serialize)]
pub struct CommandCount {
    /// Command name.
    pub command: &'static str,
    /// Lines run.
    pub processed: u64,
}

/// Everything `stresstest commands` measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// The configuration, seed included.
    pub config: FloodConfig,
    /// Outcome under the documented rules.
    pub status: Status,
    /// Time from the first offer until the consumer finished the last line.
    pub elapsed_ms: u64,
    /// Lines offered.
    pub sent: u64,
    /// Lines the queue accepted.
    pub accepted: u64,
    /// Lines dropped because the queue was full.
    pub dropped: u64,
    /// Lines run.
    pub processed: u64,
    /// Lines whose command returned an error.
    pub failed: u64,
    /// Lines processed per second, times 1000.
    pub achieved_rate_milli_per_s: u64,
    /// Deepest the queue got.
    pub max_queue_depth: u64,
    /// Output produced by the commands.
    pub output_bytes: u64,
    /// Offer-to-completion latency (queueing plus execution).
    pub latency: LatencySummary,
    /// Execution time alone.
    pub service_time: LatencySummary,
    /// Bound on quantile error, parts per million.
    pub latency_relative_error_ppm: u32,
    /// Lines per command.
    pub mix: Vec<CommandCount>,
}

impl FloodRecorder {
    /// The report, with the status from the rules: failed commands and drops are failed operations.
    pub fn finish(&self, config: FloodConfig, elapsed_ns: u64) -> FloodReport {
        let failures = self.failed + self.dropped;
        FloodReport {
            config,
            status: Status::from_counts(failures, self.sent, true),
            elapsed_ms: elapsed_ns / 1_000_000,
            sent: self.sent,
            accepted: self.sent - self.dropped,
            dropped: self.dropped,
            processed: self.processed,
            failed: self.failed,
            achieved_rate_milli_per_s: (self.processed as u128 * 1_000_000_000_000 / elapsed_ns.max(1) as u128) as u64,
            max_queue_depth: self.max_queue_depth,
            output_bytes: self.output_bytes,
            latency: self.latency.summary(),
            service_time: self.service.summary(),
            latency_relative_error_ppm: RELATIVE_ERROR_PPM,
            mix: COMMAND_MIX
                .iter()
                .zip(self.per_command.iter())
                .map(|(&(command, _), &processed)| CommandCount { command, processed })
                .collect(),
        }
    }
}

/// A rate as `12.345/s`.
pub fn rate_text(milli_per_second: u64) -> String {
    format!("{}.{:03}/s", milli_per_second / 1000, milli_per_second % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_its_weights_and_replays() {
        let mut rng = StressRng::new(9);
        let mut counts = [0u64; COMMAND_MIX.len()];
        let mut json = 0;
        for _ in 0..10_000 {
            let (index, line) = next_line(&mut rng);
            assert!(line.starts_with(COMMAND_MIX[index].0));
            json += u64::from(line.ends_with(" --json"));
            counts[index] += 1;
        }
        for (count, (_, weight)) in counts.iter().zip(COMMAND_MIX.iter()) {
            assert!(count.abs_diff(weight * 100) < 150, "{counts:?}");
        }
        assert!((4_700..5_300).contains(&json));
        assert_eq!(next_line(&mut StressRng::new(1)), next_line(&mut StressRng::new(1)));
    }

    #[test]
    fn intervals_jitter_within_a_quarter_of_the_period() {
        let mut rng = StressRng::new(2);
        let intervals: Vec<u64> = (0..1000).map(|_| next_interval_ns(&mut rng, 1000)).collect();
        assert!(intervals.iter().all(|&ns| (750_000..=1_250_000).contains(&ns)));
        let distinct: alloc::collections::BTreeSet<_> = intervals.iter().collect();
        assert!(distinct.len() > 40);
    }

    #[test]
    fn drops_and_failures_decide_the_status() {
        let config =
            FloodConfig { duration_ms: 1, seed: 1, rate: Rate::Max, queue_capacity: 4, expect_failures: false };
        let mut recorder = FloodRecorder { sent: 100, processed: 100, ..FloodRecorder::default() };
        assert_eq!(recorder.finish(config, 1_000_000_000).status, Status::Pass);
        assert_eq!(recorder.finish(config, 1_000_000_000).achieved_rate_milli_per_s, 100_000);
        recorder.dropped = 10;
        recorder.processed = 90;
        let report = recorder.finish(config, 1_000_000_000);
        assert_eq!((report.status, report.accepted), (Status::PartialPass, 90));
    }
}
