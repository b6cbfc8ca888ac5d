//! Memory strategy (Conservative / Balanced / Aggressive) chosen from pressure, with hysteresis, a cooldown
//! and oscillation detection.
//!
//! A strategy names how freely the memory subsystem hands out memory:
//! Aggressive grows caches and allocates freely (low pressure), Conservative
//! reclaims early and keeps headroom (high pressure). Three guards keep a
//! pressure signal that hovers around a threshold from making the strategy
//! flap:
//! - hysteresis: each boundary has an enter threshold (pressure rising) above
//!   its exit threshold (pressure falling);
//! - cooldown: no switch sooner than `cooldown_ns` after the previous one;
//! - oscillation detection: a switch that would make more than
//!   `oscillation_max_switches` switches within `oscillation_window_ns` is
//!   suppressed and freezes switching for `freeze_ns`.
//!
//! Only a switch to Conservative at or above `emergency_per_mille` passes the
//! cooldown and the freeze, because holding a permissive strategy there
//! risks running out of memory; it still counts in the history.

use crate::ring::Ring;

/// Switches kept in the history.
pub const STRATEGY_HISTORY_CAPACITY: usize = 32;
/// Largest `oscillation_max_switches` (recent switch times are kept in a ring of this size).
pub const OSCILLATION_CAPACITY: usize = 16;

/// How freely memory is handed out, ordered from most to least permissive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryStrategy {
    /// Low pressure: allocate freely, grow caches.
    #[default]
    Aggressive,
    /// The middle ground.
    Balanced,
    /// High pressure: reclaim early, keep headroom.
    Conservative,
}

impl MemoryStrategy {
    /// The pressure the strategy lets the workload steer toward, per mille (`None`: no cap, the workload's
    /// own target).
    pub const fn pressure_cap_per_mille(self) -> Option<u16> {
        match self {
            MemoryStrategy::Aggressive => None,
            MemoryStrategy::Balanced => Some(850),
            MemoryStrategy::Conservative => Some(700),
        }
    }
}

/// Thresholds (per mille of memory in use) and times (ns) of the strategy controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StrategyConfig {
    /// Pressure at or above which Aggressive becomes Balanced.
    pub balanced_enter_per_mille: u16,
    /// Pressure at or below which Balanced (or Conservative) becomes Aggressive.
    pub balanced_exit_per_mille: u16,
    /// Pressure at or above which the strategy becomes Conservative.
    pub conservative_enter_per_mille: u16,
    /// Pressure at or below which Conservative becomes Balanced.
    pub conservative_exit_per_mille: u16,
    /// Pressure at or above which a switch to Conservative ignores cooldown and freeze.
    pub emergency_per_mille: u16,
    /// Minimum time between two switches.
    pub cooldown_ns: u64,
    /// Length of the sliding window in which switches are counted.
    pub oscillation_window_ns: u64,
    /// Most switches allowed within the window (1 to [`OSCILLATION_CAPACITY`]).
    pub oscillation_max_switches: u8,
    /// How long switching stays frozen after oscillation is detected.
    pub freeze_ns: u64,
}

impl Default for StrategyConfig {
    /// 70 % / 60 % around Balanced, 85 % / 75 % around Conservative, emergency at 95 %; 50 ms cooldown;
    /// at most 4 switches a second, else a 2 s freeze.
    fn default() -> Self {
        StrategyConfig {
            balanced_enter_per_mille: 700,
            balanced_exit_per_mille: 600,
            conservative_enter_per_mille: 850,
            conservative_exit_per_mille: 750,
            emergency_per_mille: 950,
            cooldown_ns: 50_000_000,
            oscillation_window_ns: 1_000_000_000,
            oscillation_max_switches: 4,
            freeze_ns: 2_000_000_000,
        }
    }
}

/// A configuration the controller refuses, with the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyConfigError {
    /// A threshold is above 1000 per mille.
    ThresholdAbove1000,
    /// An exit threshold is not below its enter threshold (no hysteresis).
    NoHysteresis,
    /// Balanced's thresholds are not below Conservative's.
    ThresholdsOutOfOrder,
    /// The emergency threshold is below the Conservative enter threshold.
    EmergencyBelowConservative,
    /// `oscillation_max_switches` is 0 or above [`OSCILLATION_CAPACITY`], or the window is 0.
    OscillationBoundOutOfRange,
}

