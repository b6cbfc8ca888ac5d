//! Operator graphs: what each operator does, how operators connect, and the checks before a graph runs.
//!
//! A [`GraphSpec`] is built one operator and one connection at a time (the
//! shape of `graphctl add-op` and `graphctl connect`); [`GraphSpec::validate`]
//! then finds cycles, dangling ports and type or shape mismatches and returns
//! a [`Plan`]: the operators in topological order with the type each one
//! emits. [`Operator`] is the per-item work of one operator, the same code in
//! the kernel's threads and in [`reference_run`], the single-threaded run that
//! says which checksum a sink must reach.

mod operator;
mod reference;
mod validate;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use operator::{Item, OpCounters, Operator, Payload, SinkReport};
pub use reference::{reference_run, ReferenceError, ReferenceReport};
pub use validate::{Plan, ValueType};

use crate::channel::{Overflow, MAX_CAPACITY};
use crate::tensor::{MAX_ELEMENTS, MAX_RANK};

/// Most operators in one graph.
pub const MAX_OPS: usize = 32;
/// Most connections in one graph.
pub const MAX_EDGES: usize = 64;
/// Longest operator or graph name, bytes.
pub const MAX_NAME_BYTES: usize = 32;
/// Most items a source emits.
pub const MAX_SOURCE_ITEMS: u64 = 10_000_000;
/// Largest window.
pub const MAX_WINDOW: usize = 4_096;
/// Widest layer of an inference operator's network.
pub const MAX_LAYER_WIDTH: usize = 1_024;

/// How an operator's thread is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Schedule {
    /// Round robin with the other best-effort threads; `priority` base time slices per turn.
    BestEffort { priority: u8 },
    /// A constant-bandwidth server: `budget_ns` of CPU every `period_ns`, deadline = period.
    Deadline { budget_ns: u64, period_ns: u64 },
}

/// A source: emits `count` items, tensors of `shape` (or scalars when `shape` is `None`) drawn from `seed`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourceSpec {
    /// Tensor shape; `None` for scalar items.
    pub shape: Option<Vec<usize>>,
    /// Items to emit.
    pub count: u64,
    /// Seed of the generator: item `i` is a function of the seed and `i` only.
    pub seed: u64,
    /// Items per second (paced); `None` emits as fast as the channel takes them.
    pub rate_per_s: Option<u64>,
}

/// Per-item tensor operations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum MapOp {
    /// Adds a constant.
    AddScalar { value: f32 },
    /// Multiplies by a constant.
    MulScalar { value: f32 },
    /// max(x, 0).
    Relu,
    /// Softmax over the last axis.
    Softmax,
    /// Reverses the axes.
    Transpose,
    /// Same elements, another shape.
    Reshape { shape: Vec<usize> },
    /// `x · W`, W a `[k, cols]` tensor drawn from `seed` once when the operator starts.
    Matmul { cols: usize, seed: u64 },
    /// Sum of all elements, to a scalar.
    Sum,
    /// Mean of all elements, to a scalar.
    Mean,
    /// Elementwise sum of two inputs (broadcast), one item from each.
    Add,
    /// Elementwise difference of two inputs (broadcast), input 0 minus input 1.
    Sub,
    /// Elementwise product of two inputs (broadcast).
    Mul,
}

impl MapOp {
    /// Inputs the operation takes per item (1 or 2).
    pub fn arity(&self) -> usize {
        match self {
            MapOp::Add | MapOp::Sub | MapOp::Mul => 2,
            _ => 1,
        }
    }

    /// The name `graphctl add-op map --op NAME` takes.
    pub fn name(&self) -> &'static str {
        match self {
            MapOp::AddScalar { .. } => "add-scalar",
            MapOp::MulScalar { .. } => "mul-scalar",
            MapOp::Relu => "relu",
            MapOp::Softmax => "softmax",
            MapOp::Transpose => "transpose",
            MapOp::Reshape { .. } => "reshape",
            MapOp::Matmul { .. } => "matmul",
            MapOp::Sum => "sum",
            MapOp::Mean => "mean",
            MapOp::Add => "add",
            MapOp::Sub => "sub",
            MapOp::Mul => "mul",
        }
    }
}

