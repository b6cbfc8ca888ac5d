//! sis-otel's OTLP/JSON against the official schema, before any kernel exports it: a generated trace tree and
//! metric set are encoded by the crate, sent through its export queue to the host collector (which parses them
//! with the official `opentelemetry-proto` definitions), and everything the collector read back must equal what
//! was generated; the queue's counters must equal the collector's. The collector's own checks are shown to fail
//! on payloads that are not OTLP/JSON. Host only (no QEMU), but needs the collector's Python environment that
//! `cargo xtask setup` makes, so it runs with the QEMU tests.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sis_hal::SeededRandom;
use sis_otel::{
    encode_metrics, encode_traces, AnyValue, ExportQueue, HistogramPoint, IdGenerator, KeyValue, Metric, NumberPoint,
    NumberValue, OpenSpan, Poll, QueueConfig, QueueCounters, Resource, Scope, Span, SpanEvent, SpanKind, Status,
};
use sis_testing::otel::{check_lines, Collector, CollectorOptions};
use sis_testing::web::Request;

/// 2023-11-14T22:13:20Z: the generated telemetry's clock starts here.
const EPOCH_NS: u64 = 1_700_000_000_000_000_000;

fn resource() -> Resource {
    Resource::new("sis-kernel").with(KeyValue::string("service.version", "0.1.0"))
}

fn scope() -> Scope {
    Scope::new("sis.test", "0.1.0")
}

/// `traces` trees of random shape (up to depth 3, up to 4 children a span), each child's time within its
/// parent's, with attributes of every kind, events, and every status; returned children first, as a tracer
/// ends them.
fn generated_spans(seed: u64, traces: usize) -> Vec<Span> {
    let mut ids = IdGenerator::new(seed);
    let mut random = SeededRandom::new(seed);
    let mut spans = Vec::new();
    for trace in 0..traces as u64 {
        let start = EPOCH_NS + trace * 10_000_000_000;
        let root = OpenSpan::root(&mut ids, &format!("trace-{trace}"), SpanKind::Internal, start);
        let end = start + random.range(1_000_000, 5_000_000_000);
        grow(root, end, 0, &mut ids, &mut random, &mut spans);
    }
    spans
}

fn grow(
    mut span: OpenSpan,
    end: u64,
    depth: i64,
    ids: &mut IdGenerator,
    random: &mut SeededRandom,
    spans: &mut Vec<Span>,
) {
    let start = span.start_time_unix_nano();
    let children = if depth < 3 { random.below(5) } else { 0 };
    for child_number in 0..children {
        let child_start = random.range(start, end);
        let child_end = random.range(child_start, end);
        let name = format!("depth-{}-child-{child_number}", depth + 1);
        let child = span.child(ids, &name, SpanKind::Internal, child_start).unwrap();
        grow(child, child_end, depth + 1, ids, random, spans);
    }
    span.set_attribute(KeyValue::string("sis.command.path", "stresstest memory"));
    span.set_attribute(KeyValue::int("sis.depth", depth));
    span.set_attribute(KeyValue::int("sis.children", children as i64 - 2));
    span.set_attribute(KeyValue::double("sis.share", random.below(1_000) as f64 / 8.0));
    span.set_attribute(KeyValue::bool("sis.leaf", children == 0));
    if random.chance_percent(30) {
        let time = random.range(start, end);
        span.add_event(SpanEvent {
            name: "oom".into(),
            time_unix_nano: time,
            attributes: vec![KeyValue::int("sis.pages", random.below(1 << 40) as i64)],
        });
    }
    span.set_status(match random.below(3) {
        0 => Status::Unset,
        1 => Status::Ok,
        _ => Status::Error(format!("exit status {}", random.range(1, 5))),
    });
    spans.push(span.end(end).unwrap());
}

fn attribute_json(attributes: &[KeyValue]) -> Value {
    let map: serde_json::Map<String, Value> = attributes
        .iter()
        .map(|attribute| {
            let value = match &attribute.value {
                AnyValue::String(text) => json!(text),
                AnyValue::Int(value) => json!(value),
                AnyValue::Double(value) => json!(value),
                AnyValue::Bool(value) => json!(value),
            };
            (attribute.key.clone(), value)
        })
        .collect();
    Value::Object(map)
}

