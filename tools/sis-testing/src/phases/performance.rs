//! Phase 8's judge for adaptive memory and the meta-agent: three runs in one boot, each read from the
//! meta-agent's own audit trail, its counters and the strategy controller's history.
//!
//! - Run A: the command flood beside a 1 MiB pool at a 95 % target (`stresstest multi`), the heuristic at its
//!   defaults: OOM events and slow commands in the same intervals.
//! - Run B: the memory workload at the default 16 MiB pool, the heuristic with its pressure thresholds moved
//!   to 650 / 660 / 700 per mille and a confidence threshold of 0: it switches strategy whenever a threshold
//!   is crossed, and flaps.
//! - Run C: the same workload on a 1 MiB pool under a learned policy that starts untrained (`neuralctl
//!   reset`), at the default thresholds: most of its choices are below the confidence threshold, and it
//!   learns online from every interval's measured reward.
//!
//! Then graph integration (`graph_integration`): a pipeline of CBS operators beside spinners and a memory
//! stress, and the same pipeline at best effort.

use std::sync::LazyLock;

use serde_json::Value;

use super::dataflow::Replies;
use super::judge::{expect, number};
use super::Verdict;

pub(super) mod graph_integration;

/// Phase 8's probe: [`ADAPTIVE_COMMANDS`], then graph integration's steps.
pub static PERFORMANCE_COMMANDS: LazyLock<String> = LazyLock::new(|| {
    let steps = graph_integration::steps();
    let graph: Vec<&str> = steps.iter().map(|step| step.command.as_str()).collect();
    format!("{ADAPTIVE_COMMANDS}; {}", graph.join("; "))
});

/// Runs A, B and C above (the indices are [`Replies`]'s).
const ADAPTIVE_COMMANDS: &str = "autoctl on --json; \
     stresstest multi --duration 200 --pool-mib 1 --target-pressure 95 --oom-threshold 98 --expect-failures --json; \
     autoctl status --json; autoctl audit last 256 --json; memctl strategy status --json; \
     memctl strategy history --json; \
     autoctl policy heuristic --json; autoctl thresholds --relax-below 650 --reclaim-at 660 --throttle-at 700 --json; \
     autoctl conf-threshold 0 --json; autoctl status --json; \
     stresstest memory --duration 1500 --seed 3 --expect-failures --json; \
     autoctl status --json; autoctl audit last 256 --json; memctl strategy status --json; \
     memctl strategy history --json; \
     neuralctl reset --seed 1 --json; autoctl policy learned --json; \
     autoctl thresholds --relax-below 600 --reclaim-at 800 --throttle-at 900 --json; \
     autoctl conf-threshold 600 --json; autoctl status --json; \
     stresstest memory --duration 500 --pool-mib 1 --seed 5 --expect-failures --json; \
     autoctl status --json; autoctl audit last 256 --json";

/// Replies [`ADAPTIVE_COMMANDS`] prints.
const ADAPTIVE_REPLIES: usize = 23;

/// The tests this judge gives a verdict.
const JUDGED: [&str; 7] = [
    "Strategy switching",
    "Directive thresholds",
    "Oscillation detection",
    "Confidence thresholds",
    "Multi-subsystem directives",
    "Reward feedback",
    "Graph integration",
];

/// The pressure thresholds run B sets (relax below, reclaim at, throttle at), per mille.
const MOVED_THRESHOLDS: (u64, u64, u64) = (650, 660, 700);
/// The default throttle threshold: run B's decisions below it are ones the defaults would not have made.
const DEFAULT_THROTTLE_AT: u64 = 900;
/// The learned policy's first online training step waits for this many transitions (its batch of 8, taken
/// every 4 transitions).
const FIRST_TRAINING_TRANSITIONS: u64 = 8;
/// Transitions between two online training steps.
const TRANSITIONS_PER_TRAINING_STEP: u64 = 4;

/// One run: the meta-agent's status before and after, its audit, and (runs A and B) the strategy
/// controller's status and history.
struct Run<'a> {
    name: &'static str,
    before: Option<&'a Value>,
    after: &'a Value,
    traces: &'a [Value],
    strategy: Option<(&'a Value, &'a Value)>,
}