impl StrategyConfig {
    /// Checks the ordering rules the controller relies on.
    pub fn validate(&self) -> Result<(), StrategyConfigError> {
        let thresholds = [
            self.balanced_enter_per_mille,
            self.balanced_exit_per_mille,
            self.conservative_enter_per_mille,
            self.conservative_exit_per_mille,
            self.emergency_per_mille,
        ];
        if thresholds.iter().any(|threshold| *threshold > 1000) {
            return Err(StrategyConfigError::ThresholdAbove1000);
        }
        if self.balanced_exit_per_mille >= self.balanced_enter_per_mille
            || self.conservative_exit_per_mille >= self.conservative_enter_per_mille
        {
            return Err(StrategyConfigError::NoHysteresis);
        }
        if self.balanced_enter_per_mille >= self.conservative_enter_per_mille
            || self.balanced_exit_per_mille >= self.conservative_exit_per_mille
        {
            return Err(StrategyConfigError::ThresholdsOutOfOrder);
        }
        if self.emergency_per_mille < self.conservative_enter_per_mille {
            return Err(StrategyConfigError::EmergencyBelowConservative);
        }
        if self.oscillation_max_switches == 0
            || self.oscillation_max_switches as usize > OSCILLATION_CAPACITY
            || self.oscillation_window_ns == 0
        {
            return Err(StrategyConfigError::OscillationBoundOutOfRange);
        }
        Ok(())
    }

    /// The strategy hysteresis picks for `pressure_per_mille` when `current` is in force.
    pub fn target(&self, current: MemoryStrategy, pressure_per_mille: u16) -> MemoryStrategy {
        use MemoryStrategy::*;
        match current {
            _ if current != Conservative && pressure_per_mille >= self.conservative_enter_per_mille => Conservative,
            Aggressive if pressure_per_mille >= self.balanced_enter_per_mille => Balanced,
            Balanced | Conservative if pressure_per_mille <= self.balanced_exit_per_mille => Aggressive,
            Conservative if pressure_per_mille <= self.conservative_exit_per_mille => Balanced,
            _ => current,
        }
    }

    /// What a naive policy would pick: one threshold per boundary (the enter thresholds), no hysteresis,
    /// no cooldown. Kept as the baseline that flaps.
    pub fn naive_target(&self, pressure_per_mille: u16) -> MemoryStrategy {
        if pressure_per_mille >= self.conservative_enter_per_mille {
            MemoryStrategy::Conservative
        } else if pressure_per_mille >= self.balanced_enter_per_mille {
            MemoryStrategy::Balanced
        } else {
            MemoryStrategy::Aggressive
        }
    }
}

/// Why the strategy changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// Pressure crossed an enter threshold upwards.
    PressureRose,
    /// Pressure crossed an exit threshold downwards.
    PressureFell,
    /// Pressure reached the emergency threshold; cooldown and freeze were passed over.
    Emergency,
    /// The meta-agent asked for it.
    Directive,
    /// A new workload run started with its pool uncapped: the controller went back to its starting strategy
    /// ([`StrategyController::restart`]). Not a switch: nothing changed in the workload.
    RunStarted,
}

/// One entry of the switch history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StrategySwitch {
    /// When the switch happened.
    pub at_ns: u64,
    /// Strategy before.
    pub from: MemoryStrategy,
    /// Strategy after.
    pub to: MemoryStrategy,
    /// Pressure that was passed in with the switch.
    pub pressure_per_mille: u16,
    /// Why.
    pub reason: SwitchReason,
}

/// What one update or request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StrategyUpdate {
    /// No switch wanted.
    Unchanged,
    /// Switched.
    Switched(StrategySwitch),
    /// A switch to `wanted` was held because the last switch is too recent.
    HeldByCooldown {
        /// The strategy that was wanted.
        wanted: MemoryStrategy,
    },
    /// A switch to `wanted` was suppressed: switching is frozen until `until_ns` (this call may have
    /// started the freeze).
    Suppressed {
        /// The strategy that was wanted.
        wanted: MemoryStrategy,
        /// End of the freeze.
        until_ns: u64,
    },
}

/// Counters of the controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StrategyStats {
    /// Switches made (all reasons).
    pub switches: u64,
    /// Switches held by the cooldown.
    pub cooldown_holds: u64,
    /// Times oscillation was detected (each starts a freeze).
    pub oscillation_freezes: u64,
    /// Switches suppressed by oscillation detection (including the one that started each freeze).
    pub suppressed_switches: u64,
    /// Emergency switches that passed over a cooldown or freeze.
    pub emergency_overrides: u64,
    /// Returns to the starting strategy because a new workload run started (not switches).
    pub run_restarts: u64,
}

/// The strategy in force and the guards around changing it.
#[derive(Debug, Clone)]
pub struct StrategyController {
    config: StrategyConfig,
    current: MemoryStrategy,
    last_switch_ns: Option<u64>,
    frozen_until_ns: Option<u64>,
    recent_switch_times: Ring<u64, OSCILLATION_CAPACITY>,
    history: Ring<StrategySwitch, STRATEGY_HISTORY_CAPACITY>,
    stats: StrategyStats,
}

impl StrategyController {
    /// A controller starting in `initial`, or the configuration's broken rule.
    pub fn new(config: StrategyConfig, initial: MemoryStrategy) -> Result<Self, StrategyConfigError> {
        config.validate()?;
        Ok(StrategyController {
            config,
            current: initial,
            last_switch_ns: None,
            frozen_until_ns: None,
            recent_switch_times: Ring::new(),
            history: Ring::new(),
            stats: StrategyStats::default(),
        })
    }

    /// The strategy in force.
    pub fn current(&self) -> MemoryStrategy {
        self.current
    }

