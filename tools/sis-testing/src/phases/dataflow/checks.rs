//! Checks shared by phase 1's judges: a graph's figures against the reference run, and the identities its
//! counters obey once its threads are gone.

use serde_json::Value;
use sis_dataflow::graph::{reference_run, OpKind};
use sis_dataflow::tensor::Budget;

use super::graphs::Graph;
use super::number;

/// The operator `name` of a `status` or `stats` reply.
pub fn op<'a>(view: &'a Value, name: &str) -> Result<&'a Value, String> {
    view["ops"]
        .as_array()
        .and_then(|ops| ops.iter().find(|op| op["name"] == name))
        .ok_or_else(|| format!("operator {name} in graph {}, got none", view["name"]))
}

/// The counters of channel `from -> to` of a `stats` reply.
pub fn channel<'a>(view: &'a Value, from: &str, to: &str) -> Result<&'a Value, String> {
    view["edges"]
        .as_array()
        .and_then(|edges| edges.iter().find(|edge| edge["from"] == from && edge["to"] == to))
        .map(|edge| &edge["stats"])
        .filter(|stats| stats.is_object())
        .ok_or_else(|| format!("counters of channel {from} -> {to} in graph {}, got none", view["name"]))
}

/// `op[counters][key]`.
pub fn counter(view: &Value, name: &str, key: &str) -> Result<u64, String> {
    number(&op(view, name)?["counters"], key)
}

/// Every sink's items and checksum, and every operator's counters, in `stats` equal those of the reference run
/// of `graph` (the single-threaded run whose results a graph of `block` channels must reach).
pub fn equals_reference(stats: &Value, graph: &Graph) -> Result<(), String> {
    let name = graph.name;
    let reference = reference_run(&graph.spec, &Budget::new(graph.budget_bytes()))
        .map_err(|error| format!("{name}: a reference run, got {error:?}"))?;
    for (sink_name, report) in &reference.sinks {
        let sink = &op(stats, sink_name)?["sink"];
        let got = (number(sink, "items")?, number(sink, "checksum")?);
        if got != (report.items, report.checksum) {
            return Err(format!(
                "{name}: sink {sink_name} gets {} items with checksum {} (the reference run), got {} items with checksum {}",
                report.items, report.checksum, got.0, got.1
            ));
        }
    }
    for (op_name, counters) in &reference.operators {
        let expected = serde_json::to_value(counters).map_err(|error| error.to_string())?;
        let got = &op(stats, op_name)?["counters"];
        if got != &expected {
            return Err(format!("{name}: {op_name}'s counters {expected} (the reference run), got {got}"));
        }
    }
    Ok(())
}

/// Once a graph's threads are gone (finished or stopped), its counters add up: per channel `offered = received +
/// dropped + queued`, and `offered` is each of its producer's outputs; per operator `inputs` is what its channels
/// delivered, and `inputs = outputs x arity + filtered + failed` (a window: `outputs x size + failed + held`; a
/// sink: its items); a source emitted (or failed) all its items when finished, at most all when stopped.
pub fn accounting(stats: &Value, graph: &Graph) -> Result<(), String> {
    let (name, spec) = (graph.name, &graph.spec);
    let finished = match stats["state"].as_str() {
        Some("finished") => true,
        Some("stopped") => false,
        _ => return Err(format!("{name}: finished or stopped, got state {}", stats["state"])),
    };
    let mut received_by = vec![0u64; spec.ops.len()];
    for edge in &spec.edges {
        let (from, to) = (&spec.ops[edge.from].name, &spec.ops[edge.to].name);
        let counters = channel(stats, from, to)?;
        let [offered, received, dropped, queued] =
            ["offered", "received", "dropped", "queued"].map(|key| number(counters, key));
        let (offered, received, dropped, queued) = (offered?, received?, dropped?, queued?);
        if offered != received + dropped + queued {
            return Err(format!(
                "{name}: channel {from} -> {to}: offered = received + dropped + queued, got {offered} != {received} + {dropped} + {queued}"
            ));
        }
        let outputs = counter(stats, from, "outputs")?;
        if offered != outputs {
            return Err(format!(
                "{name}: channel {from} -> {to} offered each of {from}'s {outputs} outputs, got {offered}"
            ));
        }
        received_by[edge.to] += received;
    }
    for (spec_op, received) in spec.ops.iter().zip(received_by) {
        let view = op(stats, &spec_op.name)?;
        let [inputs, outputs, filtered, failed, held] =
            ["inputs", "outputs", "filtered", "failed", "held"].map(|key| number(&view["counters"], key));
        let (inputs, outputs, filtered, failed, held) = (inputs?, outputs?, filtered?, failed?, held?);
        let op_name = &spec_op.name;
        if inputs != received {
            return Err(format!(
                "{name}: {op_name}'s inputs are the {received} items its channels delivered, got {inputs}"
            ));
        }
        let (expected, rule) = match &spec_op.kind {
            OpKind::Source(source) => {
                let emitted = outputs + failed;
                if emitted > source.count || (finished && emitted != source.count) {
                    return Err(format!(
                        "{name}: source {op_name} emitted or failed {} of its {} items, got {emitted}",
                        if finished { "all" } else { "at most all" },
                        source.count
                    ));
                }
                continue;
            }
            OpKind::Map(map) => {
                (outputs * map.arity() as u64 + filtered + failed, "outputs x arity + filtered + failed")
            }
            OpKind::Filter { .. } | OpKind::Infer { .. } => {
                (outputs + filtered + failed, "outputs + filtered + failed")
            }
            OpKind::Window { size, .. } => (outputs * *size as u64 + failed + held, "outputs x size + failed + held"),
            OpKind::Sink { .. } => (number(&view["sink"], "items")?, "the sink's items"),
        };
        if inputs != expected {
            return Err(format!("{name}: {op_name}'s inputs = {rule} = {expected}, got {inputs}"));
        }
    }
    Ok(())
}

/// Along the chain `path` (a source, operators with one input and one output that do not combine items, a
/// sink): every item the source emitted reached the sink, was dropped by a channel, filtered, failed, or is in
/// flight (queued or held). Returns the items in flight or drained from the channels when the threads ended.
pub fn conservation(stats: &Value, path: &[&str]) -> Result<u64, String> {
    let (first, last) = (path[0], path[path.len() - 1]);
    let emitted = counter(stats, first, "outputs")?;
    let arrived = number(&op(stats, last)?["sink"], "items")?;
    let (mut lost, mut in_flight, mut drained) = (0, 0, 0);
    for pair in path.windows(2) {
        let counters = channel(stats, pair[0], pair[1])?;
        lost += number(counters, "dropped")?;
        in_flight += number(counters, "queued")?;
        drained += number(counters, "drained")?;
    }
    for inner in &path[1..path.len() - 1] {
        lost += counter(stats, inner, "filtered")? + counter(stats, inner, "failed")?;
        in_flight += counter(stats, inner, "held")?;
    }
    if emitted != arrived + lost + in_flight {
        return Err(format!(
            "{}: {first}'s {emitted} items = {arrived} at {last} + {lost} dropped, filtered or failed + {in_flight} in flight, got {}",
            stats["name"],
            arrived + lost + in_flight
        ));
    }
    Ok(in_flight + drained)
}
