//! `blkctl bench`: sequential write, flush and read throughput of the device, below the cache.

use alloc::vec;

use serde_json::json;
use sis_blk::{BlockDevice, Pattern, SECTOR_SIZE};
use sis_platform::time;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::disk::{shell_error, with_disk};
use super::Kernel;
use crate::format;

/// `blkctl bench`.
pub const BENCH: CommandSpec<Kernel> = CommandSpec {
    name: "bench",
    summary: "Sequential write, flush and read of --size-mib in --request-kib requests, below the cache",
    description: "Writes a seeded pattern over LBA --lba onward (destroying what was there), flushes, reads it back and checks it. Requests go to the fault injector and the device, not the cache; cached copies of the range are dropped afterwards. Throughput is bytes / time of the phase's requests (the read-back check between read requests is not counted), guest clock.",
    args: &[
        ArgSpec::flag("size-mib", ValueKind::U64 { min: 1, max: 1024 }, "bytes to write and read, MiB").default("16"),
        ArgSpec::flag("request-kib", ValueKind::U64 { min: 1, max: 1024 }, "bytes per request, KiB").default("64"),
        ArgSpec::flag("lba", ValueKind::U64 { min: 0, max: u64::MAX }, "first sector").default("0"),
    ],
    subcommands: &[],
    handler: Some(bench),
};

fn mib_per_s(bytes: u64, nanoseconds: u64) -> f64 {
    if nanoseconds == 0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / (nanoseconds as f64 / 1e9)
}

fn bench(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let size_bytes = invocation.args.u64("size-mib").unwrap_or(16) * 1024 * 1024;
    let request_bytes = invocation.args.u64("request-kib").unwrap_or(64) * 1024;
    let lba = invocation.args.u64("lba").unwrap_or(0);
    let sectors = size_bytes / SECTOR_SIZE as u64;
    let request_sectors = request_bytes / SECTOR_SIZE as u64;
    let requests = size_bytes.div_ceil(request_bytes);
    with_disk(|disk| {
        sis_blk::check_request(disk.stack.capacity_sectors(), lba, size_bytes as usize).map_err(shell_error)?;
        let mut data = vec![0u8; request_bytes as usize];
        for (index, sector) in data.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            Pattern::Seeded(request_bytes).fill(index as u64, sector);
        }
        let device = disk.faults();
        let write_started = time::now_ns();
        let mut offset = 0;
        while offset < sectors {
            let count = request_sectors.min(sectors - offset) as usize;
            device.write_sectors(lba + offset, &data[..count * SECTOR_SIZE]).map_err(shell_error)?;
            offset += count as u64;
        }
        let write_ns = time::now_ns().saturating_sub(write_started);
        let flush_started = time::now_ns();
        device.flush().map_err(shell_error)?;
        let flush_ns = time::now_ns().saturating_sub(flush_started);

        let mut back = vec![0u8; request_bytes as usize];
        let mut mismatched_requests = 0u64;
        // Only the requests are timed: comparing each one after it completes is not the device's time.
        let mut read_ns = 0u64;
        offset = 0;
        while offset < sectors {
            let count = request_sectors.min(sectors - offset) as usize;
            let bytes = count * SECTOR_SIZE;
            let request_started = time::now_ns();
            device.read_sectors(lba + offset, &mut back[..bytes]).map_err(shell_error)?;
            read_ns += time::now_ns().saturating_sub(request_started);
            if back[..bytes] != data[..bytes] {
                mismatched_requests += 1;
            }
            offset += count as u64;
        }
        disk.stack.invalidate_range(lba, sectors);

        let write_rate = mib_per_s(size_bytes, write_ns);
        let read_rate = mib_per_s(size_bytes, read_ns);
        let reply = Reply::new(
            alloc::format!(
                "virtio-blk sequential, {} in {requests} requests of {} from LBA {lba} (below the cache, guest clock):\n  write {write_rate:.1} MiB/s ({}), flush {}, read {read_rate:.1} MiB/s ({}); {} request(s) read back differently",
                format::bytes(size_bytes),
                format::bytes(request_bytes),
                format::milliseconds(write_ns),
                format::milliseconds(flush_ns),
                format::milliseconds(read_ns),
                mismatched_requests,
            ),
            json!({
                "lba": lba,
                "size_bytes": size_bytes,
                "request_bytes": request_bytes,
                "requests": requests,
                "write_ns": write_ns,
                "flush_ns": flush_ns,
                "read_ns": read_ns,
                "write_mib_per_s": write_rate,
                "read_mib_per_s": read_rate,
                "mismatched_requests": mismatched_requests,
            }),
        );
        if mismatched_requests == 0 {
            Ok(reply)
        } else {
            Ok(reply.failing(ShellError::new(
                super::VERIFY_MISMATCH,
                alloc::format!("{mismatched_requests} of {requests} requests read back differently"),
            )))
        }
    })
}
