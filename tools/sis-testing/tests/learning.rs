//! QEMU tests of `stresstest learning` and `neuralctl`: the agent learns inside SIS, and says so only when it did.
//!
//! Runs use deterministic mode (-icount): figures are exact functions of the seed.

use std::collections::BTreeSet;

use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig, Sis};

/// Runs `commands` in deterministic batch mode; returns the exit status and every JSON line printed.
///
/// A learning run evaluates 20 held-out seeds with eight policies (about 2 s of host time in QEMU alone), so
/// a batch of ten gets minutes on a loaded machine.
fn batch_json(commands: &str) -> (Option<i32>, Vec<Value>) {
    let config = QemuConfig::new().batch(commands).deterministic().timeout(std::time::Duration::from_secs(300));
    let result = run_batch(&config).unwrap();
    (result.status, result.json_lines().unwrap())
}

fn runs(seeds: std::ops::RangeInclusive<u64>, noise: &str) -> Vec<Value> {
    let commands: Vec<String> = seeds
        .map(|seed| format!("stresstest learning --episodes 20 --inject-noise {noise} --seed {seed} --json"))
        .collect();
    let (_, reports) = batch_json(&commands.join("; "));
    assert_eq!(reports.len(), commands.len());
    reports.into_iter().map(|report| report["learning"].clone()).collect()
}

fn number(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {report}"))
}

