//! SIS language model: a small byte-level model whose generation is the same, bit for bit, on the host
//! and in the kernel.
//!
//! - [`Model`]: the embeddings of the last `context` bytes, laid end to end, through ReLU hidden layers
//!   to one logit per vocabulary byte. The dense layers run through sis-ai's vector unit, which the
//!   kernel backs with its FPU loop (checked at boot to give the software loop's bits).
//! - [`generate`] and [`Generator`]: greedy at temperature 0, otherwise seeded sampling from
//!   softmax(logits / T) with `libm::expf`, every sum in a fixed order.
//! - [`Model::to_bytes`] / [`Model::from_bytes`]: the weights format (the `format` module's
//!   documentation has the layout), every field and the length checked.
//! - [`train`]: minibatch Adam on a text, deterministic from a seed (run by `cargo xtask model train`).
//!
//! docs/lm.md describes the shipped model, its training text and how to reproduce it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
mod format;
mod generate;
mod inspect;
mod model;
pub mod train;

#[cfg(test)]
mod tests;

pub use error::{Field, LmError, SpecialByte};
pub use format::{FORMAT_VERSION, MAGIC};
pub use generate::{check_temperature, generate, Generator, MAX_TEMPERATURE, MAX_TOKENS};
pub use model::{Architecture, Model, MAX_CONTEXT, MAX_EMBEDDING, MAX_HIDDEN_LAYERS, MAX_VOCABULARY, MAX_WIDTH};
