//! Which progress and OOM events of a stress run to publish: bounded in rate, exact in their counts.

use crate::{Kind, Outcome};

/// Least time between two progress events of a run: 100 ms (a run reports progress every tenth of its time, or
/// for chaos after every event, which can be far more often).
pub const PROGRESS_INTERVAL_NS: u64 = 100_000_000;
/// Least time between two OOM events of a run: 100 ms (a run at its pool's limit meets thousands per second).
pub const OOM_INTERVAL_NS: u64 = 100_000_000;

/// One stress run's start, progress and end, as events.
#[derive(Debug, Clone)]
pub struct RunProgress {
    run: u64,
    test: &'static str,
    started_ns: u64,
    duration_ns: Option<u64>,
    percent: u8,
    last_progress_ns: Option<u64>,
}

impl RunProgress {
    /// Run number `run` of `test` starts at `now_ns`; returns the tracker and the `stress.started` event.
    pub fn start(run: u64, test: &'static str, seed: u64, duration_ms: Option<u64>, now_ns: u64) -> (Self, Kind) {
        let progress = RunProgress {
            run,
            test,
            started_ns: now_ns,
            duration_ns: duration_ms.map(|ms| ms.saturating_mul(1_000_000)),
            percent: 0,
            last_progress_ns: None,
        };
        (progress, Kind::StressStarted { run, test, seed, duration_ms })
    }

    /// The run's number.
    pub fn run(&self) -> u64 {
        self.run
    }

    /// The run reported progress at `now_ns`: a `stress.progress` event, unless the last one was published less
    /// than [`PROGRESS_INTERVAL_NS`] ago. Its percent is the elapsed share of the configured time, at most 100,
    /// never below the previous one.
    pub fn progress(&mut self, now_ns: u64) -> Option<Kind> {
        if self.last_progress_ns.is_some_and(|last| now_ns.saturating_sub(last) < PROGRESS_INTERVAL_NS) {
            return None;
        }
        self.last_progress_ns = Some(now_ns);
        let elapsed_ns = now_ns.saturating_sub(self.started_ns);
        let percent = self.duration_ns.map(|duration| {
            let share = (elapsed_ns as u128 * 100 / duration.max(1) as u128).min(100) as u8;
            self.percent = self.percent.max(share);
            self.percent
        });
        Some(Kind::StressProgress { run: self.run, test: self.test, percent, elapsed_ms: elapsed_ns / 1_000_000 })
    }

    /// The run finished `done` of its `total` parts at `now_ns` (a comparison's pairs, a suite's tests): a
    /// `stress.progress` event whose percent is that share, at most 100, never below the previous one. Always
    /// published (parts end far less often than [`PROGRESS_INTERVAL_NS`]).
    pub fn parts_done(&mut self, now_ns: u64, done: u64, total: u64) -> Kind {
        self.last_progress_ns = Some(now_ns);
        let share = (u128::from(done) * 100 / u128::from(total.max(1))).min(100) as u8;
        self.percent = self.percent.max(share);
        let elapsed_ms = now_ns.saturating_sub(self.started_ns) / 1_000_000;
        Kind::StressProgress { run: self.run, test: self.test, percent: Some(self.percent), elapsed_ms }
    }

    /// The run ended at `now_ns` with `status` (and an error code unless it passed): the `stress.finished` event.
    pub fn finish(&self, now_ns: u64, status: Outcome, error: Option<&'static str>) -> Kind {
        Kind::StressFinished {
            run: self.run,
            test: self.test,
            elapsed_ms: now_ns.saturating_sub(self.started_ns) / 1_000_000,
            status,
            error,
        }
    }
}

/// A run's OOM events, gathered into at most one `memory.oom` event per [`OOM_INTERVAL_NS`].
///
/// The first OOM event of a run is published at once; later ones wait until the interval has passed since the
/// last published event, and [`OomCoalescer::flush`] publishes what is left when the run ends. The
/// `new_oom_events` of a run's events add up to its OOM count exactly.
#[derive(Debug, Clone)]
pub struct OomCoalescer {
    run: u64,
    published: u64,
    seen: u64,
    last_bytes: u64,
    last_published_ns: Option<u64>,
}

impl OomCoalescer {
    /// Nothing seen yet in run `run`.
    pub fn new(run: u64) -> Self {
        OomCoalescer { run, published: 0, seen: 0, last_bytes: 0, last_published_ns: None }
    }

    /// The run has met `oom_events` OOM events so far, the last refusing `bytes`, at `now_ns`: an event, or
    /// `None` while the interval since the last one has not passed (or nothing new happened).
    pub fn observe(&mut self, now_ns: u64, oom_events: u64, bytes: u64) -> Option<Kind> {
        if oom_events > self.seen {
            self.seen = oom_events;
            self.last_bytes = bytes;
        }
        if self.last_published_ns.is_some_and(|last| now_ns.saturating_sub(last) < OOM_INTERVAL_NS) {
            return None;
        }
        let event = self.take()?;
        self.last_published_ns = Some(now_ns);
        Some(event)
    }

    /// The OOM events seen and not yet published, as one event (at the end of the run).
    pub fn flush(&mut self) -> Option<Kind> {
        self.take()
    }

    fn take(&mut self) -> Option<Kind> {
        let new_oom_events = self.seen - self.published;
        if new_oom_events == 0 {
            return None;
        }
        self.published = self.seen;
        Some(Kind::Oom { run: self.run, new_oom_events, oom_events: self.seen, bytes: self.last_bytes })
    }
}
