//! `stresstest`: seeded stress tests against the real kernel subsystems.

mod all;
mod chaos;
mod compare;
mod flood;
mod learning;
mod multi;
mod redteam;

use serde_json::json;
use sis_hal::Clock;
use sis_metrics::LatencySummary;
use sis_platform::memory::KernelFrames;
use sis_platform::time::PlatformClock;
use sis_shell::{ArgSpec, CommandSpec, Invocation, ParsedArgs, Reply, ShellError, ValueKind};
use sis_stress::port::{DeadlinePort, FloodPort, PoolPort};
use sis_stress::{run_memory_test, MemoryReport, RunOptions, Status, StressTestConfig};

use super::Kernel;
use crate::{events, format};

const PERCENT: ValueKind = ValueKind::U64 { min: 0, max: 100 };
const PERCENT_FROM_1: ValueKind = ValueKind::U64 { min: 1, max: 100 };

const TARGET_PRESSURE: ArgSpec =
    ArgSpec::flag("target-pressure", PERCENT_FROM_1, "pool pressure to steer toward, percent").default("85");
const OOM_THRESHOLD: ArgSpec =
    ArgSpec::flag("oom-threshold", PERCENT_FROM_1, "pressure at which compaction starts, percent").default("90");
const FAIL_RATE: ArgSpec = ArgSpec::flag("fail-rate", PERCENT, "injected allocation failures, percent").default("0");
/// `sis_stress::DEFAULT_POOL_MIB`: where the memory workload meets its limit.
const POOL_MIB: ArgSpec =
    ArgSpec::flag("pool-mib", ValueKind::U64 { min: 1, max: 4096 }, "pool budget in MiB").default("16");
/// `stresstest all`'s pool, 64 MiB. The suite is a CI gate with the seed's thresholds (at most 10 OOM events,
/// status pass): here the workload's bursts have room, so a healthy kernel meets none and a regression shows.
/// `stresstest all --pool-mib 16` runs the suite where `stresstest memory` meets its limit.
const SUITE_POOL_MIB: ArgSpec =
    ArgSpec::flag("pool-mib", ValueKind::U64 { min: 1, max: 4096 }, "pool budget in MiB").default("64");
const LATENCY_SAMPLE: ArgSpec = ArgSpec::flag(
    "latency-sample",
    ValueKind::U64 { min: 0, max: 65_536 },
    "time one memory operation in N (0: none); timing every one slows the workload",
)
.default("64");
const QUEUE: ArgSpec =
    ArgSpec::flag("queue", ValueKind::U64 { min: 1, max: 4096 }, "queue capacity in lines").default("64");

const EPISODES: ArgSpec =
    ArgSpec::flag("episodes", ValueKind::U64 { min: 0, max: u64::MAX }, "learning episodes (10..=1000)").default("20");

/// `--rate N|max` with a per-test default.
const fn rate_flag(default: &'static str) -> ArgSpec {
    ArgSpec::flag(
        "rate",
        ValueKind::Custom { value_name: "N|max", parse: flood::parse_rate },
        "command lines per second (1..=1000000), or max",
    )
    .default(default)
}

/// The port of the memory workload's pool: the kernel's meta-agent reads and directs it (docs/autonomy.md).
/// Every run publishes to it, whether or not anything observes it.
pub static MEMORY_PORT: PoolPort = PoolPort::new();
/// The command flood's port: queue depth and latency for the meta-agent, its boost and rate limit.
pub static FLOOD_PORT: FloodPort = FloodPort::new();
/// The port of the chaos run's deadline thread: its ID, jobs and misses for the meta-agent, which relaxes its
/// deadline through the scheduler.
pub static DEADLINE_PORT: DeadlinePort = DeadlinePort::new();

