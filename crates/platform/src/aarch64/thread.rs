//! Kernel threads: stacks, saved register frames, CPU-time accounting and switching; a `sis_sched::Scheduler` decides who runs.
//!
//! Every switch happens on a trap: the timer or a device interrupt, or `svc #0`
//! for a voluntary yield. The trap code saves the running thread's registers on
//! its own stack; `on_trap` picks the next thread and returns the address of its
//! saved frame, which the trap code restores. A new thread starts from a frame
//! built by `spawn`. The boot context becomes the idle thread (index 0), which
//! the policy never sees: it runs only when the policy has nobody to run.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use sis_sched::{AdmissionError, Scheduler, ServerLatency, ServerParams, ServerStats, ThreadId};

use super::exceptions::{TrapFrame, TRAP_FRAME_BYTES};
use super::irq_lock::{mask_irqs, restore_irqs, unmask_irqs, IrqMutex};
use super::profile::{self, Layer};
use super::{memory, time};

/// Most threads alive at once (idle included).
pub const MAX_THREADS: usize = 64;
/// Written at the lowest word of every thread stack; checked at each switch.
const STACK_CANARY: u64 = 0x5349_535f_5354_4b21;
/// EL1h, debug and FIQ masked, IRQs and SErrors enabled.
const SPSR_NEW_THREAD: u64 = 0b0101 | (1 << 9) | (1 << 6);
const IDLE_INDEX: usize = 0;

/// Why a trap reached the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapReason {
    /// An interrupt (timer or device).
    Interrupt,
    /// `svc #0`: the thread yields, blocks, sleeps or exits.
    Yield,
}

/// Lifecycle state of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// On the CPU.
    Running,
    /// Waiting in the policy's queue.
    Ready,
    /// Waiting for an event (`wake`).
    Blocked,
    /// Waiting for a time.
    Sleeping,
    /// Finished; its stack is freed at the next reap.
    Exited,
}

impl ThreadState {
    /// Lower-case name used in shell output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::Ready => "ready",
            ThreadState::Blocked => "blocked",
            ThreadState::Sleeping => "sleeping",
            ThreadState::Exited => "exited",
        }
    }
}

/// A reading of one thread's state and counters.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// Thread ID (idle is 0).
    pub id: ThreadId,
    /// Name given at spawn.
    pub name: String,
    /// State at the time of reading.
    pub state: ThreadState,
    /// CPU time consumed, including the current run of the running thread.
    pub cpu_time_ns: u64,
    /// Times the thread was switched onto the CPU.
    pub switches: u64,
    /// Stack size in bytes (0 for idle, which runs on the boot stack).
    pub stack_bytes: u64,
    /// Deadline server parameters and statistics, for deadline threads.
    pub server: Option<(ServerParams, ServerStats)>,
    /// Response-time and release-jitter figures, for deadline threads.
    pub latency: Option<ServerLatency>,
    /// Best-effort priority (time slices per turn, [`sis_sched::DEFAULT_PRIORITY`] unless set).
    pub priority: u8,
}

/// Why `spawn` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// [`MAX_THREADS`] threads exist already.
    TooManyThreads,
    /// No free block of frames for the stack.
    OutOfMemory,
    /// Requested stack is larger than the largest frame block.
    StackTooLarge,
    /// The policy refused the deadline server.
    Admission(AdmissionError),
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::TooManyThreads => write!(formatter, "thread limit of {MAX_THREADS} reached"),
            SpawnError::OutOfMemory => write!(formatter, "no free memory for the thread stack"),
            SpawnError::StackTooLarge => write!(formatter, "stack larger than the largest frame block"),
            SpawnError::Admission(error) => write!(formatter, "admission refused: {error}"),
        }
    }
}

struct Thread {
    id: ThreadId,
    name: String,
    state: ThreadState,
    /// Address of the saved `TrapFrame` while not running.
    frame: u64,
    /// Stack block (base address, buddy order); `None` for idle.
    stack: Option<(u64, usize)>,
    cpu_time_ns: u64,
    switches: u64,
    wake_at_ns: u64,
    /// Sleeping, and [`wake`] may end the sleep early.
    wakeable: bool,
    /// The profile layer it was in when it last left the CPU.
    layer: Layer,
}

