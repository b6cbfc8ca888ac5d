//! The learned policy's scorings and attributions on a trained network: the Q-values recorded are the
//! network's, an attribution uses the network version that decided, is complete, equals the average over every
//! ordering of the features computed with the network directly, and changes nothing in the policy.

use alloc::vec;
use alloc::vec::Vec;

use sis_autonomy::{
    attribute, AutonomyMetrics, MemoryStrategy, MetaAgent, MetaConfig, Policy, ScorerUnavailable, StrategyConfig,
    StrategyController, Telemetry,
};

use super::super::{new_agent, run_learning, LearnedPolicy, LearningConfig};
use super::*;
use crate::test_support::frames;
use sis_safety::{Guardrails, LiveState};

/// Completeness and agreement with the reference, for Q-values of magnitude below 100.
const TOLERANCE: f64 = 1e-9;

fn trained(seed: u64) -> sis_ai::Agent {
    let mut agent = new_agent(seed, 10);
    run_learning(&LearningConfig { episodes: 10, noise_per_mille: 0, seed }, &mut frames(), &mut agent, &mut |_| {});
    agent
}

/// Interval `index` of a workload that fills and empties its pool.
fn interval(index: u64) -> Telemetry {
    Telemetry {
        now_ns: index * 10_000_000,
        pressure_per_mille: (300 + index * 97 % 700) as u16,
        cache_per_mille: (index * 53 % 400) as u16,
        demand_per_mille: (500 + index * 31 % 500) as u16,
        oom_events: (index % 5) as u32 * 3,
        steps: 64,
        allocation_requests: 60,
        ..Telemetry::default()
    }
}

/// The Shapley values by their definition: every ordering of the features, the network evaluated directly.
fn reference(network: &sis_ai::Network, values: &[f64], action: usize) -> Vec<f64> {
    fn orderings(prefix: &mut Vec<usize>, left: &mut Vec<usize>, all: &mut Vec<Vec<usize>>) {
        if left.is_empty() {
            all.push(prefix.clone());
        }
        for position in 0..left.len() {
            let feature = left.remove(position);
            prefix.push(feature);
            orderings(prefix, left, all);
            prefix.pop();
            left.insert(position, feature);
        }
    }
    let mut all = Vec::new();
    orderings(&mut Vec::new(), &mut (0..values.len()).collect(), &mut all);
    let q = |point: &[f32]| f64::from(network.forward(point)[action]);
    let mut totals = vec![0.0; values.len()];
    for order in &all {
        let mut point = vec![0.0f32; values.len()];
        let mut previous = q(&point);
        for &feature in order {
            point[feature] = values[feature] as f32;
            let now = q(&point);
            totals[feature] += now - previous;
            previous = now;
        }
    }
    totals.iter().map(|total| total / all.len() as f64).collect()
}

#[test]
fn decisions_are_explained_with_the_network_version_that_made_them() {
    let agent = trained(4);
    let mut meta =
        MetaAgent::<LearnedPolicy, 64>::new(LearnedPolicy::new(agent.clone()), MetaConfig::default()).unwrap();
    let metrics = AutonomyMetrics::new();
    let mut strategy = StrategyController::new(StrategyConfig::default(), MemoryStrategy::Aggressive).unwrap();
    // Version by version, the networks as the policy trains: rebuilt here from the agent's own history.
    let mut networks = vec![(agent.training().0, agent.network().clone())];
    for index in 0..48 {
        let trace =
            meta.step(interval(index), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics).memory;
        let version = trace.scoring.model_version;
        assert_eq!(version, meta.policy().agent().training().0);
        if networks.last().unwrap().0 != version {
            networks.push((version, meta.policy().agent().network().clone()));
        }
        // The recorded scores are the Q-values of the state the policy saw.
        let state: Vec<f32> = trace.scoring.values().iter().map(|value| *value as f32).collect();
        let q: Vec<f64> = meta.policy().agent().q_values(&state).into_iter().map(f64::from).collect();
        assert_eq!(trace.scoring.scores(), &q[..]);
        assert_eq!(
            trace.scoring.chosen(),
            Some(match trace.reason {
                sis_autonomy::Reason::Learned { action } => action as usize,
                other => panic!("{other:?}"),
            })
        );
    }
    assert!(networks.len() >= 10, "the policy trained: {} versions", networks.len());
    // Every decision, explained afterwards, with its own version.
    for trace in meta.audit(48) {
        let (_, network) = networks.iter().find(|(version, _)| *version == trace.scoring.model_version).unwrap();
        let mut scorer = meta.policy().scorer(trace).unwrap();
        let attribution = attribute(trace, &mut *scorer).unwrap();
        let action = attribution.action;
        let shapley = attribution.shapley;
        assert_eq!(shapley.score, trace.scoring.scores()[action]);
        assert_eq!(shapley.baseline_score, f64::from(network.forward(&[0.0; STATE_SIZE])[action]));
        assert!(shapley.completeness_error() <= TOLERANCE, "{}", shapley.completeness_error());
        for (got, want) in shapley.contributions().iter().zip(reference(network, trace.scoring.values(), action)) {
            assert!((got - want).abs() <= TOLERANCE, "decision {}: {got} != {want}", trace.id);
        }
    }
}

