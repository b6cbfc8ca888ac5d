//! Ed25519 keys: signing keys derived from a 32-byte seed, key ids, and the set of public keys a verifier trusts.
//!
//! A signing key is the Ed25519 secret seed itself (RFC 8032 §5.1.5), so this crate needs no random number
//! generator: the host's `cargo xtask model keygen` draws the seed from the OS. A key id is the first 8 bytes of
//! the SHA-256 of the 32-byte public key; an artifact names its signer by id and the verifier looks the key up.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::hex;

/// Bytes of a signing seed (the Ed25519 secret key).
pub const SEED_BYTES: usize = 32;
/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of a key id.
pub const KEY_ID_BYTES: usize = 8;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// Keys a [`TrustedKeys`] holds at most.
pub const MAX_TRUSTED_KEYS: usize = 16;

/// Names a public key: the first 8 bytes of its SHA-256. Shown as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_BYTES]);

impl KeyId {
    /// The id of `public_key`.
    pub fn of(public_key: &[u8; PUBLIC_KEY_BYTES]) -> KeyId {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.0))
    }
}

/// The public key of the signing key with this seed.
pub fn public_key_from_seed(seed: &[u8; SEED_BYTES]) -> [u8; PUBLIC_KEY_BYTES] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Signs `message` with the key of `seed` (deterministic, RFC 8032).
pub(crate) fn sign(seed: &[u8; SEED_BYTES], message: &[u8]) -> [u8; SIGNATURE_BYTES] {
    SigningKey::from_bytes(seed).sign(message).to_bytes()
}

/// Why a public key was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not 64 hex digits.
    BadHex,
    /// The 32 bytes are not a point of the curve.
    InvalidPublicKey,
    /// A small-order point: signatures under it prove nothing.
    WeakPublicKey,
    /// A key with this id is trusted already.
    Duplicate {
        /// Its id.
        key_id: KeyId,
    },
    /// [`MAX_TRUSTED_KEYS`] keys are trusted already.
    Full,
}

impl KeyError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::BadHex => "bad-key-hex",
            KeyError::InvalidPublicKey => "invalid-public-key",
            KeyError::WeakPublicKey => "weak-public-key",
            KeyError::Duplicate { .. } => "duplicate-key",
            KeyError::Full => "too-many-keys",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::BadHex => formatter.write_str("a public key is 64 hex digits (32 bytes)"),
            KeyError::InvalidPublicKey => formatter.write_str("these 32 bytes are not an Ed25519 public key"),
            KeyError::WeakPublicKey => {
                formatter.write_str("this public key is a small-order point; signatures under it prove nothing")
            }
            KeyError::Duplicate { key_id } => write!(formatter, "key {key_id} is trusted already"),
            KeyError::Full => write!(formatter, "{MAX_TRUSTED_KEYS} keys are trusted already"),
        }
    }
}

/// The public keys whose signatures are accepted, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(KeyId, VerifyingKey)>,
}

impl TrustedKeys {
    /// No key: every artifact is refused.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Trusts `public_key`; returns its id.
    pub fn add(&mut self, public_key: &[u8; PUBLIC_KEY_BYTES]) -> Result<KeyId, KeyError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        let key_id = KeyId::of(public_key);
        if self.keys.iter().any(|(id, _)| *id == key_id) {
            return Err(KeyError::Duplicate { key_id });
        }
        if self.keys.len() >= MAX_TRUSTED_KEYS {
            return Err(KeyError::Full);
        }
        self.keys.push((key_id, key));
        Ok(key_id)
    }

    /// Trusts the public key written as 64 hex digits (surrounding whitespace ignored).
    pub fn add_hex(&mut self, text: &str) -> Result<KeyId, KeyError> {
        let public_key = hex::decode::<PUBLIC_KEY_BYTES>(text.trim()).ok_or(KeyError::BadHex)?;
        self.add(&public_key)
    }

    /// Stops trusting the key `key_id`; `false` if it was not trusted.
    pub fn remove(&mut self, key_id: KeyId) -> bool {
        let before = self.keys.len();
        self.keys.retain(|(id, _)| *id != key_id);
        self.keys.len() != before
    }

    /// The ids of the trusted keys, in the order they were added.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn get(&self, key_id: KeyId) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(id, _)| *id == key_id).map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_vector_1_gives_its_public_key_and_signature() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let seed = hex::decode::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        assert_eq!(
            hex::encode(&public_key_from_seed(&seed)),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(&sign(&seed, b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn trusted_keys_refuse_bad_weak_duplicate_and_too_many_keys() {
        let mut keys = TrustedKeys::new();
        let public = public_key_from_seed(&[7; 32]);
        let id = keys.add(&public).unwrap();
        assert_eq!(id, KeyId::of(&public));
        assert_eq!(keys.add(&public), Err(KeyError::Duplicate { key_id: id }));
        assert_eq!(keys.add_hex("00"), Err(KeyError::BadHex));
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(keys.add(&identity), Err(KeyError::WeakPublicKey));
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(keys.add(&off_curve), Err(KeyError::InvalidPublicKey));
        for seed in 100..100 + (MAX_TRUSTED_KEYS - 1) as u8 {
            keys.add_hex(&hex::encode(&public_key_from_seed(&[seed; 32]))).unwrap();
        }
        assert_eq!(keys.len(), MAX_TRUSTED_KEYS);
        assert_eq!(keys.add(&public_key_from_seed(&[200; 32])), Err(KeyError::Full));
        assert!(keys.remove(id));
        assert!(!keys.remove(id));
        assert_eq!(keys.len(), MAX_TRUSTED_KEYS - 1);
    }
}
