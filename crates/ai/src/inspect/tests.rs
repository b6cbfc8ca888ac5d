//! Layer statistics against a direct computation from the network's parameters, and layer outputs against the
//! forward pass.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::Random;

/// The statistics computed directly: sorted copies for min and max, the textbook formulas in f64.
fn direct(values: &[f32]) -> (f64, f64, f64, f64, u64) {
    let mut sorted: Vec<f64> = values.iter().map(|value| f64::from(*value)).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let variance = sorted.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / n;
    let zeros = values.iter().filter(|value| **value == 0.0).count() as u64;
    (sorted[0], sorted[sorted.len() - 1], mean, variance.sqrt(), zeros)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn statistics_match_a_direct_computation() {
    let values = [3.0f32, -1.5, 0.0, 0.0, 2.25, -0.0, 7.0];
    let stats = ValueStats::of(values.iter().copied());
    let (min, max, mean, std_dev, zeros) = direct(&values);
    assert_eq!((stats.count, stats.min, stats.max, stats.zeros), (7, min, max, zeros));
    assert_eq!((min, max, zeros), (-1.5, 7.0, 3));
    assert!(close(stats.mean, mean) && close(stats.std_dev, std_dev), "{stats:?}");
    // 10.75 / 7, and the population deviation of these seven values.
    assert!(close(stats.mean, 10.75 / 7.0));
    let empty = ValueStats::of(core::iter::empty());
    assert_eq!((empty.count, empty.min, empty.max, empty.mean, empty.std_dev, empty.zeros), (0, 0.0, 0.0, 0.0, 0.0, 0));
    let one = ValueStats::of([-2.0f32].into_iter());
    assert_eq!((one.min, one.max, one.mean, one.std_dev), (-2.0, -2.0, -2.0, 0.0));
}

#[test]
fn layers_match_the_parameters_layer_by_layer() {
    let mut random = Random::new(12);
    let network = Network::new(&[5, 16, 7, 3], &mut random);
    let parameters = network.parameters();
    let layers = network.layers();
    assert_eq!(layers.len(), 3);
    let mut offset = 0;
    for (layer, (inputs, outputs)) in layers.iter().zip([(5, 16), (16, 7), (7, 3)]) {
        assert_eq!((layer.inputs, layer.outputs), (inputs, outputs));
        assert_eq!(layer.parameters(), (inputs * outputs + outputs) as u64);
        // Network::parameters: each layer's weights row by row, then its biases.
        let weights = &parameters[offset..offset + inputs * outputs];
        let biases = &parameters[offset + inputs * outputs..offset + inputs * outputs + outputs];
        offset += inputs * outputs + outputs;
        let (min, max, mean, std_dev, zeros) = direct(weights);
        assert_eq!((layer.weights.count, layer.weights.min, layer.weights.max), (weights.len() as u64, min, max));
        assert!(close(layer.weights.mean, mean) && close(layer.weights.std_dev, std_dev));
        assert_eq!(layer.weights.zeros, zeros);
        // A new network's biases are all 0.
        assert_eq!(
            (layer.biases.count, layer.biases.zeros, layer.biases.std_dev),
            (outputs as u64, outputs as u64, 0.0)
        );
        assert_eq!(biases, vec![0.0; outputs]);
    }
    assert_eq!(offset, network.parameter_count());
    assert_eq!(
        layers.iter().map(|layer| layer.kind).collect::<Vec<_>>(),
        [LayerKind::DenseRelu, LayerKind::DenseRelu, LayerKind::DenseLinear]
    );
}

#[test]
fn layer_outputs_are_the_forward_pass_on_the_way() {
    let mut random = Random::new(3);
    let network = Network::new(&[5, 16, 7, 3], &mut random);
    let input = [0.9, -0.2, 0.3, 0.0, 0.7];
    let outputs = network.layer_outputs(&input);
    let reference = network.activations(&input);
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs[..], reference[1..]);
    assert_eq!(outputs[2], network.forward(&input));
    // Hidden layers are after ReLU.
    assert!(outputs[0].iter().chain(&outputs[1]).all(|value| *value >= 0.0));
}
