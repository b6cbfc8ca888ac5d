//! The audit log: every register, load, unload, inference, refusal and policy change, hash-chained.
//!
//! Each [`Entry`] gets the next sequence number and `hash = SHA-256(previous hash ‖ content)`, where content is
//! the entry's encoding without its hash and the previous hash of the very first entry is 32 zero bytes. A
//! modified entry breaks its own hash; a deleted, reordered or inserted one breaks the sequence at its position;
//! [`AuditLog::verify`] names the first index that breaks. (Someone who rewrites every later hash as well is
//! caught only against a head hash kept elsewhere: [`AuditLog::head_hash`].)
//!
//! **Memory.** The log keeps the last `capacity` entries (default [`DEFAULT_CAPACITY`]) and counts the ones it
//! let go in [`AuditLog::dropped`]; it keeps the hash before its oldest entry, so what it holds still verifies.
//! The whole history lives on disk: the kernel writes [`AuditLog::encode`] once and then appends each new
//! entry's [`record`]; [`decode`] reads it back after a reboot, verifying the whole chain, and keeps the last
//! `capacity` entries. The record format is in [`persist`] and docs/governance.md.

mod entry;
pub mod persist;
#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use entry::{Action, Entry, Event, Figures, Outcome, MAX_CODE_BYTES, MAX_ENTRY_NAME_BYTES};
pub use persist::{
    decode, record, DecodeError, Decoded, TornTail, LOG_FORMAT_VERSION, LOG_HEADER_BYTES, LOG_MAGIC,
    MAX_RECORD_CONTENT_BYTES,
};

use crate::artifact::ModelRef;
use crate::principal::Principal;

/// Entries a log keeps in memory by default.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Where the chain breaks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChainError {
    /// The position among the entries checked (0 = the oldest held, or the first record on disk).
    pub index: u64,
    /// What is wrong there.
    pub kind: ChainErrorKind,
}

/// How the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChainErrorKind {
    /// The entry's sequence number is not the one that follows (an entry deleted, inserted or moved).
    Sequence {
        /// The number that should be here.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// The entry's hash is not SHA-256(previous hash ‖ its content) (an entry or a hash modified).
    Hash,
}

impl ChainError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ChainErrorKind::Sequence { .. } => "audit-sequence-broken",
            ChainErrorKind::Hash => "audit-hash-mismatch",
        }
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ChainErrorKind::Sequence { expected, found } => write!(
                formatter,
                "audit entry at index {} has sequence {found}, expected {expected}: an entry was deleted, inserted or moved",
                self.index
            ),
            ChainErrorKind::Hash => write!(
                formatter,
                "audit entry at index {} does not match its hash: it or the entry before it was modified",
                self.index
            ),
        }
    }
}

/// Which entries a query returns: all conditions given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries by this principal.
    pub principal: Option<Principal>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only this model (every version, or the one given).
    pub model: Option<ModelRef>,
    /// Only entries at or after this time (ns).
    pub since_ns: Option<u64>,
    /// Only the most recent this many matches.
    pub limit: Option<usize>,
}

impl Filter {
    fn matches(&self, entry: &Entry) -> bool {
        let event = &entry.event;
        self.principal.is_none_or(|principal| principal == event.principal)
            && self.action.is_none_or(|action| action == event.action)
            && self.since_ns.is_none_or(|since| event.time_ns >= since)
            && self.model.as_ref().is_none_or(|wanted| {
                event.model.as_ref().is_some_and(|model| {
                    model.name == wanted.name && wanted.version.is_none_or(|version| version == model.version)
                })
            })
    }
}

/// The hash-chained log, holding its last `capacity` entries.
#[derive(Debug, Clone)]
pub struct AuditLog {
    entries: VecDeque<Entry>,
    capacity: usize,
    /// The hash before the oldest entry held (zeros at the start of the history).
    base_hash: [u8; 32],
    /// The sequence number of the oldest entry held (or of the next, when none is held).
    base_sequence: u64,
    dropped: u64,
}

