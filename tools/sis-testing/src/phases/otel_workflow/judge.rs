//! The verdicts of the OpenTelemetry tests and the workflow, from a session's record alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::super::judge::{expect, number, ok};
use super::super::Verdict;
use super::{Recording, SETUP_LINES, WORKFLOW};

/// The span that carries a batch of decision traces as events.
const DECISIONS_SPAN: &str = "sis.autonomy.decisions";
/// OTLP span kind of a command's span (server: a request from the console).
const COMMAND_KIND: u64 = 2;
/// The candidate.
const AGENT: &str = "memory-agent@1.0.0";
/// The guardrail the canary's candidate meets.
const RULE: &str = "reclaim.max_per_window";
/// Indices in [`WORKFLOW`].
const SUITE: usize = 0;
const SHADOW_RUN: usize = 4;
const SHADOW_AUTONOMY: usize = 6;
const SHADOW_AUDIT: usize = 7;
const REPORT: usize = 8;
const CANARY_START: usize = 9;
const CANARY_RUN: usize = 13;
const CANARY_STATUS: usize = 15;
const CANARY_AUDIT: usize = 16;
const LIFECYCLE: usize = 17;
const GOVERNANCE_AUDIT: usize = 18;
const DECISIONS_FILE: usize = 19;

/// The four tests' verdicts.
pub fn judge(recording: &Recording) -> Vec<Verdict> {
    if recording.recorded.len() != SETUP_LINES + WORKFLOW.len() {
        let got = format!("{} lines recorded, expected {}", recording.recorded.len(), SETUP_LINES + WORKFLOW.len());
        return super::TESTS.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    vec![
        ("OTel traces", traces(recording)),
        ("OTel metrics", metrics(recording)),
        ("Decision-trace export", decisions(recording)),
        ("Complete AI Ops workflow", workflow(recording)),
    ]
}

fn list<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("{what} a list, got {value}"))
}

fn text<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    value[key].as_str().ok_or_else(|| format!("{key} a string, got {} in {value}", value[key]))
}

