//! Log floods: N messages of one source spread evenly over a duration, and the table of floods under way.
//!
//! A flood is a test load for the rate limit (`logctl flood`). The plan says
//! when each batch is due; the kernel's flood thread sleeps until then and
//! submits the batch. The table bounds how many run at once and shows progress.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

/// Most messages one flood sends.
pub const MAX_FLOOD_COUNT: u64 = 1_000_000;
/// Longest flood, ms.
pub const MAX_FLOOD_DURATION_MS: u64 = 60_000;
/// Floods that may run at once.
pub const MAX_ACTIVE_FLOODS: usize = 4;

const MS: u64 = 1_000_000;

/// A refused flood; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodError {
    /// The count is outside 1..=[`MAX_FLOOD_COUNT`].
    Count {
        /// The count asked for.
        count: u64,
    },
    /// The duration is outside 1..=[`MAX_FLOOD_DURATION_MS`] ms.
    Duration {
        /// The duration asked for, ms.
        duration_ms: u64,
    },
    /// [`MAX_ACTIVE_FLOODS`] floods are already running.
    TooManyFloods,
}

impl FloodError {
    /// A stable kebab-case code for programs.
    pub fn code(&self) -> &'static str {
        match self {
            FloodError::Count { .. } | FloodError::Duration { .. } => "out-of-range",
            FloodError::TooManyFloods => "too-many-floods",
        }
    }
}

impl fmt::Display for FloodError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FloodError::Count { count } => {
                write!(formatter, "a flood sends 1..={MAX_FLOOD_COUNT} messages, not {count}")
            }
            FloodError::Duration { duration_ms } => {
                write!(formatter, "a flood lasts 1..={MAX_FLOOD_DURATION_MS} ms, not {duration_ms}")
            }
            FloodError::TooManyFloods => {
                write!(formatter, "{MAX_ACTIVE_FLOODS} floods are already running; wait for one to end (logctl wait)")
            }
        }
    }
}

/// When a flood's messages are due: `ticks = min(count, duration_ms)` batches, tick `k` at
/// `duration * k / ticks` after the start, bringing the messages sent to `count * (k + 1) / ticks`.
///
/// So batches are at least 1 ms apart, each holds at least one message, and the
/// messages span `[0, duration - duration / ticks]`: 20,000 over 1,000 ms are
/// 1,000 batches of 20, 1 ms apart; 20 over 1,000 ms are 20 single messages 50 ms apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FloodPlan {
    count: u64,
    duration_ms: u64,
}

impl FloodPlan {
    /// A plan for `count` messages over `duration_ms`, both within bounds.
    pub fn new(count: u64, duration_ms: u64) -> Result<Self, FloodError> {
        if !(1..=MAX_FLOOD_COUNT).contains(&count) {
            return Err(FloodError::Count { count });
        }
        if !(1..=MAX_FLOOD_DURATION_MS).contains(&duration_ms) {
            return Err(FloodError::Duration { duration_ms });
        }
        Ok(FloodPlan { count, duration_ms })
    }

    /// Messages to send.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Duration, ms.
    pub fn duration_ms(&self) -> u64 {
        self.duration_ms
    }

    /// Batches.
    pub fn ticks(&self) -> u64 {
        self.count.min(self.duration_ms)
    }

    /// Batch `tick` (0-based): its time after the start (ns) and the messages sent once it is done.
    pub fn tick(&self, tick: u64) -> (u64, u64) {
        let ticks = self.ticks();
        let tick = tick.min(ticks - 1);
        // Within bounds: 60,000 ms * 1e6 * 60,000 < 2^64 and 1e6 * 1e6 < 2^64.
        (self.duration_ms * MS * tick / ticks, self.count * (tick + 1) / ticks)
    }
}

/// A flood under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloodStatus {
    /// Its number, from 1, in the order floods started.
    pub id: u64,
    /// The source it floods.
    pub source: String,
    /// Messages it will send.
    pub count: u64,
    /// Its duration, ms.
    pub duration_ms: u64,
    /// When it started, ns.
    pub started_ns: u64,
    /// Messages sent so far.
    pub sent: u64,
}

/// The floods under way, and how many started and finished since boot.
#[derive(Debug, Clone, Default)]
pub struct Floods {
    active: Vec<FloodStatus>,
    started: u64,
    finished: u64,
}

impl Floods {
    /// No floods.
    pub const fn new() -> Self {
        Floods { active: Vec::new(), started: 0, finished: 0 }
    }

    /// Whether another flood may start now.
    pub fn check_room(&self) -> Result<(), FloodError> {
        if self.active.len() >= MAX_ACTIVE_FLOODS {
            return Err(FloodError::TooManyFloods);
        }
        Ok(())
    }

