//! `llmctl inspect NAME[@VERSION] [--prompt TEXT]`: a loaded language model's layers, shapes, parameter counts and
//! weight statistics, and every layer's output for the byte after a prompt (docs/governance.md).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_ai::ValueStats;
use sis_shell::{Invocation, Reply, ShellError};

use super::super::inspect::{layers_json, layers_words, stats_json, stats_words};
use super::{error, required_model, Kernel};
use crate::governance;

/// Next bytes shown for a prompt.
const TOP_BYTES: usize = 5;

/// `llmctl inspect`.
pub fn inspect(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let model = required_model(invocation)?;
    let prompt = invocation.args.str("prompt").map(String::from);
    let (id, weights) = governance::loaded_model(&model).map_err(error)?;
    let architecture = weights.architecture();
    let layers = weights.layers();
    let parameters = weights.parameter_count();
    let mut human = alloc::format!(
        "{id}: byte-level language model, vocabulary {} bytes, context {} bytes, embedding {}, hidden {:?}; {} parameters{}",
        architecture.vocabulary.len(),
        architecture.context,
        architecture.embedding,
        architecture.hidden,
        crate::format::thousands(parameters as u64),
        layers_words(&layers)
    );
    let mut value = json!({
        "model": id.to_string(),
        "architecture": {
            "vocabulary_size": architecture.vocabulary.len(),
            "context": architecture.context,
            "embedding": architecture.embedding,
            "hidden": architecture.hidden,
        },
        "parameters": parameters,
        "layers": layers_json(&layers),
        "prompt": prompt,
        "activations": null,
        "output": null,
    });
    if let Some(prompt) = &prompt {
        let activations = weights.activations(prompt.as_bytes());
        human.push_str(&alloc::format!("\nActivations for the byte after {prompt:?}:"));
        let mut rows: Vec<Value> = Vec::new();
        for (index, output) in activations.iter().enumerate() {
            let stats = ValueStats::of(output.iter().copied());
            // Entry 0 is the embedding layer's output (the context's embeddings), the first dense layer's input.
            let name = layers.get(index).map_or("", |layer| layer.kind.name());
            human.push_str(&alloc::format!(
                "\n  layer {index} ({name}, {} values): {}",
                output.len(),
                stats_words(&stats)
            ));
            rows.push(json!({ "layer": index, "stats": stats_json(&stats) }));
        }
        let logits = activations.last().cloned().unwrap_or_default();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
        let top: Vec<Value> = order
            .iter()
            .take(TOP_BYTES)
            .map(|&token| {
                let byte = weights.byte(token as u8);
                json!({
                    "byte": byte,
                    "text": String::from(char::from(byte)),
                    "logit": logits[token],
                    "probability_per_mille": sis_ai::softmax_per_mille(&logits, token),
                })
            })
            .collect();
        human.push_str("\n  Most likely next bytes:");
        for entry in &top {
            human.push_str(&alloc::format!(
                " {:?} (logit {:.3}, {} per mille)",
                entry["text"].as_str().unwrap_or_default(),
                entry["logit"].as_f64().unwrap_or_default(),
                entry["probability_per_mille"]
            ));
        }
        value["activations"] = Value::Array(rows);
        value["output"] = json!({ "logits": stats_json(&ValueStats::of(logits.iter().copied())), "top": top });
    }
    Ok(Reply::new(human, value))
}