fn is_hex_id(id: &str, length: usize) -> bool {
    id.len() == length && id.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The spans received, each once, and how many arrived again. Export is at least once: a request the collector
/// accepted but whose answer the kernel did not get by the attempt's deadline is sent again (counted by the
/// kernel as a timeout). A command span sent again has its id and must equal the first copy. A decision batch is
/// read again from the OTLP cursor, which did not move, as a new span: maybe with more records, or, when the ring
/// overwrote traces while the retries went on, starting later with those counted as lost. So the batches the
/// kernel committed are the chain from cursor 0 in which each starts where the one before ended plus what it
/// reports lost (at each cursor the last read: the one starting latest, then the longest); any other batch is a copy the kernel never saw accepted, and each of
/// its records must equal the chain's record of that number, or be one the chain counts lost.
fn unique_spans(summary: &Value) -> Result<(Vec<&Value>, usize), String> {
    let mut unique: Vec<&Value> = Vec::new();
    let mut batches: Vec<&Value> = Vec::new();
    let mut repeats = 0;
    for span in list(&summary["span_list"], "span_list")? {
        if span["name"] == DECISIONS_SPAN {
            batches.push(span);
            continue;
        }
        match unique.iter().find(|seen| seen["span_id"] == span["span_id"]) {
            None => unique.push(span),
            Some(earlier) if *earlier == span => repeats += 1,
            Some(_) => return Err(format!("span {} twice with other content", span["span_id"])),
        }
    }
    let attribute = |span: &Value, key: &str| span["attributes"][key].as_u64();
    let mut chain: Vec<&Value> = Vec::new();
    let mut cursor = 0;
    loop {
        let next = batches
            .iter()
            .filter(|batch| {
                !chain.iter().any(|taken| std::ptr::eq(*taken, **batch))
                    && attribute(batch, "sis.records.first_seq")
                        == attribute(batch, "sis.records.evicted").map(|evicted| cursor + evicted)
            })
            // Read again at the same cursor, a later read starts later (the ring moved on) or holds more: the
            // kernel committed the last read, the others failed at its end.
            .max_by_key(|batch| {
                (attribute(batch, "sis.records.first_seq"), batch["events"].as_array().map_or(0, Vec::len))
            });
        // A gap (no batch continues the chain) is the trace-export test's to find: the chain goes on at the next
        // batch beyond it.
        let next = next.or_else(|| {
            batches
                .iter()
                .filter(|batch| {
                    !chain.iter().any(|taken| std::ptr::eq(*taken, **batch))
                        && attribute(batch, "sis.records.first_seq").is_some_and(|first| first >= cursor)
                })
                .min_by_key(|batch| {
                    let events = batch["events"].as_array().map_or(0, Vec::len);
                    (attribute(batch, "sis.records.first_seq"), usize::MAX - events)
                })
        });
        let Some(next) = next else { break };
        cursor = attribute(next, "sis.records.first_seq").unwrap_or(0) + list(&next["events"], "events")?.len() as u64;
        chain.push(next);
    }
    let mut records = BTreeMap::new();
    for batch in &chain {
        for event in list(&batch["events"], "events")? {
            records.insert(number(&event["attributes"], "sis.record.seq")?, event);
        }
    }
    for batch in batches.iter().filter(|batch| !chain.iter().any(|taken| std::ptr::eq(*taken, **batch))) {
        for event in list(&batch["events"], "events")? {
            let seq = number(&event["attributes"], "sis.record.seq")?;
            match records.get(&seq) {
                Some(committed) if event["attributes"] == committed["attributes"] => {}
                None if seq < cursor => {}
                _ => return Err(format!("decision {seq} sent again with other content, in {}", batch["attributes"])),
            }
        }
        repeats += 1;
    }
    unique.extend(chain);
    Ok((unique, repeats))
}

/// The records of decision batches the kernel never saw accepted (see [`unique_spans`]): number to attributes.
fn uncommitted_records(summary: &Value) -> Result<BTreeMap<u64, &Value>, String> {
    let (unique, _) = unique_spans(summary)?;
    let mut records = BTreeMap::new();
    for batch in list(&summary["span_list"], "span_list")? {
        if batch["name"] != DECISIONS_SPAN || unique.iter().any(|kept| std::ptr::eq(*kept, batch)) {
            continue;
        }
        for event in list(&batch["events"], "events")? {
            records.insert(number(&event["attributes"], "sis.record.seq")?, &event["attributes"]);
        }
    }
    Ok(records)
}

/// Every request parsed (none rejected, none refused, no error).
fn all_parsed(summary: &Value) -> Result<(), String> {
    if summary["rejected"] != 0 || summary["refused"] != 0 || summary["errors"] != Value::Array(Vec::new()) {
        return Err(format!(
            "every payload parses with the official definitions, got {} rejected, {} refused, errors {}",
            summary["rejected"], summary["refused"], summary["errors"]
        ));
    }
    Ok(())
}

/// Every payload parsed; every id has its length in lowercase hex; every parent was received, in the same trace,
/// and holds its children's times; no span twice; the spans are exactly those the kernel's queue exported (none
/// dropped, none held) plus one per decision batch, and the commands' spans are the commands the kernel counted.
fn traces(recording: &Recording) -> Result<(), String> {
    let summary = &recording.summary;
    all_parsed(summary)?;
    let (spans, repeats) = unique_spans(summary)?;
    let mut by_id = BTreeMap::new();
    for span in &spans {
        let (trace_id, span_id, parent) =
            (text(span, "trace_id")?, text(span, "span_id")?, text(span, "parent_span_id")?);
        if !is_hex_id(trace_id, 32) || !is_hex_id(span_id, 16) || !(parent.is_empty() || is_hex_id(parent, 16)) {
            return Err(format!("ids of 32 and 16 lowercase hex characters, got {trace_id} {span_id} {parent:?}"));
        }
        if by_id.insert(span_id, span).is_some() {
            return Err(format!("span {span_id} received twice"));
        }
    }
    let mut children = 0;
    for span in &spans {
        let parent_id = text(span, "parent_span_id")?;
        if parent_id.is_empty() {
            continue;
        }
        let parent = by_id.get(parent_id).ok_or_else(|| format!("the parent of {} was received", span["span_id"]))?;
        let (start, end) = (number(span, "start_time_unix_nano")?, number(span, "end_time_unix_nano")?);
        let (parent_start, parent_end) =
            (number(parent, "start_time_unix_nano")?, number(parent, "end_time_unix_nano")?);
        if parent["trace_id"] != span["trace_id"] || start < parent_start || end > parent_end || end < start {
            return Err(format!(
                "{} ({start}..{end}) within its parent {} ({parent_start}..{parent_end}) in its trace",
                span["name"], parent["name"]
            ));
        }
        children += 1;
    }
    if children == 0 {
        return Err(String::from("child spans to nest (the suite's parts), got none"));
    }
    if summary["orphans"] != Value::Array(Vec::new()) || summary["unnested"] != Value::Array(Vec::new()) {
        return Err(format!("the collector found orphans {} and unnested {}", summary["orphans"], summary["unnested"]));
    }
    let export = &status_export(recording, "traces");
    if repeats > 0 && number(&export["attempts"], "timeouts")? == 0 {
        return Err(format!("{repeats} spans arrived twice, with no attempt timed out to explain them"));
    }
    let status = &recording.otel_status;
    let queue = &status["spans"];
    let batches = spans.iter().filter(|span| span["name"] == DECISIONS_SPAN).count() as u64;
    let queued = spans.len() as u64 - batches;
    expect(queue, "enqueued", queued)?;
    expect(queue, "exported", queued)?;
    for key in ["dropped_full", "dropped_after_retries", "held"] {
        expect(queue, key, 0)?;
    }
    expect(export, "items_sent", spans.len() as u64)?;
    expect(&recording.decisions_status["otlp"], "batches", batches)?;
    let commands = spans.iter().filter(|span| span["kind"] == COMMAND_KIND).count() as u64;
    let counted: u64 = status["commands"]
        .as_object()
        .ok_or_else(|| format!("commands an object, got {}", status["commands"]))?
        .values()
        .map(|count| count["ok"].as_u64().unwrap_or(0) + count["failed"].as_u64().unwrap_or(0))
        .sum();
    if commands != counted {
        return Err(format!("{counted} command spans, as the kernel counted commands, got {commands}"));
    }
    Ok(())
}

/// The final status of the export of `signal`.
fn status_export<'a>(recording: &'a Recording, signal: &str) -> &'a Value {
    &recording.otel_status["stopped"][signal]
}

