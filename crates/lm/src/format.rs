//! The weights format: a header stating the architecture, then every parameter as a little-endian f32.
//!
//! ```text
//! offset  size  field
//! 0       6     magic "SIS-LM"
//! 6       2     format version (1)
//! 8       2     vocabulary size V (1..=256)
//! 10      2     context N (1..=64)
//! 12      2     embedding width E (1..=256)
//! 14      2     hidden layer count L (1..=4)
//! 16      2·L   hidden layer widths (each 1..=4096)
//! 16+2L   1     start byte (in the vocabulary)
//! 17+2L   1     unknown byte (in the vocabulary)
//! 18+2L   V     vocabulary bytes, strictly ascending
//! 18+2L+V 4·P   the P parameters in the order of Model::parameters, f32 little-endian, finite
//! ```
//! Integers are little-endian. The blob is exactly this long: anything shorter or longer is refused.

use alloc::vec::Vec;

use crate::error::{Field, LmError};
use crate::model::{Architecture, Model, MAX_HIDDEN_LAYERS};

/// The first six bytes of every blob.
pub const MAGIC: [u8; 6] = *b"SIS-LM";
/// The version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

impl Model {
    /// The model as a blob of the weights format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let architecture = self.architecture();
        let parameters = self.parameters();
        let mut bytes = Vec::with_capacity(header_length(architecture) + 4 * parameters.len());
        bytes.extend_from_slice(&MAGIC);
        let fields = [FORMAT_VERSION as usize, architecture.vocabulary.len(), architecture.context]
            .into_iter()
            .chain([architecture.embedding, architecture.hidden.len()])
            .chain(architecture.hidden.iter().copied());
        for field in fields {
            // Every field is at most 4096 once validated.
            bytes.extend_from_slice(&(field as u16).to_le_bytes());
        }
        bytes.extend_from_slice(&[architecture.start_byte, architecture.unknown_byte]);
        bytes.extend_from_slice(&architecture.vocabulary);
        for value in parameters {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// A model from a blob of the weights format, every field and the length checked before anything
    /// is allocated for the parameters.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, LmError> {
        let mut reader = Reader { bytes, position: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(LmError::BadMagic);
        }
        let version = reader.u16()?;
        if version != FORMAT_VERSION {
            return Err(LmError::UnsupportedVersion { version });
        }
        let vocabulary_size = reader.u16()? as usize;
        let context = reader.u16()? as usize;
        let embedding = reader.u16()? as usize;
        let layers = reader.u16()? as usize;
        if !(1..=MAX_HIDDEN_LAYERS).contains(&layers) {
            return Err(LmError::OutOfRange {
                field: Field::HiddenLayers,
                value: layers,
                min: 1,
                max: MAX_HIDDEN_LAYERS,
            });
        }
        let hidden = (0..layers).map(|_| reader.u16().map(usize::from)).collect::<Result<Vec<_>, _>>()?;
        let start_byte = reader.u8()?;
        let unknown_byte = reader.u8()?;
        let vocabulary = reader.take(vocabulary_size)?.to_vec();
        let architecture = Architecture { vocabulary, start_byte, unknown_byte, context, embedding, hidden };
        architecture.validate()?;
        let count = architecture.parameter_count();
        let expected = reader.position + 4 * count;
        if bytes.len() != expected {
            return Err(LmError::LengthMismatch { expected, length: bytes.len() });
        }
        let parameters: Vec<f32> = bytes[reader.position..]
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        Model::from_parameters(architecture, &parameters)
    }
}

/// Bytes before the parameters.
fn header_length(architecture: &Architecture) -> usize {
    MAGIC.len() + 2 * (5 + architecture.hidden.len()) + 2 + architecture.vocabulary.len()
}

/// Reads a blob front to back; running out is [`LmError::Truncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], LmError> {
        let end = self.position + count;
        let taken =
            self.bytes.get(self.position..end).ok_or(LmError::Truncated { needed: end, length: self.bytes.len() })?;
        self.position = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, LmError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, LmError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}
