//! The audit log on disk: a header, then append-only records, read back with the chain verified.
//!
//! ```text
//! header (52 bytes): "SISAUDIT" | u32 format version (1) | u64 sequence of the first record | [32] hash before it
//! record:            u32 content length L (1..=MAX_RECORD_CONTENT_BYTES) | L bytes content | [32] entry hash
//! ```
//! Integers are little-endian. The log ends at the end of the bytes or at a record length of 0, so a log
//! written to a zero-filled disk needs no length of its own. A record cut short by the end of the bytes (a write
//! torn by a crash) is reported as [`TornTail`] and not kept; the next record belongs at [`Decoded::end_offset`].

use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use super::entry::{decode_content, encode_content, Entry};
use super::{check, AuditLog, ChainError};

/// The first 8 bytes of a log.
pub const LOG_MAGIC: [u8; 8] = *b"SISAUDIT";
/// The format version this code writes and reads.
pub const LOG_FORMAT_VERSION: u32 = 1;
/// Bytes of the header.
pub const LOG_HEADER_BYTES: usize = 52;
/// Bytes of a record's content at most (an entry's content is at most 254).
pub const MAX_RECORD_CONTENT_BYTES: u32 = 512;

impl AuditLog {
    /// The header for what the log holds, then a record per entry held: a complete log file when nothing was
    /// dropped, and a verifiable one (from the oldest entry held) when something was.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(LOG_HEADER_BYTES + self.entries.len() * 160);
        bytes.extend_from_slice(&LOG_MAGIC);
        bytes.extend_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.base_sequence.to_le_bytes());
        bytes.extend_from_slice(&self.base_hash);
        for entry in &self.entries {
            bytes.extend_from_slice(&record(entry));
        }
        bytes
    }
}

impl AuditLog {
    /// The records of the entries held from `sequence` on, to append to a log on disk.
    pub fn records_since(&self, sequence: u64) -> Vec<u8> {
        self.entries.iter().filter(|entry| entry.sequence >= sequence).flat_map(record).collect()
    }
}

/// The record of `entry`, to append to a log on disk.
pub fn record(entry: &Entry) -> Vec<u8> {
    let content = encode_content(entry.sequence, &entry.event);
    let mut bytes = Vec::with_capacity(4 + content.len() + 32);
    bytes.extend_from_slice(&(content.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&content);
    bytes.extend_from_slice(&entry.hash);
    bytes
}

/// A log read back.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The log, holding the last `capacity` records (the rest counted as dropped).
    pub log: AuditLog,
    /// Records read and verified.
    pub records: u64,
    /// Where the next record goes: after the last whole record.
    pub end_offset: u64,
    /// A last record cut short, if there was one.
    pub torn_tail: Option<TornTail>,
}

/// A last record that the bytes end inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// Where it starts.
    pub offset: u64,
    /// How many of its bytes there are.
    pub bytes: u64,
}

/// Why a log could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// No log: the bytes are empty or start with 8 zero bytes (a fresh disk).
    NoLog,
    /// The bytes end inside the header.
    TruncatedHeader {
        /// Bytes there are.
        length: u64,
    },
    /// The first 8 bytes are not `SISAUDIT`.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedFormatVersion {
        /// The version found.
        version: u32,
    },
    /// A record's length is above [`MAX_RECORD_CONTENT_BYTES`].
    BadRecordLength {
        /// The record's index.
        index: u64,
        /// Where it starts.
        offset: u64,
        /// The length found.
        length: u32,
    },
    /// A record's content is not a well-formed entry.
    BadRecord {
        /// The record's index.
        index: u64,
        /// Where it starts.
        offset: u64,
    },
    /// The chain breaks at a record.
    Chain(ChainError),
}

impl DecodeError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::NoLog => "no-audit-log",
            DecodeError::TruncatedHeader { .. } => "audit-header-truncated",
            DecodeError::BadMagic => "audit-bad-magic",
            DecodeError::UnsupportedFormatVersion { .. } => "audit-unsupported-format-version",
            DecodeError::BadRecordLength { .. } => "audit-bad-record-length",
            DecodeError::BadRecord { .. } => "audit-bad-record",
            DecodeError::Chain(error) => error.code(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NoLog => formatter.write_str("no audit log on this disk"),
            DecodeError::TruncatedHeader { length } => {
                write!(formatter, "the audit log ends inside its {LOG_HEADER_BYTES}-byte header ({length} bytes)")
            }
            DecodeError::BadMagic => formatter.write_str("not an audit log (the magic is not SISAUDIT)"),
            DecodeError::UnsupportedFormatVersion { version } => {
                write!(formatter, "audit log format version {version} is not supported (this code reads 1)")
            }
            DecodeError::BadRecordLength { index, offset, length } => write!(
                formatter,
                "audit record {index} at byte {offset} claims {length} bytes; at most {MAX_RECORD_CONTENT_BYTES}"
            ),
            DecodeError::BadRecord { index, offset } => {
                write!(formatter, "audit record {index} at byte {offset} is not a well-formed entry")
            }
            DecodeError::Chain(error) => write!(formatter, "{error}"),
        }
    }
}

/// Reads a log written by [`AuditLog::encode`] and [`record`], verifying every record's sequence and hash.
pub fn decode(bytes: &[u8], capacity: usize) -> Result<Decoded, DecodeError> {
    if bytes.iter().take(LOG_MAGIC.len()).all(|&byte| byte == 0) {
        return Err(DecodeError::NoLog);
    }
    let header = bytes.get(..LOG_HEADER_BYTES).ok_or(DecodeError::TruncatedHeader { length: bytes.len() as u64 })?;
    if header[..8] != LOG_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != LOG_FORMAT_VERSION {
        return Err(DecodeError::UnsupportedFormatVersion { version });
    }
    let mut sequence = [0u8; 8];
    sequence.copy_from_slice(&header[12..20]);
    let mut previous = [0u8; 32];
    previous.copy_from_slice(&header[20..52]);
    let mut log = AuditLog::continuing(capacity, u64::from_le_bytes(sequence), previous);
    let mut offset = LOG_HEADER_BYTES;
    let mut index = 0u64;
    let mut torn_tail = None;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let torn = TornTail { offset: offset as u64, bytes: rest.len() as u64 };
        let Some(length) = rest.get(..4).map(|length| u32::from_le_bytes([length[0], length[1], length[2], length[3]]))
        else {
            torn_tail = Some(torn);
            break;
        };
        if length == 0 {
            break;
        }
        if length > MAX_RECORD_CONTENT_BYTES {
            return Err(DecodeError::BadRecordLength { index, offset: offset as u64, length });
        }
        // length <= 512: no overflow.
        let content_end = 4 + length as usize;
        let Some(record) = rest.get(..content_end + 32) else {
            torn_tail = Some(torn);
            break;
        };
        let (found_sequence, event) =
            decode_content(&record[4..content_end]).ok_or(DecodeError::BadRecord { index, offset: offset as u64 })?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&record[content_end..]);
        let entry = Entry { sequence: found_sequence, event, hash };
        check(index, log.next_sequence(), &log.head_hash(), &entry).map_err(DecodeError::Chain)?;
        log.push(entry);
        offset += record.len();
        index += 1;
    }
    Ok(Decoded { log, records: index, end_offset: offset as u64, torn_tail })
}
