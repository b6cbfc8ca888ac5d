//! The harness against `sis-fake-shell`, a stand-in for QEMU that speaks the console protocol.
//!
//! These run in plain `cargo test`: no kernel, no QEMU. They check what the
//! harness promises: each command's own output, exact JSON, resynchronisation,
//! deadlines everywhere, and no process left behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sis_proto::exit;
use sis_testing::{measure_boot_times, run_batch, HarnessError, QemuConfig, Sis};

/// The fake stands in for both QEMU and the kernel image (the harness checks that the image exists).
fn fake() -> QemuConfig {
    let program = env!("CARGO_BIN_EXE_sis-fake-shell");
    QemuConfig::new().qemu_program(program).kernel(program).timeout(Duration::from_secs(10))
}

fn boot(config: &QemuConfig) -> Sis {
    Sis::boot(config).unwrap_or_else(|error| panic!("fake boot failed: {error}"))
}

/// A private directory and the boot argument that makes the fake write its process ID there.
fn pid_file() -> (tempfile::TempDir, PathBuf, String) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("pid");
    let argument = format!("fake.pid_file={}", path.display());
    (directory, path, argument)
}

fn read_pid(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.parse().unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

/// Whether a process with this ID exists (a reaped process has no `/proc` entry).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn boot_waits_for_the_prompt_and_times_first_output_and_prompt_apart() {
    let sis = boot(&fake().bootargs("fake.boot_delay_ms=300"));
    // The fake sleeps 300 ms between its banner and its prompt. The host sees each byte a little after it
    // is written, so the observed gap can fall short of 300 ms by the banner's read delay, never by 100 ms.
    assert!(sis.boot_time() >= Duration::from_millis(300), "{sis:?}");
    assert!(sis.boot_time() - sis.first_output_time() >= Duration::from_millis(200), "{sis:?}");
    assert!(sis.first_output_time() < Duration::from_millis(300 + 5000));
    let output = String::from_utf8(sis.raw_output()).unwrap();
    assert_eq!(output, "SIS fake kernel (console protocol test double)\r\nmemory: 512 MiB\r\nsis> ");
}

#[test]
fn run_returns_only_the_output_of_its_own_command() {
    let mut sis = boot(&fake());
    let output = sis.run("echo a  b").unwrap();
    assert_eq!(output, "a b\n");
    assert_eq!(output.echo, b"echo a  b");
    assert_eq!(output.bytes, b"a b\r\n");
    assert_eq!(sis.run("flood 3").unwrap(), "flood line 1 of 3\nflood line 2 of 3\nflood line 3 of 3\n");
    assert_eq!(sis.run("").unwrap(), "", "an empty line prints nothing but the prompt");
    assert_eq!(sis.run("version").unwrap(), "SIS 0.1.0\n");
}

