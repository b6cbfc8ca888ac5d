//! The signed model artifact: header, metadata, weights, SHA-256 digest, Ed25519 signature, key id.
//!
//! ```text
//! offset          bytes  field (integers little-endian)
//! 0               8      magic "SISMODEL"
//! 8               4      format version (1)
//! 12              4      M: metadata length (at most MAX_METADATA_BYTES)
//! 16              8      W: weights length (at most MAX_WEIGHTS_BYTES)
//! 24              M      metadata (docs/governance.md)
//! 24+M            W      weights, opaque to this crate
//! 24+M+W          32     SHA-256 of bytes [0, 24+M+W)
//! 56+M+W          64     Ed25519 signature of those 32 digest bytes
//! 120+M+W         8      key id: the first 8 bytes of SHA-256(signer's public key)
//! 128+M+W                end: nothing may follow
//! ```
//!
//! [`decode`] checks, in this order, so each kind of damage has one error: the framing (length, magic,
//! version, lengths), the digest, the signer's key id, the signature, and only then parses the metadata, so no
//! unauthenticated byte reaches the metadata parser. Every check is on bounds already proven; nothing panics.

mod error;
mod metadata;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::ops::Range;

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

pub use error::{ArtifactError, Field};
pub use metadata::{
    Kind, Metadata, ModelRef, ParseError, Version, MAX_AUTHOR_BYTES, MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES,
    MAX_SHAPE_ELEMENTS, MAX_SHAPE_RANK, MAX_VERSION_COMPONENT,
};

use crate::keys::{self, KeyId, TrustedKeys, KEY_ID_BYTES, SEED_BYTES, SIGNATURE_BYTES};

/// The first 8 bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"SISMODEL";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_BYTES: usize = 24;
/// Bytes after the weights: digest, signature, key id.
pub const TRAILER_BYTES: usize = DIGEST_BYTES + SIGNATURE_BYTES + KEY_ID_BYTES;
/// Bytes of a SHA-256 digest.
pub const DIGEST_BYTES: usize = 32;
/// The metadata section's length at most (valid metadata is at most 1,309 bytes).
pub const MAX_METADATA_BYTES: u64 = 2048;
/// The weights' length at most (64 MiB): a format bound; the policy's model size limit is usually lower.
pub const MAX_WEIGHTS_BYTES: u64 = 64 << 20;

/// An artifact whose digest and signature verified under a trusted key, with its metadata parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact<'a> {
    /// The metadata.
    pub metadata: Metadata,
    /// The weights (a slice of the artifact).
    pub weights: &'a [u8],
    /// Where the weights are in the artifact's bytes.
    pub weights_range: Range<usize>,
    /// The SHA-256 of header, metadata and weights.
    pub digest: [u8; DIGEST_BYTES],
    /// The key that signed it.
    pub key_id: KeyId,
}

/// Builds and signs an artifact with the key of `seed` (host side: `cargo xtask model sign`).
pub fn encode(metadata: &Metadata, weights: &[u8], seed: &[u8; SEED_BYTES]) -> Result<Vec<u8>, ArtifactError> {
    metadata.validate()?;
    let weights_length = weights.len() as u64;
    if weights_length > MAX_WEIGHTS_BYTES {
        return Err(ArtifactError::WeightsTooLarge { length: weights_length });
    }
    let mut section = Vec::new();
    metadata.encode_into(&mut section);
    Ok(seal(&section, weights, seed))
}

