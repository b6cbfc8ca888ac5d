//! The kernel's dataflow graphs: built by `graphctl`, run by one thread per operator (`runtime`).
//!
//! A graph is built operator by operator and connection by connection
//! (`sis_dataflow::graph::GraphSpec` checks each), validated as a whole at
//! start, run, and destroyed. Destroy stops the threads, waits for each to
//! return, drops every channel and tensor, and reports the graph's budget
//! after: every byte charged to it is back (checked here, and by the QEMU
//! tests against the kernel heap and frame counters).
//!
//! [`GRAPHS`] is taken only by command handlers (never by operator threads),
//! so joining threads while holding it cannot deadlock.

mod runtime;
pub mod tensors;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use sis_dataflow::channel::{ChannelStats, Overflow};
use sis_dataflow::graph::{GraphError, GraphSpec, OpKind, OpSpec, Plan, Schedule, SinkReport};
use sis_dataflow::tensor::{Budget, BudgetStats};
use sis_platform::{thread, time};

pub use runtime::StartError;
// An operator holds its own lock for a whole item's work, and a handler holds [`GRAPHS`] while it joins threads.
pub(crate) use crate::sync::lock;

/// Most graphs at once.
pub const MAX_GRAPHS: usize = 16;
/// Sum of channel capacities in one graph (each slot is reserved when the graph starts).
pub const MAX_GRAPH_SLOTS: usize = 65_536;
/// Largest tensor budget of one graph: 64 MiB.
pub const MAX_BUDGET_BYTES: u64 = 64 << 20;

/// A graph's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Operators and connections may be added.
    Building,
    /// Its threads run.
    Running,
    /// Every thread returned after the sources' last items.
    Finished,
    /// Stopped by `graphctl stop` (queued items dropped).
    Stopped,
}

impl State {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Building => "building",
            State::Running => "running",
            State::Finished => "finished",
            State::Stopped => "stopped",
        }
    }
}

/// Why a graph command was refused; nothing changed.
#[derive(Debug)]
pub enum DataflowError {
    /// No graph has this name.
    NoSuchGraph(String),
    /// A graph with this name exists.
    Exists(String),
    /// [`MAX_GRAPHS`] exist.
    TooMany,
    /// The graph is in the wrong state for this (e.g. connecting a running graph).
    State { graph: String, state: State, wanted: &'static str },
    /// The graph refused the operator or connection, or did not validate.
    Graph(GraphError),
    /// The sum of channel capacities would exceed [`MAX_GRAPH_SLOTS`].
    Slots { requested: usize },
    /// Start failed (nothing runs).
    Start(StartError),
    /// `wait` ran out of time.
    Timeout { graph: String, waited_ms: u64 },
}

impl DataflowError {
    /// Stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            DataflowError::NoSuchGraph(_) => "no-such-graph",
            DataflowError::Exists(_) => "graph-exists",
            DataflowError::TooMany => "too-many-graphs",
            DataflowError::State { .. } => "wrong-state",
            DataflowError::Graph(error) => error.code(),
            DataflowError::Slots { .. } => "too-many-slots",
            DataflowError::Start(error) => error.code(),
            DataflowError::Timeout { .. } => "timeout",
        }
    }
}

impl core::fmt::Display for DataflowError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DataflowError::NoSuchGraph(name) => write!(formatter, "no graph named {name}"),
            DataflowError::Exists(name) => write!(formatter, "a graph named {name} exists already"),
            DataflowError::TooMany => write!(formatter, "at most {MAX_GRAPHS} graphs at once"),
            DataflowError::State { graph, state, wanted } => {
                write!(formatter, "graph {graph} is {}: {wanted}", state.name())
            }
            DataflowError::Graph(error) => write!(formatter, "{error}"),
            DataflowError::Slots { requested } => write!(
                formatter,
                "channel capacities would add up to {requested} slots; at most {MAX_GRAPH_SLOTS} per graph"
            ),
            DataflowError::Start(error) => write!(formatter, "start failed: {error}"),
            DataflowError::Timeout { graph, waited_ms } => {
                write!(formatter, "graph {graph} still running after {waited_ms} ms")
            }
        }
    }
}

