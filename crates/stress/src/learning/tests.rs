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
fn ten_seeds_learn_beat_random_on_held_out_seeds_and_add_up() {
    let reports: Vec<LearningReport> = (1..=10).map(|seed| learn(seed, 20, 0)).collect();
    let improvement = mean_improvement(&reports);
    assert!(improvement >= 20.0, "mean improvement first 5 -> last 5 episodes: {improvement:.1} %");
    for report in &reports {
        let seed = report.config.seed;
        assert!(
            report.held_out.learned_mean > report.held_out.random_mean,
            "seed {seed}: learned {} vs random {}",
            report.held_out.learned_mean,
            report.held_out.random_mean
        );
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
    let firsts: BTreeSet<i64> = reports.iter().map(|report| report.episodes[0].reward).collect();
    assert_eq!(firsts.len(), 10, "every seed gives a different first episode");
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
    for seed in 1..=5 {
        let report = learn(seed, 20, 1000);
        assert!(!report.converged, "seed {seed}: {}", report.convergence_reason);
        assert_eq!(report.converged_at_episode, None);
        assert_eq!(report.status, Status::Fail);
        // Every action is replaced: the chosen ones make no difference at all.
        assert_eq!(report.held_out.learned_rewards, report.held_out.random_rewards);
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

#[test]
fn convergence_needs_improvement_and_an_advantage_and_finds_where_averages_settle() {
    let rewards = [10, 10, 10, 10, 10, 50, 100, 100, 100, 100, 100, 100];
    assert!(!convergence(&rewards, 5.0, 50.0).0);
    assert!(!convergence(&rewards, 50.0, 5.0).0);
    // Moving averages from the one ending at episode 9 are all 100.
    assert_eq!(convergence(&rewards, 50.0, 50.0).1, Some(9));
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
    assert_eq!((costs.network.clone(), costs.batch_size), (vec![5, 16, 3], 8));
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
        requests_throttled: 0,
        cache_objects_dropped: 0,
        deadline_misses: 0,
        deadline_jobs: 0,
        command_latency_max_ns: 0,
        command_queue_depth: 0,
        commands_boosted: false,
        strategy: MemoryStrategy::Balanced,
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
    // 596 served x 2, 4 OOM x -6, 100 throttled x -1, 50 dropped x -1, over 1,000 steps.
    assert_eq!(LearnedPolicy::reward(&interval), 1018.0 / 1000.0);
    assert_eq!(LearnedPolicy::reward(&Telemetry { steps: 0, ..interval }), 1018.0, "no step: no division by 0");

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
    assert_ne!(policy.agent().parameters(), agent.parameters(), "the steps changed the network");
    assert_eq!(policy.agent().decisions().0, agent.decisions().0 + 41);
}

#[test]
#[ignore = "scratch measurement"]
fn scratch_baselines() {
    struct Rule;
    impl Controller for Rule {
        fn choose(&mut self, s: &[f32]) -> usize {
            if s[2] >= 0.2 && (s[0] >= 0.75 || s[3] > 0.0) { 1 } else if s[3] > 0.0 { 2 } else { 0 }
        }
    }
    let mut source = frames();
    let mut totals = [0f64; 7];
    for seed in 1..=10u64 {
        let mut agent = new_agent(seed, 20);
        let report = run_learning(&LearningConfig { episodes: 20, noise_per_mille: 0, seed }, &mut source, &mut agent, &mut |_| {});
        let mut row = [0f64; 7];
        for index in 0..HELD_OUT_EPISODES {
            let ws = workload_seed(seed, (1u64 << 32) + index as u64);
            let mut policies: [Box<dyn Controller>; 6] = [
                Box::new(Rule),
                Box::new(Constant(Action::Nothing)),
                Box::new(Constant(Action::Reclaim)),
                Box::new(Constant(Action::Throttle)),
                Box::new(HeuristicPolicy::default()),
                Box::new(RandomPolicy(StressRng::new(ws ^ 77))),
            ];
            for (i, p) in policies.iter_mut().enumerate() {
                row[i] += run_episode(&mut source, ws, 0, p.as_mut()).0.reward as f64 / HELD_OUT_EPISODES as f64;
            }
            row[6] += run_episode(&mut source, ws, 0, &mut Greedy(&agent)).0.reward as f64 / HELD_OUT_EPISODES as f64;
        }
        for i in 0..7 { totals[i] += row[i] / 10.0; }
        std::println!("seed {seed}: rule {:.0} nothing {:.0} reclaim {:.0} throttle {:.0} heuristic {:.0} random {:.0} learned {:.0} (report {:.0}) first {} last {}", row[0], row[1], row[2], row[3], row[4], row[5], row[6], report.held_out.learned_mean, report.episodes[0].reward, report.episodes[19].reward);
    }
    std::println!("mean: {totals:?}");
}

#[test]
#[ignore = "scratch sweep"]
fn scratch_sweep() {
    let mut source = frames();
    let variants: Vec<(&str, AgentConfig)> = vec![
        ("base", agent_config(20)),
    ];
    for (name, config) in variants {
        let mut learned = Vec::new();
        let mut heur = Vec::new();
        for seed in 1..=10u64 {
            let mut agent = Agent::new(STATE_SIZE, 3, config.clone(), seed);
            run_learning(&LearningConfig { episodes: 20, noise_per_mille: 0, seed }, &mut source, &mut agent, &mut |_| {});
            for index in 0..10 {
                let ws = workload_seed(seed, (1u64 << 32) + index as u64);
                learned.push(run_episode(&mut source, ws, 0, &mut Greedy(&agent)).0.reward);
                heur.push(run_episode(&mut source, ws, 0, &mut HeuristicPolicy::default()).0.reward);
            }
        }
        let wins = learned.iter().zip(&heur).filter(|(l, h)| l > h).count();
        let per_seed: Vec<i64> = learned.chunks(10).map(|c| c.iter().sum::<i64>() / 10).collect();
        std::println!("{name}: learned {:.0} heuristic {:.0} wins {wins}/100 per-seed {per_seed:?}", mean(&learned), mean(&heur));
    }
}
