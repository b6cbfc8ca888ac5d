//! The audit log on the virtio-blk disk: the disk's last [`REGION_SECTORS`] sectors hold the crate's log format
//! (`sis_governance::audit`: a header, then one record per entry, zeros after the last), read back with the chain
//! verified when the governor is made, and appended after every operation.
//!
//! A region of zeros is a fresh disk: the header is written. A region holding something that is not a valid log
//! (another use of those sectors, a broken chain) is left as it is and the log stays in memory only, with the
//! reason in `llmctl audit`'s `persistence`. A record torn by a crash is dropped and its bytes zeroed. Nothing is
//! printed: the log is opened inside the first `llmctl` command, whose output must stay one JSON object.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;
use sis_blk::{BlockDevice, SECTOR_SIZE};
use sis_governance::audit::{decode, AuditLog, DecodeError, DEFAULT_CAPACITY};

use crate::commands::blk::disk;

/// Sectors at the end of the disk that belong to the audit log: 2 MiB, about 12,000 entries.
pub const REGION_SECTORS: u64 = 4096;

/// Where the log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// No disk is attached.
    NoDisk,
    /// Every entry is written to the disk.
    Persisting,
    /// The region is full: new entries stay in memory.
    Full,
    /// The disk's region was not used (not a log, or a failed read or write): entries stay in memory.
    Refused { code: &'static str, message: String },
}

/// The log's copy on the disk.
#[derive(Debug)]
pub struct DiskLog {
    mode: Mode,
    /// First sector of the region.
    start_lba: u64,
    /// The log's bytes, as on the disk.
    image: Vec<u8>,
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
    /// `no-disk`, `persisting`, `full` or `refused`.
    pub state: &'static str,
    /// First sector of the region (when a disk is attached).
    pub start_lba: Option<u64>,
    /// Bytes of the log on the disk.
    pub bytes: u64,
    /// Bytes the region holds.
    pub capacity_bytes: u64,
    /// Entries read back from the disk when the log was opened.
    pub recovered_entries: u64,
    /// Entries on the disk: the next written has this sequence number.
    pub persisted_sequence: u64,
    /// Bytes of a torn last record dropped (and zeroed) when the log was read back.
    pub torn_tail_bytes: u64,
    /// Why the disk is not used (`refused`): the code and the message.
    pub reason: Option<(&'static str, String)>,
}

impl DiskLog {
    fn without(mode: Mode, start_lba: u64) -> DiskLog {
        DiskLog { mode, start_lba, image: Vec::new(), persisted_sequence: 0, recovered_entries: 0, torn_tail_bytes: 0 }
    }

