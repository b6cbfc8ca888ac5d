//! Phase 7, AI Ops: one deterministic boot shadows the shipped memory agent beside the heuristic during a memory
//! run, lets the passing report take it into canary, provokes an automatic rollback with a guardrail tighter than
//! the candidate's habits, then forces it into production and rolls production back in one command. The judge
//! reads exact figures: the shadow report against the decision traces, the canary's rollback against the blocked
//! trace, every transition against the lifecycle's history and the governance audit log.

use serde_json::Value;

use super::judge::{expect, number, ok};
use super::Verdict;

/// The probe's commands, one JSON reply each ([`REPLIES`] of them).
pub const AI_OPS_COMMANDS: &str = "llmctl register builtin:memory-agent --json; \
     aiopsctl shadow start memory-agent --min-agreement 0 --json; autoctl on --json; \
     stresstest memory --duration 2000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
     --expect-failures --json; autoctl off --json; autoctl status --json; autoctl audit last 256 --json; \
     aiopsctl shadow report --json; \
     aiopsctl canary start memory-agent --share 1000 --window 256 --max-drop 1000000 --json; \
     autoctl conf-threshold 0 --json; safetyctl set reclaim.max_per_window 0 --json; autoctl on --json; \
     stresstest memory --duration 1000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
     --expect-failures --json; autoctl off --json; aiopsctl canary status --json; autoctl audit last 256 --json; \
     aiopsctl promote memory-agent --json; aiopsctl promote memory-agent --force --json; \
     aiopsctl promote memory-agent --force --json; autoctl status --json; aiopsctl rollback --json; \
     autoctl status --json; aiopsctl status --json; aiopsctl history --json; llmctl audit --json";

/// Replies [`AI_OPS_COMMANDS`] prints.
const REPLIES: usize = 25;

/// The phase's tests this probe judges (the OpenTelemetry components and the end-to-end workflow are judged by
/// later probes, or reported as not implemented).
const JUDGED: [&str; 3] = ["Model lifecycle", "Shadow mode", "Canary and rollback"];
/// The candidate, and the production policy it starts beside.
const AGENT: &str = "memory-agent@1.0.0";
const HEURISTIC: &str = "heuristic@0.0.0";
/// Differing decisions a shadow report keeps.
const DIFFERENCES_KEPT: u64 = 32;
/// Directive kinds of the confusion matrix, in its row order (docs/aiops.md); memory decisions have no fifth.
const KINDS: [&str; 4] = ["none", "proactive_reclaim", "throttle_allocations", "switch_strategy"];
/// An automatic rollback is audited before the next decision interval (10 ms) ends.
const ROLLBACK_AUDIT_NS: u64 = 10_000_000;

