//! A host measurement, not a test: `compare memory` over many seeds for chosen workload settings, to see whether
//! a configuration gives the OOM test the informative pairs it needs (issue 18, part 4).
//!
//! ```text
//! SIS_POWER_SEEDS=1-10 SIS_POWER_RUNS=20 SIS_POWER_DURATION_MS=1000 SIS_POWER_POOL_MIB=16 \
//! SIS_POWER_TARGET_PCT=85 SIS_POWER_OOM_THRESHOLD_PCT=90 \
//!     cargo test -q --release -p sis-stress --lib power -- --ignored --nocapture
//! ```
//!
//! Every variable is optional; the defaults are those of `stresstest compare memory` (seeds 1 to 10). Each seed
//! runs the comparison as the kernel does (pair i: workload seed `workload_seed(seed, i)`, autonomy off, then on
//! with a fresh heuristic governor deciding every 10 ms), on the host's fake clock (3 µs a reading, about the
//! guest's pace in deterministic mode): the kernel's figures differ in detail, not in kind. Per seed it prints
//! the OOM events, how many off runs met any, the informative pairs, the raw and Holm p, the floor 2/2^n, and
//! the verdict counts; then a summary over the seeds.

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::test_support::{frames, governed_pairs};
use crate::StressTestConfig;

fn variable(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?}: expected a whole number")),
        Err(_) => default,
    }
}

/// `SIS_POWER_SEEDS`: `A-B` (inclusive) or `A,B,C`; default 1-10.
fn seeds() -> Vec<u64> {
    let text = std::env::var("SIS_POWER_SEEDS").unwrap_or_else(|_| String::from("1-10"));
    let number = |part: &str| -> u64 {
        part.trim().parse().unwrap_or_else(|_| panic!("SIS_POWER_SEEDS={text:?}: expected A-B or A,B,C"))
    };
    match text.split_once('-') {
        Some((first, last)) => (number(first)..=number(last)).collect(),
        None => text.split(',').map(number).collect(),
    }
}

#[test]
#[ignore = "a measurement over many seeds for choosing defaults; prints, asserts nothing"]
fn power_of_compare_memory_over_seeds() {
    let runs = variable("SIS_POWER_RUNS", u64::from(DEFAULT_RUNS));
    let defaults = StressTestConfig {
        duration_ms: variable("SIS_POWER_DURATION_MS", DEFAULT_DURATION_MS),
        pool_bytes: variable("SIS_POWER_POOL_MIB", DEFAULT_POOL_MIB) << 20,
        target_pressure_percent: variable("SIS_POWER_TARGET_PCT", 85) as u8,
        oom_threshold_percent: variable("SIS_POWER_OOM_THRESHOLD_PCT", 90) as u8,
        ..StressTestConfig::with_seed(0)
    };
    defaults.validate().unwrap_or_else(|error| panic!("configuration refused: {error}"));
    std::println!(
        "compare memory on the host: {runs} pairs of {} ms, pool {} MiB, target {} %, OOM threshold {} %; \
         guest time per comparison {} s",
        defaults.duration_ms,
        defaults.pool_bytes >> 20,
        defaults.target_pressure_percent,
        defaults.oom_threshold_percent,
        2 * runs * defaults.duration_ms / 1_000
    );
    std::println!(
        "{:>6} {:>9} {:>9} {:>8} {:>9} {:>11} {:>9} {:>9} {:>9}  better/worse/changed/unchanged",
        "seed",
        "OOM off",
        "OOM on",
        "change",
        "off OOM",
        "informative",
        "p",
        "floor",
        "Holm p"
    );
    let mut source = frames();
    let started = std::time::Instant::now();
    let (mut significant, mut off_runs_with_oom, mut worst_holm) = (0, 0, 0.0f64);
    let mut informative_counts = Vec::new();
    let seeds = seeds();
    for &seed in &seeds {
        let (off, on) = governed_pairs(seed, runs, &defaults, &mut source);
        let report = compare_report(CompareTarget::Memory, seed, defaults.duration_ms, off, on);
        let oom = &report.comparisons[0];
        let with_oom = report.autonomy_off.runs.iter().filter(|run| run.values[0] > 0).count();
        off_runs_with_oom += with_oom;
        informative_counts.push(oom.informative_pairs);
        significant += usize::from(report.oom_reduction_significant);
        worst_holm = worst_holm.max(oom.p_value_adjusted);
        std::println!(
            "{seed:>6} {:>9.2} {:>9.2} {:>8} {:>9} {:>11} {:>9.2e} {:>9.2e} {:>9.2e}  {}/{}/{}/{}{}",
            oom.off_mean,
            oom.on_mean,
            report.oom_reduction_percent.map_or(String::from("n/a"), |reduction| std::format!("{:+.1}%", -reduction)),
            std::format!("{with_oom}/{runs}"),
            std::format!("{}/{runs}", oom.informative_pairs),
            oom.p_value.unwrap_or(1.0),
            oom.min_reachable_p,
            oom.p_value_adjusted,
            report.figures_better,
            report.figures_worse,
            report.figures_changed,
            report.figures_unchanged,
            if report.oom_reduction_significant { "  significant" } else { "" }
        );
    }
    informative_counts.sort_unstable();
    let total_runs = seeds.len() as u64 * runs;
    std::println!(
        "OOM reduction significant (Holm p < {SIGNIFICANT_P}) on {significant} of {} seeds; largest Holm p {worst_holm:.2e}; \
         informative pairs min {} median {} max {}; off runs with any OOM event {off_runs_with_oom} of {total_runs}; \
         host time {:.1} s",
        seeds.len(),
        informative_counts.first().copied().unwrap_or(0),
        informative_counts.get(informative_counts.len() / 2).copied().unwrap_or(0),
        informative_counts.last().copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}
