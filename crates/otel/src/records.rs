//! Sequence-numbered records (the meta-agent's decision traces) read through a [`CursorExporter`] and written as
//! JSON lines, or as one OTLP span per batch with a span event per record.
//!
//! A record is its sequence number, its time and its JSON form. The JSON lines are exactly the records' values,
//! one a line. The span of a batch says which records it holds (`sis.records.first_seq`, `sis.records.count`)
//! and how many were evicted before they could be read (`sis.records.evicted`), so a gap is always reported,
//! never silent; each event carries the record flattened into attributes (`prefix.key.subkey`).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use crate::{CursorBatch, IdGenerator, KeyValue, OpenSpan, Span, SpanEvent, SpanKind, Status};

/// One record: its number, when it happened, and its JSON form.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// When it happened, ns.
    pub at_ns: u64,
    /// Its JSON form.
    pub value: Value,
}

/// The records' values as JSON lines, one per record, oldest first (empty for none).
pub fn json_lines(records: &[Record]) -> String {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.value.to_string());
        text.push('\n');
    }
    text
}

/// `value` flattened into attributes under `prefix`: an object's fields as `prefix.field` (recursively), strings,
/// booleans and numbers as themselves (integers beyond `i64` as text), arrays as their JSON text; nulls are left
/// out (OTLP has no null).
pub fn json_attributes(prefix: &str, value: &Value) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    flatten(prefix, value, &mut attributes);
    attributes
}

fn flatten(key: &str, value: &Value, into: &mut Vec<KeyValue>) {
    match value {
        Value::Null => {}
        Value::Bool(flag) => into.push(KeyValue::bool(key, *flag)),
        Value::Number(number) => into.push(match (number.as_i64(), number.as_f64()) {
            (Some(int), _) => KeyValue::int(key, int),
            (None, _) if number.is_u64() => KeyValue::string(key, &number.to_string()),
            (None, Some(double)) => KeyValue::double(key, double),
            (None, None) => KeyValue::string(key, &number.to_string()),
        }),
        Value::String(text) => into.push(KeyValue::string(key, text)),
        Value::Array(_) => into.push(KeyValue::string(key, &value.to_string())),
        Value::Object(fields) => {
            for (field, inner) in fields {
                let inner_key = if key.is_empty() { field.clone() } else { alloc::format!("{key}.{field}") };
                flatten(&inner_key, inner, into);
            }
        }
    }
}

/// The span of one batch of records: a root span named `name` (kind internal) from its first record's time to its
/// last's (`now_ns` for a batch that only reports evictions), an event `event_name` per record at its time with
/// `sis.record.seq` and the record under `prefix`, and the batch's `sis.records.first_seq`, `sis.records.count`
/// and `sis.records.evicted`. Ids come from `ids`.
pub fn records_span(
    ids: &mut IdGenerator,
    name: &str,
    event_name: &str,
    prefix: &str,
    batch: &CursorBatch<Record>,
    now_ns: u64,
) -> Span {
    let start = batch.entries.iter().map(|record| record.at_ns).min().unwrap_or(now_ns);
    let end = batch.entries.iter().map(|record| record.at_ns).max().unwrap_or(now_ns).max(start);
    let mut span = OpenSpan::root(ids, name, SpanKind::Internal, start);
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    span.set_attribute(KeyValue::int("sis.records.first_seq", count(batch.first_seq)));
    span.set_attribute(KeyValue::int("sis.records.count", count(batch.entries.len() as u64)));
    span.set_attribute(KeyValue::int("sis.records.evicted", count(batch.evicted)));
    for record in &batch.entries {
        let mut attributes = alloc::vec![KeyValue::int("sis.record.seq", count(record.seq))];
        attributes.extend(json_attributes(prefix, &record.value));
        span.add_event(SpanEvent { name: String::from(event_name), time_unix_nano: record.at_ns, attributes });
    }
    span.set_status(Status::Ok);
    span.end_no_earlier_than_start(end)
}

#[cfg(test)]
mod tests;
