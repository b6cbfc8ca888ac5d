//! Why a model could not be loaded or built, or a generation request was refused.

use core::fmt;

/// A bounded header field of the weights format, named in [`LmError::OutOfRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Number of bytes in the vocabulary.
    Vocabulary,
    /// Bytes of context the model reads.
    Context,
    /// Values per byte embedding.
    Embedding,
    /// Number of hidden layers.
    HiddenLayers,
    /// Width of a hidden layer.
    Width,
}

impl Field {
    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::Vocabulary => "vocabulary size",
            Field::Context => "context",
            Field::Embedding => "embedding width",
            Field::HiddenLayers => "hidden layer count",
            Field::Width => "hidden layer width",
        }
    }
}

/// Which of the two special bytes of the vocabulary ([`crate::Architecture`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialByte {
    /// Fills the context before the prompt's first byte.
    Start,
    /// Replaces a prompt byte outside the vocabulary.
    Unknown,
}

/// A refused model, blob or generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmError {
    /// The blob does not start with [`crate::MAGIC`].
    BadMagic,
    /// The blob's format version is not [`crate::FORMAT_VERSION`].
    UnsupportedVersion {
        /// The version it states.
        version: u16,
    },
    /// The blob ends before its header does.
    Truncated {
        /// Bytes the header needs so far.
        needed: usize,
        /// Bytes the blob has.
        length: usize,
    },
    /// The blob's length is not the header's size plus four bytes per parameter of the architecture it states.
    LengthMismatch {
        /// Length the header implies.
        expected: usize,
        /// Bytes the blob has.
        length: usize,
    },
    /// A header field outside its range.
    OutOfRange {
        /// Which field.
        field: Field,
        /// Its value.
        value: usize,
        /// Smallest value accepted.
        min: usize,
        /// Largest value accepted.
        max: usize,
    },
    /// The vocabulary's bytes are not strictly ascending (sorted, no repeats).
    VocabularyNotAscending {
        /// Position of the first byte not above the one before it.
        position: usize,
    },
    /// A special byte that is not in the vocabulary.
    NotInVocabulary {
        /// Which one.
        which: SpecialByte,
        /// Its value.
        byte: u8,
    },
    /// A parameter count that does not match the architecture.
    ParameterCount {
        /// Parameters of the architecture.
        expected: usize,
        /// Values given.
        given: usize,
    },
    /// A NaN or infinite parameter.
    NotFinite {
        /// Its index in the order of [`crate::Model::parameters`].
        index: usize,
    },
    /// A temperature that is NaN.
    TemperatureNotANumber,
    /// A temperature below zero.
    TemperatureNegative,
    /// A temperature above [`crate::MAX_TEMPERATURE`] (infinity included).
    TemperatureTooHigh,
    /// More tokens asked for than [`crate::MAX_TOKENS`].
    TooManyTokens {
        /// Tokens asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },
}

impl LmError {
    /// A stable identifier for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            LmError::BadMagic => "bad_magic",
            LmError::UnsupportedVersion { .. } => "unsupported_version",
            LmError::Truncated { .. } => "truncated",
            LmError::LengthMismatch { .. } => "length_mismatch",
            LmError::OutOfRange { .. } => "out_of_range",
            LmError::VocabularyNotAscending { .. } => "vocabulary_not_ascending",
            LmError::NotInVocabulary { .. } => "not_in_vocabulary",
            LmError::ParameterCount { .. } => "parameter_count",
            LmError::NotFinite { .. } => "not_finite",
            LmError::TemperatureNotANumber => "temperature_nan",
            LmError::TemperatureNegative => "temperature_negative",
            LmError::TemperatureTooHigh => "temperature_too_high",
            LmError::TooManyTokens { .. } => "too_many_tokens",
        }
    }
}

impl fmt::Display for LmError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmError::BadMagic => write!(formatter, "not a SIS language model (bad magic)"),
            LmError::UnsupportedVersion { version } => {
                write!(formatter, "weights format version {version} is not supported (only {})", crate::FORMAT_VERSION)
            }
            LmError::Truncated { needed, length } => {
                write!(formatter, "truncated: the header needs {needed} bytes, the blob has {length}")
            }
            LmError::LengthMismatch { expected, length } => {
                write!(formatter, "the header implies {expected} bytes, the blob has {length}")
            }
            LmError::OutOfRange { field, value, min, max } => {
                write!(formatter, "{} {value} is outside {min}..={max}", field.name())
            }
            LmError::VocabularyNotAscending { position } => {
                write!(formatter, "vocabulary byte {position} is not above the one before it")
            }
            LmError::NotInVocabulary { which, byte } => {
                let name = match which {
                    SpecialByte::Start => "start",
                    SpecialByte::Unknown => "unknown",
                };
                write!(formatter, "the {name} byte {byte:#04x} is not in the vocabulary")
            }
            LmError::ParameterCount { expected, given } => {
                write!(formatter, "{given} parameters given, the architecture has {expected}")
            }
            LmError::NotFinite { index } => write!(formatter, "parameter {index} is not a finite number"),
            LmError::TemperatureNotANumber => write!(formatter, "temperature is not a number"),
            LmError::TemperatureNegative => write!(formatter, "temperature is negative"),
            LmError::TemperatureTooHigh => write!(formatter, "temperature is above {}", crate::MAX_TEMPERATURE),
            LmError::TooManyTokens { requested, max } => {
                write!(formatter, "{requested} tokens requested, at most {max} per generation")
            }
        }
    }
}
