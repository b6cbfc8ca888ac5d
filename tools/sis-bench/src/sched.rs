//! `bench sched`: what one scheduling decision costs with n ready threads.
//!
//! A decision is what the kernel does at a switch: charge the running thread,
//! let it block, wake another, and pick the next. With n servers ready the EDF
//! pick is the earliest of n deadlines; the policy keeps them ordered, so a
//! decision should grow as O(log n). Round robin (O(1)) is the peer.

use std::hint::black_box;
use std::time::Instant;

use sis_sched::{CbsEdf, RoundRobin, Scheduler, ServerParams, DEFAULT_BOUND_PPM};

use crate::median;

/// Decisions per repetition.
const DECISIONS: u64 = 1_000_000;
/// Target from issue 5 at 1,000 ready threads.
const TARGET_NS: f64 = 200.0;

/// Each decision: charge the running thread, let it block, wake the thread
/// that has been blocked longest, pick the next. Half the threads are ready
/// at any time, and woken servers get fresh deadlines (the CBS rule), so
/// the ready set is reordered continually.
fn decisions(policy: &mut dyn Scheduler, threads: u32) -> f64 {
    let mut now = 0u64;
    let mut blocked: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
    for thread in 1..=threads {
        if thread % 2 == 0 {
            policy.enqueue(thread, now);
        } else {
            blocked.push_back(thread);
        }
    }
    let mut running = policy.pick_next(now).expect("a thread is ready");
    let started = Instant::now();
    for _ in 0..DECISIONS {
        now += 1_000;
        policy.charge(running, 100, now);
        policy.dequeue(running);
        blocked.push_back(running);
        if let Some(wake) = blocked.pop_front() {
            policy.enqueue(wake, now);
        }
        // A decision that finds nobody eligible (all throttled) is a decision too.
        running = black_box(policy.pick_next(now)).unwrap_or(running);
    }
    started.elapsed().as_nanos() as f64 / DECISIONS as f64
}

fn cbs(threads: u32) -> CbsEdf {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10_000_000, threads as usize);
    // Periods of 1 µs per thread (one decision advances 1 µs), so deadlines
    // pass while a thread is blocked and the wake-up rule renews them;
    // distinct per thread so ties are rare.
    for thread in 1..=threads {
        let period_ns = 1_000 * threads as u64 + thread as u64 * 7;
        let budget_ns = period_ns / (threads as u64 * 2);
        let params = ServerParams { budget_ns, period_ns, deadline_ns: period_ns };
        policy.admit(thread, params, 0).expect("admitted");
    }
    policy
}

/// Runs the benchmark.
pub fn run(repetitions: u32) {
    println!("scheduling decision (charge + enqueue + pick next), {DECISIONS} decisions, {repetitions} repetitions");
    let mut at_thousand = 0.0;
    for threads in [10u32, 100, 1000] {
        let (mut edf, mut round_robin) = (Vec::new(), Vec::new());
        for _ in 0..repetitions {
            edf.push(decisions(&mut cbs(threads), threads));
            round_robin.push(decisions(&mut RoundRobin::with_capacity(10_000_000, threads as usize), threads));
        }
        let (edf, round_robin) = (median(&mut edf), median(&mut round_robin));
        println!("  {threads:>5} ready: CBS+EDF {edf:7.1} ns/decision   round robin (peer) {round_robin:6.1} ns   ratio {:.2}", edf / round_robin);
        if threads == 1000 {
            at_thousand = edf;
        }
    }
    let verdict = if at_thousand <= TARGET_NS { "met" } else { "NOT met" };
    println!("target <= {TARGET_NS:.0} ns per decision at 1,000 ready threads: {verdict}");
}
