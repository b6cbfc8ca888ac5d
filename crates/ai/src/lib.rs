//! SIS learning agents: a small f32 multilayer perceptron and a Q-learning agent with experience replay.
//!
//! Everything is plain f32 arithmetic, so it runs the same on the host and
//! under the kernel's softfloat target, and every random choice (weights,
//! exploration, replay sampling) comes from one seed.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod network;
mod qlearning;

pub use network::{Gradients, Network, ParameterError};
pub use qlearning::{Agent, AgentConfig, Transition};
/// The agents' generator ([`sis_hal::SeededRandom`]).
pub type Random = sis_hal::SeededRandom;
