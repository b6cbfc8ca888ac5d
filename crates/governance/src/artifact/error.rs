//! Why an artifact was refused: its framing, its integrity, its signer, or a metadata field.

use core::fmt;

use super::{MAX_METADATA_BYTES, MAX_WEIGHTS_BYTES};
use crate::keys::KeyId;

/// A metadata field, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The model's name.
    Name,
    /// Its semantic version.
    Version,
    /// Its kind.
    Kind,
    /// The input shape.
    InputShape,
    /// The output shape.
    OutputShape,
    /// The author.
    Author,
    /// The creation time.
    Created,
    /// The description.
    Description,
    /// The training data's SHA-256.
    TrainingDataDigest,
}

impl Field {
    /// Its name as written in the docs and in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Version => "version",
            Field::Kind => "kind",
            Field::InputShape => "input_shape",
            Field::OutputShape => "output_shape",
            Field::Author => "author",
            Field::Created => "created",
            Field::Description => "description",
            Field::TrainingDataDigest => "training_data_sha256",
        }
    }
}

/// A refused artifact (decoding) or refused metadata (encoding). Nothing was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactError {
    /// The bytes end before the header, or before the end the header's lengths give.
    Truncated {
        /// Bytes the artifact needs.
        needed: u64,
        /// Bytes there are.
        length: u64,
    },
    /// The first 8 bytes are not `SISMODEL`.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedFormatVersion {
        /// The version in the header.
        version: u32,
    },
    /// The header's lengths add up to more than 2^64 bytes.
    LengthOverflow,
    /// The metadata section is longer than [`MAX_METADATA_BYTES`].
    MetadataTooLarge {
        /// Its length in the header.
        length: u64,
    },
    /// The weights are longer than [`MAX_WEIGHTS_BYTES`].
    WeightsTooLarge {
        /// Their length in the header.
        length: u64,
    },
    /// Bytes follow the end the header's lengths give.
    TrailingBytes {
        /// The artifact's length by its header.
        expected: u64,
        /// Bytes there are.
        length: u64,
    },
    /// The SHA-256 of header, metadata and weights is not the digest stored after them.
    DigestMismatch,
    /// No trusted key has the artifact's key id.
    UnknownKey {
        /// The id the artifact names.
        key_id: KeyId,
    },
    /// The signature does not verify under the trusted key the artifact names.
    SignatureInvalid {
        /// That key's id.
        key_id: KeyId,
    },
    /// The metadata section ends inside a field.
    MetadataTruncated {
        /// The field being read.
        field: Field,
    },
    /// The metadata section goes on after its last field.
    MetadataTrailingBytes {
        /// How many bytes are left over.
        extra: u64,
    },
    /// A text field is longer than its maximum.
    FieldTooLong {
        /// Which.
        field: Field,
        /// Its length in bytes.
        length: u64,
        /// Its maximum in bytes.
        max: u64,
    },
    /// A text field is not UTF-8.
    NotUtf8 {
        /// Which.
        field: Field,
    },
    /// The name is empty, or has a character other than ASCII letters, digits, `-`, `_`, `.`, or does not start
    /// with a letter or digit.
    InvalidName,
    /// A version component above [`super::MAX_VERSION_COMPONENT`].
    VersionOutOfRange {
        /// The component.
        value: u32,
    },
    /// A kind code this code does not know.
    UnknownKind {
        /// The code.
        code: u8,
    },
    /// A shape with no axes or more than [`super::MAX_SHAPE_RANK`].
    BadRank {
        /// Which shape.
        field: Field,
        /// Its number of axes.
        rank: u64,
    },
    /// A shape with an axis of length 0.
    ZeroDimension {
        /// Which shape.
        field: Field,
    },
    /// A shape of more than [`super::MAX_SHAPE_ELEMENTS`] elements.
    ShapeTooLarge {
        /// Which shape.
        field: Field,
    },
}

