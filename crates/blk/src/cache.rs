//! A small write-through sector cache with least-recently-used eviction.
//!
//! Reads are served from memory when the sector is cached; consecutive misses
//! go to the device as one request. Writes go to the device first and are
//! cached only once the device accepted them, so the cache never holds data
//! the disk does not: nothing is lost if the machine stops, and a failed
//! write leaves no trace in the cache. `flush` asks the device to make its
//! writes durable; `invalidate` empties the cache so the next reads come from
//! the device (what `blkctl verify` does before reading back).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::{check_request, BlockDevice, BlockError, SECTOR_SIZE};

/// Cache counters and size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Sectors it can hold.
    pub capacity_sectors: usize,
    /// Sectors it holds now.
    pub cached_sectors: usize,
    /// Sectors read from the cache.
    pub hits: u64,
    /// Sectors read that had to come from the device.
    pub misses: u64,
    /// Sectors dropped to make room.
    pub evictions: u64,
    /// Read requests sent to the device.
    pub device_reads: u64,
    /// Write requests sent to the device.
    pub device_writes: u64,
    /// Flushes sent to the device.
    pub flushes: u64,
}

struct Entry {
    data: [u8; SECTOR_SIZE],
    last_use: u64,
}

/// A write-through LRU cache of whole sectors in front of a [`BlockDevice`].
pub struct BlockCache<D> {
    device: D,
    entries: BTreeMap<u64, Entry>,
    capacity_sectors: usize,
    use_counter: u64,
    stats: CacheStats,
}

