//! `bench ai`, shadow: what a shadow policy costs beside the meta-agent's decision on the host.
//!
//! One repetition runs the heuristic meta-agent over [`INTERVALS`] intervals of the guardrail benchmark's synthetic
//! load twice: alone, then with an untrained learning agent (the network of `builtin:memory-agent`, training
//! online as a shadow candidate does; the run prints its training steps) shadowing it through `sis_stress::aiops::Shadow`, as the kernel's autonomy
//! thread does after each decision. Production's step and the shadow's step are timed apart, each step on its own.

use std::time::Instant;

use sis_stress::aiops::Shadow;
use sis_stress::learning::{new_agent, LearnedPolicy};

use crate::guardrails::{HeuristicLoop, INTERVAL_NS};
use crate::median;

/// Decision intervals per repetition.
const INTERVALS: u64 = 20_000;

/// One repetition: (production ns per decision alone, production ns per decision shadowed, shadow ns per step,
/// shadow agreement per mille, the candidate's training steps).
fn one_run() -> (f64, f64, f64, u64, u64) {
    let mut times = [0u128; 3];
    let (mut agreement, mut updates) = (0, 0);
    for shadowed in [false, true] {
        let mut run = HeuristicLoop::new();
        let mut shadow = shadowed.then(|| Shadow::new(Box::new(LearnedPolicy::new(new_agent(1, 20))), "heuristic"));
        for index in 0..INTERVALS {
            let inputs = run.inputs(index);
            let start = Instant::now();
            let traces = run.decide(inputs);
            let decided = Instant::now();
            times[usize::from(shadowed)] += (decided - start).as_nanos();
            if let Some(shadow) = &mut shadow {
                shadow.observe(&inputs, run.agent.config(), &traces.memory);
                times[2] += decided.elapsed().as_nanos();
            }
        }
        if let Some(shadow) = &shadow {
            assert_eq!(shadow.report().compared, INTERVALS);
            agreement = shadow.report().agreement_per_mille;
            updates = shadow.report().candidate_updates;
        }
    }
    let per = |ns: u128| ns as f64 / INTERVALS as f64;
    (per(times[0]), per(times[1]), per(times[2]), agreement, updates)
}

/// Runs `repetitions` repetitions and prints medians.
pub fn run(repetitions: u32) {
    println!(
        "\nshadow: the heuristic meta-agent over {INTERVALS} intervals of the same synthetic load, alone and with an \
         untrained [5, 16, 3] learning agent shadowing it, each step timed, {repetitions} repetitions"
    );
    let mut columns: [Vec<f64>; 3] = Default::default();
    for repetition in 1..=repetitions {
        let (alone, shadowed, shadow, agreement, updates) = one_run();
        println!(
            "  run {repetition:>2}: production {alone:>6.0} ns per decision alone, {shadowed:>6.0} ns shadowed; shadow \
             step {shadow:>7.0} ns (agreement {agreement} per mille, {updates} training steps)"
        );
        for (column, figure) in columns.iter_mut().zip([alone, shadowed, shadow]) {
            column.push(figure);
        }
    }
    let [alone, shadowed, shadow] = columns.map(|mut values| median(&mut values));
    println!(
        "median: production {alone:.0} ns alone, {shadowed:.0} ns shadowed (ratio {:.3}); the shadow's own step \
         {shadow:.0} ns = {:.4} % of the 10 ms interval, reported apart",
        shadowed / alone,
        shadow / INTERVAL_NS as f64 * 100.0
    );
}
