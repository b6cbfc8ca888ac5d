//! Sector test patterns: one byte repeated, or a seeded pseudo-random stream per sector.
//!
//! The host tests use the same functions to compute what they expect to find
//! in the disk image, so guest and host agree on every byte by construction.

use alloc::string::String;
use core::fmt;

use sis_hal::SeededRandom;

use crate::SECTOR_SIZE;

/// Mixes the sector address into a seeded pattern's generator seed (the 64-bit golden ratio).
const LBA_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// What to write into a sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Every byte of the sector has this value (`0xab`, `171`).
    Byte(u8),
    /// `seed:N`: the sector at LBA `l` holds the 64 values drawn from
    /// `SeededRandom::new(N ^ (l * 0x9e3779b97f4a7c15))`, each as 8 little-endian bytes.
    Seeded(u64),
}

/// Why a pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl Pattern {
    /// Parses `0xNN` or a decimal byte (0..=255), or `seed:N` (decimal or `0x` hex, 64-bit).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if let Some(seed) = text.strip_prefix("seed:") {
            return parse_u64(seed)
                .map(Pattern::Seeded)
                .ok_or_else(|| PatternError(alloc::format!("'{seed}' after seed: is not a 64-bit integer")));
        }
        match parse_u64(text) {
            Some(value) if value <= 0xff => Ok(Pattern::Byte(value as u8)),
            Some(value) => Err(PatternError(alloc::format!("byte value {value} is above 255"))),
            None => Err(PatternError(String::from("a pattern is a byte (0..=255 or 0x00..=0xff) or seed:N"))),
        }
    }

    /// Fills `sector` (one sector's bytes) with this pattern as it is at `lba`.
    pub fn fill(&self, lba: u64, sector: &mut [u8]) {
        match *self {
            Pattern::Byte(value) => sector.fill(value),
            Pattern::Seeded(seed) => {
                let mut random = SeededRandom::new(seed ^ lba.wrapping_mul(LBA_MIX));
                for chunk in sector.chunks_mut(8) {
                    let word = random.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
            }
        }
    }

    /// This pattern's sector at `lba`.
    pub fn sector(&self, lba: u64) -> [u8; SECTOR_SIZE] {
        let mut sector = [0u8; SECTOR_SIZE];
        self.fill(lba, &mut sector);
        sector
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Byte(value) => write!(formatter, "{value:#04x}"),
            Pattern::Seeded(seed) => write!(formatter, "seed:{seed}"),
        }
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// FNV-1a, 64-bit: a checksum for reporting sector contents compactly.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    sis_hal::fnv1a64_extend(sis_hal::FNV1A64_EMPTY, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_from_bytes_and_seeds_and_refuse_the_rest() {
        assert_eq!(Pattern::parse("0xab"), Ok(Pattern::Byte(0xab)));
        assert_eq!(Pattern::parse("171"), Ok(Pattern::Byte(171)));
        assert_eq!(Pattern::parse("0"), Ok(Pattern::Byte(0)));
        assert_eq!(Pattern::parse("seed:7"), Ok(Pattern::Seeded(7)));
        assert_eq!(Pattern::parse("seed:0xffffffffffffffff"), Ok(Pattern::Seeded(u64::MAX)));
        assert_eq!(Pattern::parse("256").unwrap_err().0, "byte value 256 is above 255");
        assert_eq!(Pattern::parse("seed:x").unwrap_err().0, "'x' after seed: is not a 64-bit integer");
        for bad in ["", "0x", "-1", "abc", "1.5", "seed:", "0x1ff"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn seeded_sectors_depend_on_seed_and_lba_and_repeat_exactly() {
        let a = Pattern::Seeded(7).sector(3);
        assert_eq!(a, Pattern::Seeded(7).sector(3));
        assert_ne!(a, Pattern::Seeded(7).sector(4));
        assert_ne!(a, Pattern::Seeded(8).sector(3));
        let mut random = SeededRandom::new(7 ^ 3u64.wrapping_mul(LBA_MIX));
        assert_eq!(a[..8], random.next_u64().to_le_bytes());
        assert_eq!(Pattern::Byte(0x5a).sector(9), [0x5a; SECTOR_SIZE]);
        assert_eq!(Pattern::Seeded(7).to_string(), "seed:7");
        assert_eq!(Pattern::Byte(10).to_string(), "0x0a");
    }

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
