//! Generation: requests checked, seeds, greedy ties, the vocabulary rule, and the shipped model's recorded output.

use sis_hal::SeededRandom;

use super::{random_model, shipped, small_architecture};
use crate::{check_temperature, generate, Generator, LmError, Model, MAX_TOKENS};

#[test]
fn temperatures_and_token_counts_outside_their_ranges_are_refused() {
    let model = random_model(1);
    assert_eq!(check_temperature(f32::NAN), Err(LmError::TemperatureNotANumber));
    assert_eq!(check_temperature(-0.001), Err(LmError::TemperatureNegative));
    assert_eq!(check_temperature(f32::NEG_INFINITY), Err(LmError::TemperatureNegative));
    assert_eq!(check_temperature(10.001), Err(LmError::TemperatureTooHigh));
    assert_eq!(check_temperature(f32::INFINITY), Err(LmError::TemperatureTooHigh));
    assert_eq!(check_temperature(0.0), Ok(0.0));
    assert_eq!(check_temperature(10.0), Ok(10.0));
    assert_eq!(generate(&model, b"a", 5, f32::NAN, 1), Err(LmError::TemperatureNotANumber));
    assert!(matches!(Generator::new(&model, b"a", -1.0, 1), Err(LmError::TemperatureNegative)));
    assert_eq!(
        generate(&model, b"a", MAX_TOKENS + 1, 1.0, 1),
        Err(LmError::TooManyTokens { requested: 4097, max: 4096 })
    );
    assert_eq!(generate(&model, b"a", 0, 1.0, 1), Ok(Vec::new()));
    assert_eq!(generate(&model, b"a", MAX_TOKENS, 1.0, 1).map(|bytes| bytes.len()), Ok(4096));
    assert_eq!(
        LmError::TooManyTokens { requested: 4097, max: 4096 }.to_string(),
        "4097 tokens requested, at most 4096 per generation"
    );
}

#[test]
fn a_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let model = shipped();
    let first = generate(&model, b"ROMEO:\n", 200, 1.0, 7).unwrap();
    assert_eq!(generate(&model, b"ROMEO:\n", 200, 1.0, 7).unwrap(), first);
    let others: Vec<Vec<u8>> = (8..12).map(|seed| generate(&model, b"ROMEO:\n", 200, 1.0, seed).unwrap()).collect();
    assert!(others.iter().all(|other| *other != first), "{others:?}");
    // Every byte is from the vocabulary.
    assert!(first.iter().all(|&byte| model.token(byte).is_some()));
}

#[test]
fn greedy_decoding_ignores_the_seed() {
    let model = shipped();
    let greedy = generate(&model, b"ROMEO:\n", 100, 0.0, 1).unwrap();
    for seed in [0, 2, u64::MAX] {
        assert_eq!(generate(&model, b"ROMEO:\n", 100, 0.0, seed).unwrap(), greedy);
    }
    assert_eq!(generate(&model, b"ROMEO:\n", 100, -0.0, 5).unwrap(), greedy);
}

#[test]
fn equal_logits_give_the_lowest_token_greedily_and_a_uniform_draw_when_sampled() {
    // Every parameter zero: every logit is 0.
    let architecture = small_architecture();
    let zeros = vec![0.0; architecture.parameter_count()];
    let model = Model::from_parameters(architecture, &zeros).unwrap();
    assert_eq!(generate(&model, b"abc", 10, 0.0, 3).unwrap(), b"\n".repeat(10));
    // At T = 1 each weight is expf(0) = 1 and the sum 15: the token is ⌊u·15⌋ for the 24-bit draw u.
    let mut random = SeededRandom::new(3);
    let expected: Vec<u8> = (0..50).map(|_| b"\n !,.abcdefghij"[(random.unit() * 15.0) as usize]).collect();
    assert_eq!(generate(&model, b"abc", 50, 1.0, 3).unwrap(), expected);
}

#[test]
fn the_context_is_the_prompt_tail_with_unknown_bytes_as_spaces_and_newlines_before_it() {
    let model = random_model(6);
    let token = |byte: u8| model.token(byte).unwrap();
    assert_eq!(model.context_after(b""), vec![token(b'\n'); 5]);
    assert_eq!(model.context_after(b"ab"), [b'\n', b'\n', b'\n', b'a', b'b'].map(token));
    assert_eq!(model.context_after(b"xyzabcdefg"), [b'c', b'd', b'e', b'f', b'g'].map(token));
    assert_eq!(model.context_after(b"aXb\xff"), [b'\n', b'a', b' ', b'b', b' '].map(token));
    assert_eq!(model.next_logits(b"a\xc3\xa9b"), model.next_logits(b"a  b"));
    assert_eq!(model.next_logits(b""), model.next_logits(b"\n\n\n\n\n\n\n"));
    assert_ne!(model.next_logits(b"ab"), model.next_logits(b"ba"));
    assert_eq!(model.token(b'z'), None);
    assert_eq!(model.byte(token(b'j')), b'j');
}

/// Greedy and sampled output of the shipped model. These bytes change only when models/lm.bin is retrained
/// (`cargo xtask model train`, docs/lm.md): then regenerate them with the same calls and replace them here.
#[test]
fn the_shipped_model_generates_its_recorded_bytes() {
    let model = shipped();
    assert_eq!(model.parameter_count(), 49_950);
    let greedy = generate(&model, b"ROMEO:\n", 80, 0.0, 1).unwrap();
    assert_eq!(
        String::from_utf8(greedy).unwrap(),
        "Is the senate,\nThe town in the with the state to the state to the state to the s"
    );
    let sampled = generate(&model, b"ROMEO:\n", 160, 0.8, 1).unwrap();
    assert_eq!(
        String::from_utf8(sampled).unwrap(),
        concat!(
            "What sweard all show the olfing one but one of a brief near confunted hear nect deads not ",
            "the stand on this all of us the regured opraitite the part all and his"
        )
    );
}
