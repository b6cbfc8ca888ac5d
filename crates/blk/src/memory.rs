//! A block device in host memory: the reference the other layers are tested against.

use alloc::vec;
use alloc::vec::Vec;

use crate::{check_request, BlockDevice, BlockError, SECTOR_SIZE};

/// A RAM disk that counts the requests it serves.
#[derive(Debug, Clone)]
pub struct MemoryDevice {
    bytes: Vec<u8>,
    /// Read requests served.
    pub reads: u64,
    /// Write requests served.
    pub writes: u64,
    /// Flushes served.
    pub flushes: u64,
}

impl MemoryDevice {
    /// A zero-filled device of `capacity_sectors` sectors.
    pub fn new(capacity_sectors: u64) -> Self {
        MemoryDevice { bytes: vec![0; capacity_sectors as usize * SECTOR_SIZE], reads: 0, writes: 0, flushes: 0 }
    }

    /// The device's contents.
    pub fn contents(&self) -> &[u8] {
        &self.bytes
    }

    /// One sector's contents (panics past the end: for tests).
    pub fn sector(&self, lba: u64) -> &[u8] {
        let start = lba as usize * SECTOR_SIZE;
        &self.bytes[start..start + SECTOR_SIZE]
    }
}

impl BlockDevice for MemoryDevice {
    fn capacity_sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }

    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, buffer.len())?;
        let start = lba as usize * SECTOR_SIZE;
        buffer.copy_from_slice(&self.bytes[start..start + buffer.len()]);
        self.reads += 1;
        Ok(())
    }

    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, data.len())?;
        let start = lba as usize * SECTOR_SIZE;
        self.bytes[start..start + data.len()].copy_from_slice(data);
        self.writes += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.flushes += 1;
        Ok(())
    }
}
