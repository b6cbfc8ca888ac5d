//! A fully connected network: ReLU hidden layers, linear output, trained by backpropagation and SGD.

use alloc::vec;
use alloc::vec::Vec;

use crate::vector::{relu, vector_unit, weight_index, LANES};
use crate::weights::NetworkWeights;
use crate::Random;

/// `outputs` rounded up to whole groups of [`LANES`] rows.
fn padded(outputs: usize) -> usize {
    outputs.div_ceil(LANES) * LANES
}

#[derive(Debug, Clone)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// In groups of [`LANES`] rows ([`weight_index`]), the last group padded with rows of zeros.
    weights: Vec<f32>,
    /// [`padded`]`(outputs)` values, the padding 0.
    biases: Vec<f32>,
}

impl Layer {
    /// Weight `o`, `i` (row `o`, input `i`).
    fn weight(&self, o: usize, i: usize) -> f32 {
        self.weights[weight_index(self.inputs, o, i)]
    }

    fn parameter_count(&self) -> usize {
        self.inputs * self.outputs + self.outputs
    }

    /// The weights row by row (row-major), then the biases: the order of [`Network::parameters`].
    fn parameters(&self) -> impl Iterator<Item = f32> + '_ {
        let weights = (0..self.outputs).flat_map(move |o| (0..self.inputs).map(move |i| self.weight(o, i)));
        weights.chain(self.biases[..self.outputs].iter().copied())
    }

    /// Parameter `index` in the order of [`Layer::parameters`].
    fn parameter_mut(&mut self, index: usize) -> Option<&mut f32> {
        let weights = self.inputs * self.outputs;
        if index < weights {
            self.weights.get_mut(weight_index(self.inputs, index / self.inputs, index % self.inputs))
        } else if index < weights + self.outputs {
            self.biases.get_mut(index - weights)
        } else {
            None
        }
    }
}

/// Parameter gradients, shaped like the network.
#[derive(Debug, Clone)]
pub struct Gradients {
    weights: Vec<Vec<f32>>,
    biases: Vec<Vec<f32>>,
}

/// Why parameters could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterError {
    /// Not as many values as the network has parameters.
    Count {
        /// Parameters of the network.
        expected: usize,
        /// Values given.
        given: usize,
    },
    /// A NaN or infinite value.
    NotFinite {
        /// Its index.
        index: usize,
    },
}

impl core::fmt::Display for ParameterError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParameterError::Count { expected, given } => {
                write!(formatter, "{given} parameters given, the network has {expected}")
            }
            ParameterError::NotFinite { index } => write!(formatter, "parameter {index} is not a finite number"),
        }
    }
}

/// Memory a forward pass or a training step reuses from one call to the next (nothing is allocated once
/// it has grown to the network's size).
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    /// Every layer's output, laid end to end, the input first.
    values: Vec<f32>,
    /// Deltas of the current layer's outputs (backpropagation).
    delta: Vec<f32>,
    /// Deltas of its inputs.
    previous: Vec<f32>,
}

/// A multilayer perceptron.
#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
}

