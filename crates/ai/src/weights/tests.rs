//! The weights format: exact layout, bit-exact round trips, every refusal with its error.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::{Agent, AgentConfig, Network, Random};

fn agent(seed: u64) -> Agent {
    Agent::new(5, 3, AgentConfig { hidden: vec![16], ..AgentConfig::default() }, seed)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|value| value.to_bits()).collect()
}

#[test]
fn the_layout_is_the_documented_one() {
    let weights = NetworkWeights { sizes: vec![2, 1], parameters: vec![1.0, -2.5, 0.5] };
    let mut expected = Vec::from(&b"SIS-NET"[..]);
    expected.extend_from_slice(&[1, 0, 2, 0, 2, 0, 1, 0]);
    for value in [1.0f32, -2.5, 0.5] {
        expected.extend_from_slice(&value.to_le_bytes());
    }
    assert_eq!(weights.encode().unwrap(), expected);
    assert_eq!(expected.len(), 15 + 12);
}

#[test]
fn an_agent_round_trips_bit_for_bit_and_acts_the_same() {
    let trained = agent(3);
    let blob = trained.weights().encode().unwrap();
    assert_eq!(blob.len(), 11 + 2 * 3 + 4 * (5 * 16 + 16 + 16 * 3 + 3));
    let decoded = NetworkWeights::decode(&blob).unwrap();
    assert_eq!(decoded.sizes, [5, 16, 3]);
    assert_eq!(bits(&decoded.parameters), bits(&trained.parameters()));
    let mut other = agent(4);
    assert_ne!(bits(&other.parameters()), bits(&trained.parameters()));
    other.load_weights(&decoded).unwrap();
    assert_eq!(bits(&other.parameters()), bits(&trained.parameters()));
    let state = [0.98, 0.2, 0.4, 0.5, 0.8];
    assert_eq!(bits(&other.q_values(&state)), bits(&trained.q_values(&state)));
    assert_eq!(other.weights().encode().unwrap(), blob);
}

#[test]
fn signed_zeros_subnormals_and_extremes_keep_their_bits() {
    let values = [-0.0f32, 0.0, f32::MIN_POSITIVE / 8.0, -f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1.0e-45];
    let mut network = Network::new(&[2, 3], &mut Random::new(1));
    let mut parameters = network.parameters();
    parameters[..values.len()].copy_from_slice(&values);
    network.set_parameters(&parameters).unwrap();
    let decoded = NetworkWeights::decode(&network.weights().encode().unwrap()).unwrap();
    assert_eq!(bits(&decoded.parameters), bits(&parameters));
}

