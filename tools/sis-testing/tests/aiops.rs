//! QEMU tests of `aiopsctl`: the lifecycle of the meta-agent's policies with exact stages and audit entries, a
//! shadow during a stress run whose report adds up against the decision traces, a canary deciding exactly its
//! share, automatic rollbacks audited with their reason, and bad input refused with nothing changed.
//! Deterministic mode.

#[path = "audit_entries/mod.rs"]
mod audit_entries;
#[path = "refusals/mod.rs"]
mod refusals;

use audit_entries::model_and_outcome;
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

fn ok(reply: &Value) -> &Value {
    assert_eq!(reply["ok"], true, "{reply}");
    reply
}

/// A memory stress run of `ms` with the pressure the guardrail tests use.
fn memory_run(ms: u64) -> String {
    format!(
        "stresstest memory --duration {ms} --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
         --expect-failures --json"
    )
}

/// Every subject's stage in an `aiopsctl` reply's lifecycle (or `status`).
fn stages(lifecycle: &Value) -> Vec<(String, String)> {
    lifecycle["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["subject"].as_str().unwrap().to_string(), entry["stage"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The audit entries of an `llmctl audit --json` reply from `first` on: action, model, principal, outcome.
fn audit_entries(audit: &Value, first: u64) -> Vec<(String, String, String, String)> {
    ok(audit)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| number(entry, "/sequence") >= first)
        .map(|entry| {
            let (model, outcome) = model_and_outcome(entry);
            (
                entry["action"].as_str().unwrap().to_string(),
                model,
                entry["principal"].as_str().unwrap().to_string(),
                outcome,
            )
        })
        .collect()
}

fn quads(list: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    list.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string())).collect()
}

/// Whether the canary's `index`-th interval is the candidate's (docs/aiops.md, recomputed here).
fn selects(share: u64, seed: u64, index: u64) -> bool {
    let position = index + seed % 1000;
    (position + 1) * share / 1000 > position * share / 1000
}

