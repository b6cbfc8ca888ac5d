//! Sandbox tests on small agents written as WebAssembly text.

use super::*;
use crate::host::fake::FakeHost;
use crate::protocol::{encode_request, Call, ErrorCode, LogLevel, Request};
use alloc::string::String;
use alloc::vec::Vec;

/// Where a test agent keeps its response buffer, and its size.
const RESPONSE_AT: u32 = 0x8000;
const RESPONSE_CAP: u32 = 1024;

/// An agent that sends `messages` in order (each from its own data segment) and returns the status of the
/// last response (or -1 when there were none).
fn agent_sending(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut data = String::new();
    let mut calls = String::new();
    let mut offset = 0x100u32;
    for message in messages {
        data.push_str(&format!("(data (i32.const {offset}) \"{}\")\n", escape(message)));
        calls.push_str(&format!(
            "(drop (call $host (i32.const {offset}) (i32.const {}) (i32.const {RESPONSE_AT}) (i32.const {RESPONSE_CAP})))\n",
            message.len()
        ));
        offset += message.len() as u32 + 16;
    }
    let result = if messages.is_empty() {
        String::from("(i32.const -1)")
    } else {
        format!("(i32.load16_u (i32.const {}))", RESPONSE_AT + 2)
    };
    wat(&format!(
        r#"(module
            (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            {data}
            (func (export "run") (result i32) {calls} {result}))"#
    ))
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

fn wat(text: &str) -> Vec<u8> {
    ::wat::parse_str(text).expect("test module parses")
}

fn load(wasm: &[u8], caps: &str) -> Sandbox {
    Sandbox::load("test", wasm, CapabilitySet::parse(caps).unwrap(), Limits::default()).unwrap()
}

fn request(call_id: u32, request: Request) -> Vec<u8> {
    encode_request(call_id, &request)
}

fn host() -> FakeHost {
    FakeHost::with_files(&[("/tmp/a.txt", "alpha"), ("/tmp/b.txt", "beta"), ("/etc/passwd", "root")])
}

#[test]
fn an_allowed_list_reaches_the_host_and_is_audited() {
    let message = request(7, Request::FsList { path: "/tmp".into() });
    let mut sandbox = load(&agent_sending(core::slice::from_ref(&message)), "fs.list:/tmp/**");
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 0 }));
    assert_eq!(host.entered, ["fs_list /tmp"]);
    let records: Vec<_> = sandbox.audit().records().cloned().collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].call, Some(Call::FsList));
    assert_eq!(records[0].call_id, 7);
    assert_eq!(records[0].outcome, ErrorCode::Ok);
    assert_eq!(records[0].digest, crate::audit::digest(&message));
    // 16-byte request + "a.txt\nb.txt" (11 bytes) moved: 100 + 27 / 8.
    assert_eq!(records[0].fuel_cost, 103);
    let usage = sandbox.usage();
    assert_eq!((usage.calls, usage.denials, usage.slices), (1, 0, 1));
    assert!(usage.fuel_used > 103, "fuel used {} includes the call's charge", usage.fuel_used);
}

#[test]
fn the_response_carries_status_call_id_and_payload() {
    // The agent returns the response length the host call returned, so the exact bytes are checked.
    let message = request(9, Request::FsRead { path: "/tmp/a.txt".into() });
    let wasm = wat(&format!(
        r#"(module
            (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 256) "{}")
            (func (export "run") (result i32)
              (call $host (i32.const 256) (i32.const {}) (i32.const {RESPONSE_AT}) (i32.const {RESPONSE_CAP}))))"#,
        escape(&message),
        message.len()
    ));
    let mut sandbox = load(&wasm, "fs.read:/tmp/*");
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 12 + 5 }));
    let mut response = [0u8; 17];
    sandbox.memory.read(&sandbox.store, RESPONSE_AT as usize, &mut response).unwrap();
    assert_eq!(response.to_vec(), crate::protocol::encode_response(ErrorCode::Ok, 9, b"alpha"));
}

