//! Model artifacts and audit logs (`sis_governance::artifact::decode`, `sis_governance::audit::decode`) on
//! arbitrary bytes: the two formats the kernel reads from untrusted places (uploads, a disk).
//!
//! Invariants: no panic; an accepted artifact is exactly what the encoder makes of its metadata and weights
//! with the trusted key (the format is canonical) and names that key; a refusal has a published code; an
//! accepted audit log verifies, re-encodes to exactly the bytes it was read from up to its end, and a torn tail
//! starts there.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sis_governance::artifact::{self, ArtifactError};
use sis_governance::audit;
use sis_governance::keys::{public_key_from_seed, KeyId, TrustedKeys};

/// The key the seed artifacts in `fuzz/corpus/governance/` are signed with.
const SEED: [u8; 32] = [7; 32];

const ARTIFACT_CODES: &[&str] = &[
    "truncated",
    "bad-magic",
    "unsupported-format-version",
    "length-overflow",
    "metadata-too-large",
    "weights-too-large",
    "trailing-bytes",
    "digest-mismatch",
    "unknown-key",
    "signature-invalid",
    "metadata-truncated",
    "metadata-trailing-bytes",
    "field-too-long",
    "not-utf8",
    "invalid-name",
    "version-out-of-range",
    "unknown-kind",
    "bad-rank",
    "zero-dimension",
    "shape-too-large",
];

const AUDIT_CODES: &[&str] = &[
    "no-audit-log",
    "audit-header-truncated",
    "audit-bad-magic",
    "audit-unsupported-format-version",
    "audit-bad-record-length",
    "audit-bad-record",
    "audit-sequence-broken",
    "audit-hash-mismatch",
];

fuzz_target!(|data: &[u8]| {
    let public_key = public_key_from_seed(&SEED);
    let mut keys = TrustedKeys::new();
    keys.add(&public_key).expect("a fresh key set takes one key");
    match artifact::decode(data, &keys) {
        Ok(verified) => {
            assert_eq!(verified.key_id, KeyId::of(&public_key));
            assert_eq!(&data[verified.weights_range.clone()], verified.weights);
            let encoded =
                artifact::encode(&verified.metadata, verified.weights, &SEED).expect("accepted metadata is valid");
            assert_eq!(encoded, data, "an accepted artifact is not canonical");
        }
        Err(error) => assert_published(error),
    }

    match audit::decode(data, 1 << 16) {
        Ok(decoded) => {
            let end = usize::try_from(decoded.end_offset).expect("an offset within the input");
            assert!(end <= data.len());
            assert_eq!(decoded.log.dropped(), 0);
            assert_eq!(decoded.log.len() as u64, decoded.records);
            assert_eq!(decoded.log.verify(), Ok(()));
            assert_eq!(decoded.log.encode(), &data[..end], "re-encoding differs");
            if let Some(torn) = decoded.torn_tail {
                assert_eq!((torn.offset, torn.bytes), (decoded.end_offset, (data.len() - end) as u64));
            }
        }
        Err(error) => assert!(AUDIT_CODES.contains(&error.code()), "unpublished code {}", error.code()),
    }
});

fn assert_published(error: ArtifactError) {
    assert!(ARTIFACT_CODES.contains(&error.code()), "unpublished code {}", error.code());
}
