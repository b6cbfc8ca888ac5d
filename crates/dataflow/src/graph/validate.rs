//! Whole-graph checks before start: completeness, dangling ports, cycles, and the type every operator emits.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Aggregate, GraphError, GraphSpec, MapOp, OpKind};

/// What travels on a channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "shape", rename_all = "kebab-case")]
pub enum ValueType {
    /// f32 tensors of this shape.
    Tensor(Vec<usize>),
    /// Single f32 values.
    Scalar,
}

impl ValueType {
    /// e.g. `tensor [4, 4]` or `scalar`.
    pub fn describe(&self) -> String {
        match self {
            ValueType::Tensor(shape) => alloc::format!("tensor {shape:?}"),
            ValueType::Scalar => "scalar".into(),
        }
    }
}

/// A validated graph: how to run it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Operator indices, every producer before its consumers.
    pub order: Vec<usize>,
    /// Type each operator emits (`None` for sinks).
    pub output_types: Vec<Option<ValueType>>,
    /// Per operator, the edge feeding each input port, by port.
    pub inputs: Vec<Vec<usize>>,
    /// Per operator, the edges its output feeds.
    pub outputs: Vec<Vec<usize>>,
}

impl GraphSpec {
    /// Checks the whole graph; the [`Plan`] says how to run it.
    pub fn validate(&self) -> Result<Plan, GraphError> {
        let count = self.ops.len();
        if !self.ops.iter().any(|op| matches!(op.kind, OpKind::Source(_))) {
            return Err(GraphError::Incomplete { missing: "source" });
        }
        if !self.ops.iter().any(|op| matches!(op.kind, OpKind::Sink { .. })) {
            return Err(GraphError::Incomplete { missing: "sink" });
        }
        let mut inputs: Vec<Vec<Option<usize>>> = self.ops.iter().map(|op| vec![None; op.kind.inputs()]).collect();
        let mut outputs: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (index, edge) in self.edges.iter().enumerate() {
            inputs[edge.to][edge.port] = Some(index);
            outputs[edge.from].push(index);
        }
        for (op, ports) in self.ops.iter().zip(&inputs) {
            if let Some(port) = ports.iter().position(Option::is_none) {
                return Err(GraphError::DanglingInput { op: op.name.clone(), port });
            }
        }
        for (op, edges) in self.ops.iter().zip(&outputs) {
            if op.kind.has_output() && edges.is_empty() {
                return Err(GraphError::DanglingOutput { op: op.name.clone() });
            }
        }
        let order = self.topological_order()?;
        let inputs: Vec<Vec<usize>> = inputs.into_iter().map(|ports| ports.into_iter().flatten().collect()).collect();
        let mut output_types: Vec<Option<ValueType>> = vec![None; count];
        for &index in &order {
            let input_types: Vec<&ValueType> = inputs[index]
                .iter()
                .map(|&edge| output_types[self.edges[edge].from].as_ref().expect("producers come first and emit"))
                .collect();
            output_types[index] = self.output_type(index, &input_types)?;
        }
        Ok(Plan { order, output_types, inputs, outputs })
    }

    /// Kahn's algorithm; on a cycle, the operators along one of them.
    fn topological_order(&self) -> Result<Vec<usize>, GraphError> {
        let count = self.ops.len();
        let mut indegree = vec![0usize; count];
        for edge in &self.edges {
            indegree[edge.to] += 1;
        }
        let mut ready: VecDeque<usize> = (0..count).filter(|&index| indegree[index] == 0).collect();
        let mut order = Vec::with_capacity(count);
        while let Some(index) = ready.pop_front() {
            order.push(index);
            for edge in self.edges.iter().filter(|edge| edge.from == index) {
                indegree[edge.to] -= 1;
                if indegree[edge.to] == 0 {
                    ready.push_back(edge.to);
                }
            }
        }
        if order.len() == count {
            return Ok(order);
        }
        // Every operator left has an unordered producer: walk back along them until one repeats.
        let start = (0..count).find(|&index| indegree[index] > 0).expect("an operator is left");
        let mut path = vec![start];
        loop {
            let current = *path.last().expect("path starts non-empty");
            let producer = self
                .edges
                .iter()
                .find(|edge| edge.to == current && indegree[edge.from] > 0)
                .map(|edge| edge.from)
                .expect("an operator left in a cycle has a producer left too");
            if let Some(position) = path.iter().position(|&index| index == producer) {
                let mut cycle: Vec<String> =
                    path[position..].iter().rev().map(|&index| self.ops[index].name.clone()).collect();
                cycle.push(cycle[0].clone());
                return Err(GraphError::Cycle { path: cycle });
            }
            path.push(producer);
        }
    }

