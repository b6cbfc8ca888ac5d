//! `blkctl`: the virtio-blk disk through its cache and fault injector: status, read, write, flush, verify, bench, fault.

mod bench;
pub mod disk;
mod fault;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use alloc::sync::Arc;
use serde_json::{json, Value};
use sis_blk::{fnv1a64, BlockDevice, Pattern, SECTOR_SIZE};
use sis_hal::Clock;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread;
use sis_platform::time::{self, PlatformClock};
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::format;
use disk::{shell_error, with_disk, Disk};

/// Most sectors `read` shows at once.
const MAX_READ_SECTORS: u64 = 8;
/// Most sectors one `write` writes (1 MiB).
const MAX_WRITE_SECTORS: u64 = 2048;
/// Most sectors one `verify` covers (8 MiB).
const MAX_VERIFY_SECTORS: u64 = 16_384;
/// Sectors per request in `verify` (64 KiB).
const VERIFY_CHUNK_SECTORS: u64 = 128;
/// Most writer threads of `verify --writers`.
const MAX_WRITERS: u64 = 8;
/// Stack of a writer thread.
const WRITER_STACK_BYTES: u64 = 64 * 1024;
/// Mismatching LBAs listed by `verify`.
const MISMATCHES_LISTED: usize = 16;
/// Error code: `verify` read back something other than it wrote.
pub const VERIFY_MISMATCH: &str = "verify-mismatch";

const LBA: ValueKind = ValueKind::U64 { min: 0, max: u64::MAX };
const SEED: ValueKind = ValueKind::U64 { min: 0, max: u64::MAX };

fn parse_pattern(text: &str) -> Result<ArgValue, String> {
    Pattern::parse(text).map(|_| ArgValue::Str(String::from(text))).map_err(|error| error.0)
}

const PATTERN: ValueKind = ValueKind::Custom { value_name: "PATTERN", parse: parse_pattern };

/// `blkctl`.
pub static BLKCTL: CommandSpec<Kernel> = CommandSpec {
    name: "blkctl",
    summary: "The virtio-blk disk: status, read, write, flush, verify, bench, fault injection",
    description: "Requests go through a 64-sector write-through cache, then the fault injector, then virtio-blk (completions by interrupt). Sectors are 512 bytes; LBAs start at 0. PATTERN is a byte (0..=255 or 0x00..=0xff) that fills every byte of each sector, or seed:N, where the sector at LBA l holds the 64 values of SeededRandom(N ^ (l * 0x9e3779b97f4a7c15)) as little-endian u64s. Without a disk every subcommand but status fails with no-device.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "status",
            summary: "Show the device, its transport and interrupt, cache and fault counters (or that there is no device)",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "read",
            summary: "Read sectors through the cache and show them in hex with an FNV-1a checksum",
            description: "",
            args: &[
                ArgSpec::positional("lba", LBA, "first sector").required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_READ_SECTORS }, "sectors").default("1"),
            ],
            subcommands: &[],
            handler: Some(read),
        },
        CommandSpec {
            name: "write",
            summary: "Write PATTERN to sectors in one request (through the cache to the device)",
            description: "The write returns once the device has completed it; during a stall it waits for the stall to end (waited_ns).",
            args: &[
                ArgSpec::positional("lba", LBA, "first sector").required(),
                ArgSpec::positional("pattern", PATTERN, "byte value or seed:N").required(),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_WRITE_SECTORS }, "sectors").default("1"),
            ],
            subcommands: &[],
            handler: Some(write),
        },
        CommandSpec {
            name: "flush",
            summary: "Send a virtio FLUSH (QEMU flushes the image file); --drop also empties the cache",
            description: "",
            args: &[ArgSpec::flag("drop", ValueKind::Switch, "empty the cache too, so later reads come from the device")],
            subcommands: &[],
            handler: Some(flush),
        },
        CommandSpec {
            name: "verify",
            summary: "Write seed:N over a range, flush, empty the cache, read back from the device and compare",
            description: "Fails with verify-mismatch when any sector differs; the seed defaults to the clock and is printed. With --writers W, W threads write disjoint parts at once; a thread that finds the disk in use waits for it (counted in waits), so during a stall every writer waits and no write is lost.",
            args: &[
                ArgSpec::flag("lba", LBA, "first sector").default("0"),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: MAX_VERIFY_SECTORS }, "sectors").default("256"),
                ArgSpec::flag("seed", SEED, "pattern seed (default: the clock)"),
                ArgSpec::flag(
                    "writers",
                    ValueKind::U64 { min: 1, max: MAX_WRITERS },
                    "threads writing disjoint parts of the range at once, each taking the disk per chunk",
                )
                .default("1"),
            ],
            subcommands: &[],
            handler: Some(verify),
        },
        bench::BENCH,
        fault::FAULT,
    ],
    handler: None,
};

