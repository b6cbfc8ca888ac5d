//! Export of the meta-agent's decision traces through cursors (`sis_otel::CursorExporter`): read from any cursor
//! (`otelctl decisions read`, `GET /api/decisions`), written to a file as JSON lines from the file cursor
//! (`otelctl decisions file`), and posted as OTLP span events from the OTLP cursor while spans are exported over
//! HTTP. A cursor moves only when its batch was written or accepted, so no trace is sent twice by one door nor
//! skipped; traces the ring overwrote before a cursor reached them are counted as evicted.

use alloc::string::String;
use alloc::vec::Vec;

use sis_autonomy::{DecisionTrace, MetaAgent};
use sis_otel::{CursorBatch, CursorCounters, CursorExporter, Record, SequencedSource};
use sis_stress::governor::TRACES_KEPT;

use crate::commands::autonomy::with_agent;

/// Most traces in one batch (the ring's size: a batch can hold everything kept).
pub const MAX_BATCH: usize = TRACES_KEPT;

/// The meta-agent's trace ring as a sequenced source: trace `id` is number `base + id`, `base` being the
/// decisions of the agents `autoctl policy` replaced, so the numbers run on across a policy change and the old
/// agent's traces no exporter had reached count as evicted. The source ends before the oldest trace whose outcome
/// is still pending (`MetaAgent::settled_until`): a trace is exported once, in its final form, and the traces
/// after a pending one wait for it (its horizon, judged while its run goes on; a run that ends first leaves it pending
/// until the next run begins or autonomy is switched off, which drop it).
struct AgentTraces<'a, P> {
    agent: &'a MetaAgent<P, TRACES_KEPT>,
    base: u64,
}

impl<P: sis_autonomy::Policy> SequencedSource for AgentTraces<'_, P> {
    type Entry = DecisionTrace;

    fn next_seq(&self) -> u64 {
        self.base.saturating_add(self.agent.settled_until())
    }

    fn oldest_seq(&self) -> u64 {
        self.base.saturating_add(self.agent.oldest_trace_id())
    }

    fn get(&self, seq: u64) -> Option<DecisionTrace> {
        self.agent.explain(seq.checked_sub(self.base)?).ok().copied()
    }
}

/// The file cursor (`otelctl decisions file`).
pub static FILE_CURSOR: spin::Mutex<CursorExporter> = spin::Mutex::new(CursorExporter::starting_at(0));
/// The OTLP cursor (span events while spans are exported over HTTP), and when a failed batch may be tried again.
pub static OTLP_CURSOR: spin::Mutex<(CursorExporter, u64)> = spin::Mutex::new((CursorExporter::starting_at(0), 0));

/// Trace `trace` as record number `seq`: its JSON form as `autoctl audit` prints it, with `seq` added.
pub fn record(seq: u64, trace: DecisionTrace) -> Record {
    let mut value = serde_json::to_value(trace).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(alloc::string::String::from("seq"), serde_json::Value::from(seq));
    }
    Record { seq, at_ns: trace.at_ns, value }
}

/// The source's window: the number the next trace gets, the oldest number kept, and the number of the oldest trace
/// still pending (the end of what a cursor can read; all three 0 before the meta-agent exists).
pub fn window() -> (u64, u64, u64) {
    with_agent(|agent, base| {
        let source = AgentTraces { agent, base };
        (base.saturating_add(agent.decisions()), source.oldest_seq(), source.next_seq())
    })
    .unwrap_or((0, 0, 0))
}

/// Up to `max` traces from `exporter`'s cursor (without moving it); an empty batch before the meta-agent exists.
pub fn read(exporter: &CursorExporter, max: usize) -> CursorBatch<Record> {
    let batch = with_agent(|agent, base| exporter.next_batch(&AgentTraces { agent, base }, max.min(MAX_BATCH)))
        .unwrap_or_else(|| exporter.next_batch(&Empty, 0));
    let first_seq = batch.first_seq;
    let mut seq = first_seq;
    batch.map(|trace| {
        let record = record(seq, trace);
        seq += 1;
        record
    })
}

/// A source with nothing in it (before the meta-agent exists).
struct Empty;

impl SequencedSource for Empty {
    type Entry = DecisionTrace;

    fn next_seq(&self) -> u64 {
        0
    }

    fn oldest_seq(&self) -> u64 {
        0
    }

    fn get(&self, _: u64) -> Option<DecisionTrace> {
        None
    }
}

/// Both exporters' counters: file, OTLP.
pub fn counters() -> (CursorCounters, CursorCounters) {
    (crate::sync::lock(&FILE_CURSOR).counters(), crate::sync::lock(&OTLP_CURSOR).0.counters())
}

/// The ids of a batch's records.
pub fn ids(batch: &CursorBatch<Record>) -> Vec<u64> {
    batch.entries.iter().map(|record| record.seq).collect()
}

/// The JSON lines of a batch, and their size.
pub fn lines(batch: &CursorBatch<Record>) -> String {
    sis_otel::json_lines(&batch.entries)
}
