//! Artifact round trips, and every kind of damage refused with its own error.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::keys::public_key_from_seed;

const SEED: [u8; 32] = [0x11; 32];
const OTHER_SEED: [u8; 32] = [0x22; 32];

fn metadata() -> Metadata {
    Metadata {
        name: String::from("tiny-char-lm"),
        version: Version::new(1, 2, 3).unwrap(),
        kind: Kind::LanguageModel,
        input_shape: vec![32],
        output_shape: vec![256],
        author: String::from("SIS tests"),
        created_unix_s: 1_700_000_000,
        description: String::from("a byte-level MLP"),
        training_data_sha256: [0xab; 32],
    }
}

fn weights() -> Vec<u8> {
    (0..200u32).map(|index| (index * 7) as u8).collect()
}

fn trusting(seeds: &[[u8; 32]]) -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    for seed in seeds {
        keys.add(&public_key_from_seed(seed)).unwrap();
    }
    keys
}

fn section(metadata: &Metadata) -> Vec<u8> {
    let mut section = Vec::new();
    metadata.encode_into(&mut section);
    section
}

#[test]
fn round_trip_gives_back_metadata_weights_digest_and_signer() {
    let bytes = encode(&metadata(), &weights(), &SEED).unwrap();
    let metadata_length = section(&metadata()).len();
    assert_eq!(bytes.len(), HEADER_BYTES + metadata_length + 200 + TRAILER_BYTES);
    assert_eq!(&bytes[..8], b"SISMODEL");
    let artifact = decode(&bytes, &trusting(&[OTHER_SEED, SEED])).unwrap();
    assert_eq!(artifact.metadata, metadata());
    assert_eq!(artifact.weights, weights().as_slice());
    assert_eq!(artifact.weights_range, HEADER_BYTES + metadata_length..HEADER_BYTES + metadata_length + 200);
    let expected_digest: [u8; 32] = Sha256::digest(&bytes[..artifact.weights_range.end]).into();
    assert_eq!(artifact.digest, expected_digest);
    assert_eq!(&bytes[artifact.weights_range.end..][..32], expected_digest.as_slice());
    assert_eq!(artifact.key_id, KeyId::of(&public_key_from_seed(&SEED)));
    // Ed25519 is deterministic: the same inputs give the same bytes.
    assert_eq!(encode(&metadata(), &weights(), &SEED).unwrap(), bytes);
}

#[test]
fn empty_weights_and_fields_at_their_maximum_round_trip() {
    let mut large = metadata();
    large.name = "n".repeat(MAX_NAME_BYTES);
    large.version = Version::new(MAX_VERSION_COMPONENT, 0, MAX_VERSION_COMPONENT).unwrap();
    large.kind = Kind::AgentNetwork;
    large.input_shape = vec![65_536, 65_536, 1, 1];
    large.output_shape = vec![1, 1, 1, 256];
    large.author = "é".repeat(MAX_AUTHOR_BYTES / 2);
    large.description = "d".repeat(MAX_DESCRIPTION_BYTES);
    large.created_unix_s = u64::MAX;
    assert_eq!(section(&large).len(), 1_309);
    let bytes = encode(&large, &[], &SEED).unwrap();
    let artifact = decode(&bytes, &trusting(&[SEED])).unwrap();
    assert_eq!(artifact.metadata, large);
    assert!(artifact.weights.is_empty());
}

/// What the header check must say about these header values, computed independently of `Layout`.
fn header_verdict(metadata_length: u64, weights_length: u64, length: u64) -> Result<(), ArtifactError> {
    let total = 24u128 + u128::from(metadata_length) + u128::from(weights_length) + 104;
    if total > u128::from(u64::MAX) {
        return Err(ArtifactError::LengthOverflow);
    }
    if metadata_length > MAX_METADATA_BYTES {
        return Err(ArtifactError::MetadataTooLarge { length: metadata_length });
    }
    if weights_length > MAX_WEIGHTS_BYTES {
        return Err(ArtifactError::WeightsTooLarge { length: weights_length });
    }
    let total = total as u64;
    if length < total {
        return Err(ArtifactError::Truncated { needed: total, length });
    }
    if length > total {
        return Err(ArtifactError::TrailingBytes { expected: total, length });
    }
    Ok(())
}

