//! Shell tokenizer: `validate_line`, `tokenize` and `split_commands` on arbitrary bytes.
//!
//! Invariants: errors carry the codes each function publishes; a line without
//! quotes or backslashes tokenizes to its whitespace split; words never hold
//! more characters than the line; re-quoting the words gives the same words;
//! and a line without `;` gives the same words whether split into commands
//! first or not (batch mode splits, the console does not).
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sis_shell::{codes, split_commands, tokenize, validate_line};

fuzz_target!(|bytes: &[u8]| {
    let text = match validate_line(bytes) {
        Ok(text) => text,
        Err(error) => {
            let utf8 = std::str::from_utf8(bytes).is_ok();
            match error.code() {
                codes::INVALID_UTF8 => assert!(!utf8, "valid UTF-8 refused: {bytes:?}"),
                codes::CONTROL_BYTE => assert!(utf8, "control byte reported before invalid UTF-8: {bytes:?}"),
                other => panic!("validate_line returned unpublished code {other}"),
            }
            return;
        }
    };
    assert!(!text.bytes().any(|byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f), "control byte accepted");

    let words = tokenize(text);
    match &words {
        Ok(words) => {
            if !text.contains(['\'', '"', '\\']) {
                let split: Vec<&str> = text.split([' ', '\t']).filter(|word| !word.is_empty()).collect();
                assert_eq!(words, &split, "plain line {text:?}");
            }
            let characters: usize = words.iter().map(|word| word.chars().count()).sum();
            assert!(characters <= text.chars().count(), "words longer than the line {text:?}");
            assert_eq!(tokenize(&requote(words)).as_ref(), Ok(words), "re-quoted words of {text:?}");
        }
        Err(error) => match error.code() {
            codes::BAD_ESCAPE => assert!(text.ends_with('\\'), "bad escape not at the end of {text:?}"),
            codes::UNTERMINATED_QUOTE => assert!(text.contains(['\'', '"']), "no quote in {text:?}"),
            other => panic!("tokenize returned unpublished code {other}"),
        },
    }

    match split_commands(text) {
        Ok(commands) => {
            assert!(commands.len() <= text.matches(';').count() + 1);
            for command in &commands {
                assert!(!command.is_empty());
                if words.is_ok() {
                    assert!(tokenize(command).is_ok(), "piece {command:?} of {text:?} does not tokenize");
                }
            }
            if let (Ok(words), false) = (&words, text.contains(';')) {
                let pieces: Vec<String> = commands.iter().flat_map(|command| tokenize(command).unwrap()).collect();
                assert_eq!(&pieces, words, "split then tokenized {text:?}");
            }
        }
        Err(error) => {
            assert_eq!(error.code(), codes::UNTERMINATED_QUOTE, "split_commands code for {text:?}");
            assert_eq!(
                words.as_ref().map_err(|error| error.code()),
                Err(codes::UNTERMINATED_QUOTE),
                "split and tokenize disagree on quotes in {text:?}"
            );
        }
    }
});

/// Writes `words` back as a line: every character escaped with a backslash, `''` for an empty word.
fn requote(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| if word.is_empty() { String::from("''") } else { word.chars().flat_map(|c| ['\\', c]).collect() })
        .collect();
    quoted.join(" ")
}
