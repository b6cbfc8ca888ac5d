//! `neuralctl inspect [--input a,b,c,d,e]`: the agent network's layers, shapes, parameter counts and weight
//! statistics, and every layer's output for an input (docs/commands.md).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_ai::ValueStats;
use sis_shell::{ArgValue, Invocation, Reply, ShellError, ValueKind};
use sis_stress::learning::{Action, STATE_NAMES, STATE_SIZE};

use super::super::inspect::{layers_json, layers_words, stats_json, stats_words};
use super::{no_agent, Kernel, AGENT};

/// `--input`: exactly [`STATE_SIZE`] finite numbers separated by commas.
pub const INPUT: ValueKind = ValueKind::Custom { value_name: "P,C,S,O,D", parse: parse_input };

fn parse_input(text: &str) -> Result<ArgValue, String> {
    state(text).map(|_| ArgValue::Str(String::from(text)))
}

/// The state `--input` gives, or why it is not one.
fn state(text: &str) -> Result<[f32; STATE_SIZE], String> {
    let refuse = || {
        alloc::format!(
            "expected {STATE_SIZE} finite numbers separated by commas ({}), e.g. 0.9,0.1,0.3,0,0.7",
            STATE_NAMES.join(", ")
        )
    };
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() != STATE_SIZE {
        return Err(alloc::format!("{} values given: {}", parts.len(), refuse()));
    }
    let mut state = [0.0f32; STATE_SIZE];
    for (slot, part) in state.iter_mut().zip(&parts) {
        *slot = part
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or_else(|| alloc::format!("{part:?} is not a finite number: {}", refuse()))?;
    }
    Ok(state)
}

/// `neuralctl inspect`.
pub fn inspect(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let input = match invocation.args.str("input") {
        Some(text) => Some(state(text).map_err(|why| ShellError::new(sis_shell::codes::INVALID_VALUE, why))?),
        None => None,
    };
    let (network, origin, training_steps) = {
        let guard = AGENT.lock();
        let installed = guard.as_ref().ok_or_else(no_agent)?;
        (installed.agent.network().clone(), installed.origin.describe(), installed.agent.training().0)
    };
    let layers = network.layers();
    let shape = network.shape();
    let parameters = network.parameter_count();
    let mut human = alloc::format!(
        "Agent network {shape:?}: {parameters} parameters, {training_steps} training steps ({origin}){}",
        layers_words(&layers)
    );
    let mut value = json!({
        "origin": origin,
        "training_steps": training_steps,
        "shape": shape,
        "parameters": parameters,
        "inputs": STATE_NAMES,
        "actions": Action::ALL.map(Action::name),
        "layers": layers_json(&layers),
        "input": null,
        "activations": null,
        "output": null,
    });
    if let Some(input) = input {
        let outputs = network.layer_outputs(&input);
        let named: Vec<String> =
            STATE_NAMES.iter().zip(&input).map(|(name, value)| alloc::format!("{name} {value}")).collect();
        human.push_str(&alloc::format!("\nActivations for input {}:", named.join(", ")));
        let mut activations: Vec<Value> = Vec::new();
        for (index, (output, layer)) in outputs.iter().zip(&layers).enumerate() {
            let stats = ValueStats::of(output.iter().copied());
            human.push_str(&alloc::format!("\n  layer {index} ({}): {}", layer.kind.name(), stats_words(&stats)));
            activations.push(json!({ "layer": index, "stats": stats_json(&stats), "values": output }));
        }
        let q_values = outputs.last().cloned().unwrap_or_default();
        let greedy =
            (0..q_values.len()).fold(0, |best, index| if q_values[index] > q_values[best] { index } else { best });
        human.push_str("\n  Output (Q-values):");
        for (action, q) in Action::ALL.iter().zip(&q_values) {
            human.push_str(&alloc::format!(" {} {q:.4}", action.name()));
        }
        let greedy_name = Action::ALL.get(greedy).map(|action| action.name());
        human.push_str(&alloc::format!("; greedy action {}", greedy_name.unwrap_or("none")));
        value["input"] = json!(input);
        value["activations"] = Value::Array(activations);
        value["output"] = json!({ "q_values": q_values, "greedy_action": greedy_name });
    }
    Ok(Reply::new(human, value))
}
