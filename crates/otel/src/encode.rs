//! OTLP/JSON: the bodies of `POST /v1/traces` (`ExportTraceServiceRequest`) and `POST /v1/metrics`
//! (`ExportMetricsServiceRequest`) as the OTLP specification's JSON encoding defines them.
//!
//! That encoding is protobuf's JSON mapping with three differences of OTLP's own, all followed here:
//! - field names are lowerCamelCase (`traceId`, `startTimeUnixNano`), never the proto's snake_case;
//! - trace and span ids are lowercase hex strings (32 and 16 characters), not base64;
//! - enums are their integers (`"kind": 1`), never their names.
//!
//! And from the mapping itself: 64-bit integers (`int64`, `fixed64`, `uint64`: times, counts, `intValue`,
//! `asInt`) are decimal strings, doubles are JSON numbers except NaN and the infinities, which are the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"`. Empty lists, an unset status and empty text are left out (protobuf
//! reads an absent field as its default).

use alloc::string::String;
use core::fmt::Display;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::{
    AnyValue, HistogramPoint, KeyValue, Metric, MetricData, NumberPoint, NumberValue, Resource, Scope, Span, SpanEvent,
    Status,
};

/// The body of `POST /v1/traces`: `spans` from one resource and one scope.
pub fn encode_traces(resource: &Resource, scope: &Scope, spans: &[Span]) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        resource_spans: [ResourceSpans<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ResourceSpans<'a> {
        resource: ResourceJson<'a>,
        scope_spans: [ScopeSpans<'a>; 1],
    }
    #[derive(Serialize)]
    struct ScopeSpans<'a> {
        scope: ScopeJson<'a>,
        spans: Each<'a, Span>,
    }
    serde_json::to_string(&Request {
        resource_spans: [ResourceSpans {
            resource: ResourceJson::new(resource),
            scope_spans: [ScopeSpans { scope: ScopeJson::new(scope), spans: Each(spans) }],
        }],
    })
}

/// The body of `POST /v1/metrics`: `metrics` from one resource and one scope.
pub fn encode_metrics(resource: &Resource, scope: &Scope, metrics: &[Metric]) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        resource_metrics: [ResourceMetrics<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ResourceMetrics<'a> {
        resource: ResourceJson<'a>,
        scope_metrics: [ScopeMetrics<'a>; 1],
    }
    #[derive(Serialize)]
    struct ScopeMetrics<'a> {
        scope: ScopeJson<'a>,
        metrics: Each<'a, Metric>,
    }
    serde_json::to_string(&Request {
        resource_metrics: [ResourceMetrics {
            resource: ResourceJson::new(resource),
            scope_metrics: [ScopeMetrics { scope: ScopeJson::new(scope), metrics: Each(metrics) }],
        }],
    })
}

/// A value written through `Display`, as a JSON string: ids in hex, 64-bit integers in decimal.
struct Text<T>(T);

impl<T: Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A double as protobuf's JSON mapping writes it: a number, or a string for NaN and the infinities.
struct Double(f64);

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            value if value.is_finite() => serializer.serialize_f64(value),
            value if value.is_nan() => serializer.serialize_str("NaN"),
            value if value > 0.0 => serializer.serialize_str("Infinity"),
            _ => serializer.serialize_str("-Infinity"),
        }
    }
}

/// A slice whose items are written in their OTLP/JSON form.
struct Each<'a, T>(&'a [T]);

impl<'a, T> Serialize for Each<'a, T>
where
    Otlp<'a, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Otlp))
    }
}

/// One model value in its OTLP/JSON form.
struct Otlp<'a, T>(&'a T);

fn is_empty<T>(items: &Each<'_, T>) -> bool {
    items.0.is_empty()
}

#[derive(Serialize)]
struct ResourceJson<'a> {
    #[serde(skip_serializing_if = "is_empty")]
    attributes: Each<'a, KeyValue>,
}

impl<'a> ResourceJson<'a> {
    fn new(resource: &'a Resource) -> Self {
        ResourceJson { attributes: Each(&resource.attributes) }
    }
}

#[derive(Serialize)]
struct ScopeJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
}

impl<'a> ScopeJson<'a> {
    fn new(scope: &'a Scope) -> Self {
        ScopeJson { name: &scope.name, version: &scope.version }
    }
}

impl Serialize for Otlp<'_, KeyValue> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("key", &self.0.key)?;
        map.serialize_entry("value", &Otlp(&self.0.value))?;
        map.end()
    }
}

impl Serialize for Otlp<'_, AnyValue> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self.0 {
            AnyValue::String(text) => map.serialize_entry("stringValue", text)?,
            AnyValue::Int(value) => map.serialize_entry("intValue", &Text(value))?,
            AnyValue::Double(value) => map.serialize_entry("doubleValue", &Double(*value))?,
            AnyValue::Bool(value) => map.serialize_entry("boolValue", value)?,
        }
        map.end()
    }
}

