//! `autoctl explain ID`: one decision's trace, every action's score and the attribution of the chosen action's
//! score to each input feature, computed here and timed (docs/autonomy.md, "Explanations").

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_autonomy::{
    attribute, Attribution, AttributionError, DecisionTrace, ExplainError, Feature, Prediction, ScorerUnavailable,
    Scoring, Telemetry,
};
use sis_platform::pmu;
use sis_shell::{Invocation, Reply, ShellError};

use super::{trace_line, with_state, Kernel};

/// `autoctl explain ID`.
pub fn explain(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let id = invocation.args.u64("id").unwrap_or(0);
    let (trace, scorer) = with_state(|state| {
        let agent = state.governor.agent();
        agent.explain(id).copied().map(|trace| (trace, agent.policy().scorer(&trace)))
    })?
    .map_err(not_found)?;
    let mut human = alloc::format!(
        "{}\n{}\n  threshold {} per mille, prediction {}, reward {}",
        trace_line(&trace),
        inputs_words(&trace.inputs),
        trace.threshold_per_mille,
        prediction_words(trace.prediction),
        trace.reward_per_mille.map_or(String::from("not yet known"), |reward| alloc::format!("{reward} per mille"))
    );
    let mut scorer = match scorer {
        Ok(scorer) => scorer,
        Err(ScorerUnavailable::NoScores { policy }) => {
            human.push_str(&alloc::format!("\n  {policy} gives no scores: there is nothing to attribute"));
            let unavailable = json!({ "code": "no_scores", "policy": policy });
            return Ok(Reply::new(
                human,
                json!({ "trace": trace, "explanation": null, "attribution_unavailable": unavailable }),
            ));
        }
        Err(refused) => return Err(scorer_error(refused)),
    };
    // Only the attribution is measured (the score function's copy of the network was made above).
    let measured = pmu::measure(|| attribute(&trace, &mut *scorer));
    let attribution = measured.value.map_err(attribution_error)?;
    let cost = Cost { ns: measured.ns, instructions: measured.instructions };
    human.push_str(&words(&trace.scoring, &attribution, &cost));
    Ok(Reply::new(human, json!({ "trace": trace, "explanation": explanation(&trace, &attribution, &cost) })))
}

/// The decision's inputs, named with their units, one group per line.
fn inputs_words(inputs: &Telemetry) -> String {
    let trend = match &inputs.trend {
        Some(trend) => alloc::format!(
            "{} of {} samples, latest {} per mille, slope {} per mille/s, {} per mille predicted {} ms ahead, fit {} per mille",
            trend.samples,
            trend.capacity,
            trend.latest_per_mille,
            trend.slope_per_mille_per_s,
            trend.predicted_per_mille,
            trend.horizon_ns / 1_000_000,
            trend.fit_per_mille
        ),
        None => String::from("none yet"),
    };
    alloc::format!(
        "  inputs at {} ms: pressure {} per mille, cache {} per mille, demand {} per mille, strategy {:?}\n    \
         trend: {trend}\n    \
         since the previous decision: {} workload steps, {} allocation requests, {} throttled, {} OOM events, \
         {} cache objects dropped, {} deadline misses in {} jobs\n    \
         commands: longest latency {} ns, queue depth {}, boosted {}",
        inputs.now_ns / 1_000_000,
        inputs.pressure_per_mille,
        inputs.cache_per_mille,
        inputs.demand_per_mille,
        inputs.strategy,
        inputs.steps,
        inputs.allocation_requests,
        inputs.requests_throttled,
        inputs.oom_events,
        inputs.cache_objects_dropped,
        inputs.deadline_misses,
        inputs.deadline_jobs,
        inputs.command_latency_max_ns,
        inputs.command_queue_depth,
        if inputs.commands_boosted { "yes" } else { "no" }
    )
}

/// The failure a directive was meant to prevent, in words.
fn prediction_words(prediction: Option<Prediction>) -> String {
    match prediction {
        None => String::from("none"),
        Some(Prediction::Oom) => String::from("an OOM event"),
        Some(Prediction::PressureAbove { per_mille }) => alloc::format!("pressure above {per_mille} per mille"),
        Some(Prediction::DeadlineMiss) => String::from("a deadline miss"),
        Some(Prediction::LatencyAbove { ns }) => alloc::format!("command latency above {ns} ns"),
    }
}

/// What the attribution cost.
struct Cost {
    ns: u64,
    instructions: Option<u64>,
}

pub(super) fn not_found(error: ExplainError) -> ShellError {
    let message = match error {
        ExplainError::NotIssued { id, next_id } => alloc::format!("no decision {id} yet (the next is {next_id})"),
        ExplainError::Evicted { id, oldest_kept } => {
            alloc::format!("decision {id} is no longer kept (the oldest kept is {oldest_kept})")
        }
    };
    ShellError::new("not-found", message)
}

fn scorer_error(refused: ScorerUnavailable) -> ShellError {
    match refused {
        ScorerUnavailable::NoScores { policy } => {
            ShellError::new("no-scores", alloc::format!("{policy} gives no scores"))
        }
        ScorerUnavailable::ForeignSchema { policy, schema } => ShellError::new(
            "foreign-schema",
            alloc::format!("the decision was scored as {schema}, which the {policy} policy does not score"),
        ),
        ScorerUnavailable::ModelNotKept { version, oldest_kept } => ShellError::new(
            "model-not-kept",
            alloc::format!(
                "the network version {version} that made this decision is no longer kept (the oldest kept is {oldest_kept})"
            ),
        ),
    }
}