#[test]
fn a_call_outside_the_capabilities_is_denied_before_the_host_sees_it() {
    let messages = [
        request(1, Request::FsRead { path: "/etc/passwd".into() }),
        request(2, Request::FsRead { path: "/tmp/../etc/passwd".into() }),
        request(3, Request::FsWrite { path: "/tmp/a.txt".into(), data: b"x".to_vec() }),
        request(4, Request::CommandRun { line: "reboot now".into() }),
    ];
    let mut sandbox = load(&agent_sending(&messages), "fs.read:/tmp/**,command:stresstest");
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 9 }));
    assert!(host.entered.is_empty(), "host entered: {:?}", host.entered);
    let outcomes: Vec<_> = sandbox.audit().records().map(|record| (record.call_id, record.outcome)).collect();
    assert_eq!(
        outcomes,
        [(1, ErrorCode::Denied), (2, ErrorCode::Denied), (3, ErrorCode::Denied), (4, ErrorCode::Denied)]
    );
    assert_eq!(sandbox.usage().denials, 4);
    assert_eq!(host.files["/tmp/a.txt"], b"alpha");
}

#[test]
fn paths_are_normalized_before_the_host_sees_them() {
    let message = request(1, Request::FsRead { path: "//tmp/./x/../a.txt".into() });
    let mut sandbox = load(&agent_sending(&[message]), "fs.read:/tmp/*");
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 0 }));
    assert_eq!(host.entered, ["fs_read /tmp/a.txt"]);
}

#[test]
fn calls_past_the_slice_rate_limit_are_refused() {
    let log = |id| request(id, Request::Log { level: LogLevel::Info, message: "hi".into() });
    let limits = Limits { calls_per_slice: 2, ..Limits::default() };
    let wasm = agent_sending(&[log(1), log(2), log(3)]);
    let mut sandbox = Sandbox::load("chatty", &wasm, CapabilitySet::parse("log").unwrap(), limits).unwrap();
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 10 }));
    assert_eq!(host.logs, ["chatty Info hi", "chatty Info hi"]);
    assert_eq!(sandbox.usage().rate_limited, 1);
    let outcomes: Vec<_> = sandbox.audit().records().map(|record| record.outcome).collect();
    assert_eq!(outcomes, [ErrorCode::Ok, ErrorCode::Ok, ErrorCode::RateLimited]);
}

#[test]
fn sleep_pauses_the_agent_and_the_next_step_resumes_it() {
    let messages = [
        request(1, Request::Sleep { duration_ms: 250 }),
        request(2, Request::Log { level: LogLevel::Warn, message: "awake".into() }),
    ];
    let mut sandbox = load(&agent_sending(&messages), "log");
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Sleeping { duration_ms: 250 });
    assert!(host.logs.is_empty());
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::Finished { exit_code: 0 }));
    assert_eq!(host.logs, ["test Warn awake"]);
    assert_eq!(sandbox.usage().slices, 2);
}

#[test]
fn an_infinite_loop_is_preempted_each_slice_then_runs_out_of_fuel() {
    let wasm = wat(r#"(module
        (memory (export "memory") 1)
        (func (export "run") (result i32) (loop $spin (br $spin)) (i32.const 0)))"#);
    let limits = Limits { fuel_per_slice: 10_000, fuel_total: 35_000, ..Limits::default() };
    let mut sandbox = Sandbox::load("spin", &wasm, CapabilitySet::default(), limits).unwrap();
    let mut host = host();
    let mut outcomes = Vec::new();
    loop {
        let outcome = sandbox.step(&mut host);
        let stopped = matches!(outcome, StepOutcome::Stopped(_));
        outcomes.push(outcome);
        if stopped || outcomes.len() > 10 {
            break;
        }
    }
    assert_eq!(
        outcomes,
        [
            StepOutcome::Preempted,
            StepOutcome::Preempted,
            StepOutcome::Preempted,
            StepOutcome::Stopped(StopReason::OutOfFuel)
        ]
    );
    assert_eq!(sandbox.usage().fuel_used, 35_000);
    assert_eq!(sandbox.usage().slices, 4);
}