    /// Where the log is kept.
    pub fn status(&self) -> Status {
        let (state, reason) = match &self.mode {
            Mode::NoDisk => ("no-disk", None),
            Mode::Persisting => ("persisting", None),
            Mode::Full => ("full", None),
            Mode::Refused { code, message } => ("refused", Some((*code, message.clone()))),
        };
        Status {
            state,
            start_lba: (self.mode != Mode::NoDisk).then_some(self.start_lba),
            bytes: self.image.len() as u64,
            capacity_bytes: REGION_SECTORS * SECTOR_SIZE as u64,
            recovered_entries: self.recovered_entries,
            persisted_sequence: self.persisted_sequence,
            torn_tail_bytes: self.torn_tail_bytes,
            reason,
        }
    }
}

/// Reads the log from the disk (or starts one there); without a usable disk, a log in memory.
pub fn open() -> (AuditLog, DiskLog) {
    if !disk::attached() {
        return (AuditLog::new(DEFAULT_CAPACITY), DiskLog::without(Mode::NoDisk, 0));
    }
    let read = disk::with_disk(|disk| {
        let capacity = disk.stack.capacity_sectors();
        if capacity < REGION_SECTORS.saturating_mul(2) {
            return Err(sis_shell::ShellError::new(
                "disk-too-small",
                alloc::format!("the disk has {capacity} sectors; the audit log needs its last {REGION_SECTORS} and as many before them"),
            ));
        }
        let start_lba = capacity - REGION_SECTORS;
        let mut bytes = vec![0u8; REGION_SECTORS as usize * SECTOR_SIZE];
        disk.stack.read_sectors(start_lba, &mut bytes).map_err(disk::shell_error)?;
        Ok((start_lba, bytes))
    });
    let (start_lba, bytes) = match read {
        Ok(read) => read,
        Err(error) => return refused(0, error.code(), String::from(error.message())),
    };
    match decode(&bytes, DEFAULT_CAPACITY) {
        Err(DecodeError::NoLog) => {
            let log = AuditLog::new(DEFAULT_CAPACITY);
            let mut disk_log = DiskLog {
                mode: Mode::Persisting,
                start_lba,
                image: log.encode(),
                persisted_sequence: log.next_sequence(),
                recovered_entries: 0,
                torn_tail_bytes: 0,
            };
            let end = disk_log.image.len();
            disk_log.write(0, end);
            (log, disk_log)
        }
        Ok(decoded) => {
            let end = decoded.end_offset as usize;
            let mut disk_log = DiskLog {
                mode: Mode::Persisting,
                start_lba,
                image: bytes.get(..end).map(<[u8]>::to_vec).unwrap_or_default(),
                persisted_sequence: decoded.log.next_sequence(),
                recovered_entries: decoded.records,
                torn_tail_bytes: 0,
            };
            if let Some(torn) = decoded.torn_tail {
                disk_log.torn_tail_bytes = torn.bytes;
                disk_log.write(end, end.saturating_add(torn.bytes as usize));
            }
            (decoded.log, disk_log)
        }
        Err(error) => {
            refused(start_lba, error.code(), alloc::format!("{error}; the disk's audit region is left untouched"))
        }
    }
}

/// Writes the entries `log` holds beyond what the disk has.
pub fn append(disk_log: &mut DiskLog, log: &AuditLog) {
    if disk_log.mode != Mode::Persisting || log.next_sequence() <= disk_log.persisted_sequence {
        return;
    }
    let records = log.records_since(disk_log.persisted_sequence);
    let start = disk_log.image.len();
    let end = start.saturating_add(records.len());
    if end > REGION_SECTORS as usize * SECTOR_SIZE {
        disk_log.mode = Mode::Full;
        return;
    }
    disk_log.image.extend_from_slice(&records);
    disk_log.persisted_sequence = log.next_sequence();
    disk_log.write(start, end);
}

fn refused(start_lba: u64, code: &'static str, message: String) -> (AuditLog, DiskLog) {
    (AuditLog::new(DEFAULT_CAPACITY), DiskLog::without(Mode::Refused { code, message }, start_lba))
}

impl DiskLog {
    /// Writes the sectors holding bytes `start..end` of the region from the image (zeros past its end) and
    /// flushes; a failure stops persisting.
    fn write(&mut self, start: usize, end: usize) {
        let first_sector = start / SECTOR_SIZE;
        let last_sector = end.div_ceil(SECTOR_SIZE).max(first_sector + 1);
        let mut data = vec![0u8; (last_sector - first_sector) * SECTOR_SIZE];
        let from = first_sector * SECTOR_SIZE;
        if let Some(image) = self.image.get(from..) {
            let copied = image.len().min(data.len());
            data[..copied].copy_from_slice(&image[..copied]);
        }
        let lba = self.start_lba + first_sector as u64;
        let written = disk::with_disk(|disk| {
            disk.stack.write_sectors(lba, &data).map_err(disk::shell_error)?;
            disk.stack.flush().map_err(disk::shell_error)
        });
        if let Err(error) = written {
            self.mode = Mode::Refused { code: error.code(), message: String::from(error.message()) };
        }
    }
}