struct Graph {
    name: String,
    spec: GraphSpec,
    budget_bytes: u64,
    state: State,
    run: Option<runtime::Run>,
    /// Figures kept from the last run after its threads are gone.
    finished_ns: Option<u64>,
}

/// Every graph.
static GRAPHS: spin::Mutex<Vec<Graph>> = spin::Mutex::new(Vec::new());

fn with_graph<T>(name: &str, body: impl FnOnce(&mut Graph) -> Result<T, DataflowError>) -> Result<T, DataflowError> {
    let mut graphs = lock(&GRAPHS);
    let graph =
        graphs.iter_mut().find(|graph| graph.name == name).ok_or_else(|| DataflowError::NoSuchGraph(name.into()))?;
    refresh(graph);
    body(graph)
}

/// A running graph whose threads all returned is finished, at the time the last one returned (not when this
/// is noticed: a graph's `elapsed_ns`, and its sinks' rates, must not depend on when it was next queried).
fn refresh(graph: &mut Graph) {
    if graph.state == State::Running && graph.run.as_ref().is_some_and(runtime::finished) {
        graph.state = State::Finished;
        if let Some(run) = graph.run.as_mut() {
            runtime::stop_and_join(run);
            graph.finished_ns = Some(runtime::finished_at(run));
        }
    }
}

fn building<'a>(graph: &'a mut Graph, wanted: &'static str) -> Result<&'a mut GraphSpec, DataflowError> {
    if graph.state != State::Building {
        return Err(DataflowError::State { graph: graph.name.clone(), state: graph.state, wanted });
    }
    Ok(&mut graph.spec)
}

/// Makes an empty graph with a tensor budget.
pub fn create(name: &str, budget_bytes: u64) -> Result<(), DataflowError> {
    if !sis_dataflow::graph::is_valid_name(name) {
        return Err(DataflowError::Graph(GraphError::BadName { name: name.into() }));
    }
    let mut graphs = lock(&GRAPHS);
    if graphs.iter().any(|graph| graph.name == name) {
        return Err(DataflowError::Exists(name.into()));
    }
    if graphs.len() >= MAX_GRAPHS {
        return Err(DataflowError::TooMany);
    }
    graphs.push(Graph {
        name: name.into(),
        spec: GraphSpec::new(),
        budget_bytes,
        state: State::Building,
        run: None,
        finished_ns: None,
    });
    Ok(())
}

/// Adds an operator; returns its index.
pub fn add_op(
    graph: &str,
    name: Option<String>,
    kind: OpKind,
    schedule: Schedule,
) -> Result<(usize, OpSpec), DataflowError> {
    with_graph(graph, |graph| {
        let spec = building(graph, "operators are added while it is building")?;
        // The default name is KIND-INDEX, INDEX the position the operator takes.
        let name = name.unwrap_or_else(|| alloc::format!("{}-{}", kind.name(), spec.ops.len()));
        let op = OpSpec { name, kind, schedule };
        let index = spec.add_op(op.clone()).map_err(DataflowError::Graph)?;
        Ok((index, op))
    })
}

/// Connects two operators; returns the input port used.
pub fn connect(graph: &str, from: &str, to: &str, capacity: usize, overflow: Overflow) -> Result<usize, DataflowError> {
    with_graph(graph, |graph| {
        let spec = building(graph, "connections are made while it is building")?;
        let slots = spec.edges.iter().map(|edge| edge.capacity).sum::<usize>().saturating_add(capacity);
        if slots > MAX_GRAPH_SLOTS && capacity <= sis_dataflow::channel::MAX_CAPACITY {
            return Err(DataflowError::Slots { requested: slots });
        }
        spec.connect(from, to, capacity, overflow).map_err(DataflowError::Graph)
    })
}

/// Validates and starts a building graph.
pub fn start(name: &str) -> Result<Plan, DataflowError> {
    with_graph(name, |graph| {
        building(graph, "only a building graph starts (destroy it and build it again)")?;
        let plan = graph.spec.validate().map_err(DataflowError::Graph)?;
        let budget = Budget::new(graph.budget_bytes);
        let run = runtime::start(&graph.spec, plan.clone(), budget).map_err(DataflowError::Start)?;
        graph.run = Some(run);
        graph.state = State::Running;
        Ok(plan)
    })
}

