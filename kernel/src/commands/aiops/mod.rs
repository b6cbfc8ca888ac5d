//! `aiopsctl`: the lifecycle of the meta-agent's policy versions (crates/governance, audited) with shadow and
//! canary runs of a candidate (crates/stress), docs/aiops.md. This file parses and prints; `runs` wires.

mod runs;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_governance::artifact::ModelRef;
use sis_governance::lifecycle::{Stage, Transition, HISTORY_KEPT};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_stress::aiops::{CanaryConfig, CanaryStatus, ShadowCriteria, ShadowReport, DIRECTIVE_KINDS};

pub use runs::{audit_canary_rollback, Runs};
use runs::{AiopsError, Options};

use super::autonomy;
use super::llmctl::parse_model;
use super::Kernel;
use crate::governance;

const MODEL: ValueKind = ValueKind::Custom { value_name: "NAME[@VERSION]", parse: parse_model };
const MODEL_HELP: &str = "heuristic, or a registered agent-network model, optionally @MAJOR.MINOR.PATCH";

const FORCE: ArgSpec = ArgSpec::flag("force", ValueKind::Switch, "promote without a passing shadow report (audited)");
const MIN_DECISIONS: ArgSpec = ArgSpec::flag(
    "min-decisions",
    ValueKind::U64 { min: 0, max: u64::MAX },
    "a passing shadow report compares at least N decisions (1..=1000000, default 100)",
);
const MIN_AGREEMENT: ArgSpec = ArgSpec::flag(
    "min-agreement",
    ValueKind::U64 { min: 0, max: u64::MAX },
    "a passing shadow report agrees on at least P per mille (0..=1000, default 800)",
);
// Ranges wider than the valid ones, so the configuration's own check names a bad value (`bad-share`, ...); the
// parser refuses only what does not fit the field.
const SHARE: ArgSpec = ArgSpec::flag(
    "share",
    ValueKind::U64 { min: 0, max: u16::MAX as u64 },
    "per mille of intervals (1..=1000, default 250)",
);
const WINDOW: ArgSpec = ArgSpec::flag(
    "window",
    ValueKind::U64 { min: 0, max: u32::MAX as u64 },
    "decisions per side the reward rule compares (1..=256, default 16)",
);
const MAX_DROP: ArgSpec = ArgSpec::flag(
    "max-drop",
    ValueKind::I64 { min: i64::MIN, max: i64::MAX },
    "largest allowed drop of the mean interval reward, thousandths of a point per step (>= 0, default 500)",
);
const SEED: ArgSpec =
    ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "phase of the interval selection (default 0)");

