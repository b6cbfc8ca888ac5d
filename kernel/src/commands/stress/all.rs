//! `stresstest all`: memory, commands, multi and learning with one seed; the export, optionally written to the filesystem.

use serde_json::json;
use sis_platform::memory::KernelFrames;
use sis_platform::time::PlatformClock;
use sis_shell::{Invocation, Reply, ShellError};
use sis_stress::learning::LearningConfig;
use sis_stress::{flood_seed, run_memory_test, RunOptions, SuiteReport};

use super::flood::{self, flood_config};
use super::with_status;
use super::{config, multi};
use crate::commands::files::{shell_error, FILES};
use crate::commands::Kernel;

/// `stresstest all`.
pub fn all(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let memory_config = config(&invocation.args);
    memory_config
        .validate()
        .map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    let flood_config = flood_config(&invocation.args, flood_seed(memory_config.seed));
    let learning_config = LearningConfig {
        episodes: invocation.args.u64("episodes").unwrap_or(20) as u32,
        noise_per_mille: 0,
        seed: memory_config.seed,
    };
    learning_config
        .validate()
        .map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    let output = invocation.args.str("output-json").map(alloc::string::String::from);
    if let Some(path) = &output {
        // Refuse a bad path before spending the run's time.
        sis_vfs::components(path).map_err(shell_error)?;
    }
    invocation.progress(&alloc::format!(
        "=== Stress Test Suite: memory, commands, multi, learning ===\nSeed: {}\nDuration: {} ms per test (learning: {} episodes)",
        memory_config.seed,
        memory_config.duration_ms,
        learning_config.episodes
    ));
    crate::events::stress_run("all", memory_config.seed, None, |stress| {
        invocation.progress("\n=== Memory Stress Test ===");
        let memory = run_memory_test(
            &memory_config,
            &mut KernelFrames,
            &PlatformClock,
            &mut |line| invocation.progress(line),
            RunOptions { port: Some(&super::MEMORY_PORT), ..RunOptions::default() },
        );
        invocation.progress(&alloc::format!("[SUITE] memory: {}", memory.status.label()));
        stress.parts_done(1, 4, "memory");
        invocation.progress("\n=== Command Flood Stress Test ===");
        let commands = flood::run(flood_config, kernel.clone(), &mut |line| invocation.progress(line))?;
        invocation.progress(&alloc::format!("[SUITE] commands: {}", commands.status.label()));
        stress.parts_done(2, 4, "commands");
        invocation.progress("");
        let multi = multi::run_multi(memory_config, flood_config, kernel, &mut |line| invocation.progress(line))?;
        invocation.progress(&alloc::format!("[SUITE] multi: {}", multi.status.label()));
        stress.parts_done(3, 4, "multi");
        invocation.progress("");
        let learning = super::learning::train(&learning_config, &mut |line| invocation.progress(line));
        invocation.progress(&alloc::format!("[SUITE] learning: {}", learning.status.label()));
        stress.parts_done(4, 4, "learning");

        let report = SuiteReport::new(memory_config.seed, memory_config.duration_ms, memory, commands, multi, learning);
        let mut human = alloc::format!("\n=== Stress Test Report (seed {}) ===", report.seed);
        for test in &report.tests {
            human.push_str(&alloc::format!("\n  {:10} {}", test.name, test.status.label()));
        }
        human.push_str(&alloc::format!(
        "\n  memory: peak pressure {}, {} OOM events, {} compactions\n  commands: p99 latency {} ns\n  learning: improvement {:+.1} % (first {w} vs last {w} episodes), held-out advantage over random {:+.1} %\n  Status: {}",
        super::per_mille(report.memory.peak_pressure_per_mille),
        report.memory.oom_events,
        report.memory.compaction_triggers,
        report.percentiles.p99,
        report.learning.improvement_percent,
        report.learning.held_out.advantage_percent,
        report.status.label(),
        w = sis_stress::learning::WINDOW
    ));
        let value = serde_json::to_value(&report)
            .map_err(|error| ShellError::new("internal", alloc::format!("report encoding failed: {error}")))?;
        if let Some(path) = &output {
            let text = serde_json::to_string(&value)
                .map_err(|error| ShellError::new("internal", alloc::format!("report encoding failed: {error}")))?;
            FILES.lock().write(path, text.as_bytes(), true).map_err(shell_error)?;
            human.push_str(&alloc::format!("\n  Report written to {path} ({} bytes)", text.len()));
        }
        let mut reply = Reply::new(human, value);
        if let Some(path) = output {
            reply.json.insert(alloc::string::String::from("output_json"), json!(path));
        }
        let expect_failures = memory_config.expect_failures;
        Ok(with_status(reply, report.status, expect_failures, || {
            let failing: alloc::vec::Vec<&str> = report
                .tests
                .iter()
                .filter(|test| !test.status.is_success(expect_failures))
                .map(|test| test.name)
                .collect();
            alloc::format!("{} did not pass", failing.join(", "))
        }))
    })
}