#[test]
fn a_memory_bomb_stops_at_the_limit() {
    let wasm = wat(r#"(module
        (memory (export "memory") 1)
        (func (export "run") (result i32)
          (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
          (i32.const 0)))"#);
    let limits = Limits { memory_pages: 4, ..Limits::default() };
    let mut sandbox = Sandbox::load("bomb", &wasm, CapabilitySet::default(), limits).unwrap();
    assert_eq!(sandbox.step(&mut host()), StepOutcome::Stopped(StopReason::MemoryLimit));
    assert_eq!(sandbox.usage().memory_bytes, 4 * PAGE_BYTES);
}

#[test]
fn a_trap_stops_the_agent_with_the_interpreter_message() {
    let wasm = wat(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) unreachable))"#);
    let mut sandbox = load(&wasm, "");
    match sandbox.step(&mut host()) {
        StepOutcome::Stopped(StopReason::Trap(message)) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // A stopped agent stays stopped.
    assert!(matches!(sandbox.step(&mut host()), StepOutcome::Stopped(StopReason::Trap(_))));
}

#[test]
fn malformed_messages_are_answered_until_the_limit_then_stop_the_agent() {
    let mut bad_version = request(1, Request::Log { level: LogLevel::Info, message: "x".into() });
    bad_version[0] = 9;
    let unknown_call = {
        let mut message = request(2, Request::Log { level: LogLevel::Info, message: "x".into() });
        message[2] = 99;
        message
    };
    let truncated = vec![1u8, 0, 6];
    let mut trailing = request(4, Request::Sleep { duration_ms: 1 });
    trailing.push(0);
    let limits = Limits { max_protocol_errors: 3, ..Limits::default() };
    let wasm = agent_sending(&[bad_version, unknown_call, truncated, trailing]);
    let mut sandbox = Sandbox::load("garbage", &wasm, CapabilitySet::parse("log").unwrap(), limits).unwrap();
    let mut host = host();
    assert_eq!(
        sandbox.step(&mut host),
        StepOutcome::Stopped(StopReason::ProtocolViolation(Violation::TooManyMalformed(DecodeError::TrailingBytes {
            extra: 1
        })))
    );
    assert!(host.entered.is_empty());
    let outcomes: Vec<_> = sandbox.audit().records().map(|record| (record.call, record.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (None, ErrorCode::BadVersion),
            (None, ErrorCode::UnknownCall),
            (None, ErrorCode::Truncated),
            (None, ErrorCode::TrailingBytes)
        ]
    );
    assert_eq!(sandbox.usage().protocol_errors, 4);
}

#[test]
fn pointers_outside_memory_are_a_violation() {
    let wasm = wat(r#"(module
        (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (call $host (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 64))))"#);
    let mut sandbox = load(&wasm, "");
    assert_eq!(
        sandbox.step(&mut host()),
        StepOutcome::Stopped(StopReason::ProtocolViolation(Violation::RequestOutOfBounds))
    );
    let wasm = wat(r#"(module
        (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (call $host (i32.const 0) (i32.const 12) (i32.const 65530) (i32.const 64))))"#);
    let mut sandbox = load(&wasm, "");
    assert_eq!(
        sandbox.step(&mut host()),
        StepOutcome::Stopped(StopReason::ProtocolViolation(Violation::ResponseBufferInvalid))
    );
}

#[test]
fn a_response_larger_than_the_buffer_says_how_much_is_needed() {
    let message = request(5, Request::FsRead { path: "/tmp/b.txt".into() });
    let wasm = wat(&format!(
        r#"(module
            (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 256) "{}")
            (func (export "run") (result i32)
              (drop (call $host (i32.const 256) (i32.const {}) (i32.const {RESPONSE_AT}) (i32.const 14)))
              (i32.load (i32.const {}))))"#,
        escape(&message),
        message.len(),
        RESPONSE_AT + 8
    ));
    let mut sandbox = load(&wasm, "fs.read:/tmp/**");
    assert_eq!(sandbox.step(&mut host()), StepOutcome::Stopped(StopReason::Finished { exit_code: 4 }));
    let outcome = sandbox.audit().records().next().unwrap().outcome;
    assert_eq!(outcome, ErrorCode::ResponseTooLarge);
}

