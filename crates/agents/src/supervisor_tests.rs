//! Supervisor tests on a fake clock (the `now_ms` each call is given).

use super::*;
use crate::host::fake::FakeHost;
use crate::protocol::{encode_request, ErrorCode, LogLevel, Request};
use alloc::format;

fn wat(text: &str) -> Vec<u8> {
    ::wat::parse_str(text).expect("test module parses")
}

/// Traps at once.
fn crasher() -> Vec<u8> {
    wat(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) unreachable))"#)
}

/// Returns 0 at once.
fn finisher() -> Vec<u8> {
    wat(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#)
}

/// Spins forever.
fn spinner() -> Vec<u8> {
    wat(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#)
}

/// Sends each message once, then returns 0.
fn sender(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut data = String::new();
    let mut calls = String::new();
    let mut offset = 0x100usize;
    for message in messages {
        let bytes: String = message.iter().map(|byte| format!("\\{byte:02x}")).collect();
        data.push_str(&format!("(data (i32.const {offset}) \"{bytes}\")"));
        calls.push_str(&format!(
            "(drop (call $host (i32.const {offset}) (i32.const {}) (i32.const 32768) (i32.const 1024)))",
            message.len()
        ));
        offset += message.len() + 16;
    }
    wat(&format!(
        r#"(module (import "sis" "host_call" (func $host (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1) {data} (func (export "run") (result i32) {calls} (i32.const 0)))"#
    ))
}

const POLICY: RestartPolicy =
    RestartPolicy::OnFailure { initial_backoff_ms: 100, max_backoff_ms: 350, max_restarts: 3, window_ms: 10_000 };

fn supervisor_with(name: &str, wasm: &[u8], caps: &str, policy: RestartPolicy) -> Supervisor {
    let mut supervisor = Supervisor::new();
    supervisor.load(name, wasm, CapabilitySet::parse(caps).unwrap(), Limits::default(), policy).unwrap();
    supervisor
}

#[test]
fn a_crashing_agent_restarts_with_exponential_backoff_then_gives_up() {
    let mut supervisor = supervisor_with("crash", &crasher(), "", POLICY);
    let mut host = FakeHost::default();
    assert_eq!(supervisor.status("crash").unwrap().state, State::Loaded);
    assert!(supervisor.run_slice("crash", &mut host, 0).unwrap().is_none(), "a loaded agent does not run");
    supervisor.start("crash").unwrap();
    // (time of the slice, state after it, when the next restart is due)
    let mut timeline = Vec::new();
    for now in [0, 50, 99, 100, 299, 300, 649, 650, 1000, 5000] {
        let ran = supervisor.run_slice("crash", &mut host, now).unwrap().is_some();
        let status = supervisor.status("crash").unwrap();
        timeline.push((now, ran, status.state, status.due_at_ms, status.restarts));
    }
    assert_eq!(
        timeline,
        [
            (0, true, State::Crashed, Some(100), 0),
            (50, false, State::Crashed, Some(100), 0),
            (99, false, State::Crashed, Some(100), 0),
            (100, true, State::Crashed, Some(300), 1),
            (299, false, State::Crashed, Some(300), 1),
            // 100 * 2^2 = 400 is capped at 350.
            (300, true, State::Crashed, Some(650), 2),
            (649, false, State::Crashed, Some(650), 2),
            (650, true, State::GaveUp, None, 3),
            (1000, false, State::GaveUp, None, 3),
            (5000, false, State::GaveUp, None, 3),
        ]
    );
    let status = supervisor.status("crash").unwrap();
    assert!(matches!(status.last_stop, Some(LastStop::Agent(StopReason::Trap(_)))));
    assert_eq!(status.usage.slices, 4);
    // An operator start clears the window.
    supervisor.start("crash").unwrap();
    assert_eq!(supervisor.status("crash").unwrap().state, State::Running);
    supervisor.run_slice("crash", &mut host, 6000).unwrap();
    assert_eq!(supervisor.status("crash").unwrap().due_at_ms, Some(6100));
}

#[test]
fn restarts_older_than_the_window_no_longer_count() {
    let policy =
        RestartPolicy::OnFailure { initial_backoff_ms: 10, max_backoff_ms: 1000, max_restarts: 2, window_ms: 1000 };
    let mut supervisor = supervisor_with("crash", &crasher(), "", policy);
    let mut host = FakeHost::default();
    supervisor.start("crash").unwrap();
    supervisor.run_slice("crash", &mut host, 0).unwrap(); // restart due at 10
    supervisor.run_slice("crash", &mut host, 10).unwrap(); // restart due at 10 + 20 = 30
                                                           // At 1030 both earlier restarts (at 10 and 30) are a window old: the next backoff is the first again.
    supervisor.run_slice("crash", &mut host, 1030).unwrap();
    let status = supervisor.status("crash").unwrap();
    assert_eq!((status.state, status.due_at_ms, status.restarts), (State::Crashed, Some(1040), 2));
}

#[test]
fn policy_never_leaves_a_failed_agent_crashed() {
    let mut supervisor = supervisor_with("crash", &crasher(), "", RestartPolicy::Never);
    let mut host = FakeHost::default();
    supervisor.start("crash").unwrap();
    assert!(supervisor.run_slice("crash", &mut host, 0).unwrap().is_some());
    for now in [1, 1_000, 1_000_000] {
        assert!(supervisor.run_slice("crash", &mut host, now).unwrap().is_none());
    }
    let status = supervisor.status("crash").unwrap();
    assert_eq!((status.state, status.due_at_ms, status.restarts), (State::Crashed, None, 0));
}

#[test]
fn a_clean_exit_is_stopped_and_not_restarted() {
    let mut supervisor = supervisor_with("done", &finisher(), "", POLICY);
    let mut host = FakeHost::default();
    supervisor.start("done").unwrap();
    assert_eq!(
        supervisor.run_slice("done", &mut host, 0).unwrap(),
        Some(StepOutcome::Stopped(StopReason::Finished { exit_code: 0 }))
    );
    assert!(supervisor.run_slice("done", &mut host, 10_000).unwrap().is_none());
    let status = supervisor.status("done").unwrap();
    assert_eq!(status.state, State::Stopped);
    assert_eq!(status.last_stop, Some(LastStop::Agent(StopReason::Finished { exit_code: 0 })));
}

#[test]
fn a_sleeping_agent_wakes_at_its_time() {
    let messages = [
        encode_request(1, &Request::Sleep { duration_ms: 500 }),
        encode_request(2, &Request::Log { level: LogLevel::Info, message: "up".into() }),
    ];
    let mut supervisor = supervisor_with("sleepy", &sender(&messages), "log", RestartPolicy::Never);
    let mut host = FakeHost::default();
    supervisor.start("sleepy").unwrap();
    assert_eq!(
        supervisor.run_slice("sleepy", &mut host, 1000).unwrap(),
        Some(StepOutcome::Sleeping { duration_ms: 500 })
    );
    let status = supervisor.status("sleepy").unwrap();
    assert_eq!((status.state, status.due_at_ms), (State::Sleeping, Some(1500)));
    assert!(matches!(supervisor.begin_slice("sleepy", 1499).unwrap(), Slice::WaitUntil(1500)));
    assert!(host.logs.is_empty());
    assert_eq!(
        supervisor.run_slice("sleepy", &mut host, 1500).unwrap(),
        Some(StepOutcome::Stopped(StopReason::Finished { exit_code: 0 }))
    );
    assert_eq!(host.logs, ["sleepy Info up"]);
}

#[test]
fn a_stop_during_a_slice_takes_effect_when_the_slice_ends() {
    let mut supervisor = supervisor_with("spin", &spinner(), "", POLICY);
    let mut host = FakeHost::default();
    supervisor.start("spin").unwrap();
    let Slice::Run(mut sandbox) = supervisor.begin_slice("spin", 0).unwrap() else { panic!("not handed out") };
    assert_eq!(supervisor.unload("spin"), Err(SupervisorError::Busy("spin".into())));
    assert!(matches!(supervisor.begin_slice("spin", 0), Err(SupervisorError::Busy(_))));
    supervisor.stop("spin").unwrap();
    let outcome = sandbox.step(&mut host);
    assert_eq!(outcome, StepOutcome::Preempted);
    supervisor.end_slice("spin", sandbox, outcome, 5);
    let status = supervisor.status("spin").unwrap();
    assert_eq!((status.state, status.last_stop), (State::Stopped, Some(LastStop::Operator)));
    assert_eq!(status.usage.memory_bytes, 0, "a stopped agent holds no instance");
    // The spin loop is charged in steps of 2 units (wasmi charges per block of instructions): the slice ended with
    // 1 unit it could not spend, which stays unspent.
    assert_eq!(status.usage.fuel_used, Limits::default().fuel_per_slice - 1);
    supervisor.unload("spin").unwrap();
    assert!(supervisor.statuses().is_empty());
}

#[test]
fn usage_adds_up_over_restarts_and_the_audit_filters_by_agent_and_refusal() {
    let messages = [
        encode_request(1, &Request::Log { level: LogLevel::Info, message: "a".into() }),
        encode_request(2, &Request::FsRead { path: "/etc/passwd".into() }),
    ];
    let mut wasm = sender(&messages);
    let mut supervisor = Supervisor::new();
    let limits = Limits::default();
    supervisor.load("one", &wasm, CapabilitySet::parse("log").unwrap(), limits, RestartPolicy::Never).unwrap();
    supervisor.load("two", &wasm, CapabilitySet::parse("log").unwrap(), limits, RestartPolicy::Never).unwrap();
    let mut host = FakeHost::default();
    for round in 0..3u64 {
        supervisor.start("one").unwrap();
        supervisor.run_slice("one", &mut host, round).unwrap();
    }
    supervisor.start("two").unwrap();
    supervisor.run_slice("two", &mut host, 0).unwrap();
    let one = supervisor.status("one").unwrap().usage;
    assert_eq!((one.calls, one.denials, one.slices), (6, 3, 3));
    let single = supervisor.status("two").unwrap().usage;
    assert_eq!(one.fuel_used, 3 * single.fuel_used);
    assert_eq!(supervisor.audit(None, false).len(), 8);
    let refused: Vec<_> = supervisor.audit(Some("one"), true).iter().map(|r| (r.agent.clone(), r.outcome)).collect();
    assert_eq!(
        refused,
        [("one".into(), ErrorCode::Denied), ("one".into(), ErrorCode::Denied), ("one".into(), ErrorCode::Denied)]
    );
    assert_eq!(supervisor.audit(Some("two"), false).len(), 2);
    assert_eq!(supervisor.audit(Some("nobody"), false).len(), 0);
    wasm.clear();
}

#[test]
fn bad_operations_are_refused_and_change_nothing() {
    let mut supervisor = supervisor_with("a", &finisher(), "", RestartPolicy::Never);
    let caps = CapabilitySet::default();
    let limits = Limits::default();
    assert_eq!(
        supervisor.load("a", &finisher(), caps.clone(), limits, RestartPolicy::Never),
        Err(SupervisorError::DuplicateName("a".into()))
    );
    for name in ["", "Upper", "has space", "x/../y", &"n".repeat(33)] {
        assert_eq!(
            supervisor.load(name, &finisher(), caps.clone(), limits, RestartPolicy::Never),
            Err(SupervisorError::BadName(name.into()))
        );
    }
    assert!(matches!(
        supervisor.load("junk", b"not wasm", caps.clone(), limits, RestartPolicy::Never),
        Err(SupervisorError::Load(LoadError::Invalid(_)))
    ));
    assert_eq!(supervisor.start("zz"), Err(SupervisorError::UnknownAgent("zz".into())));
    supervisor.start("a").unwrap();
    assert_eq!(supervisor.start("a"), Err(SupervisorError::AlreadyRunning("a".into())));
    assert_eq!(supervisor.names(), ["a"]);
    for index in 1..MAX_AGENTS {
        supervisor.load(&format!("x{index}"), &finisher(), caps.clone(), limits, RestartPolicy::Never).unwrap();
    }
    assert_eq!(
        supervisor.load("full", &finisher(), caps, limits, RestartPolicy::Never),
        Err(SupervisorError::TooManyAgents)
    );
    assert_eq!(SupervisorError::TooManyAgents.code(), "too-many-agents");
}

#[test]
fn restart_starts_a_fresh_instance() {
    let mut supervisor = supervisor_with("spin", &spinner(), "", RestartPolicy::Never);
    let mut host = FakeHost::default();
    supervisor.start("spin").unwrap();
    supervisor.run_slice("spin", &mut host, 0).unwrap();
    supervisor.restart("spin").unwrap();
    let status = supervisor.status("spin").unwrap();
    assert_eq!((status.state, status.last_stop), (State::Running, Some(LastStop::Operator)));
    assert_eq!(status.usage.slices, 1);
    supervisor.run_slice("spin", &mut host, 1).unwrap();
    assert_eq!(supervisor.status("spin").unwrap().usage.slices, 2);
}

#[test]
fn sandboxes_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Sandbox>();
    assert_send::<Supervisor>();
}

#[test]
fn ids_count_from_one_and_are_never_reused() {
    let mut supervisor = Supervisor::new();
    let caps = CapabilitySet::default();
    let limits = Limits::default();
    let load = |supervisor: &mut Supervisor, name: &str, wasm: &[u8]| {
        supervisor.load(name, wasm, caps.clone(), limits, RestartPolicy::Never)
    };
    assert_eq!(load(&mut supervisor, "a", &finisher()), Ok(1));
    assert_eq!(load(&mut supervisor, "b", &finisher()), Ok(2));
    // Refused loads take no id.
    assert_eq!(load(&mut supervisor, "a", &finisher()), Err(SupervisorError::DuplicateName("a".into())));
    assert!(matches!(load(&mut supervisor, "junk", b"not wasm"), Err(SupervisorError::Load(_))));
    assert_eq!(load(&mut supervisor, "Bad", &finisher()), Err(SupervisorError::BadName("Bad".into())));
    assert_eq!(load(&mut supervisor, "c", &finisher()), Ok(3));
    // An unloaded agent's id is not given again, not even to an agent of the same name.
    supervisor.unload("a").unwrap();
    assert_eq!(supervisor.id("a"), Err(SupervisorError::UnknownAgent("a".into())));
    assert_eq!(load(&mut supervisor, "a", &finisher()), Ok(4));
    assert_eq!((supervisor.id("a"), supervisor.id("b"), supervisor.id("c")), (Ok(4), Ok(2), Ok(3)));
    let ids: Vec<(String, u32)> = supervisor.statuses().into_iter().map(|status| (status.name, status.id)).collect();
    assert_eq!(ids, [("b".into(), 2), ("c".into(), 3), ("a".into(), 4)]);
    assert_eq!(supervisor.status("c").unwrap().id, 3);
    // Restarts keep the id: it belongs to the loaded agent, not to an instance.
    supervisor.start("c").unwrap();
    supervisor.restart("c").unwrap();
    assert_eq!(supervisor.status("c").unwrap().id, 3);
}

#[test]
fn the_last_id_is_given_once_then_loads_are_refused() {
    let mut supervisor = Supervisor::new();
    supervisor.next_id = Some(u32::MAX);
    let caps = CapabilitySet::default();
    let limits = Limits::default();
    assert_eq!(supervisor.load("last", &finisher(), caps.clone(), limits, RestartPolicy::Never), Ok(u32::MAX));
    supervisor.unload("last").unwrap();
    let refused = supervisor.load("after", &finisher(), caps, limits, RestartPolicy::Never);
    assert_eq!(refused, Err(SupervisorError::IdsExhausted));
    assert_eq!(SupervisorError::IdsExhausted.code(), "agent-ids-exhausted");
    assert!(supervisor.names().is_empty());
}
