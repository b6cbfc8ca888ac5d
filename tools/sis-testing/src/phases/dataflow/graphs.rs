//! The probe's graphs on the host: each one a `GraphSpec` built with the kernel's own crate, turned into the
//! `graphctl` lines that build it in the guest, so the commands and the expected results have one source.

use sis_dataflow::channel::Overflow;
use sis_dataflow::graph::{Aggregate, GraphSpec, MapOp, OpKind, OpSpec, Schedule, SourceSpec};

use super::Step;

/// A graph of the probe: its name in the guest, its specification, and its tensor budget.
pub struct Graph {
    /// `graphctl` name.
    pub name: &'static str,
    /// What the commands build.
    pub spec: GraphSpec,
    /// Tensor budget (`graphctl create --budget-kib`; the kernel's default when `None`).
    pub budget_kib: Option<u64>,
}

/// The kernel's default graph budget, KiB.
pub const DEFAULT_BUDGET_KIB: u64 = 4096;

impl Graph {
    /// Builds `name` from `ops` and `edges` (from, to, capacity, overflow) with the host's own checks; every
    /// graph of the probe passes them (a graph meant to fail does so only at start, in `validate`).
    pub fn new(name: &'static str, ops: Vec<OpSpec>, edges: &[(&str, &str, usize, Overflow)]) -> Graph {
        let mut spec = GraphSpec::new();
        for op in ops {
            spec.add_op(op).unwrap_or_else(|error| panic!("graph {name}: {error}"));
        }
        for &(from, to, capacity, overflow) in edges {
            spec.connect(from, to, capacity, overflow).unwrap_or_else(|error| panic!("graph {name}: {error}"));
        }
        Graph { name, spec, budget_kib: None }
    }

    /// The tensor budget, bytes.
    pub fn budget_bytes(&self) -> u64 {
        self.budget_kib.unwrap_or(DEFAULT_BUDGET_KIB) * 1024
    }

    /// `create`, one `add-op` per operator and one `connect` per edge, in the specification's order.
    pub fn build_steps(&self) -> Vec<Step> {
        let name = self.name;
        let budget = self.budget_kib.map_or(String::new(), |kib| format!(" --budget-kib {kib}"));
        let mut steps = vec![Step::new(format!("{name} create"), "graphctl create", format!("{name}{budget}"))];
        for op in &self.spec.ops {
            steps.push(Step::new(
                format!("{name} add {}", op.name),
                "graphctl add-op",
                format!("{name} {} --name {}{}{}", op.kind.name(), op.name, options(&op.kind), schedule(op.schedule)),
            ));
        }
        for edge in &self.spec.edges {
            let (from, to) = (&self.spec.ops[edge.from].name, &self.spec.ops[edge.to].name);
            // The defaults (16, block) are left to the kernel, so status shows they were applied.
            let capacity = if edge.capacity == 16 { String::new() } else { format!(" --capacity {}", edge.capacity) };
            let overflow = if edge.overflow == Overflow::Block {
                String::new()
            } else {
                format!(" --overflow {}", edge.overflow.name())
            };
            steps.push(Step::new(
                format!("{name} connect {from} {to}"),
                "graphctl connect",
                format!("{name} {from} {to}{capacity}{overflow}"),
            ));
        }
        steps
    }

    /// `start`, `wait`, `stats` and `destroy`.
    pub fn run_steps(&self) -> Vec<Step> {
        let name = self.name;
        ["start", "wait", "stats", "destroy"]
            .into_iter()
            .map(|verb| Step::new(format!("{name} {verb}"), &format!("graphctl {verb}"), name))
            .collect()
    }

    /// One step `graphctl VERB NAME` labelled `NAME VERB` (or `label` when given).
    pub fn step(&self, verb: &str, label: Option<&str>) -> Step {
        let label = label.map_or_else(|| format!("{} {verb}", self.name), |label| format!("{} {label}", self.name));
        Step::new(label, &format!("graphctl {verb}"), self.name)
    }
}