struct Threads {
    list: Vec<Thread>,
    current: usize,
    policy: Box<dyn Scheduler>,
    next_id: ThreadId,
    last_switch_ns: u64,
}

impl Threads {
    /// `id` names a thread that has not exited.
    fn is_live(&self, id: ThreadId) -> bool {
        self.list.iter().any(|thread| thread.id == id && thread.state != ThreadState::Exited)
    }
}

static THREADS: IrqMutex<Option<Threads>> = IrqMutex::new(None);

/// Sets up the thread table with the boot context as the idle thread and `policy` deciding the rest.
pub fn init(policy: Box<dyn Scheduler>) {
    let idle = Thread {
        id: 0,
        name: String::from("idle"),
        state: ThreadState::Running,
        frame: 0,
        stack: None,
        cpu_time_ns: 0,
        switches: 1,
        wake_at_ns: 0,
        wakeable: false,
        layer: Layer::Idle,
    };
    let mut list = Vec::with_capacity(MAX_THREADS);
    list.push(idle);
    *THREADS.lock() = Some(Threads { list, current: IDLE_INDEX, policy, next_id: 1, last_switch_ns: time::now_ns() });
}

/// Turns the boot context into the idle thread: enables interrupts, lets the policy run its threads, waits for interrupts forever.
pub fn run_idle() -> ! {
    // The boot context ran in layer `other`; from here on it is the idle thread, whose time the profile charges to
    // `idle` (a trap saves the layer it interrupted as the thread's own).
    profile::enter(Layer::Idle);
    unmask_irqs();
    yield_now();
    loop {
        // SAFETY: waiting for an interrupt has no memory effect.
        unsafe { core::arch::asm!("wfi", options(nostack, preserves_flags)) };
    }
}

/// Starts a thread running `body` on a stack of at least `stack_bytes`.
pub fn spawn(name: &str, stack_bytes: u64, body: impl FnOnce() + Send + 'static) -> Result<ThreadId, SpawnError> {
    spawn_with(name, stack_bytes, None, body)
}

/// Starts a deadline thread: its server is admitted before it first runs; if
/// admission is refused nothing is started.
pub fn spawn_deadline(
    name: &str,
    stack_bytes: u64,
    params: ServerParams,
    body: impl FnOnce() + Send + 'static,
) -> Result<ThreadId, SpawnError> {
    spawn_with(name, stack_bytes, Some(params), body)
}

fn spawn_with(
    name: &str,
    stack_bytes: u64,
    server: Option<ServerParams>,
    body: impl FnOnce() + Send + 'static,
) -> Result<ThreadId, SpawnError> {
    reap_exited();
    let order = sis_mm::order_for_pages(stack_bytes.div_ceil(sis_mm::PAGE_SIZE)).ok_or(SpawnError::StackTooLarge)?;
    if THREADS.lock().as_ref().is_some_and(|threads| threads.list.len() >= MAX_THREADS) {
        return Err(SpawnError::TooManyThreads);
    }
    let stack_base = memory::allocate_frames(order).ok_or(SpawnError::OutOfMemory)?;
    let stack_top = stack_base + (sis_mm::PAGE_SIZE << order);
    let body: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(body));
    let body_address = Box::into_raw(body) as u64;

    let mut frame = TrapFrame { elr: thread_start as *const () as u64, spsr: SPSR_NEW_THREAD, ..TrapFrame::default() };
    frame.registers[0] = body_address;
    let frame_address = stack_top - TRAP_FRAME_BYTES as u64;
    // SAFETY: [stack_base, stack_top) was just allocated for this thread
    // alone and is identity-mapped RAM; the frame and canary lie inside it
    // and are 16- and 8-byte aligned.
    unsafe {
        (stack_base as *mut u64).write(STACK_CANARY);
        (frame_address as *mut TrapFrame).write(frame);
    }

    let mut guard = THREADS.lock();
    let Some(threads) = guard.as_mut() else {
        drop(guard);
        memory::free_frames(stack_base, order);
        return Err(SpawnError::TooManyThreads);
    };
    let id = threads.next_id;
    if let Some(params) = server {
        if let Err(error) = threads.policy.admit(id, params, time::now_ns()) {
            drop(guard);
            memory::free_frames(stack_base, order);
            // SAFETY: `body_address` came from `Box::into_raw` above and the
            // thread was never started, so this is the only owner.
            drop(unsafe { Box::from_raw(body_address as *mut Box<dyn FnOnce() + Send>) });
            return Err(SpawnError::Admission(error));
        }
    }
    threads.next_id += 1;
    threads.list.push(Thread {
        id,
        name: String::from(name),
        state: ThreadState::Ready,
        frame: frame_address,
        stack: Some((stack_base, order)),
        cpu_time_ns: 0,
        switches: 0,
        wake_at_ns: 0,
        wakeable: false,
        layer: Layer::Other,
    });
    threads.policy.enqueue(id, time::now_ns());
    drop(guard);
    reschedule_soon();
    Ok(id)
}

