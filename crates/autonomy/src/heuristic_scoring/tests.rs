//! The heuristic's scores against its rules run on the real telemetry, and attributions of its decisions:
//! exact, complete, equal to the ordering reference, and made with the thresholds the decision saw.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::*;
use crate::shapley::tests::{reference, Generator, TOLERANCE};
use crate::{
    attribute, AttributionError, AutonomyMetrics, Heuristic, MetaAgent, NeverAct, Policy, StrategyConfig,
    StrategyController, TREND_CAPACITY,
};
use sis_safety::{Guardrails, LiveState};

/// Telemetry drawn around the rules' thresholds, so every rule applies in some draws and not in others.
fn random_telemetry(generator: &mut Generator) -> Telemetry {
    let mut pick = |values: &[u64]| values[(generator.next() % values.len() as u64) as usize];
    let trend = match pick(&[0, 1, 2]) {
        0 => None,
        _ => Some(TrendEstimate {
            samples: pick(&[1, 2, 8, 16]) as u16,
            capacity: TREND_CAPACITY as u16,
            latest_per_mille: 500,
            slope_per_mille_per_s: 0,
            horizon_ns: 200_000_000,
            predicted_per_mille: pick(&[0, 400, 599, 600, 799, 800, 950, 1000]) as u16,
            fit_per_mille: pick(&[0, 10, 500, 1000]) as u16,
        }),
    };
    Telemetry {
        now_ns: 0,
        pressure_per_mille: pick(&[0, 300, 599, 600, 700, 800, 850, 899, 900, 950, 1000, 1200]) as u16,
        trend,
        oom_events: pick(&[0, 0, 1, 7]) as u32,
        deadline_misses: pick(&[0, 0, 1, 3]) as u32,
        deadline_jobs: pick(&[0, 1, 2, 10]) as u32,
        command_latency_max_ns: pick(&[0, 9_999_999, 10_000_000, 15_000_000, 30_000_000]),
        command_queue_depth: pick(&[0, 63, 64, 200]) as u32,
        commands_boosted: pick(&[0, 1]) == 1,
        strategy: [MemoryStrategy::Aggressive, MemoryStrategy::Balanced, MemoryStrategy::Conservative]
            [pick(&[0, 1, 2]) as usize],
        ..Telemetry::default()
    }
}

/// Each candidate's score from the rules run on the telemetry itself (not on its features).
fn scores_on_telemetry(
    rules: &[Option<Decision>],
    candidate: fn(Directive) -> Option<usize>,
    count: usize,
) -> Vec<f64> {
    (0..count)
        .map(|wanted| {
            if wanted == 0 {
                return 0.0;
            }
            rules
                .iter()
                .flatten()
                .find(|decision| candidate(decision.directive) == Some(wanted))
                .map_or(0.0, |decision| f64::from(decision.confidence_per_mille))
        })
        .collect()
}

#[test]
fn the_features_carry_everything_the_rules_read_and_the_chosen_directive_scores_its_confidence() {
    let mut generator = Generator(5);
    let configs = [
        MetaConfig::default(),
        MetaConfig {
            relax_below_per_mille: 0,
            reclaim_at_per_mille: 1,
            throttle_at_per_mille: 2,
            ..MetaConfig::default()
        },
        MetaConfig { latency_limit_ns: 0, queue_depth_limit: 1, deadline_miss_limit: 3, ..MetaConfig::default() },
    ];
    let mut chosen_by_kind = [0u32; 5];
    for round in 0..20_000 {
        let telemetry = random_telemetry(&mut generator);
        let config = configs[round % configs.len()];
        let memory = Heuristic.decide(&telemetry, &config);
        let expected = scores_on_telemetry(&memory_rules(&telemetry, &config), memory_candidate, 5);
        assert_eq!(memory.scoring.scores(), &expected[..], "{telemetry:?}");
        let chosen = memory.scoring.chosen().unwrap();
        chosen_by_kind[chosen] += 1;
        assert_eq!(memory.scoring.scores()[chosen], f64::from(memory.confidence_per_mille), "{telemetry:?}");
        assert_eq!(memory_candidate(memory.directive), Some(chosen));
        let scheduling = Heuristic.decide_scheduling(&telemetry, &config).unwrap();
        let expected = scores_on_telemetry(&scheduling_rules(&telemetry, &config), scheduling_candidate, 4);
        assert_eq!(scheduling.scoring.scores(), &expected[..], "{telemetry:?}");
        let chosen = scheduling.scoring.chosen().unwrap();
        assert_eq!(scheduling.scoring.scores()[chosen], f64::from(scheduling.confidence_per_mille));
    }
    // Every memory candidate was chosen at some draw.
    assert!(chosen_by_kind.iter().all(|count| *count > 0), "{chosen_by_kind:?}");
}

