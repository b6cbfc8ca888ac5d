//! Channel Throughput: a long scalar stream, channels busy in two graphs at once, and a slow consumer behind
//! a small channel under each overflow policy.

use serde_json::Value;
use sis_dataflow::channel::Overflow;
use sis_dataflow::graph::MapOp;

use super::checks::{accounting, channel, counter, equals_reference, op};
use super::graphs::{best_effort, edge, map, sink, source, Graph};
use super::{expect_value, number, Replies, Step};

/// Scalars from source to sink.
const STREAM_ITEMS: u64 = 20_000;
/// Items of the backpressure graphs, and the capacity of their source's channel.
const SLOW_ITEMS: u64 = 200;
const SMALL_CAPACITY: usize = 4;

fn stream_graph() -> Graph {
    Graph::new(
        "thr",
        vec![best_effort("src", source(&[], STREAM_ITEMS, 5)), best_effort("out", sink())],
        &[("src", "out", 64, Overflow::Block)],
    )
}

/// A tensor source fanned out to three branches, each into its own sink.
fn fan_graph() -> Graph {
    Graph::new(
        "fan",
        vec![
            best_effort("src", source(&[4, 8], 300, 8)),
            best_effort("rel", map(MapOp::Relu)),
            best_effort("neg", map(MapOp::MulScalar { value: -1.0 })),
            best_effort("tot", map(MapOp::Sum)),
            best_effort("k-rel", sink()),
            best_effort("k-neg", sink()),
            best_effort("k-tot", sink()),
        ],
        &[
            edge("src", "rel"),
            edge("src", "neg"),
            ("src", "tot", 8, Overflow::Block),
            edge("rel", "k-rel"),
            edge("neg", "k-neg"),
            edge("tot", "k-tot"),
        ],
    )
}

/// A scalar chain run at the same time as [`fan_graph`].
fn chain_graph() -> Graph {
    Graph::new(
        "chain",
        vec![
            best_effort("src", source(&[], 5_000, 9)),
            best_effort("shift", map(MapOp::AddScalar { value: 0.25 })),
            best_effort("keep", sis_dataflow::graph::OpKind::Filter { min: 0.0 }),
            best_effort("out", sink()),
        ],
        &[edge("src", "shift"), ("shift", "keep", 2, Overflow::Block), edge("keep", "out")],
    )
}

/// A fast source of 8x8 tensors into a softmax (about ten times its cost per item) through a channel of 4
/// under `overflow`, then a sink.
fn slow_consumer_graph(name: &'static str, overflow: Overflow) -> Graph {
    Graph::new(
        name,
        vec![
            best_effort("src", source(&[8, 8], SLOW_ITEMS, 10)),
            best_effort("soft", map(MapOp::Softmax)),
            best_effort("out", sink()),
        ],
        &[("src", "soft", SMALL_CAPACITY, overflow), edge("soft", "out")],
    )
}

fn slow_consumer_graphs() -> [Graph; 3] {
    [
        slow_consumer_graph("bpb", Overflow::Block),
        slow_consumer_graph("bpn", Overflow::DropNewest),
        slow_consumer_graph("bpo", Overflow::DropOldest),
    ]
}

/// The stream; the fan-out and the chain started together, listed while both run; the three slow consumers.
pub fn steps() -> Vec<Step> {
    let stream = stream_graph();
    let mut steps = stream.build_steps();
    steps.extend(stream.run_steps());
    let (fan, chain) = (fan_graph(), chain_graph());
    steps.extend(fan.build_steps());
    steps.extend(chain.build_steps());
    steps.push(fan.step("start", None));
    steps.push(chain.step("start", None));
    steps.push(Step::new("list concurrent", "graphctl list", ""));
    for verb in ["wait", "stats", "destroy"] {
        steps.push(fan.step(verb, None));
        steps.push(chain.step(verb, None));
    }
    for graph in slow_consumer_graphs() {
        steps.extend(graph.build_steps());
        steps.extend(graph.run_steps());
    }
    steps
}

