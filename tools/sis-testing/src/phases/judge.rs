//! The judges: each reads a probe's JSON replies and gives every test it covers a verdict, expected against got.

use serde_json::Value;

use super::Verdict;

/// Phase 3's probe: three `temporaliso` runs (the third test of latency needs repeated runs), then one chaos
/// deadline-pressure event with autonomy on, and the meta-agent's audit of it.
pub const TEMPORAL_ISOLATION_COMMANDS: &str = "temporaliso --duration 500 --json; temporaliso --duration 500 --json; \
     temporaliso --duration 500 --json; autoctl on --json; stresstest chaos --replay 42 --only 15 --json; \
     autoctl audit last 256 --json";

/// Jobs of the three threads at U = 0.918 in 500 ms: 2 ms / 10 ms, 6 ms / 20 ms and 20 ms / 50 ms.
const JOBS_AT_0_918: u64 = 50 + 25 + 10;
/// The admitted utilization: each budget is its WCET plus 2 %, so 0.9 × 1.02.
const ADMITTED_PPM: u64 = 918_000;
/// The admission bound.
const BOUND_PPM: u64 = 950_000;
/// Jobs of the 10 ms overrunning thread in 500 ms, all of which miss (3 ms of work in a 2.04 ms budget).
const OVERRUNNER_JOBS: u64 = 50;
/// Jobs of the two others beside it.
const OTHER_JOBS: u64 = 25 + 10;
/// Wake-ups of the 5 ms latency thread in 500 ms.
const LATENCY_JOBS: u64 = 100;
/// Largest p99 − p50 spread of wake-up latency under load in any run, ns.
const SPREAD_LIMIT_NS: u64 = 25_000;
/// The CPU-hungry reservation: 3 ms every 10 ms.
const RESERVED_PER_MILLE: u64 = 300;
/// Its periods in 500 ms, each ending with its budget spent.
const HOG_PERIODS: u64 = 50;
/// The memory-isolation experiment: 1,000 steps; 64 of the greedy pool's 64 KiB objects fit its 4 MiB.
const MEMORY_STEPS: u64 = 1_000;
const GREEDY_FITS: u64 = 64;

/// The tests phase 3's judge gives a verdict: all ten.
const JUDGED: [&str; 10] = [
    "CPU isolation",
    "Memory isolation",
    "Isolation under load",
    "Deadline met",
    "Deadline miss handling",
    "Overrun detection",
    "Admission control",
    "Baseline latency",
    "Latency under load",
    "Latency stability",
];

/// Phase 3 from [`TEMPORAL_ISOLATION_COMMANDS`]'s replies.
pub fn temporal_isolation(replies: &[Value]) -> Vec<Verdict> {
    if replies.len() != 6 {
        let got = format!("{} JSON replies, expected 6", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    let runs = &replies[..3];
    let first = &runs[0];
    let mut verdicts = vec![
        ("CPU isolation", cpu_isolation(first)),
        ("Memory isolation", memory_isolation(first)),
        ("Isolation under load", isolation_under_load(first)),
        ("Deadline met", deadline_met(first)),
        ("Deadline miss handling", deadline_miss_handling(first, &replies[4], &replies[5])),
        ("Overrun detection", overrun_detection(first)),
        ("Admission control", admission_control(first)),
        ("Baseline latency", latency(first, "baseline_latency")),
        ("Latency under load", latency(first, "latency_under_load")),
    ];
    verdicts.push(("Latency stability", latency_stability(runs)));
    verdicts
}

/// A reservation that wants the CPU all the time, beside two spinning best-effort threads, gets exactly its
/// share, and is throttled once a period: the spinners neither take from it nor give it more.
fn cpu_isolation(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "cpu_isolation")?;
    expect(figures, "reserved_per_mille", RESERVED_PER_MILLE)?;
    expect(figures, "share_per_mille", RESERVED_PER_MILLE)?;
    expect(figures, "throttles", HOG_PERIODS)?;
    expect(figures, "best_effort_spinners", 2)
}

/// A pool exhausting its budget beside another budgeted pool: every refusal the greedy pool meets is its
/// own budget's, the other pool's every allocation succeeds while it grows and releases its working set,
/// and every frame comes back.
fn memory_isolation(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "memory_isolation")?;
    expect(figures, "steps", MEMORY_STEPS)?;
    expect(figures, "greedy_allocations", GREEDY_FITS)?;
    expect(figures, "greedy_limit_refusals", MEMORY_STEPS - GREEDY_FITS)?;
    expect(figures, "greedy_frame_refusals", 0)?;
    expect(figures, "steady_failures", 0)?;
    if number(figures, "steady_releases")? == 0 {
        return Err(String::from("steady_releases > 0 (the steady pool needs fresh frames), got 0"));
    }
    let before = number(figures, "free_frames_before")?;
    expect(figures, "free_frames_after", before)
}

fn isolation_under_load(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "isolation_under_load")?;
    expect(figures, "other_jobs", OTHER_JOBS)?;
    expect(figures, "other_deadline_misses", 0)
}

fn deadline_met(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "deadline_met")?;
    expect(figures, "jobs", JOBS_AT_0_918)?;
    expect(figures, "deadline_misses", 0)?;
    expect(figures, "utilization_ppm", ADMITTED_PPM)
}

