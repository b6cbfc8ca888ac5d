//! Generation equals a reference written here with plain loops from the blob's bytes, bit for bit;
//! the dense layers give the same bits through another exact vector unit.

use sis_ai::{check_vector_unit, VectorUnit, SOFTWARE};
use sis_hal::SeededRandom;

use super::{random_model, shipped};
use crate::{generate, Generator, Model};

/// The model as the format describes it, read without the crate's parser.
struct Reference {
    vocabulary: Vec<u8>,
    start_byte: u8,
    unknown_byte: u8,
    context: usize,
    /// Row per token.
    embeddings: Vec<Vec<f32>>,
    /// Per layer: weights row by row, biases.
    layers: Vec<(Vec<Vec<f32>>, Vec<f32>)>,
}

impl Reference {
    fn parse(blob: &[u8]) -> Reference {
        let u16_at = |offset: usize| u16::from_le_bytes([blob[offset], blob[offset + 1]]) as usize;
        assert_eq!(&blob[..6], b"SIS-LM");
        assert_eq!(u16_at(6), 1);
        let (vocabulary_size, context, embedding, layers) = (u16_at(8), u16_at(10), u16_at(12), u16_at(14));
        let hidden: Vec<usize> = (0..layers).map(|layer| u16_at(16 + 2 * layer)).collect();
        let mut offset = 16 + 2 * layers;
        let (start_byte, unknown_byte) = (blob[offset], blob[offset + 1]);
        offset += 2;
        let vocabulary = blob[offset..offset + vocabulary_size].to_vec();
        offset += vocabulary_size;
        let mut next = || {
            let value = f32::from_le_bytes(blob[offset..offset + 4].try_into().unwrap());
            offset += 4;
            value
        };
        let embeddings = (0..vocabulary_size).map(|_| (0..embedding).map(|_| next()).collect()).collect();
        let mut inputs = context * embedding;
        let mut parsed = Vec::new();
        for &outputs in hidden.iter().chain([vocabulary_size].iter()) {
            let weights = (0..outputs).map(|_| (0..inputs).map(|_| next()).collect()).collect();
            let biases = (0..outputs).map(|_| next()).collect();
            parsed.push((weights, biases));
            inputs = outputs;
        }
        assert_eq!(offset, blob.len());
        Reference { vocabulary, start_byte, unknown_byte, context, embeddings, layers: parsed }
    }

    fn token(&self, byte: u8) -> Option<usize> {
        self.vocabulary.iter().position(|&b| b == byte)
    }

    /// Logits after the context `bytes` (all in the vocabulary).
    fn logits(&self, bytes: &[u8]) -> Vec<f32> {
        let mut values: Vec<f32> = Vec::new();
        for &byte in bytes {
            values.extend(&self.embeddings[self.token(byte).unwrap()]);
        }
        for (index, (weights, biases)) in self.layers.iter().enumerate() {
            let mut outputs = Vec::new();
            for (row, bias) in weights.iter().zip(biases) {
                let mut sum = -0.0f32;
                for i in 0..row.len() {
                    sum += row[i] * values[i];
                }
                let value = sum + bias;
                let hidden = index + 1 < self.layers.len();
                outputs.push(if hidden { relu(value) } else { value });
            }
            values = outputs;
        }
        values
    }

    fn generate(&self, prompt: &[u8], count: usize, temperature: f32, seed: u64) -> (Vec<u8>, Vec<Vec<f32>>) {
        let mut context = vec![self.start_byte; self.context];
        for &byte in prompt {
            context.remove(0);
            context.push(if self.token(byte).is_some() { byte } else { self.unknown_byte });
        }
        let mut random = SeededRandom::new(seed);
        let (mut bytes, mut all_logits) = (Vec::new(), Vec::new());
        for _ in 0..count {
            let logits = self.logits(&context);
            let mut best = 0;
            for i in 1..logits.len() {
                if logits[i] > logits[best] {
                    best = i;
                }
            }
            let mut chosen = best;
            if temperature != 0.0 {
                let weights: Vec<f32> =
                    logits.iter().map(|&logit| libm::expf((logit - logits[best]) / temperature)).collect();
                let mut sum = -0.0f32;
                for &weight in &weights {
                    sum += weight;
                }
                let target = random.unit() * sum;
                let mut running = -0.0f32;
                chosen = usize::MAX;
                for (i, &weight) in weights.iter().enumerate() {
                    running += weight;
                    if target < running {
                        chosen = i;
                        break;
                    }
                }
                assert_ne!(chosen, usize::MAX, "the running sum always passes the target for these models");
            }
            bytes.push(self.vocabulary[chosen]);
            context.remove(0);
            context.push(self.vocabulary[chosen]);
            all_logits.push(logits);
        }
        (bytes, all_logits)
    }
}

