//! `stresstest all`: the suite's export, with the field paths of the seed's `validate_stress_results.py`.

use alloc::vec::Vec;

use serde::Serialize;

use crate::learning::LearningReport;
use crate::{FloodReport, MemoryReport, MultiReport, Status};

/// Version of the export's layout; bumped when a field changes meaning or disappears.
/// Version 2 added `learning`; 3 changed its `improvement_percent` (now the greedy policy on held-out seeds)
/// and replaced `held_out.random_rewards`/`random_mean` by every baseline.
pub const SUITE_SCHEMA_VERSION: u32 = 3;

/// One test's outcome in the suite.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    /// Test name.
    pub name: &'static str,
    /// Its status.
    pub status: Status,
}

/// Command-latency percentiles at the top level, in nanoseconds (`percentiles.p99`).
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Where the figures come from.
    pub source: &'static str,
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// The export of `stresstest all`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// [`SUITE_SCHEMA_VERSION`].
    pub report_schema_version: u32,
    /// `"all"`.
    pub suite: &'static str,
    /// The seed every test derives from.
    pub seed: u64,
    /// Duration of each test, ms.
    pub duration_ms: u64,
    /// Worst status of the tests.
    pub status: Status,
    /// Each test's status, in the order run.
    pub tests: Vec<TestOutcome>,
    /// `stresstest memory`.
    pub memory: MemoryReport,
    /// `stresstest commands`.
    pub commands: FloodReport,
    /// `stresstest multi`.
    pub multi: MultiReport,
    /// `stresstest learning` (`learning.episodes[].reward` for the validator).
    pub learning: LearningReport,
    /// Offer-to-completion latency of the command flood run alone.
    pub percentiles: Percentiles,
}

impl SuiteReport {
    /// Assembles the export from the four tests.
    pub fn new(
        seed: u64,
        duration_ms: u64,
        memory: MemoryReport,
        commands: FloodReport,
        multi: MultiReport,
        learning: LearningReport,
    ) -> Self {
        let tests = alloc::vec![
            TestOutcome { name: "memory", status: memory.status },
            TestOutcome { name: "commands", status: commands.status },
            TestOutcome { name: "multi", status: multi.status },
            TestOutcome { name: "learning", status: learning.status },
        ];
        let status = tests.iter().fold(Status::Pass, |worst, test| worst.worst(test.status));
        let latency = commands.latency;
        SuiteReport {
            report_schema_version: SUITE_SCHEMA_VERSION,
            suite: "all",
            seed,
            duration_ms,
            status,
            tests,
            percentiles: Percentiles {
                source: "commands.latency",
                count: latency.count,
                p50: latency.p50_ns,
                p95: latency.p95_ns,
                p99: latency.p99_ns,
                p999: latency.p999_ns,
                max: latency.max_ns,
            },
            memory,
            commands,
            multi,
            learning,
        }
    }
}
