//! A running graph: one kernel thread per operator, one channel per connection.
//!
//! Each operator thread takes one item from every input (blocking while a
//! channel is empty), runs the operator's per-item work (`sis_dataflow::graph::Operator`),
//! and offers the result to every output channel: a `block` channel makes it
//! wait for room (the time is counted as blocked), the others drop by their
//! policy. A source ends after its last item; every other operator ends when
//! an input is closed and drained; ending closes the operator's outputs, so a
//! graph finishes from its sources to its sinks. `stop` sets a flag and wakes
//! every thread, which ends at its next check.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use sis_dataflow::channel::{self, Receiver, Sender, TryRecvError};
use sis_dataflow::graph::{GraphSpec, Item, OpCounters, OpKind, Operator, Plan, Schedule};
use sis_dataflow::tensor::{Budget, TensorError};
use sis_platform::thread::{self, JoinHandle, SpawnError};
use sis_platform::time;
use sis_sched::ServerParams;

/// Stack of each operator thread.
const OPERATOR_STACK_BYTES: u64 = 64 * 1024;

/// What one operator's thread shares with the commands.
pub struct OpShared {
    /// The operator's state (locked by its thread for each item's whole work; readers take it only for a
    /// sink's report, whose work per item is short).
    pub operator: spin::Mutex<Operator>,
    /// The operator's counters as of its last item, for readers: a reader waiting for `operator` while its
    /// thread, preempted mid-item, holds it, could wait for many turns of the scheduler.
    pub counters: spin::Mutex<OpCounters>,
    /// Its thread's ID (0 until spawned).
    pub thread: AtomicU32,
    /// CPU time its thread used, set when the thread ends.
    pub cpu_ns: AtomicU64,
    /// When it returned, ns since boot (0 before; stored last, so a reader seeing it sees `cpu_ns` and `server`).
    pub finished_ns: AtomicU64,
    /// A deadline operator's server counters when its thread returned.
    pub server: spin::Mutex<Option<sis_sched::ServerStats>>,
}

impl OpShared {
    /// Whether the thread has returned (it records the time it did).
    pub fn is_finished(&self) -> bool {
        self.finished_ns.load(Relaxed) != 0
    }
}

/// A started graph.
pub struct Run {
    /// The graph's tensor budget.
    pub budget: Arc<Budget>,
    /// How it runs.
    pub plan: Plan,
    /// Per operator.
    pub ops: Vec<Arc<OpShared>>,
    /// Per connection: its counters, readable while the threads own its ends.
    pub channels: Vec<channel::Monitor<Item>>,
    /// The budget's charge for every channel's slots, held while the channels exist.
    pub slots: Vec<sis_dataflow::tensor::Reservation>,
    /// Set by `stop`.
    pub stop: Arc<AtomicBool>,
    /// Operator threads, joined by `stop`.
    pub handles: Vec<JoinHandle>,
    /// When it started, ns since boot.
    pub started_ns: u64,
}

/// Why a graph did not start; nothing runs.
#[derive(Debug)]
pub enum StartError {
    /// An operator or a channel's slots did not fit the budget (or the heap).
    Tensor { op: String, error: TensorError },
    /// A channel could not be made.
    Channel(channel::ChannelError),
    /// An operator thread could not be started (admission refused its server, or no memory).
    Spawn { op: String, error: SpawnError },
}

impl core::fmt::Display for StartError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Tensor { op, error } => write!(formatter, "{op}: {error}"),
            StartError::Channel(error) => write!(formatter, "{error}"),
            StartError::Spawn { op, error } => write!(formatter, "{op}: {error}"),
        }
    }
}

impl StartError {
    /// Stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Tensor { error, .. } => error.code(),
            StartError::Channel(error) => error.code(),
            StartError::Spawn { error: SpawnError::Admission(_), .. } => "admission-refused",
            StartError::Spawn { .. } => "spawn-failed",
        }
    }
}