fn status(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let devices: Vec<Value> = kernel
        .virtio_devices
        .iter()
        .map(|device| {
            json!({ "base": device.base, "intid": device.intid, "device_id": device.device_id, "version": device.version })
        })
        .collect();
    let failures: Vec<Value> =
        kernel.virtio_failures.iter().map(|(base, reason)| json!({ "base": base, "reason": reason })).collect();
    let transports = alloc::format!("{} virtio device(s) found on {} transport(s)", devices.len(), kernel.virtio_slots);
    if !disk::attached() {
        return Ok(Reply::new(
            alloc::format!("no block device attached ({transports})"),
            json!({ "attached": false, "virtio_transports": kernel.virtio_slots, "virtio_devices": devices, "virtio_failures": failures }),
        ));
    }
    with_disk(|disk| {
        let now = PlatformClock.now_ns();
        let driver = disk.driver();
        let driver_stats = driver.stats();
        let capacity = disk.stack.capacity_sectors();
        let cache = disk.stack.stats();
        let faults = disk.faults().state();
        let fault_stats = disk.faults().stats();
        let driver = disk.driver();
        let stall_remaining_ns = faults.stall_until_ns.map_or(0, |until| until.saturating_sub(now));
        let human = alloc::format!(
            "virtio-blk at {:#x} (interrupt {}), {} sectors of {SECTOR_SIZE} B = {}{}\n\
             driver  {} requests, {} device errors, {} interrupts, {} blocked waits, {} notifications\n\
             cache   {} of {} sectors, {} hits, {} misses, {} evictions, {} device reads, {} device writes, {} flushes\n\
             faults  stall {}, errors {} % (seed {}); {} requests, {} stalled ({} waited), {} injected errors\n\
             {transports}",
            driver.base(),
            driver.intid(),
            format::thousands(capacity),
            format::bytes(capacity * SECTOR_SIZE as u64),
            if driver.read_only() { ", read-only" } else { "" },
            driver_stats.requests,
            driver_stats.device_errors,
            driver_stats.interrupts,
            driver_stats.blocked_waits,
            driver_stats.notifications,
            cache.cached_sectors,
            cache.capacity_sectors,
            cache.hits,
            cache.misses,
            cache.evictions,
            cache.device_reads,
            cache.device_writes,
            cache.flushes,
            if stall_remaining_ns > 0 { format::milliseconds(stall_remaining_ns) } else { String::from("none") },
            faults.error_percent,
            faults.error_seed,
            fault_stats.requests,
            fault_stats.stalled_requests,
            format::milliseconds(fault_stats.stall_wait_ns),
            fault_stats.injected_errors,
        );
        Ok(Reply::new(
            human,
            json!({
                "attached": true,
                "base": driver.base(),
                "intid": driver.intid(),
                "completion": "interrupt",
                "sector_size": SECTOR_SIZE,
                "capacity_sectors": capacity,
                "capacity_bytes": capacity * SECTOR_SIZE as u64,
                "read_only": driver.read_only(),
                "driver": {
                    "requests": driver_stats.requests,
                    "device_errors": driver_stats.device_errors,
                    "interrupts": driver_stats.interrupts,
                    "blocked_waits": driver_stats.blocked_waits,
                    "notifications": driver_stats.notifications,
                },
                "cache": {
                    "capacity_sectors": cache.capacity_sectors,
                    "cached_sectors": cache.cached_sectors,
                    "hits": cache.hits,
                    "misses": cache.misses,
                    "evictions": cache.evictions,
                    "device_reads": cache.device_reads,
                    "device_writes": cache.device_writes,
                    "flushes": cache.flushes,
                },
                "faults": {
                    "stall_remaining_ns": stall_remaining_ns,
                    "error_percent": faults.error_percent,
                    "error_seed": faults.error_seed,
                    "requests": fault_stats.requests,
                    "stalled_requests": fault_stats.stalled_requests,
                    "stall_wait_ns": fault_stats.stall_wait_ns,
                    "injected_errors": fault_stats.injected_errors,
                },
                "virtio_transports": kernel.virtio_slots,
                "virtio_devices": devices,
                "virtio_failures": failures,
            }),
        ))
    })
}

/// `sectors` starting at `lba` must fit the disk; the shell's range is only the type's.
fn check_range(disk: &Disk, lba: u64, sectors: u64) -> Result<(), ShellError> {
    sis_blk::check_request(disk.stack.capacity_sectors(), lba, sectors as usize * SECTOR_SIZE)
        .map(|_| ())
        .map_err(shell_error)
}

fn uniform_byte(sector: &[u8]) -> Option<u8> {
    let first = *sector.first()?;
    sector.iter().all(|&byte| byte == first).then_some(first)
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push_str(&alloc::format!("{byte:02x}"));
    }
    text
}