/// A thread became ready outside the scheduler: let the scheduler decide at once whether it runs now
/// (the timer fires immediately, and the next decision re-arms it). Without this, a ready thread waits
/// for whatever timer was armed, and none is armed while one best-effort thread runs alone.
fn reschedule_soon() {
    time::arm_at_ns(time::now_ns());
}

/// A thread that can be waited for.
#[derive(Debug, Clone)]
pub struct JoinHandle {
    /// The thread's ID.
    pub id: ThreadId,
    state: alloc::sync::Arc<IrqMutex<JoinState>>,
}

#[derive(Debug, Default)]
struct JoinState {
    finished: bool,
    waiter: Option<ThreadId>,
}

/// Like [`spawn`], returning a handle whose [`JoinHandle::join`] waits for `body` to return.
pub fn spawn_joinable(
    name: &str,
    stack_bytes: u64,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle, SpawnError> {
    joinable(name, stack_bytes, None, body)
}

/// Like [`spawn_deadline`], returning a handle to wait for the thread.
pub fn spawn_joinable_deadline(
    name: &str,
    stack_bytes: u64,
    params: ServerParams,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle, SpawnError> {
    joinable(name, stack_bytes, Some(params), body)
}

fn joinable(
    name: &str,
    stack_bytes: u64,
    server: Option<ServerParams>,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle, SpawnError> {
    let state = alloc::sync::Arc::new(IrqMutex::new(JoinState::default()));
    let shared = alloc::sync::Arc::clone(&state);
    let id = spawn_with(name, stack_bytes, server, move || {
        body();
        let waiter = {
            let mut join = shared.lock();
            join.finished = true;
            join.waiter.take()
        };
        if let Some(waiter) = waiter {
            wake(waiter);
        }
    })?;
    Ok(JoinHandle { id, state })
}

impl JoinHandle {
    /// Blocks the calling thread until the joined thread's body has returned.
    pub fn join(self) {
        block_current_until(|| {
            let mut join = self.state.lock();
            if join.finished {
                true
            } else {
                join.waiter = Some(current_id());
                false
            }
        });
    }

    /// Whether the body has returned.
    pub fn is_finished(&self) -> bool {
        self.state.lock().finished
    }
}

extern "C" fn thread_start(body: u64) -> ! {
    // SAFETY: `spawn` put a `Box<Box<dyn FnOnce() + Send>>` leaked with
    // `Box::into_raw` in x0 of this thread's first frame; it is taken back
    // exactly once, here.
    let body = unsafe { Box::from_raw(body as *mut Box<dyn FnOnce() + Send>) };
    body();
    exit_current()
}

/// Ends the calling thread.
pub fn exit_current() -> ! {
    if let Some(threads) = THREADS.lock().as_mut() {
        let current = threads.current;
        threads.list[current].state = ThreadState::Exited;
    }
    yield_now();
    unreachable!("an exited thread was scheduled again");
}

/// Gives the CPU to the next runnable thread, if any.
pub fn yield_now() {
    // SAFETY: `svc #0` traps to the vector code, which saves and restores
    // every register; this thread resumes after the instruction.
    unsafe { core::arch::asm!("svc #0", options(nostack)) };
}

/// Blocks the calling thread until `ready` returns true.
///
/// `ready` runs with IRQs masked, so a wake-up cannot slip between the check
/// and the block; it should register the thread as a waiter when it returns
/// false, so that the event source calls [`wake`].
pub fn block_current_until(mut ready: impl FnMut() -> bool) {
    loop {
        let saved = mask_irqs();
        if ready() {
            restore_irqs(saved);
            return;
        }
        if let Some(threads) = THREADS.lock().as_mut() {
            let current = threads.current;
            threads.list[current].state = ThreadState::Blocked;
        }
        yield_now();
        restore_irqs(saved);
    }
}

/// Sleeps the calling thread for at least `duration_ns`.
pub fn sleep_ns(duration_ns: u64) {
    let saved = mask_irqs();
    if let Some(threads) = THREADS.lock().as_mut() {
        let current = threads.current;
        let thread = &mut threads.list[current];
        thread.state = ThreadState::Sleeping;
        thread.wake_at_ns = time::now_ns().saturating_add(duration_ns);
        thread.wakeable = false;
    }
    yield_now();
    restore_irqs(saved);
}

/// Sleeps until the clock reads `deadline_ns` or [`wake`] is called for this thread, whichever comes first.
///
/// `ready` runs first with IRQs masked: when it returns true the thread does
/// not sleep at all. It should register the thread with the event source
/// (which calls [`wake`]), so an event cannot slip between the check and the sleep.
pub fn sleep_until_ns_or_woken(deadline_ns: u64, ready: impl FnOnce() -> bool) {
    let saved = mask_irqs();
    if ready() || time::now_ns() >= deadline_ns {
        restore_irqs(saved);
        return;
    }
    if let Some(threads) = THREADS.lock().as_mut() {
        let current = threads.current;
        let thread = &mut threads.list[current];
        thread.state = ThreadState::Sleeping;
        thread.wake_at_ns = deadline_ns;
        thread.wakeable = true;
    }
    yield_now();
    restore_irqs(saved);
}

/// Sleeps the calling thread until the clock reads `deadline_ns` (returns at once if it has passed).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = time::now_ns();
    if deadline_ns > now {
        sleep_ns(deadline_ns - now);
    }
}

/// Tells the policy the calling thread finished a job due at `job_deadline_ns` (misses are counted there).
pub fn job_complete(job_deadline_ns: u64) {
    if let Some(threads) = THREADS.lock().as_mut() {
        let id = threads.list[threads.current].id;
        threads.policy.job_complete(id, time::now_ns(), job_deadline_ns);
    }
}

/// Tells the policy the calling thread finished a job released at `release_ns`; its deadline is the release
/// plus the relative deadline its server has now (which a relaxation may have changed since the release).
/// Returns the server's counters after this job (`None` without a server: nothing is reported).
pub fn job_complete_since(release_ns: u64) -> Option<ServerStats> {
    let mut guard = THREADS.lock();
    let threads = guard.as_mut()?;
    let id = threads.list[threads.current].id;
    let (params, _) = threads.policy.server(id)?;
    threads.policy.job_complete(id, time::now_ns(), release_ns.saturating_add(params.deadline_ns));
    threads.policy.server(id).map(|(_, stats)| stats)
}

/// Keeps the CPU busy until the calling thread has used `cpu_ns` more of CPU
/// time (time taken by other threads meanwhile does not count).
pub fn burn_cpu_ns(cpu_ns: u64) {
    let target = current_cpu_time_ns().saturating_add(cpu_ns);
    while current_cpu_time_ns() < target {
        core::hint::spin_loop();
    }
}

/// CPU time of the calling thread, its current run included.
pub fn current_cpu_time_ns() -> u64 {
    THREADS.lock().as_ref().map_or(0, |threads| {
        threads.list[threads.current].cpu_time_ns + time::now_ns().saturating_sub(threads.last_switch_ns)
    })
}

/// Sets the policy's admission bound (ppm); refused if admitted servers already exceed it.
pub fn set_admission_bound(bound_ppm: u64) -> Result<(), AdmissionError> {
    reap_exited();
    match THREADS.lock().as_mut() {
        Some(threads) => threads.policy.set_bound(bound_ppm),
        None => Err(AdmissionError::Unsupported),
    }
}

/// The calling thread's deadline server parameters and counters, if it has a server.
pub fn own_server() -> Option<(ServerParams, ServerStats)> {
    THREADS.lock().as_ref().and_then(|threads| threads.policy.server(threads.list[threads.current].id))
}

/// Σ Q/T of admitted deadline servers and the admission bound, ppm (exited threads' servers released first).
pub fn utilization() -> (u64, u64) {
    reap_exited();
    THREADS.lock().as_ref().map_or((0, 0), |threads| threads.policy.utilization())
}

/// Why `give_server` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerError {
    /// No live thread with this ID.
    NoSuchThread,
    /// Idle and the caller itself cannot be given a server this way.
    Protected,
    /// The policy refused the server.
    Admission(AdmissionError),
}

/// Gives a live thread other than the caller a deadline server: from now on EDF schedules it within its
/// budget, ahead of best-effort threads (a priority boost through admission control). The server goes with
/// the thread when it exits.
pub fn give_server(id: ThreadId, params: ServerParams) -> Result<(), ServerError> {
    {
        let mut guard = THREADS.lock();
        let Some(threads) = guard.as_mut() else { return Err(ServerError::NoSuchThread) };
        let current = threads.list[threads.current].id;
        if !threads.is_live(id) {
            return Err(ServerError::NoSuchThread);
        }
        if id == 0 || id == current {
            return Err(ServerError::Protected);
        }
        threads.policy.admit(id, params, time::now_ns()).map_err(ServerError::Admission)?;
    }
    reschedule_soon();
    Ok(())
}

/// Changes the budget of a live thread's deadline server (period and deadline kept): a cut takes effect at
/// once, a raise passes admission control first.
pub fn set_budget(id: ThreadId, budget_ns: u64) -> Result<(), ServerError> {
    change_server(id, |policy| policy.set_budget(id, budget_ns))
}

/// Changes the relative deadline of a live thread's deadline server (budget and period kept), within the
/// policy's bound ([`sis_sched::MAX_DEADLINE_PERIODS`] periods for CBS+EDF).
pub fn set_deadline(id: ThreadId, deadline_ns: u64) -> Result<(), ServerError> {
    change_server(id, |policy| policy.set_deadline(id, deadline_ns))
}

/// Applies `change` to the policy if `id` is a live thread, then lets the scheduler decide again.
fn change_server(
    id: ThreadId,
    change: impl FnOnce(&mut dyn Scheduler) -> Result<(), AdmissionError>,
) -> Result<(), ServerError> {
    {
        let mut guard = THREADS.lock();
        let Some(threads) = guard.as_mut() else { return Err(ServerError::NoSuchThread) };
        if !threads.is_live(id) {
            return Err(ServerError::NoSuchThread);
        }
        change(threads.policy.as_mut()).map_err(ServerError::Admission)?;
    }
    reschedule_soon();
    Ok(())
}

/// Why `set_priority` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityError {
    /// No live thread with this ID.
    NoSuchThread,
    /// Outside [`sis_sched::MIN_PRIORITY`]..=[`sis_sched::MAX_PRIORITY`], or the policy has no priorities.
    Refused,
}

