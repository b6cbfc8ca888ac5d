//! `temporaliso`: the seed's temporal-isolation checks as measured experiments, each with its figures and a verdict.
//!
//! Every experiment starts threads that end by themselves, so the kernel is
//! back where it was afterwards (their servers are released when they exit).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_metrics::{LatencyHistogram, LatencySummary};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::memory::KernelFrames;
use sis_platform::thread::{self, SpawnError};
use sis_platform::time;
use sis_sched::{ServerParams, ServerStats};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_stress::isolation::memory_isolation;

use super::Kernel;
use crate::format;

const MS: u64 = 1_000_000;
const STACK_BYTES: u64 = 16 * 1024;
/// Wake-up latency (release to first instruction of the job) a deadline thread must stay under, p99.
const LATENCY_P99_LIMIT_NS: u64 = 100_000;
/// Under load, p99 may grow by at most this factor over the baseline (plus 10 µs).
const STABILITY_FACTOR: u64 = 2;
/// Interleaved steps of the memory-isolation experiment.
const MEMORY_ISOLATION_STEPS: u64 = 1_000;
/// How far a reservation's measured CPU share may fall from Q/T, per mille: the window's first and last
/// periods are partial.
const CPU_SHARE_TOLERANCE_PER_MILLE: u64 = 5;

/// `temporaliso`.
pub static TEMPORALISO: CommandSpec<Kernel> = CommandSpec {
    name: "temporaliso",
    summary: "Measure temporal isolation under CBS+EDF: admission, deadlines, overruns, wake-up latency",
    description: "Ten checks, each a measured experiment with its figures and a verdict derived from them: admission control, deadline met (U = 0.918), overrun detection, isolation under load, deadline-miss handling, baseline latency, latency under load, latency stability, CPU isolation (a 3 ms / 10 ms reservation that wants the CPU all the time, beside two spinners, gets 300 per mille +- 5), memory isolation (a pool exhausting its 4 MiB budget beside a 1 MiB pool that grows and releases its working set: every refusal is the greedy pool's own budget's, the other never fails, every frame comes back). Thresholds: wake-up latency p99 < 100 µs; under load p99 <= 2 x baseline + 10 µs. Run it in deterministic mode for exact, replayable figures.",
    args: &[ArgSpec::flag("duration", ValueKind::U64 { min: 100, max: 60_000 }, "length of each experiment, ms").default("1000")],
    subcommands: &[],
    handler: Some(temporaliso),
};

/// What one periodic thread measured before it ended.
#[derive(Debug, Clone)]
struct Outcome {
    /// The thread that measured it.
    thread: u32,
    stats: ServerStats,
    latency: LatencySummary,
}

type Results = Arc<IrqMutex<Vec<Outcome>>>;

/// Starts a periodic deadline thread that runs until `until_ns`, then stores its counters in `results`.
fn periodic(
    wcet_ns: u64,
    period_ns: u64,
    overrun_percent: u64,
    until_ns: u64,
    results: &Results,
) -> Result<u32, SpawnError> {
    let params = ServerParams { budget_ns: wcet_ns + wcet_ns / 50, period_ns, deadline_ns: period_ns };
    let work_ns = wcet_ns * (100 + overrun_percent) / 100;
    let results = Arc::clone(results);
    thread::spawn_deadline("isolation", STACK_BYTES, params, move || {
        let mut latency = alloc::boxed::Box::new(LatencyHistogram::new());
        let mut release = time::now_ns();
        while release < until_ns {
            latency.record(time::now_ns().saturating_sub(release));
            thread::burn_cpu_ns(work_ns);
            thread::job_complete(release + period_ns);
            release += period_ns;
            thread::sleep_until_ns(release);
        }
        finish(&results, latency.summary());
    })
}

/// Stores the calling experiment thread's server counters and `latency` in `results`, as it ends.
fn finish(results: &Results, latency: LatencySummary) {
    let stats = thread::own_server().map(|(_, stats)| stats).unwrap_or_default();
    results.lock().push(Outcome { thread: thread::current_id(), stats, latency });
}

