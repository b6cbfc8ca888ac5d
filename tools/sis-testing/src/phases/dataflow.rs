//! Phase 1 (AI-Native Dataflow): graphs, operators, channels and tensors built with `graphctl` and `tensorctl`
//! in one deterministic boot, every reply judged on exact JSON against what the host computes with the
//! kernel's own dataflow crate.
//!
//! Each graph of the probe is a `sis_dataflow::graph::GraphSpec` on the host ([`graphs`]); the `graphctl`
//! lines that build it are written from that specification, and what its sinks must reach comes from
//! `reference_run` over the same specification. Tensors are computed with `sis_dataflow::tensor::Tensor`.
//! So the results the judge expects (specifications, sink checksums, counters, tensors, and the refusals of
//! graphs and tensors) are computed, not typed in, and a kernel that parsed, ran or counted differently fails
//! with expected against got. The bounds of measured shares and times are constants, each with its reason.
//!
//! Every command runs with `--json` and has a label; the judge finds a reply by its label and checks that
//! the reply is the one of that command.

use std::sync::LazyLock;

use serde_json::Value;

use super::Verdict;

mod channels;
mod checks;
mod execution;
mod graphs;
mod operators;
mod tensors;

// What phase 8's graph integration reuses.
pub(super) use checks::{equals_reference, op as graph_op};
pub(super) use execution::{specification_shown, started_as_planned};
pub(super) use graphs::{best_effort as unscheduled, map, reserved, sink_with_deadline, Graph};

/// The tests phase 1's judge gives a verdict: all thirteen.
const JUDGED: [&str; 13] = [
    "Graph creation",
    "Graph execution",
    "Graph queries",
    "Graph cleanup",
    "Operator types",
    "Operator priorities",
    "Operator connections",
    "Basic throughput",
    "Concurrent channels",
    "Backpressure",
    "Tensor creation",
    "Tensor operations",
    "Tensor pipelines",
];

/// One command of the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique within the probe; the judge finds the reply by it.
    pub label: String,
    /// The command's name as its reply's `command` field gives it (`graphctl status`).
    pub name: String,
    /// The whole line, ending in `--json`.
    pub command: String,
}

impl Step {
    /// `name args --json`, labelled `label`.
    pub fn new(label: impl Into<String>, name: &str, args: impl AsRef<str>) -> Step {
        let args = args.as_ref();
        let command = if args.is_empty() { format!("{name} --json") } else { format!("{name} {args} --json") };
        Step { label: label.into(), name: name.into(), command }
    }
}

/// Every step of the probe, in the order they run.
pub fn steps() -> Vec<Step> {
    let mut steps = execution::steps();
    steps.extend(operators::steps());
    steps.extend(channels::steps());
    steps.extend(tensors::steps());
    steps
}

/// Phase 1's probe: [`steps`]' commands joined into one batch.
pub static DATAFLOW_COMMANDS: LazyLock<String> =
    LazyLock::new(|| steps().iter().map(|step| step.command.as_str()).collect::<Vec<_>>().join("; "));

/// Phase 1 from [`DATAFLOW_COMMANDS`]' replies.
pub fn dataflow(replies: &[Value]) -> Vec<Verdict> {
    let steps = steps();
    if replies.len() != steps.len() {
        let got = format!("{} JSON replies, expected {}", replies.len(), steps.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    let replies = Replies { steps: &steps, replies };
    vec![
        ("Graph creation", execution::graph_creation(&replies)),
        ("Graph execution", execution::graph_execution(&replies)),
        ("Graph queries", execution::graph_queries(&replies)),
        ("Graph cleanup", execution::graph_cleanup(&replies)),
        ("Operator types", operators::operator_types(&replies)),
        ("Operator priorities", operators::operator_priorities(&replies)),
        ("Operator connections", operators::operator_connections(&replies)),
        ("Basic throughput", channels::basic_throughput(&replies)),
        ("Concurrent channels", channels::concurrent_channels(&replies)),
        ("Backpressure", channels::backpressure(&replies)),
        ("Tensor creation", tensors::tensor_creation(&replies)),
        ("Tensor operations", tensors::tensor_operations(&replies)),
        ("Tensor pipelines", tensors::tensor_pipelines(&replies)),
    ]
}

/// The replies, found by their steps' labels.
pub struct Replies<'a> {
    steps: &'a [Step],
    replies: &'a [Value],
}

impl<'a> Replies<'a> {
    /// `replies[i]` is the reply of `steps[i]`; the caller checked there is one reply per step.
    pub fn new(steps: &'a [Step], replies: &'a [Value]) -> Replies<'a> {
        Replies { steps, replies }
    }

    /// The reply of the step labelled `label`, which must be the reply of that step's command.
    pub fn get(&self, label: &str) -> Result<&'a Value, String> {
        let index = self
            .steps
            .iter()
            .position(|step| step.label == label)
            .ok_or_else(|| format!("a step labelled {label:?} in the probe"))?;
        let (step, reply) = (&self.steps[index], &self.replies[index]);
        if reply["command"] != step.name.as_str() {
            return Err(format!("the reply of `{}`, got {reply}", step.command));
        }
        Ok(reply)
    }

    /// The reply of `label`, which succeeded.
    pub fn ok(&self, label: &str) -> Result<&'a Value, String> {
        let reply = self.get(label)?;
        if reply["ok"] != true {
            return Err(format!("{label}: succeeds, got {reply}"));
        }
        Ok(reply)
    }

    /// The reply of `label` is a refusal with exactly this code and message.
    pub fn refused(&self, label: &str, code: &str, message: &str) -> Result<(), String> {
        let reply = self.get(label)?;
        let error = &reply["error"];
        if reply["ok"] != false || error["code"] != code || error["message"] != message {
            return Err(format!("{label}: refused with {code} \"{message}\", got {reply}"));
        }
        Ok(())
    }
}

/// `value[key]` as a u64, or why not.
pub(super) fn number(value: &Value, key: &str) -> Result<u64, String> {
    value[key].as_u64().ok_or_else(|| format!("{key} a number, got {} in {value}", value[key]))
}

/// `value[key]` equals `expected`.
fn expect_value(value: &Value, key: &str, expected: &Value, context: &str) -> Result<(), String> {
    if &value[key] != expected {
        return Err(format!("{context}: {key} {expected}, got {}", value[key]));
    }
    Ok(())
}