impl Default for AuditLog {
    fn default() -> AuditLog {
        AuditLog::new(DEFAULT_CAPACITY)
    }
}

impl AuditLog {
    /// An empty log keeping at most `capacity` entries in memory (at least 1).
    pub fn new(capacity: usize) -> AuditLog {
        AuditLog::continuing(capacity, 0, [0; 32])
    }

    /// An empty log whose first entry will have `sequence` and chain to `previous_hash`.
    pub(crate) fn continuing(capacity: usize, sequence: u64, previous_hash: [u8; 32]) -> AuditLog {
        AuditLog {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            base_hash: previous_hash,
            base_sequence: sequence,
            dropped: 0,
        }
    }

    /// Appends `event` (a model name or code too long is cut at a character boundary); returns the entry.
    pub fn append(&mut self, mut event: Event) -> &Entry {
        if let Some(model) = &mut event.model {
            model.name.truncate(entry::cut(&model.name, MAX_ENTRY_NAME_BYTES).len());
        }
        if let Outcome::Refused { code } = &mut event.outcome {
            code.truncate(entry::cut(code, MAX_CODE_BYTES).len());
        }
        let sequence = self.next_sequence();
        let hash = chain(&self.head_hash(), &entry::encode_content(sequence, &event));
        self.push(Entry { sequence, event, hash });
        &self.entries[self.entries.len() - 1]
    }

    /// Adds a verified entry, letting the oldest go when full.
    fn push(&mut self, entry: Entry) {
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self.entries.pop_front() {
                self.base_hash = oldest.hash;
                self.base_sequence = oldest.sequence.saturating_add(1);
                self.dropped = self.dropped.saturating_add(1);
            }
        }
        self.entries.push_back(entry);
    }

    /// The entries held, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator {
        self.entries.iter()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries let go from memory (still on disk, if the kernel persisted them).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The sequence number the next entry gets.
    pub fn next_sequence(&self) -> u64 {
        self.base_sequence.saturating_add(self.entries.len() as u64)
    }

    /// The hash of the newest entry (the one the next entry chains to).
    pub fn head_hash(&self) -> [u8; 32] {
        self.entries.back().map_or(self.base_hash, |entry| entry.hash)
    }

    /// Checks every entry held against the sequence and the chain; `Err` names the first index that breaks.
    pub fn verify(&self) -> Result<(), ChainError> {
        let mut previous = self.base_hash;
        for (index, entry) in self.entries.iter().enumerate() {
            check(index as u64, self.base_sequence.saturating_add(index as u64), &previous, entry)?;
            previous = entry.hash;
        }
        Ok(())
    }

    /// The entries `filter` selects, oldest first.
    pub fn query(&self, filter: &Filter) -> Vec<&Entry> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut found: Vec<&Entry> =
            self.entries.iter().rev().filter(|entry| filter.matches(entry)).take(limit).collect();
        found.reverse();
        found
    }

    #[cfg(test)]
    pub(crate) fn entries_mut(&mut self) -> &mut VecDeque<Entry> {
        &mut self.entries
    }
}

/// SHA-256(previous ‖ content).
fn chain(previous: &[u8; 32], content: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(content);
    hasher.finalize().into()
}

/// Checks one entry at `index`, which should have `expected` for its sequence and chain to `previous`.
fn check(index: u64, expected: u64, previous: &[u8; 32], entry: &Entry) -> Result<(), ChainError> {
    if entry.sequence != expected {
        return Err(ChainError { index, kind: ChainErrorKind::Sequence { expected, found: entry.sequence } });
    }
    if chain(previous, &entry::encode_content(entry.sequence, &entry.event)) != entry.hash {
        return Err(ChainError { index, kind: ChainErrorKind::Hash });
    }
    Ok(())
}