/// Starts a deadline thread that wants the CPU all the time (it never sleeps) under a budget of `budget_ns`
/// every `period_ns`, until `until_ns`; then stores its counters in `results`.
fn hog(budget_ns: u64, period_ns: u64, until_ns: u64, results: &Results) -> Result<u32, SpawnError> {
    let params = ServerParams { budget_ns, period_ns, deadline_ns: period_ns };
    let results = Arc::clone(results);
    thread::spawn_deadline("isolation", STACK_BYTES, params, move || {
        while time::now_ns() < until_ns {
            thread::burn_cpu_ns(MS / 10);
        }
        finish(&results, LatencySummary::default());
    })
}

/// Starts a best-effort thread that spins until `until_ns`.
fn spinner(until_ns: u64) -> Result<u32, SpawnError> {
    thread::spawn("load", STACK_BYTES, move || {
        while time::now_ns() < until_ns {
            core::hint::spin_loop();
        }
    })
}

/// Waits until every one of `expected` periodic threads has stored its outcome.
fn collect(results: &Results, expected: usize, until_ns: u64) -> Vec<Outcome> {
    loop {
        if results.lock().len() >= expected {
            return core::mem::take(&mut *results.lock());
        }
        let now = time::now_ns();
        thread::sleep_ns(if now < until_ns { until_ns - now } else { MS });
    }
}

fn spawn_error(error: SpawnError) -> ShellError {
    ShellError::new("spawn-failed", alloc::format!("an experiment thread could not start: {error}"))
}

struct Check {
    name: &'static str,
    passed: bool,
    figures: Value,
    summary: String,
}

