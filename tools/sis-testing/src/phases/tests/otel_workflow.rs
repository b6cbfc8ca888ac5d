//! Phase 7's OpenTelemetry and workflow judges against a recorded session, and against copies altered where each
//! test looks: each alteration fails its own test and no other.

use serde_json::Value;

use super::super::otel_workflow::{self, Recording};
use super::super::Verdict;

/// The record of one deterministic session (`SIS_PHASE7_RECORD=PATH cargo xtask phases --phase 7
/// --deterministic`, 2026-12-07, after decision traces began to wait for their outcome before export). No attempt
/// timed out (the session's 60 s deadline), so nothing arrived twice; the tests of repeats make one.
fn recorded() -> Value {
    serde_json::from_str(include_str!("../phase7_session.json")).unwrap()
}

fn verdicts(record: Value) -> Vec<Verdict> {
    let recording: Recording = serde_json::from_value(record).unwrap();
    otel_workflow::judge(&recording)
}

/// The recorded session's verdicts.
pub(super) fn recorded_verdicts() -> Vec<Verdict> {
    verdicts(recorded())
}

#[test]
fn the_recorded_session_passes_every_test() {
    let verdicts = verdicts(recorded());
    let names: Vec<&str> = verdicts.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, otel_workflow::TESTS);
    for (name, verdict) in verdicts {
        assert_eq!(verdict, Ok(()), "{name}");
    }
}

fn at<'a>(record: &'a mut Value, pointer: &str) -> &'a mut Value {
    record.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} in the record"))
}

/// The index in the collector's span list of the first span named `name`.
fn span_named(record: &Value, name: &str) -> usize {
    record["summary"]["span_list"].as_array().unwrap().iter().position(|span| span["name"] == name).unwrap()
}

/// The index of the `sis.autonomy.decisions` span holding decision `seq`, and the event's index in it.
fn decision_event(record: &Value, seq: u64) -> (usize, usize) {
    let spans = record["summary"]["span_list"].as_array().unwrap();
    for (index, span) in spans.iter().enumerate() {
        if span["name"] != "sis.autonomy.decisions" {
            continue;
        }
        let events = span["events"].as_array().unwrap();
        if let Some(event) = events.iter().position(|event| event["attributes"]["sis.record.seq"] == seq) {
            return (index, event);
        }
    }
    panic!("decision {seq} in the record")
}

#[test]
fn each_alteration_fails_its_own_test_and_no_other() {
    type Change = fn(&mut Value);
    let cases: [(&str, &str, Change); 14] = [
        ("OTel traces", "ids of 32 and 16 lowercase hex", |record| {
            let span = span_named(record, "commands");
            let id = at(record, &format!("/summary/span_list/{span}/trace_id"));
            *id = Value::from(id.as_str().unwrap().to_uppercase());
        }),
        ("OTel traces", "the parent of", |record| {
            let span = span_named(record, "multi");
            *at(record, &format!("/summary/span_list/{span}/parent_span_id")) = Value::from("00000000000000aa");
        }),
        ("OTel traces", "within its parent", |record| {
            let span = span_named(record, "learning");
            *at(record, &format!("/summary/span_list/{span}/end_time_unix_nano")) = Value::from(u64::MAX / 2);
        }),
        ("OTel traces", "exported", |record| {
            let exported = at(record, "/otel_status/spans/exported");
            *exported = Value::from(exported.as_u64().unwrap() + 1);
        }),
        // A decision batch that arrived twice while the kernel counted no attempt as timed out.
        ("OTel traces", "arrived twice, with no attempt timed out", |record| {
            let (span, _) = decision_event(record, 11);
            let spans = at(record, "/summary/span_list").as_array_mut().unwrap();
            let copy = spans[span].clone();
            spans.insert(span, copy);
        }),
        ("OTel metrics", "sis.autonomy.decision", |record| {
            let count = at(record, "/autonomy/decision_cost/count");
            *count = Value::from(count.as_u64().unwrap() - 1);
        }),
        ("OTel metrics", "the decision-time histogram", |record| {
            *at(record, "/autonomy/decision_cost/max_ns") = Value::from(1u64);
        }),
        ("OTel metrics", "sis.shell.command.duration count", |record| {
            let metrics = record["summary"]["metrics"].as_array().unwrap();
            let last = metrics.iter().rposition(|metric| metric["name"] == "sis.shell.command.duration").unwrap();
            let count = at(record, &format!("/summary/metrics/{last}/points/0/count"));
            *count = Value::from(count.as_u64().unwrap() + 1);
        }),
        ("Decision-trace export", "a batch at", |record| {
            // One decision skipped: the batch holding decision 20 loses it, and says so in its count.
            let (span, event) = decision_event(record, 20);
            let events = at(record, &format!("/summary/span_list/{span}/events")).as_array_mut().unwrap();
            events.truncate(event);
            let length = events.len();
            *at(record, &format!("/summary/span_list/{span}/attributes/sis.records.count")) = Value::from(length);
        }),
        ("Decision-trace export", "field for field", |record| {
            let (span, event) = decision_event(record, 5);
            let pointer = format!("/summary/span_list/{span}/events/{event}/attributes/sis.decision.disposition");
            *at(record, &pointer) = Value::from("acted-elsewhere");
        }),
        // A trace exported before its outcome was known: the kernel holds such traces back, so none may arrive.
        ("Decision-trace export", "field for field", |record| {
            let spans = record["summary"]["span_list"].as_array().unwrap();
            let (span, event) = spans
                .iter()
                .enumerate()
                .filter(|(_, span)| span["name"] == "sis.autonomy.decisions")
                .find_map(|(index, span)| {
                    let events = span["events"].as_array().unwrap();
                    let judged =
                        events.iter().position(|event| event["attributes"]["sis.decision.outcome"] == "failed");
                    judged.map(|event| (index, event))
                })
                .expect("a decision judged failed in the record");
            let attributes = at(record, &format!("/summary/span_list/{span}/events/{event}/attributes"));
            attributes["sis.decision.outcome"] = Value::from("pending");
            attributes.as_object_mut().unwrap().remove("sis.decision.reward_per_mille");
        }),
        ("Decision-trace export", "evicted", |record| {
            *at(record, "/decisions_status/otlp/evicted") = Value::from(1);
        }),
        ("Complete AI Ops workflow", "the canary run logs", |record| {
            let run = 3 + 13;
            *at(record, &format!("/recorded/{run}/log")) = Value::Array(Vec::new());
        }),
        ("Complete AI Ops workflow", "candidate_intervals", |record| {
            let status = 3 + 15;
            let intervals = at(record, &format!("/recorded/{status}/reply/candidate_intervals"));
            *intervals = Value::from(intervals.as_u64().unwrap() + 1);
        }),
    ];
    for (test, reason, change) in cases {
        let mut record = recorded();
        change(&mut record);
        for (name, verdict) in verdicts(record) {
            if name == test {
                let reason_got = verdict.expect_err(test);
                assert!(reason_got.contains(reason), "{test}: {reason_got}");
            } else {
                assert_eq!(verdict, Ok(()), "{name}, when {test} is altered ({reason})");
            }
        }
    }
}

