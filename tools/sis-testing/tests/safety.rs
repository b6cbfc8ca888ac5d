//! QEMU tests of the guardrails: the meta-agent within rules tighter than its habits, checked against the
//! effectors' own records, and `safetyctl` refusing bad input without changing a rule. Deterministic mode.

#[path = "refusals/mod.rs"]
mod refusals;

use refusals::assert_refusals;
use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig};

/// Runs `commands` in deterministic batch mode; returns the exit status and every JSON line printed.
fn batch_json(commands: &str) -> (Option<i32>, Vec<Value>) {
    let config = QemuConfig::new().batch(commands).deterministic().timeout(std::time::Duration::from_secs(120));
    let result = run_batch(&config).unwrap();
    (result.status, result.json_lines().unwrap())
}

fn number(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

/// The `safetyctl status` counters of `key` (`effector` or `rule`) named `name`.
fn counters<'a>(status: &'a Value, list: &str, key: &str, name: &str) -> &'a Value {
    status[list].as_array().unwrap().iter().find(|entry| entry[key] == name).unwrap_or_else(|| panic!("no {name}"))
}

/// A memory run with the heuristic as it acts by default, then the same run with the throttle capped at 300 per
/// mille and one reclaim in 10 s: the agent is blocked, and the pool's own records show nothing beyond either
/// bound.
#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn rules_tighter_than_the_agents_habits_block_it_and_the_pool_never_sees_beyond_them() {
    let run = "stresstest memory --duration 2000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
               --expect-failures --json";
    let (status, replies) = batch_json(&format!(
        "autoctl on --json; {run}; memctl status --json; autoctl status --json; safetyctl status --json; \
         safetyctl set throttle.max_per_mille 300 --json; safetyctl set reclaim.max_per_window 1 --json; \
         safetyctl set reclaim.window_ms 10000 --json; {run}; memctl status --json; autoctl status --json; safetyctl status --json; autoctl audit last 256 --json; \
         safetyctl validate --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 14);
    let (free_port, free_status, free_safety) = (&replies[2]["port"], &replies[3], &replies[4]);
    let (port, agent, safety, audit) = (&replies[9]["port"], &replies[10], &replies[11], &replies[12]);

    // Its habits: a throttle above 300 per mille, several reclaims in the run, nothing blocked by default.
    assert!(number(free_port, "/throttle_max_per_mille") > 300, "{free_port}");
    let free_reclaims = number(free_port, "/reclaims_requested");
    assert!(free_reclaims >= 2, "{free_port}");
    assert_eq!(number(free_status, "/metrics/decisions_blocked"), 0);
    assert_eq!(number(free_safety, "/totals/blocked"), 0);
    assert_eq!(number(counters(free_safety, "effectors", "effector", "memory_reclaim"), "/committed"), free_reclaims);
    assert_eq!(
        number(counters(free_safety, "effectors", "effector", "allocation_throttle"), "/committed"),
        number(free_status, "/metrics/allocation_throttles")
    );
    assert_eq!(replies[5]["previous"], 1000);
    assert_eq!(replies[6]["previous"], 1000);
    assert_eq!(replies[7]["previous"], 1000);

    // Within the tighter rules: blocked, counted the same in the agent and the guardrails.
    let blocked = number(safety, "/totals/blocked");
    assert!(blocked > 0);
    assert_eq!(number(agent, "/metrics/decisions_blocked"), blocked);
    let by_rule = |name: &str| number(counters(safety, "rules", "rule", name), "/blocked");
    assert!(by_rule("throttle.max_per_mille") > 0);
    assert_eq!(by_rule("throttle.max_per_mille") + by_rule("reclaim.max_per_window"), blocked);
    // The pool's own records: no throttle above 300, at most one reclaim, and the reclaims it was sent are the
    // ones committed.
    assert!(number(port, "/throttle_max_per_mille") <= 300, "{port}");
    let reclaims = number(port, "/reclaims_requested");
    assert!(reclaims <= 1, "{port}");
    let committed = |status: &Value| number(counters(status, "effectors", "effector", "memory_reclaim"), "/committed");
    assert_eq!(committed(safety) - committed(free_safety), reclaims);
    assert_eq!(
        number(agent, "/metrics/proactive_compactions") - number(free_status, "/metrics/proactive_compactions"),
        reclaims
    );
    // Every decision of the tight run is in the audit: acted throttles within 300, the acted reclaims are the
    // pool's, and every blocked one names its rule.
    let first = number(free_status, "/decisions");
    assert!(number(agent, "/decisions") - first <= 256);
    let traces: Vec<&Value> =
        audit["traces"].as_array().unwrap().iter().filter(|trace| number(trace, "/id") >= first).collect();
    assert_eq!(traces.len() as u64, number(agent, "/decisions") - first);
    let with = |directive: &str, disposition: &str| -> Vec<&Value> {
        traces
            .iter()
            .copied()
            .filter(|trace| trace["directive"]["directive"] == directive && trace["disposition"] == disposition)
            .collect()
    };
    for trace in with("throttle_allocations", "acted") {
        assert!(number(trace, "/directive/per_mille") <= 300, "{trace}");
    }
    let reclaim_times: Vec<u64> =
        with("proactive_reclaim", "acted").iter().map(|trace| number(trace, "/at_ns")).collect();
    assert_eq!(reclaim_times.len() as u64, reclaims);
    let blocked_throttles = with("throttle_allocations", "blocked");
    let blocked_reclaims = with("proactive_reclaim", "blocked");
    assert_eq!((blocked_throttles.len() + blocked_reclaims.len()) as u64, blocked);
    for trace in &blocked_throttles {
        assert_eq!(trace["blocked_by"], "throttle.max_per_mille");
        assert!(number(trace, "/directive/per_mille") > 300, "{trace}");
        assert_eq!(trace["outcome"], "not_applicable");
    }
    for trace in &blocked_reclaims {
        assert_eq!(trace["blocked_by"], "reclaim.max_per_window");
    }
    assert!(traces.iter().filter(|trace| trace["disposition"] != "blocked").all(|trace| trace["blocked_by"].is_null()));
    // The last blocks, with their figures.
    let last = safety["last_blocks"].as_array().unwrap();
    assert_eq!(last.len() as u64, blocked.min(32));
    for block in last {
        match block["rule"].as_str().unwrap() {
            "throttle.max_per_mille" => {
                assert!(number(block, "/magnitude") > 300);
                assert_eq!(block["figures"]["limit"], 300);
                let reason = format!("{} per mille is above throttle.max_per_mille = 300", block["magnitude"]);
                assert_eq!(block["reason"], reason.as_str());
            }
            "reclaim.max_per_window" => assert_eq!(block["figures"]["limit"], 1),
            other => panic!("blocked by {other}: {block}"),
        }
    }
    // The run is over: nothing is in force, every invariant holds (no deadline thread watched).
    let validate = &replies[13];
    assert_eq!((number(validate, "/held"), number(validate, "/violated")), (2, 0));
    assert_eq!(validate["invariants"][0]["limit"], 300);
}

/// A deadline pressure event of a chaos run: with relaxations bounded at 1.3 periods, only the first (12.5 ms of
/// the 10 ms period) goes through and the scheduler never gets a longer deadline; with the default bound, the
/// same event takes the deadline further.
#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_tighter_deadline_bound_keeps_every_relaxation_within_it_during_chaos() {
    let replay = "stresstest chaos --replay 42 --only 15 --json";
    let (status, replies) = batch_json(&format!(
        "autoctl on --json; safetyctl set deadline.max_per_mille_of_period 1300 --json; {replay}; \
         autoctl status --json; safetyctl status --json; safetyctl set deadline.max_per_mille_of_period 2000 --json; \
         {replay}; autoctl status --json; safetyctl status --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 9);
    for report in [&replies[2]["chaos"], &replies[6]["chaos"]] {
        assert_eq!(report["events"][0]["event"]["type"], "deadline_pressure");
        assert_eq!(report["integrity"]["passed"], true);
    }
    let (tight, tight_safety, free, free_safety) = (&replies[3], &replies[4], &replies[7], &replies[8]);
    let rule =
        |status: &Value| number(counters(status, "rules", "rule", "deadline.max_per_mille_of_period"), "/blocked");
    let relaxations =
        |status: &Value| number(counters(status, "effectors", "effector", "deadline_relaxation"), "/committed");
    // Bounded: blocked, and the longest deadline the scheduler accepted is within 1.3 periods.
    assert!(rule(tight_safety) > 0);
    assert_eq!(number(tight, "/metrics/decisions_blocked"), rule(tight_safety));
    assert_eq!(number(tight_safety, "/totals/blocked"), rule(tight_safety));
    let longest = number(tight, "/deadline_relaxed_max_per_mille_of_period");
    assert!(longest > 1000 && longest <= 1300, "{longest}");
    assert_eq!(number(tight, "/metrics/deadline_adjustments"), relaxations(tight_safety));
    assert_eq!(number(tight, "/deadline_adjustments_refused"), 0);
    // The default bound: nothing more blocked, and the same event relaxes the deadline beyond 1.3 periods.
    assert_eq!(rule(free_safety), rule(tight_safety));
    assert_eq!(number(free, "/metrics/decisions_blocked"), rule(tight_safety));
    assert!(number(free, "/deadline_relaxed_max_per_mille_of_period") > 1300, "{free}");
    assert!(relaxations(free_safety) > relaxations(tight_safety));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn bad_rules_and_values_get_clear_errors_and_change_nothing() {
    let (_, replies) = batch_json(
        "safetyctl rules --json; safetyctl set throttle.max_share 300 --json; \
         safetyctl set throttle.max_per_mille 1001 --json; safetyctl set throttle.max_per_mille abc --json; \
         safetyctl set reclaim.window_ms 0 --json; safetyctl set console.capability_held 0 --json; \
         safetyctl set throttle.max_per_mille -5 --json; safetyctl set throttle.max_per_mille --json; \
         safetyctl set --json; safetyctl rules --json; safetyctl validate --json; safetyctl status --json",
    );
    assert_eq!(replies.len(), 12);
    let before = &replies[0];
    let rules = before["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 23);
    for rule in rules {
        assert_eq!(rule["value"], rule["default"], "{rule}");
    }
    let throttle = rules.iter().find(|rule| rule["id"] == "throttle.max_per_mille").unwrap();
    assert_eq!(
        (throttle["value"].as_u64(), throttle["kind"].as_str(), throttle["effector"].as_str()),
        (Some(1000), Some("invariant"), Some("allocation_throttle"))
    );
    let console = rules.iter().find(|rule| rule["id"] == "console.capability_held").unwrap();
    assert_eq!((console["settable"].as_bool(), console["effector"].is_null()), (Some(false), true));
    let expected = [
        ("unknown-rule", Some("no rule named `throttle.max_share` (`safetyctl rules` lists the 23 rules)")),
        ("out-of-range", Some("throttle.max_per_mille takes 0 to 1000 per mille, not 1001; nothing changed")),
        ("invalid-value", None),
        ("out-of-range", Some("reclaim.window_ms takes 1 to 3600000 ms, not 0; nothing changed")),
        ("fixed-rule", Some("console.capability_held is fixed and cannot be set; nothing changed")),
        ("invalid-value", None),
        ("missing-argument", None),
        ("missing-argument", None),
    ];
    assert_refusals(&replies[1..9], &expected);
    assert_eq!(replies[9]["rules"], before["rules"], "a refused set changed a rule");
    // Nothing runs: every invariant holds on the idle kernel, and nothing was checked.
    let validate = &replies[10];
    let statuses: Vec<(&str, &str)> = validate["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|report| (report["rule"].as_str().unwrap(), report["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("throttle.max_per_mille", "held"),
            ("deadline.max_per_mille_of_period", "not_applicable"),
            ("console.capability_held", "held")
        ]
    );
    assert_eq!(validate["live_state"]["console_capability_held"], true);
    assert_eq!(validate["live_state"]["throttle_per_mille"], 0);
    assert_eq!(number(&replies[11], "/totals/checked"), 0);
}
