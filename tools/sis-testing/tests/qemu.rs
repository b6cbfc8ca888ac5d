//! QEMU integration tests: boot, commands, every error class, random input, preemption, batch and deterministic modes.
//!
//! Each test boots its own QEMU. They are ignored by plain `cargo test`
//! (they need the kernel image and QEMU); `cargo xtask test` builds the
//! kernel and runs them with `--ignored`.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig, Sis};

/// The command table the kernel registers, in `help` order.
const COMMANDS: [&str; 17] = [
    "help", "version", "uptime", "meminfo", "threads", "echo", "ls", "cat", "mkdir", "rm", "stresstest", "schedctl", "det",
    "temporaliso", "sleep", "shutdown", "fault",
];

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new()).unwrap_or_else(|error| panic!("boot failed: {error}"))
}

fn error_code(output: &str) -> &str {
    let rest = output.strip_prefix("error[").unwrap_or_else(|| panic!("not an error line: {output:?}"));
    &rest[..rest.find(']').unwrap_or_else(|| panic!("no closing bracket: {output:?}"))]
}

fn assert_still_answers(sis: &mut Sis) {
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

fn u64_field(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} missing or not an integer in {value}"))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn boots_to_prompt_and_help_lists_every_command() {
    let mut sis = boot();
    let help = sis.run_json("help").unwrap();
    assert_eq!(help["schema_version"], 1);
    assert_eq!(help["ok"], true);
    let names: Vec<&str> = help["commands"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, COMMANDS);
    for name in COMMANDS {
        let usage = sis.run(&format!("{name} --help")).unwrap();
        assert!(usage.text.starts_with(&format!("usage: {name}")), "{name} --help gave {usage:?}");
        let json = sis.run_json(&format!("{name} --help")).unwrap();
        assert_eq!(json["ok"], true, "{name}");
    }
    assert_eq!(sis.run_json("echo a  'b c'").unwrap()["text"], "a b c");
}