/// The last metric named `name` the collector received.
fn last_metric<'a>(summary: &'a Value, name: &str) -> Result<&'a Value, String> {
    list(&summary["metrics"], "metrics")?
        .iter()
        .rev()
        .find(|metric| metric["name"] == name)
        .ok_or_else(|| format!("a metric {name} at the collector"))
}

/// The points of the last `sis.shell.commands`: (path, outcome) to count, zeros left out.
fn command_counts(summary: &Value) -> Result<BTreeMap<(String, String), u64>, String> {
    let metric = last_metric(summary, "sis.shell.commands")?;
    let mut counts = BTreeMap::new();
    for point in list(&metric["points"], "points")? {
        let attributes = &point["attributes"];
        let key =
            (text(attributes, "sis.command.path")?.to_string(), text(attributes, "sis.command.outcome")?.to_string());
        let value = number(point, "value")?;
        if value > 0 {
            counts.insert(key, value);
        }
    }
    Ok(counts)
}

/// Every snapshot parsed and was counted as sent; the last one's command counts, command-latency count, spans
/// enqueued and decision-time histogram equal the kernel's own figures read after it.
fn metrics(recording: &Recording) -> Result<(), String> {
    let (summary, status) = (&recording.summary, &recording.otel_status);
    all_parsed(summary)?;
    // A snapshot sent again after a timeout arrives twice; every other one once.
    let export = status_export(recording, "metrics");
    let requests = number(&summary["requests"], "metrics")?;
    let (sent, timeouts) = (number(export, "items_sent")?, number(&export["attempts"], "timeouts")?);
    if requests < sent || requests > sent + timeouts {
        return Err(format!("{sent} snapshots (and at most {timeouts} repeats) at the collector, got {requests}"));
    }
    let mut kernel = BTreeMap::new();
    for (path, count) in status["commands"].as_object().ok_or("commands an object")? {
        for outcome in ["ok", "failed"] {
            let value = count[outcome].as_u64().unwrap_or(0);
            if value > 0 {
                kernel.insert((path.clone(), outcome.to_string()), value);
            }
        }
    }
    let exported = command_counts(summary)?;
    if exported != kernel {
        return Err(format!("sis.shell.commands {kernel:?} as otelctl status counts, got {exported:?}"));
    }
    let total: u64 = kernel.values().sum();
    let durations = &last_metric(summary, "sis.shell.command.duration")?["points"][0];
    expect(durations, "count", total).map_err(|error| format!("sis.shell.command.duration {error}"))?;
    let enqueued = &last_metric(summary, "sis.otel.spans.enqueued")?["points"][0];
    expect(enqueued, "value", number(&status["spans"], "enqueued")?)
        .map_err(|error| format!("sis.otel.spans.enqueued {error}"))?;
    let cost = &recording.autonomy["decision_cost"];
    let decided = &last_metric(summary, "sis.autonomy.decision.duration")?["points"][0];
    let count = number(cost, "count")?;
    if count == 0 {
        return Err(String::from("meta-agent decisions to time, got none"));
    }
    expect(decided, "count", count).map_err(|error| format!("sis.autonomy.decision.duration {error}"))?;
    let buckets: u64 = list(&decided["bucket_counts"], "bucket_counts")?.iter().filter_map(Value::as_u64).sum();
    if buckets != count
        || decided["min"].as_f64() != cost["min_ns"].as_f64()
        || decided["max"].as_f64() != cost["max_ns"].as_f64()
    {
        return Err(format!("the decision-time histogram {decided} against autoctl status's {cost}"));
    }
    Ok(())
}

