//! The per-item work of each operator, shared by the kernel's operator threads and the reference run.

use alloc::sync::Arc;
use alloc::vec::Vec;

use sis_ai::{Network, Random};
use sis_metrics::{LatencyHistogram, LatencySummary};

use super::{Aggregate, MapOp, OpKind, SourceSpec};
use crate::tensor::{Budget, Tensor, TensorError};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// What an item carries.
#[derive(Debug)]
pub enum Payload {
    /// A tensor, charged to the graph's budget while it lives.
    Tensor(Tensor),
    /// One value.
    Scalar(f32),
}

impl Payload {
    /// The tensor's checksum, or FNV-1a 64 of the scalar's bits (little endian).
    pub fn checksum(&self) -> u64 {
        match self {
            Payload::Tensor(tensor) => tensor.checksum(),
            Payload::Scalar(value) => fold(FNV_OFFSET, &value.to_bits().to_le_bytes()),
        }
    }

    /// A copy, for an output that feeds several channels (a tensor copy is charged to the budget).
    pub fn try_clone(&self) -> Result<Payload, TensorError> {
        Ok(match self {
            Payload::Tensor(tensor) => Payload::Tensor(tensor.try_clone()?),
            Payload::Scalar(value) => Payload::Scalar(*value),
        })
    }
}

/// One message on a channel.
#[derive(Debug)]
pub struct Item {
    /// Sequence number: the source's item index (a combined item carries its newest input's).
    pub seq: u64,
    /// When its oldest ingredient left a source, ns (end-to-end latency is measured from here).
    pub born_ns: u64,
    /// The data.
    pub payload: Payload,
}

impl Item {
    /// A copy with the same sequence number and birth time.
    pub fn try_clone(&self) -> Result<Item, TensorError> {
        Ok(Item { seq: self.seq, born_ns: self.born_ns, payload: self.payload.try_clone()? })
    }
}

/// Items through one operator. For every kind but the window, `inputs = outputs x arity + filtered + failed`
/// once its thread has finished an item; a window also holds up to `size - 1` items (`held`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpCounters {
    /// Items taken from input channels (all ports).
    pub inputs: u64,
    /// Items emitted (each goes to every output channel).
    pub outputs: u64,
    /// Items a filter rejected.
    pub filtered: u64,
    /// Items lost to an error (e.g. the budget refused a tensor); `last_error` says which.
    pub failed: u64,
    /// Items a window holds toward its next output.
    pub held: u64,
    /// Copies for an output that feeds several channels which the budget refused (that channel misses the item).
    pub failed_copies: u64,
    /// Code of the last error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'static str>,
}

/// What a sink has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SinkReport {
    /// Items consumed.
    pub items: u64,
    /// FNV-1a 64 over each item's checksum (8 bytes, little endian) in arrival order.
    pub checksum: u64,
    /// Items whose end-to-end latency exceeded the sink's deadline.
    pub deadline_misses: u64,
    /// The sink's deadline, if it has one.
    pub deadline_ns: Option<u64>,
    /// End-to-end latency: arrival at the sink minus birth at the source.
    pub latency: LatencySummary,
}

enum State {
    Source {
        spec: SourceSpec,
        next: u64,
        random: Random,
    },
    Map {
        op: MapOp,
        weights: Option<Tensor>,
    },
    Filter {
        min: f32,
    },
    Window {
        size: usize,
        aggregate: Aggregate,
        held: Vec<Item>,
    },
    Infer {
        network: Network,
    },
    Sink {
        deadline_ns: Option<u64>,
        items: u64,
        checksum: u64,
        misses: u64,
        latency: alloc::boxed::Box<LatencyHistogram>,
    },
}

/// One operator's state and counters.
pub struct Operator {
    state: State,
    budget: Arc<Budget>,
    counters: OpCounters,
}

impl core::fmt::Debug for Operator {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Operator").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl Operator {
    /// Builds the operator; a matmul's weights are drawn now and charged to `budget`.
    pub fn new(kind: &OpKind, budget: &Arc<Budget>) -> Result<Operator, TensorError> {
        let state = match kind {
            OpKind::Source(spec) => State::Source { spec: spec.clone(), next: 0, random: Random::new(spec.seed) },
            OpKind::Map(MapOp::Matmul { cols, seed }) => State::Map {
                op: MapOp::Matmul { cols: *cols, seed: *seed },
                // The row count is known only from the first item; weights are drawn then.
                weights: None,
            },
            OpKind::Map(op) => State::Map { op: op.clone(), weights: None },
            OpKind::Filter { min } => State::Filter { min: *min },
            OpKind::Window { size, aggregate } => {
                State::Window { size: *size, aggregate: *aggregate, held: Vec::with_capacity(*size) }
            }
            OpKind::Infer { layers, seed } => State::Infer { network: Network::new(layers, &mut Random::new(*seed)) },
            OpKind::Sink { deadline_ns } => State::Sink {
                deadline_ns: *deadline_ns,
                items: 0,
                checksum: FNV_OFFSET,
                misses: 0,
                latency: alloc::boxed::Box::new(LatencyHistogram::new()),
            },
        };
        Ok(Operator { state, budget: Arc::clone(budget), counters: OpCounters::default() })
    }

