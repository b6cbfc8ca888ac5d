//! `logctl`: the kernel log's rate limits and counters, log floods to test them, and how fast the console answers.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_klog::flood::{FloodPlan, FloodStatus, MAX_ACTIVE_FLOODS, MAX_FLOOD_COUNT, MAX_FLOOD_DURATION_MS};
use sis_klog::{check_name, KlogError, RateLimit, SourceSnapshot, MAX_BURST};
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::format;
use crate::klog::{self, StartError};

const MS: u64 = 1_000_000;
/// Longest window `logctl ratelimit set` accepts, ms (the log's own bound: 1 hour).
const MAX_INTERVAL_MS: u64 = sis_klog::MAX_INTERVAL_NS / MS;

const SOURCE_FLAG: ArgSpec =
    ArgSpec::flag("source", ValueKind::Str, "source name (ASCII letters, digits, - and _, 1..=16 bytes)");

/// `logctl`.
pub static LOGCTL: CommandSpec<Kernel> = CommandSpec {
    name: "logctl",
    summary: "The kernel log: per-source rate limits and counters, floods, console answer latency",
    description: "Kernel messages go through the log: each source prints at most BURST messages per window (default 10 per 1 s); the rest are suppressed, counted, and reported by one line `klog: <source>: <N> messages suppressed` when the source next prints in a later window or its flood ends. Every log line is one console write, and command output is written a whole line at a time, so log lines never split a reply's line. docs/commands.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Rate limits, per-source counters, totals, floods under way, and this line's answer latency",
            description: "answer_latency_ns is the time from the arrival of this command line's last byte to this reply (null in batch mode).",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "flood",
            summary: "Start a thread logging N messages of a source evenly over MS ms; returns at once",
            description: "The thread sends `flood <source> message <i> of <N>` in min(N, MS) batches at least 1 ms apart, then prints the source's suppression line and ends. At most 4 floods run at once.",
            args: &[
                SOURCE_FLAG.required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_FLOOD_COUNT }, "messages to send").required(),
                ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: MAX_FLOOD_DURATION_MS }, "ms of guest time to spread them over").required(),
            ],
            subcommands: &[],
            handler: Some(flood),
        },
        CommandSpec {
            name: "wait",
            summary: "Block until every flood has ended, then show the final counters (as status)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(wait),
        },
        CommandSpec {
            name: "ratelimit",
            summary: "Show or change rate limits: set, on, off, show",
            description: "Without --source, set/on/off change the default, which every source without its own setting follows; with --source they give that source its own (the source is added if new).",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "set",
                    summary: "Set the burst and window of a source, or the default",
                    description: "The current window keeps its start and count; the new limit applies from the next message.",
                    args: &[
                        SOURCE_FLAG,
                        ArgSpec::flag("burst", ValueKind::U64 { min: 1, max: MAX_BURST as u64 }, "messages printed per window").required(),
                        ArgSpec::flag("interval-ms", ValueKind::U64 { min: 1, max: MAX_INTERVAL_MS }, "window, ms").required(),
                    ],
                    subcommands: &[],
                    handler: Some(ratelimit_set),
                },
                CommandSpec {
                    name: "on",
                    summary: "Turn rate limiting on for a source, or by default",
                    description: "",
                    args: &[SOURCE_FLAG],
                    subcommands: &[],
                    handler: Some(ratelimit_on),
                },
                CommandSpec {
                    name: "off",
                    summary: "Turn rate limiting off for a source, or by default (every message printed)",
                    description: "Messages suppressed before are still reported, by a line before the next message.",
                    args: &[SOURCE_FLAG],
                    subcommands: &[],
                    handler: Some(ratelimit_off),
                },
                CommandSpec {
                    name: "show",
                    summary: "The default and every source's limit and switch (or one source's)",
                    description: "",
                    args: &[SOURCE_FLAG],
                    subcommands: &[],
                    handler: Some(ratelimit_show),
                },
            ],
            handler: None,
        },
    ],
    handler: None,
};

fn log_error(error: KlogError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}

/// The `--source` value, checked; `None` when absent.
fn source_arg(invocation: &Invocation<'_>) -> Result<Option<String>, ShellError> {
    match invocation.args.str("source") {
        Some(name) => {
            check_name(name).map_err(log_error)?;
            Ok(Some(String::from(name)))
        }
        None => Ok(None),
    }
}

