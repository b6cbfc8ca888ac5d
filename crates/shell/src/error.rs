//! Typed shell errors: a stable machine code and a message for people.

use alloc::string::String;
use core::fmt;

/// Stable error codes of the shell itself; commands add their own.
pub mod codes {
    /// The first word names no command.
    pub const UNKNOWN_COMMAND: &str = "unknown-command";
    /// A word after a command names none of its subcommands.
    pub const UNKNOWN_SUBCOMMAND: &str = "unknown-subcommand";
    /// A `--flag` the command does not accept.
    pub const UNKNOWN_FLAG: &str = "unknown-flag";
    /// A flag that takes a value was given none.
    pub const MISSING_VALUE: &str = "missing-value";
    /// A value that does not parse as the flag's type.
    pub const INVALID_VALUE: &str = "invalid-value";
    /// A number outside the accepted range (overflow included).
    pub const OUT_OF_RANGE: &str = "out-of-range";
    /// A required argument is absent.
    pub const MISSING_ARGUMENT: &str = "missing-argument";
    /// More positional arguments than the command takes.
    pub const UNEXPECTED_ARGUMENT: &str = "unexpected-argument";
    /// The same flag twice.
    pub const DUPLICATE_FLAG: &str = "duplicate-flag";
    /// A quote opened and never closed.
    pub const UNTERMINATED_QUOTE: &str = "unterminated-quote";
    /// A backslash at the very end of the line.
    pub const BAD_ESCAPE: &str = "bad-escape";
    /// Bytes that are not UTF-8.
    pub const INVALID_UTF8: &str = "invalid-utf8";
    /// A control byte inside the line.
    pub const CONTROL_BYTE: &str = "control-byte";
    /// A line longer than the editor's limit.
    pub const LINE_TOO_LONG: &str = "line-too-long";
    /// The caller lacks a capability the command needs.
    pub const PERMISSION_DENIED: &str = "permission-denied";
}

/// A command failure: stable `code` for programs, `message` for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    code: &'static str,
    message: String,
}

impl ShellError {
    /// Builds an error; `code` is kebab-case and never changes once published.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ShellError { code, message: message.into() }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ShellError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "error[{}]: {}", self.code, self.message)
    }
}

/// Longest piece of user input quoted back inside a message.
const QUOTE_LIMIT: usize = 64;

/// Makes user input safe to quote in a message: control characters as `\xNN`,
/// at most 64 characters, an ellipsis when cut.
pub fn sanitize(input: &str) -> String {
    let mut out = String::new();
    for (count, c) in input.chars().enumerate() {
        if count == QUOTE_LIMIT {
            out.push('…');
            break;
        }
        if c.is_control() {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&alloc::format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_code_and_message() {
        let error = ShellError::new(codes::UNKNOWN_FLAG, "unknown flag --x");
        assert_eq!(error.to_string(), "error[unknown-flag]: unknown flag --x");
    }

    #[test]
    fn sanitize_escapes_controls_and_truncates() {
        assert_eq!(sanitize("a\nb\x1b"), "a\\x0ab\\x1b");
        let long: String = core::iter::repeat_n('x', 100).collect();
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
    }
}
