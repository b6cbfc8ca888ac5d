//! QEMU integration tests: boot, commands, every error class, random input, preemption, batch and deterministic modes.
//!
//! Each test boots its own QEMU. They are ignored by plain `cargo test`
//! (they need the kernel image and QEMU); `cargo xtask test` builds the
//! kernel and runs them with `--ignored`.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sis_proto::{exit, PROMPT};
use sis_testing::console::LINE_LIMIT_BYTES;
use sis_testing::{parse_json_reply, run_batch, QemuConfig, Sis};

/// The command table the kernel registers, in `help` order.
const COMMANDS: [&str; 33] = [
    "help",
    "version",
    "uptime",
    "meminfo",
    "threads",
    "echo",
    "ls",
    "cat",
    "mkdir",
    "rm",
    "stresstest",
    "neuralctl",
    "autoctl",
    "memctl",
    "safetyctl",
    "schedctl",
    "det",
    "temporaliso",
    "blkctl",
    "netctl",
    "webctl",
    "logctl",
    "eventctl",
    "graphctl",
    "tensorctl",
    "llmctl",
    "feedback",
    "otelctl",
    "aiopsctl",
    "agentsys",
    "sleep",
    "shutdown",
    "fault",
];

/// Lines in the random-input test.
const RANDOM_LINES: usize = 2000;
/// Random lines sent between two resynchronisations.
const LINES_PER_SYNC: usize = 50;
/// Longest random line, in bytes.
const RANDOM_LINE_MAX_BYTES: usize = 8192;

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new()).unwrap_or_else(|error| panic!("boot failed: {error}"))
}