impl ArtifactError {
    /// A stable kebab-case code for programs (`llmctl --json`, audit entries).
    pub fn code(&self) -> &'static str {
        match self {
            ArtifactError::Truncated { .. } => "truncated",
            ArtifactError::BadMagic => "bad-magic",
            ArtifactError::UnsupportedFormatVersion { .. } => "unsupported-format-version",
            ArtifactError::LengthOverflow => "length-overflow",
            ArtifactError::MetadataTooLarge { .. } => "metadata-too-large",
            ArtifactError::WeightsTooLarge { .. } => "weights-too-large",
            ArtifactError::TrailingBytes { .. } => "trailing-bytes",
            ArtifactError::DigestMismatch => "digest-mismatch",
            ArtifactError::UnknownKey { .. } => "unknown-key",
            ArtifactError::SignatureInvalid { .. } => "signature-invalid",
            ArtifactError::MetadataTruncated { .. } => "metadata-truncated",
            ArtifactError::MetadataTrailingBytes { .. } => "metadata-trailing-bytes",
            ArtifactError::FieldTooLong { .. } => "field-too-long",
            ArtifactError::NotUtf8 { .. } => "not-utf8",
            ArtifactError::InvalidName => "invalid-name",
            ArtifactError::VersionOutOfRange { .. } => "version-out-of-range",
            ArtifactError::UnknownKind { .. } => "unknown-kind",
            ArtifactError::BadRank { .. } => "bad-rank",
            ArtifactError::ZeroDimension { .. } => "zero-dimension",
            ArtifactError::ShapeTooLarge { .. } => "shape-too-large",
        }
    }
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactError::Truncated { needed, length } => {
                write!(formatter, "the artifact is truncated: it needs {needed} bytes, there are {length}")
            }
            ArtifactError::BadMagic => formatter.write_str("not a SIS model artifact (the magic is not SISMODEL)"),
            ArtifactError::UnsupportedFormatVersion { version } => {
                write!(formatter, "artifact format version {version} is not supported (this code reads 1)")
            }
            ArtifactError::LengthOverflow => formatter.write_str("the header's lengths add up to more than 2^64 bytes"),
            ArtifactError::MetadataTooLarge { length } => {
                write!(formatter, "the metadata is {length} bytes; at most {MAX_METADATA_BYTES} are allowed")
            }
            ArtifactError::WeightsTooLarge { length } => {
                write!(formatter, "the weights are {length} bytes; at most {MAX_WEIGHTS_BYTES} are allowed")
            }
            ArtifactError::TrailingBytes { expected, length } => {
                write!(formatter, "the artifact is {expected} bytes by its header, but {length} bytes came")
            }
            ArtifactError::DigestMismatch => {
                formatter.write_str("the SHA-256 digest does not match: the artifact was modified or damaged")
            }
            ArtifactError::UnknownKey { key_id } => {
                write!(formatter, "the artifact is signed by key {key_id}, which is not trusted")
            }
            ArtifactError::SignatureInvalid { key_id } => {
                write!(formatter, "the signature does not verify under trusted key {key_id}")
            }
            ArtifactError::MetadataTruncated { field } => {
                write!(formatter, "the metadata ends inside field {}", field.name())
            }
            ArtifactError::MetadataTrailingBytes { extra } => {
                write!(formatter, "the metadata has {extra} bytes after its last field")
            }
            ArtifactError::FieldTooLong { field, length, max } => {
                write!(formatter, "{} is {length} bytes; at most {max} are allowed", field.name())
            }
            ArtifactError::NotUtf8 { field } => write!(formatter, "{} is not UTF-8 text", field.name()),
            ArtifactError::InvalidName => formatter.write_str(
                "a model name is 1 to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit",
            ),
            ArtifactError::VersionOutOfRange { value } => write!(
                formatter,
                "version component {value} is out of range (each of major.minor.patch is at most {})",
                super::MAX_VERSION_COMPONENT
            ),
            ArtifactError::UnknownKind { code } => write!(formatter, "model kind code {code} is not known"),
            ArtifactError::BadRank { field, rank } => {
                write!(formatter, "{} has {rank} axes; a shape has 1 to {}", field.name(), super::MAX_SHAPE_RANK)
            }
            ArtifactError::ZeroDimension { field } => write!(formatter, "{} has an axis of length 0", field.name()),
            ArtifactError::ShapeTooLarge { field } => {
                write!(formatter, "{} has more than {} elements", field.name(), super::MAX_SHAPE_ELEMENTS)
            }
        }
    }
}
