//! Strategy controller tests: a flapping signal against the naive policy, guards, emergency, config rules.

use super::*;
use MemoryStrategy::*;

const STEP_NS: u64 = 10_000_000;

/// Pressure that flaps every step: `low` on even steps, `high` on odd ones.
fn flapping(step: u64, low: u16, high: u16) -> u16 {
    if step.is_multiple_of(2) {
        low
    } else {
        high
    }
}

/// Switches a naive threshold policy makes on the same signal, starting from Aggressive.
fn naive_switches(config: &StrategyConfig, steps: u64, low: u16, high: u16) -> u64 {
    let mut current = Aggressive;
    let mut switches = 0;
    for step in 0..steps {
        let wanted = config.naive_target(flapping(step, low, high));
        if wanted != current {
            current = wanted;
            switches += 1;
        }
    }
    switches
}

fn run(config: StrategyConfig, steps: u64, low: u16, high: u16) -> StrategyController {
    let mut controller = StrategyController::new(config, Aggressive).unwrap();
    for step in 0..steps {
        controller.update(step * STEP_NS, flapping(step, low, high));
    }
    controller
}

#[test]
fn flapping_across_both_thresholds_is_bounded_by_cooldown_and_oscillation_freeze() {
    // 550 ‰ is below Balanced's exit (600), 750 ‰ above its enter (700): hysteresis alone cannot help.
    let config = StrategyConfig::default();
    assert_eq!(naive_switches(&config, 200, 550, 750), 199);
    let controller = run(config, 200, 550, 750);
    // Switches at 10, 60, 110 and 160 ms (each after the 50 ms cooldown); the fifth, at 210 ms, would be
    // the fifth in one second: suppressed, and switching freezes until 2,210 ms. Two cooldown holds per
    // switch; every wanted switch from 210 ms to 1,990 ms (odd steps 21..=199) is suppressed.
    assert_eq!(
        controller.stats(),
        StrategyStats {
            switches: 4,
            cooldown_holds: 8,
            oscillation_freezes: 1,
            suppressed_switches: 90,
            emergency_overrides: 0,
            run_restarts: 0
        }
    );
    assert_eq!(controller.frozen_until(1_990_000_000), Some(2_210_000_000));
    let history: Vec<_> = controller.history().copied().collect();
    assert_eq!(
        history,
        vec![
            StrategySwitch {
                at_ns: 10_000_000,
                from: Aggressive,
                to: Balanced,
                pressure_per_mille: 750,
                reason: SwitchReason::PressureRose
            },
            StrategySwitch {
                at_ns: 60_000_000,
                from: Balanced,
                to: Aggressive,
                pressure_per_mille: 550,
                reason: SwitchReason::PressureFell
            },
            StrategySwitch {
                at_ns: 110_000_000,
                from: Aggressive,
                to: Balanced,
                pressure_per_mille: 750,
                reason: SwitchReason::PressureRose
            },
            StrategySwitch {
                at_ns: 160_000_000,
                from: Balanced,
                to: Aggressive,
                pressure_per_mille: 550,
                reason: SwitchReason::PressureFell
            },
        ]
    );
}

#[test]
fn flapping_for_five_seconds_gives_three_bursts_of_four() {
    let config = StrategyConfig::default();
    assert_eq!(naive_switches(&config, 500, 550, 750), 499);
    let controller = run(config, 500, 550, 750);
    // Bursts start at 10 ms, 2,210 ms and 4,410 ms (each freeze ends 2 s after it began at 210, 2,410 and
    // 4,610 ms); suppressed: odd steps 21..=219, 241..=439 and 461..=499.
    assert_eq!(
        controller.stats(),
        StrategyStats {
            switches: 12,
            cooldown_holds: 24,
            oscillation_freezes: 3,
            suppressed_switches: 220,
            emergency_overrides: 0,
            run_restarts: 0
        }
    );
    let burst_starts: Vec<u64> = controller.history().step_by(4).map(|switch| switch.at_ns / 1_000_000).collect();
    assert_eq!(burst_starts, vec![10, 2_210, 4_410]);
}

#[test]
fn hysteresis_alone_absorbs_a_small_flap() {
    // 690 / 710 ‰ straddles Balanced's enter threshold (700) but never falls to its exit (600).
    let config = StrategyConfig::default();
    assert_eq!(naive_switches(&config, 200, 690, 710), 199);
    let controller = run(config, 200, 690, 710);
    assert_eq!(controller.stats().switches, 1);
    assert_eq!(controller.stats().cooldown_holds, 0);
    assert_eq!(controller.current(), Balanced);
}

