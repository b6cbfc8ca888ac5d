//! A single-threaded run of a graph: the results its sinks must reach in the kernel.
//!
//! With `block` channels nothing is lost and every channel is FIFO, so each
//! operator sees the same items in the same order however its threads are
//! scheduled: a sink's item count and checksum are a function of the graph
//! alone. This run computes them with the kernel's own [`Operator`] code.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{GraphError, GraphSpec, Item, OpCounters, OpKind, Operator, SinkReport};
use crate::channel::Overflow;
use crate::tensor::{Budget, TensorError};

/// What a reference run produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReferenceReport {
    /// Each sink's name and figures (latencies are 0: the run has no clock).
    pub sinks: Vec<(String, SinkReport)>,
    /// Each operator's name and counters.
    pub operators: Vec<(String, OpCounters)>,
}

/// Why a reference run could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceError {
    /// The graph did not validate.
    Graph(GraphError),
    /// A channel may drop items, so results depend on timing.
    Lossy { edge: usize },
    /// An operator could not be built.
    Tensor(TensorError),
}

/// Runs `graph` to completion on one thread with `budget`; every channel must be `block`.
pub fn reference_run(graph: &GraphSpec, budget: &Arc<Budget>) -> Result<ReferenceReport, ReferenceError> {
    let plan = graph.validate().map_err(ReferenceError::Graph)?;
    if let Some(edge) = graph.edges.iter().position(|edge| edge.overflow != Overflow::Block) {
        return Err(ReferenceError::Lossy { edge });
    }
    let mut operators = graph
        .ops
        .iter()
        .map(|op| Operator::new(&op.kind, budget))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ReferenceError::Tensor)?;
    let mut queues: Vec<VecDeque<Item>> = graph.edges.iter().map(|_| VecDeque::new()).collect();
    loop {
        let mut progressed = false;
        for &index in &plan.order {
            let item = if matches!(graph.ops[index].kind, OpKind::Source(_)) {
                operators[index].next_item(0)
            } else {
                let inputs = &plan.inputs[index];
                if !inputs.iter().all(|&edge| !queues[edge].is_empty()) {
                    continue;
                }
                let mut items =
                    inputs.iter().map(|&edge| queues[edge].pop_front().expect("checked non-empty")).collect();
                progressed = true;
                operators[index].process(&mut items, 0)
            };
            let Some(item) = item else { continue };
            progressed = true;
            let outputs = &plan.outputs[index];
            for (position, &edge) in outputs.iter().enumerate() {
                if position + 1 == outputs.len() {
                    break;
                }
                match item.try_clone() {
                    Ok(copy) => queues[edge].push_back(copy),
                    Err(error) => operators[index].count_failed_copy(&error),
                }
            }
            if let Some(&last) = outputs.last() {
                queues[last].push_back(item);
            }
        }
        if !progressed {
            break;
        }
    }
    let sinks = graph
        .ops
        .iter()
        .zip(&operators)
        .filter_map(|(op, operator)| operator.sink_report().map(|report| (op.name.clone(), report)))
        .collect();
    let counters =
        graph.ops.iter().zip(&operators).map(|(op, operator)| (op.name.clone(), operator.counters())).collect();
    Ok(ReferenceReport { sinks, operators: counters })
}
