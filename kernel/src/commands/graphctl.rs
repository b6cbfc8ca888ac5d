//! `graphctl`: dataflow graphs of operators on kernel threads (the graphs themselves: `crate::dataflow`).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::json;
use sis_dataflow::channel::Overflow;
use sis_dataflow::graph::{Aggregate, MapOp, OpKind, Schedule, SourceSpec};
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::dataflow::{self, DataflowError, GraphView};
use crate::format;

const NAME: ValueKind = ValueKind::Str;
const KINDS: &[&str] = &["source", "map", "filter", "window", "infer", "sink"];
const MAP_OPS: &[&str] = &[
    "add-scalar",
    "mul-scalar",
    "relu",
    "softmax",
    "transpose",
    "reshape",
    "matmul",
    "sum",
    "mean",
    "add",
    "sub",
    "mul",
];
/// Longest server period or budget: 1 s.
const MAX_SERVER_US: u64 = 1_000_000;
const FLOAT: ValueKind = ValueKind::Custom { value_name: "X", parse: parse_float };
const DIMENSIONS: ValueKind = ValueKind::Custom { value_name: "AxB...", parse: parse_dimensions };

/// `graphctl`.
pub static GRAPHCTL: CommandSpec<Kernel> = CommandSpec {
    name: "graphctl",
    summary: "Dataflow graphs: operators on kernel threads connected by bounded channels, moving tensors",
    description: "Build a graph with create, add-op and connect; start validates it (cycles, dangling ports, type and shape mismatches) and runs one thread per operator: best effort with a priority, or under a CBS server (--budget-us/--period-us, admission applies). Channels are single-producer single-consumer queues with an overflow policy. Tensors are charged to the graph's budget. Kinds, options and JSON fields: docs/dataflow.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "create",
            summary: "Make an empty graph",
            description: "",
            args: &[
                ArgSpec::positional("graph", NAME, "graph name (letters, digits, - and _)").required(),
                ArgSpec::flag("budget-kib", ValueKind::U64 { min: 1, max: dataflow::MAX_BUDGET_BYTES / 1024 }, "tensor budget, KiB")
                    .default("4096"),
            ],
            subcommands: &[],
            handler: Some(create),
        },
        CommandSpec {
            name: "add-op",
            summary: "Add an operator of KIND (source, map, filter, window, infer, sink) with its options",
            description: "source: --shape AxB (omit for scalars) --count N --seed S [--rate N per s]. map: --op add-scalar|mul-scalar (--value X), relu, softmax, transpose, reshape (--shape), matmul (--cols N --seed S: x times a [k, N] weight drawn from S), sum, mean (to a scalar), add|sub|mul (two inputs, broadcast). filter: --min X (keeps scalars, or tensors by mean, >= X). window: --size N --aggregate sum|mean|max. infer: --layers 8,16,4 --seed S (a sis-ai network). sink: [--deadline-us N] (end-to-end, per item). Scheduling: --priority 1..8 (best effort, slices per turn) or --budget-us Q --period-us T (CBS server).",
            args: &[
                ArgSpec::positional("graph", NAME, "graph name").required(),
                ArgSpec::positional("kind", ValueKind::Choice(KINDS), "operator kind").required(),
                ArgSpec::flag("name", NAME, "operator name (default KIND-INDEX)"),
                ArgSpec::flag("priority", ValueKind::U64 { min: 1, max: 8 }, "best-effort priority"),
                ArgSpec::flag("budget-us", ValueKind::U64 { min: 1, max: MAX_SERVER_US }, "CBS budget per period, µs"),
                ArgSpec::flag("period-us", ValueKind::U64 { min: 1, max: MAX_SERVER_US }, "CBS period (= deadline), µs"),
                ArgSpec::flag("shape", DIMENSIONS, "tensor shape, e.g. 4x8"),
                ArgSpec::flag("count", ValueKind::U64 { min: 1, max: sis_dataflow::graph::MAX_SOURCE_ITEMS }, "items a source emits"),
                ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "generator seed"),
                ArgSpec::flag("rate", ValueKind::U64 { min: 1, max: 1_000_000 }, "source items per second (default: as fast as taken)"),
                ArgSpec::flag("op", ValueKind::Choice(MAP_OPS), "map operation"),
                ArgSpec::flag("value", FLOAT, "add-scalar / mul-scalar constant"),
                ArgSpec::flag("cols", ValueKind::U64 { min: 1, max: sis_dataflow::graph::MAX_LAYER_WIDTH as u64 }, "matmul output columns"),
                ArgSpec::flag("min", FLOAT, "filter threshold"),
                ArgSpec::flag("size", ValueKind::U64 { min: 1, max: sis_dataflow::graph::MAX_WINDOW as u64 }, "window size"),
                ArgSpec::flag("aggregate", ValueKind::Choice(&["sum", "mean", "max"]), "window aggregate"),
                ArgSpec::flag("layers", DIMENSIONS, "network layer sizes, e.g. 8,16,4"),
                ArgSpec::flag("deadline-us", ValueKind::U64 { min: 1, max: 10_000_000 }, "sink: end-to-end deadline per item, µs"),
            ],
            subcommands: &[],
            handler: Some(add_op),
        },
        CommandSpec {
            name: "connect",
            summary: "Connect FROM's output to TO's next free input through a bounded channel",
            description: "Binary maps take their inputs in connection order (first = left operand). An output may feed several channels: each gets every item (tensors are copied).",
            args: &[
                ArgSpec::positional("graph", NAME, "graph name").required(),
                ArgSpec::positional("from", NAME, "producing operator").required(),
                ArgSpec::positional("to", NAME, "consuming operator").required(),
                ArgSpec::flag("capacity", ValueKind::U64 { min: 0, max: u64::MAX }, "channel capacity, items (1..=65536)").default("16"),
                ArgSpec::flag("overflow", ValueKind::Choice(&["block", "drop-newest", "drop-oldest"]), "what a full channel does").default("block"),
            ],
            subcommands: &[],
            handler: Some(connect),
        },
        CommandSpec {
            name: "start",
            summary: "Validate the graph and start one thread per operator",
            description: "",
            args: &[ArgSpec::positional("graph", NAME, "graph name").required()],
            subcommands: &[],
            handler: Some(start),
        },
        CommandSpec {
            name: "wait",
            summary: "Wait until a running graph finishes (its sources' last items reached the sinks)",
            description: "",
            args: &[
                ArgSpec::positional("graph", NAME, "graph name").required(),
                ArgSpec::flag("timeout-ms", ValueKind::U64 { min: 1, max: 3_600_000 }, "give up after").default("60000"),
            ],
            subcommands: &[],
            handler: Some(wait),
        },
        CommandSpec {
            name: "stop",
            summary: "Stop a running graph: every thread returns; queued items stay in the channels until destroy",
            description: "",
            args: &[ArgSpec::positional("graph", NAME, "graph name").required()],
            subcommands: &[],
            handler: Some(stop),
        },
        CommandSpec {
            name: "status",
            summary: "A graph's state, operators (kind, schedule, thread) and connections",
            description: "",
            args: &[ArgSpec::positional("graph", NAME, "graph name").required()],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "stats",
            summary: "A graph's counters: items per operator, channel traffic, drops, blocked time, sinks' checksums and latency",
            description: "Per channel offered = received + dropped + queued. Per operator inputs = outputs x arity + filtered + failed (+ held, for a window) once idle.",
            args: &[ArgSpec::positional("graph", NAME, "graph name").required()],
            subcommands: &[],
            handler: Some(stats),
        },
        CommandSpec {
            name: "destroy",
            summary: "Stop a graph if it runs, join its threads, and free its channels and tensors",
            description: "",
            args: &[ArgSpec::positional("graph", NAME, "graph name").required()],
            subcommands: &[],
            handler: Some(destroy),
        },
        CommandSpec {
            name: "list",
            summary: "Every graph with its state and size",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(list),
        },
    ],
    handler: None,
};

