//! What a network is made of: its layers, their shapes and parameter counts, statistics of their weights, and
//! what each layer outputs for an input (`neuralctl inspect`, `llmctl inspect`).

use alloc::vec::Vec;

use crate::network::Network;

/// Summary statistics of some values (weights, biases or a layer's outputs), computed in f64 from the f32
/// values: `mean` is their sum in order divided by the count, `std_dev` the population standard deviation
/// (the root of the mean squared difference from `mean`, a second pass). All 0 for no values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueStats {
    /// How many values.
    pub count: u64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Their mean.
    pub mean: f64,
    /// Their population standard deviation.
    pub std_dev: f64,
    /// How many are exactly 0 (either sign).
    pub zeros: u64,
}

impl ValueStats {
    /// The statistics of `values`.
    pub fn of<I: Iterator<Item = f32> + Clone>(values: I) -> ValueStats {
        let mut stats = ValueStats { count: 0, min: 0.0, max: 0.0, mean: 0.0, std_dev: 0.0, zeros: 0 };
        let mut sum = 0.0f64;
        for value in values.clone() {
            let value = f64::from(value);
            if stats.count == 0 {
                (stats.min, stats.max) = (value, value);
            }
            stats.min = stats.min.min(value);
            stats.max = stats.max.max(value);
            stats.zeros += u64::from(value == 0.0);
            stats.count += 1;
            sum += value;
        }
        if stats.count == 0 {
            return stats;
        }
        stats.mean = sum / stats.count as f64;
        let squares: f64 = values.map(|value| (f64::from(value) - stats.mean) * (f64::from(value) - stats.mean)).sum();
        stats.std_dev = libm::sqrt(squares / stats.count as f64);
        stats
    }
}

/// What a layer computes from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A lookup table: one row of `outputs` values per input token (no bias, no activation).
    Embedding,
    /// `outputs` weighted sums of the `inputs` plus a bias, through ReLU.
    DenseRelu,
    /// `outputs` weighted sums of the `inputs` plus a bias, as they are.
    DenseLinear,
}

impl LayerKind {
    /// Its name in reports: `embedding`, `dense_relu`, `dense_linear`.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Embedding => "embedding",
            LayerKind::DenseRelu => "dense_relu",
            LayerKind::DenseLinear => "dense_linear",
        }
    }
}

/// One layer: its shape, parameter count and the statistics of its weights and biases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerInfo {
    /// What it computes.
    pub kind: LayerKind,
    /// Inputs (an embedding: tokens in the table).
    pub inputs: usize,
    /// Outputs (an embedding: values per token).
    pub outputs: usize,
    /// Its weights (an embedding: the table).
    pub weights: ValueStats,
    /// Its biases (`count` 0 for an embedding).
    pub biases: ValueStats,
}

impl LayerInfo {
    /// The layer of `kind` with these weights (row by row) and biases.
    pub fn new<W, B>(kind: LayerKind, inputs: usize, outputs: usize, weights: W, biases: B) -> LayerInfo
    where
        W: Iterator<Item = f32> + Clone,
        B: Iterator<Item = f32> + Clone,
    {
        LayerInfo { kind, inputs, outputs, weights: ValueStats::of(weights), biases: ValueStats::of(biases) }
    }

    /// Its parameters: every weight and bias.
    pub fn parameters(&self) -> u64 {
        self.weights.count + self.biases.count
    }
}

impl Network {
    /// Every layer, input side first: dense, ReLU except the last, which is linear.
    pub fn layers(&self) -> Vec<LayerInfo> {
        let last = self.layer_count().saturating_sub(1);
        (0..self.layer_count())
            .filter_map(|index| {
                let (inputs, outputs) = self.layer_shape(index)?;
                let kind = if index == last { LayerKind::DenseLinear } else { LayerKind::DenseRelu };
                let weights = (0..outputs).flat_map(move |o| (0..inputs).map(move |i| self.layer_weight(index, o, i)));
                let biases = (0..outputs).map(move |o| self.layer_bias(index, o));
                Some(LayerInfo::new(kind, inputs, outputs, weights, biases))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