impl Serialize for Otlp<'_, Span> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SpanJson<'a> {
            trace_id: Text<crate::TraceId>,
            span_id: Text<crate::SpanId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            parent_span_id: Option<Text<crate::SpanId>>,
            name: &'a str,
            kind: u8,
            start_time_unix_nano: Text<u64>,
            end_time_unix_nano: Text<u64>,
            #[serde(skip_serializing_if = "is_empty")]
            attributes: Each<'a, KeyValue>,
            #[serde(skip_serializing_if = "is_empty")]
            events: Each<'a, SpanEvent>,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<StatusJson<'a>>,
        }
        #[derive(Serialize)]
        struct StatusJson<'a> {
            code: u8,
            #[serde(skip_serializing_if = "str::is_empty")]
            message: &'a str,
        }
        let span = self.0;
        let status = match &span.status {
            Status::Unset => None,
            Status::Ok => Some(StatusJson { code: span.status.code(), message: "" }),
            Status::Error(message) => Some(StatusJson { code: span.status.code(), message }),
        };
        SpanJson {
            trace_id: Text(span.trace_id),
            span_id: Text(span.span_id),
            parent_span_id: span.parent_span_id.map(Text),
            name: &span.name,
            kind: span.kind.code(),
            start_time_unix_nano: Text(span.start_time_unix_nano),
            end_time_unix_nano: Text(span.end_time_unix_nano),
            attributes: Each(&span.attributes),
            events: Each(&span.events),
            status,
        }
        .serialize(serializer)
    }
}

impl Serialize for Otlp<'_, SpanEvent> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct EventJson<'a> {
            time_unix_nano: Text<u64>,
            name: &'a str,
            #[serde(skip_serializing_if = "is_empty")]
            attributes: Each<'a, KeyValue>,
        }
        let event = self.0;
        EventJson { time_unix_nano: Text(event.time_unix_nano), name: &event.name, attributes: Each(&event.attributes) }
            .serialize(serializer)
    }
}

impl Serialize for Otlp<'_, Metric> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase", bound = "Each<'a, T>: Serialize")]
        struct Points<'a, T> {
            data_points: Each<'a, T>,
            #[serde(skip_serializing_if = "Option::is_none")]
            aggregation_temporality: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            is_monotonic: Option<bool>,
        }
        let metric = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &metric.name)?;
        if !metric.description.is_empty() {
            map.serialize_entry("description", &metric.description)?;
        }
        if !metric.unit.is_empty() {
            map.serialize_entry("unit", &metric.unit)?;
        }
        match &metric.data {
            MetricData::Sum { points, temporality, monotonic } => {
                let sum = Points {
                    data_points: Each(points),
                    aggregation_temporality: Some(temporality.code()),
                    is_monotonic: Some(*monotonic),
                };
                map.serialize_entry("sum", &sum)?;
            }
            MetricData::Gauge { points } => {
                let gauge = Points { data_points: Each(points), aggregation_temporality: None, is_monotonic: None };
                map.serialize_entry("gauge", &gauge)?;
            }
            MetricData::Histogram { points, temporality } => {
                let histogram = Points {
                    data_points: Each(points),
                    aggregation_temporality: Some(temporality.code()),
                    is_monotonic: None,
                };
                map.serialize_entry("histogram", &histogram)?;
            }
        }
        map.end()
    }
}

impl Serialize for Otlp<'_, NumberPoint> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !point.attributes.is_empty() {
            map.serialize_entry("attributes", &Each(&point.attributes))?;
        }
        map.serialize_entry("startTimeUnixNano", &Text(point.start_time_unix_nano))?;
        map.serialize_entry("timeUnixNano", &Text(point.time_unix_nano))?;
        match point.value {
            NumberValue::Int(value) => map.serialize_entry("asInt", &Text(value))?,
            NumberValue::Double(value) => map.serialize_entry("asDouble", &Double(value))?,
        }
        map.end()
    }
}

impl Serialize for Otlp<'_, HistogramPoint> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !point.attributes.is_empty() {
            map.serialize_entry("attributes", &Each(&point.attributes))?;
        }
        map.serialize_entry("startTimeUnixNano", &Text(point.start_time_unix_nano))?;
        map.serialize_entry("timeUnixNano", &Text(point.time_unix_nano))?;
        map.serialize_entry("count", &Text(point.count()))?;
        if let Some(sum) = point.sum {
            map.serialize_entry("sum", &Double(sum))?;
        }
        let bucket_counts: alloc::vec::Vec<Text<u64>> = point.bucket_counts().iter().copied().map(Text).collect();
        map.serialize_entry("bucketCounts", &bucket_counts)?;
        let bounds: alloc::vec::Vec<Double> = point.explicit_bounds().iter().copied().map(Double).collect();
        map.serialize_entry("explicitBounds", &bounds)?;
        if let Some(min) = point.min {
            map.serialize_entry("min", &Double(min))?;
        }
        if let Some(max) = point.max {
            map.serialize_entry("max", &Double(max))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests;