/// Flags every stress test shares.
const COMMON_ARGS: [ArgSpec; 3] = [
    ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 3_600_000 }, "run time in milliseconds").default("10000"),
    ArgSpec::flag(
        "seed",
        ValueKind::U64 { min: 0, max: u64::MAX },
        "PRNG seed (default: from the clock; always printed)",
    ),
    ArgSpec::flag("expect-failures", ValueKind::Switch, "a PARTIAL PASS counts as success"),
];

/// `stresstest memory|...`.
pub static STRESSTEST: CommandSpec<Kernel> = CommandSpec {
    name: "stresstest",
    summary: "Run seeded stress tests against the real kernel subsystems",
    description: "Every figure is read from the subsystem under test. The seed is printed and exported; the same seed in deterministic mode (-icount) replays the same figures. Statuses: PASS (nothing failed), PARTIAL PASS (under half of the operations failed), FAIL, CRITICAL (a leak or a bookkeeping error); see docs/stress.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
        name: "memory",
        summary: "Drive a memory pool toward a target pressure with a seeded workload",
        description: "Mixed sizes, lifetimes and bursts in a pool with a page budget (a cgroup-like limit, so the pool can reach 100 % without starving the kernel). OOM events are real allocation failures; compaction drops cache and releases empty slabs, returning real pages.",
        args: &[
            COMMON_ARGS[0],
            COMMON_ARGS[1],
            COMMON_ARGS[2],
            TARGET_PRESSURE,
            OOM_THRESHOLD,
            FAIL_RATE,
            POOL_MIB,
            LATENCY_SAMPLE,
        ],
        subcommands: &[],
        handler: Some(memory),
        },
        CommandSpec {
            name: "commands",
            summary: "Flood the command registry with a seeded mix of read-only commands",
            description: "A producer thread offers lines to a bounded queue at --rate (intervals jittered by up to 25 %), dropping them when the queue is full; a consumer thread runs them through the same registry the shell uses. --rate max offers as fast as the consumer takes them and measures the highest sustainable rate.",
            args: &[
                COMMON_ARGS[0],
                COMMON_ARGS[1],
                COMMON_ARGS[2],
                rate_flag("50"),
                QUEUE,
            ],
            subcommands: &[],
            handler: Some(flood::commands),
        },
        CommandSpec {
            name: "multi",
            summary: "Run the memory workload and the command flood at once, as separate threads",
            description: "First the flood runs alone for a quarter of the duration (baseline); then the memory workload and the flood run together for the duration. The report has both parts and the cross effect: command latency and rate beside memory pressure relative to the baseline. The flood draws from a stream derived from the seed.",
            args: &[
                COMMON_ARGS[0],
                COMMON_ARGS[1],
                COMMON_ARGS[2],
                TARGET_PRESSURE,
                OOM_THRESHOLD,
                FAIL_RATE,
                POOL_MIB,
                LATENCY_SAMPLE,
                rate_flag("200"),
                QUEUE,
            ],
            subcommands: &[],
            handler: Some(multi::multi),
        },
        CommandSpec {
            name: "learning",
            summary: "Train the learning agent to manage a memory pool; test it against every baseline",
            description: "Each episode runs a fresh seeded workload in a 1 MiB pool, its demand in calm, fill and burst phases; every 64 steps the agent chooses nothing, reclaim or throttle and is rewarded from measured outcomes (allocations served, OOM events, cache dropped). A random policy runs the same seeds. The greedy policy runs 20 held-out seeds before training, after episode 10 and at the end; every constant policy, the meta-agent's heuristic and random run the same held-out seeds, and the learned policy must beat the best of them (paired Wilcoxon, p < 0.01) to pass. The trained agent is installed for neuralctl. Rules for phases, convergence and status: docs/stress.md.",
            args: &[
                EPISODES,
                ArgSpec::flag(
                    "inject-noise",
                    ValueKind::Custom { value_name: "X", parse: learning::parse_noise },
                    "probability 0..=1 that the pool carries out a random action instead of the chosen one",
                )
                .default("0"),
                COMMON_ARGS[1],
            ],
            subcommands: &[],
            handler: Some(learning::learning),
        },
        CommandSpec {
            name: "chaos",
            summary: "Inject seeded chaos events into the real subsystems and time the recovery of a measured steady state",
            description: "Nine kinds of event (telemetry storm, command burst, deadline pressure, hot retrain, memory spike, autonomy flip, memory release, network partition, disk I/O stall), each with parameters drawn from the seed, act on the real subsystems; kinds whose device is absent are not drawn. Before the first event and after each one the steady state is read: shell, memory pool, deadline thread, event threads, autonomy, agent, network and disk. Recovery time runs from the end of the disturbance until every check passes; past --recovery-timeout the event failed. --fail-rate arms a fault in an event's recovery path. Every event line names its replay: --replay SEED --only N. Rules: docs/stress.md.",
            args: &[
                ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 3_600_000 }, "run time in milliseconds").default("30000"),
                COMMON_ARGS[1],
                COMMON_ARGS[2],
                ArgSpec::flag("fail-rate", PERCENT, "chance that an event's recovery fault is armed, percent").default("0"),
                ArgSpec::flag(
                    "recovery-timeout",
                    ValueKind::U64 { min: 1, max: 60_000 },
                    "time a recovery may take after the disturbance ends, ms",
                )
                .default("250"),
                ArgSpec::flag("replay", ValueKind::U64 { min: 0, max: u64::MAX }, "the seed of a run to replay (with --only)"),
                ArgSpec::flag(
                    "only",
                    ValueKind::U64 { min: 1, max: u32::MAX as u64 },
                    "run only this event of the seed's sequence",
                ),
            ],
            subcommands: &[],
            handler: Some(chaos::chaos),
        },
        CommandSpec {
            name: "compare",
            summary: "Run the same seeded workloads with autonomy off and on, paired; report the difference and its significance",
            description: "Each pair runs one workload seed (derived from --seed) with autonomy off, then on with a fresh meta-agent; no workload code knows which. For every figure: both means, the change, a Wilcoxon signed-rank test (exact p) with its informative pairs and the smallest p they could reach, and a paired t-test with a 95 % confidence interval. A figure differs when its Wilcoxon p, Holm-Bonferroni adjusted over the comparison's figures, is below 0.05; the OOM reduction is significant below 0.01 (adjusted). Improvements, costs (worse) and changes are counted apart. The autonomy counters are reset for every run. docs/autonomy.md.",
            args: &[
                ArgSpec::positional(
                    "test",
                    ValueKind::Custom { value_name: "memory|commands|multi|chaos", parse: compare::parse_target },
                    "the workload to compare",
                )
                .required(),
                ArgSpec::flag("runs", ValueKind::U64 { min: 1, max: sis_stress::compare::MAX_RUNS as u64 }, "pairs")
                    .default("20"),
                ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 3_600_000 }, "run time of each run in milliseconds")
                    .default("1000"),
                ArgSpec::flag(
                    "steps",
                    ValueKind::U64 { min: 0, max: 1_000_000_000 },
                    "memory only: run each workload for this many steps instead of --duration (0: use --duration)",
                )
                .default("0"),
                COMMON_ARGS[1],
                TARGET_PRESSURE,
                OOM_THRESHOLD,
                ArgSpec::flag("pool-mib", ValueKind::U64 { min: 1, max: 4096 }, "pool budget in MiB").default("6"),
                LATENCY_SAMPLE,
                rate_flag("200"),
                QUEUE,
            ],
            subcommands: &[],
            handler: Some(compare::compare),
        },
        CommandSpec {
            name: "redteam",
            summary: "Attack the shell, filesystem, privileges, resource limits and network stack; every attempt must get its expected error",
            description: "Five classes drawn from --seed, one attempt of each per round until --duration: shell input (overlong lines, control bytes, invalid UTF-8, injection-looking text, numeric overflow, flag fuzzing), filesystem paths (traversal, huge names and paths, deep nesting), restricted commands run without the capability, resource exhaustion (huge allocations, thread bombs, huge stacks, deadline over-subscription) and malformed frames into the network stack's receive path (skipped without a network device). After every attempt: leak check (heap, frames, threads, utilization, files, sockets) and a health probe (a failed probe counts as a crash). Status: CRITICAL on a crash or leak, FAIL on an accepted attack or a wrong error, PARTIAL PASS when a class was skipped. docs/stress.md.",
            args: &[
                ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 3_600_000 }, "run time in milliseconds").default("5000"),
                COMMON_ARGS[1],
                COMMON_ARGS[2],
            ],
            subcommands: &[],
            handler: Some(redteam::redteam),
        },
        CommandSpec {
            name: "all",
            summary: "Run memory, commands, multi and learning with one seed; export the results as JSON",
            description: "Memory, commands and multi each run for --duration; learning trains for --episodes (and installs its agent for neuralctl). The export (docs/stress.md) carries the seed and every configuration and uses the seed validator's field paths: memory.oom_events, percentiles.p99 (ns), learning.episodes[].reward. --output-json writes it to the in-memory filesystem, creating parent directories.",
            args: &[
                COMMON_ARGS[0],
                COMMON_ARGS[1],
                COMMON_ARGS[2],
                SUITE_POOL_MIB,
                LATENCY_SAMPLE,
                rate_flag("50"),
                EPISODES,
                ArgSpec::flag("output-json", ValueKind::Str, "write the export to this path of the in-memory filesystem"),
            ],
            subcommands: &[],
            handler: Some(all::all),
        },
    ],
    handler: None,
};

