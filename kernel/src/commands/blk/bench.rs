//! `blkctl bench`: sequential write, flush and read throughput of the device, below the cache.

use alloc::vec;

use serde_json::json;
use sis_blk::{BlockDevice, Pattern, SECTOR_SIZE};
use sis_platform::profile::{self, Layer, Snapshot};
use sis_platform::time;
use sis_platform::virtio::MAX_QUEUE_DEPTH;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::disk::{shell_error, with_disk};
use super::Kernel;
use crate::format;

/// `blkctl bench`.
pub const BENCH: CommandSpec<Kernel> = CommandSpec {
    name: "bench",
    summary: "Sequential write, flush and read of --size-mib in --request-kib requests, below the cache",
    description: "Writes a seeded pattern over LBA --lba onward (destroying what was there), flushes, reads it back and checks it. Requests go to the fault injector and the device, not the cache, up to --queue-depth of them in flight (in windows of four times that many); cached copies of the range are dropped afterwards. Throughput is bytes / time of the phase's requests (the read-back check between windows is not counted), guest clock. --profile also reports guest time per request by layer (netctl profile's layers, idle included) and, in deterministic mode (-icount), guest instructions per request by layer.",
    args: &[
        ArgSpec::flag("size-mib", ValueKind::U64 { min: 1, max: 1024 }, "bytes to write and read, MiB").default("16"),
        ArgSpec::flag("request-kib", ValueKind::U64 { min: 1, max: 1024 }, "bytes per request, KiB").default("64"),
        ArgSpec::flag("lba", ValueKind::U64 { min: 0, max: u64::MAX }, "first sector").default("0"),
        ArgSpec::flag("queue-depth", ValueKind::U64 { min: 1, max: MAX_QUEUE_DEPTH as u64 }, "requests in flight at once")
            .default("16"),
        ArgSpec::flag("profile", ValueKind::Switch, "guest time (and, under -icount, instructions) per request by layer"),
    ],
    subcommands: &[],
    handler: Some(bench),
};

