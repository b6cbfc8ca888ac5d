//! Training: deterministic from the seed, learns, refuses bad configurations; the shipped text and model.

use sha2::{Digest, Sha256};

use super::{shipped, TEXT};
use crate::train::{architecture_for, TrainConfig, TrainError, Trainer};
use crate::{Field, LmError};

/// A configuration small enough to train in a test.
fn small_config(seed: u64) -> TrainConfig {
    TrainConfig { context: 4, embedding: 6, hidden: vec![30], epochs: 2, batch: 16, learning_rate: 0.01, seed }
}

/// The blob after `epochs` epochs of [`small_config`] on the shipped text's first 12 KiB, and the last report.
fn train_small(seed: u64) -> (Vec<u8>, crate::train::EpochReport, f64) {
    let mut trainer = Trainer::new(&TEXT[..12 * 1024], small_config(seed)).unwrap();
    let first = trainer.epoch();
    let second = trainer.epoch();
    assert!(second.train_bits < first.train_bits, "{first:?} {second:?}");
    (trainer.model().to_bytes(), second, trainer.unigram_bits())
}

#[test]
fn training_is_deterministic_from_the_seed_and_learns() {
    let (blob, report, unigram) = train_small(1);
    let (again, report_again, _) = train_small(1);
    assert_eq!(again, blob);
    assert_eq!(report_again, report);
    let (other, _, _) = train_small(2);
    assert_ne!(other, blob);
    assert_eq!(other.len(), blob.len());
    // Two epochs on 11 KiB already beat the unigram baseline on the held-out bytes.
    assert!(report.held_out_bits < unigram, "held out {} bits/byte, unigram {unigram}", report.held_out_bits);
}

#[test]
fn the_unigram_baseline_is_the_smoothed_training_frequency() {
    // 30 bytes: the first 27 train (a 15, b 7, c 3, d 1, e 1), the last 3 are held out. With one added to
    // each count, p = 16, 8, 4, 2, 2 in 32: the held-out "abc" costs 1, 2 and 3 bits.
    let text = b"aaaaaaaaaaaaaaabbbbbbbcccdeabc";
    let trainer = Trainer::new(text, small_config(1)).unwrap();
    assert_eq!((trainer.train_length(), trainer.held_out_length()), (27, 3));
    assert_eq!(trainer.unigram_bits(), 2.0);
}

#[test]
fn bad_configurations_are_refused() {
    let config = small_config(1);
    assert_eq!(
        Trainer::new(b"0123456789", config.clone()).unwrap_err(),
        TrainError::TextTooShort { length: 10, needed: 11 }
    );
    assert_eq!(Trainer::new(TEXT, TrainConfig { batch: 0, ..config.clone() }).unwrap_err(), TrainError::EmptyBatch);
    for rate in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let error = Trainer::new(TEXT, TrainConfig { learning_rate: rate, ..config.clone() }).unwrap_err();
        assert_eq!(error, TrainError::LearningRate);
    }
    let error = Trainer::new(TEXT, TrainConfig { context: 0, ..config.clone() }).unwrap_err();
    assert_eq!(
        error,
        TrainError::Architecture(LmError::OutOfRange { field: Field::Context, value: 0, min: 1, max: 64 })
    );
    let error = Trainer::new(TEXT, TrainConfig { hidden: vec![], ..config }).unwrap_err();
    assert_eq!(
        error,
        TrainError::Architecture(LmError::OutOfRange { field: Field::HiddenLayers, value: 0, min: 1, max: 4 })
    );
}

/// The training text's digest, as docs/lm.md records it.
#[test]
fn the_shipped_text_has_the_documented_digest_and_the_shipped_model_its_vocabulary() {
    let digest: String = Sha256::digest(TEXT).iter().map(|byte| format!("{byte:02x}")).collect();
    let docs = include_str!("../../../../docs/lm.md");
    assert!(docs.contains(&format!("`{digest}`")), "docs/lm.md does not record the digest {digest}");
    assert_eq!(TEXT.len(), 262_063);
    let model = shipped();
    let expected = architecture_for(TEXT, &TrainConfig::default());
    assert_eq!(*model.architecture(), expected);
    assert_eq!(expected.vocabulary.len(), 62);
}
