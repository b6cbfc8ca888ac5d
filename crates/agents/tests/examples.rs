//! The example agents in `agents/`, built to wasm32-unknown-unknown, run together under one supervisor: each
//! hostile one is stopped with its exact reason while the others do their work.

use sis_agents::caps::CapabilitySet;
use sis_agents::host::fake::FakeHost;
use sis_agents::protocol::DecodeError;
use sis_agents::sandbox::{Limits, StopReason, Violation, PAGE_BYTES};
use sis_agents::supervisor::{LastStop, RestartPolicy, State, Supervisor};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Builds the example agents once (as `cargo xtask agents` does) and returns their directory.
fn agents_dir() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../agents");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building agents/ failed (is the wasm32-unknown-unknown target installed? `cargo xtask setup`)"
        );
        root.join("target/wasm32-unknown-unknown/release")
    })
}

fn module(name: &str) -> Vec<u8> {
    let path = agents_dir().join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn world() -> FakeHost {
    let mut host =
        FakeHost::with_files(&[("/tmp/a.txt", "alpha"), ("/tmp/b.txt", "beta"), ("/etc/passwd", "root:x:0:0")]);
    host.metrics.insert("memory.pressure_percent".into(), 85);
    host.metrics.insert("memory.free_bytes".into(), 1 << 20);
    host
}

/// Runs one slice of every agent every 10 ms of fake time until none is due any more; returns the end time.
fn run_all(supervisor: &mut Supervisor, host: &mut FakeHost) -> u64 {
    let mut now = 0;
    while now < 100_000 {
        for name in supervisor.names() {
            supervisor.run_slice(&name, host, now).unwrap();
        }
        let busy = supervisor
            .statuses()
            .iter()
            .any(|status| matches!(status.state, State::Running | State::Sleeping) || status.due_at_ms.is_some());
        if !busy {
            return now;
        }
        now += 10;
    }
    panic!("agents still running after 100 s of fake time: {:?}", supervisor.statuses());
}

#[test]
fn hostile_agents_stop_with_their_reason_and_the_others_finish_their_work() {
    let mut supervisor = Supervisor::new();
    let limits = Limits::default();
    let spin_limits = Limits { fuel_total: 5 * limits.fuel_per_slice, ..limits };
    let agents: [(&str, &str, Limits); 8] = [
        ("file-lister", "fs.list:/tmp,fs.read:/tmp/*,log", limits),
        ("metrics-watcher", "metrics.read,propose,log", limits),
        ("chatty", "log", limits),
        ("crasher", "log", limits),
        ("spin", "", spin_limits),
        ("memory-bomb", "", limits),
        ("cap-violator", "log,fs.read:/tmp/**", limits),
        ("malformed", "log", limits),
    ];
    for (name, caps, limits) in agents {
        supervisor
            .load(name, &module(name), CapabilitySet::parse(caps).unwrap(), limits, RestartPolicy::Never)
            .unwrap();
        supervisor.start(name).unwrap();
    }
    let mut host = world();
    run_all(&mut supervisor, &mut host);

    let stop = |name: &str| {
        let status = supervisor.status(name).unwrap();
        match status.last_stop {
            Some(LastStop::Agent(reason)) => (status.state, reason),
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(stop("file-lister"), (State::Stopped, StopReason::Finished { exit_code: 0 }));
    assert_eq!(stop("metrics-watcher"), (State::Stopped, StopReason::Finished { exit_code: 0 }));
    assert_eq!(stop("chatty"), (State::Stopped, StopReason::Finished { exit_code: 0 }));
    assert_eq!(stop("crasher"), (State::Crashed, StopReason::Trap("wasm `unreachable` instruction executed".into())));
    assert_eq!(stop("spin"), (State::Crashed, StopReason::OutOfFuel));
    assert_eq!(stop("memory-bomb"), (State::Crashed, StopReason::MemoryLimit));
    assert_eq!(stop("cap-violator"), (State::Crashed, StopReason::CapabilityViolation { denials: 9 }));
    assert_eq!(
        stop("malformed"),
        (
            State::Crashed,
            StopReason::ProtocolViolation(Violation::TooManyMalformed(DecodeError::LengthPastEnd {
                declared: 100,
                available: 2
            }))
        )
    );

    // The work of the well-behaved agents, exactly.
    let logs_of = |agent: &str| -> Vec<String> {
        host.logs.iter().filter_map(|line| line.strip_prefix(&format!("{agent} "))).map(String::from).collect()
    };
    assert_eq!(
        logs_of("file-lister"),
        ["Info /tmp/a.txt 5 bytes", "Info /tmp/b.txt 4 bytes", "Info listed 2 entries in /tmp, 9 bytes read"]
    );
    assert_eq!(
        logs_of("metrics-watcher"),
        [
            "Info round 1: pressure 85%, proposed memory_reclaim: accepted",
            "Info round 2: pressure 85%, proposed memory_reclaim: accepted",
            "Info round 3: pressure 85%, proposed memory_reclaim: accepted",
        ]
    );
    assert_eq!(host.proposals, vec!["metrics-watcher memory_reclaim memory.pressure_percent 85 >= 70"; 3]);
    let chatty = logs_of("chatty");
    assert_eq!(chatty.len(), limits.calls_per_slice as usize + 1);
    assert_eq!(chatty.last().unwrap(), "Warn rate limited after 64 calls in one slice");
    assert_eq!(logs_of("crasher"), ["Error crasher: about to fail"]);
    assert_eq!(supervisor.status("chatty").unwrap().usage.rate_limited, 1);

    // Nothing outside the capabilities reached the host.
    assert!(host.commands.is_empty());
    assert!(!host.files.contains_key("/tmp/owned"));
    assert!(host.entered.iter().all(|entry| !entry.contains("/etc")), "{:?}", host.entered);

    // Resources: the spinner used exactly its budget. Each slice leaves a few units its loop cannot spend, so a
    // sixth slice starts with that remainder, cannot pay for the next instruction and forfeits it.
    let spin = supervisor.status("spin").unwrap().usage;
    assert_eq!((spin.fuel_used, spin.slices), (spin_limits.fuel_total, 6));
    assert_eq!(supervisor.status("memory-bomb").unwrap().usage.memory_bytes, 0, "stopped: instance freed");
    let audit = supervisor.audit(Some("cap-violator"), true);
    assert_eq!(audit.len(), 9);
    assert!(audit.iter().all(|record| record.outcome.name() == "denied"));
    assert_eq!(supervisor.audit(Some("malformed"), false).len(), 4);
}

#[test]
fn the_crasher_restarts_with_backoff_then_gives_up() {
    let policy = RestartPolicy::OnFailure {
        initial_backoff_ms: 100,
        max_backoff_ms: 10_000,
        max_restarts: 3,
        window_ms: 60_000,
    };
    let mut supervisor = Supervisor::new();
    supervisor
        .load("crasher", &module("crasher"), CapabilitySet::parse("log").unwrap(), Limits::default(), policy)
        .unwrap();
    supervisor.start("crasher").unwrap();
    let mut host = world();
    let mut ran_at = Vec::new();
    for now in (0..2_000).step_by(10) {
        if supervisor.run_slice("crasher", &mut host, now).unwrap().is_some() {
            ran_at.push(now);
        }
    }
    assert_eq!(ran_at, [0, 100, 300, 700]);
    let status = supervisor.status("crasher").unwrap();
    assert_eq!((status.state, status.restarts), (State::GaveUp, 3));
    assert_eq!(host.logs.len(), 4);
}

#[test]
fn every_example_loads_within_the_default_limits() {
    for name in
        ["file-lister", "metrics-watcher", "chatty", "crasher", "spin", "memory-bomb", "cap-violator", "malformed"]
    {
        let wasm = module(name);
        let sandbox = sis_agents::sandbox::Sandbox::load(name, &wasm, CapabilitySet::default(), Limits::default())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(sandbox.usage().memory_bytes <= 2 * PAGE_BYTES, "{name}: {} bytes", sandbox.usage().memory_bytes);
    }
}