const AGENT: &str = "memory-agent@1.0.0";
const HEURISTIC: &str = "heuristic@0.0.0";

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn every_lifecycle_step_has_its_exact_stages_and_audit_entry_and_production_runs_the_promoted_policy() {
    let (status, replies) = batch_json(
        "llmctl register builtin:memory-agent --json; aiopsctl status --json; \
         aiopsctl promote memory-agent --json; aiopsctl promote memory-agent --json; \
         aiopsctl promote memory-agent --force --json; aiopsctl promote memory-agent --json; \
         aiopsctl promote memory-agent@1.0.0 --force --json; autoctl status --json; aiopsctl status --json; \
         aiopsctl rollback --json; autoctl status --json; aiopsctl status --json; aiopsctl history --json; \
         llmctl audit --json",
    );
    assert_eq!(status, Some(exit::FAIL), "two refusals make the batch fail");
    assert_eq!(replies.len(), 14);
    let initial = ok(&replies[1]);
    assert_eq!(initial["production"], HEURISTIC);
    assert_eq!(stages(initial), pairs(&[(HEURISTIC, "production")]));
    assert_eq!((initial["candidate"].is_null(), initial["shadow"].is_null()), (true, true));
    assert_eq!(initial["policy_in_force"]["policy"], "heuristic");
    assert_eq!(number(initial, "/transitions"), 0);

    // registered -> shadow; no decision was compared, so the report does not pass and canary needs --force.
    let shadow = ok(&replies[2]);
    assert_eq!(shadow["transitions"][0]["from"], "registered");
    assert_eq!(shadow["transitions"][0]["to"], "shadow");
    assert_eq!(shadow["transitions"][0]["kind"], "promote");
    assert_eq!(shadow["lifecycle"]["candidate"]["subject"], AGENT);
    assert_eq!(replies[3]["error"]["code"], "no-passing-shadow-report");
    assert_eq!(
        replies[3]["error"]["message"],
        "memory-agent@1.0.0 has no passing shadow report: promotion to canary refused (run it in shadow, or --force)"
    );
    let canary = ok(&replies[4]);
    assert_eq!(canary["transitions"][0]["to"], "canary");
    assert_eq!(canary["transitions"][0]["kind"], "force-promote");
    assert_eq!(replies[5]["error"]["code"], "no-passing-shadow-report");
    // canary -> production retires the heuristic, and the meta-agent now runs the model's network.
    let production = ok(&replies[6]);
    let moves: Vec<(String, String, String, String)> = production["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = |key: &str| t[key].as_str().unwrap().to_string();
            (text("subject"), text("from"), text("to"), text("kind"))
        })
        .collect();
    assert_eq!(
        moves,
        quads(&[
            (AGENT, "canary", "production", "force-promote"),
            (HEURISTIC, "production", "retired", "force-promote")
        ])
    );
    assert_eq!(ok(&replies[7])["policy"], "learned");
    let promoted = ok(&replies[8]);
    assert_eq!(promoted["production"], AGENT);
    assert_eq!(promoted["previous_production"], serde_json::json!([HEURISTIC]));
    assert_eq!(promoted["policy_in_force"]["model"], AGENT);
    assert_eq!(stages(promoted), pairs(&[(HEURISTIC, "retired"), (AGENT, "production")]));
    // One command brings the heuristic back.
    let rolled = ok(&replies[9]);
    assert_eq!(rolled["transitions"][0]["subject"], HEURISTIC);
    assert_eq!(rolled["transitions"][0]["to"], "production");
    assert_eq!(rolled["transitions"][1]["subject"], AGENT);
    assert_eq!(rolled["transitions"][1]["to"], "retired");
    assert_eq!(ok(&replies[10])["policy"], "heuristic");
    let after = ok(&replies[11]);
    assert_eq!(stages(after), pairs(&[(HEURISTIC, "production"), (AGENT, "retired")]));
    assert_eq!(after["previous_production"], serde_json::json!([]));
    assert!(after["policy_in_force"]["model"].is_null());
    assert_eq!(number(after, "/transitions"), 6);
    let history = ok(&replies[12]);
    let sequence: Vec<u64> =
        history["transitions"].as_array().unwrap().iter().map(|t| number(t, "/sequence")).collect();
    assert_eq!(sequence, (0..6).collect::<Vec<u64>>());
    assert_eq!(number(history, "/total"), 6);

    assert_eq!(
        audit_entries(&replies[13], 0),
        quads(&[
            ("register", AGENT, "console", "ok"),
            ("promote", AGENT, "console", "ok"),
            ("promote", AGENT, "console", "no-passing-shadow-report"),
            ("force-promote", AGENT, "console", "ok"),
            ("promote", AGENT, "console", "no-passing-shadow-report"),
            ("force-promote", AGENT, "console", "ok"),
            ("rollback", HEURISTIC, "console", "ok"),
        ])
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_shadow_during_a_stress_run_compares_every_memory_decision_and_its_report_adds_up() {
    let run = memory_run(2000);
    let (status, replies) = batch_json(&format!(
        "llmctl register builtin:memory-agent --json; aiopsctl shadow start memory-agent --min-agreement 0 --json; \
         autoctl on --json; {run}; autoctl off --json; autoctl status --json; autoctl audit last 256 --json; \
         aiopsctl shadow report --json; aiopsctl promote memory-agent --json; aiopsctl shadow report --json; \
         llmctl audit --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 11);
    let (autonomy, audit, report) = (ok(&replies[5]), ok(&replies[6]), ok(&replies[7]));
    assert_eq!(report["subject"], AGENT);
    assert_eq!(
        (report["candidate_policy"].as_str(), report["production_policy"].as_str()),
        (Some("learned"), Some("heuristic"))
    );
    assert_eq!(report["running"], true);

    // Every interval has one memory decision, and the shadow saw each.
    let compared = number(report, "/compared");
    let intervals = number(autonomy, "/intervals");
    assert!(compared >= 100, "{compared}");
    assert_eq!(compared, intervals);
    let traces: Vec<&Value> =
        audit["traces"].as_array().unwrap().iter().filter(|trace| trace["subsystem"] == "memory").collect();
    assert_eq!(traces.len() as u64, compared, "every memory decision is still in the audit");
    let (agreed, differed) = (number(report, "/agreed"), number(report, "/differed"));
    assert_eq!(agreed + differed, compared);
    assert_eq!(number(report, "/agreement_per_mille"), agreed * 1000 / compared);
    let confusion: Vec<Vec<u64>> = report["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|count| count.as_u64().unwrap()).collect())
        .collect();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), compared);
    // The same kind with other parameters (another throttle level) is on the diagonal but differs.
    let same_kind = (0..5).map(|kind| confusion[kind][kind]).sum::<u64>();
    assert!(same_kind >= agreed, "{same_kind} < {agreed}");
    // Each row is production's count of that directive kind, read from the traces.
    let kinds = ["none", "proactive_reclaim", "throttle_allocations", "switch_strategy"];
    assert_eq!(
        report["directive_kinds"],
        serde_json::json!(["none", "proactive_reclaim", "throttle_allocations", "switch_strategy", "scheduling"])
    );
    for (row, kind) in confusion.iter().zip(kinds) {
        let count = traces.iter().filter(|trace| trace["directive"]["directive"] == kind).count() as u64;
        assert_eq!(row.iter().sum::<u64>(), count, "{kind}");
    }
    assert_eq!(confusion[4].iter().sum::<u64>(), 0, "a memory decision is never a scheduling one");
    // The kept differences are the first ones, each production's own trace.
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences.len() as u64, differed.min(32));
    for difference in differences {
        let trace = traces.iter().find(|trace| trace["id"] == difference["decision"]).unwrap();
        assert_eq!(difference["production"], trace["directive"], "{difference}");
        assert_eq!(difference["production_disposition"], trace["disposition"], "{difference}");
        assert_eq!(difference["interval"], trace["interval"], "{difference}");
        assert_ne!(difference["candidate"], trace["directive"], "{difference}");
    }
    // Every decision but the run's last was measured by the next one.
    assert_eq!(number(report, "/agreed_rewarded") + number(report, "/differed_rewarded"), compared - 1);
    // The shadow's cost is its own: one step per decision, beside production's decision cost.
    assert_eq!(number(report, "/cost/shadow_step/count"), compared);
    assert_eq!(number(report, "/cost/production_decision/count"), number(autonomy, "/decision_cost/count"));
    assert!(number(report, "/cost/shadow_step/p50_ns") > 0);
    assert_eq!(report["criteria"], serde_json::json!({ "min_compared": 100, "min_agreement_per_mille": 0 }));
    assert_eq!(report["passed"], true);

    // The passing report lets it into canary without force; the report stays, ended, unchanged.
    let promoted = ok(&replies[8]);
    assert_eq!(promoted["transitions"][0]["kind"], "promote");
    assert_eq!(promoted["transitions"][0]["to"], "canary");
    let ended = ok(&replies[9]);
    assert_eq!(ended["running"], false);
    assert_eq!(ended["compared"], report["compared"]);
    assert_eq!(ended["confusion"], report["confusion"]);
    assert_eq!(
        audit_entries(&replies[10], 1),
        quads(&[("promote", AGENT, "console", "ok"), ("promote", AGENT, "console", "ok")])
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_canary_decides_exactly_its_seeded_share_of_the_intervals() {
    let run = memory_run(2000);
    let (status, replies) = batch_json(&format!(
        "llmctl register builtin:memory-agent --json; aiopsctl shadow start memory-agent --json; \
         aiopsctl canary start memory-agent --force --share 250 --seed 3 --window 256 --max-drop 1000000 --json; \
         autoctl on --json; {run}; autoctl off --json; autoctl status --json; autoctl audit last 256 --json; \
         aiopsctl canary status --json; aiopsctl status --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 10);
    let (autonomy, audit, canary, lifecycle) = (ok(&replies[6]), ok(&replies[7]), ok(&replies[8]), ok(&replies[9]));
    assert_eq!(canary["subject"], AGENT);
    assert_eq!(
        canary["config"],
        serde_json::json!({ "share_per_mille": 250, "seed": 3, "window": 256, "max_reward_drop_milli": 1000000 })
    );
    let intervals = number(canary, "/intervals");
    assert_eq!(intervals, number(autonomy, "/intervals"), "the canary started before the first decision");
    let chosen: Vec<u64> = (0..intervals).filter(|index| selects(250, 3, *index)).collect();
    assert_eq!(number(canary, "/candidate_intervals"), chosen.len() as u64);
    // The candidate's decisions are exactly those intervals' memory decisions, through the same agent.
    let by_candidate: Vec<u64> = audit["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|trace| trace["subsystem"] == "memory" && trace["policy"] == "learned")
        .map(|trace| number(trace, "/interval"))
        .collect();
    assert_eq!(by_candidate, chosen);
    let heuristic = audit["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|trace| trace["subsystem"] == "memory" && trace["policy"] == "heuristic")
        .count();
    assert_eq!(heuristic as u64, intervals - chosen.len() as u64);
    assert_eq!((canary["running"].as_bool(), canary["active"].as_bool()), (Some(true), Some(true)));
    assert!(canary["rollback"].is_null());
    assert_eq!(number(canary, "/candidate_blocked"), 0);
    assert_eq!(lifecycle["candidate"]["stage"], "canary");
    assert_eq!(lifecycle["canary"]["candidate_intervals"], canary["candidate_intervals"]);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_guardrail_block_of_the_candidate_rolls_the_canary_back_at_that_decision_audited_with_its_reason() {
    let run = memory_run(1000);
    let (status, replies) = batch_json(&format!(
        "llmctl register builtin:memory-agent --json; aiopsctl shadow start memory-agent --json; \
         aiopsctl canary start memory-agent --force --share 1000 --window 256 --max-drop 1000000 --json; \
         autoctl conf-threshold 0 --json; safetyctl set reclaim.max_per_window 0 --json; autoctl on --json; {run}; \
         autoctl off --json; aiopsctl canary status --json; aiopsctl status --json; autoctl audit last 256 --json; \
         llmctl audit --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 12);
    let (canary, lifecycle, audit) = (ok(&replies[8]), ok(&replies[9]), ok(&replies[10]));
    // The candidate decided every interval until its first reclaim, which the guardrails blocked.
    let rollback = &canary["rollback"];
    assert_eq!(rollback["reason"], "guardrail-block", "{canary}");
    assert_eq!(rollback["rule"], "reclaim.max_per_window");
    let traces = audit["traces"].as_array().unwrap();
    let blocked = traces.iter().find(|trace| trace["id"] == rollback["decision"]).unwrap();
    assert_eq!(blocked["policy"], "learned");
    assert_eq!(blocked["disposition"], "blocked");
    assert_eq!(blocked["blocked_by"], "reclaim.max_per_window");
    let by_candidate: Vec<&Value> = traces.iter().filter(|trace| trace["policy"] == "learned").collect();
    assert_eq!(by_candidate.last().unwrap()["id"], blocked["id"], "nothing after the block is the candidate's");
    assert_eq!(number(canary, "/candidate_intervals"), by_candidate.len() as u64);
    assert_eq!(number(canary, "/candidate_blocked"), 1);
    assert_eq!((canary["running"].as_bool(), canary["active"].as_bool()), (Some(false), Some(false)));
    assert!(traces.iter().filter(|trace| trace["policy"] == "heuristic").count() > 0, "production took over");
    // The lifecycle heard of it at that decision: back to registered, audited under the meta-agent.
    assert!(lifecycle["candidate"].is_null());
    assert_eq!(stages(lifecycle), pairs(&[(HEURISTIC, "production"), (AGENT, "registered")]));
    assert_eq!(number(lifecycle, "/canary_rollbacks"), 1);
    let entries = audit_entries(&replies[11], 0);
    assert_eq!(
        entries,
        quads(&[
            ("register", AGENT, "console", "ok"),
            ("promote", AGENT, "console", "ok"),
            ("force-promote", AGENT, "console", "ok"),
            ("canary-rollback", AGENT, "agent:0", "guardrail-block"),
        ])
    );
    let entry = &replies[11]["entries"][3];
    let (at, audited) = (number(blocked, "/at_ns"), number(entry, "/time_ns"));
    assert!(audited > at && audited < at + 10_000_000, "audited at {audited} ns, decided at {at} ns");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let (_, replies) = batch_json(
        "llmctl register builtin:memory-agent --json; llmctl register builtin --json; aiopsctl status --json; \
         aiopsctl promote nothing --json; aiopsctl promote memory-agent@9.9.9 --json; \
         aiopsctl promote shakespeare-lm --json; aiopsctl canary start memory-agent --force --json; \
         aiopsctl promote memory-agent --share 0 --json; aiopsctl promote memory-agent --share 1001 --json; \
         aiopsctl promote memory-agent --window 0 --json; aiopsctl promote memory-agent --max-drop -1 --json; \
         aiopsctl promote memory-agent --min-decisions 0 --json; aiopsctl promote memory-agent --min-agreement 1001 --json; \
         aiopsctl rollback --json; aiopsctl demote heuristic --json; aiopsctl shadow stop --json; \
         aiopsctl canary stop --json; aiopsctl shadow report --json; aiopsctl canary status --json; \
         aiopsctl promote heuristic --json; aiopsctl promote --json; aiopsctl promote memory-agent --share x --json; \
         aiopsctl promote memory-agent --share 70000 --json; aiopsctl status --json; aiopsctl history --json",
    );
    assert_eq!(replies.len(), 25);
    let before = ok(&replies[2]);
    let expected = [
        ("unknown-model", Some("no model is named nothing")),
        ("unknown-version", None),
        ("not-an-agent-network", Some("shakespeare-lm@1.0.0 is of kind language-model, not agent-network")),
        (
            "wrong-stage",
            Some("memory-agent@1.0.0 is registered, not shadow: nothing changed (aiopsctl status shows every stage)"),
        ),
        ("bad-share", Some("--share takes 1 to 1000 per mille, not 0; nothing changed")),
        ("bad-share", Some("--share takes 1 to 1000 per mille, not 1001; nothing changed")),
        ("bad-window", Some("--window takes 1 to 256 decisions, not 0; nothing changed")),
        ("bad-max-drop", Some("--max-drop takes 0 or more, not -1; nothing changed")),
        ("bad-min-decisions", Some("--min-decisions takes 1 to 1000000, not 0; nothing changed")),
        ("bad-min-agreement", Some("--min-agreement takes 0 to 1000 per mille, not 1001; nothing changed")),
        ("no-previous-production", Some("no previous production version to roll back to")),
        ("demote-production", Some("heuristic@0.0.0 is in production: use rollback, or promote another version")),
        ("no-shadow", Some("no candidate is in shadow")),
        ("no-canary", Some("no candidate is in canary")),
        ("no-shadow-report", Some("no shadow has run since boot")),
        ("no-canary-status", Some("no canary has run since boot")),
        ("already-production", Some("heuristic@0.0.0 is in production already")),
        ("missing-argument", None),
        ("invalid-value", None),
        ("out-of-range", None),
    ];
    assert_refusals(&replies[3..23], &expected);
    let after = ok(&replies[23]);
    for key in ["production", "previous_production", "candidate", "subjects", "transitions", "shadow", "canary"] {
        assert_eq!(after[key], before[key], "{key} changed");
    }
    assert_eq!(number(after, "/transitions"), 0);
    assert_eq!(ok(&replies[24])["transitions"], serde_json::json!([]));
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_reward_drop_over_the_window_rolls_the_canary_back_audited_with_its_figures() {
    let run = memory_run(2000);
    let (status, replies) = batch_json(&format!(
        "llmctl register builtin:memory-agent --json; aiopsctl shadow start memory-agent --json; \
         aiopsctl canary start memory-agent --force --share 500 --window 4 --max-drop 0 --json; autoctl on --json; \
         {run}; autoctl off --json; aiopsctl canary status --json; autoctl audit last 256 --json; llmctl audit --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), 9);
    let (canary, audit) = (ok(&replies[6]), ok(&replies[7]));
    let rollback = &canary["rollback"];
    assert_eq!(rollback["reason"], "reward-drop", "{canary}");
    // The rule, recomputed from the windows the status shows: both full, production's mean above the candidate's
    // by more than the allowed drop (0).
    let rewards = |key: &str| -> Vec<i64> {
        canary[key].as_array().unwrap().iter().map(|reward| reward.as_i64().unwrap()).collect()
    };
    let (candidate, production) = (rewards("candidate_rewards_milli"), rewards("production_rewards_milli"));
    assert_eq!((candidate.len(), production.len()), (4, 4));
    let mean = |side: &[i64]| side.iter().sum::<i64>() / 4;
    assert_eq!(rollback["candidate_mean_milli"].as_i64(), Some(mean(&candidate)));
    assert_eq!(rollback["production_mean_milli"].as_i64(), Some(mean(&production)));
    assert_eq!(rollback["max_reward_drop_milli"].as_i64(), Some(0));
    assert!(mean(&production) - mean(&candidate) > 0);
    // Every other interval was the candidate's until the rule stopped it, at the start of the last interval.
    let intervals = number(canary, "/intervals");
    let chosen: Vec<u64> = (0..intervals).filter(|index| selects(500, 0, *index)).collect();
    assert_eq!(number(canary, "/candidate_intervals"), chosen.len() as u64);
    let traces = audit["traces"].as_array().unwrap();
    let by_candidate: Vec<u64> = traces
        .iter()
        .filter(|trace| trace["subsystem"] == "memory" && trace["policy"] == "learned")
        .map(|trace| number(trace, "/interval"))
        .collect();
    assert_eq!(by_candidate, chosen);
    assert_eq!(canary["active"], false);
    let stopped_at = traces
        .iter()
        .find(|trace| trace["subsystem"] == "memory" && number(trace, "/interval") == intervals - 1)
        .unwrap();
    assert_eq!(stopped_at["policy"], "heuristic");
    let entries = audit_entries(&replies[8], 3);
    assert_eq!(entries, quads(&[("canary-rollback", AGENT, "agent:0", "reward-drop")]));
    let (at, audited) = (number(stopped_at, "/at_ns"), number(&replies[8]["entries"][3], "/time_ns"));
    assert!(audited > at && audited < at + 10_000_000, "audited at {audited} ns, decided at {at} ns");
}