    /// The configuration.
    pub fn config(&self) -> &StrategyConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> StrategyStats {
        self.stats
    }

    /// End of the current freeze, if switching is frozen at `now_ns`.
    pub fn frozen_until(&self, now_ns: u64) -> Option<u64> {
        self.frozen_until_ns.filter(|until| *until > now_ns)
    }

    /// The last switches (up to [`STRATEGY_HISTORY_CAPACITY`]), oldest first.
    pub fn history(&self) -> impl Iterator<Item = &StrategySwitch> + '_ {
        self.history.iter()
    }

    /// Feeds a pressure reading taken at `now_ns`; switches if hysteresis wants a change and the guards allow.
    pub fn update(&mut self, now_ns: u64, pressure_per_mille: u16) -> StrategyUpdate {
        let wanted = self.config.target(self.current, pressure_per_mille);
        if wanted == self.current {
            return StrategyUpdate::Unchanged;
        }
        if wanted == MemoryStrategy::Conservative && pressure_per_mille >= self.config.emergency_per_mille {
            if self.guard(now_ns, wanted, false).is_err() {
                self.stats.emergency_overrides += 1;
            }
            return StrategyUpdate::Switched(self.switch(now_ns, wanted, pressure_per_mille, SwitchReason::Emergency));
        }
        let reason = if wanted > self.current { SwitchReason::PressureRose } else { SwitchReason::PressureFell };
        self.guarded_switch(now_ns, wanted, pressure_per_mille, reason)
    }

    /// A new workload run started at `now_ns` with nothing of the strategy applied to it: the controller goes
    /// back to `initial`, so that the strategy in force always names what the run is subject to. Recorded in
    /// the history (reason [`SwitchReason::RunStarted`]) when it changes the strategy; not a switch, so no
    /// cooldown, oscillation window or switch counter sees it. Returns the history entry, if any.
    pub fn restart(&mut self, now_ns: u64, initial: MemoryStrategy, pressure_per_mille: u16) -> Option<StrategySwitch> {
        if self.current == initial {
            return None;
        }
        let record = StrategySwitch {
            at_ns: now_ns,
            from: self.current,
            to: initial,
            pressure_per_mille,
            reason: SwitchReason::RunStarted,
        };
        self.current = initial;
        self.history.push(record);
        self.stats.run_restarts += 1;
        Some(record)
    }

    /// A switch to `wanted` requested by the meta-agent; subject to cooldown and oscillation detection
    /// (not to hysteresis, and without the emergency bypass).
    pub fn request(&mut self, now_ns: u64, wanted: MemoryStrategy, pressure_per_mille: u16) -> StrategyUpdate {
        if wanted == self.current {
            return StrategyUpdate::Unchanged;
        }
        self.guarded_switch(now_ns, wanted, pressure_per_mille, SwitchReason::Directive)
    }

    fn guarded_switch(
        &mut self,
        now_ns: u64,
        wanted: MemoryStrategy,
        pressure_per_mille: u16,
        reason: SwitchReason,
    ) -> StrategyUpdate {
        match self.guard(now_ns, wanted, true) {
            Ok(()) => StrategyUpdate::Switched(self.switch(now_ns, wanted, pressure_per_mille, reason)),
            Err(held) => held,
        }
    }

    /// Whether the cooldown and oscillation guards allow a switch now; `count` records a refusal.
    fn guard(&mut self, now_ns: u64, wanted: MemoryStrategy, count: bool) -> Result<(), StrategyUpdate> {
        if let Some(until_ns) = self.frozen_until(now_ns) {
            if count {
                self.stats.suppressed_switches += 1;
            }
            return Err(StrategyUpdate::Suppressed { wanted, until_ns });
        }
        if let Some(last) = self.last_switch_ns {
            if now_ns.saturating_sub(last) < self.config.cooldown_ns {
                if count {
                    self.stats.cooldown_holds += 1;
                }
                return Err(StrategyUpdate::HeldByCooldown { wanted });
            }
        }
        let window = self.config.oscillation_window_ns;
        let recent = self.recent_switch_times.iter().filter(|at| now_ns.saturating_sub(**at) < window).count();
        if recent >= self.config.oscillation_max_switches as usize {
            let until_ns = now_ns.saturating_add(self.config.freeze_ns);
            if count {
                self.frozen_until_ns = Some(until_ns);
                self.stats.oscillation_freezes += 1;
                self.stats.suppressed_switches += 1;
            }
            return Err(StrategyUpdate::Suppressed { wanted, until_ns });
        }
        Ok(())
    }

    fn switch(
        &mut self,
        now_ns: u64,
        to: MemoryStrategy,
        pressure_per_mille: u16,
        reason: SwitchReason,
    ) -> StrategySwitch {
        let record = StrategySwitch { at_ns: now_ns, from: self.current, to, pressure_per_mille, reason };
        self.current = to;
        self.last_switch_ns = Some(now_ns);
        self.recent_switch_times.push(now_ns);
        self.history.push(record);
        self.stats.switches += 1;
        record
    }
}

#[cfg(test)]
mod tests;
