//! `eventctl`: the kernel's event log on the console (the same events the web server pushes on `/ws`).

use alloc::string::String;

use serde_json::json;
use sis_events::{Event, Kind, MAX_BATCH};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::events;

/// `eventctl`.
pub static EVENTCTL: CommandSpec<Kernel> = CommandSpec {
    name: "eventctl",
    summary: "The kernel's event log: stress runs, chaos events, OOM events, autonomy interventions",
    description: "Producers publish typed events, numbered from 1, into a log that keeps the last 256; the web server pushes each to its /ws events subscribers. A reader that falls behind is told how many it missed. Kinds and fields: docs/web.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "The log's counters: published, dropped, held, capacity, next sequence number",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "tail",
            summary: "Events with a sequence number of at least --since (default: the last --count)",
            description: "missed counts the events from --since on that the log no longer holds; next is the --since to ask with next time.",
            args: &[
                ArgSpec::flag("since", ValueKind::U64 { min: 1, max: u64::MAX }, "first sequence number wanted"),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_BATCH as u64 }, "most events shown")
                    .default("16"),
            ],
            subcommands: &[],
            handler: Some(tail),
        },
    ],
    handler: None,
};

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (counters, next) = events::with_log(|log| (log.counters(), log.next_seq()));
    let human = alloc::format!(
        "Events: {} published, {} dropped (the log was full), {} held of {}; next sequence number {next}",
        counters.published,
        counters.dropped,
        counters.held,
        counters.capacity
    );
    Ok(Reply::new(human, json!({ "events": counters, "next_seq": next })))
}

fn tail(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let count = invocation.args.u64("count").unwrap_or(16) as usize;
    let since = invocation.args.u64("since");
    let batch = events::with_log(|log| {
        let since = since.unwrap_or_else(|| log.next_seq().saturating_sub(count as u64).max(1));
        log.since(since, count)
    });
    let mut human = alloc::format!("{} events", batch.events.len());
    if batch.missed > 0 {
        human.push_str(&alloc::format!(" ({} missed: older than the log holds)", batch.missed));
    }
    for event in &batch.events {
        human.push_str(&alloc::format!("\n  {}", line(event)));
    }
    Ok(Reply::new(human, json!({ "missed": batch.missed, "next": batch.next, "events": batch.events })))
}

/// `#12 at 3456 ms stress.progress memory run 3: 40 %, 800 ms`.
fn line(event: &Event) -> String {
    let what = match &event.kind {
        Kind::StressStarted { run, test, seed, duration_ms } => alloc::format!(
            "{test} run {run}: seed {seed}, {}",
            duration_ms.map_or(String::from("no set duration"), |ms| alloc::format!("{ms} ms"))
        ),
        Kind::StressProgress { run, test, percent, elapsed_ms } => alloc::format!(
            "{test} run {run}: {}{elapsed_ms} ms",
            percent.map_or(String::new(), |percent| alloc::format!("{percent} %, "))
        ),
        Kind::StressFinished { run, test, elapsed_ms, status, error } => alloc::format!(
            "{test} run {run}: {status:?} after {elapsed_ms} ms{}",
            error.map_or(String::new(), |code| alloc::format!(" ({code})"))
        ),
        Kind::ChaosEvent { run, index, event, fault, recovered, recovery_us, failure } => alloc::format!(
            "run {run} event #{index} {event}{}: {}",
            fault.map_or(String::new(), |fault| alloc::format!(" [fault: {fault}]")),
            match (recovered, recovery_us, failure) {
                (true, Some(us), _) => alloc::format!("recovered in {us} us"),
                (_, _, Some(failure)) => alloc::format!("FAILED ({failure})"),
                _ => String::from("no outcome"),
            }
        ),
        Kind::Oom { run, new_oom_events, oom_events, bytes } => {
            alloc::format!("run {run}: {new_oom_events} new, {oom_events} in the run; last refused {bytes} bytes")
        }
        Kind::Intervention { decision, interval, subsystem, directive, confidence_per_mille } => alloc::format!(
            "decision #{decision} (interval {interval}) on {subsystem:?}: {directive:?}, confidence {confidence_per_mille} per mille"
        ),
    };
    alloc::format!("#{} at {} ms {} {what}", event.seq, event.at_ms, event.kind.name())
}