    /// Records a flood of `source` by `plan` starting at `now_ns`.
    pub fn start(&mut self, source: &str, plan: FloodPlan, now_ns: u64) -> Result<FloodStatus, FloodError> {
        self.check_room()?;
        self.started += 1;
        let flood = FloodStatus {
            id: self.started,
            source: String::from(source),
            count: plan.count(),
            duration_ms: plan.duration_ms(),
            started_ns: now_ns,
            sent: 0,
        };
        self.active.push(flood.clone());
        Ok(flood)
    }

    /// Forgets flood `id` as if it never started (its thread could not start); only the last one started.
    pub fn abandon(&mut self, id: u64) {
        if id == self.started {
            if let Some(index) = self.active.iter().position(|flood| flood.id == id) {
                self.active.remove(index);
                self.started -= 1;
            }
        }
    }

    /// Flood `id` has sent `sent` messages.
    pub fn progress(&mut self, id: u64, sent: u64) {
        if let Some(flood) = self.active.iter_mut().find(|flood| flood.id == id) {
            flood.sent = sent;
        }
    }

    /// Flood `id` ended; returns it as it ended.
    pub fn finish(&mut self, id: u64) -> Option<FloodStatus> {
        let index = self.active.iter().position(|flood| flood.id == id)?;
        self.finished += 1;
        Some(self.active.remove(index))
    }

    /// Floods under way, oldest first.
    pub fn active(&self) -> &[FloodStatus] {
        &self.active
    }

    /// Floods started since boot.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Floods finished since boot.
    pub fn finished(&self) -> u64 {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_spread_the_messages_evenly_and_end_with_all_of_them() {
        let noisy = FloodPlan::new(20_000, 1_000).unwrap();
        assert_eq!(noisy.ticks(), 1_000);
        assert_eq!(noisy.tick(0), (0, 20));
        assert_eq!(noisy.tick(1), (MS, 40));
        assert_eq!(noisy.tick(999), (999 * MS, 20_000));
        let steady = FloodPlan::new(20, 1_000).unwrap();
        assert_eq!(steady.ticks(), 20);
        let times: Vec<u64> = (0..20).map(|tick| steady.tick(tick).0 / MS).collect();
        assert_eq!(times, (0..20).map(|k| k * 50).collect::<Vec<_>>());
        assert_eq!(steady.tick(19).1, 20);
        // Uneven: 7 over 3 ms is 3 batches of 2, 2, 3.
        let uneven = FloodPlan::new(7, 3).unwrap();
        assert_eq!((0..3).map(|tick| uneven.tick(tick)).collect::<Vec<_>>(), [(0, 2), (MS, 4), (2 * MS, 7)]);
        let largest = FloodPlan::new(MAX_FLOOD_COUNT, MAX_FLOOD_DURATION_MS).unwrap();
        assert_eq!(largest.tick(largest.ticks() - 1), ((MAX_FLOOD_DURATION_MS - 1) * MS, MAX_FLOOD_COUNT));
    }

    #[test]
    fn bounds_and_the_flood_limit_are_typed_errors_and_change_nothing() {
        assert_eq!(FloodPlan::new(0, 10), Err(FloodError::Count { count: 0 }));
        assert_eq!(FloodPlan::new(MAX_FLOOD_COUNT + 1, 10), Err(FloodError::Count { count: MAX_FLOOD_COUNT + 1 }));
        assert_eq!(FloodPlan::new(1, 0), Err(FloodError::Duration { duration_ms: 0 }));
        assert_eq!(FloodPlan::new(1, 60_001), Err(FloodError::Duration { duration_ms: 60_001 }));
        let plan = FloodPlan::new(5, 5).unwrap();
        let mut floods = Floods::new();
        for i in 0..MAX_ACTIVE_FLOODS as u64 {
            assert_eq!(floods.start("s", plan, i).unwrap().id, i + 1);
        }
        assert_eq!(floods.start("s", plan, 9), Err(FloodError::TooManyFloods));
        assert_eq!(FloodError::TooManyFloods.code(), "too-many-floods");
        assert_eq!((floods.active().len(), floods.started()), (MAX_ACTIVE_FLOODS, MAX_ACTIVE_FLOODS as u64));
        floods.progress(2, 3);
        assert_eq!(floods.active()[1].sent, 3);
        assert_eq!(floods.finish(2).map(|flood| flood.sent), Some(3));
        assert_eq!(floods.finish(2), None);
        assert_eq!((floods.active().len(), floods.finished()), (MAX_ACTIVE_FLOODS - 1, 1));
        let fifth = floods.start("t", plan, 10).unwrap();
        floods.abandon(fifth.id);
        assert_eq!((floods.active().len(), floods.started()), (MAX_ACTIVE_FLOODS - 1, MAX_ACTIVE_FLOODS as u64));
    }
}