#[test]
fn a_flipped_bit_anywhere_is_refused_with_the_error_of_its_region() {
    let bytes = encode(&metadata(), &weights(), &SEED).unwrap();
    let keys = trusting(&[SEED]);
    let signer = KeyId::of(&public_key_from_seed(&SEED));
    let metadata_length = section(&metadata()).len();
    let weights_end = HEADER_BYTES + metadata_length + 200;
    let length = bytes.len() as u64;
    let mut counts = [0usize; 7];
    for position in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[position] ^= 1 << bit;
            let expected = match position {
                0..8 => {
                    counts[0] += 1;
                    ArtifactError::BadMagic
                }
                8..12 => {
                    counts[1] += 1;
                    ArtifactError::UnsupportedFormatVersion { version: 1 ^ (1 << (8 * (position - 8) + bit)) }
                }
                12..16 => {
                    counts[2] += 1;
                    let flipped = metadata_length as u64 ^ (1 << (8 * (position - 12) + bit));
                    header_verdict(flipped, 200, length).unwrap_err()
                }
                16..24 => {
                    counts[2] += 1;
                    let flipped = 200u64 ^ (1 << (8 * (position - 16) + bit));
                    header_verdict(metadata_length as u64, flipped, length).unwrap_err()
                }
                _ if position < weights_end + DIGEST_BYTES => {
                    counts[3] += 1;
                    ArtifactError::DigestMismatch
                }
                _ if position < weights_end + DIGEST_BYTES + SIGNATURE_BYTES => {
                    counts[4] += 1;
                    ArtifactError::SignatureInvalid { key_id: signer }
                }
                _ => {
                    counts[5] += 1;
                    let mut key_id = signer;
                    key_id.0[position - weights_end - DIGEST_BYTES - SIGNATURE_BYTES] ^= 1 << bit;
                    ArtifactError::UnknownKey { key_id }
                }
            };
            assert_eq!(decode(&damaged, &keys), Err(expected), "byte {position} bit {bit}");
            counts[6] += 1;
        }
    }
    assert_eq!(counts, [64, 32, 96, 8 * (metadata_length + 200 + 32), 512, 64, 8 * bytes.len()]);
}