/// A decision event: its seq and the trace's attributes.
struct Event<'a> {
    seq: u64,
    time_ns: u64,
    attributes: &'a Value,
}

/// The decision events at the collector, batch by batch in cursor order: each batch starts where the one before
/// ended plus the traces it reports lost, and its events' seqs run on from there; returns the events and the
/// traces lost.
fn decision_events(summary: &Value) -> Result<(Vec<Event<'_>>, u64), String> {
    let mut batches: Vec<&Value> =
        unique_spans(summary)?.0.into_iter().filter(|span| span["name"] == DECISIONS_SPAN).collect();
    batches.sort_by_key(|span| span["attributes"]["sis.records.first_seq"].as_u64());
    let (mut cursor, mut lost, mut events) = (0, 0, Vec::new());
    for batch in batches {
        let attributes = &batch["attributes"];
        let (first, count, evicted) = (
            number(attributes, "sis.records.first_seq")?,
            number(attributes, "sis.records.count")?,
            number(attributes, "sis.records.evicted")?,
        );
        if first != cursor + evicted {
            return Err(format!("a batch at {} (cursor {cursor} + {evicted} lost), got {first}", cursor + evicted));
        }
        let batch_events = list(&batch["events"], "events")?;
        if batch_events.len() as u64 != count {
            return Err(format!("{count} events in the batch at {first}, got {}", batch_events.len()));
        }
        let (start, end) = (number(batch, "start_time_unix_nano")?, number(batch, "end_time_unix_nano")?);
        for (offset, event) in batch_events.iter().enumerate() {
            let seq = number(&event["attributes"], "sis.record.seq")?;
            let time_ns = number(event, "time_unix_nano")?;
            if seq != first + offset as u64 || event["name"] != "decision" || time_ns < start || time_ns > end {
                return Err(format!("decision {} within its batch, got {event}", first + offset as u64));
            }
            events.push(Event { seq, time_ns, attributes: &event["attributes"] });
        }
        (cursor, lost) = (first + count, lost + evicted);
    }
    Ok((events, lost))
}

/// `value` as OTLP attributes under `key`, the way the export documents it (docs/otel.md): an object's fields
/// as `key.field`, arrays as their JSON text, integers beyond `i64` as text, nulls left out.
fn flatten(key: &str, value: &Value, into: &mut serde_json::Map<String, Value>) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            for (field, inner) in fields {
                flatten(&format!("{key}.{field}"), inner, into);
            }
        }
        Value::Array(_) => {
            into.insert(key.to_string(), Value::String(value.to_string()));
        }
        Value::Number(number) if number.is_u64() && number.as_i64().is_none() => {
            into.insert(key.to_string(), Value::String(number.to_string()));
        }
        other => {
            into.insert(key.to_string(), other.clone());
        }
    }
}

