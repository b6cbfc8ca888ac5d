//! Training on the host: minibatch Adam on the cross-entropy of the next byte, deterministic from a seed.
//!
//! The text's last tenth is held out: its bytes are never a training target, and the held-out loss
//! and the unigram baseline are measured on them. Every step is plain f32 arithmetic in a fixed order
//! with `libm` for exponentials, logarithms and square roots, so the same text, configuration and seed
//! give the same weights, bit for bit, on any machine and at any optimisation level. Timing is the
//! caller's: nothing here reads a clock.

mod kernels;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use sis_hal::SeededRandom;

use crate::error::LmError;
use crate::model::{padded, Architecture, Dense, Model};

/// Fraction of the text held out, as a divisor: the last `len / HELD_OUT_DIVISOR` bytes.
pub const HELD_OUT_DIVISOR: usize = 10;

/// What to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Bytes of context.
    pub context: usize,
    /// Values per byte embedding.
    pub embedding: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the training positions.
    pub epochs: u32,
    /// Positions per Adam step.
    pub batch: usize,
    /// Adam's step size at the first step; it falls linearly to a tenth of it at the last.
    pub learning_rate: f32,
    /// Seeds the initial parameters and the order of positions in every epoch.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The configuration of the shipped model (docs/lm.md).
    fn default() -> Self {
        TrainConfig {
            context: 8,
            embedding: 16,
            hidden: vec![256],
            epochs: 6,
            batch: 64,
            learning_rate: 0.003,
            seed: 1,
        }
    }
}

/// Why training could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// Too short a text to hold out a tenth and still train.
    TextTooShort {
        /// Its length.
        length: usize,
        /// The least length accepted.
        needed: usize,
    },
    /// The architecture the configuration describes is refused.
    Architecture(LmError),
    /// A batch of 0 positions.
    EmptyBatch,
    /// A learning rate that is not a positive finite number.
    LearningRate,
}

impl fmt::Display for TrainError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::TextTooShort { length, needed } => {
                write!(formatter, "the text has {length} bytes, training needs at least {needed}")
            }
            TrainError::Architecture(error) => write!(formatter, "architecture refused: {error}"),
            TrainError::EmptyBatch => write!(formatter, "the batch must hold at least one position"),
            TrainError::LearningRate => write!(formatter, "the learning rate must be a positive finite number"),
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// 1 for the first epoch.
    pub epoch: u32,
    /// Mean cross-entropy of the epoch's training positions, in bits per byte, each measured by the forward
    /// pass of its own step (before that step's update).
    pub train_bits: f64,
    /// Mean cross-entropy of the held-out bytes after the epoch, in bits per byte.
    pub held_out_bits: f64,
}

/// The architecture training gives a text: its distinct bytes as the vocabulary, `\n` as the start byte
/// (else the lowest byte) and a space as the unknown byte (else the lowest byte).
pub fn architecture_for(text: &[u8], config: &TrainConfig) -> Architecture {
    let mut seen = [false; 256];
    for &byte in text {
        seen[byte as usize] = true;
    }
    let vocabulary: Vec<u8> = (0..=255u8).filter(|&byte| seen[byte as usize]).collect();
    let first = vocabulary.first().copied().unwrap_or(0);
    let pick = |byte: u8| if seen[byte as usize] { byte } else { first };
    Architecture {
        start_byte: pick(b'\n'),
        unknown_byte: pick(b' '),
        vocabulary,
        context: config.context,
        embedding: config.embedding,
        hidden: config.hidden.clone(),
    }
}

/// Training state: the model, its gradients and Adam's moments, and the text as tokens.
#[derive(Debug, Clone)]
pub struct Trainer {
    model: Model,
    config: TrainConfig,
    /// `context` start tokens, then the text's tokens: position `t`'s context is `padded[t..t + context]`
    /// and its target `padded[t + context]`.
    padded: Vec<u8>,
    /// Positions `0..train_length` are trained on; the rest are held out.
    train_length: usize,
    random: SeededRandom,
    gradient: Parameters,
    first_moment: Parameters,
    second_moment: Parameters,
    steps_done: u64,
    epochs_done: u32,
    batch: Batch,
}

