//! SIS learning agents: a small f32 multilayer perceptron and a Q-learning agent with experience replay.
//!
//! Everything is plain f32 arithmetic, so it runs the same on the host and
//! under the kernel's softfloat target, and every random choice (weights,
//! exploration, replay sampling) comes from one seed. The network's inner
//! loops can be handed to faster hardware that computes the same bits
//! ([`install_vector_unit`]). A network's weights travel in the `agent-network` format of [`weights`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod inspect;
mod network;
mod qlearning;
mod softmax;
mod vector;
pub mod weights;

pub use inspect::{LayerInfo, LayerKind, ValueStats};
pub use network::{Gradients, Network, ParameterError, Scratch};
pub use qlearning::{Agent, AgentConfig, Transition};
pub use softmax::softmax_per_mille;
pub use vector::{
    check_vector_unit, install_vector_unit, vector_unit, weight_index, LayerBackward, LayerForward, LayerUpdate,
    VectorUnit, VectorUnitError, CHECK_CASES, LANES, SOFTWARE,
};
pub use weights::{NetworkWeights, WeightsError};
/// The agents' generator ([`sis_hal::SeededRandom`]).
pub type Random = sis_hal::SeededRandom;