/// A sink for the output of commands a test runs (and for the line editor's echo).
pub(super) struct Discard;

impl sis_shell::Output for Discard {
    fn write_str(&mut self, _: &str) {}
}

impl sis_shell::Echo for Discard {
    fn echo(&mut self, _: &[u8]) {}
}

/// The reply as it stands when the status is a success, else marked failed with `why` (the report stays).
pub(super) fn with_status(
    reply: Reply,
    status: Status,
    expect_failures: bool,
    why: impl FnOnce() -> alloc::string::String,
) -> Reply {
    if status.is_success(expect_failures) {
        reply
    } else {
        reply.failing(ShellError::new("stress-failed", alloc::format!("status {}: {}", status.label(), why())))
    }
}

/// The seed from `--seed`, else the clock.
pub(super) fn seed(args: &ParsedArgs) -> u64 {
    args.u64("seed").unwrap_or_else(|| PlatformClock.now_ns())
}

/// The configuration from the flags; the seed defaults to the clock.
pub(super) fn config(args: &ParsedArgs) -> StressTestConfig {
    let seed = seed(args);
    let percent = |name: &str, default: u8| args.u64(name).map_or(default, |value| value as u8);
    StressTestConfig {
        duration_ms: args.u64("duration").unwrap_or(10_000),
        seed,
        target_pressure_percent: percent("target-pressure", 85),
        oom_threshold_percent: percent("oom-threshold", 90),
        fail_rate_percent: percent("fail-rate", 0),
        expect_failures: args.switch("expect-failures"),
        pool_bytes: args.u64("pool-mib").unwrap_or(sis_stress::DEFAULT_POOL_MIB) << 20,
        latency_sample_every: args
            .u64("latency-sample")
            .map_or(sis_stress::DEFAULT_LATENCY_SAMPLE_EVERY, |every| every as u32),
    }
}

