//! QEMU tests of CBS+EDF: zero misses at U = 0.9 for 10 s of guest time, overrun isolation, admission, bad parameters.

use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig, Sis};

const THREE_TASKS: &str = "schedctl spawn --wcet 2000000 --period 10000000 --deadline 10000000; \
     schedctl spawn --wcet 6000000 --period 20000000 --deadline 20000000; \
     schedctl spawn --wcet 20000000 --period 50000000 --deadline 50000000";

/// Runs `commands` deterministically; returns the exit status and the last JSON object printed.
fn last_json(commands: &str) -> (Option<i32>, Value) {
    let result = run_batch(&QemuConfig::new().batch(commands).deterministic()).unwrap();
    let line = result.output.lines().rev().find(|line| line.starts_with('{')).expect("a JSON line");
    (result.status, serde_json::from_str(line).unwrap())
}

fn servers(util: &Value) -> Vec<(u64, u64, u64)> {
    util["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["jobs"].as_u64().unwrap(), s["deadline_misses"].as_u64().unwrap(), s["throttles"].as_u64().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn utilization_point_nine_for_ten_seconds_misses_nothing_and_replays() {
    let commands = format!("{THREE_TASKS}; sleep 10000; schedctl util --json");
    let (status, first) = last_json(&commands);
    let (_, second) = last_json(&commands);
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(first, second, "deterministic mode replays the same figures");
    assert_eq!(first["policy"], "cbs-edf");
    // 0.2 + 0.3 + 0.4 of the CPU, each budget 2 % above its wcet.
    assert_eq!(first["utilization_ppm"], 918_000);
    let counts = servers(&first);
    assert_eq!(counts.len(), 3);
    for ((jobs, misses, throttles), expected) in counts.iter().zip([1000u64, 500, 200]) {
        assert!(jobs.abs_diff(expected) <= 6, "{counts:?}");
        assert_eq!((*misses, *throttles), (0, 0), "{counts:?}");
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn an_overrunning_thread_is_throttled_and_the_others_miss_nothing() {
    let commands = "schedctl spawn --wcet 2000000 --period 10000000 --deadline 10000000 --overrun 50; \
         schedctl spawn --wcet 6000000 --period 20000000 --deadline 20000000; \
         schedctl spawn --wcet 20000000 --period 50000000 --deadline 50000000; sleep 2000; schedctl util --json";
    let (_, util) = last_json(commands);
    let counts = servers(&util);
    let (overrunner, others) = (counts[0], &counts[1..]);
    assert!(overrunner.2 > 100, "throttled every job: {counts:?}");
    assert!(overrunner.1 > 0, "it misses its own deadlines: {counts:?}");
    for (jobs, misses, _) in others {
        assert!(*jobs > 0);
        assert_eq!(*misses, 0, "{counts:?}");
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn admission_and_bad_parameters_are_refused_and_change_nothing() {
    let mut sis = Sis::boot(&QemuConfig::new().deterministic()).unwrap();
    for line in THREE_TASKS.split("; ") {
        assert!(sis.run(line.trim()).unwrap().text.starts_with("started periodic thread(s) "));
    }
    let cases = [
        (
            "--wcet 10000000 --period 100000000 --deadline 100000000",
            "admission-refused",
            "utilization would be 1.0200 > bound 0.9500",
        ),
        ("--wcet 5000000 --period 10000000 --deadline 4000000", "admission-refused", "budget exceeds the deadline"),
        ("--wcet 1000 --period 10000000 --deadline 20000000", "admission-refused", "deadline exceeds the period"),
        ("--wcet 1000 --period 0 --deadline 1000", "out-of-range", ""),
        ("--wcet 100000000000000000000 --period 1 --deadline 1", "out-of-range", ""),
        ("--wcet 1000 --deadline 1000", "missing-argument", ""),
    ];
    for (flags, code, detail) in cases {
        let output = sis.run(&format!("schedctl spawn {flags}")).unwrap().text;
        assert!(output.starts_with(&format!("error[{code}]: ")), "{flags}: {output:?}");
        assert!(output.contains(detail), "{flags}: {output:?}");
    }
    let util = sis.run_json("schedctl util").unwrap();
    assert_eq!(util["utilization_ppm"], 918_000, "refusals changed nothing");
    assert_eq!(util["servers"].as_array().unwrap().len(), 3);
    // The bound is configurable, but never below what is admitted.
    let refused = sis.run("schedctl bound 900000").unwrap().text;
    assert_eq!(refused, "error[admission-refused]: bound not changed: utilization would be 0.9180 > bound 0.9000\n");
    assert_eq!(sis.run_json("schedctl bound 990000").unwrap()["bound_ppm"], 990_000);
    assert!(sis
        .run("schedctl spawn --wcet 500000 --period 10000000 --deadline 10000000")
        .unwrap()
        .text
        .starts_with("started"));
    assert!(sis.run("schedctl bound 0").unwrap().text.starts_with("error[out-of-range]: "));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn temporaliso_passes_every_check_replays_and_leaves_nothing_behind() {
    let commands = "temporaliso --duration 500 --json; schedctl util --json";
    let run = || {
        let result = run_batch(&QemuConfig::new().batch(commands).deterministic()).unwrap();
        (result.status, result.json_lines().unwrap())
    };
    let (status, first) = run();
    let (_, second) = run();
    assert_eq!(first, second, "identical figures in two runs");
    assert_eq!(status, Some(exit::PASS));
    let report = &first[0];
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "admission_control",
            "deadline_met",
            "overrun_detection",
            "isolation_under_load",
            "deadline_miss_handling",
            "baseline_latency",
            "latency_under_load",
            "latency_stability",
            "cpu_isolation",
            "memory_isolation"
        ]
    );
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["passed"], true, "{check}");
    }
    assert_eq!(report["checks"][1]["figures"]["jobs"], 85, "50 + 25 + 10 jobs in 0.5 s");
    assert_eq!(report["checks"][1]["figures"]["deadline_misses"], 0);
    // The overrunner is named by its thread id, and it alone was throttled.
    let overrun = &report["checks"][2]["figures"];
    let overrunning = overrun["overrunning_thread"].as_u64().unwrap();
    assert_eq!(overrun["throttled_threads"], serde_json::json!([overrunning]), "{overrun}");
    assert_eq!(overrun["other_throttles"], 0, "{overrun}");
    assert!(overrun["throttles"].as_u64().unwrap() > 0, "{overrun}");
    // Every experiment thread has ended and released its server.
    assert_eq!(first[1]["utilization_ppm"], 0);
    assert_eq!(first[1]["servers"], serde_json::json!([]));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn det_reserves_runs_operators_and_releases() {
    let mut sis = Sis::boot(&QemuConfig::new().deterministic()).unwrap();
    assert_eq!(sis.run_json("det status").unwrap()["on"], false);
    assert!(sis.run("det off").unwrap().text.starts_with("error[det-off]: "));
    let on = sis.run_json("det on 2000000 10000000 10000000").unwrap();
    assert_eq!(on["utilization_ppm"], 200_000);
    assert!(sis.run("det on 1 2 2").unwrap().text.starts_with("error[det-already-on]: "));
    assert_eq!(sis.run_json("det submit --work-us 200 --count 5").unwrap()["queued"], 5);
    sis.run("sleep 300").unwrap();
    let status = sis.run_json("det status").unwrap();
    assert_eq!(status["operators_run"], 5, "{status}");
    assert_eq!(status["operators_queued"], 0);
    assert!(status["jobs"].as_u64().unwrap() > 10, "{status}");
    assert_eq!(status["deadline_misses"], 0, "1 ms of operators fits a 2 ms budget: {status}");
    let refused = sis.run("schedctl spawn --wcet 8000000 --period 10000000 --deadline 10000000").unwrap().text;
    assert!(
        refused
            .starts_with("error[admission-refused]: started 0 of 1; then utilization would be 1.0160 > bound 0.9500"),
        "{refused:?}"
    );
    let off = sis.run_json("det off").unwrap();
    assert_eq!(off["utilization_after_ppm"], 0);
    assert_eq!(sis.run_json("det status").unwrap()["on"], false);
    assert_eq!(
        sis.run("det on 9900000 10000000 10000000").unwrap().text,
        "error[admission-refused]: utilization would be 0.9900 > bound 0.9500\n"
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn threads_show_jitter_and_kill_releases_the_server() {
    let (_, threads) = last_json(
        "schedctl spawn --wcet 2000000 --period 10000000 --deadline 10000000 --count 2; sleep 200; schedctl threads --json",
    );
    let list = threads["threads"].as_array().unwrap();
    let deadline: Vec<&Value> = list.iter().filter(|t| t["class"] == "deadline").collect();
    assert_eq!(deadline.len(), 2);
    assert_eq!(list.iter().filter(|t| t["class"] == "best-effort").count(), list.len() - 2);
    // A new deadline thread preempts the best-effort shell at once, so the first runs its 2 ms job before the
    // shell spawns the second: their releases are 2 ms apart and never wait for each other.
    let (first, second) = (&deadline[0]["release_jitter"], &deadline[1]["release_jitter"]);
    assert!(first["p99_ns"].as_u64().unwrap() < 1_000_000, "{first}");
    assert!(second["p99_ns"].as_u64().unwrap() < 1_000_000, "{second}");
    assert!(deadline[0]["response_time"]["count"].as_u64().unwrap() >= 19);

    let mut sis = Sis::boot(&QemuConfig::new().deterministic()).unwrap();
    let spawned = sis.run_json("schedctl spawn --wcet 2000000 --period 10000000 --deadline 10000000").unwrap();
    let id = spawned["spawned"][0].as_u64().unwrap();
    assert_eq!(spawned["utilization_ppm"], 204_000);
    assert_eq!(sis.run_json(&format!("schedctl kill {id}")).unwrap()["utilization_ppm"], 0);
    assert!(sis.run(&format!("schedctl kill {id}")).unwrap().text.starts_with("error[no-such-thread]: "));
    assert!(sis.run("schedctl kill 0").unwrap().text.starts_with("error[protected-thread]: "));
    assert!(sis.run("schedctl kill 1").unwrap().text.starts_with("error[protected-thread]: "));
    assert_eq!(sis.run("echo ok").unwrap().text, "ok\n");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn switch_and_timer_latency_are_measured_and_replay() {
    let (status, first) = last_json("schedctl latency --samples 300 --json");
    let (_, second) = last_json("schedctl latency --samples 300 --json");
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(first, second);
    for key in ["context_switch", "timer_to_thread"] {
        let figures = &first[key];
        assert_eq!(figures["count"], 300, "{key}");
        let (p50, p99) = (figures["p50_ns"].as_u64().unwrap(), figures["p99_ns"].as_u64().unwrap());
        // A switch or a wake-up takes some instructions, and far less than a time slice.
        assert!(p50 > 0 && p50 <= p99 && p99 < 1_000_000, "{key}: {figures}");
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn overruns_are_counted_exactly() {
    // Always backlogged (3 ms of work per 10 ms against a 2.04 ms budget), the
    // thread spends its whole budget once per period: each throttle is exactly
    // one budget of CPU time, and there is one per period.
    let (_, util) = last_json(
        "schedctl spawn --wcet 2000000 --period 10000000 --deadline 10000000 --overrun 50; sleep 1000; schedctl util --json",
    );
    let server = &util["servers"][0];
    let budget = server["budget_ns"].as_u64().unwrap();
    let throttles = server["throttles"].as_u64().unwrap();
    let runtime = server["runtime_ns"].as_u64().unwrap();
    assert_eq!(budget, 2_040_000);
    assert!((99..=101).contains(&throttles), "one per 10 ms period in 1 s: {server}");
    assert!(
        runtime >= throttles * budget && runtime < (throttles + 1) * budget,
        "runtime {runtime} vs {throttles} x {budget}"
    );
    // 204 ms of CPU in 1 s at 3 ms a job: 68 jobs, every one late.
    assert_eq!(server["jobs"], 68, "{server}");
    assert_eq!(server["deadline_misses"], server["jobs"], "{server}");
}
