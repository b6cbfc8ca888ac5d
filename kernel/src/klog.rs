//! The kernel log: one `sis_klog::Log` behind an IRQ-masking lock, each printed line one console write.
//!
//! Kernel code logs with [`klog!`](crate::klog!); the log decides with the
//! platform clock what the rate limit lets through, and every resulting line
//! (text and `\n`) goes to the console in a single write, so a log line is
//! never split by other output. Lines are written while the log's lock is held,
//! so a suppression line and the message after it stay together and in order.
//! Lock order: a caller's own locks, then the log, then the console.
//!
//! Floods (`logctl flood`) are kernel threads that log N messages of one source
//! by a [`FloodPlan`]; `logctl wait` blocks on their end.

use alloc::string::String;
use alloc::vec::Vec;

use sis_klog::flood::{FloodError, FloodPlan, FloodStatus, Floods};
use sis_klog::{KlogError, Log};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread::{self, SpawnError};
use sis_platform::{console, time};
use sis_sched::ThreadId;

/// Stack of a flood thread (it formats one short message at a time).
const FLOOD_STACK_BYTES: u64 = 16 * 1024;

static LOG: IrqMutex<Log> = IrqMutex::new(Log::new());
static FLOODS: IrqMutex<FloodTable> = IrqMutex::new(FloodTable { floods: Floods::new(), waiters: Vec::new() });

struct FloodTable {
    floods: Floods,
    /// Threads blocked in [`wait_for_floods`].
    waiters: Vec<ThreadId>,
}

/// Logs a message of a source: `klog!("net", "frame dropped: {}", reason)`.
///
/// The message is formatted first (no lock held), then submitted with the time
/// now. A refused source name is counted in the log's `rejected` total.
#[macro_export]
macro_rules! klog {
    ($source:expr, $($format:tt)+) => {
        $crate::klog::log($source, &alloc::format!($($format)+))
    };
}

/// Submits `text` as a message of `source` and prints what the rate limit lets through.
pub fn log(source: &str, text: &str) {
    let mut log = LOG.lock();
    if let Ok(emission) = log.emit(time::now_ns(), source, text) {
        for line in emission.lines() {
            write_line(line);
        }
    }
}

/// Prints the suppression line `source` owes, if any.
pub fn flush(source: &str) -> Result<(), KlogError> {
    let mut log = LOG.lock();
    if let Some(line) = log.flush(source)? {
        write_line(&line);
    }
    Ok(())
}

/// Runs `body` on the log (short, no sleeping: IRQs are masked).
pub fn with_log<R>(body: impl FnOnce(&mut Log) -> R) -> R {
    body(&mut LOG.lock())
}

/// One console write of `line` and its line end.
fn write_line(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    console::write_str(&text);
}

/// Why a flood did not start; nothing changed.
#[derive(Debug)]
pub enum StartError {
    /// The plan or the flood limit refused it.
    Flood(FloodError),
    /// The log refused the source.
    Source(KlogError),
    /// The thread could not start.
    Spawn(SpawnError),
}

/// Starts a flood of `source` by `plan` in its own best-effort thread; returns it as started.
///
/// The source is added to the log first, so a bad name or a full table is
/// refused before anything starts.
pub fn start_flood(source: &str, plan: FloodPlan) -> Result<FloodStatus, StartError> {
    let flood = {
        let mut table = FLOODS.lock();
        table.floods.check_room().map_err(StartError::Flood)?;
        with_log(|log| log.register(source)).map_err(StartError::Source)?;
        table.floods.start(source, plan, time::now_ns()).map_err(StartError::Flood)?
    };
    let (id, name, started_ns) = (flood.id, flood.source.clone(), flood.started_ns);
    if let Err(error) = thread::spawn("logflood", FLOOD_STACK_BYTES, move || run_flood(id, &name, plan, started_ns)) {
        FLOODS.lock().floods.abandon(id);
        return Err(StartError::Spawn(error));
    }
    Ok(flood)
}

/// The flood thread: each batch at its time, then the source's suppression line, then the end.
fn run_flood(id: u64, source: &str, plan: FloodPlan, started_ns: u64) {
    let mut sent = 0;
    for tick in 0..plan.ticks() {
        let (offset_ns, due) = plan.tick(tick);
        thread::sleep_until_ns(started_ns.saturating_add(offset_ns));
        while sent < due {
            sent += 1;
            log(source, &alloc::format!("flood {source} message {sent} of {}", plan.count()));
        }
        FLOODS.lock().floods.progress(id, sent);
    }
    // The name was checked when the flood started, and sources are never removed.
    let _ = flush(source);
    let waiters = {
        let mut table = FLOODS.lock();
        table.floods.finish(id);
        if table.floods.active().is_empty() {
            core::mem::take(&mut table.waiters)
        } else {
            Vec::new()
        }
    };
    for waiter in waiters {
        thread::wake(waiter);
    }
}

/// Floods under way, and how many started and finished since boot.
pub fn floods() -> (Vec<FloodStatus>, u64, u64) {
    let table = FLOODS.lock();
    (table.floods.active().to_vec(), table.floods.started(), table.floods.finished())
}

/// Blocks the calling thread until no flood is under way.
pub fn wait_for_floods() {
    thread::block_current_until(|| {
        let mut table = FLOODS.lock();
        if table.floods.active().is_empty() {
            return true;
        }
        let me = thread::current_id();
        if !table.waiters.contains(&me) {
            table.waiters.push(me);
        }
        false
    });
}