    /// The counters so far.
    pub fn counters(&self) -> OpCounters {
        self.counters
    }

    /// A source's next item (`None` once it has emitted `count`); an item the budget refused counts as
    /// failed and is skipped.
    pub fn next_item(&mut self, now_ns: u64) -> Option<Item> {
        let State::Source { spec, next, random } = &mut self.state else { return None };
        while *next < spec.count {
            let seq = *next;
            *next += 1;
            let payload = match &spec.shape {
                None => Ok(Payload::Scalar(random.between(-1.0, 1.0))),
                Some(shape) => Tensor::random(&self.budget, shape, item_seed(spec.seed, seq)).map(Payload::Tensor),
            };
            match payload {
                Ok(payload) => {
                    self.counters.outputs += 1;
                    return Some(Item { seq, born_ns: now_ns, payload });
                }
                Err(error) => {
                    self.counters.failed += 1;
                    self.counters.last_error = Some(error.code());
                }
            }
        }
        None
    }

    /// Items a source has left to emit.
    pub fn remaining(&self) -> u64 {
        match &self.state {
            State::Source { spec, next, .. } => spec.count - next,
            _ => 0,
        }
    }

    /// Processes one item from each input port (in port order, taken out of `inputs`, which is left empty
    /// with its capacity for the next call); returns the item to emit, if any.
    pub fn process(&mut self, inputs: &mut Vec<Item>, now_ns: u64) -> Option<Item> {
        self.counters.inputs += inputs.len() as u64;
        let seq = inputs.iter().map(|item| item.seq).max().unwrap_or(0);
        let born_ns = inputs.iter().map(|item| item.born_ns).min().unwrap_or(now_ns);
        let result = match &mut self.state {
            State::Source { .. } => {
                inputs.clear();
                Ok(None)
            }
            State::Map { op, weights } => map(op, weights, &self.budget, inputs.drain(..)).map(Some),
            State::Filter { min } => {
                let item = inputs.pop().expect("a filter has one input");
                match value_of(&item.payload) {
                    Ok(value) if value >= *min => return self.emit(Item { seq, born_ns, payload: item.payload }),
                    Ok(_) => {
                        self.counters.filtered += 1;
                        return None;
                    }
                    Err(error) => Err(error),
                }
            }
            State::Window { size, aggregate, held } => {
                held.append(inputs);
                if held.len() < *size {
                    self.counters.held = held.len() as u64;
                    return None;
                }
                let items = core::mem::replace(held, Vec::with_capacity(*size));
                self.counters.held = 0;
                let born_ns = items.iter().map(|item| item.born_ns).min().unwrap_or(now_ns);
                let seq = items.last().map_or(0, |item| item.seq);
                return match combine(*aggregate, items) {
                    Ok(payload) => self.emit(Item { seq, born_ns, payload }),
                    Err((error, lost)) => {
                        self.fail(&error);
                        self.counters.failed += lost - 1;
                        None
                    }
                };
            }
            State::Infer { network } => match inputs.pop().map(|item| item.payload) {
                Some(Payload::Tensor(tensor)) => {
                    let output = network.forward(&tensor.to_vec());
                    drop(tensor);
                    let width = output.len();
                    Tensor::from_vec(&self.budget, &[width], output).map(|tensor| Some(Payload::Tensor(tensor)))
                }
                _ => Ok(None),
            },
            State::Sink { deadline_ns, items, checksum, misses, latency } => {
                for item in inputs.drain(..) {
                    *items += 1;
                    *checksum = fold(*checksum, &item.payload.checksum().to_le_bytes());
                    let elapsed_ns = now_ns.saturating_sub(item.born_ns);
                    latency.record(elapsed_ns);
                    if deadline_ns.is_some_and(|deadline| elapsed_ns > deadline) {
                        *misses += 1;
                    }
                }
                return None;
            }
        };
        match result {
            Ok(Some(payload)) => self.emit(Item { seq, born_ns, payload }),
            Ok(None) => None,
            Err(error) => {
                self.fail(&error);
                None
            }
        }
    }

    /// A sink's figures (`None` for other kinds).
    pub fn sink_report(&self) -> Option<SinkReport> {
        let State::Sink { deadline_ns, items, checksum, misses, latency } = &self.state else { return None };
        Some(SinkReport {
            items: *items,
            checksum: *checksum,
            deadline_misses: *misses,
            deadline_ns: *deadline_ns,
            latency: latency.summary(),
        })
    }

    /// Drops the items a window holds (when its graph stops).
    pub fn release_held(&mut self) -> u64 {
        match &mut self.state {
            State::Window { held, .. } => {
                let count = held.len() as u64;
                held.clear();
                held.shrink_to_fit();
                self.counters.held = 0;
                count
            }
            _ => 0,
        }
    }

