//! Learning tests on the host: the real pool and frame allocator, the real agent.

use super::*;
use crate::test_support::frames;
use alloc::collections::BTreeSet;
use alloc::vec;

fn learn(seed: u64, episodes: u32, noise_per_mille: u32) -> LearningReport {
    let config = LearningConfig { episodes, noise_per_mille, seed };
    let mut source = frames();
    let before = source.stats();
    let mut agent = new_agent(seed, episodes);
    let report = run_learning(&config, &mut source, &mut agent, &mut |_| {});
    assert_eq!(source.stats(), before, "every episode gives its pages back");
    report
}

fn mean_improvement(reports: &[LearningReport]) -> f64 {
    reports.iter().map(|report| report.improvement_percent).sum::<f64>() / reports.len() as f64
}

#[test]
fn ten_seeds_learn_beat_every_baseline_on_held_out_seeds_and_add_up() {
    let reports: Vec<LearningReport> = (1..=10).map(|seed| learn(seed, 20, 0)).collect();
    let mut learned_means = Vec::new();
    let mut baseline_means = [0.0; 5];
    for report in &reports {
        let seed = report.config.seed;
        let held_out = &report.held_out;
        let names: Vec<&str> = held_out.baselines.iter().map(|baseline| baseline.name).collect();
        assert_eq!(names, ["nothing", "reclaim", "throttle", "heuristic", "random"]);
        assert_eq!(held_out.workload_seeds, held_out_seeds(seed));
        assert_eq!(held_out.learned_rewards.len(), HELD_OUT_EPISODES as usize);
        for (index, baseline) in held_out.baselines.iter().enumerate() {
            assert_eq!(baseline.rewards.len(), HELD_OUT_EPISODES as usize);
            assert_eq!(baseline.mean, mean(&baseline.rewards));
            baseline_means[index] += baseline.mean / 10.0;
            assert!(baseline.mean <= held_out.best_baseline_mean, "seed {seed}: {} above the best", baseline.name);
        }
        learned_means.push(held_out.learned_mean);
        let means: Vec<String> =
            held_out.baselines.iter().map(|b| alloc::format!("{} {:.1}", b.name, b.mean)).collect();
        std::println!(
            "seed {seed}: learned {:.1}; {}; best {}: p {:?}, d_z {:?}; greedy curve {:?}; first {} last {}",
            held_out.learned_mean,
            means.join(", "),
            held_out.best_baseline,
            held_out.test.wilcoxon.map(|test| test.p_value),
            held_out.effect_size_dz,
            report.greedy_curve.iter().map(|point| point.mean_reward).collect::<Vec<_>>(),
            report.episodes[0].reward,
            report.episodes[19].reward
        );
        // The learned policy beats the best of them, seed by seed, with the exact paired test.
        let wilcoxon = held_out.test.wilcoxon.expect("Wilcoxon computed");
        assert_eq!(wilcoxon.method, sis_metrics::WilcoxonMethod::Exact);
        assert!(
            held_out.beats_best_baseline
                && wilcoxon.p_value < SIGNIFICANCE
                && held_out.learned_mean > held_out.best_baseline_mean,
            "seed {seed}: learned {} against {} {} (p {})",
            held_out.learned_mean,
            held_out.best_baseline,
            held_out.best_baseline_mean,
            wilcoxon.p_value
        );
        assert!(held_out.effect_size_dz.is_some_and(|dz| dz > 1.0), "seed {seed}: d_z {:?}", held_out.effect_size_dz);
        assert_eq!(report.status, Status::Pass, "seed {seed}: {}", report.convergence_reason);
        // The greedy curve: before training, after episode 10, at the end (the held-out learned mean).
        let curve: Vec<u32> = report.greedy_curve.iter().map(|point| point.after_episodes).collect();
        assert_eq!(curve, [0, 10, 20]);
        assert_eq!(report.greedy_curve[2].mean_reward, held_out.learned_mean);
        let before = report.greedy_curve[0].mean_reward;
        assert_eq!(report.improvement_percent, (held_out.learned_mean - before) / before.abs() * 100.0);
        assert_eq!(report.greedy_curve[0].rewards.len(), HELD_OUT_EPISODES as usize);
        assert!(report.improved && report.improvement_test.wilcoxon.is_some_and(|test| test.p_value < SIGNIFICANCE));
        // Refusing every request earns nothing, exactly.
        assert_eq!(held_out.baselines[2].rewards, [0; HELD_OUT_EPISODES as usize]);
        // Arithmetic the earlier system got wrong: totals, averages and counts agree.
        let rewards: Vec<i64> = report.episodes.iter().map(|episode| episode.reward).collect();
        assert_eq!(report.total_reward, rewards.iter().sum::<i64>());
        assert_eq!(report.decisions, 20 * DECISIONS_PER_EPISODE as u64);
        assert_eq!(report.average_reward_per_decision, report.total_reward as f64 / report.decisions as f64);
        assert_eq!(report.explorations + report.exploitations, report.decisions);
        assert_eq!(report.episodes.iter().map(|episode| episode.explorations as u64).sum::<u64>(), report.explorations);
        for episode in &report.episodes {
            let outcome = &episode.outcome;
            assert_eq!(
                outcome.reward,
                outcome.served as i64 * REWARD_SERVED
                    + outcome.oom_events as i64 * REWARD_OOM
                    + outcome.cache_dropped as i64 * REWARD_DROPPED
                    + outcome.throttled as i64 * REWARD_THROTTLED
            );
            assert_eq!(outcome.actions.iter().sum::<u32>(), DECISIONS_PER_EPISODE);
        }
        assert_eq!(report.first_window_mean, rewards[..5].iter().sum::<i64>() as f64 / 5.0);
        assert_eq!(report.last_window_mean, rewards[15..].iter().sum::<i64>() as f64 / 5.0);
        let distinct: BTreeSet<i64> = rewards.iter().copied().collect();
        assert!(distinct.len() >= 15, "seed {seed}: rewards barely differ: {rewards:?}");
    }
    let learned = learned_means.iter().sum::<f64>() / 10.0;
    std::println!(
        "held-out means over seeds 1-10: learned {learned:.1}, baselines {:?} {baseline_means:?}",
        BaselinePolicy::ALL.map(BaselinePolicy::name)
    );
    let firsts: BTreeSet<i64> = reports.iter().map(|report| report.episodes[0].reward).collect();
    assert_eq!(firsts.len(), 10, "every seed gives a different first episode");
}