fn read(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let lba = invocation.args.u64("lba").unwrap_or(0);
    let count = invocation.args.u64("count").unwrap_or(1);
    with_disk(|disk| {
        check_range(disk, lba, count)?;
        let before = disk.stack.stats();
        let mut buffer = vec![0u8; count as usize * SECTOR_SIZE];
        disk.stack.read_sectors(lba, &mut buffer).map_err(shell_error)?;
        let after = disk.stack.stats();
        let mut human = String::new();
        let mut sectors = Vec::new();
        for (index, sector) in buffer.chunks_exact(SECTOR_SIZE).enumerate() {
            let sector_lba = lba + index as u64;
            let checksum = fnv1a64(sector);
            let uniform = uniform_byte(sector);
            let kind = uniform.map_or(String::from("mixed bytes"), |byte| alloc::format!("every byte {byte:#04x}"));
            human.push_str(&alloc::format!("LBA {sector_lba}: fnv1a64 {checksum:#018x}, {kind}\n"));
            for (row, line) in sector.chunks(32).enumerate() {
                human.push_str(&alloc::format!("  {:03x}  {}\n", row * 32, hex(line)));
            }
            sectors
                .push(json!({ "lba": sector_lba, "fnv1a64": checksum, "uniform_byte": uniform, "hex": hex(sector) }));
        }
        let hits = after.hits - before.hits;
        let misses = after.misses - before.misses;
        human.push_str(&alloc::format!("{hits} sector(s) from the cache, {misses} from the device"));
        Ok(Reply::new(
            human,
            json!({ "lba": lba, "count": count, "cache_hits": hits, "cache_misses": misses, "sectors": sectors }),
        ))
    })
}

fn write(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let lba = invocation.args.u64("lba").unwrap_or(0);
    let count = invocation.args.u64("count").unwrap_or(1);
    let text = invocation.args.str("pattern").unwrap_or("");
    let pattern = Pattern::parse(text).map_err(|error| ShellError::new(sis_shell::codes::INVALID_VALUE, error.0))?;
    with_disk(|disk| {
        check_range(disk, lba, count)?;
        let mut data = vec![0u8; count as usize * SECTOR_SIZE];
        for (index, sector) in data.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            pattern.fill(lba + index as u64, sector);
        }
        let waited_before = disk.faults().stats().stall_wait_ns;
        let started = time::now_ns();
        disk.stack.write_sectors(lba, &data).map_err(shell_error)?;
        let elapsed_ns = time::now_ns().saturating_sub(started);
        let waited_ns = disk.faults().stats().stall_wait_ns - waited_before;
        let checksum = fnv1a64(&data);
        Ok(Reply::new(
            alloc::format!(
                "wrote {pattern} to LBA {lba}..{} ({}) in {}{}; fnv1a64 {checksum:#018x}",
                lba + count,
                format::bytes(data.len() as u64),
                format::milliseconds(elapsed_ns),
                if waited_ns > 0 {
                    alloc::format!(", {} of it waiting for a stall", format::milliseconds(waited_ns))
                } else {
                    String::new()
                },
            ),
            json!({
                "lba": lba,
                "count": count,
                "pattern": alloc::format!("{pattern}"),
                "bytes": data.len(),
                "fnv1a64": checksum,
                "elapsed_ns": elapsed_ns,
                "waited_ns": waited_ns,
            }),
        ))
    })
}

fn flush(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let drop_cache = invocation.args.switch("drop");
    with_disk(|disk| {
        let started = time::now_ns();
        disk.stack.flush().map_err(shell_error)?;
        let elapsed_ns = time::now_ns().saturating_sub(started);
        let dropped = if drop_cache { disk.stack.invalidate() } else { 0 };
        Ok(Reply::new(
            alloc::format!("flushed in {}; {dropped} cached sector(s) dropped", format::milliseconds(elapsed_ns)),
            json!({ "flushed": true, "elapsed_ns": elapsed_ns, "dropped_sectors": dropped }),
        ))
    })
}

/// A writer's result: done, or the sectors it wrote before the error.
type WriteOutcome = Result<(), (u64, ShellError)>;

/// Writes seed pattern `pattern` over `lba..end`, taking the disk for each chunk.
fn write_range(lba: u64, end: u64, pattern: Pattern) -> WriteOutcome {
    let mut chunk_lba = lba;
    while chunk_lba < end {
        let sectors = VERIFY_CHUNK_SECTORS.min(end - chunk_lba);
        let mut data = vec![0u8; sectors as usize * SECTOR_SIZE];
        for (index, sector) in data.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            pattern.fill(chunk_lba + index as u64, sector);
        }
        with_disk(|disk| disk.stack.write_sectors(chunk_lba, &data).map_err(shell_error))
            .map_err(|error| (chunk_lba - lba, error))?;
        chunk_lba += sectors;
    }
    Ok(())
}

