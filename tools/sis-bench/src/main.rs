//! `sis-bench`: host benchmarks, built with optimizations; `cargo xtask bench ...` runs them.
//!
//! Each benchmark repeats its measurement, prints every repetition, the
//! median, and the ratio against a peer measured in the same run. The
//! machine is shared and noisy: read medians and ratios, not single runs.
#![forbid(unsafe_code)]

mod agents;
mod ai;
mod dataflow;
mod guardrails;
mod llm;
mod metrics;
mod mm;
mod sched;
mod shadow;

use std::time::Instant;

use clap::{Parser, Subcommand};
use sis_hal::Clock;

#[derive(Parser)]
#[command(name = "sis-bench", about = "SIS host benchmarks")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// The page allocator and the pool against buddy_system_allocator and talc on one seeded workload.
    Mm {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
        /// Operations per repetition.
        #[arg(long, default_value_t = 400_000, value_parser = clap::value_parser!(u64).range(1000..=100_000_000))]
        operations: u64,
    },
    /// CBS+EDF decision cost (enqueue + pick next) at 10, 100 and 1,000 ready threads; peer: round robin.
    Sched {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
    },
    /// The learning agent's inference and update cost per decision against the decision interval, and the
    /// guardrail check's share of a meta-agent decision.
    Ai {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
    },
    /// Channel hop cost and throughput between two threads and on one, against rtrb.
    Dataflow {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
        /// Small messages per run (an eighth as many 4 KiB messages).
        #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1000..=100_000_000))]
        messages: u64,
    },
    /// The language model's generation speed, the signed artifact's verification time, the policy's cost per request.
    Llm {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
    },
    /// The WebAssembly interpreter against native code on one compute kernel, and the host-call round trip.
    Agents {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
    },
    /// Histogram record cost against Vec::push, and the memory workload with recording on vs off.
    Metrics {
        /// Repetitions of each measurement.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
        repetitions: u32,
    },
}

/// The host's monotonic clock, from the moment it is made.
#[derive(Debug)]
pub struct HostClock(pub Instant);

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Median of `values` (they are sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

fn main() {
    match Cli::parse().benchmark {
        Benchmark::Agents { repetitions } => agents::run(repetitions),
        Benchmark::Ai { repetitions } => ai::run(repetitions),
        Benchmark::Dataflow { repetitions, messages } => dataflow::run(repetitions, messages),
        Benchmark::Llm { repetitions } => llm::run(repetitions),
        Benchmark::Metrics { repetitions } => metrics::run(repetitions),
        Benchmark::Mm { repetitions, operations } => mm::run(repetitions, operations),
        Benchmark::Sched { repetitions } => sched::run(repetitions),
    }
}
