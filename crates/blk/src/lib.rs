//! The SIS block layer: a device trait over 512-byte sectors, and the layers stacked on it.
//!
//! The kernel's stack is `BlockCache<FaultInjector<virtio-blk>>`: the cache
//! serves repeated reads from memory and writes through to the device; the
//! fault injector sits where the device is, so a stall or an injected error
//! looks to the cache exactly like a slow or failing disk. Everything here is
//! safe, portable code tested on the host against [`MemoryDevice`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod cache;
mod fault;
mod memory;
mod pattern;

pub use cache::{BlockCache, CacheStats};
pub use fault::{FaultInjector, FaultState, FaultStats, MAX_ERROR_PERCENT};
pub use memory::MemoryDevice;
pub use pattern::{fnv1a64, Pattern, PatternError};

use core::fmt;

/// Bytes in one sector, the unit of every transfer.
pub const SECTOR_SIZE: usize = 512;

/// A disk of fixed-size sectors.
///
/// Buffers are a non-zero whole number of sectors; a request that does not
/// fit the device is refused with [`BlockError::OutOfRange`] before anything
/// is transferred (see [`check_request`]).
pub trait BlockDevice {
    /// Size of the device in sectors.
    fn capacity_sectors(&self) -> u64;

    /// Reads `buffer.len() / SECTOR_SIZE` sectors starting at `lba`.
    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError>;

    /// Writes `data.len() / SECTOR_SIZE` sectors starting at `lba`.
    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError>;

    /// Makes every completed write durable on the device's backing store.
    fn flush(&mut self) -> Result<(), BlockError>;

    /// Writes `data` from `lba` onward in requests of `request_bytes` (the last one shorter if `data` ends first),
    /// keeping up to `depth` of them in flight where the device can; the default sends them one after another.
    /// The first error ends the run (requests already in flight complete first).
    fn write_run(&mut self, lba: u64, data: &[u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        let _ = depth;
        check_run(self.capacity_sectors(), lba, data.len(), request_bytes)?;
        for (index, chunk) in data.chunks(request_bytes).enumerate() {
            self.write_sectors(lba + (index * request_bytes / SECTOR_SIZE) as u64, chunk)?;
        }
        Ok(())
    }

    /// Reads into `buffer` from `lba` onward in requests of `request_bytes`, as [`write_run`](Self::write_run).
    fn read_run(&mut self, lba: u64, buffer: &mut [u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        let _ = depth;
        check_run(self.capacity_sectors(), lba, buffer.len(), request_bytes)?;
        for (index, chunk) in buffer.chunks_mut(request_bytes).enumerate() {
            self.read_sectors(lba + (index * request_bytes / SECTOR_SIZE) as u64, chunk)?;
        }
        Ok(())
    }
}

/// Checks a run of requests: the whole range fits the device and the request size is a whole number of sectors.
pub fn check_run(capacity_sectors: u64, lba: u64, bytes: usize, request_bytes: usize) -> Result<u64, BlockError> {
    if request_bytes == 0 || !request_bytes.is_multiple_of(SECTOR_SIZE) {
        return Err(BlockError::BadLength { bytes: request_bytes });
    }
    check_request(capacity_sectors, lba, bytes)
}

/// Which kind of request an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A read.
    Read,
    /// A write.
    Write,
    /// A flush.
    Flush,
}

impl Operation {
    /// The operation as a lower-case word.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Flush => "flush",
        }
    }
}

/// Why a block request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The request reaches past the end of the device (or overflows).
    OutOfRange {
        /// First sector asked for.
        lba: u64,
        /// Sectors asked for.
        sectors: u64,
        /// Sectors the device has.
        capacity_sectors: u64,
    },
    /// The buffer is empty or not a whole number of sectors.
    BadLength {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The device reported a failure (the reason as the driver names it).
    Device {
        /// The operation that failed.
        operation: Operation,
        /// The driver's reason.
        reason: &'static str,
    },
    /// The fault injector failed the request on purpose.
    Injected {
        /// The operation that was failed.
        operation: Operation,
    },
}

impl BlockError {
    /// A stable kebab-case code for programs.
    pub fn code(&self) -> &'static str {
        match self {
            BlockError::OutOfRange { .. } => "out-of-range",
            BlockError::BadLength { .. } => "bad-length",
            BlockError::Device { .. } => "device-error",
            BlockError::Injected { .. } => "injected-error",
        }
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::OutOfRange { lba, sectors, capacity_sectors } => write!(
                formatter,
                "sectors {lba}..{} are beyond the device, which has {capacity_sectors} sectors (LBA 0..={})",
                lba.saturating_add(*sectors),
                capacity_sectors.saturating_sub(1)
            ),
            BlockError::BadLength { bytes } => {
                write!(formatter, "a buffer of {bytes} bytes is not a non-zero multiple of {SECTOR_SIZE}")
            }
            BlockError::Device { operation, reason } => {
                write!(formatter, "the device failed the {}: {reason}", operation.name())
            }
            BlockError::Injected { operation } => {
                write!(formatter, "injected {} error (blkctl fault error is active)", operation.name())
            }
        }
    }
}

/// Checks a request of `bytes` starting at `lba` against a device of `capacity_sectors`;
/// returns the number of sectors.
pub fn check_request(capacity_sectors: u64, lba: u64, bytes: usize) -> Result<u64, BlockError> {
    if bytes == 0 || !bytes.is_multiple_of(SECTOR_SIZE) {
        return Err(BlockError::BadLength { bytes });
    }
    let sectors = (bytes / SECTOR_SIZE) as u64;
    match lba.checked_add(sectors) {
        Some(end) if end <= capacity_sectors => Ok(sectors),
        _ => Err(BlockError::OutOfRange { lba, sectors, capacity_sectors }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_against_length_and_capacity() {
        assert_eq!(check_request(8, 0, 512), Ok(1));
        assert_eq!(check_request(8, 6, 1024), Ok(2));
        assert_eq!(check_request(8, 7, 1024), Err(BlockError::OutOfRange { lba: 7, sectors: 2, capacity_sectors: 8 }));
        assert_eq!(check_request(8, 0, 0), Err(BlockError::BadLength { bytes: 0 }));
        assert_eq!(check_request(8, 0, 513), Err(BlockError::BadLength { bytes: 513 }));
        assert_eq!(
            check_request(8, u64::MAX, 512),
            Err(BlockError::OutOfRange { lba: u64::MAX, sectors: 1, capacity_sectors: 8 })
        );
    }

    #[test]
    fn errors_have_stable_codes_and_say_what_happened() {
        let error = BlockError::OutOfRange { lba: 10, sectors: 1, capacity_sectors: 8 };
        assert_eq!(error.code(), "out-of-range");
        assert_eq!(error.to_string(), "sectors 10..11 are beyond the device, which has 8 sectors (LBA 0..=7)");
        let injected = BlockError::Injected { operation: Operation::Write };
        assert_eq!(injected.code(), "injected-error");
        assert_eq!(injected.to_string(), "injected write error (blkctl fault error is active)");
    }
}
