//! Host tests: the weights format, generation against a plain-loop reference, training.

mod format;
mod generate;
mod inspect;
mod reference;
mod train;

use sis_hal::SeededRandom;

use crate::{Architecture, Model};

/// The committed weights (docs/lm.md).
pub(crate) const SHIPPED: &[u8] = include_bytes!("../../../../models/lm.bin");
/// The committed training text.
pub(crate) const TEXT: &[u8] = include_bytes!("../../../../models/shakespeare.txt");

/// A small architecture whose hidden widths and vocabulary are not whole groups of four rows.
pub(crate) fn small_architecture() -> Architecture {
    Architecture {
        vocabulary: b"\n !,.abcdefghij".to_vec(),
        start_byte: b'\n',
        unknown_byte: b' ',
        context: 5,
        embedding: 3,
        hidden: vec![13, 6],
    }
}

/// A model of [`small_architecture`] with every parameter (biases too) uniform in ±1.5 from `seed`.
pub(crate) fn random_model(seed: u64) -> Model {
    let architecture = small_architecture();
    let mut random = SeededRandom::new(seed);
    let parameters: Vec<f32> = (0..architecture.parameter_count()).map(|_| random.between(-1.5, 1.5)).collect();
    Model::from_parameters(architecture, &parameters).unwrap()
}

/// The shipped model.
pub(crate) fn shipped() -> Model {
    Model::from_bytes(SHIPPED).unwrap()
}
