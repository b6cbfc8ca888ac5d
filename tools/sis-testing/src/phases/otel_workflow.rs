//! Phase 7's OpenTelemetry tests and the complete AI Ops workflow: a session in a boot of its own, with the host
//! collector (`tools/otel-collector`, which parses every payload with the official `opentelemetry-proto`
//! definitions) listening on 127.0.0.1.
//!
//! The session ([`observe`]) turns recording on, exports spans and metrics to the collector over the kernel's own
//! TCP/IP stack, and runs the seed's workflow on the console: register the shipped memory agent, shadow it
//! through a memory run, read the report, take it into canary, provoke its rollback with a guardrail tighter than
//! its habits, write the decision traces to a file through its cursor. Then it turns recording off, waits until
//! every span and decision trace was sent and a metrics snapshot was taken after the last command, stops the
//! exports and reads the kernel's own figures. It only records; the judge ([`judge`]) reads the record, so it is
//! tested on the host against a recorded session (`phase7_session.json`) and altered copies of it. No verdict
//! reads a host clock or a figure that depends on when the network answered (batches, attempts): the judges
//! compare counts and contents, which are the same in real time and under `-icount`.

mod judge;
mod observe;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Verdict;
use crate::QemuConfig;

pub use judge::judge;

/// The four tests, in the catalog's order.
pub const TESTS: [&str; 4] = ["OTel traces", "OTel metrics", "Decision-trace export", "Complete AI Ops workflow"];

/// The seed of the span ids.
pub const SPAN_SEED: u64 = 21;
/// Seconds between metric snapshots, ms.
pub const METRICS_INTERVAL_MS: u64 = 250;

/// The workflow's lines, run on the console (each with `--json`) after recording and both exports started.
/// `stresstest all` gives the spans with children (a run's parts) whose nesting is checked.
pub const WORKFLOW: [&str; 20] = [
    "stresstest all --duration 200 --episodes 10 --seed 3",
    "llmctl register builtin:memory-agent",
    "aiopsctl shadow start memory-agent --min-agreement 0",
    "autoctl on",
    "stresstest memory --duration 2000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
     --expect-failures",
    "autoctl off",
    "autoctl status",
    "autoctl audit last 256",
    "aiopsctl shadow report",
    "aiopsctl canary start memory-agent --share 1000 --window 256 --max-drop 1000000",
    "autoctl conf-threshold 0",
    "safetyctl set reclaim.max_per_window 0",
    "autoctl on",
    "stresstest memory --duration 1000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
     --expect-failures",
    "autoctl off",
    "aiopsctl canary status",
    "autoctl audit last 256",
    "aiopsctl status",
    "llmctl audit",
    "otelctl decisions file /phase7-decisions.jsonl",
];

/// Lines run before [`WORKFLOW`]: `otelctl enable`, the traces export and the metrics export.
pub const SETUP_LINES: usize = 3;

/// One console line and its JSON reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// The line as typed (without `--json`).
    pub line: String,
    /// Its reply.
    pub reply: Value,
    /// Other lines printed while it ran (the kernel's log).
    pub log: Vec<String>,
}

/// What the session saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// The lines run while recording was on, in order: the three set-up lines, then [`WORKFLOW`].
    pub recorded: Vec<Exchange>,
    /// `otelctl status` after the exports stopped (recording off, every span sent).
    pub otel_status: Value,
    /// `otelctl decisions status` then.
    pub decisions_status: Value,
    /// `autoctl status` then.
    pub autonomy: Value,
    /// The collector's summary then.
    pub summary: Value,
}

impl Recording {
    /// The reply to [`WORKFLOW`]`[index]`.
    pub fn workflow(&self, index: usize) -> &Value {
        self.recorded.get(SETUP_LINES + index).map_or(&Value::Null, |exchange| &exchange.reply)
    }
}

/// Where the session also writes its record when set (how `phase7_session.json` was made).
pub const RECORD_ENV: &str = "SIS_PHASE7_RECORD";

/// The four tests' verdicts from a boot of `config` (a network device is added to it).
pub fn otel_workflow(config: &QemuConfig) -> Vec<Verdict> {
    let recording = observe::observe(config);
    if let (Ok(recording), Some(path)) = (&recording, std::env::var_os(RECORD_ENV)) {
        let text = serde_json::to_string_pretty(recording).unwrap_or_default();
        if let Err(error) = std::fs::write(&path, text + "\n") {
            eprintln!("{RECORD_ENV}: writing {}: {error}", path.to_string_lossy());
        }
    }
    match recording {
        Ok(recording) => judge(&recording),
        Err(reason) => TESTS.iter().map(|test| (*test, Err(reason.clone()))).collect(),
    }
}
