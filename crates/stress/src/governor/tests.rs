//! Governor tests on the host: the real workload, pool and meta-agent, decisions driven by a fake clock.

use super::*;
use crate::test_support::governed_run;
use core::cell::RefCell;
use sis_autonomy::{AutonomySnapshot, NeverAct};

#[test]
fn the_default_configurations_are_valid() {
    assert!(Governor::heuristic().is_ok());
}

#[test]
fn a_governor_that_never_acts_changes_nothing() {
    for seed in [2, 6] {
        let (off, none) = governed_run(seed, None);
        let never = Governor::new(Box::new(NeverAct), MetaConfig::default(), StrategyConfig::default()).unwrap();
        let (on, counted) = governed_run(seed, Some(never));
        assert_eq!(format!("{off:?}"), format!("{on:?}"), "seed {seed}");
        assert_eq!(counted.total_interventions, 0);
        assert_eq!(none, AutonomySnapshot::default());
    }
}

#[test]
fn the_heuristic_keeps_headroom_once_pressure_is_predicted_and_every_intervention_is_counted() {
    // Seed 2 reaches the limit without autonomy: 30 OOM events in one second.
    let (off, _) = governed_run(2, None);
    let (on, counted) = governed_run(2, Some(Governor::heuristic().unwrap()));
    assert_eq!(off.oom_events, 30);
    assert_eq!(on.oom_events, 0);
    // One switch to Conservative (the pressure cap) and one reclaim carried out by the workload.
    assert_eq!((counted.strategy_switches, counted.proactive_compactions), (1, 1));
    assert_eq!(counted.total_interventions, 2);
    assert_eq!(on.directed_compactions, counted.proactive_compactions);
    // The cost: the workload held lower serves fewer allocations.
    assert_eq!((off.average_pressure_per_mille, on.average_pressure_per_mille), (775, 635));
    assert!(on.allocations < off.allocations);
}

#[test]
fn a_naive_threshold_policy_on_the_same_samples_flaps_where_the_governor_does_not() {
    // Seed 7: once Conservative holds it near 70 %, pressure hovers on the naive Balanced threshold (700).
    let governor = RefCell::new(Governor::heuristic().unwrap());
    let (_, counted) = crate::test_support::governed_run_with(7, &governor);
    let governor = governor.into_inner();
    assert_eq!((governor.naive_switches(), counted.strategy_switches), (35, 1));
}
