//! The meta-agent bound to the memory workload's port: one [`Governor::tick`] per decision interval.
//!
//! A tick reads the port's telemetry, feeds the pressure trend, resolves the
//! outcomes of earlier interventions against what was observed since the
//! previous tick (an OOM event, the peak pressure, the longest command
//! latency, a deadline miss), lets the
//! [`MetaAgent`] decide within the caller's guardrails (judged on the live
//! state the caller reads, [`live_state`] for the ports' part), and applies
//! an acted memory directive through the
//! port (a reclaim request, a throttle for the coming interval, or the
//! pressure cap of the strategy in force) and an acted output rate limit
//! through the flood's port, in the same interval; a priority boost or a
//! deadline relaxation is returned for the caller to apply through the
//! scheduler. A decision the guardrails block is traced and applied nowhere.
//! The kernel runs ticks on its autonomy thread;
//! host tests and benchmarks run them from a clock, with the same code.

use alloc::boxed::Box;

use serde::Serialize;
use sis_autonomy::{
    AutonomyMetrics, Directive, Disposition, Heuristic, IntervalTraces, MemoryStrategy, MetaAgent, MetaConfig,
    MetaConfigError, ObservedFailure, Policy, PressureTrend, StrategyConfig, StrategyConfigError, StrategyController,
    Telemetry,
};

use sis_safety::{Guardrails, LiveState};

use crate::aiops::{Canary, CanaryConfig, CanaryConfigError, CanaryStatus, Shadow, ShadowReport};
use crate::port::{DeadlinePort, DeadlineTelemetry, FloodPort, FloodTelemetry, PoolPort, NO_CAP};

/// Decision traces the governor keeps (`autoctl audit last N` reads up to this many).
pub const TRACES_KEPT: usize = 256;

/// A policy the governor can run (the kernel swaps them with `autoctl policy`).
pub type BoxedPolicy = Box<dyn Policy + Send>;

/// The strategy a governor starts in, and every workload run starts under: no cap, the workload's own target.
///
/// A run's pool starts uncapped, so any cap it meets comes from a switch the meta-agent acted on in that run,
/// which is counted and traced: with a policy that never acts, autonomy on is autonomy off, bit for bit.
pub const INITIAL_STRATEGY: MemoryStrategy = MemoryStrategy::Aggressive;

/// The pressure a strategy lets the workload steer toward, per mille ([`NO_CAP`]: the workload's own target).
pub fn strategy_cap(strategy: MemoryStrategy) -> u32 {
    strategy.pressure_cap_per_mille().map_or(NO_CAP, u32::from)
}

/// The live state the ports show: the pool's throttle and pressure cap in force (no cap: 1000) and the
/// flood's rate limit. No deadline thread and a console holding its capability: the caller knows those
/// (the scheduler holds the thread's server) and sets them.
pub fn live_state(port: &PoolPort, flood: Option<&FloodPort>) -> LiveState {
    let cap = port.pressure_cap();
    LiveState {
        throttle_per_mille: port.throttle().into(),
        pressure_cap_per_mille: if cap == NO_CAP { 1000 } else { cap.into() },
        output_rate_lines_per_second: flood.map_or(0, |flood| flood.rate_limit().into()),
        ..LiveState::default()
    }
}

/// Why a governor could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GovernorError {
    /// The meta-agent's configuration.
    Meta(MetaConfigError),
    /// The strategy controller's configuration.
    Strategy(StrategyConfigError),
}

/// What the governor remembers about the run it watches.
#[derive(Debug, Clone, Copy, Default)]
struct Watched {
    run: u64,
    oom_events: u64,
    requests: u64,
    steps: u64,
    throttled: u64,
    dropped: u64,
}

/// What the governor remembers about the deadline thread it watches.
#[derive(Debug, Clone, Copy, Default)]
struct DeadlineWatched {
    run: u64,
    jobs: u64,
    misses: u64,
}

impl From<DeadlineTelemetry> for DeadlineWatched {
    fn from(telemetry: DeadlineTelemetry) -> Self {
        DeadlineWatched { run: telemetry.run, jobs: telemetry.jobs, misses: telemetry.deadline_misses }
    }
}

