//! Phase 5, UX safety: one deterministic boot runs the heuristic meta-agent through a memory run under guardrails
//! tighter than its habits, then the learned policy of a seeded network, explains and inspects, gives and counts
//! feedback, and sends bad input along the way. The judge reads exact figures: blocks against the effector's own
//! records, invariants, every action's score and the attribution against the host's reference computed from the
//! same network, statistics against the host's, feedback against the traces it judged.

use serde_json::Value;
use sis_autonomy::{shapley, Feature};
use sis_stress::learning::{new_agent, LEARNED};

use super::judge::{expect, number, ok, refused};
use super::Verdict;

/// The probe's commands, one JSON reply each ([`REPLIES`] of them).
pub const UX_SAFETY_COMMANDS: &str = "safetyctl rules --json; safetyctl set throttle.max_per_mille 300 --json; \
     safetyctl set reclaim.max_per_window 1 --json; safetyctl set reclaim.window_ms 10000 --json; \
     safetyctl set no.such.rule 5 --json; safetyctl set throttle.max_per_mille 5000 --json; safetyctl rules --json; \
     autoctl on --json; stresstest memory --duration 2000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 \
     --seed 7 --expect-failures --json; memctl status --json; autoctl status --json; safetyctl status --json; \
     safetyctl validate --json; autoctl audit last 256 --json; neuralctl reset --seed 5 --json; \
     autoctl policy learned --json; autoctl on --json; stresstest memory --duration 300 --pool-mib 16 --seed 6 --json; \
     autoctl off --json; autoctl audit last 256 --json; autoctl explain 0 --json; autoctl explain 99999 --json; \
     neuralctl inspect --input 0.9,0.1,0.3,0,0.7 --json; neuralctl inspect --input 1,2 --json; \
     feedback 0 good --comment \"kept the pool up\" --json; feedback 1 bad --json; feedback 2 bad --json; \
     feedback 1 good --json; feedback 99999 good --json; feedback list --json; feedback stats --json";

/// Replies [`UX_SAFETY_COMMANDS`] prints.
const REPLIES: usize = 31;
/// The learned policy's network: `neuralctl reset --seed 5` lays a fresh agent out for 20 episodes.
const NETWORK_SEED: u64 = 5;
const RESET_EPISODES: u32 = 20;
/// The tight rules: a throttle of at most 300 per mille, one reclaim per 10 s.
const THROTTLE_LIMIT: u64 = 300;
/// The input `neuralctl inspect` is given.
const INSPECT_INPUT: [f32; 5] = [0.9, 0.1, 0.3, 0.0, 0.7];
/// Completeness of an attribution of f32 Q-values summed in f64.
const TOLERANCE: f64 = 1e-9;

/// The phase's tests: all nine.
const JUDGED: [&str; 9] = [
    "Inference guardrails",
    "Resource protection",
    "Safety validation",
    "Decision transparency",
    "Model introspection",
    "Feature importance",
    "Error reporting",
    "User feedback collection",
    "Feedback analysis",
];