/// 20,000 scalars from source to sink: all arrive with the reference run's checksum, the channel offered and
/// delivered exactly 20,000 and dropped none, and the sink's `items_per_s` is its items over the graph's
/// `elapsed_ns`, above 0.
pub fn basic_throughput(replies: &Replies) -> Result<(), String> {
    let stream = stream_graph();
    let stats = replies.ok("thr stats")?;
    equals_reference(stats, &stream)?;
    let counters = channel(stats, "src", "out")?;
    for (key, expected) in [("offered", STREAM_ITEMS), ("received", STREAM_ITEMS), ("dropped", 0), ("queued", 0)] {
        expect_value(counters, key, &Value::from(expected), "thr: channel src -> out")?;
    }
    let elapsed = number(stats, "elapsed_ns")?;
    let sink_view = op(stats, "out")?;
    let rate = number(sink_view, "items_per_s")?;
    let expected = u128::from(STREAM_ITEMS) * 1_000_000_000 / u128::from(elapsed.max(1));
    if elapsed == 0 || rate == 0 || u128::from(rate) != expected {
        return Err(format!(
            "thr: items_per_s = {STREAM_ITEMS} items over {elapsed} ns = {expected}, above 0, got {rate}"
        ));
    }
    Ok(())
}

/// Graphs fan and chain run at once (both `running` in one `list`); in each, every channel offered each item
/// of its producer, delivered all of them and dropped none (the fan-out's source feeds three channels), the
/// counters add up, and every sink has the reference run's items and checksum.
pub fn concurrent_channels(replies: &Replies) -> Result<(), String> {
    let listed = replies.ok("list concurrent")?;
    let mut running: Vec<&str> = listed["graphs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|graph| graph["state"] == "running")
        .filter_map(|graph| graph["name"].as_str())
        .collect();
    running.sort_unstable();
    if running != ["chain", "fan"] {
        return Err(format!("fan and chain running at once, got {listed}"));
    }
    for graph in [fan_graph(), chain_graph()] {
        let stats = replies.ok(&format!("{} stats", graph.name))?;
        accounting(stats, &graph)?;
        equals_reference(stats, &graph)?;
        for spec_edge in &graph.spec.edges {
            let (from, to) = (&graph.spec.ops[spec_edge.from].name, &graph.spec.ops[spec_edge.to].name);
            let counters = channel(stats, from, to)?;
            let outputs = counter(stats, from, "outputs")?;
            let context = format!("{}: channel {from} -> {to}", graph.name);
            expect_value(counters, "received", &Value::from(outputs), &context)?;
            expect_value(counters, "dropped", &Value::from(0), &context)?;
        }
    }
    Ok(())
}

/// Behind a `block` channel of 4, the source waits: `blocked_count` and `blocked_ns` above 0, `high_water` 4,
/// nothing dropped, and all 200 items reach the sink with the reference run's checksum. Under drop-newest and
/// drop-oldest the source never waits, the channel drops items (more than 0) and counts them exactly:
/// `offered` is the source's 200 = `received + dropped`, none drained at teardown, and every item received
/// reaches the sink.
pub fn backpressure(replies: &Replies) -> Result<(), String> {
    let [block, drop_newest, drop_oldest] = slow_consumer_graphs();
    let stats = replies.ok("bpb stats")?;
    equals_reference(stats, &block)?;
    let counters = channel(stats, "src", "soft")?;
    if number(counters, "blocked_count")? == 0 || number(counters, "blocked_ns")? == 0 {
        return Err(format!("bpb: the source waited for room (blocked_count, blocked_ns > 0), got {counters}"));
    }
    expect_value(counters, "high_water", &Value::from(SMALL_CAPACITY), "bpb: channel src -> soft")?;
    expect_value(counters, "dropped", &Value::from(0), "bpb: channel src -> soft")?;
    for graph in [drop_newest, drop_oldest] {
        let name = graph.name;
        let stats = replies.ok(&format!("{name} stats"))?;
        accounting(stats, &graph)?;
        let counters = channel(stats, "src", "soft")?;
        let context = format!("{name}: channel src -> soft");
        for (key, expected) in [("offered", SLOW_ITEMS), ("queued", 0), ("drained", 0), ("blocked_count", 0)] {
            expect_value(counters, key, &Value::from(expected), &context)?;
        }
        let (received, dropped) = (number(counters, "received")?, number(counters, "dropped")?);
        if dropped == 0 || received + dropped != SLOW_ITEMS {
            return Err(format!(
                "{context}: drops above 0 and received + dropped = {SLOW_ITEMS}, got {received} + {dropped}"
            ));
        }
        let arrived = number(&op(stats, "out")?["sink"], "items")?;
        if arrived != received {
            return Err(format!("{name}: the {received} items received reach the sink, got {arrived}"));
        }
    }
    Ok(())
}
