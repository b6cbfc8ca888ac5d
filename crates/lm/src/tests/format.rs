//! The weights format: round trips, its exact layout, and every kind of malformed blob refused with its error.

use sis_hal::SeededRandom;

use super::{random_model, shipped, small_architecture};
use crate::{Field, LmError, Model, SpecialByte};

/// Header of [`small_architecture`]: 16 bytes, two widths, two special bytes, 15 vocabulary bytes.
const SMALL_HEADER: usize = 16 + 2 * 2 + 2 + 15;

#[test]
fn a_model_round_trips_through_its_bytes() {
    for model in [random_model(1), shipped()] {
        let blob = model.to_bytes();
        let loaded = Model::from_bytes(&blob).unwrap();
        assert_eq!(loaded, model);
        assert_eq!(loaded.to_bytes(), blob);
        assert_eq!(loaded.next_logits(b"the"), model.next_logits(b"the"));
    }
    assert_eq!(shipped().to_bytes(), super::SHIPPED);
}

#[test]
fn the_blob_is_the_documented_header_then_the_parameters_little_endian() {
    let model = random_model(2);
    let blob = model.to_bytes();
    let count = small_architecture().parameter_count();
    // Embeddings 15·3, layers 15·13 + 13, 13·6 + 6, 6·15 + 15.
    assert_eq!(count, 45 + 208 + 84 + 105);
    assert_eq!(blob.len(), SMALL_HEADER + 4 * count);
    assert_eq!(&blob[..16], b"SIS-LM\x01\x00\x0f\x00\x05\x00\x03\x00\x02\x00");
    assert_eq!(&blob[16..22], b"\x0d\x00\x06\x00\n ");
    assert_eq!(&blob[22..SMALL_HEADER], b"\n !,.abcdefghij");
    let parameters: Vec<f32> =
        blob[SMALL_HEADER..].chunks(4).map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap())).collect();
    assert_eq!(parameters, model.parameters());
}

#[test]
fn every_truncation_and_any_extra_byte_are_refused() {
    let blob = random_model(3).to_bytes();
    for length in 0..blob.len() {
        let error = Model::from_bytes(&blob[..length]).unwrap_err();
        let expected = if length < SMALL_HEADER {
            matches!(error, LmError::Truncated { length: l, .. } if l == length)
        } else {
            error == LmError::LengthMismatch { expected: blob.len(), length }
        };
        assert!(expected, "length {length}: {error:?}");
    }
    assert_eq!(Model::from_bytes(&[]), Err(LmError::Truncated { needed: 6, length: 0 }));
    assert_eq!(Model::from_bytes(&blob[..17]), Err(LmError::Truncated { needed: 18, length: 17 }));
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        Model::from_bytes(&longer),
        Err(LmError::LengthMismatch { expected: blob.len(), length: blob.len() + 1 })
    );
}

/// The small model's blob with `edit` applied.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Result<Model, LmError> {
    let mut blob = random_model(4).to_bytes();
    edit(&mut blob);
    Model::from_bytes(&blob)
}

