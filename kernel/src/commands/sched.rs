//! `schedctl`: deadline threads under CBS+EDF: utilization, admission, periodic diagnostic threads.

use alloc::vec::Vec;

use serde_json::json;
use sis_platform::thread::{self, SpawnError};
use sis_platform::time;
use sis_sched::ServerParams;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::format;

/// Longest period, deadline or budget accepted: 10 s.
const MAX_TIME_NS: u64 = 10_000_000_000;
const PERIODIC_STACK_BYTES: u64 = 16 * 1024;
/// Server budget = wcet + wcet / 50.
const BUDGET_MARGIN_DIVISOR: u64 = 50;
const NANOSECONDS: ValueKind = ValueKind::U64 { min: 1, max: MAX_TIME_NS };

/// `schedctl util|spawn`.
pub static SCHEDCTL: CommandSpec<Kernel> = CommandSpec {
    name: "schedctl",
    summary: "Deadline threads under CBS+EDF: utilization, admission, periodic test threads",
    description: "Deadline threads run behind constant-bandwidth servers (budget = wcet, period, deadline) scheduled by earliest deadline; admission keeps the sum of wcet/period within the bound (0.95); everything else runs round robin in the leftover time.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "util",
            summary: "Show admitted utilization, the bound, and every deadline thread's counters",
            description: "Counters are read from the policy: jobs reported, deadline misses, throttles (budget overruns), deadline resets (CBS wake-up rule), CPU time.",
            args: &[],
            subcommands: &[],
            handler: Some(util),
        },
        CommandSpec {
            name: "threads",
            summary: "List every thread with its class (deadline or best effort) and, for deadline threads, jitter and response time",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(threads),
        },
        CommandSpec {
            name: "bound",
            summary: "Set the admission bound (ppm of one CPU, default 950000); refused below the admitted utilization",
            description: "",
            args: &[ArgSpec::positional("ppm", ValueKind::U64 { min: 1, max: 1_000_000 }, "bound in parts per million").required()],
            subcommands: &[],
            handler: Some(bound),
        },
        CommandSpec {
            name: "kill",
            summary: "End a thread (not idle, not the shell, not the det worker: use det off)",
            description: "Its stack is freed and its server released; objects it kept on the heap are not reclaimed.",
            args: &[ArgSpec::positional("id", ValueKind::U64 { min: 0, max: u32::MAX as u64 }, "thread ID").required()],
            subcommands: &[],
            handler: Some(kill),
        },
        CommandSpec {
            name: "latency",
            summary: "Measure context-switch cost (yield ping-pong) and timer-to-thread latency (sleeper lateness)",
            description: "Two best-effort threads hand the CPU to each other with yield: each sample is the time from one thread's yield to the other running. A third thread sleeps to absolute times 1 ms apart: each sample is how late it ran after its timer. Figures in ns and in counter ticks.",
            args: &[ArgSpec::flag("samples", ValueKind::U64 { min: 10, max: 100_000 }, "samples of each").default("1000")],
            subcommands: &[],
            handler: Some(latency),
        },
        CommandSpec {
            name: "spawn",
            summary: "Start periodic threads that run --wcet of CPU per period (more with --overrun)",
            description: "Each thread is admitted with budget = wcet + 2 % (its own overhead around the job) before it first runs; a refused admission starts nothing and states the utilization. Every period the thread runs wcet x (1 + overrun%) of CPU time, reports its job done, and sleeps until the next release. An overrunning thread is throttled by its server and cannot take time from the others.",
            args: &[
                ArgSpec::flag("wcet", NANOSECONDS, "CPU time per job and server budget, ns").required(),
                ArgSpec::flag("period", NANOSECONDS, "period, ns").required(),
                ArgSpec::flag("deadline", NANOSECONDS, "relative deadline, ns (at most the period)").required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: 16 }, "threads to start").default("1"),
                ArgSpec::flag("overrun", ValueKind::U64 { min: 0, max: 1000 }, "run this much longer than wcet, percent").default("0"),
            ],
            subcommands: &[],
            handler: Some(spawn),
        },
    ],
    handler: None,
};

pub(super) fn ppm_text(ppm: u64) -> alloc::string::String {
    alloc::format!("{}.{:04}", ppm / 1_000_000, ppm % 1_000_000 / 100)
}

