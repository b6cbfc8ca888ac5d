use alloc::vec;

use serde_json::{json, Value};

use crate::*;

fn resource() -> Resource {
    Resource::new("sis-kernel").with(KeyValue::string("service.version", "0.1.0")).with(KeyValue::int("host.cpus", 1))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_span_tree_is_written_with_hex_ids_decimal_string_times_and_integer_enums() {
    let trace_id = TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap();
    let root_id = SpanId::from_hex("eee19b7ec3c1b173").unwrap();
    let root = Span {
        trace_id,
        span_id: root_id,
        parent_span_id: None,
        name: "shell".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        attributes: vec![],
        events: vec![],
        status: Status::Ok,
    };
    let child = Span {
        trace_id,
        span_id: SpanId::from_hex("eee19b7ec3c1b174").unwrap(),
        parent_span_id: Some(root_id),
        name: "meminfo \"x\"".into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: 1_544_712_660_300_000_000,
        end_time_unix_nano: 1_544_712_660_600_000_000,
        attributes: vec![
            KeyValue::string("sis.command.path", "meminfo"),
            KeyValue::int("sis.command.exit_status", -42),
            KeyValue::double("sis.ratio", 0.25),
            KeyValue::bool("sis.json", true),
        ],
        events: vec![SpanEvent {
            name: "oom".into(),
            time_unix_nano: 1_544_712_660_500_000_000,
            attributes: vec![KeyValue::int("pages", 9_007_199_254_740_993)],
        }],
        status: Status::Error("exit status 2".into()),
    };
    let body = encode_traces(&resource(), &Scope::new("sis.shell", "0.1.0"), &[root, child]).unwrap();
    assert_eq!(
        parse(&body),
        json!({ "resourceSpans": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": "sis-kernel" } },
                { "key": "service.version", "value": { "stringValue": "0.1.0" } },
                { "key": "host.cpus", "value": { "intValue": "1" } }
            ] },
            "scopeSpans": [{
                "scope": { "name": "sis.shell", "version": "0.1.0" },
                "spans": [
                    {
                        "traceId": "5b8efff798038103d269b633813fc60c",
                        "spanId": "eee19b7ec3c1b173",
                        "name": "shell",
                        "kind": 2,
                        "startTimeUnixNano": "1544712660000000000",
                        "endTimeUnixNano": "1544712661000000000",
                        "status": { "code": 1 }
                    },
                    {
                        "traceId": "5b8efff798038103d269b633813fc60c",
                        "spanId": "eee19b7ec3c1b174",
                        "parentSpanId": "eee19b7ec3c1b173",
                        "name": "meminfo \"x\"",
                        "kind": 1,
                        "startTimeUnixNano": "1544712660300000000",
                        "endTimeUnixNano": "1544712660600000000",
                        "attributes": [
                            { "key": "sis.command.path", "value": { "stringValue": "meminfo" } },
                            { "key": "sis.command.exit_status", "value": { "intValue": "-42" } },
                            { "key": "sis.ratio", "value": { "doubleValue": 0.25 } },
                            { "key": "sis.json", "value": { "boolValue": true } }
                        ],
                        "events": [{
                            "timeUnixNano": "1544712660500000000",
                            "name": "oom",
                            // Above 2^53: a JSON number would lose the last digit in a double-based reader.
                            "attributes": [{ "key": "pages", "value": { "intValue": "9007199254740993" } }]
                        }],
                        "status": { "code": 2, "message": "exit status 2" }
                    }
                ]
            }]
        }] })
    );
    // Field order follows the proto; the text is compact, one line.
    assert!(body.starts_with(r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"#));
    assert!(!body.contains('\n'));
}

#[test]
fn an_unset_status_empty_lists_and_an_empty_scope_version_are_left_out() {
    let mut ids = IdGenerator::new(1);
    let span = OpenSpan::root(&mut ids, "idle", SpanKind::Unspecified, 7).end(7).unwrap();
    let body = parse(
        &encode_traces(&Resource { attributes: vec![] }, &Scope::new("s", ""), core::slice::from_ref(&span)).unwrap(),
    );
    assert_eq!(
        body,
        json!({ "resourceSpans": [{ "resource": {}, "scopeSpans": [{ "scope": { "name": "s" }, "spans": [{
            "traceId": span.trace_id.to_string(), "spanId": span.span_id.to_string(), "name": "idle", "kind": 0,
            "startTimeUnixNano": "7", "endTimeUnixNano": "7"
        }] }] }] })
    );
}

#[test]
fn doubles_that_json_has_no_number_for_are_the_strings_of_protobufs_mapping() {
    let attributes = vec![
        KeyValue::double("nan", f64::NAN),
        KeyValue::double("up", f64::INFINITY),
        KeyValue::double("down", f64::NEG_INFINITY),
        KeyValue::double("tiny", 5e-324),
        KeyValue::double("big", 1e300),
        KeyValue::int("min", i64::MIN),
    ];
    let resource = Resource { attributes };
    let body = encode_traces(&resource, &Scope::new("s", ""), &[]).unwrap();
    let values: Vec<Value> = parse(&body)["resourceSpans"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attribute| attribute["value"].clone())
        .collect();
    assert_eq!(
        values,
        [
            json!({ "doubleValue": "NaN" }),
            json!({ "doubleValue": "Infinity" }),
            json!({ "doubleValue": "-Infinity" }),
            json!({ "doubleValue": 5e-324 }),
            json!({ "doubleValue": 1e300 }),
            json!({ "intValue": "-9223372036854775808" })
        ]
    );
    assert!(body.contains(r#""spans":[]"#));
}

#[test]
fn counters_gauges_and_histograms_are_written_as_otlp_metrics() {
    let mut counter_point = NumberPoint::new(1_000, 2_000, NumberValue::Int(12_345));
    counter_point.attributes.push(KeyValue::string("sis.command", "meminfo"));
    let counter = Metric::counter("sis.shell.commands", "Commands run", "{command}", vec![counter_point]);
    let gauge = Metric::gauge("sis.memory.used", "", "By", vec![NumberPoint::new(0, 2_000, NumberValue::Double(0.5))]);
    let mut histogram_point =
        HistogramPoint::from_values(1_000, 2_000, vec![10.0, 100.0], &[5.0, 50.0, 60.0, 500.0]).unwrap();
    histogram_point.attributes.push(KeyValue::bool("sis.autonomy", false));
    let histogram = Metric::histogram("sis.shell.latency", "Command latency", "ns", vec![histogram_point]);
    let empty =
        Metric::histogram("sis.empty", "", "", vec![HistogramPoint::new(1_000, 2_000, vec![1.5], vec![0, 0]).unwrap()]);
    let body = encode_metrics(
        &Resource::new("sis-kernel"),
        &Scope::new("sis.metrics", "0.1.0"),
        &[counter, gauge, histogram, empty],
    )
    .unwrap();
    assert_eq!(
        parse(&body),
        json!({ "resourceMetrics": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "sis-kernel" } }] },
            "scopeMetrics": [{
                "scope": { "name": "sis.metrics", "version": "0.1.0" },
                "metrics": [
                    {
                        "name": "sis.shell.commands", "description": "Commands run", "unit": "{command}",
                        "sum": {
                            "dataPoints": [{
                                "attributes": [{ "key": "sis.command", "value": { "stringValue": "meminfo" } }],
                                "startTimeUnixNano": "1000", "timeUnixNano": "2000", "asInt": "12345"
                            }],
                            "aggregationTemporality": 2,
                            "isMonotonic": true
                        }
                    },
                    {
                        "name": "sis.memory.used", "unit": "By",
                        "gauge": { "dataPoints": [{ "startTimeUnixNano": "0", "timeUnixNano": "2000", "asDouble": 0.5 }] }
                    },
                    {
                        "name": "sis.shell.latency", "description": "Command latency", "unit": "ns",
                        "histogram": {
                            "dataPoints": [{
                                "attributes": [{ "key": "sis.autonomy", "value": { "boolValue": false } }],
                                "startTimeUnixNano": "1000", "timeUnixNano": "2000",
                                "count": "4", "sum": 615.0,
                                "bucketCounts": ["1", "2", "1"], "explicitBounds": [10.0, 100.0],
                                "min": 5.0, "max": 500.0
                            }],
                            "aggregationTemporality": 2
                        }
                    },
                    {
                        "name": "sis.empty",
                        "histogram": {
                            "dataPoints": [{
                                "startTimeUnixNano": "1000", "timeUnixNano": "2000",
                                "count": "0", "bucketCounts": ["0", "0"], "explicitBounds": [1.5]
                            }],
                            "aggregationTemporality": 2
                        }
                    }
                ]
            }]
        }] })
    );
}