fn mean_improvement(reports: &[Value]) -> f64 {
    reports.iter().map(|report| number(report, "improvement_percent")).sum::<f64>() / reports.len() as f64
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn ten_seeds_learn_beat_every_baseline_on_held_out_seeds_and_add_up() {
    let reports = runs(1..=10, "0");
    let improvement = mean_improvement(&reports);
    println!("greedy policy on held-out seeds, end against before training, mean over 10 seeds: {improvement:+.1} %");
    let mut first_rewards = BTreeSet::new();
    for report in &reports {
        let held_out = &report["held_out"];
        let names: Vec<&str> =
            held_out["baselines"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["nothing", "reclaim", "throttle", "heuristic", "random"]);
        assert_eq!(held_out["learned_rewards"].as_array().unwrap().len(), 20);
        let mut best = f64::MIN;
        for baseline in held_out["baselines"].as_array().unwrap() {
            let rewards: Vec<i64> =
                baseline["rewards"].as_array().unwrap().iter().map(|r| r.as_i64().unwrap()).collect();
            assert_eq!(rewards.len(), 20);
            assert_eq!(number(baseline, "mean"), rewards.iter().sum::<i64>() as f64 / 20.0);
            best = best.max(number(baseline, "mean"));
        }
        // The best baseline (the heuristic, on every seed measured) is beaten seed by seed at p < 0.01.
        assert_eq!(number(held_out, "best_baseline_mean"), best);
        assert_eq!(held_out["best_baseline"], "heuristic", "{held_out}");
        assert!(number(held_out, "learned_mean") > best, "{held_out}");
        assert_eq!(held_out["test"]["wilcoxon"]["method"], "exact");
        assert!(number(&held_out["test"]["wilcoxon"], "p_value") < 0.01, "{held_out}");
        assert!(number(held_out, "effect_size_dz") > 1.0, "{held_out}");
        assert_eq!(held_out["beats_best_baseline"], true);
        assert_eq!(held_out["baselines"][2]["mean"], 0.0, "always throttling refuses every request: 0 points");
        assert_eq!(report["improved"], true);
        assert!(number(&report["improvement_test"]["wilcoxon"], "p_value") < 0.01);
        assert_eq!(report["status"], "pass", "{}", report["convergence_reason"]);
        // The greedy curve: before training, after episode 10, at the end (= the held-out learned mean).
        let curve = report["greedy_curve"].as_array().unwrap();
        let after: Vec<u64> = curve.iter().map(|point| point["after_episodes"].as_u64().unwrap()).collect();
        assert_eq!(after, [0, 10, 20]);
        assert_eq!(number(&curve[2], "mean_reward"), number(held_out, "learned_mean"));
        let before = number(&curve[0], "mean_reward");
        let expected = (number(held_out, "learned_mean") - before) / before.abs() * 100.0;
        assert!((number(report, "improvement_percent") - expected).abs() < 1e-9);
        let by_10 = (number(&curve[1], "mean_reward") - before) / before.abs() * 100.0;
        assert!((number(report, "improvement_by_episode_10_percent") - by_10).abs() < 1e-9);
        // Training rewards: totals and windows add up, and the seed's rule (first to last episode) holds.
        let rewards: Vec<i64> =
            report["episodes"].as_array().unwrap().iter().map(|episode| episode["reward"].as_i64().unwrap()).collect();
        assert_eq!(rewards.len(), 20);
        assert!(rewards.iter().collect::<BTreeSet<_>>().len() >= 15, "rewards barely differ: {rewards:?}");
        assert!(rewards[0] > 0 && rewards[19] as f64 >= 1.15 * rewards[0] as f64, "{rewards:?}");
        first_rewards.insert(rewards[0]);
        let total: i64 = rewards.iter().sum();
        assert_eq!(report["total_reward"].as_i64(), Some(total));
        let decisions = report["decisions"].as_u64().unwrap();
        assert_eq!(decisions, 20 * 40);
        assert_eq!(number(report, "average_reward_per_decision"), total as f64 / decisions as f64);
        let first = rewards[..5].iter().sum::<i64>() as f64 / 5.0;
        let last = rewards[15..].iter().sum::<i64>() as f64 / 5.0;
        assert_eq!(number(report, "first_window_mean"), first);
        assert_eq!(number(report, "last_window_mean"), last);
        assert!((number(report, "training_improvement_percent") - (last - first) / first.abs() * 100.0).abs() < 1e-9);
    }
    assert_eq!(first_rewards.len(), 10, "every seed gives a different first episode");
}

/// The seed's CI flow on seeds nobody picked (31337 failed it before the baselines issue): the default episode
/// count, then the validator at its default thresholds on the learning section.
#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_seed_validator_passes_on_seeds_nobody_picked() {
    let seeds = [31_337u64, 271_828, 8_675_309, 65_537, 1_000_003];
    let commands: Vec<String> = seeds.iter().map(|seed| format!("stresstest learning --seed {seed} --json")).collect();
    let (status, reports) = batch_json(&commands.join("; "));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(reports.len(), seeds.len());
    for (seed, reply) in seeds.iter().zip(&reports) {
        let learning = &reply["learning"];
        assert_eq!(learning["config"]["seed"], *seed);
        assert_eq!(learning["config"]["episodes"], 20);
        let text = serde_json::json!({ "learning": learning }).to_string();
        let verdict = sis_testing::validate::validate(&text, &sis_testing::validate::Thresholds::default());
        assert_eq!(verdict.checked, ["learning"]);
        assert!(verdict.failures.is_empty(), "seed {seed}: {:?}", verdict.failures);
        assert_eq!(learning["status"], "pass", "seed {seed}: {}", learning["convergence_reason"]);
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn noise_015_still_learns_and_noise_1_reports_no_convergence() {
    let noisy = runs(1..=10, "0.15");
    let improvement = mean_improvement(&noisy);
    println!("noise 0.15: mean improvement of the greedy policy {improvement:.1} %");
    assert!(improvement >= 20.0, "noise 0.15: mean improvement {improvement:.1} %");
    for report in &noisy {
        let held_out = &report["held_out"];
        assert!(number(held_out, "learned_mean") > number(held_out, "best_baseline_mean"), "{held_out}");
    }

    let result = run_batch(
        &QemuConfig::new().batch("stresstest learning --episodes 20 --inject-noise 1.0 --seed 3").deterministic(),
    )
    .unwrap();
    assert_eq!(result.status, Some(exit::FAIL));
    assert!(result.output.contains("Policy Convergence: NO"), "{}", result.output);
    assert!(result.output.contains("error[stress-failed]: status FAIL"), "{}", result.output);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn bad_values_get_clear_errors_and_run_nothing() {
    let mut sis = Sis::boot(&QemuConfig::new()).unwrap();
    let cases = [
        ("--episodes 0", "out-of-range"),
        ("--episodes 9", "out-of-range"),
        ("--episodes 100000000", "out-of-range"),
        ("--episodes many", "invalid-value"),
        ("--inject-noise -0.1", "invalid-value"),
        ("--inject-noise 1.5", "invalid-value"),
        ("--inject-noise lots", "invalid-value"),
    ];
    for (flags, code) in cases {
        let output = sis.run(&format!("stresstest learning {flags}")).unwrap().text;
        assert!(output.starts_with(&format!("error[{code}]: ")), "{flags}: {output:?}");
        assert_eq!(output.lines().count(), 1, "{flags}: nothing ran: {output:?}");
    }
    assert_eq!(sis.run("echo ok").unwrap().text, "ok\n");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn neuralctl_shows_infers_saves_and_loads_the_trained_agent() {
    let mut sis = Sis::boot(&QemuConfig::new().deterministic()).unwrap();
    let json = |sis: &mut Sis, command: &str| -> Value {
        let text = sis.run(&format!("{command} --json")).unwrap().text;
        serde_json::from_str(text.trim()).unwrap_or_else(|error| panic!("{command}: {error}: {text}"))
    };
    let none = json(&mut sis, "neuralctl status");
    assert_eq!(none["ok"], false);
    assert_eq!(none["error"]["code"], "no-agent");
    // `stresstest all` trains and installs an agent too; its export is a JSON file that is not an agent.
    sis.run("stresstest all --duration 50 --seed 1 --expect-failures --output-json /agents/report.json").unwrap();
    let from_suite = json(&mut sis, "neuralctl status");
    assert_eq!(from_suite["origin"], "trained by stresstest learning (20 episodes, seed 1, noise 0.000)");

    let trained = json(&mut sis, "stresstest learning --episodes 10 --seed 5");
    let status = json(&mut sis, "neuralctl status");
    assert_eq!(status["shape"], serde_json::json!([5, 16, 3]));
    assert_eq!(status["parameters"], 5 * 16 + 16 + 16 * 3 + 3);
    assert_eq!(status["decisions"], trained["learning"]["decisions"]);
    assert_eq!(status["training_steps"], trained["learning"]["training_steps"]);
    assert!(status["replay_size"].as_u64().unwrap() > 0);

    let state = "neuralctl infer 0.98 0.2 0.4 0.5 0.8";
    let before = json(&mut sis, state);
    assert_eq!(before["q_values"].as_array().unwrap().len(), 3);
    assert!(json(&mut sis, "neuralctl save /agents/trained.json")["bytes"].as_u64().unwrap() > 100);
    json(&mut sis, "neuralctl reset --seed 77");
    assert_ne!(json(&mut sis, state)["q_values"], before["q_values"], "reset installs other weights");
    assert_eq!(json(&mut sis, "neuralctl load /agents/trained.json")["parameters"], 147);
    assert_eq!(json(&mut sis, state)["q_values"], before["q_values"], "saved weights read back exactly");

    for (command, code) in [
        ("neuralctl load /agents/report.json", "bad-agent-file"),
        ("neuralctl load /agents/missing.json", "not-found"),
        ("neuralctl load /agents", "is-a-directory"),
        ("neuralctl infer 0.5 0.1 0.2 0.3", "missing-argument"),
        ("neuralctl infer 0.5 0.1 0.2 0.3 nan", "invalid-value"),
    ] {
        let reply = json(&mut sis, command);
        assert_eq!(reply["ok"], false, "{command}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{command}: {reply}");
    }
    assert_eq!(json(&mut sis, state)["q_values"], before["q_values"], "refused loads change nothing");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn neuralctl_bench_times_every_decision_and_replays_exactly() {
    let commands = "neuralctl status --json; neuralctl bench --episodes 2 --seed 4 --json; \
                    neuralctl bench --episodes 0 --json; neuralctl status --json";
    let (status, replies) = batch_json(commands);
    assert_eq!(status, Some(exit::FAIL), "the refused --episodes 0 fails the batch");
    let first = &replies[1];
    assert_eq!(first["decisions"], 80);
    for part in ["inference", "update", "interval"] {
        assert_eq!(first[part]["count"], 80, "{part}");
        let total = first[format!("{part}_total_ns")].as_u64().unwrap();
        let (min, max) = (first[part]["min_ns"].as_u64().unwrap(), first[part]["max_ns"].as_u64().unwrap());
        assert!(total >= 80 * min && total <= 80 * max, "{part}: {total} outside 80 x [{min}, {max}]");
    }
    let total = |key: &str| first[key].as_u64().unwrap() as f64;
    let overhead = (total("inference_total_ns") + total("update_total_ns")) / total("interval_total_ns") * 100.0;
    assert!((first["overhead_percent"].as_f64().unwrap() - overhead).abs() < 1e-9);
    // Deterministic mode: guest time counts instructions, so another boot replays the figures exactly.
    // (A second run in the same boot differs by a few instructions: the heap and the timer are elsewhere.)
    let (_, again) = batch_json(commands);
    assert_eq!(&again[1], first);
    assert_eq!(replies[2]["error"]["code"], "out-of-range", "{}", replies[2]);
    // The bench trains its own agent: none was installed before or after.
    assert_eq!(replies[0]["error"]["code"], "no-agent");
    assert_eq!(replies[3]["error"]["code"], "no-agent");
}

/// Trains on the host what `stresstest learning --episodes 12 --seed 5` trains in the guest.
fn host_training() -> (Vec<i64>, sis_stress::learning::LearningReport, Vec<f32>) {
    use sis_mm::{FrameAllocator, FrameMeta, PAGE_SIZE};
    use sis_stress::learning::{self, LearningConfig};
    const BASE: u64 = 0x4000_0000;
    const FRAMES: usize = 16 * 1024;
    let metadata = Box::leak(vec![FrameMeta::default(); FRAMES].into_boxed_slice());
    let mut frames = FrameAllocator::new(BASE, FRAMES, metadata).unwrap();
    frames.free_range(BASE, BASE + FRAMES as u64 * PAGE_SIZE).unwrap();
    let config = LearningConfig { episodes: 12, noise_per_mille: 0, seed: 5 };
    let mut agent = learning::new_agent(config.seed, config.episodes);
    let report = learning::run_learning(&config, &mut frames, &mut agent, &mut |_| {});
    let rewards = report.episodes.iter().map(|episode| episode.reward).collect();
    (rewards, report, agent.q_values(&[0.98, 0.2, 0.4, 0.5, 0.8]))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn training_on_the_fpu_gives_the_hosts_bits() {
    let (_, replies) = batch_json(
        "stresstest learning --episodes 12 --seed 5 --json; neuralctl infer 0.98 0.2 0.4 0.5 0.8 --json; \
         neuralctl status --json",
    );
    let [report, inferred, status] = &replies[..] else { panic!("three replies expected: {replies:?}") };
    assert_eq!(status["vector_unit"], "fpu", "the FPU loops passed their boot check: {status}");
    assert_eq!(status["vector_unit_error"], Value::Null);
    let (rewards, host, q_values) = host_training();
    let guest_rewards: Vec<i64> = report["learning"]["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|episode| episode["reward"].as_i64().unwrap())
        .collect();
    assert_eq!(rewards.len(), 12);
    assert_eq!(guest_rewards, rewards, "every episode's reward");
    assert_eq!(report["learning"]["held_out"]["learned_rewards"], serde_json::json!(host.held_out.learned_rewards));
    assert_eq!(status["training_steps"].as_u64(), Some(host.training_steps));
    // serde_json prints an f32 in its shortest round-trip form: parsed back, it is the same f32.
    let guest_q: Vec<f32> =
        inferred["q_values"].as_array().unwrap().iter().map(|value| value.as_f64().unwrap() as f32).collect();
    assert_eq!(
        guest_q.iter().map(|q| q.to_bits()).collect::<Vec<_>>(),
        q_values.iter().map(|q| q.to_bits()).collect::<Vec<_>>(),
        "Q-values after training: guest {guest_q:?}, host {q_values:?}"
    );
}