/// How a window combines its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// Elementwise sum (tensors) or sum (scalars).
    Sum,
    /// Elementwise mean (tensors) or mean (scalars).
    Mean,
    /// Largest value (scalars only).
    Max,
}

impl Aggregate {
    /// Parses `sum`, `mean` or `max`.
    pub fn parse(text: &str) -> Option<Aggregate> {
        match text {
            "sum" => Some(Aggregate::Sum),
            "mean" => Some(Aggregate::Mean),
            "max" => Some(Aggregate::Max),
            _ => None,
        }
    }
}

/// What an operator does.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OpKind {
    /// Emits items.
    Source(SourceSpec),
    /// Transforms each item.
    Map(MapOp),
    /// Keeps items whose value (scalars) or mean (tensors) is at least `min`.
    Filter { min: f32 },
    /// Combines each `size` consecutive items into one (tumbling window).
    Window { size: usize, aggregate: Aggregate },
    /// Runs each tensor item through a multilayer perceptron (`sis_ai::Network`) with `layers` sizes drawn
    /// from `seed`; the item's element count must equal the first layer's.
    Infer { layers: Vec<usize>, seed: u64 },
    /// Consumes items: counts them, folds their checksums, measures end-to-end latency against
    /// `deadline_ns` when given.
    Sink { deadline_ns: Option<u64> },
}

impl OpKind {
    /// The kind's name, as `graphctl add-op` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Source(_) => "source",
            OpKind::Map(_) => "map",
            OpKind::Filter { .. } => "filter",
            OpKind::Window { .. } => "window",
            OpKind::Infer { .. } => "infer",
            OpKind::Sink { .. } => "sink",
        }
    }

    /// Every kind name, for help and errors.
    pub const NAMES: [&'static str; 6] = ["source", "map", "filter", "window", "infer", "sink"];

    /// Input ports.
    pub fn inputs(&self) -> usize {
        match self {
            OpKind::Source(_) => 0,
            OpKind::Map(op) => op.arity(),
            _ => 1,
        }
    }

    /// Whether the operator emits items (every kind but the sink).
    pub fn has_output(&self) -> bool {
        !matches!(self, OpKind::Sink { .. })
    }
}

/// One operator of a graph.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpSpec {
    /// Unique within the graph.
    pub name: String,
    /// What it does.
    pub kind: OpKind,
    /// How its thread is scheduled.
    pub schedule: Schedule,
}

/// A connection: items of `from` go to input `port` of `to` through a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EdgeSpec {
    /// Index of the producing operator.
    pub from: usize,
    /// Index of the consuming operator.
    pub to: usize,
    /// Input port of `to` (0 or 1; the order of `connect` calls).
    pub port: usize,
    /// Channel capacity in items.
    pub capacity: usize,
    /// What the channel does when full.
    pub overflow: Overflow,
}

