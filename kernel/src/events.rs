//! The kernel's event log (`sis-events`) and the producers' doors into it.
//!
//! Stress runs, the chaos engine, the memory workload's OOM events and the meta-agent's interventions publish
//! here; the web server's thread follows the log and pushes each event to its `/ws` events subscribers; `eventctl`
//! shows the log on the console. [`EVENTS`] is a leaf lock: nothing else is taken while it is held, and a
//! publisher holds no other lock of the web server's.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use sis_events::{EventLog, Kind, OomCoalescer, Outcome, RunProgress, DEFAULT_CAPACITY};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::{thread, time};
use sis_sched::ThreadId;
use sis_shell::{Reply, ShellError};

/// The log (made at the first publish or read).
static EVENTS: IrqMutex<Option<EventLog>> = IrqMutex::new(None);
/// Stress runs started since boot.
static RUNS: AtomicU64 = AtomicU64::new(0);
/// The thread to wake when an event is published (the web thread), plus 1; 0 for none.
static FOLLOWER: AtomicU32 = AtomicU32::new(0);

/// Runs `body` on the log.
pub fn with_log<T>(body: impl FnOnce(&mut EventLog) -> T) -> T {
    let mut guard = EVENTS.lock();
    body(guard.get_or_insert_with(|| EventLog::new(DEFAULT_CAPACITY)))
}

/// Publishes `kind` now and wakes the follower.
pub fn publish(kind: Kind) {
    let now = time::now_ns();
    with_log(|log| log.publish(now, kind));
    if let Some(follower) = FOLLOWER.load(Relaxed).checked_sub(1) {
        thread::wake(follower);
    }
}

/// Wakes `thread` at every publish from now on.
pub fn follow(thread: ThreadId) {
    FOLLOWER.store(thread.saturating_add(1), Relaxed);
}

/// One stress run's events: `stress.started` when made, `stress.progress` from its progress lines, OOM events from
/// its memory workload, `stress.finished` from its result.
pub struct StressRun {
    progress: RunProgress,
    oom: OomCoalescer,
    /// Its OpenTelemetry span and its parts' (when telemetry records).
    trace: Option<sis_otel::RunTrace>,
}

impl StressRun {
    /// Publishes the start of a run of `test` (`duration_ms` `None` for a run not bounded by time).
    pub fn start(test: &'static str, seed: u64, duration_ms: Option<u64>) -> Self {
        let run = RUNS.fetch_add(1, Relaxed) + 1;
        let now = time::now_ns();
        let (progress, started) = RunProgress::start(run, test, seed, duration_ms, now);
        publish(started);
        let trace = crate::otel::while_recording(|telemetry| {
            let mut attributes = alloc::vec![
                sis_otel::KeyValue::string("sis.stress.test", test),
                sis_otel::KeyValue::string("sis.stress.seed", &alloc::format!("{seed}")),
                sis_otel::KeyValue::int("sis.stress.run", i64::try_from(run).unwrap_or(i64::MAX)),
            ];
            if let Some(duration_ms) = duration_ms {
                attributes.push(sis_otel::KeyValue::int(
                    "sis.stress.duration_ms",
                    i64::try_from(duration_ms).unwrap_or(i64::MAX),
                ));
            }
            sis_otel::RunTrace::start(telemetry.ids(), &alloc::format!("stress.{test}"), now, attributes)
        });
        StressRun { progress, oom: OomCoalescer::new(run), trace }
    }

    /// The run's number.
    pub fn run(&self) -> u64 {
        self.progress.run()
    }

    /// The run printed a progress line.
    pub fn progress(&mut self) {
        if let Some(kind) = self.progress.progress(time::now_ns()) {
            publish(kind);
        }
    }

    /// The run finished `done` of its `total` parts, the last named `name` (a child span of the run's).
    pub fn parts_done(&mut self, done: u64, total: u64, name: &str) {
        let now = time::now_ns();
        publish(self.progress.parts_done(now, done, total));
        if let Some(trace) = self.trace.as_mut() {
            crate::otel::with_telemetry(|telemetry| {
                let attributes = alloc::vec![
                    sis_otel::KeyValue::int("sis.stress.part", i64::try_from(done).unwrap_or(i64::MAX)),
                    sis_otel::KeyValue::int("sis.stress.parts", i64::try_from(total).unwrap_or(i64::MAX)),
                ];
                trace.part_done(telemetry.ids(), name, now, attributes);
            });
        }
    }

    /// The run's memory workload has met `oom_events` OOM events, the last refusing `bytes`.
    pub fn oom(&mut self, oom_events: u64, bytes: u64) {
        if let Some(kind) = self.oom.observe(time::now_ns(), oom_events, bytes) {
            publish(kind);
        }
    }

    /// Publishes the run's last OOM events and its end, from the command's result.
    pub fn finish(mut self, result: &Result<Reply, ShellError>) {
        if let Some(kind) = self.oom.flush() {
            publish(kind);
        }
        let (status, error) = match result {
            Ok(reply) => match &reply.failure {
                None => (Outcome::Passed, None),
                Some(failure) => (Outcome::Failed, Some(failure.code())),
            },
            Err(error) => (Outcome::Error, Some(error.code())),
        };
        let now = time::now_ns();
        publish(self.progress.finish(now, status, error));
        if let Some(trace) = self.trace.take() {
            let outcome = match error {
                None => sis_otel::CommandOutcome::Ok,
                Some(code) => sis_otel::CommandOutcome::Failed(code),
            };
            crate::otel::enqueue_spans(trace.finish(now, outcome));
        }
    }
}

/// Runs a stress test's `body` as run `test`: publishes its start, hands it the run for progress and OOM events,
/// and publishes its end from the result.
pub fn stress_run(
    test: &'static str,
    seed: u64,
    duration_ms: Option<u64>,
    body: impl FnOnce(&mut StressRun) -> Result<Reply, ShellError>,
) -> Result<Reply, ShellError> {
    let mut run = StressRun::start(test, seed, duration_ms);
    let result = body(&mut run);
    run.finish(&result);
    result
}