/// The meta-agent, its strategy controller and pressure trend, bound to a pool port.
pub struct Governor {
    agent: MetaAgent<BoxedPolicy, TRACES_KEPT>,
    strategy: StrategyController,
    trend: PressureTrend,
    watched: Option<Watched>,
    /// The deadline thread's run, jobs and misses at the last decision.
    deadline_watched: Option<DeadlineWatched>,
    /// A naive threshold policy shadowing the same pressure samples: what it would be in, and its switches.
    naive: Option<MemoryStrategy>,
    naive_switches: u64,
    /// A candidate policy deciding beside production, never acting ([`Governor::shadow_step`]).
    shadow: Option<Shadow>,
    /// A candidate policy deciding a share of the intervals.
    canary: Option<Canary>,
    /// The last interval's production memory decision and its inputs, for the shadow.
    last_decision: Option<(Telemetry, sis_autonomy::DecisionTrace)>,
}

impl core::fmt::Debug for Governor {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Governor")
            .field("policy", &self.agent.policy().name())
            .field("strategy", &self.strategy.current())
            .field("decisions", &self.agent.decisions())
            .finish()
    }
}

impl Governor {
    /// A governor running `policy`, starting in [`INITIAL_STRATEGY`].
    pub fn new(policy: BoxedPolicy, config: MetaConfig, strategy: StrategyConfig) -> Result<Self, GovernorError> {
        Ok(Governor {
            agent: MetaAgent::new(policy, config).map_err(GovernorError::Meta)?,
            strategy: StrategyController::new(strategy, INITIAL_STRATEGY).map_err(GovernorError::Strategy)?,
            trend: PressureTrend::new(),
            watched: None,
            deadline_watched: None,
            naive: None,
            naive_switches: 0,
            shadow: None,
            canary: None,
            last_decision: None,
        })
    }

    /// The heuristic policy with the default configurations.
    pub fn heuristic() -> Result<Self, GovernorError> {
        Governor::new(Box::new(Heuristic), MetaConfig::default(), StrategyConfig::default())
    }

    /// The meta-agent (traces, configuration, policy).
    pub fn agent(&self) -> &MetaAgent<BoxedPolicy, TRACES_KEPT> {
        &self.agent
    }

    /// The meta-agent, mutably (confidence threshold, policy).
    pub fn agent_mut(&mut self) -> &mut MetaAgent<BoxedPolicy, TRACES_KEPT> {
        &mut self.agent
    }

    /// The strategy controller (current strategy, history, statistics).
    pub fn strategy(&self) -> &StrategyController {
        &self.strategy
    }

    /// Switches a naive policy (the strategy controller's enter thresholds, no hysteresis, no cooldown) would
    /// have made on the pressure samples this governor decided on: the baseline that flaps.
    pub fn naive_switches(&self) -> u64 {
        self.naive_switches
    }

