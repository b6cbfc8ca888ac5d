//! Generation: greedy at temperature 0, else seeded sampling from softmax(logits / T), the same bits everywhere.
//!
//! Every step is defined to the bit so the kernel and the host agree: the dense layers are the vector
//! unit's (summed in order, no fused multiply-add), the exponentials are `libm::expf`, sums run in
//! token order, and the one random draw per sampled token is [`SeededRandom::unit`] (24 bits).

use alloc::vec::Vec;

use sis_ai::VectorUnit;
use sis_hal::SeededRandom;

use crate::error::LmError;
use crate::model::{Model, Scratch};

/// Highest temperature accepted. At 10 the shipped model's next-byte distribution is close to uniform: after
/// three prompts it measured 5.36 to 5.84 bits of entropy, against 5.95 for uniform over its 62 bytes.
pub const MAX_TEMPERATURE: f32 = 10.0;
/// Most tokens one [`generate`] call produces.
pub const MAX_TOKENS: usize = 4096;

/// `temperature` if it is a number in 0..=[`MAX_TEMPERATURE`].
pub fn check_temperature(temperature: f32) -> Result<f32, LmError> {
    if temperature.is_nan() {
        Err(LmError::TemperatureNotANumber)
    } else if temperature < 0.0 {
        Err(LmError::TemperatureNegative)
    } else if temperature > MAX_TEMPERATURE {
        Err(LmError::TemperatureTooHigh)
    } else {
        Ok(temperature)
    }
}

/// Up to `max_tokens` bytes that follow `prompt` (the prompt itself is not repeated). Temperature 0 takes
/// the argmax each step; above it, tokens are sampled with a [`SeededRandom`] seeded by `seed`
/// ([`Generator`] defines each step). Refused: a temperature that [`check_temperature`] refuses, more than
/// [`MAX_TOKENS`].
pub fn generate(
    model: &Model,
    prompt: &[u8],
    max_tokens: usize,
    temperature: f32,
    seed: u64,
) -> Result<Vec<u8>, LmError> {
    if max_tokens > MAX_TOKENS {
        return Err(LmError::TooManyTokens { requested: max_tokens, max: MAX_TOKENS });
    }
    let mut generator = Generator::new(model, prompt, temperature, seed)?;
    Ok((0..max_tokens).map(|_| generator.next_byte()).collect())
}

/// Generation one byte at a time, so a caller can stop at a budget or stream the bytes.
#[derive(Debug, Clone)]
pub struct Generator<'a> {
    model: &'a Model,
    unit: VectorUnit,
    /// The last `context` tokens, oldest first.
    context: Vec<u8>,
    temperature: f32,
    random: SeededRandom,
    scratch: Scratch,
    /// The logits of the last step.
    logits: Vec<f32>,
    /// exp((logit − max) / T) of the last sampled step.
    weights: Vec<f32>,
}

impl<'a> Generator<'a> {
    /// A generator of the bytes after `prompt` ([`Model::context_after`] says how the prompt becomes the
    /// context) with the installed vector unit ([`sis_ai::vector_unit`]).
    pub fn new(model: &'a Model, prompt: &[u8], temperature: f32, seed: u64) -> Result<Self, LmError> {
        Generator::with_unit(model, prompt, temperature, seed, *sis_ai::vector_unit())
    }

    /// [`Generator::new`] with the dense layers run by `unit`.
    pub fn with_unit(
        model: &'a Model,
        prompt: &[u8],
        temperature: f32,
        seed: u64,
        unit: VectorUnit,
    ) -> Result<Self, LmError> {
        let temperature = check_temperature(temperature)?;
        Ok(Generator {
            model,
            unit,
            context: model.context_after(prompt),
            temperature,
            random: SeededRandom::new(seed),
            scratch: Scratch::default(),
            logits: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// The next byte, which then joins the context.
    ///
    /// Greedy (temperature 0): the token with the highest logit, the lowest index on ties. Sampled: with
    /// `max` the greedy token's logit, `w_i = libm::expf((logit_i − max) / T)`, `sum = w_0 + w_1 + …` (from
    /// −0.0, in token order), `target = u · sum` with `u` = [`SeededRandom::unit`]; the token is the first
    /// whose running sum `w_0 + … + w_i` (same order) exceeds `target`. If none does (rounding), the last
    /// token with `w_i > 0`; if there is none (logits not finite), the greedy token.
    pub fn next_byte(&mut self) -> u8 {
        let logits = self.model.logits(&self.unit, &self.context, &mut self.scratch);
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        let greedy = argmax(&self.logits);
        let token = if self.temperature == 0.0 { greedy } else { self.sample(greedy) };
        self.context.rotate_left(1);
        if let Some(last) = self.context.last_mut() {
            *last = token;
        }
        self.model.byte(token)
    }

    /// The logits the last [`Generator::next_byte`] chose from (empty before the first).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn sample(&mut self, greedy: u8) -> u8 {
        let max = self.logits[greedy as usize];
        let temperature = self.temperature;
        self.weights.clear();
        self.weights.extend(self.logits.iter().map(|&logit| libm::expf((logit - max) / temperature)));
        let sum = self.weights.iter().fold(-0.0f32, |sum, &weight| sum + weight);
        let target = self.random.unit() * sum;
        let mut running = -0.0f32;
        for (token, &weight) in self.weights.iter().enumerate() {
            running += weight;
            if target < running {
                return token as u8;
            }
        }
        match self.weights.iter().rposition(|&weight| weight > 0.0) {
            Some(token) => token as u8,
            None => greedy,
        }
    }
}

/// The index of the highest value, the lowest on ties (a NaN is never higher than anything).
fn argmax(values: &[f32]) -> u8 {
    let mut best = 0;
    for (index, &value) in values.iter().enumerate().skip(1) {
        if value > values[best] {
            best = index;
        }
    }
    best as u8
}