#[test]
fn truncation_at_every_length_is_refused() {
    let bytes = encode(&metadata(), &weights(), &SEED).unwrap();
    let keys = trusting(&[SEED]);
    for length in 0..bytes.len() {
        let needed = if length < HEADER_BYTES { HEADER_BYTES } else { bytes.len() };
        assert_eq!(
            decode(&bytes[..length], &keys),
            Err(ArtifactError::Truncated { needed: needed as u64, length: length as u64 }),
            "length {length}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode(&longer, &keys),
        Err(ArtifactError::TrailingBytes { expected: bytes.len() as u64, length: bytes.len() as u64 + 1 })
    );
}

#[test]
fn header_lengths_that_overflow_or_exceed_the_bounds_are_refused_before_any_allocation() {
    let bytes = encode(&metadata(), &weights(), &SEED).unwrap();
    let keys = trusting(&[SEED]);
    let with_weights_length = |weights_length: u64| {
        let mut damaged = bytes.clone();
        damaged[16..24].copy_from_slice(&weights_length.to_le_bytes());
        decode(&damaged, &keys).map(|_| ())
    };
    assert_eq!(with_weights_length(u64::MAX - 100), Err(ArtifactError::LengthOverflow));
    assert_eq!(
        with_weights_length(MAX_WEIGHTS_BYTES + 1),
        Err(ArtifactError::WeightsTooLarge { length: MAX_WEIGHTS_BYTES + 1 })
    );
    assert_eq!(
        with_weights_length(MAX_WEIGHTS_BYTES),
        Err(ArtifactError::Truncated {
            needed: HEADER_BYTES as u64 + section(&metadata()).len() as u64 + MAX_WEIGHTS_BYTES + TRAILER_BYTES as u64,
            length: bytes.len() as u64
        })
    );
    let mut damaged = bytes.clone();
    damaged[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&damaged, &keys), Err(ArtifactError::MetadataTooLarge { length: u64::from(u32::MAX) }));
    let mut version_two = bytes.clone();
    version_two[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(decode(&version_two, &keys), Err(ArtifactError::UnsupportedFormatVersion { version: 2 }));
}

#[test]
fn unknown_and_wrong_keys_are_refused() {
    let bytes = encode(&metadata(), &weights(), &SEED).unwrap();
    let signer = KeyId::of(&public_key_from_seed(&SEED));
    assert_eq!(decode(&bytes, &TrustedKeys::new()), Err(ArtifactError::UnknownKey { key_id: signer }));
    assert_eq!(decode(&bytes, &trusting(&[OTHER_SEED])), Err(ArtifactError::UnknownKey { key_id: signer }));
    // Signed with SEED but naming a trusted key it does not hold: the signature fails under that key.
    let trusted = KeyId::of(&public_key_from_seed(&OTHER_SEED));
    let mut claimed = bytes.clone();
    let key_id_at = bytes.len() - KEY_ID_BYTES;
    claimed[key_id_at..].copy_from_slice(&trusted.0);
    assert_eq!(decode(&claimed, &trusting(&[OTHER_SEED])), Err(ArtifactError::SignatureInvalid { key_id: trusted }));
    // A re-signed artifact (new digest and signature by another key) verifies only under that key.
    let resigned = seal(&section(&metadata()), &weights(), &OTHER_SEED);
    assert_eq!(decode(&resigned, &trusting(&[SEED])), Err(ArtifactError::UnknownKey { key_id: trusted }));
    assert_eq!(decode(&resigned, &trusting(&[SEED, OTHER_SEED])).unwrap().key_id, trusted);
}

/// A metadata section with one field replaced: `edit` gets the encoding of every field in order.
fn signed_with(edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let meta = metadata();
    let text = |text: &str| [&(text.len() as u16).to_le_bytes()[..], text.as_bytes()].concat();
    let shape = |shape: &[u32]| {
        let mut bytes = vec![shape.len() as u8];
        shape.iter().for_each(|length| bytes.extend_from_slice(&length.to_le_bytes()));
        bytes
    };
    let mut fields = vec![
        text(&meta.name),
        [1u32, 2, 3].iter().flat_map(|value| value.to_le_bytes()).collect(),
        vec![1],
        shape(&meta.input_shape),
        shape(&meta.output_shape),
        text(&meta.author),
        meta.created_unix_s.to_le_bytes().to_vec(),
        text(&meta.description),
        meta.training_data_sha256.to_vec(),
    ];
    assert_eq!(fields.concat(), section(&meta), "the test's encoding is the crate's");
    edit(&mut fields);
    seal(&fields.concat(), &weights(), &SEED)
}

#[test]
fn malformed_metadata_under_a_valid_signature_is_refused_with_the_field() {
    let keys = trusting(&[SEED]);
    let refused = |edit: fn(&mut Vec<Vec<u8>>)| decode(&signed_with(edit), &keys).unwrap_err();
    assert_eq!(decode(&signed_with(|_| {}), &keys).unwrap().metadata, metadata());
    assert_eq!(
        refused(|fields| fields[5] = [&3u16.to_le_bytes()[..], &[b'a', 0xff, b'b']].concat()),
        ArtifactError::NotUtf8 { field: Field::Author }
    );
    assert_eq!(
        refused(|fields| fields[0] = [&65u16.to_le_bytes()[..], &[b'a'; 65]].concat()),
        ArtifactError::FieldTooLong { field: Field::Name, length: 65, max: 64 }
    );
    assert_eq!(
        refused(|fields| fields[7] = [&u16::MAX.to_le_bytes()[..], b"x"].concat()),
        ArtifactError::FieldTooLong { field: Field::Description, length: 65_535, max: 1024 }
    );
    assert_eq!(refused(|fields| fields[0] = [&5u16.to_le_bytes()[..], b"a@1.0"].concat()), ArtifactError::InvalidName);
    assert_eq!(refused(|fields| fields[0] = 0u16.to_le_bytes().to_vec()), ArtifactError::InvalidName);
    assert_eq!(refused(|fields| fields[0] = [&2u16.to_le_bytes()[..], b"-a"].concat()), ArtifactError::InvalidName);
    assert_eq!(
        refused(|fields| fields[1][4..8].copy_from_slice(&1_000_000u32.to_le_bytes())),
        ArtifactError::VersionOutOfRange { value: 1_000_000 }
    );
    assert_eq!(
        refused(|fields| fields[1][8..12].copy_from_slice(&u32::MAX.to_le_bytes())),
        ArtifactError::VersionOutOfRange { value: u32::MAX }
    );
    assert_eq!(refused(|fields| fields[2] = vec![0]), ArtifactError::UnknownKind { code: 0 });
    assert_eq!(refused(|fields| fields[2] = vec![9]), ArtifactError::UnknownKind { code: 9 });
    assert_eq!(refused(|fields| fields[3] = vec![0]), ArtifactError::BadRank { field: Field::InputShape, rank: 0 });
    assert_eq!(
        refused(|fields| fields[4] = [&[5u8][..], &[1u8; 20]].concat()),
        ArtifactError::BadRank { field: Field::OutputShape, rank: 5 }
    );
    assert_eq!(
        refused(|fields| fields[3] = [&[2u8][..], &4u32.to_le_bytes(), &0u32.to_le_bytes()].concat()),
        ArtifactError::ZeroDimension { field: Field::InputShape }
    );
    // Four axes of u32::MAX overflow u64; two of 2^16 + 1 exceed 2^32 elements.
    assert_eq!(
        refused(|fields| fields[4] = [&[4u8][..], &[0xff; 16]].concat()),
        ArtifactError::ShapeTooLarge { field: Field::OutputShape }
    );
    assert_eq!(
        refused(|fields| fields[3] = [&[2u8][..], &65_537u32.to_le_bytes(), &65_537u32.to_le_bytes()].concat()),
        ArtifactError::ShapeTooLarge { field: Field::InputShape }
    );
    assert_eq!(refused(|fields| fields.push(vec![0])), ArtifactError::MetadataTrailingBytes { extra: 1 });
    assert_eq!(refused(|fields| fields.push(vec![0; 9])), ArtifactError::MetadataTrailingBytes { extra: 9 });
}

#[test]
fn metadata_cut_at_every_length_names_the_field_it_ends_in() {
    let keys = trusting(&[SEED]);
    let full = section(&metadata());
    // Field boundaries of the sample: name 2+12, version 12, kind 1, shapes 5 and 5, author 2+9, created 8,
    // description 2+16, digest 32.
    let ends = [
        (14, Field::Name),
        (26, Field::Version),
        (27, Field::Kind),
        (32, Field::InputShape),
        (37, Field::OutputShape),
        (48, Field::Author),
        (56, Field::Created),
        (74, Field::Description),
        (106, Field::TrainingDataDigest),
    ];
    assert_eq!(full.len(), 106);
    for length in 0..full.len() {
        let field = ends.iter().find(|(end, _)| length < *end).map(|(_, field)| *field).unwrap();
        let bytes = seal(&full[..length], &weights(), &SEED);
        assert_eq!(decode(&bytes, &keys), Err(ArtifactError::MetadataTruncated { field }), "length {length}");
    }
}

#[test]
fn encode_refuses_invalid_metadata_with_the_decoder_s_errors() {
    type Edit = fn(&mut Metadata);
    let cases: [(Edit, ArtifactError); 7] = [
        (|meta| meta.name = String::from("has space"), ArtifactError::InvalidName),
        (|meta| meta.name = "x".repeat(65), ArtifactError::FieldTooLong { field: Field::Name, length: 65, max: 64 }),
        (|meta| meta.version.minor = 1_000_000, ArtifactError::VersionOutOfRange { value: 1_000_000 }),
        (|meta| meta.input_shape.clear(), ArtifactError::BadRank { field: Field::InputShape, rank: 0 }),
        (|meta| meta.output_shape = vec![1, 0], ArtifactError::ZeroDimension { field: Field::OutputShape }),
        (
            |meta| meta.author = "a".repeat(129),
            ArtifactError::FieldTooLong { field: Field::Author, length: 129, max: 128 },
        ),
        (
            |meta| meta.description = "a".repeat(1025),
            ArtifactError::FieldTooLong { field: Field::Description, length: 1025, max: 1024 },
        ),
    ];
    for (edit, error) in cases {
        let mut meta = metadata();
        edit(&mut meta);
        assert_eq!(encode(&meta, &weights(), &SEED), Err(error));
    }
}

#[test]
fn versions_and_model_references_parse_strictly() {
    assert_eq!(Version::parse("1.20.3"), Ok(Version { major: 1, minor: 20, patch: 3 }));
    assert_eq!(Version::parse("0.0.0"), Ok(Version { major: 0, minor: 0, patch: 0 }));
    assert_eq!(Version::parse("999999.0.1"), Ok(Version { major: 999_999, minor: 0, patch: 1 }));
    for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.-3", "+1.2.3", "1.2.3-beta", "1..3", " 1.2.3", "1.2.x"] {
        assert_eq!(Version::parse(bad), Err(ParseError::BadVersion), "{bad:?}");
    }
    for absurd in ["1000000.0.0", "1.4294967296.0", "1.2.99999999999999999999999"] {
        assert_eq!(Version::parse(absurd), Err(ParseError::VersionOutOfRange), "{absurd:?}");
    }
    assert!(Version::parse("1.2.3").unwrap() < Version::parse("1.10.0").unwrap());
    assert!(Version::parse("2.0.0").unwrap() > Version::parse("1.999999.999999").unwrap());
    assert_eq!(
        ModelRef::parse("tiny-lm@1.0.2"),
        Ok(ModelRef { name: String::from("tiny-lm"), version: Some(Version { major: 1, minor: 0, patch: 2 }) })
    );
    assert_eq!(ModelRef::parse("tiny-lm").unwrap().version, None);
    assert_eq!(ModelRef::parse("tiny-lm@1.0.2").unwrap().to_string(), "tiny-lm@1.0.2");
    for bad in ["", "@1.0.0", "a b", "a@b@1.0.0", ".hidden", &"x".repeat(65)] {
        assert!(ModelRef::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(ModelRef::parse("a@1.0"), Err(ParseError::BadVersion));
    assert_eq!(Kind::parse("agent-network"), Some(Kind::AgentNetwork));
    assert_eq!(Kind::parse("llm"), None);
}

#[test]
fn metadata_serializes_with_names_and_hex() {
    let json = serde_json::to_value(metadata()).unwrap();
    assert_eq!(json["version"], "1.2.3");
    assert_eq!(json["kind"], "language-model");
    assert_eq!(json["input_shape"], serde_json::json!([32]));
    assert_eq!(json["training_data_sha256"], "ab".repeat(32));
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(decode(&bytes, &trusting(&[SEED])).is_err());
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_are_refused(body in proptest::collection::vec(any::<u8>(), 0..300), metadata_length in 0u32..300) {
        let mut bytes = Vec::from(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&metadata_length.to_le_bytes());
        let weights_length = (body.len() as u64).saturating_sub(u64::from(metadata_length) + 104);
        bytes.extend_from_slice(&weights_length.to_le_bytes());
        bytes.extend_from_slice(&body);
        prop_assert!(decode(&bytes, &trusting(&[SEED])).is_err());
    }

    #[test]
    fn valid_metadata_round_trips(
        name in "[a-z0-9][a-z0-9._-]{0,63}",
        version in (0..=MAX_VERSION_COMPONENT, 0..=MAX_VERSION_COMPONENT, 0..=MAX_VERSION_COMPONENT),
        shape in proptest::collection::vec(1u32..=255, 1..=4),
        author in "\\PC{0,32}",
        created_unix_s in any::<u64>(),
        weights in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let meta = Metadata {
            name,
            version: Version::new(version.0, version.1, version.2).unwrap(),
            kind: Kind::AgentNetwork,
            input_shape: shape.clone(),
            output_shape: shape,
            author,
            created_unix_s,
            description: String::new(),
            training_data_sha256: [7; 32],
        };
        let bytes = encode(&meta, &weights, &SEED).unwrap();
        let artifact = decode(&bytes, &trusting(&[SEED])).unwrap();
        prop_assert_eq!(artifact.metadata, meta);
        prop_assert_eq!(artifact.weights, weights.as_slice());
    }
}