/// `x` when `x > 0`, else +0 (NaN included).
fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// The bytes and every step's logits bits from the crate's generator.
fn generated(
    model: &Model,
    prompt: &[u8],
    count: usize,
    temperature: f32,
    seed: u64,
    unit: VectorUnit,
) -> (Vec<u8>, Vec<Vec<u32>>) {
    let mut generator = Generator::with_unit(model, prompt, temperature, seed, unit).unwrap();
    let mut bytes = Vec::new();
    let mut logits = Vec::new();
    for _ in 0..count {
        bytes.push(generator.next_byte());
        logits.push(generator.logits().iter().map(|value| value.to_bits()).collect());
    }
    (bytes, logits)
}

fn bits(logits: &[Vec<f32>]) -> Vec<Vec<u32>> {
    logits.iter().map(|row| row.iter().map(|value| value.to_bits()).collect()).collect()
}

const PROMPTS: [&[u8]; 5] = [b"", b"ROMEO:\n", b"What say you, my lord?", b"\xff\x00XZ q\xc3\xa9!", b"a"];

#[test]
fn generation_equals_the_plain_loop_reference_bit_for_bit() {
    let mut cases = 0;
    for (model, blob) in [(shipped(), super::SHIPPED.to_vec()), (random_model(3), random_model(3).to_bytes())] {
        let reference = Reference::parse(&blob);
        for (case, prompt) in PROMPTS.iter().enumerate() {
            for (temperature, seed) in [(0.0, 1), (0.8, 1), (0.8, 2), (1.0, 99), (2.5, case as u64), (0.05, 7)] {
                let (expected, expected_logits) = reference.generate(prompt, 40, temperature, seed);
                let (bytes, logits) = generated(&model, prompt, 40, temperature, seed, SOFTWARE);
                assert_eq!(bytes, expected, "prompt {prompt:?}, T {temperature}, seed {seed}");
                assert_eq!(logits, bits(&expected_logits), "prompt {prompt:?}, T {temperature}, seed {seed}");
                assert_eq!(generate(&model, prompt, 40, temperature, seed).unwrap(), expected);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * 5 * 6);
}

/// The vector unit's forward pass with the loops the other way round (input outer, rows inner): the
/// same sums in the same order, as an FPU unit computes them.
fn input_major_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], activate: bool) {
    let n = input.len();
    let groups = (output.len() / 4).min(biases.len() / 4).min(weights.len().checked_div(4 * n).unwrap_or(usize::MAX));
    for group in 0..groups {
        let mut sums = [-0.0f32; 4];
        for (i, &x) in input.iter().enumerate() {
            for (lane, sum) in sums.iter_mut().enumerate() {
                *sum += weights[(group * n + i) * 4 + lane] * x;
            }
        }
        for lane in 0..4 {
            let value = sums[lane] + biases[group * 4 + lane];
            output[group * 4 + lane] = if activate { relu(value) } else { value };
        }
    }
}

/// The same with each row summed from its last input to its first: a unit the check refuses.
fn reversed_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], activate: bool) {
    let n = input.len();
    for group in 0..output.len() / 4 {
        for lane in 0..4 {
            let mut sum = -0.0f32;
            for i in (0..n).rev() {
                sum += weights[(group * n + i) * 4 + lane] * input[i];
            }
            let value = sum + biases[group * 4 + lane];
            output[group * 4 + lane] = if activate { relu(value) } else { value };
        }
    }
}

#[test]
fn another_exact_vector_unit_generates_the_same_bits_and_an_inexact_one_does_not() {
    let input_major = VectorUnit { name: "input-major", forward: input_major_forward, ..SOFTWARE };
    assert_eq!(check_vector_unit(&input_major), Ok(()));
    let model = shipped();
    for (temperature, seed) in [(0.0, 1), (0.8, 5), (1.5, 6)] {
        let software = generated(&model, b"KING RICHARD III:\n", 60, temperature, seed, SOFTWARE);
        assert_eq!(generated(&model, b"KING RICHARD III:\n", 60, temperature, seed, input_major), software);
    }
    // Summing in another order changes the logits' bits: the equality above is not vacuous.
    let reversed = VectorUnit { name: "reversed", forward: reversed_forward, ..SOFTWARE };
    assert!(check_vector_unit(&reversed).is_err());
    let software = generated(&model, b"KING RICHARD III:\n", 1, 0.0, 1, SOFTWARE).1;
    assert_ne!(generated(&model, b"KING RICHARD III:\n", 1, 0.0, 1, reversed).1, software);
}