/// The `add-op` options of `kind`, each with a leading space.
fn options(kind: &OpKind) -> String {
    match kind {
        OpKind::Source(source) => {
            let shape = source.shape.as_ref().map_or(String::new(), |shape| format!(" --shape {}", dims(shape, "x")));
            let rate = source.rate_per_s.map_or(String::new(), |rate| format!(" --rate {rate}"));
            format!("{shape} --count {} --seed {}{rate}", source.count, source.seed)
        }
        OpKind::Map(op) => {
            let extra = match op {
                MapOp::AddScalar { value } | MapOp::MulScalar { value } => format!(" --value {value}"),
                MapOp::Reshape { shape } => format!(" --shape {}", dims(shape, "x")),
                MapOp::Matmul { cols, seed } => format!(" --cols {cols} --seed {seed}"),
                _ => String::new(),
            };
            format!(" --op {}{extra}", op.name())
        }
        OpKind::Filter { min } => format!(" --min {min}"),
        OpKind::Window { size, aggregate } => format!(" --size {size} --aggregate {}", aggregate_name(*aggregate)),
        OpKind::Infer { layers, seed } => format!(" --layers {} --seed {seed}", dims(layers, ",")),
        OpKind::Sink { deadline_ns } => {
            deadline_ns.map_or(String::new(), |ns| format!(" --deadline-us {}", ns / 1_000))
        }
    }
}

/// The scheduling flags (none for priority 1, the default, so status shows the default was applied).
fn schedule(schedule: Schedule) -> String {
    match schedule {
        Schedule::BestEffort { priority: 1 } => String::new(),
        Schedule::BestEffort { priority } => format!(" --priority {priority}"),
        Schedule::Deadline { budget_ns, period_ns } => {
            format!(" --budget-us {} --period-us {}", budget_ns / 1_000, period_ns / 1_000)
        }
    }
}

fn aggregate_name(aggregate: Aggregate) -> &'static str {
    match aggregate {
        Aggregate::Sum => "sum",
        Aggregate::Mean => "mean",
        Aggregate::Max => "max",
    }
}

fn dims(sizes: &[usize], separator: &str) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(separator)
}

/// An operator at best effort, priority 1.
pub fn best_effort(name: &str, kind: OpKind) -> OpSpec {
    OpSpec { name: name.into(), kind, schedule: Schedule::BestEffort { priority: 1 } }
}

/// An operator at best effort with `priority`.
pub fn prioritized(name: &str, kind: OpKind, priority: u8) -> OpSpec {
    OpSpec { name: name.into(), kind, schedule: Schedule::BestEffort { priority } }
}

/// An operator under a CBS server of `budget_us` every `period_us`.
pub fn reserved(name: &str, kind: OpKind, budget_us: u64, period_us: u64) -> OpSpec {
    OpSpec {
        name: name.into(),
        kind,
        schedule: Schedule::Deadline { budget_ns: budget_us * 1_000, period_ns: period_us * 1_000 },
    }
}

/// A source of `count` tensors of `shape` (scalars when empty) from `seed`, unpaced.
pub fn source(shape: &[usize], count: u64, seed: u64) -> OpKind {
    OpKind::Source(SourceSpec { shape: (!shape.is_empty()).then(|| shape.to_vec()), count, seed, rate_per_s: None })
}

/// A map.
pub fn map(op: MapOp) -> OpKind {
    OpKind::Map(op)
}

/// A tumbling window.
pub fn window(size: usize, aggregate: Aggregate) -> OpKind {
    OpKind::Window { size, aggregate }
}

/// A sink without a deadline.
pub fn sink() -> OpKind {
    OpKind::Sink { deadline_ns: None }
}

/// A sink counting the items whose end-to-end latency exceeds `deadline_us`.
pub fn sink_with_deadline(deadline_us: u64) -> OpKind {
    OpKind::Sink { deadline_ns: Some(deadline_us * 1_000) }
}

/// The edge `from -> to`, capacity 16, block (the kernel's defaults).
pub fn edge<'a>(from: &'a str, to: &'a str) -> (&'a str, &'a str, usize, Overflow) {
    (from, to, 16, Overflow::Block)
}