/// Stops a running graph: every thread returns, queued items stay counted as queued.
pub fn stop(name: &str) -> Result<(), DataflowError> {
    with_graph(name, |graph| {
        if graph.state != State::Running {
            return Err(DataflowError::State {
                graph: graph.name.clone(),
                state: graph.state,
                wanted: "only a running graph stops",
            });
        }
        if let Some(run) = graph.run.as_mut() {
            runtime::stop_and_join(run);
        }
        graph.state = State::Stopped;
        graph.finished_ns = Some(time::now_ns());
        Ok(())
    })
}

/// Waits until a running graph finishes, at most `timeout_ms`.
pub fn wait(name: &str, timeout_ms: u64) -> Result<u64, DataflowError> {
    let started = time::now_ns();
    let deadline = started.saturating_add(timeout_ms.saturating_mul(1_000_000));
    loop {
        let state = with_graph(name, |graph| Ok(graph.state))?;
        if state != State::Running {
            return Ok((time::now_ns() - started) / 1_000_000);
        }
        if time::now_ns() >= deadline {
            return Err(DataflowError::Timeout { graph: name.into(), waited_ms: timeout_ms });
        }
        thread::sleep_ns(1_000_000);
    }
}

/// What `destroy` gave back.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Destroyed {
    /// Operator threads that were joined (all of the graph's).
    pub threads_joined: usize,
    /// The budget after everything was dropped (`used_bytes` 0 and `live_tensors` 0 when nothing leaked).
    pub budget: Option<BudgetStats>,
    /// Bytes the graph's tensors held at the moment of destroy (now returned).
    pub bytes_returned: u64,
}

/// Stops (if running) and forgets a graph.
pub fn destroy(name: &str) -> Result<Destroyed, DataflowError> {
    let mut graph = {
        let mut graphs = lock(&GRAPHS);
        let index = graphs
            .iter()
            .position(|graph| graph.name == name)
            .ok_or_else(|| DataflowError::NoSuchGraph(name.into()))?;
        graphs.swap_remove(index)
    };
    let threads_joined = graph.run.as_ref().map_or(0, |run| run.ops.len());
    let Some(mut run) = graph.run.take() else {
        return Ok(Destroyed { threads_joined: 0, budget: None, bytes_returned: 0 });
    };
    runtime::stop_and_join(&mut run);
    let bytes_returned = run.budget.stats().used_bytes;
    let budget = alloc::sync::Arc::clone(&run.budget);
    drop(run);
    drop(graph);
    Ok(Destroyed { threads_joined, budget: Some(budget.stats()), bytes_returned })
}

/// One operator as `status` and `stats` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpView {
    /// The operator's specification.
    #[serde(flatten)]
    pub spec: OpSpec,
    /// Its thread while running (0 before start).
    pub thread: u32,
    /// Thread state name, or `finished`.
    pub thread_state: &'static str,
    /// CPU time its thread has used, ns.
    pub cpu_ns: u64,
    /// Counters (zero before start).
    pub counters: sis_dataflow::graph::OpCounters,
    /// A sink's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkReport>,
    /// A sink's throughput: its items over the graph's `elapsed_ns`, per second (once time has passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_s: Option<u64>,
    /// A deadline operator's server counters (a job is one item).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerView>,
}

/// A deadline operator's server counters.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ServerView {
    /// Items processed (each reported as a job due one period after the operator took it).
    pub jobs: u64,
    /// Jobs finished after their deadline.
    pub deadline_misses: u64,
    /// Times the server ran out of budget before its period ended.
    pub throttles: u64,
    /// CPU time charged to the server, ns.
    pub runtime_ns: u64,
}

impl From<sis_sched::ServerStats> for ServerView {
    fn from(stats: sis_sched::ServerStats) -> Self {
        ServerView {
            jobs: stats.jobs,
            deadline_misses: stats.deadline_misses,
            throttles: stats.throttles,
            runtime_ns: stats.runtime_ns,
        }
    }
}