/// `aiopsctl`.
pub static AIOPSCTL: CommandSpec<Kernel> = CommandSpec {
    name: "aiopsctl",
    summary: "Lifecycle of the meta-agent's policies: status, history, promote, demote, rollback, shadow, canary",
    description: "A policy version (the built-in heuristic, heuristic@0.0.0, or a registered agent-network model such as builtin:memory-agent) moves registered -> shadow -> canary -> production -> retired, one candidate at a time. In shadow it decides beside production on the same inputs, never acting; in canary it decides a seeded share of the intervals through the same guardrails, and a guardrail block or a reward drop rolls it back automatically; in production the meta-agent runs it. Entering canary or production needs a passing shadow report, or --force (audited as force-promote). Every step is audited (llmctl audit). docs/aiops.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Production, previous versions, the candidate, every subject's stage, the policy in force, the runs",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "history",
            summary: "The lifecycle's transitions, oldest first (the last 256 are kept)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(history),
        },
        CommandSpec {
            name: "promote",
            summary: "Move a version one stage forward and start what the stage does (shadow, canary, production)",
            description: "registered -> shadow starts a shadow run (--min-decisions, --min-agreement set what its report needs to pass); shadow -> canary ends the shadow and starts a canary (--share, --window, --max-drop, --seed) if the shadow report passes, or with --force; canary -> production ends the canary and puts the version's policy in force (a fresh meta-agent), retiring the one it replaces. Bad options change nothing.",
            args: &[
                ArgSpec::positional("version", MODEL, MODEL_HELP).required(),
                FORCE,
                MIN_DECISIONS,
                MIN_AGREEMENT,
                SHARE,
                WINDOW,
                MAX_DROP,
                SEED,
            ],
            subcommands: &[],
            handler: Some(promote),
        },
        CommandSpec {
            name: "demote",
            summary: "Move a version one stage back: canary -> shadow (a fresh shadow), shadow -> registered, registered -> retired",
            description: "Production is left by rollback or by another version's promotion.",
            args: &[ArgSpec::positional("version", MODEL, MODEL_HELP).required()],
            subcommands: &[],
            handler: Some(demote),
        },
        CommandSpec {
            name: "rollback",
            summary: "Hand production back to the previous production version and put its policy in force",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(rollback),
        },
        CommandSpec {
            name: "shadow",
            summary: "Shadow runs: start, stop, report",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "start",
                    summary: "Promote a registered version to shadow: it sees every memory decision's inputs, never acts",
                    description: "The same as promote from registered; refused (wrong-stage) for a version in another stage.",
                    args: &[
                        ArgSpec::positional("candidate", MODEL, MODEL_HELP).required(),
                        MIN_DECISIONS,
                        MIN_AGREEMENT,
                    ],
                    subcommands: &[],
                    handler: Some(shadow_start),
                },
                CommandSpec {
                    name: "stop",
                    summary: "Demote the shadow candidate to registered; its final report stays readable",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(shadow_stop),
                },
                CommandSpec {
                    name: "report",
                    summary: "Agreement, confusion, differing decisions, rewards, pass or fail, and the shadow's cost",
                    description: "The running shadow's report, or the last one's.",
                    args: &[],
                    subcommands: &[],
                    handler: Some(shadow_report),
                },
            ],
            handler: None,
        },
        CommandSpec {
            name: "canary",
            summary: "Canary runs: start, stop, status",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "start",
                    summary: "Promote the shadow candidate to canary: it decides --share per mille of the intervals",
                    description: "The same as promote from shadow; refused (wrong-stage) for a version in another stage.",
                    args: &[
                        ArgSpec::positional("candidate", MODEL, MODEL_HELP).required(),
                        FORCE,
                        SHARE,
                        WINDOW,
                        MAX_DROP,
                        SEED,
                    ],
                    subcommands: &[],
                    handler: Some(canary_start),
                },
                CommandSpec {
                    name: "stop",
                    summary: "Demote the canary candidate to shadow (a fresh shadow run); its final status stays readable",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(canary_stop),
                },
                CommandSpec {
                    name: "status",
                    summary: "Intervals, the candidate's share, blocks, the reward windows, the rollback and its reason",
                    description: "The running canary's status, or the last one's.",
                    args: &[],
                    subcommands: &[],
                    handler: Some(canary_status),
                },
            ],
            handler: None,
        },
    ],
    handler: None,
};

fn shell(error: AiopsError) -> ShellError {
    ShellError::new(error.code(), error.to_string())
}

fn model_arg(invocation: &Invocation<'_>, name: &str) -> Result<ModelRef, ShellError> {
    invocation
        .args
        .str(name)
        .and_then(|text| ModelRef::parse(text).ok())
        .ok_or_else(|| ShellError::new(sis_shell::codes::INVALID_VALUE, "a version NAME[@VERSION] is required"))
}

/// The options given (the parser's ranges fit each into its field; the configuration's check names bad values).
fn options(invocation: &Invocation<'_>) -> Options {
    let args = &invocation.args;
    let defaults = CanaryConfig::default();
    let criteria = match (args.u64("min-decisions"), args.u64("min-agreement")) {
        (None, None) => None,
        (compared, agreement) => {
            let defaults = ShadowCriteria::default();
            Some(ShadowCriteria {
                min_compared: compared.unwrap_or(defaults.min_compared),
                min_agreement_per_mille: agreement.unwrap_or(defaults.min_agreement_per_mille),
            })
        }
    };
    Options {
        criteria,
        canary: CanaryConfig {
            share_per_mille: args
                .u64("share")
                .and_then(|share| u16::try_from(share).ok())
                .unwrap_or(defaults.share_per_mille),
            seed: args.u64("seed").unwrap_or(defaults.seed),
            window: args.u64("window").and_then(|window| u32::try_from(window).ok()).unwrap_or(defaults.window),
            max_reward_drop_milli: args.i64("max-drop").unwrap_or(defaults.max_reward_drop_milli),
        },
    }
}

