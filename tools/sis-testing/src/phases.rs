//! The phase suite of seed 002: every test the seed names, under its phase and group, judged on exact JSON.
//!
//! The catalog ([`PHASES`]) holds the seed's nine phases (no phase 4) with its test names. A phase whose
//! subsystem exists has a probe: the commands run in one deterministic boot and a judge that reads their
//! JSON replies and gives each test a verdict with its reason (expected against got). Tests nobody has
//! built yet are reported as failing with "not implemented" and the issue that builds them; nothing is
//! skipped. [`PENDING`] is the one list of phases not yet complete: they are reported but do not fail CI,
//! and each issue that completes a phase removes it from that list.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::{run_batch, QemuConfig};

pub mod agentic;
mod ai_ops;
mod dataflow;
mod governance;
mod judge;
mod otel_workflow;
mod performance;
mod rate_limit;
mod ux_safety;
mod web_gui;

/// Version of the JSON report's layout (`phases --json`).
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// A phase of the seed: its number, name and groups of named tests.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// The seed's phase number.
    pub number: u8,
    /// The seed's name for it.
    pub name: &'static str,
    /// Groups of tests, in the seed's order.
    pub groups: &'static [Group],
}

/// A group of a phase's tests.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// The seed's name for the group.
    pub name: &'static str,
    /// Its tests, in the seed's order.
    pub tests: &'static [&'static str],
}

impl Phase {
    /// Tests in the phase.
    pub fn total(&self) -> usize {
        self.groups.iter().map(|group| group.tests.len()).sum()
    }
}

const fn group(name: &'static str, tests: &'static [&'static str]) -> Group {
    Group { name, tests }
}

/// The seed's phases and tests. Where the seed counts tests without naming them (phase 6's authentication
/// and real-time updates), the names are SIS's (docs/phases.md).
pub const PHASES: [Phase; 8] = [
    Phase {
        number: 1,
        name: "AI-Native Dataflow",
        groups: &[
            group("Graph Execution", &["Graph creation", "Graph execution", "Graph queries", "Graph cleanup"]),
            group("Operator Validation", &["Operator types", "Operator priorities", "Operator connections"]),
            group("Channel Throughput", &["Basic throughput", "Concurrent channels", "Backpressure"]),
            group("Tensor Operations", &["Tensor creation", "Tensor operations", "Tensor pipelines"]),
        ],
    },
    Phase {
        number: 2,
        name: "AI Governance",
        groups: &[
            group("Model Governance", &["Model registration", "Model versioning", "Model metadata"]),
            group("Policy Enforcement", &["Size limit enforcement", "Budget enforcement", "Rate limiting"]),
            group("Audit & Compliance", &["Audit logging", "Compliance checks", "Audit queries"]),
        ],
    },
    Phase {
        number: 3,
        name: "Temporal Isolation",
        groups: &[
            group("Active Isolation", &["CPU isolation", "Memory isolation", "Isolation under load"]),
            group(
                "Deadline Validation",
                &["Deadline met", "Deadline miss handling", "Overrun detection", "Admission control"],
            ),
            group("Latency Tests", &["Baseline latency", "Latency under load", "Latency stability"]),
        ],
    },
    Phase {
        number: 5,
        name: "UX Safety",
        groups: &[
            group("Safety Controls", &["Inference guardrails", "Resource protection", "Safety validation"]),
            group("Explainability", &["Decision transparency", "Model introspection", "Feature importance"]),
            group("User Feedback", &["Error reporting", "User feedback collection", "Feedback analysis"]),
        ],
    },
    Phase {
        number: 6,
        name: "Web GUI",
        groups: &[
            group("HTTP Server", &["Server startup", "HTTP requests", "Server shutdown"]),
            group("WebSocket", &["WebSocket connection", "Message exchange", "Metric subscription"]),
            group("API Endpoints", &["GET /api/metrics", "POST /api/command"]),
            group("Authentication", &["Token required", "Invalid token refused", "Role enforced"]),
            group("Real-Time Updates", &["Metrics stream", "Event stream", "Update interval", "Reconnection"]),
        ],
    },
    Phase {
        number: 7,
        name: "AI Ops",
        groups: &[
            group("Model Lifecycle", &["Model lifecycle", "Shadow mode", "Canary and rollback"]),
            group("OpenTelemetry", &["OTel traces", "OTel metrics", "Decision-trace export"]),
            group("AI Ops Workflow", &["Complete AI Ops workflow"]),
        ],
    },
    Phase {
        number: 8,
        name: "Performance",
        groups: &[
            group("Adaptive Memory", &["Strategy switching", "Directive thresholds", "Oscillation detection"]),
            group("Rate Limiting", &["No output flooding"]),
            group("Meta Agent", &["Confidence thresholds", "Multi-subsystem directives", "Reward feedback"]),
            group("CBS-EDF Scheduler", &["Graph integration"]),
        ],
    },
    Phase {
        number: 9,
        name: "Agentic Platform",
        groups: &[group(
            "Agent System",
            &["Protocol tests", "Capability tests", "Audit tests", "ASM supervision tests"],
        )],
    },
];

/// Phases not yet complete, with the issue that completes each: reported, never skipped, but not failing CI.
/// The issue that brings a phase to 100 % removes it here.
pub const PENDING: [(u8, u32); 0] = [];

/// Tests of a phase that another issue builds, with that issue (none now: phase 8's graph integration came with
/// the dataflow graphs, issue 22).
pub const PENDING_TESTS: [(u8, &str, u32); 0] = [];

/// The issue completing `phase`, if it is pending.
pub fn pending_issue(phase: u8) -> Option<u32> {
    PENDING.iter().find(|(number, _)| *number == phase).map(|(_, issue)| *issue)
}

/// A test's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every assertion held.
    Passed,
    /// An assertion failed, the kernel did not answer, or nothing is built yet (the reason says which).
    Failed,
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// `Phase N / Group / Test`.
    pub id: String,
    /// The seed's test name.
    pub name: String,
    /// The seed's group.
    pub group: String,
    /// Passed or failed.
    pub status: Status,
    /// Why it failed: expected against got, the last output of a boot that failed, or "not implemented".
    pub reason: Option<String>,
    /// Wall time of the boot that ran the test's probe (the tests of one probe share it), ms; 0 when
    /// nothing ran.
    pub duration_ms: u64,
}

