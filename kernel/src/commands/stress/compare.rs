//! `stresstest compare`: the same seeded workloads with autonomy off and on, paired, with statistics.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::json;
use sis_autonomy::AutonomySnapshot;
use sis_hal::Clock;
use sis_platform::memory::KernelFrames;
use sis_platform::time::PlatformClock;
use sis_shell::{ArgValue, Invocation, Reply, ShellError};
use sis_stress::compare::{self, CompareReport, CompareTarget, RunRecord};
use sis_stress::learning::workload_seed;
use sis_stress::{flood_seed, run_memory_test, RunOptions};

use super::flood::{self, flood_config};
use super::{config, multi, MEMORY_PORT};
use crate::commands::autonomy::{self, METRICS};
use crate::commands::Kernel;

/// `<memory|commands|multi|chaos>` as a test type.
pub fn parse_target(text: &str) -> Result<ArgValue, String> {
    CompareTarget::parse(text).map(|_| ArgValue::Str(String::from(text)))
}

/// Runs one workload of `target` with workload seed `seed`; returns its figures.
fn run_once(
    target: CompareTarget,
    invocation: &Invocation<'_>,
    kernel: &Kernel,
    seed: u64,
) -> Result<Vec<u64>, ShellError> {
    let memory_config = sis_stress::StressTestConfig { seed, ..config(&invocation.args) };
    let flood = flood_config(&invocation.args, flood_seed(seed));
    match target {
        CompareTarget::Memory => {
            let max_steps = invocation.args.u64("steps").filter(|&steps| steps > 0);
            let memory_config = match max_steps {
                Some(_) => sis_stress::StressTestConfig { duration_ms: 3_600_000, ..memory_config },
                None => memory_config,
            };
            let options = RunOptions { port: Some(&MEMORY_PORT), max_steps, ..RunOptions::default() };
            let report = run_memory_test(&memory_config, &mut KernelFrames, &PlatformClock, &mut |_| {}, options);
            Ok(compare::memory_values(&report))
        }
        CompareTarget::Commands => Ok(compare::command_values(&flood::run(flood, kernel.clone(), &mut |_| {})?)),
        CompareTarget::Multi => {
            Ok(compare::multi_values(&multi::run_multi(memory_config, flood, kernel, &mut |_| {})?))
        }
        CompareTarget::Chaos => {
            Ok(compare::chaos_values(&super::chaos::run_compared(kernel, seed, memory_config.duration_ms)))
        }
    }
}

/// `stresstest compare`.
pub fn compare(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let target = CompareTarget::parse(invocation.args.str("test").unwrap_or_default())
        .map_err(|error| ShellError::new(sis_shell::codes::INVALID_VALUE, error))?;
    if target != CompareTarget::Memory && invocation.args.u64("steps").is_some_and(|steps| steps > 0) {
        return Err(ShellError::new(
            sis_shell::codes::INVALID_VALUE,
            "--steps applies to memory only: commands, multi and chaos run for --duration",
        ));
    }
    let runs = invocation.args.u64("runs").unwrap_or(compare::DEFAULT_RUNS as u64) as u32;
    let memory_config = config(&invocation.args);
    memory_config
        .validate()
        .map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    let seed = memory_config.seed;
    invocation.progress(&alloc::format!(
        "=== Autonomy Comparison: {} ===\nPairs: {runs}, seed {seed}, {} ms per run; each pair runs one workload seed with autonomy off, then on (a fresh meta-agent)",
        target.name(),
        memory_config.duration_ms
    ));
    let mut stress = crate::events::StressRun::start("compare", seed, None);
    let was_enabled = autonomy::enabled();
    let mut off = (Vec::new(), AutonomySnapshot::default());
    let mut on = (Vec::new(), AutonomySnapshot::default());
    let (mut on_elapsed_ns, mut on_cpu_ns) = (0u64, 0u64);
    let outcome = (|| -> Result<(), ShellError> {
        for index in 0..runs {
            let run_seed = workload_seed(seed, index as u64);
            autonomy::set_enabled(false)?;
            METRICS.reset();
            let values = run_once(target, invocation, kernel, run_seed)?;
            let counted = METRICS.snapshot();
            off.0.push(RunRecord { seed: run_seed, values, interventions: counted.total_interventions });
            off.1 = off.1.add(&counted);

            autonomy::restart_agent()?;
            METRICS.reset();
            autonomy::set_enabled(true)?;
            let (cpu_before, started) = (autonomy::thread_cpu_ns(), PlatformClock.now_ns());
            let values = run_once(target, invocation, kernel, run_seed);
            autonomy::set_enabled(false)?;
            on_elapsed_ns += PlatformClock.now_ns() - started;
            on_cpu_ns += autonomy::thread_cpu_ns() - cpu_before;
            let values = values?;
            let counted = METRICS.snapshot();
            invocation.progress(&alloc::format!(
                "[COMPARE] pair {}/{runs} (seed {run_seed}): {} off {} on {}, interventions {}",
                index + 1,
                compare::figures(target)[0].label,
                off.0[index as usize].values[0],
                values[0],
                counted.total_interventions
            ));
            on.0.push(RunRecord { seed: run_seed, values, interventions: counted.total_interventions });
            on.1 = on.1.add(&counted);
            stress.parts_done(u64::from(index) + 1, u64::from(runs), &alloc::format!("pair {}", index + 1));
        }
        Ok(())
    })();
    let outcome = autonomy::set_enabled(was_enabled).and(outcome);
    if let Err(error) = outcome {
        let failed = Err(error);
        stress.finish(&failed);
        return failed;
    }
    let report = compare::compare_report(target, seed, memory_config.duration_ms, off, on);
    let cpu_share_per_mille = (on_cpu_ns * 1000).checked_div(on_elapsed_ns).unwrap_or(0);
    let human = human(&report, on_cpu_ns, cpu_share_per_mille);
    let result = serde_json::to_value(&report)
        .map_err(|error| ShellError::new("internal", alloc::format!("report encoding failed: {error}")))
        .map(|mut value| {
            value["autonomy_thread_cpu_ns"] = json!(on_cpu_ns);
            value["autonomy_on_elapsed_ns"] = json!(on_elapsed_ns);
            value["autonomy_cpu_share_per_mille"] = json!(cpu_share_per_mille);
            Reply::new(human, json!({ "compare": value }))
        });
    stress.finish(&result);
    result
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        alloc::format!("{value:.0}")
    } else {
        alloc::format!("{value:.2}")
    }
}