fn moved(kernel: &Kernel, made: &[Transition], verb: &str) -> Result<Reply, ShellError> {
    let mut human = alloc::format!("{verb} as {}:", kernel.principal);
    for transition in made {
        human.push_str(&alloc::format!(
            "\n  {} {} -> {} ({})",
            transition.subject,
            transition.from.name(),
            transition.to.name(),
            kind_name(transition)
        ));
    }
    let lifecycle = lifecycle_json().map_err(shell)?;
    let transitions: Vec<Value> = made.iter().map(transition_json).collect();
    Ok(Reply::new(human, json!({ "transitions": transitions, "lifecycle": lifecycle })))
}

/// A transition as JSON, its subject as `NAME@VERSION` like everywhere in `aiopsctl`.
fn transition_json(transition: &Transition) -> Value {
    json!({
        "sequence": transition.sequence,
        "time_ns": transition.time_ns,
        "subject": transition.subject.to_string(),
        "from": transition.from,
        "to": transition.to,
        "kind": transition.kind,
    })
}

fn kind_name(transition: &Transition) -> String {
    serde_json::to_value(transition.kind).ok().and_then(|kind| kind.as_str().map(String::from)).unwrap_or_default()
}

fn promote(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = model_arg(invocation, "version")?;
    let made = runs::promote(kernel.principal, &model, invocation.args.switch("force"), &options(invocation), None)
        .map_err(shell)?;
    moved(kernel, &made, "promoted")
}

fn demote(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = model_arg(invocation, "version")?;
    let made = runs::demote(kernel.principal, &model, None).map_err(shell)?;
    moved(kernel, &[made], "demoted")
}

fn rollback(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let made = runs::rollback(kernel.principal).map_err(shell)?;
    moved(kernel, &made, "rolled back")
}

fn shadow_start(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = model_arg(invocation, "candidate")?;
    let made =
        runs::promote(kernel.principal, &model, false, &options(invocation), Some(Stage::Registered)).map_err(shell)?;
    moved(kernel, &made, "shadow started")
}

fn canary_start(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = model_arg(invocation, "candidate")?;
    let force = invocation.args.switch("force");
    let made =
        runs::promote(kernel.principal, &model, force, &options(invocation), Some(Stage::Shadow)).map_err(shell)?;
    moved(kernel, &made, "canary started")
}

fn stop(kernel: &Kernel, stage: Stage, none: AiopsError, verb: &str) -> Result<Reply, ShellError> {
    let subject = runs::candidate_in(stage).map_err(shell)?.ok_or_else(|| shell(none))?;
    let model = ModelRef { name: subject.name.clone(), version: Some(subject.version) };
    let made = runs::demote(kernel.principal, &model, Some(stage)).map_err(shell)?;
    moved(kernel, &[made], verb)
}

fn shadow_stop(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    stop(kernel, Stage::Shadow, AiopsError::NoShadow, "shadow stopped")
}

fn canary_stop(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    stop(kernel, Stage::Canary, AiopsError::NoCanary, "canary stopped")
}