/// A span as the collector's summary lists it.
fn span_json(span: &Span) -> Value {
    let (status_code, status_message) = match &span.status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error(message) => (2, message.as_str()),
    };
    json!({
        "trace_id": span.trace_id.to_string(),
        "span_id": span.span_id.to_string(),
        "parent_span_id": span.parent_span_id.map(|id| id.to_string()).unwrap_or_default(),
        "name": span.name,
        "kind": span.kind.code(),
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status_code": status_code,
        "status_message": status_message,
        "attributes": attribute_json(&span.attributes),
        "events": span.events.iter().map(|event| json!({
            "name": event.name, "time_unix_nano": event.time_unix_nano, "attributes": attribute_json(&event.attributes)
        })).collect::<Vec<_>>(),
        "scope": "sis.test",
    })
}

/// Sends every span through `queue` to `collector`, polling on a clock that jumps to each retry; returns what
/// each poll did.
fn drain(queue: &mut ExportQueue<Span>, collector: &Collector) -> Vec<Poll<u16>> {
    let mut now = 0;
    let mut polls = Vec::new();
    loop {
        let poll = queue.poll(now, |batch: &[Span]| {
            let body = encode_traces(&resource(), &scope(), batch).unwrap();
            let reply = collector.post("/v1/traces", &body).unwrap();
            if reply.status == 200 {
                assert_eq!(reply.body, "{}");
                Ok(())
            } else {
                Err(reply.status)
            }
        });
        match poll {
            Poll::Idle => return polls,
            Poll::Waiting { retry_at_ns } | Poll::Retrying { retry_at_ns, .. } => now = retry_at_ns,
            Poll::Exported { .. } | Poll::Dropped { .. } => {}
        }
        polls.push(poll);
    }
}

const QUEUE: QueueConfig =
    QueueConfig { max_batch: 16, max_queued: 256, max_attempts: 3, initial_backoff_ns: 1_000, max_backoff_ns: 4_000 };

