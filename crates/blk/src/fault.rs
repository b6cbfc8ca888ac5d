//! Fault injection in front of a block device: stalls that make every request wait, and seeded errors.
//!
//! A stall holds every request that arrives before it ends until it ends,
//! then lets it through: requests are delayed, never dropped, so no write is
//! lost. An error probability fails each request (read, write or flush) with
//! `percent` % chance, drawn from a generator seeded by the caller, without
//! touching the device: the failure is returned as
//! [`BlockError::Injected`], never hidden. Requests that are refused for
//! bad arguments are refused before any fault is drawn, so they change
//! nothing, not even the random stream.

use sis_hal::{SeededRandom, Sleep};

use crate::{check_request, check_run, BlockDevice, BlockError, Operation, SECTOR_SIZE};

/// Highest error probability, percent.
pub const MAX_ERROR_PERCENT: u64 = 100;

/// The faults in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultState {
    /// When the stall ends (clock nanoseconds), if one is set and not yet over.
    pub stall_until_ns: Option<u64>,
    /// Chance that a request fails, percent.
    pub error_percent: u64,
    /// Seed of the error generator (meaningful while `error_percent` > 0).
    pub error_seed: u64,
}

/// Fault counters since the device was attached (`clear` keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Well-formed requests that reached the injector.
    pub requests: u64,
    /// Requests that had to wait for a stall to end.
    pub stalled_requests: u64,
    /// Total time requests waited on stalls, ns.
    pub stall_wait_ns: u64,
    /// Requests failed on purpose.
    pub injected_errors: u64,
}

/// A [`BlockDevice`] wrapper that injects stalls and errors.
#[derive(Debug)]
pub struct FaultInjector<D, C> {
    device: D,
    clock: C,
    state: FaultState,
    random: SeededRandom,
    stats: FaultStats,
}

impl<D: BlockDevice, C: Sleep> FaultInjector<D, C> {
    /// Wraps `device`; `clock` is read for stall deadlines and slept on while a stall lasts.
    pub fn new(device: D, clock: C) -> Self {
        FaultInjector {
            device,
            clock,
            state: FaultState::default(),
            random: SeededRandom::new(0),
            stats: FaultStats::default(),
        }
    }

    /// The wrapped device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The wrapped device, for requests that must not see faults.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Stalls every request from now for `duration_ns`; returns when the stall ends (clock ns).
    pub fn stall_for(&mut self, duration_ns: u64) -> u64 {
        let until = self.clock.now_ns().saturating_add(duration_ns);
        self.state.stall_until_ns = Some(until);
        until
    }

    /// Fails each request with `percent` % chance from now, drawing from a generator seeded with `seed`.
    pub fn set_error_percent(&mut self, percent: u64, seed: u64) -> Result<(), u64> {
        if percent > MAX_ERROR_PERCENT {
            return Err(percent);
        }
        self.state.error_percent = percent;
        self.state.error_seed = seed;
        self.random = SeededRandom::new(seed);
        Ok(())
    }

    /// Ends every fault: no stall, no errors. Counters are kept.
    pub fn clear(&mut self) {
        self.state = FaultState::default();
    }

    /// The faults in force now (an elapsed stall is reported as none).
    pub fn state(&self) -> FaultState {
        let now = self.clock.now_ns();
        FaultState { stall_until_ns: self.state.stall_until_ns.filter(|&until| until > now), ..self.state }
    }

    /// Counters.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// Whether any fault is in force (a stall not yet waited out, or an error probability).
    fn faulty(&self) -> bool {
        self.state.stall_until_ns.is_some() || self.state.error_percent > 0
    }

    /// Waits out a stall, then draws the error; `Err` means the request must fail.
    fn admit(&mut self, operation: Operation) -> Result<(), BlockError> {
        self.stats.requests += 1;
        if let Some(until) = self.state.stall_until_ns {
            let arrived = self.clock.now_ns();
            if arrived < until {
                self.stats.stalled_requests += 1;
                self.clock.sleep_until_ns(until);
                self.stats.stall_wait_ns += self.clock.now_ns().saturating_sub(arrived);
            }
            self.state.stall_until_ns = None;
        }
        if self.state.error_percent > 0 && self.random.chance_percent(self.state.error_percent) {
            self.stats.injected_errors += 1;
            return Err(BlockError::Injected { operation });
        }
        Ok(())
    }
}