fn parse_float(text: &str) -> Result<ArgValue, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() => Ok(ArgValue::Str(text.into())),
        _ => Err(alloc::format!("{text:?} is not a finite number")),
    }
}

fn parse_dimensions(text: &str) -> Result<ArgValue, String> {
    dimensions(text).map(|_| ArgValue::Str(text.into()))
}

/// `4x8` or `8,16,4`: 1 to 8 sizes, each 1..=2^24.
fn dimensions(text: &str) -> Result<Vec<usize>, String> {
    match super::sizes::split(text) {
        Some(sizes)
            if !sizes.is_empty() && sizes.len() <= 8 && sizes.iter().all(|&size| (1..=1 << 24).contains(&size)) =>
        {
            Ok(sizes)
        }
        _ => Err(alloc::format!("{text:?}: sizes 1..=16777216 separated by x or ,")),
    }
}

fn error(error: DataflowError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}

fn graph_name(invocation: &Invocation<'_>) -> String {
    String::from(invocation.args.str("graph").unwrap_or_default())
}

fn create(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = graph_name(invocation);
    let budget_bytes = invocation.args.u64("budget-kib").unwrap_or(4096) * 1024;
    dataflow::create(&name, budget_bytes).map_err(error)?;
    Ok(Reply::new(
        alloc::format!("graph {name} created, tensor budget {} KiB", format::thousands(budget_bytes / 1024)),
        json!({ "graph": name, "state": "building", "budget_bytes": budget_bytes }),
    ))
}

