//! A model's metadata: name, semantic version, kind, shapes, author, creation time, description, training data
//! digest; its byte encoding inside an artifact, and the text forms `NAME` and `NAME@MAJOR.MINOR.PATCH`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Serialize, Serializer};

use super::error::{ArtifactError, Field};
use crate::hex;

/// Bytes of a model name at most.
pub const MAX_NAME_BYTES: usize = 64;
/// Bytes of the author field at most.
pub const MAX_AUTHOR_BYTES: usize = 128;
/// Bytes of the description at most.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// Each of major, minor and patch is at most this: a larger number is taken for a mistake, not a release.
pub const MAX_VERSION_COMPONENT: u32 = 999_999;
/// Axes of a shape at most.
pub const MAX_SHAPE_RANK: usize = 4;
/// Elements of a shape at most (2^32).
pub const MAX_SHAPE_ELEMENTS: u64 = 1 << 32;

/// A semantic version `major.minor.patch`, ordered by major, then minor, then patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl Version {
    /// A version whose components are each at most [`MAX_VERSION_COMPONENT`].
    pub fn new(major: u32, minor: u32, patch: u32) -> Result<Version, ArtifactError> {
        for value in [major, minor, patch] {
            if value > MAX_VERSION_COMPONENT {
                return Err(ArtifactError::VersionOutOfRange { value });
            }
        }
        Ok(Version { major, minor, patch })
    }

    /// `MAJOR.MINOR.PATCH` in decimal, without signs or leading zeros (`0` itself is fine).
    pub fn parse(text: &str) -> Result<Version, ParseError> {
        let mut parts = text.split('.');
        let mut next = || -> Result<u32, ParseError> {
            let part = parts.next().ok_or(ParseError::BadVersion)?;
            if part.is_empty()
                || !part.bytes().all(|byte| byte.is_ascii_digit())
                || part.len() > 1 && part.starts_with('0')
            {
                return Err(ParseError::BadVersion);
            }
            // More digits than u32 holds is an absurd version, not a syntax error.
            let value = part.parse::<u32>().unwrap_or(u32::MAX);
            if value > MAX_VERSION_COMPONENT {
                return Err(ParseError::VersionOutOfRange);
            }
            Ok(value)
        };
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(ParseError::BadVersion);
        }
        Ok(Version { major, minor, patch })
    }

    fn validate(self) -> Result<(), ArtifactError> {
        Version::new(self.major, self.minor, self.patch).map(|_| ())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a model is, so the kernel knows how to build it from its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A byte- or character-level language model (`llmctl infer`).
    LanguageModel,
    /// An agent network of `neuralctl`.
    AgentNetwork,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 2] = [Kind::LanguageModel, Kind::AgentNetwork];

    /// Its name: `language-model`, `agent-network`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::LanguageModel => "language-model",
            Kind::AgentNetwork => "agent-network",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Its byte in the artifact.
    pub fn code(self) -> u8 {
        match self {
            Kind::LanguageModel => 1,
            Kind::AgentNetwork => 2,
        }
    }

    fn from_code(code: u8) -> Result<Kind, ArtifactError> {
        Kind::ALL.into_iter().find(|kind| kind.code() == code).ok_or(ArtifactError::UnknownKind { code })
    }
}

/// A model's metadata, as signed in its artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// 1 to [`MAX_NAME_BYTES`] ASCII letters, digits, `-`, `_`, `.`, starting with a letter or digit.
    pub name: String,
    /// Its semantic version; a name and version identify a model in the registry.
    pub version: Version,
    /// What it is.
    pub kind: Kind,
    /// The input tensor's shape (1 to [`MAX_SHAPE_RANK`] axes, none 0).
    pub input_shape: Vec<u32>,
    /// The output tensor's shape.
    pub output_shape: Vec<u32>,
    /// Who made it (up to [`MAX_AUTHOR_BYTES`] of UTF-8).
    pub author: String,
    /// When it was made, in seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// What it is for (up to [`MAX_DESCRIPTION_BYTES`] of UTF-8).
    pub description: String,
    /// The SHA-256 of the data it was trained on.
    #[serde(serialize_with = "serialize_hex")]
    pub training_data_sha256: [u8; 32],
}

impl Metadata {
    /// Checks every field against the rules [`super::decode`] applies.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        check_length(Field::Name, self.name.len(), MAX_NAME_BYTES)?;
        validate_name(&self.name)?;
        self.version.validate()?;
        validate_shape(Field::InputShape, &self.input_shape)?;
        validate_shape(Field::OutputShape, &self.output_shape)?;
        check_length(Field::Author, self.author.len(), MAX_AUTHOR_BYTES)?;
        check_length(Field::Description, self.description.len(), MAX_DESCRIPTION_BYTES)
    }

    /// Appends the encoding (docs/governance.md) to `out`; the metadata must be valid.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        put_text(out, &self.name);
        for value in [self.version.major, self.version.minor, self.version.patch] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.push(self.kind.code());
        for shape in [&self.input_shape, &self.output_shape] {
            // A valid shape has at most MAX_SHAPE_RANK axes.
            out.push(u8::try_from(shape.len()).unwrap_or(u8::MAX));
            for length in shape {
                out.extend_from_slice(&length.to_le_bytes());
            }
        }
        put_text(out, &self.author);
        out.extend_from_slice(&self.created_unix_s.to_le_bytes());
        put_text(out, &self.description);
        out.extend_from_slice(&self.training_data_sha256);
    }

    /// Reads the whole metadata section: every byte must belong to a field.
    pub(crate) fn decode(section: &[u8]) -> Result<Metadata, ArtifactError> {
        let mut reader = Reader { bytes: section };
        let name = reader.text(Field::Name, MAX_NAME_BYTES)?;
        validate_name(&name)?;
        let version = Version {
            major: reader.u32(Field::Version)?,
            minor: reader.u32(Field::Version)?,
            patch: reader.u32(Field::Version)?,
        };
        version.validate()?;
        let kind = Kind::from_code(reader.u8(Field::Kind)?)?;
        let input_shape = reader.shape(Field::InputShape)?;
        let output_shape = reader.shape(Field::OutputShape)?;
        let author = reader.text(Field::Author, MAX_AUTHOR_BYTES)?;
        let created_unix_s = u64::from_le_bytes(reader.array(Field::Created)?);
        let description = reader.text(Field::Description, MAX_DESCRIPTION_BYTES)?;
        let training_data_sha256 = reader.array(Field::TrainingDataDigest)?;
        if !reader.bytes.is_empty() {
            return Err(ArtifactError::MetadataTrailingBytes { extra: reader.bytes.len() as u64 });
        }
        Ok(Metadata {
            name,
            version,
            kind,
            input_shape,
            output_shape,
            author,
            created_unix_s,
            description,
            training_data_sha256,
        })
    }
}

