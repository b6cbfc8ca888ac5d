//! Scratch disk images: a raw file of a fixed size in a private temporary directory, removed on drop.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::HarnessError;

/// Bytes in one sector of a SIS disk.
pub const SECTOR_BYTES: u64 = 512;
/// Size of a scratch disk when nothing else is asked for: 16 MiB.
pub const DEFAULT_DISK_BYTES: u64 = 16 << 20;

/// A zero-filled raw image for [`crate::QemuConfig::disk_image`]; the directory goes when this is dropped.
#[derive(Debug)]
pub struct ScratchDisk {
    directory: tempfile::TempDir,
    path: PathBuf,
    size_bytes: u64,
}

impl ScratchDisk {
    /// Creates `disk.img` of `size_bytes` (a whole number of sectors) in a new temporary directory.
    pub fn create(size_bytes: u64) -> Result<ScratchDisk, HarnessError> {
        if size_bytes == 0 || !size_bytes.is_multiple_of(SECTOR_BYTES) {
            return Err(HarnessError::Io {
                action: "creating a disk image",
                source: std::io::Error::other(format!("{size_bytes} bytes is not a whole number of sectors")),
            });
        }
        let io = |action| move |source| HarnessError::Io { action, source };
        let directory =
            tempfile::Builder::new().prefix("sis-disk-").tempdir().map_err(io("creating a temporary directory"))?;
        let path = directory.path().join("disk.img");
        let file = File::create(&path).map_err(io("creating a disk image"))?;
        file.set_len(size_bytes).map_err(io("sizing a disk image"))?;
        Ok(ScratchDisk { directory, path, size_bytes })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding it.
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Reads `sectors` sectors from `lba` straight from the file (what the guest left on the host).
    pub fn read_sectors(&self, lba: u64, sectors: u64) -> Result<Vec<u8>, HarnessError> {
        let io = |source| HarnessError::Io { action: "reading the disk image", source };
        let mut file = File::open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(lba * SECTOR_BYTES)).map_err(io)?;
        let mut bytes = vec![0u8; (sectors * SECTOR_BYTES) as usize];
        file.read_exact(&mut bytes).map_err(io)?;
        Ok(bytes)
    }

    /// Writes `bytes` into the file from sector `lba` (what the guest finds at its next boot).
    pub fn write_sectors(&self, lba: u64, bytes: &[u8]) -> Result<(), HarnessError> {
        let io = |source| HarnessError::Io { action: "writing the disk image", source };
        let mut file = std::fs::OpenOptions::new().write(true).open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(lba * SECTOR_BYTES)).map_err(io)?;
        file.write_all(bytes).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_disk_has_its_size_reads_back_zeros_and_goes_away() {
        let disk = ScratchDisk::create(1 << 20).unwrap();
        assert_eq!(std::fs::metadata(disk.path()).unwrap().len(), 1 << 20);
        assert_eq!(disk.read_sectors(2047, 1).unwrap(), vec![0u8; 512]);
        assert!(disk.read_sectors(2048, 1).is_err());
        disk.write_sectors(3, &[7u8; 600]).unwrap();
        let back = disk.read_sectors(3, 2).unwrap();
        assert_eq!((&back[..600], &back[600..]), (&[7u8; 600][..], &[0u8; 424][..]));
        let directory = disk.directory().to_path_buf();
        drop(disk);
        assert!(!directory.exists());
        assert!(ScratchDisk::create(1000).is_err());
    }
}