fn missing(option: &str, kind: &str) -> ShellError {
    ShellError::new("missing-option", alloc::format!("{kind} needs --{option}"))
}

fn float(invocation: &Invocation<'_>, name: &str) -> Option<f32> {
    invocation.args.str(name).and_then(|text| text.parse().ok())
}

/// The operator kind and options from the flags.
fn kind_from(invocation: &Invocation<'_>) -> Result<OpKind, ShellError> {
    let args = &invocation.args;
    let kind = args.str("kind").unwrap_or_default();
    let seed = args.u64("seed").unwrap_or(0);
    let shape = args.str("shape").map(dimensions).transpose().map_err(|reason| ShellError::new("bad-shape", reason))?;
    Ok(match kind {
        "source" => OpKind::Source(SourceSpec {
            shape,
            count: args.u64("count").ok_or_else(|| missing("count", "a source"))?,
            seed,
            rate_per_s: args.u64("rate"),
        }),
        "map" => {
            let op = args.str("op").ok_or_else(|| missing("op", "a map"))?;
            OpKind::Map(match op {
                "add-scalar" => {
                    MapOp::AddScalar { value: float(invocation, "value").ok_or_else(|| missing("value", op))? }
                }
                "mul-scalar" => {
                    MapOp::MulScalar { value: float(invocation, "value").ok_or_else(|| missing("value", op))? }
                }
                "relu" => MapOp::Relu,
                "softmax" => MapOp::Softmax,
                "transpose" => MapOp::Transpose,
                "reshape" => MapOp::Reshape { shape: shape.ok_or_else(|| missing("shape", op))? },
                "matmul" => MapOp::Matmul { cols: args.u64("cols").ok_or_else(|| missing("cols", op))? as usize, seed },
                "sum" => MapOp::Sum,
                "mean" => MapOp::Mean,
                "add" => MapOp::Add,
                "sub" => MapOp::Sub,
                _ => MapOp::Mul,
            })
        }
        "filter" => OpKind::Filter { min: float(invocation, "min").ok_or_else(|| missing("min", "a filter"))? },
        "window" => OpKind::Window {
            size: args.u64("size").ok_or_else(|| missing("size", "a window"))? as usize,
            aggregate: Aggregate::parse(args.str("aggregate").unwrap_or("sum")).unwrap_or(Aggregate::Sum),
        },
        "infer" => OpKind::Infer {
            layers: args
                .str("layers")
                .map(dimensions)
                .transpose()
                .map_err(|reason| ShellError::new("bad-layers", reason))?
                .ok_or_else(|| missing("layers", "an infer operator"))?,
            seed,
        },
        _ => OpKind::Sink { deadline_ns: args.u64("deadline-us").map(|us| us * 1_000) },
    })
}

fn schedule_from(invocation: &Invocation<'_>) -> Result<Schedule, ShellError> {
    let args = &invocation.args;
    match (args.u64("priority"), args.u64("budget-us"), args.u64("period-us")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ShellError::new(
            "conflicting-options",
            "--priority (best effort) and --budget-us/--period-us (CBS server) exclude each other",
        )),
        (_, Some(budget_us), Some(period_us)) if budget_us > period_us => Err(ShellError::new(
            "bad-server",
            alloc::format!("--budget-us {budget_us} exceeds --period-us {period_us}"),
        )),
        (_, Some(budget_us), Some(period_us)) => {
            Ok(Schedule::Deadline { budget_ns: budget_us * 1_000, period_ns: period_us * 1_000 })
        }
        (_, Some(_), None) | (_, None, Some(_)) => {
            Err(ShellError::new("bad-server", "a CBS server needs both --budget-us and --period-us"))
        }
        (priority, None, None) => Ok(Schedule::BestEffort { priority: priority.unwrap_or(1) as u8 }),
    }
}