/// A p-value in four decimals, or in scientific notation below 0.001 (where four decimals would hide it).
fn p_text(p: f64) -> String {
    if p >= 0.001 {
        alloc::format!("{p:.4}")
    } else {
        alloc::format!("{p:.1e}")
    }
}

fn human(report: &CompareReport, cpu_ns: u64, cpu_share_per_mille: u64) -> String {
    let mut text = alloc::format!(
        "\n=== Comparative Results ({}, {} pairs, seed {}) ===\n  {:<30} {:>12} {:>12} {:>9} {:>10} {:>8} {:>11} {:>8}  verdict",
        report.test.name(),
        report.runs,
        report.seed,
        "mean per run",
        "autonomy off",
        "autonomy on",
        "change",
        "Wilcoxon p",
        "Holm p",
        "informative",
        "min p"
    );
    let mut underpowered = 0;
    for comparison in &report.comparisons {
        let change = comparison.change_percent.map_or(String::from("n/a"), |change| alloc::format!("{change:+.1}%"));
        let p = comparison.p_value.map_or(String::from("n/a"), p_text);
        // Even as the largest p of its family (Holm multiplier 1) it could not go below the level.
        let cannot_differ = comparison.min_reachable_p >= report.differs_level;
        underpowered += usize::from(cannot_differ);
        text.push_str(&alloc::format!(
            "\n  {:<30} {:>12} {:>12} {:>9} {:>10} {:>8} {:>11} {:>8}  {}{}",
            comparison.figure.label,
            number(comparison.off_mean),
            number(comparison.on_mean),
            change,
            p,
            p_text(comparison.p_value_adjusted),
            alloc::format!("{}/{}", comparison.informative_pairs, report.runs),
            p_text(comparison.min_reachable_p),
            comparison.verdict.as_str(),
            if cannot_differ { " *" } else { "" }
        ));
    }
    text.push_str(
        "\n  informative: pairs whose difference is not zero; min p: the smallest Wilcoxon p they could give",
    );
    if underpowered > 0 {
        text.push_str(&alloc::format!(
            "\n  * {underpowered} figure(s) cannot reach p < {} with their informative pairs, however large the effect",
            report.differs_level
        ));
    }
    let counters = &report.autonomy_on.interventions.counters;
    text.push_str(&alloc::format!(
        "\n\n  AI interventions: off {}, on {} (strategy switches {}, proactive compactions {}, throttles {}); outcomes succeeded {}, failed {}",
        report.autonomy_off.interventions.total,
        report.autonomy_on.interventions.total,
        counters.strategy_switches,
        counters.proactive_compactions,
        counters.allocation_throttles,
        counters.interventions_succeeded,
        counters.interventions_failed
    ));
    text.push_str(&alloc::format!(
        "\n  Autonomy thread CPU during the on runs: {} us ({}.{}% of their time)",
        cpu_ns / 1_000,
        cpu_share_per_mille / 10,
        cpu_share_per_mille % 10
    ));
    let oom_figures = (report.oom_p_value_adjusted, report.oom_informative_pairs, report.oom_min_reachable_p);
    let summary = match (report.oom_reduction_percent, report.oom_p_value, oom_figures) {
        (_, _, (None, _, _)) => String::from("no memory figures: the meta-agent watches only the memory workload's pool"),
        (Some(reduction), Some(p), (Some(adjusted), Some(informative), Some(floor))) => alloc::format!(
            "OOM events {} by {:.1}% (Wilcoxon p = {}, Holm p = {}; {informative} informative pairs, smallest reachable p {}): {}",
            if reduction >= 0.0 { "reduced" } else { "increased" },
            reduction.abs(),
            p_text(p),
            p_text(adjusted),
            p_text(floor),
            if report.oom_reduction_significant {
                alloc::format!("significant (Holm p < {})", report.significant_level)
            } else {
                String::from("not significant")
            }
        ),
        (Some(_), _, _) => String::from("OOM events: no pair differs, nothing to test"),
        (None, _, _) => String::from("OOM events: none with autonomy off, nothing to reduce"),
    };
    text.push_str(&alloc::format!(
        "\n\n  Improvement: {summary}\n  Figures (Holm-Bonferroni over {}, family-wise p < {}): {} better, {} worse, {} changed, {} unchanged\n  Measurable improvements (the seed asks for 5+): {}",
        report.family_size,
        report.differs_level,
        report.figures_better,
        report.figures_worse,
        report.figures_changed,
        report.figures_unchanged,
        report.figures_better
    ));
    text
}
