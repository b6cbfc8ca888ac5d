//! The model: byte embeddings over a context window, ReLU hidden layers, logits over the vocabulary.

use alloc::vec;
use alloc::vec::Vec;

use sis_ai::{weight_index, VectorUnit, LANES};
use sis_hal::SeededRandom;

use crate::error::{Field, LmError, SpecialByte};

/// Largest vocabulary: every byte value.
pub const MAX_VOCABULARY: usize = 256;
/// Most bytes of context.
pub const MAX_CONTEXT: usize = 64;
/// Widest byte embedding.
pub const MAX_EMBEDDING: usize = 256;
/// Most hidden layers.
pub const MAX_HIDDEN_LAYERS: usize = 4;
/// Widest hidden layer.
pub const MAX_WIDTH: usize = 4096;

/// The shape of a model, and its vocabulary.
///
/// Tokens are the indexes of the vocabulary's bytes. The input is the embeddings of the last
/// `context` tokens laid end to end (oldest first); each hidden layer is dense with ReLU; the
/// output layer is dense and linear, one logit per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    /// The bytes the model reads and writes, strictly ascending.
    pub vocabulary: Vec<u8>,
    /// Fills the context before a prompt's first byte (training saw it before the text's first byte).
    pub start_byte: u8,
    /// Stands in for a prompt byte outside the vocabulary.
    pub unknown_byte: u8,
    /// Bytes of context.
    pub context: usize,
    /// Values per byte embedding.
    pub embedding: usize,
    /// Widths of the hidden layers, first to last.
    pub hidden: Vec<usize>,
}

impl Architecture {
    /// Checks every field against its range, the vocabulary's order and the special bytes' membership.
    pub fn validate(&self) -> Result<(), LmError> {
        let range = |field: Field, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(LmError::OutOfRange { field, value, min, max })
            }
        };
        range(Field::Vocabulary, self.vocabulary.len(), 1, MAX_VOCABULARY)?;
        range(Field::Context, self.context, 1, MAX_CONTEXT)?;
        range(Field::Embedding, self.embedding, 1, MAX_EMBEDDING)?;
        range(Field::HiddenLayers, self.hidden.len(), 1, MAX_HIDDEN_LAYERS)?;
        for &width in &self.hidden {
            range(Field::Width, width, 1, MAX_WIDTH)?;
        }
        if let Some(position) = (1..self.vocabulary.len()).find(|&p| self.vocabulary[p] <= self.vocabulary[p - 1]) {
            return Err(LmError::VocabularyNotAscending { position });
        }
        for (which, byte) in [(SpecialByte::Start, self.start_byte), (SpecialByte::Unknown, self.unknown_byte)] {
            if self.vocabulary.binary_search(&byte).is_err() {
                return Err(LmError::NotInVocabulary { which, byte });
            }
        }
        Ok(())
    }

    /// (inputs, outputs) of each dense layer, first to last.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::with_capacity(self.hidden.len() + 1);
        let mut inputs = self.context * self.embedding;
        for &width in self.hidden.iter().chain([self.vocabulary.len()].iter()) {
            shapes.push((inputs, width));
            inputs = width;
        }
        shapes
    }

    /// Embeddings, then each layer's weights and biases. Within the ranges of [`Architecture::validate`]
    /// this is below 2^27, so it cannot overflow.
    pub fn parameter_count(&self) -> usize {
        let embeddings = self.vocabulary.len() * self.embedding;
        embeddings + self.layer_shapes().iter().map(|&(inputs, outputs)| inputs * outputs + outputs).sum::<usize>()
    }
}

/// `outputs` rounded up to whole groups of [`LANES`] rows.
pub(crate) fn padded(outputs: usize) -> usize {
    outputs.div_ceil(LANES) * LANES
}

/// A dense layer in the vector unit's layout: rows in groups of [`LANES`] ([`weight_index`]), the last
/// group and the biases padded with zeros.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dense {
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
    pub(crate) weights: Vec<f32>,
    pub(crate) biases: Vec<f32>,
}

impl Dense {
    pub(crate) fn zeros(inputs: usize, outputs: usize) -> Self {
        Dense { inputs, outputs, weights: vec![0.0; padded(outputs) * inputs], biases: vec![0.0; padded(outputs)] }
    }

    /// Index of weight (row `o`, input `i`) in `weights`.
    pub(crate) fn index(&self, o: usize, i: usize) -> usize {
        weight_index(self.inputs, o, i)
    }
}

/// A byte-level language model ([`Architecture`]) with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    architecture: Architecture,
    /// Token of each byte value; `None` outside the vocabulary.
    tokens: [Option<u8>; 256],
    /// Row `t` (`embedding` values) is token `t`'s embedding.
    pub(crate) embeddings: Vec<f32>,
    pub(crate) layers: Vec<Dense>,
}

impl Model {
    /// A model of `architecture` with parameters for training: embeddings uniform in ±1, each layer's
    /// weights uniform in ±sqrt(6 / (inputs + outputs)) (Glorot), biases 0, drawn in the order of
    /// [`Model::parameters`] from `random`.
    pub fn new(architecture: Architecture, random: &mut SeededRandom) -> Result<Model, LmError> {
        let mut model = Model::zeros(architecture)?;
        for value in &mut model.embeddings {
            *value = random.between(-1.0, 1.0);
        }
        for layer in &mut model.layers {
            let limit = libm::sqrtf(6.0 / (layer.inputs + layer.outputs) as f32);
            for o in 0..layer.outputs {
                for i in 0..layer.inputs {
                    let index = layer.index(o, i);
                    layer.weights[index] = random.between(-limit, limit);
                }
            }
        }
        Ok(model)
    }