/// Sets a live best-effort thread's priority: its time slice becomes `priority` base slices. The priority
/// goes with the thread when it exits.
pub fn set_priority(id: ThreadId, priority: u8) -> Result<(), PriorityError> {
    let mut guard = THREADS.lock();
    let Some(threads) = guard.as_mut() else { return Err(PriorityError::NoSuchThread) };
    if !threads.is_live(id) {
        return Err(PriorityError::NoSuchThread);
    }
    if threads.policy.set_priority(id, priority) {
        Ok(())
    } else {
        Err(PriorityError::Refused)
    }
}

/// A live thread's deadline server parameters and counters, if it has a server.
pub fn server(id: ThreadId) -> Option<(ServerParams, ServerStats)> {
    let guard = THREADS.lock();
    let threads = guard.as_ref()?;
    threads.is_live(id).then(|| threads.policy.server(id)).flatten()
}

/// Why `kill` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillError {
    /// No thread with this ID.
    NoSuchThread,
    /// The thread may not be killed (idle, or the caller itself).
    Protected,
}

/// Ends another thread. Safe because no thread holds a lock across a
/// switch (every lock masks IRQs), so a thread that is not running holds
/// none; its stack is freed at the next reap, objects it owned on the heap
/// are not (it never runs its destructors).
pub fn kill(id: ThreadId) -> Result<(), KillError> {
    {
        let mut guard = THREADS.lock();
        let Some(threads) = guard.as_mut() else { return Err(KillError::NoSuchThread) };
        let current = threads.list[threads.current].id;
        let Some(thread) = threads.list.iter_mut().find(|thread| thread.id == id) else {
            return Err(KillError::NoSuchThread);
        };
        if id == 0 || id == current {
            return Err(KillError::Protected);
        }
        thread.state = ThreadState::Exited;
        threads.policy.dequeue(id);
    }
    reap_exited();
    Ok(())
}