    /// Counts an item whose copy for one of several outputs the budget refused.
    pub fn count_failed_copy(&mut self, error: &TensorError) {
        self.counters.failed_copies += 1;
        self.counters.last_error = Some(error.code());
    }

    fn emit(&mut self, item: Item) -> Option<Item> {
        self.counters.outputs += 1;
        Some(item)
    }

    fn fail(&mut self, error: &TensorError) {
        self.counters.failed += 1;
        self.counters.last_error = Some(error.code());
    }
}

/// The seed of a tensor source's item `seq`.
pub fn item_seed(seed: u64, seq: u64) -> u64 {
    seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn fold(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
    }
    hash
}

/// A filter's value: the scalar, or the tensor's mean.
fn value_of(payload: &Payload) -> Result<f32, TensorError> {
    match payload {
        Payload::Scalar(value) => Ok(*value),
        Payload::Tensor(tensor) => Ok(tensor.mean(None)?.to_vec()[0]),
    }
}

fn map(
    op: &MapOp,
    weights: &mut Option<Tensor>,
    budget: &Arc<Budget>,
    inputs: impl Iterator<Item = Item>,
) -> Result<Payload, TensorError> {
    let mut payloads = inputs.map(|item| item.payload);
    let first = payloads.next().expect("a map has an input");
    if let (MapOp::Add | MapOp::Sub | MapOp::Mul, Some(second)) = (op, payloads.next()) {
        return Ok(match (first, second) {
            (Payload::Scalar(a), Payload::Scalar(b)) => Payload::Scalar(match op {
                MapOp::Add => a + b,
                MapOp::Sub => a - b,
                _ => a * b,
            }),
            (Payload::Tensor(a), Payload::Tensor(b)) => Payload::Tensor(match op {
                MapOp::Add => a.add(&b)?,
                MapOp::Sub => a.sub(&b)?,
                _ => a.mul(&b)?,
            }),
            // Validation gives both inputs the same type.
            (first, _) => first,
        });
    }
    Ok(match (op, first) {
        (MapOp::AddScalar { value }, Payload::Scalar(x)) => Payload::Scalar(x + value),
        (MapOp::MulScalar { value }, Payload::Scalar(x)) => Payload::Scalar(x * value),
        (MapOp::Relu, Payload::Scalar(x)) => Payload::Scalar(if x > 0.0 { x } else { 0.0 }),
        (op, Payload::Scalar(x)) => {
            debug_assert!(false, "validation lets no scalar into {}", op.name());
            Payload::Scalar(x)
        }
        (op, Payload::Tensor(x)) => match op {
            MapOp::AddScalar { value } => Payload::Tensor(x.add_scalar(*value)?),
            MapOp::MulScalar { value } => Payload::Tensor(x.mul_scalar(*value)?),
            MapOp::Relu => Payload::Tensor(x.relu()?),
            MapOp::Softmax => Payload::Tensor(x.softmax()?),
            MapOp::Transpose => Payload::Tensor(x.transpose()?),
            MapOp::Reshape { shape } => Payload::Tensor(x.reshape(shape)?),
            MapOp::Matmul { cols, seed } => {
                if weights.is_none() {
                    let rows = *x.shape().last().expect("validated: 2-D");
                    *weights = Some(Tensor::random(budget, &[rows, *cols], *seed)?);
                }
                Payload::Tensor(x.matmul(weights.as_ref().expect("drawn above"))?)
            }
            MapOp::Sum => Payload::Scalar(x.sum(None)?.to_vec()[0]),
            MapOp::Mean => Payload::Scalar(x.mean(None)?.to_vec()[0]),
            MapOp::Add | MapOp::Sub | MapOp::Mul => Payload::Tensor(x),
        },
    })
}

/// Combines a full window; on an error, the error and how many items were lost.
fn combine(aggregate: Aggregate, items: Vec<Item>) -> Result<Payload, (TensorError, u64)> {
    let count = items.len() as u64;
    let mut payloads = items.into_iter().map(|item| item.payload);
    let first = payloads.next().expect("a window has at least one item");
    match first {
        Payload::Scalar(first) => {
            let values = core::iter::once(first).chain(payloads.filter_map(|payload| match payload {
                Payload::Scalar(value) => Some(value),
                Payload::Tensor(_) => None,
            }));
            Ok(Payload::Scalar(match aggregate {
                Aggregate::Sum => values.fold(0.0, |sum, value| sum + value),
                Aggregate::Mean => values.fold(0.0, |sum, value| sum + value) / count as f32,
                Aggregate::Max => values.fold(f32::NEG_INFINITY, f32::max),
            }))
        }
        Payload::Tensor(first) => {
            let mut sum = first;
            for payload in payloads {
                if let Payload::Tensor(tensor) = payload {
                    sum = sum.add(&tensor).map_err(|error| (error, count))?;
                }
            }
            if aggregate == Aggregate::Mean {
                sum = sum.mul_scalar(1.0 / count as f32).map_err(|error| (error, count))?;
            }
            Ok(Payload::Tensor(sum))
        }
    }
}
