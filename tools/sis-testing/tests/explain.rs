//! QEMU tests of explanations and model introspection, in deterministic mode: `autoctl explain` of real
//! heuristic and learned decisions against the same attribution computed on the host from the trace's
//! recorded inputs, `neuralctl inspect` against the network the host rebuilds from the same seed, and
//! `llmctl inspect` against the shipped artifact's weights; bad input gets clear errors.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use sis_autonomy::{
    memory_scores, scheduling_scores, shapley, Heuristic, MemoryStrategy, MetaConfig, Policy, Schema, Telemetry,
    TrendEstimate, HEURISTIC_MEMORY, HEURISTIC_SCHEDULING,
};
use sis_governance::artifact;
use sis_governance::keys::TrustedKeys;
use sis_testing::{run_batch, QemuConfig, Sis, DEFAULT_ICOUNT_SHIFT};

const ARTIFACT: &[u8] = include_bytes!("../../../models/shakespeare-lm.sismodel");
const TEST_KEY: &str = include_str!("../../../models/keys/sis-test.pub");
/// The episodes `neuralctl reset` lays a fresh agent's exploration out for (its weights depend on the seed only).
const RESET_EPISODES: u32 = 20;
/// Completeness of f64 sums of f32 Q-values (the heuristic's integer scores give exact sums).
const TOLERANCE: f64 = 1e-9;

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new().deterministic().timeout(Duration::from_secs(180))).unwrap()
}

fn ok(json: Value) -> Value {
    assert_eq!(json["ok"], true, "{json}");
    json
}

fn refused<'a>(json: &'a Value, code: &str) -> &'a str {
    assert_eq!(json["ok"], false, "{json}");
    assert_eq!(json["error"]["code"], code, "{json}");
    json["error"]["message"].as_str().unwrap()
}

fn f64_of(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {value}"))
}

/// The telemetry a trace recorded, rebuilt from its JSON.
fn telemetry(inputs: &Value) -> Telemetry {
    let trend = (!inputs["trend"].is_null()).then(|| {
        let trend = &inputs["trend"];
        TrendEstimate {
            samples: u64_of(trend, "samples") as u16,
            capacity: u64_of(trend, "capacity") as u16,
            latest_per_mille: u64_of(trend, "latest_per_mille") as u16,
            slope_per_mille_per_s: trend["slope_per_mille_per_s"].as_i64().unwrap(),
            horizon_ns: u64_of(trend, "horizon_ns"),
            predicted_per_mille: u64_of(trend, "predicted_per_mille") as u16,
            fit_per_mille: u64_of(trend, "fit_per_mille") as u16,
        }
    });
    let strategy = match inputs["strategy"].as_str().unwrap() {
        "aggressive" => MemoryStrategy::Aggressive,
        "balanced" => MemoryStrategy::Balanced,
        "conservative" => MemoryStrategy::Conservative,
        other => panic!("strategy {other}"),
    };
    Telemetry {
        now_ns: u64_of(inputs, "now_ns"),
        pressure_per_mille: u64_of(inputs, "pressure_per_mille") as u16,
        trend,
        cache_per_mille: u64_of(inputs, "cache_per_mille") as u16,
        demand_per_mille: u64_of(inputs, "demand_per_mille") as u16,
        oom_events: u64_of(inputs, "oom_events") as u32,
        steps: u64_of(inputs, "steps"),
        allocation_requests: u64_of(inputs, "allocation_requests"),
        requests_throttled: u64_of(inputs, "requests_throttled"),
        cache_objects_dropped: u64_of(inputs, "cache_objects_dropped"),
        deadline_misses: u64_of(inputs, "deadline_misses") as u32,
        deadline_jobs: u64_of(inputs, "deadline_jobs") as u32,
        command_latency_max_ns: u64_of(inputs, "command_latency_max_ns"),
        command_queue_depth: u64_of(inputs, "command_queue_depth") as u32,
        commands_boosted: inputs["commands_boosted"].as_bool().unwrap(),
        strategy,
    }
}