/// The lifecycle as JSON (`status` and every step's reply).
fn lifecycle_json() -> Result<Value, AiopsError> {
    Ok(governance::with(|state| {
        let lifecycle = state.governor.lifecycle();
        let subjects: Vec<Value> = lifecycle
            .subjects()
            .iter()
            .map(|(subject, stage)| json!({ "subject": subject.to_string(), "stage": stage }))
            .collect();
        json!({
            "production": lifecycle.production().to_string(),
            "previous_production": lifecycle.previous_production().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "candidate": lifecycle.candidate().map(|(subject, stage)| json!({ "subject": subject.to_string(), "stage": stage })),
            "subjects": subjects,
            "transitions": lifecycle.transitions(),
        })
    })?)
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let mut value = lifecycle_json().map_err(shell)?;
    let (policy, model, shadow, canary, rollbacks) = autonomy::with_state(|meta| {
        let shadow = meta.runs.shadow_report(&meta.governor);
        let canary = meta.runs.canary_status(&meta.governor);
        (
            meta.governor.agent().policy().name(),
            meta.source.model().map(ToString::to_string),
            shadow,
            canary,
            meta.runs.canary_rollbacks(),
        )
    })?;
    let shadow_json = shadow.as_ref().map(|(subject, criteria, report, running)| {
        json!({
            "subject": subject.to_string(),
            "running": running,
            "compared": report.compared,
            "agreement_per_mille": report.agreement_per_mille,
            "passed": report.passes_criteria(criteria),
        })
    });
    let canary_json = canary.as_ref().map(|(subject, status, running)| {
        json!({
            "subject": subject.to_string(),
            "running": running,
            "intervals": status.intervals,
            "candidate_intervals": status.candidate_intervals,
            "rollback": status.rollback,
        })
    });
    value["policy_in_force"] = json!({ "policy": policy, "model": model });
    value["shadow"] = shadow_json.unwrap_or(Value::Null);
    value["canary"] = canary_json.unwrap_or(Value::Null);
    value["canary_rollbacks"] = json!(rollbacks);
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_string();
    let mut human = alloc::format!(
        "Production: {} (policy in force: {policy}{})\n  Previous production versions (rollback order): {}\n  Candidate: {}\n  Transitions: {}, automatic canary rollbacks: {rollbacks}",
        text("production"),
        model.as_deref().map_or(String::new(), |model| alloc::format!(" of {model}")),
        previous_words(&value["previous_production"]),
        match &value["candidate"] {
            Value::Null => String::from("none"),
            candidate => alloc::format!("{} in {}", candidate["subject"].as_str().unwrap_or("-"), candidate["stage"].as_str().unwrap_or("-")),
        },
        value["transitions"],
    );
    if let Some((subject, criteria, report, running)) = &shadow {
        human.push_str(&alloc::format!(
            "\n  Shadow of {subject} ({}): {} compared, agreement {} per mille, {}",
            if *running { "running" } else { "ended" },
            report.compared,
            report.agreement_per_mille,
            if report.passes_criteria(criteria) { "passes" } else { "does not pass" }
        ));
    }
    if let Some((subject, status, running)) = &canary {
        human.push_str(&alloc::format!(
            "\n  Canary of {subject} ({}): {} of {} intervals{}",
            if *running { "running" } else { "ended" },
            status.candidate_intervals,
            status.intervals,
            status.rollback.map_or(String::new(), |rollback| alloc::format!(", rolled back: {}", rollback.code()))
        ));
    }
    Ok(Reply::new(human, value))
}

fn history(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (transitions, total) = governance::with(|state| {
        let lifecycle = state.governor.lifecycle();
        (lifecycle.history().to_vec(), lifecycle.transitions())
    })
    .map_err(|error| shell(error.into()))?;
    let mut human = alloc::format!("{} of {total} transitions (the last {HISTORY_KEPT} are kept)", transitions.len());
    for transition in &transitions {
        human.push_str(&alloc::format!(
            "\n  #{:<4} {:>16} ns  {:<24} {:<10} -> {:<10} {}",
            transition.sequence,
            crate::format::thousands(transition.time_ns),
            transition.subject.to_string(),
            transition.from.name(),
            transition.to.name(),
            kind_name(transition)
        ));
    }
    let transitions: Vec<Value> = transitions.iter().map(transition_json).collect();
    Ok(Reply::new(human, json!({ "transitions": transitions, "total": total })))
}

fn shadow_report(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (found, shadow_cost, decision_cost) = autonomy::with_state(|meta| {
        (meta.runs.shadow_report(&meta.governor), meta.runs.shadow_cost().summary(), meta.decision_cost.summary())
    })?;
    let (subject, criteria, report, running) = found.ok_or_else(|| shell(AiopsError::NoShadowReport))?;
    let passed = report.passes_criteria(&criteria);
    let mut value = serde_json::to_value(&report)
        .map_err(|error| ShellError::new("internal", alloc::format!("report encoding failed: {error}")))?;
    value["subject"] = json!(subject.to_string());
    value["running"] = json!(running);
    value["criteria"] = json!(criteria);
    value["passed"] = json!(passed);
    value["directive_kinds"] = json!(DIRECTIVE_KINDS);
    value["cost"] = json!({ "shadow_step": shadow_cost, "production_decision": decision_cost });
    let human = shadow_human(&subject.to_string(), &report, &criteria, passed, running, &shadow_cost, &decision_cost);
    Ok(Reply::new(human, value))
}

