//! The audit trail: one record per host call, allowed or not.

use crate::protocol::{Call, ErrorCode};
use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt::Write;
use sha2::{Digest, Sha256};

/// Records an agent keeps before the oldest are dropped (the kernel drains them into its log sooner).
pub const AUDIT_CAPACITY: usize = 512;

/// One host call as audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The agent's name.
    pub agent: String,
    /// The call, when the header named a known one.
    pub call: Option<Call>,
    /// The call id from the request header (0 when the header was unreadable).
    pub call_id: u32,
    /// SHA-256 of the whole request message as the agent sent it.
    pub digest: [u8; 32],
    /// The status returned to the agent.
    pub outcome: ErrorCode,
    /// Fuel charged for the call.
    pub fuel_cost: u64,
}

impl AuditRecord {
    /// Whether the call was refused by a check rather than served: its capabilities did not allow it
    /// ([`ErrorCode::Denied`]) or it came over the slice's rate limit ([`ErrorCode::RateLimited`]).
    pub fn is_refused(&self) -> bool {
        matches!(self.outcome, ErrorCode::Denied | ErrorCode::RateLimited)
    }

    /// The first 8 bytes of the digest in hex, enough to tell calls apart in a listing.
    pub fn short_digest(&self) -> String {
        let mut text = String::with_capacity(16);
        for byte in &self.digest[..8] {
            let _ = write!(text, "{byte:02x}");
        }
        text
    }
}

/// A bounded log of records, oldest first.
#[derive(Debug, Clone)]
pub struct AuditLog {
    records: VecDeque<AuditRecord>,
    capacity: usize,
    dropped: u64,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::with_capacity(AUDIT_CAPACITY)
    }
}

impl AuditLog {
    /// An empty log that keeps at most `capacity` records (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { records: VecDeque::new(), capacity: capacity.max(1), dropped: 0 }
    }

    /// Appends, dropping the oldest record when full.
    pub fn push(&mut self, record: AuditRecord) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.records.push_back(record);
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &AuditRecord> {
        self.records.iter()
    }

    /// How many records were dropped for lack of room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every kept record and the dropped count; returns how many records were kept.
    pub fn clear(&mut self) -> usize {
        let kept = self.records.len();
        self.records.clear();
        self.dropped = 0;
        kept
    }

    /// Takes every kept record out (for the kernel's global log).
    pub fn drain(&mut self) -> impl Iterator<Item = AuditRecord> + '_ {
        self.records.drain(..)
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