/// Why a graph was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphError {
    /// A name is empty, too long, or not letters, digits, `-`, `_`.
    BadName { name: String },
    /// Another operator has this name.
    DuplicateOp { name: String },
    /// No operator has this name.
    NoSuchOp { name: String },
    /// [`MAX_OPS`] operators or [`MAX_EDGES`] connections already.
    TooBig { what: &'static str, max: usize },
    /// An option is outside its range (the message says which).
    BadOption { op: String, reason: String },
    /// A sink has no output to connect from.
    NoOutput { op: String },
    /// Every input port of the operator is connected already (a source has none).
    PortsFull { op: String, inputs: usize },
    /// An operator connected to itself.
    SelfLoop { op: String },
    /// The two operators are connected already.
    DuplicateEdge { from: String, to: String },
    /// Channel capacity outside 1..=[`MAX_CAPACITY`].
    Capacity { requested: usize, max: usize },
    /// The connections form a cycle through these operators.
    Cycle { path: Vec<String> },
    /// An input port is not connected.
    DanglingInput { op: String, port: usize },
    /// An operator's output goes nowhere.
    DanglingOutput { op: String },
    /// The graph has no source or no sink.
    Incomplete { missing: &'static str },
    /// An input's type cannot be taken by the operator (e.g. a scalar into a matmul).
    TypeMismatch { op: String, expected: String, found: String },
    /// Tensor shapes do not fit the operation.
    Shape { op: String, operation: &'static str, left: Vec<usize>, right: Vec<usize> },
}

impl GraphError {
    /// Stable code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            GraphError::BadName { .. } => "bad-name",
            GraphError::DuplicateOp { .. } => "duplicate-op",
            GraphError::NoSuchOp { .. } => "no-such-op",
            GraphError::TooBig { .. } => "graph-too-big",
            GraphError::BadOption { .. } => "bad-option",
            GraphError::NoOutput { .. } => "no-output",
            GraphError::PortsFull { .. } => "ports-full",
            GraphError::SelfLoop { .. } => "self-loop",
            GraphError::DuplicateEdge { .. } => "duplicate-edge",
            GraphError::Capacity { .. } => "bad-capacity",
            GraphError::Cycle { .. } => "cycle",
            GraphError::DanglingInput { .. } => "dangling-input",
            GraphError::DanglingOutput { .. } => "dangling-output",
            GraphError::Incomplete { .. } => "incomplete",
            GraphError::TypeMismatch { .. } => "type-mismatch",
            GraphError::Shape { .. } => "shape-mismatch",
        }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::BadName { name } => {
                write!(formatter, "bad name {name:?}: 1 to {MAX_NAME_BYTES} letters, digits, '-' or '_'")
            }
            GraphError::DuplicateOp { name } => write!(formatter, "an operator named {name} exists already"),
            GraphError::NoSuchOp { name } => write!(formatter, "no operator named {name}"),
            GraphError::TooBig { what, max } => write!(formatter, "at most {max} {what} per graph"),
            GraphError::BadOption { op, reason } => write!(formatter, "{op}: {reason}"),
            GraphError::NoOutput { op } => write!(formatter, "{op} is a sink: it has no output to connect"),
            GraphError::PortsFull { op, inputs: 0 } => write!(formatter, "{op} is a source: it takes no input"),
            GraphError::PortsFull { op, inputs } => {
                write!(formatter, "{op} takes {inputs} input(s) and all are connected")
            }
            GraphError::SelfLoop { op } => write!(formatter, "{op} cannot feed itself"),
            GraphError::DuplicateEdge { from, to } => write!(formatter, "{from} is connected to {to} already"),
            GraphError::Capacity { requested, max } => {
                write!(formatter, "channel capacity {requested} outside 1..={max}")
            }
            GraphError::Cycle { path } => write!(formatter, "cycle: {}", path.join(" -> ")),
            GraphError::DanglingInput { op, port } => write!(formatter, "input {port} of {op} is not connected"),
            GraphError::DanglingOutput { op } => write!(formatter, "the output of {op} is not connected"),
            GraphError::Incomplete { missing } => write!(formatter, "the graph has no {missing}"),
            GraphError::TypeMismatch { op, expected, found } => {
                write!(formatter, "{op} takes {expected}, its input is {found}")
            }
            GraphError::Shape { op, operation, left, right } => {
                write!(formatter, "{op}: {operation} does not fit shapes {left:?} and {right:?}")
            }
        }
    }
}

/// A graph under construction: operators and connections, checked as they are added and as a whole by
/// [`GraphSpec::validate`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GraphSpec {
    /// Operators in the order they were added.
    pub ops: Vec<OpSpec>,
    /// Connections in the order they were made.
    pub edges: Vec<EdgeSpec>,
}