fn assert_still_answers(sis: &mut Sis) {
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

fn u64_field(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} missing or not an integer in {value}"))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn boots_to_the_prompt() {
    let mut sis = boot();
    let output = sis.raw_output();
    assert!(output.ends_with(format!("\r\n{PROMPT}").as_bytes()), "{:?}", String::from_utf8_lossy(&output));
    assert!(sis.first_output_time() > Duration::ZERO);
    assert!(sis.first_output_time() <= sis.boot_time(), "{:?} > {:?}", sis.first_output_time(), sis.boot_time());
    let version = sis.run_json("version").unwrap();
    assert_eq!(version["command"], "version");
    assert_eq!(version["ok"], true);
    assert_eq!(version["name"], "SIS");
    assert_eq!(version["version"], "0.1.0");
    assert!(sis.is_running());
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn help_lists_exactly_the_command_table_and_every_command_answers_help() {
    let mut sis = boot();
    let help = sis.run_json("help").unwrap();
    assert_eq!(help["schema_version"], 1);
    assert_eq!(help["command"], "help");
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

/// Sends `line`, expects exactly one error line with `code` whose message
/// names `culprit`, the same code in the `--json` form (unless `with_json` is
/// false), and a shell that still answers.
fn assert_refused(line: &[u8], code: &str, culprit: &str, with_json: bool) {
    let mut sis = boot();
    let output = sis.run_bytes(line).unwrap();
    let error = output.error().unwrap_or_else(|| panic!("not one error line: {output:?}"));
    assert_eq!(error.code, code, "{output:?}");
    assert!(error.message.contains(culprit), "message {:?} does not name {culprit:?}", error.message);
    assert_still_answers(&mut sis);
    if with_json {
        let mut json_line = line.to_vec();
        json_line.extend_from_slice(b" --json");
        let reply = parse_json_reply(&sis.run_bytes(&json_line).unwrap().text).unwrap();
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply["error"]["message"], error.message, "{reply}");
        assert_still_answers(&mut sis);
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn unknown_command_is_refused() {
    assert_refused(b"frobnicate", "unknown-command", "'frobnicate'", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn unknown_subcommand_is_refused() {
    assert_refused(b"threads start", "unknown-subcommand", "start", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn unknown_flag_is_refused() {
    assert_refused(b"meminfo --verbose", "unknown-flag", "--verbose", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn missing_flag_value_is_refused() {
    assert_refused(b"threads spawn --spin --count", "missing-value", "--count", false);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn value_of_the_wrong_kind_is_refused() {
    assert_refused(b"threads spawn --spin --count many", "invalid-value", "many", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn out_of_range_numbers_are_refused() {
    assert_refused(b"threads spawn --spin --count 17", "out-of-range", "17", true);
    assert_refused(b"threads spawn --spin --count 99999999999999999999", "out-of-range", "99999999999999999999", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn missing_required_argument_is_refused() {
    assert_refused(b"threads spawn", "missing-argument", "--spin", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn unexpected_argument_is_refused() {
    assert_refused(b"version extra", "unexpected-argument", "extra", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn duplicate_flag_is_refused() {
    assert_refused(b"threads spawn --spin --spin", "duplicate-flag", "--spin", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn unterminated_quote_is_refused() {
    assert_refused(b"echo \"unterminated", "unterminated-quote", "quote", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn invalid_utf8_is_refused() {
    assert_refused(b"echo \xff\xfe\xfd", "invalid-utf8", "offset 5", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn control_bytes_are_refused() {
    assert_refused(b"echo a\x07b", "control-byte", "0x07", true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_four_kibibyte_line_is_refused() {
    // Nothing of a line over the limit is read, so it has no --json form.
    assert_refused(&[b'x'; 4096], "line-too-long", "4096 bytes", false);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn refused_input_changes_nothing() {
    let mut sis = boot();
    for line in ["threads spawn --spin=yes", "threads spawn --spin --spin", "threads spawn --spin --count 17"] {
        assert!(sis.run(line).unwrap().error_code().is_some(), "{line}");
    }
    let threads = sis.run_json("threads").unwrap();
    assert_eq!(threads["threads"].as_array().map(Vec::len), Some(2), "{threads}");
    let spawned = sis.run_json("threads spawn --spin --count=3").unwrap();
    assert_eq!(spawned["spawned"].as_array().map(Vec::len), Some(3), "{spawned}");
    let threads = sis.run_json("threads").unwrap();
    assert_eq!(threads["threads"].as_array().map(Vec::len), Some(5), "{threads}");
}

/// One random line: mostly printable, some control and invalid bytes; log-uniform length, so mostly short.
fn random_line(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let length = (2f64.powf(rng.random_range(0.0..13.0)) as usize).min(RANDOM_LINE_MAX_BYTES);
    (0..length)
        .map(|_| match rng.random_range(0..100) {
            0..=79 => rng.random_range(0x20..0x7f),
            80..=89 => rng.random_range(0x00..0x20),
            _ => rng.random_range(0x7f..=0xff),
        })
        .collect()
}

fn random_input_seed() -> u64 {
    std::env::var("SIS_FUZZ_SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(0x5151_2026)
}

#[test]
fn random_lines_replay_from_their_seed_and_mix_every_kind_of_byte() {
    let lines = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..RANDOM_LINES).map(|_| random_line(&mut rng)).collect::<Vec<_>>()
    };
    let first = lines(7);
    assert_eq!(first, lines(7));
    assert_ne!(first, lines(8));
    let longest = first.iter().map(Vec::len).max().unwrap_or(0);
    // The lines cross the shell's limit, up to the generator's.
    assert!(longest > LINE_LIMIT_BYTES && longest <= RANDOM_LINE_MAX_BYTES, "longest {longest}");
    let short = first.iter().filter(|line| line.len() <= 128).count();
    assert!(short > RANDOM_LINES / 2, "only {short} of {RANDOM_LINES} lines are short");
    let bytes: Vec<u8> = first.concat();
    assert!(bytes.iter().any(|byte| byte.is_ascii_graphic()));
    assert!(bytes.iter().any(|byte| *byte < 0x20));
    assert!(bytes.iter().any(|byte| *byte >= 0x80));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn two_thousand_random_lines_never_crash_or_hang_the_kernel() {
    let seed = random_input_seed();
    println!("random input seed {seed} (set SIS_FUZZ_SEED to replay another)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sis = Sis::boot(&QemuConfig::new().timeout(Duration::from_secs(60))).unwrap();
    let mut bytes_sent = 0usize;
    for index in 0..RANDOM_LINES {
        let mut line = random_line(&mut rng);
        line.push(b'\r');
        bytes_sent += line.len();
        sis.send_raw(&line).unwrap_or_else(|error| panic!("seed {seed}, line {index}: {error}"));
        if index % LINES_PER_SYNC == LINES_PER_SYNC - 1 {
            sis.sync().unwrap_or_else(|error| panic!("seed {seed}, line {index}: {error}"));
        }
    }
    sis.sync().unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    assert!(sis.is_running(), "seed {seed}: QEMU exited");
    assert_eq!(sis.run("echo survived").unwrap(), "survived\n", "seed {seed}");
    println!("sent {bytes_sent} bytes in {RANDOM_LINES} lines");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_spinning_thread_is_preempted_and_the_shell_keeps_running() {
    let mut sis = boot();
    let spawned = sis.run_json("threads spawn --spin").unwrap();
    assert_eq!(spawned["spawned"].as_array().map(Vec::len), Some(1), "{spawned}");
    let spin_id = u64_field(&spawned["spawned"][0], "id");
    assert_eq!(spawned["spawned"][0]["name"], "spin");
    let cpu_times = |sis: &mut Sis| -> (u64, u64) {
        let threads = sis.run_json("threads").unwrap();
        let list = threads["threads"].as_array().unwrap().clone();
        let cpu_time_of = |predicate: &dyn Fn(&Value) -> bool| {
            list.iter()
                .find(|thread| predicate(thread))
                .map(|thread| u64_field(thread, "cpu_time_ns"))
                .expect("thread listed")
        };
        (cpu_time_of(&|thread| thread["name"] == "shell"), cpu_time_of(&|thread| thread["id"] == spin_id))
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

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn batch_mode_passes_when_every_command_succeeds() {
    let result = run_batch(&QemuConfig::new().batch("echo hi; version")).unwrap();
    assert_eq!(result.status, Some(exit::PASS), "{}", result.output);
    assert!(result.output.contains("sis> echo hi\nhi\nsis> version\n"), "{}", result.output);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn batch_mode_fails_when_a_command_fails_and_still_runs_the_rest() {
    let result = run_batch(&QemuConfig::new().batch("echo hi; nosuchcommand; echo after")).unwrap();
    assert_eq!(result.status, Some(exit::FAIL), "{}", result.output);
    assert!(result.output.contains("sis> nosuchcommand\nerror[unknown-command]: "), "{}", result.output);
    assert!(result.output.contains("sis> echo after\nafter\n"), "{}", result.output);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_kernel_panic_exits_with_the_panic_status_and_says_where() {
    let result = run_batch(&QemuConfig::new().batch("fault panic")).unwrap();
    assert_eq!(result.status, Some(exit::PANIC), "{}", result.output);
    assert!(result.output.contains("KERNEL PANIC: fault panic requested from the shell"), "{}", result.output);
    assert!(result.output.contains("  at kernel/src/commands/fault.rs:"), "{}", result.output);

    let result = run_batch(&QemuConfig::new().batch("fault data-abort")).unwrap();
    assert_eq!(result.status, Some(exit::PANIC), "{}", result.output);
    assert!(result.output.contains("UNEXPECTED EXCEPTION: synchronous (EL1): data abort"), "{}", result.output);
    assert!(result.output.contains("FAR_EL1  0x00007f0000000000"), "{}", result.output);
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
    let commands = "uptime; meminfo; threads; echo done";
    let config = QemuConfig::new().batch(commands).deterministic();
    let first = run_batch(&config).unwrap();
    let second = run_batch(&config).unwrap();
    assert_eq!(first.status, Some(exit::PASS), "{}", first.output);
    assert!(first.output.contains("sis> echo done\ndone\n"), "{}", first.output);
    assert_eq!(first.output, second.output);
    // Not vacuous: in real time the same commands print different counter readings.
    let real_time = QemuConfig::new().batch(commands);
    assert_ne!(run_batch(&real_time).unwrap().output, run_batch(&real_time).unwrap().output);
}