fn temporaliso(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let duration_ns = invocation.args.u64("duration").unwrap_or(1000) * MS;
    let mut checks: Vec<Check> = Vec::new();
    let results: Results = Arc::new(IrqMutex::new(Vec::new()));

    // 1 + 2: admission control and deadlines met at U = 0.918.
    invocation.progress("[TEMPORALISO] deadline set at U = 0.918 ...");
    let until = time::now_ns() + duration_ns;
    let (before_ppm, bound_ppm) = thread::utilization();
    for (wcet, period) in [(2 * MS, 10 * MS), (6 * MS, 20 * MS), (20 * MS, 50 * MS)] {
        periodic(wcet, period, 0, until, &results).map_err(spawn_error)?;
    }
    let (loaded_ppm, _) = thread::utilization();
    let refused = match periodic(10 * MS, 100 * MS, 0, until, &results) {
        Err(SpawnError::Admission(error)) => Some(alloc::format!("{error}")),
        Ok(_) => None,
        Err(other) => return Err(spawn_error(other)),
    };
    let (after_ppm, _) = thread::utilization();
    checks.push(Check {
        name: "admission_control",
        passed: refused.is_some() && after_ppm == loaded_ppm,
        figures: json!({ "utilization_before_ppm": before_ppm, "utilization_admitted_ppm": loaded_ppm, "bound_ppm": bound_ppm, "refusal": refused, "utilization_after_refusal_ppm": after_ppm }),
        summary: alloc::format!("0.1 more refused ({}), utilization unchanged", refused.as_deref().unwrap_or("NOT refused")),
    });
    let outcomes = collect(&results, 3, until);
    let misses: u64 = outcomes.iter().map(|o| o.stats.deadline_misses).sum();
    let jobs: u64 = outcomes.iter().map(|o| o.stats.jobs).sum();
    checks.push(Check {
        name: "deadline_met",
        passed: misses == 0 && jobs > 0,
        figures: json!({ "jobs": jobs, "deadline_misses": misses, "utilization_ppm": loaded_ppm }),
        summary: alloc::format!("{jobs} jobs, {misses} misses"),
    });

    // 3 + 4 + 5: one thread overruns its budget by 50 %.
    invocation.progress("[TEMPORALISO] one thread overrunning by 50 % ...");
    let until = time::now_ns() + duration_ns;
    let overrunning = periodic(2 * MS, 10 * MS, 50, until, &results).map_err(spawn_error)?;
    periodic(6 * MS, 20 * MS, 0, until, &results).map_err(spawn_error)?;
    periodic(20 * MS, 50 * MS, 0, until, &results).map_err(spawn_error)?;
    let outcomes = collect(&results, 3, until);
    // The overrunner is known by its thread id: the check fails if the policy throttles another thread, or
    // if the overrunner's outcome is missing.
    let (overrunner, others): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| o.thread == overrunning);
    let overrun_throttles: u64 = overrunner.iter().map(|o| o.stats.throttles).sum();
    let overrun_misses: u64 = overrunner.iter().map(|o| o.stats.deadline_misses).sum();
    let overrun_jobs: u64 = overrunner.iter().map(|o| o.stats.jobs).sum();
    let other_misses: u64 = others.iter().map(|o| o.stats.deadline_misses).sum();
    let other_jobs: u64 = others.iter().map(|o| o.stats.jobs).sum();
    let other_throttles: u64 = others.iter().map(|o| o.stats.throttles).sum();
    let throttled_threads: Vec<u32> = outcomes.iter().filter(|o| o.stats.throttles > 0).map(|o| o.thread).collect();
    checks.push(Check {
        name: "overrun_detection",
        passed: overrunner.len() == 1 && overrun_throttles > 0 && other_throttles == 0,
        figures: json!({
            "overrunning_thread": overrunning,
            "throttled_threads": throttled_threads,
            "throttles": overrun_throttles,
            "other_throttles": other_throttles,
        }),
        summary: alloc::format!(
            "thread {overrunning} (overrunning) throttled {overrun_throttles} times, the others {other_throttles}"
        ),
    });
    checks.push(Check {
        name: "isolation_under_load",
        passed: other_misses == 0 && other_jobs > 0,
        figures: json!({ "other_jobs": other_jobs, "other_deadline_misses": other_misses }),
        summary: alloc::format!("others: {other_jobs} jobs, {other_misses} misses"),
    });
    checks.push(Check {
        name: "deadline_miss_handling",
        passed: overrun_misses > 0 && overrun_jobs > 0,
        figures: json!({ "overrunner_jobs": overrun_jobs, "overrunner_deadline_misses": overrun_misses }),
        summary: alloc::format!(
            "overrunner's misses counted ({overrun_misses} of {overrun_jobs} jobs), kernel kept running"
        ),
    });

    // 6: baseline wake-up latency, one light thread alone.
    invocation.progress("[TEMPORALISO] wake-up latency alone ...");
    let until = time::now_ns() + duration_ns;
    periodic(MS / 2, 5 * MS, 0, until, &results).map_err(spawn_error)?;
    let baseline = collect(&results, 1, until)[0].latency;
    checks.push(Check {
        name: "baseline_latency",
        passed: baseline.count > 0 && baseline.p99_ns < LATENCY_P99_LIMIT_NS,
        figures: json!({ "latency": baseline, "p99_limit_ns": LATENCY_P99_LIMIT_NS }),
        summary: alloc::format!(
            "p50 {} ns, p99 {} ns, max {} ns",
            format::thousands(baseline.p50_ns),
            format::thousands(baseline.p99_ns),
            format::thousands(baseline.max_ns)
        ),
    });

    // 7 + 8: the same thread beside two best-effort spinners.
    invocation.progress("[TEMPORALISO] wake-up latency beside two spinning threads ...");
    let until = time::now_ns() + duration_ns;
    spinner(until).map_err(spawn_error)?;
    spinner(until).map_err(spawn_error)?;
    periodic(MS / 2, 5 * MS, 0, until, &results).map_err(spawn_error)?;
    let loaded = collect(&results, 1, until)[0].latency;
    checks.push(Check {
        name: "latency_under_load",
        passed: loaded.count > 0 && loaded.p99_ns < LATENCY_P99_LIMIT_NS,
        figures: json!({ "latency": loaded, "p99_limit_ns": LATENCY_P99_LIMIT_NS, "best_effort_spinners": 2 }),
        summary: alloc::format!(
            "p50 {} ns, p99 {} ns, max {} ns",
            format::thousands(loaded.p50_ns),
            format::thousands(loaded.p99_ns),
            format::thousands(loaded.max_ns)
        ),
    });
    let stability_limit = baseline.p99_ns * STABILITY_FACTOR + 10_000;
    checks.push(Check {
        name: "latency_stability",
        passed: loaded.p99_ns <= stability_limit,
        figures: json!({ "baseline_p99_ns": baseline.p99_ns, "loaded_p99_ns": loaded.p99_ns, "limit_ns": stability_limit }),
        summary: alloc::format!("p99 {} ns under load vs {} ns alone (limit {} ns)", format::thousands(loaded.p99_ns), format::thousands(baseline.p99_ns), format::thousands(stability_limit)),
    });

    // 9: CPU isolation: a reservation that wants the CPU all the time, beside two spinners, gets its share.
    invocation.progress("[TEMPORALISO] a 3 ms / 10 ms reservation wanting the CPU, beside two spinning threads ...");
    let (budget, period) = (3 * MS, 10 * MS);
    let started = time::now_ns();
    let until = started + duration_ns;
    spinner(until).map_err(spawn_error)?;
    spinner(until).map_err(spawn_error)?;
    hog(budget, period, until, &results).map_err(spawn_error)?;
    let hogged = collect(&results, 1, until)[0].stats;
    let window_ns = until - started;
    let share_per_mille = hogged.runtime_ns * 1000 / window_ns;
    let reserved_per_mille = budget * 1000 / period;
    checks.push(Check {
        name: "cpu_isolation",
        passed: share_per_mille.abs_diff(reserved_per_mille) <= CPU_SHARE_TOLERANCE_PER_MILLE,
        figures: json!({
            "reserved_per_mille": reserved_per_mille,
            "share_per_mille": share_per_mille,
            "runtime_ns": hogged.runtime_ns,
            "window_ns": window_ns,
            "throttles": hogged.throttles,
            "tolerance_per_mille": CPU_SHARE_TOLERANCE_PER_MILLE,
            "best_effort_spinners": 2,
        }),
        summary: alloc::format!(
            "{share_per_mille} per mille of the CPU for a {reserved_per_mille} per mille reservation beside two spinners"
        ),
    });

    // 10: memory isolation: a pool at its budget does not make another budgeted pool fail.
    invocation.progress("[TEMPORALISO] a pool exhausting its 4 MiB budget beside a 1 MiB pool ...");
    let memory = memory_isolation(&mut KernelFrames, 4 << 20, 1 << 20, MEMORY_ISOLATION_STEPS);
    checks.push(Check {
        name: "memory_isolation",
        passed: memory.isolated(),
        figures: json!(memory),
        summary: alloc::format!(
            "greedy pool refused {} times by its own budget ({} by the machine); steady pool {} allocations, {} failed",
            memory.greedy_limit_refusals,
            memory.greedy_frame_refusals,
            memory.steady_allocations,
            memory.steady_failures
        ),
    });

    let passed = checks.iter().filter(|check| check.passed).count();
    let mut human = String::from("=== Temporal isolation ===");
    for check in &checks {
        human.push_str(&alloc::format!(
            "\n  {:24} {}  {}",
            check.name,
            if check.passed { "PASS" } else { "FAIL" },
            check.summary
        ));
    }
    human.push_str(&alloc::format!("\n  {passed} of {} checks passed", checks.len()));
    let list: Vec<Value> = checks
        .iter()
        .map(|check| json!({ "name": check.name, "passed": check.passed, "figures": check.figures }))
        .collect();
    let reply = Reply::new(human, json!({ "checks": list, "passed": passed, "total": checks.len() }));
    Ok(if passed == checks.len() {
        reply
    } else {
        reply.failing(ShellError::new(
            "checks-failed",
            alloc::format!("{} of {} checks failed", checks.len() - passed, checks.len()),
        ))
    })
}