fn add_op(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    let kind = kind_from(invocation)?;
    let schedule = schedule_from(invocation)?;
    let name = invocation.args.str("name").map(String::from);
    let (index, spec) = dataflow::add_op(&graph, name, kind, schedule).map_err(error)?;
    Ok(Reply::new(
        alloc::format!(
            "{graph}: operator {index} {} ({}) added, {}",
            spec.name,
            describe_kind(&spec.kind),
            describe_schedule(spec.schedule)
        ),
        json!({ "graph": graph, "index": index, "op": spec }),
    ))
}

fn connect(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    let args = &invocation.args;
    let (from, to) = (args.str("from").unwrap_or_default(), args.str("to").unwrap_or_default());
    let capacity = usize::try_from(args.u64("capacity").unwrap_or(16)).unwrap_or(usize::MAX);
    let overflow = Overflow::parse(args.str("overflow").unwrap_or("block")).unwrap_or(Overflow::Block);
    let port = dataflow::connect(&graph, from, to, capacity, overflow).map_err(error)?;
    Ok(Reply::new(
        alloc::format!("{graph}: {from} -> {to} (input {port}), capacity {capacity}, {}", overflow.name()),
        json!({ "graph": graph, "from": from, "to": to, "port": port, "capacity": capacity, "overflow": overflow }),
    ))
}

fn start(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    let plan = dataflow::start(&graph).map_err(error)?;
    let view = dataflow::view(&graph).map_err(error)?;
    let threads: Vec<u32> = view.ops.iter().map(|op| op.thread).collect();
    let order: Vec<&str> = plan.order.iter().map(|&index| view.ops[index].spec.name.as_str()).collect();
    Ok(Reply::new(
        alloc::format!("{graph}: started {} operator threads ({})", threads.len(), order.join(" -> ")),
        json!({ "graph": graph, "state": view.state, "threads": threads, "order": order, "types": plan.output_types }),
    ))
}

fn wait(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    let waited_ms = dataflow::wait(&graph, invocation.args.u64("timeout-ms").unwrap_or(60_000)).map_err(error)?;
    let view = dataflow::view(&graph).map_err(error)?;
    Ok(Reply::new(
        alloc::format!(
            "{graph}: {} after {waited_ms} ms of waiting ({} ms since start)",
            view.state.name(),
            view.elapsed_ns / 1_000_000
        ),
        json!({ "graph": graph, "state": view.state, "waited_ms": waited_ms, "elapsed_ns": view.elapsed_ns }),
    ))
}

fn stop(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    dataflow::stop(&graph).map_err(error)?;
    let view = dataflow::view(&graph).map_err(error)?;
    Ok(Reply::new(
        alloc::format!("{graph}: stopped, every operator thread returned"),
        json!({ "graph": graph, "state": view.state }),
    ))
}

fn status(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let view = dataflow::view(&graph_name(invocation)).map_err(error)?;
    let mut human = alloc::format!(
        "graph {}: {}, {} operators, {} connections, budget {} KiB",
        view.name,
        view.state.name(),
        view.ops.len(),
        view.edges.len(),
        format::thousands(view.budget_bytes / 1024)
    );
    human.push_str(&alloc::format!(
        "\n  {:<3} {:<16} {:<28} {:<24} {:>6}  {}",
        "#",
        "OPERATOR",
        "KIND",
        "SCHEDULE",
        "THREAD",
        "STATE"
    ));
    for (index, op) in view.ops.iter().enumerate() {
        human.push_str(&alloc::format!(
            "\n  {:<3} {:<16} {:<28} {:<24} {:>6}  {}",
            index,
            op.spec.name,
            describe_kind(&op.spec.kind),
            describe_schedule(op.spec.schedule),
            op.thread,
            op.thread_state
        ));
    }
    for edge in &view.edges {
        human.push_str(&alloc::format!(
            "\n  {} -> {} (input {}), capacity {}, {}",
            edge.from,
            edge.to,
            edge.port,
            edge.capacity,
            edge.overflow.name()
        ));
    }
    Ok(Reply::new(human, json!(view)))
}

fn stats(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let view = dataflow::view(&graph_name(invocation)).map_err(error)?;
    Ok(Reply::new(stats_text(&view), json!(view)))
}

