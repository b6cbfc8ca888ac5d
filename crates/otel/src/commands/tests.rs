use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};

use super::*;

fn telemetry() -> CommandTelemetry {
    CommandTelemetry::new(5, 1_000, COMMAND_QUEUE).unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn export_all(telemetry: &mut CommandTelemetry, now_ns: u64) -> (Export, String) {
    let mut written = String::new();
    let export = telemetry
        .export(&Resource::new("sis-kernel"), &Scope::new("sis.shell", "0.1.0"), now_ns, |text| {
            written = String::from(text);
            Ok::<_, ()>(())
        })
        .unwrap();
    (export, written)
}

#[test]
fn each_command_is_one_root_span_with_its_path_outcome_and_times() {
    let mut telemetry = telemetry();
    telemetry.record("meminfo", 2_000, 7_000, CommandOutcome::Ok);
    telemetry.record("otelctl file", 8_000, 8_000, CommandOutcome::Failed("bad-path"));
    let (export, text) = export_all(&mut telemetry, 9_000);
    assert_eq!(export, Export { spans: 2, trace_lines: 1, metrics: 7, bytes: text.len() as u64 });
    let lines = lines(&text);
    assert_eq!(lines.len(), 2);
    let spans = &lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"];
    let mut ids = IdGenerator::new(5);
    let (first_trace, first_span) = (ids.trace_id(), ids.span_id());
    assert_eq!(
        spans[0],
        json!({
            "traceId": first_trace.to_string(), "spanId": first_span.to_string(), "name": "meminfo", "kind": 2,
            "startTimeUnixNano": "2000", "endTimeUnixNano": "7000",
            "attributes": [
                { "key": "sis.command.path", "value": { "stringValue": "meminfo" } },
                { "key": "sis.command.outcome", "value": { "stringValue": "ok" } }
            ],
            "status": { "code": 1 }
        })
    );
    assert_eq!(spans[1]["name"], "otelctl file");
    assert_eq!(
        spans[1]["attributes"][2],
        json!({ "key": "sis.command.error_code", "value": { "stringValue": "bad-path" } })
    );
    assert_eq!(spans[1]["status"], json!({ "code": 2, "message": "bad-path" }));
    assert_eq!(spans[1]["traceId"], ids.trace_id().to_string());
    // Exported once: the next export has no traces line, and the counters say so.
    assert_eq!(
        telemetry.queue_counters(),
        QueueCounters { enqueued: 2, exported: 2, batches: 1, ..Default::default() }
    );
    let (again, text) = export_all(&mut telemetry, 10_000);
    assert_eq!((again.spans, again.trace_lines, text.lines().count()), (0, 0, 1));
    assert_eq!(telemetry.exports(), 2);
}

#[test]
fn the_metrics_count_runs_by_path_and_outcome_and_bucket_the_latencies() {
    let mut telemetry = telemetry();
    for (path, duration, outcome) in [
        ("echo", 9_999, CommandOutcome::Ok),
        ("echo", 10_000, CommandOutcome::Ok),
        ("echo", 10_001, CommandOutcome::Failed("missing-argument")),
        ("stresstest memory", 20_000_000_000, CommandOutcome::Ok),
    ] {
        telemetry.record(path, 5_000, 5_000 + duration, outcome);
    }
    assert_eq!(telemetry.counts()["echo"], CommandCounts { ok: 2, failed: 1 });
    let (_, text) = export_all(&mut telemetry, 50_000);
    let lines = lines(&text);
    let metrics = &lines[1]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    let point = |path: &str, outcome: &str, value: &str| {
        json!({
            "attributes": [
                { "key": "sis.command.path", "value": { "stringValue": path } },
                { "key": "sis.command.outcome", "value": { "stringValue": outcome } }
            ],
            "startTimeUnixNano": "1000", "timeUnixNano": "50000", "asInt": value
        })
    };
    assert_eq!(metrics[0]["name"], "sis.shell.commands");
    assert_eq!(
        metrics[0]["sum"]["dataPoints"],
        json!([point("echo", "ok", "2"), point("echo", "failed", "1"), point("stresstest memory", "ok", "1")])
    );
    let latency = &metrics[1]["histogram"]["dataPoints"][0];
    assert_eq!(latency["count"], "4");
    assert_eq!(latency["bucketCounts"], json!(["2", "1", "0", "0", "0", "0", "0", "1"]));
    assert_eq!(latency["sum"], json!(20_000_030_000.0));
    assert_eq!((latency["min"].clone(), latency["max"].clone()), (json!(9_999.0), json!(20_000_000_000.0)));
    let names: Vec<&str> = metrics.as_array().unwrap().iter().map(|metric| metric["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sis.shell.commands",
            "sis.shell.command.duration",
            "sis.otel.spans.enqueued",
            "sis.otel.spans.exported",
            "sis.otel.spans.dropped",
            "sis.otel.spans.failed",
            "sis.otel.spans.held"
        ]
    );
    // The queue's figures in the metrics are those after this export.
    assert_eq!(metrics[3]["sum"]["dataPoints"][0]["asInt"], "4");
    assert_eq!(metrics[5]["sum"]["dataPoints"][0]["asInt"], "0");
    assert_eq!(metrics[6]["gauge"]["dataPoints"][0]["asInt"], "0");
}

#[test]
fn a_failed_write_changes_nothing_and_a_full_queue_counts_its_drops() {
    let mut telemetry = telemetry();
    for index in 0..300u64 {
        telemetry.record("echo", index, index + 1, CommandOutcome::Ok);
    }
    let before = telemetry.queue_counters();
    assert_eq!(before, QueueCounters { enqueued: 256, dropped_full: 44, held: 256, ..Default::default() });
    assert_eq!(telemetry.counts()["echo"].ok, 300);
    let refused = telemetry.export(&Resource::new("sis-kernel"), &Scope::new("s", ""), 400, |_| Err("no space"));
    assert_eq!(refused, Err("no space"));
    assert_eq!((telemetry.queue_counters(), telemetry.exports()), (before, 0));
    let (export, text) = export_all(&mut telemetry, 400);
    assert_eq!((export.spans, export.trace_lines), (256, 4));
    let lines = lines(&text);
    assert_eq!(lines.len(), 5);
    let spans_per_line: Vec<usize> = lines[..4]
        .iter()
        .map(|line| line["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().len())
        .collect();
    assert_eq!(spans_per_line, [64; 4]);
    let dropped = &lines[4]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][4];
    assert_eq!(
        (dropped["name"].as_str(), dropped["sum"]["dataPoints"][0]["asInt"].as_str()),
        (Some("sis.otel.spans.dropped"), Some("44"))
    );
}

#[test]
fn the_kernels_queue_configuration_is_valid() {
    assert!(ExportQueue::<Span>::new(COMMAND_QUEUE).is_ok());
    assert!(CommandTelemetry::new(1, 0, QueueConfig { max_batch: 0, ..COMMAND_QUEUE }).is_err());
}

#[test]
fn an_http_attempt_holds_its_batch_retries_on_schedule_and_drops_after_the_fourth_failure() {
    let (resource, scope) = (Resource::new("sis-kernel"), Scope::new("sis.shell", ""));
    let mut telemetry = telemetry();
    for index in 0..70u64 {
        telemetry.record("echo", index, index + 1, CommandOutcome::Ok);
    }
    assert_eq!(telemetry.finish_traces(100, Ok::<_, ()>(())), Err(NoAttempt));
    let TracesAttempt::Ready { body, spans } = telemetry.start_traces(&resource, &scope, 100) else { panic!() };
    assert_eq!(spans, 64);
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().len(), 64);
    assert_eq!(telemetry.start_traces(&resource, &scope, 100), TracesAttempt::Busy);
    // A command recorded while the attempt is open queues behind it.
    telemetry.record("echo", 200, 201, CommandOutcome::Ok);
    assert_eq!(telemetry.queue_counters().held, 71);
    assert_eq!(telemetry.finish_traces(300, Ok::<_, ()>(())), Ok(Poll::Exported { items: 64 }));
    // The next 7 fail four times: retries 0.5 s, 1 s and 2 s after each failure, then the batch is dropped.
    let mut now = 400;
    for (attempt, backoff) in [(1u32, 500_000_000u64), (2, 1_000_000_000), (3, 2_000_000_000)] {
        assert!(matches!(telemetry.start_traces(&resource, &scope, now), TracesAttempt::Ready { spans: 7, .. }));
        assert_eq!(
            telemetry.finish_traces(now, Err("refused")),
            Ok(Poll::Retrying { error: "refused", attempt, retry_at_ns: now + backoff })
        );
        assert_eq!(
            telemetry.start_traces(&resource, &scope, now + backoff - 1),
            TracesAttempt::Waiting { retry_at_ns: now + backoff }
        );
        now += backoff;
    }
    assert!(matches!(telemetry.start_traces(&resource, &scope, now), TracesAttempt::Ready { spans: 7, .. }));
    assert_eq!(telemetry.finish_traces(now, Err("refused")), Ok(Poll::Dropped { error: "refused", items: 7 }));
    assert_eq!(telemetry.start_traces(&resource, &scope, now), TracesAttempt::Idle);
    assert_eq!(
        telemetry.queue_counters(),
        QueueCounters {
            enqueued: 71,
            exported: 64,
            dropped_after_retries: 7,
            retries: 3,
            batches: 1,
            batches_dropped: 1,
            ..Default::default()
        }
    );
    let metrics = telemetry.metrics(now);
    assert_eq!(metrics[5].name, "sis.otel.spans.failed");
}