impl Network {
    /// A network with the given layer sizes (`[inputs, hidden..., outputs]`), weights drawn row by row
    /// uniformly within ±sqrt(6 / (fan_in + fan_out)) (Glorot) from `random`, biases 0.
    pub fn new(sizes: &[usize], random: &mut Random) -> Self {
        let layers = sizes
            .windows(2)
            .map(|pair| {
                let (inputs, outputs) = (pair[0], pair[1]);
                let limit = libm::sqrtf(6.0 / (inputs + outputs) as f32);
                let mut layer = Layer {
                    inputs,
                    outputs,
                    weights: vec![0.0; padded(outputs) * inputs],
                    biases: vec![0.0; padded(outputs)],
                };
                for index in 0..inputs * outputs {
                    *layer.parameter_mut(index).expect("a weight") = random.between(-limit, limit);
                }
                layer
            })
            .collect();
        Network { layers }
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |layer| layer.inputs)
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |layer| layer.outputs)
    }

    /// Layer sizes, inputs first.
    pub fn shape(&self) -> Vec<usize> {
        let mut shape: Vec<usize> = self.layers.iter().map(|layer| layer.inputs).collect();
        shape.push(self.outputs());
        shape
    }

    /// Number of weights and biases.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(Layer::parameter_count).sum()
    }

    /// Outputs for `input` (cut or padded with 0 to `inputs()` values).
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        let mut values = Vec::new();
        self.forward_into(input, &mut values);
        values.drain(..self.outputs_start(values.len()));
        values.truncate(self.outputs());
        values
    }

    /// Every layer's output for `input` (hidden layers after ReLU, the last as it is), first layer first:
    /// exactly what [`Network::forward`] computes on the way, the last being its result.
    pub fn layer_outputs(&self, input: &[f32]) -> Vec<Vec<f32>> {
        let mut values = Vec::new();
        self.forward_into(input, &mut values);
        let mut start = self.inputs();
        self.layers
            .iter()
            .map(|layer| {
                let output = values[start..start + layer.outputs].to_vec();
                start += padded(layer.outputs);
                output
            })
            .collect()
    }

    /// Number of layers (weight matrices).
    pub(crate) fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Inputs and outputs of layer `index`.
    pub(crate) fn layer_shape(&self, index: usize) -> Option<(usize, usize)> {
        self.layers.get(index).map(|layer| (layer.inputs, layer.outputs))
    }

    /// Weight `o`, `i` of layer `index` (which must exist).
    pub(crate) fn layer_weight(&self, index: usize, o: usize, i: usize) -> f32 {
        self.layers[index].weight(o, i)
    }

    /// Bias `o` of layer `index` (which must exist).
    pub(crate) fn layer_bias(&self, index: usize, o: usize) -> f32 {
        self.layers[index].biases[o]
    }

    /// Where the last layer's outputs start in `values` of `length` laid out by [`Network::forward_into`].
    fn outputs_start(&self, length: usize) -> usize {
        length - padded(self.outputs())
    }

    /// [`Network::forward`] in caller-provided scratch space (its memory is reused); returns the outputs.
    pub fn forward_in<'a>(&self, input: &[f32], scratch: &'a mut Scratch) -> &'a [f32] {
        self.forward_into(input, &mut scratch.values);
        let start = self.outputs_start(scratch.values.len());
        &scratch.values[start..start + self.outputs()]
    }

    /// `input` (cut or padded with 0 to the network's inputs), then every layer's output padded to whole
    /// groups of rows, laid end to end in `values` (cleared first; its capacity is reused). Computes exactly
    /// what [`Network::forward`] computes.
    fn forward_into(&self, input: &[f32], values: &mut Vec<f32>) {
        let inputs = self.inputs();
        values.clear();
        values.extend_from_slice(&input[..input.len().min(inputs)]);
        values.resize(inputs + self.layers.iter().map(|layer| padded(layer.outputs)).sum::<usize>(), 0.0);
        let unit = vector_unit();
        let (mut start, mut end) = (0, inputs);
        for (index, layer) in self.layers.iter().enumerate() {
            let (done, rest) = values.split_at_mut(end);
            let (input, output) = (&done[start..start + layer.inputs], &mut rest[..padded(layer.outputs)]);
            (unit.forward)(&layer.weights, &layer.biases, input, output, index + 1 < self.layers.len());
            (start, end) = (end, end + padded(layer.outputs));
        }
    }

    /// One SGD step on the loss ½ (output[`output`] − `target`)², the other outputs masked:
    /// the same arithmetic as [`Network::gradients`] with a one-hot mask followed by
    /// [`Network::apply`], without building the gradients. Returns the loss before the step.
    pub fn train_output(&mut self, input: &[f32], output: usize, target: f32, rate: f32, scratch: &mut Scratch) -> f32 {
        let Scratch { values, delta, previous } = scratch;
        self.forward_into(input, values);
        let outputs_start = self.outputs_start(values.len());
        let y = values[outputs_start + output];
        let loss = 0.0 + 0.5 * (y - target) * (y - target);
        let unit = vector_unit();
        // Deltas of the current layer's outputs, padded with zeros (rows a step leaves as they are) to whole
        // groups; only `output` is non-zero at the top.
        delta.clear();
        delta.resize(padded(self.outputs()), 0.0);
        delta[output] = y - target;
        // Where the current layer's output starts in `values`, walking down from the top.
        let mut output_start = outputs_start;
        for index in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[index];
            let input_start = if index == 0 { 0 } else { output_start - padded(layer.inputs) };
            let input = &values[input_start..input_start + layer.inputs];
            output_start = input_start;
            // The next delta (none below the first layer) is computed from the weights before this layer's step.
            if index > 0 {
                previous.clear();
                previous.resize(padded(layer.inputs), 0.0);
                (unit.backward)(&layer.weights, delta, input, previous);
            }
            (unit.update)(&mut layer.weights, &mut layer.biases, input, delta, rate);
            core::mem::swap(delta, previous);
        }
        loss
    }

    /// Every layer's output, input first (post-activation for hidden layers).
    pub(crate) fn activations(&self, input: &[f32]) -> Vec<Vec<f32>> {
        let mut activations = vec![input.to_vec()];
        for (index, layer) in self.layers.iter().enumerate() {
            let previous = &activations[activations.len() - 1];
            let last = index + 1 == self.layers.len();
            let output: Vec<f32> = (0..layer.outputs)
                .map(|o| {
                    let sum =
                        (0..layer.inputs).map(|i| layer.weight(o, i) * previous[i]).sum::<f32>() + layer.biases[o];
                    if last {
                        sum
                    } else {
                        relu(sum)
                    }
                })
                .collect();
            activations.push(output);
        }
        activations
    }

    /// Gradients of ½ Σ (output − target)² over the outputs where `mask` is true.
    pub fn gradients(&self, input: &[f32], target: &[f32], mask: &[bool]) -> (Gradients, f32) {
        let activations = self.activations(input);
        let output = &activations[activations.len() - 1];
        let mut loss = 0.0;
        let mut delta: Vec<f32> = output
            .iter()
            .zip(target)
            .zip(mask)
            .map(|((y, t), &on)| {
                if on {
                    loss += 0.5 * (y - t) * (y - t);
                    y - t
                } else {
                    0.0
                }
            })
            .collect();
        let mut gradients = Gradients { weights: Vec::new(), biases: Vec::new() };
        for (index, layer) in self.layers.iter().enumerate().rev() {
            let input = &activations[index];
            let mut weights = vec![0.0; layer.inputs * layer.outputs];
            for o in 0..layer.outputs {
                for i in 0..layer.inputs {
                    weights[o * layer.inputs + i] = delta[o] * input[i];
                }
            }
            let mut previous = vec![0.0; layer.inputs];
            if index > 0 {
                for (i, value) in previous.iter_mut().enumerate() {
                    // ReLU derivative: the hidden activation was positive.
                    if input[i] > 0.0 {
                        *value = (0..layer.outputs).map(|o| layer.weight(o, i) * delta[o]).sum();
                    }
                }
            }
            gradients.weights.push(weights);
            gradients.biases.push(delta.clone());
            delta = previous;
        }
        gradients.weights.reverse();
        gradients.biases.reverse();
        (gradients, loss)
    }

    /// One SGD step: parameters -= rate × gradients.
    pub fn apply(&mut self, gradients: &Gradients, rate: f32) {
        for (layer, (weights, biases)) in self.layers.iter_mut().zip(gradients.weights.iter().zip(&gradients.biases)) {
            for (index, g) in weights.iter().chain(biases).enumerate() {
                if let Some(parameter) = layer.parameter_mut(index) {
                    *parameter -= rate * g;
                }
            }
        }
    }

    /// Copies another network's parameters (same shape).
    pub fn copy_from(&mut self, other: &Network) {
        self.layers.clone_from(&other.layers);
    }

    /// Every parameter, layer by layer (weights then biases), for checks and saving.
    pub fn parameters(&self) -> Vec<f32> {
        self.layers.iter().flat_map(Layer::parameters).collect()
    }

    /// Its layer sizes and parameters, as the `agent-network` weights format carries them.
    pub fn weights(&self) -> NetworkWeights {
        NetworkWeights { sizes: self.shape(), parameters: self.parameters() }
    }

    /// Replaces every parameter, in the order of [`Network::parameters`]; a wrong count or a
    /// non-finite value is refused and changes nothing.
    pub fn set_parameters(&mut self, values: &[f32]) -> Result<(), ParameterError> {
        let expected = self.parameter_count();
        if values.len() != expected {
            return Err(ParameterError::Count { expected, given: values.len() });
        }
        if let Some(index) = values.iter().position(|value| !value.is_finite()) {
            return Err(ParameterError::NotFinite { index });
        }
        let mut rest = values;
        for layer in &mut self.layers {
            let (own, after) = rest.split_at(layer.parameter_count());
            for (index, value) in own.iter().enumerate() {
                if let Some(parameter) = layer.parameter_mut(index) {
                    *parameter = *value;
                }
            }
            rest = after;
        }
        Ok(())
    }

    /// One parameter by its index in [`Network::parameters`] (for the gradient check).
    #[cfg(test)]
    fn parameter_mut(&mut self, mut index: usize) -> Option<&mut f32> {
        for layer in &mut self.layers {
            let count = layer.parameter_count();
            if index < count {
                return layer.parameter_mut(index);
            }
            index -= count;
        }
        None
    }
}