#[test]
fn every_truncation_and_an_extra_byte_are_refused_with_the_length_needed() {
    let blob = agent(1).weights().encode().unwrap();
    let full = blob.len() as u64;
    for length in 0..blob.len() {
        let needed = match length {
            0..11 => 11,
            11..17 => 17,
            _ => full,
        };
        assert_eq!(
            NetworkWeights::decode(&blob[..length]),
            Err(WeightsError::Truncated { needed, length }),
            "{length} bytes"
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    let refused = NetworkWeights::decode(&longer).unwrap_err();
    assert_eq!(refused, WeightsError::TrailingBytes { expected: full, length: blob.len() + 1 });
    assert_eq!(refused.code(), "weights-trailing-bytes");
}

#[test]
fn bad_header_fields_and_parameters_are_refused_with_their_error() {
    let blob = agent(1).weights().encode().unwrap();
    let with = |offset: usize, bytes: &[u8]| {
        let mut changed = blob.clone();
        changed[offset..offset + bytes.len()].copy_from_slice(bytes);
        NetworkWeights::decode(&changed).unwrap_err()
    };
    assert_eq!(with(0, b"SIS-LM\0"), WeightsError::BadMagic);
    assert_eq!(with(7, &[2, 0]), WeightsError::UnsupportedVersion { version: 2 });
    assert_eq!(with(9, &[1, 0]), WeightsError::BadLayerCount { count: 1 });
    assert_eq!(with(9, &[9, 0]), WeightsError::BadLayerCount { count: 9 });
    assert_eq!(with(13, &[0, 0]), WeightsError::BadLayerSize { index: 1, size: 0 });
    assert_eq!(with(15, &[1, 16]), WeightsError::BadLayerSize { index: 2, size: 4097 });
    // Another size: the length no longer matches.
    assert_eq!(with(11, &[4, 0]), WeightsError::TrailingBytes { expected: blob.len() as u64 - 64, length: blob.len() });
    assert_eq!(with(17 + 4 * 7, &f32::NAN.to_le_bytes()), WeightsError::NotFinite { index: 7 });
    assert_eq!(with(blob.len() - 4, &f32::NEG_INFINITY.to_le_bytes()), WeightsError::NotFinite { index: 146 });
    let codes: Vec<&str> = [
        with(0, b"XIS-NET"),
        with(7, &[0, 1]),
        with(9, &[0, 0]),
        with(11, &[0, 0]),
        with(17, &f32::INFINITY.to_le_bytes()),
        NetworkWeights::decode(&blob[..20]).unwrap_err(),
    ]
    .iter()
    .map(WeightsError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "weights-bad-magic",
            "weights-unsupported-version",
            "weights-bad-layer-count",
            "weights-bad-layer-size",
            "weights-not-finite",
            "weights-truncated"
        ]
    );
}

#[test]
fn the_artifact_shapes_must_be_the_networks_widths() {
    let blob = agent(1).weights().encode().unwrap();
    assert_eq!(NetworkWeights::decode_for(&blob, &[5], &[3]).unwrap().sizes, [5, 16, 3]);
    let refused = NetworkWeights::decode_for(&blob, &[4], &[3]).unwrap_err();
    assert_eq!(refused, WeightsError::ShapeMismatch { side: ShapeSide::Input, artifact: vec![4], network: 5 });
    assert_eq!(refused.code(), "shape-mismatch");
    assert_eq!(refused.to_string(), "the artifact's input shape is [4]; the network's is [5]");
    assert_eq!(
        NetworkWeights::decode_for(&blob, &[1, 5], &[3]).unwrap_err(),
        WeightsError::ShapeMismatch { side: ShapeSide::Input, artifact: vec![1, 5], network: 5 }
    );
    assert_eq!(
        NetworkWeights::decode_for(&blob, &[5], &[3, 1]).unwrap_err(),
        WeightsError::ShapeMismatch { side: ShapeSide::Output, artifact: vec![3, 1], network: 3 }
    );
    // Damaged weights are refused before the shapes are compared.
    assert_eq!(NetworkWeights::decode_for(&blob[..30], &[4], &[3]).unwrap_err().code(), "weights-truncated");
}

#[test]
fn weights_of_another_architecture_change_nothing_in_the_agent() {
    let mut installed = agent(2);
    let before = bits(&installed.parameters());
    let wider = Agent::new(5, 3, AgentConfig { hidden: vec![32], ..AgentConfig::default() }, 1).weights();
    let refused = installed.load_weights(&wider).unwrap_err();
    assert_eq!(refused, WeightsError::ArchitectureMismatch { weights: vec![5, 32, 3], agent: vec![5, 16, 3] });
    assert_eq!(refused.code(), "architecture-mismatch");
    let mut not_finite = agent(1).weights();
    not_finite.parameters[3] = f32::NAN;
    assert_eq!(installed.load_weights(&not_finite), Err(WeightsError::NotFinite { index: 3 }));
    assert_eq!(bits(&installed.parameters()), before);
}

#[test]
fn encode_refuses_what_decode_would() {
    let count = |sizes: Vec<usize>, parameters: usize| NetworkWeights { sizes, parameters: vec![0.5; parameters] };
    assert_eq!(count(vec![2, 1], 2).encode(), Err(WeightsError::ParameterCount { expected: 3, given: 2 }));
    assert_eq!(count(vec![2], 0).encode(), Err(WeightsError::BadLayerCount { count: 1 }));
    assert_eq!(count(vec![1; 9], 16).encode(), Err(WeightsError::BadLayerCount { count: 9 }));
    assert_eq!(count(vec![2, 4097], 0).encode(), Err(WeightsError::BadLayerSize { index: 1, size: 4097 }));
    let mut infinite = count(vec![2, 1], 3);
    infinite.parameters[2] = f32::INFINITY;
    assert_eq!(infinite.encode(), Err(WeightsError::NotFinite { index: 2 }));
}

#[test]
fn random_damage_never_panics_and_is_refused_or_decodes_to_a_valid_network() {
    let blob = agent(5).weights().encode().unwrap();
    let mut random = Random::new(17);
    for _ in 0..4_000 {
        let mut damaged = blob.clone();
        for _ in 0..=random.below(4) {
            let index = random.below(damaged.len() as u64) as usize;
            damaged[index] = random.next_u64() as u8;
        }
        let length = if random.below(4) == 0 { random.below(damaged.len() as u64 + 1) as usize } else { damaged.len() };
        if let Ok(weights) = NetworkWeights::decode(&damaged[..length]) {
            assert_eq!(weights.encode().unwrap(), &damaged[..length]);
        }
    }
}
