//! `cargo xtask bench blk`: virtio-blk sequential throughput in the guest against the host on the same image file.
//!
//! The guest runs `blkctl bench` (below its cache: fault injector, then
//! virtio-blk, completion by interrupt) on a scratch raw image in real time.
//! The peer is the host writing and reading the same file in the same
//! request size right after QEMU exits: both go through the host's page cache
//! (QEMU's default `cache=writeback` for the drive), so the ratio is what the
//! emulated device path costs over a native sequential I/O loop.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sis_testing::{QemuConfig, ScratchDisk};

/// One run's figures, MiB/s and the flush time.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    write_mib_per_s: f64,
    flush_ms: f64,
    read_mib_per_s: f64,
}

/// Runs the guest and the host `runs` times each and prints per-run figures, medians and ratios; with `linux`, a
/// Linux guest on the same emulated machine too (see [`crate::linux_peer`]).
pub fn run(size_mib: u64, request_kib: u64, runs: u32, depth: u64, linux: bool) -> Result<(), String> {
    let size_bytes = size_mib << 20;
    let request_bytes = request_kib << 10;
    println!(
        "virtio-blk sequential throughput: {size_mib} MiB in {request_kib} KiB requests, {runs} runs\n\
         guest: SIS in QEMU (virt, cortex-a72, TCG, real time), blkctl bench below the cache, {depth} request(s) in flight, raw image, default cache=writeback\n\
         host:  the same file, the same request size, write_all + fsync + read_exact, right after QEMU exits"
    );
    let image = if linux {
        let image = crate::linux_peer::prepare()?;
        println!(
            "linux: Debian's Linux in the same QEMU (same machine, one CPU, TCG, the same drive options), busybox dd \
             on /dev/vda in {request_kib} KiB blocks: direct (O_DIRECT, one request in flight) and cached (page \
             cache: write timed to the end of its fsync, read after dropping the cache); packages {}",
            image.packages.join(", ")
        );
        Some(image)
    } else {
        None
    };
    let mut guest = Vec::new();
    let mut host = Vec::new();
    let mut peer = Vec::new();
    for run in 1..=runs {
        let disk = ScratchDisk::create(size_bytes).map_err(|error| error.to_string())?;
        let figures = guest_run(&disk, size_mib, request_kib, depth)?;
        print_run("guest", run, figures);
        guest.push(figures);
        let figures = host_run(disk.path(), size_bytes, request_bytes)?;
        print_run("host ", run, figures);
        host.push(figures);
        if let Some(image) = &image {
            let disk = ScratchDisk::create(size_bytes).map_err(|error| error.to_string())?;
            let figures = crate::linux_peer::disk_run(image, disk.path(), size_mib, request_kib)?;
            println!(
                "  linux run {run:>2}: direct write {:8.1} read {:8.1} MiB/s   cached write {:8.1} read {:8.1} MiB/s",
                figures.write_direct, figures.read_direct, figures.write_cached, figures.read_cached
            );
            peer.push(figures);
        }
    }
    let pick = crate::bench::median_of::<Throughput>;
    let (guest_write, host_write) = (pick(&guest, |t| t.write_mib_per_s), pick(&host, |t| t.write_mib_per_s));
    let (guest_read, host_read) = (pick(&guest, |t| t.read_mib_per_s), pick(&host, |t| t.read_mib_per_s));
    let (guest_flush, host_flush) = (pick(&guest, |t| t.flush_ms), pick(&host, |t| t.flush_ms));
    println!("median  guest write {guest_write:8.1} MiB/s  read {guest_read:8.1} MiB/s  flush {guest_flush:6.2} ms");
    println!("median  host  write {host_write:8.1} MiB/s  read {host_read:8.1} MiB/s  flush {host_flush:6.2} ms");
    println!("ratio guest / host: write {:.3}, read {:.3}", guest_write / host_write, guest_read / host_read);
    if !peer.is_empty() {
        let pick = crate::bench::median_of::<crate::linux_peer::DiskFigures>;
        let (direct_write, direct_read) = (pick(&peer, |f| f.write_direct), pick(&peer, |f| f.read_direct));
        let (cached_write, cached_read) = (pick(&peer, |f| f.write_cached), pick(&peer, |f| f.read_cached));
        println!(
            "median  linux direct write {direct_write:8.1} read {direct_read:8.1} MiB/s, cached write \
             {cached_write:8.1} read {cached_read:8.1} MiB/s"
        );
        println!(
            "ratio linux / host: direct write {:.3}, read {:.3}; cached write {:.3}, read {:.3}",
            direct_write / host_write,
            direct_read / host_read,
            cached_write / host_write,
            cached_read / host_read
        );
        println!(
            "ratio SIS ({depth} in flight) / Linux: write {:.2}x direct, {:.2}x cached; read {:.2}x direct, {:.2}x cached",
            guest_write / direct_write,
            guest_write / cached_write,
            guest_read / direct_read,
            guest_read / cached_read
        );
    }
    Ok(())
}

