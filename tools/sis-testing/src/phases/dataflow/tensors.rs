//! Tensor Operations: `tensorctl` tensors and operations replayed on the host with the same library and a
//! budget of the same size, and a three-stage tensor pipeline graph against the reference run.

use std::sync::Arc;

use serde_json::Value;
use sis_dataflow::graph::MapOp;
use sis_dataflow::tensor::{Budget, Tensor, TensorError};

use super::checks::equals_reference;
use super::execution::started_as_planned;
use super::graphs::{best_effort, edge, map, sink, source, Graph};
use super::{expect_value, Replies, Step};

/// The store's budget while the tensors are made (`tensorctl budget`, KiB): the kernel's default, 8 MiB.
const STORE_BUDGET_KIB: u64 = 8 * 1024;
/// A budget too small for a 16x32 tensor (2 KiB), KiB.
const SMALL_BUDGET_KIB: u64 = 1;
/// Values a `create` or `op` reply shows.
const SHOWN: usize = 16;

/// How a tensor is filled.
#[derive(Clone, Copy)]
enum Fill {
    Zeros,
    Constant(f32),
    Random(u64),
    Arange(f32, f32),
    Values(&'static [f32]),
}

/// `tensorctl create NAME --shape ...`.
struct Creation {
    name: &'static str,
    shape: &'static [usize],
    fill: Fill,
}

const fn create(name: &'static str, shape: &'static [usize], fill: Fill) -> Creation {
    Creation { name, shape, fill }
}

/// Every way to fill, then the operands of the operations (`a` 2x3, `b` 1x3 to broadcast, `m` 3x4).
const CREATIONS: [Creation; 8] = [
    create("v", &[2, 3], Fill::Values(&[1.0, -2.0, 3.5, 0.0, 0.25, -0.125])),
    create("f", &[3, 3], Fill::Constant(0.75)),
    create("r", &[4, 5], Fill::Random(42)),
    create("ar", &[2, 2, 3], Fill::Arange(-1.0, 0.5)),
    create("z", &[5], Fill::Zeros),
    create("a", &[2, 3], Fill::Values(&[0.5, -1.5, 2.0, -0.25, 3.0, -4.0])),
    create("b", &[1, 3], Fill::Values(&[1.0, 0.5, -2.0])),
    create("m", &[3, 4], Fill::Random(7)),
];

/// `tensorctl op OP A [B] --out OUT`, with `--value`, `--axis` or `--shape`.
struct Operation {
    out: &'static str,
    op: &'static str,
    a: &'static str,
    b: Option<&'static str>,
    value: Option<f32>,
    axis: Option<usize>,
    shape: Option<&'static [usize]>,
}

const fn operation(out: &'static str, op: &'static str, a: &'static str, b: Option<&'static str>) -> Operation {
    Operation { out, op, a, b, value: None, axis: None, shape: None }
}

/// Every operation (the last four refused: shapes that do not broadcast, a matmul whose inner lengths differ,
/// a reshape to another element count, an axis that does not exist).
const OPERATIONS: [Operation; 19] = [
    operation("o-add", "add", "a", Some("b")),
    operation("o-sub", "sub", "a", Some("b")),
    operation("o-mul", "mul", "b", Some("a")),
    operation("o-matmul", "matmul", "a", Some("m")),
    operation("o-relu", "relu", "a", None),
    operation("o-softmax", "softmax", "m", None),
    operation("o-sum", "sum", "a", None),
    Operation { axis: Some(0), ..operation("o-sum0", "sum", "a", None) },
    operation("o-mean", "mean", "r", None),
    Operation { axis: Some(1), ..operation("o-mean1", "mean", "a", None) },
    operation("o-tr", "transpose", "m", None),
    Operation { shape: Some(&[2, 6]), ..operation("o-trr", "reshape", "o-tr", None) },
    Operation { shape: Some(&[3, 2]), ..operation("o-rs", "reshape", "a", None) },
    Operation { value: Some(1.5), ..operation("o-adds", "add-scalar", "a", None) },
    Operation { value: Some(-0.5), ..operation("o-muls", "mul-scalar", "m", None) },
    operation("x-broadcast", "add", "a", Some("m")),
    operation("x-inner", "matmul", "a", Some("a")),
    Operation { shape: Some(&[4, 2]), ..operation("x-reshape", "reshape", "a", None) },
    Operation { axis: Some(3), ..operation("x-axis", "sum", "a", None) },
];

fn dims(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

fn floats(values: &[f32]) -> String {
    values.iter().map(f32::to_string).collect::<Vec<_>>().join(",")
}

impl Creation {
    fn step(&self) -> Step {
        let fill = match self.fill {
            Fill::Zeros => String::new(),
            Fill::Constant(value) => format!(" --fill {value}"),
            Fill::Random(seed) => format!(" --random {seed}"),
            Fill::Arange(start, step) => format!(" --arange {start},{step}"),
            Fill::Values(values) => format!(" --values {}", floats(values)),
        };
        Step::new(
            format!("create {}", self.name),
            "tensorctl create",
            format!("{} --shape {}{fill}", self.name, dims(self.shape)),
        )
    }

    fn tensor(&self, budget: &Arc<Budget>) -> Result<Tensor, TensorError> {
        match self.fill {
            Fill::Zeros => Tensor::zeros(budget, self.shape),
            Fill::Constant(value) => Tensor::full(budget, self.shape, value),
            Fill::Random(seed) => Tensor::random(budget, self.shape, seed),
            Fill::Arange(start, step) => Tensor::arange(budget, self.shape, start, step),
            Fill::Values(values) => Tensor::from_vec(budget, self.shape, values.to_vec()),
        }
    }
}

impl Operation {
    fn step(&self) -> Step {
        let b = self.b.map_or(String::new(), |b| format!(" {b}"));
        let value = self.value.map_or(String::new(), |value| format!(" --value {value}"));
        let axis = self.axis.map_or(String::new(), |axis| format!(" --axis {axis}"));
        let shape = self.shape.map_or(String::new(), |shape| format!(" --shape {}", dims(shape)));
        Step::new(
            format!("op {}", self.out),
            "tensorctl op",
            format!("{} {}{b} --out {}{value}{axis}{shape}", self.op, self.a, self.out),
        )
    }

    /// The operation on the host's tensors, as `tensorctl op` dispatches it.
    fn apply(&self, store: &[(&str, Tensor)]) -> Result<Tensor, TensorError> {
        let find = |name| &store.iter().find(|(stored, _)| *stored == name).expect("operands are made first").1;
        let x = find(self.a);
        let y = || find(self.b.expect("binary operations name B"));
        match self.op {
            "add" => x.add(y()),
            "sub" => x.sub(y()),
            "mul" => x.mul(y()),
            "matmul" => x.matmul(y()),
            "relu" => x.relu(),
            "softmax" => x.softmax(),
            "sum" => x.sum(self.axis),
            "mean" => x.mean(self.axis),
            "transpose" => x.transpose(),
            "reshape" => x.reshape(self.shape.unwrap_or_default()),
            "add-scalar" => x.add_scalar(self.value.unwrap_or_default()),
            _ => x.mul_scalar(self.value.unwrap_or_default()),
        }
    }
}

/// A matmul, relu and softmax over 4x8 tensors.
fn pipeline_graph() -> Graph {
    Graph::new(
        "tp",
        vec![
            best_effort("src", source(&[4, 8], 50, 31)),
            best_effort("mm", map(MapOp::Matmul { cols: 6, seed: 32 })),
            best_effort("rel", map(MapOp::Relu)),
            best_effort("soft", map(MapOp::Softmax)),
            best_effort("out", sink()),
        ],
        &[edge("src", "mm"), edge("mm", "rel"), edge("rel", "soft"), edge("soft", "out")],
    )
}

/// A budget refusal on a 1 KiB store, the default budget back, every creation, a full `show`, a shape too large;
/// every operation; `free --all`; the pipeline graph.
pub fn steps() -> Vec<Step> {
    let mut steps = vec![
        Step::new("budget small", "tensorctl budget", SMALL_BUDGET_KIB.to_string()),
        Step::new("create over budget", "tensorctl create", "big --shape 16x32"),
        Step::new("list small", "tensorctl list", ""),
        Step::new("budget default", "tensorctl budget", STORE_BUDGET_KIB.to_string()),
    ];
    steps.extend(CREATIONS.iter().map(Creation::step));
    steps.push(Step::new("show r", "tensorctl show", "r --limit 4096"));
    steps.push(Step::new("create huge", "tensorctl create", "huge --shape 100000x100000"));
    steps.extend(OPERATIONS.iter().map(Operation::step));
    steps.push(Step::new("free all", "tensorctl free", "--all"));
    let pipeline = pipeline_graph();
    steps.extend(pipeline.build_steps());
    steps.extend(pipeline.run_steps());
    steps
}

/// A `create`, `op` or `show` reply describes `tensor` exactly: shape, strides, contiguity, length, bytes, the
/// checksum (16 hex digits), the first `shown` values bit for bit, and the store's budget equals `budget`.
fn describes(reply: &Value, tensor: &Tensor, shown: usize, budget: &Budget, label: &str) -> Result<(), String> {
    let values = tensor.to_vec();
    let expected = serde_json::json!({
        "shape": tensor.shape(), "strides": tensor.strides(), "contiguous": tensor.is_contiguous(),
        "len": tensor.len(), "bytes": tensor.bytes(), "checksum": format!("{:016x}", tensor.checksum()),
        "budget": budget.stats(),
    });
    for key in ["shape", "strides", "contiguous", "len", "bytes", "checksum", "budget"] {
        expect_value(reply, key, &expected[key], label)?;
    }
    let got: Vec<Option<u32>> = reply["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|value| value.as_f64().map(|value| (value as f32).to_bits()))
        .collect();
    let want: Vec<Option<u32>> = values.iter().take(shown).map(|value| Some(value.to_bits())).collect();
    if got != want {
        return Err(format!("{label}: values {:?}, got {}", &values[..shown.min(values.len())], reply["values"]));
    }
    Ok(())
}

/// On a 1 KiB store a 16x32 tensor is refused with `budget-exceeded` and the host's message, counted as one
/// refusal, nothing charged. Then, on an 8 MiB store, each way to fill (values, a constant, a seed, a range,
/// zeros) gives exactly the host's tensor (shape, strides, values, checksum) and the store's budget the
/// figures of a host budget that made the same tensors; `show --limit 4096` gives all 20 values of the random
/// one; a 100000x100000 shape is refused with `too-large`.
pub fn tensor_creation(replies: &Replies) -> Result<(), String> {
    let small = Budget::new(SMALL_BUDGET_KIB * 1024);
    expect_value(&replies.ok("budget small")?["budget"], "limit_bytes", &Value::from(1024), "tensorctl budget")?;
    let refusal = Tensor::zeros(&small, &[16, 32]).err().ok_or("the host refuses 16x32 in 1 KiB too")?;
    replies.refused("create over budget", refusal.code(), &refusal.to_string())?;
    let listed = replies.ok("list small")?;
    expect_value(listed, "budget", &serde_json::to_value(small.stats()).map_err(|e| e.to_string())?, "list small")?;
    expect_value(listed, "tensors", &serde_json::json!([]), "list small")?;
    replies.ok("budget default")?;
    let budget = Budget::new(STORE_BUDGET_KIB * 1024);
    let mut store = Vec::new();
    for creation in &CREATIONS {
        let tensor = creation.tensor(&budget).map_err(|error| format!("create {}: {error}", creation.name))?;
        let label = format!("create {}", creation.name);
        describes(replies.ok(&label)?, &tensor, SHOWN, &budget, &label)?;
        store.push(tensor);
    }
    let random = &store[2];
    describes(replies.ok("show r")?, random, random.len(), &budget, "show r")?;
    let too_large = Tensor::zeros(&budget, &[100_000, 100_000]).err().ok_or("the host refuses 100000x100000 too")?;
    replies.refused("create huge", too_large.code(), &too_large.to_string())
}

/// Each operation gives exactly the host's result (shape, strides, values, checksum, the store's budget after
/// it): add, sub and mul broadcasting a 1x3 over a 2x3, matmul, relu, softmax, sum and mean of all elements and
/// along an axis, transpose (a view sharing storage), reshape of a view (a copy) and of a contiguous tensor (a
/// view), add-scalar and mul-scalar. Shapes that do not broadcast, a matmul of 2x3 by 2x3, a reshape to 8
/// elements and axis 3 of a matrix are refused with the host's code and message. `free --all` frees the 21
/// tensors and leaves nothing charged.
pub fn tensor_operations(replies: &Replies) -> Result<(), String> {
    let budget = Budget::new(STORE_BUDGET_KIB * 1024);
    let mut store: Vec<(&str, Tensor)> = Vec::new();
    for creation in &CREATIONS {
        store.push((creation.name, creation.tensor(&budget).map_err(|error| error.to_string())?));
    }
    for operation in &OPERATIONS {
        let label = format!("op {}", operation.out);
        match operation.apply(&store) {
            Ok(tensor) => {
                let reply = replies.ok(&label)?;
                let operands: Vec<&str> = std::iter::once(operation.a).chain(operation.b).collect();
                expect_value(reply, "op", &Value::from(operation.op), &label)?;
                expect_value(reply, "operands", &serde_json::json!(operands), &label)?;
                describes(reply, &tensor, SHOWN, &budget, &label)?;
                store.push((operation.out, tensor));
            }
            Err(error) => replies.refused(&label, error.code(), &error.to_string())?,
        }
    }
    let freed = replies.ok("free all")?;
    expect_value(freed, "freed", &Value::from(store.len()), "free --all")?;
    drop(store);
    expect_value(freed, "budget", &serde_json::to_value(budget.stats()).map_err(|e| e.to_string())?, "free --all")?;
    if budget.stats().used_bytes != 0 {
        return Err(format!("the host's budget empty after freeing, got {:?}", budget.stats()));
    }
    Ok(())
}

/// Graph tp (4x8 tensors through matmul, relu and softmax) starts with the host's plan and its sink gets the
/// reference run's items and checksum; every stage's counters equal the reference run's.
pub fn tensor_pipelines(replies: &Replies) -> Result<(), String> {
    let pipeline = pipeline_graph();
    started_as_planned(replies.ok("tp start")?, &pipeline)?;
    let stats = replies.ok("tp stats")?;
    expect_value(stats, "state", &Value::from("finished"), "tp")?;
    equals_reference(stats, &pipeline)
}