/// One phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// The seed's number.
    pub number: u8,
    /// The seed's name.
    pub name: String,
    /// Tests passed.
    pub passed: usize,
    /// Tests in the phase.
    pub total: usize,
    /// passed / total × 100.
    pub pass_rate_percent: f64,
    /// The issue completing the phase, while it is pending (reported, not failing CI).
    pub pending_issue: Option<u32>,
    /// Every test.
    pub tests: Vec<TestResult>,
}

/// The suite's report (`phases --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Whether the probes ran in deterministic mode.
    pub deterministic: bool,
    /// Each phase run, in the seed's order.
    pub phases: Vec<PhaseResult>,
    /// Tests passed over every phase run.
    pub passed: usize,
    /// Tests over every phase run.
    pub total: usize,
    /// Failed tests in phases that are not pending, other than the single tests another issue builds
    /// ([`PENDING_TESTS`]): what fails CI.
    pub failing_outside_pending: usize,
    /// With `--real-time`: the same phases run once more without `-icount`, reported beside the deterministic
    /// results; they never count in `passed` or `failing_outside_pending` (empty otherwise).
    pub real_time: Vec<PhaseResult>,
}

/// A verdict before it is placed in the report: test name and `Err(reason)` on failure.
pub type Verdict = (&'static str, Result<(), String>);

/// What a phase's probe runs: commands in one batch boot with the judge of their replies, and a session in a
/// boot of its own for tests a batch cannot run (lines typed while a thread floods the console, clients on the
/// network). Either may be absent.
struct Probe {
    batch: Option<Batch>,
    session: Option<fn(&QemuConfig) -> Vec<Verdict>>,
}

/// Commands run in one boot, and the judge of their JSON replies.
struct Batch {
    commands: &'static str,
    judge: fn(&[Value]) -> Vec<Verdict>,
}

fn probe(phase: u8) -> Option<Probe> {
    match phase {
        1 => Some(Probe {
            batch: Some(Batch { commands: dataflow::DATAFLOW_COMMANDS.as_str(), judge: dataflow::dataflow }),
            session: None,
        }),
        2 => Some(Probe {
            batch: Some(Batch { commands: governance::GOVERNANCE_COMMANDS, judge: governance::governance }),
            session: None,
        }),
        3 => Some(Probe {
            batch: Some(Batch { commands: judge::TEMPORAL_ISOLATION_COMMANDS, judge: judge::temporal_isolation }),
            session: None,
        }),
        5 => Some(Probe {
            batch: Some(Batch { commands: ux_safety::UX_SAFETY_COMMANDS, judge: ux_safety::ux_safety }),
            session: None,
        }),
        6 => Some(Probe { batch: None, session: Some(web_gui::web_gui) }),
        7 => Some(Probe {
            batch: Some(Batch { commands: ai_ops::AI_OPS_COMMANDS, judge: ai_ops::ai_ops }),
            session: Some(otel_workflow::otel_workflow),
        }),
        8 => Some(Probe {
            batch: Some(Batch {
                commands: performance::PERFORMANCE_COMMANDS.as_str(),
                judge: performance::performance,
            }),
            session: Some(rate_limit::no_output_flooding),
        }),
        9 => Some(Probe {
            batch: Some(Batch { commands: agentic::AGENTIC_COMMANDS, judge: agentic::agentic }),
            session: None,
        }),
        _ => None,
    }
}

/// Runs the phases numbered in `numbers` (every phase when empty) and judges their tests.
pub fn run(numbers: &[u8], deterministic: bool, progress: &mut dyn FnMut(&str)) -> Report {
    let mut phases = Vec::new();
    for phase in PHASES.iter().filter(|phase| numbers.is_empty() || numbers.contains(&phase.number)) {
        progress(&format!("Phase {}: {} ...", phase.number, phase.name));
        let (verdicts, duration) = match probe(phase.number) {
            None => (Vec::new(), Duration::ZERO),
            Some(probe) => run_probe(&probe, phase, deterministic),
        };
        phases.push(phase_result(phase, &verdicts, duration));
    }
    report(phases, deterministic)
}

/// Boots SIS once with the probe's batch, if any, and judges the replies; a boot or a reply that fails fails
/// every test of the phase with the reason. Then runs the probe's session, if any, in a boot of its own.
/// Returns the verdicts and the boots' wall time.
fn run_probe(probe: &Probe, phase: &Phase, deterministic: bool) -> (Vec<Verdict>, Duration) {
    let (mut verdicts, mut duration) = match &probe.batch {
        Some(batch) => run_batch_probe(batch, phase, deterministic),
        None => (Vec::new(), Duration::ZERO),
    };
    if let Some(session) = probe.session {
        let mut config = QemuConfig::new().timeout(Duration::from_secs(120));
        if deterministic {
            config = config.deterministic();
        }
        let started = std::time::Instant::now();
        let session_verdicts = session(&config);
        duration += started.elapsed();
        // A failed batch boot already failed every test; the session's own verdicts replace those it gives.
        verdicts.retain(|(test, _)| !session_verdicts.iter().any(|(name, _)| name == test));
        verdicts.extend(session_verdicts);
    }
    (verdicts, duration)
}

fn run_batch_probe(batch: &Batch, phase: &Phase, deterministic: bool) -> (Vec<Verdict>, Duration) {
    let mut config = QemuConfig::new().batch(batch.commands).timeout(Duration::from_secs(300));
    if deterministic {
        config = config.deterministic();
    }
    match run_batch(&config) {
        Ok(result) => match result.json_lines() {
            Ok(replies) => ((batch.judge)(&replies), result.wall_time),
            Err(error) => (every_test_fails(phase, &format!("unreadable reply: {error}")), result.wall_time),
        },
        Err(error) => (every_test_fails(phase, &format!("the boot failed: {error}")), Duration::ZERO),
    }
}

fn every_test_fails(phase: &Phase, reason: &str) -> Vec<Verdict> {
    phase.groups.iter().flat_map(|group| group.tests.iter()).map(|test| (*test, Err(reason.to_string()))).collect()
}

/// Places `verdicts` in the phase's catalog order; a test without a verdict is not implemented.
pub fn phase_result(phase: &Phase, verdicts: &[Verdict], duration: Duration) -> PhaseResult {
    let pending = pending_issue(phase.number);
    let mut tests = Vec::new();
    for group in phase.groups {
        for name in group.tests {
            let verdict = verdicts.iter().find(|(test, _)| test == name).map(|(_, verdict)| verdict);
            let (status, reason, duration_ms) = match verdict {
                Some(Ok(())) => (Status::Passed, None, duration.as_millis() as u64),
                Some(Err(reason)) => (Status::Failed, Some(reason.clone()), duration.as_millis() as u64),
                None => {
                    let issue = pending_test_issue(phase.number, name)
                        .or(pending)
                        .map_or(String::new(), |issue| format!(" (issue {issue})"));
                    (Status::Failed, Some(format!("not implemented{issue}")), 0)
                }
            };
            tests.push(TestResult {
                id: format!("Phase {} / {} / {name}", phase.number, group.name),
                name: name.to_string(),
                group: group.name.to_string(),
                status,
                reason,
                duration_ms,
            });
        }
    }
    let passed = tests.iter().filter(|test| test.status == Status::Passed).count();
    PhaseResult {
        number: phase.number,
        name: phase.name.to_string(),
        passed,
        total: tests.len(),
        pass_rate_percent: passed as f64 * 100.0 / tests.len().max(1) as f64,
        pending_issue: pending,
        tests,
    }
}

/// The issue that builds test `name` of phase `phase`, when it is one of [`PENDING_TESTS`].
fn pending_test_issue(phase: u8, name: &str) -> Option<u32> {
    PENDING_TESTS.iter().find(|(number, test, _)| *number == phase && *test == name).map(|(_, _, issue)| *issue)
}

/// The report over `phases`.
pub fn report(phases: Vec<PhaseResult>, deterministic: bool) -> Report {
    let failing_outside_pending = phases
        .iter()
        .filter(|phase| phase.pending_issue.is_none())
        .flat_map(|phase| phase.tests.iter().map(move |test| (phase.number, test)))
        .filter(|(number, test)| test.status == Status::Failed && pending_test_issue(*number, &test.name).is_none())
        .count();
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        deterministic,
        passed: phases.iter().map(|phase| phase.passed).sum(),
        total: phases.iter().map(|phase| phase.total).sum(),
        failing_outside_pending,
        phases,
        real_time: Vec::new(),
    }
}