/// Makes a blocked thread, or one in [`sleep_until_ns_or_woken`], runnable again.
pub fn wake(id: ThreadId) {
    if let Some(threads) = THREADS.lock().as_mut() {
        if let Some(thread) = threads.list.iter_mut().find(|thread| thread.id == id) {
            let wakeable_sleep = thread.state == ThreadState::Sleeping && thread.wakeable;
            if thread.state == ThreadState::Blocked || wakeable_sleep {
                thread.state = ThreadState::Ready;
                thread.wakeable = false;
                threads.policy.enqueue(id, time::now_ns());
                reschedule_soon();
            }
        }
    }
}

/// ID of the calling thread.
pub fn current_id() -> ThreadId {
    THREADS.lock().as_ref().map(|threads| threads.list[threads.current].id).unwrap_or(0)
}

/// Name of the scheduling policy.
pub fn policy_name() -> &'static str {
    THREADS.lock().as_ref().map(|threads| threads.policy.name()).unwrap_or("none")
}

/// Reads every thread's state and counters.
pub fn snapshot() -> Vec<ThreadInfo> {
    reap_exited();
    let guard = THREADS.lock();
    let Some(threads) = guard.as_ref() else { return Vec::new() };
    let running_for = time::now_ns().saturating_sub(threads.last_switch_ns);
    threads
        .list
        .iter()
        .enumerate()
        .map(|(index, thread)| ThreadInfo {
            id: thread.id,
            name: thread.name.clone(),
            state: thread.state,
            cpu_time_ns: thread.cpu_time_ns + if index == threads.current { running_for } else { 0 },
            switches: thread.switches,
            stack_bytes: thread.stack.map_or(0, |(_, order)| sis_mm::PAGE_SIZE << order),
            server: threads.policy.server(thread.id),
            latency: threads.policy.server_latency(thread.id),
            priority: threads.policy.priority(thread.id),
        })
        .collect()
}