fn util(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (utilization_ppm, bound_ppm) = thread::utilization();
    let mut human = alloc::format!(
        "utilization {} of bound {} (policy {})\n{:>4}  {:10}  {:>12}  {:>12}  {:>12}  {:>6}  {:>6}  {:>9}  {:>6}",
        ppm_text(utilization_ppm),
        ppm_text(bound_ppm),
        thread::policy_name(),
        "ID",
        "NAME",
        "BUDGET NS",
        "PERIOD NS",
        "DEADLINE NS",
        "JOBS",
        "MISSES",
        "THROTTLES",
        "RESETS"
    );
    let mut servers = Vec::new();
    for info in thread::snapshot() {
        let Some((params, stats)) = info.server else {
            continue;
        };
        let latency = info.latency.unwrap_or_default();
        human.push_str(&alloc::format!(
            "\n{:>4}  {:10}  {:>12}  {:>12}  {:>12}  {:>6}  {:>6}  {:>9}  {:>6}",
            info.id,
            info.name,
            format::thousands(params.budget_ns),
            format::thousands(params.period_ns),
            format::thousands(params.deadline_ns),
            stats.jobs,
            stats.deadline_misses,
            stats.throttles,
            stats.deadline_resets
        ));
        servers.push(json!({
            "id": info.id,
            "name": info.name,
            "budget_ns": params.budget_ns,
            "period_ns": params.period_ns,
            "deadline_ns": params.deadline_ns,
            "jobs": stats.jobs,
            "deadline_misses": stats.deadline_misses,
            "throttles": stats.throttles,
            "deadline_resets": stats.deadline_resets,
            "runtime_ns": stats.runtime_ns,
            "response_time": latency.response_time,
            "release_jitter": latency.release_jitter,
        }));
    }
    Ok(Reply::new(
        human,
        json!({ "policy": thread::policy_name(), "utilization_ppm": utilization_ppm, "bound_ppm": bound_ppm, "servers": servers }),
    ))
}

fn spawn(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let wcet_ns = args.u64("wcet").unwrap_or(1);
    // The server's budget covers the job plus the thread's own overhead
    // around it (the loop's clock reads, reporting, going to sleep): 2 %.
    let params = ServerParams {
        budget_ns: wcet_ns.saturating_add(wcet_ns / BUDGET_MARGIN_DIVISOR),
        period_ns: args.u64("period").unwrap_or(1),
        deadline_ns: args.u64("deadline").unwrap_or(1),
    };
    let overrun_percent = args.u64("overrun").unwrap_or(0);
    let count = args.u64("count").unwrap_or(1);
    let work_ns = wcet_ns.saturating_mul(100 + overrun_percent) / 100;
    let mut started = Vec::new();
    for _ in 0..count {
        let (period_ns, deadline_ns) = (params.period_ns, params.deadline_ns);
        let body = move || {
            let mut release = time::now_ns();
            loop {
                thread::burn_cpu_ns(work_ns);
                thread::job_complete(release.saturating_add(deadline_ns));
                release = release.saturating_add(period_ns);
                thread::sleep_until_ns(release);
            }
        };
        match thread::spawn_deadline("periodic", PERIODIC_STACK_BYTES, params, body) {
            Ok(id) => started.push(id),
            Err(SpawnError::Admission(error)) => {
                return Err(ShellError::new(
                    "admission-refused",
                    alloc::format!("started {} of {count}; then {error}", started.len()),
                ))
            }
            Err(error) => {
                return Err(ShellError::new(
                    "spawn-failed",
                    alloc::format!("started {} of {count}; then {error}", started.len()),
                ))
            }
        }
    }
    let (utilization_ppm, bound_ppm) = thread::utilization();
    let ids: Vec<alloc::string::String> = started.iter().map(|id| alloc::format!("{id}")).collect();
    Ok(Reply::new(
        alloc::format!(
            "started periodic thread(s) {}; utilization {} of bound {}",
            ids.join(", "),
            ppm_text(utilization_ppm),
            ppm_text(bound_ppm)
        ),
        json!({ "spawned": started, "utilization_ppm": utilization_ppm, "bound_ppm": bound_ppm }),
    ))
}

fn threads(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let mut human = alloc::format!(
        "{:>4}  {:14}  {:11}  {:8}  {:>14}  {:>15}",
        "ID",
        "NAME",
        "CLASS",
        "STATE",
        "JITTER P99 NS",
        "RESPONSE P99 NS"
    );
    let mut list = Vec::new();
    for info in thread::snapshot() {
        let class = if info.server.is_some() { "deadline" } else { "best-effort" };
        let latency = info.latency.unwrap_or_default();
        let (jitter, response) = match info.server {
            Some(_) => {
                (format::thousands(latency.release_jitter.p99_ns), format::thousands(latency.response_time.p99_ns))
            }
            None => (alloc::string::String::from("-"), alloc::string::String::from("-")),
        };
        human.push_str(&alloc::format!(
            "\n{:>4}  {:14}  {:11}  {:8}  {:>14}  {:>15}",
            info.id,
            info.name,
            class,
            info.state.name(),
            jitter,
            response
        ));
        list.push(json!({
            "id": info.id,
            "name": info.name,
            "class": class,
            "state": info.state.name(),
            "cpu_time_ns": info.cpu_time_ns,
            "release_jitter": info.latency.map(|latency| latency.release_jitter),
            "response_time": info.latency.map(|latency| latency.response_time),
        }));
    }
    Ok(Reply::new(human, json!({ "threads": list })))
}

