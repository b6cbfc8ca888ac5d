//! Append-only logs kept in fixed regions at the end of the virtio-blk disk.
//!
//! Layout, counted back from the disk's last sector:
//!
//! | region | sectors | bytes | what |
//! | --- | --- | --- | --- |
//! | [`AUDIT`] | the last 4,096 | 2 MiB | the governance audit log (`llmctl audit`) |
//! | [`FEEDBACK`] | the 2,048 before them | 1 MiB | feedback on the meta-agent's decisions (`feedback`) |
//!
//! A region is only used on a disk of at least [`MIN_DISK_SECTORS`], so on small scratch disks the tests write
//! from sector 0 the regions never overlap that data. Each log keeps an image of its bytes in memory and writes
//! the sectors a change touches, then flushes. The log's format is its owner's; this module reads the region,
//! writes byte ranges of the image, and says where the log is kept.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;
use sis_blk::{BlockDevice, SECTOR_SIZE};
use sis_shell::ShellError;

use crate::commands::blk::disk;

/// Where a region lies: its distance from the disk's end and its size, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// What it holds, for messages.
    pub name: &'static str,
    /// Sectors from its first sector to the disk's end.
    pub sectors_from_end: u64,
    /// Its size.
    pub sectors: u64,
}

/// The governance audit log: the disk's last 4,096 sectors.
pub const AUDIT: Placement = Placement { name: "audit log", sectors_from_end: 4096, sectors: 4096 };
/// Decision feedback: the 2,048 sectors before the audit log.
pub const FEEDBACK: Placement = Placement { name: "feedback store", sectors_from_end: 6144, sectors: 2048 };
/// The smallest disk the regions are kept on: twice what they take.
pub const MIN_DISK_SECTORS: u64 = 2 * 6144;

/// Where a log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No disk is attached.
    NoDisk,
    /// Every change is written to the disk.
    Persisting,
    /// The region is full: new entries stay in memory.
    Full,
    /// The region was not used (it holds something else, or a read or write failed): entries stay in memory.
    Refused {
        /// Why, as a stable code.
        code: &'static str,
        /// Why, in words.
        message: String,
    },
}

/// A log's copy on the disk.
#[derive(Debug)]
pub struct Region {
    mode: Mode,
    placement: Placement,
    start_lba: u64,
    /// The log's bytes, as on the disk (zeros follow on the disk).
    image: Vec<u8>,
}

/// What a log's status reports about its region.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// `no-disk`, `persisting`, `full` or `refused`.
    pub state: &'static str,
    /// First sector of the region (when a disk is attached).
    pub start_lba: Option<u64>,
    /// Bytes of the log on the disk.
    pub bytes: u64,
    /// Bytes the region holds.
    pub capacity_bytes: u64,
    /// Why the disk is not used (`refused`): the code and the message.
    pub reason: Option<(&'static str, String)>,
}

impl Region {
    /// Reads the region at `placement`: `Ok(None)` without a disk, `Ok(Some((region, bytes)))` with the whole
    /// region's bytes (the region starts persisting with an empty image: the owner sets it with
    /// [`Region::set_image`] or refuses it with [`Region::refuse`]), or a region refused with the reason.
    pub fn read(placement: Placement) -> Result<Option<(Region, Vec<u8>)>, Region> {
        if !disk::attached() {
            return Ok(None);
        }
        let read = disk::with_disk(|disk| {
            let capacity = disk.stack.capacity_sectors();
            if capacity < MIN_DISK_SECTORS {
                return Err(ShellError::new(
                    "disk-too-small",
                    alloc::format!(
                        "the disk has {capacity} sectors; the {} is kept only on disks of {MIN_DISK_SECTORS} or more",
                        placement.name
                    ),
                ));
            }
            let start_lba = capacity - placement.sectors_from_end;
            let mut bytes = vec![0u8; placement.sectors as usize * SECTOR_SIZE];
            disk.stack.read_sectors(start_lba, &mut bytes).map_err(disk::shell_error)?;
            Ok((start_lba, bytes))
        });
        match read {
            Ok((start_lba, bytes)) => {
                Ok(Some((Region { mode: Mode::Persisting, placement, start_lba, image: Vec::new() }, bytes)))
            }
            Err(error) => Err(Region::refused(placement, 0, error.code(), String::from(error.message()))),
        }
    }

    /// A region that is not used: no disk.
    pub fn no_disk(placement: Placement) -> Region {
        Region { mode: Mode::NoDisk, placement, start_lba: 0, image: Vec::new() }
    }

    fn refused(placement: Placement, start_lba: u64, code: &'static str, message: String) -> Region {
        Region { mode: Mode::Refused { code, message }, placement, start_lba, image: Vec::new() }
    }

    /// Stops using the region, leaving the disk as it is.
    pub fn refuse(&mut self, code: &'static str, message: String) {
        self.mode = Mode::Refused { code, message };
        self.image.clear();
    }

    /// Takes `image` as the log's bytes on the disk (what was read back, or a fresh log's start).
    pub fn set_image(&mut self, image: Vec<u8>) {
        self.image = image;
    }

    /// Bytes of the log on the disk.
    pub fn len(&self) -> usize {
        self.image.len()
    }

    /// Bytes the region holds.
    pub fn capacity_bytes(&self) -> usize {
        self.placement.sectors as usize * SECTOR_SIZE
    }

    /// The region's status.
    pub fn status(&self) -> RegionStatus {
        let (state, reason) = match &self.mode {
            Mode::NoDisk => ("no-disk", None),
            Mode::Persisting => ("persisting", None),
            Mode::Full => ("full", None),
            Mode::Refused { code, message } => ("refused", Some((*code, message.clone()))),
        };
        RegionStatus {
            state,
            start_lba: (self.mode != Mode::NoDisk).then_some(self.start_lba),
            bytes: self.image.len() as u64,
            capacity_bytes: self.capacity_bytes() as u64,
            reason,
        }
    }

    /// Appends `bytes` to the log and writes them; a log that would outgrow the region becomes [`Mode::Full`]
    /// and the bytes are not written. Does nothing unless persisting.
    pub fn append(&mut self, bytes: &[u8]) {
        if self.mode != Mode::Persisting || bytes.is_empty() {
            return;
        }
        let start = self.image.len();
        let end = start.saturating_add(bytes.len());
        if end > self.capacity_bytes() {
            self.mode = Mode::Full;
            return;
        }
        self.image.extend_from_slice(bytes);
        self.write(start, end);
    }

    /// Replaces bytes `offset..` of the image with `bytes` (inside what the log holds) and writes them.
    pub fn overwrite(&mut self, offset: usize, bytes: &[u8]) {
        if self.mode != Mode::Persisting {
            return;
        }
        let end = offset.saturating_add(bytes.len());
        match self.image.get_mut(offset..end) {
            Some(target) => target.copy_from_slice(bytes),
            None => return,
        }
        self.write(offset, end);
    }

    /// Writes the sectors holding bytes `start..end` of the region from the image (zeros past its end) and
    /// flushes; a failure stops persisting.
    pub fn write(&mut self, start: usize, end: usize) {
        if self.mode != Mode::Persisting {
            return;
        }
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
