//! QEMU tests of virtio-blk and `blkctl`: data reaches the host's image file, stalls delay without loss,
//! injected errors are errors, bad arguments change nothing, and no disk means no device.
//!
//! Each test attaches its own scratch image ([`ScratchDisk`]) and, where it
//! checks the image, powers the guest off first and reads the file on the host.

mod common;

use common::{error_code, number, ok};
use sis_blk::{Pattern, SECTOR_SIZE};
use sis_hal::SeededRandom;
use sis_testing::{QemuConfig, ScratchDisk, Sis, DEFAULT_DISK_BYTES};

/// Sectors of the default scratch disk.
const DISK_SECTORS: u64 = DEFAULT_DISK_BYTES / SECTOR_SIZE as u64;

fn boot_with_disk() -> (Sis, ScratchDisk) {
    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    let sis = Sis::boot(&QemuConfig::new().disk_image(disk.path())).unwrap_or_else(|error| panic!("boot: {error}"));
    (sis, disk)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn pattern_bytes(pattern: Pattern, lba: u64, sectors: u64) -> Vec<u8> {
    (lba..lba + sectors).flat_map(|sector| pattern.sector(sector)).collect()
}

/// Powers the guest off (QEMU exits 0), so the image is complete on the host.
fn power_off(mut sis: Sis) {
    sis.send_raw(b"shutdown\r").unwrap();
    assert_eq!(sis.wait_exit().unwrap(), Some(0));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn written_patterns_read_back_identical_after_a_flush_and_lie_in_the_image_at_their_offsets() {
    let (mut sis, disk) = boot_with_disk();
    let status = ok(&mut sis, "blkctl status");
    assert_eq!(status["attached"], true);
    assert_eq!(status["completion"], "interrupt");
    assert_eq!(number(&status, "/capacity_sectors"), DISK_SECTORS);
    assert_eq!(number(&status, "/capacity_bytes"), DEFAULT_DISK_BYTES);
    assert_eq!(status["read_only"], false);
    assert_eq!(status["virtio_devices"].as_array().unwrap().len(), 1);
    assert_eq!(number(&status, "/virtio_devices/0/device_id"), 2, "virtio device ID 2 is a block device");
    assert_eq!(number(&status, "/virtio_transports"), 32);

    let written = ok(&mut sis, "blkctl write 100 0xab --count 3");
    assert_eq!((number(&written, "/bytes"), number(&written, "/waited_ns")), (1536, 0));
    ok(&mut sis, "blkctl write 2000 seed:77 --count 16");
    ok(&mut sis, &format!("blkctl write {} seed:5", DISK_SECTORS - 1));

    let cached = ok(&mut sis, "blkctl read 101");
    assert_eq!((number(&cached, "/cache_hits"), number(&cached, "/cache_misses")), (1, 0));
    assert_eq!(cached["sectors"][0]["uniform_byte"], 0xab);

    let flushed = ok(&mut sis, "blkctl flush --drop");
    assert_eq!(number(&flushed, "/dropped_sectors"), 20);
    let back = ok(&mut sis, "blkctl read 2004 --count 8");
    assert_eq!((number(&back, "/cache_hits"), number(&back, "/cache_misses")), (0, 8), "read from the device");
    for (index, sector) in back["sectors"].as_array().unwrap().iter().enumerate() {
        let lba = 2004 + index as u64;
        assert_eq!(number(sector, "/lba"), lba);
        assert_eq!(sector["hex"], hex(&Pattern::Seeded(77).sector(lba)), "LBA {lba}");
        assert_eq!(number(sector, "/fnv1a64"), sis_blk::fnv1a64(&Pattern::Seeded(77).sector(lba)));
    }
    let verify = ok(&mut sis, "blkctl verify --lba 4096 --count 512 --seed 9");
    assert_eq!((number(&verify, "/sectors_matched"), number(&verify, "/sectors_mismatched")), (512, 0));

    let driver = ok(&mut sis, "blkctl status")["driver"].clone();
    assert!(number(&driver, "/requests") > 0);
    assert_eq!(number(&driver, "/device_errors"), 0);
    assert_eq!(number(&driver, "/interrupts"), number(&driver, "/requests"), "one completion interrupt per request");
    assert_eq!(number(&driver, "/notifications"), number(&driver, "/requests"), "one request at a time, each told");
    power_off(sis);

    assert_eq!(disk.read_sectors(99, 5).unwrap(), [vec![0; 512], vec![0xab; 1536], vec![0; 512]].concat());
    assert_eq!(disk.read_sectors(2000, 16).unwrap(), pattern_bytes(Pattern::Seeded(77), 2000, 16));
    assert_eq!(disk.read_sectors(DISK_SECTORS - 1, 1).unwrap(), pattern_bytes(Pattern::Seeded(5), DISK_SECTORS - 1, 1));
    assert_eq!(disk.read_sectors(4096, 512).unwrap(), pattern_bytes(Pattern::Seeded(9), 4096, 512));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn during_a_stall_writers_wait_and_no_write_is_lost() {
    let (mut sis, disk) = boot_with_disk();
    let stall = ok(&mut sis, "blkctl fault stall 1500");
    assert_eq!(number(&stall, "/stall_ms"), 1500);
    let output = sis.run("blkctl write 10 seed:1 --count 4 --json").unwrap();
    let written = sis_testing::parse_json_reply(&output.text).unwrap();
    assert_eq!(written["ok"], true, "{written}");
    let waited_ns = number(&written, "/waited_ns");
    // At most the stall, plus the writer's wake-up after it ends: a guest timer on a loaded 2-core host wakes a
    // thread late by up to tens of ms (once 1.2 ms past the stall here, with other QEMUs running).
    assert!((1_000_000_000..=1_550_000_000).contains(&waited_ns), "waited {waited_ns} ns");
    assert!(number(&written, "/elapsed_ns") >= waited_ns);
    assert!(output.latency.as_nanos() as u64 >= waited_ns, "the command returned only after the stall");
    for lba in 14..24 {
        assert_eq!(number(&ok(&mut sis, &format!("blkctl write {lba} seed:1")), "/waited_ns"), 0, "after the stall");
    }
    ok(&mut sis, "blkctl fault stall 1000");
    let verify = ok(&mut sis, "blkctl verify --lba 100 --count 256 --seed 4");
    assert_eq!(number(&verify, "/sectors_matched"), 256);
    let faults = ok(&mut sis, "blkctl status")["faults"].clone();
    assert_eq!(number(&faults, "/stalled_requests"), 2);
    assert!(number(&faults, "/stall_wait_ns") >= waited_ns + 500_000_000, "{faults}");
    assert_eq!(number(&faults, "/stall_remaining_ns"), 0);
    // Four writer threads at once during a stall: the one holding the disk sleeps in the stall, the others
    // wait for the disk (none is refused), and every sector arrives.
    ok(&mut sis, "blkctl fault stall 1500");
    let concurrent = ok(&mut sis, "blkctl verify --lba 1000 --count 1024 --seed 5 --writers 4");
    assert_eq!(number(&concurrent, "/writers"), 4);
    assert_eq!(number(&concurrent, "/sectors_matched"), 1024);
    assert!(number(&concurrent, "/waits") >= 3, "{concurrent}");
    assert!(number(&concurrent, "/write_ns") >= 1_000_000_000, "{concurrent}");
    power_off(sis);
    assert_eq!(disk.read_sectors(10, 14).unwrap(), pattern_bytes(Pattern::Seeded(1), 10, 14));
    assert_eq!(disk.read_sectors(100, 256).unwrap(), pattern_bytes(Pattern::Seeded(4), 100, 256));
    assert_eq!(disk.read_sectors(1000, 1024).unwrap(), pattern_bytes(Pattern::Seeded(5), 1000, 1024));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn injected_errors_are_reported_as_errors_and_leave_the_device_unchanged() {
    let (mut sis, disk) = boot_with_disk();
    ok(&mut sis, "blkctl fault error 100 --seed 1");
    assert_eq!(error_code(&mut sis, "blkctl write 5 0x11"), "injected-error");
    assert_eq!(error_code(&mut sis, "blkctl read 6"), "injected-error");
    assert_eq!(error_code(&mut sis, "blkctl flush"), "injected-error");
    let human = sis.run("blkctl write 5 0x11").unwrap();
    assert_eq!(human.text, "error[injected-error]: injected write error (blkctl fault error is active)\n");

    let set = ok(&mut sis, "blkctl fault error 30 --seed 42");
    assert_eq!((number(&set, "/error_percent"), number(&set, "/seed")), (30, 42));
    let mut failed = Vec::new();
    for lba in 0..60u64 {
        let reply = sis.run_json(&format!("blkctl write {lba} 0x22")).unwrap();
        if reply["ok"] == false {
            assert_eq!(reply["error"]["code"], "injected-error", "{reply}");
            failed.push(lba);
        }
    }
    let mut reference = SeededRandom::new(42);
    let expected: Vec<u64> = (0..60).filter(|_| reference.chance_percent(30)).collect();
    assert_eq!(failed, expected, "exactly the requests the seeded generator picks");
    assert!(!failed.is_empty() && failed.len() < 60);
    let faults = ok(&mut sis, "blkctl status")["faults"].clone();
    assert_eq!(number(&faults, "/injected_errors"), 4 + failed.len() as u64);
    ok(&mut sis, "blkctl fault clear");
    assert_eq!(number(&ok(&mut sis, "blkctl status"), "/faults/error_percent"), 0);
    ok(&mut sis, "blkctl flush --drop");
    power_off(sis);
    let image = disk.read_sectors(0, 60).unwrap();
    for (lba, sector) in image.chunks(SECTOR_SIZE).enumerate() {
        let expected = if failed.contains(&(lba as u64)) { 0 } else { 0x22 };
        assert!(sector.iter().all(|&byte| byte == expected), "LBA {lba} should be all {expected:#04x}");
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn bad_arguments_get_clear_errors_change_nothing_and_the_device_keeps_working() {
    let (mut sis, _disk) = boot_with_disk();
    ok(&mut sis, "blkctl write 7 0x5a");
    let before = ok(&mut sis, "blkctl status");
    let beyond = sis.run(&format!("blkctl write {DISK_SECTORS} 0x01")).unwrap();
    assert_eq!(
        beyond.text,
        "error[out-of-range]: sectors 32768..32769 are beyond the device, which has 32768 sectors (LBA 0..=32767)\n"
    );
    assert_eq!(error_code(&mut sis, "blkctl read 99999999999"), "out-of-range");
    assert_eq!(error_code(&mut sis, &format!("blkctl read {} --count 2", DISK_SECTORS - 1)), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl verify --lba 32700 --count 100"), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl bench --size-mib 32"), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl read 0 --count 9"), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl write 0 --count 1"), "missing-argument");
    assert_eq!(error_code(&mut sis, "blkctl fault stall 0"), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl fault error 101"), "out-of-range");
    assert_eq!(error_code(&mut sis, "blkctl frobnicate"), "unknown-subcommand");
    let bad_byte = sis.run("blkctl write 0 256").unwrap();
    assert_eq!(bad_byte.text, "error[invalid-value]: PATTERN: byte value 256 is above 255 (got '256')\n");
    let bad_seed = sis.run("blkctl write 0 seed:abc").unwrap();
    assert_eq!(
        bad_seed.text,
        "error[invalid-value]: PATTERN: 'abc' after seed: is not a 64-bit integer (got 'seed:abc')\n"
    );
    assert_eq!(error_code(&mut sis, "blkctl write 0 pattern"), "invalid-value");
    let after = ok(&mut sis, "blkctl status");
    for part in ["driver", "cache", "faults"] {
        assert_eq!(before[part], after[part], "{part} changed by refused commands");
    }
    ok(&mut sis, "blkctl flush --drop");
    let sector = ok(&mut sis, "blkctl read 7");
    assert_eq!(sector["sectors"][0]["uniform_byte"], 0x5a);
    assert_eq!(number(&sector, "/cache_misses"), 1);
    let bench = ok(&mut sis, "blkctl bench --size-mib 1 --request-kib 16");
    assert_eq!((number(&bench, "/requests"), number(&bench, "/mismatched_requests")), (64, 0));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn without_a_disk_status_reports_no_device_and_every_other_subcommand_refuses() {
    let mut sis = Sis::boot(&QemuConfig::new()).unwrap();
    let status = ok(&mut sis, "blkctl status");
    assert_eq!(status["attached"], false);
    assert_eq!(status["virtio_devices"], serde_json::json!([]));
    assert_eq!(number(&status, "/virtio_transports"), 32);
    assert_eq!(
        sis.run("blkctl status").unwrap().text,
        "no block device attached (0 virtio device(s) found on 32 transport(s))\n"
    );
    for line in [
        "blkctl read 0",
        "blkctl write 0 0x01",
        "blkctl flush",
        "blkctl verify",
        "blkctl bench",
        "blkctl fault stall 10",
        "blkctl fault clear",
    ] {
        assert_eq!(error_code(&mut sis, line), "no-device", "{line}");
    }
    let human = sis.run("blkctl read 0").unwrap();
    assert!(
        human.text.starts_with("error[no-device]: no block device: QEMU was started without a virtio-blk drive"),
        "{human}"
    );
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn requests_in_flight_at_once_write_and_read_exactly_what_one_at_a_time_does_and_the_profile_counts_them() {
    let (mut sis, disk) = boot_with_disk();
    // 4 MiB in 64 KiB requests, 16 in flight: the bench checks every request it reads back.
    let bench = ok(&mut sis, "blkctl bench --size-mib 4 --queue-depth 16");
    assert_eq!((number(&bench, "/requests"), number(&bench, "/mismatched_requests")), (64, 0));
    assert_eq!(number(&bench, "/queue_depth"), 16);
    assert_eq!(bench["instructions"], serde_json::Value::Null, "no --profile, no instructions");
    let driver = ok(&mut sis, "blkctl status");
    // The first 16 requests of each pass go to the device with one notification, and every later notification
    // carries at least one request: at most 1 + 48 per pass of 64, and one for the flush.
    let notifications = number(&driver, "/driver/notifications");
    assert!(notifications <= 2 * 49 + 1, "{notifications} notifications for 129 requests: {driver}");
    assert_eq!(number(&driver, "/driver/requests"), 129, "{driver}");
    // With a stall in force every request goes alone through the fault layer, and still arrives.
    ok(&mut sis, "blkctl fault stall 50");
    let stalled = ok(&mut sis, "blkctl bench --size-mib 1 --lba 8192 --queue-depth 16");
    assert_eq!((number(&stalled, "/requests"), number(&stalled, "/mismatched_requests")), (16, 0));
    let after = ok(&mut sis, "blkctl status");
    assert_eq!(number(&after, "/faults/stalled_requests") - number(&driver, "/faults/stalled_requests"), 1);
    // Real time: no instructions, but the requests' time by layer, which adds up to the phase's time.
    let timed = ok(&mut sis, "blkctl bench --size-mib 1 --lba 8192 --profile");
    assert_eq!(timed["instructions"], serde_json::Value::Null, "{timed}");
    let per_request: u64 =
        timed["nanoseconds"]["write_per_request"].as_object().unwrap().values().map(|ns| ns.as_u64().unwrap()).sum();
    let (requests, write_ns) = (number(&timed, "/requests"), number(&timed, "/write_ns"));
    // Each layer's share is rounded down per request, and the phase's clock readings sit inside the profile's.
    assert!(per_request * requests <= write_ns + 200_000, "{per_request} ns x {requests} against {write_ns}: {timed}");
    assert!(per_request * requests + requests * 20 >= write_ns * 9 / 10, "{per_request} x {requests}, {write_ns}");
    assert!(number(&timed, "/nanoseconds/write_per_request/block_device") > 0, "{timed}");
    power_off(sis);
    let image = std::fs::read(disk.path()).unwrap();
    let request = pattern_bytes(Pattern::Seeded(64 * 1024), 0, 128);
    for (index, chunk) in image[..4 << 20].chunks(64 * 1024).enumerate() {
        assert!(chunk == &request[..], "request {index} in the image differs");
    }

    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    let config = QemuConfig::new().disk_image(disk.path()).deterministic();
    let mut sis = Sis::boot(&config).unwrap();
    let profiled = ok(&mut sis, "blkctl bench --size-mib 1 --queue-depth 4 --profile");
    for phase in ["write_per_request", "read_per_request"] {
        // Every request is built, submitted and completed by the driver: it costs instructions there.
        assert!(number(&profiled, &format!("/instructions/{phase}/block_device")) > 100, "{profiled}");
        assert_eq!(number(&profiled, &format!("/instructions/{phase}/smoltcp_ingress")), 0, "{profiled}");
    }
}