/// The exported attributes of decision `id` are `trace` as `autoctl audit` shows it, field for field (flattened,
/// `seq` added): the kernel exports a trace only once its outcome is final, so no field may be older than the audit.
fn same_trace(id: u64, attributes: &Value, trace: &Value) -> Result<(), String> {
    let mut expected = serde_json::Map::new();
    flatten("sis.decision", trace, &mut expected);
    expected.insert(String::from("sis.decision.seq"), Value::from(id));
    expected.insert(String::from("sis.record.seq"), Value::from(id));
    if attributes.as_object() != Some(&expected) {
        return Err(format!(
            "decision {id} field for field as autoctl audit shows it, {}, got {attributes}",
            Value::Object(expected)
        ));
    }
    Ok(())
}

/// The decision traces that arrived as span events run consecutively from 0, none twice, none skipped but those
/// counted lost, up to the kernel's last; the OTLP cursor counts exactly that; each trace `autoctl audit` showed is
/// the event of its number, field for field; the file cursor wrote the same range.
fn decisions(recording: &Recording) -> Result<(), String> {
    let (events, lost) = decision_events(&recording.summary)?;
    let status = &recording.decisions_status;
    let next = number(status, "next_id")?;
    if events.len() as u64 + lost != next {
        return Err(format!("{next} decisions arrived or counted lost, got {} and {lost}", events.len()));
    }
    let otlp = &status["otlp"];
    expect(otlp, "cursor", next)?;
    expect(otlp, "exported", events.len() as u64)?;
    expect(otlp, "evicted", lost)?;
    let mut seen = BTreeSet::new();
    let arrived: BTreeSet<u64> = events.iter().map(|event| event.seq).collect();
    let lost_seqs: BTreeSet<u64> = (0..next).filter(|seq| !arrived.contains(seq)).collect();
    let uncommitted = uncommitted_records(&recording.summary)?;
    for audit in [SHADOW_AUDIT, CANARY_AUDIT] {
        let traces = list(&ok(recording.workflow(audit))?["traces"], "traces")?;
        if traces.is_empty() {
            return Err(format!("autoctl audit after run {audit} shows traces, got none"));
        }
        for trace in traces {
            // One meta-agent all along: a trace's export number is its id.
            let id = number(trace, "id")?;
            // Counted lost by the kernel, a trace may still have reached the collector in a copy the kernel never
            // saw accepted, or not at all.
            let attributes = match events.iter().find(|event| event.seq == id) {
                Some(event) if event.time_ns == number(trace, "at_ns")? => Some(event.attributes),
                Some(event) => {
                    return Err(format!("decision {id} at its time {}, got {}", trace["at_ns"], event.time_ns))
                }
                None if lost_seqs.contains(&id) => uncommitted.get(&id).copied(),
                None => return Err(format!("decision {id} of autoctl audit at the collector")),
            };
            if let Some(attributes) = attributes {
                same_trace(id, attributes, trace)?;
            }
            seen.insert(id);
        }
    }
    if seen.last().map(|id| id + 1) != Some(next) {
        return Err(format!(
            "the last audited decision is the kernel's last ({next} decisions), got {:?}",
            seen.last()
        ));
    }
    let file = ok(recording.workflow(DECISIONS_FILE))?;
    expect(file, "first_id", number(file, "evicted")?)?;
    expect(file, "next_cursor", next)?;
    if number(file, "first_id")? + number(file, "count")? != next {
        return Err(format!("the file holds the traces up to {next}, got {file}"));
    }
    Ok(())
}

