//! Phase suite tests on the host: the catalog against the seed, and the judges against replies SIS printed.

use super::*;

mod dataflow;
mod otel_workflow;
mod web_gui;

/// The replies of [`judge::TEMPORAL_ISOLATION_COMMANDS`], as one deterministic boot printed them.
fn phase3_replies() -> Vec<Value> {
    include_str!("phase3_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn verdict<'a>(verdicts: &'a [Verdict], test: &str) -> &'a Result<(), String> {
    &verdicts.iter().find(|(name, _)| *name == test).unwrap().1
}

/// Changes the figure `key` of temporaliso check `check` in the first run.
fn with_figure(mut replies: Vec<Value>, check: &str, key: &str, value: Value) -> Vec<Value> {
    let checks = replies[0]["checks"].as_array_mut().unwrap();
    let check = checks.iter_mut().find(|c| c["name"] == check).unwrap();
    check["figures"][key] = value;
    replies
}

#[test]
fn the_catalog_has_the_seeds_phases_and_test_counts() {
    let counts: Vec<(u8, usize)> = PHASES.iter().map(|phase| (phase.number, phase.total())).collect();
    // Phase 6: the seed's table says 17 tests, but its groups list 3 + 3 + 2 + 3 + 4 = 15 (docs/phases.md).
    assert_eq!(counts, [(1, 13), (2, 9), (3, 10), (5, 9), (6, 15), (7, 7), (8, 8), (9, 4)]);
    for (phase, _) in PENDING {
        assert!(PHASES.iter().any(|known| known.number == phase), "pending phase {phase} is in the catalog");
    }
}

#[test]
fn phase_3_judged_on_real_replies_passes_all_ten() {
    let verdicts = temporal_isolation_verdicts(&phase3_replies());
    assert_eq!(verdicts.len(), 10);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    let result = phase_result(&PHASES[2], &verdicts, Duration::from_millis(1_500));
    assert_eq!((result.passed, result.total, result.pending_issue), (10, 10, None));
    assert!(result.tests.iter().all(|test| test.status == Status::Passed && test.reason.is_none()));
    assert_eq!(result.tests[2].duration_ms, 1_500);
}

fn temporal_isolation_verdicts(replies: &[Value]) -> Vec<Verdict> {
    judge::temporal_isolation(replies)
}

#[test]
fn a_broken_admission_bound_fails_admission_control_with_expected_against_got() {
    // An admission bound raised to 1.5: the extra 0.1 is admitted.
    let replies = with_figure(phase3_replies(), "admission_control", "refusal", Value::Null);
    let replies = with_figure(replies, "admission_control", "bound_ppm", serde_json::json!(1_500_000));
    let verdicts = temporal_isolation_verdicts(&replies);
    assert_eq!(
        verdict(&verdicts, "Admission control"),
        &Err(String::from("the 0.1 more refused with a reason, got refusal null"))
    );
    let replies = with_figure(phase3_replies(), "admission_control", "bound_ppm", serde_json::json!(1_500_000));
    assert_eq!(
        verdict(&temporal_isolation_verdicts(&replies), "Admission control"),
        &Err(String::from("bound_ppm 950000, got 1500000"))
    );
}

#[test]
fn a_reservation_short_of_its_share_fails_cpu_isolation() {
    let replies = with_figure(phase3_replies(), "cpu_isolation", "share_per_mille", serde_json::json!(296));
    assert_eq!(
        verdict(&temporal_isolation_verdicts(&replies), "CPU isolation"),
        &Err(String::from("share_per_mille 300, got 296"))
    );
}

#[test]
fn a_refusal_by_the_machine_fails_memory_isolation() {
    let replies = with_figure(phase3_replies(), "memory_isolation", "greedy_frame_refusals", serde_json::json!(3));
    assert_eq!(
        verdict(&temporal_isolation_verdicts(&replies), "Memory isolation"),
        &Err(String::from("greedy_frame_refusals 0, got 3"))
    );
}

#[test]
fn throttling_the_wrong_thread_fails_overrun_detection() {
    let replies = with_figure(phase3_replies(), "overrun_detection", "throttled_threads", serde_json::json!([6]));
    assert_eq!(
        verdict(&temporal_isolation_verdicts(&replies), "Overrun detection"),
        &Err(String::from("throttled_threads [5] (the overrunner alone), got [6]"))
    );
}

#[test]
fn misses_the_meta_agent_did_not_see_fail_deadline_miss_handling() {
    let mut replies = phase3_replies();
    for trace in replies[5]["traces"].as_array_mut().unwrap() {
        trace["inputs"]["deadline_misses"] = serde_json::json!(0);
    }
    assert_eq!(
        verdict(&temporal_isolation_verdicts(&replies), "Deadline miss handling"),
        &Err(String::from("the meta-agent observes the event's 5 misses, got 0"))
    );
}

#[test]
fn a_failing_test_outside_the_pending_list_fails_ci() {
    let replies = with_figure(phase3_replies(), "deadline_met", "jobs", serde_json::json!(84));
    let phase3 = phase_result(&PHASES[2], &temporal_isolation_verdicts(&replies), Duration::ZERO);
    let report = report(vec![phase3], true);
    assert_eq!((report.passed, report.failing_outside_pending), (9, 1));
    assert!(table(&report).contains("| Phase 3 - Temporal Isolation | 9/10 | 90.0% | FAILING |\n"));
    assert!(table(&report).ends_with("FAIL Phase 3 / Deadline Validation / Deadline met: jobs 85, got 84\n"));
}

#[test]
fn a_missing_reply_fails_every_built_test_with_the_count() {
    let replies = phase3_replies();
    let verdicts = temporal_isolation_verdicts(&replies[..5]);
    assert_eq!(verdicts.len(), 10);
    assert!(verdicts.iter().all(|(_, verdict)| verdict == &Err(String::from("5 JSON replies, expected 6"))));
}

#[test]
fn with_no_phase_pending_a_test_without_a_verdict_fails_ci_and_the_table_lists_it() {
    assert!(PENDING.is_empty() && PENDING_TESTS.is_empty(), "every phase is complete");
    let phase3 = phase_result(&PHASES[2], &temporal_isolation_verdicts(&phase3_replies()), Duration::ZERO);
    let phase9 = phase_result(&PHASES[7], &[], Duration::ZERO);
    let phase8 = phase_result(&PHASES[6], &[], Duration::ZERO);
    // No test waits for another issue: a test without a verdict is not implemented, with no issue to wait for.
    assert_eq!(phase8.tests[0].reason.as_deref(), Some("not implemented"));
    assert_eq!(phase8.tests[7].reason.as_deref(), Some("not implemented"), "graph integration, built by issue 22");
    assert_eq!(phase9.pending_issue, None);
    let report = report(vec![phase3, phase9], true);
    assert_eq!((report.passed, report.total, report.failing_outside_pending), (10, 14, 4));
    assert_eq!(
        table(&report),
        "| Phase | Passed | Pass rate | Status |\n|---|---|---|---|\n\
         | Phase 3 - Temporal Isolation | 10/10 | 100.0% | complete |\n\
         | Phase 9 - Agentic Platform | 0/4 | 0.0% | FAILING |\n\
         | Overall | 10/14 | 71.4% | |\n\
         FAIL Phase 9 / Agent System / Protocol tests: not implemented\n\
         FAIL Phase 9 / Agent System / Capability tests: not implemented\n\
         FAIL Phase 9 / Agent System / Audit tests: not implemented\n\
         FAIL Phase 9 / Agent System / ASM supervision tests: not implemented\n"
    );
}

/// The replies of [`performance::PERFORMANCE_COMMANDS`], as one deterministic boot printed them.
fn phase8_replies() -> Vec<Value> {
    include_str!("phase8_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn phase_8_judged_on_real_replies_passes_its_seven_batch_tests() {
    let verdicts = performance::performance(&phase8_replies());
    assert_eq!(verdicts.len(), 7);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
}

/// Phase 8's verdict for `test` after `change` to the replies.
fn phase8_verdict(test: &str, change: impl FnOnce(&mut Vec<Value>)) -> Result<(), String> {
    let mut replies = phase8_replies();
    change(&mut replies);
    verdict(&performance::performance(&replies), test).clone()
}

#[test]
fn a_held_decision_that_acts_fails_confidence_thresholds() {
    // Run C's audit (reply 22): the learned policy's first held decision, as if it had been carried out.
    let verdict = phase8_verdict("Confidence thresholds", |replies| {
        let traces = replies[22]["traces"].as_array_mut().unwrap();
        let held = traces.iter_mut().find(|trace| trace["disposition"] == "held").unwrap();
        held["disposition"] = Value::from("acted");
    });
    let reason = verdict.unwrap_err();
    assert!(reason.starts_with("run C: held exactly below 600, got {"), "{reason}");
}

#[test]
fn a_controller_that_never_freezes_fails_oscillation_detection() {
    let verdict = phase8_verdict("Oscillation detection", |replies| {
        replies[13]["stats"]["oscillation_freezes"] = Value::from(0);
    });
    assert!(verdict.unwrap_err().starts_with("at least one oscillation freeze, got {"));
    // Refusals the trail does not show are caught too.
    let verdict = phase8_verdict("Oscillation detection", |replies| {
        replies[13]["stats"]["suppressed_switches"] = Value::from(3);
    });
    assert_eq!(verdict, Err(String::from("suppressed_switches 108, got 3")));
}

#[test]
fn a_rule_firing_below_its_threshold_fails_directive_thresholds() {
    // Run B's first pressure_high decision (threshold 700) moved to a pressure of 650.
    let verdict = phase8_verdict("Directive thresholds", |replies| {
        let traces = replies[12]["traces"].as_array_mut().unwrap();
        let high = traces.iter_mut().find(|trace| trace["reason"]["reason"] == "pressure_high").unwrap();
        high["inputs"]["pressure_per_mille"] = Value::from(650);
    });
    assert!(verdict.unwrap_err().starts_with("run B: pressure_high exactly at pressure >= 700, got {"));
}

#[test]
fn an_unmeasured_outcome_or_a_missing_boost_fails_its_test() {
    let verdict = phase8_verdict("Reward feedback", |replies| {
        let traces = replies[3]["traces"].as_array_mut().unwrap();
        let failed = traces.iter_mut().find(|trace| trace["outcome"] == "failed").unwrap();
        failed["reward_per_mille"] = Value::from(1000);
    });
    assert!(verdict.unwrap_err().starts_with("run A: outcome and reward agree, got {"));
    // The boost decided in interval 2 never reached the consumer.
    let verdict = phase8_verdict("Multi-subsystem directives", |replies| {
        for trace in replies[3]["traces"].as_array_mut().unwrap() {
            trace["inputs"]["commands_boosted"] = Value::from(false);
        }
    });
    assert!(verdict.unwrap_err().starts_with("interval 2's directives carried out by interval 3, got {"));
}

#[test]
fn every_test_of_a_complete_phase_counts_and_one_without_a_verdict_fails_ci() {
    let phase8 = PHASES.iter().find(|phase| phase.number == 8).unwrap();
    let tests: Vec<&'static str> = phase8.groups.iter().flat_map(|group| group.tests.iter().copied()).collect();
    let complete = |verdicts: &[Verdict]| report(vec![phase_result(phase8, verdicts, Duration::from_millis(10))], true);
    let all: Vec<Verdict> = tests.iter().map(|test| (*test, Ok(()))).collect();
    let passing = complete(&all);
    assert_eq!((passing.passed, passing.total, passing.failing_outside_pending), (8, 8, 0));
    assert!(table(&passing).contains("| Phase 8 - Performance | 8/8 | 100.0% | complete |\n"));
    // Graph integration without a verdict: not implemented, and no longer waiting for issue 22.
    let without_graph: Vec<Verdict> = all.iter().filter(|(test, _)| *test != "Graph integration").cloned().collect();
    let missing = complete(&without_graph);
    assert_eq!((missing.passed, missing.failing_outside_pending), (7, 1));
    assert!(table(&missing).contains("| Phase 8 - Performance | 7/8 | 87.5% | FAILING |\n"));
    assert!(table(&missing).ends_with("FAIL Phase 8 / CBS-EDF Scheduler / Graph integration: not implemented\n"));
    let mut one_failing = all.clone();
    one_failing[0].1 = Err(String::from("switches 1, got 0"));
    assert_eq!(complete(&one_failing).failing_outside_pending, 1);
    assert!(table(&complete(&one_failing)).contains("| 7/8 | 87.5% | FAILING |\n"));
}

/// The index in phase 8's replies of graph integration's step `label`.
fn graph_step(label: &str) -> usize {
    let steps = performance::graph_integration::steps();
    let first = phase8_replies().len() - steps.len();
    first + steps.iter().position(|step| step.label == label).unwrap()
}

#[test]
fn the_best_effort_pipeline_under_the_same_load_misses_every_deadline() {
    // The recorded boot's best-effort run, judged as the reserved one is.
    let replies = phase8_replies();
    let best_effort = &replies[graph_step("rtbe stats")];
    let pipeline = performance::graph_integration::pipeline("rtbe", false);
    assert_eq!(
        performance::graph_integration::meets_deadlines(best_effort, &pipeline),
        Err(String::from(
            "rtbe: 0 of 200 items over the 8000 us deadline, got 200 (latency p50 103546880 ns, p99 170393600 ns, \
             max 170704320 ns)"
        ))
    );
}

#[test]
fn a_missed_deadline_a_late_end_or_a_run_outliving_the_load_fails_graph_integration() {
    let graph = |change: &dyn Fn(&mut Value)| {
        phase8_verdict("Graph integration", |replies| change(&mut replies[graph_step("rt stats")]))
    };
    assert_eq!(
        graph(&|stats| {
            let soft = stats["ops"].as_array_mut().unwrap().iter_mut().find(|op| op["name"] == "soft").unwrap();
            soft["server"]["deadline_misses"] = Value::from(1);
        }),
        Err(String::from("rt: soft's server ran 200 jobs with 0 deadline misses, got 200 jobs with 1 misses"))
    );
    let late = graph(&|stats| {
        let out = stats["ops"].as_array_mut().unwrap().iter_mut().find(|op| op["name"] == "out").unwrap();
        out["sink"]["deadline_misses"] = Value::from(3);
    });
    assert!(late.unwrap_err().starts_with("rt: 0 of 200 items over the 8000 us deadline, got 3 (latency p50 "));
    // The elapsed time a finished graph showed before it ended at its last thread's return: when `wait` looked.
    assert_eq!(
        graph(&|stats| stats["elapsed_ns"] = Value::from(607_749_232u64)),
        Err(String::from(
            "rt: ran from the first release to the last (398000000 ns) plus at most the deadline, got 607749232 ns"
        ))
    );
    let outlived = phase8_verdict("Graph integration", |replies| {
        replies[graph_step("rt wait")]["waited_ms"] = Value::from(204);
    });
    assert!(outlived.unwrap_err().starts_with("rt finished before the memory stress ended (waited_ms 0), got {"));
}

/// The console output of phase 8's flood session, as one deterministic boot printed it.
const FLOOD_RAW: &[u8] = include_bytes!("phase8_flood_raw.txt");

#[test]
fn no_output_flooding_judged_on_real_output_passes_and_a_lost_message_or_an_unlimited_flood_fails() {
    assert_eq!(rate_limit::judge_flood(FLOOD_RAW), Ok(()));
    // A steady message lost among the noisy flood's lines.
    let text = String::from_utf8_lossy(FLOOD_RAW);
    let lost = text.replacen("flood steady message 7 of 20\r\n", "", 1);
    assert_eq!(
        rate_limit::judge_flood(lost.as_bytes()).unwrap_err().split(", got").next(),
        Some("the 20 steady messages in order")
    );
    // A flood the limit did not hold: a noisy message more on the console than the counters say were printed.
    let extra = text.replacen(
        "flood noisy message 1 of 200000\r\n",
        "flood noisy message 1 of 200000\r\nflood noisy message 2 of 200000\r\n",
        1,
    );
    assert_eq!(
        rate_limit::judge_flood(extra.as_bytes()),
        Err(String::from("100 noisy messages on the console, got 101"))
    );
    // A suppression line that under-reports.
    let short = text.replacen("klog: noisy: 19990 messages suppressed", "klog: noisy: 19989 messages suppressed", 1);
    assert_eq!(
        rate_limit::judge_flood(short.as_bytes()),
        Err(String::from("klog: noisy: lines adding up to 199900, got 199899"))
    );
}

fn phase2_replies() -> Vec<Value> {
    include_str!("phase2_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn phase_2_judged_on_real_replies_passes_all_nine() {
    let verdicts = governance::governance(&phase2_replies());
    assert_eq!(verdicts.len(), 9);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    let result = phase_result(&PHASES[1], &verdicts, Duration::ZERO);
    assert_eq!((result.passed, result.total, result.pending_issue), (9, 9, None));
}

#[test]
fn phase_2_fails_a_miscounted_budget_an_unrefused_size_and_a_broken_chain() {
    let mut replies = phase2_replies();
    replies[18]["principals"][0]["counters"]["tokens_used"] = serde_json::json!(104);
    replies[1] = serde_json::json!({ "command": "llmctl register", "ok": true });
    replies[22]["verified"] = serde_json::json!(false);
    let verdicts = governance::governance(&replies);
    assert_eq!(verdict(&verdicts, "Rate limiting"), &Err(String::from("tokens_used 105, got 104")));
    assert_eq!(
        verdict(&verdicts, "Size limit enforcement"),
        &Err(String::from(
            "\"llmctl register\" refused with model-too-large, got {\"command\":\"llmctl register\",\"ok\":true}"
        ))
    );
    assert!(verdict(&verdicts, "Compliance checks").as_ref().unwrap_err().starts_with("verified, got "));
    let passed = verdicts.iter().filter(|(_, verdict)| verdict.is_ok()).count();
    assert_eq!(passed, 6);
    let short = governance::governance(&phase2_replies()[..23]);
    assert!(short.iter().all(|(_, verdict)| verdict == &Err(String::from("23 JSON replies, expected 24"))));
}

fn phase5_replies() -> Vec<Value> {
    include_str!("phase5_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn phase_5_judged_on_real_replies_passes_all_nine() {
    let verdicts = ux_safety::ux_safety(&phase5_replies());
    assert_eq!(verdicts.len(), 9);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    let result = phase_result(&PHASES[3], &verdicts, Duration::ZERO);
    assert_eq!((result.number, result.passed, result.total, result.pending_issue), (5, 9, 9, None));
}

/// Each test fails on a reply changed where it looks, and only that test.
#[test]
fn phase_5_fails_each_test_on_its_own_wrong_figure() {
    let first_blocked = |replies: &[Value]| {
        replies[13]["traces"].as_array().unwrap().iter().position(|trace| trace["disposition"] == "blocked").unwrap()
    };
    type Change = fn(&mut Vec<Value>, usize);
    let changes: [(&str, Change); 9] = [
        ("Inference guardrails", |replies, blocked| {
            replies[13]["traces"][blocked]["blocked_by"] = Value::from("throttle.max_step_per_mille")
        }),
        ("Resource protection", |replies, _| replies[9]["port"]["throttle_max_per_mille"] = Value::from(301)),
        ("Safety validation", |replies, _| replies[12]["violated"] = Value::from(1)),
        ("Decision transparency", |replies, _| replies[19]["traces"][0]["confidence_per_mille"] = Value::from(1001)),
        ("Model introspection", |replies, _| replies[22]["output"]["q_values"][1] = Value::from(0.5)),
        ("Feature importance", |replies, _| {
            let contribution = replies[20]["explanation"]["features"][0]["contribution"].as_f64().unwrap();
            replies[20]["explanation"]["features"][0]["contribution"] = Value::from(contribution + 1e-6)
        }),
        ("Error reporting", |replies, _| replies[5] = serde_json::json!({ "command": "safetyctl set", "ok": true })),
        ("User feedback collection", |replies, _| replies[25]["feedback"]["principal"] = Value::from("token:1")),
        ("Feedback analysis", |replies, _| replies[30]["stats"]["good"] = Value::from(2)),
    ];
    for (test, change) in changes {
        let mut replies = phase5_replies();
        let blocked = first_blocked(&replies);
        change(&mut replies, blocked);
        let verdicts = ux_safety::ux_safety(&replies);
        let failed: Vec<&str> =
            verdicts.iter().filter(|(_, verdict)| verdict.is_err()).map(|(name, _)| *name).collect();
        assert_eq!(failed, [test], "{verdicts:?}");
    }
    let short = ux_safety::ux_safety(&phase5_replies()[..30]);
    assert!(short.iter().all(|(_, verdict)| verdict == &Err(String::from("30 JSON replies, expected 31"))));
}

fn phase7_replies() -> Vec<Value> {
    include_str!("phase7_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn phase_7_judged_on_real_replies_and_its_recorded_session_passes_all_seven_tests() {
    let verdicts = ai_ops::ai_ops(&phase7_replies());
    assert_eq!(verdicts.len(), 3);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    // Without the session's verdicts the OpenTelemetry tests and the workflow are not implemented, and with phase 7
    // off the pending list they fail CI.
    let result = phase_result(&PHASES[5], &verdicts, Duration::ZERO);
    assert_eq!((result.number, result.passed, result.total, result.pending_issue), (7, 3, 7, None));
    assert_eq!(report(vec![result], true).failing_outside_pending, 4);
    // With the recorded session's, the phase is complete.
    let mut all = verdicts;
    all.extend(otel_workflow::recorded_verdicts());
    let result = phase_result(&PHASES[5], &all, Duration::ZERO);
    assert_eq!((result.passed, result.total, result.pending_issue), (7, 7, None));
}

/// Each test fails on a reply changed where it looks, and only that test.
#[test]
fn phase_7_fails_each_test_on_its_own_wrong_figure() {
    type Change = fn(&mut Vec<Value>);
    let changes: [(&str, Change); 6] = [
        ("Model lifecycle", |replies| replies[19]["policy"] = Value::from("heuristic")),
        ("Model lifecycle", |replies| replies[24]["entries"][6]["principal"] = Value::from("token:1")),
        ("Shadow mode", |replies| replies[7]["confusion"][0][1] = Value::from(5)),
        ("Shadow mode", |replies| replies[7]["cost"]["shadow_step"]["count"] = Value::from(196)),
        ("Canary and rollback", |replies| replies[14]["candidate_intervals"] = Value::from(7)),
        ("Canary and rollback", |replies| replies[14]["rollback"]["rule"] = Value::from("throttle.max_per_mille")),
    ];
    for (test, change) in changes {
        let mut replies = phase7_replies();
        change(&mut replies);
        let verdicts = ai_ops::ai_ops(&replies);
        let failed: Vec<&str> =
            verdicts.iter().filter(|(_, verdict)| verdict.is_err()).map(|(name, _)| *name).collect();
        assert_eq!(failed, [test], "{verdicts:?}");
    }
    let short = ai_ops::ai_ops(&phase7_replies()[..24]);
    assert!(short.iter().all(|(_, verdict)| verdict == &Err(String::from("24 JSON replies, expected 25"))));
}

fn phase9_replies() -> Vec<Value> {
    include_str!("phase9_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn phase_9_judged_on_real_replies_passes_all_four() {
    let verdicts = agentic::agentic(&phase9_replies());
    assert_eq!(verdicts.len(), 4);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    let result = phase_result(&PHASES[7], &verdicts, Duration::ZERO);
    assert_eq!((result.number, result.passed, result.total, result.pending_issue), (9, 4, 4, None));
}

/// Each test fails on a reply changed where it looks, and only that test.
#[test]
fn phase_9_fails_each_test_on_its_own_wrong_figure() {
    fn agent(replies: &mut [Value], name: &str) -> usize {
        replies[16]["agents"].as_array().unwrap().iter().position(|agent| agent["name"] == name).unwrap()
    }
    type Change = fn(&mut Vec<Value>);
    let changes: [(&str, Change); 5] = [
        ("Protocol tests", |replies| replies[2]["entries"][0] = Value::from("passwd")),
        ("Protocol tests", |replies| {
            let malformed = agent(replies, "malformed");
            replies[16]["agents"][malformed]["usage"]["protocol_errors"] = Value::from(5)
        }),
        ("Capability tests", |replies| replies[20]["capabilities"][1] = Value::from("fs.read:/**")),
        ("Audit tests", |replies| replies[17]["records"][3]["call"] = Value::from("FS_READ")),
        ("ASM supervision tests", |replies| {
            let crasher = agent(replies, "crasher");
            replies[16]["agents"][crasher]["restarts"] = Value::from(3)
        }),
    ];
    for (test, change) in changes {
        let mut replies = phase9_replies();
        change(&mut replies);
        let verdicts = agentic::agentic(&replies);
        let failed: Vec<&str> =
            verdicts.iter().filter(|(_, verdict)| verdict.is_err()).map(|(name, _)| *name).collect();
        assert_eq!(failed, [test], "{verdicts:?}");
    }
    let short = agentic::agentic(&phase9_replies()[..21]);
    assert!(short.iter().all(|(_, verdict)| verdict == &Err(String::from("21 JSON replies, expected 22"))));
}
