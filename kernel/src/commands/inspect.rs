//! Layer tables and activation summaries shared by `neuralctl inspect` and `llmctl inspect` (the statistics are
//! computed by sis-ai; this only prints them).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_ai::{LayerInfo, ValueStats};

/// A statistic with at most six significant decimals, for tables.
fn figure(value: f64) -> String {
    let text = alloc::format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        String::from("0")
    } else {
        String::from(text)
    }
}

/// `min .. max, mean M, std S, Z zeros of N`.
pub fn stats_words(stats: &ValueStats) -> String {
    alloc::format!(
        "min {} max {} mean {} std {}, {} zeros of {}",
        figure(stats.min),
        figure(stats.max),
        figure(stats.mean),
        figure(stats.std_dev),
        stats.zeros,
        stats.count
    )
}

/// The statistics' JSON: `count`, `min`, `max`, `mean`, `std_dev`, `zeros`.
pub fn stats_json(stats: &ValueStats) -> Value {
    json!({
        "count": stats.count,
        "min": stats.min,
        "max": stats.max,
        "mean": stats.mean,
        "std_dev": stats.std_dev,
        "zeros": stats.zeros,
    })
}

/// One line per layer: kind, shape, parameters, weight and bias statistics.
pub fn layers_words(layers: &[LayerInfo]) -> String {
    let mut text = String::new();
    for (index, layer) in layers.iter().enumerate() {
        text.push_str(&alloc::format!(
            "\n  layer {index}: {} {} -> {}, {} parameters\n    weights {}",
            layer.kind.name(),
            layer.inputs,
            layer.outputs,
            crate::format::thousands(layer.parameters()),
            stats_words(&layer.weights)
        ));
        if layer.biases.count > 0 {
            text.push_str(&alloc::format!("\n    biases  {}", stats_words(&layer.biases)));
        }
    }
    text
}

/// Every layer's JSON: `index`, `kind`, `inputs`, `outputs`, `parameters`, `weights`, `biases` (null for an
/// embedding).
pub fn layers_json(layers: &[LayerInfo]) -> Vec<Value> {
    layers
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            json!({
                "index": index,
                "kind": layer.kind.name(),
                "inputs": layer.inputs,
                "outputs": layer.outputs,
                "parameters": layer.parameters(),
                "weights": stats_json(&layer.weights),
                "biases": if layer.biases.count > 0 { stats_json(&layer.biases) } else { Value::Null },
            })
        })
        .collect()
}
