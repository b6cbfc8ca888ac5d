//! Registration, versions, load and unload; every refusal leaves the registry as it was.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::policy::Limits;
use crate::testing::{artifact, artifact_signed, keys, UNTRUSTED_SEED};

const CONSOLE: Principal = Principal::Console;

fn policy() -> Policy {
    Policy::new(Limits::DEFAULT).unwrap()
}

fn reference(text: &str) -> ModelRef {
    ModelRef::parse(text).unwrap()
}

/// Everything observable about a registry, to compare before and after a refusal.
fn snapshot(registry: &Registry) -> (Vec<ModelInfo>, u64, Vec<Vec<u8>>) {
    (registry.list(), registry.held_bytes(), registry.models().iter().map(|model| model.artifact().to_vec()).collect())
}

#[test]
fn a_registered_model_keeps_its_metadata_weights_and_facts() {
    let mut registry = Registry::default();
    let bytes = artifact("tiny", (1, 0, 0), 300);
    let info = registry.register(&bytes, &keys(), &policy(), Principal::Token(4), 1_234).unwrap();
    assert_eq!(info.metadata.name, "tiny");
    assert_eq!(info.metadata.version.to_string(), "1.0.0");
    assert_eq!((info.artifact_bytes, info.weights_bytes), (bytes.len() as u64, 300));
    assert_eq!(info.digest, hex::encode(&bytes[bytes.len() - 104..][..32]));
    assert_eq!((info.registered_ns, info.registered_by, info.loaded), (1_234, Principal::Token(4), false));
    let model = registry.get("tiny", None).unwrap();
    assert_eq!(model.weights(), (0..300).map(|index| index as u8).collect::<Vec<u8>>().as_slice());
    assert_eq!(model.artifact(), bytes.as_slice());
    assert_eq!(registry.held_bytes(), bytes.len() as u64);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["name"], "tiny");
    assert_eq!(json["version"], "1.0.0");
    assert_eq!(json["kind"], "language-model");
    assert_eq!(json["weights_bytes"], 300);
    assert_eq!(json["registered_by"], "token:4");
    assert_eq!(json["key_id"].as_str().unwrap().len(), 16);
}

#[test]
fn versions_are_ordered_by_semver_and_the_latest_is_the_default() {
    let mut registry = Registry::default();
    for version in [(1, 10, 0), (1, 2, 0), (0, 9, 9), (2, 0, 0)] {
        registry.register(&artifact("lm", version, 8), &keys(), &policy(), CONSOLE, 0).unwrap();
    }
    registry.register(&artifact("agent", (0, 1, 0), 8), &keys(), &policy(), CONSOLE, 0).unwrap();
    let versions: Vec<_> = registry.versions("lm").unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(versions, ["0.9.9", "1.2.0", "1.10.0", "2.0.0"]);
    assert_eq!(registry.get("lm", None).unwrap().metadata().version.to_string(), "2.0.0");
    assert_eq!(registry.resolve(&reference("lm@1.2.0")).unwrap().metadata().version.to_string(), "1.2.0");
    let listed: Vec<_> =
        registry.list().iter().map(|info| format!("{}@{}", info.metadata.name, info.metadata.version)).collect();
    assert_eq!(listed, ["agent@0.1.0", "lm@0.9.9", "lm@1.2.0", "lm@1.10.0", "lm@2.0.0"]);
    assert_eq!(registry.versions("nope"), Err(RegistryError::UnknownModel { name: "nope".into() }));
    assert_eq!(
        registry.resolve(&reference("lm@3.0.0")).unwrap_err(),
        RegistryError::UnknownVersion { model: ModelId { name: "lm".into(), version: Version::new(3, 0, 0).unwrap() } }
    );
    assert_eq!(registry.resolve(&reference("nope@1.0.0")).unwrap_err().code(), "unknown-model");
}

