//! `bench ai`, guardrails: what checking an action costs, against the decision it guards.
//!
//! One repetition runs the heuristic meta-agent for [`INTERVALS`] decision intervals on a synthetic pressure
//! signal (a sawtooth with OOM events, deadline misses and slow commands, so every kind of directive is
//! proposed), with the trend fed as the governor feeds it: that is the decision, timed as a whole. Then the
//! actions those decisions proposed are replayed through fresh guardrails at the same times, check and commit,
//! timed as a whole: that is the guardrails' share. Batch timing, since one check is shorter than the clock's
//! resolution.

use std::hint::black_box;
use std::time::Instant;

use sis_autonomy::{
    proposed_action, AutonomyMetrics, Heuristic, IntervalTraces, MemoryStrategy, MetaAgent, MetaConfig, PressureTrend,
    StrategyConfig, StrategyController, Telemetry,
};
use sis_safety::{Guardrails, LiveState, ProposedAction, Verdict};

use crate::median;

/// Decision intervals per repetition.
const INTERVALS: u64 = 200_000;
/// The kernel's decision interval.
pub(crate) const INTERVAL_NS: u64 = 10_000_000;
/// Target from issue 24: the check costs a few percent of a decision at most.
pub const TARGET_PERCENT: f64 = 5.0;

/// The telemetry of interval `index`: pressure rising 500 to 999 per mille over 50 intervals, an OOM event at the
/// top, a deadline miss every 7th and a 15 ms command every 11th interval.
pub(crate) fn telemetry(index: u64, trend: &PressureTrend, horizon_ns: u64) -> Telemetry {
    Telemetry {
        now_ns: index * INTERVAL_NS,
        pressure_per_mille: (500 + index % 50 * 10) as u16,
        trend: trend.estimate(horizon_ns),
        oom_events: u32::from(index % 50 == 49),
        deadline_misses: u32::from(index.is_multiple_of(7)),
        deadline_jobs: 1,
        command_latency_max_ns: if index.is_multiple_of(11) { 15_000_000 } else { 0 },
        command_queue_depth: (index % 128) as u32,
        ..Telemetry::default()
    }
}

/// The heuristic meta-agent as both `bench ai` parts drive it: its strategy controller, the pressure trend fed as
/// the governor feeds it, guardrails, and an idle machine's live state.
pub(crate) struct HeuristicLoop {
    pub metrics: AutonomyMetrics,
    pub agent: MetaAgent<Heuristic, 64, 32>,
    pub strategy: StrategyController,
    pub trend: PressureTrend,
    pub guardrails: Guardrails,
    pub live: LiveState,
}

impl HeuristicLoop {
    pub fn new() -> Self {
        HeuristicLoop {
            metrics: AutonomyMetrics::new(),
            agent: MetaAgent::new(Heuristic, MetaConfig::default()).expect("config"),
            strategy: StrategyController::new(StrategyConfig::default(), MemoryStrategy::Aggressive)
                .expect("strategy config"),
            trend: PressureTrend::new(),
            guardrails: Guardrails::new(),
            live: LiveState::default(),
        }
    }

    /// Feeds interval `index`'s pressure to the trend and returns the interval's telemetry.
    pub fn inputs(&mut self, index: u64) -> Telemetry {
        let _ = self.trend.push(index * INTERVAL_NS, (500 + index % 50 * 10) as u16);
        telemetry(index, &self.trend, self.agent.config().horizon_ns)
    }

    /// The agent's decisions on `inputs`.
    #[inline]
    pub fn decide(&mut self, inputs: Telemetry) -> IntervalTraces {
        self.agent.step(black_box(inputs), &self.live, &mut self.guardrails, &mut self.strategy, &self.metrics)
    }
}

/// One repetition: (decision ns per interval, check-and-commit ns per action, actions per interval).
fn one_run() -> (f64, f64, f64) {
    let mut run = HeuristicLoop::new();
    let threshold = run.agent.config().confidence_threshold_per_mille;
    let mut proposed: Vec<(u64, ProposedAction)> = Vec::with_capacity(2 * INTERVALS as usize);
    // Both loops are timed as a whole, the same way: on a loaded host, time the process spends descheduled then
    // weighs on both alike. Noting the proposed actions (a push into a reserved vector) is inside the first.
    let start = Instant::now();
    for index in 0..INTERVALS {
        let inputs = run.inputs(index);
        let traces = run.decide(inputs);
        for trace in traces.iter().filter(|trace| trace.confidence_per_mille >= threshold) {
            if let Some(action) = proposed_action(trace.directive) {
                proposed.push((trace.at_ns, action));
            }
        }
    }
    let decisions_ns = start.elapsed().as_nanos();
    let mut replay = Guardrails::new();
    let start = Instant::now();
    for (at_ns, action) in &proposed {
        if replay.check(black_box(action), &run.live, *at_ns) == Verdict::Allowed {
            replay.commit(action, *at_ns);
        }
    }
    let checks_ns = start.elapsed().as_nanos();
    assert_eq!(replay.totals().checked, proposed.len() as u64);
    let actions = proposed.len().max(1) as f64;
    (decisions_ns as f64 / INTERVALS as f64, checks_ns as f64 / actions, actions / INTERVALS as f64)
}

/// Runs `repetitions` repetitions and prints medians, and the check's share of a learned decision costing
/// `learned_decision_ns` (inference + update, measured in the same `bench ai` run).
pub fn run(repetitions: u32, learned_decision_ns: f64) {
    println!(
        "\nguardrails: the heuristic meta-agent over {INTERVALS} decision intervals of a synthetic load, then the actions it \
         proposed checked and committed again by fresh guardrails (defaults), {repetitions} repetitions"
    );
    let mut columns: [Vec<f64>; 3] = Default::default();
    for repetition in 1..=repetitions {
        let (decision, check, actions) = one_run();
        println!(
            "  run {repetition:>2}: decision {decision:>7.0} ns per interval, check + commit {check:>5.1} ns per action, \
             {actions:.2} actions per interval"
        );
        for (column, figure) in columns.iter_mut().zip([decision, check, actions]) {
            column.push(figure);
        }
    }
    let [decision, check, actions] = columns.map(|mut values| median(&mut values));
    let per_decision = check * actions;
    let share = per_decision / decision * 100.0;
    let verdict = if share < TARGET_PERCENT { "met" } else { "NOT met" };
    println!(
        "median: check + commit {check:.1} ns per action, {actions:.2} actions per interval: {per_decision:.1} ns per \
         decision interval against {decision:.0} ns of heuristic decision = {share:.2} % (ratio {:.4}; target < \
         {TARGET_PERCENT:.0} %: {verdict})",
        share / 100.0
    );
    println!(
        "against a learned decision (inference + update {learned_decision_ns:.0} ns): {:.3} % (ratio {:.5})",
        per_decision / learned_decision_ns * 100.0,
        per_decision / learned_decision_ns
    );
}
