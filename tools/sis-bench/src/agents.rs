//! `bench agents`: the WebAssembly interpreter against native code on one compute kernel, and the host-call round
//! trip, on the host (the guest half is in xtask, `cargo xtask bench agents`, which builds the modules first).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use sis_agents::bench::{checksum, COMPUTE_ROUNDS, PING_CALLS};
use sis_agents::caps::CapabilitySet;
use sis_agents::host::fake::FakeHost;
use sis_agents::sandbox::{Limits, Sandbox, StepOutcome, StopReason};

use crate::median;

/// Limits that let one slice run each benchmark module to its end.
fn limits() -> Limits {
    Limits {
        fuel_per_slice: 1_000_000_000,
        fuel_total: 1_000_000_000,
        calls_per_slice: u32::MAX,
        max_denials: u32::MAX,
        ..Limits::default()
    }
}

fn module(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../agents/target/wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error} (cargo xtask agents builds it)", path.display()))
}

/// Runs each measurement `repetitions` times and prints every run and the medians.
pub fn run(repetitions: u32) {
    let (compute, pinger) = (module("compute"), module("pinger"));
    let expected = checksum(COMPUTE_ROUNDS);
    println!(
        "host: compute kernel, {COMPUTE_ROUNDS} rounds (checksum {expected:#010x}); {PING_CALLS} denied FS_READ calls; \
         {repetitions} repetitions"
    );
    let (mut native, mut interpreted, mut ping) = (Vec::new(), Vec::new(), Vec::new());
    let mut fuel = 0;
    let mut host = FakeHost::default();
    for repetition in 1..=repetitions {
        let started = Instant::now();
        let result = black_box(checksum(black_box(COMPUTE_ROUNDS)));
        let native_ns = started.elapsed().as_nanos() as f64;
        assert_eq!(result, expected);

        let mut sandbox = Sandbox::load("compute", &compute, CapabilitySet::default(), limits()).expect("compute");
        let started = Instant::now();
        let outcome = sandbox.step(&mut host);
        let interpreted_ns = started.elapsed().as_nanos() as f64;
        assert_eq!(outcome, StepOutcome::Stopped(StopReason::Finished { exit_code: expected as i32 }));
        fuel = sandbox.usage().fuel_used;

        let mut sandbox = Sandbox::load("pinger", &pinger, CapabilitySet::default(), limits()).expect("pinger");
        let started = Instant::now();
        let outcome = sandbox.step(&mut host);
        let ping_ns = started.elapsed().as_nanos() as f64 / f64::from(PING_CALLS);
        assert_eq!(outcome, StepOutcome::Stopped(StopReason::Finished { exit_code: PING_CALLS as i32 }));
        println!(
            "  run {repetition:>2}: native {native_ns:>12.0} ns   interpreted {interpreted_ns:>13.0} ns ({:>6.1}x)   host call {ping_ns:>7.0} ns",
            interpreted_ns / native_ns
        );
        native.push(native_ns);
        interpreted.push(interpreted_ns);
        ping.push(ping_ns);
    }
    let (native, interpreted, ping) = (median(&mut native), median(&mut interpreted), median(&mut ping));
    println!(
        "  median: native {native:.0} ns, interpreted {interpreted:.0} ns ({fuel} fuel, {:.1} fuel/ns): \
         interpreted/native {:.1}x; host-call round trip {ping:.0} ns (decode, capability check, audit)",
        fuel as f64 / interpreted,
        interpreted / native
    );
    assert!(host.entered.is_empty(), "the pinger's calls are denied before the host");
}