#[test]
fn output_that_arrived_before_the_line_was_sent_is_never_the_answer() {
    let mut sis = boot(&fake());
    sis.send_raw(b"echo stale\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sis.raw_output().ends_with(b"stale\r\nsis> ") {
        assert!(
            Instant::now() < deadline,
            "no reply to the raw line: {:?}",
            String::from_utf8_lossy(&sis.raw_output())
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sis.run("echo fresh").unwrap(), "fresh\n");
}

#[test]
fn a_line_typed_half_way_is_refused_until_sync() {
    let mut sis = boot(&fake());
    sis.send_raw(b"half-typed").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sis.raw_output().ends_with(b"half-typed") {
        assert!(Instant::now() < deadline, "no echo of the raw bytes");
        std::thread::sleep(Duration::from_millis(5));
    }
    match sis.run("echo ok") {
        Err(HarnessError::NotAtPrompt { output_tail }) => {
            assert!(output_tail.ends_with("sis> half-typed"), "{output_tail:?}")
        }
        other => panic!("expected NotAtPrompt, got {other:?}"),
    }
    sis.sync().unwrap();
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

#[test]
fn sync_recovers_from_garbage_that_prints_several_prompts() {
    let mut sis = boot(&fake());
    sis.send_raw(b"\x03\x03frob\rnope\x01\x02\xff\rhalf").unwrap();
    sis.sync().unwrap();
    assert!(sis.raw_output().ends_with(b"sis> "));
    assert_eq!(sis.run("echo after garbage").unwrap(), "after garbage\n");
}

#[test]
fn control_bytes_come_back_in_caret_notation_and_errors_parse() {
    let mut sis = boot(&fake());
    let output = sis.run_bytes(b"echo a\x07b").unwrap();
    assert_eq!(output.echo, b"echo a^Gb");
    assert_eq!(output.error_code(), Some("control-byte"));
    let output = sis.run_bytes(b"echo \xff").unwrap();
    assert_eq!(output.echo, b"echo \xff");
    assert_eq!(output.error_code(), Some("invalid-utf8"));
    let long = vec![b'x'; 4096];
    let output = sis.run_bytes(&long).unwrap();
    assert_eq!(output.echo.len(), 1024, "bytes past the limit are not echoed");
    assert_eq!(
        output.error().map(|error| (error.code, error.message)),
        Some(("line-too-long", "line of 4096 bytes; the limit is 1024"))
    );
}

#[test]
fn line_breaks_inside_a_line_are_refused_before_sending() {
    let mut sis = boot(&fake());
    match sis.run_bytes(b"echo a\rb") {
        Err(HarnessError::LineBreakInLine { offset, .. }) => assert_eq!(offset, 6),
        other => panic!("expected LineBreakInLine, got {other:?}"),
    }
    assert!(sis.raw_output().ends_with(b"memory: 512 MiB\r\nsis> "), "nothing was sent");
    assert_eq!(sis.run("echo ok").unwrap(), "ok\n");
}

#[test]
fn run_json_returns_the_object_and_refuses_anything_else() {
    let mut sis = boot(&fake().memory_mib(1024));
    let reply = sis.run_json("echo a b").unwrap();
    assert_eq!(reply, serde_json::json!({"schema_version": 1, "command": "echo", "ok": true, "text": "a b"}));
    assert_eq!(sis.run_json("meminfo").unwrap()["total_bytes"], 1u64 << 30);
    let refused = sis.run_json("frobnicate").unwrap();
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "unknown-command");
    for (kind, expected_reason) in [
        ("two-objects", "2 lines, not one"),
        ("old-schema", "schema_version is not 1"),
        ("not-json", "expected ident at line 1 column 2"),
    ] {
        match sis.run_json(&format!("badjson {kind}")) {
            Err(HarnessError::NotJson { reason, .. }) => assert_eq!(reason, expected_reason, "{kind}"),
            other => panic!("{kind}: expected NotJson, got {other:?}"),
        }
    }
    assert_eq!(sis.run("echo still here").unwrap(), "still here\n");
}

#[test]
fn megabytes_of_output_never_block_the_emulator() {
    let mut sis = boot(&fake());
    let count = 100_000;
    let output = sis.run(&format!("flood {count}")).unwrap();
    assert_eq!(output.text.lines().count(), count);
    assert_eq!(output.text.lines().last(), Some("flood line 100000 of 100000"));
    // Standard error is drained too: a megabyte there would otherwise fill its pipe and stop the fake.
    assert_eq!(sis.run("write-stderr 1000000").unwrap(), "wrote 1000000 bytes to stderr\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sis.stderr_output().len() < 1_000_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(sis.stderr_output().len(), 1_000_000);
}

#[test]
fn latency_is_measured_from_send_to_prompt() {
    let mut sis = boot(&fake());
    let output = sis.run("sleep 200").unwrap();
    assert_eq!(output, "slept 200 ms\n");
    assert!(output.latency >= Duration::from_millis(200), "{:?}", output.latency);
}

#[test]
fn a_command_that_never_answers_times_out_and_qemu_is_killed() {
    let (_directory, path, argument) = pid_file();
    let mut sis = boot(&fake().bootargs(argument).timeout(Duration::from_millis(300)));
    let pid = read_pid(&path);
    assert_eq!(sis.pid(), pid);
    let started = Instant::now();
    match sis.run("hang") {
        Err(HarnessError::Timeout { waiting_for, waited, output_tail, .. }) => {
            assert_eq!(waiting_for, "the prompt after \"hang\"");
            assert_eq!(waited, Duration::from_millis(300));
            assert!(output_tail.ends_with("sis> hang\n"), "{output_tail:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!sis.is_running());
    assert!(!process_exists(pid), "process {pid} survived the timeout");
    match sis.run("echo ok") {
        Err(HarnessError::NotAtPrompt { .. }) => {}
        other => panic!("a killed QEMU answers nothing; got {other:?}"),
    }
}

#[test]
fn input_the_guest_never_reads_times_out_instead_of_blocking() {
    let (_directory, path, argument) = pid_file();
    let mut sis = boot(&fake().bootargs(argument).timeout(Duration::from_millis(500)));
    let pid = read_pid(&path);
    sis.send_raw(b"hang\r").unwrap();
    // Far more than a pipe holds: the write can only finish if the fake reads.
    match sis.send_raw(&vec![b'x'; 4 << 20]) {
        Err(HarnessError::Timeout { waiting_for, .. }) => {
            assert_eq!(waiting_for, "QEMU to take 4194304 bytes of input")
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(!process_exists(pid), "process {pid} survived the timeout");
}

#[test]
fn dropping_the_session_kills_and_reaps_qemu() {
    let (_directory, path, argument) = pid_file();
    let sis = boot(&fake().bootargs(argument));
    let pid = read_pid(&path);
    assert!(process_exists(pid));
    drop(sis);
    assert!(!process_exists(pid), "process {pid} outlived its session");
}

#[test]
fn a_boot_without_a_prompt_times_out_and_leaves_nothing_running() {
    let (_directory, path, argument) = pid_file();
    let config = fake().bootargs(format!("{argument} fake.boot=silent")).timeout(Duration::from_millis(300));
    match Sis::boot(&config) {
        Err(HarnessError::Timeout { waiting_for, output_tail, .. }) => {
            assert_eq!(waiting_for, "the first prompt");
            assert_eq!(output_tail, "");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(!process_exists(read_pid(&path)));
}

#[test]
fn an_emulator_that_exits_during_boot_is_reported_with_its_status_and_output() {
    match Sis::boot(&fake().bootargs("fake.boot=exit")) {
        Err(HarnessError::Exited { waiting_for, status, output_tail, .. }) => {
            assert_eq!(waiting_for, "the first prompt");
            assert_eq!(status, Some(7));
            assert_eq!(output_tail, "SIS fake kernel: exiting during boot\n");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[test]
fn missing_kernel_and_missing_emulator_are_typed_errors() {
    let missing = Path::new("/nonexistent/sis-kernel");
    match Sis::boot(&fake().kernel(missing)) {
        Err(HarnessError::KernelMissing { path }) => assert_eq!(path, missing),
        other => panic!("expected KernelMissing, got {other:?}"),
    }
    let config = fake().qemu_program("/nonexistent/qemu-system-aarch64");
    match run_batch(&config) {
        Err(HarnessError::Spawn { program, source }) => {
            assert_eq!(program, Path::new("/nonexistent/qemu-system-aarch64"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[test]
fn shutdown_ends_the_emulator_with_status_zero() {
    let mut sis = boot(&fake());
    sis.send_raw(b"shutdown\r").unwrap();
    assert_eq!(sis.wait_exit().unwrap(), Some(0));
}

#[test]
fn batch_runs_report_pass_fail_and_panic_with_the_whole_output() {
    let result = run_batch(&fake().batch("echo hi; version")).unwrap();
    assert_eq!(result.status, Some(exit::PASS));
    assert_eq!(result.describe_status(), "pass");
    assert_eq!(
        result.output,
        "SIS fake kernel (console protocol test double)\nmemory: 512 MiB\nsis> echo hi\nhi\nsis> version\nSIS 0.1.0\n"
    );
    let result = run_batch(&fake().batch("echo hi; nosuchcommand; echo after")).unwrap();
    assert_eq!(result.status, Some(exit::FAIL));
    assert!(result.output.ends_with(
        "sis> nosuchcommand\nerror[unknown-command]: unknown command 'nosuchcommand'\nsis> echo after\nafter\n"
    ));
    let result = run_batch(&fake().batch("fault panic")).unwrap();
    assert_eq!(result.status, Some(exit::PANIC));
    assert!(result.output.ends_with("KERNEL PANIC: fault panic requested from the shell\n"));
}

#[test]
fn a_batch_run_that_never_ends_times_out_and_is_killed() {
    let (_directory, path, argument) = pid_file();
    let config = fake().bootargs(format!("{argument} sis.run=hang")).timeout(Duration::from_millis(300));
    match run_batch(&config) {
        Err(HarnessError::Timeout { waiting_for, output_tail, .. }) => {
            assert_eq!(waiting_for, "QEMU to exit");
            assert!(output_tail.ends_with("sis> hang\n"), "{output_tail:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(!process_exists(read_pid(&path)));
}

#[test]
fn boot_times_are_measured_per_run() {
    let mut seen = Vec::new();
    let times =
        measure_boot_times(&fake().bootargs("fake.boot_delay_ms=200"), 3, |run, sample| seen.push((run, *sample)))
            .unwrap();
    assert_eq!(seen.iter().map(|(run, _)| *run).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(times.samples, seen.iter().map(|(_, sample)| *sample).collect::<Vec<_>>());
    for sample in &times.samples {
        // The fake sleeps 200 ms after its first line. Both times are taken when
        // the reader sees the bytes, and the first can be seen a little late, so
        // the gap between them may fall just short of 200 ms (199.97 ms seen);
        // measured from the spawn, the prompt can never come before 200 ms.
        assert!(sample.prompt >= Duration::from_millis(200), "{sample:?}");
        assert!(sample.prompt > sample.first_output, "{sample:?}");
    }
    let median = times.median_prompt().unwrap();
    assert!(times.samples.iter().any(|sample| sample.prompt == median), "odd count: the median is one of the runs");
}