/// The configuration an explanation reports.
fn config(json: &Value) -> MetaConfig {
    let u16_of = |key: &str| u64_of(json, key) as u16;
    MetaConfig {
        confidence_threshold_per_mille: u16_of("confidence_threshold_per_mille"),
        horizon_ns: u64_of(json, "horizon_ns"),
        reclaim_at_per_mille: u16_of("reclaim_at_per_mille"),
        throttle_at_per_mille: u16_of("throttle_at_per_mille"),
        relax_below_per_mille: u16_of("relax_below_per_mille"),
        oom_throttle_per_mille: u16_of("oom_throttle_per_mille"),
        deadline_miss_limit: u64_of(json, "deadline_miss_limit") as u32,
        latency_limit_ns: u64_of(json, "latency_limit_ns"),
        deadline_relax_per_mille: u16_of("deadline_relax_per_mille"),
        queue_depth_limit: u64_of(json, "queue_depth_limit") as u32,
        output_lines_per_second: u64_of(json, "output_lines_per_second") as u32,
    }
}

/// A trace's feature values in its schema's order, and its scores in the schema's action order.
fn recorded(trace: &Value, schema: &Schema) -> (Vec<f64>, Vec<f64>) {
    let scoring = &trace["scoring"];
    assert_eq!(scoring["schema"], schema.name);
    assert_eq!(scoring["features"].as_object().unwrap().len(), schema.features.len());
    assert_eq!(scoring["scores"].as_object().unwrap().len(), schema.actions.len());
    let values = schema.features.iter().map(|feature| f64_of(&scoring["features"][feature.name])).collect();
    let scores = schema.actions.iter().map(|action| f64_of(&scoring["scores"][*action])).collect();
    (values, scores)
}

