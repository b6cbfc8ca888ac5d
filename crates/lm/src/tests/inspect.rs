//! Layer statistics against a direct computation from the parameters in format order, and activations against
//! the logits generation uses.

use sis_ai::{LayerKind, ValueStats};

use super::{random_model, shipped};

/// min, max, mean, population standard deviation and zeros of `values`, computed directly.
fn direct(values: &[f32]) -> (f64, f64, f64, f64, u64) {
    let wide: Vec<f64> = values.iter().map(|value| f64::from(*value)).collect();
    let n = wide.len() as f64;
    let mean = wide.iter().sum::<f64>() / n;
    let std_dev = (wide.iter().map(|value| (value - mean) * (value - mean)).sum::<f64>() / n).sqrt();
    let min = wide.iter().copied().fold(f64::INFINITY, f64::min);
    let max = wide.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max, mean, std_dev, values.iter().filter(|value| **value == 0.0).count() as u64)
}

fn assert_matches(stats: &ValueStats, values: &[f32]) {
    let (min, max, mean, std_dev, zeros) = direct(values);
    assert_eq!((stats.count, stats.min, stats.max, stats.zeros), (values.len() as u64, min, max, zeros));
    assert!((stats.mean - mean).abs() <= 1e-12 * mean.abs().max(1.0), "{} != {mean}", stats.mean);
    assert!((stats.std_dev - std_dev).abs() <= 1e-12 * std_dev.max(1.0), "{} != {std_dev}", stats.std_dev);
}

#[test]
fn layers_follow_the_format_order_of_the_parameters() {
    for model in [random_model(8), shipped()] {
        let parameters = model.parameters();
        let architecture = model.architecture().clone();
        let layers = model.layers();
        assert_eq!(layers.len(), architecture.hidden.len() + 2);
        assert_eq!(layers.iter().map(|layer| layer.parameters()).sum::<u64>(), architecture.parameter_count() as u64);
        let table = architecture.vocabulary.len() * architecture.embedding;
        assert_eq!(layers[0].kind, LayerKind::Embedding);
        assert_eq!((layers[0].inputs, layers[0].outputs), (architecture.vocabulary.len(), architecture.embedding));
        assert_eq!(layers[0].biases.count, 0);
        assert_matches(&layers[0].weights, &parameters[..table]);
        let mut offset = table;
        for (index, (layer, (inputs, outputs))) in layers[1..].iter().zip(architecture.layer_shapes()).enumerate() {
            let last = index == architecture.hidden.len();
            assert_eq!(layer.kind, if last { LayerKind::DenseLinear } else { LayerKind::DenseRelu });
            assert_eq!((layer.inputs, layer.outputs), (inputs, outputs));
            assert_matches(&layer.weights, &parameters[offset..offset + inputs * outputs]);
            offset += inputs * outputs;
            assert_matches(&layer.biases, &parameters[offset..offset + outputs]);
            offset += outputs;
        }
        assert_eq!(offset, parameters.len());
    }
}

#[test]
fn activations_end_in_the_logits_generation_uses() {
    for model in [random_model(9), shipped()] {
        let prompt = b"To be, or not";
        let activations = model.activations(prompt);
        let architecture = model.architecture();
        assert_eq!(activations.len(), architecture.hidden.len() + 2);
        // The input: the context's embeddings end to end.
        let width = architecture.embedding;
        let context = model.context_after(prompt);
        let parameters = model.parameters();
        let expected: Vec<f32> = context
            .iter()
            .flat_map(|&token| parameters[token as usize * width..(token as usize + 1) * width].iter().copied())
            .collect();
        assert_eq!(activations[0], expected);
        for (layer, output) in architecture.hidden.iter().zip(&activations[1..]) {
            assert_eq!(output.len(), *layer);
            assert!(output.iter().all(|value| *value >= 0.0), "ReLU");
        }
        assert_eq!(activations.last().unwrap(), &model.next_logits(prompt));
    }
}