fn attribution_error(error: AttributionError) -> ShellError {
    match error {
        AttributionError::NoScores => ShellError::new("no-scores", "the decision has no scores to attribute"),
        AttributionError::ScoreMismatch { action, recorded, recomputed } => ShellError::new(
            "score-mismatch",
            alloc::format!(
                "the score function gives {recomputed} for action {action}, the decision recorded {recorded}: it is not the function that decided"
            ),
        ),
        AttributionError::Shapley { error } => {
            ShellError::new("attribution-failed", alloc::format!("the attribution failed: {error:?}"))
        }
    }
}

/// `value` with at most four decimals, trailing zeros dropped.
fn number(value: f64) -> String {
    let text = alloc::format!("{value:.4}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    if text == "-0" {
        String::from("0")
    } else {
        String::from(text)
    }
}

/// A feature and its value in words: `pressure 950 per mille (95% of the pool in use)`.
fn feature_words(feature: &Feature, value: f64) -> String {
    if feature.unit == "flag" {
        return alloc::format!("{} {} ({})", feature.name, number(value), feature.meaning);
    }
    let unit = if feature.unit == "fraction" { String::new() } else { alloc::format!(" {}", feature.unit) };
    let reading = number(value * feature.reading_factor);
    let space = if feature.reading_unit == "%" || feature.reading_unit.is_empty() { "" } else { " " };
    alloc::format!(
        "{} {}{unit} ({reading}{space}{} {})",
        feature.name,
        number(value),
        feature.reading_unit,
        feature.meaning
    )
}

/// Every action's score, then the ranked features and what each did to the chosen action's score.
fn words(scoring: &Scoring, attribution: &Attribution, cost: &Cost) -> String {
    let schema = scoring.schema;
    let action = schema.actions[attribution.action];
    let shapley = &attribution.shapley;
    let mut text = alloc::format!("\n  Scores of every action ({}):", schema.score);
    let mut order: Vec<usize> = (0..schema.actions.len()).collect();
    order.sort_by(|a, b| scoring.scores()[*b].total_cmp(&scoring.scores()[*a]));
    for index in order {
        text.push_str(&alloc::format!(
            "\n    {:<24} {:>12}{}",
            schema.actions[index],
            number(scoring.scores()[index]),
            if index == attribution.action { "  <- chosen" } else { "" }
        ));
    }
    if shapley.score == shapley.baseline_score {
        text.push_str(&alloc::format!(
            "\n  {action} scored {}, the same as at the baseline ({}):",
            number(shapley.score),
            schema.baseline_meaning
        ));
    } else {
        text.push_str(&alloc::format!(
            "\n  Why {action} scored {} rather than {} (its score at the baseline: {}):",
            number(shapley.score),
            number(shapley.baseline_score),
            schema.baseline_meaning
        ));
    }
    let ranking = shapley.ranking();
    for (rank, &index) in ranking[..shapley.features()].iter().enumerate() {
        let contribution = shapley.contributions()[index];
        let effect = if contribution > 0.0 {
            alloc::format!("raised the score of {action} by {}", number(contribution))
        } else if contribution < 0.0 {
            alloc::format!("lowered the score of {action} by {}", number(-contribution))
        } else {
            String::from("changed nothing")
        };
        let largest = if rank == 0 && contribution != 0.0 { " - the largest contribution" } else { "" };
        text.push_str(&alloc::format!(
            "\n    {}. {} {effect}{largest}",
            rank + 1,
            feature_words(&schema.features[index], scoring.values()[index])
        ));
    }
    let instructions = cost
        .instructions
        .map_or(String::from("instructions not counted: the PMU counts them only under -icount"), |count| {
            alloc::format!("{} instructions", crate::format::thousands(count))
        });
    text.push_str(&alloc::format!(
        "\n  The contributions add up to {} = {} - {} (exact Shapley values over {} features: {} evaluations of the score function; computed in {} us, {instructions}).",
        number(shapley.contributions().iter().sum()),
        number(shapley.score),
        number(shapley.baseline_score),
        shapley.features(),
        shapley.evaluations,
        number(cost.ns as f64 / 1000.0),
    ));
    text
}

/// The explanation's JSON (docs/autonomy.md lists every field).
fn explanation(trace: &DecisionTrace, attribution: &Attribution, cost: &Cost) -> Value {
    let scoring = &trace.scoring;
    let schema = scoring.schema;
    let shapley = &attribution.shapley;
    let actions: Vec<Value> = schema
        .actions
        .iter()
        .enumerate()
        .map(|(index, name)| {
            json!({
                "action": name,
                "score": scoring.scores()[index],
                "baseline_score": attribution.baseline_scores()[index],
                "chosen": index == attribution.action,
            })
        })
        .collect();
    let ranking = shapley.ranking();
    let features: Vec<Value> = ranking[..shapley.features()]
        .iter()
        .enumerate()
        .map(|(rank, &index)| {
            let feature = &schema.features[index];
            let value = scoring.values()[index];
            json!({
                "rank": rank + 1,
                "name": feature.name,
                "value": value,
                "unit": feature.unit,
                "reading": value * feature.reading_factor,
                "reading_unit": feature.reading_unit,
                "meaning": feature.meaning,
                "baseline": schema.baseline[index],
                "contribution": shapley.contributions()[index],
            })
        })
        .collect();
    json!({
        "policy": trace.policy,
        "schema": schema.name,
        "score_meaning": schema.score,
        "model_version": scoring.model_version,
        "chosen_action": schema.actions[attribution.action],
        "score": shapley.score,
        "baseline_score": shapley.baseline_score,
        "baseline_meaning": schema.baseline_meaning,
        "actions": actions,
        "features": features,
        "contribution_sum": shapley.contributions().iter().sum::<f64>(),
        "completeness_error": shapley.completeness_error(),
        "method": "exact_shapley",
        "evaluations": shapley.evaluations,
        "config": trace.config,
        "cost": { "ns": cost.ns, "instructions": cost.instructions },
    })
}