/// The seed's table (phase, passed / total, pass rate), then a line per failing test with its reason.
pub fn table(report: &Report) -> String {
    let mut text = String::from("| Phase | Passed | Pass rate | Status |\n|---|---|---|---|\n");
    for phase in &report.phases {
        let status = match phase.pending_issue {
            Some(issue) => format!("pending (issue {issue})"),
            None if phase.passed == phase.total => String::from("complete"),
            None => {
                let waiting: Vec<String> = phase
                    .tests
                    .iter()
                    .filter(|test| test.status == Status::Failed)
                    .map(|test| {
                        pending_test_issue(phase.number, &test.name)
                            .map(|issue| format!("{} (issue {issue})", test.name))
                    })
                    .collect::<Option<_>>()
                    .unwrap_or_default();
                if waiting.is_empty() {
                    String::from("FAILING")
                } else {
                    format!("complete but for {}", waiting.join(", "))
                }
            }
        };
        text += &format!(
            "| Phase {} - {} | {}/{} | {:.1}% | {status} |\n",
            phase.number, phase.name, phase.passed, phase.total, phase.pass_rate_percent
        );
    }
    let rate = report.passed as f64 * 100.0 / report.total.max(1) as f64;
    text += &format!("| Overall | {}/{} | {rate:.1}% | |\n", report.passed, report.total);
    for test in report.phases.iter().flat_map(|phase| &phase.tests) {
        if let Some(reason) = &test.reason {
            text += &format!("FAIL {}: {reason}\n", test.id);
        }
    }
    if !report.real_time.is_empty() {
        text += "Real time, beside the deterministic results (never failing the run):\n";
        for phase in &report.real_time {
            text += &format!(
                "| Phase {} - {} | {}/{} | {:.1}% |\n",
                phase.number, phase.name, phase.passed, phase.total, phase.pass_rate_percent
            );
        }
        for test in report.real_time.iter().flat_map(|phase| &phase.tests) {
            if let Some(reason) = &test.reason {
                text += &format!("real time: FAIL {}: {reason}\n", test.id);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests;
