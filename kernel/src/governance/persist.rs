//! The audit log on the virtio-blk disk: the disk's last 4,096 sectors ([`AUDIT`], 2 MiB, about 12,000 entries)
//! hold the crate's log format (`sis_governance::audit`: a header, then one record per entry, zeros after the
//! last), read back with the chain verified when the governor is made, and appended after every operation.
//!
//! A region of zeros is a fresh disk: the header is written. A region holding something that is not a valid log
//! (another use of those sectors, a broken chain) is left as it is and the log stays in memory only, with the
//! reason in `llmctl audit`'s `persistence`. A record torn by a crash is dropped and its bytes zeroed. Nothing is
//! printed: the log is opened inside the first `llmctl` command, whose output must stay one JSON object.

use serde::Serialize;
use sis_governance::audit::{decode, AuditLog, DecodeError, DEFAULT_CAPACITY};

use crate::disk_region::{Region, RegionStatus, AUDIT};

/// The log's copy on the disk.
#[derive(Debug)]
pub struct DiskLog {
    region: Region,
    /// The next entry to write has this sequence number.
    persisted_sequence: u64,
    /// Entries read back when the log was opened.
    recovered_entries: u64,
    /// Bytes of a torn last record dropped (and zeroed) when the log was opened.
    torn_tail_bytes: u64,
}

/// What `llmctl audit` reports about the disk.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The region: `state`, `start_lba`, `bytes`, `capacity_bytes`, `reason`.
    #[serde(flatten)]
    pub region: RegionStatus,
    /// Entries read back from the disk when the log was opened.
    pub recovered_entries: u64,
    /// Entries on the disk: the next written has this sequence number.
    pub persisted_sequence: u64,
    /// Bytes of a torn last record dropped (and zeroed) when the log was read back.
    pub torn_tail_bytes: u64,
}

impl DiskLog {
    fn without(region: Region) -> DiskLog {
        DiskLog { region, persisted_sequence: 0, recovered_entries: 0, torn_tail_bytes: 0 }
    }

    /// Where the log is kept.
    pub fn status(&self) -> Status {
        Status {
            region: self.region.status(),
            recovered_entries: self.recovered_entries,
            persisted_sequence: self.persisted_sequence,
            torn_tail_bytes: self.torn_tail_bytes,
        }
    }
}

/// Reads the log from the disk (or starts one there); without a usable disk, a log in memory.
pub fn open() -> (AuditLog, DiskLog) {
    let (mut region, bytes) = match Region::read(AUDIT) {
        Ok(Some(read)) => read,
        Ok(None) => return (AuditLog::new(DEFAULT_CAPACITY), DiskLog::without(Region::no_disk(AUDIT))),
        Err(refused) => return (AuditLog::new(DEFAULT_CAPACITY), DiskLog::without(refused)),
    };
    match decode(&bytes, DEFAULT_CAPACITY) {
        Err(DecodeError::NoLog) => {
            let log = AuditLog::new(DEFAULT_CAPACITY);
            let image = log.encode();
            let end = image.len();
            region.set_image(image);
            region.write(0, end);
            let persisted_sequence = log.next_sequence();
            (log, DiskLog { region, persisted_sequence, recovered_entries: 0, torn_tail_bytes: 0 })
        }
        Ok(decoded) => {
            let end = decoded.end_offset as usize;
            region.set_image(bytes.get(..end).map(<[u8]>::to_vec).unwrap_or_default());
            let mut disk_log = DiskLog {
                region,
                persisted_sequence: decoded.log.next_sequence(),
                recovered_entries: decoded.records,
                torn_tail_bytes: 0,
            };
            if let Some(torn) = decoded.torn_tail {
                disk_log.torn_tail_bytes = torn.bytes;
                disk_log.region.write(end, end.saturating_add(torn.bytes as usize));
            }
            (decoded.log, disk_log)
        }
        Err(error) => {
            region.refuse(error.code(), alloc::format!("{error}; the disk's audit region is left untouched"));
            (AuditLog::new(DEFAULT_CAPACITY), DiskLog::without(region))
        }
    }
}

/// Writes the entries `log` holds beyond what the disk has.
pub fn append(disk_log: &mut DiskLog, log: &AuditLog) {
    if log.next_sequence() <= disk_log.persisted_sequence {
        return;
    }
    let records = log.records_since(disk_log.persisted_sequence);
    let before = disk_log.region.len();
    disk_log.region.append(&records);
    if disk_log.region.len() > before {
        disk_log.persisted_sequence = log.next_sequence();
    }
}