fn memory(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let config = config(&invocation.args);
    config.validate().map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    invocation.progress("=== Memory Stress Test ===");
    invocation.progress(&alloc::format!(
        "Duration: {} ms\nTarget Pressure: {}%\nOOM threshold: {}%\nFailure injection rate: {}%\nPool: {}\nLatency: {}\nSeed: {}",
        config.duration_ms,
        config.target_pressure_percent,
        config.oom_threshold_percent,
        config.fail_rate_percent,
        format::bytes(config.pool_bytes),
        sampling_text(config.latency_sample_every),
        config.seed
    ));
    events::stress_run("memory", config.seed, Some(config.duration_ms), |run| {
        let report = {
            let run = core::cell::RefCell::new(run);
            let mut on_oom = |count, bytes| run.borrow_mut().oom(count, bytes);
            run_memory_test(
                &config,
                &mut KernelFrames,
                &PlatformClock,
                &mut |line| {
                    invocation.progress(line);
                    run.borrow_mut().progress();
                },
                RunOptions { port: Some(&MEMORY_PORT), on_oom: Some(&mut on_oom), ..RunOptions::default() },
            )
        };
        let human = memory_human(&report);
        let reply = Reply::new(human, json!({ "memory": report }));
        Ok(with_status(reply, report.status, config.expect_failures, || {
            alloc::format!(
                "{} of {} allocations failed ({} injected), leak check {}",
                report.failed_allocations,
                report.allocation_attempts,
                report.injected_failures,
                if report.leak_check.passed { "passed" } else { "FAILED" }
            )
        }))
    })
}