    /// One decision interval at `now_ns`. Returns its traces (memory, and scheduling when the policy proposed
    /// a scheduling directive), or `None` when no workload owns the pool (nothing to observe, nothing decided).
    ///
    /// `flood` is the command flood's port, when there is one: its longest latency since the last decision
    /// and its queue depth join the memory telemetry. A boost the meta-agent decides is returned in the trace
    /// for the caller to apply through the scheduler (it then marks the flood port boosted).
    ///
    /// `deadline` is a deadline thread's port, when there is one: the misses it published since the last
    /// decision are the telemetry's `deadline_misses`, and any miss fails the interventions that predicted
    /// one. A deadline relaxation the meta-agent decides is returned in the trace for the caller to apply
    /// through the scheduler, to the thread the port names.
    ///
    /// Every confident decision passes `guardrails` first, judged on `live` (the state before this tick's
    /// directives: [`live_state`] of the same ports, with the deadline thread's server and the console's
    /// capability added by the caller); a blocked one is applied nowhere.
    #[allow(clippy::too_many_arguments)] // The ports, the envelope and the counters are separate owners.
    pub fn tick(
        &mut self,
        now_ns: u64,
        port: &PoolPort,
        flood: Option<&FloodPort>,
        deadline: Option<&DeadlinePort>,
        live: &LiveState,
        guardrails: &mut Guardrails,
        metrics: &AutonomyMetrics,
    ) -> Option<IntervalTraces> {
        let telemetry = port.telemetry();
        let peak = port.take_peak_pressure();
        let (commands, command_latency_max_ns) = match flood.map(|flood| (flood, flood.telemetry())) {
            Some((flood, commands)) if commands.attached => (commands, flood.take_latency_max()),
            _ => (FloodTelemetry::default(), 0),
        };
        if !telemetry.attached {
            return None;
        }
        let previous = match self.watched {
            Some(watched) if watched.run == telemetry.run => watched,
            _ => {
                // A new run: its figures start from zero; outcomes watched in the last run are dropped. Its pool
                // is uncapped (the port lifts every directive at attach), and so is the strategy in force.
                self.agent.clear_pending(metrics);
                if let Some(shadow) = &mut self.shadow {
                    shadow.new_run();
                }
                if let Some(canary) = &mut self.canary {
                    canary.new_run();
                }
                self.trend = PressureTrend::new();
                self.strategy.restart(now_ns, INITIAL_STRATEGY, telemetry.pressure_per_mille.min(1000) as u16);
                Watched { run: telemetry.run, ..Watched::default() }
            }
        };
        let new_ooms = telemetry.oom_events.saturating_sub(previous.oom_events);
        let new_requests = telemetry.allocation_requests.saturating_sub(previous.requests);
        let new_steps = telemetry.steps.saturating_sub(previous.steps);
        self.watched = Some(Watched {
            run: telemetry.run,
            oom_events: telemetry.oom_events,
            requests: telemetry.allocation_requests,
            steps: telemetry.steps,
            throttled: telemetry.throttled_requests,
            dropped: telemetry.cache_objects_dropped,
        });
        let (new_jobs, new_misses) = self.take_new_jobs(deadline);
        if new_ooms > 0 {
            self.agent.resolve(now_ns, Some(ObservedFailure::Oom), metrics);
        }
        if new_misses > 0 {
            self.agent.resolve(now_ns, Some(ObservedFailure::DeadlineMiss), metrics);
        }
        let peak = peak.max(telemetry.pressure_per_mille).min(1000) as u16;
        self.agent.resolve(now_ns, Some(ObservedFailure::Pressure { per_mille: peak }), metrics);
        if commands.attached {
            self.agent.resolve(now_ns, Some(ObservedFailure::Latency { ns: command_latency_max_ns }), metrics);
        }

        let pressure = telemetry.pressure_per_mille.min(1000) as u16;
        let naive = self.strategy.config().naive_target(pressure);
        if self.naive.is_some_and(|previous| previous != naive) {
            self.naive_switches += 1;
        }
        self.naive = Some(naive);
        // Times come from one clock and never go backwards; a refused sample only loses that sample.
        let _ = self.trend.push(now_ns, pressure);
        let inputs = Telemetry {
            now_ns,
            pressure_per_mille: pressure,
            trend: self.trend.estimate(self.agent.config().horizon_ns),
            cache_per_mille: (telemetry.cache_pages * 1000).checked_div(telemetry.limit_pages).unwrap_or(0).min(1000)
                as u16,
            demand_per_mille: (new_requests * 1000).checked_div(new_steps).unwrap_or(0).min(1000) as u16,
            oom_events: new_ooms.min(u32::MAX as u64) as u32,
            steps: new_steps,
            allocation_requests: new_requests,
            requests_throttled: telemetry.throttled_requests.saturating_sub(previous.throttled),
            cache_objects_dropped: telemetry.cache_objects_dropped.saturating_sub(previous.dropped),
            deadline_misses: new_misses.min(u32::MAX as u64) as u32,
            deadline_jobs: new_jobs.min(u32::MAX as u64) as u32,
            command_latency_max_ns,
            command_queue_depth: commands.queue_depth,
            commands_boosted: commands.boosted,
            strategy: self.strategy.current(),
        };
        let by_candidate = self.canary.as_mut().is_some_and(|canary| canary.begin_interval(&inputs));
        let traces = match self.canary.as_mut().filter(|_| by_candidate) {
            // The candidate decides this interval through the same agent (threshold, guardrails, counting,
            // tracing): its policy stands in for production's for one step.
            Some(canary) => {
                core::mem::swap(self.agent.policy_mut(), canary.candidate_mut());
                let traces = self.agent.step(inputs, live, guardrails, &mut self.strategy, metrics);
                core::mem::swap(self.agent.policy_mut(), canary.candidate_mut());
                traces
            }
            None => self.agent.step(inputs, live, guardrails, &mut self.strategy, metrics),
        };
        if let Some(canary) = &mut self.canary {
            canary.end_interval(by_candidate, &traces.memory);
        }
        self.last_decision = (!by_candidate).then_some((inputs, traces.memory));
        let mut throttle = 0;
        for trace in traces.iter().filter(|trace| trace.disposition == Disposition::Acted) {
            match trace.directive {
                Directive::ProactiveReclaim => {
                    port.request_reclaim();
                }
                Directive::ThrottleAllocations { per_mille } => throttle = per_mille as u32,
                Directive::SwitchStrategy { .. } => {
                    port.set_pressure_cap(strategy_cap(self.strategy.current()));
                }
                // Applied by the caller through the scheduler (see above).
                Directive::BoostPriority | Directive::AdjustDeadline { .. } => {}
                Directive::LimitOutputRate { lines_per_second } => {
                    if let Some(flood) = flood {
                        flood.set_rate_limit(lines_per_second);
                    }
                }
                Directive::None => {}
            }
        }
        // A throttle holds for one interval; the next decision renews it or lifts it.
        port.set_throttle(throttle);
        Some(traces)
    }