#[test]
fn a_command_span_with_another_outcome_fails_the_workflow() {
    let mut record = recorded();
    let span = span_named(&record, "llmctl register");
    *at(&mut record, &format!("/summary/span_list/{span}/attributes/sis.command.outcome")) = Value::from("failed");
    let verdicts = verdicts(record);
    assert!(verdicts[3].1.as_ref().unwrap_err().starts_with("command spans"), "{:?}", verdicts[3]);
    assert_eq!(verdicts[..3].iter().filter(|(_, verdict)| verdict.is_ok()).count(), 3);
}

/// The record changed as a session where the kernel kept retrying its second decision batch (decisions 2 to 15)
/// while the collector had accepted it (the attempt timed out), and the ring overwrote decisions 2 to 5 meanwhile:
/// the copy the kernel never saw accepted stays at the collector, and the batch it committed starts at 6 with 4 lost
/// (measured so, with 12 lost, in a session with the 2 s attempt deadline).
fn retried_past_evictions() -> Value {
    let mut record = recorded();
    let (span, event) = decision_event(&record, 2);
    assert_eq!(event, 0, "decision 2 opens a batch in the record");
    let spans = at(&mut record, "/summary/span_list").as_array_mut().unwrap();
    let copy = spans[span].clone();
    let committed = &mut spans[span];
    committed["events"].as_array_mut().unwrap().drain(..4);
    let count = committed["events"].as_array().unwrap().len();
    committed["attributes"]["sis.records.first_seq"] = Value::from(6);
    committed["attributes"]["sis.records.evicted"] = Value::from(4);
    committed["attributes"]["sis.records.count"] = Value::from(count);
    spans.insert(span, copy);
    *at(&mut record, "/decisions_status/otlp/evicted") = Value::from(4);
    *at(&mut record, "/otel_status/stopped/traces/attempts/timeouts") = Value::from(1);
    let exported = at(&mut record, "/decisions_status/otlp/exported");
    *exported = Value::from(exported.as_u64().unwrap() - 4);
    record
}

#[test]
fn a_batch_committed_after_evictions_beside_its_accepted_copy_passes_and_a_copy_with_other_records_fails() {
    for (name, verdict) in verdicts(retried_past_evictions()) {
        assert_eq!(verdict, Ok(()), "{name}");
    }
    // The copy's record of a decision the chain holds must be the chain's; one the kernel counts lost must still be
    // the audit's.
    for (seq, test, reason) in [
        (10, 0, "decision 10 sent again with other content"),
        (3, 2, "decision 3 field for field as autoctl audit shows it"),
    ] {
        let mut record = retried_past_evictions();
        let (span, event) = decision_event(&record, seq);
        let pointer = format!("/summary/span_list/{span}/events/{event}/attributes/sis.decision.disposition");
        *at(&mut record, &pointer) = Value::from("acted-elsewhere");
        let verdicts = verdicts(record);
        assert!(verdicts[test].1.as_ref().unwrap_err().starts_with(reason), "{verdicts:?}");
    }
}