    /// The type operator `index` emits given its inputs' types.
    fn output_type(&self, index: usize, inputs: &[&ValueType]) -> Result<Option<ValueType>, GraphError> {
        let op = &self.ops[index];
        let mismatch = |expected: &str, found: &ValueType| GraphError::TypeMismatch {
            op: op.name.clone(),
            expected: expected.into(),
            found: found.describe(),
        };
        let tensor = |value: &ValueType, expected: &str| match value {
            ValueType::Tensor(shape) => Ok(shape.clone()),
            ValueType::Scalar => Err(mismatch(expected, value)),
        };
        let shape_error = |operation: &'static str, left: &[usize], right: &[usize]| GraphError::Shape {
            op: op.name.clone(),
            operation,
            left: left.to_vec(),
            right: right.to_vec(),
        };
        let output = match &op.kind {
            OpKind::Source(source) => source.shape.clone().map_or(ValueType::Scalar, ValueType::Tensor),
            OpKind::Sink { .. } => return Ok(None),
            OpKind::Filter { .. } => inputs[0].clone(),
            OpKind::Window { aggregate: Aggregate::Max, .. } => match inputs[0] {
                ValueType::Scalar => ValueType::Scalar,
                other => return Err(mismatch("scalars (a max window)", other)),
            },
            OpKind::Window { .. } => inputs[0].clone(),
            OpKind::Infer { layers, .. } => {
                let shape = tensor(inputs[0], "a tensor")?;
                let elements: usize = shape.iter().product();
                if elements != layers[0] {
                    return Err(shape_error("inference", &shape, &layers[..1]));
                }
                ValueType::Tensor(vec![*layers.last().expect("validated: at least 2 layers")])
            }
            OpKind::Map(map) => match map {
                MapOp::AddScalar { .. } | MapOp::MulScalar { .. } | MapOp::Relu => inputs[0].clone(),
                MapOp::Softmax => ValueType::Tensor(tensor(inputs[0], "a tensor")?),
                MapOp::Transpose => {
                    let mut shape = tensor(inputs[0], "a tensor")?;
                    shape.reverse();
                    ValueType::Tensor(shape)
                }
                MapOp::Reshape { shape } => {
                    let input = tensor(inputs[0], "a tensor")?;
                    if input.iter().product::<usize>() != shape.iter().product::<usize>() {
                        return Err(shape_error("reshape", &input, shape));
                    }
                    ValueType::Tensor(shape.clone())
                }
                MapOp::Matmul { cols, .. } => {
                    let input = tensor(inputs[0], "a tensor")?;
                    if input.len() != 2 {
                        return Err(mismatch("a 2-D tensor (matmul)", inputs[0]));
                    }
                    ValueType::Tensor(vec![input[0], *cols])
                }
                MapOp::Sum | MapOp::Mean => {
                    tensor(inputs[0], "a tensor")?;
                    ValueType::Scalar
                }
                MapOp::Add | MapOp::Sub | MapOp::Mul => match (inputs[0], inputs[1]) {
                    (ValueType::Scalar, ValueType::Scalar) => ValueType::Scalar,
                    (ValueType::Tensor(left), ValueType::Tensor(right)) => ValueType::Tensor(
                        broadcast_shape(left, right).ok_or_else(|| shape_error(map.name(), left, right))?,
                    ),
                    (ValueType::Scalar, other) | (other, ValueType::Scalar) => {
                        return Err(mismatch("two tensors or two scalars", other))
                    }
                },
            },
        };
        Ok(Some(output))
    }
}

/// The shape two shapes broadcast to under NumPy's rules, if they do.
pub fn broadcast_shape(left: &[usize], right: &[usize]) -> Option<Vec<usize>> {
    let rank = left.len().max(right.len());
    let mut shape = vec![0; rank];
    for (axis, size) in shape.iter_mut().enumerate() {
        let from_end = rank - 1 - axis;
        let a = left.len().checked_sub(from_end + 1).map_or(1, |index| left[index]);
        let b = right.len().checked_sub(from_end + 1).map_or(1, |index| right[index]);
        *size = match (a, b) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => return None,
        };
    }
    Some(shape)
}