#[test]
#[ignore = "needs the collector's Python environment from cargo xtask setup; run by cargo xtask test"]
fn the_official_schema_reads_back_exactly_the_generated_trace_trees() {
    let spans = generated_spans(42, 4);
    assert!(spans.len() >= 20, "seed 42 grows {} spans", spans.len());
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let mut queue = ExportQueue::new(QUEUE).unwrap();
    for span in &spans {
        queue.enqueue(span.clone()).unwrap();
    }
    drain(&mut queue, &collector);
    let batches = spans.len().div_ceil(QUEUE.max_batch) as u64;
    let counters = queue.counters();
    let exported = spans.len() as u64;
    assert_eq!(counters, QueueCounters { enqueued: exported, exported, batches, ..QueueCounters::default() });
    let summary = collector.summary().unwrap();
    assert_eq!(summary["errors"], json!([]));
    assert_eq!(summary["requests"], json!({ "traces": batches, "metrics": 0 }));
    assert_eq!((summary["refused"].as_u64(), summary["rejected"].as_u64()), (Some(0), Some(0)));
    assert_eq!(summary["spans"], exported);
    assert_eq!(summary["traces"], 4);
    assert_eq!(summary["roots"], 4);
    assert_eq!(summary["orphans"], json!([]));
    assert_eq!(summary["unnested"], json!([]));
    assert_eq!(summary["duplicate_span_ids"], json!([]));
    assert_eq!(summary["service_names"], json!(["sis-kernel"]));
    let mut names = BTreeMap::new();
    for span in &spans {
        *names.entry(span.name.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(summary["span_names"], json!(names));
    // Every field the official parser read equals the generated span's.
    let received: BTreeMap<&str, &Value> =
        summary["span_list"].as_array().unwrap().iter().map(|span| (span["span_id"].as_str().unwrap(), span)).collect();
    for span in &spans {
        assert_eq!(received[span.span_id.to_string().as_str()], &span_json(span), "{}", span.name);
    }
}

#[test]
#[ignore = "needs the collector's Python environment from cargo xtask setup; run by cargo xtask test"]
fn the_official_schema_reads_back_exactly_the_generated_metrics() {
    let start = EPOCH_NS;
    let now = EPOCH_NS + 60_000_000_000;
    let mut random = SeededRandom::new(9);
    let mut memory = NumberPoint::new(start, now, NumberValue::Int(1_234));
    memory.attributes.push(KeyValue::string("sis.command", "meminfo"));
    let mut stress = NumberPoint::new(start, now, NumberValue::Int(i64::MAX));
    stress.attributes.push(KeyValue::string("sis.command", "stresstest"));
    let counter = Metric::counter("sis.shell.commands", "Commands run", "{command}", vec![memory, stress]);
    let pressure = Metric::gauge(
        "sis.memory.pressure",
        "Heap in use",
        "1",
        vec![NumberPoint::new(0, now, NumberValue::Double(0.625))],
    );
    let threads = Metric::gauge("sis.threads", "", "{thread}", vec![NumberPoint::new(0, now, NumberValue::Int(-3))]);
    let latencies: Vec<f64> = (0..500).map(|_| random.log_uniform(100, 10_000_000) as f64).collect();
    let bounds = vec![1e3, 1e4, 1e5, 1e6];
    let point = HistogramPoint::from_values(start, now, bounds.clone(), &latencies).unwrap();
    let expected_histogram = (point.count(), point.bucket_counts().to_vec(), point.sum, point.min, point.max);
    let latency = Metric::histogram("sis.shell.latency", "Command latency", "ns", vec![point]);
    let body = encode_metrics(&resource(), &scope(), &[counter, pressure, threads, latency]).unwrap();
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let reply = collector.post("/v1/metrics", &body).unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
    let summary = collector.summary().unwrap();
    assert_eq!(summary["requests"], json!({ "traces": 0, "metrics": 1 }));
    assert_eq!(summary["errors"], json!([]));
    let (count, buckets, sum, min, max) = expected_histogram;
    assert_eq!(count, 500);
    assert_eq!(
        summary["metrics"],
        json!([
            { "name": "sis.shell.commands", "unit": "{command}", "type": "sum", "scope": "sis.test",
              "temporality": 2, "monotonic": true, "points": [
                { "attributes": { "sis.command": "meminfo" }, "start_time_unix_nano": start,
                  "time_unix_nano": now, "value": 1_234 },
                { "attributes": { "sis.command": "stresstest" }, "start_time_unix_nano": start,
                  "time_unix_nano": now, "value": i64::MAX } ] },
            { "name": "sis.memory.pressure", "unit": "1", "type": "gauge", "scope": "sis.test", "points": [
                { "attributes": {}, "start_time_unix_nano": 0, "time_unix_nano": now, "value": 0.625 } ] },
            { "name": "sis.threads", "unit": "{thread}", "type": "gauge", "scope": "sis.test", "points": [
                { "attributes": {}, "start_time_unix_nano": 0, "time_unix_nano": now, "value": -3 } ] },
            { "name": "sis.shell.latency", "unit": "ns", "type": "histogram", "scope": "sis.test",
              "temporality": 2, "points": [
                { "attributes": {}, "start_time_unix_nano": start, "time_unix_nano": now,
                  "count": count, "bucket_counts": buckets, "explicit_bounds": bounds,
                  "sum": sum, "min": min, "max": max } ] },
        ])
    );
}

#[test]
#[ignore = "needs the collector's Python environment from cargo xtask setup; run by cargo xtask test"]
fn a_failing_collector_makes_the_queue_retry_then_drop_and_both_count_the_same() {
    let spans = generated_spans(7, 3);
    assert!(spans.len() > 20, "seed 7 grows {} spans", spans.len());
    // Two refusals: the first batch is sent three times, after 1 µs and then 2 µs of backoff.
    let collector = Collector::start(CollectorOptions { fail_first: 2, fail_status: 503 }).unwrap();
    let mut queue = ExportQueue::new(QUEUE).unwrap();
    spans.iter().for_each(|span| queue.enqueue(span.clone()).unwrap());
    let polls = drain(&mut queue, &collector);
    assert_eq!(
        polls[..3],
        [
            Poll::Retrying { error: 503, attempt: 1, retry_at_ns: 1_000 },
            Poll::Retrying { error: 503, attempt: 2, retry_at_ns: 3_000 },
            Poll::Exported { items: QUEUE.max_batch },
        ]
    );
    let counters = queue.counters();
    let batches = spans.len().div_ceil(QUEUE.max_batch) as u64;
    assert_eq!(
        counters,
        QueueCounters {
            enqueued: spans.len() as u64,
            exported: spans.len() as u64,
            retries: 2,
            batches,
            ..QueueCounters::default()
        }
    );
    let summary = collector.summary().unwrap();
    assert_eq!(summary["refused"], counters.retries);
    assert_eq!(summary["requests"]["traces"], counters.batches);
    assert_eq!(summary["spans"], counters.exported);
    assert_eq!(summary["orphans"], json!([]));
    drop(collector);

    // A collector that never accepts: each batch is tried three times and dropped, counted; a full queue drops
    // what does not fit, counted too; nothing blocks.
    let down = Collector::start(CollectorOptions { fail_first: 1_000, fail_status: 500 }).unwrap();
    let config = QueueConfig { max_queued: 20, ..QUEUE };
    let mut queue = ExportQueue::new(config).unwrap();
    let refused = spans.iter().filter(|span| queue.enqueue((*span).clone()).is_err()).count() as u64;
    assert_eq!(refused, spans.len() as u64 - 20);
    let polls = drain(&mut queue, &down);
    assert_eq!(polls.iter().filter(|poll| matches!(poll, Poll::Dropped { error: 500, .. })).count(), 2);
    assert_eq!(
        queue.counters(),
        QueueCounters {
            enqueued: 20,
            dropped_full: refused,
            dropped_after_retries: 20,
            retries: 4,
            batches_dropped: 2,
            ..QueueCounters::default()
        }
    );
    let summary = down.summary().unwrap();
    assert_eq!(summary["refused"], 6);
    assert_eq!(summary["requests"]["traces"], 0);
    assert_eq!(summary["spans"], 0);
}

/// A valid one-span request, as a JSON value to spoil.
fn one_span_request() -> Value {
    let mut ids = IdGenerator::new(5);
    let span = OpenSpan::root(&mut ids, "ok", SpanKind::Internal, EPOCH_NS).end(EPOCH_NS + 5).unwrap();
    serde_json::from_str(&encode_traces(&resource(), &scope(), &[span]).unwrap()).unwrap()
}

#[test]
#[ignore = "needs the collector's Python environment from cargo xtask setup; run by cargo xtask test"]
fn the_collector_refuses_what_is_not_otlp_json_and_finds_orphans_and_unnested_spans() {
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let span = "/resourceSpans/0/scopeSpans/0/spans/0";
    let spoiled = |pointer: &str, value: Value| {
        let mut request = one_span_request();
        *request.pointer_mut(pointer).unwrap() = value;
        request.to_string()
    };
    let base64_id = spoiled(&format!("{span}/traceId"), json!("W47/95gDgQPSabYzgT/GDA=="));
    let uppercase_id = spoiled(&format!("{span}/spanId"), json!("EEE19B7EC3C1B174"));
    let zero_id = spoiled(&format!("{span}/spanId"), json!("0000000000000000"));
    let number_time = spoiled(&format!("{span}/startTimeUnixNano"), json!(EPOCH_NS));
    let enum_name = spoiled(&format!("{span}/kind"), json!("SPAN_KIND_INTERNAL"));
    let snake_case = one_span_request().to_string().replace("\"startTimeUnixNano\"", "\"start_time_unix_nano\"");
    let unknown = spoiled(&format!("{span}/name"), json!({ "text": "x" }));
    let histogram = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"count":"3","bucketCounts":["1","1"],"explicitBounds":[1.0]}],"aggregationTemporality":2}}]}]}]}"#;
    let cases = [
        ("/v1/traces", base64_id.as_str(), "traceId must be 32 lowercase hex characters"),
        ("/v1/traces", uppercase_id.as_str(), "spanId must be 16 lowercase hex characters"),
        ("/v1/traces", zero_id.as_str(), "an all-zero spanId is invalid"),
        ("/v1/traces", number_time.as_str(), "a 64-bit integer is a decimal string"),
        ("/v1/traces", enum_name.as_str(), "an enum is its integer"),
        ("/v1/traces", snake_case.as_str(), "field names are lowerCamelCase"),
        ("/v1/traces", unknown.as_str(), "the official schema refuses it"),
        ("/v1/traces", "{\"resourceSpans\": [", "not JSON"),
        ("/v1/metrics", histogram, "buckets add up to 2, count is 3"),
    ];
    for (path, body, message) in cases {
        let reply = collector.post(path, body).unwrap();
        assert_eq!(reply.status, 400, "{message}: {}", reply.body);
        let reply = reply.json().unwrap();
        assert_eq!(reply["code"], 3);
        assert!(reply["message"].as_str().unwrap().contains(message), "{message}: {reply}");
    }
    let wrong_type = collector.send(&Request::new("POST", "/v1/traces").body("{}")).unwrap();
    assert_eq!(wrong_type.status, 415);
    let summary = collector.summary().unwrap();
    assert_eq!(summary["rejected"], cases.len());
    assert_eq!(summary["errors"].as_array().unwrap().len(), cases.len());
    assert_eq!(summary["requests"], json!({ "traces": 0, "metrics": 0 }));
    assert_eq!(summary["spans"], 0);

    // Valid payloads whose spans do not form a tree: the summary names them.
    let mut ids = IdGenerator::new(11);
    let root = OpenSpan::root(&mut ids, "root", SpanKind::Internal, EPOCH_NS);
    let late = root.child(&mut ids, "late", SpanKind::Internal, EPOCH_NS + 10).unwrap().end(EPOCH_NS + 500).unwrap();
    let root = root.end(EPOCH_NS + 100).unwrap();
    let mut orphan = OpenSpan::root(&mut ids, "orphan", SpanKind::Internal, EPOCH_NS).end(EPOCH_NS).unwrap();
    orphan.parent_span_id = Some(ids.span_id());
    let body = encode_traces(&resource(), &scope(), &[late.clone(), root, orphan.clone()]).unwrap();
    assert_eq!(collector.post("/v1/traces", &body).unwrap().status, 200);
    let summary = collector.summary().unwrap();
    assert_eq!(summary["spans"], 3);
    assert_eq!(summary["orphans"], json!([orphan.span_id.to_string()]));
    assert_eq!(summary["unnested"], json!([late.span_id.to_string()]));
    // The same span again is a duplicate.
    let again = encode_traces(&resource(), &scope(), std::slice::from_ref(&late)).unwrap();
    assert_eq!(collector.post("/v1/traces", &again).unwrap().status, 200);
    assert_eq!(collector.summary().unwrap()["duplicate_span_ids"], json!([late.span_id.to_string()]));
}