/// Phase 7's lifecycle, shadow and canary tests from [`AI_OPS_COMMANDS`]'s replies.
pub fn ai_ops(replies: &[Value]) -> Vec<Verdict> {
    if replies.len() != REPLIES {
        let got = format!("{} JSON replies, expected {REPLIES}", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    vec![
        ("Model lifecycle", lifecycle(replies)),
        ("Shadow mode", shadow(&replies[5], &replies[6], &replies[7])),
        ("Canary and rollback", canary(replies)),
    ]
}

/// One transition: subject, from, to, kind, sequence, time.
type Move = (String, String, String, String, u64, u64);

fn moves(transitions: &Value) -> Result<Vec<Move>, String> {
    let list = transitions.as_array().ok_or_else(|| format!("transitions a list, got {transitions}"))?;
    list.iter()
        .map(|t| {
            let text = |key: &str| t[key].as_str().map(str::to_string).ok_or_else(|| format!("{key} in {t}"));
            Ok((
                text("subject")?,
                text("from")?,
                text("to")?,
                text("kind")?,
                number(t, "sequence")?,
                number(t, "time_ns")?,
            ))
        })
        .collect()
}

fn stages(lifecycle: &Value) -> Result<Vec<(String, String)>, String> {
    let list = lifecycle["subjects"].as_array().ok_or_else(|| format!("subjects in {lifecycle}"))?;
    Ok(list
        .iter()
        .map(|entry| {
            (entry["subject"].as_str().unwrap_or("?").to_string(), entry["stage"].as_str().unwrap_or("?").to_string())
        })
        .collect())
}

/// Every transition the commands made, with the automatic rollback between them, is the history in order;
/// each subject's transitions chain; production ran the promoted policy and the rollback restored the heuristic;
/// each transition is one audit entry at its time, under the console or (the automatic rollback) the meta-agent.
fn lifecycle(replies: &[Value]) -> Result<(), String> {
    let history = ok(&replies[23])?;
    let recorded = moves(&history["transitions"])?;
    expect(history, "total", recorded.len() as u64)?;
    let mut made = Vec::new();
    for index in [1, 8, 16, 17, 18, 20] {
        made.extend(moves(&ok(&replies[index])?["transitions"])?);
    }
    // The automatic rollback is the only transition no command returned.
    let automatic: Vec<&Move> = recorded.iter().filter(|entry| !made.contains(entry)).collect();
    match automatic.as_slice() {
        [(subject, from, to, kind, 2, _)]
            if subject == AGENT && from == "canary" && to == "registered" && kind == "canary-rollback" => {}
        other => return Err(format!("one automatic canary rollback as transition 2, got {other:?}")),
    }
    if recorded.len() != made.len() + 1 {
        return Err(format!(
            "{} transitions in the history, the commands made {} and one rollback",
            recorded.len(),
            made.len()
        ));
    }
    for (sequence, entry) in recorded.iter().enumerate() {
        if entry.4 != sequence as u64 {
            return Err(format!("transition {sequence} numbered {}", entry.4));
        }
        if let Some(before) = recorded[..sequence].iter().rev().find(|earlier| earlier.0 == entry.0) {
            if before.2 != entry.1 {
                return Err(format!("{} went to {} and then from {}", entry.0, before.2, entry.1));
            }
        }
    }
    let (promoted, in_force) = (ok(&replies[18])?, ok(&replies[19])?);
    if promoted["lifecycle"]["production"] != AGENT
        || promoted["lifecycle"]["previous_production"] != serde_json::json!([HEURISTIC])
    {
        return Err(format!("{AGENT} in production after {HEURISTIC}, got {}", promoted["lifecycle"]));
    }
    if in_force["policy"] != "learned" {
        return Err(format!("the meta-agent runs the promoted network (learned), got {}", in_force["policy"]));
    }
    let (restored, status) = (ok(&replies[21])?, ok(&replies[22])?);
    if restored["policy"] != "heuristic" || status["policy_in_force"]["policy"] != "heuristic" {
        return Err(format!(
            "the rollback puts the heuristic back in force, got {} and {}",
            restored["policy"], status["policy_in_force"]
        ));
    }
    let expected = vec![(HEURISTIC.to_string(), "production".to_string()), (AGENT.to_string(), "retired".to_string())];
    if stages(status)? != expected {
        return Err(format!("stages {expected:?} after the rollback, got {:?}", stages(status)?));
    }
    expect(status, "canary_rollbacks", 1)?;
    // One audit entry per command's step (a rollback moves two subjects in one step), and the automatic one.
    let audit = ok(&replies[24])?;
    let entries = audit["entries"].as_array().ok_or("audit entries")?;
    let steps: Vec<(String, String, String, u64)> = entries
        .iter()
        .skip(1)
        .map(|entry| {
            let outcome = if entry["outcome"]["status"] == "ok" {
                "ok"
            } else {
                entry["outcome"]["code"].as_str().unwrap_or("?")
            };
            (
                entry["action"].as_str().unwrap_or("?").to_string(),
                entry["principal"].as_str().unwrap_or("?").to_string(),
                outcome.to_string(),
                entry["time_ns"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Each command is one step (promoting to production and rolling back move two subjects at once).
    let mut wanted: Vec<(String, String, String, u64)> = Vec::new();
    for index in [1, 8, 16, 17, 18, 20] {
        let first = moves(&replies[index]["transitions"])?.into_iter().next().ok_or("a transition")?;
        wanted.push((first.3, String::from("console"), String::from("ok"), first.5));
        if index == 8 {
            // The automatic rollback, audited when the autonomy thread has let go of its lock, within the interval.
            let (time, audited) = (recorded[2].5, steps.get(2).map_or(0, |step| step.3));
            let at = if audited >= time && audited < time + ROLLBACK_AUDIT_NS { audited } else { time };
            wanted.push((
                String::from("canary-rollback"),
                String::from("agent:0"),
                String::from("guardrail-block"),
                at,
            ));
        }
    }
    if steps != wanted {
        return Err(format!("audit entries {wanted:?}, got {steps:?}"));
    }
    if entries.first().map(|entry| &entry["action"]) != Some(&Value::from("register")) {
        return Err(format!("the log starts with the register, got {}", entries.first().unwrap_or(&Value::Null)));
    }
    Ok(())
}

/// The shadow saw every memory decision of the run; its counts add up; each confusion row is production's count
/// of that kind in the traces; each kept difference is production's own trace against another choice; its cost
/// is counted apart from production's decisions.
fn shadow(autonomy: &Value, audit: &Value, report: &Value) -> Result<(), String> {
    let (autonomy, audit, report) = (ok(autonomy)?, ok(audit)?, ok(report)?);
    if report["subject"] != AGENT
        || report["candidate_policy"] != "learned"
        || report["production_policy"] != "heuristic"
    {
        return Err(format!("a shadow of {AGENT} (learned) beside the heuristic, got {report}"));
    }
    let compared = number(report, "compared")?;
    expect(autonomy, "intervals", compared)?;
    let traces: Vec<&Value> =
        audit["traces"].as_array().ok_or("traces")?.iter().filter(|trace| trace["subsystem"] == "memory").collect();
    if traces.len() as u64 != compared {
        return Err(format!("{compared} memory decisions in the traces, got {}", traces.len()));
    }
    let (agreed, differed) = (number(report, "agreed")?, number(report, "differed")?);
    if agreed + differed != compared {
        return Err(format!("agreed {agreed} + differed {differed} = compared {compared}"));
    }
    expect(report, "agreement_per_mille", agreed * 1000 / compared)?;
    let confusion: Vec<Vec<u64>> = report["confusion"]
        .as_array()
        .ok_or("confusion")?
        .iter()
        .map(|row| row.as_array().map_or(Vec::new(), |row| row.iter().filter_map(Value::as_u64).collect()))
        .collect();
    if confusion.len() != 5 || confusion.iter().any(|row| row.len() != 5) {
        return Err(format!("a 5 x 5 confusion matrix, got {confusion:?}"));
    }
    if confusion.iter().flatten().sum::<u64>() != compared {
        return Err(format!("the confusion matrix sums to {compared}, got {confusion:?}"));
    }
    let diagonal: u64 = (0..5).map(|kind| confusion[kind][kind]).sum();
    if diagonal < agreed {
        return Err(format!("agreeing decisions ({agreed}) lie on the diagonal ({diagonal})"));
    }
    for (row, kind) in confusion.iter().zip(KINDS) {
        let count = traces.iter().filter(|trace| trace["directive"]["directive"] == kind).count() as u64;
        if row.iter().sum::<u64>() != count {
            return Err(format!("row {kind} sums to production's {count} such decisions, got {row:?}"));
        }
    }
    if confusion[4].iter().sum::<u64>() != 0 {
        return Err(format!("no memory decision is a scheduling one, got {:?}", confusion[4]));
    }
    let differences = report["differences"].as_array().ok_or("differences")?;
    if differences.len() as u64 != differed.min(DIFFERENCES_KEPT) {
        return Err(format!("{} differences kept, got {}", differed.min(DIFFERENCES_KEPT), differences.len()));
    }
    for difference in differences {
        let trace = traces
            .iter()
            .find(|trace| trace["id"] == difference["decision"])
            .ok_or_else(|| format!("a trace for difference {difference}"))?;
        if difference["production"] != trace["directive"]
            || difference["production_disposition"] != trace["disposition"]
            || difference["interval"] != trace["interval"]
            || difference["candidate"] == trace["directive"]
        {
            return Err(format!("difference {difference} against its trace {trace}"));
        }
    }
    // Each decision but the run's last was measured by the next one.
    let rewarded = number(report, "agreed_rewarded")? + number(report, "differed_rewarded")?;
    if rewarded != compared - 1 {
        return Err(format!("{} decisions rewarded, got {rewarded}", compared - 1));
    }
    expect(&report["cost"]["shadow_step"], "count", compared)?;
    expect(&report["cost"]["production_decision"], "count", number(&autonomy["decision_cost"], "count")?)?;
    if report["criteria"] != serde_json::json!({ "min_compared": 100, "min_agreement_per_mille": 0 })
        || report["passed"] != true
    {
        return Err(format!(
            "a passing report at the probe's criteria, got {} {}",
            report["criteria"], report["passed"]
        ));
    }
    Ok(())
}

/// The passing report took the candidate into canary without force; a guardrail tighter than the candidate's
/// habits blocked its first reclaim and that decision rolled the canary back: the candidate decided every interval
/// until then and none after, production took over, and the rollback was audited within its interval.
fn canary(replies: &[Value]) -> Result<(), String> {
    let started = moves(&ok(&replies[8])?["transitions"])?;
    match started.as_slice() {
        [(subject, from, to, kind, _, _)]
            if subject == AGENT && from == "shadow" && to == "canary" && kind == "promote" => {}
        other => return Err(format!("{AGENT} shadow -> canary by a plain promote, got {other:?}")),
    }
    let (status, audit) = (ok(&replies[14])?, ok(&replies[15])?);
    let rollback = &status["rollback"];
    if rollback["reason"] != "guardrail-block" || rollback["rule"] != "reclaim.max_per_window" {
        return Err(format!("rolled back by reclaim.max_per_window, got {rollback}"));
    }
    let traces = audit["traces"].as_array().ok_or("traces")?;
    let blocked = traces
        .iter()
        .find(|trace| trace["id"] == rollback["decision"])
        .ok_or_else(|| format!("the blocked decision {} in the traces", rollback["decision"]))?;
    if blocked["policy"] != "learned"
        || blocked["disposition"] != "blocked"
        || blocked["blocked_by"] != "reclaim.max_per_window"
    {
        return Err(format!("the candidate's decision blocked by the rule, got {blocked}"));
    }
    let by_candidate: Vec<&Value> = traces.iter().filter(|trace| trace["policy"] == "learned").collect();
    if by_candidate.last().map(|trace| &trace["id"]) != Some(&blocked["id"]) {
        return Err(String::from("the candidate decided nothing after the block"));
    }
    expect(status, "candidate_intervals", by_candidate.len() as u64)?;
    expect(status, "intervals", by_candidate.len() as u64)?;
    expect(status, "candidate_blocked", 1)?;
    if status["active"] != false || status["running"] != false {
        return Err(format!("the canary stopped, got active {} running {}", status["active"], status["running"]));
    }
    let blocked_id = blocked["id"].as_u64().unwrap_or(0);
    let after = traces
        .iter()
        .filter(|trace| trace["policy"] == "heuristic" && trace["id"].as_u64().is_some_and(|id| id > blocked_id))
        .count();
    if after == 0 {
        return Err(String::from("production decided after the rollback"));
    }
    let entry = ok(&replies[24])?["entries"]
        .as_array()
        .ok_or("audit entries")?
        .iter()
        .find(|entry| entry["action"] == "canary-rollback")
        .ok_or("a canary-rollback audit entry")?;
    if entry["principal"] != "agent:0" || entry["outcome"]["code"] != "guardrail-block" {
        return Err(format!("audited under agent:0 with guardrail-block, got {entry}"));
    }
    let (at, audited) = (number(blocked, "at_ns")?, number(entry, "time_ns")?);
    if audited < at || audited >= at + ROLLBACK_AUDIT_NS {
        return Err(format!("audited at {audited} ns, within {ROLLBACK_AUDIT_NS} ns of the decision at {at} ns"));
    }
    Ok(())
}
