//! `stresstest learning`: train the agent on the memory-pool control problem, against every baseline.

use alloc::string::String;

use serde_json::json;
use sis_platform::memory::KernelFrames;
use sis_shell::{ArgValue, Invocation, Reply, ShellError};
use sis_stress::learning::{self, LearningConfig, LearningReport};

use super::with_status;
use crate::commands::neural::{Installed, Origin, AGENT};
use crate::commands::Kernel;

/// `--inject-noise X` as per-mille.
pub fn parse_noise(text: &str) -> Result<ArgValue, String> {
    learning::parse_noise_per_mille(text).map(|per_mille| ArgValue::U64(per_mille as u64))
}

/// `stresstest learning`.
pub fn learning(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let config = LearningConfig {
        episodes: invocation.args.u64("episodes").unwrap_or(20) as u32,
        noise_per_mille: invocation.args.u64("inject-noise").unwrap_or(0) as u32,
        seed: super::seed(&invocation.args),
    };
    config.validate().map_err(|error| ShellError::new(sis_shell::codes::OUT_OF_RANGE, alloc::format!("{error}")))?;
    crate::events::stress_run("learning", config.seed, None, |stress| {
        let report = train(&config, &mut |line| {
            invocation.progress(line);
            stress.progress();
        });
        let human = human(&report);
        let reply = Reply::new(human, json!({ "learning": report }));
        Ok(with_status(reply, report.status, false, || report.convergence_reason.clone()))
    })
}

/// Trains a fresh agent under a validated `config`, installs it for `neuralctl` and returns the report.
pub fn train(config: &LearningConfig, progress: &mut dyn FnMut(&str)) -> LearningReport {
    progress(&alloc::format!(
        "=== Learning Validation Stress Test ===\nEpisodes: {}\nNoise: {} (probability that the pool carries out a random action)\nSeed: {}\nProblem: {} decisions of {} workload steps per episode in calm, fill and burst phases, pool of {} KiB; actions nothing, reclaim, throttle",
        config.episodes,
        noise_text(config.noise_per_mille),
        config.seed,
        learning::DECISIONS_PER_EPISODE,
        learning::STEPS_PER_DECISION,
        learning::POOL_BYTES >> 10
    ));
    let (agent, report) = learning::train_agent(config, &mut KernelFrames, progress);
    *AGENT.lock() = Some(Installed {
        agent,
        seed: config.seed,
        origin: Origin::Unsigned(alloc::format!(
            "trained by stresstest learning ({} episodes, seed {}, noise {})",
            config.episodes,
            config.seed,
            noise_text(config.noise_per_mille)
        )),
    });
    report
}

fn noise_text(per_mille: u32) -> String {
    alloc::format!("{}.{:03}", per_mille / 1000, per_mille % 1000)
}

fn human(report: &LearningReport) -> String {
    let mut text = alloc::format!(
        "\n[STRESS TEST] Learning validation complete (seed {})\n  Total Rewards: {} (training, exploration included; random policy on the same seeds: {})\n  Decisions Made: {}\n  Avg Reward/Decision: {:.2}\n\n  Learning Curve:",
        report.config.seed,
        report.total_reward,
        report.baseline_total_reward,
        report.decisions,
        report.average_reward_per_decision
    );
    for window in &report.windows {
        text.push_str(&alloc::format!(
            "\n    Episodes {}-{}: avg {:.1} reward",
            window.first_episode,
            window.last_episode,
            window.mean_reward
        ));
    }
    text.push_str(&alloc::format!(
        "\n    Training rewards (exploration included): {:+.1}% ({:.1} -> {:.1}, first {w} vs last {w} episodes)",
        report.training_improvement_percent,
        report.first_window_mean,
        report.last_window_mean,
        w = learning::WINDOW
    ));
    let held = &report.held_out;
    text.push_str(&alloc::format!("\n\n  Greedy policy on {} held-out seeds:", held.workload_seeds.len()));
    for point in &report.greedy_curve {
        text.push_str(&alloc::format!(
            "\n    after {:>3} episodes: avg {:.1} reward",
            point.after_episodes,
            point.mean_reward
        ));
    }
    text.push_str(&alloc::format!("\n    Improvement: {:+.1}% (end vs before training)", report.improvement_percent));
    if let Some(by_10) = report.improvement_by_episode_10_percent {
        text.push_str(&alloc::format!("\n    By episode {}: {by_10:+.1}%", learning::CURVE_EPISODE));
    }
    text.push_str(&alloc::format!(
        "\n\n  Held-out seeds ({}): learned policy avg {:.1}",
        held.workload_seeds.len(),
        held.learned_mean
    ));
    for baseline in &held.baselines {
        text.push_str(&alloc::format!("\n    {:<9} avg {:.1}", baseline.name, baseline.mean));
    }
    let p_value = held.test.wilcoxon.map_or(String::from("n/a"), |test| alloc::format!("{:.2e}", test.p_value));
    let effect = held.effect_size_dz.map_or(String::from("n/a"), |dz| alloc::format!("{dz:.2}"));
    text.push_str(&alloc::format!(
        "\n    Best baseline: {} ({:+.1}%), Wilcoxon p {p_value}, effect size d_z {effect}: {}",
        held.best_baseline,
        held.advantage_percent,
        if held.beats_best_baseline { "beaten" } else { "not beaten (needs p < 0.01)" }
    ));
    let convergence = match report.converged_at_episode {
        Some(episode) if report.converged => alloc::format!("YES (episodes {episode}+)"),
        _ => String::from("NO"),
    };
    let ratio = report.exploration_exploitation_ratio.map_or(String::from("n/a"), |ratio| alloc::format!("{ratio:.2}"));
    text.push_str(&alloc::format!(
        "\n  Policy Convergence: {convergence}: {}\n  Exploration/Exploitation Ratio: {ratio} ({} explored, {} exploited)\n  Training steps: {}\n\n  Status: {}",
        report.convergence_reason,
        report.explorations,
        report.exploitations,
        report.training_steps,
        report.status.label()
    ));
    text
}
