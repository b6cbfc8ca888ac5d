//! Graph construction, validation and reference runs.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::channel::Overflow;
use crate::tensor::{Budget, Tensor};

const BEST_EFFORT: Schedule = Schedule::BestEffort { priority: 1 };

fn op(name: &str, kind: OpKind) -> OpSpec {
    OpSpec { name: name.to_string(), kind, schedule: BEST_EFFORT }
}

fn source(name: &str, shape: Option<Vec<usize>>, count: u64, seed: u64) -> OpSpec {
    op(name, OpKind::Source(SourceSpec { shape, count, seed, rate_per_s: None }))
}

fn sink(name: &str) -> OpSpec {
    op(name, OpKind::Sink { deadline_ns: None })
}

fn graph(ops: Vec<OpSpec>, edges: &[(&str, &str)]) -> Result<GraphSpec, GraphError> {
    let mut graph = GraphSpec::new();
    for op in ops {
        graph.add_op(op)?;
    }
    for (from, to) in edges {
        graph.connect(from, to, 8, Overflow::Block)?;
    }
    Ok(graph)
}

fn pipeline() -> GraphSpec {
    graph(
        vec![
            source("src", Some(vec![4, 8]), 10, 7),
            op("scale", OpKind::Map(MapOp::MulScalar { value: 0.5 })),
            op("proj", OpKind::Map(MapOp::Matmul { cols: 3, seed: 11 })),
            op("act", OpKind::Map(MapOp::Relu)),
            sink("out"),
        ],
        &[("src", "scale"), ("scale", "proj"), ("proj", "act"), ("act", "out")],
    )
    .unwrap()
}

#[test]
fn a_pipeline_validates_with_the_types_each_stage_emits() {
    let plan = pipeline().validate().unwrap();
    assert_eq!(plan.order, vec![0, 1, 2, 3, 4]);
    assert_eq!(plan.output_types[1], Some(ValueType::Tensor(vec![4, 8])));
    assert_eq!(plan.output_types[2], Some(ValueType::Tensor(vec![4, 3])));
    assert_eq!(plan.output_types[4], None);
    assert_eq!(plan.inputs[2], vec![1]);
    assert_eq!(plan.outputs[0], vec![0]);
}

#[test]
fn the_reference_run_equals_the_stages_applied_by_hand() {
    let budget = Budget::new(1 << 20);
    let report = reference_run(&pipeline(), &budget).unwrap();
    let weights = Tensor::random(&budget, &[8, 3], 11).unwrap();
    let expected = sink_checksum((0..10).map(|seq| {
        let input = Tensor::random(&budget, &[4, 8], operator::item_seed(7, seq)).unwrap();
        input.mul_scalar(0.5).unwrap().matmul(&weights).unwrap().relu().unwrap().checksum()
    }));
    let (name, sink) = &report.sinks[0];
    assert_eq!(name, "out");
    assert_eq!(sink.items, 10);
    assert_eq!(sink.checksum, expected);
    assert_eq!(report.operators[2].1, OpCounters { inputs: 10, outputs: 10, ..OpCounters::default() });
    drop(weights);
    // Every tensor of the run is gone: the budget is back to zero.
    assert_eq!(budget.stats().used_bytes, 0);
}