#[test]
fn modules_outside_the_agent_abi_are_refused_at_load() {
    let limits = Limits::default();
    let load = |text: &str| Sandbox::load("x", &wat(text), CapabilitySet::default(), limits).map(|_| ()).unwrap_err();
    assert_eq!(
        load(
            r#"(module (import "env" "abort" (func)) (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#
        ),
        LoadError::ForbiddenImport { module: "env".into(), name: "abort".into() }
    );
    assert_eq!(
        load(
            r#"(module (import "sis" "host_call" (func (param i32))) (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#
        ),
        LoadError::WrongImportType
    );
    assert_eq!(
        load(r#"(module (func (export "run") (result i32) (i32.const 0)))"#),
        LoadError::MissingExport("memory")
    );
    assert_eq!(load(r#"(module (memory (export "memory") 1) (func (export "run")))"#), LoadError::MissingExport("run"));
    assert_eq!(
        load(r#"(module (memory (export "memory") 17) (func (export "run") (result i32) (i32.const 0)))"#),
        LoadError::MemoryLimit { declared_pages: 17, limit_pages: 16 }
    );
    assert!(matches!(
        Sandbox::load("x", b"\0asm\x01\0\0\0\x7f", CapabilitySet::default(), limits),
        Err(LoadError::Invalid(_))
    ));
}

#[test]
fn denials_past_the_limit_stop_the_agent() {
    let probe = |id| request(id, Request::FsRead { path: "/etc/passwd".into() });
    let limits = Limits { max_denials: 2, ..Limits::default() };
    let wasm = agent_sending(&[probe(1), probe(2), probe(3), probe(4)]);
    let mut sandbox = Sandbox::load("prober", &wasm, CapabilitySet::parse("fs.read:/tmp/**").unwrap(), limits).unwrap();
    let mut host = host();
    assert_eq!(sandbox.step(&mut host), StepOutcome::Stopped(StopReason::CapabilityViolation { denials: 3 }));
    assert!(host.entered.is_empty());
    let ids: Vec<_> = sandbox.audit().records().map(|record| (record.call_id, record.outcome)).collect();
    assert_eq!(ids, [(1, ErrorCode::Denied), (2, ErrorCode::Denied), (3, ErrorCode::Denied)]);
}

#[test]
fn serve_once_checks_capabilities_like_a_sandbox() {
    let caps = CapabilitySet::parse("fs.list:/tmp/**").unwrap();
    let mut host = host();
    let listing = request(3, Request::FsList { path: "/tmp/".into() });
    let (response, record) = crate::serve_once("self-test", &caps, &listing, &mut host);
    assert_eq!(response, crate::protocol::encode_response(ErrorCode::Ok, 3, b"a.txt\nb.txt"));
    assert_eq!(
        (record.call, record.outcome, record.fuel_cost),
        (Some(Call::FsList), ErrorCode::Ok, 100 + (17 + 11) / 8)
    );
    let escape = request(4, Request::FsList { path: "/tmp/..".into() });
    let (response, record) = crate::serve_once("self-test", &caps, &escape, &mut host);
    assert_eq!(response, crate::protocol::encode_response(ErrorCode::Denied, 4, b""));
    assert_eq!(record.outcome, ErrorCode::Denied);
    let (response, _) = crate::serve_once("self-test", &caps, &[1, 0], &mut host);
    assert_eq!(response, crate::protocol::encode_response(ErrorCode::Truncated, 0, b""));
    assert_eq!(host.entered, ["fs_list /tmp"]);
}