fn limit_text(limit: RateLimit) -> String {
    alloc::format!("{} / {}", format::thousands(u64::from(limit.burst())), format::milliseconds(limit.interval_ns()))
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn status(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Ok(report(kernel, None))
}

/// The status reply: limits, sources, totals, floods under way, and the answer latency of the current line.
fn report(kernel: &Kernel, waited_ns: Option<u64>) -> Reply {
    let (default_limit, default_limiting, sources, totals) =
        klog::with_log(|log| (log.default_limit(), log.default_limiting(), log.sources(), log.totals()));
    let (floods, started, finished) = klog::floods();
    let now_ns = time::now_ns();
    let latency_ns = kernel.line_received_ns.map(|arrived| now_ns.saturating_sub(arrived));
    let mut human = alloc::format!(
        "Kernel log: default limit {} per window, limiting {}\n  {:16} {:>22} {:>4} {:>10} {:>8} {:>10} {:>7} {:>10} {:>8}",
        limit_text(default_limit),
        on_off(default_limiting),
        "source",
        "burst / window",
        "lim",
        "emitted",
        "printed",
        "suppressed",
        "reports",
        "reported",
        "pending"
    );
    for source in &sources {
        let counters = &source.counters;
        human.push_str(&alloc::format!(
            "\n  {:16} {:>22} {:>4} {:>10} {:>8} {:>10} {:>7} {:>10} {:>8}",
            source.name,
            limit_text(source.limit),
            on_off(source.limiting),
            format::thousands(counters.emitted),
            format::thousands(counters.printed),
            format::thousands(counters.suppressed),
            format::thousands(counters.suppression_reports),
            format::thousands(counters.suppressed_reported),
            format::thousands(source.pending_suppressed)
        ));
    }
    human.push_str(&alloc::format!(
        "\n  Total: {} sources, {} emitted, {} printed, {} suppressed ({} reported in {} lines, {} pending), {} rejected",
        totals.sources,
        format::thousands(totals.counters.emitted),
        format::thousands(totals.counters.printed),
        format::thousands(totals.counters.suppressed),
        format::thousands(totals.counters.suppressed_reported),
        format::thousands(totals.counters.suppression_reports),
        format::thousands(totals.pending_suppressed),
        format::thousands(totals.rejected)
    ));
    human.push_str(&alloc::format!(
        "\n  Floods: {} running ({started} started, {finished} finished since boot)",
        floods.len()
    ));
    for flood in &floods {
        human.push_str(&alloc::format!(
            "\n    #{} {}: {} of {} sent, {} of {} ms elapsed",
            flood.id,
            flood.source,
            format::thousands(flood.sent),
            format::thousands(flood.count),
            format::milliseconds(now_ns.saturating_sub(flood.started_ns)),
            format::thousands(flood.duration_ms)
        ));
    }
    if let Some(waited) = waited_ns {
        human.push_str(&alloc::format!("\n  Waited {} for the floods to end", format::milliseconds(waited)));
    }
    human.push_str(&match latency_ns {
        Some(latency) => {
            alloc::format!(
                "\n  Answer latency: {} from the line's arrival to this reply",
                format::milliseconds(latency)
            )
        }
        None => String::from("\n  Answer latency: n/a (not a console line)"),
    });
    let floods_json: Vec<Value> = floods.iter().map(|flood| flood_json(flood, now_ns)).collect();
    let mut value = json!({
        "default_limit": default_limit,
        "default_limiting": default_limiting,
        "sources": sources,
        "totals": totals,
        "floods": floods_json,
        "floods_started": started,
        "floods_finished": finished,
        "now_ns": now_ns,
        "answer_latency_ns": latency_ns,
    });
    if let (Some(waited), Some(object)) = (waited_ns, value.as_object_mut()) {
        object.insert(String::from("waited_ns"), json!(waited));
    }
    Reply::new(human, value)
}

fn flood_json(flood: &FloodStatus, now_ns: u64) -> Value {
    json!({
        "id": flood.id,
        "source": flood.source,
        "count": flood.count,
        "duration_ms": flood.duration_ms,
        "started_ns": flood.started_ns,
        "sent": flood.sent,
        "elapsed_ns": now_ns.saturating_sub(flood.started_ns),
    })
}

fn flood(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let source = source_arg(invocation)?.unwrap_or_default();
    let count = invocation.args.u64("count").unwrap_or(0);
    let duration_ms = invocation.args.u64("duration").unwrap_or(0);
    let plan =
        FloodPlan::new(count, duration_ms).map_err(|error| ShellError::new(error.code(), alloc::format!("{error}")))?;
    let flood = klog::start_flood(&source, plan).map_err(|error| match error {
        StartError::Flood(error) => ShellError::new(error.code(), alloc::format!("{error}")),
        StartError::Source(error) => log_error(error),
        StartError::Spawn(error) => {
            ShellError::new("spawn-failed", alloc::format!("the flood thread could not start: {error}"))
        }
    })?;
    let human = alloc::format!(
        "flood #{} started: {} messages of {} over {} ms, in {} batches (at most {MAX_ACTIVE_FLOODS} floods at once)",
        flood.id,
        format::thousands(count),
        flood.source,
        format::thousands(duration_ms),
        format::thousands(plan.ticks())
    );
    Ok(Reply::new(
        human,
        json!({
            "id": flood.id,
            "source": flood.source,
            "count": count,
            "duration_ms": duration_ms,
            "batches": plan.ticks(),
            "started_ns": flood.started_ns,
        }),
    ))
}

fn wait(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let started = time::now_ns();
    klog::wait_for_floods();
    Ok(report(kernel, Some(time::now_ns().saturating_sub(started))))
}

fn ratelimit_set(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let source = source_arg(invocation)?;
    let burst = invocation.args.u64("burst").unwrap_or(0);
    let interval_ms = invocation.args.u64("interval-ms").unwrap_or(0);
    let burst = u32::try_from(burst).map_err(|_| log_error(KlogError::BurstTooLarge { burst: u32::MAX }))?;
    let limit = RateLimit::new(interval_ms.saturating_mul(MS), burst).map_err(log_error)?;
    klog::with_log(|log| log.set_limit(source.as_deref(), limit)).map_err(log_error)?;
    let human = alloc::format!(
        "rate limit of {}: {} per window",
        source.as_deref().unwrap_or("the default"),
        limit_text(limit)
    );
    Ok(Reply::new(human, json!({ "source": source, "limit": limit })))
}

fn ratelimit_on(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    switch(invocation, true)
}

fn ratelimit_off(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    switch(invocation, false)
}

fn switch(invocation: &Invocation<'_>, limiting: bool) -> Result<Reply, ShellError> {
    let source = source_arg(invocation)?;
    klog::with_log(|log| log.set_limiting(source.as_deref(), limiting)).map_err(log_error)?;
    let human = alloc::format!("rate limiting {} for {}", on_off(limiting), source.as_deref().unwrap_or("the default"));
    Ok(Reply::new(human, json!({ "source": source, "limiting": limiting })))
}

fn ratelimit_show(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let source = source_arg(invocation)?;
    let (default_limit, default_limiting, sources) = klog::with_log(|log| {
        let sources: Result<Vec<SourceSnapshot>, KlogError> = match &source {
            Some(name) => log.source(name).map(|one| alloc::vec![one]),
            None => Ok(log.sources()),
        };
        (log.default_limit(), log.default_limiting(), sources)
    });
    let sources = sources.map_err(log_error)?;
    let mut human =
        alloc::format!("default: {} per window, limiting {}", limit_text(default_limit), on_off(default_limiting));
    let mut list = Vec::new();
    for source in &sources {
        human.push_str(&alloc::format!(
            "\n  {:16} {} per window{}, limiting {}{}",
            source.name,
            limit_text(source.limit),
            if source.own_limit { " (own)" } else { " (default)" },
            on_off(source.limiting),
            if source.own_limiting { " (own)" } else { " (default)" }
        ));
        list.push(json!({
            "name": source.name,
            "limit": source.limit,
            "own_limit": source.own_limit,
            "limiting": source.limiting,
            "own_limiting": source.own_limiting,
        }));
    }
    Ok(Reply::new(
        human,
        json!({ "default_limit": default_limit, "default_limiting": default_limiting, "sources": list }),
    ))
}
