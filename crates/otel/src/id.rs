//! Trace and span ids: fixed-size byte strings, written as lowercase hex, drawn from a seeded generator.

use core::fmt;

use sis_hal::SeededRandom;

/// A trace's id: 16 bytes, never all zero (OTLP calls an all-zero id invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId([u8; 16]);

/// A span's id: 8 bytes, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanId([u8; 8]);

/// Why a hex string is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// It has `found` characters; an id of this kind has `expected`.
    Length {
        /// Characters an id has in hex.
        expected: usize,
        /// Characters given.
        found: usize,
    },
    /// Character number `index` (from 0) is not a lowercase hex digit.
    NotLowercaseHex {
        /// Its position.
        index: usize,
    },
    /// Every byte is zero: OTLP reserves that value for "no id".
    AllZero,
}

impl fmt::Display for HexError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length { expected, found } => {
                write!(formatter, "an id has {expected} hex characters, this one has {found}")
            }
            HexError::NotLowercaseHex { index } => {
                write!(formatter, "character {index} is not a lowercase hex digit (0-9, a-f)")
            }
            HexError::AllZero => write!(formatter, "an all-zero id is invalid"),
        }
    }
}

macro_rules! id_type {
    ($name:ident, $bytes:expr) => {
        impl $name {
            /// Bytes in the id.
            pub const BYTES: usize = $bytes;

            /// The id with these bytes, or `None` when they are all zero.
            pub fn from_bytes(bytes: [u8; $bytes]) -> Option<Self> {
                if bytes.iter().all(|byte| *byte == 0) {
                    None
                } else {
                    Some($name(bytes))
                }
            }

            /// Its bytes.
            pub fn to_bytes(self) -> [u8; $bytes] {
                self.0
            }

            /// Reads the lowercase hex form ([`Self::BYTES`] × 2 characters) that [`fmt::Display`] writes.
            pub fn from_hex(text: &str) -> Result<Self, HexError> {
                let mut bytes = [0u8; $bytes];
                decode_hex(text, &mut bytes)?;
                Self::from_bytes(bytes).ok_or(HexError::AllZero)
            }
        }

        impl fmt::Display for $name {
            /// Lowercase hex, two characters a byte, most significant first: OTLP/JSON's form of an id.
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in self.0 {
                    write!(formatter, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    };
}

id_type!(TraceId, 16);
id_type!(SpanId, 8);

fn decode_hex(text: &str, bytes: &mut [u8]) -> Result<(), HexError> {
    let expected = bytes.len() * 2;
    let found = text.chars().count();
    if found != expected {
        return Err(HexError::Length { expected, found });
    }
    let mut digits = text.chars().enumerate().map(|(index, character)| {
        character.to_digit(16).filter(|_| !character.is_ascii_uppercase()).ok_or(HexError::NotLowercaseHex { index })
    });
    let mut next = || digits.next().unwrap_or(Err(HexError::Length { expected, found }));
    for byte in bytes.iter_mut() {
        // Each digit is below 16, so both fit in a byte.
        *byte = (next()? << 4 | next()?) as u8;
    }
    Ok(())
}

/// Draws trace and span ids from a seeded generator: the same seed gives the same ids in the same order.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    random: SeededRandom,
}

impl IdGenerator {
    /// A generator whose ids depend only on `seed`.
    pub fn new(seed: u64) -> Self {
        IdGenerator { random: SeededRandom::new(seed) }
    }

    /// The next trace id (two 64-bit draws, big-endian; drawn again in the 2^-128 case that both are zero).
    pub fn trace_id(&mut self) -> TraceId {
        loop {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.random.next_u64().to_be_bytes());
            bytes[8..].copy_from_slice(&self.random.next_u64().to_be_bytes());
            if let Some(id) = TraceId::from_bytes(bytes) {
                return id;
            }
        }
    }

    /// The next span id (one 64-bit draw, big-endian; drawn again if it is zero).
    pub fn span_id(&mut self) -> SpanId {
        loop {
            if let Some(id) = SpanId::from_bytes(self.random.next_u64().to_be_bytes()) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_lowercase_hex_and_read_back() {
        let trace = TraceId::from_bytes([
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
        ])
        .unwrap();
        assert_eq!(trace.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(TraceId::from_hex("5b8efff798038103d269b633813fc60c"), Ok(trace));
        let span = SpanId::from_bytes([0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]).unwrap();
        assert_eq!(span.to_string(), "eee19b7ec3c1b174");
        assert_eq!(SpanId::from_hex("eee19b7ec3c1b174"), Ok(span));
        assert_eq!(SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, 1]).unwrap().to_string(), "0000000000000001");
    }

    #[test]
    fn malformed_hex_is_refused_with_the_reason() {
        assert_eq!(SpanId::from_hex("eee19b7ec3c1b17"), Err(HexError::Length { expected: 16, found: 15 }));
        assert_eq!(TraceId::from_hex("eee19b7ec3c1b174"), Err(HexError::Length { expected: 32, found: 16 }));
        assert_eq!(SpanId::from_hex("EEE19B7EC3C1B174"), Err(HexError::NotLowercaseHex { index: 0 }));
        assert_eq!(SpanId::from_hex("eee19b7ec3c1b17g"), Err(HexError::NotLowercaseHex { index: 15 }));
        assert_eq!(SpanId::from_hex("0000000000000000"), Err(HexError::AllZero));
        assert_eq!(SpanId::from_bytes([0; 8]), None);
        assert_eq!(TraceId::from_bytes([0; 16]), None);
        // Multi-byte characters are counted as characters in the message, never split.
        assert_eq!(SpanId::from_hex("ééééééééé"), Err(HexError::Length { expected: 16, found: 9 }));
        assert_eq!(SpanId::from_hex("eee19b7ec3c1b17é"), Err(HexError::NotLowercaseHex { index: 15 }));
    }

    #[test]
    fn the_same_seed_gives_the_same_ids_and_another_seed_other_ids() {
        let draw = |seed| {
            let mut ids = IdGenerator::new(seed);
            (ids.trace_id(), ids.span_id(), ids.span_id())
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // The ids are the generator's draws in order, big-endian.
        let mut random = SeededRandom::new(7);
        let (trace, first, second) = draw(7);
        let high = random.next_u64().to_be_bytes();
        let low = random.next_u64().to_be_bytes();
        assert_eq!(trace.to_bytes()[..8], high);
        assert_eq!(trace.to_bytes()[8..], low);
        assert_eq!(first.to_bytes(), random.next_u64().to_be_bytes());
        assert_eq!(second.to_bytes(), random.next_u64().to_be_bytes());
    }

    #[test]
    fn ten_thousand_span_ids_from_one_seed_are_distinct() {
        let mut ids = IdGenerator::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(ids.span_id()));
        }
    }
}
