//! Boot arguments (`/chosen/bootargs`): `key=value` words, values optionally in double quotes.
//!
//! `sis.run="echo hi; version" quiet` gives `("sis.run", "echo hi; version")`
//! and `("quiet", "")`. Inside double quotes `\"` and `\\` stand for `"` and
//! `\`; a missing closing quote is an error naming the key, never a guess.

use alloc::string::String;
use alloc::vec::Vec;

/// `sis.run="cmd1; cmd2"`: run the commands after boot, then exit QEMU with a
/// status from [`crate::exit`].
pub const RUN: &str = "sis.run";

/// One `key=value` word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgument {
    /// Text before the first `=`.
    pub key: String,
    /// Text after it, quotes removed (empty for a bare word).
    pub value: String,
}

/// Why boot arguments could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootArgumentError {
    /// A double quote opened in the value of `key` is never closed.
    UnterminatedQuote {
        /// The key whose value is unterminated.
        key: String,
    },
}

impl core::fmt::Display for BootArgumentError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootArgumentError::UnterminatedQuote { key } => {
                write!(formatter, "boot argument {key}: double quote never closed")
            }
        }
    }
}

/// Splits a boot-argument string into its words.
pub fn parse(text: &str) -> Result<Vec<BootArgument>, BootArgumentError> {
    let mut arguments = Vec::new();
    let mut characters = text.chars().peekable();
    loop {
        while characters.next_if(|c| c.is_whitespace()).is_some() {}
        if characters.peek().is_none() {
            return Ok(arguments);
        }
        let mut key = String::new();
        let mut value = String::new();
        let mut in_value = false;
        let mut in_quotes = false;
        while let Some(c) = characters.next() {
            match c {
                '"' if in_value => in_quotes = !in_quotes,
                '\\' if in_quotes => match characters.next() {
                    Some(escaped @ ('"' | '\\')) => value.push(escaped),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c if c.is_whitespace() && !in_quotes => break,
                '=' if !in_value => in_value = true,
                c if in_value => value.push(c),
                c => key.push(c),
            }
        }
        if in_quotes {
            return Err(BootArgumentError::UnterminatedQuote { key });
        }
        arguments.push(BootArgument { key, value });
    }
}

/// The value of the last `key` word, if any.
pub fn find(text: &str, key: &str) -> Result<Option<String>, BootArgumentError> {
    Ok(parse(text)?.into_iter().rev().find(|argument| argument.key == key).map(|argument| argument.value))
}

/// Quotes `commands` as a `sis.run` boot argument (the host side of [`parse`]).
pub fn run_argument(commands: &str) -> String {
    let mut quoted = String::from(RUN);
    quoted.push_str("=\"");
    for c in commands.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap().into_iter().map(|argument| (argument.key, argument.value)).collect()
    }

    #[test]
    fn quoted_run_value_keeps_spaces_and_semicolons() {
        assert_eq!(
            pairs(r#"sis.run="echo hi; version" quiet"#),
            [("sis.run".into(), "echo hi; version".into()), ("quiet".into(), String::new())]
        );
    }

    #[test]
    fn escapes_inside_quotes() {
        assert_eq!(find(r#"sis.run="echo \"a b\" \\x""#, RUN).unwrap().as_deref(), Some(r#"echo "a b" \x"#));
    }

    #[test]
    fn unterminated_quote_is_an_error_naming_the_key() {
        assert_eq!(
            parse(r#"a=1 sis.run="echo"#).unwrap_err(),
            BootArgumentError::UnterminatedQuote { key: "sis.run".into() }
        );
    }

    #[test]
    fn empty_and_whitespace_give_nothing() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  \t ").unwrap().is_empty());
        assert_eq!(find("console=ttyAMA0", RUN).unwrap(), None);
    }

    #[test]
    fn run_argument_round_trips() {
        let commands = r#"echo "quoted \ back"; version"#;
        assert_eq!(find(&run_argument(commands), RUN).unwrap().as_deref(), Some(commands));
    }

    #[test]
    fn last_occurrence_wins() {
        assert_eq!(find("sis.run=a sis.run=b", RUN).unwrap().as_deref(), Some("b"));
    }
}
