//! The `agent-network` weights format: a network's layer sizes, then every parameter as a little-endian f32.
//!
//! ```text
//! offset  size  field
//! 0       7     magic "SIS-NET"
//! 7       2     format version (1)
//! 9       2     count N of layer sizes (2..=8: the inputs, up to six hidden layers, the outputs)
//! 11      2·N   the layer sizes, inputs first (each 1..=4096)
//! 11+2N   4·P   the P parameters in the order of Network::parameters, f32 little-endian, finite
//! ```
//! Integers are little-endian. P is the sum over the layers of `inputs × outputs + outputs`: each layer's
//! weights row by row (row `o` holds output `o`'s weights, input by input), then its biases. The blob is exactly
//! this long: anything shorter or longer is refused, before anything is allocated for the parameters.
//!
//! A signed artifact of kind `agent-network` carries this blob as its weights; its input shape must be `[N_0]`
//! and its output shape `[N_last]` ([`NetworkWeights::check_shapes`]).

use alloc::vec::Vec;
use core::fmt;

/// The first seven bytes of every blob.
pub const MAGIC: [u8; 7] = *b"SIS-NET";
/// The version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Layer sizes a blob holds at least (inputs and outputs).
pub const MIN_LAYER_SIZES: usize = 2;
/// Layer sizes a blob holds at most (inputs, six hidden layers, outputs).
pub const MAX_LAYER_SIZES: usize = 8;
/// The widest layer.
pub const MAX_LAYER_SIZE: usize = 4096;

/// A network's layer sizes and parameters: what the weights format carries.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkWeights {
    /// Layer sizes, inputs first.
    pub sizes: Vec<usize>,
    /// Every parameter, in the order of [`crate::Network::parameters`].
    pub parameters: Vec<f32>,
}

/// An artifact's shape the network's does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeSide {
    /// The input shape.
    Input,
    /// The output shape.
    Output,
}

impl ShapeSide {
    /// `input` or `output`.
    pub fn name(self) -> &'static str {
        match self {
            ShapeSide::Input => "input",
            ShapeSide::Output => "output",
        }
    }
}

/// Why a weights blob was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsError {
    /// The blob ends before the header says it does.
    Truncated {
        /// Bytes the header (or the header and parameters) need.
        needed: u64,
        /// Bytes given.
        length: usize,
    },
    /// Bytes after the last parameter.
    TrailingBytes {
        /// The length the header implies.
        expected: u64,
        /// Bytes given.
        length: usize,
    },
    /// The first bytes are not [`MAGIC`].
    BadMagic,
    /// A format version this crate does not read.
    UnsupportedVersion {
        /// The version in the blob.
        version: u16,
    },
    /// Fewer than [`MIN_LAYER_SIZES`] or more than [`MAX_LAYER_SIZES`] layer sizes.
    BadLayerCount {
        /// The count.
        count: usize,
    },
    /// A layer size of 0 or above [`MAX_LAYER_SIZE`].
    BadLayerSize {
        /// Its index among the sizes (0: the inputs).
        index: usize,
        /// The size.
        size: usize,
    },
    /// Not as many parameters as the sizes imply (encoding only: a decoded blob's length says it).
    ParameterCount {
        /// Parameters the sizes imply.
        expected: usize,
        /// Parameters given.
        given: usize,
    },
    /// A NaN or infinite parameter.
    NotFinite {
        /// Its index.
        index: usize,
    },
    /// The artifact's input or output shape is not the network's `[width]`.
    ShapeMismatch {
        /// Which shape.
        side: ShapeSide,
        /// The artifact's shape.
        artifact: Vec<u32>,
        /// The network's width on that side.
        network: usize,
    },
    /// The layer sizes are not those of the agent the weights go into.
    ArchitectureMismatch {
        /// The blob's sizes.
        weights: Vec<usize>,
        /// The agent's.
        agent: Vec<usize>,
    },
}

impl WeightsError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            WeightsError::Truncated { .. } => "weights-truncated",
            WeightsError::TrailingBytes { .. } => "weights-trailing-bytes",
            WeightsError::BadMagic => "weights-bad-magic",
            WeightsError::UnsupportedVersion { .. } => "weights-unsupported-version",
            WeightsError::BadLayerCount { .. } => "weights-bad-layer-count",
            WeightsError::BadLayerSize { .. } => "weights-bad-layer-size",
            WeightsError::ParameterCount { .. } => "weights-parameter-count",
            WeightsError::NotFinite { .. } => "weights-not-finite",
            WeightsError::ShapeMismatch { .. } => "shape-mismatch",
            WeightsError::ArchitectureMismatch { .. } => "architecture-mismatch",
        }
    }
}

impl fmt::Display for WeightsError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightsError::Truncated { needed, length } => {
                write!(formatter, "the weights are {length} bytes; their header needs {needed}")
            }
            WeightsError::TrailingBytes { expected, length } => {
                write!(formatter, "the weights are {length} bytes; their header says {expected}")
            }
            WeightsError::BadMagic => write!(formatter, "the weights do not start with \"SIS-NET\""),
            WeightsError::UnsupportedVersion { version } => {
                write!(formatter, "weights format version {version}; this kernel reads {FORMAT_VERSION}")
            }
            WeightsError::BadLayerCount { count } => write!(
                formatter,
                "{count} layer sizes; a network has {MIN_LAYER_SIZES} to {MAX_LAYER_SIZES} (inputs, hidden, outputs)"
            ),
            WeightsError::BadLayerSize { index, size } => {
                write!(formatter, "layer size {index} is {size}; accepted 1..={MAX_LAYER_SIZE}")
            }
            WeightsError::ParameterCount { expected, given } => {
                write!(formatter, "{given} parameters given, the layer sizes need {expected}")
            }
            WeightsError::NotFinite { index } => write!(formatter, "parameter {index} is not a finite number"),
            WeightsError::ShapeMismatch { side, artifact, network } => {
                write!(formatter, "the artifact's {} shape is {artifact:?}; the network's is [{network}]", side.name())
            }
            WeightsError::ArchitectureMismatch { weights, agent } => {
                write!(formatter, "the weights are a {weights:?} network; the agent is {agent:?}")
            }
        }
    }
}