/// Frees the stacks of exited threads and forgets them.
fn reap_exited() {
    let mut freed: Vec<(u64, usize)> = Vec::new();
    {
        let mut guard = THREADS.lock();
        let Some(threads) = guard.as_mut() else { return };
        let mut index = 0;
        while index < threads.list.len() {
            if threads.list[index].state == ThreadState::Exited && index != threads.current {
                let thread = threads.list.remove(index);
                threads.policy.dequeue(thread.id);
                threads.policy.release(thread.id, time::now_ns());
                threads.policy.set_priority(thread.id, sis_sched::DEFAULT_PRIORITY);
                if let Some(stack) = thread.stack {
                    freed.push(stack);
                }
                if index < threads.current {
                    threads.current -= 1;
                }
            } else {
                index += 1;
            }
        }
    }
    for (base, order) in freed {
        memory::free_frames(base, order);
    }
}

/// Writes the running thread's name without locking or allocating (crash paths).
pub fn write_current_name_on_crash(out: &mut dyn Write) {
    match THREADS.try_lock() {
        Some(guard) => match guard.as_ref() {
            Some(threads) => {
                let thread = &threads.list[threads.current];
                let _ = write!(out, "{} (id {})", thread.name, thread.id);
            }
            None => {
                let _ = out.write_str("boot");
            }
        },
        None => {
            let _ = out.write_str("unknown (thread table locked)");
        }
    }
}