/// Phase 5 from [`UX_SAFETY_COMMANDS`]'s replies.
pub fn ux_safety(replies: &[Value]) -> Vec<Verdict> {
    if replies.len() != REPLIES {
        let got = format!("{} JSON replies, expected {REPLIES}", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    vec![
        ("Inference guardrails", inference_guardrails(&replies[10], &replies[11], &replies[13])),
        ("Resource protection", resource_protection(replies)),
        ("Safety validation", safety_validation(&replies[6], &replies[12])),
        ("Decision transparency", decision_transparency(&replies[19])),
        ("Model introspection", model_introspection(&replies[22])),
        ("Feature importance", feature_importance(&replies[20])),
        ("Error reporting", error_reporting(replies)),
        ("User feedback collection", feedback_collection(replies)),
        ("Feedback analysis", feedback_analysis(&replies[29], &replies[30])),
    ]
}

fn at(value: &Value, pointer: &str) -> Result<u64, String> {
    value.pointer(pointer).and_then(Value::as_u64).ok_or_else(|| format!("{pointer} missing in {value}"))
}

fn f64_at(value: &Value, pointer: &str) -> Result<f64, String> {
    value.pointer(pointer).and_then(Value::as_f64).ok_or_else(|| format!("{pointer} missing in {value}"))
}

fn list<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    value[key].as_array().ok_or_else(|| format!("{key} list missing in {value}"))
}

/// A counter of `safetyctl status`'s `list` (`effectors` or `rules`) whose `key` is `name`.
fn counter(status: &Value, list_name: &str, key: &str, name: &str, field: &str) -> Result<u64, String> {
    let entry = list(status, list_name)?
        .iter()
        .find(|entry| entry[key] == name)
        .ok_or_else(|| format!("no {name} in {list_name}"))?;
    number(entry, field)
}

/// The heuristic under the tight rules: blocked, counted the same by the agent and the guardrails, every blocked
/// trace naming its rule and every acted throttle within it.
fn inference_guardrails(agent: &Value, safety: &Value, audit: &Value) -> Result<(), String> {
    let blocked = at(ok(safety)?, "/totals/blocked")?;
    if blocked == 0 {
        return Err(format!("decisions blocked by the tight rules, got none: {}", safety["totals"]));
    }
    expect(&ok(agent)?["metrics"], "decisions_blocked", blocked)?;
    let throttle = counter(safety, "rules", "rule", "throttle.max_per_mille", "blocked")?;
    let reclaim = counter(safety, "rules", "rule", "reclaim.max_per_window", "blocked")?;
    if throttle == 0 || throttle + reclaim != blocked {
        return Err(format!("blocks by throttle {throttle} + reclaim {reclaim} = {blocked}, throttle > 0"));
    }
    let traces = list(ok(audit)?, "traces")?;
    let blocked_traces: Vec<&Value> = traces.iter().filter(|trace| trace["disposition"] == "blocked").collect();
    if blocked_traces.is_empty() {
        return Err(String::from("blocked traces in the audit, got none"));
    }
    for trace in &blocked_traces {
        match trace["directive"]["directive"].as_str() {
            Some("throttle_allocations") if trace["blocked_by"] == "throttle.max_per_mille" => {
                if at(trace, "/directive/per_mille")? <= THROTTLE_LIMIT {
                    return Err(format!("a blocked throttle above {THROTTLE_LIMIT}, got {trace}"));
                }
            }
            Some("proactive_reclaim") if trace["blocked_by"] == "reclaim.max_per_window" => {}
            _ => return Err(format!("a blocked throttle or reclaim naming its rule, got {trace}")),
        }
    }
    for trace in traces.iter().filter(|trace| trace["disposition"] == "acted") {
        if trace["directive"]["directive"] == "throttle_allocations"
            && at(trace, "/directive/per_mille")? > THROTTLE_LIMIT
        {
            return Err(format!("acted throttles within {THROTTLE_LIMIT}, got {trace}"));
        }
    }
    Ok(())
}

/// The pool's own records: no throttle above the bound, at most one reclaim, and the reclaims it got are the ones
/// the guardrails committed.
fn resource_protection(replies: &[Value]) -> Result<(), String> {
    for (reply, rule) in [
        (&replies[1], "throttle.max_per_mille"),
        (&replies[2], "reclaim.max_per_window"),
        (&replies[3], "reclaim.window_ms"),
    ] {
        if ok(reply)?["rule"] != rule || reply["previous"] != 1000 {
            return Err(format!("{rule} set from its default 1000, got {reply}"));
        }
    }
    let port = &ok(&replies[9])?["port"];
    let max_throttle = number(port, "throttle_max_per_mille")?;
    if max_throttle > THROTTLE_LIMIT {
        return Err(format!("the pool's largest throttle at most {THROTTLE_LIMIT}, got {max_throttle}"));
    }
    let reclaims = number(port, "reclaims_requested")?;
    if reclaims > 1 {
        return Err(format!("at most 1 reclaim in the run, got {reclaims}"));
    }
    let committed = counter(&replies[11], "effectors", "effector", "memory_reclaim", "committed")?;
    if committed != reclaims {
        return Err(format!("reclaims committed {committed} = reclaims the pool got {reclaims}"));
    }
    Ok(())
}

/// `validate` reports every invariant the rules list, each held, the throttle's with the tight bound.
fn safety_validation(rules: &Value, validate: &Value) -> Result<(), String> {
    let invariants: Vec<&str> = list(ok(rules)?, "rules")?
        .iter()
        .filter(|rule| rule["kind"] == "invariant")
        .filter_map(|rule| rule["id"].as_str())
        .collect();
    let reports = list(ok(validate)?, "invariants")?;
    let reported: Vec<&str> = reports.iter().filter_map(|report| report["rule"].as_str()).collect();
    if invariants.is_empty() || reported != invariants {
        return Err(format!("every invariant {invariants:?} reported, got {reported:?}"));
    }
    expect(validate, "violated", 0)?;
    let held = number(validate, "held")?;
    if held + number(validate, "not_applicable")? != invariants.len() as u64 || held == 0 {
        return Err(format!("{} invariants held or not applicable, some held, got {validate}", invariants.len()));
    }
    let throttle = reports.iter().find(|report| report["rule"] == "throttle.max_per_mille");
    match throttle {
        Some(report) if report["status"] == "held" && report["limit"] == THROTTLE_LIMIT => Ok(()),
        _ => Err(format!("throttle.max_per_mille held against {THROTTLE_LIMIT}, got {throttle:?}")),
    }
}

/// The network `neuralctl reset --seed 5` installs, as the host builds it.
fn network_q(features: &[f64], action: usize) -> f64 {
    let agent = new_agent(NETWORK_SEED, RESET_EPISODES);
    let state: Vec<f32> = features.iter().map(|value| *value as f32).collect();
    f64::from(agent.network().forward(&state)[action])
}

/// A learned trace's features (schema order) and scores (action order).
fn recorded(trace: &Value) -> Result<(Vec<f64>, Vec<f64>), String> {
    let scoring = &trace["scoring"];
    if scoring["schema"] != LEARNED.name {
        return Err(format!("scoring schema {}, got {}", LEARNED.name, scoring["schema"]));
    }
    let values = LEARNED
        .features
        .iter()
        .map(|feature: &Feature| f64_at(scoring, &format!("/features/{}", feature.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let scores = LEARNED
        .actions
        .iter()
        .map(|action| f64_at(scoring, &format!("/scores/{action}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((values, scores))
}

/// Every learned decision shows its features, every action's score, the action chosen with the softmax confidence
/// of its score, and what became of it; the first decision's scores are the seeded network's Q-values.
fn decision_transparency(audit: &Value) -> Result<(), String> {
    let traces = list(ok(audit)?, "traces")?;
    if traces.len() < 3 {
        return Err(format!("at least 3 learned decisions, got {}", traces.len()));
    }
    for trace in traces {
        let (values, scores) = recorded(trace)?;
        let chosen = at(trace, "/reason/action")? as usize;
        if trace["scoring"]["chosen_action"] != LEARNED.actions[chosen] {
            return Err(format!("chosen action {} in the scoring, got {trace}", LEARNED.actions[chosen]));
        }
        let q: Vec<f32> = scores.iter().map(|score| *score as f32).collect();
        expect(trace, "confidence_per_mille", u64::from(sis_ai::softmax_per_mille(&q, chosen)))?;
        let known = ["acted", "held", "blocked", "no_action"];
        if !trace["disposition"].as_str().is_some_and(|disposition| known.contains(&disposition)) {
            return Err(format!("a disposition among {known:?}, got {}", trace["disposition"]));
        }
        if number(trace, "id")? == 0 {
            let host: Vec<f64> = (0..LEARNED.actions.len()).map(|action| network_q(&values, action)).collect();
            if scores != host {
                return Err(format!("decision 0 scored {host:?} by the seeded network, got {scores:?}"));
            }
        }
    }
    Ok(())
}

/// `neuralctl inspect`: parameters from the shape, each layer's weight statistics and the output as the host
/// computes them from the seeded network.
fn model_introspection(inspected: &Value) -> Result<(), String> {
    let agent = new_agent(NETWORK_SEED, RESET_EPISODES);
    let network = agent.network();
    let shape = network.shape();
    let per_layer: Vec<u64> = shape.windows(2).map(|pair| (pair[0] * pair[1] + pair[1]) as u64).collect();
    expect(ok(inspected)?, "parameters", per_layer.iter().sum())?;
    let layers = list(inspected, "layers")?;
    let host_layers = network.layers();
    if layers.len() != host_layers.len() {
        return Err(format!("{} layers, got {}", host_layers.len(), layers.len()));
    }
    for ((layer, host), parameters) in layers.iter().zip(&host_layers).zip(&per_layer) {
        expect(layer, "parameters", *parameters)?;
        let weights = (
            at(layer, "/weights/count")?,
            f64_at(layer, "/weights/min")?,
            f64_at(layer, "/weights/max")?,
            f64_at(layer, "/weights/mean")?,
            f64_at(layer, "/weights/std_dev")?,
        );
        let expected =
            (host.weights.count, host.weights.min, host.weights.max, host.weights.mean, host.weights.std_dev);
        if weights != expected {
            return Err(format!("weights (count, min, max, mean, std) {expected:?}, got {weights:?}"));
        }
    }
    let q: Vec<f64> = list(&inspected["output"], "q_values")?.iter().filter_map(Value::as_f64).collect();
    let host: Vec<f64> = network.forward(&INSPECT_INPUT).iter().map(|value| f64::from(*value)).collect();
    if q != host {
        return Err(format!("Q-values {host:?} for {INSPECT_INPUT:?}, got {q:?}"));
    }
    Ok(())
}

/// `autoctl explain 0`: one attribution per feature, adding up to the score's distance from the baseline's, equal
/// to the host's exact Shapley values of the seeded network's score of the chosen action.
fn feature_importance(explained: &Value) -> Result<(), String> {
    let trace = &ok(explained)?["trace"];
    let (values, scores) = recorded(trace)?;
    let explanation = &explained["explanation"];
    let chosen = at(trace, "/reason/action")? as usize;
    let host = shapley(&values, LEARNED.baseline, |features| network_q(features, chosen))
        .map_err(|error| format!("the host's attribution: {error:?}"))?;
    let features = list(explanation, "features")?;
    if features.len() != LEARNED.features.len() {
        return Err(format!("{} attributions, got {}", LEARNED.features.len(), features.len()));
    }
    let mut sum = 0.0;
    for feature in features {
        let index = LEARNED
            .features
            .iter()
            .position(|known| known.name == feature["name"])
            .ok_or_else(|| format!("a feature of the schema, got {feature}"))?;
        let contribution = f64_at(feature, "/contribution")?;
        if contribution != host.contributions()[index] {
            return Err(format!(
                "{} contributes {} on the host, got {contribution}",
                LEARNED.features[index].name,
                host.contributions()[index]
            ));
        }
        sum += contribution;
    }
    let (score, baseline) = (f64_at(explanation, "/score")?, f64_at(explanation, "/baseline_score")?);
    if score != scores[chosen] || (sum - (score - baseline)).abs() > TOLERANCE {
        return Err(format!("contributions adding up to {score} - {baseline}, got {sum}"));
    }
    let top = LEARNED.features[host.ranking()[0]].name;
    if explanation["features"][0]["name"] != top || host.contributions().iter().all(|value| *value == 0.0) {
        return Err(format!("{top} ranked first with a contribution, got {}", explanation["features"][0]));
    }
    Ok(())
}

/// Bad input gets a typed error with a stable code and a message, and changes nothing: the refused sets leave the
/// rules as the three accepted ones made them.
fn error_reporting(replies: &[Value]) -> Result<(), String> {
    for (index, code) in [(4, "unknown-rule"), (5, "out-of-range"), (21, "not-found"), (23, "invalid-value")] {
        let reply = refused(&replies[index], code)?;
        if reply["error"]["message"].as_str().is_none_or(str::is_empty) {
            return Err(format!("a message with {code}, got {reply}"));
        }
    }
    let value = |rules: &Value, id: &str| -> Result<u64, String> {
        let rule = list(rules, "rules")?.iter().find(|rule| rule["id"] == id).ok_or_else(|| format!("no rule {id}"))?;
        number(rule, "value")
    };
    for (id, before, after) in [
        ("throttle.max_per_mille", 1000, 300),
        ("reclaim.max_per_window", 1000, 1),
        ("reclaim.window_ms", 1000, 10_000),
    ] {
        let got = (value(ok(&replies[0])?, id)?, value(ok(&replies[6])?, id)?);
        if got != (before, after) {
            return Err(format!("{id} {before} then {after}, got {got:?}"));
        }
    }
    let unchanged = |rules: &Value| -> Vec<Value> {
        rules["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|rule| {
                !["throttle.max_per_mille", "reclaim.max_per_window", "reclaim.window_ms"]
                    .contains(&rule["id"].as_str().unwrap_or(""))
            })
            .cloned()
            .collect()
    };
    if unchanged(&replies[0]) != unchanged(&replies[6]) {
        return Err(String::from("every other rule unchanged by the refused sets"));
    }
    Ok(())
}

/// Verdicts on decisions 0, 1 and 2 are stored with the figures of the traces they judge; a second verdict on 1
/// and one on a decision never made are refused and store nothing.
fn feedback_collection(replies: &[Value]) -> Result<(), String> {
    let traces = list(ok(&replies[19])?, "traces")?;
    for (index, decision, verdict) in [(24, 0, "good"), (25, 1, "bad"), (26, 2, "bad")] {
        let stored = &ok(&replies[index])?["feedback"];
        let trace = traces
            .iter()
            .find(|trace| trace["id"] == decision)
            .ok_or_else(|| format!("decision {decision} in the audit"))?;
        let expected = (
            Value::from(decision),
            trace["at_ns"].clone(),
            trace["policy"].clone(),
            trace["directive"]["directive"].clone(),
            trace["disposition"].clone(),
            Value::from(verdict),
            Value::from("console"),
        );
        let got = (
            stored["decision"].clone(),
            stored["decision_at_ns"].clone(),
            stored["policy"].clone(),
            stored["action"].clone(),
            stored["disposition"].clone(),
            stored["verdict"].clone(),
            stored["principal"].clone(),
        );
        if got != expected {
            return Err(format!("feedback on {decision}: {expected:?}, got {got:?}"));
        }
    }
    if replies[24]["feedback"]["comment"] != "kept the pool up" {
        return Err(format!("the comment kept, got {}", replies[24]["feedback"]));
    }
    refused(&replies[27], "duplicate-feedback")?;
    refused(&replies[28], "not-found")?;
    let entries = list(ok(&replies[29])?, "entries")?;
    let stored: Vec<(u64, u64)> =
        entries.iter().filter_map(|entry| Some((entry["sequence"].as_u64()?, entry["decision"].as_u64()?))).collect();
    if stored != [(0, 0), (1, 1), (2, 2)] {
        return Err(format!("3 entries (sequence, decision) (0,0) (1,1) (2,2), got {stored:?}"));
    }
    Ok(())
}

/// `feedback stats` counts the stored verdicts exactly, by action and by policy.
fn feedback_analysis(listed: &Value, stats: &Value) -> Result<(), String> {
    let entries = list(ok(listed)?, "entries")?;
    let stats = &ok(stats)?["stats"];
    expect(stats, "total", 3)?;
    expect(stats, "good", 1)?;
    expect(stats, "bad", 2)?;
    expect(stats, "bad_per_mille", 666)?;
    for (group, key) in [("by_action", "action"), ("by_policy", "policy")] {
        for entry in list(stats, group)? {
            let name = &entry["key"];
            let count = |verdict: &str| {
                entries.iter().filter(|stored| &stored[key] == name && stored["verdict"] == verdict).count() as u64
            };
            expect(entry, "good", count("good"))?;
            expect(entry, "bad", count("bad"))?;
        }
        let total: u64 = list(stats, group)?
            .iter()
            .map(|entry| entry["good"].as_u64().unwrap_or(0) + entry["bad"].as_u64().unwrap_or(0))
            .sum();
        if total != 3 {
            return Err(format!("{group} adding up to 3, got {total}"));
        }
    }
    Ok(())
}