/// The seed's CI rule (`validate_stress_results.py`): the last episode's reward at least 15 % above the
/// first's, divided by the first (so it must be positive); a learner that learns passes it on any seed.
#[test]
fn many_seeds_pass_the_seed_validator_rule_and_beat_every_baseline() {
    let mut seeds: Vec<u64> = (11..=30).collect();
    seeds.push(31337);
    for seed in seeds {
        let report = learn(seed, 20, 0);
        let (first, last) = (report.episodes[0].reward, report.episodes[19].reward);
        assert!(first > 0, "seed {seed}: first episode {first}");
        let improvement = (last - first) as f64 / first as f64 * 100.0;
        assert!(improvement >= 15.0, "seed {seed}: first {first}, last {last}: {improvement:.1} %");
        assert_eq!(report.status, Status::Pass, "seed {seed}: {}", report.convergence_reason);
    }
}

#[test]
fn the_same_seed_replays_exactly() {
    let a = learn(4, 10, 0);
    let b = learn(4, 10, 0);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn with_some_noise_it_still_learns_and_with_full_noise_it_says_it_did_not_converge() {
    let noisy: Vec<LearningReport> = (1..=10).map(|seed| learn(seed, 20, 150)).collect();
    let improvement = mean_improvement(&noisy);
    assert!(improvement >= 20.0, "noise 0.15: mean improvement {improvement:.1} %");
    let ahead = noisy.iter().filter(|report| report.held_out.learned_mean > report.held_out.best_baseline_mean).count();
    assert_eq!(ahead, 10, "noise 0.15: ahead of the best baseline on every seed");
    for seed in 1..=5 {
        let report = learn(seed, 20, 1000);
        assert!(!report.converged, "seed {seed}: {}", report.convergence_reason);
        assert_eq!(report.converged_at_episode, None);
        assert_eq!(report.status, Status::Fail);
        // Every action is replaced: the chosen ones make no difference at all.
        for baseline in &report.held_out.baselines {
            assert_eq!(report.held_out.learned_rewards, baseline.rewards, "{}", baseline.name);
        }
        assert!(!report.held_out.beats_best_baseline);
        assert!(report.episodes.iter().all(|episode| episode.outcome.noisy_actions == DECISIONS_PER_EPISODE));
    }
}

#[test]
fn bad_configurations_are_refused() {
    let config = |episodes, noise_per_mille| LearningConfig { episodes, noise_per_mille, seed: 1 };
    assert_eq!(config(20, 150).validate(), Ok(()));
    assert_eq!(config(0, 0).validate(), Err(LearningConfigError::TooFewEpisodes(0)));
    assert_eq!(config(9, 0).validate(), Err(LearningConfigError::TooFewEpisodes(9)));
    assert_eq!(config(1_001, 0).validate(), Err(LearningConfigError::TooManyEpisodes(1_001)));
    assert_eq!(config(20, 1_001).validate(), Err(LearningConfigError::NoiseOutOfRange(1_001)));
}

#[test]
fn noise_is_parsed_exactly_and_bad_text_is_refused() {
    assert_eq!(parse_noise_per_mille("0"), Ok(0));
    assert_eq!(parse_noise_per_mille("0.15"), Ok(150));
    assert_eq!(parse_noise_per_mille(".5"), Ok(500));
    assert_eq!(parse_noise_per_mille("1"), Ok(1000));
    assert_eq!(parse_noise_per_mille("1.000"), Ok(1000));
    for bad in ["-0.1", "1.5", "2", "0.1234", "abc", "", ".", "1e-2", "99999999999999999999"] {
        assert!(parse_noise_per_mille(bad).is_err(), "{bad:?} accepted");
    }
    assert!(parse_noise_per_mille("-0.1").unwrap_err().contains("negative"));
    assert!(parse_noise_per_mille("1.5").unwrap_err().contains("above 1"));
}

#[test]
fn phases_follow_the_measured_quantities() {
    assert_eq!(phase(0.9, &[1, 2, 3, 4, 5, 6]), "exploring");
    assert_eq!(phase(0.2, &[100, 100, 100, 120, 120, 120]), "improving");
    assert_eq!(phase(0.2, &[100, 100, 100, 104, 104, 104]), "exploiting");
    assert_eq!(phase(0.2, &[100, 100]), "exploiting");
}

/// Ten held-out seeds: the learned policy 100 above `reclaim` on every one but the last (where it is 50
/// below), `heuristic` and the others far below.
fn held_out_of(learned: Vec<i64>) -> HeldOut {
    let seeds: Vec<u64> = (0..10).collect();
    let baseline = |name, rewards: Vec<i64>| Baseline { name, mean: mean(&rewards), rewards };
    let reclaim: Vec<i64> = (0..10).map(|index| 1_000 + 10 * index).collect();
    compare_with_baselines(
        seeds,
        learned,
        vec![
            baseline("nothing", vec![0; 10]),
            baseline("reclaim", reclaim),
            baseline("throttle", vec![-500; 10]),
            baseline("heuristic", vec![900; 10]),
            baseline("random", vec![100; 10]),
        ],
    )
}

#[test]
fn the_best_baseline_is_tested_paired_and_must_be_beaten_at_p_below_001() {
    // Nine differences of +100 (ranks 2-10, tied: 6 each) and one of -50 (rank 1): W+ = 54, W- = 1,
    // exact two-sided p = 2 x 2/1024 (the sign patterns with W- <= 1) = 0.00390625.
    let learned: Vec<i64> = (0..10).map(|index| if index == 9 { 1_040 } else { 1_100 + 10 * index }).collect();
    let held_out = held_out_of(learned);
    assert_eq!((held_out.best_baseline, held_out.best_baseline_mean), ("reclaim", 1_045.0));
    assert_eq!(held_out.learned_mean, (1_100.0 * 9.0 + 360.0 + 1_040.0) / 10.0);
    let wilcoxon = held_out.test.wilcoxon.unwrap();
    assert_eq!((wilcoxon.w_plus, wilcoxon.w_minus), (54.0, 1.0));
    assert_eq!(wilcoxon.p_value, 4.0 / 1024.0);
    assert!(held_out.beats_best_baseline);
    let t = held_out.test.t_test.unwrap();
    assert_eq!(held_out.effect_size_dz, Some(t.mean_difference / t.std_dev));
    assert_eq!(t.mean_difference, 85.0);
    // Ahead on average but on too few seeds: 7 of 10 ahead is not p < 0.01.
    let learned: Vec<i64> = (0..10).map(|index| 1_000 + 10 * index + if index < 7 { 100 } else { -50 }).collect();
    let held_out = held_out_of(learned);
    assert!(held_out.learned_mean > held_out.best_baseline_mean);
    assert!(held_out.test.wilcoxon.unwrap().p_value > SIGNIFICANCE);
    assert!(!held_out.beats_best_baseline);
    // Equal to the best everywhere: no test, no win.
    let held_out = held_out_of((0..10).map(|index| 1_000 + 10 * index).collect());
    assert!(held_out.test.wilcoxon.is_none() && held_out.effect_size_dz.is_none() && !held_out.beats_best_baseline);
}

#[test]
fn convergence_needs_a_significant_improvement_and_win_and_finds_where_averages_settle() {
    let rewards = [10, 10, 10, 10, 10, 50, 100, 100, 100, 100, 100, 100];
    let winning = held_out_of((0..10).map(|index| 1_100 + 10 * index).collect());
    let losing = held_out_of((0..10).map(|index| 900 + 10 * index).collect());
    let (converged, _, reason) = convergence(&rewards, 5.0, false, &winning);
    assert!(!converged);
    assert!(reason.contains("did not improve with training"), "{reason}");
    let (converged, at, reason) = convergence(&rewards, 50.0, true, &losing);
    assert!(!converged && at.is_none());
    assert!(reason.contains("does not beat the best baseline (reclaim)"), "{reason}");
    // Moving averages from the one ending at episode 9 are all 100.
    assert_eq!(convergence(&rewards, 50.0, true, &winning).1, Some(9));
}

#[test]
fn the_heuristic_applies_the_meta_agents_rules_to_the_state() {
    let mut heuristic = HeuristicPolicy::default();
    // Low pressure, no OOM: nothing (rule 8).
    assert_eq!(heuristic.choose(&[0.3, 0.0, 0.2, 0.0, 0.5]), Action::Nothing as usize);
    // An OOM event: throttle (rule 1, Conservative in force).
    assert_eq!(heuristic.choose(&[0.5, 0.0, 0.2, 1.0 / 16.0, 0.5]), Action::Throttle as usize);
    // Pressure at 950 per mille: throttle (rule 2).
    assert_eq!(heuristic.choose(&[0.95, 0.0, 0.2, 0.0, 0.5]), Action::Throttle as usize);
    // 850 per mille after rising samples: the trend predicts the reclaim threshold, the level gives 800:
    // reclaim (rule 3).
    assert_eq!(heuristic.choose(&[0.85, 0.0, 0.2, 0.0, 0.5]), Action::Reclaim as usize);
    // Back at 300: the trend over five samples still predicts above 800 but with too little confidence.
    let mut fresh = HeuristicPolicy::default();
    assert_eq!(fresh.choose(&[0.85, 0.0, 0.6, 0.0, 0.5]), Action::Nothing as usize, "one sample: no trend");
}

#[test]
fn the_module_header_and_the_docs_list_every_reward_term() {
    let header = include_str!("../learning.rs");
    let docs = include_str!("../../../../docs/stress.md");
    // Points as the docs write them: +4, −6 (a minus sign, not a hyphen), 0.
    let signed = |points: i64| match points {
        0 => String::from("0"),
        points if points > 0 => alloc::format!("+{points}"),
        points => alloc::format!("−{}", -points),
    };
    for term in [
        alloc::format!("{} per allocation served", signed(REWARD_SERVED)),
        alloc::format!("{} per OOM event", signed(REWARD_OOM)),
        alloc::format!("{} per cache object dropped", signed(REWARD_DROPPED)),
        alloc::format!("{} per request throttled", signed(REWARD_THROTTLED)),
    ] {
        assert!(header.contains(&term), "the module header lacks {term:?}");
        assert!(docs.contains(&term), "docs/stress.md lacks {term:?}");
    }
}

/// A clock that moves 1 ns at every reading: each timed span that reads it twice measures exactly 1.
#[derive(Default)]
struct TickPerRead(core::cell::Cell<u64>);

impl Clock for TickPerRead {
    fn now_ns(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

#[test]
fn costs_time_every_decision_and_do_not_disturb_learning() {
    let mut source = frames();
    let before = source.stats();
    let costs = measure_costs(&mut source, &TickPerRead::default(), 3, 2);
    assert_eq!(source.stats(), before);
    assert_eq!(costs.decisions, 2 * DECISIONS_PER_EPISODE as u64);
    // Inference: two readings (1 ns); interval: from the end of inference to the start of the update (1 ns);
    // update: two readings (1 ns). Three spans per decision, each exactly 1.
    for summary in [&costs.inference, &costs.update, &costs.interval] {
        assert_eq!((summary.count, summary.min_ns, summary.max_ns), (costs.decisions, 1, 1));
    }
    assert_eq!(
        (costs.inference_total_ns, costs.update_total_ns, costs.interval_total_ns),
        (costs.decisions, costs.decisions, costs.decisions)
    );
    assert_eq!(costs.overhead_percent, 200.0);
    assert_eq!((costs.network.clone(), costs.batch_size), (vec![5, 16, 3], 64));
    // Timing does not change what the agent does: the same seed trained untimed reaches the same rewards.
    let mut timed_agent = new_agent(3, 2);
    let mut untimed_agent = new_agent(3, 2);
    for episode in 0..2 {
        let seed = workload_seed(3, episode);
        let clock = TickPerRead::default();
        let mut timed = Timed {
            agent: &mut timed_agent,
            clock: &clock,
            chosen_at_ns: 0,
            inference: LatencyHistogram::new(),
            update: LatencyHistogram::new(),
            interval: LatencyHistogram::new(),
            totals: [0; 3],
        };
        let (with_clock, _) = run_episode(&mut source, seed, 0, &mut timed);
        let (without, _) = run_episode(&mut source, seed, 0, &mut Training(&mut untimed_agent));
        assert_eq!(with_clock, without, "episode {episode}");
    }
}

/// 1,000 steps at 90 % pressure: 700 requests, 4 OOM events, nothing throttled or dropped.
fn busy_interval() -> sis_autonomy::Telemetry {
    use sis_autonomy::{MemoryStrategy, Telemetry};
    Telemetry {
        now_ns: 0,
        pressure_per_mille: 900,
        trend: None,
        cache_per_mille: 250,
        demand_per_mille: 700,
        oom_events: 4,
        steps: 1_000,
        allocation_requests: 700,
        strategy: MemoryStrategy::Balanced,
        ..Telemetry::default()
    }
}

#[test]
fn the_learned_policy_maps_telemetry_onto_the_trained_inputs_and_acts_greedily() {
    use sis_autonomy::{Directive, MetaConfig, Policy, Reason, Telemetry};
    let telemetry = busy_interval();
    assert_eq!(LearnedPolicy::state(&telemetry, Some(800)), [0.9, 0.4, 0.25, 0.25, 0.7]);
    assert_eq!(LearnedPolicy::state(&telemetry, None)[1], 0.0, "no previous decision: no change");
    assert_eq!(LearnedPolicy::state(&Telemetry { oom_events: 40, ..telemetry }, Some(0))[1..4], [1.0, 0.25, 1.0]);

    let mut agent = new_agent(1, 20);
    run_learning(&LearningConfig { episodes: 20, noise_per_mille: 0, seed: 1 }, &mut frames(), &mut agent, &mut |_| {});
    let mut policy = LearnedPolicy::new(agent.clone());
    let decision = policy.decide(&telemetry, &MetaConfig::default());
    let state = LearnedPolicy::state(&telemetry, None);
    let greedy = agent.greedy(&state);
    assert_eq!(decision.reason, Reason::Learned { action: greedy as u16 });
    let expected = [Directive::None, Directive::ProactiveReclaim, Directive::ThrottleAllocations { per_mille: 1000 }];
    assert_eq!(decision.directive, expected[greedy]);
    // Softmax over three actions: the greedy one has at least a third.
    assert!((333..=1000).contains(&decision.confidence_per_mille), "{}", decision.confidence_per_mille);
}

#[test]
fn the_learned_policy_learns_online_from_each_intervals_measured_reward() {
    use sis_autonomy::{MetaConfig, Policy, Telemetry};
    let interval = Telemetry {
        pressure_per_mille: 700,
        cache_per_mille: 200,
        requests_throttled: 100,
        cache_objects_dropped: 50,
        ..busy_interval()
    };
    // 596 served x 4, 4 OOM x -6, 100 throttled x 0, 50 dropped x -3, over 1,000 steps.
    assert_eq!(LearnedPolicy::reward(&interval), 2210.0 / 1000.0);
    assert_eq!(LearnedPolicy::reward(&Telemetry { steps: 0, ..interval }), 2210.0, "no step: no division by 0");

    let mut agent = new_agent(2, 10);
    run_learning(&LearningConfig { episodes: 10, noise_per_mille: 0, seed: 2 }, &mut frames(), &mut agent, &mut |_| {});
    let (steps_before, _) = agent.training();
    let replay_before = agent.replay_len();
    let mut policy = LearnedPolicy::new(agent.clone());
    let config = MetaConfig::default();
    let mut updates = 0;
    for decision in 0..41u64 {
        let pressure = 500 + (decision * 37 % 500) as u16;
        policy.decide(
            &Telemetry { pressure_per_mille: pressure, oom_events: (decision % 3) as u32, ..interval },
            &config,
        );
        updates += policy.take_updates();
    }
    // 41 decisions make 40 transitions: a training step after the 4th, 8th, ... 40th.
    assert_eq!(policy.transitions(), 40);
    assert_eq!(updates, 10);
    assert_eq!(policy.take_updates(), 0, "reported once");
    assert_eq!(policy.agent().training().0, steps_before + 10);
    assert_eq!(policy.agent().replay_len(), replay_before + 40);
    // Online steps replay 8 transitions (training replays 64), at training's rate per transition.
    assert_eq!((agent.batch_size(), policy.agent().batch_size()), (64, ONLINE_BATCH_SIZE));
    assert_ne!(policy.agent().parameters(), agent.parameters(), "the steps changed the network");
    assert_eq!(policy.agent().decisions().0, agent.decisions().0 + 41);
}

#[test]
fn training_is_a_function_of_the_configuration_down_to_the_weights_bits() {
    let train = |seed| {
        let config = LearningConfig { episodes: 3, noise_per_mille: 0, seed };
        let (agent, report) = train_agent(&config, &mut frames(), &mut |_| {});
        (agent.weights().encode().unwrap(), report.training_steps)
    };
    let (first, steps) = train(4);
    assert!(steps > 0);
    assert_eq!(train(4), (first.clone(), steps));
    assert_ne!(train(5).0, first);
}

#[test]
fn an_agent_made_from_trained_weights_acts_like_the_trained_one_at_its_exploration_floor() {
    let config = LearningConfig { episodes: 3, noise_per_mille: 0, seed: 2 };
    let (trained, _) = train_agent(&config, &mut frames(), &mut |_| {});
    let installed = agent_with_weights(&trained.weights(), 0).unwrap();
    let state = [0.98, 0.2, 0.4, 0.5, 0.8];
    let bits = |values: Vec<f32>| values.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(installed.q_values(&state)), bits(trained.q_values(&state)));
    assert_eq!(installed.shape(), [STATE_SIZE, 16, 3]);
    assert_eq!(installed.epsilon(), agent_config(1).epsilon_end);
    assert_eq!((installed.decisions(), installed.training().0, installed.replay_len()), ((0, 0), 0, 0));
    let wider = sis_ai::NetworkWeights { sizes: vec![5, 32, 3], parameters: vec![0.0; 5 * 32 + 32 + 32 * 3 + 3] };
    assert_eq!(agent_with_weights(&wider, 0).unwrap_err().code(), "architecture-mismatch");
}