impl Trainer {
    /// A trainer for `text` with `config`: the model's parameters drawn from `config.seed` ([`Model::new`]).
    pub fn new(text: &[u8], config: TrainConfig) -> Result<Trainer, TrainError> {
        let needed = HELD_OUT_DIVISOR + 1;
        if text.len() < needed {
            return Err(TrainError::TextTooShort { length: text.len(), needed });
        }
        if config.batch == 0 {
            return Err(TrainError::EmptyBatch);
        }
        if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
            return Err(TrainError::LearningRate);
        }
        let architecture = architecture_for(text, &config);
        let mut random = SeededRandom::new(config.seed);
        let model = Model::new(architecture, &mut random).map_err(TrainError::Architecture)?;
        let start = model.token(model.architecture().start_byte).unwrap_or(0);
        let mut padded = vec![start; config.context];
        padded.extend(text.iter().map(|&byte| model.token(byte).unwrap_or(0)));
        let train_length = text.len() - text.len() / HELD_OUT_DIVISOR;
        let zeros = Parameters::zeros_like(&model);
        let batch = Batch::new(&model, config.batch);
        Ok(Trainer {
            model,
            config,
            padded,
            train_length,
            random,
            gradient: zeros.clone(),
            first_moment: zeros.clone(),
            second_moment: zeros,
            steps_done: 0,
            epochs_done: 0,
            batch,
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Bytes trained on (the text's first nine tenths, rounded up).
    pub fn train_length(&self) -> usize {
        self.train_length
    }

    /// Bytes held out.
    pub fn held_out_length(&self) -> usize {
        self.padded.len() - self.config.context - self.train_length
    }

    /// One pass over the training positions in an order drawn from the seed, then the held-out loss.
    pub fn epoch(&mut self) -> EpochReport {
        let mut order: Vec<u32> = (0..self.train_length as u32).collect();
        for index in (1..order.len()).rev() {
            let other = self.random.below(index as u64 + 1) as usize;
            order.swap(index, other);
        }
        let steps_per_epoch = order.len().div_ceil(self.config.batch) as u64;
        let total_steps = steps_per_epoch * u64::from(self.config.epochs.max(1));
        let mut nats = 0.0f64;
        for positions in order.chunks(self.config.batch) {
            // Falls linearly from the configured rate to a tenth of it at the last step.
            let progress = self.steps_done.min(total_steps) as f32 / total_steps as f32;
            let rate = self.config.learning_rate * (1.0 - 0.9 * progress);
            nats += self.step(positions, rate);
        }
        self.epochs_done += 1;
        EpochReport {
            epoch: self.epochs_done,
            train_bits: nats / order.len() as f64 / core::f64::consts::LN_2,
            held_out_bits: self.held_out_bits(),
        }
    }

    /// Mean cross-entropy of the held-out bytes under the model, in bits per byte (log-softmax in f64 from
    /// the model's f32 logits).
    pub fn held_out_bits(&mut self) -> f64 {
        let positions: Vec<u32> =
            (self.train_length as u32..(self.padded.len() - self.config.context) as u32).collect();
        let mut nats = 0.0f64;
        for chunk in positions.chunks(self.config.batch) {
            self.batch.forward(&self.model, &self.padded, chunk);
            let vocabulary = self.model.vocabulary_size();
            let width = padded(vocabulary);
            let logits = self.batch.outputs.last().map_or(&[][..], |output| &output[..]);
            for (row, &position) in chunk.iter().enumerate() {
                let row_logits = &logits[row * width..][..vocabulary];
                let target = self.padded[position as usize + self.config.context] as usize;
                nats += negative_log_softmax(row_logits, target);
            }
        }
        nats / positions.len() as f64 / core::f64::consts::LN_2
    }

    /// The unigram baseline on the same split: the held-out bytes' mean −log2 p(byte), with p the training
    /// bytes' frequencies with one added to every vocabulary byte's count (so none is 0).
    pub fn unigram_bits(&self) -> f64 {
        let context = self.config.context;
        let mut counts = vec![1u64; self.model.vocabulary_size()];
        for &token in &self.padded[context..context + self.train_length] {
            counts[token as usize] += 1;
        }
        let total = counts.iter().sum::<u64>() as f64;
        let held_out = &self.padded[context + self.train_length..];
        let bits: f64 = held_out.iter().map(|&token| -libm::log2(counts[token as usize] as f64 / total)).sum();
        bits / held_out.len() as f64
    }

    /// One Adam step on `positions` at step size `rate`; returns the sum of their cross-entropies in nats.
    fn step(&mut self, positions: &[u32], rate: f32) -> f64 {
        let rows = positions.len();
        self.batch.forward(&self.model, &self.padded, positions);
        let vocabulary = self.model.vocabulary_size();
        let width = padded(vocabulary);
        let scale = 1.0 / rows as f32;
        let mut nats = 0.0f64;
        let last = self.model.layers.len() - 1;
        {
            let Batch { outputs, deltas, .. } = &mut self.batch;
            let logits = &outputs[last];
            let delta = &mut deltas[last];
            for (row, &position) in positions.iter().enumerate() {
                let target = self.padded[position as usize + self.config.context] as usize;
                let row_logits = &logits[row * width..][..vocabulary];
                let row_delta = &mut delta[row * width..][..width];
                nats += f64::from(softmax_cross_entropy(row_logits, target, scale, row_delta));
            }
        }
        self.backward(positions);
        self.adam(rate);
        nats
    }

    /// Gradients of the batch's mean loss into `self.gradient`, from the deltas of the logits.
    fn backward(&mut self, positions: &[u32]) {
        let rows = positions.len();
        let Batch { input, outputs, deltas, input_delta } = &mut self.batch;
        for index in (0..self.model.layers.len()).rev() {
            let layer = &self.model.layers[index];
            let (layer_input, stride) = match index {
                0 => (&input[..], layer.inputs),
                _ => (&outputs[index - 1][..], padded(layer.inputs)),
            };
            kernels::accumulate(&mut self.gradient.layers[index], &deltas[index], layer_input, stride, rows);
            if index > 0 {
                let (below, above) = deltas.split_at_mut(index);
                let below = &mut below[index - 1];
                kernels::backward(layer, &above[0], layer_input, stride, rows, input_delta, true);
                // The layer below's deltas, padded to whole groups with zeros.
                let width = padded(layer.inputs);
                for row in 0..rows {
                    let target = &mut below[row * width..][..width];
                    target[..layer.inputs].copy_from_slice(&input_delta[row * layer.inputs..][..layer.inputs]);
                    target[layer.inputs..].fill(0.0);
                }
            } else {
                kernels::backward(layer, &deltas[0], layer_input, stride, rows, input_delta, false);
            }
        }
        // The embeddings' gradients: each context slot's slice of the first layer's input deltas.
        let (context, width) = (self.config.context, self.model.architecture().embedding);
        let first_inputs = context * width;
        for (row, &position) in positions.iter().enumerate() {
            let tokens = &self.padded[position as usize..][..context];
            let row_delta = &input_delta[row * first_inputs..][..first_inputs];
            for (&token, slot_delta) in tokens.iter().zip(row_delta.chunks_exact(width)) {
                let gradient = &mut self.gradient.embeddings[token as usize * width..][..width];
                for (g, &d) in gradient.iter_mut().zip(slot_delta) {
                    *g += d;
                }
            }
        }
    }

    /// Adam (β1 0.9, β2 0.999, ε 1e-8) with step size `rate`; clears the gradients.
    fn adam(&mut self, rate: f32) {
        const BETA1: f32 = 0.9;
        const BETA2: f32 = 0.999;
        const EPSILON: f32 = 1e-8;
        self.steps_done += 1;
        let step = self.steps_done as f32;
        let correction1 = 1.0 - libm::powf(BETA1, step);
        let correction2 = 1.0 - libm::powf(BETA2, step);
        let step_size = rate * libm::sqrtf(correction2) / correction1;
        let model = &mut self.model;
        let buffers = model.embeddings.iter_mut().chain(model.layers.iter_mut().flat_map(|layer| {
            let Dense { weights, biases, .. } = layer;
            weights.iter_mut().chain(biases.iter_mut())
        }));
        for (((parameter, gradient), first), second) in
            buffers.zip(self.gradient.iter_mut()).zip(self.first_moment.iter_mut()).zip(self.second_moment.iter_mut())
        {
            let g = *gradient;
            *first = BETA1 * *first + (1.0 - BETA1) * g;
            *second = BETA2 * *second + (1.0 - BETA2) * (g * g);
            *parameter -= step_size * *first / (libm::sqrtf(*second) + EPSILON);
            *gradient = 0.0;
        }
    }
}

/// −ln softmax(`logits`)[`target`], in f64.
fn negative_log_softmax(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().fold(f64::NEG_INFINITY, |max, &logit| max.max(f64::from(logit)));
    let sum: f64 = logits.iter().map(|&logit| libm::exp(f64::from(logit) - max)).sum();
    max + libm::log(sum) - f64::from(logits[target])
}

/// The cross-entropy of `target` under softmax(`logits`) in f32, and into `delta` its gradient times
/// `scale`: (p_i − [i = target])·scale, the padding after the logits 0.
fn softmax_cross_entropy(logits: &[f32], target: usize, scale: f32, delta: &mut [f32]) -> f32 {
    let max = logits.iter().fold(logits[0], |max, &logit| if logit > max { logit } else { max });
    let mut sum = 0.0f32;
    for (d, &logit) in delta.iter_mut().zip(logits) {
        let e = libm::expf(logit - max);
        *d = e;
        sum += e;
    }
    for (index, d) in delta.iter_mut().enumerate() {
        *d = if index < logits.len() {
            let probability = *d / sum;
            (probability - if index == target { 1.0 } else { 0.0 }) * scale
        } else {
            0.0
        };
    }
    libm::logf(sum) - (logits[target] - max)
}

/// Buffers shaped like the model's parameters (gradients, Adam's moments).
#[derive(Debug, Clone)]
struct Parameters {
    embeddings: Vec<f32>,
    layers: Vec<Dense>,
}

impl Parameters {
    fn zeros_like(model: &Model) -> Parameters {
        Parameters {
            embeddings: vec![0.0; model.embeddings.len()],
            layers: model.layers.iter().map(|layer| Dense::zeros(layer.inputs, layer.outputs)).collect(),
        }
    }

    /// Every value, in the order [`Trainer::adam`] walks the model's.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut f32> {
        self.embeddings.iter_mut().chain(self.layers.iter_mut().flat_map(|layer| {
            let Dense { weights, biases, .. } = layer;
            weights.iter_mut().chain(biases.iter_mut())
        }))
    }
}

/// A batch's activations and deltas, reused from step to step.
#[derive(Debug, Clone)]
struct Batch {
    /// Each row's embeddings laid end to end (`context · embedding` values a row).
    input: Vec<f32>,
    /// Each layer's outputs, rows padded to whole groups.
    outputs: Vec<Vec<f32>>,
    /// Deltas of each layer's outputs, shaped like `outputs`.
    deltas: Vec<Vec<f32>>,
    /// Deltas of a layer's inputs (`inputs` values a row).
    input_delta: Vec<f32>,
}

impl Batch {
    fn new(model: &Model, rows: usize) -> Batch {
        let inputs = model.layers[0].inputs;
        let shaped = || model.layers.iter().map(|layer| vec![0.0; rows * padded(layer.outputs)]).collect::<Vec<_>>();
        let widest = model.layers.iter().map(|layer| layer.inputs).max().unwrap_or(inputs);
        Batch {
            input: vec![0.0; rows * inputs],
            outputs: shaped(),
            deltas: shaped(),
            input_delta: vec![0.0; rows * widest],
        }
    }

    /// The forward pass of `positions` (at most the batch's rows).
    fn forward(&mut self, model: &Model, padded_tokens: &[u8], positions: &[u32]) {
        let (context, width) = (model.architecture().context, model.architecture().embedding);
        let inputs = context * width;
        for (row, &position) in positions.iter().enumerate() {
            let tokens = &padded_tokens[position as usize..][..context];
            let row_input = &mut self.input[row * inputs..][..inputs];
            for (&token, slot) in tokens.iter().zip(row_input.chunks_exact_mut(width)) {
                slot.copy_from_slice(&model.embeddings[token as usize * width..][..width]);
            }
        }
        let last = model.layers.len() - 1;
        for (index, layer) in model.layers.iter().enumerate() {
            let (below, above) = self.outputs.split_at_mut(index);
            let (input, stride) = match below.last() {
                None => (&self.input[..], inputs),
                Some(output) => (&output[..], padded(layer.inputs)),
            };
            kernels::forward(layer, input, stride, positions.len(), &mut above[0], index < last);
        }
    }
}

#[cfg(test)]
mod tests;
