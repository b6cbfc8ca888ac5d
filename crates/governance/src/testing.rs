//! Artifacts and keys for the tests of every module.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::artifact::{encode, Kind, Metadata, Version};
use crate::keys::{public_key_from_seed, TrustedKeys};

/// The seed of the key the tests trust.
pub const SEED: [u8; 32] = [0x5e; 32];
/// The seed of a key the tests do not trust.
pub const UNTRUSTED_SEED: [u8; 32] = [0x77; 32];

/// Trusts the key of [`SEED`].
pub fn keys() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add(&public_key_from_seed(&SEED)).unwrap();
    keys
}

/// Metadata of a language model `name@version`.
pub fn metadata(name: &str, version: (u32, u32, u32)) -> Metadata {
    Metadata {
        name: String::from(name),
        version: Version::new(version.0, version.1, version.2).unwrap(),
        kind: Kind::LanguageModel,
        input_shape: vec![16],
        output_shape: vec![256],
        author: String::from("tests"),
        created_unix_s: 1_700_000_000,
        description: String::new(),
        training_data_sha256: [1; 32],
    }
}

/// An artifact of `name@version` with `weights_bytes` of weights, signed with `seed`.
pub fn artifact_signed(name: &str, version: (u32, u32, u32), weights_bytes: usize, seed: &[u8; 32]) -> Vec<u8> {
    let weights: Vec<u8> = (0..weights_bytes).map(|index| index as u8).collect();
    encode(&metadata(name, version), &weights, seed).unwrap()
}

/// An artifact of `name@version` with `weights_bytes` of weights, signed with [`SEED`].
pub fn artifact(name: &str, version: (u32, u32, u32), weights_bytes: usize) -> Vec<u8> {
    artifact_signed(name, version, weights_bytes, &SEED)
}

/// An `agent-network` artifact of `name@version` (input shape 5, output shape 3) with these weights, signed with
/// [`SEED`].
pub fn agent_artifact(name: &str, version: (u32, u32, u32), weights: &[u8]) -> Vec<u8> {
    let metadata =
        Metadata { kind: Kind::AgentNetwork, input_shape: vec![5], output_shape: vec![3], ..metadata(name, version) };
    encode(&metadata, weights, &SEED).unwrap()
}