impl NetworkWeights {
    /// The blob, after checking the sizes, the parameter count and that every parameter is finite.
    pub fn encode(&self) -> Result<Vec<u8>, WeightsError> {
        let expected = parameter_count(&self.sizes)?;
        if self.parameters.len() as u64 != expected {
            return Err(WeightsError::ParameterCount { expected: expected as usize, given: self.parameters.len() });
        }
        if let Some(index) = self.parameters.iter().position(|value| !value.is_finite()) {
            return Err(WeightsError::NotFinite { index });
        }
        let mut bytes = Vec::with_capacity(header_length(self.sizes.len()) + 4 * self.parameters.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Checked above: at most MAX_LAYER_SIZES sizes of at most MAX_LAYER_SIZE, so each fits a u16.
        bytes.extend_from_slice(&(self.sizes.len() as u16).to_le_bytes());
        for size in &self.sizes {
            bytes.extend_from_slice(&(*size as u16).to_le_bytes());
        }
        for value in &self.parameters {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        Ok(bytes)
    }

    /// The weights a blob holds, every field and the exact length checked before the parameters are allocated.
    pub fn decode(bytes: &[u8]) -> Result<NetworkWeights, WeightsError> {
        let fixed = header_length(0);
        if bytes.len() < fixed {
            return Err(WeightsError::Truncated { needed: fixed as u64, length: bytes.len() });
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        let version = u16_at(bytes, MAGIC.len());
        if version != FORMAT_VERSION {
            return Err(WeightsError::UnsupportedVersion { version });
        }
        let count = u16_at(bytes, MAGIC.len() + 2) as usize;
        if !(MIN_LAYER_SIZES..=MAX_LAYER_SIZES).contains(&count) {
            return Err(WeightsError::BadLayerCount { count });
        }
        let header = header_length(count);
        if bytes.len() < header {
            return Err(WeightsError::Truncated { needed: header as u64, length: bytes.len() });
        }
        let sizes: Vec<usize> = (0..count).map(|index| u16_at(bytes, fixed + 2 * index) as usize).collect();
        let parameters = parameter_count(&sizes)?;
        // At most 7 × (4096² + 4096) parameters: far from overflowing a u64.
        let expected = header as u64 + 4 * parameters;
        if (bytes.len() as u64) < expected {
            return Err(WeightsError::Truncated { needed: expected, length: bytes.len() });
        }
        if bytes.len() as u64 > expected {
            return Err(WeightsError::TrailingBytes { expected, length: bytes.len() });
        }
        let parameters: Vec<f32> = bytes[header..]
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        if let Some(index) = parameters.iter().position(|value| !value.is_finite()) {
            return Err(WeightsError::NotFinite { index });
        }
        Ok(NetworkWeights { sizes, parameters })
    }

    /// Checks that an artifact's shapes are this network's: input `[inputs]`, output `[outputs]` (rank 1).
    pub fn check_shapes(&self, input_shape: &[u32], output_shape: &[u32]) -> Result<(), WeightsError> {
        let sides =
            [(ShapeSide::Input, input_shape, self.sizes.first()), (ShapeSide::Output, output_shape, self.sizes.last())];
        for (side, shape, width) in sides {
            let width = width.copied().unwrap_or(0);
            if shape.len() != 1 || shape[0] as usize != width {
                return Err(WeightsError::ShapeMismatch { side, artifact: shape.to_vec(), network: width });
            }
        }
        Ok(())
    }

    /// [`NetworkWeights::decode`], then [`NetworkWeights::check_shapes`] against the artifact's shapes.
    pub fn decode_for(bytes: &[u8], input_shape: &[u32], output_shape: &[u32]) -> Result<NetworkWeights, WeightsError> {
        let weights = NetworkWeights::decode(bytes)?;
        weights.check_shapes(input_shape, output_shape)?;
        Ok(weights)
    }
}

/// Header bytes for `count` layer sizes.
fn header_length(count: usize) -> usize {
    MAGIC.len() + 2 + 2 + 2 * count
}

/// Parameters of a network with these layer sizes, after checking them.
fn parameter_count(sizes: &[usize]) -> Result<u64, WeightsError> {
    if !(MIN_LAYER_SIZES..=MAX_LAYER_SIZES).contains(&sizes.len()) {
        return Err(WeightsError::BadLayerCount { count: sizes.len() });
    }
    if let Some(index) = sizes.iter().position(|size| !(1..=MAX_LAYER_SIZE).contains(size)) {
        return Err(WeightsError::BadLayerSize { index, size: sizes[index] });
    }
    Ok(sizes.windows(2).map(|pair| (pair[0] as u64 + 1) * pair[1] as u64).sum())
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

#[cfg(test)]
mod tests;