/// A sink's checksum over items with these checksums, written out here as docs/dataflow.md defines it:
/// FNV-1a 64 over each item checksum's 8 little-endian bytes, in arrival order.
fn sink_checksum(items: impl IntoIterator<Item = u64>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for item in items {
        for byte in item.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
    hash
}

#[test]
fn fan_out_and_a_binary_join_see_every_item_once() {
    let graph = graph(
        vec![
            source("a", Some(vec![2, 2]), 5, 1),
            op("double", OpKind::Map(MapOp::MulScalar { value: 2.0 })),
            op("sum", OpKind::Map(MapOp::Add)),
            sink("out"),
        ],
        &[("a", "double"), ("a", "sum"), ("double", "sum"), ("sum", "out")],
    )
    .unwrap();
    let budget = Budget::new(1 << 20);
    let report = reference_run(&graph, &budget).unwrap();
    let expected = sink_checksum((0..5).map(|seq| {
        let x = Tensor::random(&budget, &[2, 2], operator::item_seed(1, seq)).unwrap();
        // Port 0 is the first connection (the source itself), port 1 the doubled copy.
        x.add(&x.mul_scalar(2.0).unwrap()).unwrap().checksum()
    }));
    assert_eq!(report.sinks[0].1.items, 5);
    assert_eq!(report.sinks[0].1.checksum, expected);
    assert_eq!(report.operators[2].1.inputs, 10);
}

#[test]
fn windows_filters_and_scalars_count_exactly() {
    let graph = graph(
        vec![
            source("s", None, 100, 3),
            op("positive", OpKind::Filter { min: 0.0 }),
            op("win", OpKind::Window { size: 4, aggregate: Aggregate::Max }),
            sink("out"),
        ],
        &[("s", "positive"), ("positive", "win"), ("win", "out")],
    )
    .unwrap();
    let report = reference_run(&graph, &Budget::new(1024)).unwrap();
    let mut random = sis_ai::Random::new(3);
    let values: Vec<f32> = (0..100).map(|_| random.between(-1.0, 1.0)).filter(|&value| value >= 0.0).collect();
    let filter = report.operators[1].1;
    assert_eq!(filter.inputs, 100);
    assert_eq!(filter.outputs, values.len() as u64);
    assert_eq!(filter.filtered, 100 - values.len() as u64);
    let windows = values.len() / 4;
    assert_eq!(report.operators[2].1.outputs, windows as u64);
    assert_eq!(report.operators[2].1.held, (values.len() % 4) as u64);
    let expected = sink_checksum(
        values
            .chunks_exact(4)
            .map(|chunk| Payload::Scalar(chunk.iter().copied().fold(f32::NEG_INFINITY, f32::max)).checksum()),
    );
    assert_eq!(report.sinks[0].1.checksum, expected);
}

#[test]
fn inference_runs_the_kernel_network() {
    let graph = graph(
        vec![
            source("s", Some(vec![2, 3]), 3, 9),
            op("net", OpKind::Infer { layers: vec![6, 5, 2], seed: 4 }),
            sink("out"),
        ],
        &[("s", "net"), ("net", "out")],
    )
    .unwrap();
    assert_eq!(graph.validate().unwrap().output_types[1], Some(ValueType::Tensor(vec![2])));
    let budget = Budget::new(1 << 16);
    let report = reference_run(&graph, &budget).unwrap();
    let network = sis_ai::Network::new(&[6, 5, 2], &mut sis_ai::Random::new(4));
    let expected = sink_checksum((0..3).map(|seq| {
        let input = Tensor::random(&budget, &[2, 3], operator::item_seed(9, seq)).unwrap();
        Tensor::from_vec(&budget, &[2], network.forward(&input.to_vec())).unwrap().checksum()
    }));
    assert_eq!(report.sinks[0].1.checksum, expected);
}

#[test]
fn wrong_connections_are_refused_with_their_reason_and_change_nothing() {
    let mut graph =
        graph(vec![source("s", Some(vec![2]), 1, 0), op("m", OpKind::Map(MapOp::Relu)), sink("k")], &[("s", "m")])
            .unwrap();
    let before = graph.clone();
    let refuse = |graph: &mut GraphSpec, from: &str, to: &str, capacity: usize| {
        let error = graph.connect(from, to, capacity, Overflow::Block).unwrap_err();
        (error.code(), error.to_string())
    };
    assert_eq!(refuse(&mut graph, "k", "m", 4), ("no-output", "k is a sink: it has no output to connect".into()));
    assert_eq!(refuse(&mut graph, "m", "s", 4), ("ports-full", "s is a source: it takes no input".into()));
    assert_eq!(refuse(&mut graph, "s", "m", 4), ("duplicate-edge", "s is connected to m already".into()));
    assert_eq!(refuse(&mut graph, "m", "m", 4), ("self-loop", "m cannot feed itself".into()));
    assert_eq!(refuse(&mut graph, "m", "nope", 4), ("no-such-op", "no operator named nope".into()));
    assert_eq!(refuse(&mut graph, "m", "k", 0).0, "bad-capacity");
    assert_eq!(refuse(&mut graph, "m", "k", crate::channel::MAX_CAPACITY + 1).0, "bad-capacity");
    assert_eq!(graph, before);
    graph.add_op(sink("k2")).unwrap();
    graph.connect("m", "k", 4, Overflow::Block).unwrap();
    assert_eq!(refuse(&mut graph, "s", "k", 4), ("ports-full", "k takes 1 input(s) and all are connected".into()));
}

#[test]
fn validation_names_cycles_dangling_ports_and_missing_ends() {
    let mut cyclic = graph(
        vec![
            source("s", Some(vec![2]), 1, 0),
            op("a", OpKind::Map(MapOp::Add)),
            op("b", OpKind::Map(MapOp::Relu)),
            sink("k"),
        ],
        &[("s", "a"), ("a", "b"), ("b", "a"), ("b", "k")],
    )
    .unwrap();
    let error = cyclic.validate().unwrap_err();
    assert_eq!(error.code(), "cycle");
    assert!(matches!(&error, GraphError::Cycle { path } if path.len() == 3 && path[0] == path[2]), "{error}");
    cyclic.edges.clear();
    assert_eq!(cyclic.validate().unwrap_err(), GraphError::DanglingInput { op: "a".into(), port: 0 });

    let dangling =
        graph(vec![source("s", Some(vec![2]), 1, 0), op("m", OpKind::Map(MapOp::Relu)), sink("k")], &[("s", "k")])
            .unwrap();
    assert_eq!(dangling.validate().unwrap_err(), GraphError::DanglingInput { op: "m".into(), port: 0 });
    let no_sink = graph(vec![source("s", Some(vec![2]), 1, 0)], &[]).unwrap();
    assert_eq!(no_sink.validate().unwrap_err(), GraphError::Incomplete { missing: "sink" });
    let no_source = graph(vec![sink("k")], &[]).unwrap();
    assert_eq!(no_source.validate().unwrap_err(), GraphError::Incomplete { missing: "source" });
    let unused =
        graph(vec![source("s", Some(vec![2]), 1, 0), source("t", Some(vec![2]), 1, 0), sink("k")], &[("s", "k")])
            .unwrap();
    assert_eq!(unused.validate().unwrap_err(), GraphError::DanglingOutput { op: "t".into() });
}

#[test]
fn type_and_shape_mismatches_are_found_before_start() {
    let check = |ops: Vec<OpSpec>, edges: &[(&str, &str)]| graph(ops, edges).unwrap().validate().unwrap_err();
    let error = check(
        vec![source("s", None, 1, 0), op("mm", OpKind::Map(MapOp::Matmul { cols: 2, seed: 0 })), sink("k")],
        &[("s", "mm"), ("mm", "k")],
    );
    assert_eq!(error.to_string(), "mm takes a tensor, its input is scalar");
    let error = check(
        vec![
            source("a", Some(vec![2, 3]), 1, 0),
            source("b", Some(vec![4, 3]), 1, 0),
            op("add", OpKind::Map(MapOp::Add)),
            sink("k"),
        ],
        &[("a", "add"), ("b", "add"), ("add", "k")],
    );
    assert_eq!(error.to_string(), "add: add does not fit shapes [2, 3] and [4, 3]");
    let error = check(
        vec![source("a", Some(vec![2, 3]), 1, 0), op("r", OpKind::Map(MapOp::Reshape { shape: vec![5] })), sink("k")],
        &[("a", "r"), ("r", "k")],
    );
    assert_eq!(error.code(), "shape-mismatch");
    let error = check(
        vec![source("a", Some(vec![7]), 1, 0), op("n", OpKind::Infer { layers: vec![6, 2], seed: 0 }), sink("k")],
        &[("a", "n"), ("n", "k")],
    );
    assert_eq!(error.to_string(), "n: inference does not fit shapes [7] and [6]");
    let error = check(
        vec![
            source("a", Some(vec![2]), 1, 0),
            op("w", OpKind::Window { size: 2, aggregate: Aggregate::Max }),
            sink("k"),
        ],
        &[("a", "w"), ("w", "k")],
    );
    assert_eq!(error.code(), "type-mismatch");
    // Broadcasting [2, 3] with [3] is fine.
    let ok = graph(
        vec![
            source("a", Some(vec![2, 3]), 1, 0),
            source("b", Some(vec![3]), 1, 0),
            op("add", OpKind::Map(MapOp::Add)),
            sink("k"),
        ],
        &[("a", "add"), ("b", "add"), ("add", "k")],
    )
    .unwrap();
    assert_eq!(ok.validate().unwrap().output_types[2], Some(ValueType::Tensor(vec![2, 3])));
}

#[test]
fn bad_options_and_names_are_refused() {
    let mut graph = GraphSpec::new();
    let code = |graph: &mut GraphSpec, spec: OpSpec| graph.add_op(spec).unwrap_err().code();
    assert_eq!(code(&mut graph, source("", Some(vec![2]), 1, 0)), "bad-name");
    assert_eq!(code(&mut graph, source("a b", Some(vec![2]), 1, 0)), "bad-name");
    assert_eq!(code(&mut graph, source("s", Some(vec![1 << 12, 1 << 12]), 1, 0)), "bad-option");
    assert_eq!(code(&mut graph, source("s", Some(vec![usize::MAX, 2]), 1, 0)), "bad-option");
    assert_eq!(code(&mut graph, source("s", Some(vec![2, 0]), 1, 0)), "bad-option");
    assert_eq!(code(&mut graph, source("s", Some(vec![1, 1, 1, 1, 1]), 1, 0)), "bad-option");
    assert_eq!(code(&mut graph, source("s", Some(vec![2]), 0, 0)), "bad-option");
    assert_eq!(code(&mut graph, op("w", OpKind::Window { size: 0, aggregate: Aggregate::Sum })), "bad-option");
    assert_eq!(code(&mut graph, op("n", OpKind::Infer { layers: vec![4], seed: 0 })), "bad-option");
    let mut priority = sink("k");
    priority.schedule = Schedule::BestEffort { priority: 9 };
    assert_eq!(code(&mut graph, priority), "bad-option");
    assert!(graph.ops.is_empty());
    graph.add_op(sink("k")).unwrap();
    assert_eq!(code(&mut graph, sink("k")), "duplicate-op");
    for index in 1..MAX_OPS {
        graph.add_op(sink(&alloc::format!("k{index}"))).unwrap();
    }
    assert_eq!(code(&mut graph, sink("last")), "graph-too-big");
}

#[test]
fn a_lossy_channel_has_no_reference() {
    let mut graph = graph(vec![source("s", Some(vec![2]), 1, 0), sink("k")], &[]).unwrap();
    graph.connect("s", "k", 2, Overflow::DropOldest).unwrap();
    assert_eq!(reference_run(&graph, &Budget::new(64)).unwrap_err(), ReferenceError::Lossy { edge: 0 });
}

#[test]
fn a_budget_too_small_fails_items_and_counts_them() {
    let graph = graph(vec![source("s", Some(vec![16]), 4, 0), sink("k")], &[("s", "k")]).unwrap();
    // 64 bytes hold one 16-element tensor at a time.
    let report = reference_run(&graph, &Budget::new(64)).unwrap();
    assert_eq!(report.sinks[0].1.items, 4);
    let report = reference_run(&graph, &Budget::new(63)).unwrap();
    assert_eq!(report.sinks[0].1.items, 0);
    assert_eq!(report.operators[0].1.failed, 4);
    assert_eq!(report.operators[0].1.last_error, Some("budget-exceeded"));
}

#[test]
fn broadcast_shapes_follow_numpy() {
    assert_eq!(validate::broadcast_shape(&[2, 3], &[3]), Some(vec![2, 3]));
    assert_eq!(validate::broadcast_shape(&[4, 1], &[1, 5]), Some(vec![4, 5]));
    assert_eq!(validate::broadcast_shape(&[2], &[3]), None);
}

mod random_graphs {
    use proptest::prelude::*;

    use super::*;

    fn kind(choice: u8, a: usize, b: usize) -> OpKind {
        let shape = vec![1 + a % 4, 1 + b % 4];
        match choice % 12 {
            0 => OpKind::Source(SourceSpec {
                shape: Some(shape),
                count: 1 + (a % 5) as u64,
                seed: b as u64,
                rate_per_s: None,
            }),
            1 => {
                OpKind::Source(SourceSpec { shape: None, count: 1 + (b % 5) as u64, seed: a as u64, rate_per_s: None })
            }
            2 => OpKind::Map(MapOp::Matmul { cols: 1 + a % 3, seed: b as u64 }),
            3 => OpKind::Map(MapOp::Add),
            4 => OpKind::Map(MapOp::Softmax),
            5 => OpKind::Map(MapOp::Reshape { shape }),
            6 => OpKind::Map(MapOp::Sum),
            7 => OpKind::Map(MapOp::Transpose),
            8 => OpKind::Filter { min: (a as f32) / 10.0 - 0.5 },
            9 => {
                OpKind::Window { size: 1 + a % 3, aggregate: [Aggregate::Sum, Aggregate::Mean, Aggregate::Max][b % 3] }
            }
            10 => OpKind::Infer { layers: vec![1 + a % 8, 2], seed: b as u64 },
            _ => OpKind::Sink { deadline_ns: None },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any sequence of operators and connections is either refused with a typed error or validates; a graph
        /// that validates runs to completion, and nothing panics on the way.
        #[test]
        fn random_graphs_never_panic(
            ops in proptest::collection::vec((any::<u8>(), 0usize..16, 0usize..16), 1..8),
            edges in proptest::collection::vec((0usize..10, 0usize..10, 1usize..4), 0..6),
        ) {
            // A source first, a sink last and a chain between them, so that many graphs validate; the extra
            // edges then make joins, fan-outs, cycles and refusals.
            let mut graph = GraphSpec::new();
            let last = ops.len() + 1;
            let _ = graph.add_op(op("op0", kind(ops[0].0 % 2, ops[0].1, ops[0].2)));
            for (index, (choice, a, b)) in ops.iter().enumerate() {
                // Middle operators are neither sources nor sinks (kinds 2..=10).
                let _ = graph.add_op(op(&alloc::format!("op{}", index + 1), kind(2 + choice % 9, *a, *b)));
            }
            let _ = graph.add_op(op(&alloc::format!("op{last}"), OpKind::Sink { deadline_ns: None }));
            let chain = (0..last).map(|index| (index, index + 1, 2));
            for (from, to, capacity) in chain.chain(edges) {
                let before = graph.clone();
                if graph.connect(&alloc::format!("op{from}"), &alloc::format!("op{to}"), capacity, Overflow::Block).is_err() {
                    prop_assert_eq!(&graph, &before);
                }
            }
            if graph.validate().is_ok() {
                let budget = Budget::new(1 << 20);
                let report = reference_run(&graph, &budget).unwrap();
                prop_assert!(!report.sinks.is_empty());
                drop(report);
            }
        }
    }
}