impl Run<'_> {
    /// How much the counter `key` of `autoctl status`'s metrics grew over the run.
    fn delta(&self, key: &str) -> Result<u64, String> {
        let before = match self.before {
            Some(status) => number(&status["metrics"], key)?,
            None => 0,
        };
        Ok(number(&self.after["metrics"], key)?.saturating_sub(before))
    }

    /// The counter `key` grew over the run by `expected`, the number of `what` in the audit.
    fn expect_delta(&self, key: &str, expected: u64, what: &str) -> Result<(), String> {
        match self.delta(key)? {
            got if got == expected => Ok(()),
            got => Err(format!("run {}: {key} counts the {expected} {what}, got {got}", self.name)),
        }
    }

    /// The traces whose disposition is `disposition`.
    fn count(&self, disposition: &str) -> u64 {
        self.traces.iter().filter(|trace| trace["disposition"] == disposition).count() as u64
    }

    /// The audit holds every decision of the run (the agent was fresh at its start).
    fn whole(&self) -> Result<(), String> {
        expect(self.after, "decisions", self.traces.len() as u64)
            .map_err(|error| format!("run {}: the audit holds every decision: {error}", self.name))
    }
}

/// Phase 8's adaptive-memory, meta-agent and graph-integration tests from [`PERFORMANCE_COMMANDS`]' replies.
pub fn performance(replies: &[Value]) -> Vec<Verdict> {
    let graph_steps = graph_integration::steps();
    let expected = ADAPTIVE_REPLIES + graph_steps.len();
    if replies.len() != expected {
        let got = format!("{} JSON replies, expected {expected}", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    if let Some(failed) = replies.iter().find(|reply| reply["ok"] != true) {
        let got = format!("every command succeeds, got {failed}");
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    let traces = |index: usize| replies[index]["traces"].as_array().map_or(&[][..], Vec::as_slice);
    let a = Run {
        name: "A",
        before: None,
        after: &replies[2],
        traces: traces(3),
        strategy: Some((&replies[4], &replies[5])),
    };
    let b = Run {
        name: "B",
        before: Some(&replies[9]),
        after: &replies[11],
        traces: traces(12),
        strategy: Some((&replies[13], &replies[14])),
    };
    let c = Run { name: "C", before: Some(&replies[19]), after: &replies[21], traces: traces(22), strategy: None };
    vec![
        ("Strategy switching", strategy_switching(&a, &b)),
        ("Directive thresholds", directive_thresholds(&a, &b, &replies[7])),
        ("Oscillation detection", oscillation_detection(&b)),
        ("Confidence thresholds", confidence_thresholds(&[&a, &b, &c])),
        ("Multi-subsystem directives", multi_subsystem_directives(&a)),
        ("Reward feedback", reward_feedback(&[&a, &b, &c])),
        (
            "Graph integration",
            graph_integration::graph_integration(&Replies::new(&graph_steps, &replies[ADAPTIVE_REPLIES..])),
        ),
    ]
}

/// Every switch in the controller's history is an acted `switch_strategy` decision at the same time, from
/// the strategy in force to the one asked for; the history, the controller and the meta-agent count the
/// same switches; run B switches both ways.
fn strategy_switching(a: &Run, b: &Run) -> Result<(), String> {
    for run in [a, b] {
        run.whole()?;
        let (status, history) = run.strategy.ok_or("no strategy replies")?;
        let switches = history["switches"].as_array().ok_or_else(|| format!("no switches in {history}"))?;
        let acted: Vec<&Value> = run
            .traces
            .iter()
            .filter(|trace| trace["directive"]["directive"] == "switch_strategy" && trace["disposition"] == "acted")
            .collect();
        if acted.is_empty() {
            return Err(format!("run {}: at least one acted strategy switch, got none", run.name));
        }
        let counted = number(&status["stats"], "switches")?;
        let by_agent = run.delta("strategy_switches")?;
        if (switches.len() as u64, counted, by_agent) != (acted.len() as u64, acted.len() as u64, acted.len() as u64) {
            return Err(format!(
                "run {}: history, controller and meta-agent count the {} acted switches, got {}, {counted} and {by_agent}",
                run.name,
                acted.len(),
                switches.len()
            ));
        }
        for (switch, trace) in switches.iter().zip(&acted) {
            let matches = switch["reason"] == "directive"
                && switch["at_ns"] == trace["at_ns"]
                && switch["from"] == trace["inputs"]["strategy"]
                && switch["to"] == trace["directive"]["strategy"];
            if !matches {
                return Err(format!("run {}: switch {switch} is the acted decision {trace}", run.name));
            }
        }
    }
    let (_, history) = b.strategy.ok_or("no strategy replies")?;
    let to = |strategy: &str| history["switches"].as_array().into_iter().flatten().any(|s| s["to"] == strategy);
    if !(to("conservative") && to("balanced")) {
        return Err(format!("run B switches to conservative and back to balanced, got {history}"));
    }
    Ok(())
}

/// The memory rules fire exactly at the thresholds in force: without an OOM event, a decision's reason is
/// `pressure_high` (with that threshold) exactly when pressure is at or above the throttle threshold, and
/// `pressure_predicted` only for a prediction at or above the reclaim threshold. Run B's moved thresholds
/// make decisions the defaults would not.
fn directive_thresholds(a: &Run, b: &Run, set: &Value) -> Result<(), String> {
    let (relax, reclaim, throttle) = MOVED_THRESHOLDS;
    expect(set, "relax_below_per_mille", relax)?;
    expect(set, "reclaim_at_per_mille", reclaim)?;
    expect(set, "throttle_at_per_mille", throttle)?;
    let mut checked = 0;
    for run in [a, b] {
        let config = &run.after["config"];
        let throttle_at = number(config, "throttle_at_per_mille")?;
        let reclaim_at = number(config, "reclaim_at_per_mille")?;
        for trace in run.traces.iter().filter(|trace| trace["subsystem"] == "memory") {
            if number(&trace["inputs"], "oom_events")? > 0 {
                continue;
            }
            checked += 1;
            let pressure = number(&trace["inputs"], "pressure_per_mille")?;
            let reason = &trace["reason"];
            let high = reason["reason"] == "pressure_high";
            if high != (pressure >= throttle_at) || (high && number(reason, "threshold_per_mille")? != throttle_at) {
                return Err(format!(
                    "run {}: pressure_high exactly at pressure >= {throttle_at}, got {reason} at {pressure}",
                    run.name
                ));
            }
            if reason["reason"] == "pressure_predicted" && number(reason, "predicted_per_mille")? < reclaim_at {
                return Err(format!("run {}: a prediction at or above {reclaim_at}, got {reason}", run.name));
            }
        }
    }
    if checked == 0 {
        return Err(String::from("memory decisions without an OOM event to check, got none"));
    }
    let moved = b.traces.iter().any(|trace| {
        trace["reason"]["reason"] == "pressure_high"
            && trace["inputs"]["pressure_per_mille"].as_u64().is_some_and(|p| p < DEFAULT_THROTTLE_AT)
    });
    if !moved {
        return Err(format!("run B: a pressure_high decision below the default {DEFAULT_THROTTLE_AT}, got none"));
    }
    Ok(())
}

/// Run B flaps: the controller detects it, freezes switching, and refuses the switches asked for while
/// frozen (each one a `refused_by_freeze` decision, as its cooldown refusals are `refused_by_cooldown`);
/// no window holds more switches than its bound, where a naive threshold policy on the same samples
/// switches far more often.
fn oscillation_detection(b: &Run) -> Result<(), String> {
    b.whole()?;
    let (status, history) = b.strategy.ok_or("no strategy replies")?;
    let stats = &status["stats"];
    if number(stats, "oscillation_freezes")? == 0 {
        return Err(format!("at least one oscillation freeze, got {stats}"));
    }
    expect(stats, "suppressed_switches", b.count("refused_by_freeze"))?;
    expect(stats, "cooldown_holds", b.count("refused_by_cooldown"))?;
    let window = number(&status["config"], "oscillation_window_ns")?;
    let bound = number(&status["config"], "oscillation_max_switches")? as usize;
    let times: Vec<u64> =
        history["switches"].as_array().into_iter().flatten().filter_map(|switch| switch["at_ns"].as_u64()).collect();
    for (index, start) in times.iter().enumerate() {
        let within = times[index..].iter().take_while(|at| **at < start + window).count();
        if within > bound {
            return Err(format!("at most {bound} switches within {window} ns, got {within} from {start} ns"));
        }
    }
    let naive = number(status, "naive_switches")?;
    if naive < 10 * times.len() as u64 {
        return Err(format!("a naive threshold policy switches 10 x as often ({} switches), got {naive}", times.len()));
    }
    Ok(())
}

/// A decision with a directive is held exactly when its confidence is below the threshold in force (600 in
/// runs A and C, 0 in B); a held decision is not acted on, has no outcome, and is counted; the meta-agent's
/// intervention count is its acted decisions. Both sides are met: decisions held and decisions acted.
fn confidence_thresholds(runs: &[&Run]) -> Result<(), String> {
    let (mut held, mut acted) = (0, 0);
    for run in runs {
        run.whole()?;
        let threshold = number(run.after, "confidence_threshold_per_mille")?;
        for trace in run.traces {
            let confidence = number(trace, "confidence_per_mille")?;
            expect(trace, "threshold_per_mille", threshold)?;
            let below = trace["directive"]["directive"] != "none" && confidence < threshold;
            if below != (trace["disposition"] == "held") {
                return Err(format!("run {}: held exactly below {threshold}, got {trace}", run.name));
            }
            if below && (trace["outcome"] != "not_applicable" || !trace["reward_per_mille"].is_null()) {
                return Err(format!("run {}: a held decision has no outcome, got {trace}", run.name));
            }
        }
        let (run_held, run_acted) = (run.count("held"), run.count("acted"));
        run.expect_delta("decisions_held", run_held, "held decisions")?;
        run.expect_delta("total_interventions", run_acted, "acted decisions")?;
        held += run_held;
        acted += run_acted;
    }
    if held == 0 || acted == 0 {
        return Err(format!("decisions held and acted, got {held} held and {acted} acted"));
    }
    Ok(())
}

/// In run A one interval directs memory and scheduling, both acted, and the next interval's inputs show
/// both carried out: the pool's throttle refused requests (or the strategy asked for is in force) and the
/// command consumer runs boosted.
fn multi_subsystem_directives(a: &Run) -> Result<(), String> {
    a.whole()?;
    let acted = |interval: u64, subsystem: &str| {
        a.traces.iter().find(|trace| {
            trace["interval"] == interval && trace["subsystem"] == subsystem && trace["disposition"] == "acted"
        })
    };
    let intervals = number(a.after, "intervals")?;
    for interval in 0..intervals.saturating_sub(1) {
        let (Some(memory), Some(scheduling)) = (acted(interval, "memory"), acted(interval, "scheduling")) else {
            continue;
        };
        let next = a
            .traces
            .iter()
            .find(|trace| trace["interval"] == interval + 1 && trace["subsystem"] == "memory")
            .ok_or_else(|| format!("a memory decision in interval {}, got none", interval + 1))?;
        let inputs = &next["inputs"];
        let memory_seen = match memory["directive"]["directive"].as_str() {
            Some("throttle_allocations") => number(inputs, "requests_throttled")? > 0,
            Some("switch_strategy") => inputs["strategy"] == memory["directive"]["strategy"],
            Some("proactive_reclaim") => true,
            _ => false,
        };
        let scheduling_seen = match scheduling["directive"]["directive"].as_str() {
            Some("boost_priority") => inputs["commands_boosted"] == true,
            _ => false,
        };
        if !(memory_seen && scheduling_seen) {
            return Err(format!(
                "interval {interval}'s directives carried out by interval {}, got {memory} and {scheduling} then {inputs}",
                interval + 1
            ));
        }
        expect(a.after, "boosts_refused", 0)?;
        return Ok(());
    }
    Err(String::from("run A: an interval with an acted memory and an acted scheduling decision, got none"))
}

/// Every acted decision's outcome is measured and written into its trace: +1000 when the failure it
/// predicted did not come within the horizon, -1000 when it did; the counters agree with the traces. The
/// learned policy of run C learns from every interval's measured reward: one online training step every 4
/// transitions once it has 8.
fn reward_feedback(runs: &[&Run]) -> Result<(), String> {
    let mut resolved = 0;
    for run in runs {
        run.whole()?;
        for trace in run.traces {
            let reward = trace["reward_per_mille"].as_i64();
            let consistent = match trace["outcome"].as_str() {
                Some("succeeded") => reward == Some(1000),
                Some("failed") => reward == Some(-1000),
                Some("pending" | "untracked" | "not_tracked") => reward.is_none() && trace["disposition"] == "acted",
                Some("not_applicable") => reward.is_none() && trace["disposition"] != "acted",
                _ => false,
            };
            if !consistent {
                return Err(format!("run {}: outcome and reward agree, got {trace}", run.name));
            }
        }
        let outcomes = |name: &str| run.traces.iter().filter(|trace| trace["outcome"] == name).count() as u64;
        for (outcome, counter) in [("succeeded", "interventions_succeeded"), ("failed", "interventions_failed")] {
            run.expect_delta(counter, outcomes(outcome), &format!("{outcome} traces"))?;
        }
        resolved += outcomes("succeeded") + outcomes("failed");
    }
    if resolved == 0 {
        return Err(String::from("at least one measured outcome, got none"));
    }
    let learned = runs.last().ok_or("no runs")?;
    if learned.traces.iter().any(|trace| trace["policy"] != "learned") {
        return Err(String::from("run C decided by the learned policy"));
    }
    let transitions = (learned.traces.len() as u64).saturating_sub(1);
    let steps = (transitions / TRANSITIONS_PER_TRAINING_STEP)
        .saturating_sub((FIRST_TRAINING_TRANSITIONS - 1) / TRANSITIONS_PER_TRAINING_STEP);
    let updates = learned.delta("policy_updates")?;
    if steps == 0 || updates != steps {
        return Err(format!("run C: {steps} online training steps from {transitions} transitions, got {updates}"));
    }
    Ok(())
}
