//! Why the log refused a source name, a configuration or a message.

use core::fmt;

use crate::{MAX_BURST, MAX_INTERVAL_NS, MAX_NAME_BYTES};

/// A refused request; nothing in the log changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KlogError {
    /// The source name is empty.
    EmptyName,
    /// The source name is longer than [`MAX_NAME_BYTES`].
    NameTooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// The source name holds a character other than ASCII letters, digits, `-` and `_`.
    BadNameCharacter {
        /// Byte offset of the first such character.
        offset: usize,
    },
    /// The source table is full and the name is not in it.
    TooManySources {
        /// How many sources the table holds.
        limit: usize,
    },
    /// No source has this name (for requests that only read or change an existing source).
    UnknownSource,
    /// A rate limit with a window of 0 ns.
    ZeroInterval,
    /// A window longer than [`MAX_INTERVAL_NS`].
    IntervalTooLong {
        /// The window asked for, ns.
        interval_ns: u64,
    },
    /// A rate limit letting no message through.
    ZeroBurst,
    /// A burst above [`MAX_BURST`].
    BurstTooLarge {
        /// The burst asked for.
        burst: u32,
    },
}

impl KlogError {
    /// A stable kebab-case code for programs (the shell's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            KlogError::EmptyName | KlogError::NameTooLong { .. } | KlogError::BadNameCharacter { .. } => {
                "bad-source-name"
            }
            KlogError::TooManySources { .. } => "too-many-sources",
            KlogError::UnknownSource => "unknown-source",
            KlogError::ZeroInterval
            | KlogError::IntervalTooLong { .. }
            | KlogError::ZeroBurst
            | KlogError::BurstTooLarge { .. } => "out-of-range",
        }
    }
}

impl fmt::Display for KlogError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KlogError::EmptyName => formatter.write_str("the source name is empty"),
            KlogError::NameTooLong { length } => {
                write!(formatter, "the source name is {length} bytes long; at most {MAX_NAME_BYTES} are allowed")
            }
            KlogError::BadNameCharacter { offset } => write!(
                formatter,
                "the source name has a character other than ASCII letters, digits, '-' and '_' at byte {offset}"
            ),
            KlogError::TooManySources { limit } => {
                write!(formatter, "the log already has {limit} sources, the most it keeps")
            }
            KlogError::UnknownSource => formatter.write_str("no source has this name"),
            KlogError::ZeroInterval => formatter.write_str("the rate-limit window must be longer than 0 ns"),
            KlogError::IntervalTooLong { interval_ns } => {
                write!(
                    formatter,
                    "a rate-limit window of {interval_ns} ns is longer than the {MAX_INTERVAL_NS} ns allowed"
                )
            }
            KlogError::ZeroBurst => formatter.write_str("a burst of 0 would suppress every message; use `off` instead"),
            KlogError::BurstTooLarge { burst } => {
                write!(formatter, "a burst of {burst} is more than the {MAX_BURST} allowed")
            }
        }
    }
}