fn stats_text(view: &GraphView) -> String {
    let mut human = alloc::format!("graph {}: {}, {} ms", view.name, view.state.name(), view.elapsed_ns / 1_000_000);
    if let Some(budget) = &view.budget {
        human.push_str(&alloc::format!(
            "; tensors: {} B in use ({} live), peak {} B of {} B, {} refused",
            format::thousands(budget.used_bytes),
            budget.live_tensors,
            format::thousands(budget.peak_bytes),
            format::thousands(budget.limit_bytes),
            budget.refusals
        ));
    }
    human.push_str(&alloc::format!(
        "\n  {:<16} {:>10} {:>10} {:>9} {:>7} {:>5} {:>12}",
        "OPERATOR",
        "IN",
        "OUT",
        "FILTERED",
        "FAILED",
        "HELD",
        "CPU µs"
    ));
    for op in &view.ops {
        let counters = op.counters;
        human.push_str(&alloc::format!(
            "\n  {:<16} {:>10} {:>10} {:>9} {:>7} {:>5} {:>12}",
            op.spec.name,
            counters.inputs,
            counters.outputs,
            counters.filtered,
            counters.failed,
            counters.held,
            format::thousands(op.cpu_ns / 1_000)
        ));
    }
    for edge in &view.edges {
        if let Some(stats) = &edge.stats {
            human.push_str(&alloc::format!(
                "\n  {} -> {}: offered {}, received {}, dropped {}, queued {}, high water {}/{}, blocked {} times for {} µs",
                edge.from,
                edge.to,
                stats.offered,
                stats.received,
                stats.dropped,
                stats.queued,
                stats.high_water,
                stats.capacity,
                stats.blocked_count,
                format::thousands(stats.blocked_ns / 1_000)
            ));
        }
    }
    for op in &view.ops {
        if let Some(sink) = &op.sink {
            human.push_str(&alloc::format!(
                "\n  sink {}: {} items ({} per s), checksum {:016x}, latency p50 {} µs p99 {} µs max {} µs",
                op.spec.name,
                sink.items,
                format::thousands(op.items_per_s.unwrap_or(0)),
                sink.checksum,
                format::thousands(sink.latency.p50_ns / 1_000),
                format::thousands(sink.latency.p99_ns / 1_000),
                format::thousands(sink.latency.max_ns / 1_000)
            ));
            if let Some(deadline_ns) = sink.deadline_ns {
                human.push_str(&alloc::format!(
                    ", {} of {} over the {} µs deadline",
                    sink.deadline_misses,
                    sink.items,
                    format::thousands(deadline_ns / 1_000)
                ));
            }
        }
    }
    human
}

fn destroy(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graph = graph_name(invocation);
    let destroyed = dataflow::destroy(&graph).map_err(error)?;
    let left = destroyed.budget.map_or(0, |budget| budget.used_bytes);
    Ok(Reply::new(
        alloc::format!(
            "graph {graph} destroyed: {} threads joined, {} tensor bytes returned, {left} left charged",
            destroyed.threads_joined,
            format::thousands(destroyed.bytes_returned)
        ),
        json!({ "graph": graph, "destroyed": destroyed }),
    ))
}

fn list(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let graphs = dataflow::list();
    let mut human = alloc::format!("{} graph(s)", graphs.len());
    for graph in &graphs {
        human.push_str(&alloc::format!(
            "\n  {:<16} {:<9} {:>3} operators {:>3} connections",
            graph.name,
            graph.state.name(),
            graph.ops.len(),
            graph.edges.len()
        ));
    }
    let summary: Vec<serde_json::Value> = graphs
        .iter()
        .map(|graph| json!({ "name": graph.name, "state": graph.state, "ops": graph.ops.len(), "edges": graph.edges.len(), "budget_bytes": graph.budget_bytes }))
        .collect();
    Ok(Reply::new(human, json!({ "graphs": summary })))
}

fn describe_kind(kind: &OpKind) -> String {
    match kind {
        OpKind::Source(source) => match &source.shape {
            Some(shape) => alloc::format!("source {}x{shape:?}", source.count),
            None => alloc::format!("source {} scalars", source.count),
        },
        OpKind::Map(op) => alloc::format!("map {}", op.name()),
        OpKind::Filter { min } => alloc::format!("filter >= {min}"),
        OpKind::Window { size, aggregate } => alloc::format!("window {size} {aggregate:?}"),
        OpKind::Infer { layers, .. } => alloc::format!("infer {layers:?}"),
        OpKind::Sink { deadline_ns: Some(deadline) } => alloc::format!("sink, deadline {} µs", deadline / 1_000),
        OpKind::Sink { deadline_ns: None } => String::from("sink"),
    }
}

fn describe_schedule(schedule: Schedule) -> String {
    match schedule {
        Schedule::BestEffort { priority } => alloc::format!("best effort, priority {priority}"),
        Schedule::Deadline { budget_ns, period_ns } => {
            alloc::format!("CBS {} µs / {} µs", budget_ns / 1_000, period_ns / 1_000)
        }
    }
}