    /// A model of `architecture` with `parameters` in the order of [`Model::parameters`]; a wrong count or a
    /// non-finite value is refused.
    pub fn from_parameters(architecture: Architecture, parameters: &[f32]) -> Result<Model, LmError> {
        let mut model = Model::zeros(architecture)?;
        let expected = model.architecture.parameter_count();
        if parameters.len() != expected {
            return Err(LmError::ParameterCount { expected, given: parameters.len() });
        }
        if let Some(index) = parameters.iter().position(|value| !value.is_finite()) {
            return Err(LmError::NotFinite { index });
        }
        let mut values = parameters.iter().copied();
        model.visit_parameters_mut(|parameter| *parameter = values.next().unwrap_or(0.0));
        Ok(model)
    }

    /// A validated architecture with every parameter zero.
    fn zeros(architecture: Architecture) -> Result<Model, LmError> {
        architecture.validate()?;
        let mut tokens = [None; 256];
        for (token, &byte) in architecture.vocabulary.iter().enumerate() {
            tokens[byte as usize] = Some(token as u8);
        }
        let embeddings = vec![0.0; architecture.vocabulary.len() * architecture.embedding];
        let layers = architecture.layer_shapes().into_iter().map(|(inputs, outputs)| Dense::zeros(inputs, outputs));
        Ok(Model { tokens, embeddings, layers: layers.collect(), architecture })
    }

    /// The model's shape and vocabulary.
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// Number of tokens (vocabulary bytes).
    pub fn vocabulary_size(&self) -> usize {
        self.architecture.vocabulary.len()
    }

    /// Number of parameters (embeddings, weights and biases).
    pub fn parameter_count(&self) -> usize {
        self.architecture.parameter_count()
    }

    /// The token of `byte`, `None` outside the vocabulary.
    pub fn token(&self, byte: u8) -> Option<u8> {
        self.tokens[byte as usize]
    }

    /// The byte of `token` (tokens are below [`Model::vocabulary_size`]).
    pub fn byte(&self, token: u8) -> u8 {
        self.architecture.vocabulary[token as usize]
    }

    /// The context after `prompt`: its last `context` bytes as tokens, a byte outside the vocabulary
    /// replaced by the unknown byte's token, and the start byte's token before the prompt's first byte.
    pub fn context_after(&self, prompt: &[u8]) -> Vec<u8> {
        let context = self.architecture.context;
        let start = self.token(self.architecture.start_byte).unwrap_or(0);
        let unknown = self.token(self.architecture.unknown_byte).unwrap_or(0);
        let tail = &prompt[prompt.len().saturating_sub(context)..];
        let mut tokens = vec![start; context - tail.len()];
        tokens.extend(tail.iter().map(|&byte| self.token(byte).unwrap_or(unknown)));
        tokens
    }

    /// Every parameter: the embeddings token by token, then for each layer its weights row by row and its
    /// biases. The order of the weights format and of [`Model::from_parameters`].
    pub fn parameters(&self) -> Vec<f32> {
        let mut values = Vec::with_capacity(self.parameter_count());
        values.extend_from_slice(&self.embeddings);
        for layer in &self.layers {
            for o in 0..layer.outputs {
                values.extend((0..layer.inputs).map(|i| layer.weights[layer.index(o, i)]));
            }
            values.extend_from_slice(&layer.biases[..layer.outputs]);
        }
        values
    }

    /// Calls `visit` on every parameter in the order of [`Model::parameters`].
    fn visit_parameters_mut(&mut self, mut visit: impl FnMut(&mut f32)) {
        self.embeddings.iter_mut().for_each(&mut visit);
        for layer in &mut self.layers {
            for o in 0..layer.outputs {
                for i in 0..layer.inputs {
                    let index = layer.index(o, i);
                    visit(&mut layer.weights[index]);
                }
            }
            layer.biases[..layer.outputs].iter_mut().for_each(&mut visit);
        }
    }

    /// The logits of the byte after `prompt` (one per token), with the installed vector unit.
    pub fn next_logits(&self, prompt: &[u8]) -> Vec<f32> {
        let mut scratch = Scratch::default();
        self.logits(sis_ai::vector_unit(), &self.context_after(prompt), &mut scratch).to_vec()
    }

    /// The logits after `context` (exactly `context` tokens, each below the vocabulary size), the dense
    /// layers run by `unit`; `scratch` is reused from call to call.
    pub(crate) fn logits<'a>(&self, unit: &VectorUnit, context: &[u8], scratch: &'a mut Scratch) -> &'a [f32] {
        let width = self.architecture.embedding;
        let input = &mut scratch.input;
        input.clear();
        for &token in context {
            let start = token as usize * width;
            input.extend_from_slice(&self.embeddings[start..start + width]);
        }
        scratch.outputs.resize_with(self.layers.len(), Vec::new);
        let last = self.layers.len() - 1;
        for (index, layer) in self.layers.iter().enumerate() {
            let (before, after) = scratch.outputs.split_at_mut(index);
            let input = before.last().map_or(&scratch.input[..], |output| &output[..layer.inputs]);
            let output = &mut after[0];
            output.resize(padded(layer.outputs), 0.0);
            (unit.forward)(&layer.weights, &layer.biases, input, output, index < last);
        }
        &scratch.outputs[last][..self.vocabulary_size()]
    }
}

/// Buffers of a forward pass, kept between tokens so generation does not allocate per token.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    pub(crate) input: Vec<f32>,
    /// Each layer's output, padded to whole groups of rows.
    pub(crate) outputs: Vec<Vec<f32>>,
}