/// Whether `name` is 1 to [`MAX_NAME_BYTES`] ASCII letters, digits, `-` or `_`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl GraphSpec {
    /// An empty graph.
    pub fn new() -> Self {
        GraphSpec::default()
    }

    /// Index of the operator named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.ops.iter().position(|op| op.name == name)
    }

    /// Adds an operator after checking its name and options; returns its index.
    pub fn add_op(&mut self, op: OpSpec) -> Result<usize, GraphError> {
        if !is_valid_name(&op.name) {
            return Err(GraphError::BadName { name: op.name });
        }
        if self.find(&op.name).is_some() {
            return Err(GraphError::DuplicateOp { name: op.name });
        }
        if self.ops.len() >= MAX_OPS {
            return Err(GraphError::TooBig { what: "operators", max: MAX_OPS });
        }
        check_options(&op)?;
        self.ops.push(op);
        Ok(self.ops.len() - 1)
    }

    /// Connects the output of `from` to the next free input of `to`; returns the port used.
    pub fn connect(&mut self, from: &str, to: &str, capacity: usize, overflow: Overflow) -> Result<usize, GraphError> {
        let from_index = self.find(from).ok_or_else(|| GraphError::NoSuchOp { name: from.into() })?;
        let to_index = self.find(to).ok_or_else(|| GraphError::NoSuchOp { name: to.into() })?;
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(GraphError::Capacity { requested: capacity, max: MAX_CAPACITY });
        }
        if !self.ops[from_index].kind.has_output() {
            return Err(GraphError::NoOutput { op: from.into() });
        }
        if from_index == to_index {
            return Err(GraphError::SelfLoop { op: from.into() });
        }
        if self.edges.iter().any(|edge| edge.from == from_index && edge.to == to_index) {
            return Err(GraphError::DuplicateEdge { from: from.into(), to: to.into() });
        }
        let inputs = self.ops[to_index].kind.inputs();
        let port = self.edges.iter().filter(|edge| edge.to == to_index).count();
        if port >= inputs {
            return Err(GraphError::PortsFull { op: to.into(), inputs });
        }
        if self.edges.len() >= MAX_EDGES {
            return Err(GraphError::TooBig { what: "connections", max: MAX_EDGES });
        }
        self.edges.push(EdgeSpec { from: from_index, to: to_index, port, capacity, overflow });
        Ok(port)
    }
}

/// Checks one operator's options against their ranges.
fn check_options(op: &OpSpec) -> Result<(), GraphError> {
    let bad = |reason: String| Err(GraphError::BadOption { op: op.name.clone(), reason });
    let check_shape = |shape: &[usize]| -> Result<(), GraphError> {
        let elements = shape.iter().try_fold(1usize, |product, &dimension| product.checked_mul(dimension));
        if shape.is_empty() || shape.len() > MAX_RANK || shape.contains(&0) {
            return Err(GraphError::BadOption {
                op: op.name.clone(),
                reason: alloc::format!("shape {shape:?} needs 1 to {MAX_RANK} dimensions, none 0"),
            });
        }
        match elements {
            Some(elements) if elements <= MAX_ELEMENTS => Ok(()),
            _ => Err(GraphError::BadOption {
                op: op.name.clone(),
                reason: alloc::format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"),
            }),
        }
    };
    if let Schedule::BestEffort { priority } = op.schedule {
        if !(1..=8).contains(&priority) {
            return bad(alloc::format!("priority {priority} outside 1..=8"));
        }
    }
    match &op.kind {
        OpKind::Source(source) => {
            if let Some(shape) = &source.shape {
                check_shape(shape)?;
            }
            if !(1..=MAX_SOURCE_ITEMS).contains(&source.count) {
                return bad(alloc::format!("count {} outside 1..={MAX_SOURCE_ITEMS}", source.count));
            }
            if source.rate_per_s == Some(0) {
                return bad("rate 0 items per second".into());
            }
        }
        OpKind::Map(MapOp::Reshape { shape }) => check_shape(shape)?,
        OpKind::Map(MapOp::Matmul { cols, .. }) if *cols == 0 || *cols > MAX_LAYER_WIDTH => {
            return bad(alloc::format!("matmul columns {cols} outside 1..={MAX_LAYER_WIDTH}"))
        }
        OpKind::Map(MapOp::AddScalar { value } | MapOp::MulScalar { value }) if !value.is_finite() => {
            return bad(alloc::format!("value {value} is not finite"))
        }
        OpKind::Filter { min } if min.is_nan() => return bad("filter minimum is NaN".into()),
        OpKind::Window { size, .. } if !(1..=MAX_WINDOW).contains(size) => {
            return bad(alloc::format!("window size {size} outside 1..={MAX_WINDOW}"))
        }
        OpKind::Infer { layers, .. }
            if layers.len() < 2
                || layers.len() > 6
                || layers.iter().any(|&width| width == 0 || width > MAX_LAYER_WIDTH) =>
        {
            return bad(alloc::format!("layers {layers:?}: 2 to 6 sizes, each 1..={MAX_LAYER_WIDTH}"))
        }
        OpKind::Sink { deadline_ns: Some(0) } => return bad("deadline 0".into()),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