/// Why a model reference (`NAME` or `NAME@VERSION`) or a version in text was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The name breaks the naming rule.
    BadName,
    /// The version is not `MAJOR.MINOR.PATCH` in plain decimal.
    BadVersion,
    /// A component is above [`MAX_VERSION_COMPONENT`].
    VersionOutOfRange,
}

impl ParseError {
    /// A stable kebab-case code.
    pub fn code(self) -> &'static str {
        match self {
            ParseError::BadName => "invalid-name",
            ParseError::BadVersion => "bad-version",
            ParseError::VersionOutOfRange => "version-out-of-range",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadName => formatter.write_str(
                "a model name is 1 to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit",
            ),
            ParseError::BadVersion => {
                formatter.write_str("a version is MAJOR.MINOR.PATCH in decimal without leading zeros, e.g. 1.0.2")
            }
            ParseError::VersionOutOfRange => {
                write!(formatter, "each version component is at most {MAX_VERSION_COMPONENT}")
            }
        }
    }
}

/// A model named on a command line: `NAME` (the latest version that fits) or `NAME@MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The name.
    pub name: String,
    /// The version, if one was given.
    pub version: Option<Version>,
}

impl ModelRef {
    /// Reads `NAME` or `NAME@VERSION`.
    pub fn parse(text: &str) -> Result<ModelRef, ParseError> {
        let (name, version) = match text.split_once('@') {
            Some((name, version)) => (name, Some(Version::parse(version)?)),
            None => (text, None),
        };
        if name.len() > MAX_NAME_BYTES || validate_name(name).is_err() {
            return Err(ParseError::BadName);
        }
        Ok(ModelRef { name: String::from(name), version })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(version) => write!(formatter, "{}@{version}", self.name),
            None => formatter.write_str(&self.name),
        }
    }
}

fn serialize_hex<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

fn validate_name(name: &str) -> Result<(), ArtifactError> {
    let bytes = name.as_bytes();
    let first_ok = bytes.first().is_some_and(|byte| byte.is_ascii_alphanumeric());
    let rest_ok = bytes.iter().all(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(ArtifactError::InvalidName)
    }
}

fn check_length(field: Field, length: usize, max: usize) -> Result<(), ArtifactError> {
    if length > max {
        return Err(ArtifactError::FieldTooLong { field, length: length as u64, max: max as u64 });
    }
    Ok(())
}

fn validate_shape(field: Field, shape: &[u32]) -> Result<(), ArtifactError> {
    if shape.is_empty() || shape.len() > MAX_SHAPE_RANK {
        return Err(ArtifactError::BadRank { field, rank: shape.len() as u64 });
    }
    let mut elements: u64 = 1;
    for &length in shape {
        if length == 0 {
            return Err(ArtifactError::ZeroDimension { field });
        }
        elements = elements.checked_mul(u64::from(length)).ok_or(ArtifactError::ShapeTooLarge { field })?;
    }
    if elements > MAX_SHAPE_ELEMENTS {
        return Err(ArtifactError::ShapeTooLarge { field });
    }
    Ok(())
}

/// A text field: its length as u16, then that many bytes. Valid text is at most 1,024 bytes, so it fits.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let length = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Reads fields off the front of the metadata section, with a field name for every error.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: Field, count: usize) -> Result<&'a [u8], ArtifactError> {
        if self.bytes.len() < count {
            return Err(ArtifactError::MetadataTruncated { field });
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], ArtifactError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(field, N)?);
        Ok(array)
    }

    fn u8(&mut self, field: Field) -> Result<u8, ArtifactError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: Field) -> Result<u32, ArtifactError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn text(&mut self, field: Field, max: usize) -> Result<String, ArtifactError> {
        let length = usize::from(u16::from_le_bytes(self.array(field)?));
        check_length(field, length, max)?;
        let bytes = self.take(field, length)?;
        let text = core::str::from_utf8(bytes).map_err(|_| ArtifactError::NotUtf8 { field })?;
        Ok(String::from(text))
    }

    fn shape(&mut self, field: Field) -> Result<Vec<u32>, ArtifactError> {
        let rank = usize::from(self.u8(field)?);
        if rank == 0 || rank > MAX_SHAPE_RANK {
            return Err(ArtifactError::BadRank { field, rank: rank as u64 });
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(self.u32(field)?);
        }
        validate_shape(field, &shape)?;
        Ok(shape)
    }
}