/// Starts every operator of `spec` (validated into `plan`) on its own thread, charging tensors to `budget`.
pub fn start(spec: &GraphSpec, plan: Plan, budget: Arc<Budget>) -> Result<Run, StartError> {
    let mut ops = Vec::with_capacity(spec.ops.len());
    for op in &spec.ops {
        let operator =
            Operator::new(&op.kind, &budget).map_err(|error| StartError::Tensor { op: op.name.clone(), error })?;
        ops.push(Arc::new(OpShared {
            operator: spin::Mutex::new(operator),
            counters: spin::Mutex::new(OpCounters::default()),
            thread: AtomicU32::new(0),
            cpu_ns: AtomicU64::new(0),
            finished_ns: AtomicU64::new(0),
            server: spin::Mutex::new(None),
        }));
    }
    let mut senders: Vec<Option<Sender<Item>>> = Vec::with_capacity(spec.edges.len());
    let mut receivers: Vec<Option<Receiver<Item>>> = Vec::with_capacity(spec.edges.len());
    let mut channels = Vec::with_capacity(spec.edges.len());
    let mut slots = Vec::with_capacity(spec.edges.len());
    for edge in &spec.edges {
        // A channel's slots count against the graph's budget like its tensors.
        let bytes = channel::slot_bytes::<Item>(edge.capacity, edge.overflow) as u64;
        let charge = budget.reserve(bytes).map_err(|error| StartError::Tensor {
            op: alloc::format!("channel {} -> {}", spec.ops[edge.from].name, spec.ops[edge.to].name),
            error,
        })?;
        slots.push(charge);
        let (sender, receiver) = channel::channel(edge.capacity, edge.overflow).map_err(StartError::Channel)?;
        channels.push(receiver.monitor());
        senders.push(Some(sender));
        receivers.push(Some(receiver));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut run = Run { budget, plan, ops, channels, slots, stop, handles: Vec::new(), started_ns: time::now_ns() };
    // Consumers first: every thread that can be woken exists before its producer runs.
    for &index in run.plan.order.iter().rev() {
        let op = &spec.ops[index];
        let inputs: Vec<Receiver<Item>> =
            run.plan.inputs[index].iter().filter_map(|&edge| receivers[edge].take()).collect();
        let outputs: Vec<Sender<Item>> =
            run.plan.outputs[index].iter().filter_map(|&edge| senders[edge].take()).collect();
        let worker = Worker {
            shared: Arc::clone(&run.ops[index]),
            inputs,
            outputs,
            stop: Arc::clone(&run.stop),
            source: match &op.kind {
                OpKind::Source(source) => Some(source.rate_per_s.map(|rate| 1_000_000_000 / rate)),
                _ => None,
            },
            period_ns: match op.schedule {
                Schedule::Deadline { period_ns, .. } => Some(period_ns),
                Schedule::BestEffort { .. } => None,
            },
        };
        let spawned = match op.schedule {
            Schedule::BestEffort { priority } => {
                thread::spawn_joinable(&op.name, OPERATOR_STACK_BYTES, move || worker.run()).inspect(|handle| {
                    if priority != sis_sched::DEFAULT_PRIORITY {
                        // The thread is live and the priority validated: this cannot be refused.
                        let _ = thread::set_priority(handle.id, priority);
                    }
                })
            }
            Schedule::Deadline { budget_ns, period_ns } => thread::spawn_joinable_deadline(
                &op.name,
                OPERATOR_STACK_BYTES,
                ServerParams { budget_ns, period_ns, deadline_ns: period_ns },
                move || worker.run(),
            ),
        };
        match spawned {
            Ok(handle) => {
                run.ops[index].thread.store(handle.id, Relaxed);
                run.handles.push(handle);
            }
            Err(error) => {
                stop_and_join(&mut run);
                return Err(StartError::Spawn { op: op.name.clone(), error });
            }
        }
    }
    Ok(run)
}

/// Tells every thread to stop, wakes them, and waits until all have returned.
pub fn stop_and_join(run: &mut Run) {
    run.stop.store(true, Relaxed);
    for op in &run.ops {
        let id = op.thread.load(Relaxed);
        if id != 0 {
            thread::wake(id);
        }
    }
    for handle in core::mem::take(&mut run.handles) {
        handle.join();
    }
}

/// Whether every operator thread has returned.
pub fn finished(run: &Run) -> bool {
    run.ops.iter().all(|op| op.is_finished())
}

/// When the last operator thread returned, ns since boot (meaningful once [`finished`]).
pub fn finished_at(run: &Run) -> u64 {
    run.ops.iter().map(|op| op.finished_ns.load(Relaxed)).max().unwrap_or(run.started_ns)
}

/// One operator thread.
struct Worker {
    shared: Arc<OpShared>,
    inputs: Vec<Receiver<Item>>,
    outputs: Vec<Sender<Item>>,
    stop: Arc<AtomicBool>,
    /// For a source: the pacing interval (`None` unpaced).
    source: Option<Option<u64>>,
    /// For a deadline operator: its server's period (each item is a job due one period after it was taken).
    period_ns: Option<u64>,
}

impl Worker {
    fn run(mut self) {
        match self.source {
            Some(interval) => self.run_source(interval),
            None => self.run_operator(),
        }
        for output in core::mem::take(&mut self.outputs) {
            output.close();
            let waiter = output.take_waiting_receiver();
            drop(output);
            if let Some(waiter) = waiter {
                wake(waiter);
            }
        }
        // A producer waiting for room in a channel nobody reads any more is woken once the receiver is dropped
        // (what it had queued is drained and counted as dropped); it then sees the channel disconnected.
        for input in core::mem::take(&mut self.inputs) {
            let waiter = input.take_waiting_sender();
            drop(input);
            if let Some(waiter) = waiter {
                wake(waiter);
            }
        }
        self.shared.cpu_ns.store(thread::current_cpu_time_ns(), Relaxed);
        *super::lock(&self.shared.server) = thread::own_server().map(|(_, stats)| stats);
        self.shared.finished_ns.store(time::now_ns(), Relaxed);
    }

    fn run_source(&self, interval: Option<u64>) {
        let started_ns = time::now_ns();
        let mut released: u64 = 0;
        while !self.stop.load(Relaxed) {
            if let Some(interval) = interval {
                let release_ns = started_ns.saturating_add(interval.saturating_mul(released));
                thread::sleep_until_ns_or_woken(release_ns, || self.stop.load(Relaxed));
                if self.stop.load(Relaxed) {
                    return;
                }
            }
            released += 1;
            let taken_ns = time::now_ns();
            let item = self.with_operator(|operator| operator.next_item(taken_ns));
            let Some(item) = item else { return };
            if !self.emit(item) {
                return;
            }
            self.job_done(taken_ns);
        }
    }

    fn run_operator(&self) {
        let mut items = Vec::with_capacity(self.inputs.len());
        loop {
            // Nothing is taken until every input holds an item: an item taken from one port, then abandoned
            // because another port ended or the graph stopped, would be counted received and never processed.
            if !self.inputs.iter().all(|input| self.wait_for_item(input)) {
                return;
            }
            for input in &self.inputs {
                match take_ready(input) {
                    Some(item) => items.push(item),
                    None => return,
                }
            }
            let taken_ns = time::now_ns();
            let output = self.with_operator(|operator| operator.process(&mut items, taken_ns));
            if let Some(item) = output {
                if !self.emit(item) {
                    return;
                }
            }
            self.job_done(taken_ns);
        }
    }

    /// Runs `work` on the operator, then publishes its counters.
    fn with_operator<T>(&self, work: impl FnOnce(&mut Operator) -> T) -> T {
        let mut operator = super::lock(&self.shared.operator);
        let result = work(&mut operator);
        *super::lock(&self.shared.counters) = operator.counters();
        result
    }

    fn job_done(&self, taken_ns: u64) {
        if let Some(period_ns) = self.period_ns {
            thread::job_complete(taken_ns.saturating_add(period_ns));
        }
    }

    /// Waits until `input` holds an item (true), or is closed and drained, or the graph stops (false).
    ///
    /// The wait condition uses only the channel's atomics (it runs with IRQs masked).
    fn wait_for_item(&self, input: &Receiver<Item>) -> bool {
        let me = u64::from(thread::current_id());
        loop {
            if self.stop.load(Relaxed) {
                return false;
            }
            if !input.is_empty() {
                return true;
            }
            if input.is_closed() {
                // Nothing is sent after the close: look once more for the last item sent before it.
                return !input.is_empty();
            }
            thread::block_current_until(|| self.stop.load(Relaxed) || input.item_or_wait(me));
        }
    }

    /// Offers `item` to every output (a copy to all but the last); false once the graph stops. Every output
    /// is offered its item even then, so a channel's `offered` always equals its producer's `outputs`.
    fn emit(&self, item: Item) -> bool {
        let count = self.outputs.len();
        let mut item = Some(item);
        let mut running = true;
        for (position, output) in self.outputs.iter().enumerate() {
            let next = if position + 1 == count {
                item.take()
            } else {
                match item.as_ref().map(Item::try_clone) {
                    Some(Ok(copy)) => Some(copy),
                    Some(Err(error)) => {
                        self.with_operator(|operator| operator.count_failed_copy(&error));
                        None
                    }
                    None => None,
                }
            };
            if let Some(next) = next {
                running &= self.send(output, next);
            }
        }
        running && !self.stop.load(Relaxed)
    }

    /// Offers one item; under `block` waits for room, counting the wait. False when the graph stopped while
    /// the channel was full: the channel is then closed and the item counted as offered and dropped, not lost
    /// uncounted (the thread closes its outputs on its way out anyway).
    fn send(&self, output: &Sender<Item>, item: Item) -> bool {
        let me = u64::from(thread::current_id());
        let mut item = item;
        loop {
            match output.try_send(item) {
                Ok(_) => break,
                Err(channel::Full(back)) => item = back,
            }
            if self.stop.load(Relaxed) {
                output.close();
                // A closed channel discards the item and counts it (`Sent::DroppedNewest`); it never hands it back.
                let _ = output.try_send(item);
                return false;
            }
            let waited_from = time::now_ns();
            thread::block_current_until(|| self.stop.load(Relaxed) || output.room_or_wait(me));
            output.add_blocked_ns(time::now_ns().saturating_sub(waited_from));
        }
        if let Some(waiter) = output.take_waiting_receiver() {
            wake(waiter);
        }
        true
    }
}

/// The item `input` holds (as [`Worker::wait_for_item`] found), waking its producer if it waits for room.
///
/// Only this thread takes items; a drop-oldest producer replacing the oldest item may leave the ring empty
/// for an instant, so an empty answer is retried. `None` only if the channel closed empty, which a producer
/// cannot do once an item was seen (it closes after its last send completes).
fn take_ready(input: &Receiver<Item>) -> Option<Item> {
    loop {
        match input.try_recv() {
            Ok(item) => {
                if let Some(waiter) = input.take_waiting_sender() {
                    wake(waiter);
                }
                return Some(item);
            }
            Err(TryRecvError::Closed) => return None,
            Err(TryRecvError::Empty) => thread::yield_now(),
        }
    }
}

/// Wakes the thread whose ID a channel handed back as a waiter token.
fn wake(token: u64) {
    if let Ok(id) = u32::try_from(token) {
        thread::wake(id);
    }
}