fn agent() -> MetaAgent<Box<dyn Policy + Send>> {
    MetaAgent::new(Box::new(Heuristic) as Box<dyn Policy + Send>, MetaConfig::default()).unwrap()
}

fn controller(strategy: MemoryStrategy) -> StrategyController {
    StrategyController::new(StrategyConfig::default(), strategy).unwrap()
}

#[test]
fn high_pressure_under_conservative_is_explained_by_both_features_equally() {
    let metrics = AutonomyMetrics::new();
    let mut agent = agent();
    let telemetry = Telemetry { pressure_per_mille: 950, ..Telemetry::default() };
    let trace = agent
        .step(
            telemetry,
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Conservative),
            &metrics,
        )
        .memory;
    assert_eq!(trace.directive, Directive::ThrottleAllocations { per_mille: 625 });
    assert_eq!(trace.scoring.chosen_action(), Some("throttle_allocations"));
    assert_eq!(trace.scoring.values(), &[950.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(trace.scoring.scores(), &[0.0, 0.0, 800.0, 0.0, 0.0]);
    let mut scorer = agent.policy().scorer(&trace).unwrap();
    let attribution = attribute(&trace, &mut *scorer).unwrap();
    // Throttling needs both: high pressure alone switches to Conservative, Conservative alone with no pressure
    // relaxes to Balanced. The 800 is split evenly between them; the others contribute nothing.
    assert_eq!(attribution.shapley.contributions(), &[400.0, 0.0, 0.0, 0.0, 400.0]);
    assert_eq!((attribution.shapley.score, attribution.shapley.baseline_score), (800.0, 0.0));
    assert_eq!(attribution.baseline_scores(), &[0.0; 5]);
    assert_eq!(attribution.shapley.evaluations, 32);
    // The same pressure under Aggressive: switching to Conservative is chosen, by pressure alone.
    let trace = agent
        .step(
            telemetry,
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Aggressive),
            &metrics,
        )
        .memory;
    assert_eq!(trace.scoring.chosen_action(), Some("switch_to_conservative"));
    let attribution = attribute(&trace, &mut *agent.policy().scorer(&trace).unwrap()).unwrap();
    assert_eq!(attribution.shapley.contributions(), &[800.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn attributions_of_real_decisions_are_complete_and_equal_the_ordering_reference() {
    let mut generator = Generator(77);
    let metrics = AutonomyMetrics::new();
    let mut agent = agent();
    let mut explained = 0;
    for round in 0..400u64 {
        let telemetry = Telemetry { now_ns: round * 10_000_000, ..random_telemetry(&mut generator) };
        let strategy = telemetry.strategy;
        let traces =
            agent.step(telemetry, &LiveState::default(), &mut Guardrails::new(), &mut controller(strategy), &metrics);
        for trace in traces.iter() {
            let mut scorer = agent.policy().scorer(trace).unwrap();
            let attribution = attribute(trace, &mut *scorer).unwrap();
            let shapley = attribution.shapley;
            assert_eq!(shapley.score, trace.scoring.scores()[attribution.action]);
            assert!(shapley.completeness_error() <= TOLERANCE, "{trace:?}");
            let action = attribution.action;
            let mut scores = [0.0; 8];
            let expected = reference(trace.scoring.values(), trace.scoring.schema.baseline, |features| {
                scorer.score(features, &mut scores[..trace.scoring.schema.actions.len()]);
                scores[action]
            });
            for (got, want) in shapley.contributions().iter().zip(&expected) {
                assert!((got - want).abs() <= TOLERANCE, "{got} != {want} for {trace:?}");
            }
            explained += 1;
        }
    }
    assert!(explained > 400);
}

#[test]
fn an_old_decision_is_explained_with_the_thresholds_it_was_made_with() {
    let metrics = AutonomyMetrics::new();
    let mut agent = agent();
    let telemetry = Telemetry { pressure_per_mille: 950, ..Telemetry::default() };
    let trace = agent
        .step(
            telemetry,
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Conservative),
            &metrics,
        )
        .memory;
    agent.set_pressure_thresholds(100, 200, 960).unwrap();
    let kept = *agent.explain(trace.id).unwrap();
    let attribution = attribute(&kept, &mut *agent.policy().scorer(&kept).unwrap()).unwrap();
    assert_eq!(attribution.shapley.contributions(), &[400.0, 0.0, 0.0, 0.0, 400.0]);
    // With today's thresholds the same features score differently: the recorded scores are not reproduced.
    let today = DecisionTrace { config: *agent.config(), ..kept };
    assert_eq!(
        attribute(&today, &mut *agent.policy().scorer(&today).unwrap()),
        Err(AttributionError::ScoreMismatch { action: 2, recorded: 800.0, recomputed: 0.0 })
    );
}

#[test]
fn never_act_and_foreign_schemas_have_no_score_function() {
    let metrics = AutonomyMetrics::new();
    let mut never: MetaAgent<NeverAct> = MetaAgent::new(NeverAct, MetaConfig::default()).unwrap();
    let trace = never
        .step(
            Telemetry::default(),
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Balanced),
            &metrics,
        )
        .memory;
    assert_eq!(trace.scoring, Scoring::NONE);
    assert_eq!(trace.scoring.chosen_action(), None);
    assert_eq!(never.policy().scorer(&trace).err(), Some(ScorerUnavailable::NoScores { policy: "never-act" }));
    assert_eq!(
        RuleScorer::for_trace(&trace).err(),
        Some(ScorerUnavailable::ForeignSchema { policy: "heuristic", schema: "none" })
    );
    // A scoring without a choice has nothing to attribute.
    let mut rules = RuleScorer::for_trace(
        &agent()
            .step(
                Telemetry::default(),
                &LiveState::default(),
                &mut Guardrails::new(),
                &mut controller(MemoryStrategy::Balanced),
                &metrics,
            )
            .memory,
    )
    .unwrap();
    assert_eq!(attribute(&trace, &mut rules), Err(AttributionError::NoScores));
}

#[test]
fn a_score_function_that_does_not_reproduce_the_recorded_scores_is_refused() {
    struct Off;
    impl Scorer for Off {
        fn score(&mut self, _features: &[f64], scores: &mut [f64]) {
            scores.fill(1.0);
        }
    }
    let metrics = AutonomyMetrics::new();
    let trace = agent()
        .step(
            Telemetry::default(),
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Balanced),
            &metrics,
        )
        .memory;
    assert_eq!(
        attribute(&trace, &mut Off),
        Err(AttributionError::ScoreMismatch { action: 0, recorded: 0.0, recomputed: 1.0 })
    );
}

#[test]
fn scoring_serializes_features_and_scores_by_name() {
    let metrics = AutonomyMetrics::new();
    let telemetry = Telemetry { pressure_per_mille: 950, ..Telemetry::default() };
    let trace = agent()
        .step(
            telemetry,
            &LiveState::default(),
            &mut Guardrails::new(),
            &mut controller(MemoryStrategy::Conservative),
            &metrics,
        )
        .memory;
    let json = serde_json::to_value(trace).unwrap();
    assert_eq!(
        json["scoring"],
        serde_json::json!({
            "schema": "heuristic_memory",
            "features": { "pressure": 950.0, "predicted_pressure": 0.0, "trend_confidence": 0.0, "oom_events": 0.0, "conservative": 1.0 },
            "scores": { "none": 0.0, "switch_to_conservative": 0.0, "throttle_allocations": 800.0, "proactive_reclaim": 0.0, "switch_to_balanced": 0.0 },
            "chosen_action": "throttle_allocations",
            "model_version": 0,
        })
    );
    assert!(json.get("config").is_none());
}