fn set_u16(blob: &mut [u8], offset: usize, value: u16) {
    blob[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn inconsistent_headers_and_values_are_refused_with_their_error() {
    let out_of_range = |field, value, min, max| Err(LmError::OutOfRange { field, value, min, max });
    assert_eq!(edited(|blob| blob[0] = b's'), Err(LmError::BadMagic));
    assert_eq!(edited(|blob| set_u16(blob, 6, 2)), Err(LmError::UnsupportedVersion { version: 2 }));
    assert_eq!(edited(|blob| set_u16(blob, 8, 0)), out_of_range(Field::Vocabulary, 0, 1, 256));
    assert_eq!(edited(|blob| set_u16(blob, 8, 257)), out_of_range(Field::Vocabulary, 257, 1, 256));
    assert_eq!(edited(|blob| set_u16(blob, 10, 0)), out_of_range(Field::Context, 0, 1, 64));
    assert_eq!(edited(|blob| set_u16(blob, 10, 65)), out_of_range(Field::Context, 65, 1, 64));
    assert_eq!(edited(|blob| set_u16(blob, 12, 0)), out_of_range(Field::Embedding, 0, 1, 256));
    assert_eq!(edited(|blob| set_u16(blob, 12, 300)), out_of_range(Field::Embedding, 300, 1, 256));
    assert_eq!(edited(|blob| set_u16(blob, 14, 0)), out_of_range(Field::HiddenLayers, 0, 1, 4));
    assert_eq!(edited(|blob| set_u16(blob, 14, 5)), out_of_range(Field::HiddenLayers, 5, 1, 4));
    assert_eq!(edited(|blob| set_u16(blob, 16, 0)), out_of_range(Field::Width, 0, 1, 4096));
    assert_eq!(edited(|blob| set_u16(blob, 18, 4097)), out_of_range(Field::Width, 4097, 1, 4096));
    // Vocabulary "\n !,.abc..." at 22: a repeat, then a byte out of order.
    assert_eq!(edited(|blob| blob[23] = b'\n'), Err(LmError::VocabularyNotAscending { position: 1 }));
    assert_eq!(edited(|blob| blob[30] = b'a'), Err(LmError::VocabularyNotAscending { position: 8 }));
    let not_in = |which, byte| Err(LmError::NotInVocabulary { which, byte });
    assert_eq!(edited(|blob| blob[20] = b'z'), not_in(SpecialByte::Start, b'z'));
    assert_eq!(edited(|blob| blob[21] = 0xff), not_in(SpecialByte::Unknown, 0xff));
    // A wider first hidden layer (14): 15 + 1 more parameters in it, 6 in the next.
    let count = small_architecture().parameter_count();
    let wider = SMALL_HEADER + 4 * (count + 16 + 6);
    assert_eq!(
        edited(|blob| set_u16(blob, 16, 14)),
        Err(LmError::LengthMismatch { expected: wider, length: 4 * count + SMALL_HEADER })
    );
    // Parameters 0 and 100: NaN and infinity.
    let at = |index: usize| SMALL_HEADER + 4 * index;
    assert_eq!(
        edited(|blob| blob[at(0)..at(1)].copy_from_slice(&f32::NAN.to_le_bytes())),
        Err(LmError::NotFinite { index: 0 })
    );
    assert_eq!(
        edited(|blob| blob[at(100)..at(101)].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes())),
        Err(LmError::NotFinite { index: 100 })
    );
    assert_eq!(edited(|_| ()).map(|model| model.parameter_count()), Ok(count));
}

#[test]
fn random_corruptions_never_panic_and_a_blob_that_loads_is_the_models_own() {
    let blob = random_model(5).to_bytes();
    let mut random = SeededRandom::new(11);
    let (mut refused, mut header_refused) = (0, 0);
    for case in 0..4000 {
        let mut corrupted = blob.clone();
        // Half the cases flip a header bit, half a bit anywhere; some also cut the blob.
        let limit = if case % 2 == 0 { SMALL_HEADER } else { blob.len() };
        let bit = random.below(8 * limit as u64) as usize;
        corrupted[bit / 8] ^= 1 << (bit % 8);
        if case % 5 == 0 {
            corrupted.truncate(random.below(blob.len() as u64) as usize);
        }
        let result = Model::from_bytes(&corrupted);
        if let Ok(model) = &result {
            assert_eq!(model.to_bytes(), corrupted, "a blob that loads is the blob of the model loaded");
        }
        refused += result.is_err() as u32;
        header_refused += (result.is_err() && case % 2 == 0) as u32;
    }
    // Measured with seed 11. A flipped header bit that still gives a valid header of the same length (another
    // start or unknown byte from the vocabulary, a vocabulary byte that stays in order) loads: 90 of 2000.
    assert_eq!(header_refused, 1910);
    // Elsewhere: the cut blobs, and parameters flipped to NaN or infinity.
    assert_eq!(refused - header_refused, 456);
}