/// Detected and counted (every job of the overrunning thread misses, and no other does), and reported to
/// the meta-agent: in one chaos deadline-pressure event with autonomy on, the misses its decisions observed
/// add up to the event's, and it acted on them.
fn deadline_miss_handling(run: &Value, chaos: &Value, audit: &Value) -> Result<(), String> {
    let figures = check_figures(run, "deadline_miss_handling")?;
    expect(figures, "overrunner_jobs", OVERRUNNER_JOBS)?;
    expect(figures, "overrunner_deadline_misses", OVERRUNNER_JOBS)?;
    let event = &chaos["chaos"]["events"][0]["figures"];
    let misses = number(event, "deadline_misses")?;
    if misses == 0 {
        return Err(format!("the chaos event meets a deadline miss, got none: {event}"));
    }
    let traces = audit["traces"].as_array().ok_or_else(|| format!("no traces in the audit: {audit}"))?;
    // The memory and the scheduling decision of one interval see the same inputs: count each interval once.
    let observed: u64 = traces
        .iter()
        .filter(|trace| trace["subsystem"] == "memory")
        .filter_map(|trace| trace["inputs"]["deadline_misses"].as_u64())
        .sum();
    if observed != misses {
        return Err(format!("the meta-agent observes the event's {misses} misses, got {observed}"));
    }
    let acted = traces
        .iter()
        .filter(|trace| trace["directive"]["directive"] == "adjust_deadline" && trace["disposition"] == "acted")
        .count();
    if acted == 0 {
        return Err(String::from("at least one acted deadline adjustment, got none"));
    }
    Ok(())
}

fn overrun_detection(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "overrun_detection")?;
    let thread = number(figures, "overrunning_thread")?;
    if figures["throttled_threads"] != serde_json::json!([thread]) {
        return Err(format!(
            "throttled_threads [{thread}] (the overrunner alone), got {}",
            figures["throttled_threads"]
        ));
    }
    if number(figures, "throttles")? == 0 {
        return Err(String::from("throttles > 0, got 0"));
    }
    expect(figures, "other_throttles", 0)
}

fn admission_control(run: &Value) -> Result<(), String> {
    let figures = check_figures(run, "admission_control")?;
    if !figures["refusal"].is_string() {
        return Err(format!("the 0.1 more refused with a reason, got refusal {}", figures["refusal"]));
    }
    expect(figures, "utilization_admitted_ppm", ADMITTED_PPM)?;
    expect(figures, "utilization_after_refusal_ppm", ADMITTED_PPM)?;
    expect(figures, "bound_ppm", BOUND_PPM)
}

fn latency(run: &Value, check: &str) -> Result<(), String> {
    let figures = check_figures(run, check)?;
    let latency = &figures["latency"];
    expect(latency, "count", LATENCY_JOBS)?;
    let (p99, limit) = (number(latency, "p99_ns")?, number(figures, "p99_limit_ns")?);
    if p99 >= limit {
        return Err(format!("p99 below {limit} ns, got {p99} ns"));
    }
    Ok(())
}

/// Over the three runs: each run's loaded wake-up latency has p99 − p50 within [`SPREAD_LIMIT_NS`], and the
/// widest spread is at most twice the narrowest plus 5 µs; each run's own stability check passed.
fn latency_stability(runs: &[Value]) -> Result<(), String> {
    let mut spreads = Vec::new();
    for run in runs {
        check_figures(run, "latency_stability")?;
        let latency = &check_figures(run, "latency_under_load")?["latency"];
        let spread = number(latency, "p99_ns")?.saturating_sub(number(latency, "p50_ns")?);
        if spread > SPREAD_LIMIT_NS {
            return Err(format!("p99 - p50 under load at most {SPREAD_LIMIT_NS} ns, got {spread} ns"));
        }
        spreads.push(spread);
    }
    let (narrowest, widest) = (spreads.iter().min().copied().unwrap_or(0), spreads.iter().max().copied().unwrap_or(0));
    if widest > 2 * narrowest + 5_000 {
        return Err(format!("spreads within 2 x the narrowest + 5 us over the runs, got {spreads:?} ns"));
    }
    Ok(())
}

/// The figures of `temporaliso`'s check `name`, which must have passed.
fn check_figures<'a>(run: &'a Value, name: &str) -> Result<&'a Value, String> {
    let check = run["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == name))
        .ok_or_else(|| format!("temporaliso check {name}, got none in {run}"))?;
    if check["passed"] != true {
        return Err(format!("temporaliso check {name} passed, got {check}"));
    }
    Ok(&check["figures"])
}

pub(super) fn number(value: &Value, key: &str) -> Result<u64, String> {
    value[key].as_u64().ok_or_else(|| format!("{key} a number, got {} in {value}", value[key]))
}

pub(super) fn expect(value: &Value, key: &str, expected: u64) -> Result<(), String> {
    match number(value, key)? {
        got if got == expected => Ok(()),
        got => Err(format!("{key} {expected}, got {got}")),
    }
}

/// The reply of a command that succeeded, or why not.
pub(super) fn ok(reply: &Value) -> Result<&Value, String> {
    if reply["ok"] == true {
        Ok(reply)
    } else {
        Err(format!("{} ok, got {reply}", reply["command"]))
    }
}

/// The reply of a command refused with `code`, or why not.
pub(super) fn refused<'a>(reply: &'a Value, code: &str) -> Result<&'a Value, String> {
    if reply["ok"] == false && reply["error"]["code"] == code {
        Ok(reply)
    } else {
        Err(format!("{} refused with {code}, got {reply}", reply["command"]))
    }
}
