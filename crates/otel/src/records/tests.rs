use alloc::vec::Vec;

use serde_json::json;

use super::*;
use crate::{encode_traces, AnyValue, CursorExporter, Resource, Scope, SequencedSource};

/// Records 0.. of which only the newest `kept` are held.
struct Log {
    records: Vec<Record>,
    kept: usize,
}

impl SequencedSource for Log {
    type Entry = Record;

    fn next_seq(&self) -> u64 {
        self.records.len() as u64
    }

    fn oldest_seq(&self) -> u64 {
        self.records.len().saturating_sub(self.kept) as u64
    }

    fn get(&self, seq: u64) -> Option<Record> {
        (seq >= self.oldest_seq()).then(|| self.records.get(seq as usize).cloned()).flatten()
    }
}

fn record(seq: u64) -> Record {
    Record {
        seq,
        at_ns: 1_000 + seq * 10,
        value: json!({ "id": seq, "policy": "heuristic", "inputs": { "pressure_per_mille": 700, "free": null },
                       "confidence": 0.5, "acted": seq.is_multiple_of(2), "scores": [1, 2], "huge": u64::MAX }),
    }
}

#[test]
fn json_is_flattened_into_typed_attributes_without_nulls() {
    let attributes = json_attributes("sis.decision", &record(3).value);
    let pairs: Vec<(&str, &AnyValue)> = attributes.iter().map(|kv| (kv.key.as_str(), &kv.value)).collect();
    assert_eq!(
        pairs,
        [
            ("sis.decision.acted", &AnyValue::Bool(false)),
            ("sis.decision.confidence", &AnyValue::Double(0.5)),
            ("sis.decision.huge", &AnyValue::String(String::from("18446744073709551615"))),
            ("sis.decision.id", &AnyValue::Int(3)),
            ("sis.decision.inputs.pressure_per_mille", &AnyValue::Int(700)),
            ("sis.decision.policy", &AnyValue::String(String::from("heuristic"))),
            ("sis.decision.scores", &AnyValue::String(String::from("[1,2]"))),
        ]
    );
}

#[test]
fn batches_through_the_cursor_are_consecutive_and_report_what_the_ring_overwrote() {
    let mut log = Log { records: (0..5).map(record).collect(), kept: 8 };
    let mut exporter = CursorExporter::default();
    let mut ids = IdGenerator::new(1);
    let mut exported: Vec<u64> = Vec::new();
    let mut lines = String::new();
    // 5 records, batches of 3: 0-2 then 3-4.
    for expected in [[0u64, 1, 2].as_slice(), &[3, 4]] {
        let batch = exporter.next_batch(&log, 3);
        let span = records_span(&mut ids, "sis.autonomy.decisions", "decision", "sis.decision", &batch, 99);
        assert_eq!(
            span.events.iter().map(|event| event.attributes[0].value.clone()).collect::<Vec<_>>(),
            expected.iter().map(|seq| AnyValue::Int(*seq as i64)).collect::<Vec<_>>()
        );
        assert_eq!(
            (span.start_time_unix_nano, span.end_time_unix_nano),
            (1_000 + expected[0] * 10, 1_000 + expected[expected.len() - 1] * 10)
        );
        lines.push_str(&json_lines(&batch.entries));
        exported.extend(batch.entries.iter().map(|record| record.seq));
        exporter.commit(&batch).unwrap();
    }
    assert_eq!(lines.lines().count(), 5);
    assert_eq!(lines.lines().next().unwrap(), record(0).value.to_string());
    // 12 more while nothing is read: the ring keeps 8, so 9 to 12 are read after 4 were lost (5 to 8).
    log.records.extend((5..17).map(record));
    let batch = exporter.next_batch(&log, 100);
    assert_eq!((batch.evicted, batch.first_seq, batch.entries.len(), batch.next_cursor), (4, 9, 8, 17));
    let span = records_span(&mut ids, "sis.autonomy.decisions", "decision", "sis.decision", &batch, 99);
    let attribute = |key: &str| span.attributes.iter().find(|kv| kv.key == key).map(|kv| kv.value.clone());
    assert_eq!(
        (attribute("sis.records.first_seq"), attribute("sis.records.count"), attribute("sis.records.evicted")),
        (Some(AnyValue::Int(9)), Some(AnyValue::Int(8)), Some(AnyValue::Int(4)))
    );
    exporter.commit(&batch).unwrap();
    exported.extend(batch.entries.iter().map(|record| record.seq));
    assert_eq!(exported, [0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16]);
    assert_eq!((exporter.counters().exported, exporter.counters().evicted), (13, 4));
    // The encoded span is one valid traces request holding all 8 events.
    let text = encode_traces(&Resource::new("sis-kernel"), &Scope::new("sis.autonomy", ""), &[span]).unwrap();
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"].as_array().unwrap().len(), 8);
    // Nothing new: an empty batch, no span to send.
    let empty = exporter.next_batch(&log, 100);
    assert_eq!((empty.evicted, empty.entries.len()), (0, 0));
}
