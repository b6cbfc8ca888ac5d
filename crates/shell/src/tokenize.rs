//! From a submitted line to words: validation, quoting, and `;`-separated command lists.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{codes, ShellError};

/// Checks that `line` is UTF-8 without control characters (tab allowed).
pub fn validate_line(line: &[u8]) -> Result<&str, ShellError> {
    let text = core::str::from_utf8(line).map_err(|error| {
        ShellError::new(
            codes::INVALID_UTF8,
            alloc::format!("input is not valid UTF-8 (bad byte at offset {})", error.valid_up_to()),
        )
    })?;
    if let Some((offset, byte)) =
        line.iter().enumerate().find(|(_, &byte)| (byte < 0x20 && byte != b'\t') || byte == 0x7f)
    {
        return Err(ShellError::new(
            codes::CONTROL_BYTE,
            alloc::format!("control byte 0x{byte:02x} at offset {offset}; only printable text and tabs are accepted"),
        ));
    }
    Ok(text)
}

/// Splits a line into words.
///
/// Space and tab separate words. Single quotes keep everything literally;
/// double quotes allow `\"`, `\\`, `\n` and `\t`; outside quotes a backslash
/// keeps the next character. Quoted and unquoted parts next to each other
/// join into one word, and `""` is an empty word.
pub fn tokenize(text: &str) -> Result<Vec<String>, ShellError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(c) = characters.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unterminated('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unterminated('"')),
                        },
                        Some(c) => word.push(c),
                        None => return Err(unterminated('"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match characters.next() {
                    Some(c) => word.push(c),
                    None => {
                        return Err(ShellError::new(
                            codes::BAD_ESCAPE,
                            "backslash at the end of the line escapes nothing",
                        ))
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unterminated(quote: char) -> ShellError {
    ShellError::new(codes::UNTERMINATED_QUOTE, alloc::format!("quote {quote} opened but never closed"))
}

/// Splits `cmd1; cmd2` on semicolons outside quotes; empty pieces are dropped.
///
/// Each piece loses the spaces and tabs around it that separate words, and
/// only those: an escaped or quoted one is part of a word and stays, so every
/// piece tokenizes to the words it held in the line.
pub fn split_commands(text: &str) -> Result<Vec<String>, ShellError> {
    let mut commands = Vec::new();
    let mut current = String::new();
    // Length of `current` up to its last character that is not a separator.
    let mut kept = 0;
    let mut quote: Option<char> = None;
    let mut characters = text.chars();
    while let Some(c) = characters.next() {
        match (quote, c) {
            (None, ';') => {
                current.truncate(kept);
                commands.push(core::mem::take(&mut current));
                kept = 0;
                continue;
            }
            (None, ' ' | '\t') => {
                if !current.is_empty() {
                    current.push(c);
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), c) if c == open => quote = None,
            (Some('"') | None, '\\') => {
                current.push(c);
                if let Some(next) = characters.next() {
                    current.push(next);
                }
                kept = current.len();
                continue;
            }
            _ => {}
        }
        current.push(c);
        kept = current.len();
    }
    if let Some(open) = quote {
        return Err(unterminated(open));
    }
    current.truncate(kept);
    commands.push(current);
    Ok(commands.into_iter().filter(|command| !command.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).unwrap()
    }

    #[test]
    fn plain_words_and_whitespace() {
        assert_eq!(words("  echo \t a  b "), ["echo", "a", "b"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn quotes_join_and_escape() {
        assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(words(r#"'it''s' "q\"uote" x\ y"#), ["its", "q\"uote", "x y"]);
        assert_eq!(words(r#"echo "" ''"#), ["echo", "", ""]);
        assert_eq!(words(r#""a\nb""#), ["a\nb"]);
    }

    #[test]
    fn unterminated_and_bad_escape_are_errors() {
        assert_eq!(tokenize("echo \"abc").unwrap_err().code(), codes::UNTERMINATED_QUOTE);
        assert_eq!(tokenize("echo 'abc").unwrap_err().code(), codes::UNTERMINATED_QUOTE);
        assert_eq!(tokenize("echo abc\\").unwrap_err().code(), codes::BAD_ESCAPE);
    }

    #[test]
    fn validation_reports_offsets() {
        assert_eq!(validate_line(b"ok\tfine").unwrap(), "ok\tfine");
        let error = validate_line(b"ab\xffcd").unwrap_err();
        assert_eq!(error.code(), codes::INVALID_UTF8);
        assert!(error.message().contains("offset 2"));
        let error = validate_line(b"abc\x07").unwrap_err();
        assert_eq!(error.code(), codes::CONTROL_BYTE);
        assert!(error.message().contains("0x07 at offset 3"));
    }

    #[test]
    fn command_lists_split_outside_quotes() {
        assert_eq!(split_commands("echo a; echo 'b;c' ;; version ").unwrap(), ["echo a", "echo 'b;c'", "version"]);
        assert_eq!(split_commands(r#"echo "x\";y""#).unwrap(), [r#"echo "x\";y""#]);
        assert_eq!(split_commands("echo 'x").unwrap_err().code(), codes::UNTERMINATED_QUOTE);
        assert!(split_commands(" ; ").unwrap().is_empty());
    }

    /// Found by the `tokenize` fuzz target: trimming a piece removed the space
    /// an ending backslash escaped, so `echo a\ ` split into `echo a\`, a bad escape.
    #[test]
    fn escaped_and_quoted_separators_stay_in_their_piece() {
        assert_eq!(split_commands("echo a\\ ; version").unwrap(), ["echo a\\ ", "version"]);
        assert_eq!(tokenize(&split_commands("echo a\\ ").unwrap()[0]).unwrap(), tokenize("echo a\\ ").unwrap());
        assert_eq!(split_commands("\t echo a\\\t\t;").unwrap(), ["echo a\\\t"]);
        assert_eq!(split_commands("echo ' ' ").unwrap(), ["echo ' '"]);
        assert_eq!(split_commands("echo \u{3000}").unwrap(), ["echo \u{3000}"]);
    }
}
