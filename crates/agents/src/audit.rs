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
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    records: VecDeque<AuditRecord>,
    dropped: u64,
}

impl AuditLog {
    /// Appends, dropping the oldest record when full.
    pub fn push(&mut self, record: AuditRecord) {
        if self.records.len() == AUDIT_CAPACITY {
            self.records.pop_front();
            self.dropped += 1;
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

    /// Takes every kept record out (for the kernel's global log).
    pub fn drain(&mut self) -> impl Iterator<Item = AuditRecord> + '_ {
        self.records.drain(..)
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