impl<D> core::fmt::Debug for BlockCache<D> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("BlockCache")
            .field("cached_sectors", &self.entries.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<D: BlockDevice> BlockCache<D> {
    /// A cache of at most `capacity_sectors` sectors (at least one) in front of `device`.
    pub fn new(device: D, capacity_sectors: usize) -> Self {
        let capacity_sectors = capacity_sectors.max(1);
        BlockCache {
            device,
            entries: BTreeMap::new(),
            capacity_sectors,
            use_counter: 0,
            stats: CacheStats { capacity_sectors, ..CacheStats::default() },
        }
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        CacheStats { cached_sectors: self.entries.len(), ..self.stats }
    }

    /// The device behind the cache.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device behind the cache, for requests that must bypass it.
    ///
    /// Writing through this leaves stale sectors in the cache: call
    /// [`invalidate_range`](Self::invalidate_range) for what was written.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Drops every cached sector; returns how many there were.
    pub fn invalidate(&mut self) -> usize {
        let dropped = self.entries.len();
        self.entries.clear();
        dropped
    }

    /// Drops the cached copies of sectors `lba..lba + sectors`; returns how many were cached.
    pub fn invalidate_range(&mut self, lba: u64, sectors: u64) -> usize {
        let end = lba.saturating_add(sectors);
        let doomed: Vec<u64> = self.entries.range(lba..end).map(|(&key, _)| key).collect();
        for key in &doomed {
            self.entries.remove(key);
        }
        doomed.len()
    }

    /// Whether sector `lba` is cached.
    pub fn contains(&self, lba: u64) -> bool {
        self.entries.contains_key(&lba)
    }

    fn touch(&mut self) -> u64 {
        self.use_counter += 1;
        self.use_counter
    }

    /// Caches `data` as sector `lba`, evicting the least recently used sector when full.
    fn insert(&mut self, lba: u64, data: &[u8]) {
        let last_use = self.touch();
        if let Some(entry) = self.entries.get_mut(&lba) {
            entry.data.copy_from_slice(data);
            entry.last_use = last_use;
            return;
        }
        if self.entries.len() >= self.capacity_sectors {
            let victim = self.entries.iter().min_by_key(|(_, entry)| entry.last_use).map(|(&key, _)| key);
            if let Some(victim) = victim {
                self.entries.remove(&victim);
                self.stats.evictions += 1;
            }
        }
        let mut copy = [0u8; SECTOR_SIZE];
        copy.copy_from_slice(data);
        self.entries.insert(lba, Entry { data: copy, last_use });
    }
}

impl<D: BlockDevice> BlockDevice for BlockCache<D> {
    fn capacity_sectors(&self) -> u64 {
        self.device.capacity_sectors()
    }

    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        let sectors = check_request(self.capacity_sectors(), lba, buffer.len())? as usize;
        let mut index = 0;
        while index < sectors {
            let sector_lba = lba + index as u64;
            let last_use = self.touch();
            if let Some(entry) = self.entries.get_mut(&sector_lba) {
                entry.last_use = last_use;
                buffer[index * SECTOR_SIZE..(index + 1) * SECTOR_SIZE].copy_from_slice(&entry.data);
                self.stats.hits += 1;
                index += 1;
                continue;
            }
            // A run of misses goes to the device as one request.
            let run_end =
                (index + 1..sectors).find(|&i| self.entries.contains_key(&(lba + i as u64))).unwrap_or(sectors);
            let run = &mut buffer[index * SECTOR_SIZE..run_end * SECTOR_SIZE];
            self.stats.device_reads += 1;
            self.device.read_sectors(sector_lba, run)?;
            self.stats.misses += (run_end - index) as u64;
            for miss in index..run_end {
                let data = &buffer[miss * SECTOR_SIZE..(miss + 1) * SECTOR_SIZE];
                // Copy out first: `insert` borrows self mutably.
                let mut sector = [0u8; SECTOR_SIZE];
                sector.copy_from_slice(data);
                self.insert(lba + miss as u64, &sector);
            }
            index = run_end;
        }
        Ok(())
    }

    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError> {
        let sectors = check_request(self.capacity_sectors(), lba, data.len())?;
        self.stats.device_writes += 1;
        if let Err(error) = self.device.write_sectors(lba, data) {
            // What the device holds for these sectors is unknown now: forget them.
            self.invalidate_range(lba, sectors);
            return Err(error);
        }
        for (index, sector) in data.chunks_exact(SECTOR_SIZE).enumerate() {
            self.insert(lba + index as u64, sector);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.stats.flushes += 1;
        self.device.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryDevice, Operation, Pattern};

    fn pattern_bytes(pattern: Pattern, lba: u64, sectors: u64) -> Vec<u8> {
        (lba..lba + sectors).flat_map(|sector| pattern.sector(sector)).collect()
    }

    #[test]
    fn patterns_written_read_back_identical_after_flush_from_the_device_itself() {
        let mut cache = BlockCache::new(MemoryDevice::new(256), 16);
        let pattern = Pattern::Seeded(42);
        let data = pattern_bytes(pattern, 10, 40);
        cache.write_sectors(10, &data).unwrap();
        // Write-through: the device already holds every byte.
        assert_eq!(&cache.device().contents()[10 * SECTOR_SIZE..50 * SECTOR_SIZE], &data[..]);
        cache.flush().unwrap();
        assert_eq!(cache.device().flushes, 1);
        assert_eq!(cache.invalidate(), 16);
        let reads_before = cache.device().reads;
        let mut back = vec![0u8; data.len()];
        cache.read_sectors(10, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(cache.device().reads, reads_before + 1, "one request for a run of misses");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.device_writes, stats.flushes), (0, 40, 1, 1));
    }

    #[test]
    fn cached_reads_do_not_reach_the_device() {
        let mut cache = BlockCache::new(MemoryDevice::new(64), 8);
        cache.write_sectors(3, &Pattern::Byte(7).sector(3)).unwrap();
        let mut buffer = [0u8; SECTOR_SIZE];
        for _ in 0..5 {
            cache.read_sectors(3, &mut buffer).unwrap();
        }
        assert_eq!(buffer, [7; SECTOR_SIZE]);
        assert_eq!(cache.device().reads, 0);
        assert_eq!(cache.stats().hits, 5);
    }

    #[test]
    fn the_least_recently_used_sector_is_evicted_first() {
        let mut cache = BlockCache::new(MemoryDevice::new(64), 4);
        let mut buffer = [0u8; SECTOR_SIZE];
        for lba in 0..4 {
            cache.read_sectors(lba, &mut buffer).unwrap();
        }
        cache.read_sectors(0, &mut buffer).unwrap(); // 0 is now the most recent; 1 the least.
        cache.read_sectors(9, &mut buffer).unwrap();
        assert_eq!(cache.stats().evictions, 1);
        assert!(!cache.contains(1));
        for lba in [0, 2, 3, 9] {
            assert!(cache.contains(lba), "{lba}");
        }
        assert_eq!(cache.stats().cached_sectors, 4);
        let reads = cache.device().reads;
        cache.read_sectors(1, &mut buffer).unwrap();
        assert_eq!(cache.device().reads, reads + 1, "an evicted sector comes from the device again");
        assert!(!cache.contains(2), "2 was then the least recently used");
    }

    #[test]
    fn a_mixed_read_splits_into_runs_of_misses_around_hits() {
        let mut cache = BlockCache::new(MemoryDevice::new(64), 32);
        let pattern = Pattern::Seeded(3);
        let image = pattern_bytes(pattern, 0, 16);
        cache.device_mut().write_sectors(0, &image).unwrap();
        let mut one = [0u8; SECTOR_SIZE];
        cache.read_sectors(5, &mut one).unwrap();
        cache.read_sectors(6, &mut one).unwrap();
        let reads = cache.device().reads;
        let mut all = vec![0u8; 16 * SECTOR_SIZE];
        cache.read_sectors(0, &mut all).unwrap();
        assert_eq!(all, image);
        assert_eq!(cache.device().reads, reads + 2, "0..5 and 7..16");
        assert_eq!(cache.stats().hits, 2);
    }

    #[test]
    fn a_failed_write_leaves_neither_device_nor_cache_changed_and_bad_requests_change_nothing() {
        struct Failing(MemoryDevice);
        impl BlockDevice for Failing {
            fn capacity_sectors(&self) -> u64 {
                self.0.capacity_sectors()
            }
            fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
                self.0.read_sectors(lba, buffer)
            }
            fn write_sectors(&mut self, _: u64, _: &[u8]) -> Result<(), BlockError> {
                Err(BlockError::Device { operation: Operation::Write, reason: "test" })
            }
            fn flush(&mut self) -> Result<(), BlockError> {
                Ok(())
            }
        }
        let mut cache = BlockCache::new(Failing(MemoryDevice::new(8)), 4);
        let mut buffer = [0u8; SECTOR_SIZE];
        cache.read_sectors(2, &mut buffer).unwrap();
        assert!(cache.contains(2));
        let error = cache.write_sectors(2, &[9; SECTOR_SIZE]).unwrap_err();
        assert_eq!(error.code(), "device-error");
        assert!(!cache.contains(2), "the cached copy of a sector whose write failed is dropped");
        cache.read_sectors(2, &mut buffer).unwrap();
        assert_eq!(buffer, [0; SECTOR_SIZE]);

        let before = cache.stats();
        assert_eq!(
            cache.read_sectors(8, &mut buffer),
            Err(BlockError::OutOfRange { lba: 8, sectors: 1, capacity_sectors: 8 })
        );
        assert_eq!(cache.write_sectors(0, &[1; 100]), Err(BlockError::BadLength { bytes: 100 }));
        assert_eq!(cache.stats(), before);
    }
}