#[test]
fn every_refusal_leaves_the_registry_unchanged() {
    let mut registry = Registry::new(3, 10_000);
    let keys = keys();
    let policy = policy();
    registry.register(&artifact("lm", (1, 0, 0), 100), &keys, &policy, CONSOLE, 0).unwrap();
    let before = snapshot(&registry);

    let mut flipped = artifact("lm", (1, 1, 0), 100);
    flipped[200] ^= 0x10;
    let untrusted = artifact_signed("lm", (1, 1, 0), 100, &UNTRUSTED_SEED);
    let mut small_limit = Policy::new(Limits::DEFAULT).unwrap();
    small_limit.set_model_limit(CONSOLE, 300, 0).unwrap();
    let cases: Vec<(Vec<u8>, &Policy, &str)> = vec![
        (flipped, &policy, "digest-mismatch"),
        (untrusted, &policy, "unknown-key"),
        (artifact("lm", (1, 1, 0), 200), &small_limit, "model-too-large"),
        (artifact("lm", (1, 0, 0), 50), &policy, "version-exists"),
        (artifact("big", (1, 0, 0), 9_800), &policy, "registry-no-room"),
        (Vec::new(), &policy, "truncated"),
    ];
    for (bytes, policy, code) in cases {
        let error = registry.register(&bytes, &keys, policy, CONSOLE, 5).unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(snapshot(&registry), before, "{code}");
    }
    let sized = artifact("lm", (1, 1, 0), 200);
    assert_eq!(
        registry.register(&sized, &keys, &small_limit, CONSOLE, 5),
        Err(RegistryError::TooLarge { bytes: sized.len() as u64, max_model_bytes: 300 })
    );
    assert_eq!(
        registry.register(&artifact("lm", (1, 0, 0), 50), &keys, &policy, CONSOLE, 5),
        Err(RegistryError::VersionExists {
            model: ModelId { name: "lm".into(), version: Version::new(1, 0, 0).unwrap() }
        })
    );
    registry.register(&artifact("lm", (1, 1, 0), 10), &keys, &policy, CONSOLE, 0).unwrap();
    registry.register(&artifact("lm", (1, 2, 0), 10), &keys, &policy, CONSOLE, 0).unwrap();
    let full = snapshot(&registry);
    assert_eq!(
        registry.register(&artifact("lm", (1, 3, 0), 10), &keys, &policy, CONSOLE, 0),
        Err(RegistryError::Full { max_models: 3 })
    );
    assert_eq!(snapshot(&registry), full);
}

#[test]
fn load_and_unload_flag_a_model_and_give_its_weights_while_loaded() {
    let mut registry = Registry::default();
    for version in [(1, 0, 0), (1, 1, 0)] {
        registry.register(&artifact("lm", version, 4), &keys(), &policy(), CONSOLE, 0).unwrap();
    }
    assert_eq!(registry.loaded(&reference("lm")).unwrap_err(), RegistryError::NotLoaded { model: "lm".into() });
    let info = registry.load(&reference("lm@1.0.0")).unwrap();
    assert!(info.loaded);
    assert_eq!(
        registry.load(&reference("lm@1.0.0")).unwrap_err(),
        RegistryError::AlreadyLoaded { model: ModelId { name: "lm".into(), version: Version::new(1, 0, 0).unwrap() } }
    );
    // Without a version, the latest loaded version is the one used.
    let loaded = registry.loaded(&reference("lm")).unwrap();
    assert_eq!((loaded.metadata().version.to_string(), loaded.weights()), ("1.0.0".into(), &[0u8, 1, 2, 3][..]));
    assert_eq!(registry.loaded(&reference("lm@1.1.0")).unwrap_err().code(), "not-loaded");
    // Without a version, load takes the latest registered.
    assert_eq!(registry.load(&reference("lm")).unwrap().metadata.version.to_string(), "1.1.0");
    assert_eq!(registry.loaded(&reference("lm")).unwrap().metadata().version.to_string(), "1.1.0");
    assert_eq!(registry.unload(&reference("lm")).unwrap().metadata.version.to_string(), "1.1.0");
    assert_eq!(registry.unload(&reference("lm")).unwrap().metadata.version.to_string(), "1.0.0");
    assert_eq!(registry.unload(&reference("lm")).unwrap_err(), RegistryError::NotLoaded { model: "lm".into() });
    assert_eq!(registry.unload(&reference("other")).unwrap_err().code(), "unknown-model");
    assert!(registry.list().iter().all(|info| !info.loaded));
}
