//! `safetyctl`: the kernel's guardrails, which every action of the meta-agent passes before it runs
//! (docs/safety.md).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::json;
use sis_safety::{BlockEntry, Effector, InvariantReport, InvariantStatus, RuleId, RuleKind, RuleView};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::autonomy::{live_state, with_guardrails};
use super::Kernel;

/// `safetyctl`.
pub static SAFETYCTL: CommandSpec<Kernel> = CommandSpec {
    name: "safetyctl",
    summary: "Guardrails on every agent action: counters and blocks, rules, set a rule, validate the invariants",
    description: "Before the meta-agent carries out a decision confident enough to act on, its action (reclaim, throttle, pressure cap, deadline relaxation, priority boost, output rate limit) is checked against its effector's rules: magnitude, rate of change, frequency within a sliding window, and invariants on the state after the action. A blocked action is not carried out; its trace says `blocked` with the rule, and it is counted here and in autoctl status (decisions_blocked). Rule ids, defaults and ranges: safetyctl rules; docs/safety.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Actions checked, allowed and blocked per effector and per rule, and the last blocks",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "rules",
            summary: "Every rule: id, effector, kind, value in force, default, range, unit",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(rules),
        },
        CommandSpec {
            name: "set",
            summary: "Set a rule's value (an unknown rule, a value outside its range or a fixed rule changes nothing)",
            description: "Takes effect at the next check. Frequency rules count the actions committed before the change too.",
            args: &[
                ArgSpec::positional("rule", ValueKind::Str, "rule id, e.g. throttle.max_per_mille").required(),
                ArgSpec::positional("value", ValueKind::U64 { min: 0, max: u64::MAX }, "value in the rule's unit")
                    .required(),
            ],
            subcommands: &[],
            handler: Some(set),
        },
        CommandSpec {
            name: "validate",
            summary: "Judge every invariant on the live kernel state: held, violated (with figures) or not applicable",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(validate),
        },
    ],
    handler: None,
};

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (human, value) = with_guardrails(|guardrails| {
        let totals = guardrails.totals();
        let mut human = alloc::format!(
            "Guardrails: {} actions checked, {} allowed, {} blocked, {} committed",
            totals.checked,
            totals.allowed,
            totals.blocked,
            totals.committed
        );
        human.push_str(&alloc::format!(
            "\n  {:<20} {:>9} {:>9} {:>9} {:>9}",
            "effector",
            "checked",
            "allowed",
            "blocked",
            "committed"
        ));
        let mut effectors = Vec::new();
        for effector in Effector::ALL {
            let counters = guardrails.effector_counters(effector);
            human.push_str(&alloc::format!(
                "\n  {:<20} {:>9} {:>9} {:>9} {:>9}",
                effector.name(),
                counters.checked,
                counters.allowed,
                counters.blocked,
                counters.committed
            ));
            effectors.push(json!({
                "effector": effector,
                "checked": counters.checked,
                "allowed": counters.allowed,
                "blocked": counters.blocked,
                "committed": counters.committed,
            }));
        }
        human.push_str(&alloc::format!("\n  {:<34} {:>9} {:>9} {:>9}", "rule", "checked", "allowed", "blocked"));
        let mut rules = Vec::new();
        for &rule in RuleId::ALL.iter().filter(|rule| rule.spec().kind != RuleKind::Window) {
            let counters = guardrails.rule_counters(rule);
            human.push_str(&alloc::format!(
                "\n  {:<34} {:>9} {:>9} {:>9}",
                rule.id(),
                counters.checked,
                counters.allowed,
                counters.blocked
            ));
            rules.push(json!({
                "rule": rule,
                "checked": counters.checked,
                "allowed": counters.allowed,
                "blocked": counters.blocked,
            }));
        }
        let blocks: Vec<BlockEntry> = guardrails.blocks().copied().collect();
        human.push_str(&alloc::format!(
            "\n  Last blocks ({} kept of {} since boot):",
            blocks.len(),
            guardrails.blocks_total()
        ));
        for block in &blocks {
            human.push_str(&alloc::format!("\n    {}", block_line(block)));
        }
        let value = json!({
            "totals": totals,
            "effectors": effectors,
            "rules": rules,
            "blocks_total": guardrails.blocks_total(),
            "last_blocks": blocks,
        });
        (human, value)
    })?;
    Ok(Reply::new(human, value))
}

/// `at 1234.567 ms: throttle_allocations 500 per mille (allocation_throttle) blocked by throttle.max_per_mille: ...`.
fn block_line(block: &BlockEntry) -> String {
    alloc::format!(
        "at {}.{:03} ms: {} {} {} ({}) blocked by {}: {}",
        block.at_ns / 1_000_000,
        block.at_ns / 1_000 % 1_000,
        block.action.name,
        block.action.magnitude,
        block.action.effector.unit(),
        block.action.effector.name(),
        block.violation.rule,
        block.violation
    )
}

fn rules(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let views: Vec<RuleView> = with_guardrails(|guardrails| guardrails.rule_views().collect())?;
    let mut human = alloc::format!("{} rules", views.len());
    for view in &views {
        human.push_str(&alloc::format!(
            "\n  {:<34} {:>8} {} (default {}, {}..={}{}) {}: {}",
            view.id.id(),
            view.value,
            view.unit,
            view.default,
            view.min,
            view.max,
            if view.settable { "" } else { ", fixed" },
            view.effector.map_or("every effector", Effector::name),
            view.summary
        ));
    }
    Ok(Reply::new(human, json!({ "rules": views })))
}

fn set(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let id = String::from(invocation.args.str("rule").unwrap_or(""));
    let value = invocation.args.u64("value").unwrap_or(0);
    let previous = with_guardrails(|guardrails| guardrails.set(&id, value))?
        .map_err(|error| ShellError::new(error.code(), alloc::format!("{error}")))?;
    let unit = RuleId::from_id(&id).map_or("", |rule| rule.spec().unit);
    Ok(Reply::new(
        alloc::format!("{id}: {previous} -> {value} {unit}"),
        json!({ "rule": id, "previous": previous, "value": value }),
    ))
}

fn validate(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let live = live_state();
    let reports: Vec<InvariantReport> = with_guardrails(|guardrails| guardrails.validate(&live))?;
    let count = |status| reports.iter().filter(|report| report.status == status).count();
    let (held, violated, not_applicable) =
        (count(InvariantStatus::Held), count(InvariantStatus::Violated), count(InvariantStatus::NotApplicable));
    let mut human = alloc::format!(
        "{} invariants: {held} held, {violated} violated, {not_applicable} not applicable",
        reports.len()
    );
    for report in &reports {
        let detail = match (report.status, report.violation, report.value, report.limit) {
            (InvariantStatus::Violated, Some(violation), _, _) => alloc::format!("violated: {violation}"),
            (InvariantStatus::Held, _, Some(value), Some(limit)) => alloc::format!("held: {value} within {limit}"),
            _ => String::from("not applicable: no deadline thread is watched"),
        };
        human.push_str(&alloc::format!("\n  {:<34} {detail}", report.rule.id()));
    }
    Ok(Reply::new(
        human,
        json!({
            "invariants": reports,
            "held": held,
            "violated": violated,
            "not_applicable": not_applicable,
            "live_state": live,
        }),
    ))
}