/// Checks an explanation's own arithmetic: one ranked entry per schema feature with its recorded value, the
/// contributions adding up to score − baseline score, every action's recorded score, the cost measured in
/// instructions and time of the same span. Returns the contributions by feature name, in schema order.
fn check_explanation(explained: &Value, schema: &Schema, values: &[f64], scores: &[f64]) -> Vec<f64> {
    let explanation = &explained["explanation"];
    assert_eq!(explanation["schema"], schema.name);
    assert_eq!(explanation["method"], "exact_shapley");
    assert_eq!(u64_of(explanation, "evaluations"), 1 << schema.features.len());
    let features = explanation["features"].as_array().unwrap();
    let names: BTreeSet<&str> = features.iter().map(|feature| feature["name"].as_str().unwrap()).collect();
    assert_eq!(names, schema.features.iter().map(|feature| feature.name).collect::<BTreeSet<_>>());
    let mut contributions = vec![0.0; schema.features.len()];
    for (rank, feature) in features.iter().enumerate() {
        assert_eq!(u64_of(feature, "rank"), rank as u64 + 1);
        let index = schema.features.iter().position(|known| known.name == feature["name"]).unwrap();
        assert_eq!(f64_of(&feature["value"]), values[index]);
        assert_eq!(feature["unit"], schema.features[index].unit);
        assert_eq!(f64_of(&feature["baseline"]), schema.baseline[index]);
        contributions[index] = f64_of(&feature["contribution"]);
    }
    // Ranked by magnitude.
    let magnitudes: Vec<f64> = features.iter().map(|feature| f64_of(&feature["contribution"]).abs()).collect();
    assert!(magnitudes.windows(2).all(|pair| pair[0] >= pair[1]), "{magnitudes:?}");
    let (score, baseline) = (f64_of(&explanation["score"]), f64_of(&explanation["baseline_score"]));
    let sum: f64 = contributions.iter().sum();
    assert!((sum - (score - baseline)).abs() <= TOLERANCE, "{sum} != {score} - {baseline}");
    assert!(f64_of(&explanation["completeness_error"]) <= TOLERANCE);
    let actions = explanation["actions"].as_array().unwrap();
    assert_eq!(actions.len(), schema.actions.len());
    for ((entry, name), recorded) in actions.iter().zip(schema.actions).zip(scores) {
        assert_eq!((entry["action"].as_str(), f64_of(&entry["score"])), (Some(*name), *recorded));
    }
    let chosen = schema.actions.iter().position(|action| *action == explanation["chosen_action"]).unwrap();
    assert_eq!(score, scores[chosen]);
    // Deterministic mode: the PMU counts instructions, and guest time is 2^shift ns per instruction, so the two
    // measurements of the same span agree (time also covers the two counter reads and the clock conversions).
    let cost = &explanation["cost"];
    let instructions = u64_of(cost, "instructions");
    let per_instruction_ns = 1u64 << DEFAULT_ICOUNT_SHIFT;
    let ns = u64_of(cost, "ns");
    assert!(instructions > 1000, "{cost}");
    assert!(
        ns + 2 * per_instruction_ns >= instructions * per_instruction_ns
            && ns <= (instructions + 2_000) * per_instruction_ns,
        "{cost}"
    );
    contributions
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn explanations_of_heuristic_decisions_are_the_hosts_attributions_of_the_recorded_inputs() {
    let mut sis = boot();
    ok(sis.run_json("autoctl on --json").unwrap());
    sis.run_json("stresstest memory --duration 300 --pool-mib 16 --seed 6 --json").unwrap();
    let audit = ok(sis.run_json("autoctl audit last 256 --json").unwrap());
    let traces = audit["traces"].as_array().unwrap();
    assert!(traces.len() >= 28, "{} decisions", traces.len());
    // One decision for each action the heuristic chose with a score above its baseline's (0).
    let mut explained = BTreeSet::new();
    for trace in traces {
        let schema = match trace["subsystem"].as_str().unwrap() {
            "memory" => &HEURISTIC_MEMORY,
            _ => &HEURISTIC_SCHEDULING,
        };
        let (values, scores) = recorded(trace, schema);
        let chosen_name = trace["scoring"]["chosen_action"].as_str().unwrap();
        let chosen = schema.actions.iter().position(|action| *action == chosen_name).unwrap();
        assert_eq!(scores[chosen], f64_of(&trace["confidence_per_mille"]), "{trace}");
        if scores[chosen] == 0.0 || !explained.insert(chosen_name) {
            continue;
        }
        let id = u64_of(trace, "id");
        let reply = ok(sis.run_json(&format!("autoctl explain {id} --json")).unwrap());
        assert_eq!((&reply["trace"]["inputs"], &reply["trace"]["scoring"]), (&trace["inputs"], &trace["scoring"]));
        let contributions = check_explanation(&reply, schema, &values, &scores);
        // The host: the heuristic on the telemetry the trace recorded, with the thresholds the explanation used,
        // gives the same features, scores and choice...
        let inputs = telemetry(&trace["inputs"]);
        let config = config(&reply["explanation"]["config"]);
        let decision = if schema == &HEURISTIC_MEMORY {
            Heuristic.decide(&inputs, &config)
        } else {
            Heuristic.decide_scheduling(&inputs, &config).unwrap()
        };
        assert_eq!(decision.scoring.values(), &values[..]);
        assert_eq!(decision.scoring.scores(), &scores[..]);
        assert_eq!(decision.scoring.chosen(), Some(chosen));
        assert_eq!(u64::from(decision.confidence_per_mille), u64_of(trace, "confidence_per_mille"));
        // ... and the same Shapley values, exactly: integer scores, the same arithmetic.
        let host = shapley(&values, schema.baseline, |features| {
            if schema == &HEURISTIC_MEMORY {
                memory_scores(features, &config)[chosen]
            } else {
                scheduling_scores(features, &config)[chosen]
            }
        })
        .unwrap();
        assert_eq!(host.contributions(), &contributions[..], "decision {id}");
        let top = &reply["explanation"]["features"][0];
        assert_eq!(top["name"], schema.features[host.ranking()[0]].name, "decision {id}");
        assert_ne!(f64_of(&top["contribution"]), 0.0);
        let human = sis.run(&format!("autoctl explain {id}")).unwrap().text;
        let top_line = format!("1. {} ", schema.features[host.ranking()[0]].name);
        assert!(human.contains(&top_line) && human.contains("the largest contribution"), "{human}");
    }
    assert!(explained.contains("switch_to_conservative"), "{explained:?}");

    // Bad ids: not issued yet, and (after more than the 256 decisions kept) no longer kept; the errors say which.
    let status = ok(sis.run_json("autoctl status --json").unwrap());
    let decisions = u64_of(&status, "decisions");
    let message =
        refused(&sis.run_json(&format!("autoctl explain {} --json", decisions + 5)).unwrap(), "not-found").to_string();
    assert_eq!(message, format!("no decision {} yet (the next is {decisions})", decisions + 5));
    // One decision per 10 ms interval.
    sis.run_json("stresstest memory --duration 3000 --pool-mib 16 --seed 7 --json").unwrap();
    let decisions = u64_of(&ok(sis.run_json("autoctl status --json").unwrap()), "decisions");
    assert!(decisions > 256 + 20, "{decisions}");
    let evicted = sis.run_json("autoctl explain 0 --json").unwrap();
    assert_eq!(
        refused(&evicted, "not-found"),
        format!("decision 0 is no longer kept (the oldest kept is {})", decisions - 256)
    );
    refused(&sis.run_json("autoctl explain first --json").unwrap(), "invalid-value");
    ok(sis.run_json(&format!("autoctl explain {} --json", decisions - 256)).unwrap());
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn explanations_of_learned_decisions_use_the_network_that_decided() {
    let seed = 5;
    let mut sis = boot();
    ok(sis.run_json(&format!("neuralctl reset --seed {seed} --json")).unwrap());
    ok(sis.run_json("autoctl policy learned --json").unwrap());
    ok(sis.run_json("autoctl on --json").unwrap());
    sis.run_json("stresstest memory --duration 300 --pool-mib 16 --seed 6 --json").unwrap();
    let schema = &sis_stress::learning::LEARNED;
    let agent = sis_stress::learning::new_agent(seed, RESET_EPISODES);
    let network = agent.network();
    let q = |features: &[f64], action: usize| {
        let state: Vec<f32> = features.iter().map(|value| *value as f32).collect();
        f64::from(network.forward(&state)[action])
    };

    // The first decision was made by the untrained network the host rebuilds from the seed.
    let first = ok(sis.run_json("autoctl explain 0 --json").unwrap());
    let trace = &first["trace"];
    assert_eq!((trace["policy"].as_str(), trace["scoring"]["model_version"].as_u64()), (Some("learned"), Some(0)));
    let (values, scores) = recorded(trace, schema);
    assert_eq!(values[1], 0.0, "no previous decision: no pressure change");
    let host_scores: Vec<f64> = (0..schema.actions.len()).map(|action| q(&values, action)).collect();
    assert_eq!(scores, host_scores, "the recorded scores are the network's Q-values");
    let contributions = check_explanation(&first, schema, &values, &scores);
    let chosen = u64_of(&trace["reason"], "action") as usize;
    assert_eq!(first["explanation"]["chosen_action"], schema.actions[chosen]);
    let host = shapley(&values, schema.baseline, |features| q(features, chosen)).unwrap();
    assert_eq!(host.contributions(), &contributions[..], "the host's Shapley values, bit for bit");
    assert_eq!(f64_of(&first["explanation"]["baseline_score"]), q(&[0.0; 5], chosen));
    assert_eq!(first["explanation"]["features"][0]["name"], schema.features[host.ranking()[0]].name);

    // The last decision: the network had trained since, and the explanation uses that later version.
    let last = ok(sis.run_json("autoctl audit last 1 --json").unwrap())["traces"][0].clone();
    let version = u64_of(&last["scoring"], "model_version");
    let status = ok(sis.run_json("autoctl status --json").unwrap());
    assert_eq!(version, u64_of(&status["metrics"], "policy_updates"), "one version per training step");
    assert!(version > 0, "the policy trained during the run");
    let explained = ok(sis.run_json(&format!("autoctl explain {} --json", u64_of(&last, "id"))).unwrap());
    let (values, scores) = recorded(&last, schema);
    check_explanation(&explained, schema, &values, &scores);
    assert_eq!(u64_of(&explained["explanation"], "model_version"), version);
    let untrained: Vec<f64> = (0..schema.actions.len()).map(|action| q(&values, action)).collect();
    assert_ne!(scores, untrained, "scored by a trained version, not the first");

    // never-act gives no scores: the trace is explained, with nothing to attribute.
    ok(sis.run_json("autoctl policy never-act --json").unwrap());
    sis.run_json("stresstest memory --duration 50 --pool-mib 16 --seed 6 --json").unwrap();
    let never = ok(sis.run_json("autoctl explain 0 --json").unwrap());
    assert_eq!(never["explanation"], Value::Null);
    assert_eq!(never["attribution_unavailable"]["code"], "no_scores");
    assert_eq!(never["trace"]["scoring"]["schema"], "none");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn neuralctl_inspect_reports_the_network_the_host_rebuilds_from_the_seed() {
    let config = QemuConfig::new()
        .batch(
            "neuralctl inspect --json; neuralctl reset --seed 9 --json; \
             neuralctl inspect --input 0.9,0.1,0.3,0,0.7 --json; neuralctl inspect --input 1,2 --json; \
             neuralctl inspect --input 0.9,x,0.3,0,0.7 --json; neuralctl inspect --json",
        )
        .deterministic();
    let replies = run_batch(&config).unwrap().json_lines().unwrap();
    assert_eq!(replies.len(), 6);
    refused(&replies[0], "no-agent");
    let inspected = &replies[2];
    assert_eq!(inspected["ok"], true, "{inspected}");
    let agent = sis_stress::learning::new_agent(9, RESET_EPISODES);
    let network = agent.network();
    let shape = network.shape();
    assert_eq!(inspected["shape"], serde_json::json!(shape));
    // Parameter counts are the shape's arithmetic.
    let per_layer: Vec<u64> = shape.windows(2).map(|pair| (pair[0] * pair[1] + pair[1]) as u64).collect();
    assert_eq!(u64_of(inspected, "parameters"), per_layer.iter().sum::<u64>());
    assert_eq!(per_layer, [5 * 16 + 16, 16 * 3 + 3]);
    let layers = inspected["layers"].as_array().unwrap();
    let host_layers = network.layers();
    assert_eq!(layers.len(), host_layers.len());
    for (index, ((layer, host), parameters)) in layers.iter().zip(&host_layers).zip(&per_layer).enumerate() {
        assert_eq!(u64_of(layer, "parameters"), *parameters);
        assert_eq!((u64_of(layer, "inputs"), u64_of(layer, "outputs")), (shape[index] as u64, shape[index + 1] as u64));
        assert_eq!(layer["kind"], host.kind.name());
        for (json, stats) in [(&layer["weights"], &host.weights), (&layer["biases"], &host.biases)] {
            assert_eq!(
                (u64_of(json, "count"), f64_of(&json["min"]), f64_of(&json["max"])),
                (stats.count, stats.min, stats.max)
            );
            assert_eq!((f64_of(&json["mean"]), f64_of(&json["std_dev"])), (stats.mean, stats.std_dev), "{json}");
            assert_eq!(u64_of(json, "zeros"), stats.zeros);
        }
    }
    // Activations: every layer's output, as the host's forward pass computes it.
    let input = [0.9f32, 0.1, 0.3, 0.0, 0.7];
    let outputs = network.layer_outputs(&input);
    let activations = inspected["activations"].as_array().unwrap();
    assert_eq!(activations.len(), outputs.len());
    for (activation, output) in activations.iter().zip(&outputs) {
        let values: Vec<f32> =
            activation["values"].as_array().unwrap().iter().map(|value| f64_of(value) as f32).collect();
        assert_eq!(&values, output);
        let stats = sis_ai::ValueStats::of(output.iter().copied());
        assert_eq!(f64_of(&activation["stats"]["mean"]), stats.mean);
        assert_eq!(u64_of(&activation["stats"], "zeros"), stats.zeros);
    }
    let q: Vec<f64> = inspected["output"]["q_values"].as_array().unwrap().iter().map(f64_of).collect();
    assert_eq!(q, network.forward(&input).iter().map(|value| f64::from(*value)).collect::<Vec<_>>());
    assert_eq!(inspected["output"]["greedy_action"], ["nothing", "reclaim", "throttle"][agent.greedy(&input)]);
    // Malformed inputs are refused with what was expected, and change nothing.
    assert!(refused(&replies[3], "invalid-value").contains("2 values given"));
    assert!(refused(&replies[4], "invalid-value").contains("\"x\" is not a finite number"));
    assert_eq!(replies[5]["layers"], inspected["layers"]);
    assert_eq!(replies[5]["activations"], Value::Null);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn llmctl_inspect_reports_the_statistics_of_the_shipped_weights() {
    let prompt = "To be, or not";
    let config = QemuConfig::new()
        .batch(&format!(
            "llmctl inspect shakespeare-lm --json; llmctl register builtin --json; \
             llmctl inspect shakespeare-lm --json; llmctl load shakespeare-lm --json; \
             llmctl inspect shakespeare-lm --prompt \"{prompt}\" --json; llmctl inspect shakespeare-lm@9.9.9 --json; \
             llmctl inspect 'bad name!' --json"
        ))
        .deterministic();
    let replies = run_batch(&config).unwrap().json_lines().unwrap();
    assert_eq!(replies.len(), 7);
    refused(&replies[0], "unknown-model");
    refused(&replies[2], "not-loaded");
    let inspected = &replies[4];
    assert_eq!(inspected["ok"], true, "{inspected}");
    let mut keys = TrustedKeys::new();
    keys.add_hex(TEST_KEY.trim()).unwrap();
    let verified = artifact::decode(ARTIFACT, &keys).unwrap();
    let model = sis_lm::Model::from_bytes(verified.weights).unwrap();
    let architecture = model.architecture();
    assert_eq!(inspected["model"], "shakespeare-lm@1.0.0");
    assert_eq!(u64_of(inspected, "parameters"), architecture.parameter_count() as u64);
    // The shapes' arithmetic: the embedding table, then each dense layer's weights and biases.
    let mut expected = vec![(architecture.vocabulary.len() * architecture.embedding) as u64];
    expected.extend(architecture.layer_shapes().iter().map(|(inputs, outputs)| (inputs * outputs + outputs) as u64));
    let layers = inspected["layers"].as_array().unwrap();
    assert_eq!(layers.iter().map(|layer| u64_of(layer, "parameters")).collect::<Vec<_>>(), expected);
    assert_eq!(expected.iter().sum::<u64>(), architecture.parameter_count() as u64);
    for (layer, host) in layers.iter().zip(model.layers()) {
        assert_eq!(layer["kind"], host.kind.name());
        let weights = &layer["weights"];
        assert_eq!(
            (u64_of(weights, "count"), f64_of(&weights["min"]), f64_of(&weights["max"]), u64_of(weights, "zeros")),
            (host.weights.count, host.weights.min, host.weights.max, host.weights.zeros)
        );
        assert_eq!((f64_of(&weights["mean"]), f64_of(&weights["std_dev"])), (host.weights.mean, host.weights.std_dev));
        if host.biases.count == 0 {
            assert_eq!(layer["biases"], Value::Null);
        } else {
            assert_eq!(f64_of(&layer["biases"]["mean"]), host.biases.mean);
            assert_eq!(f64_of(&layer["biases"]["std_dev"]), host.biases.std_dev);
        }
    }
    let activations = model.activations(prompt.as_bytes());
    let reported = inspected["activations"].as_array().unwrap();
    assert_eq!(reported.len(), activations.len());
    for (json, values) in reported.iter().zip(&activations) {
        let stats = sis_ai::ValueStats::of(values.iter().copied());
        assert_eq!(u64_of(&json["stats"], "count"), stats.count);
        assert_eq!((f64_of(&json["stats"]["mean"]), f64_of(&json["stats"]["std_dev"])), (stats.mean, stats.std_dev));
    }
    let logits = model.next_logits(prompt.as_bytes());
    let best = (0..logits.len()).fold(0, |best, token| if logits[token] > logits[best] { token } else { best });
    assert_eq!(u64_of(&inspected["output"]["top"][0], "byte"), u64::from(model.byte(best as u8)));
    assert_eq!(f64_of(&inspected["output"]["top"][0]["logit"]), f64::from(logits[best]));
    refused(&replies[5], "unknown-version");
    assert_eq!(replies[6]["ok"], false, "{}", replies[6]);
}