    /// Starts shadowing `candidate` (replacing any shadow): from the next decision on it sees every production
    /// memory decision's inputs through [`Governor::shadow_step`].
    pub fn start_shadow(&mut self, candidate: BoxedPolicy) {
        self.shadow = Some(Shadow::new(candidate, self.agent.policy().name()));
        self.last_decision = None;
    }

    /// Ends the shadow: its candidate and final report.
    pub fn stop_shadow(&mut self) -> Option<(BoxedPolicy, ShadowReport)> {
        self.shadow.take().map(Shadow::into_parts)
    }

    /// The shadow's report so far.
    pub fn shadow_report(&self) -> Option<&ShadowReport> {
        self.shadow.as_ref().map(Shadow::report)
    }

    /// Gives the shadow candidate the last production memory decision's inputs (once per decision; nothing when
    /// there is no shadow or no new decision). Separate from [`Governor::tick`], so the caller times production
    /// and shadow apart; it reads nothing the production path writes afterwards and writes nothing it reads.
    pub fn shadow_step(&mut self) {
        if let (Some(shadow), Some((inputs, trace))) = (&mut self.shadow, self.last_decision.take()) {
            shadow.observe(&inputs, self.agent.config(), &trace);
        }
    }

    /// Starts a canary of `candidate` with `config` (replacing any canary).
    pub fn start_canary(&mut self, candidate: BoxedPolicy, config: CanaryConfig) -> Result<(), CanaryConfigError> {
        self.canary = Some(Canary::new(candidate, config)?);
        Ok(())
    }

    /// Ends the canary: its candidate and final status.
    pub fn stop_canary(&mut self) -> Option<(BoxedPolicy, CanaryStatus)> {
        self.canary.take().map(Canary::into_parts)
    }

    /// The canary's status so far (also after an automatic rollback, until stopped).
    pub fn canary_status(&self) -> Option<CanaryStatus> {
        self.canary.as_ref().map(Canary::status)
    }

    /// Moves `other`'s shadow and canary (and the production decision its shadow has not yet seen) here: a fresh
    /// governor (`autoctl policy`, a comparison's run) keeps the candidate runs going.
    pub fn take_runs_from(&mut self, other: &mut Governor) {
        self.shadow = other.shadow.take();
        self.canary = other.canary.take();
        self.last_decision = other.last_decision.take();
    }

    /// Whether a shadow runs.
    pub fn shadowing(&self) -> bool {
        self.shadow.is_some()
    }

    /// Takes the candidate policy out of a canary its rule stopped, with its final status; the caller records the
    /// rollback. `None` while the canary runs, or without one.
    pub fn take_rolled_back_canary(&mut self) -> Option<(BoxedPolicy, CanaryStatus)> {
        match &self.canary {
            Some(canary) if canary.rollback().is_some() => self.stop_canary(),
            _ => None,
        }
    }

    /// Takes the deadline thread's counts published so far as already seen, so the next decision observes only
    /// what follows (the kernel calls it when autonomy is switched on: misses while nobody decided are not
    /// misses since the previous decision).
    pub fn observe_deadline_from_now(&mut self, deadline: &DeadlinePort) {
        let telemetry = deadline.telemetry();
        self.deadline_watched = telemetry.attached.then(|| telemetry.into());
    }

    /// Jobs and misses the deadline thread published since the previous decision (a new run counts from zero;
    /// no port, or a detached one, gives none).
    fn take_new_jobs(&mut self, deadline: Option<&DeadlinePort>) -> (u64, u64) {
        let telemetry = match deadline.map(DeadlinePort::telemetry) {
            Some(telemetry) if telemetry.attached => telemetry,
            _ => return (0, 0),
        };
        let previous = match self.deadline_watched {
            Some(watched) if watched.run == telemetry.run => watched,
            _ => DeadlineWatched::default(),
        };
        self.deadline_watched = Some(telemetry.into());
        (telemetry.jobs.saturating_sub(previous.jobs), telemetry.deadline_misses.saturating_sub(previous.misses))
    }
}

#[cfg(test)]
mod tests;