/// The workflow's steps did what the seed asks, and the collector holds the workflow as the kernel ran it: a
/// command span per line in order with its outcome, the two memory runs, the candidate's canary decisions with the
/// one its guardrail blocked, and command counts equal to the lines run.
fn workflow(recording: &Recording) -> Result<(), String> {
    for (index, exchange) in recording.recorded.iter().enumerate() {
        if [SUITE, SHADOW_RUN, CANARY_RUN].iter().any(|run| index == SETUP_LINES + run) {
            // A stress run whose status is Fail or Critical is still a run (`stress-failed`, docs/otel.md): the
            // workflow needs its decisions, not its verdict.
            if exchange.reply["ok"] != true && exchange.reply["error"]["code"] != "stress-failed" {
                return Err(format!("{} ran, got {}", exchange.line, exchange.reply));
            }
        } else {
            ok(&exchange.reply)?;
        }
    }
    let report = recording.workflow(REPORT);
    if report["subject"] != AGENT || report["passed"] != true {
        return Err(format!("a passing shadow report of {AGENT}, got {report}"));
    }
    expect(report, "compared", number(recording.workflow(SHADOW_AUTONOMY), "intervals")?)?;
    let started = &recording.workflow(CANARY_START)["transitions"][0];
    if started["from"] != "shadow" || started["to"] != "canary" || started["subject"] != AGENT {
        return Err(format!("{AGENT} from shadow to canary, got {started}"));
    }
    let canary = recording.workflow(CANARY_STATUS);
    let rollback = &canary["rollback"];
    if rollback["reason"] != "guardrail-block" || rollback["rule"] != RULE || canary["active"] != false {
        return Err(format!("the canary rolled back by {RULE}, got {canary}"));
    }
    let logged = format!("canary {AGENT} rolled back automatically: guardrail-block");
    if recording.recorded[SETUP_LINES + CANARY_RUN].log != [logged.clone()] {
        return Err(format!(
            "the canary run logs {logged:?}, got {:?}",
            recording.recorded[SETUP_LINES + CANARY_RUN].log
        ));
    }
    expect(recording.workflow(LIFECYCLE), "canary_rollbacks", 1)?;
    let audited = list(&recording.workflow(GOVERNANCE_AUDIT)["entries"], "entries")?
        .iter()
        .any(|entry| entry["action"] == "canary-rollback" && entry["principal"] == "agent:0");
    if !audited {
        return Err(String::from("the rollback audited under agent:0"));
    }

    // At the collector: one command span per line, in order, with its outcome.
    let (spans, _) = unique_spans(&recording.summary)?;
    let mut commands: Vec<&Value> = spans.iter().copied().filter(|span| span["kind"] == COMMAND_KIND).collect();
    commands.sort_by_key(|span| span["start_time_unix_nano"].as_u64());
    let expected: Vec<(&Value, &str)> = recording
        .recorded
        .iter()
        .map(|exchange| (&exchange.reply["command"], if exchange.reply["ok"] == true { "ok" } else { "failed" }))
        .collect();
    let got: Vec<(&Value, &str)> = commands
        .iter()
        .map(|span| (&span["name"], span["attributes"]["sis.command.outcome"].as_str().unwrap_or("?")))
        .collect();
    if got != expected {
        return Err(format!("command spans {expected:?}, got {got:?}"));
    }
    let seeds: Vec<&Value> = spans
        .iter()
        .filter(|span| span["name"] == "stress.memory")
        .map(|span| &span["attributes"]["sis.stress.seed"])
        .collect();
    if seeds != [&Value::from("7"), &Value::from("7")] {
        return Err(format!("the two memory runs' spans with seed 7, got {seeds:?}"));
    }

    // The canary's decisions at the collector: the candidate's, up to the blocked one.
    // (The sequence of the events is the trace-export test's: here only what they say.)
    let mut events = BTreeMap::new();
    for span in spans.iter().filter(|span| span["name"] == DECISIONS_SPAN) {
        for event in list(&span["events"], "events")? {
            events.insert(number(&event["attributes"], "sis.record.seq")?, &event["attributes"]);
        }
    }
    let blocked = number(rollback, "decision")?;
    let event = events.get(&blocked).ok_or_else(|| format!("the blocked decision {blocked} at the collector"))?;
    let attribute = |key: &str| &event[format!("sis.decision.{key}")];
    if attribute("policy") != "learned" || attribute("disposition") != "blocked" || attribute("blocked_by") != RULE {
        return Err(format!("decision {blocked} the candidate's, blocked by {RULE}, got {event}"));
    }
    let learned = events.values().filter(|event| event["sis.decision.policy"] == "learned").count() as u64;
    expect(canary, "candidate_intervals", learned)?;

    // The exported command counts are the lines the workflow ran.
    let mut lines: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (name, outcome) in &expected {
        let name = name.as_str().ok_or("a command name")?;
        *lines.entry((name.to_string(), outcome.to_string())).or_default() += 1;
    }
    let exported = command_counts(&recording.summary)?;
    if exported != lines {
        return Err(format!("sis.shell.commands {lines:?}, the lines run, got {exported:?}"));
    }
    Ok(())
}
