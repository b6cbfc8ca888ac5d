//! The deterministic reservation: one deadline thread that runs submitted operators each period (the graph hook).
//!
//! `det on` admits a CBS server for a worker thread; every period the worker
//! runs the operators queued for it, reports its job done against its own
//! deadline, and sleeps until the next release. A later dataflow runtime
//! submits its operators through [`submit`]; today `det submit` does, with a
//! diagnostic operator that runs for a given CPU time.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread::{self, JoinHandle, SpawnError};
use sis_platform::time;
use sis_sched::{ServerParams, ServerStats};

/// An operator: runs once inside a det job.
pub type Operator = Box<dyn FnOnce() + Send>;

/// Most operators waiting at once.
pub const QUEUE_CAPACITY: usize = 1024;
const WORKER_STACK_BYTES: u64 = 64 * 1024;

struct Shared {
    queue: VecDeque<Operator>,
    stop: bool,
    operators_run: u64,
}

struct Reservation {
    params: ServerParams,
    thread: JoinHandle,
    shared: Arc<IrqMutex<Shared>>,
}

static DET: IrqMutex<Option<Reservation>> = IrqMutex::new(None);

/// Why a det request failed.
#[derive(Debug)]
pub enum DetError {
    /// `det on` while a reservation exists.
    AlreadyOn,
    /// No reservation.
    Off,
    /// The queue is full.
    QueueFull,
    /// The worker could not start (admission refused, memory).
    Spawn(SpawnError),
}

impl core::fmt::Display for DetError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DetError::AlreadyOn => write!(formatter, "det is already on (det off first)"),
            DetError::Off => write!(formatter, "det is off (det on WCET PERIOD DEADLINE first)"),
            DetError::QueueFull => {
                write!(formatter, "{QUEUE_CAPACITY} operators are already waiting")
            }
            DetError::Spawn(error) => write!(formatter, "{error}"),
        }
    }
}

/// What `det status` reports.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// Server parameters.
    pub params: ServerParams,
    /// Server counters.
    pub stats: ServerStats,
    /// Worker thread ID.
    pub thread: u32,
    /// Operators waiting.
    pub queued: u64,
    /// Operators run so far.
    pub operators_run: u64,
}

/// Admits the reservation and starts its worker.
pub fn on(params: ServerParams) -> Result<u32, DetError> {
    if DET.lock().is_some() {
        return Err(DetError::AlreadyOn);
    }
    let shared = Arc::new(IrqMutex::new(Shared { queue: VecDeque::new(), stop: false, operators_run: 0 }));
    let worker_state = Arc::clone(&shared);
    let handle = thread::spawn_joinable_deadline("det", WORKER_STACK_BYTES, params, move || {
        let mut release = time::now_ns();
        loop {
            loop {
                let operator = {
                    let mut state = worker_state.lock();
                    if state.stop {
                        return;
                    }
                    state.queue.pop_front()
                };
                let Some(operator) = operator else { break };
                operator();
                worker_state.lock().operators_run += 1;
            }
            thread::job_complete(release.saturating_add(params.deadline_ns));
            release = release.saturating_add(params.period_ns);
            thread::sleep_until_ns(release);
        }
    })
    .map_err(DetError::Spawn)?;
    let id = handle.id;
    *DET.lock() = Some(Reservation { params, thread: handle, shared });
    Ok(id)
}

/// Stops the worker at its next release and waits for it; returns its final status.
pub fn off() -> Result<Status, DetError> {
    let reservation = DET.lock().take().ok_or(DetError::Off)?;
    let before = status_of(&reservation);
    reservation.shared.lock().stop = true;
    reservation.thread.join();
    Ok(before)
}

/// The reservation's current figures.
pub fn status() -> Option<Status> {
    DET.lock().as_ref().map(status_of)
}

fn status_of(reservation: &Reservation) -> Status {
    let state = reservation.shared.lock();
    let stats = thread::snapshot()
        .into_iter()
        .find(|info| info.id == reservation.thread.id)
        .and_then(|info| info.server)
        .map_or(ServerStats::default(), |(_, stats)| stats);
    Status {
        params: reservation.params,
        stats,
        thread: reservation.thread.id,
        queued: state.queue.len() as u64,
        operators_run: state.operators_run,
    }
}

/// The graph hook: queues `operator` to run in the det worker's next job.
pub fn submit(operator: Operator) -> Result<(), DetError> {
    let guard = DET.lock();
    let reservation = guard.as_ref().ok_or(DetError::Off)?;
    let mut state = reservation.shared.lock();
    if state.queue.len() >= QUEUE_CAPACITY {
        return Err(DetError::QueueFull);
    }
    state.queue.push_back(operator);
    Ok(())
}