fn kill(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let id = invocation.args.u64("id").unwrap_or(0) as u32;
    let name = thread::snapshot().into_iter().find(|info| info.id == id).map(|info| info.name);
    match name.as_deref() {
        None => return Err(ShellError::new("no-such-thread", alloc::format!("no thread {id}"))),
        Some("shell") | Some("idle") => {
            return Err(ShellError::new("protected-thread", alloc::format!("thread {id} may not be killed")))
        }
        Some("det") => {
            return Err(ShellError::new(
                "protected-thread",
                alloc::format!("thread {id} is the det worker: use det off"),
            ))
        }
        Some(_) => {}
    }
    thread::kill(id).map_err(|error| match error {
        thread::KillError::NoSuchThread => ShellError::new("no-such-thread", alloc::format!("no thread {id}")),
        thread::KillError::Protected => {
            ShellError::new("protected-thread", alloc::format!("thread {id} may not be killed"))
        }
    })?;
    let (utilization_ppm, _) = thread::utilization();
    Ok(Reply::new(
        alloc::format!("killed thread {id}; utilization now {}", ppm_text(utilization_ppm)),
        json!({ "killed": id, "utilization_ppm": utilization_ppm }),
    ))
}

fn ticks(nanoseconds: u64) -> u64 {
    (nanoseconds as u128 * time::frequency_hz() as u128 / 1_000_000_000) as u64
}

fn latency(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    use alloc::sync::Arc;
    use sis_metrics::LatencyHistogram;
    use sis_platform::irq_lock::IrqMutex;

    let samples = invocation.args.u64("samples").unwrap_or(1000);
    let spawn_error = |error| ShellError::new("spawn-failed", alloc::format!("{error}"));

    // Ping-pong: the yielding thread stamps the time; the other, on resuming, records the gap.
    struct PingPong {
        stamp: u64,
        left: u64,
        switches: alloc::boxed::Box<LatencyHistogram>,
    }
    let shared = Arc::new(IrqMutex::new(PingPong { stamp: 0, left: samples, switches: alloc::boxed::Box::default() }));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let state = Arc::clone(&shared);
        handles.push(
            thread::spawn_joinable("pingpong", PERIODIC_STACK_BYTES, move || loop {
                {
                    let mut pingpong = state.lock();
                    if pingpong.left == 0 {
                        return;
                    }
                    if pingpong.stamp != 0 {
                        let gap = time::now_ns().saturating_sub(pingpong.stamp);
                        pingpong.switches.record(gap);
                        pingpong.left -= 1;
                    }
                    pingpong.stamp = time::now_ns();
                }
                thread::yield_now();
            })
            .map_err(spawn_error)?,
        );
    }
    for handle in handles {
        handle.join();
    }
    let switch = shared.lock().switches.summary();

    // Timer to thread: sleep to absolute times, record the lateness.
    let lateness = Arc::new(IrqMutex::new(alloc::boxed::Box::new(LatencyHistogram::new())));
    let recorder = Arc::clone(&lateness);
    thread::spawn_joinable("sleeper", PERIODIC_STACK_BYTES, move || {
        let mut due = time::now_ns() + 1_000_000;
        for _ in 0..samples {
            thread::sleep_until_ns(due);
            let late = time::now_ns().saturating_sub(due);
            recorder.lock().record(late);
            due += 1_000_000;
        }
    })
    .map_err(spawn_error)?
    .join();
    let timer = lateness.lock().summary();

    let line = |name: &str, summary: &sis_metrics::LatencySummary| {
        alloc::format!(
            "{name}: p50 {} ns ({} ticks), p99 {} ns ({} ticks), max {} ns, {} samples",
            format::thousands(summary.p50_ns),
            ticks(summary.p50_ns),
            format::thousands(summary.p99_ns),
            ticks(summary.p99_ns),
            format::thousands(summary.max_ns),
            summary.count
        )
    };
    Ok(Reply::new(
        alloc::format!(
            "{}\n{}",
            line("context switch (yield to other thread running)", &switch),
            line("timer to thread (sleeper lateness)", &timer)
        ),
        json!({
            "counter_frequency_hz": time::frequency_hz(),
            "context_switch": switch,
            "context_switch_p50_ticks": ticks(switch.p50_ns),
            "context_switch_p99_ticks": ticks(switch.p99_ns),
            "timer_to_thread": timer,
            "timer_to_thread_p50_ticks": ticks(timer.p50_ns),
            "timer_to_thread_p99_ticks": ticks(timer.p99_ns),
        }),
    ))
}

fn bound(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let ppm = invocation.args.u64("ppm").unwrap_or(1);
    thread::set_admission_bound(ppm)
        .map_err(|error| ShellError::new("admission-refused", alloc::format!("bound not changed: {error}")))?;
    let (utilization_ppm, bound_ppm) = thread::utilization();
    Ok(Reply::new(
        alloc::format!("bound {}; utilization {}", ppm_text(bound_ppm), ppm_text(utilization_ppm)),
        json!({ "bound_ppm": bound_ppm, "utilization_ppm": utilization_ppm }),
    ))
}