#[test]
fn explaining_changes_nothing_in_the_policy() {
    let mut meta = MetaAgent::<LearnedPolicy, 64>::new(LearnedPolicy::new(trained(5)), MetaConfig::default()).unwrap();
    let metrics = AutonomyMetrics::new();
    let mut strategy = StrategyController::new(StrategyConfig::default(), MemoryStrategy::Aggressive).unwrap();
    for index in 0..20 {
        meta.step(interval(index), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &metrics);
    }
    let untouched = meta.policy().clone();
    for trace in meta.audit(20) {
        attribute(trace, &mut *meta.policy().scorer(trace).unwrap()).unwrap();
    }
    let policy = meta.policy();
    assert_eq!(policy.agent().parameters(), untouched.agent().parameters());
    assert_eq!(policy.agent().decisions(), untouched.agent().decisions());
    assert_eq!(policy.agent().training(), untouched.agent().training());
    assert_eq!(policy.transitions(), untouched.transitions());
    // The same next decision, exploration draw included.
    let config = MetaConfig::default();
    assert_eq!(meta.policy_mut().decide(&interval(20), &config), untouched.clone().decide(&interval(20), &config));
}

#[test]
fn old_network_versions_are_dropped_and_their_decisions_say_so() {
    let mut networks = Networks::default();
    let agent = new_agent(6, 10);
    for version in 0..NETWORKS_KEPT as u64 + 5 {
        networks.remember(version, agent.network());
        networks.remember(version, agent.network());
    }
    let versions: Vec<u64> = networks.versions().collect();
    assert_eq!(versions, (5..NETWORKS_KEPT as u64 + 5).collect::<Vec<_>>());
    let mut policy = LearnedPolicy::new(agent);
    let decision = policy.decide(&interval(0), &MetaConfig::default());
    let mut meta = MetaAgent::<sis_autonomy::NeverAct, 8>::new(sis_autonomy::NeverAct, MetaConfig::default()).unwrap();
    let mut strategy = StrategyController::new(StrategyConfig::default(), MemoryStrategy::Aggressive).unwrap();
    let mut trace = meta
        .step(interval(0), &LiveState::default(), &mut Guardrails::new(), &mut strategy, &AutonomyMetrics::new())
        .memory;
    trace.scoring = decision.scoring;
    assert_eq!(networks.scorer(&trace).err(), Some(ScorerUnavailable::ModelNotKept { version: 0, oldest_kept: 5 }));
    // A decision of another policy's schema is not the learned policy's to explain.
    trace.scoring = sis_autonomy::Scoring::NONE;
    assert_eq!(
        policy.scorer(&trace).err(),
        Some(ScorerUnavailable::ForeignSchema { policy: "learned", schema: "none" })
    );
    assert!(NETWORKS_KEPT * ONLINE_TRAIN_EVERY as usize >= TRACES_KEPT);
}