/// One connection as `status` and `stats` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EdgeView {
    /// Producer's name.
    pub from: String,
    /// Consumer's name.
    pub to: String,
    /// Input port of the consumer.
    pub port: usize,
    /// Capacity in items.
    pub capacity: usize,
    /// Overflow policy.
    pub overflow: Overflow,
    /// Counters (`None` before start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<ChannelStats>,
}

/// A graph as `status` and `stats` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphView {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Tensor budget, bytes.
    pub budget_bytes: u64,
    /// Budget counters (`None` before start).
    pub budget: Option<BudgetStats>,
    /// The part of the budget's `used_bytes` that the channels' slots hold (0 before start).
    pub channel_bytes: u64,
    /// Time since start (to the end once finished or stopped), ns.
    pub elapsed_ns: u64,
    /// Operators in the order added.
    pub ops: Vec<OpView>,
    /// Connections in the order made.
    pub edges: Vec<EdgeView>,
}

/// Reads one graph.
pub fn view(name: &str) -> Result<GraphView, DataflowError> {
    let threads = thread::snapshot();
    with_graph(name, |graph| Ok(view_of(graph, &threads)))
}

/// Reads every graph.
pub fn list() -> Vec<GraphView> {
    let threads = thread::snapshot();
    let mut graphs = lock(&GRAPHS);
    graphs
        .iter_mut()
        .map(|graph| {
            refresh(graph);
            view_of(graph, &threads)
        })
        .collect()
}

fn view_of(graph: &Graph, threads: &[thread::ThreadInfo]) -> GraphView {
    let run = graph.run.as_ref();
    let elapsed_ns = run.map_or(0, |run| graph.finished_ns.unwrap_or_else(time::now_ns).saturating_sub(run.started_ns));
    let ops = graph
        .spec
        .ops
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let shared = run.map(|run| &run.ops[index]);
            let thread_id = shared.map_or(0, |shared| shared.thread.load(Relaxed));
            let live = threads.iter().find(|info| info.id == thread_id && thread_id != 0);
            let finished = shared.is_some_and(|shared| shared.is_finished());
            let sink = shared
                .filter(|_| matches!(spec.kind, OpKind::Sink { .. }))
                .and_then(|shared| lock(&shared.operator).sink_report());
            OpView {
                spec: spec.clone(),
                thread: thread_id,
                thread_state: match (live, finished) {
                    (_, true) => "finished",
                    (Some(info), false) => info.state.name(),
                    (None, false) if run.is_some() => "gone",
                    (None, false) => "not-started",
                },
                cpu_ns: match (finished, live) {
                    (true, _) => shared.map_or(0, |shared| shared.cpu_ns.load(Relaxed)),
                    (false, Some(info)) => info.cpu_time_ns,
                    (false, None) => 0,
                },
                counters: shared.map(|shared| *lock(&shared.counters)).unwrap_or_default(),
                sink,
                items_per_s: sink.filter(|_| elapsed_ns > 0).map(|sink| {
                    // At most 10^7 items a source, so the product fits easily in u128 and the rate in u64.
                    (u128::from(sink.items) * 1_000_000_000 / u128::from(elapsed_ns)) as u64
                }),
                server: live
                    .and_then(|info| info.server.map(|(_, stats)| stats))
                    .or_else(|| shared.and_then(|shared| *lock(&shared.server)))
                    .map(ServerView::from),
            }
        })
        .collect();
    let edges = graph
        .spec
        .edges
        .iter()
        .enumerate()
        .map(|(index, edge)| EdgeView {
            from: graph.spec.ops[edge.from].name.clone(),
            to: graph.spec.ops[edge.to].name.clone(),
            port: edge.port,
            capacity: edge.capacity,
            overflow: edge.overflow,
            stats: run.map(|run| run.channels[index].stats()),
        })
        .collect();
    GraphView {
        name: graph.name.clone(),
        state: graph.state,
        budget_bytes: graph.budget_bytes,
        budget: run.map(|run| run.budget.stats()),
        channel_bytes: run.map_or(0, |run| run.slots.iter().map(|slots| slots.bytes()).sum()),
        elapsed_ns,
        ops,
        edges,
    }
}