/// Called by the trap code with the interrupted thread's saved frame and the profile layer it was in; returns
/// the frame to resume (and makes the resumed thread's layer current).
pub(super) fn on_trap(frame: *mut TrapFrame, reason: TrapReason, interrupted: Layer) -> *mut TrapFrame {
    let mut guard = THREADS.lock();
    let Some(threads) = guard.as_mut() else {
        profile::enter(interrupted);
        return frame;
    };
    let now = time::now_ns();
    let current = threads.current;
    threads.list[current].frame = frame as u64;
    threads.list[current].layer = interrupted;

    let ran_ns = now.saturating_sub(threads.last_switch_ns);
    threads.last_switch_ns = now;
    let thread = &mut threads.list[current];
    thread.cpu_time_ns = thread.cpu_time_ns.saturating_add(ran_ns);
    let current_id = thread.id;
    if let Some((base, _)) = thread.stack {
        // SAFETY: `base` is the first word of this thread's own stack block.
        if unsafe { (base as *const u64).read() } != STACK_CANARY {
            let name = thread.name.clone();
            drop(guard);
            panic!("stack overflow in thread {name} (id {current_id})");
        }
    }
    if current != IDLE_INDEX {
        threads.policy.charge(current_id, ran_ns, now);
    }

    for thread in threads.list.iter_mut() {
        if thread.state == ThreadState::Sleeping && thread.wake_at_ns <= now {
            thread.state = ThreadState::Ready;
            thread.wakeable = false;
            threads.policy.enqueue(thread.id, now);
        }
    }

    let running = threads.list[current].state == ThreadState::Running;
    let stopped =
        matches!(threads.list[current].state, ThreadState::Blocked | ThreadState::Sleeping | ThreadState::Exited);
    if stopped && current != IDLE_INDEX {
        // It blocked, went to sleep or exited: the policy stops counting it as
        // runnable. (A sleeper already due was made Ready above and stays queued.)
        threads.policy.dequeue(current_id);
    }
    let next_id = if current == IDLE_INDEX || !running {
        threads.policy.pick_next(now)
    } else if reason == TrapReason::Yield || threads.policy.should_preempt(current_id, now) {
        threads.list[current].state = ThreadState::Ready;
        threads.policy.enqueue(current_id, now);
        threads.policy.pick_next(now)
    } else {
        Some(current_id)
    };
    let next = match next_id {
        Some(id) if id == current_id => current,
        Some(id) => threads.list.iter().position(|thread| thread.id == id).unwrap_or(IDLE_INDEX),
        None => IDLE_INDEX,
    };
    if next != current {
        if threads.list[current].state == ThreadState::Running {
            threads.list[current].state = ThreadState::Ready;
        }
        threads.list[next].switches += 1;
    }
    threads.list[next].state = ThreadState::Running;
    threads.current = next;

    let running_id = (next != IDLE_INDEX).then(|| threads.list[next].id);
    let decision = threads.policy.next_decision_ns(running_id, now);
    let wake = threads
        .list
        .iter()
        .filter(|thread| thread.state == ThreadState::Sleeping)
        .map(|thread| thread.wake_at_ns)
        .min();
    match (decision, wake) {
        (Some(a), Some(b)) => time::arm_at_ns(a.min(b)),
        (Some(at), None) | (None, Some(at)) => time::arm_at_ns(at),
        (None, None) => time::disarm(),
    }
    profile::enter(threads.list[next].layer);
    threads.list[next].frame as *mut TrapFrame
}