impl Gradients {
    /// Every gradient in the order of [`Network::parameters`].
    pub fn flatten(&self) -> Vec<f32> {
        self.weights.iter().zip(&self.biases).flat_map(|(w, b)| w.iter().chain(b).copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(network: &Network, input: &[f32], target: &[f32]) -> f64 {
        network.forward(input).iter().zip(target).map(|(y, t)| 0.5 * ((y - t) as f64).powi(2)).sum()
    }

    #[test]
    fn backpropagation_matches_finite_differences() {
        let mut random = Random::new(7);
        let mut network = Network::new(&[4, 8, 6, 3], &mut random);
        let input = [0.3, -0.7, 0.9, 0.1];
        let target = [0.5, -1.0, 2.0];
        let (gradients, _) = network.gradients(&input, &target, &[true, true, true]);
        let analytic = gradients.flatten();
        assert_eq!(analytic.len(), network.parameter_count());
        let step = 1e-3f32;
        let mut checked = 0;
        for (index, &expected) in analytic.iter().enumerate() {
            let original = *network.parameter_mut(index).unwrap();
            *network.parameter_mut(index).unwrap() = original + step;
            let up = loss(&network, &input, &target);
            *network.parameter_mut(index).unwrap() = original - step;
            let down = loss(&network, &input, &target);
            *network.parameter_mut(index).unwrap() = original;
            let numeric = (up - down) / (2.0 * step as f64);
            let difference = (numeric - expected as f64).abs();
            assert!(
                difference <= 1e-2 * numeric.abs().max(1e-2),
                "parameter {index}: numeric {numeric}, analytic {expected}"
            );
            checked += 1;
        }
        assert_eq!(checked, 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3);
    }

    #[test]
    fn the_fused_step_is_gradients_then_apply_exactly() {
        let mut random = Random::new(11);
        let mut fused = Network::new(&[5, 16, 8, 3], &mut random);
        let mut reference = fused.clone();
        let mut scratch = Scratch::default();
        for step in 0..200 {
            let input: Vec<f32> = (0..5).map(|_| random.between(-1.0, 1.0)).collect();
            let (output, target) = (step % 3, random.between(-2.0, 2.0));
            let mut targets = vec![0.0; 3];
            let mut mask = vec![false; 3];
            targets[output] = target;
            mask[output] = true;
            let (gradients, expected_loss) = reference.gradients(&input, &targets, &mask);
            reference.apply(&gradients, 0.01);
            let loss = fused.train_output(&input, output, target, 0.01, &mut scratch);
            assert_eq!(loss.to_bits(), expected_loss.to_bits(), "step {step}");
            assert_eq!(fused.parameters(), reference.parameters(), "step {step}");
            assert_eq!(fused.forward(&input), reference.activations(&input).pop().unwrap());
        }
    }

    #[test]
    fn masked_outputs_get_no_gradient() {
        let mut random = Random::new(1);
        let network = Network::new(&[2, 4, 2], &mut random);
        let (gradients, _) = network.gradients(&[1.0, 1.0], &[5.0, 5.0], &[true, false]);
        let last_biases = &gradients.biases[1];
        assert_eq!(last_biases[1], 0.0);
        assert_ne!(last_biases[0], 0.0);
    }

    #[test]
    fn sgd_fits_a_linear_function() {
        let mut random = Random::new(3);
        let mut network = Network::new(&[1, 16, 1], &mut random);
        let mut last = f32::MAX;
        for epoch in 0..400 {
            let mut total = 0.0;
            for step in 0..16 {
                let x = step as f32 / 8.0 - 1.0;
                let (gradients, loss) = network.gradients(&[x], &[2.0 * x + 1.0], &[true]);
                network.apply(&gradients, 0.05);
                total += loss;
            }
            if epoch == 399 {
                last = total;
            }
        }
        assert!(last < 1e-3, "loss after training {last}");
    }

    #[test]
    fn same_seed_same_weights() {
        let a = Network::new(&[3, 5, 2], &mut Random::new(9)).parameters();
        let b = Network::new(&[3, 5, 2], &mut Random::new(9)).parameters();
        let c = Network::new(&[3, 5, 2], &mut Random::new(10)).parameters();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

#[cfg(test)]
mod parameter_tests {
    use super::*;

    #[test]
    fn parameters_round_trip_and_bad_ones_change_nothing() {
        let mut random = Random::new(3);
        let source = Network::new(&[3, 4, 2], &mut random);
        let mut copy = Network::new(&[3, 4, 2], &mut random);
        assert_ne!(copy.parameters(), source.parameters());
        copy.set_parameters(&source.parameters()).unwrap();
        assert_eq!(copy.parameters(), source.parameters());
        assert_eq!(copy.forward(&[0.1, 0.2, 0.3]), source.forward(&[0.1, 0.2, 0.3]));
        let before = copy.parameters();
        assert_eq!(copy.set_parameters(&[0.0; 3]), Err(ParameterError::Count { expected: 26, given: 3 }));
        let mut bad = before.clone();
        bad[5] = f32::NAN;
        assert_eq!(copy.set_parameters(&bad), Err(ParameterError::NotFinite { index: 5 }));
        assert_eq!(copy.parameters(), before);
    }
}
