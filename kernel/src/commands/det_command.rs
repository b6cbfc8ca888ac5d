//! `det on|off|status|submit`: the deterministic reservation under CBS+EDF.

use serde_json::json;
use sis_platform::thread::{self, SpawnError};
use sis_sched::ServerParams;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::sched::ppm_text;
use super::Kernel;
use crate::det::{self, DetError, Status};
use crate::format;

const NANOSECONDS: ValueKind = ValueKind::U64 { min: 1, max: 10_000_000_000 };

/// `det`.
pub static DET: CommandSpec<Kernel> = CommandSpec {
    name: "det",
    summary: "The deterministic reservation: a deadline thread that runs submitted operators every period",
    description: "det on admits a CBS server (budget = WCET) for a worker thread; each period the worker runs the operators submitted to it (the hook a dataflow runtime uses), reports the job done against its own deadline and sleeps. Misses, throttles and resets are counted by the policy.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "on",
            summary: "Admit the reservation and start its worker (refused with the figures if over the bound)",
            description: "",
            args: &[
                ArgSpec::positional("wcet_ns", NANOSECONDS, "budget per period, ns").required(),
                ArgSpec::positional("period_ns", NANOSECONDS, "period, ns").required(),
                ArgSpec::positional("deadline_ns", NANOSECONDS, "relative deadline, ns (at most the period)").required(),
            ],
            subcommands: &[],
            handler: Some(on),
        },
        CommandSpec {
            name: "off",
            summary: "Stop the worker at its next release and release the server",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(off),
        },
        CommandSpec {
            name: "status",
            summary: "Show the reservation's parameters and counters",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "submit",
            summary: "Queue diagnostic operators that each run for --work-us of CPU time in the worker",
            description: "Exercises the graph hook: operators run inside the worker's jobs, in order, within its budget.",
            args: &[
                ArgSpec::flag("work-us", ValueKind::U64 { min: 1, max: 1_000_000 }, "CPU time per operator, µs").required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: 1024 }, "operators to queue").default("1"),
            ],
            subcommands: &[],
            handler: Some(submit),
        },
    ],
    handler: None,
};

fn error(error: DetError) -> ShellError {
    match &error {
        DetError::AlreadyOn => ShellError::new("det-already-on", alloc::format!("{error}")),
        DetError::Off => ShellError::new("det-off", alloc::format!("{error}")),
        DetError::QueueFull => ShellError::new("queue-full", alloc::format!("{error}")),
        DetError::Spawn(SpawnError::Admission(refusal)) => {
            ShellError::new("admission-refused", alloc::format!("{refusal}"))
        }
        DetError::Spawn(_) => ShellError::new("spawn-failed", alloc::format!("{error}")),
    }
}

fn figures(status: &Status) -> serde_json::Value {
    json!({
        "thread": status.thread,
        "wcet_ns": status.params.budget_ns,
        "period_ns": status.params.period_ns,
        "deadline_ns": status.params.deadline_ns,
        "jobs": status.stats.jobs,
        "deadline_misses": status.stats.deadline_misses,
        "throttles": status.stats.throttles,
        "deadline_resets": status.stats.deadline_resets,
        "runtime_ns": status.stats.runtime_ns,
        "operators_queued": status.queued,
        "operators_run": status.operators_run,
    })
}

fn human(status: &Status) -> alloc::string::String {
    alloc::format!(
        "det on: thread {}, wcet {} ns, period {} ns, deadline {} ns\n  jobs {}, misses {}, throttles {}, resets {}, CPU {}\n  operators run {}, queued {}",
        status.thread,
        format::thousands(status.params.budget_ns),
        format::thousands(status.params.period_ns),
        format::thousands(status.params.deadline_ns),
        status.stats.jobs,
        status.stats.deadline_misses,
        status.stats.throttles,
        status.stats.deadline_resets,
        format::milliseconds(status.stats.runtime_ns),
        status.operators_run,
        status.queued
    )
}

fn on(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let params = ServerParams {
        budget_ns: args.u64("wcet_ns").unwrap_or(1),
        period_ns: args.u64("period_ns").unwrap_or(1),
        deadline_ns: args.u64("deadline_ns").unwrap_or(1),
    };
    let id = det::on(params).map_err(error)?;
    let (utilization_ppm, bound_ppm) = thread::utilization();
    Ok(Reply::new(
        alloc::format!(
            "det admitted: thread {id}; utilization {} of bound {}",
            ppm_text(utilization_ppm),
            ppm_text(bound_ppm)
        ),
        json!({ "admitted": true, "thread": id, "utilization_ppm": utilization_ppm, "bound_ppm": bound_ppm }),
    ))
}

fn off(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let last = det::off().map_err(error)?;
    let (utilization_ppm, _) = thread::utilization();
    let mut value = figures(&last);
    value["utilization_after_ppm"] = json!(utilization_ppm);
    Ok(Reply::new(alloc::format!("det off; last figures:\n{}", human(&last)), value))
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Ok(match det::status() {
        Some(status) => {
            let mut value = figures(&status);
            value["on"] = json!(true);
            Reply::new(human(&status), value)
        }
        None => Reply::new("det off", json!({ "on": false })),
    })
}

fn submit(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let work_ns = invocation.args.u64("work-us").unwrap_or(1) * 1_000;
    let count = invocation.args.u64("count").unwrap_or(1);
    for queued in 0..count {
        det::submit(alloc::boxed::Box::new(move || {
            thread::burn_cpu_ns(work_ns);
        }))
        .map_err(|problem| {
            let mut shell_error = error(problem);
            if queued > 0 {
                shell_error = ShellError::new(
                    shell_error.code(),
                    alloc::format!("queued {queued} of {count}; then {}", shell_error.message()),
                );
            }
            shell_error
        })?;
    }
    Ok(Reply::new(
        alloc::format!("queued {count} operator(s) of {} µs", work_ns / 1000),
        json!({ "queued": count, "work_ns": work_ns }),
    ))
}