#[test]
#[ignore = "needs the collector's Python environment from cargo xtask setup; run by cargo xtask test"]
fn the_check_mode_reads_json_lines_of_traces_and_metrics_and_names_the_bad_line() {
    let spans = generated_spans(3, 2);
    let traces = encode_traces(&resource(), &scope(), &spans).unwrap();
    let counter = Metric::counter("sis.c", "", "1", vec![NumberPoint::new(1, 2, NumberValue::Int(3))]);
    let metrics = encode_metrics(&resource(), &scope(), &[counter]).unwrap();
    let summary = check_lines(&format!("{traces}\n{metrics}\n")).unwrap();
    assert_eq!(summary["requests"], json!({ "traces": 1, "metrics": 1 }));
    assert_eq!(summary["spans"], spans.len());
    assert_eq!(summary["orphans"], json!([]));
    assert_eq!(summary["metrics"][0]["points"][0]["value"], 3);
    let error = check_lines(&format!("{traces}\n{}\n", metrics.replace("\"asInt\":\"3\"", "\"asInt\":3"))).unwrap_err();
    assert!(error.to_string().contains("line 2: "), "{error}");
    assert!(error.to_string().contains("asInt: a 64-bit integer is a decimal string"), "{error}");
    assert!(check_lines("").unwrap_err().to_string().contains("the file holds no request"));
}