#[test]
fn emergency_passes_over_the_freeze() {
    let mut controller = run(StrategyConfig::default(), 200, 550, 750);
    assert_eq!(controller.current(), Aggressive);
    let at_ns = 200 * STEP_NS;
    let update = controller.update(at_ns, 960);
    assert_eq!(
        update,
        StrategyUpdate::Switched(StrategySwitch {
            at_ns,
            from: Aggressive,
            to: Conservative,
            pressure_per_mille: 960,
            reason: SwitchReason::Emergency
        })
    );
    assert_eq!(controller.stats().emergency_overrides, 1);
    assert_eq!(controller.stats().switches, 5);
    // Below the emergency threshold the freeze holds again.
    assert_eq!(
        controller.update(at_ns + STEP_NS, 500),
        StrategyUpdate::Suppressed { wanted: Aggressive, until_ns: 2_210_000_000 }
    );
}

#[test]
fn requests_obey_cooldown_but_not_hysteresis() {
    let mut controller = StrategyController::new(StrategyConfig::default(), Balanced).unwrap();
    assert_eq!(controller.request(0, Balanced, 500), StrategyUpdate::Unchanged);
    // 500 ‰ is between thresholds: update() would keep Balanced, a directive can still switch.
    assert!(matches!(controller.request(0, Conservative, 500), StrategyUpdate::Switched(_)));
    assert_eq!(controller.request(STEP_NS, Balanced, 500), StrategyUpdate::HeldByCooldown { wanted: Balanced });
    assert_eq!(controller.history().last().unwrap().reason, SwitchReason::Directive);
    assert_eq!(controller.stats().cooldown_holds, 1);
}

#[test]
fn history_keeps_the_newest_switches() {
    let config =
        StrategyConfig { cooldown_ns: 0, oscillation_window_ns: 1, oscillation_max_switches: 16, ..Default::default() };
    let controller = run(config, 40, 550, 750);
    assert_eq!(controller.stats().switches, 39);
    let history: Vec<_> = controller.history().collect();
    assert_eq!(history.len(), STRATEGY_HISTORY_CAPACITY);
    assert_eq!(history[0].at_ns, 8 * STEP_NS);
    assert_eq!(history[31].at_ns, 39 * STEP_NS);
}

#[test]
fn hysteresis_targets() {
    let config = StrategyConfig::default();
    assert_eq!(config.target(Aggressive, 699), Aggressive);
    assert_eq!(config.target(Aggressive, 700), Balanced);
    assert_eq!(config.target(Aggressive, 850), Conservative);
    assert_eq!(config.target(Balanced, 601), Balanced);
    assert_eq!(config.target(Balanced, 600), Aggressive);
    assert_eq!(config.target(Conservative, 751), Conservative);
    assert_eq!(config.target(Conservative, 750), Balanced);
    assert_eq!(config.target(Conservative, 600), Aggressive);
}

#[test]
fn bad_configurations_are_refused() {
    let base = StrategyConfig::default();
    let cases = [
        (StrategyConfig { emergency_per_mille: 1001, ..base }, StrategyConfigError::ThresholdAbove1000),
        (StrategyConfig { balanced_exit_per_mille: 700, ..base }, StrategyConfigError::NoHysteresis),
        (StrategyConfig { conservative_exit_per_mille: 860, ..base }, StrategyConfigError::NoHysteresis),
        (StrategyConfig { balanced_enter_per_mille: 850, ..base }, StrategyConfigError::ThresholdsOutOfOrder),
        (StrategyConfig { emergency_per_mille: 800, ..base }, StrategyConfigError::EmergencyBelowConservative),
        (StrategyConfig { oscillation_max_switches: 0, ..base }, StrategyConfigError::OscillationBoundOutOfRange),
        (StrategyConfig { oscillation_max_switches: 17, ..base }, StrategyConfigError::OscillationBoundOutOfRange),
        (StrategyConfig { oscillation_window_ns: 0, ..base }, StrategyConfigError::OscillationBoundOutOfRange),
    ];
    for (config, error) in cases {
        assert_eq!(StrategyController::new(config, Balanced).err(), Some(error), "{config:?}");
    }
    assert!(StrategyController::new(base, Balanced).is_ok());
}

#[test]
fn a_restart_returns_to_the_start_without_a_switch_and_records_it_once() {
    let config = StrategyConfig::default();
    let mut controller = StrategyController::new(config, MemoryStrategy::Aggressive).unwrap();
    assert_eq!(controller.restart(0, MemoryStrategy::Aggressive, 0), None, "already there: nothing recorded");
    assert!(matches!(controller.request(10, MemoryStrategy::Conservative, 900), StrategyUpdate::Switched(_)));
    let record = controller.restart(20, MemoryStrategy::Aggressive, 0).unwrap();
    assert_eq!(
        (record.from, record.to, record.reason),
        (MemoryStrategy::Conservative, MemoryStrategy::Aggressive, SwitchReason::RunStarted)
    );
    assert_eq!(controller.current(), MemoryStrategy::Aggressive);
    assert_eq!((controller.stats().switches, controller.stats().run_restarts), (1, 1));
    assert_eq!(controller.history().count(), 2);
    // Not a switch: the cooldown still runs from the switch at 10 ns.
    assert_eq!(
        controller.request(30, MemoryStrategy::Conservative, 900),
        StrategyUpdate::HeldByCooldown { wanted: MemoryStrategy::Conservative }
    );
}