fn verify(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let lba = invocation.args.u64("lba").unwrap_or(0);
    let count = invocation.args.u64("count").unwrap_or(256);
    let seed = invocation.args.u64("seed").unwrap_or_else(|| PlatformClock.now_ns());
    let writers = invocation.args.u64("writers").unwrap_or(1).min(count);
    let pattern = Pattern::Seeded(seed);
    let end = lba + count;
    with_disk(|disk| check_range(disk, lba, count))?;
    let stopped = |phase: &str, error: ShellError| {
        ShellError::new(error.code(), alloc::format!("verify (seed {seed}) stopped {phase}: {}", error.message()))
    };
    let waits_before = disk::waits();
    let write_started = time::now_ns();
    // Writer w takes sectors [lba + w * count / writers, lba + (w + 1) * count / writers).
    let part = |writer: u64| (lba + writer * count / writers, lba + (writer + 1) * count / writers);
    if writers == 1 {
        write_range(lba, end, pattern)
            .map_err(|(done, error)| stopped(&alloc::format!("writing, after {done} of {count} sectors"), error))?;
    } else {
        let results: Arc<IrqMutex<Vec<(u64, WriteOutcome)>>> = Arc::new(IrqMutex::new(Vec::new()));
        let mut handles = Vec::new();
        for writer in 0..writers {
            let (from, to) = part(writer);
            let results = Arc::clone(&results);
            let handle = thread::spawn_joinable("blk-writer", WRITER_STACK_BYTES, move || {
                let outcome = write_range(from, to, pattern);
                results.lock().push((writer, outcome));
            })
            .map_err(|error| {
                ShellError::new("spawn-failed", alloc::format!("cannot start writer {writer}: {error}"))
            })?;
            handles.push(handle);
        }
        for handle in handles {
            handle.join();
        }
        let mut results = core::mem::take(&mut *results.lock());
        results.sort_by_key(|(writer, _)| *writer);
        for (writer, outcome) in results {
            if let Err((done, error)) = outcome {
                let (from, to) = part(writer);
                return Err(stopped(
                    &alloc::format!("writing (writer {writer}, LBA {from}..{to}, after {done} sectors)"),
                    error,
                ));
            }
        }
    }
    let waits = disk::waits() - waits_before;
    with_disk(|disk| {
        disk.stack.flush().map_err(|error| stopped("flushing", shell_error(error)))?;
        let write_ns = time::now_ns().saturating_sub(write_started);
        disk.stack.invalidate();

        let read_started = time::now_ns();
        let mut mismatched = Vec::new();
        let mut matched = 0u64;
        let mut chunk_lba = lba;
        while chunk_lba < end {
            let sectors = VERIFY_CHUNK_SECTORS.min(end - chunk_lba);
            let mut data = vec![0u8; sectors as usize * SECTOR_SIZE];
            disk.stack.read_sectors(chunk_lba, &mut data).map_err(|error| {
                stopped(
                    &alloc::format!("reading back, after {} of {count} sectors", chunk_lba - lba),
                    shell_error(error),
                )
            })?;
            for (index, sector) in data.chunks_exact(SECTOR_SIZE).enumerate() {
                let sector_lba = chunk_lba + index as u64;
                if sector == pattern.sector(sector_lba) {
                    matched += 1;
                } else {
                    mismatched.push(sector_lba);
                }
            }
            chunk_lba += sectors;
        }
        let read_ns = time::now_ns().saturating_sub(read_started);
        let mismatches = count - matched;
        let reply = Reply::new(
            alloc::format!(
                "verify seed {seed}: LBA {lba}..{end}, {count} sectors written by {writers} writer(s) ({}, flush included; {waits} waits for the disk) and read back from the device ({}): {matched} match, {mismatches} differ",
                format::milliseconds(write_ns),
                format::milliseconds(read_ns),
            ),
            json!({
                "seed": seed,
                "lba": lba,
                "count": count,
                "sectors_matched": matched,
                "sectors_mismatched": mismatches,
                "mismatched_lbas": mismatched.iter().take(MISMATCHES_LISTED).collect::<Vec<_>>(),
                "write_ns": write_ns,
                "read_ns": read_ns,
                "writers": writers,
                "waits": waits,
            }),
        );
        if mismatches == 0 {
            Ok(reply)
        } else {
            Ok(reply.failing(ShellError::new(
                VERIFY_MISMATCH,
                alloc::format!(
                    "{mismatches} of {count} sectors read back differently from what was written (seed {seed})"
                ),
            )))
        }
    })
}