fn check_meminfo(memory_mib: u32) {
    let mut sis = Sis::boot(&QemuConfig::new().memory_mib(memory_mib)).unwrap();
    let info = sis.run_json("meminfo").unwrap();
    let total = u64::from(memory_mib) << 20;
    assert_eq!(u64_field(&info, "total_bytes"), total);
    assert_eq!(info["regions"], serde_json::json!([{ "base": 0x4000_0000u64, "size": total }]));
    let page = u64_field(&info, "page_size");
    assert_eq!(page, 4096);
    let frames = u64_field(&info, "frames_total");
    assert_eq!(frames * page, total);
    assert_eq!(
        u64_field(&info, "frames_free") + u64_field(&info, "frames_allocated") + u64_field(&info, "frames_reserved"),
        frames
    );
    let reserved_bytes = u64_field(&info, "kernel_image_bytes").div_ceil(page) * page
        + u64_field(&info, "frame_metadata_bytes")
        + u64_field(&info, "device_tree_bytes");
    assert_eq!(u64_field(&info, "frames_reserved") * page, reserved_bytes);
    assert!(u64_field(&info, "heap_used_bytes") <= u64_field(&info, "heap_claimed_bytes"));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn meminfo_totals_match_the_device_tree_at_512m() {
    check_meminfo(512);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn meminfo_totals_match_the_device_tree_at_1g() {
    check_meminfo(1024);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn every_error_class_gets_its_own_error_and_the_shell_recovers() {
    let mut sis = boot();
    let long_line = vec![b'x'; 4096];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unknown command", b"frobnicate".to_vec(), "unknown-command"),
        ("unknown flag", b"meminfo --verbose".to_vec(), "unknown-flag"),
        ("unknown subcommand", b"threads start".to_vec(), "unknown-subcommand"),
        ("missing value", b"threads spawn --spin --count".to_vec(), "missing-value"),
        ("not a number", b"threads spawn --spin --count many".to_vec(), "invalid-value"),
        ("out-of-range number", b"threads spawn --spin --count 17".to_vec(), "out-of-range"),
        ("number overflowing u64", b"threads spawn --spin --count 99999999999999999999".to_vec(), "out-of-range"),
        ("missing required flag", b"threads spawn".to_vec(), "missing-argument"),
        ("bad quoting", b"echo \"unterminated".to_vec(), "unterminated-quote"),
        ("invalid UTF-8", b"echo \xff\xfe\xfd".to_vec(), "invalid-utf8"),
        ("control bytes", b"echo a\x07b".to_vec(), "control-byte"),
        ("a 4 KiB line", long_line, "line-too-long"),
        ("unexpected argument", b"version extra".to_vec(), "unexpected-argument"),
    ];
    for (what, line, code) in cases {
        let output = sis.run_bytes(&line).unwrap().text;
        assert_eq!(error_code(&output), code, "{what}: {output:?}");
        assert_eq!(output.lines().count(), 1, "{what}: one line: {output:?}");
        assert_still_answers(&mut sis);
    }
    // The same errors as JSON carry the code too.
    let json = sis.run_json("echo \"open").unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"]["code"], "unterminated-quote");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn typed_values_are_checked() {
    // `threads spawn` takes only a switch; `help` takes words. Values are
    // exercised through the error paths every command shares.
    let mut sis = boot();
    let output = sis.run("threads spawn --spin=yes").unwrap().text;
    assert_eq!(error_code(&output), "invalid-value");
    let output = sis.run("threads spawn --spin --spin").unwrap().text;
    assert_eq!(error_code(&output), "duplicate-flag");
    // Refused input changes nothing: no thread was started by any of the above.
    let threads = sis.run_json("threads").unwrap();
    assert_eq!(threads["threads"].as_array().map(Vec::len), Some(2), "{threads}");
    let spawned = sis.run_json("threads spawn --spin --count=3").unwrap();
    assert_eq!(spawned["spawned"].as_array().map(Vec::len), Some(3), "{spawned}");
    let threads = sis.run_json("threads").unwrap();
    assert_eq!(threads["threads"].as_array().map(Vec::len), Some(5), "{threads}");
    assert_still_answers(&mut sis);
}

/// One random line: mostly printable, some control and invalid bytes, log-uniform length up to 8 KiB.
fn random_line(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let length = (2f64.powf(rng.random_range(0.0..13.0)) as usize).min(8192);
    (0..length)
        .map(|_| match rng.random_range(0..100) {
            0..=79 => rng.random_range(0x20..0x7f),
            80..=89 => rng.random_range(0x00..0x20),
            _ => rng.random_range(0x7f..=0xff),
        })
        .collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn two_thousand_random_lines_never_crash_or_hang_the_kernel() {
    let seed: u64 = std::env::var("SIS_FUZZ_SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(0x5151_2026);
    println!("random input seed {seed} (set SIS_FUZZ_SEED to replay another)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sis = Sis::boot(&QemuConfig::new().timeout(Duration::from_secs(60))).unwrap();
    let mut bytes_sent = 0usize;
    for index in 0..2000 {
        let mut line = random_line(&mut rng);
        line.push(b'\r');
        bytes_sent += line.len();
        sis.send_raw(&line).unwrap();
        if index % 50 == 49 {
            sis.sync().unwrap_or_else(|error| panic!("seed {seed}, line {index}: {error}"));
        }
    }
    sis.sync().unwrap();
    assert!(sis.is_running(), "seed {seed}: QEMU exited");
    assert_eq!(sis.run("echo survived").unwrap(), "survived\n", "seed {seed}");
    println!("sent {bytes_sent} bytes in 2000 lines");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_spinning_thread_does_not_stop_the_shell() {
    let mut sis = boot();
    let spawned = sis.run_json("threads spawn --spin").unwrap();
    assert_eq!(spawned["spawned"].as_array().map(Vec::len), Some(1), "{spawned}");
    let spin_id = u64_field(&spawned["spawned"][0], "id");
    assert_eq!(spawned["spawned"][0]["name"], "spin");
    let cpu_times = |sis: &mut Sis| -> (u64, u64) {
        let threads = sis.run_json("threads").unwrap();
        let list = threads["threads"].as_array().unwrap().clone();
        let find = |predicate: &dyn Fn(&Value) -> bool| {
            list.iter().find(|t| predicate(t)).map(|t| u64_field(t, "cpu_time_ns")).expect("thread listed")
        };
        (find(&|t| t["name"] == "shell"), find(&|t| t["id"] == spin_id))
    };
    let (shell_before, spin_before) = cpu_times(&mut sis);
    std::thread::sleep(Duration::from_millis(300));
    let (shell_after, spin_after) = cpu_times(&mut sis);
    assert!(shell_after > shell_before, "shell CPU time {shell_before} -> {shell_after}");
    assert!(spin_after > spin_before, "spin CPU time {spin_before} -> {spin_after}");
    // The spinner ran for most of the pause: preemption is real, not cooperative.
    assert!(spin_after - spin_before > 100_000_000, "spin gained only {} ns", spin_after - spin_before);
    assert_still_answers(&mut sis);
}

fn batch_status(commands: &str) -> (Option<i32>, String) {
    let result = run_batch(&QemuConfig::new().batch(commands)).unwrap();
    (result.status, result.output)
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn batch_mode_exit_status_says_pass_fail_or_panic() {
    let (status, output) = batch_status("echo hi; version");
    assert_eq!(status, Some(exit::PASS), "{output}");
    assert!(output.contains("sis> echo hi\nhi\n"), "{output}");

    let (status, output) = batch_status("echo hi; nosuchcommand; echo after");
    assert_eq!(status, Some(exit::FAIL), "{output}");
    assert!(output.contains("error[unknown-command]"), "{output}");
    assert!(output.contains("sis> echo after\nafter\n"), "later commands still run: {output}");

    let (status, output) = batch_status("fault panic");
    assert_eq!(status, Some(exit::PANIC), "{output}");
    assert!(output.contains("KERNEL PANIC: fault panic requested from the shell"), "{output}");
    assert!(output.contains("  at kernel/src/commands/fault.rs:"), "{output}");

    let (status, output) = batch_status("fault data-abort");
    assert_eq!(status, Some(exit::PANIC), "{output}");
    assert!(output.contains("UNEXPECTED EXCEPTION: synchronous (EL1): data abort"), "{output}");
    assert!(output.contains("FAR_EL1  0x00007f0000000000"), "{output}");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn shutdown_powers_off_with_status_zero() {
    let mut sis = boot();
    sis.send_raw(b"shutdown\r").unwrap();
    assert_eq!(sis.wait_exit().unwrap(), Some(0));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn deterministic_mode_replays_byte_for_byte() {
    let commands = "uptime; meminfo --json; threads spawn --spin; threads --json; uptime --json; echo done";
    let config = QemuConfig::new().batch(commands).deterministic();
    let first = run_batch(&config).unwrap();
    let second = run_batch(&config).unwrap();
    assert_eq!(first.status, Some(exit::PASS), "{}", first.output);
    assert_eq!(first.output, second.output);
    assert!(first.output.contains("\"uptime_ns\":"), "{}", first.output);
}