impl<D: BlockDevice, C: Sleep> BlockDevice for FaultInjector<D, C> {
    fn capacity_sectors(&self) -> u64 {
        self.device.capacity_sectors()
    }

    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, buffer.len())?;
        self.admit(Operation::Read)?;
        self.device.read_sectors(lba, buffer)
    }

    /// With no fault in force, the whole run goes to the device (each request counted); otherwise request by
    /// request, each admitted as a single one is.
    fn write_run(&mut self, lba: u64, data: &[u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        if self.faulty() {
            check_run(self.capacity_sectors(), lba, data.len(), request_bytes)?;
            for (index, chunk) in data.chunks(request_bytes).enumerate() {
                self.write_sectors(lba + (index * request_bytes / SECTOR_SIZE) as u64, chunk)?;
            }
            return Ok(());
        }
        check_run(self.capacity_sectors(), lba, data.len(), request_bytes)?;
        self.stats.requests += data.len().div_ceil(request_bytes) as u64;
        self.device.write_run(lba, data, request_bytes, depth)
    }

    /// As [`write_run`](BlockDevice::write_run).
    fn read_run(&mut self, lba: u64, buffer: &mut [u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        if self.faulty() {
            check_run(self.capacity_sectors(), lba, buffer.len(), request_bytes)?;
            for (index, chunk) in buffer.chunks_mut(request_bytes).enumerate() {
                self.read_sectors(lba + (index * request_bytes / SECTOR_SIZE) as u64, chunk)?;
            }
            return Ok(());
        }
        check_run(self.capacity_sectors(), lba, buffer.len(), request_bytes)?;
        self.stats.requests += buffer.len().div_ceil(request_bytes) as u64;
        self.device.read_run(lba, buffer, request_bytes, depth)
    }

    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, data.len())?;
        self.admit(Operation::Write)?;
        self.device.write_sectors(lba, data)
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.admit(Operation::Flush)?;
        self.device.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockCache, MemoryDevice, Pattern, SECTOR_SIZE};
    use sis_hal::{Clock, FakeClock};

    fn injector(capacity_sectors: u64) -> FaultInjector<MemoryDevice, FakeClock> {
        FaultInjector::new(MemoryDevice::new(capacity_sectors), FakeClock::new(1_000))
    }

    #[test]
    fn a_run_writes_and_reads_what_single_requests_would_and_meets_the_same_faults() {
        let mut clean = injector(64);
        let data: Vec<u8> = (0..40 * SECTOR_SIZE).map(|i| (i * 13 % 251) as u8).collect();
        // 40 sectors in requests of 16: 16, 16 and a last one of 8.
        clean.write_run(4, &data, 16 * SECTOR_SIZE, 8).unwrap();
        assert_eq!(&clean.device().contents()[4 * SECTOR_SIZE..44 * SECTOR_SIZE], &data[..]);
        assert_eq!((clean.device().writes, clean.stats().requests), (3, 3));
        let mut back = vec![0u8; data.len()];
        clean.read_run(4, &mut back, 16 * SECTOR_SIZE, 8).unwrap();
        assert_eq!(back, data);
        assert_eq!((clean.device().reads, clean.stats().requests), (3, 6));
        assert_eq!(
            clean.write_run(60, &data, 16 * SECTOR_SIZE, 8),
            Err(BlockError::OutOfRange { lba: 60, sectors: 40, capacity_sectors: 64 })
        );
        assert_eq!(clean.write_run(0, &data, 100, 8), Err(BlockError::BadLength { bytes: 100 }));
        assert_eq!(clean.device().writes, 3, "refused runs wrote nothing");

        // Every request fails: the run stops at its first one, as a loop of single requests would.
        let mut failing = injector(64);
        failing.set_error_percent(100, 1).unwrap();
        assert_eq!(
            failing.write_run(0, &data, 16 * SECTOR_SIZE, 8),
            Err(BlockError::Injected { operation: Operation::Write })
        );
        assert_eq!((failing.device().writes, failing.stats().injected_errors), (0, 1));
    }

    #[test]
    fn during_a_stall_writers_wait_until_it_ends_and_no_write_is_lost() {
        let mut faulty = injector(64);
        let until = faulty.stall_for(2_000_000_000);
        assert_eq!(until, 2_000_001_000);
        assert_eq!(faulty.state().stall_until_ns, Some(until));
        faulty.clock().advance(500_000_000);
        for lba in 0..10 {
            faulty.write_sectors(lba, &Pattern::Seeded(1).sector(lba)).unwrap();
            if lba == 0 {
                assert_eq!(faulty.clock().now_ns(), until, "the first writer returned only when the stall ended");
            }
        }
        for lba in 0..10 {
            assert_eq!(faulty.device().sector(lba), Pattern::Seeded(1).sector(lba));
        }
        let stats = faulty.stats();
        assert_eq!(
            stats,
            FaultStats { requests: 10, stalled_requests: 1, stall_wait_ns: 1_500_000_000, injected_errors: 0 }
        );
        assert_eq!(faulty.device().writes, 10);
        assert_eq!(faulty.state().stall_until_ns, None);
    }

    #[test]
    fn a_stall_that_has_already_ended_delays_nothing() {
        let mut faulty = injector(8);
        faulty.stall_for(100);
        faulty.clock().advance(100);
        faulty.write_sectors(0, &[1; SECTOR_SIZE]).unwrap();
        assert_eq!(faulty.stats().stalled_requests, 0);
        assert_eq!(faulty.clock().now_ns(), 1_100);
    }

    #[test]
    fn injected_errors_have_exact_counts_under_a_fixed_seed_and_failed_writes_change_nothing() {
        let mut faulty = injector(1024);
        faulty.set_error_percent(25, 42).unwrap();
        let mut failed = Vec::new();
        for lba in 0..1000 {
            match faulty.write_sectors(lba, &Pattern::Byte(0xee).sector(lba)) {
                Ok(()) => {}
                Err(BlockError::Injected { operation: Operation::Write }) => failed.push(lba),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        // The same stream drawn independently decides the same requests.
        let mut reference = SeededRandom::new(42);
        let expected: Vec<u64> = (0..1000).filter(|_| reference.chance_percent(25)).collect();
        assert_eq!(failed, expected);
        assert_eq!(failed.len(), 237, "seed 42 at 25 % over 1,000 writes");
        assert_eq!(faulty.stats().injected_errors, 237);
        assert_eq!(faulty.device().writes, 1000 - 237);
        for lba in 0..1000 {
            let expected = if failed.contains(&lba) { [0; SECTOR_SIZE] } else { [0xee; SECTOR_SIZE] };
            assert_eq!(faulty.device().sector(lba), expected, "sector {lba}");
        }
    }

    #[test]
    fn clear_ends_every_fault_and_keeps_the_counters() {
        let mut faulty = injector(8);
        faulty.set_error_percent(100, 1).unwrap();
        faulty.stall_for(1_000);
        assert_eq!(faulty.flush(), Err(BlockError::Injected { operation: Operation::Flush }));
        faulty.stall_for(1_000);
        faulty.clear();
        assert_eq!(faulty.state(), FaultState::default());
        let mut buffer = [0u8; SECTOR_SIZE];
        faulty.read_sectors(0, &mut buffer).unwrap();
        assert_eq!(
            faulty.stats(),
            FaultStats { requests: 2, stalled_requests: 1, stall_wait_ns: 1_000, injected_errors: 1 }
        );
    }

    #[test]
    fn bad_requests_and_bad_settings_change_nothing() {
        let mut faulty = injector(8);
        faulty.set_error_percent(50, 9).unwrap();
        assert_eq!(faulty.set_error_percent(101, 3), Err(101));
        assert_eq!(faulty.state().error_percent, 50);
        assert_eq!(faulty.state().error_seed, 9);
        let mut buffer = [0u8; SECTOR_SIZE];
        assert_eq!(
            faulty.read_sectors(8, &mut buffer),
            Err(BlockError::OutOfRange { lba: 8, sectors: 1, capacity_sectors: 8 })
        );
        assert_eq!(faulty.stats(), FaultStats::default(), "refused before a fault was drawn");
        let mut reference = SeededRandom::new(9);
        let first = reference.chance_percent(50);
        assert_eq!(faulty.read_sectors(0, &mut buffer).is_err(), first, "the stream was not advanced");
    }

    #[test]
    fn under_the_cache_an_injected_error_reaches_the_caller_and_leaves_the_cache_clean() {
        let mut cache = BlockCache::new(injector(16), 8);
        cache.write_sectors(4, &[3; SECTOR_SIZE]).unwrap();
        cache.device_mut().set_error_percent(100, 5).unwrap();
        assert_eq!(
            cache.write_sectors(4, &[4; SECTOR_SIZE]),
            Err(BlockError::Injected { operation: Operation::Write })
        );
        assert!(!cache.contains(4));
        cache.device_mut().clear();
        let mut buffer = [0u8; SECTOR_SIZE];
        cache.read_sectors(4, &mut buffer).unwrap();
        assert_eq!(buffer, [3; SECTOR_SIZE], "the device kept the last write it accepted");
    }
}
