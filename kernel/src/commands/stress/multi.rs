//! `stresstest multi`: the command flood alone, then beside the memory workload in its own thread; the cross effect between the two.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use serde_json::json;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::memory::KernelFrames;
use sis_platform::thread::spawn_joinable;
use sis_platform::time::PlatformClock;
use sis_shell::{Invocation, Reply, ShellError};
use sis_stress::{
    flood_seed, rate_text, run_memory_test, CrossEffect, FloodConfig, MemoryReport, MultiReport, RunOptions,
    StressTestConfig,
};

use super::flood::{self, elapsed_text, flood_config, sleep_until_tenth, FloodRun};
use super::with_status;
use super::{config, per_mille};
use crate::commands::Kernel;
use crate::format;

const MEMORY_STACK_BYTES: u64 = 256 * 1024;

/// `stresstest multi`.
pub fn multi(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let memory_config = config(&invocation.args);
    memory_config
        .validate()
        .map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    let loaded_config = flood_config(&invocation.args, flood_seed(memory_config.seed));
    // The flood's baseline runs before memory and flood run together.
    let duration_ms = memory_config.duration_ms + baseline_ms(&loaded_config);
    crate::events::stress_run("multi", memory_config.seed, Some(duration_ms), |stress| {
        let report = run_multi(memory_config, loaded_config, kernel, &mut |line| {
            invocation.progress(line);
            stress.progress();
        })?;
        let human = human(&report);
        let reply = Reply::new(human, json!({ "multi": report }));
        Ok(with_status(reply, report.status, memory_config.expect_failures, || {
            alloc::format!(
                "memory {}, commands {} (dropped {}, failed {})",
                report.memory.status.label(),
                report.commands.status.label(),
                report.commands.dropped,
                report.commands.failed
            )
        }))
    })
}

/// Run time of the flood's baseline: a quarter of the loaded flood's.
fn baseline_ms(loaded: &FloodConfig) -> u64 {
    (loaded.duration_ms / 4).max(1)
}

/// Runs the baseline flood, then memory and flood together; prints progress through `progress`.
pub fn run_multi(
    memory_config: StressTestConfig,
    loaded_config: FloodConfig,
    kernel: &Kernel,
    progress: &mut dyn FnMut(&str),
) -> Result<MultiReport, ShellError> {
    let baseline_config = FloodConfig { duration_ms: baseline_ms(&loaded_config), ..loaded_config };
    progress("=== Multi-Subsystem Stress Test ===");
    progress(&alloc::format!(
        "Duration: {} ms (plus a {} ms baseline of the flood alone)\nSeed: {} (flood stream {})",
        memory_config.duration_ms,
        baseline_config.duration_ms,
        memory_config.seed,
        loaded_config.seed
    ));

    progress("[MULTI] Baseline: command flood alone...");
    let baseline = flood::run(baseline_config, kernel.clone(), &mut |_| {})?;
    progress(&alloc::format!(
        "[MULTI] Baseline: {} commands, p99 {} ns",
        format::thousands(baseline.processed),
        format::thousands(baseline.latency.p99_ns)
    ));

    let lines: Arc<IrqMutex<Vec<String>>> = Arc::new(IrqMutex::new(Vec::new()));
    let result: Arc<IrqMutex<Option<MemoryReport>>> = Arc::new(IrqMutex::new(None));
    let (memory_lines, memory_result) = (Arc::clone(&lines), Arc::clone(&result));
    let memory = spawn_joinable("stress-memory", MEMORY_STACK_BYTES, move || {
        let report = run_memory_test(
            &memory_config,
            &mut KernelFrames,
            &PlatformClock,
            &mut |line| memory_lines.lock().push(String::from(line)),
            RunOptions { port: Some(&super::MEMORY_PORT), ..RunOptions::default() },
        );
        *memory_result.lock() = Some(report);
    })
    .map_err(|error| ShellError::new("spawn-failed", alloc::format!("cannot start the memory thread: {error}")))?;
    let flood = FloodRun::start(loaded_config, kernel.clone())?;
    for tenth in 1..=9u64 {
        sleep_until_tenth(flood.start_ns(), loaded_config.duration_ms, tenth);
        for line in core::mem::take(&mut *lines.lock()) {
            progress(&line);
        }
        let (sent, processed, dropped, _) = flood.counts();
        progress(&alloc::format!(
            "[MULTI] Commands: sent {} | processed {} | dropped {} | Elapsed: {}",
            format::thousands(sent),
            format::thousands(processed),
            format::thousands(dropped),
            elapsed_text(flood.start_ns())
        ));
    }
    memory.join();
    let loaded = flood.finish();
    for line in core::mem::take(&mut *lines.lock()) {
        progress(&line);
    }
    let Some(memory) = result.lock().take() else {
        return Err(ShellError::new("stress-failed", "the memory thread ended without a report"));
    };
    let cross_effect = CrossEffect::between(&baseline, &loaded);
    let status = memory.status.worst(loaded.status).worst(baseline.status);
    Ok(MultiReport { status, memory, commands: loaded, baseline_commands: baseline, cross_effect })
}

fn ratio(milli: u64) -> String {
    alloc::format!("{}.{:03}x", milli / 1000, milli % 1000)
}

/// The human report of a multi run.
pub fn human(report: &MultiReport) -> String {
    let (memory, baseline, loaded, cross, status) =
        (&report.memory, &report.baseline_commands, &report.commands, &report.cross_effect, report.status);
    alloc::format!(
        "\n[STRESS TEST] Multi-subsystem complete (seed {})\n  Memory:\n    Peak Pressure: {}\n    Average Pressure: {}\n    OOM Events: {} ({} recovered)\n    Compaction Triggers: {}\n    Status: {}\n  Commands (beside memory):\n    Processed: {} of {} sent ({} dropped, {} failed)\n    Achieved rate: {}\n    Latency p50 {} ns, p99 {} ns\n    Status: {}\n  Commands alone (baseline):\n    Processed: {}\n    Achieved rate: {}\n    Latency p50 {} ns, p99 {} ns\n  Cross effect (beside memory / alone):\n    p50 latency {}\n    p99 latency {}\n    achieved rate {}\n\n  Status: {}",
        memory.config.seed,
        per_mille(memory.peak_pressure_per_mille),
        per_mille(memory.average_pressure_per_mille),
        memory.oom_events,
        memory.oom_recovered,
        memory.compaction_triggers,
        memory.status.label(),
        format::thousands(loaded.processed),
        format::thousands(loaded.sent),
        format::thousands(loaded.dropped),
        format::thousands(loaded.failed),
        rate_text(loaded.achieved_rate_milli_per_s),
        format::thousands(loaded.latency.p50_ns),
        format::thousands(loaded.latency.p99_ns),
        loaded.status.label(),
        format::thousands(baseline.processed),
        rate_text(baseline.achieved_rate_milli_per_s),
        format::thousands(baseline.latency.p50_ns),
        format::thousands(baseline.latency.p99_ns),
        ratio(cross.p50_ratio_milli),
        ratio(cross.p99_ratio_milli),
        ratio(cross.rate_ratio_milli),
        status.label()
    )
}