fn print_run(side: &str, run: u32, figures: Throughput) {
    println!(
        "  {side} run {run:>2}: write {:8.1} MiB/s   flush {:7.2} ms   read {:8.1} MiB/s",
        figures.write_mib_per_s, figures.flush_ms, figures.read_mib_per_s
    );
}

/// One deterministic boot (`-icount`): guest instructions per request by layer, writing and reading.
pub fn profile(size_mib: u64, request_kib: u64, depth: u64, real_time: bool) -> Result<(), String> {
    let disk = ScratchDisk::create(size_mib << 20).map_err(|error| error.to_string())?;
    let command = format!(
        "blkctl bench --size-mib {size_mib} --request-kib {request_kib} --queue-depth {depth} --profile --json"
    );
    let config = QemuConfig::new().disk_image(disk.path()).batch(&command).timeout(Duration::from_secs(600));
    let config = if real_time { config } else { config.deterministic() };
    let reply = crate::bench::first_reply(&config, &command)?;
    if reply["ok"] != true {
        return Err(format!("`{command}` failed: {reply}"));
    }
    let (counted, title) = if real_time {
        ("nanoseconds", "guest nanoseconds (real time, the virtual counter)")
    } else {
        ("instructions", "guest instructions (deterministic mode, QEMU -icount)")
    };
    println!("{title} per {request_kib} KiB request by layer, {size_mib} MiB, up to {depth} in flight");
    if real_time {
        let rate = |key: &str| reply[key].as_f64().unwrap_or(0.0);
        println!("(profile on: write {:.1} MiB/s, read {:.1} MiB/s)", rate("write_mib_per_s"), rate("read_mib_per_s"));
    }
    println!("  {:<20} {:>14} {:>14}", "layer", "write", "read");
    let (write, read) = (&reply[counted]["write_per_request"], &reply[counted]["read_per_request"]);
    let mut totals = (0, 0);
    for (layer, value) in write.as_object().ok_or_else(|| format!("no {counted} in {reply}"))? {
        let (w, r) = (value.as_u64().unwrap_or(0), read[layer].as_u64().unwrap_or(0));
        totals = (totals.0 + w, totals.1 + r);
        if w + r > 0 {
            println!("  {layer:<20} {w:>14} {r:>14}");
        }
    }
    println!("  {:<20} {:>14} {:>14}", "total", totals.0, totals.1);
    Ok(())
}

fn guest_run(disk: &ScratchDisk, size_mib: u64, request_kib: u64, depth: u64) -> Result<Throughput, String> {
    let command =
        format!("blkctl bench --size-mib {size_mib} --request-kib {request_kib} --queue-depth {depth} --json");
    let config = QemuConfig::new().disk_image(disk.path()).batch(&command).timeout(Duration::from_secs(300));
    let reply = crate::bench::first_reply(&config, &command)?;
    if reply["ok"] != true {
        return Err(format!("`{command}` failed: {reply}"));
    }
    let number = |key: &str| reply[key].as_f64().ok_or_else(|| format!("{key} missing in {reply}"));
    Ok(Throughput {
        write_mib_per_s: number("write_mib_per_s")?,
        flush_ms: number("flush_ns")? / 1e6,
        read_mib_per_s: number("read_mib_per_s")?,
    })
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

fn host_run(path: &Path, size_bytes: u64, request_bytes: u64) -> Result<Throughput, String> {
    let io =
        |action: &'static str| move |error: std::io::Error| format!("host {action} of {}: {error}", path.display());
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io("open"))?;
    let data: Vec<u8> = (0..request_bytes).map(|index| (index * 31 % 251) as u8).collect();
    let started = Instant::now();
    let mut offset = 0;
    while offset < size_bytes {
        let count = request_bytes.min(size_bytes - offset) as usize;
        file.write_all(&data[..count]).map_err(io("write"))?;
        offset += count as u64;
    }
    let write = started.elapsed();
    let started = Instant::now();
    file.sync_all().map_err(io("fsync"))?;
    let flush = started.elapsed();
    file.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    let mut back = vec![0u8; request_bytes as usize];
    // As in the guest, only the requests are timed, not the check between them.
    let mut read = Duration::ZERO;
    offset = 0;
    while offset < size_bytes {
        let count = request_bytes.min(size_bytes - offset) as usize;
        let started = Instant::now();
        file.read_exact(&mut back[..count]).map_err(io("read"))?;
        read += started.elapsed();
        if back[..count] != data[..count] {
            return Err(format!("host read back differently at byte {offset}"));
        }
        offset += count as u64;
    }
    Ok(Throughput {
        write_mib_per_s: mib_per_s(size_bytes, write),
        flush_ms: flush.as_secs_f64() * 1e3,
        read_mib_per_s: mib_per_s(size_bytes, read),
    })
}
