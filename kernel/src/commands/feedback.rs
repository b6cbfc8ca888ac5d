//! `feedback`: a person's verdict on a meta-agent decision, stored with the decision's figures (kernel/src/feedback.rs,
//! `sis_autonomy::feedback`), listed and aggregated.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_autonomy::feedback::{Counts, Feedback, Filter, Stats, Subject, Verdict};
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::autonomy;
use super::Kernel;
use crate::feedback;

const VERDICTS: &[&str] = &["good", "bad"];
const ID: ValueKind = ValueKind::U64 { min: 0, max: u64::MAX };
const FILTERS: [ArgSpec; 3] = [
    ArgSpec::flag("decision", ID, "only about this decision id"),
    ArgSpec::flag("verdict", ValueKind::Choice(VERDICTS), "only good or only bad"),
    ArgSpec::flag("principal", ValueKind::Str, "only from this principal (console, token:ID)"),
];

/// `feedback`.
pub static FEEDBACK: CommandSpec<Kernel> = CommandSpec {
    name: "feedback",
    summary: "Judge a meta-agent decision good or bad (feedback ID good|bad [--comment TEXT]); list, stats, status",
    description: "The decision is one of the current meta-agent's traces (autoctl audit, autoctl explain ID); its id, time, policy, action and disposition are stored with the verdict, so an entry stays meaningful after the trace is gone and after a reboot. Each principal (console, token:ID for a web request) judges a decision once. With a virtio-blk disk attached, entries are written to the disk's feedback region and read back at the next boot. Fields: docs/autonomy.md.",
    args: &[
        ArgSpec::positional("id", ID, "decision id").required(),
        ArgSpec::positional("verdict", ValueKind::Choice(VERDICTS), "good or bad").required(),
        ArgSpec::flag("comment", ValueKind::Str, "your words, at most 256 bytes, no control characters"),
    ],
    subcommands: &[
        CommandSpec {
            name: "list",
            summary: "Stored verdicts, oldest first, filtered",
            description: "",
            args: &[
                FILTERS[0],
                FILTERS[1],
                FILTERS[2],
                ArgSpec::flag("limit", ValueKind::U64 { min: 1, max: 4096 }, "the last N matching").default("50"),
            ],
            subcommands: &[],
            handler: Some(list),
        },
        CommandSpec {
            name: "stats",
            summary: "Verdicts counted by action, by policy and by time window",
            description: "Windows are counted from the start of each session (boot) on that session's clock; windows without feedback are left out.",
            args: &[
                FILTERS[0],
                FILTERS[1],
                FILTERS[2],
                ArgSpec::flag("window-ms", ValueKind::U64 { min: 1, max: 86_400_000 }, "window length").default("60000"),
            ],
            subcommands: &[],
            handler: Some(stats),
        },
        CommandSpec {
            name: "status",
            summary: "Entries, session, capacity, and where the store is kept",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
    ],
    handler: Some(give),
};

fn give(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let id = invocation.args.u64("id").unwrap_or(0);
    let verdict = invocation.args.str("verdict").and_then(Verdict::parse).unwrap_or(Verdict::Good);
    let comment = String::from(invocation.args.str("comment").unwrap_or(""));
    let trace = autonomy::decision(id)?;
    let name = |value: Value, field: &str| String::from(value[field].as_str().unwrap_or("unknown"));
    let subject = Subject {
        decision: trace.id,
        decision_at_ns: trace.at_ns,
        policy: String::from(trace.policy),
        action: name(serde_json::to_value(trace.directive).unwrap_or(Value::Null), "directive"),
        disposition: String::from(
            serde_json::to_value(trace.disposition).unwrap_or(Value::Null).as_str().unwrap_or("unknown"),
        ),
    };
    let principal = alloc::format!("{}", kernel.principal);
    let (entry, persistence) = feedback::with(|state| {
        state.record(subject, verdict, &comment, &principal, time::now_ns()).map(|entry| (entry, state.persistence()))
    })
    .map_err(|error| ShellError::new(error.code(), alloc::format!("{error}")))?;
    let human = alloc::format!(
        "Feedback #{} on decision {} ({}: {}, {}): {}{} (kept {})",
        entry.sequence,
        entry.subject.decision,
        entry.subject.policy,
        entry.subject.action,
        entry.subject.disposition,
        entry.verdict.name(),
        if entry.comment.is_empty() { String::new() } else { alloc::format!(", \"{}\"", entry.comment) },
        if persistence.region.state == "persisting" { "on the disk" } else { "in memory" },
    );
    Ok(Reply::new(human, json!({ "feedback": entry, "persistence": persistence })))
}

/// The filter the flags describe.
fn filter<'a>(invocation: &'a Invocation<'_>) -> Filter<'a> {
    Filter {
        decision: invocation.args.u64("decision"),
        verdict: invocation.args.str("verdict").and_then(Verdict::parse),
        principal: invocation.args.str("principal"),
    }
}

fn entry_line(entry: &Feedback) -> String {
    alloc::format!(
        "#{} session {} at {} ms, {}: {} on decision {} ({}: {}, {}){}",
        entry.sequence,
        entry.session,
        entry.at_ns / 1_000_000,
        entry.principal,
        entry.verdict.name(),
        entry.subject.decision,
        entry.subject.policy,
        entry.subject.action,
        entry.subject.disposition,
        if entry.comment.is_empty() { String::new() } else { alloc::format!(" \"{}\"", entry.comment) },
    )
}

fn list(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let limit = invocation.args.u64("limit").unwrap_or(50) as usize;
    let filter = filter(invocation);
    let (entries, total) = feedback::with(|state| {
        let matching: Vec<Feedback> = state.store.query(&filter).cloned().collect();
        let skip = matching.len().saturating_sub(limit);
        (matching.into_iter().skip(skip).collect::<Vec<_>>(), state.store.entries().len())
    });
    let mut human: Vec<String> = entries.iter().map(entry_line).collect();
    human.push(alloc::format!("{} shown of {total} stored", entries.len()));
    Ok(Reply::new(human.join("\n"), json!({ "entries": entries, "shown": entries.len(), "total": total })))
}

fn counts_text(counts: &Counts) -> String {
    match counts.bad_per_mille {
        Some(bad) => alloc::format!("{} good, {} bad ({}.{}% bad)", counts.good, counts.bad, bad / 10, bad % 10),
        None => String::from("no verdicts"),
    }
}

fn stats_text(stats: &Stats) -> String {
    let mut lines = alloc::vec![alloc::format!("{} verdicts: {}", stats.total, counts_text(&stats.counts))];
    for (title, groups) in [("by action", &stats.by_action), ("by policy", &stats.by_policy)] {
        lines.push(alloc::format!("  {title}:"));
        lines.extend(groups.iter().map(|group| alloc::format!("    {}: {}", group.key, counts_text(&group.counts))));
    }
    lines.push(alloc::format!("  by window of {} ms:", stats.window_ns / 1_000_000));
    lines.extend(stats.by_window.iter().map(|window| {
        alloc::format!(
            "    session {} from {} ms: {}",
            window.session,
            window.start_ns / 1_000_000,
            counts_text(&window.counts)
        )
    }));
    lines.join("\n")
}

fn stats(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let window_ns = invocation.args.u64("window-ms").unwrap_or(60_000) * 1_000_000;
    let filter = filter(invocation);
    let stats = feedback::with(|state| state.store.stats(&filter, window_ns));
    Ok(Reply::new(stats_text(&stats), json!({ "stats": stats })))
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (entries, session, capacity, persistence) = feedback::with(|state| {
        (state.store.entries().len(), state.store.session(), state.store.capacity(), state.persistence())
    });
    let region = &persistence.region;
    let disk = match (&region.reason, region.start_lba) {
        (Some((code, message)), _) => alloc::format!("not kept on the disk ({code}: {message})"),
        (None, Some(lba)) => alloc::format!(
            "on the disk ({}) from sector {lba}, {} of {} bytes, {} entries read back at boot",
            region.state,
            region.bytes,
            region.capacity_bytes,
            persistence.recovered_entries
        ),
        (None, None) => String::from("in memory: no disk attached"),
    };
    Ok(Reply::new(
        alloc::format!("Feedback: {entries} of {capacity} entries, session {session}; {disk}"),
        json!({ "entries": entries, "capacity": capacity, "session": session, "persistence": persistence }),
    ))
}
