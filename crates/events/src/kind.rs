//! What an event says: one variant per kind, serialized with a `kind` field (docs/web.md lists them).

use serde::Serialize;
use sis_autonomy::{Directive, Subsystem};

/// How a stress run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Its status counts as success.
    Passed,
    /// It ran and reported results whose status fails.
    Failed,
    /// It stopped with an error before reporting.
    Error,
}

/// One event's content. No variant holds heap memory, so the log's memory is fixed once it is made (the kernel's
/// leak checks compare the heap before and after runs that publish).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum Kind {
    /// A stress run began (after its flags were accepted).
    #[serde(rename = "stress.started")]
    StressStarted {
        /// The run's number since boot (every later event of the run carries it).
        run: u64,
        /// The `stresstest` subcommand, e.g. `memory`.
        test: &'static str,
        /// The run's seed.
        seed: u64,
        /// Its configured run time, ms; `None` for a run bounded by something else (learning episodes).
        duration_ms: Option<u64>,
    },
    /// A stress run reported progress.
    #[serde(rename = "stress.progress")]
    StressProgress {
        /// The run's number.
        run: u64,
        /// The `stresstest` subcommand.
        test: &'static str,
        /// Elapsed time as a share of the configured run time, percent, at most 100 and never decreasing within
        /// a run; `None` when the run has no configured time.
        percent: Option<u8>,
        /// Time since the run started, ms.
        elapsed_ms: u64,
    },
    /// A stress run ended.
    #[serde(rename = "stress.finished")]
    StressFinished {
        /// The run's number.
        run: u64,
        /// The `stresstest` subcommand.
        test: &'static str,
        /// Time since the run started, ms.
        elapsed_ms: u64,
        /// How it ended.
        status: Outcome,
        /// The error code of a failed or stopped run.
        error: Option<&'static str>,
    },
    /// One chaos event ended (recovered or failed).
    #[serde(rename = "chaos.event")]
    ChaosEvent {
        /// The stress run's number.
        run: u64,
        /// The event's index in the seed's sequence (what `--only` replays).
        index: u32,
        /// The disturbance, e.g. `memory_spike`.
        event: &'static str,
        /// The recovery fault armed, if any.
        fault: Option<&'static str>,
        /// Whether every steady-state check passed again in time.
        recovered: bool,
        /// Time from the disturbance's end until every check passed, µs (`None` when it failed).
        recovery_us: Option<u64>,
        /// Why it failed, e.g. `timeout` (the run's report describes it in full).
        failure: Option<&'static str>,
    },
    /// The memory workload met OOM events: its pool refused allocations at its limit.
    #[serde(rename = "memory.oom")]
    Oom {
        /// The stress run's number.
        run: u64,
        /// OOM events since the previous `memory.oom` event of this run (the first: since the run began).
        new_oom_events: u64,
        /// OOM events of the run so far.
        oom_events: u64,
        /// Size of the last allocation refused, bytes.
        bytes: u64,
    },
    /// The meta-agent acted on a subsystem.
    #[serde(rename = "autonomy.intervention")]
    Intervention {
        /// The decision's trace ID (`autoctl explain ID`).
        decision: u64,
        /// The decision interval it belongs to.
        interval: u64,
        /// The subsystem directed (`memory` or `scheduling`).
        subsystem: Subsystem,
        /// The directive carried out, as `autoctl audit --json` shows it (e.g.
        /// `{"directive":"throttle_allocations","per_mille":250}`).
        directive: Directive,
        /// The policy's confidence in it, per mille.
        confidence_per_mille: u16,
    },
}

impl Kind {
    /// The `kind` field it serializes with, e.g. `stress.progress`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::StressStarted { .. } => "stress.started",
            Kind::StressProgress { .. } => "stress.progress",
            Kind::StressFinished { .. } => "stress.finished",
            Kind::ChaosEvent { .. } => "chaos.event",
            Kind::Oom { .. } => "memory.oom",
            Kind::Intervention { .. } => "autonomy.intervention",
        }
    }
}