/// Checks framing, digest, key and signature of `bytes`, then parses the metadata (see the module docs).
pub fn decode<'a>(bytes: &'a [u8], keys: &TrustedKeys) -> Result<VerifiedArtifact<'a>, ArtifactError> {
    let layout = Layout::read(bytes)?;
    let signed = &bytes[..layout.weights.end];
    let digest: [u8; DIGEST_BYTES] = Sha256::digest(signed).into();
    // The layout proved the trailer is exactly TRAILER_BYTES long.
    let trailer = &bytes[layout.weights.end..];
    let (stored_digest, rest) = trailer.split_at(DIGEST_BYTES);
    let (signature_bytes, key_id_bytes) = rest.split_at(SIGNATURE_BYTES);
    if digest.as_slice() != stored_digest {
        return Err(ArtifactError::DigestMismatch);
    }
    let mut key_id = KeyId([0; KEY_ID_BYTES]);
    key_id.0.copy_from_slice(key_id_bytes);
    let key = keys.get(key_id).ok_or(ArtifactError::UnknownKey { key_id })?;
    let mut signature = [0u8; SIGNATURE_BYTES];
    signature.copy_from_slice(signature_bytes);
    key.verify_strict(&digest, &Signature::from_bytes(&signature))
        .map_err(|_| ArtifactError::SignatureInvalid { key_id })?;
    let metadata = Metadata::decode(&bytes[layout.metadata])?;
    Ok(VerifiedArtifact {
        metadata,
        weights: &bytes[layout.weights.clone()],
        weights_range: layout.weights,
        digest,
        key_id,
    })
}

/// Header, then `section` as metadata and `weights`, then digest, signature and key id: no validation, so
/// tests can sign malformed metadata.
pub(crate) fn seal(section: &[u8], weights: &[u8], seed: &[u8; SEED_BYTES]) -> Vec<u8> {
    let mut bytes =
        Vec::with_capacity(HEADER_BYTES.saturating_add(section.len()).saturating_add(weights.len()) + TRAILER_BYTES);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(section.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    bytes.extend_from_slice(section);
    bytes.extend_from_slice(weights);
    let digest: [u8; DIGEST_BYTES] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&digest);
    bytes.extend_from_slice(&keys::sign(seed, &digest));
    bytes.extend_from_slice(&KeyId::of(&keys::public_key_from_seed(seed)).0);
    bytes
}

/// Where the sections are, from a header whose lengths have been checked against the bytes.
struct Layout {
    metadata: Range<usize>,
    weights: Range<usize>,
}

impl Layout {
    fn read(bytes: &[u8]) -> Result<Layout, ArtifactError> {
        let length = bytes.len() as u64;
        let header: &[u8; HEADER_BYTES] = bytes
            .get(..HEADER_BYTES)
            .and_then(|header| header.try_into().ok())
            .ok_or(ArtifactError::Truncated { needed: HEADER_BYTES as u64, length })?;
        if header[..8] != MAGIC {
            return Err(ArtifactError::BadMagic);
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedFormatVersion { version });
        }
        let metadata_length = u64::from(u32::from_le_bytes([header[12], header[13], header[14], header[15]]));
        let mut weights_length = [0u8; 8];
        weights_length.copy_from_slice(&header[16..24]);
        let weights_length = u64::from_le_bytes(weights_length);
        let total = (HEADER_BYTES as u64)
            .checked_add(metadata_length)
            .and_then(|sum| sum.checked_add(weights_length))
            .and_then(|sum| sum.checked_add(TRAILER_BYTES as u64))
            .ok_or(ArtifactError::LengthOverflow)?;
        if metadata_length > MAX_METADATA_BYTES {
            return Err(ArtifactError::MetadataTooLarge { length: metadata_length });
        }
        if weights_length > MAX_WEIGHTS_BYTES {
            return Err(ArtifactError::WeightsTooLarge { length: weights_length });
        }
        if length < total {
            return Err(ArtifactError::Truncated { needed: total, length });
        }
        if length > total {
            return Err(ArtifactError::TrailingBytes { expected: total, length });
        }
        // total == bytes.len(), so every offset below fits in usize and in the slice.
        let metadata_end = HEADER_BYTES + metadata_length as usize;
        let weights_end = metadata_end + weights_length as usize;
        Ok(Layout { metadata: HEADER_BYTES..metadata_end, weights: metadata_end..weights_end })
    }
}