pub(super) fn per_mille(value: u32) -> alloc::string::String {
    sis_stress::percent_text(value)
}

/// How memory operations are timed, as the reports say it.
pub(super) fn sampling_text(every: u32) -> alloc::string::String {
    match every {
        0 => "not timed".into(),
        1 => "every operation timed".into(),
        every => alloc::format!("one operation in {every} timed"),
    }
}

pub(super) fn latency_lines(name: &str, latency: &LatencySummary) -> alloc::string::String {
    alloc::format!(
        "  {name} latency ({} samples):\n    p50: {} ns\n    p95: {} ns\n    p99: {} ns\n    p99.9: {} ns\n    max: {} ns",
        format::thousands(latency.count),
        format::thousands(latency.p50_ns),
        format::thousands(latency.p95_ns),
        format::thousands(latency.p99_ns),
        format::thousands(latency.p999_ns),
        format::thousands(latency.max_ns)
    )
}

fn memory_human(report: &MemoryReport) -> alloc::string::String {
    let leak = &report.leak_check;
    alloc::format!(
        "\n[STRESS TEST] Memory test complete (seed {})\n  Peak Pressure: {}\n  Average Pressure: {}\n  OOM Events: {} ({} recovered after compaction)\n  Compaction Triggers: {} (proactive {}, reactive {}, directed by the meta-agent {})\n  Memory Recovered: {}\n  Allocations: {} of {} attempts ({} injected failures), {} frees; {} requests refused by a throttle\n\n  Latency: {}\n{}\n{}\n\n  Fragmentation at peak: {} of free RAM outside the largest block; {} free inside slabs\n  Leak check: {} (frames taken {}, returned {}; free frames in the whole kernel {} -> {})\n\n  Status: {}",
        report.config.seed,
        per_mille(report.peak_pressure_per_mille),
        per_mille(report.average_pressure_per_mille),
        report.oom_events,
        report.oom_recovered,
        report.compaction_triggers,
        report.proactive_compactions,
        report.reactive_compactions,
        report.directed_compactions,
        format::bytes(report.memory_recovered_bytes),
        format::thousands(report.allocations),
        format::thousands(report.allocation_attempts),
        format::thousands(report.injected_failures),
        format::thousands(report.frees),
        format::thousands(report.throttled_requests),
        sampling_text(report.config.latency_sample_every),
        latency_lines("Allocation", &report.allocation_latency),
        latency_lines("Deallocation", &report.deallocation_latency),
        per_mille(report.fragmentation_at_peak_per_mille),
        format::bytes(report.slab_free_bytes_at_peak),
        if leak.passed { "passed" } else { "FAILED" },
        format::thousands(leak.frames_taken),
        format::thousands(leak.frames_returned),
        format::thousands(leak.baseline_free_frames),
        format::thousands(leak.final_free_frames),
        report.status.label()
    )
}