fn shadow_human(
    subject: &str,
    report: &ShadowReport,
    criteria: &ShadowCriteria,
    passed: bool,
    running: bool,
    shadow_cost: &sis_metrics::LatencySummary,
    decision_cost: &sis_metrics::LatencySummary,
) -> String {
    let mean = |sum: i64, count: u64| {
        if count == 0 {
            String::from("n/a")
        } else {
            alloc::format!("{} milli", sum / count as i64)
        }
    };
    let mut human = alloc::format!(
        "Shadow of {subject} ({} policy) beside {} ({}): {} decisions compared, {} agreed, {} differed, agreement {} per mille\n  Passes (>= {} decisions, >= {} per mille): {}\n  Reward after agreeing decisions: mean {} over {}; after differing ones (production's action): mean {} over {}\n  Candidate training steps: {}\n  Cost: shadow step p50 {} ns, p99 {} ns, mean {} ns over {}; production decision p50 {} ns, p99 {} ns over {}\n  Confusion (rows production, columns candidate; {}):",
        report.candidate_policy,
        report.production_policy,
        if running { "running" } else { "ended" },
        report.compared,
        report.agreed,
        report.differed,
        report.agreement_per_mille,
        criteria.min_compared,
        criteria.min_agreement_per_mille,
        if passed { "yes" } else { "no" },
        mean(report.agreed_reward_milli_sum, report.agreed_rewarded),
        report.agreed_rewarded,
        mean(report.differed_reward_milli_sum, report.differed_rewarded),
        report.differed_rewarded,
        report.candidate_updates,
        shadow_cost.p50_ns,
        shadow_cost.p99_ns,
        shadow_cost.mean_ns,
        shadow_cost.count,
        decision_cost.p50_ns,
        decision_cost.p99_ns,
        decision_cost.count,
        DIRECTIVE_KINDS.join(", "),
    );
    for row in &report.confusion {
        human.push_str("\n   ");
        for count in row {
            human.push_str(&alloc::format!(" {count:>6}"));
        }
    }
    for difference in &report.differences {
        human.push_str(&alloc::format!(
            "\n  #{} (interval {}): production {:?} ({} per mille, {:?}), candidate {:?} ({} per mille{})",
            difference.decision,
            difference.interval,
            difference.production,
            difference.production_confidence_per_mille,
            difference.production_disposition,
            difference.candidate,
            difference.candidate_confidence_per_mille,
            if difference.candidate_confident { "" } else { ", below the threshold" }
        ));
    }
    human
}

fn canary_status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let found = autonomy::with_state(|meta| meta.runs.canary_status(&meta.governor))?;
    let (subject, status, running) = found.ok_or_else(|| shell(AiopsError::NoCanaryStatus))?;
    let mut value = serde_json::to_value(&status)
        .map_err(|error| ShellError::new("internal", alloc::format!("status encoding failed: {error}")))?;
    value["subject"] = json!(subject.to_string());
    value["running"] = json!(running);
    Ok(Reply::new(canary_human(&subject.to_string(), &status, running), value))
}

fn canary_human(subject: &str, status: &CanaryStatus, running: bool) -> String {
    let config = &status.config;
    alloc::format!(
        "Canary of {subject} ({} policy, {}): share {} per mille (seed {}), window {}, max drop {} milli\n  Intervals: {}, decided by the candidate: {}, its decisions blocked: {}\n  Rewards (milli per step), candidate: {:?}; production: {:?}\n  Rollback: {}",
        status.candidate_policy,
        if running { "running" } else { "ended" },
        config.share_per_mille,
        config.seed,
        config.window,
        config.max_reward_drop_milli,
        status.intervals,
        status.candidate_intervals,
        status.candidate_blocked,
        status.candidate_rewards_milli,
        status.production_rewards_milli,
        status.rollback.map_or(String::from("none"), |rollback| alloc::format!("{rollback:?}")),
    )
}

/// The previous production versions, most recent first as `rollback` takes them, or "none".
fn previous_words(previous: &Value) -> String {
    // The JSON lists them oldest first; `rollback` restores the last.
    let versions: Vec<&str> =
        previous.as_array().map_or(Vec::new(), |list| list.iter().rev().filter_map(Value::as_str).collect());
    if versions.is_empty() {
        String::from("none")
    } else {
        versions.join(", ")
    }
}