/// Most bytes of one window of requests.
const WINDOW_BYTES: u64 = 2 * 1024 * 1024;

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
    let depth = invocation.args.u64("queue-depth").unwrap_or(16) as usize;
    let profiling = invocation.args.switch("profile");
    let sectors = size_bytes / SECTOR_SIZE as u64;
    let requests = size_bytes.div_ceil(request_bytes);
    // Requests per window: the pipeline drains at the end of each, so it holds several depths' worth, within
    // WINDOW_BYTES (two such buffers are allocated: the heap is not the disk).
    let window_requests = (depth as u64 * 4).min(WINDOW_BYTES / request_bytes).clamp(1, requests);
    let window_bytes = window_requests * request_bytes;
    if profiling {
        profile::start();
    }
    with_disk(|disk| {
        sis_blk::check_request(disk.stack.capacity_sectors(), lba, size_bytes as usize).map_err(shell_error)?;
        // Every request carries the same seeded pattern; a window is that request repeated.
        let mut data = vec![0u8; request_bytes as usize];
        for (index, sector) in data.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            Pattern::Seeded(request_bytes).fill(index as u64, sector);
        }
        let mut window = alloc::vec::Vec::new();
        let mut back = alloc::vec::Vec::new();
        if window.try_reserve_exact(window_bytes as usize).is_err()
            || back.try_reserve_exact(window_bytes as usize).is_err()
        {
            return Err(ShellError::new(
                "out-of-memory",
                alloc::format!("no room on the heap for two {} windows", format::bytes(window_bytes)),
            ));
        }
        window.extend(data.iter().copied().cycle().take(window_bytes as usize));
        back.resize(window_bytes as usize, 0);
        let caller = profile::enter(Layer::BlockCaller);
        let before_write = profile::snapshot();
        let device = disk.faults();
        let write_started = time::now_ns();
        let mut offset = 0u64;
        while offset < size_bytes {
            let bytes = window_bytes.min(size_bytes - offset) as usize;
            let first = lba + offset / SECTOR_SIZE as u64;
            device.write_run(first, &window[..bytes], request_bytes as usize, depth).map_err(shell_error)?;
            offset += bytes as u64;
        }
        let write_ns = time::now_ns().saturating_sub(write_started);
        let after_write = profile::snapshot();
        let flush_started = time::now_ns();
        device.flush().map_err(shell_error)?;
        let flush_ns = time::now_ns().saturating_sub(flush_started);

        let mut mismatched_requests = 0u64;
        // Only the requests are timed: comparing each window after it completes is not the device's time.
        let mut read_ns = 0u64;
        let mut read_profile: Option<Snapshot> = None;
        offset = 0;
        while offset < size_bytes {
            let bytes = window_bytes.min(size_bytes - offset) as usize;
            let first = lba + offset / SECTOR_SIZE as u64;
            let before = profile::snapshot();
            let window_started = time::now_ns();
            device.read_run(first, &mut back[..bytes], request_bytes as usize, depth).map_err(shell_error)?;
            read_ns += time::now_ns().saturating_sub(window_started);
            let spent = profile::snapshot().since(&before);
            read_profile = Some(match read_profile {
                Some(total) => total.plus(&spent),
                None => spent,
            });
            for chunk in back[..bytes].chunks(request_bytes as usize) {
                if chunk != &data[..chunk.len()] {
                    mismatched_requests += 1;
                }
            }
            offset += bytes as u64;
        }
        profile::enter(caller);
        disk.stack.invalidate_range(lba, sectors);
        let per_request = |values: &[u64]| {
            let values: alloc::vec::Vec<u64> = values.iter().map(|count| count / requests).collect();
            crate::commands::net::profile::layers_json(&values)
        };
        let total_of = |spent: &Snapshot| spent.total() / requests.max(1);
        let time_of = |spent: &Snapshot| spent.nanoseconds.iter().sum::<u64>() / requests.max(1);
        let idle_of = |spent: &Snapshot| spent.nanoseconds[Layer::Idle as usize] / requests.max(1);
        let driver_of = |spent: &Snapshot| spent.nanoseconds[Layer::BlockDevice as usize] / requests.max(1);
        let write_profile = after_write.since(&before_write);
        let mut profile_line = alloc::string::String::new();
        if let (true, Some(read)) = (profiling, read_profile.as_ref()) {
            profile_line = alloc::format!(
                "\n  guest time per request: write {} ns (idle {}, driver {}), read {} ns (idle {}, driver {})",
                format::thousands(time_of(&write_profile)),
                format::thousands(idle_of(&write_profile)),
                format::thousands(driver_of(&write_profile)),
                format::thousands(time_of(read)),
                format::thousands(idle_of(read)),
                format::thousands(driver_of(read)),
            );
            if read.counting {
                profile_line.push_str(&alloc::format!(
                    "\n  guest instructions per request: write {} (driver {}), read {} (driver {})",
                    format::thousands(total_of(&write_profile)),
                    format::thousands(write_profile.of(Layer::BlockDevice) / requests.max(1)),
                    format::thousands(total_of(read)),
                    format::thousands(read.of(Layer::BlockDevice) / requests.max(1)),
                ));
            }
        }
        let (instructions, nanoseconds) = match (profiling, read_profile) {
            (true, Some(read)) => (
                if read.counting {
                    json!({
                        "write_per_request": per_request(&write_profile.instructions),
                        "read_per_request": per_request(&read.instructions),
                    })
                } else {
                    serde_json::Value::Null
                },
                json!({
                    "write_per_request": per_request(&write_profile.nanoseconds),
                    "read_per_request": per_request(&read.nanoseconds),
                }),
            ),
            _ => (serde_json::Value::Null, serde_json::Value::Null),
        };

        let write_rate = mib_per_s(size_bytes, write_ns);
        let read_rate = mib_per_s(size_bytes, read_ns);
        let reply = Reply::new(
            alloc::format!(
                "virtio-blk sequential, {} in {requests} requests of {} from LBA {lba}, up to {depth} in flight (below the cache, guest clock):\n  write {write_rate:.1} MiB/s ({}), flush {}, read {read_rate:.1} MiB/s ({}); {} request(s) read back differently{}",
                format::bytes(size_bytes),
                format::bytes(request_bytes),
                format::milliseconds(write_ns),
                format::milliseconds(flush_ns),
                format::milliseconds(read_ns),
                mismatched_requests,
                profile_line,
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
                "queue_depth": depth,
                "instructions": instructions,
                "nanoseconds": nanoseconds,
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
